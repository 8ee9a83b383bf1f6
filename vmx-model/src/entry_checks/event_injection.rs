//! The VM-entry interruption-information checks of SDM Vol. 3C 27.2.1.3 "VM-Entry
//! Control Fields" (event injection). Failures are VMfailValid(7).

use super::{require, Controls, EntryFailure};
use crate::capabilities::{cr, VmxCapabilities};
use crate::controls::proc;
use crate::exit_info::{InterruptionInfo, InterruptionType};
use crate::vmcs::Vmcs;
use crate::vmcs_fields as f;

/// Exception vectors that push an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC.
pub const ERROR_CODE_VECTORS: [u8; 7] = [8, 10, 11, 12, 13, 14, 17];

/// The event-injection checks, when the valid bit of the VM-entry interruption
/// information is 1.
pub fn check(vmcs: &Vmcs, caps: &VmxCapabilities, c: &Controls) -> Result<(), EntryFailure> {
    let raw = vmcs.get(f::VM_ENTRY_INTERRUPTION_INFO) as u32;
    let info = InterruptionInfo::decode(raw);
    if !info.valid {
        return Ok(());
    }
    const FIELD: u32 = f::VM_ENTRY_INTERRUPTION_INFO;
    let ty = info.kind;
    let mtf_supported = caps.proc.may_be_one & u64::from(proc::MONITOR_TRAP_FLAG) != 0;
    require!(
        match ty {
            InterruptionType::Reserved => false,
            InterruptionType::Other => mtf_supported,
            _ => true,
        },
        EventTypeReserved,
        FIELD
    );
    match ty {
        InterruptionType::Nmi => require!(info.vector == 2, EventNmiVector, FIELD),
        InterruptionType::HardwareException => {
            require!(info.vector <= 31, EventHardwareExceptionVector, FIELD)
        }
        InterruptionType::Other => require!(info.vector == 0, EventOtherVector, FIELD),
        _ => {}
    }
    // Deliver error code iff protected mode (or no unrestricted guest), a hardware
    // exception, and a vector that pushes an error code.
    let pe = vmcs.get(f::GUEST_CR0) & cr::CR0_PE != 0;
    let needs_code = (!c.unrestricted() || pe)
        && ty == InterruptionType::HardwareException
        && ERROR_CODE_VECTORS.contains(&info.vector);
    if info.deliver_error_code {
        require!(needs_code, EventErrorCodeUnexpected, FIELD);
    } else {
        require!(!needs_code, EventErrorCodeMissing, FIELD);
    }
    require!(raw & InterruptionInfo::RESERVED == 0, EventReservedBits, FIELD);
    if info.deliver_error_code {
        require!(
            vmcs.get(f::VM_ENTRY_EXCEPTION_ERROR_CODE) >> 16 == 0,
            EventErrorCodeReserved,
            f::VM_ENTRY_EXCEPTION_ERROR_CODE
        );
    }
    if matches!(
        ty,
        InterruptionType::SoftwareInterrupt
            | InterruptionType::PrivilegedSoftwareException
            | InterruptionType::SoftwareException
    ) {
        let len = vmcs.get(f::VM_ENTRY_INSTRUCTION_LENGTH);
        let min = if caps.zero_length_injection { 0 } else { 1 };
        require!((min..=15).contains(&len), EventInstructionLength, f::VM_ENTRY_INSTRUCTION_LENGTH);
    }
    Ok(())
}
