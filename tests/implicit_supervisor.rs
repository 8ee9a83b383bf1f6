//! Implicit supervisor-mode accesses and SMAP (SDM Vol. 3A §4.6 "Access Rights"):
//! descriptor-table, IDT and TSS accesses are supervisor-mode accesses whatever the CPL,
//! and "If EFLAGS.AC = 0 or the access is implicit, data may not be read from any
//! user-mode address" (§4.6.1). The harness's long-mode page tables map everything as
//! user pages, so with CR4.SMAP = 1 every implicit access faults, and EFLAGS.AC = 1 lifts
//! SMAP only for the instruction's own (explicit) accesses.

use hvsim::cpu::flags::AC;
use hvsim::cpu::regs::cr4;
use hvsim::cpu::vector;
use hvsim::machine::{selector, CATCH_ALL};
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, StopReport};
use hvsim_mmu::Gpa;
use iced_x86::code_asm::*;

const CODE: u64 = 0x1000;
const DATA: u64 = 0x4000;
const STACK: u64 = 0x8000;

/// #PF error code: present, read, supervisor.
const PF_SUPERVISOR_READ: u32 = 1;

fn run(
    ac: bool,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> (Machine, StopReport) {
    let mut a = CodeAssembler::new(64).unwrap();
    body(&mut a).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(CODE).unwrap();
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.set_exception_catch(CATCH_ALL);
    m.load(CODE, &code).unwrap();
    m.enter_mode(GuestMode::Long64, CODE, STACK).unwrap();
    m.cpu.cr4 |= cr4::SMAP;
    if ac {
        let f = m.cpu.flags.get();
        m.cpu.flags.set(f | AC);
    }
    m.cpu.idtr.base = 0x5000;
    m.cpu.idtr.limit = 0xFFF;
    let r = m.run(Some(1000));
    (m, r)
}

fn page_fault(r: &StopReport) -> Option<(u32, u64)> {
    match r.reason {
        StopReason::Exception { exception, .. } if exception.vector == vector::PF => {
            Some((exception.error_code.unwrap_or(0), exception.cr2))
        }
        _ => None,
    }
}

/// SDM Vol. 3A §4.6.1: with AC = 1 the explicit read of a user page at CPL 0 is allowed,
/// but the GDT read of MOV DS is implicit and faults (#PF, supervisor read, CR2 = the
/// descriptor's address).
#[test]
fn smap_applies_to_gdt_reads_even_with_ac() {
    let (m, r) = run(true, |a| {
        a.mov(eax, dword_ptr(DATA))?; // explicit: allowed with AC = 1
        a.mov(eax, u32::from(selector::DATA))?;
        a.mov(ds, eax)
    });
    let gdt = m.setup_area();
    assert_eq!(page_fault(&r), Some((PF_SUPERVISOR_READ, gdt + u64::from(selector::DATA))), "{r}");
    assert_eq!(m.mem.read_u8(Gpa(r.rip)), 0x8E, "the MOV DS faults, not the explicit read");
}

/// The control: with AC = 0 the explicit read already faults (§4.6.1 "If EFLAGS.AC = 0
/// ..."), and with SMAP off nothing faults.
#[test]
fn smap_explicit_read_needs_ac() {
    let (_, r) = run(false, |a| a.mov(eax, dword_ptr(DATA)));
    assert_eq!(page_fault(&r), Some((PF_SUPERVISOR_READ, DATA)), "{r}");
    let (_, r) = run(true, |a| a.mov(eax, dword_ptr(DATA)));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
}

/// §4.6: "accesses to the interrupt descriptor table (IDT) when delivering an interrupt
/// or exception" are implicit: INT n at CPL 0 with AC = 1 faults on the IDT read.
#[test]
fn smap_applies_to_idt_reads_even_with_ac() {
    let (_, r) = run(true, |a| a.int(0x40));
    assert_eq!(page_fault(&r), Some((PF_SUPERVISOR_READ, 0x5000 + 0x40 * 16)), "{r}");
}

/// §4.6: TSS reads on a change of CPL are implicit: LTR reads the GDT and writes the
/// busy bit; with SMAP it faults before TR changes.
#[test]
fn smap_applies_to_ltr_even_with_ac() {
    let (m, r) = run(true, |a| {
        a.mov(eax, u32::from(selector::TSS))?;
        a.ltr(ax)
    });
    assert_eq!(
        page_fault(&r),
        Some((PF_SUPERVISOR_READ, m.setup_area() + u64::from(selector::TSS))),
        "{r}"
    );
}
