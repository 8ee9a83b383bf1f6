//! The ACPI fixed-hardware PM block of the PIIX4 at `pc::ACPI_PM_BASE` (ACPI spec 6.x
//! 4.8.3 "Fixed Hardware Registers"): PM1a status and enable, PM1a control, and the PM
//! timer. Offsets are `pc::ACPI_PM1A_EVT_BLK`, `pc::ACPI_PM1A_CNT_BLK` and
//! `pc::ACPI_PM_TMR_BLK` relative to the block's base.
//!
//! Time is virtual: the machine calls [`AcpiPm::advance`]. Writing SLP_EN with SLP_TYP =
//! `pc::ACPI_S5_SLP_TYP` requests power-off, which the machine takes with
//! [`AcpiPm::take_power_off`] and ends the run.

use crate::bus::PortDevice;
use crate::pc;
use std::any::Any;

/// PM1 status/enable bit 0: PM timer carry (bit 23 of the timer changed).
pub const TMR: u16 = 1 << 0;
/// PM1 status bit 4: bus-master activity (status only).
pub const BM_STS: u16 = 1 << 4;
/// PM1 status/enable bit 5: global lock release.
pub const GBL: u16 = 1 << 5;
/// PM1 status/enable bit 8: power button.
pub const PWRBTN: u16 = 1 << 8;
/// PM1 status/enable bit 9: sleep button.
pub const SLPBTN: u16 = 1 << 9;
/// PM1 status/enable bit 10: RTC alarm.
pub const RTC: u16 = 1 << 10;
/// PM1 status bit 15: woke from sleep.
pub const WAK_STS: u16 = 1 << 15;
/// The PM1 enable bits that exist.
pub const PM1_EN_WRITABLE: u16 = TMR | GBL | PWRBTN | SLPBTN | RTC;

/// PM1 control bit 0: SCI_EN (power-management events raise SCI, not SMI).
pub const SCI_EN: u16 = 1 << 0;
/// PM1 control bit 1: BM_RLD.
pub const BM_RLD: u16 = 1 << 1;
/// PM1 control bit 2: GBL_RLS (write-only).
pub const GBL_RLS: u16 = 1 << 2;
/// PM1 control bits 12:10: SLP_TYP.
pub const SLP_TYP_SHIFT: u16 = 10;
/// PM1 control bit 13: SLP_EN (write-only).
pub const SLP_EN: u16 = 1 << 13;
/// PM1 control bits that hold state.
pub const PM1_CNT_WRITABLE: u16 = SCI_EN | BM_RLD | (7 << SLP_TYP_SHIFT);

/// Offsets in the block.
const PM1_STS: u16 = pc::ACPI_PM1A_EVT_BLK - pc::ACPI_PM_BASE;
const PM1_EN: u16 = PM1_STS + 2;
const PM1_CNT: u16 = pc::ACPI_PM1A_CNT_BLK - pc::ACPI_PM_BASE;
const PM_TMR: u16 = pc::ACPI_PM_TMR_BLK - pc::ACPI_PM_BASE;

/// The PM timer is 24 bits wide (FADT TMR_VAL_EXT = 0).
pub const PM_TIMER_MASK: u32 = 0x00FF_FFFF;

const NS_PER_S: u128 = 1_000_000_000;

/// PM timer ticks at virtual time `now_ns` (exact: floor(now * 3579545 / 10^9)).
pub fn pm_timer_ticks(now_ns: u64) -> u64 {
    (u128::from(now_ns) * u128::from(pc::ACPI_PM_TIMER_HZ) / NS_PER_S) as u64
}

/// The first virtual time at which the PM timer has counted `ticks`.
fn time_of_ticks(ticks: u64) -> u64 {
    let ns = (u128::from(ticks) * NS_PER_S).div_ceil(u128::from(pc::ACPI_PM_TIMER_HZ));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The PM block.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AcpiPm {
    base: u16,
    sts: u16,
    en: u16,
    cnt: u16,
    now_ns: u64,
    /// Bit-23 periods of the timer already reflected in TMR_STS.
    timer_carries: u64,
    power_off: bool,
}

impl Default for AcpiPm {
    fn default() -> Self {
        Self::new(pc::ACPI_PM_BASE)
    }
}

impl AcpiPm {
    /// The block at I/O `base`, after reset. SCI_EN starts set: hvsim has no SMM legacy
    /// mode to leave (its FADT has SMI_CMD = 0, so the OS finds ACPI already enabled).
    pub fn new(base: u16) -> Self {
        Self { base, sts: 0, en: 0, cnt: SCI_EN, now_ns: 0, timer_carries: 0, power_off: false }
    }

    /// Moves the block to I/O `base` (the PIIX4 PMBA register was written).
    pub fn set_base(&mut self, base: u16) {
        self.base = base;
    }

    /// Tells the block the virtual time; latches TMR_STS when bit 23 of the timer has
    /// changed (ACPI 4.8.3.3: "TMR_STS is set ... every time the last bit of the timer
    /// (bit 23 or bit 31) goes from 0 to 1 or 1 to 0").
    pub fn advance(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        let carries = pm_timer_ticks(self.now_ns) >> 23;
        if carries != self.timer_carries {
            self.timer_carries = carries;
            self.sts |= TMR;
        }
    }

    /// When TMR_STS next sets, while TMR_EN asks for an SCI for it.
    pub fn next_event_ns(&self) -> Option<u64> {
        (self.en & TMR != 0).then(|| time_of_ticks((self.timer_carries + 1) << 23))
    }

    /// The PM timer register.
    pub fn pm_timer(&self) -> u32 {
        pm_timer_ticks(self.now_ns) as u32 & PM_TIMER_MASK
    }

    /// The SCI line level (`pc::ACPI_SCI_IRQ`, level-triggered): an enabled status bit
    /// is set and SCI_EN routes events to SCI.
    pub fn sci_level(&self) -> bool {
        self.cnt & SCI_EN != 0 && self.sts & self.en & PM1_EN_WRITABLE != 0
    }

    /// The power button was pressed (an ACPI shutdown request to the OS).
    pub fn press_power_button(&mut self) {
        self.sts |= PWRBTN;
    }

    /// Whether the guest asked for S5 (soft off); clears the request.
    pub fn take_power_off(&mut self) -> bool {
        std::mem::take(&mut self.power_off)
    }

    /// PM1 status.
    pub fn pm1_status(&self) -> u16 {
        self.sts
    }

    fn read_byte(&self, off: u16) -> u8 {
        let (reg, shift) = match off {
            PM1_STS..=0x1 => (u32::from(self.sts), off - PM1_STS),
            PM1_EN..=0x3 => (u32::from(self.en), off - PM1_EN),
            PM1_CNT..=0x5 => (u32::from(self.cnt), off - PM1_CNT),
            PM_TMR..=0xB => (self.pm_timer(), off - PM_TMR),
            _ => return 0,
        };
        (reg >> (8 * shift)) as u8
    }

    /// A write of the bytes of `value` selected by `byte_mask` to a 16-bit register.
    fn write_register(&mut self, reg: u16, value: u16, byte_mask: u16) {
        let value = value & byte_mask;
        match reg {
            PM1_STS => self.sts &= !value,
            PM1_EN => self.en = (self.en & !byte_mask) | (value & PM1_EN_WRITABLE),
            PM1_CNT => {
                let writable = byte_mask & PM1_CNT_WRITABLE;
                self.cnt = (self.cnt & !writable) | (value & writable);
                if value & SLP_EN != 0 {
                    let slp_typ = (self.cnt >> SLP_TYP_SHIFT) & 7;
                    // Only S5 is modelled; other sleep states are ignored.
                    if slp_typ == pc::ACPI_S5_SLP_TYP {
                        self.power_off = true;
                    }
                }
            }
            _ => {}
        }
    }
}

impl PortDevice for AcpiPm {
    fn read(&mut self, port: u16, size: u8) -> u32 {
        let off = port.wrapping_sub(self.base);
        (0..u16::from(size.min(4)))
            .fold(0, |acc, i| acc | (u32::from(self.read_byte(off.wrapping_add(i))) << (8 * i)))
    }

    fn write(&mut self, port: u16, size: u8, value: u32) {
        let off = port.wrapping_sub(self.base);
        for reg in [PM1_STS, PM1_EN, PM1_CNT] {
            // The bytes of this 16-bit register the access covers.
            let (mut v, mut mask) = (0u16, 0u16);
            for i in 0..u16::from(size.min(4)) {
                let at = off.wrapping_add(i);
                if at == reg || at == reg + 1 {
                    let b = u16::from((value >> (8 * i)) as u8);
                    v |= b << (8 * (at - reg));
                    mask |= 0xFF << (8 * (at - reg));
                }
            }
            if mask != 0 {
                self.write_register(reg, v, mask);
            }
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

    const BASE: u16 = pc::ACPI_PM_BASE;

    #[test]
    fn pm_timer_runs_at_3_579545_mhz_and_wraps_at_24_bits() {
        // ACPI 4.8.3.3: a 24-bit counter at 3.579545 MHz.
        let mut pm = AcpiPm::default();
        assert_eq!(pm.read(pc::ACPI_PM_TMR_BLK, 4), 0);
        pm.advance(1_000_000_000);
        assert_eq!(pm.read(pc::ACPI_PM_TMR_BLK, 4), 3_579_545);
        pm.advance(1_000_000_279);
        assert_eq!(pm.read(pc::ACPI_PM_TMR_BLK, 4), 3_579_545, "0.9988 tick later");
        pm.advance(1_000_000_280);
        assert_eq!(pm.read(pc::ACPI_PM_TMR_BLK, 4), 3_579_546);
        // 2^24 ticks = 4.6869 s: the counter wraps.
        let wrap_ns = time_of_ticks(1 << 24);
        pm.advance(wrap_ns);
        assert_eq!(pm.read(pc::ACPI_PM_TMR_BLK, 4), 0);
        assert_eq!(pm.read(pc::ACPI_PM_TMR_BLK + 3, 1), 0, "bits 31:24 read 0");
        pm.write(pc::ACPI_PM_TMR_BLK, 4, 0x1234);
        assert_eq!(pm.read(pc::ACPI_PM_TMR_BLK, 4), 0, "read-only");
    }

    #[test]
    fn timer_carry_sets_tmr_sts_and_raises_sci_when_enabled() {
        // ACPI 4.8.3.1: TMR_STS on each change of bit 23; SCI while TMR_STS & TMR_EN.
        let mut pm = AcpiPm::default();
        assert_eq!(pm.next_event_ns(), None);
        pm.write(BASE + 2, 2, u32::from(TMR));
        let carry = pm.next_event_ns().unwrap();
        assert_eq!(carry, time_of_ticks(1 << 23));
        pm.advance(carry - 1);
        assert!(!pm.sci_level());
        pm.advance(carry);
        assert_eq!(pm.read(BASE, 2) as u16 & TMR, TMR);
        assert!(pm.sci_level());
        pm.write(BASE, 2, u32::from(TMR));
        assert_eq!(pm.read(BASE, 2), 0, "write one to clear");
        assert!(!pm.sci_level());
        assert_eq!(pm.next_event_ns(), Some(time_of_ticks(2 << 23)));
    }

    #[test]
    fn status_is_write_one_to_clear_and_enable_holds_defined_bits() {
        let mut pm = AcpiPm::default();
        pm.press_power_button();
        pm.write(BASE, 2, 0);
        assert_eq!(pm.read(BASE, 2) as u16, PWRBTN, "writing 0 clears nothing");
        pm.write(BASE + 2, 2, 0xFFFF);
        assert_eq!(pm.read(BASE + 2, 2) as u16, PM1_EN_WRITABLE);
        assert!(pm.sci_level());
        pm.write(BASE + 4, 2, 0);
        assert!(!pm.sci_level(), "SCI_EN clear: events would go to SMI");
        // A dword write at the event block reaches status (low half) and enable (high).
        pm.write(BASE, 4, u32::from(PWRBTN));
        assert_eq!(pm.read(BASE, 4), 0);
    }

    #[test]
    fn slp_en_with_s5_requests_power_off() {
        // ACPI 4.8.3.2.1 / 16.1.7: SLP_TYP from \_S5, then SLP_EN.
        let mut pm = AcpiPm::default();
        assert_eq!(pm.read(pc::ACPI_PM1A_CNT_BLK, 2) as u16, SCI_EN);
        let s5 = (pc::ACPI_S5_SLP_TYP << SLP_TYP_SHIFT) | SCI_EN;
        pm.write(pc::ACPI_PM1A_CNT_BLK, 2, u32::from(s5));
        assert!(!pm.take_power_off(), "SLP_TYP alone does nothing");
        pm.write(pc::ACPI_PM1A_CNT_BLK, 2, u32::from(s5 | SLP_EN));
        assert!(pm.take_power_off());
        assert!(!pm.take_power_off(), "taken");
        assert_eq!(pm.read(pc::ACPI_PM1A_CNT_BLK, 2) as u16 & SLP_EN, 0, "SLP_EN is write-only");
        // Another sleep type is not S5.
        let s3 = (((pc::ACPI_S5_SLP_TYP + 1) & 7) << SLP_TYP_SHIFT) | SLP_EN;
        pm.write(pc::ACPI_PM1A_CNT_BLK, 2, u32::from(s3));
        assert!(!pm.take_power_off());
        // A byte write of the high half (SLP_TYP and SLP_EN live there) works too.
        pm.write(pc::ACPI_PM1A_CNT_BLK + 1, 1, u32::from((pc::ACPI_S5_SLP_TYP << 2) | 0x20));
        assert!(pm.take_power_off());
    }

    proptest! {
        #[test]
        fn pm_timer_is_exact_and_monotonic_modulo_wrap(a in 0u64..1u64 << 50, d in 0u64..1_000_000) {
            // floor(t * 3579545 / 10^9), exactly.
            let mut pm = AcpiPm::default();
            pm.advance(a);
            let t0 = pm.pm_timer();
            prop_assert_eq!(u128::from(t0), (u128::from(a) * 3_579_545 / 1_000_000_000) & 0xFF_FFFF);
            pm.advance(a + d);
            let t1 = pm.pm_timer();
            let delta = t1.wrapping_sub(t0) & PM_TIMER_MASK;
            prop_assert!(u64::from(delta) <= d * 3_579_545 / 1_000_000_000 + 1);
        }

        #[test]
        fn random_port_traffic_never_panics(ops in proptest::collection::vec((0u16..0x40, 0u8..3, any::<u32>()), 1..200)) {
            let mut pm = AcpiPm::default();
            for (off, size, value) in ops {
                let size = [1, 2, 4][usize::from(size)];
                pm.write(BASE + off, size, value);
                let _ = pm.read(BASE + off, size);
                pm.advance(u64::from(value));
            }
        }
    }
}
