//! VM exits (SDM Vol. 3C chapter 28 "VM Exits"): recording the exit information (28.2),
//! saving guest state (28.3), loading host state (28.5) and VMX aborts (28.7). A
//! VM-entry failure during or after loading guest state (27.8) uses the same host-state
//! load.

use super::entry::{activity, interruptibility, AR_UNUSABLE};
use crate::cpu::access::MAXPHYADDR;
use crate::cpu::debug::{DR6_BREAKPOINTS, DR6_BS};
use crate::cpu::flags::TF;
use crate::cpu::msr;
use crate::cpu::regs::{attr, cr0, cr4, efer, DescriptorTable, SegReg, Segment};
use crate::machine::Machine;
use hvsim_mmu::Gpa;
use hvsim_vmx_model::controls::{entry as entry_ctl, exit as exit_ctl, pin};
use hvsim_vmx_model::entry_checks::msr_load::{ENTRY_SIZE, IA32_SMM_MONITOR_CTL};
use hvsim_vmx_model::exit_info::InterruptionInfo;
use hvsim_vmx_model::vmcs_fields as f;
use hvsim_vmx_model::{ExitInfo, Vmcs};

/// VMX-abort indicators (SDM Vol. 3C 28.7 "VMX Aborts").
pub mod abort {
    /// Host checking of the PDPTEs failed.
    pub const HOST_PDPTE: u32 = 2;
    /// Saving guest MSRs (the VM-exit MSR-store area) failed.
    pub const GUEST_MSR_SAVE: u32 = 1;
    /// Loading host MSRs failed.
    pub const HOST_MSR_LOAD: u32 = 4;
}

/// The guest segment fields, indexed 0 ES ... 5 GS, 6 LDTR, 7 TR (the encodings are
/// consecutive in steps of 2 in this order, SDM Vol. 3D Appendix B).
pub struct SegFields;

/// See [`SegFields`].
pub const SEG_FIELDS: SegFields = SegFields;

impl SegFields {
    /// (selector, base, limit, access rights) of guest segment `i`.
    pub const fn guest(&self, i: u32) -> (u32, u32, u32, u32) {
        (
            f::GUEST_ES_SELECTOR + 2 * i,
            f::GUEST_ES_BASE + 2 * i,
            f::GUEST_ES_LIMIT + 2 * i,
            f::GUEST_ES_ACCESS_RIGHTS + 2 * i,
        )
    }
}

/// IA32_SMBASE (readable and writable only in SMM).
const IA32_SMBASE: u32 = 0x9E;

/// DR7 after a VM exit (28.5.1: "DR7 is set to 400H").
const DR7_EXIT: u64 = 0x400;

/// Performs a VM exit from non-root operation with `info` (reason, qualification,
/// lengths, interruption information). The guest RIP saved is the vCPU's RIP: the
/// instruction that exited, the faulting instruction, or the next one for events.
pub fn vm_exit(m: &mut Machine, info: ExitInfo) {
    if !m.nested.vmx.non_root {
        return;
    }
    let Some(mut cur) = m.nested.vmx.current.take() else {
        return;
    };
    let mut info = info;
    // 28.2.4: an exit during the delivery of an event records that event.
    if let (0, Some((vectoring, code))) = (info.idt_vectoring_info, m.nested.vmx.vectoring) {
        info.idt_vectoring_info = vectoring;
        info.idt_vectoring_error_code = code;
    }
    save_guest(m, &mut cur.vmcs, &info);
    // 28.2.x: the valid bit of the VM-entry interruption-information field is cleared.
    let ei = cur.vmcs.get(f::VM_ENTRY_INTERRUPTION_INFO);
    cur.vmcs.set(f::VM_ENTRY_INTERRUPTION_INFO, ei & !u64::from(InterruptionInfo::VALID));
    cur.vmcs.set_exit_info(&info);
    let virtual_nmis = cur.vmcs.get(f::PIN_BASED_CONTROLS) & u64::from(pin::VIRTUAL_NMIS) != 0;
    let pa = cur.pa;
    m.nested.vmx.current = Some(cur);
    let s = &mut m.nested.vmx;
    s.non_root = false;
    s.exits += 1;
    s.timer = None;
    s.mtf_pending = false;
    s.tpr_check_pending = false;
    s.vectoring = None;
    s.ept = None;
    s.pending_ept = None;
    // Blocking by NMI was virtual-NMI blocking in the guest: L1's own returns.
    if virtual_nmis {
        m.cpu.nmi_blocked = m.nested.vmx.host_nmi_blocked;
    }
    // The exit takes the instruction boundary: a single-step trap or a data breakpoint
    // of the guest instruction is not delivered to L1 (the pending-debug-exceptions
    // field holds what the guest had pending).
    m.cpu.delivered = true;
    m.cpu.debug.pending = 0;
    crate::trace::nested::vmx_exit(m, &info);
    // 28.4 "Saving MSRs": the VM-exit MSR-store area, after the guest state.
    if store_guest_msrs(m).is_err() {
        return vmx_abort(m, pa, abort::GUEST_MSR_SAVE);
    }
    load_host(m);
}

/// An MSR that VM exits neither store nor load (SDM Vol. 3C 28.4, 28.6): the x2APIC
/// MSRs (bits 31:8 = 000008H), IA32_SMBASE and IA32_SMM_MONITOR_CTL.
fn msr_area_excluded(index: u32) -> bool {
    index >> 8 == 0x8 || index == IA32_SMBASE || index == IA32_SMM_MONITOR_CTL
}

/// Reads entry `k` of an MSR area (16 bytes: index, reserved bits 63:32, data).
fn msr_area_entry(m: &mut Machine, area: u64, k: u64) -> (u64, u64) {
    let mut e = [0u8; 16];
    m.phys_read(Gpa(area.wrapping_add(ENTRY_SIZE * k)), &mut e);
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&e[..8]);
    hi.copy_from_slice(&e[8..]);
    (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
}

/// 28.4 "Saving MSRs": for each entry of the VM-exit MSR-store area, the MSR's value is
/// stored in the entry's data field; an entry with reserved bits set, an excluded MSR or
/// one RDMSR cannot read fails (a VMX abort).
fn store_guest_msrs(m: &mut Machine) -> Result<(), ()> {
    let count = m.nested.vmx.field(f::VM_EXIT_MSR_STORE_COUNT);
    let area = m.nested.vmx.field(f::VM_EXIT_MSR_STORE_ADDR);
    let max = u64::from(m.nested.vmx.caps.max_msr_list());
    for k in 0..count.min(max + 1) {
        if k == max {
            return Err(());
        }
        let (lo, _) = msr_area_entry(m, area, k);
        let index = lo as u32;
        if lo >> 32 != 0 || msr_area_excluded(index) {
            return Err(());
        }
        let value = crate::cpu::exec::read_msr(m, index).ok_or(())?;
        let at = area.wrapping_add(ENTRY_SIZE * k + 8);
        m.phys_write(Gpa(at), &value.to_le_bytes());
    }
    Ok(())
}

/// A VM-entry failure exit (27.8): exit reason (with bit 31) and qualification, then
/// the host state; the guest state is not saved.
pub fn entry_failure_exit(m: &mut Machine, reason: u32, qualification: u64) {
    if let Some(c) = m.nested.vmx.current.as_mut() {
        c.vmcs.set_exit_info(&ExitInfo { reason, qualification, ..ExitInfo::default() });
    }
    load_host(m);
}

/// Access rights of a segment register in the VMCS format.
fn ar_of(s: &Segment, null_is_unusable: bool) -> u64 {
    if s.attr & attr::P == 0 || (null_is_unusable && s.selector & !3 == 0 && s.attr == 0) {
        u64::from(s.attr & 0xF0FF) | AR_UNUSABLE
    } else {
        u64::from(s.attr & 0xF0FF)
    }
}

/// Saves the guest state (SDM Vol. 3C 28.3 "Saving Guest State").
fn save_guest(m: &Machine, v: &mut Vmcs, info: &ExitInfo) {
    let c = &m.cpu;
    let exit = v.get(f::PRIMARY_VM_EXIT_CONTROLS) as u32;
    v.set(f::GUEST_CR0, c.cr0);
    v.set(f::GUEST_CR3, c.cr3);
    v.set(f::GUEST_CR4, c.cr4);
    if exit & exit_ctl::SAVE_DEBUG_CONTROLS != 0 {
        v.set(f::GUEST_DR7, c.dr[7]);
    }
    v.set(f::GUEST_RSP, c.gpr[4]);
    v.set(f::GUEST_RIP, c.rip);
    v.set(f::GUEST_RFLAGS, c.flags.get());
    for i in 0..8u32 {
        let s = match i {
            0..=5 => c.seg[i as usize],
            6 => c.ldtr,
            _ => c.tr,
        };
        let (sel, base, limit, ar) = SEG_FIELDS.guest(i);
        v.set(sel, u64::from(s.selector));
        v.set(base, s.base);
        v.set(limit, u64::from(s.limit));
        v.set(ar, ar_of(&s, i != 1));
    }
    v.set(f::GUEST_GDTR_BASE, c.gdtr.base);
    v.set(f::GUEST_GDTR_LIMIT, u64::from(c.gdtr.limit));
    v.set(f::GUEST_IDTR_BASE, c.idtr.base);
    v.set(f::GUEST_IDTR_LIMIT, u64::from(c.idtr.limit));
    let m_msr = |n: u32| c.msrs.get(&n).copied().unwrap_or(0);
    v.set(f::GUEST_IA32_SYSENTER_CS, m_msr(msr::IA32_SYSENTER_CS));
    v.set(f::GUEST_IA32_SYSENTER_ESP, m_msr(msr::IA32_SYSENTER_ESP));
    v.set(f::GUEST_IA32_SYSENTER_EIP, m_msr(msr::IA32_SYSENTER_EIP));
    if exit & exit_ctl::SAVE_IA32_PAT != 0 {
        v.set(f::GUEST_IA32_PAT, c.msrs.get(&msr::IA32_PAT).copied().unwrap_or(msr::PAT_RESET));
    }
    if exit & exit_ctl::SAVE_IA32_EFER != 0 {
        v.set(f::GUEST_IA32_EFER, c.efer);
    }
    // IA32_VMX_MISC[5]: the "IA-32e mode guest" entry control receives EFER.LMA.
    let entry = v.get(f::VM_ENTRY_CONTROLS);
    let lma = u64::from(entry_ctl::IA32E_MODE_GUEST);
    v.set(f::VM_ENTRY_CONTROLS, if c.efer & efer::LMA != 0 { entry | lma } else { entry & !lma });
    let shadow = c.insn_count == c.shadow_at || c.shadow_pending;
    let mut int = 0;
    if shadow {
        int |= if m.nested.vmx.shadow_by_mov_ss {
            interruptibility::MOV_SS
        } else {
            interruptibility::STI
        };
    }
    if c.nmi_blocked {
        int |= interruptibility::NMI;
    }
    v.set(f::GUEST_INTERRUPTIBILITY_STATE, int);
    v.set(f::GUEST_ACTIVITY_STATE, if c.halted { activity::HLT } else { activity::ACTIVE });
    v.set(f::GUEST_PENDING_DEBUG_EXCEPTIONS, pending_debug_exceptions(m, info));
    // 28.3.4: with "save VMX-preemption timer value" the timer's value is saved (0 for
    // an exit caused by its expiry).
    if exit & exit_ctl::SAVE_PREEMPTION_TIMER_VALUE != 0 {
        if let Some(t) = m.nested.vmx.timer {
            v.set(f::VMX_PREEMPTION_TIMER_VALUE, u64::from(t.remaining(m.clock())));
        }
    }
    // With "enable EPT" and PAE paging in use, the PDPTE registers are saved into the
    // guest PDPTE fields (28.3.4 "Saving Non-Register State"; without PAE paging the
    // values saved are undefined and hvsim leaves the fields as they are).
    let pae = c.cr0 & cr0::PG != 0 && c.cr4 & cr4::PAE != 0 && c.efer & efer::LMA == 0;
    if m.nested.vmx.ept.is_some() && pae {
        for (i, p) in c.pdpte.iter().enumerate() {
            v.set(f::GUEST_PDPTE0 + 2 * i as u32, *p);
        }
    }
}

/// The pending-debug-exceptions field a VM exit saves (SDM Vol. 3C 28.3.4 "Saving
/// Non-Register State"): clear, except for exits with reason "TPR below threshold" or
/// "monitor trap flag" and for exits not caused by a debug exception while MOV SS blocks
/// debug exceptions; those record the debug exceptions pending: the matched breakpoints
/// (B3-B0) and BS when RFLAGS.TF = 1 (a single-step trap of the last instruction, or of
/// the MOV SS whose trap is held back).
fn pending_debug_exceptions(m: &Machine, info: &ExitInfo) -> u64 {
    use hvsim_vmx_model::VmxExitReason as R;
    let c = &m.cpu;
    let basic = info.reason as u16;
    let mov_ss = (c.insn_count == c.shadow_at || c.shadow_pending) && m.nested.vmx.shadow_by_mov_ss;
    let debug_exit = basic == R::EXCEPTION_NMI.0
        && InterruptionInfo::decode(info.interruption_info).vector == crate::cpu::fault::vector::DB;
    let records = basic == R::TPR_BELOW_THRESHOLD.0
        || basic == R::MONITOR_TRAP_FLAG.0
        || (mov_ss && !debug_exit);
    if !records {
        return 0;
    }
    let single_step = if c.flags.bit(TF) { DR6_BS } else { 0 };
    (c.debug.pending & DR6_BREAKPOINTS) | single_step
}

/// A host data segment: usable flat (type 3, DPL 0, D/B, G) unless the selector is 0.
fn host_data_segment(selector: u64, base: u64) -> Segment {
    let selector = selector as u16;
    if selector == 0 {
        return Segment { selector, base, limit: 0, attr: 0 };
    }
    Segment {
        selector,
        base,
        limit: 0xFFFF_FFFF,
        attr: attr::P | attr::S | attr::RW | attr::ACCESSED | attr::DB | attr::G,
    }
}

/// Loads the host-state area (SDM Vol. 3C 28.5 "Loading Host State"). A failure here is
/// a VMX abort (28.7).
fn load_host(m: &mut Machine) {
    let Some(cur) = m.nested.vmx.current.take() else {
        return;
    };
    let v = &cur.vmcs;
    let exit = v.get(f::PRIMARY_VM_EXIT_CONTROLS) as u32;
    let host64 = exit & exit_ctl::HOST_ADDRESS_SPACE_SIZE != 0;
    let c = &mut m.cpu;
    // 28.5.1: CR0, CR3, CR4 (CR4.PAE and PCIDE follow the host address-space size),
    // DR7 = 400H, the SYSENTER MSRs, PAT and EFER as the controls say.
    c.cr0 = v.get(f::HOST_CR0) | cr0::ET;
    c.cr3 = v.get(f::HOST_CR3);
    c.cr4 = v.get(f::HOST_CR4) | if host64 { cr4::PAE } else { 0 };
    c.dr[7] = DR7_EXIT;
    c.msrs.insert(msr::IA32_SYSENTER_CS, v.get(f::HOST_IA32_SYSENTER_CS));
    c.msrs.insert(msr::IA32_SYSENTER_ESP, v.get(f::HOST_IA32_SYSENTER_ESP));
    c.msrs.insert(msr::IA32_SYSENTER_EIP, v.get(f::HOST_IA32_SYSENTER_EIP));
    if exit & exit_ctl::LOAD_IA32_PAT != 0 {
        c.msrs.insert(msr::IA32_PAT, v.get(f::HOST_IA32_PAT));
    }
    if exit & exit_ctl::LOAD_IA32_EFER != 0 {
        c.efer = v.get(f::HOST_IA32_EFER);
    }
    // "LMA and LME are loaded with the host address-space size" (even with load EFER).
    if host64 {
        c.efer |= efer::LMA | efer::LME;
    } else {
        c.efer &= !(efer::LMA | efer::LME);
    }
    // 28.5.2: segment registers and descriptor tables.
    let cs_attr = attr::P
        | attr::S
        | attr::CODE
        | attr::RW
        | attr::ACCESSED
        | attr::G
        | if host64 { attr::L } else { attr::DB };
    c.seg[SegReg::Cs as usize] = Segment {
        selector: v.get(f::HOST_CS_SELECTOR) as u16,
        base: 0,
        limit: 0xFFFF_FFFF,
        attr: cs_attr,
    };
    for (s, sel, base) in [
        (SegReg::Es, f::HOST_ES_SELECTOR, None),
        (SegReg::Ss, f::HOST_SS_SELECTOR, None),
        (SegReg::Ds, f::HOST_DS_SELECTOR, None),
        (SegReg::Fs, f::HOST_FS_SELECTOR, Some(f::HOST_FS_BASE)),
        (SegReg::Gs, f::HOST_GS_SELECTOR, Some(f::HOST_GS_BASE)),
    ] {
        let b = base.map_or(0, |e| v.get(e));
        let mut seg = host_data_segment(v.get(sel), b);
        if s == SegReg::Ss && seg.selector == 0 {
            // An unusable SS still has DPL 0 (CPL 0).
            seg.attr = 0;
        }
        c.seg[s as usize] = seg;
    }
    c.tr = Segment {
        selector: v.get(f::HOST_TR_SELECTOR) as u16,
        base: v.get(f::HOST_TR_BASE),
        limit: 0x67,
        attr: attr::P | 0xB,
    };
    c.ldtr = Segment::default();
    c.gdtr = DescriptorTable { base: v.get(f::HOST_GDTR_BASE), limit: 0xFFFF };
    c.idtr = DescriptorTable { base: v.get(f::HOST_IDTR_BASE), limit: 0xFFFF };
    // 28.5.3: RIP, RSP, RFLAGS = 2.
    c.rip = v.get(f::HOST_RIP);
    c.gpr[4] = v.get(f::HOST_RSP);
    c.flags.set(2);
    c.halted = false;
    c.shadow_pending = false;
    c.shadow_at = u64::MAX;
    let pa = cur.pa;
    let pae_legacy = !host64 && c.cr0 & cr0::PG != 0 && c.cr4 & cr4::PAE != 0;
    let cr3 = c.cr3;
    m.nested.vmx.current = Some(cur);
    if pae_legacy {
        // 28.5.4 "Checking and Loading Host Page-Directory-Pointer-Table Entries".
        match hvsim_mmu::paging::load_pdptes(&mut m.mem, cr3, MAXPHYADDR) {
            Some(p) => m.cpu.pdpte = p,
            None => return vmx_abort(m, pa, abort::HOST_PDPTE),
        }
    }
    crate::cpu::exec::paging_changed(m);
    m.cpu.cpl = 0;
    // 28.6 "Loading MSRs": the VM-exit MSR-load area.
    // An entry with reserved bits set, an excluded MSR (28.6: x2APIC MSRs, IA32_SMBASE,
    // IA32_SMM_MONITOR_CTL) or a value WRMSR would refuse is a VMX abort.
    let count = m.nested.vmx.field(f::VM_EXIT_MSR_LOAD_COUNT);
    let area = m.nested.vmx.field(f::VM_EXIT_MSR_LOAD_ADDR);
    let max = u64::from(m.nested.vmx.caps.max_msr_list());
    for k in 0..count.min(max + 1) {
        let (lo, value) = msr_area_entry(m, area, k);
        let index = lo as u32;
        if k == max
            || lo >> 32 != 0
            || msr_area_excluded(index)
            || crate::cpu::exec::write_msr(m, index, value).is_err()
        {
            return vmx_abort(m, pa, abort::HOST_MSR_LOAD);
        }
    }
}

/// A VMX abort: the indicator is written to offset 4 of the current VMCS region and the
/// logical processor stops (SDM Vol. 3C 28.7: "the logical processor enters a VMX-abort
/// state"); the run loop ends with `StopReason::VmxAbort`.
fn vmx_abort(m: &mut Machine, pa: u64, indicator: u32) {
    m.phys_write(Gpa(pa + 4), &indicator.to_le_bytes());
    tracing::error!(target: "hvsim::nested", vmcs = pa, indicator, "VMX abort");
    m.nested.vmx.abort = Some(indicator);
    m.cpu.end_block = true;
}
