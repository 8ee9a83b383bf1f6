//! The MMIO bus: devices claim physical address ranges; unclaimed addresses read as all
//! ones and ignore writes. The machine asks [`MmioBus::claims`] before treating an access
//! as RAM.

use std::any::Any;

/// A memory-mapped device. `offset` is relative to the base it was registered at;
/// `size` is 1, 2, 4 or 8 bytes.
pub trait MmioDevice: Any {
    /// A read of `size` bytes at `offset`.
    fn read(&mut self, offset: u64, size: u8) -> u64;
    /// A write of `size` bytes at `offset` (the low `size` bytes of `value`).
    fn write(&mut self, offset: u64, size: u8, value: u64);
    /// Upcast for [`MmioBus::device`].
    fn as_any(&self) -> &dyn Any;
    /// Upcast for [`MmioBus::device_mut`].
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Errors from building the bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MmioError {
    /// The new range overlaps an existing claim.
    #[error("MMIO range {base:#x}+{len:#x} overlaps an existing device")]
    Overlap {
        /// Base of the new claim.
        base: u64,
        /// Length of the new claim.
        len: u64,
    },
    /// The range is empty or wraps past the end of the address space.
    #[error("MMIO range {base:#x}+{len:#x} is empty or wraps")]
    BadRange {
        /// Base of the new claim.
        base: u64,
        /// Length of the new claim.
        len: u64,
    },
}

struct Region {
    base: u64,
    /// Last address claimed (inclusive), so a claim may end at 2^64 - 1.
    last: u64,
    device: Box<dyn MmioDevice>,
}

/// The all-ones value of a `size`-byte access.
fn all_ones(size: u8) -> u64 {
    match size {
        8.. => u64::MAX,
        s => (1u64 << (8 * u32::from(s))) - 1,
    }
}

/// The MMIO bus: regions sorted by base, found by binary search.
#[derive(Default)]
pub struct MmioBus {
    regions: Vec<Region>,
}

impl MmioBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `device` at `[base, base + len)`.
    pub fn add(
        &mut self,
        base: u64,
        len: u64,
        device: Box<dyn MmioDevice>,
    ) -> Result<(), MmioError> {
        let last = match len.checked_sub(1).and_then(|l| base.checked_add(l)) {
            Some(last) => last,
            None => return Err(MmioError::BadRange { base, len }),
        };
        if self.regions.iter().any(|r| base <= r.last && r.base <= last) {
            return Err(MmioError::Overlap { base, len });
        }
        let at = self.regions.partition_point(|r| r.base < base);
        self.regions.insert(at, Region { base, last, device });
        Ok(())
    }

    fn index_of(&self, addr: u64) -> Option<usize> {
        let i = self.regions.partition_point(|r| r.base <= addr).checked_sub(1)?;
        (addr <= self.regions[i].last).then_some(i)
    }

    /// The `(base, len)` of the region that claims `addr`, if any.
    pub fn claims(&self, addr: u64) -> Option<(u64, u64)> {
        self.index_of(addr).map(|i| {
            let r = &self.regions[i];
            (r.base, r.last - r.base + 1)
        })
    }

    /// A read of `size` bytes at `addr`. Unclaimed addresses read all ones.
    pub fn read(&mut self, addr: u64, size: u8) -> u64 {
        match self.index_of(addr) {
            Some(i) => {
                let r = &mut self.regions[i];
                r.device.read(addr - r.base, size) & all_ones(size)
            }
            None => all_ones(size),
        }
    }

    /// A write of `size` bytes at `addr`. Writes to unclaimed addresses are dropped.
    pub fn write(&mut self, addr: u64, size: u8, value: u64) {
        if let Some(i) = self.index_of(addr) {
            let r = &mut self.regions[i];
            r.device.write(addr - r.base, size, value & all_ones(size));
        }
    }

    /// The first device of type `T`.
    pub fn device<T: MmioDevice>(&self) -> Option<&T> {
        self.regions.iter().find_map(|r| r.device.as_any().downcast_ref::<T>())
    }

    /// The first device of type `T`, mutably.
    pub fn device_mut<T: MmioDevice>(&mut self) -> Option<&mut T> {
        self.regions.iter_mut().find_map(|r| r.device.as_any_mut().downcast_mut::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch device that remembers the last access.
    #[derive(Default)]
    struct Scratch {
        last_write: Option<(u64, u8, u64)>,
    }

    impl MmioDevice for Scratch {
        fn read(&mut self, offset: u64, _size: u8) -> u64 {
            0x1122_3344_5566_7700 | offset
        }
        fn write(&mut self, offset: u64, size: u8, value: u64) {
            self.last_write = Some((offset, size, value));
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn Any {
            self
        }
    }

    #[test]
    fn unclaimed_addresses_float_high_and_drop_writes() {
        let mut bus = MmioBus::new();
        assert_eq!(bus.read(0xFEC0_0000, 1), 0xFF);
        assert_eq!(bus.read(0xFEC0_0000, 2), 0xFFFF);
        assert_eq!(bus.read(0xFEC0_0000, 4), 0xFFFF_FFFF);
        assert_eq!(bus.read(0xFEC0_0000, 8), u64::MAX);
        bus.write(0xFEC0_0000, 4, 0);
        assert_eq!(bus.claims(0xFEC0_0000), None);
    }

    #[test]
    fn accesses_reach_the_device_at_their_offset_truncated_to_size() {
        let mut bus = MmioBus::new();
        bus.add(0x1000, 0x100, Box::new(Scratch::default())).unwrap();
        bus.add(0x3000, 0x10, Box::new(Scratch::default())).unwrap();
        assert_eq!(bus.read(0x1010, 4), 0x5566_7710);
        assert_eq!(bus.read(0x10FF, 1), 0xFF);
        assert_eq!(bus.read(0x1100, 4), 0xFFFF_FFFF, "one past the end is unclaimed");
        assert_eq!(bus.read(0x0FFF, 1), 0xFF, "one before the base is unclaimed");
        assert_eq!(bus.read(0x3008, 8), 0x1122_3344_5566_7708);
        bus.write(0x1020, 2, 0xABCD_1234);
        assert_eq!(bus.device::<Scratch>().unwrap().last_write, Some((0x20, 2, 0x1234)));
        assert_eq!(bus.claims(0x300F), Some((0x3000, 0x10)));
    }

    #[test]
    fn overlapping_and_empty_claims_are_refused() {
        let mut bus = MmioBus::new();
        bus.add(0x1000, 0x1000, Box::new(Scratch::default())).unwrap();
        assert_eq!(
            bus.add(0x1FFF, 1, Box::new(Scratch::default())),
            Err(MmioError::Overlap { base: 0x1FFF, len: 1 })
        );
        assert!(bus.add(0x0800, 0x801, Box::new(Scratch::default())).is_err());
        assert!(bus.add(0x0800, 0x800, Box::new(Scratch::default())).is_ok());
        assert!(bus.add(0x5000, 0, Box::new(Scratch::default())).is_err());
        assert!(bus.add(u64::MAX, 2, Box::new(Scratch::default())).is_err());
        assert!(bus.add(u64::MAX - 0xF, 0x10, Box::new(Scratch::default())).is_ok());
        assert_eq!(bus.claims(u64::MAX), Some((u64::MAX - 0xF, 0x10)));
    }
}
