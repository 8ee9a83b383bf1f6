//! XCHG, CMPXCHG, CMPXCHG8B/16B, XADD, BSWAP, MOVBE.

use super::common::*;
use hvsim_mmu::Gpa;

#[test]
fn xchg_register_and_memory_in_every_mode() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(ebx, DATA as u32)?;
            a.mov(dword_ptr(DATA as u32), 0x1111_2222u32)?;
            a.mov(eax, 0x3333_4444u32)?;
            a.xchg(dword_ptr(DATA as u32), eax)?;
            a.mov(ecx, 5u32)?;
            a.mov(edx, 9u32)?;
            a.xchg(ecx, edx)?;
            a.mov(ax, 0xABCDu32)?;
            a.xchg(ah, al)?;
            Ok(())
        });
        assert_eq!(m.mem.read_u32(Gpa(DATA)), 0x3333_4444, "{mode:?}");
        assert_eq!(m.cpu.gpr[0] & 0xFFFF_FFFF, 0x1111_CDAB, "{mode:?}");
        assert_eq!((m.cpu.gpr[1] & 0xFFFF, m.cpu.gpr[2] & 0xFFFF), (9, 5), "{mode:?}");
    }
}

#[test]
fn xchg_eax_eax_zero_extends_but_nop_does_not() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rax, u64::MAX)?;
        a.mov(rbx, u64::MAX)?;
        a.db(&[0x87, 0xC0])?; // xchg eax, eax
        a.db(&[0x87, 0xDB])?; // xchg ebx, ebx
        a.mov(rcx, u64::MAX)?;
        a.db(&[0x90])?; // nop
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0xFFFF_FFFF);
    assert_eq!(m.cpu.gpr[3], 0xFFFF_FFFF);
    assert_eq!(m.cpu.gpr[1], u64::MAX);
}

#[test]
fn cmpxchg_success_and_failure() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(dword_ptr(DATA as u32), 100u32)?;
            a.mov(eax, 100u32)?;
            a.mov(ecx, 200u32)?;
            a.cmpxchg(dword_ptr(DATA as u32), ecx)?; // equal: [DATA] = 200, ZF = 1
            a.setz(bl)?;
            a.cmpxchg(dword_ptr(DATA as u32), ecx)?; // 100 != 200: EAX = 200, ZF = 0
            a.setz(bh)?;
            a.mov(dl, 5u32)?;
            a.mov(al, 7u32)?;
            a.cmpxchg(dl, cl)?; // 7 vs 5: AL = 5; flags of 7 - 5
            Ok(())
        });
        assert_eq!(m.mem.read_u32(Gpa(DATA)), 200, "{mode:?}");
        assert_eq!(m.cpu.gpr[3] & 0xFFFF, 0x0001, "{mode:?}");
        assert_eq!(m.cpu.gpr[0] & 0xFFFF_FFFF, 5, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFF, 5, "{mode:?}");
        assert_eq!(arith_flags(&m) & (ZF | CF | SF), 0, "{mode:?}");
    }
}

#[test]
fn cmpxchg_32bit_register_forms_in_long_mode() {
    let m = run_ok(GuestMode::Long64, |a| {
        // Failure: EAX loaded (zero-extended); the register destination untouched.
        a.mov(rax, u64::MAX)?;
        a.mov(rdx, 0xAAAA_0000_0000_0005u64)?;
        a.mov(rcx, 0x77u64)?;
        a.cmpxchg(edx, ecx)?;
        a.mov(r8, rax)?;
        a.mov(r9, rdx)?;
        // Success: the destination written (zero-extended), RAX untouched.
        a.mov(rax, 0xBBBB_0000_0000_0005u64)?;
        a.cmpxchg(edx, ecx)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[8], 5);
    assert_eq!(m.cpu.gpr[9], 0xAAAA_0000_0000_0005);
    assert_eq!(m.cpu.gpr[0], 0xBBBB_0000_0000_0005);
    assert_eq!(m.cpu.gpr[2], 0x77);
}

#[test]
fn cmpxchg8b_both_outcomes() {
    for mode in [GuestMode::Real, GuestMode::Protected32, GuestMode::Long64] {
        let m = run_ok(mode, |a| {
            a.mov(dword_ptr(DATA as u32), 0x1111_1111u32)?;
            a.mov(dword_ptr(DATA as u32 + 4), 0x2222_2222u32)?;
            a.mov(eax, 0x1111_1111u32)?;
            a.mov(edx, 0x2222_2222u32)?;
            a.mov(ebx, 0x3333_3333u32)?;
            a.mov(ecx, 0x4444_4444u32)?;
            a.cmpxchg8b(qword_ptr(DATA as u32))?;
            a.setz(byte_ptr(DATA as u32 + 0x10))?;
            a.cmpxchg8b(qword_ptr(DATA as u32))?; // fails: EDX:EAX = memory
            a.setz(byte_ptr(DATA as u32 + 0x11))?;
            Ok(())
        });
        assert_eq!(m.mem.read_u64(Gpa(DATA)), 0x4444_4444_3333_3333, "{mode:?}");
        assert_eq!(m.mem.read_u16(Gpa(DATA + 0x10)), 0x0001, "{mode:?}");
        assert_eq!(m.cpu.gpr[0] & 0xFFFF_FFFF, 0x3333_3333, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFFFF_FFFF, 0x4444_4444, "{mode:?}");
    }
}

#[test]
fn cmpxchg16b_success_and_misaligned_gp() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rdi, DATA)?;
        a.mov(qword_ptr(rdi), 1i32)?;
        a.mov(qword_ptr(rdi + 8), 2i32)?;
        a.mov(eax, 1u32)?;
        a.mov(edx, 2u32)?;
        a.mov(rbx, 0x1234_5678_9ABC_DEF0u64)?;
        a.mov(rcx, 0x0FED_CBA9_8765_4321u64)?;
        a.cmpxchg16b(xmmword_ptr(rdi))?;
        a.setz(r8b)?;
        a.cmpxchg16b(xmmword_ptr(rdi))?;
        a.setz(r9b)?;
        Ok(())
    });
    assert_eq!(m.mem.read_u64(Gpa(DATA)), 0x1234_5678_9ABC_DEF0);
    assert_eq!(m.mem.read_u64(Gpa(DATA + 8)), 0x0FED_CBA9_8765_4321);
    assert_eq!((m.cpu.gpr[8], m.cpu.gpr[9]), (1, 0));
    assert_eq!((m.cpu.gpr[0], m.cpu.gpr[2]), (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321));

    let code = assemble(GuestMode::Long64, |a| {
        a.mov(rdi, DATA + 8)?;
        a.cmpxchg16b(xmmword_ptr(rdi))?;
        Ok(())
    });
    let mut m = machine_with(GuestMode::Long64, &code);
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((13, Some(0))), "{r}");
}

#[test]
fn xadd_memory_and_same_register() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(dword_ptr(DATA as u32), 0xFFFF_FFFFu32)?;
            a.mov(ecx, 2u32)?;
            a.xadd(dword_ptr(DATA as u32), ecx)?;
            a.mov(edx, 5u32)?;
            a.xadd(edx, edx)?;
            Ok(())
        });
        assert_eq!(m.mem.read_u32(Gpa(DATA)), 1, "{mode:?}");
        assert_eq!(m.cpu.gpr[1] & 0xFFFF_FFFF, 0xFFFF_FFFF, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFFFF_FFFF, 10, "{mode:?}");
        assert_eq!(arith_flags(&m) & (CF | ZF), 0, "{mode:?}");
    }
    // Flags as ADD: 0xFF + 1 carries.
    let m = run_ok(GuestMode::Protected32, |a| {
        a.mov(al, 0xFFu32)?;
        a.mov(bl, 1u32)?;
        a.xadd(al, bl)?;
        Ok(())
    });
    assert_eq!(arith_flags(&m) & (CF | ZF), CF | ZF);
    assert_eq!(m.cpu.gpr[3] & 0xFF, 0xFF);
}

#[test]
fn bswap_and_movbe() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(eax, 0x1122_3344u32)?;
        a.bswap(eax)?;
        a.mov(rbx, 0x0102_0304_0506_0708u64)?;
        a.bswap(rbx)?;
        a.mov(ecx, 0xAABB_CCDDu32)?;
        a.db(&[0x66, 0x0F, 0xC9])?; // bswap cx: undefined, hvsim gives 0
        a.mov(rdi, DATA)?;
        a.mov(dword_ptr(rdi), 0x1234_5678u32)?;
        a.movbe(edx, dword_ptr(rdi))?;
        a.mov(si, 0xBEEFu32)?;
        a.movbe(word_ptr(rdi + 8), si)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0x4433_2211);
    assert_eq!(m.cpu.gpr[3], 0x0807_0605_0403_0201);
    assert_eq!(m.cpu.gpr[1], 0xAABB_0000);
    assert_eq!(m.cpu.gpr[2], 0x7856_3412);
    assert_eq!(m.mem.read_u16(Gpa(DATA + 8)), 0xEFBE);
}
