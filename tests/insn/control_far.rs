//! LOOP/LOOPcc, JrCXZ, ENTER/LEAVE, far JMP/CALL/RET and IRET.

use super::common::*;
use hvsim::cpu::flags::{FIXED1, IF, IOPL};
use hvsim::cpu::CpuMode;
use hvsim_mmu::Gpa;

/// Where the far-transfer tests put their target code.
const TARGET: u64 = 0x3000;

/// `main` (in `mode`) at CODE and `target` (assembled for `target_bits`, ending in HLT)
/// at [`TARGET`]; `setup` adjusts the machine before the run.
fn run_far(
    mode: GuestMode,
    main: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    target_bits: u32,
    target: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    setup: impl FnOnce(&mut Machine),
) -> (Machine, StopReport) {
    let code = assemble(mode, main);
    let mut t = CodeAssembler::new(target_bits).unwrap();
    target(&mut t).unwrap();
    t.hlt().unwrap();
    let tcode = t.assemble(TARGET).unwrap();
    let mut m = machine_with(mode, &code);
    m.load(TARGET, &tcode).unwrap();
    setup(&mut m);
    let r = m.run(Some(10_000));
    (m, r)
}

fn halted(r: &StopReport) -> bool {
    matches!(r.reason, StopReason::Halted { .. })
}

#[test]
fn loop_counts_with_cx_ecx_rcx_by_mode() {
    for mode in ALL_MODES {
        let code = assemble(mode, |a| {
            let mut top = a.create_label();
            a.mov(ecx, 0x1_0003u32)?;
            a.xor(eax, eax)?;
            a.set_label(&mut top)?;
            a.inc(eax)?;
            a.loop_(top)?;
            Ok(())
        });
        let mut m = machine_with(mode, &code);
        let r = m.run(Some(1_000_000));
        assert!(halted(&r), "{mode:?}: {r}");
        if bits(mode) == 16 {
            // 16-bit address size: only CX counts; the upper half of ECX is kept.
            assert_eq!(m.cpu.gpr[0], 3, "{mode:?}");
            assert_eq!(m.cpu.gpr[1], 0x1_0000, "{mode:?}");
        } else {
            assert_eq!(m.cpu.gpr[0], 0x1_0003, "{mode:?}");
            assert_eq!(m.cpu.gpr[1], 0, "{mode:?}");
        }
    }
}

#[test]
fn loope_and_loopne_stop_on_zf() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            let mut l1 = a.create_label();
            let mut l2 = a.create_label();
            a.mov(ecx, 10u32)?;
            a.xor(eax, eax)?;
            a.set_label(&mut l1)?;
            a.inc(eax)?;
            a.cmp(eax, 4u32)?;
            a.loopne(l1)?; // stops when EAX = 4
            a.mov(edx, ecx)?;
            a.mov(ecx, 10u32)?;
            a.xor(ebx, ebx)?;
            a.set_label(&mut l2)?;
            a.inc(ebx)?;
            a.cmp(ebx, 1u32)?;
            a.loope(l2)?; // continues once, stops at EBX = 2
            Ok(())
        });
        assert_eq!((m.cpu.gpr[0], m.cpu.gpr[2]), (4, 6), "{mode:?}");
        assert_eq!((m.cpu.gpr[3], m.cpu.gpr[1]), (2, 8), "{mode:?}");
    }
}

#[test]
fn jrcxz_forms() {
    let m = run_ok(GuestMode::Long64, |a| {
        let mut l1 = a.create_label();
        let mut l3 = a.create_label();
        a.xor(ebx, ebx)?;
        a.mov(rcx, 0x1_0000_0000u64)?;
        a.jrcxz(l1)?; // RCX != 0: not taken
        a.or(ebx, 1u32)?;
        a.set_label(&mut l1)?;
        a.db(&[0x67, 0xE3, 0x03])?; // jecxz over the OR: ECX = 0, taken
        a.or(ebx, 2u32)?;
        a.xor(ecx, ecx)?;
        a.jrcxz(l3)?;
        a.or(ebx, 4u32)?;
        a.set_label(&mut l3)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[3], 1);
    let m = run_ok(GuestMode::Real, |a| {
        let mut l1 = a.create_label();
        a.mov(ecx, 0x1_0000u32)?;
        a.xor(ebx, ebx)?;
        a.jcxz(l1)?; // CX = 0
        a.or(ebx, 1u32)?;
        a.set_label(&mut l1)?;
        Ok(())
    });
    assert_eq!(m.cpu.gpr[3], 0);
}

#[test]
fn enter_and_leave_level_zero_in_every_mode() {
    for mode in ALL_MODES {
        let m = run_ok(mode, |a| {
            a.mov(ebp, 0x1111u32)?;
            a.enter(16u32, 0u32)?;
            a.mov(esi, esp)?;
            a.mov(edi, ebp)?;
            a.leave()?;
            Ok(())
        });
        let slot = match mode {
            GuestMode::Long64 => 8,
            GuestMode::Protected32 => 4,
            _ => 2,
        };
        assert_eq!(m.cpu.gpr[7], STACK - slot, "{mode:?}");
        assert_eq!(m.cpu.gpr[6], STACK - slot - 16, "{mode:?}");
        assert_eq!(m.cpu.gpr[5], 0x1111, "{mode:?}");
        assert_eq!(m.cpu.gpr[4], STACK, "{mode:?}");
    }
}

#[test]
fn enter_with_nesting_level_copies_frame_pointers() {
    let m = run_ok(GuestMode::Protected32, |a| {
        a.mov(ebp, STACK as u32 - 0x100)?;
        a.mov(dword_ptr(ebp - 4), 0xDEADu32)?;
        a.enter(8u32, 2u32)?;
        Ok(())
    });
    let rd = |at: u64| m.mem.read_u32(Gpa(at));
    assert_eq!(rd(STACK - 4), STACK as u32 - 0x100); // old EBP
    assert_eq!(rd(STACK - 8), 0xDEAD); // copied display entry
    assert_eq!(rd(STACK - 12), STACK as u32 - 4); // the new frame pointer
    assert_eq!(m.cpu.gpr[5], STACK - 4);
    assert_eq!(m.cpu.gpr[4], STACK - 20);
}

#[test]
fn far_jmp_and_call_in_real_mode() {
    let (m, r) = run_far(
        GuestMode::Real,
        |a| {
            a.jmp_far(0x0200, 0x1000)?;
            Ok(())
        },
        16,
        |a| a.mov(bx, cs),
        |_| {},
    );
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.seg[1].selector, 0x200);
    assert_eq!(m.cpu.seg[1].base, 0x2000);
    assert_eq!(m.cpu.gpr[3], 0x200);

    // CALL FAR, then RETF 2 drops the argument pushed before the call.
    let (m, r) = run_far(
        GuestMode::Real,
        |a| {
            a.push(0x55u32)?;
            a.call_far(0x0200, 0x1000)?;
            a.mov(dx, cs)?;
            Ok(())
        },
        16,
        |a| {
            a.mov(ax, cs)?;
            a.mov(cx, word_ptr(esp))?;
            a.retf_1(2u32)?;
            Ok(())
        },
        |_| {},
    );
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.gpr[0], 0x200);
    assert_eq!(m.cpu.gpr[1], CODE + 2 + 5); // return IP: after PUSH imm8 and CALL FAR
    assert_eq!(m.cpu.gpr[2], 0);
    assert_eq!(m.cpu.gpr[4], STACK);
}

#[test]
fn far_jmp_call_retf_to_gdt_selectors_in_protected_mode() {
    // 32-bit code to the 16-bit code segment.
    let (m, r) = run_far(
        GuestMode::Protected32,
        |a| a.jmp_far(0x20, TARGET as u32),
        16,
        |a| a.mov(bx, cs),
        |_| {},
    );
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.seg[1].selector, 0x20);
    assert_eq!(m.cpu.code_bits, 16);
    assert_eq!(m.cpu.gpr[3], 0x20);
    // RPL is forced to CPL.
    let (m, r) = run_far(
        GuestMode::Protected32,
        |a| {
            a.call_far(0x18, TARGET as u32)?;
            a.mov(edx, 0x42u32)?;
            Ok(())
        },
        32,
        |a| {
            a.mov(ebx, cs)?;
            a.retf()
        },
        |_| {},
    );
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.seg[1].selector, 0x18);
    assert_eq!((m.cpu.gpr[3], m.cpu.gpr[2], m.cpu.gpr[4]), (0x18, 0x42, STACK));
}

#[test]
fn far_transfers_in_long_mode() {
    // JMP FAR m16:32 from 64-bit code into the 32-bit segment: compatibility mode.
    let (m, r) = run_far(
        GuestMode::Long64,
        |a| {
            a.mov(dword_ptr(DATA as u32), TARGET as u32)?;
            a.mov(word_ptr(DATA as u32 + 4), 0x18u32)?;
            a.db(&[0xFF, 0x2C, 0x25, 0x00, 0x40, 0x00, 0x00])?; // jmp far [0x4000]
            Ok(())
        },
        32,
        |a| a.mov(ebx, cs),
        |_| {},
    );
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.mode, CpuMode::Compat);
    assert_eq!(m.cpu.gpr[3], 0x18);
    // RETFQ to a 64-bit target.
    let m = run_ok(GuestMode::Long64, |a| {
        let mut l = a.create_label();
        a.lea(rax, ptr(l))?;
        a.push(0x08)?;
        a.push(rax)?;
        a.retf()?;
        a.mov(ebx, 1u32)?;
        a.set_label(&mut l)?;
        a.mov(ecx, 2u32)?;
        Ok(())
    });
    assert_eq!((m.cpu.gpr[3], m.cpu.gpr[1], m.cpu.gpr[4]), (0, 2, STACK));
    assert_eq!(m.cpu.mode, CpuMode::Long64);
}

#[test]
fn bad_far_targets_fault() {
    let area_of = |m: &Machine| m.setup_area();
    for (sel, want) in [(0x10u16, (13, Some(0x10))), (0, (13, Some(0))), (0x58, (13, Some(0x58)))] {
        let (_m, r) =
            run_far(GuestMode::Protected32, |a| a.jmp_far(sel, 0), 32, |_| Ok(()), |_| {});
        assert_eq!(exception(&r), Some(want), "sel {sel:#x}: {r}");
        assert_eq!(r.rip, CODE);
    }
    // Offset beyond the limit of a 16-bit-limit code segment? The harness segments are
    // 4 GiB; a not-present code descriptor instead: #NP(sel).
    let (_m, r) = run_far(
        GuestMode::Protected32,
        |a| a.jmp_far(0x28, 0),
        32,
        |_| Ok(()),
        |m| {
            let at = area_of(m) + 0x28;
            let d = 0xFFFF | (0x1Bu64 << 40) | (0xCu64 << 52) | (0xF << 48); // code, P = 0
            m.mem.write_u64(Gpa(at), d);
        },
    );
    assert_eq!(exception(&r), Some((11, Some(0x28))), "{r}");
    // A same-privilege call gate (tests/segmentation.rs covers gates in depth): the
    // offset comes from the gate, the instruction's offset is ignored.
    let (m, r) = run_far(
        GuestMode::Protected32,
        |a| a.call_far(0x28, 0x1234),
        32,
        |_| Ok(()),
        |m| {
            let at = area_of(m) + 0x28;
            m.mem.write_u64(Gpa(at), TARGET | (0x18u64 << 16) | (0x8Cu64 << 40));
        },
    );
    assert!(halted(&r), "{r}");
    assert_eq!((m.cpu.seg[1].selector, m.cpu.gpr[4]), (0x18, STACK - 8));
}

#[test]
fn iret_real_protected_and_long() {
    // Real mode: IP, CS, FLAGS.
    let (m, r) = run_far(
        GuestMode::Real,
        |a| a.iret(),
        16,
        |a| a.mov(bx, cs),
        |m| {
            let top = STACK - 6;
            m.mem.write_u16(Gpa(top), 0x1000);
            m.mem.write_u16(Gpa(top + 2), 0x200);
            m.mem.write_u16(Gpa(top + 4), (FIXED1 | CF | IF) as u16);
            m.cpu.gpr[4] = top;
        },
    );
    assert!(halted(&r), "{r}");
    assert_eq!((m.cpu.gpr[3], m.cpu.gpr[4]), (0x200, STACK));
    assert_eq!(m.cpu.flags.get() & (CF | IF), CF | IF);
    // 32-bit protected mode, same privilege; IOPL loads at CPL 0.
    let (m, r) = run_far(
        GuestMode::Protected32,
        |a| a.iretd(),
        32,
        |a| a.mov(ebx, cs),
        |m| {
            let top = STACK - 12;
            m.mem.write_u32(Gpa(top), TARGET as u32);
            m.mem.write_u32(Gpa(top + 4), 0x18);
            m.mem.write_u32(Gpa(top + 8), (FIXED1 | ZF | IOPL) as u32);
            m.cpu.gpr[4] = top;
        },
    );
    assert!(halted(&r), "{r}");
    assert_eq!((m.cpu.gpr[3], m.cpu.gpr[4]), (0x18, STACK));
    assert_eq!(m.cpu.flags.get() & (ZF | IOPL | CF), ZF | IOPL);
    // 64-bit mode: IRETQ pops SS:RSP too.
    let (m, r) = run_far(
        GuestMode::Long64,
        |a| a.iretq(),
        64,
        |a| a.mov(ebx, 7u32),
        |m| {
            let top = STACK - 40;
            for (k, v) in [TARGET, 0x08, FIXED1 | SF, 0x7000, 0x10].iter().enumerate() {
                m.mem.write_u64(Gpa(top + 8 * k as u64), *v);
            }
            m.cpu.gpr[4] = top;
        },
    );
    assert!(halted(&r), "{r}");
    assert_eq!((m.cpu.gpr[3], m.cpu.gpr[4], m.cpu.seg[2].selector), (7, 0x7000, 0x10));
    assert_eq!(m.cpu.flags.get() & SF, SF);
    // A return to RPL 3 through the ring-0 code descriptor: a non-conforming code
    // segment's DPL must equal the RPL (SDM Vol. 2A "IRET"): #GP(selector).
    let (_m, r) = run_far(
        GuestMode::Protected32,
        |a| a.iretd(),
        32,
        |_| Ok(()),
        |m| {
            let top = STACK - 12;
            m.mem.write_u32(Gpa(top), TARGET as u32);
            m.mem.write_u32(Gpa(top + 4), 0x1B);
            m.mem.write_u32(Gpa(top + 8), FIXED1 as u32);
            m.cpu.gpr[4] = top;
        },
    );
    assert_eq!(exception(&r), Some((13, Some(0x18))), "{r}");
}
