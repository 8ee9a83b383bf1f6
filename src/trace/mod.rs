//! `--trace`: what hvsim reports while a guest runs, by category, as text or JSON lines.
//!
//! Every record is a `tracing` event whose target names its category (`hvsim::insn`,
//! `hvsim::int`, `hvsim::io`, `hvsim::mmio`, `hvsim::mmu`, `hvsim::nested`) and whose
//! fields have stable names (`insn` = the virtual clock, `vcpu`, then the category's
//! own). The machine checks [`TraceConfig::wants`] before building a record, so a
//! category that is off, or a clock outside `--trace-from`/`--trace-until`, costs one
//! comparison. No record holds host time.

pub mod mmu;
pub mod nested;

use std::fmt;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Target of instruction records.
pub const INSN: &str = "hvsim::insn";
/// Target of exception and interrupt records.
pub const INT: &str = "hvsim::int";
/// Target of port I/O records.
pub const IO: &str = "hvsim::io";
/// Target of MMIO records.
pub const MMIO: &str = "hvsim::mmio";
/// Target of shadow-MMU records.
pub const MMU: &str = "hvsim::mmu";
/// Target of nested-virtualization records (VM entries and exits).
pub const NESTED: &str = "hvsim::nested";

/// A trace category.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Category {
    /// One record per retired instruction: clock, CS:RIP, bytes, disassembly.
    Insn,
    /// Exceptions, NMIs and interrupts delivered, with vector, error code and RIP.
    Int,
    /// Port reads and writes with their values.
    Io,
    /// Memory-mapped device accesses.
    Mmio,
    /// Shadow page table events: shadow pages created and zapped, unsync, syncs.
    Mmu,
    /// VMRUN/#VMEXIT, VM entries, exits and entry failures.
    Nested,
}

impl Category {
    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// Which categories to record, and in which window of the virtual clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceConfig {
    categories: u32,
    /// First clock value (retired instructions) that is recorded.
    pub from: u64,
    /// Clock value from which nothing is recorded any more.
    pub until: u64,
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self { categories: 0, from: 0, until: u64::MAX }
    }
}

impl TraceConfig {
    /// Records `categories` from clock `from` up to (not including) `until`.
    pub fn new(categories: &[Category], from: u64, until: u64) -> Self {
        Self { categories: categories.iter().fold(0, |m, c| m | c.bit()), from, until }
    }

    /// Whether any category is on.
    pub fn any(&self) -> bool {
        self.categories != 0
    }

    /// Whether `c` is on at all (regardless of the window).
    #[inline]
    pub fn has(&self, c: Category) -> bool {
        self.categories & c.bit() != 0
    }

    /// Whether a record of category `c` at clock `now` is wanted.
    #[inline]
    pub fn wants(&self, c: Category, now: u64) -> bool {
        self.has(c) && now >= self.from && now < self.until
    }
}

/// Output format of `--trace`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per record: the category and a sentence.
    #[default]
    Text,
    /// JSON lines: `target` plus every field by name.
    Json,
}

/// A subscriber that writes records of every category in `format` to `writer`: what
/// [`install`] puts on stderr, and what [`capture`] collects.
pub fn subscriber<W>(format: Format, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder =
        tracing_subscriber::fmt().with_writer(writer).with_max_level(tracing::Level::INFO);
    match format {
        Format::Text => Box::new(builder.event_format(TextFormat).finish()),
        Format::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .without_time()
                .finish(),
        ),
    }
}

/// Installs the process-wide subscriber that writes trace records to stderr.
pub fn install(format: Format) {
    // A second installation (tests calling the CLI twice in one process) keeps the first.
    let _ = tracing::subscriber::set_global_default(subscriber(format, std::io::stderr));
}

/// Runs `f` with the records of this thread collected in `format` instead of written
/// out, and returns them with `f`'s result (for tests and tools that embed hvsim).
pub fn capture<R>(format: Format, f: impl FnOnce() -> R) -> (R, String) {
    let buf = CaptureBuffer::default();
    let r = tracing::subscriber::with_default(subscriber(format, buf.clone()), f);
    let bytes = buf.0.lock().map(|b| b.clone()).unwrap_or_else(|p| p.into_inner().clone());
    (r, String::from_utf8_lossy(&bytes).into_owned())
}

/// The shared buffer [`capture`] writes to.
#[derive(Clone, Default)]
struct CaptureBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CaptureBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        b.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CaptureBuffer {
    type Writer = CaptureBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The text format: `category  message`, without time or level.
struct TextFormat;

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use fmt::Write;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let target = event.metadata().target();
        let category = target.strip_prefix("hvsim::").unwrap_or(target);
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        writeln!(writer, "{category:<6} {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_categories() {
        let t = TraceConfig::new(&[Category::Io, Category::Int], 10, 20);
        assert!(t.any());
        assert!(t.wants(Category::Io, 10) && t.wants(Category::Int, 19));
        assert!(!t.wants(Category::Io, 9) && !t.wants(Category::Io, 20));
        assert!(!t.wants(Category::Insn, 15));
        assert!(!TraceConfig::default().any());
    }
}
