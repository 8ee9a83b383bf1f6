//! Unsync pages and their resynchronisation (KVM's `kvm_sync_page`,
//! `mmu_sync_children`, `FNAME(invlpg)`), and the in-place update of one shadow entry
//! from its guest entry, shared by resync and by write emulation (`FNAME(update_pte)`).

use super::format_of_role;
use super::page::{SpId, Spte, NO_SP};
use super::{ShadowEvent, ShadowMmu};
use crate::addr::Gva;
use crate::memory::GuestMemory;
use crate::paging::PTE_P;

impl ShadowMmu {
    /// Re-reads guest entry `idx` of page `id` and updates its shadow entry: in place
    /// when the entry still maps the same thing (a leaf, or a non-leaf pointing to the
    /// same table with the same rights), emptied otherwise. Entries that cache nothing
    /// stay empty. Returns whether the shadow entry changed.
    pub(super) fn update_spte(&mut self, mem: &GuestMemory, id: SpId, idx: usize) -> bool {
        let Some(page) = self.page(id) else { return false };
        let Some(&old) = page.sptes.get(idx) else { return false };
        if !old.filled {
            return false;
        }
        let role = page.role;
        let f = format_of_role(role);
        let level = role.level();
        let e = f.read(mem, page.table.add(idx as u64 * f.entry_size()));
        if e == old.gpte {
            return false;
        }
        if e & PTE_P == 0 || f.reserved(level, e) {
            self.clear_spte(id, idx);
            return true;
        }
        let access = role.access() & f.access(level, e);
        if f.is_leaf(level, e) {
            self.set_spte(id, idx, Spte { gpte: e, child: NO_SP, access, filled: true });
        } else if old.child != NO_SP
            && !f.is_leaf(level, old.gpte)
            && f.next_table(e) == f.next_table(old.gpte)
            && access == old.access
        {
            self.set_spte(id, idx, Spte { gpte: e, ..old });
        } else {
            self.clear_spte(id, idx);
        }
        true
    }

    /// Resynchronises an unsync page with the guest table and write-protects it again.
    pub(super) fn sync_page(&mut self, mem: &GuestMemory, id: SpId) {
        let Some(page) = self.page(id) else { return };
        if !page.unsync {
            return;
        }
        let (n, gfn) = (page.sptes.len(), page.gfn);
        let mut updated = 0;
        for idx in 0..n {
            updated += u32::from(self.update_spte(mem, id, idx));
        }
        self.note(ShadowEvent::Sync { sp: id, gfn, updated });
        if let Some(p) = self.page_mut(id) {
            p.unsync = false;
        }
        self.unsync.remove(&id);
        self.track.add(gfn);
        self.clear_parents_marks(id);
    }

    /// Resynchronises every unsync page below `id`, following the unsync-children
    /// bitmaps.
    pub(super) fn sync_subtree(&mut self, mem: &GuestMemory, id: SpId) {
        let Some(page) = self.page(id) else { return };
        if page.unsync_children == 0 {
            return;
        }
        for idx in page.marked_children() {
            let child = self.page(id).and_then(|p| p.sptes.get(idx)).map_or(NO_SP, |s| s.child);
            match self.page(child) {
                None => self.clear_mark(id, idx),
                Some(c) if c.unsync => self.sync_page(mem, child),
                Some(_) => self.sync_subtree(mem, child),
            }
        }
    }

    /// Resynchronises every unsync page, or those of one nested context.
    pub(super) fn sync_all(&mut self, mem: &GuestMemory, context: Option<u16>) {
        let ids: Vec<SpId> = self.unsync.iter().copied().collect();
        for id in ids {
            if self.obsolete(id) {
                self.zap(id);
                continue;
            }
            if context.map_or(true, |c| self.page(id).is_some_and(|p| p.role.nested() == c)) {
                self.sync_page(mem, id);
            }
        }
    }

    /// INVLPG: resynchronises the entry that maps `gva` under every cached root.
    pub(super) fn sync_gva(&mut self, mem: &GuestMemory, gva: Gva) {
        let roots: Vec<SpId> = self.roots.iter().map(|s| s.sp).collect();
        for root in roots {
            let mut id = root;
            loop {
                let Some(page) = self.page(id) else { break };
                let f = format_of_role(page.role);
                let idx = f.index(page.role.level(), gva);
                let Some(s) = page.sptes.get(idx).copied() else { break };
                if page.unsync {
                    self.update_spte(mem, id, idx);
                    break;
                }
                if !s.filled || s.child == NO_SP {
                    break;
                }
                id = s.child;
            }
        }
    }
}
