//! The machine's side of the PC platform ([`hvsim_devices::platform::PcPlatform`]): the
//! virtual clock the devices see, port and MMIO dispatch, interrupt lines and the
//! interrupt-acknowledge cycle, INIT/SIPI/NMI from the local APICs, timer events in the
//! run loop, idle time while every vCPU is halted, the console (COM1 output and input),
//! and the requests that end a run (isa-debug-exit, reset, ACPI power-off).
//!
//! Virtual time: one retired instruction is one nanosecond (a 1 GHz virtual processor),
//! plus the time skipped while halted. The TSC, the PIT, the RTC, the ACPI PM timer and the
//! APIC timers all derive from it; nothing reads host time.

use super::Machine;
use crate::cpu::fault::Fault;
use crate::snapshot::replay::InputKind;
use hvsim_devices::platform::{PcPlatform, PlatformRequest};
use std::io::Write;

/// Virtual nanoseconds per retired instruction.
pub const NS_PER_INSN: u64 = 1;
/// The TSC and APIC timer input frequency the platform is built with (1 GHz).
pub const TSC_HZ: u64 = 1_000_000_000 / NS_PER_INSN;
/// The longest a halted machine may wait for an interrupt that never comes (virtual
/// nanoseconds of idle time in one wait) before the run stops as halted.
pub const MAX_IDLE_NS: u64 = 10_000_000_000;
/// One character time on a 115200-baud line (10 bits), in virtual nanoseconds.
pub const CHAR_TIME_NS: u64 = 86_800;
/// How often (in virtual nanoseconds) the machine looks for host console input.
pub const INPUT_POLL_NS: u64 = 1_000_000;

/// Where QEMU's debug console (port 0x402) output goes: kept for
/// [`Machine::debugcon_output`], and written to a sink (`--debugcon FILE`) or, without
/// one, echoed to stdout with the console when the machine echoes COM1.
#[derive(Default)]
pub(crate) struct DebugConOutput {
    log: Vec<u8>,
    sink: Option<Box<dyn Write>>,
}

impl Machine {
    /// Everything the guest wrote to the debug console (port 0x402).
    pub fn debugcon_output(&self) -> &[u8] {
        &self.debugcon.log
    }

    /// Sends the debug console's output to `sink` as it is written (`--debugcon FILE`).
    pub fn set_debugcon_sink(&mut self, sink: Box<dyn Write>) {
        self.debugcon.sink = Some(sink);
    }

    fn debugcon_write(&mut self, bytes: &[u8]) {
        self.debugcon.log.extend_from_slice(bytes);
        let r = match self.debugcon.sink.as_mut() {
            Some(w) => w.write_all(bytes).and_then(|()| w.flush()),
            None if self.echo_serial => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            None => Ok(()),
        };
        if r.is_err() {
            // A sink that fails (a full disk) stops receiving; the log keeps everything.
            self.debugcon.sink = None;
        }
    }

    /// The PC's devices.
    pub fn platform(&self) -> &PcPlatform {
        &self.platform
    }

    /// The PC's devices, mutably (tests and firmware set devices up through this).
    pub fn platform_mut(&mut self) -> &mut PcPlatform {
        &mut self.platform
    }

    /// The virtual time devices see, in nanoseconds.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.clock() * NS_PER_INSN
    }

    /// A port read by a built-in device, or `None` if none answers.
    pub(crate) fn device_port_read(&mut self, port: u16, size: u8) -> Option<u32> {
        let now = self.now_ns();
        let v = self.platform.port_read(port, size, now)?;
        self.after_platform();
        Some(v)
    }

    /// A port write to a built-in device; `false` if none answers.
    pub(crate) fn device_port_write(&mut self, port: u16, size: u8, value: u32) -> bool {
        let now = self.now_ns();
        if !self.platform.port_write(port, size, value, now) {
            return false;
        }
        self.after_platform();
        true
    }

    /// Whether `gpa` is device memory for the running vCPU.
    #[inline]
    pub(crate) fn is_mmio(&self, gpa: u64) -> bool {
        gpa >= hvsim_devices::pc::IOAPIC_BASE && self.platform.mmio_claims(self.current, gpa)
    }

    /// An MMIO read of `buf.len()` bytes (at most 8) by the running vCPU.
    pub(crate) fn mmio_read(&mut self, gpa: u64, buf: &mut [u8]) {
        let now = self.now_ns();
        let size = buf.len().min(8) as u8;
        let v = self.platform.mmio_read(self.current, gpa, size, now);
        let n = buf.len().min(8);
        buf[..n].copy_from_slice(&v.to_le_bytes()[..n]);
        self.trace_mmio("read", gpa, size, v);
        self.after_platform();
    }

    /// The `--trace mmio` record of one device-memory access.
    fn trace_mmio(&self, dir: &'static str, gpa: u64, size: u8, value: u64) {
        let now = self.clock();
        if self.trace.wants(crate::trace::Category::Mmio, now) {
            tracing::info!(target: crate::trace::MMIO, insn = now, vcpu = self.current, dir,
                gpa, size, value, "mmio {dir:<5} {gpa:#x} size {size} value {value:#x}");
        }
    }

    /// An MMIO write of `data` (at most 8 bytes) by the running vCPU.
    pub(crate) fn mmio_write(&mut self, gpa: u64, data: &[u8]) {
        let now = self.now_ns();
        let mut b = [0u8; 8];
        let n = data.len().min(8);
        b[..n].copy_from_slice(&data[..n]);
        let value = u64::from_le_bytes(b);
        self.platform.mmio_write(self.current, gpa, n as u8, value, now);
        self.trace_mmio("write", gpa, n as u8, value);
        self.after_platform();
    }

    /// Brings the devices up to the current virtual time (the run loop calls this when
    /// the next device event is due).
    pub(crate) fn platform_tick(&mut self) {
        let now = self.now_ns();
        self.feed_console_input();
        self.platform.advance(now);
        self.after_platform();
    }

    /// Propagates what the devices did to the vCPUs: interrupt lines, INIT, SIPI, NMI;
    /// drains COM1's output into the console; schedules the next device event.
    pub(crate) fn after_platform(&mut self) {
        for i in 0..self.vcpu_count() {
            let (init, sipi, nmi, line) = {
                let Some(a) = self.platform.lapics.get_mut(i) else { break };
                (a.take_init(), a.take_sipi(), a.take_nmi(), false)
            };
            let line = line || self.platform.interrupt_pending(i);
            let init = crate::nested::svm::events::init_now(self, i, init);
            if init {
                self.init_vcpu(i);
                if let Some(a) = self.platform.lapics.get_mut(i) {
                    a.init_reset();
                }
            }
            if let Some(v) = sipi {
                self.startup_vcpu(i, v);
            }
            if let Some(c) = self.vcpu_mut(i) {
                c.intr_line = line;
                c.nmi_pending |= nmi;
            }
        }
        let out = self.platform.com1.take_output();
        if !out.is_empty() {
            self.console_write(&out);
        }
        let dbg = self.platform.debugcon.take_output();
        if !dbg.is_empty() {
            self.debugcon_write(&dbg);
        }
        self.sync_chipset();
        self.next_device_event = self
            .platform
            .next_event_ns()
            .map_or(u64::MAX, |t| t.div_ceil(NS_PER_INSN).max(self.clock() + 1));
        if !self.console_in.is_empty() {
            // Input waits for room in the UART's FIFO: look again at the next character
            // time (115200 baud); on a fixed grid, so that the guest's own port accesses
            // do not keep pushing the retry away.
            let retry = (self.clock() / CHAR_TIME_NS + 1) * CHAR_TIME_NS;
            self.next_device_event = self.next_device_event.min(retry);
        }
        if self.input_connected() {
            let poll = (self.clock() / INPUT_POLL_NS + 1) * INPUT_POLL_NS;
            self.next_device_event = self.next_device_event.min(poll);
        }
    }

    /// The interrupt-acknowledge cycle of the running vCPU: the vector it takes from its
    /// local APIC or, for ExtINT, from the 8259A.
    pub(crate) fn acknowledge_interrupt(&mut self) -> Option<u8> {
        let v = self.platform.acknowledge(self.current);
        self.after_platform();
        v
    }

    /// Whether the running vCPU's INTR is asserted (a test-injected vector or the
    /// platform's interrupt line).
    #[inline]
    pub fn interrupt_requested(&self) -> bool {
        self.cpu.intr.is_some() || self.cpu.intr_line
    }

    /// Appends bytes to the console (COM1's output, the BIOS's teletype output), echoing
    /// them to the host's stdout when the machine was built with `echo_serial`.
    pub(crate) fn console_write(&mut self, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
        if self.echo_serial {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        }
    }

    /// Queues bytes for COM1's receiver. They enter the UART at deterministic points (the
    /// next device event, or the next port access), as fast as its FIFO takes them.
    pub fn serial_input(&mut self, bytes: &[u8]) {
        self.console_in.extend(bytes.iter().copied());
        self.feed_console_input();
        self.after_platform();
    }

    /// Connects a host input source to COM1 (`hvsim run` feeds it from stdin on a reader
    /// thread). Bytes that arrived are taken at the machine's input polls: every
    /// [`INPUT_POLL_NS`] of virtual time, and whenever the halted machine has nothing else
    /// to wait for.
    pub fn set_console_source(&mut self, rx: crossbeam::channel::Receiver<u8>) {
        self.console_source = Some(rx);
        self.after_platform();
    }

    /// Whether console input is connected: a host source, or a replayed log that has
    /// not reached its end. Polls happen only then (and are counted: see
    /// [`crate::snapshot::replay`]).
    fn input_connected(&self) -> bool {
        self.console_source.is_some() || self.input.replay.as_ref().is_some_and(|r| r.open)
    }

    /// Takes what the host source has delivered so far (or, replaying, what the recorded
    /// run took at this poll).
    fn poll_console_source(&mut self) {
        if !self.input_connected() {
            return;
        }
        self.input.polls += 1;
        let clock = self.clock();
        if let Some(r) = self.input.replay.as_mut() {
            let poll = self.input.polls;
            for e in r.take(poll).to_vec() {
                match e.kind {
                    InputKind::Byte(b) => self.console_in.push_back(b),
                    InputKind::Closed => r.open = false,
                }
            }
            return;
        }
        let Some(rx) = &self.console_source else { return };
        loop {
            match rx.try_recv() {
                Ok(b) => {
                    self.console_in.push_back(b);
                    self.input.note(clock, InputKind::Byte(b));
                }
                Err(crossbeam::channel::TryRecvError::Empty) => break,
                Err(crossbeam::channel::TryRecvError::Disconnected) => {
                    self.input.note(clock, InputKind::Closed);
                    self.console_source = None;
                    break;
                }
            }
        }
    }

    /// Blocks until the host source delivers a byte (or closes); `false` if there is no
    /// source or it closed. Replaying, the recorded run's outcome of this wait is used.
    fn wait_for_console_input(&mut self) -> bool {
        if !self.input_connected() {
            return false;
        }
        self.input.polls += 1;
        let clock = self.clock();
        if let Some(r) = self.input.replay.as_mut() {
            let poll = self.input.polls;
            let mut got = false;
            for e in r.take(poll).to_vec() {
                match e.kind {
                    InputKind::Byte(b) => {
                        self.console_in.push_back(b);
                        got = true;
                    }
                    InputKind::Closed => r.open = false,
                }
            }
            if !got {
                // The recorded run ended in this wait, or its input closed here.
                r.open = false;
                return false;
            }
            self.platform_tick();
            return true;
        }
        let Some(rx) = &self.console_source else { return false };
        match rx.recv() {
            Ok(b) => {
                self.console_in.push_back(b);
                self.input.note(clock, InputKind::Byte(b));
                self.platform_tick();
                true
            }
            Err(_) => {
                self.input.note(clock, InputKind::Closed);
                self.console_source = None;
                false
            }
        }
    }

    fn feed_console_input(&mut self) {
        self.poll_console_source();
        while !self.console_in.is_empty() && self.platform.com1.can_receive() {
            if let Some(b) = self.console_in.pop_front() {
                self.platform.com1.receive(b);
            }
        }
    }

    /// A request of the platform that ends the run (after the instruction that caused it
    /// retired), if any.
    pub(crate) fn take_platform_stop(&mut self) -> Option<Fault> {
        match self.platform.take_request()? {
            PlatformRequest::DebugExit(v) => Some(Fault::DebugExit(v)),
            PlatformRequest::Reset => Some(Fault::Reset),
            PlatformRequest::PowerOff => Some(Fault::PowerOff),
        }
    }

    /// Halted with interrupts enabled and nothing pending: lets virtual time pass to the
    /// next device event. Returns `false` if no event can come (or the wait exceeded
    /// [`MAX_IDLE_NS`]), when the run must stop.
    pub(crate) fn idle_until_event(&mut self, waited_ns: &mut u64) -> bool {
        if self.next_device_event == u64::MAX || *waited_ns > MAX_IDLE_NS {
            // Nothing scheduled: only console input can wake the guest. Wait for it on
            // the host (it enters at the current clock value).
            return self.wait_for_console_input();
        }
        let now = self.clock();
        let skip = self.next_device_event.saturating_sub(now);
        *waited_ns += skip * NS_PER_INSN;
        if *waited_ns > MAX_IDLE_NS {
            return false;
        }
        self.idle += skip;
        self.platform_tick();
        true
    }
}
