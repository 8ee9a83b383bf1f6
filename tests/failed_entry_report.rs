//! `hvsim run` reports every failed VMRUN / VM entry the run passed through (count, the
//! first few with instruction count and check), and `--explain` adds a plain-language
//! paragraph per failed check and about the last exit (issue 8, "hvsim explain").

#[path = "support/elf_writer.rs"]
mod elf_writer;

use elf_writer::{elf32, Segment, EM_386};
use hvsim::firmware::multiboot::header;
use hvsim_svm_model::msr as svm_msr;
use iced_x86::code_asm::*;
use std::path::PathBuf;
use std::process::Command;

/// Where the kernel is linked.
const KERNEL: u64 = 0x10_0000;
/// The VMCB L1 runs: all zero, so VMRUN fails a consistency check.
const VMCB: u32 = 0x20_0000;
/// VM_HSAVE_PA.
const HSAVE: u32 = 0x20_1000;
/// isa-debug-exit value 0x10: exit status 0x21.
const OK_STATUS: i32 = 0x21;

/// A multiboot kernel (32-bit protected mode, APM Vol. 2 §15.4 "Enabling SVM") that runs
/// VMRUN `runs` times on a zeroed VMCB and exits through isa-debug-exit.
fn svm_kernel(runs: usize) -> Vec<u8> {
    let flags = 0u32;
    let words =
        [header::HEADER_MAGIC, flags, 0u32.wrapping_sub(header::HEADER_MAGIC.wrapping_add(flags))];
    let mut a = CodeAssembler::new(32).unwrap();
    a.dd(&words).unwrap();
    a.mov(ecx, svm_msr::EFER).unwrap();
    a.rdmsr().unwrap();
    a.or(eax, svm_msr::EFER_SVME as i32).unwrap();
    a.wrmsr().unwrap();
    a.mov(ecx, svm_msr::VM_HSAVE_PA).unwrap();
    a.mov(eax, HSAVE).unwrap();
    a.xor(edx, edx).unwrap();
    a.wrmsr().unwrap();
    for _ in 0..runs {
        a.mov(eax, VMCB).unwrap();
        a.vmrun().unwrap();
    }
    a.mov(al, 0x10u32).unwrap();
    a.out(0xF4, al).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(KERNEL).unwrap();
    let entry = KERNEL as u32 + 12;
    elf32(
        EM_386,
        entry,
        &[Segment { vaddr: KERNEL, paddr: KERNEL, data: code, mem_size: 0x1000 }],
        false,
    )
}

fn kernel_file(name: &str, runs: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hvsim-failed-entry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, svm_kernel(runs)).unwrap();
    path
}

fn run(kernel: &PathBuf, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hvsim"))
        .args(["run", "--cpu", "amd", "--kernel"])
        .arg(kernel)
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(OK_STATUS), "{err}");
    err
}

/// The name of the check a zeroed VMCB fails first (APM Vol. 2 §15.5.1: EFER.SVME of the
/// guest must be 1), as the model's table spells it.
fn first_check() -> &'static str {
    hvsim_svm_model::vmrun_checks::CHECKS
        .iter()
        .find(|c| c.name == "EferSvmeClear")
        .map(|c| c.name)
        .expect("EferSvmeClear in the VMRUN check table")
}

/// APM Vol. 2 §15.5.1: three VMRUNs fail with VMEXIT_INVALID; the report counts them and
/// lists each with its instruction count and check, not only the last.
#[test]
fn run_reports_every_failed_vmrun() {
    let kernel = kernel_file("three.elf", 3);
    let err = run(&kernel, &[]);
    assert!(err.contains("hvsim: 3 failed VM entries"), "{err}");
    let listed: Vec<&str> =
        err.lines().filter(|l| l.starts_with("hvsim:   instruction ")).collect();
    assert_eq!(listed.len(), 3, "{err}");
    let counts: Vec<u64> = listed
        .iter()
        .map(|l| l["hvsim:   instruction ".len()..].split(' ').next().unwrap().parse().unwrap())
        .collect();
    // enable SVM = 8 instructions, then MOV EAX + VMRUN per run: VMRUNs at 9, 11, 13.
    assert_eq!(counts, [9, 11, 13], "{err}");
    for l in &listed {
        assert!(l.contains(&format!("VMRUN with the VMCB at {VMCB:#x}: {}", first_check())), "{l}");
        assert!(l.contains("APM") && l.ends_with("#VMEXIT(VMEXIT_INVALID)"), "{l}");
    }
    assert!(
        err.contains("hvsim: the run ended after a failed entry"),
        "the last VMRUN failed: {err}"
    );
    assert!(!err.contains("The check that failed is"), "{err}");
}

/// `--explain` adds one paragraph per distinct failed check and one about the last exit
/// (VMEXIT_INVALID, from the svm-model exit-code table).
#[test]
fn explain_adds_paragraphs_for_the_check_and_the_last_exit() {
    let kernel = kernel_file("explain.elf", 2);
    let err = run(&kernel, &["--explain"]);
    // Paragraphs are wrapped; join each (between blank `hvsim:` lines) back into one line.
    let body: String = err
        .lines()
        .map(|l| l.strip_prefix("hvsim:").unwrap_or(l).trim())
        .map(|l| if l.is_empty() { "\n".to_string() } else { format!("{l} ") })
        .collect();
    let paragraphs: Vec<&str> = body.split('\n').map(str::trim).collect();
    let checks: Vec<&&str> =
        paragraphs.iter().filter(|p| p.contains("The check that failed is")).collect();
    assert_eq!(checks.len(), 1, "one paragraph per distinct check: {err}");
    assert!(
        checks[0].contains(first_check()) && checks[0].contains("VMEXIT_INVALID (-1)"),
        "{err}"
    );
    assert!(checks[0].contains(&format!("hvsim explain vmrun-check {}", first_check())), "{err}");
    let exit = paragraphs.iter().find(|p| p.contains("The last #VMEXIT of the run")).expect(&err);
    assert!(exit.contains("exit code VMEXIT_INVALID (-1)"), "{exit}");
}

/// Many failures: the first few are listed and the rest counted.
#[test]
fn many_failures_are_summarised() {
    let kernel = kernel_file("many.elf", 8);
    let err = run(&kernel, &[]);
    assert!(err.contains("hvsim: 8 failed VM entries"), "{err}");
    let listed = err.lines().filter(|l| l.starts_with("hvsim:   instruction ")).count();
    assert_eq!(listed, 5, "{err}");
    assert!(err.contains("hvsim:   ... and 3 more"), "{err}");
}

/// Through the binary: `--trace nested --trace-format json` writes one JSON line per
/// failed VMRUN on stderr, parsed back here.
#[test]
fn binary_json_trace_of_failed_vmruns() {
    let kernel = kernel_file("json.elf", 2);
    let err = run(&kernel, &["--trace", "nested", "--trace-format", "json"]);
    let records: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(records.len(), 2, "{err}");
    for (r, insn) in records.iter().zip([9, 11]) {
        assert_eq!(r["target"], "hvsim::nested");
        assert_eq!(r["event"], "vmrun_failed");
        assert_eq!(r["insn"], insn);
        assert_eq!(r["vmcb"], VMCB);
        assert_eq!(r["check"], first_check());
        assert_eq!(r["exit_name"], "VMEXIT_INVALID");
    }
}
