//! The VMX feature set hvsim implements and the capability MSRs that report it (SDM Vol.
//! 3D Appendix A "VMX Capability Reporting Facility").
//!
//! [`VmxCapabilities`] is plain data: the allowed settings of every control field, the
//! miscellaneous data of IA32_VMX_MISC, the CR0/CR4 fixed bits and the EPT/VPID
//! capabilities. [`VmxCapabilities::msr`] derives the value of every IA32_VMX_* MSR from
//! it, and the VM-entry checks ([`crate::entry_checks`]) and VMREAD/VMWRITE
//! ([`crate::vmcs`]) consult the same struct, so what is reported is what is enforced.
//!
//! Because `IA32_VMX_BASIC[55]` is 1, the allowed 0-settings that VM entry enforces are
//! those of the IA32_VMX_TRUE_* MSRs (SDM Vol. 3D Appendix A.2 "Reserved Controls and
//! Default Settings"); the non-TRUE MSRs additionally report every default1 bit as
//! required.

use crate::controls::{entry, exit, pin, proc, proc2, vmfunc, ControlField};
use crate::msr;
use crate::vmcs_fields::{encoding_index, FieldGate, VmcsFieldInfo, VMCS_FIELDS};

/// The VMCS revision identifier hvsim reports in IA32_VMX_BASIC bits 30:0 and writes in
/// the first 4 bytes of every VMCS region (ASCII "HV").
pub const HVSIM_VMCS_REVISION_ID: u32 = 0x4856;
/// Size in bytes of the VMXON and VMCS regions (IA32_VMX_BASIC bits 44:32).
pub const HVSIM_VMCS_REGION_SIZE: u32 = 4096;
/// Memory type of the VMCS and related structures: write-back (6), the only type the
/// SDM currently allows to be reported (Appendix A.1).
pub const MEMORY_TYPE_WB: u64 = 6;
/// Memory type uncacheable (0), used by EPTP memory-type checks.
pub const MEMORY_TYPE_UC: u64 = 0;

/// IA32_VMX_EPT_VPID_CAP bits (SDM Vol. 3D Appendix A.10 "VPID and EPT Capabilities").
pub mod ept_vpid_cap {
    /// Bit 0: EPT supports execute-only translations.
    pub const EXECUTE_ONLY: u64 = 1 << 0;
    /// Bit 6: a page-walk length of 4 is supported.
    pub const PAGE_WALK_4: u64 = 1 << 6;
    /// Bit 7: a page-walk length of 5 is supported.
    pub const PAGE_WALK_5: u64 = 1 << 7;
    /// Bit 8: the EPT paging structures may be uncacheable (EPTP memory type 0).
    pub const MEMORY_TYPE_UC: u64 = 1 << 8;
    /// Bit 14: the EPT paging structures may be write-back (EPTP memory type 6).
    pub const MEMORY_TYPE_WB: u64 = 1 << 14;
    /// Bit 16: EPT PDEs may map 2-Mbyte pages.
    pub const PAGES_2M: u64 = 1 << 16;
    /// Bit 17: EPT PDPTEs may map 1-Gbyte pages.
    pub const PAGES_1G: u64 = 1 << 17;
    /// Bit 20: INVEPT is supported.
    pub const INVEPT: u64 = 1 << 20;
    /// Bit 21: accessed and dirty flags for EPT are supported.
    pub const ACCESS_DIRTY: u64 = 1 << 21;
    /// Bit 22: EPT violations report advanced information (qualification bits 7 and 8
    /// for all accesses).
    pub const ADVANCED_EXIT_INFO: u64 = 1 << 22;
    /// Bit 25: single-context INVEPT type is supported.
    pub const INVEPT_SINGLE_CONTEXT: u64 = 1 << 25;
    /// Bit 26: all-context INVEPT type is supported.
    pub const INVEPT_ALL_CONTEXT: u64 = 1 << 26;
    /// Bit 32: INVVPID is supported.
    pub const INVVPID: u64 = 1 << 32;
    /// Bit 40: individual-address INVVPID type is supported.
    pub const INVVPID_INDIVIDUAL_ADDRESS: u64 = 1 << 40;
    /// Bit 41: single-context INVVPID type is supported.
    pub const INVVPID_SINGLE_CONTEXT: u64 = 1 << 41;
    /// Bit 42: all-context INVVPID type is supported.
    pub const INVVPID_ALL_CONTEXT: u64 = 1 << 42;
    /// Bit 43: single-context-retaining-globals INVVPID type is supported.
    pub const INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS: u64 = 1 << 43;
}

/// CR0 and CR4 bits named by the fixed-bit rules.
pub mod cr {
    /// CR0.PE (bit 0).
    pub const CR0_PE: u64 = 1 << 0;
    /// CR0.NE (bit 5).
    pub const CR0_NE: u64 = 1 << 5;
    /// CR0.PG (bit 31).
    pub const CR0_PG: u64 = 1 << 31;
    /// CR4.PAE (bit 5).
    pub const CR4_PAE: u64 = 1 << 5;
    /// CR4.LA57 (bit 12).
    pub const CR4_LA57: u64 = 1 << 12;
    /// CR4.VMXE (bit 13).
    pub const CR4_VMXE: u64 = 1 << 13;
    /// CR4.PCIDE (bit 17).
    pub const CR4_PCIDE: u64 = 1 << 17;
    /// CR4.CET (bit 23).
    pub const CR4_CET: u64 = 1 << 23;
}

/// The CR4 bits hvsim's CPU model implements (kept in step with `CR4_VALID` in
/// `src/cpu/exec/system.rs`) plus VMXE: TSD, DE, PSE, PAE, MCE, PGE, PCE, OSFXSR,
/// OSXMMEXCPT, UMIP, LA57, VMXE, PCIDE, OSXSAVE, SMEP, SMAP, PKE.
pub const HVSIM_CR4_FIXED1: u64 = 0x0076_3FFC;

/// The allowed settings of one control field.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ControlCaps {
    /// Bits that must be 1 (the allowed 0-settings of the TRUE MSR: a 1 bit here means
    /// the control may not be 0).
    pub must_be_one: u64,
    /// Bits that may be 1 (the allowed 1-settings).
    pub may_be_one: u64,
}

impl ControlCaps {
    /// The bits of `value` that violate these settings, if any.
    pub fn check(self, value: u64) -> Result<(), BadBits> {
        let bad = BadBits {
            must_be_one: self.must_be_one & !value,
            must_be_zero: value & !self.may_be_one,
        };
        if bad.must_be_one == 0 && bad.must_be_zero == 0 {
            Ok(())
        } else {
            Err(bad)
        }
    }

    /// The 64-bit MSR form for a 32-bit control field: allowed 0-settings in bits 31:0,
    /// allowed 1-settings in bits 63:32 (SDM Vol. 3D Appendix A.3.1).
    pub const fn msr_value(self, must_be_one: u64) -> u64 {
        (must_be_one & 0xFFFF_FFFF) | (self.may_be_one << 32)
    }
}

/// The bits of a control value that the capability MSRs do not allow.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct BadBits {
    /// Bits that are 0 but must be 1.
    pub must_be_one: u64,
    /// Bits that are 1 but must be 0.
    pub must_be_zero: u64,
}

/// The implemented VMX feature set.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct VmxCapabilities {
    /// VMCS revision identifier (IA32_VMX_BASIC bits 30:0).
    pub revision_id: u32,
    /// VMCS region size in bytes (IA32_VMX_BASIC bits 44:32).
    pub region_size: u32,
    /// VM exits for INS/OUTS report the VM-exit instruction information (BASIC bit 54).
    pub ins_outs_info: bool,
    /// Pin-based VM-execution controls.
    pub pin: ControlCaps,
    /// Primary processor-based VM-execution controls.
    pub proc: ControlCaps,
    /// Secondary processor-based VM-execution controls.
    pub proc2: ControlCaps,
    /// Primary VM-exit controls.
    pub exit: ControlCaps,
    /// VM-entry controls.
    pub entry: ControlCaps,
    /// VM-function controls (allowed 1-settings only; no bit is required).
    pub vmfunc: ControlCaps,
    /// The preemption timer counts down by 1 when bit X of the TSC changes
    /// (IA32_VMX_MISC bits 4:0).
    pub preemption_timer_rate: u8,
    /// VM exits store IA32_EFER.LMA in the "IA-32e mode guest" entry control (MISC bit 5).
    pub saves_efer_lma: bool,
    /// Supported activity states as a mask of `1 << state` (0 active is always
    /// supported; MISC bits 8:6 report HLT, shutdown and wait-for-SIPI).
    pub activity_states: u8,
    /// Number of CR3-target values (MISC bits 24:16).
    pub cr3_target_count: u32,
    /// N of the recommended MSR-list limit 512 * (N + 1) (MISC bits 27:25).
    pub msr_list_n: u8,
    /// VMWRITE may write VM-exit information fields (MISC bit 29).
    pub vmwrite_exit_info: bool,
    /// Software interrupts and exceptions may be injected with instruction length 0
    /// (MISC bit 30).
    pub zero_length_injection: bool,
    /// CR0 bits that must be 1 in VMX operation.
    pub cr0_fixed0: u64,
    /// CR0 bits that may be 1 in VMX operation.
    pub cr0_fixed1: u64,
    /// CR4 bits that must be 1 in VMX operation.
    pub cr4_fixed0: u64,
    /// CR4 bits that may be 1 in VMX operation.
    pub cr4_fixed1: u64,
    /// IA32_VMX_EPT_VPID_CAP (see [`ept_vpid_cap`]).
    pub ept_vpid_cap: u64,
}

impl VmxCapabilities {
    /// The feature set hvsim implements (see the crate documentation for the list).
    pub fn hvsim_default() -> VmxCapabilities {
        let pin_may = u64::from(
            pin::EXTERNAL_INTERRUPT_EXITING
                | pin::NMI_EXITING
                | pin::VIRTUAL_NMIS
                | pin::ACTIVATE_PREEMPTION_TIMER,
        );
        let proc_may = u64::from(
            proc::INTERRUPT_WINDOW_EXITING
                | proc::USE_TSC_OFFSETTING
                | proc::HLT_EXITING
                | proc::INVLPG_EXITING
                | proc::MWAIT_EXITING
                | proc::RDPMC_EXITING
                | proc::RDTSC_EXITING
                | proc::CR3_LOAD_EXITING
                | proc::CR3_STORE_EXITING
                | proc::CR8_LOAD_EXITING
                | proc::CR8_STORE_EXITING
                | proc::USE_TPR_SHADOW
                | proc::NMI_WINDOW_EXITING
                | proc::MOV_DR_EXITING
                | proc::UNCONDITIONAL_IO_EXITING
                | proc::USE_IO_BITMAPS
                | proc::MONITOR_TRAP_FLAG
                | proc::USE_MSR_BITMAPS
                | proc::MONITOR_EXITING
                | proc::PAUSE_EXITING
                | proc::ACTIVATE_SECONDARY_CONTROLS,
        );
        let proc2_may = u64::from(
            proc2::ENABLE_EPT
                | proc2::DESCRIPTOR_TABLE_EXITING
                | proc2::ENABLE_RDTSCP
                | proc2::ENABLE_VPID
                | proc2::WBINVD_EXITING
                | proc2::UNRESTRICTED_GUEST
                | proc2::PAUSE_LOOP_EXITING
                | proc2::RDRAND_EXITING
                | proc2::ENABLE_INVPCID
                | proc2::ENABLE_VM_FUNCTIONS
                | proc2::RDSEED_EXITING,
        );
        let exit_may = u64::from(
            exit::SAVE_DEBUG_CONTROLS
                | exit::HOST_ADDRESS_SPACE_SIZE
                | exit::ACKNOWLEDGE_INTERRUPT_ON_EXIT
                | exit::SAVE_IA32_PAT
                | exit::LOAD_IA32_PAT
                | exit::SAVE_IA32_EFER
                | exit::LOAD_IA32_EFER
                | exit::SAVE_PREEMPTION_TIMER_VALUE,
        );
        let entry_may = u64::from(
            entry::LOAD_DEBUG_CONTROLS
                | entry::IA32E_MODE_GUEST
                | entry::LOAD_IA32_PAT
                | entry::LOAD_IA32_EFER,
        );
        // The TRUE MSRs let software clear the default1 bits that name controls (CR3
        // load/store exiting, save/load debug controls); the unnamed default1 bits stay
        // fixed to 1, as on every Intel processor (SDM Vol. 3D Appendix A.2).
        let d1 = |f: ControlField| f.default1();
        let pin_must = d1(ControlField::PinBased);
        let proc_must = d1(ControlField::PrimaryProcessor)
            & !u64::from(proc::CR3_LOAD_EXITING | proc::CR3_STORE_EXITING);
        let exit_must = d1(ControlField::PrimaryExit) & !u64::from(exit::SAVE_DEBUG_CONTROLS);
        let entry_must = d1(ControlField::Entry) & !u64::from(entry::LOAD_DEBUG_CONTROLS);
        use ept_vpid_cap as c;
        VmxCapabilities {
            revision_id: HVSIM_VMCS_REVISION_ID,
            region_size: HVSIM_VMCS_REGION_SIZE,
            ins_outs_info: true,
            pin: ControlCaps {
                must_be_one: pin_must,
                may_be_one: pin_may | d1(ControlField::PinBased),
            },
            proc: ControlCaps {
                must_be_one: proc_must,
                may_be_one: proc_may | d1(ControlField::PrimaryProcessor),
            },
            proc2: ControlCaps { must_be_one: 0, may_be_one: proc2_may },
            exit: ControlCaps {
                must_be_one: exit_must,
                may_be_one: exit_may | d1(ControlField::PrimaryExit),
            },
            entry: ControlCaps {
                must_be_one: entry_must,
                may_be_one: entry_may | d1(ControlField::Entry),
            },
            vmfunc: ControlCaps { must_be_one: 0, may_be_one: vmfunc::EPTP_SWITCHING },
            preemption_timer_rate: 5,
            saves_efer_lma: true,
            activity_states: 0b1111,
            cr3_target_count: 4,
            msr_list_n: 0,
            vmwrite_exit_info: true,
            zero_length_injection: true,
            cr0_fixed0: cr::CR0_PE | cr::CR0_NE | cr::CR0_PG,
            cr0_fixed1: 0xFFFF_FFFF,
            cr4_fixed0: cr::CR4_VMXE,
            cr4_fixed1: HVSIM_CR4_FIXED1,
            ept_vpid_cap: c::EXECUTE_ONLY
                | c::PAGE_WALK_4
                | c::MEMORY_TYPE_UC
                | c::MEMORY_TYPE_WB
                | c::PAGES_2M
                | c::PAGES_1G
                | c::INVEPT
                | c::ACCESS_DIRTY
                | c::ADVANCED_EXIT_INFO
                | c::INVEPT_SINGLE_CONTEXT
                | c::INVEPT_ALL_CONTEXT
                | c::INVVPID
                | c::INVVPID_INDIVIDUAL_ADDRESS
                | c::INVVPID_SINGLE_CONTEXT
                | c::INVVPID_ALL_CONTEXT
                | c::INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS,
        }
    }

    /// The allowed settings of a control field. Fields hvsim does not implement
    /// (tertiary processor-based, secondary VM-exit) allow nothing.
    pub fn control_caps(&self, field: ControlField) -> ControlCaps {
        match field {
            ControlField::PinBased => self.pin,
            ControlField::PrimaryProcessor => self.proc,
            ControlField::SecondaryProcessor => self.proc2,
            ControlField::PrimaryExit => self.exit,
            ControlField::Entry => self.entry,
            ControlField::VmFunction => self.vmfunc,
            ControlField::TertiaryProcessor | ControlField::SecondaryExit => ControlCaps::default(),
        }
    }

    /// The allowed 1-settings of a control field.
    pub fn allowed1(&self, field: ControlField) -> u64 {
        self.control_caps(field).may_be_one
    }

    /// Whether `value` is an allowed setting of `field`, as VM entry checks it (SDM Vol.
    /// 3C 27.2.1.1 "VM-Execution Control Fields", 27.2.1.2, 27.2.1.3): every bit the TRUE
    /// MSR requires is 1 and no bit outside the allowed 1-settings is 1.
    pub fn control_allowed(&self, field: ControlField, value: u64) -> Result<(), BadBits> {
        self.control_caps(field).check(value)
    }

    /// Whether a VMCS field exists on this processor: VMREAD/VMWRITE of any other field
    /// fail with error 12. Fields gated on a non-VMX capability (dual-monitor treatment,
    /// FRED, TDX) do not exist in hvsim.
    pub fn field_supported(&self, info: &VmcsFieldInfo) -> bool {
        match info.gate {
            FieldGate::Capability(_) => false,
            gate => gate.supported(|f| self.allowed1(f)).unwrap_or(false),
        }
    }

    /// Whether the activity state (0 active, 1 HLT, 2 shutdown, 3 wait-for-SIPI) is
    /// supported.
    pub fn activity_state_supported(&self, state: u64) -> bool {
        state < 8 && self.activity_states & (1 << state) != 0
    }

    /// Whether INVEPT supports this type (1 single-context, 2 all-context); INVEPT of
    /// another type fails with error 28 (SDM Vol. 3C "INVEPT—Invalidate Translations
    /// Derived from EPT").
    pub fn invept_type_supported(&self, ty: u64) -> bool {
        let bit = match ty {
            1 => ept_vpid_cap::INVEPT_SINGLE_CONTEXT,
            2 => ept_vpid_cap::INVEPT_ALL_CONTEXT,
            _ => return false,
        };
        self.ept_vpid_cap & ept_vpid_cap::INVEPT != 0 && self.ept_vpid_cap & bit != 0
    }

    /// Whether INVVPID supports this type (0 individual-address, 1 single-context,
    /// 2 all-context, 3 single-context-retaining-globals); another type fails with error
    /// 28 (SDM Vol. 3C "INVVPID—Invalidate Translations Based on VPID").
    pub fn invvpid_type_supported(&self, ty: u64) -> bool {
        let bit = match ty {
            0 => ept_vpid_cap::INVVPID_INDIVIDUAL_ADDRESS,
            1 => ept_vpid_cap::INVVPID_SINGLE_CONTEXT,
            2 => ept_vpid_cap::INVVPID_ALL_CONTEXT,
            3 => ept_vpid_cap::INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS,
            _ => return false,
        };
        self.ept_vpid_cap & ept_vpid_cap::INVVPID != 0 && self.ept_vpid_cap & bit != 0
    }

    /// The recommended maximum number of MSRs in each MSR list: 512 * (N + 1) (SDM Vol.
    /// 3D Appendix A.6 "Miscellaneous Data").
    pub fn max_msr_list(&self) -> u32 {
        512 * (u32::from(self.msr_list_n & 7) + 1)
    }

    /// IA32_VMX_VMCS_ENUM: the highest index (bits 9:1 of an encoding) of any supported
    /// field, in bits 9:1 (SDM Vol. 3D Appendix A.9 "VMCS Enumeration").
    pub fn vmcs_enum(&self) -> u64 {
        let highest = VMCS_FIELDS
            .iter()
            .filter(|f| self.field_supported(f))
            .map(|f| encoding_index(f.encoding))
            .max()
            .unwrap_or(0);
        u64::from(highest) << 1
    }

    /// IA32_VMX_BASIC (SDM Vol. 3D Appendix A.1 "Basic VMX Information").
    pub fn basic(&self) -> u64 {
        u64::from(self.revision_id) & msr::BASIC_REVISION_ID_MASK
            | (u64::from(self.region_size) << 32) & msr::BASIC_REGION_SIZE_MASK
            | MEMORY_TYPE_WB << 50
            | if self.ins_outs_info { msr::BASIC_INS_OUTS_INFO } else { 0 }
            | msr::BASIC_TRUE_CONTROLS
    }

    /// IA32_VMX_MISC (SDM Vol. 3D Appendix A.6 "Miscellaneous Data").
    pub fn misc(&self) -> u64 {
        let mut v = u64::from(self.preemption_timer_rate) & msr::MISC_PREEMPTION_TIMER_RATE_MASK;
        if self.saves_efer_lma {
            v |= msr::MISC_SAVES_EFER_LMA;
        }
        if self.activity_state_supported(1) {
            v |= msr::MISC_ACTIVITY_HLT;
        }
        if self.activity_state_supported(2) {
            v |= msr::MISC_ACTIVITY_SHUTDOWN;
        }
        if self.activity_state_supported(3) {
            v |= msr::MISC_ACTIVITY_WAIT_SIPI;
        }
        v |= (u64::from(self.cr3_target_count) << 16) & msr::MISC_CR3_TARGET_COUNT_MASK;
        v |= (u64::from(self.msr_list_n) << 25) & msr::MISC_MAX_MSR_LIST_MASK;
        if self.vmwrite_exit_info {
            v |= msr::MISC_VMWRITE_ANY_FIELD;
        }
        if self.zero_length_injection {
            v |= msr::MISC_ZERO_LENGTH_INJECTION;
        }
        v
    }

    /// The value RDMSR returns for a VMX capability MSR, or `None` if the MSR does not
    /// exist on this processor (RDMSR raises #GP): PROCBASED_CTLS2 needs the secondary
    /// controls, EPT_VPID_CAP needs EPT or VPID, VMFUNC needs VM functions,
    /// PROCBASED_CTLS3 and EXIT_CTLS2 need the tertiary / secondary exit controls (SDM
    /// Vol. 3D Appendix A.3.3, A.3.4, A.4.2, A.10, A.11).
    pub fn msr(&self, index: u32) -> Option<u64> {
        let d1 = |f: ControlField| f.default1();
        let secondary = self.proc.may_be_one & u64::from(proc::ACTIVATE_SECONDARY_CONTROLS) != 0;
        Some(match index {
            msr::IA32_VMX_BASIC => self.basic(),
            msr::IA32_VMX_PINBASED_CTLS => {
                self.pin.msr_value(self.pin.must_be_one | d1(ControlField::PinBased))
            }
            msr::IA32_VMX_PROCBASED_CTLS => {
                self.proc.msr_value(self.proc.must_be_one | d1(ControlField::PrimaryProcessor))
            }
            msr::IA32_VMX_EXIT_CTLS => {
                self.exit.msr_value(self.exit.must_be_one | d1(ControlField::PrimaryExit))
            }
            msr::IA32_VMX_ENTRY_CTLS => {
                self.entry.msr_value(self.entry.must_be_one | d1(ControlField::Entry))
            }
            msr::IA32_VMX_TRUE_PINBASED_CTLS => self.pin.msr_value(self.pin.must_be_one),
            msr::IA32_VMX_TRUE_PROCBASED_CTLS => self.proc.msr_value(self.proc.must_be_one),
            msr::IA32_VMX_TRUE_EXIT_CTLS => self.exit.msr_value(self.exit.must_be_one),
            msr::IA32_VMX_TRUE_ENTRY_CTLS => self.entry.msr_value(self.entry.must_be_one),
            msr::IA32_VMX_MISC => self.misc(),
            msr::IA32_VMX_CR0_FIXED0 => self.cr0_fixed0,
            msr::IA32_VMX_CR0_FIXED1 => self.cr0_fixed1,
            msr::IA32_VMX_CR4_FIXED0 => self.cr4_fixed0,
            msr::IA32_VMX_CR4_FIXED1 => self.cr4_fixed1,
            msr::IA32_VMX_VMCS_ENUM => self.vmcs_enum(),
            msr::IA32_VMX_PROCBASED_CTLS2 if secondary => {
                self.proc2.msr_value(self.proc2.must_be_one)
            }
            msr::IA32_VMX_EPT_VPID_CAP
                if secondary
                    && self.proc2.may_be_one
                        & u64::from(proc2::ENABLE_EPT | proc2::ENABLE_VPID)
                        != 0 =>
            {
                self.ept_vpid_cap
            }
            msr::IA32_VMX_VMFUNC
                if secondary
                    && self.proc2.may_be_one & u64::from(proc2::ENABLE_VM_FUNCTIONS) != 0 =>
            {
                self.vmfunc.may_be_one
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msr::*;

    const PAIRS: [(u32, u32, ControlField); 4] = [
        (IA32_VMX_PINBASED_CTLS, IA32_VMX_TRUE_PINBASED_CTLS, ControlField::PinBased),
        (IA32_VMX_PROCBASED_CTLS, IA32_VMX_TRUE_PROCBASED_CTLS, ControlField::PrimaryProcessor),
        (IA32_VMX_EXIT_CTLS, IA32_VMX_TRUE_EXIT_CTLS, ControlField::PrimaryExit),
        (IA32_VMX_ENTRY_CTLS, IA32_VMX_TRUE_ENTRY_CTLS, ControlField::Entry),
    ];

    /// SDM Vol. 3D Appendix A.3-A.5: a bit that must be 1 (allowed 0-setting = 1) must
    /// also be allowed to be 1.
    #[test]
    fn allowed0_bits_are_within_allowed1() {
        let caps = VmxCapabilities::hvsim_default();
        for idx in [
            IA32_VMX_PINBASED_CTLS,
            IA32_VMX_PROCBASED_CTLS,
            IA32_VMX_EXIT_CTLS,
            IA32_VMX_ENTRY_CTLS,
            IA32_VMX_TRUE_PINBASED_CTLS,
            IA32_VMX_TRUE_PROCBASED_CTLS,
            IA32_VMX_TRUE_EXIT_CTLS,
            IA32_VMX_TRUE_ENTRY_CTLS,
            IA32_VMX_PROCBASED_CTLS2,
        ] {
            let v = caps.msr(idx).expect("MSR exists");
            let (allowed0, allowed1) = (v & 0xFFFF_FFFF, v >> 32);
            assert_eq!(allowed0 & !allowed1, 0, "MSR {idx:#x}");
        }
    }

    /// SDM Vol. 3D Appendix A.2: the TRUE MSRs may only clear default1 bits; the non-TRUE
    /// MSRs report every default1 bit as required; the allowed 1-settings are the same.
    #[test]
    fn true_forms_clear_only_default1_bits() {
        let caps = VmxCapabilities::hvsim_default();
        for (plain, tru, field) in PAIRS {
            let (p, t) = (caps.msr(plain).unwrap(), caps.msr(tru).unwrap());
            assert_eq!(p >> 32, t >> 32, "{field:?} allowed-1 differs");
            let (p0, t0) = (p & 0xFFFF_FFFF, t & 0xFFFF_FFFF);
            assert_eq!(t0 & !p0, 0, "{field:?}: TRUE requires more");
            assert_eq!((p0 & !t0) & !field.default1(), 0, "{field:?}: cleared non-default1");
            assert_eq!(p0 & field.default1(), field.default1(), "{field:?}");
        }
        // The named default1 controls are the ones software may clear.
        let t = caps.msr(IA32_VMX_TRUE_PROCBASED_CTLS).unwrap();
        assert_eq!(t & u64::from(proc::CR3_LOAD_EXITING), 0);
        assert_eq!(
            caps.msr(IA32_VMX_TRUE_ENTRY_CTLS).unwrap() & u64::from(entry::LOAD_DEBUG_CONTROLS),
            0
        );
    }

    /// SDM Vol. 3D Appendix A.1 "Basic VMX Information".
    #[test]
    fn basic_reports_revision_size_wb_insouts_and_true_controls() {
        let b = VmxCapabilities::hvsim_default().msr(IA32_VMX_BASIC).unwrap();
        assert_eq!(b & BASIC_REVISION_ID_MASK, u64::from(HVSIM_VMCS_REVISION_ID));
        assert_eq!(b & (1 << 31), 0);
        assert_eq!((b & BASIC_REGION_SIZE_MASK) >> 32, 4096);
        assert_eq!((b & BASIC_MEMORY_TYPE_MASK) >> 50, 6);
        assert_ne!(b & BASIC_INS_OUTS_INFO, 0);
        assert_ne!(b & BASIC_TRUE_CONTROLS, 0);
        assert_eq!(b & (BASIC_PHYS_ADDR_32BIT | BASIC_DUAL_MONITOR), 0);
    }

    /// SDM Vol. 3D Appendix A.6, A.7, A.8, A.9, A.10, A.11.
    #[test]
    fn misc_fixed_enum_ept_vmfunc() {
        let caps = VmxCapabilities::hvsim_default();
        let misc = caps.msr(IA32_VMX_MISC).unwrap();
        assert_eq!(misc & MISC_PREEMPTION_TIMER_RATE_MASK, 5);
        assert_eq!((misc & MISC_CR3_TARGET_COUNT_MASK) >> 16, 4);
        assert_ne!(misc & MISC_ACTIVITY_HLT, 0);
        assert_ne!(misc & MISC_ACTIVITY_WAIT_SIPI, 0);
        assert_ne!(misc & MISC_VMWRITE_ANY_FIELD, 0);
        assert_eq!(caps.max_msr_list(), 512);
        // Fixed bits: every FIXED0 bit is allowed by FIXED1.
        assert_eq!(caps.cr0_fixed0 & !caps.cr0_fixed1, 0);
        assert_eq!(caps.cr4_fixed0 & !caps.cr4_fixed1, 0);
        assert_ne!(caps.msr(IA32_VMX_CR4_FIXED0).unwrap() & cr::CR4_VMXE, 0);
        // The highest supported index: VMX_PREEMPTION_TIMER_VALUE (0x482E, index 0x17) is
        // the largest index of any field hvsim supports.
        let e = caps.msr(IA32_VMX_VMCS_ENUM).unwrap();
        assert_eq!(
            e,
            u64::from(encoding_index(crate::vmcs_fields::VMX_PREEMPTION_TIMER_VALUE)) << 1
        );
        for f in VMCS_FIELDS.iter().filter(|f| caps.field_supported(f)) {
            assert!(u64::from(encoding_index(f.encoding)) << 1 <= e, "{}", f.name);
        }
        let ept = caps.msr(IA32_VMX_EPT_VPID_CAP).unwrap();
        assert_ne!(ept & ept_vpid_cap::PAGE_WALK_4, 0);
        assert_ne!(ept & ept_vpid_cap::MEMORY_TYPE_WB, 0);
        assert_eq!(caps.msr(IA32_VMX_VMFUNC), Some(1));
        // Unimplemented control fields have no capability MSR.
        assert_eq!(caps.msr(IA32_VMX_PROCBASED_CTLS3), None);
        assert_eq!(caps.msr(IA32_VMX_EXIT_CTLS2), None);
    }

    /// Every control hvsim allows to be 1 is a named control or a default1 bit, and
    /// the brief's feature list is advertised (SDM Vol. 3D Appendix A.3-A.5).
    #[test]
    fn allowed_controls_are_named_or_default1() {
        let caps = VmxCapabilities::hvsim_default();
        for field in ControlField::ALL {
            let may = caps.allowed1(field);
            assert_eq!(field.unknown_bits(may) & !field.default1(), 0, "{field:?}");
        }
        assert_ne!(caps.proc2.may_be_one & u64::from(proc2::UNRESTRICTED_GUEST), 0);
        assert_ne!(caps.exit.may_be_one & u64::from(exit::ACKNOWLEDGE_INTERRUPT_ON_EXIT), 0);
        assert_eq!(caps.exit.may_be_one & u64::from(exit::LOAD_IA32_PERF_GLOBAL_CTRL), 0);
        assert_eq!(caps.proc.may_be_one & u64::from(proc::ACTIVATE_TERTIARY_CONTROLS), 0);
    }

    /// SDM Vol. 3C "INVEPT", "INVVPID": the supported types follow IA32_VMX_EPT_VPID_CAP.
    #[test]
    fn invept_invvpid_types() {
        let mut caps = VmxCapabilities::hvsim_default();
        assert!(!caps.invept_type_supported(0));
        assert!(caps.invept_type_supported(1) && caps.invept_type_supported(2));
        assert!(!caps.invept_type_supported(3));
        assert!((0..4).all(|t| caps.invvpid_type_supported(t)));
        assert!(!caps.invvpid_type_supported(4));
        caps.ept_vpid_cap &= !ept_vpid_cap::INVVPID;
        assert!(!caps.invvpid_type_supported(1));
    }

    #[test]
    fn control_allowed_names_the_bad_bits() {
        let caps = VmxCapabilities::hvsim_default();
        let base = caps.pin.must_be_one;
        assert_eq!(caps.control_allowed(ControlField::PinBased, base), Ok(()));
        let posted = u64::from(pin::PROCESS_POSTED_INTERRUPTS);
        assert_eq!(
            caps.control_allowed(ControlField::PinBased, base | posted),
            Err(BadBits { must_be_one: 0, must_be_zero: posted })
        );
        assert_eq!(
            caps.control_allowed(ControlField::PinBased, 0),
            Err(BadBits { must_be_one: base, must_be_zero: 0 })
        );
        assert!(caps.control_allowed(ControlField::TertiaryProcessor, 1).is_err());
    }
}
