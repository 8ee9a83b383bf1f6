//! Debug exceptions (SDM Vol. 3A Chapter 18 "Debug, Branch Profile, TSC, and Intel
//! Resource Director Technology Features"): single step with TF, instruction breakpoints
//! in DR0-DR3 with RF, and the DR6 status bits a #DB handler sees.

use hvsim::machine::selector;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use hvsim_mmu::Gpa;
use iced_x86::code_asm::*;

const CODE: u64 = 0x1000;
const HANDLER: u64 = 0x2000;
const DATA: u64 = 0x4000;
const IDT: u64 = 0x5000;
const STACK: u64 = 0x8000;

fn asm(at: u64, f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    f(&mut a).unwrap();
    a.assemble(at).unwrap()
}

/// A 64-bit machine whose #DB handler (a 64-bit interrupt gate) appends the saved RIP
/// and DR6 to a log at DATA (count at DATA, entries from DATA + 16), clears DR6, and
/// returns with IRETQ.
fn machine(main: Vec<u8>) -> Machine {
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load(CODE, &main).unwrap();
    m.enter_mode(GuestMode::Long64, CODE, STACK).unwrap();
    let handler = asm(HANDLER, |a| {
        a.push(rax)?;
        a.push(rbx)?;
        a.mov(rbx, qword_ptr(DATA))?;
        a.shl(rbx, 4)?;
        a.mov(rax, qword_ptr(rsp + 16))?; // saved RIP
        a.mov(qword_ptr(rbx + DATA as i32 + 16), rax)?;
        a.mov(rax, dr6)?;
        a.mov(qword_ptr(rbx + DATA as i32 + 24), rax)?;
        a.xor(eax, eax)?;
        a.mov(dr6, rax)?;
        a.inc(qword_ptr(DATA))?;
        a.pop(rbx)?;
        a.pop(rax)?;
        a.iretq()
    });
    m.load(HANDLER, &handler).unwrap();
    let gate = [(HANDLER & 0xFFFF) | (u64::from(selector::CODE64) << 16) | (0x8Eu64 << 40), 0];
    m.mem.write_u64(Gpa(IDT + 16), gate[0]);
    m.mem.write_u64(Gpa(IDT + 24), gate[1]);
    m.cpu.idtr.base = IDT;
    m.cpu.idtr.limit = 0xFFF;
    m
}

/// The (RIP, DR6) pairs the handler logged.
fn log(m: &Machine) -> Vec<(u64, u64)> {
    let n = m.mem.read_u64(Gpa(DATA));
    (0..n)
        .map(|k| {
            let at = DATA + 16 + 16 * k;
            (m.mem.read_u64(Gpa(at)), m.mem.read_u64(Gpa(at + 8)))
        })
        .collect()
}

const BS: u64 = 1 << 14;

/// SDM Vol. 3A §18.3.1.4 "Single-Step Exception Condition": after POPF sets TF, the
/// trap comes after the *next* instruction; each following instruction traps with
/// DR6.BS and the saved RIP of the next instruction; the POPF that clears TF still
/// traps (TF was set when it started); the handler itself is not single-stepped.
#[test]
fn single_step_traps_after_each_instruction() {
    let main = asm(CODE, |a| {
        a.pushfq()?;
        a.or(qword_ptr(rsp), 0x100)?;
        a.popfq()?; // TF = 1 from here
        a.nop()?; // trap after this (RIP = next)
        a.mov(ecx, 1u32)?; // and this
        a.pushfq()?;
        a.and(qword_ptr(rsp), !0x100)?;
        a.popfq()?; // TF cleared by this POPF: it still traps
        a.nop()?; // no trap
        a.hlt()
    });
    let mut m = machine(main.clone());
    let r = m.run(Some(1000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    let l = log(&m);
    let rips: Vec<u64> = l.iter().map(|e| e.0).collect();
    // The first trap follows the NOP after the POPF that set TF.
    assert_eq!(m.mem.read_u16(Gpa(rips[0] - 2)), 0x909D, "POPFQ; NOP before the first trap");
    assert_eq!(rips[1], rips[0] + 5, "after MOV ECX, 1");
    assert_eq!(*rips.last().unwrap(), CODE + main.len() as u64 - 2, "after the clearing POPF");
    assert_eq!(l.len(), 5, "nop, mov, pushfq, and, popfq: {rips:x?}");
    assert!(l.iter().all(|e| e.1 & BS != 0), "DR6.BS in every trap");
}

/// SDM Vol. 3A §18.3.1.1 "Instruction-Breakpoint Exception Condition": an enabled
/// execute breakpoint in DR0 faults before the instruction runs (saved RIP = the
/// instruction, DR6.B0). The handler sets RF in the saved RFLAGS, as debuggers do, so
/// that after IRETQ the instruction runs once without hitting the breakpoint again.
#[test]
fn instruction_breakpoint_faults_and_rf_suppresses_it() {
    let main = asm(CODE, |a| {
        a.mov(rax, CODE + 0x20)?; // 10 bytes
        a.mov(dr0, rax)?; // 3 bytes
        a.mov(eax, 1u32)?; // L0, R/W0 = execute
        a.mov(dr7, rax)?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.nop()?;
        a.hlt()
    });
    // Make the handler set RF in the saved RFLAGS so the instruction can run.
    let mut m = machine(main);
    let patch = asm(HANDLER - 0x100, |a| {
        a.or(qword_ptr(rsp + 16), 0x1_0000)?;
        a.jmp(HANDLER)
    });
    m.load(HANDLER - 0x100, &patch).unwrap();
    let gate = ((HANDLER - 0x100) & 0xFFFF) | (u64::from(selector::CODE64) << 16) | (0x8Eu64 << 40);
    m.mem.write_u64(Gpa(IDT + 16), gate);
    let r = m.run(Some(1000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    let l = log(&m);
    assert_eq!(l.len(), 1, "{l:x?}");
    assert_eq!(l[0].0, CODE + 0x20, "fault: the saved RIP is the breakpoint address");
    assert_eq!(l[0].1 & 0xF, 1, "DR6.B0");
    assert_eq!(l[0].1 & BS, 0);
}

/// SDM Vol. 3A §18.3.1.1: a disabled breakpoint (L0 = G0 = 0) never fires.
#[test]
fn disabled_breakpoint_does_not_fire() {
    let main = asm(CODE, |a| {
        a.mov(rax, CODE + 0x20)?;
        a.mov(dr0, rax)?;
        a.mov(eax, 0x400u32)?;
        a.mov(dr7, rax)?;
        for _ in 0..14 {
            a.nop()?;
        }
        a.hlt()
    });
    let mut m = machine(main);
    let r = m.run(Some(1000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert!(log(&m).is_empty());
}
