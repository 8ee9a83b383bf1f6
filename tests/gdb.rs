//! The GDB stub speaks the remote serial protocol: a client (written here from the
//! protocol's packet format) reads registers and memory, sets a breakpoint, continues to
//! it, single-steps, writes guest memory, and sees the guest exit.

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
