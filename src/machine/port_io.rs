//! Port I/O as the vCPU performs it: the bus access plus what the machine observes of it
//! (the trace hash). Instruction handlers (IN/OUT/INS/OUTS) come through here after their
//! permission checks, never to the bus directly.

use super::Machine;

impl Machine {
    /// A port read of `size` bytes (1, 2 or 4).
    pub fn port_read(&mut self, port: u16, size: u8) -> u32 {
        let v = self.io.read(port, size);
        if let Some(h) = self.trace_hash.as_mut() {
            h.port_read(self.cpu.insn_count, port, size, v);
        }
        v
    }

    /// A port write of `size` bytes (1, 2 or 4).
    pub fn port_write(&mut self, port: u16, size: u8, value: u32) {
        if let Some(h) = self.trace_hash.as_mut() {
            h.port_write(self.cpu.insn_count, port, size, value);
        }
        self.io.write(port, size, value);
    }
}
