//! Stale-translation reports for `--strict-tlb`: a translation that was served from a
//! cache but no longer matches the guest's tables, which the guest has not flushed.
//!
//! x86 lets a TLB keep using a translation after the guest changes the paging entries
//! behind it, until the guest executes the flush the SDM requires (Vol. 3A §4.10.4.2
//! "Recommended Invalidation": "software should invalidate ... after modifying a
//! paging-structure entry"). A guest that relies on the new entry without that flush has
//! a bug that shows only on some hardware; this report names it.

use super::gpte::{probe, ProbeEnd};
use super::role::{ACC_U, ACC_W, ACC_X};
use super::ShadowMmu;
use crate::addr::{Gpa, Gva};
use crate::memory::GuestMemory;
use crate::paging::{Translation, WalkConfig, PTE_A, PTE_D};
use std::fmt;

/// The flush the guest should have executed between changing its tables and using the
/// address.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MissingFlush {
    /// INVLPG of the address: the entry that maps it changed, or the old translation is
    /// global (MOV CR3 does not flush global translations).
    Invlpg,
    /// MOV CR3 (or INVLPG of each address): a higher-level entry changed.
    MovCr3,
    /// INVPCID: a higher-level entry changed and the last CR3 load kept the PCID's
    /// translations (the no-flush bit was set).
    Invpcid,
}

impl fmt::Display for MissingFlush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MissingFlush::Invlpg => "INVLPG",
            MissingFlush::MovCr3 => "MOV CR3",
            MissingFlush::Invpcid => "INVPCID",
        })
    }
}

/// One use of a translation that no longer matches the guest's tables.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StaleTranslation {
    /// The linear address translated.
    pub gva: Gva,
    /// Where the leaf entry that was used lives.
    pub old_entry_gpa: Gpa,
    /// The leaf entry that was used.
    pub old_entry: u64,
    /// The physical address the stale translation gave.
    pub old_gpa: Gpa,
    /// Where a walk now ends: the new leaf entry, or the first not-present or
    /// reserved-bit entry.
    pub new_entry_gpa: Gpa,
    /// That entry's value.
    pub new_entry: u64,
    /// That entry's level (1 = PTE).
    pub new_level: u8,
    /// The physical address a walk now gives, if it gives one.
    pub new_gpa: Option<Gpa>,
    /// The flush that was missing.
    pub missing: MissingFlush,
}

impl fmt::Display for StaleTranslation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stale translation of linear {:#x}: used entry {:#018x} at {:#x} (-> {:#x}), \
             but the tables now hold {:#018x} at {:#x} (level {}, ",
            self.gva.0,
            self.old_entry,
            self.old_entry_gpa.0,
            self.old_gpa.0,
            self.new_entry,
            self.new_entry_gpa.0,
            self.new_level
        )?;
        match self.new_gpa {
            Some(g) => write!(f, "-> {:#x}", g.0)?,
            None => write!(f, "no translation")?,
        }
        write!(f, "); missing {}", self.missing)?;
        if self.missing == MissingFlush::Invlpg {
            write!(f, " {:#x}", self.gva.0)?;
        }
        Ok(())
    }
}

/// Whether going from `old` to `new` changes what a cached translation means: any
/// change but the accessed flag, or a dirty flag the guest cleared.
fn entry_changed(old: u64, new: u64) -> bool {
    (old ^ new) & !(PTE_A | PTE_D) != 0 || (old & PTE_D != 0 && new & PTE_D == 0)
}

impl ShadowMmu {
    /// Checks a translation `served` for `gva` (from this cache or from a TLB filled
    /// from it) against the guest's tables now, without side effects. `None` if it still
    /// matches.
    pub fn check_stale(
        &self,
        mem: &GuestMemory,
        cfg: &WalkConfig,
        gva: Gva,
        served: &Translation,
    ) -> Option<StaleTranslation> {
        check_translation(mem, cfg, gva, served, self.last_cr3_no_flush)
    }
}

/// Checks a translation `served` for `gva`, held by any translation cache (this shadow
/// cache or a vCPU's TLB), against the guest's tables now, without side effects: `None`
/// if it still matches. `last_cr3_no_flush` says whether the last MOV CR3 kept the
/// PCID's translations (bit 63 set with CR4.PCIDE = 1), which decides whether the
/// missing flush is a MOV CR3 or an INVPCID.
pub fn check_translation(
    mem: &GuestMemory,
    cfg: &WalkConfig,
    gva: Gva,
    served: &Translation,
    last_cr3_no_flush: bool,
) -> Option<StaleTranslation> {
    let p = probe(mem, cfg, gva);
    let last = p.last();
    // `served` may have been made for another address of the same page (a TLB entry
    // serves the whole page): what it gives for `gva` is its page base plus the offset.
    let offset_mask = served.page_size.max(1) - 1;
    let old_gpa = Gpa((served.gpa.0 & !offset_mask) | (gva.0 & offset_mask));
    let new_gpa = match p.end {
        ProbeEnd::Leaf { gpa, page_size, access } => {
            let same = gpa == old_gpa
                && page_size == served.page_size
                && (access & ACC_W != 0) == served.writable
                && (access & ACC_U != 0) == served.user
                && (access & ACC_X != 0) == served.executable
                && last.at == served.leaf_gpa
                && !entry_changed(served.leaf, last.value);
            if same {
                return None;
            }
            Some(gpa)
        }
        ProbeEnd::NotPresent | ProbeEnd::Reserved => None,
    };
    let missing = if last.at == served.leaf_gpa || served.global {
        MissingFlush::Invlpg
    } else if last_cr3_no_flush {
        MissingFlush::Invpcid
    } else {
        MissingFlush::MovCr3
    };
    Some(StaleTranslation {
        gva,
        old_entry_gpa: served.leaf_gpa,
        old_entry: served.leaf,
        old_gpa,
        new_entry_gpa: last.at,
        new_entry: last.value,
        new_level: last.level,
        new_gpa,
        missing,
    })
}
