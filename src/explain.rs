//! `hvsim explain`: an offline reference to the hardware tables hvsim's models are built
//! from. Every answer is printed from the same tables the code uses (the `svm-model` and
//! `vmx-model` crates, the vCPU's MSR table), so the reference and the behaviour cannot
//! disagree.

use hvsim_svm_model::vmrun_checks::CHECKS as SVM_CHECKS;
use hvsim_svm_model::{msr::SvmMsrInfo, SvmExitCode, VmcbField, EXIT_CODES, VMCB_FIELDS};
use hvsim_vmx_model::entry_checks::CHECKS as VMX_CHECKS;
use hvsim_vmx_model::exit_reason::{ExitReasonField, VmxExitReason, EXIT_REASONS};
use hvsim_vmx_model::msr::VmxMsrInfo;
use hvsim_vmx_model::vm_instruction_error::{VmInstructionError, VM_INSTRUCTION_ERRORS};
use hvsim_vmx_model::vmcs_fields::{
    encoding_index, FieldAccess, FieldGate, VmcsFieldInfo, VMCS_FIELDS,
};
use std::fmt::Write;

/// What `hvsim explain` can explain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Topic {
    /// An SVM #VMEXIT code (VMCB EXITCODE), e.g. `0x7b` or `VMEXIT_IOIO`.
    SvmExit,
    /// A VMX basic exit reason or a full exit-reason field, e.g. `48` or `0x80000021`.
    VmxExit,
    /// A VMCS field encoding, e.g. `0x681e` or `GUEST_RIP`.
    Vmcs,
    /// A VMCB byte offset, e.g. `0x070` or `EXITCODE`.
    Vmcb,
    /// A VM-instruction error number, e.g. `7`.
    VmInstructionError,
    /// An MSR index, e.g. `0x480` or `IA32_VMX_BASIC`.
    Msr,
    /// A VMRUN consistency check (APM Vol. 2 §15.5.1), by position or name, e.g. `3` or
    /// `AsidZero`.
    VmrunCheck,
    /// A VM-entry check (SDM Vol. 3C chapter 27), by position or name, e.g. `0` or
    /// `VpidZero`.
    VmEntryCheck,
}

/// Why a key could not be explained.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExplainError {
    /// The key names nothing in the table.
    #[error("{0}")]
    Unknown(String),
}

/// Parses a number as hex (`0x` prefix), binary (`0b`), negative decimal (two's
/// complement, for SVM's negative exit codes) or decimal.
pub fn parse_number(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(b) = s.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else if let Some(n) = s.strip_prefix('-') {
        n.parse::<u64>().ok().map(|v| v.wrapping_neg())
    } else {
        s.parse::<u64>().ok()
    }
}

/// Explains `key` under `topic`; without a key, lists the whole table.
pub fn explain(topic: Topic, key: Option<&str>) -> Result<String, ExplainError> {
    match key {
        None => Ok(list(topic)),
        Some(k) => match topic {
            Topic::SvmExit => svm_exit(k),
            Topic::VmxExit => vmx_exit(k),
            Topic::Vmcs => vmcs(k),
            Topic::Vmcb => vmcb(k),
            Topic::VmInstructionError => vm_instruction_error(k),
            Topic::Msr => msr(k),
            Topic::VmrunCheck => vmrun_check(k),
            Topic::VmEntryCheck => vm_entry_check(k),
        },
    }
}

fn unknown(what: &str, key: &str) -> ExplainError {
    ExplainError::Unknown(format!(
        "'{key}' is not {what} (run `hvsim explain <topic>` without a key for the list)"
    ))
}

fn list(topic: Topic) -> String {
    let mut out = String::new();
    match topic {
        Topic::SvmExit => {
            for e in EXIT_CODES {
                let _ = writeln!(out, "{:#06x}  {:<24} {}", e.code.0, e.name, e.meaning);
            }
        }
        Topic::VmxExit => {
            for e in EXIT_REASONS {
                let _ = writeln!(out, "{:>3}  {:<32} {}", e.reason.0, e.name, e.meaning);
            }
        }
        Topic::Vmcs => {
            for f in VMCS_FIELDS {
                let _ = writeln!(out, "{:#06x}  {:<40} {}", f.encoding, f.name, f.meaning);
            }
        }
        Topic::Vmcb => {
            for f in VMCB_FIELDS {
                let _ = writeln!(out, "{:#05x}  {:<24} {}", f.offset, f.name, f.meaning);
            }
        }
        Topic::VmInstructionError => {
            for e in VM_INSTRUCTION_ERRORS {
                let _ = writeln!(out, "{:>3}  {}", e.error.0, e.text);
            }
        }
        Topic::Msr => {
            for m in crate::cpu::msr::MSRS {
                let _ = writeln!(out, "{:#010x}  {}", m.index, m.name);
            }
            for m in hvsim_vmx_model::msr::VMX_MSRS {
                let _ = writeln!(out, "{:#010x}  {:<28} {}", m.index, m.name, m.meaning);
            }
            for m in hvsim_svm_model::SVM_MSRS {
                let _ = writeln!(out, "{:#010x}  {:<28} {}", m.index, m.name, m.meaning);
            }
        }
        Topic::VmrunCheck => {
            for (i, c) in SVM_CHECKS.iter().enumerate() {
                let _ = writeln!(out, "{i:>3}  {:<32} {}", c.name, c.description);
            }
        }
        Topic::VmEntryCheck => {
            for (i, c) in VMX_CHECKS.iter().enumerate() {
                let _ = writeln!(out, "{i:>3}  {:<36} {} {}", c.name, c.section, c.text);
            }
        }
    }
    out
}

/// Finds a row of a check table by its position (as listed) or its name, ignoring case.
fn check_index(key: &str, len: usize, name_of: impl Fn(usize) -> &'static str) -> Option<usize> {
    match parse_number(key) {
        Some(i) => usize::try_from(i).ok().filter(|&i| i < len),
        None => (0..len).find(|&i| name_of(i).eq_ignore_ascii_case(key.trim())),
    }
}

fn vmrun_check(key: &str) -> Result<String, ExplainError> {
    let i = check_index(key, SVM_CHECKS.len(), |i| SVM_CHECKS[i].name)
        .ok_or_else(|| unknown("a VMRUN consistency check", key))?;
    let c = &SVM_CHECKS[i];
    Ok(format!(
        "VMRUN check {i} {}: {}\n  on failure: #VMEXIT with EXITCODE VMEXIT_INVALID (-1)\n  reference: {}\n",
        c.name, c.description, c.section
    ))
}

fn vm_entry_check(key: &str) -> Result<String, ExplainError> {
    use hvsim_vmx_model::entry_checks::CheckKind;
    let i = check_index(key, VMX_CHECKS.len(), |i| VMX_CHECKS[i].name)
        .ok_or_else(|| unknown("a VM-entry check", key))?;
    let c = &VMX_CHECKS[i];
    let failure = match c.kind {
        CheckKind::Control => "VMfailValid(7) (invalid control field)",
        CheckKind::Host => "VMfailValid(8) (invalid host-state field)",
        CheckKind::Guest => "VM-entry failure, exit reason 33, qualification 0",
        CheckKind::GuestPdpte => "VM-entry failure, exit reason 33, qualification 2 (PDPTE)",
        CheckKind::GuestNmiSti => "VM-entry failure, exit reason 33, qualification 3 (NMI)",
        CheckKind::GuestLink => "VM-entry failure, exit reason 33, qualification 4 (link)",
        CheckKind::MsrLoad => {
            "VM-entry failure, exit reason 34, qualification = 1-based MSR-load entry index"
        }
    };
    Ok(format!(
        "VM-entry check {i} {}: {}\n  on failure: {failure}\n  reference: {}\n",
        c.name,
        c.text,
        c.reference()
    ))
}

/// What a VMX check kind means for the guest hypervisor, in plain language (SDM Vol. 3C
/// 27.2 "Checks on VMX Controls and Host-State Area", 27.3 "Checking and Loading Guest
/// State", 27.4 "Loading MSRs", 27.8 "VM-Entry Failures During or After Loading Guest
/// State").
fn vmx_kind_paragraph(kind: hvsim_vmx_model::entry_checks::CheckKind) -> &'static str {
    use hvsim_vmx_model::entry_checks::CheckKind;
    match kind {
        CheckKind::Control => {
            "Before it loads anything, VM entry checks the VM-execution, VM-exit and VM-entry \
             control fields: each must be a setting the capability MSRs (IA32_VMX_*_CTLS) \
             allow, and controls that depend on each other must agree. This one did not hold, \
             so the guest was never entered: VMLAUNCH/VMRESUME failed with VMfailValid (ZF = \
             1) and VM-instruction error 7, \"VM entry with invalid control field(s)\", and \
             the hypervisor continued at the instruction after it."
        }
        CheckKind::Host => {
            "Before it loads anything, VM entry checks the host-state area: the state the \
             processor will load at the next VM exit must itself be valid (control \
             registers within the fixed bits, canonical addresses, usable selectors). This \
             one did not hold, so the guest was never entered: VMLAUNCH/VMRESUME failed with \
             VMfailValid (ZF = 1) and VM-instruction error 8, \"VM entry with invalid \
             host-state field(s)\"."
        }
        CheckKind::Guest | CheckKind::GuestNmiSti | CheckKind::GuestLink => {
            "The controls and the host state were fine, so VM entry went on to check the \
             guest-state area: the registers and non-register state the guest would start \
             with must be a state a real processor could be in. This one did not hold. At \
             this point the processor behaves like a VM exit that happens before the guest \
             runs a single instruction: it loads the host state and reports exit reason 33 \
             (\"VM-entry failure due to invalid guest state\") with bit 31 set, so the \
             hypervisor lands at HOST_RIP and must read the exit reason to notice."
        }
        CheckKind::GuestPdpte => {
            "The guest uses PAE paging, so VM entry loaded its four page-directory-pointer \
             entries and checked their reserved bits. One was bad. The processor reports a \
             VM-entry failure like an early VM exit: host state loaded, exit reason 33 with \
             bit 31 set, exit qualification 2 (PDPTE loading)."
        }
        CheckKind::MsrLoad => {
            "The guest state had already been checked and loaded when VM entry processed \
             the VM-entry MSR-load area, one 16-byte entry at a time. One entry asked for an \
             MSR or a value that VM entry cannot load. The processor reports a VM-entry \
             failure: host state loaded, exit reason 34 (\"VM-entry failure due to MSR \
             loading\") with bit 31 set, and the exit qualification is the 1-based number \
             of the bad entry."
        }
    }
}

/// A plain-language paragraph about a failed VMRUN or VM-entry check, for `hvsim run
/// --explain`: what the processor checks at that stage, which rule failed and where the
/// manual states it, and what the hypervisor saw.
pub fn failed_check_paragraph(check: &crate::trace::nested::FailedCheck) -> String {
    use crate::trace::nested::FailedCheck;
    let stage = match check {
        FailedCheck::Vmrun(_) => {
            "VMRUN checks the guest state in the VMCB for combinations no real processor \
             could be in (APM Vol. 2 §15.5.1 \"Basic Operation\", \"Canonicalization and \
             Consistency Checks\"). This one was found, so the guest was never entered: \
             the processor wrote VMEXIT_INVALID (-1) to the VMCB's EXITCODE and returned to \
             the hypervisor right after VMRUN, as if the guest had exited at once."
        }
        FailedCheck::VmEntry(e) => vmx_kind_paragraph(e.check.info().kind),
        FailedCheck::Instruction(_) => {
            "VMLAUNCH and VMRESUME first check the instruction itself: there must be a \
             current VMCS, VMLAUNCH needs one whose launch state is clear and VMRESUME one \
             that is launched, and events must not be blocked by MOV SS. One of these did \
             not hold, so nothing else was checked and the guest was never entered: the \
             instruction failed with VMfailInvalid (CF = 1, no current VMCS) or VMfailValid \
             (ZF = 1) with the error number in the VM-instruction error field."
        }
    };
    let field = check.field().map_or(String::new(), |f| format!(" The field involved: {f}."));
    let explain = match check {
        FailedCheck::Vmrun(_) => format!("hvsim explain vmrun-check {}", check.name()),
        FailedCheck::VmEntry(_) => format!("hvsim explain vm-entry-check {}", check.name()),
        FailedCheck::Instruction(Some(e)) => format!("hvsim explain vm-instruction-error {}", e.0),
        FailedCheck::Instruction(None) => "hvsim explain vm-instruction-error".to_string(),
    };
    format!(
        "{stage} The check that failed is {} ({}): {}.{field} The hypervisor saw: {}. \
         Fix that in the hypervisor's setup code (`{explain}` shows the check).",
        check.name(),
        check.reference(),
        check.requirement().trim_end_matches('.'),
        check.outcome(),
    )
}

/// A plain-language paragraph about the last exit the run saw, for `hvsim run
/// --explain`.
pub fn exit_paragraph(exit: crate::trace::nested::NestedExit) -> String {
    use crate::trace::nested::NestedExit;
    match exit {
        NestedExit::Svm(code) => match code.info() {
            Some(i) => format!(
                "The last #VMEXIT of the run had exit code {} ({}): {}. When the guest \
                 exits, the processor saves its state in the VMCB, writes the exit code and \
                 the exit information there, and reloads the hypervisor's state saved by \
                 VMRUN; the hypervisor reads EXITCODE to decide what to do. For this code, \
                 EXITINFO1 holds: {}; EXITINFO2 holds: {} ({}).",
                i.name,
                if code.is_vmrun_failure() {
                    format!("{}", code.0 as i64)
                } else {
                    format!("{:#x}", code.0)
                },
                i.meaning,
                i.exitinfo1,
                i.exitinfo2,
                i.reference
            ),
            None => {
                format!("The last #VMEXIT had exit code {code}, which the APM does not define.")
            }
        },
        NestedExit::Vmx(field) => {
            let f = ExitReasonField(field);
            let basic = f.basic();
            let Some(i) = basic.info() else {
                return format!(
                    "The last VM exit had exit reason {field:#x}, which the SDM does not define."
                );
            };
            let entry = if f.is_entry_failure() {
                " Bit 31 of the exit-reason field is set: this was not a real exit from a \
                 running guest but a VM entry that failed after its first checks, reported \
                 the same way so that the hypervisor resumes at HOST_RIP."
            } else {
                ""
            };
            format!(
                "The last VM exit of the run had basic exit reason {} ({}): {}. At a VM exit \
                 the processor saves the guest state in the VMCS, records the exit reason and \
                 the exit qualification, and loads the host state, so the hypervisor runs at \
                 HOST_RIP and reads EXIT_REASON to decide what to do. For this reason the exit \
                 qualification holds: {} ({}).{entry}",
                basic.0, i.name, i.meaning, i.qualification, i.reference
            )
        }
    }
}

fn svm_exit(key: &str) -> Result<String, ExplainError> {
    let info = parse_number(key)
        .and_then(|v| SvmExitCode(v).info())
        .or_else(|| {
            let name = key.to_ascii_uppercase();
            let name = if name.starts_with("VMEXIT_") { name } else { format!("VMEXIT_{name}") };
            SvmExitCode::by_name(&name).and_then(SvmExitCode::info)
        })
        .ok_or_else(|| unknown("an SVM exit code", key))?;
    let mut out = String::new();
    let code = info.code.0 as i64;
    let shown =
        if code < 0 { format!("{code} ({:#x})", info.code.0) } else { format!("{code:#x}") };
    let _ = writeln!(out, "SVM exit code {shown} ({}): {}", info.name, info.meaning);
    let _ = writeln!(out, "  EXITINFO1: {}", info.exitinfo1);
    let _ = writeln!(out, "  EXITINFO2: {}", info.exitinfo2);
    if let Some(i) = hvsim_svm_model::InterceptInfo::for_exit_code(info.code) {
        let _ = writeln!(
            out,
            "  intercept: {} (VMCB offset {:#05x}, bit {})",
            i.name, i.intercept.word, i.intercept.bit
        );
    }
    let _ = writeln!(out, "  reference: {}", info.reference);
    Ok(out)
}

fn vmx_exit(key: &str) -> Result<String, ExplainError> {
    let (field, info) = match parse_number(key) {
        Some(v) => {
            let v = u32::try_from(v).map_err(|_| unknown("a VMX exit reason", key))?;
            let field = ExitReasonField(v);
            (Some(field), VmxExitReason(v as u16).info())
        }
        None => (None, VmxExitReason::by_name(&key.to_ascii_uppercase()).and_then(|r| r.info())),
    };
    let info = info.ok_or_else(|| unknown("a VMX exit reason", key))?;
    let mut out = String::new();
    let _ =
        writeln!(out, "VMX basic exit reason {} ({}): {}", info.reason.0, info.name, info.meaning);
    if let Some(f) = field {
        for flag in f.flags() {
            let _ = writeln!(
                out,
                "  bit {:>2} {}: {}",
                flag.mask.trailing_zeros(),
                flag.name,
                flag.meaning
            );
        }
    }
    let _ = writeln!(out, "  exit qualification: {}", info.qualification);
    let _ = writeln!(out, "  reference: {}", info.reference);
    Ok(out)
}

fn vmcs(key: &str) -> Result<String, ExplainError> {
    let r = parse_number(key)
        .and_then(VmcsFieldInfo::lookup)
        .or_else(|| VmcsFieldInfo::by_name(key))
        .ok_or_else(|| unknown("a VMCS field encoding", key))?;
    let f = r.info;
    let mut out = String::new();
    let high = if r.access == FieldAccess::High { " (HIGH half)" } else { "" };
    let _ = writeln!(out, "VMCS field {:#06x} {}{}: {}", r.encoding(), f.name, high, f.meaning);
    let _ = writeln!(
        out,
        "  encoding: access type {} (bit 0), index {} (bits 9:1), type {:?} (bits 11:10), width {:?} (bits 14:13)",
        r.encoding() & 1,
        encoding_index(f.encoding),
        f.field_type,
        f.width
    );
    let exists = match f.gate {
        FieldGate::Always => "always".to_string(),
        FieldGate::AnyOf(refs) => {
            let names: Vec<String> = refs
                .iter()
                .map(|r| {
                    r.info().map_or_else(
                        || format!("{:?} {:#x}", r.field, r.mask),
                        |c| format!("{} ({:?} controls)", c.name, r.field),
                    )
                })
                .collect();
            format!("when the processor supports {}", names.join(" or "))
        }
        FieldGate::Capability(what) => format!("when the processor supports {what}"),
    };
    let _ = writeln!(out, "  exists: {exists}");
    let _ = writeln!(out, "  reference: {}", f.reference);
    Ok(out)
}

fn vmcb(key: &str) -> Result<String, ExplainError> {
    let f: &VmcbField = parse_number(key)
        .and_then(|v| u16::try_from(v).ok())
        .and_then(VmcbField::lookup)
        .or_else(|| VmcbField::by_name(key))
        .ok_or_else(|| unknown("a VMCB offset", key))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "VMCB {:#05x}-{:#05x} {} ({:?} area, {} bytes): {}",
        f.offset,
        f.end() - 1,
        f.name,
        f.area,
        f.width,
        f.meaning
    );
    for b in f.bits() {
        let bits = if b.len == 1 {
            format!("bit {}", b.lsb)
        } else {
            format!("bits {}:{}", u16::from(b.lsb) + u16::from(b.len) - 1, b.lsb)
        };
        let _ = writeln!(out, "  {bits:<10} {}: {}", b.name, b.meaning);
    }
    let _ = writeln!(out, "  reference: {}", f.reference);
    Ok(out)
}

fn vm_instruction_error(key: &str) -> Result<String, ExplainError> {
    let e = parse_number(key)
        .and_then(|v| u32::try_from(v).ok())
        .and_then(|v| VmInstructionError(v).info())
        .ok_or_else(|| unknown("a VM-instruction error number", key))?;
    Ok(format!(
        "VM-instruction error {} ({}): {}\n  reference: {}\n",
        e.error.0, e.name, e.text, e.reference
    ))
}

fn msr(key: &str) -> Result<String, ExplainError> {
    let index = parse_number(key).and_then(|v| u32::try_from(v).ok()).or_else(|| {
        let k = key.to_ascii_uppercase();
        crate::cpu::msr::MSRS
            .iter()
            .find(|m| m.name == k)
            .map(|m| m.index)
            .or_else(|| VmxMsrInfo::by_name(&k).map(|m| m.index))
            .or_else(|| SvmMsrInfo::by_name(&k).map(|m| m.index))
    });
    let index = index.ok_or_else(|| unknown("an MSR", key))?;
    let mut out = String::new();
    if let Some(m) = VmxMsrInfo::lookup(index) {
        let _ = writeln!(
            out,
            "MSR {:#x} {}: {}\n  reference: {}",
            index, m.name, m.meaning, m.reference
        );
    } else if let Some(m) = SvmMsrInfo::lookup(index) {
        let _ = writeln!(
            out,
            "MSR {:#x} {}: {}\n  reference: {}",
            index, m.name, m.meaning, m.reference
        );
    }
    if let Some(m) = crate::cpu::msr::MsrInfo::lookup(index) {
        if out.is_empty() {
            let _ = writeln!(out, "MSR {:#x} {}", index, m.name);
        }
        let _ = writeln!(
            out,
            "  hvsim: present on {:?}, reset value {:#x}, writes: {:?}",
            m.avail, m.reset, m.rule
        );
    }
    if out.is_empty() {
        return Err(unknown("an MSR hvsim knows", key));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_in_every_spelling() {
        assert_eq!(parse_number("0x7b"), Some(0x7B));
        assert_eq!(parse_number("48"), Some(48));
        assert_eq!(parse_number("-1"), Some(u64::MAX));
        assert_eq!(parse_number("0b101"), Some(5));
        assert_eq!(parse_number("zz"), None);
    }
}
