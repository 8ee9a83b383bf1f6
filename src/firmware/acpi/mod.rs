//! ACPI tables for hvsim's PC (ACPI Specification 6.4, chapter 5.2 "ACPI System
//! Description Tables"): the RSDP, RSDT and XSDT, the FADT with its FACS and DSDT, and
//! the MADT, written into the ACPI part of the firmware table area
//! ([`super::table_area::ACPI_AREA_BASE`]).
//!
//! [`install`] lays them out in this order: RSDP (at the area's base), FACS (64-byte
//! aligned), DSDT, FADT, MADT, RSDT, XSDT. Every table but the FACS carries the common
//! 36-byte header whose checksum makes the whole table sum to 0.

pub mod dsdt;
pub mod fadt;
pub mod madt;

pub use dsdt::{dsdt_aml, S5_NAME};
pub use fadt::{facs, fadt, FACS_LEN, FADT_LEN, FADT_MINOR_REVISION, FADT_REVISION};
pub use madt::{madt, MadtEntryType, MADT_REVISION};

use super::platform::{PlatformDesc, TableError};
use super::table_area::{fix_checksum, AreaAllocator, PutLe, ACPI_AREA_BASE, ACPI_AREA_SIZE};
use hvsim_mmu::{Gpa, GuestMemory};

/// "RSD PTR " (ACPI 6.4 §5.2.5.3 "Root System Description Pointer (RSDP) Structure").
pub const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// The RSDP revision of ACPI 2.0 and later (with the XSDT address).
pub const RSDP_REVISION: u8 = 2;
/// Length of the ACPI 2.0+ RSDP.
pub const RSDP_LEN: usize = 36;
/// Bytes the RSDP's first checksum covers (the ACPI 1.0 structure).
pub const RSDP_V1_LEN: usize = 20;
/// Length of the common table header (ACPI 6.4 §5.2.6 "System Description Table Header").
pub const HEADER_LEN: usize = 36;
/// Offset of the checksum byte in the common header.
pub const HEADER_CHECKSUM: usize = 9;
/// Revision of the RSDT and XSDT.
pub const RSDT_REVISION: u8 = 1;
/// OEMID of every table.
pub const OEM_ID: &[u8; 6] = b"HVSIM ";
/// OEM Table ID of every table.
pub const OEM_TABLE_ID: &[u8; 8] = b"HVSIMPC ";
/// OEM Revision.
pub const OEM_REVISION: u32 = 1;
/// Creator ID (the "ASL compiler vendor" field).
pub const CREATOR_ID: &[u8; 4] = b"HVSM";
/// Creator Revision.
pub const CREATOR_REVISION: u32 = 1;

/// Where [`install`] put each table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcpiTables {
    /// Root System Description Pointer.
    pub rsdp: u64,
    /// Firmware ACPI Control Structure.
    pub facs: u64,
    /// Differentiated System Description Table.
    pub dsdt: u64,
    /// Fixed ACPI Description Table ("FACP").
    pub fadt: u64,
    /// Multiple APIC Description Table ("APIC").
    pub madt: u64,
    /// Root System Description Table (32-bit pointers).
    pub rsdt: u64,
    /// Extended System Description Table (64-bit pointers).
    pub xsdt: u64,
}

/// A table with the common header: `signature`, `revision`, the OEM fields above and a
/// checksum over header and `body`.
pub fn sdt(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(HEADER_LEN + body.len());
    t.extend_from_slice(signature);
    t.put_u32((HEADER_LEN + body.len()) as u32);
    t.put_u8(revision);
    t.put_u8(0); // checksum, fixed below
    t.extend_from_slice(OEM_ID);
    t.extend_from_slice(OEM_TABLE_ID);
    t.put_u32(OEM_REVISION);
    t.extend_from_slice(CREATOR_ID);
    t.put_u32(CREATOR_REVISION);
    t.extend_from_slice(body);
    fix_checksum(&mut t, HEADER_CHECKSUM);
    t
}

/// The ACPI 2.0+ RSDP (ACPI 6.4 §5.2.5.3): the checksum at offset 8 covers the first 20
/// bytes, the extended checksum at offset 32 the whole 36.
pub fn rsdp(rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut r = Vec::with_capacity(RSDP_LEN);
    r.extend_from_slice(RSDP_SIGNATURE);
    r.put_u8(0); // checksum
    r.extend_from_slice(OEM_ID);
    r.put_u8(RSDP_REVISION);
    r.put_u32(rsdt);
    r.put_u32(RSDP_LEN as u32);
    r.put_u64(xsdt);
    r.put_u8(0); // extended checksum
    r.extend_from_slice(&[0; 3]);
    fix_checksum(&mut r[..RSDP_V1_LEN], 8);
    fix_checksum(&mut r, 32);
    r
}

/// Writes the ACPI tables of `desc` into guest memory.
pub fn install(mem: &mut GuestMemory, desc: &PlatformDesc) -> Result<AcpiTables, TableError> {
    desc.validate()?;
    let mut area = AreaAllocator::new(ACPI_AREA_BASE, ACPI_AREA_SIZE, "ACPI tables");
    let rsdp_at = area.alloc(RSDP_LEN, 16)?;
    // ACPI 6.4 §5.2.10: "The FACS must be aligned on a 64-byte boundary".
    let facs_at = area.alloc(FACS_LEN, 64)?;
    let dsdt_t = sdt(b"DSDT", dsdt::DSDT_REVISION, &dsdt_aml());
    let dsdt_at = area.alloc(dsdt_t.len(), 8)?;
    let fadt_t = fadt(facs_at, dsdt_at);
    let fadt_at = area.alloc(fadt_t.len(), 8)?;
    let madt_t = madt(desc);
    let madt_at = area.alloc(madt_t.len(), 8)?;
    let pointed = [fadt_at, madt_at];
    let mut rsdt_body = Vec::new();
    let mut xsdt_body = Vec::new();
    for &p in &pointed {
        // Every table lies below 1 MiB, so the 32-bit RSDT can point at it too.
        rsdt_body.put_u32(p as u32);
        xsdt_body.put_u64(p);
    }
    let rsdt_t = sdt(b"RSDT", RSDT_REVISION, &rsdt_body);
    let rsdt_at = area.alloc(rsdt_t.len(), 8)?;
    let xsdt_t = sdt(b"XSDT", RSDT_REVISION, &xsdt_body);
    let xsdt_at = area.alloc(xsdt_t.len(), 8)?;

    mem.load(Gpa(rsdp_at), &rsdp(rsdt_at as u32, xsdt_at))?;
    mem.load(Gpa(facs_at), &facs())?;
    mem.load(Gpa(dsdt_at), &dsdt_t)?;
    mem.load(Gpa(fadt_at), &fadt_t)?;
    mem.load(Gpa(madt_at), &madt_t)?;
    mem.load(Gpa(rsdt_at), &rsdt_t)?;
    mem.load(Gpa(xsdt_at), &xsdt_t)?;
    Ok(AcpiTables {
        rsdp: rsdp_at,
        facs: facs_at,
        dsdt: dsdt_at,
        fadt: fadt_at,
        madt: madt_at,
        rsdt: rsdt_at,
        xsdt: xsdt_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::table_area::byte_sum;

    #[test]
    fn rsdp_both_checksums_hold() {
        let r = rsdp(0xE1000, 0xE2000);
        assert_eq!(r.len(), RSDP_LEN);
        assert_eq!(byte_sum(&r[..RSDP_V1_LEN]), 0);
        assert_eq!(byte_sum(&r), 0);
    }

    #[test]
    fn header_length_and_checksum() {
        let t = sdt(b"TEST", 3, &[1, 2, 3, 4, 5]);
        assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()), 41);
        assert_eq!(t[8], 3);
        assert_eq!(byte_sum(&t), 0);
    }
}
