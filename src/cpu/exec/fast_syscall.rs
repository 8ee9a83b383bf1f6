//! The fast system calls: SYSCALL/SYSRET (SDM Vol. 2B "SYSCALL", "SYSRET"; APM Vol. 3
//! "SYSCALL", "SYSRET", APM Vol. 2 §6.1.1 "SYSCALL and SYSRET") and SYSENTER/SYSEXIT
//! (SDM Vol. 2B "SYSENTER", "SYSEXIT"; APM Vol. 3 "SYSENTER", "SYSEXIT").
//!
//! None of them reads a descriptor: they load CS and SS with fixed flat descriptor
//! caches built from the selector MSRs. Where the vendors differ, the CPU model decides:
//!
//! | | Intel | AMD |
//! |---|---|---|
//! | SYSCALL/SYSRET outside 64-bit mode | #UD | legacy mode: STAR[31:0]; compatibility mode: CSTAR |
//! | SYSRET to a non-canonical RCX | #GP(0) at CPL 0 | returns; the fetch at CPL 3 faults |
//! | SYSRET's SS | flat descriptor cache | selector only, cache unchanged |
//! | SYSENTER/SYSEXIT in long mode | supported | #UD |

use super::system::require_cpl0;
use crate::cpu::fault::{gp, ud, ExecResult};
use crate::cpu::flags::{FIXED1, IF, RF, VM};
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::msr;
use crate::cpu::regs::{attr, cr0, efer, SegReg, Segment};
use crate::cpu::CpuMode;
use crate::cpuid::Vendor;
use crate::machine::Machine;
use hvsim_decoder::iced::{Code, Instruction, Mnemonic};

/// The RFLAGS bits SYSRET loads from R11 (everything but RF, VM and reserved bits;
/// SDM Vol. 2B "SYSRET": "RFLAGS := (R11 & 3C7FD7H) OR 2").
const SYSRET_RFLAGS: u64 = 0x3C_7FD7;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Syscall => syscall,
        Mnemonic::Sysret | Mnemonic::Sysretq => sysret,
        Mnemonic::Sysenter => sysenter,
        Mnemonic::Sysexit | Mnemonic::Sysexitq => sysexit,
        _ => return None,
    })
}

fn msr(m: &Machine, n: u32) -> u64 {
    m.cpu.msrs.get(&n).copied().unwrap_or(0)
}

/// A flat 4-GiB code segment cache: type 11 (execute/read, accessed), S, P, G, the
/// given DPL and size (`bits` = 32 or 64).
fn flat_code(selector: u16, dpl: u8, bits: u8) -> Segment {
    let s = Segment::flat_code(selector, bits);
    Segment { attr: s.attr | u16::from(dpl) << attr::DPL_SHIFT, ..s }
}

/// A flat 4-GiB stack segment cache: type 3 (read/write, accessed), S, P, B, G, DPL.
fn flat_stack(selector: u16, dpl: u8) -> Segment {
    let s = Segment::flat_data(selector, true);
    Segment { attr: s.attr | u16::from(dpl) << attr::DPL_SHIFT, ..s }
}

fn load_cs_ss(m: &mut Machine, cs: Segment, ss: Segment) {
    m.cpu.seg[SegReg::Cs as usize] = cs;
    m.cpu.seg[SegReg::Ss as usize] = ss;
    m.cpu.update_mode();
}

fn lma(m: &Machine) -> bool {
    m.cpu.efer & efer::LMA != 0
}

// ---- SYSCALL / SYSRET ----

fn syscall(m: &mut Machine, _i: &Insn) -> ExecResult {
    let vendor = m.cpuid.vendor();
    // Intel: #UD unless in 64-bit mode with EFER.SCE. AMD: #UD only without EFER.SCE.
    if m.cpu.efer & efer::SCE == 0 {
        return ud();
    }
    if vendor == Vendor::Intel && m.cpu.mode != CpuMode::Long64 {
        return ud();
    }
    let star = msr(m, msr::IA32_STAR);
    let cs_sel = ((star >> 32) as u16) & 0xFFFC;
    let ss_sel = ((star >> 32) as u16).wrapping_add(8);
    let next = m.cpu.rip;
    let rflags = m.cpu.flags.get();
    if lma(m) {
        // Long mode (64-bit, or AMD compatibility mode): RCX = next RIP, R11 = RFLAGS,
        // RIP = LSTAR (64-bit callers) or CSTAR (compatibility-mode callers, AMD).
        let target = if m.cpu.mode == CpuMode::Long64 {
            msr(m, msr::IA32_LSTAR)
        } else {
            msr(m, msr::IA32_CSTAR)
        };
        m.cpu.gpr[1] = next;
        m.cpu.gpr[11] = rflags;
        let fmask = msr(m, msr::IA32_FMASK);
        // APM: "rFLAGS.RF is cleared"; Intel masks with FMASK only.
        let clear = fmask | if vendor == Vendor::Amd { RF } else { 0 };
        m.cpu.flags.set((rflags & !clear) | FIXED1);
        load_cs_ss(m, flat_code(cs_sel, 0, 64), flat_stack(ss_sel, 0));
        m.cpu.rip = target;
    } else {
        // AMD legacy mode: ECX = next EIP, EIP = STAR[31:0], VM, IF and RF cleared.
        m.cpu.gpr[1] = next & 0xFFFF_FFFF;
        m.cpu.flags.set((rflags & !(VM | IF | RF)) | FIXED1);
        load_cs_ss(m, flat_code(cs_sel, 0, 32), flat_stack(ss_sel, 0));
        m.cpu.rip = star & 0xFFFF_FFFF;
    }
    Ok(())
}

fn sysret(m: &mut Machine, i: &Insn) -> ExecResult {
    let vendor = m.cpuid.vendor();
    if m.cpu.efer & efer::SCE == 0 {
        return ud();
    }
    match vendor {
        Vendor::Intel if m.cpu.mode != CpuMode::Long64 => return ud(),
        // APM: #GP(0) outside protected mode.
        Vendor::Amd if matches!(m.cpu.mode, CpuMode::Real | CpuMode::V86) => return gp(0),
        _ => {}
    }
    require_cpl0(m)?;
    let star_hi = (msr(m, msr::IA32_STAR) >> 48) as u16;
    let to64 = i.iced.code() == Code::Sysretq;
    let r11 = m.cpu.gpr[11];
    let rcx = m.cpu.gpr[1];
    if lma(m) {
        let rip = if to64 {
            // Intel checks RCX before changing any state, so the #GP is taken at CPL 0.
            // AMD does not check: the fetch at CPL 3 faults instead. The address is used
            // at once, so it is checked for the current paging mode (48 or, with
            // CR4.LA57, 57 bits; Intel "5-Level Paging and 5-Level EPT" white paper
            // §2.6), not the model's widest.
            if vendor == Vendor::Intel && !m.canonical(rcx) {
                return gp(0);
            }
            rcx
        } else {
            rcx & 0xFFFF_FFFF
        };
        m.cpu.flags.set((r11 & SYSRET_RFLAGS) | FIXED1);
        let (cs_sel, bits) = if to64 { (star_hi.wrapping_add(16), 64) } else { (star_hi, 32) };
        let cs = flat_code(cs_sel | 3, 3, bits);
        let ss_sel = star_hi.wrapping_add(8) | 3;
        let ss = match vendor {
            Vendor::Intel => flat_stack(ss_sel, 3),
            // APM "SYSRET": the SS selector is loaded, its cached attributes are not.
            Vendor::Amd => Segment { selector: ss_sel, ..*m.cpu.seg(SegReg::Ss) },
        };
        load_cs_ss(m, cs, ss);
        m.cpu.rip = rip;
    } else {
        // AMD legacy mode: 32-bit CS from STAR[63:48], IF set, EIP = ECX.
        m.cpu.flags.set_bit(IF, true);
        let ss = Segment { selector: star_hi.wrapping_add(8) | 3, ..*m.cpu.seg(SegReg::Ss) };
        load_cs_ss(m, flat_code(star_hi | 3, 3, 32), ss);
        m.cpu.rip = rcx & 0xFFFF_FFFF;
    }
    Ok(())
}

// ---- SYSENTER / SYSEXIT ----

/// #UD on AMD in long mode (APM Vol. 3 "SYSENTER": "#UD ... in long mode").
fn sysenter_vendor_check(m: &Machine) -> ExecResult {
    if m.cpuid.vendor() == Vendor::Amd && lma(m) {
        return ud();
    }
    Ok(())
}

fn sysenter(m: &mut Machine, _i: &Insn) -> ExecResult {
    sysenter_vendor_check(m)?;
    let cs_msr = msr(m, msr::IA32_SYSENTER_CS) as u16;
    if m.cpu.cr0 & cr0::PE == 0 || cs_msr & 0xFFFC == 0 {
        return gp(0);
    }
    let long = lma(m);
    let (esp, eip) = (msr(m, msr::IA32_SYSENTER_ESP), msr(m, msr::IA32_SYSENTER_EIP));
    let flags = m.cpu.flags.get() & !(VM | IF | RF);
    m.cpu.flags.set(flags);
    let cs_sel = cs_msr & 0xFFFC;
    let cs = flat_code(cs_sel, 0, if long { 64 } else { 32 });
    load_cs_ss(m, cs, flat_stack(cs_sel.wrapping_add(8), 0));
    if long {
        m.cpu.gpr[4] = esp;
        m.cpu.rip = eip;
    } else {
        m.cpu.gpr[4] = esp & 0xFFFF_FFFF;
        m.cpu.rip = eip & 0xFFFF_FFFF;
    }
    Ok(())
}

fn sysexit(m: &mut Machine, i: &Insn) -> ExecResult {
    sysenter_vendor_check(m)?;
    let cs_msr = msr(m, msr::IA32_SYSENTER_CS) as u16;
    if m.cpu.cr0 & cr0::PE == 0 || cs_msr & 0xFFFC == 0 {
        return gp(0);
    }
    require_cpl0(m)?;
    let to64 = i.iced.code() == Code::Sysexitq;
    let (rcx, rdx) = (m.cpu.gpr[1], m.cpu.gpr[2]);
    if to64 {
        // SDM Vol. 2B "SYSEXIT", 64-bit mode exceptions: "#GP(0) If RCX or RDX contains
        // a non-canonical address." (For the current paging mode, as SYSRET.)
        let canonical = |v| m.canonical(v);
        if !canonical(rcx) || !canonical(rdx) {
            return gp(0);
        }
    }
    let (cs_sel, bits) =
        if to64 { (cs_msr.wrapping_add(32), 64) } else { (cs_msr.wrapping_add(16), 32) };
    let cs_sel = cs_sel | 3;
    load_cs_ss(m, flat_code(cs_sel, 3, bits), flat_stack(cs_sel.wrapping_add(8), 3));
    if to64 {
        m.cpu.gpr[4] = rcx;
        m.cpu.rip = rdx;
    } else {
        m.cpu.gpr[4] = rcx & 0xFFFF_FFFF;
        m.cpu.rip = rdx & 0xFFFF_FFFF;
    }
    Ok(())
}
