//! The GDB stub speaks the remote serial protocol: a client (written here from the
//! protocol's packet format) reads registers and memory, sets a breakpoint, continues to
//! it, single-steps, writes guest memory, and sees the guest exit; GDB itself, in batch
//! mode, sets hardware watchpoints and runs `monitor` commands.

use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// A minimal RSP client: `$payload#checksum`, acknowledged with `+`.
struct Client(TcpStream);

impl Client {
    fn send(&mut self, payload: &str) -> String {
        let sum = payload.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        write!(self.0, "${payload}#{sum:02x}").unwrap();
        let mut ack = [0u8; 1];
        self.0.read_exact(&mut ack).unwrap();
        assert_eq!(ack[0], b'+', "no ack for {payload}");
        self.recv()
    }

    fn recv(&mut self) -> String {
        let mut b = [0u8; 1];
        loop {
            self.0.read_exact(&mut b).unwrap();
            if b[0] == b'$' {
                break;
            }
        }
        let mut body = Vec::new();
        loop {
            self.0.read_exact(&mut b).unwrap();
            if b[0] == b'#' {
                break;
            }
            body.push(b[0]);
        }
        let mut sum = [0u8; 2];
        self.0.read_exact(&mut sum).unwrap();
        self.0.write_all(b"+").unwrap();
        // Run-length encoding: `c*n` repeats `c` (n - 29) more times.
        let mut out = Vec::new();
        let mut i = 0;
        while i < body.len() {
            if body[i] == b'*' && i + 1 < body.len() {
                let last = *out.last().unwrap();
                out.extend(std::iter::repeat(last).take(usize::from(body[i + 1]) - 29));
                i += 2;
            } else {
                out.push(body[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}

/// RIP from a `g` reply: 16 64-bit registers, then RIP, little-endian hex.
fn rip_of(g: &str) -> u64 {
    let hex = &g[16 * 16..17 * 16];
    let bytes: Vec<u8> =
        (0..8).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    u64::from_le_bytes(bytes.try_into().unwrap())
}

#[test]
fn breakpoint_step_memory_and_exit() {
    let mut a = CodeAssembler::new(64).unwrap();
    let mut at_add = a.create_label();
    let mut after_add = a.create_label();
    a.mov(rax, 1u64).unwrap();
    a.mov(rbx, 2u64).unwrap();
    a.set_label(&mut at_add).unwrap();
    a.add(rax, rbx).unwrap();
    a.set_label(&mut after_add).unwrap();
    a.mov(al, byte_ptr(0x3000)).unwrap();
    a.out(0xF4, al).unwrap();
    a.hlt().unwrap();
    let res =
        a.assemble_options(0x1000, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).unwrap();
    let bp_ip: u64 = res.label_ip(&at_add).unwrap();
    let next = res.label_ip(&after_add).unwrap();
    let code = res.inner.code_buffer.clone();

    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load(0x1000, &code).unwrap();
    m.load(0x3000, &[7]).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let first_bytes = code[..4].iter().map(|b| format!("{b:02x}")).collect::<String>();
    let client = std::thread::spawn(move || {
        let mut c = Client(TcpStream::connect(("127.0.0.1", port)).unwrap());
        let stop = c.send("?");
        assert!(stop.starts_with('S') || stop.starts_with('T'), "{stop}");
        assert_eq!(rip_of(&c.send("g")), 0x1000);
        assert_eq!(c.send("m1000,4"), first_bytes);
        // A software breakpoint, kept by the stub: guest memory is unchanged.
        assert_eq!(c.send(&format!("Z0,{bp_ip:x},1")), "OK");
        assert_eq!(c.send("m1000,4"), first_bytes);
        let stop = c.send("c");
        assert!(stop.starts_with("T05") || stop.starts_with("S05"), "{stop}");
        assert_eq!(rip_of(&c.send("g")), bp_ip);
        assert_eq!(c.send(&format!("z0,{bp_ip:x},1")), "OK");
        let stop = c.send("s");
        assert!(stop.starts_with("T05") || stop.starts_with("S05"), "{stop}");
        let g = c.send("g");
        assert_eq!(rip_of(&g), next);
        assert_eq!(&g[..16], "0300000000000000", "RAX = 1 + 2");
        // Change the byte the guest will send to isa-debug-exit.
        assert_eq!(c.send("M3000,1:2a"), "OK");
        // The guest exits with (0x2a << 1) | 1 = 0x55.
        let stop = c.send("c");
        assert_eq!(stop, "W55");
    });
    let (conn, _) = listener.accept().unwrap();
    let outcome = hvsim::gdb::serve(&mut m, conn).unwrap();
    client.join().unwrap();
    match outcome {
        hvsim::gdb::GdbOutcome::Stopped(r) => assert_eq!(r.reason, StopReason::DebugExit(0x2a)),
        other => panic!("{other:?}"),
    }
}

// ---- GDB itself, in batch mode ----------------------------------------------------------

/// The gdb to drive: `$HVSIM_GDB` or `gdb` on the PATH. `None` (the test is skipped with
/// a note) only outside CI; `.ci/run` installs gdb.
fn find_gdb() -> Option<String> {
    let gdb = std::env::var("HVSIM_GDB").unwrap_or_else(|_| "gdb".into());
    let ok = std::process::Command::new(&gdb)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(gdb);
    }
    assert!(std::env::var_os("CI").is_none(), "gdb is required in CI (see .ci/run)");
    eprintln!("note: no gdb found; skipping the gdb batch-mode test");
    None
}

/// Serves `m` to `gdb -batch` running `commands` after `target remote`; returns gdb's
/// stdout and the session outcome.
fn gdb_session(gdb: &str, m: &mut Machine, commands: &[&str]) -> (String, hvsim::gdb::GdbOutcome) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(gdb);
    cmd.args(["-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off"]);
    cmd.args(["-ex", &format!("target remote 127.0.0.1:{port}")]);
    for c in commands {
        cmd.args(["-ex", c]);
    }
    let child = std::thread::spawn(move || cmd.output().unwrap());
    let (conn, _) = listener.accept().unwrap();
    let outcome = hvsim::gdb::serve(m, conn).unwrap();
    let out = child.join().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (text, outcome)
}

/// SDM Vol. 3A §18.3.1.2 "Data Memory and I/O Breakpoint Exception Conditions" (the
/// model of a GDB hardware watchpoint): a write watchpoint stops after the writing
/// instruction with the old and new values, a read watchpoint after the reading one, an
/// access watchpoint on either; the guest's debug registers stay untouched.
#[test]
fn gdb_hardware_watchpoints() {
    let Some(gdb) = find_gdb() else { return };
    let mut a = CodeAssembler::new(64).unwrap();
    let mut after_write = a.create_label();
    let mut after_read = a.create_label();
    let mut after_access = a.create_label();
    a.mov(rax, 0x1234u64).unwrap();
    a.mov(qword_ptr(0x3000), rax).unwrap();
    a.set_label(&mut after_write).unwrap();
    a.mov(rbx, qword_ptr(0x3008)).unwrap();
    a.set_label(&mut after_read).unwrap();
    a.nop().unwrap();
    a.push(qword_ptr(0x3010)).unwrap(); // a read of 0x3010 and a stack write
    a.set_label(&mut after_access).unwrap();
    a.mov(al, 0x10u32).unwrap();
    a.out(0xF4, al).unwrap();
    a.hlt().unwrap();
    let res =
        a.assemble_options(0x1000, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).unwrap();
    let ip = |l: &CodeLabel| res.label_ip(l).unwrap();
    let (w_ip, r_ip, a_ip) = (ip(&after_write), ip(&after_read), ip(&after_access));
    let code = res.inner.code_buffer.clone();
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load(0x1000, &code).unwrap();
    m.load(0x3008, &0x55u64.to_le_bytes()).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    let (out, outcome) = gdb_session(
        &gdb,
        &mut m,
        &[
            "watch *(long *)0x3000",
            "rwatch *(long *)0x3008",
            "awatch *(long *)0x3010",
            "continue",
            "printf \"STOP1 %#lx\\n\", $pc",
            "continue",
            "printf \"STOP2 %#lx\\n\", $pc",
            "continue",
            "printf \"STOP3 %#lx\\n\", $pc",
            "delete",
            "continue",
        ],
    );
    assert!(out.contains("Hardware watchpoint 1: *(long *)0x3000"), "{out}");
    assert!(out.contains("Hardware read watchpoint 2: *(long *)0x3008"), "{out}");
    assert!(out.contains("Hardware access (read/write) watchpoint 3: *(long *)0x3010"), "{out}");
    assert!(out.contains("Old value = 0\nNew value = 4660"), "{out}");
    assert!(out.contains(&format!("STOP1 {w_ip:#x}")), "{out}");
    assert!(out.contains("Value = 85"), "{out}");
    assert!(out.contains(&format!("STOP2 {r_ip:#x}")), "{out}");
    assert!(out.contains(&format!("STOP3 {a_ip:#x}")), "{out}");
    assert!(out.contains("exited with code 041"), "{out}");
    assert!(matches!(outcome, hvsim::gdb::GdbOutcome::Stopped(_)), "{outcome:?}");
    assert_eq!(m.cpu.dr[7] & 0xFF, 0, "the guest's DR7 is untouched");
}

#[path = "support/vmx_l1.rs"]
mod vmx_l1;

/// `monitor` in a nested guest: the nesting level, the current VMCS pointer with decoded
/// fields (SDM Vol. 3C 25.1 "Overview" of the VMCS, 25.11.2 "VMREAD, VMWRITE"), and the
/// vCPU list.
#[test]
fn gdb_monitor_shows_nesting_and_vcpus() {
    let Some(gdb) = find_gdb() else { return };
    let mut m = vmx_l1::setup(
        |a| {
            a.nop()?;
            a.nop()?;
            a.cpuid()
        },
        |_| {},
    );
    let l2_second = vmx_l1::L2 + 1;
    let (out, _) = gdb_session(
        &gdb,
        &mut m,
        &[
            "monitor",
            &format!("break *{l2_second:#x}"),
            "continue",
            "monitor nested",
            "monitor vcpus",
            "monitor help",
            "kill",
        ],
    );
    assert!(out.contains("nesting level: L1 (no nested guest runs)"), "{out}");
    assert!(out.contains("nesting level: L2 (a nested guest runs)"), "{out}");
    assert!(out.contains(&format!("current VMCS pointer {:#x} (launched)", vmx_l1::VMCS)), "{out}");
    assert!(out.contains(&format!("GUEST_RIP             {:#x}", vmx_l1::L2)), "{out}");
    assert!(out.contains("vCPUs: 1"), "{out}");
    assert!(out.contains("vCPU 0 (current): APIC ID 0, Long64 mode"), "{out}");
    assert!(out.contains("hvsim monitor commands:"), "{out}");
}
