//! INT 19h bootstrap loader and INT 18h boot failure.
//!
//! The bootstrap tries the floppies, then the hard disks: it reads sector 0 to
//! 0000:7C00 and accepts it if it ends in the 0x55AA signature. It then enters the boot
//! sector as SeaBIOS's `call_boot_entry` does: CS:IP = 0000:7C00, AX = 0xAA55, DL = the
//! drive number, every other general-purpose register 0, DS = ES = 0, FLAGS = IF only.
//! SeaBIOS leaves SS:SP on its own stack; hvsim uses 0000:7C00, just below the boot
//! sector (portable boot sectors set up their own stack anyway).

use super::{far_jump, video, Bios, Call, Outcome, BOOT_ADDR};
use crate::cpu::fault::ExecResult;
use crate::cpu::flags;
use crate::cpu::regs::SegReg;
use crate::machine::Machine;
use hvsim_devices::disk_image::SECTOR_SIZE;
use hvsim_mmu::Gpa;

/// The boot-sector signature at offset 510.
pub const BOOT_SIGNATURE: [u8; 2] = [0x55, 0xAA];
/// AX at the boot sector's entry (SeaBIOS's "magic number").
pub const BOOT_AX: u16 = 0xAA55;
/// SP at the boot sector's entry (SS = 0).
pub const BOOT_SP: u16 = 0x7C00;
/// What the console shows when nothing can boot.
pub const NO_BOOT_MESSAGE: &[u8] = b"No bootable device.\r\n";

/// The first bootable drive, with its boot sector.
fn find_boot_sector(bios: &Bios) -> Option<(u8, [u8; SECTOR_SIZE])> {
    bios.drives.iter().find_map(|d| {
        let s = d.image.read_sector(0).ok()?;
        (s[510..512] == BOOT_SIGNATURE).then_some((d.number, s))
    })
}

/// Loads and enters the boot sector of the first bootable drive, or reports that
/// there is none and halts in the ROM.
pub(super) fn bootstrap(m: &mut Machine, bios: &mut Bios) -> ExecResult {
    let Some((drive, sector)) = find_boot_sector(bios) else {
        video::console_write(m, NO_BOOT_MESSAGE);
        far_jump(m, super::rom::ROM_SEGMENT, bios.rom.halt);
        return Ok(());
    };
    m.phys_write(Gpa(u64::from(BOOT_ADDR)), &sector);
    for (n, r) in m.cpu.gpr.iter_mut().enumerate() {
        *r = match n {
            0 => u64::from(BOOT_AX),
            2 => u64::from(drive),
            4 => u64::from(BOOT_SP),
            _ => 0,
        };
    }
    for s in [SegReg::Es, SegReg::Ss, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
        m.cpu.load_seg_real(s, 0);
    }
    m.cpu.flags.set(flags::FIXED1 | flags::IF);
    far_jump(m, 0, BOOT_ADDR);
    Ok(())
}

/// INT 19h: the bootstrap loader (no POST: the IVT and BDA stay as they are).
pub(super) fn int19(m: &mut Machine, c: &mut Call) -> Result<Outcome, crate::cpu::fault::Fault> {
    bootstrap(m, c.bios)?;
    Ok(Outcome::Boot)
}

/// INT 18h: boot failure (on the PC, ROM BASIC): report it and halt.
pub(super) fn int18(m: &mut Machine, c: &mut Call) -> Result<Outcome, crate::cpu::fault::Fault> {
    video::console_write(m, NO_BOOT_MESSAGE);
    far_jump(m, super::rom::ROM_SEGMENT, c.bios.rom.halt);
    Ok(Outcome::Boot)
}
