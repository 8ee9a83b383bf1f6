//! The MADT, "Multiple APIC Description Table" (ACPI 6.4 §5.2.12): the local APIC
//! address, PCAT_COMPAT (dual 8259s present), one Processor Local APIC structure per
//! vCPU, the IOAPIC, the ISA interrupt source overrides (IRQ 0 -> GSI 2, the SCI as
//! level/active high) and the local APIC NMI on LINT1 of every processor.

use super::sdt;
use crate::firmware::platform::PlatformDesc;
use crate::firmware::table_area::PutLe;
use hvsim_devices::pc;

/// MADT revision 5 (ACPI 6.3+: the Online Capable flag exists).
pub const MADT_REVISION: u8 = 5;
/// MADT flags bit 0: the system also has a PC-AT-compatible dual-8259 setup.
pub const PCAT_COMPAT: u32 = 1 << 0;
/// Processor Local APIC flags bit 0: the processor is usable.
pub const LAPIC_ENABLED: u32 = 1 << 0;
/// Bus 0 of an interrupt source override: ISA.
pub const BUS_ISA: u8 = 0;
/// ACPI processor UID 0xFF in a local APIC NMI structure: all processors.
pub const ALL_PROCESSORS: u8 = 0xFF;

/// MPS INTI flags (ACPI 6.4 §5.2.12.5, the "MPS INTI Flags" table): polarity in bits 1:0, trigger mode in 3:2.
pub mod inti {
    /// Conforms to the bus (ISA: edge, active high).
    pub const CONFORMING: u16 = 0;
    /// Active high.
    pub const ACTIVE_HIGH: u16 = 0b01;
    /// Active low.
    pub const ACTIVE_LOW: u16 = 0b11;
    /// Edge-triggered.
    pub const EDGE: u16 = 0b01 << 2;
    /// Level-triggered.
    pub const LEVEL: u16 = 0b11 << 2;
}

/// Interrupt controller structure types (ACPI 6.4 §5.2.12, the "Interrupt Controller Structure Types" table) and their lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MadtEntryType {
    /// Processor Local APIC, 8 bytes.
    LocalApic = 0,
    /// I/O APIC, 12 bytes.
    IoApic = 1,
    /// Interrupt Source Override, 10 bytes.
    InterruptSourceOverride = 2,
    /// Local APIC NMI, 6 bytes.
    LocalApicNmi = 4,
}

impl MadtEntryType {
    /// The structure's length in bytes.
    pub const fn len(self) -> u8 {
        match self {
            Self::LocalApic => 8,
            Self::IoApic => 12,
            Self::InterruptSourceOverride => 10,
            Self::LocalApicNmi => 6,
        }
    }
}

fn entry(body: &mut Vec<u8>, t: MadtEntryType) {
    body.put_u8(t as u8);
    body.put_u8(t.len());
}

fn source_override(body: &mut Vec<u8>, irq: u8, gsi: u32, flags: u16) {
    entry(body, MadtEntryType::InterruptSourceOverride);
    body.put_u8(BUS_ISA);
    body.put_u8(irq);
    body.put_u32(gsi);
    body.put_u16(flags);
}

/// The MADT for `desc`.
pub fn madt(desc: &PlatformDesc) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_u32(pc::LAPIC_BASE as u32);
    body.put_u32(PCAT_COMPAT);
    for cpu in 0..desc.cpus {
        // ACPI 6.4 §5.2.12.2: ACPI Processor UID, APIC ID, flags.
        entry(&mut body, MadtEntryType::LocalApic);
        body.put_u8(cpu as u8);
        body.put_u8(cpu as u8);
        body.put_u32(LAPIC_ENABLED);
    }
    // §5.2.12.3: I/O APIC ID, reserved, address, global system interrupt base.
    entry(&mut body, MadtEntryType::IoApic);
    body.put_u8(pc::IOAPIC_ID);
    body.put_u8(0);
    body.put_u32(pc::IOAPIC_BASE as u32);
    body.put_u32(0);
    // §5.2.12.5: ISA IRQs are identity-mapped to GSIs except where overridden. The PIT
    // is wired to IOAPIC pin 2. §5.2.9 has OSPM treat the SCI as "sharable, level,
    // active low" unless told otherwise; on this platform (as on PIIX4) it reaches the
    // IOAPIC active high, so an override says level, active high.
    source_override(&mut body, pc::PIT_IRQ, pc::IOAPIC_PIT_PIN.into(), inti::CONFORMING);
    source_override(
        &mut body,
        pc::ACPI_SCI_IRQ,
        pc::ACPI_SCI_IRQ.into(),
        inti::ACTIVE_HIGH | inti::LEVEL,
    );
    // §5.2.12.7: NMI on LINT1 of every processor, conforming flags.
    entry(&mut body, MadtEntryType::LocalApicNmi);
    body.put_u8(ALL_PROCESSORS);
    body.put_u16(inti::CONFORMING);
    body.put_u8(1);
    sdt(b"APIC", MADT_REVISION, &body)
}
