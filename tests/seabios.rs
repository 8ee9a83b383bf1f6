//! SeaBIOS (Debian's `seabios` package) as an external BIOS: it runs its POST on hvsim's
//! PC (i440FX PAM shadowing, fw_cfg, CMOS, PCI enumeration, the ACPI PM timer, PS/2,
//! the PIIX3 IDE controller), logs to QEMU's debug console at port 0x402, and boots the
//! same disk image the built-in BIOS boots: a boot sector that loads a sector through
//! INT 13h, prints to COM1 and to the debug console, and exits through isa-debug-exit.
//!
//! The ROM images come from the system: outside CI a missing file skips the test with a
//! note; in CI (`CI` set, `.ci/run` installs the package) a missing file fails it.

use hvsim::firmware::bios::{Bios, DriveKind};
use hvsim::{Machine, MachineConfig, StopReason};
use hvsim_devices::disk_image::DiskImage;
use iced_x86::code_asm::*;
use std::path::Path;

/// Debian's 128 KiB SeaBIOS for QEMU's `pc`.
const SEABIOS: &str = "/usr/share/seabios/bios.bin";
/// The 256 KiB build.
const SEABIOS_256K: &str = "/usr/share/seabios/bios-256k.bin";
/// The isa-debug-exit value of a successful boot.
const BOOTED: u32 = 0x31;
/// The value of a failed INT 13h read.
const FAILED: u32 = 0xEE;
/// What the boot sector prints to COM1.
const COM1_TEXT: &str = "boot sector: sector 1 read through INT 13h\n";
/// What it prints to the debug console.
const DEBUGCON_TEXT: &str = "boot sector on debugcon\n";
/// Guest RAM (as `hvsim run`'s default).
const RAM: u64 = 32 << 20;
/// Enough instructions for SeaBIOS's POST and the boot (it needs about 8 million).
const MAX_INSNS: u64 = 60_000_000;

/// The ROM at `path`, or `None` (with a note) when it is absent outside CI.
fn rom(path: &str) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if std::env::var_os("CI").is_none() && !Path::new(path).exists() => {
            eprintln!("note: skipping: {path} is absent ({e}); `apt-get install seabios`");
            None
        }
        Err(e) => panic!("{path}: {e} (CI installs the seabios package)"),
    }
}

/// Emits code printing the NUL-terminated string at DS:`msg` to port `port`.
fn print(a: &mut CodeAssembler, msg: u32, port: u32) {
    let mut next = a.create_label();
    let mut done = a.create_label();
    a.mov(si, msg).unwrap();
    a.mov(dx, port).unwrap();
    a.set_label(&mut next).unwrap();
    a.lodsb().unwrap();
    a.test(al, al).unwrap();
    a.jz(done).unwrap();
    a.out(dx, al).unwrap();
    a.jmp(next).unwrap();
    a.set_label(&mut done).unwrap();
}

/// The disk: a boot sector that reads sector 1 (CHS 0/0/2, filled with 0x01) to 0x7E00
/// with INT 13h AH=02h from the boot drive in DL, checks it, prints, and exits; 16
/// sectors in all.
fn boot_disk() -> Vec<u8> {
    const COM1_MSG: u32 = 0x7D00;
    const DBG_MSG: u32 = 0x7D80;
    let mut a = CodeAssembler::new(16).unwrap();
    let mut fail = a.create_label();
    a.cli().unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(sp, 0x7C00u32).unwrap();
    a.cld().unwrap();
    a.mov(ax, 0x0201u32).unwrap();
    a.mov(cx, 0x0002u32).unwrap();
    a.mov(dh, 0u32).unwrap();
    a.mov(bx, 0x7E00u32).unwrap();
    a.int(0x13).unwrap();
    a.jc(fail).unwrap();
    a.cmp(byte_ptr(0x7E00u32 + 100), 1).unwrap();
    a.jne(fail).unwrap();
    print(&mut a, COM1_MSG, 0x3F8);
    print(&mut a, DBG_MSG, 0x402);
    a.mov(al, BOOTED).unwrap();
    a.out(0xF4, al).unwrap();
    a.set_label(&mut fail).unwrap();
    a.mov(al, FAILED).unwrap();
    a.out(0xF4, al).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(0x7C00).unwrap();
    let mut img = vec![0u8; 16 * 512];
    for n in 1..16 {
        img[n * 512..(n + 1) * 512].fill(n as u8);
    }
    img[..code.len()].copy_from_slice(&code);
    let com1 = (COM1_MSG - 0x7C00) as usize;
    img[com1..com1 + COM1_TEXT.len()].copy_from_slice(COM1_TEXT.as_bytes());
    let dbg = (DBG_MSG - 0x7C00) as usize;
    img[dbg..dbg + DEBUGCON_TEXT.len()].copy_from_slice(DEBUGCON_TEXT.as_bytes());
    img[510..512].copy_from_slice(&[0x55, 0xAA]);
    img
}

fn config() -> MachineConfig {
    MachineConfig { mem_size: RAM, ..MachineConfig::default() }
}

/// Boots the disk through SeaBIOS image `rom` and checks the boot and SeaBIOS's log.
fn boot_with(rom: &[u8]) -> Machine {
    let mut m = Machine::new(&config()).unwrap();
    m.load_external_bios(rom).unwrap();
    m.attach_ide_disk(DiskImage::from_bytes(boot_disk()).unwrap());
    let rep = m.run(Some(MAX_INSNS));
    let log = String::from_utf8_lossy(m.debugcon_output()).into_owned();
    assert_eq!(rep.reason, StopReason::DebugExit(BOOTED), "{rep}\nSeaBIOS log:\n{log}");
    for line in ["SeaBIOS (version ", "ata0-0: hvsim HARDDISK", "Booting from Hard Disk..."] {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
    assert!(log.ends_with(DEBUGCON_TEXT), "the boot sector's debugcon line comes last:\n{log}");
    assert_eq!(String::from_utf8_lossy(m.serial_output()), COM1_TEXT);
    m
}

/// The built-in BIOS boots the disk: the reference the SeaBIOS runs must match.
#[test]
fn builtin_bios_boots_the_disk() {
    let mut m = Machine::new(&config()).unwrap();
    let mut bios = Bios::new().unwrap();
    bios.add_drive(DriveKind::HardDisk, DiskImage::from_bytes(boot_disk()).unwrap()).unwrap();
    m.install_bios(bios).unwrap();
    m.boot_bios().unwrap();
    let rep = m.run(Some(1_000_000));
    assert_eq!(rep.reason, StopReason::DebugExit(BOOTED), "{rep}");
    assert_eq!(String::from_utf8_lossy(m.serial_output()), COM1_TEXT);
    assert_eq!(String::from_utf8_lossy(m.debugcon_output()), DEBUGCON_TEXT);
}

/// SeaBIOS's 128 KiB image boots the same disk from the IDE primary master, and leaves
/// its shadowed copy at 0xF0000 write-protected through PAM0 (a write does not stick).
#[test]
fn seabios_boots_the_disk_from_ide() {
    let Some(rom) = rom(SEABIOS) else { return };
    let mut m = boot_with(&rom);
    // The reset vector's far jump is in the F segment SeaBIOS shadowed; PAM0 = 10h
    // (DRAM read-only) drops a CPU write to it.
    let mut b = [0u8; 1];
    m.phys_read(hvsim_mmu::Gpa(0xFFFF0), &mut b);
    assert_eq!(b, [0xEA]);
    m.phys_write(hvsim_mmu::Gpa(0xFFFF0), &[0x90]);
    m.phys_read(hvsim_mmu::Gpa(0xFFFF0), &mut b);
    assert_eq!(b, [0xEA], "the shadow copy is write-protected");
}

/// QEMU's `-boot menu=on`: SeaBIOS offers its boot menu ("Press ESC for boot menu."),
/// waits the time fw_cfg's `etc/boot-menu-wait` gives on the virtual clock, and with no
/// key pressed boots the same disk.
#[test]
fn seabios_boot_menu_then_boots_the_disk() {
    let Some(rom) = rom(SEABIOS) else { return };
    let mut m = Machine::new(&config()).unwrap();
    m.load_external_bios(&rom).unwrap();
    m.enable_boot_menu(Some(500)).unwrap();
    m.attach_ide_disk(DiskImage::from_bytes(boot_disk()).unwrap());
    let rep = m.run(Some(MAX_INSNS));
    let log = String::from_utf8_lossy(m.debugcon_output()).into_owned();
    assert_eq!(rep.reason, StopReason::DebugExit(BOOTED), "{rep}\nSeaBIOS log:\n{log}");
    let menu = log.find("Press ESC for boot menu.").unwrap_or_else(|| panic!("no menu:\n{log}"));
    let boot = log.find("Booting from Hard Disk...").unwrap_or_else(|| panic!("no boot:\n{log}"));
    assert!(menu < boot, "the menu comes before the boot:\n{log}");
    assert!(m.now_ns() >= 500_000_000, "SeaBIOS waited {} ns for a key", m.now_ns());
}

/// The 256 KiB build boots too (its last 128 KiB are the low alias).
#[test]
fn seabios_256k_boots_the_disk_from_ide() {
    let Some(rom) = rom(SEABIOS_256K) else { return };
    boot_with(&rom);
}
