//! EPT in VMX non-root operation (SDM Vol. 3C ch. 29 "VMX Support for Address
//! Translation", §29.3 "The Extended Page Table Mechanism (EPT)"): with "enable EPT" every
//! guest-physical address L2 uses (each access to its own paging structures, the final
//! translation of a linear address, and, with paging off under "unrestricted guest",
//! every linear address) is translated through the EPT paging structures at the EPTP
//! ([`hvsim_mmu::ept::walk`]) into L1's physical address space.
//!
//! Rules followed here:
//! - The guest walk (with its access-rights checks) completes before the final
//!   guest-physical address is translated, so a guest #PF wins over an EPT violation of
//!   the final access; guest A/D flags are written only once the final translation
//!   succeeded (§29.3.3 "EPT-Induced VM Exits").
//! - A guest paging-structure entry is read through the EPT; when its A/D flags must be
//!   set and EPT A/D flags are off, the update is a separate write access to the entry
//!   (with EPT A/D on, the read already counts as a write, §29.3.5 "Accessed and Dirty
//!   Flags for EPT").
//! - PAE guests use PDPTE registers: loaded at VM entry from the VMCS PDPTE fields
//!   (§27.3.2.4 "Loading Page-Directory-Pointer-Table Entries") and by MOV to CR0/CR3/CR4
//!   through the EPT, where an EPT violation has a guest linear-address field that is
//!   not valid (Table 28-7, bit 7).
//! - Exit qualification of an EPT violation (Table 28-7): the access (bits 2:0) and
//!   permissions (bits 5:3) come from the walker; bits 7/8 from the origin; with the
//!   advanced VM-exit information of IA32_VMX_EPT_VPID_CAP bit 22, bits 9-11 describe the
//!   guest translation of the linear address; bit 12 is "NMI unblocking due to IRET".
//!
//! Translations are cached only in the front-end TLB, which every VM entry and VM exit
//! flushes; the shadow page cache keeps L1's own translations only.

use crate::cpu::access::{PageRef, Privilege, MAXPHYADDR};
use crate::cpu::fault::{gp, ud, unsupported, ExecResult, Fault};
use crate::cpu::flags;
use crate::cpu::insn::Insn;
use crate::cpu::interrupt::{Event, EventSource};
use crate::cpu::regs::cr4;
use crate::cpu::tlb::{TLB_SW, TLB_U, TLB_W, TLB_X};
use crate::cpu::vector;
use crate::machine::{Machine, StopReason};
use hvsim_decoder::iced::Mnemonic;
use hvsim_mmu::ept::{
    self as mmu_ept, EptAccess, EptCaps, EptFault, EptOrigin, EptTranslation,
    QUAL_EXECUTE_DISABLE_LINEAR, QUAL_NMI_UNBLOCKING, QUAL_USER_LINEAR, QUAL_WRITABLE_LINEAR,
};
use hvsim_mmu::memory::GuestMemory;
use hvsim_mmu::paging::{
    self, Access, AccessKind, PageFault, PagingMode, Translation, WalkConfig, PFEC_I, PFEC_P,
    PFEC_RSVD, PFEC_U, PFEC_W, PKRU_AD, PKRU_WD, PTE_A, PTE_D, PTE_G, PTE_NX, PTE_P,
    PTE_PKEY_SHIFT, PTE_PS, PTE_RW, PTE_US,
};
use hvsim_mmu::{Gpa, Gva};
use hvsim_vmx_model::capabilities::ept_vpid_cap as cap;
use hvsim_vmx_model::controls::proc2;
use hvsim_vmx_model::exit_info::{InterruptionInfo, InterruptionType};
use hvsim_vmx_model::vmcs_fields as f;
use hvsim_vmx_model::{ExitInfo, VmxExitReason};

/// The EPT in effect for the running L2: the EPTP and the walker's view of the CPU's EPT
/// features, captured at VM entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EptContext {
    /// The EPT pointer (VMCS field EPT_POINTER).
    pub eptp: u64,
    /// What the walker supports (from IA32_VMX_EPT_VPID_CAP).
    pub caps: EptCaps,
}

impl EptContext {
    /// The EPT of `eptp` on a CPU reporting `ept_vpid_cap`.
    pub fn new(eptp: u64, ept_vpid_cap: u64) -> Self {
        Self {
            eptp,
            caps: EptCaps {
                execute_only: ept_vpid_cap & cap::EXECUTE_ONLY != 0,
                five_level: ept_vpid_cap & cap::PAGE_WALK_5 != 0,
                accessed_dirty: ept_vpid_cap & cap::ACCESS_DIRTY != 0,
                mode_based_execute: false,
                maxphyaddr: MAXPHYADDR,
            },
        }
    }

    /// EPT accessed and dirty flags are on (EPTP bit 6, if supported).
    pub fn ad(&self) -> bool {
        self.eptp & mmu_ept::EPTP_AD_ENABLE != 0 && self.caps.accessed_dirty
    }
}

/// An EPT-induced VM exit waiting for the run loop (the access ended the instruction or
/// the event delivery with [`Fault::NestedPageFault`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EptExit {
    /// EPT violation (exit reason 48).
    Violation {
        /// The guest-physical address.
        gpa: u64,
        /// The exit qualification without bit 12 (added at the exit).
        qualification: u64,
        /// The guest linear address, if the qualification says it is valid (bit 7).
        gla: Option<u64>,
    },
    /// EPT misconfiguration (exit reason 49).
    Misconfig {
        /// The guest-physical address.
        gpa: u64,
    },
}

/// Why a translation in L2 failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EptWalkFault {
    /// A guest page fault.
    Guest(PageFault),
    /// An EPT-induced VM exit.
    Ept(EptExit),
}

/// A successful translation of an L2 linear address.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EptTwoDim {
    /// The guest's translation (`gpa` guest-physical); `None` without guest paging.
    pub guest: Option<Translation>,
    /// The EPT translation of the final guest-physical address.
    pub ept: EptTranslation,
}

/// Translates guest-physical `gpa` through the EPT for an access of `kind` from `origin`;
/// `gla` is the linear address the access belongs to (reported when bit 7 says so), and
/// `advanced` the qualification bits 9-11 of a final translation.
fn translate_gpa(
    mem: &mut GuestMemory,
    ept: &EptContext,
    gpa: u64,
    kind: AccessKind,
    origin: EptOrigin,
    gla: u64,
    advanced: u64,
) -> Result<EptTranslation, EptWalkFault> {
    let access = EptAccess { kind, origin, user: false };
    mmu_ept::walk(mem, ept.eptp, &ept.caps, Gpa(gpa), access).map_err(|e| {
        EptWalkFault::Ept(match e {
            EptFault::Violation { gpa, qualification, .. } => EptExit::Violation {
                gpa: gpa.0,
                qualification: qualification | advanced,
                gla: (qualification & mmu_ept::QUAL_GLA_VALID != 0).then_some(gla),
            },
            EptFault::Misconfig { gpa, .. } => EptExit::Misconfig { gpa: gpa.0 },
            // The VM-entry check on the EPTP (27.2.1.1) keeps unsupported walk lengths
            // out; were one to reach here, no translation exists for any address.
            EptFault::InvalidEptp => EptExit::Misconfig { gpa },
        })
    })
}

/// One guest paging-structure entry read through the EPT.
#[derive(Copy, Clone)]
struct UsedEntry {
    /// Its guest-physical address.
    gpa: u64,
    /// Its L1-physical address.
    pa: Gpa,
    value: u64,
    narrow: bool,
}

/// Reads the guest paging-structure entry at guest-physical `gpa` (`narrow`: 4 bytes).
fn read_entry(
    mem: &mut GuestMemory,
    ept: &EptContext,
    gpa: u64,
    narrow: bool,
    gla: u64,
) -> Result<UsedEntry, EptWalkFault> {
    let t =
        translate_gpa(mem, ept, gpa, AccessKind::Read, EptOrigin::GuestPagingStructure, gla, 0)?;
    let value = if narrow { u64::from(mem.read_u32(t.gpa)) } else { mem.read_u64(t.gpa) };
    Ok(UsedEntry { gpa, pa: t.gpa, value, narrow })
}

/// Translates L2 linear address `lin` for `access`: the guest's paging structures (if
/// `guest_paging`; PAE walks use `cfg.pdptes`, the PDPTE registers) through the EPT, then
/// the final guest-physical address. Sets guest and EPT A/D flags as the processor does.
pub fn walk(
    mem: &mut GuestMemory,
    cfg: &WalkConfig,
    ept: &EptContext,
    guest_paging: bool,
    lin: u64,
    access: Access,
) -> Result<EptTwoDim, EptWalkFault> {
    if !guest_paging {
        // With CR0.PG = 0 every linear address is a user-mode, read/write, executable
        // guest-physical address (Table 28-7, bits 9-11).
        let adv = QUAL_USER_LINEAR | QUAL_WRITABLE_LINEAR;
        let origin = EptOrigin::LinearTranslation;
        let t = translate_gpa(mem, ept, lin, access.kind, origin, lin, adv)?;
        return Ok(EptTwoDim { guest: None, ept: t });
    }
    let addr = Gva(lin);
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
        EptWalkFault::Guest(PageFault { addr, error_code: base_code | code, level })
    };

    let mut writable = true;
    let mut user = true;
    let mut nx = false;
    let mut used = [UsedEntry { gpa: 0, pa: Gpa(0), value: 0, narrow: false }; 5];
    let mut nused = 0;
    let (leaf, leaf_gpa, page_size, gpa);

    if cfg.mode == PagingMode::Legacy32 {
        let a = lin & 0xFFFF_FFFF;
        let pde_gpa = (cfg.cr3 & 0xFFFF_F000) + ((a >> 22) << 2);
        let pde = read_entry(mem, ept, pde_gpa, true, lin)?;
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
            let pte = read_entry(mem, ept, pte_gpa, true, lin)?;
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
                // The PDPTE registers, loaded at VM entry from the VMCS or by MOV to
                // CR0/CR3/CR4 through the EPT (SDM Vol. 3A §4.4.1 "PDPTE Registers"),
                // not re-read on each walk.
                let idx = ((lin & 0xFFFF_FFFF) >> 30) as usize;
                let e = match cfg.pdptes {
                    Some(p) => p[idx],
                    None => return Err(fault(0, 3)),
                };
                if e & PTE_P == 0 {
                    return Err(fault(0, 3));
                }
                if e & paging::pdpte_reserved_bits(cfg.maxphyaddr) != 0 {
                    return Err(fault(PFEC_P | PFEC_RSVD, 3));
                }
                (2u8, e & pa_mask)
            }
            PagingMode::Long5 => (5, cfg.cr3 & pa_mask),
            _ => (4, cfg.cr3 & pa_mask),
        };
        loop {
            let shift = 12 + 9 * (u32::from(level) - 1);
            let e_gpa = table + ((lin >> shift) & 0x1FF) * 8;
            let e = read_entry(mem, ept, e_gpa, false, lin)?;
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
                gpa = (v & pa_mask & !(page_size - 1)) | (lin & (page_size - 1));
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

    // The final guest-physical address (§29.3.3), with the advanced information about
    // the guest translation (Table 28-7, bits 9-11).
    let adv = (if user { QUAL_USER_LINEAR } else { 0 })
        | (if writable { QUAL_WRITABLE_LINEAR } else { 0 })
        | (if nx { QUAL_EXECUTE_DISABLE_LINEAR } else { 0 });
    let origin = EptOrigin::LinearTranslation;
    let final_t = translate_gpa(mem, ept, gpa, access.kind, origin, lin, adv)?;

    // Guest accessed flags on every entry used, dirty on the leaf for writes. Without
    // EPT A/D the update is a write to the entry, checked in the EPT.
    let mut final_leaf = leaf;
    for (i, e) in used[..nused].iter().enumerate() {
        let is_leaf = i == nused - 1;
        let new = e.value | PTE_A | if is_leaf && write { PTE_D } else { 0 };
        if new != e.value {
            if !ept.ad() {
                let origin = EptOrigin::GuestPagingStructure;
                translate_gpa(mem, ept, e.gpa, AccessKind::Write, origin, lin, 0)?;
            }
            if e.narrow {
                mem.cmpxchg_u32(e.pa, e.value as u32, new as u32);
            } else {
                mem.cmpxchg_u64(e.pa, e.value, new);
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
    Ok(EptTwoDim { guest: Some(guest), ept: final_t })
}

/// The translation of an L2 access with "enable EPT" (the hook at the top of
/// `Machine::translate_slow`): the two-dimensional [`walk`], then a front-end TLB entry
/// with the permissions of both levels (linear page -> L1-physical frame). A page the
/// EPT does not let L2 read is not cached (the TLB has no read permission); a write is
/// cached as permitted only once the guest and EPT dirty flags are set. An EPT exit is
/// recorded in `VmxState::pending_ept` and ends the access with
/// [`Fault::NestedPageFault`].
pub(crate) fn translate(
    m: &mut Machine,
    lin: u64,
    kind: AccessKind,
    privilege: Privilege,
    ept: EptContext,
) -> Result<PageRef, Fault> {
    let vpn = lin >> 12;
    let user = privilege == Privilege::Current && m.cpu.cpl == 3;
    let smap_override = privilege == Privilege::Current && m.cpu.flags.bit(flags::AC);
    let access = Access { kind, user, smap_override };
    let cfg = m.walk_config();
    let guest_paging = m.cpu.paging();
    let lin = if guest_paging { lin } else { lin & 0xFFFF_FFFF };
    let t = match walk(&mut m.mem, &cfg, &ept, guest_paging, lin, access) {
        Ok(t) => t,
        Err(EptWalkFault::Guest(pf)) => {
            return Err(Fault::from(crate::cpu::fault::Exception {
                vector: crate::cpu::fault::vector::PF,
                error_code: Some(pf.error_code),
                cr2: lin,
            }))
        }
        Err(EptWalkFault::Ept(e)) => {
            m.nested.vmx.pending_ept = Some(e);
            return Err(Fault::NestedPageFault);
        }
    };
    let e = t.ept;
    let e_write = e.writable && (!ept.ad() || e.leaf & mmu_ept::EPT_DIRTY != 0);
    let (mut perm, global, size_shift, pk) = match t.guest {
        Some(g) => {
            let dirty = g.leaf & PTE_D != 0;
            let ia32e = matches!(cfg.mode, PagingMode::Long4 | PagingMode::Long5);
            let pk =
                if cfg.pke && ia32e && g.user { m.cpu.pkru >> (2 * u32::from(g.pkey)) } else { 0 };
            let pk_wd = pk & PKRU_WD != 0;
            let perm = (if g.writable && dirty && e_write && !pk_wd { TLB_W } else { 0 })
                | (if dirty && e_write { TLB_SW } else { 0 })
                | (if g.user { TLB_U } else { 0 })
                | (if g.executable && e.executable { TLB_X } else { 0 });
            let global = g.global && m.cpu.cr4 & cr4::PGE != 0;
            (perm, global, (g.page_size.trailing_zeros() - 12) as u8, pk)
        }
        None => {
            let w = if e_write { TLB_W | TLB_SW } else { 0 };
            (w | TLB_U | if e.executable { TLB_X } else { 0 }, false, 0, 0)
        }
    };
    let gfn = e.gpa.0 >> 12;
    let host = m.ram_page(gfn);
    if !e.readable || pk & PKRU_AD != 0 || m.strict.is_some() {
        // Not cached: see above; a key with AD faults on each access; `--strict-tlb`
        // checks native translations only.
        return Ok(m.page_ref(gfn, host, kind));
    }
    if m.write_tracked(gfn) || m.monitored_frame(gfn) {
        perm &= !(TLB_W | TLB_SW);
    }
    m.cpu.tlb.insert(vpn, gfn, host, perm, global, size_shift);
    Ok(m.page_ref(gfn, host, kind))
}

/// MOV to CR0/CR3/CR4 loading the PAE PDPTE registers in L2 with "enable EPT": the
/// 32-byte table at guest-physical `cr3` bits 31:5 is read through the EPT, an EPT exit
/// having no valid guest linear address (Table 28-7, bit 7). `None` outside such an L2
/// (the caller reads L1's physical memory).
pub(crate) fn load_guest_pdptes(m: &mut Machine, cr3: u64) -> Option<ExecResult> {
    let ept = m.nested.vmx.ept?;
    let table = cr3 & 0xFFFF_FFE0;
    let origin = EptOrigin::Physical;
    let t = match translate_gpa(&mut m.mem, &ept, table, AccessKind::Read, origin, 0, 0) {
        Ok(t) => t,
        Err(EptWalkFault::Ept(e)) => {
            m.nested.vmx.pending_ept = Some(e);
            return Some(Err(Fault::NestedPageFault));
        }
        Err(EptWalkFault::Guest(_)) => return Some(gp(0)),
    };
    // The table is 32-byte aligned: one EPT page holds all four entries.
    let mut pdptes = [0u64; 4];
    for (i, p) in pdptes.iter_mut().enumerate() {
        *p = m.mem.read_u64(Gpa(t.gpa.0 + 8 * i as u64));
        if *p & PTE_P != 0 && *p & paging::pdpte_reserved_bits(MAXPHYADDR) != 0 {
            return Some(gp(0));
        }
    }
    m.cpu.pdpte = pdptes;
    Some(Ok(()))
}

/// Notes, before each L2 instruction, whether it is an IRET executed with NMIs blocked:
/// a VM exit during it reports "NMI unblocking due to IRET" (§28.2.3; hvsim's IRET ends
/// NMI blocking before it touches memory, which is the state the exit saves).
pub(crate) fn note_insn(m: &mut Machine, i: &Insn) {
    m.nested.vmx.iret_unblocking_nmi = m.cpu.nmi_blocked && is_iret(i);
}

fn is_iret(i: &Insn) -> bool {
    matches!(i.iced.mnemonic(), Mnemonic::Iret | Mnemonic::Iretd | Mnemonic::Iretq)
}

/// Performs the pending EPT-induced VM exit (exit reason 48 or 49, SDM Vol. 3C §28.2.1
/// "Basic VM-Exit Information") of `insn` (`None`: an instruction fetch or an event
/// delivery): the qualification (with bit 12 for a fault during an IRET that unblocked
/// NMIs, not during event delivery), GUEST_LINEAR_ADDRESS when valid
/// and GUEST_PHYSICAL_ADDRESS. `idt_vectoring` is the event being delivered, if any
/// (§28.2.4 "Information for VM Exits During Event Delivery"): (information, error code,
/// instruction length of a software event). Returns whether there was one.
pub fn exit_pending(
    m: &mut Machine,
    insn: Option<&Insn>,
    idt_vectoring: Option<(u32, u32, u32)>,
) -> bool {
    let Some(e) = m.nested.vmx.pending_ept.take() else {
        return false;
    };
    let (idt_vectoring_info, idt_vectoring_error_code, instruction_length) =
        idt_vectoring.unwrap_or((0, 0, 0));
    let nmi_unblocking =
        idt_vectoring.is_none() && insn.is_some_and(is_iret) && m.nested.vmx.iret_unblocking_nmi;
    let info = match e {
        EptExit::Violation { gpa, qualification, gla } => ExitInfo {
            reason: u32::from(VmxExitReason::EPT_VIOLATION.0),
            qualification: qualification | if nmi_unblocking { QUAL_NMI_UNBLOCKING } else { 0 },
            guest_linear_address: gla.unwrap_or(0),
            guest_physical_address: gpa,
            ..ExitInfo::default()
        },
        EptExit::Misconfig { gpa } => ExitInfo {
            reason: u32::from(VmxExitReason::EPT_MISCONFIG.0),
            guest_physical_address: gpa,
            ..ExitInfo::default()
        },
    };
    tracing::debug!(target: "hvsim::nested", gpa = info.guest_physical_address, qualification = info.qualification, "EPT exit");
    super::exit::vm_exit(
        m,
        ExitInfo { idt_vectoring_info, idt_vectoring_error_code, instruction_length, ..info },
    );
    true
}

/// The delivery of an NMI or external interrupt through L2's IDT when "enable EPT" is on
/// (called from the VMX event check once no exit control claimed the event; the same
/// order and blocking rules as the ordinary event check): an EPT violation or
/// misconfiguration met by the delivery becomes the VM exit, with the event in the
/// IDT-vectoring information (28.2.4). `None` when there is no such event (or an
/// interrupt shadow defers it): the ordinary check runs.
pub(crate) fn service_events(m: &mut Machine) -> Option<Result<bool, StopReason>> {
    m.nested.vmx.ept?;
    let shadowed = m.cpu.insn_count == m.cpu.shadow_at;
    let (vector, kind, source) = if m.cpu.nmi_pending && !m.cpu.nmi_blocked {
        if shadowed {
            return None;
        }
        m.cpu.nmi_pending = false;
        m.cpu.nmi_blocked = true;
        (vector::NMI, InterruptionType::Nmi, EventSource::Nmi)
    } else if m.interrupt_requested() && m.cpu.flags.bit(flags::IF) {
        if shadowed {
            return None;
        }
        let v = match m.cpu.intr.take() {
            Some(v) => v,
            // A spurious request that went away: the ordinary check decides what a halted
            // vCPU does.
            None => match m.acknowledge_interrupt() {
                Some(v) => v,
                None if m.cpu.halted => return None,
                None => return Some(Ok(false)),
            },
        };
        (v, InterruptionType::ExternalInterrupt, EventSource::External)
    } else {
        return None;
    };
    m.wake_from_halt();
    m.nested.vmx.pending_ept = None;
    let r = m.raise_event(Event { vector, source, error_code: None }, None);
    if m.nested.vmx.pending_ept.is_some() {
        let info = InterruptionInfo::new(vector, kind, false).encode();
        exit_pending(m, None, Some((info, 0, 0)));
        return Some(Ok(false));
    }
    Some(r.map_or(Ok(false), Err))
}

/// VM function 0, EPTP switching (SDM Vol. 3C 26.5.6.3 "EPTP Switching"): the EPTP-list
/// entry ECX selects.
const VMFUNC_EPTP_SWITCHING: u64 = 0;
/// Entries in the EPTP list (one 4-KByte page of 8-byte EPTPs).
const EPTP_LIST_ENTRIES: u64 = 512;

/// The EPTP list entry a VMFUNC in L2 switches to, or `None` if the VM function fails
/// (SDM Vol. 3C 26.5.6.1 "Enabling VM Functions": EAX selects a function enabled in the
/// VM-function controls; 26.5.6.3: ECX < 512 and the entry is a valid EPTP by the
/// VM-entry rules of 27.2.1.1).
fn vmfunc_target(m: &mut Machine) -> Option<u64> {
    let s = &m.nested.vmx;
    let leaf = m.cpu.gpr[0] & 0xFFFF_FFFF;
    if leaf >= 64 || s.field(f::VM_FUNCTION_CONTROLS) >> leaf & 1 == 0 {
        return None;
    }
    let index = m.cpu.gpr[1] & 0xFFFF_FFFF;
    if leaf != VMFUNC_EPTP_SWITCHING || index >= EPTP_LIST_ENTRIES {
        return None;
    }
    let list = s.field(f::EPTP_LIST_ADDRESS);
    let mut b = [0u8; 8];
    m.phys_read(Gpa(list + index * 8), &mut b);
    let eptp = u64::from_le_bytes(b);
    let ctx = EptContext::new(eptp, m.nested.vmx.caps.ept_vpid_cap);
    mmu_ept::eptp_valid(eptp, &ctx.caps).then_some(eptp)
}

/// Whether a VMFUNC in L2 exits (reason 59, SDM Vol. 3C 26.5.6 "VM Functions": a VM
/// function that is not enabled or whose checks fail). Without "enable VM functions"
/// VMFUNC is #UD instead (the handler raises it).
pub(crate) fn vmfunc_fails(m: &mut Machine) -> bool {
    m.nested.vmx.proc2_on(proc2::ENABLE_VM_FUNCTIONS) && vmfunc_target(m).is_none()
}

/// VMFUNC (Intel SDM Vol. 2C "VMFUNC—Invoke VM function"): #UD outside VMX non-root
/// operation or without "enable VM functions"; EPTP switching loads the selected EPTP
/// into the EPT-pointer field and the EPT in use, without a VM exit (the intercept hook
/// has already taken the failing cases to L1).
pub(crate) fn vmfunc(m: &mut Machine, _i: &Insn) -> ExecResult {
    if !m.nested.vmx.non_root || !m.nested.vmx.proc2_on(proc2::ENABLE_VM_FUNCTIONS) {
        return ud();
    }
    let Some(eptp) = vmfunc_target(m) else {
        return unsupported("VMFUNC failure without its VM exit");
    };
    if let Some(c) = m.nested.vmx.current.as_mut() {
        c.vmcs.set(f::EPT_POINTER, eptp);
    }
    m.nested.vmx.ept = Some(EptContext::new(eptp, m.nested.vmx.caps.ept_vpid_cap));
    // Translations through the old EPT are gone (26.5.6.3; hvsim keeps none tagged).
    m.cpu.tlb.flush();
    m.cpu.end_block = true;
    Ok(())
}
