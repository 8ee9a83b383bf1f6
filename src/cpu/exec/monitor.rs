//! MONITOR/MWAIT (SDM Vol. 2B "MONITOR", "MWAIT"; Vol. 3A §9.10.4 "MONITOR/MWAIT
//! Instruction"; APM Vol. 3 "MONITOR", "MWAIT"), and MONITORX/MWAITX (#UD: not
//! advertised).
//!
//! MONITOR arms the 64-byte line that holds the physical address of DS:rAX. MWAIT then
//! waits (like HLT, in [`Cpu::halted`](crate::cpu::Cpu::halted)) until the line is
//! written by any vCPU or device, an NMI or an unmasked interrupt arrives (or, with
//! ECX[0] = 1, also a masked one), or INIT/RESET. Execution resumes after the MWAIT;
//! an interrupt that wakes it is delivered with that RIP as return address.
//!
//! Write detection: while any monitor is armed (`Machine::monitor_watch`), the armed
//! frames lose their fast-path write permission in every vCPU's TLB, so writes to them
//! reach [`Machine::phys_write`], which checks the lines ([`Machine::monitor_written`]).
//! With no monitor armed, the cost is one flag test per slow-path physical write.
//!
//! Every wake-up ends the monitor: a later MWAIT without a new MONITOR is a NOP, as is
//! an MWAIT after the line was written ("If the preceding MONITOR instruction did not
//! successfully arm an address range or if the MONITOR instruction has not been executed
//! prior to executing MWAIT, then the processor will not enter the implementation-
//! specific optimized state", SDM Vol. 3A §9.10.4).

use crate::cpu::fault::{gp, ud, ExecResult, Fault};
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::CpuMode;
use crate::cpuid::Feature;
use crate::machine::Machine;
use hvsim_decoder::iced::{Code, Instruction, Mnemonic};
use hvsim_mmu::paging::AccessKind;
use hvsim_mmu::Gpa;

/// The monitor line size in bytes: the smallest and the largest monitor-line size of
/// CPUID leaf 05H (EAX[15:0], EBX[15:0]).
pub const MONITOR_LINE_SIZE: u64 = 64;
/// CPUID.05H:ECX bit 0 (EMX): enumeration of MONITOR/MWAIT extensions is supported.
pub const CPUID5_ECX_EMX: u32 = 1 << 0;
/// CPUID.05H:ECX bit 1 (IBE): interrupts break MWAIT even when EFLAGS.IF = 0.
pub const CPUID5_ECX_INTERRUPT_BREAK: u32 = 1 << 1;
/// MWAIT ECX bit 0: treat interrupts as break events even if masked by EFLAGS.IF (SDM
/// Vol. 2B "MWAIT", Table 4-21 "MWAIT Extension Register (ECX)"); bits 31:1 are reserved.
pub const MWAIT_ECX_INTERRUPT_BREAK: u32 = 1 << 0;

/// The monitor of one vCPU. INIT and RESET clear it (the vCPU state is rebuilt).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Monitor {
    /// The physical address of the armed line (aligned to [`MONITOR_LINE_SIZE`]), until
    /// a write to it triggers the monitor or an MWAIT ends.
    pub armed: Option<u64>,
    /// Waiting in MWAIT (with `Cpu::halted` set).
    pub waiting: bool,
    /// The waiting MWAIT had ECX[0] = 1: an interrupt ends it even with EFLAGS.IF = 0.
    pub break_on_masked_interrupt: bool,
}

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Monitor => monitor,
        Mnemonic::Mwait => mwait,
        // APM Vol. 3 "MONITORX"/"MWAITX": #UD if CPUID.80000001H:ECX.MONITORX = 0, and
        // no model advertises it.
        Mnemonic::Monitorx | Mnemonic::Mwaitx => undefined,
        _ => return None,
    })
}

fn undefined(_m: &mut Machine, _i: &Insn) -> ExecResult {
    ud()
}

/// The checks MONITOR and MWAIT share: #UD if the model does not advertise MONITOR, in
/// virtual-8086 mode, or at CPL > 0 (SDM Vol. 2B "MONITOR"/"MWAIT", Protected Mode
/// Exceptions: "#UD ... If current privilege level is not 0"; APM Vol. 3: "CPL was not
/// zero and MSRC001_0015[MonMwaitUserEn] = 0", which hvsim keeps 0).
fn check_allowed(m: &Machine) -> ExecResult {
    if !m.cpuid.has(Feature::Monitor) || m.cpu.mode == CpuMode::V86 || m.cpu.cpl != 0 {
        return ud();
    }
    Ok(())
}

/// The address size of a MONITOR form (rAX is AX, EAX or RAX).
fn address_bytes(i: &Insn) -> u8 {
    match i.iced.code() {
        Code::Monitorw => 2,
        Code::Monitord => 4,
        _ => 8,
    }
}

fn monitor(m: &mut Machine, i: &Insn) -> ExecResult {
    check_allowed(m)?;
    // SDM Vol. 2B "MONITOR": "#GP(0) If ECX ≠ 0" (no extensions are defined). EDX holds
    // hints, none defined, which the processor ignores.
    if m.cpu.gpr[1] as u32 != 0 {
        return gp(0);
    }
    // DS:rAX (segment override allowed), checked and translated as a 1-byte read.
    let off = m.cpu.gpr[0] & crate::cpu::flags::size_mask(address_bytes(i));
    let lin = m.linear(i.mem.seg, off, 1, false)?;
    let page = m.translate(lin, AccessKind::Read)?;
    let line = ((page.gfn << 12) | (lin & 0xFFF)) & !(MONITOR_LINE_SIZE - 1);
    m.cpu.monitor = Monitor { armed: Some(line), ..Monitor::default() };
    m.arm_monitor_watch(line >> 12);
    Ok(())
}

fn mwait(m: &mut Machine, _i: &Insn) -> ExecResult {
    check_allowed(m)?;
    // SDM Vol. 2B "MWAIT": "#GP(0) If ECX[31:1] ≠ 0. If ECX[0] = 1 and CPUID.05H:ECX[bit
    // 1] = 0." Every model with MONITOR sets CPUID.05H:ECX[1]. EAX holds C-state hints,
    // which change only how deep the wait is.
    let ecx = m.cpu.gpr[1] as u32;
    if ecx & !MWAIT_ECX_INTERRUPT_BREAK != 0 {
        return gp(0);
    }
    let mon = &mut m.cpu.monitor;
    if mon.armed.is_none() {
        // Not armed, or already triggered by a write: a NOP.
        return Ok(());
    }
    mon.waiting = true;
    mon.break_on_masked_interrupt = ecx & MWAIT_ECX_INTERRUPT_BREAK != 0;
    m.cpu.halted = true;
    // Retires (RIP after MWAIT), as HLT does; the run loop decides what wakes it.
    Err(Fault::Halt)
}

impl Machine {
    /// After MONITOR armed a line in frame `gfn`: writes to the frame must reach
    /// [`Machine::phys_write`], so no vCPU's TLB may keep a writable entry for it.
    fn arm_monitor_watch(&mut self, gfn: u64) {
        self.monitor_watch = true;
        for v in 0..self.vcpu_count() {
            if let Some(c) = self.vcpu_mut(v) {
                c.tlb.restrict_writes(|g| g == gfn);
            }
        }
    }

    /// Whether some vCPU's monitor is armed on a line in frame `gfn` (writes to it must
    /// take the slow path). O(1) while no monitor is armed.
    #[inline]
    pub(crate) fn monitored_frame(&self, gfn: u64) -> bool {
        self.monitor_watch
            && (0..self.vcpu_count())
                .filter_map(|v| self.vcpu(v))
                .any(|c| c.monitor.armed.is_some_and(|line| line >> 12 == gfn))
    }

    /// A physical write of `len` bytes at `gpa` while a monitor may be armed: it
    /// triggers every monitor whose line it touches (SDM Vol. 3A §9.10.4: a store to
    /// the armed range ends the MWAIT), and a vCPU waiting in MWAIT on that line wakes
    /// and continues after the MWAIT.
    #[cold]
    pub(crate) fn monitor_written(&mut self, gpa: Gpa, len: usize) {
        let start = gpa.0;
        let end = gpa.0.saturating_add(len.max(1) as u64);
        let mut still_armed = false;
        for v in 0..self.vcpu_count() {
            let Some(c) = self.vcpu_mut(v) else { continue };
            let Some(line) = c.monitor.armed else { continue };
            if start < line + MONITOR_LINE_SIZE && line < end {
                if c.monitor.waiting {
                    c.halted = false;
                }
                c.monitor = Monitor::default();
            } else {
                still_armed = true;
            }
        }
        self.monitor_watch = still_armed;
    }

    /// Whether the current vCPU, waiting in MWAIT, wakes for a pending interrupt that
    /// EFLAGS.IF masks: MWAIT with ECX[0] = 1 treats it as a break event; the interrupt
    /// stays pending and execution continues after the MWAIT (SDM Vol. 2B "MWAIT").
    pub(crate) fn mwait_breaks_on_masked_interrupt(&self) -> bool {
        let c = &self.cpu;
        c.halted
            && (c.intr.is_some() || c.intr_line)
            && c.monitor.waiting
            && c.monitor.break_on_masked_interrupt
    }

    /// The current vCPU leaves HLT or MWAIT (an event is delivered, or a masked
    /// interrupt breaks MWAIT). An MWAIT's monitor ends with it.
    pub(crate) fn wake_from_halt(&mut self) {
        self.cpu.halted = false;
        if self.cpu.monitor.waiting {
            self.cpu.monitor = Monitor::default();
        }
    }
}
