//! INT 1Ah time services and the BDA tick count, on the virtual clock.
//!
//! hvsim's clocks derive from retired instructions, never from host time. The BIOS
//! counts [`INSNS_PER_SECOND`] instructions as one second (the TSC counts one per
//! instruction: a 1 GHz TSC). The tick count runs at the PC's 18.2 Hz (the PIT's input
//! clock divided by 65536) from midnight of [`START_DATE`]; the real-time clock starts
//! at [`START_DATE`] 00:00:00. Setting either (AH=01h, 03h, 05h) moves it by an offset.
//!
//! The count the BIOS reads is the machine's retired-instruction count, which the run
//! loop brings up to date per decoded block: inside a stub it lags by the few stub
//! instructions before the OUT. That is deterministic, and far below a tick.

use super::{bda, reg, Bios, Call, Outcome, Regs};
use crate::cpu::fault::Fault;
use crate::machine::Machine;
use hvsim_devices::pc;
use hvsim_devices::rtc::DateTime;
use hvsim_mmu::Gpa;

/// Retired instructions per second of virtual time.
pub const INSNS_PER_SECOND: u64 = 1_000_000_000;
/// The date the virtual clock starts at, midnight: (year, month, day).
pub const START_DATE: (u16, u8, u8) = (2025, 1, 1);
/// Timer ticks in a day: 24 h at PIT_HZ / 65536 (the PC's 1800B0h).
pub const TICKS_PER_DAY: u64 = 0x18_00B0;
/// The PIT divisor the BIOS programs for the 18.2 Hz tick.
const TICK_DIVISOR: u64 = 65536;
const SECONDS_PER_DAY: u64 = 86_400;

/// AH=86h "function not supported", for unknown INT 1Ah functions (PCI BIOS, ...).
const NOT_SUPPORTED: u8 = 0x86;

/// Offsets the guest set, and the rollover bookkeeping.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Clock {
    /// Added to the elapsed ticks (AH=01h).
    tick_offset: i64,
    /// Added to the elapsed seconds (AH=03h, 05h).
    second_offset: i64,
    /// The day number the tick count was last read in (for the midnight flag).
    last_day: u64,
}

/// Instructions for `us` microseconds.
pub fn micros_to_insns(us: u64) -> u64 {
    (u128::from(us) * u128::from(INSNS_PER_SECOND) / 1_000_000).min(u128::from(u64::MAX)) as u64
}

/// Ticks since the start, with the guest's offset.
fn ticks(m: &Machine, clock: &Clock) -> u64 {
    let elapsed = u128::from(m.cpu.insn_count) * u128::from(pc::PIT_HZ)
        / (u128::from(TICK_DIVISOR) * u128::from(INSNS_PER_SECOND));
    (elapsed as i128 + i128::from(clock.tick_offset)).max(0) as u64
}

/// Seconds since the start date's midnight, with the guest's offset.
fn seconds(m: &Machine, clock: &Clock) -> u64 {
    let s = m.cpu.insn_count / INSNS_PER_SECOND;
    (i128::from(s) + i128::from(clock.second_offset)).max(0) as u64
}

/// Writes the tick count and the midnight flag to the BDA.
pub(super) fn refresh_bda(m: &mut Machine, bios: &mut Bios) {
    let t = ticks(m, &bios.clock);
    let day = t / TICKS_PER_DAY;
    if day != bios.clock.last_day {
        m.phys_write(Gpa(bda::TIMER_ROLLOVER), &[1]);
        bios.clock.last_day = day;
    }
    m.phys_write(Gpa(bda::TIMER_TICKS), &((t % TICKS_PER_DAY) as u32).to_le_bytes());
}

fn bcd(v: u64) -> u8 {
    (((v / 10) % 10) << 4 | (v % 10)) as u8
}

fn from_bcd(v: u8) -> Option<u64> {
    let (hi, lo) = (v >> 4, v & 0xF);
    (hi < 10 && lo < 10).then_some(u64::from(hi) * 10 + u64::from(lo))
}

/// Days since 1970-01-01 of a civil date (the RTC model's calendar arithmetic).
fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let date = DateTime { year: y, month: m as u8, day: d as u8, hour: 0, minute: 0, second: 0 };
    date.to_unix().div_euclid(SECONDS_PER_DAY as i64)
}

/// The civil date of a day number (days since 1970-01-01).
fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let date = DateTime::from_unix(z * SECONDS_PER_DAY as i64);
    (date.year, u64::from(date.month), u64::from(date.day))
}

fn start_day() -> i64 {
    let (y, mo, d) = START_DATE;
    days_from_civil(i64::from(y), u64::from(mo), u64::from(d))
}

/// INT 1Ah.
pub(super) fn int1a(m: &mut Machine, c: &mut Call) -> Result<Outcome, Fault> {
    let ah = m.hi(reg::AX);
    match ah {
        // Read the tick count: CX:DX = ticks since midnight, AL = midnight passed since
        // the last read (then cleared).
        0x00 => {
            refresh_bda(m, c.bios);
            let t = super::phys_u16(m, bda::TIMER_TICKS + 2);
            let l = super::phys_u16(m, bda::TIMER_TICKS);
            let flag = super::phys_u8(m, bda::TIMER_ROLLOVER);
            m.phys_write(Gpa(bda::TIMER_ROLLOVER), &[0]);
            m.set_r16(reg::CX, t);
            m.set_r16(reg::DX, l);
            m.set_lo(reg::AX, flag);
        }
        // Set the tick count from CX:DX.
        0x01 => {
            let want = (u64::from(m.r16(reg::CX)) << 16) | u64::from(m.r16(reg::DX));
            let now = ticks(m, &c.bios.clock);
            let day_start = now - now % TICKS_PER_DAY;
            c.bios.clock.tick_offset += (day_start + want % TICKS_PER_DAY) as i64 - now as i64;
            refresh_bda(m, c.bios);
            m.phys_write(Gpa(bda::TIMER_ROLLOVER), &[0]);
        }
        // Read the RTC time: CH = hours, CL = minutes, DH = seconds (BCD), DL = 0 (no
        // daylight saving).
        0x02 => {
            let s = seconds(m, &c.bios.clock) % SECONDS_PER_DAY;
            m.set_r16(reg::CX, u16::from_le_bytes([bcd((s / 60) % 60), bcd(s / 3600)]));
            m.set_r16(reg::DX, u16::from_le_bytes([0, bcd(s % 60)]));
            c.set_cf(false);
        }
        // Read the RTC date: CH = century, CL = year, DH = month, DL = day (BCD).
        0x04 => {
            let day = start_day() + (seconds(m, &c.bios.clock) / SECONDS_PER_DAY) as i64;
            let (y, mo, d) = civil_from_days(day);
            let y = y.max(0) as u64;
            m.set_r16(reg::CX, u16::from_le_bytes([bcd(y % 100), bcd(y / 100)]));
            m.set_r16(reg::DX, u16::from_le_bytes([bcd(d), bcd(mo)]));
            c.set_cf(false);
        }
        // Set the RTC time (CH:CL:DH) or date (CH CL DH DL), in BCD.
        0x03 | 0x05 => {
            let now = seconds(m, &c.bios.clock);
            let (day, tod) = (now / SECONDS_PER_DAY, now % SECONDS_PER_DAY);
            let (ch, cl, dh, dl) = (m.hi(reg::CX), m.lo(reg::CX), m.hi(reg::DX), m.lo(reg::DX));
            let target = if ah == 0x03 {
                match (from_bcd(ch), from_bcd(cl), from_bcd(dh)) {
                    (Some(h), Some(mi), Some(s)) if h < 24 && mi < 60 && s < 60 => {
                        Some(day * SECONDS_PER_DAY + h * 3600 + mi * 60 + s)
                    }
                    _ => None,
                }
            } else {
                match (from_bcd(ch), from_bcd(cl), from_bcd(dh), from_bcd(dl)) {
                    (Some(cc), Some(yy), Some(mo), Some(d))
                        if (1..=12).contains(&mo) && (1..=31).contains(&d) =>
                    {
                        let days = days_from_civil((cc * 100 + yy) as i64, mo, d) - start_day();
                        Some((days * SECONDS_PER_DAY as i64 + tod as i64).max(0) as u64)
                    }
                    _ => None,
                }
            };
            match target {
                Some(t) => {
                    c.bios.clock.second_offset += t as i64 - now as i64;
                    c.set_cf(false);
                }
                None => c.set_cf(true),
            }
        }
        _ => {
            m.set_hi(reg::AX, NOT_SUPPORTED);
            c.set_cf(true);
        }
    }
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2025, 1, 1)), (2025, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29) + 1), (2024, 3, 1));
        assert_eq!(civil_from_days(days_from_civil(1999, 12, 31) + 1), (2000, 1, 1));
    }

    #[test]
    fn bcd_and_tick_rate() {
        assert_eq!(bcd(59), 0x59);
        assert_eq!(from_bcd(0x59), Some(59));
        assert_eq!(from_bcd(0x5A), None);
        // A day of ticks at PIT_HZ / 65536 is the PC's 1800B0h to within two ticks (IBM
        // derived 1800B0h from a 1.19318 MHz clock).
        let per_day = SECONDS_PER_DAY * pc::PIT_HZ / TICK_DIVISOR;
        assert!(per_day.abs_diff(TICKS_PER_DAY) <= 2, "{per_day:#x}");
        assert_eq!(micros_to_insns(1), INSNS_PER_SECOND / 1_000_000);
    }
}
