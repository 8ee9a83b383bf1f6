//! Task management (SDM Vol. 3A Chapter 8): hardware task switches by JMP and CALL to a
//! TSS descriptor or task gate with the busy bits, NT, back link and CR0.TS of Table 8-3,
//! a switch back through the back link (`task_return`, what IRET with NT = 1 runs), a
//! 16-bit TSS, the faults of Table 8-2 with their error codes; and the TSS I/O permission
//! bitmap (SDM Vol. 1 §19.5.2) for a ring-3 task in 32-bit and 64-bit mode.

#[path = "support/descriptors.rs"]
mod descriptors;

use descriptors::*;
use hvsim::cpu::flags::{FIXED1, IF, NT};
use hvsim::cpu::regs::{cr0, SegReg};
use hvsim::cpu::task::{tss16, tss32};

const TSS_A: u64 = 0x5000;
const TSS_B: u64 = 0x5100;
const TSS_C: u64 = 0x5200;
/// Where task B (and C) start.
const TASK_CODE: u64 = 0x3000;

/// GDT: 0x08 code, 0x10 data, 0x18 TSS A (the current task), 0x20 TSS B (32-bit),
/// 0x28 task gate to B, 0x30 TSS C (16-bit), 0x38 ring-3 code, 0x40 ring-3 data, 0x48
/// a spare slot.
fn gdt(spare: u64) -> Vec<u64> {
    vec![
        0,
        flat(access::CODE0, gran::G32),
        flat(access::DATA0, gran::G32),
        system(9, 0, TSS_A as u32, 0x67),
        system(9, 0, TSS_B as u32, 0x67),
        gate(5, 0, 0x20, 0, 0),
        system(1, 0, TSS_C as u32, 0x2B),
        flat(access::CODE3, gran::G32),
        flat(access::DATA3, gran::G32),
        spare,
    ]
}

/// Fills TSS B: CS 0x08, SS/DS/ES/FS/GS 0x10, EIP [`TASK_CODE`], EAX..EDI 0xB0..0xB7,
/// ESP 0x6000, EFLAGS FIXED1.
fn fill_tss_b(m: &mut Machine) {
    let w32 = |m: &mut Machine, off: u64, v: u32| m.mem.write_u32(Gpa(TSS_B + off), v);
    w32(m, tss32::EIP, TASK_CODE as u32);
    w32(m, tss32::EFLAGS, FIXED1 as u32);
    for n in 0..8u64 {
        w32(m, tss32::EAX + 4 * n, 0xB0 + n as u32);
    }
    w32(m, tss32::EAX + 4 * 4, 0x6000);
    for (n, sel) in [0x10u32, 0x08, 0x10, 0x10, 0x10, 0x10].iter().enumerate() {
        w32(m, tss32::ES + 4 * n as u64, *sel);
    }
}

/// A 32-bit protected-mode machine at CPL 0 running `code`, TR = TSS A (busy, as LTR
/// leaves it), task B's code ending in HLT.
fn task_machine(code: &[u8], spare: u64) -> Machine {
    let mut m = machine(GuestMode::Protected32, code, &gdt(spare));
    enter_ring(&mut m, 0, 0x08, 0x10);
    let task_b = asm(32, TASK_CODE, |a| {
        a.mov(edi, eax)?;
        a.hlt()
    });
    m.load(TASK_CODE, &task_b).unwrap();
    fill_tss_b(&mut m);
    // LTR marks TSS A busy.
    m.mem.write_u8(Gpa(GDT + 0x18 + 5), 0x8B);
    let d = m.mem.read_u64(Gpa(GDT + 0x18));
    m.cpu.tr = hvsim::cpu::segment::segment_from_descriptor(0x18, d);
    m
}

/// The type field of GDT entry `sel`.
fn gdt_type(m: &Machine, sel: u16) -> u64 {
    (m.mem.read_u64(Gpa(GDT + u64::from(sel))) >> 40) & 0xF
}

/// SDM Vol. 3A §8.3 "Task Switching", Table 8-3: JMP clears the old busy bit, sets the
/// new one, leaves NT and the back link alone, sets CR0.TS; the old state is saved.
#[test]
fn jmp_to_tss_switches_tasks() {
    let code = asm(32, CODE, |a| {
        a.mov(eax, 0x1111u32)?;
        a.mov(ebx, 0x2222u32)?;
        a.jmp_far(0x20, 0)
    });
    let mut m = task_machine(&code, 0);
    m.cpu.flags.set(FIXED1 | IF | NT);
    let r = m.run(Some(100));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.tr.selector, 0x20);
    assert_eq!((gdt_type(&m, 0x18), gdt_type(&m, 0x20)), (9, 11));
    assert_eq!(m.cpu.flags.get() & NT, 0, "JMP keeps the new task's NT");
    assert_eq!(m.mem.read_u16(Gpa(TSS_B + tss32::LINK)), 0, "JMP writes no back link");
    assert_ne!(m.cpu.cr0 & cr0::TS, 0);
    // New task state.
    assert_eq!((m.cpu.gpr[7], m.cpu.gpr[3], m.cpu.gpr[4]), (0xB0, 0xB3, 0x6000));
    assert_eq!((m.cpu.seg[SegReg::Cs as usize].selector, m.cpu.cpl), (0x08, 0));
    // Old state saved in TSS A: EIP after the JMP, EAX, EBX, EFLAGS with NT.
    let r32 = |off: u64| m.mem.read_u32(Gpa(TSS_A + off));
    assert_eq!(u64::from(r32(tss32::EIP)), CODE + 5 + 5 + 7);
    assert_eq!((r32(tss32::EAX), r32(tss32::EAX + 12)), (0x1111, 0x2222));
    assert_eq!(u64::from(r32(tss32::EFLAGS)) & (NT | IF), NT | IF);
    assert_eq!(r32(tss32::ES + 4) & 0xFFFF, 0x08);
}

/// Table 8-3 for CALL through a task gate: the old task stays busy, the new one gets
/// NT and a back link; `task_return` (IRET with NT = 1) goes back through the link,
/// clears the returning task's busy bit and resumes the caller after the CALL.
#[test]
fn call_through_task_gate_nests_and_task_return_unwinds() {
    let code = asm(32, CODE, |a| {
        a.mov(eax, 0x1111u32)?;
        a.call_far(0x28, 0)?;
        a.mov(edx, 0xAAAAu32)?;
        a.hlt()
    });
    let mut m = task_machine(&code, 0);
    let r = m.run(Some(100));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.tr.selector, 0x20);
    assert_eq!((gdt_type(&m, 0x18), gdt_type(&m, 0x20)), (11, 11));
    assert_ne!(m.cpu.flags.get() & NT, 0);
    assert_eq!(m.mem.read_u16(Gpa(TSS_B + tss32::LINK)), 0x18);
    // Back to task A.
    m.cpu.halted = false;
    m.task_return().unwrap();
    assert_eq!(m.cpu.tr.selector, 0x18);
    assert_eq!((gdt_type(&m, 0x18), gdt_type(&m, 0x20)), (11, 9));
    assert_eq!(m.cpu.rip, CODE + 5 + 7);
    assert_eq!(m.cpu.gpr[0], 0x1111);
    // Task B's saved EFLAGS has NT cleared (Table 8-3, "old NT flag: cleared" on IRET).
    assert_eq!(u64::from(m.mem.read_u32(Gpa(TSS_B + tss32::EFLAGS))) & NT, 0);
    let r = m.run(Some(100));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.gpr[2], 0xAAAA);
    // Returning again: the back link of A (0) is not a busy TSS: #TS(0).
    let e = m.task_return().unwrap_err();
    assert!(
        matches!(e, hvsim::Fault::Exception(ref x) if x.vector == vec::TS && x.error_code == Some(0)),
        "{e:?}"
    );
}

/// SDM Vol. 3A §8.6 "16-Bit Task-State Segment": a JMP to a 16-bit TSS loads IP, FLAGS,
/// the 16-bit registers and ES/CS/SS/DS; FS and GS become null.
#[test]
fn jmp_to_16bit_tss() {
    let code = asm(32, CODE, |a| a.jmp_far(0x30, 0));
    let mut m = task_machine(&code, 0);
    let w16 = |m: &mut Machine, off: u64, v: u16| m.mem.write_u16(Gpa(TSS_C + off), v);
    w16(&mut m, tss16::IP, TASK_CODE as u16);
    w16(&mut m, tss16::FLAGS, FIXED1 as u16);
    for n in 0..8u64 {
        w16(&mut m, tss16::AX + 2 * n, 0xC0 + n as u16);
    }
    w16(&mut m, tss16::AX + 8, 0x6000);
    for (n, sel) in [0x10u16, 0x08, 0x10, 0x10].iter().enumerate() {
        w16(&mut m, tss16::ES + 2 * n as u64, *sel);
    }
    let r = m.run(Some(100));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.tr.selector, 0x30);
    assert_eq!(gdt_type(&m, 0x30), 3);
    assert_eq!(m.cpu.gpr[7] & 0xFFFF, 0xC0);
    assert_eq!(m.cpu.gpr[4] & 0xFFFF, 0x6000);
    assert_eq!(
        (m.cpu.seg[SegReg::Fs as usize].selector, m.cpu.seg[SegReg::Fs as usize].attr),
        (0, 0)
    );
    // The old (32-bit) task's state went to TSS A.
    assert_eq!(u64::from(m.mem.read_u32(Gpa(TSS_A + tss32::EIP))), CODE + 7);
}

/// SDM Vol. 3A §8.3, Table 8-2 (and Vol. 2A "JMP" TASK-GATE/TASK-STATE-SEGMENT): the
/// checks before the commit point leave TR unchanged; the ones after it fault in the
/// new task (TR already loaded).
#[test]
fn task_switch_faults_table() {
    use vec::{GP, NP, SS, TS};
    type Setup = fn(&mut Machine);
    let none: Setup = |_| {};
    let cases: [(&str, u16, u64, Setup, (u8, u32), u16); 12] = [
        ("busy TSS", 0x18, 0, none, (GP, 0x18), 0x18),
        ("TSS RPL > DPL", 0x23, 0, none, (GP, 0x20), 0x18),
        (
            "TSS not present",
            0x48,
            system(9, 0, TSS_B as u32, 0x67) & !(1 << 47),
            none,
            (NP, 0x48),
            0x18,
        ),
        ("TSS limit below 0x67", 0x48, system(9, 0, TSS_B as u32, 0x66), none, (TS, 0x48), 0x18),
        (
            "task gate not present",
            0x48,
            gate(5, 0, 0x20, 0, 0) & !(1 << 47),
            none,
            (NP, 0x48),
            0x18,
        ),
        ("task gate to an LDT selector", 0x48, gate(5, 0, 0x24, 0, 0), none, (GP, 0x24), 0x18),
        ("task gate to a code segment", 0x48, gate(5, 0, 0x08, 0, 0), none, (GP, 0x08), 0x18),
        (
            "new LDT selector with TI = 1",
            0x20,
            0,
            |m| m.mem.write_u16(Gpa(TSS_B + tss32::LDT), 0x4C),
            (TS, 0x4C),
            0x20,
        ),
        (
            "new LDT not an LDT",
            0x20,
            0,
            |m| m.mem.write_u16(Gpa(TSS_B + tss32::LDT), 0x10),
            (TS, 0x10),
            0x20,
        ),
        (
            "new SS not present",
            0x20,
            0,
            |m| {
                m.mem.write_u16(Gpa(TSS_B + tss32::ES + 8), 0x48);
                m.mem.write_u64(Gpa(GDT + 0x48), flat(access::DATA0, gran::G32) & !(1 << 47));
            },
            (SS, 0x48),
            0x20,
        ),
        (
            "new CS is data",
            0x20,
            0,
            |m| m.mem.write_u16(Gpa(TSS_B + tss32::ES + 4), 0x10),
            (TS, 0x10),
            0x20,
        ),
        (
            "new DS DPL < CPL",
            0x20,
            0,
            |m| {
                // CS RPL 3 (ring-3 code), SS ring-3 data, DS ring-0 data.
                m.mem.write_u16(Gpa(TSS_B + tss32::ES + 4), 0x3B);
                m.mem.write_u16(Gpa(TSS_B + tss32::ES + 8), 0x43);
                m.mem.write_u16(Gpa(TSS_B + tss32::ES + 12), 0x10);
            },
            (TS, 0x10),
            0x20,
        ),
    ];
    let mut failures = Vec::new();
    for (what, sel, spare, setup, want, tr) in cases {
        let code = asm(32, CODE, |a| a.jmp_far(sel, 0));
        let mut m = task_machine(&code, spare);
        setup(&mut m);
        let r = m.run(Some(100));
        let got = (exception(&r), m.cpu.tr.selector);
        if got != (Some((want.0, Some(want.1))), tr) {
            failures.push(format!("{what}: {got:x?}: {r}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// SDM Vol. 3A §8.7 "Task Management in 64-bit Mode": JMP to a TSS in IA-32e mode is
/// #GP(selector) (task gates and TSS targets do not exist there).
#[test]
fn no_task_switch_in_ia32e_mode() {
    let code = asm(64, CODE, |a| {
        a.call(fword_ptr(0x4000))?;
        a.hlt()
    });
    let mut m = machine(GuestMode::Long64, &code, &gdt(0));
    m.cpu.seg[SegReg::Cs as usize] = cached(&m, 0x08);
    m.mem.write_u64(Gpa(GDT + 0x08), flat(access::CODE0, gran::G64));
    m.cpu.seg[SegReg::Cs as usize] = cached(&m, 0x08);
    m.cpu.update_mode();
    m.mem.write_u16(Gpa(0x4004), 0x20);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), Some((vec::GP, Some(0x20))), "{r}");
    assert_eq!(m.task_return().unwrap_err(), m_gp0());
}

fn m_gp0() -> hvsim::Fault {
    hvsim::Fault::from(hvsim::Exception::with_code(vec::GP, 0))
}

/// The I/O bitmap of the test TSS: at offset 0x68; ports 0x80-0x87 and 0xF4 allowed,
/// everything else in the first 0x100 ports denied; the map ends at the TSS limit.
fn io_tss(m: &mut Machine, tss: u64) {
    m.mem.write_u16(Gpa(tss + tss32::IOMAP_BASE), 0x68);
    let mut map = [0xFFu8; 0x20];
    map[0x80 / 8] = 0x00;
    map[0xF4 / 8] = !(1 << (0xF4 % 8));
    m.load(tss + 0x68, &map).unwrap();
}

/// SDM Vol. 1 §19.5.2 "I/O Permission Bit Map": at CPL 3 with IOPL 0, the bits for
/// every byte of the access must be 0; bits beyond the TSS limit count as 1.
#[test]
fn io_bitmap_allows_and_denies_ports_at_ring3() {
    // (what, code, expected result)
    type Body = fn(&mut CodeAssembler) -> Result<(), IcedError>;
    let cases: [(&str, Body, Option<(u8, u32)>); 6] = [
        ("IN AL, 0x80 (allowed)", |a| a.in_(al, 0x80u32), None),
        ("IN EAX, 0x84 (0x84-0x87 allowed)", |a| a.in_(eax, 0x84u32), None),
        ("IN AX, 0x87 (0x88 denied)", |a| a.in_(ax, 0x87u32), Some((vec::GP, 0))),
        ("IN AL, 0x70 (denied)", |a| a.in_(al, 0x70u32), Some((vec::GP, 0))),
        (
            "INSB from 0x81 (allowed)",
            |a| {
                a.mov(dx, 0x81u32)?;
                a.mov(edi, 0x4000u32)?;
                a.insb()
            },
            None,
        ),
        (
            "IN AL, DX = 0x1000 (beyond the limit)",
            |a| {
                a.mov(dx, 0x1000u32)?;
                a.in_(al, dx)
            },
            Some((vec::GP, 0)),
        ),
    ];
    for (what, body, want) in cases {
        let code = asm(32, CODE, |a| {
            body(a)?;
            a.mov(al, 5u32)?;
            a.out(0xF4u32, al) // allowed: ends the run with status 5
        });
        let mut m = machine(
            GuestMode::Protected32,
            &code,
            &gdt(system(9, 0, TSS_B as u32, 0x68 + 0x20 - 1)),
        );
        io_tss(&mut m, TSS_B);
        let d = m.mem.read_u64(Gpa(GDT + 0x48));
        m.cpu.tr = hvsim::cpu::segment::segment_from_descriptor(0x48, d);
        enter_ring(&mut m, 3, 0x38, 0x40);
        let r = m.run(Some(100));
        match want {
            None => assert_eq!(r.reason, StopReason::DebugExit(5), "{what}: {r}"),
            Some((v, c)) => assert_eq!(exception(&r), Some((v, Some(c))), "{what}: {r}"),
        }
    }
    // A 16-bit TSS has no bitmap: #GP(0) even for an allowed port.
    let code = asm(32, CODE, |a| a.in_(al, 0x80u32));
    let mut m = machine(GuestMode::Protected32, &code, &gdt(system(3, 0, TSS_B as u32, 0x2B)));
    let d = m.mem.read_u64(Gpa(GDT + 0x48));
    m.cpu.tr = hvsim::cpu::segment::segment_from_descriptor(0x48, d);
    enter_ring(&mut m, 3, 0x38, 0x40);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), Some((vec::GP, Some(0))), "{r}");
}

/// The same bitmap in a 64-bit TSS (SDM Vol. 3A §8.7: the I/O map base is at 0x66 in
/// the 64-bit TSS too).
#[test]
fn io_bitmap_in_64bit_tss() {
    for (port, want) in [(0x80u32, None), (0x71, Some((vec::GP, Some(0))))] {
        let code = asm(64, CODE, |a| {
            a.in_(al, port)?;
            a.mov(al, 6u32)?;
            a.out(0xF4u32, al)
        });
        let [t0, t1] = tss64(TSS_B, 0x68 + 0x20 - 1);
        let gdt = [
            0,
            flat(access::CODE0, gran::G64),
            flat(access::DATA0, gran::G32),
            flat(access::CODE3, gran::G64), // 0x18
            flat(access::DATA3, gran::G32), // 0x20
            t0,                             // 0x28
            t1,
        ];
        let mut m = machine(GuestMode::Long64, &code, &gdt);
        io_tss(&mut m, TSS_B);
        let d = m.mem.read_u64(Gpa(GDT + 0x28));
        m.cpu.tr = hvsim::cpu::segment::segment_from_descriptor(0x28, d);
        enter_ring(&mut m, 3, 0x18, 0x20);
        let r = m.run(Some(10));
        match want {
            None => assert_eq!(r.reason, StopReason::DebugExit(6), "{port:#x}: {r}"),
            Some(w) => assert_eq!(exception(&r), Some(w), "{port:#x}: {r}"),
        }
    }
}

/// SDM Vol. 2B "IRET" (TASK-RETURN) and Vol. 3A §6.12.2 "Interrupt Tasks": a guest IRET
/// with NT = 1 returns through the back link; INT n through a task gate in the IDT
/// switches tasks like CALL (NT, back link), and the interrupted task resumes after INT.
#[test]
fn iret_with_nt_and_idt_task_gate_return_to_the_caller() {
    for via_idt in [false, true] {
        let code = asm(32, CODE, |a| {
            a.mov(eax, 0x1111u32)?;
            if via_idt {
                a.int(0x40)?;
            } else {
                a.call_far(0x28, 0)?;
            }
            a.mov(edx, 0xAAAAu32)?;
            a.hlt()
        });
        let mut m = task_machine(&code, 0);
        let task_b = asm(32, TASK_CODE, |a| {
            a.mov(edi, eax)?;
            a.iretd()
        });
        m.load(TASK_CODE, &task_b).unwrap();
        if via_idt {
            // IDT entry 0x40: a task gate naming TSS B.
            let idt = 0x7800u64;
            m.mem.write_u64(Gpa(idt + 0x40 * 8), gate(5, 0, 0x20, 0, 0));
            m.cpu.idtr.base = idt;
            m.cpu.idtr.limit = 0x41 * 8 - 1;
        }
        let r = m.run(Some(100));
        assert!(halted(&r), "{via_idt}: {r}");
        assert_eq!(m.cpu.tr.selector, 0x18, "{via_idt}: back in task A");
        assert_eq!((gdt_type(&m, 0x18), gdt_type(&m, 0x20)), (11, 9));
        assert_eq!(m.cpu.gpr[2], 0xAAAA);
        assert_eq!(m.mem.read_u16(Gpa(TSS_B + tss32::LINK)), 0x18, "back link to A");
        assert_eq!(
            u64::from(m.mem.read_u32(Gpa(TSS_B + tss32::EAX + 4 * 7))),
            0xB0,
            "B ran: EDI = its EAX"
        );
    }
}

/// SDM Vol. 3A §18.3.1.5 "Task-Switch Exception Condition": a switch to a task whose
/// 32-bit TSS has the T flag (bit 0 at offset 64h) raises a #DB trap "after the task
/// switch has completed, before the first instruction of the new task begins
/// executing", with DR6.BT set.
#[test]
fn tss_t_bit_traps_before_the_first_instruction() {
    let code = asm(32, CODE, |a| a.jmp_far(0x20, 0));
    let mut m = task_machine(&code, 0);
    m.mem.write_u16(Gpa(TSS_B + tss32::TRAP), 1);
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((hvsim::cpu::vector::DB, None)), "{r}");
    assert_eq!(r.rip, TASK_CODE, "trap before task B's first instruction");
    assert_eq!(m.cpu.tr.selector, 0x20, "the switch completed");
    assert_ne!(m.cpu.dr[6] & (1 << 15), 0, "DR6.BT");
    assert_eq!(m.cpu.dr[6] & (1 << 14), 0, "not a single step");
    // Without T: no trap.
    let mut m = task_machine(&code, 0);
    let r = m.run(Some(100));
    assert!(halted(&r), "{r}");
}

/// SDM Vol. 3A §6.13 "Error Code" and §6.12.2 "Interrupt Tasks": a fault of the task
/// switch started through an IDT task gate (here TSS B not present: #NP(TSS selector),
/// Table 8-2) carries EXT = 1 when the event is external or an exception, and EXT = 0
/// for INT n.
#[test]
fn task_gate_switch_faults_carry_ext_for_external_events() {
    let setup = |code: &[u8]| {
        let mut m = task_machine(code, 0);
        let idt = 0x7800u64;
        for v in [6u64, 0x40] {
            m.mem.write_u64(Gpa(idt + v * 8), gate(5, 0, 0x20, 0, 0));
        }
        m.cpu.idtr.base = idt;
        m.cpu.idtr.limit = 0x41 * 8 - 1;
        // TSS B's descriptor: P = 0.
        m.mem.write_u8(Gpa(GDT + 0x20 + 5), 0x09);
        m
    };
    let np = |code: u32| Some((vec::NP, Some(code)));
    // INT n: a software interrupt, EXT = 0.
    let mut m = setup(&asm(32, CODE, |a| a.int(0x40)));
    m.set_exception_catch(1 << vec::NP);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), np(0x20), "INT 40h: {r}");
    // An external interrupt: EXT = 1.
    let mut m = setup(&asm(32, CODE, |a| {
        a.nop()?;
        a.hlt()
    }));
    m.set_exception_catch(1 << vec::NP);
    m.cpu.flags.set(FIXED1 | IF);
    m.inject_interrupt(0x40);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), np(0x21), "external interrupt: {r}");
    // An exception (#UD from UD2) through a task gate: EXT = 1.
    let mut m = setup(&asm(32, CODE, |a| a.ud2()));
    m.set_exception_catch(1 << vec::NP);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), np(0x21), "#UD: {r}");
}

/// SDM Vol. 3A §8.3 step 12 and §4.4.1 "PDPTE Registers": with PAE paging a task switch
/// loads CR3 from the new TSS as MOV CR3 does, which loads the four PDPTE registers from
/// it; a PDPTE with P = 1 and a reserved bit is #GP(0), raised in the new task (after the
/// commit point) with CR3 unchanged.
#[test]
fn task_switch_cr3_load_loads_pae_pdptes() {
    const PDPT_A: u64 = 0x10000;
    const PD: u64 = 0x11000;
    const PDPT_B: u64 = 0x12000;
    let code = asm(32, CODE, |a| a.jmp_far(0x20, 0));
    let paged = |pdpte3: u64| {
        let mut m = task_machine(&code, 0);
        // 0-1 GiB identity-mapped with 2-MiB pages, in both address spaces.
        for k in 0..512u64 {
            m.mem.write_u64(Gpa(PD + 8 * k), (k << 21) | 0x83);
        }
        m.mem.write_u64(Gpa(PDPT_A), PD | 1);
        m.mem.write_u64(Gpa(PDPT_B), PD | 1);
        m.mem.write_u64(Gpa(PDPT_B + 8 * 3), pdpte3);
        m.mem.write_u32(Gpa(TSS_B + tss32::CR3), PDPT_B as u32);
        m.cpu.cr3 = PDPT_A;
        m.cpu.pdpte = [PD | 1, 0, 0, 0];
        m.cpu.cr4 |= hvsim::cpu::regs::cr4::PAE;
        m.cpu.cr0 |= cr0::PG;
        m.cpu.update_mode();
        m.cpu.tlb.flush();
        m
    };
    let mut m = paged(0x13000 | 1);
    let r = m.run(Some(100));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.cr3, PDPT_B);
    assert_eq!(m.cpu.pdpte, [PD | 1, 0, 0, 0x13001], "PDPTEs from the new CR3");
    // PDPTE 3 with P and reserved bit 1.
    let mut m = paged(0x13000 | 3);
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((vec::GP, Some(0))), "{r}");
    assert_eq!((m.cpu.tr.selector, r.rip), (0x20, TASK_CODE), "in the new task");
    assert_eq!(m.cpu.cr3, PDPT_A);
}
