//! hvsim's devices: the port-I/O bus and the PC devices.
//!
//! Devices are deterministic state machines: they see only the accesses the guest makes
//! (and, once timers exist, the virtual time they are given), never host time.
#![forbid(unsafe_code)]

pub mod acpi_pm;
pub mod bus;
pub mod debug_exit;
pub mod interrupt;
pub mod ioapic;
pub mod lapic;
pub mod mmio;
pub mod pc;
pub mod pci;
pub mod serial;

pub use bus::{PortBus, PortDevice};
pub use debug_exit::DebugExit;
pub use serial::SerialConsole;
