//! An external BIOS image (`hvsim run --bios FILE`, e.g. SeaBIOS's `bios.bin`), mapped
//! as a PC maps its firmware flash: the whole image ends at 4 GiB, and its last 128 KiB
//! (or all of it, if smaller) also appear below 1 MiB, ending at 0xFFFFF. The vCPU starts
//! as after RESET: CS selector F000h with base FFFF0000h, IP = FFF0h, so the first
//! instruction is the image's reset vector at physical FFFFFFF0h (SDM Vol. 3A §10.1.4
//! "First Instruction Executed").
//!
//! The low copy is the chipset's: the i440FX PAM registers decide whether
//! 0xC0000-0xFFFFF read the ROM or shadow RAM and whether writes reach the RAM
//! (`machine::chipset`); SeaBIOS copies itself to the shadow RAM and write-protects it.
//! The boot disk is an ATA disk on the PIIX3 IDE primary channel
//! ([`Machine::attach_ide_disk`]).

use super::BiosError;
use crate::cpu::regs::SegReg;
use crate::machine::Machine;
use hvsim_devices::disk_image::DiskImage;
use hvsim_devices::ide::AtaDrive;
use hvsim_devices::pc;
use hvsim_mmu::{GuestMemory, MemoryMap, Region, RegionKind};

/// The serial number of the boot disk's IDENTIFY data (QEMU's first IDE disk's).
pub const IDE_DISK_SERIAL: &str = "QM00001";
/// External images are whole 64 KiB blocks.
pub const ROM_GRANULE: usize = 0x1_0000;
/// The largest external image hvsim maps (SeaBIOS builds are 128 or 256 KiB).
pub const MAX_ROM_SIZE: usize = 16 << 20;
/// The part of the image that also appears below 1 MiB.
pub const LOW_ALIAS_SIZE: usize = 0x2_0000;
/// The reset CS base (SDM Vol. 3A Table 10-1, "IA-32 and Intel 64 Processor States
/// Following Power-up, Reset, or INIT": CS selector F000H, base FFFF0000H).
pub const RESET_CS_BASE: u64 = 0xFFFF_0000;
/// The reset IP.
pub const RESET_IP: u64 = 0xFFF0;

impl Machine {
    /// Attaches `image` as the IDE primary master (the disk an external BIOS boots).
    pub fn attach_ide_disk(&mut self, image: DiskImage) {
        self.platform_mut().attach_ide(0, 0, AtaDrive::new(image, IDE_DISK_SERIAL));
    }

    /// Turns on an external BIOS's interactive boot menu (QEMU's `-boot
    /// menu=on[,splash-time=MS]`): fw_cfg's boot-menu item and, with `wait_ms`,
    /// `etc/boot-menu-wait`. SeaBIOS then prints "Press ESC for boot menu." and waits that
    /// long (its default is 2.5 s) of virtual time for a key; no key comes (hvsim's i8042
    /// has no host keyboard), so it goes on to boot the first disk.
    pub fn enable_boot_menu(&mut self, wait_ms: Option<u16>) -> Result<(), BiosError> {
        use hvsim_devices::fw_cfg::{key, BOOT_MENU_WAIT_FILE};
        let fw = &mut self.platform_mut().fw_cfg;
        fw.set_item(key::BOOT_MENU, 1u16.to_le_bytes().to_vec());
        if let Some(ms) = wait_ms {
            fw.add_file(BOOT_MENU_WAIT_FILE, ms.to_le_bytes().to_vec())
                .map_err(|e| BiosError::Memory(format!("fw_cfg: {e}")))?;
        }
        Ok(())
    }

    /// Maps an external BIOS image and puts the vCPU at its reset vector. Guest RAM is
    /// rebuilt (its contents are lost), so call this before loading anything else. The
    /// machine must not have RAM in the top 16 MiB below 4 GiB.
    pub fn load_external_bios(&mut self, rom: &[u8]) -> Result<(), BiosError> {
        if rom.is_empty() || rom.len() % ROM_GRANULE != 0 || rom.len() > MAX_ROM_SIZE {
            return Err(BiosError::BadRom(rom.len()));
        }
        let ram = self.mem.ram_size();
        if ram < pc::HIGH_MEMORY {
            return Err(BiosError::TooLittleMemory(ram));
        }
        if ram > pc::PCI_HOLE_START {
            return Err(BiosError::Memory(format!(
                "an external BIOS needs the RAM below the PCI hole at {:#x}; the machine has \
                 {ram:#x} bytes",
                pc::PCI_HOLE_START
            )));
        }
        let size = rom.len() as u64;
        let base = (1u64 << 32) - size;
        let mut map = MemoryMap::flat(ram);
        map.add(Region { base: hvsim_mmu::Gpa(base), size, kind: RegionKind::Ram })
            .map_err(|e| BiosError::Memory(e.to_string()))?;
        self.mem = GuestMemory::new(map).map_err(|e| BiosError::Memory(e.to_string()))?;
        self.load(base, rom).map_err(|e| BiosError::Memory(e.to_string()))?;
        let low = rom.len().min(LOW_ALIAS_SIZE);
        // The low copy is the chipset's: the i440FX PAM registers decide whether
        // 0xC0000-0xFFFFF read the ROM or shadow RAM (see `machine::chipset`).
        self.install_bios_shadow(&rom[rom.len() - low..]);
        self.bios = None;
        let (count, rng) = (self.cpu.insn_count, self.cpu.rng_state);
        self.cpu = crate::cpu::Cpu { insn_count: count, rng_state: rng, ..crate::cpu::Cpu::new() };
        let cs = &mut self.cpu.seg[SegReg::Cs as usize];
        cs.selector = 0xF000;
        cs.base = RESET_CS_BASE;
        self.cpu.rip = RESET_IP;
        self.cpu.update_mode();
        self.flush_code_cache();
        Ok(())
    }
}
