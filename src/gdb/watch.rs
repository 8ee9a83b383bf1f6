//! Hardware watchpoints for the debugger, kept by the stub: the guest's debug registers
//! are never touched. Before each instruction (the stub single-steps while a watchpoint
//! is set) the instruction at CS:RIP is decoded and its memory operands, explicit and
//! implicit (stack, string), are computed from the registers; after it retires, an
//! access that overlaps a watched range of the right kind is reported as GDB's watch stop
//! (like an x86 data breakpoint, a trap after the access: SDM Vol. 3A §18.3.1.2 "Data
//! Memory and I/O Breakpoint Exception Conditions").
//!
//! A string instruction's operands move with RSI/RDI: the range it touched is the span
//! between its operands' addresses before and after the step ([`string_spans`]), so a
//! REP MOVS/STOS over a watched byte stops whatever element hit it (also when a long REP
//! yields between chunks). Limit: accesses made by event delivery (pushing an exception
//! frame) are not seen.

use crate::cpu::regs::SegReg;
use crate::machine::Machine;
use gdbstub::target::ext::breakpoints::WatchKind;
use hvsim_decoder::iced::{Decoder, DecoderOptions, InstructionInfoFactory, OpAccess, Register};

/// One watchpoint: `len` bytes at linear address `addr`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Watchpoint {
    pub addr: u64,
    pub len: u64,
    pub kind: WatchKind,
}

/// One memory access of an instruction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Access {
    pub lin: u64,
    pub size: u64,
    pub read: bool,
    pub write: bool,
}

impl Watchpoint {
    /// Whether `a` triggers this watchpoint.
    fn hit_by(&self, a: &Access) -> bool {
        let kind_ok = match self.kind {
            WatchKind::Write => a.write,
            WatchKind::Read => a.read,
            WatchKind::ReadWrite => a.read || a.write,
        };
        let end = self.addr.saturating_add(self.len.max(1));
        let a_end = a.lin.saturating_add(a.size.max(1));
        kind_ok && a.lin < end && self.addr < a_end
    }
}

/// The first watchpoint any of `accesses` triggers.
pub(super) fn first_hit(watches: &[Watchpoint], accesses: &[Access]) -> Option<Watchpoint> {
    watches.iter().copied().find(|w| accesses.iter().any(|a| w.hit_by(a)))
}

/// The value of `reg` for an address computation, `None` if it cannot be one.
fn register_value(m: &Machine, reg: Register) -> Option<u64> {
    let c = &m.cpu;
    if reg.is_segment_register() {
        let i = reg as usize - Register::ES as usize;
        // In 64-bit mode only FS and GS have bases (SDM Vol. 3A §3.4.4 "Segment Loading
        // Instructions in IA-32e Mode").
        let flat = c.mode == crate::CpuMode::Long64
            && i != SegReg::Fs as usize
            && i != SegReg::Gs as usize;
        return Some(if flat { 0 } else { c.seg.get(i)?.base });
    }
    if reg.is_gpr() {
        let full = reg.full_register();
        let i = full as usize - Register::RAX as usize;
        let v = *c.gpr.get(i)?;
        return Some(match reg.size() {
            8 => v,
            4 => v & 0xFFFF_FFFF,
            2 => v & 0xFFFF,
            _ => v & 0xFF,
        });
    }
    if reg == Register::RIP || reg == Register::EIP {
        return Some(c.rip);
    }
    None
}

/// Whether the instruction whose bytes are `bytes` is a string instruction (MOVS, STOS,
/// LODS, CMPS, SCAS, INS, OUTS), whose memory operands advance with RSI/RDI.
pub(super) fn is_string(m: &Machine, bytes: &[u8]) -> bool {
    let bits = u32::from(m.cpu.code_bits.max(16));
    let insn = Decoder::with_ip(bits, bytes, m.cpu.rip, DecoderOptions::NONE).decode();
    !insn.is_invalid() && insn.is_string_instruction()
}

/// The ranges a string instruction touched, from its operands' accesses computed with the
/// registers before (`before`) and after (`after`) the step, pairwise: with DF = 0 an
/// operand covered [before, after), with DF = 1 (after, before], in elements.
pub(super) fn string_spans(before: &[Access], after: &[Access]) -> Vec<Access> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            let (lo, hi) = if a.lin >= b.lin {
                (b.lin, a.lin.max(b.lin.saturating_add(b.size)))
            } else {
                (a.lin.saturating_add(a.size), b.lin.saturating_add(b.size))
            };
            Access { lin: lo, size: hi - lo, ..*b }
        })
        .collect()
}

/// The memory accesses of the instruction whose bytes are `bytes`, at CS:RIP.
pub(super) fn accesses(m: &Machine, bytes: &[u8]) -> Vec<Access> {
    let bits = u32::from(m.cpu.code_bits.max(16));
    let mut d = Decoder::with_ip(bits, bytes, m.cpu.rip, DecoderOptions::NONE);
    let insn = d.decode();
    if insn.is_invalid() {
        return Vec::new();
    }
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(&insn);
    let mut out = Vec::new();
    for mem in info.used_memory() {
        let (read, write) = match mem.access() {
            OpAccess::Read | OpAccess::CondRead => (true, false),
            OpAccess::Write | OpAccess::CondWrite => (false, true),
            OpAccess::ReadWrite | OpAccess::ReadCondWrite => (true, true),
            OpAccess::None | OpAccess::NoMemAccess => continue,
        };
        let Some(lin) = mem.virtual_address(0, |reg, _, _| register_value(m, reg)) else {
            continue;
        };
        let size = mem.memory_size().size() as u64;
        out.push(Access { lin, size, read, write });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_ranges() {
        let w = Watchpoint { addr: 0x1000, len: 4, kind: WatchKind::Write };
        let write = |lin, size| Access { lin, size, read: false, write: true };
        let read = |lin, size| Access { lin, size, read: true, write: false };
        assert!(w.hit_by(&write(0x1003, 1)));
        assert!(w.hit_by(&write(0xFFC, 8)));
        assert!(!w.hit_by(&write(0x1004, 4)));
        assert!(!w.hit_by(&read(0x1000, 4)));
        let r = Watchpoint { kind: WatchKind::Read, ..w };
        assert!(r.hit_by(&read(0x1000, 1)) && !r.hit_by(&write(0x1000, 1)));
        let a = Watchpoint { kind: WatchKind::ReadWrite, ..w };
        assert!(a.hit_by(&read(0x1000, 1)) && a.hit_by(&write(0x1000, 1)));
        assert_eq!(first_hit(&[r, w], &[write(0x1001, 2)]), Some(w));
    }

    /// REP STOSD of 8 elements from 0x2000 upward, and of 8 from 0x201C downward (DF = 1):
    /// the spans cover exactly the 32 bytes written, so a watchpoint on the last element
    /// hits and one on the next byte does not.
    #[test]
    fn string_spans_cover_every_element() {
        let w = |lin| Access { lin, size: 4, read: false, write: true };
        let up = string_spans(&[w(0x2000)], &[w(0x2020)]);
        assert_eq!(up, vec![Access { lin: 0x2000, size: 0x20, read: false, write: true }]);
        let down = string_spans(&[w(0x201C)], &[w(0x1FFC)]);
        assert_eq!(down, up);
        let last = Watchpoint { addr: 0x201C, len: 1, kind: WatchKind::Write };
        let after = Watchpoint { addr: 0x2020, len: 1, kind: WatchKind::Write };
        assert_eq!(first_hit(&[after, last], &up), Some(last));
        assert_eq!(first_hit(&[after], &down), None);
        // No progress (RCX = 0): the element size alone.
        assert_eq!(string_spans(&[w(0x2000)], &[w(0x2000)])[0].size, 4);
    }
}
