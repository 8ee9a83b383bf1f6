//! ADD/ADC/SUB/SBB/CMP/AND/OR/XOR/TEST/INC/DEC/NEG/NOT.

use super::common::*;

#[test]
fn add_sets_exact_flags_in_every_mode() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(al, 0x7Fu32)?;
            a.add(al, 1u32)?;
            Ok(())
        });
        assert_eq!(m.cpu.gpr[0] & 0xFF, 0x80, "{mode:?}");
        assert_eq!(arith_flags(&m), SF | OF | AF, "{mode:?}");
    }
}

#[test]
fn adc_sbb_chain_with_carry() {
    let m = run_ok(GuestMode::Protected32, |a| {
        a.mov(eax, 0xFFFF_FFFFu32)?;
        a.mov(edx, 0u32)?;
        a.add(eax, 1u32)?; // CF=1
        a.adc(edx, 0u32)?; // edx = 1
        a.mov(ecx, 0u32)?;
        a.sub(ecx, 1u32)?; // CF=1, ecx = -1
        a.mov(ebx, 5u32)?;
        a.sbb(ebx, 0u32)?; // ebx = 4
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0);
    assert_eq!(m.cpu.gpr[2], 1);
    assert_eq!(m.cpu.gpr[1], 0xFFFF_FFFF);
    assert_eq!(m.cpu.gpr[3], 4);
    assert_eq!(arith_flags(&m) & (CF | ZF), 0);
}

#[test]
fn logic_clears_cf_of_and_memory_operands_work() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rbx, DATA)?;
        a.mov(qword_ptr(rbx), 0x0F0Fi32)?;
        a.stc()?;
        a.or(qword_ptr(rbx), 0xF000i32)?;
        a.mov(rax, qword_ptr(rbx))?;
        a.xor(ecx, ecx)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0xFF0F);
    assert_eq!(m.cpu.gpr[1], 0);
    assert_eq!(arith_flags(&m), ZF | PF);
}

#[test]
fn inc_dec_preserve_carry_neg_not() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.stc()?;
        a.mov(eax, 0x7FFF_FFFFu32)?;
        a.inc(eax)?; // OF, SF; CF kept
        a.mov(rbx, 5u64)?;
        a.neg(rbx)?;
        a.mov(ecx, 0u32)?;
        a.not(cx)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0x8000_0000);
    assert_eq!(m.cpu.gpr[3], 5u64.wrapping_neg());
    assert_eq!(m.cpu.gpr[1], 0xFFFF);
    // NEG of a non-zero value sets CF.
    assert_eq!(arith_flags(&m) & CF, CF);
}

#[test]
fn thirty_two_bit_writes_zero_extend_in_long_mode() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rax, -1i64)?;
        a.add(eax, 1u32)?;
        a.mov(rbx, -1i64)?;
        a.add(bx, 1u32)?;
        a.mov(rcx, -1i64)?;
        a.add(ch, 1u32)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0);
    assert_eq!(m.cpu.gpr[3], 0xFFFF_FFFF_FFFF_0000);
    assert_eq!(m.cpu.gpr[1], 0xFFFF_FFFF_FFFF_00FF);
}
