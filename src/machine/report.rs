//! Why a run stopped, and the report printed for it.

use crate::cpu::fault::Exception;
use crate::cpu::insn::Insn;
use hvsim_decoder::iced::{Formatter, IntelFormatter};
use std::fmt;

/// Why [`super::Machine::run`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The vCPU executed HLT and nothing can wake it.
    Halted {
        /// EFLAGS.IF at the time.
        interrupts_enabled: bool,
    },
    /// Triple fault: the processor shut down.
    Shutdown {
        /// The exceptions raised, in order, from the first to the one that hit during
        /// #DF delivery.
        exceptions: Vec<Exception>,
    },
    /// The guest wrote this value to isa-debug-exit.
    DebugExit(u32),
    /// The guest asked for a system reset.
    Reset,
    /// The guest powered the machine off (ACPI S5).
    PowerOff,
    /// The instruction limit was reached.
    InsnLimit,
    /// An exception the harness asked to catch (see `Machine::set_exception_catch`).
    Exception {
        /// The exception.
        exception: Exception,
        /// The faulting instruction's disassembly, if it decoded.
        insn: Option<String>,
    },
    /// The guest used something hvsim does not emulate.
    Unsupported {
        /// What.
        what: String,
    },
    /// Internal: an instruction yielded and will be re-executed.
    Yield,
    /// A VMX abort (SDM Vol. 3C 28.7): a VM exit could not load the host state.
    VmxAbort {
        /// The VMX-abort indicator.
        indicator: u32,
    },
}

/// A stop with the vCPU position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopReport {
    /// Why.
    pub reason: StopReason,
    /// CS selector.
    pub cs: u16,
    /// RIP (for faults: the faulting instruction).
    pub rip: u64,
    /// Instructions retired since reset.
    pub insn_count: u64,
    /// Up to 15 bytes at CS:RIP.
    pub bytes: Vec<u8>,
    /// Code size at the stop.
    pub code_bits: u8,
}

impl StopReport {
    /// The process exit status `hvsim run` gives for this stop: the isa-debug-exit
    /// convention `(value << 1) | 1`, 0 for HLT and for the instruction limit, 3 for a
    /// fault or an unsupported instruction, 4 for a shutdown.
    pub fn exit_status(&self) -> i32 {
        match self.reason {
            StopReason::DebugExit(v) => hvsim_devices::DebugExit::exit_status(v),
            StopReason::Halted { .. }
            | StopReason::InsnLimit
            | StopReason::Yield
            | StopReason::Reset
            | StopReason::PowerOff => 0,
            StopReason::Shutdown { .. } | StopReason::VmxAbort { .. } => 4,
            StopReason::Exception { .. } | StopReason::Unsupported { .. } => 3,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

impl fmt::Display for StopReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{:04x}:{:x}", self.cs, self.rip);
        match &self.reason {
            StopReason::Halted { interrupts_enabled: false } => {
                write!(f, "halted with interrupts disabled at {at}")?
            }
            StopReason::Halted { interrupts_enabled: true } => {
                write!(f, "halted at {at} (interrupts enabled, none can arrive)")?
            }
            StopReason::Shutdown { exceptions } => {
                let chain: Vec<String> = exceptions.iter().map(|e| e.to_string()).collect();
                write!(f, "shutdown (triple fault: {}) at {at}", chain.join(", then "))?
            }
            StopReason::DebugExit(v) => write!(f, "debug exit with value {v:#x} at {at}")?,
            StopReason::InsnLimit => write!(f, "instruction limit reached at {at}")?,
            StopReason::Reset => write!(f, "system reset requested at {at}")?,
            StopReason::PowerOff => write!(f, "powered off (ACPI S5) at {at}")?,
            StopReason::Yield => write!(f, "yield at {at}")?,
            StopReason::Exception { exception, insn } => {
                write!(f, "unhandled exception {exception} at {at}")?;
                if let Some(i) = insn {
                    write!(f, ": {i}")?;
                }
                write!(f, " [bytes {}]", hex(&self.bytes))?;
            }
            StopReason::VmxAbort { indicator } => {
                write!(f, "VMX abort (indicator {indicator}, SDM Vol. 3C 28.7) at {at}")?
            }
            StopReason::Unsupported { what } => {
                write!(f, "unsupported at {at}: {what} [bytes {}]", hex(&self.bytes))?
            }
        }
        write!(f, " after {} instructions", self.insn_count)
    }
}

/// One `--trace insn` line: counter, CS:RIP, bytes, disassembly.
pub(crate) fn trace_line(count: u64, cs: u16, rip: u64, insn: &Insn) -> String {
    let mut text = String::new();
    IntelFormatter::new().format(&insn.iced, &mut text);
    format!(
        "{count:>10} {cs:04x}:{rip:016x} {:<30} {text}",
        hex(&insn.bytes[..usize::from(insn.len).min(15)])
    )
}
