//! The NS16550A UART (COM1 at 0x3F8 IRQ 4, COM2 at 0x2F8 IRQ 3).
//!
//! Follows the National Semiconductor PC16550D datasheet: RBR/THR, IER, IIR with its
//! priorities (receiver line status > received data available or character timeout >
//! THR empty > modem status) and FIFO bits 7:6, FCR (16-byte FIFOs, reset bits, receive
//! trigger levels 1/4/8/14), LCR with the divisor latch access bit, MCR with loopback,
//! LSR, MSR with delta bits, SCR.
//!
//! Character timing is instantaneous: a byte written to THR is transmitted at once (THR and
//! the transmitter are empty again before the next access), and the character timeout
//! (which on hardware follows four character times without FIFO activity) is reported as
//! soon as the receive FIFO holds data below its trigger level. The divisor and line
//! format are kept for the guest to read back but do not slow anything down.
//!
//! Transmitted bytes collect in a buffer the machine drains ([`Uart16550::take_output`]);
//! received bytes arrive through [`Uart16550::receive`], which the machine calls at
//! deterministic points. The interrupt line ([`Uart16550::irq_level`]) is gated by MCR.OUT2,
//! as on a PC.

use crate::bus::PortDevice;
use std::any::Any;
use std::collections::VecDeque;

/// Register offsets from the base port.
mod reg {
    /// Receiver buffer (read) / transmitter holding (write); divisor LSB with DLAB.
    pub const DATA: u16 = 0;
    /// Interrupt enable; divisor MSB with DLAB.
    pub const IER: u16 = 1;
    /// Interrupt identification (read) / FIFO control (write).
    pub const IIR_FCR: u16 = 2;
    /// Line control.
    pub const LCR: u16 = 3;
    /// Modem control.
    pub const MCR: u16 = 4;
    /// Line status.
    pub const LSR: u16 = 5;
    /// Modem status.
    pub const MSR: u16 = 6;
    /// Scratch.
    pub const SCR: u16 = 7;
}

/// IER: received data available (and character timeout).
pub const IER_RDA: u8 = 1 << 0;
/// IER: transmitter holding register empty.
pub const IER_THRE: u8 = 1 << 1;
/// IER: receiver line status.
pub const IER_RLS: u8 = 1 << 2;
/// IER: modem status.
pub const IER_MS: u8 = 1 << 3;

/// IIR: no interrupt pending (bit 0 = 1).
pub const IIR_NONE: u8 = 0x01;
/// IIR: receiver line status (highest priority).
pub const IIR_RLS: u8 = 0x06;
/// IIR: received data available.
pub const IIR_RDA: u8 = 0x04;
/// IIR: character timeout (FIFO mode).
pub const IIR_TIMEOUT: u8 = 0x0C;
/// IIR: THR empty.
pub const IIR_THRE: u8 = 0x02;
/// IIR: modem status (lowest priority).
pub const IIR_MS: u8 = 0x00;
/// IIR bits 7:6: FIFOs enabled.
pub const IIR_FIFO: u8 = 0xC0;

/// FCR: enable the FIFOs.
pub const FCR_ENABLE: u8 = 1 << 0;
/// FCR: clear the receive FIFO.
pub const FCR_CLEAR_RX: u8 = 1 << 1;
/// FCR: clear the transmit FIFO.
pub const FCR_CLEAR_TX: u8 = 1 << 2;

/// LCR: divisor latch access bit.
pub const LCR_DLAB: u8 = 1 << 7;

/// MCR: data terminal ready.
pub const MCR_DTR: u8 = 1 << 0;
/// MCR: request to send.
pub const MCR_RTS: u8 = 1 << 1;
/// MCR: OUT1.
pub const MCR_OUT1: u8 = 1 << 2;
/// MCR: OUT2 (gates the interrupt line on a PC).
pub const MCR_OUT2: u8 = 1 << 3;
/// MCR: loopback.
pub const MCR_LOOP: u8 = 1 << 4;

/// LSR: data ready.
pub const LSR_DR: u8 = 1 << 0;
/// LSR: overrun error.
pub const LSR_OE: u8 = 1 << 1;
/// LSR: parity error.
pub const LSR_PE: u8 = 1 << 2;
/// LSR: framing error.
pub const LSR_FE: u8 = 1 << 3;
/// LSR: break interrupt.
pub const LSR_BI: u8 = 1 << 4;
/// LSR: transmitter holding register empty.
pub const LSR_THRE: u8 = 1 << 5;
/// LSR: transmitter empty.
pub const LSR_TEMT: u8 = 1 << 6;
/// LSR: error in the receive FIFO.
pub const LSR_FIFO_ERR: u8 = 1 << 7;
/// LSR bits that reading the LSR clears and that raise a line status interrupt.
const LSR_ERRORS: u8 = LSR_OE | LSR_PE | LSR_FE | LSR_BI;

/// MSR: delta clear to send.
pub const MSR_DCTS: u8 = 1 << 0;
/// MSR: delta data set ready.
pub const MSR_DDSR: u8 = 1 << 1;
/// MSR: trailing edge ring indicator.
pub const MSR_TERI: u8 = 1 << 2;
/// MSR: delta data carrier detect.
pub const MSR_DDCD: u8 = 1 << 3;
/// MSR: clear to send.
pub const MSR_CTS: u8 = 1 << 4;
/// MSR: data set ready.
pub const MSR_DSR: u8 = 1 << 5;
/// MSR: ring indicator.
pub const MSR_RI: u8 = 1 << 6;
/// MSR: data carrier detect.
pub const MSR_DCD: u8 = 1 << 7;
/// MSR delta bits (cleared by reading the MSR).
const MSR_DELTAS: u8 = 0x0F;

/// FIFO depth.
pub const FIFO_SIZE: usize = 16;
/// Receive trigger levels selected by FCR bits 7:6.
pub const RX_TRIGGER_LEVELS: [usize; 4] = [1, 4, 8, 14];

/// A 16550A UART.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Uart16550 {
    base: u16,
    ier: u8,
    lcr: u8,
    mcr: u8,
    /// LSR error bits (OE, PE, FE, BI) accumulated since the last LSR read.
    lsr_errors: u8,
    /// MSR inputs from the outside world (CTS, DSR, RI, DCD) when not in loopback.
    modem_inputs: u8,
    /// MSR delta bits.
    msr_deltas: u8,
    scr: u8,
    divisor: u16,
    fifo_enabled: bool,
    rx_trigger: usize,
    rx: VecDeque<u8>,
    /// The THR-empty interrupt is pending (cleared by reading IIR while it is the source
    /// or by writing THR).
    thre_pending: bool,
    output: Vec<u8>,
}

impl Uart16550 {
    /// A UART at `base` in its reset state, with the modem inputs CTS, DSR and DCD asserted
    /// (a connected terminal).
    pub fn new(base: u16) -> Self {
        Self {
            base,
            ier: 0,
            lcr: 0,
            mcr: 0,
            lsr_errors: 0,
            modem_inputs: MSR_CTS | MSR_DSR | MSR_DCD,
            msr_deltas: 0,
            scr: 0,
            divisor: 0,
            fifo_enabled: false,
            rx_trigger: 1,
            rx: VecDeque::with_capacity(FIFO_SIZE),
            thre_pending: false,
            output: Vec::new(),
        }
    }

    /// The first port.
    pub fn base(&self) -> u16 {
        self.base
    }

    /// Everything transmitted and not yet taken.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Takes the transmitted bytes.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// The divisor latch (baud rate = 115200 / divisor).
    pub fn divisor(&self) -> u16 {
        self.divisor
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled {
            FIFO_SIZE
        } else {
            1
        }
    }

    /// Whether another received byte fits without an overrun (for the machine's flow
    /// control; loopback disconnects the serial input).
    pub fn can_receive(&self) -> bool {
        self.mcr & MCR_LOOP == 0 && self.rx.len() < self.rx_capacity()
    }

    /// A byte arriving on the serial input. Ignored in loopback mode (the input is
    /// disconnected); when the receiver is full it is an overrun: the FIFO keeps its
    /// contents (in 16450 mode the holding register is overwritten) and LSR.OE is set.
    pub fn receive(&mut self, byte: u8) {
        if self.mcr & MCR_LOOP == 0 {
            self.receive_internal(byte);
        }
    }

    fn receive_internal(&mut self, byte: u8) {
        if self.rx.len() < self.rx_capacity() {
            self.rx.push_back(byte);
            return;
        }
        self.lsr_errors |= LSR_OE;
        if !self.fifo_enabled {
            self.rx.clear();
            self.rx.push_back(byte);
        }
    }

    /// Sets the modem status inputs (MSR bits 7:4: DCD, RI, DSR, CTS), recording deltas.
    pub fn set_modem_inputs(&mut self, msr_high_bits: u8) {
        let old = self.msr_inputs();
        self.modem_inputs = msr_high_bits & 0xF0;
        self.note_msr_change(old);
    }

    /// MSR bits 7:4 as the UART sees them: in loopback, DTR -> DSR, RTS -> CTS,
    /// OUT1 -> RI, OUT2 -> DCD (datasheet "Loopback").
    fn msr_inputs(&self) -> u8 {
        if self.mcr & MCR_LOOP == 0 {
            return self.modem_inputs;
        }
        let mut m = 0;
        for (out, inp) in
            [(MCR_DTR, MSR_DSR), (MCR_RTS, MSR_CTS), (MCR_OUT1, MSR_RI), (MCR_OUT2, MSR_DCD)]
        {
            if self.mcr & out != 0 {
                m |= inp;
            }
        }
        m
    }

    fn note_msr_change(&mut self, old: u8) {
        let new = self.msr_inputs();
        let changed = old ^ new;
        if changed & MSR_CTS != 0 {
            self.msr_deltas |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            self.msr_deltas |= MSR_DDSR;
        }
        if old & MSR_RI != 0 && new & MSR_RI == 0 {
            self.msr_deltas |= MSR_TERI;
        }
        if changed & MSR_DCD != 0 {
            self.msr_deltas |= MSR_DDCD;
        }
    }

    fn line_status(&self) -> u8 {
        let mut lsr = self.lsr_errors | LSR_THRE | LSR_TEMT;
        if !self.rx.is_empty() {
            lsr |= LSR_DR;
        }
        if self.fifo_enabled && self.lsr_errors & (LSR_PE | LSR_FE | LSR_BI) != 0 {
            lsr |= LSR_FIFO_ERR;
        }
        lsr
    }

    /// The highest-priority pending interrupt (IIR bits 3:0), if any.
    fn pending(&self) -> Option<u8> {
        if self.ier & IER_RLS != 0 && self.lsr_errors & LSR_ERRORS != 0 {
            return Some(IIR_RLS);
        }
        if self.ier & IER_RDA != 0 && !self.rx.is_empty() {
            if !self.fifo_enabled || self.rx.len() >= self.rx_trigger {
                return Some(IIR_RDA);
            }
            return Some(IIR_TIMEOUT);
        }
        if self.ier & IER_THRE != 0 && self.thre_pending {
            return Some(IIR_THRE);
        }
        if self.ier & IER_MS != 0 && self.msr_deltas != 0 {
            return Some(IIR_MS);
        }
        None
    }

    /// The interrupt request as the PC sees it: the UART's INTR gated by the OUT2 output
    /// (which loopback forces inactive).
    pub fn irq_level(&self) -> bool {
        self.mcr & (MCR_OUT2 | MCR_LOOP) == MCR_OUT2 && self.pending().is_some()
    }

    fn transmit(&mut self, byte: u8) {
        if self.mcr & MCR_LOOP != 0 {
            self.receive_internal(byte);
        } else {
            self.output.push(byte);
        }
        // Transmission is instantaneous: THR is empty again.
        self.thre_pending = true;
    }

    fn write_fcr(&mut self, value: u8) {
        let enable = value & FCR_ENABLE != 0;
        if enable != self.fifo_enabled {
            // Changing FCR.0 resets both FIFOs.
            self.rx.clear();
        }
        self.fifo_enabled = enable;
        if !enable {
            return; // the other bits are written only with FCR.0 set
        }
        if value & FCR_CLEAR_RX != 0 {
            self.rx.clear();
        }
        // FCR_CLEAR_TX: the transmit FIFO is always empty (instantaneous transmission).
        self.rx_trigger = RX_TRIGGER_LEVELS[usize::from(value >> 6)];
    }
}

impl PortDevice for Uart16550 {
    fn read(&mut self, port: u16, _size: u8) -> u32 {
        let dlab = self.lcr & LCR_DLAB != 0;
        u32::from(match port.wrapping_sub(self.base) & 7 {
            reg::DATA if dlab => self.divisor.to_le_bytes()[0],
            reg::DATA => self.rx.pop_front().unwrap_or(0),
            reg::IER if dlab => self.divisor.to_le_bytes()[1],
            reg::IER => self.ier,
            reg::IIR_FCR => {
                let id = self.pending();
                if id == Some(IIR_THRE) {
                    self.thre_pending = false; // reading IIR clears a THRE interrupt
                }
                let fifo = if self.fifo_enabled { IIR_FIFO } else { 0 };
                fifo | id.unwrap_or(IIR_NONE)
            }
            reg::LCR => self.lcr,
            reg::MCR => self.mcr,
            reg::LSR => {
                let lsr = self.line_status();
                self.lsr_errors &= !LSR_ERRORS;
                lsr
            }
            reg::MSR => {
                let msr = self.msr_inputs() | self.msr_deltas & MSR_DELTAS;
                self.msr_deltas = 0;
                msr
            }
            off => {
                debug_assert_eq!(off, reg::SCR);
                self.scr
            }
        })
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        let dlab = self.lcr & LCR_DLAB != 0;
        let b = value as u8;
        match port.wrapping_sub(self.base) & 7 {
            reg::DATA if dlab => self.divisor = (self.divisor & 0xFF00) | u16::from(b),
            reg::DATA => {
                self.thre_pending = false;
                self.transmit(b);
            }
            reg::IER if dlab => self.divisor = (self.divisor & 0x00FF) | u16::from(b) << 8,
            reg::IER => {
                let newly = b & !self.ier;
                self.ier = b & 0x0F;
                if newly & IER_THRE != 0 {
                    // Enabling ETBEI with THR empty raises the interrupt.
                    self.thre_pending = true;
                }
            }
            reg::IIR_FCR => self.write_fcr(b),
            reg::LCR => self.lcr = b,
            reg::MCR => {
                let old = self.msr_inputs();
                self.mcr = b & 0x1F;
                self.note_msr_change(old);
            }
            reg::LSR | reg::MSR => {} // read-only (factory test on some parts)
            off => {
                debug_assert_eq!(off, reg::SCR);
                self.scr = b
            }
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
    use crate::pc::COM1_PORT;

    const B: u16 = COM1_PORT;

    fn iir(u: &mut Uart16550) -> u8 {
        u.read(B + reg::IIR_FCR, 1) as u8
    }

    #[test]
    fn divisor_latch_and_scratch() {
        let mut u = Uart16550::new(B);
        u.write(B + reg::LCR, 1, u32::from(LCR_DLAB | 0x03));
        u.write(B, 1, 0x0C);
        u.write(B + reg::IER, 1, 0x00);
        assert_eq!(u.divisor(), 12, "9600 baud");
        assert_eq!(u.read(B, 1), 0x0C);
        u.write(B + reg::LCR, 1, 0x03);
        u.write(B, 1, u32::from(b'A'));
        u.write(B + reg::SCR, 1, 0x5A);
        assert_eq!(u.read(B + reg::SCR, 1), 0x5A);
        assert_eq!(u.take_output(), b"A");
        assert_eq!(u.read(B + reg::LCR, 1), 0x03);
    }

    // PC16550D "Interrupt Identification Register": line status > received data >
    // THR empty > modem status; reading IIR clears a THRE interrupt.
    #[test]
    fn iir_priorities() {
        let mut u = Uart16550::new(B);
        assert_eq!(iir(&mut u), IIR_NONE);
        u.write(B + reg::IER, 1, 0x0F);
        assert_eq!(iir(&mut u), IIR_THRE, "enabling ETBEI with THR empty");
        assert_eq!(iir(&mut u), IIR_NONE, "the IIR read cleared it");
        u.set_modem_inputs(MSR_DSR | MSR_DCD); // CTS dropped
        assert_eq!(iir(&mut u), IIR_MS);
        u.write(B, 1, u32::from(b'x'));
        assert_eq!(iir(&mut u), IIR_THRE, "THRE outranks modem status");
        u.receive(1);
        assert_eq!(iir(&mut u), IIR_RDA);
        u.receive(2); // overrun in 16450 mode
        assert_eq!(iir(&mut u), IIR_RLS);
        assert_eq!(u.read(B + reg::LSR, 1) as u8 & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
        assert_eq!(iir(&mut u), IIR_RDA, "reading LSR cleared OE");
        assert_eq!(u.read(B, 1), 2, "16450 mode: the holding register was overwritten");
        assert_eq!(iir(&mut u), IIR_MS);
        assert_eq!(u.read(B + reg::MSR, 1) as u8, MSR_DSR | MSR_DCD | MSR_DCTS);
        assert_eq!(iir(&mut u), IIR_NONE);
    }

    // FIFO mode: IIR bits 7:6, trigger level, character timeout, reset bits, overrun.
    #[test]
    fn fifo_trigger_timeout_and_reset() {
        let mut u = Uart16550::new(B);
        u.write(B + reg::IER, 1, u32::from(IER_RDA));
        u.write(B + reg::IIR_FCR, 1, 0x47); // enable, clear both, trigger 4
        assert_eq!(iir(&mut u), IIR_FIFO | IIR_NONE);
        for b in 0..3 {
            u.receive(b);
        }
        assert_eq!(iir(&mut u), IIR_FIFO | IIR_TIMEOUT, "below the trigger level");
        u.receive(3);
        assert_eq!(iir(&mut u), IIR_FIFO | IIR_RDA);
        for b in 4..20 {
            u.receive(b);
        }
        assert!(!u.can_receive());
        let lsr = u.read(B + reg::LSR, 1) as u8;
        assert_eq!(lsr & LSR_OE, LSR_OE);
        let got: Vec<u8> = (0..16).map(|_| u.read(B, 1) as u8).collect();
        assert_eq!(got, (0..16).collect::<Vec<u8>>(), "the FIFO kept its contents");
        assert_eq!(u.read(B + reg::LSR, 1) as u8 & LSR_DR, 0);
        u.receive(9);
        u.write(B + reg::IIR_FCR, 1, 0x03); // clear RX, trigger 1
        assert_eq!(u.read(B + reg::LSR, 1) as u8 & LSR_DR, 0);
        u.receive(9);
        assert_eq!(iir(&mut u), IIR_FIFO | IIR_RDA);
        u.write(B + reg::IIR_FCR, 1, 0x00); // disabling the FIFOs resets them
        assert_eq!(iir(&mut u), IIR_NONE);
    }

    // Loopback: TX loops to RX and nothing leaves; MCR outputs drive the MSR inputs;
    // the serial input is disconnected; OUT2 does not reach the IRQ line.
    #[test]
    fn loopback() {
        let mut u = Uart16550::new(B);
        u.write(B + reg::IER, 1, u32::from(IER_RDA | IER_MS));
        u.write(B + reg::MCR, 1, u32::from(MCR_LOOP | MCR_OUT2));
        let msr = u.read(B + reg::MSR, 1) as u8;
        assert_eq!(msr & 0xF0, MSR_DCD);
        assert_eq!(msr & MSR_DELTAS, MSR_DCTS | MSR_DDSR, "DCD stayed asserted");
        u.write(B + reg::MCR, 1, u32::from(MCR_LOOP | MCR_OUT1 | MCR_DTR | MCR_RTS));
        assert_eq!(u.read(B + reg::MSR, 1) as u8 & 0xF0, MSR_RI | MSR_DSR | MSR_CTS);
        u.write(B + reg::MCR, 1, u32::from(MCR_LOOP));
        assert_eq!(u.read(B + reg::MSR, 1) as u8 & MSR_TERI, MSR_TERI);
        u.write(B, 1, 0xA5);
        u.receive(0x11);
        assert_eq!(u.read(B + reg::LSR, 1) as u8 & LSR_DR, LSR_DR);
        assert_eq!(u.read(B, 1), 0xA5);
        assert_eq!(u.read(B + reg::LSR, 1) as u8 & LSR_DR, 0, "external byte ignored");
        assert!(u.output().is_empty());
        u.receive(0x22);
        u.write(B, 1, 0x5A);
        assert!(!u.irq_level(), "loopback keeps OUT2 off the line");
        u.write(B + reg::MCR, 1, u32::from(MCR_OUT2));
        assert!(u.irq_level());
    }

    // OUT2 gates the interrupt line on a PC.
    #[test]
    fn out2_gates_irq() {
        let mut u = Uart16550::new(B);
        u.write(B + reg::IER, 1, u32::from(IER_RDA));
        u.receive(b'k');
        assert!(!u.irq_level());
        u.write(B + reg::MCR, 1, u32::from(MCR_OUT2 | MCR_DTR | MCR_RTS));
        assert!(u.irq_level());
        assert_eq!(u.read(B, 1), u32::from(b'k'));
        assert!(!u.irq_level());
        assert_eq!(u.read(B, 1), 0, "empty RBR reads 0");
    }

    proptest::proptest! {
        // Any interleaving of received bytes and RBR reads, in FIFO or 16450 mode, against
        // a queue model: bytes come out in order, a full receiver drops (FIFO) or overwrites
        // (16450) and sets OE, and LSR.DR says whether data is waiting.
        #[test]
        fn receive_path_matches_a_queue(
            fifo: bool,
            ops in proptest::collection::vec(proptest::option::of(proptest::num::u8::ANY), 0..80),
        ) {
            let mut u = Uart16550::new(B);
            if fifo {
                u.write(B + reg::IIR_FCR, 1, u32::from(FCR_ENABLE));
            }
            let capacity = if fifo { FIFO_SIZE } else { 1 };
            let mut model = std::collections::VecDeque::new();
            let mut overrun = false;
            for op in ops {
                match op {
                    Some(byte) => {
                        proptest::prop_assert_eq!(u.can_receive(), model.len() < capacity);
                        u.receive(byte);
                        if model.len() < capacity {
                            model.push_back(byte);
                        } else {
                            overrun = true;
                            if !fifo {
                                model.clear();
                                model.push_back(byte);
                            }
                        }
                    }
                    None => {
                        let lsr = u.read(B + reg::LSR, 1) as u8;
                        proptest::prop_assert_eq!(lsr & LSR_DR != 0, !model.is_empty());
                        proptest::prop_assert_eq!(lsr & LSR_OE != 0, std::mem::take(&mut overrun));
                        let byte = u.read(B, 1) as u8;
                        proptest::prop_assert_eq!(byte, model.pop_front().unwrap_or(0));
                    }
                }
            }
        }
    }

    #[test]
    fn lsr_idle_state() {
        let mut u = Uart16550::new(B);
        assert_eq!(u.read(B + reg::LSR, 1) as u8, LSR_THRE | LSR_TEMT);
    }
}
