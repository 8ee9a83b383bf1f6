//! The VMX-preemption timer (SDM Vol. 3C 26.5.1 "VMX-Preemption Timer", 27.7.4
//! "VMX-Preemption Timer", 28.3.4 "Saving Non-Register State"): with the pin-based
//! control "activate VMX-preemption timer", VM entry loads the timer from the
//! VMX-preemption timer-value field and it "counts down by 1 every time bit X in the
//! TSC changes due to a TSC increment", X being IA32_VMX_MISC bits 4:0. When it reaches
//! 0 a VM exit with reason 52 occurs; a value of 0 at VM entry exits before the first
//! guest instruction.
//!
//! The TSC the timer follows is hvsim's deterministic clock (one tick per retired
//! instruction or idle nanosecond, a 1 GHz virtual TSC), without the guest's TSC offset.

/// A running VMX-preemption timer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreemptionTimer {
    /// The TSC when VM entry loaded the timer.
    pub start: u64,
    /// The value loaded.
    pub value: u32,
    /// X: the timer counts when bit X of the TSC changes (IA32_VMX_MISC bits 4:0).
    pub rate: u8,
}

impl PreemptionTimer {
    /// Starts the timer at TSC `now` with `value`.
    pub fn start(now: u64, value: u32, rate: u8) -> Self {
        Self { start: now, value, rate: rate & 31 }
    }

    /// The number of times bit X of the TSC changed between the start and `now`.
    fn ticks(&self, now: u64) -> u64 {
        (now >> self.rate).saturating_sub(self.start >> self.rate)
    }

    /// The timer value at TSC `now` (0 once expired).
    pub fn remaining(&self, now: u64) -> u32 {
        u64::from(self.value).saturating_sub(self.ticks(now)) as u32
    }

    /// Whether the timer has counted down to 0 at TSC `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.remaining(now) == 0
    }

    /// The first TSC value at which the timer is 0.
    pub fn deadline(&self) -> u64 {
        ((self.start >> self.rate).saturating_add(u64::from(self.value)))
            .checked_shl(u32::from(self.rate))
            .filter(|d| d >> self.rate == (self.start >> self.rate) + u64::from(self.value))
            .unwrap_or(u64::MAX)
            .max(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 26.5.1: the timer decrements when bit X of the TSC changes, so the first
    /// decrement may come after fewer than 2^X ticks.
    #[test]
    fn counts_on_bit_x_changes() {
        let t = PreemptionTimer::start(30, 3, 5);
        assert_eq!(t.remaining(31), 3);
        assert_eq!(t.remaining(32), 2, "bit 5 changed at TSC 32");
        assert_eq!(t.remaining(95), 1);
        assert_eq!(t.remaining(96), 0);
        assert_eq!(t.deadline(), 96);
        assert!(t.expired(96) && !t.expired(95));
    }

    #[test]
    fn zero_is_expired_at_start() {
        let t = PreemptionTimer::start(1000, 0, 5);
        assert!(t.expired(1000));
        assert_eq!(t.deadline(), 1000);
    }

    #[test]
    fn deadline_saturates() {
        let t = PreemptionTimer::start(u64::MAX - 10, u32::MAX, 31);
        assert_eq!(t.deadline(), u64::MAX);
    }
}
