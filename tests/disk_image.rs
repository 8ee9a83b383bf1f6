//! Disk images through the `hvsim` binary: without `--persist` a run never changes the
//! image file while the guest sees its own writes; with `--persist` the writes reach
//! the file; floppy-sized images (or `--floppy`) boot as drive 00h; bad images exit
//! with status 2 and one clear line.

use iced_x86::code_asm::*;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::process::{Command, Output};

fn hvsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hvsim"))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hvsim-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn hash(path: &PathBuf) -> u64 {
    let mut h = DefaultHasher::new();
    std::fs::read(path).unwrap().hash(&mut h);
    h.finish()
}

fn run(args: &[&str], img: &PathBuf) -> Output {
    hvsim().arg("run").arg(img).args(args).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const PATTERN: u8 = 0xA5;
const WROTE: u8 = 0x11;
const MISMATCH: u8 = 0x22;

/// A boot sector that fills 0000:1000 with PATTERN, writes it to CHS sector 2 (LBA 1)
/// with INT 13h AH=03h, reads LBA 1 back to 0000:2000 with AH=02h, compares, prints
/// "seen" with INT 10h and exits with WROTE (or MISMATCH).
fn writer_sector() -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    let mut bad = a.create_label();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.cld().unwrap();
    a.mov(di, 0x1000u32).unwrap();
    a.mov(cx, 512u32).unwrap();
    a.mov(al, PATTERN as u32).unwrap();
    a.rep().stosb().unwrap();
    a.mov(ax, 0x0301u32).unwrap();
    a.mov(cx, 0x0002u32).unwrap();
    a.mov(dh, 0u32).unwrap();
    a.mov(bx, 0x1000u32).unwrap();
    a.int(0x13).unwrap();
    a.jc(bad).unwrap();
    a.mov(ax, 0x0201u32).unwrap();
    a.mov(cx, 0x0002u32).unwrap();
    a.mov(bx, 0x2000u32).unwrap();
    a.int(0x13).unwrap();
    a.jc(bad).unwrap();
    a.mov(si, 0x1000u32).unwrap();
    a.mov(di, 0x2000u32).unwrap();
    a.mov(cx, 512u32).unwrap();
    a.repe().cmpsb().unwrap();
    a.jne(bad).unwrap();
    for c in *b"seen\r\n" {
        a.mov(ax, 0x0E00u32 | u32::from(c)).unwrap();
        a.int(0x10).unwrap();
    }
    a.mov(al, WROTE as u32).unwrap();
    a.out(0xF4, al).unwrap();
    a.set_label(&mut bad).unwrap();
    a.mov(al, MISMATCH as u32).unwrap();
    a.out(0xF4, al).unwrap();
    let mut s = a.assemble(0x7C00).unwrap();
    s.resize(510, 0);
    s.extend_from_slice(&[0x55, 0xAA]);
    s
}

fn image(name: &str, sectors: usize) -> PathBuf {
    let mut img = vec![0u8; sectors * 512];
    img[..512].copy_from_slice(&writer_sector());
    let path = temp(name);
    std::fs::write(&path, &img).unwrap();
    path
}

fn status_of(v: u8) -> i32 {
    (i32::from(v) << 1) | 1
}

#[test]
fn without_persist_the_image_is_byte_identical_and_the_guest_saw_its_write() {
    let img = image("cow.img", 16);
    let before = hash(&img);
    let bytes_before = std::fs::read(&img).unwrap();
    let out = run(&[], &img);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(status_of(WROTE)), "{stdout}\n{stderr}");
    assert_eq!(stdout, "seen\r\n");
    assert_eq!(hash(&img), before);
    assert_eq!(std::fs::read(&img).unwrap(), bytes_before);
}

#[test]
fn with_persist_the_write_reaches_the_file() {
    let img = image("persist.img", 16);
    let out = run(&["--persist"], &img);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(status_of(WROTE)), "{stdout}\n{stderr}");
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(bytes.len(), 16 * 512, "the size never changes");
    assert_eq!(&bytes[512..1024], &[PATTERN; 512][..]);
    assert_eq!(&bytes[1024..], &vec![0u8; 14 * 512][..], "nothing else was written");
}

/// A boot sector that exits with DL >> 4: status 1 for drive 00h, 17 for drive 80h.
fn drive_reporter(path: &PathBuf, size: usize) {
    let mut s = vec![0x88, 0xD0, 0xC0, 0xE8, 0x04, 0xE6, 0xF4]; // mov al,dl; shr al,4; out 0xF4,al
    s.resize(510, 0);
    s.extend_from_slice(&[0x55, 0xAA]);
    s.resize(size, 0);
    std::fs::write(path, &s).unwrap();
}

#[test]
fn floppy_sized_images_and_floppy_flag_boot_as_drive_0() {
    let fd = temp("fd.img");
    drive_reporter(&fd, 1_474_560);
    assert_eq!(run(&[], &fd).status.code(), Some(1), "a 1.44M image is a floppy");
    let hd = temp("hd.img");
    drive_reporter(&hd, 64 * 512);
    assert_eq!(run(&[], &hd).status.code(), Some(17), "other sizes boot as 80h");
    assert_eq!(run(&["--floppy"], &hd).status.code(), Some(1), "--floppy");
    let big = temp("big.img");
    drive_reporter(&big, 6000 * 512);
    let out = run(&["--floppy"], &big);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no floppy format"), "{stderr}");
}

#[test]
fn truncated_empty_and_bad_bios_images_exit_2_with_one_line() {
    let truncated = temp("truncated.img");
    let mut s = writer_sector();
    s.resize(700, 0);
    std::fs::write(&truncated, &s).unwrap();
    let empty = temp("empty.img");
    std::fs::write(&empty, b"").unwrap();
    let good = image("good.img", 4);
    let rom = temp("bad-bios.bin");
    std::fs::write(&rom, vec![0u8; 1000]).unwrap();
    for (path, args, want) in [
        (&truncated, vec![], "truncated image: 700 bytes is not a multiple of the 512-byte"),
        (&empty, vec![], "the image is empty"),
        (&good, vec!["--bios", rom.to_str().unwrap()], "multiple of 64 KiB"),
    ] {
        let out = run(&args, path);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

/// `--bios FILE`: a 128 KiB image is mapped ending at 4 GiB and (its last 128 KiB) at
/// 0xE0000-0xFFFFF; the vCPU starts at F000:FFF0 with CS base FFFF0000h (SDM Vol. 3A
/// §10.1.4), so its first instruction comes from FFFFFFF0h. This image's reset vector
/// jumps to F000:0100, in the low copy, which prints and exits.
#[test]
fn external_bios_starts_at_the_reset_vector_below_4g() {
    let mut rom = vec![0xF4u8; 0x2_0000];
    let code_at = 0x1_0100; // F000:0100 in the low copy (0xF0100) = image offset 0x10100
    let code = [
        0xB0, b'B', 0xBA, 0xF8, 0x03, 0xEE, // mov al,'B'; mov dx,0x3F8; out dx,al
        0xB0, 0x33, 0xE6, 0xF4, // mov al,0x33; out 0xF4,al
    ];
    rom[code_at..code_at + code.len()].copy_from_slice(&code);
    rom[0x1_FFF0..0x1_FFF5].copy_from_slice(&[0xEA, 0x00, 0x01, 0x00, 0xF0]);
    let path = temp("ext-bios.bin");
    std::fs::write(&path, &rom).unwrap();
    let img = image("ext.img", 4);
    let out = run(&["--bios", path.to_str().unwrap(), "--max-insns", "100"], &img);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(status_of(0x33)), "{stdout}\n{stderr}");
    assert_eq!(stdout, "B");
}
