//! Decimal arithmetic adjusts: DAA, DAS, AAA, AAS, AAM, AAD (SDM Vol. 2A, each
//! instruction's "Operation" pseudocode, followed exactly for the defined flags).
//!
//! All are #UD in 64-bit mode (iced does not decode them there; the handlers check too).
//!
//! Undefined flags (documented choices, see README "Undefined flags"):
//! - DAA/DAS: OF is cleared.
//! - AAA/AAS: SF, ZF and PF follow the final AL; OF is cleared.
//! - AAM/AAD: OF, AF and CF are cleared.

use crate::cpu::fault::{ud, vector, Exception, ExecResult, Fault};
use crate::cpu::flags::{szp, AF, CF};
use crate::cpu::insn::{Handler, Insn};
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Daa => daa,
        Mnemonic::Das => das,
        Mnemonic::Aaa => aaa,
        Mnemonic::Aas => aas,
        Mnemonic::Aam => aam,
        Mnemonic::Aad => aad,
        _ => return None,
    })
}

#[inline(always)]
fn check_mode(m: &Machine) -> ExecResult {
    if m.cpu.code_bits == 64 {
        ud()
    } else {
        Ok(())
    }
}

#[inline(always)]
fn al(m: &Machine) -> u8 {
    m.cpu.gpr[0] as u8
}

#[inline(always)]
fn ah(m: &Machine) -> u8 {
    (m.cpu.gpr[0] >> 8) as u8
}

#[inline(always)]
fn set_al(m: &mut Machine, v: u8) {
    m.cpu.set_reg(0, 1, false, u64::from(v));
}

#[inline(always)]
fn set_ax(m: &mut Machine, v: u16) {
    m.cpu.set_reg(0, 2, false, u64::from(v));
}

fn daa(m: &mut Machine, _i: &Insn) -> ExecResult {
    check_mode(m)?;
    let f = m.cpu.flags.arith();
    let old_al = al(m);
    let old_cf = f & CF != 0;
    let mut a = old_al;
    // SDM DAA: the low-nibble step sets CF := old_CF or carry, but the high-nibble step
    // below assigns CF on both of its branches, so only that assignment is visible.
    let af = a & 0x0F > 9 || f & AF != 0;
    if af {
        a = a.wrapping_add(6);
    }
    let cf = old_al > 0x99 || old_cf;
    if cf {
        a = a.wrapping_add(0x60);
    }
    set_al(m, a);
    m.cpu.flags.set_arith(szp(u64::from(a), 1) | (cf as u64 * CF) | (af as u64 * AF));
    Ok(())
}

fn das(m: &mut Machine, _i: &Insn) -> ExecResult {
    check_mode(m)?;
    let f = m.cpu.flags.arith();
    let old_al = al(m);
    let old_cf = f & CF != 0;
    let mut a = old_al;
    let mut cf = false;
    let af;
    if a & 0x0F > 9 || f & AF != 0 {
        let (r, borrow) = a.overflowing_sub(6);
        a = r;
        cf = old_cf || borrow;
        af = true;
    } else {
        af = false;
    }
    // SDM DAS: no ELSE branch here; CF keeps the value from the low-nibble step.
    if old_al > 0x99 || old_cf {
        a = a.wrapping_sub(0x60);
        cf = true;
    }
    set_al(m, a);
    m.cpu.flags.set_arith(szp(u64::from(a), 1) | (cf as u64 * CF) | (af as u64 * AF));
    Ok(())
}

/// AAA (`SUB` = false) and AAS (`SUB` = true).
fn ascii_adjust<const SUB: bool>(m: &mut Machine) -> ExecResult {
    check_mode(m)?;
    let f = m.cpu.flags.arith();
    let ax = m.cpu.gpr[0] as u16;
    let adjust = ax & 0x0F > 9 || f & AF != 0;
    let ax = if !adjust {
        ax
    } else if SUB {
        // SDM AAS: AX := AX - 6; AH := AH - 1.
        ax.wrapping_sub(6).wrapping_sub(0x100)
    } else {
        // SDM AAA: AX := AX + 106H.
        ax.wrapping_add(0x106)
    };
    let ax = ax & 0xFF0F;
    set_ax(m, ax);
    let adj = adjust as u64 * (AF | CF);
    m.cpu.flags.set_arith(szp(u64::from(ax & 0xFF), 1) | adj);
    Ok(())
}

fn aaa(m: &mut Machine, _i: &Insn) -> ExecResult {
    ascii_adjust::<false>(m)
}

fn aas(m: &mut Machine, _i: &Insn) -> ExecResult {
    ascii_adjust::<true>(m)
}

fn aam(m: &mut Machine, i: &Insn) -> ExecResult {
    check_mode(m)?;
    let base = i.imm as u8;
    if base == 0 {
        return Err(Fault::from(Exception::new(vector::DE)));
    }
    let a = al(m);
    let (q, r) = (a / base, a % base);
    set_ax(m, (u16::from(q) << 8) | u16::from(r));
    m.cpu.flags.set_arith(szp(u64::from(r), 1));
    Ok(())
}

fn aad(m: &mut Machine, i: &Insn) -> ExecResult {
    check_mode(m)?;
    let base = i.imm as u8;
    let a = al(m).wrapping_add(ah(m).wrapping_mul(base));
    set_ax(m, u16::from(a));
    m.cpu.flags.set_arith(szp(u64::from(a), 1));
    Ok(())
}
