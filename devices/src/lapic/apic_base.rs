//! IA32_APIC_BASE and the APIC's modes (SDM Vol. 3A 11.4.4 "Local APIC Status and
//! Location", 11.12.5 "x2APIC State Transitions", Figure 11-27 "Local x2APIC State
//! Transitions").

use super::{regs, ApicFault, LocalApic};

/// The APIC mode IA32_APIC_BASE bits 11:10 select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ApicMode {
    /// EN = 0, EXTD = 0: globally disabled.
    Disabled,
    /// EN = 1, EXTD = 0: xAPIC (MMIO).
    XApic,
    /// EN = 1, EXTD = 1: x2APIC (MSRs).
    X2Apic,
}

impl ApicMode {
    /// The mode of an IA32_APIC_BASE value (EN = 0, EXTD = 1 is invalid: `Disabled`
    /// here; writes of it are refused).
    pub fn of(apic_base: u64) -> Self {
        match (apic_base & regs::APIC_BASE_ENABLE != 0, apic_base & regs::APIC_BASE_EXTD != 0) {
            (false, _) => Self::Disabled,
            (true, false) => Self::XApic,
            (true, true) => Self::X2Apic,
        }
    }
}

impl LocalApic {
    /// Bits below MAXPHYADDR.
    fn phys_addr_mask(&self) -> u64 {
        1u64.checked_shl(u32::from(self.config.max_phys_addr_bits)).map_or(u64::MAX, |v| v - 1)
    }

    /// IA32_APIC_BASE.
    pub fn apic_base(&self) -> u64 {
        self.apic_base
    }

    /// The physical base of the xAPIC page.
    pub fn mmio_base(&self) -> u64 {
        self.apic_base & !0xFFF & self.phys_addr_mask()
    }

    /// Whether the xAPIC MMIO page decodes accesses (xAPIC mode only; SDM Vol. 3A
    /// 11.12.1.2: in x2APIC mode the MMIO interface is disabled).
    pub fn mmio_enabled(&self) -> bool {
        self.mode() == ApicMode::XApic
    }

    /// A WRMSR to IA32_APIC_BASE. #GP for reserved bits (7:0, 9, MAXPHYADDR and above),
    /// for the invalid EN = 0/EXTD = 1 state, and for the transitions Figure 11-27 does
    /// not allow: x2APIC to xAPIC and disabled to x2APIC. The BSP flag is read-only.
    ///
    /// Disabling the APIC returns its registers to the power-up state except the APIC ID
    /// (11.12.5.1: "all the APIC register states in the x2APIC, except for the x2APIC ID
    /// (32 bits), are not preserved across mode transitions"; the xAPIC ID is preserved
    /// too); entering x2APIC mode uses the x2APIC ID and derives the LDR.
    pub fn write_apic_base(&mut self, value: u64) -> Result<(), ApicFault> {
        let from = self.mode();
        let above_maxphyaddr = !self.phys_addr_mask();
        if value & (regs::APIC_BASE_RESERVED_LOW | above_maxphyaddr) != 0 {
            return Err(ApicFault::ReservedBits { msr: regs::IA32_APIC_BASE, value });
        }
        let to = ApicMode::of(value);
        let illegal = (value & regs::APIC_BASE_EXTD != 0 && value & regs::APIC_BASE_ENABLE == 0)
            || matches!(
                (from, to),
                (ApicMode::X2Apic, ApicMode::XApic) | (ApicMode::Disabled, ApicMode::X2Apic)
            );
        if illegal {
            return Err(ApicFault::IllegalTransition { from, value });
        }
        self.apic_base = (value & !regs::APIC_BASE_BSP) | (self.apic_base & regs::APIC_BASE_BSP);
        if to == ApicMode::Disabled && from != ApicMode::Disabled {
            self.reset_registers();
            self.extint = false;
        }
        Ok(())
    }
}
