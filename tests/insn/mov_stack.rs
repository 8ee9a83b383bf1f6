//! MOV, MOVZX, MOVSX, LEA, PUSH, POP, and segment registers.

use super::common::*;

#[test]
fn mov_forms_and_extensions() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rbx, DATA)?;
        a.mov(dword_ptr(rbx + 8), 0x8081_8283u32)?;
        a.movzx(eax, byte_ptr(rbx + 8))?;
        a.movsx(rcx, word_ptr(rbx + 8))?;
        a.movsxd(rdx, dword_ptr(rbx + 8))?;
        a.lea(rsi, ptr(rbx + rax * 4 + 0x10))?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0x83);
    assert_eq!(m.cpu.gpr[1], 0xFFFF_FFFF_FFFF_8283);
    assert_eq!(m.cpu.gpr[2], 0xFFFF_FFFF_8081_8283);
    assert_eq!(m.cpu.gpr[6], DATA + 0x83 * 4 + 0x10);
}

#[test]
fn push_pop_sizes_per_mode() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 0x1234u32)?;
            a.push(ax)?;
            a.pop(bx)?;
            Ok(())
        });
        assert_eq!(m.cpu.gpr[3] & 0xFFFF, 0x1234, "{mode:?}");
        assert_eq!(m.cpu.gpr[4] & 0xFFFF, STACK & 0xFFFF, "{mode:?} rsp");
        let _ = m;
    }
}

#[test]
fn real_mode_segment_loads_set_the_base() {
    let m = run_ok(GuestMode::Real, |a| {
        a.mov(ax, 0x0400u32)?;
        a.mov(es, ax)?;
        a.mov(word_ptr(0x10).es(), 0xBEEFu32)?;
        a.mov(bx, word_ptr(0x4010))?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[3] & 0xFFFF, 0xBEEF);
    assert_eq!(m.mem.read_u16(hvsim_mmu::Gpa(0x4010)), 0xBEEF);
}

#[test]
fn protected_mode_null_ss_load_is_gp() {
    let code = assemble(GuestMode::Protected32, |a| {
        a.xor(eax, eax)?;
        a.mov(ss, ax)?;
        Ok(())
    });
    let mut m = machine_with(GuestMode::Protected32, &code);
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((13, Some(0))), "{r}");
}

#[test]
fn protected_mode_descriptor_load_from_gdt() {
    let m = run_ok(GuestMode::Protected32, |a| {
        a.mov(eax, 0x10u32)?;
        a.mov(ds, ax)?;
        a.mov(dword_ptr(DATA as u32), 7u32)?;
        a.mov(ebx, dword_ptr(DATA as u32))?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[3], 7);
}

#[test]
fn self_modifying_code_is_seen() {
    let m = run_ok(GuestMode::Protected32, |a| {
        let mut patch = a.create_label();
        a.mov(ebx, 0u32)?;
        a.set_label(&mut patch)?;
        // Rewrite the immediate of the MOV below, then run it.
        a.mov(byte_ptr(CODE as u32 + 13), 0x2Au32)?;
        a.mov(eax, 0u32)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0x2A);
}
