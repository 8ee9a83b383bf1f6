//! Processor topology as CPUID reports it: the initial APIC ID in leaf 1, the extended
//! topology leaves 0Bh and 1Fh (SDM Vol. 2A "CPUID", leaf 0BH/1FH; SDM Vol. 3A §10.9
//! "Topology Identification"), and AMD's core count in leaf 80000008h:ECX.

/// The topology of one logical processor's package.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Topology {
    /// This logical processor's (x2)APIC ID.
    pub apic_id: u32,
    /// Logical processors per core (at least 1).
    pub threads_per_core: u32,
    /// Cores per package (at least 1).
    pub cores_per_package: u32,
}

impl Default for Topology {
    fn default() -> Self {
        Self { apic_id: 0, threads_per_core: 1, cores_per_package: 1 }
    }
}

/// Level type "SMT" in ECX[15:8].
const LEVEL_SMT: u32 = 1;
/// Level type "Core" in ECX[15:8].
const LEVEL_CORE: u32 = 2;

/// The number of bits needed to number `n` items (0 for n <= 1).
fn id_bits(n: u32) -> u32 {
    n.max(1).next_power_of_two().trailing_zeros()
}

impl Topology {
    /// Logical processors per package.
    pub fn logical_per_package(&self) -> u32 {
        self.threads_per_core.max(1).saturating_mul(self.cores_per_package.max(1))
    }

    /// Bits of the APIC ID below the package ID.
    pub fn package_shift(&self) -> u32 {
        id_bits(self.threads_per_core) + id_bits(self.cores_per_package)
    }

    /// Leaf 0Bh or 1Fh, subleaf `level`: EAX = APIC-ID shift to the next level's ID,
    /// EBX = logical processors at this level, ECX = level number | type << 8, EDX =
    /// x2APIC ID. Levels past "Core" are invalid (EAX = EBX = 0, type 0).
    pub fn extended_leaf(&self, level: u32) -> [u32; 4] {
        let smt = id_bits(self.threads_per_core);
        match level {
            0 => [smt, self.threads_per_core.max(1), LEVEL_SMT << 8, self.apic_id],
            1 => [
                self.package_shift(),
                self.logical_per_package(),
                1 | LEVEL_CORE << 8,
                self.apic_id,
            ],
            n => [0, 0, n & 0xFF, self.apic_id],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_cover_the_counts() {
        assert_eq!(id_bits(1), 0);
        assert_eq!(id_bits(2), 1);
        assert_eq!(id_bits(3), 2);
        let t = Topology { apic_id: 5, threads_per_core: 2, cores_per_package: 3 };
        assert_eq!(t.extended_leaf(0), [1, 2, 0x100, 5]);
        assert_eq!(t.extended_leaf(1), [3, 6, 0x201, 5]);
        assert_eq!(t.extended_leaf(2), [0, 0, 2, 5]);
    }
}
