//! Guest page walks for the x86 paging modes: 32-bit (with PSE and PSE-36), PAE, 4-level
//! and 5-level (SDM Vol. 3A ch. 4 "Paging").
//!
//! A walk either returns the translation with its effective permissions or the page
//! fault with its exact error code (SDM Vol. 3A §4.7 "Page-Fault Exceptions"), including
//! protection keys (§4.6.2) and SMEP/SMAP. PAE walks can start from the CPU's PDPTE
//! registers (§4.4.1, `WalkConfig::pdptes`). Accessed and dirty bits are set with
//! compare-exchange, as hardware does, once the access is known to be permitted.

use crate::addr::{Gpa, Gva};
use crate::memory::GuestMemory;

/// Present.
pub const PTE_P: u64 = 1 << 0;
/// Read/write.
pub const PTE_RW: u64 = 1 << 1;
/// User/supervisor.
pub const PTE_US: u64 = 1 << 2;
/// Accessed.
pub const PTE_A: u64 = 1 << 5;
/// Dirty.
pub const PTE_D: u64 = 1 << 6;
/// Page size (in a PDE/PDPTE).
pub const PTE_PS: u64 = 1 << 7;
/// Global.
pub const PTE_G: u64 = 1 << 8;
/// Execute-disable (PAE and 4/5-level formats).
pub const PTE_NX: u64 = 1 << 63;
/// Shift of the protection key in a 4/5-level leaf entry (bits 62:59, SDM Vol. 3A
/// §4.6.2 "Protection Keys").
pub const PTE_PKEY_SHIFT: u32 = 59;

/// PKRU: access-disable bit of key `i` is bit `2i`.
pub const PKRU_AD: u32 = 1 << 0;
/// PKRU: write-disable bit of key `i` is bit `2i + 1`.
pub const PKRU_WD: u32 = 1 << 1;

/// #PF error code: the fault was a protection violation (page present).
pub const PFEC_P: u32 = 1 << 0;
/// #PF error code: the access was a write.
pub const PFEC_W: u32 = 1 << 1;
/// #PF error code: the access was a user-mode access.
pub const PFEC_U: u32 = 1 << 2;
/// #PF error code: a reserved bit was set in a paging-structure entry.
pub const PFEC_RSVD: u32 = 1 << 3;
/// #PF error code: the access was an instruction fetch.
pub const PFEC_I: u32 = 1 << 4;
/// #PF error code: protection-key violation.
pub const PFEC_PK: u32 = 1 << 5;

/// The paging mode, from CR0.PG, CR4.PAE, EFER.LMA and CR4.LA57.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PagingMode {
    /// 32-bit paging (two levels of 4-byte entries).
    Legacy32,
    /// PAE paging (PDPT + two levels of 8-byte entries).
    Pae,
    /// 4-level paging.
    Long4,
    /// 5-level paging.
    Long5,
}

/// The kind of access being translated.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AccessKind {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Fetch,
}

/// Everything besides the address that decides a walk's outcome.
#[derive(Copy, Clone, Debug)]
pub struct WalkConfig {
    /// The paging mode.
    pub mode: PagingMode,
    /// CR3.
    pub cr3: u64,
    /// CR0.WP.
    pub wp: bool,
    /// CR4.PSE (32-bit paging large pages).
    pub pse: bool,
    /// EFER.NXE.
    pub nxe: bool,
    /// CR4.SMEP.
    pub smep: bool,
    /// CR4.SMAP.
    pub smap: bool,
    /// CR4.PKE (protection keys for user-mode pages; effective with 4/5-level paging).
    pub pke: bool,
    /// The PKRU register (used when `pke`).
    pub pkru: u32,
    /// PAE paging: the four PDPTEs the CPU loaded from CR3 at the last MOV CR0/CR3/CR4
    /// (SDM Vol. 3A §4.4.1 "PDPTE Registers"). `None` reads them from memory at walk
    /// time, as a table walker without PDPTE registers (for example a nested walk) does.
    pub pdptes: Option<[u64; 4]>,
    /// MAXPHYADDR of the CPU model.
    pub maxphyaddr: u8,
}

/// The access being translated.
#[derive(Copy, Clone, Debug)]
pub struct Access {
    /// Read, write or fetch.
    pub kind: AccessKind,
    /// A user-mode access (CPL 3 and not an implicit supervisor access).
    pub user: bool,
    /// SMAP does not apply (a supervisor data access with EFLAGS.AC=1, not implicit).
    pub smap_override: bool,
}

/// A successful translation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The guest physical address of the byte translated.
    pub gpa: Gpa,
    /// Size of the page that maps it (4 KiB, 2 MiB, 4 MiB or 1 GiB).
    pub page_size: u64,
    /// Writable at every level.
    pub writable: bool,
    /// User-accessible at every level.
    pub user: bool,
    /// Executable (no NX at any level, or NXE clear).
    pub executable: bool,
    /// The leaf entry is global.
    pub global: bool,
    /// The protection key of the leaf (bits 62:59) with 4/5-level paging, else 0.
    pub pkey: u8,
    /// The leaf entry (after A/D updates).
    pub leaf: u64,
    /// Physical address of the leaf entry.
    pub leaf_gpa: Gpa,
}

/// A page fault found by a walk.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PageFault {
    /// The linear address (CR2).
    pub addr: Gva,
    /// The error code.
    pub error_code: u32,
    /// The level whose entry failed (1 = PTE); for permission faults, the leaf level.
    pub level: u8,
}

/// Bits `lo..=hi` set.
const fn bits(lo: u32, hi: u32) -> u64 {
    (u64::MAX >> (63 - hi)) & !((1u64 << lo) - 1)
}

/// The reserved bits of a PAE PDPTE: 2:1, 8:5 and 63:MAXPHYADDR (SDM Vol. 3A §4.4.1
/// "PDPTE Registers", Table 4-8). A present PDPTE with one set makes the MOV to CR0,
/// CR3 or CR4 that loads it fault with #GP(0).
pub const fn pdpte_reserved_bits(maxphyaddr: u8) -> u64 {
    bits(1, 2) | bits(5, 8) | bits(maxphyaddr as u32, 63)
}

/// Loads the four PAE PDPTEs from the 32-byte-aligned table CR3 points to (SDM Vol. 3A
/// §4.4.1): `None` if a present one has a reserved bit set (the caller raises #GP(0)).
pub fn load_pdptes(mem: &mut GuestMemory, cr3: u64, maxphyaddr: u8) -> Option<[u64; 4]> {
    let base = cr3 & 0xFFFF_FFE0;
    let mut pdptes = [0u64; 4];
    for (i, e) in pdptes.iter_mut().enumerate() {
        *e = mem.read_u64(Gpa(base + 8 * i as u64));
        if *e & PTE_P != 0 && *e & pdpte_reserved_bits(maxphyaddr) != 0 {
            return None;
        }
    }
    Some(pdptes)
}

impl WalkConfig {
    fn pa_mask(&self) -> u64 {
        ((1u64 << self.maxphyaddr) - 1) & !0xFFF
    }

    /// Whether the mode is IA-32e paging (4- or 5-level).
    fn ia32e(&self) -> bool {
        matches!(self.mode, PagingMode::Long4 | PagingMode::Long5)
    }

    /// Reserved bits of a non-leaf or leaf entry at `level` (SDM Vol. 3A §4.4.2 Tables
    /// 4-8 to 4-11 for PAE, §4.5.4 Tables 4-15 to 4-20 for 4/5-level), for the 8-byte
    /// formats. PAE reserves bits 62:MAXPHYADDR, 4/5-level only 51:MAXPHYADDR (62:52 are
    /// ignored, 62:59 hold the protection key). Bit 63 (XD) is reserved when NXE = 0.
    pub fn reserved_mask(&self, level: u8, entry: u64) -> u64 {
        let m = u32::from(self.maxphyaddr);
        if self.mode == PagingMode::Pae && level == 3 {
            return pdpte_reserved_bits(self.maxphyaddr);
        }
        let high = if self.mode == PagingMode::Pae { bits(m, 62) } else { bits(m, 51) };
        let nx = if self.nxe { 0 } else { PTE_NX };
        let mut rsvd = high | nx;
        match level {
            5 | 4 => rsvd |= PTE_PS,
            3 if entry & PTE_PS != 0 => rsvd |= bits(13, 29), // 1 GiB page
            2 if entry & PTE_PS != 0 => rsvd |= bits(13, 20), // 2 MiB page
            _ => {}
        }
        rsvd
    }
}

/// Walks the guest page tables for `addr`, setting accessed and dirty flags as the
/// processor does.
#[inline]
pub fn walk(
    mem: &mut GuestMemory,
    cfg: &WalkConfig,
    addr: Gva,
    access: Access,
) -> Result<Translation, PageFault> {
    walk_with(mem, cfg, addr, access, true)
}

/// Walks the guest page tables like [`walk`] but without touching the accessed and dirty
/// flags: a look at the tables that the guest cannot observe (debugger accesses,
/// reports). The leaf in the answer is the entry as it is in memory.
pub fn peek(
    mem: &mut GuestMemory,
    cfg: &WalkConfig,
    addr: Gva,
    access: Access,
) -> Result<Translation, PageFault> {
    walk_with(mem, cfg, addr, access, false)
}

fn walk_with(
    mem: &mut GuestMemory,
    cfg: &WalkConfig,
    addr: Gva,
    access: Access,
    update_ad: bool,
) -> Result<Translation, PageFault> {
    let fetch = access.kind == AccessKind::Fetch;
    let write = access.kind == AccessKind::Write;
    let base_code = (if write { PFEC_W } else { 0 })
        | (if access.user { PFEC_U } else { 0 })
        // SDM Vol. 3A §4.7: I is set for fetches if SMEP = 1, or if NXE = 1 with a
        // paging mode that has the XD bit (not 32-bit paging).
        | (if fetch && (cfg.smep || (cfg.nxe && cfg.mode != PagingMode::Legacy32)) {
            PFEC_I
        } else {
            0
        });
    let fault = |code: u32, level: u8| PageFault { addr, error_code: base_code | code, level };

    let mut writable = true;
    let mut user = true;
    let mut nx = false;
    // (entry gpa, entry value, size) of every entry used, to set A/D after the checks.
    let mut used: [(Gpa, u64, bool); 5] = [(Gpa(0), 0, false); 5];
    let mut nused = 0;
    let leaf: u64;
    let leaf_gpa: Gpa;
    let page_size: u64;
    let gpa: u64;

    if cfg.mode == PagingMode::Legacy32 {
        let a = addr.0 & 0xFFFF_FFFF;
        let pde_gpa = Gpa((cfg.cr3 & 0xFFFF_F000) + ((a >> 22) << 2));
        let pde = u64::from(mem.read_u32(pde_gpa));
        if pde & PTE_P == 0 {
            return Err(fault(0, 2));
        }
        writable &= pde & PTE_RW != 0;
        user &= pde & PTE_US != 0;
        used[0] = (pde_gpa, pde, true);
        nused = 1;
        if pde & PTE_PS != 0 && cfg.pse {
            // 4 MiB page; PSE-36 supplies physical bits 39:32 from PDE bits 20:13.
            let high = ((pde >> 13) & 0xFF) << 32;
            let rsvd = (1u64 << 21) | (!((1u64 << cfg.maxphyaddr.min(40)) - 1) >> 19 & 0x1F_E000);
            if pde & rsvd != 0 {
                return Err(fault(PFEC_P | PFEC_RSVD, 2));
            }
            page_size = 4 << 20;
            gpa = (pde & 0xFFC0_0000) | high | (a & 0x3F_FFFF);
            leaf = pde;
            leaf_gpa = pde_gpa;
        } else {
            let pte_gpa = Gpa((pde & 0xFFFF_F000) + (((a >> 12) & 0x3FF) << 2));
            let pte = u64::from(mem.read_u32(pte_gpa));
            if pte & PTE_P == 0 {
                return Err(fault(0, 1));
            }
            writable &= pte & PTE_RW != 0;
            user &= pte & PTE_US != 0;
            used[1] = (pte_gpa, pte, true);
            nused = 2;
            page_size = 4096;
            gpa = (pte & 0xFFFF_F000) | (a & 0xFFF);
            leaf = pte;
            leaf_gpa = pte_gpa;
        }
    } else {
        let (mut level, mut table) = match cfg.mode {
            PagingMode::Pae => {
                let idx = ((addr.0 & 0xFFFF_FFFF) >> 30) as usize;
                let pdpte = match cfg.pdptes {
                    Some(p) => p[idx],
                    None => mem.read_u64(Gpa((cfg.cr3 & 0xFFFF_FFE0) + 8 * idx as u64)),
                };
                if pdpte & PTE_P == 0 {
                    return Err(fault(0, 3));
                }
                if pdpte & cfg.reserved_mask(3, pdpte) != 0 {
                    return Err(fault(PFEC_P | PFEC_RSVD, 3));
                }
                (2u8, pdpte & cfg.pa_mask())
            }
            PagingMode::Long4 => (4, cfg.cr3 & cfg.pa_mask()),
            PagingMode::Long5 => (5, cfg.cr3 & cfg.pa_mask()),
            PagingMode::Legacy32 => unreachable_mode(),
        };
        loop {
            let shift = 12 + 9 * (u32::from(level) - 1);
            let idx = (addr.0 >> shift) & 0x1FF;
            let e_gpa = Gpa(table + idx * 8);
            let e = mem.read_u64(e_gpa);
            if e & PTE_P == 0 {
                return Err(fault(0, level));
            }
            if e & cfg.reserved_mask(level, e) != 0 {
                return Err(fault(PFEC_P | PFEC_RSVD, level));
            }
            writable &= e & PTE_RW != 0;
            user &= e & PTE_US != 0;
            nx |= cfg.nxe && e & PTE_NX != 0;
            used[nused] = (e_gpa, e, false);
            nused += 1;
            let is_leaf = level == 1 || (level <= 3 && e & PTE_PS != 0);
            if is_leaf {
                page_size = 1u64 << shift;
                let frame = e & cfg.pa_mask() & !(page_size - 1);
                gpa = frame | (addr.0 & (page_size - 1));
                leaf = e;
                leaf_gpa = e_gpa;
                break;
            }
            table = e & cfg.pa_mask();
            level -= 1;
        }
    }

    let leaf_level = if page_size >= 1 << 30 {
        3
    } else if page_size >= 2 << 20 {
        2
    } else {
        1
    };
    let pkey = if cfg.ia32e() { ((leaf >> PTE_PKEY_SHIFT) & 0xF) as u8 } else { 0 };
    if let Some(pfec) = access_fault(cfg, &access, leaf, user, writable, nx) {
        return Err(fault(pfec, leaf_level));
    }

    // Accessed flags on every entry used, dirty on the leaf for writes.
    let mut final_leaf = leaf;
    for (i, &(e_gpa, e, narrow)) in used[..nused].iter().enumerate() {
        let is_leaf = i == nused - 1;
        let mut new = e | PTE_A;
        if is_leaf && write {
            new |= PTE_D;
        }
        if !update_ad {
            new = e;
        }
        if new != e {
            if narrow {
                mem.cmpxchg_u32(e_gpa, e as u32, new as u32);
            } else {
                mem.cmpxchg_u64(e_gpa, e, new);
            }
        }
        if is_leaf {
            final_leaf = new;
        }
    }

    Ok(Translation {
        gpa: Gpa(gpa),
        page_size,
        writable,
        user,
        executable: !nx,
        global: leaf & PTE_G != 0,
        pkey,
        leaf: final_leaf,
        leaf_gpa,
    })
}

/// The access-rights and protection-key checks of a completed walk whose entries gave
/// the combined `user`, `writable` and `nx` permissions and whose leaf entry is `leaf`:
/// the page-fault error bits (P, and PK when the key check failed) if `access` is denied.
/// Shared by the native walker and the two-dimensional walks of nested paging and EPT.
///
/// Access rights, SDM Vol. 3A §4.6 "Access Rights". Protection keys, §4.6.2: with IA-32e
/// paging and CR4.PKE = 1, data accesses to user-mode addresses (user or supervisor mode)
/// are checked against PKRU[key]: AD forbids every data access, WD forbids user-mode
/// writes and, if CR0.WP = 1, supervisor-mode writes. §4.7: PK is reported whenever this
/// check fails, whether or not another access-rights check failed as well.
#[inline]
pub fn access_fault(
    cfg: &WalkConfig,
    access: &Access,
    leaf: u64,
    user: bool,
    writable: bool,
    nx: bool,
) -> Option<u32> {
    let write = access.kind == AccessKind::Write;
    let fetch = access.kind == AccessKind::Fetch;
    let denied = if access.user {
        !user || (write && !writable) || (fetch && nx)
    } else if fetch {
        nx || (cfg.smep && user)
    } else {
        (write && !writable && cfg.wp) || (cfg.smap && user && !access.smap_override)
    };
    let pkey = if cfg.ia32e() { ((leaf >> PTE_PKEY_SHIFT) & 0xF) as u32 } else { 0 };
    let pk_denied = cfg.pke && cfg.ia32e() && user && !fetch && {
        let k = cfg.pkru >> (2 * pkey);
        k & PKRU_AD != 0 || (k & PKRU_WD != 0 && write && (access.user || cfg.wp))
    };
    (denied || pk_denied).then_some(PFEC_P | if pk_denied { PFEC_PK } else { 0 })
}

#[inline(always)]
fn unreachable_mode() -> (u8, u64) {
    // Legacy32 is handled before the multi-level loop.
    (1, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryMap;

    fn cfg(mode: PagingMode, cr3: u64) -> WalkConfig {
        WalkConfig {
            mode,
            cr3,
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
    const R: Access = Access { kind: AccessKind::Read, user: false, smap_override: false };
    const W: Access = Access { kind: AccessKind::Write, user: false, smap_override: false };
    const UR: Access = Access { kind: AccessKind::Read, user: true, smap_override: false };
    const UX: Access = Access { kind: AccessKind::Fetch, user: true, smap_override: false };

    fn long4() -> GuestMemory {
        let mut m = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
        // PML4[0] -> PDPT at 0x2000 -> PD at 0x3000 -> PT at 0x4000; PD[1] is a 2 MiB page.
        m.write_u64(Gpa(0x1000), 0x2000 | 7);
        m.write_u64(Gpa(0x2000), 0x3000 | 7);
        m.write_u64(Gpa(0x3000), 0x4000 | 7);
        m.write_u64(Gpa(0x3008), 0x20_0000 | PTE_PS | PTE_P | PTE_RW);
        m.write_u64(Gpa(0x4000 + 5 * 8), 0x9000 | PTE_P | PTE_US | PTE_NX);
        m
    }

    #[test]
    fn four_level_4k_and_2m() {
        let mut m = long4();
        let c = cfg(PagingMode::Long4, 0x1000);
        let t = walk(&mut m, &c, Gva(0x5123), R).unwrap();
        assert_eq!(t.gpa, Gpa(0x9123));
        assert!(!t.writable && t.user && !t.executable);
        assert_ne!(m.read_u64(Gpa(0x4028)) & PTE_A, 0);
        let t = walk(&mut m, &c, Gva(0x2F_0001), W).unwrap();
        assert_eq!((t.gpa, t.page_size), (Gpa(0x2F_0001), 2 << 20));
        assert_ne!(m.read_u64(Gpa(0x3008)) & PTE_D, 0);
    }

    #[test]
    fn peek_translates_without_touching_accessed_or_dirty() {
        let mut m = long4();
        let c = cfg(PagingMode::Long4, 0x1000);
        let t = peek(&mut m, &c, Gva(0x2F_0001), W).unwrap();
        assert_eq!(t.gpa, Gpa(0x2F_0001));
        for e in [0x1000u64, 0x2000, 0x3008] {
            assert_eq!(m.read_u64(Gpa(e)) & (PTE_A | PTE_D), 0, "entry at {e:#x}");
        }
        // Faults are found the same way.
        assert_eq!(peek(&mut m, &c, Gva(0x6000), R).unwrap_err().error_code, 0);
    }

    #[test]
    fn permission_faults_have_exact_error_codes() {
        let mut m = long4();
        let c = cfg(PagingMode::Long4, 0x1000);
        // Not present.
        assert_eq!(walk(&mut m, &c, Gva(0x6000), R).unwrap_err().error_code, 0);
        // Supervisor write to a read-only page with WP=1.
        assert_eq!(walk(&mut m, &c, Gva(0x5000), W).unwrap_err().error_code, PFEC_P | PFEC_W);
        // WP=0 lets the supervisor write.
        let c0 = WalkConfig { wp: false, ..c };
        assert!(walk(&mut m, &c0, Gva(0x5000), W).is_ok());
        // User fetch from an NX page.
        assert_eq!(
            walk(&mut m, &c, Gva(0x5000), UX).unwrap_err().error_code,
            PFEC_P | PFEC_U | PFEC_I
        );
        // User read of a supervisor 2 MiB page.
        assert_eq!(walk(&mut m, &c, Gva(0x20_0000), UR).unwrap_err().error_code, PFEC_P | PFEC_U);
        // Reserved bit (bit 45 > MAXPHYADDR) in the PTE.
        m.write_u64(Gpa(0x4000 + 6 * 8), (1 << 45) | 0x9000 | 1);
        assert_eq!(walk(&mut m, &c, Gva(0x6000), R).unwrap_err().error_code, PFEC_P | PFEC_RSVD);
        // SMAP and SMEP.
        let cs = WalkConfig { smap: true, smep: true, ..c };
        assert!(walk(&mut m, &cs, Gva(0x5000), R).is_err());
        let ovr = Access { smap_override: true, ..R };
        assert!(walk(&mut m, &cs, Gva(0x5000), ovr).is_ok());
    }

    #[test]
    fn legacy_32bit_with_pse() {
        let mut m = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
        m.write_u32(Gpa(0x1000), 0x2000 | 7); // PDE[0] -> PT
        m.write_u32(Gpa(0x2000 + 3 * 4), 0x7000 | 3);
        m.write_u32(Gpa(0x1004), 0x0040_0000 | (PTE_PS | 3) as u32); // 4 MiB page
        let c = cfg(PagingMode::Legacy32, 0x1000);
        assert_eq!(walk(&mut m, &c, Gva(0x3456), R).unwrap().gpa, Gpa(0x7456));
        let t = walk(&mut m, &c, Gva(0x0041_2345), R).unwrap();
        assert_eq!((t.gpa, t.page_size), (Gpa(0x0041_2345), 4 << 20));
        assert_eq!(m.read_u32(Gpa(0x1004)) & PTE_A as u32, PTE_A as u32);
        // PSE-36: PDE bits 20:13 are physical-address bits 39:32 (SDM Vol. 3A §4.3,
        // Table 4-4).
        m.write_u32(Gpa(0x1008), 0x0080_0000 | (0x9A << 13) | (PTE_PS | 3) as u32);
        let t = walk(&mut m, &c, Gva(0x0081_0001), R).unwrap();
        assert_eq!(t.gpa, Gpa(0x9A_0081_0001));
        // Without CR4.PSE the PS bit is ignored and the PDE points to a page table.
        m.write_u32(Gpa(0x100C), 0x5000 | (PTE_PS | 3) as u32);
        m.write_u32(Gpa(0x5000), 0x7000 | 3);
        assert_eq!(walk(&mut m, &c, Gva(0x00C0_0010), R).unwrap().gpa, Gpa(0x2_0000_0010));
        let c = WalkConfig { pse: false, ..c };
        assert_eq!(walk(&mut m, &c, Gva(0x00C0_0010), R).unwrap().gpa, Gpa(0x7010));
    }

    #[test]
    fn pae_walk() {
        let mut m = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
        m.write_u64(Gpa(0x1000 + 8), 0x2000 | 1); // PDPTE[1]
        m.write_u64(Gpa(0x2000), 0x3000 | 7);
        m.write_u64(Gpa(0x3000 + 8), 0x8000 | 7);
        let c = cfg(PagingMode::Pae, 0x1000);
        assert_eq!(walk(&mut m, &c, Gva(0x4000_1010), W).unwrap().gpa, Gpa(0x8010));
        m.write_u64(Gpa(0x1000 + 8), 0x2000 | 1 | 2); // reserved bit 1 in a PDPTE
        assert_eq!(
            walk(&mut m, &c, Gva(0x4000_1010), R).unwrap_err().error_code,
            PFEC_P | PFEC_RSVD
        );
    }

    #[test]
    fn cached_pdptes_are_used_instead_of_memory() {
        // SDM Vol. 3A §4.4.1: PAE walks use the PDPTE registers.
        let mut m = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
        m.write_u64(Gpa(0x2000), 0x3000 | 7);
        m.write_u64(Gpa(0x3000 + 8), 0x8000 | 7);
        let mut c = cfg(PagingMode::Pae, 0x1000);
        // Memory says not present; the register says present.
        c.pdptes = Some([0, 0x2000 | 1, 0, 0]);
        assert_eq!(walk(&mut m, &c, Gva(0x4000_1010), R).unwrap().gpa, Gpa(0x8010));
        c.pdptes = Some([0; 4]);
        assert_eq!(walk(&mut m, &c, Gva(0x4000_1010), R).unwrap_err().error_code, 0);
        // Loading checks reserved bits of present entries only.
        m.write_u64(Gpa(0x1000), 0x2000 | 1);
        m.write_u64(Gpa(0x1008), 0x1E6);
        assert_eq!(load_pdptes(&mut m, 0x1000, 40), Some([0x2001, 0x1E6, 0, 0]));
        m.write_u64(Gpa(0x1010), 0x2000 | 1 | (1 << 63));
        assert_eq!(load_pdptes(&mut m, 0x1000, 40), None);
    }

    #[test]
    fn protection_keys() {
        // SDM Vol. 3A §4.6.2.
        let mut m = long4();
        m.write_u64(Gpa(0x4000 + 7 * 8), 0xA000 | 7 | (3 << PTE_PKEY_SHIFT));
        let c = WalkConfig { pke: true, pkru: PKRU_WD << 6, ..cfg(PagingMode::Long4, 0x1000) };
        let t = walk(&mut m, &c, Gva(0x7000), UR).unwrap();
        assert_eq!(t.pkey, 3);
        let uw = Access { kind: AccessKind::Write, user: true, smap_override: false };
        assert_eq!(
            walk(&mut m, &c, Gva(0x7000), uw).unwrap_err().error_code,
            PFEC_P | PFEC_W | PFEC_U | PFEC_PK
        );
        assert_eq!(
            walk(&mut m, &c, Gva(0x7000), W).unwrap_err().error_code,
            PFEC_P | PFEC_W | PFEC_PK
        );
        assert!(walk(&mut m, &WalkConfig { wp: false, ..c }, Gva(0x7000), W).is_ok());
        let ad = WalkConfig { pkru: PKRU_AD << 6, ..c };
        assert_eq!(walk(&mut m, &ad, Gva(0x7000), R).unwrap_err().error_code, PFEC_P | PFEC_PK);
        assert!(walk(&mut m, &ad, Gva(0x7000), UX).is_ok(), "fetches are not checked");
    }

    #[test]
    fn fetch_error_code_i_depends_on_mode() {
        // SDM Vol. 3A §4.7: I needs SMEP, or NXE with a paging mode that has XD.
        let mut m = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
        let c = cfg(PagingMode::Legacy32, 0x1000);
        assert_eq!(walk(&mut m, &c, Gva(0x3000), UX).unwrap_err().error_code, PFEC_U);
        let c = WalkConfig { smep: true, ..c };
        assert_eq!(walk(&mut m, &c, Gva(0x3000), UX).unwrap_err().error_code, PFEC_U | PFEC_I);
        let mut m = long4();
        let c = cfg(PagingMode::Long4, 0x1000);
        assert_eq!(walk(&mut m, &c, Gva(0x6000), UX).unwrap_err().error_code, PFEC_U | PFEC_I);
    }

    #[test]
    fn pae_reserves_bits_62_to_maxphyaddr() {
        // PAE PDEs/PTEs reserve bits 62:M; 4-level entries ignore 62:52.
        let mut m = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
        m.write_u64(Gpa(0x2000), 0x3000 | 7);
        m.write_u64(Gpa(0x3000), 0x8000 | 7 | (1 << 55));
        let c = WalkConfig { pdptes: Some([0x2001, 0, 0, 0]), ..cfg(PagingMode::Pae, 0x1000) };
        assert_eq!(walk(&mut m, &c, Gva(0x10), R).unwrap_err().error_code, PFEC_P | PFEC_RSVD);
        let mut m = long4();
        m.write_u64(Gpa(0x4000 + 5 * 8), 0x9000 | 7 | (1 << 55));
        assert!(walk(&mut m, &cfg(PagingMode::Long4, 0x1000), Gva(0x5000), R).is_ok());
    }
}
