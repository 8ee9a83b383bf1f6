//! Nested VMX end to end: an L1 hypervisor and its L2 guest assembled with `code_asm`,
//! run on the Intel CPU model. Each test names the SDM Vol. 3C section it checks.
//! The L1 program, memory layout and baseline VMCS are in `support/vmx_l1.rs`.

#[path = "support/vmx_l1.rs"]
mod vmx_l1;
use vmx_l1::*;

// ---- CPUID and MSRs (SDM Vol. 3C 25.6 "Discovering Support for VMX", Appendix A) ----

/// SDM Vol. 3C 25.6: CPUID.1:ECX.VMX[bit 5] = 1 on the Intel model; the capability MSRs
/// report hvsim's revision, and EPT, VPID and unrestricted guest (Appendix A.3.3).
#[test]
fn cpuid_and_capability_msrs() {
    let mut m = setup_full(
        |a| {
            a.mov(eax, 1)?;
            a.cpuid()?;
            a.mov(r8, rcx)?;
            a.mov(ecx, vmx_msr::IA32_VMX_BASIC)?;
            a.rdmsr()?;
            a.mov(r9d, eax)?;
            a.mov(ecx, vmx_msr::IA32_VMX_PROCBASED_CTLS2)?;
            a.rdmsr()?;
            a.mov(r10d, edx)?;
            a.hlt()
        },
        host_handler,
        l2_hlt,
        |_| {},
    );
    run(&mut m);
    assert_ne!(m.cpu.gpr[8] & (1 << 5), 0);
    assert_eq!(m.cpu.gpr[9] as u32, REVISION);
    // EPT, VPID, unrestricted guest and VM functions are advertised (SDM Vol. 3D A.3.3);
    // VMCS shadowing is not.
    let allowed1 = m.cpu.gpr[10] as u32;
    let on = proc2::ENABLE_EPT
        | proc2::ENABLE_VPID
        | proc2::UNRESTRICTED_GUEST
        | proc2::ENABLE_VM_FUNCTIONS;
    assert_eq!(allowed1 & on, on);
    assert_eq!(allowed1 & proc2::VMCS_SHADOWING, 0);
}

// ---- VMXON / VMXOFF (SDM Vol. 3C 32.3 "VMXON", "VMXOFF") --------------------------------

/// VMXON: #UD with CR4.VMXE = 0.
#[test]
fn vmxon_without_vmxe_is_ud() {
    let mut m = l1_only(|a| a.vmxon(qword_ptr(PTRS)));
    assert_eq!(exception(&mut m), (6, None));
}

/// VMXON: #GP(0) with IA32_FEATURE_CONTROL unlocked, and with the lock but without
/// "VMX outside SMX".
#[test]
fn vmxon_feature_control_rules_are_gp() {
    for fc in [4u32, 1] {
        let mut m = l1_only(move |a| {
            a.mov(rax, cr0)?;
            a.or(rax, 0x20)?;
            a.mov(cr0, rax)?;
            a.mov(rax, cr4)?;
            a.or(eax, 1 << 13)?;
            a.mov(cr4, rax)?;
            feature_control(a, fc)?;
            a.vmxon(qword_ptr(PTRS))
        });
        assert_eq!(exception(&mut m), (13, Some(0)), "FEATURE_CONTROL {fc}");
    }
}

/// VMXON: #GP(0) when CR0 is not supported in VMX operation (CR0.NE = 0,
/// IA32_VMX_CR0_FIXED0).
#[test]
fn vmxon_cr0_fixed_bits_are_gp() {
    let mut m = l1_only(|a| {
        a.mov(rax, cr4)?;
        a.or(eax, 1 << 13)?;
        a.mov(cr4, rax)?;
        feature_control(a, 5)?;
        a.vmxon(qword_ptr(PTRS))
    });
    assert_eq!(exception(&mut m), (13, Some(0)));
}

/// VMXON: VMfailInvalid for an unaligned pointer and for a wrong revision identifier;
/// VMsucceed otherwise; then VMXON in root operation is VMfail (invalid without a
/// current VMCS).
#[test]
fn vmxon_pointer_rules() {
    for (ptr, rev, flags_want) in [
        (VMXON_REGION + 8, REVISION, CF),
        (VMXON_REGION, REVISION + 1, CF),
        (VMXON_REGION, REVISION, 0),
    ] {
        let mut m = l1_only(|a| {
            enable_vmx(a)?;
            a.vmxon(qword_ptr(PTRS))?;
            flags(a)?;
            a.hlt()
        });
        m.mem.write_u64(Gpa(PTRS), ptr);
        m.mem.write_u32(Gpa(VMXON_REGION), rev);
        run(&mut m);
        assert_eq!(m.cpu.gpr[15] & (CF | ZF), flags_want, "ptr {ptr:#x} rev {rev:#x}");
        assert_eq!(m.nested.vmx.vmxon.is_some(), flags_want == 0);
    }
}

/// VMXON in VMX root operation with a current VMCS: VMfailValid(15).
#[test]
fn vmxon_in_root_is_error_15() {
    let mut m = l1_only(|a| {
        enter_and_load(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        after_failed_entry(a)
    });
    run(&mut m);
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), ZF);
    assert_eq!(m.cpu.gpr[13], 15);
}

/// VMX instructions outside VMX operation are #UD; CR4.VMXE cannot be cleared in VMX
/// operation (#GP, 25.8); after VMXOFF, VMPTRST is #UD again.
#[test]
fn vmx_instructions_outside_vmx_operation() {
    let mut m = l1_only(|a| a.vmptrst(qword_ptr(SCRATCH)));
    assert_eq!(exception(&mut m), (6, None));
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        a.mov(rax, cr4)?;
        a.and(eax, !(1 << 13))?;
        a.mov(cr4, rax)
    });
    assert_eq!(exception(&mut m), (13, Some(0)));
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        a.vmxoff()?;
        a.vmptrst(qword_ptr(SCRATCH))
    });
    assert_eq!(exception(&mut m), (6, None));
    assert!(m.nested.vmx.vmxon.is_none());
}

/// VMX instructions at CPL 3 are #GP(0) (32.3: "ELSIF CPL > 0 THEN #GP(0)"): L1 enters
/// VMX operation, then IRETQ to 64-bit user code (selectors 0x43/0x3B) runs VMPTRST.
#[test]
fn vmx_instruction_at_cpl3_is_gp() {
    const USER: u64 = 0x5000;
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        a.push(0x3B)?;
        a.push(0x6000)?;
        a.push(2)?;
        a.push(0x43)?;
        a.push(USER as i32)?;
        a.iretq()
    });
    m.load(USER, &asm(USER, |a| a.vmptrst(qword_ptr(SCRATCH)))).unwrap();
    assert_eq!(exception(&mut m), (13, Some(0)));
    assert_eq!(m.cpu.cpl, 3);
}

// ---- VMCLEAR / VMPTRLD / VMPTRST / VMREAD / VMWRITE (32.3) --------------------------

/// One VMCS instruction after VMXON (and optionally VMPTRLD), recording RFLAGS (R15) and
/// VM_INSTRUCTION_ERROR (R13).
fn vmcs_insn(load: bool, body: impl FnOnce(Asm) -> Result<(), IcedError>) -> Machine {
    let mut m = l1_only(move |a| {
        enable_vmx(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        if load {
            a.vmptrld(qword_ptr(PTRS + 8))?;
        }
        body(a)?;
        after_failed_entry(a)
    });
    run(&mut m);
    m
}

fn assert_fail_valid(m: &Machine, error: u64) {
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), ZF, "VMfailValid expected");
    assert_eq!(m.cpu.gpr[13], error);
}

fn assert_fail_invalid(m: &Machine) {
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), CF, "VMfailInvalid expected");
}

/// VMCLEAR: error 2 for an unaligned address, 3 for the VMXON pointer (VMfailValid with
/// a current VMCS, VMfailInvalid without).
#[test]
fn vmclear_errors() {
    let m = vmcs_insn(true, |a| {
        a.mov(qword_ptr(SCRATCH), 0x12345)?;
        a.vmclear(qword_ptr(SCRATCH))
    });
    assert_fail_valid(&m, 2);
    let m = vmcs_insn(true, |a| a.vmclear(qword_ptr(PTRS)));
    assert_fail_valid(&m, 3);
    let m = vmcs_insn(false, |a| a.vmclear(qword_ptr(PTRS)));
    assert_fail_invalid(&m);
}

/// VMPTRLD: error 9 (address), 10 (VMXON pointer), 11 (revision identifier).
#[test]
fn vmptrld_errors() {
    let m = vmcs_insn(true, |a| {
        a.mov(qword_ptr(SCRATCH), 0x11001)?;
        a.vmptrld(qword_ptr(SCRATCH))
    });
    assert_fail_valid(&m, 9);
    let m = vmcs_insn(true, |a| a.vmptrld(qword_ptr(PTRS)));
    assert_fail_valid(&m, 10);
    let m = vmcs_insn(true, |a| {
        a.mov(qword_ptr(SCRATCH), 0x12000)?;
        a.vmptrld(qword_ptr(SCRATCH))
    });
    assert_fail_valid(&m, 11);
}

/// VMPTRST stores the current-VMCS pointer (all ones without one); VMCLEAR of the
/// current VMCS makes it invalid and writes the VMCS to its region with launch state
/// clear (hvsim's region format).
#[test]
fn vmptrst_and_vmclear_write_back() {
    let mut m = vmcs_insn(true, |a| {
        a.vmptrst(qword_ptr(SCRATCH))?;
        a.mov(eax, f::GUEST_RIP)?;
        a.mov(ebx, 0x1234)?;
        a.vmwrite(rax, rbx)?;
        a.vmclear(qword_ptr(PTRS + 8))?;
        a.vmptrst(qword_ptr(SCRATCH + 8))
    });
    assert_eq!(m.mem.read_u64(Gpa(SCRATCH)), VMCS);
    assert_eq!(m.mem.read_u64(Gpa(SCRATCH + 8)), u64::MAX);
    let mut buf = vec![0u8; hvsim_vmx_model::vmcs::REGION_USED_BYTES];
    m.phys_read(Gpa(VMCS), &mut buf);
    let v = Vmcs::from_region(&buf).unwrap();
    assert_eq!(v.get(f::GUEST_RIP), 0x1234);
    assert_eq!(v.launch_state, hvsim_vmx_model::LaunchState::Clear);
    assert_eq!(m.mem.read_u32(Gpa(VMCS)), REVISION);
}

/// VMREAD/VMWRITE: error 12 for an unsupported component (here the VMREAD-bitmap
/// address, not supported without VMCS shadowing); VMfailInvalid without a current VMCS; a successful
/// VMWRITE/VMREAD round trip with VMsucceed.
#[test]
fn vmread_vmwrite_errors() {
    let m = vmcs_insn(true, |a| {
        a.mov(eax, f::VMREAD_BITMAP)?;
        a.vmread(rbx, rax)
    });
    assert_fail_valid(&m, 12);
    let m = vmcs_insn(true, |a| {
        a.mov(eax, 0x7FFF)?;
        a.vmwrite(rax, rbx)
    });
    assert_fail_valid(&m, 12);
    let m = vmcs_insn(false, |a| {
        a.mov(eax, f::GUEST_RIP)?;
        a.vmread(rbx, rax)
    });
    assert_fail_invalid(&m);
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.vmxon(qword_ptr(PTRS))?;
        a.vmptrld(qword_ptr(PTRS + 8))?;
        a.mov(eax, f::GUEST_RSP)?;
        a.mov(rbx, 0x1122_3344_5566_7788u64)?;
        a.vmwrite(rax, rbx)?;
        a.vmread(qword_ptr(SCRATCH), rax)?;
        flags(a)?;
        a.hlt()
    });
    run(&mut m);
    assert_eq!(m.cpu.gpr[15] & (CF | ZF), 0);
    assert_eq!(m.mem.read_u64(Gpa(SCRATCH)), 0x1122_3344_5566_7788);
}

/// VMCALL in VMX root operation: VMfailValid(1).
#[test]
fn vmcall_in_root_is_error_1() {
    let m = vmcs_insn(true, |a| a.vmcall());
    assert_fail_valid(&m, 1);
}

/// INVEPT outside VMX operation is #UD (32.3 "INVEPT"; its other rules are in
/// tests/vmx_ept.rs).
#[test]
fn invept_outside_vmx_operation_is_ud() {
    let mut m = l1_only(|a| {
        enable_vmx(a)?;
        a.invept(rax, xmmword_ptr(SCRATCH))
    });
    assert_eq!(exception(&mut m), (6, None));
}

// ---- VMLAUNCH / VMRESUME (32.3, 27.1) --------------------------------------------------

/// VMRESUME of a clear VMCS: error 5; VMLAUNCH without a current VMCS: VMfailInvalid.
#[test]
fn vmresume_clear_vmcs_is_error_5() {
    let mut m = setup_full(
        |a| {
            enter_and_load(a)?;
            a.vmresume()?;
            after_failed_entry(a)
        },
        host_handler,
        l2_hlt,
        |_| {},
    );
    run(&mut m);
    assert_fail_valid(&m, 5);
    let m = vmcs_insn(false, |a| a.vmlaunch());
    assert_fail_invalid(&m);
}

/// VMLAUNCH of a launched VMCS: error 4 (after one VM entry and exit).
#[test]
fn vmlaunch_launched_vmcs_is_error_4() {
    let mut m = setup_full(
        l1_launch,
        |a| {
            a.vmlaunch()?;
            after_failed_entry(a)
        },
        |a| a.vmcall(),
        |_| {},
    );
    run(&mut m);
    assert_fail_valid(&m, 4);
}

/// VMLAUNCH right after MOV SS: error 26 ("VM entry with events blocked by MOV SS").
#[test]
fn vmlaunch_after_mov_ss_is_error_26() {
    let mut m = setup_full(
        |a| {
            enter_and_load(a)?;
            a.mov(eax, 0x10)?;
            a.mov(ss, eax)?;
            a.vmlaunch()?;
            after_failed_entry(a)
        },
        host_handler,
        l2_hlt,
        |_| {},
    );
    run(&mut m);
    assert_fail_valid(&m, 26);
}

// ---- The VMCALL round trip (27.3.2, 28.2, 28.3, 28.5) ----------------------------------

/// VMLAUNCH enters L2 at GUEST_RIP; VMCALL exits with reason 18, instruction length 3,
/// the guest RIP and RSP saved, and the host state loaded (RIP, RSP, CR3, CS, CPL 0,
/// RFLAGS = 2, GDTR/IDTR limits FFFFH).
#[test]
fn vmcall_round_trip() {
    let l2 = |a: Asm| {
        a.nop()?;
        a.mov(rsp, 0x2E000u64)?;
        a.vmcall()
    };
    let mut m = setup(l2, |_| {});
    expect_exit(&mut m, 18);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 3);
    let vmcall_rip = insn_addr(&asm(L2, l2), 2);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), vmcall_rip);
    assert_eq!(vmcs_field(&m, f::GUEST_RSP), 0x2E000);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 0);
    assert_eq!(m.cpu.gpr[4], HOST_STACK);
    assert_eq!(m.cpu.seg[1].selector, 0x08);
    assert_eq!(m.cpu.cpl, 0);
    assert_eq!(m.cpu.gdtr.limit, 0xFFFF);
    assert_eq!(m.nested.vmx.entries, 1);
    assert_eq!(m.nested.vmx.exits, 1);
    assert_eq!(
        m.nested.vmx.current_vmcs().unwrap().launch_state,
        hvsim_vmx_model::LaunchState::Launched
    );
}

/// VMRESUME after an exit: the handler advances GUEST_RIP by the instruction length
/// and resumes; L2 runs CPUID in a loop; 5 round trips.
#[test]
fn vmresume_cpuid_loop() {
    let mut m = setup_full(
        l1_launch,
        |a| {
            let mut done = a.create_label();
            a.inc(r14)?;
            a.cmp(r14, 5)?;
            a.je(done)?;
            a.mov(eax, f::GUEST_RIP)?;
            a.vmread(rbx, rax)?;
            a.mov(eax, f::VM_EXIT_INSTRUCTION_LENGTH)?;
            a.vmread(rcx, rax)?;
            a.add(rbx, rcx)?;
            a.mov(eax, f::GUEST_RIP)?;
            a.vmwrite(rax, rbx)?;
            a.vmresume()?;
            after_failed_entry(a)?;
            a.set_label(&mut done)?;
            host_handler(a)
        },
        |a| {
            let mut lp = a.create_label();
            a.set_label(&mut lp)?;
            a.inc(r11)?;
            a.cpuid()?;
            a.jmp(lp)
        },
        |_| {},
    );
    expect_exit(&mut m, 10);
    assert_eq!(m.cpu.gpr[14], 5);
    assert_eq!(m.cpu.gpr[11], 5, "L2 ran between the exits");
    assert_eq!(m.nested.vmx.entries, 5);
}

// ---- Failing VM-entry checks (27.2-27.4) through VMLAUNCH ------------------------------

/// Expects VMLAUNCH to fail `check` in its architectural form, and hvsim to name it.
fn expect_entry_failure(check: CheckId, edit: impl FnOnce(&mut Vmcs)) {
    let mut m = setup(l2_hlt, edit);
    run(&mut m);
    let failure =
        m.nested.vmx.last_entry_failure.unwrap_or_else(|| panic!("{check:?}: entry did not fail"));
    assert_eq!(failure.check, check, "{}", failure.describe());
    match failure.form {
        FailureForm::VmFailValid(e) => {
            assert_eq!(m.cpu.gpr[12], FAIL_MARK, "{check:?}");
            assert_fail_valid(&m, u64::from(e.0));
            assert!(matches!(e.0, 7 | 8));
        }
        FailureForm::ExitFailure { reason, qualification } => {
            assert_eq!(m.cpu.gpr[12], EXIT_MARK, "{check:?}");
            assert_eq!(m.cpu.gpr[13], u64::from(reason.0) | 1 << 31, "{check:?}");
            assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), qualification);
            assert!(!m.nested.vmx.non_root);
            assert_eq!(m.cpu.rip, HOST + asm(HOST, host_handler).len() as u64);
        }
    }
    assert_eq!(m.nested.vmx.entries, 0);
}

/// The baseline enters the guest (the reference for every failing case below).
#[test]
fn baseline_enters() {
    let mut m = setup(|a| a.vmcall(), |_| {});
    expect_exit(&mut m, 18);
    assert!(m.nested.vmx.last_entry_failure.is_none());
}

macro_rules! entry_failures {
    ($( $name:ident: $check:ident, |$v:ident| $edit:expr; )*) => {
        $(
            #[doc = concat!("SDM Vol. 3C chapter 27: VMLAUNCH fails ", stringify!($check), ".")]
            #[test]
            fn $name() {
                expect_entry_failure(CheckId::$check, |$v: &mut Vmcs| { $edit; });
            }
        )*
    };
}

const AR_CODE64: u64 = 0xA09B;
const CR0_NE: u64 = 0x20;
const CR4_VMXE: u64 = 1 << 13;
const CR4_PAE: u64 = 1 << 5;

entry_failures! {
    // 27.2.1.1 VM-execution control fields: VMfailValid(7).
    entry_pin_reserved: PinControlsReserved, |v| v.set(f::PIN_BASED_CONTROLS, 0);
    entry_proc_reserved: ProcControlsReserved, |v| v.set(f::PRIMARY_PROC_BASED_CONTROLS, 0);
    entry_proc2_vmcs_shadowing_not_supported: Proc2ControlsReserved, |v| {
        set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::ACTIVATE_SECONDARY_CONTROLS));
        v.set(f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::VMCS_SHADOWING))
    };
    entry_cr3_target_count: Cr3TargetCount, |v| v.set(f::CR3_TARGET_COUNT, 5);
    entry_io_bitmap_a: IoBitmapAAddress, |v| {
        set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_IO_BITMAPS));
        v.set(f::IO_BITMAP_A, IO_BITMAP_A + 1);
        v.set(f::IO_BITMAP_B, IO_BITMAP_B)
    };
    entry_msr_bitmap: MsrBitmapAddress, |v| {
        set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_MSR_BITMAPS));
        v.set(f::MSR_BITMAP, MSR_BITMAP + 0x10)
    };
    // 27.2.1.2 / 27.2.1.3 VM-exit and VM-entry control fields.
    entry_exit_controls_reserved: ExitControlsReserved, |v| v.set(f::PRIMARY_VM_EXIT_CONTROLS, 0);
    entry_entry_controls_reserved: EntryControlsReserved, |v| set_bits(v, f::VM_ENTRY_CONTROLS, 1 << 31);
    entry_event_type_reserved: EventTypeReserved, |v| v.set(f::VM_ENTRY_INTERRUPTION_INFO, 0x8000_0100);
    entry_event_nmi_vector: EventNmiVector, |v| v.set(f::VM_ENTRY_INTERRUPTION_INFO, 0x8000_0203);
    // 27.2.2-27.2.4 host state: VMfailValid(8).
    entry_host_cr0_fixed: HostCr0Fixed, |v| { let c = v.get(f::HOST_CR0); v.set(f::HOST_CR0, c & !CR0_NE) };
    entry_host_cr4_fixed: HostCr4Fixed, |v| { let c = v.get(f::HOST_CR4); v.set(f::HOST_CR4, c & !CR4_VMXE) };
    entry_host_selector_rpl: HostSelectorRplTi, |v| v.set(f::HOST_DS_SELECTOR, 0x13);
    entry_host_cs_null: HostCsNull, |v| v.set(f::HOST_CS_SELECTOR, 0);
    entry_host_tr_null: HostTrNull, |v| v.set(f::HOST_TR_SELECTOR, 0);
    entry_host_address_space_size: HostIa32eAddressSpaceSize, |v| {
        let e = v.get(f::PRIMARY_VM_EXIT_CONTROLS);
        v.set(f::PRIMARY_VM_EXIT_CONTROLS, e & !u64::from(exit::HOST_ADDRESS_SPACE_SIZE))
    };
    entry_host_rip_canonical: Host64RipCanonical, |v| v.set(f::HOST_RIP, 0x8000_0000_0000_0000);
    // 27.3.1 guest state: exit reason 33 (qualification 0, or 4 for the link pointer).
    entry_guest_cr0_fixed: GuestCr0Fixed, |v| { let c = v.get(f::GUEST_CR0); v.set(f::GUEST_CR0, c & !CR0_NE) };
    entry_guest_cr4_fixed: GuestCr4Fixed, |v| { let c = v.get(f::GUEST_CR4); v.set(f::GUEST_CR4, c & !CR4_VMXE) };
    entry_guest_ia32e_without_pae: GuestIa32eWithoutPae, |v| { let c = v.get(f::GUEST_CR4); v.set(f::GUEST_CR4, c & !CR4_PAE) };
    entry_guest_cs_type: GuestCsType, |v| v.set(f::GUEST_CS_ACCESS_RIGHTS, AR_CODE64 & !0xF | 0x3);
    entry_guest_tr_type: GuestTrType, |v| v.set(f::GUEST_TR_ACCESS_RIGHTS, 0x89);
    entry_guest_rflags_reserved: GuestRflagsReserved, |v| v.set(f::GUEST_RFLAGS, 0);
    entry_guest_rip_canonical: GuestRipCanonical, |v| v.set(f::GUEST_RIP, 0x8000_0000_0000_0000);
    entry_guest_activity_state: GuestActivityState, |v| v.set(f::GUEST_ACTIVITY_STATE, 5);
    entry_guest_sti_and_mov_ss: GuestInterruptibilityStiAndMovSs, |v| v.set(f::GUEST_INTERRUPTIBILITY_STATE, 3);
    entry_guest_vmcs_link: GuestVmcsLinkAddress, |v| v.set(f::VMCS_LINK_POINTER, 0x1001);
}

// ---- VM exits (26.1, 26.2, 28.2) -------------------------------------------------------

/// CPUID exits unconditionally (26.1.2): reason 10, length 2.
#[test]
fn cpuid_exits() {
    let mut m = setup(|a| a.cpuid(), |_| {});
    expect_exit(&mut m, 10);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 2);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
}

/// HLT with HLT exiting: reason 12; without it the guest halts in non-root operation.
#[test]
fn hlt_exiting() {
    let mut m = setup(l2_hlt, |v| {
        set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::HLT_EXITING))
    });
    expect_exit(&mut m, 12);
    let mut m = setup(l2_hlt, |_| {});
    run(&mut m);
    assert!(m.nested.vmx.non_root, "HLT without HLT exiting halts L2");
}

/// RDTSC with RDTSC exiting: reason 16; without it, RDTSC adds the TSC offset with "use
/// TSC offsetting" (26.6.5).
#[test]
fn rdtsc_exiting_and_offsetting() {
    let mut m = setup(
        |a| a.rdtsc(),
        |v| set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::RDTSC_EXITING)),
    );
    expect_exit(&mut m, 16);
    let mut m = setup(
        |a| {
            a.rdtsc()?;
            a.shl(rdx, 32)?;
            a.or(rax, rdx)?;
            a.mov(r9, rax)?;
            a.vmcall()
        },
        |v| {
            set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_TSC_OFFSETTING));
            v.set(f::TSC_OFFSET, 1 << 40);
        },
    );
    expect_exit(&mut m, 18);
    assert!(m.cpu.gpr[9] >= 1 << 40 && m.cpu.gpr[9] < (1 << 40) + 1_000_000);
}

/// INVLPG with INVLPG exiting: reason 14, qualification = the linear address.
#[test]
fn invlpg_exiting() {
    let mut m = setup(
        |a| a.invlpg(byte_ptr(0x12345)),
        |v| set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::INVLPG_EXITING)),
    );
    expect_exit(&mut m, 14);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 0x12345);
}

/// MOV to CR3 with CR3-load exiting: reason 28, qualification CR 3, type 0, GPR; a
/// CR3-target value does not exit (26.1.3).
#[test]
fn cr3_load_exiting_and_targets() {
    let l2 = |a: Asm| {
        a.mov(rbx, cr3)?;
        a.mov(cr3, rbx)?;
        a.vmcall()
    };
    let mut m = setup(l2, |v| {
        set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::CR3_LOAD_EXITING))
    });
    expect_exit(&mut m, 28);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 3 | (3 << 8));
    let mut m = setup(l2, |v| {
        set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::CR3_LOAD_EXITING));
        let cr3_value = v.get(f::GUEST_CR3);
        v.set(f::CR3_TARGET_COUNT, 1);
        v.set(f::CR3_TARGET_VALUE0, cr3_value);
    });
    expect_exit(&mut m, 18);
}

/// MOV from CR3 with CR3-store exiting: reason 28, type 1 (MOV from CR).
#[test]
fn cr3_store_exiting() {
    let mut m = setup(
        |a| a.mov(rdx, cr3),
        |v| set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::CR3_STORE_EXITING)),
    );
    expect_exit(&mut m, 28);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 3 | (1 << 4) | (2 << 8));
}

/// CR8 load exiting: reason 28, CR 8.
#[test]
fn cr8_load_exiting() {
    let mut m = setup(
        |a| {
            a.xor(eax, eax)?;
            a.mov(cr8, rax)
        },
        |v| set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::CR8_LOAD_EXITING)),
    );
    expect_exit(&mut m, 28);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 8);
}

/// CR0 guest/host mask and read shadow (25.6.6, 26.3): MOV from CR0 reads the shadow
/// for owned bits; MOV to CR0 that changes an owned bit from its shadow value exits;
/// one that matches the shadow does not.
#[test]
fn cr0_mask_and_shadow() {
    const CD: u64 = 1 << 30;
    let l2 = |a: Asm| {
        a.mov(r8, cr0)?;
        a.mov(rax, r8)?;
        a.mov(cr0, rax)?;
        a.or(rax, CD as i32)?;
        a.mov(cr0, rax)?;
        a.vmcall()
    };
    let l2_bytes = asm(L2, l2);
    let mut m = setup(l2, |v| {
        v.set(f::CR0_GUEST_HOST_MASK, CD | 1 << 16);
        v.set(f::CR0_READ_SHADOW, 1 << 16);
    });
    expect_exit(&mut m, 28);
    // The guest's CR0 has WP (bit 16) set; the shadow says set too; CD is owned and 0.
    assert_eq!(m.cpu.gpr[8] & (CD | 1 << 16), 1 << 16);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 0);
    assert_eq!(
        vmcs_field(&m, f::GUEST_RIP),
        insn_addr(&l2_bytes, 4),
        "the second MOV to CR0 exited"
    );
}

/// CR4 mask: MOV from CR4 reads the shadow's VMXE (0), not the real bit.
#[test]
fn cr4_read_shadow_hides_vmxe() {
    let mut m = setup(
        |a| {
            a.mov(r8, cr4)?;
            a.vmcall()
        },
        |v| {
            v.set(f::CR4_GUEST_HOST_MASK, CR4_VMXE);
        },
    );
    expect_exit(&mut m, 18);
    assert_eq!(m.cpu.gpr[8] & CR4_VMXE, 0);
    assert_ne!(m.cpu.cr4 & CR4_VMXE, 0);
}

/// MOV DR with MOV-DR exiting: reason 29, qualification DR 7, from-DR, GPR.
#[test]
fn mov_dr_exiting() {
    let mut m = setup(
        |a| a.mov(rcx, dr7),
        |v| set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::MOV_DR_EXITING)),
    );
    expect_exit(&mut m, 29);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 7 | (1 << 4) | (1 << 8));
}

/// I/O with unconditional I/O exiting: reason 30, qualification (size, direction,
/// immediate, port).
#[test]
fn io_unconditional_exiting() {
    let mut m = setup(
        |a| a.out(0x80, al),
        |v| set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::UNCONDITIONAL_IO_EXITING)),
    );
    expect_exit(&mut m, 30);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), (1 << 6) | (0x80 << 16));
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 2);
}

/// I/O bitmaps: a 2-byte IN at 0x8FFF..0x9000 exits through bitmap B's bit for 0x9000
/// (any byte of the access); an access to a clear port does not exit (25.6.4).
#[test]
fn io_bitmap_exiting() {
    let edit = |v: &mut Vmcs| {
        set_bits(
            v,
            f::PRIMARY_PROC_BASED_CONTROLS,
            u64::from(proc::USE_IO_BITMAPS | proc::UNCONDITIONAL_IO_EXITING),
        );
        v.set(f::IO_BITMAP_A, IO_BITMAP_A);
        v.set(f::IO_BITMAP_B, IO_BITMAP_B);
    };
    let l2 = |a: Asm| {
        a.mov(edx, 0x70)?;
        a.in_(al, dx)?;
        a.mov(edx, 0x8FFF)?;
        a.in_(ax, dx)?;
        a.vmcall()
    };
    let mut m = setup(l2, edit);
    m.mem.write_u8(Gpa(IO_BITMAP_B + 0x1000 / 8), 1);
    expect_exit(&mut m, 30);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 1 | (1 << 3) | (0x8FFF << 16));
}

/// MSR bitmaps: RDMSR of an MSR whose read bit is set exits (reason 31); one whose bit
/// is clear does not; WRMSR checks the write bitmap (reason 32) (25.6.9).
#[test]
fn msr_bitmap_exiting() {
    let edit = |v: &mut Vmcs| {
        set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_MSR_BITMAPS));
        v.set(f::MSR_BITMAP, MSR_BITMAP);
    };
    let l2 = |a: Asm| {
        a.mov(ecx, 0x277)?; // IA32_PAT: read bit clear
        a.rdmsr()?;
        a.mov(ecx, 0x174)?; // IA32_SYSENTER_CS: write bit set
        a.rdmsr()?;
        a.wrmsr()?;
        a.vmcall()
    };
    let mut m = setup(l2, edit);
    m.mem.write_u8(Gpa(MSR_BITMAP + 2048 + 0x174 / 8), 1 << (0x174 % 8));
    expect_exit(&mut m, 32);
    // Without MSR bitmaps every RDMSR exits.
    let mut m = setup(l2, |_| {});
    expect_exit(&mut m, 31);
}

/// Exception bitmap: #UD exits with reason 0 and interruption information (vector 6,
/// hardware exception, valid); #PF follows the PFEC mask/match rule (25.6.3).
#[test]
fn exception_bitmap() {
    let mut m = setup(
        |a| a.ud2(),
        |v| {
            v.set(f::EXCEPTION_BITMAP, 1 << 6);
        },
    );
    expect_exit(&mut m, 0);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_INFO), 0x8000_0306);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
    // #PF (a write to a non-canonical... here an unmapped address above 4 GiB): with
    // bit 14 set and mask/match selecting writes (bit 1), a write fault exits with the
    // address as qualification.
    let l2 = |a: Asm| {
        a.mov(rax, 0x1_0000_0000u64 * 8)?;
        a.mov(qword_ptr(rax), 1)
    };
    let mut m = setup(l2, |v| {
        v.set(f::EXCEPTION_BITMAP, 1 << 14);
        v.set(f::PAGE_FAULT_ERROR_CODE_MASK, 2);
        v.set(f::PAGE_FAULT_ERROR_CODE_MATCH, 2);
    });
    expect_exit(&mut m, 0);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 0x8_0000_0000);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_INFO), 0x8000_0B0E);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_ERROR_CODE) & 2, 2);
    // The same fault with match = 0 (reads only): bit 14 set but no match, no exit;
    // the guest has no IDT so the delivery shuts down: a triple-fault exit (26.2).
    let mut m = setup(l2, |v| {
        v.set(f::EXCEPTION_BITMAP, 1 << 14);
        v.set(f::PAGE_FAULT_ERROR_CODE_MASK, 2);
        v.set(f::PAGE_FAULT_ERROR_CODE_MATCH, 0);
        v.set(f::GUEST_IDTR_LIMIT, 0);
    });
    m.set_exception_catch(0);
    expect_exit(&mut m, 2);
}

/// External-interrupt exiting with acknowledge interrupt on exit: reason 1 with the
/// vector in the interruption information, even with the guest's RFLAGS.IF = 0 (25.3).
#[test]
fn external_interrupt_exiting() {
    let mut m = setup(
        |a| {
            let mut lp = a.create_label();
            a.set_label(&mut lp)?;
            a.jmp(lp)
        },
        |v| {
            set_bits(v, f::PIN_BASED_CONTROLS, u64::from(pin::EXTERNAL_INTERRUPT_EXITING));
            set_bits(
                v,
                f::PRIMARY_VM_EXIT_CONTROLS,
                u64::from(exit::ACKNOWLEDGE_INTERRUPT_ON_EXIT),
            );
        },
    );
    m.inject_interrupt(0x31);
    expect_exit(&mut m, 1);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_INFO), 0x8000_0031);
    assert_eq!(m.cpu.intr, None, "acknowledged");
}

/// Interrupt-window exiting: with the guest's RFLAGS.IF = 1 the exit happens before
/// the first guest instruction (reason 7).
#[test]
fn interrupt_window_exiting() {
    let mut m = setup(
        |a| a.vmcall(),
        |v| {
            set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::INTERRUPT_WINDOW_EXITING));
            v.set(f::GUEST_RFLAGS, 0x202);
        },
    );
    expect_exit(&mut m, 7);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
}

/// VMX instructions in the guest exit (26.1.2): VMPTRST with reason 22, qualification
/// = displacement, instruction information naming the operand.
#[test]
fn vmx_instruction_in_guest_exits() {
    let mut m = setup(|a| a.vmptrst(qword_ptr(rbx + 0x40)), |_| {});
    expect_exit(&mut m, 22);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 0x40);
    let info = vmcs_field(&m, f::VM_EXIT_INSTRUCTION_INFO) as u32;
    let d = hvsim_vmx_model::exit_info::InstructionInfo::decode(info);
    assert_eq!(d.base, Some(3));
    assert_eq!(d.index, None);
}

/// Event injection (27.6): an injected #UD (hardware exception, no error code) is
/// delivered through the guest IDT, where the exception bitmap does not apply to it...
/// here the guest has no usable IDT, so its delivery shuts down: a triple-fault exit.
#[test]
fn event_injection_delivers_in_guest() {
    let mut m = setup(l2_hlt, |v| {
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, 0x8000_0306);
        v.set(f::GUEST_IDTR_LIMIT, 0);
    });
    m.set_exception_catch(0);
    expect_exit(&mut m, 2);
}

/// Host state with a failing host MSR load: a VMX abort stops the run (28.7) and the
/// indicator is written to the VMCS region.
#[test]
fn vmx_abort_on_host_msr_load() {
    let mut m = setup(
        |a| a.vmcall(),
        |v| {
            v.set(f::VM_EXIT_MSR_LOAD_COUNT, 1);
            v.set(f::VM_EXIT_MSR_LOAD_ADDR, SCRATCH);
        },
    );
    // An entry that loads a nonexistent MSR.
    m.mem.write_u64(Gpa(SCRATCH), 0x1234_5678);
    let r = m.run(Some(100_000));
    assert!(matches!(r.reason, StopReason::VmxAbort { indicator: 4 }), "{r}");
    assert_eq!(m.mem.read_u32(Gpa(VMCS + 4)), 4);
}
