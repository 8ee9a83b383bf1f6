//! Multiboot (v1) kernels built by the test, booted through `firmware::multiboot::boot`
//! and through the `hvsim` binary (Multiboot Specification 0.6.96: §3.1 "OS image
//! format", §3.2 "Machine state", §3.3 "Boot information format").
//!
//! The test kernel is 32-bit code assembled with iced-x86: it checks EAX, then prints what
//! the information structure tells it to COM1 and exits through isa-debug-exit.

#[path = "support/elf_writer.rs"]
mod elf_writer;

use elf_writer::{elf32, elf64, Segment, EM_386};
use hvsim::firmware::memory_map::{e820_map, E820Type};
use hvsim::firmware::multiboot::{self, header, info, Module, MultibootError};
use hvsim::{Machine, MachineConfig, StopReason};
use hvsim_mmu::Gpa;
use iced_x86::code_asm::*;
use std::path::PathBuf;
use std::process::Command;

/// Where the test kernels are linked.
const KERNEL: u64 = 0x10_0000;
/// Kernel stack top (inside the kernel's bss).
const STACK_TOP_OFFSET: u64 = 0x3000;
/// Where the kernel's strings are, from its base.
const DATA_OFFSET: u64 = 0x800;
/// Bytes the kernel occupies in memory (code + bss).
const KERNEL_MEM: u64 = 0x4000;
/// isa-debug-exit value on success: exit status (0x10 << 1) | 1.
const OK: u8 = 0x10;
const OK_STATUS: i32 = 0x21;
/// isa-debug-exit value when EAX lacked the boot loader magic.
const BAD_MAGIC: u8 = 0x7F;

/// The header words: magic, flags, checksum, then the a.out fields if given.
fn header_words(flags: u32, aout: Option<[u32; 5]>) -> Vec<u32> {
    let mut w = vec![
        header::HEADER_MAGIC,
        flags,
        0u32.wrapping_sub(header::HEADER_MAGIC.wrapping_add(flags)),
    ];
    if let Some(a) = aout {
        w.extend_from_slice(&a);
    }
    w
}

/// The test kernel assembled at `base` with `words` as its multiboot header (the header
/// comes first, so it is at offset 0 of the code). Entry = base + 4 * words.len().
fn kernel_code(base: u64, words: &[u32]) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    let d = Data::new(base);
    build_kernel(&mut a, &d, base, words).unwrap();
    let mut code = a.assemble(base).unwrap();
    assert!((code.len() as u64) < DATA_OFFSET, "the code runs into the data");
    code.resize(DATA_OFFSET as usize, 0);
    code.extend_from_slice(&d.bytes);
    code
}

fn entry_offset(words: &[u32]) -> u64 {
    4 * words.len() as u64
}

/// The kernel's strings, at [`DATA_OFFSET`] from its base (32-bit code cannot address a
/// label RIP-relatively, so the code uses absolute addresses).
struct Data {
    base: u32,
    bytes: Vec<u8>,
    names: Vec<(&'static str, u32)>,
}

impl Data {
    fn new(base: u64) -> Self {
        let mut d =
            Data { base: (base + DATA_OFFSET) as u32, bytes: Vec::new(), names: Vec::new() };
        for (name, text) in [
            ("hexdigits", &b"0123456789abcdef"[..]),
            ("s_cmdline", b"cmdline:\0"),
            ("s_mods", b"mods:\0"),
            ("s_mod0", b"mod0:\0"),
            ("s_str0", b"str0:\0"),
            ("s_mmap", b"mmap:\0"),
            ("s_ram", b" ram:\0"),
            ("s_mem", b"mem:\0"),
            ("s_name", b"name:\0"),
        ] {
            d.names.push((name, d.base + d.bytes.len() as u32));
            d.bytes.extend_from_slice(text);
        }
        d
    }

    fn at(&self, name: &str) -> u32 {
        self.names.iter().find(|(n, _)| *n == name).unwrap().1
    }
}

fn build_kernel(
    a: &mut CodeAssembler,
    d: &Data,
    base: u64,
    words: &[u32],
) -> Result<(), IcedError> {
    let mut putc = a.create_label();
    let mut puts = a.create_label();
    let mut putn = a.create_label();
    let mut puthex = a.create_label();
    let mut bad = a.create_label();
    let mut no_mods = a.create_label();
    let mut mmap_loop = a.create_label();
    let mut mmap_next = a.create_label();
    let mut mmap_done = a.create_label();

    a.dd(words)?;
    // Entry.
    a.cmp(eax, 0x2BAD_B002)?;
    a.jne(bad)?;
    a.mov(esp, (base + STACK_TOP_OFFSET) as u32)?; // in the bss
    a.mov(ebp, ebx)?; // EBP = MBI for the whole run

    // "cmdline:<cmdline>\n"
    a.mov(esi, d.at("s_cmdline"))?;
    a.call(puts)?;
    a.mov(esi, dword_ptr(ebp + 16))?;
    a.call(puts)?;
    a.mov(al, b'\n' as u32)?;
    a.call(putc)?;

    // "mods:<count>\n" and, if any, module 0's contents and string.
    a.mov(esi, d.at("s_mods"))?;
    a.call(puts)?;
    a.mov(eax, dword_ptr(ebp + 20))?;
    a.call(puthex)?;
    a.mov(al, b'\n' as u32)?;
    a.call(putc)?;
    a.cmp(dword_ptr(ebp + 20), 0)?;
    a.je(no_mods)?;
    a.mov(ebx, dword_ptr(ebp + 24))?; // the module list
    a.mov(esi, d.at("s_mod0"))?;
    a.call(puts)?;
    a.mov(esi, dword_ptr(ebx))?; // mod_start
    a.mov(ecx, dword_ptr(ebx + 4))?; // mod_end
    a.sub(ecx, esi)?;
    a.call(putn)?;
    a.mov(al, b'\n' as u32)?;
    a.call(putc)?;
    a.mov(esi, d.at("s_str0"))?;
    a.call(puts)?;
    a.mov(esi, dword_ptr(ebx + 8))?;
    a.call(puts)?;
    a.mov(al, b'\n' as u32)?;
    a.call(putc)?;
    a.set_label(&mut no_mods)?;

    // "mmap:<entries> ram:<sum of type-1 lengths>\n"
    a.mov(esi, dword_ptr(ebp + 48))?; // mmap_addr
    a.mov(ecx, dword_ptr(ebp + 44))?; // mmap_length
    a.add(ecx, esi)?; // end
    a.xor(edi, edi)?; // entries
    a.xor(edx, edx)?; // usable bytes
    a.set_label(&mut mmap_loop)?;
    a.cmp(esi, ecx)?;
    a.jae(mmap_done)?;
    a.inc(edi)?;
    a.cmp(dword_ptr(esi + 20), 1)?;
    a.jne(mmap_next)?;
    a.add(edx, dword_ptr(esi + 12))?;
    a.set_label(&mut mmap_next)?;
    a.mov(eax, dword_ptr(esi))?;
    a.lea(esi, ptr(esi + eax + 4))?;
    a.jmp(mmap_loop)?;
    a.set_label(&mut mmap_done)?;
    a.push(edx)?;
    a.mov(esi, d.at("s_mmap"))?;
    a.call(puts)?;
    a.mov(eax, edi)?;
    a.call(puthex)?;
    a.mov(esi, d.at("s_ram"))?;
    a.call(puts)?;
    a.pop(eax)?;
    a.call(puthex)?;
    a.mov(al, b'\n' as u32)?;
    a.call(putc)?;

    // "mem:<lower> <upper>\n", "name:<boot loader name>\n"
    a.mov(esi, d.at("s_mem"))?;
    a.call(puts)?;
    a.mov(eax, dword_ptr(ebp + 4))?;
    a.call(puthex)?;
    a.mov(al, b' ' as u32)?;
    a.call(putc)?;
    a.mov(eax, dword_ptr(ebp + 8))?;
    a.call(puthex)?;
    a.mov(al, b'\n' as u32)?;
    a.call(putc)?;
    a.mov(esi, d.at("s_name"))?;
    a.call(puts)?;
    a.mov(esi, dword_ptr(ebp + 64))?;
    a.call(puts)?;
    a.mov(al, b'\n' as u32)?;
    a.call(putc)?;

    a.mov(al, OK as u32)?;
    a.out(0xF4, al)?;
    a.hlt()?;

    a.set_label(&mut bad)?;
    a.mov(al, BAD_MAGIC as u32)?;
    a.out(0xF4, al)?;
    a.hlt()?;

    // putc: AL to COM1.
    a.set_label(&mut putc)?;
    a.push(edx)?;
    a.mov(dx, 0x3F8u32)?;
    a.out(dx, al)?;
    a.pop(edx)?;
    a.ret()?;
    // puts: the zero-terminated string at ESI.
    a.set_label(&mut puts)?;
    let mut puts_done = a.create_label();
    a.lodsb()?;
    a.test(al, al)?;
    a.jz(puts_done)?;
    a.call(putc)?;
    a.jmp(puts)?;
    a.set_label(&mut puts_done)?;
    a.ret()?;
    // putn: ECX bytes at ESI.
    a.set_label(&mut putn)?;
    let mut putn_done = a.create_label();
    a.test(ecx, ecx)?;
    a.jz(putn_done)?;
    a.lodsb()?;
    a.call(putc)?;
    a.dec(ecx)?;
    a.jmp(putn)?;
    a.set_label(&mut putn_done)?;
    a.ret()?;
    // puthex: EAX as 8 hex digits.
    a.set_label(&mut puthex)?;
    a.push(ecx)?;
    a.push(ebx)?;
    a.mov(ecx, 8)?;
    let mut hex_loop = a.create_label();
    a.set_label(&mut hex_loop)?;
    a.rol(eax, 4)?;
    a.mov(ebx, eax)?;
    a.and(ebx, 0xF)?;
    a.push(eax)?;
    a.mov(eax, d.at("hexdigits"))?;
    a.mov(al, byte_ptr(eax + ebx))?;
    a.call(putc)?;
    a.pop(eax)?;
    a.dec(ecx)?;
    a.jnz(hex_loop)?;
    a.pop(ebx)?;
    a.pop(ecx)?;
    a.ret()?;

    Ok(())
}

/// A good ELF32 kernel at [`KERNEL`] with a bss up to [`KERNEL_MEM`].
fn elf32_kernel() -> Vec<u8> {
    let words = header_words(header::flags::PAGE_ALIGN | header::flags::MEMORY_INFO, None);
    let code = kernel_code(KERNEL, &words);
    let entry = (KERNEL + entry_offset(&words)) as u32;
    elf32(
        EM_386,
        entry,
        &[Segment { vaddr: KERNEL, paddr: KERNEL, data: code, mem_size: KERNEL_MEM }],
        true,
    )
}

fn machine() -> Machine {
    Machine::new(&MachineConfig { mem_size: 32 << 20, ..MachineConfig::default() }).unwrap()
}

/// The lines the test kernel prints for `cmdline`, one module and a 32 MiB machine.
fn expected_report(cmdline: &str, module: Option<(&str, &str)>) -> String {
    let mmap = e820_map(32 << 20);
    let ram: u64 = mmap.iter().filter(|e| e.kind == E820Type::Ram).map(|e| e.len).sum();
    let mut s = format!("cmdline:{cmdline}\n");
    match module {
        Some((contents, string)) => {
            s += &format!("mods:00000001\nmod0:{contents}\nstr0:{string}\n")
        }
        None => s += "mods:00000000\n",
    }
    s += &format!("mmap:{:08x} ram:{:08x}\n", mmap.len(), ram as u32);
    s += &format!("mem:{:08x} {:08x}\n", 639, (32 << 10) - 1024);
    s += "name:hvsim\n";
    s
}

fn run_to_exit(m: &mut Machine) -> String {
    let r = m.run(Some(1_000_000));
    assert_eq!(r.reason, StopReason::DebugExit(OK.into()), "{r}");
    String::from_utf8_lossy(m.serial_output()).into_owned()
}

// §3.2 "Machine state": EAX magic, EBX the MBI, flat 32-bit CS and data segments,
// CR0.PE = 1, CR0.PG = 0, EFLAGS.VM = IF = 0.
#[test]
fn entry_state_follows_the_specification() {
    let mut m = machine();
    let booted = multiboot::boot(&mut m, &elf32_kernel(), "k", &[]).unwrap();
    let c = &m.cpu;
    assert_eq!(c.gpr[0], 0x2BAD_B002);
    assert_eq!(c.gpr[3], u64::from(booted.mbi));
    assert_eq!(c.rip, KERNEL + 12);
    assert_eq!(booted.entry as u64, KERNEL + 12);
    assert_eq!(booted.format, "ELF32");
    assert_eq!(c.cr0 & 1, 1, "PE");
    assert_eq!(c.cr0 >> 31, 0, "PG");
    assert_eq!(c.flags.get() & ((1 << 9) | (1 << 17)), 0, "IF and VM clear");
    assert_eq!(c.mode, hvsim::CpuMode::Protected);
    assert_eq!(c.code_bits, 32);
    for (i, s) in c.seg.iter().enumerate() {
        assert_eq!((s.base, s.limit), (0, 0xFFFF_FFFF), "segment {i}");
    }
    assert_eq!(c.seg[1].selector, info::CODE_SELECTOR);
    // The GDT is valid: the descriptors the selectors name are the flat ones loaded.
    let gdt = c.gdtr.base;
    assert!(gdt < 0xA_0000, "GDT in low memory: {gdt:#x}");
    let code = m.mem.read_u64(Gpa(gdt + u64::from(info::CODE_SELECTOR)));
    let data = m.mem.read_u64(Gpa(gdt + u64::from(info::DATA_SELECTOR)));
    assert_eq!((code, data), (info::GDT[1], info::GDT[2]));
    // The MBI does not overlap the kernel.
    assert!(u64::from(booted.mbi) + 116 <= KERNEL || u64::from(booted.mbi) >= KERNEL + KERNEL_MEM);
}

// §3.3: the kernel reads its command line, module and memory map from the MBI.
#[test]
fn elf32_kernel_reads_cmdline_module_and_memory_map() {
    let mut m = machine();
    let module = b"hello from a module";
    let mods = [Module { data: module, string: "mod.bin arg=1" }];
    let booted =
        multiboot::boot(&mut m, &elf32_kernel(), "kernel.elf console=ttyS0", &mods).unwrap();
    // §3.3: modules are page aligned (flag bit 0) and lie beyond the kernel.
    let mi = &booted.modules[0];
    assert_eq!(mi.start % 0x1000, 0);
    assert!(u64::from(mi.start) >= KERNEL + KERNEL_MEM);
    assert_eq!(mi.end - mi.start, module.len() as u32);
    let out = run_to_exit(&mut m);
    assert_eq!(
        out,
        expected_report("kernel.elf console=ttyS0", Some(("hello from a module", "mod.bin arg=1")))
    );
}

// The ELF's bss (p_memsz beyond p_filesz) is zeroed even if memory held junk.
#[test]
fn elf_bss_is_zeroed() {
    let mut m = machine();
    m.mem.load(Gpa(KERNEL + KERNEL_MEM - 16), &[0xAA; 16]).unwrap();
    multiboot::boot(&mut m, &elf32_kernel(), "", &[]).unwrap();
    let mut buf = [0xFFu8; 16];
    m.mem.read(Gpa(KERNEL + KERNEL_MEM - 16), &mut buf);
    assert_eq!(buf, [0; 16]);
}

// §3.1.3: with flag bit 16 the address fields say what to load where, whatever precedes
// the header in the file.
#[test]
fn aout_kludge_kernel_boots() {
    const LOAD: u64 = 0x20_0000;
    let flags = header::flags::PAGE_ALIGN | header::flags::MEMORY_INFO | header::flags::AOUT_KLUDGE;
    // Assemble once to learn the size (the header length does not depend on the fields).
    let probe = kernel_code(LOAD, &header_words(flags, Some([0; 5])));
    let load_end = LOAD + probe.len() as u64;
    let bss_end = LOAD + KERNEL_MEM;
    let words = header_words(
        flags,
        Some([LOAD as u32, LOAD as u32, load_end as u32, bss_end as u32, (LOAD + 32) as u32]),
    );
    let code = kernel_code(LOAD, &words);
    assert_eq!(code.len(), probe.len());
    // 0x100 bytes of junk before the header: not loaded (file offset 0x100 - 0).
    let mut file = vec![0xCCu8; 0x100];
    file.extend_from_slice(&code);
    file.extend_from_slice(b"trailing bytes beyond load_end_addr");
    let mut m = machine();
    m.mem.load(Gpa(bss_end - 8), &[0x55; 8]).unwrap();
    let booted = multiboot::boot(&mut m, &file, "aout", &[]).unwrap();
    assert_eq!(booted.format, "a.out kludge");
    assert_eq!(booted.kernel, vec![(LOAD, bss_end)]);
    let mut loaded = vec![0u8; code.len()];
    m.mem.read(Gpa(LOAD), &mut loaded);
    assert_eq!(loaded, code);
    assert_eq!(m.mem.read_u8(Gpa(LOAD - 1)), 0, "the junk before the header is not loaded");
    assert_eq!(m.mem.read_u64(Gpa(bss_end - 8)), 0, "bss zeroed");
    assert_eq!(run_to_exit(&mut m), expected_report("aout", None));
}

// An ELF64 kernel linked in the higher half: loaded at p_paddr, entered in 32-bit
// protected mode at the physical address of its (virtual) entry point.
#[test]
fn elf64_kernel_is_loaded_at_paddr_and_entered_in_protected_mode() {
    const VIRT: u64 = 0xFFFF_FFFF_8000_0000 + KERNEL;
    let words = header_words(header::flags::PAGE_ALIGN, None);
    let code = kernel_code(KERNEL, &words);
    let file = elf64(
        VIRT + entry_offset(&words),
        &[Segment { vaddr: VIRT, paddr: KERNEL, data: code, mem_size: KERNEL_MEM }],
    );
    let mut m = machine();
    let mods = [Module { data: b"64", string: "m64" }];
    let booted = multiboot::boot(&mut m, &file, "long kernel", &mods).unwrap();
    assert_eq!(booted.format, "ELF64");
    assert_eq!(u64::from(booted.entry), KERNEL + 12);
    assert_eq!(m.cpu.code_bits, 32);
    assert_eq!(run_to_exit(&mut m), expected_report("long kernel", Some(("64", "m64"))));
}

#[test]
fn loader_errors_are_values() {
    let mut m = machine();
    // No header: plain code in an ELF.
    let plain = elf32(
        EM_386,
        KERNEL as u32,
        &[Segment { vaddr: KERNEL, paddr: KERNEL, data: vec![0xF4; 64], mem_size: 64 }],
        false,
    );
    assert!(matches!(multiboot::boot(&mut m, &plain, "", &[]), Err(MultibootError::NoHeader)));
    // A header but not ELF and no a.out fields.
    let mut flat = Vec::new();
    for w in header_words(0, None) {
        flat.extend_from_slice(&w.to_le_bytes());
    }
    assert!(matches!(multiboot::boot(&mut m, &flat, "", &[]), Err(MultibootError::NotElf)));
    // An ELF for another machine.
    let words = header_words(0, None);
    let arm = elf32(
        40,
        KERNEL as u32,
        &[Segment {
            vaddr: KERNEL,
            paddr: KERNEL,
            data: kernel_code(KERNEL, &words),
            mem_size: 0x1000,
        }],
        false,
    );
    let err = multiboot::boot(&mut m, &arm, "", &[]).unwrap_err();
    assert!(err.to_string().contains("machine 40"), "{err}");
    // Segments in the VGA hole and beyond RAM.
    for paddr in [0xA_0000u64, 31 << 20] {
        let k = elf32(
            EM_386,
            paddr as u32,
            &[Segment { vaddr: paddr, paddr, data: kernel_code(paddr, &words), mem_size: 2 << 20 }],
            false,
        );
        let err = multiboot::boot(&mut m, &k, "", &[]).unwrap_err();
        assert!(matches!(err, MultibootError::KernelDoesNotFit { .. }), "{err}");
    }
    // A module larger than the free memory.
    let big = vec![0u8; 32 << 20];
    let err = multiboot::boot(&mut m, &elf32_kernel(), "", &[Module { data: &big, string: "big" }])
        .unwrap_err();
    assert!(matches!(err, MultibootError::ModuleDoesNotFit { index: 0, .. }), "{err}");
    // Truncated and garbage ELF files.
    let good = elf32_kernel();
    for cut in [20usize, 60, 0x1000 + 40] {
        let r = multiboot::boot(&mut m, &good[..cut.min(good.len())], "", &[]);
        assert!(r.is_err(), "cut at {cut}");
    }
}

// A 64-bit segment address that would overflow, or lies above 4 GiB, is an error.
#[test]
fn elf64_segments_beyond_4gib_are_refused() {
    let words = header_words(0, None);
    let mut m = machine();
    for paddr in [u64::MAX - 0x10, 1 << 32, (1 << 32) - 0x100] {
        let file = elf64(
            paddr,
            &[Segment { vaddr: paddr, paddr, data: kernel_code(KERNEL, &words), mem_size: 0x1000 }],
        );
        let err = multiboot::boot(&mut m, &file, "", &[]).unwrap_err();
        assert!(err.to_string().contains("beyond 4 GiB"), "{paddr:#x}: {err}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    // Corrupted kernels (random bytes written over the headers and code) are loaded or
    // refused with an error, never a panic.
    #[test]
    fn corrupted_kernels_never_panic(
        edits in proptest::collection::vec((0usize..0x1100, proptest::prelude::any::<u8>()), 1..16),
        elf64_kind in proptest::prelude::any::<bool>(),
    ) {
        let words = header_words(header::flags::PAGE_ALIGN, None);
        let mut file = if elf64_kind {
            elf64(KERNEL + 12, &[Segment { vaddr: KERNEL, paddr: KERNEL, data: kernel_code(KERNEL, &words), mem_size: KERNEL_MEM }])
        } else {
            elf32_kernel()
        };
        for (at, v) in edits {
            if at < file.len() {
                file[at] = v;
            }
        }
        let mut m = machine();
        let _ = multiboot::boot(&mut m, &file, "x", &[]);
    }
}

// §3.1.3: inconsistent a.out kludge fields are refused with the reason.
#[test]
fn bad_aout_fields_are_refused() {
    let flags = header::flags::AOUT_KLUDGE;
    let mut m = machine();
    let l = 0x20_0000u32;
    for (fields, want) in [
        ([l, l + 0x10, 0, 0, l], "load_addr is above header_addr"),
        ([l + 0x100, l, 0, 0, l], "before the start of the file"),
        ([l, l, l - 1, 0, l], "load_end_addr is below load_addr"),
        ([l, l, l + 0x10_0000, 0, l], "larger than the file"),
        ([l, l, l + 0x20, l + 0x10, l], "bss_end_addr is below"),
    ] {
        let code = kernel_code(l.into(), &header_words(flags, Some(fields)));
        let err = multiboot::boot(&mut m, &code, "", &[]).unwrap_err();
        assert!(matches!(err, MultibootError::BadAout(_)), "{err}");
        assert!(err.to_string().contains(want), "{err} lacks {want}");
    }
    // The address fields must be inside the first 8 KiB with the header.
    let mut late = vec![0u8; 8192 - 16];
    for w in header_words(flags, Some([l; 5])) {
        late.extend_from_slice(&w.to_le_bytes());
    }
    let err = multiboot::boot(&mut m, &late, "", &[]).unwrap_err();
    assert!(matches!(err, MultibootError::TruncatedHeader { .. }), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    // Wherever the kernel sits and whatever the modules, the kernel, each module and the
    // information block are disjoint, inside usable RAM, and modules are page aligned.
    #[test]
    fn kernel_modules_and_info_never_overlap(
        kernel_page in 1u64..0x9F,
        high in proptest::prelude::any::<bool>(),
        bss_pages in 0u64..64,
        module_lens in proptest::collection::vec(0usize..0x3000, 0..5),
    ) {
        let base = if high { 0x10_0000 + kernel_page * 0x1000 } else { kernel_page * 0x1000 };
        let words = header_words(header::flags::PAGE_ALIGN, None);
        let code = kernel_code(base, &words);
        let mem_size = code.len() as u64 + bss_pages * 0x1000;
        let file = elf32(EM_386, (base + 12) as u32, &[Segment { vaddr: base, paddr: base, data: code, mem_size }], false);
        let datas: Vec<Vec<u8>> = module_lens.iter().map(|&n| vec![0x5A; n]).collect();
        let mods: Vec<Module> = datas.iter().map(|d| Module { data: d, string: "m" }).collect();
        let mut m = machine();
        let Ok(b) = multiboot::boot(&mut m, &file, "cmd", &mods) else {
            // Only a kernel reaching into the EBDA/legacy hole may be refused.
            proptest::prop_assert!(!high && base + mem_size > 0x9_FC00);
            return Ok(());
        };
        let mut ranges = b.kernel.clone();
        ranges.push(b.info);
        for mi in &b.modules {
            proptest::prop_assert_eq!(mi.start % 0x1000, 0);
            ranges.push((mi.start.into(), mi.end.into()));
        }
        let usable: Vec<(u64, u64)> = e820_map(32 << 20).iter().filter(|e| e.kind == E820Type::Ram).map(|e| (e.base, e.base + e.len)).collect();
        for (i, a) in ranges.iter().enumerate() {
            proptest::prop_assert!(usable.iter().any(|u| a.0 >= u.0 && a.1 <= u.1), "{:x?} not usable", a);
            for c in &ranges[i + 1..] {
                proptest::prop_assert!(a.1 <= c.0 || c.1 <= a.0 || a.0 == a.1 || c.0 == c.1, "{:x?} overlaps {:x?}", a, c);
            }
        }
    }
}

// ---- through the hvsim binary ----

fn hvsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hvsim"))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hvsim-multiboot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn binary_boots_a_kernel_with_qemu_spellings() {
    let kernel = temp("kernel.elf");
    std::fs::write(&kernel, elf32_kernel()).unwrap();
    let module = temp("initrd.txt");
    std::fs::write(&module, b"initrd contents").unwrap();
    let out = hvsim()
        .arg("-kernel")
        .arg(&kernel)
        .args(["-append", "-v quiet", "-m", "32", "-smp", "2", "-initrd"])
        .arg(format!("{} x=1", module.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(OK_STATUS), "stdout: {stdout}\nstderr: {stderr}");
    let cmdline = format!("{} -v quiet", kernel.display());
    let string = format!("{} x=1", module.display());
    assert_eq!(stdout, expected_report(&cmdline, Some(("initrd contents", &string))));
}

#[test]
fn binary_run_kernel_long_flags() {
    let kernel = temp("kernel-long.elf");
    std::fs::write(&kernel, elf32_kernel()).unwrap();
    let out = hvsim().args(["run", "--mem", "32M", "--kernel"]).arg(&kernel).output().unwrap();
    assert_eq!(out.status.code(), Some(OK_STATUS), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with(&format!("cmdline:{}\n", kernel.display())), "{stdout}");
}

/// Runs hvsim with `args`; asserts exit status 2, a message containing `want`, and no
/// panic.
fn assert_usage_error(args: &[&std::ffi::OsStr], want: &str) {
    let out = hvsim().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(want), "{args:?}: want {want:?} in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn binary_bad_inputs_exit_2() {
    let words = header_words(0, None);
    // An ELF without a multiboot header.
    let plain = temp("plain.elf");
    std::fs::write(
        &plain,
        elf32(
            EM_386,
            KERNEL as u32,
            &[Segment { vaddr: KERNEL, paddr: KERNEL, data: vec![0xF4; 64], mem_size: 64 }],
            false,
        ),
    )
    .unwrap();
    // A header with a bad checksum.
    let mut bad_sum = elf32_kernel();
    let at = bad_sum.windows(4).position(|w| w == header::HEADER_MAGIC.to_le_bytes()).unwrap();
    bad_sum[at + 8] ^= 1;
    let bad_sum_path = temp("badsum.elf");
    std::fs::write(&bad_sum_path, bad_sum).unwrap();
    // A kernel larger than the machine's memory.
    let huge = temp("huge.elf");
    std::fs::write(
        &huge,
        elf32(
            EM_386,
            KERNEL as u32,
            &[Segment {
                vaddr: KERNEL,
                paddr: KERNEL,
                data: kernel_code(KERNEL, &words),
                mem_size: 64 << 20,
            }],
            false,
        ),
    )
    .unwrap();
    let good = temp("good.elf");
    std::fs::write(&good, elf32_kernel()).unwrap();
    let missing = temp("no-such-initrd");

    let os = |s: &str| std::ffi::OsString::from(s);
    assert_usage_error(&[&os("run"), &os("--kernel"), plain.as_os_str()], "no multiboot header");
    assert_usage_error(&[&os("run"), &os("--kernel"), bad_sum_path.as_os_str()], "bad checksum");
    assert_usage_error(
        &[&os("run"), &os("--mem"), &os("16M"), &os("--kernel"), huge.as_os_str()],
        "does not fit in memory",
    );
    assert_usage_error(
        &[&os("-kernel"), good.as_os_str(), &os("-initrd"), missing.as_os_str()],
        "cannot read initrd",
    );
    assert_usage_error(
        &[&os("-kernel"), good.as_os_str(), &os("-smp"), &os("0")],
        "between 1 and 255",
    );
    assert_usage_error(
        &[&os("run"), &os("--kernel"), good.as_os_str(), &os("--smp"), &os("256")],
        "between 1 and 255",
    );
    assert_usage_error(&[&os("run"), &os("--kernel"), missing.as_os_str()], "cannot read kernel");
    // --smp within 1..=255 but beyond what the tables can describe.
    assert_usage_error(
        &[&os("run"), &os("--kernel"), good.as_os_str(), &os("--smp"), &os("250")],
        "vCPUs",
    );
}
