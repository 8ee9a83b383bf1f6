//! MUL, IMUL (one-, two- and three-operand forms), DIV, IDIV.

use super::common::*;

type Body = fn(&mut CodeAssembler) -> Result<(), IcedError>;

/// Runs `setup` then `op`, which must raise #DE: checks the vector, that RIP is at `op`,
/// and returns the machine for state checks.
fn expect_de(mode: GuestMode, setup: Body, op: Body) -> Machine {
    let off = assemble(mode, setup).len() as u64 - 1; // minus the HLT
    let code = assemble(mode, |a| {
        setup(a)?;
        op(a)
    });
    let mut m = machine_with(mode, &code);
    let r = m.run(Some(1000));
    assert_eq!(exception(&r), Some((0, None)), "{mode:?}: {r}");
    assert_eq!(r.rip, CODE + off, "{mode:?}: RIP at the faulting instruction");
    m
}

#[test]
fn mul_8bit_in_every_mode() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 0x80u32)?;
            a.mov(bl, 2u32)?;
            a.mul(bl)?; // AX = 0x100: upper half non-zero
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, 0x100, "{mode:?}");
        // CF=OF=1; SF/ZF/PF from the low half (0x00); AF=0.
        assert_eq!(arith_flags(&m), CF | OF | ZF | PF, "{mode:?}");
        let m = run_ok(mode, |a| {
            a.mov(eax, 0xFF03u32)?;
            a.mov(bl, 4u32)?;
            a.mul(bl)?; // AX = 12, AH overwritten
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, 12, "{mode:?}");
        assert_eq!(arith_flags(&m), PF, "{mode:?}");
    }
}

#[test]
fn mul_wider_sizes() {
    let m = run_ok(GuestMode::Protected32, |a| {
        a.mov(eax, 0x1234u32)?;
        a.mov(ebx, 0x100u32)?;
        a.mul(bx)?; // DX:AX = 0x12_3400
        a.mov(esi, eax)?;
        a.mov(edi, edx)?;
        a.mov(eax, 0xFFFF_FFFFu32)?;
        a.mov(ebx, 2u32)?;
        a.mul(ebx)?; // EDX:EAX = 1:FFFF_FFFE
        Ok(())
    });
    assert_eq!(m.cpu.gpr[6] & 0xFFFF, 0x3400);
    assert_eq!(m.cpu.gpr[7] & 0xFFFF, 0x12);
    assert_eq!(m.cpu.gpr[0], 0xFFFF_FFFE);
    assert_eq!(m.cpu.gpr[2], 1);
    assert_eq!(arith_flags(&m), CF | OF | SF);

    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rax, 0x8000_0000_0000_0000u64)?;
        a.mov(rbx, DATA)?;
        a.mov(qword_ptr(rbx), 4i32)?;
        a.mul(qword_ptr(rbx))?; // RDX:RAX = 2:0
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0);
    assert_eq!(m.cpu.gpr[2], 2);
    assert_eq!(arith_flags(&m), CF | OF | ZF | PF);
}

#[test]
fn imul_one_operand() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 0xFEu32)?; // -2
            a.mov(bl, 3u32)?;
            a.imul(bl)?; // AX = -6: fits in AL
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, 0xFFFA, "{mode:?}");
        assert_eq!(arith_flags(&m), SF | PF, "{mode:?}");
        let m = run_ok(mode, |a| {
            a.mov(eax, 0x40u32)?;
            a.mov(bl, 2u32)?;
            a.imul(bl)?; // 128 does not fit in a signed byte
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, 0x0080, "{mode:?}");
        assert_eq!(arith_flags(&m), CF | OF | SF, "{mode:?}");
    }
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rax, -1i64)?;
        a.mov(rbx, -1i64)?;
        a.imul(rbx)?; // 1
        a.mov(rsi, rdx)?;
        a.mov(rax, 0x4000_0000_0000_0000u64)?;
        a.mov(rcx, -4i64)?;
        a.imul(rcx)?; // -2^64: RDX = -1, RAX = 0, overflow
        Ok(())
    });
    assert_eq!(m.cpu.gpr[6], 0);
    assert_eq!(m.cpu.gpr[0], 0);
    assert_eq!(m.cpu.gpr[2], u64::MAX);
    assert_eq!(arith_flags(&m), CF | OF | ZF | PF);
}

#[test]
fn imul_two_and_three_operands() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 0x10000u32)?;
            a.mov(ebx, 0x10000u32)?;
            a.imul_2(eax, ebx)?; // 2^32 truncates to 0: overflow
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF_FFFF, 0, "{mode:?}");
        assert_eq!(arith_flags(&m), CF | OF | ZF | PF, "{mode:?}");
        let m = run_ok(mode, |a| {
            a.mov(ebx, 5u32)?;
            a.imul_3(ecx, ebx, -3i32)?; // -15, sign-extended imm8
            a.mov(edx, 2u32)?;
            a.imul_3(dx, dx, 0x4000i32)?; // 0x8000 overflows 16 bits
            a.mov(esi, 0xFFFFu32)?;
            a.imul_3(si, si, -1i32)?; // -1 * -1 = 1
            Ok(())
        });
        assert_eq!(m.cpu.gpr[1] & 0xFFFF_FFFF, 0xFFFF_FFF1, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFFFF, 0x8000, "{mode:?}");
        assert_eq!(m.cpu.gpr[6] & 0xFFFF, 1, "{mode:?}");
        assert_eq!(arith_flags(&m), 0, "{mode:?}");
    }
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rbx, DATA)?;
        a.mov(qword_ptr(rbx), -7i32)?;
        a.mov(rax, 0x1000_0000_0000u64)?;
        a.imul_2(rax, qword_ptr(rbx))?;
        a.imul_3(rcx, qword_ptr(rbx), 0x1000_0000i32)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], (-7i64 * 0x1000_0000_0000) as u64);
    assert_eq!(m.cpu.gpr[1], (-7i64 * 0x1000_0000) as u64);
    assert_eq!(arith_flags(&m), SF | PF);
}

#[test]
fn div_leaves_flags_and_splits_quotient_remainder() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 1000u32)?;
            a.mov(bl, 7u32)?;
            a.xor(ecx, ecx)?; // ZF|PF
            a.div(bl)?; // AL = 142, AH = 6
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, (6 << 8) | 142, "{mode:?}");
        assert_eq!(arith_flags(&m), ZF | PF, "{mode:?}");
        let m = run_ok(mode, |a| {
            a.mov(edx, 1u32)?;
            a.xor(eax, eax)?;
            a.mov(ebx, 3u32)?;
            a.stc()?;
            a.div(ebx)?; // 2^32 / 3
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF_FFFF, 0x5555_5555, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFFFF_FFFF, 1, "{mode:?}");
        assert_eq!(arith_flags(&m), CF | ZF | PF, "{mode:?}");
    }
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rdx, 3u64)?;
        a.xor(eax, eax)?;
        a.mov(rbx, DATA)?;
        a.mov(qword_ptr(rbx), 4i32)?;
        a.div(qword_ptr(rbx))?; // (3 << 64) / 4
        a.mov(rsi, rax)?;
        a.mov(rdi, rdx)?;
        a.mov(rax, -1i64)?;
        a.mov(rdx, -1i64)?;
        a.mov(ecx, 0x10u32)?;
        a.xor(edx, edx)?; // EDX:EAX = 0:FFFF_FFFF (32-bit divide)
        a.div(ecx)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[6], 0xC000_0000_0000_0000);
    assert_eq!(m.cpu.gpr[7], 0);
    // 32-bit results zero-extend.
    assert_eq!(m.cpu.gpr[0], 0x0FFF_FFFF);
    assert_eq!(m.cpu.gpr[2], 0xF);
}

#[test]
fn idiv_truncates_toward_zero() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 0xFFF9u32)?; // AX = -7
            a.mov(bl, 2u32)?;
            a.idiv(bl)?; // q = -3, r = -1
            a.mov(esi, eax)?;
            a.mov(eax, 0xFF00u32)?; // AX = -256
            a.idiv(bl)?; // q = -128: just fits
            Ok(())
        });
        assert_eq!(m.cpu.gpr[6] & 0xFFFF, 0xFFFD, "{mode:?}");
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, 0x0080, "{mode:?}");
        let m = run_ok(mode, |a| {
            a.mov(eax, -100i32)?;
            a.mov(edx, -1i32)?;
            a.mov(ecx, 7u32)?;
            a.idiv(ecx)?;
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF_FFFF, -14i32 as u32 as u64, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFFFF_FFFF, -2i32 as u32 as u64, "{mode:?}");
    }
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rdx, -1i64)?;
        a.mov(rax, 0x8000_0000_0000_0000u64)?; // -2^63
        a.mov(rcx, 2u64)?;
        a.idiv(rcx)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0xC000_0000_0000_0000);
    assert_eq!(m.cpu.gpr[2], 0);
}

#[test]
fn divide_by_zero_is_de_in_every_mode() {
    for mode in ALL_MODES {
        let m = expect_de(
            mode,
            |a| {
                a.mov(eax, 0x1234u32)?;
                a.xor(ebx, ebx)?;
                Ok(())
            },
            |a| a.div(bl),
        );
        // Nothing changed.
        assert_eq!(m.cpu.gpr[0] & 0xFFFF, 0x1234, "{mode:?}");
        expect_de(mode, |a| a.xor(ecx, ecx), |a| a.idiv(ecx));
    }
    expect_de(GuestMode::Long64, |a| a.xor(ecx, ecx), |a| a.div(rcx));
}

#[test]
fn quotient_overflow_is_de() {
    for mode in ALL_MODES {
        // 0x100 / 1 does not fit in AL.
        expect_de(
            mode,
            |a| {
                a.mov(eax, 0x100u32)?;
                a.mov(bl, 1u32)?;
                Ok(())
            },
            |a| a.div(bl),
        );
        // INT_MIN / -1.
        let m = expect_de(
            mode,
            |a| {
                a.mov(eax, 0x8000_0000u32)?;
                a.mov(edx, -1i32)?;
                a.mov(ecx, -1i32)?;
                Ok(())
            },
            |a| a.idiv(ecx),
        );
        assert_eq!(m.cpu.gpr[0] & 0xFFFF_FFFF, 0x8000_0000, "{mode:?}");
        // -128 / -1 = 128 does not fit a signed byte.
        expect_de(
            mode,
            |a| {
                a.mov(eax, 0xFF80u32)?;
                a.mov(bl, 0xFFu32)?;
                Ok(())
            },
            |a| a.idiv(bl),
        );
    }
    // 64-bit: INT64_MIN / -1, and the most negative 128-bit dividend / -1.
    expect_de(
        GuestMode::Long64,
        |a| {
            a.mov(rax, 0x8000_0000_0000_0000u64)?;
            a.mov(rdx, -1i64)?;
            a.mov(rcx, -1i64)?;
            Ok(())
        },
        |a| a.idiv(rcx),
    );
    expect_de(
        GuestMode::Long64,
        |a| {
            a.mov(rdx, 0x8000_0000_0000_0000u64)?;
            a.xor(eax, eax)?;
            a.mov(rcx, -1i64)?;
            Ok(())
        },
        |a| a.idiv(rcx),
    );
    // Unsigned 64-bit overflow: RDX >= divisor.
    expect_de(
        GuestMode::Long64,
        |a| {
            a.mov(rdx, 5u64)?;
            a.mov(rcx, 5u64)?;
            Ok(())
        },
        |a| a.div(rcx),
    );
}
