//! The SVM instructions (APM Vol. 3 "VMRUN", "VMLOAD", "VMSAVE", "VMMCALL", "STGI",
//! "CLGI", "INVLPGA", "SKINIT"; APM Vol. 2 §15.5, §15.17). In a guest they reach these
//! handlers only when not intercepted (the intercept hook runs first).

use super::{state, vmrun};
use crate::cpu::access::MAXPHYADDR;
use crate::cpu::fault::{gp, ud, ExecResult};
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::regs::efer;
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

/// Chooses the handler of an SVM instruction.
pub fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Vmrun => vmrun_insn,
        Mnemonic::Vmload => vmload,
        Mnemonic::Vmsave => vmsave,
        Mnemonic::Vmmcall => vmmcall,
        Mnemonic::Stgi => stgi,
        Mnemonic::Clgi => clgi,
        Mnemonic::Invlpga => invlpga,
        Mnemonic::Skinit => skinit,
        _ => return None,
    })
}

/// The checks every SVM instruction but VMMCALL makes: #UD if EFER.SVME = 0 or in real
/// or virtual-8086 mode, #GP(0) if CPL > 0.
fn svm_checks(m: &Machine) -> ExecResult {
    if m.cpu.efer & efer::SVME == 0 || matches!(m.cpu.mode, CpuMode::Real | CpuMode::V86) {
        return ud();
    }
    if m.cpu.cpl != 0 {
        return gp(0);
    }
    Ok(())
}

/// rAX as a VMCB physical address (the address size picks RAX, EAX or AX): #GP(0) if it
/// is not 4-KiB aligned or beyond the physical-address width.
fn vmcb_address(m: &Machine, i: &Insn) -> Result<u64, crate::cpu::fault::Fault> {
    let pa = m.cpu.gpr[0] & crate::cpu::flags::size_mask(i.asize);
    if pa & 0xFFF != 0 || pa >> MAXPHYADDR != 0 {
        return gp(0);
    }
    Ok(pa)
}

fn vmrun_insn(m: &mut Machine, i: &Insn) -> ExecResult {
    svm_checks(m)?;
    let pa = vmcb_address(m, i)?;
    if m.nested.in_guest() {
        // Unreachable for a guest that passed the VMRUN checks (VMRUN is intercepted).
        return crate::cpu::fault::unsupported("VMRUN in an SVM guest (nested SVM in L2)");
    }
    let at = m.cpu.rip.wrapping_sub(u64::from(i.len)) & m.cpu.ip_mask();
    vmrun::vmrun(m, pa, at)
}

fn vmload(m: &mut Machine, i: &Insn) -> ExecResult {
    svm_checks(m)?;
    let pa = vmcb_address(m, i)?;
    state::vmload(m, pa);
    Ok(())
}

fn vmsave(m: &mut Machine, i: &Insn) -> ExecResult {
    svm_checks(m)?;
    let pa = vmcb_address(m, i)?;
    state::vmsave(m, pa);
    Ok(())
}

/// VMMCALL: "If the VMMCALL instruction is not intercepted, the instruction raises a
/// #UD exception" (also outside a guest).
fn vmmcall(_m: &mut Machine, _i: &Insn) -> ExecResult {
    ud()
}

fn stgi(m: &mut Machine, _i: &Insn) -> ExecResult {
    svm_checks(m)?;
    m.nested.svm.gif = true;
    // Held-pending events may be taken now.
    m.cpu.end_block = true;
    Ok(())
}

fn clgi(m: &mut Machine, _i: &Insn) -> ExecResult {
    svm_checks(m)?;
    m.nested.svm.gif = false;
    m.cpu.end_block = true;
    Ok(())
}

/// INVLPGA: invalidates the mapping of the linear address in rAX for the ASID in ECX.
/// hvsim's TLB is not ASID-tagged and holds only the current context (VMRUN and #VMEXIT
/// flush it, and a guest with nested paging caches its two-dimensional translations
/// nowhere else), so flushing it (more than asked, which is always allowed) is enough.
fn invlpga(m: &mut Machine, _i: &Insn) -> ExecResult {
    svm_checks(m)?;
    m.cpu.tlb.flush();
    m.cpu.end_block = true;
    Ok(())
}

/// SKINIT: #UD, as CPUID 8000_0001h ECX.SKINIT is not advertised.
fn skinit(_m: &mut Machine, _i: &Insn) -> ExecResult {
    ud()
}
