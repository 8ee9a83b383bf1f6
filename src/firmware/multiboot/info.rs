//! The multiboot information structure (Multiboot Specification 0.6.96 §3.3 "Boot
//! information format") and the data it points at, built as one block: the structure,
//! the GDT hvsim enters the kernel with, the module list, the memory map and the strings.

use crate::firmware::memory_map::E820Entry;
use crate::firmware::table_area::PutLe;

/// Length of the information structure up to and including the framebuffer fields.
pub const MBI_LEN: usize = 116;
/// The boot loader name hvsim reports.
pub const BOOT_LOADER_NAME: &str = "hvsim";
/// boot_device: BIOS drive 0x80, whole disk (no partition: the three part bytes 0xFF),
/// what QEMU reports.
pub const BOOT_DEVICE: u32 = 0x80FF_FFFF;
/// Length of one module list entry: mod_start, mod_end, string, reserved.
pub const MODULE_ENTRY_LEN: usize = 16;
/// Length of one memory map entry, its `size` field included.
pub const MMAP_ENTRY_LEN: usize = 24;
/// The `size` field of a memory map entry: the bytes after it.
pub const MMAP_ENTRY_SIZE: u32 = 20;

/// Information structure flag bits (§3.3): which fields are valid.
pub mod flags {
    /// mem_lower, mem_upper.
    pub const MEMORY: u32 = 1 << 0;
    /// boot_device.
    pub const BOOT_DEVICE: u32 = 1 << 1;
    /// cmdline.
    pub const CMDLINE: u32 = 1 << 2;
    /// mods_count, mods_addr.
    pub const MODS: u32 = 1 << 3;
    /// mmap_length, mmap_addr.
    pub const MMAP: u32 = 1 << 6;
    /// boot_loader_name.
    pub const BOOT_LOADER_NAME: u32 = 1 << 9;
}

/// Byte offsets of the information structure's fields.
pub mod offset {
    /// flags.
    pub const FLAGS: usize = 0;
    /// mem_lower (KiB from 0).
    pub const MEM_LOWER: usize = 4;
    /// mem_upper (KiB from 1 MiB).
    pub const MEM_UPPER: usize = 8;
    /// boot_device.
    pub const BOOT_DEVICE: usize = 12;
    /// cmdline.
    pub const CMDLINE: usize = 16;
    /// mods_count.
    pub const MODS_COUNT: usize = 20;
    /// mods_addr.
    pub const MODS_ADDR: usize = 24;
    /// mmap_length.
    pub const MMAP_LENGTH: usize = 44;
    /// mmap_addr.
    pub const MMAP_ADDR: usize = 48;
    /// boot_loader_name.
    pub const BOOT_LOADER_NAME: usize = 64;
}

/// The kernel's GDT: null, flat 32-bit code (selector 0x08), flat data (0x10). Base 0,
/// limit 0xFFFFF with 4 KiB granularity; code execute/read, data read/write; accessed.
pub const GDT: [u64; 3] = [0, 0x00CF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF];
/// Code selector of [`GDT`].
pub const CODE_SELECTOR: u16 = 0x08;
/// Data selector of [`GDT`].
pub const DATA_SELECTOR: u16 = 0x10;

/// A module as the information structure lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
    /// Its string (usually the file name and arguments).
    pub string: String,
}

/// What the information structure reports.
#[derive(Clone, Debug)]
pub struct InfoInput<'a> {
    /// The kernel command line.
    pub cmdline: &'a str,
    /// The modules, in order.
    pub modules: &'a [ModuleInfo],
    /// The physical memory map.
    pub mmap: &'a [E820Entry],
}

/// A built block.
#[derive(Clone, Debug)]
pub struct InfoBlock {
    /// Its bytes, to be loaded at its base.
    pub bytes: Vec<u8>,
    /// The information structure's address (the block's base).
    pub mbi: u32,
    /// The GDT's address.
    pub gdt: u32,
}

/// mem_lower and mem_upper in KiB: the RAM from 0 (at most 640 KiB) and the RAM from
/// 1 MiB up to the first hole (§3.3).
pub fn mem_lower_upper(mmap: &[E820Entry]) -> (u32, u32) {
    use crate::firmware::memory_map::E820Type;
    let kib = |base: u64, cap: u64| {
        mmap.iter()
            .find(|e| e.kind == E820Type::Ram && e.base == base)
            .map_or(0, |e| (e.len.min(cap) / 1024) as u32)
    };
    (kib(0, 640 << 10), kib(hvsim_devices::pc::HIGH_MEMORY, u64::from(u32::MAX) << 10))
}

fn put_str(strings: &mut Vec<u8>, s: &str) -> usize {
    let at = strings.len();
    strings.extend_from_slice(s.as_bytes());
    strings.push(0);
    at
}

/// The block for `input` placed at `base` (8-byte aligned).
pub fn build(base: u32, input: &InfoInput) -> InfoBlock {
    let gdt_off = MBI_LEN.next_multiple_of(8);
    let mods_off = gdt_off + GDT.len() * 8;
    let mmap_off = mods_off + input.modules.len() * MODULE_ENTRY_LEN;
    let strings_off = mmap_off + input.mmap.len() * MMAP_ENTRY_LEN;
    let addr = |off: usize| base + off as u32;

    let mut strings = Vec::new();
    let cmdline_at = put_str(&mut strings, input.cmdline);
    let name_at = put_str(&mut strings, BOOT_LOADER_NAME);
    let module_strings: Vec<usize> =
        input.modules.iter().map(|m| put_str(&mut strings, &m.string)).collect();

    let (mem_lower, mem_upper) = mem_lower_upper(input.mmap);
    let mut b = Vec::with_capacity(strings_off + strings.len());
    b.put_u32(
        flags::MEMORY
            | flags::BOOT_DEVICE
            | flags::CMDLINE
            | flags::MODS
            | flags::MMAP
            | flags::BOOT_LOADER_NAME,
    );
    b.put_u32(mem_lower);
    b.put_u32(mem_upper);
    b.put_u32(BOOT_DEVICE);
    b.put_u32(addr(strings_off + cmdline_at));
    b.put_u32(input.modules.len() as u32);
    b.put_u32(addr(mods_off));
    b.extend_from_slice(&[0; 16]); // syms: neither a.out nor ELF symbols
    b.put_u32((input.mmap.len() * MMAP_ENTRY_LEN) as u32);
    b.put_u32(addr(mmap_off));
    b.put_u32(0); // drives_length
    b.put_u32(0); // drives_addr
    b.put_u32(0); // config_table
    b.put_u32(addr(strings_off + name_at));
    b.resize(gdt_off, 0); // apm_table, VBE and framebuffer fields: not provided
    for d in GDT {
        b.put_u64(d);
    }
    for (m, s) in input.modules.iter().zip(&module_strings) {
        b.put_u32(m.start);
        b.put_u32(m.end);
        b.put_u32(addr(strings_off + s));
        b.put_u32(0);
    }
    for e in input.mmap {
        b.put_u32(MMAP_ENTRY_SIZE);
        b.put_u64(e.base);
        b.put_u64(e.len);
        b.put_u32(e.kind as u32);
    }
    b.extend(strings);
    InfoBlock { bytes: b, mbi: base, gdt: addr(gdt_off) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::memory_map::e820_map;

    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }

    #[test]
    fn fields_point_inside_the_block() {
        let mmap = e820_map(32 << 20);
        let modules = [ModuleInfo { start: 0x20_0000, end: 0x20_0010, string: "mod a".into() }];
        let base = 0x1000;
        let blk = build(base, &InfoInput { cmdline: "k x=1", modules: &modules, mmap: &mmap });
        let b = &blk.bytes;
        let at = |addr: u32| (addr - base) as usize;
        let cstr = |addr: u32| {
            let s = &b[at(addr)..];
            std::str::from_utf8(&s[..s.iter().position(|&c| c == 0).unwrap()]).unwrap()
        };
        assert_eq!(cstr(u32_at(b, offset::CMDLINE)), "k x=1");
        assert_eq!(cstr(u32_at(b, offset::BOOT_LOADER_NAME)), "hvsim");
        assert_eq!(u32_at(b, offset::MEM_LOWER), 639);
        assert_eq!(u32_at(b, offset::MEM_UPPER), 31 << 10);
        let mods = at(u32_at(b, offset::MODS_ADDR));
        assert_eq!(u32_at(b, mods), 0x20_0000);
        assert_eq!(cstr(u32_at(b, mods + 8)), "mod a");
        assert_eq!(u32_at(b, offset::MMAP_LENGTH) as usize, mmap.len() * MMAP_ENTRY_LEN);
        let mm = at(u32_at(b, offset::MMAP_ADDR));
        assert_eq!(u32_at(b, mm), MMAP_ENTRY_SIZE);
        assert_eq!(u32_at(b, mm + 20), 1);
        assert_eq!(blk.gdt % 8, 0);
    }
}
