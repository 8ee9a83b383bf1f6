//! The front-end TLB: a small direct-mapped cache from linear page to the guest frame and
//! the RAM backing offset, with the permissions of the walk that filled it. A hit costs
//! an index, one tag compare and a permission test.
//!
//! Entries are tagged with the PCID they were filled under (SDM Vol. 3A §4.10.1 "Process-
//! Context Identifiers"): the tag word holds the page number, the PCID and a valid bit,
//! so one compare checks all three. Global entries (PTE.G with CR4.PGE) are usable under
//! any PCID; the lookup finds them on a tag miss (`lookup_global`), off the fast path.
//! Invalidation follows SDM Vol. 3A §4.10.4 "Invalidation of TLBs and Paging-Structure
//! Caches": the callers (MOV CR0/CR3/CR4, INVLPG, INVPCID, WRPKRU) choose what to drop,
//! and translations the guest changed without a required flush stay usable, as on
//! hardware.

/// Number of entries (a power of two).
pub const TLB_ENTRIES: usize = 256;

/// Entry permits writes by user mode, and by supervisor mode with CR0.WP = 1 (the page is
/// writable, the dirty bit is already set and no protection key forbids it; or paging
/// is off).
pub const TLB_W: u8 = 1 << 0;
/// Entry permits user-mode access.
pub const TLB_U: u8 = 1 << 1;
/// Entry permits execution.
pub const TLB_X: u8 = 1 << 2;
/// Entry permits supervisor writes when CR0.WP=0 (dirty set).
pub const TLB_SW: u8 = 1 << 3;

/// Bits of the tag word that hold the linear page number (`lin >> 12` has 52 bits).
const VPN_MASK: u64 = (1 << 52) - 1;
/// Shift of the PCID in the tag word.
const PCID_SHIFT: u32 = 52;

/// One TLB entry.
#[derive(Copy, Clone, Debug)]
pub struct TlbEntry {
    /// `(pcid << 52 | vpn) + 1` (the page number has 52 bits, so this is one-to-one and
    /// the addition never carries into the PCID), or 0 for an invalid entry. The one
    /// key that wraps to 0 (page 2^52 - 1 of PCID 0xFFF) "hits" an invalid entry, whose
    /// empty permissions send every access to the slow path.
    pub tag: u64,
    /// The guest frame.
    pub gfn: u64,
    /// Offset of the frame in the RAM backing store, or `usize::MAX` for MMIO/unmapped.
    pub host: usize,
    /// TLB_W | TLB_U | TLB_X | TLB_SW.
    pub perm: u8,
    /// From a global page (PTE.G with CR4.PGE = 1): usable under every PCID, kept by
    /// MOV CR3.
    pub global: bool,
    /// log2 of the page size in 4 KiB units (0, 9, 10 or 18): INVLPG of any address in
    /// a large page drops every 4 KiB piece of it cached here.
    pub size_shift: u8,
}

impl TlbEntry {
    #[inline]
    fn valid(&self) -> bool {
        self.tag != 0
    }
    #[inline]
    fn vpn(&self) -> u64 {
        self.tag.wrapping_sub(1) & VPN_MASK
    }
    #[inline]
    fn pcid(&self) -> u16 {
        (self.tag.wrapping_sub(1) >> PCID_SHIFT) as u16
    }
}

const INVALID: TlbEntry =
    TlbEntry { tag: 0, gfn: 0, host: usize::MAX, perm: 0, global: false, size_shift: 0 };

/// The front-end TLB.
#[derive(Clone)]
pub struct Tlb {
    entries: Box<[TlbEntry; TLB_ENTRIES]>,
    /// `(current PCID << 52) + 1`: added to a page number, the tag a hit must have.
    tag_hi: u64,
    /// What [`Tlb::lookup`] adds to a page number: `tag_hi`, or [`BYPASS_HI`] while the
    /// fast path is bypassed.
    lookup_hi: u64,
}

/// A lookup offset that matches no entry: `vpn + 2` equals a tag `(pcid << 52 | v) + 1`
/// only for PCID 0 and `v = vpn + 1`, or PCID 1 and `v = 0` when `vpn = 2^52 - 1`, and
/// both live in another slot than `vpn`; it is never 0 (an invalid entry) either.
const BYPASS_HI: u64 = 2;

impl std::fmt::Debug for Tlb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let valid = self.entries.iter().filter(|e| e.valid()).count();
        write!(f, "Tlb {{ valid: {valid}, pcid: {:#x} }}", self.pcid())
    }
}

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

impl Tlb {
    /// An empty TLB, current PCID 0.
    pub fn new() -> Self {
        Self { entries: Box::new([INVALID; TLB_ENTRIES]), tag_hi: 1, lookup_hi: 1 }
    }

    #[inline(always)]
    fn slot(vpn: u64) -> usize {
        (vpn as usize) & (TLB_ENTRIES - 1)
    }

    /// The tag of page `vpn` under the current PCID. Every page number here is
    /// `lin >> 12`, so below 2^52 and clear of the PCID field.
    #[inline(always)]
    fn key(&self, vpn: u64) -> u64 {
        debug_assert!(vpn <= VPN_MASK);
        vpn.wrapping_add(self.tag_hi)
    }

    /// The PCID new entries are tagged with and lookups match.
    pub fn pcid(&self) -> u16 {
        (self.tag_hi >> PCID_SHIFT) as u16
    }

    /// Makes `pcid` (12 bits) the current PCID.
    #[inline]
    pub fn set_pcid(&mut self, pcid: u16) {
        let bypass = self.bypassed();
        self.tag_hi = (u64::from(pcid & 0xFFF) << PCID_SHIFT) + 1;
        self.set_bypass(bypass);
    }

    /// Makes [`Tlb::lookup`] (the fast path) miss always, or not. Entries are still
    /// filled and invalidated as usual and found by [`Tlb::lookup_exact`]: a caller
    /// that must see every use of a cached translation (`--strict-tlb`) looks there.
    pub fn set_bypass(&mut self, on: bool) {
        self.lookup_hi = if on { BYPASS_HI } else { self.tag_hi };
    }

    /// Whether the fast path is bypassed.
    pub fn bypassed(&self) -> bool {
        self.lookup_hi == BYPASS_HI
    }

    /// The entry for linear page `vpn` under the current PCID, if present (never while
    /// bypassed).
    #[inline(always)]
    pub fn lookup(&self, vpn: u64) -> Option<&TlbEntry> {
        let e = &self.entries[Self::slot(vpn)];
        if e.tag == vpn.wrapping_add(self.lookup_hi) {
            Some(e)
        } else {
            None
        }
    }

    /// The entry for linear page `vpn` under the current PCID, bypassed or not.
    #[inline]
    pub fn lookup_exact(&self, vpn: u64) -> Option<&TlbEntry> {
        let e = &self.entries[Self::slot(vpn)];
        (e.tag == self.key(vpn)).then_some(e)
    }

    /// Takes the write permissions away from every entry whose frame `is_tracked`
    /// says must see its writes on the slow path (frames holding shadowed page tables).
    pub fn restrict_writes(&mut self, is_tracked: impl Fn(u64) -> bool) {
        for e in self.entries.iter_mut().filter(|e| e.valid() && e.perm & (TLB_W | TLB_SW) != 0) {
            if is_tracked(e.gfn) {
                e.perm &= !(TLB_W | TLB_SW);
            }
        }
    }

    /// After a `lookup` miss: a global entry for `vpn` filled under another PCID. It is
    /// retagged with the current PCID, so the next lookup hits on the fast path (which
    /// PCID tags a global entry does not matter to any invalidation).
    #[inline]
    pub fn lookup_global(&mut self, vpn: u64) -> Option<&TlbEntry> {
        let key = self.key(vpn);
        let e = &mut self.entries[Self::slot(vpn)];
        if e.global && e.vpn() == vpn & VPN_MASK {
            e.tag = key;
            Some(e)
        } else {
            None
        }
    }

    /// Fills the entry for `vpn` under the current PCID.
    #[inline]
    pub fn insert(
        &mut self,
        vpn: u64,
        gfn: u64,
        host: usize,
        perm: u8,
        global: bool,
        size_shift: u8,
    ) {
        let tag = self.key(vpn);
        self.entries[Self::slot(vpn)] = TlbEntry { tag, gfn, host, perm, global, size_shift };
    }

    /// Drops the entries that translate linear page `vpn` (every piece of a large page
    /// that contains it) tagged with `pcid`, and, if `global`, global entries for it
    /// whatever their PCID.
    pub fn invalidate_page(&mut self, vpn: u64, pcid: u16, global: bool) {
        let vpn = vpn & VPN_MASK;
        for e in self.entries.iter_mut() {
            let owner = if e.global { global } else { e.pcid() == pcid };
            if e.valid() && owner && e.vpn() >> e.size_shift == vpn >> e.size_shift {
                *e = INVALID;
            }
        }
    }

    /// Drops the non-global entries tagged with `pcid`.
    pub fn flush_pcid(&mut self, pcid: u16) {
        for e in self.entries.iter_mut().filter(|e| !e.global && e.pcid() == pcid) {
            *e = INVALID;
        }
    }

    /// Drops every non-global entry, for every PCID.
    pub fn flush_non_global(&mut self) {
        for e in self.entries.iter_mut().filter(|e| !e.global) {
            *e = INVALID;
        }
    }

    /// Drops every entry whose frame is `gfn` (its RAM mapping changed).
    pub fn invalidate_frame(&mut self, gfn: u64) {
        for e in self.entries.iter_mut().filter(|e| e.gfn == gfn) {
            *e = INVALID;
        }
    }

    /// Drops everything, global entries and every PCID included.
    pub fn flush(&mut self) {
        self.entries.fill(INVALID);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcid_tags_and_globals() {
        let mut t = Tlb::new();
        t.set_pcid(1);
        t.insert(0x10, 0xA, 0, TLB_X, false, 0);
        t.insert(0x11, 0xB, 0, TLB_X, true, 0);
        t.set_pcid(2);
        assert!(t.lookup(0x10).is_none());
        assert!(t.lookup(0x11).is_none());
        assert_eq!(t.lookup_global(0x11).map(|e| e.gfn), Some(0xB));
        assert!(t.lookup(0x11).is_some(), "retagged for PCID 2");
        assert!(t.lookup_global(0x10).is_none());
        t.flush_pcid(2);
        assert!(t.lookup(0x11).is_some(), "globals survive");
        t.set_pcid(1);
        assert!(t.lookup(0x10).is_some(), "PCID 1 untouched by a PCID 2 flush");
        t.flush_non_global();
        assert!(t.lookup(0x10).is_none());
        t.flush();
        assert!(t.lookup_global(0x11).is_none());
    }

    #[test]
    fn invalidate_page_covers_large_pages_and_pcids() {
        let mut t = Tlb::new();
        // Two 4 KiB pieces of one 2 MiB page, and a 4 KiB page of another PCID.
        t.insert(0x200, 1, 0, 0, false, 9);
        t.insert(0x3FF, 2, 0, 0, false, 9);
        t.set_pcid(7);
        t.insert(0x201, 3, 0, 0, false, 0);
        t.set_pcid(0);
        t.invalidate_page(0x2AB, 0, true);
        assert!(t.lookup(0x200).is_none() && t.lookup(0x3FF).is_none());
        t.set_pcid(7);
        assert!(t.lookup(0x201).is_some());
        // The highest page number keeps its PCID apart.
        t.insert(u64::MAX >> 12, 4, 0, TLB_W, false, 0);
        assert!(t.lookup(u64::MAX >> 12).is_some());
        t.set_pcid(8);
        assert!(t.lookup(u64::MAX >> 12).is_none());
        t.set_pcid(7);
        t.invalidate_page(u64::MAX >> 12, 7, false);
        assert!(t.lookup(u64::MAX >> 12).is_none());
        // The one key that wraps to 0 matches only invalid entries, which permit nothing.
        t.set_pcid(0xFFF);
        assert!(t.lookup(u64::MAX >> 12).is_none_or(|e| e.perm == 0));
    }

    #[test]
    fn bypass_misses_every_lookup_but_keeps_the_entries() {
        let mut t = Tlb::new();
        // Neighbouring pages and slots, the top pages, page 0 (all in distinct slots).
        let pages = [0u64, 1, 2, 0x103, 0x1FD, (1 << 52) - 1, (1 << 52) - 2];
        for pcid in [0u16, 1, 0xFFF] {
            t.set_pcid(pcid);
            for &v in &pages {
                t.insert(v, v, 0, TLB_W, false, 0);
            }
            t.set_bypass(true);
            for &v in &pages {
                assert!(t.lookup(v).is_none(), "pcid {pcid} page {v:#x}");
                assert_eq!(t.lookup_exact(v).map(|e| e.gfn), Some(v));
            }
            t.set_pcid(pcid);
            assert!(t.bypassed(), "a PCID change keeps the bypass");
            t.set_bypass(false);
            assert!(t.lookup(pages[1]).is_some());
        }
        t.restrict_writes(|gfn| gfn == 2);
        assert_eq!(t.lookup(2).map(|e| e.perm), Some(0));
        assert_eq!(t.lookup(1).map(|e| e.perm), Some(TLB_W));
    }
}
