//! Debug registers: DR7 breakpoint decoding, instruction-, data- and I/O-breakpoint
//! matching, the DR6 status bits, and the debug conditions an instruction records for the
//! run loop to report after it retires (SDM Vol. 3A §18.2 "Debug Registers", §18.3.1
//! "Debug Exception (#DB)").
//!
//! Data breakpoints are traps: the access completes and #DB follows the instruction.
//! While one is enabled the run loop executes step by step ([`Cpu::debug_active`]) and
//! arms [`DebugState::armed`]; armed, the front-end TLB is neither filled nor used, so
//! every data access takes the slow path in `cpu::access`, which calls
//! [`Cpu::data_breakpoint_hits`] and records the hits in [`DebugState::pending`].

use super::flags::{RF, TF};
use super::regs::cr4;
use super::Cpu;

/// DR6.B0: breakpoint 0 condition met (B1-B3 follow).
pub const DR6_B0: u64 = 1 << 0;
/// DR6.BD: the next instruction accesses a debug register (general detect).
pub const DR6_BD: u64 = 1 << 13;
/// DR6.BS: single step.
pub const DR6_BS: u64 = 1 << 14;
/// DR6.BT: task switch with the T bit.
pub const DR6_BT: u64 = 1 << 15;
/// DR7: the L0/G0..L3/G3 enable bits.
pub const DR7_ENABLES: u64 = 0xFF;
/// DR7 local breakpoint enables (L0-L3, LE), cleared by a task switch (SDM Vol. 3A
/// §18.2.4 "Debug Control Register (DR7)").
pub const DR7_LOCAL_ENABLES: u64 = 0x155;
/// DR7.GD: general detect enable.
pub const DR7_GD: u64 = 1 << 13;
/// DR6 B0-B3.
pub const DR6_BREAKPOINTS: u64 = 0xF;
/// The 32-bit TSS debug trap flag T (bit 0 of the word at `tss32::TRAP`; SDM Vol. 3A
/// §8.2.1 "Task-State Segment (TSS)").
pub const TSS_T: u64 = 1;

/// Debug conditions met during the current instruction, reported as one #DB trap after
/// it (SDM Vol. 3A §18.3.1, §6.9 "Priority Among Concurrent Exceptions and Interrupts":
/// the task-switch trap and "traps on the previous instruction" come before NMI and
/// external interrupts).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DebugState {
    /// Data or I/O breakpoints are enabled and the front-end TLB is kept empty for them
    /// (set by the run loop, which flushes the TLB when it arms).
    pub armed: bool,
    /// DR6 bits of trap conditions met and not yet reported: B0-B3 for data and I/O
    /// breakpoints, BT for a switch to a task whose TSS has T = 1.
    pub pending: u64,
}

/// The condition of breakpoint `n` (DR7.R/Wn).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BreakOn {
    /// Instruction execution (R/W = 00).
    Execute,
    /// Data writes (01).
    Write,
    /// I/O reads and writes (10, with CR4.DE).
    Io,
    /// Data reads and writes (11).
    ReadWrite,
}

/// A decoded DR7 slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Breakpoint {
    /// Which DRn.
    pub index: usize,
    /// DRn.
    pub addr: u64,
    /// The condition.
    pub on: BreakOn,
    /// Length in bytes (1, 2, 4 or 8).
    pub len: u64,
}

impl Breakpoint {
    /// Whether `lin..lin+size` overlaps the breakpoint's range (the address is aligned
    /// down to the length, as the hardware compares).
    pub fn overlaps(&self, lin: u64, size: u64) -> bool {
        let start = self.addr & !(self.len - 1);
        lin < start.wrapping_add(self.len) && start < lin.wrapping_add(size)
    }
}

/// The enabled breakpoints of DR7 (local or global enable set).
pub fn enabled_breakpoints(dr: &[u64; 8]) -> impl Iterator<Item = Breakpoint> + '_ {
    let dr7 = dr[7];
    (0..4).filter(move |n| dr7 & (3 << (2 * n)) != 0).map(move |n| {
        let rw = (dr7 >> (16 + 4 * n)) & 3;
        let len = match (dr7 >> (18 + 4 * n)) & 3 {
            0 => 1,
            1 => 2,
            2 => 8,
            _ => 4,
        };
        let on = match rw {
            0 => BreakOn::Execute,
            1 => BreakOn::Write,
            2 => BreakOn::Io,
            _ => BreakOn::ReadWrite,
        };
        // Instruction breakpoints use length 1 whatever DR7.LEN says (§18.2.5).
        let len = if on == BreakOn::Execute { 1 } else { len };
        Breakpoint { index: n, addr: dr[n], on, len }
    })
}

impl Cpu {
    /// Whether instructions must run one at a time for the debug machinery: TF (single
    /// step), RF (to be cleared after the next instruction), any DR7 breakpoint, or a
    /// debug trap waiting to be reported.
    #[inline(always)]
    pub fn debug_active(&self) -> bool {
        self.flags.get() & (TF | RF) != 0
            || self.dr[7] & DR7_ENABLES != 0
            || self.debug.pending != 0
    }

    /// Whether an enabled breakpoint watches data or I/O accesses. I/O breakpoints (R/W
    /// = 10) exist only with CR4.DE = 1; with CR4.DE = 0 that encoding is undefined and
    /// hvsim ignores it (SDM Vol. 3A §18.2.4 "Debug Control Register (DR7)").
    pub fn watches_accesses(&self) -> bool {
        let de = self.cr4 & cr4::DE != 0;
        enabled_breakpoints(&self.dr).any(|b| match b.on {
            BreakOn::Execute => false,
            BreakOn::Io => de,
            BreakOn::Write | BreakOn::ReadWrite => true,
        })
    }

    /// The DR6 B0-B3 bits of the enabled data breakpoints a data access of `size` bytes
    /// at linear address `lin` matches: R/W = 01 matches writes, 11 reads and writes
    /// (SDM Vol. 3A §18.2.5 "Breakpoint Field Recognition": the address in DRn is
    /// aligned down to the length, and any byte of the access inside the range matches).
    pub fn data_breakpoint_hits(&self, lin: u64, size: u64, write: bool) -> u64 {
        enabled_breakpoints(&self.dr)
            .filter(|b| match b.on {
                BreakOn::Write => write,
                BreakOn::ReadWrite => true,
                _ => false,
            })
            .filter(|b| b.overlaps(lin, size))
            .fold(0, |acc, b| acc | (DR6_B0 << b.index))
    }

    /// The DR6 B0-B3 bits of the enabled I/O breakpoints (R/W = 10, CR4.DE = 1) that an
    /// access of `size` bytes to `port` matches (SDM Vol. 3A §18.2.4, §18.3.1.2).
    pub fn io_breakpoint_hits(&self, port: u16, size: u64) -> u64 {
        if self.cr4 & cr4::DE == 0 {
            return 0;
        }
        enabled_breakpoints(&self.dr)
            .filter(|b| b.on == BreakOn::Io && b.overlaps(u64::from(port), size))
            .fold(0, |acc, b| acc | (DR6_B0 << b.index))
    }

    /// The DR6 B0-B3 bits of enabled instruction breakpoints at linear address `lin`.
    pub fn instruction_breakpoints(&self, lin: u64) -> u64 {
        enabled_breakpoints(&self.dr)
            .filter(|b| b.on == BreakOn::Execute && b.addr == lin)
            .fold(0, |acc, b| acc | (DR6_B0 << b.index))
    }
}
