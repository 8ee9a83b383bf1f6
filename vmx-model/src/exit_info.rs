//! Layouts of the VM-exit information fields (SDM Vol. 3C "VM Exits", section "Exit
//! Qualification for VM Exits" and "VM-Exit Instruction-Information Field", and "Information
//! for VM Exits Due to Vectored Events"): encoders the world switch uses and decoders that
//! name each bit for `explain`.
//!
//! Every layout is a struct with `encode(&self) -> u64/u32` and `decode(raw) -> Self`
//! (decode ignores reserved bits; encode(decode(x)) = x for every x without reserved
//! bits, unit-tested) and `fields(&self)`, which lists `(name, value)` pairs in bit order.

use crate::exit_reason::VmxExitReason;

/// A decoded field list for `explain`: `(bit-field name, value)` in bit order.
pub type Fields = Vec<(&'static str, u64)>;

/// Interruption type (bits 10:8 of the interruption-information formats).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum InterruptionType {
    /// 0: external interrupt.
    ExternalInterrupt = 0,
    /// 1: reserved.
    Reserved = 1,
    /// 2: non-maskable interrupt (NMI).
    Nmi = 2,
    /// 3: hardware exception.
    HardwareException = 3,
    /// 4: software interrupt (INT n).
    SoftwareInterrupt = 4,
    /// 5: privileged software exception (INT1).
    PrivilegedSoftwareException = 5,
    /// 6: software exception (INT3, INTO).
    SoftwareException = 6,
    /// 7: other event (injection: pending MTF VM exit).
    Other = 7,
}

impl InterruptionType {
    /// The type with this 3-bit value.
    pub const fn from_bits(v: u32) -> InterruptionType {
        match v & 7 {
            0 => InterruptionType::ExternalInterrupt,
            1 => InterruptionType::Reserved,
            2 => InterruptionType::Nmi,
            3 => InterruptionType::HardwareException,
            4 => InterruptionType::SoftwareInterrupt,
            5 => InterruptionType::PrivilegedSoftwareException,
            6 => InterruptionType::SoftwareException,
            _ => InterruptionType::Other,
        }
    }
}

/// The interruption-information format shared by the VM-entry interruption-information
/// field, the VM-exit interruption-information field and the IDT-vectoring information
/// field: bits 7:0 vector, 10:8 type, 11 error code valid (deliver error code on entry),
/// 12 NMI unblocking due to IRET (exit interruption information only), 31 valid.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct InterruptionInfo {
    /// Vector of the interrupt or exception.
    pub vector: u8,
    /// Interruption type.
    pub kind: InterruptionType,
    /// Error code valid / deliver error code.
    pub deliver_error_code: bool,
    /// NMI unblocking due to IRET (VM-exit interruption information only).
    pub nmi_unblocking: bool,
    /// Valid.
    pub valid: bool,
}

impl InterruptionInfo {
    /// Bit 11.
    pub const ERROR_CODE: u32 = 1 << 11;
    /// Bit 12.
    pub const NMI_UNBLOCKING: u32 = 1 << 12;
    /// Bit 31.
    pub const VALID: u32 = 1 << 31;
    /// Bits reserved in the VM-entry interruption-information field: 30:12.
    pub const RESERVED: u32 = 0x7FFF_F000;

    /// A valid event.
    pub const fn new(vector: u8, kind: InterruptionType, deliver_error_code: bool) -> Self {
        InterruptionInfo { vector, kind, deliver_error_code, nmi_unblocking: false, valid: true }
    }
    /// Decodes the 32-bit field.
    pub const fn decode(raw: u32) -> Self {
        InterruptionInfo {
            vector: raw as u8,
            kind: InterruptionType::from_bits(raw >> 8),
            deliver_error_code: raw & Self::ERROR_CODE != 0,
            nmi_unblocking: raw & Self::NMI_UNBLOCKING != 0,
            valid: raw & Self::VALID != 0,
        }
    }
    /// Encodes the 32-bit field.
    pub const fn encode(&self) -> u32 {
        self.vector as u32
            | (self.kind as u32) << 8
            | if self.deliver_error_code { Self::ERROR_CODE } else { 0 }
            | if self.nmi_unblocking { Self::NMI_UNBLOCKING } else { 0 }
            | if self.valid { Self::VALID } else { 0 }
    }
    /// Named bit fields.
    pub fn fields(&self) -> Fields {
        vec![
            ("vector", u64::from(self.vector)),
            ("type", self.kind as u64),
            ("error code valid", self.deliver_error_code as u64),
            ("NMI unblocking due to IRET", self.nmi_unblocking as u64),
            ("valid", self.valid as u64),
        ]
    }
}

/// Access type of a control-register access (bits 5:4).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum CrAccessType {
    /// 0: MOV to CR.
    MovToCr = 0,
    /// 1: MOV from CR.
    MovFromCr = 1,
    /// 2: CLTS.
    Clts = 2,
    /// 3: LMSW.
    Lmsw = 3,
}

/// Exit qualification for control-register accesses (exit reason 28): bits 3:0 CR
/// number, 5:4 access type, 6 LMSW operand type (1 = memory), 11:8 GPR, 31:16 LMSW
/// source data.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct CrAccessQualification {
    /// Control register (0 for CLTS and LMSW).
    pub cr: u8,
    /// Access type.
    pub access: CrAccessType,
    /// LMSW with a memory operand.
    pub lmsw_memory: bool,
    /// General-purpose register of MOV CR (0 RAX ... 15 R15).
    pub gpr: u8,
    /// LMSW source data.
    pub lmsw_source: u16,
}

impl CrAccessQualification {
    /// Encodes the qualification.
    pub const fn encode(&self) -> u64 {
        (self.cr as u64 & 0xF)
            | (self.access as u64) << 4
            | (self.lmsw_memory as u64) << 6
            | (self.gpr as u64 & 0xF) << 8
            | (self.lmsw_source as u64) << 16
    }
    /// Decodes the qualification.
    pub const fn decode(q: u64) -> Self {
        CrAccessQualification {
            cr: (q & 0xF) as u8,
            access: match (q >> 4) & 3 {
                0 => CrAccessType::MovToCr,
                1 => CrAccessType::MovFromCr,
                2 => CrAccessType::Clts,
                _ => CrAccessType::Lmsw,
            },
            lmsw_memory: q & (1 << 6) != 0,
            gpr: ((q >> 8) & 0xF) as u8,
            lmsw_source: (q >> 16) as u16,
        }
    }
    /// Named bit fields.
    pub fn fields(&self) -> Fields {
        vec![
            ("control register", u64::from(self.cr)),
            ("access type", self.access as u64),
            ("LMSW operand is memory", self.lmsw_memory as u64),
            ("general-purpose register", u64::from(self.gpr)),
            ("LMSW source data", u64::from(self.lmsw_source)),
        ]
    }
}

/// Exit qualification for MOV DR (exit reason 29): bits 2:0 debug register, 4 direction
/// (1 = MOV from DR), 11:8 GPR.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct MovDrQualification {
    /// Debug register number.
    pub dr: u8,
    /// MOV from DR (else MOV to DR).
    pub from_dr: bool,
    /// General-purpose register.
    pub gpr: u8,
}

impl MovDrQualification {
    /// Encodes the qualification.
    pub const fn encode(&self) -> u64 {
        (self.dr as u64 & 7) | (self.from_dr as u64) << 4 | (self.gpr as u64 & 0xF) << 8
    }
    /// Decodes the qualification.
    pub const fn decode(q: u64) -> Self {
        MovDrQualification {
            dr: (q & 7) as u8,
            from_dr: q & 0x10 != 0,
            gpr: ((q >> 8) & 0xF) as u8,
        }
    }
    /// Named bit fields.
    pub fn fields(&self) -> Fields {
        vec![
            ("debug register", u64::from(self.dr)),
            ("direction (1 = MOV from DR)", self.from_dr as u64),
            ("general-purpose register", u64::from(self.gpr)),
        ]
    }
}

/// Exit qualification for I/O instructions (exit reason 30): bits 2:0 size - 1, 3
/// direction (1 = IN), 4 string, 5 REP, 6 operand encoding (1 = immediate), 31:16 port.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct IoQualification {
    /// Access size in bytes (1, 2 or 4).
    pub size: u8,
    /// IN/INS (else OUT/OUTS).
    pub is_in: bool,
    /// INS/OUTS.
    pub string: bool,
    /// REP prefixed.
    pub rep: bool,
    /// Port given as an immediate (else in DX).
    pub immediate: bool,
    /// Port number.
    pub port: u16,
}

impl IoQualification {
    /// Encodes the qualification.
    pub const fn encode(&self) -> u64 {
        (self.size.saturating_sub(1) as u64 & 7)
            | (self.is_in as u64) << 3
            | (self.string as u64) << 4
            | (self.rep as u64) << 5
            | (self.immediate as u64) << 6
            | (self.port as u64) << 16
    }
    /// Decodes the qualification.
    pub const fn decode(q: u64) -> Self {
        IoQualification {
            size: (q & 7) as u8 + 1,
            is_in: q & 8 != 0,
            string: q & 0x10 != 0,
            rep: q & 0x20 != 0,
            immediate: q & 0x40 != 0,
            port: (q >> 16) as u16,
        }
    }
    /// Named bit fields.
    pub fn fields(&self) -> Fields {
        vec![
            ("size of access", u64::from(self.size)),
            ("direction (1 = IN)", self.is_in as u64),
            ("string instruction", self.string as u64),
            ("REP prefixed", self.rep as u64),
            ("operand encoding (1 = immediate)", self.immediate as u64),
            ("port number", u64::from(self.port)),
        ]
    }
}

/// Exit qualification bits of an EPT violation (exit reason 48).
pub mod ept_violation {
    /// Bit 0: data read.
    pub const READ: u64 = 1 << 0;
    /// Bit 1: data write.
    pub const WRITE: u64 = 1 << 1;
    /// Bit 2: instruction fetch.
    pub const FETCH: u64 = 1 << 2;
    /// Bit 3: the guest-physical address was readable.
    pub const READABLE: u64 = 1 << 3;
    /// Bit 4: writable.
    pub const WRITABLE: u64 = 1 << 4;
    /// Bit 5: executable (supervisor-mode executable with MBEC).
    pub const EXECUTABLE: u64 = 1 << 5;
    /// Bit 6: user-mode executable (MBEC; else undefined).
    pub const USER_EXECUTABLE: u64 = 1 << 6;
    /// Bit 7: the guest-linear address field is valid.
    pub const LINEAR_VALID: u64 = 1 << 7;
    /// Bit 8: the access was to the translation of a linear address (else to a paging
    /// structure).
    pub const TRANSLATED_ACCESS: u64 = 1 << 8;
    /// Bit 9: the linear address is user-mode (advanced information).
    pub const USER_LINEAR: u64 = 1 << 9;
    /// Bit 10: the page is read/write (advanced information).
    pub const READ_WRITE_PAGE: u64 = 1 << 10;
    /// Bit 11: the page is execute-disable (advanced information).
    pub const EXECUTE_DISABLE_PAGE: u64 = 1 << 11;
    /// Bit 12: NMI unblocking due to IRET.
    pub const NMI_UNBLOCKING: u64 = 1 << 12;
    /// Names of bits 0-12, in order.
    pub const NAMES: [(&str, u64); 13] = [
        ("data read", READ),
        ("data write", WRITE),
        ("instruction fetch", FETCH),
        ("readable", READABLE),
        ("writable", WRITABLE),
        ("executable", EXECUTABLE),
        ("user-mode executable", USER_EXECUTABLE),
        ("guest-linear address valid", LINEAR_VALID),
        ("access to translated address", TRANSLATED_ACCESS),
        ("user-mode linear address", USER_LINEAR),
        ("read/write page", READ_WRITE_PAGE),
        ("execute-disable page", EXECUTE_DISABLE_PAGE),
        ("NMI unblocking due to IRET", NMI_UNBLOCKING),
    ];
    /// Named bits of an EPT-violation qualification.
    pub fn fields(q: u64) -> super::Fields {
        NAMES.iter().map(|(n, m)| (*n, (q & m != 0) as u64)).collect()
    }
}

/// Source of a task switch (exit qualification bits 31:30).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum TaskSwitchSource {
    /// 0: CALL.
    Call = 0,
    /// 1: IRET.
    Iret = 1,
    /// 2: JMP.
    Jmp = 2,
    /// 3: task gate in the IDT.
    TaskGate = 3,
}

/// Exit qualification for task switches (exit reason 9): bits 15:0 new TSS selector,
/// 31:30 source.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct TaskSwitchQualification {
    /// Selector of the new task's TSS.
    pub selector: u16,
    /// Source of the switch.
    pub source: TaskSwitchSource,
}

impl TaskSwitchQualification {
    /// Encodes the qualification.
    pub const fn encode(&self) -> u64 {
        self.selector as u64 | (self.source as u64) << 30
    }
    /// Decodes the qualification.
    pub const fn decode(q: u64) -> Self {
        TaskSwitchQualification {
            selector: q as u16,
            source: match (q >> 30) & 3 {
                0 => TaskSwitchSource::Call,
                1 => TaskSwitchSource::Iret,
                2 => TaskSwitchSource::Jmp,
                _ => TaskSwitchSource::TaskGate,
            },
        }
    }
    /// Named bit fields.
    pub fn fields(&self) -> Fields {
        vec![("TSS selector", u64::from(self.selector)), ("source", self.source as u64)]
    }
}

/// Exit qualification for APIC-access VM exits (exit reason 44): bits 11:0 page offset
/// (linear accesses), 15:12 access type, 16 asynchronous to instruction execution.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ApicAccessQualification {
    /// Offset within the APIC-access page.
    pub offset: u16,
    /// Access type: 0 linear read, 1 linear write, 2 linear fetch, 3 linear during event
    /// delivery, 10 guest-physical during event delivery, 15 guest-physical fetch.
    pub access_type: u8,
    /// Asynchronous to instruction execution.
    pub asynchronous: bool,
}

impl ApicAccessQualification {
    /// Encodes the qualification.
    pub const fn encode(&self) -> u64 {
        (self.offset as u64 & 0xFFF)
            | (self.access_type as u64 & 0xF) << 12
            | (self.asynchronous as u64) << 16
    }
    /// Decodes the qualification.
    pub const fn decode(q: u64) -> Self {
        ApicAccessQualification {
            offset: (q & 0xFFF) as u16,
            access_type: ((q >> 12) & 0xF) as u8,
            asynchronous: q & (1 << 16) != 0,
        }
    }
    /// Named bit fields.
    pub fn fields(&self) -> Fields {
        vec![
            ("page offset", u64::from(self.offset)),
            ("access type", u64::from(self.access_type)),
            ("asynchronous", self.asynchronous as u64),
        ]
    }
}

/// Exit qualification for INVLPG: the linear-address operand, with bits 63:32 clear
/// outside 64-bit mode (SDM Vol. 3C "Exit Qualification for VM Exits").
pub const fn linear_address_qualification(address: u64, long_mode: bool) -> u64 {
    if long_mode {
        address
    } else {
        address & 0xFFFF_FFFF
    }
}

/// Exit qualification for the instructions whose operand is described by the VM-exit
/// instruction information (VMCLEAR, VMPTRLD, VMPTRST, VMXON, VMREAD, VMWRITE, INVEPT,
/// INVPCID, INVVPID, LGDT/LIDT/SGDT/SIDT, LLDT/LTR/SLDT/STR, XSAVES, XRSTORS): the
/// displacement of the memory operand, sign-extended to 64 bits (0 for a register operand).
pub const fn displacement_qualification(displacement: i32) -> u64 {
    displacement as i64 as u64
}

/// Address size of the instruction-information formats (bits 9:7).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum AddressSize {
    /// 0: 16-bit.
    Bits16 = 0,
    /// 1: 32-bit.
    Bits32 = 1,
    /// 2: 64-bit.
    Bits64 = 2,
}

impl AddressSize {
    const fn from_bits(v: u32) -> AddressSize {
        match v & 7 {
            0 => AddressSize::Bits16,
            1 => AddressSize::Bits32,
            _ => AddressSize::Bits64,
        }
    }
}

/// Identity of a descriptor-table instruction (instruction-information bits 29:28): for
/// exit reason 46 0 SGDT, 1 SIDT, 2 LGDT, 3 LIDT; for exit reason 47 0 SLDT, 1 STR,
/// 2 LLDT, 3 LTR.
pub mod table_instruction {
    /// SGDT (reason 46) / SLDT (reason 47).
    pub const SGDT_SLDT: u8 = 0;
    /// SIDT / STR.
    pub const SIDT_STR: u8 = 1;
    /// LGDT / LLDT.
    pub const LGDT_LLDT: u8 = 2;
    /// LIDT / LTR.
    pub const LIDT_LTR: u8 = 3;
}

/// The VM-exit instruction-information layout of instructions with a memory (or register)
/// operand: VMCLEAR, VMPTRLD, VMPTRST, VMXON, XRSTORS, XSAVES, INVEPT, INVPCID,
/// INVVPID, VMREAD, VMWRITE, LIDT/LGDT/SIDT/SGDT and LLDT/LTR/SLDT/STR:
///
/// | bits | meaning |
/// |------|---------|
/// | 1:0 | scaling (0 none, 1 by 2, 2 by 4, 3 by 8) |
/// | 6:3 | reg1: register operand (VMREAD/VMWRITE/LLDT... with bit 10 = 1) |
/// | 9:7 | address size |
/// | 10 | operand is a register (VMREAD, VMWRITE, LLDT/LTR/SLDT/STR) |
/// | 11 | operand size of LIDT/LGDT/SIDT/SGDT (0 16-bit, 1 32-bit) |
/// | 17:15 | segment register (0 ES ... 5 GS) |
/// | 21:18 | index register; 22 index invalid |
/// | 26:23 | base register; 27 base invalid |
/// | 31:28 | reg2 (INVEPT/INVPCID/INVVPID type, VMREAD/VMWRITE other operand); for the descriptor-table instructions bits 29:28 are the instruction identity |
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct InstructionInfo {
    /// Scaling exponent (0-3).
    pub scaling: u8,
    /// reg1.
    pub reg1: u8,
    /// Address size.
    pub address_size: AddressSize,
    /// The operand is a register.
    pub register_operand: bool,
    /// 32-bit operand size (descriptor-table instructions).
    pub operand_size_32: bool,
    /// Segment register.
    pub segment: u8,
    /// Index register, if any.
    pub index: Option<u8>,
    /// Base register, if any.
    pub base: Option<u8>,
    /// reg2, or the instruction identity in bits 1:0 for descriptor-table instructions.
    pub reg2: u8,
}

impl InstructionInfo {
    /// Encodes the field.
    pub const fn encode(&self) -> u32 {
        (self.scaling as u32 & 3)
            | (self.reg1 as u32 & 0xF) << 3
            | (self.address_size as u32) << 7
            | (self.register_operand as u32) << 10
            | (self.operand_size_32 as u32) << 11
            | (self.segment as u32 & 7) << 15
            | match self.index {
                Some(r) => (r as u32 & 0xF) << 18,
                None => 1 << 22,
            }
            | match self.base {
                Some(r) => (r as u32 & 0xF) << 23,
                None => 1 << 27,
            }
            | (self.reg2 as u32 & 0xF) << 28
    }
    /// Decodes the field.
    pub const fn decode(v: u32) -> Self {
        InstructionInfo {
            scaling: (v & 3) as u8,
            reg1: ((v >> 3) & 0xF) as u8,
            address_size: AddressSize::from_bits(v >> 7),
            register_operand: v & (1 << 10) != 0,
            operand_size_32: v & (1 << 11) != 0,
            segment: ((v >> 15) & 7) as u8,
            index: if v & (1 << 22) != 0 { None } else { Some(((v >> 18) & 0xF) as u8) },
            base: if v & (1 << 27) != 0 { None } else { Some(((v >> 23) & 0xF) as u8) },
            reg2: ((v >> 28) & 0xF) as u8,
        }
    }
    /// Named bit fields.
    pub fn fields(&self) -> Fields {
        vec![
            ("scaling", u64::from(self.scaling)),
            ("reg1", u64::from(self.reg1)),
            ("address size", self.address_size as u64),
            ("register operand", self.register_operand as u64),
            ("operand size 32", self.operand_size_32 as u64),
            ("segment register", u64::from(self.segment)),
            ("index register", self.index.map_or(0, u64::from)),
            ("index invalid", self.index.is_none() as u64),
            ("base register", self.base.map_or(0, u64::from)),
            ("base invalid", self.base.is_none() as u64),
            ("reg2 / instruction identity", u64::from(self.reg2)),
        ]
    }
}

/// VM-exit instruction information for INS/OUTS (when `IA32_VMX_BASIC[54]`): bits 9:7
/// address size, 17:15 segment register (OUTS only).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct InsOutsInfo {
    /// Address size.
    pub address_size: AddressSize,
    /// Segment register of the source (OUTS; ES for INS).
    pub segment: u8,
}

impl InsOutsInfo {
    /// Encodes the field.
    pub const fn encode(&self) -> u32 {
        (self.address_size as u32) << 7 | (self.segment as u32 & 7) << 15
    }
    /// Decodes the field.
    pub const fn decode(v: u32) -> Self {
        InsOutsInfo { address_size: AddressSize::from_bits(v >> 7), segment: ((v >> 15) & 7) as u8 }
    }
    /// Named bit fields.
    pub fn fields(&self) -> Fields {
        vec![
            ("address size", self.address_size as u64),
            ("segment register", u64::from(self.segment)),
        ]
    }
}

/// VM-exit instruction information for RDRAND/RDSEED: bits 6:3 destination register,
/// 12:11 operand size (0 16-bit, 1 32-bit, 2 64-bit).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct RdrandInfo {
    /// Destination register.
    pub register: u8,
    /// Operand size code.
    pub operand_size: u8,
}

impl RdrandInfo {
    /// Encodes the field.
    pub const fn encode(&self) -> u32 {
        (self.register as u32 & 0xF) << 3 | (self.operand_size as u32 & 3) << 11
    }
    /// Decodes the field.
    pub const fn decode(v: u32) -> Self {
        RdrandInfo { register: ((v >> 3) & 0xF) as u8, operand_size: ((v >> 11) & 3) as u8 }
    }
    /// Named bit fields.
    pub fn fields(&self) -> Fields {
        vec![
            ("destination register", u64::from(self.register)),
            ("operand size", u64::from(self.operand_size)),
        ]
    }
}

/// The exit qualification of a VM exit, named field by field, for the exit reasons
/// whose qualification has a layout; `None` for the others (see
/// [`crate::ExitReasonInfo::qualification`] for what they hold).
pub fn qualification_fields(reason: VmxExitReason, q: u64) -> Option<Fields> {
    Some(match reason {
        VmxExitReason::CR_ACCESS => CrAccessQualification::decode(q).fields(),
        VmxExitReason::DR_ACCESS => MovDrQualification::decode(q).fields(),
        VmxExitReason::IO_INSTRUCTION => IoQualification::decode(q).fields(),
        VmxExitReason::EPT_VIOLATION => ept_violation::fields(q),
        VmxExitReason::TASK_SWITCH => TaskSwitchQualification::decode(q).fields(),
        VmxExitReason::APIC_ACCESS => ApicAccessQualification::decode(q).fields(),
        VmxExitReason::INVLPG => vec![("linear address", q)],
        VmxExitReason::ENTRY_FAIL_GUEST_STATE => vec![(
            match q {
                2 => "PDPTE loading failed",
                3 => "NMI injection blocked by STI",
                4 => "invalid VMCS link pointer",
                _ => "invalid guest state",
            },
            q,
        )],
        VmxExitReason::ENTRY_FAIL_MSR_LOADING => vec![("failing MSR-load entry (1-based)", q)],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// decode then encode keeps every defined bit of each layout.
        #[test]
        fn layouts_round_trip(raw in any::<u64>()) {
            let cr = raw & 0xFFFF_0F7F;
            prop_assert_eq!(CrAccessQualification::decode(cr).encode(), cr);
            let dr = raw & 0xF17;
            prop_assert_eq!(MovDrQualification::decode(dr).encode(), dr);
            let io = raw & 0xFFFF_007F;
            let io_ok = io & 7 != 7; // size - 1 of 7 has no byte count that encodes back
            if io_ok { prop_assert_eq!(IoQualification::decode(io).encode(), io); }
            let ts = raw & 0xC000_FFFF;
            prop_assert_eq!(TaskSwitchQualification::decode(ts).encode(), ts);
            let ii = (raw as u32) & 0x8000_1FFF;
            prop_assert_eq!(InterruptionInfo::decode(ii).encode(), ii);
            // Bits 2 and 14:12 are undefined; registers of invalid index/base read as 0.
            let mut info = (raw as u32) & !0x7004;
            info = (info & !(7 << 7)) | ((((raw as u32) >> 7) & 7) % 3) << 7;
            if info & (1 << 22) != 0 { info &= !(0xF << 18); }
            if info & (1 << 27) != 0 { info &= !(0xF << 23); }
            prop_assert_eq!(InstructionInfo::decode(info).encode(), info);
            prop_assert!(qualification_fields(VmxExitReason::CR_ACCESS, raw).is_some());
        }
    }

    /// SDM Vol. 3C "Exit Qualification for Control-Register Accesses".
    #[test]
    fn cr_access_layout() {
        let q = CrAccessQualification {
            cr: 3,
            access: CrAccessType::MovToCr,
            lmsw_memory: false,
            gpr: 11,
            lmsw_source: 0,
        };
        assert_eq!(q.encode(), 0xB03);
        let l = CrAccessQualification {
            cr: 0,
            access: CrAccessType::Lmsw,
            lmsw_memory: true,
            gpr: 0,
            lmsw_source: 0xFFFF,
        };
        assert_eq!(l.encode(), 0xFFFF_0070);
        assert_eq!(CrAccessQualification::decode(l.encode()), l);
        assert_eq!(q.fields()[3], ("general-purpose register", 11));
    }

    /// SDM Vol. 3C "Exit Qualification for I/O Instructions" and "for MOV DR".
    #[test]
    fn io_and_dr_layouts() {
        let io = IoQualification {
            size: 4,
            is_in: true,
            string: true,
            rep: true,
            immediate: false,
            port: 0x3F8,
        };
        assert_eq!(io.encode(), 0x03F8_003B);
        assert_eq!(IoQualification::decode(io.encode()), io);
        let dr = MovDrQualification { dr: 7, from_dr: true, gpr: 2 };
        assert_eq!(dr.encode(), 0x217);
        assert_eq!(MovDrQualification::decode(0x217), dr);
    }

    /// SDM Vol. 3C "Format of the VM-Entry Interruption-Information Field".
    #[test]
    fn interruption_info_layout() {
        let gp = InterruptionInfo::new(13, InterruptionType::HardwareException, true);
        assert_eq!(gp.encode(), 0x8000_0B0D);
        assert_eq!(InterruptionInfo::decode(0x8000_0B0D), gp);
        let nmi = InterruptionInfo::decode(0x8000_1202);
        assert!(nmi.nmi_unblocking && nmi.kind == InterruptionType::Nmi);
        assert_eq!(nmi.encode(), 0x8000_1202);
    }

    /// SDM Vol. 3C "VM-Exit Instruction-Information Field" round trips, plus the
    /// task-switch, APIC-access and EPT-violation layouts.
    #[test]
    fn instruction_info_and_other_layouts_round_trip() {
        for v in [0u32, 0x0040_0000 | 0x0800_0000, 0x1234_5678 & !0x7000, 0xF3C0_3DFF & !0x7000] {
            let d = InstructionInfo::decode(v);
            assert_eq!(InstructionInfo::decode(d.encode()), d, "{v:#x}");
        }
        let i = InstructionInfo {
            scaling: 3,
            reg1: 0,
            address_size: AddressSize::Bits64,
            register_operand: false,
            operand_size_32: false,
            segment: 3,
            index: Some(1),
            base: None,
            reg2: 6,
        };
        assert_eq!(i.encode(), 3 | 2 << 7 | 3 << 15 | 1 << 18 | 1 << 27 | 6 << 28);
        let ts = TaskSwitchQualification { selector: 0x28, source: TaskSwitchSource::TaskGate };
        assert_eq!(ts.encode(), 0xC000_0028);
        let apic = ApicAccessQualification { offset: 0x80, access_type: 1, asynchronous: false };
        assert_eq!(apic.encode(), 0x1080);
        assert_eq!(ApicAccessQualification::decode(0x1080), apic);
        let ins = InsOutsInfo { address_size: AddressSize::Bits32, segment: 3 };
        assert_eq!(InsOutsInfo::decode(ins.encode()), ins);
        assert_eq!(RdrandInfo { register: 1, operand_size: 2 }.encode(), 0x1008);
        let q = ept_violation::WRITE | ept_violation::READABLE | ept_violation::LINEAR_VALID;
        let named = ept_violation::fields(q);
        assert_eq!(named.iter().filter(|(_, v)| *v == 1).count(), 3);
        assert_eq!(linear_address_qualification(0xFFFF_8000_1234_0000, false), 0x1234_0000);
        assert_eq!(displacement_qualification(-8), 0xFFFF_FFFF_FFFF_FFF8);
    }
}
