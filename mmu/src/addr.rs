//! Typed guest addresses. A bare `u64` does not cross a crate boundary as an address.

use std::fmt;

/// log2 of the 4 KiB base page size.
pub const PAGE_SHIFT: u32 = 12;
/// The 4 KiB base page size.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw value.
            #[inline]
            pub const fn raw(self) -> u64 {
                self.0
            }
            /// `self + off`, wrapping (x86 address arithmetic wraps).
            #[inline]
            pub const fn add(self, off: u64) -> Self {
                Self(self.0.wrapping_add(off))
            }
            /// Offset inside the 4 KiB page.
            #[inline]
            pub const fn page_offset(self) -> u64 {
                self.0 & (PAGE_SIZE - 1)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address_type!(
    /// A guest physical address.
    Gpa
);
address_type!(
    /// A guest virtual (linear) address: segment base + offset, before paging.
    Gva
);

/// A guest page frame number: a guest physical address shifted right by 12.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Gfn(pub u64);

impl Gpa {
    /// The frame holding this address.
    #[inline]
    pub const fn gfn(self) -> Gfn {
        Gfn(self.0 >> PAGE_SHIFT)
    }
}

impl Gfn {
    /// The first address of the frame.
    #[inline]
    pub const fn gpa(self) -> Gpa {
        Gpa(self.0 << PAGE_SHIFT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gfn_round_trip_and_offsets() {
        let a = Gpa(0x1234_5678);
        assert_eq!(a.gfn(), Gfn(0x12345));
        assert_eq!(a.gfn().gpa(), Gpa(0x1234_5000));
        assert_eq!(a.page_offset(), 0x678);
        assert_eq!(Gva(u64::MAX).add(2), Gva(1));
        assert_eq!(format!("{:?}", Gpa(0x10)), "Gpa(0x10)");
    }
}
