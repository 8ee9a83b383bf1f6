//! Port I/O: IN, OUT, INS and OUTS (SDM Vol. 2A "IN", "INS", Vol. 2B "OUT", "OUTS").

use super::string::{advance, rep_loop, StrOp};
use crate::cpu::fault::{gp, ExecResult};
use crate::cpu::flags::size_mask;
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpu::regs::{attr, SegReg};
use crate::cpu::segment::sys_type;
use crate::cpu::task::tss32;
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{Code, Instruction, Mnemonic};
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
/// mode and when CPL <= IOPL; otherwise (and always in V86 mode) every bit of the TSS
/// I/O permission bitmap for the `size` ports from `port` must be clear.
fn check_io(m: &mut Machine, port: u16, size: u8) -> ExecResult {
    m.watch_port(port, size);
    match m.cpu.mode {
        CpuMode::Real => Ok(()),
        CpuMode::V86 => io_bitmap_allows(m, port, size),
        _ if m.cpu.cpl <= m.cpu.flags.iopl() => Ok(()),
        _ => io_bitmap_allows(m, port, size),
    }
}

/// The I/O permission bitmap (SDM Vol. 1 §19.5.2 "I/O Permission Bit Map"): TR must be
/// a 32-bit (or 64-bit) TSS, since a 16-bit TSS has no bitmap; the map starts at the
/// 16-bit base at TSS offset 0x66. The processor reads the two bytes holding the access's
/// first bit; any byte beyond the TSS limit counts as all ones. Any set bit is #GP(0).
fn io_bitmap_allows(m: &mut Machine, port: u16, size: u8) -> ExecResult {
    let tr = m.cpu.tr;
    let ty = tr.attr & (attr::S | 0xF);
    if !matches!(ty, sys_type::TSS32_AVAIL | sys_type::TSS32_BUSY) || tr.limit < tss32::MIN_LIMIT {
        return gp(0);
    }
    let map = m.system_read_sized(tr.base.wrapping_add(tss32::IOMAP_BASE), 2)?;
    let at = map + u64::from(port >> 3);
    if at + 1 > u64::from(tr.limit) {
        return gp(0);
    }
    let bits = m.system_read_sized(tr.base.wrapping_add(at), 2)?;
    let mask = ((1u64 << size) - 1) << (port & 7);
    if bits & mask != 0 {
        return gp(0);
    }
    Ok(())
}

/// Ends the run if the guest wrote isa-debug-exit; the OUT has retired.
#[inline]
fn after_out(m: &mut Machine) -> ExecResult {
    match m.take_platform_stop() {
        Some(f) => Err(f),
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
    let size = i.iced.op0_register().size() as u8;
    let p = port(m, i, 1);
    check_io(m, p, size)?;
    let v = m.port_read(p, size);
    m.cpu.set_reg(0, size, false, u64::from(v));
    Ok(())
}

fn out(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.iced.op1_register().size() as u8;
    let p = port(m, i, 0);
    check_io(m, p, size)?;
    let v = m.cpu.reg(0, size, false) as u32;
    if p == hvsim_devices::pc::BIOS_CALL_PORT {
        return crate::firmware::bios::call(m, v);
    }
    m.port_write(p, size, v);
    after_out(m)
}

fn ins(m: &mut Machine, i: &Insn) -> ExecResult {
    let s = StrOp::of(i);
    let p = m.cpu.gpr[2] as u16;
    check_io(m, p, s.size)?;
    rep_loop(m, &s, |m| {
        let di = m.cpu.gpr[7] & s.amask();
        // Check the destination before the port read, which may have side effects.
        let lin = m.linear(SegReg::Es, di, s.size, true)?;
        m.translate(lin, AccessKind::Write)?;
        if s.size > 1 && (lin & 0xFFF) + u64::from(s.size) > 0x1000 {
            m.translate(lin.wrapping_add(u64::from(s.size) - 1), AccessKind::Write)?;
        }
        let v = m.port_read(p, s.size);
        m.write_lin_sized(lin, s.size, u64::from(v))?;
        advance(m, &s, 7);
        Ok(false)
    })
}

fn outs(m: &mut Machine, i: &Insn) -> ExecResult {
    let s = StrOp::of(i);
    let p = m.cpu.gpr[2] as u16;
    check_io(m, p, s.size)?;
    let mut exit = None;
    let r = rep_loop(m, &s, |m| {
        let si = m.cpu.gpr[6] & s.amask();
        let v = m.read_mem(s.src_seg, si, s.size)?;
        m.port_write(p, s.size, (v & size_mask(s.size)) as u32);
        advance(m, &s, 6);
        // A write to isa-debug-exit (or a reset or power-off request) ends the run: the
        // remaining iterations are dropped.
        exit = m.take_platform_stop();
        Ok(exit.is_some())
    });
    match exit {
        Some(f) => Err(f),
        None => r,
    }
}
