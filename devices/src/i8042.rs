//! The i8042 keyboard controller (data port 0x60, status/command port 0x64) with a PS/2
//! keyboard on its first port (IRQ 1). No mouse is attached to the auxiliary port.
//!
//! Follows the IBM PC AT Technical Reference's keyboard controller description: status
//! register (OBF, IBF, SYS, A2, INH, AUXB, timeouts), command byte (0x20/0x60), self-test
//! 0xAA -> 0x55, interface tests 0xAB/0xA9, keyboard interface disable/enable 0xAD/0xAE,
//! auxiliary disable/enable 0xA7/0xA8, output port read/write 0xD0/0xD1 (bit 0 system reset,
//! active low; bit 1 A20 gate), 0xD2 (write keyboard output buffer), 0xDD/0xDF (A20 off/on),
//! and the pulse command 0xF0-0xFF (0xFE pulses reset). The keyboard answers 0xFF (reset:
//! 0xFA 0xAA), 0xF4/0xF5/0xF6, 0xEE echo, 0xED set LEDs, 0xF3 typematic, 0xF2 identify and
//! 0xF0 scan code set; anything else gets 0xFE (resend).
//!
//! The controller's output buffer holds one byte; the keyboard queues up to
//! [`KBD_QUEUE`] bytes behind it (while the interface is disabled too). Scan codes given to
//! [`I8042::key`] reach the guest as given: the machine supplies set 1 codes, which is
//! what the guest sees with translation on (command byte bit 6, the PC default).
//!
//! The A20 gate ([`I8042::a20`]) and reset requests ([`I8042::take_reset`]) are values the
//! machine reads; port 0x92 has its own (see [`crate::port92`]).

use crate::bus::PortDevice;
use crate::pc::{I8042_CMD_PORT, I8042_DATA_PORT};
use std::any::Any;
use std::collections::VecDeque;

/// Status: output buffer full.
pub const STATUS_OBF: u8 = 1 << 0;
/// Status: input buffer full (always 0: commands are taken at once).
pub const STATUS_IBF: u8 = 1 << 1;
/// Status: system flag (command byte bit 2, set by a passed self-test).
pub const STATUS_SYS: u8 = 1 << 2;
/// Status: the last write was to the command port (A2).
pub const STATUS_A2: u8 = 1 << 3;
/// Status: keyboard not inhibited (the keylock is open).
pub const STATUS_UNLOCKED: u8 = 1 << 4;
/// Status: the output buffer holds auxiliary-device data.
pub const STATUS_AUXB: u8 = 1 << 5;

/// Command byte: keyboard interrupt (IRQ 1) enable.
pub const CB_KBD_INT: u8 = 1 << 0;
/// Command byte: auxiliary interrupt (IRQ 12) enable.
pub const CB_AUX_INT: u8 = 1 << 1;
/// Command byte: system flag.
pub const CB_SYS: u8 = 1 << 2;
/// Command byte: keyboard interface disabled.
pub const CB_KBD_DISABLED: u8 = 1 << 4;
/// Command byte: auxiliary interface disabled.
pub const CB_AUX_DISABLED: u8 = 1 << 5;
/// Command byte: translate keyboard scan codes to set 1.
pub const CB_TRANSLATE: u8 = 1 << 6;

/// Output port: system reset (active low).
pub const OUT_RESET: u8 = 1 << 0;
/// Output port: A20 gate.
pub const OUT_A20: u8 = 1 << 1;
/// Output port: keyboard output buffer full (IRQ 1).
const OUT_KBD_OBF: u8 = 1 << 4;
/// Output port: auxiliary output buffer full (IRQ 12).
const OUT_AUX_OBF: u8 = 1 << 5;
/// Output port: keyboard clock and data lines (idle high).
const OUT_KBD_LINES: u8 = 0xC0;

/// Controller commands (written to port 0x64).
pub mod command {
    /// Read the command byte.
    pub const READ_COMMAND_BYTE: u8 = 0x20;
    /// Write the command byte (next data byte).
    pub const WRITE_COMMAND_BYTE: u8 = 0x60;
    /// Disable the auxiliary interface.
    pub const DISABLE_AUX: u8 = 0xA7;
    /// Enable the auxiliary interface.
    pub const ENABLE_AUX: u8 = 0xA8;
    /// Auxiliary interface test.
    pub const TEST_AUX: u8 = 0xA9;
    /// Controller self-test.
    pub const SELF_TEST: u8 = 0xAA;
    /// Keyboard interface test.
    pub const TEST_KBD: u8 = 0xAB;
    /// Disable the keyboard interface.
    pub const DISABLE_KBD: u8 = 0xAD;
    /// Enable the keyboard interface.
    pub const ENABLE_KBD: u8 = 0xAE;
    /// Read the input port.
    pub const READ_INPUT_PORT: u8 = 0xC0;
    /// Read the output port.
    pub const READ_OUTPUT_PORT: u8 = 0xD0;
    /// Write the output port (next data byte).
    pub const WRITE_OUTPUT_PORT: u8 = 0xD1;
    /// Write the keyboard output buffer (next data byte).
    pub const WRITE_KBD_OUTPUT: u8 = 0xD2;
    /// Write the auxiliary output buffer (next data byte).
    pub const WRITE_AUX_OUTPUT: u8 = 0xD3;
    /// Write to the auxiliary device (next data byte).
    pub const WRITE_AUX: u8 = 0xD4;
    /// Disable A20 (HP Vectra extension).
    pub const DISABLE_A20: u8 = 0xDD;
    /// Enable A20 (HP Vectra extension).
    pub const ENABLE_A20: u8 = 0xDF;
    /// Read test inputs.
    pub const READ_TEST_INPUTS: u8 = 0xE0;
    /// First pulse-output command (bits 3:0 low = pulse those lines).
    pub const PULSE_FIRST: u8 = 0xF0;
    /// Pulse the reset line.
    pub const PULSE_RESET: u8 = 0xFE;
}

/// Keyboard commands and replies.
pub mod kbd {
    /// Set LEDs (next byte).
    pub const SET_LEDS: u8 = 0xED;
    /// Echo.
    pub const ECHO: u8 = 0xEE;
    /// Get/set scan code set (next byte).
    pub const SCANCODE_SET: u8 = 0xF0;
    /// Identify.
    pub const IDENTIFY: u8 = 0xF2;
    /// Set typematic rate and delay (next byte).
    pub const SET_TYPEMATIC: u8 = 0xF3;
    /// Enable scanning.
    pub const ENABLE: u8 = 0xF4;
    /// Disable scanning and set defaults.
    pub const DISABLE: u8 = 0xF5;
    /// Set defaults.
    pub const SET_DEFAULTS: u8 = 0xF6;
    /// Reset and self-test.
    pub const RESET: u8 = 0xFF;
    /// Reply: acknowledge.
    pub const ACK: u8 = 0xFA;
    /// Reply: self-test passed.
    pub const BAT_OK: u8 = 0xAA;
    /// Reply: resend.
    pub const RESEND: u8 = 0xFE;
    /// Identify reply: MF2 keyboard.
    pub const ID_MF2: u8 = 0xAB;
    /// Identify reply second byte with translation.
    pub const ID_TRANSLATED: u8 = 0x41;
    /// Identify reply second byte without translation.
    pub const ID_UNTRANSLATED: u8 = 0x83;
}

/// Controller self-test pass.
pub const SELF_TEST_OK: u8 = 0x55;
/// Interface test pass.
pub const INTERFACE_OK: u8 = 0x00;
/// The keyboard's own buffer.
pub const KBD_QUEUE: usize = 16;

/// Where the next data-port write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
enum DataTarget {
    /// A keyboard command or its parameter.
    #[default]
    Keyboard,
    CommandByte,
    OutputPort,
    KbdOutput,
    AuxOutput,
    Aux,
}

/// A keyboard command waiting for its parameter byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum KbdParam {
    Leds,
    Typematic,
    ScancodeSet,
}

/// The controller and its keyboard.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct I8042 {
    command_byte: u8,
    output_port: u8,
    status_a2: bool,
    /// The output buffer: a byte, and whether it came from the auxiliary port.
    obf: Option<(u8, bool)>,
    /// Controller replies waiting for the output buffer (ahead of keyboard data).
    replies: VecDeque<(u8, bool)>,
    /// The keyboard's queue.
    keyboard: VecDeque<u8>,
    target: DataTarget,
    kbd_param: Option<KbdParam>,
    scanning: bool,
    leds: u8,
    scancode_set: u8,
    reset_requested: bool,
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    /// The controller after the BIOS has run its POST: interrupts on, translation on,
    /// system flag set, A20 enabled (as QEMU starts it), the keyboard scanning.
    pub fn new() -> Self {
        Self {
            command_byte: CB_KBD_INT | CB_SYS | CB_TRANSLATE,
            output_port: OUT_RESET | OUT_A20 | OUT_KBD_LINES,
            status_a2: false,
            obf: None,
            replies: VecDeque::new(),
            keyboard: VecDeque::new(),
            target: DataTarget::Keyboard,
            kbd_param: None,
            scanning: true,
            leds: 0,
            scancode_set: 2,
            reset_requested: false,
        }
    }

    /// The A20 gate (output port bit 1).
    pub fn a20(&self) -> bool {
        self.output_port & OUT_A20 != 0
    }

    /// Whether the guest has asked for a system reset (0xFE, or the output port's reset
    /// bit written 0) that the machine has not taken yet.
    pub fn reset_requested(&self) -> bool {
        self.reset_requested
    }

    /// Takes the reset request: true once per request.
    pub fn take_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }

    /// The keyboard LEDs (bit 0 scroll, 1 num, 2 caps lock).
    pub fn leds(&self) -> u8 {
        self.leds
    }

    /// The command byte.
    pub fn command_byte(&self) -> u8 {
        self.command_byte
    }

    /// A scan code byte from the keyboard (dropped if the keyboard's buffer is full or
    /// it is not scanning).
    pub fn key(&mut self, scancode: u8) {
        if self.scanning && self.keyboard.len() < KBD_QUEUE {
            self.keyboard.push_back(scancode);
            self.refill();
        }
    }

    /// IRQ 1 ([`crate::pc::KBD_IRQ`]): keyboard data in the output buffer with the keyboard
    /// interrupt enabled.
    pub fn irq1_level(&self) -> bool {
        matches!(self.obf, Some((_, false))) && self.command_byte & CB_KBD_INT != 0
    }

    /// IRQ 12 ([`crate::pc::AUX_IRQ`]): auxiliary data in the output buffer with the
    /// auxiliary interrupt enabled.
    pub fn irq12_level(&self) -> bool {
        matches!(self.obf, Some((_, true))) && self.command_byte & CB_AUX_INT != 0
    }

    /// Moves the next byte into an empty output buffer: controller replies first, then
    /// the keyboard's data unless its interface is disabled.
    fn refill(&mut self) {
        if self.obf.is_some() {
            return;
        }
        if let Some(reply) = self.replies.pop_front() {
            self.obf = Some(reply);
        } else if self.command_byte & CB_KBD_DISABLED == 0 {
            self.obf = self.keyboard.pop_front().map(|b| (b, false));
        }
    }

    fn reply(&mut self, byte: u8) {
        self.replies.push_back((byte, false));
        self.refill();
    }

    fn keyboard_reply(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.keyboard.len() < KBD_QUEUE {
                self.keyboard.push_back(b);
            }
        }
        self.refill();
    }

    fn status(&self) -> u8 {
        let mut s = STATUS_UNLOCKED;
        if let Some((_, aux)) = self.obf {
            s |= STATUS_OBF;
            if aux {
                s |= STATUS_AUXB;
            }
        }
        if self.command_byte & CB_SYS != 0 {
            s |= STATUS_SYS;
        }
        if self.status_a2 {
            s |= STATUS_A2;
        }
        s
    }

    fn read_output_port(&self) -> u8 {
        let mut p = self.output_port;
        if self.irq1_level() {
            p |= OUT_KBD_OBF;
        }
        if self.irq12_level() {
            p |= OUT_AUX_OBF;
        }
        p
    }

    fn write_output_port(&mut self, value: u8) {
        self.output_port = value & (OUT_RESET | OUT_A20) | OUT_KBD_LINES;
        if value & OUT_RESET == 0 {
            self.reset_requested = true;
            self.output_port |= OUT_RESET; // the reset reinitializes the controller
        }
    }

    fn controller_command(&mut self, cmd: u8) {
        use command::*;
        match cmd {
            READ_COMMAND_BYTE => self.reply(self.command_byte),
            WRITE_COMMAND_BYTE => self.target = DataTarget::CommandByte,
            DISABLE_AUX => self.command_byte |= CB_AUX_DISABLED,
            ENABLE_AUX => self.command_byte &= !CB_AUX_DISABLED,
            TEST_AUX | TEST_KBD => self.reply(INTERFACE_OK),
            SELF_TEST => {
                self.command_byte |= CB_SYS;
                self.reply(SELF_TEST_OK);
            }
            DISABLE_KBD => self.command_byte |= CB_KBD_DISABLED,
            ENABLE_KBD => {
                self.command_byte &= !CB_KBD_DISABLED;
                self.refill();
            }
            READ_INPUT_PORT => self.reply(0x80), // keylock open
            READ_OUTPUT_PORT => self.reply(self.read_output_port()),
            WRITE_OUTPUT_PORT => self.target = DataTarget::OutputPort,
            WRITE_KBD_OUTPUT => self.target = DataTarget::KbdOutput,
            WRITE_AUX_OUTPUT => self.target = DataTarget::AuxOutput,
            WRITE_AUX => self.target = DataTarget::Aux,
            DISABLE_A20 => self.output_port &= !OUT_A20,
            ENABLE_A20 => self.output_port |= OUT_A20,
            READ_TEST_INPUTS => self.reply(0x00),
            PULSE_FIRST..=0xFF => {
                // Bits 3:0 are active low: a 0 in bit 0 pulses the reset line.
                if cmd & OUT_RESET == 0 {
                    self.reset_requested = true;
                }
            }
            _ => {}
        }
    }

    fn keyboard_command(&mut self, byte: u8) {
        use kbd::*;
        if let Some(param) = self.kbd_param.take() {
            match param {
                KbdParam::Leds => self.leds = byte & 7,
                KbdParam::Typematic => {}
                KbdParam::ScancodeSet if byte == 0 => {
                    self.keyboard_reply(&[ACK, self.scancode_set]);
                    return;
                }
                KbdParam::ScancodeSet if (1..=3).contains(&byte) => self.scancode_set = byte,
                KbdParam::ScancodeSet => {
                    self.keyboard_reply(&[RESEND]);
                    return;
                }
            }
            self.keyboard_reply(&[ACK]);
            return;
        }
        match byte {
            RESET => {
                self.keyboard.clear();
                self.scanning = true;
                self.leds = 0;
                self.scancode_set = 2;
                self.keyboard_reply(&[ACK, BAT_OK]);
            }
            ENABLE => {
                self.scanning = true;
                self.keyboard_reply(&[ACK]);
            }
            DISABLE | SET_DEFAULTS => {
                self.scanning = byte == SET_DEFAULTS;
                self.scancode_set = 2;
                self.keyboard.clear();
                self.keyboard_reply(&[ACK]);
            }
            ECHO => self.keyboard_reply(&[ECHO]),
            IDENTIFY => {
                let id2 = if self.command_byte & CB_TRANSLATE != 0 {
                    ID_TRANSLATED
                } else {
                    ID_UNTRANSLATED
                };
                self.keyboard_reply(&[ACK, ID_MF2, id2]);
            }
            SET_LEDS => {
                self.kbd_param = Some(KbdParam::Leds);
                self.keyboard_reply(&[ACK]);
            }
            SET_TYPEMATIC => {
                self.kbd_param = Some(KbdParam::Typematic);
                self.keyboard_reply(&[ACK]);
            }
            SCANCODE_SET => {
                self.kbd_param = Some(KbdParam::ScancodeSet);
                self.keyboard_reply(&[ACK]);
            }
            _ => self.keyboard_reply(&[RESEND]),
        }
    }

    fn write_data(&mut self, byte: u8) {
        match std::mem::take(&mut self.target) {
            DataTarget::Keyboard => {
                // Sending to the keyboard re-enables its interface.
                self.command_byte &= !CB_KBD_DISABLED;
                self.keyboard_command(byte);
            }
            DataTarget::CommandByte => {
                self.command_byte = byte;
                self.refill();
            }
            DataTarget::OutputPort => self.write_output_port(byte),
            DataTarget::KbdOutput => self.reply(byte),
            DataTarget::AuxOutput => {
                self.replies.push_back((byte, true));
                self.refill();
            }
            DataTarget::Aux => {} // no auxiliary device: the byte goes nowhere
        }
    }
}

impl PortDevice for I8042 {
    fn read(&mut self, port: u16, _size: u8) -> u32 {
        u32::from(match port {
            I8042_DATA_PORT => match self.obf.take() {
                Some((b, _)) => {
                    self.refill();
                    b
                }
                None => 0, // an empty buffer reads its last contents on hardware; 0 here
            },
            I8042_CMD_PORT => self.status(),
            _ => 0xFF,
        })
    }

    fn write(&mut self, port: u16, _size: u8, value: u32) {
        let value = value as u8;
        match port {
            I8042_DATA_PORT => {
                self.status_a2 = false;
                self.write_data(value);
            }
            I8042_CMD_PORT => {
                self.status_a2 = true;
                self.target = DataTarget::Keyboard;
                self.controller_command(value);
            }
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: u16 = I8042_DATA_PORT;
    const CMD: u16 = I8042_CMD_PORT;

    fn status(k: &mut I8042) -> u8 {
        k.read(CMD, 1) as u8
    }

    fn drain(k: &mut I8042) -> Vec<u8> {
        let mut out = vec![];
        while status(k) & STATUS_OBF != 0 {
            out.push(k.read(DATA, 1) as u8);
        }
        out
    }

    #[test]
    fn self_test_and_interface_test() {
        let mut k = I8042::new();
        k.write(CMD, 1, u32::from(command::SELF_TEST));
        let s = status(&mut k);
        assert_eq!(s & (STATUS_OBF | STATUS_SYS | STATUS_A2), STATUS_OBF | STATUS_SYS | STATUS_A2);
        assert_eq!(k.read(DATA, 1), u32::from(SELF_TEST_OK));
        assert_eq!(status(&mut k) & STATUS_OBF, 0);
        k.write(CMD, 1, u32::from(command::TEST_KBD));
        assert_eq!(drain(&mut k), [INTERFACE_OK]);
    }

    #[test]
    fn command_byte_read_write() {
        let mut k = I8042::new();
        k.write(CMD, 1, u32::from(command::WRITE_COMMAND_BYTE));
        k.write(DATA, 1, 0x65);
        assert_eq!(status(&mut k) & STATUS_A2, 0, "last write was data");
        k.write(CMD, 1, u32::from(command::READ_COMMAND_BYTE));
        assert_eq!(drain(&mut k), [0x65]);
        k.write(CMD, 1, u32::from(command::DISABLE_KBD));
        k.write(CMD, 1, u32::from(command::READ_COMMAND_BYTE));
        assert_eq!(drain(&mut k), [0x65 | CB_KBD_DISABLED]);
    }

    // Output port: A20 gate (bit 1), reset (bit 0 low) and the 0xFE pulse.
    #[test]
    fn output_port_a20_and_reset() {
        let mut k = I8042::new();
        assert!(k.a20());
        k.write(CMD, 1, u32::from(command::WRITE_OUTPUT_PORT));
        k.write(DATA, 1, u32::from(OUT_RESET));
        assert!(!k.a20());
        assert!(!k.take_reset());
        k.write(CMD, 1, u32::from(command::READ_OUTPUT_PORT));
        assert_eq!(drain(&mut k)[0] & (OUT_A20 | OUT_RESET), OUT_RESET);
        k.write(CMD, 1, u32::from(command::ENABLE_A20));
        assert!(k.a20());
        k.write(CMD, 1, u32::from(command::WRITE_OUTPUT_PORT));
        k.write(DATA, 1, u32::from(OUT_A20));
        assert!(k.take_reset(), "bit 0 written 0 resets the system");
        assert!(!k.take_reset());
        k.write(CMD, 1, u32::from(command::PULSE_RESET));
        assert!(k.take_reset());
        k.write(CMD, 1, 0xFF); // pulse nothing
        assert!(!k.take_reset());
    }

    #[test]
    fn keyboard_commands() {
        let mut k = I8042::new();
        k.write(DATA, 1, u32::from(kbd::RESET));
        assert_eq!(drain(&mut k), [kbd::ACK, kbd::BAT_OK]);
        k.write(DATA, 1, u32::from(kbd::ECHO));
        assert_eq!(drain(&mut k), [kbd::ECHO]);
        k.write(DATA, 1, u32::from(kbd::SET_LEDS));
        k.write(DATA, 1, 0x04);
        assert_eq!(drain(&mut k), [kbd::ACK, kbd::ACK]);
        assert_eq!(k.leds(), 4);
        k.write(DATA, 1, u32::from(kbd::IDENTIFY));
        assert_eq!(drain(&mut k), [kbd::ACK, kbd::ID_MF2, kbd::ID_TRANSLATED]);
        k.write(DATA, 1, u32::from(kbd::SCANCODE_SET));
        k.write(DATA, 1, 0);
        assert_eq!(drain(&mut k), [kbd::ACK, kbd::ACK, 2]);
        k.write(DATA, 1, u32::from(kbd::DISABLE));
        k.key(0x1E);
        assert_eq!(drain(&mut k), [kbd::ACK], "not scanning");
        k.write(DATA, 1, u32::from(kbd::ENABLE));
        k.key(0x1E);
        assert_eq!(drain(&mut k), [kbd::ACK, 0x1E]);
        k.write(DATA, 1, 0x12);
        assert_eq!(drain(&mut k), [kbd::RESEND]);
    }

    // Keys raise IRQ 1 while the interrupt is enabled; a disabled interface holds them.
    #[test]
    fn keys_and_irq1() {
        let mut k = I8042::new();
        k.write(CMD, 1, u32::from(command::DISABLE_KBD));
        k.key(0x1E);
        k.key(0x9E);
        assert!(!k.irq1_level());
        assert_eq!(status(&mut k) & STATUS_OBF, 0);
        k.write(CMD, 1, u32::from(command::ENABLE_KBD));
        assert!(k.irq1_level());
        assert_eq!(k.read(DATA, 1), 0x1E);
        assert!(k.irq1_level(), "the next byte follows");
        k.write(CMD, 1, u32::from(command::WRITE_COMMAND_BYTE));
        k.write(DATA, 1, 0x00);
        assert!(!k.irq1_level(), "interrupt disabled");
        assert_eq!(k.read(DATA, 1), 0x9E);
        k.write(CMD, 1, u32::from(command::WRITE_KBD_OUTPUT));
        k.write(DATA, 1, 0x42);
        assert_eq!(drain(&mut k), [0x42]);
        k.write(CMD, 1, u32::from(command::WRITE_AUX_OUTPUT));
        k.write(DATA, 1, 0x43);
        assert_eq!(status(&mut k) & STATUS_AUXB, STATUS_AUXB);
        assert_eq!(drain(&mut k), [0x43]);
    }
}
