//! `--trace nested`: one JSON record per VMRUN, #VMEXIT, VM entry, VM-entry failure and VM
//! exit, parsed back with serde_json and checked field by field (issue 8, "Traces"), and
//! the run's log of failed entries.

use hvsim::nested::svm::state::save_world;
use hvsim::trace::{capture, Category, Format, TraceConfig};
use hvsim_svm_model::intercept as icpt;
use hvsim_svm_model::io_intercept;
use hvsim_svm_model::msr as svm_msr;
use hvsim_svm_model::{vmcb, SvmExitCode, VmcbImage, VmcbRead};
use serde_json::Value;

#[path = "support/vmx_l1.rs"]
mod vmx_l1;

#[path = "support/svm_l1.rs"]
mod svm_l1;

use vmx_l1::*;

/// Runs `m` with the `nested` category on and returns its JSON records.
fn nested_records(m: &mut Machine) -> Vec<Value> {
    m.set_trace(TraceConfig::new(&[Category::Nested], 0, u64::MAX));
    let (r, out) = capture(Format::Json, || m.run(Some(100_000)));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}\n{out}");
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn events<'a>(records: &'a [Value], event: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["event"] == event).collect()
}

/// Every record names its category and the transition the same way.
fn check_common(r: &Value, from: u64, to: u64) {
    assert_eq!(r["target"], "hvsim::nested", "{r}");
    assert_eq!(r["vcpu"], 0, "{r}");
    assert!(r["insn"].is_u64(), "{r}");
    assert_eq!((r["from_level"].as_u64(), r["to_level"].as_u64()), (Some(from), Some(to)), "{r}");
    assert!(r["message"].as_str().is_some_and(|m| m.starts_with(&format!("L{from} -> L{to}: "))));
}

// ---- SVM ----------------------------------------------------------------------------------

/// An AMD machine whose L1 runs the VMCB twice: L2 executes `nop; out 0x80, al; out 0x80,
/// al` with port 0x80 intercepted; between the runs L1 moves the VMCB's RIP to NRIP
/// (EXITINFO2 of the IOIO exit, APM §15.10.2).
fn svm_ioio_machine() -> Machine {
    use svm_l1::{asm, enable_svm, IOPM, L1, L1_STACK, L2, L2_STACK, MSRPM, VMCB};
    let cfg = MachineConfig { vendor: hvsim::Vendor::Amd, ..MachineConfig::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.set_exception_catch(CATCH_ALL);
    let l1 = asm(L1, |a| {
        enable_svm(a)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.mov(rbx, qword_ptr(VMCB + u64::from(vmcb::EXITINFO2)))?;
        a.mov(qword_ptr(VMCB + u64::from(vmcb::RIP)), rbx)?;
        a.mov(rax, VMCB)?;
        a.vmrun()?;
        a.hlt()
    });
    m.load(L1, &l1).unwrap();
    m.enter_mode(GuestMode::Long64, L1, L1_STACK).unwrap();
    let l2 = asm(L2, |a| {
        a.nop()?;
        a.out(0x80, al)?;
        a.out(0x80, al)
    });
    m.load(L2, &l2).unwrap();
    let mut img = VmcbImage::zeroed();
    save_world(&m, &mut img, L2);
    img.set_u64(vmcb::EFER, m.cpu.efer | svm_msr::EFER_SVME);
    img.set_u64(vmcb::RSP, L2_STACK);
    img.set_u64(vmcb::RFLAGS, 2);
    img.write(vmcb::GUEST_ASID, 4, 1);
    let word = |i: icpt::Intercept| (i.word, u64::from(i.mask()));
    let (w, v) = word(icpt::INTERCEPT_VMRUN);
    img.write(w, 4, v);
    let (w, v) = word(icpt::INTERCEPT_IOIO_PROT);
    img.write(w, 4, img.read(w, 4) | v);
    img.set_u64(vmcb::MSRPM_BASE_PA, MSRPM);
    img.set_u64(vmcb::IOPM_BASE_PA, IOPM);
    m.load(VMCB, img.as_bytes()).unwrap();
    m.mem.write_u8(Gpa(IOPM + 0x10), 1); // port 0x80
    m
}

/// APM Vol. 2 §15.5 "VMRUN Instruction", §15.6 "#VMEXIT", §15.10 "I/O Intercepts": the
/// VMRUN and #VMEXIT records of an IOIO intercept, with the exit code by name, EXITINFO1
/// decoded (port, size, direction) and the guest state changed between the two VMRUNs.
#[test]
fn svm_vmrun_and_ioio_vmexit_records() {
    use svm_l1::{L2, VMCB};
    let mut m = svm_ioio_machine();
    let records = nested_records(&mut m);
    let runs = events(&records, "vmrun");
    let exits = events(&records, "vmexit");
    assert_eq!((runs.len(), exits.len()), (2, 2), "{records:#?}");

    let run = runs[0];
    check_common(run, 1, 2);
    assert_eq!(run["vmcb"], VMCB);
    assert_eq!(run["guest_rip"], L2);
    assert_eq!(run["asid"], 1);
    let changed = run["changed"].as_str().unwrap();
    assert!(changed.starts_with(&format!("rip={L2:#x}, rsp=0x2f000, ")), "{changed}");

    let exit = exits[0];
    check_common(exit, 2, 1);
    assert_eq!(exit["exit_name"], "VMEXIT_IOIO");
    assert_eq!(exit["exit_code"], SvmExitCode::IOIO.0);
    assert_eq!(exit["port"], 0x80);
    assert_eq!(exit["size"], 1);
    assert_eq!(exit["dir"], "out");
    assert_eq!(exit["string"], false);
    assert_eq!(exit["rep"], false);
    assert_eq!(exit["guest_rip"], L2 + 1);
    assert_eq!(exit["exitinfo2"], L2 + 3);
    assert_eq!(exit["exitinfo1"], 0x0080_0000 | io_intercept::SZ8 | io_intercept::A64);
    assert!(exit["detail"].as_str().unwrap().starts_with("OUT to port 0x80, 1 byte"), "{exit}");
    assert!(exit.get("cr").is_none() && exit.get("gpa").is_none(), "undecoded fields absent");
    // The clock is exact: L1 retired 9 instructions before VMRUN (enable_svm's 8 and
    // MOV RAX); L2 retired VMRUN and its NOP before the OUT exited.
    assert_eq!(run["insn"], 9);
    assert_eq!(exit["insn"], 11);

    // The second VMRUN resumes at NRIP; L1 used RBX, which VMRUN does not load (§15.5.1:
    // only RAX, RSP, RIP and RFLAGS of the GPRs are in the VMCB), so L2 sees it changed.
    assert_eq!(runs[1]["changed"], format!("rip {L2:#x} -> {0:#x}, rbx 0x0 -> {0:#x}", L2 + 3));
    assert_eq!(exits[1]["guest_rip"], L2 + 3);
}

/// APM Vol. 2 §15.5.1 "Basic Operation": a VMRUN with ASID 0 fails its consistency
/// checks; the record names the check, the section and the field, and the run's log
/// keeps it.
#[test]
fn svm_vmrun_failure_record_and_log() {
    use svm_l1::VMCB;
    let mut m = svm_ioio_machine();
    m.mem.write_u32(Gpa(VMCB + u64::from(vmcb::GUEST_ASID)), 0);
    let records = nested_records(&mut m);
    let failed = events(&records, "vmrun_failed");
    assert_eq!(failed.len(), 2, "{records:#?}");
    let f = failed[0];
    check_common(f, 1, 1);
    assert_eq!(f["exit_name"], "VMEXIT_INVALID");
    assert_eq!(f["check"], "AsidZero");
    assert_eq!(f["field"], vmcb::GUEST_ASID);
    assert_eq!(f["value"], 0);
    assert!(f["section"].as_str().unwrap().contains("15.5"), "{f}");
    let log = m.nested_log();
    assert_eq!(log.failure_count(), 2);
    assert_eq!(log.failures()[0].check.name(), "AsidZero");
    assert_eq!(log.failures()[0].instruction, "VMRUN");
    assert!(log.failures()[0].insn < log.failures()[1].insn);
}

// ---- VMX ----------------------------------------------------------------------------------

/// SDM Vol. 3C 27 "VM Entries", 26.1.2 (CPUID exits unconditionally), 28.2 "Recording
/// VM-Exit Information": the VM-entry and VM-exit records of a CPUID exit.
#[test]
fn vmx_entry_and_cpuid_exit_records() {
    let mut m = setup(|a| a.cpuid(), |_| {});
    let records = nested_records(&mut m);
    assert_eq!(m.cpu.gpr[13], 10, "the CPUID exit happened");
    let entries = events(&records, "vm_entry");
    let exits = events(&records, "vm_exit");
    assert_eq!((entries.len(), exits.len()), (1, 1), "{records:#?}");

    let e = entries[0];
    check_common(e, 1, 2);
    assert_eq!(e["vmcs"], VMCS);
    assert_eq!(e["instruction"], "VMLAUNCH");
    assert_eq!(e["guest_rip"], L2);
    assert!(e["changed"].as_str().unwrap().contains(&format!("rip={L2:#x}")));
    assert_eq!(e["inject"], "");

    let x = exits[0];
    check_common(x, 2, 1);
    assert_eq!(x["exit_reason"], 10);
    assert_eq!(x["exit_name"], "CPUID");
    assert_eq!(x["qualification"], 0);
    assert_eq!(x["guest_rip"], L2);
    assert!(x["detail"].as_str().unwrap().starts_with("CPUID leaf"), "{x}");
    assert!(x["message"].as_str().unwrap().contains("VM exit CPUID (10)"), "{x}");
}

/// SDM Vol. 3C 27.3.1.1 "Checks on Guest Control Registers, Debug Registers, and MSRs"
/// and 27.8 "VM-Entry Failures During or After Loading Guest State": a guest CR0
/// without NE fails with exit reason 33 | bit 31; the record names the check.
#[test]
fn vmx_entry_failure_record_names_the_check() {
    let mut m = setup(l2_hlt, |v| {
        let c = v.get(f::GUEST_CR0);
        v.set(f::GUEST_CR0, c & !0x20);
    });
    let records = nested_records(&mut m);
    let failed = events(&records, "vm_entry_failed");
    assert_eq!(failed.len(), 1, "{records:#?}");
    let r = failed[0];
    check_common(r, 1, 1);
    assert_eq!(r["vmcs"], VMCS);
    assert_eq!(r["instruction"], "VMLAUNCH");
    assert_eq!(r["check"], "GuestCr0Fixed");
    assert!(r["section"].as_str().unwrap().starts_with("SDM Vol. 3C 27.3.1.1"), "{r}");
    assert_eq!(r["exit_reason"], 0x8000_0021u64);
    assert_eq!(r["exit_name"], "ENTRY_FAIL_GUEST_STATE");
    assert!(r.get("vm_instruction_error").is_none());
    assert!(r["outcome"].as_str().unwrap().starts_with("VM-entry failure: exit reason 33"));
    assert!(events(&records, "vm_entry").is_empty());
    assert_eq!(m.nested_log().failures()[0].check.name(), "GuestCr0Fixed");
}

/// SDM Vol. 3C 27.2.1.1 "VM-Execution Control Fields": a control check fails with
/// VMfailValid(7); the record carries the VM-instruction error instead of an exit reason.
#[test]
fn vmx_control_failure_record_has_the_error_number() {
    let mut m = setup(l2_hlt, |v| {
        v.set(f::CR3_TARGET_COUNT, 5);
    });
    let records = nested_records(&mut m);
    let r = events(&records, "vm_entry_failed")[0];
    assert_eq!(r["check"], "Cr3TargetCount");
    assert_eq!(r["vm_instruction_error"], 7);
    assert!(r.get("exit_reason").is_none());
    assert_eq!(r["outcome"], "VMfailValid(7)");
}

/// Without the `nested` category nothing is recorded, but failed entries are still
/// logged for the run report.
#[test]
fn failures_are_logged_without_tracing() {
    let mut m = setup(l2_hlt, |v| {
        v.set(f::CR3_TARGET_COUNT, 5);
    });
    let (_, out) = capture(Format::Json, || m.run(Some(100_000)));
    assert!(out.is_empty(), "{out}");
    assert_eq!(m.nested_log().failure_count(), 1);
}

/// SDM Vol. 3C 27.8: `--explain`'s paragraphs for a VMX guest-state failure name the
/// check, the exit reason 33 form, and the last exit's bit 31.
#[test]
fn vmx_explain_paragraphs() {
    use hvsim::trace::nested::NestedExit;
    let mut m = setup(l2_hlt, |v| {
        let c = v.get(f::GUEST_CR0);
        v.set(f::GUEST_CR0, c & !0x20);
    });
    run(&mut m);
    let log = m.nested_log();
    let p = hvsim::explain::failed_check_paragraph(&log.failures()[0].check);
    assert!(p.contains("The check that failed is GuestCr0Fixed (SDM Vol. 3C 27.3.1.1"), "{p}");
    assert!(p.contains("exit reason 33"), "{p}");
    assert!(p.contains("hvsim explain vm-entry-check GuestCr0Fixed"), "{p}");
    assert_eq!(log.last_exit(), Some(NestedExit::Vmx(0x8000_0021)));
    let x = hvsim::explain::exit_paragraph(NestedExit::Vmx(0x8000_0021));
    assert!(x.contains("basic exit reason 33 (ENTRY_FAIL_GUEST_STATE)"), "{x}");
    assert!(x.contains("Bit 31"), "{x}");
}

/// SDM Vol. 3C 27.1 "Basic VM-Entry Checks": VMRESUME of a VMCS whose launch state is
/// clear fails with VMfailValid(5) before any other check; the record and the log name
/// the error.
#[test]
fn vmx_basic_entry_check_failure_is_recorded() {
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
    let records = nested_records(&mut m);
    assert_eq!(m.cpu.gpr[13], 5, "VMfailValid(5)");
    let r = events(&records, "vm_entry_failed")[0];
    check_common(r, 1, 1);
    assert_eq!(r["instruction"], "VMRESUME");
    assert_eq!(r["check"], "VMRESUME_NON_LAUNCHED_VMCS");
    assert_eq!(r["vm_instruction_error"], 5);
    assert_eq!(r["outcome"], "VMfailValid(5)");
    assert_eq!(r["vmcs"], VMCS);
    assert!(r["section"].as_str().unwrap().contains("27.1"));
    let log = m.nested_log();
    assert_eq!(log.failure_count(), 1);
    let p = hvsim::explain::failed_check_paragraph(&log.failures()[0].check);
    assert!(p.contains("hvsim explain vm-instruction-error 5"), "{p}");
}
