//! The PC: every device of [`crate::pc`]'s map in one place, with the wiring between
//! them that a board provides. The machine (in `src`) sees only this: port and MMIO
//! accesses, virtual time, and per-vCPU interrupt state.
//!
//! Wiring, as on QEMU's `pc` machine (i440FX + PIIX3):
//!
//! - ISA IRQ lines 0-15 go to the 8259A pair and to the IOAPIC pins of the same number,
//!   except IRQ 0 (PIT), which reaches IOAPIC pin 2 (the MADT interrupt source override).
//! - The 8259A's INTR output drives LINT0 of the bootstrap processor's local APIC
//!   (virtual-wire mode: LINT0 in ExtINT mode); the INTA cycle goes to the 8259A.
//! - IOAPIC messages and IPIs travel on the APIC bus and are routed with
//!   [`crate::interrupt::route`]; EOIs of level-triggered vectors go back to the IOAPIC.
//! - Reset requests (i8042 pulse, port 0x92, 0xCF9) and the ACPI S5 request are flags
//!   the machine takes.
//!
//! Everything is a pure function of the accesses and of the virtual time passed in.

use crate::acpi_pm::AcpiPm;
use crate::bus::PortDevice;
use crate::debug_exit::DebugExit;
use crate::debugcon::{DebugCon, DEBUGCON_PORT};
use crate::fw_cfg::FwCfg;
use crate::i8042::I8042;
use crate::ide::{self, AtaDrive, IdeChannel};
use crate::interrupt::route;
use crate::ioapic::{IoApic, IOAPIC_MMIO_SIZE};
use crate::lapic::{ApicFault, LapicConfig, LocalApic, TscClock};
use crate::mmio::MmioDevice;
use crate::pc;
use crate::pci::{PciHost, PmFunction};
use crate::pic::Pic;
use crate::pit::Pit;
use crate::port92::PortA;
use crate::post::PostPort;
use crate::rtc::Rtc;
use crate::uart16550::Uart16550;

/// Size of the local APIC's MMIO page.
pub const LAPIC_MMIO_SIZE: u64 = 0x1000;

/// How to build the PC.
#[derive(Clone, Debug)]
pub struct PcConfig {
    /// Number of vCPUs (one local APIC each, APIC IDs 0..cpus).
    pub cpus: usize,
    /// Guest RAM in bytes (for the CMOS and fw_cfg).
    pub ram_size: u64,
    /// TSC and APIC timer clock, in Hz of virtual time.
    pub tsc_hz: u64,
    /// MAXPHYADDR of the CPU model.
    pub max_phys_addr_bits: u8,
}

/// Something the machine must act on, taken from the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PlatformRequest {
    /// A system reset (keyboard controller pulse, port 0x92, or the PIIX reset control).
    Reset,
    /// ACPI S5: power off.
    PowerOff,
    /// isa-debug-exit was written with this value.
    DebugExit(u32),
}

/// The PC's devices and their wiring.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct PcPlatform {
    /// The 8259A pair (with ELCR).
    pub pic: Pic,
    /// The 8254 PIT and port B.
    pub pit: Pit,
    /// The MC146818 RTC and CMOS.
    pub rtc: Rtc,
    /// COM1 (the console).
    pub com1: Uart16550,
    /// COM2.
    pub com2: Uart16550,
    /// The keyboard controller.
    pub kbd: I8042,
    /// System control port A (fast A20, reset).
    pub port_a: PortA,
    /// The POST code port.
    pub post: PostPort,
    /// QEMU's firmware configuration interface.
    pub fw_cfg: FwCfg,
    /// PCI configuration space (host bridge, ISA bridge, PM function).
    pub pci: PciHost,
    /// The ACPI PM I/O block.
    pub pm: AcpiPm,
    /// QEMU's isa-debug-exit.
    pub debug_exit: DebugExit,
    /// QEMU's debug console (SeaBIOS's log).
    pub debugcon: DebugCon,
    /// The PIIX3 IDE channels: primary (0x1F0, IRQ 14) and secondary (0x170, IRQ 15).
    pub ide: [IdeChannel; 2],
    /// The IOAPIC.
    pub ioapic: IoApic,
    /// One local APIC per vCPU, indexed by vCPU.
    pub lapics: Vec<LocalApic>,
    /// Where the ACPI PM block decodes: the PIIX4 PM function's PMBA, if PMIOSE is set.
    pm_base: Option<u16>,
    /// The ISA IRQ levels last propagated.
    isa_levels: [bool; 16],
    /// The 8259A INTR level last propagated to the BSP's LINT0.
    intr_level: bool,
    now_ns: u64,
}

/// The IOAPIC pin ISA IRQ `irq` is wired to.
pub fn isa_gsi(irq: u8) -> u8 {
    if irq == pc::PIT_IRQ {
        pc::IOAPIC_PIT_PIN
    } else {
        irq
    }
}

impl PcPlatform {
    /// The PC in its power-up state.
    pub fn new(cfg: &PcConfig) -> Self {
        let cpus = cfg.cpus.max(1);
        let lapics = (0..cpus)
            .map(|i| {
                LocalApic::new(LapicConfig {
                    apic_id: i as u32,
                    bsp: i == 0,
                    timer_hz: cfg.tsc_hz,
                    tsc: TscClock { hz: cfg.tsc_hz, offset: 0 },
                    max_phys_addr_bits: cfg.max_phys_addr_bits,
                })
            })
            .collect();
        Self {
            pic: Pic::new(),
            pit: Pit::new(),
            rtc: Rtc::new(cfg.ram_size, cpus as u32),
            com1: Uart16550::new(pc::COM1_PORT),
            com2: Uart16550::new(pc::COM2_PORT),
            kbd: I8042::new(),
            port_a: PortA::new(),
            post: PostPort::default(),
            fw_cfg: FwCfg::new(cfg.ram_size, cpus.min(usize::from(u16::MAX)) as u16),
            pci: PciHost::pc(),
            pm: AcpiPm::new(pc::ACPI_PM_BASE),
            debug_exit: DebugExit::default(),
            debugcon: DebugCon::default(),
            ide: [
                IdeChannel::new(ide::PRIMARY_CMD_PORT, ide::PRIMARY_CTL_PORT),
                IdeChannel::new(ide::SECONDARY_CMD_PORT, ide::SECONDARY_CTL_PORT),
            ],
            ioapic: IoApic::new(pc::IOAPIC_ID),
            lapics,
            pm_base: Some(pc::ACPI_PM_BASE),
            isa_levels: [false; 16],
            intr_level: false,
            now_ns: 0,
        }
    }

    /// The device that answers `port`, if a built-in one does.
    fn port_device(&mut self, port: u16) -> Option<&mut dyn PortDevice> {
        let in_range = |base: u16, len: u16| port >= base && port < base + len;
        Some(match port {
            p if in_range(pc::PIC_MASTER_PORT, 2)
                || in_range(pc::PIC_SLAVE_PORT, 2)
                || in_range(pc::ELCR_PORT, 2) =>
            {
                let _ = p;
                &mut self.pic
            }
            p if in_range(pc::PIT_PORT, 4) || p == pc::PORT_B => &mut self.pit,
            _ if in_range(pc::CMOS_PORT, 2) => &mut self.rtc,
            p if p == pc::I8042_DATA_PORT || p == pc::I8042_CMD_PORT => &mut self.kbd,
            p if p == pc::PORT_A => &mut self.port_a,
            p if p == pc::POST_PORT => &mut self.post,
            p if p == pc::DEBUG_EXIT_PORT => &mut self.debug_exit,
            DEBUGCON_PORT => &mut self.debugcon,
            _ if in_range(pc::COM1_PORT, 8) => &mut self.com1,
            _ if in_range(pc::COM2_PORT, 8) => &mut self.com2,
            _ if in_range(pc::FW_CFG_PORT_SEL, 2) => &mut self.fw_cfg,
            _ if in_range(pc::PCI_CONFIG_ADDRESS, 8) => &mut self.pci,
            _ if self.pm_base.is_some_and(|b| in_range(b, 12)) => &mut self.pm,
            _ if self.ide[0].claims(port) => &mut self.ide[0],
            _ if self.ide[1].claims(port) => &mut self.ide[1],
            _ => return None,
        })
    }

    /// After a PCI configuration write: the PM block follows the PIIX4 PMBA register.
    fn pci_config_written(&mut self) {
        let base = self.pci.function::<PmFunction>().and_then(PmFunction::pm_base);
        if base != self.pm_base {
            self.pm_base = base;
            if let Some(b) = base {
                self.pm.set_base(b);
            }
        }
    }

    /// Whether a built-in device answers `port`.
    pub fn claims_port(&mut self, port: u16) -> bool {
        self.port_device(port).is_some()
    }

    /// Whether the device at `port` has only byte registers: a wider access is a
    /// sequence of byte accesses to consecutive ports, as on the ISA bus.
    fn byte_wide(&self, port: u16) -> bool {
        !matches!(
            port,
            pc::DEBUG_EXIT_PORT
                | DEBUGCON_PORT
                | ide::PRIMARY_CMD_PORT
                | ide::SECONDARY_CMD_PORT
                | 0x510..=0x511
                | 0xCF8..=0xCFF
        ) && !self.pm_base.is_some_and(|b| (b..b.saturating_add(12)).contains(&port))
    }

    /// A port read at virtual time `now_ns`; `None` if no built-in device answers.
    pub fn port_read(&mut self, port: u16, size: u8, now_ns: u64) -> Option<u32> {
        self.advance(now_ns);
        let v = if size > 1 && self.byte_wide(port) {
            self.port_device(port)?;
            let mut v = 0u32;
            for i in 0..u16::from(size.min(4)) {
                let p = port.wrapping_add(i);
                let b = if self.byte_wide(p) {
                    self.port_device(p).map_or(0xFF, |d| d.read(p, 1) & 0xFF)
                } else {
                    0xFF
                };
                v |= b << (8 * i);
            }
            v
        } else {
            self.port_device(port)?.read(port, size)
        };
        self.sync();
        Some(v)
    }

    /// A port write at virtual time `now_ns`; `false` if no built-in device answers.
    pub fn port_write(&mut self, port: u16, size: u8, value: u32, now_ns: u64) -> bool {
        self.advance(now_ns);
        if self.port_device(port).is_none() {
            return false;
        }
        if size > 1 && self.byte_wide(port) {
            for i in 0..u16::from(size.min(4)) {
                let p = port.wrapping_add(i);
                if !self.byte_wide(p) {
                    continue;
                }
                if let Some(d) = self.port_device(p) {
                    d.write(p, 1, (value >> (8 * i)) & 0xFF);
                }
            }
        } else if let Some(d) = self.port_device(port) {
            d.write(port, size, value);
        }
        if (pc::PCI_CONFIG_DATA..pc::PCI_CONFIG_DATA + 4).contains(&port) {
            self.pci_config_written();
        }
        self.sync();
        true
    }

    /// Whether `gpa` is device memory for vCPU `vcpu` (its local APIC page, or the
    /// IOAPIC).
    #[inline]
    pub fn mmio_claims(&self, vcpu: usize, gpa: u64) -> bool {
        (gpa >= pc::IOAPIC_BASE && gpa < pc::IOAPIC_BASE + IOAPIC_MMIO_SIZE)
            || self.lapic_page(vcpu).is_some_and(|b| gpa >= b && gpa < b + LAPIC_MMIO_SIZE)
    }

    /// The base of vCPU `vcpu`'s xAPIC page, if its APIC decodes MMIO.
    fn lapic_page(&self, vcpu: usize) -> Option<u64> {
        let a = self.lapics.get(vcpu)?;
        a.mmio_enabled().then(|| a.mmio_base())
    }

    /// An MMIO read by vCPU `vcpu`.
    pub fn mmio_read(&mut self, vcpu: usize, gpa: u64, size: u8, now_ns: u64) -> u64 {
        self.advance(now_ns);
        let v = if let Some(base) =
            self.lapic_page(vcpu).filter(|&b| gpa >= b && gpa < b + LAPIC_MMIO_SIZE)
        {
            self.lapics[vcpu].mmio_read(gpa - base, size)
        } else if gpa >= pc::IOAPIC_BASE && gpa < pc::IOAPIC_BASE + IOAPIC_MMIO_SIZE {
            self.ioapic.read(gpa - pc::IOAPIC_BASE, size)
        } else {
            u64::MAX >> (64 - 8 * u32::from(size.clamp(1, 8)))
        };
        self.sync();
        v
    }

    /// An MMIO write by vCPU `vcpu`.
    pub fn mmio_write(&mut self, vcpu: usize, gpa: u64, size: u8, value: u64, now_ns: u64) {
        self.advance(now_ns);
        if let Some(base) = self.lapic_page(vcpu).filter(|&b| gpa >= b && gpa < b + LAPIC_MMIO_SIZE)
        {
            self.lapics[vcpu].mmio_write(gpa - base, size, value);
        } else if gpa >= pc::IOAPIC_BASE && gpa < pc::IOAPIC_BASE + IOAPIC_MMIO_SIZE {
            self.ioapic.write(gpa - pc::IOAPIC_BASE, size, value);
        }
        self.sync();
    }

    /// RDMSR of vCPU `vcpu`'s local APIC MSR `msr` (x2APIC registers, IA32_TSC_DEADLINE)
    /// at virtual time `now_ns`.
    pub fn lapic_rdmsr(&mut self, vcpu: usize, msr: u32, now_ns: u64) -> Result<u64, ApicFault> {
        self.advance(now_ns);
        self.lapics.get(vcpu).ok_or(ApicFault::Reserved(msr))?.rdmsr(msr)
    }

    /// WRMSR of vCPU `vcpu`'s local APIC MSR `msr`; IPIs it sends are delivered.
    pub fn lapic_wrmsr(
        &mut self,
        vcpu: usize,
        msr: u32,
        value: u64,
        now_ns: u64,
    ) -> Result<(), ApicFault> {
        self.advance(now_ns);
        let r = self.lapics.get_mut(vcpu).ok_or(ApicFault::Reserved(msr))?.wrmsr(msr, value);
        self.sync();
        r
    }

    /// Sets vCPU `vcpu`'s task priority (a MOV to CR8 in 64-bit mode).
    pub fn set_lapic_tpr(&mut self, vcpu: usize, tpr: u8, now_ns: u64) {
        self.advance(now_ns);
        if let Some(a) = self.lapics.get_mut(vcpu) {
            a.set_tpr(tpr);
        }
        self.sync();
    }

    /// Tells every timed device the virtual time, then propagates what changed.
    pub fn advance(&mut self, now_ns: u64) {
        if now_ns < self.now_ns {
            return;
        }
        self.now_ns = now_ns;
        self.pit.advance(now_ns);
        self.rtc.advance(now_ns);
        self.pm.advance(now_ns);
        for a in &mut self.lapics {
            a.advance(now_ns);
        }
        self.sync();
    }

    /// The virtual time of the next device event (a timer expiring, an RTC update),
    /// if any is scheduled.
    pub fn next_event_ns(&self) -> Option<u64> {
        [self.pit.next_event_ns(), self.rtc.next_event_ns(), self.pm.next_event_ns()]
            .into_iter()
            .chain(self.lapics.iter().map(LocalApic::next_event_ns))
            .flatten()
            .min()
    }

    /// Sets ISA IRQ `irq` to `level` on the PIC and the IOAPIC.
    fn set_isa_irq(&mut self, irq: u8, level: bool) {
        let i = usize::from(irq & 15);
        if self.isa_levels[i] != level {
            self.isa_levels[i] = level;
            self.pic.set_irq(irq, level);
            self.ioapic.set_irq(isa_gsi(irq), level);
        }
    }

    /// Propagates interrupt lines and messages until nothing changes.
    fn sync(&mut self) {
        // Edge-triggered sources pulse their line.
        if self.pit.take_irq0_edges() > 0 {
            self.set_isa_irq(pc::PIT_IRQ, false);
            self.set_isa_irq(pc::PIT_IRQ, true);
            self.set_isa_irq(pc::PIT_IRQ, false);
        }
        let levels = [
            (pc::KBD_IRQ, self.kbd.irq1_level()),
            (pc::COM2_IRQ, self.com2.irq_level()),
            (pc::COM1_IRQ, self.com1.irq_level()),
            (pc::RTC_IRQ, self.rtc.irq_level()),
            (pc::ACPI_SCI_IRQ, self.pm.sci_level()),
            (ide::PRIMARY_IRQ, self.ide[0].irq_level()),
            (ide::SECONDARY_IRQ, self.ide[1].irq_level()),
        ];
        for (irq, level) in levels {
            self.set_isa_irq(irq, level);
        }
        // The APIC bus: a bounded number of rounds (every round consumes messages).
        for _ in 0..8 {
            let mut messages = self.ioapic.take_messages();
            for a in &mut self.lapics {
                messages.extend(a.take_outgoing());
            }
            let mut eois = Vec::new();
            for a in &mut self.lapics {
                eois.extend(a.take_eoi_broadcasts());
            }
            let intr = self.pic.intr();
            let intr_changed = intr != self.intr_level;
            if messages.is_empty() && eois.is_empty() && !intr_changed {
                break;
            }
            for msg in &messages {
                for i in route(msg, &self.lapics) {
                    self.lapics[i].accept(msg);
                }
            }
            for v in eois {
                self.ioapic.eoi(v);
            }
            if intr_changed {
                self.intr_level = intr;
                if let Some(bsp) = self.lapics.first_mut() {
                    bsp.set_lint(0, intr);
                }
            }
        }
    }

    /// Whether vCPU `vcpu` has a maskable interrupt to take (its APIC has a deliverable
    /// vector, or an ExtINT from the 8259A).
    pub fn interrupt_pending(&self, vcpu: usize) -> bool {
        self.lapics.get(vcpu).is_some_and(|a| {
            a.pending_vector().is_some() || (a.extint_pending() && self.pic.intr())
        })
    }

    /// The interrupt-acknowledge cycle of vCPU `vcpu`: the vector it takes, from the 8259A
    /// for ExtINT, else from its APIC.
    pub fn acknowledge(&mut self, vcpu: usize) -> Option<u8> {
        let a = self.lapics.get_mut(vcpu)?;
        let v = if a.extint_pending() && self.pic.intr() {
            a.take_extint();
            self.pic.acknowledge()
        } else if a.pending_vector().is_some() {
            a.acknowledge()
        } else {
            return None;
        };
        self.sync();
        Some(v)
    }

    /// A request the machine must act on (reset, power off, debug exit), if any.
    pub fn take_request(&mut self) -> Option<PlatformRequest> {
        if let Some(v) = self.debug_exit.take() {
            return Some(PlatformRequest::DebugExit(v));
        }
        if self.kbd.take_reset() | self.port_a.take_reset() | self.pci.take_reset_request() {
            return Some(PlatformRequest::Reset);
        }
        if self.pm.take_power_off() {
            return Some(PlatformRequest::PowerOff);
        }
        None
    }

    /// Attaches `drive` to IDE `channel` (0 primary, 1 secondary) at `position` (0
    /// master, 1 slave).
    pub fn attach_ide(&mut self, channel: usize, position: usize, drive: AtaDrive) {
        if let Some(c) = self.ide.get_mut(channel) {
            c.attach(position, drive);
        }
    }

    /// Flushes the IDE drives' persistent images.
    pub fn flush_disks(&mut self) -> Result<(), crate::disk_image::DiskImageError> {
        for c in &mut self.ide {
            for p in 0..2 {
                if let Some(d) = c.drive_mut(p) {
                    d.image.flush()?;
                }
            }
        }
        Ok(())
    }

    /// Whether the A20 gate is open (either the keyboard controller's or port 0x92's).
    pub fn a20(&self) -> bool {
        self.kbd.a20() || self.port_a.a20()
    }

    /// The virtual time last seen.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interrupt::DeliveryMode;

    fn pc(cpus: usize) -> PcPlatform {
        PcPlatform::new(&PcConfig {
            cpus,
            ram_size: 32 << 20,
            tsc_hz: 1_000_000_000,
            max_phys_addr_bits: 40,
        })
    }

    /// Initialises the 8259A pair as a PC BIOS does: vectors 0x08 and 0x70, cascade on 2.
    fn init_pic(p: &mut PcPlatform, mask: u8) {
        let mask = u32::from(mask);
        for (port, v) in [(0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, mask)] {
            p.port_write(port, 1, v, 0);
        }
        for (port, v) in [(0xA0, 0x11), (0xA1, 0x70), (0xA1, 0x02), (0xA1, 0x01), (0xA1, 0xFF)] {
            p.port_write(port, 1, v, 0);
        }
    }

    #[test]
    fn pit_ticks_reach_the_bsp_through_the_pic_in_virtual_wire_mode() {
        let mut p = pc(2);
        init_pic(&mut p, 0xFE); // only IRQ 0
                                // PIT channel 0, mode 2, count 1193 (about 1 ms).
        p.port_write(0x43, 1, 0x34, 0);
        p.port_write(0x40, 1, 1193 & 0xFF, 0);
        p.port_write(0x40, 1, 1193 >> 8, 0);
        assert!(!p.interrupt_pending(0));
        // Follow the scheduled events (OUT falls at count 1, rises at the reload).
        let mut t = 0;
        for _ in 0..4 {
            if p.interrupt_pending(0) {
                break;
            }
            t = p.next_event_ns().expect("the PIT is counting");
            p.advance(t);
        }
        assert!((900_000..1_100_000).contains(&t), "{t}");
        assert!(p.interrupt_pending(0));
        assert!(!p.interrupt_pending(1), "ExtINT goes to the BSP only");
        assert_eq!(p.acknowledge(0), Some(0x08));
        assert!(!p.interrupt_pending(0));
        // Non-specific EOI, then the next tick comes a period later.
        p.port_write(0x20, 1, 0x20, t);
        let t2 = p.next_event_ns().unwrap();
        assert!(t2 > t);
    }

    #[test]
    fn com1_irq_reaches_the_ioapic_and_the_lapic() {
        let mut p = pc(1);
        // IOAPIC pin 4 -> vector 0x34, fixed, physical destination APIC 0, edge, unmasked.
        let base = pc::IOAPIC_BASE;
        p.mmio_write(0, base, 4, 0x10 + 2 * 4, 0);
        p.mmio_write(0, base + 0x10, 4, 0x34, 0);
        p.mmio_write(0, base, 4, 0x10 + 2 * 4 + 1, 0);
        p.mmio_write(0, base + 0x10, 4, 0, 0);
        // Software-enable the local APIC (SVR bit 8).
        p.mmio_write(0, pc::LAPIC_BASE + 0xF0, 4, 0x1FF, 0);
        // Mask the 8259A so that only the IOAPIC path delivers.
        init_pic(&mut p, 0xFF);
        // COM1: THR-empty interrupt enabled, OUT2 set: the IRQ rises.
        p.port_write(0x3F8 + 4, 1, 0x08, 0);
        p.port_write(0x3F8 + 1, 1, 0x02, 0);
        assert!(p.interrupt_pending(0));
        assert_eq!(p.acknowledge(0), Some(0x34));
        // EOI to the local APIC.
        p.mmio_write(0, pc::LAPIC_BASE + 0xB0, 4, 0, 0);
        assert!(!p.interrupt_pending(0));
    }

    #[test]
    fn ipis_travel_between_apics() {
        let mut p = pc(2);
        for i in 0..2 {
            p.mmio_write(i, pc::LAPIC_BASE + 0xF0, 4, 0x1FF, 0);
        }
        // vCPU 0 sends fixed vector 0x40 to APIC 1.
        p.mmio_write(0, pc::LAPIC_BASE + 0x310, 4, 1 << 24, 0);
        p.mmio_write(0, pc::LAPIC_BASE + 0x300, 4, 0x40, 0);
        assert!(p.interrupt_pending(1) && !p.interrupt_pending(0));
        assert_eq!(p.acknowledge(1), Some(0x40));
        // INIT and SIPI surface as flags on the target's APIC.
        p.mmio_write(
            0,
            pc::LAPIC_BASE + 0x300,
            4,
            u64::from((DeliveryMode::Init.bits() << 8) | 0x4000),
            0,
        );
        assert!(p.lapics[1].take_init());
        p.mmio_write(
            0,
            pc::LAPIC_BASE + 0x300,
            4,
            u64::from((DeliveryMode::StartUp.bits() << 8) | 0x09),
            0,
        );
        assert_eq!(p.lapics[1].take_sipi(), Some(0x09));
    }

    #[test]
    fn requests_and_unclaimed_ports() {
        let mut p = pc(1);
        assert_eq!(p.port_read(0x1234, 1, 0), None);
        p.port_write(pc::DEBUG_EXIT_PORT, 1, 3, 0);
        assert_eq!(p.take_request(), Some(PlatformRequest::DebugExit(3)));
        p.port_write(pc::PORT_A, 1, 1, 0);
        assert_eq!(p.take_request(), Some(PlatformRequest::Reset));
        assert_eq!(p.take_request(), None);
        p.port_write(pc::PORT_A, 1, 2, 0);
        assert!(p.a20());
        // A 16-bit read of the byte-wide CMOS ports reads 0x70 (write-only: 0xFF) and
        // 0x71 (the register 0x70 selects).
        p.port_write(pc::CMOS_PORT, 1, 0x0A, 0);
        let reg_a = p.port_read(pc::CMOS_PORT + 1, 1, 0).unwrap();
        assert_eq!(p.port_read(pc::CMOS_PORT, 2, 0), Some(0xFF | (reg_a << 8)));
    }
}
