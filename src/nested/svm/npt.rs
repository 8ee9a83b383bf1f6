//! Nested paging (APM Vol. 2 §15.25 "Nested Paging"): the two-dimensional walk of an SVM
//! guest with NP_ENABLE. The guest's own page tables translate a guest linear address to
//! a guest-physical address; every guest table access and the final guest-physical
//! address are translated by the nested tables at nCR3 ([`hvsim_mmu::npt::walk`]) to a
//! system-physical address.
//!
//! Rules followed here:
//! - "All nested page table accesses are treated as user-mode accesses" (§15.25.5
//!   "Nested Table Walk"), done by `npt::walk`.
//! - Accesses to the guest's page tables are checked in the nested tables as user
//!   *writes* (the walker may set guest A/D bits): a guest page table on a read-only
//!   nested page gives #NPF with EXITINFO1 = P|W|U|bit 33, as measured on hardware
//!   (kvm-unit-tests `npt_rw_pfwalk`, 0x2_0000_0007).
//! - The guest walk (with its permission checks) completes before the final
//!   guest-physical address is translated: a guest #PF wins over a final-translation
//!   #NPF (§15.25.6 "Nested versus Guest Page Faults, Fault Ordering"); the guest's A/D
//!   bits are set only after the final translation succeeded.
//! - Legacy PAE guests: the PDPTEs are read through the nested tables at walk time
//!   (there are no PDPTE registers to load at VMRUN under nested paging).

use crate::cpu::regs::{cr4, efer};
use hvsim_mmu::memory::GuestMemory;
use hvsim_mmu::npt::{self, NestedAccess, NestedMode, NestedOrigin, NestedPageFault};
use hvsim_mmu::paging::{
    self, Access, AccessKind, PageFault, PagingMode, Translation, WalkConfig, PFEC_I, PFEC_P,
    PFEC_RSVD, PFEC_U, PFEC_W, PTE_A, PTE_D, PTE_G, PTE_NX, PTE_P, PTE_PKEY_SHIFT, PTE_PS, PTE_RW,
    PTE_US,
};
use hvsim_mmu::{Gpa, Gva};

/// The nested-paging state of a running guest: nCR3 and the host paging mode that gives
/// the nested tables their format (captured at VMRUN, §15.25.4 "Nested Paging and
/// VMRUN/#VMEXIT": "the nested page tables ... use the same paging mode as the host").
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NestedPaging {
    /// nCR3 (VMCB N_CR3).
    pub ncr3: u64,
    /// Format of the nested tables.
    pub mode: NestedMode,
}

impl NestedPaging {
    /// The nested paging of a guest entered from a host with these CR0/CR4/EFER.
    pub fn from_host(ncr3: u64, host_cr4: u64, host_efer: u64, maxphy: u8) -> Self {
        let paging = if host_efer & efer::LMA != 0 {
            if host_cr4 & cr4::LA57 != 0 {
                PagingMode::Long5
            } else {
                PagingMode::Long4
            }
        } else if host_cr4 & cr4::PAE != 0 {
            PagingMode::Pae
        } else {
            PagingMode::Legacy32
        };
        Self {
            ncr3,
            mode: NestedMode {
                paging,
                nxe: host_efer & efer::NXE != 0,
                pse: host_cr4 & cr4::PSE != 0,
                maxphyaddr: maxphy,
            },
        }
    }

    /// Translates guest-physical `gpa` for an access of `kind`.
    pub fn translate(
        &self,
        mem: &mut GuestMemory,
        gpa: u64,
        kind: AccessKind,
        origin: NestedOrigin,
    ) -> Result<Translation, NestedPageFault> {
        npt::walk(mem, self.ncr3, &self.mode, Gpa(gpa), NestedAccess { kind, origin })
    }
}

/// Why a two-dimensional walk failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NptFault {
    /// A guest page fault (delivered to, or intercepted from, the guest).
    Guest(PageFault),
    /// A nested page fault: #VMEXIT(NPF).
    Nested(NestedPageFault),
}

/// A successful two-dimensional translation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NptTranslation {
    /// The guest's translation (`gpa` is guest-physical); `None` without guest paging.
    pub guest: Option<Translation>,
    /// The nested translation of the final guest-physical address (`gpa` is the
    /// system-physical address of the byte).
    pub nested: Translation,
}

/// One guest page-table entry read through the nested tables.
#[derive(Copy, Clone)]
struct UsedEntry {
    /// System-physical address of the entry.
    spa: Gpa,
    value: u64,
    narrow: bool,
}

/// Reads the guest table entry at guest-physical `gpa` (`narrow`: 4 bytes).
fn read_entry(
    mem: &mut GuestMemory,
    np: &NestedPaging,
    gpa: u64,
    narrow: bool,
) -> Result<UsedEntry, NptFault> {
    let t = np
        .translate(mem, gpa, AccessKind::Write, NestedOrigin::GuestTable)
        .map_err(NptFault::Nested)?;
    let value = if narrow { u64::from(mem.read_u32(t.gpa)) } else { mem.read_u64(t.gpa) };
    Ok(UsedEntry { spa: t.gpa, value, narrow })
}

/// Translates guest linear `addr` for `access`: the guest's tables (if `guest_paging`)
/// then the nested tables. Sets A/D flags in both as the processor does.
pub fn walk(
    mem: &mut GuestMemory,
    cfg: &WalkConfig,
    np: &NestedPaging,
    guest_paging: bool,
    addr: Gva,
    access: Access,
) -> Result<NptTranslation, NptFault> {
    if !guest_paging {
        // Without guest paging the linear address is the guest-physical address.
        let nested = np
            .translate(mem, addr.0, access.kind, NestedOrigin::FinalTranslation)
            .map_err(NptFault::Nested)?;
        return Ok(NptTranslation { guest: None, nested });
    }
    let fetch = access.kind == AccessKind::Fetch;
    let write = access.kind == AccessKind::Write;
    let base_code = (if write { PFEC_W } else { 0 })
        | (if access.user { PFEC_U } else { 0 })
        | (if fetch && (cfg.smep || (cfg.nxe && cfg.mode != PagingMode::Legacy32)) {
            PFEC_I
        } else {
            0
        });
    let fault = |code: u32, level: u8| {
        NptFault::Guest(PageFault { addr, error_code: base_code | code, level })
    };

    let mut writable = true;
    let mut user = true;
    let mut nx = false;
    let mut used = [UsedEntry { spa: Gpa(0), value: 0, narrow: false }; 5];
    let mut nused = 0;
    let (leaf, leaf_gpa, page_size, gpa);

    if cfg.mode == PagingMode::Legacy32 {
        let a = addr.0 & 0xFFFF_FFFF;
        let pde_gpa = (cfg.cr3 & 0xFFFF_F000) + ((a >> 22) << 2);
        let pde = read_entry(mem, np, pde_gpa, true)?;
        if pde.value & PTE_P == 0 {
            return Err(fault(0, 2));
        }
        writable &= pde.value & PTE_RW != 0;
        user &= pde.value & PTE_US != 0;
        used[0] = pde;
        nused = 1;
        if pde.value & PTE_PS != 0 && cfg.pse {
            let high = ((pde.value >> 13) & 0xFF) << 32;
            let rsvd = (1u64 << 21) | (!((1u64 << cfg.maxphyaddr.min(40)) - 1) >> 19 & 0x1F_E000);
            if pde.value & rsvd != 0 {
                return Err(fault(PFEC_P | PFEC_RSVD, 2));
            }
            page_size = 4 << 20;
            gpa = (pde.value & 0xFFC0_0000) | high | (a & 0x3F_FFFF);
            leaf = pde.value;
            leaf_gpa = pde_gpa;
        } else {
            let pte_gpa = (pde.value & 0xFFFF_F000) + (((a >> 12) & 0x3FF) << 2);
            let pte = read_entry(mem, np, pte_gpa, true)?;
            if pte.value & PTE_P == 0 {
                return Err(fault(0, 1));
            }
            writable &= pte.value & PTE_RW != 0;
            user &= pte.value & PTE_US != 0;
            used[1] = pte;
            nused = 2;
            page_size = 4096;
            gpa = (pte.value & 0xFFFF_F000) | (a & 0xFFF);
            leaf = pte.value;
            leaf_gpa = pte_gpa;
        }
    } else {
        let pa_mask = ((1u64 << cfg.maxphyaddr) - 1) & !0xFFF;
        let (mut level, mut table) = match cfg.mode {
            PagingMode::Pae => {
                let idx = (addr.0 & 0xFFFF_FFFF) >> 30;
                // No PDPTE registers under nested paging: the PDPTE is read through the
                // nested tables like any other guest table entry.
                let e = read_entry(mem, np, (cfg.cr3 & 0xFFFF_FFE0) + 8 * idx, false)?;
                if e.value & PTE_P == 0 {
                    return Err(fault(0, 3));
                }
                if e.value & cfg.reserved_mask(3, e.value) != 0 {
                    return Err(fault(PFEC_P | PFEC_RSVD, 3));
                }
                (2u8, e.value & pa_mask)
            }
            PagingMode::Long5 => (5, cfg.cr3 & pa_mask),
            _ => (4, cfg.cr3 & pa_mask),
        };
        loop {
            let shift = 12 + 9 * (u32::from(level) - 1);
            let e_gpa = table + ((addr.0 >> shift) & 0x1FF) * 8;
            let e = read_entry(mem, np, e_gpa, false)?;
            let v = e.value;
            if v & PTE_P == 0 {
                return Err(fault(0, level));
            }
            if v & cfg.reserved_mask(level, v) != 0 {
                return Err(fault(PFEC_P | PFEC_RSVD, level));
            }
            writable &= v & PTE_RW != 0;
            user &= v & PTE_US != 0;
            nx |= cfg.nxe && v & PTE_NX != 0;
            used[nused] = e;
            nused += 1;
            if level == 1 || (level <= 3 && v & PTE_PS != 0) {
                page_size = 1u64 << shift;
                gpa = (v & pa_mask & !(page_size - 1)) | (addr.0 & (page_size - 1));
                leaf = v;
                leaf_gpa = e_gpa;
                break;
            }
            table = v & pa_mask;
            level -= 1;
        }
    }

    let leaf_level = match page_size {
        s if s >= 1 << 30 => 3,
        s if s >= 2 << 20 => 2,
        _ => 1,
    };
    // Access rights and protection keys, as the native walker checks them.
    let ia32e = matches!(cfg.mode, PagingMode::Long4 | PagingMode::Long5);
    let pkey = if ia32e { ((leaf >> PTE_PKEY_SHIFT) & 0xF) as u8 } else { 0 };
    if let Some(pfec) = paging::access_fault(cfg, &access, leaf, user, writable, nx) {
        return Err(fault(pfec, leaf_level));
    }

    // The final guest-physical address, through the nested tables (§15.25.6).
    let nested = np
        .translate(mem, gpa, access.kind, NestedOrigin::FinalTranslation)
        .map_err(NptFault::Nested)?;

    // Guest accessed flags on every entry used, dirty on the leaf for writes.
    let mut final_leaf = leaf;
    for (i, e) in used[..nused].iter().enumerate() {
        let is_leaf = i == nused - 1;
        let new = e.value | PTE_A | if is_leaf && write { PTE_D } else { 0 };
        if new != e.value {
            if e.narrow {
                mem.cmpxchg_u32(e.spa, e.value as u32, new as u32);
            } else {
                mem.cmpxchg_u64(e.spa, e.value, new);
            }
        }
        if is_leaf {
            final_leaf = new;
        }
    }
    let guest = Translation {
        gpa: Gpa(gpa),
        page_size,
        writable,
        user,
        executable: !nx,
        global: leaf & PTE_G != 0,
        pkey,
        leaf: final_leaf,
        leaf_gpa: Gpa(leaf_gpa),
    };
    Ok(NptTranslation { guest: Some(guest), nested })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hvsim_mmu::memory::MemoryMap;
    use hvsim_mmu::npt::{NPF_FINAL_TRANSLATION, NPF_GUEST_TABLE, NPF_P, NPF_U, NPF_W};

    const RWU: u64 = PTE_P | PTE_RW | PTE_US;
    /// Nested tables at 0x1000..0x4000 mapping guest-physical 0..2 MiB to system-physical
    /// 0x10_0000 + gpa with 4-KiB pages (PT at 0x4000).
    fn nested() -> (GuestMemory, NestedPaging) {
        let mut m = GuestMemory::new(MemoryMap::flat(4 << 20)).unwrap();
        m.write_u64(Gpa(0x1000), 0x2000 | RWU);
        m.write_u64(Gpa(0x2000), 0x3000 | RWU);
        m.write_u64(Gpa(0x3000), 0x4000 | RWU);
        for i in 0..512u64 {
            m.write_u64(Gpa(0x4000 + 8 * i), (0x10_0000 + (i << 12)) | RWU);
        }
        let np = NestedPaging::from_host(0x1000, cr4::PAE, efer::LMA | efer::NXE, 40);
        (m, np)
    }

    /// Guest 4-level tables at guest-physical 0x10000.. mapping linear 0x40_0000 to
    /// guest-physical 0x5000.
    fn guest_tables(m: &mut GuestMemory) -> WalkConfig {
        let s = |g: u64| Gpa(0x10_0000 + g);
        m.write_u64(s(0x10000), 0x11000 | RWU);
        m.write_u64(s(0x11000), 0x12000 | RWU);
        m.write_u64(s(0x12000 + 2 * 8), 0x13000 | RWU);
        m.write_u64(s(0x13000), 0x5000 | RWU);
        WalkConfig {
            mode: PagingMode::Long4,
            cr3: 0x10000,
            wp: true,
            pse: true,
            nxe: true,
            smep: false,
            smap: false,
            pke: false,
            pkru: 0,
            pdptes: None,
            maxphyaddr: 40,
        }
    }

    const READ: Access = Access { kind: AccessKind::Read, user: false, smap_override: false };

    /// APM §15.25: a guest linear address goes through both tables; the guest's A bits
    /// are set at their system-physical addresses.
    #[test]
    fn two_dimensional_walk_translates_and_sets_guest_accessed() {
        let (mut m, np) = nested();
        let cfg = guest_tables(&mut m);
        let t = walk(&mut m, &cfg, &np, true, Gva(0x40_0123), READ).unwrap();
        assert_eq!(t.guest.unwrap().gpa, Gpa(0x5123));
        assert_eq!(t.nested.gpa, Gpa(0x10_5123));
        assert_ne!(m.read_u64(Gpa(0x11_3000)) & PTE_A, 0);
    }

    /// APM §15.25.6: a not-present nested entry for a guest table is a #NPF with bit 33,
    /// checked as a user write; for the final address, bit 32.
    #[test]
    fn nested_faults_on_guest_table_and_final_address() {
        let (mut m, np) = nested();
        let cfg = guest_tables(&mut m);
        m.write_u64(Gpa(0x4000 + 8 * 0x12), 0);
        let e = walk(&mut m, &cfg, &np, true, Gva(0x40_0000), READ).unwrap_err();
        let NptFault::Nested(f) = e else { panic!("{e:?}") };
        assert_eq!((f.gpa, f.exitinfo1), (Gpa(0x12010), NPF_W | NPF_U | NPF_GUEST_TABLE));
        m.write_u64(Gpa(0x4000 + 8 * 0x12), 0x11_2000 | RWU);
        m.write_u64(Gpa(0x4000 + 8 * 5), (0x10_5000) | PTE_P | PTE_US);
        let w = Access { kind: AccessKind::Write, ..READ };
        let e = walk(&mut m, &cfg, &np, true, Gva(0x40_0008), w).unwrap_err();
        let NptFault::Nested(f) = e else { panic!("{e:?}") };
        assert_eq!(
            (f.gpa, f.exitinfo1),
            (Gpa(0x5008), NPF_P | NPF_W | NPF_U | NPF_FINAL_TRANSLATION)
        );
        // The guest's dirty flag was not set: the final translation failed first.
        assert_eq!(m.read_u64(Gpa(0x11_3000)) & PTE_D, 0);
    }

    /// §15.25: a legacy PAE guest's PDPTE is read through the nested tables (no PDPTE
    /// registers), and without guest paging the linear address is the guest-physical
    /// address.
    #[test]
    fn pae_guest_and_unpaged_guest() {
        let (mut m, np) = nested();
        let s = |g: u64| Gpa(0x10_0000 + g);
        // PDPT at guest-physical 0x20020 (32-byte aligned), PD at 0x21000, PT 0x22000.
        m.write_u64(s(0x20020), 0x21000 | PTE_P);
        m.write_u64(s(0x21000), 0x22000 | RWU);
        m.write_u64(s(0x22000 + 8 * 3), 0x6000 | RWU);
        let cfg = WalkConfig {
            mode: PagingMode::Pae,
            cr3: 0x20020,
            wp: true,
            pse: true,
            nxe: true,
            smep: false,
            smap: false,
            pke: false,
            pkru: 0,
            pdptes: None,
            maxphyaddr: 40,
        };
        let t = walk(&mut m, &cfg, &np, true, Gva(0x3042), READ).unwrap();
        assert_eq!((t.guest.unwrap().gpa, t.nested.gpa), (Gpa(0x6042), Gpa(0x10_6042)));
        // The PDPT page unmapped in the nested tables: a guest-table #NPF at the PDPTE.
        m.write_u64(Gpa(0x4000 + 8 * 0x20), 0);
        let e = walk(&mut m, &cfg, &np, true, Gva(0x3042), READ).unwrap_err();
        assert!(matches!(e, NptFault::Nested(f) if f.gpa == Gpa(0x20020)));
        let t = walk(&mut m, &cfg, &np, false, Gva(0x7008), READ).unwrap();
        assert_eq!((t.guest, t.nested.gpa), (None, Gpa(0x10_7008)));
    }

    /// §15.25.6: a guest page fault comes before the final translation's #NPF.
    #[test]
    fn guest_fault_wins_over_final_nested_fault() {
        let (mut m, np) = nested();
        let cfg = guest_tables(&mut m);
        m.write_u64(Gpa(0x4000 + 8 * 5), 0);
        m.write_u64(Gpa(0x11_3000), 0x5000 | PTE_P | PTE_US);
        let w = Access { kind: AccessKind::Write, user: true, smap_override: false };
        let e = walk(&mut m, &cfg, &np, true, Gva(0x40_0000), w).unwrap_err();
        assert!(matches!(e, NptFault::Guest(pf) if pf.error_code == PFEC_P | PFEC_W | PFEC_U));
    }
}
