//! The multiboot (v1) loader (Multiboot Specification 0.6.96): loads a kernel with a
//! multiboot header, its modules and the multiboot information structure into guest
//! memory and puts the vCPU in the state §3.2 "Machine state" prescribes, without any
//! BIOS code running.
//!
//! - [`header`]: finding and checking the header, its flags and a.out kludge fields.
//! - [`image`]: what to load where (a.out kludge, or ELF32/ELF64 program headers).
//! - [`placement`]: usable RAM (the E820 map below 4 GiB) and what is taken.
//! - [`info`]: the information structure with its memory map, command line, modules,
//!   boot loader name, and the GDT the kernel is entered with.
//!
//! Layout: the kernel's segments go where they ask and must lie in usable RAM; modules
//! follow the kernel's end, each page aligned (header flag bit 0 or not); the information
//! block goes in the lowest free usable RAM at or above 4 KiB (so normally in low
//! memory), never overlapping the kernel or the modules.

pub mod header;
pub mod image;
pub mod info;
pub mod placement;

use crate::cpu::flags::FIXED1;
use crate::cpu::regs::{cr0, DescriptorTable, SegReg, Segment};
use crate::firmware::memory_map::e820_map;
use crate::machine::Machine;
use hvsim_mmu::{Gpa, MemoryError};
use info::{InfoInput, ModuleInfo, CODE_SELECTOR, DATA_SELECTOR, GDT};
use placement::{Placement, Range};

/// EAX at kernel entry (§3.2: "EAX Must contain the magic value ‘0x2BADB002’").
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// Modules are page aligned.
pub const MODULE_ALIGN: u64 = 0x1000;
/// The information block is placed at or above this address (page 0 keeps the real-mode
/// IVT and BDA a later BIOS call might want).
pub const INFO_MIN_ADDR: u64 = 0x1000;

/// Why a kernel cannot be booted.
#[derive(Debug, thiserror::Error)]
pub enum MultibootError {
    /// No magic value in the first 8 KiB.
    #[error("no multiboot header (magic 0x1BADB002, 32-bit aligned) in the first 8192 bytes")]
    NoHeader,
    /// The magic was found but the checksum is wrong.
    #[error(
        "the multiboot header at offset {offset:#x} has a bad checksum (magic + flags + \
         checksum must be 0 mod 2^32)"
    )]
    BadChecksum {
        /// Offset of the header.
        offset: usize,
    },
    /// Flag bit 2.
    #[error(
        "the multiboot header requires video mode information (flag bit 2), which hvsim \
         does not provide"
    )]
    VideoModeRequired,
    /// Other requirement bits (3-15).
    #[error("the multiboot header requires features hvsim does not know (flag bits {0:#x})")]
    UnsupportedFlags(u32),
    /// Flag bit 16 set but the address fields extend past 8 KiB or the file.
    #[error("the multiboot header at offset {offset:#x} is cut short before its address fields")]
    TruncatedHeader {
        /// Offset of the header.
        offset: usize,
    },
    /// Inconsistent a.out kludge fields.
    #[error("multiboot a.out kludge: {0}")]
    BadAout(String),
    /// Without flag bit 16 the image must be ELF.
    #[error(
        "not an ELF executable, and the multiboot header gives no load addresses (flag bit 16)"
    )]
    NotElf,
    /// An ELF file hvsim cannot load.
    #[error("ELF: {0}")]
    BadElf(String),
    /// A kernel segment outside usable RAM.
    #[error(
        "the kernel does not fit in memory: it occupies {start:#x}-{end:#x}, which is not \
         usable RAM in a machine with {ram_mib} MiB"
    )]
    KernelDoesNotFit {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
        /// Machine RAM in MiB.
        ram_mib: u64,
    },
    /// No room for a module.
    #[error("module {index} ({len} bytes) does not fit in free RAM below 4 GiB after the kernel")]
    ModuleDoesNotFit {
        /// Index in the module list.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// No room for the information block.
    #[error("no free RAM below 4 GiB for the multiboot information ({0} bytes)")]
    InfoDoesNotFit(usize),
    /// Writing guest memory failed.
    #[error("loading the kernel: {0}")]
    Memory(#[from] MemoryError),
}

/// A boot module (`--initrd`): its contents and its string.
#[derive(Clone, Copy, Debug)]
pub struct Module<'a> {
    /// The file's contents.
    pub data: &'a [u8],
    /// The string the information structure gives with it.
    pub string: &'a str,
}

/// What [`boot`] did.
#[derive(Clone, Debug)]
pub struct Booted {
    /// How the kernel was read.
    pub format: &'static str,
    /// The physical entry point.
    pub entry: u32,
    /// The information structure's address (EBX).
    pub mbi: u32,
    /// Physical ranges of the kernel's segments.
    pub kernel: Vec<Range>,
    /// The modules as listed in the information structure.
    pub modules: Vec<ModuleInfo>,
    /// The physical range of the information block (structure, GDT, module list, memory
    /// map, strings).
    pub info: Range,
}

/// Loads `kernel` with `cmdline` and `modules` into `m` and sets up the entry state.
pub fn boot(
    m: &mut Machine,
    kernel: &[u8],
    cmdline: &str,
    modules: &[Module],
) -> Result<Booted, MultibootError> {
    let img = image::parse(kernel)?;
    let ram_size = m.mem.ram_size();
    let mut place = Placement::new(ram_size);
    let mut kernel_ranges = Vec::new();
    for s in &img.segments {
        let range = (s.paddr, s.end());
        if !place.is_usable(range) {
            return Err(MultibootError::KernelDoesNotFit {
                start: range.0,
                end: range.1,
                ram_mib: ram_size >> 20,
            });
        }
        place.take(range);
        kernel_ranges.push(range);
    }
    let kernel_end = kernel_ranges.iter().map(|r| r.1).max().unwrap_or(0);
    let mut infos = Vec::with_capacity(modules.len());
    for (index, md) in modules.iter().enumerate() {
        let len = md.data.len();
        let start = place
            .alloc(len as u64, MODULE_ALIGN, kernel_end)
            .ok_or(MultibootError::ModuleDoesNotFit { index, len })?;
        // alloc keeps everything below 4 GiB.
        infos.push(ModuleInfo {
            start: start as u32,
            end: (start + len as u64) as u32,
            string: md.string.to_string(),
        });
    }
    let mmap = e820_map(ram_size);
    let input = InfoInput { cmdline, modules: &infos, mmap: &mmap };
    let info_len = info::build(0, &input).bytes.len();
    let info_at = place
        .alloc(info_len as u64, 16, INFO_MIN_ADDR)
        .ok_or(MultibootError::InfoDoesNotFit(info_len))?;
    let block = info::build(info_at as u32, &input);

    for s in &img.segments {
        m.mem.load(Gpa(s.paddr), s.data)?;
        zero(m, s.paddr + s.data.len() as u64, s.mem_size - s.data.len() as u64)?;
    }
    for (md, mi) in modules.iter().zip(&infos) {
        m.mem.load(Gpa(mi.start.into()), md.data)?;
    }
    m.mem.load(Gpa(info_at), &block.bytes)?;
    enter(m, img.entry, block.mbi, block.gdt);
    Ok(Booted {
        format: img.format,
        entry: img.entry,
        mbi: block.mbi,
        kernel: kernel_ranges,
        modules: infos,
        info: (info_at, info_at + block.bytes.len() as u64),
    })
}

fn zero(m: &mut Machine, mut at: u64, mut len: u64) -> Result<(), MemoryError> {
    const CHUNK: u64 = 64 << 10;
    let zeros = vec![0u8; CHUNK.min(len) as usize];
    while len > 0 {
        let n = CHUNK.min(len);
        m.mem.load(Gpa(at), &zeros[..n as usize])?;
        at += n;
        len -= n;
    }
    Ok(())
}

/// The machine state of §3.2: EAX = magic, EBX = the information structure; CS a 32-bit
/// execute/read segment and DS, ES, FS, GS, SS read/write data segments, all with base 0
/// and limit 0xFFFFFFFF; CR0.PG = 0, CR0.PE = 1; EFLAGS.VM = 0 and IF = 0. A20 is
/// enabled (hvsim never masks address line 20). The spec leaves GDTR, IDTR and ESP
/// undefined: GDTR points at a valid GDT holding the loaded selectors (the kernel must
/// still load its own before reloading a segment register), IDTR keeps its reset value,
/// the other general registers are 0.
fn enter(m: &mut Machine, entry: u32, mbi: u32, gdt: u32) {
    let c = &mut m.cpu;
    c.gpr = [0; 16];
    c.gpr[0] = BOOTLOADER_MAGIC.into();
    c.gpr[3] = mbi.into();
    c.rip = entry.into();
    for s in SegReg::ALL {
        c.seg[s as usize] = Segment::flat_data(DATA_SELECTOR, true);
    }
    c.seg[SegReg::Cs as usize] = Segment::flat_code(CODE_SELECTOR, 32);
    c.gdtr = DescriptorTable { base: gdt.into(), limit: (GDT.len() * 8 - 1) as u16 };
    // The state firmware leaves: caches on (CD = NW = 0), FPU present (ET).
    c.cr0 = cr0::PE | cr0::ET;
    c.cr4 = 0;
    c.efer = 0;
    c.flags.set(FIXED1);
    c.halted = false;
    c.update_mode();
    c.tlb.flush();
    m.flush_code_cache();
}
