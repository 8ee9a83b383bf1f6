//! CBW/CWDE/CDQE, CWD/CDQ/CQO, LAHF/SAHF, XLAT, PUSHF/POPF, PUSHA/POPA.

use super::common::*;
use hvsim::cpu::flags::{AC, FIXED1, IF, IOPL, NT, RF, VM};
use hvsim_mmu::Gpa;

#[test]
fn sign_extensions_in_every_mode() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 0x1234_5680u32)?;
            a.cbw()?; // AX = 0xFF80
            a.mov(ebx, eax)?;
            a.cwde()?; // EAX = 0xFFFF_FF80
            a.mov(esi, eax)?;
            a.mov(ecx, 0x8000u32)?;
            a.mov(eax, ecx)?;
            a.cwd()?; // DX = 0xFFFF
            a.mov(edi, edx)?;
            a.mov(eax, 0x7FFF_FFFFu32)?;
            a.cdq()?; // EDX = 0
            Ok(())
        });
        assert_eq!(m.cpu.gpr[3] & 0xFFFF_FFFF, 0x1234_FF80, "{mode:?}");
        assert_eq!(m.cpu.gpr[6] & 0xFFFF_FFFF, 0xFFFF_FF80, "{mode:?}");
        assert_eq!(m.cpu.gpr[7] & 0xFFFF, 0xFFFF, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFFFF_FFFF, 0, "{mode:?}");
    }
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(eax, 0x8000_0000u32)?;
        a.cdqe()?;
        a.mov(rbx, rax)?;
        a.cqo()?;
        a.mov(rcx, u64::MAX)?;
        a.mov(eax, 0x80u32)?;
        a.cwde()?; // 32-bit write zero-extends RAX
        Ok(())
    });
    assert_eq!(m.cpu.gpr[3], 0xFFFF_FFFF_8000_0000);
    assert_eq!(m.cpu.gpr[2], u64::MAX);
    assert_eq!(m.cpu.gpr[0], 0x80);
}

#[test]
fn lahf_and_sahf() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(al, 0x7Fu32)?;
            a.add(al, 1u32)?; // OF = 1, SF = 1, AF = 1
            a.xor(ecx, ecx)?; // ZF = 1, PF = 1, OF = 0
            a.stc()?;
            a.lahf()?;
            a.mov(bl, ah)?;
            a.mov(al, 0x7Fu32)?;
            a.add(al, 1u32)?; // OF = 1
            a.mov(ah, 0xD5u32)?; // SF ZF AF PF CF
            a.sahf()?;
            Ok(())
        });
        assert_eq!(m.cpu.gpr[3] & 0xFF, 0x47, "{mode:?}");
        assert_eq!(arith_flags(&m), SF | ZF | AF | PF | CF | OF, "{mode:?}");
    }
}

#[test]
fn xlat_with_default_and_overridden_segment() {
    for mode in ALL_MODES {
        let code = assemble(mode, |a| {
            a.mov(ebx, DATA as u32)?;
            a.mov(eax, 0xFF03u32)?;
            a.xlatb()?;
            Ok(())
        });
        let mut m = machine_with(mode, &code);
        m.load(DATA, &[10, 11, 12, 13]).unwrap();
        let r = m.run(Some(100));
        assert!(matches!(r.reason, StopReason::Halted { .. }), "{mode:?}: {r}");
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, 0xFF0D, "{mode:?}");
    }
    let code = assemble(GuestMode::Real, |a| {
        a.mov(ax, 0x100u32)?;
        a.mov(es, ax)?;
        a.mov(bx, DATA as u32)?;
        a.mov(al, 1u32)?;
        a.db(&[0x26, 0xD7])?; // es xlatb
        Ok(())
    });
    let mut m = machine_with(GuestMode::Real, &code);
    m.load(DATA + 0x1000, &[0, 0x99]).unwrap();
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(m.cpu.gpr[0] & 0xFF, 0x99);
}

#[test]
fn pushf_image_clears_rf_and_popf_clears_rf() {
    let code = assemble(GuestMode::Protected32, |a| {
        a.pushfd()?;
        a.pop(eax)?;
        a.push(0x0001_0001u32 as i32)?; // RF | CF
        a.popfd()?;
        Ok(())
    });
    let mut m = machine_with(GuestMode::Protected32, &code);
    m.cpu.flags.set(FIXED1 | RF | ZF);
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(m.cpu.gpr[0], FIXED1 | ZF);
    assert_eq!(m.cpu.flags.get(), FIXED1 | CF);
}

#[test]
fn popf_at_cpl0_loads_iopl_if_and_keeps_vm() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            let img = (VM | AC | IOPL | NT | IF | CF | ZF) as u32;
            a.mov(eax, img)?;
            if bits(mode) == 64 {
                a.push(rax)?;
                a.popfq()?;
            } else {
                a.push(eax)?;
                a.popfd()?;
            }
            Ok(())
        });
        let f = m.cpu.flags.get();
        assert_eq!(
            f & (VM | AC | IOPL | NT | IF | CF | ZF),
            AC | IOPL | NT | IF | CF | ZF,
            "{mode:?}"
        );
    }
}

#[test]
fn popfw_changes_only_the_low_word() {
    let m = run_ok(GuestMode::Protected32, |a| {
        a.push((AC | CF) as u32 as i32)?;
        a.popfd()?;
        a.push(0u32 as i32)?;
        a.pop(ax)?; // leave 2 bytes of zero on top...
        a.push(ax)?;
        a.popf()?; // 16-bit POPF of 0
        Ok(())
    });
    assert_eq!(m.cpu.flags.get(), FIXED1 | AC);
}

/// Runs `code` (ending in UD2) at CPL 3 in 32-bit protected mode with `flags`.
fn run_cpl3(code: &[u8], flags: u64) -> (Machine, StopReport) {
    let mut m = machine_with(GuestMode::Protected32, code);
    m.cpu.seg[1].selector |= 3;
    m.cpu.flags.set(flags);
    m.cpu.update_mode();
    let r = m.run(Some(100));
    (m, r)
}

#[test]
fn popf_iopl_rules_at_cpl3() {
    let code = {
        let mut a = CodeAssembler::new(32).unwrap();
        a.push((IOPL | CF) as u32 as i32).unwrap(); // IOPL 3, IF 0
        a.popfd().unwrap();
        a.ud2().unwrap();
        a.assemble(CODE).unwrap()
    };
    // CPL 3 > IOPL 0: IOPL and IF unchanged, CF loaded, no fault.
    let (m, r) = run_cpl3(&code, FIXED1 | IF);
    assert_eq!(exception(&r), Some((6, None)), "{r}");
    assert_eq!(m.cpu.flags.get(), FIXED1 | IF | CF);
    // CPL 3 = IOPL 3: IF loaded (cleared), IOPL still unchanged at CPL > 0.
    let code2 = {
        let mut a = CodeAssembler::new(32).unwrap();
        a.push(CF as u32 as i32).unwrap(); // IOPL 0, IF 0
        a.popfd().unwrap();
        a.ud2().unwrap();
        a.assemble(CODE).unwrap()
    };
    let (m, r) = run_cpl3(&code2, FIXED1 | IF | IOPL);
    assert_eq!(exception(&r), Some((6, None)), "{r}");
    assert_eq!(m.cpu.flags.get(), FIXED1 | IOPL | CF);
}

#[test]
fn pusha_popa_order_16_and_32() {
    let m = run_ok(GuestMode::Protected32, |a| {
        for (k, r) in [eax, ecx, edx, ebx].into_iter().enumerate() {
            a.mov(r, 0x100u32 + k as u32)?;
        }
        a.mov(ebp, 0x105u32)?;
        a.mov(esi, 0x106u32)?;
        a.mov(edi, 0x107u32)?;
        a.pushad()?;
        a.mov(dword_ptr(esp + 12), 0xBAD_u32)?; // the saved ESP: ignored by POPAD
        for r in [eax, ecx, edx, ebx, ebp, esi, edi] {
            a.xor(r, r)?;
        }
        a.popad()?;
        Ok(())
    });
    let slot = |k: u64| m.mem.read_u32(Gpa(STACK - 4 * (k + 1)));
    let want = [0x100, 0x101, 0x102, 0x103, STACK as u32, 0x105, 0x106, 0x107];
    for (k, w) in want.iter().enumerate() {
        if k != 4 {
            assert_eq!(slot(k as u64), *w, "slot {k}");
        }
    }
    assert_eq!(slot(4), 0xBAD);
    for (r, w) in
        [(0, 0x100), (1, 0x101), (2, 0x102), (3, 0x103), (5, 0x105), (6, 0x106), (7, 0x107)]
    {
        assert_eq!(m.cpu.gpr[r], w, "gpr {r}");
    }
    assert_eq!(m.cpu.gpr[4], STACK);

    let m = run_ok(GuestMode::Real, |a| {
        a.mov(eax, 0xAAAA_0001u32)?;
        a.mov(edi, 0x0007u32)?;
        a.pusha()?;
        a.xor(eax, eax)?;
        a.xor(edi, edi)?;
        a.popa()?;
        Ok(())
    });
    assert_eq!(m.mem.read_u16(Gpa(STACK - 2)), 0x0001);
    assert_eq!(m.mem.read_u16(Gpa(STACK - 10)), STACK as u16);
    assert_eq!(m.mem.read_u16(Gpa(STACK - 16)), 7);
    // POPA writes 16-bit registers: the upper half of EAX stays as XOR left it.
    assert_eq!((m.cpu.gpr[0], m.cpu.gpr[7], m.cpu.gpr[4]), (1, 7, STACK));
}

#[test]
fn pusha_is_invalid_in_long_mode() {
    let code = assemble(GuestMode::Long64, |a| a.db(&[0x60]));
    let mut m = machine_with(GuestMode::Long64, &code);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), Some((6, None)), "{r}");
}

#[test]
fn pushf_popf_in_v86_mode_follow_iopl() {
    // V86 with IOPL < 3 (no VME): PUSHF faults.
    let code = assemble(GuestMode::Real, |a| {
        a.pushf()?;
        Ok(())
    });
    let v86 = |code: &[u8], iopl: u64| {
        let mut m = machine_with(GuestMode::Protected32, code);
        m.cpu.flags.set(FIXED1 | VM | (iopl << 12));
        m.cpu.update_mode();
        m
    };
    let mut m = v86(&code, 0);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), Some((13, Some(0))), "{r}");
    // IOPL 3: PUSHF stores the image without VM; POPF loads IF but not IOPL.
    let code = assemble(GuestMode::Real, |a| {
        a.pushf()?;
        a.pop(bx)?;
        a.push((IF | CF) as u32 as i32)?;
        a.popf()?;
        a.ud2()?;
        Ok(())
    });
    let mut m = v86(&code, 3);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), Some((6, None)), "{r}");
    assert_eq!(m.cpu.gpr[3], FIXED1 | IOPL);
    assert_eq!(m.cpu.flags.get(), FIXED1 | VM | IOPL | IF | CF);
}
