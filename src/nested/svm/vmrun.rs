//! VMRUN (APM Vol. 2 §15.5 "VMRUN Instruction", §15.5.1 "Basic Operation"): save the
//! host state to the HSAVE area, read the VMCB, apply the consistency checks, load the
//! guest state and the controls, and inject the event of EVENTINJ (§15.20).

use super::npt::NestedPaging;
use super::state::{load_world, read_vmcb, save_world, write_vmcb};
use super::vmexit::{vmexit, ExitInfo};
use super::{capabilities, GuestContext};
use crate::cpu::access::MAXPHYADDR;
use crate::cpu::fault::{ExecResult, Fault};
use crate::cpu::flags::IF;
use crate::cpu::interrupt::{Event as CpuEvent, EventSource};
use crate::machine::Machine;
use hvsim_mmu::Gpa;
use hvsim_svm_model::event_injection::{self, EventType};
use hvsim_svm_model::vmcb::{self, bits};
use hvsim_svm_model::{vmrun_checks, SvmExitCode, VmcbImage, VmcbRead};

/// VMRUN with the VMCB at physical address `pa` (already checked for alignment and
/// width). The instruction's own checks (#UD, #GP) are done by the caller; RIP is the
/// next instruction (the host's resume point); `vmrun_rip` is the VMRUN's own RIP (for
/// reports).
pub fn vmrun(m: &mut Machine, pa: u64, vmrun_rip: u64) -> ExecResult {
    // "VMRUN saves a subset of host processor state to the host state-save area
    // specified by the physical address in the VM_HSAVE_PA MSR" (§15.5.1).
    let mut host = VmcbImage::zeroed();
    save_world(m, &mut host, m.cpu.rip);
    let hsave = m.nested.svm.hsave_pa;
    write_vmcb(m, hsave, &host);

    let mut img = read_vmcb(m, pa);
    // Fields under a set clean bit come from the processor's cache (§15.15): the checks
    // and the load see what the processor uses.
    super::clean_bits::use_cached(m, pa, vmrun_rip, &mut img);
    if let Err(e) = vmrun_checks::check(&img, &capabilities(m)) {
        // "Illegal guest state combinations cause a #VMEXIT with error code
        // VMEXIT_INVALID" (§15.5.1): nothing of the guest was loaded, so the #VMEXIT
        // resumes the host where it was, with GIF = 0.
        crate::trace::nested::svm_vmrun_failed(m, pa, &e);
        // Only the exit fields are written: the VMCB keeps what L1 put there (also the
        // fields a clean bit made VMRUN take from its cache).
        for (off, v) in [
            (vmcb::EXITCODE, SvmExitCode::INVALID.0),
            (vmcb::EXITINFO1, 0),
            (vmcb::EXITINFO2, 0),
            (vmcb::EXITINTINFO, 0),
        ] {
            m.phys_write(Gpa(pa + u64::from(off)), &v.to_le_bytes());
        }
        m.nested.svm.last_invalid = Some(e);
        m.nested.svm.vmcb_cache = None;
        m.nested.svm.gif = false;
        return Ok(());
    }
    m.nested.svm.last_invalid = None;

    // Nested paging (§15.25.4 "Nested Paging and VMRUN/#VMEXIT"): the nested tables
    // take the host's paging mode as it is at VMRUN.
    let np = (bits::NP_ENABLE.get(img.u64_at(vmcb::NP_CONTROL)) != 0).then(|| {
        NestedPaging::from_host(img.u64_at(vmcb::N_CR3), m.cpu.cr4, m.cpu.efer, MAXPHYADDR)
    });
    m.nested.svm.pending_npf = None;
    m.nested.svm.pending_exit = None;

    // Guest state (§15.5.1: "loads guest state from the VMCB").
    let asid = img.read(vmcb::GUEST_ASID, 4) as u32;
    load_world(m, &img, true, translation_context(asid));
    tlb_control(m, img.read(vmcb::TLB_CONTROL, 1) as u8, asid);
    let vintr = img.u64_at(vmcb::V_INTR_CONTROL);
    let masking = bits::V_INTR_MASKING.get(vintr) != 0;
    let host_cr8 = m.cpu.cr8;
    if masking {
        // With V_INTR_MASKING the guest's CR8 accesses go to V_TPR (§15.21.1).
        m.cpu.cr8 = bits::V_TPR.get(vintr) & 0xF;
    }
    let ctx = GuestContext {
        vmcb_pa: pa,
        intercepts: img.intercepts(),
        tsc_offset: img.u64_at(vmcb::TSC_OFFSET),
        host,
        host_cr8,
        v_irq: bits::V_IRQ.get(vintr) != 0,
        np,
        pause_count: img.read(vmcb::PAUSE_FILTER_COUNT, 2) as u16,
        last_pause: None,
        vmcb: img,
    };
    let shadow = bits::INTERRUPT_SHADOW.get(ctx.vmcb.u64_at(vmcb::INTERRUPT_STATE)) != 0;
    let eventinj = ctx.vmcb.u64_at(vmcb::EVENTINJ);
    m.nested.svm.guest = Some(Box::new(ctx));
    m.nested.svm.vmruns += 1;
    // "VMRUN ... sets GIF" (§15.17).
    m.nested.svm.gif = true;
    m.cpu.halted = false;
    m.cpu.shadow_at = u64::MAX;
    if shadow {
        // The guest's first instruction runs in the interrupt shadow (INT_STATE bit 0).
        m.cpu.shadow_pending = true;
    }
    crate::trace::nested::svm_vmrun(m, pa);
    inject(m, eventinj)
}

/// Delivers the EVENTINJ event through the guest's IDT (§15.20: "the event is injected
/// ... after the guest state has been loaded", and "no intercept checks are performed"
/// on the injected event itself). An exception raised while delivering it is intercepted
/// or delivered like any other, with EXITINTINFO naming the injected event.
fn inject(m: &mut Machine, raw: u64) -> ExecResult {
    // The VMRUN checks have rejected impossible events.
    let Ok(Some(ev)) = event_injection::validate(raw) else {
        return Ok(());
    };
    let source = match ev.kind {
        EventType::Intr => EventSource::External,
        EventType::Nmi => {
            m.cpu.nmi_blocked = true;
            EventSource::Nmi
        }
        EventType::SoftwareInt => EventSource::Software,
        EventType::Exception | EventType::Reserved(_) => EventSource::Exception,
    };
    let error_code = ev.has_error_code.then_some(ev.error_code);
    match m.deliver(CpuEvent { vector: ev.vector, source, error_code }) {
        Ok(()) => Ok(()),
        Err(Fault::Exception(e)) if super::intercepts::exception_intercepted(m, e.vector) => {
            let (info1, info2) = super::intercepts::exception_info(&e);
            let info = ExitInfo { info1, info2, exitintinfo: ev.encode(), ..ExitInfo::default() };
            vmexit(m, SvmExitCode::exception(e.vector), info);
            Ok(())
        }
        Err(Fault::NestedPageFault) => {
            // The delivery faulted in the nested tables (§15.25.6): #VMEXIT(NPF) with
            // the injected event in EXITINTINFO.
            super::npt_exit(m, None, ev.encode());
            Ok(())
        }
        Err(f) => {
            // Delivered (or turned into #DF or shutdown) by the run loop, in the guest:
            // the guest state is loaded, so the fault must not restore the host's RIP.
            m.cpu.rip_committed = true;
            Err(f)
        }
    }
}

/// The shadow cache's translation context of a guest's ASID: the ASID itself for 1 to
/// 0xFFFF (the CPU model advertises fewer ASIDs); larger values, which no guest should
/// use, fold onto that range, never onto the host's context 0.
pub fn translation_context(asid: u32) -> u16 {
    (asid.wrapping_sub(1) % 0xFFFF + 1) as u16
}

/// TLB_CONTROL of a VMRUN (§15.16.1 "TLB Flush"): 1 flushes every ASID's translations,
/// the host's included; 3 flushes this guest's ASID; 7 this guest's non-global ones,
/// which hvsim does as 3 (the shadow cache does not separate global pages: flushing
/// more is allowed). 0 keeps everything. Other values are reserved: hvsim flushes
/// everything. The front-end TLB was emptied by the world switch already.
fn tlb_control(m: &mut Machine, control: u8, asid: u32) {
    use crate::machine::mmu_cache::MmuFlush;
    use hvsim_svm_model::vmcb::tlb_control as tc;
    match control {
        tc::DO_NOTHING => {}
        tc::FLUSH_GUEST | tc::FLUSH_GUEST_NON_GLOBAL => {
            m.mmu_flush(MmuFlush::Context(translation_context(asid)))
        }
        _ => m.mmu_flush(MmuFlush::All),
    }
}

/// Whether physical interrupts are unmasked for the purpose of the INTR intercept: with
/// V_INTR_MASKING the host's EFLAGS.IF decides, else the guest's (§15.21.1).
pub fn physical_if(m: &Machine, ctx: &GuestContext) -> bool {
    let masking = bits::V_INTR_MASKING.get(ctx.vmcb.u64_at(vmcb::V_INTR_CONTROL)) != 0;
    if masking {
        ctx.host.u64_at(vmcb::RFLAGS) & IF != 0
    } else {
        m.cpu.flags.bit(IF)
    }
}
