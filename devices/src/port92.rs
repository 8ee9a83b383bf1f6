//! System control port A (0x92, PS/2 and PIIX): bit 1 is the fast A20 gate, bit 0 the fast
//! reset (a 0 -> 1 transition resets the processor). The other bits are kept as written
//! (bit 3, the power-on password lock, is not enforced).
//!
//! The A20 gate and reset requests are values the machine reads: the processor's A20 line
//! is this gate OR the keyboard controller's ([`crate::i8042::I8042::a20`]), a combination
//! the machine makes, so the devices stay uncoupled.

use crate::bus::PortDevice;
use std::any::Any;

pub use crate::pc::PORT_A;

/// Bit 0: fast reset (on the 0 -> 1 edge).
pub const PORT_A_RESET: u8 = 1 << 0;
/// Bit 1: fast A20 gate.
pub const PORT_A_A20: u8 = 1 << 1;

/// Port 0x92.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PortA {
    value: u8,
    reset_requested: bool,
}

impl PortA {
    /// Port A at power-on: A20 gate off, no reset pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fast A20 gate.
    pub fn a20(&self) -> bool {
        self.value & PORT_A_A20 != 0
    }

    /// Whether a reset was requested (bit 0 written 0 -> 1) and not yet taken.
    pub fn reset_requested(&self) -> bool {
        self.reset_requested
    }

    /// Takes the reset request: true once per request.
    pub fn take_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }
}

impl PortDevice for PortA {
    fn read(&mut self, _port: u16, _size: u8) -> u32 {
        u32::from(self.value)
    }

    fn write(&mut self, _port: u16, _size: u8, value: u32) {
        let value = value as u8;
        if self.value & PORT_A_RESET == 0 && value & PORT_A_RESET != 0 {
            self.reset_requested = true;
        }
        self.value = value;
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

    #[test]
    fn fast_a20_and_reset_edge() {
        let mut p = PortA::new();
        assert!(!p.a20());
        p.write(PORT_A, 1, u32::from(PORT_A_A20));
        assert!(p.a20());
        assert!(!p.take_reset());
        p.write(PORT_A, 1, u32::from(PORT_A_A20 | PORT_A_RESET));
        assert!(p.take_reset());
        assert_eq!(p.read(PORT_A, 1), u32::from(PORT_A_A20 | PORT_A_RESET));
        p.write(PORT_A, 1, u32::from(PORT_A_A20 | PORT_A_RESET));
        assert!(!p.take_reset(), "no edge: bit 0 was already 1");
        p.write(PORT_A, 1, 0);
        p.write(PORT_A, 1, u32::from(PORT_A_RESET));
        assert!(p.take_reset());
        assert!(!p.a20());
    }
}
