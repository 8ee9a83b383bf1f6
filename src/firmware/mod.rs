//! Firmware and loaders: what a PC's firmware gives a guest before its first instruction.
//!
//! - [`memory_map`]: the E820 map of hvsim's PC, shared by the BIOS (INT 15h E820), the
//!   multiboot information block and the firmware tables.

pub mod memory_map;
