//! The shadow page cache as a guest sees it: guests that edit their page tables, flush
//! (or forget to), switch CR3 and write tables repeatedly, run with the cache on and
//! off (SDM Vol. 3A §4.10 "Caching Translation Information"), and `strict_tlb` reports
//! of stale translations.

use hvsim::machine::{StaleUse, CATCH_ALL};
use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use hvsim_mmu::shadow::MissingFlush;
use hvsim_mmu::Gpa;
use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;

const CODE: u64 = 0x1000;
const STACK: u64 = 0x7000;
/// Address space A: PML4 -> PDPT -> PD (PD[0] a 2 MiB identity page, PD[1] -> PT,
/// PD[7] the 2 MiB identity page holding the harness GDT); PDPT[1] -> PDX -> PTX.
const PML4: u64 = 0x10000;
const PDPT: u64 = 0x11000;
const PD: u64 = 0x12000;
const PT: u64 = 0x13000;
const PDX: u64 = 0x16000;
const PTX: u64 = 0x17000;
/// Address space B: the same layout, its PT mapping TARGET to FRAME_B.
const PML4_B: u64 = 0x14000;
const PDPT_B: u64 = 0x15000;
const PD_B: u64 = 0x18000;
const PT_B: u64 = 0x19000;
/// The linear page the tests remap (PD[1], PT[0]), and one in the second GiB.
const TARGET: u64 = 0x20_0000;
const FAR: u64 = 0x4000_0000;
const FRAME_A: u64 = 0x8_0000;
const FRAME_B: u64 = 0x8_1000;
const FRAME_C: u64 = 0x8_2000;
const VAL_A: u64 = 0xAAAA_0000_0000_000A;
const VAL_B: u64 = 0xBBBB_0000_0000_000B;
const VAL_C: u64 = 0xCCCC_0000_0000_000C;
const RW: u64 = 0x3; // P | R/W
const RWU: u64 = 0x7; // P | R/W | U/S
const PS: u64 = 0x80;

fn put(m: &mut Machine, gpa: u64, v: u64) {
    m.load(gpa, &v.to_le_bytes()).unwrap();
}

/// A 64-bit machine whose tables (built here) the guest switches to.
fn machine(shadow_cache: bool, strict_tlb: bool) -> Machine {
    let cfg = MachineConfig { shadow_cache, strict_tlb, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.set_exception_catch(CATCH_ALL);
    let gdt_2m = m.setup_area() & !0x1F_FFFF;
    for (pml4, pdpt, pd, pt, frame) in
        [(PML4, PDPT, PD, PT, FRAME_A), (PML4_B, PDPT_B, PD_B, PT_B, FRAME_B)]
    {
        put(&mut m, pml4, pdpt | RWU);
        put(&mut m, pdpt, pd | RWU);
        put(&mut m, pdpt + 8, PDX | RWU);
        put(&mut m, pd, PS | RW);
        put(&mut m, pd + 8, pt | RWU);
        put(&mut m, pd + 8 * (gdt_2m >> 21), gdt_2m | PS | RW);
        put(&mut m, pt, frame | RWU);
    }
    put(&mut m, PDX, PTX | RWU);
    put(&mut m, PTX, FRAME_C | RWU);
    put(&mut m, FRAME_A, VAL_A);
    put(&mut m, FRAME_B, VAL_B);
    put(&mut m, FRAME_C, VAL_C);
    m
}

/// Assembles 64-bit guest code at [`CODE`]; returns it and the address of `mark`.
fn guest(
    f: impl FnOnce(&mut CodeAssembler, &mut CodeLabel) -> Result<(), IcedError>,
) -> (Vec<u8>, u64) {
    let mut a = CodeAssembler::new(64).unwrap();
    let mut mark = a.create_label();
    a.mov(rax, PML4).unwrap();
    a.mov(cr3, rax).unwrap();
    f(&mut a, &mut mark).unwrap();
    let r = a.assemble_options(CODE, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).unwrap();
    let ip = r.label_ip(&mark).unwrap_or(0);
    (r.inner.code_buffer, ip)
}

/// Runs `code` to its (first) HLT.
fn run(m: &mut Machine, code: &[u8]) {
    m.load(CODE, code).unwrap();
    m.enter_mode(GuestMode::Long64, CODE, STACK).unwrap();
    let r = m.run(Some(10_000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
}

/// Continues after a HLT to the next one.
fn resume(m: &mut Machine) {
    m.cpu.halted = false;
    let r = m.run(Some(10_000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
}

/// Writes `v` to the qword at `at` (through the identity mapping).
fn store(a: &mut CodeAssembler, at: u64, v: u64) -> Result<(), IcedError> {
    a.mov(rax, v)?;
    a.mov(rdx, at)?;
    a.mov(qword_ptr(rdx), rax)
}

/// Reads the qword at linear `at` into `dst`.
fn load(a: &mut CodeAssembler, dst: AsmRegister64, at: u64) -> Result<(), IcedError> {
    a.mov(rdx, at)?;
    a.mov(dst, qword_ptr(rdx))
}

const CONFIGS: [(bool, bool); 4] = [(true, false), (false, false), (true, true), (false, true)];

#[test]
fn a_pte_edit_followed_by_invlpg_gives_the_new_mapping_with_and_without_the_cache() {
    // SDM Vol. 3A §4.10.4.1: INVLPG invalidates the TLB entries for the page.
    let (code, _) = guest(|a, _| {
        load(a, rbx, TARGET)?;
        store(a, PT, FRAME_B | RWU)?;
        a.mov(rdx, TARGET)?;
        a.invlpg(qword_ptr(rdx))?;
        load(a, rcx, TARGET)?;
        a.hlt()
    });
    for (shadow, strict) in CONFIGS {
        let mut m = machine(shadow, strict);
        run(&mut m, &code);
        assert_eq!((m.cpu.gpr[3], m.cpu.gpr[1]), (VAL_A, VAL_B), "cache {shadow} strict {strict}");
        assert!(m.stale_translations().is_empty(), "{:?}", m.stale_translations());
        match m.mmu_stats() {
            Some(s) => {
                assert!(s.mmu_unsync >= 1, "the PT went unsync: {s}");
                assert!(s.invlpg >= 1, "{s}");
            }
            None => assert!(!shadow),
        }
    }
}

#[test]
fn a_forgotten_invlpg_may_use_the_old_mapping_and_strict_tlb_reports_it() {
    // SDM Vol. 3A §4.10.4.2 "Recommended Invalidation": after changing a PTE, software
    // should INVLPG the page; until then the old translation may be used.
    let (code, stale_rip) = guest(|a, mark| {
        load(a, rbx, TARGET)?;
        store(a, PT, FRAME_B | RWU)?;
        a.mov(rdx, TARGET)?;
        a.set_label(mark)?;
        a.mov(rcx, qword_ptr(rdx))?;
        a.mov(rsi, qword_ptr(rdx))?;
        a.hlt()
    });
    for (shadow, strict) in CONFIGS {
        let mut m = machine(shadow, strict);
        run(&mut m, &code);
        let what = format!("cache {shadow} strict {strict}");
        assert_eq!(m.cpu.gpr[3], VAL_A, "{what}");
        // The old translation is still cached (TLB and shadow entry), as hardware may.
        assert_eq!(m.cpu.gpr[1], VAL_A, "{what}");
        if !strict {
            assert!(m.stale_translations().is_empty());
            continue;
        }
        // One report per (RIP, page): the two reads are two instructions.
        let uses: &[StaleUse] = m.stale_translations();
        assert_eq!(uses.len(), 2, "{what}: {uses:?}");
        let u = uses[0];
        assert_eq!(u.rip, stale_rip, "{what}");
        assert_eq!(u.stale.gva.0, TARGET);
        assert_eq!(u.stale.old_entry_gpa, Gpa(PT));
        assert_eq!(u.stale.old_entry & !0x60, FRAME_A | RWU, "old entry (A/D aside)");
        assert_eq!(u.stale.old_gpa, Gpa(FRAME_A));
        assert_eq!((u.stale.new_entry_gpa, u.stale.new_entry), (Gpa(PT), FRAME_B | RWU));
        assert_eq!(u.stale.new_gpa, Some(Gpa(FRAME_B)));
        assert_eq!(u.stale.missing, MissingFlush::Invlpg);
        let text = u.to_string();
        assert!(text.contains(&format!("rip {stale_rip:#x}")), "{text}");
        assert!(text.contains("missing INVLPG 0x200000"), "{text}");
        assert!(uses[1].rip > stale_rip);
    }
}

#[test]
fn cr3_switches_between_two_address_spaces() {
    // SDM Vol. 3A §4.10.4.1: MOV to CR3 invalidates the non-global translations.
    let (code, _) = guest(|a, _| {
        load(a, rbx, TARGET)?;
        a.mov(rax, PML4_B)?;
        a.mov(cr3, rax)?;
        load(a, rcx, TARGET)?;
        a.mov(rax, PML4)?;
        a.mov(cr3, rax)?;
        load(a, rsi, TARGET)?;
        a.mov(rax, PML4_B)?;
        a.mov(cr3, rax)?;
        load(a, rdi, TARGET)?;
        a.hlt()
    });
    for (shadow, strict) in CONFIGS {
        let mut m = machine(shadow, strict);
        run(&mut m, &code);
        let g = &m.cpu.gpr;
        assert_eq!([g[3], g[1], g[6], g[7]], [VAL_A, VAL_B, VAL_A, VAL_B], "cache {shadow}");
        assert!(m.stale_translations().is_empty());
        if let Some(s) = m.mmu_stats() {
            // Each space's tables have their own shadow pages; coming back to a space
            // finds its root cached and answers from it.
            assert!(s.shadow_pages >= 8, "{s}");
            assert!(s.cache_hits >= 2, "{s}");
            assert!(s.tlb_flush >= 4, "{s}");
        }
    }
}

#[test]
fn unsync_then_resync_on_invlpg_and_mov_cr3_in_the_stats() {
    // A written page table goes unsync instead of staying write-protected; INVLPG
    // resynchronises the entry it names, MOV CR3 the whole page (KVM's unsync pages).
    let (code, _) = guest(|a, _| {
        load(a, rbx, TARGET)?;
        store(a, PT, FRAME_B | RWU)?;
        a.hlt()?;
        a.mov(rdx, TARGET)?;
        a.invlpg(qword_ptr(rdx))?;
        load(a, rcx, TARGET)?;
        a.hlt()?;
        a.mov(rax, PML4)?;
        a.mov(cr3, rax)?;
        load(a, rsi, TARGET)?;
        a.hlt()
    });
    let mut m = machine(true, false);
    run(&mut m, &code);
    let s = m.mmu_stats().unwrap();
    assert_eq!((s.mmu_unsync, s.unsync_pages), (1, 1), "{s}");
    assert!(!m.shadow_mmu().unwrap().is_tracked(hvsim_mmu::Gfn(PT >> 12)));
    resume(&mut m);
    assert_eq!(m.cpu.gpr[1], VAL_B);
    resume(&mut m);
    assert_eq!(m.cpu.gpr[6], VAL_B);
    let s = m.mmu_stats().unwrap();
    assert_eq!(s.unsync_pages, 0, "MOV CR3 resynchronised the page: {s}");
    assert!(m.shadow_mmu().unwrap().is_tracked(hvsim_mmu::Gfn(PT >> 12)), "tracked again");
}

#[test]
fn a_table_written_again_and_again_without_use_is_zapped() {
    // KVM's write-flooding detection: a non-leaf table written repeatedly without being
    // used for a translation in between is zapped rather than emulated forever.
    let (code, _) = guest(|a, _| {
        load(a, rbx, FAR)?;
        for i in 0..4u64 {
            store(a, PDX + 8 * 5, (0x9000 + i * 0x1000) | RWU)?;
        }
        load(a, rcx, FAR)?;
        a.hlt()
    });
    for (shadow, strict) in CONFIGS {
        let mut m = machine(shadow, strict);
        run(&mut m, &code);
        assert_eq!((m.cpu.gpr[3], m.cpu.gpr[1]), (VAL_C, VAL_C), "cache {shadow}");
        assert!(m.stale_translations().is_empty());
        if let Some(s) = m.mmu_stats() {
            assert!(s.mmu_pte_write >= 2, "{s}");
            assert!(s.mmu_flooded >= 1, "{s}");
            assert!(s.mmu_shadow_zapped >= 1, "{s}");
        }
    }
}

#[test]
fn the_guest_tables_hold_what_the_guest_wrote() {
    // Writes to write-tracked frames go through the slow path and land in memory.
    let (code, _) = guest(|a, _| {
        load(a, rbx, TARGET)?;
        store(a, PT + 8, FRAME_C | RWU)?;
        a.hlt()
    });
    let mut m = machine(true, true);
    run(&mut m, &code);
    assert_eq!(m.mem.read_u64(Gpa(PT + 8)), FRAME_C | RWU);
}
