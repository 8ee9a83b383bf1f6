//! VMX control bits: pin-based, primary/secondary/tertiary processor-based VM-execution
//! controls, primary/secondary VM-exit controls, VM-entry controls and VM-function
//! controls (SDM Vol. 3C chapter "Virtual Machine Control Structures", sections
//! "VM-Execution Control Fields", "VM-Exit Control Fields", "VM-Entry Control Fields").
//!
//! Every control is declared once in the `vmx_controls!` table below. The macro emits,
//! per control field, a module of mask constants ([`pin`], [`proc`], [`proc2`],
//! [`proc3`], [`exit`], [`exit2`], [`entry`], [`vmfunc`]), each with a `FIELD` constant
//! naming its [`ControlField`], and one [`CONTROLS`] table for `explain`.
//!
//! Bits that no row names are reserved; their required setting comes from the capability
//! MSRs ([`ControlField::capability_msr`], SDM Vol. 3D Appendix A).

use crate::msr;
use crate::vmcs_fields;

/// The VMCS control fields that hold control bits.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum ControlField {
    /// Pin-based VM-execution controls (32 bits).
    PinBased,
    /// Primary processor-based VM-execution controls (32 bits).
    PrimaryProcessor,
    /// Secondary processor-based VM-execution controls (32 bits).
    SecondaryProcessor,
    /// Tertiary processor-based VM-execution controls (64 bits).
    TertiaryProcessor,
    /// Primary VM-exit controls (32 bits).
    PrimaryExit,
    /// Secondary VM-exit controls (64 bits).
    SecondaryExit,
    /// VM-entry controls (32 bits).
    Entry,
    /// VM-function controls (64 bits).
    VmFunction,
}

impl ControlField {
    /// Every control field, in SDM order.
    pub const ALL: [ControlField; 8] = [
        ControlField::PinBased,
        ControlField::PrimaryProcessor,
        ControlField::SecondaryProcessor,
        ControlField::TertiaryProcessor,
        ControlField::PrimaryExit,
        ControlField::SecondaryExit,
        ControlField::Entry,
        ControlField::VmFunction,
    ];

    /// The SDM table that defines the bits of this field.
    pub const fn reference(self) -> &'static str {
        match self {
            ControlField::PinBased => {
                "SDM Vol. 3C Table \"Definitions of Pin-Based VM-Execution Controls\""
            }
            ControlField::PrimaryProcessor => {
                "SDM Vol. 3C Table \"Definitions of Primary Processor-Based VM-Execution Controls\""
            }
            ControlField::SecondaryProcessor => {
                "SDM Vol. 3C Table \"Definitions of Secondary Processor-Based VM-Execution Controls\""
            }
            ControlField::TertiaryProcessor => {
                "SDM Vol. 3C Table \"Definitions of Tertiary Processor-Based VM-Execution Controls\""
            }
            ControlField::PrimaryExit => "SDM Vol. 3C Table \"Definitions of Primary VM-Exit Controls\"",
            ControlField::SecondaryExit => {
                "SDM Vol. 3C Table \"Definitions of Secondary VM-Exit Controls\""
            }
            ControlField::Entry => "SDM Vol. 3C Table \"Definitions of VM-Entry Controls\"",
            ControlField::VmFunction => "SDM Vol. 3C Table \"Definitions of VM-Function Controls\"",
        }
    }

    /// Human-readable name of the field.
    pub const fn title(self) -> &'static str {
        match self {
            ControlField::PinBased => "pin-based VM-execution controls",
            ControlField::PrimaryProcessor => "primary processor-based VM-execution controls",
            ControlField::SecondaryProcessor => "secondary processor-based VM-execution controls",
            ControlField::TertiaryProcessor => "tertiary processor-based VM-execution controls",
            ControlField::PrimaryExit => "primary VM-exit controls",
            ControlField::SecondaryExit => "secondary VM-exit controls",
            ControlField::Entry => "VM-entry controls",
            ControlField::VmFunction => "VM-function controls",
        }
    }

    /// VMCS encoding of the field that holds these controls.
    pub const fn vmcs_encoding(self) -> u32 {
        match self {
            ControlField::PinBased => vmcs_fields::PIN_BASED_CONTROLS,
            ControlField::PrimaryProcessor => vmcs_fields::PRIMARY_PROC_BASED_CONTROLS,
            ControlField::SecondaryProcessor => vmcs_fields::SECONDARY_PROC_BASED_CONTROLS,
            ControlField::TertiaryProcessor => vmcs_fields::TERTIARY_PROC_BASED_CONTROLS,
            ControlField::PrimaryExit => vmcs_fields::PRIMARY_VM_EXIT_CONTROLS,
            ControlField::SecondaryExit => vmcs_fields::SECONDARY_VM_EXIT_CONTROLS,
            ControlField::Entry => vmcs_fields::VM_ENTRY_CONTROLS,
            ControlField::VmFunction => vmcs_fields::VM_FUNCTION_CONTROLS,
        }
    }

    /// Capability MSR that reports the allowed settings of this field (the non-TRUE MSR
    /// for fields that also have a TRUE variant; see [`ControlField::true_capability_msr`]).
    pub const fn capability_msr(self) -> u32 {
        match self {
            ControlField::PinBased => msr::IA32_VMX_PINBASED_CTLS,
            ControlField::PrimaryProcessor => msr::IA32_VMX_PROCBASED_CTLS,
            ControlField::SecondaryProcessor => msr::IA32_VMX_PROCBASED_CTLS2,
            ControlField::TertiaryProcessor => msr::IA32_VMX_PROCBASED_CTLS3,
            ControlField::PrimaryExit => msr::IA32_VMX_EXIT_CTLS,
            ControlField::SecondaryExit => msr::IA32_VMX_EXIT_CTLS2,
            ControlField::Entry => msr::IA32_VMX_ENTRY_CTLS,
            ControlField::VmFunction => msr::IA32_VMX_VMFUNC,
        }
    }

    /// The IA32_VMX_TRUE_* capability MSR, for the four fields that have one (used when
    /// `IA32_VMX_BASIC[55]` is 1).
    pub const fn true_capability_msr(self) -> Option<u32> {
        match self {
            ControlField::PinBased => Some(msr::IA32_VMX_TRUE_PINBASED_CTLS),
            ControlField::PrimaryProcessor => Some(msr::IA32_VMX_TRUE_PROCBASED_CTLS),
            ControlField::PrimaryExit => Some(msr::IA32_VMX_TRUE_EXIT_CTLS),
            ControlField::Entry => Some(msr::IA32_VMX_TRUE_ENTRY_CTLS),
            _ => None,
        }
    }

    /// Whether the field is 64 bits wide (the others are 32 bits).
    pub const fn is_64bit(self) -> bool {
        matches!(
            self,
            ControlField::TertiaryProcessor
                | ControlField::SecondaryExit
                | ControlField::VmFunction
        )
    }

    /// Reserved bits of the "default1" class: bits that must be 1 when the processor
    /// does not report a TRUE capability MSR (SDM Vol. 3D Appendix A.2 "Reserved
    /// Controls and Default Settings"). Zero for fields without a default1 class.
    pub const fn default1(self) -> u64 {
        match self {
            ControlField::PinBased => 0x0000_0016,
            ControlField::PrimaryProcessor => 0x0401_E172,
            ControlField::PrimaryExit => 0x0003_6DFF,
            ControlField::Entry => 0x0000_11FF,
            _ => 0,
        }
    }

    /// The controls of this field that are set in `value`, in bit order. Set bits that
    /// no row names (reserved bits) are not reported; see [`ControlField::unknown_bits`].
    pub fn decode(self, value: u64) -> impl Iterator<Item = &'static ControlInfo> {
        CONTROLS.iter().filter(move |c| c.field == self && value & c.mask() != 0)
    }

    /// Bits set in `value` that no control of this field defines.
    pub fn unknown_bits(self, value: u64) -> u64 {
        let known = CONTROLS.iter().filter(|c| c.field == self).fold(0u64, |acc, c| acc | c.mask());
        value & !known
    }
}

/// One named control bit.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ControlInfo {
    /// The VMCS field the bit belongs to.
    pub field: ControlField,
    /// Bit position.
    pub bit: u8,
    /// Constant name, e.g. `"ENABLE_EPT"` (unique within its field).
    pub name: &'static str,
    /// The SDM's name for the control, e.g. `"Enable EPT"`.
    pub title: &'static str,
    /// One-line meaning of setting the bit.
    pub meaning: &'static str,
    /// The SDM table that defines the bit.
    pub reference: &'static str,
}

impl ControlInfo {
    /// Mask of the bit within its field.
    pub const fn mask(&self) -> u64 {
        1u64 << (self.bit & 63)
    }

    /// The control at `bit` of `field`, if the SDM defines one.
    pub fn find(field: ControlField, bit: u8) -> Option<&'static ControlInfo> {
        CONTROLS.iter().find(|c| c.field == field && c.bit == bit)
    }

    /// The control of `field` whose mask is exactly `mask`, if any.
    pub fn find_mask(field: ControlField, mask: u64) -> Option<&'static ControlInfo> {
        CONTROLS.iter().find(|c| c.field == field && c.mask() == mask)
    }

    /// The control of `field` with this constant name (ASCII case-insensitive).
    pub fn by_name(field: ControlField, name: &str) -> Option<&'static ControlInfo> {
        CONTROLS.iter().find(|c| c.field == field && c.name.eq_ignore_ascii_case(name))
    }
}

/// A reference to one control bit, used by VMCS fields that exist only when a control
/// can be set (see [`crate::vmcs_fields::FieldGate`]).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ControlRef {
    /// The control field.
    pub field: ControlField,
    /// Mask of the bit within the field.
    pub mask: u64,
}

impl ControlRef {
    /// The table row for this control.
    pub fn info(self) -> Option<&'static ControlInfo> {
        ControlInfo::find_mask(self.field, self.mask)
    }
}

/// Declares every control once: one module of masks per field plus [`CONTROLS`].
macro_rules! vmx_controls {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident => mod $module:ident: $ty:ty {
            $( $name:ident = $bit:literal, $title:literal, $meaning:literal; )*
        }
    )*) => {
        $(
            $(#[doc = $doc])*
            pub mod $module {
                /// The control field these masks belong to.
                pub const FIELD: super::ControlField = super::ControlField::$field;
                $(
                    #[doc = concat!("\"", $title, "\" (bit ", stringify!($bit), "): ", $meaning, ".")]
                    pub const $name: $ty = 1 << $bit;
                )*
            }
        )*

        /// Every named control bit of every control field, by field then bit.
        pub static CONTROLS: &[ControlInfo] = &[
            $( $(
                ControlInfo {
                    field: ControlField::$field,
                    bit: $bit,
                    name: stringify!($name),
                    title: $title,
                    meaning: $meaning,
                    reference: ControlField::$field.reference(),
                },
            )* )*
        ];
    };
}

vmx_controls! {
    /// Pin-based VM-execution controls (VMCS 0x4000).
    PinBased => mod pin: u32 {
        EXTERNAL_INTERRUPT_EXITING = 0, "External-interrupt exiting", "External interrupts cause VM exits instead of being delivered through the guest IDT";
        NMI_EXITING = 3, "NMI exiting", "NMIs cause VM exits instead of being delivered through the guest IDT";
        VIRTUAL_NMIS = 5, "Virtual NMIs", "NMIs are never blocked; blocking by NMI tracks virtual-NMI blocking";
        ACTIVATE_PREEMPTION_TIMER = 6, "Activate VMX-preemption timer", "The VMX-preemption timer counts down in non-root operation and causes a VM exit at zero";
        PROCESS_POSTED_INTERRUPTS = 7, "Process posted interrupts", "Interrupts with the posted-interrupt notification vector update the virtual-APIC page";
    }
    /// Primary processor-based VM-execution controls (VMCS 0x4002).
    PrimaryProcessor => mod proc: u32 {
        INTERRUPT_WINDOW_EXITING = 2, "Interrupt-window exiting", "VM exit at the start of any instruction when RFLAGS.IF = 1 and nothing blocks interrupts";
        USE_TSC_OFFSETTING = 3, "Use TSC offsetting", "RDTSC, RDTSCP and RDMSR of IA32_TIME_STAMP_COUNTER add the TSC offset";
        HLT_EXITING = 7, "HLT exiting", "HLT causes a VM exit";
        INVLPG_EXITING = 9, "INVLPG exiting", "INVLPG causes a VM exit";
        MWAIT_EXITING = 10, "MWAIT exiting", "MWAIT causes a VM exit";
        RDPMC_EXITING = 11, "RDPMC exiting", "RDPMC causes a VM exit";
        RDTSC_EXITING = 12, "RDTSC exiting", "RDTSC and RDTSCP cause VM exits";
        CR3_LOAD_EXITING = 15, "CR3-load exiting", "MOV to CR3 causes a VM exit unless the value is one of the CR3-target values";
        CR3_STORE_EXITING = 16, "CR3-store exiting", "MOV from CR3 causes a VM exit";
        ACTIVATE_TERTIARY_CONTROLS = 17, "Activate tertiary controls", "The tertiary processor-based VM-execution controls are used";
        CR8_LOAD_EXITING = 19, "CR8-load exiting", "MOV to CR8 causes a VM exit";
        CR8_STORE_EXITING = 20, "CR8-store exiting", "MOV from CR8 causes a VM exit";
        USE_TPR_SHADOW = 21, "Use TPR shadow", "TPR virtualization and other APIC virtualization through the virtual-APIC page";
        NMI_WINDOW_EXITING = 22, "NMI-window exiting", "VM exit at the start of any instruction when there is no virtual-NMI blocking";
        MOV_DR_EXITING = 23, "MOV-DR exiting", "MOV to or from debug registers causes a VM exit";
        UNCONDITIONAL_IO_EXITING = 24, "Unconditional I/O exiting", "Every I/O instruction causes a VM exit (ignored when I/O bitmaps are used)";
        USE_IO_BITMAPS = 25, "Use I/O bitmaps", "I/O bitmaps A and B select the ports whose accesses cause VM exits";
        MONITOR_TRAP_FLAG = 27, "Monitor trap flag", "VM exit after the first instruction executed in non-root operation (MTF)";
        USE_MSR_BITMAPS = 28, "Use MSR bitmaps", "MSR bitmaps select the RDMSR/WRMSR accesses that cause VM exits";
        MONITOR_EXITING = 29, "MONITOR exiting", "MONITOR causes a VM exit";
        PAUSE_EXITING = 30, "PAUSE exiting", "PAUSE causes a VM exit";
        ACTIVATE_SECONDARY_CONTROLS = 31, "Activate secondary controls", "The secondary processor-based VM-execution controls are used";
    }
    /// Secondary processor-based VM-execution controls (VMCS 0x401E).
    SecondaryProcessor => mod proc2: u32 {
        VIRTUALIZE_APIC_ACCESSES = 0, "Virtualize APIC accesses", "Accesses to the APIC-access page are virtualized or cause VM exits";
        ENABLE_EPT = 1, "Enable EPT", "Extended page tables translate guest-physical addresses";
        DESCRIPTOR_TABLE_EXITING = 2, "Descriptor-table exiting", "LGDT, LIDT, LLDT, LTR, SGDT, SIDT, SLDT, STR cause VM exits";
        ENABLE_RDTSCP = 3, "Enable RDTSCP", "RDTSCP does not cause #UD";
        VIRTUALIZE_X2APIC_MODE = 4, "Virtualize x2APIC mode", "RDMSR/WRMSR of x2APIC MSRs are virtualized";
        ENABLE_VPID = 5, "Enable VPID", "Cached linear translations are tagged with the VPID";
        WBINVD_EXITING = 6, "WBINVD exiting", "WBINVD and WBNOINVD cause VM exits";
        UNRESTRICTED_GUEST = 7, "Unrestricted guest", "The guest may run in unpaged protected mode or real-address mode";
        APIC_REGISTER_VIRTUALIZATION = 8, "APIC-register virtualization", "Reads of most APIC registers are served from the virtual-APIC page";
        VIRTUAL_INTERRUPT_DELIVERY = 9, "Virtual-interrupt delivery", "Pending virtual interrupts are evaluated and delivered";
        PAUSE_LOOP_EXITING = 10, "PAUSE-loop exiting", "A series of PAUSEs spinning longer than PLE_Window causes a VM exit";
        RDRAND_EXITING = 11, "RDRAND exiting", "RDRAND causes a VM exit";
        ENABLE_INVPCID = 12, "Enable INVPCID", "INVPCID does not cause #UD";
        ENABLE_VM_FUNCTIONS = 13, "Enable VM functions", "VMFUNC is enabled";
        VMCS_SHADOWING = 14, "VMCS shadowing", "VMREAD/VMWRITE in non-root operation may access a shadow VMCS";
        ENABLE_ENCLS_EXITING = 15, "Enable ENCLS exiting", "ENCLS leaves selected by the ENCLS-exiting bitmap cause VM exits";
        RDSEED_EXITING = 16, "RDSEED exiting", "RDSEED causes a VM exit";
        ENABLE_PML = 17, "Enable PML", "Guest-physical writes that set EPT dirty flags are logged in the page-modification log";
        EPT_VIOLATION_VE = 18, "EPT-violation #VE", "Some EPT violations cause virtualization exceptions (#VE) instead of VM exits";
        CONCEAL_VMX_FROM_PT = 19, "Conceal VMX from PT", "Intel PT suppresses packets that would reveal non-root operation";
        ENABLE_XSAVES_XRSTORS = 20, "Enable XSAVES/XRSTORS", "XSAVES and XRSTORS do not cause #UD";
        PASID_TRANSLATION = 21, "PASID translation", "ENQCMD and ENQCMDS translate PASIDs through the PASID directory";
        MODE_BASED_EPT_EXECUTE = 22, "Mode-based execute control for EPT", "EPT execute permission is separate for user-mode and supervisor-mode linear addresses";
        SUB_PAGE_WRITE_PERMISSIONS = 23, "Sub-page write permissions for EPT", "EPT write permission may be granted at 128-byte granularity";
        PT_USES_GUEST_PHYSICAL_ADDRESSES = 24, "Intel PT uses guest physical addresses", "Intel PT output addresses are guest-physical and translated through EPT";
        USE_TSC_SCALING = 25, "Use TSC scaling", "RDTSC, RDTSCP and RDMSR of the TSC multiply by the TSC multiplier";
        ENABLE_USER_WAIT_AND_PAUSE = 26, "Enable user wait and pause", "TPAUSE, UMONITOR and UMWAIT do not cause #UD";
        ENABLE_PCONFIG = 27, "Enable PCONFIG", "PCONFIG does not cause #UD";
        ENABLE_ENCLV_EXITING = 28, "Enable ENCLV exiting", "ENCLV leaves selected by the ENCLV-exiting bitmap cause VM exits";
        VMM_BUS_LOCK_DETECTION = 30, "VMM bus-lock detection", "A bus lock asserted by the guest causes a VM exit";
        INSTRUCTION_TIMEOUT = 31, "Instruction timeout", "A VM exit occurs if no instruction boundary is reached within the instruction-timeout control";
    }
    /// Tertiary processor-based VM-execution controls (VMCS 0x2034, 64 bits).
    TertiaryProcessor => mod proc3: u64 {
        LOADIWKEY_EXITING = 0, "LOADIWKEY exiting", "LOADIWKEY causes a VM exit";
        ENABLE_HLAT = 1, "Enable HLAT", "Hypervisor-managed linear-address translation is used for selected linear addresses";
        EPT_PAGING_WRITE_CONTROL = 2, "EPT paging-write control", "EPT paging-write permission applies to guest paging-structure updates";
        GUEST_PAGING_VERIFICATION = 3, "Guest-paging verification", "EPT verifies guest paging for pages marked verify-paging-write";
        IPI_VIRTUALIZATION = 4, "IPI virtualization", "IPIs sent by the guest through the virtual APIC are virtualized with the PID-pointer table";
        ENABLE_MSR_LIST_INSTRUCTIONS = 6, "Enable MSR-list instructions", "RDMSRLIST and WRMSRLIST do not cause #UD";
        VIRTUALIZE_IA32_SPEC_CTRL = 7, "Virtualize IA32_SPEC_CTRL", "Guest accesses to IA32_SPEC_CTRL use the IA32_SPEC_CTRL mask and shadow";
    }
    /// Primary VM-exit controls (VMCS 0x400C).
    PrimaryExit => mod exit: u32 {
        SAVE_DEBUG_CONTROLS = 2, "Save debug controls", "DR7 and IA32_DEBUGCTL are saved on VM exit";
        HOST_ADDRESS_SPACE_SIZE = 9, "Host address-space size", "The host runs in 64-bit mode after VM exit";
        LOAD_IA32_PERF_GLOBAL_CTRL = 12, "Load IA32_PERF_GLOBAL_CTRL", "IA32_PERF_GLOBAL_CTRL is loaded from the host-state area on VM exit";
        ACKNOWLEDGE_INTERRUPT_ON_EXIT = 15, "Acknowledge interrupt on exit", "An external-interrupt VM exit acknowledges the interrupt and stores its vector";
        SAVE_IA32_PAT = 18, "Save IA32_PAT", "IA32_PAT is saved on VM exit";
        LOAD_IA32_PAT = 19, "Load IA32_PAT", "IA32_PAT is loaded from the host-state area on VM exit";
        SAVE_IA32_EFER = 20, "Save IA32_EFER", "IA32_EFER is saved on VM exit";
        LOAD_IA32_EFER = 21, "Load IA32_EFER", "IA32_EFER is loaded from the host-state area on VM exit";
        SAVE_PREEMPTION_TIMER_VALUE = 22, "Save VMX-preemption timer value", "The VMX-preemption timer value is saved on VM exit";
        CLEAR_IA32_BNDCFGS = 23, "Clear IA32_BNDCFGS", "IA32_BNDCFGS is cleared on VM exit";
        CONCEAL_VMX_FROM_PT = 24, "Conceal VMX from PT", "Intel PT does not produce a paging information packet on VM exit";
        CLEAR_IA32_RTIT_CTL = 25, "Clear IA32_RTIT_CTL", "IA32_RTIT_CTL is cleared on VM exit";
        CLEAR_IA32_LBR_CTL = 26, "Clear IA32_LBR_CTL", "IA32_LBR_CTL is cleared on VM exit";
        CLEAR_UINV = 27, "Clear UINV", "UINV is cleared on VM exit";
        LOAD_CET_STATE = 28, "Load CET state", "CET state is loaded from the host-state area on VM exit";
        LOAD_PKRS = 29, "Load PKRS", "IA32_PKRS is loaded from the host-state area on VM exit";
        SAVE_IA32_PERF_GLOBAL_CTL = 30, "Save IA32_PERF_GLOBAL_CTL", "IA32_PERF_GLOBAL_CTL is saved on VM exit";
        ACTIVATE_SECONDARY_CONTROLS = 31, "Activate secondary controls", "The secondary VM-exit controls are used";
    }
    /// Secondary VM-exit controls (VMCS 0x2044, 64 bits).
    SecondaryExit => mod exit2: u64 {
        SAVE_FRED = 0, "Save FRED", "The guest FRED MSRs are saved on VM exit";
        LOAD_FRED = 1, "Load FRED", "The FRED MSRs are loaded from the host-state area on VM exit";
        PREMATURELY_BUSY_SHADOW_STACK = 3, "Prematurely busy shadow stack", "A VM exit reports when a shadow stack was found prematurely busy";
    }
    /// VM-entry controls (VMCS 0x4012).
    Entry => mod entry: u32 {
        LOAD_DEBUG_CONTROLS = 2, "Load debug controls", "DR7 and IA32_DEBUGCTL are loaded on VM entry";
        IA32E_MODE_GUEST = 9, "IA-32e mode guest", "The guest is in IA-32e mode after VM entry (IA32_EFER.LMA = 1)";
        ENTRY_TO_SMM = 10, "Entry to SMM", "The logical processor is in SMM after VM entry";
        DEACTIVATE_DUAL_MONITOR_TREATMENT = 11, "Deactivate dual-monitor treatment", "The default treatment of SMIs and SMM is in effect after VM entry";
        LOAD_IA32_PERF_GLOBAL_CTRL = 13, "Load IA32_PERF_GLOBAL_CTRL", "IA32_PERF_GLOBAL_CTRL is loaded on VM entry";
        LOAD_IA32_PAT = 14, "Load IA32_PAT", "IA32_PAT is loaded on VM entry";
        LOAD_IA32_EFER = 15, "Load IA32_EFER", "IA32_EFER is loaded on VM entry";
        LOAD_IA32_BNDCFGS = 16, "Load IA32_BNDCFGS", "IA32_BNDCFGS is loaded on VM entry";
        CONCEAL_VMX_FROM_PT = 17, "Conceal VMX from PT", "Intel PT does not produce a paging information packet on VM entry";
        LOAD_IA32_RTIT_CTL = 18, "Load IA32_RTIT_CTL", "IA32_RTIT_CTL is loaded on VM entry";
        LOAD_UINV = 19, "Load UINV", "UINV is loaded on VM entry";
        LOAD_CET_STATE = 20, "Load CET state", "CET state is loaded on VM entry";
        LOAD_GUEST_IA32_LBR_CTL = 21, "Load guest IA32_LBR_CTL", "IA32_LBR_CTL is loaded on VM entry";
        LOAD_PKRS = 22, "Load PKRS", "IA32_PKRS is loaded on VM entry";
        LOAD_FRED = 23, "Load FRED", "The FRED MSRs are loaded on VM entry";
    }
    /// VM-function controls (VMCS 0x2018, 64 bits).
    VmFunction => mod vmfunc: u64 {
        EPTP_SWITCHING = 0, "EPTP switching", "VMFUNC leaf 0 switches the EPTP to an entry of the EPTP list";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmcs_fields::{FieldWidth, VmcsFieldInfo};

    #[test]
    fn controls_are_ordered_unique_and_fit_their_field() {
        for pair in CONTROLS.windows(2) {
            let a = ControlField::ALL.iter().position(|f| *f == pair[0].field);
            let b = ControlField::ALL.iter().position(|f| *f == pair[1].field);
            assert!((a, pair[0].bit) < (b, pair[1].bit), "{} / {}", pair[0].name, pair[1].name);
        }
        for (i, c) in CONTROLS.iter().enumerate() {
            let width = if c.field.is_64bit() { 64 } else { 32 };
            assert!(u32::from(c.bit) < width, "{}", c.name);
            assert!(c.reference.starts_with("SDM Vol. 3C"), "{}", c.name);
            assert!(!c.title.is_empty() && !c.meaning.is_empty());
            for d in &CONTROLS[i + 1..] {
                if d.field == c.field {
                    assert_ne!(c.name, d.name);
                }
            }
        }
    }

    #[test]
    fn field_encodings_and_widths_agree_with_the_vmcs_table() {
        for f in ControlField::ALL {
            let r = VmcsFieldInfo::lookup(u64::from(f.vmcs_encoding())).expect("control field");
            let expected = if f.is_64bit() { FieldWidth::Bits64 } else { FieldWidth::Bits32 };
            assert_eq!(r.info.width, expected, "{f:?}");
            // The default1 class holds reserved bits plus a few named controls that the
            // first VMX processors fixed to 1 (SDM Vol. 3D Appendix A.2).
            let named =
                CONTROLS.iter().filter(|c| c.field == f).fold(0u64, |acc, c| acc | c.mask());
            let expected = match f {
                ControlField::PrimaryProcessor => {
                    u64::from(proc::CR3_LOAD_EXITING | proc::CR3_STORE_EXITING)
                }
                ControlField::PrimaryExit => u64::from(exit::SAVE_DEBUG_CONTROLS),
                ControlField::Entry => u64::from(entry::LOAD_DEBUG_CONTROLS),
                _ => 0,
            };
            assert_eq!(named & f.default1(), expected, "{f:?}");
        }
    }

    #[test]
    fn anchors() {
        assert_eq!(pin::NMI_EXITING, 1 << 3);
        assert_eq!(proc::HLT_EXITING, 1 << 7);
        assert_eq!(proc::ACTIVATE_SECONDARY_CONTROLS, 0x8000_0000);
        assert_eq!(proc2::ENABLE_EPT, 1 << 1);
        assert_eq!(proc2::ENABLE_VPID, 1 << 5);
        assert_eq!(proc2::UNRESTRICTED_GUEST, 1 << 7);
        assert_eq!(proc3::IPI_VIRTUALIZATION, 1 << 4);
        assert_eq!(exit::HOST_ADDRESS_SPACE_SIZE, 1 << 9);
        assert_eq!(exit::ACKNOWLEDGE_INTERRUPT_ON_EXIT, 1 << 15);
        assert_eq!(entry::IA32E_MODE_GUEST, 1 << 9);
        assert_eq!(entry::LOAD_IA32_EFER, 1 << 15);
        assert_eq!(proc2::FIELD, ControlField::SecondaryProcessor);
        assert_eq!(
            ControlInfo::find(ControlField::SecondaryProcessor, 1).map(|c| c.title),
            Some("Enable EPT")
        );
    }

    #[test]
    fn decode_lists_set_controls() {
        let v = u64::from(proc::HLT_EXITING | proc::USE_MSR_BITMAPS) | (1 << 0);
        let names: Vec<_> = ControlField::PrimaryProcessor.decode(v).map(|c| c.name).collect();
        assert_eq!(names, ["HLT_EXITING", "USE_MSR_BITMAPS"]);
        assert_eq!(ControlField::PrimaryProcessor.unknown_bits(v), 1);
        assert_eq!(ControlField::VmFunction.unknown_bits(u64::MAX), u64::MAX - 1);
    }
}
