//! The CPUID model. It advertises only what hvsim implements: the integer instruction set
//! of the foundation (CMOV, CX8, CMPXCHG16B, MOVBE, POPCNT, LZCNT, long mode, LAHF in
//! 64-bit mode). The full CPU models (`--cpu`) come with the system-architecture work.

/// Which vendor the guest sees.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Vendor {
    /// "GenuineIntel".
    #[default]
    Intel,
    /// "AuthenticAMD".
    Amd,
}

/// CPUID.1:EDX.CX8.
const CPUID1_EDX_CX8: u32 = 1 << 8;
/// CPUID.1:EDX.CMOV.
const CPUID1_EDX_CMOV: u32 = 1 << 15;
/// CPUID.1:ECX.CMPXCHG16B.
const CPUID1_ECX_CX16: u32 = 1 << 13;
/// CPUID.1:ECX.MOVBE.
const CPUID1_ECX_MOVBE: u32 = 1 << 22;
/// CPUID.1:ECX.POPCNT.
const CPUID1_ECX_POPCNT: u32 = 1 << 23;
/// CPUID.80000001h:ECX.LAHF-SAHF in 64-bit mode.
const EXT1_ECX_LAHF_LM: u32 = 1 << 0;
/// CPUID.80000001h:ECX.LZCNT (ABM on AMD).
const EXT1_ECX_LZCNT: u32 = 1 << 5;
/// CPUID.80000001h:EDX.LM (long mode).
const EXT1_EDX_LM: u32 = 1 << 29;

/// The CPUID table of a CPU model.
#[derive(Clone, Debug, Default)]
pub struct Cpuid {
    vendor: Vendor,
}

impl Cpuid {
    /// The model for `vendor`.
    pub fn new(vendor: Vendor) -> Self {
        Self { vendor }
    }

    /// The vendor.
    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    fn vendor_regs(&self) -> [u32; 3] {
        let s: &[u8; 12] = match self.vendor {
            Vendor::Intel => b"GenuineIntel",
            Vendor::Amd => b"AuthenticAMD",
        };
        let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
        // EBX, EDX, ECX order.
        [w(0), w(4), w(8)]
    }

    /// EAX, EBX, ECX, EDX for `leaf`/`subleaf`. Leaves beyond the maximum return the
    /// highest basic leaf's values on Intel and zeros on AMD, as those vendors do.
    pub fn query(&self, leaf: u32, _subleaf: u32) -> [u32; 4] {
        const MAX_BASIC: u32 = 1;
        const MAX_EXT: u32 = 0x8000_0001;
        let [b, d, c] = self.vendor_regs();
        match leaf {
            0 => [MAX_BASIC, b, c, d],
            1 => {
                // Family 6 model 0x3A stepping 9 (Intel) or family 0x17 (AMD).
                let sig = match self.vendor {
                    Vendor::Intel => 0x0003_06A9,
                    Vendor::Amd => 0x0080_0F12,
                };
                [
                    sig,
                    0,
                    CPUID1_ECX_CX16 | CPUID1_ECX_MOVBE | CPUID1_ECX_POPCNT,
                    CPUID1_EDX_CX8 | CPUID1_EDX_CMOV,
                ]
            }
            0x8000_0000 => [MAX_EXT, b, c, d],
            0x8000_0001 => [0, 0, EXT1_ECX_LAHF_LM | EXT1_ECX_LZCNT, EXT1_EDX_LM],
            _ if leaf > MAX_BASIC && leaf < 0x8000_0000 && self.vendor == Vendor::Intel => {
                self.query(MAX_BASIC, 0)
            }
            _ => [0; 4],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_strings() {
        let r = Cpuid::new(Vendor::Amd).query(0, 0);
        let mut s = Vec::new();
        for w in [r[1], r[3], r[2]] {
            s.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(&s, b"AuthenticAMD");
        assert_eq!(
            Cpuid::new(Vendor::Intel).query(0x8000_0001, 0)[3] & EXT1_EDX_LM,
            EXT1_EDX_LM
        );
    }
}
