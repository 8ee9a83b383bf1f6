//! The `mmu` trace category: one record per shadow-page event of the shadow cache
//! ([`hvsim_mmu::shadow::ShadowEvent`]), attributed to the instruction during which it
//! happened.
//!
//! Records (target [`super::MMU`]) have `insn`, `vcpu`, `event` and, where the event
//! defines them, `sp` (shadow page index), `gfn` (guest frame of the shadowed table),
//! `level` (table level, 1 = page table), `mode` (guest paging mode), `nested` (the L2
//! context, 0 = the guest's own), `role` (the packed role word), `cr3`, `cached`,
//! `updated`, `writes`, `generation`, `dropped`. Events: `create`, `zap`, `zap_all`,
//! `unsync`, `sync`, `write_flooding`, `recycle`, `root_switch`, and `dropped` when more
//! than [`hvsim_mmu::shadow::EVENT_LOG_LIMIT`] piled up within one instruction.
//!
//! While the category is on, the machine runs blocks one instruction at a time and
//! drains the cache's event log after each ([`drain`]); off, the cache records nothing.

use super::{Category, MMU};
use crate::machine::Machine;
use hvsim_mmu::shadow::{Role, ShadowEvent};

/// Emits the shadow cache's recorded events as records of instruction `insn` (the
/// clock value at the instruction's start).
pub(crate) fn drain(m: &mut Machine, insn: u64) {
    let Some(s) = m.shadow.as_mut() else { return };
    if !s.has_events() {
        return;
    }
    let (events, dropped) = s.take_events();
    if !m.trace_config().wants(Category::Mmu, insn) {
        return;
    }
    let vcpu = m.current_vcpu();
    for e in &events {
        record(insn, vcpu, e);
    }
    if dropped != 0 {
        tracing::info!(target: MMU, insn, vcpu, event = "dropped", dropped,
            "{dropped} more shadow-page events in this instruction were not recorded");
    }
}

fn table(role: Role) -> String {
    let nested =
        if role.nested() != 0 { format!(", L2 context {}", role.nested()) } else { String::new() };
    format!("level-{} {:?} table{nested}", role.level(), role.mode())
}

fn record(insn: u64, vcpu: usize, e: &ShadowEvent) {
    match *e {
        ShadowEvent::Create { sp, gfn, role } => {
            tracing::info!(target: MMU, insn, vcpu, event = "create", sp, gfn = gfn.0,
                level = role.level(), mode = ?role.mode(), nested = role.nested(), role = role.word(),
                "create shadow page {sp} for the {} at gfn {:#x}", table(role), gfn.0);
        }
        ShadowEvent::Zap { sp, gfn, role } => {
            tracing::info!(target: MMU, insn, vcpu, event = "zap", sp, gfn = gfn.0,
                level = role.level(), mode = ?role.mode(), nested = role.nested(), role = role.word(),
                "zap shadow page {sp} of the {} at gfn {:#x}", table(role), gfn.0);
        }
        ShadowEvent::ZapAll { generation } => {
            tracing::info!(target: MMU, insn, vcpu, event = "zap_all", generation,
                "zap all shadow pages (generation {generation})");
        }
        ShadowEvent::Unsync { sp, gfn } => {
            tracing::info!(target: MMU, insn, vcpu, event = "unsync", sp, gfn = gfn.0,
                "shadow page {sp} goes unsync: the guest wrote its page table at gfn {:#x}", gfn.0);
        }
        ShadowEvent::Sync { sp, gfn, updated } => {
            tracing::info!(target: MMU, insn, vcpu, event = "sync", sp, gfn = gfn.0, updated,
                "sync shadow page {sp} with the page table at gfn {:#x}: {updated} entries changed", gfn.0);
        }
        ShadowEvent::WriteFlooding { sp, gfn, writes } => {
            tracing::info!(target: MMU, insn, vcpu, event = "write_flooding", sp, gfn = gfn.0, writes,
                "write flooding: the table at gfn {:#x} was written {writes} times without use; zap shadow page {sp}", gfn.0);
        }
        ShadowEvent::Recycle { sp } => {
            tracing::info!(target: MMU, insn, vcpu, event = "recycle", sp,
                "recycle shadow page {sp} (least recently used, at the page bound)");
        }
        ShadowEvent::RootSwitch { cr3, sp, role, cached } => {
            let how = if cached { "cached" } else { "new" };
            tracing::info!(target: MMU, insn, vcpu, event = "root_switch", cr3, sp, cached,
                level = role.level(), mode = ?role.mode(), nested = role.nested(), role = role.word(),
                "switch to the {how} root shadow page {sp} for CR3 {cr3:#x} ({})", table(role));
        }
    }
}
