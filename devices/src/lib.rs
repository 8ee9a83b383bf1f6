//! hvsim's devices: the port-I/O bus and the PC devices.
//!
//! Devices are deterministic state machines: they see only the accesses the guest makes
//! and the virtual time the machine gives them (nanoseconds derived from retired
//! instructions), never host time or host threads. Each legacy device is one file and one
//! [`PortDevice`]:
//!
//! | Device | Ports | IRQ | Machine-facing API |
//! |---|---|---|---|
//! | [`pic::Pic`] (i8259A pair + ELCR) | 0x20-0x21, 0xA0-0xA1, 0x4D0-0x4D1 | - | `set_irq`, `intr`, `acknowledge` |
//! | [`pit::Pit`] (i8254 + port B) | 0x40-0x43, 0x61 | 0 | `advance`, `next_event_ns`, `irq0_level`, `take_irq0_edges` |
//! | [`rtc::Rtc`] (MC146818 + NVRAM) | 0x70-0x71 | 8 | `advance`, `next_event_ns`, `irq_level`, `nmi_disabled` |
//! | [`uart16550::Uart16550`] | 0x3F8-0x3FF, 0x2F8-0x2FF | 4, 3 | `receive`, `can_receive`, `take_output`, `irq_level` |
//! | [`i8042::I8042`] (+ PS/2 keyboard) | 0x60, 0x64 | 1 | `key`, `irq1_level`, `a20`, `take_reset` |
//! | [`ide::IdeChannel`] (PIIX3 IDE, PIO) | 0x1F0-0x1F7 + 0x3F6, 0x170-0x177 + 0x376 | 14, 15 | `attach`, `irq_level` |
//! | [`port92::PortA`] | 0x92 | - | `a20`, `take_reset` |
//! | [`post::PostPort`] | 0x80 | - | `last` |
//! | [`fw_cfg::FwCfg`] | 0x510-0x511 | - | `set_cmdline`, `add_file`, `set_item` |
//! | [`debug_exit::DebugExit`] | 0xF4 | - | `take` |
//! | [`debugcon::DebugCon`] | 0x402 | - | `take_output` |
//!
//! Devices with split port ranges are added with [`PortBus::add_ranges`]. Devices never
//! call each other: interrupt lines, the A20 gate (the i8042's OR port 0x92's) and reset
//! requests are values the machine reads and routes. Timed devices compute their state at
//! the time of their last `advance`, so the machine advances them before it delivers a port
//! access and when their `next_event_ns` comes.
// `unsafe` is denied everywhere but `disk_image`, which maps image files (see its
// UNSAFETY note).
#![deny(unsafe_code)]

pub mod acpi_pm;
pub mod bus;
pub mod debug_exit;
pub mod debugcon;
pub mod disk_image;
pub mod fw_cfg;
pub mod i8042;
pub mod ide;
pub mod interrupt;
pub mod ioapic;
pub mod lapic;
pub mod mmio;
pub mod pc;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod platform;
pub mod port92;
pub mod post;
pub mod rtc;
pub mod serde_array;
pub mod serial;
pub mod uart16550;

pub use bus::{PortBus, PortDevice};
pub use debug_exit::DebugExit;
pub use disk_image::DiskImage;
pub use fw_cfg::FwCfg;
pub use i8042::I8042;
pub use pic::Pic;
pub use pit::Pit;
pub use port92::PortA;
pub use post::PostPort;
pub use rtc::Rtc;
pub use serial::SerialConsole;
pub use uart16550::Uart16550;
