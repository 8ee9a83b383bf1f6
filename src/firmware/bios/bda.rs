//! The BIOS data area at 0040:0000 (physical 0x400) and the EBDA: the fields hvsim's
//! BIOS keeps, as physical addresses (IBM PC/AT layout; Ralf Brown's Interrupt List,
//! "Memory Map: BIOS data area").

use hvsim_devices::pc::BDA_BASE;

/// COM1-COM4 I/O base addresses (words).
pub const COM_PORTS: u64 = BDA_BASE;
/// LPT1-LPT3 I/O base addresses (words).
pub const LPT_PORTS: u64 = BDA_BASE + 0x08;
/// Segment of the EBDA (word).
pub const EBDA_SEGMENT: u64 = BDA_BASE + 0x0E;
/// Equipment word (INT 11h).
pub const EQUIPMENT: u64 = BDA_BASE + 0x10;
/// Base memory in KiB (INT 12h), word.
pub const MEMORY_KB: u64 = BDA_BASE + 0x13;
/// Keyboard shift flags 1 (byte).
pub const KBD_FLAGS: u64 = BDA_BASE + 0x17;
/// Keyboard shift flags 2 (byte).
pub const KBD_FLAGS2: u64 = BDA_BASE + 0x18;
/// Keyboard buffer head: offset from segment 0040h of the next key to read (word).
pub const KBD_HEAD: u64 = BDA_BASE + 0x1A;
/// Keyboard buffer tail: offset of the next free slot (word).
pub const KBD_TAIL: u64 = BDA_BASE + 0x1C;
/// The default keyboard buffer: 16 words at 0040:001E.
pub const KBD_BUFFER_OFFSET: u16 = 0x1E;
/// End of the default keyboard buffer (exclusive), 0040:003E.
pub const KBD_BUFFER_END_OFFSET: u16 = 0x3E;
/// Diskette: status of the last operation (byte).
pub const FLOPPY_LAST_STATUS: u64 = BDA_BASE + 0x41;
/// Current video mode (byte).
pub const VIDEO_MODE: u64 = BDA_BASE + 0x49;
/// Columns on screen (word).
pub const VIDEO_COLUMNS: u64 = BDA_BASE + 0x4A;
/// Size of a video page in bytes (word).
pub const VIDEO_PAGE_SIZE: u64 = BDA_BASE + 0x4C;
/// Offset of the active page in video memory (word).
pub const VIDEO_PAGE_START: u64 = BDA_BASE + 0x4E;
/// Cursor positions of pages 0-7: column byte, then row byte.
pub const CURSOR_POS: u64 = BDA_BASE + 0x50;
/// Cursor shape: end line, start line (word).
pub const CURSOR_SHAPE: u64 = BDA_BASE + 0x60;
/// Active video page (byte).
pub const VIDEO_PAGE: u64 = BDA_BASE + 0x62;
/// CRT controller base port (word).
pub const CRTC_BASE: u64 = BDA_BASE + 0x63;
/// Timer ticks since midnight (dword).
pub const TIMER_TICKS: u64 = BDA_BASE + 0x6C;
/// Midnight rollover flag (byte).
pub const TIMER_ROLLOVER: u64 = BDA_BASE + 0x70;
/// Hard disk: status of the last operation (byte).
pub const HD_LAST_STATUS: u64 = BDA_BASE + 0x74;
/// Number of hard disks (byte).
pub const HD_COUNT: u64 = BDA_BASE + 0x75;
/// Keyboard buffer start offset (word).
pub const KBD_BUFFER_START: u64 = BDA_BASE + 0x80;
/// Keyboard buffer end offset (word).
pub const KBD_BUFFER_END: u64 = BDA_BASE + 0x82;
/// Rows on screen minus one (byte).
pub const VIDEO_ROWS_MINUS_1: u64 = BDA_BASE + 0x84;
/// Character height in scan lines (word).
pub const VIDEO_CHAR_HEIGHT: u64 = BDA_BASE + 0x85;
/// Keyboard status 3: bit 4 = 101/102-key keyboard installed (byte).
pub const KBD_STATUS3: u64 = BDA_BASE + 0x96;

/// The BDA's segment.
pub const SEGMENT: u16 = (BDA_BASE >> 4) as u16;
