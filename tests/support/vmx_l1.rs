//! The L1 hypervisor pieces the nested VMX tests share (SDM Vol. 3C ch. 25-28): the
//! memory layout, the assembler shorthand, L1's VMXON/VMCLEAR/VMPTRLD/VMWRITE-table/
//! VMLAUNCH program, the host exit handler, and a valid long-mode baseline VMCS for the
//! harness GDT/TSS.
//!
//! Layout: L1 at 0x1000 (stack 0x8000) sets CR0.NE and CR4.VMXE, locks
//! IA32_FEATURE_CONTROL with VMX outside SMX, executes VMXON, VMCLEAR and VMPTRLD, then
//! VMWRITEs every nonzero field of a VMCS the test builds (a table of (encoding, value)
//! pairs at 0x30000) and executes VMLAUNCH. A failed VMLAUNCH falls through to code that
//! records RFLAGS (R15) and VM_INSTRUCTION_ERROR (R13) and halts with R12 = FAIL_MARK.
//! VM exits land at HOST (0x3000), which records EXIT_REASON (R13) and halts with
//! R12 = EXIT_MARK.

#![allow(dead_code, unused_imports)]

pub use hvsim::cpu::flags::{CF, ZF};
pub use hvsim::machine::CATCH_ALL;
pub use hvsim::nested::vmx::intel_capabilities;
pub use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
pub use hvsim_mmu::Gpa;
pub use hvsim_vmx_model::controls::{entry, exit, pin, proc, proc2};
pub use hvsim_vmx_model::entry_checks::baseline::valid_long_mode_vmcs;
pub use hvsim_vmx_model::entry_checks::{CheckId, FailureForm};
pub use hvsim_vmx_model::msr as vmx_msr;
pub use hvsim_vmx_model::vmcs_fields as f;
pub use hvsim_vmx_model::{Vmcs, VmxCapabilities};
pub use iced_x86::code_asm::*;

pub const L1: u64 = 0x1000;
pub const L1_STACK: u64 = 0x8000;
pub const HOST: u64 = 0x3000;
pub const HOST_STACK: u64 = 0x7000;
pub const PTRS: u64 = 0x9000;
pub const VMXON_REGION: u64 = 0x10000;
pub const VMCS: u64 = 0x11000;
pub const L2: u64 = 0x20000;
pub const L2_STACK: u64 = 0x2F000;
pub const TABLE: u64 = 0x30000;
pub const MSR_BITMAP: u64 = 0x40000;
pub const IO_BITMAP_A: u64 = 0x41000;
pub const IO_BITMAP_B: u64 = 0x42000;
pub const SCRATCH: u64 = 0x50000;
pub const FAIL_MARK: u64 = 0xFA11;
pub const EXIT_MARK: u64 = 0xE817;
pub const REVISION: u32 = hvsim_vmx_model::capabilities::HVSIM_VMCS_REVISION_ID;

pub type Asm<'a> = &'a mut CodeAssembler;
pub type Code = fn(Asm) -> Result<(), IcedError>;

pub fn asm(at: u64, f: impl FnOnce(Asm) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    f(&mut a).unwrap();
    a.assemble(at).unwrap()
}

/// CR0.NE, CR4.VMXE, IA32_FEATURE_CONTROL = lock | VMX outside SMX (SDM Vol. 3C 25.7
/// "Enabling and Entering VMX Operation", 25.8 "Restrictions on VMX Operation").
pub fn enable_vmx(a: Asm) -> Result<(), IcedError> {
    a.mov(rax, cr0)?;
    a.or(rax, 0x20)?;
    a.mov(cr0, rax)?;
    a.mov(rax, cr4)?;
    a.or(eax, 1 << 13)?;
    a.mov(cr4, rax)?;
    feature_control(a, 5)
}

pub fn feature_control(a: Asm, v: u32) -> Result<(), IcedError> {
    a.mov(ecx, vmx_msr::IA32_FEATURE_CONTROL)?;
    a.mov(eax, v)?;
    a.xor(edx, edx)?;
    a.wrmsr()
}

/// RFLAGS into R15.
pub fn flags(a: Asm) -> Result<(), IcedError> {
    a.pushfq()?;
    a.pop(r15)
}

/// VMXON, VMCLEAR, VMPTRLD and the VMWRITE loop over the table.
pub fn enter_and_load(a: Asm) -> Result<(), IcedError> {
    enable_vmx(a)?;
    a.vmxon(qword_ptr(PTRS))?;
    a.vmclear(qword_ptr(PTRS + 8))?;
    a.vmptrld(qword_ptr(PTRS + 8))?;
    write_table(a)
}

/// VMWRITEs the (encoding, value) pairs of the table at TABLE (ended by encoding -1).
pub fn write_table(a: Asm) -> Result<(), IcedError> {
    write_table_at(a, TABLE)
}

/// VMWRITEs the (encoding, value) pairs of the table at `at` (ended by encoding -1).
pub fn write_table_at(a: Asm, at: u64) -> Result<(), IcedError> {
    let mut lp = a.create_label();
    let mut done = a.create_label();
    a.mov(rsi, at)?;
    a.set_label(&mut lp)?;
    a.mov(rax, qword_ptr(rsi))?;
    a.cmp(rax, -1)?;
    a.je(done)?;
    a.mov(rbx, qword_ptr(rsi + 8))?;
    a.vmwrite(rax, rbx)?;
    a.add(rsi, 16)?;
    a.jmp(lp)?;
    a.set_label(&mut done)
}

/// After a VMLAUNCH/VMRESUME that did not enter the guest.
pub fn after_failed_entry(a: Asm) -> Result<(), IcedError> {
    flags(a)?;
    a.mov(eax, f::VM_INSTRUCTION_ERROR)?;
    a.vmread(r13, rax)?;
    a.mov(r12, FAIL_MARK)?;
    a.hlt()
}

/// The standard L1: enter, load, VMLAUNCH.
pub fn l1_launch(a: Asm) -> Result<(), IcedError> {
    enter_and_load(a)?;
    a.vmlaunch()?;
    after_failed_entry(a)
}

/// The VM-exit handler at HOST.
pub fn host_handler(a: Asm) -> Result<(), IcedError> {
    a.mov(eax, f::EXIT_REASON)?;
    a.vmread(r13, rax)?;
    a.mov(r12, EXIT_MARK)?;
    a.hlt()
}

pub fn intel_machine() -> Machine {
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.set_exception_catch(CATCH_ALL);
    m
}

/// The baseline VMCS: `valid_long_mode_vmcs` without EPT and VPID (L2 shares L1's
/// physical address space; tests/vmx_ept.rs turns EPT on), with the harness's CR3, GDT,
/// IDT and TSS, the host at HOST and the guest at L2.
pub fn baseline(m: &Machine) -> Vmcs {
    let caps = intel_capabilities();
    let mut v = valid_long_mode_vmcs(&VmxCapabilities::hvsim_default());
    let mut s = |e: u32, val: u64| assert!(v.set(e, val));
    s(f::PIN_BASED_CONTROLS, caps.pin.must_be_one);
    s(f::PRIMARY_PROC_BASED_CONTROLS, caps.proc.must_be_one);
    s(f::SECONDARY_PROC_BASED_CONTROLS, 0);
    s(f::VIRTUAL_PROCESSOR_ID, 0);
    s(f::EPT_POINTER, 0);
    s(
        f::PRIMARY_VM_EXIT_CONTROLS,
        caps.exit.must_be_one | u64::from(exit::HOST_ADDRESS_SPACE_SIZE),
    );
    s(f::VM_ENTRY_CONTROLS, caps.entry.must_be_one | u64::from(entry::IA32E_MODE_GUEST));
    let cr0_value = m.cpu.cr0 | 0x20;
    let cr4_value = m.cpu.cr4 | (1 << 13);
    for (h, g, val) in [
        (f::HOST_CR0, f::GUEST_CR0, cr0_value),
        (f::HOST_CR3, f::GUEST_CR3, m.cpu.cr3),
        (f::HOST_CR4, f::GUEST_CR4, cr4_value),
        (f::HOST_GDTR_BASE, f::GUEST_GDTR_BASE, m.cpu.gdtr.base),
        (f::HOST_IDTR_BASE, f::GUEST_IDTR_BASE, m.cpu.idtr.base),
        (f::HOST_TR_BASE, f::GUEST_TR_BASE, m.tss_base()),
    ] {
        s(h, val);
        s(g, val);
    }
    s(f::HOST_RIP, HOST);
    s(f::HOST_RSP, HOST_STACK);
    s(f::GUEST_RIP, L2);
    s(f::GUEST_RSP, L2_STACK);
    s(f::GUEST_GDTR_LIMIT, u64::from(m.cpu.gdtr.limit));
    s(f::GUEST_IDTR_LIMIT, u64::from(m.cpu.idtr.limit));
    s(f::GUEST_TR_LIMIT, u64::from(m.cpu.tr.limit));
    v
}

/// Writes the (encoding, value) table of every nonzero field the processor supports.
pub fn write_vmcs_table(m: &mut Machine, v: &Vmcs) {
    let caps = intel_capabilities();
    let mut at = TABLE;
    for (info, value) in v.fields() {
        if value == 0 || !caps.field_supported(info) {
            continue;
        }
        m.mem.write_u64(Gpa(at), u64::from(info.encoding));
        m.mem.write_u64(Gpa(at + 8), value);
        at += 16;
    }
    m.mem.write_u64(Gpa(at), u64::MAX);
}

/// A machine with `l1` at L1, the exit handler at HOST, `l2` at L2, the VMXON region
/// and VMCS region with the revision identifier, and the table of `edit(baseline)`.
pub fn setup_full(
    l1: impl FnOnce(Asm) -> Result<(), IcedError>,
    host: Code,
    l2: impl FnOnce(Asm) -> Result<(), IcedError>,
    edit: impl FnOnce(&mut Vmcs),
) -> Machine {
    let mut m = intel_machine();
    m.load(L1, &asm(L1, l1)).unwrap();
    m.load(HOST, &asm(HOST, host)).unwrap();
    m.load(L2, &asm(L2, l2)).unwrap();
    m.enter_mode(GuestMode::Long64, L1, L1_STACK).unwrap();
    m.mem.write_u64(Gpa(PTRS), VMXON_REGION);
    m.mem.write_u64(Gpa(PTRS + 8), VMCS);
    m.mem.write_u32(Gpa(VMXON_REGION), REVISION);
    m.mem.write_u32(Gpa(VMCS), REVISION);
    let mut v = baseline(&m);
    edit(&mut v);
    write_vmcs_table(&mut m, &v);
    m
}

pub fn setup(
    l2: impl FnOnce(Asm) -> Result<(), IcedError>,
    edit: impl FnOnce(&mut Vmcs),
) -> Machine {
    setup_full(l1_launch, host_handler, l2, edit)
}

pub fn run(m: &mut Machine) {
    let r = m.run(Some(100_000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
}

pub fn vmcs_field(m: &Machine, e: u32) -> u64 {
    m.nested.vmx.current_vmcs().expect("current VMCS").get(e)
}

/// Runs and expects a VM exit with basic reason `reason`.
pub fn expect_exit(m: &mut Machine, reason: u16) {
    run(m);
    assert_eq!(m.cpu.gpr[12], EXIT_MARK, "no VM exit; error {}", m.cpu.gpr[13]);
    assert_eq!(m.cpu.gpr[13], u64::from(reason), "exit reason");
    assert!(!m.nested.vmx.non_root);
}

pub fn set_bits(v: &mut Vmcs, e: u32, bits: u64) {
    let old = v.get(e);
    v.set(e, old | bits);
}

/// The address of the `n`-th instruction (0-based) of code assembled at L2.
pub fn insn_addr(bytes: &[u8], n: usize) -> u64 {
    let mut d = iced_x86::Decoder::with_ip(64, bytes, L2, iced_x86::DecoderOptions::NONE);
    let mut ip = L2;
    for _ in 0..n {
        ip = d.decode().next_ip();
    }
    ip
}

pub fn l2_hlt(a: Asm) -> Result<(), IcedError> {
    a.hlt()
}

pub fn l1_only(l1: impl FnOnce(Asm) -> Result<(), IcedError>) -> Machine {
    setup_full(l1, host_handler, l2_hlt, |_| {})
}

pub fn exception(m: &mut Machine) -> (u8, Option<u32>) {
    let r = m.run(Some(10_000));
    match r.reason {
        StopReason::Exception { exception, .. } => (exception.vector, exception.error_code),
        _ => panic!("expected an exception: {r}"),
    }
}
