//! The shadow page cache, modelled on KVM's shadow MMU (`struct kvm_mmu_page`; Linux
//! `Documentation/virt/kvm/x86/mmu.rst`).
//!
//! A shadow page caches one guest page table as a given [`Role`] sees it, keyed by
//! (guest table frame, role). [`ShadowMmu::translate`] descends the shadow pages of the
//! current root; where every entry it needs is cached, accessed (and, for a write,
//! dirty) and the access is allowed, it answers without reading guest memory. Anything
//! else — a miss, an A/D update to make, a fault to report — goes to `paging::walk`,
//! whose result is returned as is and whose path is then cached. So a translation is
//! always exactly what the walker gives on the current tables, except where the guest
//! changed a leaf entry of an *unsync* page and has not yet executed the flush x86
//! requires: then the old translation may be served, as a hardware TLB may.
//!
//! Coherence:
//! - Frames that hold synchronised shadowed tables are write-tracked
//!   ([`ShadowMmu::is_tracked`]); the vCPU reports every write to them
//!   ([`ShadowMmu::guest_write`]). A write to a frame shadowed only as page tables
//!   (level 1) makes those pages unsync and untracked; any other write is emulated into
//!   the shadow entries (`pte_write`), and a non-leaf table written three times without
//!   being used in between is zapped (write flooding).
//! - Non-leaf shadow pages are therefore always current; only level-1 entries can be
//!   stale. Unsync pages are resynchronised at the flush points: INVLPG (the one entry),
//!   MOV CR3 without no-flush, INVPCID, CR4 paging-bit changes, ASID/VPID flushes (all
//!   unsync pages), a switch of root (the new root's unsync descendants, found through
//!   the `unsync_children` bitmaps, as KVM's `mmu_sync_roots`), and when a page is
//!   linked under a new parent (the new path must see current entries).
//! - Shadow pages are not PCID-tagged. Switching to another CR3 value (another table or
//!   another PCID) therefore resynchronises what the new root reaches even with the
//!   no-flush bit: serving an entry cached under another PCID would be a translation
//!   that PCID could never have cached. Fresher than hardware is always allowed.
//!
//! Flush entry points only record what to synchronise; the work happens at the start
//! of the next translation (or in [`ShadowMmu::sync_pending`]), which has the memory.
//!
//! Determinism: lookups go through a `BTreeMap`, sets are `BTreeSet`s, and every scan
//! runs in shadow-page index order.
//!
//! Wiring into a vCPU:
//! - translate through [`ShadowMmu::translate`] where `paging::walk` was called
//!   (`--no-shadow-cache` keeps the walk);
//! - after every guest write that lands in a frame with [`ShadowMmu::is_tracked`],
//!   call [`ShadowMmu::guest_write`]; a front-end TLB must not let such writes bypass
//!   the check (give tracked frames read-only entries and drop writable ones when
//!   [`ShadowMmu::tracking_epoch`] changes);
//! - INVLPG → [`ShadowMmu::invlpg`]; MOV CR3 → [`ShadowMmu::new_cr3`]; INVPCID →
//!   `invpcid_*`; CR0.PG/WP, CR4.PGE/PAE/PSE/PCIDE/SMEP/SMAP/LA57 and EFER.NXE changes →
//!   [`ShadowMmu::flush_all`]; nested TLB control → [`ShadowMmu::set_context`] and
//!   [`ShadowMmu::flush_asid`];
//! - `--strict-tlb`: for every translation used from a cache ([`Served::Cache`], or a
//!   front-end TLB hit), [`ShadowMmu::check_stale`] and print the report with the RIP;
//! - `--stats`: print [`ShadowMmu::stats`].
//!
//! The hit path re-derives the walker's permission checks (SDM Vol. 3A §4.6),
//! protection keys included (§4.6.2: PKRU is read at each access, so the key check
//! runs on every hit against the `WalkConfig`'s PKRU, and WRPKRU needs no flush). PAE
//! roots taken from the PDPTE registers (`WalkConfig::pdptes`, §4.4.1) are private
//! shadow pages filled from the register values, keyed in the root slots by those
//! values, and neither indexed nor write-tracked: a write to the PDPT in memory changes
//! nothing until the next load. Without registers (`pdptes: None`) the PAE root
//! shadows the PDPT in memory like any table.

mod cache;
mod events;
mod gpte;
mod page;
mod rmap;
mod role;
mod stale;
mod stats;
mod sync;
mod write_track;

pub use events::{ShadowEvent, EVENT_LOG_LIMIT};
pub use gpte::{probe, Format, PathEntry, Probe, ProbeEnd};
pub use page::{ShadowPage, SpId, Spte, NO_SP};
pub use role::{Role, ACC_ALL, ACC_U, ACC_W, ACC_X};
pub use stale::{check_translation, MissingFlush, StaleTranslation};
pub use stats::Stats;
pub use write_track::DENSE_GFN_LIMIT;

use crate::addr::{Gfn, Gva};
use crate::memory::GuestMemory;
use crate::paging::{self, Access, AccessKind, PageFault, Translation, WalkConfig};
use crate::paging::{PKRU_AD, PKRU_WD, PTE_A, PTE_D, PTE_G, PTE_PKEY_SHIFT};
use std::collections::{BTreeMap, BTreeSet};
use write_track::WriteTrack;

/// How many roots stay cached for fast CR3 switching (current + 3, like KVM's
/// `prev_roots`).
pub const ROOT_SLOTS: usize = 4;

/// Emulated writes without an intervening use after which a non-leaf shadow page is
/// zapped (KVM's `detect_write_flooding`).
pub const WRITE_FLOODING_THRESHOLD: u8 = 3;

/// Where a translation came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// From cached shadow entries: it may be stale (see [`ShadowMmu::check_stale`]).
    Cache,
    /// From a guest page walk on the current tables.
    Walk,
}

/// A cached root: the CR3 value, role and (PAE) PDPTE register values it serves.
#[derive(Copy, Clone, Debug)]
struct RootSlot {
    cr3: u64,
    role: Role,
    pdptes: Option<[u64; 4]>,
    sp: SpId,
}

/// Synchronisation owed to flushes the guest executed.
#[derive(Clone, Debug, Default)]
struct Pending {
    any: bool,
    all: bool,
    gvas: Vec<Gva>,
    contexts: Vec<u16>,
}

/// More pending INVLPGs than this become one full synchronisation.
const MAX_PENDING_GVAS: usize = 64;

/// The shadow page cache of one vCPU.
#[derive(Debug)]
pub struct ShadowMmu {
    pages: Vec<Option<ShadowPage>>,
    free: Vec<SpId>,
    index: BTreeMap<(Gfn, Role), SpId>,
    track: WriteTrack,
    unsync: BTreeSet<SpId>,
    /// `mmu_valid_gen`: pages of an older generation are obsolete.
    gen: u64,
    limit: usize,
    count: usize,
    tick: u64,
    /// Most recently used first; `roots[0]` is current when `current_valid`.
    roots: Vec<RootSlot>,
    current_valid: bool,
    /// The configuration `roots[0]` was resolved for (with `context`).
    current_cfg: Option<WalkConfig>,
    context: u16,
    /// The last CR3 load had the PCID no-flush bit.
    last_cr3_no_flush: bool,
    pending: Pending,
    stats: Stats,
    events: events::EventLog,
}

impl ShadowMmu {
    /// An empty cache holding at most `limit_pages` shadow pages (at least 1).
    pub fn new(limit_pages: usize) -> Self {
        Self {
            pages: Vec::new(),
            free: Vec::new(),
            index: BTreeMap::new(),
            track: WriteTrack::default(),
            unsync: BTreeSet::new(),
            gen: 0,
            limit: limit_pages.max(1),
            count: 0,
            tick: 0,
            roots: Vec::with_capacity(ROOT_SLOTS + 1),
            current_valid: false,
            current_cfg: None,
            context: 0,
            last_cr3_no_flush: false,
            pending: Pending::default(),
            stats: Stats::default(),
            events: events::EventLog::default(),
        }
    }

    /// Translates `gva`: exactly `paging::walk`'s result (and A/D side effects) on the
    /// current tables, or a stale translation the guest has not flushed yet.
    pub fn translate(
        &mut self,
        mem: &mut GuestMemory,
        cfg: &WalkConfig,
        gva: Gva,
        access: Access,
    ) -> Result<Translation, PageFault> {
        self.translate_traced(mem, cfg, gva, access).0
    }

    /// [`Self::translate`], also saying whether the answer came from the cache.
    pub fn translate_traced(
        &mut self,
        mem: &mut GuestMemory,
        cfg: &WalkConfig,
        gva: Gva,
        access: Access,
    ) -> (Result<Translation, PageFault>, Served) {
        self.tick += 1;
        self.stats.translations += 1;
        self.sync_pending(mem);
        let Some(root) = self.root_for(mem, cfg) else {
            return (paging::walk(mem, cfg, gva, access), Served::Walk);
        };
        if let Some(t) = self.lookup(cfg, root, gva, access) {
            self.stats.cache_hits += 1;
            return (Ok(t), Served::Cache);
        }
        let r = paging::walk(mem, cfg, gva, access);
        if r.is_ok() {
            self.refresh_accessed_dirty(mem, cfg, gva);
            self.fill(mem, cfg, root, gva);
        }
        (r, Served::Walk)
    }

    /// The hit path: the translation from cached entries, if they suffice.
    #[inline]
    fn lookup(
        &mut self,
        cfg: &WalkConfig,
        root: SpId,
        gva: Gva,
        access: Access,
    ) -> Option<Translation> {
        let f = Format::of(cfg);
        let legacy = cfg.mode == paging::PagingMode::Legacy32;
        let pae = cfg.mode == paging::PagingMode::Pae;
        let tick = self.tick;
        let mut id = root;
        let mut level = f.top_level();
        loop {
            let page = self.pages.get_mut(id as usize)?.as_mut()?;
            page.last_use = tick;
            page.write_flooding_count = 0;
            let pdpte = pae && level == 3;
            let idx = if legacy || pdpte {
                f.index(level, gva)
            } else {
                ((gva.0 >> (3 + 9 * u32::from(level))) & 0x1FF) as usize
            };
            let s = *page.sptes.get(idx)?;
            // Filled entries are present ones (empty entries are all zero). PDPTEs have
            // no accessed flag; every other entry used must have it already set, or the
            // walk has an update to make.
            let need = if pdpte { paging::PTE_P } else { paging::PTE_P | PTE_A };
            if s.gpte & need != need {
                return None;
            }
            // PS is reserved (so never cached) in PML5Es, PML4Es and PAE PDPTEs; in
            // 32-bit paging it counts only with CR4.PSE.
            if level == 1 || (s.gpte & paging::PTE_PS != 0 && (!legacy || cfg.pse)) {
                let write = access.kind == AccessKind::Write;
                let fetch = access.kind == AccessKind::Fetch;
                if write && s.gpte & PTE_D == 0 {
                    return None; // the walk sets D
                }
                let writable = s.access & ACC_W != 0;
                let user = s.access & ACC_U != 0;
                let nx = s.access & ACC_X == 0;
                // Access rights, SDM Vol. 3A §4.6; a denial is reported by the walk.
                let denied = if access.user {
                    !user || (write && !writable) || (fetch && nx)
                } else if fetch {
                    nx || (cfg.smep && user)
                } else {
                    (write && !writable && cfg.wp) || (cfg.smap && user && !access.smap_override)
                };
                if denied {
                    return None;
                }
                // Protection keys (SDM Vol. 3A §4.6.2): PKRU is read at each access, not
                // cached with the translation, so the check runs on every hit; a
                // denial goes to the walk, which reports PFEC_PK.
                let ia32e = !legacy && !pae;
                let pkey = if ia32e { ((s.gpte >> PTE_PKEY_SHIFT) & 0xF) as u8 } else { 0 };
                if cfg.pke && ia32e && user && !fetch {
                    let k = cfg.pkru >> (2 * u32::from(pkey));
                    if k & PKRU_AD != 0 || (k & PKRU_WD != 0 && write && (access.user || cfg.wp)) {
                        return None;
                    }
                }
                let (gpa, page_size) = f.leaf_address(level, s.gpte, gva);
                return Some(Translation {
                    gpa,
                    page_size,
                    writable,
                    user,
                    executable: !nx,
                    global: s.gpte & PTE_G != 0,
                    pkey,
                    leaf: s.gpte,
                    leaf_gpa: page.table.add(idx as u64 * f.entry_size()),
                });
            }
            if s.child == NO_SP {
                return None;
            }
            id = s.child;
            level -= 1;
        }
    }

    /// The root shadow page for `cfg`, switching roots if the CR3 value or role changed.
    fn root_for(&mut self, mem: &GuestMemory, cfg: &WalkConfig) -> Option<SpId> {
        if !(12..=52).contains(&cfg.maxphyaddr) {
            return None;
        }
        if self.current_valid && self.current_cfg.is_some_and(|c| same_walk_config(&c, cfg)) {
            if let Some(s) = self.roots.first() {
                return Some(s.sp);
            }
        }
        let role = Role::root(cfg, self.context);
        let pdptes = if role.pdpte_regs() { cfg.pdptes } else { None };
        let slot = self
            .roots
            .iter()
            .position(|s| s.cr3 == cfg.cr3 && s.role == role && s.pdptes == pdptes);
        let found = slot.is_some();
        let sp = match slot {
            Some(i) => {
                let slot = self.roots.remove(i);
                self.roots.insert(0, slot);
                slot.sp
            }
            None => {
                let table = Format::of(cfg).root_table(cfg.cr3);
                let sp = self.get_page(mem, table, role)?;
                if let Some(p) = self.page_mut(sp) {
                    p.root_count += 1;
                }
                self.roots.insert(0, RootSlot { cr3: cfg.cr3, role, pdptes, sp });
                if self.roots.len() > ROOT_SLOTS {
                    if let Some(old) = self.roots.pop() {
                        self.drop_root(old.sp);
                    }
                }
                sp
            }
        };
        self.current_valid = true;
        self.current_cfg = Some(*cfg);
        self.note(ShadowEvent::RootSwitch { cr3: cfg.cr3, sp, role, cached: found });
        // KVM's mmu_sync_roots: the new root may reach pages that went unsync while
        // another CR3 value was current.
        self.sync_subtree(mem, sp);
        Some(sp)
    }

    /// Releases one root slot's hold on `sp`. A PDPTE-register root is reachable from
    /// nowhere else, so it goes with its last slot.
    pub(super) fn drop_root(&mut self, sp: SpId) {
        let Some(p) = self.page_mut(sp) else { return };
        p.root_count = p.root_count.saturating_sub(1);
        if p.root_count == 0 && p.role.pdpte_regs() {
            self.zap(sp);
        }
    }

    /// Caches the path of a walk that just succeeded.
    fn fill(&mut self, mem: &GuestMemory, cfg: &WalkConfig, root: SpId, gva: Gva) {
        let f = Format::of(cfg);
        let tick = self.tick;
        let mut id = root;
        let mut level = f.top_level();
        loop {
            let Some(page) = self.page_mut(id) else { return };
            page.last_use = tick;
            page.write_flooding_count = 0;
            let (table, role) = (page.table, page.role);
            let idx = f.index(level, gva);
            let e = match cfg.pdptes {
                // SDM Vol. 3A §4.4.1: PAE walks take the PDPTEs from the registers.
                Some(regs) if role.pdpte_regs() => regs[idx],
                _ => f.read(mem, table.add(idx as u64 * f.entry_size())),
            };
            if e & paging::PTE_P == 0 || f.reserved(level, e) {
                self.clear_spte(id, idx);
                return;
            }
            let acc = role.access() & f.access(level, e);
            if f.is_leaf(level, e) {
                self.set_spte(id, idx, Spte { gpte: e, child: NO_SP, access: acc, filled: true });
                return;
            }
            let next = f.next_table(e);
            let child_role = role.child(acc);
            let cur = self.spte(id, idx);
            let keep = cur.filled
                && cur.child != NO_SP
                && self.page(cur.child).is_some_and(|c| c.role == child_role && c.table == next);
            let child = if keep {
                cur.child
            } else {
                self.clear_spte(id, idx);
                let Some(c) = self.get_page(mem, next, child_role) else { return };
                if self.page(id).is_none() {
                    return; // cannot happen: pages used this tick are not recycled
                }
                self.set_spte(id, idx, Spte { gpte: e, child: c, access: acc, filled: true });
                self.link(id, idx, c);
                // A page reached through a new path must not serve entries that went
                // stale on another path (KVM syncs unsync pages in kvm_mmu_get_page).
                if self.page(c).is_some_and(|p| p.unsync) {
                    self.sync_page(mem, c);
                } else if self.page(c).is_some_and(|p| p.unsync_children > 0) {
                    self.sync_subtree(mem, c);
                }
                c
            };
            if keep {
                if let Some(p) = self.page_mut(id) {
                    p.sptes[idx].gpte = e;
                }
            }
            id = child;
            level -= 1;
        }
    }

    /// After a walk set accessed/dirty flags, brings every shadow entry that caches one
    /// of the walked entries (under any role) up to date with them.
    fn refresh_accessed_dirty(&mut self, mem: &GuestMemory, cfg: &WalkConfig, gva: Gva) {
        let p = probe(mem, cfg, gva);
        let esz = Format::of(cfg).entry_size();
        for e in &p.path[..p.len] {
            if !Format::of(cfg).has_accessed_flag(e.level) {
                continue; // PAE PDPTEs (and the registers) have no A/D flags
            }
            for id in self.shadows_of(e.at.gfn()) {
                let Some(page) = self.page_mut(id) else { continue };
                let Some(off) = e.at.0.checked_sub(page.table.0) else { continue };
                let idx = (off / esz) as usize;
                if let Some(s) = page.sptes.get_mut(idx) {
                    if s.filled && s.gpte | PTE_A | PTE_D == e.value | PTE_A | PTE_D {
                        s.gpte = e.value;
                    }
                }
            }
        }
    }

    /// Whether writes to `gfn` must be reported with [`Self::guest_write`]. O(1).
    #[inline]
    pub fn is_tracked(&self, gfn: Gfn) -> bool {
        self.track.is_tracked(gfn)
    }

    /// Changes whenever some frame becomes write-tracked. A vCPU whose front-end TLB
    /// lets writes bypass [`Self::is_tracked`] must drop writable entries when this
    /// changes.
    #[inline]
    pub fn tracking_epoch(&self) -> u64 {
        self.track.epoch()
    }

    /// Selects the nested (L2) context the following translations belong to; 0 is the
    /// guest's own context. Shadow pages of different contexts never mix.
    pub fn set_context(&mut self, context: u16) {
        if context != self.context {
            self.context = context;
            self.current_valid = false;
        }
    }

    /// INVLPG: the translation of `gva` must be current afterwards (SDM Vol. 3A
    /// §4.10.4.1 "Operations that Invalidate TLBs and Paging-Structure Caches"). Shadow
    /// pages are not PCID-tagged, so `pcid` only documents the call.
    pub fn invlpg(&mut self, gva: Gva, _pcid: u16) {
        self.stats.invlpg += 1;
        self.pending.any = true;
        if self.pending.gvas.len() >= MAX_PENDING_GVAS {
            self.pending.all = true;
        } else {
            self.pending.gvas.push(gva);
        }
    }

    /// MOV to CR3. `cr3` is the value CR3 now holds (bit 63 of the source is not part
    /// of it); `no_flush` is CR4.PCIDE=1 with bit 63 of the source set, in which case
    /// nothing is flushed (SDM Vol. 3A §4.10.4.1). Otherwise every unsync page is
    /// resynchronised.
    pub fn new_cr3(&mut self, cr3: u64, no_flush: bool) {
        self.last_cr3_no_flush = no_flush;
        if !no_flush {
            self.stats.tlb_flush += 1;
            self.pending.all = true;
            self.pending.any = true;
        }
        if !no_flush || self.roots.first().map_or(true, |s| s.cr3 != cr3) {
            self.current_valid = false;
        }
    }

    /// A flush of everything, global pages included: CR4.PGE/PCIDE/PAE/PSE/SMEP changes,
    /// CR0.PG changes, and the like.
    pub fn flush_all(&mut self) {
        self.stats.tlb_flush += 1;
        self.pending.all = true;
        self.pending.any = true;
        self.current_valid = false;
    }

    /// INVPCID type 0 (individual address).
    pub fn invpcid_address(&mut self, pcid: u16, gva: Gva) {
        self.invlpg(gva, pcid);
    }

    /// INVPCID type 1 (single context). Shadow pages are shared between PCIDs, so every
    /// unsync page is resynchronised.
    pub fn invpcid_context(&mut self, _pcid: u16) {
        self.flush_all();
    }

    /// INVPCID type 2 (all contexts, global translations included).
    pub fn invpcid_all(&mut self) {
        self.flush_all();
    }

    /// INVPCID type 3 (all contexts except global translations).
    pub fn invpcid_all_non_global(&mut self) {
        self.flush_all();
    }

    /// A flush of one nested context (SVM ASID TLB control / INVLPGA-all, VMX
    /// INVVPID/INVEPT): resynchronises the unsync pages of that context.
    pub fn flush_asid(&mut self, context: u16) {
        self.stats.tlb_flush += 1;
        self.pending.contexts.push(context);
        self.pending.any = true;
        if context == self.context {
            self.current_valid = false;
        }
    }

    /// Performs the synchronisation owed to earlier flush calls.
    #[inline]
    pub fn sync_pending(&mut self, mem: &GuestMemory) {
        if self.pending.any {
            self.sync_pending_slow(mem);
        }
    }

    #[cold]
    fn sync_pending_slow(&mut self, mem: &GuestMemory) {
        let p = std::mem::take(&mut self.pending);
        if p.all {
            self.sync_all(mem, None);
            return;
        }
        for gva in p.gvas {
            self.sync_gva(mem, gva);
        }
        for c in p.contexts {
            self.sync_all(mem, Some(c));
        }
    }

    /// The counters, with the current number of shadow pages.
    pub fn stats(&self) -> Stats {
        Stats {
            shadow_pages: self.count as u64,
            unsync_pages: self.unsync.len() as u64,
            ..self.stats
        }
    }

    /// The shadow page `id`, if it exists.
    pub fn page(&self, id: SpId) -> Option<&ShadowPage> {
        self.pages.get(id as usize)?.as_ref()
    }

    fn page_mut(&mut self, id: SpId) -> Option<&mut ShadowPage> {
        self.pages.get_mut(id as usize)?.as_mut()
    }

    /// The live shadow pages of `gfn` (all roles), in key order.
    pub fn shadows_of(&self, gfn: Gfn) -> Vec<SpId> {
        self.index
            .range((gfn, Role::default())..(Gfn(gfn.0.wrapping_add(1)), Role::default()))
            .map(|(_, &id)| id)
            .collect()
    }

    /// The shadow page for (table frame, role), if cached and not obsolete.
    pub fn find(&self, gfn: Gfn, role: Role) -> Option<SpId> {
        let id = *self.index.get(&(gfn, role))?;
        (self.page(id)?.gen == self.gen).then_some(id)
    }

    /// The current root, if one is resolved.
    pub fn current_root(&self) -> Option<SpId> {
        if self.current_valid {
            self.roots.first().map(|s| s.sp)
        } else {
            None
        }
    }

    fn spte(&self, id: SpId, idx: usize) -> Spte {
        self.page(id).and_then(|p| p.sptes.get(idx).copied()).unwrap_or(Spte::EMPTY)
    }

    /// Sets an entry, unlinking the child it held if that changes.
    fn set_spte(&mut self, id: SpId, idx: usize, new: Spte) {
        let old = self.spte(id, idx);
        if old.child != NO_SP && old.child != new.child {
            self.unlink(id, idx, old.child);
        }
        if let Some(s) = self.page_mut(id).and_then(|p| p.sptes.get_mut(idx)) {
            *s = new;
        }
    }

    fn clear_spte(&mut self, id: SpId, idx: usize) {
        self.set_spte(id, idx, Spte::EMPTY);
    }
}

/// Whether two walk configurations give the same root (every field the root role and
/// CR3 depend on).
#[inline(always)]
fn same_walk_config(a: &WalkConfig, b: &WalkConfig) -> bool {
    a.cr3 == b.cr3
        && a.mode == b.mode
        && a.wp == b.wp
        && a.pse == b.pse
        && a.nxe == b.nxe
        && a.smep == b.smep
        && a.smap == b.smap
        && a.maxphyaddr == b.maxphyaddr
        && a.pke == b.pke
        && a.pdptes == b.pdptes
}

/// The guest format a role's tables are in.
pub(crate) fn format_of_role(role: Role) -> Format {
    Format { mode: role.mode(), pse: role.pse(), nxe: role.nxe(), maxphyaddr: role.maxphyaddr() }
}
