//! EXITINFO1/EXITINFO2 encoders and decoders for the exits whose information has a
//! layout (APM Vol. 2 §15.7-§15.14, §15.25.6, §15.33 "Decode Assists"). IOIO is in
//! [`crate::io_intercept`], MSR in [`crate::msr_intercept`], EXITINTINFO in
//! [`crate::event_injection`] (same format as EVENTINJ).

/// CR access EXITINFO1 bit 63 with decode assists: 1 for MOV to/from CRn, 0 for LMSW,
/// CLTS and SMSW (APM §15.33.1 "MOV CRx/DRx Intercepts").
pub const CR_MOV: u64 = 1 << 63;
/// CR/DR access EXITINFO1 bits 3:0: the general-purpose register operand.
pub const GPR_MASK: u64 = 0xF;

/// EXITINFO1 of a CRn read/write intercept with decode assists.
/// `gpr` is the register operand of MOV CRn (ignored, 0, for LMSW/CLTS/SMSW).
pub const fn cr_access(mov: bool, gpr: u8) -> u64 {
    if mov {
        CR_MOV | (gpr as u64 & GPR_MASK)
    } else {
        0
    }
}

/// Decodes a CR access EXITINFO1: (MOV CRn?, GPR number).
pub const fn decode_cr_access(info1: u64) -> (bool, u8) {
    (info1 & CR_MOV != 0, (info1 & GPR_MASK) as u8)
}

/// EXITINFO1 of a DRn read/write intercept with decode assists: the GPR operand.
pub const fn dr_access(gpr: u8) -> u64 {
    gpr as u64 & GPR_MASK
}

/// EXITINFO1/EXITINFO2 of an exception intercept (APM §15.12 "Exception Intercepts"):
/// EXITINFO1 is the error code the exception would push (0 if none), EXITINFO2 is the
/// faulting linear address for #PF (0 otherwise).
pub const fn exception(error_code: Option<u32>, cr2: Option<u64>) -> (u64, u64) {
    let info1 = match error_code {
        Some(e) => e as u64,
        None => 0,
    };
    let info2 = match cr2 {
        Some(a) => a,
        None => 0,
    };
    (info1, info2)
}

/// #NPF EXITINFO1 bits (APM §15.25.6 "Nested versus Guest Page Faults, Fault Ordering").
pub mod npf {
    /// Bit 0: the fault was a protection violation (the page was present).
    pub const PRESENT: u64 = 1 << 0;
    /// Bit 1: the access was a write.
    pub const WRITE: u64 = 1 << 1;
    /// Bit 2: the access was a user access (always 1 for nested walks, which are user).
    pub const USER: u64 = 1 << 2;
    /// Bit 3: a reserved bit was set in a nested page-table entry.
    pub const RESERVED: u64 = 1 << 3;
    /// Bit 4: the access was an instruction fetch.
    pub const FETCH: u64 = 1 << 4;
    /// Bit 6: shadow-stack access.
    pub const SHADOW_STACK: u64 = 1 << 6;
    /// Bit 32: the fault happened on the final guest-physical address of the access.
    pub const FINAL_TRANSLATION: u64 = 1 << 32;
    /// Bit 33: the fault happened on an access to a guest page table.
    pub const GUEST_PAGE_TABLE: u64 = 1 << 33;
    /// Bit 37: supervisor shadow-stack page (SSS check).
    pub const SUPERVISOR_SHADOW_STACK: u64 = 1 << 37;
}

/// `bit` if `c`, else 0.
const fn bit_if(c: bool, bit: u64) -> u64 {
    if c {
        bit
    } else {
        0
    }
}

/// The access that caused a #NPF.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct NpfAccess {
    /// Protection violation (the nested PTE was present).
    pub present: bool,
    /// Write access.
    pub write: bool,
    /// User access.
    pub user: bool,
    /// Reserved bit set in a nested PTE.
    pub reserved: bool,
    /// Instruction fetch.
    pub fetch: bool,
    /// The fault hit an access to a guest page table (else: the final translation).
    pub guest_page_table: bool,
}

impl NpfAccess {
    /// EXITINFO1 of the #NPF (EXITINFO2 is the faulting guest-physical address).
    pub const fn exitinfo1(&self) -> u64 {
        bit_if(self.present, npf::PRESENT)
            | bit_if(self.write, npf::WRITE)
            | bit_if(self.user, npf::USER)
            | bit_if(self.reserved, npf::RESERVED)
            | bit_if(self.fetch, npf::FETCH)
            | if self.guest_page_table { npf::GUEST_PAGE_TABLE } else { npf::FINAL_TRANSLATION }
    }

    /// Decodes EXITINFO1 of a #NPF.
    pub const fn decode(info1: u64) -> NpfAccess {
        NpfAccess {
            present: info1 & npf::PRESENT != 0,
            write: info1 & npf::WRITE != 0,
            user: info1 & npf::USER != 0,
            reserved: info1 & npf::RESERVED != 0,
            fetch: info1 & npf::FETCH != 0,
            guest_page_table: info1 & npf::GUEST_PAGE_TABLE != 0,
        }
    }
}

/// Task-switch EXITINFO2 bits (APM §15.14.5 "Task Switch Intercept" / Table C-1).
pub mod task_switch {
    /// Bit 36: the task switch was caused by IRET.
    pub const IRET: u64 = 1 << 36;
    /// Bit 38: the task switch was caused by a far JMP.
    pub const JMP: u64 = 1 << 38;
    /// Bit 44: EXITINFO2[31:0] holds an error code to push.
    pub const HAS_ERROR_CODE: u64 = 1 << 44;
    /// Bit 48: the value of EFLAGS.RF to save in the old TSS.
    pub const RF: u64 = 1 << 48;
}

/// What caused a task switch.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum TaskSwitchSource {
    /// CALL, INTn, an exception or an interrupt through a task gate.
    CallOrGate,
    /// IRET with EFLAGS.NT.
    Iret,
    /// Far JMP.
    Jmp,
}

/// EXITINFO1 (target TSS selector) and EXITINFO2 of a task-switch intercept.
pub const fn task_switch(
    selector: u16,
    source: TaskSwitchSource,
    error_code: Option<u32>,
    rf: bool,
) -> (u64, u64) {
    let mut info2 = match source {
        TaskSwitchSource::CallOrGate => 0,
        TaskSwitchSource::Iret => task_switch::IRET,
        TaskSwitchSource::Jmp => task_switch::JMP,
    };
    if let Some(e) = error_code {
        info2 |= task_switch::HAS_ERROR_CODE | e as u64;
    }
    if rf {
        info2 |= task_switch::RF;
    }
    (selector as u64, info2)
}

/// EXITINFO1 of INVLPG with decode assists: the linear address operand.
pub const fn invlpg(linear: u64) -> u64 {
    linear
}

/// EXITINFO1 of INTn (VMEXIT_SWINT) with decode assists: the interrupt number.
pub const fn swint(vector: u8) -> u64 {
    vector as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cr_and_dr_access() {
        assert_eq!(cr_access(true, 3), 0x8000_0000_0000_0003);
        assert_eq!(cr_access(false, 3), 0);
        assert_eq!(decode_cr_access(cr_access(true, 15)), (true, 15));
        assert_eq!(dr_access(0x17), 7);
    }

    #[test]
    fn exception_info() {
        assert_eq!(exception(Some(0x1B), Some(0xDEAD_0000)), (0x1B, 0xDEAD_0000));
        assert_eq!(exception(None, None), (0, 0));
    }

    #[test]
    fn npf_bits_32_and_33() {
        let a = NpfAccess {
            present: true,
            write: true,
            user: true,
            reserved: false,
            fetch: false,
            guest_page_table: false,
        };
        assert_eq!(a.exitinfo1(), 1 << 32 | 7);
        let walk = NpfAccess { guest_page_table: true, present: false, ..a };
        assert_eq!(walk.exitinfo1(), 1 << 33 | 6);
        assert_eq!(NpfAccess::decode(a.exitinfo1()), a);
        assert_eq!(NpfAccess::decode(walk.exitinfo1()), walk);
    }

    #[test]
    fn task_switch_info() {
        assert_eq!(task_switch(0x28, TaskSwitchSource::Iret, None, false), (0x28, 1 << 36));
        assert_eq!(
            task_switch(0x30, TaskSwitchSource::CallOrGate, Some(0x10), true),
            (0x30, 1 << 44 | 1 << 48 | 0x10)
        );
        assert_eq!(task_switch(0x30, TaskSwitchSource::Jmp, None, false).1, 1 << 38);
    }

    #[test]
    fn invlpg_and_swint() {
        assert_eq!(invlpg(0xFFFF_8000_0000_1000), 0xFFFF_8000_0000_1000);
        assert_eq!(swint(0x80), 0x80);
    }
}
