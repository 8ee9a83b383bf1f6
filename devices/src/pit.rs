//! The i8254 programmable interval timer (three counters at 0x40-0x42, control word at
//! 0x43) and the PC's system control port B (0x61: channel 2 gate, speaker data, refresh
//! toggle, OUT2).
//!
//! Follows the Intel 8254 datasheet (order 231164): modes 0-5, binary and BCD counting,
//! LSB/MSB/LSB-then-MSB access, the counter latch command and the read-back command.
//!
//! Time is the machine's virtual time in nanoseconds ([`Pit::advance`]), converted to PIT
//! clocks with [`PIT_HZ`] in integer arithmetic from a fixed epoch (virtual time 0), so
//! nothing drifts. Counters are not stepped clock by clock: each channel remembers the clock
//! at which its count was loaded and computes its count and OUT from the elapsed clocks, so a
//! long jump in time costs nothing. Port accesses happen at the time of the last `advance`.
//!
//! A count written while a counter runs takes effect as the datasheet says: at once in
//! modes 0 and 4, at the next trigger in modes 1 and 5, at the end of the current period in
//! modes 2 and 3.

use crate::bus::PortDevice;
use crate::pc::{PIT_HZ, PIT_PORT, PORT_B};
use std::any::Any;

/// Offset of the control word register from [`PIT_PORT`].
const CONTROL: u16 = 3;
/// Control word: select counter (bits 7:6); 3 = read-back command.
const SC_READ_BACK: u8 = 3;
/// Control word: read/write field (bits 5:4) 0 = counter latch command.
const RW_LATCH: u8 = 0;
/// Read-back: do not latch the count (bit 5, active low).
const RB_NO_COUNT: u8 = 1 << 5;
/// Read-back: do not latch the status (bit 4, active low).
const RB_NO_STATUS: u8 = 1 << 4;
/// Status byte: OUT pin (bit 7).
const STATUS_OUT: u8 = 1 << 7;
/// Status byte: null count (bit 6).
const STATUS_NULL_COUNT: u8 = 1 << 6;
/// Port B: timer 2 gate (bit 0).
pub const PORT_B_GATE2: u8 = 1 << 0;
/// Port B: speaker data enable (bit 1).
pub const PORT_B_SPEAKER: u8 = 1 << 1;
/// Port B: the writable bits (gate, speaker, parity and IOCHK check enables).
const PORT_B_WRITABLE: u8 = 0x0F;
/// Port B: refresh request toggle (bit 4), which BIOSes poll to time short delays.
pub const PORT_B_REFRESH: u8 = 1 << 4;
/// Port B: timer 2 OUT (bit 5).
pub const PORT_B_OUT2: u8 = 1 << 5;
/// PIT clocks per refresh toggle: channel 1 is programmed with 18 on PCs (15.085 us).
const REFRESH_CLOCKS: u64 = 18;
/// Nanoseconds per second.
const NS_PER_S: u128 = 1_000_000_000;

/// The PIT clock count at virtual time `ns` (floor).
pub fn clocks_at(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(PIT_HZ) / NS_PER_S) as u64
}

/// The first virtual time (ns) at which the clock count is `clocks` (ceiling).
pub fn ns_at(clocks: u64) -> u64 {
    let ns = (u128::from(clocks) * NS_PER_S).div_ceil(u128::from(PIT_HZ));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// How a counter's bytes are read and written (control word bits 5:4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Access {
    /// Least significant byte only.
    Lsb = 1,
    /// Most significant byte only.
    Msb = 2,
    /// LSB then MSB.
    #[default]
    Word = 3,
}

impl Access {
    fn from_bits(rw: u8) -> Self {
        match rw {
            1 => Access::Lsb,
            2 => Access::Msb,
            _ => Access::Word,
        }
    }
}

/// When a written count reaches the counting element; the status byte reports NULL COUNT
/// until then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Transfer {
    /// No time yet: after a control word, or waiting for a gate trigger (modes 1 and 5).
    Pending,
    /// At this clock.
    At(u64),
}

/// A latched count waiting to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Latch {
    value: u16,
    /// The MSB is next (LSB-then-MSB access, after the LSB was read).
    msb_next: bool,
}

/// One counter.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Channel {
    /// The programmed mode (control word bits 3:1 with 6 and 7 read as 2 and 3).
    pub mode: u8,
    /// The raw control word bits 5:0 (RW, M, BCD) that the status byte returns.
    control: u8,
    /// Byte access.
    pub access: Access,
    /// BCD counting.
    pub bcd: bool,
    /// The count the counting element runs with, as a number of clocks (a written 0 is
    /// 65536, or 10000 in BCD).
    pub initial: u32,
    /// The count register: the last count written, which the counting element takes at
    /// its next load (at once in modes 0 and 4, at the next trigger in modes 1 and 5, at
    /// the end of the current period in modes 2 and 3).
    count_register: u32,
    /// Modes 2 and 3: the clock at which the counting element reloads from the count
    /// register (a count written while counting waits for the end of the period).
    reload_at: Option<u64>,
    /// When the count register reaches the counting element (NULL COUNT until then).
    transfer: Transfer,
    /// The clock at which the count entered the counting element (`None`: no count yet,
    /// or in modes 1 and 5 not triggered yet).
    loaded: Option<u64>,
    /// A count is written (modes 1 and 5 wait for a gate trigger to load it).
    armed: bool,
    /// OUT before `loaded` (at the write or trigger).
    out_before: bool,
    /// The gate input.
    pub gate: bool,
    /// Clocks the gate held counting off (modes 0, 2, 3, 4) since the load.
    paused: u64,
    /// The clock at which the gate went low, while it is low.
    gated_since: Option<u64>,
    /// The LSB of an LSB-then-MSB write, waiting for the MSB.
    write_lsb: Option<u8>,
    /// Live LSB-then-MSB reads: the MSB is next.
    read_msb_next: bool,
    latch: Option<Latch>,
    status_latch: Option<u8>,
}

impl Channel {
    fn new(gate: bool) -> Self {
        Self {
            mode: 0,
            control: 0,
            access: Access::Word,
            bcd: false,
            initial: 0x1_0000,
            count_register: 0x1_0000,
            reload_at: None,
            transfer: Transfer::Pending,
            loaded: None,
            armed: false,
            out_before: false,
            gate,
            paused: 0,
            gated_since: None,
            write_lsb: None,
            read_msb_next: false,
            latch: None,
            status_latch: None,
        }
    }

    /// Whether the gate stops counting in this mode (modes 0, 2, 3, 4; in 1 and 5 the
    /// gate is a trigger).
    fn gate_suspends(&self) -> bool {
        !matches!(self.mode, 1 | 5)
    }

    /// Decrementing clocks since the load at clock `t`, or `None` before the load.
    fn elapsed(&self, t: u64) -> Option<u64> {
        let load = self.loaded?;
        if t < load {
            return None;
        }
        let end = match self.gated_since {
            Some(g) if self.gate_suspends() => t.min(g.max(load)),
            _ => t,
        };
        Some((end - load).saturating_sub(self.paused))
    }

    /// OUT after `d` decrementing clocks (datasheet mode descriptions).
    fn out_after(&self, d: u64) -> bool {
        let n = u64::from(self.initial);
        match self.mode {
            0 | 1 => d >= n,
            2 => d % n != n - 1,
            3 => d % n < n.div_ceil(2),
            _ => d != n, // 4, 5: one clock low at terminal count
        }
    }

    /// The channel as it is at clock `t`: a pending end-of-period reload (modes 2 and 3)
    /// applied if it is due.
    fn at(&self, t: u64) -> Channel {
        let mut ch = self.clone();
        ch.settle(t);
        ch
    }

    /// Applies a pending reload that is due at clock `t`.
    fn settle(&mut self, t: u64) {
        if let Some(r) = self.reload_at.filter(|&r| t >= r) {
            self.reload_at = None;
            self.initial = self.count_register;
            self.loaded = Some(r);
            self.out_before = true;
            self.paused = 0;
        }
    }

    /// OUT at clock `t`.
    pub fn out(&self, t: u64) -> bool {
        self.at(t).out_now(t)
    }

    fn out_now(&self, t: u64) -> bool {
        if self.gated_since.is_some() && matches!(self.mode, 2 | 3) {
            return true; // modes 2 and 3: GATE low sets OUT high at once
        }
        match self.elapsed(t) {
            Some(d) => self.out_after(d),
            None => self.out_before,
        }
    }

    /// The counting element's value at clock `t` (in binary).
    fn count(&self, t: u64) -> u32 {
        let n = u64::from(self.initial);
        let modulus: u64 = if self.bcd { 10_000 } else { 0x1_0000 };
        let Some(d) = self.elapsed(t) else {
            return (u64::from(self.initial) % modulus) as u32;
        };
        let value = match self.mode {
            2 => n - d % n,
            3 => square_wave_count(n, d % n),
            // Modes 0, 1, 4, 5 wrap around and keep counting after terminal count.
            _ => (n + modulus - d % modulus) % modulus,
        };
        (value % modulus) as u32
    }

    /// The count as the guest reads it (BCD encoded in BCD mode).
    fn read_value(&self, t: u64) -> u16 {
        let c = self.at(t).count(t);
        if self.bcd {
            to_bcd(c)
        } else {
            c as u16
        }
    }

    /// The first clock after `t` at which OUT changes, if it will without a port write.
    pub fn next_change(&self, t: u64) -> Option<u64> {
        let now = self.at(t);
        let Some(reload) = now.reload_at else {
            return now.next_change_now(t);
        };
        // Before a pending reload the old period runs out; its last change (OUT rising
        // as the period restarts) is at the reload at the latest.
        if let Some(c) = now.next_change_now(t).filter(|&c| c <= reload) {
            return Some(c);
        }
        let after = self.at(reload);
        if after.out_now(reload) != now.out_now(t) {
            Some(reload)
        } else {
            after.next_change_now(reload)
        }
    }

    fn next_change_now(&self, t: u64) -> Option<u64> {
        if self.gated_since.is_some() && self.gate_suspends() {
            return None;
        }
        let load = self.loaded?;
        if t < load {
            if self.out_after(0) != self.out_before {
                return Some(load);
            }
            return self.next_change_after_load(0).map(|d| load + d);
        }
        let d = self.elapsed(t)?;
        self.next_change_after_load(d).map(|next| t + (next - d))
    }

    /// The first count of clocks after `d` at which OUT differs from OUT at `d`.
    fn next_change_after_load(&self, d: u64) -> Option<u64> {
        let n = u64::from(self.initial);
        match self.mode {
            0 | 1 => (d < n).then_some(n),
            2 if n == 1 => None,
            2 => {
                let p = d % n;
                Some(if p < n - 1 { d + (n - 1 - p) } else { d + 1 })
            }
            3 if n == 1 => None,
            3 => {
                let (p, high) = (d % n, n.div_ceil(2));
                Some(if p < high { d + high - p } else { d + n - p })
            }
            _ if d < n => Some(n),
            _ => (d == n).then_some(n + 1),
        }
    }

    /// Rising edges of OUT at clocks in `(from, to]`.
    pub fn rising_edges(&self, from: u64, to: u64) -> u64 {
        if to <= from {
            return 0;
        }
        let now = self.at(from);
        match now.reload_at {
            Some(r) if r <= to => now.rising_edges_now(from, r) + self.at(r).rising_edges(r, to),
            _ => now.rising_edges_now(from, to),
        }
    }

    fn rising_edges_now(&self, from: u64, to: u64) -> u64 {
        if to <= from {
            return 0;
        }
        let n = u64::from(self.initial);
        let periodic = matches!(self.mode, 2 | 3) && self.gated_since.is_none() && n > 1;
        if let (true, Some(load)) = (periodic, self.loaded) {
            // OUT rises each time the period restarts: d = k * n, k >= 1.
            let d_at = |t: u64| t.saturating_sub(load);
            return d_at(to) / n - d_at(from) / n;
        }
        // At most two changes remain in the one-shot modes.
        let (mut t, mut edges) = (from, 0);
        while let Some(next) = self.next_change_now(t).filter(|&c| c <= to) {
            edges += u64::from(self.out_now(next));
            t = next;
        }
        edges
    }

    fn status(&self, t: u64) -> u8 {
        let mut s = self.control & 0x3F;
        if self.out(t) {
            s |= STATUS_OUT;
        }
        match self.transfer {
            Transfer::At(x) if t >= x => {}
            _ => s |= STATUS_NULL_COUNT,
        }
        s
    }

    /// A control word for this counter (not a latch command).
    fn program(&mut self, control: u8) {
        let mode = (control >> 1) & 7;
        *self = Self {
            mode: if mode >= 6 { mode - 4 } else { mode },
            control: control & 0x3F,
            access: Access::from_bits((control >> 4) & 3),
            bcd: control & 1 != 0,
            gate: self.gate,
            ..Self::new(self.gate)
        };
        // Mode 0: OUT goes low on the control word; every other mode: high.
        self.out_before = self.mode != 0;
    }

    /// A new initial count written at clock `t` (the channel settled at `t`).
    fn load(&mut self, raw: u16, t: u64) {
        let value = if self.bcd { from_bcd(raw) } else { u32::from(raw) };
        self.count_register = match (value, self.bcd) {
            (0, false) => 0x1_0000,
            (0, true) => 10_000,
            (v, _) => v,
        };
        let was_armed = std::mem::replace(&mut self.armed, true);
        let counting = self.gated_since.is_none() && self.loaded.is_some_and(|l| t >= l);
        match self.mode {
            // Modes 1 and 5: the count waits for a trigger; a one-shot in progress is not
            // affected.
            1 | 5 => self.transfer = Transfer::Pending,
            // Modes 2 and 3: a new count written while counting takes effect at the end
            // of the current period (datasheet, mode 2 and mode 3 descriptions).
            2 | 3 if was_armed && counting => {
                let n = u64::from(self.initial);
                let d = self.elapsed(t).unwrap_or(0);
                let reload = t + (n - d % n);
                self.reload_at = Some(reload);
                self.transfer = Transfer::At(reload);
            }
            // "The initial count is loaded on the next CLK pulse" (datasheet "Counter
            // Programming"); in modes 0 and 4 a new count restarts counting with it.
            _ => {
                self.initial = self.count_register;
                self.out_before = self.mode != 0 && self.out_now(t);
                self.paused = 0;
                self.reload_at = None;
                self.loaded = Some(t + 1);
                self.transfer = Transfer::At(t + 1);
                if let Some(g) = self.gated_since.as_mut() {
                    *g = t + 1;
                }
            }
        }
    }

    /// A (re)load from the count register on the clock after `t`: a trigger in modes 1
    /// and 5, a rising gate in modes 2 and 3.
    fn reload_next_clock(&mut self, out_before: bool, t: u64) {
        self.initial = self.count_register;
        self.out_before = out_before;
        self.loaded = Some(t + 1);
        self.reload_at = None;
        self.paused = 0;
        match self.transfer {
            Transfer::At(x) if x <= t + 1 => {}
            _ => self.transfer = Transfer::At(t + 1),
        }
    }

    fn write_count_byte(&mut self, byte: u8, t: u64) {
        match self.access {
            Access::Lsb => self.load(u16::from(byte), t),
            Access::Msb => self.load(u16::from(byte) << 8, t),
            Access::Word => match self.write_lsb.take() {
                None => {
                    self.write_lsb = Some(byte);
                    if self.mode == 0 {
                        // Mode 0: writing the first byte stops counting; OUT goes low.
                        self.loaded = None;
                        self.out_before = false;
                    }
                }
                Some(lsb) => self.load(u16::from_le_bytes([lsb, byte]), t),
            },
        }
    }

    fn read_byte(&mut self, t: u64) -> u8 {
        if let Some(status) = self.status_latch.take() {
            return status;
        }
        if let Some(latch) = self.latch {
            let [lsb, msb] = latch.value.to_le_bytes();
            return match self.access {
                Access::Lsb => {
                    self.latch = None;
                    lsb
                }
                Access::Msb => {
                    self.latch = None;
                    msb
                }
                Access::Word if latch.msb_next => {
                    self.latch = None;
                    msb
                }
                Access::Word => {
                    self.latch = Some(Latch { msb_next: true, ..latch });
                    lsb
                }
            };
        }
        let [lsb, msb] = self.read_value(t).to_le_bytes();
        match self.access {
            Access::Lsb => lsb,
            Access::Msb => msb,
            Access::Word => {
                self.read_msb_next = !self.read_msb_next;
                if self.read_msb_next {
                    lsb
                } else {
                    msb
                }
            }
        }
    }

    fn latch_count(&mut self, t: u64) {
        // A second latch command before the first count is read is ignored.
        if self.latch.is_none() {
            self.latch = Some(Latch { value: self.read_value(t), msb_next: false });
        }
    }

    fn set_gate(&mut self, level: bool, t: u64) {
        if level == self.gate {
            return;
        }
        self.gate = level;
        match (self.mode, level) {
            // Trigger: the count is (re)loaded on the next clock.
            (1 | 5, true) if self.armed => self.reload_next_clock(self.out_now(t), t),
            (1 | 5, _) => {}
            (2 | 3, true) => {
                // A rising GATE reloads the count on the next clock.
                self.gated_since = None;
                if self.armed {
                    self.reload_next_clock(true, t);
                }
            }
            (_, true) => {
                if let (Some(g), Some(load)) = (self.gated_since.take(), self.loaded) {
                    self.paused += t.saturating_sub(g.max(load));
                }
            }
            (_, false) => {
                self.gated_since = Some(t);
                if matches!(self.mode, 2 | 3) {
                    // Counting stops; a pending end-of-period reload waits for the gate.
                    if self.reload_at.take().is_some() {
                        self.transfer = Transfer::Pending;
                    }
                }
            }
        }
    }
}

/// The count in mode 3 at clock `p` of a period of `n` clocks (datasheet mode 3: even
/// counts go down by two in each half; an odd count goes down by one then two while OUT is
/// high for (n + 1) / 2 clocks, by three then two while it is low for (n - 1) / 2).
fn square_wave_count(n: u64, p: u64) -> u64 {
    let high = n.div_ceil(2);
    let (q, first_step) = if p < high { (p, 1) } else { (p - high, 3) };
    match (q, n % 2) {
        (0, _) => n,
        (q, 0) => n - 2 * q,
        (q, _) => n - first_step - 2 * (q - 1),
    }
}

/// Four BCD digits to binary; digits above 9 count with their face value.
fn from_bcd(raw: u16) -> u32 {
    (0..4).rev().fold(0, |acc, i| acc * 10 + u32::from((raw >> (4 * i)) & 0xF))
}

/// A value below 10000 to four BCD digits.
fn to_bcd(value: u32) -> u16 {
    (0..4).fold(0, |acc, i| acc | (((value / 10u32.pow(i)) % 10) as u16) << (4 * i))
}

/// The i8254 and port B.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Pit {
    /// Channels 0 (IRQ 0), 1 (refresh) and 2 (speaker, gated by port B).
    pub channels: [Channel; 3],
    /// The PIT clock count at the last [`Pit::advance`].
    now: u64,
    port_b: u8,
    irq0_edges: u64,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// A PIT at virtual time 0: channels 0 and 1 gated on (wired high on a PC), channel 2
    /// gated by port B (off).
    pub fn new() -> Self {
        let mut channels = [Channel::new(true), Channel::new(true), Channel::new(false)];
        channels[2].gated_since = Some(0);
        Self { channels, now: 0, port_b: 0, irq0_edges: 0 }
    }

    /// Moves to virtual time `now_ns` (never backwards), counting channel 0's rising edges.
    pub fn advance(&mut self, now_ns: u64) {
        let clocks = clocks_at(now_ns);
        if clocks > self.now {
            self.irq0_edges += self.channels[0].rising_edges(self.now, clocks);
            self.now = clocks;
            for ch in &mut self.channels {
                ch.settle(clocks);
            }
        }
    }

    /// The PIT clock count at the last advance.
    pub fn clocks(&self) -> u64 {
        self.now
    }

    /// When channel 0's OUT next changes (ns), so the machine can schedule an advance.
    pub fn next_event_ns(&self) -> Option<u64> {
        self.channels[0].next_change(self.now).map(ns_at)
    }

    /// Channel 0's OUT (the level of IRQ 0).
    pub fn irq0_level(&self) -> bool {
        self.channels[0].out(self.now)
    }

    /// The rising edges of channel 0's OUT since the last call (each one an IRQ 0 edge).
    pub fn take_irq0_edges(&mut self) -> u64 {
        std::mem::take(&mut self.irq0_edges)
    }

    /// Channel `index`'s OUT now.
    pub fn out(&self, index: usize) -> bool {
        self.channels[index % 3].out(self.now)
    }

    /// Whether the speaker is driven: port B's speaker bit and OUT2.
    pub fn speaker(&self) -> bool {
        self.port_b & PORT_B_SPEAKER != 0 && self.out(2)
    }

    fn write_control(&mut self, value: u8) {
        let t = self.now;
        let select = value >> 6;
        if select == SC_READ_BACK {
            for (i, ch) in self.channels.iter_mut().enumerate() {
                if value & (2 << i) == 0 {
                    continue;
                }
                if value & RB_NO_COUNT == 0 {
                    ch.latch_count(t);
                }
                if value & RB_NO_STATUS == 0 && ch.status_latch.is_none() {
                    ch.status_latch = Some(ch.status(t));
                }
            }
            return;
        }
        let ch = &mut self.channels[usize::from(select)];
        if (value >> 4) & 3 == RW_LATCH {
            ch.latch_count(t);
        } else {
            ch.program(value);
            ch.gated_since = if ch.gate { None } else { Some(t) };
        }
    }
}

impl PortDevice for Pit {
    fn read(&mut self, port: u16, _size: u8) -> u32 {
        let t = self.now;
        u32::from(match port.wrapping_sub(PIT_PORT) {
            i @ 0..=2 => self.channels[usize::from(i)].read_byte(t),
            CONTROL => 0xFF, // the control word register is write-only
            _ if port == PORT_B => {
                let mut b = self.port_b & PORT_B_WRITABLE;
                if (t / REFRESH_CLOCKS) & 1 != 0 {
                    b |= PORT_B_REFRESH;
                }
                if self.out(2) {
                    b |= PORT_B_OUT2;
                }
                b
            }
            _ => 0xFF,
        })
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        let (t, value) = (self.now, value as u8);
        match port.wrapping_sub(PIT_PORT) {
            i @ 0..=2 => self.channels[usize::from(i)].write_count_byte(value, t),
            CONTROL => self.write_control(value),
            _ if port == PORT_B => {
                self.port_b = value & PORT_B_WRITABLE;
                self.channels[2].set_gate(value & PORT_B_GATE2 != 0, t);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CTRL: u16 = PIT_PORT + CONTROL;

    fn at(pit: &mut Pit, clocks: u64) {
        pit.advance(ns_at(clocks));
        assert_eq!(pit.clocks(), clocks);
    }

    /// Programs channel `ch` with `mode`, LSB-then-MSB binary, and `count`, at clock `t`.
    fn program(pit: &mut Pit, ch: u8, mode: u8, count: u16, t: u64) {
        at(pit, t);
        pit.write(CTRL, 1, u32::from(ch << 6 | 0x30 | mode << 1));
        let [lsb, msb] = count.to_le_bytes();
        pit.write(PIT_PORT + u16::from(ch), 1, u32::from(lsb));
        pit.write(PIT_PORT + u16::from(ch), 1, u32::from(msb));
    }

    fn latched(pit: &mut Pit, ch: u8) -> u16 {
        pit.write(CTRL, 1, u32::from(ch << 6));
        let port = PIT_PORT + u16::from(ch);
        u16::from_le_bytes([pit.read(port, 1) as u8, pit.read(port, 1) as u8])
    }

    fn status(pit: &mut Pit, ch: u8) -> u8 {
        pit.write(CTRL, 1, u32::from(0xC0 | RB_NO_COUNT | (2 << ch)));
        pit.read(PIT_PORT + u16::from(ch), 1) as u8
    }

    #[test]
    fn clock_conversion_is_exact() {
        assert_eq!(clocks_at(1_000_000_000), PIT_HZ);
        assert_eq!(clocks_at(ns_at(12345)), 12345);
        assert_eq!(clocks_at(ns_at(12345) - 1), 12344);
        // No drift over an hour of virtual time.
        assert_eq!(clocks_at(3_600 * 1_000_000_000), 3_600 * PIT_HZ);
    }

    // Datasheet mode 0: OUT low, high N+1 clocks after the count is written; the count
    // keeps wrapping after terminal count.
    #[test]
    fn mode0_interrupt_on_terminal_count() {
        let mut p = Pit::new();
        program(&mut p, 0, 0, 100, 10);
        assert!(!p.irq0_level());
        assert_eq!(p.next_event_ns(), Some(ns_at(111)));
        at(&mut p, 110);
        assert!(!p.irq0_level());
        assert_eq!(latched(&mut p, 0), 1);
        at(&mut p, 111);
        assert!(p.irq0_level());
        assert_eq!(p.take_irq0_edges(), 1);
        at(&mut p, 113);
        assert_eq!(latched(&mut p, 0), 0xFFFE);
        assert_eq!(p.next_event_ns(), None);
    }

    // Mode 2 (rate generator): OUT low for one clock every N, the count reloads.
    #[test]
    fn mode2_reload_and_edges() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 1000, 0);
        at(&mut p, 1 + 998);
        assert!(p.irq0_level());
        assert_eq!(latched(&mut p, 0), 2);
        at(&mut p, 1 + 999);
        assert!(!p.irq0_level());
        assert_eq!(latched(&mut p, 0), 1);
        at(&mut p, 1 + 1000);
        assert!(p.irq0_level());
        assert_eq!(latched(&mut p, 0), 1000, "reloaded");
        assert_eq!(p.take_irq0_edges(), 1);
        // One second later: PIT_HZ / 1000 more periods, counted without stepping.
        at(&mut p, 1 + 1000 + PIT_HZ);
        assert_eq!(p.take_irq0_edges(), PIT_HZ / 1000);
    }

    // Mode 3 (square wave): OUT high for N/2 and low for N/2 clocks.
    #[test]
    fn mode3_square_wave() {
        let mut p = Pit::new();
        program(&mut p, 0, 3, 10, 0);
        let outs: Vec<bool> = (1..21)
            .map(|t| {
                at(&mut p, t);
                p.irq0_level()
            })
            .collect();
        let expect: Vec<bool> = (0..20).map(|d| d % 10 < 5).collect();
        assert_eq!(outs, expect);
        assert_eq!(p.next_event_ns(), Some(ns_at(21)), "clock 20 is d = 19, low");
        // Odd counts: high one clock longer than low.
        program(&mut p, 0, 3, 5, 100);
        let highs = (101..106)
            .filter(|&t| {
                at(&mut p, t);
                p.irq0_level()
            })
            .count();
        assert_eq!(highs, 3);
        // The datasheet's odd-count sequence: 5 4 2 (high) 5 2 (low) 5 ...
        program(&mut p, 0, 3, 5, 200);
        let counts: Vec<u16> = (201..207)
            .map(|t| {
                at(&mut p, t);
                latched(&mut p, 0)
            })
            .collect();
        assert_eq!(counts, [5, 4, 2, 5, 2, 5]);
    }

    // Counter latch: the value stays frozen until read, while counting continues.
    #[test]
    fn latch_holds_the_count() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 5000, 0);
        at(&mut p, 101);
        p.write(CTRL, 1, 0x00);
        at(&mut p, 201);
        p.write(CTRL, 1, 0x00); // ignored: the first latch is unread
        assert_eq!(p.read(PIT_PORT, 1), u32::from((4900u16).to_le_bytes()[0]));
        assert_eq!(p.read(PIT_PORT, 1), u32::from((4900u16).to_le_bytes()[1]));
        assert_eq!(latched(&mut p, 0), 4800);
    }

    // Read-back: status (OUT, null count, programmed mode) before the count.
    #[test]
    fn read_back_status_and_count() {
        let mut p = Pit::new();
        at(&mut p, 50);
        p.write(CTRL, 1, 0x34); // channel 0, LSB/MSB, mode 2
        assert_eq!(status(&mut p, 0), STATUS_OUT | STATUS_NULL_COUNT | 0x34);
        p.write(PIT_PORT, 1, 0x10);
        p.write(PIT_PORT, 1, 0x00);
        assert_eq!(status(&mut p, 0) & STATUS_NULL_COUNT, STATUS_NULL_COUNT);
        at(&mut p, 51);
        assert_eq!(status(&mut p, 0), STATUS_OUT | 0x34, "count loaded");
        at(&mut p, 51 + 3);
        p.write(CTRL, 1, 0xC2); // latch count and status of channel 0
        assert_eq!(p.read(PIT_PORT, 1), u32::from(STATUS_OUT | 0x34));
        assert_eq!(p.read(PIT_PORT, 1), 0x10 - 3);
        assert_eq!(p.read(PIT_PORT, 1), 0);
    }

    // BCD counting: 0 is 10000 and reads come back in BCD.
    #[test]
    fn bcd_mode() {
        let mut p = Pit::new();
        at(&mut p, 0);
        p.write(CTRL, 1, 0x31); // channel 0, LSB/MSB, mode 0, BCD
        p.write(PIT_PORT, 1, 0x00);
        p.write(PIT_PORT, 1, 0x00);
        at(&mut p, 1 + 1);
        assert_eq!(latched(&mut p, 0), 0x9999);
        at(&mut p, 1 + 1234);
        assert_eq!(latched(&mut p, 0), 0x8766);
        assert_eq!(from_bcd(0x1234), 1234);
        assert_eq!(to_bcd(1234), 0x1234);
    }

    // LSB-only and MSB-only access modes.
    #[test]
    fn byte_access_modes() {
        let mut p = Pit::new();
        at(&mut p, 0);
        p.write(CTRL, 1, 0x54); // channel 1, LSB only, mode 2
        p.write(PIT_PORT + 1, 1, 18);
        at(&mut p, 1 + 3);
        assert_eq!(p.read(PIT_PORT + 1, 1), 15);
        p.write(CTRL, 1, 0x64); // channel 1, MSB only, mode 2
        p.write(PIT_PORT + 1, 1, 0x02);
        at(&mut p, 4 + 1 + 1);
        assert_eq!(p.read(PIT_PORT + 1, 1), 0x01, "0x200 - 1 = 0x1FF");
    }

    // Channel 2 through port B: gate, OUT2, and the refresh toggle.
    #[test]
    fn port_b_gate_out2_and_refresh() {
        let mut p = Pit::new();
        at(&mut p, 0);
        p.write(CTRL, 1, 0xB0); // channel 2, LSB/MSB, mode 0
        p.write(PIT_PORT + 2, 1, 10);
        p.write(PIT_PORT + 2, 1, 0);
        at(&mut p, 100);
        assert_eq!(p.read(PORT_B, 1) as u8 & PORT_B_OUT2, 0, "gate low: no counting");
        p.write(PORT_B, 1, u32::from(PORT_B_GATE2 | PORT_B_SPEAKER));
        at(&mut p, 109);
        assert_eq!(p.read(PORT_B, 1) as u8 & PORT_B_OUT2, 0);
        at(&mut p, 110);
        let b = p.read(PORT_B, 1) as u8;
        assert_eq!(b & PORT_B_OUT2, PORT_B_OUT2);
        assert_eq!(b & 0x0F, PORT_B_GATE2 | PORT_B_SPEAKER);
        assert!(p.speaker());
        at(&mut p, 0x1000 * REFRESH_CLOCKS);
        let r0 = p.read(PORT_B, 1) as u8 & PORT_B_REFRESH;
        at(&mut p, 0x1001 * REFRESH_CLOCKS);
        assert_ne!(p.read(PORT_B, 1) as u8 & PORT_B_REFRESH, r0);
    }

    // Mode 1 (one-shot) and 5 (strobe) wait for a gate trigger; mode 1 retriggers.
    #[test]
    fn modes_1_and_5_need_a_trigger() {
        let mut p = Pit::new();
        program(&mut p, 2, 1, 4, 0);
        at(&mut p, 50);
        assert!(p.out(2), "no trigger yet");
        p.write(PORT_B, 1, 1);
        at(&mut p, 51);
        assert!(!p.out(2));
        at(&mut p, 54);
        p.write(PORT_B, 1, 0);
        p.write(PORT_B, 1, 1); // retrigger at 54: terminal count at 55 + 4
        at(&mut p, 58);
        assert!(!p.out(2));
        at(&mut p, 59);
        assert!(p.out(2));
        program(&mut p, 2, 5, 3, 100);
        p.write(PORT_B, 1, 0);
        p.write(PORT_B, 1, 1);
        at(&mut p, 101 + 3);
        assert!(!p.out(2), "mode 5 strobe");
        at(&mut p, 101 + 4);
        assert!(p.out(2));
    }

    // Datasheet mode 2: "If a new count is written during counting, it will be loaded at
    // the end of the current counting cycle" (the period in progress keeps its length).
    #[test]
    fn mode2_new_count_waits_for_the_period_end() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 100, 0); // counting from clock 1
        at(&mut p, 51);
        p.write(PIT_PORT, 1, 10);
        p.write(PIT_PORT, 1, 0);
        assert_eq!(status(&mut p, 0) & STATUS_NULL_COUNT, STATUS_NULL_COUNT);
        at(&mut p, 60);
        assert_eq!(latched(&mut p, 0), 41, "the old count runs on");
        assert_eq!(p.next_event_ns(), Some(ns_at(100)));
        at(&mut p, 100);
        assert!(!p.irq0_level(), "the old period's low clock");
        assert_eq!(p.next_event_ns(), Some(ns_at(101)));
        at(&mut p, 101);
        assert_eq!(status(&mut p, 0) & STATUS_NULL_COUNT, 0);
        assert_eq!(latched(&mut p, 0), 10);
        at(&mut p, 101 + 9);
        assert!(!p.irq0_level());
        at(&mut p, 101 + 10 * 5);
        assert_eq!(p.take_irq0_edges(), 1 + 5);
    }

    // The same across one long advance: edges of both periods are counted.
    #[test]
    fn mode3_new_count_edges_across_one_advance() {
        let mut p = Pit::new();
        program(&mut p, 0, 3, 1000, 0);
        at(&mut p, 250);
        p.write(PIT_PORT, 1, 0x64);
        p.write(PIT_PORT, 1, 0); // 100, from clock 1001
        at(&mut p, 1001 + 100 * 7 + 50);
        assert_eq!(p.take_irq0_edges(), 1 + 7);
        assert_eq!(latched(&mut p, 0), 100 - 2 * 50 % 100);
    }

    // Datasheet mode 1: a count written during a one-shot does not affect it; the next
    // trigger uses it.
    #[test]
    fn mode1_new_count_waits_for_a_trigger() {
        let mut p = Pit::new();
        program(&mut p, 2, 1, 10, 0);
        p.write(PORT_B, 1, 1); // trigger at 0: low from 1, high at 11
        at(&mut p, 5);
        p.write(PIT_PORT + 2, 1, 100);
        p.write(PIT_PORT + 2, 1, 0);
        at(&mut p, 10);
        assert!(!p.out(2));
        at(&mut p, 11);
        assert!(p.out(2), "the one-shot kept its count");
        p.write(PORT_B, 1, 0);
        p.write(PORT_B, 1, 1); // trigger at 11 with 100
        at(&mut p, 111);
        assert!(!p.out(2));
        at(&mut p, 112);
        assert!(p.out(2));
    }

    // Gate low suspends mode 0 counting; in mode 2 it forces OUT high and a rising gate
    // restarts the period.
    #[test]
    fn gate_suspends_and_restarts() {
        let mut p = Pit::new();
        p.write(PORT_B, 1, 1);
        program(&mut p, 2, 0, 100, 0);
        at(&mut p, 11);
        p.write(PORT_B, 1, 0);
        at(&mut p, 500);
        assert_eq!(latched(&mut p, 2), 90);
        p.write(PORT_B, 1, 1);
        at(&mut p, 510);
        assert_eq!(latched(&mut p, 2), 80);
        program(&mut p, 2, 2, 10, 600);
        at(&mut p, 601 + 9);
        assert!(!p.out(2));
        p.write(PORT_B, 1, 0);
        assert!(p.out(2));
        p.write(PORT_B, 1, 1);
        at(&mut p, 611 + 5);
        assert_eq!(latched(&mut p, 2), 5);
    }

    /// A clock-by-clock model of one counter after its count is written at clock 0, per
    /// the datasheet's mode descriptions: (count, OUT) at clocks 1..=len.
    fn reference(mode: u8, n: u32, len: u64) -> Vec<(u32, bool)> {
        let mut ce = n;
        let mut out = mode != 0;
        let mut trace = vec![];
        for t in 1..=len {
            if t == 1 {
                ce = n; // loaded, not decremented
                if mode == 0 && ce == 0 {
                    out = true;
                }
            } else {
                match mode {
                    0 => {
                        ce = (ce + 0xFFFF) % 0x1_0000;
                        if ce == 0 {
                            out = true;
                        }
                    }
                    2 => {
                        if ce == 1 {
                            ce = n;
                            out = true;
                        } else {
                            ce -= 1;
                            out = ce != 1;
                        }
                    }
                    3 => {
                        let step = match (ce == n && n % 2 == 1, out) {
                            (true, true) => 1,
                            (true, false) => 3,
                            _ => 2,
                        };
                        ce -= step.min(ce);
                        if ce == 0 {
                            out = !out;
                            ce = n;
                        }
                    }
                    _ => {
                        ce = (ce + 0xFFFF) % 0x1_0000;
                        out = ce != 0;
                    }
                }
            }
            trace.push((ce % 0x1_0000, out));
        }
        trace
    }

    proptest! {
        // Modes 0, 2, 3 and 4 against the clock-by-clock reference.
        #[test]
        fn matches_clock_by_clock_reference(
            mode in prop::sample::select(vec![0u8, 2, 3, 4]),
            n in 2u32..300,
            len in 1u64..700,
        ) {
            let mut p = Pit::new();
            program(&mut p, 0, mode, n as u16, 0);
            let trace = reference(mode, n, len);
            let mut edges = 0;
            let mut prev = p.irq0_level();
            for (i, &(count, out)) in trace.iter().enumerate() {
                let t = i as u64 + 1;
                at(&mut p, t);
                prop_assert_eq!(u32::from(latched(&mut p, 0)), count, "count at {}", t);
                prop_assert_eq!(p.irq0_level(), out, "OUT at {}", t);
                edges += u64::from(!prev && out);
                prev = out;
            }
            prop_assert_eq!(p.take_irq0_edges(), edges);
        }

        // One long advance counts the same IRQ 0 edges as stepping clock by clock, also
        // across a count rewritten mid-run.
        #[test]
        fn one_jump_counts_the_edges_of_many_steps(
            // A count of 1 is illegal in mode 2 (datasheet), where OUT then stays low.
            mode in 0u8..6, n in 2u16..100, n2 in 2u16..100, when in 0u64..200,
            len in 1u64..600,
        ) {
            let run = |steps: bool| {
                let mut p = Pit::new();
                program(&mut p, 0, mode, n, 0);
                at(&mut p, when);
                p.write(PIT_PORT, 1, u32::from(n2 & 0xFF));
                p.write(PIT_PORT, 1, u32::from(n2 >> 8));
                p.take_irq0_edges();
                let mut observed = None;
                if steps {
                    let (mut prev, mut rises) = (p.irq0_level(), 0);
                    for t in when + 1..=when + len {
                        at(&mut p, t);
                        rises += u64::from(!prev && p.irq0_level());
                        prev = p.irq0_level();
                    }
                    observed = Some(rises);
                } else {
                    at(&mut p, when + len);
                }
                let edges = p.take_irq0_edges();
                // Stepping, the edges counted must be the rises of OUT seen at each clock.
                (edges, observed.unwrap_or(edges), p.irq0_level(), latched(&mut p, 0))
            };
            prop_assert_eq!(run(false), run(true));
        }

        // next_event_ns names exactly the next OUT change.
        #[test]
        fn next_event_is_the_next_out_change(
            mode in 0u8..6, n in 1u16..200, start in 0u64..400,
            rewrite in proptest::option::of((1u16..200, 0u64..400)),
        ) {
            let mut p = Pit::new();
            program(&mut p, 0, mode, n, 0);
            if let Some((n2, when)) = rewrite.filter(|&(_, w)| w <= start) {
                // A second count, taking effect as the mode says.
                at(&mut p, when);
                p.write(PIT_PORT, 1, u32::from(n2 & 0xFF));
                p.write(PIT_PORT, 1, u32::from(n2 >> 8));
            }
            at(&mut p, start);
            let out = p.irq0_level();
            match p.next_event_ns() {
                Some(ns) => {
                    let t = clocks_at(ns);
                    prop_assert_eq!(ns_at(t), ns);
                    prop_assert!(t > start);
                    for u in start + 1..t {
                        prop_assert_eq!(p.channels[0].out(u), out);
                    }
                    prop_assert_ne!(p.channels[0].out(t), out);
                }
                None => {
                    for u in start + 1..start + 3 * u64::from(n) + 3 {
                        prop_assert_eq!(p.channels[0].out(u), out);
                    }
                }
            }
        }
    }
}
