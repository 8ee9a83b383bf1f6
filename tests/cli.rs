//! The `hvsim` binary: running the shipped example, and clear errors with exit status 2
//! for bad inputs.

use std::path::PathBuf;
use std::process::Command;

fn hvsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hvsim"))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hvsim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn example_boot_sector_prints_and_halts() {
    let img = temp("hello.img");
    let st = hvsim().args(["example", "hello", "-o"]).arg(&img).status().unwrap();
    assert!(st.success());
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(bytes.len(), 512);
    assert_eq!(&bytes[510..], &[0x55, 0xAA]);
    let out = hvsim().arg("run").arg(&img).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("Hello from hvsim!"), "{stdout}");
    assert!(stdout.contains("1 1 2 3 5 8 13 21 34 55"), "{stdout}");
    assert!(stderr.contains("halted with interrupts disabled"), "{stderr}");
}

#[test]
fn trace_insn_prints_one_line_per_instruction() {
    let img = temp("trace.img");
    hvsim().args(["example", "hello", "-o"]).arg(&img).status().unwrap();
    let out = hvsim()
        .arg("run")
        .arg(&img)
        .args(["--trace", "insn", "--max-insns", "5"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("0000:")).collect();
    assert_eq!(lines.len(), 6, "{stderr}"); // 5 trace lines + the stop report
    assert!(lines[0].contains("0000:0000000000007c00") && lines[0].contains("cli"), "{}", lines[0]);
    assert!(stderr.contains("instruction limit reached"), "{stderr}");
}

#[test]
fn missing_empty_and_unrecognised_images_exit_2() {
    let missing = temp("does-not-exist.img");
    let empty = temp("empty.img");
    std::fs::write(&empty, b"").unwrap();
    let junk = temp("junk.img");
    std::fs::write(&junk, vec![0x90u8; 1000]).unwrap();
    for (path, want) in
        [(&missing, "cannot read"), (&empty, "empty"), (&junk, "not a recognised image")]
    {
        let out = hvsim().arg("run").arg(path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn bad_flags_exit_2() {
    let img = temp("flags.img");
    hvsim().args(["example", "hello", "-o"]).arg(&img).status().unwrap();
    for args in [
        vec!["--mem", "12Q"],
        vec!["--mem", "4K"],
        vec!["--max-insns", "x"],
        vec!["--trace", "nope"],
    ] {
        let out = hvsim().arg("run").arg(&img).args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn debug_exit_status_follows_qemu() {
    // mov al, 0x10; out 0xF4, al  -> status (0x10 << 1) | 1 = 0x21.
    let mut sector = vec![0xB0, 0x10, 0xE6, 0xF4, 0xF4];
    sector.resize(510, 0);
    sector.extend_from_slice(&[0x55, 0xAA]);
    let img = temp("exit.img");
    std::fs::write(&img, &sector).unwrap();
    let out = hvsim().arg("run").arg(&img).output().unwrap();
    assert_eq!(out.status.code(), Some(0x21), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A boot sector that enables 32-bit paging, reads a page, remaps it without INVLPG,
/// reads it again and halts.
fn stale_tlb_boot_sector() -> Vec<u8> {
    use iced_x86::code_asm::*;
    let mut img = vec![0u8; 512];
    let mut a = CodeAssembler::new(16).unwrap();
    a.cli().unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.lgdt(ptr(0x7DD0u32)).unwrap();
    a.mov(eax, cr0).unwrap();
    a.or(eax, 1).unwrap();
    a.mov(cr0, eax).unwrap();
    a.jmp_far(0x08, 0x7D00).unwrap();
    let real = a.assemble(0x7C00).unwrap();
    let mut a = CodeAssembler::new(32).unwrap();
    a.mov(ax, 0x10).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(esp, 0x9000).unwrap();
    a.mov(dword_ptr(0x20000u32), 0x1111_1111u32).unwrap();
    a.mov(dword_ptr(0x21000u32), 0x2222_2222u32).unwrap();
    a.mov(dword_ptr(0x10000u32), 0x83u32).unwrap(); // PDE 0: 4 MiB identity page
    a.mov(dword_ptr(0x10004u32), 0x11003u32).unwrap(); // PDE 1 -> PT
    a.mov(dword_ptr(0x11000u32), 0x20003u32).unwrap(); // 0x400000 -> 0x20000
    a.mov(eax, 0x10u32).unwrap(); // CR4.PSE
    a.mov(cr4, eax).unwrap();
    a.mov(eax, 0x10000u32).unwrap();
    a.mov(cr3, eax).unwrap();
    a.mov(eax, cr0).unwrap();
    a.or(eax, 0x8000_0000u32 as i32).unwrap();
    a.mov(cr0, eax).unwrap();
    a.mov(ebx, dword_ptr(0x40_0000u32)).unwrap();
    a.mov(dword_ptr(0x11000u32), 0x21003u32).unwrap(); // remap, no INVLPG
    a.mov(ecx, dword_ptr(0x40_0000u32)).unwrap(); // at 0x7d52: stale
    a.hlt().unwrap();
    let prot = a.assemble(0x7D00).unwrap();
    img[..real.len()].copy_from_slice(&real);
    img[0x100..0x100 + prot.len()].copy_from_slice(&prot);
    // GDT descriptor at 0x7DD0, GDT at 0x7DE0: null, flat code32, flat data32.
    img[0x1D0..0x1D6].copy_from_slice(&[0x17, 0, 0xE0, 0x7D, 0, 0]);
    for (i, d) in [0u64, 0x00CF_9A00_0000_FFFF, 0x00CF_9200_0000_FFFF].iter().enumerate() {
        img[0x1E0 + 8 * i..0x1E8 + 8 * i].copy_from_slice(&d.to_le_bytes());
    }
    img[510] = 0x55;
    img[511] = 0xAA;
    img
}

#[test]
fn strict_tlb_and_stats_report_a_forgotten_invlpg() {
    // SDM Vol. 3A §4.10.4.2: after changing a PTE, software should INVLPG the page.
    let img = temp("stale.img");
    std::fs::write(&img, stale_tlb_boot_sector()).unwrap();
    let out = hvsim().arg("run").arg(&img).args(["--strict-tlb", "--stats"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("strict TLB: 1 stale translation use(s)"), "{stderr}");
    let line = stderr.lines().find(|l| l.contains("stale translation of linear 0x400000"));
    let line = line.unwrap_or_else(|| panic!("{stderr}"));
    for want in [
        "used entry 0x0000000000020023 at 0x11000 (-> 0x20000)",
        "tables now hold 0x0000000000021003 at 0x11000 (level 1, -> 0x21000)",
        "missing INVLPG 0x400000",
    ] {
        assert!(line.contains(want), "{want}: {line}");
    }
    assert!(line.starts_with("hvsim: rip 0x7d"), "{line}");
    assert!(stderr.contains("shadow MMU:"), "{stderr}");
    assert!(stderr.contains("mmu_unsync                   1"), "{stderr}");
    // Without the cache, the same guest halts the same way and --stats says so.
    let out = hvsim().arg("run").arg(&img).args(["--no-shadow-cache", "--stats"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("shadow MMU: off (--no-shadow-cache)"), "{stderr}");
    assert!(!stderr.contains("stale translation"), "{stderr}");
}
