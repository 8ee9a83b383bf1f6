//! NOP forms, PAUSE, the PREFETCH hints, fences, HLT, UD0/UD1/UD2 and CPUID (MONITOR/
//! MWAIT are in `monitor.rs`).

use crate::cpu::fault::{gp, ud, ExecResult, Fault};
use crate::cpu::insn::{Handler, Insn};
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Nop | Mnemonic::Pause | Mnemonic::Fnop => nop,
        Mnemonic::Prefetchnta
        | Mnemonic::Prefetcht0
        | Mnemonic::Prefetcht1
        | Mnemonic::Prefetcht2
        | Mnemonic::Prefetchw
        | Mnemonic::Prefetch
        | Mnemonic::Lfence
        | Mnemonic::Sfence
        | Mnemonic::Mfence => nop,
        Mnemonic::Hlt => hlt,
        Mnemonic::Ud0 | Mnemonic::Ud1 | Mnemonic::Ud2 => undefined,
        Mnemonic::Cpuid => cpuid,
        _ => return None,
    })
}

fn nop(_m: &mut Machine, _i: &Insn) -> ExecResult {
    Ok(())
}

fn undefined(_m: &mut Machine, _i: &Insn) -> ExecResult {
    ud()
}

fn hlt(m: &mut Machine, _i: &Insn) -> ExecResult {
    // SDM Vol. 2A "HLT": #GP(0) if the current privilege level is not 0.
    if m.cpu.cpl != 0 {
        return gp(0);
    }
    m.cpu.halted = true;
    Err(Fault::Halt)
}

fn cpuid(m: &mut Machine, _i: &Insn) -> ExecResult {
    let leaf = m.cpu.gpr[0] as u32;
    let sub = m.cpu.gpr[1] as u32;
    let r = m.cpuid.query_cpu(&m.cpu, leaf, sub);
    m.cpu.gpr[0] = u64::from(r[0]);
    m.cpu.gpr[3] = u64::from(r[1]);
    m.cpu.gpr[1] = u64::from(r[2]);
    m.cpu.gpr[2] = u64::from(r[3]);
    Ok(())
}
