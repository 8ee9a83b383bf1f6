//! SVM nested paging end to end (APM Vol. 2 §15.25 "Nested Paging", §15.16 "TLB
//! Control"): an L1 hypervisor runs an L2 guest whose guest-physical accesses go through
//! nested tables at nCR3. Each test names the section it checks.
//!
//! Layout (16 MiB of RAM): L1 at 0x1000 (stack 0x8000), VMCBs at 0x10000 and 0x12000,
//! HSAVE 0x11000, L2 code at 0x20000 (stack 0x2F000), data pages at 0x70000-0x72000.
//! L2 runs with L1's own state: 64-bit, CPL 0, CR3 = the harness's identity tables at
//! 0xFF9000 (now guest-physical). The nested tables ([`build_npt`]) identity-map the
//! 16 MiB with 4-KiB pages for the first and last 2 MiB and 2-MiB pages between.

use hvsim::machine::CATCH_ALL;
use hvsim::nested::svm::state::save_world;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, Vendor};
use hvsim_mmu::npt::{NPF_FINAL_TRANSLATION, NPF_GUEST_TABLE, NPF_P, NPF_U, NPF_W};
use hvsim_mmu::paging::{PTE_A, PTE_D};
use hvsim_mmu::Gpa;
use hvsim_svm_model::intercept as icpt;
use hvsim_svm_model::msr as svm_msr;
use hvsim_svm_model::vmcb::{self, tlb_control};
use hvsim_svm_model::{SvmExitCode, VmcbImage};
use iced_x86::code_asm::*;

#[path = "support/svm_l1.rs"]
mod svm_l1;
use svm_l1::*;

const VMCB2: u64 = 0x12000;
/// The nested tables of the first guest, and of the second (ASID test).
const NPT_A: u64 = 0x60000;
const NPT_B: u64 = 0x68000;
const DATA: u64 = 0x70000;
const OTHER: u64 = 0x71000;
const THIRD: u64 = 0x72000;
/// The guest's PML4 (the harness's identity tables, at `setup_area() + 0x1000`).
const GUEST_CR3: u64 = 0xFF9000;
/// The guest's PD for the first GiB.
const GUEST_PD: u64 = 0xFFB000;
const LAST_2M: u64 = 0xE0_0000;
const RWU: u64 = 0x7;
const VMEXIT_NPF: i32 = 0x400;

/// L1 sets the VMCB at `vmcb`'s RIP back to the L2 entry and runs it.
fn rerun(a: Asm, vmcb_pa: u64) -> Result<(), IcedError> {
    a.mov(rax, L2)?;
    a.mov(qword_ptr(vmcb_pa + u64::from(vmcb::RIP)), rax)?;
    a.mov(rax, vmcb_pa)?;
    a.vmrun()
}

/// Nested tables at `base`: PML4, PDPT, PD, a 4-KiB PT for 0..2 MiB (`base + 0x3000`)
/// and one for the last 2 MiB (`base + 0x4000`), all user + writable (§15.25.5: nested
/// accesses are user accesses).
fn build_npt(m: &mut Machine, base: u64) {
    m.mem.write_u64(Gpa(base), (base + 0x1000) | RWU);
    m.mem.write_u64(Gpa(base + 0x1000), (base + 0x2000) | RWU);
    for i in 0..8u64 {
        let e = match i {
            0 => (base + 0x3000) | RWU,
            7 => (base + 0x4000) | RWU,
            _ => (i << 21) | RWU | 0x80,
        };
        m.mem.write_u64(Gpa(base + 0x2000 + 8 * i), e);
    }
    for j in 0..512u64 {
        m.mem.write_u64(Gpa(base + 0x3000 + 8 * j), (j << 12) | RWU);
        m.mem.write_u64(Gpa(base + 0x4000 + 8 * j), (LAST_2M + (j << 12)) | RWU);
    }
}

/// Where the nested PTE for guest-physical `gpa` is (first or last 2 MiB only).
fn npte(base: u64, gpa: u64) -> Gpa {
    if gpa >= LAST_2M {
        Gpa(base + 0x4000 + ((gpa - LAST_2M) >> 12) * 8)
    } else {
        Gpa(base + 0x3000 + (gpa >> 12) * 8)
    }
}

/// A guest VMCB at `pa`: L1's state with RIP = L2, VMRUN and VMMCALL intercepted,
/// nested paging on with nCR3 = `ncr3`.
fn write_vmcb(m: &mut Machine, pa: u64, asid: u32, ncr3: u64) {
    let mut img = VmcbImage::zeroed();
    save_world(m, &mut img, L2);
    img.set_u64(vmcb::EFER, m.cpu.efer | svm_msr::EFER_SVME);
    img.set_u64(vmcb::RSP, L2_STACK);
    img.set_u64(vmcb::RFLAGS, 2);
    img.write(vmcb::GUEST_ASID, 4, u64::from(asid));
    let (run, call) = (icpt::INTERCEPT_VMRUN, icpt::INTERCEPT_VMMCALL);
    assert_eq!(run.word, call.word);
    img.write(run.word, 4, u64::from(run.mask() | call.mask()));
    img.set_u64(vmcb::MSRPM_BASE_PA, MSRPM);
    img.set_u64(vmcb::IOPM_BASE_PA, IOPM);
    img.set_u64(vmcb::NP_CONTROL, vmcb::bits::NP_ENABLE.set(0, 1));
    img.set_u64(vmcb::N_CR3, ncr3);
    m.load(pa, img.as_bytes()).unwrap();
}

fn setup_with(
    l1: impl FnOnce(Asm) -> Result<(), IcedError>,
    l2: impl FnOnce(Asm) -> Result<(), IcedError>,
) -> Machine {
    let cfg = MachineConfig { vendor: Vendor::Amd, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.set_exception_catch(CATCH_ALL);
    m.load(L1, &asm(L1, l1)).unwrap();
    m.enter_mode(GuestMode::Long64, L1, L1_STACK).unwrap();
    assert_eq!(m.cpu.cr3, GUEST_CR3, "harness layout");
    m.load(L2, &asm(L2, l2)).unwrap();
    build_npt(&mut m, NPT_A);
    write_vmcb(&mut m, VMCB, 1, NPT_A);
    for (pa, v) in [(DATA, 0xAAAA_u64), (OTHER, 0xBBBB), (THIRD, 0xCCCC)] {
        m.mem.write_u64(Gpa(pa), v);
    }
    m
}

fn setup(l2: impl FnOnce(Asm) -> Result<(), IcedError>) -> Machine {
    setup_with(l1_vmrun_hlt, l2)
}

fn rd(m: &Machine, pa: u64, off: u16) -> u64 {
    m.mem.read_u64(Gpa(pa + u64::from(off)))
}

fn exitcode(m: &Machine) -> SvmExitCode {
    SvmExitCode(rd(m, VMCB, vmcb::EXITCODE))
}

fn run(m: &mut Machine) {
    let r = m.run(Some(10_000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    assert!(m.nested.svm.last_invalid.is_none(), "{:?}", m.nested.svm.last_invalid);
}

/// The address of the `n`-th instruction (0-based) of the L2 code.
fn l2_insn(l2: impl FnOnce(Asm) -> Result<(), IcedError>, n: usize) -> u64 {
    let bytes = asm(L2, l2);
    let mut d = iced_x86::Decoder::with_ip(64, &bytes, L2, iced_x86::DecoderOptions::NONE);
    let mut ip = L2;
    for _ in 0..n {
        ip = d.decode().next_ip();
    }
    ip
}

/// APM §15.25 with §15.25.5 "Nested Table Walk": CPUID 8000_000Ah EDX bit 0 advertises
/// nested paging; an L2 on identity nested tables runs, its write lands at the same
/// system-physical address, and the nested walks set A (and D for the write) in the
/// nested entries of the data page and of the guest's page-table pages (which are
/// accessed as writes).
#[test]
fn l2_runs_with_nested_paging_on_identity_tables() {
    let l2 = |a: Asm| {
        a.mov(rax, 0x1234u64)?;
        a.mov(qword_ptr(DATA + 8), rax)?;
        a.mov(rbx, qword_ptr(DATA))?;
        a.vmmcall()
    };
    let mut m = setup_with(
        |a| {
            a.mov(eax, 0x8000_000Au32)?;
            a.cpuid()?;
            a.mov(r12d, edx)?;
            l1_vmrun_hlt(a)
        },
        l2,
    );
    run(&mut m);
    assert_eq!(m.cpu.gpr[12] & 1, 1, "CPUID 8000_000Ah EDX.NP");
    assert_eq!(exitcode(&m), SvmExitCode::VMMCALL);
    assert_eq!(m.mem.read_u64(Gpa(DATA + 8)), 0x1234);
    assert_eq!(m.cpu.gpr[3], 0xAAAA, "L2 read DATA through the nested tables");
    assert_eq!(m.mem.read_u64(npte(NPT_A, DATA)) & (PTE_A | PTE_D), PTE_A | PTE_D);
    assert_eq!(m.mem.read_u64(npte(NPT_A, GUEST_CR3)) & (PTE_A | PTE_D), PTE_A | PTE_D);
    assert_eq!(m.nested.svm.vmexits, 1);
}

/// APM §15.25.6 "Nested versus Guest Page Faults, Fault Ordering": a not-present nested
/// entry for the final guest-physical address is #VMEXIT(NPF) with EXITINFO1 = U | bit 32
/// and EXITINFO2 = the guest-physical address; the guest RIP is the faulting
/// instruction, and decode assists (§15.33.4) report its bytes.
#[test]
fn npf_on_final_translation_not_present() {
    let l2 = |a: Asm| {
        a.nop()?;
        a.mov(rax, qword_ptr(DATA + 0x18))?;
        a.vmmcall()
    };
    let mut m = setup(l2);
    m.mem.write_u64(npte(NPT_A, DATA), 0);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::NPF);
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO1), NPF_U | NPF_FINAL_TRANSLATION);
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO1), 0x1_0000_0004);
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO2), DATA + 0x18);
    assert_eq!(rd(&m, VMCB, vmcb::RIP), l2_insn(l2, 1));
    let len = l2_insn(l2, 2) - l2_insn(l2, 1);
    assert_eq!(rd(&m, VMCB, vmcb::GUEST_INSN_LEN) & 0xFF, len);
}

/// APM §15.25.6: a guest page-table page on a read-only nested page faults while the
/// guest walks its tables (here for the first instruction fetch): EXITINFO1 = P|W|U|
/// bit 33 (guest table accesses are checked as writes; kvm-unit-tests `npt_rw_pfwalk`
/// measured 0x2_0000_0007 on hardware), EXITINFO2 = the table entry's guest-physical
/// address (CR3 + 0 for PML4 index 0).
#[test]
fn npf_on_guest_page_table_access() {
    let mut m = setup(|a| a.vmmcall());
    let e = npte(NPT_A, GUEST_CR3);
    let v = m.mem.read_u64(e);
    m.mem.write_u64(e, v & !0x2);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::NPF);
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO1), NPF_P | NPF_W | NPF_U | NPF_GUEST_TABLE);
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO1), 0x2_0000_0007);
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO2), GUEST_CR3);
    assert_eq!(rd(&m, VMCB, vmcb::RIP), L2);
}

/// APM §15.25.6: a not-present nested entry for a guest page-table page is reported
/// with bit 33 and without P.
#[test]
fn npf_on_guest_page_table_not_present() {
    let mut m = setup(|a| a.vmmcall());
    m.mem.write_u64(npte(NPT_A, GUEST_PD), 0);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::NPF);
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO1), NPF_W | NPF_U | NPF_GUEST_TABLE);
    // PD index 0 (L2 runs below 2 MiB).
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO2), GUEST_PD);
}

/// APM §15.25.5/§15.25.6: a write to a page that is read-only in the nested tables is
/// #NPF with P|W|U|bit 32 (kvm-unit-tests `npt_rw`: 0x1_0000_0007); the read before it
/// succeeds; the guest's own dirty flag is not set by the failed write.
#[test]
fn write_to_read_only_nested_page() {
    let l2 = |a: Asm| {
        a.mov(rax, qword_ptr(DATA))?;
        a.mov(qword_ptr(DATA), rax)?;
        a.vmmcall()
    };
    let mut m = setup(l2);
    m.mem.write_u64(npte(NPT_A, DATA), DATA | 0x5);
    let pde = m.mem.read_u64(Gpa(GUEST_PD));
    m.mem.write_u64(Gpa(GUEST_PD), pde & !PTE_D);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::NPF);
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO1), NPF_P | NPF_W | NPF_U | NPF_FINAL_TRANSLATION);
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO2), DATA);
    assert_eq!(rd(&m, VMCB, vmcb::RIP), l2_insn(l2, 1));
    assert_eq!(rd(&m, VMCB, vmcb::RAX), 0xAAAA, "the read went through");
    assert_eq!(m.mem.read_u64(Gpa(GUEST_PD)) & PTE_D, 0, "guest D not set");
}

/// APM §15.25.6: L1 handles the #NPF by filling in the nested entry (EXITINFO2 names
/// the page) and resumes L2 at the faulting instruction, which then completes.
#[test]
fn l1_fixes_nested_entry_and_resumes() {
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.xor(r13d, r13d)?;
        let mut again = a.create_label();
        let mut done = a.create_label();
        a.set_label(&mut again)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.mov(rbx, qword_ptr(VMCB + u64::from(vmcb::EXITCODE)))?;
        a.cmp(rbx, VMEXIT_NPF)?;
        a.jne(done)?;
        a.inc(r13)?;
        a.mov(rcx, qword_ptr(VMCB + u64::from(vmcb::EXITINFO2)))?;
        a.mov(rdx, rcx)?;
        a.shr(rdx, 12)?;
        a.and(rcx, -4096i32)?;
        a.or(rcx, RWU as i32)?;
        a.mov(rsi, NPT_A + 0x3000)?;
        a.mov(qword_ptr(rsi + rdx * 8), rcx)?;
        a.jmp(again)?;
        a.set_label(&mut done)?;
        a.hlt()
    };
    let l2 = |a: Asm| {
        a.mov(rax, 0x55u64)?;
        a.mov(qword_ptr(DATA + 0x20), rax)?;
        a.vmmcall()
    };
    let mut m = setup_with(l1, l2);
    m.mem.write_u64(npte(NPT_A, DATA), 0);
    run(&mut m);
    assert_eq!(m.cpu.gpr[13], 1, "one #NPF");
    assert_eq!(exitcode(&m), SvmExitCode::VMMCALL);
    assert_eq!(m.mem.read_u64(Gpa(DATA + 0x20)), 0x55);
}

/// APM Vol. 3 "INVLPGA" (ASID 0 is the host's): after L1 remaps a linear page of its
/// own without a flush, a read may still use the old translation (as here); INVLPGA of
/// that address and ASID drops it.
#[test]
fn invlpga_drops_the_stale_translation() {
    const LIN: u64 = 0x40_0000;
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.mov(rbx, qword_ptr(LIN))?;
        a.mov(rax, 0x60_0000u64 | 0x87)?;
        a.mov(qword_ptr(GUEST_PD + 2 * 8), rax)?;
        a.mov(r8, qword_ptr(LIN))?;
        a.mov(rax, LIN)?;
        a.xor(ecx, ecx)?;
        a.invlpga()?;
        a.mov(r9, qword_ptr(LIN))?;
        a.hlt()
    };
    let mut m = setup_with(l1, |a| a.vmmcall());
    m.mem.write_u64(Gpa(LIN), 0x4444);
    m.mem.write_u64(Gpa(0x60_0000), 0x6666);
    run(&mut m);
    assert_eq!(m.cpu.gpr[3], 0x4444);
    assert_eq!(m.cpu.gpr[8], 0x4444, "stale until invalidated");
    assert_eq!(m.cpu.gpr[9], 0x6666, "INVLPGA dropped the translation");
}

/// APM §15.16 "TLB Control": L1 changes the nested mapping of DATA between two runs of
/// the guest and asks for a flush (TLB_CONTROL = 1): the second run sees the new page.
#[test]
fn tlb_control_flush_shows_the_new_nested_mapping() {
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.mov(r14, rbx)?;
        a.mov(rax, OTHER | RWU)?;
        a.mov(qword_ptr(npte(NPT_A, DATA).0), rax)?;
        a.mov(byte_ptr(VMCB + u64::from(vmcb::TLB_CONTROL)), i32::from(tlb_control::FLUSH_ALL))?;
        rerun(a, VMCB)?;
        a.hlt()
    };
    let mut m = setup_with(l1, |a| {
        a.mov(rbx, qword_ptr(DATA))?;
        a.vmmcall()
    });
    run(&mut m);
    assert_eq!(m.nested.svm.vmruns, 2);
    assert_eq!(m.cpu.gpr[14], 0xAAAA);
    assert_eq!(m.cpu.gpr[3], 0xBBBB);
}

/// APM §15.16 "TLB Control" (ASIDs): two guests with ASIDs 1 and 2 and different nested
/// tables map the same guest-physical page to different pages; run alternately without
/// any TLB_CONTROL flush, each sees only its own translation.
#[test]
fn guests_with_different_asids_do_not_share_translations() {
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.mov(r14, rbx)?;
        a.mov(rax, VMCB2)?;
        a.vmrun()?;
        a.mov(r15, rbx)?;
        rerun(a, VMCB)?;
        a.hlt()
    };
    let mut m = setup_with(l1, |a| {
        a.mov(rbx, qword_ptr(DATA))?;
        a.vmmcall()
    });
    build_npt(&mut m, NPT_B);
    m.mem.write_u64(npte(NPT_B, DATA), THIRD | RWU);
    write_vmcb(&mut m, VMCB2, 2, NPT_B);
    run(&mut m);
    assert_eq!(m.nested.svm.vmruns, 3);
    assert_eq!(rd(&m, VMCB2, vmcb::EXITCODE), SvmExitCode::VMMCALL.0);
    assert_eq!(m.cpu.gpr[14], 0xAAAA, "ASID 1");
    assert_eq!(m.cpu.gpr[15], 0xCCCC, "ASID 2");
    assert_eq!(m.cpu.gpr[3], 0xAAAA, "ASID 1 again");
}

/// APM §15.25.6 with §15.20: an exception delivered through the guest's IDT whose
/// gate read faults in the nested tables exits with #NPF and the exception in
/// EXITINTINFO.
#[test]
fn npf_while_delivering_an_exception_names_it_in_exitintinfo() {
    const IDT: u64 = 0x50000;
    let l2 = |a: Asm| {
        a.ud2()?;
        a.vmmcall()
    };
    let mut m = setup(l2);
    m.set_exception_catch(0);
    m.mem.write_u64(Gpa(VMCB + u64::from(vmcb::IDTR_BASE)), IDT);
    m.mem.write_u32(Gpa(VMCB + u64::from(vmcb::IDTR_LIMIT)), 0xFFF);
    m.mem.write_u64(npte(NPT_A, IDT), 0);
    run(&mut m);
    assert_eq!(exitcode(&m), SvmExitCode::NPF);
    assert_eq!(rd(&m, VMCB, vmcb::EXITINFO2), IDT + 6 * 16);
    // EXITINTINFO: vector 6, type 3 (exception), valid.
    assert_eq!(rd(&m, VMCB, vmcb::EXITINTINFO), 6 | (3 << 8) | (1 << 31));
    assert_eq!(rd(&m, VMCB, vmcb::RIP), L2);
}
