//! The PIIX3 IDE controller (82371SB function 1, PCI 00:01.1) in legacy (compatibility)
//! mode: two ATA channels at the ISA ports and IRQs of the PC/AT, each with a master and
//! a slave position, PIO transfers only.
//!
//! | Channel | Command block | Control block | IRQ |
//! |---|---|---|---|
//! | primary | 0x1F0-0x1F7 | 0x3F6 | 14 |
//! | secondary | 0x170-0x177 | 0x376 | 15 |
//!
//! Register and command semantics follow ATA/ATAPI-6 (T13/1410D): the task file
//! ([`channel`]), IDENTIFY DEVICE ([`drive`]), READ/WRITE SECTOR(S) in CHS and LBA28,
//! READ/WRITE SECTOR(S) EXT (LBA48), SET FEATURES, INITIALIZE DEVICE PARAMETERS, the
//! status, error and alternate status registers, nIEN and the software reset through
//! the device control register. There are no ATAPI devices: IDENTIFY PACKET DEVICE is
//! aborted as an ATA device aborts it. Bus-master DMA is not modelled (the function's
//! programming interface does not advertise it). Commands complete at once: BSY is
//! seen only while SRST is held.

pub mod channel;
pub mod drive;
pub mod pci;

pub use channel::IdeChannel;
pub use drive::AtaDrive;
pub use pci::IdeFunction;

/// The command block of the primary channel.
pub const PRIMARY_CMD_PORT: u16 = 0x1F0;
/// The primary channel's device control / alternate status register.
pub const PRIMARY_CTL_PORT: u16 = 0x3F6;
/// The primary channel's ISA IRQ.
pub const PRIMARY_IRQ: u8 = 14;
/// The command block of the secondary channel.
pub const SECONDARY_CMD_PORT: u16 = 0x170;
/// The secondary channel's device control / alternate status register.
pub const SECONDARY_CTL_PORT: u16 = 0x376;
/// The secondary channel's ISA IRQ.
pub const SECONDARY_IRQ: u8 = 15;

/// Command block register offsets (ATA/ATAPI-6 §7 "Register descriptions").
pub mod reg {
    /// Data (16 bits; 32-bit accesses move two words).
    pub const DATA: u16 = 0;
    /// Error (read) / Features (write).
    pub const ERROR: u16 = 1;
    /// Sector Count.
    pub const SECTOR_COUNT: u16 = 2;
    /// Sector Number / LBA Low.
    pub const LBA_LOW: u16 = 3;
    /// Cylinder Low / LBA Mid.
    pub const LBA_MID: u16 = 4;
    /// Cylinder High / LBA High.
    pub const LBA_HIGH: u16 = 5;
    /// Device/Head.
    pub const DEVICE: u16 = 6;
    /// Status (read) / Command (write).
    pub const STATUS: u16 = 7;
}

/// Status register bits.
pub mod status {
    /// BSY: the device is busy.
    pub const BSY: u8 = 1 << 7;
    /// DRDY: the device is ready to accept commands.
    pub const DRDY: u8 = 1 << 6;
    /// DF: device fault.
    pub const DF: u8 = 1 << 5;
    /// DSC: seek complete (obsolete in ATA-6, set by the devices firmware expects).
    pub const DSC: u8 = 1 << 4;
    /// DRQ: the device is ready to transfer a word of data.
    pub const DRQ: u8 = 1 << 3;
    /// ERR: the error register holds the reason the last command failed.
    pub const ERR: u8 = 1 << 0;
}

/// Error register bits.
pub mod error {
    /// ABRT: command aborted (unsupported command or parameter).
    pub const ABRT: u8 = 1 << 2;
    /// IDNF: the address is outside the device.
    pub const IDNF: u8 = 1 << 4;
    /// UNC: uncorrectable data error (the image could not be written).
    pub const UNC: u8 = 1 << 6;
    /// The diagnostic code after reset: device 0 passed.
    pub const DIAG_PASSED: u8 = 0x01;
}

/// Device/Head register bits.
pub mod device {
    /// DEV: device 1 (slave) selected.
    pub const DEV: u8 = 1 << 4;
    /// LBA: the address is an LBA, not CHS.
    pub const LBA: u8 = 1 << 6;
    /// Bits 7 and 5: obsolete, set by convention (read back as written).
    pub const OBSOLETE: u8 = 0xA0;
}

/// Device control register bits.
pub mod control {
    /// nIEN: the device does not assert INTRQ.
    pub const NIEN: u8 = 1 << 1;
    /// SRST: software reset of both devices.
    pub const SRST: u8 = 1 << 2;
    /// HOB: reads of the task file return the previous (high-order) bytes (LBA48).
    pub const HOB: u8 = 1 << 7;
}

/// ATA command codes.
pub mod cmd {
    /// NOP (always aborts, ATA-6 §8.21).
    pub const NOP: u8 = 0x00;
    /// RECALIBRATE (obsolete; 0x10-0x1F).
    pub const RECALIBRATE: u8 = 0x10;
    /// READ SECTOR(S).
    pub const READ_SECTORS: u8 = 0x20;
    /// READ SECTOR(S) without retries (obsolete alias).
    pub const READ_SECTORS_NORETRY: u8 = 0x21;
    /// READ SECTOR(S) EXT.
    pub const READ_SECTORS_EXT: u8 = 0x24;
    /// WRITE SECTOR(S).
    pub const WRITE_SECTORS: u8 = 0x30;
    /// WRITE SECTOR(S) without retries (obsolete alias).
    pub const WRITE_SECTORS_NORETRY: u8 = 0x31;
    /// WRITE SECTOR(S) EXT.
    pub const WRITE_SECTORS_EXT: u8 = 0x34;
    /// READ VERIFY SECTOR(S).
    pub const READ_VERIFY: u8 = 0x40;
    /// READ VERIFY SECTOR(S) without retries.
    pub const READ_VERIFY_NORETRY: u8 = 0x41;
    /// READ VERIFY SECTOR(S) EXT.
    pub const READ_VERIFY_EXT: u8 = 0x42;
    /// EXECUTE DEVICE DIAGNOSTIC.
    pub const EXECUTE_DIAGNOSTIC: u8 = 0x90;
    /// INITIALIZE DEVICE PARAMETERS.
    pub const INITIALIZE_DEVICE_PARAMETERS: u8 = 0x91;
    /// IDENTIFY PACKET DEVICE (ATAPI only: an ATA device aborts it).
    pub const IDENTIFY_PACKET_DEVICE: u8 = 0xA1;
    /// CHECK POWER MODE.
    pub const CHECK_POWER_MODE: u8 = 0xE5;
    /// FLUSH CACHE.
    pub const FLUSH_CACHE: u8 = 0xE7;
    /// FLUSH CACHE EXT.
    pub const FLUSH_CACHE_EXT: u8 = 0xEA;
    /// IDENTIFY DEVICE.
    pub const IDENTIFY_DEVICE: u8 = 0xEC;
    /// SET FEATURES.
    pub const SET_FEATURES: u8 = 0xEF;
    /// STANDBY IMMEDIATE.
    pub const STANDBY_IMMEDIATE: u8 = 0xE0;
    /// IDLE IMMEDIATE.
    pub const IDLE_IMMEDIATE: u8 = 0xE1;
    /// STANDBY.
    pub const STANDBY: u8 = 0xE2;
    /// IDLE.
    pub const IDLE: u8 = 0xE3;
}

/// SET FEATURES subcommands (Features register) that hvsim accepts; they change nothing
/// a PIO model can show.
pub mod feature {
    /// Enable write cache.
    pub const ENABLE_WRITE_CACHE: u8 = 0x02;
    /// Set transfer mode (Sector Count holds the mode).
    pub const SET_TRANSFER_MODE: u8 = 0x03;
    /// Disable read look-ahead.
    pub const DISABLE_READ_LOOKAHEAD: u8 = 0x55;
    /// Disable reverting to power-on defaults.
    pub const DISABLE_REVERT: u8 = 0x66;
    /// Disable write cache.
    pub const DISABLE_WRITE_CACHE: u8 = 0x82;
    /// Enable read look-ahead.
    pub const ENABLE_READ_LOOKAHEAD: u8 = 0xAA;
    /// Enable reverting to power-on defaults.
    pub const ENABLE_REVERT: u8 = 0xCC;
}

#[cfg(test)]
mod tests;
