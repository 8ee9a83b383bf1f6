//! INT 15h system services: the E820 memory map, E801h and 88h memory sizes, the A20
//! gate functions 2400h-2403h, the AH=86h wait, the C0h configuration table and the
//! C1h EBDA segment. Other functions return CF = 1, AH = 86h ("function not
//! supported"), the answer software expects from a BIOS that lacks them.

use super::{bda, phys_u16, reg, rom, seg_lin, time, write_guest, Call, Outcome, Regs};
use crate::cpu::fault::Fault;
use crate::cpu::regs::SegReg;
use crate::firmware::memory_map::e820_map;
use crate::machine::Machine;
use hvsim_devices::pc;

/// AH on failure: function not supported.
pub const NOT_SUPPORTED: u8 = 0x86;
/// EAX/EDX of E820: the 'SMAP' signature.
pub const SMAP: u32 = 0x534D_4150;
/// EAX in for E820.
pub const E820: u32 = 0xE820;
/// An E820 entry without, and with, the ACPI 3.0 extended attributes dword.
pub const E820_ENTRY: u32 = 20;
/// E820 entry size with extended attributes.
pub const E820_ENTRY_EXT: u32 = 24;
/// Extended attributes bit 0: the entry is enabled (ACPI 3.0).
pub const E820_ATTR_ENABLED: u32 = 1;
/// 16 MiB: where E801h's second count starts.
const SIXTEEN_MB: u64 = 16 << 20;
/// AH=88h reports at most 63 MiB, as SeaBIOS does (the count is a 16-bit KiB value
/// and old callers add it to 1 MiB).
const MAX_88H_KB: u64 = 0xFC00;
/// INT 15h AX=2403h: A20 support through the keyboard controller (bit 0) and port 92h
/// (bit 1).
pub const A20_SUPPORT: u16 = 0b11;

fn fail(m: &mut Machine, c: &mut Call, ah: u8) {
    m.set_hi(reg::AX, ah);
    c.set_cf(true);
}

fn ok(m: &mut Machine, c: &mut Call) {
    m.set_hi(reg::AX, 0);
    c.set_cf(false);
}

/// Opens or closes the A20 gate as a BIOS does, through the hardware: the keyboard
/// controller's enable/disable-A20 commands, and port 0x92's fast A20 bit (which would
/// keep the gate open when closing it through the i8042 alone).
fn set_a20_gate(m: &mut Machine, on: bool) {
    use hvsim_devices::i8042::command;
    use hvsim_devices::port92::PORT_A_A20;
    let kbc = if on { command::ENABLE_A20 } else { command::DISABLE_A20 };
    m.port_write(pc::I8042_CMD_PORT, 1, u32::from(kbc));
    let port_a = m.port_read(pc::PORT_A, 1) as u8;
    let port_a = if on { port_a | PORT_A_A20 } else { port_a & !PORT_A_A20 };
    m.port_write(pc::PORT_A, 1, u32::from(port_a));
}

/// INT 15h.
pub(super) fn int15(m: &mut Machine, c: &mut Call) -> Result<Outcome, Fault> {
    let ah = m.hi(reg::AX);
    let al = m.lo(reg::AX);
    match (ah, al) {
        (0x24, 0x00) | (0x24, 0x01) => {
            set_a20_gate(m, al == 1);
            c.bios.a20_enabled = al == 1;
            ok(m, c);
        }
        (0x24, 0x02) => {
            let on = m.platform().a20();
            m.set_lo(reg::AX, u8::from(on));
            ok(m, c);
        }
        (0x24, 0x03) => {
            m.set_r16(reg::BX, A20_SUPPORT);
            ok(m, c);
        }
        (0x86, _) => return wait(m, c),
        (0x88, _) => {
            let kb = extended_kb(m.mem.ram_size()).min(MAX_88H_KB) as u16;
            m.set_r16(reg::AX, kb);
            c.set_cf(false);
        }
        (0xC0, _) => {
            m.cpu.load_seg_real(SegReg::Es, rom::ROM_SEGMENT);
            m.set_r16(reg::BX, rom::CONFIG_TABLE_OFFSET);
            ok(m, c);
        }
        (0xC1, _) => {
            let seg = phys_u16(m, bda::EBDA_SEGMENT);
            m.cpu.load_seg_real(SegReg::Es, seg);
            c.set_cf(false);
        }
        (0xE8, 0x01) => {
            let (low, high) = e801(m.mem.ram_size());
            m.set_r16(reg::AX, low);
            m.set_r16(reg::CX, low);
            m.set_r16(reg::BX, high);
            m.set_r16(reg::DX, high);
            c.set_cf(false);
        }
        (0xE8, 0x20) if m.r32(reg::AX) == E820 => e820(m, c)?,
        _ => fail(m, c, NOT_SUPPORTED),
    }
    Ok(Outcome::Done)
}

/// KiB of RAM from 1 MiB up to the PCI hole.
fn extended_kb(ram: u64) -> u64 {
    ram.min(pc::PCI_HOLE_START).saturating_sub(pc::HIGH_MEMORY) / 1024
}

/// E801h: (KiB between 1 MiB and 16 MiB, 64 KiB blocks from 16 MiB to the PCI hole).
pub fn e801(ram: u64) -> (u16, u16) {
    let below = ram.min(pc::PCI_HOLE_START);
    let low = below.min(SIXTEEN_MB).saturating_sub(pc::HIGH_MEMORY) / 1024;
    let high = below.saturating_sub(SIXTEEN_MB) >> 16;
    (low as u16, high.min(0xFFFF) as u16)
}

/// E820h: EDX = 'SMAP', EBX = continuation (0 first), ECX = buffer size (>= 20), ES:DI =
/// the buffer. Returns EAX = 'SMAP', ECX = bytes stored (24 with the extended attributes
/// when the buffer has room), EBX = the next continuation value, 0 after the last entry
/// (ACPI specification, "INT 15H, E820H - Query System Address Map").
fn e820(m: &mut Machine, c: &mut Call) -> Result<(), Fault> {
    let map = e820_map(m.mem.ram_size());
    let index = m.r32(reg::BX) as usize;
    let size = m.r32(reg::CX);
    if m.r32(reg::DX) != SMAP || size < E820_ENTRY || index >= map.len() {
        fail(m, c, NOT_SUPPORTED);
        return Ok(());
    }
    let e = map[index];
    let mut entry = Vec::with_capacity(E820_ENTRY_EXT as usize);
    entry.extend_from_slice(&e.base.to_le_bytes());
    entry.extend_from_slice(&e.len.to_le_bytes());
    entry.extend_from_slice(&(e.kind as u32).to_le_bytes());
    if size >= E820_ENTRY_EXT {
        entry.extend_from_slice(&E820_ATTR_ENABLED.to_le_bytes());
    }
    let at = seg_lin(m, SegReg::Es, m.r16(reg::DI));
    write_guest(m, at, &entry)?;
    let next = if index + 1 < map.len() { index as u32 + 1 } else { 0 };
    m.set_r32(reg::AX, SMAP);
    m.set_r32(reg::BX, next);
    m.set_r32(reg::CX, entry.len() as u32);
    c.set_cf(false);
    Ok(())
}

/// AH=86h: waits CX:DX microseconds of virtual time (retired instructions), with
/// interrupts let in between checks; then CF = 0.
fn wait(m: &mut Machine, c: &mut Call) -> Result<Outcome, Fault> {
    let now = m.cpu.insn_count;
    let deadline = match (c.retry, c.bios.wait_until) {
        (true, Some(d)) => d,
        // A retry without a wait in progress (the state was reset): done.
        (true, None) => now,
        (false, _) => {
            let us = (u64::from(m.r16(reg::CX)) << 16) | u64::from(m.r16(reg::DX));
            now.saturating_add(time::micros_to_insns(us))
        }
    };
    if now < deadline {
        c.bios.wait_until = Some(deadline);
        return Ok(Outcome::Wait);
    }
    c.bios.wait_until = None;
    ok(m, c);
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e801_and_88h_sizes() {
        assert_eq!(e801(16 << 20), (15 * 1024, 0));
        assert_eq!(e801(32 << 20), (15 * 1024, 256));
        assert_eq!(e801(8 << 30), (15 * 1024, ((pc::PCI_HOLE_START - SIXTEEN_MB) >> 16) as u16));
        assert_eq!(extended_kb(32 << 20), 31 * 1024);
        assert_eq!(extended_kb(1 << 20), 0);
    }
}
