//! The CPUID model (`--cpu intel|amd`): vendor, feature flags, topology and the leaf
//! values a guest reads. A model advertises only what hvsim implements (see
//! [`models`]); instruction code asks [`Cpuid::has`] and [`Cpuid::vendor`] where the
//! architecture depends on the model.
//!
//! Leaves (SDM Vol. 2A "CPUID"; APM Vol. 3 Appendix E): 0, 1, 5, 6, 7.0, 0Bh, 0Dh, 1Fh
//! (Intel), 80000000h-80000008h, and 8000000Ah (AMD).

pub mod features;
pub mod models;
pub mod topology;

pub use features::{Feature, FeatureSet, Reg, FEATURES};
pub use topology::Topology;

use crate::cpu::access::MAXPHYADDR;
use crate::cpu::regs::cr4;
use crate::cpu::Cpu;

/// Which vendor the guest sees.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Vendor {
    /// "GenuineIntel".
    #[default]
    Intel,
    /// "AuthenticAMD".
    Amd,
}

/// Leaf: vendor string and maximum basic leaf.
pub const LEAF_VENDOR: u32 = 0;
/// Leaf: signature, APIC ID, feature flags.
pub const LEAF_FEATURES: u32 = 1;
/// Leaf: MONITOR/MWAIT.
pub const LEAF_MONITOR: u32 = 5;
/// Leaf: thermal and power management.
pub const LEAF_POWER: u32 = 6;
/// Leaf: structured extended feature flags.
pub const LEAF_EXT_FEATURES: u32 = 7;
/// Leaf: extended topology enumeration.
pub const LEAF_TOPOLOGY: u32 = 0xB;
/// Leaf: XSAVE state components.
pub const LEAF_XSAVE: u32 = 0xD;
/// Leaf: V2 extended topology enumeration (Intel).
pub const LEAF_TOPOLOGY_V2: u32 = 0x1F;
/// Leaf: maximum extended leaf (and, on AMD, the vendor string).
pub const LEAF_EXT_MAX: u32 = 0x8000_0000;
/// Leaf: extended signature and feature flags.
pub const LEAF_EXT_FEATURES_1: u32 = 0x8000_0001;
/// First of the three brand-string leaves.
pub const LEAF_BRAND_0: u32 = 0x8000_0002;
/// Leaf: address sizes (and, on AMD, the core count).
pub const LEAF_ADDRESS_SIZES: u32 = 0x8000_0008;
/// Leaf: SVM revision, ASID count, SVM features (AMD).
pub const LEAF_SVM: u32 = hvsim_svm_model::msr::CPUID_SVM_FEATURES;

/// CPUID.1:EBX[15:8]: the CLFLUSH line size in 8-byte units (64 bytes).
const CLFLUSH_LINE_QWORDS: u32 = 8;
/// CPUID.8000000Ah:EAX: the SVM revision.
pub const SVM_REVISION: u32 = 1;
/// CPUID.8000000Ah:EBX: the number of ASIDs.
pub const SVM_ASIDS: u32 = 0x8000;
/// The leaf-1 EDX bits AMD repeats in 80000001h:EDX (FPU..APIC, MTRR..PSE36, MMX,
/// FXSR; APM Vol. 3 Appendix E, CPUID Fn8000_0001_EDX).
pub const AMD_EXT1_EDX_MIRROR: u32 = 0x0183_F3FF;

/// Each CR4 bit that exists, with the feature flag that enumerates it (`None`: every
/// model has it). A bit whose feature the model does not advertise is reserved: MOV to
/// CR4 setting it is #GP(0) (SDM Vol. 3A §2.5 "Control Registers"; Vol. 2B "MOV—Move
/// to/from Control Registers": "If an attempt is made to write a 1 to any reserved bit in
/// CR4"). Bits not listed (CET, PKS, LAM, ...) are reserved on every model.
pub const CR4_FEATURES: &[(u64, Option<Feature>)] = &[
    (cr4::VME, Some(Feature::Vme)),
    (cr4::PVI, Some(Feature::Vme)),
    (cr4::TSD, Some(Feature::Tsc)),
    (cr4::DE, Some(Feature::De)),
    (cr4::PSE, Some(Feature::Pse)),
    (cr4::PAE, Some(Feature::Pae)),
    (cr4::MCE, Some(Feature::Mce)),
    (cr4::PGE, Some(Feature::Pge)),
    (cr4::PCE, None),
    (cr4::OSFXSR, Some(Feature::Fxsr)),
    (cr4::OSXMMEXCPT, Some(Feature::Sse)),
    (cr4::UMIP, Some(Feature::Umip)),
    (cr4::LA57, Some(Feature::La57)),
    (cr4::VMXE, Some(Feature::Vmx)),
    (cr4::SMXE, Some(Feature::Smx)),
    (cr4::FSGSBASE, Some(Feature::Fsgsbase)),
    (cr4::PCIDE, Some(Feature::Pcid)),
    (cr4::OSXSAVE, Some(Feature::Xsave)),
    (cr4::SMEP, Some(Feature::Smep)),
    (cr4::SMAP, Some(Feature::Smap)),
    (cr4::PKE, Some(Feature::Pku)),
];

/// The CPUID table of a CPU model.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Cpuid {
    vendor: Vendor,
    features: FeatureSet,
    /// Where this logical processor sits in its package; SMP sets it per vCPU.
    pub topology: Topology,
}

impl Default for Cpuid {
    fn default() -> Self {
        Self::new(Vendor::default())
    }
}

impl Cpuid {
    /// The model for `vendor`: the features of [`models::features`], one logical
    /// processor per package, APIC ID 0.
    pub fn new(vendor: Vendor) -> Self {
        Self { vendor, features: models::features(vendor), topology: Topology::default() }
    }

    /// The vendor. Instruction code consults it where the vendors differ (SYSCALL in
    /// compatibility mode, SYSENTER in long mode, ...).
    #[inline]
    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    /// Whether the model advertises `f`.
    #[inline]
    pub fn has(&self, f: Feature) -> bool {
        self.features.has(f)
    }

    /// The advertised features.
    pub fn features(&self) -> FeatureSet {
        self.features
    }

    /// Switches a feature on or off (for features whose code has landed but which the
    /// default model does not advertise yet, see [`models::pending`]; and for tests).
    pub fn set_feature(&mut self, f: Feature, on: bool) {
        self.features.set(f, on);
    }

    /// The model with `f` switched on.
    pub fn with(mut self, f: Feature) -> Self {
        self.set_feature(f, true);
        self
    }

    /// The CR4 bits that exist on this model (see [`CR4_FEATURES`]); MOV to CR4 with any
    /// other bit set is #GP(0).
    pub fn cr4_valid_bits(&self) -> u64 {
        CR4_FEATURES
            .iter()
            .filter(|(_, f)| f.is_none_or(|f| self.has(f)))
            .fold(0, |acc, (bit, _)| acc | bit)
    }

    /// The highest basic leaf.
    pub fn max_basic_leaf(&self) -> u32 {
        models::max_basic_leaf(self.vendor)
    }

    /// The highest extended leaf.
    pub fn max_extended_leaf(&self) -> u32 {
        models::max_extended_leaf(self.vendor)
    }

    /// The linear-address width: 57 with LA57, else 48.
    pub fn linear_address_bits(&self) -> u8 {
        if self.has(Feature::La57) {
            57
        } else {
            48
        }
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

    /// The feature bits of one register.
    fn bits(&self, leaf: u32, subleaf: u32, reg: Reg) -> u32 {
        self.features.bits(leaf, subleaf, reg)
    }

    /// EAX, EBX, ECX, EDX for `leaf`/`subleaf` as the CPUID instruction returns them on
    /// `cpu` (the OSXSAVE and OSPKE bits mirror CR4).
    pub fn query_cpu(&self, cpu: &Cpu, leaf: u32, subleaf: u32) -> [u32; 4] {
        let mut r = self.query(leaf, subleaf);
        let is = |l: u32, s: u32| leaf == l && subleaf == s;
        if is(LEAF_FEATURES, 0) && self.has(Feature::Xsave) && cpu.cr4 & cr4::OSXSAVE != 0 {
            r[2] |= 1 << Feature::Osxsave.at().bit;
        }
        if is(LEAF_EXT_FEATURES, 0) && self.has(Feature::Pku) && cpu.cr4 & cr4::PKE != 0 {
            r[2] |= 1 << Feature::Ospke.at().bit;
        }
        // Each logical processor reports its own APIC ID (SDM Vol. 3A §10.4.5 "Identifying
        // Logical Processors in an MP System"): the topology's is the BSP's, vCPU i's is
        // that plus i, as the local APICs are numbered.
        let id = self.topology.apic_id.wrapping_add(cpu.apic_id);
        if leaf == LEAF_FEATURES {
            r[1] = (r[1] & 0x00FF_FFFF) | (id & 0xFF) << 24;
        }
        if (leaf == LEAF_TOPOLOGY || leaf == LEAF_TOPOLOGY_V2) && self.query(leaf, 0)[1] != 0 {
            r[3] = id;
        }
        r
    }

    /// EAX, EBX, ECX, EDX for `leaf`/`subleaf`, with CR4-dependent bits clear. A leaf
    /// outside both ranges returns the highest basic leaf on Intel ("If a value entered
    /// for CPUID.EAX is higher than the maximum input value ... the data for the highest
    /// basic information leaf is returned", SDM Vol. 2A "CPUID") and zeros on AMD.
    pub fn query(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let in_basic = leaf <= self.max_basic_leaf();
        let in_ext = (LEAF_EXT_MAX..=self.max_extended_leaf()).contains(&leaf);
        if !in_basic && !in_ext {
            return match self.vendor {
                Vendor::Intel => self.query(self.max_basic_leaf(), subleaf),
                Vendor::Amd => [0; 4],
            };
        }
        let [b, d, c] = self.vendor_regs();
        let v = self.vendor;
        let topo = &self.topology;
        let feature_regs = |l: u32, s: u32| {
            [
                self.bits(l, s, Reg::Eax),
                self.bits(l, s, Reg::Ebx),
                self.bits(l, s, Reg::Ecx),
                self.bits(l, s, Reg::Edx),
            ]
        };
        match leaf {
            LEAF_VENDOR => [self.max_basic_leaf(), b, c, d],
            LEAF_FEATURES => {
                let clflush = if self.has(Feature::Clfsh) { CLFLUSH_LINE_QWORDS } else { 0 };
                let logical = topo.logical_per_package().min(0xFF);
                let ebx = clflush << 8 | logical << 16 | (topo.apic_id & 0xFF) << 24;
                let f = feature_regs(LEAF_FEATURES, 0);
                [models::signature(v), ebx, f[2], f[3]]
            }
            // Leaf 5 (SDM Vol. 2A "CPUID", Table 3-8; APM Vol. 3 CPUID Fn0000_0005): the
            // smallest and largest monitor-line sizes, MWAIT extensions enumerated and
            // interrupts as break events with IF = 0; EDX = 0: no C-state sub-states are
            // enumerated (the EAX hints change nothing in hvsim's wait).
            LEAF_MONITOR if self.has(Feature::Monitor) => {
                let line = crate::cpu::exec::MONITOR_LINE_SIZE as u32;
                let ecx =
                    crate::cpu::exec::CPUID5_ECX_EMX | crate::cpu::exec::CPUID5_ECX_INTERRUPT_BREAK;
                [line, line, ecx, 0]
            }
            // Leaf 6: no thermal or power-management features.
            LEAF_POWER => [0; 4],
            // Leaf 7: subleaf 0 only (EAX = the highest subleaf, 0).
            LEAF_EXT_FEATURES if subleaf == 0 => {
                let f = feature_regs(LEAF_EXT_FEATURES, 0);
                [0, f[1], f[2], f[3]]
            }
            LEAF_TOPOLOGY | LEAF_TOPOLOGY_V2 => topo.extended_leaf(subleaf),
            // Leaf 0Dh: no XSAVE state components, as XSAVE is not advertised. (XCR0
            // holds only the x87 bit and no XSAVE instruction is emulated.)
            LEAF_XSAVE => [0; 4],
            LEAF_EXT_MAX => match v {
                Vendor::Intel => [self.max_extended_leaf(), 0, 0, 0],
                Vendor::Amd => [self.max_extended_leaf(), b, c, d],
            },
            LEAF_EXT_FEATURES_1 => {
                let f = feature_regs(LEAF_EXT_FEATURES_1, 0);
                match v {
                    Vendor::Intel => [0, 0, f[2], f[3]],
                    Vendor::Amd => {
                        let mirror = self.bits(LEAF_FEATURES, 0, Reg::Edx) & AMD_EXT1_EDX_MIRROR;
                        [models::signature(v), 0, f[2], f[3] | mirror]
                    }
                }
            }
            0x8000_0002..=0x8000_0004 => {
                let brand = models::brand(v);
                let at = (leaf - LEAF_BRAND_0) as usize * 16;
                let w = |k: usize| {
                    let i = at + 4 * k;
                    u32::from_le_bytes([brand[i], brand[i + 1], brand[i + 2], brand[i + 3]])
                };
                [w(0), w(1), w(2), w(3)]
            }
            LEAF_ADDRESS_SIZES => {
                let eax = u32::from(MAXPHYADDR) | u32::from(self.linear_address_bits()) << 8;
                let ecx = match v {
                    Vendor::Intel => 0,
                    // NC (cores - 1) in [7:0], ApicIdCoreIdSize in [15:12].
                    Vendor::Amd => {
                        (topo.logical_per_package() - 1).min(0xFF)
                            | (topo.package_shift() & 0xF) << 12
                    }
                };
                [eax, 0, ecx, 0]
            }
            // Leaf 8000000Ah: the SVM revision, the ASID count and the optional SVM
            // features `src/nested/svm` implements.
            LEAF_SVM if self.has(Feature::Svm) => {
                [SVM_REVISION, SVM_ASIDS, 0, crate::nested::svm::FEATURES_EDX]
            }
            _ => [0; 4],
        }
    }
}
