//! The MP table (Intel MultiProcessor Specification 1.4, chapter 4 "MP Configuration
//! Table"): the floating pointer structure and the configuration table with one
//! processor entry per vCPU, the ISA bus, the IOAPIC, the I/O interrupt assignments of
//! ISA IRQs 0-15 and the local interrupt assignments (ExtINT on LINT0, NMI on LINT1).
//!
//! Where: the configuration table lives in the MP part of the firmware table area
//! ([`super::table_area::MP_AREA_BASE`]). The floating pointer must be where the
//! specification says an OS searches (§4 "MP Configuration Table": "a. In the first
//! kilobyte of Extended BIOS Data Area (EBDA), or b. Within the last kilobyte of system
//! base memory ... if the EBDA segment is undefined, or c. In the BIOS ROM address space
//! between 0F0000h and 0FFFFFh"). hvsim's EBDA is exactly the last KiB of base memory
//! ([`pc::EBDA_BASE`]), so [`FLOATING_POINTER_ADDR`], its last 16 bytes, satisfies both
//! a and b, and the BIOS ROM stays the BIOS's.

use super::platform::{PlatformDesc, TableError};
use super::table_area::{fix_checksum, AreaAllocator, PutLe, MP_AREA_BASE, MP_AREA_SIZE};
use crate::cpuid::Cpuid;
use hvsim_devices::pc;
use hvsim_mmu::{Gpa, GuestMemory};

/// Where the floating pointer structure goes: the last paragraph of the EBDA.
pub const FLOATING_POINTER_ADDR: u64 = pc::EBDA_BASE + pc::EBDA_SIZE - FLOATING_POINTER_LEN as u64;
/// "_MP_" (§4.1 "MP Floating Pointer Structure").
pub const FLOATING_SIGNATURE: &[u8; 4] = b"_MP_";
/// Length of the floating pointer structure (one 16-byte paragraph).
pub const FLOATING_POINTER_LEN: usize = 16;
/// "PCMP" (§4.2 "MP Configuration Table Header").
pub const CONFIG_SIGNATURE: &[u8; 4] = b"PCMP";
/// Length of the configuration table header.
pub const CONFIG_HEADER_LEN: usize = 44;
/// Specification revision 1.4.
pub const SPEC_REV: u8 = 4;
/// OEM ID (8 bytes, space padded).
pub const OEM_ID: &[u8; 8] = b"HVSIM   ";
/// Product ID (12 bytes, space padded).
pub const PRODUCT_ID: &[u8; 12] = b"PC          ";
/// The version the local APICs report (an integrated xAPIC; must agree with the local
/// APIC model's version register).
pub const LAPIC_VERSION: u8 = 0x14;
/// The version the IOAPIC reports (82093AA; must agree with the IOAPIC model).
pub const IOAPIC_VERSION: u8 = 0x11;
/// The ISA bus's ID.
pub const ISA_BUS_ID: u8 = 0;
/// Destination local APIC ID 0xFF: all local APICs.
pub const ALL_LAPICS: u8 = 0xFF;
/// Number of ISA IRQs.
pub const ISA_IRQS: u8 = 16;

/// The length of the configuration table of `cpus` vCPUs: header, processors, bus,
/// IOAPIC, 15 I/O interrupt and 2 local interrupt entries.
pub const fn config_table_len(cpus: u32) -> usize {
    CONFIG_HEADER_LEN
        + cpus as usize * EntryType::Processor.len()
        + EntryType::Bus.len()
        + EntryType::IoApic.len()
        + (ISA_IRQS as usize - 1) * EntryType::IoInterrupt.len()
        + 2 * EntryType::LocalInterrupt.len()
}

const _: () = assert!(
    config_table_len(crate::firmware::platform::MAX_TABLE_CPUS) as u64 <= MP_AREA_SIZE,
    "the largest MP table must fit its area"
);

/// Configuration table entry types (§4.3 "MP Configuration Table Entries") with their lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EntryType {
    /// Processor, 20 bytes.
    Processor = 0,
    /// Bus, 8 bytes.
    Bus = 1,
    /// I/O APIC, 8 bytes.
    IoApic = 2,
    /// I/O interrupt assignment, 8 bytes.
    IoInterrupt = 3,
    /// Local interrupt assignment, 8 bytes.
    LocalInterrupt = 4,
}

impl EntryType {
    /// The entry's length in bytes.
    pub const fn len(self) -> usize {
        match self {
            Self::Processor => 20,
            _ => 8,
        }
    }
}

/// Processor entry CPU flags (§4.3.1).
pub mod cpu_flags {
    /// EN: the processor is usable.
    pub const ENABLED: u8 = 1 << 0;
    /// BP: the bootstrap processor.
    pub const BOOTSTRAP: u8 = 1 << 1;
}

/// Interrupt types of interrupt assignment entries (§4.3.4 "I/O Interrupt Assignment Entries", the interrupt type table).
pub mod int_type {
    /// A vectored interrupt; the vector comes from the APIC redirection table.
    pub const INT: u8 = 0;
    /// A non-maskable interrupt.
    pub const NMI: u8 = 1;
    /// A system management interrupt.
    pub const SMI: u8 = 2;
    /// A vectored interrupt whose vector comes from an external 8259A.
    pub const EXTINT: u8 = 3;
}

/// Interrupt assignment flags (§4.3.4, the I/O interrupt entry fields table): polarity in bits 1:0 (01 high,
/// 11 low), trigger mode in 3:2 (01 edge, 11 level); 0 conforms to the bus.
pub mod int_flags {
    /// Conforms to the bus's specification.
    pub const CONFORMING: u16 = 0;
    /// Active high.
    pub const ACTIVE_HIGH: u16 = 0b01;
    /// Level-triggered.
    pub const LEVEL: u16 = 0b11 << 2;
}

/// Where [`install`] put the MP structures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpTable {
    /// The floating pointer structure.
    pub floating_pointer: u64,
    /// The configuration table.
    pub config_table: u64,
}

fn io_interrupt(t: &mut Vec<u8>, kind: u8, flags: u16, irq: u8, pin: u8) {
    t.put_u8(EntryType::IoInterrupt as u8);
    t.put_u8(kind);
    t.put_u16(flags);
    t.put_u8(ISA_BUS_ID);
    t.put_u8(irq);
    t.put_u8(pc::IOAPIC_ID);
    t.put_u8(pin);
}

fn local_interrupt(t: &mut Vec<u8>, kind: u8, lint: u8) {
    t.put_u8(EntryType::LocalInterrupt as u8);
    t.put_u8(kind);
    t.put_u16(int_flags::CONFORMING);
    t.put_u8(ISA_BUS_ID);
    t.put_u8(0);
    t.put_u8(ALL_LAPICS);
    t.put_u8(lint);
}

/// The base configuration table for `desc`. `signature` and `features` are CPUID leaf 1
/// EAX and EDX, which processor entries repeat (§4.3.1).
pub fn config_table(desc: &PlatformDesc, signature: u32, features: u32) -> Vec<u8> {
    let mut e = Vec::new();
    let mut count: u16 = 0;
    // Entries appear sorted by type (§4.3: "entries are sorted by entry type").
    for cpu in 0..desc.cpus {
        e.put_u8(EntryType::Processor as u8);
        e.put_u8(cpu as u8); // local APIC ID
        e.put_u8(LAPIC_VERSION);
        e.put_u8(cpu_flags::ENABLED | if cpu == 0 { cpu_flags::BOOTSTRAP } else { 0 });
        e.put_u32(signature);
        e.put_u32(features);
        e.put_u64(0); // reserved
        count += 1;
    }
    e.put_u8(EntryType::Bus as u8);
    e.put_u8(ISA_BUS_ID);
    e.extend_from_slice(b"ISA   ");
    count += 1;
    e.put_u8(EntryType::IoApic as u8);
    e.put_u8(pc::IOAPIC_ID);
    e.put_u8(IOAPIC_VERSION);
    e.put_u8(1); // EN
    e.put_u32(pc::IOAPIC_BASE as u32);
    count += 1;
    // ISA IRQ n goes to IOAPIC pin n, except the PIT's IRQ 0, which is wired to pin 2;
    // IRQ 2 (the 8259 cascade) has no source and no entry. The SCI is level/high, as in
    // the MADT.
    for irq in 0..ISA_IRQS {
        if irq == pc::PIC_CASCADE_IRQ {
            continue;
        }
        let pin = if irq == pc::PIT_IRQ { pc::IOAPIC_PIT_PIN } else { irq };
        let flags = if irq == pc::ACPI_SCI_IRQ {
            int_flags::ACTIVE_HIGH | int_flags::LEVEL
        } else {
            int_flags::CONFORMING
        };
        io_interrupt(&mut e, int_type::INT, flags, irq, pin);
        count += 1;
    }
    // Virtual wire: the 8259's output through LINT0 and NMI on LINT1 (§3.6.2.2, 5.1).
    local_interrupt(&mut e, int_type::EXTINT, 0);
    local_interrupt(&mut e, int_type::NMI, 1);
    count += 2;

    let mut t = Vec::with_capacity(CONFIG_HEADER_LEN + e.len());
    t.extend_from_slice(CONFIG_SIGNATURE);
    t.put_u16((CONFIG_HEADER_LEN + e.len()) as u16); // base table length
    t.put_u8(SPEC_REV);
    t.put_u8(0); // checksum
    t.extend_from_slice(OEM_ID);
    t.extend_from_slice(PRODUCT_ID);
    t.put_u32(0); // OEM table pointer
    t.put_u16(0); // OEM table size
    t.put_u16(count);
    t.put_u32(pc::LAPIC_BASE as u32);
    t.put_u16(0); // extended table length
    t.put_u8(0); // extended table checksum
    t.put_u8(0); // reserved
    t.extend(e);
    debug_assert_eq!(t.len(), config_table_len(desc.cpus));
    fix_checksum(&mut t, 7);
    t
}

/// The floating pointer structure (§4.1) pointing at the configuration table at
/// `config`: MP feature byte 1 = 0 (a configuration table is present), feature byte 2
/// bit 7 (IMCRP) = 0 (virtual wire mode, no IMCR).
pub fn floating_pointer(config: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(FLOATING_POINTER_LEN);
    f.extend_from_slice(FLOATING_SIGNATURE);
    f.put_u32(config);
    f.put_u8(1); // length in paragraphs
    f.put_u8(SPEC_REV);
    f.put_u8(0); // checksum
    f.extend_from_slice(&[0; 5]); // MP feature information bytes 1-5
    fix_checksum(&mut f, 10);
    f
}

/// Writes the MP table of `desc` into guest memory; processor entries carry `cpuid`'s
/// leaf 1 signature and feature flags.
pub fn install(
    mem: &mut GuestMemory,
    desc: &PlatformDesc,
    cpuid: &Cpuid,
) -> Result<MpTable, TableError> {
    desc.validate()?;
    let [eax, _, _, edx] = cpuid.query(1, 0);
    let table = config_table(desc, eax, edx);
    let mut area = AreaAllocator::new(MP_AREA_BASE, MP_AREA_SIZE, "MP configuration table");
    let config_at = area.alloc(table.len(), 16)?;
    mem.load(Gpa(config_at), &table)?;
    mem.load(Gpa(FLOATING_POINTER_ADDR), &floating_pointer(config_at as u32))?;
    Ok(MpTable { floating_pointer: FLOATING_POINTER_ADDR, config_table: config_at })
}
