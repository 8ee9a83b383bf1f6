//! INT 13h disk services for floppies and hard disks: reset, status, CHS read, write
//! and verify, drive parameters and type, and the Enhanced Disk Drive (EDD) extensions
//! 41h-44h, 47h and 48h for hard disks.
//!
//! Results follow Ralf Brown's Interrupt List (INT 13h) and the Phoenix "BIOS Enhanced
//! Disk Drive Specification" (EDD 1.1 / 3.0): CF = 0 and AH = 0 on success; CF = 1 and
//! AH = one of the status codes below on failure; AH=02h-04h also return AL = the number
//! of sectors transferred, and the LBA calls update the packet's block count. A
//! transfer that runs past the end of the medium moves the sectors before the end,
//! then fails with "sector not found". The status of the last call is kept per drive
//! (AH=01h) and in the BDA.

use super::{
    bda, far_lin, read_guest, reg, rom, seg_lin, write_guest, Call, Drive, DriveKind, Outcome, Regs,
};
use crate::cpu::fault::Fault;
use crate::cpu::regs::SegReg;
use crate::machine::Machine;
use hvsim_devices::disk_image::{DiskImageError, SECTOR_SIZE};
use hvsim_mmu::Gpa;

/// INT 13h status codes (AH).
pub mod status {
    /// Success.
    pub const OK: u8 = 0x00;
    /// Invalid function or parameter.
    pub const INVALID: u8 = 0x01;
    /// Write-protected medium.
    pub const WRITE_PROTECTED: u8 = 0x03;
    /// Sector not found (beyond the end of the medium).
    pub const SECTOR_NOT_FOUND: u8 = 0x04;
}

/// INT 13h AH=15h drive types.
pub mod disk_type {
    /// Diskette without change-line support.
    pub const FLOPPY_NO_CHANGE_LINE: u8 = 0x01;
    /// Fixed disk.
    pub const FIXED_DISK: u8 = 0x03;
}

/// EDD (INT 13h AH=41h) values.
pub mod edd {
    /// BX on input to AH=41h.
    pub const CHECK_IN: u16 = 0x55AA;
    /// BX on output from AH=41h.
    pub const CHECK_OUT: u16 = 0xAA55;
    /// AH from AH=41h: EDD 3.0.
    pub const VERSION_3_0: u8 = 0x30;
    /// CX from AH=41h, bit 0: the fixed-disk access subset (42h-44h, 47h, 48h).
    pub const SUBSET_DISK_ACCESS: u16 = 1 << 0;
    /// Bit 2: the EDD subset (48h with EDD 3.0 device paths).
    pub const SUBSET_EDD: u16 = 1 << 2;
    /// The smallest disk address packet.
    pub const DAP_SIZE: u8 = 0x10;
    /// A packet with a 64-bit flat buffer address at offset 10h.
    pub const DAP_SIZE_64: u8 = 0x18;
    /// AH=48h result buffer sizes: EDD 1.x, 2.0 (with the DPTE pointer), 3.0 (with
    /// the device path).
    pub const PARAMS_SIZE_1X: u16 = 0x1A;
    /// EDD 2.0 result size.
    pub const PARAMS_SIZE_2: u16 = 0x1E;
    /// EDD 3.0 result size.
    pub const PARAMS_SIZE_3: u16 = 0x42;
    /// AH=48h info flags bit 1: the CHS fields are valid.
    pub const INFO_CHS_VALID: u16 = 1 << 1;
    /// EDD 3.0 key marking a device path.
    pub const DEVICE_PATH_KEY: u16 = 0xBEDD;
    /// Length of the device path information, from offset 1Eh to 41h.
    pub const DEVICE_PATH_LEN: u8 = 0x24;
    /// The legacy primary ATA command block port the interface path names.
    pub const ATA_PRIMARY_PORT: u16 = 0x1F0;
}

/// The most sectors AH=02h-04h move in one call.
pub const MAX_CHS_COUNT: u8 = 128;
/// CHS addressing has 10-bit cylinder numbers.
pub const MAX_CHS_CYLINDERS: u32 = 1024;
/// The heads hvsim gives a hard disk.
pub const HARD_DISK_HEADS: u32 = 16;
/// The sectors per track hvsim gives a hard disk.
pub const HARD_DISK_SECTORS: u32 = 63;

/// A CHS geometry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Geometry {
    /// Cylinders.
    pub cylinders: u32,
    /// Heads.
    pub heads: u32,
    /// Sectors per track.
    pub sectors: u32,
    /// For floppies, the CMOS drive type (INT 13h AH=08h BL); 0 for hard disks.
    pub floppy_type: u8,
}

/// The standard floppy formats: (bytes, cylinders, heads, sectors, CMOS drive type).
pub const FLOPPY_FORMATS: [(u64, u32, u32, u32, u8); 5] = [
    (368_640, 40, 2, 9, 1),    // 360K 5.25"
    (737_280, 80, 2, 9, 3),    // 720K 3.5"
    (1_228_800, 80, 2, 15, 2), // 1.2M 5.25"
    (1_474_560, 80, 2, 18, 4), // 1.44M 3.5"
    (2_949_120, 80, 2, 36, 5), // 2.88M 3.5"
];

impl Geometry {
    /// The floppy format of exactly `bytes`, if it is a standard size.
    pub fn floppy_exact(bytes: u64) -> Option<Self> {
        FLOPPY_FORMATS.iter().find(|f| f.0 == bytes).map(|f| Self::floppy(*f))
    }

    /// The smallest standard floppy format that holds `bytes`.
    pub fn floppy_for(bytes: u64) -> Option<Self> {
        FLOPPY_FORMATS.iter().find(|f| f.0 >= bytes).map(|f| Self::floppy(*f))
    }

    fn floppy(f: (u64, u32, u32, u32, u8)) -> Self {
        Self { cylinders: f.1, heads: f.2, sectors: f.3, floppy_type: f.4 }
    }

    /// A hard disk of `sectors` sectors: 16 heads, 63 sectors per track, and enough
    /// cylinders to reach the last sector, at most 1024 (CHS reaches no further; the
    /// EDD calls reach the whole disk).
    pub fn hard_disk_for(sectors: u64) -> Self {
        let per_cyl = u64::from(HARD_DISK_HEADS * HARD_DISK_SECTORS);
        let cyls = sectors.div_ceil(per_cyl).clamp(1, u64::from(MAX_CHS_CYLINDERS)) as u32;
        Self { cylinders: cyls, heads: HARD_DISK_HEADS, sectors: HARD_DISK_SECTORS, floppy_type: 0 }
    }

    /// The LBA of a CHS address (sector numbers start at 1), if it lies in the geometry.
    pub fn lba(&self, c: u32, h: u32, s: u32) -> Option<u64> {
        (c < self.cylinders && h < self.heads && (1..=self.sectors).contains(&s)).then(|| {
            (u64::from(c) * u64::from(self.heads) + u64::from(h)) * u64::from(self.sectors)
                + u64::from(s - 1)
        })
    }
}

/// Ends the call with status `st`: AH, CF, the drive's last status and the BDA's.
fn finish(m: &mut Machine, c: &mut Call, drive: u8, st: u8) {
    m.set_hi(reg::AX, st);
    c.set_cf(st != status::OK);
    if let Some(d) = c.bios.drive_mut(drive) {
        d.last_status = st;
    }
    let at = if drive & 0x80 != 0 { bda::HD_LAST_STATUS } else { bda::FLOPPY_LAST_STATUS };
    m.phys_write(Gpa(at), &[st]);
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum Transfer {
    Read,
    Write,
    Verify,
}

/// Moves `count` sectors from `lba` between the drive and guest memory at `buf`
/// (linear). Returns the sectors moved and the status.
fn transfer(
    m: &mut Machine,
    d: &mut Drive,
    op: Transfer,
    lba: u64,
    count: u64,
    buf: u64,
) -> Result<(u64, u8), Fault> {
    if op == Transfer::Write && d.image.is_write_protected() {
        return Ok((0, status::WRITE_PROTECTED));
    }
    let total = d.image.sectors();
    let avail = total.saturating_sub(lba).min(count);
    let mut sector = [0u8; SECTOR_SIZE];
    for k in 0..avail {
        let at = buf.wrapping_add(k * SECTOR_SIZE as u64);
        match op {
            Transfer::Read => match d.image.read_sector(lba + k) {
                Ok(s) => write_guest(m, at, &s)?,
                Err(_) => return Ok((k, status::SECTOR_NOT_FOUND)),
            },
            Transfer::Write => {
                read_guest(m, at, &mut sector)?;
                match d.image.write_sector(lba + k, &sector) {
                    Ok(()) => {}
                    Err(DiskImageError::WriteProtected) => return Ok((k, status::WRITE_PROTECTED)),
                    Err(_) => return Ok((k, status::SECTOR_NOT_FOUND)),
                }
            }
            Transfer::Verify => {}
        }
    }
    let st = if avail < count { status::SECTOR_NOT_FOUND } else { status::OK };
    Ok((avail, st))
}

/// INT 13h.
pub(super) fn int13(m: &mut Machine, c: &mut Call) -> Result<Outcome, Fault> {
    let ah = m.hi(reg::AX);
    let drive = m.lo(reg::DX);
    let Some(kind) = c.bios.drive(drive).map(|d| d.kind) else {
        // No such drive.
        finish(m, c, drive, status::INVALID);
        return Ok(Outcome::Done);
    };
    let st = match ah {
        0x00 => status::OK,
        0x01 => {
            let last = c.bios.drive(drive).map_or(status::OK, |d| d.last_status);
            // AH=01h returns the previous status and does not change it.
            m.set_hi(reg::AX, last);
            c.set_cf(last != status::OK);
            return Ok(Outcome::Done);
        }
        0x02..=0x04 => chs_transfer(m, c, drive, ah)?,
        0x08 => get_parameters(m, c, drive, kind),
        0x15 => {
            get_type(m, c, drive, kind);
            return Ok(Outcome::Done);
        }
        0x41 if kind == DriveKind::HardDisk => {
            // Success leaves AH = the EDD version with CF = 0.
            if check_extensions(m) {
                finish(m, c, drive, status::OK);
                m.set_hi(reg::AX, edd::VERSION_3_0);
            } else {
                finish(m, c, drive, status::INVALID);
            }
            return Ok(Outcome::Done);
        }
        0x42 | 0x43 | 0x44 | 0x47 if kind == DriveKind::HardDisk => {
            extended_transfer(m, c, drive, ah)?
        }
        0x48 if kind == DriveKind::HardDisk => drive_parameters(m, c, drive)?,
        _ => status::INVALID,
    };
    finish(m, c, drive, st);
    Ok(Outcome::Done)
}

/// AH=02h read, 03h write, 04h verify: AL = count, CH = cylinder bits 7:0, CL bits 7:6 =
/// cylinder bits 9:8, CL bits 5:0 = sector (from 1), DH = head, ES:BX = buffer. AL
/// returns the sectors transferred.
fn chs_transfer(m: &mut Machine, c: &mut Call, drive: u8, ah: u8) -> Result<u8, Fault> {
    let count = m.lo(reg::AX);
    let (ch, cl, head) = (m.hi(reg::CX), m.lo(reg::CX), m.hi(reg::DX));
    let cyl = u32::from(ch) | (u32::from(cl & 0xC0) << 2);
    let sector = u32::from(cl & 0x3F);
    m.set_lo(reg::AX, 0);
    if count == 0 || count > MAX_CHS_COUNT {
        return Ok(status::INVALID);
    }
    let Some(d) = c.bios.drive_mut(drive) else { return Ok(status::INVALID) };
    let Some(lba) = d.geometry.lba(cyl, u32::from(head), sector) else {
        return Ok(status::SECTOR_NOT_FOUND);
    };
    let op = match ah {
        0x02 => Transfer::Read,
        0x03 => Transfer::Write,
        _ => Transfer::Verify,
    };
    let buf = seg_lin(m, SegReg::Es, m.r16(reg::BX));
    let (done, st) = transfer(m, d, op, lba, u64::from(count), buf)?;
    m.set_lo(reg::AX, done as u8);
    Ok(st)
}

/// AH=08h: AL = 0, CH/CL = the last cylinder and the sectors per track, DH = the last
/// head, DL = the number of drives of this kind; floppies also return BL = drive type
/// and ES:DI = the diskette parameter table.
fn get_parameters(m: &mut Machine, c: &mut Call, drive: u8, kind: DriveKind) -> u8 {
    let Some(d) = c.bios.drive(drive) else { return status::INVALID };
    let g = d.geometry;
    let last_cyl = g.cylinders.min(MAX_CHS_CYLINDERS) - 1;
    let count = c.bios.count(kind);
    m.set_lo(reg::AX, 0);
    m.set_hi(reg::CX, last_cyl as u8);
    m.set_lo(reg::CX, (((last_cyl >> 2) & 0xC0) as u8) | (g.sectors as u8 & 0x3F));
    m.set_hi(reg::DX, (g.heads - 1) as u8);
    m.set_lo(reg::DX, count);
    if kind == DriveKind::Floppy {
        m.set_r16(reg::BX, u16::from(g.floppy_type));
        m.cpu.load_seg_real(SegReg::Es, rom::ROM_SEGMENT);
        m.set_r16(reg::DI, rom::DISKETTE_PARAMS_OFFSET);
    }
    status::OK
}

/// AH=15h: AH = the drive type; for hard disks CX:DX = the number of sectors. CF = 0.
fn get_type(m: &mut Machine, c: &mut Call, drive: u8, kind: DriveKind) {
    let sectors = c.bios.drive(drive).map_or(0, |d| d.image.sectors());
    if kind == DriveKind::HardDisk {
        let n = sectors.min(u64::from(u32::MAX)) as u32;
        m.set_r16(reg::CX, (n >> 16) as u16);
        m.set_r16(reg::DX, n as u16);
        m.set_hi(reg::AX, disk_type::FIXED_DISK);
    } else {
        m.set_hi(reg::AX, disk_type::FLOPPY_NO_CHANGE_LINE);
    }
    c.set_cf(false);
    if let Some(d) = c.bios.drive_mut(drive) {
        d.last_status = status::OK;
    }
}

/// AH=41h: BX = 55AAh in; BX = AA55h, CX = the subsets out (the caller sets AH to the
/// EDD version). False if BX was wrong.
fn check_extensions(m: &mut Machine) -> bool {
    if m.r16(reg::BX) != edd::CHECK_IN {
        return false;
    }
    m.set_r16(reg::BX, edd::CHECK_OUT);
    m.set_r16(reg::CX, edd::SUBSET_DISK_ACCESS | edd::SUBSET_EDD);
    true
}

/// AH=42h read, 43h write, 44h verify, 47h seek, with the disk address packet at DS:SI:
/// size (10h or 18h), reserved, block count (word), buffer offset and segment, LBA
/// (qword), and with size 18h and buffer FFFF:FFFF a 64-bit flat buffer address.
fn extended_transfer(m: &mut Machine, c: &mut Call, drive: u8, ah: u8) -> Result<u8, Fault> {
    let dap = seg_lin(m, SegReg::Ds, m.r16(reg::SI));
    let mut p = [0u8; edd::DAP_SIZE_64 as usize];
    read_guest(m, dap, &mut p[..usize::from(edd::DAP_SIZE)])?;
    let size = p[0];
    if size < edd::DAP_SIZE {
        return Ok(status::INVALID);
    }
    let count = u64::from(u16::from_le_bytes([p[2], p[3]]));
    let (off, seg) = (u16::from_le_bytes([p[4], p[5]]), u16::from_le_bytes([p[6], p[7]]));
    let lba = u64::from_le_bytes([p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]]);
    let mut buf = far_lin(seg, off);
    if size >= edd::DAP_SIZE_64 && (seg, off) == (0xFFFF, 0xFFFF) {
        read_guest(m, dap + 0x10, &mut p[0x10..0x18])?;
        buf = u64::from_le_bytes([p[16], p[17], p[18], p[19], p[20], p[21], p[22], p[23]]);
    }
    let Some(d) = c.bios.drive_mut(drive) else { return Ok(status::INVALID) };
    let (done, st) = match ah {
        0x42 => transfer(m, d, Transfer::Read, lba, count, buf)?,
        0x43 => transfer(m, d, Transfer::Write, lba, count, buf)?,
        0x44 => transfer(m, d, Transfer::Verify, lba, count, buf)?,
        // Seek: the block count is not used; the LBA must exist.
        _ => {
            let st = if lba < d.image.sectors() { status::OK } else { status::SECTOR_NOT_FOUND };
            return Ok(st);
        }
    };
    if done != count {
        // The packet's block count returns the blocks actually transferred.
        write_guest(m, dap + 2, &(done as u16).to_le_bytes())?;
    }
    Ok(st)
}

/// AH=48h: fills the result buffer at DS:SI, whose first word gives its size, with the
/// EDD 1.x fields (info flags, cylinders, heads, sectors per track, total sectors,
/// bytes per sector), the EDD 2.0 DPTE pointer (FFFF:FFFF: none), and for a buffer of
/// 42h bytes or more the EDD 3.0 device path (ISA bus, ATA interface at 1F0h).
fn drive_parameters(m: &mut Machine, c: &mut Call, drive: u8) -> Result<u8, Fault> {
    let at = seg_lin(m, SegReg::Ds, m.r16(reg::SI));
    let mut sz = [0u8; 2];
    read_guest(m, at, &mut sz)?;
    let want = u16::from_le_bytes(sz);
    if want < edd::PARAMS_SIZE_1X {
        return Ok(status::INVALID);
    }
    let Some(d) = c.bios.drive(drive) else { return Ok(status::INVALID) };
    let g = d.geometry;
    let size = if want >= edd::PARAMS_SIZE_3 {
        edd::PARAMS_SIZE_3
    } else if want >= edd::PARAMS_SIZE_2 {
        edd::PARAMS_SIZE_2
    } else {
        edd::PARAMS_SIZE_1X
    };
    let mut b = Vec::with_capacity(usize::from(edd::PARAMS_SIZE_3));
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&edd::INFO_CHS_VALID.to_le_bytes());
    b.extend_from_slice(&g.cylinders.to_le_bytes());
    b.extend_from_slice(&g.heads.to_le_bytes());
    b.extend_from_slice(&g.sectors.to_le_bytes());
    b.extend_from_slice(&d.image.sectors().to_le_bytes());
    b.extend_from_slice(&(SECTOR_SIZE as u16).to_le_bytes());
    b.extend_from_slice(&[0xFF; 4]); // DPTE pointer: none
    b.extend_from_slice(&edd::DEVICE_PATH_KEY.to_le_bytes());
    b.push(edd::DEVICE_PATH_LEN);
    b.extend_from_slice(&[0, 0, 0]); // reserved
    b.extend_from_slice(b"ISA "); // host bus type
    b.extend_from_slice(b"ATA     "); // interface type
    let mut iface = [0u8; 8];
    iface[..2].copy_from_slice(&edd::ATA_PRIMARY_PORT.to_le_bytes());
    b.extend_from_slice(&iface); // interface path: base address
    let mut dev = [0u8; 8];
    dev[0] = drive & 1; // master (0) or slave (1)
    b.extend_from_slice(&dev); // device path
    b.push(0); // reserved
    let sum = b[0x1E..].iter().fold(0u8, |s, x| s.wrapping_add(*x));
    b.push(0u8.wrapping_sub(sum)); // checksum of 1Eh..41h
    debug_assert_eq!(b.len(), usize::from(edd::PARAMS_SIZE_3));
    write_guest(m, at, &b[..usize::from(size)])?;
    Ok(status::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floppy_formats_by_size_and_hard_disk_geometry() {
        let g = Geometry::floppy_exact(1_474_560).unwrap();
        assert_eq!((g.cylinders, g.heads, g.sectors, g.floppy_type), (80, 2, 18, 4));
        assert_eq!(Geometry::floppy_for(512).unwrap().sectors, 9);
        assert!(Geometry::floppy_for(3_000_000).is_none());
        let hd = Geometry::hard_disk_for(2048);
        assert_eq!((hd.cylinders, hd.heads, hd.sectors), (3, 16, 63));
        assert_eq!(Geometry::hard_disk_for(1).cylinders, 1);
        assert_eq!(Geometry::hard_disk_for(u64::MAX / 2).cylinders, 1024);
    }

    #[test]
    fn chs_to_lba() {
        let g = Geometry::floppy_exact(1_474_560).unwrap();
        assert_eq!(g.lba(0, 0, 1), Some(0));
        assert_eq!(g.lba(0, 1, 1), Some(18));
        assert_eq!(g.lba(1, 0, 1), Some(36));
        assert_eq!(g.lba(79, 1, 18), Some(2879));
        assert_eq!(g.lba(0, 0, 0), None);
        assert_eq!(g.lba(0, 0, 19), None);
        assert_eq!(g.lba(0, 2, 1), None);
        assert_eq!(g.lba(80, 0, 1), None);
    }
}
