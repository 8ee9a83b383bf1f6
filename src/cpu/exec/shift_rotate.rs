//! Shifts and rotates: SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR, SHLD, SHRD.
//!
//! SDM Vol. 2B "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR", "SHLD", "SHRD". The count (imm8, CL,
//! or the implicit 1 of the D0/D1 forms, which iced reports as an 8-bit immediate of 1)
//! is masked to 5 bits, or 6 bits for 64-bit operands. A masked count of 0 changes
//! neither the destination nor any flag.
//!
//! Undefined flags (documented choices, see README "Undefined flags"):
//! - OF is defined only for a count of 1; for larger counts hvsim applies the count-1
//!   formula to the final result (and final CF).
//! - AF (shifts, SHLD/SHRD) is cleared.
//! - SHLD/SHRD with a 16-bit operand and a count above 16 (undefined result): the operand
//!   is shifted as the 48-bit pattern dest:src:dest (the P6-family behaviour Bochs
//!   models); CF is the last bit shifted out of that pattern.

use super::{read, read_rmw, read_sized, write};
use crate::cpu::fault::ExecResult;
use crate::cpu::flags::{sign_bit, size_mask, szp, CF, OF};
use crate::cpu::insn::{Handler, Insn, Op};
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

const SHL: u8 = 0;
const SHR: u8 = 1;
const SAR: u8 = 2;
const ROL: u8 = 3;
const ROR: u8 = 4;
const RCL: u8 = 5;
const RCR: u8 = 6;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Shl | Mnemonic::Sal => shift::<SHL>,
        Mnemonic::Shr => shift::<SHR>,
        Mnemonic::Sar => shift::<SAR>,
        Mnemonic::Rol => shift::<ROL>,
        Mnemonic::Ror => shift::<ROR>,
        Mnemonic::Rcl => shift::<RCL>,
        Mnemonic::Rcr => shift::<RCR>,
        Mnemonic::Shld => double::<false>,
        Mnemonic::Shrd => double::<true>,
        _ => return None,
    })
}

/// The count mask for an operand of `size` bytes.
#[inline(always)]
fn count_mask(size: u8) -> u64 {
    if size == 8 {
        0x3F
    } else {
        0x1F
    }
}

/// A count-0 shift or rotate: no flag changes. A memory destination is read and the
/// value discarded (so a not-present page still faults); a register destination is
/// written back unchanged, which for a 32-bit register in 64-bit mode clears bits 63:32,
/// as processors do (checked against the host by `tests/differential.rs`).
fn touch(m: &mut Machine, i: &Insn) -> ExecResult {
    let v = read(m, i, 0)?;
    if i.ops[0] != Op::Mem {
        write(m, i, 0, v)?;
    }
    Ok(())
}

fn shift<const OP: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let count = read_sized(m, i, 1, 1)? & count_mask(size);
    if count == 0 {
        // SDM: "If the count is 0, the flags are not affected."
        return touch(m, i);
    }
    let mask = size_mask(size);
    let w = u64::from(size) * 8;
    let sb = sign_bit(size);
    let a = read_rmw(m, i, 0)? & mask;
    let old = m.cpu.flags.arith();
    let old_cf = old & CF;
    let msb = |v: u64| (v & sb != 0) as u64;
    let (res, flags) = match OP {
        SHL => {
            let res = (a << count) & mask;
            let cf = if count <= w { (a >> (w - count)) & 1 } else { 0 };
            // SDM: OF := MSB(DEST) XOR CF (count 1; applied to every count).
            let of = msb(res) ^ cf;
            (res, szp(res, size) | (cf * CF) | (of * OF))
        }
        SHR => {
            let res = a >> count;
            let cf = if count - 1 < w { (a >> (count - 1)) & 1 } else { 0 };
            // SDM: OF := MSB(tempDEST), the original operand.
            let of = msb(a);
            (res, szp(res, size) | (cf * CF) | (of * OF))
        }
        SAR => {
            let sh = 64 - w as u32;
            let sa = ((a << sh) as i64) >> sh; // sign-extended operand
            let res = (sa >> count.min(63)) as u64 & mask;
            let cf = (sa >> (count - 1).min(63)) as u64 & 1;
            // SDM: OF := 0 for SAR.
            (res, szp(res, size) | (cf * CF))
        }
        ROL | ROR => {
            // SDM: tempCOUNT := (COUNT & COUNTMASK) MOD SIZE; CF/OF still update when the
            // masked count is non-zero even if tempCOUNT is 0. Only CF and OF change.
            let n = count % w;
            let res = if n == 0 {
                a
            } else if OP == ROL {
                ((a << n) | (a >> (w - n))) & mask
            } else {
                ((a >> n) | (a << (w - n))) & mask
            };
            let (cf, of) = if OP == ROL {
                let cf = res & 1;
                (cf, msb(res) ^ cf)
            } else {
                (msb(res), msb(res) ^ msb(res << 1))
            };
            (res, (old & !(CF | OF)) | (cf * CF) | (of * OF))
        }
        _ => {
            // RCL/RCR rotate the (w+1)-bit value CF:DEST. SDM: the masked count is taken
            // mod 9 / mod 17 for 8- / 16-bit operands.
            let n = match size {
                1 => count % 9,
                2 => count % 17,
                _ => count,
            };
            let wide = u128::from(a) | (u128::from(old_cf) << w);
            let wmask = (1u128 << (w + 1)) - 1;
            let r = if n == 0 {
                wide
            } else if OP == RCL {
                ((wide << n) | (wide >> (w + 1 - n))) & wmask
            } else {
                ((wide >> n) | (wide << (w + 1 - n))) & wmask
            };
            let res = r as u64 & mask;
            let cf = (r >> w) as u64 & 1;
            let of = if OP == RCL {
                // SDM RCL: OF := MSB(DEST) XOR CF, after the rotate.
                msb(res) ^ cf
            } else {
                // SDM RCR: OF := MSB(DEST) XOR CF, before the rotate.
                msb(a) ^ old_cf
            };
            (res, (old & !(CF | OF)) | (cf * CF) | (of * OF))
        }
    };
    write(m, i, 0, res)?;
    m.cpu.flags.set_arith(flags);
    Ok(())
}

/// SHLD (`RIGHT` = false) and SHRD (`RIGHT` = true): dest, src, imm8/CL.
fn double<const RIGHT: bool>(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let count = u32::from(read_sized(m, i, 2, 1)? as u8) & count_mask(size) as u32;
    if count == 0 {
        return touch(m, i);
    }
    let mask = size_mask(size);
    let w = u32::from(size) * 8;
    let dest = read_rmw(m, i, 0)? & mask;
    let src = read_sized(m, i, 1, size)? & mask;
    // The bit pattern the count shifts through, as a (pw)-bit number.
    let (p, pw): (u128, u32) = if size == 2 {
        // 16-bit counts may reach 31 (undefined result): use dest:src:dest.
        ((u128::from(dest) << 32) | (u128::from(src) << 16) | u128::from(dest), 48)
    } else if RIGHT {
        ((u128::from(src) << w) | u128::from(dest), 2 * w)
    } else {
        ((u128::from(dest) << w) | u128::from(src), 2 * w)
    };
    let (res, cf) = if RIGHT {
        ((p >> count) as u64 & mask, (p >> (count - 1)) as u64 & 1)
    } else {
        // count <= pw - w always holds (16: 31 <= 32, 32: 31 <= 32, 64: 63 <= 64).
        ((p >> (pw - w - count)) as u64 & mask, (p >> (pw - count)) as u64 & 1)
    };
    let sb = sign_bit(size);
    // SDM: for a 1-bit shift OF is set if a sign change occurred (applied to every count).
    let of = ((res ^ dest) & sb != 0) as u64;
    write(m, i, 0, res)?;
    m.cpu.flags.set_arith(szp(res, size) | (cf * CF) | (of * OF));
    Ok(())
}
