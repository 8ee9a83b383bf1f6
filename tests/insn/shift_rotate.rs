//! SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR, SHLD, SHRD.

use super::common::*;

type Body = fn(&mut CodeAssembler) -> Result<(), IcedError>;

/// Runs each `(body, expected EAX/RAX under mask, expected flags)` case in `mode`; the
/// body leaves its result in RAX.
fn check(mode: GuestMode, cases: &[(Body, u64, u64, u64)]) {
    for (n, &(body, mask, want, flags)) in cases.iter().enumerate() {
        let m = run_ok(mode, body);
        assert_eq!(m.cpu.gpr[0] & mask, want, "{mode:?} case {n}: result");
        assert_eq!(arith_flags(&m), flags, "{mode:?} case {n}: flags");
    }
}

#[test]
fn shl_implicit_one_and_masked_counts_in_every_mode() {
    // The assembler picks the D0 /4 encoding for a count of 1.
    assert_eq!(assemble(GuestMode::Protected32, |a| a.shl(al, 1u32)), [0xD0, 0xE0, 0xF4]);
    for mode in ALL_MODES {
        check(
            mode,
            &[
                // D0 /4 (the implicit-1 form): 0xC1 << 1 = 0x82, CF=1, OF = 1 ^ 1 = 0.
                (
                    |a| {
                        a.mov(eax, 0xC1u32)?;
                        a.shl(al, 1u32)
                    },
                    0xFF,
                    0x82,
                    CF | SF | PF,
                ),
                // Count 33 masks to 1: CF=0, OF = MSB ^ CF = 1; low byte 0x02 is odd.
                (
                    |a| {
                        a.mov(eax, 0x4000_0001u32)?;
                        a.mov(cl, 33u32)?;
                        a.shl(eax, cl)
                    },
                    0xFFFF_FFFF,
                    0x8000_0002,
                    SF | OF,
                ),
                // SAL is SHL.
                (
                    |a| {
                        a.mov(eax, 0x81u32)?;
                        a.sal(ax, 4u32)
                    },
                    0xFFFF,
                    0x810,
                    0,
                ),
            ],
        );
    }
}

#[test]
fn count_zero_changes_neither_result_nor_flags() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 0xFFFF_FFFFu32)?;
            a.add(eax, 1u32)?; // CF ZF AF PF
            a.mov(ebx, 0x8000_1234u32)?;
            a.mov(ecx, 0x20u32)?; // masks to 0 for 32-bit and smaller operands
            a.shl(ebx, cl)?;
            a.sar(bx, cl)?;
            a.rol(bl, cl)?;
            a.rcr(ebx, cl)?;
            a.shld(ebx, eax, cl)?;
            a.shrd(bx, ax, 0u32)?;
            Ok(())
        });
        assert_eq!(m.cpu.gpr[3] & 0xFFFF_FFFF, 0x8000_1234, "{mode:?}");
        assert_eq!(arith_flags(&m), CF | ZF | AF | PF, "{mode:?}");
    }
}

#[test]
fn shifts_at_and_beyond_the_operand_width() {
    check(
        GuestMode::Protected32,
        &[
            // Count 9 on 8 bits: the last bit out is beyond the operand, CF=0, OF = 0 ^ 0.
            (
                |a| {
                    a.mov(eax, 0xFFu32)?;
                    a.mov(cl, 9u32)?;
                    a.shl(al, cl)
                },
                0xFF,
                0,
                ZF | PF,
            ),
            // Count 8: the last bit out is bit 0.
            (
                |a| {
                    a.mov(eax, 0xFFu32)?;
                    a.shl(al, 8u32)
                },
                0xFF,
                0,
                CF | OF | ZF | PF,
            ),
            // SHR count 8: CF = bit 7; OF = MSB of the original operand.
            (
                |a| {
                    a.mov(eax, 0x80u32)?;
                    a.shr(al, 8u32)
                },
                0xFF,
                0,
                CF | OF | ZF | PF,
            ),
            // SHR count 31 on 16 bits: CF=0.
            (
                |a| {
                    a.mov(eax, 0x8000u32)?;
                    a.shr(ax, 31u32)
                },
                0xFFFF,
                0,
                OF | ZF | PF,
            ),
            // SHR by 1: CF = bit 0, OF = old MSB.
            (
                |a| {
                    a.mov(eax, 0x8001u32)?;
                    a.shr(ax, 1u32)
                },
                0xFFFF,
                0x4000,
                CF | OF | PF,
            ),
            // SAR keeps the sign; OF=0.
            (
                |a| {
                    a.mov(eax, 0x81u32)?;
                    a.sar(al, 1u32)
                },
                0xFF,
                0xC0,
                CF | SF | PF,
            ),
            // SAR count 31 on 8 bits fills with the sign; CF = sign.
            (
                |a| {
                    a.mov(eax, 0x81u32)?;
                    a.sar(al, 31u32)
                },
                0xFF,
                0xFF,
                CF | SF | PF,
            ),
            (
                |a| {
                    a.mov(eax, 0x7FFF_FFFFu32)?;
                    a.sar(eax, 31u32)
                },
                0xFFFF_FFFF,
                0,
                CF | ZF | PF,
            ),
        ],
    );
}

#[test]
fn sixty_four_bit_counts_mask_to_six_bits() {
    check(
        GuestMode::Long64,
        &[
            // 65 & 63 = 1.
            (
                |a| {
                    a.mov(rax, 0x4000_0000_0000_0001u64)?;
                    a.mov(cl, 65u32)?;
                    a.shl(rax, cl)
                },
                u64::MAX,
                0x8000_0000_0000_0002,
                SF | OF,
            ),
            // A real 33-bit shift (a 32-bit operand would mask it to 1).
            (
                |a| {
                    a.mov(rax, 3u64)?;
                    a.shl(rax, 33u32)
                },
                u64::MAX,
                3 << 33,
                PF,
            ),
            (
                |a| {
                    a.mov(rax, 0x8000_0000_0000_0000u64)?;
                    a.sar(rax, 63u32)
                },
                u64::MAX,
                u64::MAX,
                SF | PF,
            ),
            (
                |a| {
                    a.mov(rax, 0x8000_0000_0000_0000u64)?;
                    a.shr(rax, 63u32)
                },
                u64::MAX,
                1,
                OF,
            ),
            // A 32-bit shift zero-extends into RAX (OF = old MSB, CF = bit 3).
            (
                |a| {
                    a.mov(rax, -1i64)?;
                    a.shr(eax, 4u32)
                },
                u64::MAX,
                0x0FFF_FFFF,
                CF | OF | PF,
            ),
        ],
    );
}

#[test]
fn rol_ror_touch_only_cf_and_of() {
    for mode in ALL_MODES {
        check(
            mode,
            &[
                // xor leaves ZF|PF; ROL 0x81 by 1 = 0x03, CF = LSB = 1, OF = MSB ^ CF = 1.
                (
                    |a| {
                        a.xor(eax, eax)?;
                        a.mov(al, 0x81u32)?;
                        a.rol(al, 1u32)
                    },
                    0xFF,
                    0x03,
                    ZF | PF | CF | OF,
                ),
                // ROR 0x81 by 1 = 0xC0, CF = MSB = 1, OF = MSB ^ MSB-1 = 0.
                (
                    |a| {
                        a.xor(eax, eax)?;
                        a.mov(al, 0x81u32)?;
                        a.ror(al, 1u32)
                    },
                    0xFF,
                    0xC0,
                    ZF | PF | CF,
                ),
                // ROL by 8 on 8 bits: unchanged value, but CF = LSB is still written.
                (
                    |a| {
                        a.xor(eax, eax)?;
                        a.mov(al, 0x81u32)?;
                        a.rol(al, 8u32)
                    },
                    0xFF,
                    0x81,
                    ZF | PF | CF,
                ),
                // ROL by 36 masks to 4.
                (
                    |a| {
                        a.mov(eax, 0x1234_5678u32)?;
                        a.cmp(eax, eax)?;
                        a.rol(eax, 36u32)
                    },
                    0xFFFF_FFFF,
                    0x2345_6781,
                    ZF | PF | CF | OF,
                ),
                (
                    |a| {
                        a.mov(eax, 0x1234_5678u32)?;
                        a.cmp(eax, eax)?;
                        a.ror(ax, 4u32)
                    },
                    0xFFFF,
                    0x8567,
                    ZF | PF | CF | OF,
                ),
            ],
        );
    }
    check(
        GuestMode::Long64,
        &[(
            |a| {
                a.mov(rax, 0xF000_0000_0000_0001u64)?;
                a.cmp(eax, eax)?;
                a.rol(rax, 4u32)
            },
            u64::MAX,
            0x1F,
            ZF | PF | CF | OF,
        )],
    );
}

#[test]
fn rcl_rcr_rotate_through_carry() {
    for mode in ALL_MODES {
        check(
            mode,
            &[
                // CF:AL = 1:0x80 rotated left by 1 = 0:... -> AL = 0x01, CF = 1, OF = 0 ^ 1.
                (
                    |a| {
                        a.xor(eax, eax)?;
                        a.mov(al, 0x80u32)?;
                        a.stc()?;
                        a.rcl(al, 1u32)
                    },
                    0xFF,
                    0x01,
                    ZF | PF | CF | OF,
                ),
                // Count 9 on 8 bits is a full turn (mod 9): nothing moves, CF stays.
                (
                    |a| {
                        a.xor(eax, eax)?;
                        a.mov(al, 0x80u32)?;
                        a.stc()?;
                        a.rcl(al, 9u32)
                    },
                    0xFF,
                    0x80,
                    ZF | PF | CF,
                ),
                // RCR: OF = MSB(original) ^ CF(original) = 0; CF = old bit 0.
                (
                    |a| {
                        a.xor(eax, eax)?;
                        a.mov(al, 0x01u32)?;
                        a.rcr(al, 1u32)
                    },
                    0xFF,
                    0x00,
                    ZF | PF | CF,
                ),
                // 16-bit: count 18 = 1 (mod 17); CF=1 goes into bit 15, OF = 0 ^ 1.
                (
                    |a| {
                        a.mov(eax, 0x0002u32)?;
                        a.stc()?;
                        a.rcr(ax, 18u32)
                    },
                    0xFFFF,
                    0x8001,
                    OF,
                ),
                // 32-bit: 1:0x8000_0000 rotated left by 2 = 0b11 with CF = old bit 30 = 0.
                (
                    |a| {
                        a.mov(eax, 0x8000_0000u32)?;
                        a.stc()?;
                        a.rcl(eax, 2u32)
                    },
                    0xFFFF_FFFF,
                    3,
                    0,
                ),
            ],
        );
    }
    check(
        GuestMode::Long64,
        &[
            // 64 & 63 = 0: no rotation and no flag change.
            (
                |a| {
                    a.mov(rax, 5u64)?;
                    a.stc()?;
                    a.rcl(rax, 64u32)
                },
                u64::MAX,
                5,
                CF,
            ),
            // 1:rax rotated right by 63 = rotate left by 2 in 65 bits.
            (
                |a| {
                    a.mov(rax, 0x8000_0000_0000_0000u64)?;
                    a.stc()?;
                    a.rcr(rax, 63u32)
                },
                u64::MAX,
                3,
                0,
            ),
        ],
    );
}

#[test]
fn shld_shrd() {
    for mode in ALL_MODES {
        check(
            mode,
            &[
                (
                    |a| {
                        a.mov(eax, 0x1234_5678u32)?;
                        a.mov(ebx, 0x9ABC_DEF0u32)?;
                        a.shld(eax, ebx, 8u32)
                    },
                    0xFFFF_FFFF,
                    0x3456_789A,
                    PF,
                ),
                (
                    |a| {
                        a.mov(eax, 0x1234_5678u32)?;
                        a.mov(ebx, 0x9ABC_DEF0u32)?;
                        a.mov(cl, 4u32)?;
                        a.shrd(eax, ebx, cl)
                    },
                    0xFFFF_FFFF,
                    0x0123_4567,
                    CF,
                ),
                // Sign change on a 1-bit shift sets OF.
                (
                    |a| {
                        a.mov(eax, 0x4000u32)?;
                        a.mov(ebx, 0xFFFFu32)?;
                        a.shld(ax, bx, 1u32)
                    },
                    0xFFFF,
                    0x8001,
                    SF | OF,
                ),
                // 16-bit counts above 16 (undefined result): hvsim shifts dest:src:dest.
                (
                    |a| {
                        a.mov(eax, 0x1234u32)?;
                        a.mov(ebx, 0x5678u32)?;
                        a.shld(ax, bx, 20u32)
                    },
                    0xFFFF,
                    0x6781,
                    CF | PF,
                ),
                (
                    |a| {
                        a.mov(eax, 0x1234u32)?;
                        a.mov(ebx, 0x5678u32)?;
                        a.shrd(ax, bx, 20u32)
                    },
                    0xFFFF,
                    0x4567,
                    CF,
                ),
            ],
        );
    }
    check(
        GuestMode::Long64,
        &[
            (
                |a| {
                    a.mov(rax, 1u64)?;
                    a.mov(rbx, 0x8000_0000_0000_0000u64)?;
                    a.shld(rax, rbx, 63u32)
                },
                u64::MAX,
                0xC000_0000_0000_0000,
                SF | OF | PF,
            ),
            (
                |a| {
                    a.mov(rax, 0x8000_0000_0000_0001u64)?;
                    a.mov(rbx, 1u64)?;
                    a.mov(cl, 127u32)?;
                    a.shrd(rax, rbx, cl)
                },
                u64::MAX,
                3,
                OF | PF,
            ),
        ],
    );
}

#[test]
fn memory_destinations() {
    let m = run_ok(GuestMode::Protected32, |a| {
        a.mov(ebx, DATA as u32)?;
        a.mov(dword_ptr(ebx), 0x8000_0001u32)?;
        a.shl(dword_ptr(ebx), 1u32)?; // 2, CF=1, OF = 0 ^ 1
        a.mov(eax, dword_ptr(ebx))?;
        a.mov(word_ptr(ebx + 4), 0x8000u32)?;
        a.mov(cl, 3u32)?;
        a.sar(word_ptr(ebx + 4), cl)?; // 0xF000
        a.mov(edx, dword_ptr(ebx + 4))?;
        a.mov(dword_ptr(ebx + 8), 0x1234_5678u32)?;
        a.mov(esi, 0xABCD_0000u32)?;
        a.shrd(dword_ptr(ebx + 8), esi, 16u32)?; // 0x0000_1234
        a.rol(byte_ptr(ebx + 8), 4u32)?; // 0x34 -> 0x43
        a.mov(edi, dword_ptr(ebx + 8))?;
        a.mov(dword_ptr(ebx + 12), 0x8765_4321u32)?;
        a.xor(ecx, ecx)?;
        a.shl(dword_ptr(ebx + 12), cl)?; // count 0: unchanged
        a.rcr(word_ptr(ebx + 12), cl)?;
        a.shld(dword_ptr(ebx + 12), esi, cl)?;
        a.mov(ecx, dword_ptr(ebx + 12))?;
        a.rol(byte_ptr(ebx + 8), 4u32)?; // 0x43 -> 0x34
        a.rol(byte_ptr(ebx + 8), 4u32)?; // 0x34 -> 0x43
        Ok(())
    });
    assert_eq!(m.cpu.gpr[1], 0x8765_4321);
    assert_eq!(m.cpu.gpr[0], 2);
    assert_eq!(m.cpu.gpr[2], 0xF000);
    assert_eq!(m.cpu.gpr[7], 0x1243);
    // ROL 0x34 by 4 = 0x43: CF = 1, OF = 0 ^ 1; ZF|PF from the XOR survive the count-0
    // shifts and the rotates.
    assert_eq!(arith_flags(&m), CF | OF | ZF | PF);
}
