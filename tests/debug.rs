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

// ---- Data and I/O breakpoints (SDM Vol. 3A §18.2.4, §18.2.5, §18.3.1.2) ----

/// A watched location well away from the handler's log.
const WATCH: u64 = 0x6000;
const DB: u8 = hvsim::cpu::vector::DB;

/// DR7 for breakpoint `n`: L`n`, R/W`n` = `rw`, LEN`n` = `len` (the encoding: 00 = 1,
/// 01 = 2, 11 = 4, 10 = 8 bytes).
fn dr7_for(n: u32, rw: u64, len: u64) -> u64 {
    (1 << (2 * n)) | (rw << (16 + 4 * n)) | (len << (18 + 4 * n))
}

const RW_WRITE: u64 = 0b01;
const RW_IO: u64 = 0b10;
const RW_READ_WRITE: u64 = 0b11;
const LEN1: u64 = 0b00;
const LEN2: u64 = 0b01;
const LEN8: u64 = 0b10;
const LEN4: u64 = 0b11;

/// A machine that stops at #DB (as a debugger's catch would) instead of delivering it,
/// with DR0 = `dr0` and DR7 = `dr7` already loaded.
fn caught(main: Vec<u8>, dr0_value: u64, dr7_value: u64) -> Machine {
    let mut m = machine(main);
    m.set_exception_catch(1 << DB);
    m.cpu.dr[0] = dr0_value;
    m.cpu.dr[7] = dr7_value | 0x400;
    m
}

fn db_at(r: &hvsim::StopReport) -> bool {
    matches!(r.reason, StopReason::Exception { exception, .. } if exception.vector == DB)
}

/// §18.3.1.2: a data write breakpoint is a trap: the write completes, and #DB is raised
/// with the saved RIP of the *next* instruction and DR6.B0 set. R/W = 01 ignores reads;
/// the address is aligned down to LEN (§18.2.5: DR0 = WATCH + 1 with LEN 4 covers
/// WATCH..WATCH+3), and accesses beside the range do not match.
#[test]
fn data_write_breakpoint_traps_after_the_write() {
    let main = asm(CODE, |a| {
        a.mov(eax, dword_ptr(WATCH))?; // read: no match for R/W = 01
        a.mov(dword_ptr(WATCH + 4), eax)?; // beside the range
        a.mov(byte_ptr(WATCH - 1), 1)?; // just below it
        a.mov(word_ptr(WATCH + 2), 0x1234)?; // inside: trap
        a.nop()?;
        a.hlt()
    });
    let mut m = caught(main, WATCH + 1, dr7_for(0, RW_WRITE, LEN4));
    let r = m.run(Some(100));
    assert!(db_at(&r), "{r}");
    assert_eq!(m.mem.read_u16(Gpa(WATCH + 2)), 0x1234, "the write completed");
    assert_eq!(m.mem.read_u8(Gpa(r.rip)), 0x90, "saved RIP: the instruction after");
    assert_eq!(m.cpu.dr[6] & 0xF, 1, "DR6.B0");
    assert_eq!(m.cpu.dr[6] & BS, 0);
    // The run goes on from the trap to HLT without another hit.
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
}

/// §18.2.4: R/W = 11 breaks on reads and writes; LEN 8 and LEN 2 ranges; several
/// breakpoints hit by one access set each Bn (here B1 and B3, DR6 B0-B3 replaced).
#[test]
fn data_read_write_breakpoints_and_lengths() {
    let main = asm(CODE, |a| {
        a.mov(rax, qword_ptr(WATCH + 0x10))?; // read of DR1's 8 bytes and DR3's 2
        a.nop()?;
        a.mov(al, byte_ptr(WATCH + 0x1F))?; // one byte of DR1's range only
        a.nop()?;
        a.hlt()
    });
    let mut m = caught(main, 0, 0);
    m.cpu.dr[1] = WATCH + 0x1B; // LEN 8: aligned down to WATCH + 0x18
    m.cpu.dr[3] = WATCH + 0x16; // LEN 2: WATCH + 0x16..0x17
    m.cpu.dr[6] = 0xFFFF_0FF0 | 0x4; // a stale B2
    m.cpu.dr[7] = dr7_for(1, RW_READ_WRITE, LEN8) | dr7_for(3, RW_READ_WRITE, LEN2) | 0x400;
    // The first read covers WATCH + 0x10..0x17: DR3 only (DR1's range starts at 0x18).
    let r = m.run(Some(100));
    assert!(db_at(&r), "{r}");
    assert_eq!(m.cpu.dr[6] & 0xF, 0b1000, "B3 alone; the stale B2 is cleared");
    assert_eq!(m.mem.read_u8(Gpa(r.rip)), 0x90);
    let r = m.run(Some(100));
    assert!(db_at(&r), "{r}");
    assert_eq!(m.cpu.dr[6] & 0xF, 0b0010, "B1");
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
}

/// §18.3.1.2: "Repeated INS, MOVS, OUTS, and STOS instructions generate a data
/// breakpoint exception after the iteration in which the memory address breakpoint
/// location is accessed": the trap's saved RIP is the REP STOSD itself with RCX and RDI
/// after the hitting iteration, and the instruction then resumes and completes.
#[test]
fn rep_stos_traps_after_the_iteration_that_hit() {
    let main = asm(CODE, |a| {
        a.mov(rdi, WATCH)?;
        a.mov(ecx, 16u32)?;
        a.mov(eax, 0xABCD_EF01u32)?;
        a.rep().stosd()?;
        a.hlt()
    });
    let rep_at = CODE + 10 + 5 + 5;
    let mut m = caught(main, WATCH + 3 * 4, dr7_for(0, RW_WRITE, LEN4));
    let r = m.run(Some(100));
    assert!(db_at(&r), "{r}");
    assert_eq!(r.rip, rep_at, "saved RIP: the REP STOS, to resume");
    assert_eq!(m.cpu.gpr[1], 12, "four iterations done");
    assert_eq!(m.cpu.gpr[7], WATCH + 16);
    assert_eq!(m.mem.read_u32(Gpa(WATCH + 12)), 0xABCD_EF01);
    assert_eq!(m.mem.read_u32(Gpa(WATCH + 16)), 0, "nothing after the hit yet");
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(m.cpu.gpr[1], 0);
    assert_eq!(m.mem.read_u32(Gpa(WATCH + 60)), 0xABCD_EF01);
}

/// §18.3.1.2 and §18.2.4: with CR4.DE = 1, R/W = 10 is an I/O breakpoint on the port in
/// DRn: IN/OUT to it traps after the instruction. With CR4.DE = 0 the encoding is
/// undefined and hvsim never breaks on it.
#[test]
fn io_breakpoint_needs_cr4_de() {
    let main = asm(CODE, |a| {
        a.mov(al, 7)?;
        a.out(0x81, al)?; // not the watched port
        a.out(0x80, al)?; // traps with CR4.DE = 1
        a.nop()?;
        a.hlt()
    });
    let mut m = caught(main.clone(), 0x80, dr7_for(0, RW_IO, LEN1));
    m.cpu.cr4 |= hvsim::cpu::regs::cr4::DE;
    let r = m.run(Some(100));
    assert!(db_at(&r), "{r}");
    assert_eq!(r.rip, CODE + 2 + 2 + 2, "after OUT 0x80");
    assert_eq!(m.cpu.dr[6] & 0xF, 1);
    let mut m = caught(main, 0x80, dr7_for(0, RW_IO, LEN1));
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "CR4.DE = 0: {r}");
}

/// §18.3.1: one #DB reports every trap condition of an instruction: a data breakpoint
/// hit by an instruction that runs with TF = 1 sets B0 and BS together; the handler sees
/// the saved RIP of the next instruction.
#[test]
fn data_breakpoint_and_single_step_report_together() {
    let main = asm(CODE, |a| {
        a.mov(rax, WATCH)?; // 10 bytes
        a.mov(dr0, rax)?; // 3
        a.mov(eax, dr7_for(0, RW_WRITE, LEN4) as u32)?; // 5
        a.mov(dr7, rax)?; // 3
        a.pushfq()?; // 1
        a.or(qword_ptr(rsp), 0x100)?; // 8
        a.popfq()?; // 1: TF = 1 from here
        a.mov(dword_ptr(WATCH), ecx)?; // traps: B0 | BS
        a.hlt()
    });
    let mut m = machine(main);
    let r = m.run(Some(1000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    let l = log(&m);
    let hit = l.iter().find(|e| e.1 & 1 != 0).expect("a #DB with B0");
    assert_ne!(hit.1 & BS, 0, "BS with B0 in the same #DB: {l:x?}");
    assert_eq!(m.mem.read_u8(Gpa(hit.0)), 0xF4, "saved RIP: the HLT after the write");
    assert_eq!(l.iter().filter(|e| e.1 & 1 != 0).count(), 1, "{l:x?}");
}

/// SDM Vol. 3A §6.9 "Priority Among Concurrent Exceptions and Interrupts": traps on the
/// previous instruction (data breakpoints) come before maskable interrupts. The STI
/// shadow holds the pending interrupt over the MOV that hits; after it the #DB is taken
/// first and the interrupt is still pending.
#[test]
fn data_breakpoint_trap_comes_before_a_pending_interrupt() {
    let main = asm(CODE, |a| {
        a.sti()?;
        a.mov(dword_ptr(WATCH), eax)?;
        a.nop()?;
        a.hlt()
    });
    let mut m = caught(main, WATCH, dr7_for(0, RW_WRITE, LEN4));
    m.inject_interrupt(0x40);
    let r = m.run(Some(100));
    assert!(db_at(&r), "{r}");
    assert_eq!(m.pending_interrupt(), Some(0x40), "the interrupt waits behind the #DB");
    assert_eq!(m.mem.read_u8(Gpa(r.rip)), 0x90);
}

/// §18.2.4 "Debug Control Register (DR7)" and Vol. 2B "MOV DRn": with CR4.DE = 1, DR4
/// and DR5 do not alias DR6/DR7: MOV from them is #UD.
#[test]
fn dr4_is_undefined_with_cr4_de() {
    let main = asm(CODE, |a| {
        a.db(&[0x0F, 0x21, 0xE0]) // mov rax, dr4
    });
    let mut m = machine(main);
    m.set_exception_catch(hvsim::machine::CATCH_ALL);
    m.cpu.cr4 |= hvsim::cpu::regs::cr4::DE;
    let r = m.run(Some(10));
    assert!(
        matches!(r.reason, StopReason::Exception { exception, .. } if exception.vector == hvsim::cpu::vector::UD),
        "{r}"
    );
}

/// §18.3.1.2 with a data breakpoint on the stack an exception frame is pushed to: the
/// #UD delivery's write hits it, and the #DB trap is reported before the #UD handler's
/// first instruction (saved RIP = the handler). The #DB's own frame pushes hit nothing
/// reportable: the run does not loop.
#[test]
fn data_breakpoint_hit_by_an_exception_frame() {
    let main = asm(CODE, |a| {
        a.ud2()?;
        a.hlt()
    });
    let mut m = machine(main);
    // #UD handler: skip the UD2 and return.
    let ud_handler = HANDLER + 0x200;
    let code = asm(ud_handler, |a| {
        a.add(qword_ptr(rsp), 2)?;
        a.iretq()
    });
    m.load(ud_handler, &code).unwrap();
    let gate = (ud_handler & 0xFFFF) | (u64::from(selector::CODE64) << 16) | (0x8Eu64 << 40);
    m.mem.write_u64(Gpa(IDT + 6 * 16), gate);
    // The #UD frame's SS slot is at STACK - 8 (RSP aligned to 16).
    m.cpu.dr[0] = STACK - 8;
    m.cpu.dr[7] = dr7_for(0, RW_WRITE, LEN8) | 0x400;
    let r = m.run(Some(1000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    let l = log(&m);
    assert_eq!(l.len(), 1, "{l:x?}");
    assert_eq!((l[0].0, l[0].1 & 0xF), (ud_handler, 1), "before the #UD handler runs");
}
