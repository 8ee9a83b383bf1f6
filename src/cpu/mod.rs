//! The vCPU: architectural state, the decoded-instruction form, memory access through
//! segmentation and paging, and the instruction semantics (`exec`).

pub mod access;
pub mod debug;
pub mod exec;
pub mod fault;
pub mod flags;
pub mod insn;
pub mod interrupt;
pub mod msr;
pub mod regs;
pub mod segment;
pub mod task;
pub mod tlb;

pub use fault::vector;
use flags::Flags;
use regs::{attr, cr0, efer, DescriptorTable, SegReg, Segment};
use std::collections::BTreeMap;
use tlb::Tlb;

/// The operating mode, derived from CR0.PE, EFLAGS.VM, EFER.LMA and CS.L.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CpuMode {
    /// Real-address mode.
    Real,
    /// Virtual-8086 mode.
    V86,
    /// Protected mode (16- or 32-bit code, per CS.D).
    Protected,
    /// Compatibility mode: IA-32e with a 16/32-bit code segment.
    Compat,
    /// 64-bit mode.
    Long64,
}

/// Architectural state of one vCPU.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Cpu {
    /// RAX..R15.
    pub gpr: [u64; 16],
    /// The instruction pointer.
    pub rip: u64,
    /// RFLAGS.
    pub flags: Flags,
    /// ES, CS, SS, DS, FS, GS.
    pub seg: [Segment; 6],
    /// LDTR.
    pub ldtr: Segment,
    /// TR.
    pub tr: Segment,
    /// GDTR.
    pub gdtr: DescriptorTable,
    /// IDTR.
    pub idtr: DescriptorTable,
    /// CR0.
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// CR8 (task priority).
    pub cr8: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// XCR0.
    pub xcr0: u64,
    /// PKRU: the access- and write-disable bits of the 16 protection keys.
    pub pkru: u32,
    /// The PAE PDPTE registers, loaded from CR3 by the MOV to CR0/CR3/CR4 that enables
    /// or changes PAE paging (SDM Vol. 3A §4.4.1); walks use these, not memory.
    pub pdpte: [u64; 4],
    /// DR0-DR7 (DR4/DR5 alias DR6/DR7).
    pub dr: [u64; 8],
    /// Debug conditions of the current instruction (see [`debug::DebugState`]).
    pub debug: debug::DebugState,
    /// MSRs without a dedicated field.
    pub msrs: BTreeMap<u32, u64>,
    /// Retired instructions.
    pub insn_count: u64,
    /// The state of the generator behind RDRAND/RDSEED (see `exec::next_random`).
    pub rng_state: u64,
    /// Waiting in HLT (or MWAIT, see `monitor`).
    pub halted: bool,
    /// The MONITOR/MWAIT state (`exec/monitor.rs`).
    pub monitor: exec::Monitor,
    /// An application processor after INIT: waiting for a start-up IPI (SDM Vol. 3A
    /// §9.4.4.1); it executes nothing until then.
    pub wait_for_sipi: bool,
    /// A vector injected on INTR by the harness ([`crate::Machine::inject_interrupt`]).
    pub intr: Option<u8>,
    /// The platform's interrupt line for this vCPU (its local APIC has a deliverable
    /// vector, or the 8259A an ExtINT); the vector is fetched by the acknowledge cycle.
    pub intr_line: bool,
    /// The local APIC ID (the vCPU's index).
    pub apic_id: u32,
    /// An NMI is waiting to be delivered.
    pub nmi_pending: bool,
    /// NMIs are blocked: from the delivery of an NMI until the next IRET (SDM Vol. 3A
    /// §6.7.1 "Handling Multiple NMIs").
    pub nmi_blocked: bool,
    /// Set by STI (with IF = 0 before) and by MOV SS/POP SS: the run loop turns it into
    /// `shadow_at` once the instruction has retired.
    pub shadow_pending: bool,
    /// Set by an instruction that faults after a point of no return (a task switch
    /// past its commit point): the fault is delivered with the new RIP, not the
    /// instruction's (SDM Vol. 3A §8.3 step 12 and Table 8-2). Consumed by the run loop.
    pub rip_committed: bool,
    /// Set by every successful event delivery (the single-step logic needs to know that
    /// an INT n delivered instead of retiring normally).
    pub delivered: bool,
    /// Interrupts (and NMI) are inhibited while `insn_count` equals this value: for the
    /// one instruction after STI or MOV SS/POP SS (SDM Vol. 3A §6.8.3; Vol. 2B "STI").
    pub shadow_at: u64,
    /// Derived: the operating mode.
    pub mode: CpuMode,
    /// Derived: code size in bits (16, 32, 64).
    pub code_bits: u8,
    /// Derived: the current privilege level.
    pub cpl: u8,
    /// The front-end TLB (a cache: not saved in snapshots, empty after a restore).
    #[serde(skip)]
    pub tlb: Tlb,
    /// Set by instructions that change state a decoded block depends on (mode, paging,
    /// self-modifying writes): the run loop leaves the block after this instruction.
    pub end_block: bool,
}

impl Default for Cpu {
    fn default() -> Self {
        Self::new()
    }
}

impl Cpu {
    /// The state after RESET, except that CS:IP is 0000:0000 (the platform sets the
    /// reset vector or the boot entry point).
    pub fn new() -> Self {
        let mut c = Self {
            gpr: [0; 16],
            rip: 0,
            flags: Flags::default(),
            seg: [Segment::real_mode(0); 6],
            ldtr: Segment { attr: attr::P | 2, limit: 0xFFFF, ..Segment::default() },
            tr: Segment { attr: attr::P | 3, limit: 0xFFFF, ..Segment::default() },
            gdtr: DescriptorTable { base: 0, limit: 0xFFFF },
            idtr: DescriptorTable { base: 0, limit: 0x3FF },
            cr0: cr0::ET | cr0::NW | cr0::CD,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            cr8: 0,
            efer: 0,
            xcr0: 1,
            pkru: 0,
            pdpte: [0; 4],
            dr: [0, 0, 0, 0, 0xFFFF_0FF0, 0x400, 0xFFFF_0FF0, 0x400],
            debug: debug::DebugState::default(),
            msrs: BTreeMap::new(),
            insn_count: 0,
            rng_state: exec::DEFAULT_RNG_SEED,
            halted: false,
            monitor: exec::Monitor::default(),
            wait_for_sipi: false,
            intr: None,
            intr_line: false,
            apic_id: 0,
            nmi_pending: false,
            nmi_blocked: false,
            shadow_pending: false,
            rip_committed: false,
            delivered: false,
            shadow_at: u64::MAX,
            mode: CpuMode::Real,
            code_bits: 16,
            cpl: 0,
            tlb: Tlb::new(),
            end_block: false,
        };
        c.seg[SegReg::Cs as usize].attr |= attr::CODE;
        c.update_mode();
        c
    }

    /// Recomputes the derived mode fields; call after changing CR0, EFER, EFLAGS.VM or CS.
    pub fn update_mode(&mut self) {
        let cs = self.seg[SegReg::Cs as usize];
        let lma = self.efer & efer::LMA != 0;
        self.mode = if self.cr0 & cr0::PE == 0 {
            CpuMode::Real
        } else if self.flags.bit(flags::VM) {
            CpuMode::V86
        } else if lma && cs.attr & attr::L != 0 {
            CpuMode::Long64
        } else if lma {
            CpuMode::Compat
        } else {
            CpuMode::Protected
        };
        self.code_bits = match self.mode {
            CpuMode::Long64 => 64,
            CpuMode::V86 => 16,
            _ if cs.attr & attr::DB != 0 => 32,
            _ => 16,
        };
        self.cpl = match self.mode {
            CpuMode::Real => 0,
            CpuMode::V86 => 3,
            _ => (cs.selector & 3) as u8,
        };
        self.tlb.set_pcid(self.pcid());
        self.end_block = true;
    }

    /// The current PCID: CR3[11:0] with CR4.PCIDE = 1, else 0 (SDM Vol. 3A §4.10.1).
    #[inline]
    pub fn pcid(&self) -> u16 {
        if self.cr4 & regs::cr4::PCIDE != 0 {
            (self.cr3 & 0xFFF) as u16
        } else {
            0
        }
    }

    /// A segment register.
    #[inline(always)]
    pub fn seg(&self, s: SegReg) -> &Segment {
        &self.seg[s as usize]
    }

    /// The stack address size in bytes: 8 in 64-bit mode, else 4 or 2 by SS.B.
    #[inline]
    pub fn stack_size(&self) -> u8 {
        if self.mode == CpuMode::Long64 {
            8
        } else if self.seg[SegReg::Ss as usize].attr & attr::DB != 0 {
            4
        } else {
            2
        }
    }

    /// Whether paging is on.
    #[inline(always)]
    pub fn paging(&self) -> bool {
        self.cr0 & cr0::PG != 0
    }

    /// Loads a segment register in real or V86 mode (no descriptor: base = sel * 16).
    pub fn load_seg_real(&mut self, s: SegReg, selector: u16) {
        let seg = &mut self.seg[s as usize];
        seg.selector = selector;
        seg.base = u64::from(selector) << 4;
        if self.mode == CpuMode::V86 {
            *seg =
                Segment { attr: seg.attr | (3 << attr::DPL_SHIFT), ..Segment::real_mode(selector) };
        }
    }

    /// The instruction pointer masked to the current code size.
    #[inline(always)]
    pub fn ip_mask(&self) -> u64 {
        match self.code_bits {
            64 => u64::MAX,
            32 => 0xFFFF_FFFF,
            _ => 0xFFFF,
        }
    }

    /// A read of a general-purpose register of `size` bytes; `hi8` selects AH..BH.
    #[inline(always)]
    pub fn reg(&self, idx: u8, size: u8, hi8: bool) -> u64 {
        let v = self.gpr[usize::from(idx & 15)];
        if hi8 {
            (v >> 8) & 0xFF
        } else {
            v & flags::size_mask(size)
        }
    }

    /// A write of a general-purpose register: 8- and 16-bit writes merge, 32-bit writes
    /// zero-extend, 64-bit writes replace.
    #[inline(always)]
    pub fn set_reg(&mut self, idx: u8, size: u8, hi8: bool, v: u64) {
        let r = &mut self.gpr[usize::from(idx & 15)];
        *r = match (size, hi8) {
            (1, true) => (*r & !0xFF00) | ((v & 0xFF) << 8),
            (1, false) => (*r & !0xFF) | (v & 0xFF),
            (2, _) => (*r & !0xFFFF) | (v & 0xFFFF),
            (4, _) => v & 0xFFFF_FFFF,
            _ => v,
        };
    }
}
