//! #VMEXIT (APM Vol. 2 §15.6 "#VMEXIT"): save the guest state and the exit information
//! into the VMCB, reload the host state VMRUN saved, clear GIF.

use super::state::{load_world, read_vmcb, save_world, write_vmcb};
use crate::cpu::flags::IF;
use crate::machine::Machine;
use hvsim_svm_model::vmcb::{self, bits};
use hvsim_svm_model::{SvmExitCode, VmcbRead};

/// The host's translation context (ASID 0, §15.16 "TLB Control").
pub const HOST_CONTEXT: u16 = 0;

/// DR7 after #VMEXIT: all breakpoints disabled (its reset value).
const DR7_RESET: u64 = 0x400;

/// The exit information of one #VMEXIT besides its code.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitInfo {
    /// EXITINFO1.
    pub info1: u64,
    /// EXITINFO2.
    pub info2: u64,
    /// EXITINTINFO: the event that was being delivered, in EVENTINJ format (0 if none).
    pub exitintinfo: u64,
    /// NRIP for instruction intercepts ("the next sequential instruction pointer",
    /// §15.7.1); `None` writes 0.
    pub nrip: Option<u64>,
    /// Decode assists (§15.33.4 "#PF and #NPF Information"): the guest instruction bytes
    /// fetched and their number, for #PF intercepts.
    pub guest_insn: Option<([u8; 15], u8)>,
}

/// Performs a #VMEXIT from the running guest with `code`. Does nothing outside a guest.
/// The guest RIP saved is the vCPU's RIP: the intercepted instruction, the faulting
/// instruction, or the next instruction to run for interrupts.
pub fn vmexit(m: &mut Machine, code: SvmExitCode, info: ExitInfo) {
    let Some(ctx) = m.nested.svm.guest.take() else {
        return;
    };
    let ctx = *ctx;
    let mut img = read_vmcb(m, ctx.vmcb_pa);
    save_world(m, &mut img, m.cpu.rip);

    // Interrupt state and the virtual-interrupt fields the guest changed (§15.21).
    let vintr = img.u64_at(vmcb::V_INTR_CONTROL);
    let masking = bits::V_INTR_MASKING.get(ctx.vmcb.u64_at(vmcb::V_INTR_CONTROL)) != 0;
    let shadow = m.cpu.insn_count == m.cpu.shadow_at || m.cpu.shadow_pending;
    let mut int_state = bits::INTERRUPT_SHADOW.set(0, u64::from(shadow));
    if masking {
        int_state = bits::GUEST_INTERRUPT_MASK.set(int_state, u64::from(m.cpu.flags.bit(IF)));
    }
    img.set_u64(vmcb::INTERRUPT_STATE, int_state);
    let vintr = bits::V_TPR.set(vintr, m.cpu.cr8 & 0xF);
    let vintr = bits::V_IRQ.set(vintr, u64::from(ctx.v_irq));
    img.write(vmcb::V_INTR_CONTROL, 4, vintr);

    img.set_u64(vmcb::EXITCODE, code.0);
    img.set_u64(vmcb::EXITINFO1, info.info1);
    img.set_u64(vmcb::EXITINFO2, info.info2);
    img.set_u64(vmcb::EXITINTINFO, info.exitintinfo);
    img.set_u64(vmcb::NRIP, info.nrip.unwrap_or(0));
    if let Some((bytes, len)) = info.guest_insn {
        let len = len.min(15);
        img.write(vmcb::GUEST_INSN_LEN, 1, u64::from(len));
        for (k, b) in bytes.iter().enumerate() {
            let v = if k < usize::from(len) { *b } else { 0 };
            img.write(vmcb::GUEST_INSN_BYTES + k as u16, 1, u64::from(v));
        }
    }
    write_vmcb(m, ctx.vmcb_pa, &img);
    // What the processor keeps for the next VMRUN of this VMCB under its clean bits
    // (§15.15): the controls VMRUN used and the state this #VMEXIT saved.
    let used = ctx.vmcb.u64_at(vmcb::V_INTR_CONTROL);
    let mut cache = ctx.vmcb;
    save_world(m, &mut cache, m.cpu.rip);
    let used = bits::V_IRQ.set(bits::V_TPR.set(used, m.cpu.cr8 & 0xF), u64::from(ctx.v_irq));
    cache.write(vmcb::V_INTR_CONTROL, 4, used);
    m.nested.svm.vmcb_cache = Some((ctx.vmcb_pa, cache));
    crate::trace::nested::svm_vmexit(m, code, &info);

    // Host state (§15.6: "the processor ... reloads the host state saved by VMRUN").
    if masking {
        m.cpu.cr8 = ctx.host_cr8;
    }
    load_world(m, &ctx.host, false, HOST_CONTEXT);
    m.cpu.dr[7] = DR7_RESET;
    m.cpu.cpl = 0;
    m.cpu.halted = false;
    m.cpu.shadow_pending = false;
    m.cpu.shadow_at = u64::MAX;
    // "#VMEXIT ... clears GIF" (§15.17).
    m.nested.svm.gif = false;
    m.nested.svm.vmexits += 1;
    m.cpu.end_block = true;
}
