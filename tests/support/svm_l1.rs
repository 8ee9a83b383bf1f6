//! The L1 hypervisor pieces the nested SVM tests share: the memory layout of their
//! guests, the assembler shorthand, and L1's standard preamble (APM Vol. 2 §15.4
//! "Enabling SVM", §15.30.4 "VM_HSAVE_PA MSR").

#![allow(dead_code)]

use hvsim_svm_model::msr as svm_msr;
use iced_x86::code_asm::*;

/// L1's code.
pub const L1: u64 = 0x1000;
/// L1's stack top.
pub const L1_STACK: u64 = 0x8000;
/// The VMCB L1 runs.
pub const VMCB: u64 = 0x10000;
/// The host save area (VM_HSAVE_PA).
pub const HSAVE: u64 = 0x11000;
/// L2's code.
pub const L2: u64 = 0x20000;
/// L2's stack top.
pub const L2_STACK: u64 = 0x2F000;
/// The MSR permission map.
pub const MSRPM: u64 = 0x30000;
/// The I/O permission map.
pub const IOPM: u64 = 0x40000;

/// The assembler as the guest builders take it.
pub type Asm<'a> = &'a mut CodeAssembler;

/// 64-bit code assembled at `at`.
pub fn asm(at: u64, f: impl FnOnce(Asm) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    f(&mut a).unwrap();
    a.assemble(at).unwrap()
}

/// L1's preamble: EFER.SVME = 1 and VM_HSAVE_PA = HSAVE.
pub fn enable_svm(a: Asm) -> Result<(), IcedError> {
    a.mov(ecx, svm_msr::EFER)?;
    a.rdmsr()?;
    a.or(eax, svm_msr::EFER_SVME as i32)?;
    a.wrmsr()?;
    a.mov(ecx, svm_msr::VM_HSAVE_PA)?;
    a.mov(eax, HSAVE as u32)?;
    a.xor(edx, edx)?;
    a.wrmsr()
}

/// The standard L1: enable SVM, VMRUN the VMCB at VMCB, HLT.
pub fn l1_vmrun_hlt(a: Asm) -> Result<(), IcedError> {
    enable_svm(a)?;
    a.mov(rax, VMCB)?;
    a.vmrun()?;
    a.hlt()
}
