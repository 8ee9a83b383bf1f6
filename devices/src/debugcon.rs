//! QEMU's ISA debug console (`-debugcon`, device `isa-debugcon`): a byte written to its
//! port is output; a read returns the readback value 0xE9, which is how firmware
//! (SeaBIOS, OVMF) detects that the port is present before it logs to it. SeaBIOS on
//! QEMU logs to port 0x402.

use crate::bus::PortDevice;
use std::any::Any;

/// The port SeaBIOS and OVMF use on QEMU's `pc` machine.
pub const DEBUGCON_PORT: u16 = 0x402;
/// What a read of the port returns (QEMU's default `readback` property, the Bochs 0xE9
/// hack's port number).
pub const DEBUGCON_READBACK: u8 = 0xE9;

/// The debug console: collects written bytes until the machine takes them.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct DebugCon {
    output: Vec<u8>,
}

impl DebugCon {
    /// The bytes written since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }
}

impl PortDevice for DebugCon {
    fn read(&mut self, _port: u16, _size: u8) -> u32 {
        u32::from(DEBUGCON_READBACK)
    }
    fn write(&mut self, _port: u16, _size: u8, value: u32) {
        // QEMU outputs the low byte of any write width.
        self.output.push(value as u8);
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
    fn read_returns_readback_and_writes_collect() {
        let mut d = DebugCon::default();
        assert_eq!(d.read(DEBUGCON_PORT, 1), 0xE9);
        d.write(DEBUGCON_PORT, 1, u32::from(b'h'));
        d.write(DEBUGCON_PORT, 2, 0x1269);
        assert_eq!(d.take_output(), b"hi");
        assert!(d.take_output().is_empty());
    }
}
