//! The PC platform end to end: timer interrupts through the 8259A and through the local
//! APIC, an IOAPIC-routed COM1 receive interrupt, IPIs that start an application
//! processor, and the requests that end a run (ACPI S5, port 0x92 reset). Guests are
//! 32-bit protected-mode kernels with their own IDT; virtual time is the instruction
//! clock, and `sti; hlt` lets it pass to the next device event.

use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use iced_x86::code_asm::*;

const IDT: u32 = 0x3000;
const COUNTER: u32 = 0x500;
const LAPIC: u32 = 0xFEE0_0000;

/// Writes an interrupt gate for `vector` to `handler` (code32 selector 0x18).
fn gate(a: &mut CodeAssembler, vector: u32, handler: u32) {
    let at = IDT + vector * 8;
    a.mov(dword_ptr(at), (handler & 0xFFFF) | (0x18 << 16)).unwrap();
    a.mov(dword_ptr(at + 4), (handler & 0xFFFF_0000) | 0x8E00).unwrap();
}

/// Loads the IDT (256 gates at IDT).
fn lidt(a: &mut CodeAssembler) {
    a.mov(word_ptr(0x2000), 0x7FFu32).unwrap();
    a.mov(dword_ptr(0x2002), IDT).unwrap();
    a.lidt(ptr(0x2000u32)).unwrap();
}

/// A handler at `at`: count, optionally run `body`, send EOI, IRET.
fn handler(
    at: u64,
    body: impl FnOnce(&mut CodeAssembler),
    eoi: impl FnOnce(&mut CodeAssembler),
) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    a.push(eax).unwrap();
    a.inc(dword_ptr(COUNTER)).unwrap();
    body(&mut a);
    eoi(&mut a);
    a.pop(eax).unwrap();
    a.iretd().unwrap();
    a.assemble(at).unwrap()
}

fn pic_eoi(a: &mut CodeAssembler) {
    a.mov(al, 0x20u32).unwrap();
    a.out(0x20, al).unwrap();
}

fn lapic_eoi(a: &mut CodeAssembler) {
    a.mov(dword_ptr(LAPIC + 0xB0), 0u32).unwrap();
}

/// Initialises the 8259A pair: vectors 0x20/0x28, cascade on IRQ 2, master mask `mask`.
fn init_pic(a: &mut CodeAssembler, mask: u32) {
    for (port, v) in [(0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0x21, mask)] {
        a.mov(al, v as u32).unwrap();
        a.out(port, al).unwrap();
    }
    for (port, v) in [(0xA0, 0x11), (0xA1, 0x28), (0xA1, 0x02), (0xA1, 0x01), (0xA1, 0xFF)] {
        a.mov(al, v as u32).unwrap();
        a.out(port, al).unwrap();
    }
}

/// `sti; hlt` until COUNTER reaches `n`, then exit through port 0xF4 with the count.
fn wait_for(a: &mut CodeAssembler, n: u32) {
    let mut top = a.create_label();
    a.set_label(&mut top).unwrap();
    a.sti().unwrap();
    a.hlt().unwrap();
    a.cmp(dword_ptr(COUNTER), n).unwrap();
    a.jb(top).unwrap();
    a.cli().unwrap();
    a.mov(eax, dword_ptr(COUNTER)).unwrap();
    a.out(0xF4, al).unwrap();
}

fn machine(cpus: usize, code: &[u8], handlers: &[(u64, Vec<u8>)]) -> Machine {
    let cfg = MachineConfig { cpus, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.load(0x1000, code).unwrap();
    for (at, h) in handlers {
        m.load(*at, h).unwrap();
    }
    m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
    m
}

#[test]
fn pit_ticks_interrupt_through_the_8259a() {
    // PIT channel 0 in mode 2 with count 1193: IRQ 0 about every millisecond of virtual
    // time (8254 datasheet; the 8259A in its PC configuration, vector 0x20).
    let mut a = CodeAssembler::new(32).unwrap();
    lidt(&mut a);
    gate(&mut a, 0x20, 0x1800);
    init_pic(&mut a, 0xFE);
    a.mov(al, 0x34u32).unwrap();
    a.out(0x43, al).unwrap();
    a.mov(al, (1193 & 0xFF) as u32).unwrap();
    a.out(0x40, al).unwrap();
    a.mov(al, (1193 >> 8) as u32).unwrap();
    a.out(0x40, al).unwrap();
    wait_for(&mut a, 5);
    let code = a.assemble(0x1000).unwrap();
    let mut m = machine(1, &code, &[(0x1800, handler(0x1800, |_| {}, pic_eoi))]);
    let r = m.run(Some(1_000_000));
    assert_eq!(r.reason, StopReason::DebugExit(5), "{r}");
    // Five periods of 1193 PIT clocks (1.193182 MHz): just under 5 ms of virtual time,
    // most of it spent halted.
    let ms = m.now_ns() / 1_000_000;
    assert!((4..=6).contains(&ms), "{} ns", m.now_ns());
    assert!(m.cpu.insn_count < 1_000, "the guest idled instead of spinning");
}

#[test]
fn lapic_timer_one_shot_and_periodic() {
    // SDM Vol. 3A §11.5.4 "APIC Timer": divide by 1 (DCR = 0xB), initial count 50000 on a
    // 1 GHz timer clock: 50 us per period; periodic mode (LVT bit 17), vector 0x40.
    let mut a = CodeAssembler::new(32).unwrap();
    lidt(&mut a);
    gate(&mut a, 0x40, 0x1800);
    init_pic(&mut a, 0xFF);
    a.mov(dword_ptr(LAPIC + 0xF0), 0x1FFu32).unwrap(); // SVR: software enable
    a.mov(dword_ptr(LAPIC + 0x3E0), 0xBu32).unwrap(); // divide by 1
    a.mov(dword_ptr(LAPIC + 0x320), 0x2_0040u32).unwrap(); // periodic, vector 0x40
    a.mov(dword_ptr(LAPIC + 0x380), 50_000u32).unwrap(); // initial count
    wait_for(&mut a, 3);
    let code = a.assemble(0x1000).unwrap();
    let mut m = machine(1, &code, &[(0x1800, handler(0x1800, |_| {}, lapic_eoi))]);
    let r = m.run(Some(1_000_000));
    assert_eq!(r.reason, StopReason::DebugExit(3), "{r}");
    let us = m.now_ns() / 1000;
    assert!((150..=160).contains(&us), "{} ns", m.now_ns());
}

#[test]
fn com1_receive_interrupt_through_the_ioapic() {
    // IOAPIC pin 4 (ISA IRQ 4) -> vector 0x34, fixed, physical, APIC 0; COM1 with the
    // received-data interrupt enabled and OUT2 set. The handler reads the byte.
    let mut a = CodeAssembler::new(32).unwrap();
    lidt(&mut a);
    gate(&mut a, 0x34, 0x1800);
    init_pic(&mut a, 0xFF);
    a.mov(dword_ptr(LAPIC + 0xF0), 0x1FFu32).unwrap();
    a.mov(dword_ptr(0xFEC0_0000u32), 0x18u32).unwrap(); // IOREDTBL[4] low
    a.mov(dword_ptr(0xFEC0_0010u32), 0x34u32).unwrap();
    a.mov(dword_ptr(0xFEC0_0000u32), 0x19u32).unwrap(); // IOREDTBL[4] high
    a.mov(dword_ptr(0xFEC0_0010u32), 0u32).unwrap();
    a.mov(dx, 0x3FCu32).unwrap(); // MCR: OUT2
    a.mov(al, 0x08u32).unwrap();
    a.out(dx, al).unwrap();
    a.mov(dx, 0x3F9u32).unwrap(); // IER: received data available
    a.mov(al, 0x01u32).unwrap();
    a.out(dx, al).unwrap();
    wait_for(&mut a, 2);
    let code = a.assemble(0x1000).unwrap();
    let read_rbr = |a: &mut CodeAssembler| {
        a.push(edx).unwrap();
        a.mov(dx, 0x3F8u32).unwrap();
        a.in_(al, dx).unwrap();
        a.movzx(edx, byte_ptr(0x510)).unwrap();
        a.mov(byte_ptr(edx + 0x600), al).unwrap();
        a.inc(byte_ptr(0x510)).unwrap();
        a.pop(edx).unwrap();
    };
    let mut m = machine(1, &code, &[(0x1800, handler(0x1800, read_rbr, lapic_eoi))]);
    m.serial_input(b"hi");
    let r = m.run(Some(1_000_000));
    assert_eq!(r.reason, StopReason::DebugExit(2), "{r}");
    let mut got = [0u8; 2];
    m.mem.read(hvsim_mmu::Gpa(0x600), &mut got);
    assert_eq!(&got, b"hi");
}

#[test]
fn init_and_startup_ipis_start_an_application_processor() {
    // SDM Vol. 3A §9.4.4.1: the BSP sends INIT, then a start-up IPI with vector 0x09
    // through its ICR; the AP starts in real mode at 0x9000.
    let mut ap = CodeAssembler::new(16).unwrap();
    ap.xor(ax, ax).unwrap();
    ap.mov(ds, ax).unwrap();
    ap.lock().inc(dword_ptr(COUNTER)).unwrap();
    ap.cli().unwrap();
    ap.hlt().unwrap();
    let ap = ap.assemble(0x9000).unwrap();
    let mut a = CodeAssembler::new(32).unwrap();
    a.mov(dword_ptr(LAPIC + 0xF0), 0x1FFu32).unwrap();
    a.mov(dword_ptr(LAPIC + 0x310), 1u32 << 24).unwrap(); // destination APIC 1
    a.mov(dword_ptr(LAPIC + 0x300), 0x4500u32).unwrap(); // INIT, assert
    a.mov(dword_ptr(LAPIC + 0x300), 0x4609u32).unwrap(); // start-up, vector 0x09
    let mut spin = a.create_label();
    a.set_label(&mut spin).unwrap();
    a.pause().unwrap();
    a.cmp(dword_ptr(COUNTER), 1u32).unwrap();
    a.jb(spin).unwrap();
    a.mov(al, 0x11u32).unwrap();
    a.out(0xF4, al).unwrap();
    let code = a.assemble(0x1000).unwrap();
    let mut m = machine(2, &code, &[(0x9000, ap)]);
    let r = m.run(Some(1_000_000));
    assert_eq!(r.reason, StopReason::DebugExit(0x11), "{r}");
    let apc = m.vcpu(1).unwrap();
    assert!(apc.halted && !apc.wait_for_sipi);
    assert_eq!(apc.seg[1].selector, 0x0900);
}

#[test]
fn acpi_s5_powers_off_and_port_92_resets() {
    // ACPI PM1a_CNT: SLP_TYP = S5 (hvsim's DSDT names 0) with SLP_EN (bit 13).
    let mut a = CodeAssembler::new(32).unwrap();
    a.mov(dx, 0x604u32).unwrap();
    a.mov(ax, 0x2000u32).unwrap();
    a.out(dx, ax).unwrap();
    a.hlt().unwrap();
    let mut m = machine(1, &a.assemble(0x1000).unwrap(), &[]);
    assert_eq!(m.run(Some(100)).reason, StopReason::PowerOff);
    // System control port A bit 0: a 0 -> 1 edge resets the system.
    let mut a = CodeAssembler::new(32).unwrap();
    a.mov(al, 1u32).unwrap();
    a.out(0x92, al).unwrap();
    a.hlt().unwrap();
    let mut m = machine(1, &a.assemble(0x1000).unwrap(), &[]);
    assert_eq!(m.run(Some(100)).reason, StopReason::Reset);
}

#[test]
fn timer_runs_are_deterministic() {
    let run = || {
        let mut a = CodeAssembler::new(32).unwrap();
        lidt(&mut a);
        gate(&mut a, 0x20, 0x1800);
        init_pic(&mut a, 0xFE);
        a.mov(al, 0x34u32).unwrap();
        a.out(0x43, al).unwrap();
        a.mov(al, 100u32).unwrap();
        a.out(0x40, al).unwrap();
        a.mov(al, 0u32).unwrap();
        a.out(0x40, al).unwrap();
        a.sti().unwrap();
        let mut top = a.create_label();
        a.set_label(&mut top).unwrap();
        a.inc(ebx).unwrap();
        a.cmp(dword_ptr(COUNTER), 20u32).unwrap();
        a.jb(top).unwrap();
        a.mov(al, 0u32).unwrap();
        a.out(0xF4, al).unwrap();
        let code = a.assemble(0x1000).unwrap();
        let mut m = machine(1, &code, &[(0x1800, handler(0x1800, |_| {}, pic_eoi))]);
        m.enable_trace_hash();
        let r = m.run(Some(10_000_000));
        assert_eq!(r.reason, StopReason::DebugExit(0), "{r}");
        (m.trace_hash().unwrap(), m.cpu.gpr[3])
    };
    let first = run();
    assert!(first.1 > 1000, "the loop ran between ticks: {}", first.1);
    assert_eq!(first, run());
}

/// A20 (SDM Vol. 3A §22.29.2 "Address-Space Wraparound"): with the gate open (the reset
/// state, as on QEMU's `pc`) FFFF:0510 is physical 0x100500; closed through port 0x92
/// and the i8042 (command 0xDD), bit 20 is masked and it wraps to 0x500, for reads and
/// writes; reopened (0xDF), the two addresses are distinct again.
#[test]
fn a20_gate_masks_address_bit_20() {
    let mut a = CodeAssembler::new(16).unwrap();
    // DS = 0, ES = FFFF.
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(ax, 0xFFFFu32).unwrap();
    a.mov(es, ax).unwrap();
    a.mov(byte_ptr(0x500u32), 0xAAu32).unwrap();
    a.mov(byte_ptr(0x510u32).es(), 0xBBu32).unwrap();
    a.mov(al, byte_ptr(0x500u32)).unwrap();
    a.mov(byte_ptr(0x600u32), al).unwrap(); // gate open: 0xAA
                                            // Close: port 0x92 bit 1 off, i8042 "disable A20".
    a.in_(al, 0x92).unwrap();
    a.and(al, 0xFDu32 as i32).unwrap();
    a.out(0x92, al).unwrap();
    a.mov(al, 0xDDu32).unwrap();
    a.out(0x64, al).unwrap();
    a.mov(al, byte_ptr(0x510u32).es()).unwrap();
    a.mov(byte_ptr(0x601u32), al).unwrap(); // wraps: 0xAA
    a.mov(byte_ptr(0x510u32).es(), 0xCCu32).unwrap(); // writes 0x500
    a.mov(al, byte_ptr(0x500u32)).unwrap();
    a.mov(byte_ptr(0x602u32), al).unwrap(); // 0xCC
                                            // Open again through the i8042.
    a.mov(al, 0xDFu32).unwrap();
    a.out(0x64, al).unwrap();
    a.mov(al, byte_ptr(0x510u32).es()).unwrap();
    a.mov(byte_ptr(0x603u32), al).unwrap(); // 0xBB
    a.mov(al, 0x11u32).unwrap();
    a.out(0xF4, al).unwrap();
    let code = a.assemble(0x7C00).unwrap();
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load(0x7C00, &code).unwrap();
    m.enter_mode(GuestMode::Real, 0x7C00, 0x7000).unwrap();
    assert!(m.platform().a20(), "open at reset");
    let rep = m.run(Some(10_000));
    assert_eq!(rep.reason, StopReason::DebugExit(0x11), "{rep}");
    let mut got = [0u8; 4];
    m.phys_read(hvsim_mmu::Gpa(0x600), &mut got);
    assert_eq!(got, [0xAA, 0xAA, 0xCC, 0xBB]);
    let mut hi = [0u8; 1];
    m.phys_read(hvsim_mmu::Gpa(0x10_0500), &mut hi);
    assert_eq!(hi, [0xBB], "the write with A20 closed did not reach 1 MiB + 0x500");
}

/// The i440FX PAM registers (82441FX datasheet, "PAM - Programmable Attribute Map
/// Registers"): with an external BIOS, PAM0 bits 5:4 decide whether 0xF0000-0xFFFFF
/// reads the ROM or DRAM and whether writes reach DRAM. The guest runs from the ROM's
/// high alias and walks PAM0 through 00, 30, 10 and 20, then 30 again.
#[test]
fn pam_registers_route_the_bios_segment_to_rom_or_dram() {
    const ROM_BYTE: u32 = 0x5A;
    let mut a = CodeAssembler::new(16).unwrap();
    let set_pam0 = |a: &mut CodeAssembler, v: u32| {
        a.mov(eax, 0x8000_0058u32).unwrap();
        a.mov(dx, 0xCF8u32).unwrap();
        a.out(dx, eax).unwrap();
        a.mov(dx, 0xCFDu32).unwrap();
        a.mov(al, v).unwrap();
        a.out(dx, al).unwrap();
    };
    let probe = |a: &mut CodeAssembler, write: u32, slot: u32| {
        // ES:0 is 0xF0000; store what a read gives after writing `write`.
        a.mov(byte_ptr(0u32).es(), write).unwrap();
        a.mov(al, byte_ptr(0u32).es()).unwrap();
        a.mov(byte_ptr(0x600 + slot), al).unwrap();
    };
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(ax, 0xF000u32).unwrap();
    a.mov(es, ax).unwrap();
    probe(&mut a, 0x77, 0); // PAM 00: reads ROM, write dropped -> 5A
    set_pam0(&mut a, 0x30);
    a.mov(al, byte_ptr(0u32).es()).unwrap();
    a.mov(byte_ptr(0x601u32), al).unwrap(); // DRAM: 0
    probe(&mut a, 0x66, 2); // read/write DRAM -> 66
    set_pam0(&mut a, 0x10);
    probe(&mut a, 0x55, 3); // DRAM read-only -> 66
    set_pam0(&mut a, 0x20);
    probe(&mut a, 0x44, 4); // reads ROM, writes DRAM -> 5A
    set_pam0(&mut a, 0x30);
    a.mov(al, byte_ptr(0u32).es()).unwrap();
    a.mov(byte_ptr(0x605u32), al).unwrap(); // the write-only write landed: 44
    a.mov(al, 0x22u32).unwrap();
    a.out(0xF4, al).unwrap();
    let code = a.assemble(0x100).unwrap();
    // A 128 KiB ROM, so its low alias is 0xE0000-0xFFFFF: ROM offset 0x10000 is both
    // FFFF0000h (CS base after reset) and F0000h. The byte there is the ROM's data; the
    // code follows at IP 0x100; the reset vector (IP FFF0h) jumps to it.
    let mut rom = vec![0u8; 0x2_0000];
    rom[0x1_0000] = ROM_BYTE as u8;
    rom[0x1_0100..0x1_0100 + code.len()].copy_from_slice(&code);
    let mut j = CodeAssembler::new(16).unwrap();
    j.jmp(0x100u64).unwrap();
    let jmp = j.assemble(0xFFF0).unwrap();
    rom[0x1_FFF0..0x1_FFF0 + jmp.len()].copy_from_slice(&jmp);
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load_external_bios(&rom).unwrap();
    let rep = m.run(Some(10_000));
    assert_eq!(rep.reason, StopReason::DebugExit(0x22), "{rep}");
    let mut got = [0u8; 6];
    m.phys_read(hvsim_mmu::Gpa(0x600), &mut got);
    assert_eq!(got, [0x5A, 0x00, 0x66, 0x66, 0x5A, 0x44]);
}

/// CPUID.1:ECX advertises x2APIC (bit 21) and TSC-deadline (bit 24), and both work
/// through RDMSR/WRMSR: IA32_APIC_BASE.EXTD switches to x2APIC mode (SDM Vol. 3A
/// §11.12.1 "Detecting and Enabling x2APIC Mode"), the ID and version MSRs read, TPR
/// (808H) and CR8 are one register (§11.8.6.1: CR8[3:0] = TPR[7:4]), and an
/// IA32_TSC_DEADLINE in TSC-deadline mode (LVT timer bits 18:17 = 10b, §11.5.4.1) raises
/// the timer vector in IRR and then reads 0.
#[test]
fn x2apic_tsc_deadline_and_cr8_through_msrs() {
    const OUT: u32 = 0x600;
    let mut a = CodeAssembler::new(64).unwrap();
    let rd = |a: &mut CodeAssembler, msr: u32| {
        a.mov(ecx, msr).unwrap();
        a.rdmsr().unwrap();
    };
    let wr = |a: &mut CodeAssembler, msr: u32, v: u32| {
        a.mov(ecx, msr).unwrap();
        a.mov(eax, v).unwrap();
        a.xor(edx, edx).unwrap();
        a.wrmsr().unwrap();
    };
    a.mov(eax, 1u32).unwrap();
    a.cpuid().unwrap();
    a.mov(dword_ptr(OUT as u64), ecx).unwrap();
    rd(&mut a, 0x1B);
    a.or(eax, 0xC00).unwrap(); // EN | EXTD
    a.wrmsr().unwrap();
    rd(&mut a, 0x802); // x2APIC ID
    a.mov(dword_ptr(OUT as u64 + 4), eax).unwrap();
    rd(&mut a, 0x803); // version
    a.mov(dword_ptr(OUT as u64 + 8), eax).unwrap();
    wr(&mut a, 0x80F, 0x1FF); // SVR: software enable
    wr(&mut a, 0x808, 0x20); // TPR
    a.mov(rax, cr8).unwrap();
    a.mov(dword_ptr(OUT as u64 + 12), eax).unwrap(); // 2
    a.mov(eax, 5u32).unwrap();
    a.mov(cr8, rax).unwrap();
    rd(&mut a, 0x808);
    a.mov(dword_ptr(OUT as u64 + 16), eax).unwrap(); // 0x50
    wr(&mut a, 0x808, 0);
    // TSC-deadline mode, vector 0x40; deadline = TSC + 2000.
    wr(&mut a, 0x832, 0x0004_0040);
    a.rdtsc().unwrap();
    a.add(eax, 2000).unwrap();
    a.adc(edx, 0).unwrap();
    a.mov(ecx, 0x6E0u32).unwrap();
    a.wrmsr().unwrap();
    rd(&mut a, 0x6E0);
    a.mov(dword_ptr(OUT as u64 + 20), eax).unwrap(); // armed: non-zero
    let mut spin = a.create_label();
    a.set_label(&mut spin).unwrap();
    rd(&mut a, 0x822); // IRR vectors 0x40-0x5F
    a.test(eax, 1).unwrap();
    a.jz(spin).unwrap();
    rd(&mut a, 0x6E0);
    a.mov(dword_ptr(OUT as u64 + 24), eax).unwrap(); // fired: 0
    a.mov(al, 0x33u32).unwrap();
    a.out(0xF4, al).unwrap();
    let code = a.assemble(0x1_0000).unwrap();
    for vendor in [hvsim::cpuid::Vendor::Intel, hvsim::cpuid::Vendor::Amd] {
        let cfg = MachineConfig { vendor, ..MachineConfig::default() };
        let mut m = Machine::new(&cfg).unwrap();
        m.load(0x1_0000, &code).unwrap();
        m.enter_mode(GuestMode::Long64, 0x1_0000, 0x8000).unwrap();
        let rep = m.run(Some(100_000));
        assert_eq!(rep.reason, StopReason::DebugExit(0x33), "{vendor:?}: {rep}");
        let mut out = [0u8; 28];
        m.phys_read(hvsim_mmu::Gpa(u64::from(OUT)), &mut out);
        let w = |i: usize| u32::from_le_bytes(out[4 * i..4 * i + 4].try_into().unwrap());
        assert_ne!(w(0) & (1 << 21), 0, "{vendor:?}: x2APIC advertised");
        assert_ne!(w(0) & (1 << 24), 0, "{vendor:?}: TSC-deadline advertised");
        assert_eq!(w(1), 0, "BSP's x2APIC ID");
        assert_eq!(w(2) & 0xFF, 0x14, "version");
        assert_eq!(w(3), 2, "CR8 = TPR[7:4]");
        assert_eq!(w(4), 0x50, "MOV CR8 sets TPR[7:4]");
        assert_ne!(w(5), 0, "deadline armed");
        assert_eq!(w(6), 0, "deadline reads 0 once it fired");
    }
}

/// x2APIC MSRs outside x2APIC mode, and a reserved x2APIC register, are #GP(0) (SDM
/// Vol. 3A §11.12.1.2: "RDMSR/WRMSR of x2APIC MSRs when the local APIC is in xAPIC mode
/// ... #GP").
#[test]
fn x2apic_msrs_fault_in_xapic_mode() {
    for msr in [0x802u32, 0x831] {
        let mut a = CodeAssembler::new(64).unwrap();
        if msr == 0x831 {
            a.mov(ecx, 0x1Bu32).unwrap();
            a.rdmsr().unwrap();
            a.or(eax, 0xC00).unwrap();
            a.wrmsr().unwrap();
        }
        a.mov(ecx, msr).unwrap();
        a.rdmsr().unwrap();
        a.hlt().unwrap();
        let code = a.assemble(0x1_0000).unwrap();
        let mut m = Machine::new(&MachineConfig::default()).unwrap();
        m.set_exception_catch(hvsim::machine::CATCH_ALL);
        m.load(0x1_0000, &code).unwrap();
        m.enter_mode(GuestMode::Long64, 0x1_0000, 0x8000).unwrap();
        let rep = m.run(Some(100));
        match rep.reason {
            StopReason::Exception { exception, .. } => {
                assert_eq!((exception.vector, exception.error_code), (13, Some(0)), "{msr:#x}")
            }
            other => panic!("{msr:#x}: {other:?}"),
        }
    }
}
