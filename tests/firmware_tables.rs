//! The ACPI and MP tables `install` writes, parsed back from guest memory the way an OS
//! finds them: ACPI 6.4 §5.2.5.1 "Finding the RSDP on IA-PC Systems" (16-byte boundaries
//! in the EBDA's first KiB or 0xE0000-0xFFFFF), §5.2.6 header checksums, §5.2.9 FADT,
//! §5.2.12 MADT; MP Spec 1.4 §4 (floating pointer search areas), §4.2 header, §4.3
//! entries.

use hvsim::firmware::acpi::{self, fadt::offset as fadt_off, MadtEntryType};
use hvsim::firmware::memory_map::{e820_map, E820Type};
use hvsim::firmware::mptable::{self, EntryType};
use hvsim::firmware::platform::{PlatformDesc, TableError, MAX_TABLE_CPUS};
use hvsim::{Machine, MachineConfig};
use hvsim_devices::pc;
use hvsim_mmu::{Gpa, GuestMemory};
use proptest::prelude::*;

const RAM: u64 = 16 << 20;

fn machine() -> Machine {
    Machine::new(&MachineConfig { mem_size: RAM, ..MachineConfig::default() }).unwrap()
}

fn bytes(mem: &GuestMemory, at: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    mem.read(Gpa(at), &mut b);
    b
}

fn sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |s, &x| s.wrapping_add(x))
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Everything a table occupies must be in the E820-reserved firmware area.
fn assert_reserved(at: u64, len: usize) {
    let map = e820_map(RAM);
    let e = map
        .iter()
        .find(|e| at >= e.base && at + len as u64 <= e.base + e.len)
        .unwrap_or_else(|| panic!("{at:#x}+{len:#x} is not inside one E820 entry"));
    assert_eq!(e.kind, E820Type::Reserved, "{at:#x}");
}

/// Reads a table with the common header at `at`; checks length and checksum.
fn table(mem: &GuestMemory, at: u64, signature: &[u8; 4]) -> Vec<u8> {
    let head = bytes(mem, at, 36);
    assert_eq!(&head[..4], signature);
    let len = u32_at(&head, 4) as usize;
    let t = bytes(mem, at, len);
    assert_eq!(sum(&t), 0, "{} checksum", String::from_utf8_lossy(signature));
    assert_reserved(at, len);
    t
}

/// The RSDP as an OS finds it: scanning 0xE0000-0xFFFFF on 16-byte boundaries.
fn find_rsdp(mem: &GuestMemory) -> u64 {
    (0xE_0000u64..0x10_0000)
        .step_by(16)
        .find(|&a| &bytes(mem, a, 8)[..] == b"RSD PTR " && sum(&bytes(mem, a, 20)) == 0)
        .expect("no RSDP")
}

struct Parsed {
    fadt: Vec<u8>,
    madt: Vec<u8>,
    dsdt: Vec<u8>,
    facs: Vec<u8>,
}

fn parse_acpi(mem: &GuestMemory) -> Parsed {
    let rsdp_at = find_rsdp(mem);
    let rsdp = bytes(mem, rsdp_at, 36);
    assert_eq!(rsdp[15], 2, "revision 2 (ACPI 2.0+)");
    assert_eq!(u32_at(&rsdp, 20), 36);
    assert_eq!(sum(&rsdp), 0, "extended checksum");
    let rsdt = table(mem, u32_at(&rsdp, 16).into(), b"RSDT");
    let xsdt = table(mem, u64_at(&rsdp, 24), b"XSDT");
    let rsdt_ptrs: Vec<u64> =
        (36..rsdt.len()).step_by(4).map(|o| u32_at(&rsdt, o).into()).collect();
    let xsdt_ptrs: Vec<u64> = (36..xsdt.len()).step_by(8).map(|o| u64_at(&xsdt, o)).collect();
    assert_eq!(rsdt_ptrs, xsdt_ptrs, "RSDT and XSDT list the same tables");
    let find = |sig: &[u8; 4]| {
        let at = *xsdt_ptrs
            .iter()
            .find(|&&p| &bytes(mem, p, 4)[..] == sig)
            .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(sig)));
        table(mem, at, sig)
    };
    let fadt = find(b"FACP");
    let madt = find(b"APIC");
    assert_eq!(fadt.len(), acpi::FADT_LEN);
    assert_eq!(fadt[8], acpi::FADT_REVISION);
    let dsdt_at = u64_at(&fadt, fadt_off::X_DSDT);
    assert_eq!(u64::from(u32_at(&fadt, fadt_off::DSDT)), dsdt_at);
    let dsdt = table(mem, dsdt_at, b"DSDT");
    let facs_at = u64_at(&fadt, fadt_off::X_FIRMWARE_CTRL);
    assert_eq!(u64::from(u32_at(&fadt, fadt_off::FIRMWARE_CTRL)), facs_at);
    assert_eq!(facs_at % 64, 0, "FACS 64-byte aligned");
    let facs = bytes(mem, facs_at, 64);
    assert_eq!(&facs[..4], b"FACS");
    assert_eq!(u32_at(&facs, 4), 64);
    assert_reserved(facs_at, 64);
    Parsed { fadt, madt, dsdt, facs }
}

/// MADT structures as (type, bytes).
fn madt_entries(madt: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut o = 44;
    while o < madt.len() {
        let len = madt[o + 1] as usize;
        assert!(len >= 2 && o + len <= madt.len(), "MADT entry at {o} overruns");
        out.push((madt[o], madt[o + 2..o + len].to_vec()));
        o += len;
    }
    out
}

fn install_all(cpus: u32) -> Machine {
    let mut m = machine();
    let desc = PlatformDesc { cpus, ram_size: RAM };
    acpi::install(&mut m.mem, &desc).unwrap();
    mptable::install(&mut m.mem, &desc, &m.cpuid).unwrap();
    m
}

// §5.2.12: MADT header fields and entry counts for 1 and 4 vCPUs.
#[test]
fn madt_lists_every_cpu_the_ioapic_and_the_overrides() {
    for cpus in [1u32, 4] {
        let m = install_all(cpus);
        let p = parse_acpi(&m.mem);
        assert_eq!(u32_at(&p.madt, 36), pc::LAPIC_BASE as u32);
        assert_eq!(u32_at(&p.madt, 40) & 1, 1, "PCAT_COMPAT");
        let entries = madt_entries(&p.madt);
        let of = |t: MadtEntryType| -> Vec<Vec<u8>> {
            entries.iter().filter(|(k, _)| *k == t as u8).map(|(_, b)| b.clone()).collect()
        };
        let lapics = of(MadtEntryType::LocalApic);
        assert_eq!(lapics.len(), cpus as usize);
        for (i, l) in lapics.iter().enumerate() {
            assert_eq!((l[0], l[1]), (i as u8, i as u8), "UID and APIC ID");
            assert_eq!(u32_at(l, 2), 1, "enabled");
        }
        let ioapics = of(MadtEntryType::IoApic);
        assert_eq!(ioapics.len(), 1);
        assert_eq!(ioapics[0][0], pc::IOAPIC_ID);
        assert_eq!(u32_at(&ioapics[0], 2), pc::IOAPIC_BASE as u32);
        assert_eq!(u32_at(&ioapics[0], 6), 0, "GSI base");
        let overrides: Vec<(u8, u8, u32, u16)> = of(MadtEntryType::InterruptSourceOverride)
            .iter()
            .map(|o| (o[0], o[1], u32_at(o, 2), u16_at(o, 6)))
            .collect();
        assert_eq!(overrides, [(0, 0, 2, 0), (0, 9, 9, 0b1101)], "IRQ0 -> GSI 2; SCI level/high");
        let nmis = of(MadtEntryType::LocalApicNmi);
        assert_eq!(nmis.len(), 1);
        assert_eq!((nmis[0][0], nmis[0][3]), (0xFF, 1), "all processors, LINT1");
        assert_eq!(entries.len(), cpus as usize + 4);
    }
}

// §5.2.9: the FADT's PM blocks are the platform's, and the SCI is IRQ 9.
#[test]
fn fadt_names_the_pm_ports_and_sci() {
    let m = install_all(1);
    let p = parse_acpi(&m.mem);
    let f = &p.fadt;
    assert_eq!(u16_at(f, fadt_off::SCI_INT), u16::from(pc::ACPI_SCI_IRQ));
    assert_eq!(u32_at(f, fadt_off::SMI_CMD), 0, "no SMM: already in ACPI mode");
    assert_eq!(u32_at(f, fadt_off::PM1A_EVT_BLK), u32::from(pc::ACPI_PM1A_EVT_BLK));
    assert_eq!(u32_at(f, fadt_off::PM1A_CNT_BLK), u32::from(pc::ACPI_PM1A_CNT_BLK));
    assert_eq!(u32_at(f, fadt_off::PM_TMR_BLK), u32::from(pc::ACPI_PM_TMR_BLK));
    assert_eq!(
        (f[fadt_off::PM1_EVT_LEN], f[fadt_off::PM1_CNT_LEN], f[fadt_off::PM_TMR_LEN]),
        (4, 2, 4)
    );
    // The 64-bit GAS forms agree: system I/O space, same ports.
    for (gas, port) in [
        (fadt_off::X_PM1A_EVT_BLK, pc::ACPI_PM1A_EVT_BLK),
        (fadt_off::X_PM1A_CNT_BLK, pc::ACPI_PM1A_CNT_BLK),
        (fadt_off::X_PM_TMR_BLK, pc::ACPI_PM_TMR_BLK),
    ] {
        assert_eq!(f[gas], 1, "system I/O");
        assert_eq!(u64_at(f, gas + 4), u64::from(port));
    }
    // Reset register supported, in I/O space, with its value.
    assert_ne!(u32_at(f, fadt_off::FLAGS) & (1 << 10), 0, "RESET_REG_SUP");
    assert_eq!(f[fadt_off::RESET_REG], 1);
    assert_eq!(u64_at(f, fadt_off::RESET_REG + 4), u64::from(pc::I8042_CMD_PORT));
    assert_eq!(f[fadt_off::RESET_VALUE], 0xFE);
    // The PM timer is 24 bits (TMR_VAL_EXT clear), legacy devices and an 8042 present.
    assert_eq!(u32_at(f, fadt_off::FLAGS) & (1 << 8), 0);
    assert_eq!(u16_at(f, fadt_off::IAPC_BOOT_ARCH) & 0b11, 0b11);
    assert_eq!(p.facs[32], 2, "FACS version");
}

// §7.4.2: the DSDT defines \_S5 as a package whose first element is S5's SLP_TYP.
#[test]
fn dsdt_defines_s5() {
    let m = install_all(1);
    let p = parse_acpi(&m.mem);
    assert_eq!(p.dsdt[8], 2, "DSDT revision 2");
    let aml = &p.dsdt[36..];
    let at = aml.windows(4).position(|w| w == b"_S5_").expect("_S5_ in the DSDT");
    assert_eq!(aml[at - 1], 0x08, "NameOp");
    assert_eq!(aml[at + 4], 0x12, "PackageOp");
    assert_eq!(aml[at + 6], 4, "four elements");
    // SLP_TYPa: ZeroOp, OneOp or BytePrefix n.
    let slp_typ = match aml[at + 7] {
        0x00 => 0,
        0x01 => 1,
        0x0A => aml[at + 8],
        op => panic!("unexpected AML opcode {op:#x}"),
    };
    assert_eq!(u16::from(slp_typ), pc::ACPI_S5_SLP_TYP);
}

/// The MP floating pointer as an OS finds it (MP Spec §4: the EBDA's first KiB, the last
/// KiB of base memory, 0xF0000-0xFFFFF; 16-byte boundaries).
fn find_mp(mem: &GuestMemory) -> u64 {
    let areas =
        [(pc::EBDA_BASE, pc::EBDA_BASE + 0x400), (639 << 10, 640 << 10), (0xF_0000, 0x10_0000)];
    areas
        .iter()
        .flat_map(|&(s, e)| (s..e).step_by(16))
        .find(|&a| &bytes(mem, a, 4)[..] == b"_MP_" && sum(&bytes(mem, a, 16)) == 0)
        .expect("no MP floating pointer")
}

// MP Spec 1.4 §4.1-4.3.
#[test]
fn mp_table_checksums_and_entries() {
    for cpus in [1u32, 4] {
        let m = install_all(cpus);
        let fp_at = find_mp(&m.mem);
        assert_reserved(fp_at, 16);
        let fp = bytes(&m.mem, fp_at, 16);
        assert_eq!((fp[8], fp[9], fp[11]), (1, 4, 0), "length 1, rev 1.4, config table present");
        let ct_at = u64::from(u32_at(&fp, 4));
        let head = bytes(&m.mem, ct_at, 44);
        assert_eq!(&head[..4], b"PCMP");
        let len = u16_at(&head, 4) as usize;
        let ct = bytes(&m.mem, ct_at, len);
        assert_eq!(sum(&ct), 0, "base table checksum");
        assert_reserved(ct_at, len);
        assert_eq!(ct[6], 4);
        assert_eq!(u32_at(&ct, 36), pc::LAPIC_BASE as u32);
        let count = u16_at(&ct, 34) as usize;
        let mut o = 44;
        let mut entries = Vec::new();
        for _ in 0..count {
            let t = ct[o];
            let l = if t == EntryType::Processor as u8 { 20 } else { 8 };
            entries.push(ct[o..o + l].to_vec());
            o += l;
        }
        assert_eq!(o, len, "entries fill the base table");
        let of = |t: EntryType| -> Vec<&Vec<u8>> {
            entries.iter().filter(|e| e[0] == t as u8).collect()
        };
        let procs = of(EntryType::Processor);
        assert_eq!(procs.len(), cpus as usize);
        for (i, p) in procs.iter().enumerate() {
            assert_eq!(p[1], i as u8, "APIC ID");
            assert_eq!(p[3], if i == 0 { 0b11 } else { 0b01 }, "EN, and BP on CPU 0 only");
            assert_eq!(u32_at(p, 4), m.cpuid.query(1, 0)[0], "CPU signature");
        }
        let buses = of(EntryType::Bus);
        assert_eq!(buses.len(), 1);
        assert_eq!(&buses[0][2..8], b"ISA   ");
        let ioapic = of(EntryType::IoApic);
        assert_eq!(ioapic.len(), 1);
        assert_eq!((ioapic[0][1], ioapic[0][3] & 1), (pc::IOAPIC_ID, 1));
        assert_eq!(u32_at(ioapic[0], 4), pc::IOAPIC_BASE as u32);
        let ints: Vec<(u8, u16, u8, u8, u8, u8)> = of(EntryType::IoInterrupt)
            .iter()
            .map(|e| (e[1], u16_at(e, 2), e[4], e[5], e[6], e[7]))
            .collect();
        assert_eq!(ints.len(), 15, "ISA IRQs 0-15 but the cascade");
        assert!(ints.contains(&(0, 0, 0, 0, pc::IOAPIC_ID, 2)), "IRQ0 -> pin 2");
        assert!(ints.contains(&(0, 0b1101, 0, 9, pc::IOAPIC_ID, 9)), "SCI level/high");
        assert!(ints.iter().all(|i| i.3 != 2), "no IRQ 2 entry");
        for irq in (1..16).filter(|&i| i != 2) {
            assert!(ints.iter().any(|i| i.3 == irq && i.5 == irq), "IRQ {irq} -> pin {irq}");
        }
        let locals: Vec<(u8, u8, u8)> =
            of(EntryType::LocalInterrupt).iter().map(|e| (e[1], e[6], e[7])).collect();
        assert_eq!(locals, [(3, 0xFF, 0), (1, 0xFF, 1)], "ExtINT on LINT0, NMI on LINT1");
        assert_eq!(
            entries.iter().map(|e| e[0]).collect::<Vec<_>>().windows(2).all(|w| w[0] <= w[1]),
            true,
            "sorted by type"
        );
    }
}

#[test]
fn cpu_counts_the_tables_cannot_describe_are_errors() {
    let mut m = machine();
    for cpus in [0, MAX_TABLE_CPUS + 1, 255] {
        let desc = PlatformDesc { cpus, ram_size: RAM };
        assert!(matches!(acpi::install(&mut m.mem, &desc), Err(TableError::CpuCount(_))));
        assert!(matches!(
            mptable::install(&mut m.mem, &desc, &m.cpuid),
            Err(TableError::CpuCount(_))
        ));
    }
    // The largest describable count fits the areas.
    let big = install_all(MAX_TABLE_CPUS);
    let p = parse_acpi(&big.mem);
    assert_eq!(madt_entries(&p.madt).len(), MAX_TABLE_CPUS as usize + 4);
    find_mp(&big.mem);
    // Less than 1 MiB of RAM: the table area is not RAM.
    let mut small =
        Machine::new(&MachineConfig { mem_size: 512 << 10, ..MachineConfig::default() }).unwrap();
    let desc = PlatformDesc { cpus: 1, ram_size: 512 << 10 };
    assert!(matches!(acpi::install(&mut small.mem, &desc), Err(TableError::Memory(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    // Any describable vCPU count gives consistent tables that fit their areas.
    #[test]
    fn any_cpu_count_gives_valid_tables(cpus in 1u32..=MAX_TABLE_CPUS) {
        let m = install_all(cpus);
        let p = parse_acpi(&m.mem);
        let lapics = madt_entries(&p.madt).iter().filter(|(t, _)| *t == MadtEntryType::LocalApic as u8).count();
        prop_assert_eq!(lapics, cpus as usize);
        let fp = bytes(&m.mem, find_mp(&m.mem), 16);
        let ct_at = u64::from(u32_at(&fp, 4));
        let len = u16_at(&bytes(&m.mem, ct_at, 8), 4) as usize;
        prop_assert_eq!(sum(&bytes(&m.mem, ct_at, len)), 0);
    }
}
