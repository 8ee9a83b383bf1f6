//! Putting a machine into a chosen state without firmware: the test harness's way to
//! start guest code directly in real, protected or long mode.

use super::Machine;
use crate::cpu::flags;
use crate::cpu::regs::{cr0, cr4, efer, DescriptorTable, SegReg, Segment};
use hvsim_mmu::{Gpa, MemoryError};

/// The mode [`Machine::enter_mode`] prepares.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum GuestMode {
    /// Real mode, all segments 0.
    Real,
    /// 16-bit protected mode, flat 4 GiB segments with 16-bit defaults.
    Protected16,
    /// 32-bit protected mode, flat segments, paging off.
    Protected32,
    /// 64-bit long mode with the first 4 GiB identity-mapped by 2 MiB pages.
    Long64,
}

/// Selectors of the harness GDT.
pub mod selector {
    /// 64-bit code.
    pub const CODE64: u16 = 0x08;
    /// Flat data.
    pub const DATA: u16 = 0x10;
    /// 32-bit code.
    pub const CODE32: u16 = 0x18;
    /// 16-bit code.
    pub const CODE16: u16 = 0x20;
    /// 16-bit data.
    pub const DATA16: u16 = 0x28;
    /// 32-bit code, DPL 3 (use with RPL 3: 0x33).
    pub const USER_CODE32: u16 = 0x30;
    /// Flat data, DPL 3 (use with RPL 3: 0x3B).
    pub const USER_DATA: u16 = 0x38;
    /// 64-bit code, DPL 3 (use with RPL 3: 0x43).
    pub const USER_CODE64: u16 = 0x40;
    /// The TSS that TR holds: a 32-bit TSS in protected mode, a 64-bit TSS (two slots)
    /// in long mode. It lives at [`super::Machine::tss_base`].
    pub const TSS: u16 = 0x48;
}

/// Number of 8-byte GDT slots the harness writes (the 64-bit TSS takes two).
const GDT_SLOTS: u64 = 11;
/// Offset of the TSS in the setup area.
const TSS_OFFSET: u64 = 0x7000;
/// The TSS limit: the 104-byte TSS, no I/O permission bitmap.
const TSS_LIMIT: u64 = 0x67;

impl Machine {
    /// The physical address of the harness's GDT and page tables.
    pub fn setup_area(&self) -> u64 {
        self.mem.ram_size().min(0x1_0000_0000) - 0x8000
    }

    /// The physical (and, identity-mapped, linear) address of the harness's TSS. Its
    /// I/O map base is beyond the limit (no I/O permission bitmap); stack pointers are 0
    /// until a test writes them.
    pub fn tss_base(&self) -> u64 {
        self.setup_area() + TSS_OFFSET
    }

    /// Copies `data` into guest RAM at `gpa` and drops decoded code there.
    pub fn load(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.mem.load(Gpa(gpa), data)?;
        self.shadow_phys_written(Gpa(gpa), data.len());
        self.flush_code_cache();
        Ok(())
    }

    /// Puts the vCPU into `mode` with flat segments, RIP = `rip` and RSP = `rsp`. For
    /// protected and long mode a GDT is written at [`Self::setup_area`]; for long mode,
    /// also 4-level page tables identity-mapping the first 4 GiB.
    pub fn enter_mode(&mut self, mode: GuestMode, rip: u64, rsp: u64) -> Result<(), MemoryError> {
        let area = self.setup_area();
        let c = &mut self.cpu;
        c.flags.set(0);
        c.rip = rip;
        c.gpr[4] = rsp;
        c.efer = 0;
        c.cr4 = 0;
        c.cr0 = cr0::ET;
        match mode {
            GuestMode::Real => {
                for s in SegReg::ALL {
                    c.seg[s as usize] = Segment::real_mode(0);
                }
                c.seg[1].attr |= crate::cpu::regs::attr::CODE;
            }
            GuestMode::Protected16 | GuestMode::Protected32 | GuestMode::Long64 => {
                let big = mode != GuestMode::Protected16;
                let (code_sel, bits) = match mode {
                    GuestMode::Protected16 => (selector::CODE16, 16),
                    GuestMode::Protected32 => (selector::CODE32, 32),
                    _ => (selector::CODE64, 64),
                };
                let data_sel = if big { selector::DATA } else { selector::DATA16 };
                for s in SegReg::ALL {
                    c.seg[s as usize] = Segment::flat_data(data_sel, big);
                }
                c.seg[1] = Segment::flat_code(code_sel, bits);
                c.cr0 |= cr0::PE;
                c.gdtr = DescriptorTable { base: area, limit: (GDT_SLOTS * 8 - 1) as u16 };
                // TR: a busy 32-bit (or, in IA-32e mode, 64-bit) TSS.
                c.tr = Segment {
                    selector: selector::TSS,
                    base: area + TSS_OFFSET,
                    limit: TSS_LIMIT as u32,
                    attr: crate::cpu::regs::attr::P | 0xB,
                };
                if mode == GuestMode::Long64 {
                    c.cr4 |= cr4::PAE;
                    c.efer = efer::LME | efer::LMA | efer::NXE;
                    c.cr0 |= cr0::PG | cr0::WP;
                    c.cr3 = area + 0x1000;
                }
            }
        }
        c.flags.set(flags::FIXED1);
        c.update_mode();
        c.tlb.flush();
        self.mmu_reset();
        self.write_gdt(area)?;
        let mut tss = [0u8; TSS_LIMIT as usize + 1];
        // I/O map base beyond the limit: no bitmap (a 64-bit TSS has it at 0x66 too).
        tss[0x66..0x68].copy_from_slice(&(TSS_LIMIT as u16 + 1).to_le_bytes());
        self.mem.load(Gpa(area + TSS_OFFSET), &tss)?;
        if mode == GuestMode::Long64 {
            self.write_identity_page_tables(area + 0x1000)?;
        }
        self.flush_code_cache();
        Ok(())
    }

    fn write_gdt(&mut self, base: u64) -> Result<(), MemoryError> {
        // Access byte and flags nibble of each descriptor; base 0, limit 0xFFFFF.
        let desc = |access: u64, flags: u64| 0xFFFF | (access << 40) | (0xF << 48) | (flags << 52);
        let tss = base + TSS_OFFSET;
        // A busy TSS descriptor (type 0xB) with byte granularity; the second slot holds
        // bits 63:32 of the base for the 64-bit form.
        let tss_desc =
            TSS_LIMIT | ((tss & 0xFF_FFFF) << 16) | (0x8B << 40) | (((tss >> 24) & 0xFF) << 56);
        let gdt: [u64; GDT_SLOTS as usize] = [
            0,
            desc(0x9B, 0xA), // 64-bit code: P, S, code, readable, accessed; G, L
            desc(0x93, 0xC), // data: P, S, writable, accessed; G, B
            desc(0x9B, 0xC), // 32-bit code: G, D
            desc(0x9B, 0x8), // 16-bit code: G
            desc(0x93, 0x8), // 16-bit data: G
            desc(0xFB, 0xC), // 32-bit code, DPL 3
            desc(0xF3, 0xC), // data, DPL 3
            desc(0xFB, 0xA), // 64-bit code, DPL 3
            tss_desc,
            tss >> 32,
        ];
        let bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.mem.load(Gpa(base), &bytes)
    }

    fn write_identity_page_tables(&mut self, pml4: u64) -> Result<(), MemoryError> {
        let pdpt = pml4 + 0x1000;
        let pd = pml4 + 0x2000;
        self.mem.load(Gpa(pml4), &(pdpt | 0x7).to_le_bytes())?;
        for g in 0..4u64 {
            let pd_g = pd + g * 0x1000;
            self.mem.load(Gpa(pdpt + g * 8), &(pd_g | 0x7).to_le_bytes())?;
            let mut entries = Vec::with_capacity(4096);
            for e in 0..512u64 {
                let frame = (g << 30) | (e << 21);
                entries.extend_from_slice(&(frame | 0x87).to_le_bytes()); // P, RW, US, PS
            }
            self.mem.load(Gpa(pd_g), &entries)?;
        }
        Ok(())
    }
}
