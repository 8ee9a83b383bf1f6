//! The two CPU models `--cpu` selects: which features each advertises, its signature
//! and its leaf ranges. A model advertises only what hvsim implements; the pending lists
//! name the features whose code is being written elsewhere, to be switched on (moved to
//! the implemented list) when it lands.

use super::features::{Feature, FeatureSet};
use super::Vendor;

use Feature::*;

/// Implemented by hvsim and advertised by both models.
///
/// Audit (see `src/cpu/exec/` and `mmu/src/paging.rs`): 32-bit paging with PSE and
/// PSE-36, PAE, 4-level and 5-level paging with 1-GiB pages, global pages, NX, SMEP,
/// SMAP with STAC/CLAC, protection keys (CR4.PKE, RDPKRU/WRPKRU), PCID and INVPCID, UMIP;
/// I/O breakpoints (CR4.DE, `cpu/debug.rs`); RDTSC/RDTSCP/RDPID, RDMSR/WRMSR, the MTRR and
/// PAT MSRs, SYSENTER/SYSEXIT, SYSCALL/SYSRET, CMPXCHG8B/16B, CMOVcc, MOVBE, POPCNT,
/// LZCNT, LAHF/SAHF in 64-bit mode, CLFLUSH/CLFLUSHOPT/CLWB, PREFETCHW, RDRAND/RDSEED,
/// MONITOR/MWAIT at CPL 0 (leaf 05H; `cpu/exec/monitor.rs`).
///
/// Deliberately absent: FPU, MMX, FXSR, SSE* (no x87/SIMD state), XSAVE (only XCR0.x87
/// exists, no XSAVE instructions), MONITORX/MWAITX (AMD; #UD), MCE/MCA (no machine-check state),
/// BMI1 (so TZCNT runs as BSF)/BMI2/ADX, FSGSBASE, HTT, the speculation-control MSRs.
/// Their CR4 bits are reserved (`Cpuid::cr4_valid_bits`).
const COMMON: FeatureSet = FeatureSet::of(&[
    De,
    Pse,
    Tsc,
    Msr,
    Pae,
    Cx8,
    Sep,
    Mtrr,
    Pge,
    Cmov,
    Pat,
    Pse36,
    Clfsh,
    Cx16,
    Pcid,
    Movbe,
    Popcnt,
    Rdrand,
    Smep,
    Invpcid,
    Rdseed,
    Smap,
    Clflushopt,
    Clwb,
    Umip,
    Pku,
    La57,
    Rdpid,
    LahfLm,
    Abm,
    Prefetchw,
    Syscall,
    Nx,
    Page1Gb,
    Rdtscp,
    Lm,
    Apic,
    Monitor,
    X2apic,
    TscDeadline,
]);

/// Implemented and advertised only by the Intel-like model.
const INTEL_ONLY: FeatureSet = FeatureSet::of(&[TscAdjust, Vmx]);

/// Implemented and advertised only by the AMD-like model.
const AMD_ONLY: FeatureSet = FeatureSet::of(&[Svm]);

// ---- PENDING: switch these on (move them into the lists above) when their code lands.
//

/// Features whose code is in progress, for both models (see the comment above).
pub const PENDING_COMMON: FeatureSet = FeatureSet::EMPTY;
/// In progress, Intel model only.
pub const PENDING_INTEL: FeatureSet = FeatureSet::EMPTY;
/// In progress, AMD model only.
pub const PENDING_AMD: FeatureSet = FeatureSet::EMPTY;

/// What the model for `vendor` advertises.
pub fn features(vendor: Vendor) -> FeatureSet {
    match vendor {
        Vendor::Intel => COMMON.union(INTEL_ONLY),
        Vendor::Amd => COMMON.union(AMD_ONLY),
    }
}

/// What the model for `vendor` will advertise once the pending features land.
pub fn pending(vendor: Vendor) -> FeatureSet {
    match vendor {
        Vendor::Intel => PENDING_COMMON.union(PENDING_INTEL),
        Vendor::Amd => PENDING_COMMON.union(PENDING_AMD),
    }
}

/// The highest basic leaf: Intel reports up to the V2 extended topology leaf 1Fh; the
/// AMD model stops at the XSAVE leaf 0Dh (AMD processors have no leaf 1Fh).
pub fn max_basic_leaf(vendor: Vendor) -> u32 {
    match vendor {
        Vendor::Intel => 0x1F,
        Vendor::Amd => 0xD,
    }
}

/// The highest extended leaf: the address-size leaf on Intel, the SVM leaf on AMD.
pub fn max_extended_leaf(vendor: Vendor) -> u32 {
    match vendor {
        Vendor::Intel => 0x8000_0008,
        Vendor::Amd => 0x8000_000A,
    }
}

/// CPUID.1:EAX: family 6 model 0x3A stepping 9 (Intel), family 0x17 model 1 stepping 2
/// (AMD).
pub fn signature(vendor: Vendor) -> u32 {
    match vendor {
        Vendor::Intel => 0x0003_06A9,
        Vendor::Amd => 0x0080_0F12,
    }
}

/// The 48-byte brand string of leaves 80000002h-80000004h (NUL-padded).
pub fn brand(vendor: Vendor) -> [u8; 48] {
    let s: &[u8] = match vendor {
        Vendor::Intel => b"hvsim Intel-like CPU model",
        Vendor::Amd => b"hvsim AMD-like CPU model",
    };
    let mut b = [0u8; 48];
    b[..s.len()].copy_from_slice(s);
    b
}
