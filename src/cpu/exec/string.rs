//! String instructions: MOVS, CMPS, SCAS, LODS and STOS, with the REP/REPE/REPNE
//! prefixes (SDM Vol. 2B "REP/REPE/REPZ/REPNE/REPNZ"). The INS/OUTS forms share the
//! machinery here and live in `io.rs`.
//!
//! The source is `seg:rSI` (DS unless overridden); the destination is always `ES:rDI`.
//! The address size picks SI/ESI/RSI, DI/EDI/RDI and the count register CX/ECX/RCX.
//! A long REP run yields to the run loop every [`REP_CHUNK`] iterations with the
//! registers reflecting the completed iterations; the instruction is then executed
//! again from the start, which is architecturally equivalent (interrupts may be taken
//! between iterations, SDM Vol. 2B "REP": "the processor ... updates the registers so
//! that it can resume").

use crate::cpu::fault::{ExecResult, Fault};
use crate::cpu::flags::{size_mask, DF};
use crate::cpu::insn::{seg_of, Handler, Insn};
use crate::cpu::regs::SegReg;
use crate::machine::Machine;
use hvsim_decoder::iced::{Code, Instruction, OpKind};

/// Iterations a REP-prefixed instruction runs before it yields to the run loop.
pub(crate) const REP_CHUNK: u32 = 4096;

const MOVS: u8 = 0;
const CMPS: u8 = 1;
const SCAS: u8 = 2;
const LODS: u8 = 3;
const STOS: u8 = 4;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.code() {
        Code::Movsb_m8_m8 | Code::Movsw_m16_m16 | Code::Movsd_m32_m32 | Code::Movsq_m64_m64 => {
            string::<MOVS>
        }
        Code::Cmpsb_m8_m8 | Code::Cmpsw_m16_m16 | Code::Cmpsd_m32_m32 | Code::Cmpsq_m64_m64 => {
            string::<CMPS>
        }
        Code::Scasb_AL_m8 | Code::Scasw_AX_m16 | Code::Scasd_EAX_m32 | Code::Scasq_RAX_m64 => {
            string::<SCAS>
        }
        Code::Lodsb_AL_m8 | Code::Lodsw_AX_m16 | Code::Lodsd_EAX_m32 | Code::Lodsq_RAX_m64 => {
            string::<LODS>
        }
        Code::Stosb_m8_AL | Code::Stosw_m16_AX | Code::Stosd_m32_EAX | Code::Stosq_m64_RAX => {
            string::<STOS>
        }
        _ => return None,
    })
}

/// The per-instruction parameters of a string operation.
#[derive(Copy, Clone, Debug)]
pub(crate) struct StrOp {
    /// Element size in bytes.
    pub size: u8,
    /// Address size in bytes.
    pub asize: u8,
    /// Segment of the source (`seg:rSI`).
    pub src_seg: SegReg,
    /// Whether a REP/REPE/REPNE prefix is present.
    pub rep: bool,
    /// REPNE (F2) rather than REP/REPE (F3); meaningful for CMPS/SCAS.
    pub repne: bool,
}

impl StrOp {
    /// Reads the parameters from the decoded form.
    pub(crate) fn of(i: &Insn) -> Self {
        let d = &i.iced;
        let mut asize = 0;
        for n in 0..d.op_count() {
            asize = match d.op_kind(n) {
                OpKind::MemorySegSI | OpKind::MemoryESDI | OpKind::MemorySegDI => 2,
                OpKind::MemorySegESI | OpKind::MemoryESEDI | OpKind::MemorySegEDI => 4,
                OpKind::MemorySegRSI | OpKind::MemoryESRDI | OpKind::MemorySegRDI => 8,
                _ => continue,
            };
            break;
        }
        if asize == 0 {
            asize = i.asize;
        }
        Self {
            size: d.memory_size().size() as u8,
            asize,
            // For STOS/SCAS/INS iced reports ES here; those never read the source.
            src_seg: seg_of(d.memory_segment()).unwrap_or(SegReg::Ds),
            rep: d.has_rep_prefix() || d.has_repne_prefix(),
            repne: d.has_repne_prefix(),
        }
    }

    /// The address mask.
    #[inline(always)]
    pub(crate) fn amask(&self) -> u64 {
        size_mask(self.asize)
    }
}

/// Adds the DF-signed element step to index register `reg` at the address size.
#[inline(always)]
pub(crate) fn advance(m: &mut Machine, s: &StrOp, reg: u8) {
    let step = u64::from(s.size);
    let v = m.cpu.gpr[usize::from(reg)];
    let nv = if m.cpu.flags.bit(DF) { v.wrapping_sub(step) } else { v.wrapping_add(step) };
    m.cpu.set_reg(reg, s.asize, false, nv & s.amask());
}

/// Runs `body` once, or under REP for rCX iterations (in chunks of [`REP_CHUNK`]).
/// `body` does one iteration including its index-register updates and returns whether
/// a REPE/REPNE condition ends the loop.
#[inline(always)]
pub(crate) fn rep_loop(
    m: &mut Machine,
    s: &StrOp,
    mut body: impl FnMut(&mut Machine) -> Result<bool, Fault>,
) -> ExecResult {
    if !s.rep {
        body(m)?;
        return Ok(());
    }
    let amask = s.amask();
    let mut n = 0u32;
    loop {
        let cx = m.cpu.gpr[1] & amask;
        if cx == 0 {
            return Ok(());
        }
        if n == REP_CHUNK {
            return Err(Fault::Yield);
        }
        let stop = body(m)?;
        m.cpu.set_reg(1, s.asize, false, cx.wrapping_sub(1));
        n += 1;
        if stop {
            return Ok(());
        }
        // A data breakpoint hit ends the run of iterations: the #DB trap follows this
        // iteration (SDM Vol. 3A §18.3.1.2), and the instruction resumes after it.
        if m.cpu.debug.pending & crate::cpu::debug::DR6_BREAKPOINTS != 0 && cx != 1 {
            return Err(Fault::Yield);
        }
    }
}

fn string<const K: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    let s = StrOp::of(i);
    let size = s.size;
    let amask = s.amask();
    rep_loop(m, &s, |m| {
        let si = m.cpu.gpr[6] & amask;
        let di = m.cpu.gpr[7] & amask;
        match K {
            MOVS => {
                let v = m.read_mem(s.src_seg, si, size)?;
                m.write_mem(SegReg::Es, di, size, v)?;
                advance(m, &s, 6);
                advance(m, &s, 7);
                Ok(false)
            }
            CMPS => {
                // CMPS compares the source with the destination: flags of [rSI] - [rDI].
                let a = m.read_mem(s.src_seg, si, size)?;
                let b = m.read_mem(SegReg::Es, di, size)?;
                let r = a.wrapping_sub(b) & size_mask(size);
                m.cpu.flags.set_sub(size, a, b, 0, r);
                advance(m, &s, 6);
                advance(m, &s, 7);
                Ok((r == 0) == s.repne)
            }
            SCAS => {
                let a = m.cpu.reg(0, size, false);
                let b = m.read_mem(SegReg::Es, di, size)?;
                let r = a.wrapping_sub(b) & size_mask(size);
                m.cpu.flags.set_sub(size, a, b, 0, r);
                advance(m, &s, 7);
                Ok((r == 0) == s.repne)
            }
            LODS => {
                let v = m.read_mem(s.src_seg, si, size)?;
                m.cpu.set_reg(0, size, false, v);
                advance(m, &s, 6);
                Ok(false)
            }
            _ => {
                let v = m.cpu.reg(0, size, false);
                m.write_mem(SegReg::Es, di, size, v)?;
                advance(m, &s, 7);
                Ok(false)
            }
        }
    })
}
