//! Failing VM entries end to end (SDM Vol. 3C chapter 27 "VM Entries"): an L1 hypervisor
//! starts from the valid baseline VMCS of `support/vmx_l1.rs`, changes one thing, and
//! executes VMLAUNCH (or, after one successful entry and a VMCALL exit, VMRESUME). Each
//! test asserts the architectural failure form and that hvsim names exactly the check:
//!
//! - checks on VMX controls (27.2.1) and on the host-state area (27.2.2-27.2.4):
//!   VMfailValid with VM-instruction error 7 or 8 (RFLAGS.ZF = 1, CF = 0), the next L1
//!   instruction runs, nothing is loaded;
//! - checks on the guest-state area (27.3.1) and MSR loading (27.4): a VM-entry failure
//!   "exit" (27.8) with basic reason 33 or 34 and bit 31 set in EXIT_REASON, the exit
//!   qualification (0 default, 2 PDPTE, 3 NMI injection with blocking by STI, 4 VMCS link
//!   pointer; for MSR loading the 1-based index of the failing entry), the guest-state
//!   area not saved, and the host state loaded (RIP, RSP, CR3, CS);
//!
//! and that `m.nested.vmx.last_entry_failure` names that `CheckId` (and the VMCS field it
//! blames). The checks of tests/vmx.rs are not repeated here. The 27.2.4 checks that
//! need a host outside IA-32e mode run from a 32-bit L1 with paging (at the end).
//!
//! Checks not reachable with what the Intel model advertises (`intel_capabilities()`)
//! are listed in [`UNREACHABLE`], with the reason, and a test keeps that list honest.

#[path = "support/vmx_l1.rs"]
mod vmx_l1;
use hvsim_vmx_model::entry_checks::guest_state::{activity, interruptibility as ib};
use hvsim_vmx_model::{VmInstructionError, VmxExitReason};
use vmx_l1::*;

/// A second (entry, value) table: the fields L1's exit handler writes before VMRESUME.
const RESUME_TABLE: u64 = 0x38000;
/// Where tests put a VM-entry MSR-load area.
const MSR_AREA: u64 = 0x60000;
/// A linear address that is not canonical for 48 or 57 bits.
const NONCANONICAL: u64 = 0x8000_0000_0000_0000;
/// The lowest physical-address bit beyond MAXPHYADDR.
const BEYOND_MAXPHYADDR: u64 = 1 << hvsim::cpu::access::MAXPHYADDR;

const CR4_PAE: u64 = 1 << 5;
const CR4_PCIDE: u64 = 1 << 17;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const RFLAGS_FIXED: u64 = 1 << 1;
const RFLAGS_TF: u64 = 1 << 8;
const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_VM: u64 = 1 << 17;
/// IA32_PAT power-on value (SDM Vol. 3A "PAT"): WB, WT, UC-, UC repeated.
const PAT_DEFAULT: u64 = 0x0007_0406_0007_0406;
/// Pending debug exceptions: BS (bit 14).
const PENDING_BS: u64 = 1 << 14;
/// IA32_SYSENTER_CS, an MSR any value of which WRMSR accepts (a valid MSR-load entry).
const IA32_SYSENTER_CS: u32 = 0x174;

// Access rights (VMCS format: type 3:0, S 4, DPL 6:5, P 7, L 13, D/B 14, G 15,
// unusable 16).
const AR_CODE64: u64 = 0xA09B;
const AR_DATA: u64 = 0xC093;
const AR_TSS64: u64 = 0x8B;
const AR_V86: u64 = 0xF3;
const AR_LDT: u64 = 0x82;

// VM-entry interruption-information types (SDM Vol. 3C 25.8.3 "VM-Entry Controls for
// Event Injection").
const EXTERNAL_INTERRUPT: u64 = 0;
const NMI: u64 = 2;
const HARDWARE_EXCEPTION: u64 = 3;
const SOFTWARE_INTERRUPT: u64 = 4;

/// A valid VM-entry interruption-information value.
fn event(ty: u64, vector: u8, error_code: bool) -> u64 {
    1 << 31 | u64::from(error_code) << 11 | ty << 8 | u64::from(vector)
}

/// The expected architectural outcome.
#[derive(Copy, Clone, Debug)]
enum Want {
    /// VMfailValid with this VM-instruction error.
    Fail(u32),
    /// A VM-entry failure exit: basic reason, exit qualification.
    Exit(u16, u64),
}

/// 27.2.1: VMfailValid(7) "VM entry with invalid control field(s)".
const CONTROL_FAIL: Want = Want::Fail(7);
/// 27.2.2-27.2.4: VMfailValid(8) "VM entry with invalid host-state field(s)".
const HOST_FAIL: Want = Want::Fail(8);
/// 27.3.1: exit reason 33, qualification 0 ("default").
const GUEST: Want = Want::Exit(33, 0);
/// 27.3.1.6: exit reason 33, qualification 2 ("failure was due to a problem loading the
/// PDPTEs").
const GUEST_PDPTE: Want = Want::Exit(33, 2);
/// 27.3.1.5: exit reason 33, qualification 3 ("failure was due to an attempt to inject a
/// non-maskable interrupt (NMI) into a guest that is blocking events through the STI
/// blocking bit").
const GUEST_NMI_STI: Want = Want::Exit(33, 3);
/// 27.3.1.5: exit reason 33, qualification 4 ("failure was due to an invalid VMCS link
/// pointer").
const GUEST_LINK: Want = Want::Exit(33, 4);
/// 27.4: exit reason 34 with the 1-based index of the MSR-load entry that failed.
const fn msr_entry(index: u64) -> Want {
    Want::Exit(34, index)
}

/// Which instruction attempts the failing entry.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Via {
    /// VMLAUNCH of the edited VMCS.
    Launch,
    /// VMLAUNCH of the baseline, a VMCALL exit, then the handler writes the edited
    /// fields and executes VMRESUME.
    Resume,
}

/// R10 counts the L2 runs: L2 increments it, then exits with VMCALL.
fn l2_count_and_vmcall(a: Asm) -> Result<(), IcedError> {
    a.inc(r10)?;
    a.vmcall()
}

/// The exit handler of the VMRESUME path: on the first exit (R14 = 0) it writes the
/// fields of RESUME_TABLE and executes VMRESUME (a VMfail falls through to the failure
/// recorder); on the next exit it records the exit reason and halts.
fn resume_host(a: Asm) -> Result<(), IcedError> {
    let mut second = a.create_label();
    a.test(r14, r14)?;
    a.jnz(second)?;
    a.inc(r14)?;
    write_table_at(a, RESUME_TABLE)?;
    a.vmresume()?;
    after_failed_entry(a)?;
    a.set_label(&mut second)?;
    host_handler(a)
}

/// Writes the fields where `edited` differs from `base` (zero values included) as an
/// (encoding, value) table at `at`.
fn write_diff_table(m: &mut Machine, at: u64, base: &Vmcs, edited: &Vmcs) {
    let caps = intel_capabilities();
    let mut p = at;
    for (info, value) in edited.fields() {
        if value == base.get(info.encoding) {
            continue;
        }
        assert!(caps.field_supported(info), "the test edits unsupported field {}", info.name);
        m.mem.write_u64(Gpa(p), u64::from(info.encoding));
        m.mem.write_u64(Gpa(p + 8), value);
        p += 16;
    }
    m.mem.write_u64(Gpa(p), u64::MAX);
}

type Edit<'a> = &'a dyn Fn(&mut Vmcs, &mut Machine);

/// Builds the machine for `via` with `edit` applied to the baseline; returns it with the
/// edited VMCS and the length of the host code.
fn prepare(via: Via, edit: Edit) -> (Machine, Vmcs, u64) {
    let host: Code = match via {
        Via::Launch => host_handler,
        Via::Resume => resume_host,
    };
    let mut m = setup_full(l1_launch, host, l2_count_and_vmcall, |_| {});
    let base = baseline(&m);
    let mut edited = base.clone();
    edit(&mut edited, &mut m);
    match via {
        Via::Launch => {
            // Fields the edit sets to 0 stay 0: VMCLEAR of the zeroed region.
            let caps = intel_capabilities();
            for (info, value) in edited.fields() {
                assert!(
                    value == 0 || caps.field_supported(info),
                    "the test edits unsupported field {}",
                    info.name
                );
            }
            write_vmcs_table(&mut m, &edited);
        }
        Via::Resume => write_diff_table(&mut m, RESUME_TABLE, &base, &edited),
    }
    (m, edited, asm(HOST, host).len() as u64)
}

/// Runs one failing entry and checks everything the module docs list.
fn expect_failure(via: Via, check: CheckId, want: Want, field: u32, edit: Edit) {
    let (mut m, edited, host_len) = prepare(via, edit);
    let r = m.run(Some(200_000));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{check:?}: {r}");
    let failure =
        m.nested.vmx.last_entry_failure.unwrap_or_else(|| panic!("{check:?}: entry did not fail"));
    assert_eq!(failure.check, check, "{}", failure.describe());
    assert_eq!(
        failure.field,
        Some(field),
        "{check:?} blames the wrong field: {}",
        failure.describe()
    );
    // Only the baseline entry of the VMRESUME path entered L2.
    let entered = u64::from(via == Via::Resume);
    assert_eq!(m.nested.vmx.entries, entered, "{check:?}");
    assert_eq!(m.cpu.gpr[10], entered, "{check:?}: L2 ran after the failing entry");
    assert!(!m.nested.vmx.non_root, "{check:?}");
    let (mark, recorded, rflags) = (m.cpu.gpr[12], m.cpu.gpr[13], m.cpu.gpr[15]);
    match want {
        Want::Fail(error) => {
            assert_eq!(
                failure.form,
                FailureForm::VmFailValid(VmInstructionError(error)),
                "{check:?}"
            );
            // SDM Vol. 3C 32.2 "Conventions": VMfailValid sets ZF, clears CF; the next
            // instruction of L1 runs on L1's stack.
            assert_eq!(mark, FAIL_MARK, "{check:?}: no VMfail (exit reason {recorded:#x})");
            assert_eq!(rflags & (CF | ZF), ZF, "{check:?}");
            assert_eq!(recorded, u64::from(error), "{check:?}: VM-instruction error");
            let stack = if via == Via::Launch { L1_STACK } else { HOST_STACK };
            assert_eq!(m.cpu.gpr[4], stack, "{check:?}: RSP");
        }
        Want::Exit(reason, qualification) => {
            assert_eq!(
                failure.form,
                FailureForm::ExitFailure { reason: VmxExitReason(reason), qualification },
                "{check:?}"
            );
            // 27.8: EXIT_REASON has bit 31 set, the qualification is recorded ...
            assert_eq!(mark, EXIT_MARK, "{check:?}: no VM-entry failure exit (error {recorded})");
            assert_eq!(recorded, u64::from(reason) | 1 << 31, "{check:?}: EXIT_REASON");
            assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), qualification, "{check:?}");
            // ... host state is loaded (RIP, RSP, CR3, CS, CPL 0) ...
            assert_eq!(m.cpu.rip, HOST + host_len, "{check:?}: host RIP");
            assert_eq!(m.cpu.gpr[4], HOST_STACK, "{check:?}: host RSP");
            assert_eq!(m.cpu.cr3, edited.get(f::HOST_CR3), "{check:?}: host CR3");
            assert_eq!(m.cpu.seg[1].selector, 0x08, "{check:?}: host CS");
            assert_eq!(m.cpu.cpl, 0, "{check:?}");
            // ... and the guest-state area is not saved (there was no guest to save).
            assert_eq!(vmcs_field(&m, f::GUEST_RSP), edited.get(f::GUEST_RSP), "{check:?}");
            assert_eq!(
                vmcs_field(&m, f::GUEST_RFLAGS),
                edited.get(f::GUEST_RFLAGS),
                "{check:?}: guest RFLAGS saved"
            );
        }
    }
}

/// The reference for every case: the baseline enters through both paths.
#[test]
fn baseline_enters_through_launch_and_resume() {
    for via in [Via::Launch, Via::Resume] {
        let (mut m, _, _) = prepare(via, &|_, _| {});
        expect_exit(&mut m, 18);
        assert!(m.nested.vmx.last_entry_failure.is_none(), "{via:?}");
        let runs = if via == Via::Launch { 1 } else { 2 };
        assert_eq!(m.nested.vmx.entries, runs, "{via:?}");
        // VMRESUME re-enters at the VMCALL (the handler does not advance GUEST_RIP).
        assert_eq!(m.cpu.gpr[10], 1, "{via:?}");
    }
}

/// One `#[test]` per check: `name: CheckId via Launch|Resume, Want, blamed field,
/// |vmcs, machine| edit;`.
macro_rules! entry_failures {
    ($( $(#[$doc:meta])* $name:ident: $check:ident via $via:ident, $want:expr, $field:expr,
        |$v:ident, $m:tt| $edit:expr; )*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                expect_failure(
                    Via::$via,
                    CheckId::$check,
                    $want,
                    $field,
                    &|$v: &mut Vmcs, $m: &mut Machine| { $edit; },
                );
            }
        )*

        /// Every check a test of this file fails, in file order.
        const COVERED_HERE: &[CheckId] = &[$(CheckId::$check),*];
    };
}

fn or_field(v: &mut Vmcs, e: u32, bits: u64) {
    let old = v.get(e);
    v.set(e, old | bits);
}

fn clear_field(v: &mut Vmcs, e: u32, bits: u64) {
    let old = v.get(e);
    v.set(e, old & !bits);
}

/// A guest without "IA-32e mode guest" (32-bit protected mode with paging): the
/// entry control clear, and CS a 32-bit code segment.
fn legacy_guest(v: &mut Vmcs) {
    clear_field(v, f::VM_ENTRY_CONTROLS, u64::from(entry::IA32E_MODE_GUEST));
    v.set(f::GUEST_CS_SELECTOR, 0x18);
    v.set(f::GUEST_CS_ACCESS_RIGHTS, 0xC09B);
}

/// Virtual-8086 segments: selector 0x1000, base 0x10000, limit FFFFH, access rights F3H
/// for ES, CS, SS, DS, FS, GS (27.3.1.2), and RFLAGS.VM.
fn v86_segments(v: &mut Vmcs) {
    for i in 0..6u32 {
        v.set(f::GUEST_ES_SELECTOR + 2 * i, 0x1000);
        v.set(f::GUEST_ES_BASE + 2 * i, 0x10000);
        v.set(f::GUEST_ES_LIMIT + 2 * i, 0xFFFF);
        v.set(f::GUEST_ES_ACCESS_RIGHTS + 2 * i, AR_V86);
    }
    v.set(f::GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_VM);
}

/// A virtual-8086 guest: legacy (not IA-32e) protected mode with v86 segments.
fn v86_guest(v: &mut Vmcs) {
    legacy_guest(v);
    v86_segments(v);
}

/// A CPL-3 guest: the harness's user code64 (0x43) and user data (0x3B) with DPL 3.
fn user_guest(v: &mut Vmcs) {
    v.set(f::GUEST_CS_SELECTOR, 0x43);
    v.set(f::GUEST_CS_ACCESS_RIGHTS, AR_CODE64 | 3 << 5);
    v.set(f::GUEST_SS_SELECTOR, 0x3B);
    v.set(f::GUEST_SS_ACCESS_RIGHTS, AR_DATA | 3 << 5);
}

/// Writes a VM-entry MSR-load area of `entries` (index, value) at MSR_AREA and points
/// the VMCS at it.
fn msr_load_area(v: &mut Vmcs, m: &mut Machine, entries: &[(u64, u64)]) {
    for (k, &(index, value)) in entries.iter().enumerate() {
        let at = MSR_AREA + 16 * k as u64;
        m.mem.write_u64(Gpa(at), index);
        m.mem.write_u64(Gpa(at + 8), value);
    }
    v.set(f::VM_ENTRY_MSR_LOAD_ADDR, MSR_AREA);
    v.set(f::VM_ENTRY_MSR_LOAD_COUNT, entries.len() as u64);
}

/// A valid MSR-load entry.
const GOOD_MSR: (u64, u64) = (IA32_SYSENTER_CS as u64, 0x10);

entry_failures! {
    // ---- 27.2.1.1 VM-execution control fields: VMfailValid(7) ---------------------------
    /// "If the 'use I/O bitmaps' VM-execution control is 1, bits 11:0 of each I/O-bitmap
    /// address must be 0" (bitmap B).
    io_bitmap_b_unaligned: IoBitmapBAddress via Resume, CONTROL_FAIL, f::IO_BITMAP_B, |v, _| {
        or_field(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_IO_BITMAPS));
        v.set(f::IO_BITMAP_A, IO_BITMAP_A);
        v.set(f::IO_BITMAP_B, IO_BITMAP_B + 0x800)
    };

    /// "If the 'use TPR shadow' VM-execution control is 1, the virtual-APIC address must
    /// ... be 4-KByte aligned."
    virtual_apic_unaligned: VirtualApicAddress via Launch, CONTROL_FAIL, f::VIRTUAL_APIC_PAGE_ADDR, |v, _| {
        or_field(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_TPR_SHADOW));
        v.set(f::VIRTUAL_APIC_PAGE_ADDR, SCRATCH + 0x10)
    };
    /// "If the 'use TPR shadow' VM-execution control is 1 and the 'virtual-interrupt
    /// delivery' VM-execution control is 0, bits 31:4 of the TPR threshold ... must be 0."
    tpr_threshold_reserved: TprThresholdReserved via Resume, CONTROL_FAIL, f::TPR_THRESHOLD, |v, _| {
        or_field(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::USE_TPR_SHADOW));
        v.set(f::VIRTUAL_APIC_PAGE_ADDR, SCRATCH);
        v.set(f::TPR_THRESHOLD, 0x10)
    };

    /// "If the 'enable VM functions' VM-execution control is 1 ... bits in the VM-function
    /// controls that are reserved (0 in IA32_VMX_VMFUNC) must be 0."
    vmfunc_controls_reserved: VmfuncControlsReserved via Launch, CONTROL_FAIL, f::VM_FUNCTION_CONTROLS, |v, _| {
        vm_functions(v);
        v.set(f::VM_FUNCTION_CONTROLS, 1 << 1)
    };
    /// "If bit 0 in the VM-function controls is 1 (EPTP switching), the 'enable EPT'
    /// VM-execution control must also be 1."
    eptp_switching_without_ept: EptpSwitchingWithoutEpt via Launch, CONTROL_FAIL, f::VM_FUNCTION_CONTROLS, |v, _| {
        vm_functions(v);
        v.set(f::VM_FUNCTION_CONTROLS, 1);
        v.set(f::EPTP_LIST_ADDRESS, SCRATCH)
    };
    /// "... the EPTP-list address must satisfy the following checks: bits 11:0 of the
    /// address must be 0; the address must not set any bits beyond the processor's
    /// physical-address width."
    eptp_list_unaligned: EptpListAddress via Resume, CONTROL_FAIL, f::EPTP_LIST_ADDRESS, |v, _| {
        vm_functions(v);
        or_field(v, f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::ENABLE_EPT));
        v.set(f::EPT_POINTER, SCRATCH | 6 | 3 << 3);
        v.set(f::VM_FUNCTION_CONTROLS, 1);
        v.set(f::EPTP_LIST_ADDRESS, SCRATCH + 8)
    };

    // ---- 27.2.1.2 VM-exit control fields ------------------------------------------------
    /// "If the VM-exit MSR-store count is not zero: the lower 4 bits of the VM-exit
    /// MSR-store address must be 0."
    exit_msr_store_unaligned: ExitMsrStoreArea via Resume, CONTROL_FAIL, f::VM_EXIT_MSR_STORE_ADDR, |v, _| {
        v.set(f::VM_EXIT_MSR_STORE_COUNT, 1);
        v.set(f::VM_EXIT_MSR_STORE_ADDR, SCRATCH + 8)
    };
    /// "The address of the last byte in the VM-exit MSR-load area should not set any
    /// bits beyond the processor's physical-address width."
    exit_msr_load_beyond_width: ExitMsrLoadArea via Launch, CONTROL_FAIL, f::VM_EXIT_MSR_LOAD_ADDR, |v, _| {
        v.set(f::VM_EXIT_MSR_LOAD_COUNT, 2);
        v.set(f::VM_EXIT_MSR_LOAD_ADDR, BEYOND_MAXPHYADDR - 16)
    };

    // ---- 27.2.1.3 VM-entry control fields: event injection and the MSR-load area --------
    /// "If the interruption type is other event, the vector is 0" (type 7, the pending
    /// MTF VM exit, is allowed because the monitor trap flag is advertised).
    event_other_vector: EventOtherVector via Launch, CONTROL_FAIL, f::VM_ENTRY_INTERRUPTION_INFO, |v, _| {
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(7, 1, false))
    };
    /// "If the interruption type is hardware exception, the vector is at most 31."
    event_hardware_exception_vector: EventHardwareExceptionVector via Launch, CONTROL_FAIL, f::VM_ENTRY_INTERRUPTION_INFO, |v, _| {
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(HARDWARE_EXCEPTION, 32, false))
    };
    /// "The deliver-error-code bit (bit 11) is set if and only if ... hardware exception
    /// ... vector 8, 10-14, or 17": #UD with an error code.
    event_error_code_unexpected: EventErrorCodeUnexpected via Launch, CONTROL_FAIL, f::VM_ENTRY_INTERRUPTION_INFO, |v, _| {
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(HARDWARE_EXCEPTION, 6, true))
    };
    /// The same rule the other way: #GP (vector 13) in protected mode without one.
    event_error_code_missing: EventErrorCodeMissing via Resume, CONTROL_FAIL, f::VM_ENTRY_INTERRUPTION_INFO, |v, _| {
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(HARDWARE_EXCEPTION, 13, false))
    };
    /// "Reserved bits in the field (30:12) are 0."
    event_reserved_bits: EventReservedBits via Launch, CONTROL_FAIL, f::VM_ENTRY_INTERRUPTION_INFO, |v, _| {
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(HARDWARE_EXCEPTION, 6, false) | 1 << 12)
    };
    /// "If deliver error code is 1, bits 31:16 of the VM-entry exception error-code field
    /// are 0."
    event_error_code_reserved: EventErrorCodeReserved via Launch, CONTROL_FAIL, f::VM_ENTRY_EXCEPTION_ERROR_CODE, |v, _| {
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(HARDWARE_EXCEPTION, 13, true));
        v.set(f::VM_ENTRY_EXCEPTION_ERROR_CODE, 0x1_0000)
    };
    /// "If the interruption type is software interrupt ... the VM-entry
    /// instruction-length field is in the range 0-15" (0 allowed: IA32_VMX_MISC bit 30).
    event_instruction_length: EventInstructionLength via Launch, CONTROL_FAIL, f::VM_ENTRY_INSTRUCTION_LENGTH, |v, _| {
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(SOFTWARE_INTERRUPT, 0x80, false));
        v.set(f::VM_ENTRY_INSTRUCTION_LENGTH, 16)
    };
    /// "If the VM-entry MSR-load count is not zero: the lower 4 bits of the VM-entry
    /// MSR-load address must be 0."
    entry_msr_load_unaligned: EntryMsrLoadArea via Resume, CONTROL_FAIL, f::VM_ENTRY_MSR_LOAD_ADDR, |v, _| {
        v.set(f::VM_ENTRY_MSR_LOAD_COUNT, 1);
        v.set(f::VM_ENTRY_MSR_LOAD_ADDR, MSR_AREA + 4)
    };

    // ---- 27.2.2 host control registers and MSRs: VMfailValid(8) ------------------------
    /// "The CR3 field must be such that bits 63:52 and bits in the range 51:32 beyond the
    /// processor's physical-address width are 0."
    host_cr3_beyond_width: HostCr3Width via Resume, HOST_FAIL, f::HOST_CR3, |v, _| {
        or_field(v, f::HOST_CR3, BEYOND_MAXPHYADDR)
    };
    /// "The IA32_SYSENTER_ESP field and the IA32_SYSENTER_EIP field must each contain a
    /// canonical address" (ESP).
    host_sysenter_esp: HostSysenterEspCanonical via Launch, HOST_FAIL, f::HOST_IA32_SYSENTER_ESP, |v, _| {
        v.set(f::HOST_IA32_SYSENTER_ESP, NONCANONICAL)
    };
    /// The same rule for IA32_SYSENTER_EIP.
    host_sysenter_eip: HostSysenterEipCanonical via Launch, HOST_FAIL, f::HOST_IA32_SYSENTER_EIP, |v, _| {
        v.set(f::HOST_IA32_SYSENTER_EIP, NONCANONICAL | 0x1000)
    };
    /// "If the 'load IA32_PAT' VM-exit control is 1, the value of the field for the
    /// IA32_PAT MSR must be one that could be written by WRMSR" (type 2 is reserved).
    host_pat_reserved_type: HostPat via Launch, HOST_FAIL, f::HOST_IA32_PAT, |v, _| {
        or_field(v, f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::LOAD_IA32_PAT));
        v.set(f::HOST_IA32_PAT, PAT_DEFAULT & !0xFF | 2)
    };
    /// "If the 'load IA32_EFER' VM-exit control is 1 ... reserved bits in the IA32_EFER
    /// field must be 0."
    host_efer_reserved: HostEferReserved via Launch, HOST_FAIL, f::HOST_IA32_EFER, |v, _| {
        or_field(v, f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::LOAD_IA32_EFER));
        v.set(f::HOST_IA32_EFER, EFER_LMA | EFER_LME | 1 << 63)
    };
    /// "Bit 10 (corresponding to IA32_EFER.LMA) must equal the value of the 'host
    /// address-space size' VM-exit control."
    host_efer_lma: HostEferLma via Launch, HOST_FAIL, f::HOST_IA32_EFER, |v, _| {
        or_field(v, f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::LOAD_IA32_EFER));
        v.set(f::HOST_IA32_EFER, EFER_LME)
    };
    /// "Bit 8 (corresponding to IA32_EFER.LME) must equal the value of the 'host
    /// address-space size' VM-exit control."
    host_efer_lme: HostEferLme via Resume, HOST_FAIL, f::HOST_IA32_EFER, |v, _| {
        or_field(v, f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::LOAD_IA32_EFER));
        v.set(f::HOST_IA32_EFER, EFER_LMA)
    };

    // ---- 27.2.3 host segment and descriptor-table registers ----------------------------
    /// "The selector field for SS cannot be 0000H if the 'host address-space size'
    /// VM-exit control is 0" (27.2.3 runs before the address-space checks of 27.2.4).
    host_ss_null_32bit_host: HostSsNull via Resume, HOST_FAIL, f::HOST_SS_SELECTOR, |v, _| {
        clear_field(v, f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::HOST_ADDRESS_SPACE_SIZE));
        v.set(f::HOST_SS_SELECTOR, 0)
    };
    /// "The base-address fields for FS, GS, GDTR, IDTR, and TR must contain canonical
    /// addresses" (FS).
    host_fs_base_noncanonical: HostBaseCanonical via Launch, HOST_FAIL, f::HOST_FS_BASE, |v, _| {
        v.set(f::HOST_FS_BASE, NONCANONICAL)
    };

    // ---- 27.2.4 address-space size ------------------------------------------------------
    /// "If the 'host address-space size' VM-exit control is 1 ... bit 5 of the CR4 field
    /// (corresponding to CR4.PAE) is 1."
    host_64bit_without_pae: Host64Pae via Launch, HOST_FAIL, f::HOST_CR4, |v, _| {
        clear_field(v, f::HOST_CR4, CR4_PAE)
    };

    // ---- 27.3.1.1 guest control registers, debug registers, MSRs: exit reason 33 --------
    /// "If the 'load debug controls' VM-entry control is 1, bits reserved in the
    /// IA32_DEBUGCTL MSR must be 0 in the field for that register" (bit 2).
    guest_debugctl_reserved: GuestDebugctlReserved via Launch, GUEST, f::GUEST_IA32_DEBUGCTL, |v, _| {
        or_field(v, f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_DEBUG_CONTROLS));
        v.set(f::GUEST_IA32_DEBUGCTL, 1 << 2)
    };
    /// "If the 'IA-32e mode guest' VM-entry control is 0, bit 17 of the CR4 field
    /// (corresponding to CR4.PCIDE) must be 0."
    guest_pcide_outside_ia32e: GuestPcideOutsideIa32e via Launch, GUEST, f::GUEST_CR4, |v, _| {
        legacy_guest(v);
        or_field(v, f::GUEST_CR4, CR4_PCIDE)
    };
    /// "The CR3 field must be such that bits 63:52 and bits in the range 51:32 beyond the
    /// processor's physical-address width must be 0."
    guest_cr3_beyond_width: GuestCr3Width via Resume, GUEST, f::GUEST_CR3, |v, _| {
        or_field(v, f::GUEST_CR3, BEYOND_MAXPHYADDR)
    };
    /// "If the 'load debug controls' VM-entry control is 1, bits 63:32 in the DR7 field
    /// must be 0."
    guest_dr7_high: GuestDr7High via Launch, GUEST, f::GUEST_DR7, |v, _| {
        or_field(v, f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_DEBUG_CONTROLS));
        v.set(f::GUEST_DR7, 0x400 | 1 << 32)
    };
    /// "The IA32_SYSENTER_ESP field and the IA32_SYSENTER_EIP field must each contain a
    /// canonical address" (ESP).
    guest_sysenter_esp: GuestSysenterEspCanonical via Launch, GUEST, f::GUEST_IA32_SYSENTER_ESP, |v, _| {
        v.set(f::GUEST_IA32_SYSENTER_ESP, NONCANONICAL)
    };
    /// The same rule for IA32_SYSENTER_EIP.
    guest_sysenter_eip: GuestSysenterEipCanonical via Resume, GUEST, f::GUEST_IA32_SYSENTER_EIP, |v, _| {
        v.set(f::GUEST_IA32_SYSENTER_EIP, NONCANONICAL)
    };
    /// "If the 'load IA32_PAT' VM-entry control is 1, the value of the field for the
    /// IA32_PAT MSR must be one that could be written by WRMSR" (type 3 is reserved).
    guest_pat_reserved_type: GuestPat via Launch, GUEST, f::GUEST_IA32_PAT, |v, _| {
        or_field(v, f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_IA32_PAT));
        v.set(f::GUEST_IA32_PAT, PAT_DEFAULT & !(0xFF << 40) | 3 << 40)
    };
    /// "If the 'load IA32_EFER' VM-entry control is 1 ... reserved bits in the field for
    /// the IA32_EFER MSR must be 0."
    guest_efer_reserved: GuestEferReserved via Launch, GUEST, f::GUEST_IA32_EFER, |v, _| {
        or_field(v, f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_IA32_EFER));
        v.set(f::GUEST_IA32_EFER, EFER_LMA | EFER_LME | 1 << 63)
    };
    /// "Bit 10 (corresponding to IA32_EFER.LMA) must equal the value of the 'IA-32e mode
    /// guest' VM-entry control."
    guest_efer_lma: GuestEferLma via Launch, GUEST, f::GUEST_IA32_EFER, |v, _| {
        or_field(v, f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_IA32_EFER));
        v.set(f::GUEST_IA32_EFER, EFER_LME)
    };
    /// "It must also be identical to bit 8 (LME) if bit 31 in the CR0 field
    /// (corresponding to CR0.PG) is 1."
    guest_efer_lme: GuestEferLme via Launch, GUEST, f::GUEST_IA32_EFER, |v, _| {
        or_field(v, f::VM_ENTRY_CONTROLS, u64::from(entry::LOAD_IA32_EFER));
        v.set(f::GUEST_IA32_EFER, EFER_LMA)
    };

    // ---- 27.3.1.2 guest segment registers: selectors -----------------------------------
    /// "TR. The TI flag (bit 2) must be 0."
    guest_tr_ti: GuestTrTi via Launch, GUEST, f::GUEST_TR_SELECTOR, |v, _| {
        v.set(f::GUEST_TR_SELECTOR, 0x48 | 4)
    };
    /// "LDTR. If LDTR is usable, the TI flag (bit 2) must be 0."
    guest_ldtr_ti: GuestLdtrTi via Launch, GUEST, f::GUEST_LDTR_SELECTOR, |v, _| {
        v.set(f::GUEST_LDTR_SELECTOR, 0x50 | 4);
        v.set(f::GUEST_LDTR_LIMIT, 0xFFFF);
        v.set(f::GUEST_LDTR_ACCESS_RIGHTS, AR_LDT)
    };
    /// "SS. If the guest will not be virtual-8086 and the 'unrestricted guest' VM-execution
    /// control is 0, the RPL (bits 1:0) must equal the RPL of the selector field for CS."
    guest_ss_rpl: GuestSsRpl via Launch, GUEST, f::GUEST_SS_SELECTOR, |v, _| {
        v.set(f::GUEST_SS_SELECTOR, 0x10 | 3)
    };

    // ---- 27.3.1.2 guest segment registers: bases -----------------------------------------
    /// "CS, SS, DS, ES, FS, GS. If the guest will be virtual-8086, the address must be the
    /// selector field shifted left 4 bits" (DS).
    guest_v86_base: GuestV86Base via Launch, GUEST, f::GUEST_DS_BASE, |v, _| {
        v86_guest(v);
        v.set(f::GUEST_DS_BASE, 0x10010)
    };
    /// "TR, FS, GS. The address must be canonical" (GS).
    guest_gs_base_noncanonical: GuestSegmentBaseCanonical via Launch, GUEST, f::GUEST_GS_BASE, |v, _| {
        v.set(f::GUEST_GS_BASE, NONCANONICAL)
    };
    /// "CS. Bits 63:32 of the address must be zero."
    guest_cs_base_high: GuestCsBaseHigh via Launch, GUEST, f::GUEST_CS_BASE, |v, _| {
        v.set(f::GUEST_CS_BASE, 1 << 32)
    };
    /// "SS, DS, ES. If the register is usable, bits 63:32 of the address must be zero"
    /// (SS).
    guest_ss_base_high: GuestSegmentBaseHigh via Launch, GUEST, f::GUEST_SS_BASE, |v, _| {
        v.set(f::GUEST_SS_BASE, 1 << 32)
    };

    // ---- 27.3.1.2 guest segment registers: virtual-8086 limits and access rights -------
    /// "If the guest will be virtual-8086, the field must be 0000FFFFH" (FS limit).
    guest_v86_limit: GuestV86Limit via Launch, GUEST, f::GUEST_FS_LIMIT, |v, _| {
        v86_guest(v);
        v.set(f::GUEST_FS_LIMIT, 0xFFFFF)
    };
    /// "If the guest will be virtual-8086, the field must be 000000F3H" (GS access
    /// rights, DPL 0).
    guest_v86_access_rights: GuestV86AccessRights via Launch, GUEST, f::GUEST_GS_ACCESS_RIGHTS, |v, _| {
        v86_guest(v);
        v.set(f::GUEST_GS_ACCESS_RIGHTS, 0x93)
    };

    // ---- 27.3.1.2 guest segment registers: access rights (not virtual-8086) ------------
    /// "SS. If SS is usable, the Type must be 3 or 7 (read/write, accessed data
    /// segment)": a read-only data segment.
    guest_ss_type: GuestSsType via Launch, GUEST, f::GUEST_SS_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_SS_ACCESS_RIGHTS, AR_DATA & !0xF | 1)
    };
    /// "DS, ES, FS, GS. ... if usable ... Bit 0 of the Type must be 1 (accessed)" (DS).
    guest_ds_not_accessed: GuestDataSegmentAccessed via Launch, GUEST, f::GUEST_DS_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_DS_ACCESS_RIGHTS, AR_DATA & !1)
    };
    /// "If bit 3 of the Type is 1 (code segment), then bit 1 of the Type must be 1
    /// (readable)": an execute-only code segment in ES.
    guest_es_execute_only_code: GuestCodeSegmentReadable via Launch, GUEST, f::GUEST_ES_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_ES_ACCESS_RIGHTS, AR_DATA & !0xF | 9)
    };
    /// "Bit 4 (S). If the register is CS or if the register is usable, S must be 1" (FS a
    /// system descriptor).
    guest_fs_system_segment: GuestSegmentS via Launch, GUEST, f::GUEST_FS_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_FS_ACCESS_RIGHTS, AR_DATA & !0x10)
    };
    /// "CS ... If the Type is 9 or 11 (non-conforming code segment), the DPL must equal
    /// the DPL in the access-rights field for SS."
    guest_cs_dpl_nonconforming: GuestCsDplNonConforming via Launch, GUEST, f::GUEST_CS_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_CS_ACCESS_RIGHTS, AR_CODE64 | 1 << 5)
    };
    /// "If the Type is 13 or 15 (conforming code segment), the DPL cannot be greater than
    /// the DPL in the access-rights field for SS."
    guest_cs_dpl_conforming: GuestCsDplConforming via Launch, GUEST, f::GUEST_CS_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_CS_ACCESS_RIGHTS, AR_CODE64 | 0xF | 3 << 5)
    };
    /// "SS. If the 'unrestricted guest' VM-execution control is 0, the DPL must equal the
    /// RPL from the selector field" (a conforming CS keeps the CS rule satisfied).
    guest_ss_dpl_not_rpl: GuestSsDplRpl via Launch, GUEST, f::GUEST_SS_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_CS_ACCESS_RIGHTS, AR_CODE64 | 0xF);
        v.set(f::GUEST_SS_ACCESS_RIGHTS, AR_DATA | 3 << 5)
    };
    /// "DS, ES, FS, GS. The DPL cannot be less than the RPL in the selector field if (1)
    /// the 'unrestricted guest' VM-execution control is 0; (2) the register is usable;
    /// and (3) the Type is in the range 0-11" (GS selector RPL 3, DPL 0).
    guest_gs_dpl_below_rpl: GuestDataSegmentDpl via Launch, GUEST, f::GUEST_GS_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_GS_SELECTOR, 0x10 | 3)
    };
    /// "Bit 7 (P). CS: must be 1. SS, DS, ES, FS, GS: if the register is usable, P must
    /// be 1" (ES).
    guest_es_not_present: GuestSegmentPresent via Launch, GUEST, f::GUEST_ES_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_ES_ACCESS_RIGHTS, AR_DATA & !0x80)
    };
    /// "Bits 11:8 (reserved). If the register is CS or if the register is usable, these
    /// bits must all be 0" (DS bit 8).
    guest_ds_ar_reserved: GuestSegmentArReserved via Launch, GUEST, f::GUEST_DS_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_DS_ACCESS_RIGHTS, AR_DATA | 1 << 8)
    };
    /// "Bit 14 (D/B). For CS, if the 'IA-32e mode guest' VM-entry control is 1 and bit 13
    /// (L) is 1, D/B must be 0."
    guest_cs_long_and_db: GuestCsLongAndDb via Launch, GUEST, f::GUEST_CS_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_CS_ACCESS_RIGHTS, AR_CODE64 | 1 << 14)
    };
    /// "Bit 15 (G). If any bit in the limit field in the range 11:0 is 0, G must be 0"
    /// (SS limit 10000000H with G = 1).
    guest_ss_granularity: GuestSegmentGranularity via Launch, GUEST, f::GUEST_SS_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_SS_LIMIT, 0x1000_0000)
    };

    // ---- 27.3.1.2 guest segment registers: TR and LDTR ---------------------------------
    /// "TR. Bit 4 (S). Must be 0."
    guest_tr_code_data: GuestTrS via Launch, GUEST, f::GUEST_TR_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_TR_ACCESS_RIGHTS, AR_TSS64 | 0x10)
    };
    /// "TR. Bit 16 (Unusable). Must be 0."
    guest_tr_unusable: GuestTrUnusable via Launch, GUEST, f::GUEST_TR_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_TR_ACCESS_RIGHTS, AR_TSS64 | 1 << 16)
    };
    /// "LDTR. If LDTR is usable ... Bits 3:0 (Type). Must be 2 (LDT)" (a data type).
    guest_ldtr_type: GuestLdtrType via Launch, GUEST, f::GUEST_LDTR_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_LDTR_LIMIT, 0xFFFF);
        v.set(f::GUEST_LDTR_ACCESS_RIGHTS, 0x83)
    };
    /// "LDTR ... Bit 4 (S). Must be 0."
    guest_ldtr_code_data: GuestLdtrS via Launch, GUEST, f::GUEST_LDTR_ACCESS_RIGHTS, |v, _| {
        v.set(f::GUEST_LDTR_LIMIT, 0xFFFF);
        v.set(f::GUEST_LDTR_ACCESS_RIGHTS, AR_LDT | 0x10)
    };

    // ---- 27.3.1.3 guest descriptor-table registers -------------------------------------
    /// "The base-address fields for GDTR and IDTR must contain canonical addresses" (IDTR).
    guest_idtr_base_noncanonical: GuestDescTableBaseCanonical via Launch, GUEST, f::GUEST_IDTR_BASE, |v, _| {
        v.set(f::GUEST_IDTR_BASE, NONCANONICAL)
    };
    /// "Bits 31:16 of each limit field must be 0" (GDTR).
    guest_gdtr_limit_high: GuestDescTableLimitHigh via Resume, GUEST, f::GUEST_GDTR_LIMIT, |v, _| {
        v.set(f::GUEST_GDTR_LIMIT, 0x1_0000)
    };

    // ---- 27.3.1.4 guest RIP and RFLAGS ---------------------------------------------------
    /// "Bits 63:32 must be 0 if the 'IA-32e mode guest' VM-entry control is 0 or if the
    /// L bit (bit 13) in the access-rights field for CS is 0" (compatibility-mode CS).
    guest_rip_high_compat_cs: GuestRipHigh via Launch, GUEST, f::GUEST_RIP, |v, _| {
        v.set(f::GUEST_CS_ACCESS_RIGHTS, 0xC09B);
        v.set(f::GUEST_RIP, 1 << 32 | L2)
    };
    /// "The VM flag (bit 17) must be 0 either if the 'IA-32e mode guest' VM-entry control
    /// is 1 or if bit 0 in the CR0 field (corresponding to CR0.PE) is 0" (v86 segments,
    /// which pass the segment checks, in an IA-32e mode guest).
    guest_rflags_vm_in_ia32e: GuestRflagsVm via Launch, GUEST, f::GUEST_RFLAGS, |v, _| {
        v86_segments(v)
    };
    /// "The IF flag (RFLAGS[bit 9]) must be 1 if the valid bit ... is 1 and the
    /// interruption type ... is external interrupt."
    guest_if_clear_for_external_interrupt: GuestRflagsIfForExtInt via Launch, GUEST, f::GUEST_RFLAGS, |v, _| {
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(EXTERNAL_INTERRUPT, 0x30, false))
    };

    // ---- 27.3.1.5 guest non-register state: activity state -----------------------------
    /// "The activity-state field must not indicate the HLT state if the DPL (bits 6:5) in
    /// the access-rights field for SS is not 0" (a CPL-3 guest).
    guest_hlt_at_cpl3: GuestActivityHltSsDpl via Launch, GUEST, f::GUEST_ACTIVITY_STATE, |v, _| {
        user_guest(v);
        v.set(f::GUEST_ACTIVITY_STATE, activity::HLT)
    };
    /// "The activity-state field must indicate the active state if the
    /// interruptibility-state field indicates blocking by either MOV-SS or by STI."
    guest_hlt_with_sti_blocking: GuestActivityBlocking via Launch, GUEST, f::GUEST_ACTIVITY_STATE, |v, _| {
        v.set(f::GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, u64::from(ib::STI));
        v.set(f::GUEST_ACTIVITY_STATE, activity::HLT)
    };
    /// "If the valid bit ... is 1, the interruption to be delivered ... must not be one
    /// that would normally be blocked while a logical processor is in the activity state":
    /// a #UD into HLT (only external interrupts, NMI, #DB, #MC and MTF end HLT).
    guest_hlt_with_injected_ud: GuestActivityInjection via Launch, GUEST, f::GUEST_ACTIVITY_STATE, |v, _| {
        v.set(f::GUEST_ACTIVITY_STATE, activity::HLT);
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(HARDWARE_EXCEPTION, 6, false))
    };

    // ---- 27.3.1.5 guest non-register state: interruptibility state ---------------------
    /// "Reserved bits 31:5 must be 0" (and bit 4 without SGX).
    guest_interruptibility_reserved: GuestInterruptibilityReserved via Launch, GUEST, f::GUEST_INTERRUPTIBILITY_STATE, |v, _| {
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, 1 << 4)
    };
    /// "Bit 0 (blocking by STI) must be 0 if the IF flag (bit 9) is 0 in the RFLAGS field."
    guest_sti_blocking_with_if_clear: GuestInterruptibilityStiIf0 via Launch, GUEST, f::GUEST_INTERRUPTIBILITY_STATE, |v, _| {
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, u64::from(ib::STI))
    };
    /// "If the interruption type ... is external interrupt, bit 0 and bit 1 must both be
    /// 0" (blocking by MOV SS).
    guest_external_interrupt_with_mov_ss: GuestInterruptibilityExtInt via Launch, GUEST, f::GUEST_INTERRUPTIBILITY_STATE, |v, _| {
        v.set(f::GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, u64::from(ib::MOV_SS));
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(EXTERNAL_INTERRUPT, 0x30, false))
    };
    /// "If the interruption type ... is NMI, bit 1 (blocking by MOV SS) must be 0."
    guest_nmi_with_mov_ss: GuestInterruptibilityNmiMovSs via Launch, GUEST, f::GUEST_INTERRUPTIBILITY_STATE, |v, _| {
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, u64::from(ib::MOV_SS));
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(NMI, 2, false))
    };
    /// "Bit 2 (blocking by SMI) must be 0 if the processor is not in SMM."
    guest_smi_blocking_outside_smm: GuestInterruptibilitySmi via Resume, GUEST, f::GUEST_INTERRUPTIBILITY_STATE, |v, _| {
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, u64::from(ib::SMI))
    };
    /// "A processor may require bit 0 (blocking by STI) to be 0 if the interruption type
    /// ... is NMI": hvsim does, with exit qualification 3.
    guest_nmi_with_sti_blocking: GuestNmiInjectionStiBlocking via Launch, GUEST_NMI_STI, f::GUEST_INTERRUPTIBILITY_STATE, |v, _| {
        v.set(f::GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, u64::from(ib::STI));
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, event(NMI, 2, false))
    };

    // ---- 27.3.1.5 guest non-register state: pending debug exceptions -------------------
    /// "Bits 11:4, bit 13, bit 15, and bits 63:17 must be 0" (bit 4).
    guest_pending_debug_reserved: GuestPendingDebugReserved via Launch, GUEST, f::GUEST_PENDING_DEBUG_EXCEPTIONS, |v, _| {
        v.set(f::GUEST_PENDING_DEBUG_EXCEPTIONS, 1 << 4)
    };
    /// "The BS bit must be 1 if the TF flag is 1 in the RFLAGS field and the BTF flag is
    /// 0 in the IA32_DEBUGCTL field" (with blocking by STI).
    guest_pending_bs_missing: GuestPendingDebugBsMissing via Launch, GUEST, f::GUEST_PENDING_DEBUG_EXCEPTIONS, |v, _| {
        v.set(f::GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_TF);
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, u64::from(ib::STI))
    };
    /// "The BS bit must be 0 if the TF flag is 0 in the RFLAGS field or the BTF flag is 1
    /// in the IA32_DEBUGCTL field" (with blocking by STI).
    guest_pending_bs_without_tf: GuestPendingDebugBsSet via Launch, GUEST, f::GUEST_PENDING_DEBUG_EXCEPTIONS, |v, _| {
        v.set(f::GUEST_RFLAGS, RFLAGS_FIXED | RFLAGS_IF);
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, u64::from(ib::STI));
        v.set(f::GUEST_PENDING_DEBUG_EXCEPTIONS, PENDING_BS)
    };

    // ---- 27.3.1.5 guest non-register state: VMCS link pointer (qualification 4) ---------
    /// "The 32 bits located in memory referenced by the value of the field (as a physical
    /// address) must contain the processor's VMCS revision identifier" (a zeroed page).
    guest_vmcs_link_revision: GuestVmcsLinkRevision via Launch, GUEST_LINK, f::VMCS_LINK_POINTER, |v, _| {
        v.set(f::VMCS_LINK_POINTER, SCRATCH)
    };
    /// "If the processor is not in SMM, the VMCS link pointer must not be the current-VMCS
    /// pointer."
    guest_vmcs_link_is_current: GuestVmcsLinkCurrent via Resume, GUEST_LINK, f::VMCS_LINK_POINTER, |v, _| {
        v.set(f::VMCS_LINK_POINTER, VMCS)
    };

    // ---- 27.3.1.6 PDPTEs (qualification 2) -----------------------------------------------
    /// "If CR0.PG = 1, CR4.PAE = 1 and IA32_EFER.LMA = 0 ... the PDPTEs referenced by CR3
    /// ... reserved bits must be 0 in each present PDPTE": a legacy PAE guest whose first
    /// PDPTE sets bit 1 (reserved in a PAE PDPTE).
    guest_pdpte_reserved_bit: GuestPdpteReserved via Launch, GUEST_PDPTE, f::GUEST_CR3, |v, m| {
        legacy_guest(v);
        m.mem.write_u64(Gpa(SCRATCH), 0x7_0000 | 0x3);
        v.set(f::GUEST_CR3, SCRATCH)
    };

    // ---- 27.4 MSR loading: exit reason 34, qualification = failing entry (1-based) -----
    /// "The value of bits 63:32 [of an entry] is not all 0" (the second entry).
    msr_load_reserved_bits: MsrLoadReserved via Launch, msr_entry(2), f::VM_ENTRY_MSR_LOAD_ADDR, |v, m| {
        msr_load_area(v, m, &[GOOD_MSR, (1 << 32 | u64::from(IA32_SYSENTER_CS), 0)])
    };
    /// "The value of bits 31:0 is C0000100H (the IA32_FS_BASE MSR) or C0000101H (the
    /// IA32_GS_BASE MSR)."
    msr_load_fs_base: MsrLoadFsGsBase via Launch, msr_entry(1), f::VM_ENTRY_MSR_LOAD_ADDR, |v, m| {
        msr_load_area(v, m, &[(0xC000_0100, 0)])
    };
    /// "The value of bits 31:8 is 000008H, meaning that the indexed MSR is one that allows
    /// access to an APIC register when the local APIC is in x2APIC mode" (the third entry).
    msr_load_x2apic: MsrLoadX2apic via Resume, msr_entry(3), f::VM_ENTRY_MSR_LOAD_ADDR, |v, m| {
        msr_load_area(v, m, &[GOOD_MSR, GOOD_MSR, (0x808, 0)])
    };
    /// "The value of bits 31:0 indicates an MSR that can be written only in
    /// system-management mode (SMM) and the VM entry did not commence in SMM"
    /// (IA32_SMM_MONITOR_CTL).
    msr_load_smm_only: MsrLoadSmmOnly via Launch, msr_entry(1), f::VM_ENTRY_MSR_LOAD_ADDR, |v, m| {
        msr_load_area(v, m, &[(0x9B, 0)])
    };
    /// "The value of bits 31:0 indicates an MSR that cannot be loaded on VM entries for
    /// model-specific reasons" (IA32_BIOS_UPDT_TRIG).
    msr_load_model_specific: MsrLoadModelSpecific via Launch, msr_entry(2), f::VM_ENTRY_MSR_LOAD_ADDR, |v, m| {
        msr_load_area(v, m, &[GOOD_MSR, (0x79, 0)])
    };
    /// "The value of bits 127:64 ... would cause a general-protection exception if
    /// executed via WRMSR with CPL = 0" (an MSR the model does not have).
    msr_load_wrmsr_would_fault: MsrLoadWrmsrFault via Resume, msr_entry(2), f::VM_ENTRY_MSR_LOAD_ADDR, |v, m| {
        msr_load_area(v, m, &[GOOD_MSR, (0x1234_5678, 0)])
    };
    /// More entries than IA32_VMX_MISC bits 27:25 recommend (512 * (N + 1)): hvsim fails
    /// the first entry beyond the maximum (the SDM leaves this model-specific), after
    /// checking the 512 valid ones before it.
    msr_load_too_many: MsrLoadTooMany via Launch, msr_entry(513), f::VM_ENTRY_MSR_LOAD_ADDR, |v, m| {
        let max = intel_capabilities().max_msr_list() as usize;
        assert_eq!(max, 512);
        msr_load_area(v, m, &vec![GOOD_MSR; max + 1])
    };

    // ---- 27.3.1 with "unrestricted guest" (and "enable EPT", which it requires) ----------
    /// "If bit 31 in the CR0 field (corresponding to PG) is 1, bit 0 in that field (PE)
    /// must also be 1" (PE and PG are exempt from the fixed bits with unrestricted guest).
    unrestricted_cr0_pg_without_pe: GuestCr0PgWithoutPe via Launch, GUEST, f::GUEST_CR0, |v, _| {
        unrestricted(v);
        clear_field(v, f::GUEST_CR0, CR0_PE)
    };
    /// "If the 'IA-32e mode guest' VM-entry control is 1, bit 31 in the CR0 field
    /// (corresponding to CR0.PG) ... must be 1."
    unrestricted_ia32e_without_pg: GuestIa32eWithoutPg via Launch, GUEST, f::GUEST_CR0, |v, _| {
        unrestricted(v);
        clear_field(v, f::GUEST_CR0, CR0_PG)
    };
    /// "If the guest will not be virtual-8086 ... CS: if the type is 3 (read/write
    /// accessed expand-up data), the DPL must be 0" (type 3 is allowed only with
    /// unrestricted guest).
    unrestricted_cs_type3_dpl: GuestCsDplType3 via Launch, GUEST, f::GUEST_CS_ACCESS_RIGHTS, |v, _| {
        unrestricted(v);
        v.set(f::GUEST_CS_ACCESS_RIGHTS, 0xA093 | 3 << 5);
        v.set(f::GUEST_SS_ACCESS_RIGHTS, AR_DATA | 3 << 5)
    };
    /// "SS: ... If the 'unrestricted guest' VM-execution control is 1 ... the DPL must be 0
    /// if the type in the access-rights field for CS is 3 or if bit 0 in the CR0 field
    /// (corresponding to CR0.PE) is 0."
    unrestricted_ss_dpl_with_cs_type3: GuestSsDplRealMode via Launch, GUEST, f::GUEST_SS_ACCESS_RIGHTS, |v, _| {
        unrestricted(v);
        v.set(f::GUEST_CS_ACCESS_RIGHTS, 0xA093);
        v.set(f::GUEST_SS_ACCESS_RIGHTS, AR_DATA | 3 << 5)
    };
}

/// "Enable VM functions" (through the secondary controls).
fn vm_functions(v: &mut Vmcs) {
    or_field(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::ACTIVATE_SECONDARY_CONTROLS));
    or_field(v, f::SECONDARY_PROC_BASED_CONTROLS, u64::from(proc2::ENABLE_VM_FUNCTIONS));
}

/// "Unrestricted guest" with "enable EPT" and a valid EPTP (write-back, 4-level walk;
/// the tables are never walked: the entry fails first).
fn unrestricted(v: &mut Vmcs) {
    or_field(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(proc::ACTIVATE_SECONDARY_CONTROLS));
    or_field(
        v,
        f::SECONDARY_PROC_BASED_CONTROLS,
        u64::from(proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST),
    );
    v.set(f::EPT_POINTER, SCRATCH | 6 | 3 << 3);
}

/// The checks the 32-bit-host tests at the end of this file fail.
const COVERED_32BIT_HOST: &[CheckId] =
    &[CheckId::HostLegacyIa32eGuest, CheckId::HostLegacyAddressSpaceSize, CheckId::Host32Pcide];

/// The checks tests/vmx.rs fails end to end (its `entry_failures!` table).
const COVERED_IN_VMX_RS: &[CheckId] = &[
    CheckId::PinControlsReserved,
    CheckId::ProcControlsReserved,
    CheckId::Proc2ControlsReserved,
    CheckId::Cr3TargetCount,
    CheckId::IoBitmapAAddress,
    CheckId::MsrBitmapAddress,
    CheckId::ExitControlsReserved,
    CheckId::EntryControlsReserved,
    CheckId::EventTypeReserved,
    CheckId::EventNmiVector,
    CheckId::HostCr0Fixed,
    CheckId::HostCr4Fixed,
    CheckId::HostSelectorRplTi,
    CheckId::HostCsNull,
    CheckId::HostTrNull,
    CheckId::HostIa32eAddressSpaceSize,
    CheckId::Host64RipCanonical,
    CheckId::GuestCr0Fixed,
    CheckId::GuestCr4Fixed,
    CheckId::GuestIa32eWithoutPae,
    CheckId::GuestCsType,
    CheckId::GuestTrType,
    CheckId::GuestRflagsReserved,
    CheckId::GuestRipCanonical,
    CheckId::GuestActivityState,
    CheckId::GuestInterruptibilityStiAndMovSs,
    CheckId::GuestVmcsLinkAddress,
];

/// Whether the Intel model lets VM entry reach a check (a predicate over what it
/// advertises), and why not when it does not.
type Reach = fn(&VmxCapabilities) -> bool;

/// The checks no end-to-end test reaches, with the reason: each needs a feature the
/// Intel model does not advertise (an earlier check, usually the allowed settings of a
/// control, fails first), or an L1 outside IA-32e mode, which the harness does not build.
/// The predicate says whether the check has become reachable.
const UNREACHABLE: &[(CheckId, &str, Reach)] = &[
    (CheckId::EptpAccessDirty, "EPT accessed/dirty flags are advertised: EPTP bit 6 is always allowed", |c| c.ept_vpid_cap & hvsim_vmx_model::capabilities::ept_vpid_cap::ACCESS_DIRTY == 0),
    (CheckId::Host32RipHigh, "outside IA-32e mode VMWRITE writes 32 bits of HOST_RIP; in IA-32e mode HostIa32eAddressSpaceSize fails first", |_| false),
];

/// The checks tests/vmx_controls.rs and tests/vmx_ept.rs fail end to end (with the
/// execution controls and EPT features those files are about).
const COVERED_IN_CONTROL_AND_EPT_TESTS: &[CheckId] = &[
    CheckId::TprThresholdAboveVtpr,
    CheckId::VirtualNmisWithoutNmiExiting,
    CheckId::NmiWindowWithoutVirtualNmis,
    CheckId::SavePreemptionTimerWithoutTimer,
    CheckId::GuestInterruptibilityVirtualNmi,
    CheckId::EptpMemoryType,
    CheckId::EptpWalkLength,
    CheckId::EptpReserved,
    CheckId::VpidZero,
    CheckId::UnrestrictedGuestWithoutEpt,
];

/// Every check of `vmx_model::entry_checks::CHECKS` is either failed end to end once (in
/// this file or tests/vmx.rs, never twice) or listed as unreachable with its reason, and
/// what makes it unreachable still holds for the Intel model.
#[test]
fn every_check_is_covered_or_unreachable() {
    use hvsim_vmx_model::entry_checks::CHECKS;
    use std::collections::BTreeSet;
    let here: BTreeSet<CheckId> = COVERED_HERE.iter().chain(COVERED_32BIT_HOST).copied().collect();
    assert_eq!(
        here.len(),
        COVERED_HERE.len() + COVERED_32BIT_HOST.len(),
        "a check is tested twice in this file"
    );
    let vmx_rs: BTreeSet<CheckId> =
        COVERED_IN_VMX_RS.iter().chain(COVERED_IN_CONTROL_AND_EPT_TESTS).copied().collect();
    assert!(here.is_disjoint(&vmx_rs), "{:?}", here.intersection(&vmx_rs).collect::<Vec<_>>());
    assert!(here.len() >= 40, "{} checks", here.len());
    assert!(here.len() + vmx_rs.len() >= 60);
    let caps = intel_capabilities();
    let mut all: BTreeSet<CheckId> = here.union(&vmx_rs).copied().collect();
    for (check, why, reachable) in UNREACHABLE {
        assert!(!reachable(&caps), "{check:?} is reachable now ({why}): add a test for it");
        assert!(all.insert(*check), "{check:?} is both tested and listed as unreachable");
    }
    let missing: Vec<_> = CHECKS.iter().map(|c| c.id).filter(|id| !all.contains(id)).collect();
    assert!(missing.is_empty(), "checks neither tested nor listed: {missing:?}");
}

// ---- Property tests: random guest CR0/CR4 and RFLAGS --------------------------------------

/// Launches the baseline with `edit` applied; returns the check that failed, or `None`
/// if VM entry succeeded (whatever L2 then does with its odd CR0/CR4/RFLAGS).
fn launch_outcome(edit: impl FnOnce(&mut Vmcs)) -> Option<CheckId> {
    let mut m = setup(l2_count_and_vmcall, edit);
    m.run(Some(10_000));
    let failure = m.nested.vmx.last_entry_failure.map(|e| e.check);
    assert_eq!(m.nested.vmx.entries, u64::from(failure.is_none()));
    failure
}

/// A value respects IA32_VMX_CRn_FIXED0/FIXED1 (SDM Vol. 3D A.7 "VMX-Fixed Bits in
/// CR0", A.8 "VMX-Fixed Bits in CR4": "if bit X is 1 in IA32_VMX_CR0_FIXED0, then that bit
/// of CR0 is fixed to 1 in VMX operation ... if bit X is 0 in IA32_VMX_CR0_FIXED1, then
/// that bit of CR0 is fixed to 0").
fn fixed_ok(value: u64, fixed0_msr: u32, fixed1_msr: u32) -> bool {
    let caps = intel_capabilities();
    let fixed0 = caps.msr(fixed0_msr).expect("FIXED0 MSR");
    let fixed1 = caps.msr(fixed1_msr).expect("FIXED1 MSR");
    value & fixed0 == fixed0 && value & !fixed1 == 0
}

/// Random CR values: half of them built to respect the fixed bits (required bits set, a
/// random subset of the allowed ones), half arbitrary.
fn cr_values(fixed0_msr: u32, fixed1_msr: u32) -> impl Strategy<Value = u64> {
    let caps = intel_capabilities();
    let fixed0 = caps.msr(fixed0_msr).expect("FIXED0 MSR");
    let fixed1 = caps.msr(fixed1_msr).expect("FIXED1 MSR");
    prop_oneof![any::<u64>().prop_map(move |r| fixed0 | (r & fixed1)), any::<u64>()]
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// SDM Vol. 3C 27.3.1.1: guest CR0 and CR4 through the fixed bits. VM entry
    /// succeeds iff CR0 respects IA32_VMX_CR0_FIXED0/1, CR4 respects
    /// IA32_VMX_CR4_FIXED0/1 and (IA-32e mode guest) CR4.PAE = 1 (CR0.PG and CR0.PE are
    /// required by FIXED0); otherwise hvsim names the first of those checks.
    #[test]
    fn guest_cr0_cr4_fixed_bits(
        guest_cr0 in cr_values(vmx_msr::IA32_VMX_CR0_FIXED0, vmx_msr::IA32_VMX_CR0_FIXED1),
        guest_cr4 in cr_values(vmx_msr::IA32_VMX_CR4_FIXED0, vmx_msr::IA32_VMX_CR4_FIXED1),
    ) {
        let want = if !fixed_ok(guest_cr0, vmx_msr::IA32_VMX_CR0_FIXED0, vmx_msr::IA32_VMX_CR0_FIXED1) {
            Some(CheckId::GuestCr0Fixed)
        } else if !fixed_ok(guest_cr4, vmx_msr::IA32_VMX_CR4_FIXED0, vmx_msr::IA32_VMX_CR4_FIXED1) {
            Some(CheckId::GuestCr4Fixed)
        } else if guest_cr4 & CR4_PAE == 0 {
            Some(CheckId::GuestIa32eWithoutPae)
        } else {
            None
        };
        let got = launch_outcome(|v| {
            v.set(f::GUEST_CR0, guest_cr0);
            v.set(f::GUEST_CR4, guest_cr4);
        });
        prop_assert_eq!(got, want, "CR0 {:#x} CR4 {:#x}", guest_cr0, guest_cr4);
    }

    /// SDM Vol. 3C 27.3.1.4: guest RFLAGS (VM kept 0, so the virtual-8086 segment rules
    /// stay out of play). VM entry succeeds iff bits 63:22, 15, 5 and 3 are 0 and bit 1
    /// is 1.
    #[test]
    fn guest_rflags_reserved_bits(
        rflags in prop_oneof![
            any::<u64>().prop_map(|r| r & 0x3F_7FD7 | RFLAGS_FIXED),
            any::<u64>(),
        ].prop_map(|r| r & !RFLAGS_VM),
    ) {
        let reserved_ok = rflags & (!0x3F_FFFFu64 | 1 << 15 | 1 << 5 | 1 << 3) == 0;
        let want = (!(reserved_ok && rflags & RFLAGS_FIXED != 0))
            .then_some(CheckId::GuestRflagsReserved);
        let got = launch_outcome(|v| {
            v.set(f::GUEST_RFLAGS, rflags);
        });
        prop_assert_eq!(got, want, "RFLAGS {:#x}", rflags);
    }
}

// ---- A host outside IA-32e mode (27.2.4) ----------------------------------------------------

/// The 32-bit L1's page directory: 4-MByte pages identity-mapping 4 GiB.
const PD32: u64 = 0x70000;
/// The 32-bit L1's (encoding, value) table: dwords.
const TABLE32: u64 = 0x34000;
const CR0_PE: u64 = 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_PG: u64 = 1 << 31;
const CR4_PSE: u64 = 1 << 4;
const CR4_VMXE: u64 = 1 << 13;
/// CR0 and CR4 of the 32-bit L1 (and its guest): paging with 4-MByte pages, no PAE.
const CR0_32: u64 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
const CR4_32: u64 = CR4_PSE | CR4_VMXE;
/// The 32-bit harness code segment (harness GDT 0x18) in VMCS access-rights format.
const AR_CODE32: u64 = 0xC09B;

/// Assembles 32-bit code.
fn asm32(at: u64, f: impl FnOnce(Asm) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    f(&mut a).unwrap();
    a.assemble(at).unwrap()
}

/// The 32-bit L1: paging (CR3 = PD32, CR4.PSE), CR0.NE, CR4.VMXE, IA32_FEATURE_CONTROL,
/// VMXON/VMCLEAR/VMPTRLD, VMWRITEs from TABLE32 (32-bit operands: a 64-bit field takes a
/// FULL and a HIGH write), VMLAUNCH; a failure records RFLAGS (EDI), the VM-instruction
/// error (EDX) and FAIL_MARK (EBP). ECX counts L2 runs.
fn l1_32bit(a: Asm) -> Result<(), IcedError> {
    let mut lp = a.create_label();
    let mut done = a.create_label();
    a.mov(eax, PD32 as u32)?;
    a.mov(cr3, eax)?;
    a.mov(eax, cr4)?;
    a.or(eax, CR4_32 as i32)?;
    a.mov(cr4, eax)?;
    a.mov(eax, cr0)?;
    a.or(eax, CR0_32 as u32 as i32)?;
    a.mov(cr0, eax)?;
    a.mov(ecx, vmx_msr::IA32_FEATURE_CONTROL)?;
    a.mov(eax, 5)?;
    a.xor(edx, edx)?;
    a.wrmsr()?;
    a.vmxon(qword_ptr(PTRS as u32))?;
    a.vmclear(qword_ptr(PTRS as u32 + 8))?;
    a.vmptrld(qword_ptr(PTRS as u32 + 8))?;
    a.mov(esi, TABLE32 as u32)?;
    a.set_label(&mut lp)?;
    a.mov(eax, dword_ptr(esi))?;
    a.cmp(eax, -1)?;
    a.je(done)?;
    a.mov(ebx, dword_ptr(esi + 4))?;
    a.vmwrite(eax, ebx)?;
    a.add(esi, 8)?;
    a.jmp(lp)?;
    a.set_label(&mut done)?;
    a.xor(ecx, ecx)?;
    a.vmlaunch()?;
    a.pushfd()?;
    a.pop(edi)?;
    a.mov(eax, f::VM_INSTRUCTION_ERROR)?;
    a.vmread(edx, eax)?;
    a.mov(ebp, FAIL_MARK as u32)?;
    a.hlt()
}

/// The 32-bit host's exit handler: EXIT_REASON into EDX, EXIT_MARK into EBP.
fn host_32bit(a: Asm) -> Result<(), IcedError> {
    a.mov(eax, f::EXIT_REASON)?;
    a.vmread(edx, eax)?;
    a.mov(ebp, EXIT_MARK as u32)?;
    a.hlt()
}

/// A 32-bit L1 in protected mode with paging (IA32_EFER.LMA = 0) and a VMCS for a
/// 32-bit host and a 32-bit guest, with `edit` applied.
fn setup_32bit_host(edit: impl FnOnce(&mut Vmcs)) -> Machine {
    let mut m = intel_machine();
    for i in 0..1024u64 {
        // P, R/W, PS: a 4-MByte page at i * 4 MiB.
        m.mem.write_u32(Gpa(PD32 + 4 * i), ((i << 22) | 0x83) as u32);
    }
    m.load(L1, &asm32(L1, l1_32bit)).unwrap();
    m.load(HOST, &asm32(HOST, host_32bit)).unwrap();
    m.load(
        L2,
        &asm32(L2, |a| {
            a.inc(ecx)?;
            a.vmcall()
        }),
    )
    .unwrap();
    m.enter_mode(GuestMode::Protected32, L1, L1_STACK).unwrap();
    m.mem.write_u64(Gpa(PTRS), VMXON_REGION);
    m.mem.write_u64(Gpa(PTRS + 8), VMCS);
    m.mem.write_u32(Gpa(VMXON_REGION), REVISION);
    m.mem.write_u32(Gpa(VMCS), REVISION);
    let mut v = baseline(&m);
    clear_field(&mut v, f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::HOST_ADDRESS_SPACE_SIZE));
    clear_field(&mut v, f::VM_ENTRY_CONTROLS, u64::from(entry::IA32E_MODE_GUEST));
    for (h, g, val) in [
        (f::HOST_CR0, f::GUEST_CR0, CR0_32),
        (f::HOST_CR3, f::GUEST_CR3, PD32),
        (f::HOST_CR4, f::GUEST_CR4, CR4_32),
    ] {
        v.set(h, val);
        v.set(g, val);
    }
    v.set(f::HOST_CS_SELECTOR, 0x18);
    v.set(f::GUEST_CS_SELECTOR, 0x18);
    v.set(f::GUEST_CS_ACCESS_RIGHTS, AR_CODE32);
    edit(&mut v);
    // 32-bit VMWRITEs: FULL then, for a 64-bit field with high bits, HIGH (SDM Vol. 3C
    // 25.11.2: access type 1 names bits 63:32).
    let caps = intel_capabilities();
    let mut at = TABLE32;
    let mut put = |m: &mut Machine, enc: u32, val: u32| {
        m.mem.write_u32(Gpa(at), enc);
        m.mem.write_u32(Gpa(at + 4), val);
        at += 8;
    };
    for (info, value) in v.fields() {
        if value == 0 || !caps.field_supported(info) {
            continue;
        }
        put(&mut m, info.encoding, value as u32);
        if value >> 32 != 0 {
            assert_eq!(
                info.width,
                hvsim_vmx_model::vmcs_fields::FieldWidth::Bits64,
                "{}",
                info.name
            );
            put(&mut m, info.encoding | 1, (value >> 32) as u32);
        }
    }
    put(&mut m, u32::MAX, 0);
    m
}

/// SDM Vol. 3C 27.2.4: the reference for the 32-bit-host checks. From protected mode
/// with paging, VMLAUNCH enters a 32-bit guest, whose VMCALL exits to the 32-bit host
/// (host address-space size 0: IA32_EFER.LMA stays 0, CS 0x18 is 32-bit code).
#[test]
fn host_outside_ia32e_mode_round_trip() {
    let mut m = setup_32bit_host(|_| {});
    run(&mut m);
    assert_eq!(m.cpu.gpr[5], EXIT_MARK, "no VM exit: error {}", m.cpu.gpr[2]);
    assert_eq!(m.cpu.gpr[2], 18);
    assert_eq!(m.cpu.gpr[1], 1, "L2 ran once");
    assert_eq!(m.cpu.efer & EFER_LMA, 0);
    assert_eq!(m.cpu.seg[1].selector, 0x18);
    assert!(m.nested.vmx.last_entry_failure.is_none());
}

/// Expects the 32-bit host's VMLAUNCH to fail `check` with VMfailValid(8).
fn expect_32bit_host_failure(check: CheckId, field: u32, edit: impl FnOnce(&mut Vmcs)) {
    let mut m = setup_32bit_host(edit);
    run(&mut m);
    let failure =
        m.nested.vmx.last_entry_failure.unwrap_or_else(|| panic!("{check:?}: entry did not fail"));
    assert_eq!(failure.check, check, "{}", failure.describe());
    assert_eq!(failure.field, Some(field), "{}", failure.describe());
    assert_eq!(failure.form, FailureForm::VmFailValid(VmInstructionError(8)));
    assert_eq!(m.cpu.gpr[5], FAIL_MARK, "{check:?}: no VMfail");
    assert_eq!(m.cpu.gpr[7] & (CF | ZF), ZF, "{check:?}: VMfailValid");
    assert_eq!(m.cpu.gpr[2], 8, "{check:?}: VM-instruction error");
    assert_eq!(m.cpu.gpr[1], 0, "{check:?}: L2 ran");
    assert_eq!(m.nested.vmx.entries, 0);
}

/// "If the logical processor is outside IA-32e mode (if IA32_EFER.LMA = 0) at the time
/// of VM entry ... the 'IA-32e mode guest' VM-entry control must be 0."
#[test]
fn host_legacy_ia32e_guest() {
    expect_32bit_host_failure(CheckId::HostLegacyIa32eGuest, f::VM_ENTRY_CONTROLS, |v| {
        or_field(v, f::VM_ENTRY_CONTROLS, u64::from(entry::IA32E_MODE_GUEST))
    });
}

/// "... the 'host address-space size' VM-exit control must be 0."
#[test]
fn host_legacy_address_space_size() {
    expect_32bit_host_failure(
        CheckId::HostLegacyAddressSpaceSize,
        f::PRIMARY_VM_EXIT_CONTROLS,
        |v| or_field(v, f::PRIMARY_VM_EXIT_CONTROLS, u64::from(exit::HOST_ADDRESS_SPACE_SIZE)),
    );
}

/// "If the 'host address-space size' VM-exit control is 0 ... Bit 17 of the CR4 field
/// (corresponding to CR4.PCIDE) must be 0."
#[test]
fn host_32bit_pcide() {
    expect_32bit_host_failure(CheckId::Host32Pcide, f::HOST_CR4, |v| {
        or_field(v, f::HOST_CR4, CR4_PCIDE)
    });
}
