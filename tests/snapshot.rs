//! Snapshots: a machine saved mid-run and restored continues exactly as the uninterrupted
//! run does (same trace hash, same console output, same stop), for a uniprocessor guest
//! taking timer interrupts and doing port I/O, an SMP guest, and a nested SVM guest
//! (L1 running L2 at the snapshot point). Damaged files are refused with a clear error
//! through the library and through `hvsim run --restore` (exit status 2, no panic).

use hvsim::machine::CATCH_ALL;
use hvsim::nested::svm::state::save_world;
use hvsim::snapshot::{SnapshotError, FORMAT_VERSION, MAGIC};
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, Vendor};
use hvsim_svm_model::intercept as icpt;
use hvsim_svm_model::msr as svm_msr;
use hvsim_svm_model::vmcb;
use hvsim_svm_model::VmcbImage;
use iced_x86::code_asm::*;
use proptest::prelude::*;
use std::process::{Command, Stdio};

#[path = "support/svm_l1.rs"]
mod svm_l1;
#[path = "support/vmx_l1.rs"]
mod vmx_l1;

/// Enough for every guest here to finish.
const LIMIT: u64 = 50_000_000;

/// The end of a run: trace hash, console output, stop reason, final clock.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    hash: u64,
    serial: Vec<u8>,
    reason: String,
    clock: u64,
}

fn finish(m: &mut Machine) -> Outcome {
    let r = m.run(Some(LIMIT));
    Outcome {
        hash: m.trace_hash().expect("trace hash on"),
        serial: m.serial_output().to_vec(),
        reason: format!("{:?}", r.reason),
        clock: m.clock(),
    }
}

/// Runs `m` until its clock reaches `at`; panics if the run ends first.
fn run_to(m: &mut Machine, at: u64) {
    while m.clock() < at {
        let r = m.run(Some(at - m.clock()));
        assert_eq!(r.reason, StopReason::InsnLimit, "the run ended before {at}: {r}");
    }
}

/// The uninterrupted run of `build()`, then for each point: run to it, snapshot,
/// restore into a new machine (the old one is dropped), run to the end; the outcomes
/// agree. Returns the machines' states at the points for further checks.
fn check_split(build: impl Fn() -> Machine, points: &[u64]) -> Vec<(Vec<u8>, bool)> {
    let mut reference = build();
    reference.enable_trace_hash();
    let whole = finish(&mut reference);
    assert!(whole.reason.contains("DebugExit"), "{whole:?}");
    let mut states = Vec::new();
    for &at in points {
        assert!(at < whole.clock, "point {at} is past the end ({})", whole.clock);
        let mut m = build();
        m.enable_trace_hash();
        run_to(&mut m, at);
        let in_guest = m.nested.in_guest();
        let bytes = m.snapshot().expect("snapshot");
        drop(m);
        let mut restored = Machine::restore_snapshot(&bytes, false).expect("restore").machine;
        // A restored machine saves to the same bytes: nothing is lost or invented.
        assert_eq!(restored.snapshot().unwrap(), bytes, "re-snapshot at {at} differs");
        assert_eq!(finish(&mut restored), whole, "restored at {at}");
        states.push((bytes, in_guest));
    }
    states
}

// ---- A uniprocessor guest: PIT interrupts through the 8259A, COM1 output -------------

const IDT: u32 = 0x3000;
const COUNTER: u32 = 0x500;

/// 32-bit guest: IDT with a gate for vector 0x20, the 8259A at 0x20/0x28, PIT channel 0
/// in mode 2 (8254 datasheet) with a short period; between ticks it counts in EBX and
/// writes a letter to COM1 per tick; after 12 ticks it exits through isa-debug-exit.
fn uniprocessor() -> Machine {
    let mut a = CodeAssembler::new(32).unwrap();
    let gate = IDT + 0x20 * 8;
    a.mov(dword_ptr(gate), (0x1800u32 & 0xFFFF) | (0x18 << 16)).unwrap();
    a.mov(dword_ptr(gate + 4), 0x8E00u32).unwrap();
    a.mov(word_ptr(0x2000), 0x7FFu32).unwrap();
    a.mov(dword_ptr(0x2002), IDT).unwrap();
    a.lidt(ptr(0x2000u32)).unwrap();
    for (port, v) in [(0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0x21, 0xFE)] {
        a.mov(al, v as u32).unwrap();
        a.out(port, al).unwrap();
    }
    a.mov(al, 0x34u32).unwrap();
    a.out(0x43, al).unwrap();
    a.mov(al, 200u32).unwrap();
    a.out(0x40, al).unwrap();
    a.mov(al, 0u32).unwrap();
    a.out(0x40, al).unwrap();
    a.sti().unwrap();
    let mut top = a.create_label();
    a.set_label(&mut top).unwrap();
    a.inc(ebx).unwrap();
    a.cmp(dword_ptr(COUNTER), 12u32).unwrap();
    a.jb(top).unwrap();
    a.cli().unwrap();
    a.mov(eax, ebx).unwrap();
    a.and(eax, 0x7Fu32).unwrap();
    a.out(0xF4, al).unwrap();
    let code = a.assemble(0x1000).unwrap();
    // The handler: count, print 'a' + count to COM1, EOI, IRET.
    let mut h = CodeAssembler::new(32).unwrap();
    h.push(eax).unwrap();
    h.push(edx).unwrap();
    h.inc(dword_ptr(COUNTER)).unwrap();
    h.mov(eax, dword_ptr(COUNTER)).unwrap();
    h.add(al, b'a' as u32).unwrap();
    h.mov(dx, 0x3F8u32).unwrap();
    h.out(dx, al).unwrap();
    h.mov(al, 0x20u32).unwrap();
    h.out(0x20, al).unwrap();
    h.pop(edx).unwrap();
    h.pop(eax).unwrap();
    h.iretd().unwrap();
    let handler = h.assemble(0x1800).unwrap();
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load(0x1000, &code).unwrap();
    m.load(0x1800, &handler).unwrap();
    m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
    m
}

/// Snapshot mid-run (before the timer is programmed, between ticks, in a handler's
/// neighbourhood) and restore: the same hash, output and stop as without.
#[test]
fn uniprocessor_with_timer_interrupts_and_io() {
    let mut probe = uniprocessor();
    probe.enable_trace_hash();
    let end = finish(&mut probe);
    assert_eq!(end.serial, b"bcdefghijklm", "{end:?}");
    check_split(uniprocessor, &[1, 17, 40, 1_000, 2_345, end.clock / 2, end.clock - 10]);
}

/// Restoring the same snapshot twice gives two machines that run identically.
/// 32-bit guest without paging: the local APIC timer counts down from FFFFFFFFh (masked,
/// divide by 1) while the guest reads its current count through xAPIC MMIO in the middle
/// of a block and writes each value to port 80h (into the trace hash), 40 times, then
/// exits through isa-debug-exit.
fn lapic_timer_reads() -> Machine {
    const APIC: u32 = 0xFEE0_0000;
    let mut a = CodeAssembler::new(32).unwrap();
    for (reg, v) in [(0xF0u32, 0x1FFu32), (0x3E0, 0xB), (0x320, 0x1_0000), (0x380, 0xFFFF_FFFF)] {
        a.mov(dword_ptr(APIC + reg), v).unwrap();
    }
    a.mov(ecx, 40u32).unwrap();
    let mut top = a.create_label();
    a.set_label(&mut top).unwrap();
    a.add(ebx, 3u32).unwrap();
    a.imul_3(edx, ebx, 7u32).unwrap();
    a.mov(eax, dword_ptr(APIC + 0x390)).unwrap();
    a.out(0x80, al).unwrap();
    a.dec(ecx).unwrap();
    a.jnz(top).unwrap();
    a.mov(al, 1u32).unwrap();
    a.out(0xF4, al).unwrap();
    let code = a.assemble(0x1000).unwrap();
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
    m
}

/// A device read in the middle of a block sees the exact instruction count: a snapshot
/// at any instruction, including between the ADD and the MMIO read of the APIC timer's
/// current count, continues to the uninterrupted run's hash (the restored run's blocks
/// begin elsewhere).
#[test]
fn mmio_reads_of_the_apic_timer_in_mid_block() {
    let mut probe = lapic_timer_reads();
    probe.enable_trace_hash();
    let end = finish(&mut probe);
    let points: Vec<u64> = (5..40).chain([end.clock / 2, end.clock - 3]).collect();
    check_split(lapic_timer_reads, &points);
}

#[test]
fn restoring_twice_gives_the_same_run() {
    let mut m = uniprocessor();
    m.enable_trace_hash();
    run_to(&mut m, 3_000);
    let bytes = m.snapshot().unwrap();
    let mut a = Machine::restore_snapshot(&bytes, false).unwrap().machine;
    let mut b = Machine::restore_snapshot(&bytes, false).unwrap().machine;
    let (x, y) = (finish(&mut a), finish(&mut b));
    assert_eq!(x, y);
    assert_eq!(x, finish(&mut m), "and both as the original machine continued");
}

// ---- The BIOS and a disk's copy-on-write overlay ---------------------------------------

/// A hard disk (in memory, 16 sectors) booted through the built-in BIOS: the boot sector
/// writes CHS sector 3 (LBA 2) with INT 13h AH=03h (it goes to the overlay), reads it back with
/// AH=02h and exits with one of its bytes.
fn bios_disk() -> Machine {
    use hvsim::firmware::bios::{Bios, DriveKind};
    use hvsim_devices::disk_image::DiskImage;
    let mut a = CodeAssembler::new(16).unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.cld().unwrap();
    a.mov(di, 0x2000u32).unwrap();
    a.mov(cx, 512u32).unwrap();
    a.mov(al, 0xABu32).unwrap();
    a.rep().stosb().unwrap();
    for (ah_al, buf) in [(0x0301u32, 0x2000u32), (0x0201, 0x3000)] {
        a.mov(ax, ah_al).unwrap();
        a.mov(bx, buf).unwrap();
        a.mov(cx, 3u32).unwrap();
        a.mov(dx, 0x80u32).unwrap();
        a.int(0x13).unwrap();
    }
    a.mov(al, byte_ptr(0x3000 + 100)).unwrap();
    a.out(0xF4, al).unwrap();
    let mut disk = a.assemble(0x7C00).unwrap();
    disk.resize(510, 0);
    disk.extend_from_slice(&[0x55, 0xAA]);
    disk.resize(16 * 512, 0);
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    let mut bios = Bios::new().unwrap();
    bios.add_drive(DriveKind::HardDisk, DiskImage::from_bytes(disk).unwrap()).unwrap();
    m.install_bios(bios).unwrap();
    m.boot_bios().unwrap();
    m
}

/// The BIOS's state and the disk overlay are saved: a snapshot after the write restores
/// the written sector (in the overlay, not the base image) and the run ends the same.
#[test]
fn bios_disk_overlay() {
    let mut probe = bios_disk();
    probe.enable_trace_hash();
    let end = finish(&mut probe);
    assert_eq!(end.reason, format!("{:?}", StopReason::DebugExit(0xAB)), "{end:?}");
    let states = check_split(bios_disk, &[10, end.clock / 2, end.clock - 3]);
    let late = Machine::restore_snapshot(&states[2].0, false).unwrap().machine;
    let image = &late.bios().unwrap().drive(0x80).unwrap().image;
    assert_eq!(image.overlay_sectors(), 1);
    // CHS sector 3 of cylinder 0, head 0 is LBA 2.
    assert_eq!(image.read_sector(2).unwrap(), [0xAB; 512]);
    let early = Machine::restore_snapshot(&states[0].0, false).unwrap().machine;
    assert_eq!(early.bios().unwrap().drive(0x80).unwrap().image.overlay_sectors(), 0);
}

// ---- SMP --------------------------------------------------------------------------------

const AP_VECTOR: u8 = 0x09;
const TICKETS: u32 = 0x600;

/// Four vCPUs in quanta of 7 instructions: each AP adds 1 to a shared counter 300 times
/// with LOCK XADD and writes its ticket to COM1's scratch register; the BSP waits for all
/// of them and exits with the low byte of the total.
fn smp() -> Machine {
    let mut ap = CodeAssembler::new(16).unwrap();
    ap.xor(ax, ax).unwrap();
    ap.mov(ds, ax).unwrap();
    ap.mov(cx, 300u32).unwrap();
    let mut again = ap.create_label();
    ap.set_label(&mut again).unwrap();
    ap.mov(bx, 1u32).unwrap();
    ap.lock().xadd(word_ptr(TICKETS), bx).unwrap();
    ap.mov(dx, 0x3FFu32).unwrap();
    ap.mov(al, bl).unwrap();
    ap.out(dx, al).unwrap();
    ap.dec(cx).unwrap();
    ap.jnz(again).unwrap();
    ap.cli().unwrap();
    ap.hlt().unwrap();
    let ap = ap.assemble(u64::from(AP_VECTOR) << 12).unwrap();
    let mut bsp = CodeAssembler::new(32).unwrap();
    let mut spin = bsp.create_label();
    bsp.set_label(&mut spin).unwrap();
    bsp.pause().unwrap();
    bsp.movzx(eax, word_ptr(TICKETS)).unwrap();
    bsp.cmp(eax, 900u32).unwrap();
    bsp.jne(spin).unwrap();
    bsp.out(0xF4, al).unwrap();
    let bsp = bsp.assemble(0x1000).unwrap();
    let cfg = MachineConfig { cpus: 4, quantum: 7, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.load(u64::from(AP_VECTOR) << 12, &ap).unwrap();
    m.load(0x1000, &bsp).unwrap();
    m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
    for i in 1..4 {
        m.init_vcpu(i);
        m.startup_vcpu(i, AP_VECTOR);
    }
    m
}

/// SMP (SDM Vol. 3A §9.4 start-up, fixed-quantum interleaving): snapshots at points that
/// fall inside a quantum and on other vCPUs than the BSP restore to the same run.
#[test]
fn smp_guest() {
    let mut probe = smp();
    probe.enable_trace_hash();
    let end = finish(&mut probe);
    assert_eq!(end.reason, "DebugExit(132)", "900 & 0xFF: {end:?}");
    check_split(smp, &[3, 100, 1_001, 4_444, end.clock - 5]);
}

// ---- Nested SVM -------------------------------------------------------------------------

/// L1 (APM Vol. 2 §15.5 "VMRUN", §15.7.1 NRIP): runs L2 20 times, each time resuming it
/// after its VMMCALL (VMCB RIP := NRIP); L2 counts in RBX, writes the count to the POST
/// port 0x80 (not intercepted) and spins before each VMMCALL.
fn nested_svm() -> Machine {
    use svm_l1::*;
    let l1 = |a: Asm| -> Result<(), IcedError> {
        enable_svm(a)?;
        a.xor(r12d, r12d)?;
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.mov(rdx, qword_ptr(VMCB + u64::from(vmcb::NRIP)))?;
        a.mov(qword_ptr(VMCB + u64::from(vmcb::RIP)), rdx)?;
        a.inc(r12)?;
        a.cmp(r12, 20)?;
        a.jb(top)?;
        a.mov(eax, ebx)?;
        a.out(0xF4, al)?;
        a.hlt()
    };
    let l2 = |a: Asm| -> Result<(), IcedError> {
        let mut top = a.create_label();
        let mut spin = a.create_label();
        a.set_label(&mut top)?;
        a.inc(rbx)?;
        a.mov(eax, ebx)?;
        a.out(0x80, al)?;
        a.mov(ecx, 40)?;
        a.set_label(&mut spin)?;
        a.dec(ecx)?;
        a.jnz(spin)?;
        a.vmmcall()?;
        a.jmp(top)
    };
    let cfg = MachineConfig { vendor: Vendor::Amd, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.set_exception_catch(CATCH_ALL);
    m.load(L1, &asm(L1, l1)).unwrap();
    m.enter_mode(GuestMode::Long64, L1, L1_STACK).unwrap();
    m.load(L2, &asm(L2, l2)).unwrap();
    let mut img = VmcbImage::zeroed();
    save_world(&m, &mut img, L2);
    img.set_u64(vmcb::EFER, m.cpu.efer | svm_msr::EFER_SVME);
    img.set_u64(vmcb::RSP, L2_STACK);
    img.set_u64(vmcb::RFLAGS, 2);
    img.write(vmcb::GUEST_ASID, 4, 1);
    let vmrun_and_vmmcall = icpt::INTERCEPT_VMRUN.mask() | icpt::INTERCEPT_VMMCALL.mask();
    assert_eq!(icpt::INTERCEPT_VMRUN.word, icpt::INTERCEPT_VMMCALL.word);
    img.write(icpt::INTERCEPT_VMRUN.word, 4, u64::from(vmrun_and_vmmcall));
    img.set_u64(vmcb::MSRPM_BASE_PA, MSRPM);
    img.set_u64(vmcb::IOPM_BASE_PA, IOPM);
    m.load(VMCB, img.as_bytes()).unwrap();
    m
}

/// A snapshot taken while L2 runs (between VMRUN and #VMEXIT) restores the nested state
/// (the VMCB L1 gave VMRUN, the host state, the intercepts, GIF) and the run goes on as
/// before; so does one taken in L1 between two VMRUNs.
#[test]
fn nested_svm_guest() {
    let mut probe = nested_svm();
    probe.enable_trace_hash();
    let end = finish(&mut probe);
    assert_eq!(end.reason, "DebugExit(20)", "{end:?}");
    assert_eq!(probe.nested.svm.vmruns, 20);
    let points: Vec<u64> = (1..12).map(|k| end.clock * k / 12 + k).collect();
    let states = check_split(nested_svm, &points);
    assert!(states.iter().any(|(_, in_guest)| *in_guest), "no point fell inside L2");
    assert!(states.iter().any(|(_, in_guest)| !*in_guest), "no point fell inside L1");
}

// ---- Nested VMX -------------------------------------------------------------------------

/// L1 (SDM Vol. 3C ch. 26-28): VMLAUNCHes L2; its exit handler advances GUEST_RIP by
/// the exit's instruction length and VMRESUMEs, 15 times, then exits through
/// isa-debug-exit. L2 counts in RBX, writes to the POST port and spins before each
/// VMCALL (which exits unconditionally, SDM Vol. 3C §26.1.2).
fn nested_vmx() -> Machine {
    use vmx_l1::*;
    let host = |a: Asm| -> Result<(), IcedError> {
        let mut done = a.create_label();
        a.mov(eax, f::GUEST_RIP)?;
        a.vmread(rdx, rax)?;
        a.mov(eax, f::VM_EXIT_INSTRUCTION_LENGTH)?;
        a.vmread(rcx, rax)?;
        a.add(rdx, rcx)?;
        a.mov(eax, f::GUEST_RIP)?;
        a.vmwrite(rax, rdx)?;
        a.inc(r14)?;
        a.cmp(r14, 15)?;
        a.jae(done)?;
        a.vmresume()?;
        after_failed_entry(a)?;
        a.set_label(&mut done)?;
        a.mov(eax, r14d)?;
        a.out(0xF4, al)?;
        a.hlt()
    };
    let l2 = |a: Asm| -> Result<(), IcedError> {
        let mut top = a.create_label();
        let mut spin = a.create_label();
        a.set_label(&mut top)?;
        a.inc(rbx)?;
        a.mov(eax, ebx)?;
        a.out(0x80, al)?;
        a.mov(ecx, 40)?;
        a.set_label(&mut spin)?;
        a.dec(ecx)?;
        a.jnz(spin)?;
        a.vmcall()?;
        a.jmp(top)
    };
    setup_full(l1_launch, host, l2, |_| {})
}

/// A snapshot taken in VMX non-root operation restores the current VMCS (launched), the
/// VMXON region, non-root state and the host state the exit loads; the run goes on.
#[test]
fn nested_vmx_guest() {
    let mut probe = nested_vmx();
    probe.enable_trace_hash();
    let end = finish(&mut probe);
    assert_eq!(end.reason, "DebugExit(15)", "{end:?}");
    assert_eq!(probe.nested.vmx.entries, 15);
    let points: Vec<u64> = (1..10).map(|k| end.clock * k / 10 + k).collect();
    let states = check_split(nested_vmx, &points);
    assert!(states.iter().any(|(_, in_guest)| *in_guest), "no point fell inside L2");
    assert!(states.iter().any(|(_, in_guest)| !*in_guest), "no point fell inside L1");
}

// ---- Damaged files ------------------------------------------------------------------------

fn small_snapshot() -> Vec<u8> {
    let mut m = uniprocessor();
    m.enable_trace_hash();
    run_to(&mut m, 500);
    m.snapshot().unwrap()
}

fn restore_err(bytes: &[u8]) -> SnapshotError {
    match Machine::restore_snapshot(bytes, false) {
        Ok(_) => panic!("a damaged snapshot was accepted"),
        Err(e) => e,
    }
}

/// Each kind of damage has its own error, with a message that says what is wrong.
#[test]
fn damaged_snapshots_are_refused_with_clear_errors() {
    let good = small_snapshot();
    assert_eq!(good[..8], MAGIC);
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    let e = restore_err(&flipped);
    assert!(matches!(e, SnapshotError::Checksum { .. }), "{e}");
    assert!(e.to_string().contains("corrupted"), "{e}");
    let e = restore_err(&good[..good.len() - 100]);
    assert!(e.to_string().contains("truncated"), "{e}");
    let mut magic = good.clone();
    magic[..8].copy_from_slice(b"NOTASNAP");
    assert!(restore_err(&magic).to_string().contains("not an hvsim snapshot"));
    let mut version = good.clone();
    version[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let msg = restore_err(&version).to_string();
    assert!(
        msg.contains(&format!("version {}", FORMAT_VERSION + 1))
            && msg.contains(&format!("reads version {FORMAT_VERSION}")),
        "{msg}"
    );
    assert!(restore_err(&[]).to_string().contains("truncated"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random damage never panics: flipped bytes and cuts are refused; with the
    /// checksum recomputed over the damage (so that the decoder itself sees garbage),
    /// restoring returns an error or a machine, never a panic.
    #[test]
    fn random_corruption_never_panics(
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        cut in any::<prop::sample::Index>(),
    ) {
        let good = small_snapshot_cached();
        let mut bad = good.to_vec();
        let i = at.index(bad.len());
        bad[i] ^= xor;
        prop_assert!(Machine::restore_snapshot(&bad, false).is_err());
        let n = cut.index(good.len());
        prop_assert!(Machine::restore_snapshot(&good[..n], false).is_err());
        // Past the fixed fields, re-seal the damage with a valid CRC.
        if i >= 16 && i < bad.len() - 4 {
            let body = bad.len() - 4;
            let crc = crc32(&bad[..body]);
            bad[body..].copy_from_slice(&crc.to_le_bytes());
            let _ = Machine::restore_snapshot(&bad, false);
        }
    }
}

fn small_snapshot_cached() -> &'static [u8] {
    static SNAP: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SNAP.get_or_init(small_snapshot)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as the file format uses.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

// ---- Through the command line ---------------------------------------------------------

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hvsim-snap-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hvsim(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_hvsim")).args(args).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code().unwrap_or(-1), err)
}

fn hash_line(err: &str) -> String {
    err.lines().find(|l| l.contains("trace hash")).map(str::to_owned).unwrap_or_default()
}

/// `hvsim run --snapshot-at N --snapshot-file F` runs to the end with the same hash as a
/// plain run; `hvsim run --restore F` continues to the same hash; damaged files exit 2.
#[test]
fn cli_snapshot_restore_and_damaged_files() {
    let dir = temp_dir("cli");
    let img = dir.join("hello.img");
    let snap = dir.join("s.snap");
    let (status, _) = hvsim(&["example".as_ref(), "hello".as_ref(), "-o".as_ref(), img.as_ref()]);
    assert_eq!(status, 0);
    let (status, plain) = hvsim(&["run".as_ref(), img.as_ref(), "--trace-hash".as_ref()]);
    assert_eq!(status, 0, "{plain}");
    let whole = hash_line(&plain);
    assert!(whole.contains("trace hash "), "{plain}");
    let (status, with_snap) = hvsim(&[
        "run".as_ref(),
        img.as_ref(),
        "--trace-hash".as_ref(),
        "--snapshot-at".as_ref(),
        "400".as_ref(),
        "--snapshot-file".as_ref(),
        snap.as_ref(),
    ]);
    assert_eq!(status, 0, "{with_snap}");
    assert!(with_snap.contains("snapshot at 400 written"), "{with_snap}");
    assert_eq!(hash_line(&with_snap), whole);
    let restore = |f: &std::path::Path| {
        hvsim(&["run".as_ref(), "--restore".as_ref(), f.as_ref(), "--trace-hash".as_ref()])
    };
    let (status, restored) = restore(&snap);
    assert_eq!(status, 0, "{restored}");
    assert_eq!(hash_line(&restored), whole, "{restored}");
    assert_eq!(hash_line(&restore(&snap).1), whole, "restoring twice");

    let good = std::fs::read(&snap).unwrap();
    let damaged = |name: &str, bytes: &[u8], expect: &str| {
        let f = dir.join(name);
        std::fs::write(&f, bytes).unwrap();
        let (status, err) = restore(&f);
        assert_eq!(status, 2, "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
    };
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    damaged("flipped.snap", &flipped, "corrupted snapshot");
    damaged("truncated.snap", &good[..good.len() / 3], "truncated snapshot");
    let mut magic = good.clone();
    magic[0] = b'X';
    damaged("magic.snap", &magic, "not an hvsim snapshot");
    let mut version = good.clone();
    version[8..12].copy_from_slice(&99u32.to_le_bytes());
    damaged("version.snap", &version, "snapshot format version 99 is not supported");
    let (status, err) = restore(&dir.join("missing.snap"));
    assert_eq!(status, 2, "{err}");
    // The disk's base image is not in the snapshot, only its fingerprint: a changed
    // file is refused.
    let mut disk = std::fs::read(&img).unwrap();
    disk[100] ^= 0xFF;
    std::fs::write(&img, &disk).unwrap();
    let (status, err) = restore(&snap);
    assert_eq!(status, 2, "{err}");
    assert!(err.contains("changed since the snapshot was taken"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The trace hash records a software interrupt (INT n, SDM Vol. 2A "INT n/INTO/INT3/INT1")
/// with the exact retired count wherever a run is split: INT n starts its own decoded
/// block, as the port I/O instructions do, so a run cut (or snapshotted) in the middle
/// of the instructions before it counts the same.
#[test]
fn software_interrupt_counts_do_not_depend_on_where_a_run_is_cut() {
    let build = || {
        let mut a = CodeAssembler::new(32).unwrap();
        for _ in 0..8 {
            a.inc(ebx).unwrap();
        }
        a.int(0x30).unwrap();
        a.mov(al, 7u32).unwrap();
        a.out(0xF4, al).unwrap();
        let code = a.assemble(0x1000).unwrap();
        let mut h = CodeAssembler::new(32).unwrap();
        h.iretd().unwrap();
        let handler = h.assemble(0x1800).unwrap();
        let mut m = Machine::new(&MachineConfig::default()).unwrap();
        m.load(0x1000, &code).unwrap();
        m.load(0x1800, &handler).unwrap();
        m.load(u64::from(IDT) + 0x30 * 8, &[0x00, 0x18, 0x18, 0x00, 0x00, 0x8E, 0x00, 0x00])
            .unwrap();
        m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
        m.cpu.idtr = hvsim::cpu::regs::DescriptorTable { base: u64::from(IDT), limit: 0x7FF };
        m
    };
    let mut whole = build();
    whole.enable_trace_hash();
    let end = finish(&mut whole);
    assert_eq!(end.reason, "DebugExit(7)", "{end:?}");
    for cut in 1..9 {
        let mut m = build();
        m.enable_trace_hash();
        run_to(&mut m, cut);
        assert_eq!(finish(&mut m), end, "cut at {cut}");
    }
}
