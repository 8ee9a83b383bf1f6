//! RDRAND/RDSEED from the seeded deterministic generator (SDM Vol. 2B "RDRAND",
//! "RDSEED"), and the cache-control and hint instructions: CLFLUSH, CLFLUSHOPT, CLWB
//! (SDM Vol. 2A), PREFETCHh/PREFETCHW, WBINVD/INVD, MONITOR/MWAIT, PAUSE.

use hvsim::cpu::flags::{AF, CF, OF, PF, SF, ZF};
use hvsim::cpuid::{Cpuid, Feature};
use hvsim::machine::CATCH_ALL;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, StopReport, Vendor};
use iced_x86::code_asm::*;

const CODE: u64 = 0x1000;
const STACK: u64 = 0x8000;
const DATA: u64 = 0x4000;
const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;

fn assemble(bits: u32, body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    body(&mut a).unwrap();
    a.hlt().unwrap();
    a.assemble(CODE).unwrap()
}

fn machine(cfg: MachineConfig, mode: GuestMode, code: &[u8]) -> Machine {
    let mut m = Machine::new(&cfg).unwrap();
    m.set_exception_catch(CATCH_ALL);
    m.load(CODE, code).unwrap();
    m.enter_mode(mode, CODE, STACK).unwrap();
    m
}

fn cfg(seed: u64) -> MachineConfig {
    MachineConfig { mem_size: 4 << 20, rng_seed: seed, ..Default::default() }
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

/// RDRAND r64, RDSEED r64, RDRAND r32, RDRAND r16 into RAX, RBX, RCX, RDX (RCX/RDX
/// preloaded with ones to show the 32-bit zero-extension and the 16-bit merge).
fn draws() -> Vec<u8> {
    assemble(64, |a| {
        a.mov(rcx, -1i64)?;
        a.mov(rdx, -1i64)?;
        a.xor(esi, esi)?; // ZF = PF = 1, CF = 0
        a.rdrand(rax)?;
        a.rdseed(rbx)?;
        a.rdrand(ecx)?;
        a.rdrand(dx)
    })
}

fn run_draws(seed: u64) -> ([u64; 4], u64) {
    let mut m = machine(cfg(seed), GuestMode::Long64, &draws());
    let r = m.run(Some(100));
    assert!(halted(&r), "{r}");
    ([m.cpu.gpr[0], m.cpu.gpr[3], m.cpu.gpr[1], m.cpu.gpr[2]], m.cpu.flags.get())
}

// Determinism (architecture doc, "Determinism"): the same seed gives the same values,
// another seed other values; CF = 1 and OF, SF, ZF, AF, PF = 0 ("the random value is
// available" in the SDM's flag description).
#[test]
fn rdrand_rdseed_are_deterministic_per_seed() {
    let (a, flags) = run_draws(1);
    let (b, _) = run_draws(1);
    let (c, _) = run_draws(2);
    assert_eq!(a, b, "same seed");
    assert_ne!(a, c, "another seed");
    assert_ne!(a[0], a[1], "the sequence advances");
    assert_eq!(a[2] >> 32, 0, "32-bit destination zero-extends");
    assert_eq!(a[3] >> 16, 0xFFFF_FFFF_FFFF, "16-bit destination merges");
    assert_eq!(flags & (CF | OF | SF | ZF | AF | PF), CF);
    // The default configuration uses the fixed default seed.
    let (d, _) = run_draws(hvsim::cpu::exec::DEFAULT_RNG_SEED);
    let mut m = machine(MachineConfig::default(), GuestMode::Long64, &draws());
    m.run(Some(100));
    assert_eq!(d[0], m.cpu.gpr[0]);
}

// "#UD If CPUID.01H:ECX.RDRAND[bit 30] = 0" / "CPUID.(EAX=07H, ECX=0H):EBX.RDSEED = 0".
#[test]
fn rdrand_rdseed_ud_unless_advertised() {
    for (f, code) in [
        (Feature::Rdrand, assemble(64, |a| a.rdrand(rax))),
        (Feature::Rdseed, assemble(64, |a| a.rdseed(rax))),
    ] {
        let mut m = machine(cfg(1), GuestMode::Long64, &code);
        let mut model = Cpuid::new(Vendor::Intel);
        model.set_feature(f, false);
        m.cpuid = model;
        let r = m.run(Some(10));
        assert_eq!(exception(&r), Some((6, None)), "{f:?}: {r}");
    }
}

/// Runs `body` in 64-bit mode after letting `setup` change the machine.
fn run64(
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    setup: impl FnOnce(&mut Machine),
) -> (Machine, StopReport) {
    let mut m = machine(cfg(1), GuestMode::Long64, &assemble(64, body));
    setup(&mut m);
    let r = m.run(Some(100));
    (m, r)
}

/// The harness's PDE for the 2-MiB page at `gpa`.
fn pde_addr(m: &Machine, gpa: u64) -> hvsim_mmu::Gpa {
    hvsim_mmu::Gpa(m.setup_area() + 0x3000 + 8 * (gpa >> 21))
}

// SDM Vol. 2A "CLFLUSH": "#GP(0) For an illegal memory operand effective address ...
// #SS(0) For an illegal address in the SS segment ... #PF(fault-code) For a page fault";
// the access is checked as a read (a read-only page is fine) and nothing is written.
#[test]
fn cache_line_flushes_check_the_address_like_a_read() {
    type Flush = fn(&mut CodeAssembler, AsmMemoryOperand) -> Result<(), IcedError>;
    let flushes: [(&str, Flush); 3] = [
        ("clflush", |a, m| a.clflush(m)),
        ("clflushopt", |a, m| a.clflushopt(m)),
        ("clwb", |a, m| a.clwb(m)),
    ];
    for (name, flush) in flushes {
        // Mapped (even read-only): no fault, memory unchanged.
        let (m, r) = run64(
            |a| {
                a.mov(rax, DATA + 0x20_0000)?;
                flush(a, byte_ptr(rax))
            },
            |m| {
                m.mem.write_u64(hvsim_mmu::Gpa(DATA + 0x20_0000), 0x1234);
                let at = pde_addr(m, 0x20_0000);
                let pde = m.mem.read_u64(at);
                m.mem.write_u64(at, pde & !2);
            },
        );
        assert!(halted(&r), "{name}: {r}");
        assert_eq!(m.mem.read_u64(hvsim_mmu::Gpa(DATA + 0x20_0000)), 0x1234);
        // Non-canonical: #GP(0); through RSP: #SS(0).
        let (_, r) = run64(
            |a| {
                a.mov(rax, NON_CANONICAL)?;
                flush(a, byte_ptr(rax))
            },
            |_| {},
        );
        assert_eq!(exception(&r), Some((13, Some(0))), "{name}: {r}");
        let (_, r) = run64(
            |a| {
                a.mov(rsp, NON_CANONICAL)?;
                flush(a, byte_ptr(rsp))
            },
            |_| {},
        );
        assert_eq!(exception(&r), Some((12, Some(0))), "{name}: {r}");
        // Not present: #PF(0) (supervisor read), CR2 = the address.
        let (_, r) = run64(
            |a| {
                a.mov(rax, 0x20_0010u64)?;
                flush(a, byte_ptr(rax))
            },
            |m| {
                let at = pde_addr(m, 0x20_0000);
                m.mem.write_u64(at, 0);
            },
        );
        assert_eq!(exception(&r), Some((14, Some(0))), "{name}: {r}");
        match r.reason {
            StopReason::Exception { exception, .. } => assert_eq!(exception.cr2, 0x20_0010),
            _ => unreachable!(),
        }
    }
    // 32-bit protected mode: beyond the DS limit is #GP(0).
    let code = assemble(32, |a| a.clflush(byte_ptr(eax)));
    let mut m = machine(cfg(1), GuestMode::Protected32, &code);
    m.cpu.seg[3].limit = 0xFFF;
    m.cpu.gpr[0] = 0x1000;
    let r = m.run(Some(10));
    assert_eq!(exception(&r), Some((13, Some(0))), "{r}");
    // #UD when not advertised.
    let (_, r) = run64(|a| a.clwb(byte_ptr(DATA)), |m| m.cpuid.set_feature(Feature::Clwb, false));
    assert_eq!(exception(&r), Some((6, None)), "{r}");
}

// SDM Vol. 2B "PREFETCHh": "Prefetches ... do not cause exceptions"; PAUSE is a hint.
#[test]
fn prefetch_and_pause_never_fault() {
    let (_, r) = run64(
        |a| {
            a.mov(rax, NON_CANONICAL)?;
            a.prefetcht0(byte_ptr(rax))?;
            a.prefetchnta(byte_ptr(rax))?;
            a.prefetchw(byte_ptr(0x20_0000))?;
            a.pause()
        },
        |m| {
            let at = pde_addr(m, 0x20_0000);
            m.mem.write_u64(at, 0);
        },
    );
    assert!(halted(&r), "{r}");
}

// SDM Vol. 2A "INVD", Vol. 2B "WBINVD": #GP(0) if CPL > 0. MONITOR/MWAIT: #UD when the
// model does not advertise CPUID.01H:ECX.MONITOR (tests/monitor_mwait.rs covers them
// when it does); APM Vol. 3 "MONITORX"/"MWAITX": #UD, as no model advertises MONITORX.
#[test]
fn wbinvd_invd_privileged_monitor_mwait_ud() {
    for body in [
        (|a: &mut CodeAssembler| a.wbinvd()) as fn(&mut CodeAssembler) -> Result<(), IcedError>,
        |a| a.invd(),
    ] {
        let (_, r) = run64(body, |_| {});
        assert!(halted(&r), "CPL 0: {r}");
        let (_, r) = run64(body, |m| {
            for s in [1, 2] {
                m.cpu.seg[s].selector |= 3;
                m.cpu.seg[s].attr |= 3 << 5;
            }
            m.cpu.update_mode();
        });
        assert_eq!(exception(&r), Some((13, Some(0))), "CPL 3: {r}");
    }
    for v in [Vendor::Intel, Vendor::Amd] {
        assert_eq!(Cpuid::new(v).query(1, 0)[2] >> 3 & 1, 1, "MONITOR advertised");
        assert_eq!(Cpuid::new(v).query(0x8000_0001, 0)[2] >> 13 & 1, 0, "MONITORX");
        let mut without = Cpuid::new(v);
        without.set_feature(Feature::Monitor, false);
        for body in [
            (|a: &mut CodeAssembler| a.monitor())
                as fn(&mut CodeAssembler) -> Result<(), IcedError>,
            |a| a.mwait(),
        ] {
            let model = without.clone();
            let (_, r) = run64(body, |m| m.cpuid = model);
            assert_eq!(exception(&r), Some((6, None)), "{v:?} without MONITOR: {r}");
        }
        for bytes in [[0x0F, 0x01, 0xFA], [0x0F, 0x01, 0xFB]] {
            let (_, r) = run64(|a| a.db(&bytes), |m| m.cpuid = Cpuid::new(v));
            assert_eq!(exception(&r), Some((6, None)), "{v:?} {bytes:x?}: {r}");
        }
    }
}
