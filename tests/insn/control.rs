//! JMP, Jcc, CALL and RET.

use super::common::*;

#[test]
fn counted_loop_with_jcc_in_every_mode() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            let mut top = a.create_label();
            a.xor(eax, eax)?;
            a.mov(ecx, 10u32)?;
            a.set_label(&mut top)?;
            a.add(eax, ecx)?;
            a.dec(ecx)?;
            a.jnz(top)?;
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, 55, "{mode:?}");
        // 2 setup + 3 * 10 loop + HLT.
        assert_eq!(m.cpu.insn_count, 33, "{mode:?}");
    }
}

#[test]
fn signed_and_unsigned_conditions() {
    let m = run_ok(GuestMode::Protected32, |a| {
        let mut l1 = a.create_label();
        let mut l2 = a.create_label();
        a.xor(ebx, ebx)?;
        a.mov(eax, 1u32)?;
        a.cmp(eax, -1i32)?;
        a.jb(l1)?; // 1 < 0xFFFFFFFF unsigned: taken
        a.or(ebx, 1u32)?;
        a.set_label(&mut l1)?;
        a.cmp(eax, -1i32)?;
        a.jg(l2)?; // 1 > -1 signed: taken
        a.or(ebx, 2u32)?;
        a.set_label(&mut l2)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[3], 0);
}

#[test]
fn call_and_ret_use_the_stack() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            let mut f = a.create_label();
            let mut done = a.create_label();
            a.mov(eax, 1u32)?;
            a.call(f)?;
            a.jmp(done)?;
            a.set_label(&mut f)?;
            a.add(eax, 41u32)?;
            a.ret()?;
            a.set_label(&mut done)?;
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, 42, "{mode:?}");
        assert_eq!(m.cpu.gpr[4] & 0xFFFF, STACK & 0xFFFF, "{mode:?}");
    }
}

#[test]
fn indirect_jump_through_register() {
    let m = run_ok(GuestMode::Long64, |a| {
        let mut target = a.create_label();
        a.lea(rax, ptr(target))?;
        a.jmp(rax)?;
        a.mov(ebx, 1u32)?;
        a.set_label(&mut target)?;
        a.mov(ecx, 2u32)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[3], 0);
    assert_eq!(m.cpu.gpr[1], 2);
}

#[test]
fn non_canonical_jump_target_is_gp() {
    let code = assemble(GuestMode::Long64, |a| {
        a.mov(rax, 0x8000_0000_0000u64)?;
        a.jmp(rax)?;
        Ok(())
    });
    let mut m = machine_with(GuestMode::Long64, &code);
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((13, Some(0))), "{r}");
    // RIP stays at the faulting JMP.
    assert_eq!(r.rip, CODE + 10);
}
