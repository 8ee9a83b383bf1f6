//! The snapshot file format.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "HVSIMSNP"
//! 8       4     format version (u32, little-endian): FORMAT_VERSION
//! 12      4     header length H (u32, little-endian)
//! 16      H     header: a bincode SnapshotHeader (what the file holds, for messages)
//! 16+H    8     payload length P (u64, little-endian)
//! 24+H    P     payload: the bincode-encoded machine state (see `machine.rs`)
//! 24+H+P  4     CRC-32 (IEEE) of every byte before it
//! ```
//!
//! bincode 1.3 with its default options (variable-length integers, little-endian) and a
//! size limit of the file's length, so that a corrupted length cannot ask for more
//! memory than the file holds. The magic and the version are checked first (a file of
//! another version may be laid out differently), then the checksum, then the lengths.

use bincode::Options;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The first eight bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"HVSIMSNP";
/// The format this hvsim writes and reads. Bump it whenever the saved state changes
/// shape (a field added to a saved struct changes the encoding).
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the header.
const PREFIX: usize = 16;

/// What a snapshot holds, readable without decoding the payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The hvsim version that wrote the file.
    pub hvsim_version: String,
    /// The virtual clock (retired instructions plus idle time) at the snapshot.
    pub clock: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Guest RAM in bytes.
    pub mem_size: u64,
}

/// Why a snapshot cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The host error.
        source: std::io::Error,
    },
    /// Not a snapshot.
    #[error("not an hvsim snapshot (bad magic)")]
    BadMagic,
    /// A snapshot of another format version.
    #[error("snapshot format version {found} is not supported: this hvsim ({}) reads version {FORMAT_VERSION}", env!("CARGO_PKG_VERSION"))]
    Version {
        /// The file's version.
        found: u32,
    },
    /// The file ends early.
    #[error("truncated snapshot: {0}")]
    Truncated(&'static str),
    /// The checksum does not match.
    #[error("corrupted snapshot: CRC-32 {found:08x}, expected {expected:08x}")]
    Checksum {
        /// The CRC of the contents.
        found: u32,
        /// The CRC the file carries.
        expected: u32,
    },
    /// Bytes after the checksum.
    #[error("corrupted snapshot: {0} bytes after the checksum")]
    Trailing(usize),
    /// The contents do not decode.
    #[error("corrupted snapshot: {0}")]
    Decode(String),
    /// The state cannot be encoded (a device snapshots do not know).
    #[error("cannot save the machine: {0}")]
    Encode(String),
    /// The state decodes but cannot be restored (a changed disk image, an inconsistent
    /// configuration).
    #[error("cannot restore the snapshot: {0}")]
    Restore(String),
}

fn options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new().with_limit(limit)
}

/// Encodes a snapshot file.
pub fn encode<T: Serialize>(
    header: &SnapshotHeader,
    payload: &T,
) -> Result<Vec<u8>, SnapshotError> {
    let enc = |e: bincode::Error| SnapshotError::Encode(e.to_string());
    let header = options(u64::MAX).serialize(header).map_err(enc)?;
    let payload = options(u64::MAX).serialize(payload).map_err(enc)?;
    let header_len = u32::try_from(header.len())
        .map_err(|_| SnapshotError::Encode("header too large".into()))?;
    let mut out = Vec::with_capacity(PREFIX + header.len() + 12 + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Takes `n` bytes at `*at`.
fn take<'a>(
    bytes: &'a [u8],
    at: &mut usize,
    n: usize,
    what: &'static str,
) -> Result<&'a [u8], SnapshotError> {
    let end =
        at.checked_add(n).filter(|&e| e <= bytes.len()).ok_or(SnapshotError::Truncated(what))?;
    let s = &bytes[*at..end];
    *at = end;
    Ok(s)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Checks a snapshot file and returns its header and its undecoded payload.
pub fn split(bytes: &[u8]) -> Result<(SnapshotHeader, &[u8]), SnapshotError> {
    let mut at = 0;
    if take(bytes, &mut at, MAGIC.len(), "no magic")? != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let version = le_u32(take(bytes, &mut at, 4, "no format version")?);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::Version { found: version });
    }
    if bytes.len() < PREFIX + 8 + 4 {
        return Err(SnapshotError::Truncated("shorter than the fixed fields"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let expected = le_u32(crc);
    let found = crc32fast::hash(body);
    let header_len = le_u32(take(body, &mut at, 4, "no header length")?) as usize;
    let header_bytes = take(body, &mut at, header_len, "the header")?;
    let mut len = [0u8; 8];
    len.copy_from_slice(take(body, &mut at, 8, "no payload length")?);
    let payload_len = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
    // A file cut short fails its lengths before its checksum (a clearer message).
    if body.len() - at < payload_len && found != expected {
        return Err(SnapshotError::Truncated("the payload"));
    }
    if found != expected {
        return Err(SnapshotError::Checksum { found, expected });
    }
    let payload = take(body, &mut at, payload_len, "the payload")?;
    if at != body.len() {
        return Err(SnapshotError::Trailing(body.len() - at));
    }
    let header = decode(header_bytes)?;
    Ok((header, payload))
}

/// Decodes one bincode value that must fill `bytes` exactly.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SnapshotError> {
    options(bytes.len() as u64).deserialize(bytes).map_err(|e| match *e {
        bincode::ErrorKind::Custom(msg) if msg.starts_with("disk image") => {
            SnapshotError::Restore(msg)
        }
        other => SnapshotError::Decode(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let h = SnapshotHeader { hvsim_version: "t".into(), clock: 5, vcpus: 1, mem_size: 4096 };
        encode(&h, &(1u32, vec![1u8, 2, 3])).unwrap()
    }

    #[test]
    fn round_trip_and_every_failure_has_its_error() {
        let f = sample();
        let (h, p) = split(&f).unwrap();
        assert_eq!(h.clock, 5);
        assert_eq!(decode::<(u32, Vec<u8>)>(p).unwrap(), (1, vec![1, 2, 3]));
        let mut bad = f.clone();
        bad[0] ^= 1;
        assert!(matches!(split(&bad), Err(SnapshotError::BadMagic)));
        let mut v2 = f.clone();
        v2[8] = 2;
        assert!(matches!(split(&v2), Err(SnapshotError::Version { found: 2 })));
        let mut flip = f.clone();
        let n = flip.len();
        flip[n - 6] ^= 0x40;
        assert!(matches!(split(&flip), Err(SnapshotError::Checksum { .. })));
        for cut in 0..f.len() {
            assert!(split(&f[..cut]).is_err(), "cut at {cut}");
        }
    }
}
