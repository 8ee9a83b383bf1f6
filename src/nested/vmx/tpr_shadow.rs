//! The TPR shadow (SDM Vol. 3C 29.3 "Virtualizing CR8-Based TPR Accesses", 29.1.2 "TPR
//! Virtualization"): with "use TPR shadow" (and without CR8-load/store exiting, which
//! the intercepts check first) MOV from CR8 reads VTPR bits 7:4 of the virtual-APIC
//! page and MOV to CR8 writes them; a write that leaves VTPR[7:4] below TPR
//! threshold[3:0] is followed by a trap-like TPR-below-threshold VM exit (reason 43).

use crate::machine::Machine;
use hvsim_mmu::Gpa;
use hvsim_vmx_model::controls::proc;
use hvsim_vmx_model::entry_checks::controls::VTPR_OFFSET;
use hvsim_vmx_model::vmcs_fields as f;

/// The physical address of VTPR, if the vCPU runs a guest with "use TPR shadow".
fn vtpr_address(m: &Machine) -> Option<u64> {
    let s = &m.nested.vmx;
    (s.non_root && s.proc_on(proc::USE_TPR_SHADOW))
        .then(|| s.field(f::VIRTUAL_APIC_PAGE_ADDR).wrapping_add(VTPR_OFFSET))
}

/// VTPR (the byte at offset 80H of the virtual-APIC page).
pub fn vtpr(m: &mut Machine) -> Option<u8> {
    let at = vtpr_address(m)?;
    let mut b = [0u8; 1];
    m.phys_read(Gpa(at), &mut b);
    Some(b[0])
}

/// MOV from CR8 in a guest with the TPR shadow: VTPR bits 7:4 (29.3: "bits 63:4 of
/// the destination are cleared and bits 3:0 are loaded with VTPR[7:4]").
pub(crate) fn read_cr8(m: &mut Machine) -> Option<u64> {
    vtpr(m).map(|v| u64::from(v >> 4))
}

/// MOV to CR8 in a guest with the TPR shadow (after the reserved-bit check): "bits 7:4
/// of VTPR are loaded with bits 3:0 of the source operand; bits 3:0 of VTPR and bytes
/// 3:1 of VTPR are cleared", then TPR virtualization. `false` outside such a guest.
pub(crate) fn write_cr8(m: &mut Machine, v: u64) -> bool {
    let Some(at) = vtpr_address(m) else {
        return false;
    };
    m.phys_write(Gpa(at), &[((v & 0xF) << 4) as u8, 0, 0, 0]);
    m.nested.vmx.tpr_check_pending = true;
    m.cpu.end_block = true;
    true
}

/// TPR virtualization without virtual-interrupt delivery (29.1.2): whether
/// VTPR[7:4] < TPR threshold[3:0].
pub(crate) fn below_threshold(m: &mut Machine) -> bool {
    let threshold = m.nested.vmx.field(f::TPR_THRESHOLD) & 0xF;
    vtpr(m).is_some_and(|v| u64::from(v >> 4) < threshold)
}
