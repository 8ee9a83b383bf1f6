//! The POST diagnostic port (0x80): firmware writes progress codes here (and software uses
//! it as an I/O delay). The last code is kept, and reads return it, as on POST cards that
//! latch the port.

use crate::bus::PortDevice;
use std::any::Any;

pub use crate::pc::POST_PORT;

/// Port 0x80.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PostPort {
    last: Option<u8>,
    writes: u64,
}

impl PostPort {
    /// The last code written, if any.
    pub fn last(&self) -> Option<u8> {
        self.last
    }

    /// How many codes have been written.
    pub fn writes(&self) -> u64 {
        self.writes
    }
}

impl PortDevice for PostPort {
    fn read(&mut self, _port: u16, _size: u8) -> u32 {
        u32::from(self.last.unwrap_or(0xFF))
    }

    fn write(&mut self, _port: u16, _size: u8, value: u32) {
        self.last = Some(value as u8);
        self.writes += 1;
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
    fn records_the_last_code() {
        let mut p = PostPort::default();
        assert_eq!(p.read(POST_PORT, 1), 0xFF);
        p.write(POST_PORT, 1, 0x1AB);
        p.write(POST_PORT, 1, 0x55);
        assert_eq!(p.last(), Some(0x55));
        assert_eq!(p.writes(), 2);
        assert_eq!(p.read(POST_PORT, 1), 0x55);
    }
}
