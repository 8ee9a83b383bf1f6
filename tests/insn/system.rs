//! System instructions: control/debug registers, descriptor tables, MSRs, TSC, SWAPGS,
//! INVLPG, XGETBV/XSETBV, and the real -> protected -> long bring-up a kernel performs.

use super::common::*;
use hvsim::cpu::msr;
use hvsim::cpu::CpuMode;
use hvsim_mmu::Gpa;

const GP0: Option<(u8, Option<u32>)> = Some((13, Some(0)));
const UD: Option<(u8, Option<u32>)> = Some((6, None));

/// Assembles `body` for `mode`, lets `setup` adjust the machine, runs.
fn run_with(
    mode: GuestMode,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    setup: impl FnOnce(&mut Machine),
) -> (Machine, StopReport) {
    let code = assemble(mode, body);
    let mut m = machine_with(mode, &code);
    setup(&mut m);
    let r = m.run(Some(100_000));
    (m, r)
}

/// Puts the vCPU at CPL 3 (CS and SS RPL/DPL 3).
fn user(m: &mut Machine) {
    for s in [1, 2] {
        m.cpu.seg[s].selector |= 3;
        m.cpu.seg[s].attr |= 3 << 5;
    }
    m.cpu.update_mode();
}

/// Runs `body` and expects its first instruction to fault with `want`.
fn expect_fault(
    mode: GuestMode,
    want: Option<(u8, Option<u32>)>,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    setup: impl FnOnce(&mut Machine),
) {
    let (_m, r) = run_with(mode, body, setup);
    assert_eq!(exception(&r), want, "{mode:?}: {r}");
}

fn halted(r: &StopReport) -> bool {
    matches!(r.reason, StopReason::Halted { .. })
}

#[test]
fn real_to_protected_to_long_mode_bringup() {
    const GDT: u32 = 0x5000;
    const GDTR: u32 = 0x5100;
    const PM32: u64 = 0x2000;
    const LM64: u64 = 0x3000;
    const PML4: u32 = 0x10000;
    let code16 = assemble(GuestMode::Real, |a| {
        a.cli()?;
        // null, 0x08 32-bit code, 0x10 data, 0x18 64-bit code
        for (k, d) in [0u64, 0x00CF_9A00_0000_FFFF, 0x00CF_9200_0000_FFFF, 0x00AF_9A00_0000_FFFF]
            .into_iter()
            .enumerate()
        {
            let at = GDT + 8 * k as u32;
            a.mov(dword_ptr(at), d as u32)?;
            a.mov(dword_ptr(at + 4), (d >> 32) as u32)?;
        }
        a.mov(word_ptr(GDTR), 0x1Fu32)?;
        a.mov(dword_ptr(GDTR + 2), GDT)?;
        a.lgdt(fword_ptr(GDTR))?;
        a.mov(eax, cr0)?;
        a.or(eax, 1)?;
        a.mov(cr0, eax)?;
        a.jmp_far(0x08, PM32 as u32)
    });
    let mut a = CodeAssembler::new(32).unwrap();
    let mut fill = a.create_label();
    a.mov(ax, 0x10u32).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(esp, STACK as u32).unwrap();
    a.mov(dword_ptr(PML4), PML4 + 0x1003).unwrap();
    a.mov(dword_ptr(PML4 + 0x1000), PML4 + 0x2003).unwrap();
    a.xor(ecx, ecx).unwrap();
    a.set_label(&mut fill).unwrap();
    a.mov(eax, ecx).unwrap();
    a.shl(eax, 21).unwrap();
    a.or(eax, 0x83).unwrap();
    a.mov(dword_ptr(ecx * 8 + PML4 + 0x2000), eax).unwrap();
    a.inc(ecx).unwrap();
    a.cmp(ecx, 512).unwrap();
    a.jb(fill).unwrap();
    a.mov(eax, cr4).unwrap();
    a.or(eax, 0x20).unwrap(); // PAE
    a.mov(cr4, eax).unwrap();
    a.mov(eax, PML4).unwrap();
    a.mov(cr3, eax).unwrap();
    a.mov(ecx, msr::IA32_EFER).unwrap();
    a.rdmsr().unwrap();
    a.or(eax, 0x100).unwrap(); // LME
    a.wrmsr().unwrap();
    a.mov(eax, cr0).unwrap();
    a.or(eax, 0x8000_0000u32 as i32).unwrap();
    a.mov(cr0, eax).unwrap();
    a.jmp_far(0x18, LM64 as u32).unwrap();
    let code32 = a.assemble(PM32).unwrap();
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(rax, 0x1122_3344_5566_7788u64).unwrap();
    a.mov(qword_ptr(DATA), rax).unwrap();
    a.mov(ebx, 0x600Du32).unwrap();
    a.hlt().unwrap();
    let code64 = a.assemble(LM64).unwrap();
    let mut m = machine_with(GuestMode::Real, &code16);
    m.load(PM32, &code32).unwrap();
    m.load(LM64, &code64).unwrap();
    let r = m.run(Some(100_000));
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.mode, CpuMode::Long64);
    assert_eq!(m.cpu.gpr[3], 0x600D);
    assert_eq!(m.mem.read_u64(Gpa(DATA)), 0x1122_3344_5566_7788);
    assert_eq!(m.cpu.efer & 0x500, 0x500, "LME and LMA");
    assert_eq!((m.cpu.gdtr.base, m.cpu.gdtr.limit), (0x5000, 0x1F));
}

#[test]
fn privileged_instructions_at_cpl3_raise_gp0() {
    type Body = fn(&mut CodeAssembler) -> Result<(), IcedError>;
    let bodies: [Body; 12] = [
        |a| a.mov(rax, cr0),
        |a| a.mov(cr3, rax),
        |a| a.mov(rax, dr7),
        |a| a.mov(dr0, rax),
        |a| a.rdmsr(),
        |a| a.wrmsr(),
        |a| a.lgdt(fword_ptr(DATA)),
        |a| a.lidt(fword_ptr(DATA)),
        |a| a.invlpg(byte_ptr(DATA)),
        |a| a.wbinvd(),
        |a| a.swapgs(),
        |a| a.clts(),
    ];
    for body in bodies {
        expect_fault(GuestMode::Long64, GP0, body, user);
    }
    expect_fault(GuestMode::Long64, GP0, |a| a.lmsw(ax), user);
    expect_fault(GuestMode::Long64, GP0, |a| a.ltr(ax), user);
    expect_fault(GuestMode::Long64, GP0, |a| a.lldt(ax), user);
    // SGDT, SMSW and STR are not privileged (no UMIP).
    let (m, r) = run_with(
        GuestMode::Long64,
        |a| {
            a.sgdt(fword_ptr(DATA))?;
            a.smsw(eax)?;
            a.str(bx)?;
            a.nop()
        },
        user,
    );
    assert_eq!(exception(&r), GP0, "the final HLT at CPL 3: {r}");
    assert_eq!(m.cpu.gpr[0] as u32, m.cpu.cr0 as u32);
}

#[test]
fn invalid_control_and_debug_registers_are_ud() {
    // mov rax, cr1 / cr5 / cr7; mov rax, cr9; mov cr15, rax; mov rax, dr8
    for bytes in [
        &[0x0F, 0x20, 0xC8][..],
        &[0x0F, 0x20, 0xE8],
        &[0x0F, 0x20, 0xF8],
        &[0x44, 0x0F, 0x20, 0xC8],
        &[0x44, 0x0F, 0x22, 0xF8],
        &[0x44, 0x0F, 0x21, 0xC0],
    ] {
        expect_fault(GuestMode::Long64, UD, |a| a.db(bytes), |_| {});
    }
}

#[test]
fn cr0_writes_check_bit_combinations() {
    // PG without PE.
    expect_fault(
        GuestMode::Protected32,
        GP0,
        |a| {
            a.mov(eax, 0x8000_0010u32)?;
            a.mov(cr0, eax)
        },
        |_| {},
    );
    // NW without CD.
    expect_fault(
        GuestMode::Protected32,
        GP0,
        |a| {
            a.mov(eax, 0x2000_0011u32)?;
            a.mov(cr0, eax)
        },
        |_| {},
    );
    // PG with EFER.LME but CR4.PAE = 0.
    let (m, r) = run_with(
        GuestMode::Protected32,
        |a| {
            a.mov(ecx, msr::IA32_EFER)?;
            a.mov(eax, 0x100u32)?;
            a.xor(edx, edx)?;
            a.wrmsr()?;
            a.mov(eax, 0x8000_0011u32)?;
            a.mov(cr0, eax)
        },
        |_| {},
    );
    assert_eq!(exception(&r), GP0, "{r}");
    assert_eq!(m.cpu.efer, 0x100);
    assert_eq!(m.cpu.cr0 & 0x8000_0000, 0);
    // Bits 63:32 in 64-bit mode; clearing PG in 64-bit mode.
    expect_fault(
        GuestMode::Long64,
        GP0,
        |a| {
            a.mov(rax, cr0)?;
            a.bts(rax, 32)?;
            a.mov(cr0, rax)
        },
        |_| {},
    );
    expect_fault(
        GuestMode::Long64,
        GP0,
        |a| {
            a.mov(rax, cr0)?;
            a.btr(rax, 31)?;
            a.mov(cr0, rax)
        },
        |_| {},
    );
    // Reserved bits of CR0[31:0] are ignored, ET stays set; PE can be cleared again.
    let m = run_ok(GuestMode::Protected32, |a| {
        a.mov(eax, 0x0000_0100u32)?;
        a.mov(cr0, eax)?;
        a.mov(ebx, cr0)
    });
    assert_eq!(m.cpu.gpr[3], 0x10);
    assert_eq!(m.cpu.mode, CpuMode::Real);
}

#[test]
fn cr3_cr4_cr8_reserved_bits() {
    // CR4: LA57 is unsupported, so reserved; clearing PAE in long mode.
    expect_fault(
        GuestMode::Long64,
        GP0,
        |a| {
            a.mov(rax, cr4)?;
            a.bts(rax, 12)?;
            a.mov(cr4, rax)
        },
        |_| {},
    );
    expect_fault(
        GuestMode::Long64,
        GP0,
        |a| {
            a.mov(rax, cr4)?;
            a.btr(rax, 5)?;
            a.mov(cr4, rax)
        },
        |_| {},
    );
    // CR3 bits above MAXPHYADDR in long mode.
    expect_fault(
        GuestMode::Long64,
        GP0,
        |a| {
            a.mov(rax, cr3)?;
            a.bts(rax, 40)?;
            a.mov(cr3, rax)
        },
        |_| {},
    );
    // CR8 (TPR) round trip; reserved bits.
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(eax, 5u32)?;
        a.mov(cr8, rax)?;
        a.mov(rbx, cr8)?;
        a.mov(rax, cr3)?;
        a.mov(cr3, rax)?;
        a.mov(rcx, cr4)?;
        a.bts(rcx, 3)?; // DE
        a.mov(cr4, rcx)?;
        a.mov(rdx, cr4)
    });
    assert_eq!(m.cpu.gpr[3], 5);
    assert_eq!(m.cpu.gpr[2] & (1 << 3), 1 << 3);
    expect_fault(
        GuestMode::Long64,
        GP0,
        |a| {
            a.mov(eax, 0x10u32)?;
            a.mov(cr8, rax)
        },
        |_| {},
    );
}

#[test]
fn debug_registers_alias_and_checks() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(rax, 0xFFFF_8000_0000_1234u64)?;
        a.mov(dr0, rax)?;
        a.mov(rbx, dr0)?;
        a.mov(eax, 0x1u32)?;
        a.mov(dr7, rax)?;
        a.db(&[0x0F, 0x21, 0xE9])?; // mov rcx, dr5 (= DR7 with CR4.DE = 0)
        a.db(&[0x0F, 0x21, 0xE2])?; // mov rdx, dr4 (= DR6)
        Ok(())
    });
    assert_eq!(m.cpu.gpr[3], 0xFFFF_8000_0000_1234);
    assert_eq!(m.cpu.gpr[1], 0x401);
    assert_eq!(m.cpu.gpr[2], 0xFFFF_0FF0);
    expect_fault(GuestMode::Long64, UD, |a| a.db(&[0x0F, 0x21, 0xE9]), |m| m.cpu.cr4 |= 8);
    expect_fault(
        GuestMode::Long64,
        GP0,
        |a| {
            a.mov(rax, 0x1_0000_0000u64)?;
            a.mov(dr7, rax)
        },
        |_| {},
    );
}

#[test]
fn msr_round_trips_and_defaults() {
    let m = run_ok(GuestMode::Long64, |a| {
        for (n, v) in [
            (msr::IA32_STAR, 0x0023_0010_0000_0000u64),
            (msr::IA32_LSTAR, 0xFFFF_FFFF_8100_0000),
            (msr::IA32_FS_BASE, 0x7000_1234_5000),
            (msr::IA32_SYSENTER_CS, 0x10),
        ] {
            a.mov(ecx, n)?;
            a.mov(eax, v as u32)?;
            a.mov(edx, (v >> 32) as u32)?;
            a.wrmsr()?;
        }
        a.mov(ecx, msr::IA32_LSTAR)?;
        a.rdmsr()?;
        a.mov(r8d, eax)?;
        a.mov(r9d, edx)?;
        a.mov(ecx, msr::IA32_PAT)?;
        a.rdmsr()?;
        a.mov(r10d, eax)?;
        a.mov(r11d, edx)?;
        // (IA32_APIC_BASE exists only with CPUID.1:EDX.APIC, which is not advertised.)
        a.mov(ecx, msr::IA32_MTRRCAP)?;
        a.rdmsr()?;
        a.mov(r12d, eax)?;
        a.mov(ecx, msr::IA32_EFER)?;
        a.rdmsr()?;
        a.mov(r13d, eax)?;
        Ok(())
    });
    assert_eq!((m.cpu.gpr[8], m.cpu.gpr[9]), (0x8100_0000, 0xFFFF_FFFF));
    assert_eq!(m.cpu.gpr[11] << 32 | m.cpu.gpr[10], msr::PAT_RESET);
    assert_eq!(m.cpu.gpr[12], msr::MTRRCAP_VALUE);
    assert_eq!(m.cpu.gpr[13], 0xD00, "LME | LMA | NXE");
    assert_eq!(m.cpu.seg[4].base, 0x7000_1234_5000);
    assert_eq!(m.cpu.msrs[&msr::IA32_STAR], 0x0023_0010_0000_0000);
    let wr = |n: u32, lo: u32, hi: u32| {
        move |a: &mut CodeAssembler| {
            a.mov(ecx, n)?;
            a.mov(eax, lo)?;
            a.mov(edx, hi)?;
            a.wrmsr()
        }
    };
    // Unknown MSRs, non-canonical bases, reserved EFER bits, LME with paging on, PAT.
    expect_fault(
        GuestMode::Long64,
        GP0,
        |a| {
            a.mov(ecx, 0x1234u32)?;
            a.rdmsr()
        },
        |_| {},
    );
    expect_fault(GuestMode::Long64, GP0, wr(0x1234, 0, 0), |_| {});
    // Non-canonical at the model's 57 linear-address bits (it advertises LA57).
    expect_fault(GuestMode::Long64, GP0, wr(msr::IA32_GS_BASE, 0, 0x0100_0000), |_| {});
    expect_fault(GuestMode::Long64, GP0, wr(msr::IA32_EFER, 0xD02, 0), |_| {});
    expect_fault(GuestMode::Long64, GP0, wr(msr::IA32_EFER, 0x801, 0), |_| {});
    expect_fault(GuestMode::Long64, GP0, wr(msr::IA32_PAT, 0x0007_0402, 0), |_| {});
    // Real mode may use RDMSR/WRMSR.
    let (m, r) = run_with(GuestMode::Real, wr(msr::IA32_EFER, 0x801, 0), |_| {});
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.efer, 0x801);
}

#[test]
fn rdtsc_counts_retired_instructions() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.nop()?;
        a.nop()?;
        a.rdtsc()?; // insn 2
        a.mov(r8d, eax)?;
        a.rdtsc()?; // insn 4
        a.mov(r9d, eax)?;
        a.mov(ecx, msr::IA32_TSC)?; // 6
        a.mov(eax, 1000u32)?;
        a.xor(edx, edx)?;
        a.wrmsr()?; // 9
        a.rdtsc()?; // 10: 1000 + 1
        a.mov(r10d, eax)?;
        a.mov(ecx, msr::IA32_TSC_AUX)?;
        a.mov(eax, 7u32)?;
        a.wrmsr()?;
        a.rdtscp()
    });
    assert_eq!((m.cpu.gpr[8], m.cpu.gpr[9], m.cpu.gpr[10]), (2, 4, 1001));
    assert_eq!((m.cpu.gpr[0], m.cpu.gpr[1]), (1006, 7));
    // CR4.TSD at CPL 3.
    expect_fault(
        GuestMode::Long64,
        GP0,
        |a| a.rdtsc(),
        |m| {
            m.cpu.cr4 |= 4;
            user(m);
        },
    );
    let (m, r) = run_with(
        GuestMode::Long64,
        |a| {
            a.rdtsc()?;
            a.mov(ebx, eax)
        },
        user,
    );
    assert_eq!(exception(&r), GP0, "HLT at CPL 3: {r}");
    assert_eq!(m.cpu.gpr[3], 0);
}

#[test]
fn swapgs_exchanges_gs_base() {
    let m = run_ok(GuestMode::Long64, |a| {
        a.mov(ecx, msr::IA32_GS_BASE)?;
        a.mov(eax, 0x1000u32)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.mov(ecx, msr::IA32_KERNEL_GS_BASE)?;
        a.mov(eax, 0x2000u32)?;
        a.mov(edx, 0xFFFF_8000u32)?;
        a.wrmsr()?;
        a.swapgs()?;
        a.mov(ecx, msr::IA32_KERNEL_GS_BASE)?;
        a.rdmsr()
    });
    assert_eq!(m.cpu.seg[5].base, 0xFFFF_8000_0000_2000);
    assert_eq!((m.cpu.gpr[0], m.cpu.gpr[2]), (0x1000, 0));
    expect_fault(GuestMode::Protected32, UD, |a| a.db(&[0x0F, 0x01, 0xF8]), |_| {});
}

#[test]
fn sgdt_sidt_images_by_operand_size() {
    let gdtr = |m: &mut Machine| {
        m.cpu.gdtr = hvsim::cpu::regs::DescriptorTable { base: 0x89AB_CDEF, limit: 0x1234 };
        m.cpu.idtr = hvsim::cpu::regs::DescriptorTable { base: 0x0012_3456, limit: 0x7FF };
    };
    // 16-bit operand size stores the full 32-bit base too.
    let (m, r) = run_with(
        GuestMode::Real,
        |a| {
            a.sgdt(fword_ptr(DATA as u32))?;
            a.sidt(fword_ptr(DATA as u32 + 8))
        },
        gdtr,
    );
    assert!(halted(&r), "{r}");
    assert_eq!(m.mem.read_u64(Gpa(DATA)) & 0xFFFF_FFFF_FFFF, 0x89AB_CDEF_1234);
    assert_eq!(m.mem.read_u64(Gpa(DATA + 8)) & 0xFFFF_FFFF_FFFF, 0x0012_3456_07FF);
    let (m, r) = run_with(
        GuestMode::Long64,
        |a| {
            a.mov(qword_ptr(DATA + 8), -1)?;
            a.sgdt(fword_ptr(DATA))?;
            a.sidt(fword_ptr(DATA + 16))
        },
        gdtr,
    );
    assert!(halted(&r), "{r}");
    assert_eq!(m.mem.read_u64(Gpa(DATA)), 0x89AB_CDEF_1234);
    assert_eq!(m.mem.read_u64(Gpa(DATA + 8)) & 0xFFFF, 0, "bytes 8-9 of the 10-byte image");
    assert_eq!(m.mem.read_u64(Gpa(DATA + 16)), 0x0012_3456_07FF);
    // LGDT with a 16-bit operand size loads 24 bits of base; 32-bit loads 32.
    let m = run_ok(GuestMode::Real, |a| {
        a.mov(word_ptr(DATA as u32), 0x27u32)?;
        a.mov(dword_ptr(DATA as u32 + 2), 0x1234_5678u32)?;
        a.lgdt(fword_ptr(DATA as u32))?;
        a.db(&[0x66, 0x0F, 0x01, 0x1E, 0x00, 0x40]) // lidt (o32) [0x4000]
    });
    assert_eq!((m.cpu.gdtr.base, m.cpu.gdtr.limit), (0x34_5678, 0x27));
    assert_eq!((m.cpu.idtr.base, m.cpu.idtr.limit), (0x1234_5678, 0x27));
}

/// A system descriptor of `ty` with `base` and `limit` (low 8 bytes).
fn sys_desc(ty: u64, base: u64, limit: u64) -> u64 {
    (limit & 0xFFFF)
        | ((base & 0xFF_FFFF) << 16)
        | ((0x80 | ty) << 40)
        | (((limit >> 16) & 0xF) << 48)
        | (((base >> 24) & 0xFF) << 56)
}

#[test]
fn ltr_marks_the_tss_busy_and_lldt_loads_the_ldt() {
    // Protected mode: 32-bit TSS at GDT 0x30, LDT at 0x38.
    let setup = |m: &mut Machine| {
        let area = m.setup_area();
        m.mem.write_u64(Gpa(area + 0x30), sys_desc(9, 0x6000, 0x67));
        m.mem.write_u64(Gpa(area + 0x38), sys_desc(2, 0x7000, 0xFF));
        m.cpu.gdtr.limit = 0x3F;
    };
    let (m, r) = run_with(
        GuestMode::Protected32,
        |a| {
            a.mov(ax, 0x30u32)?;
            a.ltr(ax)?;
            a.mov(ax, 0x38u32)?;
            a.lldt(ax)?;
            a.str(ebx)?;
            a.sldt(word_ptr(DATA as u32))?;
            a.mov(ax, 0x30u32)?;
            a.ltr(ax) // now busy: #GP(0x30)
        },
        setup,
    );
    assert_eq!(exception(&r), Some((13, Some(0x30))), "{r}");
    let area = m.setup_area();
    assert_eq!((m.mem.read_u64(Gpa(area + 0x30)) >> 40) & 0xF, 0xB);
    assert_eq!((m.cpu.tr.selector, m.cpu.tr.base, m.cpu.tr.limit), (0x30, 0x6000, 0x67));
    assert_eq!((m.cpu.ldtr.base, m.cpu.ldtr.limit), (0x7000, 0xFF));
    assert_eq!((m.cpu.gpr[3], m.mem.read_u64(Gpa(DATA)) & 0xFFFF), (0x30, 0x38));
    // Long mode: a 16-byte descriptor supplies base bits 63:32; LDT selector for LTR.
    let (m, r) = run_with(
        GuestMode::Long64,
        |a| {
            a.mov(ax, 0x30u32)?;
            a.ltr(ax)
        },
        |m| {
            let area = m.setup_area();
            m.mem.write_u64(Gpa(area + 0x30), sys_desc(9, 0x6000, 0x67));
            m.mem.write_u64(Gpa(area + 0x38), 0xFFFF_8000);
            m.cpu.gdtr.limit = 0x3F;
        },
    );
    assert!(halted(&r), "{r}");
    assert_eq!(m.cpu.tr.base, 0xFFFF_8000_0000_6000);
    expect_fault(
        GuestMode::Long64,
        Some((13, Some(0x10))),
        |a| {
            a.mov(ax, 0x10u32)?;
            a.ltr(ax)
        },
        |_| {},
    );
    expect_fault(
        GuestMode::Protected32,
        GP0,
        |a| {
            a.xor(eax, eax)?;
            a.ltr(ax)
        },
        |_| {},
    );
    type Body = fn(&mut CodeAssembler) -> Result<(), IcedError>;
    let bodies: [Body; 4] = [|a| a.ltr(ax), |a| a.lldt(ax), |a| a.str(ax), |a| a.sldt(ax)];
    for body in bodies {
        expect_fault(GuestMode::Real, UD, body, |_| {});
    }
}

#[test]
fn invlpg_makes_a_changed_pte_visible() {
    // Linear 0x20_0000 maps the 2 MiB page at 0x20_0000; the guest reads it (filling the
    // TLB), remaps it to 0x40_0000, reads the stale value, INVLPGs and reads the new one.
    let (m, r) = run_with(
        GuestMode::Long64,
        |a| {
            a.mov(rsi, 0x20_0000u64)?;
            a.mov(r8, qword_ptr(rsi))?;
            a.mov(rdx, rdi)?; // PDE address, set by the harness
            a.mov(rax, 0x40_0087u64)?;
            a.mov(qword_ptr(rdx), rax)?;
            a.mov(r9, qword_ptr(rsi))?;
            a.invlpg(byte_ptr(rsi))?;
            a.mov(r10, qword_ptr(rsi))
        },
        |m| {
            m.mem.write_u64(Gpa(0x20_0000), 0xAAAA);
            m.mem.write_u64(Gpa(0x40_0000), 0xBBBB);
            m.cpu.gpr[7] = m.setup_area() + 0x3000 + 8;
        },
    );
    assert!(halted(&r), "{r}");
    assert_eq!((m.cpu.gpr[8], m.cpu.gpr[9], m.cpu.gpr[10]), (0xAAAA, 0xAAAA, 0xBBBB));
}

#[test]
fn lmsw_smsw_clts() {
    let m = run_ok(GuestMode::Protected32, |a| {
        a.mov(eax, cr0)?;
        a.or(eax, 0x8)?; // TS
        a.mov(cr0, eax)?;
        a.smsw(ebx)?;
        a.clts()?;
        a.smsw(word_ptr(DATA as u32))?;
        a.xor(eax, eax)?;
        a.lmsw(ax)?; // cannot clear PE
        a.mov(ax, 0x2u32)?; // MP
        a.lmsw(ax)
    });
    assert_eq!(m.cpu.gpr[3] & 0xF, 0x9);
    assert_eq!(m.mem.read_u64(Gpa(DATA)) & 0xFFFF, 0x11);
    assert_eq!(m.cpu.cr0 & 0xF, 0x3);
    // LMSW sets PE from real mode.
    let m = run_ok(GuestMode::Real, |a| {
        a.mov(ax, 1u32)?;
        a.lmsw(ax)
    });
    assert_eq!(m.cpu.mode, CpuMode::Protected);
}

#[test]
fn xgetbv_xsetbv_and_cache_flushes() {
    expect_fault(GuestMode::Long64, UD, |a| a.xgetbv(), |_| {});
    expect_fault(GuestMode::Long64, UD, |a| a.xsetbv(), |_| {});
    let osxsave = |m: &mut Machine| m.cpu.cr4 |= 1 << 18;
    let (m, r) = run_with(
        GuestMode::Long64,
        |a| {
            a.wbinvd()?;
            a.invd()?;
            a.xor(ecx, ecx)?;
            a.xgetbv()?;
            a.mov(ebx, eax)?;
            a.mov(eax, 1u32)?;
            a.xor(edx, edx)?;
            a.xsetbv()
        },
        osxsave,
    );
    assert!(halted(&r), "{r}");
    assert_eq!((m.cpu.gpr[3], m.cpu.xcr0), (1, 1));
    for (eax_v, ecx_v) in [(3u32, 0u32), (0, 0), (1, 1)] {
        expect_fault(
            GuestMode::Long64,
            GP0,
            |a| {
                a.mov(eax, eax_v)?;
                a.xor(edx, edx)?;
                a.mov(ecx, ecx_v)?;
                a.xsetbv()
            },
            osxsave,
        );
    }
}
