//! The MC146818 real-time clock and its CMOS NVRAM (index port 0x70 with the NMI-disable
//! bit 7, data port 0x71; IRQ 8).
//!
//! Follows the Motorola MC146818A datasheet: time, calendar and alarm registers 0x00-0x09 in
//! BCD or binary and 12- or 24-hour format (register B's DM and 24/12 bits, which change
//! only how later updates write, not what is stored), register A (UIP, divider DV2-0, rate
//! RS3-0), register B (SET, PIE, AIE, UIE, SQWE, DM, 24/12, DSE), register C (IRQF, PF, AF,
//! UF; a read returns and clears them, dropping the IRQ) and register D (VRT).
//!
//! Time is the machine's virtual time in nanoseconds ([`Rtc::advance`]): the divider chain
//! counts 32.768 kHz ticks from the virtual time at which it last left reset, in integer
//! arithmetic. Once a second the update cycle adds one second to whatever the time
//! registers hold (so a guest that writes them sees them advance from there); UIP is set
//! for the 244 us (8 ticks) before each update, which is modelled as instantaneous. The
//! periodic interrupt flag is set at the rate register A selects. The clock starts at a
//! configured date ([`DEFAULT_START`] unless told otherwise), so runs are deterministic.
//!
//! Not modelled: daylight saving (DSE), the square-wave output (SQWE) and the time bases
//! other than 32.768 kHz (DV 000 and 001 count as 32.768 kHz).
//!
//! The other 114 bytes are NVRAM, filled as QEMU's `pc` machine fills them for SeaBIOS and
//! older BIOSes: equipment, memory sizes, century, boot order, floppy and disk types.
//! Port accesses happen at the time of the last `advance`.

use crate::bus::PortDevice;
use crate::pc::{CMOS_PORT, HIGH_MEMORY, PCI_HOLE_START};
use std::any::Any;

/// CMOS register offsets (MC146818 registers, then the PC's NVRAM layout as QEMU and
/// SeaBIOS use it).
pub mod cmos {
    /// Seconds.
    pub const SECONDS: u8 = 0x00;
    /// Seconds alarm.
    pub const SECONDS_ALARM: u8 = 0x01;
    /// Minutes.
    pub const MINUTES: u8 = 0x02;
    /// Minutes alarm.
    pub const MINUTES_ALARM: u8 = 0x03;
    /// Hours.
    pub const HOURS: u8 = 0x04;
    /// Hours alarm.
    pub const HOURS_ALARM: u8 = 0x05;
    /// Day of the week (1 = Sunday).
    pub const DAY_OF_WEEK: u8 = 0x06;
    /// Day of the month.
    pub const DAY_OF_MONTH: u8 = 0x07;
    /// Month.
    pub const MONTH: u8 = 0x08;
    /// Year within the century.
    pub const YEAR: u8 = 0x09;
    /// Register A.
    pub const REG_A: u8 = 0x0A;
    /// Register B.
    pub const REG_B: u8 = 0x0B;
    /// Register C.
    pub const REG_C: u8 = 0x0C;
    /// Register D.
    pub const REG_D: u8 = 0x0D;
    /// Floppy drive types: drive A in bits 7:4, B in 3:0.
    pub const FLOPPY_TYPES: u8 = 0x10;
    /// Hard disk types: disk 0 in bits 7:4, disk 1 in 3:0 (0xF: see 0x19/0x1A).
    pub const DISK_TYPES: u8 = 0x12;
    /// Equipment byte.
    pub const EQUIPMENT: u8 = 0x14;
    /// Base memory in KiB, low byte.
    pub const BASE_MEM_LO: u8 = 0x15;
    /// Base memory in KiB, high byte.
    pub const BASE_MEM_HI: u8 = 0x16;
    /// Extended memory in KiB above 1 MiB (max 0xFFFF), low byte.
    pub const EXT_MEM_LO: u8 = 0x17;
    /// Extended memory, high byte.
    pub const EXT_MEM_HI: u8 = 0x18;
    /// Extended type of hard disk 0.
    pub const DISK0_TYPE: u8 = 0x19;
    /// Extended type of hard disk 1.
    pub const DISK1_TYPE: u8 = 0x1A;
    /// Checksum of 0x10-0x2D, high byte.
    pub const CHECKSUM_HI: u8 = 0x2E;
    /// Checksum, low byte.
    pub const CHECKSUM_LO: u8 = 0x2F;
    /// Extended memory in KiB above 1 MiB as POST found it, low byte.
    pub const EXT_MEM2_LO: u8 = 0x30;
    /// Extended memory (POST), high byte.
    pub const EXT_MEM2_HI: u8 = 0x31;
    /// Century (in the current BCD/binary format).
    pub const CENTURY: u8 = 0x32;
    /// 64 KiB blocks of RAM between 16 MiB and the PCI hole, low byte.
    pub const MEM_ABOVE_16M_LO: u8 = 0x34;
    /// 64 KiB blocks above 16 MiB, high byte.
    pub const MEM_ABOVE_16M_HI: u8 = 0x35;
    /// Third boot device (bits 7:4); bit 0 = 1 skips the floppy boot signature check.
    pub const BOOT_FLAG1: u8 = 0x38;
    /// First boot device (bits 3:0) and second (bits 7:4).
    pub const BOOT_FLAG2: u8 = 0x3D;
    /// 64 KiB blocks of RAM above 4 GiB, bits 7:0 (QEMU).
    pub const MEM_ABOVE_4G_LO: u8 = 0x5B;
    /// 64 KiB blocks above 4 GiB, bits 15:8.
    pub const MEM_ABOVE_4G_MID: u8 = 0x5C;
    /// 64 KiB blocks above 4 GiB, bits 23:16.
    pub const MEM_ABOVE_4G_HI: u8 = 0x5D;
    /// Number of vCPUs minus one (QEMU, read by older SeaBIOS).
    pub const SMP_COUNT: u8 = 0x5F;
}

/// Register A: update in progress.
pub const A_UIP: u8 = 1 << 7;
/// Register A: divider bits 6:4.
const A_DV_MASK: u8 = 0x70;
/// Register A: the divider's normal 32.768 kHz setting; 11x holds the chain in reset.
pub const A_DV_32K: u8 = 0x20;
/// Register A: rate select bits 3:0.
const A_RS_MASK: u8 = 0x0F;
/// Register B: SET (inhibit updates).
pub const B_SET: u8 = 1 << 7;
/// Register B: periodic interrupt enable.
pub const B_PIE: u8 = 1 << 6;
/// Register B: alarm interrupt enable.
pub const B_AIE: u8 = 1 << 5;
/// Register B: update-ended interrupt enable.
pub const B_UIE: u8 = 1 << 4;
/// Register B: data mode binary (1) or BCD (0).
pub const B_DM_BINARY: u8 = 1 << 2;
/// Register B: 24-hour (1) or 12-hour (0) mode.
pub const B_24H: u8 = 1 << 1;
/// Register C: interrupt request flag.
pub const C_IRQF: u8 = 1 << 7;
/// Register C: periodic interrupt flag.
pub const C_PF: u8 = 1 << 6;
/// Register C: alarm flag.
pub const C_AF: u8 = 1 << 5;
/// Register C: update-ended flag.
pub const C_UF: u8 = 1 << 4;
/// Register D: valid RAM and time.
pub const D_VRT: u8 = 1 << 7;
/// An alarm byte with bits 7:6 set matches any value.
const ALARM_DONT_CARE: u8 = 0xC0;
/// The hour byte's PM flag in 12-hour mode.
const HOUR_PM: u8 = 0x80;
/// Index port bit 7: NMI disabled.
pub const NMI_DISABLE: u8 = 1 << 7;

/// Divider chain ticks per second.
const TICKS_PER_S: u64 = 32_768;
/// UIP is set this many ticks (244 us) before an update.
const UIP_TICKS: u64 = 8;
/// Nanoseconds per second.
const NS_PER_S: u128 = 1_000_000_000;
/// Seconds per day.
const DAY: i64 = 86_400;

/// A calendar date and time of day (24-hour, full year).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DateTime {
    /// Year, e.g. 2026.
    pub year: i64,
    /// Month 1-12.
    pub month: u8,
    /// Day of the month 1-31.
    pub day: u8,
    /// Hour 0-23.
    pub hour: u8,
    /// Minute 0-59.
    pub minute: u8,
    /// Second 0-59.
    pub second: u8,
}

/// The default start of the clock: 2026-01-01 00:00:00.
pub const DEFAULT_START: DateTime =
    DateTime { year: 2026, month: 1, day: 1, hour: 0, minute: 0, second: 0 };

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl DateTime {
    /// Seconds since 1970-01-01 00:00:00.
    pub fn to_unix(self) -> i64 {
        days_from_civil(self.year, i64::from(self.month), i64::from(self.day)) * DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The date and time `secs` seconds after 1970-01-01 00:00:00.
    pub fn from_unix(secs: i64) -> Self {
        let (year, month, day) = civil_from_days(secs.div_euclid(DAY));
        let s = secs.rem_euclid(DAY);
        Self {
            year,
            month,
            day,
            hour: (s / 3600) as u8,
            minute: (s / 60 % 60) as u8,
            second: (s % 60) as u8,
        }
    }
}

/// Boot devices as the CMOS boot-order nibbles name them (QEMU/SeaBIOS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BootDevice {
    /// Floppy (QEMU `a`).
    Floppy = 1,
    /// Hard disk (QEMU `c`).
    HardDisk = 2,
    /// CD-ROM (QEMU `d`).
    CdRom = 3,
    /// Network (QEMU `n`).
    Network = 4,
}

/// Floppy drive types of the CMOS floppy byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FloppyType {
    /// No drive.
    None = 0,
    /// 5.25" 360 KiB.
    K360 = 1,
    /// 5.25" 1.2 MiB.
    M1_2 = 2,
    /// 3.5" 720 KiB.
    K720 = 3,
    /// 3.5" 1.44 MiB.
    M1_44 = 4,
    /// 3.5" 2.88 MiB.
    M2_88 = 5,
}

/// The RTC and its NVRAM.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rtc {
    #[serde(with = "crate::serde_array")]
    cmos: [u8; 128],
    index: u8,
    nmi_disabled: bool,
    now_ns: u64,
    /// Virtual time at which the divider chain last left reset.
    epoch_ns: u64,
    /// Divider ticks since the epoch already accounted for.
    ticks: u64,
    /// Divider tick (since the epoch) of the next update cycle.
    next_update: u64,
}

impl Rtc {
    /// An RTC for a machine with `ram_bytes` of RAM and `cpus` vCPUs, its clock at
    /// [`DEFAULT_START`], no floppies, hard disk 0 present, booting from the hard disk.
    pub fn new(ram_bytes: u64, cpus: u32) -> Self {
        let mut rtc = Self {
            cmos: [0; 128],
            index: 0,
            nmi_disabled: false,
            now_ns: 0,
            epoch_ns: 0,
            ticks: 0,
            next_update: TICKS_PER_S,
        };
        let c = &mut rtc.cmos;
        c[usize::from(cmos::REG_A)] = A_DV_32K | 0x06; // 1024 Hz periodic rate
        c[usize::from(cmos::REG_B)] = B_24H;
        c[usize::from(cmos::REG_D)] = D_VRT;
        rtc.set_time(DEFAULT_START);
        rtc.set_memory(ram_bytes);
        rtc.cmos[usize::from(cmos::SMP_COUNT)] = cpus.saturating_sub(1).min(0xFF) as u8;
        rtc.set_floppies(FloppyType::None, FloppyType::None);
        rtc.set_hard_disks(true, false);
        rtc.set_boot_order(&[BootDevice::HardDisk], true);
        rtc
    }

    /// Sets the clock (in the current data mode).
    pub fn set_time(&mut self, t: DateTime) {
        self.write_time(t.to_unix());
        let dow =
            (days_from_civil(t.year, i64::from(t.month), i64::from(t.day)) + 4).rem_euclid(7) as u8;
        self.cmos[usize::from(cmos::DAY_OF_WEEK)] = self.encode(dow + 1);
    }

    /// The time the registers hold.
    pub fn time(&self) -> DateTime {
        DateTime::from_unix(self.read_time())
    }

    /// Fills the memory-size bytes for `ram_bytes` of RAM (RAM at and above
    /// [`PCI_HOLE_START`] is placed above 4 GiB).
    pub fn set_memory(&mut self, ram_bytes: u64) {
        let below_4g = ram_bytes.min(PCI_HOLE_START);
        let above_4g = ram_bytes - below_4g;
        let base_kib: u16 = 640;
        let ext_kib = (below_4g.saturating_sub(HIGH_MEMORY) / 1024).min(0xFFFF) as u16;
        let blocks_16m = (below_4g.saturating_sub(16 << 20) >> 16).min(0xFFFF) as u16;
        let blocks_4g = (above_4g >> 16).min(0xFF_FFFF) as u32;
        let [lo, mid, hi, _] = blocks_4g.to_le_bytes();
        let [base_lo, base_hi] = base_kib.to_le_bytes();
        let [ext_lo, ext_hi] = ext_kib.to_le_bytes();
        let [m16_lo, m16_hi] = blocks_16m.to_le_bytes();
        for (offset, value) in [
            (cmos::BASE_MEM_LO, base_lo),
            (cmos::BASE_MEM_HI, base_hi),
            (cmos::EXT_MEM_LO, ext_lo),
            (cmos::EXT_MEM_HI, ext_hi),
            (cmos::EXT_MEM2_LO, ext_lo),
            (cmos::EXT_MEM2_HI, ext_hi),
            (cmos::MEM_ABOVE_16M_LO, m16_lo),
            (cmos::MEM_ABOVE_16M_HI, m16_hi),
            (cmos::MEM_ABOVE_4G_LO, lo),
            (cmos::MEM_ABOVE_4G_MID, mid),
            (cmos::MEM_ABOVE_4G_HI, hi),
        ] {
            self.cmos[usize::from(offset)] = value;
        }
        self.update_checksum();
    }

    /// Sets the floppy drive types and the equipment byte (which also reports an FPU and a
    /// PS/2 mouse, as QEMU does).
    pub fn set_floppies(&mut self, a: FloppyType, b: FloppyType) {
        self.cmos[usize::from(cmos::FLOPPY_TYPES)] = (a as u8) << 4 | b as u8;
        let drives = u8::from(a != FloppyType::None) + u8::from(b != FloppyType::None);
        let mut equipment = 0x02 | 0x04; // FPU, PS/2 mouse; video bits 5:4 = 0 (VGA)
        if drives > 0 {
            equipment |= 0x01 | (drives - 1) << 6;
        }
        self.cmos[usize::from(cmos::EQUIPMENT)] = equipment;
        self.update_checksum();
    }

    /// Sets which of the two first hard disks exist (type 0xF, extended type 47).
    pub fn set_hard_disks(&mut self, disk0: bool, disk1: bool) {
        let c = &mut self.cmos;
        c[usize::from(cmos::DISK_TYPES)] =
            if disk0 { 0xF0 } else { 0 } | if disk1 { 0x0F } else { 0 };
        c[usize::from(cmos::DISK0_TYPE)] = if disk0 { 47 } else { 0 };
        c[usize::from(cmos::DISK1_TYPE)] = if disk1 { 47 } else { 0 };
        self.update_checksum();
    }

    /// Sets up to three boot devices in order, and whether the BIOS checks a floppy's
    /// boot signature (QEMU's `fd_bootchk`, default on).
    pub fn set_boot_order(&mut self, order: &[BootDevice], floppy_signature_check: bool) {
        let nibble = |i: usize| order.get(i).map_or(0, |&d| d as u8);
        self.cmos[usize::from(cmos::BOOT_FLAG2)] = nibble(1) << 4 | nibble(0);
        self.cmos[usize::from(cmos::BOOT_FLAG1)] =
            nibble(2) << 4 | u8::from(!floppy_signature_check);
    }

    /// Sum of bytes 0x10-0x2D stored big-endian at 0x2E/0x2F (IBM AT BIOS convention).
    fn update_checksum(&mut self) {
        let sum: u16 = self.cmos[usize::from(cmos::FLOPPY_TYPES)..usize::from(cmos::CHECKSUM_HI)]
            .iter()
            .map(|&b| u16::from(b))
            .sum();
        let [hi, lo] = sum.to_be_bytes();
        self.cmos[usize::from(cmos::CHECKSUM_HI)] = hi;
        self.cmos[usize::from(cmos::CHECKSUM_LO)] = lo;
    }

    /// A CMOS byte as stored (no side effects).
    pub fn cmos(&self, offset: u8) -> u8 {
        self.cmos[usize::from(offset & 0x7F)]
    }

    /// Sets a NVRAM byte directly (firmware setup; not for registers A-D).
    pub fn set_cmos(&mut self, offset: u8, value: u8) {
        self.cmos[usize::from(offset & 0x7F)] = value;
    }

    /// Whether the last index write disabled NMIs (bit 7 of port 0x70).
    pub fn nmi_disabled(&self) -> bool {
        self.nmi_disabled
    }

    fn reg(&self, r: u8) -> u8 {
        self.cmos[usize::from(r)]
    }

    fn binary(&self) -> bool {
        self.reg(cmos::REG_B) & B_DM_BINARY != 0
    }

    fn encode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            (v / 10) << 4 | v % 10
        }
    }

    fn decode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            (v >> 4) * 10 + (v & 0xF)
        }
    }

    fn encode_hour(&self, h: u8) -> u8 {
        if self.reg(cmos::REG_B) & B_24H != 0 {
            return self.encode(h);
        }
        let h12 = if h % 12 == 0 { 12 } else { h % 12 };
        self.encode(h12) | if h >= 12 { HOUR_PM } else { 0 }
    }

    fn decode_hour(&self, v: u8) -> u8 {
        if self.reg(cmos::REG_B) & B_24H != 0 {
            return self.decode(v).min(23);
        }
        let h12 = self.decode(v & !HOUR_PM) % 12;
        h12.min(11) + if v & HOUR_PM != 0 { 12 } else { 0 }
    }

    /// The registers' time as seconds since 1970 (out-of-range fields are clamped).
    fn read_time(&self) -> i64 {
        let year = i64::from(self.decode(self.reg(cmos::CENTURY))) * 100
            + i64::from(self.decode(self.reg(cmos::YEAR)) % 100);
        DateTime {
            year,
            month: self.decode(self.reg(cmos::MONTH)).clamp(1, 12),
            day: self.decode(self.reg(cmos::DAY_OF_MONTH)).clamp(1, 31),
            hour: self.decode_hour(self.reg(cmos::HOURS)),
            minute: self.decode(self.reg(cmos::MINUTES)).min(59),
            second: self.decode(self.reg(cmos::SECONDS)).min(59),
        }
        .to_unix()
    }

    /// Writes the time and date registers (not the day of the week).
    fn write_time(&mut self, secs: i64) {
        let t = DateTime::from_unix(secs);
        let fields = [
            (cmos::SECONDS, self.encode(t.second)),
            (cmos::MINUTES, self.encode(t.minute)),
            (cmos::HOURS, self.encode_hour(t.hour)),
            (cmos::DAY_OF_MONTH, self.encode(t.day)),
            (cmos::MONTH, self.encode(t.month)),
            (cmos::YEAR, self.encode(t.year.rem_euclid(100) as u8)),
            (cmos::CENTURY, self.encode(t.year.div_euclid(100).clamp(0, 99) as u8)),
        ];
        for (r, v) in fields {
            self.cmos[usize::from(r)] = v;
        }
    }

    fn alarm_matches(&self, secs: i64) -> bool {
        let t = DateTime::from_unix(secs);
        [
            (cmos::SECONDS_ALARM, self.encode(t.second)),
            (cmos::MINUTES_ALARM, self.encode(t.minute)),
            (cmos::HOURS_ALARM, self.encode_hour(t.hour)),
        ]
        .into_iter()
        .all(|(r, v)| {
            let alarm = self.reg(r);
            alarm & ALARM_DONT_CARE == ALARM_DONT_CARE || alarm == v
        })
    }

    fn running(&self) -> bool {
        self.reg(cmos::REG_A) & A_DV_MASK <= A_DV_32K
    }

    fn ticks_at(&self, ns: u64) -> u64 {
        (u128::from(ns.saturating_sub(self.epoch_ns)) * u128::from(TICKS_PER_S) / NS_PER_S) as u64
    }

    fn ns_at_tick(&self, tick: u64) -> u64 {
        let ns = (u128::from(tick) * NS_PER_S).div_ceil(u128::from(TICKS_PER_S));
        self.epoch_ns.saturating_add(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// The periodic interrupt's period in divider ticks (register A RS3-0; 0 = off).
    /// MC146818A Table 5: RS 1 and 2 give 3.90625 and 7.8125 ms, RS 3-15 give
    /// 2^(RS-1) ticks (122.070 us to 500 ms).
    fn periodic_ticks(&self) -> Option<u64> {
        match self.reg(cmos::REG_A) & A_RS_MASK {
            0 => None,
            rs @ (1 | 2) => Some(1 << (rs + 6)),
            rs => Some(1 << (rs - 1)),
        }
    }

    /// Moves to virtual time `now_ns` (never backwards): periodic flags, update cycles and
    /// alarms that fell in between.
    pub fn advance(&mut self, now_ns: u64) {
        if now_ns <= self.now_ns {
            return;
        }
        self.now_ns = now_ns;
        if !self.running() {
            return;
        }
        let ticks = self.ticks_at(now_ns);
        if let Some(p) = self.periodic_ticks() {
            if ticks / p > self.ticks / p {
                self.cmos[usize::from(cmos::REG_C)] |= C_PF;
            }
        }
        if ticks >= self.next_update {
            let updates = (ticks - self.next_update) / TICKS_PER_S + 1;
            self.next_update += updates * TICKS_PER_S;
            self.update_cycles(updates);
        }
        self.ticks = ticks;
        self.update_irqf();
    }

    /// `n` update cycles: the time advances `n` seconds (unless SET inhibits updates),
    /// UF is set, and AF if the alarm matched at one of them (checked for the last day's
    /// worth of seconds: alarms recur at most daily).
    fn update_cycles(&mut self, n: u64) {
        if self.reg(cmos::REG_B) & B_SET != 0 {
            return;
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX / 2);
        let before = self.read_time();
        let after = before + n;
        let old_days = before.div_euclid(DAY);
        let new_days = after.div_euclid(DAY);
        let dow = self.decode(self.reg(cmos::DAY_OF_WEEK)).clamp(1, 7);
        let new_dow = ((i64::from(dow) - 1 + (new_days - old_days)).rem_euclid(7) + 1) as u8;
        if (after - n.min(DAY) + 1..=after).any(|s| self.alarm_matches(s)) {
            self.cmos[usize::from(cmos::REG_C)] |= C_AF;
        }
        self.write_time(after);
        self.cmos[usize::from(cmos::DAY_OF_WEEK)] = self.encode(new_dow);
        self.cmos[usize::from(cmos::REG_C)] |= C_UF;
    }

    fn update_irqf(&mut self) {
        let b = self.reg(cmos::REG_B);
        let c = &mut self.cmos[usize::from(cmos::REG_C)];
        let enabled = (*c & C_PF != 0 && b & B_PIE != 0)
            || (*c & C_AF != 0 && b & B_AIE != 0)
            || (*c & C_UF != 0 && b & B_UIE != 0);
        if enabled {
            *c |= C_IRQF;
        }
    }

    /// The IRQ 8 line (register C's IRQF; reading register C drops it).
    pub fn irq_level(&self) -> bool {
        self.reg(cmos::REG_C) & C_IRQF != 0
    }

    /// When an enabled interrupt flag will next be set (ns), for the machine's scheduler.
    pub fn next_event_ns(&self) -> Option<u64> {
        if !self.running() {
            return None;
        }
        let b = self.reg(cmos::REG_B);
        let periodic =
            self.periodic_ticks().filter(|_| b & B_PIE != 0).map(|p| (self.ticks / p + 1) * p);
        let update = (b & (B_UIE | B_AIE) != 0 && b & B_SET == 0).then_some(self.next_update);
        [periodic, update].into_iter().flatten().min().map(|t| self.ns_at_tick(t))
    }

    /// UIP: set for the 244 us before an update (not while SET inhibits updates).
    fn update_in_progress(&self) -> bool {
        self.running()
            && self.reg(cmos::REG_B) & B_SET == 0
            && self.next_update.saturating_sub(self.ticks_at(self.now_ns)) <= UIP_TICKS
    }

    fn read_data(&mut self) -> u8 {
        match self.index {
            cmos::REG_A => {
                self.reg(cmos::REG_A) & !A_UIP | if self.update_in_progress() { A_UIP } else { 0 }
            }
            cmos::REG_C => std::mem::take(&mut self.cmos[usize::from(cmos::REG_C)]),
            i => self.cmos[usize::from(i)],
        }
    }

    fn write_data(&mut self, value: u8) {
        match self.index {
            cmos::REG_A => {
                let was_running = self.running();
                self.cmos[usize::from(cmos::REG_A)] = value & !A_UIP;
                if !was_running && self.running() {
                    // Leaving divider reset: the first update comes 500 ms later.
                    self.epoch_ns = self.now_ns;
                    self.ticks = 0;
                    self.next_update = TICKS_PER_S / 2;
                }
            }
            cmos::REG_B => {
                let mut value = value;
                if value & B_SET != 0 {
                    value &= !B_UIE; // setting SET clears UIE
                }
                self.cmos[usize::from(cmos::REG_B)] = value;
                self.update_irqf();
            }
            cmos::REG_C | cmos::REG_D => {} // read-only
            i => self.cmos[usize::from(i)] = value,
        }
    }
}

impl PortDevice for Rtc {
    fn read(&mut self, port: u16, _size: u8) -> u32 {
        if port == CMOS_PORT + 1 {
            u32::from(self.read_data())
        } else {
            0xFF // the index register is write-only
        }
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        let value = value as u8;
        if port == CMOS_PORT + 1 {
            self.write_data(value);
        } else {
            self.index = value & 0x7F;
            self.nmi_disabled = value & NMI_DISABLE != 0;
        }
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
    use proptest::prelude::*;

    const MIB: u64 = 1 << 20;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    fn rd(r: &mut Rtc, index: u8) -> u8 {
        r.write(CMOS_PORT, 1, u32::from(index));
        r.read(CMOS_PORT + 1, 1) as u8
    }

    fn wr(r: &mut Rtc, index: u8, value: u8) {
        r.write(CMOS_PORT, 1, u32::from(index));
        r.write(CMOS_PORT + 1, 1, u32::from(value));
    }

    #[test]
    fn calendar_conversion_round_trips() {
        assert_eq!(DEFAULT_START.to_unix(), 1_767_225_600);
        assert_eq!(DateTime::from_unix(1_767_225_600), DEFAULT_START);
        let leap = DateTime { year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 59 };
        assert_eq!(DateTime::from_unix(leap.to_unix()), leap);
        assert_eq!(DateTime::from_unix(leap.to_unix() + 1).month, 3);
    }

    // Default: BCD, 24-hour; 2026-01-01 was a Thursday (day of week 5).
    #[test]
    fn bcd_default_time() {
        let mut r = Rtc::new(128 * MIB, 1);
        assert_eq!(rd(&mut r, cmos::YEAR), 0x26);
        assert_eq!(rd(&mut r, cmos::CENTURY), 0x20);
        assert_eq!(rd(&mut r, cmos::MONTH), 0x01);
        assert_eq!(rd(&mut r, cmos::DAY_OF_WEEK), 5);
        assert_eq!(rd(&mut r, cmos::REG_D), D_VRT);
        assert_eq!(rd(&mut r, cmos::REG_B), B_24H);
    }

    // DM selects how updates write: BCD vs binary, and the 12-hour PM flag.
    #[test]
    fn bcd_vs_binary_and_12_hour() {
        let mut r = Rtc::new(128 * MIB, 1);
        r.set_time(DateTime { year: 2026, month: 12, day: 31, hour: 23, minute: 59, second: 58 });
        r.advance(S);
        assert_eq!(rd(&mut r, cmos::SECONDS), 0x59);
        assert_eq!(rd(&mut r, cmos::HOURS), 0x23);
        wr(&mut r, cmos::REG_B, B_DM_BINARY | B_24H);
        // Changing DM does not convert the registers: the guest rewrites them.
        for (reg, v) in [
            (cmos::SECONDS, 59),
            (cmos::MINUTES, 59),
            (cmos::HOURS, 23),
            (cmos::DAY_OF_MONTH, 31),
            (cmos::MONTH, 12),
            (cmos::YEAR, 26),
            (cmos::CENTURY, 20),
        ] {
            wr(&mut r, reg, v);
        }
        r.advance(2 * S);
        assert_eq!(rd(&mut r, cmos::SECONDS), 0, "binary write of 00");
        assert_eq!(rd(&mut r, cmos::YEAR), 27);
        assert_eq!(rd(&mut r, cmos::MONTH), 1);
        assert_eq!(rd(&mut r, cmos::DAY_OF_WEEK), 6, "Friday 2027-01-01");
        wr(&mut r, cmos::REG_B, B_DM_BINARY); // 12-hour
        wr(&mut r, cmos::HOURS, HOUR_PM | 11); // 11 PM
        wr(&mut r, cmos::MINUTES, 59);
        wr(&mut r, cmos::SECONDS, 59);
        r.advance(3 * S);
        assert_eq!(rd(&mut r, cmos::HOURS), 12, "12 AM");
        assert_eq!(rd(&mut r, cmos::DAY_OF_MONTH), 2);
    }

    // MC146818A "Update Cycle": UIP is high 244 us before the update.
    #[test]
    fn uip_timing() {
        let mut r = Rtc::new(128 * MIB, 1);
        let uip_start = r.ns_at_tick(TICKS_PER_S - UIP_TICKS);
        r.advance(uip_start - 1);
        assert_eq!(rd(&mut r, cmos::REG_A) & A_UIP, 0);
        assert_eq!(rd(&mut r, cmos::SECONDS), 0);
        r.advance(uip_start);
        assert_eq!(rd(&mut r, cmos::REG_A) & A_UIP, A_UIP);
        assert!(S - uip_start >= 244_000 && S - uip_start < 245_000);
        assert_eq!(rd(&mut r, cmos::SECONDS), 0);
        r.advance(S);
        assert_eq!(rd(&mut r, cmos::REG_A) & A_UIP, 0);
        assert_eq!(rd(&mut r, cmos::SECONDS), 1);
        // SET inhibits updates and UIP.
        wr(&mut r, cmos::REG_B, B_SET | B_24H | B_UIE);
        assert_eq!(rd(&mut r, cmos::REG_B), B_SET | B_24H, "SET clears UIE");
        r.advance(2 * S - 1000);
        assert_eq!(rd(&mut r, cmos::REG_A) & A_UIP, 0);
        r.advance(5 * S);
        assert_eq!(rd(&mut r, cmos::SECONDS), 1);
    }

    // Register A rate select: 1024 Hz (RS = 6) and 2 Hz (RS = 15); C read clears.
    #[test]
    fn periodic_interrupt_rate() {
        let mut r = Rtc::new(128 * MIB, 1);
        wr(&mut r, cmos::REG_B, B_24H | B_PIE);
        let next = r.next_event_ns().unwrap();
        assert_eq!(next, 976_563, "32 ticks of 32.768 kHz");
        r.advance(next - 1);
        assert!(!r.irq_level());
        r.advance(next);
        assert!(r.irq_level());
        assert_eq!(rd(&mut r, cmos::REG_C), C_IRQF | C_PF);
        assert!(!r.irq_level());
        assert_eq!(rd(&mut r, cmos::REG_C), 0);
        wr(&mut r, cmos::REG_A, A_DV_32K | 15);
        assert_eq!(r.next_event_ns(), Some(500 * MS));
        r.advance(499 * MS);
        assert!(!r.irq_level());
        r.advance(500 * MS);
        assert!(r.irq_level());
        wr(&mut r, cmos::REG_A, A_DV_32K | 0);
        assert_eq!(r.next_event_ns(), None);
    }

    // Flags are set whatever the enables; IRQF only for enabled ones.
    #[test]
    fn update_ended_and_alarm() {
        let mut r = Rtc::new(128 * MIB, 1);
        r.advance(S);
        let flags = C_IRQF | C_AF | C_UF;
        // PF is set too (1024 Hz by default) but PIE is off.
        assert_eq!(rd(&mut r, cmos::REG_C), C_PF | C_UF, "UF without UIE: no IRQF");
        wr(&mut r, cmos::REG_B, B_24H | B_AIE);
        wr(&mut r, cmos::SECONDS_ALARM, 0x05);
        wr(&mut r, cmos::MINUTES_ALARM, ALARM_DONT_CARE);
        wr(&mut r, cmos::HOURS_ALARM, ALARM_DONT_CARE);
        r.advance(4 * S);
        assert!(!r.irq_level());
        r.advance(5 * S);
        assert!(r.irq_level());
        assert_eq!(rd(&mut r, cmos::REG_C) & flags, C_IRQF | C_AF | C_UF);
        // The alarm matches once a minute: it fires again at 00:01:05, between 64 and 70.
        r.advance(64 * S);
        assert_eq!(rd(&mut r, cmos::REG_C) & flags, C_UF);
        r.advance(70 * S);
        assert_eq!(rd(&mut r, cmos::REG_C) & flags, C_IRQF | C_AF | C_UF);
    }

    // Divider reset holds the clock; leaving it, the first update is 500 ms later.
    #[test]
    fn divider_reset() {
        let mut r = Rtc::new(128 * MIB, 1);
        wr(&mut r, cmos::REG_A, 0x70);
        r.advance(10 * S);
        assert_eq!(rd(&mut r, cmos::SECONDS), 0);
        wr(&mut r, cmos::REG_A, A_DV_32K | 6);
        r.advance(10 * S + 499 * MS);
        assert_eq!(rd(&mut r, cmos::SECONDS), 0);
        r.advance(10 * S + 500 * MS);
        assert_eq!(rd(&mut r, cmos::SECONDS), 1);
    }

    // The NVRAM bytes BIOSes read.
    #[test]
    fn nvram_memory_and_boot_bytes() {
        let mut r = Rtc::new(5 << 30, 4); // 5 GiB: 3 GiB below the hole, 2 GiB above 4 GiB
        let word = |r: &mut Rtc, lo: u8| u16::from_le_bytes([rd(r, lo), rd(r, lo + 1)]);
        assert_eq!(word(&mut r, cmos::BASE_MEM_LO), 640);
        assert_eq!(word(&mut r, cmos::EXT_MEM_LO), 0xFFFF);
        assert_eq!(word(&mut r, cmos::EXT_MEM2_LO), 0xFFFF);
        assert_eq!(
            word(&mut r, cmos::MEM_ABOVE_16M_LO),
            (((3u64 << 30) - (16 << 20)) >> 16) as u16
        );
        let above = u32::from_le_bytes([
            rd(&mut r, cmos::MEM_ABOVE_4G_LO),
            rd(&mut r, cmos::MEM_ABOVE_4G_MID),
            rd(&mut r, cmos::MEM_ABOVE_4G_HI),
            0,
        ]);
        assert_eq!(u64::from(above), (2 << 30) >> 16);
        assert_eq!(rd(&mut r, cmos::SMP_COUNT), 3);
        assert_eq!(rd(&mut r, cmos::BOOT_FLAG2), BootDevice::HardDisk as u8);
        assert_eq!(rd(&mut r, cmos::DISK_TYPES), 0xF0);
        assert_eq!(rd(&mut r, cmos::EQUIPMENT), 0x06);

        let mut small = Rtc::new(15 * MIB, 1);
        assert_eq!(word(&mut small, cmos::EXT_MEM_LO), 14 * 1024);
        assert_eq!(word(&mut small, cmos::MEM_ABOVE_16M_LO), 0);
        small.set_floppies(FloppyType::M1_44, FloppyType::M1_44);
        small.set_boot_order(&[BootDevice::Floppy, BootDevice::HardDisk, BootDevice::CdRom], false);
        assert_eq!(rd(&mut small, cmos::FLOPPY_TYPES), 0x44);
        assert_eq!(rd(&mut small, cmos::EQUIPMENT), 0x47);
        assert_eq!(rd(&mut small, cmos::BOOT_FLAG2), 0x21);
        assert_eq!(rd(&mut small, cmos::BOOT_FLAG1), 0x31);
        let sum: u16 = (0x10..=0x2D).map(|i| u16::from(small.cmos(i))).sum();
        assert_eq!(u16::from_be_bytes([small.cmos(0x2E), small.cmos(0x2F)]), sum);
    }

    // Index port: bit 7 disables NMIs and is not part of the index; NVRAM is read/write.
    #[test]
    fn index_port_and_nvram() {
        let mut r = Rtc::new(128 * MIB, 1);
        r.write(CMOS_PORT, 1, 0x80 | 0x40);
        assert!(r.nmi_disabled());
        r.write(CMOS_PORT + 1, 1, 0xAB);
        assert_eq!(r.cmos(0x40), 0xAB);
        assert_eq!(r.read(CMOS_PORT, 1), 0xFF);
        wr(&mut r, 0x40, 0xCD);
        assert!(!r.nmi_disabled());
        assert_eq!(rd(&mut r, 0x40), 0xCD);
        wr(&mut r, cmos::REG_D, 0);
        assert_eq!(rd(&mut r, cmos::REG_D), D_VRT, "register D is read-only");
    }

    proptest! {
        // Updates over any span keep the registers equal to start + elapsed seconds.
        #[test]
        fn time_follows_virtual_seconds(start in 0i64..4_000_000_000, secs in 0u64..400_000_000, binary: bool) {
            let mut r = Rtc::new(128 * MIB, 1);
            if binary {
                wr(&mut r, cmos::REG_B, B_24H | B_DM_BINARY);
            }
            let t0 = DateTime::from_unix(start);
            r.set_time(t0);
            r.advance(secs * S + S / 2);
            prop_assert_eq!(r.time(), DateTime::from_unix(start + secs as i64));
            let dow = (start + secs as i64).div_euclid(DAY) + 4;
            let dow_reg = rd(&mut r, cmos::DAY_OF_WEEK);
            prop_assert_eq!(i64::from(r.decode(dow_reg)), dow.rem_euclid(7) + 1);
        }
    }
}
