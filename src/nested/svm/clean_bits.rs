//! VMCB clean bits (APM Vol. 2 §15.15 "VMCB State Caching"), honoured as a caching
//! processor does: a set clean bit lets VMRUN take the covered fields from the copy the
//! processor kept, not from the VMCB.
//!
//! The cache ([`SvmState::vmcb_cache`](super::SvmState::vmcb_cache)) is what the
//! processor held at the last #VMEXIT: the controls as the VMRUN before it used them
//! (after its own clean-bit substitution) and the guest state as that #VMEXIT saved it.
//! It serves only the VMCB it was taken from: a VMRUN of another VMCB (§15.15.2: the
//! cache is keyed by the VMCB's physical address) or a failed VMRUN drops it, so the
//! next VMRUN loads every field from memory. On the first VMRUN of a VMCB there is
//! nothing cached and the clean bits have no effect.
//!
//! A guest hypervisor that changes a field but leaves its clean bit set therefore runs
//! its guest with the old value, as on hardware. With
//! [`Machine::set_report_stale_vmcb`] (CLI `--report-stale-vmcb`) each such field is
//! recorded ([`StaleVmcbField`]): the clean bit, the field, the cached value used and
//! the value the VMCB holds, the VMCB and the RIPs of the VMRUN and of the guest.

use crate::machine::Machine;
use hvsim_svm_model::clean_bits::CLEAN_BITS;
use hvsim_svm_model::vmcb::{self, VmcbField};
use hvsim_svm_model::{VmcbImage, VmcbRead};
use std::fmt;

/// A VMCB field that VMRUN took from the processor's cache because its clean bit was
/// set, although the VMCB held another value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleVmcbField {
    /// The clean bit (`"CRx"`, `"I"`, ...).
    pub clean_bit: &'static str,
    /// The VMCB field.
    pub field: &'static str,
    /// The cached value, which VMRUN used.
    pub cached: u64,
    /// The value in the VMCB, which VMRUN ignored.
    pub vmcb_value: u64,
    /// The VMCB's physical address.
    pub vmcb: u64,
    /// RIP of L1's VMRUN instruction.
    pub vmrun_rip: u64,
    /// The guest RIP that VMRUN loaded.
    pub guest_rip: u64,
}

impl fmt::Display for StaleVmcbField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VMRUN at rip {:#x} (VMCB {:#x}, guest rip {:#x}): {} changed to {:#x} under clean bit {}; the cached {:#x} was used",
            self.vmrun_rip,
            self.vmcb,
            self.guest_rip,
            self.field,
            self.vmcb_value,
            self.clean_bit,
            self.cached
        )
    }
}

/// Distinct stale fields kept; later ones are counted in
/// [`SvmState::stale_vmcb_dropped`](super::SvmState::stale_vmcb_dropped).
pub const MAX_STALE_VMCB_REPORTS: usize = 1024;

impl Machine {
    /// Records every VMCB field VMRUN takes from its cache although the VMCB holds
    /// another value (`--report-stale-vmcb`); see [`Machine::stale_vmcb_fields`].
    pub fn set_report_stale_vmcb(&mut self, on: bool) {
        self.nested.svm.report_stale_vmcb = on;
    }

    /// The stale VMCB fields used so far, in the order VMRUN used them (with
    /// [`Machine::set_report_stale_vmcb`]).
    pub fn stale_vmcb_fields(&self) -> &[StaleVmcbField] {
        &self.nested.svm.stale_vmcb
    }
}

/// VMRUN of the VMCB at `pa`, read into `img`: replaces each field whose clean bit is
/// set with the cached value (`vmrun_rip` is the VMRUN's, for the report), when the cache belongs to this VMCB; otherwise drops the
/// cache (a VMRUN of another VMCB).
pub fn use_cached(m: &mut Machine, pa: u64, vmrun_rip: u64, img: &mut VmcbImage) {
    let Some((cached_pa, cache)) = m.nested.svm.vmcb_cache.take() else {
        return;
    };
    if cached_pa != pa {
        return;
    }
    let clean = img.read(vmcb::VMCB_CLEAN, 4) as u32;
    let report = m.nested.svm.report_stale_vmcb;
    let guest_rip = img.u64_at(vmcb::RIP);
    for c in CLEAN_BITS.iter().filter(|c| c.is_set(clean)) {
        for &off in c.fields {
            let Some(f) = VmcbField::lookup(off) else { continue };
            let (old, new) = (cache.field(f), img.field(f));
            if old == new {
                continue;
            }
            img.set_field(f, old);
            tracing::debug!(target: "svm", clean_bit = c.name, field = f.name, cached = old, vmcb = new, "VMRUN uses a cached VMCB field");
            if !report {
                continue;
            }
            let s = &mut m.nested.svm;
            if s.stale_vmcb.len() >= MAX_STALE_VMCB_REPORTS {
                s.stale_vmcb_dropped += 1;
                continue;
            }
            s.stale_vmcb.push(StaleVmcbField {
                clean_bit: c.name,
                field: f.name,
                cached: old,
                vmcb_value: new,
                vmcb: pa,
                vmrun_rip,
                guest_rip,
            });
        }
    }
    m.nested.svm.vmcb_cache = Some((cached_pa, cache));
}

/// `--report-stale-vmcb`: the stale VMCB fields the run used, one line each, on stderr.
pub fn print_stale_vmcb_fields(m: &Machine) {
    let s = &m.nested.svm;
    if s.stale_vmcb.is_empty() {
        eprintln!("hvsim: VMCB clean bits: no stale VMCB field was used");
        return;
    }
    let n = s.stale_vmcb.len() as u64 + s.stale_vmcb_dropped;
    eprintln!("hvsim: VMCB clean bits: {n} stale VMCB field use(s):");
    for f in &s.stale_vmcb {
        eprintln!("hvsim: {f}");
    }
    if s.stale_vmcb_dropped > 0 {
        eprintln!("hvsim: ... and {} more not listed", s.stale_vmcb_dropped);
    }
}
