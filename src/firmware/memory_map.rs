//! The physical memory map hvsim's PC reports (BIOS INT 15h E820, the multiboot memory
//! map): conventional memory, the EBDA, the VGA/ROM hole, the firmware table area and
//! the BIOS, extended memory up to the 32-bit PCI hole, the rest of RAM above 4 GiB.
//!
//! Address ranges come from [`hvsim_devices::pc`]; the entry types are those of the ACPI
//! specification's "System Address Map Interfaces" (type 1 usable, 2 reserved, 3 ACPI
//! reclaimable, 4 ACPI NVS).

use hvsim_devices::pc;

/// An E820 address-range type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum E820Type {
    /// AddressRangeMemory: usable RAM.
    Ram = 1,
    /// AddressRangeReserved.
    Reserved = 2,
    /// AddressRangeACPI: ACPI tables, reclaimable after they are read.
    Acpi = 3,
    /// AddressRangeNVS: ACPI non-volatile storage.
    Nvs = 4,
}

/// One entry of the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// What the range is.
    pub kind: E820Type,
}

/// The map for a machine with `ram_size` bytes of RAM, sorted by address, without
/// overlaps. RAM below 1 MiB stops at the EBDA; RAM from 1 MiB runs to the PCI hole and
/// the remainder is reported from 4 GiB.
pub fn e820_map(ram_size: u64) -> Vec<E820Entry> {
    let mut map = Vec::new();
    let conventional = ram_size.min(pc::EBDA_BASE);
    if conventional > 0 {
        map.push(E820Entry { base: 0, len: conventional, kind: E820Type::Ram });
    }
    map.push(E820Entry { base: pc::EBDA_BASE, len: pc::EBDA_SIZE, kind: E820Type::Reserved });
    map.push(E820Entry {
        base: pc::FW_TABLES_BASE,
        len: pc::HIGH_MEMORY - pc::FW_TABLES_BASE,
        kind: E820Type::Reserved,
    });
    if ram_size > pc::HIGH_MEMORY {
        let below_hole = ram_size.min(pc::PCI_HOLE_START);
        map.push(E820Entry {
            base: pc::HIGH_MEMORY,
            len: below_hole - pc::HIGH_MEMORY,
            kind: E820Type::Ram,
        });
    }
    map.push(E820Entry {
        base: pc::IOAPIC_BASE,
        len: (1 << 32) - pc::IOAPIC_BASE,
        kind: E820Type::Reserved,
    });
    if ram_size > pc::PCI_HOLE_START {
        map.push(E820Entry {
            base: 1 << 32,
            len: ram_size - pc::PCI_HOLE_START,
            kind: E820Type::Ram,
        });
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_sorted_disjoint_and_counts_all_ram() {
        for ram in [1u64 << 20, 32 << 20, 3 << 30, 5 << 30] {
            let map = e820_map(ram);
            for w in map.windows(2) {
                assert!(w[0].base + w[0].len <= w[1].base, "{map:?}");
            }
            let usable: u64 = map.iter().filter(|e| e.kind == E820Type::Ram).map(|e| e.len).sum();
            // Everything but the EBDA and the 0xA0000-0xFFFFF hole is usable.
            assert_eq!(usable, ram - (pc::HIGH_MEMORY - pc::EBDA_BASE), "ram {ram:#x}");
        }
    }
}
