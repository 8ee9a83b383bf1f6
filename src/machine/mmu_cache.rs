//! The machine's side of the shadow page cache (`hvsim_mmu::shadow`) and of
//! `--strict-tlb`: the flush points the vCPU reports to the cache, the write tracking
//! that keeps the front-end TLB from writing to shadowed page tables behind the cache's
//! back, and the stale-translation reports.
//!
//! Translation order (see `cpu/access.rs`): front-end TLB, then the shadow cache (which
//! walks the guest tables on a miss), or a plain guest walk with `--no-shadow-cache`.
//!
//! `--strict-tlb` bypasses the TLB's fast path, so every use of a cached translation —
//! a TLB entry or a shadow-cache answer — is checked against the guest's tables now
//! (`hvsim_mmu::shadow::check_translation`). A use that no longer matches is a
//! translation the guest changed without the flush x86 requires (SDM Vol. 3A §4.10.4.2
//! "Recommended Invalidation"); it is still used, as hardware may, and reported once per
//! (guest RIP, linear page).

use super::Machine;
use crate::cpu::tlb::TLB_ENTRIES;
use hvsim_mmu::paging::{Translation, WalkConfig};
use hvsim_mmu::shadow::{check_translation, ShadowMmu, StaleTranslation, Stats};
use hvsim_mmu::{Gfn, Gpa, Gva};
use std::collections::BTreeSet;
use std::fmt;

/// Shadow pages the cache may hold before it recycles the least recently used.
pub const SHADOW_PAGE_LIMIT: usize = 4096;

/// Distinct stale uses kept; later ones are counted, not stored.
pub const MAX_STALE_REPORTS: usize = 1024;

/// A TLB flush the guest executed, as the shadow cache and `--strict-tlb` need to know
/// it (SDM Vol. 3A §4.10.4.1 "Operations that Invalidate TLBs and Paging-Structure
/// Caches"). The vCPU's own TLB invalidation happens beside each call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MmuFlush {
    /// INVLPG, or INVPCID type 0: one linear address of one PCID (and global entries).
    Page {
        /// The linear address.
        lin: u64,
        /// The PCID.
        pcid: u16,
    },
    /// MOV to CR3 (or a task switch loading CR3); `no_flush` when CR4.PCIDE = 1 and
    /// bit 63 of the source was set.
    Cr3 {
        /// The translations of the PCID were kept.
        no_flush: bool,
    },
    /// INVPCID type 1: one PCID's non-global translations.
    Pcid(u16),
    /// INVPCID type 3: every PCID's non-global translations.
    AllNonGlobal,
    /// Everything: CR0.PG/WP, CR4 paging bits, EFER changes, INVPCID type 2.
    All,
    /// One nested translation context's translations (SVM TLB_CONTROL 3 and 7, APM Vol.
    /// 2 §15.16 "TLB Control"): the shadow pages of that context are resynchronised.
    Context(u16),
}

/// One use of a stale translation, with the instruction that made it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StaleUse {
    /// RIP of the instruction whose access used the translation.
    pub rip: u64,
    /// Retired-instruction count at the time.
    pub insn_count: u64,
    /// What was used and what the tables say now.
    pub stale: StaleTranslation,
}

impl fmt::Display for StaleUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rip {:#x} (instruction {}): {}", self.rip, self.insn_count, self.stale)
    }
}

/// `--strict-tlb` state.
#[derive(Clone, Debug)]
pub(crate) struct StrictTlb {
    /// Per TLB slot: the page number and the walk result its entry was filled from.
    filled: Vec<Option<(u64, Translation)>>,
    /// (RIP, linear page) pairs already reported.
    seen: BTreeSet<(u64, u64)>,
    reports: Vec<StaleUse>,
    /// Distinct stale uses beyond [`MAX_STALE_REPORTS`].
    dropped: u64,
    last_cr3_no_flush: bool,
}

impl StrictTlb {
    pub(crate) fn new() -> Self {
        Self {
            filled: vec![None; TLB_ENTRIES],
            seen: BTreeSet::new(),
            reports: Vec::new(),
            dropped: 0,
            last_cr3_no_flush: false,
        }
    }
}

impl Machine {
    /// Tells the shadow cache (and `--strict-tlb`) about a TLB flush the guest executed.
    pub fn mmu_flush(&mut self, flush: MmuFlush) {
        if let (Some(st), MmuFlush::Cr3 { no_flush }) = (self.strict.as_mut(), flush) {
            st.last_cr3_no_flush = no_flush;
        }
        let Some(s) = self.shadow.as_mut() else { return };
        match flush {
            MmuFlush::Page { lin, pcid } => s.invlpg(Gva(lin), pcid),
            MmuFlush::Cr3 { no_flush } => s.new_cr3(self.cpu.cr3, no_flush),
            MmuFlush::Pcid(pcid) => s.invpcid_context(pcid),
            MmuFlush::AllNonGlobal => s.invpcid_all_non_global(),
            MmuFlush::All => s.flush_all(),
            MmuFlush::Context(c) => s.flush_asid(c),
        }
    }

    /// Selects the translation context the shadow cache serves from now on: 0 for the
    /// guest's own (L1) translations, an ASID for those of the nested guest it runs
    /// (see `nested::svm`). Shadow pages of different contexts never mix, so a world
    /// switch needs no flush of the cache, and a flush of one context leaves the
    /// others' cached tables alone.
    pub fn mmu_set_context(&mut self, context: u16) {
        if let Some(s) = self.shadow.as_mut() {
            s.set_context(context);
        }
    }

    /// Forgets every cached translation of the shadow cache (its pages become obsolete
    /// at once), for a host-side reset of the guest's state such as
    /// [`Machine::enter_mode`], which rewrites tables without guest writes.
    pub fn mmu_reset(&mut self) {
        if let Some(s) = self.shadow.as_mut() {
            s.zap_all();
        }
        if let Some(st) = self.strict.as_mut() {
            st.filled.fill(None);
        }
    }

    /// The shadow cache's counters, `None` when it is off (`--no-shadow-cache`).
    pub fn mmu_stats(&self) -> Option<Stats> {
        self.shadow.as_ref().map(ShadowMmu::stats)
    }

    /// The shadow page cache, if on.
    pub fn shadow_mmu(&self) -> Option<&ShadowMmu> {
        self.shadow.as_ref()
    }

    /// The stale translations used so far (with `strict_tlb`), one per (RIP, page), in
    /// the order they happened.
    pub fn stale_translations(&self) -> &[StaleUse] {
        self.strict.as_ref().map_or(&[], |s| &s.reports)
    }

    /// Distinct stale uses not kept because [`MAX_STALE_REPORTS`] were already.
    pub fn stale_translations_dropped(&self) -> u64 {
        self.strict.as_ref().map_or(0, |s| s.dropped)
    }

    /// Whether a write to frame `gfn` must go through [`Machine::phys_write`] (the
    /// frame holds a shadowed page table).
    #[inline]
    pub(crate) fn write_tracked(&self, gfn: u64) -> bool {
        self.shadow.as_ref().is_some_and(|s| s.is_tracked(Gfn(gfn)))
    }

    /// After a write to guest-physical memory: the shadow cache updates or unsyncs the
    /// shadow pages of tracked frames.
    #[inline]
    pub(crate) fn shadow_phys_written(&mut self, gpa: Gpa, len: usize) {
        let Some(s) = self.shadow.as_mut() else { return };
        let first = gpa.0 >> 12;
        let last = gpa.0.wrapping_add(len.max(1) as u64 - 1) >> 12;
        if s.is_tracked(Gfn(first)) || s.is_tracked(Gfn(last)) {
            s.guest_write(&self.mem, gpa, len);
        }
    }

    /// After the shadow cache ran: if frames became write-tracked, the TLB entries that
    /// let writes reach them on the fast path lose their write permission.
    pub(crate) fn shadow_tracking_changed(&mut self) {
        let Some(s) = self.shadow.as_ref() else { return };
        let epoch = s.tracking_epoch();
        if epoch != self.shadow_epoch {
            self.shadow_epoch = epoch;
            self.cpu.tlb.restrict_writes(|gfn| s.is_tracked(Gfn(gfn)));
        }
    }

    /// `--strict-tlb`: remembers the walk result a TLB entry for `vpn` was filled from.
    pub(crate) fn strict_filled(&mut self, vpn: u64, t: Option<Translation>) {
        if let Some(st) = self.strict.as_mut() {
            st.filled[(vpn as usize) & (TLB_ENTRIES - 1)] = t.map(|t| (vpn, t));
        }
    }

    /// `--strict-tlb`: the walk result the TLB entry for `vpn` was filled from.
    pub(crate) fn strict_fill_of(&self, vpn: u64) -> Option<Translation> {
        let st = self.strict.as_ref()?;
        match st.filled[(vpn as usize) & (TLB_ENTRIES - 1)] {
            Some((v, t)) if v == vpn => Some(t),
            _ => None,
        }
    }

    /// `--strict-tlb`: checks a cached translation of `lin` about to be used, and
    /// records it if the guest's tables no longer give it. `fetch` accesses belong to
    /// the instruction at RIP; others to the instruction executing.
    #[cold]
    pub(crate) fn strict_check(
        &mut self,
        cfg: &WalkConfig,
        lin: u64,
        fetch: bool,
        served: &Translation,
    ) {
        let rip = if fetch { self.cpu.rip } else { self.insn_rip };
        let insn_count = self.cpu.insn_count;
        let Some(st) = self.strict.as_mut() else { return };
        let Some(stale) = check_translation(&self.mem, cfg, Gva(lin), served, st.last_cr3_no_flush)
        else {
            return;
        };
        if !st.seen.insert((rip, lin >> 12)) {
            return;
        }
        if st.reports.len() >= MAX_STALE_REPORTS {
            st.dropped += 1;
            return;
        }
        st.reports.push(StaleUse { rip, insn_count, stale });
    }
}
