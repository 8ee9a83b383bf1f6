//! VM entry (SDM Vol. 3C chapter 27 "VM Entries"): the checks of the VMLAUNCH/VMRESUME
//! instruction itself (27.1), the checks on controls, host state and guest state
//! (`vmx_model::entry_checks::check_vm_entry`, 27.2-27.4), the guest-state load (27.3.2),
//! and event injection (27.6).

use super::ept::EptContext;
use super::exit::{entry_failure_exit, SEG_FIELDS};
use super::instructions::{fail, fail_invalid, succeed};
use crate::cpu::access::MAXPHYADDR;
use crate::cpu::debug::{DR6_BREAKPOINTS, DR6_BS};
use crate::cpu::fault::{vector, Exception, ExecResult, Fault};
use crate::cpu::interrupt::{Event, EventSource};
use crate::cpu::msr;
use crate::cpu::regs::{attr, cr0, cr4, efer, DescriptorTable, Segment};
use crate::cpuid::Feature;
use crate::machine::Machine;
use hvsim_mmu::Gpa;
use hvsim_vmx_model::controls::{entry as entry_ctl, proc, proc2};
use hvsim_vmx_model::entry_checks::{
    check_vm_entry, EntryContext, EntryEnv, EntryPlan, FailureForm,
};
use hvsim_vmx_model::exit_info::{InterruptionInfo, InterruptionType};
use hvsim_vmx_model::vmcs_fields as f;
use hvsim_vmx_model::{ExitInfo, LaunchState, VmInstructionError, Vmcs, VmxExitReason};

/// Interruptibility-state bits (SDM Vol. 3C 25.4.2 Table 25-3).
pub mod interruptibility {
    /// Blocking by STI.
    pub const STI: u64 = 1 << 0;
    /// Blocking by MOV SS.
    pub const MOV_SS: u64 = 1 << 1;
    /// Blocking by NMI.
    pub const NMI: u64 = 1 << 3;
}

/// Activity states (SDM Vol. 3C 25.4.2).
pub mod activity {
    /// Active.
    pub const ACTIVE: u64 = 0;
    /// HLT.
    pub const HLT: u64 = 1;
}

/// Access-rights bit 16: the segment is unusable.
pub const AR_UNUSABLE: u64 = 1 << 16;

/// What the entry checks read of the machine: L1's physical memory and WRMSR's rules.
struct MachineEnv<'a>(&'a mut Machine);

impl EntryEnv for MachineEnv<'_> {
    fn read_phys(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        if addr >> MAXPHYADDR != 0 {
            return false;
        }
        self.0.phys_read(Gpa(addr), buf);
        true
    }

    fn wrmsr_faults(&mut self, index: u32, value: u64) -> bool {
        match msr::on_model(&self.0.cpuid, index) {
            Some(info) => info.rule.apply(&self.0.cpuid, value).is_none(),
            None => true,
        }
    }
}

/// VMLAUNCH (`launch`) or VMRESUME after the instruction's #UD/#GP checks (SDM Vol. 3C
/// 32.3 "VMLAUNCH/VMRESUME", 27.1 "Basic VM-Entry Checks").
pub fn vm_entry(m: &mut Machine, launch: bool) -> ExecResult {
    let Some(cur) = m.nested.vmx.current.take() else {
        fail_invalid(m);
        crate::trace::nested::vmx_entry_refused(m, launch);
        return Ok(());
    };
    let pa = cur.pa;
    let launched = cur.vmcs.launch_state == LaunchState::Launched;
    m.nested.vmx.current = Some(cur);
    // The shadow of a MOV SS earlier in the same block is still pending.
    let shadowed = m.cpu.insn_count == m.cpu.shadow_at || m.cpu.shadow_pending;
    let mov_ss = shadowed && m.nested.vmx.shadow_by_mov_ss;
    if mov_ss {
        fail(m, VmInstructionError::ENTRY_EVENTS_BLOCKED_BY_MOV_SS);
        crate::trace::nested::vmx_entry_refused(m, launch);
        return Ok(());
    }
    if launch && launched {
        fail(m, VmInstructionError::VMLAUNCH_NON_CLEAR_VMCS);
        crate::trace::nested::vmx_entry_refused(m, launch);
        return Ok(());
    }
    if !launch && !launched {
        fail(m, VmInstructionError::VMRESUME_NON_LAUNCHED_VMCS);
        crate::trace::nested::vmx_entry_refused(m, launch);
        return Ok(());
    }
    let ctx = EntryContext {
        phys_addr_width: MAXPHYADDR,
        linear_addr_width: if m.cpuid.has(Feature::La57) { 57 } else { 48 },
        host_ia32e: m.cpu.efer & efer::LMA != 0,
        current_vmcs: Some(pa),
    };
    let Some(cur) = m.nested.vmx.current.take() else {
        return Ok(());
    };
    let caps = m.nested.vmx.caps.clone();
    let result = check_vm_entry(&cur.vmcs, &caps, &ctx, &mut MachineEnv(m));
    m.nested.vmx.current = Some(cur);
    let plan = match result {
        Ok(plan) => plan,
        Err(e) => {
            // hvsim names the check (stop report, `hvsim::nested` trace).
            crate::trace::nested::vmx_entry_failed(m, pa, launch, &e);
            m.nested.vmx.last_entry_failure = Some(e);
            match e.form {
                FailureForm::VmFailValid(err) => fail(m, err),
                FailureForm::ExitFailure { qualification, .. } => {
                    // 27.8: the exit reason with bit 31, the qualification, host state.
                    let reason = e.form.exit_reason_field().unwrap_or(0);
                    entry_failure_exit(m, reason, qualification);
                }
            }
            return Ok(());
        }
    };
    m.nested.vmx.last_entry_failure = None;
    succeed(m);
    m.nested.vmx.host_nmi_blocked = m.cpu.nmi_blocked;
    // "Enable EPT" (27.2.1.1 checked the EPTP): L2's guest-physical accesses go through
    // the EPT from the guest-state load on.
    let proc2_on = |bit: u32| {
        let s = &m.nested.vmx;
        s.field(f::PRIMARY_PROC_BASED_CONTROLS) & u64::from(proc::ACTIVATE_SECONDARY_CONTROLS) != 0
            && s.field(f::SECONDARY_PROC_BASED_CONTROLS) & u64::from(bit) != 0
    };
    m.nested.vmx.ept = proc2_on(proc2::ENABLE_EPT).then(|| {
        let s = &m.nested.vmx;
        EptContext::new(s.field(f::EPT_POINTER), s.caps.ept_vpid_cap)
    });
    m.nested.vmx.pending_ept = None;
    load_guest(m, &plan);
    if let Some(c) = m.nested.vmx.current.as_mut() {
        c.vmcs.launch_state = LaunchState::Launched;
    }
    m.nested.vmx.non_root = true;
    m.nested.vmx.entries += 1;
    crate::trace::nested::vmx_entry(m, pa, launch);
    let injecting =
        InterruptionInfo::decode(m.nested.vmx.field(f::VM_ENTRY_INTERRUPTION_INFO) as u32).valid;
    super::events::on_entry(m, injecting);
    inject(m)
}

/// Reads a segment register from the guest-state area (`i`: 0 ES ... 5 GS, 6 LDTR,
/// 7 TR). An unusable segment keeps its attributes with P clear.
fn guest_segment(v: &Vmcs, i: u32) -> Segment {
    let (sel, base, limit, ar) = SEG_FIELDS.guest(i);
    let ar_v = v.get(ar);
    let mut a = (ar_v & 0xF0FF) as u16;
    if ar_v & AR_UNUSABLE != 0 {
        a &= !attr::P;
    }
    Segment { selector: v.get(sel) as u16, base: v.get(base), limit: v.get(limit) as u32, attr: a }
}

/// Loads the guest-state area (SDM Vol. 3C 27.3.2 "Loading Guest State").
fn load_guest(m: &mut Machine, plan: &EntryPlan) {
    let Some(cur) = m.nested.vmx.current.take() else {
        return;
    };
    let v = &cur.vmcs;
    let entry = v.get(f::VM_ENTRY_CONTROLS) as u32;
    let c = &mut m.cpu;
    c.cr0 = v.get(f::GUEST_CR0) | cr0::ET;
    c.cr3 = v.get(f::GUEST_CR3);
    c.cr4 = v.get(f::GUEST_CR4);
    if entry & entry_ctl::LOAD_DEBUG_CONTROLS != 0 {
        c.dr[7] = v.get(f::GUEST_DR7);
    }
    // 27.3.2.1: EFER from the field with "load IA32_EFER", else LMA and LME from
    // "IA-32e mode guest".
    if entry & entry_ctl::LOAD_IA32_EFER != 0 {
        c.efer = v.get(f::GUEST_IA32_EFER);
    } else if entry & entry_ctl::IA32E_MODE_GUEST != 0 {
        c.efer |= efer::LMA | efer::LME;
    } else {
        c.efer &= !(efer::LMA | efer::LME);
    }
    if entry & entry_ctl::LOAD_IA32_PAT != 0 {
        c.msrs.insert(msr::IA32_PAT, v.get(f::GUEST_IA32_PAT));
    }
    c.msrs.insert(msr::IA32_SYSENTER_CS, v.get(f::GUEST_IA32_SYSENTER_CS));
    c.msrs.insert(msr::IA32_SYSENTER_ESP, v.get(f::GUEST_IA32_SYSENTER_ESP));
    c.msrs.insert(msr::IA32_SYSENTER_EIP, v.get(f::GUEST_IA32_SYSENTER_EIP));
    for i in 0..6u32 {
        c.seg[i as usize] = guest_segment(v, i);
    }
    c.ldtr = guest_segment(v, 6);
    c.tr = guest_segment(v, 7);
    c.gdtr = DescriptorTable {
        base: v.get(f::GUEST_GDTR_BASE),
        limit: v.get(f::GUEST_GDTR_LIMIT) as u16,
    };
    c.idtr = DescriptorTable {
        base: v.get(f::GUEST_IDTR_BASE),
        limit: v.get(f::GUEST_IDTR_LIMIT) as u16,
    };
    c.rip = v.get(f::GUEST_RIP);
    c.gpr[4] = v.get(f::GUEST_RSP);
    c.flags.set(v.get(f::GUEST_RFLAGS));
    // Interruptibility (27.3.2.5): blocking by STI or MOV SS covers the first guest
    // instruction; blocking by NMI is loaded as is.
    let int = v.get(f::GUEST_INTERRUPTIBILITY_STATE);
    c.shadow_at = u64::MAX;
    if int & (interruptibility::STI | interruptibility::MOV_SS) != 0 {
        c.shadow_pending = true;
    }
    c.nmi_blocked = int & interruptibility::NMI != 0;
    c.halted = v.get(f::GUEST_ACTIVITY_STATE) == activity::HLT;
    if let Some(p) = plan.pdptes {
        c.pdpte = p;
    } else if m.nested.vmx.ept.is_some()
        && c.cr0 & cr0::PG != 0
        && c.cr4 & cr4::PAE != 0
        && c.efer & efer::LMA == 0
    {
        // 27.3.2.4 "Loading Page-Directory-Pointer-Table Entries": with "enable EPT" and
        // PAE paging the PDPTEs come from the guest PDPTE fields.
        c.pdpte = std::array::from_fn(|i| v.get(f::GUEST_PDPTE0 + 2 * i as u32));
    }
    m.nested.vmx.shadow_by_mov_ss = int & interruptibility::MOV_SS != 0;
    let ss_dpl = ((v.get(f::GUEST_SS_ACCESS_RIGHTS) >> 5) & 3) as u8;
    m.nested.vmx.current = Some(cur);
    crate::cpu::exec::paging_changed(m);
    // CPL is SS.DPL (25.4.1 "Guest Register State").
    m.cpu.cpl = ss_dpl;
    // 27.4: the MSR-load area (values the checks accepted).
    for &(index, value) in &plan.msrs {
        let _ = crate::cpu::exec::write_msr(m, index, value);
    }
}

/// Event injection (SDM Vol. 3C 27.6 "Event Injection"): the event of the VM-entry
/// interruption-information field is delivered through the guest IDT after the guest
/// state is loaded. For software interrupts and exceptions the return address is RIP +
/// the VM-entry instruction length.
fn inject(m: &mut Machine) -> ExecResult {
    let raw = m.nested.vmx.field(f::VM_ENTRY_INTERRUPTION_INFO) as u32;
    let info = InterruptionInfo::decode(raw);
    if !info.valid {
        return pending_debug_exception(m);
    }
    let len = m.nested.vmx.field(f::VM_ENTRY_INSTRUCTION_LENGTH);
    let source = match info.kind {
        InterruptionType::ExternalInterrupt => EventSource::External,
        InterruptionType::Nmi => {
            m.cpu.nmi_blocked = true;
            EventSource::Nmi
        }
        InterruptionType::HardwareException => EventSource::Exception,
        InterruptionType::SoftwareInterrupt => EventSource::Software,
        InterruptionType::PrivilegedSoftwareException => EventSource::Icebp,
        InterruptionType::SoftwareException => EventSource::SoftwareException,
        InterruptionType::Reserved | InterruptionType::Other => return Ok(()),
    };
    if matches!(
        info.kind,
        InterruptionType::SoftwareInterrupt
            | InterruptionType::SoftwareException
            | InterruptionType::PrivilegedSoftwareException
    ) {
        m.cpu.rip = m.cpu.rip.wrapping_add(len);
    }
    // An injected event ends HLT (27.6.1: the activity state becomes active).
    m.cpu.halted = false;
    let error_code = info
        .deliver_error_code
        .then(|| m.nested.vmx.field(f::VM_ENTRY_EXCEPTION_ERROR_CODE) as u32);
    let ev = Event { vector: info.vector, source, error_code };
    super::events::delivering(m, &ev);
    match m.deliver(ev) {
        Ok(()) => Ok(()),
        Err(Fault::NestedPageFault) => {
            // The delivery met an EPT violation or misconfiguration: a VM exit with the
            // injected event in the IDT-vectoring information and, for a software event,
            // the VM-entry instruction length (28.2.4 "Information for VM Exits During Event
            // Delivery"); the guest RIP saved is that of the event, not past it.
            let software = matches!(
                info.kind,
                InterruptionType::SoftwareInterrupt
                    | InterruptionType::SoftwareException
                    | InterruptionType::PrivilegedSoftwareException
            );
            if software {
                m.cpu.rip = m.cpu.rip.wrapping_sub(len);
            }
            let idt = (raw, error_code.unwrap_or(0), if software { len as u32 } else { 0 });
            super::ept::exit_pending(m, None, Some(idt));
            Ok(())
        }
        Err(Fault::Exception(e)) => {
            // An exception during the injection that the exception bitmap selects
            // exits with the injected event as IDT-vectoring information (28.2.4).
            if super::events::exception_during_delivery(m, &ev, &e).is_some() {
                return Ok(());
            }
            // Delivered (or turned into #DF or shutdown, or a VM exit through the
            // exception bitmap) by the run loop, in the guest.
            m.cpu.rip_committed = true;
            Err(Fault::Exception(e))
        }
        Err(f) => Err(f),
    }
}

/// SDM Vol. 3C 27.7.3 "Delivery of Pending Debug Exceptions after VM Entry": without
/// event injection and blocking by MOV SS, the B3-B0 and BS bits of the guest's
/// pending-debug-exceptions field become a #DB trap before the first guest instruction.
/// The exception bitmap may turn it into an exit (reason 0, the bits as the exit
/// qualification, 28.2.1); otherwise DR6 receives the bits (B3-B0 replacing the old
/// ones) and the #DB is delivered in the guest, followed by a pending MTF exit.
fn pending_debug_exception(m: &mut Machine) -> ExecResult {
    let bits = m.nested.vmx.field(f::GUEST_PENDING_DEBUG_EXCEPTIONS) & (DR6_BREAKPOINTS | DR6_BS);
    let mov_ss = m.nested.vmx.field(f::GUEST_INTERRUPTIBILITY_STATE) & interruptibility::MOV_SS;
    if bits == 0 || mov_ss != 0 {
        return Ok(());
    }
    let db = Exception::new(vector::DB);
    if super::intercepts::exception_exits(m, &db) {
        let info = InterruptionInfo::new(vector::DB, InterruptionType::HardwareException, false);
        super::exit::vm_exit(
            m,
            ExitInfo {
                reason: u32::from(VmxExitReason::EXCEPTION_NMI.0),
                qualification: bits,
                interruption_info: info.encode(),
                ..ExitInfo::default()
            },
        );
        return Ok(());
    }
    let dr6 = m.cpu.dr[6];
    let dr6 = if bits & DR6_BREAKPOINTS != 0 { dr6 & !DR6_BREAKPOINTS } else { dr6 };
    m.cpu.dr[6] = dr6 | bits;
    // VMLAUNCH/VMRESUME does not retire with the #DB (whose delivery makes an MTF exit
    // pending, see `intercepts::on_exception`).
    m.nested.vmx.mtf_since = m.cpu.insn_count;
    m.cpu.rip_committed = true;
    Err(Fault::from(db))
}
