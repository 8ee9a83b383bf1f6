//! Write tracking of the frames that hold synchronised shadowed tables (KVM's
//! `kvm_page_track` write-protection), and the handling of guest writes to them:
//! unsync for page tables, in-place emulation (`kvm_mmu_pte_write`) and write-flooding
//! detection for the rest.

use super::format_of_role;
use super::page::SpId;
use super::{ShadowEvent, ShadowMmu, WRITE_FLOODING_THRESHOLD};
use crate::addr::{Gfn, Gpa, PAGE_SIZE};
use crate::memory::GuestMemory;

/// Frames at or above this number (16 GiB) are never shadowed, so that the tracking
/// table stays a dense vector.
pub const DENSE_GFN_LIMIT: u64 = 1 << 22;

/// Per-frame count of synchronised shadow pages, indexed by frame number.
#[derive(Clone, Debug, Default)]
pub struct WriteTrack {
    counts: Vec<u32>,
    /// Incremented whenever a frame goes from untracked to tracked.
    epoch: u64,
}

impl WriteTrack {
    /// Whether `gfn` can be tracked at all.
    pub fn can_track(&self, gfn: Gfn) -> bool {
        gfn.0 < DENSE_GFN_LIMIT
    }

    /// Whether writes to `gfn` must be reported.
    #[inline]
    pub fn is_tracked(&self, gfn: Gfn) -> bool {
        usize::try_from(gfn.0).ok().and_then(|i| self.counts.get(i)).is_some_and(|&c| c > 0)
    }

    /// One more synchronised shadow page of `gfn`.
    pub fn add(&mut self, gfn: Gfn) {
        let Ok(i) = usize::try_from(gfn.0) else { return };
        if gfn.0 >= DENSE_GFN_LIMIT {
            return;
        }
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        if self.counts[i] == 0 {
            self.epoch += 1;
        }
        self.counts[i] += 1;
    }

    /// How many times a frame became tracked.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// One synchronised shadow page of `gfn` fewer.
    pub fn remove(&mut self, gfn: Gfn) {
        if let Some(c) = usize::try_from(gfn.0).ok().and_then(|i| self.counts.get_mut(i)) {
            *c = c.saturating_sub(1);
        }
    }
}

impl ShadowMmu {
    /// The guest wrote `len` bytes at `gpa` (the memory already holds the new bytes).
    /// The vCPU calls this for every write that touches a frame for which
    /// [`Self::is_tracked`] is true.
    pub fn guest_write(&mut self, mem: &GuestMemory, gpa: Gpa, len: usize) {
        if len == 0 {
            return;
        }
        let last = gpa.0.saturating_add(len as u64 - 1);
        let mut gfn = gpa.gfn().0;
        while gfn <= last >> 12 {
            let g = Gfn(gfn);
            if self.is_tracked(g) {
                let lo = gpa.0.max(g.gpa().0);
                let hi = last.min(g.gpa().0 + PAGE_SIZE - 1);
                self.write_frame(mem, g, lo, hi);
            }
            gfn += 1;
        }
    }

    /// A write to bytes `lo..=hi` of tracked frame `gfn`.
    fn write_frame(&mut self, mem: &GuestMemory, gfn: Gfn, lo: u64, hi: u64) {
        let mut live: Vec<SpId> = Vec::new();
        for id in self.shadows_of(gfn) {
            if self.obsolete(id) {
                self.zap(id);
            } else {
                live.push(id);
            }
        }
        let sync: Vec<SpId> =
            live.iter().copied().filter(|&id| self.page(id).is_some_and(|p| !p.unsync)).collect();
        if sync.is_empty() {
            return;
        }
        // Only page tables may go unsync; a frame also used as a higher-level table
        // stays write-protected (KVM's mmu_try_to_unsync_pages).
        if live.iter().all(|&id| self.page(id).is_some_and(|p| p.role.level() == 1)) {
            for id in sync {
                if let Some(p) = self.page_mut(id) {
                    p.unsync = true;
                }
                self.unsync.insert(id);
                self.track.remove(gfn);
                self.stats.mmu_unsync += 1;
                self.note(ShadowEvent::Unsync { sp: id, gfn });
                self.mark_parents_unsync(id);
            }
            return;
        }
        self.stats.mmu_pte_write += 1;
        for id in live {
            let Some(page) = self.page_mut(id) else { continue };
            if page.role.level() > 1 {
                page.write_flooding_count = page.write_flooding_count.saturating_add(1);
                if page.write_flooding_count >= WRITE_FLOODING_THRESHOLD {
                    let writes = page.write_flooding_count;
                    self.stats.mmu_flooded += 1;
                    self.note(ShadowEvent::WriteFlooding { sp: id, gfn, writes });
                    self.zap(id);
                    continue;
                }
            }
            let f = format_of_role(page.role);
            let esz = f.entry_size();
            let table = page.table.0;
            let end = table + page.sptes.len() as u64 * esz; // exclusive
            let (from, to) = (lo.max(table), hi.min(end - 1));
            if from > to {
                continue;
            }
            for idx in ((from - table) / esz)..=((to - table) / esz) {
                if self.update_spte(mem, id, idx as usize) {
                    self.stats.mmu_pte_updated += 1;
                }
            }
        }
    }
}
