//! The PC's fixed map: I/O ports, ISA interrupt lines and physical addresses of the
//! platform hvsim builds (modelled on QEMU's `pc` machine, i440FX + PIIX, so that test
//! kernels written for it run unchanged). Declared once; devices, firmware tables (ACPI,
//! MP, E820) and tests use these names.

/// First port of COM1 (16550A, eight registers).
pub const COM1_PORT: u16 = 0x3F8;
/// ISA IRQ of COM1.
pub const COM1_IRQ: u8 = 4;
/// First port of COM2.
pub const COM2_PORT: u16 = 0x2F8;
/// ISA IRQ of COM2.
pub const COM2_IRQ: u8 = 3;

/// Master i8259A command/data ports.
pub const PIC_MASTER_PORT: u16 = 0x20;
/// Slave i8259A command/data ports.
pub const PIC_SLAVE_PORT: u16 = 0xA0;
/// ELCR (edge/level control) for IRQ 0-7 and 8-15: 0x4D0, 0x4D1.
pub const ELCR_PORT: u16 = 0x4D0;
/// The master's input that the slave cascades into.
pub const PIC_CASCADE_IRQ: u8 = 2;

/// i8254 PIT channel 0-2 counters at 0x40-0x42, the mode/command register at 0x43.
pub const PIT_PORT: u16 = 0x40;
/// ISA IRQ of PIT channel 0.
pub const PIT_IRQ: u8 = 0;
/// The PIT's input clock, in Hz.
pub const PIT_HZ: u64 = 1_193_182;
/// System control port B (PIT channel 2 gate, speaker, refresh and OUT2 status).
pub const PORT_B: u16 = 0x61;

/// MC146818 RTC/CMOS index and data ports (0x70, 0x71).
pub const CMOS_PORT: u16 = 0x70;
/// ISA IRQ of the RTC.
pub const RTC_IRQ: u8 = 8;

/// i8042 keyboard controller data port.
pub const I8042_DATA_PORT: u16 = 0x60;
/// i8042 keyboard controller status/command port.
pub const I8042_CMD_PORT: u16 = 0x64;
/// ISA IRQ of the keyboard.
pub const KBD_IRQ: u8 = 1;
/// ISA IRQ of the i8042's auxiliary (PS/2 mouse) port.
pub const AUX_IRQ: u8 = 12;

/// System control port A: fast A20 (bit 1) and fast reset (bit 0).
pub const PORT_A: u16 = 0x92;
/// POST diagnostic port.
pub const POST_PORT: u16 = 0x80;
/// QEMU's isa-debug-exit port (iobase 0xF4, iosize 4 in QEMU's usual configuration).
pub const DEBUG_EXIT_PORT: u16 = 0xF4;

/// QEMU fw_cfg selector port (16-bit).
pub const FW_CFG_PORT_SEL: u16 = 0x510;
/// QEMU fw_cfg data port (8-bit).
pub const FW_CFG_PORT_DATA: u16 = 0x511;

/// PCI configuration mechanism #1: address port 0xCF8, data ports 0xCFC-0xCFF.
pub const PCI_CONFIG_ADDRESS: u16 = 0xCF8;
/// PCI configuration mechanism #1 data port.
pub const PCI_CONFIG_DATA: u16 = 0xCFC;
/// PIIX3 reset control register (byte port inside the CONFIG_ADDRESS dword).
pub const RESET_CONTROL_PORT: u16 = 0xCF9;

/// ACPI PM I/O block base (PIIX4 PM in QEMU: PM1a_EVT_BLK at +0, PM1a_CNT_BLK at +4,
/// PM_TMR_BLK at +8).
pub const ACPI_PM_BASE: u16 = 0x600;
/// PM1a event block (status at +0, enable at +2), 4 bytes.
pub const ACPI_PM1A_EVT_BLK: u16 = ACPI_PM_BASE;
/// PM1a control block (SCI_EN, SLP_TYP bits 12:10, SLP_EN bit 13), 2 bytes.
pub const ACPI_PM1A_CNT_BLK: u16 = ACPI_PM_BASE + 4;
/// ACPI PM timer (3.579545 MHz, 24-bit), 4 bytes.
pub const ACPI_PM_TMR_BLK: u16 = ACPI_PM_BASE + 8;
/// Length of the PIIX4 PM I/O block (PMBA decodes 64 bytes).
pub const ACPI_PM_BLOCK_LEN: u16 = 0x40;
/// The ACPI PM timer's frequency, in Hz (ACPI spec 4.8.3.3 "Power Management Timer").
pub const ACPI_PM_TIMER_HZ: u64 = 3_579_545;
/// The SLP_TYP value of S5 (soft off) that hvsim's DSDT `_S5` package names.
pub const ACPI_S5_SLP_TYP: u16 = 0;
/// SCI interrupt (ISA IRQ 9, level, active high, as on PIIX4).
pub const ACPI_SCI_IRQ: u8 = 9;

/// hvsim's firmware call port: the built-in BIOS's interrupt handlers write their vector
/// here and the machine performs the service in Rust. Not a port of any real PC device.
pub const BIOS_CALL_PORT: u16 = 0x0EB0;

/// Local APIC MMIO base (IA32_APIC_BASE reset value's base).
pub const LAPIC_BASE: u64 = 0xFEE0_0000;
/// IOAPIC MMIO base.
pub const IOAPIC_BASE: u64 = 0xFEC0_0000;
/// IOAPIC ID (after the vCPUs' APIC IDs 0..N-1 in the MADT/MP table, QEMU uses N; hvsim
/// uses a fixed value well above any vCPU count it supports).
pub const IOAPIC_ID: u8 = 0xF0;
/// Number of IOAPIC redirection entries.
pub const IOAPIC_PINS: u8 = 24;
/// The IOAPIC pin that ISA IRQ 0 (PIT) is wired to (MADT interrupt source override).
pub const IOAPIC_PIT_PIN: u8 = 2;

/// Real-mode interrupt vector table.
pub const IVT_BASE: u64 = 0x0;
/// BIOS data area.
pub const BDA_BASE: u64 = 0x400;
/// Extended BIOS data area (1 KiB just below 640 KiB).
pub const EBDA_BASE: u64 = 0x9_FC00;
/// Size of the EBDA.
pub const EBDA_SIZE: u64 = 0x400;
/// Legacy VGA window (a hole in RAM).
pub const VGA_BASE: u64 = 0xA_0000;
/// End of the VGA window; option ROM area starts here.
pub const VGA_END: u64 = 0xC_0000;
/// Firmware table area (RSDP, ACPI tables, MP floating pointer and table), reserved in E820.
pub const FW_TABLES_BASE: u64 = 0xE_0000;
/// Size of the firmware table area.
pub const FW_TABLES_SIZE: u64 = 0x1_0000;
/// The BIOS ROM (64 KiB, also aliased below 4 GiB).
pub const BIOS_BASE: u64 = 0xF_0000;
/// Size of the BIOS ROM.
pub const BIOS_SIZE: u64 = 0x1_0000;
/// The alias of the BIOS ROM at the top of 4 GiB (reset vector at 0xFFFF_FFF0).
pub const BIOS_HIGH_BASE: u64 = 0xFFFF_0000;
/// Start of extended memory.
pub const HIGH_MEMORY: u64 = 0x10_0000;
/// RAM above this (the 32-bit PCI hole up to 4 GiB) is placed above 4 GiB.
pub const PCI_HOLE_START: u64 = 0xC000_0000;
