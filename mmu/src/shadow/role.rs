//! The role of a shadow page: everything besides the guest table's frame that changes
//! what the same guest table means (KVM's `union kvm_mmu_page_role`).
//!
//! One guest table seen under two roles has two shadow pages: the same PTE page reached
//! through a read-only PDE and through a writable one, or used with CR0.WP set and clear,
//! must not share cached permissions.

use crate::paging::{PagingMode, WalkConfig};

/// Accumulated access: writable at every level so far.
pub const ACC_W: u8 = 1 << 0;
/// Accumulated access: user-accessible at every level so far.
pub const ACC_U: u8 = 1 << 1;
/// Accumulated access: executable (no NX with EFER.NXE) at every level so far.
pub const ACC_X: u8 = 1 << 2;
/// All access rights (the access of a root).
pub const ACC_ALL: u8 = ACC_W | ACC_U | ACC_X;

// Bit layout of `Role::word`.
const LEVEL_SHIFT: u32 = 0; // 3 bits: 1..=5
const MODE_SHIFT: u32 = 3; // 2 bits: PagingMode
const ACCESS_SHIFT: u32 = 5; // 3 bits: ACC_*
const CR0_WP: u64 = 1 << 8;
const SMEP: u64 = 1 << 9;
const SMAP: u64 = 1 << 10;
const NXE: u64 = 1 << 11;
const PSE: u64 = 1 << 12;
const DIRECT: u64 = 1 << 13;
const QUADRANT_SHIFT: u32 = 14; // 7 bits: which 32-byte PAE PDPT inside its page
const NESTED_SHIFT: u32 = 21; // 16 bits: nested (L2) context id
const MAXPHY_SHIFT: u32 = 37; // 7 bits: MAXPHYADDR (changes the reserved bits)
/// A PAE root whose entries are the CPU's PDPTE registers, not the PDPT in memory.
const PDPTE_REGS: u64 = 1 << 44;

/// A shadow page's role, packed in one word so that it orders and hashes cheaply.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Role {
    word: u64,
}

fn mode_code(mode: PagingMode) -> u64 {
    match mode {
        PagingMode::Legacy32 => 0,
        PagingMode::Pae => 1,
        PagingMode::Long4 => 2,
        PagingMode::Long5 => 3,
    }
}

impl Role {
    /// The role of the root table for a guest walking with `cfg` in nested context
    /// `nested` (0 = not nested). `quadrant` selects the 32-byte PDPT in PAE mode.
    pub fn root(cfg: &WalkConfig, nested: u16) -> Self {
        let quadrant = if cfg.mode == PagingMode::Pae { (cfg.cr3 >> 5) & 0x7F } else { 0 };
        let flag = |on: bool, bit: u64| if on { bit } else { 0 };
        let word = (u64::from(top_level(cfg.mode)) << LEVEL_SHIFT)
            | (mode_code(cfg.mode) << MODE_SHIFT)
            | (u64::from(ACC_ALL) << ACCESS_SHIFT)
            | flag(cfg.wp, CR0_WP)
            | flag(cfg.smep, SMEP)
            | flag(cfg.smap, SMAP)
            | flag(cfg.nxe, NXE)
            | flag(cfg.pse && cfg.mode == PagingMode::Legacy32, PSE)
            | (quadrant << QUADRANT_SHIFT)
            | (u64::from(nested) << NESTED_SHIFT)
            | (u64::from(cfg.maxphyaddr & 0x7F) << MAXPHY_SHIFT)
            | flag(cfg.mode == PagingMode::Pae && cfg.pdptes.is_some(), PDPTE_REGS);
        Self { word }
    }

    /// The role of a child table one level down, reached with accumulated `access`.
    pub fn child(self, access: u8) -> Self {
        let level = self.level() - 1;
        let keep =
            !((7 << LEVEL_SHIFT) | (7 << ACCESS_SHIFT) | (0x7F << QUADRANT_SHIFT) | PDPTE_REGS);
        Self {
            word: (self.word & keep)
                | (u64::from(level) << LEVEL_SHIFT)
                | (u64::from(access & ACC_ALL) << ACCESS_SHIFT),
        }
    }

    /// Paging-structure level of the shadowed table (1 = page table).
    pub fn level(self) -> u8 {
        ((self.word >> LEVEL_SHIFT) & 7) as u8
    }
    /// The guest paging mode.
    pub fn mode(self) -> PagingMode {
        match (self.word >> MODE_SHIFT) & 3 {
            0 => PagingMode::Legacy32,
            1 => PagingMode::Pae,
            2 => PagingMode::Long4,
            _ => PagingMode::Long5,
        }
    }
    /// Access rights accumulated from the levels above (`ACC_*`).
    pub fn access(self) -> u8 {
        ((self.word >> ACCESS_SHIFT) & 7) as u8
    }
    /// CR0.WP.
    pub fn cr0_wp(self) -> bool {
        self.word & CR0_WP != 0
    }
    /// CR4.SMEP.
    pub fn smep(self) -> bool {
        self.word & SMEP != 0
    }
    /// CR4.SMAP.
    pub fn smap(self) -> bool {
        self.word & SMAP != 0
    }
    /// EFER.NXE.
    pub fn nxe(self) -> bool {
        self.word & NXE != 0
    }
    /// CR4.PSE, meaningful for 32-bit paging only.
    pub fn pse(self) -> bool {
        self.word & PSE != 0
    }
    /// A direct (guest-physical range) mapping rather than a guest table. hvsim does
    /// not build direct shadows yet (paging-off translation needs no cache); the bit is
    /// reserved so that TDP-style users key apart from guest-table shadows.
    pub fn direct(self) -> bool {
        self.word & DIRECT != 0
    }
    /// The 32-byte PDPT slot inside its page (PAE roots), else 0.
    pub fn quadrant(self) -> u8 {
        ((self.word >> QUADRANT_SHIFT) & 0x7F) as u8
    }
    /// The nested (L2) context id: 0 for the L1 guest's own tables.
    pub fn nested(self) -> u16 {
        ((self.word >> NESTED_SHIFT) & 0xFFFF) as u16
    }
    /// MAXPHYADDR the entries were checked against.
    pub fn maxphyaddr(self) -> u8 {
        ((self.word >> MAXPHY_SHIFT) & 0x7F) as u8
    }
    /// A PAE root taken from the PDPTE registers (SDM Vol. 3A §4.4.1 "PDPTE
    /// Registers"): its entries are the registers' values, which a guest write to the
    /// PDPT in memory does not change, so it is neither indexed by frame nor
    /// write-tracked.
    pub fn pdpte_regs(self) -> bool {
        self.word & PDPTE_REGS != 0
    }
    /// The packed word.
    pub fn word(self) -> u64 {
        self.word
    }
}

/// The level of the root table in `mode`.
pub fn top_level(mode: PagingMode) -> u8 {
    match mode {
        PagingMode::Legacy32 => 2,
        PagingMode::Pae => 3,
        PagingMode::Long4 => 4,
        PagingMode::Long5 => 5,
    }
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Role{{level:{} mode:{:?} acc:{:03b} wp:{} smep:{} smap:{} nxe:{} pse:{} q:{} nested:{}}}",
            self.level(),
            self.mode(),
            self.access(),
            u8::from(self.cr0_wp()),
            u8::from(self.smep()),
            u8::from(self.smap()),
            u8::from(self.nxe()),
            u8::from(self.pse()),
            self.quadrant(),
            self.nested()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: PagingMode) -> WalkConfig {
        WalkConfig {
            mode,
            cr3: 0x1000 | 0x60,
            wp: true,
            pse: true,
            nxe: true,
            smep: false,
            smap: true,
            pke: false,
            pkru: 0,
            pdptes: None,
            maxphyaddr: 40,
        }
    }

    #[test]
    fn root_and_child_fields_round_trip() {
        let r = Role::root(&cfg(PagingMode::Pae), 7);
        assert_eq!(r.level(), 3);
        assert_eq!(r.mode(), PagingMode::Pae);
        assert_eq!(r.access(), ACC_ALL);
        assert!(r.cr0_wp() && r.nxe() && r.smap() && !r.smep() && !r.pse() && !r.direct());
        assert_eq!(r.quadrant(), 3);
        assert_eq!(r.nested(), 7);
        assert_eq!(r.maxphyaddr(), 40);
        let c = r.child(ACC_U);
        assert_eq!((c.level(), c.access(), c.quadrant(), c.nested()), (2, ACC_U, 0, 7));
        assert!(c.cr0_wp() && c.nxe());
        let regs = Role::root(&WalkConfig { pdptes: Some([0; 4]), ..cfg(PagingMode::Pae) }, 7);
        assert!(regs.pdpte_regs() && !r.pdpte_regs());
        assert_ne!(regs, r);
        assert_eq!(regs.child(ACC_U), r.child(ACC_U), "children are shared");
    }

    #[test]
    fn different_cr0_wp_or_context_gives_different_roles() {
        let a = Role::root(&cfg(PagingMode::Long4), 0);
        let b = Role::root(&WalkConfig { wp: false, ..cfg(PagingMode::Long4) }, 0);
        let c = Role::root(&cfg(PagingMode::Long4), 1);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a.child(ACC_ALL), a.child(ACC_ALL & !ACC_W));
        assert!(Role::root(&cfg(PagingMode::Legacy32), 0).pse());
    }
}
