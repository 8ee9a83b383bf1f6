//! RDMSR/WRMSR and the instructions that read the instruction-count clock or its
//! auxiliary value: RDTSC, RDTSCP. The MSR numbers are declared once in `cpu::msr`.

use super::system::{edx_eax, paging_changed, require_cpl0, set_edx_eax};
use crate::cpu::access::MAXPHYADDR;
use crate::cpu::fault::{gp, ExecResult};
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::msr;
use crate::cpu::regs::{cr4, efer, SegReg};
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

/// The EFER bits software may write (LMA is read-only).
const EFER_WRITABLE: u64 = efer::SCE | efer::LME | efer::NXE;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Rdmsr => rdmsr,
        Mnemonic::Wrmsr => wrmsr,
        Mnemonic::Rdtsc => rdtsc,
        Mnemonic::Rdtscp => rdtscp,
        _ => return None,
    })
}

// ---- RDMSR / WRMSR (SDM Vol. 2B "RDMSR", "WRMSR") ----

/// The TSC: retired instructions plus the offset a TSC write left (kept in
/// `cpu.msrs[IA32_TSC]`).
fn tsc(m: &Machine) -> u64 {
    let off = m.cpu.msrs.get(&msr::IA32_TSC).copied().unwrap_or(0);
    m.cpu.insn_count.wrapping_add(off)
}

/// Reads an MSR, or `None` for an unknown one.
pub(crate) fn read_msr(m: &Machine, n: u32) -> Option<u64> {
    let stored = |d: u64| m.cpu.msrs.get(&n).copied().unwrap_or(d);
    Some(match n {
        msr::IA32_TSC => tsc(m),
        msr::IA32_EFER => m.cpu.efer,
        msr::IA32_FS_BASE => m.cpu.seg(SegReg::Fs).base,
        msr::IA32_GS_BASE => m.cpu.seg(SegReg::Gs).base,
        msr::IA32_APIC_BASE => stored(msr::APIC_BASE_RESET),
        msr::IA32_PAT => stored(msr::PAT_RESET),
        _ if msr::name(n).is_some() => stored(0),
        _ => return None,
    })
}

/// Writes an MSR with its checks; `Err(#GP(0))` for unknown MSRs and invalid values.
pub(crate) fn write_msr(m: &mut Machine, n: u32, v: u64) -> ExecResult {
    match n {
        msr::IA32_TSC => {
            m.cpu.msrs.insert(n, v.wrapping_sub(m.cpu.insn_count));
        }
        msr::IA32_EFER => {
            if v & !(EFER_WRITABLE | efer::LMA) != 0 {
                return gp(0);
            }
            let old = m.cpu.efer;
            if (v ^ old) & efer::LME != 0 && m.cpu.paging() {
                return gp(0);
            }
            m.cpu.efer = (v & EFER_WRITABLE) | (old & efer::LMA);
            paging_changed(m);
        }
        msr::IA32_FS_BASE | msr::IA32_GS_BASE => {
            if !m.canonical(v) {
                return gp(0);
            }
            let s = if n == msr::IA32_FS_BASE { SegReg::Fs } else { SegReg::Gs };
            m.cpu.seg[s as usize].base = v;
        }
        msr::IA32_KERNEL_GS_BASE
        | msr::IA32_LSTAR
        | msr::IA32_CSTAR
        | msr::IA32_SYSENTER_ESP
        | msr::IA32_SYSENTER_EIP => {
            if !m.canonical(v) {
                return gp(0);
            }
            m.cpu.msrs.insert(n, v);
        }
        msr::IA32_FMASK | msr::IA32_TSC_AUX => {
            if v >> 32 != 0 {
                return gp(0);
            }
            m.cpu.msrs.insert(n, v);
        }
        msr::IA32_PAT => {
            // Each entry must be a valid memory type: UC, WC, WT, WP, WB or UC-.
            if (0..8).any(|k| !matches!((v >> (k * 8)) & 0xFF, 0 | 1 | 4 | 5 | 6 | 7)) {
                return gp(0);
            }
            m.cpu.msrs.insert(n, v);
        }
        msr::IA32_APIC_BASE => {
            // Base (bits MAXPHYADDR-1:12) and the global enable are writable; BSP is
            // read-only; x2APIC mode (EXTD) is not emulated, so reserved.
            let writable = (((1u64 << MAXPHYADDR) - 1) & !0xFFF) | (1 << 11);
            if v & !(writable | (1 << 8)) != 0 {
                return gp(0);
            }
            m.cpu.msrs.insert(n, (v & writable) | (1 << 8));
        }
        _ if msr::name(n).is_some() => {
            m.cpu.msrs.insert(n, v);
        }
        _ => return gp(0),
    }
    Ok(())
}

fn rdmsr(m: &mut Machine, _i: &Insn) -> ExecResult {
    require_cpl0(m)?;
    let n = m.cpu.gpr[1] as u32;
    match read_msr(m, n) {
        Some(v) => {
            set_edx_eax(m, v);
            Ok(())
        }
        None => gp(0),
    }
}

fn wrmsr(m: &mut Machine, _i: &Insn) -> ExecResult {
    require_cpl0(m)?;
    let n = m.cpu.gpr[1] as u32;
    let v = edx_eax(m);
    write_msr(m, n, v)
}

// ---- RDTSC / RDTSCP (SDM Vol. 2B "RDTSC", "RDTSCP") ----

fn rdtsc(m: &mut Machine, _i: &Insn) -> ExecResult {
    if m.cpu.cr4 & cr4::TSD != 0 && m.cpu.cpl != 0 {
        return gp(0);
    }
    let t = tsc(m);
    set_edx_eax(m, t);
    Ok(())
}

fn rdtscp(m: &mut Machine, i: &Insn) -> ExecResult {
    rdtsc(m, i)?;
    m.cpu.gpr[1] = m.cpu.msrs.get(&msr::IA32_TSC_AUX).copied().unwrap_or(0) & 0xFFFF_FFFF;
    Ok(())
}
