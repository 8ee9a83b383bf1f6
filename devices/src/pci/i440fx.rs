//! The i440FX PCI and memory controller (82441FX PMC) as PCI function 00:00.0: the host
//! bridge firmware and OSes find first (Intel 440FX PCIset datasheet, 82441FX
//! configuration registers). hvsim models its identity, command/status, the PAM
//! registers that control BIOS shadowing (0x59-0x5F) and SMRAM (0x72) as plain registers
//! the machine can read; their effect on the memory map is the machine's.

use super::{
    Bdf, ConfigSpace, PciFunction, COMMAND, HEADER_TYPE, STATUS, STATUS_W1C, VENDOR_INTEL,
};
use std::any::Any;

/// 82441FX device ID.
pub const DEVICE_ID_82441FX: u16 = 0x1237;
/// Revision as QEMU reports it.
pub const REVISION: u8 = 0x02;
/// Class code: bridge, host bridge.
pub const CLASS_HOST_BRIDGE: [u8; 3] = [0x06, 0x00, 0x00];
/// PCICMD after reset: memory and bus-master enabled.
pub const COMMAND_RESET: u16 = 0x0006;
/// PCISTS after reset: fast back-to-back capable, DEVSEL medium.
pub const STATUS_RESET: u16 = 0x0280;
/// PAM0 (BIOS area 0xF0000-0xFFFFF, bits 5:4); PAM1-PAM6 follow, two 16 KiB segments
/// each (bits 1:0 and 5:4): 0 = DRAM disabled, 1 = read only, 2 = write only, 3 = both.
pub const PAM0: u8 = 0x59;
/// Number of PAM registers.
pub const PAM_COUNT: u8 = 7;
/// SMRAM control register.
pub const SMRAM: u8 = 0x72;
/// SMRAM after reset (C_BASE_SEG = 010b: the 0xA0000 segment).
pub const SMRAM_RESET: u8 = 0x02;

/// The i440FX host bridge.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HostBridge {
    config: ConfigSpace,
}

impl Default for HostBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl HostBridge {
    /// Its address.
    pub const BDF: Bdf = Bdf::new(0, 0, 0);

    /// After reset.
    pub fn new() -> Self {
        let mut c = ConfigSpace::new(VENDOR_INTEL, DEVICE_ID_82441FX, REVISION, CLASS_HOST_BRIDGE);
        c.set_u16(COMMAND, COMMAND_RESET);
        c.set_u16(STATUS, STATUS_RESET);
        c.set_u8(HEADER_TYPE, 0x00);
        // PCICMD: SERR# enable (bit 8), parity (6), bus master (2) and memory (1).
        c.set_writable(COMMAND, &[0x46, 0x01]);
        c.set_w1c(STATUS, &STATUS_W1C.to_le_bytes());
        c.set_writable(PAM0, &[0x30]);
        c.set_writable(PAM0 + 1, &[0x33; (PAM_COUNT - 1) as usize]);
        c.set_u8(SMRAM, SMRAM_RESET);
        // D_OPEN, D_CLS, D_LCK, G_SMRAME (bits 6:3); C_BASE_SEG is fixed.
        c.set_writable(SMRAM, &[0x78]);
        Self { config: c }
    }

    /// PAM register `n` (0-6).
    pub fn pam(&self, n: u8) -> Option<u8> {
        (n < PAM_COUNT).then(|| self.config.u8(PAM0 + n))
    }
}

impl PciFunction for HostBridge {
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
