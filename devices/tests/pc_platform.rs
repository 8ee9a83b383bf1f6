//! The legacy PC devices on one port bus at their `pc` addresses, wired the way the machine
//! wires them: IRQ lines are values read from one device and given to the PIC.

use hvsim_devices::pc::*;
use hvsim_devices::{DebugExit, FwCfg, Pic, Pit, PortA, PortBus, PostPort, Rtc, Uart16550, I8042};

fn pc_bus() -> PortBus {
    let mut bus = PortBus::new();
    bus.add_ranges(
        &[
            (PIC_MASTER_PORT, PIC_MASTER_PORT + 1),
            (PIC_SLAVE_PORT, PIC_SLAVE_PORT + 1),
            (ELCR_PORT, ELCR_PORT + 1),
        ],
        Box::new(Pic::new()),
    )
    .unwrap();
    bus.add_ranges(&[(PIT_PORT, PIT_PORT + 3), (PORT_B, PORT_B)], Box::new(Pit::new())).unwrap();
    bus.add_ranges(
        &[(I8042_DATA_PORT, I8042_DATA_PORT), (I8042_CMD_PORT, I8042_CMD_PORT)],
        Box::new(I8042::new()),
    )
    .unwrap();
    bus.add(CMOS_PORT, CMOS_PORT + 1, Box::new(Rtc::new(256 << 20, 2))).unwrap();
    bus.add(PORT_A, PORT_A, Box::new(PortA::new())).unwrap();
    bus.add(POST_PORT, POST_PORT, Box::new(PostPort::default())).unwrap();
    bus.add(COM1_PORT, COM1_PORT + 7, Box::new(Uart16550::new(COM1_PORT))).unwrap();
    bus.add(FW_CFG_PORT_SEL, FW_CFG_PORT_DATA, Box::new(FwCfg::new(256 << 20, 2))).unwrap();
    bus.add(DEBUG_EXIT_PORT, DEBUG_EXIT_PORT, Box::new(DebugExit::default())).unwrap();
    bus
}

/// The BIOS's PIC setup: vectors 0x08 and 0x70, cascade on IR2, 8086 mode.
fn init_pic(bus: &mut PortBus) {
    for (port, bytes) in
        [(PIC_MASTER_PORT, [0x11u8, 0x08, 0x04, 0x01]), (PIC_SLAVE_PORT, [0x11, 0x70, 0x02, 0x01])]
    {
        bus.write(port, 1, u32::from(bytes[0]));
        for &b in &bytes[1..] {
            bus.write(port + 1, 1, u32::from(b));
        }
    }
}

// The PIT's channel 0 at the BIOS's 18.2 Hz drives IRQ 0 through the PIC to vector 0x08.
#[test]
fn pit_irq0_reaches_the_cpu_through_the_pic() {
    let mut bus = pc_bus();
    init_pic(&mut bus);
    bus.write(PIT_PORT + 3, 1, 0x36); // channel 0, LSB/MSB, mode 3
    bus.write(PIT_PORT, 1, 0);
    bus.write(PIT_PORT, 1, 0); // 65536: 18.2 Hz
    let mut interrupts = 0;
    let mut now = 0;
    for _ in 0..100 {
        let pit = bus.device_mut::<Pit>().unwrap();
        now = pit.next_event_ns().expect("mode 3 runs forever");
        pit.advance(now);
        let edges = pit.take_irq0_edges();
        let pic = bus.device_mut::<Pic>().unwrap();
        for _ in 0..edges {
            pic.set_irq(PIT_IRQ, true);
            pic.set_irq(PIT_IRQ, false);
        }
        if pic.intr() {
            assert_eq!(pic.acknowledge(), 0x08);
            interrupts += 1;
            bus.write(PIC_MASTER_PORT, 1, 0x20);
        }
    }
    // 100 OUT changes are 50 periods of 65536 clocks.
    assert_eq!(interrupts, 50);
    let expected_ns = (50 * 65536 * 1_000_000_000u64).div_ceil(PIT_HZ);
    assert!(now.abs_diff(expected_ns) <= 1_000, "{now} vs {expected_ns}");
}

// The RTC's update-ended interrupt arrives on IRQ 8 through the slave PIC.
#[test]
fn rtc_irq8_through_the_slave() {
    let mut bus = pc_bus();
    init_pic(&mut bus);
    bus.write(CMOS_PORT, 1, 0x0B);
    bus.write(CMOS_PORT + 1, 1, 0x12); // UIE, 24-hour, BCD
    let rtc = bus.device_mut::<Rtc>().unwrap();
    let next = rtc.next_event_ns().unwrap();
    assert_eq!(next, 1_000_000_000);
    rtc.advance(next);
    let level = rtc.irq_level();
    assert!(level);
    let pic = bus.device_mut::<Pic>().unwrap();
    pic.set_irq(RTC_IRQ, level);
    assert!(pic.intr());
    assert_eq!(pic.acknowledge(), 0x70);
    bus.write(CMOS_PORT, 1, 0x0C);
    // IRQF and UF (PF is set too at the default 1024 Hz rate, but PIE is off).
    assert_eq!(bus.read(CMOS_PORT + 1, 1) & 0xB0, 0x90);
    assert!(!bus.device::<Rtc>().unwrap().irq_level());
}

// A20 is the i8042's gate OR port 0x92's: the machine combines two values.
#[test]
fn a20_from_two_sources() {
    let mut bus = pc_bus();
    let a20 = |bus: &PortBus| {
        bus.device::<I8042>().unwrap().a20() || bus.device::<PortA>().unwrap().a20()
    };
    assert!(a20(&bus));
    bus.write(I8042_CMD_PORT, 1, 0xDD);
    assert!(!a20(&bus));
    bus.write(PORT_A, 1, 0x02);
    assert!(a20(&bus));
    bus.write(I8042_CMD_PORT, 1, 0xFE);
    assert!(bus.device_mut::<I8042>().unwrap().take_reset());
}

// Serial output and fw_cfg through the bus.
#[test]
fn uart_and_fw_cfg_on_the_bus() {
    let mut bus = pc_bus();
    for &b in b"ok" {
        bus.write(COM1_PORT, 1, u32::from(b));
    }
    assert_eq!(bus.device_mut::<Uart16550>().unwrap().take_output(), b"ok");
    bus.write(FW_CFG_PORT_SEL, 2, 0);
    let sig: Vec<u8> = (0..4).map(|_| bus.read(FW_CFG_PORT_DATA, 1) as u8).collect();
    assert_eq!(sig, b"QEMU");
    bus.write(POST_PORT, 1, 0x42);
    assert_eq!(bus.read(POST_PORT, 1), 0x42);
}
