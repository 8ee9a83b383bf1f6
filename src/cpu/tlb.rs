//! The front-end TLB: a small direct-mapped cache from linear page to the guest frame and
//! the RAM backing offset, with the permissions of the walk that filled it. A hit costs
//! an index, a tag compare and a permission test. Flushed on every event that may change
//! translations (MOV CR3/CR0/CR4, EFER writes, INVLPG); the shadow page cache and its
//! exact invalidation rules sit behind it.

/// Number of entries (a power of two).
pub const TLB_ENTRIES: usize = 256;

/// Entry permits writes (also: the dirty bit is already set, or paging is off).
pub const TLB_W: u8 = 1 << 0;
/// Entry permits user-mode access.
pub const TLB_U: u8 = 1 << 1;
/// Entry permits execution.
pub const TLB_X: u8 = 1 << 2;
/// Entry permits supervisor writes when CR0.WP=0 (page not writable, dirty set).
pub const TLB_SW: u8 = 1 << 3;

/// One TLB entry.
#[derive(Copy, Clone, Debug)]
pub struct TlbEntry {
    /// Linear page number + 1 (0 = invalid).
    pub tag: u64,
    /// The guest frame.
    pub gfn: u64,
    /// Offset of the frame in the RAM backing store, or `usize::MAX` for MMIO/unmapped.
    pub host: usize,
    /// TLB_W | TLB_U | TLB_X.
    pub perm: u8,
}

const INVALID: TlbEntry = TlbEntry {
    tag: 0,
    gfn: 0,
    host: usize::MAX,
    perm: 0,
};

/// The front-end TLB.
#[derive(Clone)]
pub struct Tlb {
    entries: Box<[TlbEntry; TLB_ENTRIES]>,
}

impl std::fmt::Debug for Tlb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let valid = self.entries.iter().filter(|e| e.tag != 0).count();
        write!(f, "Tlb {{ valid: {valid} }}")
    }
}

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

impl Tlb {
    /// An empty TLB.
    pub fn new() -> Self {
        Self {
            entries: Box::new([INVALID; TLB_ENTRIES]),
        }
    }

    /// The entry for linear page `vpn` if present.
    #[inline(always)]
    pub fn lookup(&self, vpn: u64) -> Option<&TlbEntry> {
        let e = &self.entries[(vpn as usize) & (TLB_ENTRIES - 1)];
        if e.tag == vpn.wrapping_add(1) {
            Some(e)
        } else {
            None
        }
    }

    /// Fills the entry for `vpn`.
    #[inline]
    pub fn insert(&mut self, vpn: u64, gfn: u64, host: usize, perm: u8) {
        self.entries[(vpn as usize) & (TLB_ENTRIES - 1)] = TlbEntry {
            tag: vpn.wrapping_add(1),
            gfn,
            host,
            perm,
        };
    }

    /// Drops the entry for `vpn`.
    pub fn invalidate(&mut self, vpn: u64) {
        let e = &mut self.entries[(vpn as usize) & (TLB_ENTRIES - 1)];
        if e.tag == vpn.wrapping_add(1) {
            *e = INVALID;
        }
    }

    /// Drops every entry whose frame is `gfn` (its RAM mapping changed).
    pub fn invalidate_frame(&mut self, gfn: u64) {
        for e in self.entries.iter_mut().filter(|e| e.gfn == gfn) {
            *e = INVALID;
        }
    }

    /// Drops everything.
    pub fn flush(&mut self) {
        self.entries.fill(INVALID);
    }
}
