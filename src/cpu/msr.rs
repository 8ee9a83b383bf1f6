//! Model-specific registers hvsim implements (SDM Vol. 4 "Model-Specific Registers",
//! Table 2-2 "IA-32 Architectural MSRs"; APM Vol. 2 Appendix A "MSR Cross-Reference"):
//! the one table the RDMSR/WRMSR code and the tests share.
//!
//! Each MSR is declared once in the `msrs!` table: a `pub const` number and a row of
//! [`MSRS`] saying when it exists (vendor, CPUID feature), its value after reset, and
//! the rule a WRMSR value must satisfy. The VMX capability MSRs and the SVM MSRs belong
//! to `vmx-model` and `svm-model`.

use crate::cpu::access::MAXPHYADDR;
use crate::cpuid::{Cpuid, Feature, Vendor};

/// When an MSR exists.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Avail {
    /// On every model that advertises the feature.
    Feature(Feature),
    /// On the Intel model when it advertises the feature.
    IntelFeature(Feature),
}

impl Avail {
    /// Whether the MSR exists on `model`.
    pub fn on(self, model: &Cpuid) -> bool {
        match self {
            Avail::Feature(f) => model.has(f),
            Avail::IntelFeature(f) => model.vendor() == Vendor::Intel && model.has(f),
        }
    }
}

/// What a WRMSR value must satisfy (else #GP(0)); the side effects are in
/// `exec/msr_access.rs`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WriteRule {
    /// Bits in the mask are reserved: setting one is #GP(0).
    Reserved(u64),
    /// A canonical linear address (for the model's linear-address width).
    Canonical,
    /// Intel: canonical. AMD: only bits 31:0 exist; the upper half is dropped.
    CanonicalIntelLow32Amd,
    /// Every write is #GP(0).
    ReadOnly,
    /// Every byte a memory type valid in the PAT: UC(0), WC(1), WT(4), WP(5), WB(6), UC-(7).
    PatTypes,
    /// Every byte a memory type valid in an MTRR: UC, WC, WT, WP, WB.
    MtrrTypes,
    /// The low byte an MTRR memory type, the bits in the mask reserved.
    MtrrTypeAndReserved(u64),
    /// Rules that depend on other state (EFER, APIC_BASE, MISC_ENABLE,
    /// FEATURE_CONTROL): see `exec/msr_access.rs`.
    Special,
    /// Any value.
    Any,
}

impl WriteRule {
    /// The value a WRMSR of `v` stores under this rule on `model`, or `None` for #GP(0).
    /// `Special` accepts everything here; its checks are in `exec/msr_access.rs`.
    pub fn apply(self, model: &Cpuid, v: u64) -> Option<u64> {
        let bytes_ok = |ok: fn(u64) -> bool| (0..8).all(|k| ok((v >> (8 * k)) & 0xFF));
        let ok = match self {
            WriteRule::Reserved(mask) => v & mask == 0,
            WriteRule::Canonical => canonical(model, v),
            WriteRule::CanonicalIntelLow32Amd => match model.vendor() {
                Vendor::Intel => canonical(model, v),
                Vendor::Amd => return Some(v & 0xFFFF_FFFF),
            },
            WriteRule::ReadOnly => false,
            WriteRule::PatTypes => bytes_ok(pat_type_valid),
            WriteRule::MtrrTypes => bytes_ok(mtrr_type_valid),
            WriteRule::MtrrTypeAndReserved(mask) => v & mask == 0 && mtrr_type_valid(v & 0xFF),
            WriteRule::Special | WriteRule::Any => true,
        };
        ok.then_some(v)
    }
}

/// Whether `v` is canonical for the model's linear-address width. MSRs holding linear
/// addresses are checked against the widest width the processor supports, whatever
/// CR4.LA57 says.
pub fn canonical(model: &Cpuid, v: u64) -> bool {
    let shift = 64 - u32::from(model.linear_address_bits());
    ((v << shift) as i64 >> shift) as u64 == v
}

/// One implemented MSR.
#[derive(Copy, Clone, Debug)]
pub struct MsrInfo {
    /// The number (ECX of RDMSR/WRMSR).
    pub index: u32,
    /// The SDM name.
    pub name: &'static str,
    /// When it exists.
    pub avail: Avail,
    /// The value after reset.
    pub reset: u64,
    /// What a written value must satisfy.
    pub rule: WriteRule,
}

impl MsrInfo {
    /// The row of an implemented MSR.
    pub fn lookup(index: u32) -> Option<&'static MsrInfo> {
        MSRS.iter().find(|m| m.index == index)
    }
}

/// Bits at and above MAXPHYADDR (reserved in physical-address fields).
pub const ABOVE_MAXPHYADDR: u64 = !((1u64 << MAXPHYADDR) - 1);

// ---- Bit layouts ----

// IA32_APIC_BASE's bits are the local APIC's (SDM Vol. 3A §11.4.4), declared once in
// the device model.
pub use hvsim_devices::lapic::regs::{
    APIC_BASE_BSP, APIC_BASE_ENABLE as APIC_BASE_EN, APIC_BASE_EXTD,
};
/// IA32_APIC_BASE bits MAXPHYADDR-1:12: the APIC page.
pub const APIC_BASE_ADDR: u64 = !ABOVE_MAXPHYADDR & !0xFFF;
/// IA32_APIC_BASE of the bootstrap processor after reset: base 0xFEE00000, enabled, BSP.
pub const APIC_BASE_RESET: u64 = 0xFEE0_0000 | APIC_BASE_EN | APIC_BASE_BSP;

/// IA32_FEATURE_CONTROL bit 0: lock; once set, WRMSR to the MSR is #GP until reset.
pub const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
/// IA32_FEATURE_CONTROL bit 1: VMXON allowed inside SMX operation (needs SMX).
pub const FEATURE_CONTROL_VMX_IN_SMX: u64 = 1 << 1;
/// IA32_FEATURE_CONTROL bit 2: VMXON allowed outside SMX operation (needs VMX).
pub const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;

/// IA32_MISC_ENABLE bit 0: fast-string operations enabled (R/W, no effect in hvsim).
pub const MISC_ENABLE_FAST_STRINGS: u64 = 1 << 0;
/// IA32_MISC_ENABLE bit 11: branch trace storage unavailable (read-only, 1).
pub const MISC_ENABLE_BTS_UNAVAILABLE: u64 = 1 << 11;
/// IA32_MISC_ENABLE bit 12: PEBS unavailable (read-only, 1).
pub const MISC_ENABLE_PEBS_UNAVAILABLE: u64 = 1 << 12;
/// IA32_MISC_ENABLE bits that ignore writes.
pub const MISC_ENABLE_READ_ONLY: u64 = MISC_ENABLE_BTS_UNAVAILABLE | MISC_ENABLE_PEBS_UNAVAILABLE;
/// IA32_MISC_ENABLE after reset. Every bit other than these three is reserved in this
/// model (EIST, MONITOR FSM, limit-CPUID-maxval, xTPR, XD-disable are not modelled).
pub const MISC_ENABLE_RESET: u64 = MISC_ENABLE_FAST_STRINGS | MISC_ENABLE_READ_ONLY;

/// The number of variable-range MTRR pairs (IA32_MTRRCAP.VCNT).
pub const MTRR_VARIABLE_COUNT: u32 = 8;
/// IA32_MTRRCAP bit 8: fixed-range MTRRs supported.
pub const MTRRCAP_FIX: u64 = 1 << 8;
/// IA32_MTRRCAP bit 10: write-combining memory type supported.
pub const MTRRCAP_WC: u64 = 1 << 10;
/// IA32_MTRRCAP: 8 variable ranges, fixed ranges, WC; no SMRR.
pub const MTRRCAP_VALUE: u64 = MTRR_VARIABLE_COUNT as u64 | MTRRCAP_FIX | MTRRCAP_WC;
/// IA32_MTRR_DEF_TYPE bit 10: fixed-range MTRRs enabled.
pub const MTRR_DEF_TYPE_FE: u64 = 1 << 10;
/// IA32_MTRR_DEF_TYPE bit 11: MTRRs enabled.
pub const MTRR_DEF_TYPE_E: u64 = 1 << 11;
/// IA32_MTRR_PHYSMASKn bit 11: the range is valid.
pub const MTRR_PHYSMASK_V: u64 = 1 << 11;

/// IA32_PAT after reset.
pub const PAT_RESET: u64 = 0x0007_0406_0007_0406;

/// Reserved bits of IA32_MTRR_DEF_TYPE: all but the type, FE and E.
const MTRR_DEF_TYPE_RESERVED: u64 = !(0xFF | MTRR_DEF_TYPE_FE | MTRR_DEF_TYPE_E);
/// Reserved bits of IA32_MTRR_PHYSBASEn: 11:8 and those above MAXPHYADDR.
const MTRR_PHYSBASE_RESERVED: u64 = 0xF00 | ABOVE_MAXPHYADDR;
/// Reserved bits of IA32_MTRR_PHYSMASKn: 10:0 and those above MAXPHYADDR.
const MTRR_PHYSMASK_RESERVED: u64 = 0x7FF | ABOVE_MAXPHYADDR;
/// Bits 63:32 reserved.
const HIGH_HALF: u64 = 0xFFFF_FFFF_0000_0000;

/// The memory-type encodings valid in MTRRs (SDM Vol. 3A §13.11.2 "Setting Memory
/// Ranges with MTRRs", Table 13-8).
pub fn mtrr_type_valid(t: u64) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6)
}

/// The memory-type encodings valid in the PAT (SDM Vol. 3A §13.12.2 "IA32_PAT MSR").
pub fn pat_type_valid(t: u64) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6 | 7)
}

/// Declares each MSR once: a `pub const` and a row of [`MSRS`].
macro_rules! msrs {
    ($( $name:ident = $index:literal, $avail:expr, $reset:expr, $rule:expr, $doc:literal; )*) => {
        $( #[doc = $doc] pub const $name: u32 = $index; )*

        /// Every implemented MSR.
        pub static MSRS: &[MsrInfo] = &[
            $( MsrInfo {
                index: $index,
                name: stringify!($name),
                avail: $avail,
                reset: $reset,
                rule: $rule,
            }, )*
        ];
    };
}

use Avail::{Feature as F, IntelFeature as IntelF};
use Feature::*;
use WriteRule::*;

msrs! {
    IA32_TSC = 0x10, F(Tsc), 0, Any, "Time-stamp counter.";
    IA32_APIC_BASE = 0x1B, F(Apic), APIC_BASE_RESET, Special, "Local APIC base.";
    IA32_FEATURE_CONTROL = 0x3A, IntelF(Vmx), 0, Special,
        "Feature control: lock and VMX enables (exists with VMX or SMX).";
    IA32_TSC_ADJUST = 0x3B, IntelF(TscAdjust), 0, Any, "TSC adjustment.";
    IA32_MTRRCAP = 0xFE, F(Mtrr), MTRRCAP_VALUE, ReadOnly, "MTRR capabilities.";
    IA32_SYSENTER_CS = 0x174, F(Sep), 0, Any, "SYSENTER target CS.";
    IA32_SYSENTER_ESP = 0x175, F(Sep), 0, CanonicalIntelLow32Amd, "SYSENTER target RSP.";
    IA32_SYSENTER_EIP = 0x176, F(Sep), 0, CanonicalIntelLow32Amd, "SYSENTER target RIP.";
    IA32_MISC_ENABLE = 0x1A0, IntelF(Msr), MISC_ENABLE_RESET, Special, "Miscellaneous enables.";
    IA32_MTRR_PHYSBASE0 = 0x200, F(Mtrr), 0, MtrrTypeAndReserved(MTRR_PHYSBASE_RESERVED), "Variable-range MTRR 0 base.";
    IA32_MTRR_PHYSMASK0 = 0x201, F(Mtrr), 0, Reserved(MTRR_PHYSMASK_RESERVED), "Variable-range MTRR 0 mask.";
    IA32_MTRR_PHYSBASE1 = 0x202, F(Mtrr), 0, MtrrTypeAndReserved(MTRR_PHYSBASE_RESERVED), "Variable-range MTRR 1 base.";
    IA32_MTRR_PHYSMASK1 = 0x203, F(Mtrr), 0, Reserved(MTRR_PHYSMASK_RESERVED), "Variable-range MTRR 1 mask.";
    IA32_MTRR_PHYSBASE2 = 0x204, F(Mtrr), 0, MtrrTypeAndReserved(MTRR_PHYSBASE_RESERVED), "Variable-range MTRR 2 base.";
    IA32_MTRR_PHYSMASK2 = 0x205, F(Mtrr), 0, Reserved(MTRR_PHYSMASK_RESERVED), "Variable-range MTRR 2 mask.";
    IA32_MTRR_PHYSBASE3 = 0x206, F(Mtrr), 0, MtrrTypeAndReserved(MTRR_PHYSBASE_RESERVED), "Variable-range MTRR 3 base.";
    IA32_MTRR_PHYSMASK3 = 0x207, F(Mtrr), 0, Reserved(MTRR_PHYSMASK_RESERVED), "Variable-range MTRR 3 mask.";
    IA32_MTRR_PHYSBASE4 = 0x208, F(Mtrr), 0, MtrrTypeAndReserved(MTRR_PHYSBASE_RESERVED), "Variable-range MTRR 4 base.";
    IA32_MTRR_PHYSMASK4 = 0x209, F(Mtrr), 0, Reserved(MTRR_PHYSMASK_RESERVED), "Variable-range MTRR 4 mask.";
    IA32_MTRR_PHYSBASE5 = 0x20A, F(Mtrr), 0, MtrrTypeAndReserved(MTRR_PHYSBASE_RESERVED), "Variable-range MTRR 5 base.";
    IA32_MTRR_PHYSMASK5 = 0x20B, F(Mtrr), 0, Reserved(MTRR_PHYSMASK_RESERVED), "Variable-range MTRR 5 mask.";
    IA32_MTRR_PHYSBASE6 = 0x20C, F(Mtrr), 0, MtrrTypeAndReserved(MTRR_PHYSBASE_RESERVED), "Variable-range MTRR 6 base.";
    IA32_MTRR_PHYSMASK6 = 0x20D, F(Mtrr), 0, Reserved(MTRR_PHYSMASK_RESERVED), "Variable-range MTRR 6 mask.";
    IA32_MTRR_PHYSBASE7 = 0x20E, F(Mtrr), 0, MtrrTypeAndReserved(MTRR_PHYSBASE_RESERVED), "Variable-range MTRR 7 base.";
    IA32_MTRR_PHYSMASK7 = 0x20F, F(Mtrr), 0, Reserved(MTRR_PHYSMASK_RESERVED), "Variable-range MTRR 7 mask.";
    IA32_MTRR_FIX64K_00000 = 0x250, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR 00000h-7FFFFh.";
    IA32_MTRR_FIX16K_80000 = 0x258, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR 80000h-9FFFFh.";
    IA32_MTRR_FIX16K_A0000 = 0x259, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR A0000h-BFFFFh.";
    IA32_MTRR_FIX4K_C0000 = 0x268, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR C0000h-C7FFFh.";
    IA32_MTRR_FIX4K_C8000 = 0x269, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR C8000h-CFFFFh.";
    IA32_MTRR_FIX4K_D0000 = 0x26A, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR D0000h-D7FFFh.";
    IA32_MTRR_FIX4K_D8000 = 0x26B, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR D8000h-DFFFFh.";
    IA32_MTRR_FIX4K_E0000 = 0x26C, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR E0000h-E7FFFh.";
    IA32_MTRR_FIX4K_E8000 = 0x26D, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR E8000h-EFFFFh.";
    IA32_MTRR_FIX4K_F0000 = 0x26E, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR F0000h-F7FFFh.";
    IA32_MTRR_FIX4K_F8000 = 0x26F, F(Mtrr), 0, MtrrTypes, "Fixed-range MTRR F8000h-FFFFFh.";
    IA32_PAT = 0x277, F(Pat), PAT_RESET, PatTypes, "Page attribute table.";
    IA32_MTRR_DEF_TYPE = 0x2FF, F(Mtrr), 0, MtrrTypeAndReserved(MTRR_DEF_TYPE_RESERVED), "Default memory type and MTRR enables.";
    IA32_EFER = 0xC000_0080, F(Lm), 0, Special, "Extended feature enables.";
    IA32_STAR = 0xC000_0081, F(Syscall), 0, Any, "SYSCALL/SYSRET selectors (and, AMD, the legacy SYSCALL EIP).";
    IA32_LSTAR = 0xC000_0082, F(Lm), 0, Canonical, "SYSCALL target RIP for 64-bit callers.";
    IA32_CSTAR = 0xC000_0083, F(Lm), 0, Canonical, "SYSCALL target RIP for compatibility-mode callers (AMD).";
    IA32_FMASK = 0xC000_0084, F(Lm), 0, Reserved(HIGH_HALF), "SYSCALL RFLAGS mask.";
    IA32_FS_BASE = 0xC000_0100, F(Lm), 0, Canonical, "FS base.";
    IA32_GS_BASE = 0xC000_0101, F(Lm), 0, Canonical, "GS base.";
    IA32_KERNEL_GS_BASE = 0xC000_0102, F(Lm), 0, Canonical, "The GS base SWAPGS exchanges with.";
    IA32_TSC_AUX = 0xC000_0103, F(Rdtscp), 0, Reserved(HIGH_HALF), "The auxiliary value RDTSCP and RDPID return.";
}

// ---- MSRs hvsim does not implement, named for the tests that check they #GP ----

/// Speculation control (exists with CPUID.7:EDX.SpecCtrl, which no model advertises).
pub const IA32_SPEC_CTRL: u32 = 0x48;
/// Prediction command (same condition as IA32_SPEC_CTRL).
pub const IA32_PRED_CMD: u32 = 0x49;
/// Machine-check capabilities (exists with CPUID.1:EDX.MCA, not advertised).
pub const IA32_MCG_CAP: u32 = 0x179;
/// Machine-check status (as IA32_MCG_CAP).
pub const IA32_MCG_STATUS: u32 = 0x17A;
/// Speculation-related capabilities (exists with CPUID.7:EDX.ArchCapabilities, not
/// advertised).
pub const IA32_ARCH_CAPABILITIES: u32 = 0x10A;

/// The name of an implemented MSR.
pub fn name(msr: u32) -> Option<&'static str> {
    MsrInfo::lookup(msr).map(|m| m.name)
}

/// The implemented MSR `msr`, if it exists on `model`.
pub fn on_model(model: &Cpuid, msr: u32) -> Option<&'static MsrInfo> {
    MsrInfo::lookup(msr).filter(|m| m.avail.on(model))
}

/// The variable-range MTRR registers IA32_MTRR_PHYSBASE0 ... PHYSMASKn-1 the model has,
/// as the range of MSR numbers (IA32_MTRRCAP.VCNT pairs).
pub fn variable_mtrrs() -> std::ops::Range<u32> {
    IA32_MTRR_PHYSBASE0..IA32_MTRR_PHYSBASE0 + 2 * MTRR_VARIABLE_COUNT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_unique() {
        for (i, m) in MSRS.iter().enumerate() {
            for n in &MSRS[i + 1..] {
                assert_ne!(m.index, n.index, "{} and {}", m.name, n.name);
            }
        }
    }

    #[test]
    fn variable_mtrrs_match_mtrrcap() {
        assert_eq!(MTRRCAP_VALUE & 0xFF, u64::from(MTRR_VARIABLE_COUNT));
        for n in variable_mtrrs() {
            assert!(MsrInfo::lookup(n).is_some(), "{n:#x}");
        }
        assert!(MsrInfo::lookup(variable_mtrrs().end).is_none());
    }
}
