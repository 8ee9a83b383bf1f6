//! BT, BTS, BTR, BTC, BSF, BSR, LZCNT, TZCNT, POPCNT.

use super::common::*;

#[test]
fn bt_immediate_offsets_wrap_at_the_operand_width() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.xor(esi, esi)?; // ZF|PF; ESI counts set bits found
            a.mov(eax, 0x10u32)?;
            a.bt(eax, 4u32)?;
            a.adc(esi, 0u32)?;
            a.bt(eax, 36u32)?; // 36 mod 32 = 4
            a.adc(esi, 0u32)?;
            a.bt(ax, 20u32)?; // 20 mod 16 = 4
            a.adc(esi, 0u32)?;
            a.bt(eax, 3u32)?;
            a.adc(esi, 0u32)?;
            a.cmp(esi, esi)?; // ZF|PF, CF=0
            a.bt(eax, 4u32)?; // CF=1, others kept
            Ok(())
        });
        assert_eq!(m.cpu.gpr[6] & 0xFFFF, 3, "{mode:?}");
        assert_eq!(arith_flags(&m), CF | ZF | PF, "{mode:?}");
    }
}

#[test]
fn bts_btr_btc_on_registers() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.xor(eax, eax)?;
            a.xor(edi, edi)?;
            a.bts(eax, 31u32)?; // CF=0
            a.adc(edi, 0u32)?;
            a.btc(eax, 31u32)?; // CF=1 -> clears it
            a.adc(edi, 0u32)?;
            a.mov(ecx, 33u32)?;
            a.bts(eax, ecx)?; // register offset on a register: 33 mod 32 = 1
            a.mov(ebx, 0xFFFFu32)?;
            a.mov(edx, 0x1Fu32)?;
            a.btr(bx, dx)?; // 31 mod 16 = 15
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFFFF_FFFF, 2, "{mode:?}");
        assert_eq!(m.cpu.gpr[7] & 0xFFFF, 1, "{mode:?}");
        assert_eq!(m.cpu.gpr[3] & 0xFFFF, 0x7FFF, "{mode:?}");
        assert_eq!(arith_flags(&m) & CF, CF, "{mode:?}");
    }
    let m = run_ok(GuestMode::Long64, |a| {
        a.xor(eax, eax)?;
        a.bts(rax, 63u32)?;
        a.mov(rcx, 65u64)?;
        a.btc(rax, rcx)?; // 65 mod 64 = 1
        a.bt(rax, 63u32)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0x8000_0000_0000_0002);
    // CF from BT; ZF|PF from the XOR are kept.
    assert_eq!(arith_flags(&m), CF | ZF | PF);
}

#[test]
fn bt_memory_with_immediate_offset_stays_in_the_operand() {
    let m = run_ok(GuestMode::Protected32, |a| {
        a.mov(ebx, DATA as u32)?;
        a.mov(dword_ptr(ebx), 0x2u32)?;
        a.mov(dword_ptr(ebx + 4), 0xFFFF_FFFFu32)?;
        a.xor(esi, esi)?;
        a.bt(dword_ptr(ebx), 33u32)?; // 33 mod 32 = 1: bit 1 of [ebx]
        a.adc(esi, 0u32)?;
        a.bts(word_ptr(ebx), 16u32)?; // 16 mod 16 = 0
        a.btr(dword_ptr(ebx), 1u32)?;
        a.mov(eax, dword_ptr(ebx))?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[6], 1);
    assert_eq!(m.cpu.gpr[0], 1);
    assert_eq!(arith_flags(&m) & CF, CF);
}

#[test]
fn bt_memory_with_register_offset_addresses_a_bit_string() {
    let m = run_ok(GuestMode::Protected32, |a| {
        a.mov(ebx, DATA as u32 + 0x100)?;
        for d in [-16i32, -12, -8, -4, 0, 4, 8, 12, 16] {
            a.mov(dword_ptr(ebx + d), 0u32)?;
        }
        a.mov(dword_ptr(ebx + 8), 4u32)?; // bit 66 of the string at EBX
        a.xor(esi, esi)?;
        a.mov(ecx, 66u32)?;
        a.bt(dword_ptr(ebx), ecx)?; // EBX + 8, bit 2
        a.adc(esi, 0u32)?;
        a.mov(ecx, -1i32)?;
        a.bts(dword_ptr(ebx), ecx)?; // EBX - 4, bit 31
        a.adc(esi, 0u32)?;
        a.mov(ecx, -14i32)?;
        a.btc(word_ptr(ebx), cx)?; // 16-bit offset -14: EBX - 2, bit 2
        a.mov(ecx, 66u32)?;
        a.btr(dword_ptr(ebx), ecx)?; // clears bit 66 again, CF=1
        a.mov(eax, dword_ptr(ebx - 4))?;
        a.mov(edx, dword_ptr(ebx + 8))?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[6], 1);
    // EBX-4 bit 31 from BTS, EBX-2 bit 2 (= bit 18 of the dword at EBX-4) from BTC.
    assert_eq!(m.cpu.gpr[0], 0x8004_0000);
    assert_eq!(m.cpu.gpr[2], 0);
    assert_eq!(arith_flags(&m) & CF, CF);

    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rbx, DATA + 0x100)?;
        a.mov(qword_ptr(rbx - 16), 0i32)?;
        a.mov(qword_ptr(rbx - 8), 0i32)?;
        a.mov(qword_ptr(rbx + 16), 0i32)?;
        a.mov(rcx, 130u64)?;
        a.bts(qword_ptr(rbx), rcx)?; // RBX + 16, bit 2
        a.mov(rcx, -65i64)?;
        a.bts(qword_ptr(rbx), rcx)?; // RBX - 16, bit 63
        a.mov(ecx, 0xFFFF_FFFFu32)?;
        a.bts(dword_ptr(rbx), ecx)?; // 32-bit offset -1: RBX - 4, bit 31
        a.mov(rax, qword_ptr(rbx + 16))?;
        a.mov(rdx, qword_ptr(rbx - 16))?;
        a.mov(rsi, qword_ptr(rbx - 8))?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 4);
    assert_eq!(m.cpu.gpr[2], 0x8000_0000_0000_0000);
    assert_eq!(m.cpu.gpr[6], 0x8000_0000_0000_0000);

    // Real mode, 16-bit offsets.
    let m = run_ok(GuestMode::Real, |a| {
        a.mov(bx, DATA as u32)?;
        a.mov(word_ptr(bx + 2), 0u32)?;
        a.mov(cx, 18u32)?;
        a.bts(word_ptr(bx), cx)?; // BX + 2, bit 2
        a.mov(ax, word_ptr(bx + 2))?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0] & 0xFFFF, 4);
}

#[test]
fn bsf_bsr() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 0x00F0_0100u32)?;
            a.bsf(ecx, eax)?;
            a.bsr(edx, eax)?;
            a.mov(esi, 0x8000u32)?;
            a.bsr(di, si)?;
            Ok(())
        });
        assert_eq!(m.cpu.gpr[1] & 0xFFFF_FFFF, 8, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFFFF_FFFF, 23, "{mode:?}");
        assert_eq!(m.cpu.gpr[7] & 0xFFFF, 15, "{mode:?}");
        assert_eq!(arith_flags(&m) & ZF, 0, "{mode:?}");
    }
    // A zero source sets ZF and leaves the destination (all of it) unchanged.
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rbx, -1i64)?;
        a.mov(rcx, 0x1234u64)?;
        a.mov(rdx, DATA)?;
        a.mov(qword_ptr(rdx), 0i32)?;
        a.stc()?;
        a.bsf(ebx, dword_ptr(rdx))?;
        a.bsr(rcx, qword_ptr(rdx))?;
        a.mov(rax, 0x8000_0000_0000_0000u64)?;
        a.bsr(rsi, rax)?;
        a.bsf(rdi, rax)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[3], u64::MAX);
    assert_eq!(m.cpu.gpr[1], 0x1234);
    assert_eq!(m.cpu.gpr[6], 63);
    assert_eq!(m.cpu.gpr[7], 63);
    // ZF cleared by the last BSF; the undefined flags keep their values (CF from STC).
    assert_eq!(arith_flags(&m), CF);
}

/// Runs `body` in `mode` on the default model with `features` switched on.
fn run_with(
    mode: GuestMode,
    features: &[hvsim::cpuid::Feature],
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Machine {
    let code = assemble(mode, body);
    let mut m = machine_with(mode, &code);
    for &f in features {
        m.cpuid.set_feature(f, true);
    }
    let r = m.run(Some(1000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{mode:?}: {r}");
    m
}

/// SDM Vol. 2A "LZCNT", Vol. 2B "TZCNT" on a model with LZCNT (CPUID.80000001H:ECX bit 5)
/// and BMI1 (CPUID.(EAX=7,ECX=0):EBX bit 3).
#[test]
fn lzcnt_tzcnt() {
    use hvsim::cpuid::Feature::{Abm, Bmi1};
    let both = [Abm, Bmi1];
    for mode in ALL_MODES {
        let m = run_with(mode, &both, |a| {
            a.mov(eax, 0x0001_0000u32)?;
            a.lzcnt(ecx, eax)?;
            a.tzcnt(edx, eax)?; // CF=0, ZF=0
            Ok(())
        });
        assert_eq!(m.cpu.gpr[1] & 0xFFFF_FFFF, 15, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFFFF_FFFF, 16, "{mode:?}");
        assert_eq!(arith_flags(&m) & (CF | ZF), 0, "{mode:?}");
        let m = run_with(mode, &both, |a| {
            a.xor(eax, eax)?;
            a.lzcnt(cx, ax)?; // 16, CF=1
            Ok(())
        });
        assert_eq!(m.cpu.gpr[1] & 0xFFFF, 16, "{mode:?}");
        assert_eq!(arith_flags(&m) & (CF | ZF), CF, "{mode:?}");
        let m = run_with(mode, &both, |a| {
            a.mov(eax, 1u32)?;
            a.tzcnt(ecx, eax)?; // 0: ZF=1, CF=0
            Ok(())
        });
        assert_eq!(m.cpu.gpr[1] & 0xFFFF_FFFF, 0, "{mode:?}");
        assert_eq!(arith_flags(&m) & (CF | ZF), ZF, "{mode:?}");
    }
    let m = run_with(GuestMode::Long64, &both, |a| {
        a.mov(rax, 1u64)?;
        a.lzcnt(rcx, rax)?;
        a.xor(eax, eax)?;
        a.tzcnt(rdx, rax)?; // 64, CF=1
        a.mov(rsi, -1i64)?;
        a.tzcnt(esi, eax)?; // 32, zero-extends
        Ok(())
    });
    assert_eq!(m.cpu.gpr[1], 63);
    assert_eq!(m.cpu.gpr[2], 64);
    assert_eq!(m.cpu.gpr[6], 32);
    // CF from the zero source; PF from the XOR (undefined flags kept), ZF cleared.
    assert_eq!(arith_flags(&m), CF | PF);
}

/// SDM Vol. 2B "TZCNT" and Vol. 2A "LZCNT": "On processors that do not support TZCNT
/// [LZCNT], the instruction byte encoding is executed as BSF [BSR]": the F3 prefix is
/// ignored. The default models have no BMI1, so TZCNT is BSF there; LZCNT is BSR once the
/// model's LZCNT bit is off.
#[test]
fn tzcnt_and_lzcnt_without_the_feature_are_bsf_and_bsr() {
    use hvsim::cpuid::Feature::{Abm, Bmi1};
    let m = run_with(GuestMode::Long64, &[], |a| {
        a.mov(eax, 0x0001_0000u32)?;
        a.tzcnt(ecx, eax)?; // BSF: 16, ZF=0
        a.mov(edx, 0x1234u32)?;
        a.xor(eax, eax)?;
        a.tzcnt(edx, eax)?; // BSF of 0: ZF=1, EDX unchanged (not 32)
        Ok(())
    });
    assert!(!m.cpuid.has(Bmi1));
    assert_eq!(m.cpu.gpr[1], 16);
    assert_eq!(m.cpu.gpr[2], 0x1234);
    assert_eq!(arith_flags(&m) & ZF, ZF);
    let code = assemble(GuestMode::Long64, |a| {
        a.mov(eax, 0x0001_0000u32)?;
        a.lzcnt(ecx, eax) // BSR: 16 (LZCNT would give 15)
    });
    let mut m = machine_with(GuestMode::Long64, &code);
    m.cpuid.set_feature(Abm, false);
    let r = m.run(Some(100));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(m.cpu.gpr[1], 16);
}

#[test]
fn popcnt_sets_zf_and_clears_the_rest() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(eax, 0x8000_F0F0u32)?;
            a.stc()?;
            a.popcnt(ecx, eax)?;
            a.popcnt(dx, ax)?;
            Ok(())
        });
        assert_eq!(m.cpu.gpr[1] & 0xFFFF_FFFF, 9, "{mode:?}");
        assert_eq!(m.cpu.gpr[2] & 0xFFFF, 8, "{mode:?}");
        assert_eq!(arith_flags(&m), 0, "{mode:?}");
    }
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rbx, DATA)?;
        a.mov(qword_ptr(rbx), -1i32)?;
        a.popcnt(rax, qword_ptr(rbx))?;
        a.mov(qword_ptr(rbx), 0i32)?;
        a.mov(rcx, 7u64)?;
        a.popcnt(rcx, qword_ptr(rbx))?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 64);
    assert_eq!(m.cpu.gpr[1], 0);
    assert_eq!(arith_flags(&m), ZF);
}
