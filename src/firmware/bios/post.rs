//! Power-on self test, reduced to what software observes: the IVT, the BIOS data area,
//! the EBDA and the video state, then the INT 19h bootstrap.

use super::{bda, boot, equipment, rom, time, video, Bios, DriveKind};
use crate::cpu::fault::ExecResult;
use crate::machine::Machine;
use hvsim_devices::pc;
use hvsim_mmu::Gpa;

/// The EBDA's size in KiB, stored in its first word (as SeaBIOS does).
const EBDA_KB: u16 = (pc::EBDA_SIZE / 1024) as u16;
/// Offset of the scratch register of a 16550 UART.
const UART_SCRATCH: u16 = 7;
/// The serial ports POST looks for, in BDA order.
const COM_BASES: [u16; 2] = [pc::COM1_PORT, pc::COM2_PORT];

/// POST, then boot (see [`boot::bootstrap`]).
pub(super) fn post_and_boot(m: &mut Machine, bios: &mut Bios) -> ExecResult {
    post(m, bios);
    boot::bootstrap(m, bios)
}

fn put(m: &mut Machine, gpa: u64, data: &[u8]) {
    m.phys_write(Gpa(gpa), data);
}

fn put16(m: &mut Machine, gpa: u64, v: u16) {
    put(m, gpa, &v.to_le_bytes());
}

/// Whether a UART answers at `base`: its scratch register keeps a value written to it
/// (unclaimed ports read all ones). This is how PC BIOSes detect serial ports.
fn uart_present(m: &mut Machine, base: u16) -> bool {
    let port = base + UART_SCRATCH;
    let old = m.port_read(port, 1);
    m.port_write(port, 1, 0x5A);
    let seen = m.port_read(port, 1);
    m.port_write(port, 1, old);
    seen == 0x5A
}

/// Writes the IVT, BDA and EBDA.
pub(super) fn post(m: &mut Machine, bios: &mut Bios) {
    // IVT: every vector, 4 bytes each (offset, segment).
    let mut ivt = Vec::with_capacity(1024);
    for v in bios.rom.vectors {
        let (seg, off) = v.map_or((0, 0), |o| (rom::ROM_SEGMENT, o));
        ivt.extend_from_slice(&off.to_le_bytes());
        ivt.extend_from_slice(&seg.to_le_bytes());
    }
    put(m, pc::IVT_BASE, &ivt);

    // BDA: 256 bytes from 0x400, zeroed, then the fields.
    put(m, pc::BDA_BASE, &[0u8; 0x100]);
    let mut serial = 0u16;
    for base in COM_BASES {
        if uart_present(m, base) {
            put16(m, bda::COM_PORTS + 2 * u64::from(serial), base);
            serial += 1;
        }
    }
    put16(m, bda::EBDA_SEGMENT, (pc::EBDA_BASE >> 4) as u16);
    let floppies = bios.count(DriveKind::Floppy);
    put16(m, bda::EQUIPMENT, equipment::equipment_word(floppies, serial));
    put16(m, bda::MEMORY_KB, (pc::EBDA_BASE / 1024) as u16);
    put16(m, bda::KBD_HEAD, bda::KBD_BUFFER_OFFSET);
    put16(m, bda::KBD_TAIL, bda::KBD_BUFFER_OFFSET);
    put16(m, bda::KBD_BUFFER_START, bda::KBD_BUFFER_OFFSET);
    put16(m, bda::KBD_BUFFER_END, bda::KBD_BUFFER_END_OFFSET);
    put(m, bda::KBD_STATUS3, &[1 << 4]);
    put(m, bda::HD_COUNT, &[bios.count(DriveKind::HardDisk)]);
    video::init_bda(m);

    // EBDA: zeroed, its size in KiB in the first word.
    put(m, pc::EBDA_BASE, &vec![0u8; pc::EBDA_SIZE as usize]);
    put16(m, pc::EBDA_BASE, EBDA_KB);

    bios.pending_keys.clear();
    bios.wait_until = None;
    bios.a20_enabled = true;
    for d in &mut bios.drives {
        d.last_status = 0;
    }
    time::refresh_bda(m, bios);
}
