//! AMD SVM model for hvsim: the hardware data tables of AMD64 Secure Virtual Machine.
//!
//! This crate declares, once and as data, what the AMD64 Architecture Programmer's Manual
//! (APM) Vol. 2 chapter 15 "Secure Virtual Machine" and Appendices B and C define:
//!
//! - [`vmcb`]: the VMCB layout (control area and state save area), with
//!   [`VmcbField::lookup`] from a byte offset and sub-byte [`vmcb::bits`];
//! - [`exit_code`]: the #VMEXIT exit codes as the open newtype [`SvmExitCode`] plus
//!   [`EXIT_CODES`] (name, meaning, EXITINFO1/EXITINFO2, reference);
//! - [`intercept`]: every intercept bit, its vector word, and the exit code it produces;
//! - [`msr`]: the SVM-related MSRs.
//!
//! The VMRUN and #VMEXIT logic will be built on these tables; so are the tests and
//! `hvsim explain`. Nothing here panics on guest-controlled input: lookups return
//! `Option`.
//!
//! Constants of the modules are not re-exported at the crate root because their names
//! overlap on purpose (`vmcb::EFER` is an offset, `msr::EFER` an MSR index).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod exit_code;
pub mod intercept;
pub mod msr;
pub mod vmcb;

pub use exit_code::{ExitCodeInfo, SvmExitCode, EXIT_CODES};
pub use intercept::{Intercept, InterceptInfo, INTERCEPTS};
pub use msr::{SvmMsrInfo, SVM_MSRS};
pub use vmcb::{VmcbArea, VmcbBits, VmcbField, VMCB_FIELDS};
