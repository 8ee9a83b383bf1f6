//! The machine: vCPU, guest memory, the port bus and the decoded-code cache, and the run
//! loop that executes decoded blocks until something stops the run.

mod block;
pub(crate) mod chipset;
mod debug_step;
mod events;
pub mod mmu_cache;
mod platform;
mod port_io;
mod report;
mod setup;
pub mod smp;
pub mod trace_hash;

pub use block::Block;
pub use mmu_cache::{MmuFlush, StaleUse};
pub use report::{StopReason, StopReport};
pub use setup::{selector, GuestMode};

use crate::cpu::fault::{Exception, Fault};
use crate::cpu::Cpu;
use crate::cpuid::{Cpuid, Vendor};
use hvsim_decoder::BlockCache;
use hvsim_devices::platform::{PcConfig, PcPlatform};
use hvsim_devices::PortBus;
use hvsim_mmu::{GuestMemory, MemoryError, MemoryMap};
use std::rc::Rc;
use trace_hash::TraceHash;

/// How to build a machine.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MachineConfig {
    /// Guest RAM in bytes, from physical address 0.
    pub mem_size: u64,
    /// The CPU vendor the guest sees.
    pub vendor: Vendor,
    /// Echo COM1 output to the host's stdout.
    pub echo_serial: bool,
    /// The seed of the generator behind RDRAND/RDSEED.
    pub rng_seed: u64,
    /// Number of vCPUs (at least 1); vCPU 0 is the bootstrap processor.
    pub cpus: usize,
    /// Instructions a vCPU runs before the next one gets its turn (with several vCPUs).
    pub quantum: u64,
    /// Translate through the shadow page cache (`hvsim_mmu::shadow`); off, every TLB
    /// miss walks the guest tables (`--no-shadow-cache`).
    pub shadow_cache: bool,
    /// Check every use of a cached translation against the guest's tables and report
    /// stale ones ([`Machine::stale_translations`], `--strict-tlb`). Slower: the TLB's
    /// fast path is bypassed.
    pub strict_tlb: bool,
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            mem_size: 16 << 20,
            vendor: Vendor::Intel,
            echo_serial: false,
            rng_seed: crate::cpu::exec::DEFAULT_RNG_SEED,
            cpus: 1,
            quantum: smp::DEFAULT_QUANTUM,
            shadow_cache: true,
            strict_tlb: false,
        }
    }
}

/// Errors building a machine.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// Guest memory could not be created.
    #[error("guest memory: {0}")]
    Memory(#[from] MemoryError),
    /// A size or address given does not fit.
    #[error("{0}")]
    Config(String),
}

/// An exception-catch mask with every vector set.
pub const CATCH_ALL: u32 = u32::MAX;

/// Receives one line per retired instruction when instruction tracing is on.
pub type InsnTracer = Box<dyn FnMut(&str)>;

/// A whole emulated machine.
pub struct Machine {
    /// The vCPU.
    pub cpu: Cpu,
    /// Guest physical memory.
    pub mem: GuestMemory,
    /// The port-I/O bus.
    pub io: PortBus,
    /// The CPUID model.
    pub cpuid: Cpuid,
    /// Decoded blocks by guest-physical address.
    pub(crate) code: BlockCache<Block>,
    pub(crate) tracer: Option<InsnTracer>,
    /// Vectors (bit n = vector n) that stop the run instead of being delivered.
    pub(crate) catch: u32,
    /// The vCPUs that are not running, in index order (see [`smp`]).
    pub(crate) parked: Vec<Cpu>,
    /// The index of the running vCPU.
    pub(crate) current: usize,
    /// Instructions retired by the parked vCPUs (for [`Machine::clock`]).
    pub(crate) retired_parked: u64,
    /// The scheduling quantum, and what is left of the current vCPU's.
    pub(crate) quantum: u64,
    pub(crate) quantum_left: u64,
    /// What `--trace` records.
    trace: crate::trace::TraceConfig,
    /// Failed nested entries and the `nested` trace's memory of guest states.
    pub(crate) nested_log: crate::trace::nested::NestedLog,
    /// The event-stream fingerprint, when asked for ([`Machine::enable_trace_hash`]).
    pub(crate) trace_hash: Option<TraceHash>,
    /// The shadow page cache, unless `--no-shadow-cache`.
    pub(crate) shadow: Option<hvsim_mmu::shadow::ShadowMmu>,
    /// The shadow cache's tracking epoch the TLB's write permissions reflect.
    pub(crate) shadow_epoch: u64,
    /// `--strict-tlb` state.
    pub(crate) strict: Option<Box<mmu_cache::StrictTlb>>,
    /// Blocks run one instruction at a time with its RIP recorded (tracing, strict TLB).
    slow_blocks: bool,
    /// RIP of the instruction executing, kept only when `slow_blocks`.
    pub(crate) insn_rip: u64,
    /// The built-in BIOS, once installed (`Machine::install_bios`).
    pub(crate) bios: Option<Box<crate::firmware::bios::Bios>>,
    /// Nested virtualization (SVM) state.
    pub nested: crate::nested::NestedState,
    /// The PC's devices (see [`platform`]).
    pub(crate) platform: Box<PcPlatform>,
    /// The virtual-clock value at which the next device event is due (`u64::MAX`: none).
    pub(crate) next_device_event: u64,
    /// Virtual time that passed while every vCPU was halted (part of [`Machine::clock`]).
    pub(crate) idle: u64,
    /// Everything written to the console (COM1 and the BIOS teletype).
    pub(crate) console: Vec<u8>,
    /// Console input waiting for room in COM1's receiver.
    pub(crate) console_in: std::collections::VecDeque<u8>,
    /// Echo console output to the host's stdout.
    pub(crate) echo_serial: bool,
    /// Host console input (`hvsim run`'s stdin reader), if connected.
    pub(crate) console_source: Option<crossbeam::channel::Receiver<u8>>,
    /// Console input recording and replay (`--record`, `--replay`; see
    /// [`crate::snapshot::replay`]).
    pub(crate) input: crate::snapshot::replay::InputState,
    /// Some vCPU may have a MONITOR line armed: physical writes check the lines (see
    /// `cpu/exec/monitor.rs`).
    pub(crate) monitor_watch: bool,
    /// Index of the executing instruction in the current block of the fast path (0
    /// outside it): the instructions before it have retired but are not yet in
    /// `cpu.insn_count`, which the run loop adds up per block; [`Machine::clock`] counts
    /// them.
    pub(crate) block_pos: u64,
    /// A20 gate and BIOS shadowing (see [`chipset`]).
    pub(crate) chipset: chipset::Chipset,
    /// The debug console's output (see [`platform::DebugConOutput`]).
    debugcon: platform::DebugConOutput,
}

impl Machine {
    /// Builds a machine: RAM, COM1 console and isa-debug-exit; the vCPU in real mode at
    /// 0000:0000.
    pub fn new(cfg: &MachineConfig) -> Result<Self, MachineError> {
        if cfg.mem_size < 0x1000 {
            return Err(MachineError::Config(format!(
                "memory size {} is below the 4 KiB minimum",
                cfg.mem_size
            )));
        }
        let mem = GuestMemory::new(MemoryMap::flat(cfg.mem_size))?;
        let io = PortBus::new();
        if cfg.cpus == 0 || cfg.cpus > 255 {
            return Err(MachineError::Config(format!(
                "{} vCPUs: the machine needs between 1 and 255",
                cfg.cpus
            )));
        }
        let parked = (1..cfg.cpus)
            .map(|i| {
                let mut c = Cpu {
                    rng_state: cfg.rng_seed.wrapping_add(i as u64),
                    apic_id: i as u32,
                    wait_for_sipi: true,
                    ..Cpu::new()
                };
                c.tlb.set_bypass(cfg.strict_tlb);
                c
            })
            .collect();
        let mut cpu = Cpu { rng_state: cfg.rng_seed, ..Cpu::new() };
        cpu.tlb.set_bypass(cfg.strict_tlb);
        let platform = Box::new(PcPlatform::new(&PcConfig {
            cpus: cfg.cpus,
            ram_size: cfg.mem_size,
            tsc_hz: platform::TSC_HZ,
            max_phys_addr_bits: crate::cpu::access::MAXPHYADDR,
        }));
        Ok(Self {
            platform,
            next_device_event: u64::MAX,
            idle: 0,
            console: Vec::new(),
            console_in: std::collections::VecDeque::new(),
            echo_serial: cfg.echo_serial,
            console_source: None,
            cpu,
            parked,
            current: 0,
            retired_parked: 0,
            quantum: cfg.quantum.max(1),
            quantum_left: cfg.quantum.max(1),
            mem,
            io,
            cpuid: Cpuid::new(cfg.vendor),
            code: BlockCache::new(),
            tracer: None,
            catch: 0,
            trace_hash: None,
            trace: crate::trace::TraceConfig::default(),
            nested_log: crate::trace::nested::NestedLog::default(),
            shadow: cfg
                .shadow_cache
                .then(|| hvsim_mmu::shadow::ShadowMmu::new(mmu_cache::SHADOW_PAGE_LIMIT)),
            shadow_epoch: 0,
            strict: cfg.strict_tlb.then(|| Box::new(mmu_cache::StrictTlb::new())),
            slow_blocks: cfg.strict_tlb,
            insn_rip: 0,
            bios: None,
            nested: crate::nested::NestedState::default(),
            monitor_watch: false,
            block_pos: 0,
            input: Default::default(),
            chipset: chipset::Chipset::default(),
            debugcon: platform::DebugConOutput::default(),
        })
    }

    /// Turns on instruction tracing: `sink` receives one line per retired instruction.
    pub fn set_insn_tracer(&mut self, sink: Option<InsnTracer>) {
        self.tracer = sink;
        self.update_slow_blocks();
    }

    /// Blocks run one instruction at a time for the instruction tracer, `--strict-tlb`
    /// and the `mmu` trace (whose records are drained after each instruction).
    fn update_slow_blocks(&mut self) {
        let mmu_trace = self.trace.has(crate::trace::Category::Mmu);
        self.slow_blocks = self.tracer.is_some() || self.strict.is_some() || mmu_trace;
        if let Some(s) = self.shadow.as_mut() {
            s.set_event_log(mmu_trace);
        }
    }

    /// Chooses the exception vectors that stop the run (bit n = vector n) instead of
    /// being delivered through the IVT/IDT, as a debugger's "catch" would; the report
    /// then names the exception and the faulting instruction. [`CATCH_ALL`] catches
    /// every vector; the default, 0, delivers everything as hardware does.
    pub fn set_exception_catch(&mut self, vectors: u32) {
        self.catch = vectors;
    }

    /// The vectors that stop the run (see [`Machine::set_exception_catch`]).
    pub fn exception_catch(&self) -> u32 {
        self.catch
    }

    /// Sets what is traced (as `tracing` events; see [`crate::trace`]).
    pub fn set_trace(&mut self, cfg: crate::trace::TraceConfig) {
        self.trace = cfg;
        self.update_slow_blocks();
    }

    /// What is traced.
    pub fn trace_config(&self) -> &crate::trace::TraceConfig {
        &self.trace
    }

    /// Starts fingerprinting the run's architectural event stream (see
    /// [`trace_hash`](self::trace_hash)).
    pub fn enable_trace_hash(&mut self) {
        self.trace_hash.get_or_insert_with(TraceHash::default);
    }

    /// The fingerprint of the event stream so far, with the retired-instruction count
    /// folded in; `None` unless enabled.
    pub fn trace_hash(&self) -> Option<u64> {
        self.trace_hash.as_ref().map(|h| h.finish(self.clock()))
    }

    /// Everything the guest wrote to COM1.
    pub fn serial_output(&self) -> &[u8] {
        &self.console
    }

    /// Decoded-code cache counters.
    pub fn code_cache_stats(&self) -> hvsim_decoder::CacheStats {
        self.code.stats()
    }

    /// Runs until the guest stops, or until `max_insns` more instructions have retired
    /// (in all vCPUs together).
    pub fn run(&mut self, max_insns: Option<u64>) -> StopReport {
        if self.parked.is_empty() {
            self.run_vcpu(max_insns)
        } else {
            self.run_smp(max_insns)
        }
    }

    /// Runs the current vCPU until it stops, or until `max_insns` more of its
    /// instructions have retired.
    fn run_vcpu(&mut self, max_insns: Option<u64>) -> StopReport {
        let limit = max_insns.map_or(u64::MAX, |n| self.cpu.insn_count.saturating_add(n));
        let mut yielded = 0u64;
        let mut idle_ns = 0u64;
        let reason = loop {
            if self.cpu.insn_count >= limit {
                break StopReason::InsnLimit;
            }
            let mut budget = limit - self.cpu.insn_count;
            // Device events (timers) are due at exact clock values: run up to the next one.
            let now = self.clock();
            if now >= self.next_device_event {
                self.platform_tick();
            }
            budget = budget.min(self.next_device_event.saturating_sub(now).max(1));
            if self.needs_attention() {
                match self.service_events() {
                    Ok(true) => budget = 1,
                    Ok(false) => idle_ns = 0,
                    // Halted with interrupts enabled on a uniprocessor: time passes to the
                    // next device event (several vCPUs: the scheduler decides).
                    Err(StopReason::Halted { interrupts_enabled: true })
                        if self.parked.is_empty() && self.idle_until_event(&mut idle_ns) =>
                    {
                        continue
                    }
                    Err(stop) => break stop,
                }
            }
            // Single step, RF and DR7 breakpoints run one instruction at a time.
            let debug = self.cpu.debug_active();
            if debug {
                match self.instruction_breakpoint() {
                    Some(None) => continue,
                    Some(Some(stop)) => break stop,
                    None => budget = 1,
                }
            }
            let block = match self.fetch_block() {
                Ok(b) => b,
                Err(f) => match self.on_fault(f, None) {
                    Some(stop) => break stop,
                    None => continue,
                },
            };
            let budget = budget.min(block.insns.len() as u64) as usize;
            let flags_before = self.cpu.flags.get();
            self.cpu.delivered = false;
            self.cpu.rip_committed = false;
            let r = self.run_block(&block, budget);
            if self.cpu.shadow_pending {
                self.cpu.shadow_pending = false;
                self.cpu.shadow_at = self.cpu.insn_count;
            }
            if debug {
                if let Some(stop) = self.after_step(flags_before, r.as_ref().err().map(|e| &e.0)) {
                    break stop;
                }
            }
            if let Err((f, insn)) = r {
                match self.on_fault(f, Some(&block.insns[insn])) {
                    // A long REP string instruction yields between chunks without
                    // retiring. Each chunk uses up one unit of the instruction budget, so
                    // `--max-insns` bounds the run even for a REP with a huge count; the
                    // instruction resumes from its registers on the next run.
                    Some(StopReason::Yield) => {
                        yielded += 1;
                        if self.cpu.insn_count.saturating_add(yielded) >= limit {
                            break StopReason::InsnLimit;
                        }
                    }
                    Some(s) => break s,
                    None => {}
                }
            }
        };
        self.report(reason)
    }

    /// Executes up to `budget` instructions of `block`. On a fault, returns it with the
    /// index of the instruction.
    #[inline]
    fn run_block(&mut self, block: &Block, budget: usize) -> Result<(), (Fault, usize)> {
        if self.slow_blocks
            || self.trace.has(crate::trace::Category::Insn)
            || self.nested.in_guest()
        {
            return self.run_block_traced(block, budget);
        }
        let ip_mask = self.cpu.ip_mask();
        // Retired instructions are added up per block; `block_pos` (one store per
        // instruction) keeps the clock exact inside it, so a device read in the middle of
        // a block (a local APIC timer's current count through MMIO) sees the same clock
        // wherever the run's blocks began (after a snapshot restore, say).
        let mut done = 0u64;
        for (n, insn) in block.insns[..budget].iter().enumerate() {
            let start = self.cpu.rip;
            let next = start.wrapping_add(u64::from(insn.len)) & ip_mask;
            self.cpu.rip = next;
            self.block_pos = n as u64;
            if let Err(f) = (insn.exec)(self, insn) {
                if f.retired() {
                    done += 1;
                } else if !std::mem::take(&mut self.cpu.rip_committed) {
                    self.cpu.rip = start;
                }
                self.block_pos = 0;
                self.cpu.insn_count += done;
                return Err((f, n));
            }
            done += 1;
            if self.cpu.rip != next || self.cpu.end_block {
                self.cpu.end_block = false;
                break;
            }
        }
        self.block_pos = 0;
        self.cpu.insn_count += done;
        Ok(())
    }

    #[cold]
    fn run_block_traced(&mut self, block: &Block, budget: usize) -> Result<(), (Fault, usize)> {
        let ip_mask = self.cpu.ip_mask();
        for (n, insn) in block.insns[..budget].iter().enumerate() {
            let start = self.cpu.rip;
            let cs = self.cpu.seg[1].selector;
            let count = self.clock();
            let next = start.wrapping_add(u64::from(insn.len)) & ip_mask;
            self.insn_rip = start;
            if self.nested.in_guest() && crate::nested::intercept_insn(self, insn, start, next) {
                return Ok(());
            }
            self.cpu.rip = next;
            let r = (insn.exec)(self, insn);
            if self.trace.has(crate::trace::Category::Mmu) {
                crate::trace::mmu::drain(self, count);
            }
            let retired = match &r {
                Ok(()) => true,
                Err(f) => f.retired(),
            };
            if retired {
                self.cpu.insn_count += 1;
                if let Some(t) = self.tracer.as_mut() {
                    t(&report::trace_line(count, cs, start, insn));
                }
                if self.trace.wants(crate::trace::Category::Insn, count) {
                    let line = report::trace_line(count, cs, start, insn);
                    tracing::info!(
                        target: crate::trace::INSN,
                        insn = count,
                        vcpu = self.current,
                        cs,
                        rip = start,
                        "{line}"
                    );
                }
            }
            if let Err(f) = r {
                if !retired && !std::mem::take(&mut self.cpu.rip_committed) {
                    self.cpu.rip = start;
                }
                return Err((f, n));
            }
            if self.nested.in_guest() && crate::nested::after_insn(self) {
                return Ok(());
            }
            if self.cpu.rip != next || self.cpu.end_block {
                self.cpu.end_block = false;
                break;
            }
        }
        Ok(())
    }

    /// What a fault means for the run: `None` to go on (an exception was delivered, or
    /// the vCPU halted and the loop decides whether something wakes it).
    fn on_fault(&mut self, f: Fault, insn: Option<&crate::cpu::insn::Insn>) -> Option<StopReason> {
        match f {
            Fault::Exception(e) if self.nested.in_guest() => {
                crate::nested::on_exception(self, *e, insn).unwrap_or(None)
            }
            Fault::Exception(e) => self.raise_exception(*e, insn),
            Fault::Unsupported(u) => Some(StopReason::Unsupported { what: u.what }),
            Fault::Yield => Some(StopReason::Yield),
            Fault::Halt => None,
            Fault::DebugExit(v) => Some(StopReason::DebugExit(v)),
            Fault::Reset => Some(StopReason::Reset),
            Fault::PowerOff => Some(StopReason::PowerOff),
            Fault::NestedPageFault => crate::nested::nested_page_fault(self, insn),
        }
    }

    /// The exception an instruction raised, as seen by tests.
    pub fn exception_of(report: &StopReport) -> Option<Exception> {
        match report.reason {
            StopReason::Exception { exception, .. } => Some(exception),
            _ => None,
        }
    }

    fn report(&mut self, reason: StopReason) -> StopReport {
        let cs = self.cpu.seg[1];
        let lin = if self.cpu.mode == crate::cpu::CpuMode::Long64 {
            self.cpu.rip
        } else {
            cs.base.wrapping_add(self.cpu.rip) & 0xFFFF_FFFF
        };
        let mut bytes = [0u8; 15];
        let mut n = 0;
        for (k, b) in bytes.iter_mut().enumerate() {
            match self
                .read_lin::<1>(lin.wrapping_add(k as u64), hvsim_mmu::paging::AccessKind::Read)
            {
                Ok([v]) => {
                    *b = v;
                    n += 1;
                }
                Err(_) => break,
            }
        }
        StopReport {
            reason,
            cs: cs.selector,
            rip: self.cpu.rip,
            insn_count: self.clock(),
            bytes: bytes[..n].to_vec(),
            code_bits: self.cpu.code_bits,
        }
    }

    /// Clears the decoded-code cache (after loading images behind the CPU's back).
    pub fn flush_code_cache(&mut self) {
        self.code.clear();
    }

    pub(crate) fn cache_block(
        &mut self,
        key: hvsim_decoder::BlockKey,
        frames: &[u64],
        b: Block,
    ) -> Rc<Block> {
        self.code.insert(key, frames, Rc::new(b))
    }
}
