//! Interrupts, NMI and virtual interrupts around an SVM guest: the global interrupt flag
//! (APM Vol. 2 §15.17), the INTR and NMI intercepts (§15.13 "Interrupt and Local APIC
//! Support"), and V_IRQ with its VINTR intercept (§15.21 "Interrupt and LAPIC Support").

use super::vmexit::{vmexit, ExitInfo};
use super::vmrun::physical_if;
use crate::cpu::flags::IF;
use crate::cpu::interrupt::{Event, EventSource};
use crate::machine::{Machine, StopReason};
use hvsim_svm_model::intercept as icpt;
use hvsim_svm_model::vmcb::{self, bits};
use hvsim_svm_model::{SvmExitCode, VmcbRead};

/// The machine's INIT and SMI for vCPU `i` (called where the platform hands them to
/// the vCPUs, with whether an INIT arrived): returns whether the machine performs the
/// INIT now. While GIF = 0 or in a guest, SVM holds INIT and SMI pending (§15.17
/// "Global Interrupt Flag": "interrupts, NMIs, SMIs and INIT are held pending";
/// §15.13.2 "SMI Intercept" and §15.13.3 "INIT Intercept" decide in a guest), and
/// [`service_events`] takes them when GIF = 1 ([`take_signal`]). The host with GIF = 1
/// takes an INIT at once and an SMI as nothing (hvsim has no SMM).
pub fn init_now(m: &mut Machine, i: usize, init: bool) -> bool {
    if i != m.current_vcpu() || !m.cpuid.has(crate::cpuid::Feature::Svm) {
        return init;
    }
    let smi = m.platform_mut().lapics.get_mut(i).is_some_and(|a| a.take_smi());
    let s = &mut m.nested.svm;
    if !s.gif || s.guest.is_some() {
        s.pending_smi |= smi;
        s.pending_init |= init;
        m.cpu.end_block = true;
        return false;
    }
    init
}

/// GIF = 1 with an SMI or INIT held: SMI first (the higher priority; SDM Vol. 3A Table
/// 6-2 "Priority Among Simultaneous Exceptions and Interrupts" lists SMI before INIT).
/// In a guest that intercepts it, #VMEXIT(SMI) or #VMEXIT(INIT), and the signal stays
/// pending for the host, which holds it with GIF = 0 after the #VMEXIT; otherwise it is
/// taken: an SMI does nothing (no SMM), an INIT resets the vCPU (leaving the guest: the
/// processor's state is the INIT state, SDM Vol. 3A §9.1.1 Table 9-1).
fn take_signal(m: &mut Machine) -> Result<bool, StopReason> {
    let in_guest = |m: &Machine, i| m.nested.svm.guest.as_ref().is_some_and(|g| g.intercepts(i));
    if m.nested.svm.pending_smi {
        if in_guest(m, icpt::INTERCEPT_SMI) {
            vmexit(m, SvmExitCode::SMI, ExitInfo::default());
            return Ok(false);
        }
        m.nested.svm.pending_smi = false;
    }
    if m.nested.svm.pending_init {
        if in_guest(m, icpt::INTERCEPT_INIT) {
            vmexit(m, SvmExitCode::INIT, ExitInfo::default());
            return Ok(false);
        }
        let s = &mut m.nested.svm;
        s.pending_init = false;
        s.guest = None;
        s.pending_trap = None;
        s.pending_npf = None;
        s.pending_exit = None;
        s.vmcb_cache = None;
        let i = m.current_vcpu();
        m.init_vcpu(i);
        // Back to the host's translation context (INIT leaves paging off; nothing of
        // the guest's context is used again unless L1 runs it).
        m.mmu_set_context(super::vmexit::HOST_CONTEXT);
        if let Some(a) = m.platform_mut().lapics.get_mut(i) {
            a.init_reset();
        }
        m.cpu.end_block = true;
    }
    Ok(false)
}

/// The event check while GIF = 0 or in a guest. `None` lets the ordinary processing run
/// (which delivers to whatever IDT is current: the guest's, in a guest).
pub fn service_events(m: &mut Machine) -> Option<Result<bool, StopReason>> {
    // A nested page fault left by an event delivery that ended without an instruction
    // to roll back (an interrupt delivered through the guest's IDT).
    if super::npt_exit(m, None, 0) {
        return Some(Ok(false));
    }
    if m.nested.svm.gif && m.nested.svm.held_signal() {
        return Some(take_signal(m));
    }
    if !m.nested.svm.gif {
        // "When GIF is cleared, ... interrupts, NMIs, SMIs and INIT are held pending"
        // (§15.17). A halted vCPU with GIF = 0 stays halted.
        if m.cpu.halted {
            return Some(Err(StopReason::Halted { interrupts_enabled: false }));
        }
        return Some(Ok(false));
    }
    let ctx = m.nested.svm.guest.as_ref()?;
    let shadowed = m.cpu.insn_count == m.cpu.shadow_at;
    // Physical NMI and INTR first: intercepted, they exit and stay pending for the host.
    if m.cpu.nmi_pending && ctx.intercepts(icpt::INTERCEPT_NMI) {
        vmexit(m, SvmExitCode::NMI, ExitInfo::default());
        return Some(Ok(false));
    }
    if m.interrupt_requested()
        && ctx.intercepts(icpt::INTERCEPT_INTR)
        && physical_if(m, ctx)
        && !shadowed
    {
        vmexit(m, SvmExitCode::INTR, ExitInfo::default());
        return Some(Ok(false));
    }
    // A virtual interrupt is taken when V_IRQ is set, the guest's EFLAGS.IF is set, no
    // interrupt shadow is active, and its priority is above V_TPR unless V_IGN_TPR
    // (§15.21.4 "Injecting Virtual (INTR) Interrupts").
    let vintr = ctx.vmcb.u64_at(vmcb::V_INTR_CONTROL);
    let prio = bits::V_INTR_PRIO.get(vintr);
    let tpr = m.cpu.cr8 & 0xF;
    let above_tpr = bits::V_IGN_TPR.get(vintr) != 0 || prio > tpr;
    if ctx.v_irq && m.cpu.flags.bit(IF) && above_tpr {
        if shadowed {
            return Some(Ok(true));
        }
        if ctx.intercepts(icpt::INTERCEPT_VINTR) {
            vmexit(m, SvmExitCode::VINTR, ExitInfo::default());
            return Some(Ok(false));
        }
        let v = ctx.vmcb.read(vmcb::V_INTR_VECTOR, 1) as u8;
        if let Some(g) = m.nested.svm.guest.as_mut() {
            g.v_irq = false;
        }
        m.cpu.halted = false;
        let ev = Event { vector: v, source: EventSource::External, error_code: None };
        let r = m.raise_event(ev, None);
        let event = hvsim_svm_model::event_injection::Event::new(
            hvsim_svm_model::event_injection::EventType::Intr,
            v,
            None,
        );
        if m.nested.svm.pending_npf.is_some() || m.nested.svm.pending_exit.is_some() {
            // The virtual interrupt was not taken: V_IRQ stays set (§15.21.4).
            if let Some(g) = m.nested.svm.guest.as_mut() {
                g.v_irq = true;
            }
            super::npt_exit(m, None, event.encode());
            return Some(Ok(false));
        }
        return Some(r.map_or(Ok(false), Err));
    }
    None
}
