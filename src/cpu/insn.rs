//! The decoded-instruction form the run loop executes: the handler chosen once at decode
//! time, operands pre-resolved to register numbers, immediates and a memory-operand
//! recipe, and the iced-x86 instruction kept for the rare paths and for disassembly.

use super::fault::{ExecResult, Fault};
use super::regs::SegReg;
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, OpKind, Register};

/// An instruction's semantics.
pub type Handler = fn(&mut Machine, &Insn) -> ExecResult;

/// A register or memory base/index value meaning "none".
pub const NO_REG: u8 = 0xFF;

/// One operand, resolved at decode time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// No operand.
    None,
    /// A general-purpose register: number and whether it is AH/CH/DH/BH.
    Reg(u8, bool),
    /// The memory operand described by [`Insn::mem`].
    Mem,
    /// An immediate (value in [`Insn::imm`] for the first, [`Insn::imm2`] for a second).
    Imm,
    /// A segment register.
    Seg(SegReg),
    /// Anything else (control/debug registers, near/far branch targets, ...): the
    /// handler reads it from the iced instruction.
    Other,
}

/// How to form a memory operand's effective address.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MemOp {
    /// Base register or [`NO_REG`] (RIP-relative operands fold RIP into `disp`).
    pub base: u8,
    /// Index register or [`NO_REG`].
    pub index: u8,
    /// log2 of the scale.
    pub scale: u8,
    /// Effective segment (after overrides).
    pub seg: SegReg,
    /// Displacement, sign-extended.
    pub disp: u64,
}

/// A decoded instruction.
#[derive(Clone)]
pub struct Insn {
    /// Its semantics.
    pub exec: Handler,
    /// Length in bytes.
    pub len: u8,
    /// Operand size in bytes (of the first operand, or the second if the first is not a
    /// register or memory).
    pub osize: u8,
    /// Address size in bytes.
    pub asize: u8,
    /// Operands.
    pub ops: [Op; 3],
    /// Register numbers of register operands (0 for other kinds), for handlers that were
    /// chosen knowing the operand kinds.
    pub r: [u8; 3],
    /// The memory operand, if any of `ops` is [`Op::Mem`].
    pub mem: MemOp,
    /// The first immediate, sign-extended to 64 bits where the encoding sign-extends.
    pub imm: u64,
    /// A second immediate (ENTER's nesting level), or a branch target.
    pub imm2: u64,
    /// The iced-x86 form.
    pub iced: Instruction,
    /// The instruction's bytes (the first `len`), for traces and reports.
    pub bytes: [u8; 15],
}

impl std::fmt::Debug for Insn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Insn({})", self.iced)
    }
}

/// The GPR number and high-byte flag of an iced register, if it is a GPR.
pub fn gpr_of(r: Register) -> Option<(u8, bool)> {
    if r.is_gpr8() {
        let n = r as u32 - Register::AL as u32;
        return Some(match n {
            0..=3 => (n as u8, false),
            4..=7 => ((n - 4) as u8, true),
            8..=11 => ((n - 4) as u8, false),
            _ => ((n - 4) as u8, false),
        });
    }
    if r.is_gpr16() {
        return Some(((r as u32 - Register::AX as u32) as u8, false));
    }
    if r.is_gpr32() {
        return Some(((r as u32 - Register::EAX as u32) as u8, false));
    }
    if r.is_gpr64() {
        return Some(((r as u32 - Register::RAX as u32) as u8, false));
    }
    None
}

/// The segment register of an iced register.
pub fn seg_of(r: Register) -> Option<SegReg> {
    match r {
        Register::ES => Some(SegReg::Es),
        Register::CS => Some(SegReg::Cs),
        Register::SS => Some(SegReg::Ss),
        Register::DS => Some(SegReg::Ds),
        Register::FS => Some(SegReg::Fs),
        Register::GS => Some(SegReg::Gs),
        _ => None,
    }
}

/// The size in bytes of operand `n` as decoded (register, memory or immediate width;
/// 0 for other kinds).
pub(crate) fn op_size(i: &Instruction, n: u32) -> u8 {
    match i.op_kind(n) {
        OpKind::Register => i.op_register(n).size() as u8,
        OpKind::Memory => i.memory_size().size() as u8,
        OpKind::Immediate8 => 1,
        OpKind::Immediate16 | OpKind::Immediate8to16 => 2,
        OpKind::Immediate32 | OpKind::Immediate8to32 => 4,
        OpKind::Immediate64 | OpKind::Immediate8to64 | OpKind::Immediate32to64 => 8,
        _ => 0,
    }
}

impl Insn {
    /// Builds the executable form of `i` with handler `exec`.
    pub fn new(i: &Instruction, exec: Handler) -> Self {
        let mut ops = [Op::None; 3];
        let mut imm = 0;
        let mut imm2 = 0;
        let mut nimm = 0;
        for (n, slot) in ops.iter_mut().enumerate().take(i.op_count().min(3) as usize) {
            let n = n as u32;
            *slot = match i.op_kind(n) {
                OpKind::Register => {
                    let r = i.op_register(n);
                    if let Some((idx, hi)) = gpr_of(r) {
                        Op::Reg(idx, hi)
                    } else if let Some(s) = seg_of(r) {
                        Op::Seg(s)
                    } else {
                        Op::Other
                    }
                }
                OpKind::Memory => Op::Mem,
                OpKind::Immediate8
                | OpKind::Immediate16
                | OpKind::Immediate32
                | OpKind::Immediate64
                | OpKind::Immediate8to16
                | OpKind::Immediate8to32
                | OpKind::Immediate8to64
                | OpKind::Immediate32to64
                | OpKind::Immediate8_2nd => {
                    let v = i.immediate(n);
                    if nimm == 0 {
                        imm = v;
                    } else {
                        imm2 = v;
                    }
                    nimm += 1;
                    Op::Imm
                }
                OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                    imm2 = i.near_branch_target();
                    Op::Other
                }
                _ => Op::Other,
            };
        }
        let mut osize = op_size(i, 0);
        if !matches!(ops[0], Op::Reg(..) | Op::Mem) && i.op_count() > 1 {
            osize = op_size(i, 1).max(osize);
        }
        if osize == 0 {
            osize = 4;
        }
        let (base, disp) = match i.memory_base() {
            Register::RIP | Register::EIP => (NO_REG, i.memory_displacement64()),
            Register::None => (NO_REG, i.memory_displacement64()),
            r => (gpr_of(r).map_or(NO_REG, |g| g.0), i.memory_displacement64()),
        };
        let index = match i.memory_index() {
            Register::None => NO_REG,
            r => gpr_of(r).map_or(NO_REG, |g| g.0),
        };
        let mem = MemOp {
            base,
            index,
            scale: i.memory_index_scale().trailing_zeros() as u8,
            seg: seg_of(i.memory_segment()).unwrap_or(SegReg::Ds),
            disp,
        };
        let reg =
            if i.memory_base() != Register::None { i.memory_base() } else { i.memory_index() };
        let asize = match (reg, i.memory_displ_size()) {
            (Register::None, d @ (2 | 4 | 8)) => d as u8,
            (Register::None, _) => default_address_size(i),
            (r, _) => r.size() as u8,
        };
        let r = ops.map(|o| match o {
            Op::Reg(n, _) => n & 15,
            _ => 0,
        });
        Self {
            exec,
            len: i.len() as u8,
            osize,
            asize,
            ops,
            r,
            mem,
            imm,
            imm2,
            iced: *i,
            bytes: [0; 15],
        }
    }

    /// The effective address (segment offset) of the memory operand.
    #[inline(always)]
    pub fn ea(&self, m: &Machine) -> u64 {
        let mem = &self.mem;
        let mut a = mem.disp;
        if mem.base != NO_REG {
            a = a.wrapping_add(m.cpu.gpr[usize::from(mem.base)]);
        }
        if mem.index != NO_REG {
            a = a.wrapping_add(m.cpu.gpr[usize::from(mem.index)] << mem.scale);
        }
        a & super::flags::size_mask(self.asize)
    }
}

/// The default address size of the instruction's code size.
fn default_address_size(i: &Instruction) -> u8 {
    use hvsim_decoder::iced::CodeSize;
    match i.code_size() {
        CodeSize::Code64 => 8,
        CodeSize::Code32 => 4,
        _ => 2,
    }
}

/// Handler for bytes that do not decode: #UD.
pub fn invalid_opcode(_m: &mut Machine, _i: &Insn) -> ExecResult {
    super::fault::ud()
}

/// Handler for instructions hvsim does not emulate.
pub fn not_emulated(_m: &mut Machine, i: &Insn) -> ExecResult {
    Err(Fault::Unsupported(Box::new(super::fault::Unsupported {
        what: format!("instruction `{}` ({:?})", i.iced, i.iced.code()),
    })))
}
