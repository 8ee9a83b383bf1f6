//! SVM-related MSRs (APM Vol. 2 §15.30 "SVM Related MSRs", §15.4 "Enabling SVM", and the
//! MSR list in APM Vol. 2 Appendix A "MSR Cross-Reference").
//!
//! Each MSR is declared once in the [`svm_msrs!`] table below: a `pub const` index and a
//! row of [`SVM_MSRS`]. Bits of EFER and VM_CR that SVM defines follow as constants.

/// Reference for VM_CR, IGNNE, SMM_CTL, VM_HSAVE_PA, TSC_RATIO.
const S30: &str = "APM Vol. 2 §15.30 \"SVM Related MSRs\"";
/// Reference for EFER.SVME.
const S4: &str = "APM Vol. 2 §15.4 \"Enabling SVM\"";
/// Reference for the SVM lock key.
const SVM_LOCK: &str = "APM Vol. 2 §15.31 \"SVM-Lock\"";
/// Reference for SEV MSRs.
const SEV: &str = "APM Vol. 2 §15.34 \"Secure Encrypted Virtualization\"";
/// Reference for the AVIC doorbell.
const AVIC: &str = "APM Vol. 2 §15.29 \"Advanced Virtual Interrupt Controller\"";

/// One SVM-related MSR.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct SvmMsrInfo {
    /// MSR index (ECX value of RDMSR/WRMSR).
    pub index: u32,
    /// APM name, e.g. `"VM_HSAVE_PA"`.
    pub name: &'static str,
    /// One-line meaning.
    pub meaning: &'static str,
    /// Where the MSR is defined in the APM.
    pub reference: &'static str,
}

impl SvmMsrInfo {
    /// The row for an MSR index, if it is one of the SVM-related MSRs.
    pub fn lookup(index: u32) -> Option<&'static SvmMsrInfo> {
        SVM_MSRS.iter().find(|m| m.index == index)
    }

    /// The row with this name (ASCII case-insensitive).
    pub fn by_name(name: &str) -> Option<&'static SvmMsrInfo> {
        SVM_MSRS.iter().find(|m| m.name.eq_ignore_ascii_case(name))
    }
}

/// Declares each MSR once: a `pub const NAME: u32` and a row of [`SVM_MSRS`].
macro_rules! svm_msrs {
    ($( $name:ident = $index:literal, $meaning:literal, $reference:expr; )*) => {
        $(
            #[doc = concat!("MSR `", stringify!($name), "`: ", $meaning, ".")]
            pub const $name: u32 = $index;
        )*

        /// Every SVM-related MSR known to hvsim.
        pub static SVM_MSRS: &[SvmMsrInfo] = &[
            $(
                SvmMsrInfo {
                    index: $index,
                    name: stringify!($name),
                    meaning: $meaning,
                    reference: $reference,
                },
            )*
        ];
    };
}

svm_msrs! {
    EFER = 0xC000_0080, "Extended feature enable register; bit 12 (SVME) enables SVM instructions", S4;
    TSC_RATIO = 0xC000_0104, "TSC ratio: guest TSC frequency multiplier, fixed point 8.32 (default 0x1_0000_0000)", S30;
    VM_CR = 0xC001_0114, "Controls global aspects of SVM: DPD, R_INIT, DIS_A20M, LOCK, SVMDIS", S30;
    IGNNE = 0xC001_0115, "Sets the state of the processor-internal IGNNE signal", S30;
    SMM_CTL = 0xC001_0116, "SMM control: enter, exit, SMI cycle acknowledge (used to virtualize SMM)", S30;
    VM_HSAVE_PA = 0xC001_0117, "Physical address of the host state-save area written by VMRUN and read by #VMEXIT (4-KiB aligned)", S30;
    SVM_KEY = 0xC001_0118, "SVM-lock key: unlocks VM_CR.SVMDIS when VM_CR.LOCK is set", SVM_LOCK;
    AVIC_DOORBELL = 0xC001_011B, "AVIC doorbell: writing a physical APIC ID signals a pending guest interrupt to that core", AVIC;
    GHCB = 0xC001_0130, "SEV-ES: guest physical address of the GHCB (guest view)", SEV;
    SEV_STATUS = 0xC001_0131, "SEV status: SEV, SEV-ES, SEV-SNP and feature enables active for this guest", SEV;
}

/// EFER.SVME (bit 12): secure virtual machine enable.
pub const EFER_SVME: u64 = 1 << 12;

/// VM_CR bit 0: DPD, disable external debug of the processor.
pub const VM_CR_DPD: u64 = 1 << 0;
/// VM_CR bit 1: R_INIT, INIT is translated into a non-maskable #SX.
pub const VM_CR_R_INIT: u64 = 1 << 1;
/// VM_CR bit 2: DIS_A20M, disable A20 masking.
pub const VM_CR_DIS_A20M: u64 = 1 << 2;
/// VM_CR bit 3: LOCK, SVMDIS is read-only until unlocked with SVM_KEY.
pub const VM_CR_LOCK: u64 = 1 << 3;
/// VM_CR bit 4: SVMDIS, setting EFER.SVME is not allowed (#GP).
pub const VM_CR_SVMDIS: u64 = 1 << 4;

/// Value of TSC_RATIO at reset: a ratio of 1.0 in 8.32 fixed point.
pub const TSC_RATIO_DEFAULT: u64 = 0x1_0000_0000;
/// Bits of TSC_RATIO that are reserved (must be zero).
pub const TSC_RATIO_RESERVED: u64 = 0xFFFF_FF00_0000_0000;

/// CPUID function that reports SVM features (EAX = revision, EBX = number of ASIDs,
/// EDX = feature flags).
pub const CPUID_SVM_FEATURES: u32 = 0x8000_000A;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors() {
        assert_eq!(VM_CR, 0xC001_0114);
        assert_eq!(VM_HSAVE_PA, 0xC001_0117);
        assert_eq!(EFER, 0xC000_0080);
        assert_eq!(EFER_SVME, 0x1000);
        assert_eq!(TSC_RATIO, 0xC000_0104);
        assert_eq!(
            SvmMsrInfo::lookup(0xC001_0117).map(|m| m.name),
            Some("VM_HSAVE_PA")
        );
        assert_eq!(SvmMsrInfo::by_name("vm_cr").map(|m| m.index), Some(VM_CR));
        assert!(SvmMsrInfo::lookup(0).is_none());
    }

    #[test]
    fn rows_are_unique_and_referenced() {
        for (i, m) in SVM_MSRS.iter().enumerate() {
            assert!(m.reference.starts_with("APM Vol. 2"), "{}", m.name);
            for n in &SVM_MSRS[i + 1..] {
                assert_ne!(m.index, n.index);
                assert_ne!(m.name, n.name);
            }
        }
    }
}
