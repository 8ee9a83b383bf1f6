//! The port-I/O bus: devices claim port ranges; unclaimed ports read as all ones and
//! ignore writes, as on a PC's ISA bus.

use std::any::Any;

/// A device on the port bus. `size` is 1, 2 or 4 bytes; `port` is the first port.
pub trait PortDevice: Any {
    /// A read of `size` bytes at `port`.
    fn read(&mut self, port: u16, size: u8) -> u32;
    /// A write of `size` bytes at `port`.
    fn write(&mut self, port: u16, size: u8, value: u32);
    /// Upcast for [`PortBus::device`].
    fn as_any(&self) -> &dyn Any;
    /// Upcast for [`PortBus::device_mut`].
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

struct Claim {
    first: u16,
    last: u16,
}

/// Errors from building the bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// Two devices claimed the same port.
    #[error("port range {first:#x}-{last:#x} overlaps an existing device")]
    Overlap {
        /// First port of the new claim.
        first: u16,
        /// Last port of the new claim.
        last: u16,
    },
}

/// The port-I/O bus.
#[derive(Default)]
pub struct PortBus {
    devices: Vec<Box<dyn PortDevice>>,
    claims: Vec<Claim>,
    /// Direct map from port to device index + 1 (0 = unclaimed).
    by_port: Vec<u16>,
}

impl PortBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self { devices: Vec::new(), claims: Vec::new(), by_port: vec![0; 0x10000] }
    }

    /// Adds `device`, claiming ports `first..=last`.
    pub fn add(
        &mut self,
        first: u16,
        last: u16,
        device: Box<dyn PortDevice>,
    ) -> Result<(), BusError> {
        if self.claims.iter().any(|c| first <= c.last && c.first <= last) || first > last {
            return Err(BusError::Overlap { first, last });
        }
        self.devices.push(device);
        let idx = self.devices.len();
        self.claims.push(Claim { first, last });
        for p in first..=last {
            self.by_port[usize::from(p)] = idx as u16;
        }
        Ok(())
    }

    /// Adds `device`, claiming every range `first..=last` of `ranges` (a device whose
    /// registers are not contiguous, such as the PIC with its ELCR at 0x4D0 or the PIT with
    /// port B at 0x61). Nothing is claimed if any range overlaps.
    pub fn add_ranges(
        &mut self,
        ranges: &[(u16, u16)],
        device: Box<dyn PortDevice>,
    ) -> Result<(), BusError> {
        for (i, &(first, last)) in ranges.iter().enumerate() {
            let overlaps_earlier = ranges[..i].iter().any(|&(f, l)| first <= l && f <= last);
            if first > last
                || overlaps_earlier
                || self.claims.iter().any(|c| first <= c.last && c.first <= last)
            {
                return Err(BusError::Overlap { first, last });
            }
        }
        self.devices.push(device);
        let idx = self.devices.len();
        for &(first, last) in ranges {
            self.claims.push(Claim { first, last });
            for p in first..=last {
                self.by_port[usize::from(p)] = idx as u16;
            }
        }
        Ok(())
    }

    /// A port read. Unclaimed ports read all ones.
    pub fn read(&mut self, port: u16, size: u8) -> u32 {
        match self.by_port[usize::from(port)] {
            0 => u32::MAX >> (32 - 8 * u32::from(size)),
            i => self.devices[usize::from(i) - 1].read(port, size),
        }
    }

    /// A port write. Writes to unclaimed ports are dropped.
    pub fn write(&mut self, port: u16, size: u8, value: u32) {
        if let i @ 1.. = self.by_port[usize::from(port)] {
            self.devices[usize::from(i) - 1].write(port, size, value)
        }
    }

    /// The first device of type `T`.
    pub fn device<T: PortDevice>(&self) -> Option<&T> {
        self.devices.iter().find_map(|d| d.as_any().downcast_ref::<T>())
    }

    /// The first device of type `T`, mutably.
    pub fn device_mut<T: PortDevice>(&mut self) -> Option<&mut T> {
        self.devices.iter_mut().find_map(|d| d.as_any_mut().downcast_mut::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DebugExit;

    #[test]
    fn unclaimed_ports_float_high() {
        let mut bus = PortBus::new();
        assert_eq!(bus.read(0x1234, 1), 0xFF);
        assert_eq!(bus.read(0x1234, 2), 0xFFFF);
        assert_eq!(bus.read(0x1234, 4), 0xFFFF_FFFF);
        bus.write(0x1234, 1, 0);
    }

    #[test]
    fn overlapping_claims_are_refused() {
        let mut bus = PortBus::new();
        bus.add(0xF4, 0xF4, Box::new(DebugExit::default())).unwrap();
        assert!(bus.add(0xF0, 0xF4, Box::new(DebugExit::default())).is_err());
        bus.write(0xF4, 1, 3);
        assert_eq!(bus.device_mut::<DebugExit>().unwrap().take(), Some(3));
    }

    #[test]
    fn one_device_may_claim_several_ranges() {
        let mut bus = PortBus::new();
        bus.add_ranges(&[(0xF4, 0xF4), (0x500, 0x501)], Box::new(DebugExit::default())).unwrap();
        bus.write(0x501, 1, 7);
        assert_eq!(bus.device_mut::<DebugExit>().unwrap().take(), Some(7));
        assert!(bus.add(0x500, 0x500, Box::new(DebugExit::default())).is_err());
        assert!(bus
            .add_ranges(&[(0x10, 0x11), (0x11, 0x12)], Box::new(DebugExit::default()))
            .is_err());
        assert_eq!(bus.read(0x10, 1), 0xFF, "a refused claim claims nothing");
    }
}
