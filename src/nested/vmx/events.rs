//! Events at instruction boundaries of a VMX guest (SDM Vol. 3C 26.2 "Other Causes of VM
//! Exits", 26.7 "Features of VMX Non-Root Operation", 27.7 "Special Features of VM
//! Entry") and IDT-vectoring information (28.2.4 "Information for VM Exits That Occur
//! During Event Delivery").
//!
//! Priority at a boundary (SDM Vol. 3A 7.9 "Priority Among Concurrent Exceptions and
//! Interrupts" with the VMX additions of 26.7): trap-like exits of the instruction that
//! just retired (TPR below threshold, then a pending MTF exit), its debug traps, the
//! VMX-preemption timer, NMI-window exiting, an NMI (NMI exiting), interrupt-window exiting, an
//! external interrupt (external-interrupt exiting). Events that do not exit are left to
//! the ordinary delivery through the guest's IDT.

use super::exit::vm_exit;
use super::intercepts::exception_exits;
use super::preemption_timer::PreemptionTimer;
use crate::cpu::fault::{vector, Exception, ExecResult};
use crate::cpu::flags::{IF, TF};
use crate::cpu::interrupt::{Event, EventSource};
use crate::machine::{Machine, StopReason};
use hvsim_vmx_model::controls::{exit as exit_ctl, pin, proc};
use hvsim_vmx_model::exit_info::{InterruptionInfo, InterruptionType};
use hvsim_vmx_model::vmcs_fields as f;
use hvsim_vmx_model::{ExitInfo, VmxExitReason as R};

/// BS (single step) of the pending-debug-exceptions field (SDM Vol. 3C 25.4.2 Table
/// 25-4 "Format of Pending-Debug-Exceptions").
pub const PENDING_DEBUG_BS: u64 = 1 << 14;

/// The VM-exit interruption-information type of an event source.
pub fn interruption_type(source: EventSource) -> InterruptionType {
    match source {
        EventSource::External => InterruptionType::ExternalInterrupt,
        EventSource::Nmi => InterruptionType::Nmi,
        EventSource::Exception => InterruptionType::HardwareException,
        EventSource::Software => InterruptionType::SoftwareInterrupt,
        EventSource::SoftwareException => InterruptionType::SoftwareException,
        EventSource::Icebp => InterruptionType::PrivilegedSoftwareException,
    }
}

/// An event in the interruption-information format, with its error code.
pub fn encode_event(ev: &Event) -> (u32, u32) {
    let info =
        InterruptionInfo::new(ev.vector, interruption_type(ev.source), ev.error_code.is_some());
    (info.encode(), ev.error_code.unwrap_or(0))
}

/// Called before an event is delivered in the guest: an exit during its delivery
/// records it as IDT-vectoring information.
pub(crate) fn delivering(m: &mut Machine, ev: &Event) {
    if m.nested.vmx.non_root {
        m.nested.vmx.vectoring = Some(encode_event(ev));
    }
}

/// Starts the VMX-preemption timer and the MTF and PAUSE-loop state at VM entry (27.7).
pub(crate) fn on_entry(m: &mut Machine, injected: bool) {
    let s = &m.nested.vmx;
    let timer = s.pin_on(pin::ACTIVATE_PREEMPTION_TIMER).then(|| {
        PreemptionTimer::start(
            m.clock(),
            s.field(f::VMX_PREEMPTION_TIMER_VALUE) as u32,
            s.caps.preemption_timer_rate,
        )
    });
    // 27.7.2 "Monitor Trap Flag": an injected event makes an MTF exit pending before the
    // first guest instruction.
    let mtf_pending = injected && s.proc_on(proc::MONITOR_TRAP_FLAG);
    let count = m.cpu.insn_count;
    let s = &mut m.nested.vmx;
    s.timer = timer;
    s.mtf_pending = mtf_pending;
    // VMLAUNCH/VMRESUME itself retires after this: it does not count.
    s.mtf_since = count + 1;
    s.tpr_check_pending = false;
    s.ple = None;
    s.vectoring = None;
}

/// An exit with no qualification (the pending debug exceptions of trap-like exits are
/// recorded by the guest-state save, `exit::pending_debug_exceptions`).
fn simple_exit(m: &mut Machine, reason: R) {
    vm_exit(m, ExitInfo { reason: u32::from(reason.0), ..ExitInfo::default() });
}

fn timer_expired(m: &Machine) -> bool {
    m.nested.vmx.timer.is_some_and(|t| t.expired(m.clock()))
}

fn mtf_after_insn(m: &Machine) -> bool {
    let s = &m.nested.vmx;
    s.proc_on(proc::MONITOR_TRAP_FLAG) && m.cpu.insn_count > s.mtf_since
}

/// The trap-like exits after a guest instruction retired: TPR below threshold
/// (29.1.2), MTF (26.7.2), then the preemption timer. `true` if one happened.
pub(crate) fn after_insn(m: &mut Machine) -> bool {
    if !m.nested.vmx.non_root {
        return false;
    }
    m.nested.vmx.vectoring = None;
    if std::mem::take(&mut m.nested.vmx.tpr_check_pending) && super::tpr_shadow::below_threshold(m)
    {
        simple_exit(m, R::TPR_BELOW_THRESHOLD);
        return true;
    }
    if mtf_after_insn(m) {
        simple_exit(m, R::MONITOR_TRAP_FLAG);
        return true;
    }
    // A single-step trap of the instruction has priority over the timer (Vol. 3A 7.9:
    // "traps on the previous instruction"): the timer exit then waits for the next
    // boundary, after the #DB delivery.
    if timer_expired(m) && !m.cpu.flags.bit(TF) {
        simple_exit(m, R::PREEMPTION_TIMER);
        return true;
    }
    false
}

/// An exception raised while delivering `ev` in the guest: an exit through the
/// exception bitmap that reports `ev` as IDT-vectoring information (28.2.4), before
/// any combination into #DF. `None` lets the ordinary rules go on.
pub(crate) fn exception_during_delivery(
    m: &mut Machine,
    ev: &Event,
    e: &Exception,
) -> Option<Option<StopReason>> {
    if !m.nested.vmx.non_root || !exception_exits(m, e) {
        return None;
    }
    let (idt_vectoring_info, idt_vectoring_error_code) = encode_event(ev);
    exception_exit(m, e, idt_vectoring_info, idt_vectoring_error_code, 0);
    Some(None)
}

/// An exit with reason 0 for exception `e` (28.2.2: the interruption information, the
/// error code, for #PF the linear address as qualification; for #DB the DR6 bits).
pub(crate) fn exception_exit(
    m: &mut Machine,
    e: &Exception,
    vectoring: u32,
    vectoring_code: u32,
    instruction_length: u32,
) {
    let mut info = InterruptionInfo::new(
        e.vector,
        InterruptionType::HardwareException,
        e.error_code.is_some(),
    )
    .encode();
    // 28.2.2: bit 12 "NMI unblocking due to IRET": the fault came from an IRET that had
    // ended (virtual-)NMI blocking (which stays ended; the VMM restores it before
    // re-executing the IRET). Not for faults during an event delivery.
    if vectoring == 0 && std::mem::take(&mut m.nested.vmx.iret_unblocked_nmi) {
        info |= InterruptionInfo::NMI_UNBLOCKING;
    }
    let qualification = match e.vector {
        vector::PF => e.cr2,
        _ => 0,
    };
    vm_exit(
        m,
        ExitInfo {
            reason: u32::from(R::EXCEPTION_NMI.0),
            qualification,
            interruption_info: info,
            interruption_error_code: e.error_code.unwrap_or(0),
            idt_vectoring_info: vectoring,
            idt_vectoring_error_code: vectoring_code,
            instruction_length,
            ..ExitInfo::default()
        },
    );
}

/// Halted in the guest with the preemption timer running: idle time passes to the
/// timer's expiry unless a device event comes first (the ordinary wait handles that).
fn idle_to_timer(m: &mut Machine) -> bool {
    let Some(t) = m.nested.vmx.timer else {
        return false;
    };
    let now = m.clock();
    let deadline = t.deadline();
    if m.next_device_event <= deadline && m.cpu.flags.bit(IF) {
        return false;
    }
    m.idle += deadline.saturating_sub(now);
    true
}

/// The event check in non-root operation (and after a VMX abort), in the priority
/// order of the module docs. `None` lets the ordinary processing deliver through the
/// guest IDT.
pub fn service_events(m: &mut Machine) -> Option<Result<bool, StopReason>> {
    if let Some(indicator) = m.nested.vmx.abort {
        return Some(Err(StopReason::VmxAbort { indicator }));
    }
    if !m.nested.vmx.non_root {
        return None;
    }
    m.nested.vmx.vectoring = None;
    // Trap-like exits of an instruction that retired with a fault-free stop (HLT,
    // MWAIT), and the MTF exit pending after an injection or a delivered exception.
    if std::mem::take(&mut m.nested.vmx.mtf_pending) {
        simple_exit(m, R::MONITOR_TRAP_FLAG);
        return Some(Ok(false));
    }
    if mtf_after_insn(m) {
        simple_exit(m, R::MONITOR_TRAP_FLAG);
        return Some(Ok(false));
    }
    // 26.5.1: the timer exit also wakes HLT.
    if !timer_expired(m) && m.cpu.halted {
        idle_to_timer(m);
    }
    if timer_expired(m) {
        simple_exit(m, R::PREEMPTION_TIMER);
        return Some(Ok(false));
    }
    let s = &m.nested.vmx;
    let shadowed = m.cpu.insn_count == m.cpu.shadow_at;
    let mov_ss = shadowed && s.shadow_by_mov_ss;
    let virtual_nmis = s.pin_on(pin::VIRTUAL_NMIS);
    // 26.7.6 "NMI-Window Exiting": "a VM exit occurs before execution of any instruction
    // if there is no virtual-NMI blocking and there is no blocking of events by MOV SS"
    // (hvsim also waits out blocking by STI, which the SDM allows).
    if s.proc_on(proc::NMI_WINDOW_EXITING) && !m.cpu.nmi_blocked && !shadowed {
        simple_exit(m, R::NMI_WINDOW);
        return Some(Ok(false));
    }
    // 26.2: an NMI exits with "NMI exiting"; blocking by NMI holds it back only when it
    // is real NMI blocking (virtual NMIs 0).
    if m.cpu.nmi_pending
        && s.pin_on(pin::NMI_EXITING)
        && !mov_ss
        && !(m.cpu.nmi_blocked && !virtual_nmis)
    {
        m.cpu.nmi_pending = false;
        let info = InterruptionInfo::new(vector::NMI, InterruptionType::Nmi, false);
        let e = ExitInfo {
            reason: u32::from(R::EXCEPTION_NMI.0),
            interruption_info: info.encode(),
            ..ExitInfo::default()
        };
        vm_exit(m, e);
        // SDM Vol. 3C 28.5 "Loading Host State", event blocking: "VM exits caused
        // directly by non-maskable interrupts (NMIs) cause blocking by NMI".
        m.cpu.nmi_blocked = true;
        return Some(Ok(false));
    }
    // 26.7.5 "Interrupt-Window Exiting": RFLAGS.IF = 1 and no blocking by STI or MOV SS;
    // it takes priority over external interrupts.
    if s.proc_on(proc::INTERRUPT_WINDOW_EXITING) && m.cpu.flags.bit(IF) && !shadowed {
        simple_exit(m, R::INTERRUPT_WINDOW);
        return Some(Ok(false));
    }
    // With external-interrupt exiting, RFLAGS.IF does not block interrupts (25.3).
    let interrupt_exits = m.interrupt_requested() && s.pin_on(pin::EXTERNAL_INTERRUPT_EXITING);
    if shadowed {
        // Held back by blocking by STI or MOV SS only: run one instruction and look again.
        let window = s.proc_on(proc::INTERRUPT_WINDOW_EXITING) && m.cpu.flags.bit(IF);
        let nmi_window = s.proc_on(proc::NMI_WINDOW_EXITING) && !m.cpu.nmi_blocked;
        if window || nmi_window || interrupt_exits {
            return Some(Ok(true));
        }
    }
    if interrupt_exits && !shadowed {
        let ack = s.field(f::PRIMARY_VM_EXIT_CONTROLS)
            & u64::from(exit_ctl::ACKNOWLEDGE_INTERRUPT_ON_EXIT)
            != 0;
        // 28.2.2: with "acknowledge interrupt on exit" the processor acknowledges the
        // interrupt controller and stores the vector; without it the interrupt stays
        // pending at the controller.
        let vector = if ack {
            match m.cpu.intr.take() {
                Some(v) => Some(v),
                None => m.acknowledge_interrupt(),
            }
        } else {
            None
        };
        if ack && vector.is_none() {
            // The request went away during the acknowledge cycle: no exit.
            return None;
        }
        let interruption_info = vector.map_or(0, |v| {
            InterruptionInfo::new(v, InterruptionType::ExternalInterrupt, false).encode()
        });
        let e = ExitInfo {
            reason: u32::from(R::EXTERNAL_INTERRUPT.0),
            interruption_info,
            ..ExitInfo::default()
        };
        vm_exit(m, e);
        return Some(Ok(false));
    }
    // An NMI or interrupt delivered through L2's IDT under EPT: a violation during the
    // delivery exits with the event as IDT-vectoring information.
    super::ept::service_events(m)
}

/// The length of the instruction being executed (RIP is already past it).
fn current_insn_length(m: &Machine) -> u32 {
    (m.cpu.rip.wrapping_sub(m.insn_rip) & m.cpu.ip_mask()) as u32
}

/// INT3, INTO and INT1 in the guest: a VM exit when the exception bitmap selects their
/// vector (26.2: "exceptions (faults, traps, and aborts) cause VM exits based on the
/// exception bitmap"; INT n never does), with the software-exception (6) or privileged
/// software-exception (5) type and the instruction length (28.2.2, 28.2.5); the saved
/// RIP is the instruction's. Otherwise the event is noted as the one being delivered.
pub(crate) fn software_event(m: &mut Machine, ev: &Event) -> Option<ExecResult> {
    let exits = matches!(ev.source, EventSource::SoftwareException | EventSource::Icebp)
        && exception_exits(m, &Exception::new(ev.vector));
    if !exits {
        delivering(m, ev);
        return None;
    }
    let instruction_length = current_insn_length(m);
    m.cpu.rip = m.insn_rip;
    let (interruption_info, _) = encode_event(ev);
    vm_exit(
        m,
        ExitInfo {
            reason: u32::from(R::EXCEPTION_NMI.0),
            interruption_info,
            instruction_length,
            ..ExitInfo::default()
        },
    );
    Some(Ok(()))
}

/// The instruction length an exit during the delivery of a software interrupt or
/// exception reports (28.2.5: "the VM-exit instruction-length field ... for VM exits
/// that occur during delivery of a software interrupt or software exception").
pub(crate) fn vectoring_insn_length(m: &Machine, insn_len: u8) -> u32 {
    let software = m.nested.vmx.vectoring.is_some_and(|(info, _)| {
        matches!(
            InterruptionInfo::decode(info).kind,
            InterruptionType::SoftwareInterrupt
                | InterruptionType::SoftwareException
                | InterruptionType::PrivilegedSoftwareException
        )
    });
    if software {
        u32::from(insn_len)
    } else {
        0
    }
}

/// A #DB trap of a guest instruction that the exception bitmap selects (bit 1): a VM
/// exit with reason 0 whose qualification holds the DR6-format bits B3-B0, BD and BS;
/// DR6 itself is not written (SDM Vol. 3C 28.2.1 Table 28-1, "Debug exceptions ... the
/// exit qualification ... DR6 is not modified"). The saved RIP is the next
/// instruction's.
pub(crate) fn debug_trap(m: &mut Machine, dr6: u64) -> Option<Option<StopReason>> {
    let db = Exception::new(vector::DB);
    if !exception_exits(m, &db) {
        return None;
    }
    const QUALIFICATION_BITS: u64 = 0xF | 1 << 13 | PENDING_DEBUG_BS;
    let info = InterruptionInfo::new(vector::DB, InterruptionType::HardwareException, false);
    vm_exit(
        m,
        ExitInfo {
            reason: u32::from(R::EXCEPTION_NMI.0),
            qualification: dr6 & QUALIFICATION_BITS,
            interruption_info: info.encode(),
            ..ExitInfo::default()
        },
    );
    Some(None)
}
