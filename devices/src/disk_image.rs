//! Disk images: a file of 512-byte sectors mapped with memmap2.
//!
//! By default the file is mapped read-only and the guest's writes go to a copy-on-write
//! overlay of whole sectors kept in memory: the guest reads its own writes, and the file
//! never changes (a run never corrupts a user's image). With `persist`, the file is
//! mapped writable and writes go through to it; they are flushed by [`DiskImage::flush`]
//! and when the image is dropped.
//!
//! Sizes must be a non-zero multiple of [`SECTOR_SIZE`]: a partial last sector means the
//! file was truncated (or is not a disk image), and hvsim refuses it rather than padding
//! it and then, with `persist`, being unable to write the padding back.
//!
//! UNSAFETY: mapping a file is `unsafe` in memmap2 because another process could change
//! or truncate the file while it is mapped. hvsim documents that an image must not be
//! modified by anyone else during a run (as QEMU does for its images); every access to
//! the mapping is bounds-checked against the length seen at open time.
#![allow(unsafe_code)]

use memmap2::{Mmap, MmapMut};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Bytes per sector.
pub const SECTOR_SIZE: usize = 512;

/// One sector's bytes.
pub type Sector = [u8; SECTOR_SIZE];

/// Why an image cannot be used, or an access failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskImageError {
    /// The file cannot be opened, mapped or inspected.
    #[error("cannot read {path}: {source}")]
    Open {
        /// The image path.
        path: PathBuf,
        /// The host error.
        source: std::io::Error,
    },
    /// The path is not a regular file.
    #[error("{path}: not a regular file")]
    NotAFile {
        /// The image path.
        path: PathBuf,
    },
    /// The file is empty.
    #[error("{path}: the image is empty")]
    Empty {
        /// The image path.
        path: PathBuf,
    },
    /// The size is not a multiple of the sector size.
    #[error(
        "{path}: truncated image: {len} bytes is not a multiple of the {SECTOR_SIZE}-byte \
         sector size"
    )]
    Truncated {
        /// The image path.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// A sector number beyond the end of the image.
    #[error("sector {lba} is beyond the end of the image ({sectors} sectors)")]
    OutOfRange {
        /// The first sector that does not exist.
        lba: u64,
        /// The image's sector count.
        sectors: u64,
    },
    /// A write to a write-protected image.
    #[error("the image is write-protected")]
    WriteProtected,
    /// Flushing a persistent image failed.
    #[error("flushing {path}: {source}")]
    Flush {
        /// The image path.
        path: PathBuf,
        /// The host error.
        source: std::io::Error,
    },
}

/// Where the sectors live.
enum Backing {
    /// A read-only file mapping; writes go to the overlay.
    Mapped(Mmap),
    /// A writable file mapping (`persist`); writes go through.
    Persistent(MmapMut),
    /// An image built in memory (tests, generated images); writes go to the overlay.
    Memory(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Persistent(m) => m,
            Backing::Memory(v) => v,
        }
    }
}

/// A disk image.
pub struct DiskImage {
    backing: Backing,
    /// Sectors the guest wrote (copy-on-write), by sector number.
    overlay: BTreeMap<u64, Box<Sector>>,
    sectors: u64,
    write_protected: bool,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for DiskImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskImage")
            .field("path", &self.path)
            .field("sectors", &self.sectors)
            .field("persistent", &self.is_persistent())
            .field("overlay_sectors", &self.overlay.len())
            .finish()
    }
}

fn check_len(path: &Path, len: u64) -> Result<u64, DiskImageError> {
    if len == 0 {
        return Err(DiskImageError::Empty { path: path.to_path_buf() });
    }
    if len % SECTOR_SIZE as u64 != 0 {
        return Err(DiskImageError::Truncated { path: path.to_path_buf(), len });
    }
    Ok(len / SECTOR_SIZE as u64)
}

impl DiskImage {
    /// Opens and maps the image at `path`. Without `persist` the file is opened
    /// read-only and never written; with `persist` it is opened read-write and the
    /// guest's writes reach it.
    pub fn open(path: &Path, persist: bool) -> Result<Self, DiskImageError> {
        let open_err = |source| DiskImageError::Open { path: path.to_path_buf(), source };
        let file: File =
            OpenOptions::new().read(true).write(persist).open(path).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        if !meta.is_file() {
            return Err(DiskImageError::NotAFile { path: path.to_path_buf() });
        }
        let sectors = check_len(path, meta.len())?;
        let backing = if persist {
            // SAFETY: see the module's UNSAFETY note: the file is not modified by others
            // during the run; accesses are bounds-checked against `sectors`.
            Backing::Persistent(unsafe { MmapMut::map_mut(&file) }.map_err(open_err)?)
        } else {
            // SAFETY: as above.
            Backing::Mapped(unsafe { Mmap::map(&file) }.map_err(open_err)?)
        };
        if backing.bytes().len() as u64 != meta.len() {
            return Err(DiskImageError::Truncated { path: path.to_path_buf(), len: meta.len() });
        }
        Ok(Self {
            backing,
            overlay: BTreeMap::new(),
            sectors,
            write_protected: false,
            path: Some(path.to_path_buf()),
        })
    }

    /// An image held in memory (its writes go to the overlay, as for a file).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, DiskImageError> {
        let sectors = check_len(Path::new("<memory>"), bytes.len() as u64)?;
        Ok(Self {
            backing: Backing::Memory(bytes),
            overlay: BTreeMap::new(),
            sectors,
            write_protected: false,
            path: None,
        })
    }

    /// The number of sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// The size in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.sectors * SECTOR_SIZE as u64
    }

    /// The file the image was opened from.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether writes go through to the file.
    pub fn is_persistent(&self) -> bool {
        matches!(self.backing, Backing::Persistent(_))
    }

    /// Makes the image refuse writes (a write-protected floppy, a read-only medium).
    pub fn set_write_protected(&mut self, on: bool) {
        self.write_protected = on;
    }

    /// Whether writes are refused.
    pub fn is_write_protected(&self) -> bool {
        self.write_protected
    }

    /// How many sectors the copy-on-write overlay holds.
    pub fn overlay_sectors(&self) -> usize {
        self.overlay.len()
    }

    fn check_range(&self, lba: u64, count: u64) -> Result<(), DiskImageError> {
        match lba.checked_add(count) {
            Some(end) if end <= self.sectors => Ok(()),
            _ => Err(DiskImageError::OutOfRange {
                lba: lba.max(self.sectors),
                sectors: self.sectors,
            }),
        }
    }

    /// Reads one sector as the guest sees it (its own writes included).
    pub fn read_sector(&self, lba: u64) -> Result<Sector, DiskImageError> {
        self.check_range(lba, 1)?;
        if let Some(s) = self.overlay.get(&lba) {
            return Ok(**s);
        }
        let at = (lba as usize) * SECTOR_SIZE;
        let mut out = [0u8; SECTOR_SIZE];
        out.copy_from_slice(&self.backing.bytes()[at..at + SECTOR_SIZE]);
        Ok(out)
    }

    /// Reads `buf.len() / 512` whole sectors from `lba`.
    pub fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> Result<(), DiskImageError> {
        let count = (buf.len() / SECTOR_SIZE) as u64;
        self.check_range(lba, count)?;
        for (k, chunk) in buf.chunks_exact_mut(SECTOR_SIZE).enumerate() {
            chunk.copy_from_slice(&self.read_sector(lba + k as u64)?);
        }
        Ok(())
    }

    /// Writes one sector.
    pub fn write_sector(&mut self, lba: u64, data: &Sector) -> Result<(), DiskImageError> {
        if self.write_protected {
            return Err(DiskImageError::WriteProtected);
        }
        self.check_range(lba, 1)?;
        match &mut self.backing {
            Backing::Persistent(m) => {
                let at = (lba as usize) * SECTOR_SIZE;
                m[at..at + SECTOR_SIZE].copy_from_slice(data);
            }
            Backing::Mapped(_) | Backing::Memory(_) => {
                self.overlay.insert(lba, Box::new(*data));
            }
        }
        Ok(())
    }

    /// Writes `data.len() / 512` whole sectors from `lba`; nothing is written if the
    /// range does not fit.
    pub fn write_sectors(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskImageError> {
        if self.write_protected {
            return Err(DiskImageError::WriteProtected);
        }
        let count = (data.len() / SECTOR_SIZE) as u64;
        self.check_range(lba, count)?;
        for (k, chunk) in data.chunks_exact(SECTOR_SIZE).enumerate() {
            let mut s = [0u8; SECTOR_SIZE];
            s.copy_from_slice(chunk);
            self.write_sector(lba + k as u64, &s)?;
        }
        Ok(())
    }

    /// Writes a persistent image's changes to the file (a no-op otherwise).
    pub fn flush(&mut self) -> Result<(), DiskImageError> {
        if let Backing::Persistent(m) = &self.backing {
            m.flush().map_err(|source| DiskImageError::Flush {
                path: self.path.clone().unwrap_or_default(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Bytes of the image that [`DiskImage::fingerprint`] samples at each of its points.
const FINGERPRINT_SAMPLE: usize = 4096;
/// How many evenly spaced points the fingerprint samples.
const FINGERPRINT_POINTS: usize = 64;

/// What a snapshot keeps of an image: not the base image of a file (only its path, size
/// and fingerprint, checked when the snapshot is restored), but the copy-on-write
/// overlay; an image built in memory has no file to reopen and is kept whole.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedImage {
    path: Option<PathBuf>,
    sectors: u64,
    persistent: bool,
    write_protected: bool,
    fingerprint: u64,
    memory: Option<Vec<u8>>,
    overlay: Vec<(u64, Vec<u8>)>,
}

impl DiskImage {
    /// A cheap fingerprint of the base image (not the overlay): 64-bit FNV-1a over its
    /// size and 4 KiB at 64 evenly spaced points. It tells a snapshot whether the file
    /// it refers to is still the one it was taken with.
    pub fn fingerprint(&self) -> u64 {
        let bytes = self.backing.bytes();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |data: &[u8]| {
            for &b in data {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        eat(&(bytes.len() as u64).to_le_bytes());
        let span = bytes.len().saturating_sub(FINGERPRINT_SAMPLE);
        for k in 0..FINGERPRINT_POINTS {
            let at = span / (FINGERPRINT_POINTS - 1) * k;
            eat(&bytes[at..(at + FINGERPRINT_SAMPLE).min(bytes.len())]);
        }
        h
    }

    fn saved(&self) -> SavedImage {
        SavedImage {
            path: self.path.clone(),
            sectors: self.sectors,
            persistent: self.is_persistent(),
            write_protected: self.write_protected,
            fingerprint: self.fingerprint(),
            memory: match &self.backing {
                Backing::Memory(v) => Some(v.clone()),
                _ => None,
            },
            overlay: self.overlay.iter().map(|(lba, s)| (*lba, s.to_vec())).collect(),
        }
    }

    fn from_saved(s: SavedImage) -> Result<Self, String> {
        let name = s.path.as_ref().map_or("<memory>".into(), |p| p.display().to_string());
        let mut image = match (s.memory, &s.path) {
            (Some(bytes), _) => Self::from_bytes(bytes),
            (None, Some(path)) => Self::open(path, s.persistent),
            (None, None) => return Err("disk image: neither a file nor contents".into()),
        }
        .map_err(|e| format!("disk image {name}: {e}"))?;
        if image.sectors != s.sectors {
            return Err(format!(
                "disk image {name} has {} sectors, the snapshot was taken with {}",
                image.sectors, s.sectors
            ));
        }
        let fp = image.fingerprint();
        if fp != s.fingerprint {
            return Err(format!(
                "disk image {name} changed since the snapshot was taken (fingerprint \
                 {fp:016x}, expected {:016x})",
                s.fingerprint
            ));
        }
        image.write_protected = s.write_protected;
        for (lba, data) in s.overlay {
            let sector: Sector = data
                .try_into()
                .map_err(|_| format!("disk image {name}: an overlay sector of the wrong size"))?;
            if lba >= image.sectors {
                return Err(format!("disk image {name}: overlay sector {lba} is out of range"));
            }
            image.overlay.insert(lba, Box::new(sector));
        }
        Ok(image)
    }
}

impl serde::Serialize for DiskImage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.saved().serialize(s)
    }
}

/// Restoring reopens the file (or rebuilds the in-memory image), refuses a file whose
/// size or fingerprint changed, and puts the overlay back.
impl<'de> serde::Deserialize<'de> for DiskImage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let saved = SavedImage::deserialize(d)?;
        Self::from_saved(saved).map_err(serde::de::Error::custom)
    }
}

impl Drop for DiskImage {
    fn drop(&mut self) {
        // Errors cannot be reported from Drop; callers that care call `flush` first.
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sector(fill: u8) -> Sector {
        [fill; SECTOR_SIZE]
    }

    #[test]
    fn memory_image_reads_its_own_writes_from_the_overlay() {
        let mut d = DiskImage::from_bytes(vec![7u8; 4 * SECTOR_SIZE]).unwrap();
        assert_eq!(d.sectors(), 4);
        d.write_sector(2, &sector(9)).unwrap();
        assert_eq!(d.read_sector(2).unwrap(), sector(9));
        assert_eq!(d.read_sector(1).unwrap(), sector(7));
        assert_eq!(d.overlay_sectors(), 1);
        let mut two = [0u8; 2 * SECTOR_SIZE];
        d.read_sectors(1, &mut two).unwrap();
        assert_eq!(&two[..SECTOR_SIZE], &sector(7));
        assert_eq!(&two[SECTOR_SIZE..], &sector(9));
    }

    #[test]
    fn out_of_range_and_write_protect_are_errors_and_change_nothing() {
        let mut d = DiskImage::from_bytes(vec![0u8; 2 * SECTOR_SIZE]).unwrap();
        assert!(matches!(d.read_sector(2), Err(DiskImageError::OutOfRange { lba: 2, .. })));
        assert!(d.write_sectors(1, &[1u8; 2 * SECTOR_SIZE]).is_err());
        assert_eq!(d.read_sector(1).unwrap(), sector(0), "a failed write changes nothing");
        assert!(d.read_sector(u64::MAX).is_err());
        d.set_write_protected(true);
        assert!(matches!(d.write_sector(0, &sector(1)), Err(DiskImageError::WriteProtected)));
    }

    #[test]
    fn fingerprint_sees_base_changes_not_overlay_writes() {
        let mut d = DiskImage::from_bytes(vec![7u8; 4 * SECTOR_SIZE]).unwrap();
        let before = d.fingerprint();
        d.write_sector(0, &sector(1)).unwrap();
        assert_eq!(d.fingerprint(), before, "overlay writes are not part of the base");
        let mut other = vec![7u8; 4 * SECTOR_SIZE];
        other[5] = 8;
        assert_ne!(DiskImage::from_bytes(other).unwrap().fingerprint(), before);
        assert_ne!(
            DiskImage::from_bytes(vec![7u8; 8 * SECTOR_SIZE]).unwrap().fingerprint(),
            before
        );
    }

    #[test]
    fn empty_and_partial_sizes_are_refused() {
        assert!(matches!(DiskImage::from_bytes(vec![]), Err(DiskImageError::Empty { .. })));
        assert!(matches!(
            DiskImage::from_bytes(vec![0; 700]),
            Err(DiskImageError::Truncated { len: 700, .. })
        ));
    }
}
