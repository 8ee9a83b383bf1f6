//! SETcc and CMOVcc.

use super::common::*;
use hvsim_mmu::Gpa;

/// The x86 condition `cc` evaluated on `flags` (reference model).
fn cond(cc: u8, f: u64) -> bool {
    let (cf, zf, sf, of, pf) = (f & CF != 0, f & ZF != 0, f & SF != 0, f & OF != 0, f & PF != 0);
    let r = match cc >> 1 {
        0 => of,
        1 => cf,
        2 => zf,
        3 => cf || zf,
        4 => sf,
        5 => pf,
        6 => sf != of,
        _ => zf || sf != of,
    };
    r != (cc & 1 != 0)
}

/// Emits all 16 SETcc into bytes DATA..DATA+16.
fn all_setcc(a: &mut CodeAssembler, base: u32) -> Result<(), IcedError> {
    let m = |k: u32| byte_ptr(base + k);
    a.seto(m(0))?;
    a.setno(m(1))?;
    a.setb(m(2))?;
    a.setae(m(3))?;
    a.sete(m(4))?;
    a.setne(m(5))?;
    a.setbe(m(6))?;
    a.seta(m(7))?;
    a.sets(m(8))?;
    a.setns(m(9))?;
    a.setp(m(10))?;
    a.setnp(m(11))?;
    a.setl(m(12))?;
    a.setge(m(13))?;
    a.setle(m(14))?;
    a.setg(m(15))?;
    Ok(())
}

#[test]
fn all_setcc_match_the_reference_after_compares() {
    let cases: [(u32, u32); 6] =
        [(1, 2), (2, 1), (5, 5), (0x8000_0000, 1), (0x7FFF_FFFF, 0xFFFF_FFFF), (0, 0x8000_0000)];
    for mode in ALL_MODES {
        for (x, y) in cases {
            let m = run_ok(mode, |a| {
                a.mov(eax, x)?;
                a.cmp(eax, y)?;
                all_setcc(a, DATA as u32)?;
                Ok(())
            });
            let f = arith_flags(&m);
            for cc in 0..16u8 {
                let got = m.mem.read_u8(Gpa(DATA + u64::from(cc)));
                assert_eq!(got, cond(cc, f) as u8, "{mode:?} cmp {x:#x},{y:#x} cc {cc}");
            }
        }
    }
}

#[test]
fn setcc_from_flag_images() {
    // SAHF loads SF, ZF, AF, PF and CF.
    for img in [0x00u32, 0x01, 0x04, 0x40, 0x80, 0xC5] {
        let m = run_ok(GuestMode::Protected32, |a| {
            a.mov(ah, img)?;
            a.sahf()?;
            all_setcc(a, DATA as u32)?;
            Ok(())
        });
        let f = arith_flags(&m);
        assert_eq!(f & 0xD5, u64::from(img) & 0xD5);
        for cc in 0..16u8 {
            assert_eq!(
                m.mem.read_u8(Gpa(DATA + u64::from(cc))),
                cond(cc, f) as u8,
                "ah {img:#x} cc {cc}"
            );
        }
    }
}

#[test]
fn setcc_to_high_byte_register() {
    let m = run_ok(GuestMode::Real, |a| {
        a.mov(ax, 0xFFFFu32)?;
        a.xor(ecx, ecx)?; // ZF = 1
        a.setz(ah)?;
        a.setnz(al)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0] & 0xFFFF, 0x0100);
}

#[test]
fn cmov_taken_and_not_taken_in_every_mode() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 1u32)?;
            a.mov(ebx, 2u32)?;
            a.mov(ecx, 3u32)?;
            a.mov(dword_ptr(DATA as u32), 0x99u32)?;
            a.cmp(eax, ebx)?; // 1 < 2
            a.cmovl(ecx, ebx)?; // taken: ECX = 2
            a.cmovg(eax, dword_ptr(DATA as u32))?; // not taken
            a.cmovb(dx, word_ptr(DATA as u32))?; // taken: DX = 0x99
            Ok(())
        });
        assert_eq!(m.cpu.gpr[1] & 0xFFFF_FFFF, 2, "{mode:?}");
        assert_eq!(m.cpu.gpr[0] & 0xFFFF_FFFF, 1, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFFFF, 0x99, "{mode:?}");
    }
}

#[test]
fn cmov32_zero_extends_even_when_false_in_long_mode() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rax, u64::MAX)?;
        a.mov(rbx, u64::MAX)?;
        a.mov(rcx, u64::MAX)?;
        a.xor(edx, edx)?; // ZF = 1
        a.cmovnz(eax, edx)?; // false: RAX = 0xFFFF_FFFF
        a.cmovnz(bx, dx)?; // false, 16-bit: RBX unchanged
        a.cmovnz(rcx, rdx)?; // false, 64-bit: unchanged
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0xFFFF_FFFF);
    assert_eq!(m.cpu.gpr[3], u64::MAX);
    assert_eq!(m.cpu.gpr[1], u64::MAX);
}

#[test]
fn cmov_reads_its_memory_source_even_when_false() {
    let code = assemble(GuestMode::Long64, |a| {
        a.mov(rsi, 0x8000_0000_0000u64)?;
        a.xor(eax, eax)?;
        a.cmovnz(eax, dword_ptr(rsi))?;
        Ok(())
    });
    let mut m = machine_with(GuestMode::Long64, &code);
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((13, Some(0))), "{r}");
}
