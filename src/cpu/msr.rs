//! Model-specific register numbers hvsim implements (SDM Vol. 4 "Model-Specific
//! Registers"): the one table the RDMSR/WRMSR code and the tests share.

/// Time-stamp counter.
pub const IA32_TSC: u32 = 0x10;
/// Local APIC base.
pub const IA32_APIC_BASE: u32 = 0x1B;
/// SYSENTER target CS.
pub const IA32_SYSENTER_CS: u32 = 0x174;
/// SYSENTER target RSP.
pub const IA32_SYSENTER_ESP: u32 = 0x175;
/// SYSENTER target RIP.
pub const IA32_SYSENTER_EIP: u32 = 0x176;
/// Page attribute table.
pub const IA32_PAT: u32 = 0x277;
/// Extended feature enables.
/// (The number lives in the SVM model's MSR table, with the SVME bit it documents.)
pub const IA32_EFER: u32 = hvsim_svm_model::msr::EFER;
/// SYSCALL/SYSRET segment selectors.
pub const IA32_STAR: u32 = 0xC000_0081;
/// SYSCALL target RIP (64-bit callers).
pub const IA32_LSTAR: u32 = 0xC000_0082;
/// SYSCALL target RIP (compatibility-mode callers).
pub const IA32_CSTAR: u32 = 0xC000_0083;
/// SYSCALL RFLAGS mask.
pub const IA32_FMASK: u32 = 0xC000_0084;
/// FS base.
pub const IA32_FS_BASE: u32 = 0xC000_0100;
/// GS base.
pub const IA32_GS_BASE: u32 = 0xC000_0101;
/// The GS base SWAPGS exchanges with.
pub const IA32_KERNEL_GS_BASE: u32 = 0xC000_0102;
/// The auxiliary value RDTSCP returns in ECX.
pub const IA32_TSC_AUX: u32 = 0xC000_0103;

/// IA32_APIC_BASE of the bootstrap processor after reset: base 0xFEE00000, enabled, BSP.
pub const APIC_BASE_RESET: u64 = 0xFEE0_0900;
/// IA32_PAT after reset.
pub const PAT_RESET: u64 = 0x0007_0406_0007_0406;

/// Every implemented MSR with its name.
pub const KNOWN: &[(u32, &str)] = &[
    (IA32_TSC, "IA32_TSC"),
    (IA32_APIC_BASE, "IA32_APIC_BASE"),
    (IA32_SYSENTER_CS, "IA32_SYSENTER_CS"),
    (IA32_SYSENTER_ESP, "IA32_SYSENTER_ESP"),
    (IA32_SYSENTER_EIP, "IA32_SYSENTER_EIP"),
    (IA32_PAT, "IA32_PAT"),
    (IA32_EFER, "IA32_EFER"),
    (IA32_STAR, "IA32_STAR"),
    (IA32_LSTAR, "IA32_LSTAR"),
    (IA32_CSTAR, "IA32_CSTAR"),
    (IA32_FMASK, "IA32_FMASK"),
    (IA32_FS_BASE, "IA32_FS_BASE"),
    (IA32_GS_BASE, "IA32_GS_BASE"),
    (IA32_KERNEL_GS_BASE, "IA32_KERNEL_GS_BASE"),
    (IA32_TSC_AUX, "IA32_TSC_AUX"),
];

/// The name of an implemented MSR.
pub fn name(msr: u32) -> Option<&'static str> {
    KNOWN.iter().find(|k| k.0 == msr).map(|k| k.1)
}
