//! SYSCALL/SYSRET and SYSENTER/SYSEXIT end to end, on both CPU models (SDM Vol. 2B
//! "SYSCALL", "SYSRET", "SYSENTER", "SYSEXIT"; APM Vol. 3 "SYSCALL", "SYSRET",
//! "SYSENTER", "SYSEXIT"; APM Vol. 2 §6.1 "Fast System Call and Return").

use hvsim::cpu::msr;
use hvsim::cpu::regs::{attr, efer, Segment};
use hvsim::cpuid::Cpuid;
use hvsim::machine::CATCH_ALL;
use hvsim::{CpuMode, GuestMode, Machine, MachineConfig, StopReason, StopReport, Vendor};
use iced_x86::code_asm::*;

/// Kernel entry code.
const KERNEL: u64 = 0x1000;
/// User code.
const USER: u64 = 0x2000;
/// System-call handler.
const HANDLER: u64 = 0x3000;
const STACK: u64 = 0x8000;
const USER_STACK: u64 = 0x7000;
const GP0: (u8, Option<u32>) = (13, Some(0));
const UD: (u8, Option<u32>) = (6, None);
const VENDORS: [Vendor; 2] = [Vendor::Intel, Vendor::Amd];

/// IA32_STAR: SYSRET selector base 0x18 (32-bit user CS 0x1B, SS 0x23, 64-bit user CS
/// 0x2B) and SYSCALL CS 0x08 (SS 0x10); the legacy SYSCALL EIP (AMD) = HANDLER.
const STAR: u64 = 0x0018_0008_0000_0000 | HANDLER;

fn asm(
    bits: u32,
    at: u64,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    body(&mut a).unwrap();
    a.assemble(at).unwrap()
}

/// A machine of `vendor` in `mode` at KERNEL (CPL 0) with the three code pieces loaded.
fn machine(vendor: Vendor, mode: GuestMode, pieces: &[(u64, Vec<u8>)]) -> Machine {
    let cfg = MachineConfig { mem_size: 1 << 20, vendor, ..Default::default() };
    let mut m = Machine::new(&cfg).unwrap();
    assert_eq!(m.cpuid.vendor(), vendor);
    m.cpuid = Cpuid::new(vendor);
    m.set_exception_catch(CATCH_ALL);
    for (at, code) in pieces {
        m.load(*at, code).unwrap();
    }
    m.enter_mode(mode, KERNEL, STACK).unwrap();
    m
}

fn set_msr(m: &mut Machine, n: u32, v: u64) {
    m.cpu.msrs.insert(n, v);
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

/// Puts CS:SS at `sel`/`sel + 8` with the given size and DPL (no descriptor load).
fn set_cs(m: &mut Machine, sel: u16, bits: u8, dpl: u16) {
    let code = Segment::flat_code(sel | dpl, bits);
    m.cpu.seg[1] = Segment { attr: code.attr | dpl << attr::DPL_SHIFT, ..code };
    let stack = Segment::flat_data((sel + 8) | dpl, true);
    m.cpu.seg[2] = Segment { attr: stack.attr | dpl << attr::DPL_SHIFT, ..stack };
    m.cpu.update_mode();
}

/// The 64-bit kernel: program STAR/LSTAR/FMASK, enable SCE, SYSRETQ to USER with
/// RFLAGS = IF | DF.
fn kernel64(a: &mut CodeAssembler) -> Result<(), IcedError> {
    for (n, v) in [
        (msr::IA32_STAR, STAR),
        (msr::IA32_LSTAR, HANDLER),
        (msr::IA32_CSTAR, HANDLER),
        (msr::IA32_FMASK, 0x0600), // IF | DF
    ] {
        a.mov(ecx, n)?;
        a.mov(eax, v as u32)?;
        a.mov(edx, (v >> 32) as u32)?;
        a.wrmsr()?;
    }
    a.mov(ecx, msr::IA32_EFER)?;
    a.rdmsr()?;
    a.or(eax, 1)?; // SCE
    a.wrmsr()?;
    a.mov(rsp, USER_STACK)?;
    a.mov(rcx, USER)?;
    a.mov(r11, 0x602u64)?;
    a.sysretq()
}

// SYSCALL (64-bit mode): RCX = next RIP, R11 = RFLAGS, RFLAGS &= ~FMASK, CS = STAR[47:32],
// SS = +8, RIP = LSTAR. SYSRETQ: CS = STAR[63:48] + 16 | 3, SS = +8 | 3, RIP = RCX,
// RFLAGS = R11.
#[test]
fn syscall_sysret_round_trip_64() {
    let user = asm(64, USER, |a| {
        a.mov(bx, cs)?;
        a.mov(bp, ss)?;
        a.mov(eax, 1)?;
        a.syscall()?; // first call returns 0x1234 in RAX
        a.mov(r12, rax)?;
        a.mov(eax, 99)?;
        a.syscall() // exit
    });
    let handler = asm(64, HANDLER, |a| {
        let mut done = a.create_label();
        a.cmp(eax, 99)?;
        a.je(done)?;
        a.mov(r13, rcx)?;
        a.mov(r14, r11)?;
        a.pushfq()?;
        a.pop(r15)?;
        a.mov(r9w, cs)?;
        a.mov(r10w, ss)?;
        a.mov(eax, 0x1234)?;
        a.sysretq()?;
        a.set_label(&mut done)?;
        a.hlt()
    });
    for v in VENDORS {
        let kernel = asm(64, KERNEL, kernel64);
        let mut m = machine(
            v,
            GuestMode::Long64,
            &[(KERNEL, kernel), (USER, user.clone()), (HANDLER, handler.clone())],
        );
        let r = m.run(Some(1000));
        assert!(halted(&r), "{v:?}: {r}");
        assert_eq!((m.cpu.gpr[3], m.cpu.gpr[5]), (0x2B, 0x23), "{v:?}: user CS, SS");
        assert_eq!(
            (m.cpu.gpr[9] & 0xFFFF, m.cpu.gpr[10] & 0xFFFF),
            (0x08, 0x10),
            "{v:?}: kernel CS, SS"
        );
        assert_eq!(m.cpu.gpr[12], 0x1234, "{v:?}: RAX from the kernel");
        assert_eq!(m.cpu.gpr[13], USER + 3 + 3 + 5 + 2, "{v:?}: RCX = next RIP");
        assert_eq!(m.cpu.gpr[14] & 0x602, 0x602, "{v:?}: R11 = user RFLAGS");
        assert_eq!(m.cpu.gpr[15] & 0x600, 0, "{v:?}: FMASK cleared IF and DF");
        assert_eq!(m.cpu.gpr[4], USER_STACK, "{v:?}: SYSCALL does not switch stacks");
        assert_eq!((m.cpu.cpl, m.cpu.mode), (0, CpuMode::Long64));
        assert_eq!(m.cpu.seg[1].attr & (attr::L | attr::DB), attr::L);
    }
}

// SYSRET with a 32-bit operand size returns to compatibility mode: CS = STAR[63:48] | 3,
// EIP = ECX. There, SYSCALL is #UD on Intel ("IF (CS.L ≠ 1) or (IA32_EFER.LMA ≠ 1) ...
// #UD") and enters the CSTAR target in 64-bit mode on AMD.
#[test]
fn sysret_to_compat_mode_and_syscall_from_it() {
    let user = asm(32, USER, |a| {
        a.mov(ebx, 0x600D)?;
        a.syscall()
    });
    let handler = asm(64, HANDLER, |a| a.hlt());
    for v in VENDORS {
        let kernel = asm(64, KERNEL, |a| {
            a.mov(ecx, msr::IA32_STAR)?;
            a.mov(eax, STAR as u32)?;
            a.mov(edx, (STAR >> 32) as u32)?;
            a.wrmsr()?;
            a.mov(ecx, msr::IA32_CSTAR)?;
            a.mov(eax, HANDLER as u32)?;
            a.xor(edx, edx)?;
            a.wrmsr()?;
            a.mov(ecx, msr::IA32_EFER)?;
            a.rdmsr()?;
            a.or(eax, 1)?;
            a.wrmsr()?;
            a.mov(rcx, 0xFFFF_FFFF_0000_0000u64 | USER)?; // upper half ignored
            a.mov(r11, 2u64)?;
            a.sysret()
        });
        let mut m = machine(
            v,
            GuestMode::Long64,
            &[(KERNEL, kernel), (USER, user.clone()), (HANDLER, handler.clone())],
        );
        let r = m.run(Some(1000));
        assert_eq!(m.cpu.gpr[3], 0x600D, "{v:?}: reached user code");
        match v {
            Vendor::Intel => {
                assert_eq!(exception(&r), Some(UD), "{r}");
                assert_eq!((r.rip, m.cpu.cpl, m.cpu.mode), (USER + 5, 3, CpuMode::Compat));
                assert_eq!(m.cpu.seg[1].selector, 0x1B);
            }
            Vendor::Amd => {
                assert!(halted(&r), "{r}");
                assert_eq!((m.cpu.cpl, m.cpu.mode), (0, CpuMode::Long64));
                assert_eq!(m.cpu.gpr[1], USER + 7, "RCX = next RIP");
                assert_eq!(m.cpu.seg[1].selector, 0x08);
            }
        }
    }
}

// Legacy mode (EFER.LMA = 0): SYSCALL is #UD on Intel; on AMD it enters STAR[31:0] in
// 32-bit protected mode with ECX = next EIP, and SYSRET returns with IF set.
#[test]
fn legacy_mode_syscall_by_vendor() {
    let kernel = asm(32, KERNEL, |a| {
        a.mov(ebx, 0x600D)?;
        a.syscall()
    });
    let handler = asm(32, HANDLER, |a| {
        a.mov(esi, ecx)?;
        a.mov(ecx, USER as u32)?;
        a.sysret()
    });
    let user = asm(32, USER, |a| a.ud2());
    for v in VENDORS {
        let mut m = machine(
            v,
            GuestMode::Protected32,
            &[(KERNEL, kernel.clone()), (USER, user.clone()), (HANDLER, handler.clone())],
        );
        m.cpu.efer |= efer::SCE;
        set_msr(&mut m, msr::IA32_STAR, STAR);
        let r = m.run(Some(1000));
        assert_eq!(m.cpu.gpr[3], 0x600D);
        match v {
            Vendor::Intel => {
                assert_eq!(exception(&r), Some(UD), "{r}");
                assert_eq!(r.rip, KERNEL + 5);
            }
            Vendor::Amd => {
                // Stopped by UD2 in user code after SYSCALL and SYSRET.
                assert_eq!(exception(&r), Some(UD), "{r}");
                assert_eq!(r.rip, USER);
                assert_eq!(m.cpu.gpr[6], KERNEL + 7, "ECX = next EIP");
                assert_eq!(
                    (m.cpu.cpl, m.cpu.mode, m.cpu.seg[1].selector),
                    (3, CpuMode::Protected, 0x1B)
                );
                assert!(m.cpu.flags.bit(hvsim::cpu::flags::IF), "SYSRET sets IF in legacy mode");
            }
        }
    }
}

// #UD without EFER.SCE; SYSRET at CPL > 0 is #GP(0); SYSRET in compatibility mode is #UD
// on Intel and returns on AMD.
#[test]
fn syscall_sysret_fault_cases() {
    let one = |bits: u32, f: fn(&mut CodeAssembler) -> Result<(), IcedError>| asm(bits, KERNEL, f);
    for v in VENDORS {
        // EFER.SCE = 0.
        for code in [one(64, |a| a.syscall()), one(64, |a| a.sysretq())] {
            let mut m = machine(v, GuestMode::Long64, &[(KERNEL, code)]);
            let r = m.run(Some(10));
            assert_eq!(exception(&r), Some(UD), "{v:?} {r}");
        }
        // SYSRET at CPL 3.
        let mut m = machine(v, GuestMode::Long64, &[(KERNEL, one(64, |a| a.sysretq()))]);
        m.cpu.efer |= efer::SCE;
        set_cs(&mut m, 0x28, 64, 3);
        let r = m.run(Some(10));
        assert_eq!(exception(&r), Some(GP0), "{v:?} {r}");
        // SYSRET from compatibility mode at CPL 0.
        let mut m = machine(v, GuestMode::Long64, &[(KERNEL, one(32, |a| a.sysret()))]);
        m.cpu.efer |= efer::SCE;
        set_msr(&mut m, msr::IA32_STAR, STAR);
        m.cpu.gpr[1] = USER;
        set_cs(&mut m, 0x18, 32, 0);
        assert_eq!(m.cpu.mode, CpuMode::Compat);
        let r = m.run(Some(1));
        match v {
            Vendor::Intel => assert_eq!(exception(&r), Some(UD), "{r}"),
            Vendor::Amd => {
                assert_eq!((m.cpu.rip, m.cpu.cpl, m.cpu.seg[1].selector), (USER, 3, 0x1B), "{r}")
            }
        }
        // SYSRET in real mode: #UD on Intel (not 64-bit mode), #GP(0) on AMD.
        let mut m = machine(v, GuestMode::Real, &[(KERNEL, one(16, |a| a.sysret()))]);
        m.cpu.efer |= efer::SCE;
        let r = m.run(Some(1));
        let want = if v == Vendor::Intel { UD } else { GP0 };
        assert_eq!(exception(&r), Some(want), "{v:?} {r}");
    }
}

// SYSRET to a non-canonical RCX: Intel raises #GP(0) before any state changes (at CPL 0,
// RIP at the SYSRET); AMD returns and the instruction fetch at CPL 3 faults.
#[test]
fn sysret_non_canonical_rcx_by_vendor() {
    let bad = 0x0000_8000_0000_0000;
    for v in VENDORS {
        let code = asm(64, KERNEL, |a| a.sysretq());
        let mut m = machine(v, GuestMode::Long64, &[(KERNEL, code)]);
        m.cpu.efer |= efer::SCE;
        set_msr(&mut m, msr::IA32_STAR, STAR);
        m.cpu.gpr[1] = bad;
        let r = m.run(Some(10));
        assert_eq!(exception(&r), Some(GP0), "{v:?} {r}");
        match v {
            Vendor::Intel => assert_eq!((r.rip, m.cpu.cpl), (KERNEL, 0)),
            Vendor::Amd => assert_eq!((r.rip, m.cpu.cpl), (bad, 3)),
        }
    }
}

// SYSENTER/SYSEXIT in 32-bit protected mode: SYSENTER loads CS = SYSENTER_CS & FFFCh,
// SS = CS + 8, ESP/EIP from the MSRs, clears IF/VM/RF; SYSEXIT loads CS = SYSENTER_CS +
// 16 | 3, SS = CS + 8, ESP = ECX, EIP = EDX.
#[test]
fn sysenter_sysexit_round_trip_32() {
    let kernel = asm(32, KERNEL, |a| {
        a.mov(ecx, USER_STACK as u32)?;
        a.mov(edx, USER as u32)?;
        a.sysexit()
    });
    let user = asm(32, USER, |a| {
        a.mov(bx, cs)?;
        a.mov(bp, ss)?;
        a.mov(edi, esp)?;
        a.sysenter()
    });
    let handler = asm(32, HANDLER, |a| {
        a.mov(si, cs)?;
        a.mov(dx, ss)?;
        a.hlt()
    });
    for v in VENDORS {
        let mut m = machine(
            v,
            GuestMode::Protected32,
            &[(KERNEL, kernel.clone()), (USER, user.clone()), (HANDLER, handler.clone())],
        );
        set_msr(&mut m, msr::IA32_SYSENTER_CS, 0x10);
        set_msr(&mut m, msr::IA32_SYSENTER_ESP, 0x6000);
        set_msr(&mut m, msr::IA32_SYSENTER_EIP, HANDLER);
        m.cpu.flags.set_bit(hvsim::cpu::flags::IF, true);
        let r = m.run(Some(1000));
        assert!(halted(&r), "{v:?}: {r}");
        assert_eq!(
            (m.cpu.gpr[3] & 0xFFFF, m.cpu.gpr[5] & 0xFFFF),
            (0x23, 0x2B),
            "{v:?}: user CS, SS"
        );
        assert_eq!(m.cpu.gpr[7], USER_STACK, "{v:?}: ESP = ECX");
        assert_eq!(
            (m.cpu.gpr[6] & 0xFFFF, m.cpu.gpr[2] & 0xFFFF),
            (0x10, 0x18),
            "{v:?}: kernel CS, SS"
        );
        assert_eq!(m.cpu.gpr[4], 0x6000, "{v:?}: ESP = SYSENTER_ESP");
        assert!(!m.cpu.flags.bit(hvsim::cpu::flags::IF), "{v:?}: SYSENTER clears IF");
        assert_eq!((m.cpu.cpl, m.cpu.mode), (0, CpuMode::Protected));
    }
}

// SYSENTER: #GP(0) in real mode and with SYSENTER_CS[15:2] = 0. SYSEXIT: #GP(0) at CPL > 0
// and with SYSENTER_CS[15:2] = 0. AMD: both #UD in long mode.
#[test]
fn sysenter_sysexit_fault_cases() {
    for v in VENDORS {
        let enter16 = asm(16, KERNEL, |a| a.sysenter());
        let mut m = machine(v, GuestMode::Real, &[(KERNEL, enter16)]);
        set_msr(&mut m, msr::IA32_SYSENTER_CS, 0x10);
        assert_eq!(exception(&m.run(Some(1))), Some(GP0), "{v:?} real mode");
        for code in [asm(32, KERNEL, |a| a.sysenter()), asm(32, KERNEL, |a| a.sysexit())] {
            let mut m = machine(v, GuestMode::Protected32, &[(KERNEL, code)]);
            set_msr(&mut m, msr::IA32_SYSENTER_CS, 3);
            assert_eq!(exception(&m.run(Some(1))), Some(GP0), "{v:?} SYSENTER_CS = 3");
        }
        let mut m =
            machine(v, GuestMode::Protected32, &[(KERNEL, asm(32, KERNEL, |a| a.sysexit()))]);
        set_msr(&mut m, msr::IA32_SYSENTER_CS, 0x10);
        set_cs(&mut m, 0x20, 32, 3);
        assert_eq!(exception(&m.run(Some(1))), Some(GP0), "{v:?} SYSEXIT at CPL 3");
        for code in [asm(64, KERNEL, |a| a.sysenter()), asm(64, KERNEL, |a| a.sysexitq())] {
            let mut m = machine(v, GuestMode::Long64, &[(KERNEL, code)]);
            set_msr(&mut m, msr::IA32_SYSENTER_CS, 0x10);
            set_msr(&mut m, msr::IA32_SYSENTER_EIP, HANDLER);
            m.cpu.gpr[1] = USER_STACK;
            m.cpu.gpr[2] = USER;
            let r = m.run(Some(1));
            match v {
                Vendor::Amd => assert_eq!(exception(&r), Some(UD), "AMD long mode {r}"),
                Vendor::Intel => assert_eq!(exception(&r), None, "Intel long mode {r}"),
            }
        }
    }
}

// Intel, IA-32e mode: SYSENTER enters 64-bit mode with the full RSP/RIP from the MSRs;
// SYSEXIT with REX.W returns to 64-bit mode (CS = SYSENTER_CS + 32 | 3) and checks RCX
// and RDX for canonical form (#GP(0)).
#[test]
fn sysenter_sysexit_64_intel() {
    let user = asm(64, USER, |a| {
        a.mov(bx, cs)?;
        a.sysenter()
    });
    let handler = asm(64, HANDLER, |a| {
        a.mov(si, cs)?;
        a.hlt()
    });
    let kernel = asm(64, KERNEL, |a| {
        a.mov(rcx, USER_STACK)?;
        a.mov(rdx, USER)?;
        a.sysexitq()
    });
    let mut m = machine(
        Vendor::Intel,
        GuestMode::Long64,
        &[(KERNEL, kernel), (USER, user), (HANDLER, handler)],
    );
    set_msr(&mut m, msr::IA32_SYSENTER_CS, 0x10);
    set_msr(&mut m, msr::IA32_SYSENTER_ESP, 0xFFFF_8000_0000_6000);
    set_msr(&mut m, msr::IA32_SYSENTER_EIP, HANDLER);
    let r = m.run(Some(100));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.gpr[3] & 0xFFFF, 0x33, "user CS = 0x10 + 32 | 3");
    assert_eq!(m.cpu.gpr[6] & 0xFFFF, 0x10);
    assert_eq!(m.cpu.gpr[4], 0xFFFF_8000_0000_6000, "RSP = SYSENTER_ESP, 64 bits");
    assert_eq!((m.cpu.mode, m.cpu.cpl), (CpuMode::Long64, 0));
    // A non-canonical RDX.
    let code = asm(64, KERNEL, |a| a.sysexitq());
    let mut m = machine(Vendor::Intel, GuestMode::Long64, &[(KERNEL, code)]);
    set_msr(&mut m, msr::IA32_SYSENTER_CS, 0x10);
    m.cpu.gpr[2] = 0x0000_8000_0000_0000;
    let r = m.run(Some(1));
    assert_eq!(exception(&r), Some(GP0), "{r}");
    assert_eq!(m.cpu.cpl, 0);
}
