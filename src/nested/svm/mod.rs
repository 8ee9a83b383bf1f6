//! Nested AMD SVM (APM Vol. 2 chapter 15 "Secure Virtual Machine") over `svm-model`:
//! VMRUN and #VMEXIT, the global interrupt flag, the SVM instructions, the intercepts,
//! nested paging ([`npt`]) and the SVM MSRs.
//!
//! What the CPU model advertises in CPUID 8000_000Ah is exactly [`FEATURES_EDX`]: nested
//! paging, NRIP save, VMCB clean bits, flush by ASID, decode assists, the PAUSE filter
//! and its threshold. Not implemented (and not advertised): LBR virtualization, SVM
//! lock, TSC ratio, AVIC, vGIF, virtual VMLOAD/VMSAVE; nor SKINIT and RDPRU (#UD).
//!
//! SVM inside an SVM guest, as the APM defines it: the guest's EFER.SVME is 1 (a VMRUN
//! check demands it), so an L2 sees SVM enabled (and CPUID's SVM bit unless L1
//! intercepts CPUID), and its own SVM instructions follow the same rules as L1's. VMRUN
//! in L2 always exits to L1 (the VMRUN intercept is a VMRUN consistency check, applied
//! to the VMCB as the processor uses it, clean bits included), so an L3 runs only if L1
//! emulates VMRUN for its L2, as KVM does. hvsim does not itself run an L3 (there is no
//! second hardware level to model); VMLOAD, VMSAVE, STGI, CLGI and INVLPGA that L1 lets
//! L2 execute act on the real (L1-physical) state, as on a processor without virtual
//! VMLOAD/VMSAVE and vGIF.
//!
//! Events that hvsim's PC never produces, whose intercepts therefore never fire: FERR
//! freeze (no x87 error signalling: no FERR#, no #MF), and SMIs from anything but an
//! APIC message (no SMM; an SMI the processor takes does nothing).

pub mod clean_bits;
pub mod events;
pub mod instructions;
pub mod intercepts;
pub mod msrs;
pub mod npt;
pub mod state;
pub mod vmexit;
pub mod vmrun;

use crate::cpu::access::MAXPHYADDR;
use crate::cpuid::Feature;
use crate::machine::Machine;
use hvsim_svm_model::{InvalidVmcb, SvmCapabilities, VmcbImage};

/// CPUID 8000_000Ah EDX bit 0: nested paging (§15.25, see [`npt`]).
pub const FEATURE_NP: u32 = 1 << 0;
/// CPUID 8000_000Ah EDX bit 3: NRIP save (VMCB NRIP holds the next RIP on instruction
/// intercepts).
pub const FEATURE_NRIPS: u32 = 1 << 3;
/// CPUID 8000_000Ah EDX bit 5: VMCB clean bits, honoured as a caching processor does
/// (fields under a set clean bit come from the copy kept at the last #VMEXIT of the
/// same VMCB; see [`clean_bits`]).
pub const FEATURE_VMCB_CLEAN: u32 = 1 << 5;
/// CPUID 8000_000Ah EDX bit 6: flush by ASID (TLB_CONTROL 3 and 7, §15.16). The shadow
/// page cache is tagged with the ASID (0 for the host): VMRUN and #VMEXIT switch its
/// context without a flush, TLB_CONTROL flushes one context or all of them, INVLPGA one
/// address (see `vmrun::tlb_control`, `state::switch_translations`).
pub const FEATURE_FLUSH_BY_ASID: u32 = 1 << 6;

/// CPUID 8000_000Ah EDX bit 7: decode assists (§15.33): EXITINFO1 of MOV CRn/DRn,
/// LMSW/CLTS/SMSW, INTn and INVLPG, and the instruction bytes of #PF intercepts.
pub const FEATURE_DECODE_ASSISTS: u32 = 1 << 7;

/// CPUID 8000_000Ah EDX bit 10: PAUSE filter (§15.14.4 "Pause Intercept Filtering":
/// PAUSE_FILTER_COUNT PAUSEs before the PAUSE intercept exits).
pub const FEATURE_PAUSE_FILTER: u32 = 1 << 10;

/// CPUID 8000_000Ah EDX bit 12: PAUSE filter threshold (the count is reloaded when more
/// than PAUSE_FILTER_THRESHOLD cycles passed since the previous PAUSE; hvsim's cycles
/// are its TSC's, one per retired instruction).
pub const FEATURE_PAUSE_FILTER_THRESHOLD: u32 = 1 << 12;

/// CPUID 8000_000Ah EDX: the optional SVM features hvsim implements.
pub const FEATURES_EDX: u32 = FEATURE_NP
    | FEATURE_NRIPS
    | FEATURE_VMCB_CLEAN
    | FEATURE_FLUSH_BY_ASID
    | FEATURE_DECODE_ASSISTS
    | FEATURE_PAUSE_FILTER
    | FEATURE_PAUSE_FILTER_THRESHOLD;

/// The SVM state of a vCPU.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SvmState {
    /// The global interrupt flag (APM §15.17 "Global Interrupt Flag, STGI and CLGI").
    pub gif: bool,
    /// VM_HSAVE_PA: where VMRUN saves the host state.
    pub hsave_pa: u64,
    /// VM_CR.
    pub vm_cr: u64,
    /// The running guest, between VMRUN and #VMEXIT.
    pub guest: Option<Box<GuestContext>>,
    /// The reason the last VMRUN failed its consistency checks, for reports.
    pub last_invalid: Option<InvalidVmcb>,
    /// A write-trap intercept (EFER or CRn) armed by the instruction about to execute:
    /// it exits after the instruction retires (§15.8.3 "CR Write Traps"). The register
    /// number is 16 for EFER.
    pub pending_trap: Option<u8>,
    /// The VMCB state the processor keeps between a #VMEXIT and the next VMRUN of the
    /// same VMCB (address and contents): the fields whose clean bit is set come from
    /// here ([`clean_bits`]).
    pub vmcb_cache: Option<(u64, VmcbImage)>,
    /// Record the fields VMRUN takes from the cache although the VMCB holds another
    /// value (`--report-stale-vmcb`).
    pub report_stale_vmcb: bool,
    /// Those fields, in the order VMRUN used them. A diagnostic report: not saved in
    /// snapshots (a restored run starts it afresh).
    #[serde(skip)]
    pub stale_vmcb: Vec<clean_bits::StaleVmcbField>,
    /// Stale fields beyond [`clean_bits::MAX_STALE_VMCB_REPORTS`], counted only.
    #[serde(skip)]
    pub stale_vmcb_dropped: u64,
    /// Number of successful VMRUNs and of #VMEXITs (counters for reports and benches).
    pub vmruns: u64,
    /// See `vmruns`.
    pub vmexits: u64,
    /// A nested page fault found in the middle of a guest instruction or event delivery:
    /// the run loop performs its #VMEXIT once the instruction is rolled back
    /// ([`npt_exit`]).
    pub pending_npf: Option<hvsim_mmu::npt::NestedPageFault>,
    /// Another #VMEXIT found in the middle of a guest instruction or event delivery (a
    /// task-switch intercept): performed like `pending_npf`, by [`npt_exit`].
    pub pending_exit: Option<(hvsim_svm_model::SvmExitCode, vmexit::ExitInfo)>,
    /// An INIT held pending: it arrived while GIF = 0 or in a guest (§15.17), or a guest
    /// intercepted it (it stays pending for the host; see [`events`]).
    pub pending_init: bool,
    /// An SMI held pending the same way. hvsim has no SMM: an SMI the processor takes
    /// (GIF = 1, not intercepted) does nothing.
    pub pending_smi: bool,
}

impl SvmState {
    /// An INIT or SMI is held pending.
    #[inline]
    pub fn held_signal(&self) -> bool {
        self.pending_init || self.pending_smi
    }
}

impl Default for SvmState {
    fn default() -> Self {
        Self {
            gif: true,
            hsave_pa: 0,
            vm_cr: 0,
            guest: None,
            last_invalid: None,
            pending_trap: None,
            vmcb_cache: None,
            report_stale_vmcb: false,
            stale_vmcb: Vec::new(),
            stale_vmcb_dropped: 0,
            vmruns: 0,
            vmexits: 0,
            pending_npf: None,
            pending_exit: None,
            pending_init: false,
            pending_smi: false,
        }
    }
}

/// What VMRUN loaded and #VMEXIT needs: the VMCB's address, the control fields in
/// effect while the guest runs (read once by VMRUN), and the host state.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GuestContext {
    /// Physical address of the VMCB.
    pub vmcb_pa: u64,
    /// The VMCB as VMRUN read it. The control fields in here are the ones in effect.
    pub vmcb: VmcbImage,
    /// The six intercept vectors.
    pub intercepts: [u32; 6],
    /// TSC_OFFSET.
    pub tsc_offset: u64,
    /// The host state VMRUN saved (also written to the HSAVE page).
    pub host: VmcbImage,
    /// Host CR8 while V_INTR_MASKING virtualizes the guest's TPR.
    pub host_cr8: u64,
    /// V_IRQ as it stands (cleared when the virtual interrupt is taken).
    pub v_irq: bool,
    /// Nested paging, with NP_ENABLE.
    pub np: Option<npt::NestedPaging>,
    /// The PAUSE filter's internal count, loaded from PAUSE_FILTER_COUNT by VMRUN
    /// (§15.14.4).
    pub pause_count: u16,
    /// The clock at the guest's last PAUSE, for the PAUSE filter threshold.
    pub last_pause: Option<u64>,
}

impl GuestContext {
    /// Whether an intercept is set.
    pub fn intercepts(&self, i: hvsim_svm_model::Intercept) -> bool {
        i.is_set(&self.intercepts)
    }
}

/// What this CPU model supports, for the VMRUN consistency checks.
pub fn capabilities(m: &Machine) -> SvmCapabilities {
    use crate::cpu::regs::efer;
    let has = |f| m.cpuid.has(f);
    SvmCapabilities {
        phys_addr_bits: MAXPHYADDR,
        long_mode: has(Feature::Lm),
        cr4_valid: m.cpuid.cr4_valid_bits(),
        efer_valid: efer::SVME
            | efer::LMA
            | (if has(Feature::Syscall) { efer::SCE } else { 0 })
            | (if has(Feature::Lm) { efer::LME } else { 0 })
            | (if has(Feature::Nx) { efer::NXE } else { 0 }),
        nested_paging: true,
    }
}

/// Performs the #VMEXIT(NPF) of a nested page fault recorded during an instruction (or
/// an event delivery) of the guest, now that RIP is back at the faulting instruction:
/// EXITINFO1 = the error bits with bit 32 or 33, EXITINFO2 = the guest-physical address
/// (§15.25.6), EXITINTINFO = the event being delivered if any, and with decode assists
/// the instruction bytes (§15.33.4 "#PF and #NPF Information"). Returns whether there
/// was one. Another exit recorded mid-instruction ([`SvmState::pending_exit`], the
/// task-switch intercept) is performed here the same way, with `exitintinfo`.
pub fn npt_exit(m: &mut Machine, insn: Option<&crate::cpu::insn::Insn>, exitintinfo: u64) -> bool {
    if let Some((code, info)) = m.nested.svm.pending_exit.take() {
        vmexit::vmexit(m, code, vmexit::ExitInfo { exitintinfo, ..info });
        return true;
    }
    let Some(f) = m.nested.svm.pending_npf.take() else {
        return false;
    };
    tracing::debug!(target: "svm", gpa = f.gpa.0, info1 = f.exitinfo1, "#NPF");
    let guest_insn = Some(insn.map_or(([0; 15], 0), |i| (i.bytes, i.len)));
    let info = vmexit::ExitInfo {
        info1: f.exitinfo1,
        info2: f.gpa.0,
        exitintinfo,
        guest_insn,
        ..vmexit::ExitInfo::default()
    };
    vmexit::vmexit(m, hvsim_svm_model::SvmExitCode::NPF, info);
    true
}
