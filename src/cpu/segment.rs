//! Segment-register loads: real-mode and V86 loads, and protected-mode descriptor loads
//! with their checks (SDM Vol. 3A §3.4 "Logical and Linear Addresses", §3.5 "System
//! Descriptor Types", §5.5-§5.8 on privilege checks; SDM Vol. 2B "MOV" and "POP" for the
//! fault list), and the implicit supervisor-mode accesses to descriptor tables and the TSS.

use super::fault::{gp, Exception, ExecResult, Fault};
use super::regs::{attr, SegReg, Segment};
use super::{vector, CpuMode};
use crate::cpuid::Vendor;
use crate::machine::Machine;
use hvsim_mmu::paging::AccessKind;

/// Descriptor bit: accessed (bit 40 of the 8-byte descriptor).
const DESC_ACCESSED: u64 = 1 << 40;

/// System-descriptor types (the type field with S = 0; SDM Vol. 3A §3.5 "System
/// Descriptor Types", Table 3-2). In IA-32e mode types 9/11/12/14/15 name the 64-bit
/// forms and 1/3/4/5/6/7 are invalid.
pub mod sys_type {
    /// 16-bit TSS, available.
    pub const TSS16_AVAIL: u16 = 1;
    /// LDT.
    pub const LDT: u16 = 2;
    /// 16-bit TSS, busy.
    pub const TSS16_BUSY: u16 = 3;
    /// 16-bit call gate.
    pub const CALL_GATE16: u16 = 4;
    /// Task gate.
    pub const TASK_GATE: u16 = 5;
    /// 16-bit interrupt gate.
    pub const INT_GATE16: u16 = 6;
    /// 16-bit trap gate.
    pub const TRAP_GATE16: u16 = 7;
    /// 32-bit (or 64-bit) TSS, available.
    pub const TSS32_AVAIL: u16 = 9;
    /// 32-bit (or 64-bit) TSS, busy.
    pub const TSS32_BUSY: u16 = 11;
    /// 32-bit (or 64-bit) call gate.
    pub const CALL_GATE32: u16 = 12;
    /// 32-bit (or 64-bit) interrupt gate.
    pub const INT_GATE32: u16 = 14;
    /// 32-bit (or 64-bit) trap gate.
    pub const TRAP_GATE32: u16 = 15;
    /// The busy bit of a TSS type (type bit 1).
    pub const TSS_BUSY_BIT: u16 = 2;
}

/// `Err(#TS(code))`.
#[inline]
pub fn ts<T>(code: u32) -> Result<T, Fault> {
    exception(vector::TS, code)
}

/// `Err(exception vector(code))`.
#[inline]
pub fn exception<T>(vector: u8, code: u32) -> Result<T, Fault> {
    Err(Fault::from(Exception::with_code(vector, code)))
}

/// The error code for a selector (SDM Vol. 3A §6.13 "Error Code": index and TI; EXT and
/// IDT are 0 for faults raised by instructions).
#[inline]
pub fn selector_error(selector: u16) -> u32 {
    u32::from(selector & 0xFFFC)
}

/// Converts an 8-byte code/data descriptor into the hidden-cache form.
pub fn segment_from_descriptor(selector: u16, d: u64) -> Segment {
    let base = ((d >> 16) & 0xFF_FFFF) | (((d >> 56) & 0xFF) << 24);
    let raw_limit = ((d & 0xFFFF) | (((d >> 48) & 0xF) << 16)) as u32;
    let a = ((d >> 40) & 0xFF) as u16 | ((((d >> 52) & 0xF) as u16) << 12);
    let limit = if a & attr::G != 0 { (raw_limit << 12) | 0xFFF } else { raw_limit };
    Segment { selector, base, limit, attr: a }
}

/// The stack-segment checks differ by who loads SS; see [`Machine::stack_segment`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StackLoad {
    /// A far RET/IRET to an outer level: invalid selectors raise #GP; a null selector
    /// is allowed when returning to 64-bit code at CPL < 3.
    Return {
        /// The return CS is a 64-bit code segment.
        to_64bit: bool,
    },
    /// CALL through a gate to an inner level: invalid selectors raise #TS.
    CallGate,
    /// A task switch (SDM Vol. 3A §8.3, Table 8-2): invalid selectors raise #TS, and
    /// presence is checked before the DPL.
    TaskSwitch,
}

impl Machine {
    /// Runs `f` with paging checks at CPL 0 (an explicit supervisor-mode access, which
    /// honours EFLAGS.AC). System-structure accesses use the `system_*` functions below
    /// instead, which are implicit supervisor-mode accesses.
    pub fn supervisor<T>(&mut self, f: impl FnOnce(&mut Machine) -> T) -> T {
        self.with_cpl(0, f)
    }

    /// Reads `N` bytes at linear address `lin` as an implicit supervisor-mode access:
    /// supervisor whatever the CPL, and SMAP applies even with EFLAGS.AC = 1 (SDM Vol. 3A
    /// §4.6 "Access Rights": "accesses to the global descriptor table (GDT) or local
    /// descriptor table (LDT) to load a segment descriptor; accesses to the interrupt
    /// descriptor table (IDT) when delivering an interrupt or exception; and accesses to
    /// the task-state segment (TSS) ... are called implicit supervisor-mode accesses
    /// regardless of CPL"; §4.6.1: "If EFLAGS.AC = 0 or the access is implicit, data may
    /// not be read from any user-mode address").
    pub fn system_read<const N: usize>(&mut self, lin: u64) -> Result<[u8; N], Fault> {
        self.read_lin_implicit(lin)
    }

    /// Reads a `size`-byte (1, 2, 4, 8) value at `lin` as an implicit supervisor access.
    pub fn system_read_sized(&mut self, lin: u64, size: u8) -> Result<u64, Fault> {
        Ok(match size {
            1 => u64::from(self.read_lin_implicit::<1>(lin)?[0]),
            2 => u64::from(u16::from_le_bytes(self.read_lin_implicit(lin)?)),
            4 => u64::from(u32::from_le_bytes(self.read_lin_implicit(lin)?)),
            _ => u64::from_le_bytes(self.read_lin_implicit(lin)?),
        })
    }

    /// Writes a `size`-byte value at `lin` as an implicit supervisor access (accessed
    /// and busy bits, the TSS fields a task switch saves).
    pub fn system_write_sized(&mut self, lin: u64, size: u8, v: u64) -> ExecResult {
        let bytes = v.to_le_bytes();
        self.write_lin_implicit(lin, &bytes[..usize::from(size.clamp(1, 8))])
    }

    /// Checks that `[lin, lin + len)` can be written by an implicit supervisor access
    /// without a page fault, touching nothing (the page walks set accessed bits only).
    pub fn probe_system_write(&mut self, lin: u64, len: u64) -> ExecResult {
        self.translate_implicit(lin, AccessKind::Write)?;
        self.translate_implicit(lin.wrapping_add(len.saturating_sub(1)), AccessKind::Write)?;
        Ok(())
    }

    /// The linear address of the 8-byte descriptor slot `selector` names in the GDT or
    /// LDT, or `None` if the slot lies beyond the table limit (or TI = 1 with a null
    /// LDTR). `extra` more bytes must fit too (8 for a 16-byte IA-32e system descriptor).
    pub fn descriptor_slot(&self, selector: u16, extra: u64) -> Option<u64> {
        let (base, limit) = if selector & 4 != 0 {
            if !self.cpu.ldtr.present() {
                return None;
            }
            (self.cpu.ldtr.base, self.cpu.ldtr.limit)
        } else {
            (self.cpu.gdtr.base, u32::from(self.cpu.gdtr.limit))
        };
        let off = u64::from(selector & 0xFFF8);
        if off + 7 + extra > u64::from(limit) {
            return None;
        }
        Some(base.wrapping_add(off))
    }

    /// Reads the 8-byte descriptor `selector` names, or `None` if it is beyond the table
    /// limit; page faults on the read are raised.
    pub fn try_read_descriptor(&mut self, selector: u16) -> Result<Option<(u64, u64)>, Fault> {
        match self.descriptor_slot(selector, 0) {
            None => Ok(None),
            Some(lin) => Ok(Some((u64::from_le_bytes(self.system_read(lin)?), lin))),
        }
    }

    /// Reads the 8-byte descriptor that `selector` names in the GDT or LDT. A selector
    /// beyond the table limit raises #GP(selector).
    pub fn read_descriptor(&mut self, selector: u16) -> Result<(u64, u64), Fault> {
        self.read_descriptor_or(selector, vector::GP)
    }

    /// As [`Self::read_descriptor`], raising `vector`(selector) for a selector beyond the
    /// table limit.
    pub fn read_descriptor_or(&mut self, selector: u16, vector: u8) -> Result<(u64, u64), Fault> {
        match self.try_read_descriptor(selector)? {
            Some(d) => Ok(d),
            None => exception(vector, selector_error(selector)),
        }
    }

    /// Sets the accessed bit of a descriptor if it is clear.
    pub fn mark_descriptor_accessed(&mut self, d: u64, lin: u64) -> ExecResult {
        if d & DESC_ACCESSED == 0 {
            let b = (((d | DESC_ACCESSED) >> 40) & 0xFF) as u8;
            self.system_write_sized(lin.wrapping_add(5), 1, u64::from(b))?;
        }
        Ok(())
    }

    /// The hidden-cache state of a null selector in segment register `s`: unusable
    /// (attributes 0), except SS, which keeps a DPL of `cpl` (SDM Vol. 3A §5.4.1.1
    /// "Segment Loading Instructions in IA-32e Mode").
    ///
    /// The base differs by vendor, and matters for FS and GS, whose base 64-bit mode uses
    /// even with a null selector: Intel processors clear it; AMD processors without
    /// CPUID Fn8000_0021_EAX[NullSelectorClearsBase] (the AMD model, family 17h, has no
    /// such leaf) leave base and limit unchanged (APM Vol. 2 §4.5.3 "Segment Registers in
    /// 64-Bit Mode"; Linux `detect_null_seg_behavior`, X86_BUG_NULL_SEG).
    pub fn null_segment(&self, s: SegReg, selector: u16, cpl: u8) -> Segment {
        let old = self.cpu.seg[s as usize];
        let keeps_base = self.cpuid.vendor() == Vendor::Amd && s >= SegReg::Fs;
        Segment {
            selector,
            base: if keeps_base { old.base } else { 0 },
            limit: if keeps_base { old.limit } else { 0 },
            attr: if s == SegReg::Ss {
                (u16::from(cpl) << attr::DPL_SHIFT) | attr::S | attr::RW
            } else {
                0
            },
        }
    }

    /// Loads segment register `s` with `selector` as MOV/POP/LDS do.
    pub fn load_segment(&mut self, s: SegReg, selector: u16) -> ExecResult {
        match self.cpu.mode {
            CpuMode::Real | CpuMode::V86 => {
                self.cpu.load_seg_real(s, selector);
                if s == SegReg::Ss {
                    self.cpu.update_mode();
                }
                return Ok(());
            }
            _ => {}
        }
        let cpl = self.cpu.cpl;
        if s == SegReg::Ss {
            let (seg, d, lin) = self.stack_segment(
                selector,
                cpl,
                StackLoad::Return { to_64bit: self.cpu.mode == CpuMode::Long64 },
            )?;
            // SDM Vol. 2B "MOV": a null SS is #GP(0) unless in 64-bit mode at CPL < 3
            // with RPL = CPL (checked by `stack_segment`).
            if let Some(lin) = lin {
                self.mark_descriptor_accessed(d, lin)?;
            }
            self.cpu.seg[SegReg::Ss as usize] = seg;
            self.cpu.update_mode();
            return Ok(());
        }
        let rpl = (selector & 3) as u8;
        let err = selector_error(selector);
        if selector & 0xFFFC == 0 {
            self.cpu.seg[s as usize] = self.null_segment(s, selector, cpl);
            return Ok(());
        }
        let (d, lin) = self.read_descriptor(selector)?;
        let mut seg = segment_from_descriptor(selector, d);
        let dpl = seg.dpl();
        let code = seg.attr & attr::CODE != 0;
        // SDM Vol. 2B "MOV": not a data or readable code segment -> #GP(selector);
        // data or non-conforming code with RPL > DPL or CPL > DPL -> #GP(selector);
        // not present -> #NP(selector).
        if seg.attr & attr::S == 0 || (code && seg.attr & attr::RW == 0) {
            return gp(err);
        }
        let conforming_code = code && seg.attr & attr::DC != 0;
        if !conforming_code && (rpl > dpl || cpl > dpl) {
            return gp(err);
        }
        if !seg.present() {
            return super::fault::np(err);
        }
        self.mark_descriptor_accessed(d, lin)?;
        seg.attr |= attr::ACCESSED;
        if self.cpu.mode == CpuMode::Long64 && s >= SegReg::Fs {
            // In 64-bit mode the descriptor supplies only the low 32 bits of the FS/GS
            // base (the MSRs hold the full value).
            seg.base &= 0xFFFF_FFFF;
        }
        self.cpu.seg[s as usize] = seg;
        Ok(())
    }

    /// Checks `selector` as the stack segment for privilege level `cpl` and returns the
    /// hidden-cache form, the raw descriptor and its address (`None` for an allowed
    /// null selector). The caller loads it. Checks and faults, in order (SDM Vol. 2B
    /// "MOV", "RET", "IRET"; Vol. 2A "CALL" MORE-PRIVILEGE; Vol. 3A Table 8-2):
    /// null -> #GP(0)/#TS(0); beyond the table -> invalid(selector); RPL != `cpl`, not
    /// writable data, DPL != `cpl` -> invalid(selector); not present -> #SS(selector).
    pub fn stack_segment(
        &mut self,
        selector: u16,
        cpl: u8,
        how: StackLoad,
    ) -> Result<(Segment, u64, Option<u64>), Fault> {
        let invalid = match how {
            StackLoad::Return { .. } => vector::GP,
            StackLoad::CallGate | StackLoad::TaskSwitch => vector::TS,
        };
        let rpl = (selector & 3) as u8;
        let err = selector_error(selector);
        if selector & 0xFFFC == 0 {
            if let StackLoad::Return { to_64bit: true } = how {
                if cpl < 3 && rpl == cpl {
                    return Ok((self.null_segment(SegReg::Ss, selector, cpl), 0, None));
                }
            }
            return exception(invalid, 0);
        }
        let (d, lin) = self.read_descriptor_or(selector, invalid)?;
        let mut seg = segment_from_descriptor(selector, d);
        let writable_data = seg.attr & (attr::S | attr::CODE | attr::RW) == attr::S | attr::RW;
        if how == StackLoad::TaskSwitch {
            // Table 8-2: valid (writable data), present (#SS), DPL = CPL, DPL = RPL.
            if !writable_data {
                return exception(invalid, err);
            }
            if !seg.present() {
                return super::fault::ss(err);
            }
            if seg.dpl() != cpl || rpl != cpl {
                return exception(invalid, err);
            }
        } else {
            if rpl != cpl || !writable_data || seg.dpl() != cpl {
                return exception(invalid, err);
            }
            if !seg.present() {
                return super::fault::ss(err);
            }
        }
        seg.attr |= attr::ACCESSED;
        Ok((seg, d, Some(lin)))
    }

    /// After a return to an outer privilege level (far RET, IRET): each of ES, DS, FS
    /// and GS that holds a data or non-conforming code segment with DPL < the new CPL is
    /// loaded with a null selector (SDM Vol. 2B "RET", RETURN-TO-OUTER-PRIVILEGE-LEVEL:
    /// "IF segment register points to data or non-conforming code segment and CPL >
    /// segment descriptor DPL THEN SegmentSelector <- 0").
    pub(crate) fn invalidate_segments_for_cpl(&mut self) {
        let cpl = self.cpu.cpl;
        for s in [SegReg::Es, SegReg::Fs, SegReg::Gs, SegReg::Ds] {
            let seg = self.cpu.seg[s as usize];
            let conforming_code = seg.attr & (attr::CODE | attr::DC) == attr::CODE | attr::DC;
            let usable = seg.attr & attr::S != 0 && seg.present();
            if !usable || (!conforming_code && seg.dpl() < cpl) {
                self.cpu.seg[s as usize] = self.null_segment(s, 0, cpl);
            }
        }
    }
}
