//! Firmware and loaders: what a PC's firmware gives a guest before its first instruction.
//!
//! - [`memory_map`]: the E820 map of hvsim's PC, shared by the BIOS (INT 15h E820), the
//!   multiboot information block and the firmware tables.
//! - [`bios`]: the built-in BIOS: ROM stubs, POST, and the INT services in Rust.

pub mod bios;
pub mod memory_map;
