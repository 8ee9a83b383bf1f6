//! Intel EPT walks (SDM Vol. 3C ch. 29 "VMX Support for Address Translation", §29.3
//! "The Extended Page Table Mechanism (EPT)"; chapter 28 in older revisions).
//!
//! A walk translates a guest-physical address through the EPT paging structures rooted
//! at the EPTP into the address of the next level out (L1's guest-physical space, which
//! is hvsim's `GuestMemory`). It fails with an EPT misconfiguration (a present entry
//! with an illegal setting) or an EPT violation (not present, or the access is not
//! allowed) carrying the exit qualification of §28.2.3.2 / Table 28-7 "Exit
//! Qualification for EPT Violations".

use crate::addr::Gpa;
use crate::memory::GuestMemory;
use crate::paging::AccessKind;

/// EPT entry bit 0: read access.
pub const EPT_READ: u64 = 1 << 0;
/// EPT entry bit 1: write access.
pub const EPT_WRITE: u64 = 1 << 1;
/// EPT entry bit 2: execute access (supervisor-mode execute with MBEC).
pub const EPT_EXEC: u64 = 1 << 2;
/// EPT leaf bits 5:3: memory type.
pub const EPT_MEMTYPE_SHIFT: u32 = 3;
/// EPT leaf bit 6: ignore PAT memory type.
pub const EPT_IGNORE_PAT: u64 = 1 << 6;
/// EPT PDPTE/PDE bit 7: the entry maps a 1 GiB / 2 MiB page.
pub const EPT_PAGE_SIZE: u64 = 1 << 7;
/// EPT entry bit 8: accessed (EPTP bit 6 set).
pub const EPT_ACCESSED: u64 = 1 << 8;
/// EPT leaf bit 9: dirty (EPTP bit 6 set).
pub const EPT_DIRTY: u64 = 1 << 9;
/// EPT entry bit 10: user-mode execute (mode-based execute control).
pub const EPT_USER_EXEC: u64 = 1 << 10;

/// EPTP bits 2:0: memory type of the paging structures.
pub const EPTP_MEMTYPE_MASK: u64 = 0x7;
/// EPTP bits 5:3: page-walk length minus 1.
pub const EPTP_WALK_LENGTH_SHIFT: u32 = 3;
/// EPTP bit 6: enable accessed and dirty flags.
pub const EPTP_AD_ENABLE: u64 = 1 << 6;

/// Memory type: uncacheable.
pub const MEMTYPE_UC: u8 = 0;
/// Memory type: write-back.
pub const MEMTYPE_WB: u8 = 6;

/// Exit qualification bit 0: the access was a data read.
pub const QUAL_READ: u64 = 1 << 0;
/// Exit qualification bit 1: the access was a data write.
pub const QUAL_WRITE: u64 = 1 << 1;
/// Exit qualification bit 2: the access was an instruction fetch.
pub const QUAL_FETCH: u64 = 1 << 2;
/// Exit qualification bit 3: AND of bit 0 (read) of the entries used.
pub const QUAL_READABLE: u64 = 1 << 3;
/// Exit qualification bit 4: AND of bit 1 (write) of the entries used.
pub const QUAL_WRITABLE: u64 = 1 << 4;
/// Exit qualification bit 5: AND of bit 2 (execute) of the entries used.
pub const QUAL_EXECUTABLE: u64 = 1 << 5;
/// Exit qualification bit 6: AND of bit 10 (user execute) of the entries used, when
/// mode-based execute control is on.
pub const QUAL_USER_EXECUTABLE: u64 = 1 << 6;
/// Exit qualification bit 7: the guest linear-address field is valid.
pub const QUAL_GLA_VALID: u64 = 1 << 7;
/// Exit qualification bit 8 (with bit 7): the access was to the translation of a
/// linear address (clear: to a guest paging-structure entry).
pub const QUAL_GLA_TRANSLATION: u64 = 1 << 8;
/// Exit qualification bit 9 (advanced information, with bits 7 and 8): the linear
/// address is a user-mode linear address.
pub const QUAL_USER_LINEAR: u64 = 1 << 9;
/// Exit qualification bit 10 (advanced information): the linear address translates to a
/// read/write page.
pub const QUAL_WRITABLE_LINEAR: u64 = 1 << 10;
/// Exit qualification bit 11 (advanced information): the linear address translates to
/// an execute-disable page.
pub const QUAL_EXECUTE_DISABLE_LINEAR: u64 = 1 << 11;
/// Exit qualification bit 12: NMI unblocking due to IRET (SDM Vol. 3C §28.2.3
/// "Information About NMI Unblocking Due to IRET").
pub const QUAL_NMI_UNBLOCKING: u64 = 1 << 12;

/// The EPT features of the modelled CPU (IA32_VMX_EPT_VPID_CAP).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EptCaps {
    /// Execute-only translations (bit 0).
    pub execute_only: bool,
    /// 5-level EPT (page-walk length 5, bit 7).
    pub five_level: bool,
    /// Accessed and dirty flags (bit 21).
    pub accessed_dirty: bool,
    /// Mode-based execute control for EPT (secondary control).
    pub mode_based_execute: bool,
    /// MAXPHYADDR.
    pub maxphyaddr: u8,
}

impl Default for EptCaps {
    fn default() -> Self {
        Self {
            execute_only: true,
            five_level: false,
            accessed_dirty: true,
            mode_based_execute: false,
            maxphyaddr: 40,
        }
    }
}

/// Why the guest-physical address is being accessed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EptOrigin {
    /// No guest linear address is involved (e.g. a VMCS-referenced structure).
    Physical,
    /// The final translation of a guest linear address.
    LinearTranslation,
    /// A guest paging-structure entry, read or A/D-updated by the guest's walk.
    GuestPagingStructure,
}

/// An EPT translation request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EptAccess {
    /// Read, write or fetch.
    pub kind: AccessKind,
    /// What the address is.
    pub origin: EptOrigin,
    /// A user-mode linear access (matters only with mode-based execute control).
    pub user: bool,
}

/// A successful EPT translation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EptTranslation {
    /// The translated address.
    pub gpa: Gpa,
    /// The size of the page mapped (4 KiB, 2 MiB or 1 GiB).
    pub page_size: u64,
    /// Readable at every level.
    pub readable: bool,
    /// Writable at every level.
    pub writable: bool,
    /// Executable at every level.
    pub executable: bool,
    /// The leaf's EPT memory type (bits 5:3).
    pub memory_type: u8,
    /// The leaf's ignore-PAT bit.
    pub ignore_pat: bool,
    /// The leaf entry (after A/D updates).
    pub leaf: u64,
    /// Where the leaf entry is.
    pub leaf_gpa: Gpa,
}

/// A failed EPT translation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EptFault {
    /// EPT violation (exit reason 48): not present, or the access is not allowed.
    Violation {
        /// The guest-physical address.
        gpa: Gpa,
        /// The exit qualification.
        qualification: u64,
        /// The level whose entry stopped the walk (1 = PTE).
        level: u8,
    },
    /// EPT misconfiguration (exit reason 49): a present entry with an illegal setting.
    Misconfig {
        /// The guest-physical address.
        gpa: Gpa,
        /// The offending entry.
        entry: u64,
        /// Where it is.
        entry_gpa: Gpa,
        /// Its level.
        level: u8,
    },
    /// The EPTP's page-walk length is not one the CPU supports (a VM-entry check
    /// prevents this; reported rather than walked).
    InvalidEptp,
}

/// Whether `eptp` passes the VM-entry checks on the EPTP (SDM Vol. 3C §27.2.1.1
/// "VM-Execution Control Fields": memory type UC or WB, supported walk length, A/D only
/// if supported, bits 11:8 and above MAXPHYADDR clear, and bit 7 (supervisor
/// shadow-stack control, which hvsim's CPU models do not offer) clear).
pub fn eptp_valid(eptp: u64, caps: &EptCaps) -> bool {
    let memtype = (eptp & EPTP_MEMTYPE_MASK) as u8;
    let walk_ok = walk_levels(eptp, caps).is_some();
    let ad_ok = eptp & EPTP_AD_ENABLE == 0 || caps.accessed_dirty;
    let rsvd = (0x1F << 7) | !((1u64 << caps.maxphyaddr) - 1);
    (memtype == MEMTYPE_UC || memtype == MEMTYPE_WB) && walk_ok && ad_ok && eptp & rsvd == 0
}

fn walk_levels(eptp: u64, caps: &EptCaps) -> Option<u8> {
    match (eptp >> EPTP_WALK_LENGTH_SHIFT) & 7 {
        3 => Some(4),
        4 if caps.five_level => Some(5),
        _ => None,
    }
}

/// Whether a present EPT entry at `level` is misconfigured (SDM Vol. 3C §29.3.3.1 "EPT
/// Misconfigurations").
fn misconfigured(entry: u64, level: u8, leaf: bool, caps: &EptCaps) -> bool {
    let rwx = entry & 7;
    // Write without read, or execute-only where the CPU does not support it.
    if rwx & (EPT_READ | EPT_WRITE) == EPT_WRITE || (rwx == EPT_EXEC && !caps.execute_only) {
        return true;
    }
    // Address bits above MAXPHYADDR (bits 51:M).
    let mut rsvd = !((1u64 << caps.maxphyaddr) - 1) & 0x000F_FFFF_FFFF_F000;
    if !leaf {
        rsvd |= 0xF8; // bits 7:3 of entries that reference a table
    } else if level == 3 {
        rsvd |= 0x3FFF_F000; // 1 GiB page: bits 29:12
    } else if level == 2 {
        rsvd |= 0x1F_F000; // 2 MiB page: bits 20:12
    }
    if entry & rsvd != 0 {
        return true;
    }
    // Leaf memory types 2, 3 and 7 are reserved.
    leaf && matches!((entry >> EPT_MEMTYPE_SHIFT) & 7, 2 | 3 | 7)
}

/// Translates `gpa` through the EPT paging structures of `eptp`.
pub fn walk(
    mem: &mut GuestMemory,
    eptp: u64,
    caps: &EptCaps,
    gpa: Gpa,
    access: EptAccess,
) -> Result<EptTranslation, EptFault> {
    let levels = walk_levels(eptp, caps).ok_or(EptFault::InvalidEptp)?;
    let ad = eptp & EPTP_AD_ENABLE != 0 && caps.accessed_dirty;
    let pa_mask = ((1u64 << caps.maxphyaddr) - 1) & !0xFFF;
    // With EPT A/D on, guest paging-structure accesses count as writes (SDM Vol. 3C
    // §29.3.3.2 "EPT Violations"); their exit qualification has both bits 0 and 1 set.
    let table_as_write = ad && access.origin == EptOrigin::GuestPagingStructure;
    let write = access.kind == AccessKind::Write || table_as_write;
    let qual_access = match access.kind {
        AccessKind::Read if table_as_write => QUAL_READ | QUAL_WRITE,
        AccessKind::Read => QUAL_READ,
        AccessKind::Write => QUAL_WRITE | if table_as_write { QUAL_READ } else { 0 },
        AccessKind::Fetch => QUAL_FETCH,
    };
    let qual_gla = match access.origin {
        EptOrigin::Physical => 0,
        EptOrigin::LinearTranslation => QUAL_GLA_VALID | QUAL_GLA_TRANSLATION,
        EptOrigin::GuestPagingStructure => QUAL_GLA_VALID,
    };
    let mut rights = EPT_READ | EPT_WRITE | EPT_EXEC | EPT_USER_EXEC;
    let mut used: [(Gpa, u64); 5] = [(Gpa(0), 0); 5];
    let mut nused = 0;
    let mut table = eptp & pa_mask;
    let mut level = levels;
    let violation = |rights: u64, level: u8| {
        let mut q = qual_access | qual_gla;
        if rights & EPT_READ != 0 {
            q |= QUAL_READABLE;
        }
        if rights & EPT_WRITE != 0 {
            q |= QUAL_WRITABLE;
        }
        if rights & EPT_EXEC != 0 {
            q |= QUAL_EXECUTABLE;
        }
        if caps.mode_based_execute && rights & EPT_USER_EXEC != 0 {
            q |= QUAL_USER_EXECUTABLE;
        }
        EptFault::Violation { gpa, qualification: q, level }
    };
    let (leaf, leaf_gpa, page_size) = loop {
        let shift = 12 + 9 * (u32::from(level) - 1);
        let e_gpa = Gpa(table + ((gpa.0 >> shift) & 0x1FF) * 8);
        let e = mem.read_u64(e_gpa);
        if e & 7 == 0 {
            // Not present: the AND includes this entry's clear bits.
            return Err(violation(0, level));
        }
        let leaf = level == 1 || ((level == 2 || level == 3) && e & EPT_PAGE_SIZE != 0);
        if misconfigured(e, level, leaf, caps) {
            return Err(EptFault::Misconfig { gpa, entry: e, entry_gpa: e_gpa, level });
        }
        rights &= e | if caps.mode_based_execute { 0 } else { EPT_USER_EXEC };
        used[nused] = (e_gpa, e);
        nused += 1;
        if leaf {
            break (e, e_gpa, 1u64 << shift);
        }
        table = e & pa_mask;
        level -= 1;
    };
    let exec_right = if caps.mode_based_execute && access.user { EPT_USER_EXEC } else { EPT_EXEC };
    let allowed = match access.kind {
        AccessKind::Read => rights & EPT_READ != 0,
        AccessKind::Write => rights & EPT_WRITE != 0,
        AccessKind::Fetch => rights & exec_right != 0,
    } && (!table_as_write || rights & EPT_WRITE != 0);
    if !allowed {
        return Err(violation(rights, level));
    }
    // Accessed on every entry used, dirty on the leaf for writes (SDM Vol. 3C §29.3.5
    // "Accessed and Dirty Flags for EPT").
    let mut final_leaf = leaf;
    if ad {
        for (i, &(e_gpa, e)) in used[..nused].iter().enumerate() {
            let is_leaf = i == nused - 1;
            let mut new = e | EPT_ACCESSED;
            if is_leaf && write {
                new |= EPT_DIRTY;
            }
            if new != e {
                mem.cmpxchg_u64(e_gpa, e, new);
            }
            if is_leaf {
                final_leaf = new;
            }
        }
    }
    let frame = leaf & pa_mask & !(page_size - 1);
    Ok(EptTranslation {
        gpa: Gpa(frame | (gpa.0 & (page_size - 1))),
        page_size,
        readable: rights & EPT_READ != 0,
        writable: rights & EPT_WRITE != 0,
        executable: rights & EPT_EXEC != 0,
        memory_type: ((leaf >> EPT_MEMTYPE_SHIFT) & 7) as u8,
        ignore_pat: leaf & EPT_IGNORE_PAT != 0,
        leaf: final_leaf,
        leaf_gpa,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryMap;

    const RWX: u64 = EPT_READ | EPT_WRITE | EPT_EXEC;
    const WB: u64 = (MEMTYPE_WB as u64) << EPT_MEMTYPE_SHIFT;
    /// 4-level, WB, A/D enabled, PML4 at 0x1000.
    const EPTP: u64 = 0x1000 | (3 << EPTP_WALK_LENGTH_SHIFT) | MEMTYPE_WB as u64 | EPTP_AD_ENABLE;

    fn access(kind: AccessKind) -> EptAccess {
        EptAccess { kind, origin: EptOrigin::LinearTranslation, user: false }
    }

    /// PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000.
    /// PT[0] RWX WB, PT[1] read-only, PT[2] execute-only, PT[3] not present;
    /// PD[1] maps 2 MiB..4 MiB to a 2 MiB RW page at 4 MiB; PDPT[1] 1 GiB RWX page at 1 GiB.
    fn tables() -> GuestMemory {
        let mut m = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
        m.write_u64(Gpa(0x1000), 0x2000 | RWX);
        m.write_u64(Gpa(0x2000), 0x3000 | RWX);
        m.write_u64(Gpa(0x2008), 0x4000_0000 | EPT_PAGE_SIZE | RWX | WB);
        m.write_u64(Gpa(0x3000), 0x4000 | RWX);
        m.write_u64(Gpa(0x3008), 0x40_0000 | EPT_PAGE_SIZE | EPT_READ | EPT_WRITE | WB);
        m.write_u64(Gpa(0x4000), 0x8000 | RWX | WB | EPT_IGNORE_PAT);
        m.write_u64(Gpa(0x4008), 0x9000 | EPT_READ | WB);
        m.write_u64(Gpa(0x4010), 0xA000 | EPT_EXEC | WB);
        m
    }

    #[test]
    fn translates_4k_2m_1g_with_memory_type_and_accessed_dirty() {
        let mut m = tables();
        let caps = EptCaps::default();
        let t = walk(&mut m, EPTP, &caps, Gpa(0x123), access(AccessKind::Write)).unwrap();
        assert_eq!((t.gpa, t.page_size, t.memory_type, t.ignore_pat), (Gpa(0x8123), 4096, 6, true));
        // SDM Vol. 3C §29.3.5: A on every entry used, D on the leaf for a write.
        for e in [0x1000, 0x2000, 0x3000] {
            assert_ne!(m.read_u64(Gpa(e)) & EPT_ACCESSED, 0);
            assert_eq!(m.read_u64(Gpa(e)) & EPT_DIRTY, 0);
        }
        assert_eq!(m.read_u64(Gpa(0x4000)) & (EPT_ACCESSED | EPT_DIRTY), EPT_ACCESSED | EPT_DIRTY);
        let t = walk(&mut m, EPTP, &caps, Gpa(0x21_2345), access(AccessKind::Read)).unwrap();
        assert_eq!((t.gpa, t.page_size, t.executable), (Gpa(0x41_2345), 2 << 20, false));
        let t = walk(&mut m, EPTP, &caps, Gpa(0x4567_8000), access(AccessKind::Fetch)).unwrap();
        assert_eq!((t.gpa, t.page_size), (Gpa(0x4567_8000), 1 << 30));
        // Without EPTP bit 6, no flags are written.
        let mut m = tables();
        walk(&mut m, EPTP & !EPTP_AD_ENABLE, &caps, Gpa(0), access(AccessKind::Write)).unwrap();
        assert_eq!(m.read_u64(Gpa(0x4000)) & (EPT_ACCESSED | EPT_DIRTY), 0);
    }

    /// SDM Vol. 3C Table 28-7: bits 2:0 give the access, bits 5:3 the AND of the
    /// entries' R/W/X, bits 7/8 the linear-address information.
    #[test]
    fn violation_exit_qualification() {
        let mut m = tables();
        let caps = EptCaps::default();
        let q = |r: Result<EptTranslation, EptFault>| match r {
            Err(EptFault::Violation { qualification, .. }) => qualification,
            other => panic!("expected a violation, got {other:?}"),
        };
        // Write to a read-only page.
        let r = walk(&mut m, EPTP, &caps, Gpa(0x1000), access(AccessKind::Write));
        assert_eq!(q(r), QUAL_WRITE | QUAL_READABLE | QUAL_GLA_VALID | QUAL_GLA_TRANSLATION);
        // Read of an execute-only page (supported: a violation, not a misconfiguration).
        let r = walk(&mut m, EPTP, &caps, Gpa(0x2000), access(AccessKind::Read));
        assert_eq!(q(r), QUAL_READ | QUAL_EXECUTABLE | QUAL_GLA_VALID | QUAL_GLA_TRANSLATION);
        // Fetch from a non-executable 2 MiB page.
        let r = walk(&mut m, EPTP, &caps, Gpa(0x20_0000), access(AccessKind::Fetch));
        assert_eq!(
            q(r),
            QUAL_FETCH | QUAL_READABLE | QUAL_WRITABLE | QUAL_GLA_VALID | QUAL_GLA_TRANSLATION
        );
        // Not present: R/W/X bits all clear; no linear address.
        let phys = EptAccess { kind: AccessKind::Read, origin: EptOrigin::Physical, user: false };
        let r = walk(&mut m, EPTP, &caps, Gpa(0x3000), phys);
        assert_eq!(q(r), QUAL_READ);
        // A guest paging-structure read with EPT A/D on counts as a write (bits 0 and 1),
        // and is refused by a read-only page.
        let table = EptAccess {
            kind: AccessKind::Read,
            origin: EptOrigin::GuestPagingStructure,
            user: false,
        };
        let r = walk(&mut m, EPTP, &caps, Gpa(0x1000), table);
        assert_eq!(q(r), QUAL_READ | QUAL_WRITE | QUAL_READABLE | QUAL_GLA_VALID);
        // Without A/D it is a plain read and succeeds.
        assert!(walk(&mut m, EPTP & !EPTP_AD_ENABLE, &caps, Gpa(0x1000), table).is_ok());
    }

    /// SDM Vol. 3C §29.3.3.1 "EPT Misconfigurations".
    #[test]
    fn misconfigurations() {
        let caps = EptCaps::default();
        let cases: [(u64, u64, &str); 6] = [
            (0x4000, 0x8000 | EPT_WRITE | WB, "write without read"),
            (0x4000, 0x8000 | RWX | (2 << EPT_MEMTYPE_SHIFT), "memory type 2"),
            (0x4000, 0x8000 | RWX | (7 << EPT_MEMTYPE_SHIFT), "memory type 7"),
            (0x4000, 0x8000 | RWX | WB | (1 << 45), "address bit above MAXPHYADDR"),
            (0x3000, 0x4000 | RWX | (1 << 4), "reserved bit 4 in a non-leaf PDE"),
            (0x3008, 0x40_0000 | EPT_PAGE_SIZE | EPT_READ | WB | (1 << 13), "2 MiB bit 13"),
        ];
        for (at, e, what) in cases {
            let mut m = tables();
            m.write_u64(Gpa(at), e);
            let gpa = if at == 0x3008 { Gpa(0x20_0000) } else { Gpa(0) };
            match walk(&mut m, EPTP, &caps, gpa, access(AccessKind::Read)) {
                Err(EptFault::Misconfig { entry, entry_gpa, .. }) => {
                    assert_eq!((entry, entry_gpa), (e, Gpa(at)), "{what}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        // Execute-only where unsupported.
        let mut m = tables();
        let no_xo = EptCaps { execute_only: false, ..caps };
        let r = walk(&mut m, EPTP, &no_xo, Gpa(0x2000), access(AccessKind::Fetch));
        assert!(matches!(r, Err(EptFault::Misconfig { level: 1, .. })), "{r:?}");
    }

    #[test]
    fn five_level_and_eptp_checks() {
        let mut m = tables();
        m.write_u64(Gpa(0x5000), 0x1000 | RWX); // PML5[0] -> the PML4
        let caps5 = EptCaps { five_level: true, ..EptCaps::default() };
        let eptp5 = 0x5000 | (4 << EPTP_WALK_LENGTH_SHIFT) | MEMTYPE_WB as u64;
        assert!(eptp_valid(eptp5, &caps5));
        assert!(!eptp_valid(eptp5, &EptCaps::default()));
        let t = walk(&mut m, eptp5, &caps5, Gpa(0x10), access(AccessKind::Read)).unwrap();
        assert_eq!(t.gpa, Gpa(0x8010));
        assert_eq!(
            walk(&mut m, eptp5, &EptCaps::default(), Gpa(0), access(AccessKind::Read)),
            Err(EptFault::InvalidEptp)
        );
        assert!(eptp_valid(EPTP, &EptCaps::default()));
        assert!(!eptp_valid(EPTP | 1, &EptCaps::default()), "memory type 7");
        assert!(!eptp_valid(EPTP | (1 << 8), &EptCaps::default()), "reserved bit 8");
    }

    #[test]
    fn mode_based_execute_uses_bit_10_for_user_fetches() {
        let mut m = tables();
        let caps = EptCaps { mode_based_execute: true, ..EptCaps::default() };
        let user_fetch =
            EptAccess { kind: AccessKind::Fetch, origin: EptOrigin::LinearTranslation, user: true };
        let r = walk(&mut m, EPTP, &caps, Gpa(0x10), user_fetch);
        assert!(matches!(r, Err(EptFault::Violation { .. })), "bit 10 clear");
        for e in [0x1000, 0x2000, 0x3000, 0x4000] {
            let v = m.read_u64(Gpa(e));
            m.write_u64(Gpa(e), v | EPT_USER_EXEC);
        }
        assert!(walk(&mut m, EPTP, &caps, Gpa(0x10), user_fetch).is_ok());
    }
}
