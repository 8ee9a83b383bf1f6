//! What to load where: the segments and entry point of a multiboot kernel, from its a.out
//! kludge address fields (Multiboot Specification 0.6.96 §3.1.3) or, without them, from
//! its ELF program headers (§3.1.1: "the boot loader must be able to load images that
//! either are in ELF format or contain the load address information embedded in the
//! Multiboot header").
//!
//! ELF: ELF32 (EM_386) and ELF64 (EM_X86_64) executables, little-endian. Each PT_LOAD
//! segment is loaded at its physical address `p_paddr`, its `p_filesz` bytes from the
//! file and the rest of `p_memsz` zeroed. An ELF64 kernel is loaded the same way and
//! entered in 32-bit protected mode like an ELF32 one, as GRUB and QEMU do. If the entry
//! point lies in a segment linked at a virtual address other than its physical one, it is
//! translated to the physical address (as QEMU does for higher-half kernels).

use super::header::{AoutAddresses, Header};
use super::MultibootError;
use object::elf::{self, FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian;

/// Length of e_ident.
const EI_NIDENT: usize = 16;
/// Index of the class byte in e_ident.
const EI_CLASS: usize = 4;

/// One piece of the kernel in physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment<'a> {
    /// Physical load address.
    pub paddr: u64,
    /// Bytes copied from the image.
    pub data: &'a [u8],
    /// Bytes occupied in memory (`data` then zeros); at least `data.len()`.
    pub mem_size: u64,
}

impl LoadSegment<'_> {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.paddr + self.mem_size
    }
}

/// A kernel ready to be placed in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelImage<'a> {
    /// The multiboot header.
    pub header: Header,
    /// What goes where.
    pub segments: Vec<LoadSegment<'a>>,
    /// The physical entry point.
    pub entry: u32,
    /// How the image was read ("a.out kludge", "ELF32", "ELF64").
    pub format: &'static str,
}

/// The multiboot kernel in `image`.
pub fn parse(image: &[u8]) -> Result<KernelImage<'_>, MultibootError> {
    let header = super::header::find(image)?;
    // §3.1.2: with bit 16 the address fields are used, whatever the file format.
    if let Some(a) = header.aout {
        let (segments, entry) = aout(image, &header, &a)?;
        return Ok(KernelImage { header, segments, entry, format: "a.out kludge" });
    }
    // e_ident: the magic in bytes 0-3, the class (EI_CLASS) in byte 4.
    if image.len() < EI_NIDENT || image[..4] != elf::ELFMAG {
        return Err(MultibootError::NotElf);
    }
    let (segments, entry, format) = match image[EI_CLASS] {
        elf::ELFCLASS32 => {
            let (s, e) = elf_segments::<FileHeader32<LittleEndian>>(image, elf::EM_386)?;
            (s, e, "ELF32")
        }
        elf::ELFCLASS64 => {
            let (s, e) = elf_segments::<FileHeader64<LittleEndian>>(image, elf::EM_X86_64)?;
            (s, e, "ELF64")
        }
        c => return Err(MultibootError::BadElf(format!("unknown ELF class {c}"))),
    };
    Ok(KernelImage { header, segments, entry, format })
}

fn aout<'a>(
    image: &'a [u8],
    header: &Header,
    a: &AoutAddresses,
) -> Result<(Vec<LoadSegment<'a>>, u32), MultibootError> {
    let bad = |why: &str| MultibootError::BadAout(why.to_string());
    if a.load_addr > a.header_addr {
        return Err(bad("load_addr is above header_addr"));
    }
    // §3.1.3: loading starts at the header's file offset minus (header_addr - load_addr).
    let before_header = (a.header_addr - a.load_addr) as usize;
    let file_start = header
        .offset
        .checked_sub(before_header)
        .ok_or_else(|| bad("header_addr - load_addr reaches before the start of the file"))?;
    let load_len = if a.load_end_addr == 0 {
        image.len() - file_start
    } else {
        if a.load_end_addr < a.load_addr {
            return Err(bad("load_end_addr is below load_addr"));
        }
        (a.load_end_addr - a.load_addr) as usize
    };
    let data = image
        .get(file_start..file_start + load_len)
        .ok_or_else(|| bad("load_end_addr - load_addr is larger than the file"))?;
    let load_end = u64::from(a.load_addr) + load_len as u64;
    let mem_end = if a.bss_end_addr == 0 {
        load_end
    } else if u64::from(a.bss_end_addr) < load_end {
        return Err(bad("bss_end_addr is below the end of the loaded data"));
    } else {
        u64::from(a.bss_end_addr)
    };
    let seg =
        LoadSegment { paddr: a.load_addr.into(), data, mem_size: mem_end - u64::from(a.load_addr) };
    Ok((vec![seg], a.entry_addr))
}

fn elf_segments<H: FileHeader<Endian = LittleEndian>>(
    image: &[u8],
    machine: u16,
) -> Result<(Vec<LoadSegment<'_>>, u32), MultibootError> {
    let bad = |e: object::read::Error| MultibootError::BadElf(e.to_string());
    let h = H::parse(image).map_err(bad)?;
    let endian = LittleEndian;
    if !h.is_little_endian() {
        return Err(MultibootError::BadElf("not little-endian".into()));
    }
    if h.e_machine(endian) != machine {
        return Err(MultibootError::BadElf(format!(
            "machine {} is not x86 (expected {machine})",
            h.e_machine(endian)
        )));
    }
    if h.e_type(endian) != elf::ET_EXEC {
        return Err(MultibootError::BadElf(format!(
            "type {} is not an executable (ET_EXEC)",
            h.e_type(endian)
        )));
    }
    let entry: u64 = h.e_entry(endian).into();
    let mut segments = Vec::new();
    let mut entry_paddr = None;
    for ph in h.program_headers(endian, image).map_err(bad)? {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let paddr: u64 = ph.p_paddr(endian).into();
        let vaddr: u64 = ph.p_vaddr(endian).into();
        let mem_size: u64 = ph.p_memsz(endian).into();
        let data = ph.data(endian, image).map_err(|()| {
            MultibootError::BadElf(format!("segment at {paddr:#x} lies outside the file"))
        })?;
        if data.len() as u64 > mem_size {
            return Err(MultibootError::BadElf(format!(
                "segment at {paddr:#x} has p_filesz above p_memsz"
            )));
        }
        if mem_size == 0 {
            continue;
        }
        // The information structure and the entry are 32-bit: so must the kernel be.
        if paddr.checked_add(mem_size).map_or(true, |end| end > 1 << 32) {
            return Err(MultibootError::BadElf(format!(
                "segment at {paddr:#x} ({mem_size:#x} bytes) extends beyond 4 GiB"
            )));
        }
        if entry >= vaddr && entry - vaddr < mem_size {
            entry_paddr.get_or_insert(paddr + (entry - vaddr));
        }
        segments.push(LoadSegment { paddr, data, mem_size });
    }
    if segments.is_empty() {
        return Err(MultibootError::BadElf("no loadable (PT_LOAD) segment".into()));
    }
    let entry = entry_paddr.unwrap_or(entry);
    let entry = u32::try_from(entry)
        .map_err(|_| MultibootError::BadElf(format!("entry point {entry:#x} is above 4 GiB")))?;
    Ok((segments, entry))
}
