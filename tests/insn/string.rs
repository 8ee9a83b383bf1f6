//! MOVS, CMPS, SCAS, LODS, STOS with REP prefixes, DF and address sizes.

use super::common::*;
use hvsim_mmu::Gpa;

/// Runs `body` in `mode` with `data` preloaded at its addresses.
fn run_data(
    mode: GuestMode,
    data: &[(u64, &[u8])],
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> (Machine, StopReport) {
    let code = assemble(mode, body);
    let mut m = machine_with(mode, &code);
    for (at, bytes) in data {
        m.load(*at, bytes).expect("load");
    }
    let r = m.run(Some(100_000));
    (m, r)
}

fn bytes(m: &Machine, at: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|k| m.mem.read_u8(Gpa(at + k))).collect()
}

#[test]
fn rep_movsb_copies_in_every_mode() {
    let src: Vec<u8> = (1..=16).collect();
    for mode in ALL_MODES {
        let (m, r) = run_data(mode, &[(DATA, &src)], |a| {
            a.mov(esi, DATA as u32)?;
            a.mov(edi, DATA as u32 + 0x100)?;
            a.mov(ecx, 16u32)?;
            a.cld()?;
            a.rep().movsb()?;
            Ok(())
        });
        assert!(matches!(r.reason, StopReason::Halted { .. }), "{mode:?}: {r}");
        assert_eq!(bytes(&m, DATA + 0x100, 16), src, "{mode:?}");
        assert_eq!(m.cpu.gpr[1] & 0xFFFF, 0, "{mode:?}");
        assert_eq!(m.cpu.gpr[6] & 0xFFFF, (DATA + 16) & 0xFFFF, "{mode:?}");
        assert_eq!(m.cpu.gpr[7] & 0xFFFF, (DATA + 0x110) & 0xFFFF, "{mode:?}");
    }
}

#[test]
fn rep_with_zero_count_does_nothing() {
    for mode in ALL_MODES {
        let (m, r) = run_data(mode, &[], |a| {
            a.mov(edi, DATA as u32)?;
            a.xor(ecx, ecx)?;
            a.mov(eax, 0x55u32)?;
            a.rep().stosb()?;
            a.mov(esi, DATA as u32)?;
            a.rep().lodsb()?;
            Ok(())
        });
        assert!(matches!(r.reason, StopReason::Halted { .. }), "{mode:?}: {r}");
        assert_eq!(m.mem.read_u8(Gpa(DATA)), 0, "{mode:?}");
        assert_eq!(m.cpu.gpr[7], DATA, "{mode:?}");
        assert_eq!(m.cpu.gpr[6], DATA, "{mode:?}");
        assert_eq!(m.cpu.gpr[0], 0x55, "{mode:?}");
    }
}

#[test]
fn df_set_walks_downwards() {
    for mode in ALL_MODES {
        let (m, r) = run_data(mode, &[], |a| {
            a.std()?;
            a.mov(edi, DATA as u32 + 6)?;
            a.mov(ecx, 4u32)?;
            a.mov(eax, 0xA1B2u32)?;
            a.rep().stosw()?;
            Ok(())
        });
        assert!(matches!(r.reason, StopReason::Halted { .. }), "{mode:?}: {r}");
        for k in 0..4 {
            assert_eq!(m.mem.read_u16(Gpa(DATA + 2 * k)), 0xA1B2, "{mode:?}");
        }
        assert_eq!(m.cpu.gpr[7] & 0xFFFF, (DATA - 2) & 0xFFFF, "{mode:?}");
        assert_eq!(m.cpu.flags.get() & DF, DF, "{mode:?}");
    }
}

#[test]
fn long_rep_stosb_yields_and_completes() {
    for mode in ALL_MODES {
        let (m, r) = run_data(mode, &[(DATA + 10_000, &[0x11])], |a| {
            a.mov(edi, DATA as u32)?;
            a.mov(ecx, 10_000u32)?;
            a.mov(al, 0xABu32)?;
            a.rep().stosb()?;
            Ok(())
        });
        assert!(matches!(r.reason, StopReason::Halted { .. }), "{mode:?}: {r}");
        assert!(bytes(&m, DATA, 10_000).iter().all(|b| *b == 0xAB), "{mode:?}");
        assert_eq!(m.mem.read_u8(Gpa(DATA + 10_000)), 0x11, "{mode:?}");
        assert_eq!(m.cpu.gpr[1], 0, "{mode:?}");
        assert_eq!(m.cpu.gpr[7], DATA + 10_000, "{mode:?}");
        // Three setup instructions, the REP STOSB once, HLT.
        assert_eq!(m.cpu.insn_count, 5, "{mode:?}");
    }
}

#[test]
fn repe_cmpsb_stops_at_first_mismatch() {
    for mode in ALL_MODES {
        let (m, r) =
            run_data(mode, &[(DATA, b"hello world"), (DATA + 0x20, b"hello_world")], |a| {
                a.mov(esi, DATA as u32)?;
                a.mov(edi, DATA as u32 + 0x20)?;
                a.mov(ecx, 11u32)?;
                a.repe().cmpsb()?;
                Ok(())
            });
        assert!(matches!(r.reason, StopReason::Halted { .. }), "{mode:?}: {r}");
        // Six comparisons: the sixth (' ' vs '_') differs.
        assert_eq!(m.cpu.gpr[1], 5, "{mode:?}");
        assert_eq!(m.cpu.gpr[6], DATA + 6, "{mode:?}");
        assert_eq!(m.cpu.gpr[7], DATA + 0x26, "{mode:?}");
        // 0x20 - 0x5F: borrow, negative.
        assert_eq!(arith_flags(&m) & (ZF | CF | SF), CF | SF, "{mode:?}");
    }
}

#[test]
fn repne_scasb_finds_terminator() {
    let (m, _) = run_data(GuestMode::Protected32, &[(DATA, b"abcdef\0xyz")], |a| {
        a.mov(edi, DATA as u32)?;
        a.mov(ecx, -1i32)?;
        a.xor(eax, eax)?;
        a.repne().scasb()?;
        a.not(ecx)?;
        a.dec(ecx)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[1], 6);
    assert_eq!(m.cpu.gpr[7], DATA + 7);
}

#[test]
fn lods_movs_stos_wide_forms_in_long_mode() {
    let src = 0x1122_3344_5566_7788u64.to_le_bytes();
    let (m, r) = run_data(GuestMode::Long64, &[(DATA, &src)], |a| {
        a.mov(rsi, DATA)?;
        a.lodsq()?;
        a.mov(rsi, DATA)?;
        a.mov(rdi, DATA + 0x40)?;
        a.movsq()?;
        a.mov(rdi, DATA + 0x80)?;
        a.mov(rax, u64::MAX)?;
        a.mov(eax, 0xCAFEu32)?;
        a.stosd()?;
        a.mov(rsi, DATA)?;
        a.lodsd()?;
        Ok(())
    });
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(m.mem.read_u64(Gpa(DATA + 0x40)), 0x1122_3344_5566_7788);
    assert_eq!(m.mem.read_u32(Gpa(DATA + 0x80)), 0xCAFE);
    // LODSD zero-extends into RAX.
    assert_eq!(m.cpu.gpr[0], 0x5566_7788);
    assert_eq!(m.cpu.gpr[6], DATA + 4);
    assert_eq!(m.cpu.gpr[7], DATA + 0x84);
}

#[test]
fn source_segment_override_and_address_size_prefix() {
    // Real mode: FS = 0x100 (base 0x1000 above DS); `fs movsb` reads FS:SI.
    let (m, r) = run_data(GuestMode::Real, &[(0x1000 + DATA, &[0x77])], |a| {
        a.mov(ax, 0x100u32)?;
        a.mov(fs, ax)?;
        a.mov(si, DATA as u32)?;
        a.mov(di, DATA as u32 + 0x10)?;
        a.db(&[0x64, 0xA4])?; // fs movsb
        Ok(())
    });
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(m.mem.read_u8(Gpa(DATA + 0x10)), 0x77);
    // 16-bit protected mode with a 67 prefix: ECX/ESI/EDI with values above 64 KiB.
    let (m, r) = run_data(GuestMode::Protected16, &[(0x2_0000, &[1, 2, 3, 4])], |a| {
        a.mov(esi, 0x2_0000u32)?;
        a.mov(edi, 0x2_0100u32)?;
        a.mov(ecx, 0x1_0004u32)?;
        a.mov(cx, 4u32)?;
        a.mov(ecx, 4u32)?;
        a.db(&[0x67, 0xF3, 0xA4])?; // rep movsb with 32-bit addressing
        Ok(())
    });
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert_eq!(bytes(&m, 0x2_0100, 4), vec![1, 2, 3, 4]);
    assert_eq!(m.cpu.gpr[6], 0x2_0004);
    assert_eq!(m.cpu.gpr[7], 0x2_0104);
}

#[test]
fn fault_mid_rep_keeps_completed_iterations() {
    // The identity map ends at 4 GiB: the ninth byte faults.
    let code = assemble(GuestMode::Long64, |a| {
        a.mov(rdi, 0xFFFF_FFF8u64)?;
        a.mov(ecx, 16u32)?;
        a.rep().stosb()?;
        Ok(())
    });
    let mut m = machine_with(GuestMode::Long64, &code);
    let r = m.run(Some(100));
    assert_eq!(exception(&r).map(|e| e.0), Some(14), "{r}");
    assert_eq!(m.cpu.gpr[1], 8);
    assert_eq!(m.cpu.gpr[7], 0x1_0000_0000);
}
