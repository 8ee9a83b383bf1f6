//! Register-level tests of the IDE channel, named after the ATA/ATAPI-6 behaviour each
//! checks.

use super::*;
use crate::bus::PortDevice;
use crate::disk_image::{DiskImage, SECTOR_SIZE};

const BASE: u16 = PRIMARY_CMD_PORT;
const CTL: u16 = PRIMARY_CTL_PORT;

/// A disk of `sectors` sectors whose sector n is filled with byte n (mod 256), except
/// that its first two bytes hold n as a little-endian u16.
fn image(sectors: u64) -> DiskImage {
    let mut bytes = vec![0u8; sectors as usize * SECTOR_SIZE];
    for (n, s) in bytes.chunks_exact_mut(SECTOR_SIZE).enumerate() {
        s.fill(n as u8);
        s[..2].copy_from_slice(&(n as u16).to_le_bytes());
    }
    DiskImage::from_bytes(bytes).unwrap()
}

fn channel(sectors: u64) -> IdeChannel {
    let mut c = IdeChannel::new(BASE, CTL);
    c.attach(0, AtaDrive::new(image(sectors), "T1"));
    c
}

fn out(c: &mut IdeChannel, r: u16, v: u8) {
    c.write(BASE + r, 1, u32::from(v));
}

fn inb(c: &mut IdeChannel, r: u16) -> u8 {
    c.read(BASE + r, 1) as u8
}

fn read_words(c: &mut IdeChannel, n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.extend_from_slice(&(c.read(BASE, 2) as u16).to_le_bytes());
    }
    v
}

/// LBA28 setup of READ/WRITE SECTORS.
fn lba28(c: &mut IdeChannel, lba: u32, count: u8) {
    out(c, reg::SECTOR_COUNT, count);
    out(c, reg::LBA_LOW, lba as u8);
    out(c, reg::LBA_MID, (lba >> 8) as u8);
    out(c, reg::LBA_HIGH, (lba >> 16) as u8);
    out(c, reg::DEVICE, device::OBSOLETE | device::LBA | ((lba >> 24) as u8 & 0xF));
}

#[test]
fn power_on_signature_is_an_ata_device() {
    // ATA-6 §9.12 "Signature and persistence": an ATA device has Sector Count 01h,
    // LBA Low 01h, LBA Mid 00h, LBA High 00h; error 01h (diagnostic passed).
    let mut c = channel(8);
    assert_eq!(inb(&mut c, reg::SECTOR_COUNT), 1);
    assert_eq!(inb(&mut c, reg::LBA_LOW), 1);
    assert_eq!(inb(&mut c, reg::LBA_MID), 0);
    assert_eq!(inb(&mut c, reg::LBA_HIGH), 0);
    assert_eq!(inb(&mut c, reg::ERROR), error::DIAG_PASSED);
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC);
}

#[test]
fn task_file_registers_read_back_and_absent_slave_reads_status_zero() {
    let mut c = channel(8);
    out(&mut c, reg::SECTOR_COUNT, 0x55);
    out(&mut c, reg::LBA_LOW, 0xAA);
    out(&mut c, reg::DEVICE, 0xB0);
    assert_eq!(inb(&mut c, reg::SECTOR_COUNT), 0x55);
    assert_eq!(inb(&mut c, reg::LBA_LOW), 0xAA);
    assert_eq!(inb(&mut c, reg::DEVICE), 0xB0);
    // Device 1 is absent: its status reads 0 and it ignores commands.
    assert_eq!(inb(&mut c, reg::STATUS), 0);
    assert_eq!(c.read(CTL, 1), 0);
    out(&mut c, reg::STATUS, cmd::IDENTIFY_DEVICE);
    assert!(!c.irq_level());
}

#[test]
fn empty_channel_reads_zero() {
    let mut c = IdeChannel::new(SECONDARY_CMD_PORT, SECONDARY_CTL_PORT);
    for r in 0..8 {
        assert_eq!(c.read(SECONDARY_CMD_PORT + r, 1), 0);
    }
    assert_eq!(c.read(SECONDARY_CTL_PORT, 1), 0);
}

#[test]
fn identify_device_reports_geometry_capacity_and_lba48() {
    // ATA-6 §8.15 IDENTIFY DEVICE: PIO data-in of 256 words, INTRQ asserted.
    let mut c = channel(16 * 63 * 3 + 5);
    out(&mut c, reg::DEVICE, device::OBSOLETE);
    out(&mut c, reg::STATUS, cmd::IDENTIFY_DEVICE);
    assert!(c.irq_level());
    assert_eq!(c.read(CTL, 1) as u8, status::DRDY | status::DSC | status::DRQ);
    assert!(c.irq_level(), "alternate status does not acknowledge");
    assert_eq!(inb(&mut c, reg::STATUS) & status::DRQ, status::DRQ);
    assert!(!c.irq_level(), "reading status acknowledges the interrupt");
    let b = read_words(&mut c, 256);
    let w = |i: usize| u16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
    assert_eq!(w(drive::word::GENERAL_CONFIG) & 0x8000, 0, "ATA device");
    assert_eq!(w(drive::word::CYLINDERS), 3);
    assert_eq!(w(drive::word::HEADS), 16);
    assert_eq!(w(drive::word::SECTORS_PER_TRACK), 63);
    assert_ne!(w(drive::word::CAPABILITIES) & (1 << 9), 0, "LBA supported");
    let total = u32::from(w(60)) | u32::from(w(61)) << 16;
    assert_eq!(total, 16 * 63 * 3 + 5);
    assert_ne!(w(83) & drive::CMDSET_LBA48, 0);
    assert_eq!(w(100), 16 * 63 * 3 + 5);
    // "hvsim HARDDISK": byte-swapped ASCII.
    assert_eq!(&b[2 * 27..2 * 27 + 4], b"vhis");
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC, "DRQ ends");
}

#[test]
fn identify_packet_device_aborts_on_an_ata_disk() {
    let mut c = channel(8);
    out(&mut c, reg::STATUS, cmd::IDENTIFY_PACKET_DEVICE);
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC | status::ERR);
    assert_eq!(inb(&mut c, reg::ERROR), error::ABRT);
}

#[test]
fn read_sectors_lba28_transfers_each_sector_with_an_interrupt() {
    let mut c = channel(32);
    lba28(&mut c, 5, 2);
    out(&mut c, reg::STATUS, cmd::READ_SECTORS);
    assert!(c.irq_level());
    assert_ne!(inb(&mut c, reg::STATUS) & status::DRQ, 0);
    let s = read_words(&mut c, 256);
    assert_eq!(&s[..3], &[5, 0, 5]);
    assert!(c.irq_level(), "the second sector's block interrupts");
    assert_ne!(inb(&mut c, reg::STATUS) & status::DRQ, 0);
    // 32-bit data accesses move two words.
    let first = c.read(BASE, 4);
    assert_eq!(first & 0xFFFF, 6);
    read_words(&mut c, 254);
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC);
}

#[test]
fn read_sectors_chs_uses_the_current_translation() {
    let mut c = channel(16 * 63 * 2);
    // C/H/S = 1/2/3 -> LBA (1*16 + 2)*63 + 2 = 1136.
    out(&mut c, reg::SECTOR_COUNT, 1);
    out(&mut c, reg::LBA_LOW, 3);
    out(&mut c, reg::LBA_MID, 1);
    out(&mut c, reg::LBA_HIGH, 0);
    out(&mut c, reg::DEVICE, device::OBSOLETE | 2);
    out(&mut c, reg::STATUS, cmd::READ_SECTORS);
    let s = read_words(&mut c, 256);
    assert_eq!(u16::from_le_bytes([s[0], s[1]]), 1136);
    // INITIALIZE DEVICE PARAMETERS: 4 heads, 17 sectors per track; then 1/2/3 is
    // (1*4 + 2)*17 + 2 = 104.
    out(&mut c, reg::SECTOR_COUNT, 17);
    out(&mut c, reg::DEVICE, device::OBSOLETE | 3);
    out(&mut c, reg::STATUS, cmd::INITIALIZE_DEVICE_PARAMETERS);
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC);
    out(&mut c, reg::SECTOR_COUNT, 1);
    out(&mut c, reg::LBA_LOW, 3);
    out(&mut c, reg::LBA_MID, 1);
    out(&mut c, reg::DEVICE, device::OBSOLETE | 2);
    out(&mut c, reg::STATUS, cmd::READ_SECTORS);
    let s = read_words(&mut c, 256);
    assert_eq!(u16::from_le_bytes([s[0], s[1]]), 104);
    // Sector 0 does not exist in CHS.
    out(&mut c, reg::LBA_LOW, 0);
    out(&mut c, reg::STATUS, cmd::READ_SECTORS);
    assert_ne!(inb(&mut c, reg::STATUS) & status::ERR, 0);
    assert_ne!(inb(&mut c, reg::ERROR) & error::IDNF, 0);
}

#[test]
fn write_sectors_lba28_reach_the_image_and_read_back() {
    let mut c = channel(16);
    lba28(&mut c, 3, 2);
    out(&mut c, reg::STATUS, cmd::WRITE_SECTORS);
    assert!(!c.irq_level(), "PIO data-out: no interrupt before the first block");
    assert_ne!(c.read(CTL, 1) as u8 & status::DRQ, 0);
    for i in 0..256u32 {
        c.write(BASE, 2, 0xA000 + i);
    }
    assert!(c.irq_level());
    assert_ne!(inb(&mut c, reg::STATUS) & status::DRQ, 0, "second block");
    for _ in 0..128 {
        c.write(BASE, 4, 0x1234_5678);
    }
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC);
    let img = &c.drive(0).unwrap().image;
    let s3 = img.read_sector(3).unwrap();
    assert_eq!(&s3[..4], &[0x00, 0xA0, 0x01, 0xA0]);
    assert_eq!(&img.read_sector(4).unwrap()[..4], &[0x78, 0x56, 0x34, 0x12]);
    assert_eq!(img.read_sector(5).unwrap()[2], 5, "untouched");
}

#[test]
fn read_sectors_ext_uses_the_high_order_bytes_and_hob_reads_them() {
    // ATA-6 §6.20: each register is a two-byte FIFO; the first write is the high byte.
    let mut c = channel(0x300);
    for (r, hi, lo) in [
        (reg::SECTOR_COUNT, 0, 1),
        (reg::LBA_LOW, 0, 0x01),
        (reg::LBA_MID, 0, 0x02),
        (reg::LBA_HIGH, 0, 0),
    ] {
        out(&mut c, r, hi);
        out(&mut c, r, lo);
    }
    out(&mut c, reg::DEVICE, device::LBA);
    c.write(CTL, 1, u32::from(control::HOB));
    assert_eq!(inb(&mut c, reg::LBA_MID), 0, "HOB reads the previous byte");
    c.write(CTL, 1, 0);
    assert_eq!(inb(&mut c, reg::LBA_MID), 2);
    out(&mut c, reg::STATUS, cmd::READ_SECTORS_EXT);
    let s = read_words(&mut c, 256);
    assert_eq!(u16::from_le_bytes([s[0], s[1]]), 0x201);
    // A 48-bit LBA beyond the disk: IDNF.
    for r in [reg::LBA_LOW, reg::LBA_MID, reg::LBA_HIGH] {
        out(&mut c, r, 1);
        out(&mut c, r, 0);
    }
    out(&mut c, reg::STATUS, cmd::READ_SECTORS_EXT);
    assert_ne!(inb(&mut c, reg::STATUS) & status::ERR, 0);
    assert_ne!(inb(&mut c, reg::ERROR) & error::IDNF, 0);
}

#[test]
fn write_sectors_ext_writes_at_a_48_bit_address() {
    let mut c = channel(0x300);
    for (r, hi, lo) in [
        (reg::SECTOR_COUNT, 0, 1),
        (reg::LBA_LOW, 0, 0x80),
        (reg::LBA_MID, 0, 0x02),
        (reg::LBA_HIGH, 0, 0),
    ] {
        out(&mut c, r, hi);
        out(&mut c, r, lo);
    }
    out(&mut c, reg::DEVICE, device::LBA);
    out(&mut c, reg::STATUS, cmd::WRITE_SECTORS_EXT);
    for _ in 0..256 {
        c.write(BASE, 2, 0xBEEF);
    }
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC);
    assert_eq!(&c.drive(0).unwrap().image.read_sector(0x280).unwrap()[..2], &[0xEF, 0xBE]);
}

#[test]
fn out_of_range_lba28_read_aborts_with_idnf() {
    let mut c = channel(8);
    lba28(&mut c, 7, 2);
    out(&mut c, reg::STATUS, cmd::READ_SECTORS);
    assert!(c.irq_level());
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC | status::ERR);
    assert_ne!(inb(&mut c, reg::ERROR) & error::IDNF, 0);
}

#[test]
fn set_features_accepts_pio_modes_and_aborts_dma_and_unknown() {
    let mut c = channel(8);
    out(&mut c, reg::ERROR, feature::SET_TRANSFER_MODE);
    out(&mut c, reg::SECTOR_COUNT, 0x0C); // PIO mode 4
    out(&mut c, reg::STATUS, cmd::SET_FEATURES);
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC);
    out(&mut c, reg::SECTOR_COUNT, 0x42); // UDMA mode 2
    out(&mut c, reg::STATUS, cmd::SET_FEATURES);
    assert_ne!(inb(&mut c, reg::STATUS) & status::ERR, 0);
    out(&mut c, reg::ERROR, 0x77);
    out(&mut c, reg::STATUS, cmd::SET_FEATURES);
    assert_eq!(inb(&mut c, reg::ERROR), error::ABRT);
    out(&mut c, reg::ERROR, feature::ENABLE_WRITE_CACHE);
    out(&mut c, reg::STATUS, cmd::SET_FEATURES);
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC);
}

#[test]
fn nien_masks_intrq_without_losing_it() {
    let mut c = channel(8);
    c.write(CTL, 1, u32::from(control::NIEN));
    out(&mut c, reg::STATUS, cmd::FLUSH_CACHE);
    assert!(!c.irq_level());
    c.write(CTL, 1, 0);
    assert!(c.irq_level(), "pending INTRQ appears once nIEN clears");
}

#[test]
fn software_reset_sets_bsy_then_restores_the_signature() {
    // ATA-6 §9.2: SRST set -> BSY; cleared -> device 0 selected, the signature, DRDY.
    let mut c = channel(8);
    lba28(&mut c, 0, 1);
    out(&mut c, reg::STATUS, cmd::READ_SECTORS);
    out(&mut c, reg::DEVICE, 0xB0);
    c.write(CTL, 1, u32::from(control::SRST | control::NIEN));
    assert_eq!(c.read(CTL, 1) as u8 & status::BSY, 0, "device 1 absent: status 0");
    out(&mut c, reg::DEVICE, 0xA0);
    assert_eq!(c.read(CTL, 1) as u8, status::BSY);
    c.write(CTL, 1, u32::from(control::NIEN));
    assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC);
    assert_eq!(inb(&mut c, reg::DEVICE) & device::DEV, 0);
    assert_eq!(inb(&mut c, reg::SECTOR_COUNT), 1);
    assert_eq!(inb(&mut c, reg::LBA_LOW), 1);
    assert_eq!(inb(&mut c, reg::ERROR), error::DIAG_PASSED);
    // The interrupted read is gone: the data register gives nothing.
    assert_eq!(c.read(BASE, 2), 0);
}

#[test]
fn nop_and_unknown_commands_abort() {
    let mut c = channel(8);
    for command in [cmd::NOP, 0xFF, 0xC8 /* READ DMA */] {
        out(&mut c, reg::STATUS, command);
        assert_eq!(inb(&mut c, reg::STATUS), status::DRDY | status::DSC | status::ERR);
        assert_eq!(inb(&mut c, reg::ERROR), error::ABRT);
    }
}

#[test]
fn write_to_a_cow_image_leaves_the_backing_bytes() {
    // The disk image's copy-on-write rules hold under the IDE controller too.
    let mut c = channel(4);
    lba28(&mut c, 1, 1);
    out(&mut c, reg::STATUS, cmd::WRITE_SECTORS);
    for _ in 0..256 {
        c.write(BASE, 2, 0);
    }
    let img = &c.drive(0).unwrap().image;
    assert_eq!(img.overlay_sectors(), 1);
    assert!(!img.is_persistent());
}
