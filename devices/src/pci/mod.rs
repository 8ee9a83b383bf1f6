//! PCI configuration space through configuration mechanism #1 (PCI Local Bus
//! Specification 3.0, 3.2.2.3.2 "Software Generation of Configuration Transactions"):
//! CONFIG_ADDRESS at 0xCF8 (dword only), CONFIG_DATA at 0xCFC-0xCFF. The functions of
//! bus 0 implement [`PciFunction`] over a 256-byte [`ConfigSpace`] with write masks.
//!
//! [`PciHost::pc`] builds the PC's chipset: the i440FX host bridge at 00:00.0, the PIIX3
//! ISA bridge at 00:01.0, the PIIX3 IDE function at 00:01.1 ([`crate::ide`]) and the PIIX4 power-management function at 00:01.3.

pub mod i440fx;
pub mod piix;

use crate::bus::PortDevice;
use crate::pc;
use std::any::Any;

pub use i440fx::HostBridge;
pub use piix::{IsaBridge, PmFunction};

/// Vendor ID (16 bits).
pub const VENDOR_ID: u8 = 0x00;
/// Device ID (16 bits).
pub const DEVICE_ID: u8 = 0x02;
/// Command register (16 bits).
pub const COMMAND: u8 = 0x04;
/// Status register (16 bits; error bits are write-one-to-clear).
pub const STATUS: u8 = 0x06;
/// Revision ID.
pub const REVISION_ID: u8 = 0x08;
/// Programming interface (class code bits 7:0).
pub const PROG_IF: u8 = 0x09;
/// Sub-class (class code bits 15:8).
pub const SUBCLASS: u8 = 0x0A;
/// Base class (class code bits 23:16).
pub const CLASS: u8 = 0x0B;
/// Header type; bit 7 = multi-function device.
pub const HEADER_TYPE: u8 = 0x0E;
/// Interrupt line (written by firmware).
pub const INTERRUPT_LINE: u8 = 0x3C;
/// Interrupt pin (1 = INTA#).
pub const INTERRUPT_PIN: u8 = 0x3D;
/// Header type bit 7: the device has more than one function.
pub const HEADER_MULTI_FUNCTION: u8 = 0x80;
/// Intel's vendor ID.
pub const VENDOR_INTEL: u16 = 0x8086;
/// Status bits 15:11 and 8 (parity, system error, master/target aborts, data parity):
/// write one to clear.
pub const STATUS_W1C: u16 = 0xF900;

/// CONFIG_ADDRESS bit 31: enable configuration transactions.
pub const CONFIG_ENABLE: u32 = 1 << 31;
/// CONFIG_ADDRESS bits that hold state: enable, bus, device, function, register.
/// Bits 30:24 are reserved and bits 1:0 read as 0.
pub const CONFIG_ADDRESS_MASK: u32 = CONFIG_ENABLE | 0x00FF_FFFC;

/// A PCI function's address (bus, device, function).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Bdf {
    /// Bus number.
    pub bus: u8,
    /// Device number (0-31).
    pub device: u8,
    /// Function number (0-7).
    pub function: u8,
}

impl Bdf {
    /// The address `bus:device.function`.
    pub const fn new(bus: u8, device: u8, function: u8) -> Self {
        Self { bus, device, function }
    }

    /// The function a CONFIG_ADDRESS value selects.
    pub const fn from_config_address(addr: u32) -> Self {
        Self::new((addr >> 16) as u8, ((addr >> 11) & 0x1F) as u8, ((addr >> 8) & 7) as u8)
    }
}

/// A function's 256-byte configuration space: the bytes, which bits software may write,
/// and which are write-one-to-clear.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct ConfigSpace {
    #[serde(with = "crate::serde_array")]
    bytes: [u8; 256],
    #[serde(with = "crate::serde_array")]
    writable: [u8; 256],
    #[serde(with = "crate::serde_array")]
    w1c: [u8; 256],
}

impl std::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSpace").field("id", &format_args!("{:#x}", self.read(0, 4))).finish()
    }
}

impl ConfigSpace {
    /// A type-0 header with the given IDs and class code (base, sub-class, interface),
    /// every byte read-only.
    pub fn new(vendor: u16, device: u16, revision: u8, class: [u8; 3]) -> Self {
        let mut c = Self { bytes: [0; 256], writable: [0; 256], w1c: [0; 256] };
        c.set_u16(VENDOR_ID, vendor);
        c.set_u16(DEVICE_ID, device);
        c.bytes[usize::from(REVISION_ID)] = revision;
        c.bytes[usize::from(CLASS)] = class[0];
        c.bytes[usize::from(SUBCLASS)] = class[1];
        c.bytes[usize::from(PROG_IF)] = class[2];
        c
    }

    /// Sets a byte's value (device side, ignores the masks).
    pub fn set_u8(&mut self, offset: u8, value: u8) {
        self.bytes[usize::from(offset)] = value;
    }

    /// Sets a little-endian word (device side).
    pub fn set_u16(&mut self, offset: u8, value: u16) {
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            self.bytes[(usize::from(offset) + i) & 0xFF] = b;
        }
    }

    /// Sets a little-endian dword (device side).
    pub fn set_u32(&mut self, offset: u8, value: u32) {
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            self.bytes[(usize::from(offset) + i) & 0xFF] = b;
        }
    }

    /// Declares the writable bits of `mask.len()` bytes starting at `offset`.
    pub fn set_writable(&mut self, offset: u8, mask: &[u8]) {
        for (i, &m) in mask.iter().enumerate() {
            self.writable[(usize::from(offset) + i) & 0xFF] = m;
        }
    }

    /// Declares the write-one-to-clear bits of `mask.len()` bytes starting at `offset`.
    pub fn set_w1c(&mut self, offset: u8, mask: &[u8]) {
        for (i, &m) in mask.iter().enumerate() {
            self.w1c[(usize::from(offset) + i) & 0xFF] = m;
        }
    }

    /// A byte.
    pub fn u8(&self, offset: u8) -> u8 {
        self.bytes[usize::from(offset)]
    }

    /// A read of `size` bytes at `offset`, little-endian; bytes past 0xFF read 0xFF.
    pub fn read(&self, offset: u8, size: u8) -> u32 {
        (0..usize::from(size.min(4))).fold(0, |acc, i| {
            let b = self.bytes.get(usize::from(offset) + i).copied().unwrap_or(0xFF);
            acc | (u32::from(b) << (8 * i))
        })
    }

    /// A guest write of `size` bytes at `offset` through the masks.
    pub fn write(&mut self, offset: u8, size: u8, value: u32) {
        for i in 0..usize::from(size.min(4)) {
            let at = usize::from(offset) + i;
            if at > 0xFF {
                break;
            }
            let v = (value >> (8 * i)) as u8;
            let b = &mut self.bytes[at];
            *b = (*b & !self.writable[at]) | (v & self.writable[at]);
            *b &= !(v & self.w1c[at]);
        }
    }
}

/// A PCI function on bus 0.
pub trait PciFunction: Any {
    /// The configuration space.
    fn config(&self) -> &ConfigSpace;
    /// The configuration space, mutably.
    fn config_mut(&mut self) -> &mut ConfigSpace;
    /// A configuration read (functions with side effects override this).
    fn read_config(&mut self, offset: u8, size: u8) -> u32 {
        self.config().read(offset, size)
    }
    /// A configuration write (functions with side effects override this).
    fn write_config(&mut self, offset: u8, size: u8, value: u32) {
        self.config_mut().write(offset, size, value)
    }
    /// Upcast for [`PciHost::function`].
    fn as_any(&self) -> &dyn Any;
    /// Upcast for [`PciHost::function_mut`].
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Reset control register bit 1: SRST (the reset is a hard, full system reset).
pub const RC_SYSTEM_RESET: u8 = 1 << 1;
/// Reset control register bit 2: RCPU (writing 1 resets the processor).
pub const RC_RESET_CPU: u8 = 1 << 2;

/// The configuration mechanism #1 host: CONFIG_ADDRESS and CONFIG_DATA on the port bus
/// (`pc::PCI_CONFIG_ADDRESS..=pc::PCI_CONFIG_DATA + 3`) and the functions of bus 0.
/// Byte port 0xCF9 inside CONFIG_ADDRESS is the PIIX3 reset control register (82371SB
/// datasheet, "RC - Reset Control Register"), so it lives here too.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct PciHost {
    address: u32,
    #[serde(with = "saved_functions")]
    functions: Vec<(Bdf, Box<dyn PciFunction>)>,
    reset_control: u8,
    reset_requested: bool,
}

/// Errors from building the PCI bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PciError {
    /// Two functions at one address.
    #[error("PCI function {0:?} already present")]
    Occupied(Bdf),
    /// Device above 31, function above 7, or a bus other than 0.
    #[error("PCI address {0:?} is not on bus 0")]
    BadAddress(Bdf),
}

impl PciHost {
    /// An empty bus 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The PC chipset: i440FX at 00:00.0, PIIX3 ISA at 00:01.0, PIIX3 IDE at 00:01.1,
    /// PIIX4 PM at 00:01.3.
    pub fn pc() -> Self {
        let mut host = Self::new();
        let fns: [(Bdf, Box<dyn PciFunction>); 4] = [
            (HostBridge::BDF, Box::new(HostBridge::new())),
            (IsaBridge::BDF, Box::new(IsaBridge::new())),
            (crate::ide::IdeFunction::BDF, Box::new(crate::ide::IdeFunction::new())),
            (PmFunction::BDF, Box::new(PmFunction::new())),
        ];
        for (bdf, f) in fns {
            // Distinct, valid addresses: cannot fail.
            let _ = host.add(bdf, f);
        }
        host
    }

    /// Adds a function at `bdf` on bus 0.
    pub fn add(&mut self, bdf: Bdf, function: Box<dyn PciFunction>) -> Result<(), PciError> {
        if bdf.bus != 0 || bdf.device > 31 || bdf.function > 7 {
            return Err(PciError::BadAddress(bdf));
        }
        match self.functions.binary_search_by_key(&bdf, |(b, _)| *b) {
            Ok(_) => Err(PciError::Occupied(bdf)),
            Err(at) => {
                self.functions.insert(at, (bdf, function));
                Ok(())
            }
        }
    }

    /// The CONFIG_ADDRESS register.
    pub fn config_address(&self) -> u32 {
        self.address
    }

    /// Whether the guest wrote RCPU to the reset control register (a system reset, as
    /// QEMU treats it); clears the request.
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }

    fn function_at(&mut self, bdf: Bdf) -> Option<&mut Box<dyn PciFunction>> {
        let i = self.functions.binary_search_by_key(&bdf, |(b, _)| *b).ok()?;
        Some(&mut self.functions[i].1)
    }

    /// A configuration read of `size` bytes at `offset` of `bdf`; absent functions read
    /// all ones (the master abort of a configuration read).
    pub fn config_read(&mut self, bdf: Bdf, offset: u8, size: u8) -> u32 {
        let ones = u32::MAX >> (32 - 8 * u32::from(size.clamp(1, 4)));
        match self.function_at(bdf) {
            Some(f) => f.read_config(offset, size) & ones,
            None => ones,
        }
    }

    /// A configuration write; writes to absent functions are dropped.
    pub fn config_write(&mut self, bdf: Bdf, offset: u8, size: u8, value: u32) {
        if let Some(f) = self.function_at(bdf) {
            f.write_config(offset, size, value);
        }
    }

    /// The function of type `T`.
    pub fn function<T: PciFunction>(&self) -> Option<&T> {
        self.functions.iter().find_map(|(_, f)| f.as_any().downcast_ref::<T>())
    }

    /// The function of type `T`, mutably.
    pub fn function_mut<T: PciFunction>(&mut self) -> Option<&mut T> {
        self.functions.iter_mut().find_map(|(_, f)| f.as_any_mut().downcast_mut::<T>())
    }

    /// The function and register a CONFIG_DATA access at `port` reaches, if enabled.
    fn data_target(&self, port: u16) -> Option<(Bdf, u8)> {
        (self.address & CONFIG_ENABLE != 0).then(|| {
            let offset =
                (self.address & 0xFC) as u8 | (port.wrapping_sub(pc::PCI_CONFIG_DATA) & 3) as u8;
            (Bdf::from_config_address(self.address), offset)
        })
    }
}

impl PortDevice for PciHost {
    fn read(&mut self, port: u16, size: u8) -> u32 {
        let ones = u32::MAX >> (32 - 8 * u32::from(size.clamp(1, 4)));
        if port < pc::PCI_CONFIG_DATA {
            // Only dword accesses to 0xCF8 reach CONFIG_ADDRESS.
            return match (port, size) {
                (pc::PCI_CONFIG_ADDRESS, 4) => self.address,
                (pc::RESET_CONTROL_PORT, 1) => u32::from(self.reset_control),
                _ => ones,
            };
        }
        match self.data_target(port) {
            Some((bdf, offset)) => self.config_read(bdf, offset, size),
            None => ones,
        }
    }

    fn write(&mut self, port: u16, size: u8, value: u32) {
        if port < pc::PCI_CONFIG_DATA {
            match (port, size) {
                (pc::PCI_CONFIG_ADDRESS, 4) => self.address = value & CONFIG_ADDRESS_MASK,
                (pc::RESET_CONTROL_PORT, 1) => {
                    let v = value as u8;
                    if v & RC_RESET_CPU != 0 {
                        self.reset_requested = true;
                    }
                    self.reset_control = v & RC_SYSTEM_RESET;
                }
                _ => {}
            }
            return;
        }
        if let Some((bdf, offset)) = self.data_target(port) {
            self.config_write(bdf, offset, size, value);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests;

/// Snapshots of the bus's functions: each is saved as the concrete model it is (a trait
/// object has no serialized form); a function of another type cannot be saved.
mod saved_functions {
    use super::{Bdf, HostBridge, IsaBridge, PciFunction, PmFunction};
    use crate::ide::IdeFunction;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(serde::Serialize, serde::Deserialize)]
    enum Saved {
        HostBridge(HostBridge),
        IsaBridge(IsaBridge),
        PmFunction(PmFunction),
        IdeFunction(IdeFunction),
    }

    pub fn serialize<S: Serializer>(
        fns: &[(Bdf, Box<dyn PciFunction>)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut saved = Vec::with_capacity(fns.len());
        for (bdf, f) in fns {
            let any = f.as_any();
            let one = if let Some(h) = any.downcast_ref::<HostBridge>() {
                Saved::HostBridge(h.clone())
            } else if let Some(i) = any.downcast_ref::<IsaBridge>() {
                Saved::IsaBridge(i.clone())
            } else if let Some(p) = any.downcast_ref::<PmFunction>() {
                Saved::PmFunction(p.clone())
            } else if let Some(i) = any.downcast_ref::<IdeFunction>() {
                Saved::IdeFunction(i.clone())
            } else {
                return Err(serde::ser::Error::custom(format!(
                    "PCI function {bdf:?} is of a type snapshots do not know"
                )));
            };
            saved.push((*bdf, one));
        }
        saved.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(Bdf, Box<dyn PciFunction>)>, D::Error> {
        let saved = Vec::<(Bdf, Saved)>::deserialize(d)?;
        Ok(saved
            .into_iter()
            .map(|(bdf, f)| {
                let f: Box<dyn PciFunction> = match f {
                    Saved::HostBridge(h) => Box::new(h),
                    Saved::IsaBridge(i) => Box::new(i),
                    Saved::PmFunction(p) => Box::new(p),
                    Saved::IdeFunction(i) => Box::new(i),
                };
                (bdf, f)
            })
            .collect())
    }
}
