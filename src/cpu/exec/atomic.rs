//! Exchange and compare-exchange: XCHG, CMPXCHG, CMPXCHG8B, CMPXCHG16B, XADD, plus
//! BSWAP and MOVBE. hvsim runs one vCPU per machine, so each instruction is atomic as
//! executed; LOCK needs no extra work here (its #UD cases are checked centrally).

use super::{read, read_rmw, write};
use crate::cpu::fault::{gp, ud, ExecResult};
use crate::cpu::flags::{size_mask, ZF};
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{Code, Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Xchg => xchg,
        Mnemonic::Cmpxchg => cmpxchg,
        Mnemonic::Cmpxchg8b => cmpxchg8b,
        Mnemonic::Cmpxchg16b => cmpxchg16b,
        Mnemonic::Xadd => xadd,
        Mnemonic::Bswap => bswap,
        Mnemonic::Movbe => movbe,
        _ => return None,
    })
}

fn xchg(m: &mut Machine, i: &Insn) -> ExecResult {
    // The memory operand (if any) is written first, so a fault changes nothing.
    let (mem, reg) = if i.ops[1] == Op::Mem { (1, 0) } else { (0, 1) };
    let a = if i.ops[mem] == Op::Mem {
        let ea = i.ea(m);
        m.read_mem_rmw(i.mem.seg, ea, i.osize)?
    } else {
        read(m, i, mem)?
    };
    let b = read(m, i, reg)?;
    write(m, i, mem, b)?;
    // A register-register XCHG of one register with itself still writes it: in 64-bit
    // mode `xchg eax, eax` (87 C0) zero-extends RAX.
    write(m, i, reg, a)
}

fn cmpxchg(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let dest = read_rmw(m, i, 0)?;
    let src = read(m, i, 1)?;
    let acc = m.cpu.reg(0, size, false);
    let r = acc.wrapping_sub(dest) & size_mask(size);
    if r == 0 {
        write(m, i, 0, src)?;
    } else {
        // SDM Vol. 2A "CMPXCHG": "the destination operand receives a write cycle
        // without regard to the result of the comparison". A register destination is
        // left untouched (not even zero-extended), as hardware does.
        if i.ops[0] == Op::Mem {
            write(m, i, 0, dest)?;
        }
        m.cpu.set_reg(0, size, false, dest);
    }
    m.cpu.flags.set_sub(size, acc, dest, 0, r);
    Ok(())
}

fn set_zf(m: &mut Machine, on: bool) {
    let a = m.cpu.flags.arith();
    m.cpu.flags.set_arith((a & !ZF) | if on { ZF } else { 0 });
}

fn cmpxchg8b(m: &mut Machine, i: &Insn) -> ExecResult {
    if i.ops[0] != Op::Mem {
        return ud();
    }
    let ea = i.ea(m);
    let cur = m.read_mem_rmw(i.mem.seg, ea, 8)?;
    let expect = (m.cpu.gpr[2] & 0xFFFF_FFFF) << 32 | (m.cpu.gpr[0] & 0xFFFF_FFFF);
    if cur == expect {
        let new = (m.cpu.gpr[1] & 0xFFFF_FFFF) << 32 | (m.cpu.gpr[3] & 0xFFFF_FFFF);
        m.write_mem(i.mem.seg, ea, 8, new)?;
        set_zf(m, true);
    } else {
        m.write_mem(i.mem.seg, ea, 8, cur)?;
        m.cpu.set_reg(0, 4, false, cur);
        m.cpu.set_reg(2, 4, false, cur >> 32);
        set_zf(m, false);
    }
    Ok(())
}

fn cmpxchg16b(m: &mut Machine, i: &Insn) -> ExecResult {
    if i.ops[0] != Op::Mem || m.cpu.mode != CpuMode::Long64 {
        return ud();
    }
    let ea = i.ea(m);
    // SDM Vol. 2A "CMPXCHG8B/CMPXCHG16B": #GP(0) if the operand is not 16-byte aligned.
    let lin = m.linear(i.mem.seg, ea, 16, true)?;
    if lin & 15 != 0 {
        return gp(0);
    }
    let hi_ea = ea.wrapping_add(8);
    let lo = m.read_mem_rmw(i.mem.seg, ea, 8)?;
    let hi = m.read_mem_rmw(i.mem.seg, hi_ea, 8)?;
    let g = m.cpu.gpr;
    let (w_lo, w_hi, eq) =
        if lo == g[0] && hi == g[2] { (g[3], g[1], true) } else { (lo, hi, false) };
    m.write_mem(i.mem.seg, ea, 8, w_lo)?;
    m.write_mem(i.mem.seg, hi_ea, 8, w_hi)?;
    if !eq {
        m.cpu.gpr[0] = lo;
        m.cpu.gpr[2] = hi;
    }
    set_zf(m, eq);
    Ok(())
}

fn xadd(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let dest = read_rmw(m, i, 0)?;
    let src = read(m, i, 1)?;
    let sum = dest.wrapping_add(src) & size_mask(size);
    // TEMP = SRC + DEST; SRC = DEST; DEST = TEMP. With one register as both operands
    // the sum wins, so the source is written first.
    if i.ops[0] == Op::Mem {
        write(m, i, 0, sum)?;
        write(m, i, 1, dest)?;
    } else {
        write(m, i, 1, dest)?;
        write(m, i, 0, sum)?;
    }
    m.cpu.flags.set_add(size, dest, src, 0, sum);
    Ok(())
}

fn bswap(m: &mut Machine, i: &Insn) -> ExecResult {
    let v = read(m, i, 0)?;
    let r = match i.osize {
        8 => v.swap_bytes(),
        4 => u64::from((v as u32).swap_bytes()),
        // SDM Vol. 2A "BSWAP": with a 16-bit operand the result is undefined. Intel and
        // AMD parts clear the low word in practice; hvsim does the same.
        _ => 0,
    };
    write(m, i, 0, r)
}

fn movbe(m: &mut Machine, i: &Insn) -> ExecResult {
    let v = read(m, i, 1)?;
    let r = match i.iced.code() {
        Code::Movbe_r16_m16 | Code::Movbe_m16_r16 => u64::from((v as u16).swap_bytes()),
        Code::Movbe_r32_m32 | Code::Movbe_m32_r32 => u64::from((v as u32).swap_bytes()),
        _ => v.swap_bytes(),
    };
    write(m, i, 0, r)
}
