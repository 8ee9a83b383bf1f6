//! The PIIX3 IDE function's configuration space (82371SB function 1): identity, the
//! command register and the IDE timing registers firmware writes to enable the channels.
//! The channels decode their legacy ports whatever these registers say, as on QEMU.

use crate::pci::{Bdf, ConfigSpace, PciFunction, COMMAND, STATUS, STATUS_W1C, VENDOR_INTEL};
use std::any::Any;

/// 82371SB (PIIX3) IDE device ID.
pub const DEVICE_ID_PIIX3_IDE: u16 = 0x7010;
/// Class code: mass storage, IDE, programming interface 0 (both channels in
/// compatibility mode, no bus-master DMA advertised).
pub const CLASS_IDE: [u8; 3] = [0x01, 0x01, 0x00];
/// IDETIM primary (0x40) and secondary (0x42): bit 15 = IDE decode enable.
pub const IDETIM: u8 = 0x40;
/// PCISTS after reset: fast back-to-back, DEVSEL medium.
pub const IDE_STATUS_RESET: u16 = 0x0280;

/// The IDE function.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IdeFunction {
    config: ConfigSpace,
}

impl Default for IdeFunction {
    fn default() -> Self {
        Self::new()
    }
}

impl IdeFunction {
    /// Its address.
    pub const BDF: Bdf = Bdf::new(0, 1, 1);

    /// After reset.
    pub fn new() -> Self {
        let mut c = ConfigSpace::new(VENDOR_INTEL, DEVICE_ID_PIIX3_IDE, 0, CLASS_IDE);
        c.set_u16(STATUS, IDE_STATUS_RESET);
        c.set_w1c(STATUS, &STATUS_W1C.to_le_bytes());
        // I/O space and bus master enables.
        c.set_writable(COMMAND, &[0x05, 0x00]);
        c.set_writable(IDETIM, &[0xFF, 0xF3, 0xFF, 0xF3]);
        Self { config: c }
    }
}

impl PciFunction for IdeFunction {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }
    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
