//! Hardware task switching (SDM Vol. 3A Chapter 8 "Task Management"): JMP/CALL to a TSS
//! descriptor or task gate, a task gate in the IDT, and IRET with EFLAGS.NT set.

use super::fault::{unsupported, ExecResult};
use crate::machine::Machine;

/// What started a task switch; it decides the busy-bit, NT and back-link handling
/// (SDM Vol. 3A §8.3 "Task Switching", Table 8-2).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TaskSwitchSource {
    /// JMP to a TSS descriptor or task gate.
    Jmp,
    /// CALL to a TSS descriptor or task gate.
    Call,
    /// IRET with EFLAGS.NT = 1 (return to the task in the back link).
    Iret,
    /// An exception or interrupt through a task gate in the IDT.
    Interrupt,
}

impl Machine {
    /// Switches to the task whose TSS descriptor `tss_selector` names (a task gate has
    /// already been resolved to its TSS selector). For `Interrupt` sources with an error
    /// code, the code is pushed on the new task's stack after the switch. On success CS:EIP
    /// is the new task's.
    pub fn task_switch(
        &mut self,
        tss_selector: u16,
        source: TaskSwitchSource,
        error_code: Option<u32>,
    ) -> ExecResult {
        let _ = (tss_selector, source, error_code);
        unsupported("hardware task switch")
    }

    /// IRET with EFLAGS.NT = 1 outside IA-32e mode: switches back to the task named by the
    /// current TSS's back link.
    pub fn task_return(&mut self) -> ExecResult {
        unsupported("IRET with EFLAGS.NT set (task return)")
    }
}
