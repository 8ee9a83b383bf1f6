//! The decoded-code cache: decoded blocks keyed by the guest-physical address of their
//! first byte, dropped when the guest writes a page that holds cached code.
//!
//! A block's meaning depends on more than its bytes: the instruction pointer it was
//! decoded at (branch targets and RIP-relative operands are resolved against it) and the
//! code size. Both are part of the key, so the same physical bytes reached under another
//! mode or alias are decoded again rather than misread.

use std::collections::BTreeMap;
use std::rc::Rc;

/// What identifies a decoded block.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlockKey {
    /// Guest-physical address of the first byte.
    pub gpa: u64,
    /// Instruction pointer the block was decoded at.
    pub ip: u64,
    /// Code size: 16, 32 or 64.
    pub bitness: u8,
}

/// Cache counters.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a block.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Blocks dropped because the guest wrote their page.
    pub invalidations: u64,
}

const SLOTS: usize = 1 << 14;
/// Frames below this are tracked in a bitmap, above it in a map.
const BITMAP_FRAMES: u64 = 1 << 24;

/// A direct-mapped cache of decoded blocks of type `T` with per-page invalidation.
pub struct BlockCache<T> {
    slots: Vec<Option<(BlockKey, Rc<T>)>>,
    /// For each frame holding cached code: the slots whose block covers it.
    page_slots: BTreeMap<u64, Vec<u32>>,
    /// Bit per frame (below [`BITMAP_FRAMES`]): the frame holds cached code.
    code_bits: Vec<u64>,
    stats: CacheStats,
}

impl<T> Default for BlockCache<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> BlockCache<T> {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| None).collect(),
            page_slots: BTreeMap::new(),
            code_bits: Vec::new(),
            stats: CacheStats::default(),
        }
    }

    #[inline]
    fn slot_of(gpa: u64) -> usize {
        let h = gpa ^ (gpa >> 14);
        (h as usize) & (SLOTS - 1)
    }

    /// The block for `key`, if cached.
    #[inline]
    pub fn get(&mut self, key: BlockKey) -> Option<Rc<T>> {
        match &self.slots[Self::slot_of(key.gpa)] {
            Some((k, b)) if *k == key => {
                self.stats.hits += 1;
                Some(b.clone())
            }
            _ => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Caches `block` under `key`; `frames` are the guest frames its bytes lie in.
    pub fn insert(&mut self, key: BlockKey, frames: &[u64], block: Rc<T>) -> Rc<T> {
        let slot = Self::slot_of(key.gpa);
        self.slots[slot] = Some((key, block.clone()));
        for &f in frames {
            let v = self.page_slots.entry(f).or_default();
            if !v.contains(&(slot as u32)) {
                v.push(slot as u32);
            }
            self.set_code_bit(f);
        }
        block
    }

    fn set_code_bit(&mut self, frame: u64) {
        if frame < BITMAP_FRAMES {
            let w = (frame / 64) as usize;
            if self.code_bits.len() <= w {
                self.code_bits.resize(w + 1, 0);
            }
            self.code_bits[w] |= 1 << (frame % 64);
        }
    }

    /// Whether `frame` holds cached code (so a write to it must call
    /// [`Self::invalidate_frame`]). This is on every guest write's path.
    #[inline]
    pub fn is_code_frame(&self, frame: u64) -> bool {
        if frame < BITMAP_FRAMES {
            match self.code_bits.get((frame / 64) as usize) {
                Some(w) => w & (1 << (frame % 64)) != 0,
                None => false,
            }
        } else {
            self.page_slots.contains_key(&frame)
        }
    }

    /// Drops every block whose bytes lie in `frame`. Returns whether any was dropped.
    pub fn invalidate_frame(&mut self, frame: u64) -> bool {
        if frame < BITMAP_FRAMES {
            if let Some(w) = self.code_bits.get_mut((frame / 64) as usize) {
                *w &= !(1 << (frame % 64));
            }
        }
        let Some(slots) = self.page_slots.remove(&frame) else {
            return false;
        };
        for s in slots {
            // The slot may since hold another block; dropping it too is harmless.
            if self.slots[s as usize].take().is_some() {
                self.stats.invalidations += 1;
            }
        }
        true
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.page_slots.clear();
        self.code_bits.clear();
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(gpa: u64) -> BlockKey {
        BlockKey {
            gpa,
            ip: gpa,
            bitness: 64,
        }
    }

    #[test]
    fn hit_miss_and_key_includes_mode() {
        let mut c = BlockCache::new();
        assert!(c.get(key(0x1000)).is_none());
        c.insert(key(0x1000), &[1], Rc::new(7u32));
        assert_eq!(*c.get(key(0x1000)).unwrap(), 7);
        assert!(c
            .get(BlockKey {
                bitness: 32,
                ..key(0x1000)
            })
            .is_none());
        assert!(c
            .get(BlockKey {
                ip: 0,
                ..key(0x1000)
            })
            .is_none());
        assert_eq!(c.stats().hits, 1);
        assert_eq!(c.stats().misses, 3);
    }

    #[test]
    fn writes_to_code_frames_invalidate() {
        let mut c = BlockCache::new();
        c.insert(key(0x1ff0), &[1, 2], Rc::new(1u8));
        c.insert(key(0x5000), &[5], Rc::new(2u8));
        assert!(c.is_code_frame(2) && c.is_code_frame(5) && !c.is_code_frame(3));
        assert!(c.invalidate_frame(2));
        assert!(c.get(key(0x1ff0)).is_none());
        assert!(c.get(key(0x5000)).is_some());
        assert!(!c.is_code_frame(2));
        assert!(!c.invalidate_frame(2));
        let high = BITMAP_FRAMES + 3;
        c.insert(key(high << 12), &[high], Rc::new(3u8));
        assert!(c.is_code_frame(high));
        c.clear();
        assert!(c.get(key(0x5000)).is_none());
    }
}
