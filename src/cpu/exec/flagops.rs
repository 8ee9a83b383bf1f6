//! Flag instructions: CLC, STC, CMC, CLD, STD, CLI, STI (with the VME/PVI forms).

use crate::cpu::fault::{gp, ExecResult};
use crate::cpu::flags::{CF, DF, IF, VIF, VIP};
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::regs::cr4;
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

/// Which flag CLI/STI change (SDM Vol. 2A "CLI" and Vol. 2B "STI", Operation tables).
enum IfTarget {
    /// EFLAGS.IF.
    If,
    /// EFLAGS.VIF: V86 mode with CR4.VME, or CPL 3 with CR4.PVI, when IOPL is too low.
    Vif,
}

fn if_target(m: &Machine) -> Result<IfTarget, crate::cpu::fault::Fault> {
    let iopl = m.cpu.flags.iopl();
    match m.cpu.mode {
        CpuMode::Real => Ok(IfTarget::If),
        CpuMode::V86 if iopl == 3 => Ok(IfTarget::If),
        CpuMode::V86 if m.cpu.cr4 & cr4::VME != 0 => Ok(IfTarget::Vif),
        CpuMode::V86 => gp(0),
        _ if m.cpu.cpl <= iopl => Ok(IfTarget::If),
        _ if m.cpu.cpl == 3 && m.cpu.cr4 & cr4::PVI != 0 => Ok(IfTarget::Vif),
        _ => gp(0),
    }
}

fn cli(m: &mut Machine, _i: &Insn) -> ExecResult {
    match if_target(m)? {
        IfTarget::If => m.cpu.flags.set_bit(IF, false),
        IfTarget::Vif => m.cpu.flags.set_bit(VIF, false),
    }
    Ok(())
}

fn sti(m: &mut Machine, _i: &Insn) -> ExecResult {
    match if_target(m)? {
        IfTarget::If => {
            // With IF = 0 before, interrupts stay inhibited until after the next
            // instruction.
            m.cpu.shadow_pending |= !m.cpu.flags.bit(IF);
            m.nested.vmx.shadow_by_mov_ss &= m.cpu.flags.bit(IF);
            m.cpu.flags.set_bit(IF, true);
        }
        IfTarget::Vif => {
            if m.cpu.flags.bit(VIP) {
                return gp(0);
            }
            m.cpu.flags.set_bit(VIF, true);
        }
    }
    m.cpu.end_block = true;
    Ok(())
}
