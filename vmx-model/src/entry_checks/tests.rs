//! One test per VM-entry check: the baseline VMCS passes; each test changes one thing
//! and asserts the exact [`CheckId`] and failure form (SDM Vol. 3C chapter 27 "VM
//! Entries"; each check's section is in its [`CHECKS`] row).

use super::baseline::{self, valid_long_mode_vmcs, AR_DATA};
use super::*;
use crate::capabilities::{cr, ept_vpid_cap};
use crate::controls::{entry, exit, pin, proc, proc2};
use crate::vmcs::Vmcs;
use crate::vmcs_fields as f;
use proptest::prelude::*;

/// Physical memory for the checks: 64 KiB of zeros; reads beyond fail.
#[derive(Clone)]
struct TestMem {
    bytes: Vec<u8>,
    faulting_msrs: Vec<u32>,
}

impl EntryEnv for TestMem {
    fn read_phys(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        let Ok(a) = usize::try_from(addr) else { return false };
        match self.bytes.get(a..a.saturating_add(buf.len())) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
    fn wrmsr_faults(&mut self, index: u32, _value: u64) -> bool {
        self.faulting_msrs.contains(&index)
    }
}

struct Setup {
    vmcs: Vmcs,
    caps: VmxCapabilities,
    ctx: EntryContext,
    mem: TestMem,
}

impl Setup {
    fn new() -> Setup {
        let caps = VmxCapabilities::hvsim_default();
        Setup {
            vmcs: valid_long_mode_vmcs(&caps),
            caps,
            ctx: EntryContext::hvsim_default(),
            mem: TestMem { bytes: vec![0; 0x10000], faulting_msrs: vec![] },
        }
    }
    fn set(&mut self, e: u32, v: u64) {
        assert!(self.vmcs.set(e, v), "{e:#x}");
    }
    fn or(&mut self, e: u32, bits: u64) {
        self.set(e, self.vmcs.get(e) | bits);
    }
    fn clear(&mut self, e: u32, bits: u64) {
        self.set(e, self.vmcs.get(e) & !bits);
    }
    fn poke(&mut self, addr: usize, bytes: &[u8]) {
        self.mem.bytes[addr..addr + bytes.len()].copy_from_slice(bytes);
    }
    fn run(&mut self) -> Result<EntryPlan, EntryFailure> {
        check_vm_entry(&self.vmcs, &self.caps, &self.ctx, &mut self.mem)
    }
    /// A 32-bit protected-mode guest (IA-32e mode guest 0, CS not 64-bit).
    fn legacy_guest(&mut self) {
        self.clear(f::VM_ENTRY_CONTROLS, u64::from(entry::IA32E_MODE_GUEST));
        self.set(f::GUEST_CS_ACCESS_RIGHTS, 0xC09B);
    }
    /// A virtual-8086 guest: RFLAGS.VM, bases = selector << 4, limits 0xFFFF, AR 0xF3.
    fn v86_segments(&mut self) {
        self.or(f::GUEST_RFLAGS, 1 << 17);
        for i in 0..6 {
            let sel = self.vmcs.get(f::GUEST_ES_SELECTOR + 2 * i);
            self.set(f::GUEST_ES_BASE + 2 * i, sel << 4);
            self.set(f::GUEST_ES_LIMIT + 2 * i, 0xFFFF);
            self.set(f::GUEST_ES_ACCESS_RIGHTS + 2 * i, 0xF3);
        }
    }
    fn unrestricted(&mut self) {
        self.or(f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::UNRESTRICTED_GUEST));
    }
    /// An MSR-load area of these (low qword, data) entries at 0x6000.
    fn msr_area(&mut self, entries: &[(u64, u64)]) {
        for (i, (lo, data)) in entries.iter().enumerate() {
            let a = 0x6000 + 16 * i;
            self.poke(a, &lo.to_le_bytes());
            self.poke(a + 8, &data.to_le_bytes());
        }
        self.set(f::VM_ENTRY_MSR_LOAD_ADDR, 0x6000);
        self.set(f::VM_ENTRY_MSR_LOAD_COUNT, entries.len() as u64);
    }
}

/// The failure form each kind of check must produce, written out independently of
/// `EntryFailure::new`.
fn expected_form(id: CheckId, msr_index: u64) -> FailureForm {
    let exit =
        |r: u16, q: u64| FailureForm::ExitFailure { reason: VmxExitReason(r), qualification: q };
    match id.info().kind {
        CheckKind::Control => FailureForm::VmFailValid(VmInstructionError(7)),
        CheckKind::Host => FailureForm::VmFailValid(VmInstructionError(8)),
        CheckKind::Guest => exit(33, 0),
        CheckKind::GuestPdpte => exit(33, 2),
        CheckKind::GuestNmiSti => exit(33, 3),
        CheckKind::GuestLink => exit(33, 4),
        CheckKind::MsrLoad => exit(34, msr_index),
    }
}

fn assert_fails(s: &mut Setup, id: CheckId, msr_index: u64) {
    let got = s.run().expect_err("entry should fail");
    assert_eq!(got.check, id, "{}", got.describe());
    assert_eq!(got.form, expected_form(id, msr_index), "{}", got.describe());
    if let FailureForm::ExitFailure { reason, .. } = got.form {
        assert_eq!(got.form.exit_reason_field(), Some(0x8000_0000 | u32::from(reason.0)));
    }
}

const VALID: u64 = 1 << 31;
const EXT_INT: u64 = VALID | 0x20;
const NMI: u64 = VALID | (2 << 8) | 2;

/// Declares one test per check and the list of checks the tests cover.
macro_rules! check_tests {
    ($( $test:ident: $id:ident $(@ $msr:literal)? => |$s:ident| $body:block )*) => {
        $(
            #[test]
            fn $test() {
                let mut $s = Setup::new();
                $body
                assert_fails(&mut $s, CheckId::$id, 0 $(+ $msr)?);
            }
        )*
        const COVERED: &[CheckId] = &[$(CheckId::$id),*];
    };
}

check_tests! {
    // ---- 27.2.1.1
    pin_reserved: PinControlsReserved => |s| { s.or(f::PIN_BASED_CONTROLS, u64::from(pin::PROCESS_POSTED_INTERRUPTS)); }
    pin_default1_cleared: PinControlsReserved => |s| { s.clear(f::PIN_BASED_CONTROLS, 1 << 1); }
    proc_reserved: ProcControlsReserved => |s| { s.or(f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::ACTIVATE_TERTIARY_CONTROLS)); }
    proc2_reserved: Proc2ControlsReserved => |s| { s.or(f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::VIRTUALIZE_APIC_ACCESSES)); }
    cr3_target_count: Cr3TargetCount => |s| { s.set(f::CR3_TARGET_COUNT, 5); }
    io_bitmap_a: IoBitmapAAddress => |s| {
        s.or(f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_IO_BITMAPS));
        s.set(f::IO_BITMAP_A, 0x1001);
    }
    io_bitmap_b: IoBitmapBAddress => |s| {
        s.or(f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_IO_BITMAPS));
        s.set(f::IO_BITMAP_B, 1 << 40);
    }
    msr_bitmap: MsrBitmapAddress => |s| {
        s.or(f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_MSR_BITMAPS));
        s.set(f::MSR_BITMAP, 0x800);
    }
    virtual_apic: VirtualApicAddress => |s| {
        s.or(f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_TPR_SHADOW));
        s.set(f::VIRTUAL_APIC_PAGE_ADDR, 1 << 52);
    }
    tpr_threshold_reserved: TprThresholdReserved => |s| {
        s.or(f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_TPR_SHADOW));
        s.set(f::VIRTUAL_APIC_PAGE_ADDR, 0x3000);
        s.set(f::TPR_THRESHOLD, 0x10);
    }
    tpr_threshold_above_vtpr: TprThresholdAboveVtpr => |s| {
        s.or(f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_TPR_SHADOW));
        s.set(f::VIRTUAL_APIC_PAGE_ADDR, 0x3000);
        s.poke(0x3080, &[0x20]);
        s.set(f::TPR_THRESHOLD, 3);
    }
    virtual_nmis_without_nmi_exiting: VirtualNmisWithoutNmiExiting => |s| { s.or(f::PIN_BASED_CONTROLS, u64::from(pin::VIRTUAL_NMIS)); }
    nmi_window_without_virtual_nmis: NmiWindowWithoutVirtualNmis => |s| {
        s.or(f::PIN_BASED_CONTROLS, u64::from(pin::NMI_EXITING));
        s.or(f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::NMI_WINDOW_EXITING));
    }
    vpid_zero: VpidZero => |s| { s.set(f::VIRTUAL_PROCESSOR_ID, 0); }
    eptp_memory_type: EptpMemoryType => |s| { s.set(f::EPT_POINTER, (baseline::EPTP & !7) | 1); }
    eptp_walk_length: EptpWalkLength => |s| { s.set(f::EPT_POINTER, (baseline::EPTP & !0x38) | (4 << 3)); }
    eptp_access_dirty: EptpAccessDirty => |s| {
        s.caps.ept_vpid_cap &= !ept_vpid_cap::ACCESS_DIRTY;
        s.or(f::EPT_POINTER, 1 << 6);
    }
    eptp_reserved: EptpReserved => |s| { s.or(f::EPT_POINTER, 1 << 8); }
    eptp_beyond_maxphyaddr: EptpReserved => |s| { s.or(f::EPT_POINTER, 1 << 45); }
    unrestricted_without_ept: UnrestrictedGuestWithoutEpt => |s| {
        s.set(f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::UNRESTRICTED_GUEST | proc2::ENABLE_VPID));
    }
    vmfunc_reserved: VmfuncControlsReserved => |s| {
        s.or(f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::ENABLE_VM_FUNCTIONS));
        s.set(f::VM_FUNCTION_CONTROLS, 2);
    }
    eptp_switching_without_ept: EptpSwitchingWithoutEpt => |s| {
        s.set(f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::ENABLE_VM_FUNCTIONS | proc2::ENABLE_VPID));
        s.set(f::VM_FUNCTION_CONTROLS, 1);
    }
    eptp_list_address: EptpListAddress => |s| {
        s.or(f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::ENABLE_VM_FUNCTIONS));
        s.set(f::VM_FUNCTION_CONTROLS, 1);
        s.set(f::EPTP_LIST_ADDRESS, 0x1008);
    }
    // ---- 27.2.1.2
    exit_reserved: ExitControlsReserved => |s| { s.or(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::LOAD_IA32_PERF_GLOBAL_CTRL)); }
    save_timer_without_timer: SavePreemptionTimerWithoutTimer => |s| { s.or(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::SAVE_PREEMPTION_TIMER_VALUE)); }
    exit_msr_store_area: ExitMsrStoreArea => |s| {
        s.set(f::VM_EXIT_MSR_STORE_COUNT, 1);
        s.set(f::VM_EXIT_MSR_STORE_ADDR, 0x1008);
    }
    exit_msr_load_area: ExitMsrLoadArea => |s| {
        s.set(f::VM_EXIT_MSR_LOAD_COUNT, 2);
        s.set(f::VM_EXIT_MSR_LOAD_ADDR, (1 << 40) - 16);
    }
    // ---- 27.2.1.3
    entry_reserved: EntryControlsReserved => |s| { s.or(f::VM_ENTRY_CONTROLS, u64::from(entry::ENTRY_TO_SMM)); }
    event_type_reserved: EventTypeReserved => |s| { s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (1 << 8)); }
    event_nmi_vector: EventNmiVector => |s| { s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (2 << 8) | 3); }
    event_exception_vector: EventHardwareExceptionVector => |s| { s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (3 << 8) | 32); }
    event_other_vector: EventOtherVector => |s| { s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (7 << 8) | 1); }
    event_error_code_unexpected: EventErrorCodeUnexpected => |s| { s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (1 << 11) | (3 << 8) | 6); }
    event_error_code_real_mode: EventErrorCodeUnexpected => |s| {
        s.unrestricted();
        s.legacy_guest();
        s.set(f::GUEST_CR0, cr::CR0_NE);
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (1 << 11) | (3 << 8) | 13);
    }
    event_error_code_missing: EventErrorCodeMissing => |s| { s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (3 << 8) | 14); }
    event_reserved_bits: EventReservedBits => |s| { s.set(f::VM_ENTRY_INTERRUPTION_INFO, EXT_INT | (1 << 20)); }
    event_error_code_reserved: EventErrorCodeReserved => |s| {
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (1 << 11) | (3 << 8) | 13);
        s.set(f::VM_ENTRY_EXCEPTION_ERROR_CODE, 0x1_0000);
    }
    event_instruction_length: EventInstructionLength => |s| {
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (4 << 8) | 0x80);
        s.set(f::VM_ENTRY_INSTRUCTION_LENGTH, 16);
    }
    event_zero_length_without_misc30: EventInstructionLength => |s| {
        s.caps.zero_length_injection = false;
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (6 << 8) | 3);
    }
    entry_msr_load_area: EntryMsrLoadArea => |s| {
        s.set(f::VM_ENTRY_MSR_LOAD_COUNT, 1);
        s.set(f::VM_ENTRY_MSR_LOAD_ADDR, 0x1004);
    }
    // ---- 27.2.2
    host_cr0_fixed: HostCr0Fixed => |s| { s.clear(f::HOST_CR0, cr::CR0_NE); }
    host_cr0_upper: HostCr0Fixed => |s| { s.or(f::HOST_CR0, 1 << 32); }
    host_cr4_fixed: HostCr4Fixed => |s| { s.clear(f::HOST_CR4, cr::CR4_VMXE); }
    host_cr3_width: HostCr3Width => |s| { s.set(f::HOST_CR3, 1 << 45); }
    host_sysenter_esp: HostSysenterEspCanonical => |s| { s.set(f::HOST_IA32_SYSENTER_ESP, 1 << 60); }
    host_sysenter_eip: HostSysenterEipCanonical => |s| { s.set(f::HOST_IA32_SYSENTER_EIP, 1 << 60); }
    host_pat: HostPat => |s| {
        s.or(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::LOAD_IA32_PAT));
        s.set(f::HOST_IA32_PAT, 0x0606_0606_0606_0602);
    }
    host_efer_reserved: HostEferReserved => |s| {
        s.or(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::LOAD_IA32_EFER));
        s.set(f::HOST_IA32_EFER, EFER_LMA | EFER_LME | 2);
    }
    host_efer_lma: HostEferLma => |s| {
        s.or(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::LOAD_IA32_EFER));
        s.set(f::HOST_IA32_EFER, EFER_LME);
    }
    host_efer_lme: HostEferLme => |s| {
        s.or(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::LOAD_IA32_EFER));
        s.set(f::HOST_IA32_EFER, EFER_LMA);
    }
    // ---- 27.2.3
    host_selector_rpl: HostSelectorRplTi => |s| { s.set(f::HOST_DS_SELECTOR, 0x13); }
    host_selector_ti: HostSelectorRplTi => |s| { s.set(f::HOST_TR_SELECTOR, 0x4C); }
    host_cs_null: HostCsNull => |s| { s.set(f::HOST_CS_SELECTOR, 0); }
    host_tr_null: HostTrNull => |s| { s.set(f::HOST_TR_SELECTOR, 0); }
    host_ss_null: HostSsNull => |s| {
        s.clear(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::HOST_ADDRESS_SPACE_SIZE));
        s.set(f::HOST_SS_SELECTOR, 0);
    }
    host_base_canonical: HostBaseCanonical => |s| { s.set(f::HOST_GS_BASE, 1 << 60); }
    // ---- 27.2.4
    host_legacy_ia32e_guest: HostLegacyIa32eGuest => |s| { s.ctx.host_ia32e = false; }
    host_legacy_address_space: HostLegacyAddressSpaceSize => |s| {
        s.ctx.host_ia32e = false;
        s.clear(f::VM_ENTRY_CONTROLS, u64::from(entry::IA32E_MODE_GUEST));
    }
    host_ia32e_address_space: HostIa32eAddressSpaceSize => |s| {
        s.clear(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::HOST_ADDRESS_SPACE_SIZE));
    }
    host32_pcide: Host32Pcide => |s| {
        s.ctx.host_ia32e = false;
        s.clear(f::VM_ENTRY_CONTROLS, u64::from(entry::IA32E_MODE_GUEST));
        s.clear(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::HOST_ADDRESS_SPACE_SIZE));
        s.or(f::HOST_CR4, cr::CR4_PCIDE);
    }
    host32_rip_high: Host32RipHigh => |s| {
        s.ctx.host_ia32e = false;
        s.clear(f::VM_ENTRY_CONTROLS, u64::from(entry::IA32E_MODE_GUEST));
        s.clear(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::HOST_ADDRESS_SPACE_SIZE));
        s.set(f::HOST_RIP, 1 << 32);
    }
    host64_pae: Host64Pae => |s| { s.clear(f::HOST_CR4, cr::CR4_PAE); }
    host64_rip_canonical: Host64RipCanonical => |s| { s.set(f::HOST_RIP, 1 << 60); }
    // ---- 27.3.1.1
    guest_cr0_fixed: GuestCr0Fixed => |s| { s.clear(f::GUEST_CR0, cr::CR0_NE); }
    guest_cr0_pe_without_unrestricted: GuestCr0Fixed => |s| { s.clear(f::GUEST_CR0, cr::CR0_PE); }
    guest_cr0_pg_without_pe: GuestCr0PgWithoutPe => |s| {
        s.unrestricted();
        s.clear(f::GUEST_CR0, cr::CR0_PE);
    }
    guest_cr4_fixed: GuestCr4Fixed => |s| { s.clear(f::GUEST_CR4, cr::CR4_VMXE); }
    guest_cr4_unsupported_bit: GuestCr4Fixed => |s| { s.or(f::GUEST_CR4, 1); }
    guest_debugctl: GuestDebugctlReserved => |s| {
        s.or(f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_DEBUG_CONTROLS));
        s.set(f::GUEST_IA32_DEBUGCTL, 1 << 2);
    }
    guest_ia32e_without_pg: GuestIa32eWithoutPg => |s| {
        s.unrestricted();
        s.clear(f::GUEST_CR0, cr::CR0_PG);
    }
    guest_ia32e_without_pae: GuestIa32eWithoutPae => |s| { s.clear(f::GUEST_CR4, cr::CR4_PAE); }
    guest_pcide_outside_ia32e: GuestPcideOutsideIa32e => |s| {
        s.legacy_guest();
        s.or(f::GUEST_CR4, cr::CR4_PCIDE);
    }
    guest_cr3_width: GuestCr3Width => |s| { s.set(f::GUEST_CR3, 1 << 40); }
    guest_dr7_high: GuestDr7High => |s| {
        s.or(f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_DEBUG_CONTROLS));
        s.set(f::GUEST_DR7, (1 << 32) | 0x400);
    }
    guest_sysenter_esp: GuestSysenterEspCanonical => |s| { s.set(f::GUEST_IA32_SYSENTER_ESP, 1 << 60); }
    guest_sysenter_eip: GuestSysenterEipCanonical => |s| { s.set(f::GUEST_IA32_SYSENTER_EIP, 1 << 60); }
    guest_pat: GuestPat => |s| {
        s.or(f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_IA32_PAT));
        s.set(f::GUEST_IA32_PAT, 0x0007_0406_0307_0406);
    }
    guest_efer_reserved: GuestEferReserved => |s| {
        s.or(f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_IA32_EFER));
        s.set(f::GUEST_IA32_EFER, EFER_LMA | EFER_LME | 4);
    }
    guest_efer_lma: GuestEferLma => |s| {
        s.or(f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_IA32_EFER));
        s.set(f::GUEST_IA32_EFER, EFER_LME);
    }
    guest_efer_lme: GuestEferLme => |s| {
        s.or(f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_IA32_EFER));
        s.set(f::GUEST_IA32_EFER, EFER_LMA);
    }
    // ---- 27.3.1.2
    guest_tr_ti: GuestTrTi => |s| { s.set(f::GUEST_TR_SELECTOR, 0x4C); }
    guest_ldtr_ti: GuestLdtrTi => |s| {
        s.set(f::GUEST_LDTR_SELECTOR, 0x54);
        s.set(f::GUEST_LDTR_ACCESS_RIGHTS, 0x82);
    }
    guest_ss_rpl: GuestSsRpl => |s| { s.set(f::GUEST_SS_SELECTOR, 0x13); }
    guest_v86_base: GuestV86Base => |s| { s.or(f::GUEST_RFLAGS, 1 << 17); }
    guest_v86_limit: GuestV86Limit => |s| {
        s.v86_segments();
        s.set(f::GUEST_FS_LIMIT, 0xFFFFF);
    }
    guest_v86_access_rights: GuestV86AccessRights => |s| {
        s.v86_segments();
        s.set(f::GUEST_CS_ACCESS_RIGHTS, 0xFB);
    }
    guest_base_canonical: GuestSegmentBaseCanonical => |s| { s.set(f::GUEST_FS_BASE, 1 << 60); }
    guest_ldtr_base_canonical: GuestSegmentBaseCanonical => |s| {
        s.set(f::GUEST_LDTR_SELECTOR, 0x50);
        s.set(f::GUEST_LDTR_ACCESS_RIGHTS, 0x82);
        s.set(f::GUEST_LDTR_BASE, 1 << 60);
    }
    guest_cs_base_high: GuestCsBaseHigh => |s| { s.set(f::GUEST_CS_BASE, 1 << 32); }
    guest_segment_base_high: GuestSegmentBaseHigh => |s| { s.set(f::GUEST_DS_BASE, 1 << 32); }
    guest_cs_type: GuestCsType => |s| { s.set(f::GUEST_CS_ACCESS_RIGHTS, (baseline::AR_CODE64 & !0xF) | 3); }
    guest_ss_type: GuestSsType => |s| { s.set(f::GUEST_SS_ACCESS_RIGHTS, AR_DATA & !2); }
    guest_data_accessed: GuestDataSegmentAccessed => |s| { s.set(f::GUEST_DS_ACCESS_RIGHTS, AR_DATA & !1); }
    guest_code_readable: GuestCodeSegmentReadable => |s| { s.set(f::GUEST_DS_ACCESS_RIGHTS, (AR_DATA & !0xF) | 9); }
    guest_segment_s: GuestSegmentS => |s| { s.set(f::GUEST_ES_ACCESS_RIGHTS, AR_DATA & !0x10); }
    guest_cs_dpl_type3: GuestCsDplType3 => |s| {
        s.unrestricted();
        s.set(f::GUEST_CS_ACCESS_RIGHTS, 0x80F3);
    }
    guest_cs_dpl_nonconforming: GuestCsDplNonConforming => |s| { s.set(f::GUEST_CS_ACCESS_RIGHTS, baseline::AR_CODE64 | 0x60); }
    guest_cs_dpl_conforming: GuestCsDplConforming => |s| { s.set(f::GUEST_CS_ACCESS_RIGHTS, baseline::AR_CODE64 | 0x64); }
    guest_ss_dpl_rpl: GuestSsDplRpl => |s| {
        s.set(f::GUEST_CS_ACCESS_RIGHTS, baseline::AR_CODE64 | 4);
        s.set(f::GUEST_SS_ACCESS_RIGHTS, AR_DATA | 0x60);
    }
    guest_ss_dpl_real_mode: GuestSsDplRealMode => |s| {
        s.unrestricted();
        s.clear(f::VM_ENTRY_CONTROLS, u64::from(entry::IA32E_MODE_GUEST));
        s.set(f::GUEST_CR0, cr::CR0_NE | (1 << 4));
        s.set(f::GUEST_CS_ACCESS_RIGHTS, 0x809F);
        s.set(f::GUEST_SS_ACCESS_RIGHTS, AR_DATA | 0x60);
    }
    guest_data_dpl: GuestDataSegmentDpl => |s| { s.set(f::GUEST_DS_SELECTOR, 0x13); }
    guest_segment_present: GuestSegmentPresent => |s| { s.set(f::GUEST_GS_ACCESS_RIGHTS, AR_DATA & !0x80); }
    guest_tr_present: GuestSegmentPresent => |s| { s.set(f::GUEST_TR_ACCESS_RIGHTS, 0xB); }
    guest_ar_reserved_low: GuestSegmentArReserved => |s| { s.or(f::GUEST_FS_ACCESS_RIGHTS, 0x100); }
    guest_ar_reserved_high: GuestSegmentArReserved => |s| { s.or(f::GUEST_CS_ACCESS_RIGHTS, 1 << 20); }
    guest_cs_long_and_db: GuestCsLongAndDb => |s| { s.or(f::GUEST_CS_ACCESS_RIGHTS, 1 << 14); }
    guest_granularity_g_needed: GuestSegmentGranularity => |s| {
        s.clear(f::GUEST_DS_ACCESS_RIGHTS, 1 << 15);
    }
    guest_granularity_g_forbidden: GuestSegmentGranularity => |s| { s.set(f::GUEST_DS_LIMIT, 0xFFFF0); }
    guest_tr_type: GuestTrType => |s| { s.set(f::GUEST_TR_ACCESS_RIGHTS, 0x83); }
    guest_tr_s: GuestTrS => |s| { s.set(f::GUEST_TR_ACCESS_RIGHTS, 0x9B); }
    guest_tr_unusable: GuestTrUnusable => |s| { s.set(f::GUEST_TR_ACCESS_RIGHTS, 0x1_008B); }
    guest_ldtr_type: GuestLdtrType => |s| {
        s.set(f::GUEST_LDTR_SELECTOR, 0x50);
        s.set(f::GUEST_LDTR_ACCESS_RIGHTS, 0x83);
    }
    guest_ldtr_s: GuestLdtrS => |s| {
        s.set(f::GUEST_LDTR_SELECTOR, 0x50);
        s.set(f::GUEST_LDTR_ACCESS_RIGHTS, 0x92);
    }
    // ---- 27.3.1.3
    guest_gdtr_canonical: GuestDescTableBaseCanonical => |s| { s.set(f::GUEST_GDTR_BASE, 1 << 60); }
    guest_idtr_limit: GuestDescTableLimitHigh => |s| { s.set(f::GUEST_IDTR_LIMIT, 0x1_0000); }
    // ---- 27.3.1.4
    guest_rip_high: GuestRipHigh => |s| {
        s.set(f::GUEST_CS_ACCESS_RIGHTS, 0xC09B);
        s.set(f::GUEST_RIP, 1 << 32);
    }
    guest_rip_canonical: GuestRipCanonical => |s| { s.set(f::GUEST_RIP, 1 << 60); }
    guest_rflags_reserved: GuestRflagsReserved => |s| { s.set(f::GUEST_RFLAGS, 0); }
    guest_rflags_reserved_bit15: GuestRflagsReserved => |s| { s.set(f::GUEST_RFLAGS, 0x8002); }
    guest_rflags_vm: GuestRflagsVm => |s| { s.v86_segments(); }
    guest_rflags_if_ext_int: GuestRflagsIfForExtInt => |s| { s.set(f::VM_ENTRY_INTERRUPTION_INFO, EXT_INT); }
    // ---- 27.3.1.5
    guest_activity_state: GuestActivityState => |s| { s.set(f::GUEST_ACTIVITY_STATE, 4); }
    guest_activity_unsupported: GuestActivityState => |s| {
        s.caps.activity_states = 0b0011;
        s.set(f::GUEST_ACTIVITY_STATE, 2);
    }
    guest_activity_hlt_ss_dpl: GuestActivityHltSsDpl => |s| {
        s.set(f::GUEST_CS_SELECTOR, 0x0B);
        s.set(f::GUEST_SS_SELECTOR, 0x13);
        s.set(f::GUEST_CS_ACCESS_RIGHTS, baseline::AR_CODE64 | 0x60);
        s.set(f::GUEST_SS_ACCESS_RIGHTS, AR_DATA | 0x60);
        s.set(f::GUEST_ACTIVITY_STATE, 1);
    }
    guest_activity_blocking: GuestActivityBlocking => |s| {
        s.set(f::GUEST_RFLAGS, 0x202);
        s.set(f::GUEST_INTERRUPTIBILITY_STATE, 1);
        s.set(f::GUEST_ACTIVITY_STATE, 1);
    }
    guest_activity_injection_sipi: GuestActivityInjection => |s| {
        s.set(f::GUEST_ACTIVITY_STATE, 3);
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, NMI);
    }
    guest_activity_injection_hlt: GuestActivityInjection => |s| {
        s.set(f::GUEST_ACTIVITY_STATE, 1);
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, VALID | (3 << 8) | 6);
    }
    guest_interruptibility_reserved: GuestInterruptibilityReserved => |s| { s.set(f::GUEST_INTERRUPTIBILITY_STATE, 0x10); }
    guest_sti_and_mov_ss: GuestInterruptibilityStiAndMovSs => |s| {
        s.set(f::GUEST_RFLAGS, 0x202);
        s.set(f::GUEST_INTERRUPTIBILITY_STATE, 3);
    }
    guest_sti_if0: GuestInterruptibilityStiIf0 => |s| { s.set(f::GUEST_INTERRUPTIBILITY_STATE, 1); }
    guest_ext_int_blocked: GuestInterruptibilityExtInt => |s| {
        s.set(f::GUEST_RFLAGS, 0x202);
        s.set(f::GUEST_INTERRUPTIBILITY_STATE, 2);
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, EXT_INT);
    }
    guest_nmi_mov_ss: GuestInterruptibilityNmiMovSs => |s| {
        s.set(f::GUEST_INTERRUPTIBILITY_STATE, 2);
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, NMI);
    }
    guest_smi_blocking: GuestInterruptibilitySmi => |s| { s.set(f::GUEST_INTERRUPTIBILITY_STATE, 4); }
    guest_virtual_nmi_blocking: GuestInterruptibilityVirtualNmi => |s| {
        s.or(f::PIN_BASED_CONTROLS, u64::from(pin::NMI_EXITING | pin::VIRTUAL_NMIS));
        s.set(f::GUEST_INTERRUPTIBILITY_STATE, 8);
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, NMI);
    }
    guest_nmi_sti_blocking: GuestNmiInjectionStiBlocking => |s| {
        s.set(f::GUEST_RFLAGS, 0x202);
        s.set(f::GUEST_INTERRUPTIBILITY_STATE, 1);
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, NMI);
    }
    guest_pending_debug_reserved: GuestPendingDebugReserved => |s| { s.set(f::GUEST_PENDING_DEBUG_EXCEPTIONS, 0x10); }
    guest_pending_debug_bs_missing: GuestPendingDebugBsMissing => |s| {
        s.set(f::GUEST_RFLAGS, 0x302);
        s.set(f::GUEST_INTERRUPTIBILITY_STATE, 1);
    }
    guest_pending_debug_bs_set: GuestPendingDebugBsSet => |s| {
        s.set(f::GUEST_ACTIVITY_STATE, 1);
        s.set(f::GUEST_PENDING_DEBUG_EXCEPTIONS, 1 << 14);
    }
    guest_vmcs_link_address: GuestVmcsLinkAddress => |s| { s.set(f::VMCS_LINK_POINTER, 0x1004); }
    guest_vmcs_link_current: GuestVmcsLinkCurrent => |s| {
        s.ctx.current_vmcs = Some(0x7000);
        let rev = s.caps.revision_id;
        s.poke(0x7000, &rev.to_le_bytes());
        s.set(f::VMCS_LINK_POINTER, 0x7000);
    }
    guest_vmcs_link_revision: GuestVmcsLinkRevision => |s| { s.set(f::VMCS_LINK_POINTER, 0x5000); }
    guest_vmcs_link_shadow_bit: GuestVmcsLinkRevision => |s| {
        let rev = s.caps.revision_id | (1 << 31);
        s.poke(0x5000, &rev.to_le_bytes());
        s.set(f::VMCS_LINK_POINTER, 0x5000);
    }
    // ---- 27.3.1.6
    guest_pdpte_vmcs_reserved: GuestPdpteReserved => |s| {
        s.legacy_guest();
        s.set(f::GUEST_PDPTE2, 0x3000 | 1 | (1 << 1));
    }
    guest_pdpte_memory_reserved: GuestPdpteReserved => |s| {
        s.legacy_guest();
        s.clear(f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::ENABLE_EPT));
        s.poke(0x2008, &(0x3000u64 | 1 | (1 << 5)).to_le_bytes());
    }
    // ---- 27.4
    msr_load_too_many: MsrLoadTooMany @ 513 => |s| {
        s.set(f::VM_ENTRY_MSR_LOAD_ADDR, 0x6000);
        s.set(f::VM_ENTRY_MSR_LOAD_COUNT, 513);
        for i in 0..513 {
            s.poke(0x6000 + 16 * i, &0x174u64.to_le_bytes());
        }
    }
    msr_load_reserved: MsrLoadReserved @ 2 => |s| { s.msr_area(&[(0x174, 8), (0x1_0000_0174, 8)]); }
    msr_load_fs_base: MsrLoadFsGsBase @ 1 => |s| { s.msr_area(&[(0xC000_0100, 0)]); }
    msr_load_x2apic: MsrLoadX2apic @ 3 => |s| { s.msr_area(&[(0x174, 8), (0x175, 0), (0x808, 0)]); }
    msr_load_smm_only: MsrLoadSmmOnly @ 1 => |s| { s.msr_area(&[(0x9B, 0)]); }
    msr_load_model_specific: MsrLoadModelSpecific @ 1 => |s| { s.msr_area(&[(0x79, 0)]); }
    msr_load_wrmsr_fault: MsrLoadWrmsrFault @ 2 => |s| {
        s.mem.faulting_msrs.push(0x1234);
        s.msr_area(&[(0x174, 8), (0x1234, 1)]);
    }
}

/// Every check in the table has at least one failing test, and every check runs in the
/// table's order (the enum discriminant indexes CHECKS).
#[test]
fn every_check_is_covered_and_the_table_is_consistent() {
    for (i, c) in CHECKS.iter().enumerate() {
        assert_eq!(c.id as usize, i, "{}", c.name);
        assert!(COVERED.contains(&c.id), "no failing test for {}", c.name);
        assert!(c.section.starts_with("27."), "{}", c.name);
        assert!(!c.text.is_empty() && !c.title.is_empty());
        assert_eq!(CheckId::by_name(c.name), Some(c.id));
    }
    assert!(CHECKS.len() >= 60, "{} checks", CHECKS.len());
}

#[test]
fn baseline_passes() {
    let mut s = Setup::new();
    assert_eq!(s.run(), Ok(EntryPlan::default()));
}

/// SDM Vol. 3C 27.2: controls are checked before host state, host state before guest
/// state.
#[test]
fn controls_before_host_before_guest() {
    let mut s = Setup::new();
    s.clear(f::GUEST_CR0, cr::CR0_NE);
    s.set(f::HOST_CS_SELECTOR, 0);
    s.set(f::CR3_TARGET_COUNT, 9);
    assert_fails(&mut s, CheckId::Cr3TargetCount, 0);
    s.set(f::CR3_TARGET_COUNT, 0);
    assert_fails(&mut s, CheckId::HostCsNull, 0);
    s.set(f::HOST_CS_SELECTOR, 8);
    assert_fails(&mut s, CheckId::GuestCr0Fixed, 0);
}

/// Valid variants: 32-bit PAE guest without EPT (PDPTEs loaded through CR3), a
/// virtual-8086 guest, an unrestricted real-mode guest, injection into HLT, the MSR-load
/// area, a matching VMCS link pointer, the 32-bit host.
#[test]
fn valid_variants_pass() {
    // PAE without EPT: the PDPTEs at CR3 are returned for loading.
    let mut s = Setup::new();
    s.legacy_guest();
    s.clear(f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::ENABLE_EPT));
    s.poke(0x2000, &0x3001u64.to_le_bytes());
    let plan = s.run().expect("PAE guest");
    assert_eq!(plan.pdptes, Some([0x3001, 0, 0, 0]));

    // Virtual-8086 guest (protected mode, 32-bit).
    let mut s = Setup::new();
    s.legacy_guest();
    s.v86_segments();
    assert_eq!(s.run().map(|_| ()), Ok(()));

    // Unrestricted real-mode guest, CS type 3.
    let mut s = Setup::new();
    s.unrestricted();
    s.clear(f::VM_ENTRY_CONTROLS, u64::from(entry::IA32E_MODE_GUEST));
    s.set(f::GUEST_CR0, cr::CR0_NE | (1 << 4));
    s.set(f::GUEST_CS_ACCESS_RIGHTS, 0x8093);
    s.set(f::GUEST_CS_SELECTOR, 0xF000);
    s.set(f::GUEST_CS_BASE, 0xF_0000);
    assert_eq!(s.run().map(|_| ()), Ok(()));

    // HLT with an external interrupt, #MC and with pending MTF.
    for info in [EXT_INT, VALID | (3 << 8) | 18, VALID | (7 << 8)] {
        let mut s = Setup::new();
        s.set(f::GUEST_RFLAGS, 0x202);
        s.set(f::GUEST_ACTIVITY_STATE, 1);
        s.set(f::VM_ENTRY_INTERRUPTION_INFO, info);
        assert_eq!(s.run().map(|_| ()), Ok(()), "{info:#x}");
    }

    // MSR-load area and link pointer.
    let mut s = Setup::new();
    s.msr_area(&[(0x174, 8), (0x277, 0x0007_0406_0007_0406)]);
    let rev = s.caps.revision_id;
    s.poke(0x5000, &rev.to_le_bytes());
    s.set(f::VMCS_LINK_POINTER, 0x5000);
    assert_eq!(s.run().map(|p| p.msrs), Ok(vec![(0x174, 8), (0x277, 0x0007_0406_0007_0406)]));

    // 32-bit host entered from legacy mode.
    let mut s = Setup::new();
    s.ctx.host_ia32e = false;
    s.legacy_guest();
    s.clear(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::HOST_ADDRESS_SPACE_SIZE));
    assert_eq!(s.run().map(|_| ()), Ok(()));
}

#[test]
fn failure_names_the_field_and_describes_itself() {
    let mut s = Setup::new();
    s.set(f::GUEST_GS_ACCESS_RIGHTS, AR_DATA & !0x80);
    let e = s.run().unwrap_err();
    assert_eq!(e.field, Some(f::GUEST_GS_ACCESS_RIGHTS));
    let d = e.describe();
    assert!(d.contains("GuestSegmentPresent") && d.contains("GUEST_GS_ACCESS_RIGHTS"), "{d}");
    assert!(d.contains("27.3.1.2") && d.contains("exit reason 33"), "{d}");
}

/// An arbitrary (field, value) write from the whole encoding space.
fn field_write() -> impl Strategy<Value = (u64, u64)> {
    let known = (0..crate::vmcs_fields::VMCS_FIELDS.len())
        .prop_map(|i| u64::from(crate::vmcs_fields::VMCS_FIELDS[i].encoding));
    (prop_oneof![known, any::<u64>()], any::<u64>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random VMWRITEs never panic, nor do the checks on the result; a VMCS that passes
    /// still passes, with the same plan, after a VMCLEAR/VMPTRLD round trip through the
    /// region format.
    #[test]
    fn random_writes_never_panic_and_passing_vmcs_survive_round_trip(
        writes in proptest::collection::vec(field_write(), 0..6),
        bit_flips in proptest::collection::vec((0usize..crate::vmcs_fields::VMCS_FIELDS.len(), 0u32..64), 0..2),
    ) {
        let mut s = Setup::new();
        for (enc, value) in writes {
            let _ = s.vmcs.write(enc, value, &s.caps);
        }
        for (i, bit) in bit_flips {
            let e = crate::vmcs_fields::VMCS_FIELDS[i].encoding;
            let v = s.vmcs.get(e) ^ (1u64 << bit);
            s.vmcs.set(e, v);
        }
        let first = s.run();
        if let Ok(plan) = first {
            let bytes = s.vmcs.to_region_bytes(s.caps.revision_id, false);
            let back = Vmcs::from_region(&bytes).expect("region");
            prop_assert_eq!(&back, &s.vmcs);
            let again = check_vm_entry(&back, &s.caps, &s.ctx, &mut s.mem);
            prop_assert_eq!(again, Ok(plan));
        }
    }
}

/// Settings the SDM allows must not trip a check: a conforming CS below SS.DPL, a usable
/// LDT, a busy 16-bit TSS outside IA-32e mode, an unusable SS in 64-bit mode, the TRUE
/// controls with CR3 exiting cleared, every allowed control bit at once, a valid EPTP
/// list with VM functions, and an I/O- and MSR-bitmap setup (SDM Vol. 3C 27.2, 27.3).
#[test]
fn allowed_settings_pass() {
    let ok = |s: &mut Setup| {
        let r = s.run();
        assert!(r.is_ok(), "{}", r.unwrap_err().describe());
    };
    let mut s = Setup::new();
    s.set(f::GUEST_CS_ACCESS_RIGHTS, baseline::AR_CODE64 | 4);
    ok(&mut s);

    let mut s = Setup::new();
    s.set(f::GUEST_LDTR_SELECTOR, 0x50);
    s.set(f::GUEST_LDTR_ACCESS_RIGHTS, 0x82);
    s.set(f::GUEST_LDTR_LIMIT, 0xFFF);
    ok(&mut s);

    let mut s = Setup::new();
    s.legacy_guest();
    s.set(f::GUEST_TR_ACCESS_RIGHTS, 0x83);
    ok(&mut s);

    let mut s = Setup::new();
    s.set(f::GUEST_SS_ACCESS_RIGHTS, baseline::AR_UNUSABLE);
    s.set(f::GUEST_SS_SELECTOR, 0);
    ok(&mut s);

    let mut s = Setup::new();
    let all = |caps: &VmxCapabilities, fld| caps.control_caps(fld).may_be_one;
    use crate::controls::ControlField as C;
    let caps = s.caps.clone();
    s.set(f::PIN_BASED_CONTROLS, all(&caps, C::PinBased));
    s.set(f::PRIMARY_PROC_BASED_CONTROLS, all(&caps, C::PrimaryProcessor));
    s.set(f::SECONDARY_PROC_BASED_CONTROLS, all(&caps, C::SecondaryProcessor));
    s.set(f::PRIMARY_VM_EXIT_CONTROLS, all(&caps, C::PrimaryExit));
    s.set(f::VM_ENTRY_CONTROLS, all(&caps, C::Entry));
    s.set(f::VM_FUNCTION_CONTROLS, 1);
    s.set(f::EPTP_LIST_ADDRESS, 0x4000);
    s.set(f::IO_BITMAP_A, 0x8000);
    s.set(f::IO_BITMAP_B, 0x9000);
    s.set(f::MSR_BITMAP, 0xA000);
    s.set(f::VIRTUAL_APIC_PAGE_ADDR, 0xB000);
    s.set(f::CR3_TARGET_COUNT, 4);
    s.set(f::GUEST_IA32_PAT, 0x0007_0406_0007_0406);
    s.set(f::HOST_IA32_PAT, 0x0007_0406_0007_0406);
    s.set(f::GUEST_IA32_EFER, EFER_LMA | EFER_LME);
    s.set(f::HOST_IA32_EFER, EFER_LMA | EFER_LME);
    ok(&mut s);
    // CR3-load/store exiting and the debug-control default1 bits may be cleared.
    s.clear(
        f::PRIMARY_PROC_BASED_CONTROLS,
        u64::from(proc::CR3_LOAD_EXITING | proc::CR3_STORE_EXITING),
    );
    s.clear(f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_DEBUG_CONTROLS));
    s.clear(f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::SAVE_DEBUG_CONTROLS));
    ok(&mut s);
}

#[test]
fn msr_load_failure_reports_the_entry_index() {
    let mut s = Setup::new();
    s.msr_area(&[(0x174, 8), (0x175, 0), (0xC000_0101, 0)]);
    let e = s.run().unwrap_err();
    assert_eq!(e.form.exit_reason_field(), Some(0x8000_0022));
    assert!(e.describe().contains("qualification 3"), "{}", e.describe());
}
