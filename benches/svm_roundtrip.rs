//! Nested SVM world switches: an L1 loop of VMRUN whose L2 executes an intercepted
//! VMMCALL, so each iteration is one VMRUN -> VMMCALL -> #VMEXIT round trip (APM Vol. 2
//! §15.5, §15.6). Throughput is reported in round trips per second (criterion's
//! "elem/s").

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use hvsim::nested::svm::state::save_world;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, Vendor};
use hvsim_svm_model::intercept::{INTERCEPT_VMMCALL, INTERCEPT_VMRUN};
use hvsim_svm_model::{msr as svm_msr, vmcb, VmcbImage};
use iced_x86::code_asm::*;
use std::time::Duration;

const L1: u64 = 0x1000;
const STACK: u64 = 0x8000;
const VMCB: u64 = 0x10000;
const HSAVE: u64 = 0x11000;
const L2: u64 = 0x20000;
const ROUND_TRIPS: u64 = 10_000;

fn l1() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut top = a.create_label();
    a.mov(ecx, svm_msr::EFER)?;
    a.rdmsr()?;
    a.or(eax, svm_msr::EFER_SVME as i32)?;
    a.wrmsr()?;
    a.mov(ecx, svm_msr::VM_HSAVE_PA)?;
    a.mov(eax, HSAVE as u32)?;
    a.xor(edx, edx)?;
    a.wrmsr()?;
    a.mov(rbx, ROUND_TRIPS)?;
    a.set_label(&mut top)?;
    a.mov(rax, VMCB)?;
    a.vmrun()?;
    a.dec(rbx)?;
    a.jnz(top)?;
    a.hlt()?;
    a.assemble(L1)
}

fn l2() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    a.vmmcall()?;
    a.assemble(L2)
}

/// Builds the machine in L1's start state with a VMCB whose guest resumes at the
/// VMMCALL every time; `None` (with a message) if anything fails.
fn machine() -> Option<Machine> {
    let cfg = MachineConfig { vendor: Vendor::Amd, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).map_err(|e| eprintln!("machine: {e}")).ok()?;
    m.load(L1, &l1().map_err(|e| eprintln!("assemble: {e}")).ok()?).ok()?;
    m.load(L2, &l2().map_err(|e| eprintln!("assemble: {e}")).ok()?).ok()?;
    Some(m)
}

fn run_once(m: &mut Machine) -> Option<u64> {
    m.enter_mode(GuestMode::Long64, L1, STACK).ok()?;
    let mut img = VmcbImage::zeroed();
    save_world(m, &mut img, L2);
    img.set_u64(vmcb::EFER, m.cpu.efer | svm_msr::EFER_SVME);
    img.write(vmcb::GUEST_ASID, 4, 1);
    img.write(
        INTERCEPT_VMRUN.word,
        4,
        u64::from(INTERCEPT_VMRUN.mask() | INTERCEPT_VMMCALL.mask()),
    );
    m.load(VMCB, img.as_bytes()).ok()?;
    m.cpu.halted = false;
    m.nested.svm.gif = true;
    let before = m.nested.svm.vmexits;
    let r = m.run(Some(100 * ROUND_TRIPS));
    match r.reason {
        StopReason::Halted { .. } => Some(m.nested.svm.vmexits - before),
        _ => {
            eprintln!("svm_roundtrip: guest stopped unexpectedly: {r}");
            None
        }
    }
}

fn svm_roundtrip(c: &mut Criterion) {
    let Some(mut m) = machine() else { return };
    let Some(trips) = run_once(&mut m) else {
        return;
    };
    let mut group = c.benchmark_group("svm_roundtrip");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(trips));
    group.bench_function("vmrun_vmmcall_vmexit_10k", |b| b.iter(|| black_box(run_once(&mut m))));
    group.finish();
}

criterion_group!(benches, svm_roundtrip);
criterion_main!(benches);
