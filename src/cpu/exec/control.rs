//! Near control transfer: JMP, Jcc, CALL and RET (near forms).

use super::read;
use crate::cpu::fault::{gp, ExecResult};
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{FlowControl, Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    let far =
        i.is_jmp_far() || i.is_jmp_far_indirect() || i.is_call_far() || i.is_call_far_indirect();
    if far {
        return None;
    }
    Some(match i.mnemonic() {
        Mnemonic::Jmp => match i.flow_control() {
            FlowControl::UnconditionalBranch => jmp_rel,
            _ => jmp_indirect,
        },
        Mnemonic::Call => match i.flow_control() {
            FlowControl::Call => call_rel,
            _ => call_indirect,
        },
        Mnemonic::Ret => ret_near,
        _ if i.is_jcc_short_or_near() => jcc_handler(super::x86_condition(i)?)?,
        _ => return None,
    })
}

fn jcc_handler(cc: u8) -> Option<Handler> {
    Some(match cc + 1 {
        1 => jcc::<0>,
        2 => jcc::<1>,
        3 => jcc::<2>,
        4 => jcc::<3>,
        5 => jcc::<4>,
        6 => jcc::<5>,
        7 => jcc::<6>,
        8 => jcc::<7>,
        9 => jcc::<8>,
        10 => jcc::<9>,
        11 => jcc::<10>,
        12 => jcc::<11>,
        13 => jcc::<12>,
        14 => jcc::<13>,
        15 => jcc::<14>,
        16 => jcc::<15>,
        _ => return None,
    })
}

/// Sets RIP to a near branch target after [`check_target`].
#[inline(always)]
pub(crate) fn branch_to(m: &mut Machine, target: u64) -> ExecResult {
    check_target(m, target)?;
    m.cpu.rip = target;
    Ok(())
}

fn jmp_rel(m: &mut Machine, i: &Insn) -> ExecResult {
    branch_to(m, i.imm2)
}

#[inline(always)]
fn jcc<const CC: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    if m.cpu.flags.cond(CC) {
        branch_to(m, i.imm2)
    } else {
        Ok(())
    }
}

fn jmp_indirect(m: &mut Machine, i: &Insn) -> ExecResult {
    let t = read(m, i, 0)?;
    branch_to(m, t)
}

fn call_rel(m: &mut Machine, i: &Insn) -> ExecResult {
    let ret = m.cpu.rip;
    let t = i.imm2;
    check_target(m, t)?;
    m.push(ret, stack_operand_size(m, i))?;
    m.cpu.rip = t;
    Ok(())
}

fn call_indirect(m: &mut Machine, i: &Insn) -> ExecResult {
    let ret = m.cpu.rip;
    let t = read(m, i, 0)?;
    check_target(m, t)?;
    m.push(ret, i.osize)?;
    m.cpu.rip = t;
    Ok(())
}

/// The size of the return address a near CALL pushes / RET pops.
fn stack_operand_size(_m: &Machine, i: &Insn) -> u8 {
    use hvsim_decoder::iced::Code;
    match i.iced.code() {
        Code::Call_rel16 | Code::Retnw | Code::Retnw_imm16 => 2,
        Code::Call_rel32_32 | Code::Retnd | Code::Retnd_imm16 => 4,
        _ => 8,
    }
}

/// Checks a near branch target against the mode's rules: in 64-bit mode a non-canonical
/// target raises #GP(0); elsewhere a target beyond the CS limit does (SDM Vol. 2A "JMP",
/// "Protected Mode Exceptions").
#[inline(always)]
pub(crate) fn check_target(m: &Machine, t: u64) -> ExecResult {
    if m.cpu.mode == CpuMode::Long64 {
        if !m.canonical(t) {
            return gp(0);
        }
    } else if t > u64::from(m.cpu.seg[1].limit) {
        return gp(0);
    }
    Ok(())
}

fn ret_near(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = stack_operand_size(m, i);
    let t = m.stack_peek(0, size)?;
    check_target(m, t)?;
    m.pop(size)?;
    if i.ops[0] == Op::Imm {
        m.sp_add(i.imm & 0xFFFF);
    }
    m.cpu.rip = t;
    Ok(())
}
