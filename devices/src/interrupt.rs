//! Interrupt messages: what a local APIC sends through its ICR and what the IOAPIC sends
//! from its redirection table, and the APIC-bus rules that pick the APICs a message
//! reaches (SDM Vol. 3A 11.6 "Issuing Interprocessor Interrupts").
//!
//! Devices never call each other: an APIC or IOAPIC queues messages, the machine drains
//! them and delivers each to the local APICs [`route`] selects.

use crate::lapic::LocalApic;

/// The destination that reaches every APIC (xAPIC 0xFF and x2APIC 0xFFFF_FFFF are both
/// widened to this value when a message is built).
pub const BROADCAST: u32 = u32::MAX;

/// Delivery mode, ICR/LVT/redirection-entry bits 10:8 (SDM Vol. 3A 11.6.1, Figure 11-12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DeliveryMode {
    /// 000: the vector, to IRR.
    Fixed,
    /// 001: the vector, to the lowest-priority APIC of the destination set.
    LowestPriority,
    /// 010: an SMI.
    Smi,
    /// 100: an NMI.
    Nmi,
    /// 101: INIT (or, with level de-assert and level trigger, INIT level de-assert).
    Init,
    /// 110: start-up IPI (SIPI) with the vector as the start page.
    StartUp,
    /// 111: external interrupt: the vector comes from the 8259A (INTA cycle).
    ExtInt,
}

impl DeliveryMode {
    /// The mode encoded by bits 2:0 of `bits`; `None` for the reserved 011.
    pub const fn from_bits(bits: u32) -> Option<Self> {
        Some(match bits & 7 {
            0 => Self::Fixed,
            1 => Self::LowestPriority,
            2 => Self::Smi,
            4 => Self::Nmi,
            5 => Self::Init,
            6 => Self::StartUp,
            7 => Self::ExtInt,
            _ => return None,
        })
    }

    /// The 3-bit encoding.
    pub const fn bits(self) -> u32 {
        match self {
            Self::Fixed => 0,
            Self::LowestPriority => 1,
            Self::Smi => 2,
            Self::Nmi => 4,
            Self::Init => 5,
            Self::StartUp => 6,
            Self::ExtInt => 7,
        }
    }
}

/// Destination shorthand, ICR bits 19:18 (SDM Vol. 3A 11.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Shorthand {
    /// 00: the destination field names the targets.
    None,
    /// 01: the sender only.
    SelfOnly,
    /// 10: every APIC, the sender included.
    AllIncludingSelf,
    /// 11: every APIC but the sender.
    AllExcludingSelf,
}

impl Shorthand {
    /// The shorthand encoded by bits 1:0 of `bits`.
    pub const fn from_bits(bits: u32) -> Self {
        match bits & 3 {
            0 => Self::None,
            1 => Self::SelfOnly,
            2 => Self::AllIncludingSelf,
            _ => Self::AllExcludingSelf,
        }
    }
}

/// Trigger mode (ICR bit 15, LVT bit 15, redirection entry bit 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TriggerMode {
    /// Edge triggered.
    Edge,
    /// Level triggered: the receiving APIC sets the vector's TMR bit and broadcasts an
    /// EOI message for it.
    Level,
}

/// One interrupt message on the APIC bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct InterruptMessage {
    /// The sending local APIC's ID (xAPIC ID register or x2APIC ID); `None` for the
    /// IOAPIC and other non-APIC sources.
    pub source: Option<u32>,
    /// Physical APIC ID or logical destination (MDA); [`BROADCAST`] reaches all.
    pub destination: u32,
    /// Logical (true) or physical (false) destination mode (bit 11).
    pub logical: bool,
    /// Destination shorthand; only ICR messages use anything but `None`.
    pub shorthand: Shorthand,
    /// What the receivers do.
    pub delivery_mode: DeliveryMode,
    /// The vector (the start page for SIPI; ignored for NMI, SMI, INIT, ExtINT).
    pub vector: u8,
    /// Level: assert (true) or de-assert (ICR bit 14). De-assert with INIT and level
    /// trigger is "INIT level de-assert".
    pub level: bool,
    /// Trigger mode.
    pub trigger: TriggerMode,
}

impl InterruptMessage {
    /// Whether this is an INIT level de-assert message (SDM Vol. 3A 11.6.1: delivery mode
    /// INIT, level 0, trigger level); it only synchronises arbitration IDs and has no
    /// effect on the receivers.
    pub fn is_init_deassert(&self) -> bool {
        self.delivery_mode == DeliveryMode::Init
            && !self.level
            && self.trigger == TriggerMode::Level
    }
}

/// The indices (into `apics`) of the local APICs that accept `msg`, in order.
///
/// Shorthands use `msg.source` to find the sender (for "self" and "all excluding self").
/// For lowest-priority delivery (SDM Vol. 3A 11.6.2.4 "Lowest Priority Delivery Mode"):
/// a focus processor (an APIC with focus checking enabled that already has the vector in
/// IRR or ISR) wins; otherwise the APIC with the lowest arbitration priority (APR), ties
/// going to the lowest index so that runs are deterministic.
pub fn route<'a>(
    msg: &InterruptMessage,
    apics: impl IntoIterator<Item = &'a LocalApic>,
) -> Vec<usize> {
    let candidates: Vec<(usize, &LocalApic)> = apics
        .into_iter()
        .enumerate()
        .filter(|(_, a)| a.is_hardware_enabled())
        .filter(|(_, a)| match msg.shorthand {
            Shorthand::None => a.matches_destination(msg.destination, msg.logical),
            Shorthand::SelfOnly => Some(a.id()) == msg.source,
            Shorthand::AllIncludingSelf => true,
            Shorthand::AllExcludingSelf => Some(a.id()) != msg.source,
        })
        .collect();
    if msg.delivery_mode != DeliveryMode::LowestPriority || candidates.len() <= 1 {
        return candidates.into_iter().map(|(i, _)| i).collect();
    }
    let enabled: Vec<&(usize, &LocalApic)> =
        candidates.iter().filter(|(_, a)| a.is_software_enabled()).collect();
    if let Some((i, _)) = enabled.iter().find(|(_, a)| a.is_focus_for(msg.vector)) {
        return vec![*i];
    }
    enabled
        .iter()
        .min_by_key(|(i, a)| (a.arbitration_priority(), *i))
        .map(|(i, _)| vec![*i])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ioapic::{IoApic, IOREDTBL, IOREGSEL, IOWIN, RTE_LEVEL, RTE_LOGICAL};
    use crate::lapic::{regs, LapicConfig};
    use crate::mmio::MmioDevice;

    /// Two enabled xAPICs, IDs 0 and 1, logical IDs 1 and 2 (flat model).
    fn apics() -> Vec<LocalApic> {
        (0..2)
            .map(|id| {
                let mut a =
                    LocalApic::new(LapicConfig { apic_id: id, bsp: id == 0, ..Default::default() });
                a.write(u64::from(regs::SVR), 4, 0x1FF);
                a.write(u64::from(regs::LDR), 4, 1 << (24 + id));
                a
            })
            .collect()
    }

    fn deliver(msgs: Vec<InterruptMessage>, apics: &mut [LocalApic]) {
        for m in msgs {
            for i in route(&m, apics.iter()) {
                apics[i].accept(&m);
            }
        }
    }

    #[test]
    fn level_interrupt_round_trip_ioapic_lapic_eoi() {
        // 82093AA remote IRR + SDM Vol. 3A 11.8.5 EOI broadcast: the whole loop the
        // machine runs between the devices.
        let mut apics = apics();
        let mut io = IoApic::default();
        io.write(IOREGSEL, 1, u64::from(IOREDTBL + 2 * 9 + 1));
        io.write(IOWIN, 4, 0x0200_0000); // logical destination 2 = APIC 1
        io.write(IOREGSEL, 1, u64::from(IOREDTBL + 2 * 9));
        io.write(IOWIN, 4, RTE_LEVEL | RTE_LOGICAL | 0x59);
        io.set_irq(9, true);
        deliver(io.take_messages(), &mut apics);
        assert_eq!(apics[0].pending_vector(), None);
        assert_eq!(apics[1].pending_vector(), Some(0x59));
        assert_eq!(apics[1].acknowledge(), 0x59);
        io.set_irq(9, false);
        apics[1].write(u64::from(regs::EOI), 4, 0);
        for v in apics[1].take_eoi_broadcasts() {
            io.eoi(v);
        }
        io.set_irq(9, true);
        deliver(io.take_messages(), &mut apics);
        assert_eq!(apics[1].pending_vector(), Some(0x59), "remote IRR was cleared by the EOI");
    }

    #[test]
    fn init_sipi_sequence_reaches_the_ap_only() {
        // SDM Vol. 3A 9.4.4.1: INIT-SIPI-SIPI to all excluding self.
        let mut apics = apics();
        apics[0].write(u64::from(regs::ICR_LOW), 4, 0x000C_4500);
        apics[0].write(u64::from(regs::ICR_LOW), 4, 0x000C_4608);
        let out = apics[0].take_outgoing();
        deliver(out, &mut apics);
        assert!(!apics[0].take_init());
        assert!(apics[1].take_init());
        assert_eq!(apics[1].take_sipi(), Some(0x08));
    }

    #[test]
    fn broadcast_reaches_x2apic_and_xapic_alike() {
        let mut apics = apics();
        apics[1]
            .wrmsr(
                regs::IA32_APIC_BASE,
                0xFEE0_0000 | regs::APIC_BASE_ENABLE | regs::APIC_BASE_EXTD,
            )
            .unwrap();
        let nmi = InterruptMessage {
            source: None,
            destination: BROADCAST,
            logical: false,
            shorthand: Shorthand::None,
            delivery_mode: DeliveryMode::Nmi,
            vector: 0,
            level: true,
            trigger: TriggerMode::Edge,
        };
        assert_eq!(route(&nmi, apics.iter()), vec![0, 1]);
        let mut to_one = nmi;
        to_one.destination = 1;
        assert_eq!(route(&to_one, apics.iter()), vec![1], "x2APIC ID 1");
    }
}
