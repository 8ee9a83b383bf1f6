//! SVM #VMEXIT exit codes (APM Vol. 2 Appendix C "SVM Intercept Exit Codes").
//!
//! The exit code lives in guest-visible memory (VMCB offset 0x070, 64 bits), so it is an
//! *open* newtype: [`SvmExitCode`] can hold any value, and [`SvmExitCode::info`] says
//! whether the value is one the APM defines. Every code is declared once in the
//! `svm_exit_codes!` table below, which emits the associated constants
//! (`SvmExitCode::IOIO`) and the [`EXIT_CODES`] table (name `"VMEXIT_IOIO"`, meaning,
//! what EXITINFO1/EXITINFO2 hold, APM reference).

use core::fmt;

/// Reference string for every row: the exit codes are defined by Table C-1.
const C1: &str = "APM Vol. 2 Appendix C Table C-1 \"SVM Intercept Codes\"";

/// EXITINFO text: the field is not used by this exit.
const NONE: &str = "not used";
/// EXITINFO1 of CR read/write intercepts (APM Vol. 2 "Decode Assists").
const CR_INFO1: &str =
    "with decode assists: bit 63 = 1 for MOV CRx (0 for LMSW, CLTS, SMSW), bits 3:0 = GPR number";
/// EXITINFO1 of DR read/write intercepts (decode assists).
const DR_INFO1: &str = "with decode assists: bits 3:0 = GPR number";
/// EXITINFO1 of exceptions that push an error code.
const EXCP_ERR_INFO1: &str = "error code pushed by the exception";
/// EXITINFO1 of #PF.
const EXCP_PF_INFO1: &str = "#PF error code";
/// EXITINFO2 of #PF.
const EXCP_PF_INFO2: &str = "faulting linear address (the value that would be written to CR2)";
/// EXITINFO1 of the CRn write traps.
const TRAP_INFO1: &str = "new value of the register after the write";

/// An SVM exit code as stored in VMCB.EXITCODE. Open: any 64-bit value is
/// representable; use [`SvmExitCode::info`] to see whether it is architecturally defined.
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize,
)]
pub struct SvmExitCode(pub u64);

/// One row of APM Table C-1.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ExitCodeInfo {
    /// The exit code.
    pub code: SvmExitCode,
    /// APM name, e.g. `"VMEXIT_IOIO"`.
    pub name: &'static str,
    /// One-line meaning.
    pub meaning: &'static str,
    /// What EXITINFO1 holds for this exit.
    pub exitinfo1: &'static str,
    /// What EXITINFO2 holds for this exit.
    pub exitinfo2: &'static str,
    /// Where the code is defined in the APM.
    pub reference: &'static str,
}

/// Declares each exit code once: an associated constant on [`SvmExitCode`] and a row of
/// [`EXIT_CODES`] named `VMEXIT_<CONST>`. Rows must be in ascending `u64` order
/// (unit-tested), so that lookup can binary-search.
macro_rules! svm_exit_codes {
    ($( $cname:ident = $code:expr, $meaning:literal, $info1:expr, $info2:expr, $reference:expr; )*) => {
        impl SvmExitCode {
            $(
                #[doc = concat!("`VMEXIT_", stringify!($cname), "`: ", $meaning, ".")]
                pub const $cname: SvmExitCode = SvmExitCode($code);
            )*
        }

        /// Every exit code defined by APM Table C-1, in ascending `u64` order (the
        /// negative error codes, stored as two's complement, come last).
        pub static EXIT_CODES: &[ExitCodeInfo] = &[
            $(
                ExitCodeInfo {
                    code: SvmExitCode::$cname,
                    name: concat!("VMEXIT_", stringify!($cname)),
                    meaning: $meaning,
                    exitinfo1: $info1,
                    exitinfo2: $info2,
                    reference: $reference,
                },
            )*
        ];
    };
}

svm_exit_codes! {
    CR0_READ = 0x000, "Read of CR0 (MOV from CR0 or SMSW)", CR_INFO1, NONE, C1;
    CR1_READ = 0x001, "Read of CR1 (MOV from CR1)", CR_INFO1, NONE, C1;
    CR2_READ = 0x002, "Read of CR2 (MOV from CR2)", CR_INFO1, NONE, C1;
    CR3_READ = 0x003, "Read of CR3 (MOV from CR3)", CR_INFO1, NONE, C1;
    CR4_READ = 0x004, "Read of CR4 (MOV from CR4)", CR_INFO1, NONE, C1;
    CR5_READ = 0x005, "Read of CR5 (MOV from CR5)", CR_INFO1, NONE, C1;
    CR6_READ = 0x006, "Read of CR6 (MOV from CR6)", CR_INFO1, NONE, C1;
    CR7_READ = 0x007, "Read of CR7 (MOV from CR7)", CR_INFO1, NONE, C1;
    CR8_READ = 0x008, "Read of CR8 (MOV from CR8)", CR_INFO1, NONE, C1;
    CR9_READ = 0x009, "Read of CR9 (MOV from CR9)", CR_INFO1, NONE, C1;
    CR10_READ = 0x00A, "Read of CR10 (MOV from CR10)", CR_INFO1, NONE, C1;
    CR11_READ = 0x00B, "Read of CR11 (MOV from CR11)", CR_INFO1, NONE, C1;
    CR12_READ = 0x00C, "Read of CR12 (MOV from CR12)", CR_INFO1, NONE, C1;
    CR13_READ = 0x00D, "Read of CR13 (MOV from CR13)", CR_INFO1, NONE, C1;
    CR14_READ = 0x00E, "Read of CR14 (MOV from CR14)", CR_INFO1, NONE, C1;
    CR15_READ = 0x00F, "Read of CR15 (MOV from CR15)", CR_INFO1, NONE, C1;
    CR0_WRITE = 0x010, "Write of CR0 (MOV to CR0, LMSW or CLTS)", CR_INFO1, NONE, C1;
    CR1_WRITE = 0x011, "Write of CR1 (MOV to CR1)", CR_INFO1, NONE, C1;
    CR2_WRITE = 0x012, "Write of CR2 (MOV to CR2)", CR_INFO1, NONE, C1;
    CR3_WRITE = 0x013, "Write of CR3 (MOV to CR3)", CR_INFO1, NONE, C1;
    CR4_WRITE = 0x014, "Write of CR4 (MOV to CR4)", CR_INFO1, NONE, C1;
    CR5_WRITE = 0x015, "Write of CR5 (MOV to CR5)", CR_INFO1, NONE, C1;
    CR6_WRITE = 0x016, "Write of CR6 (MOV to CR6)", CR_INFO1, NONE, C1;
    CR7_WRITE = 0x017, "Write of CR7 (MOV to CR7)", CR_INFO1, NONE, C1;
    CR8_WRITE = 0x018, "Write of CR8 (MOV to CR8)", CR_INFO1, NONE, C1;
    CR9_WRITE = 0x019, "Write of CR9 (MOV to CR9)", CR_INFO1, NONE, C1;
    CR10_WRITE = 0x01A, "Write of CR10 (MOV to CR10)", CR_INFO1, NONE, C1;
    CR11_WRITE = 0x01B, "Write of CR11 (MOV to CR11)", CR_INFO1, NONE, C1;
    CR12_WRITE = 0x01C, "Write of CR12 (MOV to CR12)", CR_INFO1, NONE, C1;
    CR13_WRITE = 0x01D, "Write of CR13 (MOV to CR13)", CR_INFO1, NONE, C1;
    CR14_WRITE = 0x01E, "Write of CR14 (MOV to CR14)", CR_INFO1, NONE, C1;
    CR15_WRITE = 0x01F, "Write of CR15 (MOV to CR15)", CR_INFO1, NONE, C1;
    DR0_READ = 0x020, "Read of DR0 (MOV from DR0)", DR_INFO1, NONE, C1;
    DR1_READ = 0x021, "Read of DR1 (MOV from DR1)", DR_INFO1, NONE, C1;
    DR2_READ = 0x022, "Read of DR2 (MOV from DR2)", DR_INFO1, NONE, C1;
    DR3_READ = 0x023, "Read of DR3 (MOV from DR3)", DR_INFO1, NONE, C1;
    DR4_READ = 0x024, "Read of DR4 (MOV from DR4)", DR_INFO1, NONE, C1;
    DR5_READ = 0x025, "Read of DR5 (MOV from DR5)", DR_INFO1, NONE, C1;
    DR6_READ = 0x026, "Read of DR6 (MOV from DR6)", DR_INFO1, NONE, C1;
    DR7_READ = 0x027, "Read of DR7 (MOV from DR7)", DR_INFO1, NONE, C1;
    DR8_READ = 0x028, "Read of DR8 (MOV from DR8)", DR_INFO1, NONE, C1;
    DR9_READ = 0x029, "Read of DR9 (MOV from DR9)", DR_INFO1, NONE, C1;
    DR10_READ = 0x02A, "Read of DR10 (MOV from DR10)", DR_INFO1, NONE, C1;
    DR11_READ = 0x02B, "Read of DR11 (MOV from DR11)", DR_INFO1, NONE, C1;
    DR12_READ = 0x02C, "Read of DR12 (MOV from DR12)", DR_INFO1, NONE, C1;
    DR13_READ = 0x02D, "Read of DR13 (MOV from DR13)", DR_INFO1, NONE, C1;
    DR14_READ = 0x02E, "Read of DR14 (MOV from DR14)", DR_INFO1, NONE, C1;
    DR15_READ = 0x02F, "Read of DR15 (MOV from DR15)", DR_INFO1, NONE, C1;
    DR0_WRITE = 0x030, "Write of DR0 (MOV to DR0)", DR_INFO1, NONE, C1;
    DR1_WRITE = 0x031, "Write of DR1 (MOV to DR1)", DR_INFO1, NONE, C1;
    DR2_WRITE = 0x032, "Write of DR2 (MOV to DR2)", DR_INFO1, NONE, C1;
    DR3_WRITE = 0x033, "Write of DR3 (MOV to DR3)", DR_INFO1, NONE, C1;
    DR4_WRITE = 0x034, "Write of DR4 (MOV to DR4)", DR_INFO1, NONE, C1;
    DR5_WRITE = 0x035, "Write of DR5 (MOV to DR5)", DR_INFO1, NONE, C1;
    DR6_WRITE = 0x036, "Write of DR6 (MOV to DR6)", DR_INFO1, NONE, C1;
    DR7_WRITE = 0x037, "Write of DR7 (MOV to DR7)", DR_INFO1, NONE, C1;
    DR8_WRITE = 0x038, "Write of DR8 (MOV to DR8)", DR_INFO1, NONE, C1;
    DR9_WRITE = 0x039, "Write of DR9 (MOV to DR9)", DR_INFO1, NONE, C1;
    DR10_WRITE = 0x03A, "Write of DR10 (MOV to DR10)", DR_INFO1, NONE, C1;
    DR11_WRITE = 0x03B, "Write of DR11 (MOV to DR11)", DR_INFO1, NONE, C1;
    DR12_WRITE = 0x03C, "Write of DR12 (MOV to DR12)", DR_INFO1, NONE, C1;
    DR13_WRITE = 0x03D, "Write of DR13 (MOV to DR13)", DR_INFO1, NONE, C1;
    DR14_WRITE = 0x03E, "Write of DR14 (MOV to DR14)", DR_INFO1, NONE, C1;
    DR15_WRITE = 0x03F, "Write of DR15 (MOV to DR15)", DR_INFO1, NONE, C1;
    EXCP0 = 0x040, "Exception #DE divide error", NONE, NONE, C1;
    EXCP1 = 0x041, "Exception #DB debug", NONE, NONE, C1;
    EXCP2 = 0x042, "Exception vector 2 (NMI; use the NMI intercept instead)", NONE, NONE, C1;
    EXCP3 = 0x043, "Exception #BP breakpoint", NONE, NONE, C1;
    EXCP4 = 0x044, "Exception #OF overflow", NONE, NONE, C1;
    EXCP5 = 0x045, "Exception #BR bound range", NONE, NONE, C1;
    EXCP6 = 0x046, "Exception #UD invalid opcode", NONE, NONE, C1;
    EXCP7 = 0x047, "Exception #NM device not available", NONE, NONE, C1;
    EXCP8 = 0x048, "Exception #DF double fault", EXCP_ERR_INFO1, NONE, C1;
    EXCP9 = 0x049, "Exception vector 9 (coprocessor segment overrun, reserved)", NONE, NONE, C1;
    EXCP10 = 0x04A, "Exception #TS invalid TSS", EXCP_ERR_INFO1, NONE, C1;
    EXCP11 = 0x04B, "Exception #NP segment not present", EXCP_ERR_INFO1, NONE, C1;
    EXCP12 = 0x04C, "Exception #SS stack fault", EXCP_ERR_INFO1, NONE, C1;
    EXCP13 = 0x04D, "Exception #GP general protection", EXCP_ERR_INFO1, NONE, C1;
    EXCP14 = 0x04E, "Exception #PF page fault", EXCP_PF_INFO1, EXCP_PF_INFO2, C1;
    EXCP15 = 0x04F, "Exception vector 15 (reserved)", NONE, NONE, C1;
    EXCP16 = 0x050, "Exception #MF x87 floating-point", NONE, NONE, C1;
    EXCP17 = 0x051, "Exception #AC alignment check", EXCP_ERR_INFO1, NONE, C1;
    EXCP18 = 0x052, "Exception #MC machine check", NONE, NONE, C1;
    EXCP19 = 0x053, "Exception #XF SIMD floating-point", NONE, NONE, C1;
    EXCP20 = 0x054, "Exception vector 20 (reserved)", NONE, NONE, C1;
    EXCP21 = 0x055, "Exception #CP control protection", EXCP_ERR_INFO1, NONE, C1;
    EXCP22 = 0x056, "Exception vector 22 (reserved)", NONE, NONE, C1;
    EXCP23 = 0x057, "Exception vector 23 (reserved)", NONE, NONE, C1;
    EXCP24 = 0x058, "Exception vector 24 (reserved)", NONE, NONE, C1;
    EXCP25 = 0x059, "Exception vector 25 (reserved)", NONE, NONE, C1;
    EXCP26 = 0x05A, "Exception vector 26 (reserved)", NONE, NONE, C1;
    EXCP27 = 0x05B, "Exception vector 27 (reserved)", NONE, NONE, C1;
    EXCP28 = 0x05C, "Exception #HV hypervisor injection", NONE, NONE, C1;
    EXCP29 = 0x05D, "Exception #VC VMM communication", EXCP_ERR_INFO1, NONE, C1;
    EXCP30 = 0x05E, "Exception #SX security", EXCP_ERR_INFO1, NONE, C1;
    EXCP31 = 0x05F, "Exception vector 31 (reserved)", NONE, NONE, C1;
    INTR = 0x060, "Physical maskable interrupt (INTR)", NONE, NONE, C1;
    NMI = 0x061, "Physical NMI", NONE, NONE, C1;
    SMI = 0x062, "Physical SMI", "SMI source information where the implementation reports it, otherwise 0", NONE, C1;
    INIT = 0x063, "Physical INIT", NONE, NONE, C1;
    VINTR = 0x064, "Virtual interrupt (V_IRQ) taken", NONE, NONE, C1;
    CR0_SEL_WRITE = 0x065, "Write of CR0 that changes bits other than CR0.TS or CR0.MP", CR_INFO1, NONE, C1;
    IDTR_READ = 0x066, "Read of IDTR (SIDT)", NONE, NONE, C1;
    GDTR_READ = 0x067, "Read of GDTR (SGDT)", NONE, NONE, C1;
    LDTR_READ = 0x068, "Read of LDTR (SLDT)", NONE, NONE, C1;
    TR_READ = 0x069, "Read of TR (STR)", NONE, NONE, C1;
    IDTR_WRITE = 0x06A, "Write of IDTR (LIDT)", NONE, NONE, C1;
    GDTR_WRITE = 0x06B, "Write of GDTR (LGDT)", NONE, NONE, C1;
    LDTR_WRITE = 0x06C, "Write of LDTR (LLDT)", NONE, NONE, C1;
    TR_WRITE = 0x06D, "Write of TR (LTR)", NONE, NONE, C1;
    RDTSC = 0x06E, "RDTSC instruction", NONE, NONE, C1;
    RDPMC = 0x06F, "RDPMC instruction", NONE, NONE, C1;
    PUSHF = 0x070, "PUSHF instruction", NONE, NONE, C1;
    POPF = 0x071, "POPF instruction", NONE, NONE, C1;
    CPUID = 0x072, "CPUID instruction", NONE, NONE, C1;
    RSM = 0x073, "RSM instruction", NONE, NONE, C1;
    IRET = 0x074, "IRET instruction", NONE, NONE, C1;
    SWINT = 0x075, "Software interrupt (INTn instruction)", "with decode assists: the interrupt number (bits 7:0)", NONE, C1;
    INVD = 0x076, "INVD instruction", NONE, NONE, C1;
    PAUSE = 0x077, "PAUSE instruction (after the pause filter, if enabled)", NONE, NONE, C1;
    HLT = 0x078, "HLT instruction", NONE, NONE, C1;
    INVLPG = 0x079, "INVLPG instruction", "with decode assists: the linear address operand", NONE, C1;
    INVLPGA = 0x07A, "INVLPGA instruction (address in rAX, ASID in ECX)", NONE, NONE, C1;
    IOIO = 0x07B, "IN, OUT, INS or OUTS to a port intercepted by the IOPM", "bit 0 type (1 = IN), bit 2 string, bit 3 REP, bits 6:4 operand size (8/16/32), bits 9:7 address size (16/32/64), bits 12:10 segment (string ops), bits 31:16 port", "rIP of the instruction following the I/O instruction", C1;
    MSR = 0x07C, "RDMSR or WRMSR of an MSR intercepted by the MSRPM", "0 = RDMSR, 1 = WRMSR", NONE, C1;
    TASK_SWITCH = 0x07D, "Task switch", "bits 15:0 = selector of the target TSS", "bit 36 task switch caused by IRET, bit 38 caused by JMP, bit 44 error code valid, bits 31:0 error code", C1;
    FERR_FREEZE = 0x07E, "Processor frozen by FERR_FREEZE (legacy x87 error handling)", NONE, NONE, C1;
    SHUTDOWN = 0x07F, "Shutdown (for example a triple fault)", NONE, NONE, C1;
    VMRUN = 0x080, "VMRUN instruction", NONE, NONE, C1;
    VMMCALL = 0x081, "VMMCALL instruction", NONE, NONE, C1;
    VMLOAD = 0x082, "VMLOAD instruction", NONE, NONE, C1;
    VMSAVE = 0x083, "VMSAVE instruction", NONE, NONE, C1;
    STGI = 0x084, "STGI instruction", NONE, NONE, C1;
    CLGI = 0x085, "CLGI instruction", NONE, NONE, C1;
    SKINIT = 0x086, "SKINIT instruction", NONE, NONE, C1;
    RDTSCP = 0x087, "RDTSCP instruction", NONE, NONE, C1;
    ICEBP = 0x088, "ICEBP instruction (opcode F1)", NONE, NONE, C1;
    WBINVD = 0x089, "WBINVD or WBNOINVD instruction", NONE, NONE, C1;
    MONITOR = 0x08A, "MONITOR or MONITORX instruction", NONE, NONE, C1;
    MWAIT = 0x08B, "MWAIT or MWAITX instruction (unconditional intercept)", NONE, NONE, C1;
    MWAIT_CONDITIONAL = 0x08C, "MWAIT or MWAITX instruction with the monitor hardware armed", NONE, NONE, C1;
    XSETBV = 0x08D, "XSETBV instruction", NONE, NONE, C1;
    RDPRU = 0x08E, "RDPRU instruction", NONE, NONE, C1;
    EFER_WRITE_TRAP = 0x08F, "Write to EFER completed (trap; the write has taken effect)", "new value of EFER after the write", NONE, C1;
    CR0_WRITE_TRAP = 0x090, "Write to CR0 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR1_WRITE_TRAP = 0x091, "Write to CR1 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR2_WRITE_TRAP = 0x092, "Write to CR2 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR3_WRITE_TRAP = 0x093, "Write to CR3 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR4_WRITE_TRAP = 0x094, "Write to CR4 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR5_WRITE_TRAP = 0x095, "Write to CR5 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR6_WRITE_TRAP = 0x096, "Write to CR6 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR7_WRITE_TRAP = 0x097, "Write to CR7 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR8_WRITE_TRAP = 0x098, "Write to CR8 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR9_WRITE_TRAP = 0x099, "Write to CR9 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR10_WRITE_TRAP = 0x09A, "Write to CR10 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR11_WRITE_TRAP = 0x09B, "Write to CR11 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR12_WRITE_TRAP = 0x09C, "Write to CR12 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR13_WRITE_TRAP = 0x09D, "Write to CR13 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR14_WRITE_TRAP = 0x09E, "Write to CR14 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    CR15_WRITE_TRAP = 0x09F, "Write to CR15 completed (trap; the write has taken effect)", TRAP_INFO1, NONE, C1;
    INVLPGB = 0x0A0, "INVLPGB instruction", NONE, NONE, C1;
    INVLPGB_ILLEGAL = 0x0A1, "INVLPGB instruction with an illegal operand", NONE, NONE, C1;
    INVPCID = 0x0A2, "INVPCID instruction", "with decode assists: linear address of the INVPCID descriptor", "with decode assists: the INVPCID type operand", C1;
    MCOMMIT = 0x0A3, "MCOMMIT instruction", NONE, NONE, C1;
    TLBSYNC = 0x0A4, "TLBSYNC instruction", NONE, NONE, C1;
    BUSLOCK = 0x0A5, "Bus lock while the bus lock threshold counter is 0", NONE, NONE, C1;
    IDLE_HLT = 0x0A6, "HLT instruction with no virtual interrupt or NMI pending", NONE, NONE, C1;
    NPF = 0x400, "Nested page fault", "#PF-style error code: bit 0 present, 1 write, 2 user, 3 reserved bit, 4 fetch; bit 32 fault on the final guest-physical access, bit 33 fault on a guest page-table access", "faulting guest physical address", C1;
    AVIC_INCOMPLETE_IPI = 0x401, "AVIC: IPI delivery could not be completed", "ICR value: bits 31:0 ICR low, bits 63:32 ICR high", "bits 63:32 failure cause ID, bits 8:0 index into the physical or logical APIC ID table", C1;
    AVIC_NOACCEL = 0x402, "AVIC: access to a virtual APIC register that is not accelerated", "bits 11:4 APIC register offset, bit 32 = 1 for a write", "bits 31:0 vector (for trap-style accesses)", C1;
    VMGEXIT = 0x403, "SEV-ES VMGEXIT instruction (reason in the GHCB)", NONE, NONE, C1;
    PML_FULL = 0x407, "Page modification log full", NONE, NONE, C1;
    INVALID_PMC = u64::MAX - 3, "VMRUN failed: invalid PMC state", NONE, NONE, C1;
    IDLE_REQUIRED = u64::MAX - 2, "VMRUN failed: the sibling thread is not in an idle state", NONE, NONE, C1;
    BUSY = u64::MAX - 1, "VMRUN failed: the BUSY bit was set in the VMSA", NONE, NONE, C1;
    INVALID = u64::MAX, "VMRUN failed: invalid guest state in the VMCB (consistency check failed)", NONE, NONE, C1;
}

impl SvmExitCode {
    /// The APM Table C-1 row for this code, or `None` if the code is not defined.
    pub fn info(self) -> Option<&'static ExitCodeInfo> {
        EXIT_CODES.binary_search_by(|row| row.code.cmp(&self)).ok().and_then(|i| EXIT_CODES.get(i))
    }

    /// The APM name (`"VMEXIT_IOIO"`), or `None` if the code is not defined.
    pub fn name(self) -> Option<&'static str> {
        self.info().map(|i| i.name)
    }

    /// The exit code with this APM name (`"VMEXIT_NPF"`; the `VMEXIT_` prefix is
    /// optional, ASCII case-insensitive).
    pub fn by_name(name: &str) -> Option<SvmExitCode> {
        let bare = name
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("VMEXIT_"))
            .map_or(name, |_| &name[7..]);
        EXIT_CODES.iter().find(|row| row.name[7..].eq_ignore_ascii_case(bare)).map(|row| row.code)
    }

    /// The exit code for a read of CRn (`n` taken modulo 16).
    pub const fn cr_read(n: u8) -> SvmExitCode {
        SvmExitCode(Self::CR0_READ.0 + (n & 0xF) as u64)
    }

    /// The exit code for a write of CRn (`n` taken modulo 16).
    pub const fn cr_write(n: u8) -> SvmExitCode {
        SvmExitCode(Self::CR0_WRITE.0 + (n & 0xF) as u64)
    }

    /// The exit code for a read of DRn (`n` taken modulo 16).
    pub const fn dr_read(n: u8) -> SvmExitCode {
        SvmExitCode(Self::DR0_READ.0 + (n & 0xF) as u64)
    }

    /// The exit code for a write of DRn (`n` taken modulo 16).
    pub const fn dr_write(n: u8) -> SvmExitCode {
        SvmExitCode(Self::DR0_WRITE.0 + (n & 0xF) as u64)
    }

    /// The exit code for exception vector `n` (`n` taken modulo 32).
    pub const fn exception(n: u8) -> SvmExitCode {
        SvmExitCode(Self::EXCP0.0 + (n & 0x1F) as u64)
    }

    /// The exit code for the completed write of CRn (`n` taken modulo 16).
    pub const fn cr_write_trap(n: u8) -> SvmExitCode {
        SvmExitCode(Self::CR0_WRITE_TRAP.0 + (n & 0xF) as u64)
    }

    /// Whether this is one of the negative codes that report a failed VMRUN.
    pub const fn is_vmrun_failure(self) -> bool {
        (self.0 as i64) < 0
    }
}

impl fmt::Display for SvmExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None if self.is_vmrun_failure() => write!(f, "VMEXIT_UNKNOWN({})", self.0 as i64),
            None => write!(f, "VMEXIT_UNKNOWN(0x{:X})", self.0),
        }
    }
}

impl From<u64> for SvmExitCode {
    fn from(v: u64) -> Self {
        SvmExitCode(v)
    }
}

impl From<SvmExitCode> for u64 {
    fn from(c: SvmExitCode) -> Self {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_strictly_ascending() {
        for pair in EXIT_CODES.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} (0x{:X}) not before {} (0x{:X})",
                pair[0].name,
                pair[0].code.0,
                pair[1].name,
                pair[1].code.0
            );
        }
    }

    #[test]
    fn every_row_is_complete_and_named_uniquely() {
        for (i, row) in EXIT_CODES.iter().enumerate() {
            assert!(row.name.starts_with("VMEXIT_"), "{}", row.name);
            assert!(row.reference.starts_with("APM Vol. 2"), "{}", row.name);
            assert!(
                !row.meaning.is_empty() && !row.exitinfo1.is_empty() && !row.exitinfo2.is_empty()
            );
            for other in &EXIT_CODES[i + 1..] {
                assert_ne!(row.name, other.name);
            }
        }
    }

    #[test]
    fn anchors() {
        assert_eq!(SvmExitCode::CR0_READ.0, 0x000);
        assert_eq!(SvmExitCode::CR15_WRITE.0, 0x01F);
        assert_eq!(SvmExitCode::DR7_WRITE.0, 0x037);
        assert_eq!(SvmExitCode::EXCP14.0, 0x04E);
        assert_eq!(SvmExitCode::INTR.0, 0x060);
        assert_eq!(SvmExitCode::RDTSC.0, 0x06E);
        assert_eq!(SvmExitCode::CPUID.0, 0x072);
        assert_eq!(SvmExitCode::IOIO.0, 0x07B);
        assert_eq!(SvmExitCode::MSR.0, 0x07C);
        assert_eq!(SvmExitCode::SHUTDOWN.0, 0x07F);
        assert_eq!(SvmExitCode::VMRUN.0, 0x080);
        assert_eq!(SvmExitCode::XSETBV.0, 0x08D);
        assert_eq!(SvmExitCode::EFER_WRITE_TRAP.0, 0x08F);
        assert_eq!(SvmExitCode::CR15_WRITE_TRAP.0, 0x09F);
        assert_eq!(SvmExitCode::INVPCID.0, 0x0A2);
        assert_eq!(SvmExitCode::NPF.0, 0x400);
        assert_eq!(SvmExitCode::AVIC_INCOMPLETE_IPI.0, 0x401);
        assert_eq!(SvmExitCode::AVIC_NOACCEL.0, 0x402);
        assert_eq!(SvmExitCode::VMGEXIT.0, 0x403);
        assert_eq!(SvmExitCode::INVALID.0, -1i64 as u64);
        assert_eq!(SvmExitCode::BUSY.0, -2i64 as u64);
    }

    #[test]
    fn lookup_by_number() {
        assert_eq!(SvmExitCode(0x7B).name(), Some("VMEXIT_IOIO"));
        assert_eq!(SvmExitCode(0x400).name(), Some("VMEXIT_NPF"));
        assert_eq!(SvmExitCode(0x2A).name(), Some("VMEXIT_DR10_READ"));
        assert_eq!(SvmExitCode(0x5F).name(), Some("VMEXIT_EXCP31"));
        assert_eq!(SvmExitCode(0x9C).name(), Some("VMEXIT_CR12_WRITE_TRAP"));
        assert_eq!(SvmExitCode(u64::MAX).name(), Some("VMEXIT_INVALID"));
        assert_eq!(SvmExitCode(0x0A7).info(), None);
        assert_eq!(SvmExitCode(0x3FF).info(), None);
        assert_eq!(SvmExitCode(0x1234_5678).info(), None);
    }

    #[test]
    fn every_code_in_the_defined_ranges_has_a_row() {
        for code in (0x000..=0x0A6).chain(0x400..=0x403).chain([0x407]) {
            assert!(SvmExitCode(code).info().is_some(), "0x{code:X} missing");
        }
        for n in 0..16 {
            assert_eq!(SvmExitCode::cr_read(n).0, u64::from(n));
            assert_eq!(SvmExitCode::cr_write(n).0, 0x10 + u64::from(n));
            assert_eq!(SvmExitCode::dr_read(n).0, 0x20 + u64::from(n));
            assert_eq!(SvmExitCode::dr_write(n).0, 0x30 + u64::from(n));
            assert_eq!(SvmExitCode::cr_write_trap(n).0, 0x90 + u64::from(n));
        }
        for n in 0..32 {
            assert_eq!(SvmExitCode::exception(n).0, 0x40 + u64::from(n));
        }
    }

    #[test]
    fn by_name_and_display() {
        assert_eq!(SvmExitCode::by_name("VMEXIT_IOIO"), Some(SvmExitCode::IOIO));
        assert_eq!(SvmExitCode::by_name("npf"), Some(SvmExitCode::NPF));
        assert_eq!(SvmExitCode::by_name("VMEXIT_"), None);
        assert_eq!(SvmExitCode::by_name(""), None);
        assert_eq!(SvmExitCode::by_name("é"), None);
        assert_eq!(SvmExitCode::IOIO.to_string(), "VMEXIT_IOIO");
        assert_eq!(SvmExitCode(0x3FF).to_string(), "VMEXIT_UNKNOWN(0x3FF)");
        assert_eq!(SvmExitCode(u64::MAX - 9).to_string(), "VMEXIT_UNKNOWN(-10)");
        assert!(SvmExitCode::INVALID.is_vmrun_failure());
        assert!(!SvmExitCode::NPF.is_vmrun_failure());
    }
}
