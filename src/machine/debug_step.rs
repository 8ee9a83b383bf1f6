//! The debug-exception checks around one instruction when the vCPU runs step by step:
//! instruction breakpoints before it, RF clearing and the single-step trap after it (SDM
//! Vol. 3A §18.3.1 "Debug Exception (#DB)", §18.3.1.1 instruction breakpoints and RF,
//! §18.3.1.4 "Single-Step Exception Condition", §6.9 priorities).
//!
//! Not modelled yet: data and I/O breakpoints (DR7 R/W = 01, 10, 11) and the T bit of the
//! TSS.

use super::{Machine, StopReason};
use crate::cpu::debug::DR6_BS;
use crate::cpu::fault::{vector, Exception};
use crate::cpu::flags::{RF, TF};

impl Machine {
    /// Checks the enabled instruction breakpoints at CS:RIP (suppressed by RF = 1). On
    /// a hit it sets DR6.Bn and raises #DB as a fault; the outer `Option` says whether it
    /// hit, the inner one whether the run stops.
    pub(super) fn instruction_breakpoint(&mut self) -> Option<Option<StopReason>> {
        if self.cpu.flags.bit(RF) || self.cpu.dr[7] & crate::cpu::debug::DR7_ENABLES == 0 {
            return None;
        }
        let lin = self.fetch_linear().ok()?;
        let hits = self.cpu.instruction_breakpoints(lin);
        if hits == 0 {
            return None;
        }
        self.cpu.dr[6] = (self.cpu.dr[6] & !0xF) | hits;
        Some(self.raise_exception(Exception::new(vector::DB), None))
    }

    /// After one instruction retired in step mode: RF is cleared, and if TF was set when
    /// it started, the single-step trap is taken, unless the instruction delivered a
    /// software interrupt (whose delivery cleared TF) or ran into an interrupt shadow of
    /// MOV SS/POP SS (the trap waits one instruction, as on hardware).
    pub(super) fn after_step(&mut self, flags_before: u64) -> Option<StopReason> {
        if flags_before & RF != 0 {
            self.cpu.flags.set_bit(RF, false);
        }
        let shadowed = self.cpu.insn_count == self.cpu.shadow_at;
        if flags_before & TF == 0 || self.cpu.delivered || shadowed {
            return None;
        }
        self.cpu.dr[6] |= DR6_BS;
        self.raise_exception(Exception::new(vector::DB), None)
    }
}
