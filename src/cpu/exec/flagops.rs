//! Flag instructions: CLC, STC, CMC, CLD, STD, CLI, STI.

use crate::cpu::fault::{gp, ExecResult};
use crate::cpu::flags::{CF, DF, IF};
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Clc => clc,
        Mnemonic::Stc => stc,
        Mnemonic::Cmc => cmc,
        Mnemonic::Cld => cld,
        Mnemonic::Std => std_,
        Mnemonic::Cli => cli,
        Mnemonic::Sti => sti,
        _ => return None,
    })
}

fn set_cf(m: &mut Machine, cf: bool) {
    let a = m.cpu.flags.arith();
    m.cpu.flags.set_arith((a & !CF) | if cf { CF } else { 0 });
}

fn clc(m: &mut Machine, _i: &Insn) -> ExecResult {
    set_cf(m, false);
    Ok(())
}

fn stc(m: &mut Machine, _i: &Insn) -> ExecResult {
    set_cf(m, true);
    Ok(())
}

fn cmc(m: &mut Machine, _i: &Insn) -> ExecResult {
    let cf = m.cpu.flags.cf() != 0;
    set_cf(m, !cf);
    Ok(())
}

fn cld(m: &mut Machine, _i: &Insn) -> ExecResult {
    m.cpu.flags.set_bit(DF, false);
    Ok(())
}

fn std_(m: &mut Machine, _i: &Insn) -> ExecResult {
    m.cpu.flags.set_bit(DF, true);
    Ok(())
}

/// Whether CLI/STI may change IF: always in real mode, else CPL <= IOPL (the VME/PVI
/// virtual-interrupt forms come with the system issue).
fn may_change_if(m: &Machine) -> bool {
    m.cpu.mode == CpuMode::Real || m.cpu.cpl <= m.cpu.flags.iopl()
}

fn cli(m: &mut Machine, _i: &Insn) -> ExecResult {
    if !may_change_if(m) {
        return gp(0);
    }
    m.cpu.flags.set_bit(IF, false);
    Ok(())
}

fn sti(m: &mut Machine, _i: &Insn) -> ExecResult {
    if !may_change_if(m) {
        return gp(0);
    }
    m.cpu.flags.set_bit(IF, true);
    m.cpu.end_block = true;
    Ok(())
}
