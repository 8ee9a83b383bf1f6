//! A VMCS that passes every VM-entry check: a 64-bit guest with EPT and VPID under a
//! 64-bit host, using the selectors of hvsim's test harness GDT (0x08 code64, 0x10 data,
//! TSS at 0x48). Tests start from it and change one thing; the lead's guest-hypervisor
//! tests can compare their VMCS against it.

use crate::capabilities::{cr, VmxCapabilities};
use crate::controls::{entry, exit, proc, proc2};
use crate::vmcs::Vmcs;
use crate::vmcs_fields as f;

/// Guest and host CR0: PE, ET, NE, PG.
pub const CR0: u64 = cr::CR0_PE | (1 << 4) | cr::CR0_NE | cr::CR0_PG;
/// Guest and host CR4: PAE, VMXE.
pub const CR4: u64 = cr::CR4_PAE | cr::CR4_VMXE;
/// Access rights of a 64-bit code segment: type 11, S, P, L, G.
pub const AR_CODE64: u64 = 0xA09B;
/// Access rights of a flat data segment: type 3, S, P, D/B, G.
pub const AR_DATA: u64 = 0xC093;
/// Access rights of a busy 64-bit TSS: type 11, P.
pub const AR_TSS64: u64 = 0x8B;
/// Access rights of an unusable segment.
pub const AR_UNUSABLE: u64 = 1 << 16;
/// EPTP: WB, 4-level walk, PML4 at 0x1000.
pub const EPTP: u64 = 0x1000 | 6 | (3 << 3);

/// The baseline VMCS for `caps` (which must allow EPT, VPID, IA-32e mode guests and host
/// address-space size, as [`VmxCapabilities::hvsim_default`] does).
pub fn valid_long_mode_vmcs(caps: &VmxCapabilities) -> Vmcs {
    let mut v = Vmcs::new();
    let mut s = |e: u32, val: u64| {
        v.set(e, val);
    };
    // Controls.
    s(f::PIN_BASED_CONTROLS, caps.pin.must_be_one);
    s(
        f::PRIMARY_PROC_BASED_CONTROLS,
        caps.proc.must_be_one | u64::from(proc::ACTIVATE_SECONDARY_CONTROLS),
    );
    s(f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::ENABLE_EPT | proc2::ENABLE_VPID));
    s(
        f::PRIMARY_VM_EXIT_CONTROLS,
        caps.exit.must_be_one | u64::from(exit::HOST_ADDRESS_SPACE_SIZE),
    );
    s(f::VM_ENTRY_CONTROLS, caps.entry.must_be_one | u64::from(entry::IA32E_MODE_GUEST));
    s(f::VIRTUAL_PROCESSOR_ID, 1);
    s(f::EPT_POINTER, EPTP);
    // Host state.
    s(f::HOST_CR0, CR0);
    s(f::HOST_CR3, 0x1000);
    s(f::HOST_CR4, CR4);
    s(f::HOST_CS_SELECTOR, 0x08);
    for sel in [
        f::HOST_SS_SELECTOR,
        f::HOST_DS_SELECTOR,
        f::HOST_ES_SELECTOR,
        f::HOST_FS_SELECTOR,
        f::HOST_GS_SELECTOR,
    ] {
        s(sel, 0x10);
    }
    s(f::HOST_TR_SELECTOR, 0x48);
    s(f::HOST_RIP, 0x40_0000);
    s(f::HOST_RSP, 0x80_0000);
    // Guest state.
    s(f::GUEST_CR0, CR0);
    s(f::GUEST_CR3, 0x2000);
    s(f::GUEST_CR4, CR4);
    s(f::GUEST_DR7, 0x400);
    s(f::GUEST_RFLAGS, 0x2);
    s(f::GUEST_RIP, 0x1000);
    s(f::GUEST_RSP, 0x8000);
    for i in 0..6u32 {
        let (sel, limit, ar) =
            if i == 1 { (0x08, 0xFFFF_FFFF, AR_CODE64) } else { (0x10, 0xFFFF_FFFF, AR_DATA) };
        s(f::GUEST_ES_SELECTOR + 2 * i, sel);
        s(f::GUEST_ES_LIMIT + 2 * i, limit);
        s(f::GUEST_ES_ACCESS_RIGHTS + 2 * i, ar);
    }
    s(f::GUEST_LDTR_ACCESS_RIGHTS, AR_UNUSABLE);
    s(f::GUEST_TR_SELECTOR, 0x48);
    s(f::GUEST_TR_LIMIT, 0x67);
    s(f::GUEST_TR_ACCESS_RIGHTS, AR_TSS64);
    s(f::GUEST_GDTR_LIMIT, 0x4F);
    s(f::GUEST_IDTR_LIMIT, 0xFFF);
    s(f::VMCS_LINK_POINTER, u64::MAX);
    v
}
