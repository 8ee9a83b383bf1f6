//! Integer arithmetic and logic: ADD, ADC, SUB, SBB, CMP, AND, OR, XOR, TEST, INC, DEC,
//! NEG, NOT. Flags are recorded lazily (see `cpu::flags`).

use super::{read, read_rmw, write};
use crate::cpu::fault::ExecResult;
use crate::cpu::flags::size_mask;
use crate::cpu::insn::{Handler, Insn};
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
        Mnemonic::Inc => incdec::<false>,
        Mnemonic::Dec => incdec::<true>,
        Mnemonic::Neg => neg,
        Mnemonic::Not => not,
        _ => return None,
    })
}

#[inline(always)]
fn alu<const OP: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let a = if OP == CMP || OP == TEST {
        read(m, i, 0)?
    } else {
        read_rmw(m, i, 0)?
    };
    let b = read(m, i, 1)?;
    let mask = size_mask(size);
    let f = &mut m.cpu.flags;
    let res = match OP {
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
    };
    if OP == CMP || OP == TEST {
        Ok(())
    } else {
        write(m, i, 0, res & mask)
    }
}

fn incdec<const DEC: bool>(m: &mut Machine, i: &Insn) -> ExecResult {
    let a = read_rmw(m, i, 0)?;
    let r = if DEC {
        a.wrapping_sub(1)
    } else {
        a.wrapping_add(1)
    } & size_mask(i.osize);
    m.cpu.flags.set_incdec(i.osize, a, r, DEC);
    write(m, i, 0, r)
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
