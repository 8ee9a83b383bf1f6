//! Cache-control instructions: WBINVD and INVD. hvsim has no caches, so they only check
//! privilege.

use super::system::require_cpl0;
use crate::cpu::fault::ExecResult;
use crate::cpu::insn::{Handler, Insn};
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Wbinvd | Mnemonic::Invd => cache_flush,
        _ => return None,
    })
}

fn cache_flush(m: &mut Machine, _i: &Insn) -> ExecResult {
    // SDM Vol. 2A "INVD", Vol. 2B "WBINVD": #GP(0) at CPL > 0; no caches to flush.
    require_cpl0(m)
}
