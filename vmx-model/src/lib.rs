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
//! and, on these tables, the logic of the VMX model (pure data and functions; no
//! dependency on the emulator):
//!
//! - [`capabilities`]: [`VmxCapabilities`], the feature set hvsim implements
//!   ([`VmxCapabilities::hvsim_default`]) and the value of every IA32_VMX_* MSR it
//!   reports ([`VmxCapabilities::msr`]), with [`VmxCapabilities::control_allowed`];
//! - [`vmcs`]: [`Vmcs`], the VMCS contents (one value per field of [`VMCS_FIELDS`]),
//!   VMREAD/VMWRITE with their error numbers, the launch state, the exit-information
//!   writer and the in-memory region format;
//! - [`entry_checks`]: every check of SDM Vol. 3C chapter 27 "VM Entries" as a named
//!   [`CheckId`] with its SDM section, run in the SDM's order by
//!   [`entry_checks::check_vm_entry`], which returns the architectural failure form;
//! - [`exit_info`]: encoders and decoders of exit qualifications, interruption
//!   information and VM-exit instruction information.
//!
//! # Using the model for the VMX instructions (for `src/cpu`)
//!
//! - RDMSR of a capability MSR: `caps.msr(index)`; `None` means the MSR does not exist
//!   (#GP). CR0/CR4 in VMX operation must satisfy `cr0_fixed0/1`, `cr4_fixed0/1`.
//! - VMXON / VMPTRLD: [`vmcs::region_revision_id`] of the region must be
//!   `(caps.revision_id, false)` (VMXON: VMfailInvalid; VMPTRLD: error 11); VMPTRLD then
//!   loads the VMCS with [`Vmcs::from_region`] (hvsim may also keep VMCSs cached by
//!   address, as hardware does, and write them back on VMCLEAR).
//! - VMCLEAR: set `launch_state = LaunchState::Clear` and write the region with
//!   [`Vmcs::to_region`] (revision identifier first, abort indicator at offset 4).
//! - VMREAD / VMWRITE: [`Vmcs::read`] / [`Vmcs::write`]; an `Err(e)` is VMfailValid(e)
//!   (12 unsupported component, 13 read-only component).
//! - VMLAUNCH / VMRESUME: after the instruction's own checks (launch state: errors 4/5;
//!   blocking by MOV SS: error 26), call [`entry_checks::check_vm_entry`] with an
//!   [`entry_checks::EntryContext`] (MAXPHYADDR, linear-address width, IA32_EFER.LMA,
//!   current-VMCS pointer) and an [`entry_checks::EntryEnv`] (physical-memory reads and
//!   "would WRMSR fault"). On `Err(f)`: for [`entry_checks::FailureForm::VmFailValid`]
//!   record the error with [`Vmcs::set_instruction_error`]; for
//!   [`entry_checks::FailureForm::ExitFailure`] write
//!   [`entry_checks::FailureForm::exit_reason_field`] and the qualification with
//!   [`Vmcs::set_exit_info`] and load host state. Either way trace
//!   [`entry_checks::EntryFailure::describe`]. On `Ok(plan)` load guest state, the
//!   PDPTEs in `plan.pdptes` (PAE paging without EPT; with EPT use the VMCS PDPTE fields)
//!   and the MSRs in `plan.msrs`, then set `launch_state = LaunchState::Launched`.
//! - VM exits: encode the qualification and information fields with [`exit_info`] and
//!   record them with [`Vmcs::set_exit_info`].
//! - `hvsim explain`: [`entry_checks::CHECKS`] / [`CheckId::by_name`] for checks,
//!   [`VmcsFieldInfo::by_name`] for fields, the `fields()` decoders of [`exit_info`].
//!
//! [`entry_checks::baseline::valid_long_mode_vmcs`] builds a VMCS that passes every
//! check, a starting point for tests.
//!
//! Constants are not re-exported at the crate root; use them through their module
//! (`vmcs_fields::GUEST_CR0`, `controls::proc2::ENABLE_EPT`, `msr::IA32_VMX_BASIC`).
//! Nothing here panics on guest-controlled input.

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

pub use capabilities::{BadBits, ControlCaps, VmxCapabilities};
pub use controls::{ControlField, ControlInfo, ControlRef, CONTROLS};
pub use entry_checks::{CheckId, EntryFailure, FailureForm, CHECKS};
pub use exit_reason::{ExitReasonField, ExitReasonInfo, VmxExitReason, EXIT_REASONS};
pub use msr::{VmxMsrInfo, VMX_MSRS};
pub use vm_instruction_error::{VmInstructionError, VmInstructionErrorInfo, VM_INSTRUCTION_ERRORS};
pub use vmcs::{ExitInfo, LaunchState, Vmcs};
pub use vmcs_fields::{
    FieldAccess, FieldGate, FieldRef, FieldType, FieldWidth, VmcsFieldInfo, VMCS_FIELDS,
};
