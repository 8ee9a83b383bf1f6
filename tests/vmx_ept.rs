//! Nested VMX address translation (SDM Vol. 3C ch. 29 "VMX Support for Address
//! Translation"): EPT walks of L2's guest-physical accesses, EPT violations and
//! misconfigurations with their exit information, EPT A/D flags, large EPT pages, the
//! EPTP and VPID entry checks, INVEPT/INVVPID in root operation and as L2 exits, and
//! unrestricted guests in real mode and unpaged protected mode.
//!
//! Layout on top of `support/vmx_l1.rs`: L2's own 4-level page tables at GPT_PML4..GPT_PT
//! (identity, supervisor, read/write; 4-KByte pages for the first 2 MiB, 2-MByte pages up
//! to 1 GiB, a 1-GByte page at 1 GiB), and an identity EPT at EPT_PML4..EPT_PT with the
//! same shape (RWX, write-back).

#[path = "support/vmx_l1.rs"]
mod vmx_l1;
use vmx_l1::*;

use hvsim_mmu::ept::{
    EPTP_AD_ENABLE, EPT_ACCESSED, EPT_DIRTY, EPT_EXEC, EPT_PAGE_SIZE, EPT_READ, EPT_WRITE,
    QUAL_EXECUTABLE, QUAL_EXECUTE_DISABLE_LINEAR, QUAL_FETCH, QUAL_GLA_TRANSLATION, QUAL_GLA_VALID,
    QUAL_NMI_UNBLOCKING, QUAL_READ, QUAL_READABLE, QUAL_USER_LINEAR, QUAL_WRITABLE,
    QUAL_WRITABLE_LINEAR, QUAL_WRITE,
};
use hvsim_mmu::paging::{PTE_A, PTE_D, PTE_NX, PTE_P, PTE_PS, PTE_RW, PTE_US};
use hvsim_vmx_model::capabilities::ept_vpid_cap as cap;

const GPT_PML4: u64 = 0x70000;
const GPT_PDPT: u64 = 0x71000;
const GPT_PD: u64 = 0x72000;
const GPT_PT: u64 = 0x73000;
/// L2's page table for linear 2 MiB..4 MiB (4-KByte pages), used only by DATA_HI.
const GPT_PT_HI: u64 = 0x7A000;
const EPT_PML4: u64 = 0x80000;
const EPT_PDPT: u64 = 0x81000;
const EPT_PD: u64 = 0x82000;
const EPT_PT: u64 = 0x83000;
/// A data page L2 uses, and a second one.
const DATA: u64 = 0x58000;
const DATA2: u64 = 0x59000;
/// A data page whose guest page table (GPT_PT_HI) and EPT PDE (index 1) only it uses.
const DATA_HI: u64 = 0x20_8000;

const RWX: u64 = EPT_READ | EPT_WRITE | EPT_EXEC;
/// EPT leaf memory type write-back (bits 5:3 = 6).
const WB: u64 = 6 << 3;
/// EPTP: write-back, 4-level walk, PML4 at EPT_PML4.
const EPTP: u64 = EPT_PML4 | 6 | (3 << 3);

const ADVANCED_SUPERVISOR_RW: u64 = QUAL_WRITABLE_LINEAR;
const TRANSLATION: u64 = QUAL_GLA_VALID | QUAL_GLA_TRANSLATION;

/// The EPT entry (4-KByte page) that maps guest-physical `gpa` (< 2 MiB).
fn ept_pte(gpa: u64) -> Gpa {
    assert!(gpa < 2 << 20);
    Gpa(EPT_PT + (gpa >> 12) * 8)
}

/// The guest PTE that maps linear `lin` (< 2 MiB).
fn guest_pte(lin: u64) -> Gpa {
    Gpa(GPT_PT + (lin >> 12) * 8)
}

fn build_guest_tables(m: &mut Machine) {
    let w = |m: &mut Machine, a: u64, v: u64| m.mem.write_u64(Gpa(a), v);
    w(m, GPT_PML4, GPT_PDPT | PTE_P | PTE_RW);
    w(m, GPT_PDPT, GPT_PD | PTE_P | PTE_RW);
    w(m, GPT_PDPT + 8, (1 << 30) | PTE_PS | PTE_P | PTE_RW);
    w(m, GPT_PD, GPT_PT | PTE_P | PTE_RW);
    for i in 0..512u64 {
        w(m, GPT_PT_HI + 8 * i, (2 << 20) + (i << 12) | PTE_P | PTE_RW);
    }
    w(m, GPT_PD + 8, GPT_PT_HI | PTE_P | PTE_RW);
    for i in 2..512u64 {
        w(m, GPT_PD + 8 * i, (i << 21) | PTE_PS | PTE_P | PTE_RW);
    }
    for i in 0..512u64 {
        w(m, GPT_PT + 8 * i, (i << 12) | PTE_P | PTE_RW);
    }
}

fn build_ept(m: &mut Machine) {
    let w = |m: &mut Machine, a: u64, v: u64| m.mem.write_u64(Gpa(a), v);
    w(m, EPT_PML4, EPT_PDPT | RWX);
    w(m, EPT_PDPT, EPT_PD | RWX);
    for i in 1..4u64 {
        w(m, EPT_PDPT + 8 * i, (i << 30) | EPT_PAGE_SIZE | RWX | WB);
    }
    w(m, EPT_PD, EPT_PT | RWX);
    for i in 1..512u64 {
        w(m, EPT_PD + 8 * i, (i << 21) | EPT_PAGE_SIZE | RWX | WB);
    }
    for i in 0..512u64 {
        w(m, EPT_PT + 8 * i, (i << 12) | RWX | WB);
    }
}

/// "Activate secondary controls" and the secondary controls `bits`.
fn secondary(v: &mut Vmcs, bits: u32) {
    set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::ACTIVATE_SECONDARY_CONTROLS));
    set_bits(v, f::SECONDARY_PROC_BASED_CONTROLS, u64::from(bits));
}

/// The baseline VMCS with "enable EPT", EPTP and L2's own page tables.
fn with_ept(v: &mut Vmcs) {
    secondary(v, proc2::ENABLE_EPT);
    v.set(f::EPT_POINTER, EPTP);
    v.set(f::GUEST_CR3, GPT_PML4);
}

/// A machine whose L2 (64-bit code `l2`) runs with EPT; `edit` changes the VMCS after
/// [`with_ept`].
fn ept_machine(
    l2: impl FnOnce(Asm) -> Result<(), IcedError>,
    edit: impl FnOnce(&mut Vmcs),
) -> Machine {
    let mut m = setup(l2, |v| {
        with_ept(v);
        edit(v)
    });
    build_guest_tables(&mut m);
    build_ept(&mut m);
    m
}

fn qualification(m: &Machine) -> u64 {
    vmcs_field(m, f::EXIT_QUALIFICATION)
}

/// Runs and expects an EPT violation at guest-physical `gpa` with `qual`, the guest
/// linear address `gla` (if bit 7 is set) and the guest RIP `rip`.
fn expect_violation(m: &mut Machine, gpa: u64, qual: u64, gla: Option<u64>, rip: u64) {
    expect_exit(m, 48);
    assert_eq!(qualification(m), qual, "qualification {:#x}", qualification(m));
    assert_eq!(vmcs_field(m, f::GUEST_PHYSICAL_ADDRESS), gpa);
    if let Some(gla) = gla {
        assert_eq!(vmcs_field(m, f::GUEST_LINEAR_ADDRESS), gla);
    }
    assert_eq!(vmcs_field(m, f::GUEST_RIP), rip, "guest RIP: the faulting instruction");
}

fn asm_bits(bits: u32, at: u64, f: impl FnOnce(Asm) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    f(&mut a).unwrap();
    a.assemble(at).unwrap()
}

// ---- EPT translation (29.3.2 "EPT Translation Mechanism") ------------------------------

/// SDM Vol. 3C 29.3.2: an identity EPT runs L2 (code fetch, stack and data through the
/// guest tables and the EPT) until its CPUID exits.
#[test]
fn identity_ept_runs_l2() {
    let mut m = ept_machine(
        |a| {
            a.mov(rax, 0x1234_5678u64)?;
            a.mov(qword_ptr(DATA), rax)?;
            a.push(rax)?;
            a.pop(rbx)?;
            a.cpuid()
        },
        |_| {},
    );
    expect_exit(&mut m, 10);
    assert_eq!(m.mem.read_u64(Gpa(DATA)), 0x1234_5678);
    assert_eq!(m.cpu.gpr[3], 0x1234_5678);
    // The guest tables were walked through the EPT: their A bits are set, D on the leaf.
    let pte = m.mem.read_u64(guest_pte(DATA));
    assert_eq!(pte & (PTE_A | PTE_D), PTE_A | PTE_D);
}

/// SDM Vol. 3C 29.3.2: the EPT decides where a guest-physical page is: L2's write to
/// guest-physical DATA lands in L1's DATA2.
#[test]
fn ept_remaps_a_guest_physical_page() {
    let mut m = ept_machine(
        |a| {
            a.mov(rax, 0xCAFEu64)?;
            a.mov(qword_ptr(DATA), rax)?;
            a.mov(rbx, qword_ptr(DATA))?;
            a.cpuid()
        },
        |_| {},
    );
    m.mem.write_u64(ept_pte(DATA), DATA2 | RWX | WB);
    expect_exit(&mut m, 10);
    assert_eq!(m.mem.read_u64(Gpa(DATA2)), 0xCAFE);
    assert_eq!(m.mem.read_u64(Gpa(DATA)), 0);
    assert_eq!(m.cpu.gpr[3], 0xCAFE);
}

/// SDM Vol. 3C 29.3.2 Table 29-4/29-5: a 1-GByte EPT page (PDPTE bit 7) and a 2-MByte
/// EPT page (PDE bit 7) translate with the low 30/21 bits of the address.
#[test]
fn large_ept_pages_translate() {
    let mut m = ept_machine(
        |a| {
            a.mov(r8, qword_ptr((1u64 << 30) + DATA))?;
            a.mov(r9, qword_ptr(0x60_0000 + 0x123 * 8))?;
            a.cpuid()
        },
        |_| {},
    );
    // Guest-physical 1 GiB.. -> L1 0.. ; guest-physical 6 MiB.. -> L1 4 MiB...
    m.mem.write_u64(Gpa(EPT_PDPT + 8), EPT_PAGE_SIZE | RWX | WB);
    m.mem.write_u64(Gpa(EPT_PD + 3 * 8), 0x40_0000 | EPT_PAGE_SIZE | RWX | WB);
    m.mem.write_u64(Gpa(DATA), 0x1111);
    m.mem.write_u64(Gpa(0x40_0000 + 0x123 * 8), 0x2222);
    expect_exit(&mut m, 10);
    assert_eq!(m.cpu.gpr[8], 0x1111);
    assert_eq!(m.cpu.gpr[9], 0x2222);
}

// ---- EPT violations (29.3.3.2, exit qualification Table 28-7) ---------------------------

/// SDM Vol. 3C Table 28-7: a read of an execute-only page: bit 0 (read), bit 5 (the
/// entries allow execute), bits 7 and 8 (linear address valid, final translation) and
/// the advanced bits (supervisor, read/write page, executable).
#[test]
fn violation_on_read_of_execute_only_page() {
    let bytes = asm(L2, |a| {
        a.nop()?;
        a.mov(rax, qword_ptr(DATA + 0x10))?;
        a.cpuid()
    });
    let mut m = ept_machine(
        |a| {
            a.nop()?;
            a.mov(rax, qword_ptr(DATA + 0x10))?;
            a.cpuid()
        },
        |_| {},
    );
    m.mem.write_u64(ept_pte(DATA), DATA | EPT_EXEC | WB);
    let qual = QUAL_READ | QUAL_EXECUTABLE | TRANSLATION | ADVANCED_SUPERVISOR_RW;
    expect_violation(&mut m, DATA + 0x10, qual, Some(DATA + 0x10), insn_addr(&bytes, 1));
}

/// SDM Vol. 3C Table 28-7: a write to a read-only page: bit 1 (write), bit 3 (readable).
#[test]
fn violation_on_write_to_read_only_page() {
    let l2 = |a: Asm| {
        a.mov(eax, 7)?;
        a.mov(dword_ptr(DATA + 0x804), eax)?;
        a.cpuid()
    };
    let bytes = asm(L2, l2);
    let mut m = ept_machine(l2, |_| {});
    m.mem.write_u64(ept_pte(DATA), DATA | EPT_READ | WB);
    let qual = QUAL_WRITE | QUAL_READABLE | TRANSLATION | ADVANCED_SUPERVISOR_RW;
    expect_violation(&mut m, DATA + 0x804, qual, Some(DATA + 0x804), insn_addr(&bytes, 1));
    assert_eq!(m.mem.read_u32(Gpa(DATA + 0x804)), 0, "the write did not happen");
}

/// SDM Vol. 3C Table 28-7: an instruction fetch from a page without execute access: bit
/// 2 (fetch), bits 3 and 4 (readable, writable); the guest RIP is the target.
#[test]
fn violation_on_fetch_from_non_executable_page() {
    let mut m = ept_machine(
        |a| {
            a.mov(eax, DATA as u32)?;
            a.jmp(rax)
        },
        |_| {},
    );
    m.load(DATA, &asm(DATA, |a| a.cpuid())).unwrap();
    m.mem.write_u64(ept_pte(DATA), DATA | EPT_READ | EPT_WRITE | WB);
    let qual = QUAL_FETCH | QUAL_READABLE | QUAL_WRITABLE | TRANSLATION | ADVANCED_SUPERVISOR_RW;
    expect_violation(&mut m, DATA, qual, Some(DATA), DATA);
}

/// SDM Vol. 3C 29.3.3.2: a not-present EPT entry (bits 2:0 clear) is an EPT violation
/// whose permission bits 5:3 are all clear.
#[test]
fn violation_on_not_present_entry() {
    let mut m = ept_machine(|a| a.mov(rax, qword_ptr(DATA)), |_| {});
    m.mem.write_u64(ept_pte(DATA), 0);
    let qual = QUAL_READ | TRANSLATION | ADVANCED_SUPERVISOR_RW;
    expect_violation(&mut m, DATA, qual, Some(DATA), L2);
    // A not-present non-leaf entry stops the walk the same way.
    let mut m = ept_machine(|a| a.mov(rax, qword_ptr(0x40_0000u64)), |_| {});
    m.mem.write_u64(Gpa(EPT_PD + 2 * 8), 0);
    expect_violation(&mut m, 0x40_0000, qual, Some(0x40_0000), L2);
}

/// SDM Vol. 3C Table 28-7 bits 9-11 (advanced information): a user-mode linear address
/// on a read-only, execute-disable guest page.
#[test]
fn violation_reports_the_guest_translation() {
    let mut m = ept_machine(
        |a| a.mov(rax, qword_ptr(DATA)),
        |v| {
            // EFER.NXE (with LME and LMA of the IA-32e mode guest).
            v.set(f::GUEST_IA32_EFER, 0xD00);
            set_bits(v, f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_IA32_EFER));
        },
    );
    for e in [GPT_PML4, GPT_PDPT, GPT_PD] {
        let v = m.mem.read_u64(Gpa(e));
        m.mem.write_u64(Gpa(e), v | PTE_US);
    }
    m.mem.write_u64(guest_pte(DATA), DATA | PTE_P | PTE_US | PTE_NX);
    m.mem.write_u64(ept_pte(DATA), 0);
    let qual = QUAL_READ | TRANSLATION | QUAL_USER_LINEAR | QUAL_EXECUTE_DISABLE_LINEAR;
    expect_violation(&mut m, DATA, qual, Some(DATA), L2);
}

/// SDM Vol. 3C Table 28-7 bit 8: an EPT violation on the access to a guest
/// paging-structure entry has bit 7 set and bit 8 clear; the guest-physical address is
/// the entry's.
#[test]
fn violation_on_guest_paging_structure_access() {
    let mut m = ept_machine(|a| a.mov(rax, qword_ptr(DATA_HI)), |_| {});
    m.mem.write_u64(ept_pte(GPT_PT_HI), 0);
    let entry = GPT_PT_HI + ((DATA_HI >> 12) & 0x1FF) * 8;
    expect_violation(&mut m, entry, QUAL_READ | QUAL_GLA_VALID, Some(DATA_HI), L2);
}

/// SDM Vol. 3C 29.3.5: with EPT A/D flags on, accesses to guest paging structures are
/// writes for EPT; a read-only EPT page holding a guest page table gives an EPT violation
/// with both bits 0 and 1 set.
#[test]
fn ad_flags_make_guest_paging_structure_reads_writes() {
    let mut m = ept_machine(
        |a| a.mov(rax, qword_ptr(DATA_HI)),
        |v| {
            v.set(f::EPT_POINTER, EPTP | EPTP_AD_ENABLE);
        },
    );
    m.mem.write_u64(ept_pte(GPT_PT_HI), GPT_PT_HI | EPT_READ | WB);
    let entry = GPT_PT_HI + ((DATA_HI >> 12) & 0x1FF) * 8;
    let qual = QUAL_READ | QUAL_WRITE | QUAL_READABLE | QUAL_GLA_VALID;
    expect_violation(&mut m, entry, qual, Some(DATA_HI), L2);
}

/// SDM Vol. 3C 29.3.3.2 with 4.8 "Accessed and Dirty Flags": without EPT A/D flags a
/// read-only guest page table is readable, but setting a guest accessed flag in it is a
/// write: an EPT violation (write, readable, paging-structure access).
#[test]
fn guest_accessed_flag_update_needs_ept_write_access() {
    let mut m = ept_machine(|a| a.mov(rax, qword_ptr(DATA_HI)), |_| {});
    m.mem.write_u64(ept_pte(GPT_PT_HI), GPT_PT_HI | EPT_READ | WB);
    let entry = GPT_PT_HI + ((DATA_HI >> 12) & 0x1FF) * 8;
    let qual = QUAL_WRITE | QUAL_READABLE | QUAL_GLA_VALID;
    expect_violation(&mut m, entry, qual, Some(DATA_HI), L2);
    // With the accessed flag already set the read-only table is enough.
    let mut m = ept_machine(
        |a| {
            a.mov(rax, qword_ptr(DATA_HI))?;
            a.cpuid()
        },
        |_| {},
    );
    m.mem.write_u64(ept_pte(GPT_PT_HI), GPT_PT_HI | EPT_READ | WB);
    let v = m.mem.read_u64(Gpa(entry));
    m.mem.write_u64(Gpa(entry), v | PTE_A);
    expect_exit(&mut m, 10);
}

/// SDM Vol. 3C 29.3.3: the guest walk completes before the final translation, so a
/// guest page fault wins over the EPT violation of the final access (here exiting
/// through the exception bitmap, reason 0).
#[test]
fn guest_page_fault_wins_over_final_ept_violation() {
    let mut m = ept_machine(
        |a| a.mov(rax, qword_ptr(DATA)),
        |v| {
            v.set(f::EXCEPTION_BITMAP, 1 << 14);
        },
    );
    m.mem.write_u64(guest_pte(DATA), DATA);
    m.mem.write_u64(ept_pte(DATA), 0);
    expect_exit(&mut m, 0);
    assert_eq!(qualification(&m), DATA, "#PF exit: the linear address");
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_INFO), 0x8000_0B0E);
}

/// SDM Vol. 3C 28.2.4 "Information for VM Exits During Event Delivery": an EPT violation
/// while delivering an exception through L2's IDT reports the exception in the
/// IDT-vectoring information fields.
#[test]
fn violation_during_exception_delivery_sets_idt_vectoring() {
    const IDT: u64 = 0x5A000;
    let mut m = ept_machine(
        |a| a.ud2(),
        |v| {
            v.set(f::GUEST_IDTR_BASE, IDT);
            v.set(f::GUEST_IDTR_LIMIT, 0xFFF);
        },
    );
    m.set_exception_catch(0);
    m.mem.write_u64(ept_pte(IDT), 0);
    let qual = QUAL_READ | TRANSLATION | ADVANCED_SUPERVISOR_RW;
    expect_violation(&mut m, IDT + 6 * 16, qual, Some(IDT + 6 * 16), L2);
    assert_eq!(vmcs_field(&m, f::IDT_VECTORING_INFO), 0x8000_0306);
}

/// SDM Vol. 3C 28.2.4: an EPT violation while delivering an event injected by VM entry
/// (27.6) reports the injected event as IDT-vectoring information, and the guest RIP is
/// the one VM entry loaded.
#[test]
fn violation_during_injected_event_delivery() {
    const IDT: u64 = 0x5A000;
    let mut m = ept_machine(l2_hlt, |v| {
        v.set(f::GUEST_IDTR_BASE, IDT);
        v.set(f::GUEST_IDTR_LIMIT, 0xFFF);
        // A software interrupt INT 0x21 with instruction length 2.
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, 0x8000_0421);
        v.set(f::VM_ENTRY_INSTRUCTION_LENGTH, 2);
    });
    m.set_exception_catch(0);
    m.mem.write_u64(ept_pte(IDT), 0);
    let qual = QUAL_READ | TRANSLATION | ADVANCED_SUPERVISOR_RW;
    expect_violation(&mut m, IDT + 0x21 * 16, qual, Some(IDT + 0x21 * 16), L2);
    assert_eq!(vmcs_field(&m, f::IDT_VECTORING_INFO), 0x8000_0421);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 2);
    assert_eq!(vmcs_field(&m, f::VM_ENTRY_INTERRUPTION_INFO) >> 31, 0, "valid bit cleared");
}

/// SDM Vol. 3C 28.2.4: an external interrupt delivered through L2's IDT (no
/// external-interrupt exiting) whose delivery meets an EPT violation: the exit reports
/// it in the IDT-vectoring information (type 0, vector 30H); the guest RIP is where the
/// interrupt arrived.
#[test]
fn violation_during_external_interrupt_delivery() {
    const IDT: u64 = 0x5A000;
    let mut m = ept_machine(
        |a| {
            let mut spin = a.create_label();
            a.set_label(&mut spin)?;
            a.pause()?;
            a.jmp(spin)
        },
        |v| {
            v.set(f::GUEST_IDTR_BASE, IDT);
            v.set(f::GUEST_IDTR_LIMIT, 0xFFF);
            v.set(f::GUEST_RFLAGS, 0x202);
        },
    );
    m.set_exception_catch(0);
    m.mem.write_u64(ept_pte(IDT), 0);
    m.inject_interrupt(0x30);
    let qual = QUAL_READ | TRANSLATION | ADVANCED_SUPERVISOR_RW;
    expect_violation(&mut m, IDT + 0x30 * 16, qual, Some(IDT + 0x30 * 16), L2);
    assert_eq!(vmcs_field(&m, f::IDT_VECTORING_INFO), 0x8000_0030);
}

/// SDM Vol. 3C 28.2.3 "Information About NMI Unblocking Due to IRET": an EPT violation
/// during an IRET executed with virtual-NMI blocking sets bit 12 of the qualification
/// (and the blocking saved is the state after the IRET unblocked them). With "NMI
/// exiting" alone IRET does not touch NMI blocking (26.3) and bit 12 is undefined, so the
/// guest runs with "virtual NMIs".
#[test]
fn violation_during_iret_reports_nmi_unblocking() {
    let l2 = |a: Asm| {
        a.mov(esp, DATA as u32)?;
        a.iretq()
    };
    let mut m = ept_machine(l2, |v| {
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, 1 << 3);
        set_bits(v, f::PIN_BASED_CONTROLS, u64::from(pin::NMI_EXITING | pin::VIRTUAL_NMIS));
    });
    m.mem.write_u64(ept_pte(DATA), 0);
    let bytes = asm(L2, l2);
    let qual = QUAL_READ | TRANSLATION | ADVANCED_SUPERVISOR_RW | QUAL_NMI_UNBLOCKING;
    expect_violation(&mut m, DATA, qual, Some(DATA), insn_addr(&bytes, 1));
    assert_eq!(vmcs_field(&m, f::GUEST_INTERRUPTIBILITY_STATE) & (1 << 3), 0);
    // Without NMI blocking there is nothing to unblock.
    let mut m = ept_machine(l2, |_| {});
    m.mem.write_u64(ept_pte(DATA), 0);
    expect_exit(&mut m, 48);
    assert_eq!(qualification(&m) & QUAL_NMI_UNBLOCKING, 0);
    // An IRET that completes: the fetch at its target is not part of the IRET.
    let mut m = ept_machine(
        |a| {
            a.mov(rax, rsp)?;
            a.push(0x10)?;
            a.push(rax)?;
            a.push(2)?;
            a.push(8)?;
            a.push(DATA as i32)?;
            a.iretq()
        },
        |v| {
            v.set(f::GUEST_INTERRUPTIBILITY_STATE, 1 << 3);
            set_bits(v, f::PIN_BASED_CONTROLS, u64::from(pin::NMI_EXITING));
        },
    );
    m.mem.write_u64(ept_pte(DATA), DATA | EPT_READ | EPT_WRITE | WB);
    let qual = QUAL_FETCH | QUAL_READABLE | QUAL_WRITABLE | TRANSLATION | ADVANCED_SUPERVISOR_RW;
    expect_violation(&mut m, DATA, qual, Some(DATA), DATA);
}

// ---- EPT misconfigurations (29.3.3.1) ----------------------------------------------------

/// Runs L2's read of `data` with EPT entry `at` set to `value` and expects an EPT
/// misconfiguration exit (49) reporting guest-physical `data`.
fn expect_misconfig_at(data: u64, at: Gpa, value: u64) {
    let mut m = ept_machine(move |a| a.mov(rax, qword_ptr(data)), |_| {});
    m.mem.write_u64(at, value);
    expect_exit(&mut m, 49);
    assert_eq!(vmcs_field(&m, f::GUEST_PHYSICAL_ADDRESS), data, "entry {value:#x}");
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
}

fn expect_misconfig(at: Gpa, value: u64) {
    expect_misconfig_at(DATA, at, value)
}

/// SDM Vol. 3C 29.3.3.1: write access without read access is a misconfiguration.
#[test]
fn misconfig_write_without_read() {
    expect_misconfig(ept_pte(DATA), DATA | EPT_WRITE | WB);
    expect_misconfig(ept_pte(DATA), DATA | EPT_WRITE | EPT_EXEC | WB);
}

/// SDM Vol. 3C 29.3.3.1: a leaf memory type of 2, 3 or 7 is reserved.
#[test]
fn misconfig_reserved_memory_type() {
    for ty in [2u64, 3, 7] {
        expect_misconfig(ept_pte(DATA), DATA | RWX | (ty << 3));
    }
}

/// SDM Vol. 3C 29.3.3.1: reserved bits set in a present entry: bits 7:3 of a non-leaf
/// entry, bits 20:12 of a 2-MByte page, address bits beyond MAXPHYADDR.
#[test]
fn misconfig_reserved_bits() {
    // EPT PDE 1 maps only DATA_HI's 2 MiB (and the guest table for it).
    let pde1 = Gpa(EPT_PD + 8);
    expect_misconfig_at(DATA_HI, pde1, EPT_PT | RWX | (1 << 3));
    expect_misconfig_at(DATA_HI, pde1, (2 << 20) | EPT_PAGE_SIZE | RWX | WB | (1 << 12));
    expect_misconfig(ept_pte(DATA), DATA | RWX | WB | (1 << 45));
}

// ---- EPT accessed and dirty flags (29.3.5) -----------------------------------------------

/// SDM Vol. 3C 29.3.5 "Accessed and Dirty Flags for EPT": with EPTP bit 6, every EPT
/// entry used gets its accessed flag and the leaf of a write its dirty flag; guest
/// paging-structure accesses count as writes (the guest page-table page is dirty).
/// Without bit 6 nothing is written.
#[test]
fn ept_accessed_and_dirty_flags() {
    let l2 = |a: Asm| {
        a.mov(rax, qword_ptr(DATA))?;
        a.mov(qword_ptr(DATA2), rax)?;
        a.cpuid()
    };
    let mut m = ept_machine(l2, |v| {
        v.set(f::EPT_POINTER, EPTP | EPTP_AD_ENABLE);
    });
    expect_exit(&mut m, 10);
    let flags = |m: &Machine, a: Gpa| m.mem.read_u64(a) & (EPT_ACCESSED | EPT_DIRTY);
    assert_eq!(flags(&m, ept_pte(DATA)), EPT_ACCESSED, "read: accessed only");
    assert_eq!(flags(&m, ept_pte(DATA2)), EPT_ACCESSED | EPT_DIRTY, "write: dirty");
    assert_eq!(flags(&m, ept_pte(GPT_PT)), EPT_ACCESSED | EPT_DIRTY, "guest table: a write");
    for e in [EPT_PML4, EPT_PDPT, EPT_PD] {
        assert_ne!(m.mem.read_u64(Gpa(e)) & EPT_ACCESSED, 0, "non-leaf {e:#x}");
    }
    let mut m = ept_machine(l2, |_| {});
    expect_exit(&mut m, 10);
    for e in [Gpa(EPT_PML4), Gpa(EPT_PD), ept_pte(DATA), ept_pte(DATA2)] {
        assert_eq!(m.mem.read_u64(e) & (EPT_ACCESSED | EPT_DIRTY), 0);
    }
}

/// SDM Vol. 3C 29.3.5: the EPT dirty flag is set by the first write even when an earlier
/// read cached the translation (the cached translation did not allow writes).
#[test]
fn ept_dirty_flag_set_by_write_after_read() {
    let mut m = ept_machine(
        |a| {
            a.mov(rax, qword_ptr(DATA))?;
            a.mov(qword_ptr(DATA + 8), rax)?;
            a.cpuid()
        },
        |v| {
            v.set(f::EPT_POINTER, EPTP | EPTP_AD_ENABLE);
        },
    );
    expect_exit(&mut m, 10);
    assert_eq!(m.mem.read_u64(ept_pte(DATA)) & EPT_DIRTY, EPT_DIRTY);
}

// ---- VM-entry checks on EPT, VPID and unrestricted guest (27.2.1.1) ------------------

/// Expects VMLAUNCH to fail with VMfailValid(7) and hvsim to name `check`.
fn expect_control_failure(check: CheckId, edit: impl FnOnce(&mut Vmcs)) {
    let mut m = setup(l2_hlt, edit);
    run(&mut m);
    let failure =
        m.nested.vmx.last_entry_failure.unwrap_or_else(|| panic!("{check:?}: entry did not fail"));
    assert_eq!(failure.check, check, "{}", failure.describe());
    assert_eq!(m.cpu.gpr[12], FAIL_MARK);
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), ZF, "VMfailValid");
    assert_eq!(m.cpu.gpr[13], 7, "VM-instruction error 7");
}

/// SDM Vol. 3C 27.2.1.1: the EPTP must have a supported memory type (UC or WB), a
/// supported page-walk length (4), and no reserved bit (11:7, above MAXPHYADDR).
#[test]
fn invalid_eptp_fails_entry() {
    let cases = [
        (CheckId::EptpMemoryType, EPT_PML4 | 1 | (3 << 3)),
        (CheckId::EptpWalkLength, EPT_PML4 | 6 | (2 << 3)),
        (CheckId::EptpWalkLength, EPT_PML4 | 6 | (4 << 3)),
        (CheckId::EptpReserved, EPTP | (1 << 8)),
        (CheckId::EptpReserved, EPTP | (1 << 45)),
    ];
    for (check, eptp) in cases {
        expect_control_failure(check, |v| {
            with_ept(v);
            v.set(f::EPT_POINTER, eptp);
        });
    }
    // A UC EPTP with A/D enabled is valid (both advertised).
    let mut m = ept_machine(
        |a| a.cpuid(),
        |v| {
            v.set(f::EPT_POINTER, (EPTP & !7) | EPTP_AD_ENABLE);
        },
    );
    expect_exit(&mut m, 10);
}

/// SDM Vol. 3C 27.2.1.1: "enable VPID" needs a nonzero VPID; "unrestricted guest" needs
/// "enable EPT".
#[test]
fn vpid_zero_and_unrestricted_without_ept_fail_entry() {
    expect_control_failure(CheckId::VpidZero, |v| secondary(v, proc2::ENABLE_VPID));
    expect_control_failure(CheckId::UnrestrictedGuestWithoutEpt, |v| {
        secondary(v, proc2::UNRESTRICTED_GUEST)
    });
    // With a VPID, L2 runs.
    let mut m = ept_machine(
        |a| a.cpuid(),
        |v| {
            secondary(v, proc2::ENABLE_VPID);
            v.set(f::VIRTUAL_PROCESSOR_ID, 5);
        },
    );
    expect_exit(&mut m, 10);
}

// ---- PAE guests: PDPTEs (27.3.2.4, 28.3.4, MOV to CR3 through EPT) ----------------------

const PAE_PDPT: u64 = 0x74000;
const PAE_PDPT2: u64 = 0x76000;

/// A 32-bit PAE-paging L2 (flat 32-bit segments, not IA-32e mode) with EPT.
fn pae_machine(l2: impl FnOnce(Asm) -> Result<(), IcedError>) -> Machine {
    let mut m = ept_machine(l2_hlt, |v| {
        let e = v.get(f::VM_ENTRY_CONTROLS) & !u64::from(entry::IA32E_MODE_GUEST);
        v.set(f::VM_ENTRY_CONTROLS, e);
        v.set(f::GUEST_CR3, PAE_PDPT);
        v.set(f::GUEST_PDPTE0, GPT_PD | PTE_P);
        v.set(f::GUEST_CS_SELECTOR, 0x18);
        v.set(f::GUEST_CS_ACCESS_RIGHTS, 0xC09B);
        v.set(f::CR3_TARGET_COUNT, 1);
        v.set(f::CR3_TARGET_VALUE0, PAE_PDPT2);
    });
    m.load(L2, &asm_bits(32, L2, l2)).unwrap();
    m
}

/// SDM Vol. 3C 27.3.2.4 "Loading Page-Directory-Pointer-Table Entries": with EPT and PAE
/// paging, VM entry loads the PDPTEs from the guest PDPTE fields (the table at guest CR3
/// is all zeros here and is not used).
#[test]
fn pae_guest_pdptes_come_from_the_vmcs() {
    let mut m = pae_machine(|a| {
        a.mov(esi, dword_ptr(DATA as u32))?;
        a.cpuid()
    });
    m.mem.write_u64(Gpa(DATA), 0x77);
    expect_exit(&mut m, 10);
    assert_eq!(m.cpu.gpr[6], 0x77);
}

/// SDM Vol. 3A 4.4.1 with Vol. 3C 29.3.1: MOV to CR3 of a PAE guest loads the PDPTEs from
/// guest-physical CR3 through the EPT (here remapped to another L1 page), and a VM exit
/// saves the PDPTE registers in the guest PDPTE fields (28.3.4).
#[test]
fn pae_mov_cr3_loads_pdptes_through_ept_and_exit_saves_them() {
    let mut m = pae_machine(|a| {
        a.mov(eax, PAE_PDPT2 as u32)?;
        a.mov(cr3, eax)?;
        a.mov(esi, dword_ptr(DATA as u32))?;
        a.cpuid()
    });
    const L1_PAGE: u64 = 0x77000;
    m.mem.write_u64(ept_pte(PAE_PDPT2), L1_PAGE | RWX | WB);
    m.mem.write_u64(Gpa(L1_PAGE), GPT_PD | PTE_P);
    m.mem.write_u64(Gpa(L1_PAGE + 8), 0x4000_0000 | PTE_P);
    m.mem.write_u64(Gpa(DATA), 0x99);
    expect_exit(&mut m, 10);
    assert_eq!(m.cpu.gpr[6], 0x99);
    assert_eq!(vmcs_field(&m, f::GUEST_CR3), PAE_PDPT2);
    assert_eq!(vmcs_field(&m, f::GUEST_PDPTE0), GPT_PD | PTE_P);
    assert_eq!(vmcs_field(&m, f::GUEST_PDPTE1), 0x4000_0000 | PTE_P);
}

/// SDM Vol. 3C Table 28-7 bit 7: an EPT violation while MOV to CR3 loads the PDPTEs has
/// no valid guest linear address (bits 7 and 8 clear); the guest-physical address is the
/// PDPT's.
#[test]
fn pae_pdpte_load_violation_has_no_linear_address() {
    let l2 = |a: Asm| {
        a.mov(eax, PAE_PDPT2 as u32)?;
        a.mov(cr3, eax)
    };
    let bytes = asm_bits(32, L2, l2);
    let mut m = pae_machine(l2);
    m.mem.write_u64(ept_pte(PAE_PDPT2), 0);
    expect_exit(&mut m, 48);
    assert_eq!(qualification(&m), QUAL_READ);
    assert_eq!(vmcs_field(&m, f::GUEST_PHYSICAL_ADDRESS), PAE_PDPT2);
    let mut d = iced_x86::Decoder::with_ip(32, &bytes, L2, iced_x86::DecoderOptions::NONE);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), d.decode().next_ip());
    assert_eq!(vmcs_field(&m, f::GUEST_CR3), PAE_PDPT, "CR3 unchanged");
}

// ---- Unrestricted guest (26.6 / 27.3.1.2 with "unrestricted guest") ----------------------

/// The VMCS of an unrestricted L2 in real mode at CS:IP = 2000:0000, SS:SP = 2000:F000.
fn real_mode(v: &mut Vmcs) {
    with_ept(v);
    secondary(v, proc2::UNRESTRICTED_GUEST);
    let e = v.get(f::VM_ENTRY_CONTROLS) & !u64::from(entry::IA32E_MODE_GUEST);
    v.set(f::VM_ENTRY_CONTROLS, e);
    v.set(f::GUEST_CR0, 0x30); // NE | ET: PE = PG = 0
    v.set(f::GUEST_CR4, 1 << 13); // VMXE
    for i in 0..6u32 {
        let sel = if i == 4 || i == 5 { 0 } else { 0x2000 };
        v.set(f::GUEST_ES_SELECTOR + 2 * i, sel);
        v.set(f::GUEST_ES_BASE + 2 * i, sel << 4);
        v.set(f::GUEST_ES_LIMIT + 2 * i, 0xFFFF);
        v.set(f::GUEST_ES_ACCESS_RIGHTS + 2 * i, if i == 1 { 0x9B } else { 0x93 });
    }
    v.set(f::GUEST_RIP, 0);
    v.set(f::GUEST_RSP, 0xF000);
    v.set(f::GUEST_RFLAGS, 2);
}

/// SDM Vol. 3C 25.6.2 / 27.3.1: with "unrestricted guest" L2 runs in real mode
/// (CR0.PE = 0), its accesses going through the EPT; its OUT exits with the I/O
/// qualification (28.2.1 Table 28-5: size 1, OUT, immediate, port 80H).
#[test]
fn unrestricted_guest_runs_real_mode_code() {
    let l2 = |a: Asm| {
        a.mov(bx, 0x1234)?;
        a.mov(word_ptr(0x100), bx)?;
        a.mov(al, 0x42)?;
        a.out(0x80, al)
    };
    let bytes = asm_bits(16, 0, l2);
    let mut m = ept_machine(l2_hlt, |v| {
        real_mode(v);
        set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::UNCONDITIONAL_IO_EXITING));
    });
    m.load(L2, &bytes).unwrap();
    // Guest-physical 0x20000 (DS:0100 = 0x20100) is remapped by the EPT.
    m.mem.write_u64(ept_pte(L2), DATA2 | RWX | WB);
    m.load(DATA2, &bytes).unwrap();
    expect_exit(&mut m, 30);
    assert_eq!(qualification(&m), (0x80 << 16) | (1 << 6));
    assert_eq!(m.mem.read_u32(Gpa(DATA2 + 0x100)) & 0xFFFF, 0x1234);
    assert_eq!(vmcs_field(&m, f::GUEST_CS_SELECTOR), 0x2000);
    let mut d = iced_x86::Decoder::with_ip(16, &bytes, 0, iced_x86::DecoderOptions::NONE);
    let mut ip = 0;
    for _ in 0..3 {
        ip = d.decode().next_ip();
    }
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), ip);
    assert_eq!(vmcs_field(&m, f::GUEST_CR0) & 1, 0, "still real mode");
    assert_eq!(m.cpu.gpr[3] & 0xFFFF, 0x1234);
}

/// SDM Vol. 3C 25.8 "Restrictions on VMX Operation": with "unrestricted guest" a real-mode
/// L2 may set CR0.PE itself (the CR0 fixed bits exempt PE and PG in non-root operation).
#[test]
fn unrestricted_guest_enters_protected_mode() {
    let l2 = |a: Asm| {
        a.mov(eax, cr0)?;
        a.or(eax, 1)?;
        a.mov(cr0, eax)?;
        a.cpuid()
    };
    let mut m = ept_machine(l2_hlt, real_mode);
    m.load(L2, &asm_bits(16, 0, l2)).unwrap();
    expect_exit(&mut m, 10);
    assert_eq!(vmcs_field(&m, f::GUEST_CR0) & 1, 1);
}

/// SDM Vol. 3C Table 28-7: in unpaged protected mode (CR0.PE = 1, PG = 0) every linear
/// address is a guest-physical address translated by the EPT; a violation reports the
/// linear address as valid, bit 8 set and, with advanced information, a user-mode,
/// read/write, executable translation (bits 9 and 10 set, 11 clear).
#[test]
fn unrestricted_guest_unpaged_protected_mode() {
    let l2 = |a: Asm| {
        a.mov(dword_ptr(DATA2 as u32), 0x55)?;
        a.mov(eax, dword_ptr(DATA as u32 + 0x20))
    };
    let bytes = asm_bits(32, L2, l2);
    let mut m = ept_machine(l2_hlt, |v| {
        with_ept(v);
        secondary(v, proc2::UNRESTRICTED_GUEST);
        let e = v.get(f::VM_ENTRY_CONTROLS) & !u64::from(entry::IA32E_MODE_GUEST);
        v.set(f::VM_ENTRY_CONTROLS, e);
        v.set(f::GUEST_CR0, 0x31); // PE | NE | ET
        v.set(f::GUEST_CR4, 1 << 13);
        v.set(f::GUEST_CS_SELECTOR, 0x18);
        v.set(f::GUEST_CS_ACCESS_RIGHTS, 0xC09B);
    });
    m.load(L2, &bytes).unwrap();
    m.mem.write_u64(ept_pte(DATA), 0);
    let mut d = iced_x86::Decoder::with_ip(32, &bytes, L2, iced_x86::DecoderOptions::NONE);
    let rip = d.decode().next_ip();
    let qual = QUAL_READ | TRANSLATION | QUAL_USER_LINEAR | QUAL_WRITABLE_LINEAR;
    expect_violation(&mut m, DATA + 0x20, qual, Some(DATA + 0x20), rip);
    assert_eq!(m.mem.read_u32(Gpa(DATA2)), 0x55, "the first store went through");
}

// ---- INVEPT / INVVPID (32.3; exits 26.1.2, 28.2.1) --------------------------------------

/// L1 executes `code` after VMXON/VMPTRLD with the descriptor (lo, hi) at SCRATCH; RFLAGS
/// goes to R15 and the VM-instruction error to R13.
fn l1_invalidation(lo: u64, hi: u64, code: impl FnOnce(Asm) -> Result<(), IcedError>) -> Machine {
    let mut m = l1_only(|a| {
        enter_and_load(a)?;
        code(a)?;
        flags(a)?;
        a.mov(eax, f::VM_INSTRUCTION_ERROR)?;
        a.vmread(r13, rax)?;
        a.hlt()
    });
    m.mem.write_u64(Gpa(SCRATCH), lo);
    m.mem.write_u64(Gpa(SCRATCH + 8), hi);
    run(&mut m);
    m
}

fn invept_with(ty: u64, eptp: u64) -> Machine {
    l1_invalidation(eptp, 0, move |a| {
        a.mov(rax, ty)?;
        a.invept(rax, xmmword_ptr(SCRATCH))
    })
}

fn invvpid_with(ty: u64, vpid_word: u64, addr: u64) -> Machine {
    l1_invalidation(vpid_word, addr, move |a| {
        a.mov(rcx, ty)?;
        a.invvpid(rcx, xmmword_ptr(SCRATCH))
    })
}

fn assert_succeeded(m: &Machine, what: &str) {
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), 0, "{what}: VMsucceed");
}

fn assert_error_28(m: &Machine, what: &str) {
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), ZF, "{what}: VMfailValid");
    assert_eq!(m.cpu.gpr[13], 28, "{what}: invalid operand to INVEPT/INVVPID");
}

/// SDM Vol. 3C 32.3 "INVEPT": single-context with a valid EPTP and global succeed; types
/// 0 and 3 (not reported in IA32_VMX_EPT_VPID_CAP bits 24 and 27) and a single-context
/// EPTP that VM entry would reject fail with error 28; global ignores the EPTP.
#[test]
fn invept_types_and_operand_checks() {
    assert_succeeded(&invept_with(1, EPTP), "single-context");
    assert_succeeded(&invept_with(2, 0xFFFF_FFFF_FFFF_FFFF), "global with any descriptor");
    for ty in [0u64, 3, 1 << 40, u64::MAX] {
        assert_error_28(&invept_with(ty, EPTP), &format!("type {ty:#x}"));
    }
    assert_error_28(&invept_with(1, EPTP | (1 << 9)), "single-context, EPTP reserved bit");
    assert_error_28(&invept_with(1, EPT_PML4 | 6 | (1 << 3)), "single-context, walk length 2");
}

/// SDM Vol. 3C 32.3 "INVVPID": types 0-3 with valid descriptors succeed; type 4 fails;
/// descriptor bits 63:16 must be 0; VPID 0 is invalid for types 0, 1 and 3 (not for
/// all-context); type 0 needs a canonical linear address.
#[test]
fn invvpid_types_and_operand_checks() {
    assert_succeeded(&invvpid_with(0, 1, 0x7FFF_FFFF_F000), "individual-address");
    assert_succeeded(&invvpid_with(1, 1, 0), "single-context");
    assert_succeeded(&invvpid_with(2, 0, 0), "all-context, VPID 0");
    assert_succeeded(&invvpid_with(3, 0xFFFF, 0), "single-context retaining globals");
    assert_succeeded(&invvpid_with(1, 1, 0x8000_0000_0000_0000), "single-context ignores address");
    assert_error_28(&invvpid_with(4, 1, 0), "type 4");
    assert_error_28(&invvpid_with(2, 1 << 16, 0), "descriptor bits 63:16");
    for ty in [0, 1, 3] {
        assert_error_28(&invvpid_with(ty, 0, 0), &format!("type {ty} with VPID 0"));
    }
    // Non-canonical with 48- and 57-bit linear addresses alike.
    assert_error_28(&invvpid_with(0, 1, 0x0100_0000_0000_0000), "non-canonical address");
}

/// SDM Vol. 3C 32.3 / 32.2 "Conventions": VMfail without a current VMCS is VMfailInvalid
/// (INVEPT of an unsupported type); a non-canonical descriptor address in 64-bit mode is
/// #GP(0).
#[test]
fn invept_invvpid_without_current_vmcs_and_bad_operands() {
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        a.mov(rax, 5u64)?;
        a.invept(rax, xmmword_ptr(SCRATCH))?;
        flags(a)?;
        a.hlt()
    });
    run(&mut m);
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), CF, "VMfailInvalid");
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        a.mov(rax, 2u64)?;
        a.mov(rbx, 0x8000_0000_0000_0000u64)?;
        a.invvpid(rax, xmmword_ptr(rbx))
    });
    assert_eq!(exception(&mut m), (13, Some(0)));
}

/// SDM Vol. 3C 26.1.2 "Instructions That Cause VM Exits Unconditionally" and 28.2.5
/// Table 28-11: INVEPT (50) and INVVPID (53) in L2 exit with the displacement as the
/// qualification and the instruction information (address size, segment, base, index
/// invalid, the type register in bits 31:28).
#[test]
fn invept_and_invvpid_in_l2_exit() {
    // Bits 6:2 and 14:11 are undefined in this format.
    const DEFINED_INFO: u64 = !0x787C;
    let l2 = |a: Asm| {
        a.mov(rbx, SCRATCH)?;
        a.invept(rax, xmmword_ptr(rbx + 0x18))
    };
    let bytes = asm(L2, l2);
    let mut m = ept_machine(l2, |_| {});
    expect_exit(&mut m, 50);
    assert_eq!(qualification(&m), 0x18);
    // 64-bit addresses (2 << 7), DS (3 << 15), index invalid (1 << 22), base RBX (3 << 23),
    // type register RAX (0 << 28).
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_INFO) & DEFINED_INFO, 0x01C1_8100);
    let invept_at = insn_addr(&bytes, 1);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), L2 + bytes.len() as u64 - invept_at);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), insn_addr(&bytes, 1));
    let mut m = setup(|a| a.invvpid(rcx, xmmword_ptr(rdx + rsi * 4)), |_| {});
    expect_exit(&mut m, 53);
    // Scale 4 (2), 64-bit addresses (2 << 7), DS (3 << 15), index RSI (6 << 18), base RDX
    // (2 << 23), RCX (1 << 28).
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_INFO) & DEFINED_INFO, 0x1119_8102);
}

/// SDM Vol. 3D A.10 "VPID and EPT Capabilities": IA32_VMX_EPT_VPID_CAP reports what
/// hvsim implements: execute-only, a 4-level walk, UC and WB, 2M and 1G pages, INVEPT
/// (single and global), A/D flags, advanced EPT-violation information, INVVPID of all
/// four types; no 5-level walk.
#[test]
fn ept_vpid_capability_msr() {
    let mut m = l1_only(|a| {
        a.mov(ecx, vmx_msr::IA32_VMX_EPT_VPID_CAP)?;
        a.rdmsr()?;
        a.shl(rdx, 32)?;
        a.or(rax, rdx)?;
        a.mov(r8, rax)?;
        a.hlt()
    });
    run(&mut m);
    let expected = cap::EXECUTE_ONLY
        | cap::PAGE_WALK_4
        | cap::MEMORY_TYPE_UC
        | cap::MEMORY_TYPE_WB
        | cap::PAGES_2M
        | cap::PAGES_1G
        | cap::INVEPT
        | cap::ACCESS_DIRTY
        | cap::ADVANCED_EXIT_INFO
        | cap::INVEPT_SINGLE_CONTEXT
        | cap::INVEPT_ALL_CONTEXT
        | cap::INVVPID
        | cap::INVVPID_INDIVIDUAL_ADDRESS
        | cap::INVVPID_SINGLE_CONTEXT
        | cap::INVVPID_ALL_CONTEXT
        | cap::INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS;
    assert_eq!(m.cpu.gpr[8], expected);
    assert_eq!(m.cpu.gpr[8] & cap::PAGE_WALK_5, 0);
}

// ---- Exhaustive leaf permissions and 32-bit guest paging ----------------------------------

/// SDM Vol. 3C 29.3.3.1 and 29.3.3.2 over every R/W/X setting of the leaf and every
/// access type: write-without-read is a misconfiguration; otherwise the access succeeds
/// iff the leaf allows it, and a violation reports the access and the leaf's R/W/X in
/// bits 5:3 (the upper levels allow everything).
#[test]
fn leaf_permissions_exhaustive() {
    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Read,
        Write,
        Fetch,
    }
    for rwx in 0..8u64 {
        for kind in [Kind::Read, Kind::Write, Kind::Fetch] {
            let l2 = move |a: Asm| {
                match kind {
                    Kind::Read => a.mov(rax, qword_ptr(DATA))?,
                    Kind::Write => a.mov(qword_ptr(DATA), rax)?,
                    Kind::Fetch => {
                        a.mov(eax, DATA as u32)?;
                        a.jmp(rax)?
                    }
                }
                a.cpuid()
            };
            let bytes = asm(L2, l2);
            let mut m = ept_machine(l2, |_| {});
            m.load(DATA, &asm(DATA, |a| a.cpuid())).unwrap();
            m.mem.write_u64(ept_pte(DATA), DATA | rwx | WB);
            let what = format!("leaf R/W/X {rwx:03b}, {kind:?}");
            if rwx & 3 == EPT_WRITE {
                expect_exit(&mut m, 49);
                continue;
            }
            let (need, access_bit, rip) = match kind {
                Kind::Read => (EPT_READ, QUAL_READ, L2),
                Kind::Write => (EPT_WRITE, QUAL_WRITE, L2),
                Kind::Fetch => (EPT_EXEC, QUAL_FETCH, DATA),
            };
            run(&mut m);
            if rwx & need != 0 {
                assert_eq!(m.cpu.gpr[13], 10, "{what}: allowed");
                continue;
            }
            assert_eq!(m.cpu.gpr[13], 48, "{what}: violation");
            let qual = access_bit | (rwx << 3) | TRANSLATION | ADVANCED_SUPERVISOR_RW;
            assert_eq!(qualification(&m), qual, "{what}");
            let expected_rip = if matches!(kind, Kind::Fetch) { rip } else { insn_addr(&bytes, 0) };
            assert_eq!(vmcs_field(&m, f::GUEST_RIP), expected_rip, "{what}");
        }
    }
}

const PD32: u64 = 0x7B000;
const PT32: u64 = 0x7C000;

/// SDM Vol. 3A 4.3 "32-Bit Paging" under EPT: a 32-bit L2 whose 4-byte guest entries
/// are read through the EPT; an EPT violation on the page table has the PTE's
/// guest-physical address, and one on the data page the final address.
#[test]
fn legacy_32bit_guest_paging_through_ept() {
    let l2 = |a: Asm| {
        a.mov(esi, dword_ptr(DATA as u32))?;
        a.mov(edi, dword_ptr(DATA2 as u32))
    };
    let setup32 = || {
        let mut m = ept_machine(l2_hlt, |v| {
            let e = v.get(f::VM_ENTRY_CONTROLS) & !u64::from(entry::IA32E_MODE_GUEST);
            v.set(f::VM_ENTRY_CONTROLS, e);
            v.set(f::GUEST_CR3, PD32);
            v.set(f::GUEST_CR4, 1 << 13);
            v.set(f::GUEST_CS_SELECTOR, 0x18);
            v.set(f::GUEST_CS_ACCESS_RIGHTS, 0xC09B);
        });
        m.load(L2, &asm_bits(32, L2, l2)).unwrap();
        m.mem.write_u32(Gpa(PD32), (PT32 | PTE_P | PTE_RW) as u32);
        for i in 0..1024u64 {
            m.mem.write_u32(Gpa(PT32 + 4 * i), ((i << 12) | PTE_P | PTE_RW) as u32);
        }
        m.mem.write_u32(Gpa(DATA), 0x3232);
        m
    };
    let bytes = asm_bits(32, L2, l2);
    let mut d = iced_x86::Decoder::with_ip(32, &bytes, L2, iced_x86::DecoderOptions::NONE);
    let second = d.decode().next_ip();
    // The final translation of DATA2 is not present in the EPT.
    let mut m = setup32();
    m.mem.write_u64(ept_pte(DATA2), 0);
    let qual = QUAL_READ | TRANSLATION | ADVANCED_SUPERVISOR_RW;
    expect_violation(&mut m, DATA2, qual, Some(DATA2), second);
    assert_eq!(m.cpu.gpr[6], 0x3232, "the first load went through both levels");
    assert_ne!(m.mem.read_u32(Gpa(PT32 + 4 * (DATA >> 12))) as u64 & PTE_A, 0);
    // The guest page table itself is not present in the EPT.
    let mut m = setup32();
    m.mem.write_u64(ept_pte(PT32), 0);
    let pte = PT32 + 4 * (L2 >> 12);
    expect_violation(&mut m, pte, QUAL_READ | QUAL_GLA_VALID, Some(L2), L2);
}

// ---- VM functions: EPTP switching (26.5.6 "VM Functions") -------------------------------

/// The EPTP list (one page of 512 EPTPs).
const EPTP_LIST: u64 = 0x5A000;
/// The identity EPT with accessed/dirty flags on: a different, valid EPTP for the same
/// tables.
const EPTP_AD: u64 = EPTP | EPTP_AD_ENABLE;

/// L2 executes VMFUNC with EAX = `leaf`, ECX = `index`, then VMCALL.
fn vmfunc_guest(leaf: u32, index: u32) -> impl FnOnce(Asm) -> Result<(), IcedError> {
    move |a: Asm| {
        a.mov(eax, leaf)?;
        a.mov(ecx, index)?;
        a.vmfunc()?;
        a.vmcall()
    }
}

/// A machine whose L2 may use EPTP switching, with list entry 0 = EPTP and entry 1 =
/// EPTP_AD; entry 2 holds an invalid EPTP (walk length 5 is not advertised).
fn vmfunc_machine(l2: impl FnOnce(Asm) -> Result<(), IcedError>) -> Machine {
    let mut m = ept_machine(l2, |v| {
        secondary(v, proc2::ENABLE_VM_FUNCTIONS);
        v.set(f::VM_FUNCTION_CONTROLS, 1);
        v.set(f::EPTP_LIST_ADDRESS, EPTP_LIST);
    });
    for (i, e) in [EPTP, EPTP_AD, EPT_PML4 | 6 | (4 << 3)].into_iter().enumerate() {
        m.mem.write_u64(Gpa(EPTP_LIST + 8 * i as u64), e);
    }
    m
}

/// SDM Vol. 3C 26.5.6.3 "EPTP Switching": VMFUNC leaf 0 loads EPTP-list entry ECX into
/// the EPT-pointer field without a VM exit; L2 goes on to its VMCALL.
#[test]
fn vmfunc_eptp_switching_loads_the_entry() {
    let mut m = vmfunc_machine(vmfunc_guest(0, 1));
    expect_exit(&mut m, 18);
    assert_eq!(vmcs_field(&m, f::EPT_POINTER), EPTP_AD);
    // A/D flags are now on: the guest's accesses set the EPT accessed flag.
    assert_ne!(m.mem.read_u64(Gpa(EPT_PML4)) & EPT_ACCESSED, 0);
}

/// SDM Vol. 3C 26.5.6.3: an index of 512 or more, or a list entry that is not a valid
/// EPTP (27.2.1.1 rules), makes VMFUNC exit with reason 59 at the VMFUNC, the EPTP
/// unchanged; so does a leaf not enabled in the VM-function controls (26.5.6.1).
#[test]
fn vmfunc_failures_exit_59() {
    for (leaf, index) in [(0, 512), (0, 2), (1, 0), (64, 0)] {
        let l2 = vmfunc_guest(leaf, index);
        let bytes = asm(L2, vmfunc_guest(leaf, index));
        let mut m = vmfunc_machine(l2);
        expect_exit(&mut m, 59);
        assert_eq!(vmcs_field(&m, f::EPT_POINTER), EPTP, "leaf {leaf} index {index}");
        assert_eq!(vmcs_field(&m, f::GUEST_RIP), insn_addr(&bytes, 2), "the VMFUNC");
        assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 3);
    }
}

/// Intel SDM Vol. 2C "VMFUNC": #UD without "enable VM functions" (here an exception-bitmap
/// exit for #UD).
#[test]
fn vmfunc_without_enable_vm_functions_is_ud() {
    let mut m = ept_machine(vmfunc_guest(0, 0), |v| {
        v.set(f::EXCEPTION_BITMAP, 1 << 6);
    });
    expect_exit(&mut m, 0);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_INFO) & 0xFF, 6);
}
