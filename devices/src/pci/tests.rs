//! Configuration mechanism #1 and the chipset functions (PCI Local Bus Specification 3.0
//! 3.2.2.3.2 and 6.1 "Configuration Space Organization").

use super::*;
use crate::pc::{PCI_CONFIG_ADDRESS as CF8, PCI_CONFIG_DATA as CFC};
use proptest::prelude::*;

fn address(bdf: Bdf, offset: u8) -> u32 {
    CONFIG_ENABLE
        | (u32::from(bdf.bus) << 16)
        | (u32::from(bdf.device) << 11)
        | (u32::from(bdf.function) << 8)
        | u32::from(offset & 0xFC)
}

fn cfg_read(host: &mut PciHost, bdf: Bdf, offset: u8, size: u8) -> u32 {
    host.write(CF8, 4, address(bdf, offset));
    host.read(CFC + u16::from(offset & 3), size)
}

fn cfg_write(host: &mut PciHost, bdf: Bdf, offset: u8, size: u8, value: u32) {
    host.write(CF8, 4, address(bdf, offset));
    host.write(CFC + u16::from(offset & 3), size, value);
}

#[test]
fn config_address_holds_enable_bus_device_function_register() {
    let mut host = PciHost::pc();
    host.write(CF8, 4, 0xFFFF_FFFF);
    assert_eq!(host.read(CF8, 4), 0x80FF_FFFC, "bits 30:24 reserved, 1:0 read 0");
    host.write(CF8, 1, 0);
    host.write(CF8 + 1, 2, 0);
    assert_eq!(host.read(CF8, 4), 0x80FF_FFFC, "only dword accesses reach CONFIG_ADDRESS");
    assert_eq!(host.read(CF8, 1), 0xFF);
}

#[test]
fn reset_control_register_requests_a_reset() {
    // 82371SB RC register at 0xCF9: RCPU resets; SRST is kept; a byte port inside the
    // CONFIG_ADDRESS dword.
    let mut host = PciHost::pc();
    host.write(CF8, 4, 0x8000_0000);
    host.write(crate::pc::RESET_CONTROL_PORT, 1, u32::from(RC_SYSTEM_RESET));
    assert!(!host.take_reset_request());
    assert_eq!(host.read(crate::pc::RESET_CONTROL_PORT, 1), u32::from(RC_SYSTEM_RESET));
    assert_eq!(host.read(CF8, 4), 0x8000_0000, "CONFIG_ADDRESS untouched");
    host.write(crate::pc::RESET_CONTROL_PORT, 1, u32::from(RC_SYSTEM_RESET | RC_RESET_CPU));
    assert!(host.take_reset_request());
    assert!(!host.take_reset_request(), "taken");
}

#[test]
fn host_bridge_identity() {
    let mut host = PciHost::pc();
    let b = HostBridge::BDF;
    assert_eq!(cfg_read(&mut host, b, 0x00, 4), 0x1237_8086);
    assert_eq!(cfg_read(&mut host, b, 0x04, 4), 0x0280_0006, "status:command");
    assert_eq!(cfg_read(&mut host, b, 0x08, 4), 0x0600_0002, "class 06/00/00, rev 2");
    assert_eq!(cfg_read(&mut host, b, HEADER_TYPE, 1), 0x00);
}

#[test]
fn isa_bridge_identity_and_pirq_routing() {
    let mut host = PciHost::pc();
    let b = IsaBridge::BDF;
    assert_eq!(cfg_read(&mut host, b, 0x00, 4), 0x7000_8086);
    assert_eq!(cfg_read(&mut host, b, 0x08, 4) >> 8, 0x06_0100);
    assert_eq!(cfg_read(&mut host, b, HEADER_TYPE, 1), 0x80, "multi-function");
    assert_eq!(cfg_read(&mut host, b, piix::PIRQRC, 4), 0x8080_8080);
    cfg_write(&mut host, b, piix::PIRQRC, 4, 0x0D0B_FF0A);
    assert_eq!(cfg_read(&mut host, b, piix::PIRQRC, 4), 0x0D0B_8F0A, "bits 6:4 read-only");
    let isa = host.function::<IsaBridge>().unwrap();
    assert_eq!(isa.pirq_route(0), Some(10));
    assert_eq!(isa.pirq_route(1), None, "disabled");
    assert_eq!(isa.pirq_route(2), Some(11));
    assert_eq!(isa.pirq_route(3), None, "IRQ 13 is reserved");
}

#[test]
fn pm_function_identity_and_pmba() {
    let mut host = PciHost::pc();
    let b = PmFunction::BDF;
    assert_eq!(cfg_read(&mut host, b, 0x00, 4), 0x7113_8086);
    assert_eq!(cfg_read(&mut host, b, 0x08, 4), 0x0680_0003);
    assert_eq!(cfg_read(&mut host, b, piix::PMBA, 4), 0x0601);
    assert_eq!(host.function::<PmFunction>().unwrap().pm_base(), Some(crate::pc::ACPI_PM_BASE));
    cfg_write(&mut host, b, piix::PMBA, 4, 0xFFFF_B03E);
    assert_eq!(cfg_read(&mut host, b, piix::PMBA, 4), 0xB001, "base bits 15:6; bit 0 fixed");
    cfg_write(&mut host, b, piix::PMREGMISC, 1, 0);
    assert_eq!(host.function::<PmFunction>().unwrap().pm_base(), None);
}

#[test]
fn absent_functions_and_disabled_cycles_read_all_ones() {
    let mut host = PciHost::pc();
    assert_eq!(cfg_read(&mut host, Bdf::new(0, 2, 0), 0, 4), 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut host, Bdf::new(0, 0, 1), 0, 4), 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut host, Bdf::new(1, 0, 0), 0, 4), 0xFFFF_FFFF, "no bus 1");
    assert_eq!(cfg_read(&mut host, Bdf::new(0, 2, 0), 0, 2), 0xFFFF);
    cfg_write(&mut host, Bdf::new(0, 2, 0), 0x3C, 1, 5);
    host.write(CF8, 4, 0x0000_0000);
    assert_eq!(host.read(CFC, 4), 0xFFFF_FFFF, "enable bit clear");
}

#[test]
fn byte_and_word_access_at_the_offset_low_bits() {
    // 0xCFC + n reaches register byte n of the dword CONFIG_ADDRESS selects.
    let mut host = PciHost::pc();
    host.write(CF8, 4, address(HostBridge::BDF, 0));
    assert_eq!(host.read(CFC + 2, 1), 0x37);
    assert_eq!(host.read(CFC + 3, 1), 0x12);
    assert_eq!(host.read(CFC + 2, 2), 0x1237);
    assert_eq!(host.read(CFC + 1, 1), 0x80);
    host.write(CF8, 4, address(IsaBridge::BDF, piix::PIRQRC));
    host.write(CFC + 2, 1, 0x05);
    assert_eq!(host.read(CFC, 4), 0x8005_8080);
}

#[test]
fn read_only_and_write_one_to_clear_bits() {
    let mut host = PciHost::pc();
    let b = HostBridge::BDF;
    cfg_write(&mut host, b, 0, 4, 0);
    assert_eq!(cfg_read(&mut host, b, 0, 4), 0x1237_8086, "IDs are read-only");
    host.function_mut::<HostBridge>().unwrap().config_mut().set_u16(STATUS, 0x8280);
    cfg_write(&mut host, b, STATUS, 2, 0x8000);
    assert_eq!(cfg_read(&mut host, b, STATUS, 2), 0x0280, "detected parity error cleared");
    cfg_write(&mut host, b, piix::PMBA, 4, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut host, b, 0x40, 4), 0);
    cfg_write(&mut host, b, i440fx::PAM0, 1, 0xFF);
    assert_eq!(host.function::<HostBridge>().unwrap().pam(0), Some(0x30));
}

#[test]
fn duplicate_and_bad_addresses_are_refused() {
    let mut host = PciHost::pc();
    assert_eq!(
        host.add(HostBridge::BDF, Box::new(HostBridge::new())),
        Err(PciError::Occupied(HostBridge::BDF))
    );
    assert!(host.add(Bdf::new(0, 32, 0), Box::new(HostBridge::new())).is_err());
    assert!(host.add(Bdf::new(1, 0, 0), Box::new(HostBridge::new())).is_err());
}

proptest! {
    #[test]
    fn random_port_traffic_never_panics(ops in proptest::collection::vec((0u16..8, 0u8..3, any::<u32>(), any::<bool>()), 1..300)) {
        let mut host = PciHost::pc();
        for (port, size, value, write) in ops {
            let size = [1, 2, 4][usize::from(size)];
            if write {
                host.write(CF8 + port, size, value);
            } else {
                let v = host.read(CF8 + port, size);
                prop_assert!(size == 4 || v >> (8 * u32::from(size)) == 0);
            }
        }
        let pm = host.function::<PmFunction>().unwrap();
        if let Some(base) = pm.pm_base() {
            prop_assert_eq!(base & 0x3F, 0);
        }
    }
}
