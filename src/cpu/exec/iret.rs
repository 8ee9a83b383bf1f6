//! IRET/IRETD/IRETQ in every form (SDM Vol. 2A "IRET/IRETD/IRETQ", Operation): real
//! mode, virtual-8086 mode (IOPL = 3, and the VME form with VIF), task return (NT = 1),
//! protected-mode return to the same or an outer privilege level, return to V86 mode,
//! and the IA-32e forms that always pop SS:RSP in 64-bit mode.

use crate::cpu::fault::{gp, np, ExecResult, Fault};
use crate::cpu::flags::{
    size_mask, AC, AF, CF, DF, ID, IF, IOPL, NT, OF, PF, RF, SF, TF, VIF, VIP, VM, ZF,
};
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::regs::{attr, cr4, efer, SegReg, Segment};
use crate::cpu::segment::{segment_from_descriptor, StackLoad};
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{Code, Instruction};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    match i.code() {
        Code::Iretw => Some(iret::<2>),
        Code::Iretd => Some(iret::<4>),
        Code::Iretq => Some(iret::<8>),
        _ => None,
    }
}

fn iret<const SIZE: u8>(m: &mut Machine, _i: &Insn) -> ExecResult {
    // IRET ends NMI blocking even if it faults (SDM Vol. 3A §6.7.1).
    if crate::nested::vmx::iret_unblocks_nmi(m) {
        m.cpu.nmi_blocked = false;
    }
    let r = match m.cpu.mode {
        CpuMode::Real => real(m, SIZE),
        CpuMode::V86 => v86(m, SIZE),
        _ => protected(m, SIZE),
    };
    m.cpu.update_mode();
    r
}

/// Reads the `n`th stack slot of `size` bytes above the stack top.
fn slot(m: &mut Machine, n: u64, size: u8) -> Result<u64, Fault> {
    m.stack_peek(n * u64::from(size), size)
}

/// The flags a real-mode or IOPL-3 V86-mode IRET loads: everything but VM, VIP, VIF
/// (and IOPL in V86 mode); a 16-bit IRET loads only the low 16 bits.
fn real_flags(m: &mut Machine, new: u64, size: u8, v86: bool) {
    let mut keep = VM | VIP | VIF;
    if v86 {
        keep |= IOPL;
    }
    if size == 2 {
        keep |= !0xFFFF;
    }
    let old = m.cpu.flags.get();
    m.cpu.flags.set((old & keep) | (new & !keep));
}

fn real(m: &mut Machine, size: u8) -> ExecResult {
    let ip = slot(m, 0, size)?;
    let cs = slot(m, 1, size)? as u16;
    let new = slot(m, 2, size)?;
    if ip > u64::from(m.cpu.seg[SegReg::Cs as usize].limit) {
        return gp(0);
    }
    m.cpu.load_seg_real(SegReg::Cs, cs);
    m.cpu.rip = ip;
    real_flags(m, new, size, false);
    m.sp_add(3 * u64::from(size));
    Ok(())
}

/// V86 mode: with IOPL = 3 a real-mode style return; with IOPL < 3 only the 16-bit form
/// under CR4.VME, which loads VIF from the popped IF (SDM Vol. 3A §20.4.2 "Virtual
/// Interrupt Flag", Vol. 2A "IRET" mode tables).
fn v86(m: &mut Machine, size: u8) -> ExecResult {
    let iopl = m.cpu.flags.iopl();
    let vme = m.cpu.cr4 & cr4::VME != 0;
    if iopl < 3 && !(vme && size == 2) {
        return gp(0);
    }
    let ip = slot(m, 0, size)?;
    let cs = slot(m, 1, size)? as u16;
    let new = slot(m, 2, size)?;
    if ip > 0xFFFF {
        return gp(0);
    }
    if iopl == 3 {
        m.cpu.load_seg_real(SegReg::Cs, cs);
        m.cpu.rip = ip;
        real_flags(m, new, size, true);
    } else {
        let old = m.cpu.flags.get();
        if (new & IF != 0 && old & VIP != 0) || new & TF != 0 {
            return gp(0);
        }
        m.cpu.load_seg_real(SegReg::Cs, cs);
        m.cpu.rip = ip;
        // IF and IOPL stay; VIF takes the popped IF.
        let keep = !0xFFFF | IF | IOPL;
        let mut v = (old & keep) | (new & !keep);
        v = if new & IF != 0 { v | VIF } else { v & !VIF };
        m.cpu.flags.set(v);
    }
    m.sp_add(3 * u64::from(size));
    Ok(())
}

/// A validated code segment to return to.
struct ReturnCs {
    seg: Segment,
    desc: u64,
    desc_lin: u64,
}

/// The CS checks of a protected-mode IRET (SDM "IRET" PROTECTED-MODE-RETURN): #GP(0)
/// for null, #GP(selector) for RPL < CPL, a non-code descriptor, conforming DPL > RPL or
/// non-conforming DPL != RPL, and the L+D combination; #NP(selector) if not present.
fn return_cs(m: &mut Machine, sel: u16) -> Result<ReturnCs, Fault> {
    let err = u32::from(sel & 0xFFFC);
    if sel & 0xFFFC == 0 {
        return gp(0);
    }
    let rpl = (sel & 3) as u8;
    if rpl < m.cpu.cpl {
        return gp(err);
    }
    let (desc, desc_lin) = m.supervisor(|m| m.read_descriptor(sel))?;
    let seg = segment_from_descriptor(sel, desc);
    if seg.attr & attr::S == 0 || seg.attr & attr::CODE == 0 {
        return gp(err);
    }
    let dpl = seg.dpl();
    let conforming = seg.attr & attr::DC != 0;
    if (conforming && dpl > rpl) || (!conforming && dpl != rpl) {
        return gp(err);
    }
    if m.cpu.efer & efer::LMA != 0 && seg.attr & attr::L != 0 && seg.attr & attr::DB != 0 {
        return gp(err);
    }
    if !seg.present() {
        return np(err);
    }
    Ok(ReturnCs { seg, desc, desc_lin })
}

fn protected(m: &mut Machine, size: u8) -> ExecResult {
    let lma = m.cpu.efer & efer::LMA != 0;
    let old = m.cpu.flags.get();
    if old & NT != 0 {
        // SDM: in IA-32e mode IRET with NT = 1 is #GP(0); elsewhere a task return.
        return if lma { gp(0) } else { m.task_return() };
    }
    let ip = slot(m, 0, size)?;
    let sel = slot(m, 1, size)? as u16;
    let new = slot(m, 2, size)?;
    let cpl = m.cpu.cpl;
    if !lma && cpl == 0 && size == 4 && new & VM != 0 {
        return to_v86(m, ip, sel, new);
    }
    let t = return_cs(m, sel)?;
    let rpl = (sel & 3) as u8;
    let to_64 = lma && t.seg.attr & attr::L != 0;
    if to_64 {
        if !m.canonical(ip) {
            return gp(0);
        }
    } else if ip > u64::from(t.seg.limit) {
        return gp(0);
    }
    // In 64-bit mode IRET always pops SS:RSP; elsewhere only on a privilege change.
    let pop_ss = m.cpu.mode == CpuMode::Long64 || rpl > cpl;
    let stack = if pop_ss {
        let sp = slot(m, 3, size)?;
        let ss_sel = slot(m, 4, size)? as u16;
        // A null SS is allowed only for a return to 64-bit code at CPL < 3.
        let to_64bit = to_64 && m.cpu.mode == CpuMode::Long64;
        Some((sp, m.stack_segment(ss_sel, rpl, StackLoad::Return { to_64bit })?))
    } else {
        None
    };
    // The flags a protected-mode IRET may load depend on the CPL before the return.
    let iopl = m.cpu.flags.iopl();
    let mut set = CF | PF | AF | ZF | SF | TF | DF | OF | NT;
    if size >= 4 {
        set |= RF | AC | ID;
    }
    if cpl <= iopl {
        set |= IF;
    }
    if cpl == 0 {
        set |= IOPL;
        if size >= 4 {
            set |= VIF | VIP;
        }
    }
    // Commit.
    m.supervisor(|m| m.mark_descriptor_accessed(t.desc, t.desc_lin))?;
    let mut cs = t.seg;
    cs.attr |= attr::ACCESSED;
    m.cpu.seg[SegReg::Cs as usize] = cs;
    m.cpu.rip = ip;
    m.cpu.flags.set((old & !set) | (new & set));
    match stack {
        Some((sp, (ss_seg, d, lin))) => {
            if let Some(lin) = lin {
                m.supervisor(|m| m.mark_descriptor_accessed(d, lin))?;
            }
            m.cpu.seg[SegReg::Ss as usize] = ss_seg;
            m.cpu.gpr[4] = match size {
                8 => sp,
                4 => sp & 0xFFFF_FFFF,
                _ => (m.cpu.gpr[4] & !0xFFFF) | (sp & 0xFFFF),
            };
            if rpl > cpl {
                m.cpu.update_mode();
                m.invalidate_segments_for_cpl();
            }
        }
        None => m.sp_add(3 * u64::from(size)),
    }
    Ok(())
}

/// RETURN-TO-VIRTUAL-8086-MODE: a 32-bit IRET at CPL 0 with VM set in the popped
/// EFLAGS pops ESP, SS, ES, DS, FS and GS as well and loads them as 8086 segments.
fn to_v86(m: &mut Machine, ip: u64, cs: u16, new: u64) -> ExecResult {
    let mut v = [0u64; 6];
    for (k, x) in v.iter_mut().enumerate() {
        *x = slot(m, 3 + k as u64, 4)?;
    }
    let [sp, ss_sel, es, ds, fs, gs] = v;
    if ip > 0xFFFF {
        return gp(0);
    }
    m.cpu.flags.set(new & size_mask(4));
    m.cpu.update_mode();
    for (s, sel) in [(SegReg::Cs, cs), (SegReg::Ss, ss_sel as u16), (SegReg::Es, es as u16)]
        .into_iter()
        .chain([(SegReg::Ds, ds as u16), (SegReg::Fs, fs as u16), (SegReg::Gs, gs as u16)])
    {
        m.cpu.load_seg_real(s, sel);
    }
    m.cpu.rip = ip;
    m.cpu.gpr[4] = sp & 0xFFFF_FFFF;
    Ok(())
}
