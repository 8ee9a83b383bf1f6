//! The shadow page arena: lookup by (frame, role), allocation under the page bound with
//! least-recently-used recycling, zapping one page, and the O(1) zap of everything by
//! generation number (KVM's `mmu_valid_gen`).

use super::format_of_role;
use super::page::{ShadowPage, SpId, Spte, NO_SP};
use super::role::Role;
use super::ShadowEvent;
use super::ShadowMmu;
use crate::addr::Gpa;
use crate::memory::GuestMemory;

impl ShadowMmu {
    /// The shadow page for the guest table at `table` seen with `role`, created if
    /// needed (KVM's `kvm_mmu_get_page`). `None` if the table cannot be shadowed (not
    /// RAM, beyond the tracked range) or no page can be freed. A PDPTE-register root
    /// (`role.pdpte_regs()`) is always new, private to its root slot: it is neither
    /// indexed nor write-tracked, since memory writes do not change the registers.
    pub(super) fn get_page(&mut self, mem: &GuestMemory, table: Gpa, role: Role) -> Option<SpId> {
        let gfn = table.gfn();
        let private = role.pdpte_regs();
        if let Some(&id) = self.index.get(&(gfn, role)).filter(|_| !private) {
            let gen = self.gen;
            let tick = self.tick;
            match self.page_mut(id) {
                Some(p) if p.gen == gen => {
                    p.last_use = tick;
                    return Some(id);
                }
                _ => self.zap(id),
            }
        }
        if !self.track.can_track(gfn) || mem.ram_page(gfn).is_none() {
            return None;
        }
        let id = self.alloc()?;
        let entries = format_of_role(role).entries(role.level());
        let page = ShadowPage::new(gfn, role, table, entries, self.gen, self.tick);
        if let Some(slot) = self.pages.get_mut(id as usize) {
            *slot = Some(page);
        }
        if !private {
            self.index.insert((gfn, role), id);
            self.track.add(gfn);
        }
        self.count += 1;
        self.stats.mmu_cache_miss += 1;
        self.note(ShadowEvent::Create { sp: id, gfn, role });
        Some(id)
    }

    /// A free arena slot, recycling the least recently used page at the bound.
    fn alloc(&mut self) -> Option<SpId> {
        if self.count >= self.limit {
            let victim = self.lru_victim()?;
            self.note(ShadowEvent::Recycle { sp: victim });
            self.zap(victim);
            self.stats.mmu_recycled += 1;
        }
        if let Some(id) = self.free.pop() {
            return Some(id);
        }
        let id = SpId::try_from(self.pages.len()).ok().filter(|&id| id != NO_SP)?;
        self.pages.push(None);
        Some(id)
    }

    /// The page to recycle: an obsolete one if any, else the least recently used page
    /// that is neither a root nor used by the translation in progress. Ties go to the
    /// lowest index.
    fn lru_victim(&self) -> Option<SpId> {
        let mut best: Option<(bool, u64, SpId)> = None;
        for (i, p) in self.pages.iter().enumerate() {
            let Some(p) = p else { continue };
            if p.root_count > 0 || p.last_use >= self.tick {
                continue;
            }
            let key = (p.gen == self.gen, p.last_use, i as SpId);
            if best.map_or(true, |b| key < b) {
                best = Some(key);
            }
        }
        best.map(|b| b.2)
    }

    /// Removes one shadow page: its entries' links to children, its parents' entries
    /// pointing at it, its root slots, its write tracking.
    pub(super) fn zap(&mut self, id: SpId) {
        let Some(n) = self.page(id).map(|p| p.sptes.len()) else { return };
        for idx in 0..n {
            let child = self.page(id).map_or(NO_SP, |p| p.sptes[idx].child);
            if child != NO_SP {
                self.unlink(id, idx, child);
                if let Some(p) = self.page_mut(id) {
                    p.sptes[idx].child = NO_SP;
                }
            }
        }
        let parents = self.page_mut(id).map(|p| std::mem::take(&mut p.parents)).unwrap_or_default();
        for (p, i) in parents {
            let i = usize::from(i);
            if let Some(s) = self.page_mut(p).and_then(|pp| pp.sptes.get_mut(i)) {
                *s = Spte::EMPTY;
            }
            self.clear_mark(p, i);
        }
        if self.roots.iter().any(|s| s.sp == id) {
            self.roots.retain(|s| s.sp != id);
            self.current_valid = false;
        }
        let Some(page) = self.pages.get_mut(id as usize).and_then(Option::take) else { return };
        if page.unsync {
            self.unsync.remove(&id);
        } else if !page.role.pdpte_regs() {
            self.track.remove(page.gfn);
        }
        if self.index.get(&(page.gfn, page.role)) == Some(&id) {
            self.index.remove(&(page.gfn, page.role));
        }
        self.note(ShadowEvent::Zap { sp: id, gfn: page.gfn, role: page.role });
        self.free.push(id);
        self.count -= 1;
        self.stats.mmu_shadow_zapped += 1;
    }

    /// Makes every shadow page obsolete in O(1). Obsolete pages serve nothing; they are
    /// reclaimed lazily (when found by key, written, synced or recycled first).
    pub fn zap_all(&mut self) {
        self.gen += 1;
        self.note(ShadowEvent::ZapAll { generation: self.gen });
        for s in std::mem::take(&mut self.roots) {
            self.drop_root(s.sp);
        }
        self.current_valid = false;
    }

    /// Whether `id` belongs to an older generation.
    pub(super) fn obsolete(&self, id: SpId) -> bool {
        self.page(id).map_or(true, |p| p.gen != self.gen)
    }
}
