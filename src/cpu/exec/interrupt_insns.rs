//! INT n, INT3, INTO, INT1 (ICEBP) and BOUND: the instructions that raise interrupts and
//! exceptions on purpose (SDM Vol. 2A "INT n/INTO/INT3/INT1", "BOUND").

use crate::cpu::fault::{vector, Exception, ExecResult, Fault};
use crate::cpu::flags::{sign_extend, OF};
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::interrupt::{Event, EventSource};
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Int => int_n,
        Mnemonic::Int3 => int3,
        Mnemonic::Into => into,
        Mnemonic::Int1 => int1,
        Mnemonic::Bound => bound,
        _ => return None,
    })
}

/// Delivers a software event; RIP already points past the instruction, which is the
/// return address. A fault during delivery is a fault of the instruction.
fn software(m: &mut Machine, vector: u8, source: EventSource) -> ExecResult {
    let ev = Event { vector, source, error_code: None };
    if let Some(r) = crate::nested::software_event(m, &ev) {
        return r;
    }
    m.record_event(&ev);
    m.deliver(ev)
}

fn int_n(m: &mut Machine, i: &Insn) -> ExecResult {
    software(m, (i.imm & 0xFF) as u8, EventSource::Software)
}

fn int3(m: &mut Machine, _i: &Insn) -> ExecResult {
    software(m, vector::BP, EventSource::SoftwareException)
}

fn into(m: &mut Machine, _i: &Insn) -> ExecResult {
    if m.cpu.flags.get() & OF == 0 {
        return Ok(());
    }
    software(m, vector::OF, EventSource::SoftwareException)
}

fn int1(m: &mut Machine, _i: &Insn) -> ExecResult {
    software(m, vector::DB, EventSource::Icebp)
}

/// BOUND r16/32, m16&16/m32&32: #BR (a fault) when the signed index is outside the
/// bounds; #UD for a register operand (iced rejects it) and in 64-bit mode.
fn bound(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = i.osize;
    let index = sign_extend(super::read(m, i, 0)?, size) as i64;
    let ea = i.ea(m);
    let lo = sign_extend(m.read_mem(i.mem.seg, ea, size)?, size) as i64;
    let hi_ea = ea.wrapping_add(u64::from(size)) & crate::cpu::flags::size_mask(i.asize);
    let hi = sign_extend(m.read_mem(i.mem.seg, hi_ea, size)?, size) as i64;
    if index < lo || index > hi {
        return Err(Fault::from(Exception::new(vector::BR)));
    }
    Ok(())
}
