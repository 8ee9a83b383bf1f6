//! RDMSR/WRMSR and the instructions that read the instruction-count clock or its
//! auxiliary value: RDTSC, RDTSCP, RDPID (SDM Vol. 2B "RDMSR", "WRMSR", "RDTSC",
//! "RDTSCP", "RDPID"). Which MSRs exist and what values they accept is the table in
//! `cpu::msr`; the side effects are here.

use super::system::{edx_eax, paging_changed, require_cpl0, set_edx_eax};
use crate::cpu::fault::{gp, ud, ExecResult};
use crate::cpu::insn::{gpr_of, Handler, Insn};
use crate::cpu::msr::{self, MsrInfo};
use crate::cpu::regs::{cr4, efer, SegReg};
use crate::cpuid::Feature;
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Rdmsr => rdmsr,
        Mnemonic::Wrmsr => wrmsr,
        Mnemonic::Rdtsc => rdtsc,
        Mnemonic::Rdtscp => rdtscp,
        Mnemonic::Rdpid => rdpid,
        _ => return None,
    })
}

/// A stored MSR value, or its reset value.
fn stored(m: &Machine, info: &MsrInfo) -> u64 {
    m.cpu.msrs.get(&info.index).copied().unwrap_or(info.reset)
}

/// The TSC: the virtual clock (instructions retired by all vCPUs) plus the offset TSC
/// and TSC_ADJUST writes left (kept in `cpu.msrs[IA32_TSC]`).
fn tsc(m: &Machine) -> u64 {
    let off = m.cpu.msrs.get(&msr::IA32_TSC).copied().unwrap_or(0);
    // In an SVM guest the TSC reads include the VMCB's TSC_OFFSET (APM Vol. 2
    // Appendix B Table B-1 "TSC_OFFSET").
    m.clock().wrapping_add(off).wrapping_add(m.nested.tsc_offset())
}

/// Adds `delta` to the TSC.
fn add_to_tsc(m: &mut Machine, delta: u64) {
    let off = m.cpu.msrs.entry(msr::IA32_TSC).or_insert(0);
    *off = off.wrapping_add(delta);
}

/// Whether `n` is a local APIC MSR other than IA32_APIC_BASE that this model has: the
/// x2APIC registers 800H-8FFH with CPUID.1:ECX.x2APIC (SDM Vol. 3A §11.12.1.2), and
/// IA32_TSC_DEADLINE (6E0H) with CPUID.1:ECX.TSC_Deadline (§11.5.4.1). The local APIC
/// model decides the rest: x2APIC registers outside x2APIC mode, read-only and
/// write-only registers and reserved bits are #GP(0) (§11.12.1.3).
fn apic_msr(m: &Machine, n: u32) -> bool {
    use hvsim_devices::lapic::regs;
    if n == regs::IA32_TSC_DEADLINE {
        m.cpuid.has(Feature::TscDeadline)
    } else {
        (regs::X2APIC_MSR_BASE..=regs::X2APIC_MSR_LAST).contains(&n) && m.cpuid.has(Feature::X2apic)
    }
}

/// RDMSR of a local APIC MSR (see [`apic_msr`]), with the devices at the current time.
fn read_apic_msr(m: &mut Machine, n: u32) -> Option<u64> {
    let (vcpu, now) = (m.current_vcpu(), m.now_ns());
    m.platform_mut().lapic_rdmsr(vcpu, n, now).ok()
}

/// Reads an MSR, or `None` if it does not exist on this model.
pub(crate) fn read_msr(m: &Machine, n: u32) -> Option<u64> {
    if apic_msr(m, n) {
        return m.platform().lapics.get(m.current_vcpu())?.rdmsr(n).ok();
    }
    if let Some(v) = crate::nested::svm::msrs::read(m, n) {
        return Some(v);
    }
    if let Some(v) = crate::nested::vmx::read_msr(m, n) {
        return Some(v);
    }
    let info = msr::on_model(&m.cpuid, n)?;
    Some(match n {
        msr::IA32_TSC => tsc(m),
        msr::IA32_EFER => m.cpu.efer,
        msr::IA32_FS_BASE => m.cpu.seg(SegReg::Fs).base,
        msr::IA32_GS_BASE => m.cpu.seg(SegReg::Gs).base,
        // The local APIC keeps IA32_APIC_BASE (its enable bit and page decide where its
        // registers decode, per vCPU).
        msr::IA32_APIC_BASE => m.platform().lapics.get(m.current_vcpu())?.apic_base(),
        _ => stored(m, info),
    })
}

/// The EFER bits software may write on this model (LMA is read-only: writes to it are
/// ignored). APM Vol. 2 §3.1.7 "Extended Feature Enable Register"; SDM Vol. 4 Table 2-2.
fn efer_writable(m: &Machine) -> u64 {
    let has = |f| m.cpuid.has(f);
    (if has(Feature::Syscall) { efer::SCE } else { 0 })
        | (if has(Feature::Lm) { efer::LME } else { 0 })
        | (if has(Feature::Nx) { efer::NXE } else { 0 })
        | (if has(Feature::Svm) { efer::SVME } else { 0 })
}

/// Writes an MSR with its checks; `Err(#GP(0))` for an MSR the model does not have and
/// for a value the MSR does not accept.
pub(crate) fn write_msr(m: &mut Machine, n: u32, v: u64) -> ExecResult {
    if let Some(r) = crate::nested::svm::msrs::write(m, n, v) {
        return r;
    }
    if apic_msr(m, n) {
        let (vcpu, now) = (m.current_vcpu(), m.now_ns());
        let r = m.platform_mut().lapic_wrmsr(vcpu, n, v, now);
        m.after_platform();
        return r.or_else(|_| gp(0));
    }
    let Some(info) = msr::on_model(&m.cpuid, n) else {
        return gp(0);
    };
    let Some(v) = info.rule.apply(&m.cpuid, v) else {
        return gp(0);
    };
    match n {
        msr::IA32_TSC => {
            // SDM Vol. 3B §18.17.3 "Time-Stamp Counter Adjustment": a WRMSR that adds X
            // to the TSC also adds X to IA32_TSC_ADJUST.
            let delta = v.wrapping_sub(tsc(m));
            add_to_tsc(m, delta);
            if m.cpuid.has(Feature::TscAdjust) {
                let adj = m.cpu.msrs.entry(msr::IA32_TSC_ADJUST).or_insert(0);
                *adj = adj.wrapping_add(delta);
            }
        }
        msr::IA32_TSC_ADJUST => {
            // ... and a WRMSR that adds X to IA32_TSC_ADJUST adds X to the TSC.
            let delta = v.wrapping_sub(stored(m, info));
            add_to_tsc(m, delta);
            m.cpu.msrs.insert(n, v);
        }
        msr::IA32_EFER => {
            let writable = efer_writable(m);
            if v & !(writable | efer::LMA) != 0 || crate::nested::svm::msrs::svme_disabled(m, v) {
                return gp(0);
            }
            let old = m.cpu.efer;
            // SDM Vol. 3A §10.8.5 "Initializing IA-32e Mode": changing LME while paging
            // is enabled is #GP(0).
            if (v ^ old) & efer::LME != 0 && m.cpu.paging() {
                return gp(0);
            }
            m.cpu.efer = (v & writable) | (old & efer::LMA);
            paging_changed(m);
        }
        msr::IA32_FS_BASE | msr::IA32_GS_BASE => {
            let s = if n == msr::IA32_FS_BASE { SegReg::Fs } else { SegReg::Gs };
            m.cpu.seg[s as usize].base = v;
        }
        msr::IA32_APIC_BASE => {
            // The base (bits MAXPHYADDR-1:12) and the global enable are writable, and
            // EXTD (x2APIC mode) where x2APIC is advertised; BSP is read-only.
            let extd = if m.cpuid.has(Feature::X2apic) { msr::APIC_BASE_EXTD } else { 0 };
            let writable = msr::APIC_BASE_ADDR | msr::APIC_BASE_EN | extd;
            if v & !(writable | msr::APIC_BASE_BSP) != 0 {
                return gp(0);
            }
            // BSP is read-only: the APIC keeps its own; the disable/enable transitions of
            // SDM Vol. 3A §11.12.5 are the APIC's rules.
            let vcpu = m.current_vcpu();
            let Some(apic) = m.platform_mut().lapics.get_mut(vcpu) else { return gp(0) };
            let bsp = apic.apic_base() & msr::APIC_BASE_BSP;
            if apic.write_apic_base((v & writable) | bsp).is_err() {
                return gp(0);
            }
        }
        msr::IA32_MISC_ENABLE => {
            // Bits not modelled are reserved; the read-only bits ignore writes.
            if v & !(msr::MISC_ENABLE_FAST_STRINGS | msr::MISC_ENABLE_READ_ONLY) != 0 {
                return gp(0);
            }
            let keep = stored(m, info) & msr::MISC_ENABLE_READ_ONLY;
            m.cpu.msrs.insert(n, (v & msr::MISC_ENABLE_FAST_STRINGS) | keep);
        }
        msr::IA32_FEATURE_CONTROL => {
            // SDM Vol. 3C §25.7 "Enabling and Entering VMX Operation": once the lock bit
            // is set, WRMSR to this MSR causes #GP until reset. The VMX enables exist
            // only with VMX (and, inside SMX, with SMX).
            if stored(m, info) & msr::FEATURE_CONTROL_LOCK != 0 {
                return gp(0);
            }
            let has = |f| m.cpuid.has(f);
            let writable = msr::FEATURE_CONTROL_LOCK
                | (if has(Feature::Vmx) { msr::FEATURE_CONTROL_VMX_OUTSIDE_SMX } else { 0 })
                | (if has(Feature::Vmx) && has(Feature::Smx) {
                    msr::FEATURE_CONTROL_VMX_IN_SMX
                } else {
                    0
                });
            if v & !writable != 0 {
                return gp(0);
            }
            m.cpu.msrs.insert(n, v);
        }
        _ => {
            m.cpu.msrs.insert(n, v);
        }
    }
    Ok(())
}

fn rdmsr(m: &mut Machine, _i: &Insn) -> ExecResult {
    require_cpl0(m)?;
    let n = m.cpu.gpr[1] as u32;
    let v = if apic_msr(m, n) { read_apic_msr(m, n) } else { read_msr(m, n) };
    match v {
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

// ---- RDTSC / RDTSCP / RDPID ----

fn rdtsc(m: &mut Machine, _i: &Insn) -> ExecResult {
    // #GP(0) if CR4.TSD = 1 and CPL > 0.
    if m.cpu.cr4 & cr4::TSD != 0 && m.cpu.cpl != 0 {
        return gp(0);
    }
    let t = tsc(m);
    set_edx_eax(m, t);
    Ok(())
}

/// IA32_TSC_AUX[31:0].
fn tsc_aux(m: &Machine) -> u64 {
    m.cpu.msrs.get(&msr::IA32_TSC_AUX).copied().unwrap_or(0) & 0xFFFF_FFFF
}

fn rdtscp(m: &mut Machine, i: &Insn) -> ExecResult {
    // #UD if CPUID.80000001H:EDX.RDTSCP = 0.
    if !m.cpuid.has(Feature::Rdtscp)
        || crate::nested::vmx::disabled_in_guest(m, hvsim_vmx_model::controls::proc2::ENABLE_RDTSCP)
    {
        return ud();
    }
    rdtsc(m, i)?;
    m.cpu.gpr[1] = tsc_aux(m);
    Ok(())
}

fn rdpid(m: &mut Machine, i: &Insn) -> ExecResult {
    // #UD if CPUID.7H.0:ECX.RDPID = 0. Not privileged. The destination is 64 bits in
    // 64-bit mode and 32 bits elsewhere (zero-extended either way).
    if !m.cpuid.has(Feature::Rdpid) {
        return ud();
    }
    let aux = tsc_aux(m);
    if let Some((idx, _)) = gpr_of(i.iced.op_register(0)) {
        m.cpu.gpr[usize::from(idx & 15)] = aux;
    }
    Ok(())
}
