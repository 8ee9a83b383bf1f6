//! VM-instruction error numbers (SDM Vol. 3C chapter "VMX Instruction Reference",
//! section "VM Instruction Error Numbers").
//!
//! A VMfailValid writes one of these numbers to the VM-instruction error field (VMCS
//! encoding 0x4400). The field is guest-readable, so [`VmInstructionError`] is an open
//! newtype; each defined number is declared once in the `vm_instruction_errors!` table
//! below. Numbers 14, 21 and 27 are reserved and have no row.

use core::fmt;

/// Reference string for every row.
const REF: &str =
    "SDM Vol. 3C \"VM Instruction Error Numbers\" (Table \"VM-Instruction Error Numbers\")";

/// A VM-instruction error number. Open: any value is representable.
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize,
)]
pub struct VmInstructionError(pub u32);

/// One row of the SDM's VM-instruction error table.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct VmInstructionErrorInfo {
    /// The error number.
    pub error: VmInstructionError,
    /// Constant name, e.g. `"ENTRY_INVALID_CONTROL_FIELD"`.
    pub name: &'static str,
    /// The SDM's description.
    pub text: &'static str,
    /// Where the number is defined in the SDM.
    pub reference: &'static str,
}

/// Declares each error number once: an associated constant and a row of
/// [`VM_INSTRUCTION_ERRORS`]. Rows must be ascending (unit-tested).
macro_rules! vm_instruction_errors {
    ($( $name:ident = $number:literal, $text:literal; )*) => {
        impl VmInstructionError {
            $(
                #[doc = concat!("Error ", stringify!($number), ": ", $text, ".")]
                pub const $name: VmInstructionError = VmInstructionError($number);
            )*
        }

        /// Every defined VM-instruction error number, ascending.
        pub static VM_INSTRUCTION_ERRORS: &[VmInstructionErrorInfo] = &[
            $(
                VmInstructionErrorInfo {
                    error: VmInstructionError($number),
                    name: stringify!($name),
                    text: $text,
                    reference: REF,
                },
            )*
        ];
    };
}

vm_instruction_errors! {
    VMCALL_IN_VMX_ROOT = 1, "VMCALL executed in VMX root operation";
    VMCLEAR_INVALID_ADDRESS = 2, "VMCLEAR with invalid physical address";
    VMCLEAR_VMXON_POINTER = 3, "VMCLEAR with VMXON pointer";
    VMLAUNCH_NON_CLEAR_VMCS = 4, "VMLAUNCH with non-clear VMCS";
    VMRESUME_NON_LAUNCHED_VMCS = 5, "VMRESUME with non-launched VMCS";
    VMRESUME_AFTER_VMXOFF = 6, "VMRESUME after VMXOFF (VMXOFF and VMXON between VMLAUNCH and VMRESUME)";
    ENTRY_INVALID_CONTROL_FIELD = 7, "VM entry with invalid control field(s)";
    ENTRY_INVALID_HOST_STATE_FIELD = 8, "VM entry with invalid host-state field(s)";
    VMPTRLD_INVALID_ADDRESS = 9, "VMPTRLD with invalid physical address";
    VMPTRLD_VMXON_POINTER = 10, "VMPTRLD with VMXON pointer";
    VMPTRLD_INCORRECT_REVISION = 11, "VMPTRLD with incorrect VMCS revision identifier";
    UNSUPPORTED_VMCS_COMPONENT = 12, "VMREAD/VMWRITE from/to unsupported VMCS component";
    VMWRITE_READ_ONLY_COMPONENT = 13, "VMWRITE to read-only VMCS component";
    VMXON_IN_VMX_ROOT = 15, "VMXON executed in VMX root operation";
    ENTRY_INVALID_EXECUTIVE_VMCS_POINTER = 16, "VM entry with invalid executive-VMCS pointer";
    ENTRY_NON_LAUNCHED_EXECUTIVE_VMCS = 17, "VM entry with non-launched executive VMCS";
    ENTRY_EXECUTIVE_VMCS_NOT_VMXON_POINTER = 18, "VM entry with executive-VMCS pointer not VMXON pointer (when attempting to deactivate the dual-monitor treatment of SMIs and SMM)";
    VMCALL_NON_CLEAR_VMCS = 19, "VMCALL with non-clear VMCS (when attempting to activate the dual-monitor treatment of SMIs and SMM)";
    VMCALL_INVALID_EXIT_CONTROL_FIELDS = 20, "VMCALL with invalid VM-exit control fields";
    VMCALL_INCORRECT_MSEG_REVISION = 22, "VMCALL with incorrect MSEG revision identifier (when attempting to activate the dual-monitor treatment of SMIs and SMM)";
    VMXOFF_UNDER_DUAL_MONITOR = 23, "VMXOFF under dual-monitor treatment of SMIs and SMM";
    VMCALL_INVALID_SMM_MONITOR_FEATURES = 24, "VMCALL with invalid SMM-monitor features (when attempting to activate the dual-monitor treatment of SMIs and SMM)";
    ENTRY_INVALID_EXECUTIVE_CONTROLS = 25, "VM entry with invalid VM-execution control fields in executive VMCS (when attempting to return from SMM)";
    ENTRY_EVENTS_BLOCKED_BY_MOV_SS = 26, "VM entry with events blocked by MOV SS";
    INVALID_INVEPT_INVVPID_OPERAND = 28, "Invalid operand to INVEPT/INVVPID";
}

impl VmInstructionError {
    /// The SDM row for this number, or `None` for 0, reserved and undefined numbers.
    pub fn info(self) -> Option<&'static VmInstructionErrorInfo> {
        VM_INSTRUCTION_ERRORS
            .binary_search_by(|row| row.error.cmp(&self))
            .ok()
            .and_then(|i| VM_INSTRUCTION_ERRORS.get(i))
    }

    /// The SDM's description, or `None` if the number is not defined.
    pub fn text(self) -> Option<&'static str> {
        self.info().map(|i| i.text)
    }
}

impl fmt::Display for VmInstructionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(text) => write!(f, "{}: {text}", self.0),
            None => write!(f, "{}: (undefined VM-instruction error)", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_1_to_28_are_defined_except_reserved() {
        for pair in VM_INSTRUCTION_ERRORS.windows(2) {
            assert!(pair[0].error < pair[1].error);
        }
        for n in 0..=40u32 {
            let expected = (1..=28).contains(&n) && ![14, 21, 27].contains(&n);
            assert_eq!(VmInstructionError(n).info().is_some(), expected, "error {n}");
        }
        for row in VM_INSTRUCTION_ERRORS {
            assert!(row.reference.starts_with("SDM Vol. 3C"));
            assert!(!row.text.is_empty());
        }
    }

    #[test]
    fn anchors() {
        assert_eq!(VmInstructionError(7).text(), Some("VM entry with invalid control field(s)"));
        assert_eq!(VmInstructionError(8).text(), Some("VM entry with invalid host-state field(s)"));
        assert_eq!(VmInstructionError::UNSUPPORTED_VMCS_COMPONENT.0, 12);
        assert_eq!(VmInstructionError::VMWRITE_READ_ONLY_COMPONENT.0, 13);
        assert_eq!(VmInstructionError::INVALID_INVEPT_INVVPID_OPERAND.0, 28);
        assert_eq!(
            VmInstructionError(12).to_string(),
            "12: VMREAD/VMWRITE from/to unsupported VMCS component"
        );
        assert_eq!(VmInstructionError(14).to_string(), "14: (undefined VM-instruction error)");
    }
}
