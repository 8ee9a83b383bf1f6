//! One ATA channel: the task file shared by its two device positions, command
//! execution, PIO data transfers, INTRQ, and the device control register (nIEN, SRST,
//! HOB). ATA/ATAPI-6 §7 "Register descriptions", §8 "Command descriptions", §9 "Protocol"
//! (PIO data-in, PIO data-out and non-data command protocols).
//!
//! As on QEMU, register writes reach both device positions (one task file per channel),
//! and a position without a device reads a status of 0 and ignores commands; a channel
//! with no device at all reads 0 everywhere, so firmware probing it never waits for BSY.

use super::drive::AtaDrive;
use super::{cmd, control, device, error, feature, reg, status};
use crate::bus::PortDevice;
use crate::disk_image::SECTOR_SIZE;
use std::any::Any;

/// The PIO transfer in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Transfer {
    /// No data phase.
    None,
    /// Data-in: the buffer holds a sector (or IDENTIFY data); `remaining` sectors follow
    /// from `next_lba`.
    In { next_lba: u64, remaining: u64 },
    /// Data-out: the host fills the buffer for sector `lba`; `remaining` sectors
    /// including it.
    Out { lba: u64, remaining: u64 },
}

/// A task file register with its previous value (the LBA48 high-order byte that HOB
/// reads; ATA-6 §6.20 "48-bit Address feature set": the registers are two-byte FIFOs).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct Fifo2 {
    current: u8,
    previous: u8,
}

impl Fifo2 {
    fn write(&mut self, v: u8) {
        self.previous = self.current;
        self.current = v;
    }
    fn read(&self, hob: bool) -> u8 {
        if hob {
            self.previous
        } else {
            self.current
        }
    }
}

/// An ATA channel.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct IdeChannel {
    cmd_base: u16,
    ctl_port: u16,
    drives: [Option<AtaDrive>; 2],
    features: Fifo2,
    sector_count: Fifo2,
    lba_low: Fifo2,
    lba_mid: Fifo2,
    lba_high: Fifo2,
    device: u8,
    status: u8,
    error: u8,
    control: u8,
    irq_pending: bool,
    #[serde(with = "crate::serde_array::boxed")]
    buf: Box<[u8; SECTOR_SIZE]>,
    pos: usize,
    transfer: Transfer,
}

impl IdeChannel {
    /// A channel with its command block at `cmd_base` and its device control register
    /// at `ctl_port`, no devices attached.
    pub fn new(cmd_base: u16, ctl_port: u16) -> Self {
        let mut c = Self {
            cmd_base,
            ctl_port,
            drives: [None, None],
            features: Fifo2::default(),
            sector_count: Fifo2::default(),
            lba_low: Fifo2::default(),
            lba_mid: Fifo2::default(),
            lba_high: Fifo2::default(),
            device: 0,
            status: 0,
            error: 0,
            control: 0,
            irq_pending: false,
            buf: Box::new([0; SECTOR_SIZE]),
            pos: 0,
            transfer: Transfer::None,
        };
        c.reset_devices();
        c
    }

    /// The first port of the command block.
    pub fn cmd_base(&self) -> u16 {
        self.cmd_base
    }

    /// The device control / alternate status port.
    pub fn ctl_port(&self) -> u16 {
        self.ctl_port
    }

    /// Whether `port` is one of this channel's registers.
    pub fn claims(&self, port: u16) -> bool {
        port == self.ctl_port || port.wrapping_sub(self.cmd_base) < 8
    }

    /// Attaches `drive` as device 0 (master) or 1 (slave); returns the one it replaces.
    pub fn attach(&mut self, position: usize, drive: AtaDrive) -> Option<AtaDrive> {
        let old = self.drives.get_mut(position)?.replace(drive);
        self.reset_devices();
        old
    }

    /// The drive at `position`.
    pub fn drive(&self, position: usize) -> Option<&AtaDrive> {
        self.drives.get(position)?.as_ref()
    }

    /// The drive at `position`, mutably (to flush its image).
    pub fn drive_mut(&mut self, position: usize) -> Option<&mut AtaDrive> {
        self.drives.get_mut(position)?.as_mut()
    }

    /// INTRQ as the channel drives its IRQ line: pending and not masked by nIEN.
    pub fn irq_level(&self) -> bool {
        self.irq_pending && self.control & control::NIEN == 0
    }

    fn any_drive(&self) -> bool {
        self.drives.iter().any(Option::is_some)
    }

    fn selected(&self) -> usize {
        usize::from(self.device & device::DEV != 0)
    }

    fn selected_present(&self) -> bool {
        self.drives[self.selected()].is_some()
    }

    /// The state after a power-on, hardware or software reset (ATA-6 §9.1 "Power-on
    /// and hardware resets", §9.2 "Software reset"): device 0 selected, the ATA
    /// signature in the task file, the diagnostic code in the error register.
    fn reset_devices(&mut self) {
        for d in self.drives.iter_mut().flatten() {
            d.reset_geometry();
        }
        self.device = 0;
        self.sector_count = Fifo2 { current: 1, previous: 0 };
        self.lba_low = Fifo2 { current: 1, previous: 0 };
        self.lba_mid = Fifo2::default();
        self.lba_high = Fifo2::default();
        self.features = Fifo2::default();
        self.error = error::DIAG_PASSED;
        self.status = if self.drives[0].is_some() { status::DRDY | status::DSC } else { 0 };
        self.transfer = Transfer::None;
        self.pos = 0;
        self.irq_pending = false;
    }

    fn raise(&mut self) {
        self.irq_pending = true;
    }

    /// Ends a command without error (non-data protocol).
    fn complete(&mut self) {
        self.status = status::DRDY | status::DSC;
        self.error = 0;
        self.transfer = Transfer::None;
        self.raise();
    }

    /// Ends a command with ERR and `err` in the error register.
    fn abort(&mut self, err: u8) {
        self.status = status::DRDY | status::DSC | status::ERR;
        self.error = err;
        self.transfer = Transfer::None;
        self.raise();
    }

    /// The sector count and first LBA of a read or write: LBA48 from both FIFO bytes,
    /// LBA28 or CHS (through the current translation) from the current ones.
    fn address(&self, lba48: bool) -> Option<(u64, u64)> {
        if lba48 {
            let count =
                u64::from(self.sector_count.previous) << 8 | u64::from(self.sector_count.current);
            let lba = [self.lba_low, self.lba_mid, self.lba_high].iter().enumerate().fold(
                0u64,
                |a, (i, r)| {
                    a | u64::from(r.current) << (8 * i) | u64::from(r.previous) << (8 * i + 24)
                },
            );
            return Some((lba, if count == 0 { 65536 } else { count }));
        }
        let count = match self.sector_count.current {
            0 => 256,
            n => u64::from(n),
        };
        let lba = if self.device & device::LBA != 0 {
            u64::from(self.device & 0xF) << 24
                | u64::from(self.lba_high.current) << 16
                | u64::from(self.lba_mid.current) << 8
                | u64::from(self.lba_low.current)
        } else {
            let cyl = u16::from(self.lba_high.current) << 8 | u16::from(self.lba_mid.current);
            let drive = self.drives[self.selected()].as_ref()?;
            drive.chs_to_lba(cyl, self.device & 0xF, self.lba_low.current)?
        };
        Some((lba, count))
    }

    /// The sectors of a command, checked against the device's capacity.
    fn checked_range(&self, lba48: bool) -> Option<(u64, u64)> {
        let (lba, count) = self.address(lba48)?;
        let sectors = self.drives[self.selected()].as_ref()?.sectors();
        (lba.checked_add(count)? <= sectors).then_some((lba, count))
    }

    /// Loads sector `lba` into the buffer for a data-in transfer; `false` on error.
    fn load_sector(&mut self, lba: u64) -> bool {
        let i = self.selected();
        let Some(d) = self.drives[i].as_ref() else { return false };
        let ok = d.read(lba, &mut self.buf[..]);
        self.pos = 0;
        ok
    }

    fn execute(&mut self, command: u8) {
        // Commands to an absent device are ignored (ATA-6 §9.16 "Device 0 only
        // configurations" for the slave position; QEMU ignores them the same way).
        if !self.selected_present() || self.status & status::BSY != 0 {
            return;
        }
        self.irq_pending = false;
        match command {
            cmd::IDENTIFY_DEVICE => {
                let Some(d) = self.drives[self.selected()].as_ref() else { return };
                for (i, w) in d.identify().iter().enumerate() {
                    self.buf[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
                }
                self.start_data_in(0, 0);
            }
            cmd::READ_SECTORS | cmd::READ_SECTORS_NORETRY | cmd::READ_SECTORS_EXT => {
                let lba48 = command == cmd::READ_SECTORS_EXT;
                match self.checked_range(lba48) {
                    Some((lba, count)) if self.load_sector(lba) => {
                        self.start_data_in(lba + 1, count - 1)
                    }
                    Some(_) => self.abort(error::UNC),
                    None => self.abort(error::IDNF | error::ABRT),
                }
            }
            cmd::WRITE_SECTORS | cmd::WRITE_SECTORS_NORETRY | cmd::WRITE_SECTORS_EXT => {
                let lba48 = command == cmd::WRITE_SECTORS_EXT;
                match self.checked_range(lba48) {
                    Some((lba, count)) => {
                        // PIO data-out: DRQ without an interrupt for the first block.
                        self.transfer = Transfer::Out { lba, remaining: count };
                        self.pos = 0;
                        self.status = status::DRDY | status::DSC | status::DRQ;
                        self.error = 0;
                    }
                    None => self.abort(error::IDNF | error::ABRT),
                }
            }
            cmd::READ_VERIFY | cmd::READ_VERIFY_NORETRY | cmd::READ_VERIFY_EXT => {
                match self.checked_range(command == cmd::READ_VERIFY_EXT) {
                    Some(_) => self.complete(),
                    None => self.abort(error::IDNF | error::ABRT),
                }
            }
            cmd::SET_FEATURES => match self.features.current {
                feature::ENABLE_WRITE_CACHE
                | feature::DISABLE_WRITE_CACHE
                | feature::DISABLE_READ_LOOKAHEAD
                | feature::ENABLE_READ_LOOKAHEAD
                | feature::DISABLE_REVERT
                | feature::ENABLE_REVERT => self.complete(),
                // Transfer modes: PIO default (0x00/0x01), PIO flow control modes 0-4
                // (0x08-0x0C); DMA modes are not supported.
                feature::SET_TRANSFER_MODE
                    if matches!(self.sector_count.current, 0x00 | 0x01 | 0x08..=0x0C) =>
                {
                    self.complete()
                }
                _ => self.abort(error::ABRT),
            },
            cmd::INITIALIZE_DEVICE_PARAMETERS => {
                let heads = u16::from(self.device & 0xF) + 1;
                let spt = u16::from(self.sector_count.current);
                let i = self.selected();
                if let Some(d) = self.drives[i].as_mut() {
                    d.heads = heads;
                    d.sectors_per_track = spt;
                }
                if spt == 0 {
                    self.abort(error::ABRT)
                } else {
                    self.complete()
                }
            }
            cmd::EXECUTE_DIAGNOSTIC => {
                self.reset_devices();
                self.raise();
            }
            cmd::CHECK_POWER_MODE => {
                self.sector_count.write(0xFF); // active or idle
                self.complete();
            }
            cmd::FLUSH_CACHE
            | cmd::FLUSH_CACHE_EXT
            | cmd::STANDBY_IMMEDIATE
            | cmd::IDLE_IMMEDIATE
            | cmd::STANDBY
            | cmd::IDLE => self.complete(),
            c if c & 0xF0 == cmd::RECALIBRATE => self.complete(),
            // NOP always aborts; IDENTIFY PACKET DEVICE and every other command are not
            // implemented by an ATA disk without the PACKET feature set.
            cmd::NOP | cmd::IDENTIFY_PACKET_DEVICE | _ => self.abort(error::ABRT),
        }
    }

    /// Starts (or continues) a PIO data-in block: DRQ and an interrupt.
    fn start_data_in(&mut self, next_lba: u64, remaining: u64) {
        self.transfer = Transfer::In { next_lba, remaining };
        self.pos = 0;
        self.status = status::DRDY | status::DSC | status::DRQ;
        self.error = 0;
        self.raise();
    }

    /// A data register read of `n` bytes (2 or 4).
    fn data_read(&mut self, n: usize) -> u32 {
        let Transfer::In { next_lba, remaining } = self.transfer else { return 0 };
        let mut v = 0u32;
        for i in 0..n {
            if self.pos < SECTOR_SIZE {
                v |= u32::from(self.buf[self.pos]) << (8 * i);
                self.pos += 1;
            }
        }
        if self.pos >= SECTOR_SIZE {
            if remaining == 0 {
                self.status = status::DRDY | status::DSC;
                self.transfer = Transfer::None;
            } else if self.load_sector(next_lba) {
                self.start_data_in(next_lba + 1, remaining - 1);
            } else {
                self.abort(error::UNC);
            }
        }
        v
    }

    /// A data register write of `n` bytes (2 or 4).
    fn data_write(&mut self, n: usize, value: u32) {
        let Transfer::Out { lba, remaining } = self.transfer else { return };
        for i in 0..n {
            if self.pos < SECTOR_SIZE {
                self.buf[self.pos] = (value >> (8 * i)) as u8;
                self.pos += 1;
            }
        }
        if self.pos < SECTOR_SIZE {
            return;
        }
        let i = self.selected();
        let mut sector = [0u8; SECTOR_SIZE];
        sector.copy_from_slice(&self.buf[..]);
        let written =
            self.drives[i].as_mut().is_some_and(|d| d.image.write_sector(lba, &sector).is_ok());
        if !written {
            return self.abort(error::UNC);
        }
        self.pos = 0;
        if remaining > 1 {
            self.transfer = Transfer::Out { lba: lba + 1, remaining: remaining - 1 };
            self.status = status::DRDY | status::DSC | status::DRQ;
        } else {
            self.transfer = Transfer::None;
            self.status = status::DRDY | status::DSC;
        }
        self.raise();
    }

    /// A write of the device control register.
    fn write_control(&mut self, v: u8) {
        let was_reset = self.control & control::SRST != 0;
        self.control = v;
        if v & control::SRST != 0 {
            // SRST asserted: both devices busy until it is released.
            self.transfer = Transfer::None;
            self.irq_pending = false;
            if self.any_drive() {
                self.status = status::BSY;
            }
        } else if was_reset {
            self.reset_devices();
        }
    }

    fn hob(&self) -> bool {
        self.control & control::HOB != 0
    }
}

impl PortDevice for IdeChannel {
    fn read(&mut self, port: u16, size: u8) -> u32 {
        if !self.any_drive() {
            return 0;
        }
        if port == self.ctl_port {
            // Alternate status: the status without acknowledging the interrupt.
            return u32::from(if self.selected_present() { self.status } else { 0 });
        }
        let hob = self.hob();
        let v = match port.wrapping_sub(self.cmd_base) {
            reg::DATA => return self.data_read(if size >= 4 { 4 } else { 2 }),
            reg::ERROR => self.error,
            reg::SECTOR_COUNT => self.sector_count.read(hob),
            reg::LBA_LOW => self.lba_low.read(hob),
            reg::LBA_MID => self.lba_mid.read(hob),
            reg::LBA_HIGH => self.lba_high.read(hob),
            reg::DEVICE => self.device,
            reg::STATUS => {
                if !self.selected_present() {
                    return 0;
                }
                self.irq_pending = false;
                self.status
            }
            _ => 0xFF,
        };
        u32::from(v)
    }

    fn write(&mut self, port: u16, size: u8, value: u32) {
        if port == self.ctl_port {
            return self.write_control(value as u8);
        }
        let off = port.wrapping_sub(self.cmd_base);
        if off == reg::DATA {
            return self.data_write(if size >= 4 { 4 } else { 2 }, value);
        }
        // A write to any other command block register clears HOB (ATA-6 §7.9).
        self.control &= !control::HOB;
        let v = value as u8;
        match off {
            reg::ERROR => self.features.write(v),
            reg::SECTOR_COUNT => self.sector_count.write(v),
            reg::LBA_LOW => self.lba_low.write(v),
            reg::LBA_MID => self.lba_mid.write(v),
            reg::LBA_HIGH => self.lba_high.write(v),
            reg::DEVICE => self.device = v,
            reg::STATUS => self.execute(v),
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
