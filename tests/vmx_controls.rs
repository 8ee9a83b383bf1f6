//! Nested VMX execution controls, event windows and exit information end to end (issue
//! 7): the VMX-preemption timer, NMI exiting, virtual NMIs and the NMI window, the
//! interrupt window and the priority among events, the TPR shadow, the monitor trap
//! flag, MONITOR/MWAIT/PAUSE and PAUSE-loop exiting, the instruction exits of the
//! secondary controls, IDT-vectoring information, the VM-exit MSR areas and the exit
//! controls. Each test names the SDM Vol. 3C section it checks. The L1 program, memory
//! layout and baseline VMCS are in `support/vmx_l1.rs`.

#[path = "support/vmx_l1.rs"]
mod vmx_l1;
use hvsim::nested::vmx::events::PENDING_DEBUG_BS;
use hvsim_vmx_model::entry_checks::controls::VTPR_OFFSET;
use hvsim_vmx_model::exit_info::InstructionInfo;
use vmx_l1::*;

/// The guest's IDT (256 16-byte gates) and the code its gates point at.
const IDT: u64 = 0x60000;
const VAPIC: u64 = 0x62000;
const HANDLER: u64 = 0x24000;
const AFTER_IRET: u64 = L2 + 0x800;
const MSR_AREA: u64 = 0x63000;
/// Interruptibility state (SDM Vol. 3C 25.4.2 Table 25-3).
const BLOCKING_BY_STI: u64 = 1;
const BLOCKING_BY_NMI: u64 = 8;
/// RFLAGS.IF and RFLAGS.TF.
const RFLAGS_IF: u64 = 0x202;
const RFLAGS_TF: u64 = 0x102;
/// VM-exit interruption information: NMI (type 2, vector 2), valid.
const NMI_INFO: u64 = 0x8000_0202;

fn proc_bits(v: &mut Vmcs, bits: u32) {
    set_bits(v, f::PRIMARY_PROC_BASED_CONTROLS, u64::from(bits));
}

fn proc2_bits(v: &mut Vmcs, bits: u32) {
    proc_bits(v, proc::ACTIVATE_SECONDARY_CONTROLS);
    set_bits(v, f::SECONDARY_PROC_BASED_CONTROLS, u64::from(bits));
}

fn pin_bits(v: &mut Vmcs, bits: u32) {
    set_bits(v, f::PIN_BASED_CONTROLS, u64::from(bits));
}

fn exit_bits(v: &mut Vmcs, bits: u32) {
    set_bits(v, f::PRIMARY_VM_EXIT_CONTROLS, u64::from(bits));
}

/// A 64-bit interrupt gate to `target` (present unless `present` is false).
fn write_gate(m: &mut Machine, vector: u8, target: u64, present: bool) {
    let at = IDT + 16 * u64::from(vector);
    let lo = (target & 0xFFFF)
        | 0x08 << 16
        | (if present { 0x8E00u64 } else { 0x0E00 }) << 32
        | ((target >> 16) & 0xFFFF) << 48;
    m.mem.write_u64(Gpa(at), lo);
    m.mem.write_u64(Gpa(at + 8), target >> 32);
}

/// Gives the guest its own IDT (every gate to HANDLER, which executes VMCALL).
fn guest_idt(m: &mut Machine, v: &mut Vmcs) {
    for vector in 0..=255u8 {
        write_gate(m, vector, HANDLER, true);
    }
    m.load(HANDLER, &asm(HANDLER, |a| a.vmcall())).unwrap();
    v.set(f::GUEST_IDTR_BASE, IDT);
    v.set(f::GUEST_IDTR_LIMIT, 0xFFF);
}

/// `setup`, with a guest IDT and the machine available to `edit`.
fn setup_with_idt(
    l2: impl FnOnce(Asm) -> Result<(), IcedError>,
    edit: impl FnOnce(&mut Machine, &mut Vmcs),
) -> Machine {
    let mut m = setup(l2, |_| {});
    let mut v = baseline(&m);
    guest_idt(&mut m, &mut v);
    edit(&mut m, &mut v);
    write_vmcs_table(&mut m, &v);
    m
}

fn spin(a: Asm) -> Result<(), IcedError> {
    let mut lp = a.create_label();
    a.set_label(&mut lp)?;
    a.inc(r11)?;
    a.jmp(lp)
}

/// Runs L1 until the VM entry happened (so that events can be raised in the guest).
fn run_until_guest(m: &mut Machine) {
    for _ in 0..10_000 {
        if m.nested.vmx.non_root {
            return;
        }
        m.run(Some(1));
    }
    panic!("no VM entry");
}

fn exit_info(m: &Machine) -> u64 {
    vmcs_field(m, f::VM_EXIT_INTERRUPTION_INFO)
}

// ---- Capabilities (SDM Vol. 3D Appendix A.3-A.6) ---------------------------------------

/// A.3.1, A.3.2, A.3.3, A.4, A.6: the controls implemented in this round are advertised,
/// and IA32_VMX_MISC[4:0] gives the preemption-timer rate the timer uses.
#[test]
fn capabilities_advertise_the_controls() {
    let c = intel_capabilities();
    let pin_may = c.pin.may_be_one;
    for bit in [pin::NMI_EXITING, pin::VIRTUAL_NMIS, pin::ACTIVATE_PREEMPTION_TIMER] {
        assert_ne!(pin_may & u64::from(bit), 0, "pin {bit:#x}");
    }
    for bit in [
        proc::USE_TPR_SHADOW,
        proc::NMI_WINDOW_EXITING,
        proc::MONITOR_TRAP_FLAG,
        proc::MWAIT_EXITING,
        proc::MONITOR_EXITING,
        proc::PAUSE_EXITING,
    ] {
        assert_ne!(c.proc.may_be_one & u64::from(bit), 0, "proc {bit:#x}");
    }
    for bit in [
        proc2::PAUSE_LOOP_EXITING,
        proc2::ENABLE_INVPCID,
        proc2::ENABLE_RDTSCP,
        proc2::RDRAND_EXITING,
        proc2::RDSEED_EXITING,
        proc2::WBINVD_EXITING,
        proc2::DESCRIPTOR_TABLE_EXITING,
    ] {
        assert_ne!(c.proc2.may_be_one & u64::from(bit), 0, "proc2 {bit:#x}");
    }
    assert_ne!(c.exit.may_be_one & u64::from(exit::SAVE_PREEMPTION_TIMER_VALUE), 0);
    let misc = c.msr(vmx_msr::IA32_VMX_MISC).unwrap();
    assert_eq!(misc & 0x1F, u64::from(c.preemption_timer_rate));
}

// ---- VMX-preemption timer (26.5.1, 27.7.4, 28.3.4) -------------------------------------

fn timer(v: &mut Vmcs, value: u64) {
    pin_bits(v, pin::ACTIVATE_PREEMPTION_TIMER);
    v.set(f::VMX_PREEMPTION_TIMER_VALUE, value);
}

/// 27.7.4: a timer value of 0 causes a VM exit (reason 52) before the first guest
/// instruction.
#[test]
fn preemption_timer_zero_exits_before_the_first_instruction() {
    let mut m = setup(spin, |v| timer(v, 0));
    m.cpu.gpr[11] = 0;
    expect_exit(&mut m, 52);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
    assert_eq!(m.cpu.gpr[11], 0, "no guest instruction ran");
}

/// 26.5.1: the timer counts down by 1 each time bit X (IA32_VMX_MISC[4:0]) of the TSC
/// changes; hvsim's TSC advances by 1 per instruction, so N ticks take between
/// (N - 1) * 2^X and N * 2^X guest instructions.
#[test]
fn preemption_timer_counts_at_the_misc_rate() {
    const N: u64 = 20;
    let rate = intel_capabilities().preemption_timer_rate;
    let mut m = setup(spin, |v| timer(v, N));
    m.cpu.gpr[11] = 0;
    expect_exit(&mut m, 52);
    let guest_insns = 2 * m.cpu.gpr[11];
    let (lo, hi) = ((N - 1) << rate, (N << rate) + 2);
    assert!((lo..=hi).contains(&guest_insns), "{guest_insns} not in {lo}..={hi}");
}

/// 28.3.4: with "save VMX-preemption timer value" an exit stores the value the timer
/// had counted down to; after a timer exit that value is 0.
#[test]
fn preemption_timer_value_is_saved() {
    let mut m = setup(
        |a| {
            let mut lp = a.create_label();
            a.mov(ecx, 100)?;
            a.set_label(&mut lp)?;
            a.dec(ecx)?;
            a.jnz(lp)?;
            a.vmcall()
        },
        |v| {
            timer(v, 1000);
            exit_bits(v, exit::SAVE_PREEMPTION_TIMER_VALUE);
        },
    );
    expect_exit(&mut m, 18);
    // About 202 instructions are 6 or 7 ticks of bit 5.
    let saved = vmcs_field(&m, f::VMX_PREEMPTION_TIMER_VALUE);
    assert!((992..=994).contains(&saved), "saved {saved}");

    let mut m = setup(spin, |v| {
        timer(v, 3);
        exit_bits(v, exit::SAVE_PREEMPTION_TIMER_VALUE);
    });
    expect_exit(&mut m, 52);
    assert_eq!(vmcs_field(&m, f::VMX_PREEMPTION_TIMER_VALUE), 0);
}

/// 28.3.4: without "save VMX-preemption timer value" the field keeps the value VM entry
/// loaded.
#[test]
fn preemption_timer_value_not_saved_without_the_control() {
    let mut m = setup(|a| a.vmcall(), |v| timer(v, 1000));
    expect_exit(&mut m, 18);
    assert_eq!(vmcs_field(&m, f::VMX_PREEMPTION_TIMER_VALUE), 1000);
}

/// 26.5.1: the timer counts in the HLT state and its exit wakes the guest; the saved
/// activity state is HLT (28.3.4) and virtual time passed to the timer's expiry.
#[test]
fn preemption_timer_wakes_hlt() {
    let mut m = setup(l2_hlt, |v| timer(v, 1000));
    expect_exit(&mut m, 52);
    assert_eq!(vmcs_field(&m, f::GUEST_ACTIVITY_STATE), 1);
    assert!(m.clock() >= 1000 << intel_capabilities().preemption_timer_rate);
}

/// Vol. 3A 7.9 with 26.7.4: "VM exits caused by the VMX-preemption timer take priority
/// over VM exits caused by the 'NMI-window exiting' VM-execution control".
#[test]
fn preemption_timer_has_priority_over_the_nmi_window() {
    let mut m = setup(spin, |v| {
        timer(v, 0);
        pin_bits(v, pin::NMI_EXITING | pin::VIRTUAL_NMIS);
        proc_bits(v, proc::NMI_WINDOW_EXITING);
    });
    expect_exit(&mut m, 52);
}

// ---- NMIs, virtual NMIs and the NMI window (25.3, 26.2, 26.3, 26.7.6) -------------------

/// 26.2: with "NMI exiting" an NMI in the guest exits with reason 0 and the NMI in the
/// VM-exit interruption information (28.2.2); it is not delivered to L1 afterwards.
#[test]
fn nmi_exiting() {
    let mut m = setup(spin, |v| pin_bits(v, pin::NMI_EXITING));
    run_until_guest(&mut m);
    m.inject_nmi();
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), NMI_INFO);
    assert!(!m.cpu.nmi_pending);
}

/// 26.7.6: with virtual NMIs and "NMI-window exiting", the exit (reason 8) happens
/// before the first instruction when there is no virtual-NMI blocking.
#[test]
fn nmi_window_exits_without_virtual_nmi_blocking() {
    let mut m = setup(spin, |v| {
        pin_bits(v, pin::NMI_EXITING | pin::VIRTUAL_NMIS);
        proc_bits(v, proc::NMI_WINDOW_EXITING);
    });
    expect_exit(&mut m, 8);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
}

/// IRETQ from L2 to AFTER_IRET (same privilege: SS:RSP, RFLAGS, CS:RIP on the stack).
fn iret_to_after(a: Asm) -> Result<(), IcedError> {
    a.mov(rax, rsp)?;
    a.push(0x10)?;
    a.push(rax)?;
    a.pushfq()?;
    a.push(0x08)?;
    a.push(AFTER_IRET as i32)?;
    a.iretq()
}

/// 26.3 (IRET) and 26.7.6: with virtual NMIs, IRET removes virtual-NMI blocking, and
/// the NMI window opens right after it.
#[test]
fn nmi_window_opens_after_iret() {
    let mut m = setup(iret_to_after, |v| {
        pin_bits(v, pin::NMI_EXITING | pin::VIRTUAL_NMIS);
        proc_bits(v, proc::NMI_WINDOW_EXITING);
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, BLOCKING_BY_NMI);
    });
    m.load(AFTER_IRET, &asm(AFTER_IRET, |a| a.vmcall())).unwrap();
    expect_exit(&mut m, 8);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), AFTER_IRET);
    assert_eq!(vmcs_field(&m, f::GUEST_INTERRUPTIBILITY_STATE) & BLOCKING_BY_NMI, 0);
}

/// 26.3 (IRET): with "NMI exiting" and without virtual NMIs, IRET does not unblock
/// NMIs: a pending NMI stays blocked, the guest reaches VMCALL, and blocking by NMI is
/// saved (28.3.4).
#[test]
fn iret_keeps_nmi_blocking_with_nmi_exiting() {
    let mut m = setup(iret_to_after, |v| {
        pin_bits(v, pin::NMI_EXITING);
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, BLOCKING_BY_NMI);
    });
    m.load(AFTER_IRET, &asm(AFTER_IRET, |a| a.vmcall())).unwrap();
    run_until_guest(&mut m);
    m.inject_nmi();
    expect_exit(&mut m, 18);
    assert_ne!(vmcs_field(&m, f::GUEST_INTERRUPTIBILITY_STATE) & BLOCKING_BY_NMI, 0);
    assert!(m.cpu.nmi_pending, "still pending, blocked");
}

/// 25.3 and 26.2: with virtual NMIs the guest's blocking bit is virtual-NMI blocking,
/// which does not hold back a physical NMI: it exits.
#[test]
fn nmi_exits_despite_virtual_nmi_blocking() {
    let mut m = setup(spin, |v| {
        pin_bits(v, pin::NMI_EXITING | pin::VIRTUAL_NMIS);
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, BLOCKING_BY_NMI);
    });
    run_until_guest(&mut m);
    m.inject_nmi();
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), NMI_INFO);
    assert_ne!(vmcs_field(&m, f::GUEST_INTERRUPTIBILITY_STATE) & BLOCKING_BY_NMI, 0);
    // 28.5: "VM exits caused directly by non-maskable interrupts (NMIs) cause blocking
    // by NMI" in L1.
    assert!(m.cpu.nmi_blocked);
}

/// 27.6.1 with virtual NMIs: an injected NMI sets virtual-NMI blocking, which the exit
/// from the guest's NMI handler saves in the interruptibility state.
#[test]
fn injected_virtual_nmi_sets_virtual_nmi_blocking() {
    let mut m = setup_with_idt(spin, |_, v| {
        pin_bits(v, pin::NMI_EXITING | pin::VIRTUAL_NMIS);
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, NMI_INFO);
    });
    expect_exit(&mut m, 18);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), HANDLER);
    assert_ne!(vmcs_field(&m, f::GUEST_INTERRUPTIBILITY_STATE) & BLOCKING_BY_NMI, 0);
    // Virtual-NMI blocking stays with the guest: L1's NMIs were not blocked (28.3.4).
    assert!(!m.cpu.nmi_blocked);
}

/// L1 has NMIs blocked (as in its own NMI handler) with an NMI pending; a VM entry with
/// virtual NMIs unblocks physical NMIs in the guest (27.3.2.5), so the NMI is seen at
/// the first guest instruction boundary.
fn pending_nmi_at_entry(edit: impl FnOnce(&mut Vmcs)) -> Machine {
    let mut m = setup(spin, |v| {
        pin_bits(v, pin::NMI_EXITING | pin::VIRTUAL_NMIS);
        edit(v);
    });
    m.cpu.nmi_blocked = true;
    m.inject_nmi();
    m
}

/// Vol. 3A 7.9 with 26.7.6: the NMI-window exit has priority over an NMI.
#[test]
fn nmi_window_has_priority_over_an_nmi() {
    let mut m = pending_nmi_at_entry(|v| proc_bits(v, proc::NMI_WINDOW_EXITING));
    expect_exit(&mut m, 8);
    assert!(m.cpu.nmi_pending);
}

/// Vol. 3A 7.9 with 26.7.5: "Non-maskable interrupts (NMIs) and higher priority events
/// take priority over VM exits caused by [interrupt-window exiting]".
#[test]
fn nmi_has_priority_over_the_interrupt_window() {
    let mut m = pending_nmi_at_entry(|v| {
        proc_bits(v, proc::INTERRUPT_WINDOW_EXITING);
        v.set(f::GUEST_RFLAGS, RFLAGS_IF);
    });
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), NMI_INFO);
}

// ---- Interrupt window and external interrupts (25.3, 26.2, 26.7.5) ---------------------

/// 26.7.5: "VM exits caused by this control take priority over external interrupts".
#[test]
fn interrupt_window_has_priority_over_an_external_interrupt() {
    let mut m = setup(spin, |v| {
        pin_bits(v, pin::EXTERNAL_INTERRUPT_EXITING);
        proc_bits(v, proc::INTERRUPT_WINDOW_EXITING);
        v.set(f::GUEST_RFLAGS, RFLAGS_IF);
    });
    m.inject_interrupt(0x41);
    expect_exit(&mut m, 7);
    assert_eq!(m.cpu.intr, Some(0x41), "still pending");
}

/// 26.7.5: the interrupt window opens only after blocking by STI ends: after STI the
/// window exit comes after the next instruction.
#[test]
fn interrupt_window_waits_for_the_sti_shadow() {
    let code = |a: Asm| {
        a.sti()?;
        a.nop()?;
        a.nop()?;
        a.hlt()
    };
    let bytes = asm(L2, code);
    let mut m = setup(code, |v| proc_bits(v, proc::INTERRUPT_WINDOW_EXITING));
    expect_exit(&mut m, 7);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), insn_addr(&bytes, 2));
    assert_eq!(vmcs_field(&m, f::GUEST_INTERRUPTIBILITY_STATE) & BLOCKING_BY_STI, 0);
}

/// 25.4.2 / 27.3.2.5: blocking by STI loaded at VM entry also holds the window for one
/// instruction.
#[test]
fn interrupt_window_respects_sti_blocking_at_entry() {
    let code = |a: Asm| {
        a.nop()?;
        a.nop()?;
        a.hlt()
    };
    let bytes = asm(L2, code);
    let mut m = setup(code, |v| {
        proc_bits(v, proc::INTERRUPT_WINDOW_EXITING);
        v.set(f::GUEST_RFLAGS, RFLAGS_IF);
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, BLOCKING_BY_STI);
    });
    expect_exit(&mut m, 7);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), insn_addr(&bytes, 1));
}

/// 28.2.2: without "acknowledge interrupt on exit" the external-interrupt exit leaves
/// the interrupt pending at the controller and the interruption information invalid.
#[test]
fn external_interrupt_exit_without_acknowledge() {
    let mut m = setup(spin, |v| pin_bits(v, pin::EXTERNAL_INTERRUPT_EXITING));
    m.inject_interrupt(0x31);
    expect_exit(&mut m, 1);
    assert_eq!(exit_info(&m), 0);
    assert_eq!(m.cpu.intr, Some(0x31));
}

// ---- TPR shadow (29.1.2, 29.3, 27.2.1.1) -------------------------------------------------

fn tpr_shadow(m: &mut Machine, v: &mut Vmcs, vtpr: u8, threshold: u64) {
    proc_bits(v, proc::USE_TPR_SHADOW);
    v.set(f::VIRTUAL_APIC_PAGE_ADDR, VAPIC);
    v.set(f::TPR_THRESHOLD, threshold);
    m.mem.write_u32(Gpa(VAPIC + VTPR_OFFSET), u32::from(vtpr) | 0xAA00);
}

/// 29.3: MOV to CR8 writes VTPR[7:4] and clears VTPR[3:0] and bytes 3:1; MOV from CR8
/// reads VTPR[7:4]; the processor's own TPR is untouched.
#[test]
fn tpr_shadow_mov_to_and_from_cr8() {
    let mut m = setup_with_idt(
        |a| {
            a.mov(eax, 9)?;
            a.mov(cr8, rax)?;
            a.mov(r9, cr8)?;
            a.vmcall()
        },
        |m, v| tpr_shadow(m, v, 0x3F, 0),
    );
    let cr8_before = m.cpu.cr8;
    expect_exit(&mut m, 18);
    assert_eq!(m.mem.read_u32(Gpa(VAPIC + VTPR_OFFSET)), 0x90);
    assert_eq!(m.cpu.gpr[9], 9);
    assert_eq!(m.cpu.cr8, cr8_before);
}

/// 29.3: MOV from CR8 returns VTPR bits 7:4 (bits 63:4 of the destination cleared).
#[test]
fn tpr_shadow_read_gives_vtpr_high_nibble() {
    let mut m = setup_with_idt(
        |a| {
            a.mov(r9, -1i64)?;
            a.mov(r9, cr8)?;
            a.vmcall()
        },
        |m, v| tpr_shadow(m, v, 0x7C, 0),
    );
    expect_exit(&mut m, 18);
    assert_eq!(m.cpu.gpr[9], 7);
}

/// 29.1.2: a MOV to CR8 that leaves VTPR[7:4] below TPR threshold[3:0] causes a
/// trap-like VM exit with reason 43 (RIP after the MOV, length not recorded).
#[test]
fn tpr_below_threshold_exit_after_mov_to_cr8() {
    let code = |a: Asm| {
        a.mov(eax, 3)?;
        a.mov(cr8, rax)?;
        a.vmcall()
    };
    let bytes = asm(L2, code);
    let mut m = setup_with_idt(code, |m, v| tpr_shadow(m, v, 0x50, 4));
    expect_exit(&mut m, 43);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), insn_addr(&bytes, 2));
    assert_eq!(m.mem.read_u32(Gpa(VAPIC + VTPR_OFFSET)), 0x30);
}

/// 29.1.2: a write that keeps VTPR at or above the threshold does not exit.
#[test]
fn tpr_at_threshold_does_not_exit() {
    let mut m = setup_with_idt(
        |a| {
            a.mov(eax, 4)?;
            a.mov(cr8, rax)?;
            a.vmcall()
        },
        |m, v| tpr_shadow(m, v, 0x50, 4),
    );
    expect_exit(&mut m, 18);
}

/// 27.2.1.1: with "use TPR shadow" (and no APIC-access virtualization) TPR threshold
/// bits 3:0 may not exceed VTPR bits 7:4: VMfailValid(7), named by hvsim.
#[test]
fn tpr_threshold_above_vtpr_fails_entry() {
    let mut m = setup_with_idt(l2_hlt, |m, v| tpr_shadow(m, v, 0x50, 6));
    run(&mut m);
    assert_eq!(m.cpu.gpr[12], FAIL_MARK);
    assert_eq!(m.cpu.gpr[13], 7);
    let failure = m.nested.vmx.last_entry_failure.expect("entry failed");
    assert_eq!(failure.check, CheckId::TprThresholdAboveVtpr);
}

/// 26.1.3: "CR8-load exiting" takes priority over the TPR shadow (exit 28, MOV to CR8).
#[test]
fn cr8_load_exiting_with_tpr_shadow() {
    let mut m = setup_with_idt(
        |a| {
            a.mov(eax, 1)?;
            a.mov(cr8, rax)
        },
        |m, v| {
            tpr_shadow(m, v, 0x50, 0);
            proc_bits(v, proc::CR8_LOAD_EXITING);
        },
    );
    expect_exit(&mut m, 28);
    // CR 8, access type 0 (MOV to CR), GPR 0 (RAX).
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 8);
    assert_eq!(m.mem.read_u32(Gpa(VAPIC + VTPR_OFFSET)) & 0xFF, 0x50, "VTPR unchanged");
}

/// 26.1.3: "CR8-store exiting" with the TPR shadow: exit 28, MOV from CR8 into RBX.
#[test]
fn cr8_store_exiting_with_tpr_shadow() {
    let mut m = setup_with_idt(
        |a| a.mov(rbx, cr8),
        |m, v| {
            tpr_shadow(m, v, 0x50, 0);
            proc_bits(v, proc::CR8_STORE_EXITING);
        },
    );
    expect_exit(&mut m, 28);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 8 | 1 << 4 | 3 << 8);
}

// ---- Monitor trap flag (26.5.2, 26.7.2, 27.7.2) ------------------------------------------

/// 26.5.2: with the monitor trap flag, an MTF exit (reason 37) follows the first guest
/// instruction, with RIP at the next one.
#[test]
fn mtf_exits_after_one_instruction() {
    let code = |a: Asm| {
        a.nop()?;
        a.nop()?;
        a.hlt()
    };
    let bytes = asm(L2, code);
    let mut m = setup(code, |v| proc_bits(v, proc::MONITOR_TRAP_FLAG));
    expect_exit(&mut m, 37);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), insn_addr(&bytes, 1));
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 0);
}

/// 27.7.2: a VM entry that injects an event with the monitor trap flag makes an MTF exit
/// pending before the first instruction of the handler.
#[test]
fn mtf_after_event_injection() {
    let mut m = setup_with_idt(spin, |_, v| {
        proc_bits(v, proc::MONITOR_TRAP_FLAG);
        v.set(f::GUEST_RFLAGS, RFLAGS_IF);
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, 0x8000_0030);
    });
    expect_exit(&mut m, 37);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), HANDLER);
}

/// 26.7.2: an instruction that faults: the MTF exit follows the delivery of the fault,
/// at the handler's first instruction.
#[test]
fn mtf_after_a_delivered_fault() {
    let mut m = setup_with_idt(|a| a.ud2(), |_, v| proc_bits(v, proc::MONITOR_TRAP_FLAG));
    m.set_exception_catch(0);
    expect_exit(&mut m, 37);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), HANDLER);
}

/// 28.3.4: a trap-like exit after an instruction executed with RFLAGS.TF = 1 records
/// the single-step trap as BS in the pending-debug-exceptions field; L1 gets no #DB.
#[test]
fn mtf_with_single_step_records_bs() {
    let mut m = setup(
        |a| {
            a.nop()?;
            a.hlt()
        },
        |v| {
            proc_bits(v, proc::MONITOR_TRAP_FLAG);
            v.set(f::GUEST_RFLAGS, RFLAGS_TF);
        },
    );
    expect_exit(&mut m, 37);
    assert_eq!(vmcs_field(&m, f::GUEST_PENDING_DEBUG_EXCEPTIONS), PENDING_DEBUG_BS);
    assert_eq!(m.cpu.gpr[12], EXIT_MARK, "L1's handler ran without a #DB");
}

// ---- MONITOR, MWAIT, PAUSE and PAUSE-loop exiting (26.1.3, 28.2.1) ------------------------

fn monitor_scratch(a: Asm) -> Result<(), IcedError> {
    a.mov(rax, SCRATCH)?;
    a.xor(ecx, ecx)?;
    a.xor(edx, edx)?;
    a.monitor()
}

/// 26.1.3: MONITOR exits with "MONITOR exiting" (reason 39).
#[test]
fn monitor_exiting() {
    let mut m = setup(monitor_scratch, |v| proc_bits(v, proc::MONITOR_EXITING));
    expect_exit(&mut m, 39);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 3);
}

/// 26.1.3 and 28.2.1: MWAIT exits with "MWAIT exiting" (reason 36); qualification bit 0
/// says whether the monitoring hardware is armed.
#[test]
fn mwait_exiting_reports_the_armed_monitor() {
    let mut m = setup(
        |a| {
            monitor_scratch(a)?;
            a.xor(eax, eax)?;
            a.mwait()
        },
        |v| proc_bits(v, proc::MWAIT_EXITING),
    );
    expect_exit(&mut m, 36);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 1);
    let mut m = setup(
        |a| {
            a.xor(eax, eax)?;
            a.xor(ecx, ecx)?;
            a.mwait()
        },
        |v| proc_bits(v, proc::MWAIT_EXITING),
    );
    expect_exit(&mut m, 36);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 0);
}

/// 26.1.3: PAUSE exits with "PAUSE exiting" (reason 40), length 2.
#[test]
fn pause_exiting() {
    let mut m = setup(|a| a.pause(), |v| proc_bits(v, proc::PAUSE_EXITING));
    expect_exit(&mut m, 40);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 2);
}

fn ple(v: &mut Vmcs, gap: u64, window: u64) {
    proc2_bits(v, proc2::PAUSE_LOOP_EXITING);
    v.set(f::PLE_GAP, gap);
    v.set(f::PLE_WINDOW, window);
}

/// 26.1.3 "PAUSE-loop exiting": PAUSEs no more than PLE_Gap TSC ticks apart form one
/// loop, which exits (reason 40) once it has run longer than PLE_Window ticks. With 3
/// instructions (3 ticks of hvsim's TSC) per iteration and a window of 300, the PAUSE
/// of iteration k runs 3 (k - 1) ticks after the first: iteration 102 exits.
#[test]
fn pause_loop_exiting_after_the_window() {
    let mut m = setup(
        |a| {
            let mut lp = a.create_label();
            a.set_label(&mut lp)?;
            a.inc(r11)?;
            a.pause()?;
            a.jmp(lp)
        },
        |v| ple(v, 16, 300),
    );
    m.cpu.gpr[11] = 0;
    expect_exit(&mut m, 40);
    assert_eq!(m.cpu.gpr[11], 102);
}

/// 26.1.3: a PAUSE more than PLE_Gap ticks after the previous one starts a new loop,
/// so a loop with long iterations never exits.
#[test]
fn pause_loop_exiting_gap_starts_a_new_loop() {
    let mut m = setup(
        |a| {
            let mut lp = a.create_label();
            a.mov(ecx, 30)?;
            a.set_label(&mut lp)?;
            a.inc(r11)?;
            a.pause()?;
            for _ in 0..20 {
                a.nop()?;
            }
            a.dec(ecx)?;
            a.jnz(lp)?;
            a.vmcall()
        },
        |v| ple(v, 16, 10),
    );
    m.cpu.gpr[11] = 0;
    expect_exit(&mut m, 18);
    assert_eq!(m.cpu.gpr[11], 30);
}

/// 26.1.3: PAUSE-loop exiting applies only at CPL 0 (and PAUSE exiting takes priority).
#[test]
fn pause_exiting_takes_priority_over_pause_loop_exiting() {
    let mut m = setup(
        |a| a.pause(),
        |v| {
            ple(v, 16, 1_000_000);
            proc_bits(v, proc::PAUSE_EXITING);
        },
    );
    expect_exit(&mut m, 40);
}

// ---- Instructions of the secondary controls (26.1.3, 26.3, 28.2.5) ---------------------

/// 26.1.3 and 28.2.5: RDRAND and RDSEED exit (57, 61) with the destination register and
/// operand size in the instruction information.
#[test]
fn rdrand_and_rdseed_exiting() {
    let mut m = setup(|a| a.rdrand(ecx), |v| proc2_bits(v, proc2::RDRAND_EXITING));
    expect_exit(&mut m, 57);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_INFO), 1 << 3 | 1 << 11);
    let mut m = setup(|a| a.rdseed(r10), |v| proc2_bits(v, proc2::RDSEED_EXITING));
    expect_exit(&mut m, 61);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_INFO), 10 << 3 | 2 << 11);
}

/// 26.1.3: WBINVD exits with "WBINVD exiting" (reason 54).
#[test]
fn wbinvd_exiting() {
    let mut m = setup(|a| a.wbinvd(), |v| proc2_bits(v, proc2::WBINVD_EXITING));
    expect_exit(&mut m, 54);
}

/// 26.1.3 and 28.2.5: INVPCID exits with "enable INVPCID" and "INVLPG exiting" (58):
/// the displacement as qualification, the type register as reg2, the memory operand's
/// base.
#[test]
fn invpcid_exiting() {
    let mut m = setup(
        |a| a.invpcid(rdx, xmmword_ptr(rbx + 0x20)),
        |v| {
            proc2_bits(v, proc2::ENABLE_INVPCID);
            proc_bits(v, proc::INVLPG_EXITING);
        },
    );
    expect_exit(&mut m, 58);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 0x20);
    let info = InstructionInfo::decode(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_INFO) as u32);
    assert_eq!(info.reg2, 2);
    assert_eq!(info.base, Some(3));
}

/// 26.3: without "enable INVPCID", INVPCID is #UD in the guest.
#[test]
fn invpcid_without_enable_is_ud() {
    let mut m = setup(|a| a.invpcid(rdx, xmmword_ptr(rbx)), |v| proc_bits(v, proc::INVLPG_EXITING));
    assert_eq!(exception(&mut m), (6, None));
    assert!(m.nested.vmx.non_root);
}

/// 26.3: without "enable RDTSCP", RDTSCP is #UD in the guest, even with RDTSC exiting;
/// with it, RDTSC exiting makes RDTSCP exit with reason 51.
#[test]
fn rdtscp_enable_and_exiting() {
    let mut m = setup(|a| a.rdtscp(), |v| proc_bits(v, proc::RDTSC_EXITING));
    assert_eq!(exception(&mut m), (6, None));
    let mut m = setup(
        |a| a.rdtscp(),
        |v| {
            proc_bits(v, proc::RDTSC_EXITING);
            proc2_bits(v, proc2::ENABLE_RDTSCP);
        },
    );
    expect_exit(&mut m, 51);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 3);
}

/// 26.1.3: RDPMC exits with "RDPMC exiting" (reason 15).
#[test]
fn rdpmc_exiting() {
    let mut m = setup(|a| a.rdpmc(), |v| proc_bits(v, proc::RDPMC_EXITING));
    expect_exit(&mut m, 15);
}

/// 26.1.3 and 28.2.5: SGDT exits with "descriptor-table exiting" (reason 46); bits 29:28
/// of the instruction information name the instruction (0 SGDT), LTR exits with 47.
#[test]
fn descriptor_table_exiting() {
    let mut m = setup(|a| a.sgdt(ptr(rbx + 8)), |v| proc2_bits(v, proc2::DESCRIPTOR_TABLE_EXITING));
    expect_exit(&mut m, 46);
    let info = vmcs_field(&m, f::VM_EXIT_INSTRUCTION_INFO);
    assert_eq!(info >> 28 & 3, 0);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), 8);
    let mut m = setup(|a| a.ltr(ax), |v| proc2_bits(v, proc2::DESCRIPTOR_TABLE_EXITING));
    expect_exit(&mut m, 47);
    let info = vmcs_field(&m, f::VM_EXIT_INSTRUCTION_INFO);
    assert_eq!(info >> 28 & 3, 3);
    assert_ne!(info & 1 << 10, 0, "register operand");
}

// ---- IDT-vectoring information (28.2.4) -------------------------------------------------

/// #NP (vector 11) with an error code, valid: the exit interruption information.
const NP_INFO: u64 = 0x8000_0B0B;
/// The #NP error code for IDT vector 0x30 with EXT set.
const NP_IDT_30_EXT: u64 = 0x30 << 3 | 2 | 1;

/// 28.2.4: an external interrupt whose delivery in the guest raises #NP (gate not
/// present), which the exception bitmap selects: exit 0 for the #NP, with the
/// interrupt in the IDT-vectoring information.
#[test]
fn idt_vectoring_for_an_interrupt_delivery() {
    let mut m = setup_with_idt(spin, |m, v| {
        write_gate(m, 0x30, HANDLER, false);
        v.set(f::EXCEPTION_BITMAP, 1 << 11);
        v.set(f::GUEST_RFLAGS, RFLAGS_IF);
    });
    m.inject_interrupt(0x30);
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), NP_INFO);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_ERROR_CODE), NP_IDT_30_EXT);
    assert_eq!(vmcs_field(&m, f::IDT_VECTORING_INFO), 0x8000_0030);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
}

/// 28.2.4: the same for an event injected by VM entry (a #GP with error code 0x55):
/// the IDT-vectoring fields hold the injected event and its error code.
#[test]
fn idt_vectoring_for_an_injected_exception() {
    let mut m = setup_with_idt(spin, |m, v| {
        write_gate(m, 13, HANDLER, false);
        v.set(f::EXCEPTION_BITMAP, 1 << 11);
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, 0x8000_0B0D);
        v.set(f::VM_ENTRY_EXCEPTION_ERROR_CODE, 0x55);
    });
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), NP_INFO);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_ERROR_CODE), 13 << 3 | 2 | 1);
    assert_eq!(vmcs_field(&m, f::IDT_VECTORING_INFO), 0x8000_0B0D);
    assert_eq!(vmcs_field(&m, f::IDT_VECTORING_ERROR_CODE), 0x55);
}

/// 28.2.4: an exit that is not during event delivery leaves the IDT-vectoring
/// information invalid.
#[test]
fn idt_vectoring_invalid_for_ordinary_exits() {
    let mut m = setup_with_idt(|a| a.cpuid(), |_, _| {});
    expect_exit(&mut m, 10);
    assert_eq!(vmcs_field(&m, f::IDT_VECTORING_INFO), 0);
}

/// 28.2.4 / 27.6: L1 re-injects the event from the IDT-vectoring information (after
/// making the gate present) and the delivery completes in the guest.
#[test]
fn reinjection_of_the_vectoring_event() {
    let host = |a: Asm| {
        let mut second = a.create_label();
        a.cmp(r14, 0)?;
        a.jne(second)?;
        a.mov(r14d, 1)?;
        a.mov(eax, f::IDT_VECTORING_INFO)?;
        a.vmread(rbx, rax)?;
        a.mov(eax, f::VM_ENTRY_INTERRUPTION_INFO)?;
        a.vmwrite(rax, rbx)?;
        a.or(byte_ptr(IDT + 0x30 * 16 + 5), 0x80)?;
        a.vmresume()?;
        after_failed_entry(a)?;
        a.set_label(&mut second)?;
        host_handler(a)
    };
    let mut m = setup_full(l1_launch, host, spin, |_| {});
    let mut v = baseline(&m);
    guest_idt(&mut m, &mut v);
    write_gate(&mut m, 0x30, HANDLER, false);
    v.set(f::EXCEPTION_BITMAP, 1 << 11);
    v.set(f::GUEST_RFLAGS, RFLAGS_IF);
    write_vmcs_table(&mut m, &v);
    m.cpu.gpr[14] = 0;
    m.inject_interrupt(0x30);
    expect_exit(&mut m, 18);
    assert_eq!(m.cpu.gpr[14], 1);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), HANDLER);
    assert_eq!(m.nested.vmx.entries, 2);
}

// ---- VM-exit MSR areas and exit controls (28.3, 28.4, 28.5, 28.6, 28.7) ----------------

fn msr_entry(m: &mut Machine, k: u64, index: u64, value: u64) {
    m.mem.write_u64(Gpa(MSR_AREA + 16 * k), index);
    m.mem.write_u64(Gpa(MSR_AREA + 16 * k + 8), value);
}

const IA32_SYSENTER_ESP: u64 = 0x175;
const IA32_SYSENTER_EIP: u64 = 0x176;
const IA32_PAT: u32 = 0x277;

/// 28.4: the VM-exit MSR-store area receives the guest's MSR values.
#[test]
fn msr_store_area_saves_guest_msrs() {
    let mut m = setup_with_idt(
        |a| a.vmcall(),
        |m, v| {
            msr_entry(m, 0, IA32_SYSENTER_ESP, 0);
            msr_entry(m, 1, IA32_SYSENTER_EIP, 0);
            v.set(f::GUEST_IA32_SYSENTER_ESP, 0x1111);
            v.set(f::GUEST_IA32_SYSENTER_EIP, 0x2222);
            v.set(f::VM_EXIT_MSR_STORE_COUNT, 2);
            v.set(f::VM_EXIT_MSR_STORE_ADDR, MSR_AREA);
        },
    );
    expect_exit(&mut m, 18);
    assert_eq!(m.mem.read_u64(Gpa(MSR_AREA + 8)), 0x1111);
    assert_eq!(m.mem.read_u64(Gpa(MSR_AREA + 24)), 0x2222);
}

/// 28.4 and 28.7: storing an x2APIC MSR fails: VMX abort with indicator 1.
#[test]
fn msr_store_failure_is_a_vmx_abort() {
    let mut m = setup_with_idt(
        |a| a.vmcall(),
        |m, v| {
            msr_entry(m, 0, 0x808, 0);
            v.set(f::VM_EXIT_MSR_STORE_COUNT, 1);
            v.set(f::VM_EXIT_MSR_STORE_ADDR, MSR_AREA);
        },
    );
    let r = m.run(Some(100_000));
    assert!(matches!(r.reason, StopReason::VmxAbort { indicator: 1 }), "{r}");
    assert_eq!(m.mem.read_u32(Gpa(VMCS + 4)), 1);
}

/// 28.6: the VM-exit MSR-load area loads host MSRs after the host state.
#[test]
fn msr_load_area_loads_host_msrs() {
    let mut m = setup_with_idt(
        |a| a.vmcall(),
        |m, v| {
            msr_entry(m, 0, IA32_SYSENTER_EIP, 0xABCD);
            v.set(f::HOST_IA32_SYSENTER_EIP, 0x1234);
            v.set(f::VM_EXIT_MSR_LOAD_COUNT, 1);
            v.set(f::VM_EXIT_MSR_LOAD_ADDR, MSR_AREA);
        },
    );
    expect_exit(&mut m, 18);
    assert_eq!(m.cpu.msrs.get(&(IA32_SYSENTER_EIP as u32)), Some(&0xABCD));
}

/// 28.6 and 28.7: an MSR-load entry with reserved bits 63:32 set is a VMX abort (4).
#[test]
fn msr_load_reserved_bits_are_a_vmx_abort() {
    let mut m = setup_with_idt(
        |a| a.vmcall(),
        |m, v| {
            msr_entry(m, 0, IA32_SYSENTER_EIP | 1 << 32, 0);
            v.set(f::VM_EXIT_MSR_LOAD_COUNT, 1);
            v.set(f::VM_EXIT_MSR_LOAD_ADDR, MSR_AREA);
        },
    );
    let r = m.run(Some(100_000));
    assert!(matches!(r.reason, StopReason::VmxAbort { indicator: 4 }), "{r}");
}

/// 28.3.1 and 28.5.1: "save debug controls" saves the guest's DR7; without it the field
/// keeps its value; the host gets DR7 = 400H either way.
#[test]
fn save_debug_controls() {
    for save in [true, false] {
        let mut m = setup(
            |a| {
                a.mov(eax, 0x500)?;
                a.mov(dr7, rax)?;
                a.vmcall()
            },
            |v| {
                let e = v.get(f::PRIMARY_VM_EXIT_CONTROLS);
                let bit = u64::from(exit::SAVE_DEBUG_CONTROLS);
                v.set(f::PRIMARY_VM_EXIT_CONTROLS, if save { e | bit } else { e & !bit });
            },
        );
        expect_exit(&mut m, 18);
        assert_eq!(vmcs_field(&m, f::GUEST_DR7), if save { 0x500 } else { 0x400 });
        assert_eq!(m.cpu.dr[7], 0x400);
    }
}

/// 28.5.1: "load IA32_PAT" and "load IA32_EFER" load the host fields on exit; 28.3.1:
/// "save IA32_EFER" saves the guest's EFER.
#[test]
fn load_pat_and_efer_on_exit() {
    const HOST_PAT: u64 = 0x0007_0406_0007_0406;
    const HOST_EFER: u64 = 0xD01;
    let mut m = setup(
        |a| a.vmcall(),
        |v| {
            exit_bits(v, exit::LOAD_IA32_PAT | exit::LOAD_IA32_EFER | exit::SAVE_IA32_EFER);
            v.set(f::HOST_IA32_PAT, HOST_PAT);
            v.set(f::HOST_IA32_EFER, HOST_EFER);
        },
    );
    let guest_efer = m.cpu.efer;
    expect_exit(&mut m, 18);
    assert_eq!(m.cpu.msrs.get(&IA32_PAT), Some(&HOST_PAT));
    assert_eq!(m.cpu.efer, HOST_EFER);
    assert_eq!(vmcs_field(&m, f::GUEST_IA32_EFER) & 0x500, guest_efer & 0x500);
}

/// 28.2.2: "acknowledge interrupt on exit" with an interrupt from the platform's
/// interrupt controller: the INTA cycle gives the vector. L2 programs the master 8259A
/// (vector base 0x20, IRQ 0 unmasked) and PIT channel 0; IRQ 0 then exits with vector
/// 0x20 even though the guest runs with RFLAGS.IF = 0 (25.3).
#[test]
fn acknowledge_interrupt_on_exit_takes_the_vector_from_inta() {
    let program = |a: Asm| {
        for (port, value) in [
            (0x20u32, 0x11u32),
            (0x21, 0x20),
            (0x21, 0x04),
            (0x21, 0x01),
            (0x21, 0xFE),
            (0x43, 0x34),
            (0x40, 0x10),
            (0x40, 0x00),
        ] {
            a.mov(al, value)?;
            a.out(port, al)?;
        }
        spin(a)
    };
    let mut m = setup(program, |v| {
        pin_bits(v, pin::EXTERNAL_INTERRUPT_EXITING);
        exit_bits(v, exit::ACKNOWLEDGE_INTERRUPT_ON_EXIT);
    });
    expect_exit(&mut m, 1);
    assert_eq!(exit_info(&m), 0x8000_0020);
    assert!(!m.interrupt_requested(), "acknowledged");
}

// ---- Software exceptions, software interrupts and task switches (26.2, 26.4.2, 28.2) ----

/// 26.2 and 28.2.2: INT3 exits through the exception bitmap (bit 3) as a software
/// exception (type 6) with its length; the saved RIP is the INT3's.
#[test]
fn int3_exits_through_the_exception_bitmap() {
    let mut m = setup_with_idt(
        |a| a.int3(),
        |_, v| {
            v.set(f::EXCEPTION_BITMAP, 1 << 3);
        },
    );
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), 0x8000_0603);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 1);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
}

/// 26.2: without the bitmap bit INT3 is delivered in the guest (to HANDLER, which
/// executes VMCALL).
#[test]
fn int3_without_the_bitmap_bit_is_delivered_in_the_guest() {
    let mut m = setup_with_idt(
        |a| a.int3(),
        |_, v| {
            v.set(f::EXCEPTION_BITMAP, 1 << 6);
        },
    );
    expect_exit(&mut m, 18);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), HANDLER);
}

/// 28.2.4 and 28.2.5: INT n whose delivery raises an intercepted #NP: the IDT-vectoring
/// information holds the software interrupt (type 4) and the exit records INT n's
/// length; the #NP error code has EXT clear (Vol. 3A 6.13).
#[test]
fn idt_vectoring_for_int_n() {
    let mut m = setup_with_idt(
        |a| a.int(0x30),
        |m, v| {
            write_gate(m, 0x30, HANDLER, false);
            v.set(f::EXCEPTION_BITMAP, 1 << 11);
        },
    );
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), NP_INFO);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_ERROR_CODE), 0x30 << 3 | 2);
    assert_eq!(vmcs_field(&m, f::IDT_VECTORING_INFO), 0x8000_0430);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 2);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
}

const PAGE_DIRECTORY: u64 = 0x64000;
const GUEST_GDT: u64 = 0x65000;
const GUEST_TSS: u64 = 0x66000;
const TSS_SELECTOR: u16 = 0x58;

/// A 32-bit protected-mode guest with 4-MByte paging (CR4.PSE) and a GDT that has an
/// available 32-bit TSS at TSS_SELECTOR.
fn protected32_guest(m: &mut Machine, v: &mut Vmcs) {
    m.mem.write_u32(Gpa(PAGE_DIRECTORY), 0x83);
    let mut gdt = vec![0u8; TSS_SELECTOR as usize];
    m.phys_read(Gpa(m.cpu.gdtr.base), &mut gdt);
    m.load(GUEST_GDT, &gdt).unwrap();
    let tss = 0x67 | (GUEST_TSS & 0xFF_FFFF) << 16 | 0x89 << 40 | (GUEST_TSS >> 24) << 56;
    m.mem.write_u64(Gpa(GUEST_GDT + u64::from(TSS_SELECTOR)), tss);
    let e = v.get(f::VM_ENTRY_CONTROLS);
    v.set(f::VM_ENTRY_CONTROLS, e & !u64::from(entry::IA32E_MODE_GUEST));
    v.set(f::GUEST_CR0, 0x8000_0031);
    v.set(f::GUEST_CR3, PAGE_DIRECTORY);
    v.set(f::GUEST_CR4, 1 << 13 | 1 << 4);
    v.set(f::GUEST_CS_SELECTOR, 0x18);
    v.set(f::GUEST_CS_ACCESS_RIGHTS, 0xC09B);
    v.set(f::GUEST_GDTR_BASE, GUEST_GDT);
    v.set(f::GUEST_GDTR_LIMIT, u64::from(TSS_SELECTOR) + 7);
}

/// 26.1.2 / 26.4.2 and 28.2.1: a task switch exits unconditionally (reason 9): the
/// qualification holds the new TSS selector and the source (2 = JMP), the saved RIP is
/// the JMP's and its length (7) is recorded; the switch has not happened.
#[test]
fn task_switch_exits() {
    let mut m = setup(l2_hlt, |_| {});
    let mut v = baseline(&m);
    protected32_guest(&mut m, &mut v);
    write_vmcs_table(&mut m, &v);
    let mut a = CodeAssembler::new(32).unwrap();
    a.jmp_far(TSS_SELECTOR, 0).unwrap();
    m.load(L2, &a.assemble(L2).unwrap()).unwrap();
    expect_exit(&mut m, 9);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), u64::from(TSS_SELECTOR) | 2 << 30);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INSTRUCTION_LENGTH), 7);
    assert_eq!(vmcs_field(&m, f::GUEST_TR_SELECTOR), 0x48, "no switch");
}

// ---- Pending debug exceptions (27.7.3, 28.3.4) ------------------------------------------

/// 27.7.3: a BS bit in the pending-debug-exceptions field is a #DB trap after VM entry;
/// with bit 1 of the exception bitmap it exits (reason 0) with the bits as qualification
/// before the first guest instruction.
#[test]
fn pending_debug_exception_exits_through_the_bitmap() {
    let mut m = setup(spin, |v| {
        v.set(f::GUEST_PENDING_DEBUG_EXCEPTIONS, PENDING_DEBUG_BS);
        v.set(f::EXCEPTION_BITMAP, 1 << 1);
    });
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), 0x8000_0301);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), PENDING_DEBUG_BS);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), L2);
}

/// 27.7.3: without the bitmap bit the #DB is delivered in the guest with DR6.BS and the
/// breakpoint bits set.
#[test]
fn pending_debug_exception_is_delivered_in_the_guest() {
    let mut m = setup_with_idt(spin, |_, v| {
        v.set(f::GUEST_PENDING_DEBUG_EXCEPTIONS, PENDING_DEBUG_BS | 2);
    });
    m.set_exception_catch(0);
    expect_exit(&mut m, 18);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), HANDLER);
    assert_eq!(m.cpu.dr[6] & (PENDING_DEBUG_BS | 0xF), PENDING_DEBUG_BS | 2);
}

// ---- Entry checks of these controls (27.2.1.1, 27.2.1.2, 27.3.1.5) ----------------------

/// VMLAUNCH fails `check` with VMfailValid(7) or a reason-33 exit, and hvsim names it.
fn expect_control_check(check: CheckId, edit: impl FnOnce(&mut Vmcs)) {
    let mut m = setup(l2_hlt, edit);
    run(&mut m);
    let failure = m.nested.vmx.last_entry_failure.expect("entry failed");
    assert_eq!(failure.check, check, "{}", failure.describe());
    assert_eq!(m.nested.vmx.entries, 0);
}

/// 27.2.1.1: "If the 'NMI exiting' VM-execution control is 0, the 'virtual NMIs'
/// VM-execution control must be 0."
#[test]
fn entry_check_virtual_nmis_need_nmi_exiting() {
    expect_control_check(CheckId::VirtualNmisWithoutNmiExiting, |v| pin_bits(v, pin::VIRTUAL_NMIS));
}

/// 27.2.1.1: "If the 'virtual NMIs' VM-execution control is 0, the 'NMI-window exiting'
/// VM-execution control must be 0."
#[test]
fn entry_check_nmi_window_needs_virtual_nmis() {
    expect_control_check(CheckId::NmiWindowWithoutVirtualNmis, |v| {
        pin_bits(v, pin::NMI_EXITING);
        proc_bits(v, proc::NMI_WINDOW_EXITING);
    });
}

/// 27.2.1.2: "If 'activate VMX-preemption timer' is 0, 'save VMX-preemption timer
/// value' must be 0."
#[test]
fn entry_check_save_timer_needs_the_timer() {
    expect_control_check(CheckId::SavePreemptionTimerWithoutTimer, |v| {
        exit_bits(v, exit::SAVE_PREEMPTION_TIMER_VALUE)
    });
}

/// 27.3.1.5: injecting an NMI with virtual NMIs while blocking by NMI is set fails (the
/// check L1 must respect when re-injecting an NMI from the IDT-vectoring information).
#[test]
fn entry_check_nmi_injection_with_virtual_nmi_blocking() {
    expect_control_check(CheckId::GuestInterruptibilityVirtualNmi, |v| {
        pin_bits(v, pin::NMI_EXITING | pin::VIRTUAL_NMIS);
        v.set(f::GUEST_INTERRUPTIBILITY_STATE, BLOCKING_BY_NMI);
        v.set(f::VM_ENTRY_INTERRUPTION_INFO, NMI_INFO);
    });
}

/// 28.3.4: an exit not caused by a debug exception while MOV SS blocks debug
/// exceptions records the pending single-step trap as BS (RFLAGS.TF = 1). L2 sets TF
/// with POPFQ (its first trap follows the next instruction), executes MOV SS, whose trap
/// the MOV-SS blocking holds back, and then CPUID, which exits under that blocking; the
/// saved state (TF, blocking by MOV SS, BS) passes the VM-entry checks (27.3.1.5), so
/// L1's VMRESUME past the CPUID enters again and L2's VMCALL exits.
#[test]
fn exit_under_mov_ss_blocking_records_single_step() {
    let host = |a: Asm| {
        let mut second = a.create_label();
        a.cmp(r14, 0)?;
        a.jne(second)?;
        a.mov(r14d, 1)?;
        a.mov(eax, f::GUEST_PENDING_DEBUG_EXCEPTIONS)?;
        a.vmread(r9, rax)?;
        a.mov(eax, f::GUEST_INTERRUPTIBILITY_STATE)?;
        a.vmread(r10, rax)?;
        a.mov(eax, f::GUEST_RIP)?;
        a.vmread(rbx, rax)?;
        a.mov(eax, f::VM_EXIT_INSTRUCTION_LENGTH)?;
        a.vmread(rcx, rax)?;
        a.add(rbx, rcx)?;
        a.mov(eax, f::GUEST_RIP)?;
        a.vmwrite(rax, rbx)?;
        a.vmresume()?;
        after_failed_entry(a)?;
        a.set_label(&mut second)?;
        host_handler(a)
    };
    let l2 = |a: Asm| {
        a.mov(eax, ss)?;
        a.pushfq()?;
        a.or(qword_ptr(rsp), 0x100)?;
        a.popfq()?;
        a.mov(ss, eax)?;
        a.cpuid()?;
        a.vmcall()
    };
    let mut m = setup_full(l1_launch, host, l2, |_| {});
    m.cpu.gpr[14] = 0;
    expect_exit(&mut m, 18);
    assert_eq!(m.cpu.gpr[14], 1, "the CPUID exit came first");
    assert_eq!(m.cpu.gpr[9], PENDING_DEBUG_BS);
    assert_eq!(m.cpu.gpr[10] & 2, 2, "blocking by MOV SS saved");
}

/// 28.3.4: an ordinary exit without MOV-SS blocking saves the field as clear, even with
/// RFLAGS.TF = 1.
#[test]
fn ordinary_exit_saves_no_pending_debug_exceptions() {
    let mut m = setup(
        |a| a.cpuid(),
        |v| {
            v.set(f::GUEST_RFLAGS, RFLAGS_TF);
            v.set(f::GUEST_PENDING_DEBUG_EXCEPTIONS, 0);
        },
    );
    expect_exit(&mut m, 10);
    assert_eq!(vmcs_field(&m, f::GUEST_PENDING_DEBUG_EXCEPTIONS), 0);
}

/// 28.2.1 Table 28-1: a single-step #DB that the exception bitmap selects exits after
/// the instruction (reason 0, type 3, vector 1) with BS in the qualification; DR6 is
/// not written.
#[test]
fn single_step_exits_through_the_exception_bitmap() {
    let code = |a: Asm| {
        a.nop()?;
        a.nop()?;
        a.hlt()
    };
    let bytes = asm(L2, code);
    let mut m = setup(code, |v| {
        v.set(f::GUEST_RFLAGS, RFLAGS_TF);
        v.set(f::EXCEPTION_BITMAP, 1 << 1);
    });
    let dr6_before = m.cpu.dr[6];
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), 0x8000_0301);
    assert_eq!(vmcs_field(&m, f::EXIT_QUALIFICATION), PENDING_DEBUG_BS);
    assert_eq!(vmcs_field(&m, f::GUEST_RIP), insn_addr(&bytes, 1));
    assert_eq!(m.cpu.dr[6], dr6_before);
}

/// 28.2.2 bit 12 "NMI unblocking due to IRET": with virtual NMIs, an IRET that ends
/// virtual-NMI blocking and then faults (here #GP(0) for a null CS in its frame, which
/// the exception bitmap selects) exits with bit 12 set and the blocking ended.
#[test]
fn iret_fault_reports_nmi_unblocking() {
    let mut m = setup(
        |a| {
            a.mov(rax, rsp)?;
            a.push(0x10)?;
            a.push(rax)?;
            a.pushfq()?;
            a.push(0)?;
            a.push(AFTER_IRET as i32)?;
            a.iretq()
        },
        |v| {
            pin_bits(v, pin::NMI_EXITING | pin::VIRTUAL_NMIS);
            v.set(f::GUEST_INTERRUPTIBILITY_STATE, BLOCKING_BY_NMI);
            v.set(f::EXCEPTION_BITMAP, 1 << 13);
        },
    );
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), 0x8000_1B0D);
    assert_eq!(vmcs_field(&m, f::VM_EXIT_INTERRUPTION_ERROR_CODE), 0);
    assert_eq!(vmcs_field(&m, f::GUEST_INTERRUPTIBILITY_STATE) & BLOCKING_BY_NMI, 0);
}

/// 28.2.2: the same fault without prior NMI blocking leaves bit 12 clear.
#[test]
fn iret_fault_without_nmi_blocking_has_no_unblocking_bit() {
    let mut m = setup(
        |a| {
            a.mov(rax, rsp)?;
            a.push(0x10)?;
            a.push(rax)?;
            a.pushfq()?;
            a.push(0)?;
            a.push(AFTER_IRET as i32)?;
            a.iretq()
        },
        |v| {
            pin_bits(v, pin::NMI_EXITING | pin::VIRTUAL_NMIS);
            v.set(f::EXCEPTION_BITMAP, 1 << 13);
        },
    );
    expect_exit(&mut m, 0);
    assert_eq!(exit_info(&m), 0x8000_0B0D);
}
