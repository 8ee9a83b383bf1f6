//! PUSH and POP of general-purpose registers, memory, immediates and segment registers.

use super::{read, write};
use crate::cpu::fault::{ud, ExecResult};
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpu::regs::SegReg;
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic, OpKind};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    let seg = i.op_count() == 1
        && i.op0_kind() == OpKind::Register
        && crate::cpu::insn::seg_of(i.op0_register()).is_some();
    Some(match (i.mnemonic(), seg) {
        (Mnemonic::Push, false) => push,
        (Mnemonic::Pop, false) => pop,
        (Mnemonic::Push, true) => push_seg,
        (Mnemonic::Pop, true) => pop_seg,
        _ => return None,
    })
}

fn push(m: &mut Machine, i: &Insn) -> ExecResult {
    let v = read(m, i, 0)?;
    m.push(v, i.osize)
}

fn pop(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let v = m.stack_peek(0, size)?;
    let old_rsp = m.cpu.gpr[4];
    // SDM Vol. 2B "POP": with RSP as the base of a memory destination, the address is
    // computed after RSP is incremented. A faulting store leaves RSP unchanged.
    m.pop(size)?;
    if let Err(e) = write(m, i, 0, v) {
        m.cpu.gpr[4] = old_rsp;
        return Err(e);
    }
    Ok(())
}

/// The size pushed/popped for a segment register: the operand size, except that PUSH in
/// 64-bit mode defaults to 64 bits.
fn seg_size(_m: &Machine, i: &Insn) -> u8 {
    i.iced.stack_pointer_increment().unsigned_abs() as u8
}

fn push_seg(m: &mut Machine, i: &Insn) -> ExecResult {
    let Op::Seg(s) = i.ops[0] else { return ud() };
    let size = seg_size(m, i);
    let sel = u64::from(m.cpu.seg(s).selector);
    // Intel processors write only the low 16 bits of a 32-bit slot; hvsim writes the
    // zero-extended selector, as AMD documents.
    m.push(sel, size)
}

fn pop_seg(m: &mut Machine, i: &Insn) -> ExecResult {
    let Op::Seg(s) = i.ops[0] else { return ud() };
    if s == SegReg::Cs || (m.cpu.mode == CpuMode::Long64 && s < SegReg::Fs) {
        return ud();
    }
    let size = seg_size(m, i);
    let sel = m.stack_peek(0, size)? as u16;
    m.load_segment(s, sel)?;
    m.pop(size)?;
    // POP SS inhibits interrupts for one instruction (SDM Vol. 2B "POP").
    m.cpu.shadow_pending |= s == SegReg::Ss;
    m.nested.vmx.shadow_by_mov_ss = s == SegReg::Ss;
    Ok(())
}
