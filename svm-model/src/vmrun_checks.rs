//! The VMRUN consistency checks (APM Vol. 2 §15.5.1 "Basic Operation",
//! "Canonicalization and Consistency Checks"): "Illegal guest state combinations cause a
//! #VMEXIT with error code VMEXIT_INVALID."
//!
//! Each check is declared once in the `vmrun_checks!` table: a [`CheckId`], the APM
//! section, a one-line description and the pure function that tests it over a
//! [`VmcbRead`] and the processor's [`SvmCapabilities`]. [`check`] runs them in table
//! order (the APM's list order) and reports the first failure; [`failed_checks`] lists
//! them all, for `hvsim explain` and tests.

use crate::event_injection;
use crate::image::VmcbRead;
use crate::intercept::INTERCEPT_VMRUN;
use crate::io_intercept::IOPM_SIZE;
use crate::msr::EFER_SVME;
use crate::msr_intercept::MSRPM_SIZE;
use crate::vmcb::{self, bits};

/// What the processor supports, which decides which bits are MBZ.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SvmCapabilities {
    /// MAXPHYADDR: the physical-address width in bits.
    pub phys_addr_bits: u8,
    /// Long mode is supported (CPUID 8000_0001h EDX.LM).
    pub long_mode: bool,
    /// CR4 bits the processor supports (others are MBZ).
    pub cr4_valid: u64,
    /// EFER bits the processor supports, LMA included (others are MBZ).
    pub efer_valid: u64,
    /// Nested paging is supported (CPUID 8000_000Ah EDX.NP).
    pub nested_paging: bool,
}

/// CR0.PE.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.NW.
pub const CR0_NW: u64 = 1 << 29;
/// CR0.CD.
pub const CR0_CD: u64 = 1 << 30;
/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PAE.
pub const CR4_PAE: u64 = 1 << 5;
/// EFER.LME.
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA.
pub const EFER_LMA: u64 = 1 << 10;
/// Segment attribute bit L (descriptor bit 53) in the VMCB's packed attribute format.
pub const ATTR_L: u64 = 1 << 9;
/// Segment attribute bit D/B (descriptor bit 54) in the VMCB's packed attribute format.
pub const ATTR_D: u64 = 1 << 10;

/// Why VMRUN failed: the check and the field value it rejected.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[error("VMEXIT_INVALID: {} (VMCB offset {field:#05x} = {value:#x}; {})", .check.info().description, .check.info().section)]
pub struct InvalidVmcb {
    /// The failed check.
    pub check: CheckId,
    /// VMCB offset of the field that failed it.
    pub field: u16,
    /// The value of that field.
    pub value: u64,
}

/// One row of the check table.
#[derive(Copy, Clone, Debug)]
pub struct CheckInfo {
    /// The check.
    pub id: CheckId,
    /// The `CheckId` variant name.
    pub name: &'static str,
    /// APM section.
    pub section: &'static str,
    /// One-line description of the illegal state.
    pub description: &'static str,
    /// The test: `Some((field offset, value))` when the state is illegal.
    pub test: fn(&dyn VmcbRead, &SvmCapabilities) -> Option<(u16, u64)>,
}

const S551: &str = "APM Vol. 2 §15.5.1 \"Basic Operation\" (consistency checks)";
const S520: &str = "APM Vol. 2 §15.5.1 and §15.20 \"Event Injection\"";
const S525: &str = "APM Vol. 2 §15.25.3 \"Enabling Nested Paging\"";

macro_rules! vmrun_checks {
    ($( $id:ident, $section:expr, $desc:literal, $test:expr; )*) => {
        /// A VMRUN consistency check.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum CheckId {
            $(
                #[doc = $desc]
                $id,
            )*
        }

        /// Every VMRUN consistency check, in the order they are applied.
        pub static CHECKS: &[CheckInfo] = &[
            $( CheckInfo { id: CheckId::$id, name: stringify!($id), section: $section, description: $desc, test: $test }, )*
        ];
    };
}

/// `Some((field, value))` if `bad`.
fn fail(bad: bool, field: u16, value: u64) -> Option<(u16, u64)> {
    bad.then_some((field, value))
}

/// Bits at and above the physical-address width.
const fn above_maxphyaddr(c: &SvmCapabilities) -> u64 {
    if c.phys_addr_bits >= 64 {
        0
    } else {
        !((1u64 << c.phys_addr_bits) - 1)
    }
}

/// Long mode is being entered or is active: EFER.LME = 1 and CR0.PG = 1.
fn long_mode_paging(v: &dyn VmcbRead) -> bool {
    v.u64_at(vmcb::EFER) & EFER_LME != 0 && v.u64_at(vmcb::CR0) & CR0_PG != 0
}

/// Whether a permission map at `base` (bits 11:0 ignored) of `size` bytes reaches a
/// physical address at or above MAXPHYADDR.
fn map_out_of_range(base: u64, size: u64, c: &SvmCapabilities) -> bool {
    let last = (base & !0xFFF).checked_add(size - 1);
    last.map_or(true, |l| l & above_maxphyaddr(c) != 0)
}

vmrun_checks! {
    EferSvmeClear, S551, "EFER.SVME is zero",
        |v, _| fail(v.u64_at(vmcb::EFER) & EFER_SVME == 0, vmcb::EFER, v.u64_at(vmcb::EFER));
    Cr0CdClearNwSet, S551, "CR0.CD is zero and CR0.NW is set",
        |v, _| { let c = v.u64_at(vmcb::CR0); fail(c & CR0_CD == 0 && c & CR0_NW != 0, vmcb::CR0, c) };
    Cr0HighBits, S551, "CR0[63:32] are not zero",
        |v, _| { let c = v.u64_at(vmcb::CR0); fail(c >> 32 != 0, vmcb::CR0, c) };
    Cr3Mbz, S551, "Any MBZ bit of CR3 is set (in long mode, bits at or above MAXPHYADDR; else bits 63:32)",
        |v, c| {
            let cr3 = v.u64_at(vmcb::CR3);
            let mbz = if long_mode_paging(v) { above_maxphyaddr(c) } else { !0xFFFF_FFFF };
            fail(cr3 & mbz != 0, vmcb::CR3, cr3)
        };
    Cr4Mbz, S551, "Any MBZ bit of CR4 is set (a bit of a feature the processor does not support)",
        |v, c| { let cr4 = v.u64_at(vmcb::CR4); fail(cr4 & !c.cr4_valid != 0, vmcb::CR4, cr4) };
    Dr6HighBits, S551, "DR6[63:32] are not zero",
        |v, _| { let d = v.u64_at(vmcb::DR6); fail(d >> 32 != 0, vmcb::DR6, d) };
    Dr7HighBits, S551, "DR7[63:32] are not zero",
        |v, _| { let d = v.u64_at(vmcb::DR7); fail(d >> 32 != 0, vmcb::DR7, d) };
    EferMbz, S551, "Any MBZ bit of EFER is set (LME and LMA without long mode are the next check)",
        |v, c| { let e = v.u64_at(vmcb::EFER); fail(e & !(c.efer_valid | EFER_LME | EFER_LMA) != 0, vmcb::EFER, e) };
    LongModeUnsupported, S551, "EFER.LMA or EFER.LME is non-zero and the processor does not support long mode",
        |v, c| { let e = v.u64_at(vmcb::EFER); fail(!c.long_mode && e & (EFER_LMA | EFER_LME) != 0, vmcb::EFER, e) };
    LongModeWithoutPae, S551, "EFER.LME and CR0.PG are both set and CR4.PAE is zero",
        |v, _| { let cr4 = v.u64_at(vmcb::CR4); fail(long_mode_paging(v) && cr4 & CR4_PAE == 0, vmcb::CR4, cr4) };
    LongModeWithoutPe, S551, "EFER.LME and CR0.PG are both non-zero and CR0.PE is zero",
        |v, _| { let cr0 = v.u64_at(vmcb::CR0); fail(long_mode_paging(v) && cr0 & CR0_PE == 0, vmcb::CR0, cr0) };
    LongModeCsLAndD, S551, "EFER.LME, CR0.PG, CR4.PAE, CS.L and CS.D are all non-zero",
        |v, _| {
            let a = v.read(vmcb::CS_ATTRIB, 2);
            let pae = v.u64_at(vmcb::CR4) & CR4_PAE != 0;
            fail(long_mode_paging(v) && pae && a & ATTR_L != 0 && a & ATTR_D != 0, vmcb::CS_ATTRIB, a)
        };
    VmrunInterceptClear, S551, "The VMRUN intercept bit is clear",
        |v, _| {
            let w = v.read(INTERCEPT_VMRUN.word, 4);
            fail(w & u64::from(INTERCEPT_VMRUN.mask()) == 0, INTERCEPT_VMRUN.word, w)
        };
    MsrpmBeyondMaxPhysAddr, S551, "The MSR permission map extends to a physical address at or above MAXPHYADDR",
        |v, c| { let b = v.u64_at(vmcb::MSRPM_BASE_PA); fail(map_out_of_range(b, MSRPM_SIZE, c), vmcb::MSRPM_BASE_PA, b) };
    IopmBeyondMaxPhysAddr, S551, "The I/O permission map extends to a physical address at or above MAXPHYADDR",
        |v, c| { let b = v.u64_at(vmcb::IOPM_BASE_PA); fail(map_out_of_range(b, IOPM_SIZE, c), vmcb::IOPM_BASE_PA, b) };
    IllegalEventInjection, S520, "EVENTINJ holds an event that cannot be injected (reserved TYPE, exception with vector 2 or a non-exception vector, NMI with a vector other than 2)",
        |v, _| { let e = v.u64_at(vmcb::EVENTINJ); fail(event_injection::validate(e).is_err(), vmcb::EVENTINJ, e) };
    AsidZero, S551, "The guest ASID is zero (ASID 0 is the host's)",
        |v, _| { let a = v.read(vmcb::GUEST_ASID, 4); fail(a == 0, vmcb::GUEST_ASID, a) };
    NestedPagingUnsupported, S525, "NP_ENABLE is set and the processor does not support nested paging",
        |v, c| { let n = v.u64_at(vmcb::NP_CONTROL); fail(!c.nested_paging && bits::NP_ENABLE.get(n) != 0, vmcb::NP_CONTROL, n) };
    NestedCr3Mbz, S525, "NP_ENABLE is set and nCR3 has a bit set at or above MAXPHYADDR",
        |v, c| {
            let n = v.u64_at(vmcb::NP_CONTROL);
            let ncr3 = v.u64_at(vmcb::N_CR3);
            fail(c.nested_paging && bits::NP_ENABLE.get(n) != 0 && ncr3 & above_maxphyaddr(c) != 0, vmcb::N_CR3, ncr3)
        };
}

impl CheckId {
    /// The check's table row.
    pub fn info(self) -> &'static CheckInfo {
        // Every variant has exactly one row (unit-tested); the fallback is unreachable.
        CHECKS.iter().find(|c| c.id == self).unwrap_or(&CHECKS[0])
    }

    /// The check with this name (ASCII case-insensitive).
    pub fn by_name(name: &str) -> Option<CheckId> {
        CHECKS.iter().find(|c| c.name.eq_ignore_ascii_case(name)).map(|c| c.id)
    }
}

/// Runs every check in order; the first failure is the reason VMRUN fails.
pub fn check(v: &dyn VmcbRead, caps: &SvmCapabilities) -> Result<(), InvalidVmcb> {
    for c in CHECKS {
        if let Some((field, value)) = (c.test)(v, caps) {
            return Err(InvalidVmcb { check: c.id, field, value });
        }
    }
    Ok(())
}

/// Every check the VMCB fails.
pub fn failed_checks(v: &dyn VmcbRead, caps: &SvmCapabilities) -> Vec<InvalidVmcb> {
    CHECKS
        .iter()
        .filter_map(|c| {
            (c.test)(v, caps).map(|(field, value)| InvalidVmcb { check: c.id, field, value })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::VmcbImage;

    const CAPS: SvmCapabilities = SvmCapabilities {
        phys_addr_bits: 40,
        long_mode: true,
        cr4_valid: 0x0037_07FF,
        efer_valid: 0x1D01,
        nested_paging: false,
    };

    /// A VMCB that passes every check: 64-bit guest, VMRUN intercepted, ASID 1.
    fn good() -> VmcbImage {
        let mut v = VmcbImage::zeroed();
        v.set_u64(vmcb::EFER, EFER_SVME | EFER_LME | EFER_LMA);
        v.set_u64(vmcb::CR0, CR0_PG | CR0_PE | 1 << 16);
        v.set_u64(vmcb::CR4, CR4_PAE);
        v.set_u64(vmcb::CR3, 0x1000);
        v.write(vmcb::CS_ATTRIB, 2, 0x29B);
        v.write(vmcb::INTERCEPT_MISC2, 4, 1);
        v.write(vmcb::GUEST_ASID, 4, 1);
        v.set_u64(vmcb::DR6, 0xFFFF_0FF0);
        v.set_u64(vmcb::DR7, 0x400);
        v.set_u64(vmcb::MSRPM_BASE_PA, 0x10_0000);
        v.set_u64(vmcb::IOPM_BASE_PA, 0x20_0000);
        v
    }

    fn first(v: &VmcbImage) -> Option<CheckId> {
        check(v, &CAPS).err().map(|e| e.check)
    }

    #[test]
    fn table_has_one_row_per_check_with_references() {
        for (i, c) in CHECKS.iter().enumerate() {
            assert_eq!(c.id.info().name, c.name);
            assert!(c.section.starts_with("APM Vol. 2"));
            assert_eq!(CheckId::by_name(c.name), Some(c.id));
            for d in &CHECKS[i + 1..] {
                assert_ne!(c.id, d.id);
            }
        }
    }

    #[test]
    fn a_good_vmcb_passes() {
        assert_eq!(check(&good(), &CAPS), Ok(()));
        assert!(failed_checks(&good(), &CAPS).is_empty());
    }

    #[test]
    fn each_check_fires_alone() {
        let cases: Vec<(CheckId, Box<dyn Fn(&mut VmcbImage)>)> = vec![
            (CheckId::EferSvmeClear, Box::new(|v| v.set_u64(vmcb::EFER, EFER_LME | EFER_LMA))),
            (
                CheckId::Cr0CdClearNwSet,
                Box::new(|v| v.set_u64(vmcb::CR0, CR0_PG | CR0_PE | CR0_NW)),
            ),
            (CheckId::Cr0HighBits, Box::new(|v| v.set_u64(vmcb::CR0, CR0_PG | CR0_PE | 1 << 32))),
            (CheckId::Cr3Mbz, Box::new(|v| v.set_u64(vmcb::CR3, 1 << 40))),
            (CheckId::Cr4Mbz, Box::new(|v| v.set_u64(vmcb::CR4, CR4_PAE | 1 << 30))),
            (CheckId::Dr6HighBits, Box::new(|v| v.set_u64(vmcb::DR6, 1 << 32))),
            (CheckId::Dr7HighBits, Box::new(|v| v.set_u64(vmcb::DR7, 1 << 63))),
            (CheckId::EferMbz, Box::new(|v| v.set_u64(vmcb::EFER, 0x1D00 | 1 << 2))),
            (CheckId::LongModeWithoutPae, Box::new(|v| v.set_u64(vmcb::CR4, 0))),
            (CheckId::LongModeWithoutPe, Box::new(|v| v.set_u64(vmcb::CR0, CR0_PG))),
            (CheckId::LongModeCsLAndD, Box::new(|v| v.write(vmcb::CS_ATTRIB, 2, 0x69B))),
            (CheckId::VmrunInterceptClear, Box::new(|v| v.write(vmcb::INTERCEPT_MISC2, 4, 2))),
            (
                CheckId::MsrpmBeyondMaxPhysAddr,
                Box::new(|v| v.set_u64(vmcb::MSRPM_BASE_PA, (1 << 40) - 0x1000)),
            ),
            (
                CheckId::IopmBeyondMaxPhysAddr,
                Box::new(|v| v.set_u64(vmcb::IOPM_BASE_PA, (1 << 40) - 0x2000)),
            ),
            (
                CheckId::IllegalEventInjection,
                Box::new(|v| v.set_u64(vmcb::EVENTINJ, 1 << 31 | 3 << 8 | 2)),
            ),
            (CheckId::AsidZero, Box::new(|v| v.write(vmcb::GUEST_ASID, 4, 0))),
            (CheckId::NestedPagingUnsupported, Box::new(|v| v.set_u64(vmcb::NP_CONTROL, 1))),
        ];
        for (id, f) in cases {
            let mut v = good();
            f(&mut v);
            assert_eq!(first(&v), Some(id), "{id:?}");
            let all: Vec<_> = failed_checks(&v, &CAPS).iter().map(|e| e.check).collect();
            assert_eq!(all, vec![id], "{id:?} must fail alone");
        }
    }

    #[test]
    fn maps_just_below_maxphyaddr_pass() {
        let mut v = good();
        v.set_u64(vmcb::MSRPM_BASE_PA, (1 << 40) - 0x2000);
        v.set_u64(vmcb::IOPM_BASE_PA, (1 << 40) - 0x3000 + 0xFFF); // bits 11:0 ignored
        assert_eq!(check(&v, &CAPS), Ok(()));
        v.set_u64(vmcb::IOPM_BASE_PA, u64::MAX);
        assert_eq!(first(&v), Some(CheckId::IopmBeyondMaxPhysAddr));
    }

    #[test]
    fn long_mode_unsupported_and_legacy_cr3() {
        let caps = SvmCapabilities { long_mode: false, efer_valid: 0x1001, ..CAPS };
        let v = good();
        assert_eq!(check(&v, &caps).map_err(|e| e.check), Err(CheckId::LongModeUnsupported));
        // Legacy paging: CR3[63:32] MBZ, bits below 4 GiB fine.
        let mut v = good();
        v.set_u64(vmcb::EFER, EFER_SVME);
        v.set_u64(vmcb::CR3, 0xFFFF_F000);
        assert_eq!(check(&v, &CAPS), Ok(()));
        v.set_u64(vmcb::CR3, 1 << 32);
        assert_eq!(first(&v), Some(CheckId::Cr3Mbz));
    }

    #[test]
    fn nested_cr3_checked_only_with_nested_paging() {
        let caps = SvmCapabilities { nested_paging: true, ..CAPS };
        let mut v = good();
        v.set_u64(vmcb::NP_CONTROL, 1);
        v.set_u64(vmcb::N_CR3, 1 << 45);
        assert_eq!(check(&v, &caps).map_err(|e| e.check), Err(CheckId::NestedCr3Mbz));
        v.set_u64(vmcb::NP_CONTROL, 0);
        assert_eq!(check(&v, &caps), Ok(()));
    }

    #[test]
    fn error_message_names_the_check() {
        let mut v = good();
        v.write(vmcb::GUEST_ASID, 4, 0);
        let e = check(&v, &CAPS).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("ASID is zero"), "{s}");
        assert!(s.contains("§15.5.1"), "{s}");
    }

    proptest::proptest! {
        #[test]
        fn random_vmcb_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096usize), pa in 0u8..=64, lm: bool, np: bool) {
            let v = VmcbImage::from_bytes(&bytes);
            let caps = SvmCapabilities { phys_addr_bits: pa, long_mode: lm, nested_paging: np, ..CAPS };
            let first = check(&v, &caps);
            let all = failed_checks(&v, &caps);
            proptest::prop_assert_eq!(first.is_ok(), all.is_empty());
            if let Err(e) = first { proptest::prop_assert_eq!(Some(&e), all.first()); }
            let _ = event_injection::validate(v.u64_at(vmcb::EVENTINJ));
        }
    }
}
