//! Reverse maps: each shadow page lists the (parent, entry) pairs pointing at it, and
//! each parent marks in `unsync_child_bitmap` the entries whose child is unsync or has
//! unsync descendants, so that a sync from a root visits only those (KVM's
//! `parent_ptes`, `unsync_children`, `unsync_child_bitmap`).

use super::page::SpId;
use super::ShadowMmu;

impl ShadowMmu {
    /// Records that entry `idx` of `parent` points at `child`.
    pub(super) fn link(&mut self, parent: SpId, idx: usize, child: SpId) {
        let Some(c) = self.page_mut(child) else { return };
        c.parents.push((parent, idx as u16));
        if c.unsync || c.unsync_children > 0 {
            self.set_mark(parent, idx);
        }
    }

    /// Forgets that entry `idx` of `parent` points at `child`.
    pub(super) fn unlink(&mut self, parent: SpId, idx: usize, child: SpId) {
        if let Some(c) = self.page_mut(child) {
            if let Some(pos) =
                c.parents.iter().position(|&(p, i)| p == parent && usize::from(i) == idx)
            {
                c.parents.swap_remove(pos);
            }
        }
        self.clear_mark(parent, idx);
    }

    /// Marks entry `idx` of `id` as leading to unsync pages, and so on up.
    pub(super) fn set_mark(&mut self, id: SpId, idx: usize) {
        let Some(p) = self.page_mut(id) else { return };
        if p.child_marked(idx) {
            return;
        }
        p.unsync_child_bitmap[idx / 64] |= 1 << (idx % 64);
        p.unsync_children += 1;
        if p.unsync_children == 1 {
            for (pp, i) in p.parents.clone() {
                self.set_mark(pp, usize::from(i));
            }
        }
    }

    /// Clears the mark of entry `idx` of `id`, and so on up when `id` has no unsync
    /// descendants left.
    pub(super) fn clear_mark(&mut self, id: SpId, idx: usize) {
        let Some(p) = self.page_mut(id) else { return };
        if idx >= p.unsync_child_bitmap.len() * 64 || !p.child_marked(idx) {
            return;
        }
        p.unsync_child_bitmap[idx / 64] &= !(1 << (idx % 64));
        p.unsync_children -= 1;
        if p.unsync_children == 0 {
            for (pp, i) in p.parents.clone() {
                self.clear_mark(pp, usize::from(i));
            }
        }
    }

    /// Marks every parent of the (newly unsync) page `id`.
    pub(super) fn mark_parents_unsync(&mut self, id: SpId) {
        let parents = self.page(id).map(|p| p.parents.clone()).unwrap_or_default();
        for (p, i) in parents {
            self.set_mark(p, usize::from(i));
        }
    }

    /// Clears the marks of every parent of the (newly synchronised) page `id`.
    pub(super) fn clear_parents_marks(&mut self, id: SpId) {
        let parents = self.page(id).map(|p| p.parents.clone()).unwrap_or_default();
        for (p, i) in parents {
            self.clear_mark(p, usize::from(i));
        }
    }
}
