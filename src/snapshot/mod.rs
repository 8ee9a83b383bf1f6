//! Snapshots: the whole machine written to a file at an exact point of its virtual
//! clock, and a machine rebuilt from one that continues as the original would have
//! (`hvsim run --snapshot-at N --snapshot-file F`, `hvsim run --restore F`).
//!
//! - [`format`]: the file layout (magic, format version, header, payload, CRC-32).
//! - [`machine`]: what is saved, and what is rebuilt empty on restore.
//! - [`replay`]: recording and replaying the console input (`--record`, `--replay`).
//!
//! The trace hash's running state is part of the snapshot, so a restored run that
//! continues to the end prints the hash the uninterrupted run prints.

pub mod format;
pub mod machine;
pub mod replay;

pub use format::{SnapshotError, SnapshotHeader, FORMAT_VERSION, MAGIC};

use crate::machine::Machine;
use std::path::Path;

/// A machine rebuilt from a snapshot.
pub struct Restored {
    /// The machine, ready to run.
    pub machine: Machine,
    /// The snapshot's header.
    pub header: SnapshotHeader,
    /// Host console input was connected when the snapshot was taken (`hvsim run`
    /// connects stdin again).
    pub input_was_open: bool,
}

impl Machine {
    /// The machine's state as a snapshot file's bytes.
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        let header = SnapshotHeader {
            hvsim_version: env!("CARGO_PKG_VERSION").to_string(),
            clock: self.clock(),
            vcpus: self.vcpu_count() as u32,
            mem_size: self.mem.ram_size(),
        };
        self.save_state(|state| format::encode(&header, state))
    }

    /// Writes a snapshot to `path`.
    pub fn write_snapshot(&self, path: &Path) -> Result<SnapshotHeader, SnapshotError> {
        let bytes = self.snapshot()?;
        std::fs::write(path, &bytes)
            .map_err(|source| SnapshotError::Io { path: path.display().to_string(), source })?;
        Ok(format::split(&bytes)?.0)
    }

    /// Rebuilds a machine from a snapshot file's bytes. `echo_serial` is a host choice
    /// and not part of the snapshot. Any damage to the bytes is an error, never a panic.
    pub fn restore_snapshot(bytes: &[u8], echo_serial: bool) -> Result<Restored, SnapshotError> {
        let (header, payload) = format::split(bytes)?;
        let saved: machine::Saved = format::decode(payload)?;
        let (mut machine, input_was_open) = Machine::restore_state(saved)?;
        machine.echo_serial = echo_serial;
        Ok(Restored { machine, header, input_was_open })
    }

    /// Reads and restores the snapshot at `path`.
    pub fn read_snapshot(path: &Path, echo_serial: bool) -> Result<Restored, SnapshotError> {
        let bytes = std::fs::read(path)
            .map_err(|source| SnapshotError::Io { path: path.display().to_string(), source })?;
        Self::restore_snapshot(&bytes, echo_serial)
    }
}

/// Where a run with `--snapshot-at` took its snapshot.
#[derive(Debug)]
pub enum SnapshotOutcome {
    /// Written at this clock value.
    Written(u64),
    /// The run stopped before the clock reached the snapshot point.
    NotReached,
}

/// Runs `m` until its virtual clock reaches `at` (the first instruction boundary at or
/// after it: time spent halted can step over it), writes a snapshot to `path`, and, unless
/// `stop_after`, runs on. `max_insns` bounds the whole run as `Machine::run` does.
/// Returns the final stop and what became of the snapshot.
pub fn run_with_snapshot(
    m: &mut Machine,
    at: u64,
    path: &Path,
    stop_after: bool,
    max_insns: Option<u64>,
) -> Result<(crate::StopReport, SnapshotOutcome), SnapshotError> {
    let limit = max_insns.map(|n| m.clock().saturating_add(n));
    let target = limit.map_or(at, |l| l.min(at));
    loop {
        let now = m.clock();
        if now >= target {
            break;
        }
        let r = m.run(Some(target - now));
        if r.reason != crate::StopReason::InsnLimit {
            return Ok((r, SnapshotOutcome::NotReached));
        }
    }
    if m.clock() < at {
        // The run's own limit came first.
        let r = m.run(Some(0));
        return Ok((r, SnapshotOutcome::NotReached));
    }
    let header = m.write_snapshot(path)?;
    let written = SnapshotOutcome::Written(header.clock);
    if stop_after {
        return Ok((m.run(Some(0)), written));
    }
    let rest = limit.map(|l| l.saturating_sub(m.clock()));
    Ok((m.run(rest), written))
}
