//! Intel VMX model for hvsim: the hardware data tables of Intel Virtual Machine
//! Extensions.
//!
//! This crate declares, once and as data, what the Intel SDM defines for VMX:
//!
//! - [`vmcs_fields`]: every VMCS field encoding of SDM Vol. 3D Appendix B "Field Encoding
//!   in VMCS", with width, type, gating feature and meaning, and
//!   [`VmcsFieldInfo::lookup`] for the encodings a guest passes to VMREAD/VMWRITE
//!   (including the HIGH access of 64-bit fields);
//! - [`exit_reason`]: the basic exit reasons of Appendix C as the open newtype
//!   [`VmxExitReason`], and the flags of the 32-bit exit-reason field;
//! - [`vm_instruction_error`]: the VM-instruction error numbers;
//! - [`msr`]: IA32_FEATURE_CONTROL and the VMX capability MSRs of Appendix A;
//! - [`controls`]: the named bits of every VM-execution, VM-exit, VM-entry and
//!   VM-function control field.
//!
//! The VM-entry and VM-exit logic will be built on these tables; so are the tests and
//! `hvsim explain`. Nothing here panics on guest-controlled input: lookups return
//! `Option`.
//!
//! Constants are not re-exported at the crate root; use them through their module
//! (`vmcs_fields::GUEST_CR0`, `controls::proc2::ENABLE_EPT`, `msr::IA32_VMX_BASIC`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capabilities;
pub mod controls;
pub mod entry_checks;
pub mod exit_info;
pub mod exit_reason;
pub mod msr;
pub mod vm_instruction_error;
pub mod vmcs;
pub mod vmcs_fields;

pub use controls::{ControlField, ControlInfo, ControlRef, CONTROLS};
pub use exit_reason::{ExitReasonField, ExitReasonInfo, VmxExitReason, EXIT_REASONS};
pub use msr::{VmxMsrInfo, VMX_MSRS};
pub use vm_instruction_error::{VmInstructionError, VmInstructionErrorInfo, VM_INSTRUCTION_ERRORS};
pub use vmcs_fields::{
    FieldAccess, FieldGate, FieldRef, FieldType, FieldWidth, VmcsFieldInfo, VMCS_FIELDS,
};
