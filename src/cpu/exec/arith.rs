//! Integer arithmetic and logic: ADD, ADC, SUB, SBB, CMP, AND, OR, XOR, TEST, INC, DEC,
//! NEG, NOT. Flags are recorded lazily (see `cpu::flags`).

use super::{read, read_rmw, write};
use crate::cpu::fault::ExecResult;
use crate::cpu::flags::size_mask;
use crate::cpu::insn::{Handler, Insn, Op};
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

const ADD: u8 = 0;
const OR: u8 = 1;
const ADC: u8 = 2;
const SBB: u8 = 3;
const AND: u8 = 4;
const SUB: u8 = 5;
const XOR: u8 = 6;
const CMP: u8 = 7;
const TEST: u8 = 8;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    if let Some(h) = select_fast(i) {
        return Some(h);
    }
    Some(match i.mnemonic() {
        Mnemonic::Add => alu::<ADD>,
        Mnemonic::Or => alu::<OR>,
        Mnemonic::Adc => alu::<ADC>,
        Mnemonic::Sbb => alu::<SBB>,
        Mnemonic::And => alu::<AND>,
        Mnemonic::Sub => alu::<SUB>,
        Mnemonic::Xor => alu::<XOR>,
        Mnemonic::Cmp => alu::<CMP>,
        Mnemonic::Test => alu::<TEST>,
        Mnemonic::Inc if reg_dest(i) => incdec_r::<false>,
        Mnemonic::Dec if reg_dest(i) => incdec_r::<true>,
        Mnemonic::Inc => incdec::<false>,
        Mnemonic::Dec => incdec::<true>,
        Mnemonic::Neg => neg,
        Mnemonic::Not => not,
        _ => return None,
    })
}

/// The ALU operation number of a mnemonic.
fn op_of(m: Mnemonic) -> Option<u8> {
    Some(match m {
        Mnemonic::Add => ADD,
        Mnemonic::Or => OR,
        Mnemonic::Adc => ADC,
        Mnemonic::Sbb => SBB,
        Mnemonic::And => AND,
        Mnemonic::Sub => SUB,
        Mnemonic::Xor => XOR,
        Mnemonic::Cmp => CMP,
        Mnemonic::Test => TEST,
        _ => return None,
    })
}

/// Handlers specialised for register destinations (no AH..BH) with a register or
/// immediate source, by operation and size: the common case, dispatched without
/// looking at operand kinds at run time.
fn select_fast(i: &Instruction) -> Option<Handler> {
    let op = op_of(i.mnemonic())?;
    let probe = Insn::new(i, alu::<ADD>);
    let imm = match (probe.ops[0], probe.ops[1]) {
        (Op::Reg(_, false), Op::Reg(_, false)) => false,
        (Op::Reg(_, false), Op::Imm) => true,
        _ => return None,
    };
    macro_rules! pick {
        ($($o:ident),*) => {
            match (op, probe.osize, imm) {
                $(
                    ($o, 1, false) => alu_r::<$o, 1, false>,
                    ($o, 2, false) => alu_r::<$o, 2, false>,
                    ($o, 4, false) => alu_r::<$o, 4, false>,
                    ($o, 8, false) => alu_r::<$o, 8, false>,
                    ($o, 1, true) => alu_r::<$o, 1, true>,
                    ($o, 2, true) => alu_r::<$o, 2, true>,
                    ($o, 4, true) => alu_r::<$o, 4, true>,
                    ($o, 8, true) => alu_r::<$o, 8, true>,
                )*
                _ => return None,
            }
        };
    }
    Some(pick!(ADD, OR, ADC, SBB, AND, SUB, XOR, CMP, TEST))
}

#[inline(always)]
fn compute<const OP: u8>(f: &mut crate::cpu::flags::Flags, size: u8, a: u64, b: u64) -> u64 {
    match OP {
        ADD => {
            let r = a.wrapping_add(b);
            f.set_add(size, a, b, 0, r);
            r
        }
        ADC => {
            let c = f.cf();
            let r = a.wrapping_add(b).wrapping_add(c);
            f.set_add(size, a, b, c as u8, r);
            r
        }
        SUB | CMP => {
            let r = a.wrapping_sub(b);
            f.set_sub(size, a, b, 0, r);
            r
        }
        SBB => {
            let c = f.cf();
            let r = a.wrapping_sub(b).wrapping_sub(c);
            f.set_sub(size, a, b, c as u8, r);
            r
        }
        AND | TEST => {
            let r = a & b;
            f.set_logic(size, r);
            r
        }
        OR => {
            let r = a | b;
            f.set_logic(size, r);
            r
        }
        _ => {
            let r = a ^ b;
            f.set_logic(size, r);
            r
        }
    }
}

/// `OP reg, reg` or `OP reg, imm` of `SIZE` bytes.
fn alu_r<const OP: u8, const SIZE: u8, const IMM: bool>(m: &mut Machine, i: &Insn) -> ExecResult {
    let mask = size_mask(SIZE);
    let d = i.r[0];
    let a = m.cpu.gpr[usize::from(d)] & mask;
    let b = if IMM { i.imm & mask } else { m.cpu.gpr[usize::from(i.r[1])] & mask };
    let r = compute::<OP>(&mut m.cpu.flags, SIZE, a, b);
    if OP != CMP && OP != TEST {
        m.cpu.set_reg(d, SIZE, false, r);
    }
    Ok(())
}

#[inline(always)]
fn alu<const OP: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let a = if OP == CMP || OP == TEST { read(m, i, 0)? } else { read_rmw(m, i, 0)? };
    let b = read(m, i, 1)?;
    let mask = size_mask(size);
    let res = compute::<OP>(&mut m.cpu.flags, size, a, b);
    if OP == CMP || OP == TEST {
        Ok(())
    } else {
        write(m, i, 0, res & mask)
    }
}

fn incdec<const DEC: bool>(m: &mut Machine, i: &Insn) -> ExecResult {
    let a = read_rmw(m, i, 0)?;
    let r = if DEC { a.wrapping_sub(1) } else { a.wrapping_add(1) } & size_mask(i.osize);
    m.cpu.flags.set_incdec(i.osize, a, r, DEC);
    write(m, i, 0, r)
}

/// The destination is a register other than AH..BH.
fn reg_dest(i: &Instruction) -> bool {
    matches!(Insn::new(i, alu::<ADD>).ops[0], Op::Reg(_, false))
}

fn incdec_r<const DEC: bool>(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let d = i.r[0];
    let a = m.cpu.gpr[usize::from(d)] & size_mask(size);
    let r = if DEC { a.wrapping_sub(1) } else { a.wrapping_add(1) } & size_mask(size);
    m.cpu.flags.set_incdec(size, a, r, DEC);
    m.cpu.set_reg(d, size, false, r);
    Ok(())
}

fn neg(m: &mut Machine, i: &Insn) -> ExecResult {
    let a = read_rmw(m, i, 0)?;
    let r = 0u64.wrapping_sub(a) & size_mask(i.osize);
    // NEG sets flags as 0 - a: CF = (a != 0).
    m.cpu.flags.set_sub(i.osize, 0, a, 0, r);
    write(m, i, 0, r)
}

fn not(m: &mut Machine, i: &Insn) -> ExecResult {
    let a = read_rmw(m, i, 0)?;
    write(m, i, 0, !a)
}
