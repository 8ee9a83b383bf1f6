//! Nested virtualization: the state a guest hypervisor (L1) sets up to run its own guests
//! (L2), and the hooks the run loop calls while the vCPU runs one.
//!
//! The run loop asks three questions, each answered by the vendor layer of the CPU
//! model's vendor (`svm` for AMD, `vmx` for Intel):
//!
//! - before an instruction of a nested guest: is it intercepted? ([`intercept_insn`]);
//! - when an instruction or a delivery raises an exception: does L1 intercept it?
//!   ([`on_exception`]);
//! - between instructions: is an interrupt, NMI or virtual interrupt to be taken, held
//!   back by the global interrupt flag, or intercepted? ([`service_events`]).
//!
//! Outside a nested guest and with GIF = 1 every hook answers "not mine", and the
//! ordinary (hot) paths run unchanged.

pub mod svm;
pub mod vmx;

use crate::cpu::fault::Exception;
use crate::cpu::insn::Insn;
use crate::cpuid::Vendor;
use crate::machine::{Machine, StopReason};

/// Nested-virtualization state of the vCPU.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct NestedState {
    /// AMD SVM.
    pub svm: svm::SvmState,
    /// Intel VMX.
    pub vmx: vmx::VmxState,
}

impl NestedState {
    /// The vCPU is running a nested guest (between VMRUN and #VMEXIT).
    #[inline(always)]
    pub fn in_guest(&self) -> bool {
        self.svm.guest.is_some() || self.vmx.non_root
    }

    /// The run loop must ask [`service_events`] before the next block: in a nested guest
    /// (interrupt intercepts, virtual interrupts) or while GIF = 0 (events held pending).
    #[inline(always)]
    pub fn attention(&self) -> bool {
        !self.svm.gif
            || self.svm.guest.is_some()
            || self.svm.held_signal()
            || self.vmx.non_root
            || self.vmx.abort.is_some()
    }

    /// The TSC offset in effect (VMCB TSC_OFFSET in an SVM guest, the VMCS TSC offset in a
    /// VMX guest with "use TSC offsetting", else 0).
    #[inline]
    pub fn tsc_offset(&self) -> u64 {
        self.svm.guest.as_ref().map_or(0, |g| g.tsc_offset).wrapping_add(self.vmx.tsc_offset())
    }
}

/// Called before each instruction of a nested guest, with the instruction's RIP and the
/// RIP after it. Returns `true` if the instruction was intercepted: the #VMEXIT has
/// happened and the vCPU is back in L1.
pub(crate) fn intercept_insn(m: &mut Machine, insn: &Insn, rip: u64, next_rip: u64) -> bool {
    match m.cpuid.vendor() {
        Vendor::Intel => vmx::intercepts::check_insn(m, insn, rip, next_rip),
        Vendor::Amd => svm::intercepts::check_insn(m, insn, rip, next_rip),
    }
}

/// Called after each instruction of a nested guest retired. Returns `true` if a trap
/// intercept (a CR or EFER write trap) exited to L1.
pub(crate) fn after_insn(m: &mut Machine) -> bool {
    match m.cpuid.vendor() {
        Vendor::Intel => vmx::events::after_insn(m),
        Vendor::Amd => svm::intercepts::after_insn(m),
    }
}

/// Called for an exception an instruction (or an instruction fetch) raised in a nested
/// guest. `Some(outcome)` if the nested layer handled it (an intercept, or the delivery
/// whose shutdown L1 intercepts); `None` to deliver it as usual.
pub(crate) fn on_exception(
    m: &mut Machine,
    e: Exception,
    insn: Option<&Insn>,
) -> Option<Option<StopReason>> {
    match m.cpuid.vendor() {
        Vendor::Intel => vmx::intercepts::on_exception(m, e, insn),
        Vendor::Amd => svm::intercepts::on_exception(m, e, insn),
    }
}

/// Called before an event is delivered through the IDT (by the ordinary delivery of
/// exceptions, NMIs and interrupts): a VMX exit during the delivery reports the event as
/// IDT-vectoring information.
#[inline]
pub(crate) fn delivering(m: &mut Machine, ev: &crate::cpu::interrupt::Event) {
    if m.nested.vmx.non_root {
        vmx::events::delivering(m, ev);
    }
}

/// Called when delivering `ev` raised exception `e` in a nested guest, before the
/// #DF/shutdown rules: `Some(outcome)` if the nested layer turned it into an exit.
pub(crate) fn exception_during_delivery(
    m: &mut Machine,
    ev: &crate::cpu::interrupt::Event,
    e: &Exception,
) -> Option<Option<StopReason>> {
    match m.cpuid.vendor() {
        Vendor::Intel => vmx::events::exception_during_delivery(m, ev, e),
        Vendor::Amd => None,
    }
}

/// Called by INT n, INT3, INTO and INT1 before they deliver `ev`: `Some(result)` if the
/// nested layer turned the event into an exit (the VMX exception bitmap selects the
/// software exceptions #BP, #OF and INT1's #DB).
#[inline]
pub(crate) fn software_event(
    m: &mut Machine,
    ev: &crate::cpu::interrupt::Event,
) -> Option<crate::cpu::fault::ExecResult> {
    if !m.nested.vmx.non_root {
        return None;
    }
    vmx::events::software_event(m, ev)
}

/// Called when a task switch starts (after the gate and descriptor privilege checks of
/// its caller): `true` if it exited to L1 instead (VMX task switches exit
/// unconditionally).
#[inline]
pub(crate) fn task_switch_exits(
    m: &mut Machine,
    tss_selector: u16,
    source: crate::cpu::task::TaskSwitchSource,
) -> bool {
    m.nested.vmx.non_root && vmx::intercepts::task_switch(m, tss_selector, source)
}

/// Called for a #DB trap (single step, data or I/O breakpoint, task switch) of a guest
/// instruction, with the DR6 bits it reports, before DR6 is written: `Some(outcome)` if
/// the nested layer turned it into an exit.
#[inline]
pub(crate) fn debug_trap(m: &mut Machine, dr6: u64) -> Option<Option<StopReason>> {
    if !m.nested.vmx.non_root {
        return None;
    }
    vmx::events::debug_trap(m, dr6)
}

/// Called for [`Fault::NestedPageFault`](crate::cpu::fault::Fault::NestedPageFault),
/// with RIP back at the faulting instruction: performs the recorded #VMEXIT.
pub(crate) fn nested_page_fault(m: &mut Machine, insn: Option<&Insn>) -> Option<StopReason> {
    match m.cpuid.vendor() {
        Vendor::Intel => vmx::ept::exit_pending(m, insn, None),
        Vendor::Amd => svm::npt_exit(m, insn, 0),
    };
    None
}

/// Called by the run loop's event check when [`NestedState::attention`] is set.
/// `Some(result)` replaces the ordinary event processing; `None` lets it run.
pub(crate) fn service_events(m: &mut Machine) -> Option<Result<bool, StopReason>> {
    match m.cpuid.vendor() {
        Vendor::Intel => vmx::events::service_events(m),
        Vendor::Amd => svm::events::service_events(m),
    }
}
