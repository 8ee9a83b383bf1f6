//! The PC's pair of i8259A programmable interrupt controllers (master at 0x20, slave at
//! 0xA0 cascaded into the master's IR2) and PIIX's edge/level control registers (ELCR,
//! 0x4D0/0x4D1).
//!
//! Follows the Intel 8259A datasheet (order 231468): initialization command words ICW1-ICW4,
//! operation command words OCW1 (mask), OCW2 (EOI and rotation) and OCW3 (register read,
//! poll, special mask mode); auto-EOI; fully nested and special fully nested modes.
//!
//! Trigger mode comes from the ELCR as on PIIX (ICW1's LTIM bit is ignored there). An
//! edge-triggered request is latched in IRR on the rising edge, so a pulse shorter than the
//! CPU's response still counts (as QEMU and crosvm model it); a level-triggered request
//! follows its line. When the request that raised INTR is gone by the INTA cycle (its line
//! dropped, or it was masked), the 8259A answers with IR7 of that chip without setting
//! ISR: the spurious IRQ 7 (master) or 15 (slave).
//!
//! The machine drives inputs with [`Pic::set_irq`], samples [`Pic::intr`] and runs the INTA
//! cycle with [`Pic::acknowledge`].

use crate::bus::PortDevice;
use crate::pc::{ELCR_PORT, PIC_CASCADE_IRQ, PIC_MASTER_PORT, PIC_SLAVE_PORT};
use std::any::Any;

/// ICW1 is recognised by bit 4 on the command port.
const ICW1_INIT: u8 = 1 << 4;
/// ICW1: ICW4 will follow.
const ICW1_IC4: u8 = 1 << 0;
/// ICW1: single mode (no ICW3).
const ICW1_SNGL: u8 = 1 << 1;
/// OCW3 is recognised by bits 4:3 = 01 on the command port.
const OCW3_SELECT: u8 = 1 << 3;
/// OCW3: poll command.
const OCW3_POLL: u8 = 1 << 2;
/// OCW3: read register command (RR); RIS selects ISR (1) or IRR (0).
const OCW3_RR: u8 = 1 << 1;
/// OCW3: read ISR rather than IRR.
const OCW3_RIS: u8 = 1 << 0;
/// OCW3: special mask mode command (ESMM); SMM sets (1) or resets (0) it.
const OCW3_ESMM: u8 = 1 << 6;
/// OCW3: special mask mode value.
const OCW3_SMM: u8 = 1 << 5;
/// ICW4: automatic end of interrupt.
const ICW4_AEOI: u8 = 1 << 1;
/// ICW4: special fully nested mode.
const ICW4_SFNM: u8 = 1 << 4;
/// The poll word's "interrupt present" bit.
const POLL_INT: u8 = 1 << 7;
/// The IR that answers a request that went away before INTA.
const SPURIOUS_IR: u8 = 7;
/// ELCR bits PIIX hard-wires to 0 (edge): IRQ 0, 1, 2 on the master, 8 and 13 on the
/// slave (PIIX4 datasheet, ELCR1/ELCR2).
const ELCR_MASK: [u8; 2] = [!0b0000_0111, !0b0010_0001];

/// OCW2 commands (bits 7:5, R SL EOI).
mod ocw2 {
    /// Rotate in automatic EOI mode: clear.
    pub const ROTATE_AEOI_CLEAR: u8 = 0;
    /// Non-specific EOI.
    pub const EOI: u8 = 1;
    /// No operation.
    pub const NOP: u8 = 2;
    /// Specific EOI of the level in bits 2:0.
    pub const SPECIFIC_EOI: u8 = 3;
    /// Rotate in automatic EOI mode: set.
    pub const ROTATE_AEOI_SET: u8 = 4;
    /// Rotate on non-specific EOI.
    pub const ROTATE_EOI: u8 = 5;
    /// Set priority: the level in bits 2:0 becomes the lowest.
    pub const SET_PRIORITY: u8 = 6;
    /// Rotate on specific EOI.
    pub const ROTATE_SPECIFIC_EOI: u8 = 7;
}

/// Where the next write to the data port goes during initialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
enum Init {
    /// Initialized: data-port writes are OCW1.
    #[default]
    Ready,
    /// Expecting ICW2 (vector base).
    Icw2,
    /// Expecting ICW3 (cascade wiring).
    Icw3,
    /// Expecting ICW4 (mode).
    Icw4,
}

/// One 8259A.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Chip {
    /// Interrupt request register.
    pub irr: u8,
    /// In-service register.
    pub isr: u8,
    /// Interrupt mask register (OCW1).
    pub imr: u8,
    /// Input line levels (for edge detection and level-triggered requests).
    lines: u8,
    /// Edge/level control register (1 = level); written through [`Pic::set_elcr`].
    elcr: u8,
    /// Vector of IR0 (ICW2, bits 7:3).
    pub vector_base: u8,
    /// The IR with the highest priority (rotation); IR0 after initialization.
    pub highest_priority: u8,
    init: Init,
    single: bool,
    icw4_expected: bool,
    auto_eoi: bool,
    rotate_on_auto_eoi: bool,
    special_fully_nested: bool,
    special_mask: bool,
    read_isr: bool,
    poll: bool,
}

impl Chip {
    /// The priority rank (0 = highest) of the highest-priority bit set in `bits`.
    fn highest(&self, bits: u8) -> Option<u8> {
        (0..8u8).find(|rank| bits & (1 << ((rank + self.highest_priority) & 7)) != 0)
    }

    fn ir_of(&self, rank: u8) -> u8 {
        (rank + self.highest_priority) & 7
    }

    /// The IR this chip would interrupt with now: the highest-priority unmasked request
    /// above every in-service level (fully nested mode), 8259A datasheet "Fully Nested
    /// Mode" / "Special Mask Mode" / "Special Fully Nested Mode".
    fn pending(&self, is_master: bool) -> Option<u8> {
        let request = self.highest(self.irr & !self.imr)?;
        let mut in_service = self.isr;
        if self.special_mask {
            in_service &= !self.imr;
        }
        if self.special_fully_nested && is_master {
            // A slave's further (higher) requests are recognized while it is in service.
            in_service &= !(1 << PIC_CASCADE_IRQ);
        }
        match self.highest(in_service) {
            Some(current) if current <= request => None,
            _ => Some(self.ir_of(request)),
        }
    }

    fn set_line(&mut self, ir: u8, level: bool) {
        let bit = 1 << ir;
        if self.elcr & bit != 0 {
            if level {
                self.irr |= bit;
            } else {
                self.irr &= !bit;
            }
        } else if level && self.lines & bit == 0 {
            self.irr |= bit;
        }
        if level {
            self.lines |= bit;
        } else {
            self.lines &= !bit;
        }
    }

    /// The INTA cycle for `ir`: ISR set (unless AEOI), IRR cleared for an edge request.
    fn accept(&mut self, ir: u8) {
        let bit = 1 << ir;
        if self.elcr & bit == 0 {
            self.irr &= !bit;
        }
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.highest_priority = (ir + 1) & 7;
            }
        } else {
            self.isr |= bit;
        }
    }

    /// ICW1: start of the initialization sequence (8259A datasheet "Initialization
    /// Command Words": the edge sense latch is reset, IMR cleared, IR7 lowest priority,
    /// special mask mode cleared, status read set to IRR, ICW4 functions zeroed if IC4 = 0).
    fn icw1(&mut self, value: u8) {
        self.lines = 0;
        self.irr &= self.elcr; // edge requests are forgotten with the edge sense latch
        self.isr = 0;
        self.imr = 0;
        self.highest_priority = 0;
        self.special_mask = false;
        self.read_isr = false;
        self.poll = false;
        self.auto_eoi = false;
        self.rotate_on_auto_eoi = false;
        self.special_fully_nested = false;
        self.single = value & ICW1_SNGL != 0;
        self.icw4_expected = value & ICW1_IC4 != 0;
        self.init = Init::Icw2;
    }

    fn write_command(&mut self, value: u8) {
        if value & ICW1_INIT != 0 {
            self.icw1(value);
        } else if value & OCW3_SELECT != 0 {
            self.poll = value & OCW3_POLL != 0;
            if value & OCW3_RR != 0 {
                self.read_isr = value & OCW3_RIS != 0;
            }
            if value & OCW3_ESMM != 0 {
                self.special_mask = value & OCW3_SMM != 0;
            }
        } else {
            self.ocw2(value);
        }
    }

    fn ocw2(&mut self, value: u8) {
        let level = value & 7;
        match value >> 5 {
            ocw2::ROTATE_AEOI_CLEAR => self.rotate_on_auto_eoi = false,
            ocw2::ROTATE_AEOI_SET => self.rotate_on_auto_eoi = true,
            cmd @ (ocw2::EOI | ocw2::ROTATE_EOI) => {
                if let Some(rank) = self.highest(self.isr) {
                    let ir = self.ir_of(rank);
                    self.isr &= !(1 << ir);
                    if cmd == ocw2::ROTATE_EOI {
                        self.highest_priority = (ir + 1) & 7;
                    }
                }
            }
            ocw2::SPECIFIC_EOI => self.isr &= !(1 << level),
            ocw2::ROTATE_SPECIFIC_EOI => {
                self.isr &= !(1 << level);
                self.highest_priority = (level + 1) & 7;
            }
            ocw2::SET_PRIORITY => self.highest_priority = (level + 1) & 7,
            ocw2::NOP => {}
            _ => unreachable!("OCW2 command is three bits"),
        }
    }

    fn write_data(&mut self, value: u8) {
        self.init = match self.init {
            Init::Ready => {
                self.imr = value;
                Init::Ready
            }
            Init::Icw2 => {
                self.vector_base = value & 0xF8;
                match (self.single, self.icw4_expected) {
                    (false, _) => Init::Icw3,
                    (true, true) => Init::Icw4,
                    (true, false) => Init::Ready,
                }
            }
            // The PC's cascade is wired (slave on IR2, slave ID 2): ICW3 is accepted as is.
            Init::Icw3 if self.icw4_expected => Init::Icw4,
            Init::Icw3 => Init::Ready,
            Init::Icw4 => {
                self.auto_eoi = value & ICW4_AEOI != 0;
                self.special_fully_nested = value & ICW4_SFNM != 0;
                Init::Ready
            }
        };
    }

    fn read_command(&self) -> u8 {
        if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }
}

/// The master/slave pair and its ELCR.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Pic {
    /// The master (index 0) and slave (index 1).
    pub chips: [Chip; 2],
}

const MASTER: usize = 0;
const SLAVE: usize = 1;

impl Pic {
    /// A pair in its power-on state (uninitialized: every IR unmasked, vector base 0,
    /// all inputs edge-triggered).
    pub fn new() -> Self {
        Self::default()
    }

    /// Drives ISA IRQ line `irq` (0-15). Line 2 is the cascade and cannot be driven.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        match irq {
            0..=7 if irq != PIC_CASCADE_IRQ => self.chips[MASTER].set_line(irq, level),
            8..=15 => self.chips[SLAVE].set_line(irq - 8, level),
            _ => return,
        }
        self.update_cascade();
    }

    /// Recomputes the slave's INT output into the master's IR2.
    fn update_cascade(&mut self) {
        let slave_int = self.chips[SLAVE].pending(false).is_some();
        self.chips[MASTER].set_line(PIC_CASCADE_IRQ, slave_int);
        if !slave_int {
            // On the 8259A an edge-triggered request also needs its line still high at
            // INTA (the IRR cell is the edge latch AND the input). Devices' edge pulses are
            // latched (see the module doc), but the cascade is a wire inside the pair:
            // when the slave drops INT, the master's request goes with it.
            self.chips[MASTER].irr &= !(1 << PIC_CASCADE_IRQ);
        }
    }

    /// The master's INT output (the CPU's INTR pin).
    pub fn intr(&self) -> bool {
        self.chips[MASTER].pending(true).is_some()
    }

    /// The INTA cycle: returns the vector and updates ISR/IRR. With no request left
    /// (the spurious case) the vector is that of IR7 of the chip concerned and no ISR bit
    /// is set.
    pub fn acknowledge(&mut self) -> u8 {
        let vector = match self.chips[MASTER].pending(true) {
            None => self.chips[MASTER].vector_base | SPURIOUS_IR,
            Some(ir) => {
                self.chips[MASTER].accept(ir);
                if ir == PIC_CASCADE_IRQ && !self.chips[MASTER].single {
                    match self.chips[SLAVE].pending(false) {
                        None => self.chips[SLAVE].vector_base | SPURIOUS_IR,
                        Some(sir) => {
                            self.chips[SLAVE].accept(sir);
                            self.chips[SLAVE].vector_base | sir
                        }
                    }
                } else {
                    self.chips[MASTER].vector_base | ir
                }
            }
        };
        self.update_cascade();
        vector
    }

    /// The poll command's read (8259A datasheet "The Poll Command"): acts as an INTA on
    /// this chip alone and returns `0x80 | IR`, or 0 with no request.
    fn poll_read(&mut self, chip: usize) -> u8 {
        self.chips[chip].poll = false;
        let word = match self.chips[chip].pending(chip == MASTER) {
            Some(ir) => {
                self.chips[chip].accept(ir);
                POLL_INT | ir
            }
            None => 0,
        };
        self.update_cascade();
        word
    }

    /// The ELCR of IRQs 0-7 (`index` 0) or 8-15 (`index` 1).
    pub fn elcr(&self, index: usize) -> u8 {
        self.chips[index & 1].elcr
    }

    /// Writes an ELCR; the bits PIIX hard-wires to edge stay 0.
    pub fn set_elcr(&mut self, index: usize, value: u8) {
        let chip = &mut self.chips[index & 1];
        chip.elcr = value & ELCR_MASK[index & 1];
        // A level input's request is its line; an edge input keeps what it latched.
        chip.irr = (chip.irr & !chip.elcr) | (chip.lines & chip.elcr);
        self.update_cascade();
    }
}

impl PortDevice for Pic {
    fn read(&mut self, port: u16, _size: u8) -> u32 {
        let value = match port {
            PIC_MASTER_PORT | PIC_SLAVE_PORT => {
                let chip = usize::from(port == PIC_SLAVE_PORT);
                if self.chips[chip].poll {
                    self.poll_read(chip)
                } else {
                    self.chips[chip].read_command()
                }
            }
            p if p == PIC_MASTER_PORT + 1 => self.chips[MASTER].imr,
            p if p == PIC_SLAVE_PORT + 1 => self.chips[SLAVE].imr,
            p if p == ELCR_PORT || p == ELCR_PORT + 1 => self.elcr(usize::from(p - ELCR_PORT)),
            _ => 0xFF,
        };
        u32::from(value)
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        let value = value as u8;
        match port {
            PIC_MASTER_PORT => self.chips[MASTER].write_command(value),
            PIC_SLAVE_PORT => self.chips[SLAVE].write_command(value),
            p if p == PIC_MASTER_PORT + 1 => self.chips[MASTER].write_data(value),
            p if p == PIC_SLAVE_PORT + 1 => self.chips[SLAVE].write_data(value),
            p if p == ELCR_PORT || p == ELCR_PORT + 1 => {
                self.set_elcr(usize::from(p - ELCR_PORT), value)
            }
            _ => {}
        }
        self.update_cascade();
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

    const M_CMD: u16 = PIC_MASTER_PORT;
    const M_DATA: u16 = PIC_MASTER_PORT + 1;
    const S_CMD: u16 = PIC_SLAVE_PORT;
    const S_DATA: u16 = PIC_SLAVE_PORT + 1;

    /// The BIOS/Linux initialization: ICW1 0x11, vectors 0x20/0x28, cascade on IR2,
    /// ICW4 8086 mode (plus `icw4_extra`).
    fn pic(icw4_extra: u8) -> Pic {
        let mut p = Pic::new();
        p.write(M_CMD, 1, 0x11);
        p.write(M_DATA, 1, 0x20);
        p.write(M_DATA, 1, 1 << PIC_CASCADE_IRQ);
        p.write(M_DATA, 1, 0x01 | u32::from(icw4_extra));
        p.write(S_CMD, 1, 0x11);
        p.write(S_DATA, 1, 0x28);
        p.write(S_DATA, 1, 2);
        p.write(S_DATA, 1, 0x01 | u32::from(icw4_extra));
        p
    }

    fn pulse(p: &mut Pic, irq: u8) {
        p.set_irq(irq, true);
        p.set_irq(irq, false);
    }

    // 8259A datasheet "Fully Nested Mode": IR0 highest, IR7 lowest; a request of lower
    // priority than the one in service waits for its EOI.
    #[test]
    fn priority_and_nesting() {
        let mut p = pic(0);
        pulse(&mut p, 4);
        pulse(&mut p, 1);
        assert!(p.intr());
        assert_eq!(p.acknowledge(), 0x21);
        assert_eq!(p.chips[0].isr, 0b10);
        assert!(!p.intr(), "IRQ 4 is below IRQ 1 in service");
        pulse(&mut p, 0);
        assert!(p.intr(), "IRQ 0 preempts IRQ 1");
        assert_eq!(p.acknowledge(), 0x20);
        p.write(M_CMD, 1, 0x20); // non-specific EOI ends IRQ 0
        assert_eq!(p.chips[0].isr, 0b10);
        p.write(M_CMD, 1, 0x20);
        assert_eq!(p.acknowledge(), 0x24);
    }

    // OCW2 specific EOI clears the named level only.
    #[test]
    fn specific_eoi() {
        let mut p = pic(0);
        pulse(&mut p, 5);
        assert_eq!(p.acknowledge(), 0x25);
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), 0x23);
        p.write(M_CMD, 1, 0x60 | 5);
        assert_eq!(p.chips[0].isr, 1 << 3);
        p.write(M_CMD, 1, 0x60 | 3);
        assert_eq!(p.chips[0].isr, 0);
    }

    // ICW4 AEOI: the INTA cycle does not leave the level in service.
    #[test]
    fn auto_eoi() {
        let mut p = pic(ICW4_AEOI);
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), 0x23);
        assert_eq!(p.chips[0].isr, 0);
        pulse(&mut p, 6);
        assert!(p.intr(), "no level in service blocks IRQ 6");
    }

    // Spurious IR7: the level-triggered request went away before INTA.
    #[test]
    fn spurious_irq7_and_15() {
        let mut p = pic(0);
        p.write(ELCR_PORT, 1, 1 << 5);
        p.set_irq(5, true);
        assert!(p.intr());
        p.set_irq(5, false);
        assert_eq!(p.acknowledge(), 0x27);
        assert_eq!(p.chips[0].isr, 0, "spurious IR7 sets no ISR bit");

        p.write(ELCR_PORT + 1, 1, 1 << 3); // IRQ 11 level
        p.set_irq(11, true);
        assert!(p.intr());
        // Mask it on the slave after INTR but before INTA: the master still answers IR2.
        p.chips[1].imr = 1 << 3;
        assert_eq!(p.acknowledge(), 0x2F);
        assert_eq!(p.chips[1].isr, 0);
        assert_eq!(p.chips[0].isr, 1 << 2, "the master took the cascade in service");
    }

    // Cascade: a slave request arrives through the master's IR2 with the slave's vector.
    #[test]
    fn cascade_and_eoi_to_both() {
        let mut p = pic(0);
        pulse(&mut p, 12);
        assert!(p.intr());
        assert_eq!(p.acknowledge(), 0x2C);
        assert_eq!(p.chips[1].isr, 1 << 4);
        assert_eq!(p.chips[0].isr, 1 << 2);
        pulse(&mut p, 9);
        assert!(!p.intr(), "IR2 is in service on the master (no SFNM)");
        p.write(S_CMD, 1, 0x20);
        p.write(M_CMD, 1, 0x20);
        assert!(p.intr());
        assert_eq!(p.acknowledge(), 0x29);
    }

    // ICW4 SFNM: a higher slave request is recognised while the cascade is in service.
    #[test]
    fn special_fully_nested_mode() {
        let mut p = pic(ICW4_SFNM);
        pulse(&mut p, 12);
        assert_eq!(p.acknowledge(), 0x2C);
        pulse(&mut p, 9);
        assert!(p.intr());
        assert_eq!(p.acknowledge(), 0x29);
    }

    // OCW1 masks; OCW3 reads IRR or ISR; the special mask mode lets lower levels in.
    #[test]
    fn mask_register_reads_and_special_mask() {
        let mut p = pic(0);
        p.write(M_DATA, 1, 1 << 6);
        pulse(&mut p, 6);
        assert!(!p.intr());
        assert_eq!(p.read(M_CMD, 1), 1 << 6, "IRR read by default after ICW1");
        assert_eq!(p.read(M_DATA, 1), 1 << 6);
        p.write(M_DATA, 1, 0);
        assert_eq!(p.acknowledge(), 0x26);
        p.write(M_CMD, 1, 0x0B); // OCW3: read ISR
        assert_eq!(p.read(M_CMD, 1), 1 << 6);
        pulse(&mut p, 7);
        assert!(!p.intr());
        p.write(M_DATA, 1, 1 << 6); // mask the level in service...
        p.write(M_CMD, 1, 0x68); // ...and enter special mask mode
        assert!(p.intr(), "IR7 is allowed while IR6 is masked in service");
        p.write(M_CMD, 1, 0x48); // leave special mask mode
        assert!(!p.intr());
    }

    // OCW2 rotation: after rotate-on-EOI the serviced level becomes the lowest.
    #[test]
    fn rotate_on_eoi_and_set_priority() {
        let mut p = pic(0);
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), 0x21);
        p.write(M_CMD, 1, 0xA0); // rotate on non-specific EOI
        assert_eq!(p.chips[0].highest_priority, 2);
        pulse(&mut p, 1);
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), 0x23, "IR3 now outranks IR1");
        p.write(M_CMD, 1, 0x60 | 3);
        p.write(M_CMD, 1, 0xC0 | 4); // set priority: IR4 lowest, IR5 highest
        pulse(&mut p, 5);
        assert_eq!(p.acknowledge(), 0x25);
    }

    // Poll command: the read acknowledges the highest request.
    #[test]
    fn poll_command() {
        let mut p = pic(0);
        pulse(&mut p, 3);
        p.write(M_CMD, 1, 0x0C);
        assert_eq!(p.read(M_CMD, 1), 0x83);
        assert_eq!(p.chips[0].isr, 1 << 3);
        p.write(M_CMD, 1, 0x0C);
        assert_eq!(p.read(M_CMD, 1), 0, "nothing else pending");
        assert_eq!(p.read(M_CMD, 1), 0, "back to IRR reads (empty)");
    }

    // ELCR: PIIX's IRQ 0, 1, 2, 8 and 13 stay edge-triggered; level requests follow the line.
    #[test]
    fn elcr_fixed_bits_and_level_mode() {
        let mut p = pic(0);
        p.write(ELCR_PORT, 1, 0xFF);
        p.write(ELCR_PORT + 1, 1, 0xFF);
        assert_eq!(p.read(ELCR_PORT, 1), 0xF8);
        assert_eq!(p.read(ELCR_PORT + 1, 1), 0xDE);
        p.set_irq(10, true);
        assert_eq!(p.acknowledge(), 0x2A);
        p.write(S_CMD, 1, 0x20);
        p.write(M_CMD, 1, 0x20);
        assert!(p.intr(), "a level request still high after EOI interrupts again");
        p.set_irq(10, false);
        assert!(!p.intr());
        // An edge input is not re-requested by a line that stays high.
        p.set_irq(0, true);
        assert_eq!(p.acknowledge(), 0x20);
        p.write(M_CMD, 1, 0x20);
        assert!(!p.intr());
    }

    proptest::proptest! {
        // Fully nested mode with rotation: INTA picks the first unmasked request in
        // priority order (starting at the rotated highest level) above every level in
        // service, or IR7 spuriously when none.
        #[test]
        fn acknowledge_follows_rotated_priority(
            requests: u8,
            mask: u8,
            in_service_level in proptest::option::of(
                proptest::sample::select(vec![0u8, 1, 3, 4, 5, 6, 7])),
            lowest in 0u8..8,
        ) {
            let mut p = pic(0);
            p.write(M_CMD, 1, u32::from(0xC0 | lowest)); // OCW2 set priority
            if let Some(level) = in_service_level {
                pulse(&mut p, level);
                p.write(M_DATA, 1, u32::from(!(1u8 << level)));
                let v = p.acknowledge();
                proptest::prop_assert_eq!(v, 0x20 | level);
            }
            p.write(M_DATA, 1, u32::from(mask & !(1 << PIC_CASCADE_IRQ)));
            let requests = requests & !(1 << PIC_CASCADE_IRQ);
            for irq in 0..8 {
                if requests & (1 << irq) != 0 {
                    pulse(&mut p, irq);
                }
            }
            let order: Vec<u8> = (1..=8).map(|i| (lowest + i) & 7).collect();
            let rank = |ir: u8| order.iter().position(|&x| x == ir);
            let unmasked = requests & !mask & !(1 << PIC_CASCADE_IRQ);
            let best = order.iter().copied().find(|&ir| unmasked & (1 << ir) != 0);
            let expected = match (best, in_service_level) {
                (Some(ir), Some(isl)) if rank(ir) >= rank(isl) => None,
                (best, _) => best,
            };
            proptest::prop_assert_eq!(p.intr(), expected.is_some());
            let vector = p.acknowledge();
            proptest::prop_assert_eq!(vector, 0x20 | expected.unwrap_or(SPURIOUS_IR));
        }
    }

    // ICW1 resets the edge sense latch: a line already high needs a new rising edge.
    #[test]
    fn icw1_resets_edge_sense() {
        let mut p = pic(0);
        p.set_irq(3, true);
        let mut q = p.clone();
        q.write(M_CMD, 1, 0x11);
        q.write(M_DATA, 1, 0x08);
        q.write(M_DATA, 1, 4);
        q.write(M_DATA, 1, 1);
        assert!(!q.intr());
        q.set_irq(3, false);
        q.set_irq(3, true);
        assert_eq!(q.acknowledge(), 0x0B);
        assert!(p.intr());
    }
}
