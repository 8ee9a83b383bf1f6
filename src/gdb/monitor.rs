//! GDB's `monitor` commands: the nesting level, the active VMCB or VMCS with a few
//! decoded fields, and the vCPU list. `monitor help` lists them.

use crate::machine::Machine;
use crate::trace::nested::NestedExit;
use hvsim_svm_model::{vmcb, SvmExitCode, VmcbRead};
use hvsim_vmx_model::vmcs_fields as f;
use hvsim_vmx_model::{LaunchState, VmxExitReason};
use std::fmt::Write;

/// The commands, with what they show.
pub(super) const COMMANDS: [(&str, &str); 4] = [
    ("nested", "the nesting level and the active VMCB / current VMCS with decoded fields"),
    ("vcpus", "every vCPU: RIP, mode, halted or waiting for SIPI"),
    ("status", "both of the above (also what an empty `monitor` shows)"),
    ("help", "this list"),
];

/// The answer to `monitor <cmd>`.
pub(super) fn answer(m: &Machine, cmd: &str) -> String {
    match cmd.trim() {
        "" | "status" => format!("{}{}", nested(m), vcpus(m)),
        "nested" => nested(m),
        "vcpus" => vcpus(m),
        "help" => help(),
        other => format!("unknown monitor command '{other}'\n{}", help()),
    }
}

fn help() -> String {
    let mut out = String::from("hvsim monitor commands:\n");
    for (c, what) in COMMANDS {
        let _ = writeln!(out, "  {c:<7} {what}");
    }
    out
}

fn last_exit(m: &Machine) -> String {
    match m.nested_log().last_exit() {
        Some(NestedExit::Svm(code)) => format!("{code}"),
        Some(NestedExit::Vmx(r)) => {
            let basic = VmxExitReason(r as u16);
            let entry = if r & (1 << 31) != 0 { " (VM-entry failure)" } else { "" };
            format!("{} ({}){entry}", basic.name().unwrap_or("unknown"), basic.0)
        }
        None => "none".into(),
    }
}

fn nested(m: &Machine) -> String {
    let mut out = String::new();
    let level = if m.nested.in_guest() { 2 } else { 1 };
    let _ = writeln!(
        out,
        "nesting level: L{level} ({})",
        if level == 2 { "a nested guest runs" } else { "no nested guest runs" }
    );
    let svm = &m.nested.svm;
    if let Some(g) = &svm.guest {
        let v = &g.vmcb;
        let _ = writeln!(
            out,
            "SVM: VMCB at {:#x}: ASID {}, guest CR3 {:#x}, EFER {:#x}, nested paging {}, EVENTINJ {:#x}",
            g.vmcb_pa,
            v.read(vmcb::GUEST_ASID, 4),
            v.u64_at(vmcb::CR3),
            v.u64_at(vmcb::EFER),
            if g.np.is_some() { "on" } else { "off" },
            v.u64_at(vmcb::EVENTINJ),
        );
        let _ = writeln!(out, "  L1 resumes at {:#x}", g.host.u64_at(vmcb::RIP));
    } else if let Some((pa, v)) = &svm.vmcb_cache {
        let code = SvmExitCode(v.u64_at(vmcb::EXITCODE));
        let _ = writeln!(
            out,
            "SVM: last VMCB at {pa:#x}: EXITCODE {code}, EXITINFO1 {:#x}, EXITINFO2 {:#x}, guest RIP {:#x}",
            v.u64_at(vmcb::EXITINFO1),
            v.u64_at(vmcb::EXITINFO2),
            v.u64_at(vmcb::RIP),
        );
    }
    if svm.hsave_pa != 0 || svm.vmruns != 0 {
        let _ = writeln!(
            out,
            "  GIF {}, VM_HSAVE_PA {:#x}, {} VMRUNs, {} #VMEXITs",
            u8::from(svm.gif),
            svm.hsave_pa,
            svm.vmruns,
            svm.vmexits
        );
    }
    let vmx = &m.nested.vmx;
    if let Some(on) = vmx.vmxon {
        let _ = writeln!(
            out,
            "VMX: VMXON region at {on:#x}, {} entries, {} exits",
            vmx.entries, vmx.exits
        );
        match &vmx.current {
            Some(c) => {
                let launched =
                    if c.vmcs.launch_state == LaunchState::Launched { "launched" } else { "clear" };
                let _ = writeln!(out, "  current VMCS pointer {:#x} ({launched})", c.pa);
                for (name, e) in [
                    ("GUEST_RIP", f::GUEST_RIP),
                    ("GUEST_CR3", f::GUEST_CR3),
                    ("HOST_RIP", f::HOST_RIP),
                    ("EXIT_QUALIFICATION", f::EXIT_QUALIFICATION),
                    ("VM_INSTRUCTION_ERROR", f::VM_INSTRUCTION_ERROR),
                ] {
                    let _ = writeln!(out, "  {name:<21} {:#x}", c.vmcs.get(e));
                }
                let r = c.vmcs.get(f::EXIT_REASON) as u32;
                let basic = VmxExitReason(r as u16);
                let _ = writeln!(
                    out,
                    "  EXIT_REASON           {r:#x} ({})",
                    basic.name().unwrap_or("unknown")
                );
            }
            None => {
                let _ = writeln!(out, "  current VMCS pointer FFFFFFFF_FFFFFFFFH (none)");
            }
        }
    }
    let _ = writeln!(out, "last exit to L1: {}", last_exit(m));
    let log = m.nested_log();
    if log.failure_count() != 0 {
        let _ = writeln!(out, "failed entries: {}", log.failure_count());
        if let Some(f) = log.failures().last() {
            let _ = writeln!(out, "  last listed: instruction {}: {}", f.insn, f.check.describe());
        }
    }
    out
}

fn vcpus(m: &Machine) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "vCPUs: {}", m.vcpu_count());
    for i in 0..m.vcpu_count() {
        let Some(c) = m.vcpu(i) else { continue };
        let state = if c.wait_for_sipi {
            "waiting for SIPI"
        } else if c.halted {
            "halted"
        } else {
            "running"
        };
        let current = if i == m.current_vcpu() { " (current)" } else { "" };
        let _ = writeln!(
            out,
            "  vCPU {i}{current}: APIC ID {}, {:?} mode, CS:RIP {:04x}:{:#x}, {state}, {} instructions",
            c.apic_id,
            c.mode,
            c.seg[crate::cpu::regs::SegReg::Cs as usize].selector,
            c.rip,
            c.insn_count
        );
    }
    out
}
