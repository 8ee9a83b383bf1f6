//! The built-in BIOS: POST, the bootstrap, and every service's results and error paths,
//! driven by guest code assembled with iced-x86 `code_asm`. Service semantics follow
//! Ralf Brown's Interrupt List and the Phoenix EDD specification; the boot register
//! state follows SeaBIOS; E820 follows the ACPI specification ("INT 15H, E820H").

use hvsim::firmware::bios::{bda, Bios, DriveKind};
use hvsim::firmware::memory_map::e820_map;
use hvsim::{Machine, MachineConfig, StopReason};
use hvsim_devices::disk_image::DiskImage;
use iced_x86::code_asm::{CodeAssembler, IcedError};

/// Where the call helper puts its code.
const CALL_CODE: u64 = 0x1000;
/// A scratch buffer for results.
const BUF: u64 = 0x2000;
const CF: u64 = 1;
const ZF: u64 = 1 << 6;

fn boot_sector(code: &[u8]) -> Vec<u8> {
    assert!(code.len() <= 510, "boot sector code is {} bytes", code.len());
    let mut s = code.to_vec();
    s.resize(510, 0);
    s.extend_from_slice(&[0x55, 0xAA]);
    s
}

/// A disk image of `sectors` sectors: sector 0 = `boot`, sector n (n >= 1) filled with n.
fn disk(boot: &[u8], sectors: usize) -> Vec<u8> {
    let mut img = vec![0u8; sectors * 512];
    for n in 1..sectors {
        img[n * 512..(n + 1) * 512].fill(n as u8);
    }
    img[..boot.len()].copy_from_slice(boot);
    img
}

fn machine(drives: Vec<(DriveKind, Vec<u8>)>) -> Machine {
    let mut m = Machine::new(&MachineConfig::default()).expect("machine");
    let mut bios = Bios::new().expect("bios");
    for (kind, img) in drives {
        bios.add_drive(kind, DiskImage::from_bytes(img).expect("image")).expect("drive");
    }
    m.install_bios(bios).expect("install");
    m.boot_bios().expect("boot");
    m
}

/// A machine with a hard disk of `sectors` sectors whose boot sector halts.
fn hd_machine(sectors: usize) -> Machine {
    machine(vec![(DriveKind::HardDisk, disk(&boot_sector(&[0xFA, 0xF4]), sectors))])
}

/// Registers for [`call`]: AX, BX, CX, DX, SI, DI, BP, ES, DS.
#[derive(Default, Clone, Copy)]
struct R {
    eax: u32,
    ebx: u32,
    ecx: u32,
    edx: u32,
    si: u16,
    di: u16,
    bp: u16,
    es: u16,
    ds: u16,
}

/// Runs `INT vector; HLT` at 0000:1000 with `r`; returns the machine's registers and
/// FLAGS afterwards.
fn call(m: &mut Machine, vector: u8, r: R) -> ([u64; 8], u64) {
    m.load(CALL_CODE, &[0xCD, vector, 0xF4]).unwrap();
    let c = &mut m.cpu;
    c.gpr[0] = u64::from(r.eax);
    c.gpr[3] = u64::from(r.ebx);
    c.gpr[1] = u64::from(r.ecx);
    c.gpr[2] = u64::from(r.edx);
    c.gpr[6] = u64::from(r.si);
    c.gpr[7] = u64::from(r.di);
    c.gpr[5] = u64::from(r.bp);
    c.gpr[4] = 0x7000;
    c.load_seg_real(hvsim::cpu::regs::SegReg::Es, r.es);
    c.load_seg_real(hvsim::cpu::regs::SegReg::Ds, r.ds);
    c.load_seg_real(hvsim::cpu::regs::SegReg::Ss, 0);
    c.load_seg_real(hvsim::cpu::regs::SegReg::Cs, 0);
    c.rip = CALL_CODE;
    c.halted = false;
    c.update_mode();
    let rep = m.run(Some(2_000_000));
    assert!(matches!(rep.reason, StopReason::Halted { .. }), "{rep}");
    assert_eq!(m.cpu.rip, CALL_CODE + 3, "returned to the caller");
    assert_eq!(m.cpu.gpr[4], 0x7000, "the stack is balanced");
    let mut g = [0u64; 8];
    g.copy_from_slice(&m.cpu.gpr[..8]);
    (g, m.cpu.flags.get())
}

fn ah_of(g: &[u64; 8]) -> u8 {
    (g[0] >> 8) as u8
}

fn read(m: &mut Machine, gpa: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    m.phys_read(hvsim_mmu::Gpa(gpa), &mut b);
    b
}

fn exit(a: &mut CodeAssembler, value: u8) -> Result<(), IcedError> {
    use iced_x86::code_asm::*;
    a.mov(al, value as u32)?;
    a.out(0xF4, al)?;
    Ok(())
}

/// The integration: a boot sector loads two more sectors with INT 13h AH=02h (CHS) and
/// jumps to them; the second stage checks the EDD extensions, reads a sector with
/// AH=42h, collects the E820 map, prints with INT 10h teletype, and exits through
/// isa-debug-exit with the number of E820 entries.
#[test]
fn boot_sector_loads_stages_reads_lba_gets_e820_prints_and_exits() {
    use iced_x86::code_asm::*;
    const STAGE2: u64 = 0x7E00;
    const MSG: u64 = STAGE2 + 0x300;
    const DAP: u32 = 0x0600;
    const LBA_BUF: u32 = 0x8400;
    const E820_BUF: u32 = 0x3000;
    const FAIL: u8 = 0xEE;
    // Boot sector.
    let mut a = CodeAssembler::new(16).unwrap();
    let mut fail = a.create_label();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(sp, 0x7C00u32).unwrap();
    a.mov(byte_ptr(0x500), dl).unwrap(); // the boot drive
    a.mov(ax, 0x0202u32).unwrap(); // read 2 sectors
    a.mov(cx, 0x0002u32).unwrap(); // cylinder 0, sector 2
    a.mov(dh, 0u32).unwrap();
    a.mov(bx, STAGE2 as u32).unwrap();
    a.int(0x13).unwrap();
    a.jc(fail).unwrap();
    a.cmp(al, 2).unwrap();
    a.jne(fail).unwrap();
    a.jmp(STAGE2).unwrap();
    a.set_label(&mut fail).unwrap();
    exit(&mut a, FAIL).unwrap();
    let boot = a.assemble(0x7C00).unwrap();

    // Stage 2 (sectors 1-2 of the disk, at 0x7E00).
    let mut a = CodeAssembler::new(16).unwrap();
    let mut fail = a.create_label();
    let mut next = a.create_label();
    let mut print = a.create_label();
    let mut done = a.create_label();
    // EDD present?
    a.mov(ah, 0x41u32).unwrap();
    a.mov(bx, 0x55AAu32).unwrap();
    a.mov(dl, byte_ptr(0x500)).unwrap();
    a.int(0x13).unwrap();
    a.jc(fail).unwrap();
    a.cmp(bx, 0xAA55u32).unwrap();
    a.jne(fail).unwrap();
    // Disk address packet: 16 bytes, 1 block, to 0000:LBA_BUF, from LBA 5.
    a.mov(word_ptr(DAP), 0x0010u32).unwrap();
    a.mov(word_ptr(DAP + 2), 1u32).unwrap();
    a.mov(word_ptr(DAP + 4), LBA_BUF).unwrap();
    a.mov(word_ptr(DAP + 6), 0u32).unwrap();
    a.mov(dword_ptr(DAP + 8), 5u32).unwrap();
    a.mov(dword_ptr(DAP + 12), 0u32).unwrap();
    a.mov(si, DAP).unwrap();
    a.mov(ah, 0x42u32).unwrap();
    a.mov(dl, byte_ptr(0x500)).unwrap();
    a.int(0x13).unwrap();
    a.jc(fail).unwrap();
    a.cmp(byte_ptr(LBA_BUF + 100), 5).unwrap();
    a.jne(fail).unwrap();
    // E820: entries of 24 bytes at ES:DI = 0:E820_BUF; BP counts them.
    a.xor(ebx, ebx).unwrap();
    a.xor(bp, bp).unwrap();
    a.mov(di, E820_BUF).unwrap();
    a.set_label(&mut next).unwrap();
    a.mov(eax, 0xE820u32).unwrap();
    a.mov(edx, 0x534D_4150u32).unwrap();
    a.mov(ecx, 24u32).unwrap();
    a.int(0x15).unwrap();
    a.jc(fail).unwrap();
    a.cmp(eax, 0x534D_4150u32).unwrap();
    a.jne(fail).unwrap();
    a.inc(bp).unwrap();
    a.add(di, 24).unwrap();
    a.test(ebx, ebx).unwrap();
    a.jnz(next).unwrap();
    // Print the message with INT 10h AH=0Eh.
    a.mov(si, MSG as u32).unwrap();
    a.set_label(&mut print).unwrap();
    a.lodsb().unwrap();
    a.test(al, al).unwrap();
    a.jz(done).unwrap();
    a.mov(ah, 0x0Eu32).unwrap();
    a.mov(bx, 0x0007u32).unwrap();
    a.int(0x10).unwrap();
    a.jmp(print).unwrap();
    a.set_label(&mut done).unwrap();
    a.mov(ax, bp).unwrap();
    a.out(0xF4, al).unwrap();
    a.set_label(&mut fail).unwrap();
    exit(&mut a, FAIL).unwrap();
    let mut stage2 = a.assemble(STAGE2).unwrap();
    assert!(stage2.len() <= (MSG - STAGE2) as usize);
    stage2.resize((MSG - STAGE2) as usize, 0);
    stage2.extend_from_slice(b"stage 2 via INT 13h, E820 ok\r\n\0");

    let mut img = disk(&boot_sector(&boot), 8);
    img[512..512 + stage2.len()].copy_from_slice(&stage2);
    let mut m = machine(vec![(DriveKind::HardDisk, img)]);
    let rep = m.run(Some(1_000_000));
    let entries = e820_map(MachineConfig::default().mem_size);
    assert_eq!(rep.reason, StopReason::DebugExit(entries.len() as u32), "{rep}");
    let out = String::from_utf8_lossy(m.serial_output()).into_owned();
    assert_eq!(out, "stage 2 via INT 13h, E820 ok\r\n");
    // The map the guest collected is the machine's E820 map, 24-byte entries with the
    // "enabled" extended attribute.
    let got = read(&mut m, u64::from(E820_BUF), 24 * entries.len());
    for (e, b) in entries.iter().zip(got.chunks(24)) {
        assert_eq!(u64::from_le_bytes(b[0..8].try_into().unwrap()), e.base);
        assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), e.len);
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), e.kind as u32);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1);
    }
}

/// A boot sector that uses the BIOS, then leaves it behind: the stage loaded with
/// INT 13h reads the E820 map, prints with INT 10h, then builds page tables and a GDT,
/// enters long mode (SDM Vol. 3A §10.8.5 "Initializing IA-32e Mode") and prints to COM1
/// from 64-bit code before exiting through isa-debug-exit.
#[test]
fn boot_sector_uses_the_bios_then_enters_long_mode() {
    use iced_x86::code_asm::*;
    const STAGE2: u64 = 0x7E00;
    const LONG: u64 = 0x8100;
    const LONG_MSG: u64 = 0x8180;
    // Boot sector: load 2 sectors at 0x7E00 with CHS, jump there.
    let mut a = CodeAssembler::new(16).unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.mov(ax, 0x0202u32).unwrap();
    a.mov(cx, 0x0002u32).unwrap();
    a.mov(dh, 0u32).unwrap();
    a.mov(bx, STAGE2 as u32).unwrap();
    a.int(0x13).unwrap();
    a.jmp(STAGE2).unwrap();
    let boot = a.assemble(0x7C00).unwrap();

    let mut a = CodeAssembler::new(16).unwrap();
    // One E820 entry and one character through the BIOS.
    a.xor(ebx, ebx).unwrap();
    a.mov(di, 0x3000u32).unwrap();
    a.mov(eax, 0xE820u32).unwrap();
    a.mov(edx, 0x534D_4150u32).unwrap();
    a.mov(ecx, 20u32).unwrap();
    a.int(0x15).unwrap();
    a.mov(ax, 0x0E00u32 | u32::from(b'>')).unwrap();
    a.int(0x10).unwrap();
    a.cli().unwrap();
    // Page tables at 0x10000: PML4 -> PDPT -> PD with one 2 MiB page at 0.
    a.mov(ax, 0x1000u32).unwrap();
    a.mov(es, ax).unwrap();
    a.xor(di, di).unwrap();
    a.mov(cx, 0x1800u32).unwrap();
    a.xor(ax, ax).unwrap();
    a.rep().stosw().unwrap();
    a.mov(ax, 0x1000u32).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(dword_ptr(0x0000), 0x11003u32).unwrap();
    a.mov(dword_ptr(0x1000), 0x12003u32).unwrap();
    a.mov(dword_ptr(0x2000), 0x83u32).unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    // GDT at 0x800: null, 64-bit code, data; GDTR at 0x820.
    a.mov(dword_ptr(0x800), 0u32).unwrap();
    a.mov(dword_ptr(0x804), 0u32).unwrap();
    a.mov(dword_ptr(0x808), 0x0000_FFFFu32).unwrap();
    a.mov(dword_ptr(0x80C), 0x00AF_9A00u32).unwrap();
    a.mov(dword_ptr(0x810), 0x0000_FFFFu32).unwrap();
    a.mov(dword_ptr(0x814), 0x00CF_9200u32).unwrap();
    a.mov(word_ptr(0x820), 23u32).unwrap();
    a.mov(dword_ptr(0x822), 0x800u32).unwrap();
    a.lgdt(ptr(0x820)).unwrap();
    a.mov(eax, cr4).unwrap();
    a.or(eax, 0x20).unwrap(); // PAE
    a.mov(cr4, eax).unwrap();
    a.mov(eax, 0x10000u32).unwrap();
    a.mov(cr3, eax).unwrap();
    a.mov(ecx, 0xC000_0080u32).unwrap(); // IA32_EFER
    a.rdmsr().unwrap();
    a.or(eax, 0x100).unwrap(); // LME
    a.wrmsr().unwrap();
    a.mov(eax, cr0).unwrap();
    a.or(eax, 0x8000_0001u32 as i32).unwrap(); // PG, PE
    a.mov(cr0, eax).unwrap();
    // JMP FAR 0008:LONG.
    a.db(&[0xEA, LONG as u8, (LONG >> 8) as u8, 0x08, 0x00]).unwrap();
    let mut stage2 = a.assemble(STAGE2).unwrap();
    assert!(stage2.len() <= (LONG - STAGE2) as usize, "{}", stage2.len());
    stage2.resize((LONG - STAGE2) as usize, 0);

    let mut a = CodeAssembler::new(64).unwrap();
    let mut next = a.create_label();
    let mut done = a.create_label();
    a.mov(dx, 0x3F8u32).unwrap();
    a.mov(rsi, LONG_MSG).unwrap();
    a.set_label(&mut next).unwrap();
    a.lodsb().unwrap();
    a.test(al, al).unwrap();
    a.jz(done).unwrap();
    a.out(dx, al).unwrap();
    a.jmp(next).unwrap();
    a.set_label(&mut done).unwrap();
    a.mov(al, 0x64u32).unwrap();
    a.out(0xF4, al).unwrap();
    let long = a.assemble(LONG).unwrap();
    assert!(long.len() <= (LONG_MSG - LONG) as usize);
    stage2.extend_from_slice(&long);
    stage2.resize((LONG_MSG - STAGE2) as usize, 0);
    stage2.extend_from_slice(b"long mode\n\0");

    let mut img = disk(&boot_sector(&boot), 4);
    img[512..512 + stage2.len()].copy_from_slice(&stage2);
    let mut m = machine(vec![(DriveKind::HardDisk, img)]);
    let rep = m.run(Some(1_000_000));
    assert_eq!(rep.reason, StopReason::DebugExit(0x64), "{rep}");
    assert_eq!(rep.code_bits, 64);
    assert_eq!(m.serial_output(), b">long mode\n");
    assert_eq!(read(&mut m, 0x3000 + 8, 8), 0x9FC00u64.to_le_bytes(), "the E820 entry");
}

/// The boot sector is entered as SeaBIOS enters it: CS:IP = 0000:7C00, AX = AA55h,
/// DL = the boot drive, DS = ES = 0, IF = 1.
#[test]
fn boot_entry_register_state_for_hard_disk_and_floppy() {
    for (kind, size, drive) in
        [(DriveKind::HardDisk, 4 * 512, 0x80u64), (DriveKind::Floppy, 1_474_560, 0x00)]
    {
        let m = machine(vec![(kind, disk(&boot_sector(&[0xF4]), size / 512))]);
        assert_eq!((m.cpu.seg[1].selector, m.cpu.rip), (0, 0x7C00));
        assert_eq!(m.cpu.gpr[0], 0xAA55);
        assert_eq!(m.cpu.gpr[2], drive);
        assert_eq!(m.cpu.gpr[4], 0x7C00);
        assert_eq!(m.cpu.seg[0].selector | m.cpu.seg[2].selector | m.cpu.seg[3].selector, 0);
        assert_ne!(m.cpu.flags.get() & (1 << 9), 0, "IF = 1");
        assert_eq!(m.cpu.mode, hvsim::CpuMode::Real);
    }
}

/// The reset vector F000:FFF0 runs the ROM's own POST, which boots the disk.
#[test]
fn reset_vector_runs_post_and_boots() {
    use iced_x86::code_asm::*;
    let mut a = CodeAssembler::new(16).unwrap();
    a.mov(al, b'R' as u32).unwrap();
    a.mov(ah, 0x0Eu32).unwrap();
    a.int(0x10).unwrap();
    exit(&mut a, 0x42).unwrap();
    let boot = a.assemble(0x7C00).unwrap();
    let mut m = machine(vec![(DriveKind::HardDisk, disk(&boot_sector(&boot), 2))]);
    m.load(0x7C00, &[0; 512]).unwrap(); // forget the first boot
    m.reset_to_bios();
    assert_eq!((m.cpu.seg[1].base, m.cpu.rip), (0xF0000, 0xFFF0));
    let rep = m.run(Some(100_000));
    assert_eq!(rep.reason, StopReason::DebugExit(0x42), "{rep}");
    assert_eq!(m.serial_output(), b"R");
}

#[test]
fn no_bootable_disk_says_so_and_halts() {
    let mut m = machine(vec![(DriveKind::HardDisk, vec![0u8; 1024])]);
    let rep = m.run(Some(1000));
    assert!(matches!(rep.reason, StopReason::Halted { interrupts_enabled: false }), "{rep}");
    assert_eq!(m.serial_output(), b"No bootable device.\r\n");
    assert_eq!(rep.cs, 0xF000);
}

/// POST's IVT and BDA (Ralf Brown's "BIOS data area").
#[test]
fn post_fills_ivt_and_bda() {
    let mut m = machine(vec![
        (DriveKind::Floppy, disk(&boot_sector(&[0xF4]), 2880)),
        (DriveKind::HardDisk, disk(&[], 8)),
    ]);
    let w = |m: &mut Machine, a: u64| u16::from_le_bytes(read(m, a, 2).try_into().unwrap());
    assert_eq!(w(&mut m, bda::COM_PORTS), 0x3F8, "COM1 answers its scratch register");
    assert_eq!(w(&mut m, bda::EBDA_SEGMENT), 0x9FC0);
    assert_eq!(w(&mut m, bda::MEMORY_KB), 639);
    let eq = w(&mut m, bda::EQUIPMENT);
    assert_eq!(eq & 1, 1, "a floppy drive");
    assert_eq!((eq >> 6) & 3, 0, "one floppy drive");
    assert_eq!((eq >> 9) & 7, 2, "two serial ports (COM1 and COM2)");
    assert_eq!(read(&mut m, bda::HD_COUNT, 1), [1]);
    assert_eq!(read(&mut m, bda::VIDEO_MODE, 1), [3]);
    assert_eq!(w(&mut m, bda::VIDEO_COLUMNS), 80);
    assert_eq!(w(&mut m, bda::KBD_HEAD), w(&mut m, bda::KBD_TAIL));
    assert_eq!(w(&mut m, 0x9FC00), 1, "the EBDA's size in KiB");
    for v in [0x10u64, 0x13, 0x15, 0x16, 0x19, 0x1A, 0x08, 0x70] {
        assert_eq!(w(&mut m, 4 * v + 2), 0xF000, "vector {v:#x} points into the ROM");
    }
    let (g, _) = call(&mut m, 0x12, R::default());
    assert_eq!(g[0] as u16, 639);
    let (g, _) = call(&mut m, 0x11, R::default());
    assert_eq!(g[0] as u16, eq);
}

/// INT 13h AH=02h/03h/04h: parameter and range errors, partial transfers, the status
/// of the last operation (AH=01h), and write protection.
#[test]
fn int13_chs_errors_and_status() {
    let mut m = hd_machine(64); // 1 cylinder of 16 x 63 would hold 1008: the disk ends first
    let rd = |count: u32, c: u32, d: u32| R {
        eax: 0x0200 | count,
        ebx: BUF as u32,
        ecx: c,
        edx: d,
        ..R::default()
    };
    // No drive 81h.
    let (g, f) = call(&mut m, 0x13, rd(1, 1, 0x81));
    assert_eq!((ah_of(&g), f & CF), (0x01, CF));
    // Count 0 and count 129: invalid.
    let (g, f) = call(&mut m, 0x13, rd(0, 1, 0x80));
    assert_eq!((ah_of(&g), f & CF), (0x01, CF));
    let (g, f) = call(&mut m, 0x13, rd(129, 1, 0x80));
    assert_eq!((ah_of(&g), f & CF), (0x01, CF));
    // AH=01h returns that status.
    let (g, f) = call(&mut m, 0x13, R { eax: 0x0100, edx: 0x80, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x01, CF));
    // Sector 0 and head 16 do not exist.
    let (g, _) = call(&mut m, 0x13, rd(1, 0, 0x80));
    assert_eq!(ah_of(&g), 0x04);
    let (g, _) = call(&mut m, 0x13, rd(1, 1, 0x1080));
    assert_eq!(ah_of(&g), 0x04);
    // Sectors 62-63 exist (head 0, sectors 63 and head 1 sector 1), 64 does not: a
    // read of 3 from LBA 62 moves 2 and fails with "sector not found".
    let (g, f) = call(&mut m, 0x13, rd(3, 63, 0x80));
    assert_eq!((ah_of(&g), g[0] as u8, f & CF), (0x04, 2, CF));
    assert_eq!(read(&mut m, BUF, 1024), [[62u8; 512], [63u8; 512]].concat());
    // A good read; then AH=01h says 0.
    let (g, f) = call(&mut m, 0x13, rd(1, 2, 0x80));
    assert_eq!((ah_of(&g), g[0] as u8, f & CF), (0, 1, 0));
    assert_eq!(read(&mut m, BUF, 512), vec![1u8; 512]);
    let (g, f) = call(&mut m, 0x13, R { eax: 0x0100, edx: 0x80, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0, 0));
    // Verify checks the range without moving data.
    let (g, f) = call(&mut m, 0x13, R { eax: 0x0404, ecx: 1, edx: 0x80, ..R::default() });
    assert_eq!((ah_of(&g), g[0] as u8, f & CF), (0, 4, 0));
}

/// A write lands in the copy-on-write overlay: the guest reads it back, the image's
/// backing is untouched; a write-protected drive refuses with AH=03h.
#[test]
fn int13_write_reads_back_and_write_protect_refuses() {
    let mut m = hd_machine(16);
    m.load(BUF, &[0xAB; 512]).unwrap();
    let (g, f) =
        call(&mut m, 0x13, R { eax: 0x0301, ebx: BUF as u32, ecx: 3, edx: 0x80, ..R::default() });
    assert_eq!((ah_of(&g), g[0] as u8, f & CF), (0, 1, 0));
    m.load(BUF, &[0; 512]).unwrap();
    let (g, _) =
        call(&mut m, 0x13, R { eax: 0x0201, ebx: BUF as u32, ecx: 3, edx: 0x80, ..R::default() });
    assert_eq!(ah_of(&g), 0);
    assert_eq!(read(&mut m, BUF, 512), vec![0xAB; 512]);
    let d = &m.bios().unwrap().drive(0x80).unwrap().image;
    assert_eq!(d.overlay_sectors(), 1);

    let mut img = DiskImage::from_bytes(disk(&boot_sector(&[0xF4]), 4)).unwrap();
    img.set_write_protected(true);
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    let mut bios = Bios::new().unwrap();
    bios.add_drive(DriveKind::HardDisk, img).unwrap();
    m.install_bios(bios).unwrap();
    m.boot_bios().unwrap();
    let (g, f) =
        call(&mut m, 0x13, R { eax: 0x0301, ebx: BUF as u32, ecx: 2, edx: 0x80, ..R::default() });
    assert_eq!((ah_of(&g), g[0] as u8, f & CF), (0x03, 0, CF));
    assert_eq!(read(&mut m, bda::HD_LAST_STATUS, 1), [0x03]);
}

/// INT 13h AH=08h and AH=15h for a 1.44M floppy and a hard disk.
#[test]
fn int13_drive_parameters_and_type() {
    let mut m = machine(vec![
        (DriveKind::Floppy, disk(&boot_sector(&[0xF4]), 2880)),
        (DriveKind::HardDisk, disk(&[], 3000)),
    ]);
    let (g, f) = call(&mut m, 0x13, R { eax: 0x0800, edx: 0x00, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0, 0));
    assert_eq!(g[1] as u16, (79 << 8) | 18, "CH = last cylinder, CL = sectors");
    assert_eq!(g[2] as u16, 0x0101, "DH = last head, DL = one floppy");
    assert_eq!(g[3] as u16, 4, "BL = 1.44M drive type");
    assert_eq!((m.cpu.seg[0].selector, g[7] as u16), (0xF000, 0xEFC7), "ES:DI = the DPT");
    let (g, _) = call(&mut m, 0x13, R { eax: 0x0800, edx: 0x80, ..R::default() });
    // 3000 sectors / (16 x 63) -> 3 cylinders.
    assert_eq!(g[1] as u16, (2 << 8) | 63);
    assert_eq!(g[2] as u16, (15 << 8) | 1);
    let (g, f) = call(&mut m, 0x13, R { eax: 0x1500, edx: 0x80, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x03, 0));
    assert_eq!(((g[1] as u32 & 0xFFFF) << 16) | (g[2] as u32 & 0xFFFF), 3000);
    let (g, f) = call(&mut m, 0x13, R { eax: 0x1500, edx: 0x00, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x01, 0));
    // The floppy's CHS reaches its last sector (cylinder 79, head 1, sector 18).
    let (g, f) = call(
        &mut m,
        0x13,
        R { eax: 0x0201, ebx: BUF as u32, ecx: (79 << 8) | 18, edx: 0x0100, ..R::default() },
    );
    assert_eq!((ah_of(&g), f & CF), (0, 0));
    assert_eq!(read(&mut m, BUF, 1), [(2879 % 256) as u8]);
}

/// The EDD calls: 41h, 42h/43h beyond the end (block count updated), bad packets, 48h
/// with EDD 1.x and 3.0 buffers; floppies have no extensions.
#[test]
fn int13_lba_extensions() {
    let mut m = machine(vec![
        (DriveKind::Floppy, disk(&[], 2880)),
        (DriveKind::HardDisk, disk(&boot_sector(&[0xF4]), 10)),
    ]);
    let (g, f) = call(&mut m, 0x13, R { eax: 0x4100, ebx: 0x55AA, edx: 0x80, ..R::default() });
    assert_eq!((ah_of(&g), g[3] as u16, g[1] as u16, f & CF), (0x30, 0xAA55, 0b101, 0));
    let (g, f) = call(&mut m, 0x13, R { eax: 0x4100, ebx: 0x1234, edx: 0x80, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x01, CF));
    let (g, f) = call(&mut m, 0x13, R { eax: 0x4100, ebx: 0x55AA, edx: 0x00, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x01, CF), "no EDD for floppies");

    let dap = |m: &mut Machine, size: u8, count: u16, lba: u64| {
        let mut p = vec![size, 0];
        p.extend_from_slice(&count.to_le_bytes());
        p.extend_from_slice(&(BUF as u16).to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend_from_slice(&lba.to_le_bytes());
        m.load(0x600, &p).unwrap();
    };
    // 4 blocks from LBA 8 of a 10-sector disk: 2 move, count becomes 2, AH = 04h.
    dap(&mut m, 0x10, 4, 8);
    let (g, f) = call(&mut m, 0x13, R { eax: 0x4200, edx: 0x80, si: 0x600, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x04, CF));
    assert_eq!(read(&mut m, 0x602, 2), [2, 0]);
    assert_eq!(read(&mut m, BUF, 1024), [[8u8; 512], [9u8; 512]].concat());
    // A packet shorter than 10h is invalid.
    dap(&mut m, 0x08, 1, 0);
    let (g, f) = call(&mut m, 0x13, R { eax: 0x4200, edx: 0x80, si: 0x600, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x01, CF));
    // 43h writes, 42h reads it back.
    m.load(BUF, &[0x5C; 512]).unwrap();
    dap(&mut m, 0x10, 1, 7);
    let (g, f) = call(&mut m, 0x13, R { eax: 0x4300, edx: 0x80, si: 0x600, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0, 0));
    m.load(BUF, &[0; 512]).unwrap();
    let (g, _) = call(&mut m, 0x13, R { eax: 0x4200, edx: 0x80, si: 0x600, ..R::default() });
    assert_eq!(ah_of(&g), 0);
    assert_eq!(read(&mut m, BUF, 512), vec![0x5C; 512]);
    // 47h seek beyond the end.
    dap(&mut m, 0x10, 1, 10);
    let (g, f) = call(&mut m, 0x13, R { eax: 0x4700, edx: 0x80, si: 0x600, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x04, CF));

    // 48h: too small a buffer, then EDD 1.x, then EDD 3.0.
    m.load(BUF, &0x18u16.to_le_bytes()).unwrap();
    let (g, f) = call(&mut m, 0x13, R { eax: 0x4800, edx: 0x80, si: BUF as u16, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x01, CF));
    m.load(BUF, &[0xFF; 0x42]).unwrap();
    m.load(BUF, &0x1Au16.to_le_bytes()).unwrap();
    let (g, f) = call(&mut m, 0x13, R { eax: 0x4800, edx: 0x80, si: BUF as u16, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0, 0));
    let b = read(&mut m, BUF, 0x42);
    assert_eq!(u16::from_le_bytes([b[0], b[1]]), 0x1A);
    assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 16, "heads");
    assert_eq!(u32::from_le_bytes(b[12..16].try_into().unwrap()), 63, "sectors per track");
    assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 10, "total sectors");
    assert_eq!(u16::from_le_bytes([b[24], b[25]]), 512);
    assert_eq!(b[0x1A], 0xFF, "nothing written past the EDD 1.x size");
    m.load(BUF, &0x42u16.to_le_bytes()).unwrap();
    call(&mut m, 0x13, R { eax: 0x4800, edx: 0x80, si: BUF as u16, ..R::default() });
    let b = read(&mut m, BUF, 0x42);
    assert_eq!(u16::from_le_bytes([b[0], b[1]]), 0x42);
    assert_eq!(u16::from_le_bytes([b[0x1E], b[0x1F]]), 0xBEDD);
    assert_eq!(&b[0x24..0x28], b"ISA ");
    assert_eq!(b[0x1E..0x42].iter().fold(0u8, |s, x| s.wrapping_add(*x)), 0, "checksum");
}

/// INT 15h E820 errors: wrong signature, a buffer under 20 bytes, a continuation value
/// past the end; a 20-byte buffer gets 20 bytes.
#[test]
fn int15_e820_errors_and_entry_sizes() {
    let mut m = hd_machine(4);
    let e820 = |b: u32, c: u32, d: u32| R {
        eax: 0xE820,
        ebx: b,
        ecx: c,
        edx: d,
        di: BUF as u16,
        ..R::default()
    };
    for (b, c, d) in [(0, 20, 0x1234_5678), (0, 19, 0x534D_4150), (99, 24, 0x534D_4150)] {
        let (g, f) = call(&mut m, 0x15, e820(b, c, d));
        assert_eq!((ah_of(&g), f & CF), (0x86, CF), "ebx {b} ecx {c} edx {d:#x}");
    }
    m.load(BUF, &[0xEE; 24]).unwrap();
    let (g, f) = call(&mut m, 0x15, e820(0, 20, 0x534D_4150));
    assert_eq!((g[0] as u32, g[1] as u32, g[3] as u32, f & CF), (0x534D_4150, 20, 1, 0));
    let b = read(&mut m, BUF, 24);
    assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 0x9FC00);
    assert_eq!(&b[20..24], &[0xEE; 4], "20 bytes only");
}

/// INT 15h E801h, 88h, the A20 functions, C0h, C1h, and an unknown function.
#[test]
fn int15_memory_sizes_a20_and_tables() {
    let mut m = hd_machine(4); // 16 MiB of RAM
    let (g, f) = call(&mut m, 0x15, R { eax: 0xE801, ..R::default() });
    assert_eq!(
        (g[0] as u16, g[1] as u16, g[3] as u16, g[2] as u16, f & CF),
        (15360, 15360, 0, 0, 0)
    );
    let (g, f) = call(&mut m, 0x15, R { eax: 0x8800, ..R::default() });
    assert_eq!((g[0] as u16, f & CF), (15360, 0));
    for (ax, want_al) in [(0x2400u32, None), (0x2402, Some(0)), (0x2401, None), (0x2402, Some(1))] {
        let (g, f) = call(&mut m, 0x15, R { eax: ax, ..R::default() });
        assert_eq!((ah_of(&g), f & CF), (0, 0), "{ax:#x}");
        if let Some(al) = want_al {
            assert_eq!(g[0] as u8, al, "{ax:#x}");
        }
    }
    assert!(m.bios().unwrap().a20_enabled());
    let (g, _) = call(&mut m, 0x15, R { eax: 0x2403, ..R::default() });
    assert_eq!(g[3] as u16, 3);
    let (g, f) = call(&mut m, 0x15, R { eax: 0xC000, ..R::default() });
    assert_eq!((ah_of(&g), f & CF, m.cpu.seg[0].selector, g[3] as u16), (0, 0, 0xF000, 0xE6F5));
    assert_eq!(read(&mut m, 0xFE6F5, 3), [8, 0, 0xFC]);
    let (_, f) = call(&mut m, 0x15, R { eax: 0xC100, ..R::default() });
    assert_eq!((f & CF, m.cpu.seg[0].selector), (0, 0x9FC0));
    let (g, f) = call(&mut m, 0x15, R { eax: 0x5300, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x86, CF), "APM: not supported");
}

/// INT 15h AH=86h waits CX:DX microseconds on the instruction clock.
#[test]
fn int15_wait_runs_on_the_instruction_clock() {
    let mut m = hd_machine(4);
    let before = m.cpu.insn_count;
    let (g, f) = call(&mut m, 0x15, R { eax: 0x8600, ecx: 0, edx: 200, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0, 0));
    let spent = m.cpu.insn_count - before;
    let want = 200 * hvsim::firmware::bios::INSNS_PER_SECOND / 1_000_000;
    assert!((want..want + 100).contains(&spent), "{spent} instructions for 200 us");
}

/// INT 16h: keystrokes from console input; AH=01h peeks, AH=00h takes; AH=00h with no
/// key waits (the run is still in the BIOS) until input arrives.
#[test]
fn int16_reads_console_input_and_waits_for_it() {
    let mut m = hd_machine(4);
    m.push_console_input(b"a\n");
    let (g, f) = call(&mut m, 0x16, R { eax: 0x0100, ..R::default() });
    assert_eq!((g[0] as u16, f & ZF), (0x1E61, 0));
    let (g, _) = call(&mut m, 0x16, R { eax: 0x0000, ..R::default() });
    assert_eq!(g[0] as u16, 0x1E61);
    let (g, _) = call(&mut m, 0x16, R { eax: 0x1000, ..R::default() });
    assert_eq!(g[0] as u16, 0x1C0D, "LF is Enter");
    let (_, f) = call(&mut m, 0x16, R { eax: 0x0100, ..R::default() });
    assert_eq!(f & ZF, ZF, "no key");
    // More keys than the 15-slot BDA ring holds wait in the BIOS, in order.
    let many: Vec<u8> = (b'a'..=b'z').collect();
    m.push_console_input(&many);
    for &k in &many {
        let (g, _) = call(&mut m, 0x16, R::default());
        assert_eq!(g[0] as u8, k);
    }
    // Waiting.
    m.load(CALL_CODE, &[0xCD, 0x16, 0xF4]).unwrap();
    m.cpu.gpr[0] = 0;
    m.cpu.rip = CALL_CODE;
    m.cpu.halted = false;
    let rep = m.run(Some(10_000));
    assert_eq!(rep.reason, StopReason::InsnLimit);
    assert_eq!(rep.cs, 0xF000, "waiting in the ROM");
    m.push_console_input(b"x");
    let rep = m.run(Some(10_000));
    assert!(matches!(rep.reason, StopReason::Halted { .. }), "{rep}");
    assert_eq!(m.cpu.gpr[0] as u16, 0x2D78);
}

/// INT 1Ah: the clocks start at 2025-01-01 00:00:00; setting the tick count.
#[test]
fn int1a_ticks_and_rtc_from_virtual_time() {
    let mut m = hd_machine(4);
    let (g, f) = call(&mut m, 0x1A, R { eax: 0x0400, ..R::default() });
    assert_eq!((g[1] as u16, g[2] as u16, f & CF), (0x2025, 0x0101, 0));
    let (g, _) = call(&mut m, 0x1A, R { eax: 0x0200, ..R::default() });
    assert_eq!((g[1] as u16, g[2] as u16 >> 8), (0, 0));
    let (g, _) = call(&mut m, 0x1A, R { eax: 0x0000, ..R::default() });
    assert_eq!((g[1] as u16, g[2] as u16), (0, 0), "no tick yet after a few instructions");
    call(&mut m, 0x1A, R { eax: 0x0100, ecx: 0x0001, edx: 0x0002, ..R::default() });
    let (g, _) = call(&mut m, 0x1A, R { eax: 0x0000, ..R::default() });
    assert_eq!((g[1] as u16, g[2] as u16), (1, 2));
    assert_eq!(read(&mut m, bda::TIMER_TICKS, 4), [2, 0, 1, 0]);
    // Set the time to 12:34:56, read it back.
    call(&mut m, 0x1A, R { eax: 0x0300, ecx: 0x1234, edx: 0x5600, ..R::default() });
    let (g, _) = call(&mut m, 0x1A, R { eax: 0x0200, ..R::default() });
    assert_eq!((g[1] as u16, g[2] as u16 >> 8), (0x1234, 0x56));
    let (g, f) = call(&mut m, 0x1A, R { eax: 0xB101, ..R::default() });
    assert_eq!((ah_of(&g), f & CF), (0x86, CF), "no PCI BIOS");
}

/// INT 10h: teletype to the console with cursor tracking, the mode queries, write
/// string, EGA info, display combination, and no VBE.
#[test]
fn int10_teletype_cursor_and_queries() {
    let mut m = hd_machine(4);
    for ch in b"ab\r\ncd" {
        call(&mut m, 0x10, R { eax: 0x0E00 | u32::from(*ch), ..R::default() });
    }
    assert_eq!(m.serial_output(), b"ab\r\ncd");
    let (g, _) = call(&mut m, 0x10, R { eax: 0x0300, ..R::default() });
    assert_eq!((g[2] as u16, g[1] as u16), (0x0102, 0x0607), "row 1, column 2; shape");
    call(&mut m, 0x10, R { eax: 0x0200, edx: 0x0510, ..R::default() });
    let (g, _) = call(&mut m, 0x10, R { eax: 0x0300, ..R::default() });
    assert_eq!(g[2] as u16, 0x0510);
    let (g, _) = call(&mut m, 0x10, R { eax: 0x0F00, ..R::default() });
    assert_eq!((g[0] as u16, (g[3] >> 8) as u8), (0x5003, 0));
    // Write string "Hi!" at row 2 col 0 without moving the cursor.
    m.load(BUF, b"Hi!").unwrap();
    call(&mut m, 0x10, R { eax: 0x1300, ecx: 3, edx: 0x0200, bp: BUF as u16, ..R::default() });
    assert!(m.serial_output().ends_with(b"Hi!"));
    let (g, _) = call(&mut m, 0x10, R { eax: 0x0300, ..R::default() });
    assert_eq!(g[2] as u16, 0x0510, "mode 0: the cursor stays");
    let (g, _) = call(&mut m, 0x10, R { eax: 0x1200, ebx: 0x10, ..R::default() });
    assert_eq!((g[3] as u16, g[1] as u16), (0x0003, 0x0009));
    let (g, _) = call(&mut m, 0x10, R { eax: 0x1A00, ..R::default() });
    assert_eq!((g[0] as u8, g[3] as u8), (0x1A, 0x08));
    let (g, _) = call(&mut m, 0x10, R { eax: 0x4F00, ..R::default() });
    assert_eq!(g[0] as u16, 0x014F);
    // Mode 3 again homes the cursor.
    call(&mut m, 0x10, R { eax: 0x0003, ..R::default() });
    let (g, _) = call(&mut m, 0x10, R { eax: 0x0300, ..R::default() });
    assert_eq!(g[2] as u16, 0);
}

/// Services hvsim does not emulate stop the run and say which.
#[test]
fn unemulated_services_are_reported() {
    for (vector, ax, what) in [
        (0x10u8, 0x0013u32, "graphics mode 13h"),
        (0x14, 0x0000, "INT 14h (serial services)"),
        (0x16, 0x0900, "INT 16h AH=09h"),
    ] {
        let mut m = hd_machine(4);
        m.load(CALL_CODE, &[0xCD, vector, 0xF4]).unwrap();
        m.cpu.gpr[0] = u64::from(ax);
        m.cpu.rip = CALL_CODE;
        let rep = m.run(Some(10_000));
        match &rep.reason {
            StopReason::Unsupported { what: w } => assert!(w.contains(what), "{w}"),
            _ => panic!("{rep}"),
        }
    }
}

/// An OUT to the BIOS call port from outside the ROM is an ordinary write to an
/// unclaimed port: nothing happens.
#[test]
fn call_port_is_ignored_outside_the_rom() {
    use iced_x86::code_asm::*;
    let mut m = hd_machine(4);
    let mut a = CodeAssembler::new(16).unwrap();
    a.mov(ax, 0x0210u32).unwrap();
    a.mov(dx, 0x0EB0u32).unwrap();
    a.out(dx, ax).unwrap();
    a.hlt().unwrap();
    m.load(CALL_CODE, &a.assemble(CALL_CODE).unwrap()).unwrap();
    m.cpu.rip = CALL_CODE;
    let sp0 = m.cpu.gpr[4];
    let rep = m.run(Some(100));
    assert!(matches!(rep.reason, StopReason::Halted { .. }), "{rep}");
    assert_eq!((m.cpu.gpr[0] as u16, m.cpu.gpr[4]), (0x0210, sp0));
}

/// The IRQ 0 stub refreshes the BDA tick count, chains to the user tick vector 1Ch
/// (IBM PC/AT BIOS: INT 08h calls INT 1Ch) and returns to the interrupted code.
#[test]
fn irq0_stub_chains_to_int_1ch_and_returns() {
    let mut m = hd_machine(4);
    // INT 1Ch handler at 0000:0600: INC BYTE [0x700]; IRET.
    m.load(0x600, &[0xFE, 0x06, 0x00, 0x07, 0xCF]).unwrap();
    m.load(4 * 0x1C, &[0x00, 0x06, 0x00, 0x00]).unwrap();
    m.load(0x700, &[0]).unwrap();
    // STI; NOP; NOP; HLT at 0000:1000.
    m.load(CALL_CODE, &[0xFB, 0x90, 0x90, 0xF4]).unwrap();
    m.cpu.rip = CALL_CODE;
    m.cpu.gpr[4] = 0x7000;
    m.cpu.flags.set(2);
    m.inject_interrupt(0x08);
    let rep = m.run(Some(10_000));
    assert!(matches!(rep.reason, StopReason::Halted { interrupts_enabled: true }), "{rep}");
    assert_eq!(read(&mut m, 0x700, 1), [1], "INT 1Ch ran once");
    assert_eq!((m.cpu.rip, m.cpu.gpr[4]), (CALL_CODE + 4, 0x7000));
}

mod chs_property {
    use super::*;
    use proptest::prelude::*;

    /// A 1.44M floppy whose sector n starts with n (little-endian dword).
    fn numbered_floppy() -> Vec<u8> {
        let mut img = vec![0u8; 2880 * 512];
        for n in 0..2880usize {
            img[n * 512..n * 512 + 4].copy_from_slice(&(n as u32).to_le_bytes());
            img[n * 512 + 4..(n + 1) * 512].fill(n as u8 ^ 0x5A);
        }
        img[510] = 0x55;
        img[511] = 0xAA;
        img
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// INT 13h AH=02h on a 1.44M floppy (80 cylinders, 2 heads, 18 sectors): a
        /// CHS address inside the geometry reads LBA (c * 2 + h) * 18 + s - 1 and the
        /// sectors after it (crossing tracks), up to the end of the disk; outside the
        /// geometry it fails with AH = 04h and moves nothing.
        #[test]
        fn chs_reads_match_the_image(c in 0u32..82, h in 0u32..3, s in 0u32..20, n in 1u32..6) {
            let img = numbered_floppy();
            let mut m = machine(vec![(DriveKind::Floppy, img.clone())]);
            m.load(BUF, &vec![0xEE; 6 * 512]).unwrap();
            let cx = ((c & 0xFF) << 8) | ((c >> 2) & 0xC0) | s;
            let (g, f) = call(&mut m, 0x13, R {
                eax: 0x0200 | n, ebx: BUF as u32, ecx: cx, edx: h << 8, ..R::default()
            });
            let got = read(&mut m, BUF, 6 * 512);
            if c < 80 && h < 2 && (1..=18).contains(&s) {
                let lba = ((c * 2 + h) * 18 + s - 1) as usize;
                let moved = n.min(2880 - lba as u32) as usize;
                prop_assert_eq!(g[0] as u8, moved as u8);
                prop_assert_eq!(f & CF != 0, moved < n as usize);
                prop_assert_eq!(&got[..moved * 512], &img[lba * 512..(lba + moved) * 512]);
            } else {
                prop_assert_eq!((ah_of(&g), g[0] as u8, f & CF), (0x04, 0, CF));
                prop_assert!(got.iter().all(|&b| b == 0xEE));
            }
        }
    }
}

/// An external BIOS image: mapped at the top of 4 GiB and below 1 MiB, the vCPU at the
/// reset vector with CS base FFFF0000h (SDM Vol. 3A §10.1.4 "First Instruction
/// Executed"); bad sizes are refused.
#[test]
fn external_bios_mapping_and_reset_state() {
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    assert!(m.load_external_bios(&[0u8; 1000]).is_err());
    let mut rom = vec![0u8; 0x4_0000];
    rom[0x3_FFF0] = 0xEA;
    rom[0x2_0000] = 0x11; // the first byte of the low alias (the last 128 KiB)
    m.load_external_bios(&rom).unwrap();
    assert_eq!(read(&mut m, 0xFFFF_FFF0, 1), [0xEA]);
    assert_eq!(read(&mut m, 0xFFFF0, 1), [0xEA]);
    assert_eq!(read(&mut m, 0xE0000, 1), [0x11]);
    assert_eq!(read(&mut m, 0xFFFC_0000 + 0x2_0000, 1), [0x11]);
    let cs = m.cpu.seg[1];
    assert_eq!((cs.selector, cs.base, m.cpu.rip), (0xF000, 0xFFFF_0000, 0xFFF0));
    assert!(m.bios().is_none());
}

/// INT 19h from the guest reloads and re-enters the boot sector without a new POST
/// (memory outside the boot sector survives).
#[test]
fn int19_reboots_into_the_boot_sector() {
    use iced_x86::code_asm::*;
    let mut a = CodeAssembler::new(16).unwrap();
    let mut again = a.create_label();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.inc(byte_ptr(0x600)).unwrap();
    a.cmp(byte_ptr(0x600), 3).unwrap();
    a.jb(again).unwrap();
    a.mov(al, byte_ptr(0x600)).unwrap();
    a.out(0xF4, al).unwrap();
    a.set_label(&mut again).unwrap();
    a.int(0x19).unwrap();
    let boot = a.assemble(0x7C00).unwrap();
    let mut m = machine(vec![(DriveKind::HardDisk, disk(&boot_sector(&boot), 2))]);
    m.load(0x600, &[0]).unwrap();
    let rep = m.run(Some(10_000));
    assert_eq!(rep.reason, StopReason::DebugExit(3), "{rep}");
}

/// A boot sector that echoes console input with INT 16h AH=00h and INT 10h AH=0Eh
/// until Enter.
#[test]
fn boot_sector_echoes_console_input() {
    use iced_x86::code_asm::*;
    let mut a = CodeAssembler::new(16).unwrap();
    let mut next = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut next).unwrap();
    a.mov(ah, 0u32).unwrap();
    a.int(0x16).unwrap();
    a.cmp(al, 0x0D).unwrap();
    a.je(done).unwrap();
    a.mov(ah, 0x0Eu32).unwrap();
    a.int(0x10).unwrap();
    a.jmp(next).unwrap();
    a.set_label(&mut done).unwrap();
    a.out(0xF4, al).unwrap();
    let boot = a.assemble(0x7C00).unwrap();
    let mut m = machine(vec![(DriveKind::HardDisk, disk(&boot_sector(&boot), 2))]);
    m.push_console_input(b"hello, bios");
    let rep = m.run(Some(100_000));
    assert_eq!(rep.reason, StopReason::InsnLimit, "waiting for Enter: {rep}");
    m.push_console_input(b"!\n");
    let rep = m.run(Some(100_000));
    assert_eq!(rep.reason, StopReason::DebugExit(0x0D), "{rep}");
    assert_eq!(m.serial_output(), b"hello, bios!");
}
