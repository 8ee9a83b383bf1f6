//! Where things may go in guest-physical memory during a multiboot load: the usable RAM
//! of the E820 map below 4 GiB (the multiboot information holds 32-bit addresses), minus
//! what is already placed.

use crate::firmware::memory_map::{e820_map, E820Type};

/// A half-open physical range `start..end`.
pub type Range = (u64, u64);

/// Usable RAM and what of it is taken.
#[derive(Clone, Debug)]
pub struct Placement {
    usable: Vec<Range>,
    taken: Vec<Range>,
}

const FOUR_GIB: u64 = 1 << 32;

impl Placement {
    /// The usable RAM of a machine with `ram_size` bytes, nothing taken.
    pub fn new(ram_size: u64) -> Self {
        let usable = e820_map(ram_size)
            .into_iter()
            .filter(|e| e.kind == E820Type::Ram && e.base < FOUR_GIB)
            .map(|e| (e.base, (e.base + e.len).min(FOUR_GIB)))
            .collect();
        Self { usable, taken: Vec::new() }
    }

    /// Whether `start..end` lies entirely in one usable RAM range.
    pub fn is_usable(&self, (start, end): Range) -> bool {
        self.usable.iter().any(|&(s, e)| start >= s && end <= e && start <= end)
    }

    /// Marks `range` taken.
    pub fn take(&mut self, range: Range) {
        if range.0 < range.1 {
            self.taken.push(range);
        }
    }

    fn overlap_end(&self, (start, end): Range) -> Option<u64> {
        self.taken.iter().filter(|&&(s, e)| start < e && s < end).map(|&(_, e)| e).max()
    }

    /// The lowest free, usable `len` bytes at or above `min`, aligned to `align` (a power
    /// of two), taken.
    pub fn alloc(&mut self, len: u64, align: u64, min: u64) -> Option<u64> {
        for &(s, e) in &self.usable {
            let mut at = s.max(min).checked_next_multiple_of(align)?;
            while at.checked_add(len)? <= e {
                match self.overlap_end((at, at + len.max(1))) {
                    Some(next) => at = next.checked_next_multiple_of(align)?,
                    None => {
                        self.take((at, at + len));
                        return Some(at);
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hvsim_devices::pc;

    #[test]
    fn usable_ram_excludes_the_legacy_hole() {
        let p = Placement::new(32 << 20);
        assert!(p.is_usable((0x1000, 0x2000)));
        assert!(p.is_usable((pc::HIGH_MEMORY, 32 << 20)));
        assert!(!p.is_usable((pc::VGA_BASE, pc::VGA_BASE + 16)));
        assert!(!p.is_usable((pc::HIGH_MEMORY, (32 << 20) + 1)));
        // A range across the hole is not in one usable range.
        assert!(!p.is_usable((0x9_0000, 0x20_0000)));
    }

    #[test]
    fn alloc_skips_taken_ranges_and_aligns() {
        let mut p = Placement::new(32 << 20);
        p.take((0x10_0000, 0x10_2345));
        assert_eq!(p.alloc(0x1000, 0x1000, 0x10_0000), Some(0x10_3000));
        // Small things fill the gaps.
        assert_eq!(p.alloc(0x10, 16, 0x10_0000), Some(0x10_2350));
        // Too large for low memory: it goes above 1 MiB.
        assert_eq!(p.alloc(0xA_0000, 0x1000, 0x1000), Some(0x10_4000));
        assert_eq!(p.alloc(64 << 20, 0x1000, 0), None);
    }
}
