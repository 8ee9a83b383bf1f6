//! Which instructions and events of an SVM guest exit to L1 (APM Vol. 2 §15.7-§15.14),
//! and the EXITINFO they report.
//!
//! Instruction intercepts are checked "after simple exceptions (such as #GP—when CPL is
//! incorrect—or #UD) have been checked, but before exceptions related to memory accesses
//! (such as page faults) and exceptions based on specific operand values" (§15.9
//! "Instruction Intercepts"): [`simple_exceptions_pass`] holds those simple checks; when
//! one fails, the instruction runs and raises its exception, which may in turn be
//! intercepted as an exception.

use super::vmexit::{vmexit, ExitInfo};
use crate::cpu::fault::{Exception, Fault};
use crate::cpu::insn::{gpr_of, Insn, Op};
use crate::cpu::regs::{cr0, cr4, efer, SegReg};
use crate::cpu::{vector, CpuMode};
use crate::machine::{Machine, StopReason};
use hvsim_decoder::iced::{Code, Mnemonic, OpKind};
use hvsim_mmu::Gpa;
use hvsim_svm_model::intercept::{self as icpt, Intercept};
use hvsim_svm_model::io_intercept::{self, IoAccess};
use hvsim_svm_model::msr_intercept::{self, MsrAccess};
use hvsim_svm_model::vmcb;
use hvsim_svm_model::{exit_info, SvmExitCode, VmcbRead};

/// Whether intercept `i` is set in the running guest's VMCB.
fn set(m: &Machine, i: Intercept) -> bool {
    m.nested.svm.guest.as_ref().is_some_and(|g| g.intercepts(i))
}

/// Whether exception `v` is intercepted.
pub fn exception_intercepted(m: &Machine, v: u8) -> bool {
    v < 32 && set(m, Intercept { word: icpt::VECTOR_EXCEPTIONS, bit: v })
}

/// Whether shutdown is intercepted.
pub fn shutdown_intercepted(m: &Machine) -> bool {
    set(m, icpt::INTERCEPT_SHUTDOWN)
}

/// EXITINFO1/2 of an exception intercept (§15.12): the error code, and for #PF the
/// faulting address.
pub fn exception_info(e: &Exception) -> (u64, u64) {
    let cr2 = (e.vector == vector::PF).then_some(e.cr2);
    exit_info::exception(e.error_code, cr2)
}

/// The simple exceptions an instruction checks before its intercept (see the module
/// comment): `false` if one of them fires.
fn simple_exceptions_pass(m: &Machine, i: &Insn) -> bool {
    let cpl0 = m.cpu.cpl == 0;
    let svm_insn = || {
        m.cpu.efer & efer::SVME != 0 && !matches!(m.cpu.mode, CpuMode::Real | CpuMode::V86) && cpl0
    };
    match i.iced.mnemonic() {
        Mnemonic::Vmrun
        | Mnemonic::Vmload
        | Mnemonic::Vmsave
        | Mnemonic::Stgi
        | Mnemonic::Clgi
        | Mnemonic::Invlpga
        | Mnemonic::Skinit => svm_insn(),
        Mnemonic::Hlt
        | Mnemonic::Rdmsr
        | Mnemonic::Wrmsr
        | Mnemonic::Invlpg
        | Mnemonic::Invd
        | Mnemonic::Wbinvd
        | Mnemonic::Wbnoinvd
        | Mnemonic::Lgdt
        | Mnemonic::Lidt
        | Mnemonic::Lldt
        | Mnemonic::Ltr
        | Mnemonic::Lmsw
        | Mnemonic::Clts
        | Mnemonic::Invpcid => cpl0,
        // XSETBV: #UD with CR4.OSXSAVE = 0, then #GP(0) at CPL > 0.
        Mnemonic::Xsetbv => cpl0 && m.cpu.cr4 & cr4::OSXSAVE != 0,
        Mnemonic::Mov => cpl0, // MOV CRn/DRn (other MOVs are not looked at)
        Mnemonic::Rdtsc | Mnemonic::Rdtscp => cpl0 || m.cpu.cr4 & cr4::TSD == 0,
        Mnemonic::Sgdt | Mnemonic::Sidt | Mnemonic::Sldt | Mnemonic::Str | Mnemonic::Smsw => {
            cpl0 || m.cpu.cr4 & cr4::UMIP == 0
        }
        _ => true,
    }
}

/// The GPR operand `n` of an instruction (for decode-assist style EXITINFO1).
fn gpr_operand(i: &Insn, n: u32) -> u8 {
    gpr_of(i.iced.op_register(n)).map_or(0, |(r, _)| r)
}

/// The I/O access of an IN/OUT/INS/OUTS, if `i` is one.
fn io_access(m: &Machine, i: &Insn) -> Option<IoAccess> {
    let d = &i.iced;
    let port_of = |n: usize| match i.ops[n] {
        Op::Imm => (i.imm & 0xFF) as u16,
        _ => m.cpu.gpr[2] as u16,
    };
    let plain = |port, is_in, size| IoAccess {
        port,
        is_in,
        size,
        address_size: i.asize,
        string: false,
        rep: false,
        segment: 0,
    };
    let string = |is_in, size, seg: SegReg| IoAccess {
        string: true,
        rep: d.has_rep_prefix() || d.has_repne_prefix(),
        segment: seg as u8,
        ..plain(m.cpu.gpr[2] as u16, is_in, size)
    };
    Some(match d.mnemonic() {
        Mnemonic::In => plain(port_of(1), true, d.op0_register().size() as u8),
        Mnemonic::Out => plain(port_of(0), false, d.op1_register().size() as u8),
        _ => match d.code() {
            Code::Insb_m8_DX => string(true, 1, SegReg::Es),
            Code::Insw_m16_DX => string(true, 2, SegReg::Es),
            Code::Insd_m32_DX => string(true, 4, SegReg::Es),
            Code::Outsb_DX_m8 => string(false, 1, i.mem.seg),
            Code::Outsw_DX_m16 => string(false, 2, i.mem.seg),
            Code::Outsd_DX_m32 => string(false, 4, i.mem.seg),
            _ => return None,
        },
    })
}

/// A byte of a permission map in guest-physical memory.
fn map_byte(m: &mut Machine, base: u64, off: u64) -> u8 {
    let mut b = [0u8; 1];
    m.phys_read(Gpa((base & !0xFFF).wrapping_add(off)), &mut b);
    b[0]
}

/// The exit an instruction causes, if it is intercepted.
fn exit_for(m: &mut Machine, i: &Insn, next: u64) -> Option<(SvmExitCode, ExitInfo)> {
    let d = &i.iced;
    let when = |m: &Machine, ic: Intercept| -> Option<(SvmExitCode, ExitInfo)> {
        if set(m, ic) {
            ic.info().map(|r| (r.exit_code, ExitInfo::default()))
        } else {
            None
        }
    };
    match d.mnemonic() {
        Mnemonic::Cpuid => when(m, icpt::INTERCEPT_CPUID),
        Mnemonic::Hlt => when(m, icpt::INTERCEPT_HLT),
        Mnemonic::Rdtsc => when(m, icpt::INTERCEPT_RDTSC),
        Mnemonic::Rdtscp => when(m, icpt::INTERCEPT_RDTSCP),
        Mnemonic::Rdpmc => when(m, icpt::INTERCEPT_RDPMC),
        Mnemonic::Pushf | Mnemonic::Pushfd | Mnemonic::Pushfq => when(m, icpt::INTERCEPT_PUSHF),
        Mnemonic::Popf | Mnemonic::Popfd | Mnemonic::Popfq => when(m, icpt::INTERCEPT_POPF),
        Mnemonic::Rsm => when(m, icpt::INTERCEPT_RSM),
        Mnemonic::Iret | Mnemonic::Iretd | Mnemonic::Iretq => when(m, icpt::INTERCEPT_IRET),
        // Decode assists: EXITINFO1 is the interrupt number (§15.33.3).
        Mnemonic::Int => set(m, icpt::INTERCEPT_INTN).then(|| {
            let info1 = exit_info::swint(i.imm as u8);
            (SvmExitCode::SWINT, ExitInfo { info1, ..ExitInfo::default() })
        }),
        Mnemonic::Int1 => when(m, icpt::INTERCEPT_ICEBP),
        Mnemonic::Invd => when(m, icpt::INTERCEPT_INVD),
        Mnemonic::Pause => pause(m),
        // Decode assists: EXITINFO1 is the linear address (§15.33.2).
        Mnemonic::Invlpg => set(m, icpt::INTERCEPT_INVLPG).then(|| {
            let mut lin = m.cpu.seg(i.mem.seg).base.wrapping_add(i.ea(m));
            if m.cpu.mode != CpuMode::Long64 {
                lin &= 0xFFFF_FFFF;
            }
            (SvmExitCode::INVLPG, ExitInfo { info1: exit_info::invlpg(lin), ..ExitInfo::default() })
        }),
        Mnemonic::Invlpga => when(m, icpt::INTERCEPT_INVLPGA),
        Mnemonic::Vmrun => when(m, icpt::INTERCEPT_VMRUN),
        Mnemonic::Vmmcall => when(m, icpt::INTERCEPT_VMMCALL),
        Mnemonic::Vmload => when(m, icpt::INTERCEPT_VMLOAD),
        Mnemonic::Vmsave => when(m, icpt::INTERCEPT_VMSAVE),
        Mnemonic::Stgi => when(m, icpt::INTERCEPT_STGI),
        Mnemonic::Clgi => when(m, icpt::INTERCEPT_CLGI),
        // SKINIT (CPUID 8000_0001h ECX[12]) and RDPRU (CPUID 8000_0008h EBX[4]) are not
        // advertised: like any instruction the model lacks they are #UD, which comes
        // before every intercept, so their intercept bits never fire.
        Mnemonic::Skinit | Mnemonic::Rdpru => None,
        Mnemonic::Wbinvd | Mnemonic::Wbnoinvd => when(m, icpt::INTERCEPT_WBINVD),
        // MONITORX/MWAITX are not advertised (#UD, as above).
        Mnemonic::Monitor => when(m, icpt::INTERCEPT_MONITOR),
        // MWAIT: unconditionally, or only with the monitor hardware armed (§15.9, the
        // conditional MWAIT intercept).
        Mnemonic::Mwait => when(m, icpt::INTERCEPT_MWAIT).or_else(|| {
            m.cpu.monitor.armed.and_then(|_| when(m, icpt::INTERCEPT_MWAIT_CONDITIONAL))
        }),
        Mnemonic::Xsetbv => when(m, icpt::INTERCEPT_XSETBV),
        // Decode assists: EXITINFO1 is the linear address of the INVPCID descriptor,
        // EXITINFO2 the register operand, the type (§15.33 "Decode Assists"; see
        // `SvmExitCode::INVPCID`).
        Mnemonic::Invpcid => set(m, icpt::INTERCEPT_INVPCID).then(|| {
            let mut lin = m.cpu.seg(i.mem.seg).base.wrapping_add(i.ea(m));
            if m.cpu.mode != CpuMode::Long64 {
                lin &= 0xFFFF_FFFF;
            }
            let r = d.op0_register();
            let ty = gpr_of(r).map_or(0, |(idx, _)| m.cpu.gpr[usize::from(idx)]);
            let ty = if r.size() == 4 { ty & 0xFFFF_FFFF } else { ty };
            (SvmExitCode::INVPCID, ExitInfo { info1: lin, info2: ty, ..ExitInfo::default() })
        }),
        Mnemonic::Sidt => when(m, icpt::INTERCEPT_IDTR_READ),
        Mnemonic::Sgdt => when(m, icpt::INTERCEPT_GDTR_READ),
        Mnemonic::Sldt => when(m, icpt::INTERCEPT_LDTR_READ),
        Mnemonic::Str => when(m, icpt::INTERCEPT_TR_READ),
        Mnemonic::Lidt => when(m, icpt::INTERCEPT_IDTR_WRITE),
        Mnemonic::Lgdt => when(m, icpt::INTERCEPT_GDTR_WRITE),
        Mnemonic::Lldt => when(m, icpt::INTERCEPT_LDTR_WRITE),
        Mnemonic::Ltr => when(m, icpt::INTERCEPT_TR_WRITE),
        // SMSW reads CR0; LMSW and CLTS write it (§15.8.1; EXITINFO1 bit 63 clear).
        Mnemonic::Smsw => when(m, icpt::INTERCEPT_CR0_READ),
        Mnemonic::Lmsw | Mnemonic::Clts => cr0_write(m, None),
        Mnemonic::Rdmsr | Mnemonic::Wrmsr => {
            if !set(m, icpt::INTERCEPT_MSR_PROT) {
                return None;
            }
            let access =
                if d.mnemonic() == Mnemonic::Rdmsr { MsrAccess::Read } else { MsrAccess::Write };
            let base = m.nested.svm.guest.as_ref()?.vmcb.u64_at(vmcb::MSRPM_BASE_PA);
            let msr = m.cpu.gpr[1] as u32;
            let hit = msr_intercept::intercepted(|o| map_byte(m, base, o), msr, access);
            hit.then(|| {
                (SvmExitCode::MSR, ExitInfo { info1: access.exitinfo1(), ..ExitInfo::default() })
            })
        }
        Mnemonic::Mov => {
            let reg = |n| (d.op_kind(n) == OpKind::Register).then(|| d.op_register(n));
            match (reg(0), reg(1)) {
                (Some(r), Some(_)) if r.is_cr() => {
                    let n = r.number() as u8;
                    if n == 0 {
                        return cr0_write(m, Some(gpr_operand(i, 1)));
                    }
                    let ic = Intercept { word: icpt::VECTOR_CR, bit: 16 + n };
                    set(m, ic).then(|| {
                        let info1 = exit_info::cr_access(true, gpr_operand(i, 1));
                        (SvmExitCode::cr_write(n), ExitInfo { info1, ..ExitInfo::default() })
                    })
                }
                (Some(_), Some(r)) if r.is_cr() => {
                    let n = r.number() as u8;
                    let ic = Intercept { word: icpt::VECTOR_CR, bit: n };
                    set(m, ic).then(|| {
                        let info1 = exit_info::cr_access(true, gpr_operand(i, 0));
                        (SvmExitCode::cr_read(n), ExitInfo { info1, ..ExitInfo::default() })
                    })
                }
                (Some(r), Some(_)) if r.is_dr() => {
                    let n = r.number() as u8;
                    let ic = Intercept { word: icpt::VECTOR_DR, bit: 16 + n };
                    set(m, ic).then(|| {
                        let info1 = exit_info::dr_access(gpr_operand(i, 1));
                        (SvmExitCode::dr_write(n), ExitInfo { info1, ..ExitInfo::default() })
                    })
                }
                (Some(_), Some(r)) if r.is_dr() => {
                    let n = r.number() as u8;
                    let ic = Intercept { word: icpt::VECTOR_DR, bit: n };
                    set(m, ic).then(|| {
                        let info1 = exit_info::dr_access(gpr_operand(i, 0));
                        (SvmExitCode::dr_read(n), ExitInfo { info1, ..ExitInfo::default() })
                    })
                }
                _ => None,
            }
        }
        _ => {
            let io = io_access(m, i)?;
            if !set(m, icpt::INTERCEPT_IOIO_PROT) {
                return None;
            }
            let base = m.nested.svm.guest.as_ref()?.vmcb.u64_at(vmcb::IOPM_BASE_PA);
            let hit = io_intercept::intercepted(|o| map_byte(m, base, o), io.port, io.size);
            // EXITINFO2 of IOIO is the rIP of the next instruction (§15.10.2).
            hit.then(|| {
                (
                    SvmExitCode::IOIO,
                    ExitInfo { info1: io.exitinfo1(), info2: next, ..ExitInfo::default() },
                )
            })
        }
    }
}

/// PAUSE with the PAUSE intercept and its filter (§15.14.4 "Pause Intercept
/// Filtering"): VMRUN loads PAUSE_FILTER_COUNT into an internal count, each PAUSE
/// decrements it, and the PAUSE that brings it to zero exits; a count of 0 exits on
/// every PAUSE. With a nonzero
/// PAUSE_FILTER_THRESHOLD, a PAUSE more than that many cycles after the previous one
/// first reloads the count from PAUSE_FILTER_COUNT (the guest is not spinning). Cycles
/// are hvsim's TSC cycles: one per retired instruction.
fn pause(m: &mut Machine) -> Option<(SvmExitCode, ExitInfo)> {
    if !set(m, icpt::INTERCEPT_PAUSE) {
        return None;
    }
    let now = m.clock();
    let g = m.nested.svm.guest.as_mut()?;
    let threshold = g.vmcb.read(vmcb::PAUSE_FILTER_THRESHOLD, 2);
    if threshold != 0 && g.last_pause.is_some_and(|t| now.wrapping_sub(t) > threshold) {
        g.pause_count = g.vmcb.read(vmcb::PAUSE_FILTER_COUNT, 2) as u16;
    }
    g.last_pause = Some(now);
    if g.pause_count > 0 {
        g.pause_count -= 1;
        if g.pause_count > 0 {
            return None;
        }
    }
    Some((SvmExitCode::PAUSE, ExitInfo::default()))
}

/// The task-switch intercept (§15.14.2 "Task Switch Intercept"), called by every task
/// switch before its checks: in a guest that intercepts task switches, records the
/// #VMEXIT (EXITINFO1 = the target TSS selector; EXITINFO2 = IRET/JMP, the error code
/// to push, EFLAGS.RF) and ends the instruction or the event delivery without a change,
/// as a nested page fault does; the run loop then performs the #VMEXIT with RIP at the
/// instruction (and EXITINTINFO naming the event when a task gate delivered one).
pub fn task_switch(
    m: &mut Machine,
    selector: u16,
    source: crate::cpu::task::TaskSwitchSource,
    error_code: Option<u32>,
) -> Result<(), Fault> {
    use crate::cpu::task::TaskSwitchSource as Cpu;
    use hvsim_svm_model::exit_info::TaskSwitchSource as Exit;
    if !set(m, icpt::INTERCEPT_TASK_SWITCH) {
        return Ok(());
    }
    let source = match source {
        Cpu::Jmp => Exit::Jmp,
        Cpu::Iret => Exit::Iret,
        Cpu::Call | Cpu::Interrupt => Exit::CallOrGate,
    };
    let rf = m.cpu.flags.bit(crate::cpu::flags::RF);
    let (info1, info2) = exit_info::task_switch(selector, source, error_code, rf);
    let info = ExitInfo { info1, info2, ..ExitInfo::default() };
    m.nested.svm.pending_exit = Some((SvmExitCode::TASK_SWITCH, info));
    Err(Fault::NestedPageFault)
}

/// A CR0 write (MOV CR0 with the GPR `gpr`, or LMSW/CLTS for `None`): the CR0 write
/// intercept, else the selective CR0 write intercept when bits other than TS and MP
/// change (§15.8.2 "CR0 Selective Write Intercept").
fn cr0_write(m: &mut Machine, gpr: Option<u8>) -> Option<(SvmExitCode, ExitInfo)> {
    let info1 = gpr.map_or(0, |g| exit_info::cr_access(true, g));
    if set(m, icpt::INTERCEPT_CR0_WRITE) {
        return Some((SvmExitCode::CR0_WRITE, ExitInfo { info1, ..ExitInfo::default() }));
    }
    if !set(m, icpt::INTERCEPT_CR0_SEL_WRITE) {
        return None;
    }
    let new = match gpr {
        Some(g) => m.cpu.gpr[usize::from(g & 15)],
        // CLTS clears TS (not a selective change); LMSW can change PE, MP, EM, TS.
        None => return None,
    };
    let ignored = cr0::TS | cr0::MP;
    ((new ^ m.cpu.cr0) & !ignored != 0)
        .then(|| (SvmExitCode::CR0_SEL_WRITE, ExitInfo { info1, ..ExitInfo::default() }))
}

/// The hook before each guest instruction: `true` if it was intercepted (the #VMEXIT
/// has happened, with RIP = `rip` saved as the guest's and NRIP = `next`).
pub fn check_insn(m: &mut Machine, i: &Insn, rip: u64, next: u64) -> bool {
    m.nested.svm.pending_trap = None;
    if !simple_exceptions_pass(m, i) {
        return false;
    }
    let Some((code, mut info)) = exit_for(m, i, next) else {
        m.nested.svm.pending_trap = write_trap(m, i);
        return false;
    };
    m.cpu.rip = rip;
    info.nrip = Some(next);
    vmexit(m, code, info);
    true
}

/// The register number (CRn, or 16 for EFER) whose write-trap intercept the
/// instruction arms: MOV to CRn, LMSW and CLTS (CR0), WRMSR to EFER (§15.8.3).
fn write_trap(m: &Machine, i: &Insn) -> Option<u8> {
    let d = &i.iced;
    let n = match d.mnemonic() {
        Mnemonic::Mov if d.op_kind(0) == OpKind::Register && d.op0_register().is_cr() => {
            d.op0_register().number() as u8
        }
        Mnemonic::Lmsw | Mnemonic::Clts => 0,
        Mnemonic::Wrmsr if m.cpu.gpr[1] as u32 == hvsim_svm_model::msr::EFER => {
            return set(m, icpt::INTERCEPT_EFER_WRITE_TRAP).then_some(EFER_TRAP);
        }
        _ => return None,
    };
    set(m, Intercept { word: icpt::VECTOR_MISC2, bit: 16 + (n & 15) }).then_some(n)
}

/// [`SvmState::pending_trap`](super::SvmState::pending_trap) value for EFER.
const EFER_TRAP: u8 = 16;

/// After a guest instruction retired: the write trap it armed, if any, exits with the
/// register's new value in EXITINFO1 and RIP and NRIP at the next instruction.
pub fn after_insn(m: &mut Machine) -> bool {
    let Some(n) = m.nested.svm.pending_trap.take() else {
        return false;
    };
    let (code, value) = match n {
        EFER_TRAP => (SvmExitCode::EFER_WRITE_TRAP, m.cpu.efer),
        0 => (SvmExitCode::cr_write_trap(0), m.cpu.cr0),
        2 => (SvmExitCode::cr_write_trap(2), m.cpu.cr2),
        3 => (SvmExitCode::cr_write_trap(3), m.cpu.cr3),
        4 => (SvmExitCode::cr_write_trap(4), m.cpu.cr4),
        8 => (SvmExitCode::cr_write_trap(8), m.cpu.cr8),
        n => (SvmExitCode::cr_write_trap(n), 0),
    };
    let info = ExitInfo { info1: value, nrip: Some(m.cpu.rip), ..ExitInfo::default() };
    vmexit(m, code, info);
    true
}

/// An exception in the guest: intercepted (a #VMEXIT), or delivered in the guest with a
/// shutdown that L1 may intercept.
pub fn on_exception(
    m: &mut Machine,
    e: Exception,
    insn: Option<&Insn>,
) -> Option<Option<StopReason>> {
    m.nested.svm.pending_trap = None;
    if exception_intercepted(m, e.vector) {
        let (info1, info2) = exception_info(&e);
        // Decode assists: a #PF intercept reports the bytes of the faulting instruction
        // (none for a fault on the fetch itself).
        let guest_insn = (e.vector == vector::PF).then(|| match insn {
            Some(i) => (i.bytes, i.len),
            None => ([0; 15], 0),
        });
        let info = ExitInfo { info1, info2, guest_insn, ..ExitInfo::default() };
        vmexit(m, SvmExitCode::exception(e.vector), info);
        return Some(None);
    }
    let r = m.raise_exception(e, insn);
    // A nested page fault while delivering the exception through the guest's IDT
    // (§15.25.6): the #VMEXIT names the exception in EXITINTINFO.
    let event = hvsim_svm_model::event_injection::Event::new(
        hvsim_svm_model::event_injection::EventType::Exception,
        e.vector,
        e.error_code,
    );
    if super::npt_exit(m, insn, event.encode()) {
        return Some(None);
    }
    if matches!(r, Some(StopReason::Shutdown { .. })) && shutdown_intercepted(m) {
        vmexit(m, SvmExitCode::SHUTDOWN, ExitInfo::default());
        return Some(None);
    }
    Some(r)
}
