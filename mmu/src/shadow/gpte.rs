//! The guest page-table formats as the shadow cache needs them: where an entry lives,
//! what it points to, whether it is a leaf, whether it has reserved bits set, and the
//! access rights it grants. These mirror `paging::walk` rule for rule (SDM Vol. 3A §4.3
//! "32-Bit Paging", §4.4 "PAE Paging", §4.5 "4-Level Paging and 5-Level Paging");
//! `tests::reserved_bits_agree_with_the_walker` checks the two against each other.
//!
//! [`probe`] is a side-effect-free walk (no A/D updates) used to refill shadow pages and
//! to detect stale translations for `--strict-tlb`.

use super::role::{top_level, ACC_ALL, ACC_U, ACC_W, ACC_X};
use crate::addr::{Gpa, Gva};
use crate::memory::GuestMemory;
use crate::paging::{
    pdpte_reserved_bits, PagingMode, WalkConfig, PTE_NX, PTE_P, PTE_PS, PTE_RW, PTE_US,
};

/// Guest-format facts for one paging mode and MAXPHYADDR.
#[derive(Copy, Clone, Debug)]
pub struct Format {
    /// The paging mode.
    pub mode: PagingMode,
    /// CR4.PSE (32-bit paging only).
    pub pse: bool,
    /// EFER.NXE.
    pub nxe: bool,
    /// MAXPHYADDR.
    pub maxphyaddr: u8,
}

impl Format {
    /// The format a walk with `cfg` uses.
    pub fn of(cfg: &WalkConfig) -> Self {
        Self { mode: cfg.mode, pse: cfg.pse, nxe: cfg.nxe, maxphyaddr: cfg.maxphyaddr }
    }

    #[inline(always)]
    fn pa_mask(self) -> u64 {
        ((1u64 << self.maxphyaddr) - 1) & !0xFFF
    }

    /// Level of the root table.
    pub fn top_level(self) -> u8 {
        top_level(self.mode)
    }

    /// Entries in a table at `level`.
    pub fn entries(self, level: u8) -> usize {
        match (self.mode, level) {
            (PagingMode::Legacy32, _) => 1024,
            (PagingMode::Pae, 3) => 4,
            _ => 512,
        }
    }

    /// Bytes per entry.
    #[inline(always)]
    pub fn entry_size(self) -> u64 {
        if self.mode == PagingMode::Legacy32 {
            4
        } else {
            8
        }
    }

    /// The index of `gva`'s entry in a table at `level`.
    #[inline(always)]
    pub fn index(self, level: u8, gva: Gva) -> usize {
        let a = gva.0;
        match self.mode {
            PagingMode::Legacy32 => {
                let a = a & 0xFFFF_FFFF;
                (if level == 2 { a >> 22 } else { (a >> 12) & 0x3FF }) as usize
            }
            PagingMode::Pae if level == 3 => ((a & 0xFFFF_FFFF) >> 30) as usize,
            _ => ((a >> (12 + 9 * (u32::from(level) - 1))) & 0x1FF) as usize,
        }
    }

    /// Address of the root table (the PDPT for PAE, 32-byte aligned).
    pub fn root_table(self, cr3: u64) -> Gpa {
        Gpa(match self.mode {
            PagingMode::Legacy32 => cr3 & 0xFFFF_F000,
            PagingMode::Pae => cr3 & 0xFFFF_FFE0,
            _ => cr3 & self.pa_mask(),
        })
    }

    /// Address of the table a non-leaf entry points to.
    pub fn next_table(self, entry: u64) -> Gpa {
        Gpa(if self.mode == PagingMode::Legacy32 {
            entry & 0xFFFF_F000
        } else {
            entry & self.pa_mask()
        })
    }

    /// Reads the entry at `at`.
    #[inline]
    pub fn read(self, mem: &GuestMemory, at: Gpa) -> u64 {
        if self.mode == PagingMode::Legacy32 {
            u64::from(mem.read_u32(at))
        } else {
            mem.read_u64(at)
        }
    }

    /// Whether a present entry at `level` maps a page (rather than a table).
    #[inline(always)]
    pub fn is_leaf(self, level: u8, entry: u64) -> bool {
        match self.mode {
            PagingMode::Legacy32 => level == 1 || (level == 2 && self.pse && entry & PTE_PS != 0),
            PagingMode::Pae if level == 3 => false,
            _ => level == 1 || (level <= 3 && entry & PTE_PS != 0),
        }
    }

    /// Whether a present entry at `level` has a reserved bit set, exactly when the
    /// walker reports PFEC_RSVD for it (SDM Vol. 3A §4.3, §4.4.2, §4.5.4).
    pub fn reserved(self, level: u8, entry: u64) -> bool {
        if self.mode == PagingMode::Legacy32 {
            if level == 2 && self.pse && entry & PTE_PS != 0 {
                // 4 MiB page: bit 21, and PSE-36 address bits above MAXPHYADDR.
                let rsvd =
                    (1u64 << 21) | (!((1u64 << self.maxphyaddr.min(40)) - 1) >> 19 & 0x1F_E000);
                return entry & rsvd != 0;
            }
            return false;
        }
        // PAE reserves bits 62:MAXPHYADDR (SDM Vol. 3A §4.4.2, Tables 4-8 to 4-11);
        // 4/5-level paging only 51:MAXPHYADDR (62:52 are ignored or hold the
        // protection key, §4.5.4).
        let top = if self.mode == PagingMode::Pae {
            0x7FFF_FFFF_FFFF_F000
        } else {
            0x000F_FFFF_FFFF_F000
        };
        let above_maxphy = !((1u64 << self.maxphyaddr) - 1) & top;
        let mut rsvd = above_maxphy | if self.nxe { 0 } else { PTE_NX };
        match (self.mode, level) {
            // PAE PDPTEs: bits 2:1, 8:5 and 63:MAXPHYADDR (§4.4.1, Table 4-8).
            (PagingMode::Pae, 3) => rsvd = pdpte_reserved_bits(self.maxphyaddr),
            (_, 5) | (_, 4) => rsvd |= PTE_PS,
            (_, 3) if entry & PTE_PS != 0 => rsvd |= 0x3FFF_E000,
            (_, 2) if entry & PTE_PS != 0 => rsvd |= 0x1F_E000,
            _ => {}
        }
        entry & rsvd != 0
    }

    /// The access rights (`ACC_*`) a present entry grants.
    #[inline]
    pub fn access(self, level: u8, entry: u64) -> u8 {
        if self.mode == PagingMode::Pae && level == 3 {
            return ACC_ALL; // PDPTEs carry no R/W, U/S or XD (SDM Vol. 3A §4.4.1).
        }
        let mut acc = ACC_X;
        if entry & PTE_RW != 0 {
            acc |= ACC_W;
        }
        if entry & PTE_US != 0 {
            acc |= ACC_U;
        }
        if self.mode != PagingMode::Legacy32 && self.nxe && entry & PTE_NX != 0 {
            acc &= !ACC_X;
        }
        acc
    }

    /// Whether the entry has an accessed flag that a walk sets (PDPTEs in PAE mode have
    /// none).
    #[inline(always)]
    pub fn has_accessed_flag(self, level: u8) -> bool {
        !(self.mode == PagingMode::Pae && level == 3)
    }

    /// The page a leaf entry at `level` maps: (physical address of `gva`, page size).
    #[inline(always)]
    pub fn leaf_address(self, level: u8, entry: u64, gva: Gva) -> (Gpa, u64) {
        if self.mode == PagingMode::Legacy32 {
            let a = gva.0 & 0xFFFF_FFFF;
            if level == 2 {
                let high = ((entry >> 13) & 0xFF) << 32;
                return (Gpa((entry & 0xFFC0_0000) | high | (a & 0x3F_FFFF)), 4 << 20);
            }
            return (Gpa((entry & 0xFFFF_F000) | (a & 0xFFF)), 4096);
        }
        let size = 1u64 << (12 + 9 * (u32::from(level) - 1));
        let frame = entry & self.pa_mask() & !(size - 1);
        (Gpa(frame | (gva.0 & (size - 1))), size)
    }
}

/// One entry used by a walk.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PathEntry {
    /// Where the entry is.
    pub at: Gpa,
    /// Its value.
    pub value: u64,
    /// Its level (1 = PTE).
    pub level: u8,
}

/// How a side-effect-free walk ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProbeEnd {
    /// The last entry of the path maps a page.
    Leaf {
        /// The physical address of the probed linear address.
        gpa: Gpa,
        /// The page size.
        page_size: u64,
        /// Access rights accumulated over the path (`ACC_*`).
        access: u8,
    },
    /// The last entry of the path is not present.
    NotPresent,
    /// The last entry of the path has a reserved bit set.
    Reserved,
}

/// The entries a walk of `gva` would use, read without side effects.
#[derive(Copy, Clone, Debug)]
pub struct Probe {
    /// The entries, root level first.
    pub path: [PathEntry; 5],
    /// How many of `path` are used.
    pub len: usize,
    /// How the walk ended.
    pub end: ProbeEnd,
}

impl Probe {
    /// The last entry read.
    pub fn last(&self) -> PathEntry {
        self.path[self.len.saturating_sub(1)]
    }
}

/// Walks `gva` under `cfg` without touching memory.
pub fn probe(mem: &GuestMemory, cfg: &WalkConfig, gva: Gva) -> Probe {
    let f = Format::of(cfg);
    let mut path = [PathEntry::default(); 5];
    let mut len = 0;
    let mut table = f.root_table(cfg.cr3);
    let mut level = f.top_level();
    let mut access = ACC_ALL;
    loop {
        let idx = f.index(level, gva);
        let at = table.add(idx as u64 * f.entry_size());
        let value = match cfg.pdptes {
            // PAE walks use the PDPTE registers when the CPU has loaded them (SDM Vol. 3A
            // §4.4.1); `at` still names the PDPT slot they were loaded from.
            Some(regs) if cfg.mode == PagingMode::Pae && level == 3 => regs[idx],
            _ => f.read(mem, at),
        };
        path[len] = PathEntry { at, value, level };
        len += 1;
        if value & PTE_P == 0 {
            return Probe { path, len, end: ProbeEnd::NotPresent };
        }
        if f.reserved(level, value) {
            return Probe { path, len, end: ProbeEnd::Reserved };
        }
        access &= f.access(level, value);
        if f.is_leaf(level, value) {
            let (gpa, page_size) = f.leaf_address(level, value, gva);
            return Probe { path, len, end: ProbeEnd::Leaf { gpa, page_size, access } };
        }
        table = f.next_table(value);
        level -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryMap;
    use crate::paging::{walk, Access, AccessKind, PFEC_RSVD};

    /// Every reserved-bit rule of the walker, compared entry by entry: a one-entry
    /// change at each level, for each mode, must be reserved here exactly when the walk
    /// faults with PFEC_RSVD (SDM Vol. 3A §4.7 "Page-Fault Exceptions", RSVD flag).
    #[test]
    fn reserved_bits_agree_with_the_walker() {
        let bits: Vec<u64> = (0..64).map(|b| 1u64 << b).collect();
        for mode in [PagingMode::Legacy32, PagingMode::Pae, PagingMode::Long4, PagingMode::Long5] {
            for nxe in [false, true] {
                let cfg = WalkConfig {
                    mode,
                    cr3: 0x1000,
                    wp: true,
                    pse: true,
                    nxe,
                    smep: false,
                    smap: false,
                    pke: false,
                    pkru: 0,
                    pdptes: None,
                    maxphyaddr: 36,
                };
                let f = Format::of(&cfg);
                for leaf_level in 1..=f.top_level() {
                    for &bit in &bits {
                        let mut m = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
                        // A chain of tables at 0x1000, 0x2000, ...; the entry at
                        // `leaf_level` gets the extra bit (and PS where it can be a
                        // large page).
                        let mut table = 0x1000u64;
                        for level in (1..=f.top_level()).rev() {
                            let next = table + 0x1000;
                            let mut e = next | 7;
                            if mode == PagingMode::Pae && level == 3 {
                                e = next | 1;
                            }
                            if level == leaf_level {
                                if level > 1 && f.is_leaf(level, e | PTE_PS) {
                                    e = PTE_PS | 7; // large page at 0
                                }
                                e |= bit;
                            }
                            if f.entry_size() == 4 {
                                m.write_u32(Gpa(table), e as u32);
                            } else {
                                m.write_u64(Gpa(table), e);
                            }
                            if level == leaf_level && f.is_leaf(level, e) {
                                break;
                            }
                            table = f.next_table(e).0;
                            if table == 0 || table >= 0x8000 {
                                break;
                            }
                        }
                        let pr = probe(&m, &cfg, Gva(0));
                        let r =
                            Access { kind: AccessKind::Read, user: false, smap_override: false };
                        let w = walk(&mut m, &cfg, Gva(0), r);
                        let walk_rsvd = matches!(w, Err(pf) if pf.error_code & PFEC_RSVD != 0);
                        assert_eq!(
                            pr.end == ProbeEnd::Reserved,
                            walk_rsvd,
                            "{mode:?} nxe={nxe} level {leaf_level} bit {:#x}",
                            bit
                        );
                        if let (Ok(t), ProbeEnd::Leaf { gpa, page_size, .. }) = (w, pr.end) {
                            assert_eq!((t.gpa, t.page_size), (gpa, page_size));
                            assert_eq!(t.leaf_gpa, pr.last().at);
                        }
                    }
                }
            }
        }
    }
}
