//! The local APIC timer (SDM Vol. 3A 11.5.4 "APIC Timer"): a 32-bit down-counter clocked
//! at the timer frequency divided by the divide configuration, in one-shot or periodic
//! mode, or the TSC-deadline mode of 11.5.4.1. All times are virtual nanoseconds; every
//! conversion is exact integer arithmetic (u128), so a run is reproducible.

use super::regs;

const NS_PER_S: u128 = 1_000_000_000;

/// The divisor selected by a divide configuration value (bits 0, 1, 3): SDM Vol. 3A
/// Figure 11-10: 000 /2, 001 /4, 010 /8, 011 /16, 100 /32, 101 /64, 110 /128, 111 /1.
pub fn divisor(config: u32) -> u64 {
    let v = (config & 3) | ((config >> 1) & 4);
    if v == 7 {
        1
    } else {
        2 << v
    }
}

/// How the TSC relates to virtual time: `tsc(t) = t * hz / 10^9 + offset` (the machine
/// updates `offset` when the guest writes the TSC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TscClock {
    /// TSC ticks per second of virtual time.
    pub hz: u64,
    /// The TSC at virtual time 0.
    pub offset: u64,
}

impl TscClock {
    /// The TSC at virtual time `now_ns`.
    pub fn tsc_at(&self, now_ns: u64) -> u64 {
        ((u128::from(now_ns) * u128::from(self.hz) / NS_PER_S) as u64).wrapping_add(self.offset)
    }

    /// The first virtual time at which the TSC is at least `tsc`: 0 for a value the TSC
    /// already had at time 0, `None` if never (past 2^64 ns, or a clock that does not
    /// run).
    pub fn ns_at(&self, tsc: u64) -> Option<u64> {
        if self.hz == 0 {
            return None;
        }
        let Some(ticks) = tsc.checked_sub(self.offset) else { return Some(0) };
        let ticks = u128::from(ticks);
        u64::try_from((ticks * NS_PER_S).div_ceil(u128::from(self.hz))).ok()
    }
}

/// The counting state of the one-shot/periodic timer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CountDown {
    /// Timer input clock (before the divider), in Hz.
    pub timer_hz: u64,
    /// The divide configuration register.
    pub divide_config: u32,
    /// The initial count register (the periodic reload value).
    pub initial: u32,
    /// The count at `start_ns` (the initial count, or the current count when the divider
    /// changed).
    start_count: u32,
    /// When the counter held `start_count`.
    start_ns: u64,
}

impl CountDown {
    /// A stopped counter.
    pub fn new(timer_hz: u64) -> Self {
        Self { timer_hz, divide_config: 0, initial: 0, start_count: 0, start_ns: 0 }
    }

    /// Counter ticks from `start_ns` to `now_ns`.
    fn ticks(&self, now_ns: u64) -> u64 {
        let elapsed = u128::from(now_ns.saturating_sub(self.start_ns));
        let per_s = NS_PER_S * u128::from(divisor(self.divide_config));
        u64::try_from(elapsed * u128::from(self.timer_hz) / per_s).unwrap_or(u64::MAX)
    }

    /// The first time at which `n` ticks have elapsed since `start_ns`.
    fn time_of_tick(&self, n: u64) -> Option<u64> {
        if self.timer_hz == 0 {
            return None;
        }
        let ns = (u128::from(n) * u128::from(divisor(self.divide_config)) * NS_PER_S)
            .div_ceil(u128::from(self.timer_hz));
        u64::try_from(ns).ok()?.checked_add(self.start_ns)
    }

    /// Loads the initial count at `now_ns` (a write to the initial-count register; 0
    /// stops the timer).
    pub fn load(&mut self, initial: u32, now_ns: u64) {
        self.initial = initial;
        self.start_count = initial;
        self.start_ns = now_ns;
    }

    /// Stops the counter (current count 0).
    pub fn stop(&mut self) {
        self.load(0, 0);
    }

    /// The current-count register at `now_ns`.
    pub fn current(&self, now_ns: u64, periodic: bool) -> u32 {
        let ticks = self.ticks(now_ns);
        let start = u64::from(self.start_count);
        if ticks < start {
            (start - ticks) as u32
        } else if periodic && self.initial != 0 && self.start_count != 0 {
            let into_period = (ticks - start) % u64::from(self.initial);
            (u64::from(self.initial) - into_period) as u32
        } else {
            0
        }
    }

    /// Changes the divide configuration at `now_ns`, keeping the current count.
    pub fn set_divide(&mut self, config: u32, now_ns: u64, periodic: bool) {
        let current = self.current(now_ns, periodic);
        self.divide_config = config & regs::TIMER_DIVIDE_WRITABLE;
        self.start_count = current;
        self.start_ns = now_ns;
    }

    /// The first expiry (the counter reaching zero) strictly after `after_ns`; `None`
    /// when the timer is stopped.
    pub fn next_expiry(&self, after_ns: u64, periodic: bool) -> Option<u64> {
        if self.start_count == 0 {
            return None;
        }
        let start = u64::from(self.start_count);
        let first = self.time_of_tick(start)?;
        if first > after_ns {
            return Some(first);
        }
        if !periodic || self.initial == 0 {
            return None;
        }
        // Periods completed by `after_ns`; the next one ends after it.
        let ticks = self.ticks(after_ns);
        let k = (ticks - start) / u64::from(self.initial) + 1;
        let n = start.checked_add(k.checked_mul(u64::from(self.initial))?)?;
        self.time_of_tick(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn count_down_matches_its_definition(
            hz in 1u64..4_000_000_000,
            config in 0u32..16,
            initial in 1u32..,
            start in 0u64..1 << 40,
            dt in 0u64..1 << 36,
            periodic: bool,
        ) {
            // SDM Vol. 3A 11.5.4: the count decrements once per `divisor` input clocks.
            let mut c = CountDown::new(hz);
            c.divide_config = config & regs::TIMER_DIVIDE_WRITABLE;
            c.load(initial, start);
            let now = start + dt;
            let ticks = u128::from(dt) * u128::from(hz) / (NS_PER_S * u128::from(divisor(config)));
            let current = c.current(now, periodic);
            if ticks < u128::from(initial) {
                prop_assert_eq!(u128::from(current), u128::from(initial) - ticks);
            } else if periodic {
                prop_assert!(current >= 1 && current <= initial);
            } else {
                prop_assert_eq!(current, 0);
            }
            // The next expiry is exactly when the count next reaches zero.
            match c.next_expiry(now, periodic) {
                Some(t) => {
                    // The count reaches zero at tick n = initial + k * initial, the first
                    // such tick after `now`; t is the first time at which n ticks passed.
                    let (init, now_ticks) = (u128::from(initial), ticks);
                    let n = if now_ticks < init { init } else { init + ((now_ticks - init) / init + 1) * init };
                    prop_assert!(t > now);
                    prop_assert!(u128::from(c.ticks(t)) >= n);
                    prop_assert!(u128::from(c.ticks(t - 1)) < n);
                }
                None => prop_assert!(!periodic && ticks >= u128::from(initial)),
            }
        }
    }

    #[test]
    fn divide_configuration_encodings() {
        // SDM Vol. 3A Figure 11-10 "Divide Configuration Register".
        let table = [(0b0000, 2), (0b0001, 4), (0b0010, 8), (0b0011, 16)];
        let table2 = [(0b1000, 32), (0b1001, 64), (0b1010, 128), (0b1011, 1)];
        for (config, div) in table.into_iter().chain(table2) {
            assert_eq!(divisor(config), div, "config {config:#b}");
        }
    }

    #[test]
    fn tsc_clock_round_trips_exactly() {
        let c = TscClock { hz: 2_500_000_000, offset: 1000 };
        assert_eq!(c.tsc_at(0), 1000);
        assert_eq!(c.tsc_at(1), 1002);
        assert_eq!(c.ns_at(1003), Some(2), "2.5 ticks per ns: tick 3 arrives at 2 ns");
        assert_eq!(c.tsc_at(2), 1005);
        assert_eq!(c.ns_at(999), Some(0), "before the clock's origin");
        assert_eq!(TscClock { hz: 0, offset: 0 }.ns_at(5), None, "a stopped clock");
        for t in [1001u64, 1002, 1003, 123_456_789] {
            let ns = c.ns_at(t).unwrap();
            assert!(c.tsc_at(ns) >= t && (ns == 0 || c.tsc_at(ns - 1) < t));
        }
    }
}
