//! Port I/O: IN, OUT, INS and OUTS (SDM Vol. 2A "IN", "INS", Vol. 2B "OUT", "OUTS").

use super::string::{advance, rep_loop, StrOp};
use crate::cpu::fault::{gp, ExecResult, Fault};
use crate::cpu::flags::size_mask;
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpu::regs::SegReg;
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{Code, Instruction, Mnemonic};
use hvsim_devices::DebugExit;
use hvsim_mmu::paging::AccessKind;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::In => in_,
        Mnemonic::Out => out,
        _ => match i.code() {
            Code::Insb_m8_DX | Code::Insw_m16_DX | Code::Insd_m32_DX => ins,
            Code::Outsb_DX_m8 | Code::Outsw_DX_m16 | Code::Outsd_DX_m32 => outs,
            _ => return None,
        },
    })
}

/// The I/O permission check (SDM Vol. 1 §19.5 "Protection and I/O"): allowed in real
/// mode and when CPL <= IOPL. Otherwise (and always in V86 mode) the processor consults
/// the TSS I/O permission bitmap; hvsim does not model the bitmap yet (it comes with the
/// system-instructions work), so those accesses raise #GP(0) as if every bit were set.
fn check_io(m: &Machine) -> ExecResult {
    match m.cpu.mode {
        CpuMode::Real => Ok(()),
        CpuMode::V86 => gp(0),
        _ => {
            let iopl = m.cpu.flags.iopl();
            if m.cpu.cpl > iopl {
                gp(0)
            } else {
                Ok(())
            }
        }
    }
}

/// Ends the run if the guest wrote isa-debug-exit; the OUT has retired.
#[inline]
fn after_out(m: &mut Machine) -> ExecResult {
    match m.io.device_mut::<DebugExit>().and_then(|d| d.take()) {
        Some(v) => Err(Fault::DebugExit(v)),
        None => Ok(()),
    }
}

/// The port operand: an 8-bit immediate or DX.
fn port(m: &Machine, i: &Insn, n: usize) -> u16 {
    match i.ops[n] {
        Op::Imm => (i.imm & 0xFF) as u16,
        _ => m.cpu.gpr[2] as u16,
    }
}

fn in_(m: &mut Machine, i: &Insn) -> ExecResult {
    check_io(m)?;
    let size = i.iced.op0_register().size() as u8;
    let p = port(m, i, 1);
    let v = m.io.read(p, size);
    m.cpu.set_reg(0, size, false, u64::from(v));
    Ok(())
}

fn out(m: &mut Machine, i: &Insn) -> ExecResult {
    check_io(m)?;
    let size = i.iced.op1_register().size() as u8;
    let p = port(m, i, 0);
    let v = m.cpu.reg(0, size, false) as u32;
    m.io.write(p, size, v);
    after_out(m)
}

fn ins(m: &mut Machine, i: &Insn) -> ExecResult {
    check_io(m)?;
    let s = StrOp::of(i);
    let p = m.cpu.gpr[2] as u16;
    rep_loop(m, &s, |m| {
        let di = m.cpu.gpr[7] & s.amask();
        // Check the destination before the port read, which may have side effects.
        let lin = m.linear(SegReg::Es, di, s.size, true)?;
        m.translate(lin, AccessKind::Write)?;
        if s.size > 1 && (lin & 0xFFF) + u64::from(s.size) > 0x1000 {
            m.translate(lin.wrapping_add(u64::from(s.size) - 1), AccessKind::Write)?;
        }
        let v = m.io.read(p, s.size);
        m.write_lin_sized(lin, s.size, u64::from(v))?;
        advance(m, &s, 7);
        Ok(false)
    })
}

fn outs(m: &mut Machine, i: &Insn) -> ExecResult {
    check_io(m)?;
    let s = StrOp::of(i);
    let p = m.cpu.gpr[2] as u16;
    let mut exit = None;
    let r = rep_loop(m, &s, |m| {
        let si = m.cpu.gpr[6] & s.amask();
        let v = m.read_mem(s.src_seg, si, s.size)?;
        m.io.write(p, s.size, (v & size_mask(s.size)) as u32);
        advance(m, &s, 6);
        // A write to isa-debug-exit ends the run: the remaining iterations are dropped.
        exit = m.io.device_mut::<DebugExit>().and_then(|d| d.take());
        Ok(exit.is_some())
    });
    match exit {
        Some(v) => Err(Fault::DebugExit(v)),
        None => r,
    }
}
