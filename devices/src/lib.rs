//! hvsim's devices: the port-I/O bus and the PC devices.
//!
//! Devices are deterministic state machines: they see only the accesses the guest makes
//! (and, once timers exist, the virtual time they are given), never host time.
// `unsafe` is denied everywhere but `disk_image`, which maps image files (see its
// UNSAFETY note).
#![deny(unsafe_code)]

pub mod bus;
pub mod debug_exit;
pub mod disk_image;
pub mod pc;
pub mod serial;

pub use bus::{PortBus, PortDevice};
pub use debug_exit::DebugExit;
pub use disk_image::DiskImage;
pub use serial::SerialConsole;
