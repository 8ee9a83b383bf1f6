//! SDM Vol. 3C 27.2.2 "Checks on Host Control Registers, MSRs, and SSP", 27.2.3 "Checks
//! on Host Segment and Descriptor-Table Registers" and 27.2.4 "Checks Related to
//! Address-Space Size". Every failure is VMfailValid(8).

use super::{
    pat_valid, require, Controls, EntryContext, EntryFailure, EFER_DEFINED, EFER_LMA, EFER_LME,
};
use crate::capabilities::{cr, VmxCapabilities};
use crate::controls::exit;
use crate::vmcs::Vmcs;
use crate::vmcs_fields as f;

/// Whether `value` has every bit of `fixed0` and no bit outside `fixed1` (SDM Vol. 3D
/// Appendix A.7/A.8).
pub fn fixed_ok(value: u64, fixed0: u64, fixed1: u64) -> bool {
    value & fixed0 == fixed0 && value & !fixed1 == 0
}

/// The host selector fields 27.2.3 checks for RPL and TI, in VMCS order.
const HOST_SELECTORS: [u32; 7] = [
    f::HOST_ES_SELECTOR,
    f::HOST_CS_SELECTOR,
    f::HOST_SS_SELECTOR,
    f::HOST_DS_SELECTOR,
    f::HOST_FS_SELECTOR,
    f::HOST_GS_SELECTOR,
    f::HOST_TR_SELECTOR,
];

/// The host base fields that must be canonical.
const HOST_BASES: [u32; 5] =
    [f::HOST_FS_BASE, f::HOST_GS_BASE, f::HOST_GDTR_BASE, f::HOST_IDTR_BASE, f::HOST_TR_BASE];

/// The checks of 27.2.2-27.2.4 in SDM order.
pub fn check(vmcs: &Vmcs, caps: &VmxCapabilities, ctx: &EntryContext) -> Result<(), EntryFailure> {
    let c = Controls::of(vmcs);
    let host_64 = c.host_64();
    let cr4 = vmcs.get(f::HOST_CR4);

    // ---- 27.2.2
    require!(
        fixed_ok(vmcs.get(f::HOST_CR0), caps.cr0_fixed0, caps.cr0_fixed1),
        HostCr0Fixed,
        f::HOST_CR0
    );
    require!(fixed_ok(cr4, caps.cr4_fixed0, caps.cr4_fixed1), HostCr4Fixed, f::HOST_CR4);
    require!(ctx.phys_ok(vmcs.get(f::HOST_CR3)), HostCr3Width, f::HOST_CR3);
    require!(
        ctx.canonical(vmcs.get(f::HOST_IA32_SYSENTER_ESP)),
        HostSysenterEspCanonical,
        f::HOST_IA32_SYSENTER_ESP
    );
    require!(
        ctx.canonical(vmcs.get(f::HOST_IA32_SYSENTER_EIP)),
        HostSysenterEipCanonical,
        f::HOST_IA32_SYSENTER_EIP
    );
    if c.exit(exit::LOAD_IA32_PAT) {
        require!(pat_valid(vmcs.get(f::HOST_IA32_PAT)), HostPat, f::HOST_IA32_PAT);
    }
    if c.exit(exit::LOAD_IA32_EFER) {
        let efer = vmcs.get(f::HOST_IA32_EFER);
        require!(efer & !EFER_DEFINED == 0, HostEferReserved, f::HOST_IA32_EFER);
        require!((efer & EFER_LMA != 0) == host_64, HostEferLma, f::HOST_IA32_EFER);
        require!((efer & EFER_LME != 0) == host_64, HostEferLme, f::HOST_IA32_EFER);
    }

    // ---- 27.2.3
    for sel in HOST_SELECTORS {
        require!(vmcs.get(sel) & 0x7 == 0, HostSelectorRplTi, sel);
    }
    require!(vmcs.get(f::HOST_CS_SELECTOR) != 0, HostCsNull, f::HOST_CS_SELECTOR);
    require!(vmcs.get(f::HOST_TR_SELECTOR) != 0, HostTrNull, f::HOST_TR_SELECTOR);
    if !host_64 {
        require!(vmcs.get(f::HOST_SS_SELECTOR) != 0, HostSsNull, f::HOST_SS_SELECTOR);
    }
    for base in HOST_BASES {
        require!(ctx.canonical(vmcs.get(base)), HostBaseCanonical, base);
    }

    // ---- 27.2.4
    if !ctx.host_ia32e {
        require!(!c.ia32e_guest(), HostLegacyIa32eGuest, f::VM_ENTRY_CONTROLS);
        require!(!host_64, HostLegacyAddressSpaceSize, f::PRIMARY_VM_EXIT_CONTROLS);
    } else {
        require!(host_64, HostIa32eAddressSpaceSize, f::PRIMARY_VM_EXIT_CONTROLS);
    }
    let rip = vmcs.get(f::HOST_RIP);
    if !host_64 {
        // "IA-32e mode guest must be 0" is also listed here; it is implied by the two
        // checks above (host address-space size 0 only outside IA-32e mode, where
        // HostLegacyIa32eGuest already applies), so it has no CheckId of its own.
        require!(cr4 & cr::CR4_PCIDE == 0, Host32Pcide, f::HOST_CR4);
        require!(rip >> 32 == 0, Host32RipHigh, f::HOST_RIP);
    } else {
        require!(cr4 & cr::CR4_PAE != 0, Host64Pae, f::HOST_CR4);
        require!(ctx.canonical(rip), Host64RipCanonical, f::HOST_RIP);
    }
    Ok(())
}
