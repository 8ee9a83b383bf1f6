//! CPUID feature flags: each declared once with its leaf, register and bit (SDM Vol. 2A
//! "CPUID" Tables 3-8 (leaf 1), 3-8 (leaf 7) and the extended leaves; APM Vol. 3
//! Appendix E "Obtaining Processor Information Via the CPUID Instruction").
//!
//! The table lists the flags hvsim has to reason about: those it implements, those a
//! model may switch on when their code lands, and those it must never advertise (so the
//! code that checks them, for example MSR availability, has a name to use).

/// A CPUID output register.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reg {
    /// EAX.
    Eax = 0,
    /// EBX.
    Ebx = 1,
    /// ECX.
    Ecx = 2,
    /// EDX.
    Edx = 3,
}

/// Where a feature flag lives.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FeatureBit {
    /// The leaf (EAX input).
    pub leaf: u32,
    /// The subleaf (ECX input; 0 where the leaf has none).
    pub subleaf: u32,
    /// The output register.
    pub reg: Reg,
    /// The bit number.
    pub bit: u8,
}

/// Declares each feature once: a [`Feature`] variant and a row of [`FEATURES`].
macro_rules! features {
    ($( $name:ident = ($leaf:literal, $sub:literal, $reg:ident, $bit:literal), $doc:literal; )*) => {
        /// A CPUID feature flag.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Feature {
            $( #[doc = $doc] $name, )*
        }

        /// Every feature flag hvsim names, in declaration order (`FEATURES[f as usize]`
        /// is the row of `f`).
        pub static FEATURES: &[FeatureInfo] = &[
            $(
                FeatureInfo {
                    feature: Feature::$name,
                    name: stringify!($name),
                    at: FeatureBit { leaf: $leaf, subleaf: $sub, reg: Reg::$reg, bit: $bit },
                    doc: $doc,
                },
            )*
        ];
    };
}

/// One row of [`FEATURES`].
#[derive(Copy, Clone, Debug)]
pub struct FeatureInfo {
    /// The flag.
    pub feature: Feature,
    /// Its name.
    pub name: &'static str,
    /// Where CPUID reports it.
    pub at: FeatureBit,
    /// What it means.
    pub doc: &'static str,
}

features! {
    // CPUID.01H:EDX
    Fpu = (0x1, 0, Edx, 0), "x87 FPU on chip.";
    Vme = (0x1, 0, Edx, 1), "Virtual-8086 mode enhancements (CR4.VME, CR4.PVI).";
    De = (0x1, 0, Edx, 2), "Debugging extensions: I/O breakpoints, CR4.DE.";
    Pse = (0x1, 0, Edx, 3), "4-MiB pages in 32-bit paging (CR4.PSE).";
    Tsc = (0x1, 0, Edx, 4), "RDTSC and CR4.TSD.";
    Msr = (0x1, 0, Edx, 5), "RDMSR and WRMSR.";
    Pae = (0x1, 0, Edx, 6), "Physical address extension.";
    Mce = (0x1, 0, Edx, 7), "Machine-check exception (#MC, CR4.MCE).";
    Cx8 = (0x1, 0, Edx, 8), "CMPXCHG8B.";
    Apic = (0x1, 0, Edx, 9), "On-chip local APIC (IA32_APIC_BASE).";
    Sep = (0x1, 0, Edx, 11), "SYSENTER/SYSEXIT and the IA32_SYSENTER_* MSRs.";
    Mtrr = (0x1, 0, Edx, 12), "Memory type range registers (IA32_MTRRCAP and the MTRR MSRs).";
    Pge = (0x1, 0, Edx, 13), "Global pages (CR4.PGE).";
    Mca = (0x1, 0, Edx, 14), "Machine-check architecture (IA32_MCG_CAP ...).";
    Cmov = (0x1, 0, Edx, 15), "CMOVcc (and FCMOVcc with the FPU).";
    Pat = (0x1, 0, Edx, 16), "Page attribute table (IA32_PAT).";
    Pse36 = (0x1, 0, Edx, 17), "Physical address bits 39:32 in 4-MiB PDEs.";
    Clfsh = (0x1, 0, Edx, 19), "CLFLUSH.";
    Mmx = (0x1, 0, Edx, 23), "MMX instructions.";
    Fxsr = (0x1, 0, Edx, 24), "FXSAVE/FXRSTOR and CR4.OSFXSR.";
    Sse = (0x1, 0, Edx, 25), "SSE.";
    Sse2 = (0x1, 0, Edx, 26), "SSE2.";
    Htt = (0x1, 0, Edx, 28), "CPUID.1:EBX[23:16] is valid (several logical processors).";
    // CPUID.01H:ECX
    Sse3 = (0x1, 0, Ecx, 0), "SSE3.";
    Monitor = (0x1, 0, Ecx, 3), "MONITOR/MWAIT.";
    Vmx = (0x1, 0, Ecx, 5), "Virtual machine extensions.";
    Smx = (0x1, 0, Ecx, 6), "Safer mode extensions (GETSEC).";
    Cx16 = (0x1, 0, Ecx, 13), "CMPXCHG16B.";
    Pcid = (0x1, 0, Ecx, 17), "Process-context identifiers (CR4.PCIDE).";
    X2apic = (0x1, 0, Ecx, 21), "x2APIC mode (IA32_APIC_BASE.EXTD, MSRs 800H-8FFH).";
    Movbe = (0x1, 0, Ecx, 22), "MOVBE.";
    Popcnt = (0x1, 0, Ecx, 23), "POPCNT.";
    TscDeadline = (0x1, 0, Ecx, 24), "APIC timer TSC-deadline mode (IA32_TSC_DEADLINE).";
    Xsave = (0x1, 0, Ecx, 26), "XSAVE/XRSTOR, XSETBV/XGETBV, XCR0, CR4.OSXSAVE.";
    Osxsave = (0x1, 0, Ecx, 27), "Mirror of CR4.OSXSAVE.";
    Rdrand = (0x1, 0, Ecx, 30), "RDRAND.";
    Hypervisor = (0x1, 0, Ecx, 31), "Running under a hypervisor.";
    // CPUID.(EAX=07H,ECX=0):EBX
    Fsgsbase = (0x7, 0, Ebx, 0), "RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE, CR4.FSGSBASE.";
    TscAdjust = (0x7, 0, Ebx, 1), "IA32_TSC_ADJUST.";
    Bmi1 = (0x7, 0, Ebx, 3), "ANDN, BEXTR, BLSI, BLSMSK, BLSR, TZCNT.";
    Smep = (0x7, 0, Ebx, 7), "Supervisor-mode execution prevention (CR4.SMEP).";
    Bmi2 = (0x7, 0, Ebx, 8), "BZHI, MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX.";
    Invpcid = (0x7, 0, Ebx, 10), "INVPCID.";
    Rdseed = (0x7, 0, Ebx, 18), "RDSEED.";
    Adx = (0x7, 0, Ebx, 19), "ADCX, ADOX.";
    Smap = (0x7, 0, Ebx, 20), "Supervisor-mode access prevention (CR4.SMAP, STAC, CLAC).";
    Clflushopt = (0x7, 0, Ebx, 23), "CLFLUSHOPT.";
    Clwb = (0x7, 0, Ebx, 24), "CLWB.";
    // CPUID.(EAX=07H,ECX=0):ECX
    Umip = (0x7, 0, Ecx, 2), "User-mode instruction prevention (CR4.UMIP).";
    Pku = (0x7, 0, Ecx, 3), "Protection keys for user pages (CR4.PKE, RDPKRU, WRPKRU).";
    Ospke = (0x7, 0, Ecx, 4), "Mirror of CR4.PKE.";
    La57 = (0x7, 0, Ecx, 16), "5-level paging (CR4.LA57).";
    Rdpid = (0x7, 0, Ecx, 22), "RDPID.";
    // CPUID.(EAX=07H,ECX=0):EDX
    SpecCtrl = (0x7, 0, Edx, 26), "IBRS/IBPB: IA32_SPEC_CTRL and IA32_PRED_CMD.";
    Stibp = (0x7, 0, Edx, 27), "STIBP in IA32_SPEC_CTRL.";
    ArchCapabilities = (0x7, 0, Edx, 29), "IA32_ARCH_CAPABILITIES.";
    // CPUID.80000001H:ECX
    LahfLm = (0x8000_0001, 0, Ecx, 0), "LAHF/SAHF in 64-bit mode.";
    Svm = (0x8000_0001, 0, Ecx, 2), "Secure virtual machine (AMD).";
    Abm = (0x8000_0001, 0, Ecx, 5), "LZCNT (Intel), advanced bit manipulation: LZCNT and POPCNT (AMD).";
    Prefetchw = (0x8000_0001, 0, Ecx, 8), "PREFETCH/PREFETCHW.";
    TopoExt = (0x8000_0001, 0, Ecx, 22), "AMD topology extensions (leaf 8000001Dh/1Eh).";
    // CPUID.80000001H:EDX
    Syscall = (0x8000_0001, 0, Edx, 11), "SYSCALL/SYSRET.";
    Nx = (0x8000_0001, 0, Edx, 20), "Execute-disable (EFER.NXE).";
    Page1Gb = (0x8000_0001, 0, Edx, 26), "1-GiB pages.";
    Rdtscp = (0x8000_0001, 0, Edx, 27), "RDTSCP and IA32_TSC_AUX.";
    Lm = (0x8000_0001, 0, Edx, 29), "Intel 64 / AMD64 long mode.";
}

impl Feature {
    /// Its row in [`FEATURES`].
    pub fn info(self) -> &'static FeatureInfo {
        &FEATURES[self as usize]
    }

    /// Where CPUID reports it.
    pub fn at(self) -> FeatureBit {
        self.info().at
    }
}

/// A set of features (bit n = `Feature` with discriminant n).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeatureSet(u128);

impl FeatureSet {
    /// The empty set.
    pub const EMPTY: FeatureSet = FeatureSet(0);

    /// The set holding `fs`.
    pub const fn of(fs: &[Feature]) -> FeatureSet {
        let mut bits = 0u128;
        let mut i = 0;
        while i < fs.len() {
            bits |= 1 << fs[i] as u8;
            i += 1;
        }
        FeatureSet(bits)
    }

    /// Whether `f` is in the set.
    #[inline]
    pub fn has(self, f: Feature) -> bool {
        self.0 & (1 << f as u8) != 0
    }

    /// Adds or removes `f`.
    pub fn set(&mut self, f: Feature, on: bool) {
        if on {
            self.0 |= 1 << f as u8;
        } else {
            self.0 &= !(1 << f as u8);
        }
    }

    /// The union.
    pub const fn union(self, other: FeatureSet) -> FeatureSet {
        FeatureSet(self.0 | other.0)
    }

    /// The members, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Feature> {
        FEATURES.iter().map(|f| f.feature).filter(move |&f| self.has(f))
    }

    /// The bits these features set in register `reg` of `leaf`/`subleaf`.
    pub fn bits(self, leaf: u32, subleaf: u32, reg: Reg) -> u32 {
        self.iter()
            .map(Feature::at)
            .filter(|b| b.leaf == leaf && b.subleaf == subleaf && b.reg == reg)
            .fold(0, |acc, b| acc | 1 << b.bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_declaration_order_and_unique() {
        assert!(FEATURES.len() <= 128, "FeatureSet holds 128 features");
        for (i, f) in FEATURES.iter().enumerate() {
            assert_eq!(f.feature as usize, i);
            for g in &FEATURES[i + 1..] {
                assert_ne!(f.at, g.at, "{} and {} share a bit", f.name, g.name);
            }
        }
    }

    #[test]
    fn anchors() {
        assert_eq!(Feature::Vmx.at(), FeatureBit { leaf: 1, subleaf: 0, reg: Reg::Ecx, bit: 5 });
        assert_eq!(Feature::Svm.at().bit, 2);
        assert_eq!(Feature::Lm.at().bit, 29);
        let s = FeatureSet::of(&[Feature::Cx8, Feature::Cmov, Feature::Lm]);
        assert_eq!(s.bits(1, 0, Reg::Edx), (1 << 8) | (1 << 15));
        assert_eq!(s.bits(0x8000_0001, 0, Reg::Edx), 1 << 29);
    }
}
