//! Paging as a guest sees it (SDM Vol. 3A ch. 4 "Paging"): every paging mode entered by
//! guest code (MOV CR4/CR3/CR0, WRMSR EFER), each access right checked with its exact
//! #PF error code and CR2, PAE PDPTE registers, A/D bits, TLB invalidation (global pages,
//! PCIDs, INVLPG, INVPCID), protection keys, the control-register write rules, UMIP,
//! DR7.GD; and a property test of the page walker against a reference walker.

use hvsim::cpu::msr;
use hvsim::machine::CATCH_ALL;
use hvsim::{Exception, GuestMode, Machine, MachineConfig, StopReason, StopReport};
use hvsim_mmu::paging::{
    self, Access, AccessKind, PagingMode, WalkConfig, PFEC_I, PFEC_P, PFEC_PK, PFEC_RSVD, PFEC_U,
    PFEC_W, PTE_A, PTE_D, PTE_G, PTE_NX, PTE_P, PTE_PS, PTE_RW, PTE_US,
};
use hvsim_mmu::{Gpa, GuestMemory, Gva, MemoryMap};
use iced_x86::code_asm::*;

// ---- Guest layout ----

/// The prologue that enables paging (32-bit code, supervisor page).
const PROLOGUE: u64 = 0x1000;
/// Where the prologue parks before the test body runs (64-bit modes jump here first).
const PARK: u64 = 0x1800;
/// The test body (its page's U/S bit follows the test's CPL).
const BODY: u64 = 0x2000;
/// A second body page for follow-up code.
const BODY2: u64 = 0x3000;
/// Stack page.
const STACK: u64 = 0x8000;
/// Page tables are allocated from here; the pool is identity-mapped (supervisor, RW) so
/// guest code can edit its own page tables.
const PT_POOL: u64 = 0x20_0000;
const PT_POOL_PAGES: u64 = 64;
/// The linear address the access-rights and TLB tests use. Its pages sit in TLB slots
/// (page number mod 256) that the code, stack, GDT and page-table pool pages do not use,
/// so the stale translations the TLB tests look for are not evicted by the guest's own
/// page-table writes.
const TARGET: u64 = 0x48_0000;
/// Physical frames behind test mappings.
const FRAME_A: u64 = 0x30_0000;
const FRAME_B: u64 = 0x31_0000;

const CR0_PE: u64 = 1;
const CR0_ET: u64 = 1 << 4;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PSE: u64 = 1 << 4;
const CR4_PAE: u64 = 1 << 5;
const CR4_PGE: u64 = 1 << 7;
const CR4_UMIP: u64 = 1 << 11;
const CR4_LA57: u64 = 1 << 12;
const CR4_PCIDE: u64 = 1 << 17;
const CR4_SMEP: u64 = 1 << 20;
const CR4_SMAP: u64 = 1 << 21;
const CR4_PKE: u64 = 1 << 22;
const EFER_LME: u64 = 1 << 8;
const EFER_NXE: u64 = 1 << 11;

const PF: u8 = 14;
const GP: u8 = 13;
const UD: u8 = 6;
const DB: u8 = 1;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Paging {
    Legacy32,
    Pae,
    Long4,
    Long5,
}

impl Paging {
    fn levels(self) -> u8 {
        match self {
            Paging::Legacy32 => 2,
            Paging::Pae => 3,
            Paging::Long4 => 4,
            Paging::Long5 => 5,
        }
    }
    fn long(self) -> bool {
        matches!(self, Paging::Long4 | Paging::Long5)
    }
    fn bits(self) -> u32 {
        if self.long() {
            64
        } else {
            32
        }
    }
}

/// A page-table builder writing guest memory from the host.
struct Tables {
    paging: Paging,
    root: u64,
    next: u64,
}

impl Tables {
    fn new(m: &mut Machine, paging: Paging) -> Self {
        let mut t = Tables { paging, root: 0, next: PT_POOL };
        t.root = t.alloc(m);
        t
    }

    fn alloc(&mut self, m: &mut Machine) -> u64 {
        let p = self.next;
        assert!(p < PT_POOL + PT_POOL_PAGES * 0x1000, "page-table pool exhausted");
        self.next += 0x1000;
        m.mem.load(Gpa(p), &[0u8; 4096]).unwrap();
        p
    }

    fn esize(&self) -> u64 {
        if self.paging == Paging::Legacy32 {
            4
        } else {
            8
        }
    }

    fn index(&self, lin: u64, level: u8) -> u64 {
        match (self.paging, level) {
            (Paging::Legacy32, 2) => (lin >> 22) & 0x3FF,
            (Paging::Legacy32, _) => (lin >> 12) & 0x3FF,
            (Paging::Pae, 3) => (lin >> 30) & 3,
            _ => (lin >> (12 + 9 * (u32::from(level) - 1))) & 0x1FF,
        }
    }

    fn read(&self, m: &Machine, at: u64) -> u64 {
        if self.esize() == 4 {
            u64::from(m.mem.read_u32(Gpa(at)))
        } else {
            m.mem.read_u64(Gpa(at))
        }
    }

    fn write(&self, m: &mut Machine, at: u64, v: u64) {
        if self.esize() == 4 {
            m.mem.write_u32(Gpa(at), v as u32);
        } else {
            m.mem.write_u64(Gpa(at), v);
        }
    }

    /// The address of the entry for `lin` at `level`, creating tables above it with
    /// `upper` flags (a PAE PDPTE gets P only).
    fn entry(&mut self, m: &mut Machine, lin: u64, level: u8, upper: u64) -> u64 {
        let mut table = self.root;
        let mut l = self.paging.levels();
        while l > level {
            let at = table + self.index(lin, l) * self.esize();
            let e = self.read(m, at);
            table = if e & PTE_P == 0 {
                let new = self.alloc(m);
                let flags = if self.paging == Paging::Pae && l == 3 { PTE_P } else { upper };
                self.write(m, at, new | flags);
                new
            } else {
                e & 0x000F_FFFF_FFFF_F000
            };
            l -= 1;
        }
        table + self.index(lin, level) * self.esize()
    }

    /// Maps `lin` to `gpa` with a leaf at `level` (1 = 4 KiB, 2 = 2/4 MiB, 3 = 1 GiB)
    /// carrying `flags`; upper levels are P|RW|US. Returns the leaf entry's address.
    fn map(&mut self, m: &mut Machine, lin: u64, gpa: u64, flags: u64, level: u8) -> u64 {
        let at = self.entry(m, lin, level, PTE_P | PTE_RW | PTE_US);
        let ps = if level > 1 { PTE_PS } else { 0 };
        self.write(m, at, gpa | flags | ps);
        at
    }

    /// Identity-maps the prologue, stack, page-table pool and GDT pages (supervisor) and
    /// the body pages (user-accessible if `user_body`).
    fn map_base(&mut self, m: &mut Machine, user_body: bool) {
        let sup = PTE_P | PTE_RW;
        let body = sup | if user_body { PTE_US } else { 0 };
        self.map(m, PROLOGUE, PROLOGUE, sup, 1);
        self.map(m, BODY, BODY, body, 1);
        self.map(m, BODY2, BODY2, body, 1);
        self.map(m, STACK - 0x1000, STACK - 0x1000, body, 1);
        for k in 0..PT_POOL_PAGES {
            let p = PT_POOL + k * 0x1000;
            self.map(m, p, p, sup, 1);
        }
        let gdt = m.setup_area();
        self.map(m, gdt, gdt, sup, 1);
    }
}

/// The paging state the prologue establishes.
#[derive(Copy, Clone, Debug)]
struct Setup {
    paging: Paging,
    cr0_extra: u64,
    cr4_extra: u64,
    nxe: bool,
    pkru: u32,
    /// STAC before entering the body (supervisor only).
    ac: bool,
}

impl Setup {
    fn new(paging: Paging) -> Self {
        Setup { paging, cr0_extra: CR0_WP, cr4_extra: 0, nxe: true, pkru: 0, ac: false }
    }
    fn cr4(&self) -> u64 {
        self.cr4_extra
            | match self.paging {
                Paging::Legacy32 => 0,
                Paging::Pae | Paging::Long4 => CR4_PAE,
                Paging::Long5 => CR4_PAE | CR4_LA57,
            }
    }
    fn efer(&self) -> u64 {
        (if self.nxe { EFER_NXE } else { 0 }) | if self.paging.long() { EFER_LME } else { 0 }
    }
}

fn machine() -> Machine {
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.set_exception_catch(CATCH_ALL);
    m
}

fn asm(bits: u32, at: u64, f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    f(&mut a).unwrap();
    a.assemble(at).unwrap()
}

/// The 32-bit prologue: CR4, PKRU, CR3, EFER, STAC, CR0 (enabling paging, which loads
/// the PDPTEs for PAE), then HLT at [`PARK`] in the target mode's code segment.
fn prologue(s: &Setup, root: u64) -> Vec<u8> {
    asm(32, PROLOGUE, |a| {
        a.mov(eax, s.cr4() as u32)?;
        a.mov(cr4, eax)?;
        if s.pkru != 0 {
            a.mov(eax, s.pkru)?;
            a.xor(ecx, ecx)?;
            a.xor(edx, edx)?;
            a.wrpkru()?;
        }
        a.mov(eax, root as u32)?;
        a.mov(cr3, eax)?;
        if s.efer() != 0 {
            a.mov(ecx, msr::IA32_EFER)?;
            a.rdmsr()?;
            a.or(eax, s.efer() as i32)?;
            a.wrmsr()?;
        }
        if s.ac {
            a.stac()?;
        }
        a.mov(eax, (CR0_PE | CR0_ET | CR0_PG | s.cr0_extra) as u32)?;
        a.mov(cr0, eax)?;
        if s.paging.long() {
            a.jmp_far(0x08, PARK as u32)?;
        } else {
            a.mov(eax, PARK as u32)?;
            a.jmp(eax)?;
        }
        Ok(())
    })
}

/// Builds a machine in `s`'s paging mode: tables from `tables` (already holding the
/// test's mappings), the prologue run to its HLT. The body at [`BODY`] is loaded by the
/// caller.
fn enter(m: &mut Machine, s: &Setup, t: &Tables) {
    m.load(PROLOGUE, &prologue(s, t.root)).unwrap();
    m.load(PARK, &[0xF4]).unwrap();
    m.enter_mode(GuestMode::Protected32, PROLOGUE, STACK).unwrap();
    let r = m.run(Some(1000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "prologue: {r}");
    assert_eq!(r.rip, PARK + 1, "{r}");
}

/// Continues at `rip`, at CPL 3 if `user`.
fn resume(m: &mut Machine, rip: u64, user: bool) -> StopReport {
    if user {
        for s in [1, 2] {
            m.cpu.seg[s].selector |= 3;
            m.cpu.seg[s].attr |= 3 << 5;
        }
        m.cpu.update_mode();
    }
    m.cpu.rip = rip;
    m.cpu.halted = false;
    m.run(Some(10_000))
}

fn exception(r: &StopReport) -> Option<Exception> {
    Machine::exception_of(r)
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Fetch,
}

/// The access body: one access to `addr`, then UD2 (reaching it = success).
fn access_body(bits: u32, kind: Kind, addr: u64) -> Vec<u8> {
    asm(bits, BODY, |a| {
        if bits == 64 {
            a.mov(rbx, addr)?;
        } else {
            a.mov(ebx, addr as u32)?;
        }
        match (kind, bits) {
            (Kind::Read, 64) => a.mov(eax, dword_ptr(rbx))?,
            (Kind::Read, _) => a.mov(eax, dword_ptr(ebx))?,
            (Kind::Write, 64) => a.mov(dword_ptr(rbx), eax)?,
            (Kind::Write, _) => a.mov(dword_ptr(ebx), eax)?,
            (Kind::Fetch, 64) => a.jmp(rbx)?,
            (Kind::Fetch, _) => a.jmp(ebx)?,
        }
        a.ud2()
    })
}

/// One access-rights case: `leaf` flags on the page at [`TARGET`] (leaf at `level`),
/// accessed with `kind` at CPL 3 if `user`. `Ok` if the access completed, else the #PF
/// error code (CR2 is checked to be the target).
fn access_case(s: Setup, level: u8, leaf: u64, kind: Kind, user: bool) -> Result<(), u32> {
    // A 1 GiB page must not cover the base mappings in the first GiB.
    let target = if level == 3 { (1 << 30) + TARGET } else { TARGET };
    access_case_at(s, level, leaf, kind, user, target)
}

fn access_case_at(
    s: Setup,
    level: u8,
    leaf: u64,
    kind: Kind,
    user: bool,
    target: u64,
) -> Result<(), u32> {
    let mut m = machine();
    let mut t = Tables::new(&mut m, s.paging);
    t.map_base(&mut m, user);
    let size = match (s.paging, level) {
        (_, 1) => 0x1000,
        (Paging::Legacy32, 2) => 0x40_0000,
        (_, 2) => 0x20_0000,
        _ => 0x4000_0000,
    };
    let page = target & !(size - 1);
    let frame = match size {
        0x1000 => FRAME_A,
        0x20_0000 => 0x60_0000,
        0x40_0000 => 0x80_0000,
        _ => 0,
    };
    t.map(&mut m, page, frame, leaf, level);
    // UD2 at the target for fetches.
    let target_gpa = frame + (target - page);
    m.load(target_gpa, &[0x0F, 0x0B]).unwrap();
    enter(&mut m, &s, &t);
    m.load(BODY, &access_body(s.paging.bits(), kind, target)).unwrap();
    let r = resume(&mut m, BODY, user);
    let e = exception(&r).unwrap_or_else(|| panic!("no exception: {r}"));
    match e.vector {
        UD => {
            let want = if kind == Kind::Fetch { target } else { r.rip };
            assert_eq!(r.rip, want, "{r}");
            Ok(())
        }
        PF => {
            assert_eq!(e.cr2, target, "CR2 of {r}");
            Err(e.error_code.unwrap())
        }
        _ => panic!("unexpected {r}"),
    }
}

const RW: u64 = PTE_P | PTE_RW;
const URW: u64 = PTE_P | PTE_RW | PTE_US;
const UR: u64 = PTE_P | PTE_US;

/// Every mode and page size the walker supports: (setup, leaf level).
fn all_modes() -> Vec<(Setup, u8)> {
    let mut v = vec![
        (Setup::new(Paging::Legacy32), 1),
        (Setup { cr4_extra: CR4_PSE, ..Setup::new(Paging::Legacy32) }, 2),
        (Setup::new(Paging::Pae), 1),
        (Setup::new(Paging::Pae), 2),
        (Setup::new(Paging::Long4), 1),
        (Setup::new(Paging::Long4), 2),
        (Setup::new(Paging::Long4), 3),
        (Setup::new(Paging::Long5), 1),
        (Setup::new(Paging::Long5), 3),
    ];
    for (s, _) in v.iter_mut() {
        s.nxe = s.paging != Paging::Legacy32;
    }
    v
}

#[test]
fn not_present_user_supervisor_and_read_write_in_every_mode() {
    // SDM Vol. 3A §4.6 "Access Rights", §4.7 "Page-Fault Exceptions".
    for (s, level) in all_modes() {
        let ctx = format!("{:?} level {level}", s.paging);
        assert_eq!(access_case(s, level, 0, Kind::Read, false), Err(0), "{ctx}");
        assert_eq!(access_case(s, level, 0, Kind::Write, true), Err(PFEC_W | PFEC_U), "{ctx}");
        assert_eq!(access_case(s, level, URW, Kind::Read, true), Ok(()), "{ctx}");
        assert_eq!(access_case(s, level, URW, Kind::Write, true), Ok(()), "{ctx}");
        // U/S: a user access to a supervisor page.
        assert_eq!(access_case(s, level, RW, Kind::Read, true), Err(PFEC_P | PFEC_U), "{ctx}");
        assert_eq!(
            access_case(s, level, RW, Kind::Write, true),
            Err(PFEC_P | PFEC_W | PFEC_U),
            "{ctx}"
        );
        // R/W: user writes to a read-only page always fault.
        assert_eq!(
            access_case(s, level, UR, Kind::Write, true),
            Err(PFEC_P | PFEC_W | PFEC_U),
            "{ctx}"
        );
        // Supervisor writes to a read-only page: fault with WP = 1, allowed with WP = 0.
        assert_eq!(access_case(s, level, PTE_P, Kind::Write, false), Err(PFEC_P | PFEC_W), "{ctx}");
        let wp0 = Setup { cr0_extra: 0, ..s };
        assert_eq!(access_case(wp0, level, PTE_P, Kind::Write, false), Ok(()), "{ctx}");
        assert_eq!(access_case(wp0, level, UR, Kind::Write, false), Ok(()), "{ctx}");
    }
}

#[test]
fn execute_disable_and_reserved_bit_63() {
    // SDM Vol. 3A §4.6: XD with EFER.NXE = 1; §4.7: I is set for fetches with NXE = 1
    // (not 32-bit paging) or SMEP = 1; with NXE = 0 bit 63 is reserved (PFEC.RSVD).
    for (s, level) in all_modes() {
        let ctx = format!("{:?} level {level}", s.paging);
        if s.paging == Paging::Legacy32 {
            assert_eq!(access_case(s, level, URW, Kind::Fetch, false), Ok(()), "{ctx}");
            assert_eq!(access_case(s, level, 0, Kind::Fetch, false), Err(0), "{ctx}");
            continue;
        }
        assert_eq!(access_case(s, level, URW, Kind::Fetch, true), Ok(()), "{ctx}");
        assert_eq!(
            access_case(s, level, URW | PTE_NX, Kind::Fetch, true),
            Err(PFEC_P | PFEC_U | PFEC_I),
            "{ctx}"
        );
        assert_eq!(
            access_case(s, level, RW | PTE_NX, Kind::Fetch, false),
            Err(PFEC_P | PFEC_I),
            "{ctx}"
        );
        assert_eq!(access_case(s, level, 0, Kind::Fetch, false), Err(PFEC_I), "{ctx}");
        // XD does not restrict data accesses.
        assert_eq!(access_case(s, level, URW | PTE_NX, Kind::Write, true), Ok(()), "{ctx}");
        let nxe0 = Setup { nxe: false, ..s };
        assert_eq!(
            access_case(nxe0, level, URW | PTE_NX, Kind::Read, true),
            Err(PFEC_P | PFEC_U | PFEC_RSVD),
            "{ctx}"
        );
        // Without NXE and SMEP a fetch fault does not report I.
        assert_eq!(access_case(nxe0, level, 0, Kind::Fetch, false), Err(0), "{ctx}");
    }
}

#[test]
fn reserved_bits_above_maxphyaddr() {
    // SDM Vol. 3A §4.4.2 / §4.5.4: bits MAXPHYADDR (40) and up are reserved: 62:40 in
    // PAE entries, 51:40 in 4/5-level entries (62:52 are ignored there).
    let bit45 = 1u64 << 45;
    let bit55 = 1u64 << 55;
    for (s, level) in all_modes() {
        if s.paging == Paging::Legacy32 {
            continue;
        }
        let ctx = format!("{:?} level {level}", s.paging);
        assert_eq!(
            access_case(s, level, URW | bit45, Kind::Read, false),
            Err(PFEC_P | PFEC_RSVD),
            "{ctx}"
        );
        let want = if s.paging == Paging::Pae { Err(PFEC_P | PFEC_RSVD) } else { Ok(()) };
        assert_eq!(access_case(s, level, URW | bit55, Kind::Read, false), want, "{ctx}");
    }
    // 4 MiB page with PSE-36: bit 21 is reserved; bits 20:13 give physical bits 39:32.
    let s = Setup { cr4_extra: CR4_PSE, ..Setup::new(Paging::Legacy32) };
    assert_eq!(
        access_case(s, 2, URW | (1 << 21), Kind::Write, true),
        Err(PFEC_P | PFEC_W | PFEC_U | PFEC_RSVD)
    );
}

#[test]
fn smep_and_smap_with_ac_stac_clac() {
    // SDM Vol. 3A §4.6.1 "Determination of Access Rights": SMEP forbids supervisor
    // fetches from user pages; SMAP forbids supervisor data accesses to user pages
    // unless EFLAGS.AC = 1 (STAC).
    for (s, level) in all_modes() {
        let ctx = format!("{:?} level {level}", s.paging);
        let smep = Setup { cr4_extra: s.cr4_extra | CR4_SMEP, ..s };
        assert_eq!(
            access_case(smep, level, URW, Kind::Fetch, false),
            Err(PFEC_P | PFEC_I),
            "{ctx}"
        );
        assert_eq!(access_case(smep, level, RW, Kind::Fetch, false), Ok(()), "{ctx}");
        assert_eq!(access_case(smep, level, URW, Kind::Read, false), Ok(()), "{ctx}");
        let smap = Setup { cr4_extra: s.cr4_extra | CR4_SMAP, ..s };
        assert_eq!(access_case(smap, level, URW, Kind::Read, false), Err(PFEC_P), "{ctx}");
        assert_eq!(
            access_case(smap, level, URW, Kind::Write, false),
            Err(PFEC_P | PFEC_W),
            "{ctx}"
        );
        assert_eq!(access_case(smap, level, URW, Kind::Fetch, false), Ok(()), "{ctx}");
        assert_eq!(access_case(smap, level, URW, Kind::Read, true), Ok(()), "{ctx}");
        let ac = Setup { ac: true, ..smap };
        assert_eq!(access_case(ac, level, URW, Kind::Write, false), Ok(()), "{ctx}");
        // AC does not lift WP.
        assert_eq!(access_case(ac, level, UR, Kind::Write, false), Err(PFEC_P | PFEC_W), "{ctx}");
    }
}

#[test]
fn protection_keys_ad_wd_and_pfec_pk() {
    // SDM Vol. 3A §4.6.2 "Protection Keys": with IA-32e paging and CR4.PKE = 1, PKRU
    // restricts data accesses to user pages; §4.7: PFEC.PK reports it.
    let key = 5u64 << 59;
    let ad = paging::PKRU_AD << 10; // key 5
    let wd = paging::PKRU_WD << 10;
    for paging in [Paging::Long4, Paging::Long5] {
        for level in [1, 3] {
            let s = |pkru: u32, wp: bool| Setup {
                cr4_extra: CR4_PKE,
                pkru,
                cr0_extra: if wp { CR0_WP } else { 0 },
                ..Setup::new(paging)
            };
            let ctx = format!("{paging:?} level {level}");
            let c = |st, leaf, kind, user| access_case(st, level, leaf, kind, user);
            assert_eq!(
                c(s(ad, true), URW | key, Kind::Read, true),
                Err(PFEC_P | PFEC_U | PFEC_PK),
                "{ctx}"
            );
            assert_eq!(
                c(s(ad, true), URW | key, Kind::Read, false),
                Err(PFEC_P | PFEC_PK),
                "{ctx}"
            );
            assert_eq!(
                c(s(ad, false), URW | key, Kind::Write, false),
                Err(PFEC_P | PFEC_W | PFEC_PK),
                "{ctx}"
            );
            assert_eq!(c(s(ad, true), URW | key, Kind::Fetch, true), Ok(()), "{ctx}");
            // Another key, or a supervisor page, is not restricted.
            assert_eq!(c(s(ad, true), URW | (4 << 59), Kind::Read, true), Ok(()), "{ctx}");
            assert_eq!(c(s(ad, true), RW | key, Kind::Read, false), Ok(()), "{ctx}");
            // WD: user writes fault, reads do not; supervisor writes fault only with WP.
            assert_eq!(c(s(wd, true), URW | key, Kind::Read, true), Ok(()), "{ctx}");
            assert_eq!(
                c(s(wd, true), URW | key, Kind::Write, true),
                Err(PFEC_P | PFEC_W | PFEC_U | PFEC_PK),
                "{ctx}"
            );
            assert_eq!(
                c(s(wd, true), URW | key, Kind::Write, false),
                Err(PFEC_P | PFEC_W | PFEC_PK),
                "{ctx}"
            );
            assert_eq!(c(s(wd, false), URW | key, Kind::Write, false), Ok(()), "{ctx}");
            // PK is reported together with an ordinary violation (read-only page).
            assert_eq!(
                c(s(wd, true), UR | key, Kind::Write, true),
                Err(PFEC_P | PFEC_W | PFEC_U | PFEC_PK),
                "{ctx}"
            );
            // Without CR4.PKE the key bits mean nothing.
            let off = Setup { pkru: 0, ..Setup::new(paging) };
            assert_eq!(c(off, URW | key, Kind::Read, true), Ok(()), "{ctx}");
        }
    }
    // PAE paging has no protection keys: key 0 with AD does not restrict it.
    let s = Setup { cr4_extra: CR4_PKE, pkru: paging::PKRU_AD, ..Setup::new(Paging::Pae) };
    assert_eq!(access_case(s, 1, URW, Kind::Read, true), Ok(()));
}

#[test]
fn five_level_paging_translates_57_bit_addresses() {
    // SDM Vol. 3A §4.5 "4-Level Paging and 5-Level Paging": with CR4.LA57 = 1 linear
    // addresses are 57 bits; bits 56:48 index the PML5 table.
    let high = 0x00AB_CDEF_0040_0000u64;
    let s = Setup::new(Paging::Long5);
    assert_eq!(access_case_at(s, 1, URW, Kind::Write, true, high), Ok(()));
    assert_eq!(access_case_at(s, 1, UR, Kind::Write, true, high), Err(PFEC_P | PFEC_W | PFEC_U));
    // The same address is not canonical with 4-level paging: #GP(0), not #PF.
    let mut m = machine();
    let mut t = Tables::new(&mut m, Paging::Long4);
    t.map_base(&mut m, false);
    enter(&mut m, &Setup::new(Paging::Long4), &t);
    m.load(BODY, &access_body(64, Kind::Read, high)).unwrap();
    let r = resume(&mut m, BODY, false);
    assert_eq!(exception(&r).map(|e| (e.vector, e.error_code)), Some((GP, Some(0))), "{r}");
}

// ---- Guest sequences: PDPTE registers, A/D bits, TLB invalidation ----

/// A machine in `s`'s mode with base mappings; `map` adds the test's mappings.
fn paged_machine(s: &Setup, map: impl FnOnce(&mut Machine, &mut Tables)) -> (Machine, Tables) {
    let mut m = machine();
    let mut t = Tables::new(&mut m, s.paging);
    t.map_base(&mut m, false);
    map(&mut m, &mut t);
    enter(&mut m, s, &t);
    (m, t)
}

/// Runs `body` at [`BODY`] at CPL 0 in the machine's mode; expects the final HLT.
fn run_body(
    m: &mut Machine,
    bits: u32,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> StopReport {
    let code = asm(bits, BODY, |a| {
        body(a)?;
        a.hlt()
    });
    assert!(code.len() < 0x1000);
    m.load(BODY, &code).unwrap();
    resume(m, BODY, false)
}

fn assert_halted(r: &StopReport) {
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
}

fn put32(m: &mut Machine, gpa: u64, v: u32) {
    m.mem.write_u32(Gpa(gpa), v);
}

#[test]
fn pae_pdptes_are_registers_loaded_by_mov_cr() {
    // SDM Vol. 3A §4.4.1 "PDPTE Registers": MOV to CR0/CR4 enabling PAE paging and MOV
    // to CR3 load the PDPTEs; walks use the registers, not the PDPT in memory.
    let hi = 0xC040_0000u64; // PDPTE[3]
    let s = Setup::new(Paging::Pae);
    let (mut m, t) = paged_machine(&s, |m, t| {
        t.map(m, hi, FRAME_A, RW, 1);
        put32(m, FRAME_A, 0xAAAA);
        put32(m, FRAME_B, 0xBBBB);
    });
    // A second PD/PT chain for the fourth GiB, mapping `hi` to FRAME_B.
    let pdpt = t.root;
    let old_pdpte = m.mem.read_u64(Gpa(pdpt + 24));
    let (pd2, pt2) = (PT_POOL + 0x3E000, PT_POOL + 0x3F000);
    m.mem.write_u64(Gpa(pd2 + 2 * 8), pt2 | URW);
    m.mem.write_u64(Gpa(pt2), FRAME_B | RW);
    let r = run_body(&mut m, 32, |a| {
        a.mov(esi, dword_ptr(hi as u32))?;
        // Point PDPTE[3] at the new chain in memory; INVLPG drops the TLB entry but
        // not the PDPTE register.
        a.mov(dword_ptr((pdpt + 24) as u32), (pd2 | 1) as u32)?;
        a.invlpg(byte_ptr(hi as u32))?;
        a.mov(edi, dword_ptr(hi as u32))?;
        // MOV CR3 reloads the PDPTEs.
        a.mov(eax, cr3)?;
        a.mov(cr3, eax)?;
        a.mov(ebp, dword_ptr(hi as u32))?;
        // Back to the old chain in memory; a CR4.PGE toggle reloads too.
        a.mov(dword_ptr((pdpt + 24) as u32), old_pdpte as u32)?;
        a.invlpg(byte_ptr(hi as u32))?;
        a.mov(ecx, dword_ptr(hi as u32))?;
        a.mov(eax, cr4)?;
        a.xor(eax, CR4_PGE as i32)?;
        a.mov(cr4, eax)?;
        a.mov(edx, dword_ptr(hi as u32))
    });
    assert_halted(&r);
    let g = m.cpu.gpr;
    assert_eq!((g[6], g[7], g[5], g[1], g[2]), (0xAAAA, 0xAAAA, 0xBBBB, 0xBBBB, 0xAAAA));
}

#[test]
fn pae_pdpte_reserved_bits_fault_with_gp_at_the_load() {
    // SDM Vol. 3A §4.4.1: a present PDPTE with a reserved bit set makes the MOV to CR0
    // (or CR3/CR4) that loads it fault with #GP(0); not-present PDPTEs are not checked.
    let s = Setup::new(Paging::Pae);
    for (pdpte, faults) in
        [(0x5000 | 1 | (1 << 5), true), (0x5000 | 1 | (1 << 45), true), (0x1E6, false)]
    {
        let mut m = machine();
        let mut t = Tables::new(&mut m, Paging::Pae);
        t.map_base(&mut m, false);
        m.mem.write_u64(Gpa(t.root + 16), pdpte);
        m.load(PROLOGUE, &prologue(&s, t.root)).unwrap();
        m.load(PARK, &[0xF4]).unwrap();
        m.enter_mode(GuestMode::Protected32, PROLOGUE, STACK).unwrap();
        let r = m.run(Some(1000));
        if faults {
            let e = exception(&r).unwrap();
            assert_eq!((e.vector, e.error_code), (GP, Some(0)), "{r}");
            assert_eq!(m.cpu.cr0 & CR0_PG, 0, "MOV CR0 did not complete");
        } else {
            assert_halted(&r);
        }
    }
    // MOV CR3 with a bad PDPT leaves CR3 unchanged.
    let (mut m, t) = paged_machine(&s, |_, _| {});
    let bad = PT_POOL + 0x3F000;
    m.mem.write_u64(Gpa(bad), 0x9000 | 1 | (1 << 2));
    let r = run_body(&mut m, 32, |a| {
        a.mov(eax, bad as u32)?;
        a.mov(cr3, eax)
    });
    let e = exception(&r).unwrap();
    assert_eq!((e.vector, e.error_code), (GP, Some(0)), "{r}");
    assert_eq!(m.cpu.cr3, t.root);
}

/// The entries a walk of `lin` uses, root first: (address, value).
fn walk_entries(m: &Machine, t: &Tables, lin: u64) -> Vec<(u64, u64)> {
    let mut out = vec![];
    let mut table = t.root;
    let mut l = t.paging.levels();
    loop {
        let at = table + t.index(lin, l) * t.esize();
        let e = t.read(m, at);
        out.push((at, e));
        if l == 1 || (e & PTE_PS != 0 && !(t.paging == Paging::Pae && l == 3)) {
            return out;
        }
        table = e & 0x000F_FFFF_FFFF_F000;
        l -= 1;
    }
}

#[test]
fn accessed_and_dirty_flags() {
    // SDM Vol. 3A §4.8 "Accessed and Dirty Flags": A in every entry used, D in the leaf
    // on a write only. PAE PDPTEs have no A bit.
    for (s, level) in all_modes() {
        let (mut m, t) = paged_machine(&s, |m, t| {
            t.map(m, TARGET, 0x80_0000, RW, level.min(2));
        });
        let ctx = format!("{:?} level {level}", s.paging);
        let first_fresh = if s.paging == Paging::Pae { 1 } else { 0 };
        let before = walk_entries(&m, &t, TARGET);
        assert!(
            before.iter().skip(first_fresh).all(|&(_, e)| e & PTE_A == 0) || s.paging.levels() > 2
        );
        let r = run_body(&mut m, s.paging.bits(), |a| {
            if s.paging.long() {
                a.mov(rbx, TARGET)?;
                a.mov(eax, dword_ptr(rbx))
            } else {
                a.mov(eax, dword_ptr(TARGET as u32))
            }
        });
        assert_halted(&r);
        let after = walk_entries(&m, &t, TARGET);
        let (_, leaf) = *after.last().unwrap();
        assert_ne!(leaf & PTE_A, 0, "{ctx}");
        assert_eq!(leaf & PTE_D, 0, "{ctx}");
        for &(at, e) in after.iter().skip(first_fresh) {
            assert_ne!(e & PTE_A, 0, "{ctx}: entry at {at:#x}");
        }
        if s.paging == Paging::Pae {
            assert_eq!(after[0].1 & PTE_A, 0, "PDPTE untouched");
        }
        let r = run_body(&mut m, s.paging.bits(), |a| {
            if s.paging.long() {
                a.mov(rbx, TARGET)?;
                a.mov(dword_ptr(rbx), eax)
            } else {
                a.mov(dword_ptr(TARGET as u32), eax)
            }
        });
        assert_halted(&r);
        let after = walk_entries(&m, &t, TARGET);
        assert_ne!(after.last().unwrap().1 & PTE_D, 0, "{ctx}");
        for &(_, e) in &after[..after.len() - 1] {
            assert_eq!(e & PTE_D, 0, "{ctx}: D only in the leaf");
        }
    }
}

/// Reads dword [addr] into `r` (64-bit code).
fn rd(a: &mut CodeAssembler, r: AsmRegister32, addr: u64) -> Result<(), IcedError> {
    a.mov(rbx, addr)?;
    a.mov(r, dword_ptr(rbx))
}

/// Writes the 8-byte entry at `at` (64-bit code).
fn set_pte(a: &mut CodeAssembler, at: u64, v: u64) -> Result<(), IcedError> {
    a.mov(rax, v)?;
    a.mov(rbx, at)?;
    a.mov(qword_ptr(rbx), rax)
}

const T1: u64 = TARGET;
const T2: u64 = TARGET + 0x1000;
const T3: u64 = TARGET + 0x2000;

/// Frames 0x30_0000.. hold distinct values: frame k holds 0x1000 + k.
fn fill_frames(m: &mut Machine) {
    for k in 0..8u64 {
        put32(m, FRAME_A + k * 0x1000, 0x1000 + k as u32);
    }
}
fn frame(k: u64) -> u64 {
    FRAME_A + k * 0x1000
}
fn val(k: u64) -> u64 {
    0x1000 + k
}

#[test]
fn global_pages_survive_mov_cr3_and_die_on_pge_toggle() {
    // SDM Vol. 3A §4.10.2.4 "Global Pages", §4.10.4.1: MOV to CR3 keeps global entries;
    // changing CR4.PGE invalidates everything. A PTE changed without any flush may keep
    // its old translation (hvsim keeps it).
    let s = Setup { cr4_extra: CR4_PGE, ..Setup::new(Paging::Long4) };
    let mut ptes = (0, 0);
    let (mut m, _t) = paged_machine(&s, |m, t| {
        fill_frames(m);
        ptes.0 = t.map(m, T1, frame(0), RW | PTE_G, 1);
        ptes.1 = t.map(m, T2, frame(1), RW, 1);
    });
    let r = run_body(&mut m, 64, |a| {
        rd(a, eax, T1)?;
        rd(a, eax, T2)?;
        set_pte(a, ptes.0, frame(2) | RW | PTE_G)?;
        set_pte(a, ptes.1, frame(3) | RW)?;
        rd(a, r8d, T1)?;
        rd(a, r9d, T2)?;
        a.mov(rax, cr3)?;
        a.mov(cr3, rax)?;
        rd(a, r10d, T1)?;
        rd(a, r11d, T2)?;
        a.mov(rax, cr4)?;
        a.btr(rax, 7)?;
        a.mov(cr4, rax)?;
        a.bts(rax, 7)?;
        a.mov(cr4, rax)?;
        rd(a, r12d, T1)
    });
    assert_halted(&r);
    let g = &m.cpu.gpr;
    assert_eq!((g[8], g[9]), (val(0), val(1)), "stale without a flush");
    assert_eq!((g[10], g[11]), (val(0), val(3)), "MOV CR3 keeps only the global page");
    assert_eq!(g[12], val(2), "PGE toggle drops the global page");
}

#[test]
fn invlpg_flushes_one_page_and_whole_large_pages() {
    // SDM Vol. 2A "INVLPG", Vol. 3A §4.10.4.1: one page of the current PCID (the whole
    // page when it is large), nothing else.
    let s = Setup::new(Paging::Long4);
    let big = 0x80_0000u64;
    let big_probe = big + 0x9_0000; // TLB slot 0x90
    let mut ptes = (0, 0, 0);
    let (mut m, _t) = paged_machine(&s, |m, t| {
        fill_frames(m);
        ptes.0 = t.map(m, T1, frame(0), RW, 1);
        ptes.1 = t.map(m, T2, frame(1), RW, 1);
        ptes.2 = t.map(m, big, 0xA0_0000, RW, 2);
        put32(m, 0xA9_0000, 0x5555);
        put32(m, 0xC9_0000, 0x6666);
    });
    let r = run_body(&mut m, 64, |a| {
        rd(a, eax, T1)?;
        rd(a, eax, T2)?;
        rd(a, eax, big_probe)?;
        rd(a, eax, big_probe + 0x1000)?;
        set_pte(a, ptes.0, frame(2) | RW)?;
        set_pte(a, ptes.1, frame(3) | RW)?;
        set_pte(a, ptes.2, 0xC0_0000 | RW | PTE_PS)?;
        a.mov(rbx, T1)?;
        a.invlpg(byte_ptr(rbx))?;
        rd(a, r8d, T1)?;
        rd(a, r9d, T2)?;
        a.mov(rbx, big_probe + 0x1234)?;
        a.invlpg(byte_ptr(rbx))?;
        rd(a, r10d, big_probe)?;
        // A non-canonical INVLPG operand is a no-op, not a fault.
        a.mov(rbx, 0x8000_0000_0000_0000u64)?;
        a.invlpg(byte_ptr(rbx))
    });
    assert_halted(&r);
    let g = &m.cpu.gpr;
    assert_eq!((g[8], g[9], g[10]), (val(2), val(1), 0x6666));
}

const NOFLUSH: u64 = 1 << 63;

fn load_cr3(a: &mut CodeAssembler, v: u64) -> Result<(), IcedError> {
    a.mov(rax, v)?;
    a.mov(cr3, rax)
}

fn set_pcide(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(rax, cr4)?;
    a.bts(rax, 17)?;
    a.mov(cr4, rax)
}

#[test]
fn pcids_keep_separate_translations_and_cr3_bit_63_skips_the_flush() {
    // SDM Vol. 3A §4.10.1 "Process-Context Identifiers (PCIDs)", §4.10.4.1 MOV to CR3:
    // entries are tagged with the PCID; MOV CR3 flushes only the new PCID's non-global
    // entries, or nothing when bit 63 is set (which is not stored in CR3).
    let s = Setup::new(Paging::Long4);
    let (mut ra, mut rb) = (0, 0);
    let (mut pte_a_t2, mut pte_b_t1) = (0, 0);
    let (mut m, _t) = paged_machine(&s, |m, t| {
        fill_frames(m);
        ra = t.root;
        t.map(m, T1, frame(0), RW, 1);
        pte_a_t2 = t.map(m, T2, frame(1), RW, 1);
        rb = t.alloc(m);
        t.root = rb;
        t.map_base(m, false);
        pte_b_t1 = t.map(m, T1, frame(4), RW, 1);
        t.map(m, T2, frame(5), RW, 1);
        t.root = ra;
    });
    let r = run_body(&mut m, 64, |a| {
        set_pcide(a)?;
        load_cr3(a, ra | 1)?;
        rd(a, r8d, T1)?;
        load_cr3(a, rb | 2 | NOFLUSH)?;
        rd(a, r9d, T1)?;
        load_cr3(a, ra | 1 | NOFLUSH)?;
        rd(a, eax, T2)?;
        a.mov(r14, cr3)?;
        load_cr3(a, rb | 2 | NOFLUSH)?;
        set_pte(a, pte_a_t2, frame(6) | RW)?;
        load_cr3(a, ra | 1 | NOFLUSH)?;
        rd(a, r10d, T2)?;
        load_cr3(a, rb | 2 | NOFLUSH)?;
        load_cr3(a, ra | 1)?;
        rd(a, r11d, T2)?;
        set_pte(a, pte_b_t1, frame(7) | RW)?;
        load_cr3(a, rb | 2 | NOFLUSH)?;
        rd(a, r12d, T1)?;
        load_cr3(a, rb | 2)?;
        rd(a, r13d, T1)
    });
    assert_halted(&r);
    let g = &m.cpu.gpr;
    assert_eq!(g[8], val(0));
    assert_eq!(g[9], val(4), "PCID 2 does not use PCID 1's entry");
    assert_eq!(g[14], ra | 1, "bit 63 is not stored");
    assert_eq!(g[10], val(1), "PCID 1's entry survives a no-flush switch");
    assert_eq!(g[11], val(6), "MOV CR3 without bit 63 flushes PCID 1");
    assert_eq!(g[12], val(4), "... and not PCID 2");
    assert_eq!(g[13], val(7));
}

#[test]
fn invpcid_types_invalidate_what_the_sdm_says() {
    // SDM Vol. 2A "INVPCID": type 0 one address of one PCID (not global), type 1 one
    // PCID (not global), type 2 everything, type 3 everything but global entries.
    let s = Setup { cr4_extra: CR4_PGE, ..Setup::new(Paging::Long4) };
    let mut ptes = [0u64; 3];
    let (mut m, _t) = paged_machine(&s, |m, t| {
        fill_frames(m);
        ptes[0] = t.map(m, T1, frame(0), RW, 1);
        ptes[1] = t.map(m, T2, frame(1), RW, 1);
        ptes[2] = t.map(m, T3, frame(2), RW | PTE_G, 1);
    });
    let root = m.cpu.cr3;
    let desc = STACK - 0x100;
    let invpcid = |a: &mut CodeAssembler, ty: u32, pcid: u64, addr: u64| -> Result<(), IcedError> {
        a.mov(rax, pcid)?;
        a.mov(qword_ptr(desc), rax)?;
        a.mov(rax, addr)?;
        a.mov(qword_ptr(desc + 8), rax)?;
        a.mov(ecx, ty)?;
        a.invpcid(rcx, xmmword_ptr(desc))
    };
    let r = run_body(&mut m, 64, |a| {
        set_pcide(a)?;
        load_cr3(a, root | 1)?;
        rd(a, eax, T1)?;
        rd(a, eax, T2)?;
        rd(a, eax, T3)?;
        set_pte(a, ptes[0], frame(3) | RW)?;
        set_pte(a, ptes[1], frame(4) | RW)?;
        set_pte(a, ptes[2], frame(5) | RW | PTE_G)?;
        invpcid(a, 0, 1, T1)?;
        rd(a, r8d, T1)?;
        rd(a, r9d, T2)?;
        invpcid(a, 1, 2, 0)?;
        rd(a, r10d, T2)?;
        invpcid(a, 1, 1, 0)?;
        rd(a, r11d, T2)?;
        rd(a, r12d, T3)?;
        invpcid(a, 3, 0, 0)?;
        rd(a, r13d, T3)?;
        invpcid(a, 2, 0, 0)?;
        rd(a, r14d, T3)
    });
    assert_halted(&r);
    let g = &m.cpu.gpr;
    assert_eq!((g[8], g[9]), (val(3), val(1)), "type 0: one address");
    assert_eq!(g[10], val(1), "type 1 for another PCID");
    assert_eq!((g[11], g[12]), (val(4), val(2)), "type 1 keeps globals");
    assert_eq!(g[13], val(2), "type 3 keeps globals");
    assert_eq!(g[14], val(5), "type 2 drops globals");
}

/// A machine in one of the harness modes with `code` at [`BODY`]; `setup` adjusts it.
fn harness(
    mode: GuestMode,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    setup: impl FnOnce(&mut Machine),
) -> (Machine, StopReport) {
    let bits = match mode {
        GuestMode::Long64 => 64,
        GuestMode::Protected32 => 32,
        _ => 16,
    };
    let code = asm(bits, BODY, |a| {
        body(a)?;
        a.hlt()
    });
    let mut m = machine();
    m.load(BODY, &code).unwrap();
    m.enter_mode(mode, BODY, STACK).unwrap();
    setup(&mut m);
    let r = m.run(Some(10_000));
    (m, r)
}

fn user(m: &mut Machine) {
    for s in [1, 2] {
        m.cpu.seg[s].selector |= 3;
        m.cpu.seg[s].attr |= 3 << 5;
    }
    m.cpu.update_mode();
}

fn fault_of(r: &StopReport) -> Option<(u8, Option<u32>)> {
    exception(r).map(|e| (e.vector, e.error_code))
}

const GP0: Option<(u8, Option<u32>)> = Some((GP, Some(0)));
const UD_: Option<(u8, Option<u32>)> = Some((UD, None));

#[test]
fn invpcid_faults() {
    // SDM Vol. 2A "INVPCID", exceptions: #GP(0) at CPL > 0, for a type above 3, for
    // descriptor bits 63:12, for a non-canonical type-0 address, and for a nonzero PCID
    // with types 0/1 while CR4.PCIDE = 0.
    let desc = 0x7100u64;
    let case = |ty: u32, lo: u64, addr: u64, cpl3: bool| {
        let (_m, r) = harness(
            GuestMode::Long64,
            |a| {
                a.mov(ecx, ty)?;
                a.mov(esi, desc as u32)?;
                a.invpcid(rcx, xmmword_ptr(rsi))
            },
            |m| {
                m.mem.write_u64(Gpa(desc), lo);
                m.mem.write_u64(Gpa(desc + 8), addr);
                if cpl3 {
                    user(m);
                }
            },
        );
        fault_of(&r)
    };
    assert_eq!(case(2, 0, 0, true), GP0, "CPL 3");
    assert_eq!(case(4, 0, 0, false), GP0, "type 4");
    assert_eq!(case(2, 1 << 12, 0, false), GP0, "descriptor bit 12");
    assert_eq!(case(0, 0, 0x8000_0000_0000_0000, false), GP0, "non-canonical");
    assert_eq!(case(0, 1, 0x1000, false), GP0, "PCID 1 without PCIDE");
    assert_eq!(case(1, 1, 0, false), GP0, "PCID 1 without PCIDE");
    // Fine: types 2 and 3 ignore the PCID; PCID 0 is fine without PCIDE.
    for (ty, lo) in [(2, 1), (3, 5), (0, 0), (1, 0)] {
        assert_eq!(case(ty, lo, 0x1000, false), None, "type {ty}");
    }
}

#[test]
fn cr4_pcide_la57_and_reserved_bits() {
    // SDM Vol. 2B "MOV—Move to/from Control Registers" exceptions; Vol. 3A §2.5.
    let set_cr4_bit = |bit: u32| {
        move |a: &mut CodeAssembler| -> Result<(), IcedError> {
            a.mov(rax, cr4)?;
            a.bts(rax, bit)?;
            a.mov(cr4, rax)
        }
    };
    // PCIDE needs IA-32e mode ...
    let (_m, r) = harness(
        GuestMode::Protected32,
        |a| {
            a.mov(eax, cr4)?;
            a.bts(eax, 17)?;
            a.mov(cr4, eax)
        },
        |_| {},
    );
    assert_eq!(fault_of(&r), GP0);
    // ... and CR3[11:0] = 0.
    let (_m, r) = harness(
        GuestMode::Long64,
        |a| {
            a.mov(rax, cr3)?;
            a.or(rax, 0x18)?; // PWT, PCD
            a.mov(cr3, rax)?;
            set_cr4_bit(17)(a)
        },
        |_| {},
    );
    assert_eq!(fault_of(&r), GP0);
    // With PCIDE, CR3 bit 63 is accepted and not stored; without it, it is reserved.
    let (m, r) = harness(
        GuestMode::Long64,
        |a| {
            set_cr4_bit(17)(a)?;
            a.mov(rax, cr3)?;
            a.or(rax, 7)?;
            a.bts(rax, 63)?;
            a.mov(cr3, rax)?;
            a.mov(rbx, cr3)?;
            // Clearing PCIDE is allowed (CR3[11:0] may be nonzero then).
            a.mov(rax, cr4)?;
            a.btr(rax, 17)?;
            a.mov(cr4, rax)?;
            a.mov(rax, cr3)?;
            a.bts(rax, 63)?;
            a.mov(cr3, rax)
        },
        |_| {},
    );
    assert_eq!(fault_of(&r), GP0, "bit 63 without PCIDE: {r}");
    assert_eq!(m.cpu.gpr[3], (m.setup_area() + 0x1000) | 7);
    assert_eq!(m.cpu.cr4 & CR4_PCIDE, 0);
    // LA57 cannot change in IA-32e mode; outside it, it can.
    let (_m, r) = harness(GuestMode::Long64, set_cr4_bit(12), |_| {});
    assert_eq!(fault_of(&r), GP0);
    let (m, r) = harness(
        GuestMode::Protected32,
        |a| {
            a.mov(eax, cr4)?;
            a.or(eax, (CR4_LA57 | CR4_UMIP | CR4_PKE) as i32)?;
            a.mov(cr4, eax)
        },
        |_| {},
    );
    assert_halted(&r);
    assert_eq!(m.cpu.cr4 & (CR4_LA57 | CR4_UMIP | CR4_PKE), CR4_LA57 | CR4_UMIP | CR4_PKE);
    // Unimplemented bits (CET, bit 23) and bits 63:32 are reserved.
    for bit in [23, 32, 63] {
        let (_m, r) = harness(GuestMode::Long64, set_cr4_bit(bit), |_| {});
        assert_eq!(fault_of(&r), GP0, "bit {bit}");
    }
}

/// 32-bit code at BODY that turns on IA-32e paging with `root` from protected mode
/// (CR4.PAE, CR3, EFER.LME, CR0.PG): the CPU lands in compatibility mode.
fn activate_long_mode(a: &mut CodeAssembler, root: u64) -> Result<(), IcedError> {
    a.mov(eax, CR4_PAE as u32)?;
    a.mov(cr4, eax)?;
    a.mov(eax, root as u32)?;
    a.mov(cr3, eax)?;
    a.mov(ecx, msr::IA32_EFER)?;
    a.rdmsr()?;
    a.or(eax, EFER_LME as i32)?;
    a.wrmsr()?;
    a.mov(eax, cr0)?;
    a.or(eax, CR0_PG as i32)?;
    a.mov(cr0, eax)
}

#[test]
fn cr0_pg_rules_for_ia32e_activation_and_deactivation() {
    // SDM Vol. 3A §10.8.5 "Initializing IA-32e Mode", Vol. 2B MOV CR exceptions: no
    // activation from a code segment with L = 1; compatibility mode may clear PG (leaving
    // IA-32e mode) unless CR4.PCIDE = 1.
    let run = |cs_l: bool, pcide: bool| {
        let mut m = machine();
        let mut t = Tables::new(&mut m, Paging::Long4);
        t.map_base(&mut m, false);
        let root = t.root;
        let code = asm(32, BODY, |a| {
            activate_long_mode(a, root)?;
            a.mov(esi, 1)?; // reached compatibility mode
            if pcide {
                a.mov(eax, cr4)?;
                a.bts(eax, 17)?;
                a.mov(cr4, eax)?;
            }
            a.mov(eax, cr0)?;
            a.btr(eax, 31)?;
            a.mov(cr0, eax)?;
            a.hlt()
        });
        m.load(BODY, &code).unwrap();
        m.enter_mode(GuestMode::Protected32, BODY, STACK).unwrap();
        if cs_l {
            m.cpu.seg[1].attr |= 1 << 13;
            m.cpu.update_mode();
        }
        let r = m.run(Some(1000));
        (m, r)
    };
    let (m, r) = run(true, false);
    assert_eq!(fault_of(&r), GP0, "CS.L = 1");
    assert_eq!((m.cpu.cr0 & CR0_PG, m.cpu.gpr[6]), (0, 0));
    let (m, r) = run(false, false);
    assert_halted(&r);
    assert_eq!(m.cpu.gpr[6], 1);
    assert_eq!(m.cpu.mode, hvsim::CpuMode::Protected);
    assert_eq!(m.cpu.efer & (1 << 10), 0, "LMA cleared");
    let (m, r) = run(false, true);
    assert_eq!(fault_of(&r), GP0, "PCIDE = 1");
    assert_eq!(m.cpu.mode, hvsim::CpuMode::Compat);
}

#[test]
fn umip_makes_store_descriptor_instructions_privileged() {
    // SDM Vol. 3A §2.5: with CR4.UMIP = 1, SGDT, SIDT, SLDT, SMSW and STR fault with
    // #GP(0) at CPL > 0; CPL 0 is unaffected.
    type Body = fn(&mut CodeAssembler) -> Result<(), IcedError>;
    let bodies: [Body; 5] = [
        |a| a.sgdt(fword_ptr(0x7100)),
        |a| a.sidt(fword_ptr(0x7100)),
        |a| a.sldt(ax),
        |a| a.smsw(eax),
        |a| a.str(ax),
    ];
    for body in bodies {
        let (_m, r) = harness(GuestMode::Long64, body, |m| {
            m.cpu.cr4 |= CR4_UMIP;
            user(m);
        });
        assert_eq!(fault_of(&r), GP0, "{r}");
        let (_m, r) = harness(GuestMode::Long64, body, user);
        assert_eq!(fault_of(&r), GP0, "without UMIP only the final HLT faults: {r}");
        assert_eq!(r.rip, BODY + asm(64, BODY, body).len() as u64);
        let (_m, r) = harness(GuestMode::Long64, body, |m| m.cpu.cr4 |= CR4_UMIP);
        assert_halted(&r);
    }
}

#[test]
fn dr7_general_detect_and_dr6_dr7_reserved_bits() {
    // SDM Vol. 3A §18.2.4 "Debug Control Register (DR7)": with GD set, any MOV DR faults
    // with #DB and DR6.BD set.
    for read in [true, false] {
        let mut at = 0;
        let (m, r) = harness(
            GuestMode::Long64,
            |a| {
                a.mov(eax, 0x2000u32)?;
                a.mov(dr7, rax)?;
                if read {
                    a.mov(rbx, dr0)
                } else {
                    a.mov(dr1, rbx)
                }
            },
            |_| {},
        );
        at += asm(64, BODY, |a| {
            a.mov(eax, 0x2000u32)?;
            a.mov(dr7, rax)
        })
        .len() as u64;
        assert_eq!(fault_of(&r), Some((DB, None)), "{r}");
        assert_eq!(r.rip, BODY + at);
        assert_ne!(m.cpu.dr[6] & (1 << 13), 0, "DR6.BD");
    }
    for dr in [6, 7] {
        let (_m, r) = harness(
            GuestMode::Long64,
            |a| {
                a.mov(rax, 1u64 << 32)?;
                if dr == 6 {
                    a.mov(dr6, rax)
                } else {
                    a.mov(dr7, rax)
                }
            },
            |_| {},
        );
        assert_eq!(fault_of(&r), GP0);
    }
}

#[test]
fn rdpkru_wrpkru_checks_and_round_trip() {
    // SDM Vol. 2B "RDPKRU", "WRPKRU": #UD with CR4.PKE = 0; #GP(0) if ECX != 0 (and
    // EDX != 0 for WRPKRU); EDX reads 0.
    let pke = |m: &mut Machine| m.cpu.cr4 |= CR4_PKE;
    let (_m, r) = harness(GuestMode::Long64, |a| a.rdpkru(), |_| {});
    assert_eq!(fault_of(&r), UD_);
    let (_m, r) = harness(
        GuestMode::Long64,
        |a| {
            a.xor(ecx, ecx)?;
            a.xor(edx, edx)?;
            a.wrpkru()
        },
        |_| {},
    );
    assert_eq!(fault_of(&r), UD_);
    let (_m, r) = harness(
        GuestMode::Long64,
        |a| {
            a.mov(ecx, 1)?;
            a.rdpkru()
        },
        pke,
    );
    assert_eq!(fault_of(&r), GP0);
    let (_m, r) = harness(
        GuestMode::Long64,
        |a| {
            a.xor(ecx, ecx)?;
            a.mov(edx, 1)?;
            a.wrpkru()
        },
        pke,
    );
    assert_eq!(fault_of(&r), GP0);
    // Any CPL may use them.
    let (m, r) = harness(
        GuestMode::Long64,
        |a| {
            a.xor(ecx, ecx)?;
            a.xor(edx, edx)?;
            a.mov(eax, 0x0C)?;
            a.wrpkru()?;
            a.mov(edx, 7)?;
            a.xor(eax, eax)?;
            a.rdpkru()?;
            a.nop()
        },
        |m| {
            pke(m);
            user(m);
        },
    );
    assert_eq!(fault_of(&r), GP0, "only the final HLT faults at CPL 3: {r}");
    assert_eq!((m.cpu.gpr[0], m.cpu.gpr[2], m.cpu.pkru), (0x0C, 0, 0x0C));
}

#[test]
fn wrpkru_takes_effect_on_cached_translations() {
    // SDM Vol. 3A §4.6.2: PKRU is consulted on every data access, so a translation the
    // TLB holds must not bypass a new PKRU value.
    let s = Setup { cr4_extra: CR4_PKE, ..Setup::new(Paging::Long4) };
    let (mut m, _t) = paged_machine(&s, |m, t| {
        fill_frames(m);
        t.map(m, T1, frame(0), URW | (1 << 59), 1);
    });
    let r = run_body(&mut m, 64, |a| {
        rd(a, r8d, T1)?;
        a.xor(ecx, ecx)?;
        a.xor(edx, edx)?;
        a.mov(eax, paging::PKRU_WD << 2)?;
        a.wrpkru()?;
        rd(a, r9d, T1)?;
        a.mov(eax, paging::PKRU_AD << 2)?;
        a.wrpkru()?;
        rd(a, r10d, T1)
    });
    let e = exception(&r).unwrap();
    assert_eq!((e.vector, e.error_code, e.cr2), (PF, Some(PFEC_P | PFEC_PK), T1), "{r}");
    assert_eq!((m.cpu.gpr[8], m.cpu.gpr[9]), (val(0), val(0)));
    // WD alone stops a supervisor write with WP = 1, on a cached translation too.
    let r = run_body(&mut m, 64, |a| {
        a.xor(ecx, ecx)?;
        a.xor(edx, edx)?;
        a.xor(eax, eax)?;
        a.wrpkru()?;
        a.mov(rbx, T1)?;
        a.mov(dword_ptr(rbx), eax)?;
        a.mov(eax, paging::PKRU_WD << 2)?;
        a.wrpkru()?;
        a.mov(dword_ptr(rbx), eax)
    });
    let e = exception(&r).unwrap();
    assert_eq!((e.vector, e.error_code, e.cr2), (PF, Some(PFEC_P | PFEC_W | PFEC_PK), T1), "{r}");
}

#[test]
fn stac_clac() {
    // SDM Vol. 2A "CLAC", Vol. 2B "STAC": #UD at CPL > 0; they set and clear EFLAGS.AC,
    // which lifts SMAP for explicit supervisor accesses (Vol. 3A §4.6.1).
    for body in [|a: &mut CodeAssembler| a.stac(), |a: &mut CodeAssembler| a.clac()] {
        let (_m, r) = harness(GuestMode::Long64, body, user);
        assert_eq!(fault_of(&r), UD_);
    }
    let s = Setup { cr4_extra: CR4_SMAP, ..Setup::new(Paging::Long4) };
    let (mut m, _t) = paged_machine(&s, |m, t| {
        fill_frames(m);
        t.map(m, T1, frame(0), URW, 1);
    });
    let r = run_body(&mut m, 64, |a| {
        a.stac()?;
        rd(a, r8d, T1)?;
        a.pushfq()?;
        a.pop(r9)?;
        a.clac()?;
        a.pushfq()?;
        a.pop(r10)?;
        rd(a, r11d, T1)
    });
    let e = exception(&r).unwrap();
    assert_eq!((e.vector, e.error_code, e.cr2), (PF, Some(PFEC_P), T1), "{r}");
    let ac = 1 << 18;
    assert_eq!((m.cpu.gpr[8], m.cpu.gpr[9] & ac, m.cpu.gpr[10] & ac), (val(0), ac, 0));
}

// ---- The walker against a reference implementation ----

mod reference {
    //! A page walker written straight from SDM Vol. 3A §4.3-§4.7, over the entries of one
    //! walk given as values (root level first), for checking `hvsim_mmu::paging::walk`.
    use super::*;

    pub const MAXPHY: u32 = 40;

    pub struct Case {
        pub mode: PagingMode,
        pub cfg: WalkConfig,
        pub addr: u64,
        pub access: Access,
    }

    fn bit(e: u64, n: u32) -> bool {
        (e >> n) & 1 != 0
    }

    fn any_bits(e: u64, lo: u32, hi: u32) -> bool {
        (lo..=hi).any(|n| bit(e, n))
    }

    fn reserved(c: &Case, level: u8, e: u64) -> bool {
        let nxe = c.cfg.nxe;
        match c.mode {
            PagingMode::Legacy32 => level == 2 && bit(e, 7) && c.cfg.pse && bit(e, 21),
            PagingMode::Pae if level == 3 => {
                bit(e, 1) || bit(e, 2) || any_bits(e, 5, 8) || any_bits(e, MAXPHY, 63)
            }
            PagingMode::Pae => {
                any_bits(e, MAXPHY, 62)
                    || (!nxe && bit(e, 63))
                    || (level == 2 && bit(e, 7) && any_bits(e, 13, 20))
            }
            _ => {
                any_bits(e, MAXPHY, 51)
                    || (!nxe && bit(e, 63))
                    || (level >= 4 && bit(e, 7))
                    || (level == 3 && bit(e, 7) && any_bits(e, 13, 29))
                    || (level == 2 && bit(e, 7) && any_bits(e, 13, 20))
            }
        }
    }

    /// `Ok((gpa, page size))` or `Err(error code)`.
    pub fn walk(c: &Case, entries: &[u64]) -> Result<(u64, u64), u32> {
        let a = c.access;
        let write = a.kind == AccessKind::Write;
        let fetch = a.kind == AccessKind::Fetch;
        let long = matches!(c.mode, PagingMode::Long4 | PagingMode::Long5);
        let mut code = 0;
        if write {
            code |= PFEC_W;
        }
        if a.user {
            code |= PFEC_U;
        }
        if fetch && (c.cfg.smep || (c.cfg.nxe && c.mode != PagingMode::Legacy32)) {
            code |= PFEC_I;
        }
        let top = entries.len() as u8;
        let (mut user, mut writable, mut xd) = (true, true, false);
        for (k, &e) in entries.iter().enumerate() {
            let level = top - k as u8;
            if !bit(e, 0) {
                return Err(code);
            }
            if reserved(c, level, e) {
                return Err(code | PFEC_P | PFEC_RSVD);
            }
            let pdpte = c.mode == PagingMode::Pae && level == 3;
            if !pdpte {
                user &= bit(e, 2);
                writable &= bit(e, 1);
                xd |= c.mode != PagingMode::Legacy32 && c.cfg.nxe && bit(e, 63);
            }
            let large = bit(e, 7)
                && match (c.mode, level) {
                    (PagingMode::Legacy32, 2) => c.cfg.pse,
                    (PagingMode::Pae, 2) => true,
                    (PagingMode::Long4 | PagingMode::Long5, 2 | 3) => true,
                    _ => false,
                };
            if level != 1 && !large {
                continue;
            }
            let (size, frame) = match (c.mode, level) {
                (PagingMode::Legacy32, 2) => {
                    (4u64 << 20, (e & 0xFFC0_0000) | (((e >> 13) & 0xFF) << 32))
                }
                (PagingMode::Legacy32, _) => (4096, e & 0xFFFF_F000),
                (_, l) => {
                    let size = 1u64 << (12 + 9 * (u32::from(l) - 1));
                    (size, e & 0x000F_FFFF_FFFF_F000 & !(size - 1))
                }
            };
            let denied = if a.user {
                !user || (write && !writable) || (fetch && xd)
            } else if fetch {
                xd || (c.cfg.smep && user)
            } else {
                let smap = c.cfg.smap && user && !a.smap_override;
                smap || (write && !writable && c.cfg.wp)
            };
            let pk = long && c.cfg.pke && user && !fetch && {
                let key = (e >> 59) & 0xF;
                let ad = bit(u64::from(c.cfg.pkru), 2 * key as u32);
                let wd = bit(u64::from(c.cfg.pkru), 2 * key as u32 + 1);
                ad || (wd && write && (a.user || c.cfg.wp))
            };
            if denied || pk {
                return Err(code | PFEC_P | if pk { PFEC_PK } else { 0 });
            }
            let lin = if long { c.addr } else { c.addr & 0xFFFF_FFFF };
            return Ok((frame | (lin & (size - 1)), size));
        }
        unreachable!("level 1 is always a leaf")
    }
}

mod walker_property {
    use super::reference::{self, Case};
    use super::*;
    use proptest::prelude::*;

    /// One entry's random parts: flags (bits 11:0), bits 63:52, an optional reserved
    /// bit above MAXPHYADDR, and bits 29:13 (large-page frame or reserved bits).
    #[derive(Clone, Debug)]
    struct EntryBits {
        present: bool,
        flags: u16,
        /// Also: a PAE PDPTE without its reserved low bits.
        permissive: bool,
        high: u16,
        above_maxphy: Option<u32>,
        mid: Option<u32>,
    }

    fn entry_bits() -> impl Strategy<Value = EntryBits> {
        (
            prop::bool::weighted(0.95),
            any::<u16>(),
            // Mostly writable and user-accessible, so walks reach the deeper checks.
            prop::bool::weighted(0.7),
            prop::bool::weighted(0.3),
            prop::option::weighted(0.5, any::<u16>()),
            prop::option::weighted(0.05, 40u32..52),
            prop::option::weighted(0.2, any::<u32>()),
        )
            .prop_map(|(present, flags, permissive, ps, high, above_maxphy, mid)| {
                let mut flags = (flags & !0x80) | if ps { 0x80 } else { 0 };
                if permissive {
                    flags |= 0x6;
                }
                EntryBits { present, flags, permissive, high: high.unwrap_or(0), above_maxphy, mid }
            })
    }

    fn compose(b: &EntryBits, addr_part: u64, ps_honored: bool) -> u64 {
        let mut e = u64::from(b.flags & 0xFFF) | (u64::from(b.high & 0xFFF) << 52) | addr_part;
        if let Some(n) = b.above_maxphy {
            e |= 1 << n;
        }
        // Bits 29:13 only matter in a large-page entry (PS) and in a leaf PTE's frame;
        // elsewhere they would move the next table.
        if let (Some(m), true) = (b.mid, e & PTE_PS != 0 && ps_honored) {
            e |= u64::from(m) << 13 & 0x3FFF_E000;
        }
        if b.present {
            e | PTE_P
        } else {
            e & !PTE_P
        }
    }

    fn mode_of(n: u8) -> PagingMode {
        [PagingMode::Legacy32, PagingMode::Pae, PagingMode::Long4, PagingMode::Long5][n as usize]
    }

    fn index(mode: PagingMode, addr: u64, level: u8) -> u64 {
        match (mode, level) {
            (PagingMode::Legacy32, 2) => (addr >> 22) & 0x3FF,
            (PagingMode::Legacy32, _) => (addr >> 12) & 0x3FF,
            (PagingMode::Pae, 3) => (addr >> 30) & 3,
            _ => (addr >> (12 + 9 * (u32::from(level) - 1))) & 0x1FF,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

        /// SDM Vol. 3A §4.3-§4.8: translation, page size, #PF error code and A/D
        /// updates agree with the reference walker for random entries and settings.
        #[test]
        fn walk_matches_reference(
            mode in 0u8..4,
            bits in prop::collection::vec(entry_bits(), 5),
            leaf_frame in any::<u64>(),
            addr in any::<u64>(),
            flags in any::<u8>(),
            pkru in any::<u32>(),
            kind in 0u8..3,
            user in any::<bool>(),
            smap_override in any::<bool>(),
            cached_pdptes in any::<bool>(),
        ) {
            let mode = mode_of(mode);
            let levels: u8 = match mode {
                PagingMode::Legacy32 => 2,
                PagingMode::Pae => 3,
                PagingMode::Long4 => 4,
                PagingMode::Long5 => 5,
            };
            let narrow = mode == PagingMode::Legacy32;
            // Table for level L at page L; CR3 points at the top one.
            let mut mem = GuestMemory::new(MemoryMap::flat(0x10000)).unwrap();
            let mut entries = vec![];
            let mut addrs = vec![];
            for level in (1..=levels).rev() {
                let b = &bits[usize::from(level) - 1];
                let addr_part = if level == 1 {
                    leaf_frame & 0xFF_FFFF_F000
                } else {
                    u64::from(level - 1) * 0x1000
                };
                // Where PS makes a large page (32-bit paging needs CR4.PSE).
                let ps_honored = match (mode, level) {
                    (PagingMode::Legacy32, 2) => flags & 2 != 0,
                    (PagingMode::Pae, 2) => true,
                    (PagingMode::Long4 | PagingMode::Long5, 2 | 3) => true,
                    _ => false,
                };
                let mut e = compose(b, addr_part, ps_honored);
                if mode == PagingMode::Pae && level == 3 && b.permissive {
                    e &= !0x1E6;
                }
                if narrow {
                    e &= 0xFFFF_FFFF;
                }
                let table = u64::from(level) * 0x1000;
                let at = table + index(mode, addr, level) * if narrow { 4 } else { 8 };
                if narrow {
                    mem.write_u32(Gpa(at), e as u32);
                } else {
                    mem.write_u64(Gpa(at), e);
                }
                entries.push(e);
                addrs.push(at);
            }
            let mut pdptes = [0u64; 4];
            if mode == PagingMode::Pae {
                pdptes[index(mode, addr, 3) as usize] = entries[0];
            }
            let cfg = WalkConfig {
                mode,
                cr3: u64::from(levels) * 0x1000,
                wp: flags & 1 != 0,
                pse: flags & 2 != 0,
                nxe: flags & 4 != 0,
                smep: flags & 8 != 0,
                smap: flags & 16 != 0,
                pke: flags & 32 != 0,
                pkru,
                pdptes: (mode == PagingMode::Pae && cached_pdptes).then_some(pdptes),
                maxphyaddr: reference::MAXPHY as u8,
            };
            let kind = [AccessKind::Read, AccessKind::Write, AccessKind::Fetch][usize::from(kind)];
            let access = Access { kind, user, smap_override };
            let case = Case { mode, cfg, addr, access };
            // The reference returns at the leaf; the entries it used are those above it.
            let want = reference::walk(&case, &entries).map(|(gpa, size)| {
                let leaf_level = match size {
                    4096 => 1,
                    s if s == 4 << 20 || s == 2 << 20 => 2,
                    _ => 3,
                };
                (gpa, size, usize::from(levels - leaf_level + 1))
            });
            let before: Vec<u64> = addrs.iter().map(|&a| mem.read_u64(Gpa(a))).collect();
            let got = paging::walk(&mut mem, &cfg, Gva(addr), access);
            match (&got, &want) {
                (Ok(t), Ok((gpa, size, nused))) => {
                    prop_assert_eq!((t.gpa.0, t.page_size), (*gpa, *size));
                    // A in every entry used (not a PAE PDPTE), D in the leaf on writes.
                    for (k, &at) in addrs.iter().enumerate() {
                        let v = if narrow { u64::from(mem.read_u32(Gpa(at))) } else { mem.read_u64(Gpa(at)) };
                        let old = if narrow { before[k] & 0xFFFF_FFFF } else { before[k] };
                        let pdpte = mode == PagingMode::Pae && k == 0;
                        let mut expect = old;
                        if k < *nused && !pdpte {
                            expect |= PTE_A;
                            if k == nused - 1 && kind == AccessKind::Write {
                                expect |= PTE_D;
                            }
                        }
                        prop_assert_eq!(v, expect, "entry {} at {:#x}", k, at);
                    }
                }
                (Err(pf), Err(code)) => {
                    prop_assert_eq!(pf.error_code, *code);
                    prop_assert_eq!(pf.addr, Gva(addr));
                    let after: Vec<u64> = addrs.iter().map(|&a| mem.read_u64(Gpa(a))).collect();
                    prop_assert_eq!(after, before, "a faulting walk sets no A/D bits");
                }
                _ => prop_assert!(false, "walker {:?} vs reference {:?}", got, want),
            }
        }
    }
}

#[test]
fn implicit_supervisor_accesses_ignore_cpl_and_ac() {
    // SDM Vol. 3A §4.6 "Access Rights": accesses to system data structures (GDT, LDT,
    // IDT, TSS) are supervisor-mode accesses at any CPL, and SMAP applies to them even
    // with EFLAGS.AC = 1.
    let s = Setup { cr4_extra: CR4_SMAP, ..Setup::new(Paging::Long4) };
    let (mut m, _t) = paged_machine(&s, |m, t| {
        fill_frames(m);
        t.map(m, T1, frame(0), RW, 1);
        t.map(m, T2, frame(1), URW, 1);
    });
    user(&mut m);
    let pf = |r: Result<[u8; 4], hvsim::Fault>| match r {
        Err(hvsim::Fault::Exception(e)) => (e.vector, e.error_code, e.cr2),
        other => panic!("{other:?}"),
    };
    assert_eq!(m.read_lin_implicit::<4>(T1).unwrap(), (val(0) as u32).to_le_bytes());
    assert_eq!(pf(m.read_lin::<4>(T1, AccessKind::Read)), (PF, Some(PFEC_P | PFEC_U), T1));
    // A supervisor write to the supervisor page, then the user page: SMAP faults.
    m.write_lin_implicit(T1 + 0xFFE, &[1, 2, 3, 4]).unwrap_err();
    assert_eq!(m.mem.read_u32(Gpa(frame(0) + 0xFFC)), 0, "nothing written before the fault");
    m.write_lin_implicit(T1 + 0xFF0, &[1, 2, 3, 4]).unwrap();
    assert_eq!(m.mem.read_u32(Gpa(frame(0) + 0xFF0)), 0x0403_0201);
    m.cpu.flags.set_bit(hvsim::cpu::flags::AC, true);
    assert_eq!(pf(m.read_lin_implicit::<4>(T2)), (PF, Some(PFEC_P), T2));
    assert_eq!(m.read_lin::<4>(T2, AccessKind::Read).unwrap(), (val(1) as u32).to_le_bytes());
    // At CPL 0 with AC = 1 an explicit access may use the user page; an implicit one not.
    let (mut m, _t) = paged_machine(&s, |m, t| {
        fill_frames(m);
        t.map(m, T2, frame(1), URW, 1);
    });
    m.cpu.flags.set_bit(hvsim::cpu::flags::AC, true);
    assert!(m.read_lin::<4>(T2, AccessKind::Read).is_ok());
    assert_eq!(pf(m.read_lin_implicit::<4>(T2)), (PF, Some(PFEC_P), T2));
}
