//! Determinism: the trace hash of a run (events, port I/O, retired-instruction counts)
//! is the same for runs that behave the same, whether the run is made in one call or in
//! many, and differs when the guest's observable behaviour differs.

use hvsim::{GuestMode, Machine, MachineConfig};
use iced_x86::code_asm::*;
use std::process::Command;

/// A 32-bit guest: writes `text` to COM1, takes a #BP through its IDT, reads the UART's
/// line status, then exits through isa-debug-exit.
fn guest(text: &[u8]) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    // IDT at 0x3000 with one interrupt gate for vector 3 to the IRETD at HANDLER.
    a.mov(dword_ptr(0x3000 + 3 * 8), HANDLER as u32 | (0x18 << 16)).unwrap();
    a.mov(dword_ptr(0x3000 + 3 * 8 + 4), (HANDLER as u32 & 0xFFFF_0000) | 0x8E00).unwrap();
    a.mov(word_ptr(0x2000), 0x7FFu32).unwrap();
    a.mov(dword_ptr(0x2002), 0x3000u32).unwrap();
    a.lidt(ptr(0x2000)).unwrap();
    a.mov(dx, 0x3F8u32).unwrap();
    for &b in text {
        a.mov(al, u32::from(b)).unwrap();
        a.out(dx, al).unwrap();
    }
    a.int3().unwrap();
    a.mov(dx, 0x3FDu32).unwrap();
    a.in_(al, dx).unwrap();
    a.mov(al, 0u32).unwrap();
    a.out(0xF4, al).unwrap();
    a.hlt().unwrap();
    a.assemble(0x1000).unwrap()
}

/// Where the #BP handler (a lone IRETD) sits.
const HANDLER: u64 = 0x1800;

fn run(text: &[u8], chunks: &[u64]) -> (u64, String) {
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.enable_trace_hash();
    m.load(0x1000, &guest(text)).unwrap();
    m.load(HANDLER, &[0xCF]).unwrap(); // IRETD
    m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
    let mut last = None;
    for &c in chunks {
        let r = m.run(Some(c));
        let done = r.reason != hvsim::StopReason::InsnLimit;
        last = Some(r);
        if done {
            break;
        }
    }
    let last = last.unwrap();
    (m.trace_hash().unwrap(), format!("{:?}", last.reason))
}

#[test]
fn same_run_same_hash_in_one_call_or_many() {
    let (one, why) = run(b"hello", &[10_000]);
    assert!(why.contains("DebugExit"), "{why}");
    assert_eq!(run(b"hello", &[10_000]).0, one);
    // The same run cut into pieces at arbitrary instruction counts.
    assert_eq!(run(b"hello", &[1, 2, 3, 5, 8, 13, 10_000]).0, one);
}

#[test]
fn different_behaviour_different_hash() {
    let (a, _) = run(b"hello", &[10_000]);
    let (b, _) = run(b"hellp", &[10_000]);
    let (c, _) = run(b"hello!", &[10_000]);
    assert_ne!(a, b);
    assert_ne!(a, c);
}

#[test]
fn the_binary_prints_the_same_hash_twice() {
    let dir = std::env::temp_dir().join(format!("hvsim-det-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("hello.img");
    let hvsim = env!("CARGO_BIN_EXE_hvsim");
    assert!(Command::new(hvsim)
        .args(["example", "hello", "-o"])
        .arg(&img)
        .status()
        .unwrap()
        .success());
    let hash = || {
        let out = Command::new(hvsim).arg("run").arg(&img).arg("--trace-hash").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        err.lines().find(|l| l.contains("trace hash")).map(str::to_owned).unwrap_or(err)
    };
    let first = hash();
    assert!(first.contains("trace hash "), "{first}");
    assert_eq!(first, hash());
}
