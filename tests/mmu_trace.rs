//! `--trace mmu`: shadow-page events as JSON records with stable field names (issue 8,
//! "Traces": mmu = shadow page events, unsync, syncs, zaps).

use hvsim::trace::{capture, Category, Format, TraceConfig};
use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use iced_x86::code_asm::*;
use serde_json::Value;

const CODE: u64 = 0x1000;

/// SDM Vol. 3A §4.10.4.1 "Operations that Invalidate TLBs and Paging-Structure Caches"
/// (MOV to CR3): the first translation creates the shadow pages of the harness's
/// identity map (PML4, PDPT, PD with 2-MiB leaves) and a new root; after MOV CR3 the
/// same root is found cached.
#[test]
fn shadow_pages_and_root_switches_are_recorded() {
    let mut a = CodeAssembler::new(64).unwrap();
    a.nop().unwrap();
    a.mov(rax, cr3).unwrap();
    a.mov(cr3, rax).unwrap();
    a.nop().unwrap();
    a.hlt().unwrap();
    let code = a.assemble(CODE).unwrap();
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load(CODE, &code).unwrap();
    m.enter_mode(GuestMode::Long64, CODE, 0x8000).unwrap();
    m.set_trace(TraceConfig::new(&[Category::Mmu], 0, u64::MAX));
    let (r, out) = capture(Format::Json, || m.run(Some(100)));
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
    let records: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for r in &records {
        assert_eq!(r["target"], "hvsim::mmu", "{r}");
        assert_eq!(r["vcpu"], 0);
        assert!(r["insn"].is_u64() && r["event"].is_string(), "{r}");
    }
    let pml4 = m.setup_area() + 0x1000;
    let created: Vec<(u64, u64)> = records
        .iter()
        .filter(|r| r["event"] == "create")
        .map(|r| (r["level"].as_u64().unwrap(), r["gfn"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        created,
        [(4, pml4 >> 12), (3, (pml4 >> 12) + 1), (2, (pml4 >> 12) + 2)],
        "{records:#?}"
    );
    let create = records.iter().find(|r| r["event"] == "create").unwrap();
    assert_eq!(create["insn"], 0, "the first fetch creates them");
    assert_eq!(create["mode"], "Long4");
    assert_eq!(create["nested"], 0);
    assert!(create["sp"].is_u64() && create["role"].is_u64());
    let roots: Vec<(u64, bool)> = records
        .iter()
        .filter(|r| r["event"] == "root_switch")
        .map(|r| (r["insn"].as_u64().unwrap(), r["cached"].as_bool().unwrap()))
        .collect();
    // Instruction 0 (the first fetch) builds the root; MOV CR3 is instruction 2, and
    // the next translation after it finds the root cached.
    assert_eq!(roots.first(), Some(&(0, false)), "{records:#?}");
    assert!(roots.iter().skip(1).all(|&(insn, cached)| cached && insn >= 2), "{records:#?}");
    assert!(roots.len() >= 2, "{records:#?}");
    let root = records.iter().find(|r| r["event"] == "root_switch").unwrap();
    assert_eq!(root["cr3"], m.cpu.cr3);
    assert!(root["message"].as_str().unwrap().starts_with("switch to the new root shadow page"));
}

/// Without the category the cache records nothing and the run is unchanged.
#[test]
fn nothing_without_the_category() {
    let mut a = CodeAssembler::new(64).unwrap();
    a.nop().unwrap();
    a.hlt().unwrap();
    let code = a.assemble(CODE).unwrap();
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load(CODE, &code).unwrap();
    m.enter_mode(GuestMode::Long64, CODE, 0x8000).unwrap();
    m.set_trace(TraceConfig::new(&[Category::Io], 0, u64::MAX));
    let (_, out) = capture(Format::Json, || m.run(Some(100)));
    assert!(!out.contains("hvsim::mmu"), "{out}");
}
