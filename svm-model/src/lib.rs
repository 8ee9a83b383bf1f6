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
//! - [`msr`]: the SVM-related MSRs;
//! - [`image`]: a VMCB page as bytes, read through the offsets of [`vmcb`];
//! - [`vmrun_checks`]: the VMRUN consistency checks, one named [`CheckId`] each;
//! - [`event_injection`]: EVENTINJ/EXITINTINFO decoding and validation;
//! - [`io_intercept`], [`msr_intercept`]: the IOPM and MSRPM lookups and their EXITINFO1;
//! - [`clean_bits`]: which fields each VMCB clean bit covers;
//! - [`exit_info`]: EXITINFO1/2 encoders for CR/DR accesses, exceptions, #NPF, task
//!   switches, INVLPG and INTn.
//!
//! The VMRUN and #VMEXIT logic will be built on these tables; so are the tests and
//! `hvsim explain`. Nothing here panics on guest-controlled input: lookups return
//! `Option`.
//!
//! Constants of the modules are not re-exported at the crate root because their names
//! overlap on purpose (`vmcb::EFER` is an offset, `msr::EFER` an MSR index).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clean_bits;
pub mod event_injection;
pub mod exit_code;
pub mod exit_info;
pub mod image;
pub mod intercept;
pub mod io_intercept;
pub mod msr;
pub mod msr_intercept;
pub mod vmcb;
pub mod vmrun_checks;

pub use event_injection::{Event, EventType};
pub use exit_code::{ExitCodeInfo, SvmExitCode, EXIT_CODES};
pub use image::{VmcbImage, VmcbRead};
pub use intercept::{Intercept, InterceptInfo, INTERCEPTS};
pub use msr::{SvmMsrInfo, SVM_MSRS};
pub use vmcb::{VmcbArea, VmcbBits, VmcbField, VMCB_FIELDS};
pub use vmrun_checks::{CheckId, InvalidVmcb, SvmCapabilities};
