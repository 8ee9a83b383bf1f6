//! A shadow page and its entries (KVM's `struct kvm_mmu_page` and its `spt`).
//!
//! A shadow entry (spte) caches one guest entry as it was last seen, plus what the
//! translation path derives from it: the access rights accumulated down to it and, for
//! a non-leaf entry, the shadow page of the table it points to.

use super::role::Role;
use crate::addr::{Gfn, Gpa};

/// Index of a shadow page in the cache's arena.
pub type SpId = u32;

/// "No shadow page".
pub const NO_SP: SpId = SpId::MAX;

/// One cached guest entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Spte {
    /// The guest entry as last synchronised (present, no reserved bits).
    pub gpte: u64,
    /// The child shadow page (non-leaf entries), or [`NO_SP`].
    pub child: SpId,
    /// Access rights accumulated from the root down to and including this entry.
    pub access: u8,
    /// Whether this entry caches anything. An empty entry sends the translation to the
    /// guest walk.
    pub filled: bool,
}

impl Spte {
    /// An entry that caches nothing.
    pub const EMPTY: Spte = Spte { gpte: 0, child: NO_SP, access: 0, filled: false };
}

/// One shadow page.
#[derive(Clone, Debug)]
pub struct ShadowPage {
    /// The guest frame of the shadowed table.
    pub gfn: Gfn,
    /// Its role.
    pub role: Role,
    /// Address of the guest table (page-aligned except for PAE PDPTs).
    pub table: Gpa,
    /// The shadow entries, one per guest entry.
    pub sptes: Box<[Spte]>,
    /// Reverse map: the (parent page, entry index) pairs that point here.
    pub parents: Vec<(SpId, u16)>,
    /// How many root slots hold this page.
    pub root_count: u32,
    /// The guest may write the table freely; entries may be stale until a sync.
    pub unsync: bool,
    /// Number of entries whose child is unsync or has unsync children.
    pub unsync_children: u32,
    /// Which entries those are.
    pub unsync_child_bitmap: [u64; 16],
    /// The cache generation this page was created in; older pages are obsolete.
    pub gen: u64,
    /// Emulated writes since the translation path last used this page.
    pub write_flooding_count: u8,
    /// Translation tick of the last use, for LRU recycling.
    pub last_use: u64,
}

impl ShadowPage {
    /// A new page with every entry empty.
    pub fn new(gfn: Gfn, role: Role, table: Gpa, entries: usize, gen: u64, tick: u64) -> Self {
        Self {
            gfn,
            role,
            table,
            sptes: vec![Spte::EMPTY; entries].into_boxed_slice(),
            parents: Vec::new(),
            root_count: 0,
            unsync: false,
            unsync_children: 0,
            unsync_child_bitmap: [0; 16],
            gen,
            write_flooding_count: 0,
            last_use: tick,
        }
    }

    /// Whether entry `idx` is marked in the unsync-children bitmap.
    pub fn child_marked(&self, idx: usize) -> bool {
        self.unsync_child_bitmap[idx / 64] & (1 << (idx % 64)) != 0
    }

    /// The indices marked in the unsync-children bitmap, in ascending order.
    pub fn marked_children(&self) -> Vec<usize> {
        let mut v = Vec::new();
        for (w, &bits) in self.unsync_child_bitmap.iter().enumerate() {
            let mut b = bits;
            while b != 0 {
                let i = b.trailing_zeros() as usize;
                v.push(w * 64 + i);
                b &= b - 1;
            }
        }
        v
    }
}
