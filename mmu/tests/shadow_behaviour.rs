//! Behaviour of the shadow page cache against hand-built guest tables: hits equal the
//! walker, unsync and resync at the x86 flush points (SDM Vol. 3A §4.10.4 "Invalidation
//! of TLBs and Paging-Structure Caches"), write emulation, write flooding, LRU
//! recycling, roles and generations.

use hvsim_mmu::paging::{
    load_pdptes, walk, Access, AccessKind, PagingMode, WalkConfig, PFEC_P, PFEC_PK, PFEC_W,
    PKRU_AD, PKRU_WD, PTE_A, PTE_D, PTE_P, PTE_PKEY_SHIFT, PTE_PS, PTE_RW, PTE_US,
};
use hvsim_mmu::shadow::{MissingFlush, Served, ShadowMmu};
use hvsim_mmu::{Gfn, Gpa, GuestMemory, Gva, MemoryMap};

const PML4: u64 = 0x1000;
const PDPT: u64 = 0x2000;
const PD: u64 = 0x3000;
const PT: u64 = 0x4000;
const PT2: u64 = 0x5000;
const RWU: u64 = PTE_P | PTE_RW | PTE_US;

const R: Access = Access { kind: AccessKind::Read, user: false, smap_override: false };
const W: Access = Access { kind: AccessKind::Write, user: false, smap_override: false };

fn cfg(cr3: u64) -> WalkConfig {
    WalkConfig {
        mode: PagingMode::Long4,
        cr3,
        wp: true,
        pse: true,
        nxe: true,
        smep: false,
        smap: false,
        pke: false,
        pkru: 0,
        pdptes: None,
        maxphyaddr: 40,
    }
}

/// PML4[0] -> PDPT[0] -> PD; PD[0] -> PT, PD[1] -> PT2, PD[2] = 2 MiB page at 4 MiB;
/// PT[i] and PT2[i] map 0x100000 + i * 0x1000 and 0x200000 + i * 0x1000.
fn long4() -> GuestMemory {
    let mut m = GuestMemory::new(MemoryMap::flat(16 << 20)).unwrap();
    m.write_u64(Gpa(PML4), PDPT | RWU);
    m.write_u64(Gpa(PDPT), PD | RWU);
    m.write_u64(Gpa(PD), PT | RWU);
    m.write_u64(Gpa(PD + 8), PT2 | RWU);
    m.write_u64(Gpa(PD + 16), 0x40_0000 | PTE_PS | RWU);
    for i in 0..512 {
        m.write_u64(Gpa(PT + i * 8), (0x10_0000 + i * 0x1000) | RWU);
        m.write_u64(Gpa(PT2 + i * 8), (0x20_0000 + i * 0x1000) | RWU);
    }
    m
}

/// Writes a guest entry and reports it the way the vCPU does.
fn guest_write_u64(m: &mut GuestMemory, s: &mut ShadowMmu, gpa: u64, v: u64) {
    m.write_u64(Gpa(gpa), v);
    if s.is_tracked(Gpa(gpa).gfn()) {
        s.guest_write(m, Gpa(gpa), 8);
    }
}

#[test]
fn second_translation_is_a_hit_equal_to_the_walk() {
    let mut m = long4();
    let mut reference = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    for (gva, acc) in [(0x3123, R), (0x3123, W), (0x3456, R), (0x40_1234, W), (0x20_5008, R)] {
        let want = walk(&mut reference, &c, Gva(gva), acc);
        let (got, _) = s.translate_traced(&mut m, &c, Gva(gva), acc);
        assert_eq!(got, want, "first translation of {gva:#x}");
        let (again, served) = s.translate_traced(&mut m, &c, Gva(gva), acc);
        assert_eq!(again, want);
        assert_eq!(served, Served::Cache, "{gva:#x} should hit");
    }
    // The walker's A/D side effects happened exactly once, identically.
    assert_eq!(m.backing()[..0x6000], reference.backing()[..0x6000]);
    assert_eq!(m.read_u64(Gpa(PT + 3 * 8)) & (PTE_A | PTE_D), PTE_A | PTE_D);
    assert!(s.stats().cache_hits >= 5);
}

#[test]
fn a_read_hit_does_not_serve_a_write_that_must_set_dirty() {
    // SDM Vol. 3A §4.8 "Accessed and Dirty Flags": the first write sets D in the PTE.
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    s.translate(&mut m, &c, Gva(0x7000), R).unwrap();
    assert_eq!(m.read_u64(Gpa(PT + 7 * 8)) & PTE_D, 0);
    let (t, served) = s.translate_traced(&mut m, &c, Gva(0x7000), W);
    assert_eq!(served, Served::Walk);
    assert_ne!(t.unwrap().leaf & PTE_D, 0);
    assert_ne!(m.read_u64(Gpa(PT + 7 * 8)) & PTE_D, 0);
    assert_eq!(s.translate_traced(&mut m, &c, Gva(0x7000), W).1, Served::Cache);
}

#[test]
fn faults_are_the_walkers_exactly() {
    // SDM Vol. 3A §4.7 "Page-Fault Exceptions": error codes come from the walk.
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    s.translate(&mut m, &c, Gva(0x9000), R).unwrap();
    guest_write_u64(&mut m, &mut s, PD, PT | PTE_P | PTE_US); // read-only PDE
    let user_write = Access { kind: AccessKind::Write, user: true, smap_override: false };
    let e = s.translate(&mut m, &c, Gva(0x9000), user_write).unwrap_err();
    assert_eq!(e.error_code, 0b111);
    let nx_fetch = Access { kind: AccessKind::Fetch, user: false, smap_override: false };
    guest_write_u64(&mut m, &mut s, PD, PT | RWU | (1 << 63));
    assert_eq!(s.translate(&mut m, &c, Gva(0x9000), nx_fetch).unwrap_err().error_code, 0b10001);
}

#[test]
fn pte_write_makes_the_page_table_unsync_and_invlpg_resyncs_it() {
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    let gva = Gva(0x5010);
    assert_eq!(s.translate(&mut m, &c, gva, R).unwrap().gpa, Gpa(0x10_5010));
    assert!(s.is_tracked(Gfn(PT >> 12)));
    // The guest remaps the page without INVLPG.
    guest_write_u64(&mut m, &mut s, PT + 5 * 8, 0x30_0000 | RWU);
    let st = s.stats();
    assert_eq!((st.mmu_unsync, st.unsync_pages, st.mmu_pte_write), (1, 1, 0));
    assert!(!s.is_tracked(Gfn(PT >> 12)), "unsync pages are not write-protected");
    // The old translation may still be used, as a TLB may (SDM Vol. 3A §4.10.4.3).
    let (t, served) = s.translate_traced(&mut m, &c, gva, R);
    let t = t.unwrap();
    assert_eq!((t.gpa, served), (Gpa(0x10_5010), Served::Cache));
    let report = s.check_stale(&m, &c, gva, &t).expect("stale");
    assert_eq!(report.missing, MissingFlush::Invlpg);
    assert_eq!(report.new_gpa, Some(Gpa(0x30_0010)));
    assert_eq!(report.old_entry_gpa, Gpa(PT + 5 * 8));
    assert!(report.to_string().contains("missing INVLPG 0x5010"), "{report}");
    // INVLPG resynchronises the entry.
    s.invlpg(gva, 0);
    let t = s.translate(&mut m, &c, gva, R).unwrap();
    assert_eq!(t.gpa, Gpa(0x30_0010));
    assert_eq!(s.check_stale(&m, &c, gva, &t), None);
    assert_eq!(s.stats().invlpg, 1);
}

#[test]
fn mov_cr3_resyncs_unless_no_flush_reloads_the_same_cr3() {
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    let gva = Gva(0x6000);
    s.translate(&mut m, &c, gva, R).unwrap();
    guest_write_u64(&mut m, &mut s, PT + 6 * 8, 0x31_0000 | RWU);
    // MOV CR3 with the PCID no-flush bit, same CR3: nothing is flushed (SDM Vol. 3A
    // §4.10.4.1: "... if bit 63 of the source operand is 1, the instruction is not
    // required to invalidate any TLB entries").
    s.new_cr3(PML4, true);
    assert_eq!(s.translate(&mut m, &c, gva, R).unwrap().gpa, Gpa(0x10_6000));
    // A flushing MOV CR3.
    s.new_cr3(PML4, false);
    assert_eq!(s.translate(&mut m, &c, gva, R).unwrap().gpa, Gpa(0x31_0000));
    let st = s.stats();
    assert_eq!((st.tlb_flush, st.unsync_pages), (1, 0));
    assert!(s.is_tracked(Gfn(PT >> 12)), "a synced page is write-protected again");
}

#[test]
fn switching_to_another_root_resyncs_what_it_reaches() {
    // Two address spaces share the PDPT; a write under one becomes visible when the
    // other is loaded, even with no-flush (its PCID never cached the old entry).
    let mut m = long4();
    m.write_u64(Gpa(0x8000), PDPT | RWU); // second PML4
    let mut s = ShadowMmu::new(64);
    let (a, b) = (cfg(PML4), cfg(0x8000 | 1));
    let gva = Gva(0x2000);
    s.translate(&mut m, &b, gva, R).unwrap();
    s.translate(&mut m, &a, gva, R).unwrap();
    guest_write_u64(&mut m, &mut s, PT + 2 * 8, 0x32_0000 | RWU);
    s.new_cr3(0x8000 | 1, true);
    assert_eq!(s.translate(&mut m, &b, gva, R).unwrap().gpa, Gpa(0x32_0000));
    // The PT has one shadow page, reached from both roots through the shared PDPT.
    assert_eq!(s.shadows_of(Gfn(PT >> 12)).len(), 1);
}

#[test]
fn upper_level_writes_are_emulated_in_place() {
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    s.translate(&mut m, &c, Gva(0x1000), R).unwrap();
    s.translate(&mut m, &c, Gva(0x20_1000), R).unwrap();
    // Swap the PDE to the other page table: non-leaf entries never go stale.
    guest_write_u64(&mut m, &mut s, PD, PT2 | RWU);
    let st = s.stats();
    assert_eq!((st.mmu_pte_write, st.mmu_pte_updated, st.mmu_unsync), (1, 1, 0));
    assert_eq!(s.translate(&mut m, &c, Gva(0x1000), R).unwrap().gpa, Gpa(0x20_1000));
    // Clearing the accessed flag is updated in place and the next walk sets it again.
    let pdpt_e = m.read_u64(Gpa(PDPT));
    guest_write_u64(&mut m, &mut s, PDPT, pdpt_e & !PTE_A);
    assert_eq!(s.translate_traced(&mut m, &c, Gva(0x1000), R).1, Served::Walk);
    assert_ne!(m.read_u64(Gpa(PDPT)) & PTE_A, 0);
}

#[test]
fn write_flooding_zaps_the_shadow_page() {
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    s.translate(&mut m, &c, Gva(0x1000), R).unwrap();
    let pd_role_pages = s.shadows_of(Gfn(PD >> 12));
    assert_eq!(pd_role_pages.len(), 1);
    // The guest reuses its PD page as data: three writes without a use in between.
    for i in 0..3u64 {
        guest_write_u64(&mut m, &mut s, PD + 0x800 + i * 8, 0xdead_0000 + i);
    }
    let st = s.stats();
    assert_eq!(st.mmu_flooded, 1);
    assert!(s.shadows_of(Gfn(PD >> 12)).is_empty());
    assert!(!s.is_tracked(Gfn(PD >> 12)));
    // Translation still works (and re-shadows the PD).
    assert_eq!(s.translate(&mut m, &c, Gva(0x1000), R).unwrap().gpa, Gpa(0x10_1000));
    // Writes interleaved with uses are not flooding.
    for i in 0..6u64 {
        guest_write_u64(&mut m, &mut s, PD + 0x800 + i * 8, 0xbeef_0000 + i);
        s.translate(&mut m, &c, Gva(0x1000), R).unwrap();
    }
    assert_eq!(s.stats().mmu_flooded, 1);
}

#[test]
fn lru_recycling_keeps_the_cache_within_its_bound() {
    let mut m = GuestMemory::new(MemoryMap::flat(16 << 20)).unwrap();
    m.write_u64(Gpa(PML4), PDPT | RWU);
    m.write_u64(Gpa(PDPT), PD | RWU);
    // 16 page tables, each mapping one page.
    for t in 0..16u64 {
        let pt = 0x10_0000 + t * 0x1000;
        m.write_u64(Gpa(PD + t * 8), pt | RWU);
        m.write_u64(Gpa(pt), (0x80_0000 + t * 0x1000) | RWU);
    }
    let limit = 6;
    let mut s = ShadowMmu::new(limit);
    let c = cfg(PML4);
    for round in 0..2 {
        for t in 0..16u64 {
            let gva = Gva(t << 21 | 0x10);
            assert_eq!(s.translate(&mut m, &c, gva, R).unwrap().gpa, Gpa(0x80_0010 + t * 0x1000));
            assert!(s.stats().shadow_pages as usize <= limit, "round {round} t {t}");
        }
    }
    let st = s.stats();
    assert!(st.mmu_recycled >= 16, "{st}");
    // The root, the PDPT and the PD survive: the least recently used pages are the PTs.
    assert!(!s.shadows_of(Gfn(PML4 >> 12)).is_empty());
    assert!(!s.shadows_of(Gfn(PD >> 12)).is_empty());
    assert!(s.shadows_of(Gfn(0x100)).is_empty(), "the oldest PT was recycled");
    assert!(!s.shadows_of(Gfn(0x10F)).is_empty(), "the newest PT was kept");
}

#[test]
fn one_table_under_two_roles_has_two_shadows() {
    // The same PT reached through a writable and a read-only PDE (different accumulated
    // access), and a root seen with CR0.WP set and clear.
    let mut m = long4();
    m.write_u64(Gpa(PD + 24), PT | PTE_P | PTE_US); // PD[3] -> PT, read-only
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    s.translate(&mut m, &c, Gva(0x1000), R).unwrap();
    s.translate(&mut m, &c, Gva(3 << 21 | 0x1000), R).unwrap();
    assert_eq!(s.shadows_of(Gfn(PT >> 12)).len(), 2);
    let t = s.translate(&mut m, &c, Gva(3 << 21 | 0x1000), R).unwrap();
    assert!(!t.writable);
    s.translate(&mut m, &WalkConfig { wp: false, ..c }, Gva(0x1000), R).unwrap();
    assert_eq!(s.shadows_of(Gfn(PML4 >> 12)).len(), 2);
    // The WP=0 tree has its own shadow of the PT too.
    assert_eq!(s.shadows_of(Gfn(PT >> 12)).len(), 3);
    // A write reaches every shadow of the PT: the frame is shadowed only as a page
    // table, so all go unsync.
    guest_write_u64(&mut m, &mut s, PT + 8, 0x33_0000 | RWU);
    assert_eq!(s.stats().mmu_unsync, 3);
}

#[test]
fn zap_all_is_a_generation_bump() {
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    s.translate(&mut m, &c, Gva(0x1000), R).unwrap();
    let before = s.stats().shadow_pages;
    assert_eq!(before, 4);
    s.zap_all();
    // Nothing is freed yet, but nothing old is served either.
    assert_eq!(s.stats().shadow_pages, before);
    assert_eq!(s.translate_traced(&mut m, &c, Gva(0x1000), R).1, Served::Walk);
    assert_eq!(s.translate_traced(&mut m, &c, Gva(0x1000), R).1, Served::Cache);
    // The old pages were reclaimed as they were found by key.
    assert_eq!(s.stats().shadow_pages, 4);
    assert_eq!(s.stats().mmu_shadow_zapped, 4);
}

#[test]
fn legacy_32bit_and_pae_translations_hit() {
    // 32-bit paging with a 4 MiB page (SDM Vol. 3A §4.3) and PAE (§4.4).
    let mut m = GuestMemory::new(MemoryMap::flat(16 << 20)).unwrap();
    m.write_u32(Gpa(0x1000), 0x2000 | 7);
    m.write_u32(Gpa(0x2000 + 3 * 4), 0x7000 | 3);
    m.write_u32(Gpa(0x1004), 0x0040_0000 | (PTE_PS | 3) as u32);
    let c32 = WalkConfig { mode: PagingMode::Legacy32, cr3: 0x1000, ..cfg(0) };
    m.write_u64(Gpa(0x3020 + 8), 0x4000 | 1); // PAE PDPT in the second 32-byte slot
    m.write_u64(Gpa(0x4000), 0x5000 | 7);
    m.write_u64(Gpa(0x5000 + 8), 0x8000 | 7);
    let cpae = WalkConfig { mode: PagingMode::Pae, cr3: 0x3020, ..cfg(0) };
    let mut s = ShadowMmu::new(64);
    for (c, gva, gpa) in
        [(c32, 0x3456, 0x7456), (c32, 0x41_2345, 0x41_2345), (cpae, 0x4000_1010, 0x8010)]
    {
        assert_eq!(s.translate(&mut m, &c, Gva(gva), W).unwrap().gpa, Gpa(gpa));
        let (t, served) = s.translate_traced(&mut m, &c, Gva(gva), W);
        assert_eq!((t.unwrap().gpa, served), (Gpa(gpa), Served::Cache), "{gva:#x}");
    }
    // Unsync and INVLPG in 32-bit paging (4-byte entries).
    s.translate(&mut m, &c32, Gva(0x3456), R).unwrap();
    m.write_u32(Gpa(0x2000 + 3 * 4), 0x9000 | 3);
    assert!(s.is_tracked(Gfn(2)));
    s.guest_write(&m, Gpa(0x2000 + 3 * 4), 4);
    assert_eq!(s.translate(&mut m, &c32, Gva(0x3456), R).unwrap().gpa, Gpa(0x7456));
    s.invlpg(Gva(0x3456), 0);
    assert_eq!(s.translate(&mut m, &c32, Gva(0x3456), R).unwrap().gpa, Gpa(0x9456));
}

#[test]
fn nested_contexts_do_not_share_shadows_and_flush_separately() {
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    s.translate(&mut m, &c, Gva(0x1000), R).unwrap();
    s.set_context(5);
    s.translate(&mut m, &c, Gva(0x1000), R).unwrap();
    assert_eq!(s.shadows_of(Gfn(PT >> 12)).len(), 2);
    guest_write_u64(&mut m, &mut s, PT + 8, 0x34_0000 | RWU);
    s.flush_asid(5);
    assert_eq!(s.translate(&mut m, &c, Gva(0x1000), R).unwrap().gpa, Gpa(0x34_0000));
    // Context 0's shadow of the PT is still unsync.
    assert_eq!(s.stats().unsync_pages, 1);
    s.set_context(0);
    s.flush_all();
    assert_eq!(s.translate(&mut m, &c, Gva(0x1000), R).unwrap().gpa, Gpa(0x34_0000));
    assert_eq!(s.stats().unsync_pages, 0);
}

#[test]
fn stats_display_names_the_kvm_counters() {
    let s = ShadowMmu::new(4);
    let text = s.stats().to_string();
    for name in ["mmu_shadow_zapped", "mmu_pte_write", "mmu_flooded", "mmu_recycled", "invlpg"] {
        assert!(text.contains(name), "{text}");
    }
}

#[test]
fn stale_reports_name_the_missing_flush() {
    // A translation served before an upper-level change (as a front-end TLB filled from
    // the cache would still hold it): MOV CR3 was needed, or INVPCID when the last CR3
    // load kept the PCID's translations; a global translation needs INVLPG (MOV CR3 does
    // not flush it). SDM Vol. 3A §4.10.4.1 and §4.10.4.2.
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    let served = s.translate(&mut m, &c, Gva(0x1000), R).unwrap();
    guest_write_u64(&mut m, &mut s, PD, PT2 | RWU);
    let r = s.check_stale(&m, &c, Gva(0x1000), &served).expect("stale");
    assert_eq!((r.missing, r.new_gpa), (MissingFlush::MovCr3, Some(Gpa(0x20_1000))));
    assert_eq!((r.new_entry_gpa, r.new_level), (Gpa(PT2 + 8), 1));
    s.new_cr3(PML4 | 3, true);
    let r = s.check_stale(&m, &c, Gva(0x1000), &served).expect("stale");
    assert_eq!(r.missing, MissingFlush::Invpcid);
    let global = hvsim_mmu::paging::Translation { global: true, ..served };
    assert_eq!(s.check_stale(&m, &c, Gva(0x1000), &global).unwrap().missing, MissingFlush::Invlpg);
    // A not-present entry now: no new address.
    guest_write_u64(&mut m, &mut s, PD, 0);
    let r = s.check_stale(&m, &c, Gva(0x1000), &served).expect("stale");
    assert_eq!((r.new_gpa, r.new_entry, r.new_level), (None, 0, 2));
    assert!(r.to_string().contains("no translation"), "{r}");
    // Only the accessed flag differs: not stale.
    let mut m = long4();
    let served = s.translate(&mut m, &cfg(PML4), Gva(0x1000), R).unwrap();
    let e = m.read_u64(Gpa(PT + 8));
    m.write_u64(Gpa(PT + 8), e & !PTE_A);
    assert_eq!(s.check_stale(&m, &c, Gva(0x1000), &served), None);
}

#[test]
fn a_write_spanning_two_tracked_frames_updates_both() {
    // A 16-byte write across the end of the PD into the PT (both frames shadowed; the PD
    // as level 2, so it is emulated; the PT as level 1, so it goes unsync).
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let c = cfg(PML4);
    s.translate(&mut m, &c, Gva(0x0000), R).unwrap();
    s.translate(&mut m, &c, Gva(511 << 21 | 0x1000), R).unwrap_err(); // PD[511] empty
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(PT2 | RWU).to_le_bytes()); // PD[511] -> PT2
    bytes[8..].copy_from_slice(&(0x35_0000 | RWU).to_le_bytes()); // PT[0]
    m.write(Gpa(PD + 511 * 8), &bytes);
    assert!(s.is_tracked(Gfn(PD >> 12)) && s.is_tracked(Gfn(PT >> 12)));
    s.guest_write(&m, Gpa(PD + 511 * 8), 16);
    let st = s.stats();
    assert_eq!((st.mmu_pte_write, st.mmu_unsync), (1, 1));
    assert_eq!(s.translate(&mut m, &c, Gva(511 << 21 | 0x1000), R).unwrap().gpa, Gpa(0x20_1000));
    // PT[0] is stale until flushed.
    assert_eq!(s.translate(&mut m, &c, Gva(0), R).unwrap().gpa, Gpa(0x10_0000));
    s.invlpg(Gva(0), 0);
    assert_eq!(s.translate(&mut m, &c, Gva(0), R).unwrap().gpa, Gpa(0x35_0000));
}

#[test]
fn tracking_epoch_moves_when_a_frame_becomes_tracked() {
    let mut m = long4();
    let mut s = ShadowMmu::new(64);
    let e0 = s.tracking_epoch();
    s.translate(&mut m, &cfg(PML4), Gva(0x1000), R).unwrap();
    let e1 = s.tracking_epoch();
    assert_eq!(e1 - e0, 4, "PML4, PDPT, PD and PT frames became tracked");
    s.translate(&mut m, &cfg(PML4), Gva(0x2000), R).unwrap();
    assert_eq!(s.tracking_epoch(), e1, "nothing new");
}

#[test]
fn pae_roots_are_the_pdpte_registers_not_the_pdpt_in_memory() {
    // SDM Vol. 3A §4.4.1 "PDPTE Registers": PAE walks use the PDPTEs loaded at the last
    // MOV to CR0/CR3/CR4; a later write to the PDPT in memory has no effect until CR3 is
    // loaded again.
    let mut m = GuestMemory::new(MemoryMap::flat(16 << 20)).unwrap();
    m.write_u64(Gpa(0x3000 + 8), 0x4000 | 1); // PDPTE[1] -> PD 0x4000
    m.write_u64(Gpa(0x4000), 0x5000 | 7);
    m.write_u64(Gpa(0x5000 + 8), 0x8000 | 7);
    m.write_u64(Gpa(0x6000), 0x7000 | 7); // a second PD -> PT 0x7000
    m.write_u64(Gpa(0x7000 + 8), 0x9000 | 7);
    let regs = load_pdptes(&mut m, 0x3000, 40).unwrap();
    let c = WalkConfig { mode: PagingMode::Pae, cr3: 0x3000, pdptes: Some(regs), ..cfg(0) };
    let mut s = ShadowMmu::new(64);
    let gva = Gva(0x4000_1010);
    assert_eq!(s.translate(&mut m, &c, gva, R).unwrap().gpa, Gpa(0x8010));
    assert_eq!(s.translate_traced(&mut m, &c, gva, R).1, Served::Cache);
    // The PDPT in memory is not write-tracked: only the registers matter.
    assert!(!s.is_tracked(Gfn(3)));
    m.write_u64(Gpa(0x3000 + 8), 0x6000 | 1);
    s.invlpg(gva, 0); // not even INVLPG reloads the registers
    assert_eq!(s.translate(&mut m, &c, gva, R).unwrap().gpa, Gpa(0x8010));
    assert_eq!(walk(&mut m, &c, gva, R).unwrap().gpa, Gpa(0x8010));
    // MOV CR3 reloads them: the new PD is used.
    s.new_cr3(0x3000, false);
    let regs = load_pdptes(&mut m, 0x3000, 40).unwrap();
    let c2 = WalkConfig { pdptes: Some(regs), ..c };
    assert_eq!(s.translate(&mut m, &c2, gva, R).unwrap().gpa, Gpa(0x9010));
    assert_eq!(s.translate_traced(&mut m, &c2, gva, R).1, Served::Cache);
    // The same CR3 with the old register values is a different root.
    assert_eq!(s.translate(&mut m, &c, gva, R).unwrap().gpa, Gpa(0x8010));
    // A not-present PDPTE register faults like the walker, with no A/D anywhere.
    let c3 = WalkConfig { pdptes: Some([0; 4]), ..c };
    assert_eq!(s.translate(&mut m, &c3, gva, R), walk(&mut m, &c3, gva, R));
}

#[test]
fn protection_keys_are_checked_on_every_hit() {
    // SDM Vol. 3A §4.6.2 "Protection Keys": PKRU is consulted at each data access to a
    // user page; WRPKRU needs no TLB flush.
    let mut m = long4();
    m.write_u64(Gpa(PT + 8), 0x10_1000 | RWU | (5 << PTE_PKEY_SHIFT));
    let c = WalkConfig { pke: true, pkru: 0, ..cfg(PML4) };
    let mut s = ShadowMmu::new(64);
    let gva = Gva(0x1000);
    let t = s.translate(&mut m, &c, gva, W).unwrap();
    assert_eq!(t.pkey, 5);
    let (t2, served) = s.translate_traced(&mut m, &c, gva, W);
    assert_eq!((t2.unwrap().pkey, served), (5, Served::Cache));
    for pkru in [PKRU_AD << 10, PKRU_WD << 10] {
        let ck = WalkConfig { pkru, ..c };
        let got = s.translate(&mut m, &ck, gva, W);
        assert_eq!(got, walk(&mut m, &ck, gva, W));
        assert_eq!(got.unwrap_err().error_code, PFEC_P | PFEC_W | PFEC_PK);
    }
    // Write-disable leaves reads alone, and keys of other pages do not matter.
    let ck = WalkConfig { pkru: PKRU_WD << 10 | PKRU_AD, ..c };
    assert_eq!(s.translate_traced(&mut m, &ck, gva, R).1, Served::Cache);
}

#[test]
fn a_translation_checked_at_another_offset_of_its_page_is_not_stale() {
    // A TLB entry made for one byte of a page serves the whole page.
    let mut m = long4();
    let c = cfg(PML4);
    let s = ShadowMmu::new(64);
    let t = walk(&mut m, &c, Gva(0x1010), R).unwrap();
    assert_eq!(s.check_stale(&m, &c, Gva(0x1FF8), &t), None);
    let big = walk(&mut m, &c, Gva(0x40_0010), R).unwrap();
    assert_eq!(s.check_stale(&m, &c, Gva(0x5F_0000), &big), None);
    // Remapped: the report gives what the old entry gives for this address.
    m.write_u64(Gpa(PT + 8), 0x30_0000 | RWU);
    let r = s.check_stale(&m, &c, Gva(0x1FF8), &t).unwrap();
    assert_eq!((r.old_gpa, r.new_gpa), (Gpa(0x10_1FF8), Some(Gpa(0x30_0FF8))));
}
