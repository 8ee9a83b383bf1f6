//! Multiplication and division: MUL, IMUL (one-, two- and three-operand forms), DIV,
//! IDIV at 8, 16, 32 and 64 bits.
//!
//! SDM Vol. 2A "MUL", "IMUL", "DIV", "IDIV". The one-operand forms use the accumulator
//! pair: AX <- AL * r/m8, DX:AX, EDX:EAX, RDX:RAX for the wider sizes.
//!
//! Undefined flags (documented choices, see README "Undefined flags"):
//! - MUL/IMUL: SF, ZF and PF follow the low half of the result (the destination for the
//!   two- and three-operand forms); AF is cleared.
//! - DIV/IDIV: all six arithmetic flags are left unchanged.

use super::{read, read_sized, write};
use crate::cpu::fault::{vector, Exception, ExecResult, Fault};
use crate::cpu::flags::{size_mask, szp, CF, OF};
use crate::cpu::insn::{Handler, Insn};
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

/// RAX and RDX.
const RAX: u8 = 0;
const RDX: u8 = 2;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match (i.mnemonic(), i.op_count()) {
        (Mnemonic::Mul, 1) => mul1::<false>,
        (Mnemonic::Imul, 1) => mul1::<true>,
        (Mnemonic::Imul, 2 | 3) => imul_n,
        (Mnemonic::Div, 1) => div::<false>,
        (Mnemonic::Idiv, 1) => div::<true>,
        _ => return None,
    })
}

#[inline(always)]
fn de() -> ExecResult {
    Err(Fault::from(Exception::new(vector::DE)))
}

/// Sign-extends the low `size` bytes of `v`.
#[inline(always)]
fn sext(v: u64, size: u8) -> i64 {
    crate::cpu::flags::sign_extend(v, size) as i64
}

/// Reads the double-width accumulator dividend (AX, DX:AX, EDX:EAX, RDX:RAX).
fn dividend(m: &Machine, size: u8) -> u128 {
    if size == 1 {
        u128::from(m.cpu.reg(RAX, 2, false))
    } else {
        let lo = u128::from(m.cpu.reg(RAX, size, false));
        let hi = u128::from(m.cpu.reg(RDX, size, false));
        (hi << (8 * u32::from(size))) | lo
    }
}

/// Writes a double-width product: AX for bytes, else rDX:rAX.
fn set_product(m: &mut Machine, size: u8, p: u128) {
    let w = 8 * u32::from(size);
    if size == 1 {
        m.cpu.set_reg(RAX, 2, false, p as u64 & 0xFFFF);
    } else {
        m.cpu.set_reg(RAX, size, false, p as u64 & size_mask(size));
        m.cpu.set_reg(RDX, size, false, (p >> w) as u64 & size_mask(size));
    }
}

/// MUL / one-operand IMUL.
fn mul1<const SIGNED: bool>(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let mask = size_mask(size);
    let w = 8 * u32::from(size);
    let src = read(m, i, 0)? & mask;
    let acc = m.cpu.reg(RAX, size, false);
    let (p, overflow) = if SIGNED {
        let p = i128::from(sext(acc, size)) * i128::from(sext(src, size));
        // SDM IMUL: CF = OF = 0 iff the product equals the sign extension of its low half.
        let lo = sext(p as u64 & mask, size);
        (p as u128, i128::from(lo) != p)
    } else {
        let p = u128::from(acc) * u128::from(src);
        // SDM MUL: CF = OF = 0 iff the upper half of the product is zero.
        (p, (p >> w) != 0)
    };
    set_product(m, size, p);
    let of = overflow as u64;
    m.cpu.flags.set_arith(szp(p as u64, size) | (of * CF) | (of * OF));
    Ok(())
}

/// Two- and three-operand IMUL: dest = src1 * src2, truncated to the operand size.
fn imul_n(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let mask = size_mask(size);
    let (a, b) = if i.iced.op_count() == 3 {
        (read(m, i, 1)?, read(m, i, 2)?)
    } else {
        (read(m, i, 0)?, read_sized(m, i, 1, size)?)
    };
    let p = i128::from(sext(a, size)) * i128::from(sext(b, size));
    let res = p as u64 & mask;
    let overflow = i128::from(sext(res, size)) != p;
    write(m, i, 0, res)?;
    let of = overflow as u64;
    m.cpu.flags.set_arith(szp(res, size) | (of * CF) | (of * OF));
    Ok(())
}

/// DIV / IDIV. Faults with #DE before changing any state.
fn div<const SIGNED: bool>(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let mask = size_mask(size);
    let w = 8 * u32::from(size);
    let divisor = read(m, i, 0)? & mask;
    if divisor == 0 {
        return de();
    }
    let n = dividend(m, size);
    let (q, r) = if SIGNED {
        // Sign-extend the 2w-bit dividend to i128.
        let sh = 128 - 2 * w;
        let n = ((n << sh) as i128) >> sh;
        let d = i128::from(sext(divisor, size));
        // Only i128::MIN / -1 (64-bit operands) overflows i128: that is a #DE anyway.
        let (Some(q), Some(r)) = (n.checked_div(d), n.checked_rem(d)) else {
            return de();
        };
        // SDM IDIV: #DE if the quotient does not fit the signed destination
        // (this includes INT_MIN / -1 at every width).
        let lim = 1i128 << (w - 1);
        if q >= lim || q < -lim {
            return de();
        }
        (q as u64 & mask, r as u64 & mask)
    } else {
        let d = u128::from(divisor);
        let (q, r) = (n / d, n % d);
        // SDM DIV: #DE if the quotient exceeds the destination.
        if q > u128::from(mask) {
            return de();
        }
        (q as u64, r as u64)
    };
    if size == 1 {
        m.cpu.set_reg(RAX, 2, false, (r << 8) | q);
    } else {
        m.cpu.set_reg(RAX, size, false, q);
        m.cpu.set_reg(RDX, size, false, r);
    }
    Ok(())
}
