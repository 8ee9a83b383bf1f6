//! What the firmware tables describe: the platform's vCPU count and RAM size, and the
//! errors building the tables can meet.

use hvsim_devices::pc;
use hvsim_mmu::MemoryError;

/// The largest vCPU count the tables can describe: xAPIC IDs are 8 bits, 0xFF is the
/// broadcast ID, and the IDs 0..N-1 of the vCPUs must stay below the IOAPIC's
/// ([`pc::IOAPIC_ID`]) because MP table and MADT consumers expect the APIC IDs on one
/// bus to be unique (MP Spec 1.4 §4.3.3: "the I/O APIC ID ... must be unique").
pub const MAX_TABLE_CPUS: u32 = pc::IOAPIC_ID as u32;

/// The platform that ACPI and MP tables describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformDesc {
    /// Number of vCPUs; their APIC IDs and ACPI processor UIDs are 0..cpus-1, vCPU 0 is
    /// the bootstrap processor.
    pub cpus: u32,
    /// Guest RAM in bytes (the E820 map of [`super::memory_map::e820_map`]).
    pub ram_size: u64,
}

impl PlatformDesc {
    /// Checks that the tables can describe this platform.
    pub fn validate(&self) -> Result<(), TableError> {
        if self.cpus == 0 || self.cpus > MAX_TABLE_CPUS {
            return Err(TableError::CpuCount(self.cpus));
        }
        Ok(())
    }
}

/// Errors installing firmware tables.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The vCPU count is 0 or would give a vCPU the IOAPIC's APIC ID.
    #[error(
        "cannot describe {0} vCPUs in the ACPI and MP tables: between 1 and {max} are \
         supported (APIC IDs 0..N-1 stay below the IOAPIC's ID {ioapic:#x})",
        max = MAX_TABLE_CPUS,
        ioapic = pc::IOAPIC_ID
    )]
    CpuCount(u32),
    /// The tables do not fit in their part of the firmware table area.
    #[error("the {what} do not fit in the {size:#x} bytes reserved for them")]
    AreaFull {
        /// Which tables.
        what: &'static str,
        /// The size of their area.
        size: u64,
    },
    /// The table area is not RAM in this machine (less than 1 MiB of RAM).
    #[error("writing the firmware tables: {0}")]
    Memory(#[from] MemoryError),
}
