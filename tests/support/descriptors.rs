//! Shared by `tests/segmentation.rs` and `tests/tasks.rs`: descriptor builders (SDM Vol.
//! 3A §3.4.5 "Segment Descriptors", Figure 3-8; §5.8.3 "Call Gates", Figure 5-8;
//! §8.2.2 "TSS Descriptor"), a machine whose GDT the test chooses, and ring switches.
#![allow(dead_code)]

use hvsim::cpu::regs::{attr, DescriptorTable, SegReg, Segment};
pub use hvsim::machine::CATCH_ALL;
pub use hvsim::{GuestMode, Machine, MachineConfig, StopReason, StopReport};
pub use hvsim_mmu::Gpa;
pub use iced_x86::code_asm::*;

/// Where test code is loaded.
pub const CODE: u64 = 0x1000;
/// Initial stack pointer.
pub const STACK: u64 = 0x8000;
/// Where the tests put their GDT.
pub const GDT: u64 = 0x2_0000;

/// Access bytes (P, DPL, S, type) of the descriptors the tests use.
pub mod access {
    /// Code, DPL 0, execute/read, accessed.
    pub const CODE0: u8 = 0x9B;
    /// Code, DPL 3, execute/read, accessed.
    pub const CODE3: u8 = 0xFB;
    /// Data, DPL 0, read/write, accessed.
    pub const DATA0: u8 = 0x93;
    /// Data, DPL 3, read/write, accessed.
    pub const DATA3: u8 = 0xF3;
}

/// Flags nibbles (G, D/B, L, AVL).
pub mod gran {
    /// 4 KiB granularity, 32-bit.
    pub const G32: u8 = 0xC;
    /// 4 KiB granularity, 64-bit code.
    pub const G64: u8 = 0xA;
    /// Byte granularity, 16-bit.
    pub const BYTE16: u8 = 0x0;
    /// Byte granularity, 32-bit.
    pub const BYTE32: u8 = 0x4;
}

/// An 8-byte code/data/system descriptor.
pub fn desc(base: u32, limit: u32, access: u8, flags: u8) -> u64 {
    let (base, limit) = (u64::from(base), u64::from(limit));
    (limit & 0xFFFF)
        | ((base & 0xFF_FFFF) << 16)
        | (u64::from(access) << 40)
        | (((limit >> 16) & 0xF) << 48)
        | (u64::from(flags & 0xF) << 52)
        | (((base >> 24) & 0xFF) << 56)
}

/// A flat 4 GiB segment.
pub fn flat(access: u8, flags: u8) -> u64 {
    desc(0, 0xF_FFFF, access, flags)
}

/// A system descriptor (S = 0) of `ty` with DPL `dpl`, present.
pub fn system(ty: u8, dpl: u8, base: u32, limit: u32) -> u64 {
    desc(base, limit, 0x80 | (dpl << 5) | ty, 0)
}

/// A 16- or 32-bit call gate (type 4 or 12) or a task gate (type 5, `offset` 0).
pub fn gate(ty: u8, dpl: u8, selector: u16, offset: u32, params: u8) -> u64 {
    let off = u64::from(offset);
    (off & 0xFFFF)
        | (u64::from(selector) << 16)
        | (u64::from(params & 0x1F) << 32)
        | (u64::from(0x80 | (dpl << 5) | ty) << 40)
        | ((off >> 16) << 48)
}

/// The two quadwords of a 64-bit call gate (IA-32e mode).
pub fn gate64(dpl: u8, selector: u16, offset: u64) -> [u64; 2] {
    [gate(12, dpl, selector, offset as u32, 0), offset >> 32]
}

/// The two quadwords of a 64-bit TSS descriptor.
pub fn tss64(base: u64, limit: u32) -> [u64; 2] {
    [system(9, 0, base as u32, limit), base >> 32]
}

/// Writes `entries` as the GDT at [`GDT`] and points GDTR at it.
pub fn set_gdt(m: &mut Machine, entries: &[u64]) {
    let bytes: Vec<u8> = entries.iter().flat_map(|d| d.to_le_bytes()).collect();
    m.load(GDT, &bytes).unwrap();
    m.cpu.gdtr = DescriptorTable { base: GDT, limit: (bytes.len() - 1) as u16 };
}

/// A machine in `mode` (paging as the harness sets it) running `code` at [`CODE`] with
/// the GDT `entries` (none: the harness's), exceptions stopping the run.
pub fn machine(mode: GuestMode, code: &[u8], entries: &[u64]) -> Machine {
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.set_exception_catch(CATCH_ALL);
    m.load(CODE, code).unwrap();
    m.enter_mode(mode, CODE, STACK).unwrap();
    if !entries.is_empty() {
        set_gdt(&mut m, entries);
    }
    m
}

/// The hidden-cache form of GDT entry `selector` (as a successful load leaves it).
pub fn cached(m: &Machine, selector: u16) -> Segment {
    let d = m.mem.read_u64(Gpa(GDT + u64::from(selector & 0xFFF8)));
    let mut s = hvsim::cpu::segment::segment_from_descriptor(selector, d);
    s.attr |= attr::ACCESSED;
    s
}

/// Puts the vCPU at CPL `cpl` by loading CS, SS, DS and ES directly from GDT entries
/// `cs` and `data` with RPL = `cpl`.
pub fn enter_ring(m: &mut Machine, cpl: u8, code_sel: u16, data_sel: u16) {
    let rpl = u16::from(cpl);
    m.cpu.seg[SegReg::Cs as usize] = cached(m, code_sel | rpl);
    for s in [SegReg::Ss, SegReg::Ds, SegReg::Es] {
        m.cpu.seg[s as usize] = cached(m, data_sel | rpl);
    }
    m.cpu.update_mode();
    assert_eq!(m.cpu.cpl, cpl);
}

/// Assembles `body` for `bits` at `at`.
pub fn asm(
    bits: u32,
    at: u64,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    body(&mut a).unwrap();
    a.assemble(at).unwrap()
}

/// The exception the run stopped with.
pub fn exception(r: &StopReport) -> Option<(u8, Option<u32>)> {
    match &r.reason {
        StopReason::Exception { exception, .. } => Some((exception.vector, exception.error_code)),
        _ => None,
    }
}

/// Whether the run ended at HLT.
pub fn halted(r: &StopReport) -> bool {
    matches!(r.reason, StopReason::Halted { .. })
}

/// Exception vectors the tests expect.
#[allow(unused_imports)]
pub mod vec {
    pub use hvsim::cpu::vector::{GP, NP, SS, TS, UD};
}
