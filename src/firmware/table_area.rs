//! How the firmware tables share the firmware table area (`pc::FW_TABLES_BASE`, 64 KiB,
//! reserved in E820), byte checksums, and a bump allocator over an area.
//!
//! | range (offset from `FW_TABLES_BASE`) | contents |
//! |---|---|
//! | 0x0000-0x7FFF | ACPI: the RSDP first (at the base, 16-byte aligned), then the tables |
//! | 0x8000-0x9FFF | the MP configuration table |
//! | 0xA000-0xFFFF | free for other firmware data |
//!
//! The RSDP must be in 0xE0000-0xFFFFF on a 16-byte boundary (ACPI 6.4 §5.2.5.1
//! "Finding the RSDP on IA-PC Systems"), which this area is. The MP floating pointer
//! cannot be here: the MP specification searches only the EBDA's first KiB, the last KiB
//! of base memory and 0xF0000-0xFFFFF (see [`super::mptable`]).

use super::platform::TableError;
use hvsim_devices::pc;

/// Base of the ACPI tables' part.
pub const ACPI_AREA_BASE: u64 = pc::FW_TABLES_BASE;
/// Size of the ACPI tables' part.
pub const ACPI_AREA_SIZE: u64 = 0x8000;
/// Base of the MP configuration table's part.
pub const MP_AREA_BASE: u64 = pc::FW_TABLES_BASE + 0x8000;
/// Size of the MP configuration table's part.
pub const MP_AREA_SIZE: u64 = 0x2000;

const _: () = assert!(MP_AREA_BASE + MP_AREA_SIZE <= pc::FW_TABLES_BASE + pc::FW_TABLES_SIZE);
const _: () = assert!(ACPI_AREA_BASE + ACPI_AREA_SIZE <= MP_AREA_BASE);

/// The byte sum of `bytes`, modulo 256 (a table is valid when its sum is 0).
pub fn byte_sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b))
}

/// Sets `bytes[at]` so that the sum of `bytes` is 0 modulo 256.
pub fn fix_checksum(bytes: &mut [u8], at: usize) {
    bytes[at] = 0;
    bytes[at] = byte_sum(bytes).wrapping_neg();
}

/// Hands out aligned, disjoint ranges of one area, in address order.
#[derive(Debug)]
pub struct AreaAllocator {
    next: u64,
    end: u64,
    size: u64,
    what: &'static str,
}

impl AreaAllocator {
    /// An allocator over `base..base + size`; `what` names the tables in errors.
    pub fn new(base: u64, size: u64, what: &'static str) -> Self {
        Self { next: base, end: base + size, size, what }
    }

    /// The address of `len` bytes aligned to `align` (a power of two).
    pub fn alloc(&mut self, len: usize, align: u64) -> Result<u64, TableError> {
        let at = self.next.next_multiple_of(align);
        let end = at + len as u64;
        if end > self.end {
            return Err(TableError::AreaFull { what: self.what, size: self.size });
        }
        self.next = end;
        Ok(at)
    }
}

/// Little-endian appends for building tables.
pub trait PutLe {
    /// Appends a byte.
    fn put_u8(&mut self, v: u8);
    /// Appends a little-endian word.
    fn put_u16(&mut self, v: u16);
    /// Appends a little-endian doubleword.
    fn put_u32(&mut self, v: u32);
    /// Appends a little-endian quadword.
    fn put_u64(&mut self, v: u64);
}

impl PutLe for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_checksum_sums_to_zero() {
        let mut t = vec![1u8, 2, 0, 250, 77];
        fix_checksum(&mut t, 2);
        assert_eq!(byte_sum(&t), 0);
    }

    #[test]
    fn allocator_aligns_and_refuses_overflow() {
        let mut a = AreaAllocator::new(0x1000, 0x100, "x");
        assert_eq!(a.alloc(3, 16).unwrap(), 0x1000);
        assert_eq!(a.alloc(8, 64).unwrap(), 0x1040);
        assert!(matches!(a.alloc(0x100, 1), Err(TableError::AreaFull { .. })));
    }
}
