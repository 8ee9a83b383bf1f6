//! Data movement: MOV, MOVZX, MOVSX, MOVSXD, LEA, and MOV to/from segment registers.

use super::{operand_size, read, read_sized, write, write_sized};
use crate::cpu::fault::{ud, ExecResult};
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpu::regs::SegReg;
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    let probe = Insn::new(i, mov);
    Some(match i.mnemonic() {
        Mnemonic::Mov => match (probe.ops[0], probe.ops[1]) {
            (Op::Seg(_), _) => mov_to_sreg,
            (_, Op::Seg(_)) => mov_from_sreg,
            (Op::Reg(_, false), Op::Reg(_, false)) => mov_rr,
            (Op::Reg(_, false), Op::Imm) => mov_ri,
            (Op::Reg(_, false), Op::Mem) => mov_load,
            (Op::Mem, Op::Reg(_, false)) => mov_store,
            (Op::Reg(..) | Op::Mem, Op::Reg(..) | Op::Mem | Op::Imm) => mov,
            _ => return None,
        },
        Mnemonic::Movzx => movzx,
        Mnemonic::Movsx | Mnemonic::Movsxd => movsx,
        Mnemonic::Lea => lea,
        _ => return None,
    })
}

fn mov(m: &mut Machine, i: &Insn) -> ExecResult {
    let v = read(m, i, 1)?;
    write(m, i, 0, v)
}

fn mov_rr(m: &mut Machine, i: &Insn) -> ExecResult {
    let v = m.cpu.gpr[usize::from(i.r[1])];
    m.cpu.set_reg(i.r[0], i.osize, false, v);
    Ok(())
}

fn mov_ri(m: &mut Machine, i: &Insn) -> ExecResult {
    m.cpu.set_reg(i.r[0], i.osize, false, i.imm);
    Ok(())
}

fn mov_load(m: &mut Machine, i: &Insn) -> ExecResult {
    let ea = i.ea(m);
    let v = m.read_mem(i.mem.seg, ea, i.osize)?;
    m.cpu.set_reg(i.r[0], i.osize, false, v);
    Ok(())
}

fn mov_store(m: &mut Machine, i: &Insn) -> ExecResult {
    let ea = i.ea(m);
    let v = m.cpu.gpr[usize::from(i.r[1])];
    m.write_mem(i.mem.seg, ea, i.osize, v)
}

fn movzx(m: &mut Machine, i: &Insn) -> ExecResult {
    let v = read_sized(m, i, 1, operand_size(i, 1))?;
    write(m, i, 0, v)
}

fn movsx(m: &mut Machine, i: &Insn) -> ExecResult {
    let from = operand_size(i, 1);
    let v = read_sized(m, i, 1, from)?;
    write(m, i, 0, crate::cpu::flags::sign_extend(v, from))
}

fn lea(m: &mut Machine, i: &Insn) -> ExecResult {
    let ea = i.ea(m);
    write(m, i, 0, ea)
}

fn mov_from_sreg(m: &mut Machine, i: &Insn) -> ExecResult {
    let Op::Seg(s) = i.ops[1] else { return ud() };
    let sel = u64::from(m.cpu.seg(s).selector);
    // SDM Vol. 2B "MOV": to a 32/64-bit register the selector is zero-extended; to
    // memory only 16 bits are written.
    match i.ops[0] {
        Op::Mem => write_sized(m, i, 0, 2, sel),
        _ => write(m, i, 0, sel),
    }
}

fn mov_to_sreg(m: &mut Machine, i: &Insn) -> ExecResult {
    let Op::Seg(s) = i.ops[0] else { return ud() };
    // MOV CS is #UD (SDM Vol. 2B "MOV": "If the DS, ES, FS, GS or SS register is being
    // loaded..."; loading CS with MOV is invalid).
    if s == SegReg::Cs {
        return ud();
    }
    let sel = read_sized(m, i, 1, 2)? as u16;
    m.load_segment(s, sel)?;
    // A load of SS inhibits interrupts for one instruction (SDM Vol. 2B "MOV").
    m.cpu.shadow_pending |= s == SegReg::Ss;
    m.nested.vmx.shadow_by_mov_ss = s == SegReg::Ss;
    Ok(())
}
