//! MSR intercepts: the MSR permissions map (APM Vol. 2 §15.11 "MSR Intercepts",
//! Table 15-5 "MSR Ranges Covered by MSRPM").
//!
//! The MSRPM is 8 KiB. Each MSR has two consecutive bits: the even bit intercepts
//! RDMSR, the odd bit WRMSR. Three ranges of 8192 MSRs each are covered:
//!
//! | MSRPM bytes   | MSRs                     |
//! |---------------|--------------------------|
//! | 0x000-0x7FF   | 0000_0000h-0000_1FFFh    |
//! | 0x800-0xFFF   | C000_0000h-C000_1FFFh    |
//! | 0x1000-0x17FF | C001_0000h-C001_1FFFh    |
//! | 0x1800-0x1FFF | reserved                 |
//!
//! "Accesses to MSRs outside the ranges in the table are always intercepted" when the
//! MSR_PROT intercept is set. EXITINFO1 of VMEXIT_MSR is 0 for RDMSR and 1 for WRMSR.

/// Size of the MSRPM in bytes (two 4-KiB pages).
pub const MSRPM_SIZE: u64 = 0x2000;

/// The MSR ranges the MSRPM covers: (first MSR, byte offset of its bits in the map).
pub const MSRPM_RANGES: [(u32, u64); 3] =
    [(0x0000_0000, 0x000), (0xC000_0000, 0x800), (0xC001_0000, 0x1000)];

/// MSRs per range.
pub const MSRS_PER_RANGE: u32 = 0x2000;

/// EXITINFO1 of VMEXIT_MSR for RDMSR.
pub const EXITINFO1_RDMSR: u64 = 0;
/// EXITINFO1 of VMEXIT_MSR for WRMSR.
pub const EXITINFO1_WRMSR: u64 = 1;

/// RDMSR or WRMSR.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum MsrAccess {
    /// RDMSR.
    Read,
    /// WRMSR.
    Write,
}

impl MsrAccess {
    /// EXITINFO1 of the VMEXIT_MSR for this access.
    pub const fn exitinfo1(self) -> u64 {
        match self {
            MsrAccess::Read => EXITINFO1_RDMSR,
            MsrAccess::Write => EXITINFO1_WRMSR,
        }
    }
}

/// The MSRPM byte offset and bit number (0-7) that control `access` to `msr`, or `None`
/// if the MSR is outside the three ranges (then the access is always intercepted).
pub const fn msrpm_bit(msr: u32, access: MsrAccess) -> Option<(u64, u8)> {
    let mut k = 0;
    while k < MSRPM_RANGES.len() {
        let (first, base) = MSRPM_RANGES[k];
        if msr >= first && msr - first < MSRS_PER_RANGE {
            let bit = 2 * (msr - first) as u64 + matches!(access, MsrAccess::Write) as u64;
            return Some((base + bit / 8, (bit % 8) as u8));
        }
        k += 1;
    }
    None
}

/// Whether `access` to `msr` is intercepted, given a reader of MSRPM bytes.
pub fn intercepted(mut read: impl FnMut(u64) -> u8, msr: u32, access: MsrAccess) -> bool {
    match msrpm_bit(msr, access) {
        Some((off, bit)) => read(off) & (1 << bit) != 0,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_bits() {
        assert_eq!(msrpm_bit(0, MsrAccess::Read), Some((0, 0)));
        assert_eq!(msrpm_bit(0, MsrAccess::Write), Some((0, 1)));
        assert_eq!(msrpm_bit(3, MsrAccess::Write), Some((0, 7)));
        assert_eq!(msrpm_bit(0x1FFF, MsrAccess::Write), Some((0x7FF, 7)));
        // EFER (C000_0080h): bit 2*0x80 = 256 of the second range.
        assert_eq!(msrpm_bit(0xC000_0080, MsrAccess::Read), Some((0x820, 0)));
        // VM_HSAVE_PA (C001_0117h).
        assert_eq!(msrpm_bit(0xC001_0117, MsrAccess::Write), Some((0x1045, 7)));
        assert_eq!(msrpm_bit(0x2000, MsrAccess::Read), None);
        assert_eq!(msrpm_bit(0xC000_2000, MsrAccess::Read), None);
        assert_eq!(msrpm_bit(0xC001_2000, MsrAccess::Read), None);
        assert_eq!(msrpm_bit(0x4000_0000, MsrAccess::Read), None);
    }

    #[test]
    fn every_covered_bit_is_inside_the_map_and_unique() {
        let mut seen = vec![0u8; MSRPM_SIZE as usize];
        for &(first, _) in &MSRPM_RANGES {
            for msr in first..first + MSRS_PER_RANGE {
                for a in [MsrAccess::Read, MsrAccess::Write] {
                    let (off, bit) = msrpm_bit(msr, a).unwrap();
                    assert!(off < 0x1800);
                    assert_eq!(seen[off as usize] & (1 << bit), 0);
                    seen[off as usize] |= 1 << bit;
                }
            }
        }
    }

    #[test]
    fn outside_the_ranges_is_always_intercepted() {
        let zeros = |_| 0u8;
        assert!(!intercepted(zeros, 0x10, MsrAccess::Read));
        assert!(intercepted(zeros, 0x4000_0000, MsrAccess::Read));
        let ones = |_| 0xFFu8;
        assert!(intercepted(ones, 0x10, MsrAccess::Write));
        assert_eq!(MsrAccess::Write.exitinfo1(), 1);
        assert_eq!(MsrAccess::Read.exitinfo1(), 0);
    }
}
