//! The xAPIC interface: the 4 KiB MMIO page at IA32_APIC_BASE (SDM Vol. 3A 11.4.1, Table
//! 11-1). Registers sit at 16-byte strides and are accessed as aligned 32-bit loads and
//! stores; bytes 4-15 of each slot are reserved.
//!
//! Other sizes are model specific (11.4.1: "Some processors may support loads and stores
//! of less than 32 bits to some of the APIC registers"). hvsim lets reads of 1, 2 or 8
//! bytes see the register's bytes (an 8-byte read gets the register and the reserved
//! zero dword above it) and writes only as aligned 4- or 8-byte stores (the low dword);
//! other writes are dropped.

use super::{regs, LocalApic};
use crate::mmio::MmioDevice;
use std::any::Any;

impl LocalApic {
    /// A read of the xAPIC page at `offset` (the machine dispatches here when the address
    /// falls in [`LocalApic::mmio_base`] and [`LocalApic::mmio_enabled`]).
    pub fn mmio_read(&mut self, offset: u64, size: u8) -> u64 {
        let size_mask = match size {
            8.. => u64::MAX,
            s => (1u64 << (8 * u32::from(s))) - 1,
        };
        if !self.mmio_enabled() {
            return size_mask;
        }
        let offset = (offset % regs::XAPIC_PAGE_SIZE) as u32;
        let within = offset & 0xF;
        let value = match self.read_register(offset & !0xF) {
            Some(v) => u64::from(v),
            None => {
                self.record_error(regs::ESR_ILLEGAL_REGISTER);
                0
            }
        };
        if within >= 4 {
            return 0;
        }
        (value >> (8 * within)) & size_mask
    }

    /// A write to the xAPIC page at `offset`.
    pub fn mmio_write(&mut self, offset: u64, size: u8, value: u64) {
        if !self.mmio_enabled() {
            return;
        }
        let offset = (offset % regs::XAPIC_PAGE_SIZE) as u32;
        if offset & 0xF != 0 || !matches!(size, 4 | 8) {
            return;
        }
        if !self.write_register(offset, value as u32) {
            self.record_error(regs::ESR_ILLEGAL_REGISTER);
        }
    }
}

impl MmioDevice for LocalApic {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.mmio_read(offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.mmio_write(offset, size, value)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
