//! QEMU's firmware configuration device, traditional I/O interface: a 16-bit selector at
//! 0x510 and an 8-bit data port at 0x511 (QEMU docs/specs/fw_cfg.txt).
//!
//! Writing the selector picks an item and rewinds to its first byte; each data read returns
//! the next byte, and 0 past the end. Bit 14 of the selector (the write channel) is ignored
//! and writes to the data port do nothing, as in QEMU since 2.4; bit 15 selects the
//! architecture-specific keys. The ID item reports the traditional interface only (no DMA
//! interface at 0x514).
//!
//! Items: SIGNATURE ("QEMU"), ID, UUID (zero), RAM_SIZE, NB_CPUS, MAX_CPUS, the kernel
//! command line (CMDLINE_SIZE/CMDLINE_DATA, with its NUL) when one is set, and FILE_DIR
//! listing named files added with [`FwCfg::add_file`]. As in QEMU, the directory is kept
//! sorted by name and the files' selectors are FILE_FIRST + their index in it.

use crate::bus::PortDevice;
use crate::pc::{FW_CFG_PORT_DATA, FW_CFG_PORT_SEL};
use std::any::Any;
use std::collections::BTreeMap;

/// Selector keys (QEMU's `FW_CFG_*`).
pub mod key {
    /// "QEMU".
    pub const SIGNATURE: u16 = 0x00;
    /// Feature bitmap (u32 LE): bit 0 traditional interface, bit 1 DMA.
    pub const ID: u16 = 0x01;
    /// Machine UUID (16 bytes).
    pub const UUID: u16 = 0x02;
    /// RAM size in bytes (u64 LE).
    pub const RAM_SIZE: u16 = 0x03;
    /// Number of boot CPUs (u16 LE).
    pub const NB_CPUS: u16 = 0x05;
    /// Interactive boot menu on (u16 LE, 1) or off (0): QEMU's `-boot menu=on`.
    pub const BOOT_MENU: u16 = 0x0E;
    /// Maximum number of CPUs (u16 LE).
    pub const MAX_CPUS: u16 = 0x0F;
    /// Kernel command line size including the NUL (u32 LE).
    pub const CMDLINE_SIZE: u16 = 0x14;
    /// Kernel command line bytes, NUL-terminated.
    pub const CMDLINE_DATA: u16 = 0x15;
    /// The file directory.
    pub const FILE_DIR: u16 = 0x19;
    /// The selector of the first file.
    pub const FILE_FIRST: u16 = 0x20;
    /// Selector bit 14: write channel.
    pub const WRITE_CHANNEL: u16 = 0x4000;
    /// Selector bit 15: architecture-specific key.
    pub const ARCH_LOCAL: u16 = 0x8000;
}

/// The file that holds how long an external BIOS's boot menu waits for a key, in
/// milliseconds (u16 LE; QEMU's `-boot splash-time`, which SeaBIOS reads).
pub const BOOT_MENU_WAIT_FILE: &str = "etc/boot-menu-wait";

/// The signature item's contents.
pub const SIGNATURE: &[u8; 4] = b"QEMU";
/// ID bit 0: the traditional (I/O port) interface.
pub const ID_TRADITIONAL: u32 = 1 << 0;
/// Bytes of a file directory entry: size (BE32), select (BE16), reserved (BE16), name.
pub const FILE_ENTRY_SIZE: usize = 64;
/// Bytes of a file name, including its NUL terminator.
pub const FILE_NAME_SIZE: usize = 56;
/// The number of file selectors (up to the write-channel bit).
pub const FILE_SLOTS: usize = (key::WRITE_CHANNEL - key::FILE_FIRST) as usize;

/// Errors from adding items.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FwCfgError {
    /// A file name does not fit the directory's 56 bytes with its NUL.
    #[error("fw_cfg file name {0:?} is longer than 55 bytes")]
    NameTooLong(String),
    /// A file of that name exists.
    #[error("fw_cfg file {0:?} already exists")]
    Duplicate(String),
    /// No file selector is left.
    #[error("fw_cfg has no free file selector")]
    TooManyFiles,
    /// An item larger than the directory's 32-bit size field.
    #[error("fw_cfg item of {0} bytes is too large")]
    TooLarge(usize),
}

/// The fw_cfg device.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FwCfg {
    items: BTreeMap<u16, Vec<u8>>,
    /// Files sorted by name.
    files: Vec<(String, Vec<u8>)>,
    selector: u16,
    offset: usize,
}

impl FwCfg {
    /// A device for a machine with `ram_bytes` of RAM and `cpus` vCPUs.
    pub fn new(ram_bytes: u64, cpus: u16) -> Self {
        let mut items = BTreeMap::new();
        items.insert(key::SIGNATURE, SIGNATURE.to_vec());
        items.insert(key::ID, ID_TRADITIONAL.to_le_bytes().to_vec());
        items.insert(key::UUID, vec![0; 16]);
        items.insert(key::RAM_SIZE, ram_bytes.to_le_bytes().to_vec());
        items.insert(key::NB_CPUS, cpus.to_le_bytes().to_vec());
        items.insert(key::MAX_CPUS, cpus.to_le_bytes().to_vec());
        let mut dev = Self { items, files: Vec::new(), selector: 0, offset: 0 };
        dev.rebuild_file_dir();
        dev
    }

    /// Sets the kernel command line (CMDLINE_SIZE and CMDLINE_DATA, NUL-terminated).
    pub fn set_cmdline(&mut self, cmdline: &str) {
        let mut data = cmdline.as_bytes().to_vec();
        data.push(0);
        self.items.insert(key::CMDLINE_SIZE, (data.len() as u32).to_le_bytes().to_vec());
        self.items.insert(key::CMDLINE_DATA, data);
    }

    /// Sets a numbered item (e.g. an architecture-specific key with [`key::ARCH_LOCAL`]).
    /// File selectors are managed by [`FwCfg::add_file`].
    pub fn set_item(&mut self, selector: u16, bytes: Vec<u8>) {
        self.items.insert(selector & !key::WRITE_CHANNEL, bytes);
    }

    /// Adds a named file; returns its selector at this point (later additions that sort
    /// before it move it up by one, as in QEMU).
    pub fn add_file(&mut self, name: &str, bytes: Vec<u8>) -> Result<u16, FwCfgError> {
        if name.len() >= FILE_NAME_SIZE {
            return Err(FwCfgError::NameTooLong(name.to_owned()));
        }
        if u32::try_from(bytes.len()).is_err() {
            return Err(FwCfgError::TooLarge(bytes.len()));
        }
        if self.files.len() >= FILE_SLOTS {
            return Err(FwCfgError::TooManyFiles);
        }
        let index = match self.files.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(_) => return Err(FwCfgError::Duplicate(name.to_owned())),
            Err(i) => i,
        };
        self.files.insert(index, (name.to_owned(), bytes));
        self.rebuild_file_dir();
        Ok(key::FILE_FIRST + index as u16)
    }

    /// The selector of the file `name`.
    pub fn file_selector(&self, name: &str) -> Option<u16> {
        let index = self.files.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok()?;
        Some(key::FILE_FIRST + index as u16)
    }

    fn rebuild_file_dir(&mut self) {
        let mut dir = Vec::with_capacity(4 + self.files.len() * FILE_ENTRY_SIZE);
        dir.extend_from_slice(&(self.files.len() as u32).to_be_bytes());
        for (i, (name, bytes)) in self.files.iter().enumerate() {
            dir.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            dir.extend_from_slice(&(key::FILE_FIRST + i as u16).to_be_bytes());
            dir.extend_from_slice(&0u16.to_be_bytes());
            let mut field = [0u8; FILE_NAME_SIZE];
            field[..name.len()].copy_from_slice(name.as_bytes());
            dir.extend_from_slice(&field);
        }
        self.items.insert(key::FILE_DIR, dir);
    }

    /// The contents of the item a selector names.
    fn item(&self, selector: u16) -> &[u8] {
        let selector = selector & !key::WRITE_CHANNEL;
        let file = usize::from(selector.wrapping_sub(key::FILE_FIRST));
        if selector & key::ARCH_LOCAL == 0 && selector >= key::FILE_FIRST {
            return self.files.get(file).map_or(&[], |(_, b)| b.as_slice());
        }
        self.items.get(&selector).map_or(&[], Vec::as_slice)
    }

    fn read_byte(&mut self) -> u8 {
        let byte = self.item(self.selector).get(self.offset).copied().unwrap_or(0);
        self.offset = self.offset.saturating_add(1);
        byte
    }
}

impl PortDevice for FwCfg {
    fn read(&mut self, port: u16, size: u8) -> u32 {
        if port != FW_CFG_PORT_DATA {
            return 0;
        }
        // Wider reads take successive bytes, least significant first.
        (0..u32::from(size)).fold(0, |acc, i| acc | u32::from(self.read_byte()) << (8 * i))
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        if port == FW_CFG_PORT_SEL {
            self.selector = value as u16;
            self.offset = 0;
        }
        // Data-port writes are ignored (QEMU >= 2.4).
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_item(f: &mut FwCfg, selector: u16, len: usize) -> Vec<u8> {
        f.write(FW_CFG_PORT_SEL, 2, u32::from(selector));
        (0..len).map(|_| f.read(FW_CFG_PORT_DATA, 1) as u8).collect()
    }

    #[test]
    fn signature_id_and_numbers() {
        let mut f = FwCfg::new(512 << 20, 4);
        assert_eq!(read_item(&mut f, key::SIGNATURE, 4), b"QEMU");
        assert_eq!(read_item(&mut f, key::ID, 4), [1, 0, 0, 0]);
        assert_eq!(read_item(&mut f, key::NB_CPUS, 2), [4, 0]);
        assert_eq!(read_item(&mut f, key::RAM_SIZE, 8), (512u64 << 20).to_le_bytes());
        assert_eq!(read_item(&mut f, key::SIGNATURE, 6), b"QEMU\0\0", "0 past the end");
        assert_eq!(read_item(&mut f, 0x7777, 2), [0, 0], "unknown key");
        f.write(FW_CFG_PORT_SEL, 2, u32::from(key::SIGNATURE));
        assert_eq!(f.read(FW_CFG_PORT_DATA, 2), u32::from_le_bytes(*b"QE\0\0"));
        f.write(FW_CFG_PORT_DATA, 1, 0x55); // ignored
        assert_eq!(f.read(FW_CFG_PORT_DATA, 1), u32::from(b'M'));
        assert_eq!(read_item(&mut f, key::SIGNATURE | key::WRITE_CHANNEL, 1), b"Q");
    }

    #[test]
    fn cmdline() {
        let mut f = FwCfg::new(1 << 30, 1);
        assert_eq!(read_item(&mut f, key::CMDLINE_SIZE, 4), [0; 4], "absent without one");
        f.set_cmdline("console=ttyS0");
        assert_eq!(read_item(&mut f, key::CMDLINE_SIZE, 4), [14, 0, 0, 0]);
        assert_eq!(read_item(&mut f, key::CMDLINE_DATA, 14), b"console=ttyS0\0");
    }

    // docs/specs/fw_cfg.txt "FW_CFG_FILE_DIR": BE32 count, then 64-byte entries.
    #[test]
    fn file_directory() {
        let mut f = FwCfg::new(1 << 30, 1);
        assert_eq!(read_item(&mut f, key::FILE_DIR, 4), [0; 4]);
        assert_eq!(f.add_file("etc/zeta", vec![1, 2, 3]), Ok(0x20));
        assert_eq!(f.add_file("etc/alpha", b"hello".to_vec()), Ok(0x20));
        assert_eq!(f.file_selector("etc/zeta"), Some(0x21), "re-numbered in name order");
        let dir = read_item(&mut f, key::FILE_DIR, 4 + 2 * FILE_ENTRY_SIZE + 1);
        assert_eq!(dir[..4], 2u32.to_be_bytes());
        let e0 = &dir[4..4 + FILE_ENTRY_SIZE];
        assert_eq!(e0[..4], 5u32.to_be_bytes());
        assert_eq!(e0[4..6], 0x20u16.to_be_bytes());
        assert_eq!(e0[6..8], [0, 0]);
        assert_eq!(&e0[8..17], b"etc/alpha");
        assert!(e0[17..].iter().all(|&b| b == 0));
        let e1 = &dir[4 + FILE_ENTRY_SIZE..4 + 2 * FILE_ENTRY_SIZE];
        assert_eq!(e1[..4], 3u32.to_be_bytes());
        assert_eq!(e1[4..6], 0x21u16.to_be_bytes());
        assert_eq!(&e1[8..16], b"etc/zeta");
        assert_eq!(dir[4 + 2 * FILE_ENTRY_SIZE], 0, "past the end");
        assert_eq!(read_item(&mut f, 0x20, 5), b"hello");
        assert_eq!(read_item(&mut f, 0x21, 4), [1, 2, 3, 0]);
        assert_eq!(read_item(&mut f, 0x22, 1), [0]);
    }

    #[test]
    fn file_errors() {
        let mut f = FwCfg::new(1 << 30, 1);
        f.add_file("a", vec![]).unwrap();
        assert_eq!(f.add_file("a", vec![]), Err(FwCfgError::Duplicate("a".into())));
        let long = "x".repeat(FILE_NAME_SIZE);
        assert_eq!(f.add_file(&long, vec![]), Err(FwCfgError::NameTooLong(long.clone())));
        assert!(f.add_file(&long[1..], vec![]).is_ok(), "55 bytes fit with the NUL");
    }

    #[test]
    fn arch_local_items() {
        let mut f = FwCfg::new((1 << 30) + 5, 1);
        f.set_item(key::ARCH_LOCAL | 0x03, vec![9, 8]);
        assert_eq!(read_item(&mut f, key::ARCH_LOCAL | 0x03, 3), [9, 8, 0]);
        assert_eq!(read_item(&mut f, 0x03, 1), [5], "key 3 without bit 15 is RAM_SIZE");
    }
}
