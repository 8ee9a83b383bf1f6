//! What the chipset does to the CPU's physical addresses before they reach RAM: the A20
//! gate and the i440FX's BIOS shadowing (PAM registers).
//!
//! - A20: with the gate closed, address bit 20 of every physical address the CPU emits
//!   is forced to 0, so addresses wrap at 1 MiB as on an 8086 (SDM Vol. 3A §22.29.2,
//!   "Address-Space Wraparound"; the gate is the i8042 output port bit 1 OR port 0x92
//!   bit 1, open at reset as on QEMU's `pc`). hvsim applies the mask when a translation
//!   is made (the TLB holds masked frames) and flushes every TLB when the gate moves;
//!   the nested (NPT) walk and the page walker's own table reads are not masked.
//! - PAM (Intel 440FX PCIset datasheet, 82441FX "PAM - Programmable Attribute Map
//!   Registers", 0x59-0x5F): each of the 13 segments of 0xC0000-0xFFFFF (twelve of 16 KiB
//!   and 0xF0000-0xFFFFF) reads DRAM or the PCI/ISA bus (the BIOS ROM, 0xFF elsewhere),
//!   and writes DRAM or the bus (where they are dropped), by two enable bits. Only an
//!   external BIOS (`--bios`) sees this: the built-in BIOS's machine is RAM throughout.
//!
//!   hvsim keeps in guest RAM what a read of a segment returns now. When a segment's
//!   reads move between DRAM and the bus, its bytes are swapped with a side buffer that
//!   holds the hidden DRAM, so reads and fetches stay on the fast path; a segment whose
//!   writes do not go to the DRAM being read is write-protected in the TLB and its
//!   writes are routed here by [`Machine::phys_write`].

use super::Machine;
use hvsim_devices::pci::i440fx::{HostBridge, PAM_COUNT};
use hvsim_mmu::Gpa;

/// The shadowable area: 0xC0000-0xFFFFF.
pub const SHADOW_BASE: u64 = 0xC_0000;
/// Its size.
pub const SHADOW_SIZE: u64 = 0x4_0000;
/// First frame of the shadowable area.
const SHADOW_FIRST_GFN: u64 = SHADOW_BASE >> 12;
/// Number of frames in the shadowable area.
const SHADOW_FRAMES: u64 = SHADOW_SIZE >> 12;
/// Number of PAM segments: PAM0 bits 5:4 (0xF0000-0xFFFFF), then two per PAM1-PAM6.
pub const PAM_SEGMENTS: usize = 13;
/// PAM field bit 0 of a segment: reads go to DRAM.
pub const PAM_READ_ENABLE: u8 = 1 << 0;
/// PAM field bit 1 of a segment: writes go to DRAM.
pub const PAM_WRITE_ENABLE: u8 = 1 << 1;
/// The frame bit that address bit 20 is.
const A20_GFN_BIT: u64 = 1 << (20 - 12);

/// The address range of PAM segment `s`: 0 is 0xF0000-0xFFFFF (64 KiB), 1-12 the 16 KiB
/// segments from 0xC0000 up (PAM1 bits 1:0 = 0xC0000, PAM1 bits 5:4 = 0xC4000, ...).
pub fn pam_segment_range(s: usize) -> (u64, u64) {
    if s == 0 {
        (0xF_0000, 0x1_0000)
    } else {
        (SHADOW_BASE + (s as u64 - 1) * 0x4000, 0x4000)
    }
}

/// The two enable bits of segment `s` in the PAM registers `pam` (PAM0..PAM6).
pub fn pam_segment_bits(pam: &[u8; PAM_COUNT as usize], s: usize) -> u8 {
    if s == 0 {
        (pam[0] >> 4) & 3
    } else {
        let reg = pam[(s + 1) / 2];
        if s % 2 == 1 {
            reg & 3
        } else {
            (reg >> 4) & 3
        }
    }
}

/// The chipset's address-decoding state.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Chipset {
    /// The A20 gate is closed: address bit 20 is masked.
    pub(crate) a20_masked: bool,
    /// The BIOS shadowing model, present with an external BIOS.
    shadow: Option<Box<BiosShadow>>,
}

/// The PAM model's state.
#[derive(serde::Serialize, serde::Deserialize)]
struct BiosShadow {
    /// What a bus read of 0xC0000-0xFFFFF returns: the ROM's last 128 KiB at
    /// 0xE0000-0xFFFFF, all ones below.
    rom: Vec<u8>,
    /// The DRAM of segments whose reads go to the bus (hidden behind the ROM in guest
    /// RAM); the other segments' bytes here are stale.
    hidden_dram: Vec<u8>,
    /// The PAM enable bits applied, per segment.
    applied: [u8; PAM_SEGMENTS],
}

impl BiosShadow {
    /// The segment that holds frame `gfn`, if it is in the shadowable area.
    fn segment_of(gfn: u64) -> Option<usize> {
        let addr = gfn << 12;
        if !(SHADOW_BASE..SHADOW_BASE + SHADOW_SIZE).contains(&addr) {
            return None;
        }
        Some(if addr >= 0xF_0000 { 0 } else { ((addr - SHADOW_BASE) / 0x4000) as usize + 1 })
    }
}

impl Machine {
    /// The frame the chipset delivers a CPU access to frame `gfn` to (A20 masking).
    #[inline]
    pub(crate) fn chipset_gfn(&self, gfn: u64) -> u64 {
        if self.chipset.a20_masked {
            gfn & !A20_GFN_BIT
        } else {
            gfn
        }
    }

    /// Whether writes to frame `gfn` must take [`Machine::phys_write`] because the PAM
    /// registers send them elsewhere than the bytes reads see.
    #[inline]
    pub(crate) fn pam_write_protected(&self, gfn: u64) -> bool {
        let Some(sh) = self.chipset.shadow.as_deref() else { return false };
        if gfn.wrapping_sub(SHADOW_FIRST_GFN) >= SHADOW_FRAMES {
            return false;
        }
        BiosShadow::segment_of(gfn).is_some_and(|s| sh.applied[s] != 3)
    }

    /// A CPU write to a PAM-protected frame: to the hidden DRAM when the segment writes
    /// DRAM but reads the bus, dropped when it writes the bus. Returns `false` if `gpa`
    /// is not in a protected segment (the caller writes RAM).
    pub(crate) fn pam_write(&mut self, gpa: Gpa, data: &[u8]) -> bool {
        if !self.pam_write_protected(gpa.0 >> 12) {
            return false;
        }
        let Some(sh) = self.chipset.shadow.as_deref_mut() else { return false };
        for (i, &b) in data.iter().enumerate() {
            let a = gpa.0.wrapping_add(i as u64);
            let Some(s) = BiosShadow::segment_of(a >> 12) else { continue };
            let bits = sh.applied[s];
            let off = (a - SHADOW_BASE) as usize;
            match (bits & PAM_READ_ENABLE != 0, bits & PAM_WRITE_ENABLE != 0) {
                (false, true) => sh.hidden_dram[off] = b,
                (true, true) => self.mem.write(Gpa(a), &[b]),
                _ => {}
            }
        }
        true
    }

    /// Turns on the PAM model for an external BIOS whose last 128 KiB are `low_rom`
    /// (mapped at 0xE0000-0xFFFFF): every segment reads the bus after reset.
    pub(crate) fn install_bios_shadow(&mut self, low_rom: &[u8]) {
        let mut rom = vec![0xFF; SHADOW_SIZE as usize];
        let n = low_rom.len().min(rom.len());
        let at = rom.len() - n;
        rom[at..].copy_from_slice(&low_rom[low_rom.len() - n..]);
        let mut hidden_dram = vec![0; SHADOW_SIZE as usize];
        self.mem.read(Gpa(SHADOW_BASE), &mut hidden_dram);
        self.mem.write(Gpa(SHADOW_BASE), &rom);
        self.chipset.shadow = Some(Box::new(BiosShadow { rom, hidden_dram, applied: [0; 13] }));
        self.chipset_changed();
    }

    /// Applies the PAM registers and the A20 gate after a device access: swaps the bytes
    /// of segments whose read target moved, and flushes the translations and decoded
    /// code that may have seen the old decoding.
    pub(crate) fn sync_chipset(&mut self) {
        let mut changed = false;
        let a20_masked = !self.platform.a20();
        if a20_masked != self.chipset.a20_masked {
            self.chipset.a20_masked = a20_masked;
            changed = true;
        }
        if let Some(sh) = self.chipset.shadow.as_deref_mut() {
            let mut pam = [0u8; PAM_COUNT as usize];
            if let Some(hb) = self.platform.pci.function::<HostBridge>() {
                for (n, p) in pam.iter_mut().enumerate() {
                    *p = hb.pam(n as u8).unwrap_or(0);
                }
            }
            for s in 0..PAM_SEGMENTS {
                let bits = pam_segment_bits(&pam, s);
                let old = sh.applied[s];
                if bits == old {
                    continue;
                }
                changed = true;
                let reads_dram = bits & PAM_READ_ENABLE != 0;
                if reads_dram != (old & PAM_READ_ENABLE != 0) {
                    let (base, size) = pam_segment_range(s);
                    let off = (base - SHADOW_BASE) as usize;
                    let range = off..off + size as usize;
                    if reads_dram {
                        // The DRAM comes back into view.
                        self.mem.write(Gpa(base), &sh.hidden_dram[range]);
                    } else {
                        self.mem.read(Gpa(base), &mut sh.hidden_dram[range.clone()]);
                        self.mem.write(Gpa(base), &sh.rom[range]);
                    }
                }
                sh.applied[s] = bits;
            }
        }
        if changed {
            self.chipset_changed();
        }
    }

    /// Forgets every translation and decoded block (after the address decoding moved).
    fn chipset_changed(&mut self) {
        self.cpu.tlb.flush();
        for i in 0..self.vcpu_count() {
            if let Some(c) = self.vcpu_mut(i) {
                c.tlb.flush();
            }
        }
        self.flush_code_cache();
        self.cpu.end_block = true;
    }
}
