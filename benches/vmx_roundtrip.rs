//! Nested VMX world switches: L1 launches an L2 that loops on CPUID (which exits
//! unconditionally); L1's exit handler advances GUEST_RIP by the exit instruction length
//! and executes VMRESUME, so each iteration is one VMRESUME -> CPUID -> VM exit round trip
//! (SDM Vol. 3C chapters 27 and 28). Throughput is in round trips per second
//! (criterion's "elem/s").

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use hvsim::nested::vmx::intel_capabilities;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use hvsim_mmu::Gpa;
use hvsim_vmx_model::capabilities::HVSIM_VMCS_REVISION_ID;
use hvsim_vmx_model::controls::{entry, exit};
use hvsim_vmx_model::entry_checks::baseline::valid_long_mode_vmcs;
use hvsim_vmx_model::vmcs_fields as f;
use hvsim_vmx_model::VmxCapabilities;
use iced_x86::code_asm::*;
use std::time::Duration;

const L1: u64 = 0x1000;
const STACK: u64 = 0x8000;
const HOST: u64 = 0x3000;
const PTRS: u64 = 0x9000;
const VMXON: u64 = 0x10000;
const VMCS: u64 = 0x11000;
const L2: u64 = 0x20000;
const TABLE: u64 = 0x30000;
const ROUND_TRIPS: u64 = 10_000;

fn l1() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut lp = a.create_label();
    let mut done = a.create_label();
    a.mov(rax, cr0)?;
    a.or(rax, 0x20)?;
    a.mov(cr0, rax)?;
    a.mov(rax, cr4)?;
    a.or(eax, 1 << 13)?;
    a.mov(cr4, rax)?;
    // IA32_FEATURE_CONTROL stays locked across iterations (only a reset unlocks it,
    // and WRMSR to it when locked is #GP): write it only while unlocked, as a
    // hypervisor does.
    let mut locked = a.create_label();
    a.mov(ecx, hvsim_vmx_model::msr::IA32_FEATURE_CONTROL)?;
    a.rdmsr()?;
    a.test(al, 1)?;
    a.jnz(locked)?;
    a.mov(eax, 5)?;
    a.xor(edx, edx)?;
    a.wrmsr()?;
    a.set_label(&mut locked)?;
    a.vmxon(qword_ptr(PTRS))?;
    a.vmclear(qword_ptr(PTRS + 8))?;
    a.vmptrld(qword_ptr(PTRS + 8))?;
    a.mov(rsi, TABLE)?;
    a.set_label(&mut lp)?;
    a.mov(rax, qword_ptr(rsi))?;
    a.cmp(rax, -1)?;
    a.je(done)?;
    a.mov(rbx, qword_ptr(rsi + 8))?;
    a.vmwrite(rax, rbx)?;
    a.add(rsi, 16)?;
    a.jmp(lp)?;
    a.set_label(&mut done)?;
    a.xor(r14, r14)?;
    a.vmlaunch()?;
    a.hlt()?;
    a.assemble(L1)
}

/// The exit handler: count, advance GUEST_RIP, VMRESUME; HLT after ROUND_TRIPS.
fn host() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut done = a.create_label();
    a.inc(r14)?;
    a.cmp(r14, ROUND_TRIPS as i32)?;
    a.je(done)?;
    a.mov(eax, f::GUEST_RIP)?;
    a.vmread(rbx, rax)?;
    a.mov(eax, f::VM_EXIT_INSTRUCTION_LENGTH)?;
    a.vmread(rcx, rax)?;
    a.add(rbx, rcx)?;
    a.mov(eax, f::GUEST_RIP)?;
    a.vmwrite(rax, rbx)?;
    a.vmresume()?;
    a.set_label(&mut done)?;
    a.hlt()?;
    a.assemble(HOST)
}

fn l2() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut lp = a.create_label();
    a.set_label(&mut lp)?;
    a.cpuid()?;
    a.jmp(lp)?;
    a.assemble(L2)
}

fn machine() -> Option<Machine> {
    let mut m =
        Machine::new(&MachineConfig::default()).map_err(|e| eprintln!("machine: {e}")).ok()?;
    m.load(L1, &l1().map_err(|e| eprintln!("assemble: {e}")).ok()?).ok()?;
    m.load(HOST, &host().map_err(|e| eprintln!("assemble: {e}")).ok()?).ok()?;
    m.load(L2, &l2().map_err(|e| eprintln!("assemble: {e}")).ok()?).ok()?;
    Some(m)
}

/// Writes the VMCS table for the machine's harness state (see `tests/vmx.rs`).
fn write_table(m: &mut Machine) {
    let caps = intel_capabilities();
    let mut v = valid_long_mode_vmcs(&VmxCapabilities::hvsim_default());
    let cr0_value = m.cpu.cr0 | 0x20;
    let cr4_value = m.cpu.cr4 | (1 << 13);
    let vals = [
        (f::PIN_BASED_CONTROLS, caps.pin.must_be_one),
        (f::PRIMARY_PROC_BASED_CONTROLS, caps.proc.must_be_one),
        (f::SECONDARY_PROC_BASED_CONTROLS, 0),
        (f::VIRTUAL_PROCESSOR_ID, 0),
        (f::EPT_POINTER, 0),
        (
            f::PRIMARY_VM_EXIT_CONTROLS,
            caps.exit.must_be_one | u64::from(exit::HOST_ADDRESS_SPACE_SIZE),
        ),
        (f::VM_ENTRY_CONTROLS, caps.entry.must_be_one | u64::from(entry::IA32E_MODE_GUEST)),
        (f::HOST_CR0, cr0_value),
        (f::GUEST_CR0, cr0_value),
        (f::HOST_CR3, m.cpu.cr3),
        (f::GUEST_CR3, m.cpu.cr3),
        (f::HOST_CR4, cr4_value),
        (f::GUEST_CR4, cr4_value),
        (f::HOST_GDTR_BASE, m.cpu.gdtr.base),
        (f::GUEST_GDTR_BASE, m.cpu.gdtr.base),
        (f::HOST_IDTR_BASE, m.cpu.idtr.base),
        (f::GUEST_IDTR_BASE, m.cpu.idtr.base),
        (f::HOST_TR_BASE, m.tss_base()),
        (f::GUEST_TR_BASE, m.tss_base()),
        (f::GUEST_GDTR_LIMIT, u64::from(m.cpu.gdtr.limit)),
        (f::GUEST_IDTR_LIMIT, u64::from(m.cpu.idtr.limit)),
        (f::GUEST_TR_LIMIT, u64::from(m.cpu.tr.limit)),
        (f::HOST_RIP, HOST),
        (f::HOST_RSP, 0x7000),
        (f::GUEST_RIP, L2),
        (f::GUEST_RSP, 0x2F000),
    ];
    for (e, val) in vals {
        v.set(e, val);
    }
    let mut at = TABLE;
    for (info, value) in v.fields() {
        if value != 0 && caps.field_supported(info) {
            m.mem.write_u64(Gpa(at), u64::from(info.encoding));
            m.mem.write_u64(Gpa(at + 8), value);
            at += 16;
        }
    }
    m.mem.write_u64(Gpa(at), u64::MAX);
}

fn run_once(m: &mut Machine) -> Option<u64> {
    m.nested.vmx = Default::default();
    m.enter_mode(GuestMode::Long64, L1, STACK).ok()?;
    m.cpu.halted = false;
    m.mem.write_u64(Gpa(PTRS), VMXON);
    m.mem.write_u64(Gpa(PTRS + 8), VMCS);
    m.mem.write_u32(Gpa(VMXON), HVSIM_VMCS_REVISION_ID);
    m.mem.write_u32(Gpa(VMCS), HVSIM_VMCS_REVISION_ID);
    // A fresh region for each run (VMCLEAR reads it).
    m.mem.write(Gpa(VMCS + 4), &[0; 4092]);
    write_table(m);
    let r = m.run(Some(100 * ROUND_TRIPS));
    match r.reason {
        StopReason::Halted { .. } if m.nested.vmx.exits == ROUND_TRIPS => Some(ROUND_TRIPS),
        _ => {
            eprintln!(
                "vmx_roundtrip: stopped unexpectedly after {} exits: {r}",
                m.nested.vmx.exits
            );
            None
        }
    }
}

fn vmx_roundtrip(c: &mut Criterion) {
    let Some(mut m) = machine() else { return };
    let Some(trips) = run_once(&mut m) else {
        return;
    };
    let mut group = c.benchmark_group("vmx_roundtrip");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(trips));
    // Every iteration must do the round trips: a failing run would be timed as a fast one.
    group.bench_function("vmresume_cpuid_exit_10k", |b| {
        b.iter(|| black_box(run_once(&mut m).expect("vmx_roundtrip: the round trips failed")))
    });
    group.finish();
}

criterion_group!(benches, vmx_roundtrip);
criterion_main!(benches);
