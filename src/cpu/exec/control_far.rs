//! LOOP/LOOPcc and JrCXZ, ENTER/LEAVE, and far control transfer: far JMP, far CALL,
//! far RET and IRET.
//!
//! Protected- and long-mode far transfers are emulated for the same-privilege case to a
//! code-segment descriptor. Call gates, task gates, TSS targets and privilege changes
//! report `Unsupported` (they come with the system-instructions work).

use super::control::branch_to;
use crate::cpu::fault::{gp, ud, unsupported, ExecResult, Fault};
use crate::cpu::flags::{
    size_mask, AC, AF, CF, DF, ID, IF, IOPL, NT, OF, PF, RF, SF, TF, VIF, VIP, VM, ZF,
};
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::regs::{attr, efer, SegReg, Segment};
use crate::cpu::segment::segment_from_descriptor;
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{Code, Instruction, OpKind};

const LOOP: u8 = 0;
const LOOPE: u8 = 1;
const LOOPNE: u8 = 2;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    use Code::*;
    Some(match i.code() {
        Loop_rel8_16_CX | Loop_rel8_32_CX => loop_::<LOOP, 2>,
        Loop_rel8_16_ECX | Loop_rel8_32_ECX | Loop_rel8_64_ECX => loop_::<LOOP, 4>,
        Loop_rel8_16_RCX | Loop_rel8_64_RCX => loop_::<LOOP, 8>,
        Loope_rel8_16_CX | Loope_rel8_32_CX => loop_::<LOOPE, 2>,
        Loope_rel8_16_ECX | Loope_rel8_32_ECX | Loope_rel8_64_ECX => loop_::<LOOPE, 4>,
        Loope_rel8_16_RCX | Loope_rel8_64_RCX => loop_::<LOOPE, 8>,
        Loopne_rel8_16_CX | Loopne_rel8_32_CX => loop_::<LOOPNE, 2>,
        Loopne_rel8_16_ECX | Loopne_rel8_32_ECX | Loopne_rel8_64_ECX => loop_::<LOOPNE, 4>,
        Loopne_rel8_16_RCX | Loopne_rel8_64_RCX => loop_::<LOOPNE, 8>,
        Jcxz_rel8_16 | Jcxz_rel8_32 => jrcxz::<2>,
        Jecxz_rel8_16 | Jecxz_rel8_32 | Jecxz_rel8_64 => jrcxz::<4>,
        Jrcxz_rel8_16 | Jrcxz_rel8_64 => jrcxz::<8>,
        Enterw_imm16_imm8 | Enterd_imm16_imm8 | Enterq_imm16_imm8 => enter,
        Leavew | Leaved | Leaveq => leave,
        Jmp_ptr1616 | Jmp_ptr1632 | Jmp_m1616 | Jmp_m1632 | Jmp_m1664 => far_jmp_call::<false>,
        Call_ptr1616 | Call_ptr1632 | Call_m1616 | Call_m1632 | Call_m1664 => far_jmp_call::<true>,
        Retfw | Retfd | Retfq | Retfw_imm16 | Retfd_imm16 | Retfq_imm16 => retf,
        Iretw | Iretd | Iretq => iret,
        _ => return None,
    })
}

/// LOOP/LOOPE/LOOPNE with a `C`-byte count register (CX, ECX or RCX by address size).
fn loop_<const K: u8, const C: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    let cx = m.cpu.reg(1, C, false).wrapping_sub(1) & size_mask(C);
    let taken = cx != 0
        && match K {
            LOOPE => m.cpu.flags.zf(),
            LOOPNE => !m.cpu.flags.zf(),
            _ => true,
        };
    if taken {
        // A faulting target leaves the count unchanged.
        branch_to(m, i.imm2)?;
    }
    m.cpu.set_reg(1, C, false, cx);
    Ok(())
}

fn jrcxz<const C: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    if m.cpu.reg(1, C, false) == 0 {
        branch_to(m, i.imm2)
    } else {
        Ok(())
    }
}

/// The operand size of ENTER/LEAVE from the decoded form.
fn frame_osize(i: &Insn) -> u8 {
    match i.iced.code() {
        Code::Enterw_imm16_imm8 | Code::Leavew => 2,
        Code::Enterq_imm16_imm8 | Code::Leaveq => 8,
        _ => 4,
    }
}

fn enter(m: &mut Machine, i: &Insn) -> ExecResult {
    let saved = (m.cpu.gpr[4], m.cpu.gpr[5]);
    let r = enter_inner(m, i);
    if r.is_err() {
        (m.cpu.gpr[4], m.cpu.gpr[5]) = saved;
    }
    r
}

/// SDM Vol. 2A "ENTER", Operation.
fn enter_inner(m: &mut Machine, i: &Insn) -> ExecResult {
    let osize = frame_osize(i);
    let alloc = i.imm & 0xFFFF;
    let level = i.imm2 & 31;
    let ss = m.cpu.stack_size();
    let smask = size_mask(ss);
    let bp = m.cpu.gpr[5];
    m.push(bp & size_mask(osize), osize)?;
    let frame = m.cpu.gpr[4] & smask;
    if level > 0 {
        let step = u64::from(osize);
        let mut p = m.cpu.gpr[5];
        for _ in 1..level {
            p = (p & !smask) | (p.wrapping_sub(step) & smask);
            let v = m.read_mem(SegReg::Ss, p & smask, osize)?;
            m.push(v, osize)?;
        }
        m.push(frame, osize)?;
    }
    let rsp = m.cpu.gpr[4];
    let new_sp = rsp.wrapping_sub(alloc) & smask;
    // The new stack top must be writable (SDM: #SS if it is outside the segment).
    if alloc != 0 {
        m.linear(SegReg::Ss, new_sp, 1, true)?;
    }
    m.cpu.set_reg(5, osize, false, frame);
    m.cpu.gpr[4] = (rsp & !smask) | new_sp;
    Ok(())
}

fn leave(m: &mut Machine, i: &Insn) -> ExecResult {
    let osize = frame_osize(i);
    let smask = size_mask(m.cpu.stack_size());
    let sp = m.cpu.gpr[5] & smask;
    let v = m.read_mem(SegReg::Ss, sp, osize)?;
    let rsp = m.cpu.gpr[4];
    m.cpu.gpr[4] = (rsp & !smask) | (sp.wrapping_add(u64::from(osize)) & smask);
    m.cpu.set_reg(5, osize, false, v);
    Ok(())
}

/// A validated protected-mode code-segment target.
struct Target {
    seg: Segment,
    desc: u64,
    desc_lin: u64,
}

/// Checks a same-privilege far transfer to `sel:off` in protected or long mode (SDM
/// Vol. 3A §5.8.1 "Direct Calls or Jumps to Code Segments"; Vol. 2A "JMP", "CALL" and
/// Vol. 2B "RET", "IRET"). For returns (`ret`) the selector's RPL must equal CPL.
fn pm_target(m: &mut Machine, sel: u16, off: u64, ret: bool) -> Result<Target, Fault> {
    let cpl = m.cpu.cpl;
    let rpl = (sel & 3) as u8;
    let err = u32::from(sel & 0xFFFC);
    if sel & 0xFFFC == 0 {
        return gp(0);
    }
    if ret && rpl > cpl {
        return unsupported("far return to an outer privilege level");
    }
    if ret && rpl < cpl {
        return gp(err);
    }
    let (desc, desc_lin) = m.read_descriptor(sel)?;
    let seg = segment_from_descriptor(sel, desc);
    if seg.attr & attr::S == 0 {
        // Call gates (4, 12), task gates (5) and TSS descriptors (1, 3, 9, 11).
        return match seg.attr & 0xF {
            1 | 3 | 4 | 5 | 9 | 11 | 12 if !ret => {
                unsupported("far transfer through a gate or TSS")
            }
            _ => gp(err),
        };
    }
    if seg.attr & attr::CODE == 0 {
        return gp(err);
    }
    let dpl = seg.dpl();
    if seg.attr & attr::DC != 0 {
        // Conforming: DPL <= CPL.
        if dpl > cpl {
            return gp(err);
        }
    } else if rpl > cpl || dpl != cpl {
        // Non-conforming: RPL <= CPL and DPL = CPL.
        return gp(err);
    }
    if !seg.present() {
        return crate::cpu::fault::np(err);
    }
    let lma = m.cpu.efer & efer::LMA != 0;
    let long = lma && seg.attr & attr::L != 0;
    if long && seg.attr & attr::DB != 0 {
        return gp(err);
    }
    if long {
        if !m.canonical(off) {
            return gp(0);
        }
    } else if off > u64::from(seg.limit) {
        return gp(0);
    }
    Ok(Target { seg, desc, desc_lin })
}

/// Loads CS from a validated target (RPL forced to CPL) and jumps to `off`.
fn commit_cs(m: &mut Machine, t: Target, off: u64) -> ExecResult {
    m.mark_descriptor_accessed(t.desc, t.desc_lin)?;
    let mut seg = t.seg;
    seg.attr |= attr::ACCESSED;
    seg.selector = (seg.selector & !3) | u16::from(m.cpu.cpl);
    m.cpu.seg[SegReg::Cs as usize] = seg;
    m.cpu.update_mode();
    m.cpu.rip = off;
    Ok(())
}

/// A real- or V86-mode far transfer: CS = sel with base sel * 16.
fn real_far(m: &mut Machine, sel: u16, off: u64) -> ExecResult {
    if off > u64::from(m.cpu.seg[SegReg::Cs as usize].limit) {
        return gp(0);
    }
    m.cpu.load_seg_real(SegReg::Cs, sel);
    m.cpu.update_mode();
    m.cpu.rip = off;
    Ok(())
}

fn protected(m: &Machine) -> bool {
    !matches!(m.cpu.mode, CpuMode::Real | CpuMode::V86)
}

/// Far JMP (`CALL` = false) and far CALL, direct (ptr16:16/32) or indirect (m16:16/32/64).
fn far_jmp_call<const CALL: bool>(m: &mut Machine, i: &Insn) -> ExecResult {
    let d = &i.iced;
    let (sel, off, size) = match d.op0_kind() {
        OpKind::FarBranch16 => (d.far_branch_selector(), u64::from(d.far_branch16()), 2u8),
        OpKind::FarBranch32 => (d.far_branch_selector(), u64::from(d.far_branch32()), 4),
        OpKind::Memory => {
            let size = (d.memory_size().size() as u8).wrapping_sub(2);
            if !matches!(size, 2 | 4 | 8) {
                return ud();
            }
            let ea = i.ea(m);
            let off = m.read_mem(i.mem.seg, ea, size)?;
            let sel =
                m.read_mem(i.mem.seg, ea.wrapping_add(u64::from(size)) & size_mask(i.asize), 2)?
                    as u16;
            (sel, off, size)
        }
        _ => return ud(),
    };
    let ret_cs = u64::from(m.cpu.seg[SegReg::Cs as usize].selector);
    let ret_ip = m.cpu.rip;
    let target = if protected(m) {
        Some(pm_target(m, sel, off, false)?)
    } else if off > u64::from(m.cpu.seg[SegReg::Cs as usize].limit) {
        return gp(0);
    } else {
        None
    };
    if CALL {
        let saved = m.cpu.gpr[4];
        let pushed = m.push(ret_cs, size).and_then(|_| m.push(ret_ip, size));
        if let Err(e) = pushed {
            m.cpu.gpr[4] = saved;
            return Err(e);
        }
    }
    match target {
        Some(t) => commit_cs(m, t, off),
        None => real_far(m, sel, off),
    }
}

/// The operand size of RETF/IRET.
fn ret_size(i: &Insn) -> u8 {
    match i.iced.code() {
        Code::Retfw | Code::Retfw_imm16 | Code::Iretw => 2,
        Code::Retfq | Code::Retfq_imm16 | Code::Iretq => 8,
        _ => 4,
    }
}

fn retf(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = ret_size(i);
    let step = u64::from(size);
    let off = m.stack_peek(0, size)?;
    let sel = m.stack_peek(step, size)? as u16;
    let extra = if d_has_imm(i) { i.imm & 0xFFFF } else { 0 };
    if protected(m) {
        let t = pm_target(m, sel, off, true)?;
        commit_cs(m, t, off)?;
    } else {
        real_far(m, sel, off)?;
    }
    m.sp_add(2 * step + extra);
    Ok(())
}

fn d_has_imm(i: &Insn) -> bool {
    matches!(i.iced.code(), Code::Retfw_imm16 | Code::Retfd_imm16 | Code::Retfq_imm16)
}

fn iret(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = ret_size(i);
    let step = u64::from(size);
    let off = m.stack_peek(0, size)?;
    let sel = m.stack_peek(step, size)? as u16;
    let new = m.stack_peek(2 * step, size)?;
    let old = m.cpu.flags.get();
    let cpl = m.cpu.cpl;
    let iopl = m.cpu.flags.iopl();
    match m.cpu.mode {
        CpuMode::Real | CpuMode::V86 => {
            // SDM Vol. 2B "IRET": in V86 mode IRET needs IOPL = 3 (VME is not modelled)
            // and cannot change IOPL; VM, VIP and VIF are never loaded here.
            if m.cpu.mode == CpuMode::V86 && iopl < 3 {
                return gp(0);
            }
            let mut keep = VM | VIP | VIF;
            if m.cpu.mode == CpuMode::V86 {
                keep |= IOPL;
            }
            if size == 2 {
                keep |= !0xFFFF;
            }
            real_far(m, sel, off & size_mask(size))?;
            m.cpu.flags.set((old & keep) | (new & !keep));
            m.sp_add(3 * step);
        }
        _ => {
            let lma = m.cpu.efer & efer::LMA != 0;
            if old & NT != 0 {
                // SDM: in IA-32e mode IRET with NT = 1 is #GP(0); elsewhere a task return.
                return if lma {
                    gp(0)
                } else {
                    unsupported("IRET with EFLAGS.NT set (task return)")
                };
            }
            if !lma && cpl == 0 && size == 4 && new & VM != 0 {
                return unsupported("IRET to virtual-8086 mode");
            }
            let t = pm_target(m, sel, off, true)?;
            // In 64-bit mode IRET always pops SS:RSP as well.
            let pop_ss = m.cpu.mode == CpuMode::Long64;
            let (new_sp, new_ss) = if pop_ss {
                (m.stack_peek(3 * step, size)?, m.stack_peek(4 * step, size)? as u16)
            } else {
                (0, 0)
            };
            // Same-privilege IRET (SDM Vol. 2B "IRET", RETURN-TO-SAME-PRIVILEGE-LEVEL).
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
            if pop_ss {
                m.load_segment(SegReg::Ss, new_ss)?;
            }
            commit_cs(m, t, off)?;
            m.cpu.flags.set((old & !set) | (new & set));
            if pop_ss {
                m.cpu.gpr[4] = new_sp & size_mask(size);
            } else {
                m.sp_add(3 * step);
            }
        }
    }
    m.cpu.update_mode();
    Ok(())
}
