//! Several vCPUs on one host thread: the vCPU that runs is `Machine::cpu`; the others wait
//! in `Machine::parked`, and the scheduler switches between them in fixed quanta of
//! retired instructions, so that the interleaving (and everything the guest can observe
//! of it) is the same on every run.
//!
//! Virtual time is the sum of the instructions all vCPUs have retired ([`Machine::clock`]),
//! as with a single-threaded icount emulator: every vCPU reads the same clock, and a
//! halted vCPU does not make time pass.
//!
//! Application processors start in the wait-for-SIPI state; INIT and start-up IPIs
//! ([`Machine::init_vcpu`], [`Machine::startup_vcpu`]) follow SDM Vol. 3A §9.4 "Multiple-
//! Processor (MP) Initialization" and Table 9-1 "IA-32 and Intel 64 Processor States
//! Following Power-up, Reset, or INIT".

use super::{Machine, StopReason, StopReport};
use crate::cpu::regs::SegReg;
use crate::cpu::Cpu;

/// Instructions a vCPU runs before the scheduler moves to the next runnable one.
pub const DEFAULT_QUANTUM: u64 = 10_000;

impl Machine {
    /// How many vCPUs the machine has.
    pub fn vcpu_count(&self) -> usize {
        self.parked.len() + 1
    }

    /// The index of the vCPU that is running (its state is in [`Machine::cpu`]).
    pub fn current_vcpu(&self) -> usize {
        self.current
    }

    /// vCPU `i`'s state, wherever it is.
    pub fn vcpu(&self, i: usize) -> Option<&Cpu> {
        if i == self.current {
            Some(&self.cpu)
        } else {
            self.parked.get(self.parked_index(i)?)
        }
    }

    /// vCPU `i`'s state, mutably.
    pub fn vcpu_mut(&mut self, i: usize) -> Option<&mut Cpu> {
        if i == self.current {
            Some(&mut self.cpu)
        } else {
            let p = self.parked_index(i)?;
            self.parked.get_mut(p)
        }
    }

    /// `parked` holds every vCPU but the current one, in index order.
    fn parked_index(&self, i: usize) -> Option<usize> {
        match i.cmp(&self.current) {
            std::cmp::Ordering::Less => Some(i),
            std::cmp::Ordering::Greater if i < self.vcpu_count() => Some(i - 1),
            _ => None,
        }
    }

    /// Makes vCPU `i` the running one.
    pub fn switch_to(&mut self, i: usize) {
        if i == self.current || i >= self.vcpu_count() {
            return;
        }
        // Park the current vCPU at its index, then take `i` out.
        let p = self.parked_index(i).expect("index checked above");
        let next = self.parked.remove(p);
        let prev = std::mem::replace(&mut self.cpu, next);
        let slot = if self.current < i { self.current } else { self.current - 1 };
        self.parked.insert(slot, prev);
        self.retired_parked =
            self.retired_parked + self.parked[slot].insn_count - self.cpu.insn_count;
        self.current = i;
        // Decoded blocks are shared (they are keyed by physical address), but a block
        // in flight belongs to the previous vCPU.
        self.cpu.end_block = true;
    }

    /// The virtual clock: instructions retired by all vCPUs together.
    #[inline]
    pub fn clock(&self) -> u64 {
        self.retired_parked + self.cpu.insn_count + self.block_pos + self.idle
    }

    /// INIT (SDM Vol. 3A §9.4, Table 9-1): vCPU `i` returns to the power-up register
    /// state, keeping its MSRs, its instruction count and its APIC ID; an application
    /// processor then waits for a start-up IPI, the bootstrap processor starts at the
    /// reset vector.
    pub fn init_vcpu(&mut self, i: usize) {
        let bsp = i == 0;
        let Some(c) = self.vcpu_mut(i) else { return };
        let mut fresh = Cpu::new();
        fresh.msrs = std::mem::take(&mut c.msrs);
        fresh.insn_count = c.insn_count;
        fresh.rng_state = c.rng_state;
        fresh.apic_id = c.apic_id;
        fresh.xcr0 = c.xcr0;
        if bsp {
            fresh.seg[SegReg::Cs as usize].selector = 0xF000;
            fresh.seg[SegReg::Cs as usize].base = 0xFFFF_0000;
            fresh.rip = 0xFFF0;
        } else {
            fresh.wait_for_sipi = true;
        }
        *c = fresh;
        c.update_mode();
        self.flush_code_cache_of(i);
    }

    /// A start-up IPI with `vector` to vCPU `i`: if it waits for SIPI, it starts in real
    /// mode at `vector << 12` (CS = vector << 8, IP = 0); otherwise the SIPI is ignored
    /// (SDM Vol. 3A §9.4.4.1 "Typical BSP Initialization Sequence" and §11.6.1).
    pub fn startup_vcpu(&mut self, i: usize, vector: u8) {
        let Some(c) = self.vcpu_mut(i) else { return };
        if !c.wait_for_sipi {
            return;
        }
        c.wait_for_sipi = false;
        c.halted = false;
        let cs = &mut c.seg[SegReg::Cs as usize];
        cs.selector = u16::from(vector) << 8;
        cs.base = u64::from(vector) << 12;
        c.rip = 0;
        c.update_mode();
    }

    /// The TLB of a vCPU that is not running cannot hold stale code mappings; kept as a
    /// hook for the per-vCPU caches that do.
    fn flush_code_cache_of(&mut self, _i: usize) {}

    /// Whether vCPU `i` can make progress now.
    fn runnable(c: &Cpu) -> bool {
        let intr = c.intr.is_some() || c.intr_line;
        let wakes = (c.nmi_pending && !c.nmi_blocked)
            || (intr
                && (c.flags.bit(crate::cpu::flags::IF) || c.monitor.break_on_masked_interrupt));
        !c.wait_for_sipi && (!c.halted || wakes)
    }

    /// The next runnable vCPU after the current one, round robin (the current one last).
    fn next_runnable(&self) -> Option<usize> {
        let n = self.vcpu_count();
        (1..=n).map(|k| (self.current + k) % n).find(|&i| self.vcpu(i).is_some_and(Self::runnable))
    }

    /// The multi-vCPU run loop: each runnable vCPU runs up to a quantum; the run stops
    /// when `max_insns` instructions have retired in all, when a vCPU stops the machine
    /// (debug exit, shutdown, an unsupported instruction, a caught exception), or when
    /// no vCPU can make progress (all halted or waiting for SIPI, nothing pending).
    pub(super) fn run_smp(&mut self, max_insns: Option<u64>) -> StopReport {
        let limit = max_insns.map_or(u64::MAX, |n| self.clock().saturating_add(n));
        let mut idle_ns = 0u64;
        loop {
            let now = self.clock();
            if now >= limit {
                return self.report(StopReason::InsnLimit);
            }
            let runnable_now = Self::runnable(&self.cpu) && self.quantum_left > 0;
            let next = if runnable_now { Some(self.current) } else { self.next_runnable() };
            let Some(i) = next else {
                // Nothing can run now: let virtual time pass to the next device event if a
                // halted vCPU could take an interrupt from it.
                let can_wake = (0..self.vcpu_count()).any(|i| {
                    self.vcpu(i).is_some_and(|c| c.halted && c.flags.bit(crate::cpu::flags::IF))
                });
                if can_wake && self.idle_until_event(&mut idle_ns) {
                    continue;
                }
                // Report the bootstrap processor's halt.
                self.switch_to(0);
                let ie = self.cpu.flags.bit(crate::cpu::flags::IF);
                return self.report(StopReason::Halted { interrupts_enabled: ie });
            };
            if i != self.current || self.quantum_left == 0 {
                self.switch_to(i);
                self.quantum_left = self.quantum;
            }
            let budget = self.quantum_left.min(limit - now);
            let before = self.cpu.insn_count;
            let r = self.run_vcpu(Some(budget));
            idle_ns = 0;
            self.quantum_left = self.quantum_left.saturating_sub(self.cpu.insn_count - before);
            match r.reason {
                StopReason::InsnLimit => {}
                StopReason::Halted { .. } => self.quantum_left = 0,
                _ => return r,
            }
        }
    }
}
