//! The `nested` trace category: one record per world switch between a guest hypervisor
//! (L1) and its guest (L2), in the terms of the manuals, and the log of failed entries
//! that `hvsim run` reports at the end.
//!
//! Records (target [`super::NESTED`]) and their fields, stable for `--trace-format json`:
//!
//! | `event`           | when                                   | fields besides `insn`, `vcpu`, `event`, `from_level`, `to_level` |
//! |-------------------|----------------------------------------|------------------------------------------------------------------|
//! | `vmrun`           | VMRUN loaded the guest (APM §15.5)      | `vmcb`, `guest_rip`, `asid`, `inject`, `changed` |
//! | `vmrun_failed`    | VMRUN's consistency checks failed       | `vmcb`, `exit_code`, `exit_name` (`VMEXIT_INVALID`), `check`, `section`, `field`, `value`, `requirement` |
//! | `vmexit`          | #VMEXIT to L1 (APM §15.6)               | `vmcb`, `exit_code`, `exit_name`, `exitinfo1`, `exitinfo2`, `exitintinfo`, `guest_rip`, decoded fields |
//! | `vm_entry`        | VMLAUNCH/VMRESUME entered (SDM 27)      | `vmcs`, `instruction`, `guest_rip`, `inject`, `changed` |
//! | `vm_entry_failed` | a VM-entry check failed (SDM 27.2-27.4) | `vmcs`, `instruction`, `check`, `section`, `requirement`, `outcome`, `exit_reason`, `exit_name`, `vm_instruction_error`, `field` |
//! | `vm_exit`         | VM exit to L1 (SDM 28)                  | `vmcs`, `exit_reason`, `exit_name`, `qualification`, `guest_rip`, decoded fields |
//!
//! Decoded fields (present only where the exit information defines them): `port`,
//! `size`, `dir` (`in`/`out` for I/O, `read`/`write` for CR, DR and MSR accesses),
//! `string`, `rep`, `cr`, `dr`, `gpr`, `msr`, `gpa`, `gla`, `access` (what the faulting
//! access was: `r`, `w`, `x`), `allowed` (what the EPT entry permitted, `rwx` with `-`
//! for a missing right), `fault` (`not present`, `protection`, `reserved bit`),
//! `vector`, `error_code`, and `detail`, the decoded information in words.
//!
//! `changed` lists the main guest registers that differ from the previous entry with
//! the same VMCB/VMCS on the same vCPU (`name old -> new`, comma-separated); the first
//! entry lists them all (`name=value`).

use super::{Category, NESTED};
use crate::cpu::regs::SegReg;
use crate::machine::Machine;
use hvsim_svm_model::event_injection::Event as SvmEvent;
use hvsim_svm_model::exit_info::{decode_cr_access, NpfAccess};
use hvsim_svm_model::io_intercept::IoAccess;
use hvsim_svm_model::msr_intercept::EXITINFO1_WRMSR;
use hvsim_svm_model::vmrun_checks::InvalidVmcb;
use hvsim_svm_model::SvmExitCode;
use hvsim_vmx_model::entry_checks::{EntryFailure, FailureForm};
use hvsim_vmx_model::exit_info::{
    ept_violation, qualification_fields, CrAccessQualification, CrAccessType, InterruptionInfo,
    IoQualification, MovDrQualification,
};
use hvsim_vmx_model::{ExitInfo as VmxExitInfo, VmInstructionError, VmxExitReason};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Failed entries kept with their details; later ones are only counted.
pub const MAX_FAILURES_KEPT: usize = 16;

/// Guest states remembered for `changed` (one per vCPU and VMCB/VMCS); beyond this the
/// memory starts again empty.
const MAX_REMEMBERED_GUESTS: usize = 256;

/// General-purpose register names in encoding order (SDM Vol. 2A Table 2-2 "32-Bit
/// Addressing Forms with the ModR/M Byte": 0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP,
/// 6 RSI, 7 RDI; 8-15 R8-R15), as exit information numbers them.
pub const GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// The check a failed VMRUN or VM entry failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FailedCheck {
    /// A VMRUN consistency check (APM Vol. 2 §15.5.1): #VMEXIT(VMEXIT_INVALID).
    Vmrun(InvalidVmcb),
    /// A VM-entry check (SDM Vol. 3C chapter 27): VMfailValid or a VM-entry failure exit.
    VmEntry(EntryFailure),
    /// A check of VMLAUNCH/VMRESUME itself (SDM Vol. 3C 27.1 "Basic VM-Entry Checks"):
    /// VMfailValid with this error, or VMfailInvalid (`None`: no current VMCS).
    Instruction(Option<VmInstructionError>),
}

/// Where the checks of VMLAUNCH/VMRESUME itself are stated.
const BASIC_ENTRY_CHECKS: &str = "SDM Vol. 3C 27.1 \"Basic VM-Entry Checks\"";

impl FailedCheck {
    /// The check's name in the model's table (what `hvsim explain vmrun-check` /
    /// `vm-entry-check` take).
    pub fn name(&self) -> &'static str {
        match self {
            FailedCheck::Vmrun(e) => e.check.info().name,
            FailedCheck::VmEntry(e) => e.check.info().name,
            FailedCheck::Instruction(Some(e)) => {
                e.info().map_or("VM_INSTRUCTION_ERROR", |i| i.name)
            }
            FailedCheck::Instruction(None) => "NO_CURRENT_VMCS",
        }
    }

    /// The manual section that states the rule.
    pub fn reference(&self) -> String {
        match self {
            FailedCheck::Vmrun(e) => e.check.info().section.to_string(),
            FailedCheck::VmEntry(e) => e.check.info().reference(),
            FailedCheck::Instruction(_) => BASIC_ENTRY_CHECKS.to_string(),
        }
    }

    /// What the rule requires (or, for VMRUN, the illegal state), in one line.
    pub fn requirement(&self) -> &'static str {
        match self {
            FailedCheck::Vmrun(e) => e.check.info().description,
            FailedCheck::VmEntry(e) => e.check.info().text,
            FailedCheck::Instruction(Some(e)) => e.text().unwrap_or("VM-instruction error"),
            FailedCheck::Instruction(None) => {
                "VMLAUNCH/VMRESUME need a current VMCS (the current-VMCS pointer is not FFFFFFFF_FFFFFFFFH)"
            }
        }
    }

    /// The architectural outcome, e.g. `#VMEXIT(VMEXIT_INVALID)` or `VMfailValid(7)`.
    pub fn outcome(&self) -> String {
        match self {
            FailedCheck::Vmrun(_) => format!("#VMEXIT({})", SvmExitCode::INVALID),
            FailedCheck::VmEntry(e) => match e.form {
                FailureForm::VmFailValid(err) => format!("VMfailValid({})", err.0),
                FailureForm::ExitFailure { reason, qualification } => format!(
                    "VM-entry failure: exit reason {} | 0x80000000 ({}), qualification {qualification}",
                    reason.0,
                    reason.name().unwrap_or("unknown")
                ),
            },
            FailedCheck::Instruction(Some(e)) => format!("VMfailValid({})", e.0),
            FailedCheck::Instruction(None) => "VMfailInvalid".to_string(),
        }
    }

    /// The field the check is about, with its value where the model knows it.
    pub fn field(&self) -> Option<String> {
        match self {
            FailedCheck::Vmrun(e) => {
                let name = hvsim_svm_model::VMCB_FIELDS
                    .iter()
                    .find(|f| f.offset == e.field)
                    .map_or(String::new(), |f| format!(" {}", f.name));
                Some(format!("VMCB offset {:#05x}{name} = {:#x}", e.field, e.value))
            }
            FailedCheck::VmEntry(e) => e.field.map(|enc| {
                hvsim_vmx_model::vmcs_fields::VmcsFieldInfo::lookup(u64::from(enc))
                    .map_or(format!("VMCS field {enc:#06x}"), |r| {
                        format!("VMCS field {enc:#06x} {}", r.info.name)
                    })
            }),
            FailedCheck::Instruction(_) => None,
        }
    }

    /// One line: name, reference, requirement, field, outcome.
    pub fn describe(&self) -> String {
        let field = self.field().map_or(String::new(), |f| format!("; {f}"));
        format!(
            "{} ({}): {}{field}; {}",
            self.name(),
            self.reference(),
            self.requirement(),
            self.outcome()
        )
    }
}

/// One failed VMRUN or VM entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedEntry {
    /// The virtual clock (retired instructions) at the failing instruction.
    pub insn: u64,
    /// The vCPU.
    pub vcpu: usize,
    /// The instruction: `VMRUN`, `VMLAUNCH` or `VMRESUME`.
    pub instruction: &'static str,
    /// Physical address of the VMCB or VMCS.
    pub control: u64,
    /// The failed check.
    pub check: FailedCheck,
}

/// The main guest registers `changed` compares, in the order they are listed.
const GUEST_REGS: [&str; 17] = [
    "rip", "rsp", "rflags", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "cr0", "cr3", "cr4",
    "efer", "cs", "ss", "cpl",
];

/// Values of [`GUEST_REGS`].
type GuestRegs = [u64; GUEST_REGS.len()];

fn guest_regs(m: &Machine) -> GuestRegs {
    let c = &m.cpu;
    let sel = |s: SegReg| u64::from(c.seg[s as usize].selector);
    [
        c.rip,
        c.gpr[4],
        c.flags.get(),
        c.gpr[0],
        c.gpr[3],
        c.gpr[1],
        c.gpr[2],
        c.gpr[6],
        c.gpr[7],
        c.gpr[5],
        c.cr0,
        c.cr3,
        c.cr4,
        c.efer,
        sel(SegReg::Cs),
        sel(SegReg::Ss),
        u64::from(c.cpl),
    ]
}

/// `changed`: what differs from `old`, or everything on a first entry.
fn diff(old: Option<&GuestRegs>, new: &GuestRegs) -> String {
    let mut out = String::new();
    for (k, name) in GUEST_REGS.iter().enumerate() {
        let sep = if out.is_empty() { "" } else { ", " };
        match old {
            None => {
                let _ = write!(out, "{sep}{name}={:#x}", new[k]);
            }
            Some(o) if o[k] != new[k] => {
                let _ = write!(out, "{sep}{name} {:#x} -> {:#x}", o[k], new[k]);
            }
            Some(_) => {}
        }
    }
    out
}

/// The last exit to L1 of the run: a #VMEXIT code, or a VMX exit-reason field (with bit
/// 31 for a VM-entry failure).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NestedExit {
    /// A #VMEXIT with this EXITCODE (VMEXIT_INVALID for a failed VMRUN).
    Svm(SvmExitCode),
    /// A VM exit or VM-entry failure with this exit-reason field.
    Vmx(u32),
}

/// What the nested layer remembers for reports: failed entries, the last exit and,
/// while the `nested` category is traced, the guest state of the last entry per vCPU
/// and VMCB/VMCS.
#[derive(Clone, Debug, Default)]
pub struct NestedLog {
    failures: Vec<FailedEntry>,
    failure_count: u64,
    last_exit: Option<NestedExit>,
    last_guest: BTreeMap<(usize, u64), GuestRegs>,
}

impl NestedLog {
    /// The first [`MAX_FAILURES_KEPT`] failed entries of the run, in order.
    pub fn failures(&self) -> &[FailedEntry] {
        &self.failures
    }

    /// How many VMRUNs / VM entries failed in the run.
    pub fn failure_count(&self) -> u64 {
        self.failure_count
    }

    /// The last #VMEXIT, VM exit or VM-entry failure exit of the run.
    pub fn last_exit(&self) -> Option<NestedExit> {
        self.last_exit
    }

    fn record(&mut self, f: FailedEntry) {
        self.failure_count += 1;
        if self.failures.len() < MAX_FAILURES_KEPT {
            self.failures.push(f);
        }
    }

    /// `changed` for an entry with `control` on `vcpu`, remembering `regs`.
    fn changed(&mut self, vcpu: usize, control: u64, regs: GuestRegs) -> String {
        let d = diff(self.last_guest.get(&(vcpu, control)), &regs);
        if self.last_guest.len() >= MAX_REMEMBERED_GUESTS {
            self.last_guest.clear();
        }
        self.last_guest.insert((vcpu, control), regs);
        d
    }
}

impl Machine {
    /// The failed VMRUNs and VM entries of the run (see [`NestedLog`]).
    pub fn nested_log(&self) -> &NestedLog {
        &self.nested_log
    }

    fn nested_traced(&self) -> bool {
        self.trace_config().wants(Category::Nested, self.clock())
    }
}

/// Exit information decoded for the record (see the module documentation).
#[derive(Default, Debug)]
struct Decoded {
    port: Option<u16>,
    size: Option<u8>,
    dir: Option<&'static str>,
    string: Option<bool>,
    rep: Option<bool>,
    cr: Option<u8>,
    dr: Option<u8>,
    gpr: Option<&'static str>,
    msr: Option<u32>,
    gpa: Option<u64>,
    gla: Option<u64>,
    access: Option<String>,
    allowed: Option<String>,
    fault: Option<&'static str>,
    vector: Option<u8>,
    error_code: Option<u32>,
    detail: String,
}

/// Exceptions that push an error code (SDM Vol. 3A Table 6-1 "Protected-Mode Exceptions
/// and Interrupts", "Error Code" column): #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP.
const fn pushes_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21)
}

fn gpr_name(n: u8) -> &'static str {
    GPR_NAMES[usize::from(n & 0xF)]
}

fn rwx(r: bool, w: bool, x: bool) -> String {
    [(r, 'r'), (w, 'w'), (x, 'x')].iter().map(|&(b, c)| if b { c } else { '-' }).collect()
}

fn access_letters(r: bool, w: bool, x: bool) -> String {
    [(r, 'r'), (w, 'w'), (x, 'x')].iter().filter(|(b, _)| *b).map(|&(_, c)| c).collect()
}

/// `IN`/`OUT` words shared by both vendors.
fn io_detail(d: &mut Decoded, port: u16, size: u8, is_in: bool, string: bool, rep: bool) {
    let insn = match (is_in, string) {
        (true, false) => "IN from",
        (false, false) => "OUT to",
        (true, true) => "INS from",
        (false, true) => "OUTS to",
    };
    let rep_s = if rep { "REP " } else { "" };
    d.detail =
        format!("{rep_s}{insn} port {port:#x}, {size} byte{}", if size == 1 { "" } else { "s" });
    d.port = Some(port);
    d.size = Some(size);
    d.dir = Some(if is_in { "in" } else { "out" });
    d.string = Some(string);
    d.rep = Some(rep);
}

fn exception_detail(d: &mut Decoded, vector: u8, error_code: Option<u32>, cr2: Option<u64>) {
    d.vector = Some(vector);
    d.error_code = error_code;
    let mut s = crate::cpu::fault::vector::name(vector).to_string();
    if let Some(e) = error_code {
        let _ = write!(s, " error code {e:#x}");
    }
    if let Some(a) = cr2 {
        d.gla = Some(a);
        let _ = write!(s, " at linear address {a:#x}");
    }
    d.detail = s;
}

/// Decodes an SVM #VMEXIT's EXITINFO (APM Vol. 2 Appendix C "SVM Intercept Exit Codes"
/// and the intercept sections it names).
fn decode_svm(m: &Machine, code: SvmExitCode, info1: u64, info2: u64) -> Decoded {
    let mut d = Decoded::default();
    match code.0 {
        // 0x00-0x0F CRn reads, 0x10-0x1F CRn writes (§15.8; EXITINFO1 with decode
        // assists, §15.33.1).
        c @ 0x00..=0x1F => {
            let (mov, gpr) = decode_cr_access(info1);
            let write = c >= 0x10;
            d.cr = Some((c & 0xF) as u8);
            d.dir = Some(if write { "write" } else { "read" });
            if mov {
                d.gpr = Some(gpr_name(gpr));
                d.detail = if write {
                    format!("MOV to CR{} from {}", c & 0xF, gpr_name(gpr))
                } else {
                    format!("MOV from CR{} to {}", c & 0xF, gpr_name(gpr))
                };
            } else {
                d.detail = format!(
                    "CR{} {} (LMSW, CLTS or SMSW)",
                    c & 0xF,
                    if write { "write" } else { "read" }
                );
            }
        }
        // 0x20-0x2F DRn reads, 0x30-0x3F DRn writes (§15.9).
        c @ 0x20..=0x3F => {
            let write = c >= 0x30;
            let gpr = (info1 & hvsim_svm_model::exit_info::GPR_MASK) as u8;
            d.dr = Some((c & 0xF) as u8);
            d.dir = Some(if write { "write" } else { "read" });
            d.gpr = Some(gpr_name(gpr));
            d.detail = format!(
                "MOV {} DR{} ({})",
                if write { "to" } else { "from" },
                c & 0xF,
                gpr_name(gpr)
            );
        }
        // 0x40-0x5F exceptions (§15.12): EXITINFO1 the error code, EXITINFO2 CR2 for #PF.
        c @ 0x40..=0x5F => {
            let vector = (c - 0x40) as u8;
            let has_code = pushes_error_code(vector);
            let cr2 = (vector == crate::cpu::fault::vector::PF).then_some(info2);
            exception_detail(&mut d, vector, has_code.then_some(info1 as u32), cr2);
        }
        _ if code == SvmExitCode::IOIO => {
            let a = IoAccess::decode(info1);
            io_detail(&mut d, a.port, a.size, a.is_in, a.string, a.rep);
            let _ = write!(d.detail, "; next RIP {info2:#x}");
        }
        _ if code == SvmExitCode::MSR => {
            let write = info1 == EXITINFO1_WRMSR;
            let msr = m.cpu.gpr[1] as u32;
            d.msr = Some(msr);
            d.dir = Some(if write { "write" } else { "read" });
            d.detail = format!("{} of MSR {msr:#x}", if write { "WRMSR" } else { "RDMSR" });
        }
        _ if code == SvmExitCode::NPF => {
            let a = NpfAccess::decode(info1);
            d.gpa = Some(info2);
            d.access = Some(access_letters(!a.write && !a.fetch, a.write, a.fetch));
            let fault = if a.reserved {
                "reserved bit"
            } else if a.present {
                "protection"
            } else {
                "not present"
            };
            d.fault = Some(fault);
            let what = if a.fetch {
                "instruction fetch"
            } else if a.write {
                "write"
            } else {
                "read"
            };
            let walk = if a.guest_page_table { " during the guest page walk" } else { "" };
            d.detail = format!(
                "nested page fault ({fault}): {} {what} of guest-physical {info2:#x}{walk}",
                if a.user { "user" } else { "supervisor" }
            );
        }
        _ if code == SvmExitCode::INVLPG => {
            d.gla = Some(info1);
            d.detail = format!("INVLPG {info1:#x}");
        }
        _ if code == SvmExitCode::SWINT => {
            d.vector = Some(info1 as u8);
            d.detail = format!("INT {:#x}", info1 as u8);
        }
        _ if code == SvmExitCode::CPUID => {
            d.detail =
                format!("CPUID leaf {:#x} subleaf {:#x}", m.cpu.gpr[0] as u32, m.cpu.gpr[1] as u32);
        }
        _ => {}
    }
    d
}

/// Decodes a VMX exit's qualification and information fields (SDM Vol. 3C "Exit
/// Qualification for VM Exits", "Information for VM Exits Due to Vectored Events").
fn decode_vmx(m: &Machine, info: &VmxExitInfo) -> Decoded {
    let mut d = Decoded::default();
    let reason = VmxExitReason(info.reason as u16);
    let q = info.qualification;
    match reason {
        VmxExitReason::IO_INSTRUCTION => {
            let a = IoQualification::decode(q);
            io_detail(&mut d, a.port, a.size, a.is_in, a.string, a.rep);
        }
        VmxExitReason::CR_ACCESS => {
            let a = CrAccessQualification::decode(q);
            d.cr = Some(a.cr);
            let (dir, text) = match a.access {
                CrAccessType::MovToCr => {
                    d.gpr = Some(gpr_name(a.gpr));
                    ("write", format!("MOV to CR{} from {}", a.cr, gpr_name(a.gpr)))
                }
                CrAccessType::MovFromCr => {
                    d.gpr = Some(gpr_name(a.gpr));
                    ("read", format!("MOV from CR{} to {}", a.cr, gpr_name(a.gpr)))
                }
                CrAccessType::Clts => ("write", "CLTS".to_string()),
                CrAccessType::Lmsw => ("write", format!("LMSW {:#x}", a.lmsw_source)),
            };
            d.dir = Some(dir);
            d.detail = text;
        }
        VmxExitReason::DR_ACCESS => {
            let a = MovDrQualification::decode(q);
            d.dr = Some(a.dr);
            d.gpr = Some(gpr_name(a.gpr));
            d.dir = Some(if a.from_dr { "read" } else { "write" });
            d.detail = if a.from_dr {
                format!("MOV from DR{} to {}", a.dr, gpr_name(a.gpr))
            } else {
                format!("MOV to DR{} from {}", a.dr, gpr_name(a.gpr))
            };
        }
        VmxExitReason::EPT_VIOLATION => {
            use ept_violation as ev;
            let (r, w, x) = (q & ev::READ != 0, q & ev::WRITE != 0, q & ev::FETCH != 0);
            let allowed =
                rwx(q & ev::READABLE != 0, q & ev::WRITABLE != 0, q & ev::EXECUTABLE != 0);
            d.gpa = Some(info.guest_physical_address);
            d.access = Some(access_letters(r, w, x));
            d.fault = Some(if allowed == "---" { "not present" } else { "protection" });
            if q & ev::LINEAR_VALID != 0 {
                d.gla = Some(info.guest_linear_address);
            }
            let what = if x {
                "instruction fetch"
            } else if w {
                "write"
            } else {
                "read"
            };
            d.detail = format!(
                "EPT violation: {what} of guest-physical {:#x}, the EPT entry allows {allowed}",
                info.guest_physical_address
            );
            if let Some(a) = d.gla {
                let kind = if q & ev::TRANSLATED_ACCESS != 0 {
                    "the access's translation"
                } else {
                    "a guest paging-structure entry"
                };
                let _ = write!(d.detail, " (linear address {a:#x}, {kind})");
            }
            d.allowed = Some(allowed);
        }
        VmxExitReason::EPT_MISCONFIG => {
            d.gpa = Some(info.guest_physical_address);
            d.detail = format!(
                "EPT misconfiguration at guest-physical {:#x}",
                info.guest_physical_address
            );
        }
        VmxExitReason::EXCEPTION_NMI => {
            let ii = InterruptionInfo::decode(info.interruption_info);
            let code = ii.deliver_error_code.then_some(info.interruption_error_code);
            let cr2 = (ii.vector == crate::cpu::fault::vector::PF).then_some(q);
            exception_detail(&mut d, ii.vector, code, cr2);
        }
        VmxExitReason::RDMSR | VmxExitReason::WRMSR => {
            let write = reason == VmxExitReason::WRMSR;
            let msr = m.cpu.gpr[1] as u32;
            d.msr = Some(msr);
            d.dir = Some(if write { "write" } else { "read" });
            d.detail = format!("{} of MSR {msr:#x}", if write { "WRMSR" } else { "RDMSR" });
        }
        VmxExitReason::INVLPG => {
            d.gla = Some(q);
            d.detail = format!("INVLPG {q:#x}");
        }
        VmxExitReason::CPUID => {
            d.detail =
                format!("CPUID leaf {:#x} subleaf {:#x}", m.cpu.gpr[0] as u32, m.cpu.gpr[1] as u32);
        }
        _ => {
            if let Some(fields) = qualification_fields(reason, q) {
                d.detail = fields
                    .iter()
                    .map(|(n, v)| format!("{n} {v:#x}"))
                    .collect::<Vec<_>>()
                    .join(", ");
            }
        }
    }
    d
}

/// The event VMRUN injects (EVENTINJ), in words; empty if none.
fn svm_inject(raw: u64) -> String {
    let e = SvmEvent::decode(raw);
    if !e.valid {
        return String::new();
    }
    let code =
        if e.has_error_code { format!(" error code {:#x}", e.error_code) } else { String::new() };
    format!("{:?} vector {:#x}{code}", e.kind, e.vector)
}

/// The event VM entry injects (VM-entry interruption information), in words.
fn vmx_inject(raw: u32, error_code: u64) -> String {
    let e = InterruptionInfo::decode(raw);
    if !e.valid {
        return String::new();
    }
    let code =
        if e.deliver_error_code { format!(" error code {error_code:#x}") } else { String::new() };
    format!("{:?} vector {:#x}{code}", e.kind, e.vector)
}

fn cs_rip(m: &Machine) -> String {
    format!("{:04x}:{:#x}", m.cpu.seg[SegReg::Cs as usize].selector, m.cpu.rip)
}

/// VMRUN loaded the guest of the VMCB at `vmcb` (call after the guest state is loaded).
pub fn svm_vmrun(m: &mut Machine, vmcb: u64) {
    if !m.nested_traced() {
        return;
    }
    let (now, vcpu) = (m.clock(), m.current_vcpu());
    let (asid, eventinj) = m.nested.svm.guest.as_ref().map_or((0, 0), |g| {
        use hvsim_svm_model::{vmcb as f, VmcbRead};
        (g.vmcb.read(f::GUEST_ASID, 4), g.vmcb.u64_at(f::EVENTINJ))
    });
    let regs = guest_regs(m);
    let changed = m.nested_log.changed(vcpu, vmcb, regs);
    let inject = svm_inject(eventinj);
    let inj_text = if inject.is_empty() { String::new() } else { format!(", injecting {inject}") };
    tracing::info!(target: NESTED, insn = now, vcpu, event = "vmrun", from_level = 1u8, to_level = 2u8,
        vmcb, guest_rip = m.cpu.rip, asid, inject = inject.as_str(), changed = changed.as_str(),
        "L1 -> L2: VMRUN with the VMCB at {vmcb:#x} (ASID {asid}), guest at {}{inj_text}; changed: {changed}",
        cs_rip(m));
}

/// VMRUN failed its consistency checks (APM Vol. 2 §15.5.1): #VMEXIT(VMEXIT_INVALID).
pub fn svm_vmrun_failed(m: &mut Machine, vmcb: u64, e: &InvalidVmcb) {
    let (now, vcpu) = (m.clock(), m.current_vcpu());
    let check = FailedCheck::Vmrun(*e);
    m.nested_log.record(FailedEntry {
        insn: now,
        vcpu,
        instruction: "VMRUN",
        control: vmcb,
        check,
    });
    m.nested_log.last_exit = Some(NestedExit::Svm(SvmExitCode::INVALID));
    if !m.nested_traced() {
        return;
    }
    tracing::info!(target: NESTED, insn = now, vcpu, event = "vmrun_failed", from_level = 1u8, to_level = 1u8,
        vmcb, exit_code = SvmExitCode::INVALID.0, exit_name = "VMEXIT_INVALID",
        check = check.name(), section = check.reference().as_str(), field = e.field, value = e.value,
        requirement = check.requirement(),
        "L1 -> L1: VMRUN with the VMCB at {vmcb:#x} failed, #VMEXIT VMEXIT_INVALID: {}", check.describe());
}

/// A #VMEXIT from L2 (call with the guest state still loaded, after the VMCB is
/// written).
pub fn svm_vmexit(m: &mut Machine, code: SvmExitCode, info: &crate::nested::svm::vmexit::ExitInfo) {
    m.nested_log.last_exit = Some(NestedExit::Svm(code));
    if !m.nested_traced() {
        return;
    }
    let (now, vcpu) = (m.clock(), m.current_vcpu());
    let vmcb = m.nested.svm.vmcb_cache.as_ref().map_or(0, |(pa, _)| *pa);
    let d = decode_svm(m, code, info.info1, info.info2);
    let detail = if d.detail.is_empty() { String::new() } else { format!(": {}", d.detail) };
    tracing::info!(target: NESTED, insn = now, vcpu, event = "vmexit", from_level = 2u8, to_level = 1u8,
        vmcb, exit_code = code.0, exit_name = %code, exitinfo1 = info.info1, exitinfo2 = info.info2,
        exitintinfo = info.exitintinfo, guest_rip = m.cpu.rip,
        port = d.port, size = d.size, dir = d.dir, string = d.string, rep = d.rep, cr = d.cr, dr = d.dr,
        gpr = d.gpr, msr = d.msr, gpa = d.gpa, gla = d.gla, access = d.access.as_deref(),
        fault = d.fault, vector = d.vector, error_code = d.error_code, detail = d.detail.as_str(),
        "L2 -> L1: #VMEXIT {code} ({:#x}){detail}; guest at {}, EXITINFO1 {:#x}, EXITINFO2 {:#x}",
        code.0, cs_rip(m), info.info1, info.info2);
}

fn entry_insn(launch: bool) -> &'static str {
    if launch {
        "VMLAUNCH"
    } else {
        "VMRESUME"
    }
}

/// VMLAUNCH/VMRESUME entered the guest of the VMCS at `vmcs` (call after the guest
/// state is loaded, before event injection).
pub fn vmx_entry(m: &mut Machine, vmcs: u64, launch: bool) {
    if !m.nested_traced() {
        return;
    }
    use hvsim_vmx_model::vmcs_fields as f;
    let (now, vcpu) = (m.clock(), m.current_vcpu());
    let regs = guest_regs(m);
    let changed = m.nested_log.changed(vcpu, vmcs, regs);
    let inject = vmx_inject(
        m.nested.vmx.field(f::VM_ENTRY_INTERRUPTION_INFO) as u32,
        m.nested.vmx.field(f::VM_ENTRY_EXCEPTION_ERROR_CODE),
    );
    let inj_text = if inject.is_empty() { String::new() } else { format!(", injecting {inject}") };
    let instruction = entry_insn(launch);
    tracing::info!(target: NESTED, insn = now, vcpu, event = "vm_entry", from_level = 1u8, to_level = 2u8,
        vmcs, instruction, guest_rip = m.cpu.rip, inject = inject.as_str(), changed = changed.as_str(),
        "L1 -> L2: VM entry by {instruction} with the VMCS at {vmcs:#x}, guest at {}{inj_text}; changed: {changed}",
        cs_rip(m));
}

/// VMLAUNCH/VMRESUME failed a VM-entry check (SDM Vol. 3C 27.2-27.4).
pub fn vmx_entry_failed(m: &mut Machine, vmcs: u64, launch: bool, e: &EntryFailure) {
    let (now, vcpu) = (m.clock(), m.current_vcpu());
    let check = FailedCheck::VmEntry(*e);
    let instruction = entry_insn(launch);
    m.nested_log.record(FailedEntry { insn: now, vcpu, instruction, control: vmcs, check });
    if let Some(reason) = e.form.exit_reason_field() {
        m.nested_log.last_exit = Some(NestedExit::Vmx(reason));
    }
    if !m.nested_traced() {
        return;
    }
    let (exit_reason, exit_name, error) = match e.form {
        FailureForm::VmFailValid(err) => (None, None, Some(err.0)),
        FailureForm::ExitFailure { reason, .. } => {
            (e.form.exit_reason_field(), reason.name(), None)
        }
    };
    let field = check.field();
    tracing::info!(target: NESTED, insn = now, vcpu, event = "vm_entry_failed", from_level = 1u8, to_level = 1u8,
        vmcs, instruction, check = check.name(), section = check.reference().as_str(),
        requirement = check.requirement(), outcome = check.outcome().as_str(), exit_reason, exit_name,
        vm_instruction_error = error, field = field.as_deref(),
        "L1 -> L1: VM entry by {instruction} with the VMCS at {vmcs:#x} failed: {}", check.describe());
}

/// VMLAUNCH/VMRESUME failed its own checks (SDM Vol. 3C 27.1; call after VMfailInvalid
/// or VMfailValid): VMfailInvalid without a current VMCS, else VMfailValid with the
/// error the VM-instruction error field now holds.
pub fn vmx_entry_refused(m: &mut Machine, launch: bool) {
    use hvsim_vmx_model::vmcs_fields as f;
    let err = m
        .nested
        .vmx
        .current
        .as_ref()
        .map(|c| VmInstructionError(c.vmcs.get(f::VM_INSTRUCTION_ERROR) as u32));
    let (now, vcpu) = (m.clock(), m.current_vcpu());
    let check = FailedCheck::Instruction(err);
    let instruction = entry_insn(launch);
    let vmcs = m.nested.vmx.current.as_ref().map_or(u64::MAX, |c| c.pa);
    m.nested_log.record(FailedEntry { insn: now, vcpu, instruction, control: vmcs, check });
    if !m.nested_traced() {
        return;
    }
    tracing::info!(target: NESTED, insn = now, vcpu, event = "vm_entry_failed", from_level = 1u8, to_level = 1u8,
        vmcs, instruction, check = check.name(), section = BASIC_ENTRY_CHECKS,
        requirement = check.requirement(), outcome = check.outcome().as_str(),
        vm_instruction_error = err.map(|e| e.0),
        "L1 -> L1: {instruction} failed: {}", check.describe());
}

/// A VM exit from L2 (call with the guest state saved and still loaded, before the host
/// state is loaded).
pub fn vmx_exit(m: &mut Machine, info: &VmxExitInfo) {
    m.nested_log.last_exit = Some(NestedExit::Vmx(info.reason));
    if !m.nested_traced() {
        return;
    }
    let (now, vcpu) = (m.clock(), m.current_vcpu());
    let vmcs = m.nested.vmx.current.as_ref().map_or(u64::MAX, |c| c.pa);
    let reason = VmxExitReason(info.reason as u16);
    let exit_name = reason.name().unwrap_or("unknown exit reason");
    let d = decode_vmx(m, info);
    let detail = if d.detail.is_empty() { String::new() } else { format!(": {}", d.detail) };
    tracing::info!(target: NESTED, insn = now, vcpu, event = "vm_exit", from_level = 2u8, to_level = 1u8,
        vmcs, exit_reason = info.reason, exit_name, qualification = info.qualification,
        guest_rip = m.cpu.rip,
        port = d.port, size = d.size, dir = d.dir, string = d.string, rep = d.rep, cr = d.cr, dr = d.dr,
        gpr = d.gpr, msr = d.msr, gpa = d.gpa, gla = d.gla, access = d.access.as_deref(),
        allowed = d.allowed.as_deref(), fault = d.fault, vector = d.vector, error_code = d.error_code,
        detail = d.detail.as_str(),
        "L2 -> L1: VM exit {exit_name} ({}){detail}; guest at {}, qualification {:#x}",
        info.reason, cs_rip(m), info.qualification);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lists_changes_or_everything() {
        let mut a = [0u64; GUEST_REGS.len()];
        a[0] = 0x1000;
        let mut b = a;
        b[0] = 0x1005;
        b[3] = 7;
        assert_eq!(diff(Some(&a), &b), "rip 0x1000 -> 0x1005, rax 0x0 -> 0x7");
        assert_eq!(diff(Some(&a), &a), "");
        assert!(diff(None, &a).starts_with("rip=0x1000, rsp=0x0, "));
    }

    #[test]
    fn failures_beyond_the_limit_are_counted() {
        let mut log = NestedLog::default();
        let e = InvalidVmcb {
            check: hvsim_svm_model::vmrun_checks::CHECKS[0].id,
            field: 0x58,
            value: 0,
        };
        for k in 0..(MAX_FAILURES_KEPT as u64 + 3) {
            log.record(FailedEntry {
                insn: k,
                vcpu: 0,
                instruction: "VMRUN",
                control: 0x5000,
                check: FailedCheck::Vmrun(e),
            });
        }
        assert_eq!(log.failure_count(), MAX_FAILURES_KEPT as u64 + 3);
        assert_eq!(log.failures().len(), MAX_FAILURES_KEPT);
        assert_eq!(log.failures()[1].insn, 1);
    }
}
