//! A minimal writer of ELF executables for test kernels (ELF32 i386 and ELF64 x86-64,
//! little-endian, program headers only; System V ABI "ELF Header" and "Program Header"
//! layouts). Segment data is placed at page-aligned file offsets after the headers.
#![allow(dead_code)]

/// One PT_LOAD segment.
pub struct Segment {
    /// Virtual (link) address.
    pub vaddr: u64,
    /// Physical (load) address.
    pub paddr: u64,
    /// Bytes from the file.
    pub data: Vec<u8>,
    /// Bytes in memory (the rest is bss).
    pub mem_size: u64,
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const ET_EXEC: u16 = 2;
/// e_machine of i386.
pub const EM_386: u16 = 3;
/// e_machine of x86-64.
pub const EM_X86_64: u16 = 62;
const PF_RWX: u32 = 7;
const PAGE: usize = 0x1000;

fn ident(class: u8) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(b"\x7fELF");
    id[4] = class; // 1: ELFCLASS32, 2: ELFCLASS64
    id[5] = 1; // ELFDATA2LSB
    id[6] = 1; // EV_CURRENT
    id
}

fn layout(header_len: usize, segs: &[Segment]) -> Vec<usize> {
    let mut off = header_len.next_multiple_of(PAGE);
    segs.iter()
        .map(|s| {
            let at = off;
            off = (off + s.data.len()).next_multiple_of(PAGE);
            at
        })
        .collect()
}

fn place(mut out: Vec<u8>, offsets: &[usize], segs: &[Segment]) -> Vec<u8> {
    for (s, &o) in segs.iter().zip(offsets) {
        if out.len() < o + s.data.len() {
            out.resize(o + s.data.len(), 0);
        }
        out[o..o + s.data.len()].copy_from_slice(&s.data);
    }
    out
}

/// An ELF32 executable for `machine` (normally [`EM_386`]); `note` adds a PT_NOTE
/// program header first (loaders must skip it).
pub fn elf32(machine: u16, entry: u32, segs: &[Segment], note: bool) -> Vec<u8> {
    let phnum = segs.len() + usize::from(note);
    let header_len = 52 + 32 * phnum;
    let offsets = layout(header_len, segs);
    let mut h = Vec::new();
    h.extend_from_slice(&ident(1));
    h.extend_from_slice(&ET_EXEC.to_le_bytes());
    h.extend_from_slice(&machine.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // e_version
    h.extend_from_slice(&entry.to_le_bytes());
    h.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [52u16, 32, phnum as u16, 40, 0, 0] {
        h.extend_from_slice(&v.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    if note {
        for v in [PT_NOTE, 0, 0, 0, 0, 0, 0, 4] {
            h.extend_from_slice(&v.to_le_bytes());
        }
    }
    for (s, &o) in segs.iter().zip(&offsets) {
        for v in [
            PT_LOAD,
            o as u32,
            s.vaddr as u32,
            s.paddr as u32,
            s.data.len() as u32,
            s.mem_size as u32,
            PF_RWX,
            PAGE as u32,
        ] {
            h.extend_from_slice(&v.to_le_bytes());
        }
    }
    place(h, &offsets, segs)
}

/// An ELF64 x86-64 executable.
pub fn elf64(entry: u64, segs: &[Segment]) -> Vec<u8> {
    let header_len = 64 + 56 * segs.len();
    let offsets = layout(header_len, segs);
    let mut h = Vec::new();
    h.extend_from_slice(&ident(2));
    h.extend_from_slice(&ET_EXEC.to_le_bytes());
    h.extend_from_slice(&EM_X86_64.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&entry.to_le_bytes());
    h.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    h.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [64u16, 56, segs.len() as u16, 64, 0, 0] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    for (s, &o) in segs.iter().zip(&offsets) {
        h.extend_from_slice(&PT_LOAD.to_le_bytes());
        h.extend_from_slice(&PF_RWX.to_le_bytes());
        for v in [o as u64, s.vaddr, s.paddr, s.data.len() as u64, s.mem_size, PAGE as u64] {
            h.extend_from_slice(&v.to_le_bytes());
        }
    }
    place(h, &offsets, segs)
}
