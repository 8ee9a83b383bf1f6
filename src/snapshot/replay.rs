//! Record and replay of the machine's nondeterministic inputs (`hvsim run --record FILE`,
//! `--replay FILE`).
//!
//! The only input that enters a machine from outside its configuration and images is the
//! console: bytes from the host (stdin) that reach COM1's receiver. Host bytes arrive
//! at any host time, but the machine takes them only at its input polls: every
//! millisecond of virtual time (`INPUT_POLL_NS` in `src/machine/platform.rs`), and when
//! a halted machine has waited long for input. Polls happen at the same points in every run that behaves the same, so an
//! input is pinned down by the number of the poll that took it. The log records, for
//! every byte (and for the end of the input), that poll number and the virtual-clock
//! value at it; a replay hands each byte to the guest at the same poll instead of
//! reading the host, and the run (its trace hash included) repeats exactly.
//!
//! The log is a small text file:
//!
//! ```text
//! hvsim input log, format 1
//! 3 3000000 byte 68
//! 3 3000000 byte 69
//! 9 9000000 closed
//! ```
//!
//! Each line is `POLL CLOCK byte HEX` or `POLL CLOCK closed` (the host input ended).
//! The poll counter is part of a snapshot, so a log can also be replayed from a
//! snapshot of the recorded run.

use std::fmt::Write as _;

/// The first line of a log, up to the format number.
pub const LOG_MAGIC: &str = "hvsim input log, format ";
/// The log format this hvsim writes and reads.
pub const LOG_VERSION: u32 = 1;

/// What happened at a poll.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A byte was taken for COM1.
    Byte(u8),
    /// The host input ended (end of file on stdin).
    Closed,
}

/// One recorded input.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct InputEvent {
    /// The number of the input poll that took it (1 for the first poll).
    pub poll: u64,
    /// The virtual clock at that poll (for people reading the log; a replay checks it).
    pub clock: u64,
    /// The input.
    pub kind: InputKind,
}

/// A log that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogError {
    /// Not an input log.
    #[error("not an hvsim input log (the first line should start with \"{LOG_MAGIC}\")")]
    BadMagic,
    /// A log of another format.
    #[error("input log format {found} is not supported: this hvsim reads format {LOG_VERSION}")]
    Version {
        /// The file's format.
        found: String,
    },
    /// A line that does not parse, or is out of order.
    #[error("input log line {line}: {what}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

/// Writes a log.
pub fn format_log(events: &[InputEvent]) -> String {
    let mut s = format!("{LOG_MAGIC}{LOG_VERSION}\n");
    for e in events {
        let _ = match e.kind {
            InputKind::Byte(b) => writeln!(s, "{} {} byte {b:02x}", e.poll, e.clock),
            InputKind::Closed => writeln!(s, "{} {} closed", e.poll, e.clock),
        };
    }
    s
}

/// Reads a log; the polls must not decrease.
pub fn parse_log(text: &str) -> Result<Vec<InputEvent>, LogError> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let version = first.strip_prefix(LOG_MAGIC).ok_or(LogError::BadMagic)?;
    if version.trim() != LOG_VERSION.to_string() {
        return Err(LogError::Version { found: version.trim().to_string() });
    }
    let mut events: Vec<InputEvent> = Vec::new();
    for (i, line) in lines.enumerate() {
        let bad = |what: &str| LogError::Line { line: i + 2, what: what.to_string() };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let num = |w: Option<&&str>, what: &str| {
            w.and_then(|w| w.parse::<u64>().ok()).ok_or_else(|| bad(what))
        };
        let poll = num(words.first(), "a poll number")?;
        let clock = num(words.get(1), "a clock value")?;
        let kind = match (words.get(2), words.get(3), words.len()) {
            (Some(&"byte"), Some(hex), 4) => InputKind::Byte(
                u8::from_str_radix(hex, 16).map_err(|_| bad("a byte in hex (00-ff)"))?,
            ),
            (Some(&"closed"), None, 3) => InputKind::Closed,
            _ => return Err(bad("\"byte HEX\" or \"closed\" after the poll and clock")),
        };
        if events.last().is_some_and(|l| l.poll > poll) {
            return Err(bad("polls must not decrease"));
        }
        events.push(InputEvent { poll, clock, kind });
    }
    Ok(events)
}

/// A log being replayed.
#[derive(Debug)]
pub struct Replay {
    events: Vec<InputEvent>,
    next: usize,
    /// The replayed input is still open (no `closed` reached).
    pub(crate) open: bool,
}

impl Replay {
    /// Replays `events`.
    pub fn new(events: Vec<InputEvent>) -> Self {
        Self { events, next: 0, open: true }
    }

    /// The inputs of poll `poll` (and any left behind from earlier polls, which a run
    /// that behaves as recorded does not have).
    pub(crate) fn take(&mut self, poll: u64) -> &[InputEvent] {
        let start = self.next;
        while self.events.get(self.next).is_some_and(|e| e.poll <= poll) {
            self.next += 1;
        }
        &self.events[start..self.next]
    }

    /// Inputs not replayed yet.
    pub fn remaining(&self) -> usize {
        self.events.len() - self.next
    }
}

/// The machine's input bookkeeping.
#[derive(Debug, Default)]
pub struct InputState {
    /// Polls of a connected input source so far (saved in snapshots).
    pub(crate) polls: u64,
    /// `--record`: the inputs taken so far.
    pub(crate) record: Option<Vec<InputEvent>>,
    /// `--replay`: the log fed instead of the host.
    pub(crate) replay: Option<Replay>,
}

impl InputState {
    /// Notes an input taken from the host at the current poll, when recording.
    pub(crate) fn note(&mut self, clock: u64, kind: InputKind) {
        let poll = self.polls;
        if let Some(r) = self.record.as_mut() {
            r.push(InputEvent { poll, clock, kind });
        }
    }
}

impl crate::Machine {
    /// Starts recording the console input taken from the host source (`--record`).
    pub fn start_input_recording(&mut self) {
        self.input.record.get_or_insert_with(Vec::new);
    }

    /// The inputs recorded so far (empty unless recording).
    pub fn recorded_input(&self) -> &[InputEvent] {
        self.input.record.as_deref().unwrap_or(&[])
    }

    /// Replays recorded console input instead of reading a host source (`--replay`):
    /// each byte enters at the poll it was recorded at.
    pub fn replay_input(&mut self, events: Vec<InputEvent>) {
        self.console_source = None;
        self.input.replay = Some(Replay::new(events));
        self.after_platform();
    }

    /// The replayed inputs not delivered yet (`None` unless replaying).
    pub fn replay_remaining(&self) -> Option<usize> {
        self.input.replay.as_ref().map(Replay::remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_round_trips_and_rejects_bad_lines() {
        let ev = vec![
            InputEvent { poll: 3, clock: 3_000_000, kind: InputKind::Byte(b'h') },
            InputEvent { poll: 3, clock: 3_000_000, kind: InputKind::Byte(0xFF) },
            InputEvent { poll: 9, clock: 9_500_000, kind: InputKind::Closed },
        ];
        let text = format_log(&ev);
        assert_eq!(parse_log(&text).unwrap(), ev);
        assert_eq!(parse_log("junk\n"), Err(LogError::BadMagic));
        assert!(matches!(
            parse_log("hvsim input log, format 7\n"),
            Err(LogError::Version { found }) if found == "7"
        ));
        let bad = format!("{LOG_MAGIC}1\n5 1 byte zz\n");
        assert!(matches!(parse_log(&bad), Err(LogError::Line { line: 2, .. })));
        let order = format!("{LOG_MAGIC}1\n5 1 byte 00\n4 1 closed\n");
        assert!(matches!(parse_log(&order), Err(LogError::Line { line: 3, .. })));
    }
}
