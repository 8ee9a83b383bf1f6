//! IN, OUT, INS, OUTS: devices, unclaimed ports, isa-debug-exit and the IOPL check.

use super::common::*;
use hvsim::cpu::flags::{FIXED1, IOPL};
use hvsim_mmu::Gpa;

#[test]
fn out_to_debug_exit_ends_the_run() {
    for mode in ALL_MODES {
        let (_m, r) = run(mode, |a| {
            a.mov(al, 0x10u32)?;
            a.out(0xF4u32, al)?;
            a.mov(al, 0x20u32)?;
            Ok(())
        });
        assert_eq!(r.reason, StopReason::DebugExit(0x10), "{mode:?}: {r}");
        // MOV and OUT retired; RIP is after the OUT.
        assert_eq!(r.insn_count, 2, "{mode:?}");
        assert_eq!(r.rip, CODE + 4, "{mode:?}");
    }
}

#[test]
fn out_dx_word_to_debug_exit() {
    let (_m, r) = run(GuestMode::Protected32, |a| {
        a.mov(dx, 0xF4u32)?;
        a.mov(eax, 0x1_0203u32)?;
        a.out(dx, ax)?;
        Ok(())
    });
    assert_eq!(r.reason, StopReason::DebugExit(0x0203), "{r}");
    assert_eq!(r.insn_count, 3);
}

#[test]
fn in_from_unclaimed_port_reads_all_ones() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(dx, 0x300u32)?;
            a.xor(ebx, ebx)?;
            a.in_(al, dx)?;
            a.mov(bl, al)?;
            a.in_(ax, 0xE0u32)?;
            a.mov(ecx, eax)?;
            a.in_(eax, dx)?;
            Ok(())
        });
        assert_eq!(m.cpu.gpr[3], 0xFF, "{mode:?}");
        assert_eq!(m.cpu.gpr[1] & 0xFFFF, 0xFFFF, "{mode:?}");
        assert_eq!(m.cpu.gpr[0] & 0xFFFF_FFFF, 0xFFFF_FFFF, "{mode:?}");
    }
}

#[test]
fn in_eax_zero_extends_in_long_mode() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rax, 0x1234_5678_9ABC_DEF0u64)?;
        a.mov(dx, 0x300u32)?;
        a.in_(al, dx)?;
        a.mov(rbx, rax)?;
        a.in_(eax, dx)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[0], 0xFFFF_FFFF);
    assert_eq!(m.cpu.gpr[3], 0x1234_5678_9ABC_DEFF);
}

#[test]
fn com1_output_is_captured() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(dx, 0x3F8u32)?;
            a.mov(al, b'H' as u32)?;
            a.out(dx, al)?;
            a.mov(al, b'i' as u32)?;
            a.out(dx, al)?;
            Ok(())
        });
        assert_eq!(m.serial_output(), b"Hi", "{mode:?}");
    }
}

#[test]
fn rep_outsb_writes_a_string_to_com1() {
    for mode in ALL_MODES {
        let code = assemble(mode, |a| {
            a.mov(esi, DATA as u32)?;
            a.mov(dx, 0x3F8u32)?;
            a.mov(ecx, 5u32)?;
            a.rep().outsb()?;
            Ok(())
        });
        let mut m = machine_with(mode, &code);
        m.load(DATA, b"hello").unwrap();
        let r = m.run(Some(1000));
        assert!(matches!(r.reason, StopReason::Halted { .. }), "{mode:?}: {r}");
        assert_eq!(m.serial_output(), b"hello", "{mode:?}");
        assert_eq!(m.cpu.gpr[6], DATA + 5, "{mode:?}");
        assert_eq!(m.cpu.gpr[1], 0, "{mode:?}");
    }
}

#[test]
fn rep_insw_fills_memory_from_port() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(edi, DATA as u32)?;
            a.mov(dx, 0x300u32)?;
            a.mov(ecx, 3u32)?;
            a.rep().insw()?;
            Ok(())
        });
        for k in 0..3 {
            assert_eq!(m.mem.read_u16(Gpa(DATA + 2 * k)), 0xFFFF, "{mode:?}");
        }
        assert_eq!(m.mem.read_u16(Gpa(DATA + 6)), 0, "{mode:?}");
        assert_eq!(m.cpu.gpr[7], DATA + 6, "{mode:?}");
    }
}

/// A 32-bit protected-mode machine running `code` at CPL 3 (CS RPL 3 on the harness's
/// DPL-0 code segment: enough for these checks) with the given IOPL.
fn cpl3_machine(code: &[u8], iopl: u64) -> Machine {
    let mut m = machine_with(GuestMode::Protected32, code);
    m.cpu.seg[1].selector |= 3;
    m.cpu.flags.set(FIXED1 | (iopl << 12));
    m.cpu.update_mode();
    assert_eq!(m.cpu.cpl, 3);
    m
}

#[test]
fn io_at_cpl3_needs_iopl3() {
    let code = assemble(GuestMode::Protected32, |a| {
        a.mov(al, 7u32)?;
        a.out(0xF4u32, al)?;
        Ok(())
    });
    let mut m = cpl3_machine(&code, 0);
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((13, Some(0))), "{r}");
    assert_eq!(r.rip, CODE + 2);
    let mut m = cpl3_machine(&code, 3);
    let r = m.run(Some(100));
    assert_eq!(r.reason, StopReason::DebugExit(7), "{r}");
    assert_eq!(m.cpu.flags.get() & IOPL, IOPL);
}

#[test]
fn rep_outsb_to_debug_exit_stops_after_the_write() {
    let code = assemble(GuestMode::Protected32, |a| {
        a.mov(esi, DATA as u32)?;
        a.mov(dx, 0xF4u32)?;
        a.mov(ecx, 3u32)?;
        a.rep().outsb()?;
        Ok(())
    });
    let mut m = machine_with(GuestMode::Protected32, &code);
    m.load(DATA, &[0x21, 0x22, 0x23]).unwrap();
    let r = m.run(Some(100));
    assert_eq!(r.reason, StopReason::DebugExit(0x21), "{r}");
    assert_eq!(r.insn_count, 4);
    assert_eq!((m.cpu.gpr[6], m.cpu.gpr[1]), (DATA + 1, 2));
}

#[test]
fn v86_io_without_bitmap_is_gp() {
    let code = assemble(GuestMode::Protected32, |a| {
        a.in_(al, 0x70u32)?;
        Ok(())
    });
    let mut m = machine_with(GuestMode::Protected32, &code);
    m.cpu.flags.set(FIXED1 | IOPL | hvsim::cpu::flags::VM);
    m.cpu.update_mode();
    assert_eq!(m.cpu.mode, hvsim::cpu::CpuMode::V86);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), Some((13, Some(0))), "{r}");
}
