//! The register file: general-purpose registers, segment registers with their hidden
//! descriptor caches, descriptor-table registers, and control-register bits.

/// General-purpose register numbers, in the encoding order (RAX = 0 ... R15 = 15).
pub mod gpr {
    #![allow(missing_docs)]
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
}

/// Segment register numbers, in the encoding order of the `sreg` ModRM field.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum SegReg {
    /// ES.
    Es = 0,
    /// CS.
    Cs = 1,
    /// SS.
    Ss = 2,
    /// DS.
    Ds = 3,
    /// FS.
    Fs = 4,
    /// GS.
    Gs = 5,
}

impl SegReg {
    /// All six, in encoding order.
    pub const ALL: [SegReg; 6] =
        [SegReg::Es, SegReg::Cs, SegReg::Ss, SegReg::Ds, SegReg::Fs, SegReg::Gs];

    /// The register with encoding `n` (0-5).
    pub fn from_index(n: u8) -> Option<SegReg> {
        Self::ALL.get(usize::from(n)).copied()
    }

    /// Its assembler name.
    pub fn name(self) -> &'static str {
        ["es", "cs", "ss", "ds", "fs", "gs"][self as usize]
    }
}

/// Descriptor attribute bits as kept in the hidden part of a segment register: the
/// descriptor's bits 40-47 (type, S, DPL, P) in bits 0-7 and bits 52-55 (AVL, L, D/B,
/// G) in bits 12-15, the layout VMX and SVM use for segment access rights.
pub mod attr {
    /// Accessed (type bit 0).
    pub const ACCESSED: u16 = 1 << 0;
    /// Data: writable; code: readable (type bit 1).
    pub const RW: u16 = 1 << 1;
    /// Data: expand-down; code: conforming (type bit 2).
    pub const DC: u16 = 1 << 2;
    /// Code segment (type bit 3).
    pub const CODE: u16 = 1 << 3;
    /// Code or data (not a system descriptor).
    pub const S: u16 = 1 << 4;
    /// Shift of the DPL field.
    pub const DPL_SHIFT: u16 = 5;
    /// Present.
    pub const P: u16 = 1 << 7;
    /// Available for software.
    pub const AVL: u16 = 1 << 12;
    /// 64-bit code segment.
    pub const L: u16 = 1 << 13;
    /// Default operation size 32 (code) / big (stack, expand-down limit).
    pub const DB: u16 = 1 << 14;
    /// Granularity 4 KiB.
    pub const G: u16 = 1 << 15;
}

/// A segment register: the visible selector and the hidden descriptor cache.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// The selector.
    pub selector: u16,
    /// Cached base.
    pub base: u64,
    /// Cached limit, in bytes (granularity already applied).
    pub limit: u32,
    /// Cached attributes (see [`attr`]).
    pub attr: u16,
}

impl Segment {
    /// The state real mode and reset give a data segment: base = selector * 16, limit
    /// 64 KiB, present writable data.
    pub fn real_mode(selector: u16) -> Self {
        Self {
            selector,
            base: u64::from(selector) << 4,
            limit: 0xFFFF,
            attr: attr::P | attr::S | attr::RW | attr::ACCESSED,
        }
    }

    /// Flat 4 GiB data segment for protected and long mode.
    pub fn flat_data(selector: u16, big: bool) -> Self {
        Self {
            selector,
            base: 0,
            limit: 0xFFFF_FFFF,
            attr: attr::P
                | attr::S
                | attr::RW
                | attr::ACCESSED
                | attr::G
                | if big { attr::DB } else { 0 },
        }
    }

    /// Flat code segment: `bits` = 16, 32 or 64.
    pub fn flat_code(selector: u16, bits: u8) -> Self {
        let size = match bits {
            64 => attr::L,
            32 => attr::DB,
            _ => 0,
        };
        Self {
            selector,
            base: 0,
            limit: 0xFFFF_FFFF,
            attr: attr::P | attr::S | attr::CODE | attr::RW | attr::ACCESSED | attr::G | size,
        }
    }

    /// The descriptor privilege level.
    #[inline]
    pub fn dpl(&self) -> u8 {
        ((self.attr >> attr::DPL_SHIFT) & 3) as u8
    }

    /// Present.
    #[inline]
    pub fn present(&self) -> bool {
        self.attr & attr::P != 0
    }

    /// Whether a data access of this kind is allowed by the segment's type (protected
    /// mode rules, SDM Vol. 3A §5.5 "Privilege Levels"/§3.4.5.1 "Code- and Data-Segment
    /// Descriptor Types").
    #[inline]
    pub fn allows(&self, write: bool) -> bool {
        if self.attr & attr::CODE != 0 {
            !write && self.attr & attr::RW != 0
        } else {
            !write || self.attr & attr::RW != 0
        }
    }

    /// Expand-down data segment.
    #[inline]
    pub fn expand_down(&self) -> bool {
        self.attr & (attr::CODE | attr::DC) == attr::DC
    }
}

/// GDTR or IDTR.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DescriptorTable {
    /// Linear base.
    pub base: u64,
    /// Limit in bytes.
    pub limit: u16,
}

/// CR0 bits.
pub mod cr0 {
    /// Protection enable.
    pub const PE: u64 = 1 << 0;
    /// Monitor coprocessor.
    pub const MP: u64 = 1 << 1;
    /// x87 emulation.
    pub const EM: u64 = 1 << 2;
    /// Task switched.
    pub const TS: u64 = 1 << 3;
    /// Extension type (always 1).
    pub const ET: u64 = 1 << 4;
    /// Numeric error.
    pub const NE: u64 = 1 << 5;
    /// Write protect.
    pub const WP: u64 = 1 << 16;
    /// Alignment mask.
    pub const AM: u64 = 1 << 18;
    /// Not write-through.
    pub const NW: u64 = 1 << 29;
    /// Cache disable.
    pub const CD: u64 = 1 << 30;
    /// Paging.
    pub const PG: u64 = 1 << 31;
}

/// CR4 bits.
pub mod cr4 {
    /// Virtual-8086 mode extensions.
    pub const VME: u64 = 1 << 0;
    /// Protected-mode virtual interrupts.
    pub const PVI: u64 = 1 << 1;
    /// Time stamp disable.
    pub const TSD: u64 = 1 << 2;
    /// Debugging extensions.
    pub const DE: u64 = 1 << 3;
    /// Page size extensions.
    pub const PSE: u64 = 1 << 4;
    /// Physical address extension.
    pub const PAE: u64 = 1 << 5;
    /// Machine check enable.
    pub const MCE: u64 = 1 << 6;
    /// Page global enable.
    pub const PGE: u64 = 1 << 7;
    /// Performance-monitoring counter enable (RDPMC at CPL > 0).
    pub const PCE: u64 = 1 << 8;
    /// OS supports FXSAVE/FXRSTOR.
    pub const OSFXSR: u64 = 1 << 9;
    /// OS supports unmasked SIMD floating-point exceptions.
    pub const OSXMMEXCPT: u64 = 1 << 10;
    /// User-mode instruction prevention.
    pub const UMIP: u64 = 1 << 11;
    /// 57-bit linear addresses.
    pub const LA57: u64 = 1 << 12;
    /// VMX enable.
    pub const VMXE: u64 = 1 << 13;
    /// SMX enable.
    pub const SMXE: u64 = 1 << 14;
    /// RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE enable.
    pub const FSGSBASE: u64 = 1 << 16;
    /// PCID enable.
    pub const PCIDE: u64 = 1 << 17;
    /// XSAVE enable.
    pub const OSXSAVE: u64 = 1 << 18;
    /// Supervisor-mode execution prevention.
    pub const SMEP: u64 = 1 << 20;
    /// Supervisor-mode access prevention.
    pub const SMAP: u64 = 1 << 21;
    /// Protection keys for user-mode pages.
    pub const PKE: u64 = 1 << 22;
}

/// IA32_EFER bits.
pub mod efer {
    /// SYSCALL enable.
    pub const SCE: u64 = 1 << 0;
    /// Long mode enable.
    pub const LME: u64 = 1 << 8;
    /// Long mode active.
    pub const LMA: u64 = 1 << 10;
    /// No-execute enable.
    pub const NXE: u64 = 1 << 11;
    /// Secure virtual machine enable (AMD).
    pub const SVME: u64 = hvsim_svm_model::msr::EFER_SVME;
}
