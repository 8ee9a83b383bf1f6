//! Port I/O as the vCPU performs it: the bus access plus what the machine observes of it
//! (the trace hash). Instruction handlers (IN/OUT/INS/OUTS) come through here after their
//! permission checks, never to the bus directly.

use super::Machine;
use crate::trace::{Category, IO};

impl Machine {
    /// A port read of `size` bytes (1, 2 or 4).
    pub fn port_read(&mut self, port: u16, size: u8) -> u32 {
        let v = match self.device_port_read(port, size) {
            Some(v) => v,
            None => self.io.read(port, size),
        };
        let (now, vcpu) = (self.clock(), self.current);
        if let Some(h) = self.trace_hash.as_mut() {
            h.port_read(now, vcpu, port, size, v);
        }
        if self.trace.wants(Category::Io, now) {
            tracing::info!(target: IO, insn = now, vcpu, dir = "in", port, size, value = v,
                "in  port {port:#06x} size {size} -> {v:#x}");
        }
        v
    }

    /// A port write of `size` bytes (1, 2 or 4).
    pub fn port_write(&mut self, port: u16, size: u8, value: u32) {
        let (now, vcpu) = (self.clock(), self.current);
        if let Some(h) = self.trace_hash.as_mut() {
            h.port_write(now, vcpu, port, size, value);
        }
        if self.trace.wants(Category::Io, now) {
            tracing::info!(target: IO, insn = now, vcpu, dir = "out", port, size, value,
                "out port {port:#06x} size {size} <- {value:#x}");
        }
        if !self.device_port_write(port, size, value) {
            self.io.write(port, size, value);
        }
    }
}
