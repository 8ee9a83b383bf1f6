//! `hvsim explain`: each answer comes from the models' tables and names the manual's
//! section; unknown keys are a usage error (status 2), never a panic.

use std::process::Command;

fn explain(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hvsim"))
        .arg("explain")
        .args(args)
        .output()
        .expect("run hvsim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str], needles: &[&str]) {
    let (status, out, err) = explain(args);
    assert_eq!(status, 0, "{args:?}: {err}");
    for n in needles {
        assert!(out.contains(n), "{args:?}: {n:?} missing from\n{out}");
    }
}

#[test]
fn svm_exit_codes_with_exitinfo_and_intercept() {
    // APM Vol. 2 Appendix C: 0x7B is VMEXIT_IOIO, produced by the IOIO_PROT intercept.
    ok(&["svm-exit", "0x7b"], &["VMEXIT_IOIO", "EXITINFO1", "bits 31:16 port", "Appendix C"]);
    ok(&["svm-exit", "-1"], &["VMEXIT_INVALID", "0xffffffffffffffff"]);
    ok(&["svm-exit", "vmmcall"], &["VMEXIT_VMMCALL", "0x81"]);
}

#[test]
fn vmx_exit_reasons_and_exit_reason_flags() {
    ok(&["vmx-exit", "48"], &["EPT_VIOLATION", "bit 7 guest-linear address valid", "Appendix C"]);
    // An exit-reason field with bit 31: a VM-entry failure due to invalid guest state.
    ok(&["vmx-exit", "0x80000021"], &["ENTRY_FAIL_GUEST_STATE", "bit 31 ENTRY_FAILURE"]);
}

#[test]
fn vmcs_fields_by_encoding_and_name() {
    ok(&["vmcs", "0x681e"], &["GUEST_RIP", "type Guest", "width Natural", "B.4.3"]);
    ok(&["vmcs", "GUEST_RIP"], &["0x681e"]);
    // The HIGH access of a 64-bit field (encoding bit 0 = 1), gated on its control.
    ok(&["vmcs", "0x2001"], &["IO_BITMAP_A (HIGH half)", "access type 1", "USE_IO_BITMAPS"]);
}

#[test]
fn vmcb_offsets_with_their_bit_fields() {
    ok(&["vmcb", "0x070"], &["EXITCODE", "Control area", "Appendix B"]);
    ok(&["vmcb", "0x060"], &["V_INTR_CONTROL", "bit 8      V_IRQ", "bit 24     V_INTR_MASKING"]);
    // An offset inside a field names the field.
    ok(&["vmcb", "0x073"], &["0x070-0x077 EXITCODE"]);
}

#[test]
fn vm_instruction_errors_and_msrs() {
    ok(&["vm-instruction-error", "7"], &["invalid control field"]);
    ok(&["msr", "0x480"], &["IA32_VMX_BASIC", "Appendix A.1"]);
    ok(&["msr", "VM_HSAVE_PA"], &["0xc0010117", "15.30"]);
    ok(&["msr", "0xC0000080"], &["EFER", "hvsim: present"]);
}

#[test]
fn tables_list_without_a_key() {
    let (status, out, _) = explain(&["vmcs"]);
    assert_eq!(status, 0);
    assert!(out.lines().count() > 150, "{out}");
    assert!(out.contains("GUEST_RIP"));
}

#[test]
fn unknown_keys_are_usage_errors() {
    for args in [
        &["msr", "0x12345"][..],
        &["vmcs", "0x9999"],
        &["svm-exit", "0x7777"],
        &["vmx-exit", "zzz"],
    ] {
        let (status, out, err) = explain(args);
        assert_eq!(status, 2, "{args:?}: {out}{err}");
        assert!(err.contains("is not"), "{args:?}: {err}");
    }
    let (status, _, _) = explain(&["no-such-topic", "1"]);
    assert_eq!(status, 2);
}

/// The VMRUN consistency checks (APM Vol. 2 §15.5.1, svm-model's `vmrun_checks::CHECKS`)
/// and the VM-entry checks (SDM Vol. 3C chapter 27, vmx-model's `entry_checks::CHECKS`),
/// by name or by position in the list.
#[test]
fn vmrun_and_vm_entry_checks() {
    ok(&["vmrun-check", "AsidZero"], &["AsidZero", "ASID is zero", "15.5.1", "VMEXIT_INVALID"]);
    ok(&["vmrun-check", "nestedcr3mbz"], &["NestedCr3Mbz", "nCR3", "15.25.3"]);
    ok(&["vmrun-check", "0"], &["VMRUN check 0 EferSvmeClear"]);
    let (status, out, _) = explain(&["vmrun-check"]);
    assert_eq!(status, 0);
    assert!(out.contains("AsidZero") && out.contains("NestedPagingUnsupported"), "{out}");
    ok(&["vm-entry-check", "VpidZero"], &["VpidZero", "27.2.1.1", "VMfailValid(7)"]);
    let (status, out, _) = explain(&["vm-entry-check"]);
    assert_eq!(status, 0);
    assert!(out.lines().count() > 20 && out.contains("PinControlsReserved"), "{out}");
    for args in [&["vmrun-check", "NoSuchCheck"][..], &["vm-entry-check", "100000"]] {
        let (status, _, err) = explain(args);
        assert_eq!(status, 2, "{args:?}: {err}");
    }
}
