//! The I/O APIC (Intel 82093AA datasheet; ICH/PCH datasheets for the EOI register of
//! version 0x20): 24 interrupt pins, each routed by a redirection-table entry into an
//! [`InterruptMessage`] for the local APICs.
//!
//! A pure state machine: the machine reports pin levels ([`IoApic::set_irq`]) and the
//! local APICs' EOI broadcasts ([`IoApic::eoi`]), and drains the messages
//! ([`IoApic::take_messages`]).

use crate::interrupt::{DeliveryMode, InterruptMessage, Shorthand, TriggerMode, BROADCAST};
use crate::mmio::MmioDevice;
use crate::pc;
use std::any::Any;

/// Size of the IOAPIC's MMIO window.
pub const IOAPIC_MMIO_SIZE: u64 = 0x1000;
/// Offset of IOREGSEL (the index of the register IOWIN reaches).
pub const IOREGSEL: u64 = 0x00;
/// Offset of IOWIN (the data window).
pub const IOWIN: u64 = 0x10;
/// Offset of the EOI register (version 0x20 and later): writing a vector acts as an EOI
/// message for it.
pub const IOAPIC_EOI: u64 = 0x40;

/// Indirect register 0x00: IOAPIC ID (bits 27:24).
pub const IOAPICID: u8 = 0x00;
/// Indirect register 0x01: version (bits 7:0) and maximum redirection entry (23:16).
pub const IOAPICVER: u8 = 0x01;
/// Indirect register 0x02: arbitration ID (bits 27:24, read-only).
pub const IOAPICARB: u8 = 0x02;
/// Indirect registers 0x10-0x3F: redirection entry n at 0x10 + 2n (low), 0x11 + 2n (high).
pub const IOREDTBL: u8 = 0x10;

/// The IOAPIC version with the EOI register.
pub const IOAPIC_VERSION: u32 = 0x20;
/// The version register: version 0x20, maximum redirection entry 23.
pub const IOAPICVER_VALUE: u32 = IOAPIC_VERSION | ((pc::IOAPIC_PINS as u32 - 1) << 16);
/// ID bits 27:24.
pub const ID_SHIFT: u32 = 24;
/// The ID field's width mask.
pub const ID_MASK: u32 = 0xF;

/// Redirection entry bits 7:0: the vector.
pub const RTE_VECTOR: u64 = 0xFF;
/// Bits 10:8: delivery mode.
pub const RTE_DELIVERY_MODE_SHIFT: u32 = 8;
/// Bit 11: logical destination mode.
pub const RTE_LOGICAL: u64 = 1 << 11;
/// Bit 12: delivery status (send pending; read-only).
pub const RTE_DELIVERY_STATUS: u64 = 1 << 12;
/// Bit 13: input polarity (1 = active low).
pub const RTE_POLARITY_LOW: u64 = 1 << 13;
/// Bit 14: remote IRR (read-only; level-triggered only).
pub const RTE_REMOTE_IRR: u64 = 1 << 14;
/// Bit 15: trigger mode (1 = level).
pub const RTE_LEVEL: u64 = 1 << 15;
/// Bit 16: masked.
pub const RTE_MASKED: u64 = 1 << 16;
/// Bits 63:56: destination.
pub const RTE_DEST_SHIFT: u32 = 56;
/// Writable bits (delivery status and remote IRR are read-only).
pub const RTE_WRITABLE: u64 = RTE_VECTOR
    | (7 << RTE_DELIVERY_MODE_SHIFT)
    | RTE_LOGICAL
    | RTE_POLARITY_LOW
    | RTE_LEVEL
    | RTE_MASKED
    | (0xFF << RTE_DEST_SHIFT);

const PINS: usize = pc::IOAPIC_PINS as usize;

/// The IOAPIC.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IoApic {
    id: u8,
    ioregsel: u8,
    redirection: [u64; PINS],
    /// Each pin's logical level (asserted = true).
    asserted: [bool; PINS],
    messages: Vec<InterruptMessage>,
}

impl Default for IoApic {
    fn default() -> Self {
        Self::new(pc::IOAPIC_ID)
    }
}

impl IoApic {
    /// An IOAPIC after reset: every entry masked, ID `id` (its low 4 bits: the register
    /// holds bits 27:24).
    pub fn new(id: u8) -> Self {
        Self {
            id: id & ID_MASK as u8,
            ioregsel: 0,
            redirection: [RTE_MASKED; PINS],
            asserted: [false; PINS],
            messages: Vec::new(),
        }
    }

    /// The ID the register holds.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Redirection entry `pin`.
    pub fn redirection_entry(&self, pin: u8) -> Option<u64> {
        self.redirection.get(usize::from(pin)).copied()
    }

    /// A change of the logical level of input `pin` (true = asserted; the wiring, and so
    /// the polarity bit, is the machine's business, as in QEMU and KVM). Edge-triggered
    /// entries send on the rising edge, and an edge that arrives while the entry is
    /// masked is lost. Level-triggered entries send while asserted, unmasked and remote
    /// IRR clear. Pins past 23 are ignored.
    pub fn set_irq(&mut self, pin: u8, asserted: bool) {
        let Some(level) = self.asserted.get_mut(usize::from(pin)) else { return };
        let was = std::mem::replace(level, asserted);
        let entry = self.redirection[usize::from(pin)];
        if entry & RTE_LEVEL != 0 {
            self.service_level(pin);
        } else if asserted && !was && entry & RTE_MASKED == 0 {
            self.send(pin);
        }
    }

    /// A level-triggered pin: sends if asserted, unmasked and remote IRR is clear.
    fn service_level(&mut self, pin: u8) {
        let i = usize::from(pin);
        let entry = self.redirection[i];
        if entry & RTE_LEVEL != 0 && self.asserted[i] && entry & (RTE_MASKED | RTE_REMOTE_IRR) == 0
        {
            self.send(pin);
        }
    }

    /// Queues the message entry `pin` describes. Fixed and lowest-priority level
    /// messages set remote IRR until the EOI; reserved delivery modes (011, 110) send
    /// nothing.
    fn send(&mut self, pin: u8) {
        let i = usize::from(pin);
        let entry = self.redirection[i];
        let mode = match DeliveryMode::from_bits((entry >> RTE_DELIVERY_MODE_SHIFT) as u32) {
            Some(DeliveryMode::StartUp) | None => return,
            Some(m) => m,
        };
        let level = entry & RTE_LEVEL != 0;
        if level && matches!(mode, DeliveryMode::Fixed | DeliveryMode::LowestPriority) {
            self.redirection[i] |= RTE_REMOTE_IRR;
        }
        self.redirection[i] |= RTE_DELIVERY_STATUS;
        self.messages.push(InterruptMessage {
            source: None,
            destination: match (entry >> RTE_DEST_SHIFT) as u8 {
                0xFF => BROADCAST,
                d => u32::from(d),
            },
            logical: entry & RTE_LOGICAL != 0,
            shorthand: Shorthand::None,
            delivery_mode: mode,
            vector: (entry & RTE_VECTOR) as u8,
            level: true,
            trigger: if level { TriggerMode::Level } else { TriggerMode::Edge },
        });
    }

    /// The messages sent since the last call, in order; their delivery completes (the
    /// delivery-status bits go idle).
    pub fn take_messages(&mut self) -> Vec<InterruptMessage> {
        for e in &mut self.redirection {
            *e &= !RTE_DELIVERY_STATUS;
        }
        std::mem::take(&mut self.messages)
    }

    /// An EOI for `vector` (a local APIC's EOI broadcast, or the EOI register): remote IRR
    /// clears on every level-triggered entry with that vector, and a pin still asserted
    /// is sent again.
    pub fn eoi(&mut self, vector: u8) {
        for pin in 0..PINS as u8 {
            let e = &mut self.redirection[usize::from(pin)];
            if *e & RTE_REMOTE_IRR != 0 && (*e & RTE_VECTOR) as u8 == vector {
                *e &= !RTE_REMOTE_IRR;
                self.service_level(pin);
            }
        }
    }

    /// Reads indirect register `index`.
    fn read_indirect(&self, index: u8) -> u32 {
        match index {
            IOAPICID | IOAPICARB => u32::from(self.id) << ID_SHIFT,
            IOAPICVER => IOAPICVER_VALUE,
            i if i >= IOREDTBL && usize::from(i - IOREDTBL) < 2 * PINS => {
                let e = self.redirection[usize::from((i - IOREDTBL) / 2)];
                if i & 1 == 0 {
                    e as u32
                } else {
                    (e >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    /// Writes indirect register `index`.
    fn write_indirect(&mut self, index: u8, value: u32) {
        match index {
            IOAPICID => self.id = ((value >> ID_SHIFT) & ID_MASK) as u8,
            i if i >= IOREDTBL && usize::from(i - IOREDTBL) < 2 * PINS => {
                let pin = (i - IOREDTBL) / 2;
                let e = &mut self.redirection[usize::from(pin)];
                let new = if i & 1 == 0 {
                    (*e & !0xFFFF_FFFF) | u64::from(value)
                } else {
                    (*e & 0xFFFF_FFFF) | (u64::from(value) << 32)
                };
                *e = (new & RTE_WRITABLE) | (*e & (RTE_DELIVERY_STATUS | RTE_REMOTE_IRR));
                if *e & RTE_LEVEL == 0 {
                    // Remote IRR means nothing for an edge entry; switching clears it
                    // (as KVM does) so a later switch back to level is not stuck.
                    *e &= !RTE_REMOTE_IRR;
                }
                // Unmasking (or switching to level) an asserted level pin sends it.
                self.service_level(pin);
            }
            // Version, arbitration and unimplemented registers are read-only.
            _ => {}
        }
    }

    /// The IOREGSEL register.
    pub fn ioregsel(&self) -> u8 {
        self.ioregsel
    }
}

impl MmioDevice for IoApic {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let within = offset & 3;
        let value = match offset & !3 {
            IOREGSEL => u32::from(self.ioregsel),
            IOWIN => self.read_indirect(self.ioregsel),
            _ => 0,
        };
        let value = u64::from(value) >> (8 * within);
        match size {
            1 | 2 => value & ((1 << (8 * u32::from(size))) - 1),
            _ => value,
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        match (offset, size) {
            // IOREGSEL is 8 bits; byte and dword writes both reach it.
            (IOREGSEL, _) => self.ioregsel = value as u8,
            (IOWIN, 4 | 8) => self.write_indirect(self.ioregsel, value as u32),
            (IOAPIC_EOI, _) => self.eoi(value as u8),
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write_rte(io: &mut IoApic, pin: u8, value: u64) {
        io.write(IOREGSEL, 1, u64::from(IOREDTBL + 2 * pin + 1));
        io.write(IOWIN, 4, value >> 32);
        io.write(IOREGSEL, 1, u64::from(IOREDTBL + 2 * pin));
        io.write(IOWIN, 4, value & 0xFFFF_FFFF);
    }

    fn read_rte(io: &mut IoApic, pin: u8) -> u64 {
        io.write(IOREGSEL, 1, u64::from(IOREDTBL + 2 * pin));
        let low = io.read(IOWIN, 4);
        io.write(IOREGSEL, 1, u64::from(IOREDTBL + 2 * pin + 1));
        low | (io.read(IOWIN, 4) << 32)
    }

    #[test]
    fn id_version_arbitration() {
        // 82093AA 3.2.1-3.2.3: IOAPICID bits 27:24, IOAPICVER, IOAPICARB.
        let mut io = IoApic::new(0x3);
        io.write(IOREGSEL, 4, u64::from(IOAPICVER));
        assert_eq!(io.read(IOWIN, 4), 0x0017_0020);
        assert_eq!(io.read(IOREGSEL, 4), u64::from(IOAPICVER));
        io.write(IOREGSEL, 4, u64::from(IOAPICID));
        assert_eq!(io.read(IOWIN, 4), 0x0300_0000);
        io.write(IOWIN, 4, 0xFA00_0000);
        assert_eq!(io.read(IOWIN, 4), 0x0A00_0000, "only bits 27:24");
        io.write(IOREGSEL, 4, u64::from(IOAPICARB));
        assert_eq!(io.read(IOWIN, 4), 0x0A00_0000);
        io.write(IOWIN, 4, 0);
        assert_eq!(io.read(IOWIN, 4), 0x0A00_0000, "arbitration is read-only");
        io.write(IOREGSEL, 4, u64::from(IOAPICVER));
        io.write(IOWIN, 4, 0);
        assert_eq!(io.read(IOWIN, 4), 0x0017_0020, "version is read-only");
    }

    #[test]
    fn redirection_entries_reset_masked_and_keep_read_only_bits() {
        // 82093AA 3.2.4: entries reset masked; delivery status and remote IRR read-only.
        let mut io = IoApic::default();
        for pin in 0..24 {
            assert_eq!(read_rte(&mut io, pin), RTE_MASKED);
        }
        write_rte(&mut io, 5, 0xFFFF_FFFF_FFFF_FFFF);
        assert_eq!(read_rte(&mut io, 5), RTE_WRITABLE);
        io.write(IOREGSEL, 1, 0x40);
        assert_eq!(io.read(IOWIN, 4), 0, "past entry 23");
    }

    #[test]
    fn edge_pin_sends_on_rising_edges_only_and_loses_masked_edges() {
        let mut io = IoApic::default();
        write_rte(&mut io, 2, (3 << RTE_DEST_SHIFT) | 0x30);
        io.set_irq(2, true);
        io.set_irq(2, true);
        let m = io.take_messages();
        assert_eq!(m.len(), 1, "one rising edge");
        assert_eq!((m[0].vector, m[0].destination, m[0].logical), (0x30, 3, false));
        assert_eq!(m[0].trigger, TriggerMode::Edge);
        assert_eq!(m[0].delivery_mode, DeliveryMode::Fixed);
        io.set_irq(2, false);
        write_rte(&mut io, 2, RTE_MASKED | 0x30);
        io.set_irq(2, true);
        write_rte(&mut io, 2, 0x30);
        assert!(io.take_messages().is_empty(), "an edge while masked is lost");
    }

    #[test]
    fn level_pin_uses_remote_irr_and_reasserts_after_eoi() {
        let mut io = IoApic::default();
        write_rte(&mut io, 9, RTE_LEVEL | RTE_LOGICAL | (0xFF << RTE_DEST_SHIFT) | 0x49);
        io.set_irq(9, true);
        assert_eq!(
            read_rte(&mut io, 9) & (RTE_REMOTE_IRR | RTE_DELIVERY_STATUS),
            RTE_REMOTE_IRR | RTE_DELIVERY_STATUS
        );
        let m = io.take_messages();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].destination, BROADCAST);
        assert_eq!(m[0].trigger, TriggerMode::Level);
        assert_eq!(read_rte(&mut io, 9) & RTE_DELIVERY_STATUS, 0, "delivered");
        io.set_irq(9, true);
        assert!(io.take_messages().is_empty(), "remote IRR holds further messages");
        io.eoi(0x48);
        assert!(io.take_messages().is_empty(), "another vector's EOI");
        io.eoi(0x49);
        assert_eq!(io.take_messages().len(), 1, "still asserted: sent again after EOI");
        io.set_irq(9, false);
        io.write(IOAPIC_EOI, 4, 0x49);
        assert_eq!(read_rte(&mut io, 9) & RTE_REMOTE_IRR, 0, "EOI register clears it");
        assert!(io.take_messages().is_empty(), "de-asserted: nothing more");
    }

    #[test]
    fn unmasking_an_asserted_level_pin_sends() {
        let mut io = IoApic::default();
        write_rte(&mut io, 11, RTE_LEVEL | RTE_MASKED | 0x51);
        io.set_irq(11, true);
        assert!(io.take_messages().is_empty(), "masked");
        write_rte(&mut io, 11, RTE_LEVEL | 0x51);
        assert_eq!(io.take_messages().len(), 1);
    }

    #[test]
    fn delivery_modes_map_to_messages() {
        // 82093AA Table 3-5: fixed, lowest priority, SMI, NMI, INIT, ExtINT; 011 and 110
        // reserved.
        let mut io = IoApic::default();
        for (bits, mode) in [
            (1, Some(DeliveryMode::LowestPriority)),
            (2, Some(DeliveryMode::Smi)),
            (4, Some(DeliveryMode::Nmi)),
            (5, Some(DeliveryMode::Init)),
            (7, Some(DeliveryMode::ExtInt)),
            (3, None),
            (6, None),
        ] {
            write_rte(&mut io, 0, (bits << RTE_DELIVERY_MODE_SHIFT) | 0x20);
            io.set_irq(0, true);
            io.set_irq(0, false);
            let m = io.take_messages();
            assert_eq!(m.first().map(|m| m.delivery_mode), mode, "mode bits {bits}");
        }
        // A level NMI entry does not hold remote IRR.
        write_rte(&mut io, 1, RTE_LEVEL | (4 << RTE_DELIVERY_MODE_SHIFT));
        io.set_irq(1, true);
        assert_eq!(read_rte(&mut io, 1) & RTE_REMOTE_IRR, 0);
    }

    #[test]
    fn switching_to_edge_clears_remote_irr() {
        let mut io = IoApic::default();
        write_rte(&mut io, 4, RTE_LEVEL | 0x60);
        io.set_irq(4, true);
        write_rte(&mut io, 4, 0x60);
        assert_eq!(read_rte(&mut io, 4) & RTE_REMOTE_IRR, 0);
    }

    proptest! {
        #[test]
        fn random_traffic_never_panics(ops in proptest::collection::vec((0u8..4, any::<u64>()), 1..300)) {
            let mut io = IoApic::default();
            for (op, v) in ops {
                match op {
                    0 => io.write(v & 0xFF, [1, 2, 4, 8][(v >> 8 & 3) as usize], v >> 16),
                    1 => { io.read(v & 0xFFF, [1, 2, 4, 8][(v >> 8 & 3) as usize]); }
                    2 => io.set_irq((v & 0x1F) as u8, v & 0x100 != 0),
                    _ => io.eoi(v as u8),
                }
                for m in io.take_messages() {
                    prop_assert_eq!(m.source, None);
                }
            }
        }
    }
}
