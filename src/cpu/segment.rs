//! Segment-register loads: real-mode and V86 loads, and protected-mode descriptor loads
//! with their checks (SDM Vol. 3A §3.4 "Logical and Linear Addresses", §5.5-§5.8 on
//! privilege checks; SDM Vol. 2B "MOV" and "POP" for the fault list).

use super::fault::{gp, ExecResult, Fault};
use super::regs::{attr, SegReg, Segment};
use super::CpuMode;
use crate::machine::Machine;
use hvsim_mmu::paging::AccessKind;

/// Descriptor bit: accessed (bit 40 of the 8-byte descriptor).
const DESC_ACCESSED: u64 = 1 << 40;

/// Converts an 8-byte code/data descriptor into the hidden-cache form.
pub fn segment_from_descriptor(selector: u16, d: u64) -> Segment {
    let base = ((d >> 16) & 0xFF_FFFF) | (((d >> 56) & 0xFF) << 24);
    let raw_limit = ((d & 0xFFFF) | (((d >> 48) & 0xF) << 16)) as u32;
    let a = ((d >> 40) & 0xFF) as u16 | ((((d >> 52) & 0xF) as u16) << 12);
    let limit = if a & attr::G != 0 { (raw_limit << 12) | 0xFFF } else { raw_limit };
    Segment { selector, base, limit, attr: a }
}

impl Machine {
    /// Reads the 8-byte descriptor that `selector` names in the GDT or LDT. A selector
    /// beyond the table limit raises #GP(selector).
    pub fn read_descriptor(&mut self, selector: u16) -> Result<(u64, u64), Fault> {
        let (base, limit) = if selector & 4 != 0 {
            if !self.cpu.ldtr.present() {
                return gp(u32::from(selector & 0xFFFC));
            }
            (self.cpu.ldtr.base, self.cpu.ldtr.limit)
        } else {
            (self.cpu.gdtr.base, u32::from(self.cpu.gdtr.limit))
        };
        let off = u64::from(selector & 0xFFF8);
        if off + 7 > u64::from(limit) {
            return gp(u32::from(selector & 0xFFFC));
        }
        let lin = base.wrapping_add(off);
        let d = u64::from_le_bytes(self.read_lin(lin, AccessKind::Read)?);
        Ok((d, lin))
    }

    /// Sets the accessed bit of a descriptor if it is clear.
    pub fn mark_descriptor_accessed(&mut self, d: u64, lin: u64) -> ExecResult {
        if d & DESC_ACCESSED == 0 {
            let b = (((d | DESC_ACCESSED) >> 40) & 0xFF) as u8;
            self.write_lin(lin.wrapping_add(5), [b])?;
        }
        Ok(())
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
        let rpl = (selector & 3) as u8;
        let err = u32::from(selector & 0xFFFC);
        if selector & 0xFFFC == 0 {
            // A null selector: SS only in 64-bit mode at CPL < 3 with RPL = CPL.
            if s == SegReg::Ss && !(self.cpu.mode == CpuMode::Long64 && cpl < 3 && rpl == cpl) {
                return gp(0);
            }
            let keep_base = self.cpu.mode == CpuMode::Long64 && s >= SegReg::Fs;
            let seg = &mut self.cpu.seg[s as usize];
            *seg = Segment {
                selector,
                base: if keep_base { seg.base } else { 0 },
                limit: 0,
                attr: if s == SegReg::Ss {
                    (u16::from(cpl) << attr::DPL_SHIFT) | attr::S | attr::RW
                } else {
                    0
                },
            };
            return Ok(());
        }
        let (d, lin) = self.read_descriptor(selector)?;
        let seg = segment_from_descriptor(selector, d);
        let dpl = seg.dpl();
        let code = seg.attr & attr::CODE != 0;
        if seg.attr & attr::S == 0 {
            return gp(err);
        }
        if s == SegReg::Ss {
            if rpl != cpl || dpl != cpl || code || seg.attr & attr::RW == 0 {
                return gp(err);
            }
            if !seg.present() {
                return super::fault::ss(err);
            }
        } else {
            if code && seg.attr & attr::RW == 0 {
                return gp(err);
            }
            let conforming_code = code && seg.attr & attr::DC != 0;
            if !conforming_code && (rpl > dpl || cpl > dpl) {
                return gp(err);
            }
            if !seg.present() {
                return super::fault::np(err);
            }
        }
        self.mark_descriptor_accessed(d, lin)?;
        let mut seg = seg;
        seg.attr |= attr::ACCESSED;
        if self.cpu.mode == CpuMode::Long64 && s >= SegReg::Fs {
            // In 64-bit mode the descriptor supplies only the low 32 bits of the FS/GS
            // base (the MSRs hold the full value).
            seg.base &= 0xFFFF_FFFF;
        }
        self.cpu.seg[s as usize] = seg;
        if s == SegReg::Ss {
            self.cpu.update_mode();
        }
        Ok(())
    }
}
