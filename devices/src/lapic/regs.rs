//! The local APIC's register map and bit layouts (SDM Vol. 3A 11.4.1 "The Local APIC
//! Block Diagram", Table 11-1 "Local APIC Register Address Map"; x2APIC MSRs in 11.12.1.2,
//! Table 11-6 "Local APIC Register Address Map Supported by x2APIC"). Declared once: the
//! xAPIC MMIO interface, the x2APIC MSR interface and the tests use these names.

/// Size of the xAPIC MMIO page.
pub const XAPIC_PAGE_SIZE: u64 = 0x1000;

/// Local APIC ID (xAPIC: bits 31:24).
pub const ID: u32 = 0x020;
/// Local APIC version.
pub const VERSION: u32 = 0x030;
/// Task priority register.
pub const TPR: u32 = 0x080;
/// Arbitration priority register (xAPIC only).
pub const APR: u32 = 0x090;
/// Processor priority register.
pub const PPR: u32 = 0x0A0;
/// End of interrupt.
pub const EOI: u32 = 0x0B0;
/// Remote read register (not supported since the Pentium 4; reads 0).
pub const RRD: u32 = 0x0C0;
/// Logical destination register.
pub const LDR: u32 = 0x0D0;
/// Destination format register (xAPIC only).
pub const DFR: u32 = 0x0E0;
/// Spurious interrupt vector register.
pub const SVR: u32 = 0x0F0;
/// In-service register, 8 x 32 bits at 0x100-0x170.
pub const ISR: u32 = 0x100;
/// Trigger mode register, 8 x 32 bits at 0x180-0x1F0.
pub const TMR: u32 = 0x180;
/// Interrupt request register, 8 x 32 bits at 0x200-0x270.
pub const IRR: u32 = 0x200;
/// Error status register.
pub const ESR: u32 = 0x280;
/// LVT corrected machine-check interrupt (CMCI).
pub const LVT_CMCI: u32 = 0x2F0;
/// Interrupt command register, bits 31:0.
pub const ICR_LOW: u32 = 0x300;
/// Interrupt command register, bits 63:32 (xAPIC only; one 64-bit MSR in x2APIC).
pub const ICR_HIGH: u32 = 0x310;
/// LVT timer.
pub const LVT_TIMER: u32 = 0x320;
/// LVT thermal sensor.
pub const LVT_THERMAL: u32 = 0x330;
/// LVT performance monitoring counters.
pub const LVT_PMC: u32 = 0x340;
/// LVT LINT0.
pub const LVT_LINT0: u32 = 0x350;
/// LVT LINT1.
pub const LVT_LINT1: u32 = 0x360;
/// LVT error.
pub const LVT_ERROR: u32 = 0x370;
/// Timer initial count.
pub const TIMER_INITIAL_COUNT: u32 = 0x380;
/// Timer current count (read-only).
pub const TIMER_CURRENT_COUNT: u32 = 0x390;
/// Timer divide configuration.
pub const TIMER_DIVIDE: u32 = 0x3E0;
/// SELF IPI (x2APIC only, MSR 0x83F).
pub const SELF_IPI: u32 = 0x3F0;

/// First x2APIC MSR; register `offset` is MSR `X2APIC_MSR_BASE + (offset >> 4)`.
pub const X2APIC_MSR_BASE: u32 = 0x800;
/// Last MSR of the x2APIC range.
pub const X2APIC_MSR_LAST: u32 = 0x8FF;
/// IA32_TSC_DEADLINE (SDM Vol. 3A 11.5.4.1 "TSC-Deadline Mode").
pub const IA32_TSC_DEADLINE: u32 = 0x6E0;
/// IA32_APIC_BASE.
pub const IA32_APIC_BASE: u32 = 0x1B;

/// The x2APIC MSR of register `offset`.
pub const fn x2apic_msr(offset: u32) -> u32 {
    X2APIC_MSR_BASE + (offset >> 4)
}

/// Version register bits 7:0: an integrated APIC (0x1X); 0x14 as on recent Intel parts.
pub const VERSION_NUMBER: u32 = 0x14;
/// The number of LVT entries minus one (timer, thermal, PMC, LINT0, LINT1, error, CMCI).
pub const MAX_LVT_ENTRY: u32 = 6;
/// Version bit 24: software may suppress EOI broadcasts (SVR bit 12).
pub const VERSION_EOI_BROADCAST_SUPPRESSION: u32 = 1 << 24;
/// The version register's value.
pub const VERSION_VALUE: u32 =
    VERSION_NUMBER | (MAX_LVT_ENTRY << 16) | VERSION_EOI_BROADCAST_SUPPRESSION;

/// DFR bits 31:28: flat model.
pub const DFR_MODEL_FLAT: u32 = 0xF;
/// DFR bits 31:28: cluster model.
pub const DFR_MODEL_CLUSTER: u32 = 0x0;
/// DFR bits 27:0 read as ones.
pub const DFR_RESERVED_ONES: u32 = 0x0FFF_FFFF;

/// SVR bits 7:0: the spurious vector.
pub const SVR_VECTOR: u32 = 0xFF;
/// SVR bit 8: APIC software enable.
pub const SVR_APIC_ENABLED: u32 = 1 << 8;
/// SVR bit 9: focus processor checking disabled.
pub const SVR_FOCUS_DISABLED: u32 = 1 << 9;
/// SVR bit 12: EOI-broadcast suppression.
pub const SVR_SUPPRESS_EOI_BROADCAST: u32 = 1 << 12;
/// SVR's writable bits.
pub const SVR_WRITABLE: u32 =
    SVR_VECTOR | SVR_APIC_ENABLED | SVR_FOCUS_DISABLED | SVR_SUPPRESS_EOI_BROADCAST;
/// SVR after reset (SDM Vol. 3A 11.4.7.1): vector 0xFF, software-disabled.
pub const SVR_RESET: u32 = 0xFF;

/// ESR bit 0: send checksum error (P6/Pentium only; never set here).
pub const ESR_SEND_CHECKSUM: u32 = 1 << 0;
/// ESR bit 5: send illegal vector (a vector 0-15 written to the ICR or SELF IPI).
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
/// ESR bit 6: receive illegal vector (a fixed interrupt with a vector 0-15 received,
/// or an LVT entry with such a vector fired).
pub const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
/// ESR bit 7: illegal register address (an xAPIC access to a reserved offset).
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// LVT / ICR bits 7:0: the vector.
pub const VECTOR: u32 = 0xFF;
/// LVT / ICR bits 10:8: the delivery mode.
pub const DELIVERY_MODE_SHIFT: u32 = 8;
/// ICR / LVT / IOAPIC bit 12: delivery status (send pending).
pub const DELIVERY_STATUS: u32 = 1 << 12;
/// LVT LINT bit 13: input pin polarity (1 = active low).
pub const LVT_POLARITY: u32 = 1 << 13;
/// LVT LINT bit 14: remote IRR (read-only).
pub const LVT_REMOTE_IRR: u32 = 1 << 14;
/// LVT LINT / ICR bit 15: trigger mode (1 = level).
pub const TRIGGER_LEVEL: u32 = 1 << 15;
/// LVT bit 16: masked.
pub const LVT_MASKED: u32 = 1 << 16;
/// LVT timer bits 18:17: timer mode.
pub const LVT_TIMER_MODE_SHIFT: u32 = 17;
/// Timer mode 00: one-shot.
pub const TIMER_MODE_ONE_SHOT: u32 = 0;
/// Timer mode 01: periodic.
pub const TIMER_MODE_PERIODIC: u32 = 1;
/// Timer mode 10: TSC-deadline.
pub const TIMER_MODE_TSC_DEADLINE: u32 = 2;

/// Writable bits of the LVT timer entry: vector, mask, timer mode.
pub const LVT_TIMER_WRITABLE: u32 = VECTOR | LVT_MASKED | (3 << LVT_TIMER_MODE_SHIFT);
/// Writable bits of the thermal, PMC and CMCI entries: vector, delivery mode, mask.
pub const LVT_DM_WRITABLE: u32 = VECTOR | (7 << DELIVERY_MODE_SHIFT) | LVT_MASKED;
/// Writable bits of the LINT0/LINT1 entries: vector, delivery mode, polarity, trigger,
/// mask (remote IRR and delivery status are read-only).
pub const LVT_LINT_WRITABLE: u32 = LVT_DM_WRITABLE | LVT_POLARITY | TRIGGER_LEVEL;
/// Writable bits of the error entry: vector, mask.
pub const LVT_ERROR_WRITABLE: u32 = VECTOR | LVT_MASKED;

/// ICR bit 11: logical destination mode.
pub const ICR_LOGICAL: u32 = 1 << 11;
/// ICR bit 14: level (1 = assert).
pub const ICR_LEVEL_ASSERT: u32 = 1 << 14;
/// ICR bits 19:18: destination shorthand.
pub const ICR_SHORTHAND_SHIFT: u32 = 18;
/// Writable bits of `ICR[31:0]` (delivery status is read-only).
pub const ICR_LOW_WRITABLE: u32 = VECTOR
    | (7 << DELIVERY_MODE_SHIFT)
    | ICR_LOGICAL
    | ICR_LEVEL_ASSERT
    | TRIGGER_LEVEL
    | (3 << ICR_SHORTHAND_SHIFT);
/// Reserved bits of the 64-bit x2APIC ICR (11.12.9: bits 31:20, 17:16, 13 and the
/// delivery status bit 12, which x2APIC mode drops); a WRMSR setting one raises #GP.
pub const X2APIC_ICR_RESERVED: u64 = 0xFFF0_0000 | (3 << 16) | (1 << 13) | (1 << 12);

/// Divide configuration bits 0, 1 and 3.
pub const TIMER_DIVIDE_WRITABLE: u32 = 0b1011;

/// IA32_APIC_BASE bit 8: bootstrap processor (read-only).
pub const APIC_BASE_BSP: u64 = 1 << 8;
/// IA32_APIC_BASE bit 10: x2APIC mode enable (EXTD).
pub const APIC_BASE_EXTD: u64 = 1 << 10;
/// IA32_APIC_BASE bit 11: APIC global enable.
pub const APIC_BASE_ENABLE: u64 = 1 << 11;
/// IA32_APIC_BASE bits 7:0 and 9: reserved.
pub const APIC_BASE_RESERVED_LOW: u64 = 0xFF | (1 << 9);
