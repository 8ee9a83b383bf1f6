//! RDMSR/WRMSR against the MSR table of `hvsim::cpu::msr`: which MSRs exist on each CPU
//! model, their reset values, the reserved-bit and value rules (SDM Vol. 4 Table 2-2
//! "IA-32 Architectural MSRs"; APM Vol. 2 Appendix A), and the side effects of EFER,
//! TSC/TSC_ADJUST, FEATURE_CONTROL, APIC_BASE and MISC_ENABLE.

use hvsim::cpu::msr::{self, WriteRule, MSRS};
use hvsim::cpuid::{Cpuid, Feature};
use hvsim::machine::CATCH_ALL;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, Vendor};
use iced_x86::code_asm::*;
use proptest::prelude::*;

const CODE: u64 = 0x1000;
const STACK: u64 = 0x8000;
const GP0: (u8, Option<u32>) = (13, Some(0));
const UD: (u8, Option<u32>) = (6, None);
const VENDORS: [Vendor; 2] = [Vendor::Intel, Vendor::Amd];

/// WRMSR, RDMSR, HLT.
const WRITE_READ: [u8; 5] = [0x0F, 0x30, 0x0F, 0x32, 0xF4];
/// RDMSR, HLT.
const READ: [u8; 3] = [0x0F, 0x32, 0xF4];

/// A 64-bit machine of `model` with `code` at CODE; every exception stops the run.
fn machine(model: Cpuid, mode: GuestMode, code: &[u8]) -> Machine {
    let cfg = MachineConfig { mem_size: 1 << 20, vendor: model.vendor(), ..Default::default() };
    let mut m = Machine::new(&cfg).expect("machine");
    m.cpuid = model;
    m.set_exception_catch(CATCH_ALL);
    m.load(CODE, code).expect("load");
    m.enter_mode(mode, CODE, STACK).expect("mode");
    m
}

/// Runs `code` from CODE with ECX = `n` and EDX:EAX = `v`: the exception it stopped with,
/// or EDX:EAX at the HLT.
fn run_msr(m: &mut Machine, n: u32, v: u64) -> Result<u64, (u8, Option<u32>)> {
    m.cpu.rip = CODE;
    m.cpu.halted = false;
    m.cpu.gpr[1] = u64::from(n);
    m.cpu.gpr[0] = v & 0xFFFF_FFFF;
    m.cpu.gpr[2] = v >> 32;
    let r = m.run(Some(100));
    match r.reason {
        StopReason::Halted { .. } => Ok(m.cpu.gpr[2] << 32 | (m.cpu.gpr[0] & 0xFFFF_FFFF)),
        StopReason::Exception { exception, .. } => Err((exception.vector, exception.error_code)),
        other => panic!("unexpected stop {other:?}"),
    }
}

/// A machine that runs WRMSR then RDMSR of the same MSR.
fn writer(model: Cpuid) -> Machine {
    machine(model, GuestMode::Long64, &WRITE_READ)
}

/// Reads MSR `n` on `model`.
fn read(model: Cpuid, n: u32) -> Result<u64, (u8, Option<u32>)> {
    let mut m = machine(model, GuestMode::Long64, &READ);
    run_msr(&mut m, n, 0)
}

/// The model with every pending feature switched on.
fn with_pending(v: Vendor) -> Cpuid {
    let mut c = Cpuid::new(v);
    for f in hvsim::cpuid::models::pending(v).iter() {
        c.set_feature(f, true);
    }
    c
}

fn canonical48(v: u64) -> bool {
    ((v << 16) as i64 >> 16) as u64 == v
}

// SDM Vol. 2B "RDMSR": "#GP(0) ... If the value in ECX specifies a reserved or
// unimplemented MSR address." Existence per SDM Vol. 4 Table 2-2's "Introduced as
// Architectural MSR" conditions.
#[test]
fn msr_existence_follows_the_model() {
    for v in VENDORS {
        for model in [Cpuid::new(v), with_pending(v)] {
            for row in MSRS {
                let got = read(model.clone(), row.index);
                assert_eq!(got.is_ok(), row.avail.on(&model), "{v:?} {}: {got:?}", row.name);
                if got.is_err() {
                    assert_eq!(got, Err(GP0), "{}", row.name);
                }
            }
        }
    }
    // The same facts, written out.
    let intel = Cpuid::new(Vendor::Intel);
    let amd = Cpuid::new(Vendor::Amd);
    for n in [msr::IA32_TSC_ADJUST, msr::IA32_MISC_ENABLE, msr::IA32_MTRRCAP, msr::IA32_TSC_AUX] {
        assert!(read(intel.clone(), n).is_ok(), "Intel {n:#x}");
    }
    for n in [msr::IA32_TSC_ADJUST, msr::IA32_MISC_ENABLE, msr::IA32_FEATURE_CONTROL] {
        assert_eq!(read(amd.clone(), n), Err(GP0), "AMD {n:#x}");
    }
    // FEATURE_CONTROL exists with VMX (advertised by the Intel model). APIC_BASE is the
    // local APIC's: the BSP's after reset is base 0xFEE00000, enabled (bit 11), BSP (bit 8).
    assert_eq!(read(intel.clone(), msr::IA32_FEATURE_CONTROL), Ok(0));
    assert_eq!(read(intel.clone().with(Feature::Vmx), msr::IA32_FEATURE_CONTROL), Ok(0));
    assert_eq!(read(intel.clone(), msr::IA32_APIC_BASE), Ok(0xFEE0_0900));
    // Unimplemented or unadvertised MSRs, and the variable MTRR past VCNT.
    for n in [
        0x1234,
        0xC000_0085,
        msr::IA32_SPEC_CTRL,
        msr::IA32_PRED_CMD,
        msr::IA32_ARCH_CAPABILITIES,
        msr::IA32_MCG_CAP,
        msr::IA32_MCG_STATUS,
        msr::IA32_MTRR_PHYSBASE0 + 16,
    ] {
        assert_eq!(read(intel.clone(), n), Err(GP0), "Intel {n:#x}");
        assert_eq!(read(amd.clone(), n), Err(GP0), "AMD {n:#x}");
    }
}

// SDM Vol. 3A §10.1 "Initialization Overview", Table 10-1 "IA-32 and Intel 64 Processor
// States Following Power-up, Reset, or INIT".
#[test]
fn reset_values() {
    for v in VENDORS {
        let model = with_pending(v);
        for row in MSRS.iter().filter(|r| r.avail.on(&model)) {
            if [msr::IA32_TSC, msr::IA32_EFER, msr::IA32_FS_BASE, msr::IA32_GS_BASE]
                .contains(&row.index)
            {
                continue;
            }
            assert_eq!(read(model.clone(), row.index), Ok(row.reset), "{v:?} {}", row.name);
        }
    }
    let intel = with_pending(Vendor::Intel);
    assert_eq!(read(intel.clone(), msr::IA32_PAT), Ok(0x0007_0406_0007_0406));
    assert_eq!(read(intel.clone(), msr::IA32_MTRRCAP), Ok(0x508), "VCNT 8, FIX, WC");
    assert_eq!(read(intel.clone(), msr::IA32_MISC_ENABLE), Ok(0x1801));
    assert_eq!(read(intel.clone(), msr::IA32_APIC_BASE), Ok(0xFEE0_0900));
    // The harness's long mode: LME | LMA | NXE.
    assert_eq!(read(intel, msr::IA32_EFER), Ok(0xD00));
}

/// The outcome the SDM rules give a WRMSR of `v` under `rule` on an Intel model.
fn expected_intel(rule: WriteRule, v: u64) -> Option<u64> {
    let bytes = |ok: fn(u64) -> bool| (0..8).all(|k| ok((v >> (8 * k)) & 0xFF));
    let mtrr_type = |t: u64| [0, 1, 4, 5, 6].contains(&t);
    let pat_type = |t: u64| [0, 1, 4, 5, 6, 7].contains(&t);
    let ok = match rule {
        WriteRule::Reserved(mask) => v & mask == 0,
        WriteRule::Canonical | WriteRule::CanonicalIntelLow32Amd => canonical48(v),
        WriteRule::ReadOnly => false,
        WriteRule::PatTypes => bytes(pat_type),
        WriteRule::MtrrTypes => bytes(mtrr_type),
        WriteRule::MtrrTypeAndReserved(mask) => v & mask == 0 && mtrr_type(v & 0xFF),
        WriteRule::Special | WriteRule::Any => return None,
    };
    Some(if ok { v } else { u64::MAX })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // SDM Vol. 2B "WRMSR": "#GP(0) ... If the value in EDX:EAX sets bits that are
    // reserved in the MSR specified by ECX." Every rule-checked MSR, random values
    // (biased to sparse and to canonical-looking ones).
    #[test]
    fn wrmsr_value_rules(raw in any::<u64>(), sparse in 0u32..64, shape in 0u8..4) {
        let v = match shape {
            0 => raw,
            1 => 1u64 << sparse,
            2 => ((raw << 16) as i64 >> 16) as u64,
            _ => raw & 0x0707_0707_0707_0707,
        };
        // Every MSR present, with 48-bit linear addresses (no LA57).
        let mut model = with_pending(Vendor::Intel);
        model.set_feature(Feature::La57, false);
        let mut m = writer(model);
        for row in MSRS {
            if row.index == msr::IA32_TSC_AUX || !row.avail.on(&m.cpuid) {
                continue;
            }
            let Some(want) = expected_intel(row.rule, v) else { continue };
            let got = run_msr(&mut m, row.index, v);
            if want == u64::MAX {
                prop_assert_eq!(got, Err(GP0), "{} {:#x}", row.name, v);
            } else {
                prop_assert_eq!(got, Ok(want), "{} {:#x}", row.name, v);
            }
        }
        // TSC_AUX: bits 63:32 reserved.
        let got = run_msr(&mut m, msr::IA32_TSC_AUX, v);
        prop_assert_eq!(got, if v >> 32 == 0 { Ok(v) } else { Err(GP0) });
    }
}

// Hand-picked values against the SDM's bit layouts (not the table): FMASK and TSC_AUX
// are 32 bits wide; PHYSBASE/PHYSMASK hold MAXPHYADDR (40) bits; MTRR types 2, 3 and 7
// are reserved; PAT types 2 and 3 are reserved; MTRRCAP is read-only.
#[test]
fn wrmsr_spot_checks() {
    let mut m = writer(Cpuid::new(Vendor::Intel));
    let cases: &[(u32, u64, bool)] = &[
        (msr::IA32_FMASK, 0xFFFF_FFFF, true),
        (msr::IA32_FMASK, 1 << 32, false),
        (msr::IA32_TSC_AUX, 0xFFFF_FFFF, true),
        (msr::IA32_TSC_AUX, 1 << 63, false),
        (msr::IA32_MTRR_PHYSBASE0, 0xFF_FFFF_F006, true),
        (msr::IA32_MTRR_PHYSBASE0, 1 << 40 | 6, false),
        (msr::IA32_MTRR_PHYSBASE0, 0x100 | 6, false),
        (msr::IA32_MTRR_PHYSBASE0, 2, false),
        (msr::IA32_MTRR_PHYSMASK7, 0xFF_FFFF_F800, true),
        (msr::IA32_MTRR_PHYSMASK7, 0x400, false),
        (msr::IA32_MTRR_DEF_TYPE, 0xC06, true),
        (msr::IA32_MTRR_DEF_TYPE, 0x1006, false),
        (msr::IA32_MTRR_DEF_TYPE, 7, false),
        (msr::IA32_MTRR_FIX4K_F8000, 0x0605_0401_0006_0504, true),
        (msr::IA32_MTRR_FIX4K_F8000, 0x0300_0000_0000_0000, false),
        (msr::IA32_PAT, 0x0007_0406_0007_0407, true),
        (msr::IA32_PAT, 0x0003_0406_0007_0406, false),
        (msr::IA32_PAT, 0x0000_0000_0000_0008, false),
        (msr::IA32_MTRRCAP, 0x508, false),
        (msr::IA32_LSTAR, 0x0000_7FFF_FFFF_FFFF, true),
        // The models advertise LA57: canonical means 57 bits.
        (msr::IA32_LSTAR, 0x0000_8000_0000_0000, true),
        (msr::IA32_LSTAR, 0x0100_0000_0000_0000, false),
        (msr::IA32_CSTAR, 0xFFFF_8000_0000_0000, true),
        (msr::IA32_KERNEL_GS_BASE, 0x0100_0000_0000_0000, false),
        (msr::IA32_SYSENTER_CS, 0xFFFF_FFFF_FFFF_FFFF, true),
    ];
    for &(n, v, ok) in cases {
        let want = if ok { Ok(v) } else { Err(GP0) };
        assert_eq!(run_msr(&mut m, n, v), want, "{:?} {v:#x}", msr::name(n));
    }
}

// SDM Vol. 4 Table 2-2 IA32_EFER; SDM Vol. 3A §10.8.5 "Initializing IA-32e Mode";
// APM Vol. 2 §3.1.7 "Extended Feature Enable Register (EFER)".
#[test]
fn efer_rules() {
    for v in VENDORS {
        let mut m = writer(Cpuid::new(v));
        // LMA is read-only: writing LME|NXE without LMA keeps LMA.
        assert_eq!(run_msr(&mut m, msr::IA32_EFER, 0x901), Ok(0xD01), "{v:?} SCE");
        // Clearing LME with paging on.
        assert_eq!(run_msr(&mut m, msr::IA32_EFER, 0x401), Err(GP0), "{v:?}");
        // Reserved bit 1.
        assert_eq!(run_msr(&mut m, msr::IA32_EFER, 0xD03), Err(GP0), "{v:?}");
        // SVME: writable only where SVM is advertised (the AMD model).
        let svme = if v == Vendor::Amd { Ok(0x1D01) } else { Err(GP0) };
        assert_eq!(run_msr(&mut m, msr::IA32_EFER, 0x1D01), svme, "{v:?} SVME");
        // NXE exists only with CPUID.80000001H:EDX.NX.
        let mut no_nx = Cpuid::new(v);
        no_nx.set_feature(Feature::Nx, false);
        let mut m = writer(no_nx);
        assert_eq!(run_msr(&mut m, msr::IA32_EFER, 0xD00), Err(GP0), "{v:?} NXE");
        assert_eq!(run_msr(&mut m, msr::IA32_EFER, 0x500), Ok(0x500), "{v:?}");
    }
    // Without SVM, SVME is reserved on AMD too.
    let mut no_svm = Cpuid::new(Vendor::Amd);
    no_svm.set_feature(Feature::Svm, false);
    let mut m = writer(no_svm);
    assert_eq!(run_msr(&mut m, msr::IA32_EFER, 0x1D00), Err(GP0));
    // Setting LME with paging off is allowed (real mode here).
    let mut m = machine(Cpuid::new(Vendor::Intel), GuestMode::Real, &WRITE_READ);
    assert_eq!(run_msr(&mut m, msr::IA32_EFER, 0x100), Ok(0x100));
}

// SDM Vol. 2B "WRMSR": SYSENTER_ESP/EIP hold canonical addresses on Intel; on AMD they
// are 32-bit registers (APM Vol. 2 §6.1.2 "SYSENTER and SYSEXIT": SYSENTER is legacy
// mode only), so the upper half is dropped.
#[test]
fn sysenter_msrs_by_vendor() {
    let mut intel = writer(Cpuid::new(Vendor::Intel));
    let mut amd = writer(Cpuid::new(Vendor::Amd));
    for n in [msr::IA32_SYSENTER_ESP, msr::IA32_SYSENTER_EIP] {
        assert_eq!(run_msr(&mut intel, n, 0xFFFF_8000_1234_5678), Ok(0xFFFF_8000_1234_5678));
        assert_eq!(run_msr(&mut intel, n, 0x8000_1234_5678_0000), Err(GP0));
        assert_eq!(run_msr(&mut amd, n, 0x8000_1234_5678_0000), Ok(0x5678_0000));
    }
}

// SDM Vol. 3B §18.17.3 "Time-Stamp Counter Adjustment": a WRMSR adding X to the TSC
// adds X to IA32_TSC_ADJUST, and a WRMSR adding X to IA32_TSC_ADJUST adds X to the TSC.
#[test]
fn tsc_and_tsc_adjust_move_together() {
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(ecx, msr::IA32_TSC).unwrap(); // insn 0
    a.mov(eax, 1_000_000u32).unwrap(); // 1
    a.xor(edx, edx).unwrap(); // 2
    a.wrmsr().unwrap(); // 3: the TSC was 3, becomes 1_000_000
    a.mov(ecx, msr::IA32_TSC_ADJUST).unwrap();
    a.rdmsr().unwrap();
    a.mov(r8d, eax).unwrap(); // ADJUST after the TSC write
    a.add(eax, 500u32).unwrap();
    a.wrmsr().unwrap(); // ADJUST += 500 -> TSC += 500
    a.mov(ecx, msr::IA32_TSC).unwrap(); // insn 9
    a.rdmsr().unwrap(); // insn 10: reads 1_000_000 + (10 - 3) + 500
    a.hlt().unwrap();
    let code = a.assemble(CODE).unwrap();
    let mut m = machine(Cpuid::new(Vendor::Intel), GuestMode::Long64, &code);
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(m.cpu.gpr[8], 1_000_000 - 3);
    assert_eq!(m.cpu.gpr[0], 1_000_000 + 7 + 500);
    // AMD has no TSC_ADJUST; a TSC write still sets the clock.
    let mut m = machine(Cpuid::new(Vendor::Amd), GuestMode::Long64, &code);
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Exception { .. }), "{r}");
    assert_eq!(m.cpu.rip, CODE + 5 + 5 + 2 + 2 + 5, "stopped at RDMSR TSC_ADJUST");
}

// SDM Vol. 3C §25.7 "Enabling and Entering VMX Operation": "If the lock bit is set, WRMSR
// to this MSR causes a general-protection exception"; bit 2 enables VMXON outside SMX;
// bit 1 (inside SMX) needs SMX.
#[test]
fn feature_control_lock() {
    let mut m = writer(Cpuid::new(Vendor::Intel).with(Feature::Vmx));
    let n = msr::IA32_FEATURE_CONTROL;
    assert_eq!(run_msr(&mut m, n, msr::FEATURE_CONTROL_VMX_IN_SMX), Err(GP0));
    assert_eq!(run_msr(&mut m, n, 1 << 20), Err(GP0));
    assert_eq!(run_msr(&mut m, n, 4), Ok(4), "unlocked: writable");
    assert_eq!(run_msr(&mut m, n, 0), Ok(0));
    assert_eq!(run_msr(&mut m, n, 5), Ok(5), "lock with VMX outside SMX");
    assert_eq!(run_msr(&mut m, n, 5), Err(GP0), "locked: any write #GP");
    assert_eq!(run_msr(&mut m, n, 0), Err(GP0));
    assert_eq!(m.cpu.msrs[&n], 5);
    // Without VMX the MSR does not exist (SMX and VMX both absent; no model advertises
    // SMX); the AMD model has no VMX.
    assert_eq!(read(Cpuid::new(Vendor::Amd), n), Err(GP0));
}

// SDM Vol. 3A §12.4.4 "Local APIC Status and Location": BSP (bit 8) read-only here, EXTD
// (bit 10) reserved without x2APIC, the base is MAXPHYADDR bits wide.
#[test]
fn apic_base_rules() {
    let mut model = Cpuid::new(Vendor::Intel).with(Feature::Apic);
    model.set_feature(Feature::X2apic, false);
    let mut m = writer(model);
    let n = msr::IA32_APIC_BASE;
    assert_eq!(run_msr(&mut m, n, 0xFEC0_0000), Ok(0xFEC0_0100), "disable; BSP stays");
    assert_eq!(run_msr(&mut m, n, 0xFEE0_0900), Ok(0xFEE0_0900));
    assert_eq!(run_msr(&mut m, n, 0xFEE0_0D00), Err(GP0), "EXTD");
    assert_eq!(run_msr(&mut m, n, 0xFEE0_0901), Err(GP0), "bit 0");
    assert_eq!(run_msr(&mut m, n, 1 << 40 | 0x900), Err(GP0), "above MAXPHYADDR");
    assert_eq!(run_msr(&mut m, n, 0xFF_FFFF_F900), Ok(0xFF_FFFF_F900));
    // With x2APIC advertised, EXTD enters x2APIC mode; back to xAPIC directly is
    // illegal (§12.12.5 "x2APIC State Transitions").
    let mut m = writer(Cpuid::new(Vendor::Intel));
    assert_eq!(run_msr(&mut m, n, 0xFEE0_0D00), Ok(0xFEE0_0D00), "EXTD");
    assert_eq!(run_msr(&mut m, n, 0xFEE0_0900), Err(GP0), "x2APIC -> xAPIC");
}

// SDM Vol. 4 Table 2-2 IA32_MISC_ENABLE: bits 11 and 12 are read-only; the model keeps
// only fast strings writable and treats the unmodelled enables as reserved.
#[test]
fn misc_enable_rules() {
    let mut m = writer(Cpuid::new(Vendor::Intel));
    let n = msr::IA32_MISC_ENABLE;
    assert_eq!(run_msr(&mut m, n, 0), Ok(0x1800), "read-only bits ignore the write");
    assert_eq!(run_msr(&mut m, n, 0x1801), Ok(0x1801));
    assert_eq!(run_msr(&mut m, n, 1 << 22), Err(GP0), "limit CPUID maxval");
    assert_eq!(run_msr(&mut m, n, 1 << 34), Err(GP0), "XD disable");
}

// SDM Vol. 2B "RDMSR"/"WRMSR": "#GP(0) If the current privilege level is not 0."
#[test]
fn rdmsr_wrmsr_need_cpl0() {
    for code in [&READ[..], &WRITE_READ[..]] {
        let mut m = machine(Cpuid::new(Vendor::Intel), GuestMode::Long64, code);
        for s in [1, 2] {
            m.cpu.seg[s].selector |= 3;
            m.cpu.seg[s].attr |= 3 << 5;
        }
        m.cpu.update_mode();
        assert_eq!(run_msr(&mut m, msr::IA32_STAR, 0), Err(GP0));
    }
}

// SDM Vol. 2B "RDTSCP", "RDPID": ECX / the destination receive IA32_TSC_AUX[31:0];
// #UD if the CPUID bit is clear. RDPID is not privileged.
#[test]
fn rdtscp_and_rdpid_read_tsc_aux() {
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(ecx, msr::IA32_TSC_AUX).unwrap();
    a.mov(eax, 0xABCD_1234u32).unwrap();
    a.xor(edx, edx).unwrap();
    a.wrmsr().unwrap();
    a.xor(ecx, ecx).unwrap();
    a.rdtscp().unwrap();
    a.mov(r8, rcx).unwrap();
    a.mov(r9, -1i64).unwrap();
    a.rdpid(r9).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(CODE).unwrap();
    for v in VENDORS {
        let mut m = machine(Cpuid::new(v), GuestMode::Long64, &code);
        let r = m.run(Some(100));
        assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
        assert_eq!((m.cpu.gpr[8], m.cpu.gpr[9]), (0xABCD_1234, 0xABCD_1234), "{v:?}");
    }
    for f in [Feature::Rdtscp, Feature::Rdpid] {
        let mut model = Cpuid::new(Vendor::Intel);
        model.set_feature(f, false);
        let code = {
            let mut a = CodeAssembler::new(64).unwrap();
            if f == Feature::Rdtscp {
                a.rdtscp().unwrap();
            } else {
                a.rdpid(rax).unwrap();
            }
            a.hlt().unwrap();
            a.assemble(CODE).unwrap()
        };
        let mut m = machine(model, GuestMode::Long64, &code);
        let r = m.run(Some(10));
        match r.reason {
            StopReason::Exception { exception, .. } => {
                assert_eq!((exception.vector, exception.error_code), UD, "{f:?}")
            }
            other => panic!("{f:?}: {other:?}"),
        }
    }
}

// The MSRs of features no model advertises must be absent, and their CPUID bits clear
// (SDM Vol. 4 §2.1: an MSR exists when its CPUID condition holds).
#[test]
fn unadvertised_features_have_no_msrs() {
    for v in VENDORS {
        let model = Cpuid::new(v);
        for (f, n) in [
            (Feature::Mca, msr::IA32_MCG_CAP),
            (Feature::SpecCtrl, msr::IA32_SPEC_CTRL),
            (Feature::ArchCapabilities, msr::IA32_ARCH_CAPABILITIES),
        ] {
            let at = f.at();
            let regs = model.query(at.leaf, at.subleaf);
            assert_eq!(regs[at.reg as usize] >> at.bit & 1, 0, "{v:?} {f:?}");
            assert_eq!(read(model.clone(), n), Err(GP0), "{v:?} {n:#x}");
        }
    }
}

// MSRs holding linear addresses are checked against the widest linear address the
// model supports: 57 bits with LA57 (whatever CR4.LA57 says), else 48.
#[test]
fn canonical_width_follows_la57_support() {
    let v = 0x0000_8000_0000_0000;
    let mut without = Cpuid::new(Vendor::Intel);
    without.set_feature(Feature::La57, false);
    let mut m = writer(without);
    assert_eq!(run_msr(&mut m, msr::IA32_LSTAR, v), Err(GP0));
    let mut m = writer(Cpuid::new(Vendor::Intel).with(Feature::La57));
    assert_eq!(run_msr(&mut m, msr::IA32_LSTAR, v), Ok(v));
    assert_eq!(run_msr(&mut m, msr::IA32_LSTAR, 1 << 57), Err(GP0));
}
