//! Events between instructions: exceptions raised by instructions (delivered, combined
//! into #DF, or ending the run in shutdown), NMI and external interrupts with their
//! blocking rules, and HLT wake-up (SDM Vol. 3A §6.7 "Enabling and Disabling
//! Interrupts", §6.8.3 "Masking Exceptions and Interrupts When Switching Stacks", §6.9
//! "Priority Among Concurrent Exceptions and Interrupts", §6.15 "Interrupt 8").

use super::{Machine, StopReason};
use crate::cpu::fault::{vector, Exception, Fault};
use crate::cpu::flags::{IF, RF};
use crate::cpu::interrupt::{class, combine, Combined, Event, EventSource};

/// The most exceptions one event can chain through before shutdown (first, second,
/// #DF, and the one during #DF); a bound for the loop, which the rules reach anyway.
const MAX_CHAIN: usize = 6;

impl Machine {
    /// Asserts the INTR line with `vector` (an interrupt controller's acknowledged
    /// vector). It is delivered when EFLAGS.IF = 1 and no interrupt shadow is active, and
    /// wakes a vCPU halted in HLT; until then it stays pending. A second call replaces a
    /// vector that is still pending.
    pub fn inject_interrupt(&mut self, vector: u8) {
        self.cpu.intr = Some(vector);
    }

    /// The external interrupt vector still pending, if any.
    pub fn pending_interrupt(&self) -> Option<u8> {
        self.cpu.intr
    }

    /// Raises NMI. It is delivered unless NMIs are blocked (from the delivery of an NMI
    /// until the next IRET); one further NMI stays pending while blocked.
    pub fn inject_nmi(&mut self) {
        self.cpu.nmi_pending = true;
    }

    /// Whether the loop has to look at events before the next block.
    #[inline(always)]
    pub(super) fn needs_attention(&self) -> bool {
        self.cpu.halted
            || self.cpu.intr.is_some()
            || self.cpu.intr_line
            || self.cpu.nmi_pending
            || self.nested.attention()
    }

    /// Delivers a pending NMI or external interrupt if nothing blocks it. Returns
    /// `Err(stop)` when the run must stop (halted with nothing to wake it, or a delivery
    /// that ended in shutdown), else `Ok(one)`, where `one` asks the loop to execute a
    /// single instruction (an interrupt waits behind an interrupt shadow).
    pub(super) fn service_events(&mut self) -> Result<bool, StopReason> {
        if self.nested.attention() {
            if let Some(r) = crate::nested::service_events(self) {
                return r;
            }
        }
        let shadowed = self.cpu.insn_count == self.cpu.shadow_at;
        if self.cpu.nmi_pending && !self.cpu.nmi_blocked {
            if shadowed {
                return Ok(true);
            }
            self.cpu.nmi_pending = false;
            self.cpu.nmi_blocked = true;
            self.wake_from_halt();
            let ev = Event { vector: vector::NMI, source: EventSource::Nmi, error_code: None };
            return self.raise_event(ev, None).map_or(Ok(false), Err);
        }
        if self.interrupt_requested() && self.cpu.flags.bit(IF) {
            if shadowed {
                return Ok(true);
            }
            // The harness's injected vector first, else the platform's INTA cycle (which
            // may find nothing left: a spurious request that went away).
            let v = match self.cpu.intr.take() {
                Some(v) => Some(v),
                None => self.acknowledge_interrupt(),
            };
            if let Some(v) = v {
                self.wake_from_halt();
                let ev = Event { vector: v, source: EventSource::External, error_code: None };
                return self.raise_event(ev, None).map_or(Ok(false), Err);
            }
        }
        if self.mwait_breaks_on_masked_interrupt() {
            self.wake_from_halt();
        }
        if self.cpu.halted {
            return Err(StopReason::Halted { interrupts_enabled: self.cpu.flags.bit(IF) });
        }
        Ok(false)
    }

    /// An exception an instruction raised: caught (the run stops with it), or delivered.
    pub(crate) fn raise_exception(
        &mut self,
        e: Exception,
        insn: Option<&crate::cpu::insn::Insn>,
    ) -> Option<StopReason> {
        if self.catches(e.vector) {
            return Some(StopReason::Exception {
                exception: e,
                insn: insn.map(|i| i.iced.to_string()),
            });
        }
        self.raise_event(Event::exception(&e), Some(e))
    }

    /// Notes an event about to be delivered in the trace hash and the `--trace int`
    /// records.
    pub(crate) fn record_event(&mut self, ev: &Event) {
        let (now, vcpu) = (self.clock(), self.current);
        if let Some(h) = self.trace_hash.as_mut() {
            h.event(now, vcpu, ev.vector, ev.error_code, self.cpu.rip);
        }
        if self.trace.wants(crate::trace::Category::Int, now) {
            self.trace_event(now, ev);
        }
    }

    /// The `--trace int` record of an event about to be delivered.
    #[cold]
    fn trace_event(&self, now: u64, ev: &Event) {
        let name = match ev.source {
            EventSource::External => format!("interrupt {:#04x}", ev.vector),
            EventSource::Software => format!("INT {:#04x}", ev.vector),
            _ => crate::cpu::fault::vector::name(ev.vector).to_string(),
        };
        let code = ev.error_code.map_or(String::new(), |c| format!(" error code {c:#x}"));
        let cs = self.cpu.seg[1].selector;
        tracing::info!(
            target: crate::trace::INT,
            insn = now,
            vcpu = self.current,
            vector = ev.vector,
            source = ?ev.source,
            error_code = ev.error_code,
            cs,
            rip = self.cpu.rip,
            "{name}{code} at {cs:04x}:{:x} ({:?})", self.cpu.rip, ev.source
        );
    }

    fn catches(&self, v: u8) -> bool {
        v < 32 && self.catch & (1u32 << v) != 0
    }

    /// Delivers `ev`, combining exceptions raised during delivery into #DF and shutdown.
    /// `exc` is the exception `ev` came from (for CR2 and the catch mask).
    pub(crate) fn raise_event(&mut self, ev: Event, exc: Option<Exception>) -> Option<StopReason> {
        let mut ev = ev;
        let mut cur = exc;
        let mut chain: Vec<Exception> = Vec::new();
        for _ in 0..MAX_CHAIN {
            if let Some(e) = cur {
                if self.catches(e.vector) {
                    return Some(StopReason::Exception { exception: e, insn: None });
                }
                chain.push(e);
                if e.vector == vector::PF {
                    // CR2 is loaded before delivery starts (SDM Vol. 3A §6.15 "Interrupt
                    // 14"), so it holds the address even if the delivery faults.
                    self.cpu.cr2 = e.cr2;
                }
                if ev.source == EventSource::Exception && e.vector != vector::DB {
                    // Faults push EFLAGS with RF set so that the restarted instruction
                    // does not hit its instruction breakpoint again (SDM Vol. 3A
                    // §17.3.1.1). #DB traps and instruction breakpoints push RF as is.
                    self.cpu.flags.set_bit(RF, true);
                }
            }
            let saved_rf = self.cpu.flags.bit(RF);
            self.record_event(&ev);
            crate::nested::delivering(self, &ev);
            match self.deliver(ev) {
                Ok(()) => {
                    if ev.vector == vector::DB {
                        // Entering the #DB handler clears DR7.GD so that the handler
                        // can use the debug registers (SDM Vol. 3A §18.2.4).
                        self.cpu.dr[7] &= !crate::cpu::debug::DR7_GD;
                    }
                    return None;
                }
                Err(Fault::Exception(e2)) => {
                    if let Some(r) = crate::nested::exception_during_delivery(self, &ev, &e2) {
                        return r;
                    }
                    self.cpu.flags.set_bit(RF, saved_rf);
                    if e2.vector == vector::PF {
                        // A page fault loads CR2 when it is detected, also when it turns
                        // into #DF.
                        self.cpu.cr2 = e2.cr2;
                    }
                    let second = class(e2.vector, EventSource::Exception);
                    let first = class(ev.vector, ev.source);
                    match combine(first, second) {
                        Combined::Shutdown => {
                            chain.push(*e2);
                            return Some(StopReason::Shutdown { exceptions: chain });
                        }
                        Combined::DoubleFault => {
                            // The chain reports the second exception, then the #DF.
                            chain.push(*e2);
                            let df = Exception::with_code(vector::DF, 0);
                            ev = Event::exception(&df);
                            cur = Some(df);
                        }
                        Combined::Second => {
                            ev = Event::exception(&e2);
                            cur = Some(*e2);
                        }
                    }
                }
                Err(Fault::Unsupported(u)) => {
                    return Some(StopReason::Unsupported { what: u.what })
                }
                Err(_) => return None,
            }
        }
        Some(StopReason::Shutdown { exceptions: chain })
    }
}
