//! DAA, DAS, AAA, AAS, AAM, AAD (not available in 64-bit mode).

use super::common::*;

type Body = fn(&mut CodeAssembler) -> Result<(), IcedError>;

/// The modes where the BCD instructions exist.
const LEGACY_MODES: [GuestMode; 3] =
    [GuestMode::Real, GuestMode::Protected16, GuestMode::Protected32];

/// Runs each `(body, expected AX, expected flags)` case in every legacy mode.
fn check(cases: &[(Body, u64, u64)]) {
    for mode in LEGACY_MODES {
        for (n, &(body, want, flags)) in cases.iter().enumerate() {
            let m = run_ok(mode, body);
            assert_eq!(m.cpu.gpr[0] & 0xFFFF, want, "{mode:?} case {n}: AX");
            assert_eq!(arith_flags(&m), flags, "{mode:?} case {n}: flags");
        }
    }
}

#[test]
fn daa_after_packed_add() {
    check(&[
        // 79 + 35 = 114: both nibbles adjust, CF=1.
        (
            |a| {
                a.mov(eax, 0x79u32)?;
                a.add(al, 0x35u32)?;
                a.daa()
            },
            0x14,
            CF | AF | PF,
        ),
        // 38 + 29 = 67: AF from the add forces the low adjust.
        (
            |a| {
                a.mov(eax, 0x38u32)?;
                a.add(al, 0x29u32)?;
                a.daa()
            },
            0x67,
            AF,
        ),
        // 99 + 1 = 100 -> 00 with CF.
        (
            |a| {
                a.mov(eax, 0x99u32)?;
                a.add(al, 1u32)?;
                a.daa()
            },
            0x00,
            CF | AF | ZF | PF,
        ),
        // 12 + 34: no adjust; OF cleared.
        (
            |a| {
                a.mov(eax, 0x12u32)?;
                a.add(al, 0x34u32)?;
                a.daa()
            },
            0x46,
            0,
        ),
        // Incoming CF alone forces the high adjust: 0x50 + 0x60 with CF.
        (
            |a| {
                a.mov(eax, 0x50u32)?;
                a.add(al, 0xB0u32)?;
                a.daa()
            },
            0x60,
            CF | PF,
        ),
    ]);
}

#[test]
fn das_after_packed_sub() {
    check(&[
        // 35 - 47 = -12 -> 88 with borrow.
        (
            |a| {
                a.mov(eax, 0x35u32)?;
                a.sub(al, 0x47u32)?;
                a.das()
            },
            0x88,
            CF | AF | SF | PF,
        ),
        // 47 - 35 = 12: no adjust.
        (
            |a| {
                a.mov(eax, 0x47u32)?;
                a.sub(al, 0x35u32)?;
                a.das()
            },
            0x12,
            PF,
        ),
        // 40 - 01 = 39: low adjust only.
        (
            |a| {
                a.mov(eax, 0x40u32)?;
                a.sub(al, 1u32)?;
                a.das()
            },
            0x39,
            AF | PF,
        ),
    ]);
}

#[test]
fn aaa_aas_unpacked() {
    check(&[
        // 9 + 8 = 17: AX = 0x0107.
        (
            |a| {
                a.mov(eax, 0x09u32)?;
                a.add(al, 8u32)?;
                a.aaa()
            },
            0x0107,
            AF | CF,
        ),
        // No adjust: AL masked to its low nibble, SF/ZF/PF from AL, OF=0.
        (
            |a| {
                a.mov(eax, 0x0233u32)?;
                a.xor(ecx, ecx)?;
                a.aaa()
            },
            0x0203,
            PF,
        ),
        // AX + 106H carries from AL into AH (current SDM pseudocode): 0x00FA -> 0x0200.
        (
            |a| {
                a.mov(eax, 0x00FAu32)?;
                a.xor(ecx, ecx)?;
                a.aaa()
            },
            0x0200,
            AF | CF | ZF | PF,
        ),
        // 02 - 08 with AH = 1: AX = 0x0004, borrow.
        (
            |a| {
                a.mov(eax, 0x0102u32)?;
                a.sub(al, 8u32)?;
                a.aas()
            },
            0x0004,
            AF | CF,
        ),
        (
            |a| {
                a.mov(eax, 0x0108u32)?;
                a.sub(al, 3u32)?;
                a.aas()
            },
            0x0105,
            PF,
        ),
    ]);
}

#[test]
fn aam_aad_with_bases() {
    check(&[
        // 79 -> AH=7, AL=9.
        (
            |a| {
                a.mov(eax, 0x4Fu32)?;
                a.stc()?;
                a.aam(10u32)
            },
            0x0709,
            PF,
        ),
        (
            |a| {
                a.mov(eax, 0x4Fu32)?;
                a.aam(16u32)
            },
            0x040F,
            PF,
        ),
        (
            |a| {
                a.mov(eax, 0x80u32)?;
                a.aam(1u32)
            },
            0x8000,
            ZF | PF,
        ),
        // AAD: AL = AL + AH * base, AH = 0.
        (
            |a| {
                a.mov(eax, 0x0709u32)?;
                a.stc()?;
                a.aad(10u32)
            },
            0x004F,
            0,
        ),
        (
            |a| {
                a.mov(eax, 0x0405u32)?;
                a.aad(16u32)
            },
            0x0045,
            0,
        ),
        // Wraps in 8 bits: 0xFF + 0xFF * 10 = 0xAF5 -> 0xF5.
        (
            |a| {
                a.mov(eax, 0xFFFFu32)?;
                a.aad(10u32)
            },
            0x00F5,
            SF | PF,
        ),
    ]);
}

#[test]
fn aam_zero_is_de() {
    for mode in LEGACY_MODES {
        let setup: Body = |a| a.mov(eax, 0x1234u32);
        let off = assemble(mode, setup).len() as u64 - 1;
        let code = assemble(mode, |a| {
            setup(a)?;
            a.aam(0u32)
        });
        let mut m = machine_with(mode, &code);
        let r = m.run(Some(100));
        assert_eq!(exception(&r), Some((0, None)), "{mode:?}: {r}");
        assert_eq!(r.rip, CODE + off, "{mode:?}");
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, 0x1234, "{mode:?}");
    }
}

#[test]
fn bcd_opcodes_are_ud_in_64bit_mode() {
    for op in [0x27u8, 0x2F, 0x37, 0x3F] {
        let mut m = machine_with(GuestMode::Long64, &[op, 0xF4]);
        let r = m.run(Some(100));
        assert_eq!(exception(&r), Some((6, None)), "{op:#x}: {r}");
        assert_eq!(r.rip, CODE);
    }
    let mut m = machine_with(GuestMode::Long64, &[0xD4, 0x0A, 0xF4]); // AAM
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((6, None)), "{r}");
}
