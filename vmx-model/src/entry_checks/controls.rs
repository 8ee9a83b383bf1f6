//! SDM Vol. 3C 27.2.1 "Checks on VMX Controls": 27.2.1.1 "VM-Execution Control
//! Fields", 27.2.1.2 "VM-Exit Control Fields" and 27.2.1.3 "VM-Entry Control Fields"
//! (the event-injection checks of 27.2.1.3 are in [`super::event_injection`]). Every
//! failure is VMfailValid(7).

use super::{read_bytes, require, Controls, EntryContext, EntryEnv, EntryFailure};
use crate::capabilities::{ept_vpid_cap as cap, VmxCapabilities, MEMORY_TYPE_UC, MEMORY_TYPE_WB};
use crate::controls::{pin, proc, proc2, vmfunc, ControlField};
use crate::vmcs::Vmcs;
use crate::vmcs_fields as f;

/// Offset of VTPR (the virtual task-priority register) in the virtual-APIC page.
pub const VTPR_OFFSET: u64 = 0x80;

/// EPTP bits 2:0: memory type of the EPT paging structures.
pub const EPTP_MEMORY_TYPE: u64 = 0x7;
/// EPTP bits 5:3: page-walk length minus 1.
pub const EPTP_WALK_LENGTH: u64 = 0x38;
/// EPTP bit 6: enable accessed and dirty flags.
pub const EPTP_ACCESS_DIRTY: u64 = 1 << 6;
/// EPTP bits 11:7: reserved in hvsim (bit 7, supervisor shadow-stack enforcement, is not
/// supported).
pub const EPTP_RESERVED_LOW: u64 = 0xF80;

/// Whether `addr` is aligned to `align` bytes (a power of two) and within MAXPHYADDR.
fn aligned_phys(ctx: &EntryContext, addr: u64, align: u64) -> bool {
    addr & (align - 1) == 0 && ctx.phys_ok(addr)
}

/// An MSR area of `count` 16-byte entries at `addr`: 16-byte aligned and its last byte
/// within MAXPHYADDR (27.2.1.2).
fn msr_area_ok(ctx: &EntryContext, addr: u64, count: u64) -> bool {
    if count == 0 {
        return true;
    }
    let last = addr.checked_add(count * 16 - 1);
    addr & 0xF == 0 && last.is_some_and(|l| ctx.phys_ok(l))
}

/// Whether an EPTP value is valid for these capabilities (27.2.1.1; also used by VMFUNC
/// EPTP switching and INVEPT).
pub fn eptp_check(
    eptp: u64,
    caps: &VmxCapabilities,
    ctx: &EntryContext,
) -> Result<(), super::CheckId> {
    use super::CheckId::*;
    let ok_type = match eptp & EPTP_MEMORY_TYPE {
        MEMORY_TYPE_UC => caps.ept_vpid_cap & cap::MEMORY_TYPE_UC != 0,
        MEMORY_TYPE_WB => caps.ept_vpid_cap & cap::MEMORY_TYPE_WB != 0,
        _ => false,
    };
    if !ok_type {
        return Err(EptpMemoryType);
    }
    let ok_walk = match (eptp & EPTP_WALK_LENGTH) >> 3 {
        3 => caps.ept_vpid_cap & cap::PAGE_WALK_4 != 0,
        4 => caps.ept_vpid_cap & cap::PAGE_WALK_5 != 0,
        _ => false,
    };
    if !ok_walk {
        return Err(EptpWalkLength);
    }
    if eptp & EPTP_ACCESS_DIRTY != 0 && caps.ept_vpid_cap & cap::ACCESS_DIRTY == 0 {
        return Err(EptpAccessDirty);
    }
    if eptp & EPTP_RESERVED_LOW != 0 || !ctx.phys_ok(eptp) {
        return Err(EptpReserved);
    }
    Ok(())
}

/// The checks of 27.2.1 in SDM order.
pub fn check(
    vmcs: &Vmcs,
    caps: &VmxCapabilities,
    ctx: &EntryContext,
    env: &mut dyn EntryEnv,
) -> Result<(), EntryFailure> {
    let c = Controls::of(vmcs);
    let allowed = |field: ControlField, v: u32| caps.control_allowed(field, u64::from(v)).is_ok();

    // ---- 27.2.1.1 VM-execution control fields.
    require!(allowed(ControlField::PinBased, c.pin), PinControlsReserved, f::PIN_BASED_CONTROLS);
    require!(
        allowed(ControlField::PrimaryProcessor, c.proc),
        ProcControlsReserved,
        f::PRIMARY_PROC_BASED_CONTROLS
    );
    if c.proc(proc::ACTIVATE_SECONDARY_CONTROLS) {
        require!(
            allowed(ControlField::SecondaryProcessor, c.proc2),
            Proc2ControlsReserved,
            f::SECONDARY_PROC_BASED_CONTROLS
        );
    }
    require!(
        vmcs.get(f::CR3_TARGET_COUNT) <= u64::from(caps.cr3_target_count),
        Cr3TargetCount,
        f::CR3_TARGET_COUNT
    );
    if c.proc(proc::USE_IO_BITMAPS) {
        require!(
            aligned_phys(ctx, vmcs.get(f::IO_BITMAP_A), 4096),
            IoBitmapAAddress,
            f::IO_BITMAP_A
        );
        require!(
            aligned_phys(ctx, vmcs.get(f::IO_BITMAP_B), 4096),
            IoBitmapBAddress,
            f::IO_BITMAP_B
        );
    }
    if c.proc(proc::USE_MSR_BITMAPS) {
        require!(aligned_phys(ctx, vmcs.get(f::MSR_BITMAP), 4096), MsrBitmapAddress, f::MSR_BITMAP);
    }
    if c.proc(proc::USE_TPR_SHADOW) {
        let vapic = vmcs.get(f::VIRTUAL_APIC_PAGE_ADDR);
        require!(aligned_phys(ctx, vapic, 4096), VirtualApicAddress, f::VIRTUAL_APIC_PAGE_ADDR);
        let threshold = vmcs.get(f::TPR_THRESHOLD);
        if !c.proc2(proc2::VIRTUAL_INTERRUPT_DELIVERY) {
            require!(threshold >> 4 == 0, TprThresholdReserved, f::TPR_THRESHOLD);
            if !c.proc2(proc2::VIRTUALIZE_APIC_ACCESSES) {
                let [vtpr] = read_bytes::<1>(env, vapic + VTPR_OFFSET);
                require!(
                    threshold & 0xF <= u64::from(vtpr >> 4),
                    TprThresholdAboveVtpr,
                    f::TPR_THRESHOLD
                );
            }
        }
    }
    if !c.pin(pin::NMI_EXITING) {
        require!(!c.pin(pin::VIRTUAL_NMIS), VirtualNmisWithoutNmiExiting, f::PIN_BASED_CONTROLS);
    }
    if !c.pin(pin::VIRTUAL_NMIS) {
        require!(
            !c.proc(proc::NMI_WINDOW_EXITING),
            NmiWindowWithoutVirtualNmis,
            f::PRIMARY_PROC_BASED_CONTROLS
        );
    }
    if c.proc2(proc2::ENABLE_VPID) {
        require!(vmcs.get(f::VIRTUAL_PROCESSOR_ID) != 0, VpidZero, f::VIRTUAL_PROCESSOR_ID);
    }
    if c.proc2(proc2::ENABLE_EPT) {
        if let Err(id) = eptp_check(vmcs.get(f::EPT_POINTER), caps, ctx) {
            return Err(EntryFailure::with_field(id, f::EPT_POINTER));
        }
    }
    if c.proc2(proc2::UNRESTRICTED_GUEST) {
        require!(
            c.proc2(proc2::ENABLE_EPT),
            UnrestrictedGuestWithoutEpt,
            f::SECONDARY_PROC_BASED_CONTROLS
        );
    }
    if c.proc2(proc2::ENABLE_VM_FUNCTIONS) {
        let funcs = vmcs.get(f::VM_FUNCTION_CONTROLS);
        require!(
            caps.control_allowed(ControlField::VmFunction, funcs).is_ok(),
            VmfuncControlsReserved,
            f::VM_FUNCTION_CONTROLS
        );
        if funcs & vmfunc::EPTP_SWITCHING != 0 {
            require!(c.proc2(proc2::ENABLE_EPT), EptpSwitchingWithoutEpt, f::VM_FUNCTION_CONTROLS);
            require!(
                aligned_phys(ctx, vmcs.get(f::EPTP_LIST_ADDRESS), 4096),
                EptpListAddress,
                f::EPTP_LIST_ADDRESS
            );
        }
    }

    // ---- 27.2.1.2 VM-exit control fields.
    require!(
        allowed(ControlField::PrimaryExit, c.exit),
        ExitControlsReserved,
        f::PRIMARY_VM_EXIT_CONTROLS
    );
    if !c.pin(pin::ACTIVATE_PREEMPTION_TIMER) {
        require!(
            !c.exit(crate::controls::exit::SAVE_PREEMPTION_TIMER_VALUE),
            SavePreemptionTimerWithoutTimer,
            f::PRIMARY_VM_EXIT_CONTROLS
        );
    }
    require!(
        msr_area_ok(ctx, vmcs.get(f::VM_EXIT_MSR_STORE_ADDR), vmcs.get(f::VM_EXIT_MSR_STORE_COUNT)),
        ExitMsrStoreArea,
        f::VM_EXIT_MSR_STORE_ADDR
    );
    require!(
        msr_area_ok(ctx, vmcs.get(f::VM_EXIT_MSR_LOAD_ADDR), vmcs.get(f::VM_EXIT_MSR_LOAD_COUNT)),
        ExitMsrLoadArea,
        f::VM_EXIT_MSR_LOAD_ADDR
    );

    // ---- 27.2.1.3 VM-entry control fields.
    require!(allowed(ControlField::Entry, c.entry), EntryControlsReserved, f::VM_ENTRY_CONTROLS);
    super::event_injection::check(vmcs, caps, &c)?;
    require!(
        msr_area_ok(ctx, vmcs.get(f::VM_ENTRY_MSR_LOAD_ADDR), vmcs.get(f::VM_ENTRY_MSR_LOAD_COUNT)),
        EntryMsrLoadArea,
        f::VM_ENTRY_MSR_LOAD_ADDR
    );
    Ok(())
}
