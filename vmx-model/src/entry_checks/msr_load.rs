//! SDM Vol. 3C 27.4 "Loading MSRs": the VM-entry MSR-load area. Each entry is 16 bytes
//! (SDM Vol. 3C "VM-Entry Controls for MSRs"): bits 31:0 MSR index, bits 63:32 reserved,
//! bits 127:64 data. A failing entry ends VM entry with exit reason 34 and the entry's
//! 1-based index as exit qualification.

use super::{read_bytes, EntryEnv, EntryFailure};
use crate::capabilities::VmxCapabilities;
use crate::vmcs::Vmcs;
use crate::vmcs_fields as f;

/// IA32_FS_BASE.
pub const IA32_FS_BASE: u32 = 0xC000_0100;
/// IA32_GS_BASE.
pub const IA32_GS_BASE: u32 = 0xC000_0101;
/// IA32_SMM_MONITOR_CTL: writable only in SMM.
pub const IA32_SMM_MONITOR_CTL: u32 = 0x9B;
/// IA32_BIOS_UPDT_TRIG: hvsim's model-specific MSR that VM entry does not load.
pub const IA32_BIOS_UPDT_TRIG: u32 = 0x79;
/// Bytes per MSR-area entry.
pub const ENTRY_SIZE: u64 = 16;

/// Reads and checks the VM-entry MSR-load area; returns the MSRs to load, in order.
/// A count above the recommended maximum (IA32_VMX_MISC bits 27:25) fails at the first entry
/// beyond it (the SDM leaves this case model-specific).
pub fn load_area(
    vmcs: &Vmcs,
    caps: &VmxCapabilities,
    env: &mut dyn EntryEnv,
) -> Result<Vec<(u32, u64)>, EntryFailure> {
    use super::CheckId::*;
    let count = vmcs.get(f::VM_ENTRY_MSR_LOAD_COUNT);
    let base = vmcs.get(f::VM_ENTRY_MSR_LOAD_ADDR);
    let max = u64::from(caps.max_msr_list());
    let mut msrs = Vec::new();
    for i in 0..count.min(max + 1) {
        // 1-based entry index; count fits in 32 bits (a 32-bit VMCS field).
        let n = (i + 1) as u32;
        if i == max {
            return Err(EntryFailure::msr_load(MsrLoadTooMany, n));
        }
        let e = read_bytes::<16>(env, base.wrapping_add(i * ENTRY_SIZE));
        let lo = u64::from_le_bytes(e[..8].try_into().unwrap_or([0xFF; 8]));
        let data = u64::from_le_bytes(e[8..].try_into().unwrap_or([0xFF; 8]));
        let index = lo as u32;
        let fail = |id| Err(EntryFailure::msr_load(id, n));
        if lo >> 32 != 0 {
            return fail(MsrLoadReserved);
        }
        if index == IA32_FS_BASE || index == IA32_GS_BASE {
            return fail(MsrLoadFsGsBase);
        }
        if index >> 8 == 0x8 {
            return fail(MsrLoadX2apic);
        }
        if index == IA32_SMM_MONITOR_CTL {
            return fail(MsrLoadSmmOnly);
        }
        if index == IA32_BIOS_UPDT_TRIG {
            return fail(MsrLoadModelSpecific);
        }
        if env.wrmsr_faults(index, data) {
            return fail(MsrLoadWrmsrFault);
        }
        msrs.push((index, data));
    }
    Ok(msrs)
}
