//! The COM1 console as a minimal 16550 stand-in: bytes written to the transmit holding
//! register are captured (and optionally echoed to the host's stdout); the line status
//! register always reports the transmitter empty. The full 16550A is
//! [`crate::uart16550::Uart16550`]; this stand-in stays until the machine switches COM1 to it.

use crate::bus::PortDevice;
use std::any::Any;

pub use crate::pc::COM1_PORT;
use std::io::Write;

/// Line status register offset.
const LSR: u16 = 5;
/// LSR: transmit holding register empty.
const LSR_THRE: u8 = 1 << 5;
/// LSR: transmitter empty.
const LSR_TEMT: u8 = 1 << 6;

/// The console UART stand-in.
#[derive(Debug, Default)]
pub struct SerialConsole {
    base: u16,
    output: Vec<u8>,
    echo: bool,
    /// Divisor latch access bit (LCR bit 7): offsets 0/1 then address the divisor.
    dlab: bool,
    scratch: [u8; 8],
}

impl SerialConsole {
    /// A console at `base`; with `echo`, output also goes to the host's stdout.
    pub fn new(base: u16, echo: bool) -> Self {
        Self { base, echo, ..Self::default() }
    }

    /// Everything the guest has transmitted.
    pub fn output(&self) -> &[u8] {
        &self.output
    }
}

impl PortDevice for SerialConsole {
    fn read(&mut self, port: u16, _size: u8) -> u32 {
        let off = port.wrapping_sub(self.base) & 7;
        u32::from(match off {
            LSR => LSR_THRE | LSR_TEMT,
            3 => self.scratch[3] | if self.dlab { 0x80 } else { 0 },
            0 if !self.dlab => 0, // no receive data
            _ => self.scratch[usize::from(off)],
        })
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        let off = port.wrapping_sub(self.base) & 7;
        let b = value as u8;
        match off {
            0 if !self.dlab => {
                self.output.push(b);
                if self.echo {
                    let mut out = std::io::stdout().lock();
                    // Host stdout errors (a closed pipe) must not stop the guest.
                    let _ = out.write_all(&[b]);
                    if b == b'\n' {
                        let _ = out.flush();
                    }
                }
            }
            3 => {
                self.dlab = b & 0x80 != 0;
                self.scratch[3] = b & 0x7F;
            }
            LSR => {}
            _ => self.scratch[usize::from(off)] = b,
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

    #[test]
    fn transmit_is_captured_and_divisor_latch_is_not_output() {
        let mut s = SerialConsole::new(COM1_PORT, false);
        assert_eq!(s.read(COM1_PORT + 5, 1) as u8 & LSR_THRE, LSR_THRE);
        s.write(COM1_PORT, 1, u32::from(b'h'));
        s.write(COM1_PORT + 3, 1, 0x80);
        s.write(COM1_PORT, 1, 0x01); // divisor low byte
        s.write(COM1_PORT + 3, 1, 0x03);
        s.write(COM1_PORT, 1, u32::from(b'i'));
        assert_eq!(s.output(), b"hi");
        assert_eq!(s.read(COM1_PORT + 3, 1), 3);
    }
}
