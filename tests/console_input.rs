//! COM1 input from the host: `hvsim run` reads stdin on a thread and the machine takes the
//! bytes into the 16550A's receiver at its input polls. A boot sector echoes what it
//! receives until a newline, then exits through isa-debug-exit.

use iced_x86::code_asm::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn echo_boot_sector() -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    let mut poll = a.create_label();
    a.set_label(&mut poll).unwrap();
    a.mov(dx, 0x3FDu32).unwrap(); // LSR
    a.in_(al, dx).unwrap();
    a.test(al, 1u32).unwrap(); // data ready
    a.jz(poll).unwrap();
    a.mov(dx, 0x3F8u32).unwrap();
    a.in_(al, dx).unwrap(); // RBR
    a.out(dx, al).unwrap(); // THR: echo
    a.cmp(al, b'\n' as u32).unwrap();
    a.jne(poll).unwrap();
    a.mov(al, 0x21u32).unwrap();
    a.out(0xF4, al).unwrap();
    let mut code = a.assemble(0x7C00).unwrap();
    code.resize(512, 0);
    code[510] = 0x55;
    code[511] = 0xAA;
    code
}

#[test]
fn stdin_reaches_com1() {
    let dir = std::env::temp_dir().join(format!("hvsim-console-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("echo.img");
    let mut disk = echo_boot_sector();
    disk.resize(64 * 512, 0);
    std::fs::write(&img, disk).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hvsim"))
        .arg("run")
        .arg(&img)
        .args(["--max-insns", "200000000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello hvsim\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0x43), "{stdout}\n{stderr}");
    assert!(stdout.contains("hello hvsim"), "{stdout}");
}
