//! VMX-related MSRs: IA32_FEATURE_CONTROL and the VMX capability MSRs
//! (SDM Vol. 3D Appendix A "VMX Capability Reporting Facility").
//!
//! Each MSR is declared once in the `vmx_msrs!` table below: a `pub const` index and a
//! row of [`VMX_MSRS`]. Bit layouts follow as constants.

const FC: &str = "SDM Vol. 3C \"Enabling and Entering VMX Operation\"; SDM Vol. 4 \"Model-Specific Registers\" (IA32_FEATURE_CONTROL)";
const A1: &str = "SDM Vol. 3D Appendix A.1 \"Basic VMX Information\"";
const A31: &str = "SDM Vol. 3D Appendix A.3.1 \"Pin-Based VM-Execution Controls\"";
const A32: &str = "SDM Vol. 3D Appendix A.3.2 \"Primary Processor-Based VM-Execution Controls\"";
const A33: &str = "SDM Vol. 3D Appendix A.3.3 \"Secondary Processor-Based VM-Execution Controls\"";
const A34: &str = "SDM Vol. 3D Appendix A.3.4 \"Tertiary Processor-Based VM-Execution Controls\"";
const A41: &str = "SDM Vol. 3D Appendix A.4.1 \"Primary VM-Exit Controls\"";
const A42: &str = "SDM Vol. 3D Appendix A.4.2 \"Secondary VM-Exit Controls\"";
const A5: &str = "SDM Vol. 3D Appendix A.5 \"VM-Entry Controls\"";
const A6: &str = "SDM Vol. 3D Appendix A.6 \"Miscellaneous Data\"";
const A7: &str = "SDM Vol. 3D Appendix A.7 \"VMX-Fixed Bits in CR0\"";
const A8: &str = "SDM Vol. 3D Appendix A.8 \"VMX-Fixed Bits in CR4\"";
const A9: &str = "SDM Vol. 3D Appendix A.9 \"VMCS Enumeration\"";
const A10: &str = "SDM Vol. 3D Appendix A.10 \"VPID and EPT Capabilities\"";
const A11: &str = "SDM Vol. 3D Appendix A.11 \"VM Functions\"";
const SMM: &str = "SDM Vol. 3C \"Dual-Monitor Treatment of SMIs and SMM\" (IA32_SMM_MONITOR_CTL)";

/// One VMX-related MSR.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct VmxMsrInfo {
    /// MSR index (ECX value of RDMSR/WRMSR).
    pub index: u32,
    /// SDM name, e.g. `"IA32_VMX_BASIC"`.
    pub name: &'static str,
    /// One-line meaning.
    pub meaning: &'static str,
    /// Where the MSR is defined in the SDM.
    pub reference: &'static str,
}

impl VmxMsrInfo {
    /// The row for an MSR index, if it is one of the VMX-related MSRs.
    pub fn lookup(index: u32) -> Option<&'static VmxMsrInfo> {
        VMX_MSRS.iter().find(|m| m.index == index)
    }

    /// The row with this name (ASCII case-insensitive).
    pub fn by_name(name: &str) -> Option<&'static VmxMsrInfo> {
        VMX_MSRS.iter().find(|m| m.name.eq_ignore_ascii_case(name))
    }

    /// Whether this is one of the read-only VMX capability MSRs (0x480-0x493).
    pub const fn is_capability(&self) -> bool {
        self.index >= IA32_VMX_BASIC && self.index <= IA32_VMX_EXIT_CTLS2
    }
}

/// Declares each MSR once: a `pub const NAME: u32` and a row of [`VMX_MSRS`].
macro_rules! vmx_msrs {
    ($( $name:ident = $index:literal, $meaning:literal, $reference:expr; )*) => {
        $(
            #[doc = concat!("MSR `", stringify!($name), "`: ", $meaning, ".")]
            pub const $name: u32 = $index;
        )*

        /// Every VMX-related MSR, ascending by index.
        pub static VMX_MSRS: &[VmxMsrInfo] = &[
            $(
                VmxMsrInfo {
                    index: $index,
                    name: stringify!($name),
                    meaning: $meaning,
                    reference: $reference,
                },
            )*
        ];
    };
}

vmx_msrs! {
    IA32_FEATURE_CONTROL = 0x3A, "Lock bit and VMX enables inside/outside SMX; VMXON faults unless locked with VMX enabled", FC;
    IA32_SMM_MONITOR_CTL = 0x9B, "SMM monitor control: valid bit and MSEG base for the dual-monitor treatment", SMM;
    IA32_VMX_BASIC = 0x480, "VMCS revision identifier, VMCS region size, memory type, INS/OUTS reporting, TRUE controls", A1;
    IA32_VMX_PINBASED_CTLS = 0x481, "Allowed 0-settings (bits 31:0) and 1-settings (bits 63:32) of the pin-based controls", A31;
    IA32_VMX_PROCBASED_CTLS = 0x482, "Allowed settings of the primary processor-based controls", A32;
    IA32_VMX_EXIT_CTLS = 0x483, "Allowed settings of the primary VM-exit controls", A41;
    IA32_VMX_ENTRY_CTLS = 0x484, "Allowed settings of the VM-entry controls", A5;
    IA32_VMX_MISC = 0x485, "Preemption-timer rate, activity states, CR3-target count, MSR-list limit, VMWRITE to any field, MSEG revision", A6;
    IA32_VMX_CR0_FIXED0 = 0x486, "CR0 bits that must be 1 in VMX operation", A7;
    IA32_VMX_CR0_FIXED1 = 0x487, "CR0 bits that may be 1 in VMX operation (a 0 bit must be 0)", A7;
    IA32_VMX_CR4_FIXED0 = 0x488, "CR4 bits that must be 1 in VMX operation", A8;
    IA32_VMX_CR4_FIXED1 = 0x489, "CR4 bits that may be 1 in VMX operation (a 0 bit must be 0)", A8;
    IA32_VMX_VMCS_ENUM = 0x48A, "Highest index value used in any VMCS encoding (bits 9:1)", A9;
    IA32_VMX_PROCBASED_CTLS2 = 0x48B, "Allowed settings of the secondary processor-based controls", A33;
    IA32_VMX_EPT_VPID_CAP = 0x48C, "EPT and VPID capabilities: page-walk lengths, memory types, large pages, A/D flags, INVEPT/INVVPID types", A10;
    IA32_VMX_TRUE_PINBASED_CTLS = 0x48D, "Allowed settings of the pin-based controls, including default1 bits that may be 0", A31;
    IA32_VMX_TRUE_PROCBASED_CTLS = 0x48E, "Allowed settings of the primary processor-based controls, including default1 bits that may be 0", A32;
    IA32_VMX_TRUE_EXIT_CTLS = 0x48F, "Allowed settings of the primary VM-exit controls, including default1 bits that may be 0", A41;
    IA32_VMX_TRUE_ENTRY_CTLS = 0x490, "Allowed settings of the VM-entry controls, including default1 bits that may be 0", A5;
    IA32_VMX_VMFUNC = 0x491, "Allowed 1-settings of the VM-function controls", A11;
    IA32_VMX_PROCBASED_CTLS3 = 0x492, "Allowed 1-settings of the tertiary processor-based controls (64 bits)", A34;
    IA32_VMX_EXIT_CTLS2 = 0x493, "Allowed 1-settings of the secondary VM-exit controls (64 bits)", A42;
}

/// IA32_FEATURE_CONTROL bit 0: lock; WRMSR to the MSR faults once set.
pub const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
/// IA32_FEATURE_CONTROL bit 1: enable VMX inside SMX operation.
pub const FEATURE_CONTROL_VMX_INSIDE_SMX: u64 = 1 << 1;
/// IA32_FEATURE_CONTROL bit 2: enable VMX outside SMX operation.
pub const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;
/// IA32_FEATURE_CONTROL bits 14:8: SENTER local function enables.
pub const FEATURE_CONTROL_SENTER_LOCAL_ENABLES: u64 = 0x7F << 8;
/// IA32_FEATURE_CONTROL bit 15: SENTER global enable.
pub const FEATURE_CONTROL_SENTER_GLOBAL_ENABLE: u64 = 1 << 15;
/// IA32_FEATURE_CONTROL bit 17: SGX launch control enable.
pub const FEATURE_CONTROL_SGX_LAUNCH_CONTROL: u64 = 1 << 17;
/// IA32_FEATURE_CONTROL bit 18: SGX global enable.
pub const FEATURE_CONTROL_SGX_GLOBAL_ENABLE: u64 = 1 << 18;
/// IA32_FEATURE_CONTROL bit 20: LMCE on.
pub const FEATURE_CONTROL_LMCE_ON: u64 = 1 << 20;

/// IA32_VMX_BASIC bits 30:0: VMCS revision identifier.
pub const BASIC_REVISION_ID_MASK: u64 = 0x7FFF_FFFF;
/// IA32_VMX_BASIC bits 44:32: size in bytes of the VMXON and VMCS regions.
pub const BASIC_REGION_SIZE_MASK: u64 = 0x1FFF << 32;
/// IA32_VMX_BASIC bit 48: VMXON, VMCS and related addresses are limited to 32 bits.
pub const BASIC_PHYS_ADDR_32BIT: u64 = 1 << 48;
/// IA32_VMX_BASIC bit 49: dual-monitor treatment of SMIs and SMM is supported.
pub const BASIC_DUAL_MONITOR: u64 = 1 << 49;
/// IA32_VMX_BASIC bits 53:50: memory type for the VMCS and related structures (6 = WB).
pub const BASIC_MEMORY_TYPE_MASK: u64 = 0xF << 50;
/// IA32_VMX_BASIC bit 54: VM exits for INS/OUTS report instruction information.
pub const BASIC_INS_OUTS_INFO: u64 = 1 << 54;
/// IA32_VMX_BASIC bit 55: default1 controls may be 0; the TRUE capability MSRs exist.
pub const BASIC_TRUE_CONTROLS: u64 = 1 << 55;
/// IA32_VMX_BASIC bit 56: VM entry may deliver a hardware exception with or without an
/// error code, regardless of vector.
pub const BASIC_NO_ERROR_CODE_CHECK: u64 = 1 << 56;

/// IA32_VMX_MISC bits 4:0: the preemption timer counts down when TSC bit X changes.
pub const MISC_PREEMPTION_TIMER_RATE_MASK: u64 = 0x1F;
/// IA32_VMX_MISC bit 5: VM exits store IA32_EFER.LMA into "IA-32e mode guest".
pub const MISC_SAVES_EFER_LMA: u64 = 1 << 5;
/// IA32_VMX_MISC bit 6: the HLT activity state is supported.
pub const MISC_ACTIVITY_HLT: u64 = 1 << 6;
/// IA32_VMX_MISC bit 7: the shutdown activity state is supported.
pub const MISC_ACTIVITY_SHUTDOWN: u64 = 1 << 7;
/// IA32_VMX_MISC bit 8: the wait-for-SIPI activity state is supported.
pub const MISC_ACTIVITY_WAIT_SIPI: u64 = 1 << 8;
/// IA32_VMX_MISC bit 14: Intel PT can be used in VMX operation.
pub const MISC_INTEL_PT: u64 = 1 << 14;
/// IA32_VMX_MISC bit 15: RDMSR can read IA32_SMBASE in SMM.
pub const MISC_RDMSR_SMBASE_IN_SMM: u64 = 1 << 15;
/// IA32_VMX_MISC bits 24:16: number of supported CR3-target values.
pub const MISC_CR3_TARGET_COUNT_MASK: u64 = 0x1FF << 16;
/// IA32_VMX_MISC bits 27:25: N, the recommended MSR-list limit is 512 * (N + 1).
pub const MISC_MAX_MSR_LIST_MASK: u64 = 0x7 << 25;
/// IA32_VMX_MISC bit 28: IA32_SMM_MONITOR_CTL bit 2 can be set (VMXOFF unblocks SMIs).
pub const MISC_SMM_MONITOR_CTL_BIT2: u64 = 1 << 28;
/// IA32_VMX_MISC bit 29: VMWRITE may write any supported field, including VM-exit
/// information fields.
pub const MISC_VMWRITE_ANY_FIELD: u64 = 1 << 29;
/// IA32_VMX_MISC bit 30: VM entry may inject software interrupts, software exceptions
/// and privileged software exceptions with an instruction length of 0.
pub const MISC_ZERO_LENGTH_INJECTION: u64 = 1 << 30;
/// IA32_VMX_MISC bits 63:32: MSEG revision identifier.
pub const MISC_MSEG_REVISION_MASK: u64 = 0xFFFF_FFFF << 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors() {
        assert_eq!(IA32_FEATURE_CONTROL, 0x3A);
        assert_eq!(IA32_VMX_BASIC, 0x480);
        assert_eq!(IA32_VMX_TRUE_PINBASED_CTLS, 0x48D);
        assert_eq!(IA32_VMX_TRUE_ENTRY_CTLS, 0x490);
        assert_eq!(IA32_VMX_VMFUNC, 0x491);
        assert_eq!(IA32_VMX_PROCBASED_CTLS3, 0x492);
        assert_eq!(IA32_VMX_EXIT_CTLS2, 0x493);
        assert_eq!(FEATURE_CONTROL_VMX_OUTSIDE_SMX, 4);
        assert_eq!(VmxMsrInfo::lookup(0x48C).map(|m| m.name), Some("IA32_VMX_EPT_VPID_CAP"));
        assert_eq!(VmxMsrInfo::by_name("ia32_vmx_misc").map(|m| m.index), Some(0x485));
        assert!(VmxMsrInfo::lookup(0x494).is_none());
    }

    #[test]
    fn capability_msrs_are_contiguous_and_unique() {
        for pair in VMX_MSRS.windows(2) {
            assert!(pair[0].index < pair[1].index);
        }
        for idx in IA32_VMX_BASIC..=IA32_VMX_EXIT_CTLS2 {
            let m = VmxMsrInfo::lookup(idx).expect("capability MSR");
            assert!(m.is_capability());
            assert!(m.reference.starts_with("SDM Vol. 3D Appendix A"), "{}", m.name);
        }
        assert!(!VmxMsrInfo::lookup(IA32_FEATURE_CONTROL).unwrap().is_capability());
    }
}
