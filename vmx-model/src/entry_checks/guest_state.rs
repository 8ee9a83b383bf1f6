//! SDM Vol. 3C 27.3.1 "Checks on the Guest State Area": 27.3.1.1 control registers,
//! debug registers and MSRs; 27.3.1.2 segment registers (protected mode, IA-32e mode,
//! virtual-8086 mode and unrestricted guest); 27.3.1.3 descriptor-table registers;
//! 27.3.1.4 RIP and RFLAGS; 27.3.1.5 non-register state; 27.3.1.6 PDPTEs. Failures
//! are VM-entry failure exits with basic reason 33.

use super::{
    pat_valid, read_bytes, read_u64, require, Controls, EntryContext, EntryEnv, EntryFailure,
    EFER_DEFINED, EFER_LMA, EFER_LME,
};
use crate::capabilities::{cr, VmxCapabilities};
use crate::controls::{entry, proc2};
use crate::exit_info::{InterruptionInfo, InterruptionType};
use crate::vmcs::{Vmcs, SHADOW_VMCS_INDICATOR};
use crate::vmcs_fields as f;

/// Segment access-rights bits (the VMCS format, SDM Vol. 3C "Guest Register State").
pub mod ar {
    /// Bits 3:0: segment type.
    pub const TYPE: u32 = 0xF;
    /// Bit 4: S (1 = code or data).
    pub const S: u32 = 1 << 4;
    /// Bits 6:5: DPL.
    pub const DPL: u32 = 3 << 5;
    /// Bit 7: P (present).
    pub const P: u32 = 1 << 7;
    /// Bits 11:8: reserved.
    pub const RESERVED_11_8: u32 = 0xF00;
    /// Bit 13: L (64-bit code segment).
    pub const L: u32 = 1 << 13;
    /// Bit 14: D/B.
    pub const DB: u32 = 1 << 14;
    /// Bit 15: G (granularity).
    pub const G: u32 = 1 << 15;
    /// Bit 16: segment unusable.
    pub const UNUSABLE: u32 = 1 << 16;
    /// Bits 31:17: reserved.
    pub const RESERVED_31_17: u32 = 0xFFFE_0000;
    /// The access rights every segment must have in virtual-8086 mode.
    pub const V86: u32 = 0xF3;
}

/// Interruptibility-state bits (SDM Vol. 3C "Guest Non-Register State").
pub mod interruptibility {
    /// Bit 0: blocking by STI.
    pub const STI: u32 = 1 << 0;
    /// Bit 1: blocking by MOV SS.
    pub const MOV_SS: u32 = 1 << 1;
    /// Bit 2: blocking by SMI.
    pub const SMI: u32 = 1 << 2;
    /// Bit 3: blocking by NMI.
    pub const NMI: u32 = 1 << 3;
    /// Bits hvsim defines (bit 4, enclave interruption, needs SGX).
    pub const DEFINED: u32 = 0xF;
}

/// Activity states (SDM Vol. 3C "Guest Non-Register State").
pub mod activity {
    /// Active.
    pub const ACTIVE: u64 = 0;
    /// HLT.
    pub const HLT: u64 = 1;
    /// Shutdown.
    pub const SHUTDOWN: u64 = 2;
    /// Wait-for-SIPI.
    pub const WAIT_FOR_SIPI: u64 = 3;
}

/// RFLAGS bits the checks name.
pub mod rflags {
    /// Bit 1: always 1.
    pub const FIXED1: u64 = 1 << 1;
    /// Reserved bits that must be 0: 63:22, 15, 5, 3.
    pub const RESERVED: u64 = !0x3F_FFFF | (1 << 15) | (1 << 5) | (1 << 3);
    /// TF (bit 8).
    pub const TF: u64 = 1 << 8;
    /// IF (bit 9).
    pub const IF: u64 = 1 << 9;
    /// VM (bit 17).
    pub const VM: u64 = 1 << 17;
}

/// Pending debug exceptions bits hvsim defines: B3-B0 (3:0), enabled breakpoint (12),
/// BS (14). Bit 16 (RTM) needs RTM, which hvsim does not implement.
pub const PENDING_DEBUG_DEFINED: u64 = 0xF | (1 << 12) | (1 << 14);
/// Pending debug exceptions bit 14: BS (single step).
pub const PENDING_DEBUG_BS: u64 = 1 << 14;
/// IA32_DEBUGCTL bits hvsim defines: LBR (0), BTF (1), TR, BTS, BTINT, BTS_OFF_OS,
/// BTS_OFF_USR, FREEZE_LBRS_ON_PMI, FREEZE_PERFMON_ON_PMI, ENABLE_UNCORE_PMI,
/// FREEZE_WHILE_SMM (6-14).
pub const DEBUGCTL_DEFINED: u64 = 0x7FC3;
/// IA32_DEBUGCTL.BTF.
pub const DEBUGCTL_BTF: u64 = 1 << 1;
/// PAE PDPTE reserved bits below bit 12: 2:1 and 8:5 (SDM Vol. 3A 4.4.1).
pub const PDPTE_RESERVED_LOW: u64 = 0x1E6;

/// One guest segment register as the VMCS holds it.
#[derive(Copy, Clone, Debug)]
pub struct Segment {
    /// Selector.
    pub selector: u16,
    /// Base address.
    pub base: u64,
    /// Limit (byte granular, as in the VMCS).
    pub limit: u32,
    /// Access rights.
    pub ar: u32,
    /// Encoding of the access-rights field (names the segment in failures).
    pub ar_field: u32,
    /// Encoding of the base field.
    pub base_field: u32,
}

impl Segment {
    /// Guest segment `i`: 0 ES, 1 CS, 2 SS, 3 DS, 4 FS, 5 GS, 6 LDTR, 7 TR (the order of
    /// the VMCS encodings).
    pub fn read(vmcs: &Vmcs, i: u32) -> Segment {
        let sel = f::GUEST_ES_SELECTOR + 2 * i;
        let (limit, arf, base) = (
            f::GUEST_ES_LIMIT + 2 * i,
            f::GUEST_ES_ACCESS_RIGHTS + 2 * i,
            f::GUEST_ES_BASE + 2 * i,
        );
        Segment {
            selector: vmcs.get(sel) as u16,
            base: vmcs.get(base),
            limit: vmcs.get(limit) as u32,
            ar: vmcs.get(arf) as u32,
            ar_field: arf,
            base_field: base,
        }
    }
    /// Whether the segment is usable (access-rights bit 16 = 0).
    pub fn usable(&self) -> bool {
        self.ar & ar::UNUSABLE == 0
    }
    /// The type field.
    pub fn ty(&self) -> u32 {
        self.ar & ar::TYPE
    }
    /// The DPL.
    pub fn dpl(&self) -> u32 {
        (self.ar & ar::DPL) >> 5
    }
    /// The selector's RPL.
    pub fn rpl(&self) -> u32 {
        u32::from(self.selector & 3)
    }
    /// Whether the limit and G bit agree: G = 0 unless limit bits 11:0 are all ones, G = 1
    /// if any of limit bits 31:20 is 1.
    pub fn granularity_ok(&self) -> bool {
        let g = self.ar & ar::G != 0;
        (self.limit & 0xFFF == 0xFFF || !g) && (self.limit >> 20 == 0 || g)
    }
}

const ES: u32 = 0;
const CS: u32 = 1;
const SS: u32 = 2;
const DS: u32 = 3;
const FS: u32 = 4;
const GS: u32 = 5;
const LDTR: u32 = 6;
const TR: u32 = 7;
/// The six code/data segment registers.
const CODE_DATA: [u32; 6] = [ES, CS, SS, DS, FS, GS];
/// DS, ES, FS, GS.
const DATA: [u32; 4] = [DS, ES, FS, GS];

/// The checks of 27.3.1.1 through 27.3.1.5 in SDM order.
pub fn check(
    vmcs: &Vmcs,
    caps: &VmxCapabilities,
    ctx: &EntryContext,
    env: &mut dyn EntryEnv,
) -> Result<(), EntryFailure> {
    let c = Controls::of(vmcs);
    control_registers(vmcs, caps, ctx, &c)?;
    segments(vmcs, ctx, &c)?;
    descriptor_tables(vmcs, ctx)?;
    rip_rflags(vmcs, ctx, &c)?;
    non_register_state(vmcs, caps, ctx, &c, env)
}

/// 27.3.1.1 "Checks on Guest Control Registers, Debug Registers, and MSRs".
fn control_registers(
    vmcs: &Vmcs,
    caps: &VmxCapabilities,
    ctx: &EntryContext,
    c: &Controls,
) -> Result<(), EntryFailure> {
    let cr0 = vmcs.get(f::GUEST_CR0);
    let cr4 = vmcs.get(f::GUEST_CR4);
    let ia32e = c.ia32e_guest();
    // With unrestricted guest, PE and PG are exempt from the fixed bits.
    let fixed0 = if c.unrestricted() {
        caps.cr0_fixed0 & !(cr::CR0_PE | cr::CR0_PG)
    } else {
        caps.cr0_fixed0
    };
    require!(
        super::host_state::fixed_ok(cr0, fixed0, caps.cr0_fixed1),
        GuestCr0Fixed,
        f::GUEST_CR0
    );
    require!(cr0 & cr::CR0_PG == 0 || cr0 & cr::CR0_PE != 0, GuestCr0PgWithoutPe, f::GUEST_CR0);
    require!(
        super::host_state::fixed_ok(cr4, caps.cr4_fixed0, caps.cr4_fixed1),
        GuestCr4Fixed,
        f::GUEST_CR4
    );
    let load_debug = c.entry(entry::LOAD_DEBUG_CONTROLS);
    if load_debug {
        require!(
            vmcs.get(f::GUEST_IA32_DEBUGCTL) & !DEBUGCTL_DEFINED == 0,
            GuestDebugctlReserved,
            f::GUEST_IA32_DEBUGCTL
        );
    }
    if ia32e {
        require!(cr0 & cr::CR0_PG != 0, GuestIa32eWithoutPg, f::GUEST_CR0);
        require!(cr4 & cr::CR4_PAE != 0, GuestIa32eWithoutPae, f::GUEST_CR4);
    } else {
        require!(cr4 & cr::CR4_PCIDE == 0, GuestPcideOutsideIa32e, f::GUEST_CR4);
    }
    require!(ctx.phys_ok(vmcs.get(f::GUEST_CR3)), GuestCr3Width, f::GUEST_CR3);
    if load_debug {
        require!(vmcs.get(f::GUEST_DR7) >> 32 == 0, GuestDr7High, f::GUEST_DR7);
    }
    require!(
        ctx.canonical(vmcs.get(f::GUEST_IA32_SYSENTER_ESP)),
        GuestSysenterEspCanonical,
        f::GUEST_IA32_SYSENTER_ESP
    );
    require!(
        ctx.canonical(vmcs.get(f::GUEST_IA32_SYSENTER_EIP)),
        GuestSysenterEipCanonical,
        f::GUEST_IA32_SYSENTER_EIP
    );
    if c.entry(entry::LOAD_IA32_PAT) {
        require!(pat_valid(vmcs.get(f::GUEST_IA32_PAT)), GuestPat, f::GUEST_IA32_PAT);
    }
    if c.entry(entry::LOAD_IA32_EFER) {
        let efer = vmcs.get(f::GUEST_IA32_EFER);
        require!(efer & !EFER_DEFINED == 0, GuestEferReserved, f::GUEST_IA32_EFER);
        require!((efer & EFER_LMA != 0) == ia32e, GuestEferLma, f::GUEST_IA32_EFER);
        if cr0 & cr::CR0_PG != 0 {
            require!((efer & EFER_LME != 0) == ia32e, GuestEferLme, f::GUEST_IA32_EFER);
        }
    }
    Ok(())
}

/// 27.3.1.2 "Checks on Guest Segment Registers".
fn segments(vmcs: &Vmcs, ctx: &EntryContext, c: &Controls) -> Result<(), EntryFailure> {
    // Read each segment register once; the checks below index this array.
    let all: [Segment; 8] = core::array::from_fn(|i| Segment::read(vmcs, i as u32));
    let seg = |i: u32| all[i as usize];
    let v86 = vmcs.get(f::GUEST_RFLAGS) & rflags::VM != 0;
    let ug = c.unrestricted();
    let ia32e = c.ia32e_guest();
    let pe = vmcs.get(f::GUEST_CR0) & cr::CR0_PE != 0;
    let (cs, ss, tr, ldtr) = (seg(CS), seg(SS), seg(TR), seg(LDTR));

    // Selector fields.
    require!(tr.selector & 4 == 0, GuestTrTi, f::GUEST_TR_SELECTOR);
    if ldtr.usable() {
        require!(ldtr.selector & 4 == 0, GuestLdtrTi, f::GUEST_LDTR_SELECTOR);
    }
    if !v86 && !ug {
        require!(ss.rpl() == cs.rpl(), GuestSsRpl, f::GUEST_SS_SELECTOR);
    }

    // Base-address fields.
    if v86 {
        for i in CODE_DATA {
            let s = seg(i);
            require!(s.base == u64::from(s.selector) << 4, GuestV86Base, s.base_field);
        }
    }
    for i in [TR, FS, GS] {
        let s = seg(i);
        require!(ctx.canonical(s.base), GuestSegmentBaseCanonical, s.base_field);
    }
    if ldtr.usable() {
        require!(ctx.canonical(ldtr.base), GuestSegmentBaseCanonical, ldtr.base_field);
    }
    require!(cs.base >> 32 == 0, GuestCsBaseHigh, f::GUEST_CS_BASE);
    for i in [SS, DS, ES] {
        let s = seg(i);
        if s.usable() {
            require!(s.base >> 32 == 0, GuestSegmentBaseHigh, s.base_field);
        }
    }

    // Limit and access-rights fields.
    if v86 {
        for i in CODE_DATA {
            let s = seg(i);
            require!(s.limit == 0xFFFF, GuestV86Limit, f::GUEST_ES_LIMIT + 2 * i);
        }
        for i in CODE_DATA {
            let s = seg(i);
            require!(s.ar == ar::V86, GuestV86AccessRights, s.ar_field);
        }
    } else {
        // Type.
        require!(
            matches!(cs.ty(), 9 | 11 | 13 | 15) || (ug && cs.ty() == 3),
            GuestCsType,
            cs.ar_field
        );
        if ss.usable() {
            require!(matches!(ss.ty(), 3 | 7), GuestSsType, ss.ar_field);
        }
        for i in DATA {
            let s = seg(i);
            if s.usable() {
                require!(s.ty() & 1 != 0, GuestDataSegmentAccessed, s.ar_field);
                require!(s.ty() & 8 == 0 || s.ty() & 2 != 0, GuestCodeSegmentReadable, s.ar_field);
            }
        }
        // S.
        for i in CODE_DATA {
            let s = seg(i);
            if i == CS || s.usable() {
                require!(s.ar & ar::S != 0, GuestSegmentS, s.ar_field);
            }
        }
        // DPL.
        match cs.ty() {
            3 => require!(cs.dpl() == 0, GuestCsDplType3, cs.ar_field),
            9 | 11 => require!(cs.dpl() == ss.dpl(), GuestCsDplNonConforming, cs.ar_field),
            _ => require!(cs.dpl() <= ss.dpl(), GuestCsDplConforming, cs.ar_field),
        }
        if !ug {
            require!(ss.dpl() == ss.rpl(), GuestSsDplRpl, ss.ar_field);
        }
        if cs.ty() == 3 || !pe {
            require!(ss.dpl() == 0, GuestSsDplRealMode, ss.ar_field);
        }
        if !ug {
            for i in DATA {
                let s = seg(i);
                if s.usable() && s.ty() <= 11 {
                    require!(s.dpl() >= s.rpl(), GuestDataSegmentDpl, s.ar_field);
                }
            }
        }
        // P.
        for i in CODE_DATA {
            let s = seg(i);
            if i == CS || s.usable() {
                require!(s.ar & ar::P != 0, GuestSegmentPresent, s.ar_field);
            }
        }
        // Reserved bits 11:8.
        for i in CODE_DATA {
            let s = seg(i);
            if i == CS || s.usable() {
                require!(s.ar & ar::RESERVED_11_8 == 0, GuestSegmentArReserved, s.ar_field);
            }
        }
        // D/B of CS.
        if ia32e && cs.ar & ar::L != 0 {
            require!(cs.ar & ar::DB == 0, GuestCsLongAndDb, cs.ar_field);
        }
        // G.
        for i in CODE_DATA {
            let s = seg(i);
            if i == CS || s.usable() {
                require!(s.granularity_ok(), GuestSegmentGranularity, s.ar_field);
            }
        }
        // Reserved bits 31:17.
        for i in CODE_DATA {
            let s = seg(i);
            if i == CS || s.usable() {
                require!(s.ar & ar::RESERVED_31_17 == 0, GuestSegmentArReserved, s.ar_field);
            }
        }
    }

    // TR.
    let tr_type_ok = if ia32e { tr.ty() == 11 } else { matches!(tr.ty(), 3 | 11) };
    require!(tr_type_ok, GuestTrType, tr.ar_field);
    require!(tr.ar & ar::S == 0, GuestTrS, tr.ar_field);
    require!(tr.ar & ar::P != 0, GuestSegmentPresent, tr.ar_field);
    require!(tr.ar & ar::RESERVED_11_8 == 0, GuestSegmentArReserved, tr.ar_field);
    require!(tr.granularity_ok(), GuestSegmentGranularity, tr.ar_field);
    require!(tr.usable(), GuestTrUnusable, tr.ar_field);
    require!(tr.ar & ar::RESERVED_31_17 == 0, GuestSegmentArReserved, tr.ar_field);

    // LDTR.
    if ldtr.usable() {
        require!(ldtr.ty() == 2, GuestLdtrType, ldtr.ar_field);
        require!(ldtr.ar & ar::S == 0, GuestLdtrS, ldtr.ar_field);
        require!(ldtr.ar & ar::P != 0, GuestSegmentPresent, ldtr.ar_field);
        require!(ldtr.ar & ar::RESERVED_11_8 == 0, GuestSegmentArReserved, ldtr.ar_field);
        require!(ldtr.granularity_ok(), GuestSegmentGranularity, ldtr.ar_field);
        require!(ldtr.ar & ar::RESERVED_31_17 == 0, GuestSegmentArReserved, ldtr.ar_field);
    }
    Ok(())
}

/// 27.3.1.3 "Checks on Guest Descriptor-Table Registers".
fn descriptor_tables(vmcs: &Vmcs, ctx: &EntryContext) -> Result<(), EntryFailure> {
    for base in [f::GUEST_GDTR_BASE, f::GUEST_IDTR_BASE] {
        require!(ctx.canonical(vmcs.get(base)), GuestDescTableBaseCanonical, base);
    }
    for limit in [f::GUEST_GDTR_LIMIT, f::GUEST_IDTR_LIMIT] {
        require!(vmcs.get(limit) >> 16 == 0, GuestDescTableLimitHigh, limit);
    }
    Ok(())
}

/// The injected event, if the VM-entry interruption information is valid.
fn injected(vmcs: &Vmcs) -> Option<InterruptionInfo> {
    let info = InterruptionInfo::decode(vmcs.get(f::VM_ENTRY_INTERRUPTION_INFO) as u32);
    info.valid.then_some(info)
}

/// 27.3.1.4 "Checks on Guest RIP, RFLAGS, and SSP".
fn rip_rflags(vmcs: &Vmcs, ctx: &EntryContext, c: &Controls) -> Result<(), EntryFailure> {
    let rip = vmcs.get(f::GUEST_RIP);
    let cs_l = Segment::read(vmcs, CS).ar & ar::L != 0;
    if c.ia32e_guest() && cs_l {
        require!(ctx.canonical(rip), GuestRipCanonical, f::GUEST_RIP);
    } else {
        require!(rip >> 32 == 0, GuestRipHigh, f::GUEST_RIP);
    }
    let fl = vmcs.get(f::GUEST_RFLAGS);
    require!(
        fl & rflags::RESERVED == 0 && fl & rflags::FIXED1 != 0,
        GuestRflagsReserved,
        f::GUEST_RFLAGS
    );
    if c.ia32e_guest() || vmcs.get(f::GUEST_CR0) & cr::CR0_PE == 0 {
        require!(fl & rflags::VM == 0, GuestRflagsVm, f::GUEST_RFLAGS);
    }
    if injected(vmcs).is_some_and(|i| i.kind == InterruptionType::ExternalInterrupt) {
        require!(fl & rflags::IF != 0, GuestRflagsIfForExtInt, f::GUEST_RFLAGS);
    }
    Ok(())
}

/// Whether `event` would be blocked in activity state `state` (27.3.1.5; the activity
/// states of SDM Vol. 3C "Guest Non-Register State").
fn blocked_in(state: u64, event: &InterruptionInfo) -> bool {
    let exc = |v: u8| event.kind == InterruptionType::HardwareException && event.vector == v;
    match state {
        activity::HLT => {
            !(matches!(
                event.kind,
                InterruptionType::ExternalInterrupt
                    | InterruptionType::Nmi
                    | InterruptionType::Other
            ) || exc(1)
                || exc(18))
        }
        activity::SHUTDOWN => !(event.kind == InterruptionType::Nmi || exc(18)),
        activity::WAIT_FOR_SIPI => true,
        _ => false,
    }
}

/// 27.3.1.5 "Checks on Guest Non-Register State".
fn non_register_state(
    vmcs: &Vmcs,
    caps: &VmxCapabilities,
    ctx: &EntryContext,
    c: &Controls,
    env: &mut dyn EntryEnv,
) -> Result<(), EntryFailure> {
    use interruptibility as ib;
    let state = vmcs.get(f::GUEST_ACTIVITY_STATE);
    let intr = vmcs.get(f::GUEST_INTERRUPTIBILITY_STATE) as u32;
    let event = injected(vmcs);
    let fl = vmcs.get(f::GUEST_RFLAGS);

    // Activity state.
    require!(caps.activity_state_supported(state), GuestActivityState, f::GUEST_ACTIVITY_STATE);
    if state == activity::HLT {
        require!(
            Segment::read(vmcs, SS).dpl() == 0,
            GuestActivityHltSsDpl,
            f::GUEST_ACTIVITY_STATE
        );
    }
    if intr & (ib::STI | ib::MOV_SS) != 0 {
        require!(state == activity::ACTIVE, GuestActivityBlocking, f::GUEST_ACTIVITY_STATE);
    }
    if let Some(e) = &event {
        require!(!blocked_in(state, e), GuestActivityInjection, f::GUEST_ACTIVITY_STATE);
    }

    // Interruptibility state.
    const IB: u32 = f::GUEST_INTERRUPTIBILITY_STATE;
    require!(intr & !ib::DEFINED == 0, GuestInterruptibilityReserved, IB);
    require!(
        intr & (ib::STI | ib::MOV_SS) != (ib::STI | ib::MOV_SS),
        GuestInterruptibilityStiAndMovSs,
        IB
    );
    if fl & rflags::IF == 0 {
        require!(intr & ib::STI == 0, GuestInterruptibilityStiIf0, IB);
    }
    let kind = event.map(|e| e.kind);
    if kind == Some(InterruptionType::ExternalInterrupt) {
        require!(intr & (ib::STI | ib::MOV_SS) == 0, GuestInterruptibilityExtInt, IB);
    }
    if kind == Some(InterruptionType::Nmi) {
        require!(intr & ib::MOV_SS == 0, GuestInterruptibilityNmiMovSs, IB);
    }
    // hvsim never enters VMX non-root operation from SMM.
    require!(intr & ib::SMI == 0, GuestInterruptibilitySmi, IB);
    if c.virtual_nmis() && kind == Some(InterruptionType::Nmi) {
        require!(intr & ib::NMI == 0, GuestInterruptibilityVirtualNmi, IB);
    }
    // The SDM allows a processor to fail an NMI injection while blocking by STI is 1,
    // with exit qualification 3; hvsim does (Table "Exit Qualification for VM-Entry
    // Failures").
    if kind == Some(InterruptionType::Nmi) {
        require!(intr & ib::STI == 0, GuestNmiInjectionStiBlocking, IB);
    }

    // Pending debug exceptions.
    let pending = vmcs.get(f::GUEST_PENDING_DEBUG_EXCEPTIONS);
    const PD: u32 = f::GUEST_PENDING_DEBUG_EXCEPTIONS;
    require!(pending & !PENDING_DEBUG_DEFINED == 0, GuestPendingDebugReserved, PD);
    if intr & (ib::STI | ib::MOV_SS) != 0 || state == activity::HLT {
        let btf = vmcs.get(f::GUEST_IA32_DEBUGCTL) & DEBUGCTL_BTF != 0;
        let tf = fl & rflags::TF != 0;
        let bs = pending & PENDING_DEBUG_BS != 0;
        if tf && !btf {
            require!(bs, GuestPendingDebugBsMissing, PD);
        } else {
            require!(!bs, GuestPendingDebugBsSet, PD);
        }
    }

    // VMCS link pointer.
    let link = vmcs.get(f::VMCS_LINK_POINTER);
    if link != u64::MAX {
        require!(
            link & 0xFFF == 0 && ctx.phys_ok(link),
            GuestVmcsLinkAddress,
            f::VMCS_LINK_POINTER
        );
        let first = u32::from_le_bytes(read_bytes::<4>(env, link));
        let shadow = c.proc2(proc2::VMCS_SHADOWING);
        require!(
            first & !SHADOW_VMCS_INDICATOR == caps.revision_id
                && (first & SHADOW_VMCS_INDICATOR != 0) == shadow,
            GuestVmcsLinkRevision,
            f::VMCS_LINK_POINTER
        );
        require!(ctx.current_vmcs != Some(link), GuestVmcsLinkCurrent, f::VMCS_LINK_POINTER);
    }
    Ok(())
}

/// 27.3.1.6 "Checks on Guest Page-Directory-Pointer-Table Entries". With PAE paging
/// (CR0.PG = 1, CR4.PAE = 1, not IA-32e mode guest) the PDPTEs come from the VMCS PDPTE
/// fields when EPT is enabled, else from the 32-byte table at guest CR3 bits 31:5, which hvsim
/// always reads (the SDM lets a processor check them on every such entry). Returns the
/// PDPTEs read through CR3, for loading.
pub fn check_pdptes(
    vmcs: &Vmcs,
    ctx: &EntryContext,
    env: &mut dyn EntryEnv,
) -> Result<Option<[u64; 4]>, EntryFailure> {
    let c = Controls::of(vmcs);
    let cr0 = vmcs.get(f::GUEST_CR0);
    let cr4 = vmcs.get(f::GUEST_CR4);
    if cr0 & cr::CR0_PG == 0 || cr4 & cr::CR4_PAE == 0 || c.ia32e_guest() {
        return Ok(None);
    }
    let ept = c.proc2(proc2::ENABLE_EPT);
    let mut pdptes = [0u64; 4];
    let table = vmcs.get(f::GUEST_CR3) & 0xFFFF_FFE0;
    for (i, p) in pdptes.iter_mut().enumerate() {
        *p = if ept {
            vmcs.get(f::GUEST_PDPTE0 + 2 * i as u32)
        } else {
            read_u64(env, table + 8 * i as u64)
        };
        let field = if ept { f::GUEST_PDPTE0 + 2 * i as u32 } else { f::GUEST_CR3 };
        if *p & 1 != 0 {
            require!(*p & PDPTE_RESERVED_LOW == 0 && ctx.phys_ok(*p), GuestPdpteReserved, field);
        }
    }
    Ok(if ept { None } else { Some(pdptes) })
}
