//! Guest physical memory: RAM on one anonymous memmap2 mapping, plus the physical address
//! map (RAM ranges, MMIO holes, unmapped space).
//!
//! Every access is bounds-checked: RAM is reached through slices of the mapping, so no
//! guest address can touch host memory outside it. Reads of unmapped space return all
//! ones and writes to it are dropped, as on a PC bus. MMIO ranges are only recorded here;
//! the CPU routes accesses that hit them to the device bus before reaching this type.

use crate::addr::{Gfn, Gpa, PAGE_SIZE};
use memmap2::{MmapMut, MmapOptions};

/// What a range of guest physical space is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RegionKind {
    /// Guest RAM.
    Ram,
    /// Memory-mapped I/O: accesses go to the device bus.
    Mmio,
}

/// One range of the physical address map.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Region {
    /// First address.
    pub base: Gpa,
    /// Size in bytes.
    pub size: u64,
    /// RAM or MMIO.
    pub kind: RegionKind,
}

/// The guest physical address map.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct MemoryMap {
    regions: Vec<Region>,
}

/// Errors from building or loading guest memory.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MemoryError {
    /// Regions {0:?} and {1:?} overlap.
    #[error("memory regions {0:?} and {1:?} overlap")]
    Overlap(Region, Region),
    /// A region of size zero or wrapping past 2^64.
    #[error("memory region {0:?} is empty or wraps")]
    BadRegion(Region),
    /// The host refused the RAM mapping.
    #[error("cannot map {size} bytes of guest RAM: {reason}")]
    Map {
        /// Requested bytes.
        size: u64,
        /// Host error text.
        reason: String,
    },
    /// Data to load does not lie entirely in RAM.
    #[error("{len} bytes at {gpa} do not fit in guest RAM")]
    NotRam {
        /// Start of the load.
        gpa: Gpa,
        /// Length of the load.
        len: u64,
    },
}

impl MemoryMap {
    /// An empty map (everything unmapped).
    pub fn new() -> Self {
        Self::default()
    }

    /// A map with `size` bytes of RAM at physical address 0 and nothing else.
    pub fn flat(size: u64) -> Self {
        let mut m = Self::new();
        m.regions.push(Region { base: Gpa(0), size, kind: RegionKind::Ram });
        m
    }

    /// Adds a region; overlapping regions are an error.
    pub fn add(&mut self, region: Region) -> Result<&mut Self, MemoryError> {
        if region.size == 0 || region.base.0.checked_add(region.size).is_none() {
            return Err(MemoryError::BadRegion(region));
        }
        let end = region.base.0 + region.size;
        if let Some(other) =
            self.regions.iter().find(|r| region.base.0 < r.base.0 + r.size && r.base.0 < end)
        {
            return Err(MemoryError::Overlap(*other, region));
        }
        self.regions.push(region);
        self.regions.sort_by_key(|r| r.base);
        Ok(self)
    }

    /// The regions, sorted by base address.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }
}

/// A RAM range and where it lives in the backing mapping.
#[derive(Copy, Clone, Debug)]
struct RamRange {
    base: u64,
    end: u64,
    backing: usize,
}

/// Guest physical memory.
pub struct GuestMemory {
    map: MemoryMap,
    ram: Vec<RamRange>,
    mmio: Vec<(u64, u64)>,
    backing: MmapMut,
}

impl std::fmt::Debug for GuestMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestMemory").field("map", &self.map).finish()
    }
}

/// Where a physical address lands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// RAM, at this offset of the backing store.
    Ram(usize),
    /// An MMIO region.
    Mmio,
    /// Nothing.
    Unmapped,
}

impl GuestMemory {
    /// Maps the RAM of `map`. The RAM is zero-filled and lazily allocated by the host.
    pub fn new(map: MemoryMap) -> Result<Self, MemoryError> {
        let mut ram = Vec::new();
        let mut mmio = Vec::new();
        let mut total: u64 = 0;
        for r in map.regions() {
            match r.kind {
                RegionKind::Ram => {
                    let backing = usize::try_from(total).map_err(|_| MemoryError::BadRegion(*r))?;
                    ram.push(RamRange { base: r.base.0, end: r.base.0 + r.size, backing });
                    total = total.checked_add(r.size).ok_or(MemoryError::BadRegion(*r))?;
                }
                RegionKind::Mmio => mmio.push((r.base.0, r.base.0 + r.size)),
            }
        }
        let len = usize::try_from(total.max(1))
            .map_err(|_| MemoryError::Map { size: total, reason: "too large".into() })?;
        let backing = MmapOptions::new()
            .len(len)
            .map_anon()
            .map_err(|e| MemoryError::Map { size: total, reason: e.to_string() })?;
        Ok(Self { map, ram, mmio, backing })
    }

    /// The address map this memory was built from.
    pub fn map(&self) -> &MemoryMap {
        &self.map
    }

    /// Total bytes of RAM.
    pub fn ram_size(&self) -> u64 {
        self.ram.iter().map(|r| r.end - r.base).sum()
    }

    /// Classifies one physical address.
    #[inline]
    pub fn target(&self, gpa: Gpa) -> Target {
        let a = gpa.0;
        for r in &self.ram {
            if a >= r.base && a < r.end {
                return Target::Ram(r.backing + (a - r.base) as usize);
            }
        }
        if self.mmio.iter().any(|&(b, e)| a >= b && a < e) {
            Target::Mmio
        } else {
            Target::Unmapped
        }
    }

    /// The backing offset of a whole RAM page, if the page is entirely RAM. Used to fill
    /// the vCPU's front-end TLB, whose hits then index [`Self::backing`] directly.
    #[inline]
    pub fn ram_page(&self, gfn: Gfn) -> Option<usize> {
        let a = gfn.gpa().0;
        self.ram
            .iter()
            .find(|r| a >= r.base && a + PAGE_SIZE <= r.end)
            .map(|r| r.backing + (a - r.base) as usize)
    }

    /// The RAM backing store (all RAM regions, back to back).
    #[inline]
    pub fn backing(&self) -> &[u8] {
        &self.backing
    }

    /// The RAM backing store, writable.
    #[inline]
    pub fn backing_mut(&mut self) -> &mut [u8] {
        &mut self.backing
    }

    /// Reads `buf.len()` bytes at `gpa`. Unmapped and MMIO bytes read as 0xFF (the CPU
    /// routes MMIO to devices before it gets here).
    pub fn read(&self, gpa: Gpa, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let a = gpa.add(done as u64);
            let chunk = self.contiguous(a, buf.len() - done);
            match self.target(a) {
                Target::Ram(off) => {
                    buf[done..done + chunk].copy_from_slice(&self.backing[off..off + chunk])
                }
                _ => buf[done..done + chunk].fill(0xFF),
            }
            done += chunk;
        }
    }

    /// Writes `data` at `gpa`. Writes to unmapped or MMIO space are dropped here.
    pub fn write(&mut self, gpa: Gpa, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            let a = gpa.add(done as u64);
            let chunk = self.contiguous(a, data.len() - done);
            if let Target::Ram(off) = self.target(a) {
                self.backing[off..off + chunk].copy_from_slice(&data[done..done + chunk]);
            }
            done += chunk;
        }
    }

    /// How many bytes from `a` (at most `want`) lie in the same region or gap.
    fn contiguous(&self, a: Gpa, want: usize) -> usize {
        let a = a.0;
        let mut limit = u64::MAX;
        for r in &self.ram {
            if a >= r.base && a < r.end {
                limit = r.end - a;
                break;
            }
            if r.base > a {
                limit = limit.min(r.base - a);
            }
        }
        for &(b, e) in &self.mmio {
            if a >= b && a < e {
                limit = limit.min(e - a);
            } else if b > a {
                limit = limit.min(b - a);
            }
        }
        // A wrap at 2^64 splits too.
        limit = limit.min(0u64.wrapping_sub(a).max(1));
        (want as u64).min(limit).max(1) as usize
    }

    /// Loads an image into RAM; the whole range must be RAM.
    pub fn load(&mut self, gpa: Gpa, data: &[u8]) -> Result<(), MemoryError> {
        let len = data.len() as u64;
        let err = MemoryError::NotRam { gpa, len };
        let mut done = 0usize;
        while done < data.len() {
            let a = gpa.0.checked_add(done as u64).ok_or(err.clone())?;
            let chunk = self.contiguous(Gpa(a), data.len() - done);
            match self.target(Gpa(a)) {
                Target::Ram(off) => {
                    self.backing[off..off + chunk].copy_from_slice(&data[done..done + chunk])
                }
                _ => return Err(err),
            }
            done += chunk;
        }
        Ok(())
    }

    /// Reads a little-endian value of `N` bytes.
    #[inline]
    pub fn read_le<const N: usize>(&self, gpa: Gpa) -> [u8; N] {
        if let Target::Ram(off) = self.target(gpa) {
            if let Some(s) = self.backing.get(off..off + N) {
                if self.contiguous(gpa, N) == N {
                    let mut b = [0u8; N];
                    b.copy_from_slice(s);
                    return b;
                }
            }
        }
        let mut b = [0u8; N];
        self.read(gpa, &mut b);
        b
    }

    /// Reads a byte.
    pub fn read_u8(&self, gpa: Gpa) -> u8 {
        self.read_le::<1>(gpa)[0]
    }
    /// Reads a little-endian u16.
    pub fn read_u16(&self, gpa: Gpa) -> u16 {
        u16::from_le_bytes(self.read_le(gpa))
    }
    /// Reads a little-endian u32.
    pub fn read_u32(&self, gpa: Gpa) -> u32 {
        u32::from_le_bytes(self.read_le(gpa))
    }
    /// Reads a little-endian u64.
    pub fn read_u64(&self, gpa: Gpa) -> u64 {
        u64::from_le_bytes(self.read_le(gpa))
    }
    /// Reads a little-endian u128.
    pub fn read_u128(&self, gpa: Gpa) -> u128 {
        u128::from_le_bytes(self.read_le(gpa))
    }
    /// Writes a byte.
    pub fn write_u8(&mut self, gpa: Gpa, v: u8) {
        self.write(gpa, &[v])
    }
    /// Writes a little-endian u16.
    pub fn write_u16(&mut self, gpa: Gpa, v: u16) {
        self.write(gpa, &v.to_le_bytes())
    }
    /// Writes a little-endian u32.
    pub fn write_u32(&mut self, gpa: Gpa, v: u32) {
        self.write(gpa, &v.to_le_bytes())
    }
    /// Writes a little-endian u64.
    pub fn write_u64(&mut self, gpa: Gpa, v: u64) {
        self.write(gpa, &v.to_le_bytes())
    }
    /// Writes a little-endian u128.
    pub fn write_u128(&mut self, gpa: Gpa, v: u128) {
        self.write(gpa, &v.to_le_bytes())
    }

    /// Atomically (with respect to the guest) replaces the u64 at `gpa` with `new` if it
    /// still holds `old`; returns the value found. Page walkers use it for A/D updates.
    pub fn cmpxchg_u64(&mut self, gpa: Gpa, old: u64, new: u64) -> u64 {
        let cur = self.read_u64(gpa);
        if cur == old {
            self.write_u64(gpa, new);
        }
        cur
    }

    /// Atomically (with respect to the guest) replaces the u32 at `gpa`; see
    /// [`Self::cmpxchg_u64`].
    pub fn cmpxchg_u32(&mut self, gpa: Gpa, old: u32, new: u32) -> u32 {
        let cur = self.read_u32(gpa);
        if cur == old {
            self.write_u32(gpa, new);
        }
        cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_banks() -> GuestMemory {
        let mut map = MemoryMap::new();
        map.add(Region { base: Gpa(0), size: 0x2000, kind: RegionKind::Ram }).unwrap();
        map.add(Region { base: Gpa(0x3000), size: 0x1000, kind: RegionKind::Mmio }).unwrap();
        map.add(Region { base: Gpa(0x4000), size: 0x1000, kind: RegionKind::Ram }).unwrap();
        GuestMemory::new(map).unwrap()
    }

    #[test]
    fn little_endian_accessors() {
        let mut m = two_banks();
        m.write_u64(Gpa(0x10), 0x1122_3344_5566_7788);
        assert_eq!(m.read_u8(Gpa(0x10)), 0x88);
        assert_eq!(m.read_u16(Gpa(0x10)), 0x7788);
        assert_eq!(m.read_u32(Gpa(0x14)), 0x1122_3344);
        m.write_u128(Gpa(0x20), 0xAABB << 64 | 1);
        assert_eq!(m.read_u128(Gpa(0x20)), 0xAABB << 64 | 1);
    }

    #[test]
    fn unmapped_reads_all_ones_and_drops_writes() {
        let mut m = two_banks();
        m.write_u32(Gpa(0x2800), 0);
        assert_eq!(m.read_u32(Gpa(0x2800)), 0xFFFF_FFFF);
        assert_eq!(m.read_u64(Gpa(0xFFFF_FFF0)), u64::MAX);
        // A write straddling RAM and a hole keeps only the RAM bytes.
        m.write_u32(Gpa(0x1FFE), 0x4433_2211);
        assert_eq!(m.read_u16(Gpa(0x1FFE)), 0x2211);
        assert_eq!(m.read_u32(Gpa(0x1FFE)), 0xFFFF_2211);
    }

    #[test]
    fn regions_map_to_disjoint_backing() {
        let mut m = two_banks();
        m.write_u8(Gpa(0x4000), 7);
        assert_eq!(m.read_u8(Gpa(0)), 0);
        assert_eq!(m.target(Gpa(0x4000)), Target::Ram(0x2000));
        assert_eq!(m.target(Gpa(0x3000)), Target::Mmio);
        assert_eq!(m.ram_page(Gfn(4)), Some(0x2000));
        assert_eq!(m.ram_page(Gfn(3)), None);
        assert_eq!(m.ram_size(), 0x3000);
    }

    #[test]
    fn load_refuses_non_ram() {
        let mut m = two_banks();
        assert!(m.load(Gpa(0x1FF0), &[1; 0x20]).is_err());
        assert!(m.load(Gpa(0x1FF0), &[1; 0x10]).is_ok());
        let mut map = MemoryMap::flat(0x1000);
        assert!(map.add(Region { base: Gpa(0xFFF), size: 2, kind: RegionKind::Mmio }).is_err());
    }

    #[test]
    fn cmpxchg() {
        let mut m = two_banks();
        m.write_u64(Gpa(8), 5);
        assert_eq!(m.cmpxchg_u64(Gpa(8), 4, 9), 5);
        assert_eq!(m.read_u64(Gpa(8)), 5);
        assert_eq!(m.cmpxchg_u64(Gpa(8), 5, 9), 5);
        assert_eq!(m.read_u64(Gpa(8)), 9);
    }
}
