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
use hvsim_svm_model::VmcbRead;

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
        Mnemonic::Rdpru => rdpru,
        Mnemonic::Rsm => rsm,
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

/// INVLPGA (APM Vol. 3 "INVLPGA"): "invalidates the TLB mapping for the virtual page
/// specified in rAX and the ASID specified in ECX" (rAX by the address size).
///
/// - The front-end TLB holds only the running world's translations (each world switch
///   empties it): it drops the page (global entries included) when ECX names the ASID
///   running now, 0 in the host or the guest's own in a guest that may execute it.
/// - The shadow cache resynchronises that linear address in every context (more than
///   the one ASID asked, which is allowed).
/// - Translations of a guest with nested paging are cached nowhere between its runs.
fn invlpga(m: &mut Machine, i: &Insn) -> ExecResult {
    use crate::machine::mmu_cache::MmuFlush;
    svm_checks(m)?;
    let lin = m.cpu.gpr[0] & crate::cpu::flags::size_mask(i.asize);
    let asid = m.cpu.gpr[1] as u32;
    let running = match m.nested.svm.guest.as_ref() {
        Some(g) => g.vmcb.read(hvsim_svm_model::vmcb::GUEST_ASID, 4) as u32,
        None => 0,
    };
    let pcid = m.cpu.tlb.pcid();
    if asid == running {
        m.cpu.tlb.invalidate_page(lin >> 12, pcid, true);
    }
    m.mmu_flush(MmuFlush::Page { lin, pcid });
    m.cpu.end_block = true;
    Ok(())
}

/// RDPRU (AMD; decoded here beside the SVM instructions, whose intercepts cover it): #UD,
/// as CPUID 8000_0008h EBX[4] RDPRU is not advertised.
fn rdpru(_m: &mut Machine, _i: &Insn) -> ExecResult {
    ud()
}

/// RSM: #UD outside system-management mode (SDM Vol. 2B / APM Vol. 3 "RSM"), which is
/// always the case: hvsim has no SMM. In an SVM guest the RSM intercept comes first.
fn rsm(_m: &mut Machine, _i: &Insn) -> ExecResult {
    ud()
}

/// SKINIT: #UD, as CPUID 8000_0001h ECX.SKINIT is not advertised.
fn skinit(_m: &mut Machine, _i: &Insn) -> ExecResult {
    ud()
}
