//! What a snapshot saves: the whole machine, as one serde value.
//!
//! Saved: every vCPU (registers, hidden segment state, MSRs, debug and MONITOR state,
//! pending events, halt and wait-for-SIPI state, its instruction count and RNG state),
//! the scheduler's position (running vCPU, what is left of its quantum), nested SVM and
//! VMX state (the VMCB/VMCS caches, HSAVE, the current VMCS and launch states), every
//! device of the PC platform with its timers and deadlines, the virtual clock (idle time,
//! the next device event), the console (output so far, input not yet taken, the input
//! poll counter), the BIOS state and its drives (see `DiskImage`'s serde: the overlay,
//! and the base image's path, size and fingerprint), the trace hash, the CPUID model,
//! the configuration the machine was built with, and guest RAM without its zero pages.
//!
//! Not saved, rebuilt empty on restore: the TLBs, the shadow page cache, the decoded-code
//! cache (caches: a guest that flushes as x86 requires cannot tell), the `--strict-tlb`
//! report, the SVM clean-bit report, host resources (the console's stdin channel, the
//! instruction tracer, devices a test attached to the port bus).

use super::format::SnapshotError;
use crate::cpu::Cpu;
use crate::machine::{Machine, MachineConfig};
use hvsim_devices::platform::PcPlatform;
use hvsim_mmu::{GuestMemory, MemoryMap};
use std::collections::VecDeque;

/// Guest RAM: the physical map and the backing store's non-zero 4 KiB pages.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedMemory {
    map: MemoryMap,
    /// (offset in the backing store, 4 KiB of contents).
    #[serde(with = "page_list")]
    pages: Vec<(u64, Vec<u8>)>,
}

/// Pages as (offset, bytes) pairs, the bytes as one byte string.
mod page_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Page(u64, #[serde(with = "bytes")] Vec<u8>);

    mod bytes {
        pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(b)
        }
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            serde::Deserialize::deserialize(d)
        }
    }

    pub fn serialize<S: Serializer>(p: &[(u64, Vec<u8>)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(p.iter().map(|(o, b)| Page(*o, b.clone())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(u64, Vec<u8>)>, D::Error> {
        Ok(Vec::<Page>::deserialize(d)?.into_iter().map(|Page(o, b)| (o, b)).collect())
    }
}

/// The page size RAM is saved in.
const PAGE: usize = 4096;

impl SavedMemory {
    fn save(mem: &GuestMemory) -> Self {
        let pages = mem
            .backing()
            .chunks(PAGE)
            .enumerate()
            .filter(|(_, p)| p.iter().any(|&b| b != 0))
            .map(|(i, p)| ((i * PAGE) as u64, p.to_vec()))
            .collect();
        Self { map: mem.map().clone(), pages }
    }

    fn restore(self) -> Result<GuestMemory, SnapshotError> {
        let mut mem =
            GuestMemory::new(self.map).map_err(|e| SnapshotError::Restore(e.to_string()))?;
        let backing = mem.backing_mut();
        for (off, data) in self.pages {
            let range = usize::try_from(off)
                .ok()
                .and_then(|o| Some(o..o.checked_add(data.len())?))
                .filter(|r| r.end <= backing.len())
                .ok_or_else(|| {
                    SnapshotError::Restore(format!("a RAM page at {off:#x} lies outside RAM"))
                })?;
            backing[range].copy_from_slice(&data);
        }
        Ok(mem)
    }
}

/// Declares the saved state once, as a borrowing form (written) and an owning form
/// (read) with the same fields in the same order, so the two cannot drift apart.
macro_rules! saved_state {
    ($( $(#[$doc:meta])* $name:ident : $borrowed:ty => $owned:ty, )*) => {
        /// The machine, borrowed for writing.
        #[derive(serde::Serialize)]
        pub(crate) struct SavedRef<'a> {
            $( $(#[$doc])* pub(crate) $name: $borrowed, )*
        }
        /// The machine, read back.
        #[derive(serde::Deserialize)]
        pub(crate) struct Saved {
            $( $(#[$doc])* pub(crate) $name: $owned, )*
        }
    };
}

saved_state! {
    /// The configuration the machine was built with.
    config: &'a MachineConfig => MachineConfig,
    /// Every vCPU, in index order.
    cpus: Vec<&'a Cpu> => Vec<Cpu>,
    /// The running vCPU.
    current: usize => usize,
    /// Instructions retired by the parked vCPUs.
    retired_parked: u64 => u64,
    /// What is left of the running vCPU's quantum.
    quantum_left: u64 => u64,
    /// Exception vectors that stop the run.
    catch: u32 => u32,
    /// The CPUID model.
    cpuid: &'a crate::cpuid::Cpuid => crate::cpuid::Cpuid,
    /// Nested SVM and VMX state.
    nested: &'a crate::nested::NestedState => crate::nested::NestedState,
    /// The PC's devices.
    platform: &'a PcPlatform => PcPlatform,
    /// When the next device event is due.
    next_device_event: u64 => u64,
    /// Virtual time spent idle.
    idle: u64 => u64,
    /// Console output so far.
    console: &'a [u8] => Vec<u8>,
    /// Console input not yet in COM1.
    console_in: &'a VecDeque<u8> => VecDeque<u8>,
    /// Whether host console input was connected.
    input_open: bool => bool,
    /// Input polls so far (the record/replay clock).
    input_polls: u64 => u64,
    /// The trace hash's running state.
    trace_hash: Option<&'a crate::machine::trace_hash::TraceHash> => Option<crate::machine::trace_hash::TraceHash>,
    /// MONITOR lines may be armed.
    monitor_watch: bool => bool,
    /// The built-in BIOS.
    bios: Option<&'a crate::firmware::bios::Bios> => Option<crate::firmware::bios::Bios>,
    /// The chipset's address decoding (A20 gate, PAM shadowing of an external BIOS).
    chipset: &'a crate::machine::chipset::Chipset => crate::machine::chipset::Chipset,
    /// Guest RAM.
    memory: &'a SavedMemory => SavedMemory,
}

impl Machine {
    /// The configuration to rebuild this machine (what `Machine::new` was given).
    fn rebuild_config(&self) -> MachineConfig {
        MachineConfig {
            mem_size: self.mem.ram_size(),
            vendor: self.cpuid.vendor(),
            echo_serial: self.echo_serial,
            // Only seeds the vCPUs' generators, whose states are saved.
            rng_seed: 0,
            cpus: self.vcpu_count(),
            quantum: self.quantum,
            shadow_cache: self.shadow.is_some(),
            strict_tlb: self.strict.is_some(),
        }
    }

    /// Encodes the machine's state (see the module documentation for what is in it).
    pub(crate) fn save_state(
        &self,
        out: impl FnOnce(&SavedRef<'_>) -> Result<Vec<u8>, SnapshotError>,
    ) -> Result<Vec<u8>, SnapshotError> {
        let config = self.rebuild_config();
        let memory = SavedMemory::save(&self.mem);
        let cpus = (0..self.vcpu_count()).filter_map(|i| self.vcpu(i)).collect();
        let state = SavedRef {
            config: &config,
            cpus,
            current: self.current,
            retired_parked: self.retired_parked,
            quantum_left: self.quantum_left,
            catch: self.catch,
            cpuid: &self.cpuid,
            nested: &self.nested,
            platform: &self.platform,
            next_device_event: self.next_device_event,
            idle: self.idle,
            console: &self.console,
            console_in: &self.console_in,
            input_open: self.console_source.is_some()
                || self.input.replay.as_ref().is_some_and(|r| r.open),
            input_polls: self.input.polls,
            trace_hash: self.trace_hash.as_ref(),
            monitor_watch: self.monitor_watch,
            bios: self.bios.as_deref(),
            chipset: &self.chipset,
            memory: &memory,
        };
        out(&state)
    }

    /// Rebuilds a machine from decoded state. Returns it and whether host console input
    /// was connected when the snapshot was taken.
    pub(crate) fn restore_state(s: Saved) -> Result<(Machine, bool), SnapshotError> {
        let bad = |what: String| SnapshotError::Restore(what);
        let cfg = s.config;
        if s.cpus.len() != cfg.cpus || s.current >= s.cpus.len() {
            return Err(bad(format!(
                "{} saved vCPUs (running: {}) for a machine of {}",
                s.cpus.len(),
                s.current,
                cfg.cpus
            )));
        }
        if s.platform.lapics.len() != cfg.cpus {
            return Err(bad(format!(
                "{} local APICs for {} vCPUs",
                s.platform.lapics.len(),
                cfg.cpus
            )));
        }
        // The machine is built with a token RAM, replaced by the saved one (whose map is
        // what counts; a damaged size in the configuration allocates nothing).
        let small = MachineConfig { mem_size: 0x1000, ..cfg.clone() };
        let mut m = Machine::new(&small).map_err(|e| bad(e.to_string()))?;
        m.mem = s.memory.restore()?;
        let mut cpus = s.cpus;
        for c in &mut cpus {
            // The TLB is a cache: it starts empty.
            c.tlb = crate::cpu::tlb::Tlb::new();
            c.tlb.set_bypass(cfg.strict_tlb);
            c.tlb.set_pcid(c.pcid());
        }
        m.cpu = cpus.remove(s.current);
        m.parked = cpus;
        m.current = s.current;
        m.retired_parked = s.retired_parked;
        m.quantum_left = s.quantum_left;
        m.catch = s.catch;
        m.cpuid = s.cpuid;
        m.nested = s.nested;
        *m.platform = s.platform;
        m.next_device_event = s.next_device_event;
        m.idle = s.idle;
        m.console = s.console;
        m.console_in = s.console_in;
        m.input.polls = s.input_polls;
        m.trace_hash = s.trace_hash;
        m.monitor_watch = s.monitor_watch;
        m.bios = s.bios.map(Box::new);
        m.chipset = s.chipset;
        Ok((m, s.input_open))
    }
}
