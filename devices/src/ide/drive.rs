//! An ATA hard disk over a [`DiskImage`]: its geometry, the translation of CHS and LBA
//! addresses, and the IDENTIFY DEVICE data (ATA/ATAPI-6 §8.15, Table 27).

use crate::disk_image::{DiskImage, SECTOR_SIZE};

/// Default logical heads (the BIOS-compatible translation QEMU and Bochs use).
pub const DEFAULT_HEADS: u16 = 16;
/// Default logical sectors per track.
pub const DEFAULT_SECTORS_PER_TRACK: u16 = 63;
/// The largest cylinder count IDENTIFY reports (ATA-6 §8.15.5, word 1).
pub const MAX_CYLINDERS: u64 = 16383;
/// The largest LBA28 capacity (words 60-61).
pub const MAX_LBA28_SECTORS: u64 = 0x0FFF_FFFF;
/// The largest LBA48 capacity.
pub const MAX_LBA48_SECTORS: u64 = (1 << 48) - 1;

/// IDENTIFY DEVICE word numbers hvsim fills.
pub mod word {
    /// General configuration (bit 15 = 0: ATA device; bit 6: fixed).
    pub const GENERAL_CONFIG: usize = 0;
    /// Default logical cylinders.
    pub const CYLINDERS: usize = 1;
    /// Default logical heads.
    pub const HEADS: usize = 3;
    /// Default sectors per track.
    pub const SECTORS_PER_TRACK: usize = 6;
    /// Serial number, 20 ASCII characters.
    pub const SERIAL: usize = 10;
    /// Firmware revision, 8 characters.
    pub const FIRMWARE: usize = 23;
    /// Model number, 40 characters.
    pub const MODEL: usize = 27;
    /// READ/WRITE MULTIPLE support (bit 15 set by convention; 7:0 = 0: not supported).
    pub const MAX_MULTIPLE: usize = 47;
    /// Capabilities: bit 9 LBA supported.
    pub const CAPABILITIES: usize = 49;
    /// Field validity: bit 0 words 54-58, bit 1 words 64-70.
    pub const FIELD_VALIDITY: usize = 53;
    /// Current logical cylinders, heads, sectors per track (54-56), capacity (57-58).
    pub const CURRENT_CYLINDERS: usize = 54;
    /// Total addressable sectors in LBA28 (60-61).
    pub const LBA28_SECTORS: usize = 60;
    /// Advanced PIO modes supported (bits 1:0 = modes 3 and 4).
    pub const PIO_MODES: usize = 64;
    /// Major version (bits 1-6: ATA-1 to ATA-6).
    pub const MAJOR_VERSION: usize = 80;
    /// Command sets supported (82-84) and enabled (85-87).
    pub const COMMAND_SET_SUPPORTED: usize = 82;
    /// Total addressable sectors in LBA48 (100-103).
    pub const LBA48_SECTORS: usize = 100;
}

/// Word 83/86 bit 10: the 48-bit address feature set.
pub const CMDSET_LBA48: u16 = 1 << 10;
/// Words 82-87 bit 14 (83, 84, 87: "shall be set to one").
pub const CMDSET_VALID: u16 = 1 << 14;
/// Word 82 bit 5: write cache supported.
pub const CMDSET_WRITE_CACHE: u16 = 1 << 5;
/// Word 83 bit 12/13: FLUSH CACHE and FLUSH CACHE EXT supported.
pub const CMDSET_FLUSH: u16 = (1 << 12) | (1 << 13);

/// The model number in IDENTIFY data.
pub const MODEL: &str = "hvsim HARDDISK";
/// The firmware revision in IDENTIFY data.
pub const FIRMWARE: &str = "1.0";

/// An ATA disk.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct AtaDrive {
    /// The image.
    pub image: DiskImage,
    /// Default cylinders (IDENTIFY word 1).
    cylinders: u16,
    /// Current logical heads (INITIALIZE DEVICE PARAMETERS).
    pub(crate) heads: u16,
    /// Current logical sectors per track.
    pub(crate) sectors_per_track: u16,
    serial: String,
}

impl AtaDrive {
    /// A disk over `image`; `serial` distinguishes drives in IDENTIFY data.
    pub fn new(image: DiskImage, serial: &str) -> Self {
        let cylinders = (image.sectors() / u64::from(DEFAULT_HEADS * DEFAULT_SECTORS_PER_TRACK))
            .clamp(1, MAX_CYLINDERS) as u16;
        Self {
            image,
            cylinders,
            heads: DEFAULT_HEADS,
            sectors_per_track: DEFAULT_SECTORS_PER_TRACK,
            serial: serial.to_string(),
        }
    }

    /// Capacity in sectors.
    pub fn sectors(&self) -> u64 {
        self.image.sectors()
    }

    /// Back to the default translation (power-on, reset).
    pub fn reset_geometry(&mut self) {
        self.heads = DEFAULT_HEADS;
        self.sectors_per_track = DEFAULT_SECTORS_PER_TRACK;
    }

    /// The LBA of a CHS address in the current translation, if valid (sector numbers
    /// start at 1; the head must be below the current head count).
    pub fn chs_to_lba(&self, cylinder: u16, head: u8, sector: u8) -> Option<u64> {
        let (heads, spt) = (u64::from(self.heads), u64::from(self.sectors_per_track));
        if sector == 0 || u64::from(sector) > spt || u64::from(head) >= heads || spt == 0 {
            return None;
        }
        Some((u64::from(cylinder) * heads + u64::from(head)) * spt + u64::from(sector) - 1)
    }

    /// The 256 words of IDENTIFY DEVICE.
    pub fn identify(&self) -> [u16; 256] {
        let mut w = [0u16; 256];
        let total = self.sectors().min(MAX_LBA48_SECTORS);
        w[word::GENERAL_CONFIG] = 0x0040;
        w[word::CYLINDERS] = self.cylinders;
        w[word::HEADS] = DEFAULT_HEADS;
        w[word::SECTORS_PER_TRACK] = DEFAULT_SECTORS_PER_TRACK;
        put_string(&mut w[word::SERIAL..word::SERIAL + 10], &self.serial);
        put_string(&mut w[word::FIRMWARE..word::FIRMWARE + 4], FIRMWARE);
        put_string(&mut w[word::MODEL..word::MODEL + 20], MODEL);
        w[word::MAX_MULTIPLE] = 0x8000;
        w[word::CAPABILITIES] = 1 << 9;
        w[word::FIELD_VALIDITY] = 0b11;
        let cur_cyl = (self.sectors()
            / u64::from(self.heads.max(1))
                .saturating_mul(u64::from(self.sectors_per_track.max(1))))
        .clamp(1, MAX_CYLINDERS);
        let cur_cap = (cur_cyl * u64::from(self.heads) * u64::from(self.sectors_per_track))
            .min(u64::from(u32::MAX)) as u32;
        w[word::CURRENT_CYLINDERS] = cur_cyl as u16;
        w[word::CURRENT_CYLINDERS + 1] = self.heads;
        w[word::CURRENT_CYLINDERS + 2] = self.sectors_per_track;
        w[word::CURRENT_CYLINDERS + 3] = cur_cap as u16;
        w[word::CURRENT_CYLINDERS + 4] = (cur_cap >> 16) as u16;
        let lba28 = total.min(MAX_LBA28_SECTORS) as u32;
        w[word::LBA28_SECTORS] = lba28 as u16;
        w[word::LBA28_SECTORS + 1] = (lba28 >> 16) as u16;
        w[word::PIO_MODES] = 0b11;
        w[word::MAJOR_VERSION] = 0b111_1110;
        let s = word::COMMAND_SET_SUPPORTED;
        w[s] = CMDSET_VALID | CMDSET_WRITE_CACHE;
        w[s + 1] = CMDSET_VALID | CMDSET_LBA48 | CMDSET_FLUSH;
        w[s + 2] = CMDSET_VALID;
        w[s + 3] = CMDSET_VALID | CMDSET_WRITE_CACHE;
        w[s + 4] = CMDSET_LBA48 | CMDSET_FLUSH;
        w[s + 5] = CMDSET_VALID;
        for i in 0..4 {
            w[word::LBA48_SECTORS + i] = (total >> (16 * i)) as u16;
        }
        w
    }

    /// Reads `count` sectors at `lba` into `buf`.
    pub fn read(&self, lba: u64, buf: &mut [u8]) -> bool {
        buf.len() % SECTOR_SIZE == 0 && self.image.read_sectors(lba, buf).is_ok()
    }
}

/// ATA strings: two characters per word, the first in the high byte, padded with spaces.
fn put_string(words: &mut [u16], s: &str) {
    let mut bytes = s.bytes().chain(std::iter::repeat(b' '));
    for w in words {
        let hi = bytes.next().unwrap_or(b' ');
        let lo = bytes.next().unwrap_or(b' ');
        *w = u16::from_be_bytes([hi, lo]);
    }
}
