//! Exception and interrupt delivery (SDM Vol. 3A Chapter 6): guest kernels written with
//! `code_asm` install an IVT or IDT, provoke the condition, and the test reads the frame
//! the handler received. Each test names the section it checks.

use hvsim::machine::selector;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, StopReport};
use hvsim_mmu::Gpa;
use iced_x86::code_asm::*;

/// Main code.
const CODE: u64 = 0x1000;
/// Handlers, 0x100 apart.
const HANDLERS: u64 = 0x2000;
/// Scratch data the guest writes.
const DATA: u64 = 0x4000;
/// The IDT (or IVT base for real mode tests that move it).
const IDT: u64 = 0x5000;
/// Ring-0 stack top.
const STACK: u64 = 0x8000;
/// Ring-3 stack top.
const USER_STACK: u64 = 0x9000;
/// IST1 stack top.
const IST_STACK: u64 = 0xA000;

const INT_GATE32: u8 = 0xE;
const TRAP_GATE32: u8 = 0xF;

fn asm(bits: u32, at: u64, f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    f(&mut a).unwrap();
    a.assemble(at).unwrap()
}

/// The address of handler `n`.
fn handler(n: u64) -> u64 {
    HANDLERS + n * 0x100
}

/// A 32-bit IDT gate.
fn gate32(offset: u64, sel: u16, kind: u8, dpl: u8) -> u64 {
    (offset & 0xFFFF)
        | (u64::from(sel) << 16)
        | (u64::from(0x80 | (dpl << 5) | kind) << 40)
        | ((offset >> 16) << 48)
}

/// A 64-bit IDT gate (two quadwords).
fn gate64(offset: u64, sel: u16, kind: u8, dpl: u8, ist: u8) -> [u64; 2] {
    [
        (offset & 0xFFFF)
            | (u64::from(sel) << 16)
            | (u64::from(ist) << 32)
            | (u64::from(0x80 | (dpl << 5) | kind) << 40)
            | (((offset >> 16) & 0xFFFF) << 48),
        offset >> 32,
    ]
}

struct Guest {
    m: Machine,
}

impl Guest {
    fn new(mode: GuestMode, main: Vec<u8>) -> Self {
        let mut m = Machine::new(&MachineConfig::default()).unwrap();
        m.load(CODE, &main).unwrap();
        m.enter_mode(mode, CODE, STACK).unwrap();
        Self { m }
    }

    fn handler(&mut self, n: u64, code: Vec<u8>) {
        self.m.load(handler(n), &code).unwrap();
    }

    /// Installs a 32-bit gate for `vector` and sets IDTR to cover `entries` gates.
    fn gate32(&mut self, vector: u8, g: u64) {
        self.m.mem.write_u64(Gpa(IDT + 8 * u64::from(vector)), g);
    }

    fn gate64(&mut self, vector: u8, g: [u64; 2]) {
        let at = IDT + 16 * u64::from(vector);
        self.m.mem.write_u64(Gpa(at), g[0]);
        self.m.mem.write_u64(Gpa(at + 8), g[1]);
    }

    fn idt(&mut self, limit: u16) {
        self.m.cpu.idtr.base = IDT;
        self.m.cpu.idtr.limit = limit;
    }

    fn run(&mut self) -> StopReport {
        self.m.run(Some(10_000))
    }

    /// The `n`th 32-bit slot above RSP.
    fn stack32(&self, n: u64) -> u32 {
        self.m.mem.read_u32(Gpa(self.m.cpu.gpr[4] + 4 * n))
    }

    fn stack64(&self, n: u64) -> u64 {
        self.m.mem.read_u64(Gpa(self.m.cpu.gpr[4] + 8 * n))
    }
}

/// Emits a return to ring 3 (32-bit user code and data) that continues with the code
/// that follows, on the user stack, with `eflags`: IRETD to an outer privilege level.
fn to_ring3_32(a: &mut CodeAssembler, eflags: u32) -> Result<(), IcedError> {
    a.push(u32::from(selector::USER_DATA | 3))?;
    a.push(USER_STACK as u32)?;
    a.push(eflags)?;
    a.push(u32::from(selector::USER_CODE32 | 3))?;
    // EIP: the address after this sequence (CALL/POP yields our own position).
    let mut here = a.create_label();
    a.call(here)?;
    a.set_label(&mut here)?;
    a.pop(eax)?; // 1 byte
    a.add(eax, 8)?; // 5 bytes (05 id)
    a.push(eax)?; // 1 byte
    a.iretd() // 1 byte
}

fn halted(r: &StopReport) -> bool {
    matches!(r.reason, StopReason::Halted { .. })
}

/// SDM Vol. 3A §20.1.4 "Interrupt and Exception Handling" (real-address mode): INT n and
/// a #DE fault through the IVT; FLAGS, CS, IP pushed; IF and TF cleared; IRET returns.
#[test]
fn real_mode_ivt_delivery_and_iret() {
    let main = asm(16, CODE, |a| {
        a.sti()?;
        a.mov(ax, 0x1234u32)?;
        a.int(0x21)?;
        a.mov(word_ptr(DATA as u32 + 2), bx)?;
        a.xor(cx, cx)?;
        a.div(cx)?; // #DE: the handler skips the two-byte DIV
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Real, main);
    // INT 21h handler: BX = AX + 1, records the flags it runs with.
    g.handler(
        0,
        asm(16, handler(0), |a| {
            a.mov(bx, ax)?;
            a.inc(bx)?;
            a.pushf()?;
            a.pop(dx)?;
            a.mov(word_ptr(DATA as u32), dx)?;
            a.iret()
        }),
    );
    // #DE handler: records the saved IP and advances it past DIV CX (2 bytes).
    g.handler(
        1,
        asm(16, handler(1), |a| {
            a.mov(bp, sp)?;
            a.mov(si, word_ptr(bp))?;
            a.mov(word_ptr(DATA as u32 + 4), si)?;
            a.add(word_ptr(bp), 2)?;
            a.iret()
        }),
    );
    g.m.mem.write_u32(Gpa(0x21 * 4), handler(0) as u32); // offset, segment 0
    g.m.mem.write_u32(Gpa(0), handler(1) as u32);
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(g.m.mem.read_u16(Gpa(DATA + 2)), 0x1235);
    // IF cleared inside the handler, FIXED1 set.
    assert_eq!(g.m.mem.read_u16(Gpa(DATA)) & 0x200, 0);
    // The #DE frame holds the IP of the DIV (a fault).
    let div_ip = u64::from(g.m.mem.read_u16(Gpa(DATA + 4)));
    assert_eq!(g.m.mem.read_u16(Gpa(div_ip)), 0xF1F7, "DIV CX");
    assert!(g.m.cpu.flags.bit(hvsim::cpu::flags::IF), "IRET restored IF");
}

/// SDM Vol. 3A §6.12.1 and §6.12.1.3: a #GP with its error code through a 32-bit
/// interrupt gate (IF cleared) and a #UD through a trap gate (IF kept); the saved EIP is
/// the faulting instruction.
#[test]
fn pm32_fault_frames_interrupt_and_trap_gates() {
    let main = asm(32, CODE, |a| {
        a.sti()?;
        a.mov(ax, 0x5Bu32)?; // beyond the GDT limit
        a.mov(ds, ax)?;
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Protected32, main);
    g.handler(0, asm(32, handler(0), |a| a.hlt()));
    g.gate32(13, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
    g.idt(0xFF);
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(g.m.cpu.rip, handler(0) + 1);
    // Frame: error code, EIP, CS, EFLAGS.
    assert_eq!(g.stack32(0), 0x58);
    let mov_ds = CODE + 1 + 4;
    assert_eq!(u64::from(g.stack32(1)), mov_ds);
    assert_eq!(g.stack32(2), u32::from(selector::CODE32));
    let eflags = g.stack32(3);
    assert_ne!(eflags & 0x200, 0, "the image has IF = 1");
    assert_ne!(eflags & 0x1_0000, 0, "faults push RF = 1");
    assert!(!g.m.cpu.flags.bit(hvsim::cpu::flags::IF), "interrupt gate clears IF");
    assert_eq!(g.m.cpu.gpr[4], STACK - 16);

    // Trap gate for #UD: IF stays set; no error code.
    let main = asm(32, CODE, |a| {
        a.sti()?;
        a.ud2()?;
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Protected32, main);
    g.handler(0, asm(32, handler(0), |a| a.hlt()));
    g.gate32(6, gate32(handler(0), selector::CODE32, TRAP_GATE32, 0));
    g.idt(0xFF);
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(u64::from(g.stack32(0)), CODE + 1);
    assert!(g.m.cpu.flags.bit(hvsim::cpu::flags::IF), "trap gate keeps IF");
}

/// Writes the ring-0 stack of the harness's 32-bit TSS (ESP0, SS0).
fn set_tss32_stack0(m: &mut Machine, esp0: u32, ss0: u16) {
    let tss = m.tss_base();
    m.mem.write_u32(Gpa(tss + 4), esp0);
    m.mem.write_u16(Gpa(tss + 8), ss0);
}

/// SDM Vol. 3A §6.12.1 (Figure 6-4): INT n from ring 3 through a DPL-3 gate switches to
/// the ring-0 stack from the TSS and pushes SS, ESP, EFLAGS, CS, EIP; IRET to the outer
/// level pops them and nulls data segments the user may not use (Vol. 2A "IRET").
#[test]
fn pm32_ring3_int_switches_stack_and_iret_returns() {
    let user_cs = u32::from(selector::USER_CODE32 | 3);
    let user_ss = u32::from(selector::USER_DATA | 3);
    let main = asm(32, CODE, |a| {
        to_ring3_32(a, 0x202)?;
        a.mov(eax, 0x77u32)?;
        a.int(0x80)?;
        // Back in ring 3: record CS, SS and DS, then use the user data segment.
        a.mov(ecx, cs)?;
        a.mov(edx, ss)?;
        a.mov(esi, ds)?;
        a.mov(ds, edx)?;
        a.mov(dword_ptr(DATA as u32), ebx)?;
        a.int(0x81)?; // DPL-0 gate: #GP(0x81 * 8 + 2)
        a.nop()
    });
    let mut g = Guest::new(GuestMode::Protected32, main);
    set_tss32_stack0(&mut g.m, 0x7000, selector::DATA);
    // INT 80h: EBX = EAX * 2, then IRET.
    g.handler(
        0,
        asm(32, handler(0), |a| {
            // DS is null here (IRET to ring 3 cleared it): use the kernel's SS.
            a.push(ss)?;
            a.pop(ds)?;
            a.mov(dword_ptr(DATA as u32 + 8), esp)?;
            a.mov(ebx, eax)?;
            a.add(ebx, eax)?;
            a.iretd()
        }),
    );
    g.handler(1, asm(32, handler(1), |a| a.hlt()));
    g.gate32(0x80, gate32(handler(0), selector::CODE32, INT_GATE32, 3));
    g.gate32(0x81, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
    g.gate32(13, gate32(handler(1), selector::CODE32, INT_GATE32, 0));
    g.idt(0x81 * 8 + 7);
    let r = g.run();
    assert!(halted(&r), "{r}");
    // The handler ran on the TSS stack: 5 slots pushed below ESP0.
    assert_eq!(g.m.mem.read_u32(Gpa(DATA + 8)), 0x7000 - 20);
    assert_eq!(g.m.mem.read_u32(Gpa(DATA)), 0xEE);
    assert_eq!(g.m.cpu.gpr[1] as u32, user_cs);
    assert_eq!(g.m.cpu.gpr[2] as u32, user_ss);
    // DS held the DPL-0 data selector: IRET to ring 3 made it null.
    assert_eq!(g.m.cpu.gpr[6] as u16, 0);
    // The #GP for the DPL-0 gate: error code names the IDT entry; the frame is from
    // ring 3 (SS:ESP pushed).
    assert_eq!(g.stack32(0), 0x81 * 8 + 2);
    assert_eq!(g.stack32(2), user_cs);
    assert_eq!(g.stack32(4), USER_STACK as u32);
    assert_eq!(g.stack32(5), user_ss);
}

/// Writes RSP0 and IST1 of the harness's 64-bit TSS.
fn set_tss64(m: &mut Machine, rsp0: u64, ist1: u64) {
    let tss = m.tss_base();
    m.mem.write_u64(Gpa(tss + 4), rsp0);
    m.mem.write_u64(Gpa(tss + 0x24), ist1);
}

/// SDM Vol. 3A §6.14.2-§6.14.5: a #PF in 64-bit mode through an IST gate: CR2 holds the
/// address, the error code has P/W/U, the frame (SS, RSP, RFLAGS, CS, RIP, error) is on
/// the 16-byte-aligned IST stack, and IRETQ returns after the handler maps the page.
#[test]
fn long64_page_fault_ist_frame_and_iretq() {
    let main = asm(64, CODE, |a| {
        a.mov(rsp, STACK - 8)?; // misaligned: the IST stack is used anyway
        a.mov(rax, 0x4000_0000u64)?; // beyond the 4 GiB identity map: not present
        a.mov(qword_ptr(rax), rax)?;
        a.mov(rbx, qword_ptr(rax))?;
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Long64, main);
    // Map 1 GiB.. by pointing the PDPT slot... simpler: the handler records and skips.
    g.handler(
        0,
        asm(64, handler(0), |a| {
            a.mov(qword_ptr(DATA), rsp)?;
            a.mov(rcx, cr2)?;
            a.mov(qword_ptr(DATA + 8), rcx)?;
            // Skip the faulting 3-byte MOV [RAX], RAX.
            a.add(qword_ptr(rsp + 8), 3)?;
            a.add(rsp, 8)?; // pop the error code
            a.iretq()
        }),
    );
    set_tss64(&mut g.m, 0, IST_STACK + 8);
    g.gate64(14, gate64(handler(0), selector::CODE64, INT_GATE32, 0, 1));
    g.idt(16 * 16 - 1);
    // Make 0x4000_0000 not present: clear PDPT entry 1 (the second GiB).
    let pdpt = g.m.setup_area() + 0x2000;
    g.m.mem.write_u64(Gpa(pdpt + 8), 0);
    let r = g.run();
    // The MOV RBX,[RAX] faults too; the handler skips 3 bytes each time.
    assert!(halted(&r), "{r}");
    // IST1 (IST_STACK + 8) aligned down to 16, then six pushes.
    assert_eq!(g.m.mem.read_u64(Gpa(DATA)), IST_STACK - 48);
    assert_eq!(g.m.mem.read_u64(Gpa(DATA + 8)), 0x4000_0000);
    assert_eq!(g.m.cpu.cr2, 0x4000_0000);
    assert_eq!(g.m.cpu.gpr[4], STACK - 8, "IRETQ restored RSP");
    let frame = IST_STACK - 48;
    // The second fault (a read) overwrote the frame: error code 0 (not present, read).
    assert_eq!(g.m.mem.read_u64(Gpa(frame)), 0);
    assert_eq!(g.m.mem.read_u64(Gpa(frame + 16)), u64::from(selector::CODE64));
    assert_eq!(g.m.mem.read_u64(Gpa(frame + 32)), STACK - 8);
    assert_eq!(g.m.mem.read_u64(Gpa(frame + 40)), u64::from(selector::DATA));
}

/// SDM Vol. 3A §6.14.4: INT from 64-bit ring 3 loads RSP0 from the TSS and a null SS
/// with RPL 0; IRETQ back to ring 3 pops SS:RSP.
#[test]
fn long64_ring3_int_and_iretq() {
    let user_cs = u64::from(selector::USER_CODE64 | 3);
    let user_ss = u64::from(selector::USER_DATA | 3);
    let main = asm(64, CODE, |a| {
        let mut ring3 = a.create_label();
        a.push(user_ss as i32)?;
        a.push(USER_STACK as i32)?;
        a.push(0x202)?;
        a.push(user_cs as i32)?;
        a.lea(rax, qword_ptr(ring3))?;
        a.push(rax)?;
        a.iretq()?;
        a.set_label(&mut ring3)?;
        a.int(0x80)?;
        a.mov(rcx, cs)?;
        a.mov(rdx, ss)?;
        a.mov(rsi, rsp)?;
        a.int(0x80)?;
        a.nop()
    });
    let mut g = Guest::new(GuestMode::Long64, main);
    set_tss64(&mut g.m, 0x7008, 0);
    g.handler(
        0,
        asm(64, handler(0), |a| {
            a.inc(qword_ptr(DATA))?;
            a.mov(rbx, ss)?;
            a.mov(qword_ptr(DATA + 8), rbx)?;
            a.cmp(qword_ptr(DATA), 2)?;
            let mut done = a.create_label();
            a.je(done)?;
            a.iretq()?;
            a.set_label(&mut done)?;
            a.hlt()
        }),
    );
    g.gate64(0x80, gate64(handler(0), selector::CODE64, INT_GATE32, 3, 0));
    g.idt(0x81 * 16 - 1);
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(g.m.mem.read_u64(Gpa(DATA)), 2);
    assert_eq!(g.m.mem.read_u64(Gpa(DATA + 8)), 0, "SS is null with RPL 0");
    assert_eq!((g.m.cpu.gpr[1], g.m.cpu.gpr[2], g.m.cpu.gpr[6]), (user_cs, user_ss, USER_STACK));
    // RSP0 0x7008 aligned to 0x7000, five pushes.
    assert_eq!(g.m.cpu.gpr[4], 0x7000 - 40);
}

/// SDM Vol. 3A §6.15 "Interrupt 8", Table 6-5: a #GP whose IDT entry is beyond the IDT
/// limit raises a second #GP during delivery: contributory + contributory = #DF, error
/// code 0, delivered through vector 8.
#[test]
fn contributory_pair_is_double_fault() {
    let main = asm(64, CODE, |a| {
        a.mov(rax, 1u64 << 40)?; // non-canonical? no: reserved CR3 bits
        a.mov(rax, 0x8000_0000_0000_0000u64)?;
        a.mov(qword_ptr(rax), rax)?; // non-canonical: #GP(0)
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Long64, main);
    g.handler(0, asm(64, handler(0), |a| a.hlt()));
    g.gate64(8, gate64(handler(0), selector::CODE64, INT_GATE32, 0, 0));
    g.idt(9 * 16 - 1); // vectors 0-8 only
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(g.m.cpu.rip, handler(0) + 1);
    assert_eq!(g.stack64(0), 0, "#DF pushes error code 0");
    assert_eq!(g.stack64(1), CODE + 20, "saved RIP is the faulting MOV");
}

/// SDM Vol. 3A §6.15 "Interrupt 8": a fault while delivering #DF shuts the processor
/// down; the report lists the chain.
#[test]
fn fault_during_double_fault_is_shutdown() {
    let main = asm(32, CODE, |a| {
        a.mov(ax, 0x5Bu32)?;
        a.mov(ds, ax)
    });
    let mut g = Guest::new(GuestMode::Protected32, main);
    g.idt(0); // no IDT entries at all
    let r = g.run();
    match &r.reason {
        StopReason::Shutdown { exceptions } => {
            let v: Vec<(u8, Option<u32>)> =
                exceptions.iter().map(|e| (e.vector, e.error_code)).collect();
            assert_eq!(
                v,
                vec![(13, Some(0x58)), (13, Some(13 * 8 + 3)), (8, Some(0)), (13, Some(8 * 8 + 3))]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.exit_status(), 4);
    assert!(r.to_string().contains("triple fault"), "{r}");
}

/// SDM Vol. 3A Table 6-5: a page fault while delivering a page fault (the handler's
/// stack is not mapped) is a #DF.
#[test]
fn page_fault_during_page_fault_delivery_is_double_fault() {
    let main = asm(64, CODE, |a| {
        a.mov(rsp, 0x4000_1000u64)?; // unmapped stack
        a.mov(rax, 0x4000_0000u64)?;
        a.mov(qword_ptr(rax), rax)?;
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Long64, main);
    g.handler(0, asm(64, handler(0), |a| a.hlt()));
    g.handler(1, asm(64, handler(1), |a| a.hlt()));
    g.gate64(14, gate64(handler(0), selector::CODE64, INT_GATE32, 0, 0));
    g.gate64(8, gate64(handler(1), selector::CODE64, INT_GATE32, 0, 1));
    set_tss64(&mut g.m, 0, IST_STACK);
    g.idt(16 * 16 - 1);
    let pdpt = g.m.setup_area() + 0x2000;
    g.m.mem.write_u64(Gpa(pdpt + 8), 0);
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(g.m.cpu.rip, handler(1) + 1, "#DF handler");
    // CR2 holds the address of the second fault (the stack push).
    assert_eq!(g.m.cpu.cr2, 0x4000_0FF8);
}

/// SDM Vol. 3A §6.8.1 "Masking Maskable Hardware Interrupts" and Vol. 2A "HLT": an
/// external interrupt waits while IF = 0, wakes HLT when IF = 1, and the frame's EIP
/// is the instruction after HLT.
#[test]
fn external_interrupt_wakes_hlt_only_with_if() {
    let main = asm(32, CODE, |a| {
        a.hlt()?;
        a.sti()?;
        a.hlt()?;
        a.mov(eax, 5u32)?;
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Protected32, main);
    g.handler(
        0,
        asm(32, handler(0), |a| {
            a.inc(dword_ptr(DATA as u32))?;
            a.iretd()
        }),
    );
    g.gate32(0x20, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
    g.idt(0x21 * 8 - 1);
    g.m.inject_interrupt(0x20);
    let r = g.run();
    assert_eq!(r.reason, StopReason::Halted { interrupts_enabled: false });
    assert_eq!(g.m.pending_interrupt(), Some(0x20), "IF = 0: still pending");
    // Resume past the first HLT by hand (as an NMI or INIT would), then STI; HLT.
    g.m.cpu.halted = false;
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(g.m.mem.read_u32(Gpa(DATA)), 1, "delivered once");
    assert_eq!(g.m.pending_interrupt(), None);
    assert_eq!(g.m.cpu.gpr[0], 5, "returned after the HLT");
}

/// SDM Vol. 2B "STI" and Vol. 3A §6.8.3: after STI (with IF = 0) and after MOV SS,
/// interrupts are inhibited for exactly one instruction.
#[test]
fn sti_and_mov_ss_shadow_one_instruction() {
    let main = asm(32, CODE, |a| {
        a.sti()?;
        a.mov(eax, 1u32)?;
        a.mov(ebx, 2u32)?;
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Protected32, main);
    g.handler(
        0,
        asm(32, handler(0), |a| {
            a.mov(dword_ptr(DATA as u32), eax)?;
            a.mov(dword_ptr(DATA as u32 + 4), ebx)?;
            a.iretd()
        }),
    );
    g.gate32(0x20, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
    g.idt(0x21 * 8 - 1);
    g.m.inject_interrupt(0x20);
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(g.m.mem.read_u32(Gpa(DATA)), 1, "the instruction after STI ran first");
    assert_eq!(g.m.mem.read_u32(Gpa(DATA + 4)), 0, "but not the one after that");

    // MOV SS with IF = 1: the next instruction runs before the interrupt.
    let main = asm(32, CODE, |a| {
        a.mov(ecx, ss)?;
        a.sti()?;
        a.nop()?;
        a.nop()?;
        a.mov(ss, ecx)?;
        a.mov(eax, 1u32)?;
        a.mov(ebx, 2u32)?;
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Protected32, main);
    g.handler(
        0,
        asm(32, handler(0), |a| {
            a.mov(dword_ptr(DATA as u32), eax)?;
            a.mov(dword_ptr(DATA as u32 + 4), ebx)?;
            a.iretd()
        }),
    );
    g.gate32(0x20, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
    g.idt(0x21 * 8 - 1);
    // Run through the MOV SS, then raise the interrupt: the shadow holds it back for
    // one instruction.
    let r = g.m.run(Some(5));
    assert_eq!(r.reason, StopReason::InsnLimit);
    g.m.inject_interrupt(0x20);
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(g.m.mem.read_u32(Gpa(DATA)), 1);
    assert_eq!(g.m.mem.read_u32(Gpa(DATA + 4)), 0);
}

/// SDM Vol. 3A §6.7.1 "Handling Multiple NMIs": NMI delivery blocks further NMIs until
/// the next IRET; one NMI raised meanwhile stays pending and is delivered after IRET.
/// NMI is not masked by IF.
#[test]
fn nmi_is_blocked_until_iret() {
    let main = asm(32, CODE, |a| {
        let mut spin = a.create_label();
        a.set_label(&mut spin)?;
        a.inc(eax)?;
        a.cmp(dword_ptr(DATA as u32), 2)?;
        a.jne(spin)?;
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Protected32, main);
    g.handler(
        0,
        asm(32, handler(0), |a| {
            a.nop()?;
            a.nop()?;
            a.nop()?;
            a.inc(dword_ptr(DATA as u32))?;
            a.iretd()
        }),
    );
    g.gate32(2, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
    g.idt(0xFF);
    g.m.run(Some(5));
    g.m.inject_nmi();
    // Two instructions into the handler, a second NMI arrives.
    g.m.run(Some(2));
    assert_eq!(g.m.cpu.rip, handler(0) + 2);
    assert!(g.m.cpu.nmi_blocked);
    g.m.inject_nmi();
    g.m.run(Some(2));
    assert_eq!(g.m.mem.read_u32(Gpa(DATA)), 1, "blocked: the handler was not re-entered");
    assert!(g.m.cpu.nmi_pending);
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(g.m.mem.read_u32(Gpa(DATA)), 2, "the pending NMI came after IRET");
    assert!(!g.m.cpu.nmi_blocked);
}

/// SDM Vol. 2A "INT n/INTO/INT3/INT1" and "BOUND": INT3, INTO and INT1 are traps (the
/// saved EIP is the next instruction), BOUND's #BR is a fault (the BOUND itself); INT3
/// and INTO check the gate DPL, INT1 does not.
#[test]
fn int3_into_int1_and_bound() {
    for (vector, body, fault_len) in
        [(3u8, 0usize, None), (4, 1, None), (1, 2, None), (5, 3, Some(0usize))]
    {
        let main = asm(32, CODE, |a| {
            a.mov(eax, 0x7FFF_FFFFu32)?;
            a.add(eax, 1)?; // OF = 1
            a.mov(dword_ptr(DATA as u32 + 0x10), 0)?;
            a.mov(dword_ptr(DATA as u32 + 0x14), 5)?;
            a.mov(ecx, 9u32)?;
            match body {
                0 => a.int3()?,
                1 => a.into()?,
                2 => a.int1()?,
                _ => a.bound(ecx, qword_ptr(DATA as u32 + 0x10))?,
            }
            a.hlt()
        });
        let mut g = Guest::new(GuestMode::Protected32, main.clone());
        g.handler(0, asm(32, handler(0), |a| a.hlt()));
        g.gate32(vector, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
        g.idt(0xFF);
        let r = g.run();
        assert!(halted(&r), "vector {vector}: {r}");
        let insn_at = CODE + main.len() as u64 - 1 - if body == 3 { 6 } else { 1 };
        let saved = u64::from(g.stack32(0));
        match fault_len {
            Some(_) => assert_eq!(saved, insn_at, "vector {vector} is a fault"),
            None => assert_eq!(saved, CODE + main.len() as u64 - 1, "vector {vector} is a trap"),
        }
    }
    // From ring 3 with DPL-0 gates: INT3 faults with #GP(3*8+2), INT1 is delivered.
    for (insn, expect_gp) in [(0, true), (1, false)] {
        let main = asm(32, CODE, |a| {
            to_ring3_32(a, 0x2)?;
            if insn == 0 {
                a.int3()
            } else {
                a.int1()
            }
        });
        let mut g = Guest::new(GuestMode::Protected32, main);
        set_tss32_stack0(&mut g.m, 0x7000, selector::DATA);
        g.handler(0, asm(32, handler(0), |a| a.hlt()));
        g.handler(1, asm(32, handler(1), |a| a.hlt()));
        g.gate32(3, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
        g.gate32(1, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
        g.gate32(13, gate32(handler(1), selector::CODE32, INT_GATE32, 0));
        g.idt(0xFF);
        let r = g.run();
        assert!(halted(&r), "{r}");
        if expect_gp {
            assert_eq!(g.m.cpu.rip, handler(1) + 1);
            assert_eq!(g.stack32(0), 3 * 8 + 2, "EXT clear for INT3");
        } else {
            assert_eq!(g.m.cpu.rip, handler(0) + 1);
        }
    }
}

/// The harness's catch mask stops the run at the chosen vectors only; others are
/// delivered.
#[test]
fn catch_mask_selects_vectors() {
    let main = asm(32, CODE, |a| {
        a.ud2()?;
        a.hlt()
    });
    let mut g = Guest::new(GuestMode::Protected32, main.clone());
    g.handler(0, asm(32, handler(0), |a| a.hlt()));
    g.gate32(6, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
    g.idt(0xFF);
    g.m.set_exception_catch(1 << 13);
    let r = g.run();
    assert!(halted(&r), "#UD is delivered: {r}");
    let mut g = Guest::new(GuestMode::Protected32, main);
    g.m.set_exception_catch(1 << 6);
    let r = g.run();
    assert!(matches!(r.reason, StopReason::Exception { .. }), "{r}");
    assert_eq!(r.rip, CODE);
}

/// SDM Vol. 3A §20.3 and §20.4 (virtual-8086 mode with CR4.VME): IRETD at CPL 0 with
/// VM in the image enters V86 mode; INT n whose redirection-bitmap bit is clear goes
/// through the 8086 program's IVT (IOPL < 3: VIF stands in for IF); CLI changes VIF;
/// INT n with its bit set and IOPL < 3 is #GP(0), delivered to the protected-mode
/// handler with ES, DS, FS, GS pushed.
#[test]
fn v86_mode_vme_redirection_and_gp_to_monitor() {
    const V86_CODE: u64 = 0x3000;
    const V86_HANDLER: u64 = 0x3100;
    let main = asm(32, CODE, |a| {
        // Frame for IRETD to V86: EIP, CS, EFLAGS (VM, VIF), ESP, SS, ES, DS, FS, GS.
        for v in [0x50u32, 0x60, 0x70, 0x80, 0x0, 0x0900, 0x8_0000 | 0x2_0000 | 0x2] {
            a.push(v)?;
        }
        a.push((V86_CODE >> 4) as u32)?;
        a.push(0u32)?;
        a.iretd()
    });
    let mut g = Guest::new(GuestMode::Protected32, main);
    g.m.cpu.cr4 |= 1; // VME
    set_tss32_stack0(&mut g.m, 0x7000, selector::DATA);
    // Redirection bitmap: the 32 bytes below the I/O map base (0x68): bit 0x22 set.
    let tss = g.m.tss_base();
    g.m.mem.write_u8(Gpa(tss + 0x48 + (0x22 >> 3)), 1 << (0x22 & 7));
    g.m.load(
        V86_CODE,
        &asm(16, 0, |a| {
            a.int(0x21)?;
            a.cli()?;
            a.int(0x22)
        }),
    )
    .unwrap();
    g.m.load(
        V86_HANDLER,
        &asm(16, 0, |a| {
            a.mov(ax, 0x99u32)?;
            a.iret()
        }),
    )
    .unwrap();
    g.m.mem.write_u32(Gpa(0x21 * 4), (V86_HANDLER >> 4 << 16) as u32);
    g.handler(0, asm(32, handler(0), |a| a.hlt()));
    g.gate32(13, gate32(handler(0), selector::CODE32, INT_GATE32, 0));
    g.idt(0xFF);
    let r = g.run();
    assert!(halted(&r), "{r}");
    assert_eq!(g.m.cpu.gpr[0] & 0xFFFF, 0x99, "the IVT handler ran");
    assert_eq!(g.m.cpu.rip, handler(0) + 1, "#GP reached the monitor");
    assert_eq!(g.stack32(0), 0, "#GP(0)");
    assert_eq!(u64::from(g.stack32(1)), 3, "IP of INT 22h (after INT 21h and CLI)");
    assert_eq!(u64::from(g.stack32(2)), V86_CODE >> 4);
    let eflags = u64::from(g.stack32(3));
    assert_ne!(eflags & 0x2_0000, 0, "VM in the image");
    assert_eq!(eflags & 0x8_0000, 0, "CLI cleared VIF");
    assert_eq!((g.stack32(4), g.stack32(5)), (0x0900, 0));
    assert_eq!([g.stack32(6), g.stack32(7), g.stack32(8), g.stack32(9)], [0x80, 0x70, 0x60, 0x50]);
    assert_eq!(g.m.cpu.seg[3].selector, 0, "DS null in the monitor");
}
