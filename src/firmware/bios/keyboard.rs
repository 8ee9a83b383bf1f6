//! INT 16h keyboard services, fed from console input.
//!
//! Input bytes (from `Machine::push_console_input`, which the console's serial input
//! feeds) become keystrokes, scan code << 8 | ASCII with US-layout set 1 scan codes, in
//! the BDA keyboard buffer, a ring of 16 words between the offsets at 0040:0080 and
//! 0040:0082 with head and tail at 0040:001A and 0040:001C, as on a PC, so software
//! that reads or flushes the buffer directly works. Keystrokes that do not fit wait in
//! the BIOS and enter the buffer as it empties. A wait for a key (AH=00h/10h) is a
//! deterministic loop of the stub on the instruction clock.

use super::{bda, phys_u16, reg, Bios, Call, Outcome, Regs};
use crate::cpu::fault::{unsupported, Fault};
use crate::machine::Machine;
use hvsim_mmu::Gpa;

/// Scan codes of the US layout (set 1) for ASCII 0x20..=0x7E; the shifted characters
/// share their key's code.
const PRINTABLE_SCAN: [u8; 95] = [
    0x39, 0x02, 0x28, 0x04, 0x05, 0x06, 0x08, 0x28, // space ! " # $ % & '
    0x0A, 0x0B, 0x09, 0x0D, 0x33, 0x0C, 0x34, 0x35, // ( ) * + , - . /
    0x0B, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 0-7
    0x09, 0x0A, 0x27, 0x27, 0x33, 0x0D, 0x34, 0x35, // 8 9 : ; < = > ?
    0x03, 0x1E, 0x30, 0x2E, 0x20, 0x12, 0x21, 0x22, // @ A-G
    0x23, 0x17, 0x24, 0x25, 0x26, 0x32, 0x31, 0x18, // H-O
    0x19, 0x10, 0x13, 0x1F, 0x14, 0x16, 0x2F, 0x11, // P-W
    0x2D, 0x15, 0x2C, 0x1A, 0x2B, 0x1B, 0x07, 0x0C, // X Y Z [ \ ] ^ _
    0x29, 0x1E, 0x30, 0x2E, 0x20, 0x12, 0x21, 0x22, // ` a-g
    0x23, 0x17, 0x24, 0x25, 0x26, 0x32, 0x31, 0x18, // h-o
    0x19, 0x10, 0x13, 0x1F, 0x14, 0x16, 0x2F, 0x11, // p-w
    0x2D, 0x15, 0x2C, 0x1A, 0x2B, 0x1B, 0x29, // x y z { | } ~
];

/// Scan codes of the letter keys a-z (for Ctrl-letter).
const LETTER_SCAN: [u8; 26] = [
    0x1E, 0x30, 0x2E, 0x20, 0x12, 0x21, 0x22, 0x23, 0x17, 0x24, 0x25, 0x26, 0x32, 0x31, 0x18, 0x19,
    0x10, 0x13, 0x1F, 0x14, 0x16, 0x2F, 0x11, 0x2D, 0x15, 0x2C,
];

/// Enter: scan 1Ch, CR.
pub const KEY_ENTER: u16 = 0x1C0D;
/// Backspace: scan 0Eh, BS.
pub const KEY_BACKSPACE: u16 = 0x0E08;
/// Tab: scan 0Fh, HT.
pub const KEY_TAB: u16 = 0x0F09;
/// Escape: scan 01h, ESC.
pub const KEY_ESCAPE: u16 = 0x011B;

/// The keystroke a console byte stands for. A terminal sends CR or LF for Enter and
/// DEL or BS for Backspace; control characters are Ctrl plus a letter; bytes above
/// 0x7E have no key and pass with scan code 0 (as Alt+keypad entry produces).
pub fn keystroke(b: u8) -> u16 {
    match b {
        b'\r' | b'\n' => KEY_ENTER,
        0x08 | 0x7F => KEY_BACKSPACE,
        b'\t' => KEY_TAB,
        0x1B => KEY_ESCAPE,
        0x20..=0x7E => (u16::from(PRINTABLE_SCAN[usize::from(b - 0x20)]) << 8) | u16::from(b),
        0x01..=0x1A => (u16::from(LETTER_SCAN[usize::from(b - 1)]) << 8) | u16::from(b),
        _ => u16::from(b),
    }
}

fn buffer_bounds(m: &mut Machine) -> (u16, u16) {
    let start = phys_u16(m, bda::KBD_BUFFER_START);
    let end = phys_u16(m, bda::KBD_BUFFER_END);
    // A guest that broke the bounds gets the default buffer.
    if start >= end || end > 0x100 || (end - start) % 2 != 0 || end - start < 4 {
        (bda::KBD_BUFFER_OFFSET, bda::KBD_BUFFER_END_OFFSET)
    } else {
        (start, end)
    }
}

/// The ring slot after `off`; an offset outside the ring (a guest wrote the pointers)
/// restarts at its start.
fn advance(off: u16, (start, end): (u16, u16)) -> u16 {
    if off < start || off.saturating_add(2) >= end {
        start
    } else {
        off + 2
    }
}

fn slot_gpa(off: u16) -> u64 {
    (u64::from(bda::SEGMENT) << 4) + u64::from(off)
}

/// Moves pending keystrokes into the BDA buffer while it has room.
fn refill(m: &mut Machine, bios: &mut Bios) {
    let bounds = buffer_bounds(m);
    while let Some(&k) = bios.pending_keys.front() {
        let tail = phys_u16(m, bda::KBD_TAIL);
        let head = phys_u16(m, bda::KBD_HEAD);
        let next = advance(tail, bounds);
        if next == head || tail < bounds.0 || tail >= bounds.1 {
            break; // full (one slot stays free to tell full from empty), or a bad tail
        }
        m.phys_write(Gpa(slot_gpa(tail)), &k.to_le_bytes());
        m.phys_write(Gpa(bda::KBD_TAIL), &next.to_le_bytes());
        bios.pending_keys.pop_front();
    }
}

/// Queues console input as keystrokes.
pub(super) fn push_input(m: &mut Machine, bios: &mut Bios, bytes: &[u8]) {
    bios.pending_keys.extend(bytes.iter().map(|&b| keystroke(b)));
    refill(m, bios);
}

/// The keystroke at the head of the buffer, if any.
fn peek(m: &mut Machine) -> Option<u16> {
    let head = phys_u16(m, bda::KBD_HEAD);
    let tail = phys_u16(m, bda::KBD_TAIL);
    (head != tail).then(|| phys_u16(m, slot_gpa(head)))
}

fn pop(m: &mut Machine) {
    let bounds = buffer_bounds(m);
    let head = phys_u16(m, bda::KBD_HEAD);
    m.phys_write(Gpa(bda::KBD_HEAD), &advance(head, bounds).to_le_bytes());
}

/// Pushes a keystroke into the buffer (AH=05h); false if it is full.
fn store(m: &mut Machine, key: u16) -> bool {
    let bounds = buffer_bounds(m);
    let tail = phys_u16(m, bda::KBD_TAIL);
    let next = advance(tail, bounds);
    if next == phys_u16(m, bda::KBD_HEAD) {
        return false;
    }
    m.phys_write(Gpa(slot_gpa(tail)), &key.to_le_bytes());
    m.phys_write(Gpa(bda::KBD_TAIL), &next.to_le_bytes());
    true
}

/// INT 16h.
pub(super) fn int16(m: &mut Machine, c: &mut Call) -> Result<Outcome, Fault> {
    refill(m, c.bios);
    let ah = m.hi(reg::AX);
    match ah {
        // Read a keystroke, waiting for one: AX = scan code, ASCII.
        0x00 | 0x10 => match peek(m) {
            Some(k) => {
                pop(m);
                refill(m, c.bios);
                m.set_r16(reg::AX, k);
            }
            None => return Ok(Outcome::Wait),
        },
        // Check for a keystroke: ZF = 1 if none, else ZF = 0 and AX = the keystroke,
        // which stays in the buffer.
        0x01 | 0x11 => match peek(m) {
            Some(k) => {
                m.set_r16(reg::AX, k);
                c.set_zf(false);
            }
            None => c.set_zf(true),
        },
        // Shift flags: AL (and for 12h AH) from the BDA.
        0x02 => {
            let f = super::phys_u8(m, bda::KBD_FLAGS);
            m.set_lo(reg::AX, f);
        }
        0x12 => {
            let f = super::phys_u8(m, bda::KBD_FLAGS);
            let f2 = super::phys_u8(m, bda::KBD_FLAGS2);
            m.set_r16(reg::AX, u16::from_le_bytes([f, f2]));
        }
        // Typematic rate: nothing to program.
        0x03 => {}
        // Store a keystroke CH = scan, CL = ASCII: AL = 0 stored, 1 buffer full.
        0x05 => {
            let stored = store(m, m.r16(reg::CX));
            m.set_lo(reg::AX, u8::from(!stored));
        }
        _ => return unsupported(format!("BIOS INT 16h AH={ah:02X}h")),
    }
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_pointers_from_the_guest_cannot_overflow() {
        let ring = (bda::KBD_BUFFER_OFFSET, bda::KBD_BUFFER_END_OFFSET);
        assert_eq!(advance(0x1E, ring), 0x20);
        assert_eq!(advance(0x3C, ring), 0x1E);
        assert_eq!(advance(0xFFFF, ring), 0x1E);
        assert_eq!(advance(0x02, ring), 0x1E);
    }

    #[test]
    fn keystrokes_of_console_bytes() {
        assert_eq!(keystroke(b'a'), 0x1E61);
        assert_eq!(keystroke(b'A'), 0x1E41);
        assert_eq!(keystroke(b'1'), 0x0231);
        assert_eq!(keystroke(b'!'), 0x0221);
        assert_eq!(keystroke(b' '), 0x3920);
        assert_eq!(keystroke(b'z'), 0x2C7A);
        assert_eq!(keystroke(b'~'), 0x297E);
        assert_eq!(keystroke(b'\n'), KEY_ENTER);
        assert_eq!(keystroke(0x7F), KEY_BACKSPACE);
        assert_eq!(keystroke(0x03), 0x2E03); // Ctrl-C
    }
}
