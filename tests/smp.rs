//! Several vCPUs: application processors wait for INIT/SIPI and start in real mode at the
//! SIPI vector (SDM Vol. 3A §9.4 "Multiple-Processor (MP) Initialization"); vCPUs are
//! interleaved in fixed quanta, so runs repeat exactly.

use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use iced_x86::code_asm::*;

const AP_VECTOR: u8 = 0x09; // APs start at 0x9000
const COUNTER: u64 = 0x500;
const SLOTS: u64 = 0x600;

/// AP code: take a ticket with LOCK XADD, store CS into its slot, halt with IF=0.
fn ap_code() -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(bx, 1u32).unwrap();
    a.lock().xadd(word_ptr(COUNTER as u32), bx).unwrap();
    a.shl(bx, 1u32).unwrap();
    a.mov(ax, cs).unwrap();
    a.mov(word_ptr(bx + SLOTS as u32), ax).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    a.assemble(u64::from(AP_VECTOR) << 12).unwrap()
}

/// BSP code (32-bit): wait until `aps` tickets are taken, then exit through port 0xF4
/// with the count.
fn bsp_code(aps: u32) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    let mut spin = a.create_label();
    a.set_label(&mut spin).unwrap();
    a.pause().unwrap();
    a.movzx(eax, word_ptr(COUNTER as u32)).unwrap();
    a.cmp(eax, aps).unwrap();
    a.jne(spin).unwrap();
    a.out(0xF4, al).unwrap();
    a.assemble(0x1000).unwrap()
}

fn machine(cpus: usize, quantum: u64) -> Machine {
    let cfg = MachineConfig { cpus, quantum, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.load(u64::from(AP_VECTOR) << 12, &ap_code()).unwrap();
    m.load(0x1000, &bsp_code(cpus as u32 - 1)).unwrap();
    m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
    m
}

#[test]
fn application_processors_wait_for_sipi() {
    let mut m = machine(4, 1000);
    assert_eq!(m.vcpu_count(), 4);
    // Without start-up IPIs the APs never run: the BSP spins to the limit.
    let r = m.run(Some(50_000));
    assert_eq!(r.reason, StopReason::InsnLimit);
    assert_eq!(m.vcpu(1).unwrap().insn_count, 0);
    assert!(m.vcpu(3).unwrap().wait_for_sipi);
}

#[test]
fn sipi_starts_each_ap_at_its_vector_and_the_bsp_sees_them() {
    for cpus in [2usize, 4] {
        let mut m = machine(cpus, 1000);
        for i in 1..cpus {
            m.init_vcpu(i);
            m.startup_vcpu(i, AP_VECTOR);
        }
        let r = m.run(Some(1_000_000));
        assert_eq!(r.reason, StopReason::DebugExit(cpus as u32 - 1), "{r}");
        for i in 1..cpus {
            let ap = m.vcpu(i).unwrap();
            // Real mode at CS = vector << 8 (SDM §9.4.4.1), halted after its work.
            assert_eq!(ap.seg[1].selector, u16::from(AP_VECTOR) << 8);
            assert!(ap.halted, "AP {i}");
            assert_eq!(ap.insn_count, 9, "AP {i}");
        }
        let mut slots = [0u8; 6];
        m.mem.read(hvsim_mmu::Gpa(SLOTS), &mut slots);
        for t in 0..cpus - 1 {
            assert_eq!(u16::from_le_bytes([slots[2 * t], slots[2 * t + 1]]), 0x0900);
        }
        // The virtual clock counts every vCPU's instructions.
        let total: u64 = (0..cpus).map(|i| m.vcpu(i).unwrap().insn_count).sum();
        assert_eq!(m.clock(), total);
        assert_eq!(r.insn_count, total);
    }
}

#[test]
fn a_second_sipi_is_ignored_and_init_parks_the_ap_again() {
    let mut m = machine(2, 1000);
    m.init_vcpu(1);
    m.startup_vcpu(1, AP_VECTOR);
    m.startup_vcpu(1, 0x20); // ignored: the AP is no longer waiting for SIPI
    assert_eq!(m.vcpu(1).unwrap().seg[1].base, 0x9000);
    m.init_vcpu(1);
    assert!(m.vcpu(1).unwrap().wait_for_sipi);
    assert_eq!(m.vcpu(1).unwrap().rip, 0);
}

#[test]
fn the_run_stops_when_every_vcpu_is_halted() {
    let cfg = MachineConfig { cpus: 2, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.load(0x9000, &ap_code()).unwrap();
    m.load(0x1000, &[0xFA, 0xF4]).unwrap(); // CLI; HLT
    m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
    m.init_vcpu(1);
    m.startup_vcpu(1, AP_VECTOR);
    let r = m.run(Some(1_000_000));
    assert_eq!(r.reason, StopReason::Halted { interrupts_enabled: false }, "{r}");
    assert_eq!(m.current_vcpu(), 0);
    assert_eq!(m.vcpu(1).unwrap().insn_count, 9);
}

#[test]
fn interleaving_is_deterministic() {
    let run = |quantum| {
        let mut m = machine(4, quantum);
        m.enable_trace_hash();
        for i in 1..4 {
            m.init_vcpu(i);
            m.startup_vcpu(i, AP_VECTOR);
        }
        let r = m.run(Some(1_000_000));
        (m.trace_hash().unwrap(), r.insn_count)
    };
    assert_eq!(run(7), run(7));
    assert_eq!(run(1000), run(1000));
}

#[test]
fn zero_vcpus_is_a_configuration_error() {
    let cfg = MachineConfig { cpus: 0, ..MachineConfig::default() };
    assert!(Machine::new(&cfg).is_err());
}

/// The MP initialization protocol driven by the guest (SDM Vol. 3A §9.4.4.1 "Typical
/// BSP Initialization Sequence"): the BSP sends each of three APs, by APIC ID through
/// the ICR (§11.6.1), an INIT IPI and two start-up IPIs, polling the delivery status
/// between writes. Each AP starts in real mode at the SIPI vector, takes a spin lock,
/// prints "AP n" with n its initial APIC ID (CPUID.1:EBX[31:24]) to COM1, and counts
/// itself; the BSP exits when all three have.
#[test]
fn bsp_starts_three_aps_with_init_sipi_sipi_and_each_prints_its_apic_id() {
    const LAPIC: u32 = 0xFEE0_0000;
    const LOCK: u32 = 0x510;
    let mut ap = CodeAssembler::new(16).unwrap();
    let mut acquire = ap.create_label();
    ap.xor(ax, ax).unwrap();
    ap.mov(ds, ax).unwrap();
    ap.set_label(&mut acquire).unwrap();
    ap.mov(al, 1u32).unwrap();
    ap.xchg(byte_ptr(LOCK), al).unwrap();
    ap.test(al, al).unwrap();
    ap.jnz(acquire).unwrap();
    ap.mov(eax, 1u32).unwrap();
    ap.cpuid().unwrap();
    ap.shr(ebx, 24u32).unwrap();
    ap.mov(dx, 0x3F8u32).unwrap();
    for &c in b"AP " {
        ap.mov(al, u32::from(c)).unwrap();
        ap.out(dx, al).unwrap();
    }
    ap.mov(al, bl).unwrap();
    ap.add(al, i32::from(b'0')).unwrap();
    ap.out(dx, al).unwrap();
    ap.mov(al, u32::from(b'\n')).unwrap();
    ap.out(dx, al).unwrap();
    ap.mov(byte_ptr(LOCK), 0u32).unwrap();
    ap.lock().inc(word_ptr(COUNTER as u32)).unwrap();
    ap.cli().unwrap();
    ap.hlt().unwrap();
    let ap = ap.assemble(u64::from(AP_VECTOR) << 12).unwrap();

    let mut a = CodeAssembler::new(32).unwrap();
    let icr_send = |a: &mut CodeAssembler, low: u32| {
        let mut idle = a.create_label();
        a.mov(dword_ptr(LAPIC + 0x300), low).unwrap();
        a.set_label(&mut idle).unwrap();
        a.test(dword_ptr(LAPIC + 0x300), 1u32 << 12).unwrap(); // delivery status
        a.jnz(idle).unwrap();
    };
    a.mov(dword_ptr(LAPIC + 0xF0), 0x1FFu32).unwrap(); // SVR: APIC software-enabled
    for id in 1..=3u32 {
        a.mov(dword_ptr(LAPIC + 0x310), id << 24).unwrap();
        icr_send(&mut a, 0x4500); // INIT, level assert
        icr_send(&mut a, 0x4600 | u32::from(AP_VECTOR)); // start-up
        icr_send(&mut a, 0x4600 | u32::from(AP_VECTOR)); // second start-up (ignored)
    }
    let mut spin = a.create_label();
    a.set_label(&mut spin).unwrap();
    a.pause().unwrap();
    a.cmp(word_ptr(COUNTER as u32), 3u32).unwrap();
    a.jb(spin).unwrap();
    a.mov(al, 0x44u32).unwrap();
    a.out(0xF4, al).unwrap();
    let bsp = a.assemble(0x1000).unwrap();

    let run = || {
        let cfg = MachineConfig { cpus: 4, ..MachineConfig::default() };
        let mut m = Machine::new(&cfg).unwrap();
        m.load(u64::from(AP_VECTOR) << 12, &ap).unwrap();
        m.load(0x1000, &bsp).unwrap();
        m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
        let r = m.run(Some(2_000_000));
        assert_eq!(r.reason, StopReason::DebugExit(0x44), "{r}");
        String::from_utf8(m.serial_output().to_vec()).unwrap()
    };
    let out = run();
    let mut lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    lines.sort_unstable();
    assert_eq!(lines, ["AP 1", "AP 2", "AP 3"]);
    assert_eq!(run(), out, "the interleaving repeats exactly");
}
