//! Record and replay of console input: a run whose COM1 input came from the host at
//! whatever moments the host delivered it is recorded (`--record`), and the replay
//! (`--replay`) feeds each byte at the input poll that took it, reproducing the run and
//! its trace hash exactly. The guest is a boot sector that echoes COM1 input until a
//! newline and exits through isa-debug-exit.

use hvsim::snapshot::replay::{format_log, parse_log, InputKind};
use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use iced_x86::code_asm::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Polls the 16550A's LSR (data ready), echoes RBR to THR, stops at '\n' with exit
/// value 0x21 (status 0x43).
fn echo_boot_sector() -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    let mut poll = a.create_label();
    a.set_label(&mut poll).unwrap();
    a.mov(dx, 0x3FDu32).unwrap();
    a.in_(al, dx).unwrap();
    a.test(al, 1u32).unwrap();
    a.jz(poll).unwrap();
    a.mov(dx, 0x3F8u32).unwrap();
    a.in_(al, dx).unwrap();
    a.out(dx, al).unwrap();
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

fn echo_machine() -> Machine {
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load(0x7C00, &echo_boot_sector()).unwrap();
    m.enter_mode(GuestMode::Real, 0x7C00, 0x7000).unwrap();
    m.enable_trace_hash();
    m
}

/// The host delivers "he", "llo" and "\n" between runs of different lengths (as a real
/// host would at arbitrary moments); the recording names the polls that took them, and
/// a replay of it makes the same run.
#[test]
fn a_recorded_run_replays_to_the_same_hash() {
    let mut m = echo_machine();
    let (tx, rx) = crossbeam::channel::unbounded();
    m.set_console_source(rx);
    m.start_input_recording();
    for (chunk, run) in [(&b"he"[..], 1_500_000), (b"llo", 2_300_000)] {
        for &b in chunk {
            tx.send(b).unwrap();
        }
        let r = m.run(Some(run));
        assert_eq!(r.reason, StopReason::InsnLimit, "{r}");
    }
    tx.send(b'\n').unwrap();
    drop(tx);
    let r = m.run(Some(50_000_000));
    assert_eq!(r.reason, StopReason::DebugExit(0x21), "{r}");
    assert_eq!(m.serial_output(), b"hello\n");
    let log = m.recorded_input().to_vec();
    let bytes: Vec<u8> = log
        .iter()
        .filter_map(|e| match e.kind {
            InputKind::Byte(b) => Some(b),
            InputKind::Closed => None,
        })
        .collect();
    assert_eq!(bytes, b"hello\n");
    let polls: std::collections::BTreeSet<u64> = log.iter().map(|e| e.poll).collect();
    assert!(polls.len() >= 3, "the chunks arrived at different polls: {log:?}");
    // Through the text format, as --record writes it.
    let events = parse_log(&format_log(&log)).unwrap();
    assert_eq!(events, log);

    let mut replay = echo_machine();
    replay.replay_input(events);
    let r2 = replay.run(Some(50_000_000));
    assert_eq!(r2.reason, r.reason);
    assert_eq!(replay.serial_output(), m.serial_output());
    assert_eq!(replay.clock(), m.clock());
    assert_eq!(replay.trace_hash(), m.trace_hash());
    assert_eq!(replay.replay_remaining(), Some(0));

    // The same bytes delivered all at once make a different run: the log's timing is
    // what makes the replay exact.
    let mut eager = echo_machine();
    eager.serial_input(b"hello\n");
    eager.run(Some(50_000_000));
    assert_eq!(eager.serial_output(), b"hello\n");
    assert_ne!(eager.trace_hash(), m.trace_hash());
}

/// A snapshot of a replayed run, restored and replayed with the same log, ends with the
/// same hash: the poll counter is part of the snapshot.
#[test]
fn replay_continues_from_a_snapshot() {
    let mut m = echo_machine();
    let (tx, rx) = crossbeam::channel::unbounded();
    m.set_console_source(rx);
    m.start_input_recording();
    tx.send(b'a').unwrap();
    m.run(Some(1_200_000));
    tx.send(b'\n').unwrap();
    drop(tx);
    m.run(Some(50_000_000));
    let log = m.recorded_input().to_vec();

    let mut first = echo_machine();
    first.replay_input(log.clone());
    first.run(Some(600_000));
    let snap = first.snapshot().unwrap();
    first.run(Some(50_000_000));
    assert_eq!(first.trace_hash(), m.trace_hash());

    let mut restored = Machine::restore_snapshot(&snap, false).unwrap().machine;
    restored.replay_input(log);
    restored.run(Some(50_000_000));
    assert_eq!(restored.serial_output(), b"a\n");
    assert_eq!(restored.trace_hash(), m.trace_hash());
}

fn hash_line(stderr: &[u8]) -> String {
    let err = String::from_utf8_lossy(stderr);
    err.lines().find(|l| l.contains("trace hash")).map(str::to_owned).unwrap_or(err.into())
}

/// Through the binary: stdin piped in two pieces with a pause (the host decides when
/// the second arrives) under `--record`; `--replay` with other bytes on stdin prints the
/// same output and the same hash. A damaged log is refused with exit status 2.
#[test]
fn cli_record_then_replay() {
    let dir = std::env::temp_dir().join(format!("hvsim-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("echo.img");
    let log = dir.join("input.log");
    let mut disk = echo_boot_sector();
    disk.resize(64 * 512, 0);
    std::fs::write(&img, disk).unwrap();
    let hvsim = env!("CARGO_BIN_EXE_hvsim");
    let mut child = Command::new(hvsim)
        .arg("run")
        .arg(&img)
        .arg("--trace-hash")
        .arg("--record")
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"record ").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    stdin.write_all(b"me\n").unwrap();
    drop(stdin);
    let recorded = child.wait_with_output().unwrap();
    assert_eq!(recorded.status.code(), Some(0x43), "{}", String::from_utf8_lossy(&recorded.stderr));
    assert!(String::from_utf8_lossy(&recorded.stdout).contains("record me"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("hvsim input log, format 1\n"), "{text}");

    let mut replay = Command::new(hvsim)
        .arg("run")
        .arg(&img)
        .arg("--trace-hash")
        .arg("--replay")
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stdin is not read while replaying.
    replay.stdin.take().unwrap().write_all(b"ignored\n").unwrap();
    let replayed = replay.wait_with_output().unwrap();
    assert_eq!(replayed.status.code(), Some(0x43));
    assert_eq!(replayed.stdout, recorded.stdout);
    let h = hash_line(&recorded.stderr);
    assert!(h.contains("trace hash "), "{h}");
    assert_eq!(hash_line(&replayed.stderr), h);

    std::fs::write(&log, "hvsim input log, format 9\n").unwrap();
    let bad = Command::new(hvsim)
        .arg("run")
        .arg(&img)
        .arg("--replay")
        .arg(&log)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("input log format 9 is not supported"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
