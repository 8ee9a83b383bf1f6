//! The x2APIC interface: MSRs 0x800-0x8FF (SDM Vol. 3A 11.12.1.2 "x2APIC Register Address
//! Space", Table 11-6; 11.12.1.3 "Reserved Bit Checking"), plus IA32_TSC_DEADLINE and
//! IA32_APIC_BASE so that the CPU can hand every APIC MSR to [`LocalApic::rdmsr`] and
//! [`LocalApic::wrmsr`]. Every [`ApicFault`] is #GP(0).

use super::{regs, ApicFault, ApicMode, LocalApic, Lvt};

/// How an x2APIC MSR may be accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    WriteOnly,
    /// Read/write; a write setting any bit outside the mask raises #GP.
    ReadWrite(u64),
}

/// The x2APIC register behind `msr` and how it may be accessed (Table 11-6). APR, DFR,
/// ICR high (0x831) and the remote read register do not exist in x2APIC mode.
fn x2apic_register(msr: u32) -> Option<(u32, Access)> {
    if !(regs::X2APIC_MSR_BASE..=regs::X2APIC_MSR_LAST).contains(&msr) {
        return None;
    }
    let offset = (msr - regs::X2APIC_MSR_BASE) << 4;
    let access = match offset {
        regs::ID | regs::VERSION | regs::PPR | regs::LDR => Access::ReadOnly,
        regs::ISR..=0x270 => Access::ReadOnly,
        regs::TIMER_CURRENT_COUNT => Access::ReadOnly,
        regs::TPR => Access::ReadWrite(0xFF),
        // EOI and ESR: only zero may be written.
        regs::EOI => Access::WriteOnly,
        regs::ESR => Access::ReadWrite(0),
        regs::SVR => Access::ReadWrite(u64::from(regs::SVR_WRITABLE)),
        regs::ICR_LOW => Access::ReadWrite(!regs::X2APIC_ICR_RESERVED),
        regs::TIMER_INITIAL_COUNT => Access::ReadWrite(0xFFFF_FFFF),
        regs::TIMER_DIVIDE => Access::ReadWrite(u64::from(regs::TIMER_DIVIDE_WRITABLE)),
        regs::SELF_IPI => Access::WriteOnly,
        o => {
            let lvt = Lvt::from_offset(o)?;
            Access::ReadWrite(u64::from(lvt.writable() | lvt.read_only()))
        }
    };
    Some((offset, access))
}

impl LocalApic {
    /// Whether `msr` is one this APIC answers: IA32_APIC_BASE, IA32_TSC_DEADLINE or the
    /// x2APIC range.
    pub fn handles_msr(msr: u32) -> bool {
        msr == regs::IA32_APIC_BASE
            || msr == regs::IA32_TSC_DEADLINE
            || (regs::X2APIC_MSR_BASE..=regs::X2APIC_MSR_LAST).contains(&msr)
    }

    /// RDMSR of an APIC MSR.
    pub fn rdmsr(&self, msr: u32) -> Result<u64, ApicFault> {
        match msr {
            regs::IA32_APIC_BASE => return Ok(self.apic_base),
            regs::IA32_TSC_DEADLINE => return Ok(self.tsc_deadline()),
            _ => {}
        }
        let (offset, access) = x2apic_register(msr).ok_or(ApicFault::Reserved(msr))?;
        if self.mode() != ApicMode::X2Apic {
            return Err(ApicFault::NotX2Apic(msr));
        }
        if access == Access::WriteOnly {
            return Err(ApicFault::WriteOnly(msr));
        }
        if offset == regs::ICR_LOW {
            // The ICR is one 64-bit MSR (11.12.9); x2APIC mode has no delivery status.
            return Ok(self.icr & !u64::from(regs::DELIVERY_STATUS));
        }
        self.read_register(offset).map(u64::from).ok_or(ApicFault::Reserved(msr))
    }

    /// WRMSR of an APIC MSR.
    pub fn wrmsr(&mut self, msr: u32, value: u64) -> Result<(), ApicFault> {
        match msr {
            regs::IA32_APIC_BASE => return self.write_apic_base(value),
            regs::IA32_TSC_DEADLINE => {
                self.set_tsc_deadline(value);
                return Ok(());
            }
            _ => {}
        }
        let (offset, access) = x2apic_register(msr).ok_or(ApicFault::Reserved(msr))?;
        if self.mode() != ApicMode::X2Apic {
            return Err(ApicFault::NotX2Apic(msr));
        }
        let reserved_bits = ApicFault::ReservedBits { msr, value };
        match access {
            Access::ReadOnly => return Err(ApicFault::ReadOnly(msr)),
            Access::ReadWrite(mask) if value & !mask != 0 => return Err(reserved_bits),
            Access::ReadWrite(_) => {}
            Access::WriteOnly => {
                let mask = if offset == regs::SELF_IPI { 0xFF } else { 0 };
                if value & !mask != 0 {
                    return Err(reserved_bits);
                }
            }
        }
        match offset {
            regs::SELF_IPI => self.self_ipi(value as u8),
            regs::ICR_LOW => {
                // One WRMSR writes destination and command and sends the IPI.
                self.icr = value & !regs::X2APIC_ICR_RESERVED;
                self.send_ipi();
            }
            _ => {
                self.write_register(offset, value as u32);
            }
        }
        Ok(())
    }
}
