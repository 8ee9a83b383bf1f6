//! The error paths of the VMX instructions (SDM Vol. 3C chapter 32 "VMX Instruction
//! Reference", 32.2 "Conventions") that tests/vmx.rs does not cover, end to end:
//!
//! - the #UD conditions: outside VMX operation, real mode, virtual-8086 mode,
//!   compatibility mode (in L1 and in L2, where #UD has priority over the VM exit:
//!   26.1.1 "Relative Priority of Faults and VM Exits");
//! - #GP(0) at CPL > 0 in VMX root operation, for every VMX instruction; in VMX
//!   non-root operation the VM exit comes first, at any CPL;
//! - the memory-operand faults: #GP(0) for a non-canonical address, #PF (read or write
//!   error code, CR2) for an unmapped one;
//! - VMfailInvalid / VMfailValid(n): VMXON, VMCLEAR and VMPTRLD pointers beyond
//!   MAXPHYADDR or with the shadow-VMCS indicator, VMREAD/VMWRITE encodings that name no
//!   field (high access to a 32-bit field, bits 63:32 set), VMRESUME after VMCLEAR
//!   (error 5, the launch state is clear), VMRESUME after MOV SS (error 26);
//! - each VMX instruction in L2 exiting with its basic exit reason (SDM Vol. 3C Appendix
//!   C), the displacement as exit qualification and the VM-exit instruction-information
//!   field of 28.2.5 (Table "Format of the VM-Exit Instruction-Information Field as Used
//!   for VMCLEAR, VMPTRLD, VMPTRST, VMXON, XRSTORS, and XSAVES" and the one "as Used for
//!   VMREAD and VMWRITE"), only its defined bits compared.
//!
//! Not reachable on the Intel model: VMWRITE to a read-only field (error 13) needs
//! IA32_VMX_MISC bit 29 = 0, and hvsim reports 1 (a test checks that such a VMWRITE
//! succeeds instead); INVEPT, INVVPID and VMFUNC, which it does not advertise (#UD).

#[path = "support/vmx_l1.rs"]
mod vmx_l1;
use hvsim_vmx_model::exit_info::InstructionInfo;
use vmx_l1::*;

/// User code for CPL-3 tests (user code64 selector 0x43, stack selector 0x3B).
const USER: u64 = 0x5000;
const USER_STACK: u64 = 0x6000;
/// 32-bit code for compatibility-mode tests.
const COMPAT: u64 = 0x5800;
/// The lowest physical-address bit beyond MAXPHYADDR.
const BEYOND_MAXPHYADDR: u64 = 1 << hvsim::cpu::access::MAXPHYADDR;
/// IA32_VMX_MISC bit 29: VMWRITE may write any supported field (SDM Vol. 3D A.6).
const MISC_VMWRITE_ANY_FIELD: u64 = 1 << 29;

fn asm32(at: u64, f: impl FnOnce(Asm) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    f(&mut a).unwrap();
    a.assemble(at).unwrap()
}

fn asm16(at: u64, f: impl FnOnce(Asm) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    f(&mut a).unwrap();
    a.assemble(at).unwrap()
}

/// One instruction of each VMX kind, with its operands pointing at valid data (the
/// VMCS pointer at PTRS + 8, a scratch destination, GUEST_RIP as the field).
#[derive(Copy, Clone, Debug, PartialEq)]
enum VmxInsn {
    Vmxon,
    Vmxoff,
    Vmclear,
    Vmptrld,
    Vmptrst,
    Vmread,
    Vmwrite,
    Vmlaunch,
    Vmresume,
    Vmcall,
}

const ALL: [VmxInsn; 10] = [
    VmxInsn::Vmxon,
    VmxInsn::Vmxoff,
    VmxInsn::Vmclear,
    VmxInsn::Vmptrld,
    VmxInsn::Vmptrst,
    VmxInsn::Vmread,
    VmxInsn::Vmwrite,
    VmxInsn::Vmlaunch,
    VmxInsn::Vmresume,
    VmxInsn::Vmcall,
];

impl VmxInsn {
    /// Emits the instruction (RAX holds the field encoding for VMREAD/VMWRITE).
    fn emit(self, a: Asm) -> Result<(), IcedError> {
        match self {
            VmxInsn::Vmxon => a.vmxon(qword_ptr(PTRS)),
            VmxInsn::Vmxoff => a.vmxoff(),
            VmxInsn::Vmclear => a.vmclear(qword_ptr(PTRS + 8)),
            VmxInsn::Vmptrld => a.vmptrld(qword_ptr(PTRS + 8)),
            VmxInsn::Vmptrst => a.vmptrst(qword_ptr(SCRATCH)),
            VmxInsn::Vmread => a.vmread(rbx, rax),
            VmxInsn::Vmwrite => a.vmwrite(rax, rbx),
            VmxInsn::Vmlaunch => a.vmlaunch(),
            VmxInsn::Vmresume => a.vmresume(),
            VmxInsn::Vmcall => a.vmcall(),
        }
    }

    /// Emits the instruction as 32-bit code (compatibility mode).
    fn emit32(self, a: Asm) -> Result<(), IcedError> {
        match self {
            VmxInsn::Vmread => a.vmread(ebx, eax),
            VmxInsn::Vmwrite => a.vmwrite(eax, ebx),
            other => other.emit(a),
        }
    }

    /// The basic exit reason in VMX non-root operation (SDM Vol. 3C Appendix C).
    fn exit_reason(self) -> u16 {
        match self {
            VmxInsn::Vmcall => 18,
            VmxInsn::Vmclear => 19,
            VmxInsn::Vmlaunch => 20,
            VmxInsn::Vmptrld => 21,
            VmxInsn::Vmptrst => 22,
            VmxInsn::Vmread => 23,
            VmxInsn::Vmresume => 24,
            VmxInsn::Vmwrite => 25,
            VmxInsn::Vmxoff => 26,
            VmxInsn::Vmxon => 27,
        }
    }
}

/// L1 with a current VMCS (VMXON, VMCLEAR, VMPTRLD) and RAX = GUEST_RIP.
fn in_vmx_root(a: Asm) -> Result<(), IcedError> {
    enable_vmx(a)?;
    a.vmxon(qword_ptr(PTRS))?;
    a.vmclear(qword_ptr(PTRS + 8))?;
    a.vmptrld(qword_ptr(PTRS + 8))?;
    a.mov(eax, f::GUEST_RIP)
}

/// IRETQ from L1 to 64-bit user code at USER (CPL 3).
fn iret_to_user(a: Asm) -> Result<(), IcedError> {
    a.push(0x3B)?;
    a.push(USER_STACK as i32)?;
    a.push(2)?;
    a.push(0x43)?;
    a.push(USER as i32)?;
    a.iretq()
}

/// IRETQ from L1 to 32-bit code at COMPAT (compatibility mode: CS 0x18 has L = 0).
fn iret_to_compat(a: Asm) -> Result<(), IcedError> {
    a.push(0x10)?;
    a.push(USER_STACK as i32)?;
    a.push(2)?;
    a.push(0x18)?;
    a.push(COMPAT as i32)?;
    a.iretq()
}

// ---- #UD and #GP in VMX root operation and outside VMX operation -------------------------

/// SDM Vol. 3C 32.3 (each instruction's "Operation"): "IF (not in VMX operation) ...
/// THEN #UD" for every VMX instruction but VMXON, even with CR4.VMXE = 1 and CPL 0.
#[test]
fn outside_vmx_operation_every_vmx_instruction_is_ud() {
    for insn in ALL.into_iter().filter(|i| *i != VmxInsn::Vmxon) {
        let mut m = l1_only(move |a| {
            enable_vmx(a)?;
            a.mov(eax, f::GUEST_RIP)?;
            insn.emit(a)
        });
        assert_eq!(exception(&mut m), (6, None), "{insn:?}");
        assert!(m.nested.vmx.vmxon.is_none());
    }
}

/// SDM Vol. 3C 32.3: "ELSIF CPL > 0 THEN #GP(0)" in VMX root operation, for every VMX
/// instruction (VMXON in root operation too: "ELSIF in VMX root operation ... IF CPL > 0
/// THEN #GP(0)").
#[test]
fn cpl3_in_vmx_root_every_vmx_instruction_is_gp0() {
    for insn in ALL {
        let mut m = l1_only(|a| {
            in_vmx_root(a)?;
            iret_to_user(a)
        });
        let user = asm(USER, |a| {
            a.mov(eax, f::GUEST_RIP)?;
            insn.emit(a)
        });
        m.load(USER, &user).unwrap();
        assert_eq!(exception(&mut m), (13, Some(0)), "{insn:?}");
        assert_eq!(m.cpu.rip, USER + 5, "{insn:?}");
        assert_eq!(m.cpu.cpl, 3);
        assert!(m.nested.vmx.current.is_some(), "{insn:?}: nothing changed");
    }
}

/// VMXON at CPL 3 outside VMX operation (CR4.VMXE = 1): #GP(0) (32.3 VMXON: "ELSIF not
/// in VMX operation THEN IF (CPL > 0) or ... THEN #GP(0)").
#[test]
fn vmxon_at_cpl3_is_gp0() {
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        iret_to_user(a)
    });
    m.load(USER, &asm(USER, |a| a.vmxon(qword_ptr(PTRS)))).unwrap();
    assert_eq!(exception(&mut m), (13, Some(0)));
    assert!(m.nested.vmx.vmxon.is_none());
}

/// Compatibility mode: "IF ... (IA32_EFER.LMA = 1 and CS.L = 0) THEN #UD", for every VMX
/// instruction in VMX root operation (at CPL 0, with a current VMCS).
#[test]
fn compatibility_mode_every_vmx_instruction_is_ud() {
    for insn in ALL {
        let mut m = l1_only(|a| {
            in_vmx_root(a)?;
            iret_to_compat(a)
        });
        let code = asm32(COMPAT, |a| {
            a.mov(eax, f::GUEST_RIP)?;
            insn.emit32(a)
        });
        m.load(COMPAT, &code).unwrap();
        assert_eq!(exception(&mut m), (6, None), "{insn:?}");
        // The fault is the VMX instruction's, after the 5-byte MOV EAX, imm32.
        assert_eq!(m.cpu.rip, COMPAT + 5, "{insn:?}");
        assert_eq!(m.cpu.cpl, 0);
    }
}

/// Real-address mode: VMXON is #UD ("IF ... (CR0.PE = 0) ... THEN #UD") even with
/// CR4.VMXE = 1 and IA32_FEATURE_CONTROL locked.
#[test]
fn vmxon_in_real_mode_is_ud() {
    let mut m = intel_machine();
    let code = asm16(0x1000, |a| {
        a.mov(eax, cr4)?;
        a.or(eax, 1 << 13)?;
        a.mov(cr4, eax)?;
        a.mov(ecx, vmx_msr::IA32_FEATURE_CONTROL)?;
        a.mov(eax, 5)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.vmxon(qword_ptr(0x900))
    });
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Real, 0x1000, 0x8000).unwrap();
    assert_eq!(exception(&mut m), (6, None));
}

/// Protected mode without paging: VMXON is #GP(0) (CR0.PG = 0 is not allowed by
/// IA32_VMX_CR0_FIXED0); from the same state, virtual-8086 mode (IRETD with
/// EFLAGS.VM = 1) makes it #UD ("IF ... (RFLAGS.VM = 1) ... THEN #UD"), the #UD taking
/// priority over the #GP.
#[test]
fn vmxon_in_virtual_8086_mode_is_ud() {
    const V86_CS: u16 = 0x500; // linear 0x5000
    let prologue = |a: Asm| -> Result<(), IcedError> {
        a.mov(eax, cr4)?;
        a.or(eax, 1 << 13)?;
        a.mov(cr4, eax)?;
        a.mov(ecx, vmx_msr::IA32_FEATURE_CONTROL)?;
        a.mov(eax, 5)?;
        a.xor(edx, edx)?;
        a.wrmsr()
    };
    // Protected mode: #GP(0).
    let mut m = intel_machine();
    m.load(
        L1,
        &asm32(L1, |a| {
            prologue(a)?;
            a.vmxon(qword_ptr(PTRS as i32))
        }),
    )
    .unwrap();
    m.enter_mode(GuestMode::Protected32, L1, L1_STACK).unwrap();
    assert_eq!(exception(&mut m), (13, Some(0)));
    // Virtual-8086 mode: #UD.
    let mut m = intel_machine();
    m.load(
        L1,
        &asm32(L1, |a| {
            prologue(a)?;
            for sel in [0u32, 0, 0, 0, 0x700, 0xFF0] {
                a.push(sel)?; // GS, FS, DS, ES, SS, ESP
            }
            a.push(0x2_0002u32)?; // EFLAGS.VM
            a.push(u32::from(V86_CS))?;
            a.push(0u32)?; // EIP
            a.iretd()
        }),
    )
    .unwrap();
    m.load(u64::from(V86_CS) << 4, &asm16(0, |a| a.vmxon(qword_ptr(0x100)))).unwrap();
    m.enter_mode(GuestMode::Protected32, L1, L1_STACK).unwrap();
    assert_eq!(exception(&mut m), (6, None));
    assert_eq!(m.cpu.seg[1].selector, V86_CS, "in virtual-8086 mode");
}

// ---- Memory-operand faults (32.3, each instruction's "Protected Mode Exceptions" /
// "64-Bit Mode Exceptions": #GP(0) for a non-canonical memory address, #PF for a page
// fault) ------------------------------------------------------------------------------------

/// A linear address that is not canonical for 48 or 57 bits.
const NONCANONICAL: u64 = 0x8000_0000_0000_0000;
/// A canonical linear address the harness's page tables do not map (above 4 GiB).
const UNMAPPED: u64 = 0x8_0000_0000;

/// Runs `body` in VMX root operation with a current VMCS and RBX = `addr`; returns the
/// exception it raises (vector, error code, CR2).
fn operand_fault(
    addr: u64,
    body: impl FnOnce(Asm) -> Result<(), IcedError>,
) -> (u8, Option<u32>, u64) {
    let mut m = l1_only(|a| {
        in_vmx_root(a)?;
        a.mov(rbx, addr)?;
        body(a)?;
        a.hlt()
    });
    let r = m.run(Some(10_000));
    let StopReason::Exception { exception, .. } = r.reason else {
        panic!("expected an exception: {r}");
    };
    assert_eq!(m.nested.vmx.current.as_ref().map(|c| c.pa), Some(VMCS), "current VMCS kept");
    (exception.vector, exception.error_code, exception.cr2)
}

/// "#GP(0) If the memory operand effective address is in a non-canonical form":
/// VMCLEAR, VMPTRLD, VMPTRST and VMREAD/VMWRITE with a memory operand in VMX root
/// operation; VMXON outside VMX operation (in root operation VMXON does not read its
/// operand: VMfailValid(15), tests/vmx.rs).
#[test]
fn noncanonical_memory_operand_is_gp0() {
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.mov(rbx, NONCANONICAL)?;
        a.vmxon(qword_ptr(rbx))?;
        a.hlt()
    });
    assert_eq!(exception(&mut m), (13, Some(0)), "VMXON");
    assert!(m.nested.vmx.vmxon.is_none());
    let cases: [(&str, fn(Asm) -> Result<(), IcedError>); 5] = [
        ("VMCLEAR", |a| a.vmclear(qword_ptr(rbx))),
        ("VMPTRLD", |a| a.vmptrld(qword_ptr(rbx))),
        ("VMPTRST", |a| a.vmptrst(qword_ptr(rbx))),
        ("VMREAD", |a| a.vmread(qword_ptr(rbx), rax)),
        ("VMWRITE", |a| a.vmwrite(rax, qword_ptr(rbx))),
    ];
    for (name, body) in cases {
        let (vector, code, _) = operand_fault(NONCANONICAL, body);
        assert_eq!((vector, code), (13, Some(0)), "{name}");
    }
}

/// "#PF(fault-code) If a page fault occurs in accessing the memory operand": a read
/// (VMPTRLD, VMCLEAR, VMWRITE: error code 0, not present) and a write (VMPTRST, VMREAD:
/// error code 2), with the address in CR2.
#[test]
fn unmapped_memory_operand_is_pf() {
    let cases: [(&str, u32, fn(Asm) -> Result<(), IcedError>); 5] = [
        ("VMCLEAR", 0, |a| a.vmclear(qword_ptr(rbx))),
        ("VMPTRLD", 0, |a| a.vmptrld(qword_ptr(rbx))),
        ("VMWRITE", 0, |a| a.vmwrite(rax, qword_ptr(rbx))),
        ("VMPTRST", 2, |a| a.vmptrst(qword_ptr(rbx))),
        ("VMREAD", 2, |a| a.vmread(qword_ptr(rbx), rax)),
    ];
    for (name, error_code, body) in cases {
        assert_eq!(operand_fault(UNMAPPED, body), (14, Some(error_code), UNMAPPED), "{name}");
    }
}

/// VMRESUME right after MOV SS: error 26 ("VM entry with events blocked by MOV SS"), as
/// for VMLAUNCH (tests/vmx.rs), checked before the launch state.
#[test]
fn vmresume_after_mov_ss_is_error_26() {
    let mut m = setup_full(
        l1_launch,
        |a| {
            a.mov(eax, 0x10)?;
            a.mov(ss, eax)?;
            a.vmresume()?;
            after_failed_entry(a)
        },
        |a| a.vmcall(),
        |_| {},
    );
    run(&mut m);
    assert_eq!(m.cpu.gpr[12], FAIL_MARK);
    assert_fail_valid(&m, 26);
    assert_eq!(m.nested.vmx.entries, 1);
}

// ---- VMfailInvalid / VMfailValid ------------------------------------------------------

fn assert_fail_valid(m: &Machine, error: u64) {
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), ZF, "VMfailValid expected");
    assert_eq!(m.cpu.gpr[13], error, "VM-instruction error");
}

/// L1: VMXON and VMPTRLD, then `body`, then record RFLAGS and the VM-instruction error.
fn after_vmptrld(body: impl FnOnce(Asm) -> Result<(), IcedError>) -> Machine {
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        a.vmptrld(qword_ptr(PTRS + 8))?;
        body(a)?;
        after_failed_entry(a)
    });
    run(&mut m);
    m
}

/// VMXON: "IF ... (addr sets any bits beyond the physical-address width) ... THEN
/// VMfailInvalid"; and "IF ... (bit 31 of the first 4 bytes of the VMXON region is 1)
/// THEN VMfailInvalid" (the shadow-VMCS indicator).
#[test]
fn vmxon_pointer_beyond_width_and_shadow_indicator_fail_invalid() {
    for (ptr, first_dword) in
        [(BEYOND_MAXPHYADDR | VMXON_REGION, REVISION), (VMXON_REGION, REVISION | 1 << 31)]
    {
        let mut m = l1_only(|a| {
            enable_vmx(a)?;
            a.vmxon(qword_ptr(PTRS))?;
            flags(a)?;
            a.hlt()
        });
        m.mem.write_u64(Gpa(PTRS), ptr);
        m.mem.write_u32(Gpa(VMXON_REGION), first_dword);
        run(&mut m);
        assert_eq!(m.cpu.gpr[15] & (CF | ZF), CF, "ptr {ptr:#x} dword {first_dword:#x}");
        assert!(m.nested.vmx.vmxon.is_none());
    }
}

/// VMCLEAR: an operand beyond the physical-address width is error 2 ("VMCLEAR with
/// invalid physical address").
#[test]
fn vmclear_beyond_width_is_error_2() {
    let m = after_vmptrld(|a| {
        a.mov(rax, BEYOND_MAXPHYADDR | 0x12000)?;
        a.mov(qword_ptr(SCRATCH), rax)?;
        a.vmclear(qword_ptr(SCRATCH))
    });
    assert_fail_valid(&m, 2);
}

/// VMPTRLD: an operand beyond the physical-address width is error 9; a region whose
/// shadow-VMCS indicator is 1 is error 11 without VMCS shadowing ("IF ... (bit 31 ... is
/// 1 and the processor does not support the 1-setting of 'VMCS shadowing') THEN
/// VMfailValid(11)"); the current VMCS is unchanged.
#[test]
fn vmptrld_beyond_width_and_shadow_indicator() {
    let m = after_vmptrld(|a| {
        a.mov(rax, BEYOND_MAXPHYADDR | 0x12000)?;
        a.mov(qword_ptr(SCRATCH), rax)?;
        a.vmptrld(qword_ptr(SCRATCH))
    });
    assert_fail_valid(&m, 9);
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        a.vmptrld(qword_ptr(PTRS + 8))?;
        a.vmptrld(qword_ptr(SCRATCH))?;
        after_failed_entry(a)
    });
    m.mem.write_u64(Gpa(SCRATCH), 0x12000);
    m.mem.write_u32(Gpa(0x12000), REVISION | 1 << 31);
    run(&mut m);
    assert_fail_valid(&m, 11);
    assert_eq!(m.nested.vmx.current.as_ref().map(|c| c.pa), Some(VMCS));
}

/// VMREAD/VMWRITE: "IF register operand does not correspond to any VMCS field THEN
/// VMfailValid(12)": the high access (bit 0 = 1) of a 32-bit field, and an encoding with
/// bits 63:32 set in 64-bit mode.
#[test]
fn vmread_vmwrite_encodings_without_a_field_are_error_12() {
    let m = after_vmptrld(|a| {
        a.mov(eax, f::PIN_BASED_CONTROLS | 1)?;
        a.vmread(rbx, rax)
    });
    assert_fail_valid(&m, 12);
    let m = after_vmptrld(|a| {
        a.mov(rax, 1u64 << 32 | u64::from(f::GUEST_RIP))?;
        a.vmwrite(rax, rbx)
    });
    assert_fail_valid(&m, 12);
    let m = after_vmptrld(|a| {
        a.mov(rax, 1u64 << 32 | u64::from(f::GUEST_RIP))?;
        a.vmread(rbx, rax)
    });
    assert_fail_valid(&m, 12);
}

/// The high access of a 64-bit field (SDM Vol. 3C 25.11.2 "VMREAD, VMWRITE, and
/// Encodings of VMCS Fields": access type 1) reads and writes bits 63:32 only.
#[test]
fn vmwrite_high_half_of_a_64bit_field() {
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        a.vmptrld(qword_ptr(PTRS + 8))?;
        a.mov(eax, f::TSC_OFFSET)?;
        a.mov(rbx, 0x1111_2222_3333_4444u64)?;
        a.vmwrite(rax, rbx)?;
        a.mov(eax, f::TSC_OFFSET | 1)?;
        a.mov(ebx, 0xAAAA_BBBBu32)?;
        a.vmwrite(rax, rbx)?;
        a.mov(eax, f::TSC_OFFSET)?;
        a.vmread(r8, rax)?;
        a.mov(eax, f::TSC_OFFSET | 1)?;
        a.vmread(r9, rax)?;
        flags(a)?;
        a.hlt()
    });
    run(&mut m);
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), 0, "VMsucceed");
    assert_eq!(m.cpu.gpr[8], 0xAAAA_BBBB_3333_4444);
    assert_eq!(m.cpu.gpr[9], 0xAAAA_BBBB);
}

/// VMWRITE to a VM-exit information field: error 13 ("VMWRITE to read-only VMCS
/// component") only "IF ... (VMCS field is read-only and IA32_VMX_MISC[29] = 0)"; the
/// Intel model reports bit 29, so the write succeeds and VMREAD returns the value.
#[test]
fn vmwrite_to_exit_information_field_succeeds() {
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.mov(ecx, vmx_msr::IA32_VMX_MISC)?;
        a.rdmsr()?;
        a.mov(r9d, eax)?;
        a.vmxon(qword_ptr(PTRS))?;
        a.vmptrld(qword_ptr(PTRS + 8))?;
        a.mov(eax, f::EXIT_QUALIFICATION)?;
        a.mov(ebx, 0x1234)?;
        a.vmwrite(rax, rbx)?;
        flags(a)?;
        a.vmread(r8, rax)?;
        a.hlt()
    });
    run(&mut m);
    assert_ne!(m.cpu.gpr[9] & MISC_VMWRITE_ANY_FIELD, 0);
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), 0, "VMsucceed");
    assert_eq!(m.cpu.gpr[8], 0x1234);
}

/// VMCLEAR sets the launch state to clear (32.3 VMCLEAR: "launch state of VMCS
/// referenced by the operand <- clear"): after a VM entry and exit, VMCLEAR + VMPTRLD,
/// VMRESUME fails with error 5 ("VMRESUME with non-launched VMCS"), and VMLAUNCH then
/// enters the guest again.
#[test]
fn vmclear_makes_vmresume_error_5_and_vmlaunch_valid() {
    let mut m = setup_full(
        l1_launch,
        |a| {
            let mut second = a.create_label();
            a.test(r14, r14)?;
            a.jnz(second)?;
            a.inc(r14)?;
            a.vmclear(qword_ptr(PTRS + 8))?;
            a.vmptrld(qword_ptr(PTRS + 8))?;
            a.vmresume()?;
            flags(a)?;
            a.mov(eax, f::VM_INSTRUCTION_ERROR)?;
            a.vmread(r13, rax)?;
            a.mov(r8, r13)?;
            a.mov(r9, r15)?;
            a.vmlaunch()?;
            after_failed_entry(a)?;
            a.set_label(&mut second)?;
            host_handler(a)
        },
        |a| a.vmcall(),
        |_| {},
    );
    expect_exit(&mut m, 18);
    assert_eq!(m.cpu.gpr[9] & (CF | ZF), ZF, "VMRESUME: VMfailValid");
    assert_eq!(m.cpu.gpr[8], 5);
    assert_eq!(m.nested.vmx.entries, 2, "VMLAUNCH entered after the VMCLEAR");
}

// ---- VMX instructions in VMX non-root operation -----------------------------------------

/// The defined bits of the instruction-information field for VMCLEAR, VMPTRLD, VMPTRST
/// and VMXON: scaling 1:0, address size 9:7, bit 10 (0), segment 17:15, index 21:18 and
/// 22, base 26:23 and 27.
const INFO_MEM_ONLY_DEFINED: u32 = 0x3 | 0x7 << 7 | 1 << 10 | 0x1FFF << 15;
/// The defined bits for VMREAD/VMWRITE with a register operand: reg1 6:3, bit 10, reg2
/// 31:28.
const INFO_REG_DEFINED: u32 = 0xF << 3 | 1 << 10 | 0xF << 28;
/// The defined bits for VMREAD/VMWRITE with a memory operand (and an index register).
const INFO_MEM_DEFINED: u32 = INFO_MEM_ONLY_DEFINED | 0xF << 28;

/// Address size field values (bits 9:7).
const ADDR32: u32 = 1;
const ADDR64: u32 = 2;
/// Segment register numbers (bits 17:15).
const DS: u32 = 3;
const FS: u32 = 4;
/// GPR numbers.
const RCX: u32 = 1;
const RDX: u32 = 2;
const RBX: u32 = 3;
const RSI: u32 = 6;
const R9: u32 = 9;

/// A memory operand's instruction information: scaling, address size, segment, index,
/// base (reg2 in bits 31:28).
fn mem_info(scale: u32, asize: u32, seg: u32, index: u32, base: u32, reg2: u32) -> u32 {
    scale | asize << 7 | seg << 15 | index << 18 | base << 23 | reg2 << 28
}

/// Runs `l2` (one VMX instruction) and checks the exit: reason, instruction length,
/// qualification (if defined) and the defined bits of the instruction information.
fn expect_vmx_exit(
    l2: impl Fn(Asm) -> Result<(), IcedError> + Copy,
    reason: u16,
    qualification: Option<u64>,
    info: Option<(u32, u32)>,
) {
    let len = asm(L2, l2).len() as u64;
    let mut m = setup(l2, |_| {});
    expect_exit(&mut m, reason);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2, "reason {reason}: RIP of the instruction");
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), len, "reason {reason}");
    if let Some(q) = qualification {
        assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), q, "reason {reason}: qualification");
    }
    if let Some((want, defined)) = info {
        let got = vmcs_field(&m, f::VM_EXIT_INSTRUCTION_INFO) as u32;
        assert_eq!(
            got & defined,
            want,
            "reason {reason}: instruction information {:?}",
            InstructionInfo::decode(got)
        );
    }
    // Nothing of L1's VMX state changed: the VMXON region and current VMCS are L1's.
    assert_eq!(m.nested.vmx.vmxon, Some(VMXON_REGION));
    assert_eq!(m.nested.vmx.current.as_ref().map(|c| c.pa), Some(VMCS));
}

/// SDM Vol. 3C 26.1.2 "Instructions That Cause VM Exits Unconditionally": VMCLEAR
/// (reason 19) with base + index * 4 + displacement: qualification = displacement.
#[test]
fn vmclear_in_l2_exits_19() {
    expect_vmx_exit(
        |a| a.vmclear(qword_ptr(rbx + rcx * 4 + 0x40)),
        19,
        Some(0x40),
        Some((mem_info(2, ADDR64, DS, RCX, RBX, 0), INFO_MEM_ONLY_DEFINED)),
    );
}

/// VMPTRLD (reason 21) with a negative displacement (the qualification is the
/// sign-extended displacement) and an FS override.
#[test]
fn vmptrld_in_l2_exits_21() {
    expect_vmx_exit(
        |a| a.vmptrld(qword_ptr(rsi + r9 * 8 - 8).fs()),
        21,
        Some((-8i64) as u64),
        Some((mem_info(3, ADDR64, FS, R9, RSI, 0), INFO_MEM_ONLY_DEFINED)),
    );
}

/// VMXON in VMX non-root operation (reason 27) with 32-bit addressing (address size 1).
#[test]
fn vmxon_in_l2_exits_27() {
    expect_vmx_exit(
        |a| a.vmxon(qword_ptr(ebx + ecx * 2 + 0x10)),
        27,
        Some(0x10),
        Some((mem_info(1, ADDR32, DS, RCX, RBX, 0), INFO_MEM_ONLY_DEFINED)),
    );
}

/// VMREAD (reason 23) to a register: reg1 = the destination, bit 10 = 1, reg2 = the
/// encoding register.
#[test]
fn vmread_register_in_l2_exits_23() {
    expect_vmx_exit(
        |a| a.vmread(rbx, rdx),
        23,
        None,
        Some((RBX << 3 | 1 << 10 | RDX << 28, INFO_REG_DEFINED)),
    );
}

/// VMREAD to memory: the memory operand in the address fields, reg2 = the encoding
/// register.
#[test]
fn vmread_memory_in_l2_exits_23() {
    expect_vmx_exit(
        |a| a.vmread(qword_ptr(rbx + rcx * 8 + 0x18), rdx),
        23,
        Some(0x18),
        Some((mem_info(3, ADDR64, DS, RCX, RBX, RDX), INFO_MEM_DEFINED)),
    );
}

/// VMWRITE (reason 25) from a register: reg1 = the source, reg2 = the encoding register.
#[test]
fn vmwrite_register_in_l2_exits_25() {
    expect_vmx_exit(
        |a| a.vmwrite(rdx, rsi),
        25,
        None,
        Some((RSI << 3 | 1 << 10 | RDX << 28, INFO_REG_DEFINED)),
    );
}

/// VMWRITE from memory.
#[test]
fn vmwrite_memory_in_l2_exits_25() {
    expect_vmx_exit(
        |a| a.vmwrite(rcx, qword_ptr(rsi + rdx * 2 + 0x7F)),
        25,
        Some(0x7F),
        Some((mem_info(1, ADDR64, DS, RDX, RSI, RCX), INFO_MEM_DEFINED)),
    );
}

/// VMLAUNCH (20), VMRESUME (24), VMXOFF (26): no operand, qualification 0.
#[test]
fn vmlaunch_vmresume_vmxoff_in_l2_exit() {
    expect_vmx_exit(|a| a.vmlaunch(), 20, Some(0), None);
    expect_vmx_exit(|a| a.vmresume(), 24, Some(0), None);
    expect_vmx_exit(|a| a.vmxoff(), 26, Some(0), None);
}

/// VMPTRST (22) with base and index (vmx.rs covers base only).
#[test]
fn vmptrst_in_l2_exits_22() {
    expect_vmx_exit(
        |a| a.vmptrst(qword_ptr(rdx + rbx + 0x100)),
        22,
        Some(0x100),
        Some((mem_info(0, ADDR64, DS, RBX, RDX, 0), INFO_MEM_ONLY_DEFINED)),
    );
}

/// 26.1.1: "Certain exceptions have priority over VM exits. These include invalid-opcode
/// exceptions, faults based on privilege level ...": for the VMX instructions the
/// pseudocode checks #UD, then "ELSIF in VMX non-root operation THEN VM exit", then
/// CPL. So at CPL 3 in L2 (a user-mode guest) every VMX instruction exits with its
/// reason instead of #GP.
#[test]
fn every_vmx_instruction_at_cpl3_in_l2_exits() {
    for insn in ALL {
        let mut m = setup(
            |a| {
                a.mov(eax, f::GUEST_RIP)?;
                insn.emit(a)
            },
            |v| {
                v.set(f::GUEST_CS_SELECTOR, 0x43);
                v.set(f::GUEST_CS_ACCESS_RIGHTS, 0xA0FB);
                v.set(f::GUEST_SS_SELECTOR, 0x3B);
                v.set(f::GUEST_SS_ACCESS_RIGHTS, 0xC0F3);
            },
        );
        expect_exit(&mut m, insn.exit_reason());
        // The exit saved CS with RPL 3: the guest ran at CPL 3.
        assert_eq!(vmcs_field(&m, f::GUEST_CS_SELECTOR), 0x43, "{insn:?}");
    }
}

/// Compatibility mode in L2 (IA-32e mode guest, CS.L = 0): every VMX instruction is #UD,
/// which has priority over the VM exit; with #UD in the exception bitmap the exit is an
/// exception exit (reason 0, vector 6, hardware exception) at the instruction.
#[test]
fn every_vmx_instruction_in_l2_compatibility_mode_is_ud() {
    for insn in ALL {
        let mut a32 = CodeAssembler::new(32).unwrap();
        insn.emit32(&mut a32).unwrap();
        let bytes = a32.assemble(L2).unwrap();
        let mut m = setup(l2_hlt, |v| {
            v.set(f::GUEST_CS_SELECTOR, 0x18);
            v.set(f::GUEST_CS_ACCESS_RIGHTS, 0xC09B);
            v.set(f::EXCEPTION_BITMAP, 1 << 6);
        });
        m.load(L2, &bytes).unwrap();
        expect_exit(&mut m, 0);
        assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_INFO), 0x8000_0306, "{insn:?}");
        assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2, "{insn:?}");
    }
}
