//! INT 10h video services for text-mode software, with output to the console.
//!
//! hvsim has no display: characters that INT 10h writes go to the console sink (COM1's
//! output, the same stream as the serial console, so `Machine::serial_output()` shows
//! them), as plain bytes without terminal escape sequences. The cursor, mode and page
//! live in the BDA, as on a PC, so queries see what was set. Text modes (0-3, 7) can be
//! set; graphics modes are not emulated and stop the run as unsupported. VBE (AH=4Fh)
//! answers "function failed", which tells software there is no VESA BIOS.

use super::{bda, phys_u16, phys_u8, read_guest, reg, seg_lin, Call, Outcome, Regs};
use crate::cpu::fault::{unsupported, Fault};
use crate::cpu::regs::SegReg;
use crate::machine::Machine;
use hvsim_mmu::Gpa;

/// The 80x25 16-colour text mode every PC starts in.
pub const MODE_TEXT_80X25: u8 = 0x03;
/// Text modes INT 10h AH=00h accepts: 40x25 (0, 1), 80x25 (2, 3), monochrome 80x25 (7).
pub const TEXT_MODES: [u8; 5] = [0x00, 0x01, 0x02, 0x03, 0x07];
/// Rows in the text modes.
pub const ROWS: u8 = 25;
/// The default cursor shape: scan lines 6-7.
pub const CURSOR_SHAPE_DEFAULT: u16 = 0x0607;
/// INT 10h AX=1A00h: the display combination code "VGA with analog colour display".
pub const DCC_VGA_COLOR: u8 = 0x08;
/// The value AL holds after a supported AH=1Ah call.
pub const FUNCTION_SUPPORTED_1A: u8 = 0x1A;
/// VBE: AX after a call that failed (AL = 4Fh "supported", AH = 01h "failed").
pub const VBE_FAILED: u16 = 0x014F;
/// Colour CRTC base port.
const CRTC_COLOR: u16 = 0x3D4;
/// Character height of the VGA 80x25 font.
const CHAR_HEIGHT: u16 = 16;
/// The default EGA/VGA switch settings reported by AH=12h BL=10h.
const EGA_SWITCHES: u8 = 0x09;
/// AH=12h BL=10h: BL = 3, 256 KiB of video memory.
const EGA_MEMORY_256K: u8 = 0x03;

/// Sends bytes to the console sink (COM1's transmitter).
pub(crate) fn console_write(m: &mut Machine, bytes: &[u8]) {
    m.console_write(bytes);
}

fn columns_for(mode: u8) -> u16 {
    if mode <= 1 {
        40
    } else {
        80
    }
}

/// Sets the BDA's video fields for `mode` (a text mode) and homes every cursor.
fn set_mode(m: &mut Machine, mode: u8) {
    let cols = columns_for(mode);
    m.phys_write(Gpa(bda::VIDEO_MODE), &[mode]);
    m.phys_write(Gpa(bda::VIDEO_COLUMNS), &cols.to_le_bytes());
    let page_size = (cols * u16::from(ROWS) * 2).next_power_of_two();
    m.phys_write(Gpa(bda::VIDEO_PAGE_SIZE), &page_size.to_le_bytes());
    m.phys_write(Gpa(bda::VIDEO_PAGE_START), &[0, 0]);
    m.phys_write(Gpa(bda::CURSOR_POS), &[0u8; 16]);
    m.phys_write(Gpa(bda::CURSOR_SHAPE), &CURSOR_SHAPE_DEFAULT.to_le_bytes());
    m.phys_write(Gpa(bda::VIDEO_PAGE), &[0]);
    m.phys_write(Gpa(bda::CRTC_BASE), &CRTC_COLOR.to_le_bytes());
    m.phys_write(Gpa(bda::VIDEO_ROWS_MINUS_1), &[ROWS - 1]);
    m.phys_write(Gpa(bda::VIDEO_CHAR_HEIGHT), &CHAR_HEIGHT.to_le_bytes());
}

/// POST's video state: mode 3, cursor home.
pub(super) fn init_bda(m: &mut Machine) {
    set_mode(m, MODE_TEXT_80X25);
}

fn cursor(m: &mut Machine, page: u8) -> (u8, u8) {
    let at = bda::CURSOR_POS + 2 * u64::from(page & 7);
    (phys_u8(m, at), phys_u8(m, at + 1)) // (column, row)
}

fn set_cursor(m: &mut Machine, page: u8, col: u8, row: u8) {
    m.phys_write(Gpa(bda::CURSOR_POS + 2 * u64::from(page & 7)), &[col, row]);
}

/// Teletype output of one character on `page`: the character reaches the console and
/// the cursor moves as on screen (CR, LF, BS; wrap at the last column; the screen
/// scrolls at the last row, so the row stays there). BEL is not passed on.
fn teletype(m: &mut Machine, page: u8, ch: u8) {
    let cols = phys_u16(m, bda::VIDEO_COLUMNS).clamp(1, 255) as u8;
    let (mut col, mut row) = cursor(m, page);
    match ch {
        b'\r' => col = 0,
        b'\n' => row = row.saturating_add(1),
        0x08 => col = col.saturating_sub(1),
        0x07 => return,
        _ => {
            col = col.saturating_add(1);
            if col >= cols {
                col = 0;
                row = row.saturating_add(1);
            }
        }
    }
    console_write(m, &[ch]);
    set_cursor(m, page, col, row.min(ROWS - 1));
}

/// INT 10h.
pub(super) fn int10(m: &mut Machine, _c: &mut Call) -> Result<Outcome, Fault> {
    let ah = m.hi(reg::AX);
    let al = m.lo(reg::AX);
    match ah {
        // Set video mode: AL = mode, bit 7 = keep the screen contents.
        0x00 => {
            let mode = al & 0x7F;
            if !TEXT_MODES.contains(&mode) {
                return unsupported(format!("BIOS INT 10h AH=00h: graphics mode {mode:02X}h"));
            }
            set_mode(m, mode);
        }
        // Set cursor shape: CH = start line, CL = end line.
        0x01 => {
            let cx = m.r16(reg::CX);
            m.phys_write(Gpa(bda::CURSOR_SHAPE), &cx.to_le_bytes());
        }
        // Set cursor position: BH = page, DH = row, DL = column.
        0x02 => {
            let (page, row, col) = (m.hi(reg::BX), m.hi(reg::DX), m.lo(reg::DX));
            set_cursor(m, page, col, row);
        }
        // Get cursor position and shape: DH, DL = row, column of page BH; CX = shape.
        0x03 => {
            let page = m.hi(reg::BX);
            let (col, row) = cursor(m, page);
            let shape = phys_u16(m, bda::CURSOR_SHAPE);
            m.set_r16(reg::DX, u16::from_le_bytes([col, row]));
            m.set_r16(reg::CX, shape);
            m.set_r16(reg::AX, 0);
        }
        // Select the active page.
        0x05 => m.phys_write(Gpa(bda::VIDEO_PAGE), &[al & 7]),
        // Scroll up/down: the console is a stream; nothing to move.
        0x06 | 0x07 => {}
        // Write character (and attribute) at the cursor, CX times, cursor unmoved.
        0x09 | 0x0A => {
            let n = m.r16(reg::CX) as usize;
            console_write(m, &vec![al; n]);
        }
        // Teletype output: AL = character, BH = page.
        0x0E => {
            let page = m.hi(reg::BX);
            teletype(m, page, al);
        }
        // Get video mode: AL = mode, AH = columns, BH = active page.
        0x0F => {
            let mode = phys_u8(m, bda::VIDEO_MODE);
            let cols = phys_u16(m, bda::VIDEO_COLUMNS) as u8;
            let page = phys_u8(m, bda::VIDEO_PAGE);
            m.set_r16(reg::AX, u16::from_le_bytes([mode, cols]));
            m.set_hi(reg::BX, page);
        }
        // Alternate function select; BL = 10h: get EGA information.
        0x12 if m.lo(reg::BX) == 0x10 => {
            let mono = phys_u8(m, bda::VIDEO_MODE) == 0x07;
            m.set_r16(reg::BX, u16::from_le_bytes([EGA_MEMORY_256K, u8::from(mono)]));
            m.set_r16(reg::CX, u16::from(EGA_SWITCHES));
        }
        // Write string: AL bit 0 = move the cursor, bit 1 = the string alternates
        // characters and attributes; BH = page, CX = length, DH:DL = row:column,
        // ES:BP = the string.
        0x13 => write_string(m, al)?,
        // Display combination code: AL = 00h get (BL = active, BH = alternate).
        0x1A if al <= 1 => {
            if al == 0 {
                m.set_r16(reg::BX, u16::from(DCC_VGA_COLOR));
            }
            m.set_lo(reg::AX, FUNCTION_SUPPORTED_1A);
        }
        // VESA BIOS extensions: not present.
        0x4F => m.set_r16(reg::AX, VBE_FAILED),
        _ => {
            let bl = m.lo(reg::BX);
            return unsupported(format!("BIOS INT 10h AH={ah:02X}h AL={al:02X}h BL={bl:02X}h"));
        }
    }
    Ok(Outcome::Done)
}

fn write_string(m: &mut Machine, mode: u8) -> Result<(), Fault> {
    let page = m.hi(reg::BX);
    let len = usize::from(m.r16(reg::CX));
    let (row, col) = (m.hi(reg::DX), m.lo(reg::DX));
    let with_attr = mode & 2 != 0;
    let mut bytes = vec![0u8; if with_attr { 2 * len } else { len }];
    let lin = seg_lin(m, SegReg::Es, m.r16(reg::BP));
    read_guest(m, lin, &mut bytes)?;
    let saved = cursor(m, page);
    set_cursor(m, page, col, row);
    let step = if with_attr { 2 } else { 1 };
    for ch in bytes.iter().step_by(step).copied().collect::<Vec<_>>() {
        teletype(m, page, ch);
    }
    if mode & 1 == 0 {
        set_cursor(m, page, saved.0, saved.1);
    }
    Ok(())
}
