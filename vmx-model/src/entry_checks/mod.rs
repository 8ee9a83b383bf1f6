//! The checks of a VM entry (SDM Vol. 3C chapter 27 "VM Entries"), as pure functions.
//!
//! [`check_vm_entry`] runs every check in the SDM's order: the VMX controls (27.2.1:
//! [`controls`], [`event_injection`]), the host-state area (27.2.2-27.2.4:
//! [`host_state`]), the guest-state area (27.3.1: [`guest_state`], including the PDPTEs
//! of 27.3.1.6) and the VM-entry MSR-load area (27.4: [`msr_load`]). It reads only the
//! [`Vmcs`], the [`VmxCapabilities`], an [`EntryContext`] (facts about the logical
//! processor) and an [`EntryEnv`] (physical memory for the virtual-APIC page, the VMCS
//! link pointer, the PDPTEs and the MSR-load area; and whether WRMSR would fault).
//!
//! The first failing check is returned as an [`EntryFailure`]: the [`CheckId`] (one
//! variant per check, declared once in the [`CHECKS`] table with its SDM section and a
//! one-line description, for traces, tests and `hvsim explain`), the VMCS field it is
//! about where there is one, and the architectural [`FailureForm`]:
//!
//! - controls: VMfailValid(7) "VM entry with invalid control field(s)";
//! - host state: VMfailValid(8) "VM entry with invalid host-state field(s)";
//! - guest state: a VM-entry failure exit with basic reason 33 and exit qualification 0,
//!   2 (PDPTEs), 3 (NMI injection with blocking by STI) or 4 (VMCS link pointer);
//! - MSR loading: basic reason 34 with the 1-based index of the failing entry.
//!
//! For the failure exits the lead writes `EXIT_REASON` = reason | bit 31
//! ([`FailureForm::exit_reason_field`]) and the qualification, then loads host state
//! (SDM Vol. 3C 27.8 "VM-Entry Failures During or After Loading Guest State").
//!
//! On success [`EntryPlan`] carries what loading guest state needs from memory: the
//! PDPTEs read through CR3 (PAE paging without EPT) and the MSRs to load, in order.

pub mod baseline;
pub mod controls;
pub mod event_injection;
pub mod guest_state;
pub mod host_state;
pub mod msr_load;

use crate::capabilities::VmxCapabilities;
use crate::controls::{entry, exit, pin, proc, proc2};
use crate::exit_reason::{VmxExitReason, EXIT_REASON_ENTRY_FAILURE};
use crate::vm_instruction_error::VmInstructionError;
use crate::vmcs::Vmcs;
use crate::vmcs_fields as f;

/// Facts about the logical processor that the checks depend on.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct EntryContext {
    /// MAXPHYADDR: physical-address fields must not set bits at or above it.
    pub phys_addr_width: u8,
    /// Linear-address width for canonical checks: 57 if the processor supports 5-level
    /// paging, else 48.
    pub linear_addr_width: u8,
    /// IA32_EFER.LMA at the time of VM entry (the host is in IA-32e mode) (27.2.4).
    pub host_ia32e: bool,
    /// The current-VMCS pointer of the VMLAUNCH/VMRESUME, which the VMCS link pointer
    /// must differ from (27.3.1.5); `None` skips that check.
    pub current_vmcs: Option<u64>,
}

impl EntryContext {
    /// hvsim's CPU model: MAXPHYADDR 40, LA57 supported, entered from 64-bit mode.
    pub const fn hvsim_default() -> EntryContext {
        EntryContext {
            phys_addr_width: 40,
            linear_addr_width: 57,
            host_ia32e: true,
            current_vmcs: None,
        }
    }

    /// Whether `addr` sets no bit at or above MAXPHYADDR.
    pub fn phys_ok(&self, addr: u64) -> bool {
        let w = u32::from(self.phys_addr_width.min(64));
        w >= 64 || addr >> w == 0
    }

    /// Whether `addr` is canonical for the linear-address width.
    pub fn canonical(&self, addr: u64) -> bool {
        let w = u32::from(self.linear_addr_width.clamp(32, 64));
        let shift = 64 - w;
        (((addr << shift) as i64) >> shift) as u64 == addr
    }
}

/// What the checks may ask of the machine.
pub trait EntryEnv {
    /// Reads physical memory (L1's physical address space). Returns `false` if the
    /// range is not readable; the checks then see all-ones bytes, as a read of
    /// nonexistent memory returns.
    fn read_phys(&mut self, addr: u64, buf: &mut [u8]) -> bool;
    /// Whether WRMSR of `value` to MSR `index` at CPL 0 would raise #GP (27.4).
    fn wrmsr_faults(&mut self, index: u32, value: u64) -> bool;
}

/// Reads `N` bytes of physical memory, all ones where unreadable.
pub(crate) fn read_bytes<const N: usize>(env: &mut dyn EntryEnv, addr: u64) -> [u8; N] {
    let mut b = [0u8; N];
    if !env.read_phys(addr, &mut b) {
        b = [0xFF; N];
    }
    b
}

/// Reads a little-endian u64 of physical memory.
pub(crate) fn read_u64(env: &mut dyn EntryEnv, addr: u64) -> u64 {
    u64::from_le_bytes(read_bytes::<8>(env, addr))
}

/// Which part of VM entry a check belongs to, which fixes its failure form.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum CheckKind {
    /// 27.2.1 checks on VMX controls: VMfailValid(7).
    Control,
    /// 27.2.2-27.2.4 checks on the host-state area: VMfailValid(8).
    Host,
    /// 27.3.1 checks on the guest-state area: exit reason 33, qualification 0.
    Guest,
    /// 27.3.1.6 PDPTE checks: exit reason 33, qualification 2.
    GuestPdpte,
    /// 27.3.1.5 NMI injection while blocked by STI: exit reason 33, qualification 3.
    GuestNmiSti,
    /// 27.3.1.5 VMCS link pointer: exit reason 33, qualification 4.
    GuestLink,
    /// 27.4 MSR loading: exit reason 34, qualification = 1-based entry index.
    MsrLoad,
}

/// One row of [`CHECKS`].
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct CheckInfo {
    /// The check.
    pub id: CheckId,
    /// Variant name.
    pub name: &'static str,
    /// Failure form class.
    pub kind: CheckKind,
    /// SDM Vol. 3C section number (2023+ numbering, chapter 27 "VM Entries").
    pub section: &'static str,
    /// SDM section title.
    pub title: &'static str,
    /// What the check requires, in one line.
    pub text: &'static str,
}

impl CheckInfo {
    /// Citation, e.g. `SDM Vol. 3C 27.2.1.1 "VM-Execution Control Fields"`.
    pub fn reference(&self) -> String {
        format!("SDM Vol. 3C {} \"{}\"", self.section, self.title)
    }
}

/// Declares every check once: the [`CheckId`] enum and the [`CHECKS`] table (in the same
/// order, which is the order the checks run in).
macro_rules! entry_checks {
    ($( $name:ident = $kind:ident, $section:literal, $title:literal, $text:literal; )*) => {
        /// One VM-entry check. The discriminant indexes [`CHECKS`].
        #[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize)]
        pub enum CheckId {
            $( #[doc = concat!($text, " (SDM Vol. 3C ", $section, " \"", $title, "\").")] $name, )*
        }

        /// Every VM-entry check hvsim performs, in the order they run.
        pub static CHECKS: &[CheckInfo] = &[
            $( CheckInfo {
                id: CheckId::$name,
                name: stringify!($name),
                kind: CheckKind::$kind,
                section: $section,
                title: $title,
                text: $text,
            }, )*
        ];
    };
}

entry_checks! {
    // ---- 27.2.1.1 VM-execution control fields -------------------------------------------
    PinControlsReserved = Control, "27.2.1.1", "VM-Execution Control Fields", "Pin-based controls must be an allowed setting of IA32_VMX_TRUE_PINBASED_CTLS";
    ProcControlsReserved = Control, "27.2.1.1", "VM-Execution Control Fields", "Primary processor-based controls must be an allowed setting of IA32_VMX_TRUE_PROCBASED_CTLS";
    Proc2ControlsReserved = Control, "27.2.1.1", "VM-Execution Control Fields", "With activate secondary controls, the secondary controls must be an allowed setting of IA32_VMX_PROCBASED_CTLS2";
    Cr3TargetCount = Control, "27.2.1.1", "VM-Execution Control Fields", "The CR3-target count must not exceed IA32_VMX_MISC bits 24:16";
    IoBitmapAAddress = Control, "27.2.1.1", "VM-Execution Control Fields", "With use I/O bitmaps, the I/O-bitmap A address must be 4-KByte aligned and within the physical-address width";
    IoBitmapBAddress = Control, "27.2.1.1", "VM-Execution Control Fields", "With use I/O bitmaps, the I/O-bitmap B address must be 4-KByte aligned and within the physical-address width";
    MsrBitmapAddress = Control, "27.2.1.1", "VM-Execution Control Fields", "With use MSR bitmaps, the MSR-bitmap address must be 4-KByte aligned and within the physical-address width";
    VirtualApicAddress = Control, "27.2.1.1", "VM-Execution Control Fields", "With use TPR shadow, the virtual-APIC address must be 4-KByte aligned and within the physical-address width";
    TprThresholdReserved = Control, "27.2.1.1", "VM-Execution Control Fields", "With use TPR shadow and no virtual-interrupt delivery, TPR-threshold bits 31:4 must be 0";
    TprThresholdAboveVtpr = Control, "27.2.1.1", "VM-Execution Control Fields", "With use TPR shadow and no APIC-access virtualization, TPR threshold bits 3:0 must not exceed VTPR bits 7:4";
    VirtualNmisWithoutNmiExiting = Control, "27.2.1.1", "VM-Execution Control Fields", "Virtual NMIs must be 0 if NMI exiting is 0";
    NmiWindowWithoutVirtualNmis = Control, "27.2.1.1", "VM-Execution Control Fields", "NMI-window exiting must be 0 if virtual NMIs is 0";
    VpidZero = Control, "27.2.1.1", "VM-Execution Control Fields", "With enable VPID, the VPID must not be 0000H";
    EptpMemoryType = Control, "27.2.1.1", "VM-Execution Control Fields", "EPTP bits 2:0 must be a memory type IA32_VMX_EPT_VPID_CAP allows (UC or WB)";
    EptpWalkLength = Control, "27.2.1.1", "VM-Execution Control Fields", "EPTP bits 5:3 (page-walk length - 1) must be a supported page-walk length";
    EptpAccessDirty = Control, "27.2.1.1", "VM-Execution Control Fields", "EPTP bit 6 (A/D enable) must be 0 if EPT accessed and dirty flags are not supported";
    EptpReserved = Control, "27.2.1.1", "VM-Execution Control Fields", "EPTP reserved bits 11:7 and bits beyond the physical-address width must be 0";
    UnrestrictedGuestWithoutEpt = Control, "27.2.1.1", "VM-Execution Control Fields", "Unrestricted guest must be 0 if enable EPT is 0";
    VmfuncControlsReserved = Control, "27.2.1.1", "VM-Execution Control Fields", "With enable VM functions, the VM-function controls must be an allowed setting of IA32_VMX_VMFUNC";
    EptpSwitchingWithoutEpt = Control, "27.2.1.1", "VM-Execution Control Fields", "EPTP switching must be 0 if enable EPT is 0";
    EptpListAddress = Control, "27.2.1.1", "VM-Execution Control Fields", "With EPTP switching, the EPTP-list address must be 4-KByte aligned and within the physical-address width";
    // ---- 27.2.1.2 VM-exit control fields --------------------------------------------------
    ExitControlsReserved = Control, "27.2.1.2", "VM-Exit Control Fields", "Primary VM-exit controls must be an allowed setting of IA32_VMX_TRUE_EXIT_CTLS";
    SavePreemptionTimerWithoutTimer = Control, "27.2.1.2", "VM-Exit Control Fields", "Save VMX-preemption timer value must be 0 if activate VMX-preemption timer is 0";
    ExitMsrStoreArea = Control, "27.2.1.2", "VM-Exit Control Fields", "With a nonzero VM-exit MSR-store count, the address must be 16-byte aligned and the area within the physical-address width";
    ExitMsrLoadArea = Control, "27.2.1.2", "VM-Exit Control Fields", "With a nonzero VM-exit MSR-load count, the address must be 16-byte aligned and the area within the physical-address width";
    // ---- 27.2.1.3 VM-entry control fields --------------------------------------------------
    EntryControlsReserved = Control, "27.2.1.3", "VM-Entry Control Fields", "VM-entry controls must be an allowed setting of IA32_VMX_TRUE_ENTRY_CTLS";
    EventTypeReserved = Control, "27.2.1.3", "VM-Entry Control Fields", "The injected interruption type must not be 1 (reserved), nor 7 (other event) without monitor-trap-flag support";
    EventNmiVector = Control, "27.2.1.3", "VM-Entry Control Fields", "An injected NMI must have vector 2";
    EventHardwareExceptionVector = Control, "27.2.1.3", "VM-Entry Control Fields", "An injected hardware exception must have a vector at most 31";
    EventOtherVector = Control, "27.2.1.3", "VM-Entry Control Fields", "An injected other event (type 7) must have vector 0 (pending MTF VM exit)";
    EventErrorCodeUnexpected = Control, "27.2.1.3", "VM-Entry Control Fields", "Deliver error code must be 0 unless the event is a hardware exception that pushes an error code (8, 10-14, 17) in protected mode";
    EventErrorCodeMissing = Control, "27.2.1.3", "VM-Entry Control Fields", "Deliver error code must be 1 for a hardware exception that pushes an error code (8, 10-14, 17) in protected mode";
    EventReservedBits = Control, "27.2.1.3", "VM-Entry Control Fields", "VM-entry interruption-information bits 30:12 must be 0";
    EventErrorCodeReserved = Control, "27.2.1.3", "VM-Entry Control Fields", "With deliver error code, bits 31:16 of the VM-entry exception error code must be 0";
    EventInstructionLength = Control, "27.2.1.3", "VM-Entry Control Fields", "A software interrupt or (privileged) software exception must have an instruction length of 1-15 (0 allowed with IA32_VMX_MISC bit 30)";
    EntryMsrLoadArea = Control, "27.2.1.3", "VM-Entry Control Fields", "With a nonzero VM-entry MSR-load count, the address must be 16-byte aligned and the area within the physical-address width";
    // ---- 27.2.2 host control registers and MSRs ------------------------------------------
    HostCr0Fixed = Host, "27.2.2", "Checks on Host Control Registers, MSRs, and SSP", "Host CR0 must have the bits IA32_VMX_CR0_FIXED0 requires and none IA32_VMX_CR0_FIXED1 forbids";
    HostCr4Fixed = Host, "27.2.2", "Checks on Host Control Registers, MSRs, and SSP", "Host CR4 must have the bits IA32_VMX_CR4_FIXED0 requires and none IA32_VMX_CR4_FIXED1 forbids";
    HostCr3Width = Host, "27.2.2", "Checks on Host Control Registers, MSRs, and SSP", "Host CR3 must not set bits beyond the physical-address width";
    HostSysenterEspCanonical = Host, "27.2.2", "Checks on Host Control Registers, MSRs, and SSP", "Host IA32_SYSENTER_ESP must be canonical";
    HostSysenterEipCanonical = Host, "27.2.2", "Checks on Host Control Registers, MSRs, and SSP", "Host IA32_SYSENTER_EIP must be canonical";
    HostPat = Host, "27.2.2", "Checks on Host Control Registers, MSRs, and SSP", "With load IA32_PAT, every host PAT entry must be a valid memory type (0, 1, 4, 5, 6, 7)";
    HostEferReserved = Host, "27.2.2", "Checks on Host Control Registers, MSRs, and SSP", "With load IA32_EFER, host IA32_EFER reserved bits must be 0";
    HostEferLma = Host, "27.2.2", "Checks on Host Control Registers, MSRs, and SSP", "With load IA32_EFER, host EFER.LMA must equal host address-space size";
    HostEferLme = Host, "27.2.2", "Checks on Host Control Registers, MSRs, and SSP", "With load IA32_EFER, host EFER.LME must equal host address-space size";
    // ---- 27.2.3 host segment and descriptor-table registers -----------------------------
    HostSelectorRplTi = Host, "27.2.3", "Checks on Host Segment and Descriptor-Table Registers", "Host ES, CS, SS, DS, FS, GS and TR selectors must have RPL 0 and TI 0";
    HostCsNull = Host, "27.2.3", "Checks on Host Segment and Descriptor-Table Registers", "The host CS selector must not be 0000H";
    HostTrNull = Host, "27.2.3", "Checks on Host Segment and Descriptor-Table Registers", "The host TR selector must not be 0000H";
    HostSsNull = Host, "27.2.3", "Checks on Host Segment and Descriptor-Table Registers", "The host SS selector must not be 0000H if host address-space size is 0";
    HostBaseCanonical = Host, "27.2.3", "Checks on Host Segment and Descriptor-Table Registers", "Host FS, GS, GDTR, IDTR and TR bases must be canonical";
    // ---- 27.2.4 address-space size --------------------------------------------------------
    HostLegacyIa32eGuest = Host, "27.2.4", "Checks Related to Address-Space Size", "Outside IA-32e mode, the IA-32e mode guest entry control must be 0";
    HostLegacyAddressSpaceSize = Host, "27.2.4", "Checks Related to Address-Space Size", "Outside IA-32e mode, the host address-space size exit control must be 0";
    HostIa32eAddressSpaceSize = Host, "27.2.4", "Checks Related to Address-Space Size", "In IA-32e mode, the host address-space size exit control must be 1";
    Host32Pcide = Host, "27.2.4", "Checks Related to Address-Space Size", "With host address-space size 0, host CR4.PCIDE must be 0";
    Host32RipHigh = Host, "27.2.4", "Checks Related to Address-Space Size", "With host address-space size 0, host RIP bits 63:32 must be 0";
    Host64Pae = Host, "27.2.4", "Checks Related to Address-Space Size", "With host address-space size 1, host CR4.PAE must be 1";
    Host64RipCanonical = Host, "27.2.4", "Checks Related to Address-Space Size", "With host address-space size 1, host RIP must be canonical";
    // ---- 27.3.1.1 guest control registers, debug registers and MSRs ---------------------
    GuestCr0Fixed = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "Guest CR0 must respect IA32_VMX_CR0_FIXED0/1 (PE and PG exempt with unrestricted guest)";
    GuestCr0PgWithoutPe = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "Guest CR0.PG must be 0 if CR0.PE is 0";
    GuestCr4Fixed = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "Guest CR4 must respect IA32_VMX_CR4_FIXED0/1";
    GuestDebugctlReserved = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "With load debug controls, guest IA32_DEBUGCTL reserved bits must be 0";
    GuestIa32eWithoutPg = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "With IA-32e mode guest, guest CR0.PG must be 1";
    GuestIa32eWithoutPae = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "With IA-32e mode guest, guest CR4.PAE must be 1";
    GuestPcideOutsideIa32e = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "Without IA-32e mode guest, guest CR4.PCIDE must be 0";
    GuestCr3Width = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "Guest CR3 must not set bits beyond the physical-address width";
    GuestDr7High = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "With load debug controls, guest DR7 bits 63:32 must be 0";
    GuestSysenterEspCanonical = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "Guest IA32_SYSENTER_ESP must be canonical";
    GuestSysenterEipCanonical = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "Guest IA32_SYSENTER_EIP must be canonical";
    GuestPat = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "With load IA32_PAT, every guest PAT entry must be a valid memory type (0, 1, 4, 5, 6, 7)";
    GuestEferReserved = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "With load IA32_EFER, guest IA32_EFER reserved bits must be 0";
    GuestEferLma = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "With load IA32_EFER, guest EFER.LMA must equal IA-32e mode guest";
    GuestEferLme = Guest, "27.3.1.1", "Checks on Guest Control Registers, Debug Registers, and MSRs", "With load IA32_EFER and guest CR0.PG = 1, guest EFER.LME must equal IA-32e mode guest";
    // ---- 27.3.1.2 guest segment registers --------------------------------------------------
    GuestTrTi = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "Guest TR selector TI flag must be 0";
    GuestLdtrTi = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "A usable guest LDTR selector must have TI flag 0";
    GuestSsRpl = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "Outside virtual-8086 mode and without unrestricted guest, SS.RPL must equal CS.RPL";
    GuestV86Base = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "In virtual-8086 mode, each segment base must be its selector shifted left by 4";
    GuestSegmentBaseCanonical = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "TR, FS, GS and a usable LDTR base must be canonical";
    GuestCsBaseHigh = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "CS base bits 63:32 must be 0";
    GuestSegmentBaseHigh = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "Usable SS, DS and ES bases must have bits 63:32 0";
    GuestV86Limit = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "In virtual-8086 mode, each segment limit must be 0000FFFFH";
    GuestV86AccessRights = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "In virtual-8086 mode, CS, SS, DS, ES, FS and GS access rights must be 000000F3H";
    GuestCsType = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "CS type must be 9, 11, 13 or 15 (accessed code), or 3 with unrestricted guest";
    GuestSsType = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "A usable SS must have type 3 or 7 (read/write accessed data)";
    GuestDataSegmentAccessed = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "Usable DS, ES, FS and GS must have the accessed type bit set";
    GuestCodeSegmentReadable = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "A usable DS, ES, FS or GS that is a code segment must be readable";
    GuestSegmentS = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "CS and usable SS, DS, ES, FS, GS must have S = 1 (code or data)";
    GuestCsDplType3 = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "CS of type 3 (unrestricted guest) must have DPL 0";
    GuestCsDplNonConforming = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "A non-conforming CS (type 9 or 11) must have DPL equal to SS.DPL";
    GuestCsDplConforming = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "A conforming CS (type 13 or 15) must have DPL at most SS.DPL";
    GuestSsDplRpl = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "Without unrestricted guest, SS.DPL must equal SS.RPL";
    GuestSsDplRealMode = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "SS.DPL must be 0 if CS type is 3 or CR0.PE is 0";
    GuestDataSegmentDpl = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "Without unrestricted guest, usable DS, ES, FS, GS of type 0-11 must have DPL at least their RPL";
    GuestSegmentPresent = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "CS, TR and usable SS, DS, ES, FS, GS, LDTR must be present (P = 1)";
    GuestSegmentArReserved = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "Access-rights bits 11:8 and 31:17 must be 0 for every usable segment";
    GuestCsLongAndDb = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "With IA-32e mode guest and CS.L = 1, CS.D/B must be 0";
    GuestSegmentGranularity = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "G must be 1 if limit bits 31:20 are nonzero and 0 if limit bits 11:0 are not all ones";
    GuestTrType = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "TR type must be 11 (busy 32/64-bit TSS), or 3 (busy 16-bit TSS) without IA-32e mode guest";
    GuestTrS = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "TR must be a system segment (S = 0)";
    GuestTrUnusable = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "TR must be usable (access-rights bit 16 = 0)";
    GuestLdtrType = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "A usable LDTR must have type 2 (LDT)";
    GuestLdtrS = Guest, "27.3.1.2", "Checks on Guest Segment Registers", "A usable LDTR must be a system segment (S = 0)";
    // ---- 27.3.1.3 guest descriptor-table registers -------------------------------------
    GuestDescTableBaseCanonical = Guest, "27.3.1.3", "Checks on Guest Descriptor-Table Registers", "GDTR and IDTR bases must be canonical";
    GuestDescTableLimitHigh = Guest, "27.3.1.3", "Checks on Guest Descriptor-Table Registers", "GDTR and IDTR limit bits 31:16 must be 0";
    // ---- 27.3.1.4 guest RIP, RFLAGS -------------------------------------------------------
    GuestRipHigh = Guest, "27.3.1.4", "Checks on Guest RIP, RFLAGS, and SSP", "Without IA-32e mode guest and CS.L = 1, RIP bits 63:32 must be 0";
    GuestRipCanonical = Guest, "27.3.1.4", "Checks on Guest RIP, RFLAGS, and SSP", "With IA-32e mode guest and CS.L = 1, RIP must be canonical";
    GuestRflagsReserved = Guest, "27.3.1.4", "Checks on Guest RIP, RFLAGS, and SSP", "RFLAGS bits 63:22, 15, 5 and 3 must be 0 and bit 1 must be 1";
    GuestRflagsVm = Guest, "27.3.1.4", "Checks on Guest RIP, RFLAGS, and SSP", "RFLAGS.VM must be 0 with IA-32e mode guest or CR0.PE = 0";
    GuestRflagsIfForExtInt = Guest, "27.3.1.4", "Checks on Guest RIP, RFLAGS, and SSP", "RFLAGS.IF must be 1 when injecting an external interrupt";
    // ---- 27.3.1.5 guest non-register state ---------------------------------------------
    GuestActivityState = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "The activity state must be one IA32_VMX_MISC reports as supported";
    GuestActivityHltSsDpl = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "The HLT activity state requires SS.DPL = 0";
    GuestActivityBlocking = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "The activity state must be active with blocking by STI or by MOV SS";
    GuestActivityInjection = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "An injected event must not be one the activity state blocks (HLT: only external interrupt, NMI, #DB, #MC, MTF; shutdown: NMI, #MC; wait-for-SIPI: none)";
    GuestInterruptibilityReserved = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "Interruptibility-state bits 31:4 must be 0 (bit 4 needs SGX)";
    GuestInterruptibilityStiAndMovSs = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "Blocking by STI and blocking by MOV SS must not both be 1";
    GuestInterruptibilityStiIf0 = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "Blocking by STI must be 0 if RFLAGS.IF is 0";
    GuestInterruptibilityExtInt = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "Blocking by STI and by MOV SS must be 0 when injecting an external interrupt";
    GuestInterruptibilityNmiMovSs = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "Blocking by MOV SS must be 0 when injecting an NMI";
    GuestInterruptibilitySmi = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "Blocking by SMI must be 0 outside SMM";
    GuestInterruptibilityVirtualNmi = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "Blocking by NMI must be 0 when injecting an NMI with virtual NMIs";
    GuestNmiInjectionStiBlocking = GuestNmiSti, "27.3.1.5", "Checks on Guest Non-Register State", "An NMI must not be injected while blocking by STI is 1 (qualification 3)";
    GuestPendingDebugReserved = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "Pending debug exceptions bits 63:15 (except 16 with RTM), 13 and 11:4 must be 0";
    GuestPendingDebugBsMissing = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "With STI/MOV SS blocking or HLT, BS must be 1 if RFLAGS.TF = 1 and IA32_DEBUGCTL.BTF = 0";
    GuestPendingDebugBsSet = Guest, "27.3.1.5", "Checks on Guest Non-Register State", "With STI/MOV SS blocking or HLT, BS must be 0 if RFLAGS.TF = 0 or IA32_DEBUGCTL.BTF = 1";
    GuestVmcsLinkAddress = GuestLink, "27.3.1.5", "Checks on Guest Non-Register State", "A VMCS link pointer other than all ones must be 4-KByte aligned and within the physical-address width";
    GuestVmcsLinkRevision = GuestLink, "27.3.1.5", "Checks on Guest Non-Register State", "The VMCS the link pointer references must have the VMCS revision identifier and a shadow-VMCS indicator equal to VMCS shadowing";
    GuestVmcsLinkCurrent = GuestLink, "27.3.1.5", "Checks on Guest Non-Register State", "Outside SMM, the VMCS link pointer must not be the current-VMCS pointer";
    // ---- 27.3.1.6 PDPTEs --------------------------------------------------------------------
    GuestPdpteReserved = GuestPdpte, "27.3.1.6", "Checks on Guest Page-Directory-Pointer-Table Entries", "With PAE paging, each present PDPTE (from the VMCS with EPT, else through CR3) must have reserved bits 2:1, 8:5 and beyond the physical-address width clear";
    // ---- 27.4 MSR loading ----------------------------------------------------------------------
    MsrLoadTooMany = MsrLoad, "27.4", "Loading MSRs", "The VM-entry MSR-load count must not exceed 512 * (IA32_VMX_MISC bits 27:25 + 1)";
    MsrLoadReserved = MsrLoad, "27.4", "Loading MSRs", "MSR-load entry bits 63:32 must be 0";
    MsrLoadFsGsBase = MsrLoad, "27.4", "Loading MSRs", "An MSR-load entry must not load IA32_FS_BASE or IA32_GS_BASE";
    MsrLoadX2apic = MsrLoad, "27.4", "Loading MSRs", "An MSR-load entry must not load an x2APIC MSR (800H-8FFH)";
    MsrLoadSmmOnly = MsrLoad, "27.4", "Loading MSRs", "An MSR-load entry must not load an MSR writable only in SMM (IA32_SMM_MONITOR_CTL) outside SMM";
    MsrLoadModelSpecific = MsrLoad, "27.4", "Loading MSRs", "An MSR-load entry must not load an MSR that VM entry cannot load for model-specific reasons (IA32_BIOS_UPDT_TRIG)";
    MsrLoadWrmsrFault = MsrLoad, "27.4", "Loading MSRs", "An MSR-load entry must not hold a value that WRMSR at CPL 0 would reject with #GP";
}

impl CheckId {
    /// The table row of this check.
    pub fn info(self) -> &'static CheckInfo {
        // The enum and the table are emitted from the same rows, in the same order.
        &CHECKS[self as usize]
    }

    /// The check with this variant name (ASCII case-insensitive), for `explain`.
    pub fn by_name(name: &str) -> Option<CheckId> {
        CHECKS.iter().find(|c| c.name.eq_ignore_ascii_case(name)).map(|c| c.id)
    }
}

/// The architectural form of a failed VM entry.
#[derive(Copy, Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub enum FailureForm {
    /// VMfailValid with this VM-instruction error (7 or 8); the guest-state area is not
    /// touched and the next instruction of the host runs.
    VmFailValid(VmInstructionError),
    /// A VM-entry failure "exit": exit reason `reason` with bit 31 set, this exit
    /// qualification, and host state loaded.
    ExitFailure {
        /// Basic exit reason: 33 invalid guest state, 34 MSR loading.
        reason: VmxExitReason,
        /// Exit qualification.
        qualification: u64,
    },
}

impl FailureForm {
    /// The value of the exit-reason field for an [`FailureForm::ExitFailure`].
    pub fn exit_reason_field(&self) -> Option<u32> {
        match self {
            FailureForm::VmFailValid(_) => None,
            FailureForm::ExitFailure { reason, .. } => {
                Some(u32::from(reason.0) | EXIT_REASON_ENTRY_FAILURE)
            }
        }
    }
}

/// A failed VM entry: which check, about which field, in which form.
#[derive(Copy, Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct EntryFailure {
    /// The check that failed.
    pub check: CheckId,
    /// The VMCS field the check is about, where one field is (e.g. the segment's
    /// access-rights field for a per-segment check).
    pub field: Option<u32>,
    /// The architectural outcome.
    pub form: FailureForm,
}

impl EntryFailure {
    /// A failure of `check` with its default form (MSR-load failures use
    /// [`EntryFailure::msr_load`]).
    pub fn new(check: CheckId) -> EntryFailure {
        let guest = |q| FailureForm::ExitFailure {
            reason: VmxExitReason::ENTRY_FAIL_GUEST_STATE,
            qualification: q,
        };
        let form = match check.info().kind {
            CheckKind::Control => {
                FailureForm::VmFailValid(VmInstructionError::ENTRY_INVALID_CONTROL_FIELD)
            }
            CheckKind::Host => {
                FailureForm::VmFailValid(VmInstructionError::ENTRY_INVALID_HOST_STATE_FIELD)
            }
            CheckKind::Guest => guest(QUAL_DEFAULT),
            CheckKind::GuestPdpte => guest(QUAL_PDPTE),
            CheckKind::GuestNmiSti => guest(QUAL_NMI_STI),
            CheckKind::GuestLink => guest(QUAL_VMCS_LINK),
            CheckKind::MsrLoad => FailureForm::ExitFailure {
                reason: VmxExitReason::ENTRY_FAIL_MSR_LOADING,
                qualification: 0,
            },
        };
        EntryFailure { check, field: None, form }
    }

    /// A failure about one VMCS field.
    pub fn with_field(check: CheckId, field: u32) -> EntryFailure {
        EntryFailure { field: Some(field), ..EntryFailure::new(check) }
    }

    /// An MSR-loading failure at the 1-based entry `index`.
    pub fn msr_load(check: CheckId, index: u32) -> EntryFailure {
        EntryFailure {
            check,
            field: Some(f::VM_ENTRY_MSR_LOAD_ADDR),
            form: FailureForm::ExitFailure {
                reason: VmxExitReason::ENTRY_FAIL_MSR_LOADING,
                qualification: u64::from(index),
            },
        }
    }

    /// One line for traces: check name, SDM reference, what it requires, the form.
    pub fn describe(&self) -> String {
        let i = self.check.info();
        let field = self
            .field
            .and_then(|e| crate::vmcs_fields::VmcsFieldInfo::lookup(u64::from(e)))
            .map(|r| format!(" [{}]", r.info.name))
            .unwrap_or_default();
        let form = match self.form {
            FailureForm::VmFailValid(e) => format!("VMfailValid({e})"),
            FailureForm::ExitFailure { reason, qualification } => {
                format!("VM-entry failure, exit reason {} qualification {qualification}", reason.0)
            }
        };
        format!("{}{field}: {} ({}); {form}", i.name, i.text, i.reference())
    }
}

/// Exit qualification of a VM-entry failure: default.
pub const QUAL_DEFAULT: u64 = 0;
/// Exit qualification of a VM-entry failure: PDPTE loading.
pub const QUAL_PDPTE: u64 = 2;
/// Exit qualification of a VM-entry failure: NMI injection blocked by STI.
pub const QUAL_NMI_STI: u64 = 3;
/// Exit qualification of a VM-entry failure: invalid VMCS link pointer.
pub const QUAL_VMCS_LINK: u64 = 4;

/// Returns `Err(EntryFailure::new(check))` unless `cond`.
macro_rules! require {
    ($cond:expr, $check:ident) => {
        if !$cond {
            return Err($crate::entry_checks::EntryFailure::new(
                $crate::entry_checks::CheckId::$check,
            ));
        }
    };
    ($cond:expr, $check:ident, $field:expr) => {
        if !$cond {
            return Err($crate::entry_checks::EntryFailure::with_field(
                $crate::entry_checks::CheckId::$check,
                $field,
            ));
        }
    };
}
pub(crate) use require;

/// The control values as VM entry interprets them: the secondary controls count as 0
/// unless activated (27.2.1.1).
#[derive(Copy, Clone, Debug)]
pub struct Controls {
    /// Pin-based controls.
    pub pin: u32,
    /// Primary processor-based controls.
    pub proc: u32,
    /// Secondary processor-based controls (0 if not activated).
    pub proc2: u32,
    /// Primary VM-exit controls.
    pub exit: u32,
    /// VM-entry controls.
    pub entry: u32,
}

impl Controls {
    /// Reads the control fields of `vmcs`.
    pub fn of(vmcs: &Vmcs) -> Controls {
        let proc = vmcs.get(f::PRIMARY_PROC_BASED_CONTROLS) as u32;
        Controls {
            pin: vmcs.get(f::PIN_BASED_CONTROLS) as u32,
            proc,
            proc2: if proc & proc::ACTIVATE_SECONDARY_CONTROLS != 0 {
                vmcs.get(f::SECONDARY_PROC_BASED_CONTROLS) as u32
            } else {
                0
            },
            exit: vmcs.get(f::PRIMARY_VM_EXIT_CONTROLS) as u32,
            entry: vmcs.get(f::VM_ENTRY_CONTROLS) as u32,
        }
    }
    /// Pin-based control `mask` is 1.
    pub fn pin(&self, mask: u32) -> bool {
        self.pin & mask != 0
    }
    /// Primary processor-based control `mask` is 1.
    pub fn proc(&self, mask: u32) -> bool {
        self.proc & mask != 0
    }
    /// Secondary processor-based control `mask` is 1 (and the field is activated).
    pub fn proc2(&self, mask: u32) -> bool {
        self.proc2 & mask != 0
    }
    /// VM-exit control `mask` is 1.
    pub fn exit(&self, mask: u32) -> bool {
        self.exit & mask != 0
    }
    /// VM-entry control `mask` is 1.
    pub fn entry(&self, mask: u32) -> bool {
        self.entry & mask != 0
    }
    /// "IA-32e mode guest".
    pub fn ia32e_guest(&self) -> bool {
        self.entry(entry::IA32E_MODE_GUEST)
    }
    /// "Host address-space size".
    pub fn host_64(&self) -> bool {
        self.exit(exit::HOST_ADDRESS_SPACE_SIZE)
    }
    /// "Unrestricted guest".
    pub fn unrestricted(&self) -> bool {
        self.proc2(proc2::UNRESTRICTED_GUEST)
    }
    /// "Virtual NMIs".
    pub fn virtual_nmis(&self) -> bool {
        self.pin(pin::VIRTUAL_NMIS)
    }
}

/// What loading guest state needs, produced by successful checks.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct EntryPlan {
    /// PDPTEs read through guest CR3 (PAE paging without EPT), to load into the PDPTE
    /// registers; with EPT the VMCS PDPTE fields are used instead.
    pub pdptes: Option<[u64; 4]>,
    /// The MSRs of the VM-entry MSR-load area, in order (index, value).
    pub msrs: Vec<(u32, u64)>,
}

/// Runs every VM-entry check in the SDM's order (controls, host state, guest state,
/// PDPTEs, MSR loading) and returns the first failure, or what loading needs.
pub fn check_vm_entry(
    vmcs: &Vmcs,
    caps: &VmxCapabilities,
    ctx: &EntryContext,
    env: &mut dyn EntryEnv,
) -> Result<EntryPlan, EntryFailure> {
    controls::check(vmcs, caps, ctx, env)?;
    host_state::check(vmcs, caps, ctx)?;
    guest_state::check(vmcs, caps, ctx, env)?;
    let pdptes = guest_state::check_pdptes(vmcs, ctx, env)?;
    let msrs = msr_load::load_area(vmcs, caps, env)?;
    Ok(EntryPlan { pdptes, msrs })
}

/// Whether `pat` holds only valid memory types (0 UC, 1 WC, 4 WT, 5 WP, 6 WB, 7 UC-) in
/// each of its 8 bytes (SDM Vol. 3A "PAT" encodings).
pub(crate) fn pat_valid(pat: u64) -> bool {
    pat.to_le_bytes().iter().all(|b| matches!(b, 0 | 1 | 4 | 5 | 6 | 7))
}

/// IA32_EFER bits defined on hvsim's Intel model: SCE (0), LME (8), LMA (10), NXE (11).
pub const EFER_DEFINED: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
/// IA32_EFER.LME.
pub const EFER_LME: u64 = 1 << 8;
/// IA32_EFER.LMA.
pub const EFER_LMA: u64 = 1 << 10;

#[cfg(test)]
mod tests;
