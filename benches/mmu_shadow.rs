//! Address translation with and without the shadow page cache: four address spaces
//! (own PML4 and page tables, shared kernel half), the guest alternating CR3 between
//! them and touching 256 pages in each. Throughput is in translations per second
//! (criterion's "elem/s"); the shadow cache's hit rate is printed once per run.
//!
//! `walk_every_time` is what a vCPU does without the cache (`paging::walk` on every
//! translation that misses its front-end TLB); `shadow_cache` asks `ShadowMmu`.
//! `pte_write_invlpg` measures the unsync / resync path: remap one page, INVLPG it,
//! translate it.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hvsim_mmu::paging::{walk, Access, AccessKind, PagingMode, WalkConfig, PTE_P, PTE_RW, PTE_US};
use hvsim_mmu::shadow::ShadowMmu;
use hvsim_mmu::{Gpa, GuestMemory, Gva, MemoryMap};

const SPACES: u64 = 4;
const PAGES: u64 = 256;
const RWU: u64 = PTE_P | PTE_RW | PTE_US;

/// Address space `s`: PML4 at 0x10000 + s * 0x10000, its PDPT, PD and one PT right after;
/// user pages at 0x40_0000 map to frames 0x100_0000 + s * 1 MiB + i * 4 KiB. All spaces
/// share a kernel PDPT (PML4 slot 511) mapping a 2 MiB page.
fn build() -> (GuestMemory, Vec<WalkConfig>) {
    let mut m = GuestMemory::new(MemoryMap::flat(32 << 20)).expect("guest memory");
    let kernel_pdpt = 0x9000u64;
    let kernel_pd = 0xA000u64;
    m.write_u64(Gpa(kernel_pdpt), kernel_pd | PTE_P | PTE_RW);
    m.write_u64(Gpa(kernel_pd), 0x20_0000 | (1 << 7) | PTE_P | PTE_RW);
    let mut cfgs = Vec::new();
    for s in 0..SPACES {
        let base = 0x10000 + s * 0x10000;
        let (pml4, pdpt, pd, pt) = (base, base + 0x1000, base + 0x2000, base + 0x3000);
        m.write_u64(Gpa(pml4), pdpt | RWU);
        m.write_u64(Gpa(pml4 + 511 * 8), kernel_pdpt | PTE_P | PTE_RW);
        m.write_u64(Gpa(pdpt), pd | RWU);
        m.write_u64(Gpa(pd + 2 * 8), pt | RWU);
        for i in 0..PAGES {
            m.write_u64(Gpa(pt + i * 8), (0x100_0000 + s * 0x10_0000 + i * 0x1000) | RWU);
        }
        cfgs.push(WalkConfig {
            mode: PagingMode::Long4,
            cr3: pml4,
            wp: true,
            pse: true,
            nxe: true,
            smep: false,
            smap: false,
            pke: false,
            pkru: 0,
            pdptes: None,
            maxphyaddr: 40,
        });
    }
    (m, cfgs)
}

fn access(i: u64) -> Access {
    let kind = if i % 4 == 0 { AccessKind::Write } else { AccessKind::Read };
    Access { kind, user: true, smap_override: false }
}

fn gva(i: u64) -> Gva {
    Gva(0x40_0000 + i * 0x1000 + (i & 0xFF) * 8)
}

const PER_ITER: u64 = SPACES * (PAGES + 1);

/// One round: every space in turn, MOV CR3, touch every user page and one kernel page.
fn round_walk(m: &mut GuestMemory, cfgs: &[WalkConfig]) -> u64 {
    let mut sum = 0;
    for c in cfgs {
        for i in 0..PAGES {
            sum ^= walk(m, c, gva(i), access(i)).map_or(0, |t| t.gpa.0);
        }
        let kernel = Access { kind: AccessKind::Read, user: false, smap_override: false };
        sum ^= walk(m, c, Gva(0xFFFF_FF80_0000_1000), kernel).map_or(0, |t| t.gpa.0);
    }
    sum
}

fn round_shadow(m: &mut GuestMemory, s: &mut ShadowMmu, cfgs: &[WalkConfig]) -> u64 {
    let mut sum = 0;
    for c in cfgs {
        s.new_cr3(c.cr3, false);
        for i in 0..PAGES {
            sum ^= s.translate(m, c, gva(i), access(i)).map_or(0, |t| t.gpa.0);
        }
        let kernel = Access { kind: AccessKind::Read, user: false, smap_override: false };
        sum ^= s.translate(m, c, Gva(0xFFFF_FF80_0000_1000), kernel).map_or(0, |t| t.gpa.0);
    }
    sum
}

fn bench(c: &mut Criterion) {
    let (mut m, cfgs) = build();
    // Both variants must agree before anything is timed.
    let mut s = ShadowMmu::new(1024);
    let (mut m2, _) = build();
    assert_eq!(round_walk(&mut m2, &cfgs), round_shadow(&mut m, &mut s, &cfgs));

    let mut g = c.benchmark_group("mmu_shadow");
    g.throughput(Throughput::Elements(PER_ITER));
    g.bench_function("walk_every_time", |b| b.iter(|| black_box(round_walk(&mut m2, &cfgs))));
    let mut s = ShadowMmu::new(1024);
    g.bench_function("shadow_cache", |b| b.iter(|| black_box(round_shadow(&mut m, &mut s, &cfgs))));
    let st = s.stats();
    eprintln!(
        "mmu_shadow/shadow_cache: hit rate {:.2}% ({} of {} translations), {} shadow pages",
        100.0 * st.hit_rate(),
        st.cache_hits,
        st.translations,
        st.shadow_pages
    );

    // Unsync + resync: remap a page, INVLPG it, translate it.
    g.throughput(Throughput::Elements(1));
    let c0 = cfgs[0];
    let pt = 0x13000u64;
    let mut s = ShadowMmu::new(1024);
    round_shadow(&mut m, &mut s, &cfgs[..1]);
    let mut k = 0u64;
    g.bench_function("pte_write_invlpg", |b| {
        b.iter(|| {
            k = (k + 1) % PAGES;
            let e = (0x100_0000 + ((k * 7) % PAGES) * 0x1000) | RWU;
            m.write_u64(Gpa(pt + k * 8), e);
            if s.is_tracked(Gpa(pt).gfn()) {
                s.guest_write(&m, Gpa(pt + k * 8), 8);
            }
            s.invlpg(gva(k), 0);
            black_box(s.translate(&mut m, &c0, gva(k), access(1)).map_or(0, |t| t.gpa.0))
        })
    });
    g.finish();
    eprintln!("mmu_shadow/pte_write_invlpg:\n{}", s.stats());
}

criterion_group!(benches, bench);
criterion_main!(benches);
