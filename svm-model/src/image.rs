//! A VMCB as bytes: the 4-KiB page copied out of guest memory, read and written through
//! the offsets of [`crate::vmcb`].
//!
//! VMRUN copies the VMCB into a [`VmcbImage`] before checking it, so that the checks and
//! the state load see one snapshot (the guest cannot change a field between the check and
//! its use, as KVM's `vmcb12` caching also guarantees).

use crate::vmcb::{self, VmcbField, VMCB_SIZE};

/// Read access to VMCB fields by offset and width (little-endian, as in memory).
pub trait VmcbRead {
    /// The `width`-byte (1..=8) little-endian value at `offset`; bytes past the page
    /// read as 0.
    fn read(&self, offset: u16, width: u16) -> u64;

    /// The 8-byte value at `offset`.
    fn u64_at(&self, offset: u16) -> u64 {
        self.read(offset, 8)
    }

    /// The value of a declared field (its first 8 bytes for wider fields).
    fn field(&self, f: &VmcbField) -> u64 {
        self.read(f.offset, f.width.min(8))
    }
}

/// One VMCB page.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VmcbImage {
    #[serde(with = "page_bytes")]
    bytes: Box<[u8; VMCB_SIZE]>,
}

/// Serde for the VMCB page: its bytes as one byte string; another length is an error.
mod page_bytes {
    use super::VMCB_SIZE;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8; VMCB_SIZE], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<[u8; VMCB_SIZE]>, D::Error> {
        let v = Vec::<u8>::deserialize(d)?;
        let len = v.len();
        v.into_boxed_slice()
            .try_into()
            .map_err(|_| D::Error::custom(format!("a VMCB of {len} bytes (expected {VMCB_SIZE})")))
    }
}

impl Default for VmcbImage {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl std::fmt::Debug for VmcbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmcbImage {{ exitcode: {:#x}, rip: {:#x} }}",
            self.u64_at(vmcb::EXITCODE),
            self.u64_at(vmcb::RIP)
        )
    }
}

impl VmcbImage {
    /// An all-zero VMCB.
    pub fn zeroed() -> Self {
        Self { bytes: Box::new([0; VMCB_SIZE]) }
    }

    /// A VMCB from the bytes of a page; a shorter slice is zero-padded, a longer one cut.
    pub fn from_bytes(b: &[u8]) -> Self {
        let mut img = Self::zeroed();
        let n = b.len().min(VMCB_SIZE);
        img.bytes[..n].copy_from_slice(&b[..n]);
        img
    }

    /// The page's bytes.
    pub fn as_bytes(&self) -> &[u8; VMCB_SIZE] {
        &self.bytes
    }

    /// Writes the low `width` (1..=8) bytes of `v` at `offset`; bytes past the page are
    /// dropped.
    pub fn write(&mut self, offset: u16, width: u16, v: u64) {
        for k in 0..width.min(8) {
            if let Some(b) = self.bytes.get_mut(usize::from(offset) + usize::from(k)) {
                *b = (v >> (8 * k)) as u8;
            }
        }
    }

    /// Writes an 8-byte value at `offset`.
    pub fn set_u64(&mut self, offset: u16, v: u64) {
        self.write(offset, 8, v);
    }

    /// Writes a declared field (at most 8 bytes of it).
    pub fn set_field(&mut self, f: &VmcbField, v: u64) {
        self.write(f.offset, f.width.min(8), v);
    }

    /// The six 32-bit intercept vectors (offsets 0x000-0x017).
    pub fn intercepts(&self) -> [u32; 6] {
        let mut v = [0u32; 6];
        for (k, w) in v.iter_mut().enumerate() {
            *w = self.read(4 * k as u16, 4) as u32;
        }
        v
    }
}

impl VmcbRead for VmcbImage {
    fn read(&self, offset: u16, width: u16) -> u64 {
        let mut v = 0u64;
        for k in 0..width.min(8) {
            let b = self.bytes.get(usize::from(offset) + usize::from(k)).copied().unwrap_or(0);
            v |= u64::from(b) << (8 * k);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn little_endian_round_trip_and_page_end() {
        let mut i = VmcbImage::zeroed();
        i.set_u64(vmcb::RIP, 0x1122_3344_5566_7788);
        assert_eq!(i.read(vmcb::RIP, 2), 0x7788);
        assert_eq!(i.u64_at(vmcb::RIP), 0x1122_3344_5566_7788);
        assert_eq!(i.as_bytes()[usize::from(vmcb::RIP)], 0x88);
        // Past the end: writes dropped, reads zero.
        i.write(0xFFE, 8, u64::MAX);
        assert_eq!(i.read(0xFFE, 8), 0xFFFF);
        assert_eq!(i.read(0x2000, 8), 0);
    }

    #[test]
    fn intercept_vectors() {
        let mut i = VmcbImage::zeroed();
        i.write(vmcb::INTERCEPT_MISC2, 4, 1);
        i.write(vmcb::INTERCEPT_MISC1, 4, 1 << 18);
        let v = i.intercepts();
        assert!(crate::intercept::INTERCEPT_VMRUN.is_set(&v));
        assert!(crate::intercept::INTERCEPT_CPUID.is_set(&v));
        assert!(!crate::intercept::INTERCEPT_HLT.is_set(&v));
    }
}
