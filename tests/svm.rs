//! Nested SVM end to end: an L1 hypervisor and its L2 guest assembled with `code_asm`,
//! run on the AMD CPU model. Each test names the APM Vol. 2 chapter 15 section it checks.
//!
//! Layout: L1 at 0x1000 (stack 0x8000) enables EFER.SVME, sets VM_HSAVE_PA and executes
//! VMRUN on the VMCB at 0x10000, then HLT. The test prepares the VMCB from L1's own
//! state (64-bit, CPL 0, identity paging) with RIP at the L2 code (0x20000).

use hvsim::cpu::regs::DescriptorTable;
use hvsim::machine::CATCH_ALL;
use hvsim::nested::svm::state::save_world;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, Vendor};
use hvsim_mmu::Gpa;
use hvsim_svm_model::intercept::{self as icpt, Intercept};
use hvsim_svm_model::io_intercept;
use hvsim_svm_model::msr as svm_msr;
use hvsim_svm_model::vmcb;
use hvsim_svm_model::{CheckId, SvmExitCode, VmcbImage};
use iced_x86::code_asm::*;

#[path = "support/svm_l1.rs"]
mod svm_l1;
use svm_l1::*;

const SAVE2: u64 = 0x12000;
const IDT: u64 = 0x50000;
const HANDLERS: u64 = 0x51000;

fn amd_machine() -> Machine {
    let cfg = MachineConfig { vendor: Vendor::Amd, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.set_exception_catch(CATCH_ALL);
    m
}

/// A machine with `l1` at L1, `l2` at L2, and a VMCB that passes every VMRUN check:
/// L1's state with RIP = L2, ASID 1, VMRUN intercepted, empty MSRPM and IOPM.
fn setup_with(
    l1: impl FnOnce(Asm) -> Result<(), IcedError>,
    l2: impl FnOnce(Asm) -> Result<(), IcedError>,
) -> Machine {
    let mut m = amd_machine();
    m.load(L1, &asm(L1, l1)).unwrap();
    m.enter_mode(GuestMode::Long64, L1, L1_STACK).unwrap();
    m.load(L2, &asm(L2, l2)).unwrap();
    let mut img = VmcbImage::zeroed();
    save_world(&m, &mut img, L2);
    img.set_u64(vmcb::EFER, m.cpu.efer | svm_msr::EFER_SVME);
    img.set_u64(vmcb::RSP, L2_STACK);
    img.set_u64(vmcb::RFLAGS, 2);
    img.write(vmcb::GUEST_ASID, 4, 1);
    img.write(icpt::INTERCEPT_VMRUN.word, 4, u64::from(icpt::INTERCEPT_VMRUN.mask()));
    img.set_u64(vmcb::MSRPM_BASE_PA, MSRPM);
    img.set_u64(vmcb::IOPM_BASE_PA, IOPM);
    m.load(VMCB, img.as_bytes()).unwrap();
    m
}

fn setup(l2: impl FnOnce(Asm) -> Result<(), IcedError>) -> Machine {
    setup_with(l1_vmrun_hlt, l2)
}

fn rd(m: &Machine, off: u16) -> u64 {
    m.mem.read_u64(Gpa(VMCB + u64::from(off)))
}

fn wr(m: &mut Machine, off: u16, v: u64) {
    m.mem.write_u64(Gpa(VMCB + u64::from(off)), v);
}

fn intercept(m: &mut Machine, i: Intercept) {
    let at = Gpa(VMCB + u64::from(i.word));
    let v = m.mem.read_u32(at) | i.mask();
    m.mem.write_u32(at, v);
}

fn exitcode(m: &Machine) -> SvmExitCode {
    SvmExitCode(rd(m, vmcb::EXITCODE))
}

/// Runs until L1 halts after the #VMEXIT.
fn run(m: &mut Machine) {
    let r = m.run(Some(10_000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
}

/// The address of the `n`-th instruction (0-based) of the L2 code, for RIP checks.
fn l2_insn(l2: impl FnOnce(Asm) -> Result<(), IcedError>, n: usize) -> u64 {
    let bytes = asm(L2, l2);
    let mut d = iced_x86::Decoder::with_ip(64, &bytes, L2, iced_x86::DecoderOptions::NONE);
    let mut ip = L2;
    for _ in 0..n {
        ip = d.decode().next_ip();
    }
    ip
}

// ---- Enabling SVM (APM §15.4) and the SVM MSRs (§15.30) --------------------------------

/// APM Vol. 3 "VMRUN": #UD when EFER.SVME = 0.
#[test]
fn vmrun_without_svme_is_ud() {
    let mut m = setup_with(
        |a| {
            a.mov(rax, VMCB)?;
            a.vmrun()
        },
        |a| a.hlt(),
    );
    let r = m.run(Some(100));
    assert_eq!(Machine::exception_of(&r).map(|e| e.vector), Some(6), "{r}");
    assert_eq!(m.nested.svm.vmruns, 0);
}

/// APM Vol. 3 "VMRUN": #GP(0) when rAX is not 4-KiB aligned.
#[test]
fn vmrun_unaligned_vmcb_is_gp() {
    let mut m = setup_with(
        |a| {
            enable_svm(a)?;
            a.mov(rax, VMCB + 8)?;
            a.vmrun()
        },
        |a| a.hlt(),
    );
    let r = m.run(Some(100));
    let e = Machine::exception_of(&r).expect("exception");
    assert_eq!((e.vector, e.error_code), (13, Some(0)));
}

/// APM §15.30.4 "VM_HSAVE_PA MSR": the address must be 4-KiB aligned (#GP otherwise).
#[test]
fn vm_hsave_pa_unaligned_is_gp_and_aligned_reads_back() {
    let mut m = setup_with(
        |a| {
            a.mov(ecx, svm_msr::VM_HSAVE_PA)?;
            a.mov(eax, 0x5000)?;
            a.xor(edx, edx)?;
            a.wrmsr()?;
            a.rdmsr()?;
            a.mov(ebx, eax)?;
            a.mov(eax, 0x5010)?;
            a.wrmsr()
        },
        |a| a.hlt(),
    );
    let r = m.run(Some(100));
    assert_eq!(Machine::exception_of(&r).map(|e| e.vector), Some(13));
    assert_eq!(m.cpu.gpr[3], 0x5000);
    assert_eq!(m.nested.svm.hsave_pa, 0x5000);
}

/// APM §15.4 "Enabling SVM": with VM_CR.SVMDIS set, setting EFER.SVME is #GP.
#[test]
fn vm_cr_svmdis_blocks_efer_svme() {
    let mut m = setup_with(
        |a| {
            a.mov(ecx, svm_msr::VM_CR)?;
            a.mov(eax, svm_msr::VM_CR_SVMDIS as u32)?;
            a.xor(edx, edx)?;
            a.wrmsr()?;
            enable_svm(a)
        },
        |a| a.hlt(),
    );
    let r = m.run(Some(100));
    assert_eq!(Machine::exception_of(&r).map(|e| e.vector), Some(13));
    assert_eq!(m.cpu.efer & svm_msr::EFER_SVME, 0);
}

// ---- VMRUN and #VMEXIT (§15.5, §15.6) ---------------------------------------------------

fn l2_vmmcall(a: Asm) -> Result<(), IcedError> {
    a.mov(rbx, 0x1234u64)?;
    a.mov(rax, 0xAAAAu64)?;
    a.vmmcall()?;
    a.hlt()
}

/// APM §15.5.1, §15.6 and §15.7.1: VMMCALL exits with VMEXIT_VMMCALL; the VMCB holds the
/// guest RIP of the VMMCALL, NRIP after it and the guest RAX; L1 resumes after VMRUN
/// with its RAX and RSP, GIF = 0, and the guest's other GPRs (not switched).
#[test]
fn vmmcall_round_trip() {
    let mut m = setup(l2_vmmcall);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    run(&mut m);
    let at = l2_insn(l2_vmmcall, 2);
    assert_eq!(exitcode(&m), SvmExitCode::VMMCALL);
    assert_eq!(rd(&m, vmcb::RIP), at);
    assert_eq!(rd(&m, vmcb::NRIP), at + 3);
    assert_eq!(rd(&m, vmcb::RAX), 0xAAAA);
    assert_eq!(rd(&m, vmcb::RSP), L2_STACK);
    assert_eq!(m.cpu.gpr[0], VMCB, "host RAX reloaded");
    assert_eq!(m.cpu.gpr[4], L1_STACK, "host RSP reloaded");
    assert_eq!(m.cpu.gpr[3], 0x1234, "RBX is not switched");
    assert!(!m.nested.svm.gif);
    assert!(!m.nested.in_guest());
    assert_eq!((m.nested.svm.vmruns, m.nested.svm.vmexits), (1, 1));
    assert_eq!(m.cpu.dr[7], 0x400);
}

/// APM Vol. 3 "VMMCALL": not intercepted, VMMCALL raises #UD in the guest.
#[test]
fn vmmcall_not_intercepted_is_ud_in_guest() {
    let mut m = setup(l2_vmmcall);
    let r = m.run(Some(100));
    assert_eq!(Machine::exception_of(&r).map(|e| e.vector), Some(6));
    assert!(m.nested.in_guest());
}

/// APM §15.5.1: VMRUN saves the host state to VM_HSAVE_PA.
#[test]
fn vmrun_writes_host_state_to_hsave() {
    let mut m = setup(l2_vmmcall);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    run_into_guest(&mut m);
    let h = |off: u16| m.mem.read_u64(Gpa(HSAVE + u64::from(off)));
    assert_eq!(h(vmcb::RAX), VMCB);
    assert_eq!(h(vmcb::RSP), L1_STACK);
    assert_eq!(h(vmcb::CR3), m.cpu.cr3);
    assert_ne!(h(vmcb::EFER) & svm_msr::EFER_SVME, 0);
    assert!(m.nested.svm.gif, "VMRUN sets GIF");
}

/// APM §15.6: the guest state is saved on #VMEXIT (CR2, RFLAGS, CPL, segment state).
#[test]
fn vmexit_saves_guest_state() {
    let l2 = |a: Asm| {
        a.mov(rax, 0xDEAD_0000u64)?;
        a.mov(cr2, rax)?;
        a.stc()?;
        a.vmmcall()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    run(&mut m);
    assert_eq!(rd(&m, vmcb::CR2), 0xDEAD_0000);
    assert_eq!(rd(&m, vmcb::RFLAGS) & 1, 1, "CF");
    assert_eq!(m.mem.read_u16(Gpa(VMCB + u64::from(vmcb::CS_SELECTOR))), 0x08);
    assert_eq!(m.mem.read_u16(Gpa(VMCB + u64::from(vmcb::CS_ATTRIB))), 0xA9B);
    assert_eq!(m.mem.read_u8(Gpa(VMCB + u64::from(vmcb::CPL))), 0);
}

// ---- VMEXIT_INVALID: one test per consistency check (§15.5.1) ----------------------------

fn expect_invalid(mut m: Machine, check: CheckId) {
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::INVALID, "{check:?}");
    assert_eq!(m.nested.svm.last_invalid.map(|e| e.check), Some(check));
    assert_eq!(m.nested.svm.vmruns, 0);
    assert!(!m.nested.in_guest());
    assert_eq!(m.cpu.gpr[0], VMCB, "L1 continues with its state");
}

macro_rules! invalid_vmcb {
    ($( $name:ident: $check:ident, |$m:ident| $body:expr; )*) => {$(
        /// APM §15.5.1 "Canonicalization and Consistency Checks": VMEXIT_INVALID.
        #[test]
        fn $name() {
            let mut $m = setup(l2_vmmcall);
            $body;
            expect_invalid($m, CheckId::$check);
        }
    )*};
}

invalid_vmcb! {
    invalid_efer_svme_clear: EferSvmeClear, |m| { let e = rd(&m, vmcb::EFER); wr(&mut m, vmcb::EFER, e & !svm_msr::EFER_SVME) };
    invalid_cr0_cd_clear_nw_set: Cr0CdClearNwSet, |m| { let c = rd(&m, vmcb::CR0); wr(&mut m, vmcb::CR0, (c & !(1 << 30)) | 1 << 29) };
    invalid_cr0_high_bits: Cr0HighBits, |m| { let c = rd(&m, vmcb::CR0); wr(&mut m, vmcb::CR0, c | 1 << 40) };
    invalid_cr3_mbz: Cr3Mbz, |m| { let c = rd(&m, vmcb::CR3); wr(&mut m, vmcb::CR3, c | 1 << 50) };
    invalid_cr4_mbz: Cr4Mbz, |m| { let c = rd(&m, vmcb::CR4); wr(&mut m, vmcb::CR4, c | 1 << 13) };
    invalid_dr6_high_bits: Dr6HighBits, |m| wr(&mut m, vmcb::DR6, 1 << 32);
    invalid_dr7_high_bits: Dr7HighBits, |m| wr(&mut m, vmcb::DR7, 1 << 33 | 0x400);
    invalid_efer_mbz: EferMbz, |m| { let e = rd(&m, vmcb::EFER); wr(&mut m, vmcb::EFER, e | 1 << 2) };
    invalid_long_mode_without_pae: LongModeWithoutPae, |m| { let c = rd(&m, vmcb::CR4); wr(&mut m, vmcb::CR4, c & !(1 << 5)) };
    invalid_long_mode_without_pe: LongModeWithoutPe, |m| { let c = rd(&m, vmcb::CR0); wr(&mut m, vmcb::CR0, c & !1) };
    invalid_long_mode_cs_l_and_d: LongModeCsLAndD, |m| m.mem.write_u16(Gpa(VMCB + u64::from(vmcb::CS_ATTRIB)), 0xE9B);
    invalid_vmrun_intercept_clear: VmrunInterceptClear, |m| m.mem.write_u32(Gpa(VMCB + u64::from(icpt::VECTOR_MISC2)), 0);
    invalid_msrpm_beyond_maxphyaddr: MsrpmBeyondMaxPhysAddr, |m| wr(&mut m, vmcb::MSRPM_BASE_PA, (1 << 40) - 0x1000);
    invalid_iopm_beyond_maxphyaddr: IopmBeyondMaxPhysAddr, |m| wr(&mut m, vmcb::IOPM_BASE_PA, (1 << 40) - 0x2000);
    invalid_event_reserved_type: IllegalEventInjection, |m| wr(&mut m, vmcb::EVENTINJ, 1 << 31 | 1 << 8 | 0x20);
    invalid_event_exception_vector_2: IllegalEventInjection, |m| wr(&mut m, vmcb::EVENTINJ, 1 << 31 | 3 << 8 | 2);
    invalid_event_exception_reserved_vector: IllegalEventInjection, |m| wr(&mut m, vmcb::EVENTINJ, 1 << 31 | 3 << 8 | 15);
    invalid_event_nmi_vector_not_2: IllegalEventInjection, |m| wr(&mut m, vmcb::EVENTINJ, 1 << 31 | 2 << 8 | 3);
    invalid_asid_zero: AsidZero, |m| m.mem.write_u32(Gpa(VMCB + u64::from(vmcb::GUEST_ASID)), 0);
    // Nested paging is supported (CPUID 8000_000Ah EDX.NP), so NP_ENABLE is accepted and
    // nCR3 is checked (APM §15.25.3; see tests/svm_npt.rs).
    invalid_nested_cr3_mbz: NestedCr3Mbz, |m| { wr(&mut m, vmcb::NP_CONTROL, 1); wr(&mut m, vmcb::N_CR3, 1 << 45) };
}

/// APM §15.5.1: "EFER.LMA or EFER.LME is non-zero and this processor does not support
/// long mode" (the model loses long mode once L1 has enabled SVM).
#[test]
fn invalid_long_mode_unsupported() {
    let mut m = setup(l2_vmmcall);
    m.run(Some(8)); // enable_svm
    assert_ne!(m.cpu.efer & svm_msr::EFER_SVME, 0);
    m.cpuid.set_feature(hvsim::cpuid::Feature::Lm, false);
    expect_invalid(m, CheckId::LongModeUnsupported);
}

// ---- Instruction intercepts (§15.9-§15.11) -----------------------------------------------

/// Runs `l2` with `i` intercepted and returns the machine after the #VMEXIT.
fn intercepted(i: Intercept, l2: impl FnOnce(Asm) -> Result<(), IcedError>) -> Machine {
    let mut m = setup(l2);
    intercept(&mut m, i);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    run(&mut m);
    m
}

/// APM §15.9 "Instruction Intercepts": CPUID.
#[test]
fn cpuid_intercept() {
    let l2 = |a: Asm| {
        a.nop()?;
        a.cpuid()?;
        a.vmmcall()
    };
    let m = intercepted(icpt::INTERCEPT_CPUID, l2);
    assert_eq!(exitcode(&m), SvmExitCode::CPUID);
    assert_eq!(rd(&m, vmcb::RIP), L2 + 1);
    assert_eq!(rd(&m, vmcb::NRIP), L2 + 3);
}

/// APM §15.9: without the intercept, CPUID executes in the guest (with the SVM leaf).
#[test]
fn cpuid_not_intercepted_runs_in_guest() {
    let l2 = |a: Asm| {
        a.mov(eax, 0x8000_000Au32)?;
        a.cpuid()?;
        a.vmmcall()
    };
    let m = intercepted(icpt::INTERCEPT_VMMCALL, l2);
    assert_eq!(exitcode(&m), SvmExitCode::VMMCALL);
    assert_eq!(m.cpu.gpr[3] as u32, hvsim::cpuid::SVM_ASIDS, "EBX = number of ASIDs");
    assert_eq!(m.cpu.gpr[2] as u32, hvsim::nested::svm::FEATURES_EDX);
}

/// APM §15.9: HLT.
#[test]
fn hlt_intercept() {
    let m = intercepted(icpt::INTERCEPT_HLT, |a| a.hlt());
    assert_eq!(exitcode(&m), SvmExitCode::HLT);
    assert_eq!(rd(&m, vmcb::RIP), L2);
    assert_eq!(rd(&m, vmcb::NRIP), L2 + 1);
}

/// APM §15.9: RDTSC.
#[test]
fn rdtsc_intercept() {
    let m = intercepted(icpt::INTERCEPT_RDTSC, |a| a.rdtsc());
    assert_eq!(exitcode(&m), SvmExitCode::RDTSC);
}

/// APM §15.9: PAUSE; with PAUSE_FILTER_COUNT = 0 every PAUSE exits (§15.14.4).
#[test]
fn pause_intercept() {
    let m = intercepted(icpt::INTERCEPT_PAUSE, |a| a.pause());
    assert_eq!(exitcode(&m), SvmExitCode::PAUSE);
}

/// L2 for the pause-filter tests: PAUSE, `gap` NOPs, five times, counting in RBX.
fn l2_pauses(gap: usize) -> impl Fn(Asm) -> Result<(), IcedError> + Copy {
    move |a: Asm| {
        a.xor(ebx, ebx)?;
        for _ in 0..5 {
            a.pause()?;
            a.inc(rbx)?;
            for _ in 0..gap {
                a.nop()?;
            }
        }
        a.vmmcall()
    }
}

/// APM §15.14.4 "Pause Intercept Filtering": with PAUSE_FILTER_COUNT = 3, the first two
/// PAUSEs run and the third exits (RBX counted two), at the third PAUSE.
#[test]
fn pause_filter_count_delays_the_intercept() {
    let mut m = setup(l2_pauses(0));
    intercept(&mut m, icpt::INTERCEPT_PAUSE);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    m.mem.write_u16(Gpa(VMCB + u64::from(vmcb::PAUSE_FILTER_COUNT)), 3);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::PAUSE);
    assert_eq!(m.cpu.gpr[3], 2);
    // xor ebx,ebx (2) + 2 x (pause 2 + inc rbx 3)
    assert_eq!(rd(&m, vmcb::RIP), L2 + 2 + 2 * 5);
}

/// APM §15.14.4: with PAUSE_FILTER_THRESHOLD, PAUSEs further apart than the threshold
/// reload the count each time, so a count of 2 never runs out (the guest reaches
/// VMMCALL); closer together than the threshold, the second PAUSE exits.
#[test]
fn pause_filter_threshold_reloads_the_count() {
    for (gap, exit, count) in [(10, SvmExitCode::VMMCALL, 5), (1, SvmExitCode::PAUSE, 1)] {
        let mut m = setup(l2_pauses(gap));
        intercept(&mut m, icpt::INTERCEPT_PAUSE);
        intercept(&mut m, icpt::INTERCEPT_VMMCALL);
        m.mem.write_u16(Gpa(VMCB + u64::from(vmcb::PAUSE_FILTER_COUNT)), 2);
        m.mem.write_u16(Gpa(VMCB + u64::from(vmcb::PAUSE_FILTER_THRESHOLD)), 5);
        run(&mut m);
        assert_eq!(exitcode(&m), exit, "gap {gap}");
        assert_eq!(m.cpu.gpr[3], count, "gap {gap}");
    }
}

/// APM §15.9: INVLPG.
#[test]
fn invlpg_intercept() {
    let m = intercepted(icpt::INTERCEPT_INVLPG, |a| {
        a.mov(rbx, 0x3000u64)?;
        a.invlpg(byte_ptr(rbx + 0x10))
    });
    assert_eq!(exitcode(&m), SvmExitCode::INVLPG);
    // Decode assists (APM §15.33.2): the linear address.
    assert_eq!(rd(&m, vmcb::EXITINFO1), 0x3010);
}

/// APM §15.33.3 "INTn Intercept" with decode assists: EXITINFO1 = the vector.
#[test]
fn intn_intercept_reports_vector() {
    let m = intercepted(icpt::INTERCEPT_INTN, |a| a.int(0x42));
    assert_eq!(exitcode(&m), SvmExitCode::SWINT);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 0x42);
    assert_eq!(rd(&m, vmcb::NRIP), L2 + 2);
}

/// APM §15.9: VMRUN executed by the guest exits to L1 (its intercept is mandatory).
#[test]
fn vmrun_in_guest_exits() {
    let l2 = |a: Asm| {
        a.mov(rax, 0x60000u64)?;
        a.vmrun()
    };
    let m = intercepted(icpt::INTERCEPT_VMRUN, l2);
    assert_eq!(exitcode(&m), SvmExitCode::VMRUN);
    assert_eq!(rd(&m, vmcb::RAX), 0x60000);
}

/// APM §15.5.1 and Vol. 3 "VMRUN" (SVM in an SVM guest): L2 runs with EFER.SVME = 1 and
/// sees it; once it clears SVME itself, its VMRUN is #UD (checked before the intercept),
/// not an exit.
#[test]
fn guest_sees_svme_and_its_vmrun_is_ud_without_it() {
    let l2 = |a: Asm| {
        a.mov(ecx, svm_msr::EFER)?;
        a.rdmsr()?;
        a.mov(r12, rax)?;
        a.and(eax, !(svm_msr::EFER_SVME as i32))?;
        a.wrmsr()?;
        a.mov(rax, 0x60000u64)?;
        a.vmrun()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_EXCP6);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::EXCP6);
    assert_ne!(m.cpu.gpr[12] & svm_msr::EFER_SVME, 0, "L2 read EFER.SVME = 1");
    assert_eq!(rd(&m, vmcb::EFER) & svm_msr::EFER_SVME, 0);
}

/// APM Vol. 3 Appendix E "CPUID Fn8000_000A_EDX": exactly the implemented features are
/// advertised: nested paging (0), NRIP save (3), VMCB clean bits (5), flush by ASID (6),
/// decode assists (7), PAUSE filter (10) and its threshold (12); nothing else (no LBR
/// virtualization, TSC ratio, AVIC, virtual VMLOAD/VMSAVE or vGIF).
#[test]
fn cpuid_8000_000a_reports_exactly_the_implemented_features() {
    let m = amd_machine();
    let [_, asids, _, features] = m.cpuid.query(0x8000_000A, 0);
    let bits: Vec<u32> = (0..32).filter(|b| features & (1 << b) != 0).collect();
    assert_eq!(bits, vec![0, 3, 5, 6, 7, 10, 12]);
    assert_eq!(features, hvsim::nested::svm::FEATURES_EDX);
    assert!(asids > 1, "ASIDs besides the host's 0");
}

/// APM §15.9: the simple exceptions come first: RDMSR at CPL 3 is #GP, not an intercept.
#[test]
fn msr_intercept_after_cpl_check() {
    let mut m = setup(|a| a.rdmsr());
    intercept(&mut m, icpt::INTERCEPT_MSR_PROT);
    m.mem.write_u8(Gpa(MSRPM), 0xFF);
    m.mem.write_u8(Gpa(VMCB + u64::from(vmcb::CPL)), 3);
    let r = m.run(Some(100));
    assert_eq!(Machine::exception_of(&r).map(|e| e.vector), Some(13));
    assert!(m.nested.in_guest());
}

/// APM §15.11 "MSR Intercepts": RDMSR of an MSR whose MSRPM read bit is set exits with
/// EXITINFO1 = 0; WRMSR uses the odd bit and EXITINFO1 = 1.
#[test]
fn msr_intercept_read_and_write() {
    let read = |a: Asm| {
        a.mov(ecx, 0xC000_0081u32)?; // STAR
        a.rdmsr()
    };
    let mut m = setup(read);
    intercept(&mut m, icpt::INTERCEPT_MSR_PROT);
    m.mem.write_u8(Gpa(MSRPM + 0x800 + 0x20), 0b0100); // STAR read: bit 2*0x81 = 258
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::MSR);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 0);

    let write = |a: Asm| {
        a.mov(ecx, 0xC000_0081u32)?;
        a.xor(eax, eax)?;
        a.xor(edx, edx)?;
        a.rdmsr()?; // read bit clear: executes
        a.wrmsr()
    };
    let mut m = setup(write);
    intercept(&mut m, icpt::INTERCEPT_MSR_PROT);
    m.mem.write_u8(Gpa(MSRPM + 0x820), 0b1000); // STAR write
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::MSR);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 1);
    assert_eq!(rd(&m, vmcb::RIP), l2_insn(write, 4));
}

/// APM §15.11: MSRs outside the three MSRPM ranges are always intercepted.
#[test]
fn msr_outside_msrpm_ranges_always_intercepted() {
    let l2 = |a: Asm| {
        a.mov(ecx, 0x4000_0000u32)?;
        a.rdmsr()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_MSR_PROT);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::MSR);
}

/// APM §15.10 "I/O Intercepts": OUT to a port set in the IOPM; EXITINFO1 has the port,
/// SZ8 and A64; EXITINFO2 is the next RIP.
#[test]
fn ioio_intercept_out() {
    let l2 = |a: Asm| {
        a.nop()?;
        a.out(0x80, al)
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_IOIO_PROT);
    m.mem.write_u8(Gpa(IOPM + 0x10), 1); // port 0x80
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::IOIO);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 0x0080_0000 | io_intercept::SZ8 | io_intercept::A64);
    assert_eq!(rd(&m, vmcb::EXITINFO2), L2 + 3);
    assert_eq!(rd(&m, vmcb::RIP), L2 + 1);
}

/// APM §15.10.1: a 2-byte IN from port 0x7F checks the bits of ports 0x7F and 0x80.
#[test]
fn ioio_intercept_multi_byte_access_spans_ports() {
    let l2 = |a: Asm| {
        a.mov(dx, 0x7Fu32)?;
        a.in_(ax, dx)
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_IOIO_PROT);
    m.mem.write_u8(Gpa(IOPM + 0x10), 1); // port 0x80 only
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::IOIO);
    let info = io_intercept::IoAccess::decode(rd(&m, vmcb::EXITINFO1));
    assert_eq!((info.port, info.is_in, info.size, info.string), (0x7F, true, 2, false));
}

/// APM §15.10.2: string I/O reports STR, REP and the segment.
#[test]
fn ioio_intercept_rep_outs() {
    let l2 = |a: Asm| {
        a.mov(dx, 0x80u32)?;
        a.mov(ecx, 2u32)?;
        a.mov(rsi, 0x3000u64)?;
        a.rep().outsd()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_IOIO_PROT);
    m.mem.write_u8(Gpa(IOPM + 0x10), 1);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::IOIO);
    let info = io_intercept::IoAccess::decode(rd(&m, vmcb::EXITINFO1));
    assert_eq!(
        (info.string, info.rep, info.size, info.segment, info.is_in),
        (true, true, 4, 3, false)
    );
}

/// APM §15.10: a port whose IOPM bit is clear is not intercepted.
#[test]
fn ioio_not_intercepted_when_bit_clear() {
    let l2 = |a: Asm| {
        a.out(0x81, al)?;
        a.vmmcall()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_IOIO_PROT);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    m.mem.write_u8(Gpa(IOPM + 0x10), 1);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::VMMCALL);
}

/// APM §15.8.1 "MOV-to/from-CR Intercepts" with decode assists: EXITINFO1 bit 63 and
/// the GPR number.
#[test]
fn cr_read_and_write_intercepts() {
    let m = intercepted(icpt::INTERCEPT_CR3_READ, |a| a.mov(rdx, cr3));
    assert_eq!(exitcode(&m), SvmExitCode::CR3_READ);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 1 << 63 | 2);
    let m = intercepted(icpt::INTERCEPT_CR4_WRITE, |a| {
        a.mov(rbx, cr4)?;
        a.mov(cr4, rbx)
    });
    assert_eq!(exitcode(&m), SvmExitCode::CR4_WRITE);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 1 << 63 | 3);
}

/// APM §15.8.3 "CR Write Traps": the write completes, then the trap exits with the new
/// value in EXITINFO1 and RIP = NRIP = the next instruction.
#[test]
fn cr_write_trap() {
    let l2 = |a: Asm| {
        a.mov(rax, cr4)?;
        a.or(rax, 1 << 7)?; // PGE
        a.mov(cr4, rax)?;
        a.nop()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_CR4_WRITE_TRAP);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::CR4_WRITE_TRAP);
    let next = l2_insn(l2, 3);
    assert_eq!(rd(&m, vmcb::RIP), next);
    assert_eq!(rd(&m, vmcb::NRIP), next);
    assert_eq!(rd(&m, vmcb::EXITINFO1), rd(&m, vmcb::CR4));
    assert_ne!(rd(&m, vmcb::CR4) & 1 << 7, 0, "the write took effect");
}

/// APM §15.8.3: the EFER write trap (WRMSR to EFER not intercepted by the MSRPM).
#[test]
fn efer_write_trap() {
    let l2 = |a: Asm| {
        a.mov(ecx, svm_msr::EFER)?;
        a.rdmsr()?;
        a.or(eax, 1)?; // SCE
        a.wrmsr()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_EFER_WRITE_TRAP);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::EFER_WRITE_TRAP);
    assert_eq!(rd(&m, vmcb::EXITINFO1) & 1, 1);
    assert_eq!(rd(&m, vmcb::EXITINFO1), rd(&m, vmcb::EFER));
}

/// APM §15.8.2 "CR0 Selective Write Intercept": only changes outside TS and MP exit.
#[test]
fn cr0_selective_write_intercept() {
    let l2 = |a: Asm| {
        a.mov(rax, cr0)?;
        a.xor(rax, 8)?; // TS: not a selective change
        a.mov(cr0, rax)?;
        a.xor(rax, 1 << 18)?; // AM
        a.mov(cr0, rax)
    };
    let m = intercepted(icpt::INTERCEPT_CR0_SEL_WRITE, l2);
    assert_eq!(exitcode(&m), SvmExitCode::CR0_SEL_WRITE);
    assert_eq!(rd(&m, vmcb::RIP), l2_insn(l2, 4));
}

/// APM §15.8 "DR intercepts".
#[test]
fn dr_intercepts() {
    let m = intercepted(icpt::INTERCEPT_DR7_READ, |a| a.mov(rcx, dr7));
    assert_eq!(exitcode(&m), SvmExitCode::DR7_READ);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 1);
    let m = intercepted(icpt::INTERCEPT_DR0_WRITE, |a| a.mov(dr0, rax));
    assert_eq!(exitcode(&m), SvmExitCode::DR0_WRITE);
}

/// APM §15.9: descriptor-table reads and writes.
#[test]
fn descriptor_table_intercepts() {
    let m = intercepted(icpt::INTERCEPT_IDTR_READ, |a| a.sidt(ptr(0x3000u64)));
    assert_eq!(exitcode(&m), SvmExitCode::IDTR_READ);
    let m = intercepted(icpt::INTERCEPT_GDTR_WRITE, |a| a.lgdt(ptr(0x3000u64)));
    assert_eq!(exitcode(&m), SvmExitCode::GDTR_WRITE);
    let m = intercepted(icpt::INTERCEPT_TR_READ, |a| a.str(ax));
    assert_eq!(exitcode(&m), SvmExitCode::TR_READ);
}

/// APM §15.9: the other descriptor-table intercepts: IDTR write, GDTR read, LDTR read
/// and write, TR write (each before the instruction's own operand checks).
#[test]
fn remaining_descriptor_table_intercepts() {
    let cases: [(Intercept, SvmExitCode, fn(Asm) -> Result<(), IcedError>); 5] = [
        (icpt::INTERCEPT_IDTR_WRITE, SvmExitCode::IDTR_WRITE, |a| a.lidt(ptr(0x3000u64))),
        (icpt::INTERCEPT_GDTR_READ, SvmExitCode::GDTR_READ, |a| a.sgdt(ptr(0x3000u64))),
        (icpt::INTERCEPT_LDTR_READ, SvmExitCode::LDTR_READ, |a| a.sldt(ax)),
        (icpt::INTERCEPT_LDTR_WRITE, SvmExitCode::LDTR_WRITE, |a| a.lldt(ax)),
        (icpt::INTERCEPT_TR_WRITE, SvmExitCode::TR_WRITE, |a| a.ltr(ax)),
    ];
    for (i, code, l2) in cases {
        let m = intercepted(i, l2);
        assert_eq!(exitcode(&m), code, "{code}");
        assert_eq!(rd(&m, vmcb::RIP), L2, "{code}");
    }
}

/// APM §15.9: PUSHF, POPF, INTn, IRET, INVD, WBINVD, RDTSCP, ICEBP.
#[test]
fn miscellaneous_instruction_intercepts() {
    let cases: [(Intercept, SvmExitCode, fn(Asm) -> Result<(), IcedError>); 7] = [
        (icpt::INTERCEPT_PUSHF, SvmExitCode::PUSHF, |a| a.pushfq()),
        (icpt::INTERCEPT_POPF, SvmExitCode::POPF, |a| a.popfq()),
        (icpt::INTERCEPT_INTN, SvmExitCode::SWINT, |a| a.int(0x40)),
        (icpt::INTERCEPT_IRET, SvmExitCode::IRET, |a| a.iretq()),
        (icpt::INTERCEPT_INVD, SvmExitCode::INVD, |a| a.invd()),
        (icpt::INTERCEPT_WBINVD, SvmExitCode::WBINVD, |a| a.wbinvd()),
        (icpt::INTERCEPT_RDTSCP, SvmExitCode::RDTSCP, |a| a.rdtscp()),
    ];
    for (i, code, l2) in cases {
        let m = intercepted(i, l2);
        assert_eq!(exitcode(&m), code, "{code}");
        assert_eq!(rd(&m, vmcb::RIP), L2, "{code}");
    }
    let m = intercepted(icpt::INTERCEPT_ICEBP, |a| a.int1());
    assert_eq!(exitcode(&m), SvmExitCode::ICEBP);
}

/// APM §15.9: RDPMC and RSM (hvsim has no SMM; the intercept comes first).
#[test]
fn rdpmc_and_rsm_intercepts() {
    let m = intercepted(icpt::INTERCEPT_RDPMC, |a| a.rdpmc());
    assert_eq!(exitcode(&m), SvmExitCode::RDPMC);
    let m = intercepted(icpt::INTERCEPT_RSM, |a| a.rsm());
    assert_eq!(exitcode(&m), SvmExitCode::RSM);
    assert_eq!(rd(&m, vmcb::RIP), L2);
}

/// APM §15.9: XSETBV's #UD (CR4.OSXSAVE = 0; XSAVE is not advertised, so a guest can
/// never set OSXSAVE: VMRUN refuses it as a reserved CR4 bit) comes before its
/// intercept, so the XSETBV intercept never fires on this model.
#[test]
fn xsetbv_is_ud_before_its_intercept() {
    let l2 = |a: Asm| {
        a.xor(ecx, ecx)?;
        a.mov(eax, 3)?;
        a.xor(edx, edx)?;
        a.xsetbv()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_XSETBV);
    intercept(&mut m, icpt::INTERCEPT_EXCP6);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::EXCP6);
    assert_eq!(rd(&m, vmcb::RIP), L2 + 2 + 5 + 2, "at XSETBV");
}

/// APM §15.9 with §15.33 "Decode Assists": INVPCID exits with the descriptor's linear
/// address in EXITINFO1 and the type in EXITINFO2.
#[test]
fn invpcid_intercept_reports_descriptor_and_type() {
    let l2 = |a: Asm| {
        a.mov(rbx, 0x3000u64)?;
        a.mov(ecx, 2)?;
        a.invpcid(rcx, ptr(rbx + 0x10))
    };
    let m = intercepted(icpt::INTERCEPT_INVPCID, l2);
    assert_eq!(exitcode(&m), SvmExitCode::INVPCID);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 0x3010);
    assert_eq!(rd(&m, vmcb::EXITINFO2), 2);
}

/// APM §15.9: MONITOR, MWAIT, and the conditional MWAIT intercept, which exits only with
/// the monitor armed.
#[test]
fn monitor_and_mwait_intercepts() {
    let monitor = |a: Asm| {
        a.mov(eax, 0x3000)?;
        a.xor(ecx, ecx)?;
        a.xor(edx, edx)?;
        a.monitor()
    };
    let m = intercepted(icpt::INTERCEPT_MONITOR, monitor);
    assert_eq!(exitcode(&m), SvmExitCode::MONITOR);
    let mwait = |a: Asm| {
        a.xor(eax, eax)?;
        a.xor(ecx, ecx)?;
        a.mwait()
    };
    let m = intercepted(icpt::INTERCEPT_MWAIT, mwait);
    assert_eq!(exitcode(&m), SvmExitCode::MWAIT);
    // Conditional: not armed, MWAIT runs (and the guest waits: an MWAIT with nothing
    // pending halts until an interrupt, so the run stops halted in the guest).
    let mut m = setup(mwait);
    intercept(&mut m, icpt::INTERCEPT_MWAIT_CONDITIONAL);
    let _ = m.run(Some(100));
    assert!(m.nested.in_guest(), "not armed: no exit");
    let armed = |a: Asm| {
        monitor(a)?;
        a.xor(eax, eax)?;
        a.mwait()
    };
    let m = intercepted(icpt::INTERCEPT_MWAIT_CONDITIONAL, armed);
    assert_eq!(exitcode(&m), SvmExitCode::MWAIT_CONDITIONAL);
}

/// SKINIT and RDPRU are not advertised (CPUID 8000_0001h ECX[12], 8000_0008h EBX[4]):
/// they raise #UD in the guest whether or not their intercept bits are set (APM §15.9:
/// instruction intercepts come after #UD).
#[test]
fn unadvertised_skinit_and_rdpru_are_ud_despite_their_intercepts() {
    let cases: [(Intercept, fn(Asm) -> Result<(), IcedError>); 2] = [
        (icpt::INTERCEPT_SKINIT, |a| {
            a.mov(eax, 0x3000)?;
            a.skinit()
        }),
        (icpt::INTERCEPT_RDPRU, |a| {
            a.xor(ecx, ecx)?;
            a.rdpru()
        }),
    ];
    for (i, l2) in cases {
        let mut m = setup(l2);
        intercept(&mut m, i);
        intercept(&mut m, icpt::INTERCEPT_EXCP6);
        run(&mut m);
        assert_eq!(exitcode(&m), SvmExitCode::EXCP6);
    }
}

/// APM §15.9: STGI/CLGI/VMLOAD/VMSAVE in the guest.
#[test]
fn svm_instruction_intercepts() {
    let m = intercepted(icpt::INTERCEPT_CLGI, |a| a.clgi());
    assert_eq!(exitcode(&m), SvmExitCode::CLGI);
    let m = intercepted(icpt::INTERCEPT_STGI, |a| a.stgi());
    assert_eq!(exitcode(&m), SvmExitCode::STGI);
    let l2 = |a: Asm| {
        a.mov(rax, SAVE2)?;
        a.vmsave()
    };
    let m = intercepted(icpt::INTERCEPT_VMSAVE, l2);
    assert_eq!(exitcode(&m), SvmExitCode::VMSAVE);
    let l2 = |a: Asm| {
        a.mov(rax, SAVE2)?;
        a.vmload()
    };
    let m = intercepted(icpt::INTERCEPT_VMLOAD, l2);
    assert_eq!(exitcode(&m), SvmExitCode::VMLOAD);
}

// ---- Exceptions and shutdown (§15.12, §15.14) ---------------------------------------------

/// APM §15.12 "Exception Intercepts": #UD exits with VMEXIT_EXCP6, guest RIP at UD2.
#[test]
fn exception_intercept_ud() {
    let l2 = |a: Asm| {
        a.nop()?;
        a.ud2()
    };
    let m = intercepted(icpt::INTERCEPT_EXCP6, l2);
    assert_eq!(exitcode(&m), SvmExitCode::EXCP6);
    assert_eq!(rd(&m, vmcb::RIP), L2 + 1);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 0);
}

/// APM §15.12: #PF exits with the error code in EXITINFO1 and the address in EXITINFO2;
/// CR2 is not written.
#[test]
fn exception_intercept_page_fault() {
    let l2 = |a: Asm| {
        a.mov(rax, 0x1_0000_0000u64)?;
        a.mov(qword_ptr(rax), rbx)
    };
    let m = intercepted(icpt::INTERCEPT_EXCP14, l2);
    assert_eq!(exitcode(&m), SvmExitCode::EXCP14);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 0b010, "not present, write, supervisor");
    assert_eq!(rd(&m, vmcb::EXITINFO2), 0x1_0000_0000);
    assert_eq!(rd(&m, vmcb::CR2), 0);
    // Decode assists (APM §15.33.4): the faulting instruction's bytes (MOV [RAX], RBX).
    assert_eq!(m.mem.read_u8(Gpa(VMCB + u64::from(vmcb::GUEST_INSN_LEN))), 3);
    let b = |k: u64| m.mem.read_u8(Gpa(VMCB + u64::from(vmcb::GUEST_INSN_BYTES) + k));
    assert_eq!([b(0), b(1), b(2), b(3)], [0x48, 0x89, 0x18, 0]);
}

/// APM §15.12: #GP with its error code.
#[test]
fn exception_intercept_gp_error_code() {
    let l2 = |a: Asm| {
        a.mov(ax, 0x13u32)?; // a selector past the GDT limit
        a.mov(ds, ax)
    };
    let m = intercepted(icpt::INTERCEPT_EXCP13, l2);
    assert_eq!(exitcode(&m), SvmExitCode::EXCP13);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 0x10);
}

/// APM §15.12: an exception that is not intercepted is delivered in the guest (caught
/// here by the harness).
#[test]
fn exception_not_intercepted_stays_in_guest() {
    let mut m = setup(|a| a.ud2());
    intercept(&mut m, icpt::INTERCEPT_EXCP13);
    let r = m.run(Some(100));
    assert_eq!(Machine::exception_of(&r).map(|e| e.vector), Some(6));
    assert!(m.nested.in_guest());
}

/// APM §15.14.3 "Shutdown Intercept": a triple fault in the guest exits with
/// VMEXIT_SHUTDOWN.
#[test]
fn shutdown_intercept() {
    let mut m = setup(|a| a.ud2());
    m.set_exception_catch(0);
    intercept(&mut m, icpt::INTERCEPT_SHUTDOWN);
    wr(&mut m, vmcb::IDTR_LIMIT, 0);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::SHUTDOWN);
}

// ---- Interrupts, GIF, virtual interrupts (§15.13, §15.17, §15.21) -------------------------

/// A 64-bit interrupt gate for `vector` to `handler` in the IDT at IDT.
fn gate(m: &mut Machine, vector: u8, handler: u64) {
    let lo =
        (handler & 0xFFFF) | (0x08 << 16) | (0x8E00u64 << 32) | ((handler >> 16) & 0xFFFF) << 48;
    let at = IDT + u64::from(vector) * 16;
    m.mem.write_u64(Gpa(at), lo);
    m.mem.write_u64(Gpa(at + 8), handler >> 32);
}

/// An IDT for L1 and L2 with handlers that record the vector in R15 and the pushed
/// words in R12-R14, then VMMCALL (exits from L2) and HLT.
fn with_idt(m: &mut Machine, vectors: &[u8]) {
    for &v in vectors {
        let h = HANDLERS + u64::from(v) * 0x40;
        let code = asm(h, |a| {
            a.mov(r15, u64::from(v))?;
            a.mov(r12, qword_ptr(rsp))?;
            a.mov(r13, qword_ptr(rsp + 8))?;
            a.mov(r14, qword_ptr(rsp + 16))?;
            a.vmmcall()?;
            a.hlt()
        });
        m.load(h, &code).unwrap();
        gate(m, v, h);
    }
    m.cpu.idtr = DescriptorTable { base: IDT, limit: 0xFFF };
    wr(m, vmcb::IDTR_BASE, IDT);
    m.mem.write_u32(Gpa(VMCB + u64::from(vmcb::IDTR_LIMIT)), 0xFFF);
}

/// Runs until L2 is running.
fn run_into_guest(m: &mut Machine) {
    for _ in 0..100 {
        if m.nested.in_guest() {
            return;
        }
        m.run(Some(1));
    }
    panic!("never entered the guest");
}

fn l2_spin(a: Asm) -> Result<(), IcedError> {
    let mut top = a.create_label();
    a.set_label(&mut top)?;
    a.nop()?;
    a.jmp(top)
}

/// APM §15.13.1 "INTR Intercept": a physical interrupt exits with VMEXIT_INTR and stays
/// pending for the host.
#[test]
fn intr_intercept() {
    let mut m = setup(l2_spin);
    intercept(&mut m, icpt::INTERCEPT_INTR);
    run_into_guest(&mut m);
    m.run(Some(5));
    m.inject_interrupt(0x20);
    wr(&mut m, vmcb::RFLAGS, 0x202);
    // Host IF decides with V_INTR_MASKING clear only through the guest's IF: set it.
    m.cpu.flags.set(0x202);
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(exitcode(&m), SvmExitCode::INTR);
    assert_eq!(m.pending_interrupt(), Some(0x20));
}

/// APM §15.13.2 "NMI Intercept".
#[test]
fn nmi_intercept() {
    let mut m = setup(l2_spin);
    intercept(&mut m, icpt::INTERCEPT_NMI);
    run_into_guest(&mut m);
    m.inject_nmi();
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(exitcode(&m), SvmExitCode::NMI);
    assert!(m.cpu.nmi_pending, "still pending for the host");
}

/// APM §15.17 "Global Interrupt Flag": with GIF = 0 an interrupt is held pending even
/// with EFLAGS.IF = 1; STGI lets it in.
#[test]
fn gif_holds_interrupts_until_stgi() {
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.clgi()?;
        a.sti()?;
        for _ in 0..10 {
            a.nop()?;
        }
        a.stgi()?;
        a.nop()?;
        a.hlt()
    };
    let mut m = setup_with(l1, |a| a.hlt());
    with_idt(&mut m, &[0x20]);
    m.inject_interrupt(0x20);
    m.run(Some(14));
    assert!(!m.nested.svm.gif);
    assert_eq!(m.pending_interrupt(), Some(0x20), "held pending while GIF = 0");
    assert_eq!(m.cpu.gpr[15], 0);
    m.run(Some(20));
    assert_eq!(m.pending_interrupt(), None);
    assert_eq!(m.cpu.gpr[15], 0x20, "delivered after STGI");
}

/// APM §15.20 "Event Injection": an external interrupt injected on VMRUN is delivered
/// through the guest IDT before the first guest instruction.
#[test]
fn event_injection_external_interrupt() {
    let mut m = setup(l2_vmmcall);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    with_idt(&mut m, &[0x30]);
    wr(&mut m, vmcb::EVENTINJ, 1 << 31 | 0x30);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::VMMCALL);
    assert_eq!(m.cpu.gpr[15], 0x30, "the handler ran");
    assert_eq!(m.cpu.gpr[12], L2, "return RIP = guest RIP");
}

/// APM §15.20: an exception with an error code (EV = 1) pushes EVENTINJ.ERRORCODE.
#[test]
fn event_injection_exception_with_error_code() {
    let mut m = setup(l2_vmmcall);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    with_idt(&mut m, &[13]);
    wr(&mut m, vmcb::EVENTINJ, 0x1234 << 32 | 1 << 31 | 1 << 11 | 3 << 8 | 13);
    run(&mut m);
    assert_eq!(m.cpu.gpr[15], 13);
    assert_eq!(m.cpu.gpr[12], 0x1234, "error code on the stack");
    assert_eq!(m.cpu.gpr[13], L2, "then RIP");
}

/// APM §15.20: an NMI (type 2) and a software interrupt (type 4).
#[test]
fn event_injection_nmi_and_software_interrupt() {
    for (raw, v) in [(1u64 << 31 | 2 << 8 | 2, 2u8), (1 << 31 | 4 << 8 | 0x80, 0x80)] {
        let mut m = setup(l2_vmmcall);
        intercept(&mut m, icpt::INTERCEPT_VMMCALL);
        with_idt(&mut m, &[v]);
        wr(&mut m, vmcb::EVENTINJ, raw);
        run(&mut m);
        assert_eq!(m.cpu.gpr[15], u64::from(v));
        assert_eq!(m.cpu.gpr[12], L2);
    }
}

/// APM §15.7.2 "Intercepts During IDT Interrupt Delivery": an injected event whose
/// delivery faults with an intercepted exception records the event in EXITINTINFO.
#[test]
fn event_injection_fault_sets_exitintinfo() {
    let mut m = setup(l2_vmmcall);
    intercept(&mut m, icpt::INTERCEPT_EXCP13);
    wr(&mut m, vmcb::IDTR_LIMIT, 0); // the gate is outside the IDT: #GP
    let raw = 1u64 << 31 | 0x30;
    wr(&mut m, vmcb::EVENTINJ, raw);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::EXCP13);
    assert_eq!(rd(&m, vmcb::EXITINTINFO), raw);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 0x30 * 8 + 2 + 1, "IDT error code, EXT");
}

/// APM §15.21.4 "Injecting Virtual (INTR) Interrupts": V_IRQ with the VINTR intercept
/// exits once the guest has IF = 1.
#[test]
fn virtual_interrupt_vintr_intercept() {
    let l2 = |a: Asm| {
        a.nop()?;
        a.sti()?;
        a.nop()?;
        a.nop()?;
        a.hlt()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_VINTR);
    wr(&mut m, vmcb::V_INTR_CONTROL, 1 << 8 | 1 << 20); // V_IRQ, V_IGN_TPR
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::VINTR);
    // STI's shadow covers the next instruction: the exit comes after it.
    assert_eq!(rd(&m, vmcb::RIP), L2 + 3);
}

/// APM §15.21.4: a virtual interrupt that is not intercepted is delivered through the
/// guest IDT with V_INTR_VECTOR, and V_IRQ is cleared.
#[test]
fn virtual_interrupt_delivered_to_guest() {
    let l2 = |a: Asm| {
        a.sti()?;
        a.nop()?;
        a.hlt()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    with_idt(&mut m, &[0x41]);
    wr(&mut m, vmcb::V_INTR_CONTROL, 1 << 8 | 2 << 16); // V_IRQ, priority 2, V_TPR 0
    m.mem.write_u8(Gpa(VMCB + u64::from(vmcb::V_INTR_VECTOR)), 0x41);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::VMMCALL);
    assert_eq!(m.cpu.gpr[15], 0x41);
    assert_eq!(rd(&m, vmcb::V_INTR_CONTROL) & 1 << 8, 0, "V_IRQ cleared");
}

/// APM §15.21: a virtual interrupt at or below V_TPR waits.
#[test]
fn virtual_interrupt_masked_by_v_tpr() {
    let l2 = |a: Asm| {
        a.sti()?;
        for _ in 0..5 {
            a.nop()?;
        }
        a.vmmcall()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    intercept(&mut m, icpt::INTERCEPT_VINTR);
    // V_TPR 5, V_IRQ, priority 5, V_INTR_MASKING.
    wr(&mut m, vmcb::V_INTR_CONTROL, 5 | 1 << 8 | 5 << 16 | 1 << 24);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::VMMCALL);
    assert_ne!(rd(&m, vmcb::V_INTR_CONTROL) & 1 << 8, 0, "still pending");
}

/// APM §15.20/§15.5.1: INT_STATE.INTERRUPT_SHADOW puts the first guest instruction in an
/// interrupt shadow.
#[test]
fn interrupt_shadow_from_int_state() {
    let l2 = |a: Asm| {
        a.nop()?;
        a.nop()?;
        a.hlt()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_VINTR);
    wr(&mut m, vmcb::RFLAGS, 0x202);
    wr(&mut m, vmcb::INTERRUPT_STATE, 1);
    wr(&mut m, vmcb::V_INTR_CONTROL, 1 << 8 | 1 << 20);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::VINTR);
    assert_eq!(rd(&m, vmcb::RIP), L2 + 1, "the first instruction ran in the shadow");
}

// ---- VMLOAD/VMSAVE (§15.5.2), TSC offset ---------------------------------------------------

/// APM §15.5.2 "VMSAVE and VMLOAD Instructions": FS/GS bases, KernelGsBase and the
/// SYSCALL MSRs go to the VMCB and come back.
#[test]
fn vmload_vmsave_round_trip() {
    let wrmsr = |a: Asm, msr: u32, v: u32| -> Result<(), IcedError> {
        a.mov(ecx, msr)?;
        a.mov(eax, v)?;
        a.xor(edx, edx)?;
        a.wrmsr()
    };
    let l1 = move |a: Asm| {
        enable_svm(a)?;
        wrmsr(a, 0xC000_0100, 0x1111_0000)?; // FS_BASE
        wrmsr(a, 0xC000_0102, 0x2222_0000)?; // KERNEL_GS_BASE
        wrmsr(a, 0xC000_0082, 0x3333_0000)?; // LSTAR
        a.mov(rax, SAVE2)?;
        a.vmsave()?;
        wrmsr(a, 0xC000_0100, 0)?;
        wrmsr(a, 0xC000_0102, 0)?;
        wrmsr(a, 0xC000_0082, 0)?;
        a.mov(rax, SAVE2)?;
        a.vmload()?;
        a.hlt()
    };
    let mut m = setup_with(l1, |a| a.hlt());
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    let s = |off: u16| m.mem.read_u64(Gpa(SAVE2 + u64::from(off)));
    assert_eq!(s(vmcb::FS_BASE), 0x1111_0000);
    assert_eq!(s(vmcb::KERNEL_GS_BASE), 0x2222_0000);
    assert_eq!(s(vmcb::LSTAR), 0x3333_0000);
    assert_eq!(s(vmcb::TR_SELECTOR) & 0xFFFF, 0x48);
    assert_eq!(m.cpu.seg[4].base, 0x1111_0000, "FS base loaded back");
    assert_eq!(m.cpu.msrs.get(&0xC000_0102), Some(&0x2222_0000));
    assert_eq!(m.cpu.msrs.get(&0xC000_0082), Some(&0x3333_0000));
}

/// APM Appendix B "TSC_OFFSET": RDTSC in the guest adds the VMCB's TSC offset.
#[test]
fn tsc_offset_applies_in_guest() {
    let l2 = |a: Asm| {
        a.rdtsc()?;
        a.mov(esi, eax)?;
        a.mov(edi, edx)?;
        a.vmmcall()
    };
    let mut m = setup(l2);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    wr(&mut m, vmcb::TSC_OFFSET, 0x10_0000_0000);
    run(&mut m);
    let tsc = m.cpu.gpr[6] | m.cpu.gpr[7] << 32;
    assert!(tsc >= 0x10_0000_0000 && tsc < 0x10_0000_1000, "{tsc:#x}");
    assert_eq!(m.nested.tsc_offset(), 0, "no offset in the host");
}

// ---- Guest modes, INVLPGA, GIF and NMI ------------------------------------------------------

/// APM §15.5.1: VMRUN loads a 32-bit protected-mode guest without paging (EFER.LME = 0,
/// CR0.PG = 0) from a 64-bit host, and #VMEXIT returns to the 64-bit host.
#[test]
fn vmrun_into_32bit_protected_mode_guest() {
    let mut m = setup(|a| a.hlt());
    let mut a = CodeAssembler::new(32).unwrap();
    a.mov(eax, 5u32).unwrap();
    a.mov(ebx, esp).unwrap();
    a.vmmcall().unwrap();
    m.load(L2, &a.assemble(L2).unwrap()).unwrap();
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    wr(&mut m, vmcb::EFER, svm_msr::EFER_SVME);
    wr(&mut m, vmcb::CR0, 0x11); // PE, ET
    wr(&mut m, vmcb::CR4, 0);
    m.mem.write_u16(Gpa(VMCB + u64::from(vmcb::CS_SELECTOR)), 0x18);
    m.mem.write_u16(Gpa(VMCB + u64::from(vmcb::CS_ATTRIB)), 0xC9B); // G, D, code
    m.mem.write_u32(Gpa(VMCB + u64::from(vmcb::CS_LIMIT)), 0xFFFF_FFFF);
    for seg in [vmcb::SS_SELECTOR, vmcb::DS_SELECTOR, vmcb::ES_SELECTOR] {
        m.mem.write_u16(Gpa(VMCB + u64::from(seg) + 2), 0xC93);
        m.mem.write_u32(Gpa(VMCB + u64::from(seg) + 4), 0xFFFF_FFFF);
    }
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::VMMCALL);
    assert_eq!(rd(&m, vmcb::RAX), 5);
    assert_eq!(m.cpu.gpr[3], L2_STACK, "ran with the VMCB's RSP");
    assert_eq!(rd(&m, vmcb::EFER) & (1 << 10), 0, "no LMA in the guest");
    assert_eq!(m.cpu.mode, hvsim::CpuMode::Long64, "back in the 64-bit host");
}

/// A machine whose L2 is 32-bit protected-mode code (flat CS 0x18, no paging) built by
/// `l2`, with VMMCALL intercepted.
fn protected32_guest(l2: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Machine {
    let mut m = setup(|a| a.hlt());
    let mut a = CodeAssembler::new(32).unwrap();
    l2(&mut a).unwrap();
    m.load(L2, &a.assemble(L2).unwrap()).unwrap();
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    wr(&mut m, vmcb::EFER, svm_msr::EFER_SVME);
    wr(&mut m, vmcb::CR0, 0x11); // PE, ET
    wr(&mut m, vmcb::CR4, 0);
    m.mem.write_u16(Gpa(VMCB + u64::from(vmcb::CS_SELECTOR)), 0x18);
    m.mem.write_u16(Gpa(VMCB + u64::from(vmcb::CS_ATTRIB)), 0xC9B); // G, D, code
    m.mem.write_u32(Gpa(VMCB + u64::from(vmcb::CS_LIMIT)), 0xFFFF_FFFF);
    for seg in [vmcb::SS_SELECTOR, vmcb::DS_SELECTOR, vmcb::ES_SELECTOR] {
        m.mem.write_u16(Gpa(VMCB + u64::from(seg) + 2), 0xC93);
        m.mem.write_u32(Gpa(VMCB + u64::from(seg) + 4), 0xFFFF_FFFF);
    }
    m
}

/// The harness's TSS selector (in L1's GDT, which the guest shares).
const TSS_SEL: u16 = 0x48;

/// APM §15.14.2 "Task Switch Intercept": a far JMP to a TSS exits before any of the
/// switch's checks, with EXITINFO1 = the TSS selector, EXITINFO2 bit 38 (JMP), and the
/// guest RIP at the JMP.
#[test]
fn task_switch_intercept_far_jmp() {
    let mut m = protected32_guest(|a| {
        a.nop()?;
        a.db(&[0xEA, 0, 0, 0, 0, TSS_SEL as u8, 0]) // JMP FAR 0x48:0
    });
    intercept(&mut m, icpt::INTERCEPT_TASK_SWITCH);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::TASK_SWITCH);
    assert_eq!(rd(&m, vmcb::EXITINFO1), u64::from(TSS_SEL));
    assert_eq!(rd(&m, vmcb::EXITINFO2), 1 << 38);
    assert_eq!(rd(&m, vmcb::RIP), L2 + 1);
    assert_eq!(rd(&m, vmcb::EXITINTINFO), 0);
}

/// APM §15.14.2: IRET with EFLAGS.NT = 1 (a return to the back-link task) exits with
/// EXITINFO2 bit 36 and the back link as EXITINFO1.
#[test]
fn task_switch_intercept_iret_with_nt() {
    let mut m = protected32_guest(|a| {
        a.pushfd()?;
        a.or(dword_ptr(esp), 0x4000)?; // NT
        a.popfd()?;
        a.iretd()
    });
    intercept(&mut m, icpt::INTERCEPT_TASK_SWITCH);
    let link = m.mem.read_u16(Gpa(m.tss_base()));
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::TASK_SWITCH);
    assert_eq!(rd(&m, vmcb::EXITINFO2), 1 << 36);
    assert_eq!(rd(&m, vmcb::EXITINFO1), u64::from(link));
    assert_eq!(rd(&m, vmcb::RIP), L2 + 1 + 7 + 1, "at the IRETD");
}

/// APM §15.14.2: an exception delivered through a task gate exits with EXITINFO2 bits 36
/// and 38 clear (neither IRET nor JMP) and bit 48 set (a fault saves EFLAGS.RF = 1 in the
/// outgoing TSS), EXITINFO1 = the gate's TSS selector, and EXITINTINFO naming
/// the exception being delivered (§15.7.2 "Intercepts During IDT Interrupt Delivery").
#[test]
fn task_switch_intercept_through_a_task_gate() {
    let mut m = protected32_guest(|a| a.ud2());
    intercept(&mut m, icpt::INTERCEPT_TASK_SWITCH);
    m.set_exception_catch(0);
    // IDT entry 6: a task gate (type 5, present) for TSS_SEL.
    let gate = (u64::from(TSS_SEL) << 16) | (0x85u64 << 40);
    m.mem.write_u64(Gpa(IDT + 6 * 8), gate);
    wr(&mut m, vmcb::IDTR_BASE, IDT);
    m.mem.write_u32(Gpa(VMCB + u64::from(vmcb::IDTR_LIMIT)), 0xFF);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::TASK_SWITCH);
    assert_eq!(rd(&m, vmcb::EXITINFO1), u64::from(TSS_SEL));
    assert_eq!(rd(&m, vmcb::EXITINFO2), 1 << 48);
    assert_eq!(rd(&m, vmcb::EXITINTINFO), 0x8000_0306, "valid, exception, #UD");
    assert_eq!(rd(&m, vmcb::RIP), L2);
}

/// APM Vol. 3 "INVLPGA": intercepted in a guest; executed by the host (#UD without
/// EFER.SVME is covered by the VMRUN test's rule, shared by every SVM instruction).
#[test]
fn invlpga_intercept_and_host_execution() {
    let l2 = |a: Asm| {
        a.mov(rax, 0x3000u64)?;
        a.mov(ecx, 1u32)?;
        a.invlpga()
    };
    let m = intercepted(icpt::INTERCEPT_INVLPGA, l2);
    assert_eq!(exitcode(&m), SvmExitCode::INVLPGA);
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.mov(rax, 0x3000u64)?;
        a.xor(ecx, ecx)?;
        a.invlpga()?;
        a.hlt()
    };
    let mut m = setup_with(l1, |a| a.hlt());
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
}

/// APM §15.17: NMIs are held pending while GIF = 0 as well.
#[test]
fn gif_holds_nmi_until_stgi() {
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.clgi()?;
        for _ in 0..10 {
            a.nop()?;
        }
        a.stgi()?;
        a.nop()?;
        a.hlt()
    };
    let mut m = setup_with(l1, |a| a.hlt());
    with_idt(&mut m, &[2]);
    m.run(Some(12));
    m.inject_nmi();
    m.run(Some(5));
    assert!(m.cpu.nmi_pending, "held pending while GIF = 0");
    m.run(Some(20));
    assert!(!m.cpu.nmi_pending);
    assert_eq!(m.cpu.gpr[15], 2, "delivered after STGI");
}

/// The local APIC's ICR (xAPIC MMIO, identity-mapped by the harness).
const APIC_ICR: u64 = 0xFEE0_0300;
/// ICR delivery modes (SDM Vol. 3A §11.6.1 "Interrupt Command Register").
const ICR_SMI: u32 = 0x200;
const ICR_INIT: u32 = 0x500;
/// Where the INIT/SMI tests' L1 leaves a mark.
const MARK: u64 = 0x3000;

/// Sends `mode` to this processor: ICR shorthand "all including self", level assert.
fn self_ipi(a: Asm, mode: u32) -> Result<(), IcedError> {
    a.mov(rbx, APIC_ICR)?;
    a.mov(dword_ptr(rbx), 0x8_0000 | 0x4000 | mode)
}

/// L2 that sends itself `mode` and spins.
fn l2_self_ipi(mode: u32) -> impl FnOnce(Asm) -> Result<(), IcedError> {
    move |a: Asm| {
        self_ipi(a, mode)?;
        l2_spin(a)
    }
}

/// APM §15.13.3 "INIT Intercept": an INIT in the guest exits with VMEXIT_INIT, and the
/// INIT stays pending for the host (held while its GIF = 0).
#[test]
fn init_intercept() {
    let mut m = setup(l2_self_ipi(ICR_INIT));
    intercept(&mut m, icpt::INTERCEPT_INIT);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::INIT);
    assert!(m.nested.svm.pending_init, "still pending for the host");
    assert_ne!(m.cpu.efer & svm_msr::EFER_SVME, 0, "the host was not reset");
}

/// APM §15.13.2 "SMI Intercept": an SMI in the guest exits with VMEXIT_SMI
/// (EXITINFO1 0: no SMI source information), and stays pending for the host.
#[test]
fn smi_intercept() {
    let mut m = setup(l2_self_ipi(ICR_SMI));
    intercept(&mut m, icpt::INTERCEPT_SMI);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::SMI);
    assert_eq!(rd(&m, vmcb::EXITINFO1), 0);
    assert!(m.nested.svm.pending_smi);
}

/// APM §15.17 "Global Interrupt Flag": INIT and SMI that arrive while GIF = 0 are held
/// pending (L1 runs on), and exit at once when VMRUN sets GIF in a guest that
/// intercepts them: SMI first, before the guest's first instruction.
#[test]
fn gif_holds_init_and_smi() {
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.clgi()?;
        self_ipi(a, ICR_INIT)?;
        self_ipi(a, ICR_SMI)?;
        for _ in 0..20 {
            a.nop()?;
        }
        a.mov(rbx, MARK)?;
        a.mov(dword_ptr(rbx), 1)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.hlt()
    };
    let mut m = setup_with(l1, l2_vmmcall);
    for i in [icpt::INTERCEPT_SMI, icpt::INTERCEPT_INIT, icpt::INTERCEPT_VMMCALL] {
        intercept(&mut m, i);
    }
    run(&mut m);
    assert_eq!(m.mem.read_u32(Gpa(MARK)), 1, "L1 ran on with GIF = 0");
    assert_eq!(exitcode(&m), SvmExitCode::SMI);
    assert_eq!(rd(&m, vmcb::RIP), L2, "before the guest's first instruction");
    assert!(m.nested.svm.pending_init && m.nested.svm.pending_smi);
}

/// APM §15.17: a held INIT is taken when STGI sets GIF (the vCPU resets to its INIT
/// state, SDM Vol. 3A §9.1.1), not before; with GIF = 1 from the start it is taken at
/// once and L1 never reaches its mark.
#[test]
fn stgi_releases_a_held_init() {
    for clgi in [true, false] {
        let l1 = move |a: Asm| {
            enable_svm(a)?;
            if clgi {
                a.clgi()?;
            }
            self_ipi(a, ICR_INIT)?;
            for _ in 0..20 {
                a.nop()?;
            }
            a.mov(rbx, MARK)?;
            a.mov(dword_ptr(rbx), 1)?;
            a.stgi()?;
            a.mov(dword_ptr(rbx), 2)?;
            a.hlt()
        };
        let mut m = setup_with(l1, |a| a.hlt());
        let _ = m.run(Some(500));
        assert_eq!(m.mem.read_u32(Gpa(MARK)), u32::from(clgi), "clgi {clgi}");
        assert_eq!(m.cpu.efer & svm_msr::EFER_SVME, 0, "INIT state (clgi {clgi})");
        assert!(!m.nested.svm.pending_init);
    }
}

/// APM §15.13.3: an INIT that the guest does not intercept is taken in the guest: the
/// vCPU resets to its INIT state and leaves the guest (no #VMEXIT).
#[test]
fn init_not_intercepted_resets_the_vcpu() {
    let mut m = setup(l2_self_ipi(ICR_INIT));
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    let _ = m.run(Some(500));
    assert!(!m.nested.in_guest());
    assert_eq!(m.nested.svm.vmexits, 0);
    assert_eq!(m.cpu.efer & svm_msr::EFER_SVME, 0);
    assert!(m.nested.svm.gif && !m.nested.svm.pending_init);
}

/// APM §15.17: STGI and CLGI at CPL 0 without EFER.SVME are #UD.
#[test]
fn stgi_without_svme_is_ud() {
    let mut m = setup_with(|a| a.stgi(), |a| a.hlt());
    let r = m.run(Some(10));
    assert_eq!(Machine::exception_of(&r).map(|e| e.vector), Some(6));
}

/// APM §15.21.1 "Physical Interrupt Masking": with V_INTR_MASKING the host's EFLAGS.IF
/// (saved by VMRUN) decides whether a physical interrupt is taken, not the guest's.
#[test]
fn intr_intercept_with_v_intr_masking_uses_host_if() {
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.sti()?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.cli()?;
        a.hlt()
    };
    let mut m = setup_with(l1, l2_spin);
    intercept(&mut m, icpt::INTERCEPT_INTR);
    wr(&mut m, vmcb::V_INTR_CONTROL, 1 << 24);
    wr(&mut m, vmcb::RFLAGS, 2); // guest IF = 0
    run_into_guest(&mut m);
    m.inject_interrupt(0x20);
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(exitcode(&m), SvmExitCode::INTR);
    assert_eq!(rd(&m, vmcb::INTERRUPT_STATE) & 2, 0, "GUEST_INTERRUPT_MASK = guest IF = 0");
}

/// L1 for the clean-bit tests: VMRUN; after the first #VMEXIT, intercept CPUID, rewind
/// the guest to L2 and set VMCB_CLEAN to `clean`; VMRUN the VMCB at `second` again (its
/// own clean bits as given); HLT.
fn l1_adds_cpuid_intercept(clean: u32, second: u64) -> impl FnOnce(Asm) -> Result<(), IcedError> {
    move |a: Asm| {
        enable_svm(a)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        for base in [VMCB, second] {
            a.mov(rbx, base + u64::from(icpt::INTERCEPT_CPUID.word))?;
            a.or(dword_ptr(rbx), icpt::INTERCEPT_CPUID.mask() as i32)?;
            a.mov(rbx, base + u64::from(vmcb::RIP))?;
            a.mov(qword_ptr(rbx), L2 as i32)?;
            a.mov(rbx, base + u64::from(vmcb::VMCB_CLEAN))?;
            a.mov(dword_ptr(rbx), clean as i32)?;
        }
        a.mov(rax, second)?;
        a.vmrun()?;
        a.hlt()
    }
}

/// L2 for the clean-bit tests: CPUID, then VMMCALL.
fn l2_cpuid_vmmcall(a: Asm) -> Result<(), IcedError> {
    a.mov(eax, 0)?;
    a.cpuid()?;
    a.vmmcall()
}

/// APM §15.15.3 "VMCB Clean Field": with the I bit set, VMRUN uses the intercept vectors
/// the processor cached at the last #VMEXIT, so the CPUID intercept L1 added without
/// clearing the bit has no effect (the guest runs on to VMMCALL), and
/// `--report-stale-vmcb` names the field, both values and the VMRUN's RIP.
#[test]
fn clean_bit_set_keeps_the_cached_intercepts() {
    let mut m = setup_with(l1_adds_cpuid_intercept(1, VMCB), l2_cpuid_vmmcall);
    m.set_report_stale_vmcb(true);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    let before = rd(&m, vmcb::INTERCEPT_MISC1);
    run(&mut m);
    assert_eq!(m.nested.svm.vmexits, 2);
    assert_eq!(exitcode(&m), SvmExitCode::VMMCALL, "the stale intercepts were used");
    let v = m.stale_vmcb_fields();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!((v[0].clean_bit, v[0].field), ("I", "INTERCEPT_MISC1"));
    assert_eq!(v[0].cached, before & 0xFFFF_FFFF);
    assert_eq!(v[0].vmcb_value, v[0].cached | u64::from(icpt::INTERCEPT_CPUID.mask()));
    assert_eq!((v[0].vmcb, v[0].guest_rip), (VMCB, L2));
    // The second VMRUN is the last instruction before HLT.
    let l1 = asm(L1, l1_adds_cpuid_intercept(1, VMCB));
    assert_eq!(v[0].vmrun_rip, L1 + l1.len() as u64 - 4, "VMRUN (3 bytes) then HLT");
    // The VMCB in memory keeps L1's value: VMRUN does not write the cache back.
    assert_eq!(
        rd(&m, vmcb::INTERCEPT_MISC1) as u32 & icpt::INTERCEPT_CPUID.mask(),
        icpt::INTERCEPT_CPUID.mask()
    );
}

/// APM §15.15.3: a clear clean bit makes VMRUN reload the fields: the new CPUID
/// intercept exits, and nothing is stale.
#[test]
fn clean_bit_clear_reloads_the_field() {
    let mut m = setup_with(l1_adds_cpuid_intercept(!1, VMCB), l2_cpuid_vmmcall);
    m.set_report_stale_vmcb(true);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    run(&mut m);
    assert_eq!(m.nested.svm.vmexits, 2);
    assert_eq!(exitcode(&m), SvmExitCode::CPUID);
    assert!(m.stale_vmcb_fields().is_empty(), "{:?}", m.stale_vmcb_fields());
}

/// APM §15.15.2 "VMCB Clean Bits": the cache serves only the VMCB it was taken from; the
/// first VMRUN of another VMCB loads every field from memory whatever its clean bits.
#[test]
fn clean_bits_do_not_apply_to_another_vmcb() {
    const VMCB2: u64 = 0x13000;
    let mut m = setup_with(l1_adds_cpuid_intercept(!0, VMCB2), l2_cpuid_vmmcall);
    m.set_report_stale_vmcb(true);
    intercept(&mut m, icpt::INTERCEPT_VMMCALL);
    let mut copy = vec![0u8; 4096];
    m.mem.read(Gpa(VMCB), &mut copy);
    m.load(VMCB2, &copy).unwrap();
    run(&mut m);
    assert_eq!(m.nested.svm.vmexits, 2);
    let code = SvmExitCode(m.mem.read_u64(Gpa(VMCB2 + u64::from(vmcb::EXITCODE))));
    assert_eq!(code, SvmExitCode::CPUID);
    assert!(m.stale_vmcb_fields().is_empty());
}

/// APM §15.15 with §15.5.1: the consistency checks see the state the processor uses.
/// An illegal CR0 (CD = 0, NW = 1) written under a set CRx clean bit is not loaded, so
/// VMRUN succeeds with the cached CR0; with the bit clear the same VMCB fails with
/// VMEXIT_INVALID.
#[test]
fn clean_bit_hides_an_illegal_cr0_from_the_checks() {
    for (clean, want) in [(1u32 << 5, SvmExitCode::VMMCALL), (0, SvmExitCode::INVALID)] {
        let l1 = move |a: Asm| {
            enable_svm(a)?;
            a.mov(rax, VMCB)?;
            a.vmrun()?;
            a.mov(rbx, VMCB + u64::from(vmcb::CR0))?;
            a.mov(rcx, 1u64 << 29)?; // NW without CD
            a.or(qword_ptr(rbx), rcx)?;
            a.mov(rbx, VMCB + u64::from(vmcb::RIP))?;
            a.mov(qword_ptr(rbx), L2 as i32)?;
            a.mov(rbx, VMCB + u64::from(vmcb::VMCB_CLEAN))?;
            a.mov(dword_ptr(rbx), clean as i32)?;
            a.mov(rax, VMCB)?;
            a.vmrun()?;
            a.hlt()
        };
        let mut m = setup_with(l1, l2_vmmcall);
        intercept(&mut m, icpt::INTERCEPT_VMMCALL);
        run(&mut m);
        assert_eq!(exitcode(&m), want, "VMCB_CLEAN {clean:#x}");
    }
}

/// APM §15.15.3: the state-save fields come from the cache too: a guest CR3 change under
/// the CRx bit is not loaded (the guest keeps the CR3 it had at #VMEXIT), and is
/// reported; without the report option it is used just the same, silently.
#[test]
fn clean_bit_crx_keeps_the_cached_cr3() {
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.mov(rbx, VMCB + u64::from(vmcb::CR3))?;
        a.mov(rcx, qword_ptr(rbx))?;
        a.add(rcx, 0x1000)?; // another (unused) table address, cache unchanged
        a.mov(qword_ptr(rbx), rcx)?;
        a.mov(rbx, VMCB + u64::from(vmcb::VMCB_CLEAN))?;
        a.mov(dword_ptr(rbx), 1 << 5)?; // CRx
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.hlt()
    };
    for report in [true, false] {
        let mut m = setup_with(l1, |a| {
            a.mov(rax, cr3)?;
            a.vmmcall()
        });
        m.set_report_stale_vmcb(report);
        intercept(&mut m, icpt::INTERCEPT_VMMCALL);
        let cr3_before = rd(&m, vmcb::CR3);
        run(&mut m);
        assert_eq!(m.nested.svm.vmexits, 2);
        assert_eq!(rd(&m, vmcb::RAX), cr3_before, "the guest read the cached CR3");
        assert_eq!(rd(&m, vmcb::CR3), cr3_before, "#VMEXIT saved the CR3 in use");
        let v = m.stale_vmcb_fields();
        if report {
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!((v[0].clean_bit, v[0].field), ("CRx", "CR3"));
            assert_eq!((v[0].cached, v[0].vmcb_value), (cr3_before, cr3_before + 0x1000));
        } else {
            assert!(v.is_empty());
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Never panic on guest behaviour: a valid VMCB with random values in the fields
    /// VMRUN and the intercepts read (controls, EVENTINJ, control registers, EFER,
    /// RFLAGS, RIP, CS attributes) runs to some outcome without panicking.
    #[test]
    fn random_vmcb_fields_never_panic(
        vals in proptest::collection::vec(proptest::num::u64::ANY, 12),
        pick in proptest::collection::vec(proptest::bool::ANY, 12),
    ) {
        let fields = [
            (vmcb::INTERCEPT_CR_READ, 8u16),
            (vmcb::INTERCEPT_EXCEPTIONS, 8),
            (vmcb::INTERCEPT_MISC2 + 4, 4),
            (vmcb::V_INTR_CONTROL, 8),
            (vmcb::INTERRUPT_STATE, 8),
            (vmcb::EVENTINJ, 8),
            (vmcb::CR0, 8),
            (vmcb::CR4, 8),
            (vmcb::EFER, 8),
            (vmcb::RFLAGS, 8),
            (vmcb::RIP, 8),
            (vmcb::CS_ATTRIB, 2),
        ];
        let mut m = setup(l2_vmmcall);
        intercept(&mut m, icpt::INTERCEPT_VMMCALL);
        for (k, &(off, width)) in fields.iter().enumerate() {
            if pick[k] {
                let at = Gpa(VMCB + u64::from(off));
                match width {
                    2 => m.mem.write_u16(at, vals[k] as u16),
                    4 => m.mem.write_u32(at, vals[k] as u32),
                    _ => m.mem.write_u64(at, vals[k]),
                }
            }
        }
        let _ = m.run(Some(2_000));
    }
}
