//! The trace hash: a fingerprint of the architectural event stream of a run (events
//! delivered between instructions, port I/O with its values, and the retired-instruction
//! count at each and at the end). Two runs of the same configuration, images and
//! recorded inputs must print the same hash on any host; `hvsim run --trace-hash` prints
//! it, and tests compare it across runs.
//!
//! The hash is 64-bit FNV-1a over fixed little-endian records: no host state (pointers,
//! time, hash-map order) enters it.

/// Record tags: one byte before each record, so that different events with equal
/// payloads hash differently.
mod tag {
    pub const EVENT: u8 = 1;
    pub const PORT_READ: u8 = 2;
    pub const PORT_WRITE: u8 = 3;
    pub const END: u8 = 4;
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The running hash of one run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceHash {
    state: u64,
    records: u64,
}

impl Default for TraceHash {
    fn default() -> Self {
        Self { state: FNV_OFFSET, records: 0 }
    }
}

impl TraceHash {
    fn bytes(&mut self, data: &[u8]) {
        for &b in data {
            self.state ^= u64::from(b);
            self.state = self.state.wrapping_mul(FNV_PRIME);
        }
    }

    fn record(&mut self, tag: u8, insn_count: u64, vcpu: usize, payload: &[u64]) {
        self.records += 1;
        self.bytes(&[tag]);
        self.bytes(&insn_count.to_le_bytes());
        self.bytes(&(vcpu as u32).to_le_bytes());
        for p in payload {
            self.bytes(&p.to_le_bytes());
        }
    }

    /// An exception, NMI or external interrupt delivered (or attempted) at `insn_count`
    /// (the machine's virtual clock) on vCPU `vcpu`.
    pub fn event(
        &mut self,
        insn_count: u64,
        vcpu: usize,
        vector: u8,
        error_code: Option<u32>,
        rip: u64,
    ) {
        let code = error_code.map_or(u64::MAX, u64::from);
        self.record(tag::EVENT, insn_count, vcpu, &[u64::from(vector), code, rip]);
    }

    /// A port read and the value the device returned.
    pub fn port_read(&mut self, insn_count: u64, vcpu: usize, port: u16, size: u8, value: u32) {
        self.record(
            tag::PORT_READ,
            insn_count,
            vcpu,
            &[u64::from(port), u64::from(size), u64::from(value)],
        );
    }

    /// A port write.
    pub fn port_write(&mut self, insn_count: u64, vcpu: usize, port: u16, size: u8, value: u32) {
        self.record(
            tag::PORT_WRITE,
            insn_count,
            vcpu,
            &[u64::from(port), u64::from(size), u64::from(value)],
        );
    }

    /// The hash with the run's final instruction count folded in (the running state is
    /// not changed, so a run may be continued and finished again).
    pub fn finish(&self, insn_count: u64) -> u64 {
        let mut h = self.clone();
        h.record(tag::END, insn_count, 0, &[]);
        h.state
    }

    /// How many records went in.
    pub fn records(&self) -> u64 {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_values_and_counts_all_matter() {
        let mut a = TraceHash::default();
        a.port_write(10, 0, 0x3F8, 1, b'a'.into());
        a.port_write(20, 0, 0x3F8, 1, b'b'.into());
        let mut b = TraceHash::default();
        b.port_write(10, 0, 0x3F8, 1, b'b'.into());
        b.port_write(20, 0, 0x3F8, 1, b'a'.into());
        assert_ne!(a.finish(30), b.finish(30));
        let mut c = TraceHash::default();
        c.port_write(11, 0, 0x3F8, 1, b'a'.into());
        c.port_write(20, 0, 0x3F8, 1, b'b'.into());
        assert_ne!(a.finish(30), c.finish(30));
        assert_ne!(a.finish(30), a.finish(31));
        // A read and a write of the same value differ.
        let mut r = TraceHash::default();
        r.port_read(10, 0, 0x3F8, 1, b'a'.into());
        let mut w = TraceHash::default();
        w.port_write(10, 0, 0x3F8, 1, b'a'.into());
        assert_ne!(r.finish(10), w.finish(10));
        // The known FNV-1a value of the empty input.
        assert_eq!(TraceHash::default().state, 0xcbf2_9ce4_8422_2325);
    }
}
