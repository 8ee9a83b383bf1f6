//! The machine and its run loop: stop reasons, exact instruction counting, the
//! decoded-code cache under self-modifying and page-crossing code, memory accesses that
//! cross pages, segment limits and paging faults reported as values.

use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use hvsim_mmu::Gpa;
use iced_x86::code_asm::*;

fn asm(bits: u32, at: u64, f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    f(&mut a).unwrap();
    a.assemble(at).unwrap()
}

/// A machine that stops at every exception (these tests look at the exception raised,
/// not at its delivery).
fn machine() -> Machine {
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.set_exception_catch(hvsim::machine::CATCH_ALL);
    m
}

#[test]
fn instruction_limit_is_exact_and_resumable() {
    let code = asm(64, 0x1000, |a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.inc(rax)?;
        a.nop()?;
        a.jmp(top)?;
        Ok(())
    });
    let mut m = machine();
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    for n in [1u64, 2, 7, 1000] {
        let before = m.cpu.insn_count;
        let r = m.run(Some(n));
        assert_eq!(r.reason, StopReason::InsnLimit);
        assert_eq!(m.cpu.insn_count - before, n);
    }
    // 1010 instructions = 336 full iterations (1008) + INC + NOP.
    assert_eq!(m.cpu.gpr[0], 337);
}

#[test]
fn unsupported_instruction_is_reported_at_its_rip() {
    // FSIN is x87, which hvsim does not emulate.
    let code = asm(32, 0x1000, |a| {
        a.nop()?;
        a.fsin()?;
        Ok(())
    });
    let mut m = machine();
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
    let r = m.run(Some(10));
    match &r.reason {
        StopReason::Unsupported { what } => assert!(what.contains("fsin"), "{what}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.rip, 0x1001);
    assert_eq!(r.insn_count, 1);
    assert_eq!(&r.bytes[..2], &[0xD9, 0xFE]);
    assert!(r.to_string().contains("unsupported at 0018:1001"), "{r}");
    assert_eq!(r.exit_status(), 3);
}

#[test]
fn invalid_opcode_is_ud_with_report() {
    let mut m = machine();
    m.load(0x1000, &[0x90, 0x0F, 0x0B]).unwrap(); // nop; ud2
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    let r = m.run(Some(10));
    assert_eq!(Machine::exception_of(&r).map(|e| e.vector), Some(6));
    assert_eq!(r.rip, 0x1001);
    // An undecodable byte sequence: 0x06 (PUSH ES) is invalid in 64-bit mode.
    let mut m = machine();
    m.load(0x1000, &[0x06]).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    let r = m.run(Some(10));
    assert_eq!(Machine::exception_of(&r).map(|e| e.vector), Some(6));
    assert!(r.to_string().contains("#UD"), "{r}");
}

#[test]
fn instruction_crossing_a_page_boundary_executes_and_is_invalidated() {
    // A 10-byte MOV RAX, imm64 starting 3 bytes before a page boundary.
    let at = 0x1FFD;
    let code = asm(64, at, |a| {
        a.mov(rax, 0x1122_3344_5566_7788u64)?;
        a.hlt()?;
        Ok(())
    });
    let mut m = machine();
    m.load(at, &code).unwrap();
    m.enter_mode(GuestMode::Long64, at, 0x8000).unwrap();
    m.run(Some(10));
    assert_eq!(m.cpu.gpr[0], 0x1122_3344_5566_7788);
    // Patch the immediate's top byte, on the second page, and run again from the start.
    let patch = asm(64, 0x3000, |a| {
        a.mov(byte_ptr(at + 9), 0x99u32)?;
        a.jmp(at)?;
        Ok(())
    });
    m.load(0x3000, &patch).unwrap();
    m.cpu.rip = 0x3000;
    m.cpu.halted = false;
    m.run(Some(10));
    assert_eq!(m.cpu.gpr[0], 0x9922_3344_5566_7788);
}

#[test]
fn data_access_crossing_pages_and_regions() {
    let code = asm(64, 0x1000, |a| {
        a.mov(rbx, 0x2FFCu64)?;
        a.mov(rax, 0x0102_0304_0506_0708u64)?;
        a.mov(qword_ptr(rbx), rax)?;
        a.mov(rcx, qword_ptr(rbx))?;
        a.hlt()?;
        Ok(())
    });
    let mut m = machine();
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    m.run(Some(100));
    assert_eq!(m.cpu.gpr[1], 0x0102_0304_0506_0708);
    assert_eq!(m.mem.read_u32(Gpa(0x3000)), 0x0102_0304);
}

#[test]
fn reads_beyond_ram_return_all_ones() {
    let code = asm(64, 0x1000, |a| {
        a.mov(rbx, 0x4000_0000u64)?; // 1 GiB: beyond the 16 MiB of RAM, identity-mapped
        a.mov(qword_ptr(rbx), rbx)?; // dropped
        a.mov(rax, qword_ptr(rbx))?;
        a.hlt()?;
        Ok(())
    });
    let mut m = machine();
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(m.cpu.gpr[0], u64::MAX);
}

#[test]
fn page_fault_is_a_value_with_error_code_and_address() {
    let code = asm(64, 0x1000, |a| {
        a.mov(rbx, 0x1_0000_0000u64)?; // 4 GiB: not mapped by the harness tables
        a.mov(dword_ptr(rbx + 8), 1u32)?;
        Ok(())
    });
    let mut m = machine();
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    let r = m.run(Some(100));
    let e = Machine::exception_of(&r).expect("exception");
    assert_eq!((e.vector, e.error_code, e.cr2), (14, Some(0b010), 0x1_0000_0008));
    assert_eq!(r.rip, 0x100A);
    assert!(r.to_string().contains("#PF(0x2) at 0x100000008"), "{r}");
}

#[test]
fn real_mode_offset_beyond_segment_limit_is_gp() {
    // mov ax, [0xFFFF]: a word at offset 0xFFFF crosses the 64 KiB limit.
    let code = asm(16, 0x1000, |a| {
        a.mov(ax, word_ptr(0xFFFF))?;
        Ok(())
    });
    let mut m = machine();
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Real, 0x1000, 0x8000).unwrap();
    let r = m.run(Some(10));
    assert_eq!(Machine::exception_of(&r).map(|e| (e.vector, e.error_code)), Some((13, Some(0))));
}

#[test]
fn stack_fault_on_non_canonical_stack() {
    let code = asm(64, 0x1000, |a| {
        a.mov(rsp, 0x8000_0000_0008u64)?; // the push lands at 2^47: non-canonical
        a.push(rax)?;
        Ok(())
    });
    let mut m = machine();
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    let r = m.run(Some(10));
    assert_eq!(Machine::exception_of(&r).map(|e| (e.vector, e.error_code)), Some((12, Some(0))));
}

#[test]
fn sti_hlt_reports_interrupts_enabled() {
    let mut m = machine();
    m.load(0x1000, &[0xFB, 0xF4]).unwrap(); // sti; hlt
    m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
    let r = m.run(Some(10));
    assert_eq!(r.reason, StopReason::Halted { interrupts_enabled: true });
    assert_eq!(r.insn_count, 2);
    assert_eq!(r.rip, 0x1002);
}

#[test]
fn code_cache_hits_on_loops() {
    let code = asm(64, 0x1000, |a| {
        let mut top = a.create_label();
        a.mov(ecx, 1000u32)?;
        a.set_label(&mut top)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()?;
        Ok(())
    });
    let mut m = machine();
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    m.run(Some(10_000));
    let s = m.code_cache_stats();
    assert!(s.hits >= 998 && s.misses <= 4, "{s:?}");
}

#[test]
fn memory_size_errors_are_values() {
    assert!(Machine::new(&MachineConfig { mem_size: 100, ..MachineConfig::default() }).is_err());
    let mut m = machine();
    assert!(m.load(16 << 20, &[1, 2, 3]).is_err());
}

#[test]
fn lock_prefix_on_a_register_destination_is_ud() {
    let mut m = machine();
    m.load(0x1000, &[0xF0, 0x01, 0xC0]).unwrap(); // lock add eax, eax
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    let r = m.run(Some(10));
    assert_eq!(Machine::exception_of(&r).map(|e| e.vector), Some(6), "{r}");
    // LOCK on a memory destination is fine.
    let mut m = machine();
    m.load(0x1000, &[0xF0, 0x01, 0x03, 0xF4]).unwrap(); // lock add [rbx], eax; hlt
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    m.cpu.gpr[3] = 0x4000;
    m.cpu.gpr[0] = 5;
    let r = m.run(Some(10));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(m.mem.read_u32(Gpa(0x4000)), 5);
}

#[test]
fn huge_rep_is_bounded_by_the_instruction_limit_and_resumes() {
    // rep stosb with RCX = 2^40: never finishes within the budget, but the run ends.
    let code = asm(64, 0x1000, |a| {
        a.rep().stosb()?;
        a.hlt()?;
        Ok(())
    });
    let mut m = machine();
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    m.cpu.gpr[1] = 1 << 40;
    m.cpu.gpr[7] = 0x10_0000;
    let r = m.run(Some(10));
    assert_eq!(r.reason, StopReason::InsnLimit);
    assert_eq!(r.rip, 0x1000, "the REP has not retired");
    let left = m.cpu.gpr[1];
    assert!(left < 1 << 40, "it made progress");
    // Resumes where it left off.
    m.cpu.gpr[1] = 5000;
    let r = m.run(Some(10));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(m.cpu.gpr[1], 0);
}
