//! MONITOR/MWAIT: SDM Vol. 2B "MONITOR" and "MWAIT", Vol. 3A §9.10.4 "MONITOR/MWAIT
//! Instruction", Vol. 2A "CPUID" leaf 05H; APM Vol. 3 "MONITOR", "MWAIT".

use hvsim::cpu::exec::{Monitor, MONITOR_LINE_SIZE};
use hvsim::cpuid::{Cpuid, Feature};
use hvsim::machine::CATCH_ALL;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, StopReport, Vendor};
use iced_x86::code_asm::*;

const CODE: u64 = 0x1000;
const HANDLER: u64 = 0x3000;
const NMI_HANDLER: u64 = 0x3100;
const DATA: u64 = 0x4000;
const FLAG: u64 = 0x5000;
const STACK: u64 = 0x8000;
const AP_VECTOR: u8 = 0x09; // the AP starts at 0x9000
const IRQ: u8 = 0x40;
const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;
const RBX: usize = 3;

type Body = Box<dyn Fn(&mut CodeAssembler) -> Result<(), IcedError>>;

/// Assembles `body` followed by HLT at `at`.
fn assemble(
    bits: u32,
    at: u64,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    body(&mut a).unwrap();
    a.hlt().unwrap();
    a.assemble(at).unwrap()
}

fn machine(mode: GuestMode, code: &[u8], catch: bool) -> Machine {
    let mut m = Machine::new(&MachineConfig { mem_size: 4 << 20, ..Default::default() }).unwrap();
    if catch {
        m.set_exception_catch(CATCH_ALL);
    }
    m.load(CODE, code).unwrap();
    m.enter_mode(mode, CODE, STACK).unwrap();
    m
}

fn run64(body: Body) -> (Machine, StopReport) {
    let code = assemble(64, CODE, |a| body(a));
    let mut m = machine(GuestMode::Long64, &code, true);
    let r = m.run(Some(1000));
    (m, r)
}

fn exception(r: &StopReport) -> Option<(u8, Option<u32>)> {
    match &r.reason {
        StopReason::Exception { exception, .. } => Some((exception.vector, exception.error_code)),
        _ => None,
    }
}

fn halted(r: &StopReport) -> bool {
    matches!(r.reason, StopReason::Halted { .. })
}

// SDM Vol. 3A §9.10.4: "If the preceding MONITOR instruction did not successfully arm an
// address range or if the MONITOR instruction has not been executed prior to executing
// MWAIT, then the processor will not enter the implementation-specific optimized state.
// Execution will resume at the instruction following the MWAIT." A store to the armed
// range between MONITOR and MWAIT triggers the monitor, so MWAIT does not wait either.
#[test]
fn mwait_without_armed_monitor_is_a_nop() {
    let (m, r) = run64(Box::new(|a| {
        a.xor(ecx, ecx)?;
        a.xor(eax, eax)?;
        a.mwait()?;
        a.mov(ebx, 1u32)
    }));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.gpr[RBX], 1, "continued after MWAIT");
    assert_eq!(m.cpu.monitor, Monitor::default());

    // Armed, then the line is written through a TLB entry filled writable before MONITOR:
    // the write still triggers the monitor.
    let (m, r) = run64(Box::new(|a| {
        a.mov(byte_ptr(DATA + 0x800), 0)?; // same page, other line: a writable TLB entry
        a.mov(eax, DATA as u32)?;
        a.xor(ecx, ecx)?;
        a.xor(edx, edx)?;
        a.monitor()?;
        a.mov(byte_ptr(DATA + 0x3F), 1)?; // the last byte of the armed line
        a.xor(eax, eax)?;
        a.mwait()?;
        a.mov(ebx, 1u32)
    }));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.gpr[RBX], 1, "the write triggered the monitor: MWAIT was a NOP");
    assert_eq!(m.cpu.monitor.armed, None);
}

// SDM Vol. 2B "MONITOR": the address is DS:rAX (segment override allowed), translated
// to the physical address of the line that is monitored (CPUID.05H:EAX/EBX: 64 bytes).
// A write to another line does not trigger the monitor; a write by a device (any
// physical write) to the line wakes the waiting MWAIT, which continues after itself.
#[test]
fn monitor_arms_the_line_of_the_effective_address() {
    let code = assemble(64, CODE, |a| {
        a.mov(eax, (DATA + 0x47) as u32)?;
        a.xor(ecx, ecx)?;
        a.mov(edx, 0xFFFF_FFFFu32)?; // hints: ignored
        a.monitor()?;
        a.mov(byte_ptr(DATA + 0x80), 1)?; // another line of the page
        a.mov(byte_ptr(DATA + 0x3F), 1)?; // the line before
        a.mov(eax, 0xF0u32)?; // C-state hint
        a.mwait()?;
        a.mov(ebx, 1u32)
    });
    let mut m = machine(GuestMode::Long64, &code, true);
    let r = m.run(Some(1000));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.monitor.armed, Some(DATA + 0x40));
    assert!(m.cpu.monitor.waiting && m.cpu.halted, "waiting in MWAIT");
    assert_eq!(m.cpu.gpr[RBX], 0);
    let after_mwait = r.rip;
    // Nothing wakes it.
    let r = m.run(Some(1000));
    assert!(halted(&r) && r.rip == after_mwait, "{r}");
    // A device writes the line.
    m.phys_write(hvsim_mmu::Gpa(DATA + 0x7F), &[5]);
    assert!(!m.cpu.halted, "woken by the write");
    let r = m.run(Some(1000));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.gpr[RBX], 1, "continued after MWAIT");
    assert_eq!(r.rip, after_mwait + 6, "at the HLT after MOV EBX");
    assert_eq!(m.cpu.monitor, Monitor::default());

    // FS override (64-bit mode: FS base applies), and the line is 64-byte aligned.
    let code = assemble(64, CODE, |a| {
        a.mov(eax, 0x10u32)?;
        a.xor(ecx, ecx)?;
        a.db(&[0x64, 0x0F, 0x01, 0xC8]) // FS: MONITOR
    });
    let mut m = machine(GuestMode::Long64, &code, true);
    m.cpu.seg[4].base = DATA + 0x1000;
    let r = m.run(Some(1000));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.monitor.armed, Some(DATA + 0x1000), "FS:RAX");
    assert_eq!(MONITOR_LINE_SIZE, 64);
}

// SDM Vol. 2B "MONITOR", Protected Mode/64-Bit Mode Exceptions: "#GP(0) If ECX ≠ 0",
// "#GP(0) If the linear address of the operand in the CS, DS, ES, FS, or GS segment is in
// a non-canonical form", "#SS(0) If the SS register is used to access memory and it
// contains a non-canonical form", "#PF(fault-code) For a page fault", "#UD If current
// privilege level is not 0". "MWAIT": "#GP(0) If ECX[31:1] ≠ 0", "#UD If CPL > 0".
#[test]
fn monitor_mwait_faults() {
    let cases: Vec<(&str, Body, (u8, Option<u32>))> = vec![
        (
            "MONITOR ECX != 0",
            Box::new(|a| {
                a.mov(eax, DATA as u32)?;
                a.mov(ecx, 1u32)?;
                a.monitor()
            }),
            (13, Some(0)),
        ),
        (
            "MONITOR non-canonical",
            Box::new(|a| {
                a.mov(rax, NON_CANONICAL)?;
                a.xor(ecx, ecx)?;
                a.monitor()
            }),
            (13, Some(0)),
        ),
        (
            "SS: MONITOR non-canonical",
            Box::new(|a| {
                a.mov(rax, NON_CANONICAL)?;
                a.xor(ecx, ecx)?;
                a.db(&[0x36, 0x0F, 0x01, 0xC8])
            }),
            (12, Some(0)),
        ),
        (
            "MONITOR not-present page (a read: error code 0)",
            Box::new(|a| {
                a.mov(rax, 0x40_0000_0000u64)?;
                a.xor(ecx, ecx)?;
                a.monitor()
            }),
            (14, Some(0)),
        ),
        (
            "MWAIT ECX bit 1",
            Box::new(|a| {
                a.mov(ecx, 2u32)?;
                a.mwait()
            }),
            (13, Some(0)),
        ),
        (
            "MWAIT ECX bit 31",
            Box::new(|a| {
                a.mov(ecx, 0x8000_0001u32)?;
                a.mwait()
            }),
            (13, Some(0)),
        ),
    ];
    for (what, body, want) in cases {
        let (m, r) = run64(body);
        assert_eq!(exception(&r), Some(want), "{what}: {r}");
        if want.0 == 14 {
            assert_eq!(Machine::exception_of(&r).map(|e| e.cr2), Some(0x40_0000_0000), "{what}");
        }
        assert_eq!(m.cpu.monitor.armed, None, "{what}: nothing armed");
    }

    // At CPL 3 (the harness's user segments), both are #UD, before the ECX check.
    for body in [
        (|a: &mut CodeAssembler| a.monitor()) as fn(&mut CodeAssembler) -> Result<(), IcedError>,
        |a| a.mwait(),
    ] {
        let code = assemble(64, CODE, |a| {
            a.mov(ecx, 2u32)?;
            body(a)
        });
        let mut m = machine(GuestMode::Long64, &code, true);
        for s in [1, 2] {
            m.cpu.seg[s].selector |= 3;
            m.cpu.seg[s].attr |= 3 << 5;
        }
        m.cpu.update_mode();
        let r = m.run(Some(100));
        assert_eq!(exception(&r), Some((6, None)), "CPL 3: {r}");
    }
}

// SDM Vol. 2A "CPUID", Table 3-8, leaf 05H: EAX[15:0] smallest and EBX[15:0] largest
// monitor-line size, ECX[0] enumeration of MWAIT extensions, ECX[1] interrupts as break
// events even when disabled; EDX: sub C-states (none). CPUID.01H:ECX[3] MONITOR.
#[test]
fn cpuid_leaf_5_values() {
    for v in [Vendor::Intel, Vendor::Amd] {
        let c = Cpuid::new(v);
        assert!(c.has(Feature::Monitor), "{v:?}");
        assert_eq!(c.query(1, 0)[2] >> 3 & 1, 1, "{v:?} CPUID.1:ECX.MONITOR");
        assert_eq!(c.query(5, 0), [64, 64, 0b11, 0], "{v:?}");
        let mut without = c.clone();
        without.set_feature(Feature::Monitor, false);
        assert_eq!(without.query(5, 0), [0; 4], "{v:?} without MONITOR");
    }
    // And as the guest reads it.
    let (m, r) = run64(Box::new(|a| {
        a.mov(eax, 5u32)?;
        a.cpuid()
    }));
    assert!(halted(&r), "{r}");
    assert_eq!(&m.cpu.gpr[..4], &[64, 0b11, 0, 64]); // RAX, RCX, RDX, RBX
}

/// Real mode: IVT entries for IRQ and NMI; the handlers store the return IP at DATA
/// (IRQ) or DATA + 2 (NMI) and halt. The main program: MONITOR DS:AX = FLAG, MWAIT with
/// `ecx`, then BX = 1, HLT.
fn real_mode_waiter(sti: bool, ecx_value: u32) -> Machine {
    let code = assemble(16, CODE, |a| {
        if sti {
            a.sti()?;
        } else {
            a.cli()?;
        }
        a.mov(ax, FLAG as u32)?;
        a.xor(ecx, ecx)?;
        a.monitor()?;
        a.mov(ecx, ecx_value)?;
        a.mwait()?;
        a.mov(bx, 1u32)
    });
    let mut m = machine(GuestMode::Real, &code, false);
    let handler = |slot: u64| {
        assemble(16, 0, move |a| {
            a.pop(ax)?;
            a.mov(word_ptr(DATA as u32 + slot as u32), ax)?;
            a.cli()
        })
    };
    m.load(HANDLER, &handler(0)).unwrap();
    m.load(NMI_HANDLER, &handler(2)).unwrap();
    let ivt = |m: &mut Machine, v: u64, at: u64| {
        m.phys_write(hvsim_mmu::Gpa(4 * v), &[at as u8, (at >> 8) as u8, 0, 0]);
    };
    ivt(&mut m, u64::from(IRQ), HANDLER);
    ivt(&mut m, 2, NMI_HANDLER);
    m
}

fn word_at(m: &Machine, gpa: u64) -> u16 {
    let mut b = [0u8; 2];
    m.mem.read(hvsim_mmu::Gpa(gpa), &mut b);
    u16::from_le_bytes(b)
}

// SDM Vol. 2B "MWAIT": an interrupt ends the wait; with EFLAGS.IF = 1 it is delivered
// and returns to the instruction after MWAIT (like HLT). An NMI ends it too.
#[test]
fn interrupt_wakes_mwait_and_returns_after_it() {
    let mut m = real_mode_waiter(true, 0);
    let r = m.run(Some(1000));
    assert!(halted(&r) && m.cpu.monitor.waiting, "{r}");
    let after_mwait = r.rip;
    m.inject_interrupt(IRQ);
    let r = m.run(Some(1000));
    assert!(halted(&r), "{r}");
    assert_eq!(u64::from(word_at(&m, DATA)), after_mwait, "return IP");
    assert_eq!(m.cpu.gpr[RBX], 0, "the handler halted before MOV BX");
    assert_eq!(m.cpu.monitor, Monitor::default(), "the wake-up ends the monitor");

    let mut m = real_mode_waiter(false, 0);
    let r = m.run(Some(1000));
    let after_mwait = r.rip;
    assert!(halted(&r) && m.cpu.monitor.waiting, "{r}");
    m.inject_nmi();
    let r = m.run(Some(1000));
    assert!(halted(&r), "{r}");
    assert_eq!(u64::from(word_at(&m, DATA + 2)), after_mwait, "NMI return IP");
}

// SDM Vol. 2B "MWAIT", Table 4-21: with ECX[0] = 1, "interrupts [are treated] as break
// events even if masked by EFLAGS.IF": the wait ends, the interrupt stays pending and
// execution continues after MWAIT. With ECX[0] = 0 a masked interrupt does not end it.
#[test]
fn masked_interrupt_wakes_mwait_only_with_ecx_bit_0() {
    let mut m = real_mode_waiter(false, 1);
    let r = m.run(Some(1000));
    assert!(halted(&r) && m.cpu.monitor.waiting, "{r}");
    m.inject_interrupt(IRQ);
    let r = m.run(Some(1000));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.gpr[RBX], 1, "continued after MWAIT");
    assert_eq!(m.pending_interrupt(), Some(IRQ), "still pending, IF = 0");
    assert_eq!(word_at(&m, DATA), 0, "not delivered");

    let mut m = real_mode_waiter(false, 0);
    let r = m.run(Some(1000));
    let after_mwait = r.rip;
    m.inject_interrupt(IRQ);
    let r = m.run(Some(1000));
    assert!(halted(&r) && r.rip == after_mwait, "{r}");
    assert!(m.cpu.monitor.waiting, "still waiting");
    assert_eq!(m.cpu.gpr[RBX], 0);
}

// SDM Vol. 3A §9.10.4: a store by another processor to the armed range ends the MWAIT.
// The AP (real mode, paging off) first writes another line of the page (its TLB then
// holds a writable entry), lets the BSP arm the line, and after a delay writes the line:
// the BSP reads the AP's value only if it waited for that write.
#[test]
fn write_by_another_vcpu_wakes_the_waiting_vcpu() {
    const READY: u64 = FLAG + 0x100;
    let bsp = assemble(64, CODE, |a| {
        let mut spin = a.create_label();
        a.set_label(&mut spin)?;
        a.pause()?;
        a.cmp(byte_ptr(READY), 1)?;
        a.jne(spin)?;
        a.mov(eax, FLAG as u32)?;
        a.xor(ecx, ecx)?;
        a.monitor()?;
        a.mwait()?;
        a.movzx(ebx, byte_ptr(FLAG))
    });
    let ap = assemble(16, u64::from(AP_VECTOR) << 12, |a| {
        a.xor(ax, ax)?;
        a.mov(ds, ax)?;
        a.mov(byte_ptr(READY as u32), 1)?;
        a.mov(cx, 3000u32)?;
        let mut delay = a.create_label();
        a.set_label(&mut delay)?;
        a.loop_(delay)?;
        a.mov(byte_ptr(FLAG as u32), 0x5A)?;
        a.cli()
    });
    let cfg = MachineConfig { cpus: 2, quantum: 1000, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.load(CODE, &bsp).unwrap();
    m.load(u64::from(AP_VECTOR) << 12, &ap).unwrap();
    m.enter_mode(GuestMode::Long64, CODE, STACK).unwrap();
    m.init_vcpu(1);
    m.startup_vcpu(1, AP_VECTOR);
    let r = m.run(Some(1_000_000));
    assert!(halted(&r), "{r}");
    let bsp = m.vcpu(0).unwrap();
    assert_eq!(bsp.gpr[RBX], 0x5A, "the BSP waited in MWAIT for the AP's write");
    assert_eq!(bsp.monitor, Monitor::default());
    let ap = m.vcpu(1).unwrap();
    assert!(ap.halted && ap.insn_count > 3000, "the AP ran its delay");
}

// SDM Vol. 3A Table 9-1: INIT returns the processor to its power-up state; a vCPU
// waiting in MWAIT leaves it with no monitor armed.
#[test]
fn init_ends_mwait() {
    let mut m = real_mode_waiter(false, 0);
    let r = m.run(Some(1000));
    assert!(halted(&r) && m.cpu.monitor.waiting, "{r}");
    m.init_vcpu(0);
    assert!(!m.cpu.halted);
    assert_eq!(m.cpu.monitor, Monitor::default());
}
