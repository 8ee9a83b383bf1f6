//! INT 11h (equipment list) and INT 12h (base memory size). Both return what POST
//! stored in the BDA, so a guest that edits the BDA sees its own values, as on a PC.

use super::{bda, phys_u16, reg, Call, Outcome, Regs};
use crate::cpu::fault::Fault;
use crate::machine::Machine;

/// Equipment word bit 0: diskette drives present.
pub const EQ_FLOPPY: u16 = 1 << 0;
/// Bit 1: math coprocessor present.
pub const EQ_FPU: u16 = 1 << 1;
/// Bits 5:4: initial video mode; 10b = 80x25 colour.
pub const EQ_VIDEO_80X25_COLOR: u16 = 0b10 << 4;
/// Bits 7:6: number of diskette drives minus one.
pub const EQ_FLOPPIES_SHIFT: u16 = 6;
/// Bits 11:9: number of serial ports.
pub const EQ_SERIAL_SHIFT: u16 = 9;

/// The equipment word POST stores (the CPU models all have an x87 FPU).
pub fn equipment_word(floppies: u8, serial_ports: u16) -> u16 {
    let mut w = EQ_FPU | EQ_VIDEO_80X25_COLOR | ((serial_ports & 7) << EQ_SERIAL_SHIFT);
    if floppies > 0 {
        w |= EQ_FLOPPY | ((u16::from(floppies) - 1) << EQ_FLOPPIES_SHIFT);
    }
    w
}

/// INT 11h: AX = the equipment word.
pub(super) fn int11(m: &mut Machine, _c: &mut Call) -> Result<Outcome, Fault> {
    let w = phys_u16(m, bda::EQUIPMENT);
    m.set_r16(reg::AX, w);
    Ok(Outcome::Done)
}

/// INT 12h: AX = KiB of conventional memory below the EBDA.
pub(super) fn int12(m: &mut Machine, _c: &mut Call) -> Result<Outcome, Fault> {
    let kb = phys_u16(m, bda::MEMORY_KB);
    m.set_r16(reg::AX, kb);
    Ok(Outcome::Done)
}
