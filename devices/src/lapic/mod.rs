//! The local APIC (SDM Vol. 3A chapter 11 "Advanced Programmable Interrupt Controller
//! (APIC)"), one per vCPU, with both interfaces: the xAPIC MMIO page ([`xapic`]) and the
//! x2APIC MSRs ([`x2apic`]); IA32_APIC_BASE is in [`apic_base`], the timer's arithmetic in
//! [`timer`].
//!
//! A pure state machine: it is told the virtual time ([`LocalApic::advance`]), receives
//! messages ([`LocalApic::accept`]) and input-pin levels ([`LocalApic::set_lint`]), and
//! queues what it sends (IPIs, EOI broadcasts) for the machine to take. What it asks of
//! its processor (an interrupt vector, NMI, SMI, INIT, SIPI, ExtINT) the machine polls
//! and takes.

pub mod apic_base;
pub mod regs;
pub mod timer;
pub mod x2apic;
pub mod xapic;

#[cfg(test)]
mod tests;

use crate::interrupt::{DeliveryMode, InterruptMessage, Shorthand, TriggerMode, BROADCAST};
pub use apic_base::ApicMode;
use timer::CountDown;
pub use timer::TscClock;

/// An x2APIC MSR access or IA32_APIC_BASE write that raises #GP(0) in the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApicFault {
    /// The MSR is not an x2APIC register (reserved, or xAPIC-only like DFR, APR, ICR high).
    #[error("MSR {0:#x} is not an x2APIC register")]
    Reserved(u32),
    /// An x2APIC MSR was accessed while the APIC is not in x2APIC mode.
    #[error("MSR {0:#x} accessed while the APIC is not in x2APIC mode")]
    NotX2Apic(u32),
    /// WRMSR to a read-only register.
    #[error("WRMSR to read-only APIC register MSR {0:#x}")]
    ReadOnly(u32),
    /// RDMSR of a write-only register (EOI, SELF IPI).
    #[error("RDMSR of write-only APIC register MSR {0:#x}")]
    WriteOnly(u32),
    /// WRMSR setting reserved bits (SDM Vol. 3A 11.12.1.3 "Reserved Bit Checking").
    #[error("WRMSR of {value:#x} sets reserved bits of MSR {msr:#x}")]
    ReservedBits {
        /// The MSR.
        msr: u32,
        /// The value written.
        value: u64,
    },
    /// An IA32_APIC_BASE write that is not one of the transitions of SDM Vol. 3A
    /// 11.12.5 "x2APIC State Transitions".
    #[error("illegal IA32_APIC_BASE transition from {from:?} to value {value:#x}")]
    IllegalTransition {
        /// The mode before the write.
        from: ApicMode,
        /// The value written.
        value: u64,
    },
}

/// How a local APIC is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LapicConfig {
    /// The initial APIC ID (`CPUID.1:EBX[31:24]` / CPUID.0BH:EDX); the x2APIC ID.
    pub apic_id: u32,
    /// Whether this is the bootstrap processor (IA32_APIC_BASE bit 8).
    pub bsp: bool,
    /// The timer's input clock before the divider, in Hz.
    pub timer_hz: u64,
    /// How the TSC relates to virtual time, for TSC-deadline mode.
    pub tsc: TscClock,
    /// MAXPHYADDR: IA32_APIC_BASE bits at and above it are reserved.
    pub max_phys_addr_bits: u8,
}

impl Default for LapicConfig {
    /// The BSP, APIC ID 0, a 1 GHz timer clock (as QEMU's and KVM's APIC bus), a 1 GHz
    /// TSC and a 40-bit physical address width.
    fn default() -> Self {
        Self {
            apic_id: 0,
            bsp: true,
            timer_hz: 1_000_000_000,
            tsc: TscClock { hz: 1_000_000_000, offset: 0 },
            max_phys_addr_bits: 40,
        }
    }
}

/// A local vector table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Lvt {
    /// The APIC timer.
    Timer,
    /// The thermal sensor.
    Thermal,
    /// Performance-counter overflow.
    Pmc,
    /// The LINT0 pin (the 8259A's INTR in virtual-wire mode).
    Lint0,
    /// The LINT1 pin (NMI).
    Lint1,
    /// APIC errors (ESR).
    Error,
    /// Corrected machine-check error interrupt.
    Cmci,
}

impl Lvt {
    /// Every entry, in storage order.
    pub const ALL: [Lvt; 7] =
        [Lvt::Timer, Lvt::Thermal, Lvt::Pmc, Lvt::Lint0, Lvt::Lint1, Lvt::Error, Lvt::Cmci];

    /// The entry's register offset.
    pub const fn offset(self) -> u32 {
        match self {
            Lvt::Timer => regs::LVT_TIMER,
            Lvt::Thermal => regs::LVT_THERMAL,
            Lvt::Pmc => regs::LVT_PMC,
            Lvt::Lint0 => regs::LVT_LINT0,
            Lvt::Lint1 => regs::LVT_LINT1,
            Lvt::Error => regs::LVT_ERROR,
            Lvt::Cmci => regs::LVT_CMCI,
        }
    }

    /// The entry at register `offset`.
    pub fn from_offset(offset: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.offset() == offset)
    }

    /// Bits software may write (SDM Vol. 3A Figure 11-8 "Local Vector Table (LVT)").
    pub const fn writable(self) -> u32 {
        match self {
            Lvt::Timer => regs::LVT_TIMER_WRITABLE,
            Lvt::Thermal | Lvt::Pmc | Lvt::Cmci => regs::LVT_DM_WRITABLE,
            Lvt::Lint0 | Lvt::Lint1 => regs::LVT_LINT_WRITABLE,
            Lvt::Error => regs::LVT_ERROR_WRITABLE,
        }
    }

    /// Bits that read back but software cannot change.
    pub const fn read_only(self) -> u32 {
        match self {
            Lvt::Lint0 | Lvt::Lint1 => regs::DELIVERY_STATUS | regs::LVT_REMOTE_IRR,
            _ => regs::DELIVERY_STATUS,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A 256-bit vector register (ISR, TMR, IRR) as eight 32-bit registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VectorBits(pub [u32; 8]);

impl VectorBits {
    /// Whether `vector`'s bit is set.
    pub fn get(&self, vector: u8) -> bool {
        self.0[usize::from(vector >> 5)] & (1 << (vector & 31)) != 0
    }

    /// Sets or clears `vector`'s bit.
    pub fn set(&mut self, vector: u8, on: bool) {
        let w = &mut self.0[usize::from(vector >> 5)];
        if on {
            *w |= 1 << (vector & 31);
        } else {
            *w &= !(1 << (vector & 31));
        }
    }

    /// The highest vector whose bit is set.
    pub fn highest(&self) -> Option<u8> {
        (0..8)
            .rev()
            .find(|&i| self.0[i] != 0)
            .map(|i| (i as u8) * 32 + (31 - self.0[i].leading_zeros()) as u8)
    }
}

/// One local APIC.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LocalApic {
    config: LapicConfig,
    /// IA32_APIC_BASE (bit 8 reflects `config.bsp`).
    apic_base: u64,
    /// The xAPIC ID register's bits 31:24 (writable in xAPIC mode).
    xapic_id: u8,
    tpr: u8,
    /// The xAPIC LDR (bits 31:24 significant).
    ldr: u32,
    dfr: u32,
    svr: u32,
    isr: VectorBits,
    tmr: VectorBits,
    irr: VectorBits,
    /// The ESR as software reads it (latched by the last ESR write).
    esr: u32,
    /// Errors detected since the last ESR write.
    esr_pending: u32,
    /// ICR bits 63:0 (xAPIC: destination in 63:56; x2APIC: 63:32).
    icr: u64,
    lvt: [u32; 7],
    timer: CountDown,
    /// The next expiry of the one-shot/periodic timer.
    timer_next_ns: Option<u64>,
    /// IA32_TSC_DEADLINE (0 = disarmed).
    tsc_deadline: u64,
    /// The latest virtual time the machine reported.
    now_ns: u64,
    /// The LINT0 and LINT1 input levels (asserted = true, after polarity).
    lint_level: [bool; 2],
    outgoing: Vec<InterruptMessage>,
    eoi_broadcasts: Vec<u8>,
    init: bool,
    sipi: Option<u8>,
    nmi: bool,
    smi: bool,
    extint: bool,
}

/// The message destination an ICR value names in the current mode.
fn icr_destination(icr: u64, x2apic: bool) -> u32 {
    if x2apic {
        (icr >> 32) as u32
    } else {
        match (icr >> 56) as u8 {
            0xFF => BROADCAST,
            d => u32::from(d),
        }
    }
}

impl LocalApic {
    /// A local APIC in its power-up state (SDM Vol. 3A 11.4.7.1 "Local APIC State After
    /// Power-Up or Reset"): xAPIC mode, enabled, software-disabled, every LVT masked.
    ///
    /// Like QEMU and KVM, the BSP's LINT0 starts in ExtINT mode and unmasked (the state a
    /// PC BIOS leaves for virtual-wire mode), so that 8259A interrupts reach a BSP whose
    /// firmware never programs the APIC.
    pub fn new(config: LapicConfig) -> Self {
        let mut apic = Self {
            config,
            apic_base: 0,
            xapic_id: 0,
            tpr: 0,
            ldr: 0,
            dfr: 0,
            svr: 0,
            isr: VectorBits::default(),
            tmr: VectorBits::default(),
            irr: VectorBits::default(),
            esr: 0,
            esr_pending: 0,
            icr: 0,
            lvt: [0; 7],
            timer: CountDown::new(config.timer_hz),
            timer_next_ns: None,
            tsc_deadline: 0,
            now_ns: 0,
            lint_level: [false; 2],
            outgoing: Vec::new(),
            eoi_broadcasts: Vec::new(),
            init: false,
            sipi: None,
            nmi: false,
            smi: false,
            extint: false,
        };
        apic.apic_base = crate::pc::LAPIC_BASE
            | regs::APIC_BASE_ENABLE
            | if config.bsp { regs::APIC_BASE_BSP } else { 0 };
        apic.reset_registers();
        apic.xapic_id = config.apic_id as u8;
        if config.bsp {
            apic.lvt[Lvt::Lint0.index()] = DeliveryMode::ExtInt.bits() << regs::DELIVERY_MODE_SHIFT;
        }
        apic
    }

    /// The register state of 11.4.7.1 (power-up) and 11.4.7.3 (after INIT): everything
    /// cleared, DFR all ones, SVR 0xFF, every LVT masked. The ID and IA32_APIC_BASE are
    /// not touched.
    fn reset_registers(&mut self) {
        self.tpr = 0;
        self.ldr = 0;
        self.dfr = u32::MAX;
        self.svr = regs::SVR_RESET;
        self.isr = VectorBits::default();
        self.tmr = VectorBits::default();
        self.irr = VectorBits::default();
        self.esr = 0;
        self.esr_pending = 0;
        self.icr = 0;
        self.lvt = [regs::LVT_MASKED; 7];
        self.timer = CountDown::new(self.config.timer_hz);
        self.timer_next_ns = None;
        self.tsc_deadline = 0;
        self.outgoing.clear();
    }

    /// The INIT reset the machine performs when its processor takes an INIT (SDM Vol. 3A
    /// 11.4.7.3 "Local APIC State After an INIT Reset ('Wait-for-SIPI' State)"): as
    /// power-up, except that the APIC ID and IA32_APIC_BASE (and so the mode) are kept.
    pub fn init_reset(&mut self) {
        self.reset_registers();
    }

    // ---- identity and mode ----

    /// The current mode (from IA32_APIC_BASE).
    pub fn mode(&self) -> ApicMode {
        ApicMode::of(self.apic_base)
    }

    /// Whether the APIC is globally enabled (IA32_APIC_BASE bit 11).
    pub fn is_hardware_enabled(&self) -> bool {
        self.mode() != ApicMode::Disabled
    }

    /// Whether the APIC is enabled and software-enabled (SVR bit 8).
    pub fn is_software_enabled(&self) -> bool {
        self.is_hardware_enabled() && self.svr & regs::SVR_APIC_ENABLED != 0
    }

    /// The APIC ID messages are matched against: the x2APIC ID in x2APIC mode, the xAPIC
    /// ID register otherwise.
    pub fn id(&self) -> u32 {
        match self.mode() {
            ApicMode::X2Apic => self.config.apic_id,
            _ => u32::from(self.xapic_id),
        }
    }

    /// The logical destination register: in x2APIC mode derived from the x2APIC ID (SDM
    /// Vol. 3A 11.12.10.2 "Deriving Logical x2APIC ID from the Local x2APIC ID": cluster
    /// ID = `ID[19:4]` in bits 31:16, bit `ID[3:0]` set in bits 15:0).
    pub fn ldr(&self) -> u32 {
        match self.mode() {
            ApicMode::X2Apic => {
                let id = self.config.apic_id;
                ((id >> 4) << 16) | (1 << (id & 0xF))
            }
            _ => self.ldr,
        }
    }

    /// Whether a message with `dest` (physical ID or logical MDA) names this APIC (SDM
    /// Vol. 3A 11.6.2.1 "Physical Destination Mode", 11.6.2.2 "Logical Destination Mode";
    /// x2APIC: 11.12.10 "x2APIC Logical Destination Mode").
    pub fn matches_destination(&self, dest: u32, logical: bool) -> bool {
        match self.mode() {
            ApicMode::Disabled => false,
            ApicMode::X2Apic => {
                if dest == BROADCAST {
                    return true;
                }
                if !logical {
                    return dest == self.config.apic_id;
                }
                let ldr = self.ldr();
                dest >> 16 == ldr >> 16 && dest & ldr & 0xFFFF != 0
            }
            ApicMode::XApic => {
                if dest == BROADCAST || dest == 0xFF {
                    return true;
                }
                if !logical {
                    return dest == u32::from(self.xapic_id);
                }
                let Ok(mda) = u8::try_from(dest) else { return false };
                let logical_id = (self.ldr >> 24) as u8;
                if self.dfr >> 28 == regs::DFR_MODEL_FLAT {
                    mda & logical_id != 0
                } else {
                    // Cluster model: MDA[7:4] is the cluster, MDA[3:0] selects APICs in it.
                    mda >> 4 == logical_id >> 4 && mda & logical_id & 0xF != 0
                }
            }
        }
    }

    // ---- priorities (SDM Vol. 3A 11.8.3 "Interrupt, Task, and Processor Priority") ----

    /// The task priority register.
    pub fn tpr(&self) -> u8 {
        self.tpr
    }

    /// Sets the TPR (MOV to CR8 writes `TPR[7:4]` through this; SDM Vol. 3A 11.8.6).
    pub fn set_tpr(&mut self, tpr: u8) {
        self.tpr = tpr;
    }

    /// The processor priority (11.8.3.1): "If `TPR[7:4]` >= `ISRV[7:4]`, `PPR[7:0]` =
    /// `TPR[7:0]`; else `PPR[7:4]` = `ISRV[7:4]` and `PPR[3:0]` = 0."
    pub fn processor_priority(&self) -> u8 {
        let isrv = self.isr.highest().unwrap_or(0);
        if self.tpr >> 4 >= isrv >> 4 {
            self.tpr
        } else {
            isrv & 0xF0
        }
    }

    /// The arbitration priority (11.6.2.4, Figure 11-15): TPR if `TPR[7:4]` >= `IRRV[7:4]`
    /// and `TPR[7:4]` > `ISRV[7:4]`; else the highest of `TPR[7:4]`, `IRRV[7:4]` and `ISRV[7:4]`
    /// in bits 7:4.
    pub fn arbitration_priority(&self) -> u8 {
        let isrv = self.isr.highest().unwrap_or(0) >> 4;
        let irrv = self.irr.highest().unwrap_or(0) >> 4;
        let tpr = self.tpr >> 4;
        if tpr >= irrv && tpr > isrv {
            self.tpr
        } else {
            tpr.max(irrv).max(isrv) << 4
        }
    }

    /// Whether this APIC is the focus processor for `vector` (11.6.2.4): focus checking
    /// enabled and the vector already in IRR or ISR.
    pub fn is_focus_for(&self, vector: u8) -> bool {
        self.is_software_enabled()
            && self.svr & regs::SVR_FOCUS_DISABLED == 0
            && (self.irr.get(vector) || self.isr.get(vector))
    }

    /// The in-service register.
    pub fn isr(&self) -> &VectorBits {
        &self.isr
    }

    /// The interrupt request register.
    pub fn irr(&self) -> &VectorBits {
        &self.irr
    }

    /// The trigger mode register.
    pub fn tmr(&self) -> &VectorBits {
        &self.tmr
    }

    // ---- the processor's side ----

    /// The vector the processor would take now: the highest IRR vector whose priority
    /// class is above `PPR[7:4]` (11.8.3, 11.8.4). Interrupts already in IRR stay
    /// deliverable while the APIC is software-disabled (11.4.7.2: "Pending interrupts in
    /// the IRR and ISR registers are held and require masking or handling by the CPU").
    pub fn pending_vector(&self) -> Option<u8> {
        if !self.is_hardware_enabled() {
            return None;
        }
        let v = self.irr.highest()?;
        (v >> 4 > self.processor_priority() >> 4).then_some(v)
    }

    /// The processor's interrupt acknowledge: the pending vector moves from IRR to ISR
    /// and is returned. With nothing pending (the interrupt was masked by a TPR raise in
    /// between) the spurious vector (`SVR[7:0]`) is returned and nothing changes (11.9
    /// "Spurious Interrupt").
    pub fn acknowledge(&mut self) -> u8 {
        match self.pending_vector() {
            Some(v) => {
                self.irr.set(v, false);
                self.isr.set(v, true);
                v
            }
            None => (self.svr & regs::SVR_VECTOR) as u8,
        }
    }

    /// An EOI (11.8.5 "Signaling Interrupt Servicing Completion"): the highest ISR bit is
    /// cleared; if its TMR bit is set, an EOI message for the vector is queued for the
    /// IOAPICs unless SVR bit 12 suppresses it, and a level-triggered LINT entry with the
    /// vector has its remote IRR cleared.
    pub fn eoi(&mut self) {
        let Some(v) = self.isr.highest() else { return };
        self.isr.set(v, false);
        if !self.tmr.get(v) {
            return;
        }
        if self.svr & regs::SVR_SUPPRESS_EOI_BROADCAST == 0 {
            self.eoi_broadcasts.push(v);
        }
        for (pin, lvt) in [(0, Lvt::Lint0), (1, Lvt::Lint1)] {
            let entry = &mut self.lvt[lvt.index()];
            if *entry & regs::LVT_REMOTE_IRR != 0 && (*entry & regs::VECTOR) as u8 == v {
                *entry &= !regs::LVT_REMOTE_IRR;
                self.evaluate_lint(pin);
            }
        }
    }

    /// EOI messages for the IOAPICs (vectors of level-triggered interrupts completed).
    pub fn take_eoi_broadcasts(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.eoi_broadcasts)
    }

    /// Whether an INIT was received; clears it. The machine then resets the processor
    /// into wait-for-SIPI (the BSP too) and calls [`LocalApic::init_reset`].
    pub fn take_init(&mut self) -> bool {
        std::mem::take(&mut self.init)
    }

    /// The vector of a received start-up IPI; clears it. The machine honours it only for
    /// a processor in the wait-for-SIPI state (SDM Vol. 3A 9.4.4 "MP Initialization
    /// Example"); otherwise it is dropped.
    pub fn take_sipi(&mut self) -> Option<u8> {
        self.sipi.take()
    }

    /// Whether an NMI was received (ICR, IOAPIC, or an LVT in NMI mode); clears it.
    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.nmi)
    }

    /// Whether an SMI was received; clears it.
    pub fn take_smi(&mut self) -> bool {
        std::mem::take(&mut self.smi)
    }

    /// Whether the processor should run an INTA cycle to the 8259A: an ExtINT message was
    /// received, or LINT0/LINT1 is asserted in ExtINT mode and unmasked (ExtINT is level
    /// sensitive, SDM Vol. 3A 11.5.1), or the APIC is globally disabled and LINT0 (then
    /// the processor's INTR pin) is asserted.
    pub fn extint_pending(&self) -> bool {
        if !self.is_hardware_enabled() {
            return self.lint_level[0];
        }
        self.extint
            || [Lvt::Lint0, Lvt::Lint1].into_iter().zip(self.lint_level).any(|(lvt, level)| {
                let e = self.lvt[lvt.index()];
                level
                    && e & regs::LVT_MASKED == 0
                    && DeliveryMode::from_bits(e >> regs::DELIVERY_MODE_SHIFT)
                        == Some(DeliveryMode::ExtInt)
            })
    }

    /// The processor ran the INTA cycle for an ExtINT: a received ExtINT message is
    /// consumed (a pin in ExtINT mode stays pending while it is asserted).
    pub fn take_extint(&mut self) -> bool {
        let pending = self.extint_pending();
        self.extint = false;
        pending
    }

    // ---- receiving ----

    /// Sets `vector` in IRR (and its TMR bit for level triggering; 11.8.4 "Interrupt
    /// Acceptance for Fixed Interrupts"). A vector below 16 is refused and logged as a
    /// receive-illegal-vector error.
    fn request(&mut self, vector: u8, trigger: TriggerMode, from_error_lvt: bool) -> bool {
        if vector < 16 {
            self.esr_pending |= regs::ESR_RECEIVE_ILLEGAL_VECTOR;
            if !from_error_lvt {
                self.deliver_lvt(Lvt::Error);
            }
            return false;
        }
        self.irr.set(vector, true);
        self.tmr.set(vector, trigger == TriggerMode::Level);
        true
    }

    /// Logs an error in the ESR and signals the error LVT (11.5.3 "Error Handling").
    fn record_error(&mut self, bits: u32) {
        self.esr_pending |= bits;
        self.deliver_lvt(Lvt::Error);
    }

    /// Accepts a message from the APIC bus (an IPI or an IOAPIC message), once the
    /// machine has chosen this APIC with [`crate::interrupt::route`].
    ///
    /// A globally disabled APIC accepts nothing. A software-disabled one still takes
    /// INIT, NMI, SMI and start-up messages (11.4.7.2) but drops fixed and
    /// lowest-priority ones.
    pub fn accept(&mut self, msg: &InterruptMessage) {
        if !self.is_hardware_enabled() {
            return;
        }
        match msg.delivery_mode {
            DeliveryMode::Fixed | DeliveryMode::LowestPriority => {
                if self.is_software_enabled() {
                    self.request(msg.vector, msg.trigger, false);
                }
            }
            DeliveryMode::Nmi => self.nmi = true,
            DeliveryMode::Smi => self.smi = true,
            DeliveryMode::Init => {
                if !msg.is_init_deassert() {
                    self.init = true;
                }
            }
            DeliveryMode::StartUp => self.sipi = Some(msg.vector),
            DeliveryMode::ExtInt => self.extint = true,
        }
    }

    /// Fires a local interrupt source through its LVT entry (11.5.1 "Local Vector
    /// Table"). Masked entries do nothing; the timer and error entries are always fixed.
    fn deliver_lvt(&mut self, lvt: Lvt) {
        let entry = self.lvt[lvt.index()];
        if entry & regs::LVT_MASKED != 0 || !self.is_hardware_enabled() {
            return;
        }
        let vector = (entry & regs::VECTOR) as u8;
        let mode = match lvt {
            Lvt::Timer | Lvt::Error => Some(DeliveryMode::Fixed),
            _ => DeliveryMode::from_bits(entry >> regs::DELIVERY_MODE_SHIFT),
        };
        let level = matches!(lvt, Lvt::Lint0 | Lvt::Lint1) && entry & regs::TRIGGER_LEVEL != 0;
        match mode {
            Some(DeliveryMode::Fixed) => {
                let trigger = if level { TriggerMode::Level } else { TriggerMode::Edge };
                if self.request(vector, trigger, lvt == Lvt::Error) && level {
                    self.lvt[lvt.index()] |= regs::LVT_REMOTE_IRR;
                }
            }
            Some(DeliveryMode::Nmi) => self.nmi = true,
            Some(DeliveryMode::Smi) => self.smi = true,
            Some(DeliveryMode::Init) => self.init = true,
            // ExtINT is level sensitive and read through `extint_pending`.
            Some(DeliveryMode::ExtInt) => {}
            // Lowest priority, start-up and 011 are reserved in LVT entries.
            Some(DeliveryMode::LowestPriority | DeliveryMode::StartUp) | None => {}
        }
    }

    /// A thermal, performance-counter or CMCI event (the machine's models of those
    /// sources call this).
    pub fn signal(&mut self, lvt: Lvt) {
        self.deliver_lvt(lvt);
    }

    /// The level of input pin LINT`pin` (0 or 1) changed; `asserted` is the logical
    /// level (the machine's wiring applies the polarity). Edge-triggered modes fire on
    /// the rising edge; a level-triggered fixed entry fires while asserted and its remote
    /// IRR is clear. With the APIC globally disabled, LINT0 is the processor's INTR and
    /// LINT1 its NMI pin (11.4.3 "Enabling or Disabling the Local APIC").
    pub fn set_lint(&mut self, pin: u8, asserted: bool) {
        let i = usize::from(pin);
        if i >= 2 {
            return;
        }
        let was = std::mem::replace(&mut self.lint_level[i], asserted);
        if !self.is_hardware_enabled() {
            if i == 1 && asserted && !was {
                self.nmi = true;
            }
            return;
        }
        let lvt = if i == 0 { Lvt::Lint0 } else { Lvt::Lint1 };
        let entry = self.lvt[lvt.index()];
        let mode = DeliveryMode::from_bits(entry >> regs::DELIVERY_MODE_SHIFT);
        let level_fixed = mode == Some(DeliveryMode::Fixed) && entry & regs::TRIGGER_LEVEL != 0;
        if level_fixed {
            self.evaluate_lint(pin);
        } else if asserted && !was {
            self.deliver_lvt(lvt);
        }
    }

    /// A level-triggered fixed LINT entry: requests its vector while the pin is asserted
    /// and remote IRR is clear.
    fn evaluate_lint(&mut self, pin: u8) {
        let lvt = if pin == 0 { Lvt::Lint0 } else { Lvt::Lint1 };
        let entry = self.lvt[lvt.index()];
        let level_fixed = DeliveryMode::from_bits(entry >> regs::DELIVERY_MODE_SHIFT)
            == Some(DeliveryMode::Fixed)
            && entry & regs::TRIGGER_LEVEL != 0;
        if level_fixed && self.lint_level[usize::from(pin)] && entry & regs::LVT_REMOTE_IRR == 0 {
            self.deliver_lvt(lvt);
        }
    }

    // ---- sending ----

    /// Sends the IPI the ICR describes (11.6.1 "Interrupt Command Register (ICR)"): it is
    /// queued with the delivery-status bit set until the machine takes it. A fixed or
    /// lowest-priority IPI with a vector below 16 is not sent and logs a
    /// send-illegal-vector error; the reserved delivery mode 011 sends nothing.
    fn send_ipi(&mut self) {
        let low = self.icr as u32;
        let vector = (low & regs::VECTOR) as u8;
        let Some(delivery_mode) = DeliveryMode::from_bits(low >> regs::DELIVERY_MODE_SHIFT) else {
            return;
        };
        if matches!(delivery_mode, DeliveryMode::Fixed | DeliveryMode::LowestPriority)
            && vector < 16
        {
            self.record_error(regs::ESR_SEND_ILLEGAL_VECTOR);
            return;
        }
        let msg = InterruptMessage {
            source: Some(self.id()),
            destination: icr_destination(self.icr, self.mode() == ApicMode::X2Apic),
            logical: low & regs::ICR_LOGICAL != 0,
            shorthand: Shorthand::from_bits(low >> regs::ICR_SHORTHAND_SHIFT),
            delivery_mode,
            vector,
            level: low & regs::ICR_LEVEL_ASSERT != 0,
            trigger: if low & regs::TRIGGER_LEVEL != 0 {
                TriggerMode::Level
            } else {
                TriggerMode::Edge
            },
        };
        self.outgoing.push(msg);
        self.icr |= u64::from(regs::DELIVERY_STATUS);
    }

    /// The IPIs sent since the last call, in order; their delivery completes (the ICR's
    /// delivery-status bit goes idle). The machine routes each with
    /// [`crate::interrupt::route`].
    pub fn take_outgoing(&mut self) -> Vec<InterruptMessage> {
        self.icr &= !u64::from(regs::DELIVERY_STATUS);
        std::mem::take(&mut self.outgoing)
    }

    /// A self IPI (x2APIC SELF IPI register, 11.12.11): a fixed, edge-triggered
    /// interrupt to this APIC.
    fn self_ipi(&mut self, vector: u8) {
        if vector < 16 {
            self.record_error(regs::ESR_SEND_ILLEGAL_VECTOR);
        } else if self.is_software_enabled() {
            self.request(vector, TriggerMode::Edge, false);
        }
    }

    // ---- time ----

    /// Whether the LVT timer selects TSC-deadline mode.
    fn tsc_deadline_mode(&self) -> bool {
        self.timer_mode() == regs::TIMER_MODE_TSC_DEADLINE
    }

    fn timer_mode(&self) -> u32 {
        (self.lvt[Lvt::Timer.index()] >> regs::LVT_TIMER_MODE_SHIFT) & 3
    }

    fn periodic(&self) -> bool {
        self.timer_mode() == regs::TIMER_MODE_PERIODIC
    }

    /// Tells the APIC the virtual time; fires the timer if it expired (once, however many
    /// periods passed: IRR holds one request per vector). Time never goes backwards.
    pub fn advance(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        let now = self.now_ns;
        if self.tsc_deadline_mode() {
            if self.tsc_deadline != 0 && self.config.tsc.tsc_at(now) >= self.tsc_deadline {
                self.tsc_deadline = 0;
                self.deliver_lvt(Lvt::Timer);
            }
        } else if self.timer_next_ns.is_some_and(|t| t <= now) {
            self.timer_next_ns = self.timer.next_expiry(now, self.periodic());
            self.deliver_lvt(Lvt::Timer);
        }
    }

    /// When the timer next fires, if it is armed.
    pub fn next_event_ns(&self) -> Option<u64> {
        if self.tsc_deadline_mode() {
            if self.tsc_deadline == 0 {
                return None;
            }
            self.config.tsc.ns_at(self.tsc_deadline)
        } else {
            self.timer_next_ns
        }
    }

    /// Re-derives the next expiry after a change to the counter or its mode.
    fn rearm_timer(&mut self) {
        self.timer_next_ns = if self.tsc_deadline_mode() {
            None
        } else {
            self.timer.next_expiry(self.now_ns, self.periodic())
        };
    }

    /// IA32_TSC_DEADLINE: 0 unless TSC-deadline mode is armed (11.5.4.1).
    pub fn tsc_deadline(&self) -> u64 {
        if self.tsc_deadline_mode() {
            self.tsc_deadline
        } else {
            0
        }
    }

    /// A write of IA32_TSC_DEADLINE: arms (non-zero) or disarms (zero) the timer in
    /// TSC-deadline mode; ignored in the other modes (11.5.4.1). A deadline already
    /// passed fires at the next [`LocalApic::advance`].
    pub fn set_tsc_deadline(&mut self, deadline: u64) {
        if self.tsc_deadline_mode() {
            self.tsc_deadline = deadline;
        }
    }

    /// The machine changed how the TSC relates to virtual time (a guest TSC write).
    pub fn set_tsc_clock(&mut self, tsc: TscClock) {
        self.config.tsc = tsc;
    }

    // ---- registers common to both interfaces ----

    /// Reads the register at `offset` (a 16-byte-aligned xAPIC offset); `None` for
    /// offsets that hold no register in the current mode.
    fn read_register(&self, offset: u32) -> Option<u32> {
        let x2 = self.mode() == ApicMode::X2Apic;
        Some(match offset {
            regs::ID => {
                if x2 {
                    self.config.apic_id
                } else {
                    u32::from(self.xapic_id) << 24
                }
            }
            regs::VERSION => regs::VERSION_VALUE,
            regs::TPR => u32::from(self.tpr),
            regs::APR if !x2 => u32::from(self.arbitration_priority()),
            regs::PPR => u32::from(self.processor_priority()),
            regs::EOI | regs::RRD if !x2 => 0,
            regs::LDR => self.ldr(),
            regs::DFR if !x2 => self.dfr,
            regs::SVR => self.svr,
            o @ regs::ISR..=0x170 if o & 0xF == 0 => self.isr.0[((o - regs::ISR) >> 4) as usize],
            o @ regs::TMR..=0x1F0 if o & 0xF == 0 => self.tmr.0[((o - regs::TMR) >> 4) as usize],
            o @ regs::IRR..=0x270 if o & 0xF == 0 => self.irr.0[((o - regs::IRR) >> 4) as usize],
            regs::ESR => self.esr,
            regs::ICR_LOW => self.icr as u32,
            regs::ICR_HIGH if !x2 => (self.icr >> 32) as u32,
            regs::TIMER_INITIAL_COUNT => self.timer.initial,
            regs::TIMER_CURRENT_COUNT => {
                if self.tsc_deadline_mode() {
                    0
                } else {
                    self.timer.current(self.now_ns, self.periodic())
                }
            }
            regs::TIMER_DIVIDE => self.timer.divide_config,
            o => self.lvt[Lvt::from_offset(o)?.index()],
        })
    }

    /// Writes the register at `offset` with xAPIC semantics (read-only registers ignore
    /// writes); returns false for offsets that hold no writable register. The x2APIC
    /// interface checks its extra rules before calling this.
    fn write_register(&mut self, offset: u32, value: u32) -> bool {
        let x2 = self.mode() == ApicMode::X2Apic;
        match offset {
            regs::ID if !x2 => self.xapic_id = (value >> 24) as u8,
            regs::TPR => self.tpr = value as u8,
            regs::EOI => self.eoi(),
            // Read-only registers ignore xAPIC writes.
            regs::VERSION | regs::PPR | regs::TIMER_CURRENT_COUNT => {}
            regs::APR | regs::RRD if !x2 => {}
            regs::ISR..=0x270 if offset & 0xF == 0 => {}
            regs::LDR if !x2 => self.ldr = value & 0xFF00_0000,
            regs::DFR if !x2 => self.dfr = value | regs::DFR_RESERVED_ONES,
            regs::SVR => {
                self.svr = value & regs::SVR_WRITABLE;
                if self.svr & regs::SVR_APIC_ENABLED == 0 {
                    // 11.4.7.2: software-disabling sets every LVT mask bit.
                    for e in &mut self.lvt {
                        *e |= regs::LVT_MASKED;
                    }
                }
            }
            regs::ESR => {
                // 11.5.3: a write latches the errors detected since the last write.
                self.esr = std::mem::take(&mut self.esr_pending);
            }
            regs::ICR_LOW => {
                let low = u64::from(value & regs::ICR_LOW_WRITABLE);
                self.icr =
                    (self.icr & !0xFFFF_FFFF) | low | (self.icr & u64::from(regs::DELIVERY_STATUS));
                self.send_ipi();
            }
            regs::ICR_HIGH if !x2 => {
                self.icr = (self.icr & 0xFFFF_FFFF) | (u64::from(value & 0xFF00_0000) << 32)
            }
            regs::TIMER_INITIAL_COUNT => {
                // Ignored in TSC-deadline mode (11.5.4.1).
                if !self.tsc_deadline_mode() {
                    self.timer.load(value, self.now_ns);
                    self.rearm_timer();
                }
            }
            regs::TIMER_DIVIDE => {
                let periodic = self.periodic();
                self.timer.set_divide(value, self.now_ns, periodic);
                self.rearm_timer();
            }
            o => match Lvt::from_offset(o) {
                Some(lvt) => self.write_lvt(lvt, value),
                None => return false,
            },
        }
        true
    }

    /// Writes an LVT entry: read-only bits are kept, and the mask stays set while the
    /// APIC is software-disabled (11.4.7.2).
    fn write_lvt(&mut self, lvt: Lvt, value: u32) {
        let old = self.lvt[lvt.index()];
        let mut new = (value & lvt.writable()) | (old & lvt.read_only());
        if !self.is_software_enabled() {
            new |= regs::LVT_MASKED;
        }
        self.lvt[lvt.index()] = new;
        match lvt {
            Lvt::Timer => {
                if (old >> regs::LVT_TIMER_MODE_SHIFT) & 3 != self.timer_mode() {
                    // 11.5.4.1: "A write to the LVT Timer Register that changes the timer
                    // mode disarms the local APIC timer."
                    self.timer.stop();
                    self.tsc_deadline = 0;
                }
                self.rearm_timer();
            }
            Lvt::Lint0 => self.evaluate_lint(0),
            Lvt::Lint1 => self.evaluate_lint(1),
            _ => {}
        }
    }

    /// The register state, for debugging and snapshots.
    pub fn lvt(&self, lvt: Lvt) -> u32 {
        self.lvt[lvt.index()]
    }

    /// The spurious-interrupt vector register.
    pub fn svr(&self) -> u32 {
        self.svr
    }
}
