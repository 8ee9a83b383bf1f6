//! VMCB clean bits (APM Vol. 2 §15.15 "VMCB State Caching"): a set bit lets the
//! processor use its cached copy of the covered fields instead of the VMCB.
//!
//! hvsim reloads every field on each VMRUN, which the APM permits: a processor may always
//! ignore a clean bit. What hardware with a cache would do differently is use stale values
//! when a guest hypervisor changes a field but forgets to clear its clean bit; hvsim
//! reports those cases instead of reproducing them: VMRUN compares the covered fields
//! with the VMCB as the last #VMEXIT of the same VMCB left it and records each difference
//! in [`SvmState::clean_bit_violations`](super::SvmState::clean_bit_violations).

use crate::machine::Machine;
use hvsim_svm_model::clean_bits::CLEAN_BITS;
use hvsim_svm_model::vmcb::{self, VmcbField};
use hvsim_svm_model::{VmcbImage, VmcbRead};

/// A field changed between #VMEXIT and the next VMRUN while its clean bit was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanBitViolation {
    /// The clean bit (`"CRx"`, `"I"`, ...).
    pub clean_bit: &'static str,
    /// The VMCB field.
    pub field: &'static str,
    /// Its value at the last #VMEXIT (what a caching processor would use).
    pub cached: u64,
    /// Its value in the VMCB at VMRUN (what hvsim uses).
    pub current: u64,
    /// The VMCB's physical address.
    pub vmcb: u64,
}

/// Records the fields of the VMCB at `pa` that changed under a set clean bit since the
/// last #VMEXIT of that VMCB. Nothing to compare on the first VMRUN of a VMCB.
pub fn audit(m: &mut Machine, pa: u64, img: &VmcbImage) {
    let clean = img.read(vmcb::VMCB_CLEAN, 4) as u32;
    if clean == 0 {
        return;
    }
    let Some((last_pa, last)) = m.nested.svm.last_exit_vmcb.as_ref() else {
        return;
    };
    if *last_pa != pa {
        return;
    }
    let mut found = Vec::new();
    for c in CLEAN_BITS.iter().filter(|c| c.is_set(clean)) {
        for &off in c.fields {
            let Some(f) = VmcbField::lookup(off) else { continue };
            let (old, new) = (last.field(f), img.field(f));
            if old != new {
                tracing::warn!(target: "svm", clean_bit = c.name, field = f.name, cached = old, current = new, "VMCB field changed under a set clean bit");
                found.push(CleanBitViolation {
                    clean_bit: c.name,
                    field: f.name,
                    cached: old,
                    current: new,
                    vmcb: pa,
                });
            }
        }
    }
    m.nested.svm.clean_bit_violations.extend(found);
}
