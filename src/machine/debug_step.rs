//! The debug-exception checks around one instruction when the vCPU runs step by step:
//! instruction breakpoints before it; RF clearing and the debug traps after it (single
//! step, data and I/O breakpoints, the TSS T bit), reported together in one #DB (SDM Vol.
//! 3A §18.3.1 "Debug Exception (#DB)", §18.3.1.1 instruction breakpoints and RF,
//! §18.3.1.2 data and I/O breakpoints, §18.3.1.4 "Single-Step Exception Condition",
//! §18.3.1.5 "Task-Switch Exception Condition", §6.9 priorities).
//!
//! Data breakpoints keep the front-end TLB empty while they are armed (see
//! [`crate::cpu::debug`]): [`Machine::translate_watched`] translates without filling it
//! and hands out pages without a direct RAM offset, so every access takes the slow path
//! that calls [`Machine::watch_access`].

use super::{Machine, StopReason};
use crate::cpu::access::{PageRef, Privilege};
use crate::cpu::debug::{DR6_BREAKPOINTS, DR6_BS, DR6_BT, DR7_ENABLES};
use crate::cpu::fault::{vector, Exception, Fault};
use crate::cpu::flags::{RF, TF};
use hvsim_mmu::paging::AccessKind;

impl Machine {
    /// Before an instruction in step mode: arms or disarms data breakpoints, reports a
    /// debug trap left by an event delivery (a task gate into a TSS with T = 1), and checks
    /// the enabled instruction breakpoints at CS:RIP (suppressed by RF = 1). The outer
    /// `Option` says whether a #DB was raised, the inner one whether the run stops.
    pub(super) fn instruction_breakpoint(&mut self) -> Option<Option<StopReason>> {
        self.sync_data_breakpoints();
        if self.cpu.debug.pending != 0 {
            let pending = std::mem::take(&mut self.cpu.debug.pending);
            let stop = self.raise_debug_trap(pending);
            if stop.is_none() && self.cpu.debug.pending & DR6_BT != 0 {
                // Delivering this #DB switched to a task whose TSS has T = 1: "the
                // processor will enter a loop" (SDM Vol. 3A §18.3.1.5). Stop instead of
                // spinning without retiring instructions.
                return Some(Some(StopReason::Unsupported {
                    what: "#DB handler task with the TSS T bit set (loops forever)".into(),
                }));
            }
            return Some(stop);
        }
        if self.cpu.flags.bit(RF) || self.cpu.dr[7] & DR7_ENABLES == 0 {
            return None;
        }
        let lin = self.fetch_linear().ok()?;
        let hits = self.cpu.instruction_breakpoints(lin);
        if hits == 0 {
            return None;
        }
        self.cpu.dr[6] = (self.cpu.dr[6] & !DR6_BREAKPOINTS) | hits;
        Some(self.deliver_debug_exception())
    }

    /// Arms data breakpoints when DR7 enables one (flushing the front-end TLB, whose
    /// entries would let accesses bypass the check), or disarms them.
    fn sync_data_breakpoints(&mut self) {
        let want = self.cpu.watches_accesses();
        if want && !self.cpu.debug.armed {
            self.cpu.tlb.flush();
        }
        self.cpu.debug.armed = want;
    }

    /// Translation while data breakpoints are armed: the walk's result is not kept in the
    /// front-end TLB, and the page has no direct RAM offset, so the access goes through
    /// the slow path that checks breakpoints. Disarms once DR7 no longer enables a
    /// breakpoint (the run loop re-arms, and flushes, when one is enabled again).
    pub(crate) fn translate_watched(
        &mut self,
        lin: u64,
        kind: AccessKind,
        privilege: Privilege,
    ) -> Result<PageRef, Fault> {
        self.cpu.debug.armed = false;
        let p = self.translate_slow(lin, kind, privilege)?;
        if self.cpu.dr[7] & DR7_ENABLES == 0 {
            return Ok(p);
        }
        self.cpu.debug.armed = true;
        let pcid = self.cpu.pcid();
        self.cpu.tlb.invalidate_page(lin >> 12, pcid, true);
        Ok(PageRef { gfn: p.gfn, host: usize::MAX })
    }

    /// Records the data breakpoints a completed translation of a `size`-byte access at
    /// `lin` matches (instruction fetches never match data breakpoints).
    #[cold]
    pub(crate) fn watch_access(&mut self, lin: u64, size: u64, kind: AccessKind) {
        if kind == AccessKind::Fetch {
            return;
        }
        let write = kind == AccessKind::Write;
        self.cpu.debug.pending |= self.cpu.data_breakpoint_hits(lin, size, write);
    }

    /// Records the I/O breakpoints an IN/OUT/INS/OUTS access of `size` bytes to `port`
    /// matches (SDM Vol. 3A §18.3.1.2: "the processor generates a debug exception after
    /// it executes an I/O instruction that accesses a port in the range").
    pub fn watch_port(&mut self, port: u16, size: u8) {
        if self.cpu.debug.armed {
            self.cpu.debug.pending |= self.cpu.io_breakpoint_hits(port, u64::from(size));
        }
    }

    /// After one instruction ran in step mode; `fault` is how it ended if it did not
    /// retire normally.
    ///
    /// Retired: RF is cleared, and one #DB trap reports together every condition met
    /// (SDM Vol. 3A §18.3.1): data and I/O breakpoint hits (B0-B3), a switch to a task
    /// whose TSS has T = 1 (BT), and single step (BS) if TF was set when the instruction
    /// started, unless it delivered a software interrupt (whose delivery cleared TF) or
    /// ran into an interrupt shadow of MOV SS/POP SS (the trap waits one instruction, as
    /// on hardware).
    ///
    /// Stopped between REP iterations: "Repeated INS, MOVS, OUTS, and STOS instructions
    /// generate a data breakpoint exception after the iteration in which the memory
    /// address breakpoint location is accessed" (§18.3.1.2); the saved RIP is the string
    /// instruction, which resumes after IRET.
    ///
    /// Faulted: the instruction will run again, so its breakpoint hits are dropped.
    pub(super) fn after_step(
        &mut self,
        flags_before: u64,
        fault: Option<&Fault>,
    ) -> Option<StopReason> {
        match fault {
            None => {}
            Some(Fault::Yield) => {
                let hits = self.cpu.debug.pending & DR6_BREAKPOINTS;
                if hits == 0 {
                    return None;
                }
                self.cpu.debug.pending &= !DR6_BREAKPOINTS;
                return self.raise_debug_trap(hits);
            }
            Some(_) => {
                self.cpu.debug.pending &= !DR6_BREAKPOINTS;
                return None;
            }
        }
        if flags_before & RF != 0 {
            self.cpu.flags.set_bit(RF, false);
        }
        let mut dr6 = std::mem::take(&mut self.cpu.debug.pending);
        let shadowed = self.cpu.insn_count == self.cpu.shadow_at;
        if flags_before & TF != 0 && !self.cpu.delivered && !shadowed {
            dr6 |= DR6_BS;
        }
        if dr6 == 0 {
            return None;
        }
        self.raise_debug_trap(dr6)
    }

    /// Raises a #DB trap reporting `dr6`: B0-B3 replace the old ones if any is set (the
    /// processor clears B0-B3 for the conditions it reports, SDM Vol. 3A §18.2.3 "Debug
    /// Status Register (DR6)"), BS and BT are added.
    fn raise_debug_trap(&mut self, dr6: u64) -> Option<StopReason> {
        if let Some(r) = crate::nested::debug_trap(self, dr6) {
            return r;
        }
        let hits = dr6 & DR6_BREAKPOINTS;
        let mut v = self.cpu.dr[6] | (dr6 & (DR6_BS | DR6_BT));
        if hits != 0 {
            v = (v & !DR6_BREAKPOINTS) | hits;
        }
        self.cpu.dr[6] = v;
        self.deliver_debug_exception()
    }

    /// Raises #DB. Breakpoint hits by the delivery's own frame pushes are dropped: on
    /// hardware a data breakpoint on the #DB handler's stack delivers #DB forever; hvsim
    /// does not spin without retiring instructions. (Hits by the delivery of other
    /// events, an exception or an interrupt, are reported before the handler's first
    /// instruction.)
    fn deliver_debug_exception(&mut self) -> Option<StopReason> {
        let stop = self.raise_exception(Exception::new(vector::DB), None);
        self.cpu.debug.pending &= !DR6_BREAKPOINTS;
        stop
    }
}
