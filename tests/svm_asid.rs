//! ASID-tagged translations of SVM guests without nested paging (APM Vol. 2 §15.16 "TLB
//! Control", Vol. 3 "INVLPGA"): the shadow page cache keeps the host's (ASID 0) and each
//! guest's translations apart, VMRUN and #VMEXIT switch between them without a flush,
//! and TLB_CONTROL and INVLPGA flush what the APM says. Each test names its section.
//!
//! Layout: the shared L1 layout (`support/svm_l1.rs`). The guest runs with L1's state:
//! 64-bit, CPL 0, CR3 = the harness's identity tables (2-MiB pages).

use hvsim::nested::svm::state::save_world;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, Vendor};
use hvsim_mmu::{Gfn, Gpa};
use hvsim_svm_model::intercept as icpt;
use hvsim_svm_model::msr as svm_msr;
use hvsim_svm_model::vmcb::{self, tlb_control};
use hvsim_svm_model::VmcbImage;
use iced_x86::code_asm::*;

#[path = "support/svm_l1.rs"]
mod svm_l1;
use svm_l1::*;

/// The guest's PD for the first GiB (the harness's tables at `setup_area() + 0x1000`).
const GUEST_PD: u64 = 0xFFB000;
/// A linear 2-MiB page L1 remaps, and the two physical pages it maps to.
const LIN: u64 = 0x40_0000;
const NEW_PAGE: u64 = 0x60_0000;
/// PDE flags: present, writable, accessed, dirty, 2-MiB page.
const PDE_2M: u64 = 0x87 | 0x60;

/// A machine with `l1` at L1, `l2` at L2, and a VMCB with L1's state, RIP = L2, the
/// given ASID and TLB_CONTROL, VMRUN and VMMCALL intercepted.
fn setup(
    l1: impl FnOnce(Asm) -> Result<(), IcedError>,
    l2: impl FnOnce(Asm) -> Result<(), IcedError>,
    asid: u32,
    tlb: u8,
) -> Machine {
    let cfg = MachineConfig { vendor: Vendor::Amd, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.set_exception_catch(hvsim::machine::CATCH_ALL);
    m.load(L1, &asm(L1, l1)).unwrap();
    m.enter_mode(GuestMode::Long64, L1, L1_STACK).unwrap();
    m.load(L2, &asm(L2, l2)).unwrap();
    let mut img = VmcbImage::zeroed();
    save_world(&m, &mut img, L2);
    img.set_u64(vmcb::EFER, m.cpu.efer | svm_msr::EFER_SVME);
    img.set_u64(vmcb::RSP, L2_STACK);
    img.set_u64(vmcb::RFLAGS, 2);
    img.write(vmcb::GUEST_ASID, 4, u64::from(asid));
    img.write(vmcb::TLB_CONTROL, 1, u64::from(tlb));
    let misc2 = icpt::INTERCEPT_VMRUN.mask() | icpt::INTERCEPT_VMMCALL.mask();
    img.write(icpt::INTERCEPT_VMRUN.word, 4, u64::from(misc2));
    img.set_u64(vmcb::MSRPM_BASE_PA, MSRPM);
    img.set_u64(vmcb::IOPM_BASE_PA, IOPM);
    m.load(VMCB, img.as_bytes()).unwrap();
    m.mem.write_u64(Gpa(LIN), 0x4444);
    m.mem.write_u64(Gpa(NEW_PAGE), 0x6666);
    m
}

fn run(m: &mut Machine) {
    let r = m.run(Some(10_000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
}

/// L1 that runs the guest `n` times (rewinding its RIP), then halts.
fn l1_runs(n: usize) -> impl FnOnce(Asm) -> Result<(), IcedError> {
    move |a: Asm| {
        enable_svm(a)?;
        for _ in 0..n {
            a.mov(rax, L2)?;
            a.mov(qword_ptr(VMCB + u64::from(vmcb::RIP)), rax)?;
            a.mov(rax, VMCB)?;
            a.vmrun()?;
        }
        a.hlt()
    }
}

/// L2 that reads LIN into RBX and exits.
fn l2_reads(a: Asm) -> Result<(), IcedError> {
    a.mov(rbx, qword_ptr(LIN))?;
    a.vmmcall()
}

/// The shadow cache's translation contexts holding a shadow page of L1's PML4 (which the
/// guest shares).
fn contexts_of_pml4(m: &Machine) -> Vec<u16> {
    let s = m.shadow_mmu().expect("shadow cache on");
    let pml4 = Gfn(m.cpu.cr3 >> 12);
    let mut v: Vec<u16> = s
        .shadows_of(pml4)
        .into_iter()
        .filter_map(|id| s.page(id))
        .map(|p| p.role.nested())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// APM §15.16 "TLB Control": "the TLB is tagged with the ASID"; the guest's translations
/// (ASID 5) are cached apart from the host's (ASID 0), although both walk the same
/// tables.
#[test]
fn guest_translations_are_cached_under_its_asid() {
    let mut m = setup(l1_runs(1), l2_reads, 5, tlb_control::DO_NOTHING);
    run(&mut m);
    assert_eq!(m.cpu.gpr[3], 0x4444);
    assert_eq!(contexts_of_pml4(&m), vec![0, 5]);
}

/// APM §15.16: with TLB_CONTROL = 0, VMRUN and #VMEXIT flush nothing: running the guest
/// three times costs no more shadow-cache flushes than running it once.
#[test]
fn world_switches_do_not_flush() {
    let flushes = |n| {
        let mut m = setup(l1_runs(n), l2_reads, 1, tlb_control::DO_NOTHING);
        run(&mut m);
        assert_eq!(m.nested.svm.vmexits, n as u64);
        m.mmu_stats().unwrap().tlb_flush
    };
    assert_eq!(flushes(3), flushes(1));
}

/// APM §15.16.1 "TLB Flush": TLB_CONTROL 1, 3 and 7 flush on every VMRUN (one flush per
/// VMRUN more than TLB_CONTROL 0); 3 and 7 flush only the guest's ASID, so the host's
/// cached tables are not resynchronised by them (the same number of pages stays
/// cached either way).
#[test]
fn tlb_control_flushes_on_each_vmrun() {
    let stats = |tlb| {
        let mut m = setup(l1_runs(2), l2_reads, 1, tlb);
        run(&mut m);
        m.mmu_stats().unwrap()
    };
    let none = stats(tlb_control::DO_NOTHING);
    for tlb in
        [tlb_control::FLUSH_ALL, tlb_control::FLUSH_GUEST, tlb_control::FLUSH_GUEST_NON_GLOBAL]
    {
        let s = stats(tlb);
        assert_eq!(s.tlb_flush, none.tlb_flush + 2, "TLB_CONTROL {tlb}");
        assert_eq!(s.shadow_pages, none.shadow_pages, "TLB_CONTROL {tlb}");
    }
}

/// APM §15.16: L1 remaps a page of the guest's tables between two runs and asks for a
/// flush of the guest's ASID: the second run sees the new page.
#[test]
fn flush_guest_asid_shows_the_new_mapping() {
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.mov(r14, rbx)?;
        a.mov(rax, NEW_PAGE | PDE_2M)?;
        a.mov(qword_ptr(GUEST_PD + 2 * 8), rax)?;
        a.mov(rax, L2)?;
        a.mov(qword_ptr(VMCB + u64::from(vmcb::RIP)), rax)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.hlt()
    };
    let mut m = setup(l1, l2_reads, 1, tlb_control::FLUSH_GUEST);
    run(&mut m);
    assert_eq!(m.cpu.gpr[14], 0x4444, "first run");
    assert_eq!(m.cpu.gpr[3], 0x6666, "after the ASID flush");
}

/// APM Vol. 3 "INVLPGA": the mapping is invalidated for the ASID in ECX only. L1 remaps
/// one of its own pages without a flush (its TLB keeps the old translation, as hardware
/// may); INVLPGA of that address for a guest's ASID leaves the host's translation, and
/// INVLPGA for ASID 0 (the host's) drops it.
#[test]
fn invlpga_invalidates_only_the_named_asid() {
    let l1 = |a: Asm| {
        enable_svm(a)?;
        a.mov(rbx, qword_ptr(LIN))?;
        a.mov(rax, NEW_PAGE | PDE_2M)?;
        a.mov(qword_ptr(GUEST_PD + 2 * 8), rax)?;
        a.mov(rax, LIN)?;
        a.mov(ecx, 7)?;
        a.invlpga()?;
        a.mov(r8, qword_ptr(LIN))?;
        a.mov(rax, LIN)?;
        a.xor(ecx, ecx)?;
        a.invlpga()?;
        a.mov(r9, qword_ptr(LIN))?;
        a.hlt()
    };
    let mut m = setup(l1, |a| a.vmmcall(), 1, tlb_control::DO_NOTHING);
    run(&mut m);
    assert_eq!(m.cpu.gpr[3], 0x4444);
    assert_eq!(m.cpu.gpr[8], 0x4444, "INVLPGA of ASID 7 left the host's translation");
    assert_eq!(m.cpu.gpr[9], 0x6666, "INVLPGA of ASID 0 dropped it");
}
