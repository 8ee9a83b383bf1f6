//! Register-level tests of the local APIC; each names the SDM Vol. 3A section it checks.

use super::regs::*;
use super::*;
use crate::interrupt::{route, DeliveryMode, InterruptMessage, Shorthand, TriggerMode};
use crate::mmio::MmioDevice;
use proptest::prelude::*;

fn apic(id: u32) -> LocalApic {
    LocalApic::new(LapicConfig { apic_id: id, bsp: id == 0, ..LapicConfig::default() })
}

/// An APIC with SVR bit 8 set.
fn enabled(id: u32) -> LocalApic {
    let mut a = apic(id);
    a.write(SVR as u64, 4, 0x1FF);
    a
}

fn rd(a: &mut LocalApic, reg: u32) -> u32 {
    a.read(u64::from(reg), 4) as u32
}

fn wr(a: &mut LocalApic, reg: u32, v: u32) {
    a.write(u64::from(reg), 4, u64::from(v));
}

fn fixed(vector: u8, trigger: TriggerMode) -> InterruptMessage {
    InterruptMessage {
        source: None,
        destination: 0,
        logical: false,
        shorthand: Shorthand::None,
        delivery_mode: DeliveryMode::Fixed,
        vector,
        level: true,
        trigger,
    }
}

fn x2apic(id: u32) -> LocalApic {
    let mut a = apic(id);
    a.wrmsr(IA32_APIC_BASE, 0xFEE0_0000 | APIC_BASE_ENABLE | APIC_BASE_EXTD).unwrap();
    a.wrmsr(x2apic_msr(SVR), 0x1FF).unwrap();
    a
}

// ---- 11.4.7.1 power-up state, ID and version ----

#[test]
fn power_up_state() {
    let mut a = apic(3);
    assert_eq!(rd(&mut a, ID), 3 << 24);
    assert_eq!(rd(&mut a, VERSION), 0x0106_0014, "version 0x14, max LVT 6, EOI suppression");
    assert_eq!(rd(&mut a, DFR), 0xFFFF_FFFF);
    assert_eq!(rd(&mut a, SVR), 0xFF);
    for lvt in Lvt::ALL {
        assert_eq!(rd(&mut a, lvt.offset()), LVT_MASKED, "{lvt:?} masked on an AP");
    }
    assert_eq!(a.apic_base(), 0xFEE0_0800, "enabled, not BSP");
    // The BSP's LINT0 is left in virtual-wire ExtINT mode, unmasked.
    let mut bsp = apic(0);
    assert_eq!(rd(&mut bsp, LVT_LINT0), 0x700);
    assert_eq!(bsp.apic_base(), 0xFEE0_0900);
}

#[test]
fn xapic_id_is_writable_and_used_for_physical_destinations() {
    // 11.4.6 "Local APIC ID": the xAPIC ID register is writable on P6/P4 class parts.
    let mut a = enabled(1);
    wr(&mut a, ID, 0x0700_0000);
    assert_eq!(a.id(), 7);
    assert!(a.matches_destination(7, false));
    assert!(!a.matches_destination(1, false));
}

#[test]
fn sub_dword_and_unaligned_xapic_accesses() {
    // 11.4.1: registers are 32 bits at 16-byte strides.
    let mut a = enabled(0);
    wr(&mut a, TPR, 0x5A);
    assert_eq!(a.read(u64::from(TPR), 1), 0x5A);
    assert_eq!(a.read(u64::from(VERSION) + 2, 1), 0x06, "byte 2 of the version");
    assert_eq!(a.read(u64::from(VERSION) + 4, 4), 0, "bytes 4-15 of a slot are reserved");
    assert_eq!(a.read(u64::from(VERSION), 8), 0x0106_0014);
    a.write(u64::from(TPR) + 1, 1, 0x33);
    a.write(u64::from(TPR), 2, 0x33);
    assert_eq!(rd(&mut a, TPR), 0x5A, "narrow and unaligned writes are dropped");
}

#[test]
fn reserved_xapic_register_reads_zero_and_logs_illegal_register() {
    // 11.5.3 ESR bit 7 "Illegal Register Address".
    let mut a = enabled(0);
    assert_eq!(rd(&mut a, 0x040), 0);
    wr(&mut a, SELF_IPI, 0x40); // SELF IPI is x2APIC-only.
    wr(&mut a, ESR, 0);
    assert_eq!(rd(&mut a, ESR), ESR_ILLEGAL_REGISTER);
    assert!(a.irr().highest().is_none());
}

// ---- 11.8.3 priorities ----

#[test]
fn ppr_follows_tpr_and_isrv() {
    // 11.8.3.1 "Task and Processor Priorities".
    let mut a = enabled(0);
    wr(&mut a, TPR, 0x47);
    assert_eq!(rd(&mut a, PPR), 0x47, "ISR empty: PPR = TPR");
    a.accept(&fixed(0x61, TriggerMode::Edge));
    assert_eq!(a.acknowledge(), 0x61);
    assert_eq!(rd(&mut a, PPR), 0x60, "ISRV class above TPR: PPR = ISRV[7:4]:0");
    wr(&mut a, TPR, 0x6F);
    assert_eq!(rd(&mut a, PPR), 0x6F, "TPR[7:4] = ISRV[7:4]: PPR = TPR");
}

#[test]
fn pending_vector_needs_a_class_above_ppr() {
    // 11.8.3: an IRR vector is dispatched only if its class is above PPR[7:4].
    let mut a = enabled(0);
    wr(&mut a, TPR, 0x50);
    a.accept(&fixed(0x5F, TriggerMode::Edge));
    assert_eq!(a.pending_vector(), None);
    assert_eq!(a.acknowledge(), 0xFF, "nothing pending: the spurious vector");
    assert!(a.irr().get(0x5F), "a spurious acknowledge leaves IRR alone");
    a.accept(&fixed(0x60, TriggerMode::Edge));
    assert_eq!(a.pending_vector(), Some(0x60));
    wr(&mut a, TPR, 0);
    assert_eq!(a.pending_vector(), Some(0x60), "highest IRR first");
}

#[test]
fn apr_per_figure_11_15() {
    // 11.6.2.4: APR = TPR if TPR[7:4] >= IRRV[7:4] and > ISRV[7:4], else the max class.
    let mut a = enabled(0);
    wr(&mut a, TPR, 0x32);
    assert_eq!(rd(&mut a, APR), 0x32);
    a.accept(&fixed(0x45, TriggerMode::Edge));
    assert_eq!(rd(&mut a, APR), 0x40);
    a.acknowledge();
    wr(&mut a, TPR, 0x42);
    assert_eq!(rd(&mut a, APR), 0x40, "TPR class equals ISRV class: not above it");
}

// ---- 11.8.4-11.8.5 acceptance and EOI ----

#[test]
fn eoi_of_nested_vectors_clears_the_highest_first() {
    // 11.8.5: "the highest priority bit in the ISR is cleared".
    let mut a = enabled(0);
    a.accept(&fixed(0x30, TriggerMode::Edge));
    assert_eq!(a.acknowledge(), 0x30);
    a.accept(&fixed(0x51, TriggerMode::Edge));
    assert_eq!(a.pending_vector(), Some(0x51), "a higher class nests");
    assert_eq!(a.acknowledge(), 0x51);
    a.accept(&fixed(0x35, TriggerMode::Edge));
    assert_eq!(a.pending_vector(), None, "same class as an in-service vector waits");
    wr(&mut a, EOI, 0);
    assert!(!a.isr().get(0x51) && a.isr().get(0x30));
    assert_eq!(a.pending_vector(), None, "0x35 still below 0x30's class");
    wr(&mut a, EOI, 0);
    assert!(a.isr().highest().is_none());
    assert_eq!(a.pending_vector(), Some(0x35));
    assert!(a.take_eoi_broadcasts().is_empty(), "edge-triggered: no EOI message");
}

#[test]
fn level_triggered_eoi_is_broadcast_unless_suppressed() {
    // 11.8.4: TMR set for level-triggered acceptance; 11.8.5: EOI message to the IOAPICs,
    // suppressed by SVR bit 12 (directed EOI).
    let mut a = enabled(0);
    a.accept(&fixed(0x40, TriggerMode::Level));
    assert!(a.tmr().get(0x40));
    a.acknowledge();
    wr(&mut a, EOI, 0);
    assert_eq!(a.take_eoi_broadcasts(), vec![0x40]);
    a.accept(&fixed(0x40, TriggerMode::Edge));
    assert!(!a.tmr().get(0x40), "edge acceptance clears the TMR bit");
    wr(&mut a, SVR, 0x11FF);
    a.accept(&fixed(0x41, TriggerMode::Level));
    a.acknowledge();
    a.acknowledge();
    wr(&mut a, EOI, 0);
    wr(&mut a, EOI, 0);
    assert!(a.take_eoi_broadcasts().is_empty());
}

#[test]
fn software_disabled_apic_drops_fixed_but_takes_nmi_init_sipi() {
    // 11.4.7.2 "Local APIC State After It Has Been Software Disabled".
    let mut a = apic(1);
    a.accept(&fixed(0x40, TriggerMode::Edge));
    assert!(a.irr().highest().is_none());
    for mode in [DeliveryMode::Nmi, DeliveryMode::Init, DeliveryMode::StartUp, DeliveryMode::Smi] {
        a.accept(&InterruptMessage {
            delivery_mode: mode,
            vector: 0x9A,
            ..fixed(0, TriggerMode::Edge)
        });
    }
    assert!(a.take_nmi() && a.take_init() && a.take_smi());
    assert_eq!(a.take_sipi(), Some(0x9A));
    assert!(!a.take_nmi() && !a.take_init() && a.take_sipi().is_none(), "taking clears");
    // Clearing SVR bit 8 masks the LVT and keeps it masked.
    let mut b = enabled(1);
    wr(&mut b, LVT_TIMER, 0x20);
    assert_eq!(rd(&mut b, LVT_TIMER), 0x20);
    wr(&mut b, SVR, 0xFF);
    assert_eq!(rd(&mut b, LVT_TIMER), 0x10020);
    wr(&mut b, LVT_TIMER, 0x20);
    assert_eq!(rd(&mut b, LVT_TIMER), 0x10020);
}

#[test]
fn init_level_deassert_is_ignored() {
    // 11.6.1: INIT level de-assert only synchronises arbitration IDs.
    let mut a = enabled(1);
    a.accept(&InterruptMessage {
        delivery_mode: DeliveryMode::Init,
        level: false,
        ..fixed(0, TriggerMode::Level)
    });
    assert!(!a.take_init());
}

#[test]
fn init_reset_keeps_id_and_mode() {
    // 11.4.7.3: after INIT, as power-up except the APIC ID (and IA32_APIC_BASE).
    let mut a = enabled(2);
    wr(&mut a, ID, 0x0900_0000);
    wr(&mut a, TPR, 0x20);
    a.accept(&fixed(0x40, TriggerMode::Edge));
    a.init_reset();
    assert_eq!(rd(&mut a, ID), 0x0900_0000);
    assert_eq!(rd(&mut a, TPR), 0);
    assert_eq!(rd(&mut a, SVR), 0xFF);
    assert!(a.irr().highest().is_none());
}

#[test]
fn illegal_vectors_are_logged_in_esr_with_write_before_read() {
    // 11.5.3 "Error Handling": the ESR shows the errors latched by the last ESR write.
    let mut a = enabled(0);
    wr(&mut a, LVT_ERROR, 0xE3);
    a.accept(&fixed(0x0F, TriggerMode::Edge));
    assert_eq!(rd(&mut a, ESR), 0, "not visible before a write");
    assert!(a.irr().get(0xE3), "the error LVT fired");
    assert!(!a.irr().get(0x0F));
    wr(&mut a, ESR, 0);
    assert_eq!(rd(&mut a, ESR), ESR_RECEIVE_ILLEGAL_VECTOR);
    wr(&mut a, ICR_LOW, 0x0000_4005); // fixed, vector 5
    assert!(a.take_outgoing().is_empty(), "an illegal vector is not sent");
    assert_eq!(rd(&mut a, ESR), ESR_RECEIVE_ILLEGAL_VECTOR, "still the old latch");
    wr(&mut a, ESR, 0);
    assert_eq!(rd(&mut a, ESR), ESR_SEND_ILLEGAL_VECTOR);
    wr(&mut a, ESR, 0);
    assert_eq!(rd(&mut a, ESR), 0, "a write clears the logged errors");
}

#[test]
fn illegal_vector_in_the_error_lvt_does_not_loop() {
    let mut a = enabled(0);
    wr(&mut a, LVT_ERROR, 0x03);
    a.accept(&fixed(0x01, TriggerMode::Edge));
    wr(&mut a, ESR, 0);
    assert_eq!(rd(&mut a, ESR), ESR_RECEIVE_ILLEGAL_VECTOR);
    assert!(a.irr().highest().is_none());
}

// ---- 11.6 IPIs ----

#[test]
fn icr_write_sends_an_ipi_with_delivery_status_until_taken() {
    // 11.6.1 "Interrupt Command Register (ICR)".
    let mut a = enabled(2);
    wr(&mut a, ICR_HIGH, 0x0500_0000);
    wr(&mut a, ICR_LOW, 0x0000_C931); // vector 0x31, lowest priority, logical, assert, level
    assert_eq!(rd(&mut a, ICR_LOW) & DELIVERY_STATUS, DELIVERY_STATUS);
    assert_eq!(rd(&mut a, ICR_HIGH), 0x0500_0000);
    let out = a.take_outgoing();
    assert_eq!(
        out,
        vec![InterruptMessage {
            source: Some(2),
            destination: 5,
            logical: true,
            shorthand: Shorthand::None,
            delivery_mode: DeliveryMode::LowestPriority,
            vector: 0x31,
            level: true,
            trigger: TriggerMode::Level,
        }]
    );
    assert_eq!(rd(&mut a, ICR_LOW), 0x0000_C931, "idle after delivery");
    wr(&mut a, ICR_HIGH, 0xFF00_0000);
    wr(&mut a, ICR_LOW, 0x000C_0500); // INIT, all excluding self
    let out = a.take_outgoing();
    assert_eq!(out[0].destination, crate::interrupt::BROADCAST);
    assert_eq!(out[0].shorthand, Shorthand::AllExcludingSelf);
    assert_eq!(out[0].delivery_mode, DeliveryMode::Init);
}

#[test]
fn reserved_icr_delivery_mode_sends_nothing() {
    let mut a = enabled(0);
    wr(&mut a, ICR_LOW, 0x0000_0340);
    assert!(a.take_outgoing().is_empty());
}

#[test]
fn logical_destination_flat_and_cluster() {
    // 11.6.2.2 "Logical Destination Mode".
    let mut a = enabled(1);
    wr(&mut a, LDR, 0x2400_0000);
    assert!(a.matches_destination(0x04, true), "flat: any common bit");
    assert!(a.matches_destination(0x21, true));
    assert!(!a.matches_destination(0x41, true));
    wr(&mut a, DFR, 0x0FFF_FFFF);
    assert_eq!(rd(&mut a, DFR), 0x0FFF_FFFF, "cluster model");
    assert!(a.matches_destination(0x25, true), "cluster 2, member bit 2");
    assert!(!a.matches_destination(0x15, true), "cluster 1");
    assert!(!a.matches_destination(0x28, true), "cluster 2, other member");
    assert!(a.matches_destination(0xFF, true), "broadcast");
}

#[test]
fn routing_shorthands_and_lowest_priority() {
    // 11.6.1 shorthands; 11.6.2.4 lowest-priority arbitration.
    let mut apics: Vec<LocalApic> = (0..3).map(enabled).collect();
    let msg = |shorthand, mode, source| InterruptMessage {
        source: Some(source),
        destination: 0xFF,
        logical: true,
        shorthand,
        delivery_mode: mode,
        vector: 0x40,
        level: true,
        trigger: TriggerMode::Edge,
    };
    assert_eq!(route(&msg(Shorthand::SelfOnly, DeliveryMode::Fixed, 1), &apics), vec![1]);
    assert_eq!(
        route(&msg(Shorthand::AllExcludingSelf, DeliveryMode::Fixed, 1), &apics),
        vec![0, 2]
    );
    assert_eq!(
        route(&msg(Shorthand::AllIncludingSelf, DeliveryMode::Fixed, 1), &apics),
        vec![0, 1, 2]
    );
    assert_eq!(route(&msg(Shorthand::None, DeliveryMode::Fixed, 1), &apics), vec![0, 1, 2]);
    wr(&mut apics[0], TPR, 0x80);
    assert_eq!(
        route(&msg(Shorthand::None, DeliveryMode::LowestPriority, 0), &apics),
        vec![1],
        "lowest APR wins, ties to the lowest index"
    );
    // Focus: an APIC with the vector already in service takes it.
    apics[2].accept(&fixed(0x40, TriggerMode::Edge));
    assert_eq!(route(&msg(Shorthand::None, DeliveryMode::LowestPriority, 0), &apics), vec![2]);
    let mut physical = msg(Shorthand::None, DeliveryMode::Fixed, 0);
    physical.logical = false;
    physical.destination = 2;
    assert_eq!(route(&physical, &apics), vec![2]);
}

// ---- 11.5.1 LVT and local interrupts ----

#[test]
fn lint0_extint_and_lint1_nmi() {
    // 11.5.1: LINT0 in ExtINT mode is level sensitive; LINT1 in NMI mode is edge.
    let mut a = enabled(0);
    assert!(!a.extint_pending());
    a.set_lint(0, true);
    assert!(a.extint_pending());
    assert!(a.take_extint());
    assert!(a.extint_pending(), "still asserted");
    a.set_lint(0, false);
    assert!(!a.extint_pending());
    wr(&mut a, LVT_LINT0, 0x10700);
    a.set_lint(0, true);
    assert!(!a.extint_pending(), "masked");
    wr(&mut a, LVT_LINT1, 0x400);
    a.set_lint(1, true);
    assert!(a.take_nmi());
    a.set_lint(1, true);
    assert!(!a.take_nmi(), "no new edge");
}

#[test]
fn globally_disabled_apic_passes_lint_pins_through() {
    // 11.4.3: with IA32_APIC_BASE[11] = 0, LINT0/LINT1 are INTR and NMI.
    let mut a = apic(0);
    a.wrmsr(IA32_APIC_BASE, 0xFEE0_0000).unwrap();
    a.set_lint(0, true);
    assert!(a.extint_pending());
    a.set_lint(1, true);
    assert!(a.take_nmi());
    a.accept(&InterruptMessage { delivery_mode: DeliveryMode::Nmi, ..fixed(0, TriggerMode::Edge) });
    assert!(!a.take_nmi(), "a disabled APIC accepts no messages");
    assert_eq!(a.read(0x30, 4), 0xFFFF_FFFF, "MMIO does not decode");
}

#[test]
fn level_triggered_lint_uses_remote_irr() {
    // 11.5.1 Figure 11-8: remote IRR set on acceptance, cleared by the EOI.
    let mut a = enabled(0);
    wr(&mut a, LVT_LINT0, 0x8000 | 0x55);
    a.set_lint(0, true);
    assert!(a.irr().get(0x55) && a.tmr().get(0x55));
    assert_eq!(rd(&mut a, LVT_LINT0) & LVT_REMOTE_IRR, LVT_REMOTE_IRR);
    assert_eq!(a.acknowledge(), 0x55);
    wr(&mut a, EOI, 0);
    assert!(a.irr().get(0x55), "still asserted: requested again after EOI");
    a.acknowledge();
    a.set_lint(0, false);
    wr(&mut a, EOI, 0);
    assert_eq!(rd(&mut a, LVT_LINT0) & LVT_REMOTE_IRR, 0);
    assert!(a.irr().highest().is_none());
}

#[test]
fn thermal_lvt_delivers_smi() {
    let mut a = enabled(0);
    wr(&mut a, LVT_THERMAL, 0x200);
    a.signal(Lvt::Thermal);
    assert!(a.take_smi());
    wr(&mut a, LVT_PMC, 0x10042);
    a.signal(Lvt::Pmc);
    assert!(a.irr().highest().is_none(), "masked");
    wr(&mut a, LVT_CMCI, 0x43);
    a.signal(Lvt::Cmci);
    assert!(a.irr().get(0x43));
}

// ---- 11.5.4 the timer ----

#[test]
fn one_shot_timer_counts_down_and_fires_once() {
    // 11.5.4 "APIC Timer": with the 1 GHz timer clock and divide by 2, one tick = 2 ns.
    let mut a = enabled(0);
    a.advance(1000);
    wr(&mut a, TIMER_DIVIDE, 0);
    wr(&mut a, LVT_TIMER, 0x30);
    wr(&mut a, TIMER_INITIAL_COUNT, 100);
    assert_eq!(a.next_event_ns(), Some(1200));
    a.advance(1001);
    assert_eq!(rd(&mut a, TIMER_CURRENT_COUNT), 100);
    a.advance(1050);
    assert_eq!(rd(&mut a, TIMER_CURRENT_COUNT), 75);
    a.advance(1199);
    assert!(a.irr().highest().is_none());
    a.advance(1200);
    assert!(a.irr().get(0x30));
    assert_eq!(rd(&mut a, TIMER_CURRENT_COUNT), 0);
    assert_eq!(rd(&mut a, TIMER_INITIAL_COUNT), 100);
    assert_eq!(a.next_event_ns(), None);
}

#[test]
fn periodic_timer_reloads() {
    let mut a = enabled(0);
    wr(&mut a, TIMER_DIVIDE, 0b1011); // divide by 1
    wr(&mut a, LVT_TIMER, (TIMER_MODE_PERIODIC << LVT_TIMER_MODE_SHIFT) | 0x31);
    wr(&mut a, TIMER_INITIAL_COUNT, 50);
    a.advance(50);
    assert!(a.irr().get(0x31));
    assert_eq!(rd(&mut a, TIMER_CURRENT_COUNT), 50, "reloaded");
    assert_eq!(a.next_event_ns(), Some(100));
    a.acknowledge();
    a.advance(130);
    assert_eq!(rd(&mut a, TIMER_CURRENT_COUNT), 20);
    assert!(a.irr().get(0x31), "fired at 100");
    assert_eq!(a.next_event_ns(), Some(150));
    a.advance(1000);
    assert_eq!(a.next_event_ns(), Some(1050), "missed periods coalesce");
    wr(&mut a, TIMER_INITIAL_COUNT, 0);
    assert_eq!(a.next_event_ns(), None, "a zero initial count stops the timer");
}

#[test]
fn timer_mode_change_disarms_but_other_lvt_writes_do_not() {
    // 11.5.4.1: "A write to the LVT Timer Register that changes the timer mode disarms the
    // local APIC timer."
    let mut a = enabled(0);
    wr(&mut a, LVT_TIMER, 0x10030);
    wr(&mut a, TIMER_INITIAL_COUNT, 1000);
    wr(&mut a, LVT_TIMER, 0x30);
    assert!(a.next_event_ns().is_some(), "unmasking keeps it armed");
    wr(&mut a, LVT_TIMER, (TIMER_MODE_PERIODIC << LVT_TIMER_MODE_SHIFT) | 0x30);
    assert_eq!(a.next_event_ns(), None);
    assert_eq!(rd(&mut a, TIMER_CURRENT_COUNT), 0);
}

#[test]
fn divide_change_keeps_the_current_count() {
    let mut a = enabled(0);
    wr(&mut a, TIMER_DIVIDE, 0b1011);
    wr(&mut a, LVT_TIMER, 0x10030);
    wr(&mut a, TIMER_INITIAL_COUNT, 1000);
    a.advance(400);
    wr(&mut a, TIMER_DIVIDE, 0b0001); // divide by 4
    assert_eq!(rd(&mut a, TIMER_CURRENT_COUNT), 600);
    assert_eq!(a.next_event_ns(), Some(400 + 2400));
    a.advance(2800);
    assert!(a.irr().highest().is_none(), "a masked timer expires silently");
    assert_eq!(rd(&mut a, TIMER_CURRENT_COUNT), 0);
}

#[test]
fn tsc_deadline_mode() {
    // 11.5.4.1 "TSC-Deadline Mode".
    let mut a = LocalApic::new(LapicConfig {
        tsc: TscClock { hz: 2_000_000_000, offset: 500 },
        ..LapicConfig::default()
    });
    wr(&mut a, SVR, 0x1FF);
    a.set_tsc_deadline(9999);
    assert_eq!(a.tsc_deadline(), 0, "ignored outside TSC-deadline mode");
    wr(&mut a, TIMER_INITIAL_COUNT, 10);
    wr(&mut a, LVT_TIMER, (TIMER_MODE_TSC_DEADLINE << LVT_TIMER_MODE_SHIFT) | 0x40);
    assert_eq!(a.next_event_ns(), None, "the mode switch disarmed the count-down timer");
    assert_eq!(rd(&mut a, TIMER_INITIAL_COUNT), 0);
    wr(&mut a, TIMER_INITIAL_COUNT, 10);
    assert_eq!(rd(&mut a, TIMER_INITIAL_COUNT), 0, "initial count writes are ignored");
    a.wrmsr(IA32_TSC_DEADLINE, 2501).unwrap();
    assert_eq!(a.rdmsr(IA32_TSC_DEADLINE), Ok(2501));
    assert_eq!(a.next_event_ns(), Some(1001), "TSC 2501 = 500 + 2 * 1000.5 ns, rounded up");
    a.advance(1000);
    assert!(a.irr().highest().is_none());
    a.advance(1001);
    assert!(a.irr().get(0x40));
    assert_eq!(a.tsc_deadline(), 0, "expiry disarms");
    assert_eq!(rd(&mut a, TIMER_CURRENT_COUNT), 0);
    a.set_tsc_deadline(3000);
    a.set_tsc_deadline(0);
    assert_eq!(a.next_event_ns(), None, "writing 0 disarms");
    a.set_tsc_deadline(5000);
    wr(&mut a, LVT_TIMER, 0x40);
    assert_eq!(a.next_event_ns(), None, "leaving TSC-deadline mode disarms");
}

// ---- 11.12 x2APIC ----

#[test]
fn x2apic_id_and_derived_ldr() {
    // 11.12.10.2: LDR = (ID[19:4] << 16) | (1 << ID[3:0]).
    let a = x2apic(0x35);
    assert_eq!(a.rdmsr(x2apic_msr(ID)), Ok(0x35));
    assert_eq!(a.rdmsr(x2apic_msr(LDR)), Ok(0x0003_0020));
    assert!(a.matches_destination(0x0003_0021, true));
    assert!(!a.matches_destination(0x0002_0020, true));
    assert!(a.matches_destination(0x35, false));
    assert!(a.matches_destination(crate::interrupt::BROADCAST, false));
}

#[test]
fn x2apic_gp_cases() {
    // Table 11-6 and 11.12.1.3 "Reserved Bit Checking".
    let mut a = x2apic(1);
    let gp = |r: Result<(), ApicFault>| r.is_err();
    assert_eq!(a.rdmsr(x2apic_msr(DFR)), Err(ApicFault::Reserved(0x80E)), "no DFR");
    assert_eq!(a.rdmsr(x2apic_msr(APR)), Err(ApicFault::Reserved(0x809)), "no APR");
    assert_eq!(a.rdmsr(0x831), Err(ApicFault::Reserved(0x831)), "no ICR high");
    assert_eq!(a.rdmsr(0x8FF), Err(ApicFault::Reserved(0x8FF)));
    assert_eq!(a.rdmsr(x2apic_msr(EOI)), Err(ApicFault::WriteOnly(0x80B)));
    assert_eq!(a.rdmsr(0x83F), Err(ApicFault::WriteOnly(0x83F)));
    assert_eq!(a.wrmsr(0x802, 5), Err(ApicFault::ReadOnly(0x802)), "ID is read-only");
    assert_eq!(a.wrmsr(x2apic_msr(LDR), 5), Err(ApicFault::ReadOnly(0x80D)));
    assert!(gp(a.wrmsr(x2apic_msr(PPR), 0)));
    assert!(gp(a.wrmsr(x2apic_msr(TIMER_CURRENT_COUNT), 0)));
    assert!(gp(a.wrmsr(x2apic_msr(EOI), 1)), "EOI: only 0");
    assert!(gp(a.wrmsr(x2apic_msr(ESR), 1)), "ESR: only 0");
    assert!(gp(a.wrmsr(x2apic_msr(TPR), 0x100)));
    assert!(gp(a.wrmsr(x2apic_msr(TPR), 1 << 32)));
    assert!(gp(a.wrmsr(0x83F, 0x140)), "SELF IPI bits 31:8");
    assert!(gp(a.wrmsr(x2apic_msr(ICR_LOW), 1 << 12)), "ICR delivery status is reserved");
    assert!(gp(a.wrmsr(x2apic_msr(LVT_TIMER), 1 << 20)));
    assert!(a.wrmsr(x2apic_msr(EOI), 0).is_ok());
    assert!(a.wrmsr(x2apic_msr(TPR), 0x20).is_ok());
    assert_eq!(a.rdmsr(x2apic_msr(TPR)), Ok(0x20));
    // Outside x2APIC mode the whole range raises #GP.
    let b = enabled(0);
    assert_eq!(b.rdmsr(x2apic_msr(TPR)), Err(ApicFault::NotX2Apic(0x808)));
}

#[test]
fn x2apic_icr_is_one_64_bit_msr_and_self_ipi() {
    // 11.12.9 "ICR Operation in x2APIC Mode"; 11.12.11 "SELF IPI Register".
    let mut a = x2apic(4);
    a.wrmsr(0x830, (0x1234_5678 << 32) | 0x0000_4821).unwrap();
    assert_eq!(a.rdmsr(0x830), Ok((0x1234_5678 << 32) | 0x4821));
    let out = a.take_outgoing();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].destination, out[0].logical, out[0].vector), (0x1234_5678, true, 0x21));
    assert_eq!(out[0].source, Some(4));
    a.wrmsr(0x83F, 0x66).unwrap();
    assert!(a.irr().get(0x66));
    assert_eq!(a.read(0x80, 4), 0xFFFF_FFFF, "the MMIO page is off in x2APIC mode");
}

// ---- 11.12.5 IA32_APIC_BASE ----

#[test]
fn apic_base_transitions() {
    // Figure 11-27: legal and illegal transitions.
    let mut a = apic(1);
    let xapic = 0xFEE0_0000 | APIC_BASE_ENABLE;
    let x2 = xapic | APIC_BASE_EXTD;
    let disabled = 0xFEE0_0000;
    assert!(a.wrmsr(IA32_APIC_BASE, APIC_BASE_EXTD | 0xFEE0_0000).is_err(), "EN=0, EXTD=1");
    assert_eq!(
        a.wrmsr(IA32_APIC_BASE, xapic | 1),
        Err(ApicFault::ReservedBits { msr: IA32_APIC_BASE, value: xapic | 1 }),
        "reserved bit 0"
    );
    assert!(a.wrmsr(IA32_APIC_BASE, xapic | (1 << 9)).is_err(), "reserved bit 9");
    assert!(a.wrmsr(IA32_APIC_BASE, xapic | (1 << 40)).is_err(), "above MAXPHYADDR");
    assert!(a.wrmsr(IA32_APIC_BASE, x2).is_ok(), "xAPIC -> x2APIC");
    assert_eq!(a.mode(), ApicMode::X2Apic);
    assert!(a.wrmsr(IA32_APIC_BASE, xapic).is_err(), "x2APIC -> xAPIC");
    assert!(a.wrmsr(IA32_APIC_BASE, disabled).is_ok(), "x2APIC -> disabled");
    assert!(a.wrmsr(IA32_APIC_BASE, x2).is_err(), "disabled -> x2APIC");
    assert!(a.wrmsr(IA32_APIC_BASE, xapic | APIC_BASE_BSP).is_ok(), "disabled -> xAPIC");
    assert_eq!(a.apic_base(), xapic, "the BSP flag is read-only");
    assert!(a.wrmsr(IA32_APIC_BASE, 0xFED0_0000 | APIC_BASE_ENABLE).is_ok(), "relocation");
    assert_eq!(a.mmio_base(), 0xFED0_0000);
}

#[test]
fn disabling_resets_the_registers() {
    let mut a = enabled(1);
    wr(&mut a, ID, 0x0800_0000);
    wr(&mut a, TPR, 0x40);
    a.wrmsr(IA32_APIC_BASE, 0xFEE0_0000).unwrap();
    a.wrmsr(IA32_APIC_BASE, 0xFEE0_0800).unwrap();
    assert_eq!(rd(&mut a, TPR), 0);
    assert_eq!(rd(&mut a, SVR), 0xFF);
    assert_eq!(rd(&mut a, ID), 0x0800_0000, "the APIC ID is preserved");
}

// ---- properties ----

/// PPR from the definition, computed independently of the implementation.
fn ppr_reference(tpr: u8, isr: &[u8]) -> u8 {
    let isrv = isr.iter().copied().max().unwrap_or(0);
    if tpr / 16 >= isrv / 16 {
        tpr
    } else {
        isrv / 16 * 16
    }
}

proptest! {
    #[test]
    fn ppr_matches_the_definition(tpr: u8, isr in proptest::collection::vec(16u8.., 0..6)) {
        // 11.8.3.1.
        let mut a = enabled(0);
        for &v in &isr {
            a.isr.set(v, true);
        }
        wr(&mut a, TPR, u32::from(tpr));
        prop_assert_eq!(rd(&mut a, PPR) as u8, ppr_reference(tpr, &isr));
        // Whatever is pending is above PPR's class.
        a.accept(&fixed(0xF0, TriggerMode::Edge));
        if let Some(v) = a.pending_vector() {
            prop_assert!(v >> 4 > a.processor_priority() >> 4);
        }
    }

    #[test]
    fn random_register_traffic_never_panics(
        ops in proptest::collection::vec((0u8..6, 0u64..0x1000, any::<u64>(), 0u64..5000), 1..200)
    ) {
        let mut apics = [enabled(0), x2apic(1)];
        let mut now = 0;
        for (op, offset, value, dt) in ops {
            let a = &mut apics[(value & 1) as usize];
            now += dt;
            match op {
                0 => a.write(offset, [1, 2, 4, 8][(offset & 3) as usize], value),
                1 => { a.read(offset, [1, 2, 4, 8][(offset & 3) as usize]); }
                2 => { let _ = a.wrmsr(0x800 + (offset as u32 & 0xFF), value); }
                3 => { let _ = a.rdmsr(0x800 + (offset as u32 & 0xFF)); }
                4 => { let _ = a.wrmsr(IA32_APIC_BASE, value & 0xFFFF_FFFF_FFFF_FD00 | 0x800); }
                _ => { a.set_lint((value & 1) as u8, value & 2 != 0); a.acknowledge(); a.eoi(); }
            }
            a.advance(now);
            if let Some(t) = a.next_event_ns() {
                prop_assert!(t > now || a.tsc_deadline() != 0);
            }
            a.take_outgoing();
        }
    }
}
