//! Segmentation and privilege (SDM Vol. 3A Chapter 5 "Protection"; Vol. 2A "CALL",
//! "JMP", "LAR", "LSL"; Vol. 2B "MOV", "RET", "VERR/VERW", "ARPL"): every descriptor-load
//! fault of MOV to DS/SS, far JMP, far CALL and far RET with its vector and error code;
//! call gates (16/32-bit and 64-bit) from ring 3 to ring 0 with the TSS stack switch and
//! parameter copy, and RETF back to the outer level with its data-segment nulling; and
//! the segment-inspection instructions ARPL, LAR, LSL, VERR and VERW.

#[path = "support/descriptors.rs"]
mod descriptors;

use descriptors::*;
use hvsim::cpu::regs::SegReg;
use hvsim::cpu::task::tss32;

/// Where far transfers land (code ending in HLT).
const TARGET: u64 = 0x3000;
/// The 32-bit TSS used for inner stacks.
const TSS: u64 = 0x5000;
/// ESP0 in that TSS.
const ESP0: u64 = 0x9000;
/// The slot under test and a second one.
const SLOT_A: u16 = 0x30;
const SLOT_B: u16 = 0x38;
/// A selector beyond the GDT limit.
const BEYOND: u16 = 0x40;

/// The GDT of the table-driven tests: flat ring-0 and ring-3 code and data, a TSS, and
/// the two slots a case fills.
fn gdt_with(a: u64, b: u64) -> Vec<u64> {
    vec![
        0,
        flat(access::CODE0, gran::G32), // 0x08
        flat(access::DATA0, gran::G32), // 0x10
        flat(access::CODE3, gran::G32), // 0x18
        flat(access::DATA3, gran::G32), // 0x20
        system(9, 0, TSS as u32, 0x67), // 0x28
        a,                              // 0x30
        b,                              // 0x38
    ]
}

/// Points TR at the TSS at GDT 0x28 (busy) whose SS0:ESP0 is `ss0`:[`ESP0`].
fn set_tss(m: &mut Machine, ss0: u16) {
    let d = m.mem.read_u64(Gpa(GDT + 0x28));
    let mut tr = hvsim::cpu::segment::segment_from_descriptor(0x28, d);
    tr.attr |= 2;
    m.cpu.tr = tr;
    m.mem.write_u32(Gpa(TSS + tss32::ESP0), ESP0 as u32);
    m.mem.write_u16(Gpa(TSS + tss32::ESP0 + 4), ss0);
}

#[derive(Copy, Clone, Debug)]
enum Insn {
    MovDs,
    MovSs,
    JmpFar,
    CallFar,
    /// RETF with this SS:ESP above CS:EIP (used when returning to an outer level).
    Retf(u16),
}

struct Case {
    what: &'static str,
    insn: Insn,
    sel: u16,
    a: u64,
    b: u64,
    cpl: u8,
    ss0: u16,
    want: Option<(u8, u32)>,
}

fn case(what: &'static str, insn: Insn, sel: u16, a: u64, want: Option<(u8, u32)>) -> Case {
    Case { what, insn, sel, a, b: 0, cpl: 0, ss0: SLOT_B, want }
}

impl Case {
    fn cpl3(self) -> Self {
        Case { cpl: 3, ..self }
    }
    fn b(self, b: u64) -> Self {
        Case { b, ..self }
    }
    fn ss0(self, ss0: u16) -> Self {
        Case { ss0, ..self }
    }
}

fn code_for(insn: Insn, sel: u16) -> Vec<u8> {
    asm(32, CODE, |a| {
        match insn {
            Insn::MovDs => {
                a.mov(eax, u32::from(sel))?;
                a.mov(ds, ax)?;
            }
            Insn::MovSs => {
                a.mov(eax, u32::from(sel))?;
                a.mov(ss, ax)?;
            }
            Insn::JmpFar => a.jmp_far(sel, TARGET as u32)?,
            Insn::CallFar => a.call_far(sel, TARGET as u32)?,
            Insn::Retf(ss_sel) => {
                a.push(u32::from(ss_sel))?;
                a.push(0x6000u32)?;
                a.push(u32::from(sel))?;
                a.push(TARGET as u32)?;
                a.retf()?;
            }
        }
        a.hlt()
    })
}

fn run_case(c: &Case) -> (Machine, StopReport) {
    let code = code_for(c.insn, c.sel);
    let mut m = machine(GuestMode::Protected32, &code, &gdt_with(c.a, c.b));
    m.load(TARGET, &[0xF4]).unwrap();
    set_tss(&mut m, c.ss0);
    if c.cpl == 3 {
        enter_ring(&mut m, 3, 0x18, 0x20);
    } else {
        enter_ring(&mut m, 0, 0x08, 0x10);
    }
    let r = m.run(Some(100));
    (m, r)
}

/// Reached a HLT: at CPL 0 it halts, at CPL 3 it is #GP(0) on the HLT itself.
fn reached_hlt(r: &StopReport) -> bool {
    halted(r) || (exception(r) == Some((vec::GP, Some(0))) && r.bytes.first() == Some(&0xF4))
}

#[test]
fn descriptor_load_faults_table() {
    use vec::{GP, NP, SS, TS};
    let code0 = flat(access::CODE0, gran::G32);
    let data0 = flat(access::DATA0, gran::G32);
    let data3 = flat(access::DATA3, gran::G32);
    let gate_to = |sel: u16, dpl: u8| gate(12, dpl, sel, TARGET as u32, 0);
    let not_present = |d: u64| d & !(1u64 << 47);
    let cases = [
        // SDM Vol. 2B "MOV": DS/ES/FS/GS.
        case("DS: beyond the GDT limit", Insn::MovDs, BEYOND, 0, Some((GP, 0x40))),
        case("DS: TI=1 with a null LDTR", Insn::MovDs, 0x0C, 0, Some((GP, 0x0C))),
        case("DS: system descriptor", Insn::MovDs, SLOT_A, system(2, 0, 0, 0xFF), Some((GP, 0x30))),
        case("DS: execute-only code", Insn::MovDs, SLOT_A, flat(0x99, gran::G32), Some((GP, 0x30))),
        case("DS: readable code", Insn::MovDs, SLOT_A, code0, None),
        case("DS: RPL > DPL", Insn::MovDs, SLOT_A | 3, data0, Some((GP, 0x30))),
        case("DS: CPL > DPL", Insn::MovDs, SLOT_A | 3, data0, Some((GP, 0x30))).cpl3(),
        case(
            "DS: conforming code ignores DPL",
            Insn::MovDs,
            SLOT_A | 3,
            flat(0x9F, gran::G32),
            None,
        )
        .cpl3(),
        case("DS: not present", Insn::MovDs, SLOT_A, not_present(data0), Some((NP, 0x30))),
        case("DS: null", Insn::MovDs, 0, 0, None),
        case("DS: expand-down data", Insn::MovDs, SLOT_A, desc(0, 0xFFF, 0x97, gran::BYTE32), None),
        // SS.
        case("SS: null", Insn::MovSs, 0, 0, Some((GP, 0))),
        case("SS: beyond the GDT limit", Insn::MovSs, BEYOND, 0, Some((GP, 0x40))),
        case("SS: RPL != CPL", Insn::MovSs, SLOT_A | 3, data0, Some((GP, 0x30))),
        case("SS: read-only data", Insn::MovSs, SLOT_A, flat(0x91, gran::G32), Some((GP, 0x30))),
        case("SS: code", Insn::MovSs, SLOT_A, code0, Some((GP, 0x30))),
        case("SS: DPL != CPL", Insn::MovSs, SLOT_A, data3, Some((GP, 0x30))),
        case("SS: not present", Insn::MovSs, SLOT_A, not_present(data0), Some((SS, 0x30))),
        case("SS: writable data", Insn::MovSs, SLOT_A, data0, None),
        // SDM Vol. 2A "JMP".
        case("JMP: null", Insn::JmpFar, 0, 0, Some((GP, 0))),
        case("JMP: beyond the GDT limit", Insn::JmpFar, BEYOND, 0, Some((GP, 0x40))),
        case("JMP: data", Insn::JmpFar, SLOT_A, data0, Some((GP, 0x30))),
        case(
            "JMP: non-conforming DPL > CPL",
            Insn::JmpFar,
            SLOT_A,
            flat(access::CODE3, gran::G32),
            Some((GP, 0x30)),
        ),
        case("JMP: non-conforming RPL > CPL", Insn::JmpFar, SLOT_A | 3, code0, Some((GP, 0x30))),
        case(
            "JMP: conforming DPL > CPL",
            Insn::JmpFar,
            SLOT_A,
            flat(0xFF, gran::G32),
            Some((GP, 0x30)),
        ),
        case("JMP: conforming DPL < CPL", Insn::JmpFar, SLOT_A | 3, flat(0x9F, gran::G32), None)
            .cpl3(),
        case("JMP: code not present", Insn::JmpFar, SLOT_A, not_present(code0), Some((NP, 0x30))),
        case(
            "JMP: offset beyond the limit",
            Insn::JmpFar,
            SLOT_A,
            desc(0, 0xFFF, 0x9B, gran::BYTE32),
            Some((GP, 0)),
        ),
        case(
            "JMP: interrupt gate",
            Insn::JmpFar,
            SLOT_A,
            gate(14, 0, 0x08, 0, 0),
            Some((GP, 0x30)),
        ),
        case(
            "JMP: call gate DPL < CPL",
            Insn::JmpFar,
            SLOT_A | 3,
            gate_to(0x08, 0),
            Some((GP, 0x30)),
        )
        .cpl3(),
        case(
            "JMP: call gate not present",
            Insn::JmpFar,
            SLOT_A,
            not_present(gate_to(0x08, 0)),
            Some((NP, 0x30)),
        ),
        case(
            "JMP: call gate to an inner level",
            Insn::JmpFar,
            SLOT_A | 3,
            gate_to(0x08, 3),
            Some((GP, 0x08)),
        )
        .cpl3(),
        case(
            "JMP: call gate with a null target",
            Insn::JmpFar,
            SLOT_A,
            gate_to(0, 0),
            Some((GP, 0)),
        ),
        case("JMP: call gate, same level", Insn::JmpFar, SLOT_A, gate_to(0x08, 0), None),
        case("JMP: busy TSS", Insn::JmpFar, SLOT_A, system(11, 0, 0x6000, 0x67), Some((GP, 0x30))),
        // SDM Vol. 2A "CALL".
        case("CALL: null", Insn::CallFar, 0, 0, Some((GP, 0))),
        case("CALL: data", Insn::CallFar, SLOT_A, data0, Some((GP, 0x30))),
        case("CALL: call gate to data", Insn::CallFar, SLOT_A, gate_to(0x10, 0), Some((GP, 0x10))),
        case(
            "CALL: call gate, target not present",
            Insn::CallFar,
            SLOT_A,
            gate_to(SLOT_B, 0),
            Some((NP, 0x38)),
        )
        .b(not_present(code0)),
        case("CALL: call gate, same level", Insn::CallFar, SLOT_A, gate_to(0x08, 0), None),
        case(
            "CALL: call gate RPL > DPL",
            Insn::CallFar,
            SLOT_A | 3,
            gate_to(0x08, 0),
            Some((GP, 0x30)),
        ),
        case("CALL: inward, null SS0", Insn::CallFar, SLOT_A | 3, gate_to(0x08, 3), Some((TS, 0)))
            .cpl3()
            .ss0(0),
        case(
            "CALL: inward, read-only SS0",
            Insn::CallFar,
            SLOT_A | 3,
            gate_to(0x08, 3),
            Some((TS, 0x38)),
        )
        .cpl3()
        .b(flat(0x91, gran::G32)),
        case(
            "CALL: inward, SS0 DPL != new CPL",
            Insn::CallFar,
            SLOT_A | 3,
            gate_to(0x08, 3),
            Some((TS, 0x38)),
        )
        .cpl3()
        .b(data3),
        case(
            "CALL: inward, SS0 RPL != new CPL",
            Insn::CallFar,
            SLOT_A | 3,
            gate_to(0x08, 3),
            Some((TS, 0x38)),
        )
        .cpl3()
        .b(data0)
        .ss0(SLOT_B | 1),
        case(
            "CALL: inward, SS0 not present",
            Insn::CallFar,
            SLOT_A | 3,
            gate_to(0x08, 3),
            Some((SS, 0x38)),
        )
        .cpl3()
        .b(not_present(data0)),
        case(
            "CALL: inward, SS0 beyond the GDT",
            Insn::CallFar,
            SLOT_A | 3,
            gate_to(0x08, 3),
            Some((TS, 0x40)),
        )
        .cpl3()
        .ss0(BEYOND),
        case("CALL: inward", Insn::CallFar, SLOT_A | 3, gate_to(0x08, 3), None).cpl3().b(data0),
        // SDM Vol. 2B "RET".
        case("RETF: RPL < CPL", Insn::Retf(0x23), 0x08, 0, Some((GP, 0x08))).cpl3(),
        case("RETF: to data", Insn::Retf(0x10), SLOT_A, data0, Some((GP, 0x30))),
        case(
            "RETF: non-conforming DPL != RPL",
            Insn::Retf(0x10),
            SLOT_A,
            flat(access::CODE3, gran::G32),
            Some((GP, 0x30)),
        ),
        case(
            "RETF: code not present",
            Insn::Retf(0x10),
            SLOT_A,
            not_present(code0),
            Some((NP, 0x30)),
        ),
        case("RETF outer: null SS", Insn::Retf(0), 0x1B, 0, Some((GP, 0))),
        case("RETF outer: SS DPL != RPL", Insn::Retf(SLOT_B | 3), 0x1B, 0, Some((GP, 0x38)))
            .b(data0),
        case("RETF outer: SS RPL != CS RPL", Insn::Retf(0x20), 0x1B, 0, Some((GP, 0x20))),
        case("RETF outer: SS not present", Insn::Retf(SLOT_B | 3), 0x1B, 0, Some((SS, 0x38)))
            .b(not_present(data3)),
        case("RETF outer: SS beyond the GDT", Insn::Retf(BEYOND | 3), 0x1B, 0, Some((GP, 0x40))),
        case("RETF outer", Insn::Retf(0x23), 0x1B, 0, None),
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let before = (m_cs_after_setup(c), c.cpl);
        let (m, r) = run_case(c);
        let ok = match c.want {
            Some((v, code)) => {
                // The faulting instruction changed nothing: CS and CPL are the caller's.
                exception(&r) == Some((v, Some(code)))
                    && r.bytes.first() != Some(&0xF4)
                    && (m.cpu.seg[SegReg::Cs as usize].selector, m.cpu.cpl) == before
            }
            None => reached_hlt(&r),
        };
        if !ok {
            failures.push(format!("{} ({:?} {:#x}): {r}", c.what, c.insn, c.sel));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The CS selector a case starts with.
fn m_cs_after_setup(c: &Case) -> u16 {
    if c.cpl == 3 {
        0x1B
    } else {
        0x08
    }
}

/// SDM Vol. 3A §5.8.5 "Stack Switching" (Figure 5-13) and Vol. 2B "RET": ring 0 enters
/// ring 3 with RETF to an outer level (ES, DPL 0, is nulled), ring 3 calls a DPL-3
/// 32-bit call gate with two parameters into ring 0 (stack from TSS SS0:ESP0, old SS:ESP
/// and the parameters copied, CS:EIP pushed), and the handler returns with `RETF 8`.
#[test]
fn call_gate_ring3_to_ring0_with_parameter_copy_and_retf_back() {
    const RING3: u64 = 0x2000;
    const HANDLER: u64 = 0x3000;
    const ESP3: u32 = 0x7000;
    let ring0 = asm(32, CODE, |a| {
        a.mov(eax, 0x10u32)?;
        a.mov(es, ax)?;
        a.push(0x23u32)?;
        a.push(ESP3)?;
        a.push(0x1Bu32)?;
        a.push(RING3 as u32)?;
        a.retf()
    });
    let ring3 = asm(32, RING3, |a| {
        a.push(0x1111u32)?;
        a.push(0x2222u32)?;
        a.call_far(SLOT_A | 3, 0xDEAD)?;
        a.mov(edi, esp)?;
        a.hlt() // #GP(0) at CPL 3: the end of the test
    });
    let handler = asm(32, HANDLER, |a| {
        a.mov(eax, dword_ptr(esp + 8))?;
        a.mov(ecx, dword_ptr(esp + 12))?;
        a.mov(ebx, dword_ptr(esp + 16))?;
        a.mov(ebp, dword_ptr(esp + 20))?;
        a.mov(edx, esp)?;
        a.mov(esi, ss)?;
        a.db(&[0xCA, 0x08, 0x00]) // retf 8
    });
    let mut m =
        machine(GuestMode::Protected32, &ring0, &gdt_with(gate(12, 3, 0x08, HANDLER as u32, 2), 0));
    m.load(RING3, &ring3).unwrap();
    m.load(HANDLER, &handler).unwrap();
    enter_ring(&mut m, 0, 0x08, 0x10);
    set_tss(&mut m, 0x10);
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((vec::GP, Some(0))), "{r}");
    assert_eq!(r.bytes.first(), Some(&0xF4), "{r}");
    let g = &m.cpu.gpr;
    // In ring 0: the parameters in order, old SS:ESP, the new stack from the TSS.
    assert_eq!((g[0], g[1]), (0x2222, 0x1111));
    assert_eq!((g[3], g[5]), (u64::from(ESP3) - 8, 0x23));
    assert_eq!((g[2], g[6]), (ESP0 - 24, 0x10));
    // Back in ring 3 with the parameters released from the outer stack.
    assert_eq!(g[7], u64::from(ESP3));
    assert_eq!(m.cpu.cpl, 3);
    assert_eq!(
        (m.cpu.seg[SegReg::Cs as usize].selector, m.cpu.seg[SegReg::Ss as usize].selector),
        (0x1B, 0x23)
    );
    // ES (DPL 0) was nulled by the first return to ring 3; DS (DPL 0 too) likewise.
    assert_eq!(m.cpu.seg[SegReg::Es as usize].selector, 0);
    assert_eq!(m.cpu.seg[SegReg::Ds as usize].selector, 0);
    // The pushed frame on the ring-0 stack: EIP, CS, 2 parameters, ESP, SS.
    let frame: Vec<u32> = (0..6).map(|k| m.mem.read_u32(Gpa(ESP0 - 24 + 4 * k))).collect();
    assert_eq!(frame, [RING3 as u32 + 5 + 5 + 7, 0x1B, 0x2222, 0x1111, ESP3 - 8, 0x23]);
}

/// SDM Vol. 3A §5.8.3.1 "IA-32e Mode Call Gates", §5.8.5.1 "Stack Switching in IA-32e
/// Mode": a 16-byte call gate from 64-bit ring 3 to ring 0 takes RSP0 from the 64-bit
/// TSS with a null SS (RPL 0) and pushes SS, RSP, CS, RIP as quadwords; RETFQ returns to
/// ring 3 and reloads SS.
#[test]
fn call_gate_64bit_ring3_to_ring0_and_back() {
    const RING3: u64 = 0x2000;
    const HANDLER: u64 = 0x3000;
    const TSS64: u64 = 0x5000;
    const RSP0: u64 = 0x9000;
    const RSP3: u64 = 0x7000;
    const FAR_PTR: u64 = 0x4000;
    let ring0 = asm(64, CODE, |a| {
        a.mov(eax, 0x28u32)?;
        a.ltr(ax)?;
        a.push(0x23)?;
        a.push(RSP3 as i32)?;
        a.push(0x1B)?;
        a.push(RING3 as i32)?;
        a.db(&[0x48, 0xCB]) // retfq
    });
    let ring3 = asm(64, RING3, |a| {
        a.call(fword_ptr(FAR_PTR))?;
        a.mov(rdi, rsp)?;
        a.hlt()
    });
    let handler = asm(64, HANDLER, |a| {
        a.mov(rax, qword_ptr(rsp))?;
        a.mov(rbx, qword_ptr(rsp + 8))?;
        a.mov(rcx, qword_ptr(rsp + 16))?;
        a.mov(rdx, qword_ptr(rsp + 24))?;
        a.mov(rsi, rsp)?;
        a.mov(ebp, ss)?;
        a.db(&[0x48, 0xCB]) // retfq
    });
    let [t0, t1] = tss64(TSS64, 0x67);
    let [g0, g1] = gate64(3, 0x08, HANDLER);
    let gdt = [
        0,
        flat(access::CODE0, gran::G64), // 0x08
        flat(access::DATA0, gran::G32), // 0x10
        flat(access::CODE3, gran::G64), // 0x18
        flat(access::DATA3, gran::G32), // 0x20
        t0,                             // 0x28
        t1,
        g0, // 0x38
        g1,
    ];
    let mut m = machine(GuestMode::Long64, &ring0, &gdt);
    m.load(RING3, &ring3).unwrap();
    m.load(HANDLER, &handler).unwrap();
    m.mem.write_u64(Gpa(TSS64 + hvsim::cpu::task::tss64::RSP0), RSP0);
    m.mem.write_u32(Gpa(FAR_PTR), 0xDEAD);
    m.mem.write_u16(Gpa(FAR_PTR + 4), 0x3B);
    enter_ring(&mut m, 0, 0x08, 0x10);
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((vec::GP, Some(0))), "{r}");
    assert_eq!(r.bytes.first(), Some(&0xF4), "{r}");
    let g = &m.cpu.gpr;
    assert_eq!((g[0], g[3], g[1], g[2]), (RING3 + 7, 0x1B, RSP3, 0x23));
    assert_eq!((g[6], g[5]), (RSP0 - 32, 0), "the inner SS is null with RPL 0");
    assert_eq!(g[7], RSP3);
    assert_eq!((m.cpu.cpl, m.cpu.seg[SegReg::Ss as usize].selector), (3, 0x23));
    // The gate's upper half must have type 0: otherwise #GP(gate selector).
    let mut m = machine(GuestMode::Long64, &ring0, &gdt);
    m.load(RING3, &ring3).unwrap();
    m.mem.write_u64(Gpa(TSS64 + hvsim::cpu::task::tss64::RSP0), RSP0);
    m.mem.write_u32(Gpa(FAR_PTR), 0xDEAD);
    m.mem.write_u16(Gpa(FAR_PTR + 4), 0x3B);
    m.mem.write_u64(Gpa(GDT + 0x40), 0x0C00 << 32);
    enter_ring(&mut m, 0, 0x08, 0x10);
    let r = m.run(Some(100));
    assert_eq!(exception(&r), Some((vec::GP, Some(0x38))), "{r}");
    assert_eq!(m.cpu.cpl, 3);
}

/// What LAR, LSL, VERR and VERW report for one selector: `None` is ZF = 0.
struct Inspect {
    what: &'static str,
    sel: u16,
    desc: u64,
    cpl: u8,
    lar: Option<u32>,
    lsl: Option<u32>,
    verr: bool,
    verw: bool,
}

/// Runs LAR, LSL, VERR, VERW on `sel` (destinations preset to 0xFFFF_FFFF, which ZF = 0
/// leaves) and returns (EAX, ZF), (EBX, ZF), ZF, ZF.
fn inspect(mode: GuestMode, sel: u16, gdt: &[u64], cpl: u8) -> [(u64, bool); 4] {
    let bits = if mode == GuestMode::Long64 { 64 } else { 32 };
    let code = asm(bits, CODE, |a| {
        a.mov(ecx, u32::from(sel))?;
        a.mov(eax, 0xFFFF_FFFFu32)?;
        a.mov(ebx, 0xFFFF_FFFFu32)?;
        a.lar(eax, ecx)?;
        a.setz(byte_ptr(0x4000))?;
        a.lsl(ebx, ecx)?;
        a.setz(byte_ptr(0x4001))?;
        a.verr(cx)?;
        a.setz(byte_ptr(0x4002))?;
        a.verw(cx)?;
        a.setz(byte_ptr(0x4003))?;
        a.hlt()
    });
    let mut m = machine(mode, &code, gdt);
    let (cs_sel, data_sel) = if cpl == 3 { (0x18, 0x20) } else { (0x08, 0x10) };
    enter_ring(&mut m, cpl, cs_sel, data_sel);
    let r = m.run(Some(100));
    assert!(reached_hlt(&r), "{r}");
    let z = |k: u64| m.mem.read_u8(Gpa(0x4000 + k)) == 1;
    [(m.cpu.gpr[0], z(0)), (m.cpu.gpr[3], z(1)), (0, z(2)), (0, z(3))]
}

/// SDM Vol. 2A "LAR" (Table 3-52), "LSL" (Table 3-60), Vol. 2B "VERR/VERW": valid
/// types, the DPL >= CPL/RPL rule (not for conforming code), the returned access rights
/// (descriptor bits 63:32 AND 00F0FF00H) and scaled limit, in protected and IA-32e mode.
#[test]
fn lar_lsl_verr_verw_table() {
    let data0 = desc(0x1000, 0xABCDE, 0x93, gran::G32);
    let ar = |d: u64| Some(((d >> 32) & 0x00F0_FF00) as u32);
    let p32 = |what, sel, desc: u64, cpl, lsl, verr, verw, lar_ok: bool| Inspect {
        what,
        sel,
        desc,
        cpl,
        lar: if lar_ok { ar(desc) } else { None },
        lsl,
        verr,
        verw,
    };
    let cases = [
        p32("data DPL 0", SLOT_A, data0, 0, Some(0xABCD_EFFF), true, true, true),
        p32(
            "read-only data",
            SLOT_A,
            flat(0x91, gran::G32),
            0,
            Some(0xFFFF_FFFF),
            true,
            false,
            true,
        ),
        p32(
            "execute-only code",
            SLOT_A,
            desc(0, 0xFFFF, 0x99, 0),
            0,
            Some(0xFFFF),
            false,
            false,
            true,
        ),
        p32("readable code", SLOT_A, desc(0, 0xFFFF, 0x9B, 0), 0, Some(0xFFFF), true, false, true),
        p32("data DPL 0 at CPL 3", SLOT_A | 3, data0, 3, None, false, false, false),
        p32("data DPL 0 with RPL 3", SLOT_A | 3, data0, 0, None, false, false, false),
        p32(
            "conforming code DPL 0 at CPL 3",
            SLOT_A | 3,
            desc(0, 0xFFF, 0x9F, 0),
            3,
            Some(0xFFF),
            true,
            false,
            true,
        ),
        p32(
            "available 32-bit TSS",
            SLOT_A,
            system(9, 0, 0x5000, 0x67),
            0,
            Some(0x67),
            false,
            false,
            true,
        ),
        p32("LDT", SLOT_A, system(2, 0, 0x5000, 0x1F), 0, Some(0x1F), false, false, true),
        p32("32-bit call gate", SLOT_A, gate(12, 0, 0x08, 0, 0), 0, None, false, false, true),
        p32("task gate", SLOT_A, gate(5, 0, 0x28, 0, 0), 0, None, false, false, true),
        p32("interrupt gate", SLOT_A, gate(14, 0, 0x08, 0, 0), 0, None, false, false, false),
        p32("null selector", 0, 0, 0, None, false, false, false),
        p32("beyond the GDT", BEYOND, 0, 0, None, false, false, false),
    ];
    for c in &cases {
        let got = inspect(GuestMode::Protected32, c.sel, &gdt_with(c.desc, 0), c.cpl);
        let want = [
            (c.lar.map_or(0xFFFF_FFFF, u64::from), c.lar.is_some()),
            (c.lsl.map_or(0xFFFF_FFFF, u64::from), c.lsl.is_some()),
            (0, c.verr),
            (0, c.verw),
        ];
        assert_eq!(got, want, "{}", c.what);
    }
    // IA-32e mode: 16-bit TSS and task gates are invalid; 16-byte LDT descriptors with a
    // zero upper type are valid.
    let gdt64 = |a: u64, a_hi: u64| {
        let mut g = gdt_with(a, a_hi);
        g[1] = flat(access::CODE0, gran::G64);
        g[3] = flat(access::CODE3, gran::G64);
        g
    };
    let ldt = system(2, 0, 0x5000, 0x1F);
    let got = inspect(GuestMode::Long64, SLOT_A, &gdt64(ldt, 0), 0);
    assert_eq!(got[0], (ar(ldt).map_or(0, u64::from), true), "LDT: LAR");
    assert_eq!(got[1], (0x1F, true), "LDT: LSL");
    let got = inspect(GuestMode::Long64, SLOT_A, &gdt64(ldt, 0x0200_0000_0000), 0);
    assert_eq!((got[0].1, got[1].1), (false, false), "LDT with a non-zero upper type");
    let tss16 = system(1, 0, 0x5000, 0x2B);
    let got = inspect(GuestMode::Long64, SLOT_A, &gdt64(tss16, 0), 0);
    assert_eq!((got[0].1, got[1].1), (false, false), "16-bit TSS in IA-32e mode");
}

/// SDM Vol. 2A "ARPL": raises the destination RPL to the source's (ZF = 1) or leaves it
/// (ZF = 0); #UD in real mode; in 64-bit mode opcode 63 is MOVSXD.
#[test]
fn arpl_adjusts_rpl_and_is_movsxd_in_64bit_mode() {
    for mode in [GuestMode::Protected16, GuestMode::Protected32] {
        let bits = if mode == GuestMode::Protected16 { 16 } else { 32 };
        let code = asm(bits, CODE, |a| {
            a.mov(ax, 0x1230u32)?;
            a.mov(bx, 0x0002u32)?;
            a.arpl(ax, bx)?;
            a.setz(cl)?;
            a.mov(dx, 0x4563u32)?;
            a.arpl(dx, bx)?;
            a.setz(ch)?;
            a.hlt()
        });
        let mut m = machine(mode, &code, &gdt_with(0, 0));
        let r = m.run(Some(100));
        assert!(halted(&r), "{mode:?}: {r}");
        assert_eq!((m.cpu.gpr[0] & 0xFFFF, m.cpu.gpr[2] & 0xFFFF), (0x1232, 0x4563), "{mode:?}");
        assert_eq!(m.cpu.gpr[1] & 0xFFFF, 0x0001, "{mode:?}: ZF 1 then 0");
    }
    let code = asm(16, CODE, |a| a.arpl(ax, bx));
    let mut m = machine(GuestMode::Real, &code, &[]);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), Some((vec::UD, None)), "{r}");
    // LAR in real mode is #UD too.
    let code = asm(16, CODE, |a| a.lar(ax, bx));
    let mut m = machine(GuestMode::Real, &code, &[]);
    let r = m.run(Some(10));
    assert_eq!(exception(&r), Some((vec::UD, None)), "{r}");
    // 64-bit mode: 63 /r is MOVSXD.
    let mut m = machine(GuestMode::Long64, &[0x48, 0x63, 0xC1, 0xF4], &[]);
    m.cpu.gpr[1] = 0x8000_0000;
    let r = m.run(Some(10));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.gpr[0], 0xFFFF_FFFF_8000_0000);
}

/// A null selector loaded into FS or GS in 64-bit mode: the segment becomes unusable,
/// and the base, which 64-bit mode still uses for FS/GS, follows the vendor: Intel
/// processors clear it, AMD processors without CPUID Fn8000_0021_EAX[NullSelectorClearsBase]
/// (the AMD model) leave it unchanged (APM Vol. 2 §4.5.3 "Segment Registers in 64-Bit
/// Mode"; SDM Vol. 3A §3.4.4 "Segment Loading Instructions in IA-32e Mode"). The guest
/// reads the base back with RDMSR IA32_FS_BASE/IA32_GS_BASE.
#[test]
fn null_fs_gs_load_in_64bit_mode_follows_the_vendor() {
    use hvsim::cpu::msr::{IA32_FS_BASE, IA32_GS_BASE};
    let mut a = CodeAssembler::new(64).unwrap();
    for (n, msr) in [IA32_FS_BASE, IA32_GS_BASE].into_iter().enumerate() {
        a.mov(ecx, msr).unwrap();
        a.mov(eax, 0x1234_5000u32 + n as u32).unwrap();
        a.mov(edx, 0x7Fu32).unwrap();
        a.wrmsr().unwrap();
    }
    a.xor(eax, eax).unwrap();
    a.mov(fs, eax).unwrap();
    a.mov(gs, eax).unwrap();
    a.mov(ecx, IA32_FS_BASE).unwrap();
    a.rdmsr().unwrap();
    a.mov(esi, eax).unwrap();
    a.mov(ecx, IA32_GS_BASE).unwrap();
    a.rdmsr().unwrap();
    a.mov(edi, eax).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(CODE).unwrap();
    for (vendor, want) in
        [(hvsim::Vendor::Intel, [0, 0]), (hvsim::Vendor::Amd, [0x7F_1234_5000u64, 0x7F_1234_5001])]
    {
        let mut m = Machine::new(&MachineConfig { vendor, ..Default::default() }).unwrap();
        m.set_exception_catch(CATCH_ALL);
        m.load(CODE, &code).unwrap();
        m.enter_mode(GuestMode::Long64, CODE, STACK).unwrap();
        let r = m.run(Some(100));
        assert!(matches!(r.reason, StopReason::Halted { .. }), "{vendor:?}: {r}");
        let fs_seg = m.cpu.seg[SegReg::Fs as usize];
        let gs_seg = m.cpu.seg[SegReg::Gs as usize];
        assert_eq!([fs_seg.base, gs_seg.base], want, "{vendor:?}");
        assert_eq!([m.cpu.gpr[6], m.cpu.gpr[7]], want.map(|b| b & 0xFFFF_FFFF), "{vendor:?}");
        assert!(!fs_seg.present() && fs_seg.selector == 0, "{vendor:?}: FS unusable");
    }
}
