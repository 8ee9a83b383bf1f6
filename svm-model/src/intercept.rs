//! SVM intercept bits (APM Vol. 2 Appendix B Table B-1, intercept vectors at VMCB
//! offsets 0x000-0x017, and §15.7-§15.14 for what each intercept does).
//!
//! The six intercept vectors are 32-bit words of the VMCB control area. Each intercept is
//! declared once in the [`svm_intercepts!`] table below, which emits one
//! `pub const INTERCEPT_<NAME>: Intercept` (word offset + bit) per row and the
//! [`INTERCEPTS`] table that also names the exit code the intercept produces.

use crate::exit_code::SvmExitCode;
use crate::vmcb;

/// Reference string for every row.
const B1: &str =
    "APM Vol. 2 Appendix B Table B-1 \"VMCB Layout, Control Area\" (intercept vectors)";

/// VMCB offset of intercept vector 0: bits 15:0 CR reads, bits 31:16 CR writes.
pub const VECTOR_CR: u16 = vmcb::INTERCEPT_CR_READ;
/// VMCB offset of intercept vector 1: bits 15:0 DR reads, bits 31:16 DR writes.
pub const VECTOR_DR: u16 = vmcb::INTERCEPT_DR_READ;
/// VMCB offset of intercept vector 2: exception vectors 0-31.
pub const VECTOR_EXCEPTIONS: u16 = vmcb::INTERCEPT_EXCEPTIONS;
/// VMCB offset of intercept vector 3 (INTR ... SHUTDOWN).
pub const VECTOR_MISC1: u16 = vmcb::INTERCEPT_MISC1;
/// VMCB offset of intercept vector 4 (VMRUN ... CR15 write trap).
pub const VECTOR_MISC2: u16 = vmcb::INTERCEPT_MISC2;
/// VMCB offset of intercept vector 5 (INVLPGB ... IDLE_HLT).
pub const VECTOR_MISC3: u16 = vmcb::INTERCEPT_MISC3;
/// Offsets of all intercept vectors, in order.
pub const VECTORS: [u16; 6] = [
    VECTOR_CR,
    VECTOR_DR,
    VECTOR_EXCEPTIONS,
    VECTOR_MISC1,
    VECTOR_MISC2,
    VECTOR_MISC3,
];

/// One intercept bit: the 32-bit intercept vector (by VMCB offset) and the bit in it.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Intercept {
    /// VMCB byte offset of the 32-bit intercept vector (one of [`VECTORS`]).
    pub word: u16,
    /// Bit number within the vector, 0-31.
    pub bit: u8,
}

impl Intercept {
    /// Mask of the bit within its 32-bit vector.
    pub const fn mask(self) -> u32 {
        1u32 << (self.bit & 31)
    }

    /// Index of the vector (0-5), counting 32-bit words from VMCB offset 0.
    pub const fn vector_index(self) -> usize {
        (self.word / 4) as usize
    }

    /// Whether the intercept is set in a copy of the six intercept vectors.
    pub fn is_set(self, vectors: &[u32; 6]) -> bool {
        vectors
            .get(self.vector_index())
            .is_some_and(|v| v & self.mask() != 0)
    }

    /// The table row for this intercept.
    pub fn info(self) -> Option<&'static InterceptInfo> {
        INTERCEPTS.iter().find(|i| i.intercept == self)
    }
}

/// One intercept: where its bit lives, its name and the exit code it produces.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct InterceptInfo {
    /// Vector word and bit.
    pub intercept: Intercept,
    /// Name, e.g. `"INTERCEPT_CPUID"`.
    pub name: &'static str,
    /// The #VMEXIT code the intercept produces.
    pub exit_code: SvmExitCode,
    /// One-line meaning.
    pub meaning: &'static str,
    /// Where the bit is defined in the APM.
    pub reference: &'static str,
}

impl InterceptInfo {
    /// The intercept with this name (`"INTERCEPT_CPUID"`, ASCII case-insensitive).
    pub fn by_name(name: &str) -> Option<&'static InterceptInfo> {
        INTERCEPTS
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(name))
    }

    /// The intercept at a VMCB intercept-vector offset and bit, if one is defined.
    pub fn at(word: u16, bit: u8) -> Option<&'static InterceptInfo> {
        INTERCEPTS
            .iter()
            .find(|i| i.intercept.word == word && i.intercept.bit == bit)
    }

    /// The intercept whose #VMEXIT has this exit code, if the code has one (NPF and the
    /// VMRUN failure codes, for example, have none).
    pub fn for_exit_code(code: SvmExitCode) -> Option<&'static InterceptInfo> {
        INTERCEPTS.iter().find(|i| i.exit_code == code)
    }
}

/// Declares each intercept once: a `pub const` [`Intercept`] and a row of [`INTERCEPTS`].
macro_rules! svm_intercepts {
    ($( $name:ident = $word:ident[$bit:literal] => $exit:ident, $meaning:literal; )*) => {
        $(
            #[doc = concat!($meaning, " (`", stringify!($word), "` bit ", stringify!($bit),
                            ", exits with `VMEXIT_", stringify!($exit), "`).")]
            pub const $name: Intercept = Intercept { word: $word, bit: $bit };
        )*

        /// Every SVM intercept bit, by vector then bit.
        pub static INTERCEPTS: &[InterceptInfo] = &[
            $(
                InterceptInfo {
                    intercept: $name,
                    name: stringify!($name),
                    exit_code: SvmExitCode::$exit,
                    meaning: $meaning,
                    reference: B1,
                },
            )*
        ];
    };
}

svm_intercepts! {
    INTERCEPT_CR0_READ = VECTOR_CR[0] => CR0_READ, "Intercept reads of CR0";
    INTERCEPT_CR1_READ = VECTOR_CR[1] => CR1_READ, "Intercept reads of CR1";
    INTERCEPT_CR2_READ = VECTOR_CR[2] => CR2_READ, "Intercept reads of CR2";
    INTERCEPT_CR3_READ = VECTOR_CR[3] => CR3_READ, "Intercept reads of CR3";
    INTERCEPT_CR4_READ = VECTOR_CR[4] => CR4_READ, "Intercept reads of CR4";
    INTERCEPT_CR5_READ = VECTOR_CR[5] => CR5_READ, "Intercept reads of CR5";
    INTERCEPT_CR6_READ = VECTOR_CR[6] => CR6_READ, "Intercept reads of CR6";
    INTERCEPT_CR7_READ = VECTOR_CR[7] => CR7_READ, "Intercept reads of CR7";
    INTERCEPT_CR8_READ = VECTOR_CR[8] => CR8_READ, "Intercept reads of CR8";
    INTERCEPT_CR9_READ = VECTOR_CR[9] => CR9_READ, "Intercept reads of CR9";
    INTERCEPT_CR10_READ = VECTOR_CR[10] => CR10_READ, "Intercept reads of CR10";
    INTERCEPT_CR11_READ = VECTOR_CR[11] => CR11_READ, "Intercept reads of CR11";
    INTERCEPT_CR12_READ = VECTOR_CR[12] => CR12_READ, "Intercept reads of CR12";
    INTERCEPT_CR13_READ = VECTOR_CR[13] => CR13_READ, "Intercept reads of CR13";
    INTERCEPT_CR14_READ = VECTOR_CR[14] => CR14_READ, "Intercept reads of CR14";
    INTERCEPT_CR15_READ = VECTOR_CR[15] => CR15_READ, "Intercept reads of CR15";
    INTERCEPT_CR0_WRITE = VECTOR_CR[16] => CR0_WRITE, "Intercept writes of CR0";
    INTERCEPT_CR1_WRITE = VECTOR_CR[17] => CR1_WRITE, "Intercept writes of CR1";
    INTERCEPT_CR2_WRITE = VECTOR_CR[18] => CR2_WRITE, "Intercept writes of CR2";
    INTERCEPT_CR3_WRITE = VECTOR_CR[19] => CR3_WRITE, "Intercept writes of CR3";
    INTERCEPT_CR4_WRITE = VECTOR_CR[20] => CR4_WRITE, "Intercept writes of CR4";
    INTERCEPT_CR5_WRITE = VECTOR_CR[21] => CR5_WRITE, "Intercept writes of CR5";
    INTERCEPT_CR6_WRITE = VECTOR_CR[22] => CR6_WRITE, "Intercept writes of CR6";
    INTERCEPT_CR7_WRITE = VECTOR_CR[23] => CR7_WRITE, "Intercept writes of CR7";
    INTERCEPT_CR8_WRITE = VECTOR_CR[24] => CR8_WRITE, "Intercept writes of CR8";
    INTERCEPT_CR9_WRITE = VECTOR_CR[25] => CR9_WRITE, "Intercept writes of CR9";
    INTERCEPT_CR10_WRITE = VECTOR_CR[26] => CR10_WRITE, "Intercept writes of CR10";
    INTERCEPT_CR11_WRITE = VECTOR_CR[27] => CR11_WRITE, "Intercept writes of CR11";
    INTERCEPT_CR12_WRITE = VECTOR_CR[28] => CR12_WRITE, "Intercept writes of CR12";
    INTERCEPT_CR13_WRITE = VECTOR_CR[29] => CR13_WRITE, "Intercept writes of CR13";
    INTERCEPT_CR14_WRITE = VECTOR_CR[30] => CR14_WRITE, "Intercept writes of CR14";
    INTERCEPT_CR15_WRITE = VECTOR_CR[31] => CR15_WRITE, "Intercept writes of CR15";
    INTERCEPT_DR0_READ = VECTOR_DR[0] => DR0_READ, "Intercept reads of DR0";
    INTERCEPT_DR1_READ = VECTOR_DR[1] => DR1_READ, "Intercept reads of DR1";
    INTERCEPT_DR2_READ = VECTOR_DR[2] => DR2_READ, "Intercept reads of DR2";
    INTERCEPT_DR3_READ = VECTOR_DR[3] => DR3_READ, "Intercept reads of DR3";
    INTERCEPT_DR4_READ = VECTOR_DR[4] => DR4_READ, "Intercept reads of DR4";
    INTERCEPT_DR5_READ = VECTOR_DR[5] => DR5_READ, "Intercept reads of DR5";
    INTERCEPT_DR6_READ = VECTOR_DR[6] => DR6_READ, "Intercept reads of DR6";
    INTERCEPT_DR7_READ = VECTOR_DR[7] => DR7_READ, "Intercept reads of DR7";
    INTERCEPT_DR8_READ = VECTOR_DR[8] => DR8_READ, "Intercept reads of DR8";
    INTERCEPT_DR9_READ = VECTOR_DR[9] => DR9_READ, "Intercept reads of DR9";
    INTERCEPT_DR10_READ = VECTOR_DR[10] => DR10_READ, "Intercept reads of DR10";
    INTERCEPT_DR11_READ = VECTOR_DR[11] => DR11_READ, "Intercept reads of DR11";
    INTERCEPT_DR12_READ = VECTOR_DR[12] => DR12_READ, "Intercept reads of DR12";
    INTERCEPT_DR13_READ = VECTOR_DR[13] => DR13_READ, "Intercept reads of DR13";
    INTERCEPT_DR14_READ = VECTOR_DR[14] => DR14_READ, "Intercept reads of DR14";
    INTERCEPT_DR15_READ = VECTOR_DR[15] => DR15_READ, "Intercept reads of DR15";
    INTERCEPT_DR0_WRITE = VECTOR_DR[16] => DR0_WRITE, "Intercept writes of DR0";
    INTERCEPT_DR1_WRITE = VECTOR_DR[17] => DR1_WRITE, "Intercept writes of DR1";
    INTERCEPT_DR2_WRITE = VECTOR_DR[18] => DR2_WRITE, "Intercept writes of DR2";
    INTERCEPT_DR3_WRITE = VECTOR_DR[19] => DR3_WRITE, "Intercept writes of DR3";
    INTERCEPT_DR4_WRITE = VECTOR_DR[20] => DR4_WRITE, "Intercept writes of DR4";
    INTERCEPT_DR5_WRITE = VECTOR_DR[21] => DR5_WRITE, "Intercept writes of DR5";
    INTERCEPT_DR6_WRITE = VECTOR_DR[22] => DR6_WRITE, "Intercept writes of DR6";
    INTERCEPT_DR7_WRITE = VECTOR_DR[23] => DR7_WRITE, "Intercept writes of DR7";
    INTERCEPT_DR8_WRITE = VECTOR_DR[24] => DR8_WRITE, "Intercept writes of DR8";
    INTERCEPT_DR9_WRITE = VECTOR_DR[25] => DR9_WRITE, "Intercept writes of DR9";
    INTERCEPT_DR10_WRITE = VECTOR_DR[26] => DR10_WRITE, "Intercept writes of DR10";
    INTERCEPT_DR11_WRITE = VECTOR_DR[27] => DR11_WRITE, "Intercept writes of DR11";
    INTERCEPT_DR12_WRITE = VECTOR_DR[28] => DR12_WRITE, "Intercept writes of DR12";
    INTERCEPT_DR13_WRITE = VECTOR_DR[29] => DR13_WRITE, "Intercept writes of DR13";
    INTERCEPT_DR14_WRITE = VECTOR_DR[30] => DR14_WRITE, "Intercept writes of DR14";
    INTERCEPT_DR15_WRITE = VECTOR_DR[31] => DR15_WRITE, "Intercept writes of DR15";
    INTERCEPT_EXCP0 = VECTOR_EXCEPTIONS[0] => EXCP0, "Intercept exception vector 0";
    INTERCEPT_EXCP1 = VECTOR_EXCEPTIONS[1] => EXCP1, "Intercept exception vector 1";
    INTERCEPT_EXCP2 = VECTOR_EXCEPTIONS[2] => EXCP2, "Intercept exception vector 2";
    INTERCEPT_EXCP3 = VECTOR_EXCEPTIONS[3] => EXCP3, "Intercept exception vector 3";
    INTERCEPT_EXCP4 = VECTOR_EXCEPTIONS[4] => EXCP4, "Intercept exception vector 4";
    INTERCEPT_EXCP5 = VECTOR_EXCEPTIONS[5] => EXCP5, "Intercept exception vector 5";
    INTERCEPT_EXCP6 = VECTOR_EXCEPTIONS[6] => EXCP6, "Intercept exception vector 6";
    INTERCEPT_EXCP7 = VECTOR_EXCEPTIONS[7] => EXCP7, "Intercept exception vector 7";
    INTERCEPT_EXCP8 = VECTOR_EXCEPTIONS[8] => EXCP8, "Intercept exception vector 8";
    INTERCEPT_EXCP9 = VECTOR_EXCEPTIONS[9] => EXCP9, "Intercept exception vector 9";
    INTERCEPT_EXCP10 = VECTOR_EXCEPTIONS[10] => EXCP10, "Intercept exception vector 10";
    INTERCEPT_EXCP11 = VECTOR_EXCEPTIONS[11] => EXCP11, "Intercept exception vector 11";
    INTERCEPT_EXCP12 = VECTOR_EXCEPTIONS[12] => EXCP12, "Intercept exception vector 12";
    INTERCEPT_EXCP13 = VECTOR_EXCEPTIONS[13] => EXCP13, "Intercept exception vector 13";
    INTERCEPT_EXCP14 = VECTOR_EXCEPTIONS[14] => EXCP14, "Intercept exception vector 14";
    INTERCEPT_EXCP15 = VECTOR_EXCEPTIONS[15] => EXCP15, "Intercept exception vector 15";
    INTERCEPT_EXCP16 = VECTOR_EXCEPTIONS[16] => EXCP16, "Intercept exception vector 16";
    INTERCEPT_EXCP17 = VECTOR_EXCEPTIONS[17] => EXCP17, "Intercept exception vector 17";
    INTERCEPT_EXCP18 = VECTOR_EXCEPTIONS[18] => EXCP18, "Intercept exception vector 18";
    INTERCEPT_EXCP19 = VECTOR_EXCEPTIONS[19] => EXCP19, "Intercept exception vector 19";
    INTERCEPT_EXCP20 = VECTOR_EXCEPTIONS[20] => EXCP20, "Intercept exception vector 20";
    INTERCEPT_EXCP21 = VECTOR_EXCEPTIONS[21] => EXCP21, "Intercept exception vector 21";
    INTERCEPT_EXCP22 = VECTOR_EXCEPTIONS[22] => EXCP22, "Intercept exception vector 22";
    INTERCEPT_EXCP23 = VECTOR_EXCEPTIONS[23] => EXCP23, "Intercept exception vector 23";
    INTERCEPT_EXCP24 = VECTOR_EXCEPTIONS[24] => EXCP24, "Intercept exception vector 24";
    INTERCEPT_EXCP25 = VECTOR_EXCEPTIONS[25] => EXCP25, "Intercept exception vector 25";
    INTERCEPT_EXCP26 = VECTOR_EXCEPTIONS[26] => EXCP26, "Intercept exception vector 26";
    INTERCEPT_EXCP27 = VECTOR_EXCEPTIONS[27] => EXCP27, "Intercept exception vector 27";
    INTERCEPT_EXCP28 = VECTOR_EXCEPTIONS[28] => EXCP28, "Intercept exception vector 28";
    INTERCEPT_EXCP29 = VECTOR_EXCEPTIONS[29] => EXCP29, "Intercept exception vector 29";
    INTERCEPT_EXCP30 = VECTOR_EXCEPTIONS[30] => EXCP30, "Intercept exception vector 30";
    INTERCEPT_EXCP31 = VECTOR_EXCEPTIONS[31] => EXCP31, "Intercept exception vector 31";
    INTERCEPT_INTR = VECTOR_MISC1[0] => INTR, "Intercept physical INTR";
    INTERCEPT_NMI = VECTOR_MISC1[1] => NMI, "Intercept physical NMI";
    INTERCEPT_SMI = VECTOR_MISC1[2] => SMI, "Intercept physical SMI";
    INTERCEPT_INIT = VECTOR_MISC1[3] => INIT, "Intercept INIT";
    INTERCEPT_VINTR = VECTOR_MISC1[4] => VINTR, "Intercept virtual interrupts (V_IRQ) when taken";
    INTERCEPT_CR0_SEL_WRITE = VECTOR_MISC1[5] => CR0_SEL_WRITE, "Intercept CR0 writes that change bits other than CR0.TS or CR0.MP";
    INTERCEPT_IDTR_READ = VECTOR_MISC1[6] => IDTR_READ, "Intercept reads of IDTR";
    INTERCEPT_GDTR_READ = VECTOR_MISC1[7] => GDTR_READ, "Intercept reads of GDTR";
    INTERCEPT_LDTR_READ = VECTOR_MISC1[8] => LDTR_READ, "Intercept reads of LDTR";
    INTERCEPT_TR_READ = VECTOR_MISC1[9] => TR_READ, "Intercept reads of TR";
    INTERCEPT_IDTR_WRITE = VECTOR_MISC1[10] => IDTR_WRITE, "Intercept writes of IDTR";
    INTERCEPT_GDTR_WRITE = VECTOR_MISC1[11] => GDTR_WRITE, "Intercept writes of GDTR";
    INTERCEPT_LDTR_WRITE = VECTOR_MISC1[12] => LDTR_WRITE, "Intercept writes of LDTR";
    INTERCEPT_TR_WRITE = VECTOR_MISC1[13] => TR_WRITE, "Intercept writes of TR";
    INTERCEPT_RDTSC = VECTOR_MISC1[14] => RDTSC, "Intercept RDTSC";
    INTERCEPT_RDPMC = VECTOR_MISC1[15] => RDPMC, "Intercept RDPMC";
    INTERCEPT_PUSHF = VECTOR_MISC1[16] => PUSHF, "Intercept PUSHF";
    INTERCEPT_POPF = VECTOR_MISC1[17] => POPF, "Intercept POPF";
    INTERCEPT_CPUID = VECTOR_MISC1[18] => CPUID, "Intercept CPUID";
    INTERCEPT_RSM = VECTOR_MISC1[19] => RSM, "Intercept RSM";
    INTERCEPT_IRET = VECTOR_MISC1[20] => IRET, "Intercept IRET";
    INTERCEPT_INTN = VECTOR_MISC1[21] => SWINT, "Intercept software interrupts (INTn)";
    INTERCEPT_INVD = VECTOR_MISC1[22] => INVD, "Intercept INVD";
    INTERCEPT_PAUSE = VECTOR_MISC1[23] => PAUSE, "Intercept PAUSE";
    INTERCEPT_HLT = VECTOR_MISC1[24] => HLT, "Intercept HLT";
    INTERCEPT_INVLPG = VECTOR_MISC1[25] => INVLPG, "Intercept INVLPG";
    INTERCEPT_INVLPGA = VECTOR_MISC1[26] => INVLPGA, "Intercept INVLPGA";
    INTERCEPT_IOIO_PROT = VECTOR_MISC1[27] => IOIO, "Intercept IN/OUT accesses to ports selected by the IOPM";
    INTERCEPT_MSR_PROT = VECTOR_MISC1[28] => MSR, "Intercept RDMSR/WRMSR of MSRs selected by the MSRPM";
    INTERCEPT_TASK_SWITCH = VECTOR_MISC1[29] => TASK_SWITCH, "Intercept task switches";
    INTERCEPT_FERR_FREEZE = VECTOR_MISC1[30] => FERR_FREEZE, "Intercept processor freezing during legacy FERR handling";
    INTERCEPT_SHUTDOWN = VECTOR_MISC1[31] => SHUTDOWN, "Intercept shutdown events";
    INTERCEPT_VMRUN = VECTOR_MISC2[0] => VMRUN, "Intercept VMRUN (must be set, or VMRUN fails its consistency checks)";
    INTERCEPT_VMMCALL = VECTOR_MISC2[1] => VMMCALL, "Intercept VMMCALL";
    INTERCEPT_VMLOAD = VECTOR_MISC2[2] => VMLOAD, "Intercept VMLOAD";
    INTERCEPT_VMSAVE = VECTOR_MISC2[3] => VMSAVE, "Intercept VMSAVE";
    INTERCEPT_STGI = VECTOR_MISC2[4] => STGI, "Intercept STGI";
    INTERCEPT_CLGI = VECTOR_MISC2[5] => CLGI, "Intercept CLGI";
    INTERCEPT_SKINIT = VECTOR_MISC2[6] => SKINIT, "Intercept SKINIT";
    INTERCEPT_RDTSCP = VECTOR_MISC2[7] => RDTSCP, "Intercept RDTSCP";
    INTERCEPT_ICEBP = VECTOR_MISC2[8] => ICEBP, "Intercept ICEBP";
    INTERCEPT_WBINVD = VECTOR_MISC2[9] => WBINVD, "Intercept WBINVD and WBNOINVD";
    INTERCEPT_MONITOR = VECTOR_MISC2[10] => MONITOR, "Intercept MONITOR/MONITORX";
    INTERCEPT_MWAIT = VECTOR_MISC2[11] => MWAIT, "Intercept MWAIT/MWAITX unconditionally";
    INTERCEPT_MWAIT_CONDITIONAL = VECTOR_MISC2[12] => MWAIT_CONDITIONAL, "Intercept MWAIT/MWAITX if the monitor hardware is armed";
    INTERCEPT_XSETBV = VECTOR_MISC2[13] => XSETBV, "Intercept XSETBV";
    INTERCEPT_RDPRU = VECTOR_MISC2[14] => RDPRU, "Intercept RDPRU";
    INTERCEPT_EFER_WRITE_TRAP = VECTOR_MISC2[15] => EFER_WRITE_TRAP, "Trap after writes of EFER";
    INTERCEPT_CR0_WRITE_TRAP = VECTOR_MISC2[16] => CR0_WRITE_TRAP, "Trap after writes of CR0";
    INTERCEPT_CR1_WRITE_TRAP = VECTOR_MISC2[17] => CR1_WRITE_TRAP, "Trap after writes of CR1";
    INTERCEPT_CR2_WRITE_TRAP = VECTOR_MISC2[18] => CR2_WRITE_TRAP, "Trap after writes of CR2";
    INTERCEPT_CR3_WRITE_TRAP = VECTOR_MISC2[19] => CR3_WRITE_TRAP, "Trap after writes of CR3";
    INTERCEPT_CR4_WRITE_TRAP = VECTOR_MISC2[20] => CR4_WRITE_TRAP, "Trap after writes of CR4";
    INTERCEPT_CR5_WRITE_TRAP = VECTOR_MISC2[21] => CR5_WRITE_TRAP, "Trap after writes of CR5";
    INTERCEPT_CR6_WRITE_TRAP = VECTOR_MISC2[22] => CR6_WRITE_TRAP, "Trap after writes of CR6";
    INTERCEPT_CR7_WRITE_TRAP = VECTOR_MISC2[23] => CR7_WRITE_TRAP, "Trap after writes of CR7";
    INTERCEPT_CR8_WRITE_TRAP = VECTOR_MISC2[24] => CR8_WRITE_TRAP, "Trap after writes of CR8";
    INTERCEPT_CR9_WRITE_TRAP = VECTOR_MISC2[25] => CR9_WRITE_TRAP, "Trap after writes of CR9";
    INTERCEPT_CR10_WRITE_TRAP = VECTOR_MISC2[26] => CR10_WRITE_TRAP, "Trap after writes of CR10";
    INTERCEPT_CR11_WRITE_TRAP = VECTOR_MISC2[27] => CR11_WRITE_TRAP, "Trap after writes of CR11";
    INTERCEPT_CR12_WRITE_TRAP = VECTOR_MISC2[28] => CR12_WRITE_TRAP, "Trap after writes of CR12";
    INTERCEPT_CR13_WRITE_TRAP = VECTOR_MISC2[29] => CR13_WRITE_TRAP, "Trap after writes of CR13";
    INTERCEPT_CR14_WRITE_TRAP = VECTOR_MISC2[30] => CR14_WRITE_TRAP, "Trap after writes of CR14";
    INTERCEPT_CR15_WRITE_TRAP = VECTOR_MISC2[31] => CR15_WRITE_TRAP, "Trap after writes of CR15";
    INTERCEPT_INVLPGB = VECTOR_MISC3[0] => INVLPGB, "Intercept INVLPGB";
    INTERCEPT_INVLPGB_ILLEGAL = VECTOR_MISC3[1] => INVLPGB_ILLEGAL, "Intercept only illegally specified INVLPGB";
    INTERCEPT_INVPCID = VECTOR_MISC3[2] => INVPCID, "Intercept INVPCID";
    INTERCEPT_MCOMMIT = VECTOR_MISC3[3] => MCOMMIT, "Intercept MCOMMIT";
    INTERCEPT_TLBSYNC = VECTOR_MISC3[4] => TLBSYNC, "Intercept TLBSYNC";
    INTERCEPT_BUSLOCK = VECTOR_MISC3[5] => BUSLOCK, "Intercept bus locks once the bus lock threshold counter reaches 0";
    INTERCEPT_IDLE_HLT = VECTOR_MISC3[6] => IDLE_HLT, "Intercept HLT when no virtual interrupt or NMI is pending";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmcb::{VmcbArea, VmcbField};

    #[test]
    fn intercepts_are_unique_and_ordered() {
        for pair in INTERCEPTS.windows(2) {
            let a = (pair[0].intercept.word, pair[0].intercept.bit);
            let b = (pair[1].intercept.word, pair[1].intercept.bit);
            assert!(a < b, "{} not before {}", pair[0].name, pair[1].name);
        }
        for (i, row) in INTERCEPTS.iter().enumerate() {
            for other in &INTERCEPTS[i + 1..] {
                assert_ne!(row.name, other.name);
                assert_ne!(
                    row.exit_code, other.exit_code,
                    "{} / {}",
                    row.name, other.name
                );
            }
        }
    }

    #[test]
    fn intercepts_live_in_the_control_area_vectors() {
        for row in INTERCEPTS {
            let i = row.intercept;
            assert!(VECTORS.contains(&i.word), "{}", row.name);
            assert!(i.bit < 32, "{}", row.name);
            let field = VmcbField::lookup(i.word + u16::from(i.bit / 8)).expect("vector field");
            assert_eq!(field.area, VmcbArea::Control);
            assert!(field.name.starts_with("INTERCEPT_"), "{}", row.name);
            assert!(row.name.starts_with("INTERCEPT_"));
            assert!(row.reference.starts_with("APM Vol. 2"));
        }
    }

    #[test]
    fn every_intercept_exit_code_is_defined() {
        for row in INTERCEPTS {
            assert!(
                row.exit_code.info().is_some(),
                "{} -> 0x{:X}",
                row.name,
                row.exit_code.0
            );
        }
    }

    #[test]
    fn anchors() {
        assert_eq!(
            INTERCEPT_CPUID,
            Intercept {
                word: 0x00C,
                bit: 18
            }
        );
        assert_eq!(
            INTERCEPT_CPUID.info().map(|i| i.exit_code),
            Some(SvmExitCode::CPUID)
        );
        assert_eq!(
            INTERCEPT_IOIO_PROT.info().map(|i| i.exit_code),
            Some(SvmExitCode::IOIO)
        );
        assert_eq!(
            INTERCEPT_MSR_PROT.info().map(|i| i.exit_code),
            Some(SvmExitCode::MSR)
        );
        assert_eq!(
            INTERCEPT_VMRUN,
            Intercept {
                word: 0x010,
                bit: 0
            }
        );
        assert_eq!(INTERCEPT_XSETBV.bit, 13);
        assert_eq!(
            INTERCEPT_CR8_WRITE_TRAP,
            Intercept {
                word: 0x010,
                bit: 24
            }
        );
        assert_eq!(
            INTERCEPT_INVPCID,
            Intercept {
                word: 0x014,
                bit: 2
            }
        );
        assert_eq!(
            INTERCEPT_IDLE_HLT,
            Intercept {
                word: 0x014,
                bit: 6
            }
        );
        assert_eq!(INTERCEPT_EXCP14.mask(), 1 << 14);
        assert_eq!(INTERCEPT_CR3_WRITE.mask(), 1 << 19);
        assert_eq!(
            InterceptInfo::for_exit_code(SvmExitCode::SWINT).map(|i| i.name),
            Some("INTERCEPT_INTN")
        );
        assert!(InterceptInfo::for_exit_code(SvmExitCode::NPF).is_none());
        assert_eq!(
            InterceptInfo::at(0x00C, 18).map(|i| i.name),
            Some("INTERCEPT_CPUID")
        );
        assert_eq!(
            InterceptInfo::by_name("intercept_hlt").map(|i| i.intercept),
            Some(INTERCEPT_HLT)
        );
    }

    #[test]
    fn is_set_reads_the_right_vector() {
        let mut v = [0u32; 6];
        assert!(!INTERCEPT_CPUID.is_set(&v));
        v[3] = 1 << 18;
        assert!(INTERCEPT_CPUID.is_set(&v));
        assert!(!INTERCEPT_VMRUN.is_set(&v));
        v[4] = 1;
        assert!(INTERCEPT_VMRUN.is_set(&v));
    }
}
