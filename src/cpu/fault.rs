//! What an instruction can end with besides success: architectural exceptions (values,
//! never panics), and the events that stop or pause the run loop.

use std::fmt;

/// Exception vectors (SDM Vol. 3A §6.15 "Exception and Interrupt Reference").
pub mod vector {
    /// Divide error.
    pub const DE: u8 = 0;
    /// Debug.
    pub const DB: u8 = 1;
    /// Non-maskable interrupt.
    pub const NMI: u8 = 2;
    /// Breakpoint.
    pub const BP: u8 = 3;
    /// Overflow.
    pub const OF: u8 = 4;
    /// BOUND range exceeded.
    pub const BR: u8 = 5;
    /// Invalid opcode.
    pub const UD: u8 = 6;
    /// Device not available.
    pub const NM: u8 = 7;
    /// Double fault.
    pub const DF: u8 = 8;
    /// Invalid TSS.
    pub const TS: u8 = 10;
    /// Segment not present.
    pub const NP: u8 = 11;
    /// Stack fault.
    pub const SS: u8 = 12;
    /// General protection.
    pub const GP: u8 = 13;
    /// Page fault.
    pub const PF: u8 = 14;
    /// x87 floating point.
    pub const MF: u8 = 16;
    /// Alignment check.
    pub const AC: u8 = 17;

    /// The mnemonic of a vector ("#GP"), or "#??".
    pub fn name(v: u8) -> &'static str {
        const NAMES: [&str; 22] = [
            "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP",
            "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
        ];
        NAMES.get(usize::from(v)).copied().unwrap_or("#??")
    }
}

/// An architectural exception raised by an instruction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    /// The vector.
    pub vector: u8,
    /// The error code, for vectors that push one.
    pub error_code: Option<u32>,
    /// For #PF: the faulting linear address (what CR2 receives on delivery).
    pub cr2: u64,
}

impl Exception {
    /// An exception without an error code.
    pub const fn new(vector: u8) -> Self {
        Self { vector, error_code: None, cr2: 0 }
    }
    /// An exception with an error code.
    pub const fn with_code(vector: u8, code: u32) -> Self {
        Self { vector, error_code: Some(code), cr2: 0 }
    }
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", vector::name(self.vector))?;
        if let Some(c) = self.error_code {
            write!(f, "({c:#x})")?;
        }
        if self.vector == vector::PF {
            write!(f, " at {:#x}", self.cr2)?;
        }
        Ok(())
    }
}

/// A feature hvsim does not emulate, reported at the guest's RIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// What is missing, e.g. "instruction FSIN".
    pub what: String,
}

/// How an instruction ended, other than by retiring normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An exception; the instruction did not retire and RIP is its first byte. Boxed so
    /// that `Result<(), Fault>` stays two words and returns in registers on the hot path.
    Exception(Box<Exception>),
    /// The instruction is not emulated; RIP is its first byte.
    Unsupported(Box<Unsupported>),
    /// The instruction did not retire and must be executed again (a long REP string
    /// operation yields to the run loop between chunks).
    Yield,
    /// HLT retired: the vCPU waits for an interrupt.
    Halt,
    /// The instruction retired and a device asked the run to stop (isa-debug-exit).
    DebugExit(u32),
    /// The instruction retired and asked for a system reset (keyboard controller pulse,
    /// port 0x92, the PIIX reset control register).
    Reset,
    /// The instruction retired and put the machine in ACPI S5 (soft off).
    PowerOff,
    /// A nested guest's access faulted in the nested page tables: the instruction did not
    /// retire, and the run loop performs the #VMEXIT the nested layer recorded.
    NestedPageFault,
}

impl Fault {
    /// Whether the instruction retired before this event.
    #[inline]
    pub fn retired(&self) -> bool {
        matches!(self, Fault::Halt | Fault::DebugExit(_) | Fault::Reset | Fault::PowerOff)
    }
}

impl From<Exception> for Fault {
    #[inline]
    fn from(e: Exception) -> Self {
        Fault::Exception(Box::new(e))
    }
}

/// The result of executing one instruction.
pub type ExecResult = Result<(), Fault>;

/// `Err(#UD)`.
#[inline]
pub fn ud<T>() -> Result<T, Fault> {
    Err(Fault::from(Exception::new(vector::UD)))
}

/// `Err(#GP(code))`.
#[inline]
pub fn gp<T>(code: u32) -> Result<T, Fault> {
    Err(Fault::from(Exception::with_code(vector::GP, code)))
}

/// `Err(#SS(code))`.
#[inline]
pub fn ss<T>(code: u32) -> Result<T, Fault> {
    Err(Fault::from(Exception::with_code(vector::SS, code)))
}

/// `Err(#NP(code))`.
#[inline]
pub fn np<T>(code: u32) -> Result<T, Fault> {
    Err(Fault::from(Exception::with_code(vector::NP, code)))
}

/// An unsupported-feature fault.
pub fn unsupported<T>(what: impl Into<String>) -> Result<T, Fault> {
    Err(Fault::Unsupported(Box::new(Unsupported { what: what.into() })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_stay_two_words() {
        // The hot path returns these from every handler; keep them in registers.
        assert!(std::mem::size_of::<ExecResult>() <= 16);
        assert!(std::mem::size_of::<Result<u64, Fault>>() <= 16);
    }
}
