//! QEMU's isa-debug-exit device: a write ends the run, and the process exit status is
//! `(value << 1) | 1`, as QEMU reports it.

use crate::bus::PortDevice;
use std::any::Any;

pub use crate::pc::DEBUG_EXIT_PORT;

/// isa-debug-exit: remembers the value written until the machine takes it.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct DebugExit {
    pending: Option<u32>,
}

impl DebugExit {
    /// The value written since the last call, if any.
    pub fn take(&mut self) -> Option<u32> {
        self.pending.take()
    }

    /// Whether a write is waiting to be taken.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The process exit status QEMU gives for a written value.
    pub fn exit_status(value: u32) -> i32 {
        ((value << 1) | 1) as i32
    }
}

impl PortDevice for DebugExit {
    fn read(&mut self, _port: u16, size: u8) -> u32 {
        u32::MAX >> (32 - 8 * u32::from(size))
    }
    fn write(&mut self, _port: u16, size: u8, value: u32) {
        let mask = u32::MAX >> (32 - 8 * u32::from(size));
        self.pending = Some(value & mask);
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
    fn status_follows_qemu() {
        assert_eq!(DebugExit::exit_status(0), 1);
        assert_eq!(DebugExit::exit_status(0x10), 0x21);
        let mut d = DebugExit::default();
        d.write(DEBUG_EXIT_PORT, 1, 0x1FF);
        assert_eq!(d.take(), Some(0xFF));
        assert_eq!(d.take(), None);
    }
}
