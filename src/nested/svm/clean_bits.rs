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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MachineConfig, Vendor};
    use hvsim_svm_model::clean_bits::covering;
    use proptest::prelude::*;

    fn machine() -> Machine {
        let cfg = MachineConfig { vendor: Vendor::Amd, ..MachineConfig::default() };
        Machine::new(&cfg).expect("machine")
    }

    /// Every VMCB field a clean bit covers, with its width.
    fn covered() -> Vec<&'static VmcbField> {
        CLEAN_BITS
            .iter()
            .flat_map(|c| c.fields.iter())
            .filter_map(|&o| VmcbField::lookup(o))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// APM §15.15.3: after `use_cached`, each covered field holds the cached value if
        /// its clean bit is set and the VMCB's otherwise; uncovered fields are the VMCB's;
        /// each field that differed under a set bit is reported once, in table order.
        #[test]
        fn cached_fields_replace_exactly_the_clean_ones(
            clean in any::<u32>(),
            old in proptest::collection::vec(any::<u64>(), 64),
            new in proptest::collection::vec(any::<u64>(), 64),
            change in proptest::collection::vec(any::<bool>(), 64),
        ) {
            let mut m = machine();
            m.set_report_stale_vmcb(true);
            let fields = covered();
            let mut cache = VmcbImage::zeroed();
            let mut img = VmcbImage::zeroed();
            for (k, f) in fields.iter().enumerate() {
                cache.set_field(f, old[k % 64]);
                let v = if change[k % 64] { new[k % 64] } else { old[k % 64] };
                img.set_field(f, v);
            }
            img.set_u64(vmcb::RIP, 0x1234);
            img.write(vmcb::VMCB_CLEAN, 4, u64::from(clean));
            let vmcb_img = img.clone();
            m.nested.svm.vmcb_cache = Some((0x5000, cache.clone()));
            use_cached(&mut m, 0x5000, 0x99, &mut img);
            let mut expect_stale = Vec::new();
            for f in &fields {
                let c = covering(f.offset).expect("covered");
                let want = if c.is_set(clean) { cache.field(f) } else { vmcb_img.field(f) };
                prop_assert_eq!(img.field(f), want, "{}", f.name);
                if c.is_set(clean) && cache.field(f) != vmcb_img.field(f) {
                    expect_stale.push(f.name);
                }
            }
            prop_assert_eq!(img.u64_at(vmcb::RIP), 0x1234);
            let got: Vec<&str> = m.stale_vmcb_fields().iter().map(|s| s.field).collect();
            prop_assert_eq!(got, expect_stale);
            prop_assert!(m.stale_vmcb_fields().iter().all(|s| s.vmrun_rip == 0x99 && s.guest_rip == 0x1234));
            // Another VMCB: nothing is substituted, and the cache is dropped.
            let mut other = vmcb_img.clone();
            m.nested.svm.vmcb_cache = Some((0x5000, cache));
            use_cached(&mut m, 0x6000, 0x99, &mut other);
            prop_assert!(other == vmcb_img);
            prop_assert!(m.nested.svm.vmcb_cache.is_none());
        }
    }
}
