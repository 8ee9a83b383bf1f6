//! Cache-control instructions. hvsim models no caches, so these check what the
//! architecture checks and change nothing else:
//!
//! - CLFLUSH, CLFLUSHOPT, CLWB (SDM Vol. 2A "CLFLUSH", "CLFLUSHOPT", "CLWB"): #UD unless
//!   advertised; the address is checked like a byte read (segment limit and type, then
//!   the page walk), so #GP, #SS and #PF apply, but no memory is read.
//! - WBINVD and INVD (SDM Vol. 2A "INVD", Vol. 2B "WBINVD"): #GP(0) at CPL > 0.
//!
//! The PREFETCH hints never fault and are NOPs in `misc.rs`.

use super::system::require_cpl0;
use crate::cpu::fault::{ud, ExecResult};
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpuid::Feature;
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};
use hvsim_mmu::paging::AccessKind;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Clflush => clflush,
        Mnemonic::Clflushopt => clflushopt,
        Mnemonic::Clwb => clwb,
        Mnemonic::Wbinvd | Mnemonic::Invd => cache_flush,
        _ => return None,
    })
}

/// The checks of a cache-line flush of the byte at the memory operand.
fn flush_line(m: &mut Machine, i: &Insn, advertised: Feature) -> ExecResult {
    if !m.cpuid.has(advertised) || i.ops[0] != Op::Mem {
        return ud();
    }
    let ea = i.ea(m);
    let lin = m.linear(i.mem.seg, ea, 1, false)?;
    m.translate(lin, AccessKind::Read)?;
    Ok(())
}

fn clflush(m: &mut Machine, i: &Insn) -> ExecResult {
    flush_line(m, i, Feature::Clfsh)
}

fn clflushopt(m: &mut Machine, i: &Insn) -> ExecResult {
    flush_line(m, i, Feature::Clflushopt)
}

fn clwb(m: &mut Machine, i: &Insn) -> ExecResult {
    flush_line(m, i, Feature::Clwb)
}

fn cache_flush(m: &mut Machine, _i: &Insn) -> ExecResult {
    // #GP(0) at CPL > 0; no caches to write back or invalidate.
    require_cpl0(m)
}
