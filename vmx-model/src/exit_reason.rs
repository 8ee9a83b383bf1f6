//! VMX basic exit reasons (SDM Vol. 3D Appendix C "VMX Basic Exit Reasons") and the
//! layout of the 32-bit exit-reason field (SDM Vol. 3C "Basic VM-Exit Information",
//! table "Format of Exit Reason").
//!
//! The basic exit reason is read by a guest hypervisor from the VMCS, so it is an *open*
//! newtype: [`VmxExitReason`] holds any 16-bit value and [`VmxExitReason::info`] says
//! whether the SDM defines it. Every reason is declared once in the `vmx_exit_reasons!`
//! table below, which emits the associated constants and [`EXIT_REASONS`] (name, meaning,
//! what the exit qualification holds, SDM reference).

use core::fmt;

/// Reference string for every row.
const C1: &str = "SDM Vol. 3D Appendix C Table C-1 \"Basic Exit Reasons\"";

/// Exit-qualification text: the field is not used (cleared) for this exit.
const NONE: &str = "not used (0)";
/// Exit qualification of instructions with a memory operand.
const DISPLACEMENT: &str =
    "displacement of the memory operand (operands in the VM-exit instruction-information field)";
/// Exit qualification of instructions described only by VM-exit instruction information.
const INSTR_INFO: &str = "not used; operands in the VM-exit instruction-information field";

/// A basic exit reason (bits 15:0 of the exit-reason field). Open: any value is
/// representable; use [`VmxExitReason::info`] to see whether it is defined.
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize,
)]
pub struct VmxExitReason(pub u16);

/// One row of SDM Table C-1.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ExitReasonInfo {
    /// The basic exit reason.
    pub reason: VmxExitReason,
    /// Constant name, e.g. `"EPT_VIOLATION"`.
    pub name: &'static str,
    /// One-line meaning.
    pub meaning: &'static str,
    /// What the exit qualification holds for this exit.
    pub qualification: &'static str,
    /// Where the reason is defined in the SDM.
    pub reference: &'static str,
}

/// Declares each basic exit reason once: an associated constant on [`VmxExitReason`] and
/// a row of [`EXIT_REASONS`]. Rows must be in ascending order (unit-tested).
macro_rules! vmx_exit_reasons {
    ($( $name:ident = $reason:literal, $meaning:literal, $qualification:expr; )*) => {
        impl VmxExitReason {
            $(
                #[doc = concat!("Basic exit reason ", stringify!($reason), ": ", $meaning, ".")]
                pub const $name: VmxExitReason = VmxExitReason($reason);
            )*
        }

        /// Every basic exit reason defined by SDM Table C-1, in ascending order.
        pub static EXIT_REASONS: &[ExitReasonInfo] = &[
            $(
                ExitReasonInfo {
                    reason: VmxExitReason($reason),
                    name: stringify!($name),
                    meaning: $meaning,
                    qualification: $qualification,
                    reference: C1,
                },
            )*
        ];
    };
}

vmx_exit_reasons! {
    EXCEPTION_NMI = 0, "Exception or NMI: an exception whose bit is set in the exception bitmap, or an NMI with NMI exiting", "#DB: B3-B0, BD, BS, RTM (DR6 format); #PF: the faulting linear address; otherwise 0. The vector is in the VM-exit interruption information";
    EXTERNAL_INTERRUPT = 1, "External interrupt with external-interrupt exiting", "not used (0); the vector is in the VM-exit interruption information if acknowledge interrupt on exit is 1";
    TRIPLE_FAULT = 2, "Triple fault", NONE;
    INIT = 3, "INIT signal", NONE;
    SIPI = 4, "Start-up IPI (SIPI) while in the wait-for-SIPI activity state", "bits 7:0 = SIPI vector";
    IO_SMI = 5, "I/O system-management interrupt (SMI) (dual-monitor treatment)", "I/O instruction information in the I/O exit-qualification format";
    OTHER_SMI = 6, "Other SMI (dual-monitor treatment)", NONE;
    INTERRUPT_WINDOW = 7, "Interrupt window: RFLAGS.IF = 1 and no blocking, with interrupt-window exiting", NONE;
    NMI_WINDOW = 8, "NMI window: no virtual-NMI blocking, with NMI-window exiting", NONE;
    TASK_SWITCH = 9, "Task switch", "bits 15:0 selector of the new TSS; bits 31:30 source: 0 CALL, 1 IRET, 2 JMP, 3 task gate in IDT";
    CPUID = 10, "CPUID", NONE;
    GETSEC = 11, "GETSEC", NONE;
    HLT = 12, "HLT with HLT exiting", NONE;
    INVD = 13, "INVD", NONE;
    INVLPG = 14, "INVLPG with INVLPG exiting", "linear-address operand of INVLPG";
    RDPMC = 15, "RDPMC with RDPMC exiting", NONE;
    RDTSC = 16, "RDTSC with RDTSC exiting", NONE;
    RSM = 17, "RSM in SMM (dual-monitor treatment)", NONE;
    VMCALL = 18, "VMCALL", NONE;
    VMCLEAR = 19, "VMCLEAR", DISPLACEMENT;
    VMLAUNCH = 20, "VMLAUNCH", NONE;
    VMPTRLD = 21, "VMPTRLD", DISPLACEMENT;
    VMPTRST = 22, "VMPTRST", DISPLACEMENT;
    VMREAD = 23, "VMREAD", DISPLACEMENT;
    VMRESUME = 24, "VMRESUME", NONE;
    VMWRITE = 25, "VMWRITE", DISPLACEMENT;
    VMXOFF = 26, "VMXOFF", NONE;
    VMXON = 27, "VMXON", DISPLACEMENT;
    CR_ACCESS = 28, "Control-register access: MOV to/from CR0, CR3, CR4, CR8, CLTS or LMSW", "bits 3:0 CR number; bits 5:4 access type (0 MOV to CR, 1 MOV from CR, 2 CLTS, 3 LMSW); bit 6 LMSW operand (0 register, 1 memory); bits 11:8 GPR; bits 31:16 LMSW source data";
    DR_ACCESS = 29, "MOV DR with MOV-DR exiting", "bits 2:0 DR number; bit 4 direction (0 MOV to DR, 1 MOV from DR); bits 11:8 GPR";
    IO_INSTRUCTION = 30, "I/O instruction (IN, OUT, INS, OUTS)", "bits 2:0 size - 1; bit 3 direction (1 = IN); bit 4 string; bit 5 REP; bit 6 operand (0 DX, 1 immediate); bits 31:16 port";
    RDMSR = 31, "RDMSR", "not used (0); the MSR index is in ECX";
    WRMSR = 32, "WRMSR", "not used (0); the MSR index is in ECX";
    ENTRY_FAIL_GUEST_STATE = 33, "VM-entry failure due to invalid guest state", "0 default; 2 PDPTE loading failed; 3 NMI injection blocked by STI blocking; 4 invalid VMCS link pointer";
    ENTRY_FAIL_MSR_LOADING = 34, "VM-entry failure due to MSR loading", "1-based index of the MSR-load-area entry that failed";
    MWAIT = 36, "MWAIT with MWAIT exiting", "bit 0 = 1 if the monitoring hardware was armed";
    MONITOR_TRAP_FLAG = 37, "Monitor trap flag (MTF)", NONE;
    MONITOR = 39, "MONITOR with MONITOR exiting", NONE;
    PAUSE = 40, "PAUSE with PAUSE exiting or PAUSE-loop exiting", NONE;
    ENTRY_FAIL_MACHINE_CHECK = 41, "VM-entry failure due to a machine-check event", NONE;
    TPR_BELOW_THRESHOLD = 43, "TPR below threshold after MOV to CR8 or VM entry (trap-like)", NONE;
    APIC_ACCESS = 44, "Access to the APIC-access page", "bits 11:0 page offset (linear accesses); bits 15:12 access type (0 linear read, 1 linear write, 2 linear fetch, 3 linear during event delivery, 10 guest-physical during event delivery, 15 guest-physical fetch or execution); bit 16 asynchronous to instruction execution";
    VIRTUALIZED_EOI = 45, "EOI virtualization of a vector set in the EOI-exit bitmap (trap-like)", "bits 7:0 = vector of the EOI-virtualized interrupt";
    GDTR_IDTR_ACCESS = 46, "LGDT, LIDT, SGDT or SIDT with descriptor-table exiting", DISPLACEMENT;
    LDTR_TR_ACCESS = 47, "LLDT, LTR, SLDT or STR with descriptor-table exiting", DISPLACEMENT;
    EPT_VIOLATION = 48, "EPT violation", "bit 0 read, 1 write, 2 fetch; bits 5:3 EPT read/write/execute permission of the translation (bit 6 user-mode execute with MBEC); bit 7 guest-linear address valid; bit 8 access to the final translation (vs. a paging-structure entry); bit 12 NMI unblocking due to IRET; the address is in the guest-physical address field";
    EPT_MISCONFIG = 49, "EPT misconfiguration", "not used (0); the address is in the guest-physical address field";
    INVEPT = 50, "INVEPT", DISPLACEMENT;
    RDTSCP = 51, "RDTSCP with RDTSC exiting", NONE;
    PREEMPTION_TIMER = 52, "VMX-preemption timer expired", NONE;
    INVVPID = 53, "INVVPID", DISPLACEMENT;
    WBINVD = 54, "WBINVD or WBNOINVD with WBINVD exiting", NONE;
    XSETBV = 55, "XSETBV", NONE;
    APIC_WRITE = 56, "APIC write that must be completed by the VMM (trap-like)", "bits 11:0 offset of the virtual-APIC-page register written";
    RDRAND = 57, "RDRAND with RDRAND exiting", INSTR_INFO;
    INVPCID = 58, "INVPCID with INVLPG exiting", DISPLACEMENT;
    VMFUNC = 59, "VMFUNC that failed (invalid leaf or EPTP index)", NONE;
    ENCLS = 60, "ENCLS leaf selected by the ENCLS-exiting bitmap", NONE;
    RDSEED = 61, "RDSEED with RDSEED exiting", INSTR_INFO;
    PML_FULL = 62, "Page-modification log full", "bit 12 NMI unblocking due to IRET";
    XSAVES = 63, "XSAVES selected by the XSS-exiting bitmap", DISPLACEMENT;
    XRSTORS = 64, "XRSTORS selected by the XSS-exiting bitmap", DISPLACEMENT;
    PCONFIG = 65, "PCONFIG leaf selected by the PCONFIG-exiting bitmap", NONE;
    SPP_EVENT = 66, "SPP-related event (sub-page permissions)", "bit 11 = 1 for an SPP misconfiguration, 0 for an SPP miss; bit 12 NMI unblocking due to IRET";
    UMWAIT = 67, "UMWAIT with RDTSC exiting and enable user wait and pause", NONE;
    TPAUSE = 68, "TPAUSE with RDTSC exiting and enable user wait and pause", NONE;
    LOADIWKEY = 69, "LOADIWKEY with LOADIWKEY exiting", INSTR_INFO;
    ENCLV = 70, "ENCLV leaf selected by the ENCLV-exiting bitmap", NONE;
    ENQCMD_PASID_FAILURE = 72, "ENQCMD PASID translation failure", "see SDM \"PASID Translation\"";
    ENQCMDS_PASID_FAILURE = 73, "ENQCMDS PASID translation failure", "see SDM \"PASID Translation\"";
    BUS_LOCK = 74, "Bus lock with VMM bus-lock detection (trap-like)", NONE;
    INSTRUCTION_TIMEOUT = 75, "Instruction timeout: no instruction boundary reached in time", "bit 0 = 1 if the VM context is invalid; bit 12 NMI unblocking due to IRET";
    SEAMCALL = 76, "SEAMCALL", NONE;
    TDCALL = 77, "TDCALL", NONE;
    RDMSRLIST = 78, "RDMSRLIST", NONE;
    WRMSRLIST = 79, "WRMSRLIST", NONE;
    URDMSR = 80, "URDMSR", "see SDM \"Exit Qualification for URDMSR and UWRMSR\"";
    UWRMSR = 81, "UWRMSR", "see SDM \"Exit Qualification for URDMSR and UWRMSR\"";
    RDMSR_IMM = 84, "RDMSR with an immediate MSR index", "the MSR index; the destination register is in the VM-exit instruction information";
    WRMSRNS_IMM = 85, "WRMSRNS with an immediate MSR index", "the MSR index; the source register is in the VM-exit instruction information";
}

impl VmxExitReason {
    /// The SDM Table C-1 row for this reason, or `None` if it is not defined.
    pub fn info(self) -> Option<&'static ExitReasonInfo> {
        EXIT_REASONS
            .binary_search_by(|row| row.reason.cmp(&self))
            .ok()
            .and_then(|i| EXIT_REASONS.get(i))
    }

    /// The constant name (`"EPT_VIOLATION"`), or `None` if the reason is not defined.
    pub fn name(self) -> Option<&'static str> {
        self.info().map(|i| i.name)
    }

    /// The reason with this constant name (ASCII case-insensitive).
    pub fn by_name(name: &str) -> Option<VmxExitReason> {
        EXIT_REASONS.iter().find(|row| row.name.eq_ignore_ascii_case(name)).map(|row| row.reason)
    }

    /// Whether this reason reports a VM-entry failure (33, 34, 41); such exits also set
    /// bit 31 of the exit-reason field.
    pub const fn is_entry_failure(self) -> bool {
        matches!(self.0, 33 | 34 | 41)
    }
}

impl fmt::Display for VmxExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "UNKNOWN ({})", self.0),
        }
    }
}

impl From<u16> for VmxExitReason {
    fn from(v: u16) -> Self {
        VmxExitReason(v)
    }
}

/// Bits 15:0 of the exit-reason field: the basic exit reason.
pub const EXIT_REASON_BASIC_MASK: u32 = 0xFFFF;
/// Bit 25: a shadow stack was found prematurely busy (secondary VM-exit control).
pub const EXIT_REASON_SHADOW_STACK_BUSY: u32 = 1 << 25;
/// Bit 26: the guest asserted a bus lock (VMM bus-lock detection).
pub const EXIT_REASON_BUS_LOCK_DETECTED: u32 = 1 << 26;
/// Bit 27: the VM exit was incident to enclave mode.
pub const EXIT_REASON_ENCLAVE_MODE: u32 = 1 << 27;
/// Bit 28: pending MTF VM exit (SMM VM exits).
pub const EXIT_REASON_PENDING_MTF: u32 = 1 << 28;
/// Bit 29: VM exit from VMX root operation (SMM VM exits).
pub const EXIT_REASON_FROM_VMX_ROOT: u32 = 1 << 29;
/// Bit 31: VM-entry failure (0 = true VM exit).
pub const EXIT_REASON_ENTRY_FAILURE: u32 = 1 << 31;

/// Reference for the exit-reason field layout.
const FORMAT: &str = "SDM Vol. 3C \"Basic VM-Exit Information\", Table \"Format of Exit Reason\"";

/// One named flag of the 32-bit exit-reason field.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ExitReasonFlag {
    /// Mask within the exit-reason field.
    pub mask: u32,
    /// Name, e.g. `"ENTRY_FAILURE"`.
    pub name: &'static str,
    /// One-line meaning.
    pub meaning: &'static str,
    /// Where the bit is defined in the SDM.
    pub reference: &'static str,
}

/// The flags of the exit-reason field above the basic exit reason.
pub static EXIT_REASON_FLAGS: &[ExitReasonFlag] = &[
    ExitReasonFlag {
        mask: EXIT_REASON_SHADOW_STACK_BUSY,
        name: "SHADOW_STACK_BUSY",
        meaning: "a shadow stack was found prematurely busy",
        reference: FORMAT,
    },
    ExitReasonFlag {
        mask: EXIT_REASON_BUS_LOCK_DETECTED,
        name: "BUS_LOCK_DETECTED",
        meaning: "the guest asserted a bus lock before this VM exit",
        reference: FORMAT,
    },
    ExitReasonFlag {
        mask: EXIT_REASON_ENCLAVE_MODE,
        name: "ENCLAVE_MODE",
        meaning: "the VM exit was incident to enclave mode",
        reference: FORMAT,
    },
    ExitReasonFlag {
        mask: EXIT_REASON_PENDING_MTF,
        name: "PENDING_MTF",
        meaning: "an MTF VM exit was pending (SMM VM exit)",
        reference: FORMAT,
    },
    ExitReasonFlag {
        mask: EXIT_REASON_FROM_VMX_ROOT,
        name: "FROM_VMX_ROOT",
        meaning: "the VM exit came from VMX root operation (SMM VM exit)",
        reference: FORMAT,
    },
    ExitReasonFlag {
        mask: EXIT_REASON_ENTRY_FAILURE,
        name: "ENTRY_FAILURE",
        meaning: "VM-entry failure",
        reference: FORMAT,
    },
];

/// The full 32-bit exit-reason field (VMCS encoding 0x4402).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ExitReasonField(pub u32);

impl ExitReasonField {
    /// Builds the field from a basic reason, setting bit 31 for entry failures.
    pub const fn new(basic: VmxExitReason) -> ExitReasonField {
        let failure = if basic.is_entry_failure() { EXIT_REASON_ENTRY_FAILURE } else { 0 };
        ExitReasonField(basic.0 as u32 | failure)
    }

    /// Bits 15:0.
    pub const fn basic(self) -> VmxExitReason {
        VmxExitReason((self.0 & EXIT_REASON_BASIC_MASK) as u16)
    }

    /// Bit 31.
    pub const fn is_entry_failure(self) -> bool {
        self.0 & EXIT_REASON_ENTRY_FAILURE != 0
    }

    /// The named flags set in the field.
    pub fn flags(self) -> impl Iterator<Item = &'static ExitReasonFlag> {
        EXIT_REASON_FLAGS.iter().filter(move |f| self.0 & f.mask != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_strictly_ascending_and_complete() {
        for pair in EXIT_REASONS.windows(2) {
            assert!(pair[0].reason < pair[1].reason, "{} / {}", pair[0].name, pair[1].name);
        }
        for (i, row) in EXIT_REASONS.iter().enumerate() {
            assert!(row.reference.starts_with("SDM Vol. 3D Appendix C"), "{}", row.name);
            assert!(!row.meaning.is_empty() && !row.qualification.is_empty(), "{}", row.name);
            for other in &EXIT_REASONS[i + 1..] {
                assert_ne!(row.name, other.name);
            }
        }
        // Every reason from 0 to 70 is defined except the unused 35, 38 and 42.
        for r in 0..=70u16 {
            let defined = VmxExitReason(r).info().is_some();
            assert_eq!(defined, ![35, 38, 42].contains(&r), "reason {r}");
        }
    }

    #[test]
    fn anchors() {
        assert_eq!(VmxExitReason::EXCEPTION_NMI.0, 0);
        assert_eq!(VmxExitReason::EXTERNAL_INTERRUPT.0, 1);
        assert_eq!(VmxExitReason::TRIPLE_FAULT.0, 2);
        assert_eq!(VmxExitReason::INTERRUPT_WINDOW.0, 7);
        assert_eq!(VmxExitReason::CPUID.0, 10);
        assert_eq!(VmxExitReason::HLT.0, 12);
        assert_eq!(VmxExitReason::VMCALL.0, 18);
        assert_eq!(VmxExitReason::VMXON.0, 27);
        assert_eq!(VmxExitReason::CR_ACCESS.0, 28);
        assert_eq!(VmxExitReason::IO_INSTRUCTION.0, 30);
        assert_eq!(VmxExitReason::WRMSR.0, 32);
        assert_eq!(VmxExitReason::ENTRY_FAIL_GUEST_STATE.0, 33);
        assert_eq!(VmxExitReason::MONITOR_TRAP_FLAG.0, 37);
        assert_eq!(VmxExitReason::EPT_VIOLATION.0, 48);
        assert_eq!(VmxExitReason::EPT_MISCONFIG.0, 49);
        assert_eq!(VmxExitReason::PREEMPTION_TIMER.0, 52);
        assert_eq!(VmxExitReason::XRSTORS.0, 64);
        assert_eq!(VmxExitReason::TDCALL.0, 77);
        assert_eq!(VmxExitReason(48).name(), Some("EPT_VIOLATION"));
        assert_eq!(VmxExitReason::by_name("ept_violation"), Some(VmxExitReason(48)));
        assert!(VmxExitReason(35).info().is_none());
        assert!(VmxExitReason(u16::MAX).info().is_none());
        assert_eq!(VmxExitReason(48).to_string(), "EPT_VIOLATION (48)");
        assert_eq!(VmxExitReason(999).to_string(), "UNKNOWN (999)");
    }

    #[test]
    fn exit_reason_field() {
        let f = ExitReasonField::new(VmxExitReason::ENTRY_FAIL_GUEST_STATE);
        assert_eq!(f.0, 0x8000_0021);
        assert!(f.is_entry_failure());
        assert_eq!(f.basic(), VmxExitReason::ENTRY_FAIL_GUEST_STATE);
        assert_eq!(f.flags().map(|x| x.name).collect::<Vec<_>>(), ["ENTRY_FAILURE"]);
        let g = ExitReasonField(EXIT_REASON_ENCLAVE_MODE | 48);
        assert!(!g.is_entry_failure());
        assert_eq!(g.basic(), VmxExitReason::EPT_VIOLATION);
        assert_eq!(ExitReasonField::new(VmxExitReason::HLT).0, 12);
        let all = EXIT_REASON_FLAGS.iter().fold(0, |acc, f| {
            assert_eq!(acc & f.mask, 0);
            acc | f.mask
        });
        assert_eq!(all & EXIT_REASON_BASIC_MASK, 0);
    }
}
