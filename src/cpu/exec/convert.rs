//! Placeholder: this group's instructions are not emulated yet.

use crate::cpu::insn::Handler;
use hvsim_decoder::iced::Instruction;

pub(super) fn select(_i: &Instruction) -> Option<Handler> {
    None
}
