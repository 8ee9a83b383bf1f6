//! Firmware and loaders: what a PC's firmware gives a guest before its first instruction.
//!
//! - [`memory_map`]: the E820 map of hvsim's PC, shared by the BIOS (INT 15h E820), the
//!   multiboot information block and the firmware tables.
//! - [`acpi`] and [`mptable`]: the ACPI tables and the MP table describing the platform
//!   ([`platform::PlatformDesc`]), laid out in the firmware table area ([`table_area`]).
//! - [`multiboot`]: the multiboot (v1) loader behind `--kernel`.
//! - [`bios`]: the built-in BIOS: ROM stubs, POST, and the INT services in Rust.

pub mod acpi;
pub mod bios;
pub mod memory_map;
pub mod mptable;
pub mod multiboot;
pub mod platform;
pub mod table_area;
