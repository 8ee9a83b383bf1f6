//! A CPU-bound 64-bit guest loop: eight register ALU operations, a store and a load, and
//! DEC/JNZ, iterated 1,000,000 times, then HLT. Throughput is reported in retired guest
//! instructions per second (criterion's "elem/s").

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use iced_x86::code_asm::*;
use std::time::Duration;

const CODE: u64 = 0x1000;
const DATA: u64 = 0x4000;
const STACK: u64 = 0x8000;
const ITERATIONS: u64 = 1_000_000;

fn program() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut top = a.create_label();
    a.mov(rcx, ITERATIONS)?;
    a.mov(rbx, DATA)?;
    a.xor(eax, eax)?;
    a.mov(edx, 1u32)?;
    a.mov(esi, 3u32)?;
    a.mov(edi, 7u32)?;
    a.set_label(&mut top)?;
    a.add(rax, rdx)?;
    a.xor(rsi, rax)?;
    a.sub(rdi, rsi)?;
    a.and(rdx, 0xFFFFi32)?;
    a.or(r8, rdi)?;
    a.add(r9, rcx)?;
    a.inc(r10)?;
    a.cmp(r11, rax)?;
    a.mov(qword_ptr(rbx), rax)?;
    a.mov(r12, qword_ptr(rbx + 8))?;
    a.dec(rcx)?;
    a.jnz(top)?;
    a.hlt()?;
    a.assemble(CODE)
}

/// Builds the machine; `None` (with a message) if anything fails.
fn machine() -> Option<Machine> {
    let code = program().map_err(|e| eprintln!("assemble: {e}")).ok()?;
    let mut m =
        Machine::new(&MachineConfig::default()).map_err(|e| eprintln!("machine: {e}")).ok()?;
    m.load(CODE, &code).map_err(|e| eprintln!("load: {e}")).ok()?;
    Some(m)
}

/// Runs the loop once from the start; the number of instructions retired, or `None` if
/// it did not end at the HLT.
fn run_once(m: &mut Machine) -> Option<u64> {
    m.enter_mode(GuestMode::Long64, CODE, STACK).ok()?;
    m.cpu.halted = false;
    let before = m.cpu.insn_count;
    let r = m.run(Some(100 * ITERATIONS));
    match r.reason {
        StopReason::Halted { .. } => Some(m.cpu.insn_count - before),
        _ => {
            eprintln!("cpu_loop: guest stopped unexpectedly: {r}");
            None
        }
    }
}

fn cpu_loop(c: &mut Criterion) {
    let Some(mut m) = machine() else { return };
    let Some(retired) = run_once(&mut m) else {
        return;
    };
    let mut group = c.benchmark_group("cpu_loop");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    // One run is ~0.1-0.2 s, so sample flat: every sample runs the same number of times.
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(retired));
    group
        .bench_function("alu_load_store_1M_iterations", |b| b.iter(|| black_box(run_once(&mut m))));
    group.finish();
}

criterion_group!(benches, cpu_loop);
criterion_main!(benches);
