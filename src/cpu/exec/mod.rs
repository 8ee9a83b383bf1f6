//! Instruction semantics, one file per instruction group (after OpenVMM's `x86emu`).
//!
//! Each group's `select` maps the iced-x86 instructions it implements to a handler; the
//! choice is made once per decoded instruction, so execution dispatches through a
//! function pointer without looking at the encoding again. Handlers work on `u64` values
//! with the operand size from the decoded form.

mod arith;
mod atomic;
mod bcd;
mod bit;
mod cache_hint;
mod control;
mod control_far;
mod convert;
mod fast_syscall;
mod flagops;
mod interrupt_insns;
mod io;
mod iret;
mod misc;
mod monitor;
mod mov;
mod msr_access;
mod muldiv;
mod paging_insns;
mod random;
mod segment_insns;
mod setcc_cmov;
mod shift_rotate;
mod stack;
mod string;
mod system;

pub use monitor::{Monitor, CPUID5_ECX_EMX, CPUID5_ECX_INTERRUPT_BREAK, MONITOR_LINE_SIZE};
pub(crate) use msr_access::{read_msr, write_msr};
pub use random::{next_random, DEFAULT_RNG_SEED};
pub(crate) use system::{paging_changed, write_cr3};

use super::fault::Fault;
use super::flags::size_mask;
use super::insn::{Handler, Insn, Op};
use crate::machine::Machine;
use hvsim_decoder::iced::Instruction;

/// Chooses the handler for a decoded instruction, or `None` if hvsim does not emulate it.
pub fn select(i: &Instruction) -> Option<Handler> {
    mov::select(i)
        .or_else(|| arith::select(i))
        .or_else(|| control::select(i))
        .or_else(|| stack::select(i))
        .or_else(|| misc::select(i))
        .or_else(|| flagops::select(i))
        .or_else(|| shift_rotate::select(i))
        .or_else(|| muldiv::select(i))
        .or_else(|| bcd::select(i))
        .or_else(|| bit::select(i))
        .or_else(|| string::select(i))
        .or_else(|| io::select(i))
        .or_else(|| atomic::select(i))
        .or_else(|| setcc_cmov::select(i))
        .or_else(|| iret::select(i))
        .or_else(|| interrupt_insns::select(i))
        .or_else(|| control_far::select(i))
        .or_else(|| convert::select(i))
        .or_else(|| system::select(i))
        .or_else(|| segment_insns::select(i))
        .or_else(|| msr_access::select(i))
        .or_else(|| cache_hint::select(i))
        .or_else(|| fast_syscall::select(i))
        .or_else(|| random::select(i))
        .or_else(|| paging_insns::select(i))
        .or_else(|| monitor::select(i))
        .or_else(|| crate::nested::svm::instructions::select(i))
        .or_else(|| crate::nested::vmx::instructions::select(i))
}

/// The x86 condition number (the low nibble of Jcc/SETcc/CMOVcc opcodes: O=0, NO=1,
/// B=2, ... G=15) of an instruction's iced condition code, which counts from 1.
pub(crate) fn x86_condition(i: &Instruction) -> Option<u8> {
    match i.condition_code() as u8 {
        cc @ 1..=16 => Some(cc - 1),
        _ => None,
    }
}

/// Reads operand `n` with `size` bytes.
#[inline(always)]
pub(crate) fn read_sized(m: &mut Machine, i: &Insn, n: usize, size: u8) -> Result<u64, Fault> {
    match i.ops[n] {
        Op::Reg(r, hi) => Ok(m.cpu.reg(r, size, hi)),
        Op::Mem => {
            let ea = i.ea(m);
            m.read_mem(i.mem.seg, ea, size)
        }
        Op::Imm => {
            Ok((if n == 0 || i.ops[0] != Op::Imm { i.imm } else { i.imm2 }) & size_mask(size))
        }
        Op::Seg(s) => Ok(u64::from(m.cpu.seg(s).selector)),
        Op::None | Op::Other => Ok(0),
    }
}

/// Reads operand `n` at the instruction's operand size.
#[inline(always)]
pub(crate) fn read(m: &mut Machine, i: &Insn, n: usize) -> Result<u64, Fault> {
    read_sized(m, i, n, i.osize)
}

/// Reads operand `n` as the destination of a read-modify-write (write access checked).
#[inline(always)]
pub(crate) fn read_rmw(m: &mut Machine, i: &Insn, n: usize) -> Result<u64, Fault> {
    match i.ops[n] {
        Op::Mem => {
            let ea = i.ea(m);
            m.read_mem_rmw(i.mem.seg, ea, i.osize)
        }
        _ => read(m, i, n),
    }
}

/// Writes operand `n` with `size` bytes.
#[inline(always)]
pub(crate) fn write_sized(
    m: &mut Machine,
    i: &Insn,
    n: usize,
    size: u8,
    v: u64,
) -> Result<(), Fault> {
    match i.ops[n] {
        Op::Reg(r, hi) => {
            m.cpu.set_reg(r, size, hi, v);
            Ok(())
        }
        Op::Mem => {
            let ea = i.ea(m);
            m.write_mem(i.mem.seg, ea, size, v)
        }
        _ => Ok(()),
    }
}

/// Writes operand `n` at the instruction's operand size.
#[inline(always)]
pub(crate) fn write(m: &mut Machine, i: &Insn, n: usize, v: u64) -> Result<(), Fault> {
    write_sized(m, i, n, i.osize, v)
}

/// The size in bytes of operand `n` as decoded (register or memory width), or the
/// instruction's operand size for other kinds.
pub(crate) fn operand_size(i: &Insn, n: u32) -> u8 {
    match crate::cpu::insn::op_size(&i.iced, n) {
        0 => i.osize,
        s => s,
    }
}
