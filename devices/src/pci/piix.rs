//! The PIIX south bridge functions: the PIIX3 PCI-to-ISA bridge (82371SB function 0, at
//! 00:01.0) with its PIRQ route control registers, and the PIIX4 power-management
//! function (82371AB function 3, at 00:01.3) whose PMBA register places the ACPI PM I/O
//! block (82371AB datasheet, "Power Management Registers"). The pairing is QEMU's `pc`
//! machine.

use super::{
    Bdf, ConfigSpace, PciFunction, COMMAND, HEADER_MULTI_FUNCTION, HEADER_TYPE, INTERRUPT_PIN,
    STATUS, STATUS_W1C, VENDOR_INTEL,
};
use crate::pc;
use std::any::Any;

/// 82371SB (PIIX3) ISA bridge device ID.
pub const DEVICE_ID_PIIX3_ISA: u16 = 0x7000;
/// Class code: bridge, ISA bridge.
pub const CLASS_ISA_BRIDGE: [u8; 3] = [0x06, 0x01, 0x00];
/// PIIX3 PCICMD after reset: I/O, memory and bus master.
pub const ISA_COMMAND_RESET: u16 = 0x0007;
/// PIIX3 PCISTS after reset: DEVSEL medium.
pub const ISA_STATUS_RESET: u16 = 0x0200;
/// PIRQRCA (0x60); PIRQRCB-D at 0x61-0x63. Bit 7: routing disabled; bits 3:0: the ISA
/// IRQ.
pub const PIRQRC: u8 = 0x60;
/// PIRQRC bit 7: the PIRQ is not routed.
pub const PIRQRC_DISABLE: u8 = 0x80;
/// PIRQRC after reset.
pub const PIRQRC_RESET: u8 = PIRQRC_DISABLE;

/// 82371AB (PIIX4) power-management function device ID.
pub const DEVICE_ID_PIIX4_PM: u16 = 0x7113;
/// PIIX4 PM revision as QEMU reports it.
pub const PM_REVISION: u8 = 0x03;
/// Class code: bridge, other bridge.
pub const CLASS_OTHER_BRIDGE: [u8; 3] = [0x06, 0x80, 0x00];
/// PMBA: PM I/O base (bits 15:6; bit 0 hardwired to 1, "I/O space").
pub const PMBA: u8 = 0x40;
/// PMBA's writable base bits.
pub const PMBA_BASE_MASK: u32 = 0xFFC0;
/// DEVACTB (device activity B, 0x58): bit 25 APMC_EN enables SMIs on writes to the APM
/// control port 0xB2.
pub const DEVACTB: u8 = 0x58;
/// DEVACTB bit 25 (bit 1 of byte 0x5B).
pub const DEVACTB_APMC_EN: u32 = 1 << 25;
/// PMREGMISC: bit 0 (PMIOSE) enables the PM I/O space.
pub const PMREGMISC: u8 = 0x80;
/// PMREGMISC bit 0.
pub const PMIOSE: u8 = 1;

/// The PIIX3 ISA bridge.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IsaBridge {
    config: ConfigSpace,
}

impl Default for IsaBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl IsaBridge {
    /// Its address.
    pub const BDF: Bdf = Bdf::new(0, 1, 0);

    /// After reset.
    pub fn new() -> Self {
        let mut c = ConfigSpace::new(VENDOR_INTEL, DEVICE_ID_PIIX3_ISA, 0, CLASS_ISA_BRIDGE);
        c.set_u16(COMMAND, ISA_COMMAND_RESET);
        c.set_u16(STATUS, ISA_STATUS_RESET);
        // Functions 1-3 exist (01.3 here), so function 0 reports a multi-function device.
        c.set_u8(HEADER_TYPE, HEADER_MULTI_FUNCTION);
        c.set_w1c(STATUS, &STATUS_W1C.to_le_bytes());
        for n in 0..4 {
            c.set_u8(PIRQRC + n, PIRQRC_RESET);
        }
        c.set_writable(PIRQRC, &[0x8F; 4]);
        Self { config: c }
    }

    /// The ISA IRQ PIRQ `n` (0 = A .. 3 = D) is routed to: `None` when disabled or set to
    /// one of the reserved values 0-2, 8 and 13.
    pub fn pirq_route(&self, n: u8) -> Option<u8> {
        if n >= 4 {
            return None;
        }
        let r = self.config.u8(PIRQRC + n);
        let irq = r & 0xF;
        (r & PIRQRC_DISABLE == 0 && !matches!(irq, 0..=2 | 8 | 13)).then_some(irq)
    }
}

impl PciFunction for IsaBridge {
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

/// The PIIX4 power-management function.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PmFunction {
    config: ConfigSpace,
}

impl Default for PmFunction {
    fn default() -> Self {
        Self::new()
    }
}

impl PmFunction {
    /// Its address.
    pub const BDF: Bdf = Bdf::new(0, 1, 3);

    /// The state hvsim's firmware leaves it in: PMBA = `pc::ACPI_PM_BASE` and PM I/O
    /// enabled, so that the PM block the FADT describes is live (the datasheet's reset
    /// state is PMBA = 1, PMIOSE = 0; SeaBIOS programs the same 0x600).
    pub fn new() -> Self {
        let mut c =
            ConfigSpace::new(VENDOR_INTEL, DEVICE_ID_PIIX4_PM, PM_REVISION, CLASS_OTHER_BRIDGE);
        c.set_u16(STATUS, 0x0280);
        c.set_w1c(STATUS, &STATUS_W1C.to_le_bytes());
        c.set_u8(INTERRUPT_PIN, 1);
        c.set_u32(PMBA, u32::from(pc::ACPI_PM_BASE) | 1);
        c.set_writable(PMBA, &PMBA_BASE_MASK.to_le_bytes());
        c.set_u8(PMREGMISC, PMIOSE);
        // hvsim has no SMM: APMC_EN reads as already set and cannot change, which is how
        // QEMU without SMM tells firmware that SMM is "already initialised" (SeaBIOS's
        // piix4_apmc_smm_setup then skips SMM setup).
        c.set_u32(DEVACTB, DEVACTB_APMC_EN);
        c.set_writable(PMREGMISC, &[PMIOSE]);
        Self { config: c }
    }

    /// The PM I/O base, if PMIOSE enables it.
    pub fn pm_base(&self) -> Option<u16> {
        (self.config.u8(PMREGMISC) & PMIOSE != 0)
            .then(|| (self.config.read(PMBA, 4) & PMBA_BASE_MASK) as u16)
    }
}

impl PciFunction for PmFunction {
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
