//! The FADT, "Fixed ACPI Description Table" (signature "FACP", ACPI 6.4 §5.2.9), and the
//! FACS it points at (§5.2.10).
//!
//! hvsim's PC has no SMM, so SMI_CMD is 0 and the machine is in ACPI mode from reset
//! (§5.2.9: SMI_CMD "is reserved and must be zero on system that does not support System
//! Management mode"). The PM1a event and control blocks and the PM timer are the
//! PIIX4-style block at [`pc::ACPI_PM_BASE`]; there is no PM1b, PM2 or GPE block. The
//! reset register is the i8042's command port with the "pulse reset line" command 0xFE.

use super::sdt;
use crate::firmware::table_area::PutLe;
use hvsim_devices::pc;

/// FADT revision 6 (ACPI 6.x), 276 bytes.
pub const FADT_REVISION: u8 = 6;
/// FADT minor version (ACPI 6.4).
pub const FADT_MINOR_REVISION: u8 = 4;
/// Length of a revision 6 FADT.
pub const FADT_LEN: usize = 276;
/// Length of the FACS.
pub const FACS_LEN: usize = 64;
/// FACS version 2 (ACPI 4.0 and later: 64-bit waking vector).
pub const FACS_VERSION: u8 = 2;

/// Byte offsets of the FADT fields hvsim fills (the "FADT Format" table of §5.2.9), for readers and tests.
pub mod offset {
    /// FIRMWARE_CTRL: 32-bit FACS address.
    pub const FIRMWARE_CTRL: usize = 36;
    /// DSDT: 32-bit DSDT address.
    pub const DSDT: usize = 40;
    /// SCI_INT (16 bits).
    pub const SCI_INT: usize = 46;
    /// SMI_CMD.
    pub const SMI_CMD: usize = 48;
    /// PM1a_EVT_BLK.
    pub const PM1A_EVT_BLK: usize = 56;
    /// PM1a_CNT_BLK.
    pub const PM1A_CNT_BLK: usize = 64;
    /// PM_TMR_BLK.
    pub const PM_TMR_BLK: usize = 76;
    /// PM1_EVT_LEN.
    pub const PM1_EVT_LEN: usize = 88;
    /// PM1_CNT_LEN.
    pub const PM1_CNT_LEN: usize = 89;
    /// PM_TMR_LEN.
    pub const PM_TMR_LEN: usize = 91;
    /// IAPC_BOOT_ARCH (16 bits).
    pub const IAPC_BOOT_ARCH: usize = 109;
    /// Flags (32 bits).
    pub const FLAGS: usize = 112;
    /// RESET_REG (Generic Address Structure).
    pub const RESET_REG: usize = 116;
    /// RESET_VALUE.
    pub const RESET_VALUE: usize = 128;
    /// FADT Minor Version.
    pub const MINOR_VERSION: usize = 131;
    /// X_FIRMWARE_CTRL: 64-bit FACS address.
    pub const X_FIRMWARE_CTRL: usize = 132;
    /// X_DSDT: 64-bit DSDT address.
    pub const X_DSDT: usize = 140;
    /// X_PM1a_EVT_BLK (GAS).
    pub const X_PM1A_EVT_BLK: usize = 148;
    /// X_PM1a_CNT_BLK (GAS).
    pub const X_PM1A_CNT_BLK: usize = 172;
    /// X_PM_TMR_BLK (GAS).
    pub const X_PM_TMR_BLK: usize = 208;
}

/// Fixed feature flags (the "Fixed ACPI Description Table Fixed Feature Flags" table).
pub mod flags {
    /// WBINVD works.
    pub const WBINVD: u32 = 1 << 0;
    /// C1 is supported on all processors.
    pub const PROC_C1: u32 = 1 << 2;
    /// The power button, if any, is a control-method device (there is no fixed one).
    pub const PWR_BUTTON: u32 = 1 << 4;
    /// The sleep button, if any, is a control-method device.
    pub const SLP_BUTTON: u32 = 1 << 5;
    /// RTC wake status is not in the fixed register space.
    pub const FIX_RTC: u32 = 1 << 6;
    /// The PM timer is 32 bits wide (clear: 24 bits).
    pub const TMR_VAL_EXT: u32 = 1 << 8;
    /// RESET_REG is supported.
    pub const RESET_REG_SUP: u32 = 1 << 10;
}

/// IA-PC boot architecture flags (§5.2.9.3 "IA-PC Boot Architecture Flags").
pub mod boot_arch {
    /// LEGACY_DEVICES: user-visible devices on the LPC/ISA bus (UARTs, PIT, RTC...).
    pub const LEGACY_DEVICES: u16 = 1 << 0;
    /// 8042: an i8042 keyboard controller is present.
    pub const I8042: u16 = 1 << 1;
    /// VGA Not Present: hvsim emulates no VGA hardware.
    pub const VGA_NOT_PRESENT: u16 = 1 << 2;
}

/// Generic Address Structure address space IDs (§5.2.3.2 "Generic Address Structure (GAS)").
pub mod gas {
    /// System I/O space.
    pub const SYSTEM_IO: u8 = 1;
    /// Access size: byte.
    pub const BYTE: u8 = 1;
    /// Access size: word.
    pub const WORD: u8 = 2;
    /// Access size: doubleword.
    pub const DWORD: u8 = 3;
}

/// The reset register: the i8042 command port; writing [`RESET_VALUE`] pulses reset.
pub const RESET_PORT: u16 = pc::I8042_CMD_PORT;
/// The i8042 "pulse output port bit 0" (CPU reset) command.
pub const RESET_VALUE: u8 = 0xFE;
/// CENTURY: the CMOS RAM index of the century byte (as on IBM PC/AT BIOSes).
pub const CMOS_CENTURY_INDEX: u8 = 0x32;
/// C2 latency above 100 µs: C2 not supported.
const NO_C2: u16 = 101;
/// C3 latency above 1000 µs: C3 not supported.
const NO_C3: u16 = 1001;

/// A Generic Address Structure in system I/O space.
fn put_io_gas(t: &mut Vec<u8>, port: u16, bits: u8, access: u8) {
    t.put_u8(gas::SYSTEM_IO);
    t.put_u8(bits);
    t.put_u8(0); // bit offset
    t.put_u8(access);
    t.put_u64(port.into());
}

fn empty_gas(t: &mut Vec<u8>) {
    t.extend_from_slice(&[0; 12]);
}

/// The FADT pointing at the FACS and the DSDT (both below 4 GiB).
pub fn fadt(facs: u64, dsdt: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(FADT_LEN);
    b.put_u32(facs as u32); // 36 FIRMWARE_CTRL
    b.put_u32(dsdt as u32); // 40 DSDT
    b.put_u8(0); // 44 reserved (ACPI 1.0 INT_MODEL)
    b.put_u8(0); // 45 Preferred_PM_Profile: unspecified
    b.put_u16(pc::ACPI_SCI_IRQ.into()); // 46 SCI_INT
    b.put_u32(0); // 48 SMI_CMD: no SMM
    b.put_u8(0); // 52 ACPI_ENABLE
    b.put_u8(0); // 53 ACPI_DISABLE
    b.put_u8(0); // 54 S4BIOS_REQ
    b.put_u8(0); // 55 PSTATE_CNT
    b.put_u32(pc::ACPI_PM1A_EVT_BLK.into()); // 56 PM1a_EVT_BLK
    b.put_u32(0); // 60 PM1b_EVT_BLK
    b.put_u32(pc::ACPI_PM1A_CNT_BLK.into()); // 64 PM1a_CNT_BLK
    b.put_u32(0); // 68 PM1b_CNT_BLK
    b.put_u32(0); // 72 PM2_CNT_BLK
    b.put_u32(pc::ACPI_PM_TMR_BLK.into()); // 76 PM_TMR_BLK
    b.put_u32(0); // 80 GPE0_BLK
    b.put_u32(0); // 84 GPE1_BLK
    b.put_u8(4); // 88 PM1_EVT_LEN: status + enable, 2 bytes each
    b.put_u8(2); // 89 PM1_CNT_LEN
    b.put_u8(0); // 90 PM2_CNT_LEN
    b.put_u8(4); // 91 PM_TMR_LEN
    b.put_u8(0); // 92 GPE0_BLK_LEN
    b.put_u8(0); // 93 GPE1_BLK_LEN
    b.put_u8(0); // 94 GPE1_BASE
    b.put_u8(0); // 95 CST_CNT
    b.put_u16(NO_C2); // 96 P_LVL2_LAT
    b.put_u16(NO_C3); // 98 P_LVL3_LAT
    b.put_u16(0); // 100 FLUSH_SIZE
    b.put_u16(0); // 102 FLUSH_STRIDE
    b.put_u8(0); // 104 DUTY_OFFSET
    b.put_u8(0); // 105 DUTY_WIDTH
    b.put_u8(0); // 106 DAY_ALRM
    b.put_u8(0); // 107 MON_ALRM
    b.put_u8(CMOS_CENTURY_INDEX); // 108 CENTURY
    b.put_u16(boot_arch::LEGACY_DEVICES | boot_arch::I8042 | boot_arch::VGA_NOT_PRESENT); // 109
    b.put_u8(0); // 111 reserved
    b.put_u32(
        flags::WBINVD
            | flags::PROC_C1
            | flags::PWR_BUTTON
            | flags::SLP_BUTTON
            | flags::FIX_RTC
            | flags::RESET_REG_SUP,
    ); // 112 Flags (TMR_VAL_EXT clear: the PM timer is 24 bits)
    put_io_gas(&mut b, RESET_PORT, 8, gas::BYTE); // 116 RESET_REG
    b.put_u8(RESET_VALUE); // 128 RESET_VALUE
    b.put_u16(0); // 129 ARM_BOOT_ARCH
    b.put_u8(FADT_MINOR_REVISION); // 131 FADT Minor Version
    b.put_u64(facs); // 132 X_FIRMWARE_CTRL
    b.put_u64(dsdt); // 140 X_DSDT
    put_io_gas(&mut b, pc::ACPI_PM1A_EVT_BLK, 32, gas::WORD); // 148 X_PM1a_EVT_BLK
    empty_gas(&mut b); // 160 X_PM1b_EVT_BLK
    put_io_gas(&mut b, pc::ACPI_PM1A_CNT_BLK, 16, gas::WORD); // 172 X_PM1a_CNT_BLK
    empty_gas(&mut b); // 184 X_PM1b_CNT_BLK
    empty_gas(&mut b); // 196 X_PM2_CNT_BLK
    put_io_gas(&mut b, pc::ACPI_PM_TMR_BLK, 32, gas::DWORD); // 208 X_PM_TMR_BLK
    empty_gas(&mut b); // 220 X_GPE0_BLK
    empty_gas(&mut b); // 232 X_GPE1_BLK
    empty_gas(&mut b); // 244 SLEEP_CONTROL_REG (hardware-reduced ACPI only)
    empty_gas(&mut b); // 256 SLEEP_STATUS_REG
    b.put_u64(0); // 268 Hypervisor Vendor Identity
    let t = sdt(b"FACP", FADT_REVISION, &b);
    debug_assert_eq!(t.len(), FADT_LEN);
    t
}

/// The FACS (§5.2.10 "Firmware ACPI Control Structure (FACS)"): no checksum, no global lock users, no waking vector.
pub fn facs() -> Vec<u8> {
    let mut f = Vec::with_capacity(FACS_LEN);
    f.extend_from_slice(b"FACS");
    f.put_u32(FACS_LEN as u32);
    f.put_u32(0); // hardware signature
    f.put_u32(0); // firmware waking vector
    f.put_u32(0); // global lock
    f.put_u32(0); // flags
    f.put_u64(0); // X firmware waking vector
    f.put_u8(FACS_VERSION);
    f.extend_from_slice(&[0; 3]);
    f.put_u32(0); // OSPM flags
    f.resize(FACS_LEN, 0);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fadt_field_offsets() {
        let t = fadt(0xE0040, 0xE0080);
        assert_eq!(t.len(), FADT_LEN);
        let u32_at = |o: usize| u32::from_le_bytes(t[o..o + 4].try_into().unwrap());
        assert_eq!(u32_at(offset::FIRMWARE_CTRL), 0xE0040);
        assert_eq!(u32_at(offset::DSDT), 0xE0080);
        assert_eq!(u32_at(offset::PM1A_CNT_BLK), u32::from(pc::ACPI_PM1A_CNT_BLK));
        assert_eq!(t[offset::MINOR_VERSION], FADT_MINOR_REVISION);
        assert_eq!(t[offset::RESET_VALUE], RESET_VALUE);
        assert_eq!(u32_at(offset::X_DSDT), 0xE0080);
    }
}
