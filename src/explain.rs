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
