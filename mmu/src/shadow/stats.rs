//! Shadow MMU counters, named after KVM's `struct kvm_vm_stat` (and, for `tlb_flush`
//! and `invlpg`, `struct kvm_vcpu_stat`).

use std::fmt;

/// Counters of one shadow cache since it was created.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Shadow pages zapped (flooding, recycling, obsolete reclamation, explicit).
    pub mmu_shadow_zapped: u64,
    /// Guest writes to write-protected tables that were emulated.
    pub mmu_pte_write: u64,
    /// Shadow entries updated in place by those writes.
    pub mmu_pte_updated: u64,
    /// Shadow pages zapped because their table was written repeatedly without use.
    pub mmu_flooded: u64,
    /// Shadow pages recycled at the page bound.
    pub mmu_recycled: u64,
    /// Shadow pages created (lookups by frame and role that missed).
    pub mmu_cache_miss: u64,
    /// Shadow pages that went unsync.
    pub mmu_unsync: u64,
    /// TLB flushes requested by the guest (MOV CR3 without no-flush, INVPCID,
    /// CR4 changes, ASID/VPID flushes).
    pub tlb_flush: u64,
    /// INVLPG (and single-address INVPCID) requests.
    pub invlpg: u64,
    /// Translations asked for.
    pub translations: u64,
    /// Translations answered from shadow entries without a walk.
    pub cache_hits: u64,
    /// Shadow pages now allocated (obsolete ones not yet reclaimed included).
    pub shadow_pages: u64,
    /// Shadow pages now unsync.
    pub unsync_pages: u64,
}

impl Stats {
    /// Fraction of translations answered from the cache, 0.0 if none were asked for.
    pub fn hit_rate(&self) -> f64 {
        if self.translations == 0 {
            0.0
        } else {
            self.cache_hits as f64 / self.translations as f64
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "shadow MMU:")?;
        writeln!(f, "  shadow pages      {:>12}", self.shadow_pages)?;
        writeln!(f, "  unsync pages      {:>12}", self.unsync_pages)?;
        writeln!(
            f,
            "  translations      {:>12}  ({} from cache, {:.1}%)",
            self.translations,
            self.cache_hits,
            100.0 * self.hit_rate()
        )?;
        writeln!(f, "  mmu_cache_miss    {:>12}", self.mmu_cache_miss)?;
        writeln!(f, "  mmu_shadow_zapped {:>12}", self.mmu_shadow_zapped)?;
        writeln!(f, "  mmu_pte_write     {:>12}", self.mmu_pte_write)?;
        writeln!(f, "  mmu_pte_updated   {:>12}", self.mmu_pte_updated)?;
        writeln!(f, "  mmu_flooded       {:>12}", self.mmu_flooded)?;
        writeln!(f, "  mmu_recycled      {:>12}", self.mmu_recycled)?;
        writeln!(f, "  mmu_unsync        {:>12}", self.mmu_unsync)?;
        writeln!(f, "  tlb_flush         {:>12}", self.tlb_flush)?;
        write!(f, "  invlpg            {:>12}", self.invlpg)
    }
}
