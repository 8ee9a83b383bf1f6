//! Nested Intel VMX (SDM Vol. 3C chapters 25-32) over `vmx-model`: VMX operation
//! (VMXON/VMXOFF), the current VMCS and the VMCS instructions, VM entry (the checks of
//! `vmx_model::entry_checks`, guest-state load, event injection), VM exits (guest-state
//! save, exit information, host-state load, VMX abort) and the exit conditions of the
//! VM-execution controls.
//!
//! VMCS contents live in the machine (as a processor caches them): the current VMCS and a
//! bounded cache of other active VMCSs, keyed by address; VMCLEAR (and eviction, and
//! VMXOFF) write a VMCS to its region in hvsim's own format (`Vmcs::to_region`).
//!
//! What the Intel model advertises is [`intel_capabilities`]: EPT (with execute-only
//! pages, 2-MByte and 1-GByte pages, A/D flags and the advanced EPT-violation
//! information; [`ept`]), VPID with every INVEPT/INVVPID type, unrestricted guest and the
//! VM function EPTP switching (VMFUNC leaf 0) are advertised. An L2 guest cannot itself use VMX: its VMX instructions exit to L1.
//!
//! VPID and EPTP tagging: hvsim flushes its front-end TLB on every VM entry and VM exit
//! and keeps no L2 translation in the shadow page cache, so no translation ever survives
//! a world switch. That is one of the behaviours the SDM allows (§29.4 "Caching
//! Translation Information": a processor may invalidate more than software asks), and it
//! makes INVEPT and INVVPID in VMX root operation architectural no-ops once their
//! operands pass the checks.
//!
//! Events between guest instructions (the VMX-preemption timer, NMI and interrupt
//! windows, pending MTF exits) are in [`events`]; the timer's arithmetic in
//! [`preemption_timer`]; CR8 through the virtual-APIC page in [`tpr_shadow`].

pub mod entry;
pub mod ept;
pub mod events;
pub mod exit;
pub mod instructions;
pub mod intercepts;
pub mod preemption_timer;
pub mod tpr_shadow;

use crate::cpu::access::MAXPHYADDR;
use crate::cpu::fault::{gp, Fault};
use crate::cpu::regs::cr0;
use crate::cpuid::Feature;
use crate::machine::Machine;
use hvsim_mmu::Gpa;
use hvsim_vmx_model::controls::{proc, proc2};
use hvsim_vmx_model::vmcs::REGION_USED_BYTES;
use hvsim_vmx_model::{vmcs_fields as f, EntryFailure, Vmcs, VmxCapabilities};

/// At most this many VMCSs besides the current one stay cached; VMPTRLD of one more
/// writes the oldest back to its region (as a processor may at any time).
pub const VMCS_CACHE_SIZE: usize = 32;

/// The VMX features of the Intel CPU model: [`VmxCapabilities::hvsim_default`] without
/// the 5-level EPT walk (see the module docs).
pub fn intel_capabilities() -> VmxCapabilities {
    let mut c = VmxCapabilities::hvsim_default();
    // IA32_VMX_EPT_VPID_CAP as `hvsim_default` reports it: execute-only, 4-level walks,
    // UC/WB paging structures, 2M/1G pages, A/D flags, advanced EPT-violation
    // information, INVEPT single/all-context and every INVVPID type ([`ept`],
    // `instructions`). The 5-level walk is not offered.
    c.ept_vpid_cap &= !hvsim_vmx_model::capabilities::ept_vpid_cap::PAGE_WALK_5;
    c
}

/// The current VMCS: its address and contents.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CurrentVmcs {
    /// Physical address of the VMCS region (the current-VMCS pointer).
    pub pa: u64,
    /// Contents.
    pub vmcs: Vmcs,
}

/// The VMX state of a vCPU.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct VmxState {
    /// What the processor supports (the capability MSRs report it).
    pub caps: VmxCapabilities,
    /// The VMXON pointer; `Some` in VMX operation.
    pub vmxon: Option<u64>,
    /// The current VMCS; `None` when the current-VMCS pointer is FFFFFFFF_FFFFFFFFH.
    pub current: Option<Box<CurrentVmcs>>,
    /// Other active (not cleared) VMCSs, oldest first.
    pub cache: Vec<(u64, Vmcs)>,
    /// In VMX non-root operation (between VM entry and VM exit).
    pub non_root: bool,
    /// The check the last failed VM entry failed (`None` after a successful one).
    pub last_entry_failure: Option<EntryFailure>,
    /// The VMX-abort indicator of a VMX abort (SDM Vol. 3C 28.7): the vCPU stops.
    pub abort: Option<u32>,
    /// Interrupts are blocked by MOV SS / POP SS (not STI) while `cpu.shadow_at` holds.
    pub shadow_by_mov_ss: bool,
    /// The running VMX-preemption timer (pin-based control bit 6), from VM entry to VM
    /// exit.
    pub timer: Option<preemption_timer::PreemptionTimer>,
    /// An MTF VM exit is pending at the next instruction boundary (after an injected
    /// event or an exception delivered in the guest, SDM Vol. 3C 26.7.2, 27.7.2).
    pub mtf_pending: bool,
    /// The instruction count at VM entry: with the monitor trap flag an instruction
    /// retired since then is followed by an MTF VM exit.
    pub mtf_since: u64,
    /// A MOV to CR8 through the TPR shadow retired: the TPR-threshold check follows it.
    pub tpr_check_pending: bool,
    /// PAUSE-loop exiting: the TSC of the last PAUSE at CPL 0 and of the first PAUSE of
    /// the current loop (`None` after VM entry: the next PAUSE starts a loop).
    pub ple: Option<(u64, u64)>,
    /// NMI blocking of L1 while a guest with "virtual NMIs" runs (the guest's blocking
    /// bit is then virtual-NMI blocking, SDM Vol. 3C 25.4.2 Table 25-3).
    pub host_nmi_blocked: bool,
    /// The event being delivered in the guest (VM-exit interruption-information format
    /// and error code): an exit during its delivery reports it as IDT-vectoring
    /// information (SDM Vol. 3C 28.2.4).
    pub vectoring: Option<(u32, u32)>,
    /// The current guest instruction is an IRET that ended (virtual-)NMI blocking.
    pub iret_unblocked_nmi: bool,
    /// The EPT of the running L2 ("enable EPT" in non-root operation), else `None`.
    pub ept: Option<ept::EptContext>,
    /// An EPT violation or misconfiguration found by the current access, for the run
    /// loop's VM exit.
    pub pending_ept: Option<ept::EptExit>,
    /// The current L2 instruction is an IRET that found NMIs blocked (bit 12 of an EPT
    /// violation's exit qualification).
    pub iret_unblocking_nmi: bool,
    /// Successful VM entries and VM exits (for reports and benches).
    pub entries: u64,
    /// See `entries`.
    pub exits: u64,
}

impl Default for VmxState {
    fn default() -> Self {
        Self {
            caps: intel_capabilities(),
            vmxon: None,
            current: None,
            cache: Vec::new(),
            non_root: false,
            last_entry_failure: None,
            abort: None,
            shadow_by_mov_ss: false,
            timer: None,
            mtf_pending: false,
            mtf_since: 0,
            tpr_check_pending: false,
            ple: None,
            host_nmi_blocked: false,
            vectoring: None,
            iret_unblocked_nmi: false,
            ept: None,
            pending_ept: None,
            iret_unblocking_nmi: false,
            entries: 0,
            exits: 0,
        }
    }
}

impl VmxState {
    /// The current VMCS's contents.
    pub fn current_vmcs(&self) -> Option<&Vmcs> {
        self.current.as_ref().map(|c| &c.vmcs)
    }

    /// A field of the current VMCS (0 without one).
    #[inline]
    pub fn field(&self, encoding: u32) -> u64 {
        self.current.as_ref().map_or(0, |c| c.vmcs.get(encoding))
    }

    /// Whether `bit` of the pin-based VM-execution controls is set.
    #[inline]
    pub fn pin_on(&self, bit: u32) -> bool {
        self.field(f::PIN_BASED_CONTROLS) & u64::from(bit) != 0
    }

    /// Whether `bit` of the primary processor-based VM-execution controls is set.
    #[inline]
    pub fn proc_on(&self, bit: u32) -> bool {
        self.field(f::PRIMARY_PROC_BASED_CONTROLS) & u64::from(bit) != 0
    }

    /// Whether `bit` of the secondary processor-based VM-execution controls is in effect
    /// (set, with "activate secondary controls").
    #[inline]
    pub fn proc2_on(&self, bit: u32) -> bool {
        self.proc_on(proc::ACTIVATE_SECONDARY_CONTROLS)
            && self.field(f::SECONDARY_PROC_BASED_CONTROLS) & u64::from(bit) != 0
    }

    /// The TSC offset in effect: TSC_OFFSET in non-root operation with "use TSC
    /// offsetting" (SDM Vol. 3C 26.6.5 "Time-Stamp Counter Offset"), else 0.
    pub fn tsc_offset(&self) -> u64 {
        if self.non_root
            && self.field(f::PRIMARY_PROC_BASED_CONTROLS) & u64::from(proc::USE_TSC_OFFSETTING) != 0
        {
            self.field(f::TSC_OFFSET)
        } else {
            0
        }
    }
}

/// Writes a VMCS to its region (keeping the region's revision identifier).
pub(crate) fn write_region(m: &mut Machine, pa: u64, vmcs: &Vmcs) {
    let mut rev = [0u8; 4];
    m.phys_read(Gpa(pa), &mut rev);
    let mut buf = vec![0u8; REGION_USED_BYTES];
    let first = u32::from_le_bytes(rev);
    vmcs.to_region(
        first & !hvsim_vmx_model::vmcs::SHADOW_VMCS_INDICATOR,
        first >> 31 != 0,
        &mut buf,
    );
    m.phys_write(Gpa(pa), &buf);
}

/// Reads a VMCS from its region.
pub(crate) fn read_region(m: &mut Machine, pa: u64) -> Vmcs {
    let mut buf = vec![0u8; REGION_USED_BYTES];
    m.phys_read(Gpa(pa), &mut buf);
    Vmcs::from_region(&buf).unwrap_or_default()
}

/// Whether `pa` is 4-KByte aligned and within the physical-address width.
pub(crate) fn valid_region_address(pa: u64) -> bool {
    pa & 0xFFF == 0 && pa >> MAXPHYADDR == 0
}

/// The capability MSRs (IA32_VMX_BASIC ... IA32_VMX_VMFUNC) on a model with VMX: `None`
/// if `n` is not one of them (SDM Vol. 3D Appendix A).
pub fn read_msr(m: &Machine, n: u32) -> Option<u64> {
    if !m.cpuid.has(Feature::Vmx) {
        return None;
    }
    m.nested.vmx.caps.msr(n)
}

/// The CR0 value a MOV to CR0 (or LMSW, CLTS) writes in VMX operation: in non-root
/// operation the bits set in the CR0 guest/host mask keep their value (SDM Vol. 3C
/// 26.3 "Changes to Instruction Behavior in VMX Non-Root Operation"), and the result
/// must respect IA32_VMX_CR0_FIXED0/1 (25.8 "Restrictions on VMX Operation"): #GP(0).
pub(crate) fn cr0_write_value(m: &Machine, v: u64) -> Result<u64, Fault> {
    let s = &m.nested.vmx;
    if s.vmxon.is_none() {
        return Ok(v);
    }
    let v = if s.non_root {
        let mask = s.field(f::CR0_GUEST_HOST_MASK);
        (v & !mask) | (m.cpu.cr0 & mask)
    } else {
        v
    };
    // ET is fixed to 1 by the processor; CD/NW are not restricted by the fixed bits
    // hvsim reports. With "unrestricted guest", PE and PG may be 0 in non-root
    // operation (25.8: "...if the 'unrestricted guest' VM-execution control is 1").
    let unrestricted = s.non_root
        && s.field(f::PRIMARY_PROC_BASED_CONTROLS) & u64::from(proc::ACTIVATE_SECONDARY_CONTROLS)
            != 0
        && s.field(f::SECONDARY_PROC_BASED_CONTROLS) & u64::from(proc2::UNRESTRICTED_GUEST) != 0;
    let fixed0 =
        if unrestricted { s.caps.cr0_fixed0 & !(cr0::PE | cr0::PG) } else { s.caps.cr0_fixed0 };
    let fixed1 = s.caps.cr0_fixed1 | cr0::ET;
    if v & fixed0 != fixed0 || v & !fixed1 != 0 {
        return gp(0);
    }
    Ok(v)
}

/// The CR4 value a MOV to CR4 writes in VMX operation (see [`cr0_write_value`]).
pub(crate) fn cr4_write_value(m: &Machine, v: u64) -> Result<u64, Fault> {
    let s = &m.nested.vmx;
    if s.vmxon.is_none() {
        return Ok(v);
    }
    let v = if s.non_root {
        let mask = s.field(f::CR4_GUEST_HOST_MASK);
        (v & !mask) | (m.cpu.cr4 & mask)
    } else {
        v
    };
    let (fixed0, fixed1) = (s.caps.cr4_fixed0, s.caps.cr4_fixed1);
    if v & fixed0 != fixed0 || v & !fixed1 != 0 {
        return gp(0);
    }
    Ok(v)
}

/// The value MOV from CR0/CR4 (and SMSW) returns in non-root operation: bits set in the
/// guest/host mask come from the read shadow (SDM Vol. 3C 26.3).
pub(crate) fn cr_read_value(m: &Machine, n: u8, v: u64) -> u64 {
    let s = &m.nested.vmx;
    if !s.non_root {
        return v;
    }
    let (mask, shadow) = match n {
        0 => (f::CR0_GUEST_HOST_MASK, f::CR0_READ_SHADOW),
        4 => (f::CR4_GUEST_HOST_MASK, f::CR4_READ_SHADOW),
        _ => return v,
    };
    let mask = s.field(mask);
    (v & !mask) | (s.field(shadow) & mask)
}

/// Whether an instruction that a secondary control enables (`control`: "enable RDTSCP",
/// "enable INVPCID") is #UD because the vCPU runs a VMX guest without it (SDM Vol. 3C
/// 26.3 "Changes to Instruction Behavior in VMX Non-Root Operation": "If the 'enable
/// RDTSCP' VM-execution control is 0, RDTSCP causes an invalid-opcode exception").
pub(crate) fn disabled_in_guest(m: &Machine, control: u32) -> bool {
    m.nested.vmx.non_root && !m.nested.vmx.proc2_on(control)
}

/// Whether IRET ends NMI blocking (SDM Vol. 3C 26.3, IRET): normally yes; in a VMX
/// guest with "NMI exiting" it does not affect NMI blocking, unless "virtual NMIs" is
/// also 1, when it ends virtual-NMI blocking (which `cpu.nmi_blocked` then holds).
/// In a guest, notes whether this IRET ends (virtual-)NMI blocking, for bit 12 of the
/// interruption information of an exit caused by a fault of the IRET (28.2.2).
pub(crate) fn iret_unblocks_nmi(m: &mut Machine) -> bool {
    let s = &m.nested.vmx;
    let unblocks = !s.non_root
        || !s.pin_on(hvsim_vmx_model::controls::pin::NMI_EXITING)
        || s.pin_on(hvsim_vmx_model::controls::pin::VIRTUAL_NMIS);
    if s.non_root {
        m.nested.vmx.iret_unblocked_nmi = unblocks && m.cpu.nmi_blocked;
    }
    unblocks
}
