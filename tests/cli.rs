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
