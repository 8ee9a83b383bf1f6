//! Bit tests and scans: BT, BTS, BTR, BTC, BSF, BSR, LZCNT, TZCNT, POPCNT.
//!
//! SDM Vol. 2A "BT", "BTC", "BTR", "BTS", "BSF", "BSR", "LZCNT", "POPCNT"; Vol. 2B "TZCNT".
//!
//! Undefined flags (documented choice, see README "Undefined flags"): every flag these
//! instructions leave undefined keeps its previous value (BT*: OF/SF/AF/PF; BSF/BSR:
//! CF/OF/SF/AF/PF; LZCNT/TZCNT: OF/SF/AF/PF). BSF/BSR with a zero source leave the whole
//! destination register unchanged (AMD's documented behaviour), including the upper half
//! of a 64-bit register for 32-bit operands.

use super::{read, read_sized, write};
use crate::cpu::fault::ExecResult;
use crate::cpu::flags::{size_mask, CF, ZF};
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpuid::Feature;
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

const BT: u8 = 0;
const BTS: u8 = 1;
const BTR: u8 = 2;
const BTC: u8 = 3;

const BSF: u8 = 0;
const BSR: u8 = 1;
const TZCNT: u8 = 2;
const LZCNT: u8 = 3;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Bt => bt::<BT>,
        Mnemonic::Bts => bt::<BTS>,
        Mnemonic::Btr => bt::<BTR>,
        Mnemonic::Btc => bt::<BTC>,
        Mnemonic::Bsf => scan::<BSF>,
        Mnemonic::Bsr => scan::<BSR>,
        Mnemonic::Tzcnt => tzcnt,
        Mnemonic::Lzcnt => lzcnt,
        Mnemonic::Popcnt => popcnt,
        _ => return None,
    })
}

/// Sets CF to `cf`, keeping the other arithmetic flags.
#[inline(always)]
fn set_cf(m: &mut Machine, cf: bool) {
    let f = m.cpu.flags.arith();
    m.cpu.flags.set_arith((f & !CF) | (cf as u64 * CF));
}

/// BT/BTS/BTR/BTC r/m, r|imm8.
fn bt<const OP: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let bits = u64::from(size) * 8;
    let reg_offset = matches!(i.ops[1], Op::Reg(..));
    let offset = read_sized(m, i, 1, size)?;
    if i.ops[0] == Op::Mem && reg_offset {
        // SDM BT: with a register bit offset and a memory operand the offset is a signed
        // bit-string index (-2^(w-1) .. 2^(w-1)-1) relative to the operand's address:
        // the operand-size unit at EA + (offset SAR log2(w)) * (w / 8) holds bit
        // (offset MOD w). The address wraps at the address size.
        let sh = 64 - bits as u32;
        let soff = ((offset << sh) as i64) >> sh;
        let unit = soff >> bits.trailing_zeros();
        let disp = unit.wrapping_mul(i64::from(size)) as u64;
        let ea = i.ea(m).wrapping_add(disp) & size_mask(i.asize);
        let bit = offset & (bits - 1);
        let seg = i.mem.seg;
        let v = if OP == BT { m.read_mem(seg, ea, size)? } else { m.read_mem_rmw(seg, ea, size)? };
        let cf = (v >> bit) & 1 != 0;
        if OP != BT {
            m.write_mem(seg, ea, size, modify::<OP>(v, bit))?;
        }
        set_cf(m, cf);
        return Ok(());
    }
    // Register destination, or an immediate offset: the offset is taken modulo the
    // operand width.
    let bit = offset & (bits - 1);
    let v = if OP == BT { read(m, i, 0)? } else { super::read_rmw(m, i, 0)? };
    let cf = (v >> bit) & 1 != 0;
    if OP != BT {
        write(m, i, 0, modify::<OP>(v, bit))?;
    }
    set_cf(m, cf);
    Ok(())
}

#[inline(always)]
fn modify<const OP: u8>(v: u64, bit: u64) -> u64 {
    let b = 1u64 << (bit & 63);
    match OP {
        BTS => v | b,
        BTR => v & !b,
        _ => v ^ b,
    }
}

/// TZCNT, or BSF on a CPU model without BMI1: the F3 prefix is then ignored (SDM Vol. 2B
/// "TZCNT": "On processors that do not support TZCNT, the instruction byte encoding is
/// executed as BSF").
fn tzcnt(m: &mut Machine, i: &Insn) -> ExecResult {
    if m.cpuid.has(Feature::Bmi1) {
        scan::<TZCNT>(m, i)
    } else {
        scan::<BSF>(m, i)
    }
}

/// LZCNT, or BSR on a CPU model without LZCNT (CPUID.80000001H:ECX.LZCNT/ABM; SDM Vol. 2A
/// "LZCNT": "On processors that do not support LZCNT, the instruction byte encoding is
/// executed as BSR").
fn lzcnt(m: &mut Machine, i: &Insn) -> ExecResult {
    if m.cpuid.has(Feature::Abm) {
        scan::<LZCNT>(m, i)
    } else {
        scan::<BSR>(m, i)
    }
}

/// BSF, BSR, TZCNT, LZCNT r, r/m.
fn scan<const OP: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let bits = u32::from(size) * 8;
    let src = read_sized(m, i, 1, size)? & size_mask(size);
    let f = m.cpu.flags.arith();
    match OP {
        BSF | BSR => {
            if src == 0 {
                // SDM: ZF := 1, destination unchanged (undefined on Intel).
                m.cpu.flags.set_arith(f | ZF);
                return Ok(());
            }
            let idx = if OP == BSF { src.trailing_zeros() } else { 63 - src.leading_zeros() };
            write(m, i, 0, u64::from(idx))?;
            m.cpu.flags.set_arith(f & !ZF);
        }
        _ => {
            let n = if OP == TZCNT {
                src.trailing_zeros().min(bits)
            } else {
                src.leading_zeros() - (64 - bits)
            };
            write(m, i, 0, u64::from(n))?;
            // SDM: CF := (source = 0); ZF := (result = 0).
            let cf = (src == 0) as u64 * CF;
            let zf = (n == 0) as u64 * ZF;
            m.cpu.flags.set_arith((f & !(CF | ZF)) | cf | zf);
        }
    }
    Ok(())
}

/// POPCNT r, r/m: ZF := (source = 0); OF, SF, AF, CF, PF := 0.
fn popcnt(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let src = read_sized(m, i, 1, size)? & size_mask(size);
    write(m, i, 0, u64::from(src.count_ones()))?;
    m.cpu.flags.set_arith((src == 0) as u64 * ZF);
    Ok(())
}
