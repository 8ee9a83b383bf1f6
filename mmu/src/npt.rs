//! AMD nested page tables (APM Vol. 2 §15.25 "Nested Paging").
//!
//! The nested tables have the host's format (legacy, PAE or long mode, as the host's
//! CR4.PAE/EFER.LMA were at VMRUN) and are rooted at the VMCB's nCR3. "All nested page
//! table accesses are treated as user-mode accesses" (§15.25.5 "Nested Table Walk"), so
//! every level must have U/S set, and CR0.WP, SMEP and SMAP play no part. A failing
//! nested walk is a #NPF #VMEXIT whose EXITINFO1 is the page-fault error code plus two
//! bits saying whether the guest-physical address was the final translation of the
//! guest's access or one of the guest's own page-table entries (§15.25.6 "Nested versus
//! Guest Page Faults, Fault Ordering").

use crate::addr::{Gpa, Gva};
use crate::memory::GuestMemory;
use crate::paging::{self, Access, AccessKind, PagingMode, Translation, WalkConfig};

/// EXITINFO1 bit 0: the nested entry was present (a protection or reserved-bit fault).
pub const NPF_P: u64 = paging::PFEC_P as u64;
/// EXITINFO1 bit 1: the access was a write.
pub const NPF_W: u64 = paging::PFEC_W as u64;
/// EXITINFO1 bit 2: the access was a user access (always, for nested walks).
pub const NPF_U: u64 = paging::PFEC_U as u64;
/// EXITINFO1 bit 3: a reserved bit was set in a nested entry.
pub const NPF_RSVD: u64 = paging::PFEC_RSVD as u64;
/// EXITINFO1 bit 4: the access was an instruction fetch.
pub const NPF_I: u64 = paging::PFEC_I as u64;
/// EXITINFO1 bit 32: the fault occurred translating the guest's final physical address.
pub const NPF_FINAL_TRANSLATION: u64 = 1 << 32;
/// EXITINFO1 bit 33: the fault occurred translating a guest page-table entry's address.
pub const NPF_GUEST_TABLE: u64 = 1 << 33;

/// The host paging state that shapes the nested tables.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NestedMode {
    /// Format of the nested tables (the host's paging mode at VMRUN).
    pub paging: PagingMode,
    /// The host's EFER.NXE.
    pub nxe: bool,
    /// The host's CR4.PSE (legacy-format nested tables only).
    pub pse: bool,
    /// MAXPHYADDR of the CPU model.
    pub maxphyaddr: u8,
}

/// What the guest-physical address being translated is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NestedOrigin {
    /// The final physical address of the guest's own access.
    FinalTranslation,
    /// The address of one of the guest's page-table entries, read (or A/D-updated)
    /// during the guest's walk.
    GuestTable,
}

/// A nested translation request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NestedAccess {
    /// Read, write or fetch (a guest walker's A/D update is a write).
    pub kind: AccessKind,
    /// What the address is.
    pub origin: NestedOrigin,
}

/// A nested page fault: the #NPF #VMEXIT's information.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NestedPageFault {
    /// The guest-physical address that failed (EXITINFO2).
    pub gpa: Gpa,
    /// EXITINFO1.
    pub exitinfo1: u64,
    /// The nested level whose entry failed (1 = PTE).
    pub level: u8,
}

/// Translates guest-physical `gpa` through the nested tables at `ncr3`. A successful
/// walk sets accessed/dirty flags in the nested entries as the host walker does.
pub fn walk(
    mem: &mut GuestMemory,
    ncr3: u64,
    mode: &NestedMode,
    gpa: Gpa,
    access: NestedAccess,
) -> Result<Translation, NestedPageFault> {
    let cfg = WalkConfig {
        mode: mode.paging,
        cr3: ncr3,
        wp: true,
        pse: mode.pse,
        nxe: mode.nxe,
        smep: false,
        smap: false,
        pke: false,
        pkru: 0,
        // Nested tables have no PDPTE registers: a PAE nested walk reads the PDPT.
        pdptes: None,
        maxphyaddr: mode.maxphyaddr,
    };
    let user = Access { kind: access.kind, user: true, smap_override: false };
    paging::walk(mem, &cfg, Gva(gpa.0), user).map_err(|pf| NestedPageFault {
        gpa,
        exitinfo1: u64::from(pf.error_code)
            | match access.origin {
                NestedOrigin::FinalTranslation => NPF_FINAL_TRANSLATION,
                NestedOrigin::GuestTable => NPF_GUEST_TABLE,
            },
        level: pf.level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryMap;
    use crate::paging::{PTE_NX, PTE_P, PTE_PS, PTE_RW, PTE_US};

    const MODE: NestedMode =
        NestedMode { paging: PagingMode::Long4, nxe: true, pse: true, maxphyaddr: 40 };
    const FINAL_READ: NestedAccess =
        NestedAccess { kind: AccessKind::Read, origin: NestedOrigin::FinalTranslation };

    /// nCR3 0x1000 -> 0x2000 -> 0x3000 -> PT 0x4000; PD[1] is a supervisor-only 2 MiB
    /// page; PT[1] read-only, PT[2] NX, PT[3] not present.
    fn tables() -> GuestMemory {
        let mut m = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
        let rwu = PTE_P | PTE_RW | PTE_US;
        m.write_u64(Gpa(0x1000), 0x2000 | rwu);
        m.write_u64(Gpa(0x2000), 0x3000 | rwu);
        m.write_u64(Gpa(0x3000), 0x4000 | rwu);
        m.write_u64(Gpa(0x3008), 0x20_0000 | PTE_PS | PTE_P | PTE_RW);
        m.write_u64(Gpa(0x4000), 0x8000 | rwu);
        m.write_u64(Gpa(0x4008), 0x9000 | PTE_P | PTE_US);
        m.write_u64(Gpa(0x4010), 0xA000 | rwu | PTE_NX);
        m
    }

    #[test]
    fn nested_walk_translates_and_sets_accessed() {
        let mut m = tables();
        let t = walk(&mut m, 0x1000, &MODE, Gpa(0x123), FINAL_READ).unwrap();
        assert_eq!(t.gpa, Gpa(0x8123));
        assert_ne!(m.read_u64(Gpa(0x4000)) & paging::PTE_A, 0);
    }

    /// APM Vol. 2 §15.25.5: nested accesses are user accesses, so a supervisor-only
    /// nested page faults even for a read, with U set in EXITINFO1.
    #[test]
    fn supervisor_only_nested_page_faults_as_user_access() {
        let mut m = tables();
        let e = walk(&mut m, 0x1000, &MODE, Gpa(0x20_0000), FINAL_READ).unwrap_err();
        assert_eq!(e.exitinfo1, NPF_P | NPF_U | NPF_FINAL_TRANSLATION);
        assert_eq!((e.gpa, e.level), (Gpa(0x20_0000), 2));
    }

    /// APM Vol. 2 §15.25.6: EXITINFO1 bits 32/33 tell a final-address fault from a fault
    /// on a guest page-table access.
    #[test]
    fn exitinfo1_distinguishes_final_translation_and_guest_table() {
        let mut m = tables();
        let table_write =
            NestedAccess { kind: AccessKind::Write, origin: NestedOrigin::GuestTable };
        let e = walk(&mut m, 0x1000, &MODE, Gpa(0x1008), table_write).unwrap_err();
        assert_eq!(e.exitinfo1, NPF_P | NPF_W | NPF_U | NPF_GUEST_TABLE);
        let e = walk(&mut m, 0x1000, &MODE, Gpa(0x3000), FINAL_READ).unwrap_err();
        assert_eq!(e.exitinfo1, NPF_U | NPF_FINAL_TRANSLATION, "not present: P clear");
        let fetch =
            NestedAccess { kind: AccessKind::Fetch, origin: NestedOrigin::FinalTranslation };
        let e = walk(&mut m, 0x1000, &MODE, Gpa(0x2000), fetch).unwrap_err();
        assert_eq!(e.exitinfo1, NPF_P | NPF_U | NPF_I | NPF_FINAL_TRANSLATION);
        // Reserved bit 51 (above MAXPHYADDR) in the nested PTE.
        m.write_u64(Gpa(0x4000), 0x8000 | PTE_P | PTE_RW | PTE_US | (1 << 51));
        let e = walk(&mut m, 0x1000, &MODE, Gpa(0x10), FINAL_READ).unwrap_err();
        assert_eq!(e.exitinfo1, NPF_P | NPF_U | NPF_RSVD | NPF_FINAL_TRANSLATION);
    }

    #[test]
    fn legacy_format_nested_tables() {
        let mut m = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
        m.write_u32(Gpa(0x1000), 0x2000 | 7);
        m.write_u32(Gpa(0x2000 + 4), 0x7000 | 7);
        let legacy = NestedMode { paging: PagingMode::Legacy32, nxe: false, ..MODE };
        let t = walk(&mut m, 0x1000, &legacy, Gpa(0x1234), FINAL_READ).unwrap();
        assert_eq!(t.gpa, Gpa(0x7234));
    }
}
