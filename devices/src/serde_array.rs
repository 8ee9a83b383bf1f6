//! Serde support for arrays longer than the 32 elements serde implements itself (CMOS
//! RAM, PCI configuration space): `#[serde(with = "crate::serde_array")]`. The array is
//! written as a sequence; reading back a sequence of another length is an error.

use serde::de::{Deserialize, Deserializer, Error};
use serde::ser::{Serialize, Serializer};

/// Writes the array as a sequence.
pub fn serialize<S: Serializer, T: Serialize, const N: usize>(
    a: &[T; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    a.as_slice().serialize(s)
}

/// Reads a sequence of exactly `N` elements.
pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(
    d: D,
) -> Result<[T; N], D::Error> {
    let v = Vec::<T>::deserialize(d)?;
    let len = v.len();
    v.try_into().map_err(|_| D::Error::custom(format!("expected {N} elements, found {len}")))
}

/// The same for a boxed array (a sector buffer): `#[serde(with = "crate::serde_array::boxed")]`.
pub mod boxed {
    use serde::de::{Deserialize, Deserializer, Error};
    use serde::ser::Serializer;

    /// Writes the array as a sequence.
    #[allow(clippy::borrowed_box)] // the signature serde's `with` calls
    pub fn serialize<S: Serializer, T: serde::Serialize, const N: usize>(
        a: &Box<[T; N]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        super::serialize(a.as_ref(), s)
    }

    /// Reads a sequence of exactly `N` elements.
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(
        d: D,
    ) -> Result<Box<[T; N]>, D::Error> {
        let v = Vec::<T>::deserialize(d)?;
        let len = v.len();
        v.into_boxed_slice()
            .try_into()
            .map_err(|_| D::Error::custom(format!("expected {N} elements, found {len}")))
    }
}
