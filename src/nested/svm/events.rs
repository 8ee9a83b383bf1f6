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

/// The event check while GIF = 0 or in a guest. `None` lets the ordinary processing run
/// (which delivers to whatever IDT is current: the guest's, in a guest).
pub fn service_events(m: &mut Machine) -> Option<Result<bool, StopReason>> {
    // A nested page fault left by an event delivery that ended without an instruction
    // to roll back (an interrupt delivered through the guest's IDT).
    if super::npt_exit(m, None, 0) {
        return Some(Ok(false));
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
