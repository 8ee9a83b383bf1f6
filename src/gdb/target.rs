//! The machine as a `gdbstub` target: x86-64 register file, linear-address memory,
//! stepping and software breakpoints.

use super::watch::{self, Watchpoint};
use crate::cpu::regs::SegReg;
use crate::machine::{Machine, StopReason, StopReport};
use gdbstub::common::Signal;
use gdbstub::stub::SingleThreadStopReason;
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwWatchpoint, HwWatchpointOps, SwBreakpoint, SwBreakpointOps,
    WatchKind,
};
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::x86::reg::X86_64CoreRegs;
use gdbstub_arch::x86::X86_64_SSE;
use hvsim_mmu::paging::{self, Access, AccessKind};
use hvsim_mmu::{Gpa, Gva};
use std::collections::BTreeSet;

/// GDB's register order (rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8-r15) as indices of
/// the vCPU's register file (encoding order: rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi).
const GDB_TO_GPR: [usize; 16] = [0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15];

/// Instructions run between looks at the connection (for Ctrl-C) when no breakpoint
/// is set.
const SLICE: u64 = 4096;

/// What the debugger asked the guest to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    Continue,
    Step,
}

/// The outcome of running until something happens.
pub(super) enum RunEvent {
    /// A byte from the debugger is waiting (an interrupt request, usually).
    IncomingData,
    /// The guest stopped.
    Stopped(SingleThreadStopReason<u64>),
}

/// The machine under a debugger.
pub struct GdbTarget<'m> {
    m: &'m mut Machine,
    breakpoints: BTreeSet<u64>,
    /// Hardware watchpoints, in the order they were set.
    watchpoints: Vec<Watchpoint>,
    resume: Resume,
    /// The stop that ended the machine's run, for the caller.
    last: Option<StopReport>,
}

impl<'m> GdbTarget<'m> {
    /// Wraps `m`; the guest is stopped until the debugger resumes it.
    pub fn new(m: &'m mut Machine) -> Self {
        Self {
            m,
            breakpoints: BTreeSet::new(),
            watchpoints: Vec::new(),
            resume: Resume::Continue,
            last: None,
        }
    }

    /// The machine stop that ended the session, if the guest ended it.
    pub(super) fn take_final(&mut self) -> Option<StopReport> {
        self.last.take()
    }

    /// The linear address of CS:RIP.
    fn pc_linear(&self) -> u64 {
        let lin = self.m.cpu.seg[SegReg::Cs as usize].base.wrapping_add(self.m.cpu.rip);
        if self.m.cpu.mode == crate::CpuMode::Long64 {
            lin
        } else {
            lin & 0xFFFF_FFFF
        }
    }

    /// Runs until a breakpoint, the end of a step, a machine stop, or data from the
    /// debugger.
    pub(super) fn run(&mut self, poll: &mut dyn FnMut() -> bool) -> RunEvent {
        if self.resume == Resume::Step {
            return match self.step_watched() {
                Some(stop) => RunEvent::Stopped(stop),
                None => RunEvent::Stopped(SingleThreadStopReason::DoneStep),
            };
        }
        // The first instruction runs even if a breakpoint sits on it: the debugger
        // continues from where it stopped.
        let mut first = true;
        loop {
            if self.breakpoints.is_empty() && self.watchpoints.is_empty() {
                if let Some(stop) = self.step(SLICE) {
                    return RunEvent::Stopped(stop);
                }
            } else {
                for _ in 0..SLICE {
                    if !first && self.breakpoints.contains(&self.pc_linear()) {
                        return RunEvent::Stopped(SingleThreadStopReason::SwBreak(()));
                    }
                    first = false;
                    if let Some(stop) = self.step_watched() {
                        return RunEvent::Stopped(stop);
                    }
                }
            }
            first = false;
            if poll() {
                return RunEvent::IncomingData;
            }
        }
    }

    /// Runs one instruction; a watchpoint its memory accesses trigger (once it has
    /// retired) or a stop of the machine becomes GDB's stop reason.
    fn step_watched(&mut self) -> Option<SingleThreadStopReason<u64>> {
        if self.watchpoints.is_empty() {
            return self.step(1);
        }
        let mut bytes = [0u8; 15];
        let pc = self.pc_linear();
        let n = self.read_addrs(pc, &mut bytes).unwrap_or(0);
        let mut accesses = watch::accesses(self.m, &bytes[..n]);
        let string = watch::is_string(self.m, &bytes[..n]);
        let before = self.m.cpu.insn_count;
        let stop = self.step(1);
        // A string instruction progressed (retired, or a long REP yielded a chunk): the
        // span of its operands from before to after.
        let progressed = if string {
            let after = watch::accesses(self.m, &bytes[..n]);
            let moved = after != accesses;
            accesses = watch::string_spans(&accesses, &after);
            moved
        } else {
            false
        };
        if stop.is_none() && (self.m.cpu.insn_count != before || progressed) {
            if let Some(w) = watch::first_hit(&self.watchpoints, &accesses) {
                return Some(SingleThreadStopReason::Watch { tid: (), kind: w.kind, addr: w.addr });
            }
        }
        stop
    }

    /// Runs up to `n` instructions; a stop of the machine becomes GDB's stop reason.
    fn step(&mut self, n: u64) -> Option<SingleThreadStopReason<u64>> {
        let r = self.m.run(Some(n));
        let stop = match &r.reason {
            StopReason::InsnLimit | StopReason::Yield => return None,
            StopReason::DebugExit(v) => {
                SingleThreadStopReason::Exited(hvsim_devices::DebugExit::exit_status(*v) as u8)
            }
            StopReason::Halted { .. } => SingleThreadStopReason::Terminated(Signal::SIGSTOP),
            StopReason::Reset | StopReason::PowerOff => SingleThreadStopReason::Exited(0),
            StopReason::Shutdown { .. } | StopReason::VmxAbort { .. } => {
                SingleThreadStopReason::Terminated(Signal::SIGABRT)
            }
            StopReason::Exception { .. } => SingleThreadStopReason::Signal(Signal::SIGSEGV),
            StopReason::Unsupported { .. } => SingleThreadStopReason::Signal(Signal::SIGILL),
        };
        self.last = Some(r);
        Some(stop)
    }

    /// The guest-physical address of linear address `lin`, as the guest's paging maps it
    /// now, without side effects.
    fn translate(&mut self, lin: u64) -> Option<u64> {
        if self.m.cpu.cr0 & crate::cpu::regs::cr0::PG == 0 {
            return Some(lin & 0xFFFF_FFFF);
        }
        let cfg = self.m.walk_config();
        let access = Access { kind: AccessKind::Read, user: false, smap_override: true };
        paging::peek(&mut self.m.mem, &cfg, Gva(lin), access).ok().map(|t| t.gpa.0)
    }
}

impl Target for GdbTarget<'_> {
    type Arch = X86_64_SSE;
    type Error = &'static str;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }
}

impl MonitorCmd for GdbTarget<'_> {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), Self::Error> {
        let cmd = String::from_utf8_lossy(cmd);
        gdbstub::output!(out, "{}", super::monitor::answer(self.m, &cmd));
        Ok(())
    }
}

impl SingleThreadBase for GdbTarget<'_> {
    fn read_registers(&mut self, regs: &mut X86_64CoreRegs) -> TargetResult<(), Self> {
        let c = &self.m.cpu;
        for (g, &i) in GDB_TO_GPR.iter().enumerate() {
            regs.regs[g] = c.gpr[i];
        }
        regs.rip = c.rip;
        regs.eflags = c.flags.get() as u32;
        let sel = |s: SegReg| u32::from(c.seg[s as usize].selector);
        regs.segments.cs = sel(SegReg::Cs);
        regs.segments.ss = sel(SegReg::Ss);
        regs.segments.ds = sel(SegReg::Ds);
        regs.segments.es = sel(SegReg::Es);
        regs.segments.fs = sel(SegReg::Fs);
        regs.segments.gs = sel(SegReg::Gs);
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86_64CoreRegs) -> TargetResult<(), Self> {
        let c = &mut self.m.cpu;
        for (g, &i) in GDB_TO_GPR.iter().enumerate() {
            c.gpr[i] = regs.regs[g];
        }
        c.rip = regs.rip;
        // EFLAGS: the debugger may change the arithmetic flags, TF, DF and IF; a change of
        // VM (a mode switch) is refused.
        let old = c.flags.get();
        let new = u64::from(regs.eflags);
        if (old ^ new) & crate::cpu::flags::VM != 0 {
            return Err(TargetError::NonFatal);
        }
        c.flags.set(new);
        self.m.flush_code_cache();
        Ok(())
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        let mut done = 0;
        while done < data.len() {
            let lin = start.wrapping_add(done as u64);
            let Some(gpa) = self.translate(lin) else { break };
            let n = (0x1000 - (lin & 0xFFF) as usize).min(data.len() - done);
            self.m.mem.read(Gpa(gpa), &mut data[done..done + n]);
            done += n;
        }
        Ok(done)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        let mut done = 0;
        while done < data.len() {
            let lin = start.wrapping_add(done as u64);
            let gpa = self.translate(lin).ok_or(TargetError::NonFatal)?;
            let n = (0x1000 - (lin & 0xFFF) as usize).min(data.len() - done);
            // Through the vCPU's physical write, so decoded code stays coherent.
            self.m.phys_write(Gpa(gpa), &data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadResume for GdbTarget<'_> {
    fn resume(&mut self, signal: Option<Signal>) -> Result<(), Self::Error> {
        if signal.is_some() {
            return Err("hvsim cannot continue with a signal");
        }
        self.resume = Resume::Continue;
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for GdbTarget<'_> {
    fn step(&mut self, signal: Option<Signal>) -> Result<(), Self::Error> {
        if signal.is_some() {
            return Err("hvsim cannot step with a signal");
        }
        self.resume = Resume::Step;
        Ok(())
    }
}

impl Breakpoints for GdbTarget<'_> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl HwWatchpoint for GdbTarget<'_> {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        self.watchpoints.push(Watchpoint { addr, len, kind });
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        let w = Watchpoint { addr, len, kind };
        match self.watchpoints.iter().position(|x| *x == w) {
            Some(i) => {
                self.watchpoints.remove(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl SwBreakpoint for GdbTarget<'_> {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.breakpoints.insert(addr);
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.breakpoints.remove(&addr))
    }
}
