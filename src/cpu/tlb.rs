//! The front-end TLB: a small direct-mapped cache from linear page to the guest frame and
//! the RAM backing offset, with the permissions of the walk that filled it. A hit costs
//! an index, one tag compare and a permission test.
//!
//! Entries are tagged with the PCID they were filled under (SDM Vol. 3A §4.10.1 "Process-
//! Context Identifiers"): the tag word holds the page number and the PCID, so one
//! compare checks both. An invalid entry holds a tag no lookup in its slot can produce
//! (see [`invalid`]), so it never matches. Global entries (PTE.G with CR4.PGE) are usable under
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
    /// `(pcid << 52 | vpn) + 1` (wrapping: the page number has 52 bits, so this is
    /// one-to-one), or, for an invalid entry, the index of its slot. The entry in slot
    /// `s` only ever holds pages with `vpn % TLB_ENTRIES == s`, whose tags have low bits
    /// `s + 1`: the slot index itself is never one of them (see [`invalid`]).
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
    /// Whether the entry in slot `slot` holds a translation: its tag has the low bits of
    /// a page of that slot (plus one), which an invalid entry's never has.
    #[inline]
    fn valid_in(&self, slot: usize) -> bool {
        (self.tag.wrapping_sub(1) as usize) & (TLB_ENTRIES - 1) == slot
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

/// The invalid entry of slot `slot`. Its tag is the slot index, which differs in the low
/// bits from every key a lookup in that slot compares with: `vpn + tag_hi` has low bits
/// `slot + 1` (`tag_hi` is `pcid << 52 | 1`; also when the sum wraps, for page 2^52 - 1
/// of PCID 0xFFF), and the bypass key `vpn + 2` has `slot + 2`. So no key, whatever its
/// page and PCID, hits an invalid entry (whose frame 0 a supervisor read would use).
const fn invalid(slot: usize) -> TlbEntry {
    TlbEntry { tag: slot as u64, gfn: 0, host: usize::MAX, perm: 0, global: false, size_shift: 0 }
}

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
/// both live in another slot than `vpn`; its low bits (`slot + 2`) are never those of an
/// invalid entry (`slot`) either.
const BYPASS_HI: u64 = 2;

impl std::fmt::Debug for Tlb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let valid = self.entries.iter().enumerate().filter(|(s, e)| e.valid_in(*s)).count();
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
        Self { entries: Box::new(std::array::from_fn(invalid)), tag_hi: 1, lookup_hi: 1 }
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
        for (s, e) in self.entries.iter_mut().enumerate() {
            if e.valid_in(s) && e.perm & (TLB_W | TLB_SW) != 0 && is_tracked(e.gfn) {
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
        let slot = Self::slot(vpn);
        let e = &mut self.entries[slot];
        if e.global && e.valid_in(slot) && e.vpn() == vpn & VPN_MASK {
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
        for (s, e) in self.entries.iter_mut().enumerate() {
            let owner = if e.global { global } else { e.pcid() == pcid };
            if e.valid_in(s) && owner && e.vpn() >> e.size_shift == vpn >> e.size_shift {
                *e = invalid(s);
            }
        }
    }

    /// Drops the non-global entries tagged with `pcid`.
    pub fn flush_pcid(&mut self, pcid: u16) {
        for (s, e) in self.entries.iter_mut().enumerate() {
            if !e.global && e.pcid() == pcid {
                *e = invalid(s);
            }
        }
    }

    /// Drops every non-global entry, for every PCID.
    pub fn flush_non_global(&mut self) {
        for (s, e) in self.entries.iter_mut().enumerate() {
            if !e.global {
                *e = invalid(s);
            }
        }
    }

    /// Drops every entry whose frame is `gfn` (its RAM mapping changed).
    pub fn invalidate_frame(&mut self, gfn: u64) {
        for (s, e) in self.entries.iter_mut().enumerate() {
            if e.gfn == gfn {
                *e = invalid(s);
            }
        }
    }

    /// Drops everything, global entries and every PCID included.
    pub fn flush(&mut self) {
        for (s, e) in self.entries.iter_mut().enumerate() {
            *e = invalid(s);
        }
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
    }

    /// The key of page 2^52 - 1 under PCID 0xFFF wraps to 0: it must miss an empty slot
    /// (whose frame 0 a supervisor read, which needs no permission bit, would use),
    /// hit its own entry, and that entry must be invalidated like any other.
    #[test]
    fn wrapping_key_never_hits_an_invalid_entry() {
        let top = (1u64 << 52) - 1;
        let mut t = Tlb::new();
        t.set_pcid(0xFFF);
        assert!(t.lookup(top).is_none(), "empty slot");
        assert!(t.lookup_exact(top).is_none(), "empty slot (exact)");
        assert!(t.lookup_global(top).is_none(), "empty slot (global)");
        t.insert(top, 0x1234, 0, TLB_X, false, 0);
        assert_eq!(t.lookup(top).map(|e| e.gfn), Some(0x1234));
        assert_eq!(format!("{t:?}"), "Tlb { valid: 1, pcid: 0xfff }");
        t.invalidate_page(top, 0xFFF, false);
        assert!(t.lookup(top).is_none(), "INVLPG drops the wrapping entry");
        t.insert(top, 0x1234, 0, TLB_X, false, 0);
        t.flush_pcid(0xFFF);
        assert!(t.lookup(top).is_none(), "a PCID flush drops it");
        t.insert(top, 0x1234, 0, TLB_X, false, 0);
        t.flush();
        assert!(t.lookup(top).is_none(), "a full flush drops it");
        assert_eq!(format!("{t:?}"), "Tlb { valid: 0, pcid: 0xfff }");
        // No page of any PCID hits an invalid entry, in any slot.
        for pcid in [0u16, 1, 0x800, 0xFFF] {
            t.set_pcid(pcid);
            for vpn in (0..TLB_ENTRIES as u64).chain(top - TLB_ENTRIES as u64 + 1..=top) {
                assert!(t.lookup(vpn).is_none(), "pcid {pcid:#x} page {vpn:#x}");
                assert!(t.lookup_exact(vpn).is_none(), "pcid {pcid:#x} page {vpn:#x}");
            }
        }
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
