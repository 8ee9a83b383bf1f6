//! LOOP/LOOPcc and JrCXZ, ENTER/LEAVE, and far control transfer: far JMP, far CALL,
//! far RET and IRET.
//!
//! Protected- and long-mode far JMP/CALL go to code segments, through call gates (with
//! the inward stack switch and parameter copy), and to task gates and TSSs (a hardware
//! task switch, `crate::cpu::task`). Far RET returns to the same or an outer privilege
//! level.

use super::control::branch_to;
use crate::cpu::fault::{gp, np, ss, ud, ExecResult, Fault};
use crate::cpu::flags::size_mask;
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::regs::{attr, efer, SegReg, Segment};
use crate::cpu::segment::{segment_from_descriptor, selector_error, sys_type, StackLoad};
use crate::cpu::task::TaskSwitchSource;
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

/// #GP(selector) for a code segment with both L and D set in IA-32e mode (SDM Vol. 2A
/// "JMP"/"CALL": "IF L-bit = 1 and D-bit = 1 and IA32_EFER.LMA = 1 THEN #GP").
fn check_long_code(m: &Machine, seg: &Segment) -> ExecResult {
    let lma = m.cpu.efer & efer::LMA != 0;
    if lma && seg.attr & attr::L != 0 && seg.attr & attr::DB != 0 {
        return gp(selector_error(seg.selector));
    }
    Ok(())
}

/// The privilege and presence checks of a code segment reached at privilege `pl` (CPL
/// for JMP/CALL, the selector's RPL for returns): conforming needs DPL <= `pl`,
/// non-conforming DPL = `pl` (and, for JMP/CALL, RPL <= CPL); then P (SDM Vol. 3A
/// §5.8.1 "Direct Calls or Jumps to Code Segments", Vol. 2B "RET").
fn check_code_privilege(seg: &Segment, pl: u8, cpl: u8) -> ExecResult {
    let err = selector_error(seg.selector);
    let rpl = (seg.selector & 3) as u8;
    if seg.attr & (attr::S | attr::CODE) != attr::S | attr::CODE {
        return gp(err);
    }
    let dpl = seg.dpl();
    if seg.attr & attr::DC != 0 {
        if dpl > pl {
            return gp(err);
        }
    } else if rpl > cpl.max(pl) || dpl != pl {
        return gp(err);
    }
    Ok(())
}

/// #GP(0) if `off` is outside the code segment (or, for 64-bit code, not canonical).
fn check_offset(m: &Machine, seg: &Segment, off: u64) -> ExecResult {
    let long = m.cpu.efer & efer::LMA != 0 && seg.attr & attr::L != 0;
    let ok = if long { m.canonical(off) } else { off <= u64::from(seg.limit) };
    if ok {
        Ok(())
    } else {
        gp(0)
    }
}

/// The code-segment checks shared by direct transfers and same-level returns, in the
/// SDM's order: type, L/D, privilege (at `pl`), presence, offset.
fn code_target(
    m: &Machine,
    seg: Segment,
    desc: u64,
    desc_lin: u64,
    off: u64,
    pl: u8,
) -> Result<Target, Fault> {
    let err = selector_error(seg.selector);
    if seg.attr & attr::CODE == 0 {
        return gp(err);
    }
    check_long_code(m, &seg)?;
    check_code_privilege(&seg, pl, m.cpu.cpl)?;
    if !seg.present() {
        return np(err);
    }
    check_offset(m, &seg, off)?;
    Ok(Target { seg, desc, desc_lin })
}

/// Loads CS from a validated target (RPL forced to CPL) and jumps to `off`.
fn commit_cs(m: &mut Machine, t: Target, off: u64) -> ExecResult {
    let cpl = m.cpu.cpl;
    load_cs(m, t, off, cpl)
}

/// Loads CS from a validated target with RPL = the new CPL `cpl` and jumps to `off`.
fn load_cs(m: &mut Machine, t: Target, off: u64, cpl: u8) -> ExecResult {
    m.mark_descriptor_accessed(t.desc, t.desc_lin)?;
    let mut seg = t.seg;
    seg.attr |= attr::ACCESSED;
    seg.selector = (seg.selector & !3) | u16::from(cpl);
    m.cpu.seg[SegReg::Cs as usize] = seg;
    m.cpu.update_mode();
    m.cpu.rip = off;
    Ok(())
}

/// Runs `f`; if it fails, restores the segment registers and RSP it may have changed,
/// so that a faulting far transfer leaves the architectural state as it was (memory
/// written on the new stack stays written, as on hardware).
fn all_or_nothing(m: &mut Machine, f: impl FnOnce(&mut Machine) -> ExecResult) -> ExecResult {
    let (seg, rsp, rip) = (m.cpu.seg, m.cpu.gpr[4], m.cpu.rip);
    let r = f(m);
    if r.is_err() {
        m.cpu.seg = seg;
        m.cpu.gpr[4] = rsp;
        m.cpu.rip = rip;
        m.cpu.update_mode();
    }
    r
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
    let ret = (u64::from(m.cpu.seg[SegReg::Cs as usize].selector), m.cpu.rip);
    if protected(m) {
        return protected_far(m, sel, off, size, CALL.then_some(ret));
    }
    if off > u64::from(m.cpu.seg[SegReg::Cs as usize].limit) {
        return gp(0);
    }
    all_or_nothing(m, |m| {
        if CALL {
            m.push(ret.0, size)?;
            m.push(ret.1, size)?;
        }
        real_far(m, sel, off)
    })
}

/// A protected- or IA-32e-mode far JMP/CALL (`call` holds the return CS:EIP) to a code
/// segment, call gate, task gate or TSS (SDM Vol. 2A "CALL" and "JMP", Operation).
fn protected_far(
    m: &mut Machine,
    sel: u16,
    off: u64,
    size: u8,
    call: Option<(u64, u64)>,
) -> ExecResult {
    if sel & 0xFFFC == 0 {
        return gp(0);
    }
    let (desc, desc_lin) = m.read_descriptor(sel)?;
    let seg = segment_from_descriptor(sel, desc);
    let err = selector_error(sel);
    if seg.attr & attr::S != 0 {
        let cpl = m.cpu.cpl;
        let t = code_target(m, seg, desc, desc_lin, off, cpl)?;
        return all_or_nothing(m, |m| {
            if let Some((cs, ip)) = call {
                m.push(cs, size)?;
                m.push(ip, size)?;
            }
            commit_cs(m, t, off)
        });
    }
    let lma = m.cpu.efer & efer::LMA != 0;
    // In IA-32e mode only (64-bit) call gates remain; task gates and TSSs are #GP(sel).
    match seg.attr & 0xF {
        sys_type::CALL_GATE32 => call_gate(m, seg, desc, desc_lin, call),
        sys_type::CALL_GATE16 if !lma => call_gate(m, seg, desc, desc_lin, call),
        sys_type::TASK_GATE
        | sys_type::TSS16_AVAIL
        | sys_type::TSS16_BUSY
        | sys_type::TSS32_AVAIL
        | sys_type::TSS32_BUSY
            if !lma =>
        {
            task_target(m, seg, desc, call.is_some())
        }
        _ => gp(err),
    }
}

/// JMP/CALL through a call gate (SDM Vol. 3A §5.8.4 "Accessing a Code Segment Through a
/// Call Gate", §5.8.5 "Stack Switching"; Vol. 2A "CALL" CALL-GATE, "JMP" call-gate
/// path). In IA-32e mode the gate is 16 bytes and its target must be 64-bit code.
fn call_gate(
    m: &mut Machine,
    gate: Segment,
    desc: u64,
    desc_lin: u64,
    call: Option<(u64, u64)>,
) -> ExecResult {
    let lma = m.cpu.efer & efer::LMA != 0;
    let gate_sel = gate.selector;
    let err = selector_error(gate_sel);
    let mut target = (desc & 0xFFFF) | ((desc >> 48) << 16);
    let gate_size: u8 = if lma {
        8
    } else if gate.attr & 0xF == sys_type::CALL_GATE32 {
        4
    } else {
        target &= 0xFFFF;
        2
    };
    if lma {
        // The upper 8 bytes must be inside the table and have a type field of 0 (SDM
        // Vol. 3A §5.8.3.1 "IA-32e Mode Call Gates").
        if m.descriptor_slot(gate_sel, 8).is_none() {
            return gp(err);
        }
        let hi = m.system_read_sized(desc_lin.wrapping_add(8), 8)?;
        if (hi >> 40) & 0x1F != 0 {
            return gp(err);
        }
        target |= (hi & 0xFFFF_FFFF) << 32;
    }
    let cpl = m.cpu.cpl;
    let rpl = (gate_sel & 3) as u8;
    if gate.dpl() < cpl || rpl > gate.dpl() {
        return gp(err);
    }
    if !gate.present() {
        return np(err);
    }
    let cs_sel = (desc >> 16) as u16;
    if cs_sel & 0xFFFC == 0 {
        return gp(0);
    }
    let (cdesc, clin) = m.read_descriptor(cs_sel)?;
    let cs = segment_from_descriptor(cs_sel, cdesc);
    let cerr = selector_error(cs_sel);
    let dpl = cs.dpl();
    let conforming = cs.attr & attr::DC != 0;
    if cs.attr & (attr::S | attr::CODE) != attr::S | attr::CODE {
        return gp(cerr);
    }
    // CALL may go inward (DPL <= CPL); JMP only to the same level or conforming code.
    let bad_dpl = if call.is_some() || conforming { dpl > cpl } else { dpl != cpl };
    if bad_dpl {
        return gp(cerr);
    }
    if lma && (cs.attr & attr::L == 0 || cs.attr & attr::DB != 0) {
        return gp(cerr);
    }
    if !cs.present() {
        return np(cerr);
    }
    let t = Target { seg: cs, desc: cdesc, desc_lin: clin };
    match call {
        Some(ret) if !conforming && dpl < cpl => {
            let params = ((desc >> 32) & 0x1F) as u8;
            call_gate_inward(m, t, target, gate_size, params, ret)
        }
        _ => {
            check_offset(m, &cs, target)?;
            // The pushes use the gate's size and happen after CS is loaded (for a 64-bit
            // gate reached from compatibility mode they are 8-byte pushes on RSP).
            all_or_nothing(m, |m| {
                commit_cs(m, t, target)?;
                if let Some((cs, ip)) = call {
                    m.push(cs, gate_size)?;
                    m.push(ip, gate_size)?;
                }
                Ok(())
            })
        }
    }
}

/// Whether a non-64-bit stack segment has room for `need` bytes below `top`.
fn stack_room(seg: &Segment, top: u64, need: u64) -> bool {
    let mask: u64 = if seg.attr & attr::DB != 0 { 0xFFFF_FFFF } else { 0xFFFF };
    let lo = (top & mask).wrapping_sub(need) & mask;
    let last = lo + need - 1;
    if last > mask {
        return false;
    }
    if seg.expand_down() {
        lo > u64::from(seg.limit)
    } else {
        last <= u64::from(seg.limit)
    }
}

/// CALL through a gate to a more privileged non-conforming segment: the stack switch
/// from the TSS, the parameter copy and the pushes (SDM Vol. 2A "CALL",
/// MORE-PRIVILEGE; Vol. 3A §5.8.5 "Stack Switching", Figure 5-13).
fn call_gate_inward(
    m: &mut Machine,
    t: Target,
    target: u64,
    gate_size: u8,
    params: u8,
    ret: (u64, u64),
) -> ExecResult {
    let lma = m.cpu.efer & efer::LMA != 0;
    let new_cpl = t.seg.dpl();
    let (new_ss, new_sp) = m.tss_stack(new_cpl)?;
    let step = u64::from(gate_size);
    let (ss_seg, ss_desc, ss_lin) = if lma {
        // 64-bit: SS becomes a null selector with RPL = the new CPL; no parameters.
        if !m.canonical(new_sp) || !m.canonical(new_sp.wrapping_sub(4 * step)) {
            return ss(0);
        }
        (m.null_segment(SegReg::Ss, new_ss, new_cpl), 0, None)
    } else {
        let (seg, d, lin) = m.stack_segment(new_ss, new_cpl, StackLoad::CallGate)?;
        if !stack_room(&seg, new_sp, step * (4 + u64::from(params))) {
            return ss(selector_error(new_ss));
        }
        (seg, d, lin)
    };
    check_offset(m, &t.seg, target)?;
    // The parameters, read from the caller's stack before the switch.
    let old_ss = u64::from(m.cpu.seg[SegReg::Ss as usize].selector);
    let old_sp = m.cpu.gpr[4];
    let mut args = [0u64; 31];
    if !lma {
        for (k, a) in args.iter_mut().enumerate().take(usize::from(params)) {
            *a = m.stack_peek(k as u64 * step, gate_size)?;
        }
    }
    all_or_nothing(m, |m| {
        if let Some(lin) = ss_lin {
            m.mark_descriptor_accessed(ss_desc, lin)?;
        }
        m.cpu.seg[SegReg::Ss as usize] = ss_seg;
        load_cs(m, t, target, new_cpl)?;
        m.cpu.gpr[4] = if lma || ss_seg.attr & attr::DB != 0 {
            new_sp
        } else {
            (old_sp & !0xFFFF) | (new_sp & 0xFFFF)
        };
        m.push(old_ss, gate_size)?;
        m.push(old_sp, gate_size)?;
        if !lma {
            for a in args[..usize::from(params)].iter().rev() {
                m.push(*a, gate_size)?;
            }
        }
        m.push(ret.0, gate_size)?;
        m.push(ret.1, gate_size)
    })
}

/// JMP/CALL to a TSS descriptor or a task gate (SDM Vol. 3A §8.3 "Task Switching";
/// Vol. 2A "JMP"/"CALL" TASK-GATE and TASK-STATE-SEGMENT): the descriptor's DPL must
/// be >= CPL and >= RPL; a gate must be present and supplies the TSS selector. The TSS
/// descriptor's own checks (GDT, available, present, limit) are the task switch's.
fn task_target(m: &mut Machine, desc_seg: Segment, desc: u64, call: bool) -> ExecResult {
    let sel = desc_seg.selector;
    let err = selector_error(sel);
    let cpl = m.cpu.cpl;
    let rpl = (sel & 3) as u8;
    if desc_seg.dpl() < cpl || rpl > desc_seg.dpl() {
        return gp(err);
    }
    let tss_sel = if desc_seg.attr & 0xF == sys_type::TASK_GATE {
        if !desc_seg.present() {
            return np(err);
        }
        (desc >> 16) as u16
    } else {
        sel
    };
    let source = if call { TaskSwitchSource::Call } else { TaskSwitchSource::Jmp };
    m.task_switch(tss_sel, source, None)
}

/// The operand size of RETF/IRET.
fn ret_size(i: &Insn) -> u8 {
    match i.iced.code() {
        Code::Retfw | Code::Retfw_imm16 | Code::Iretw => 2,
        Code::Retfq | Code::Retfq_imm16 | Code::Iretq => 8,
        _ => 4,
    }
}

/// Far RET (SDM Vol. 2B "RET", Operation: RETURN-TO-SAME-PRIVILEGE-LEVEL and
/// RETURN-TO-OUTER-PRIVILEGE-LEVEL).
fn retf(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = ret_size(i);
    let step = u64::from(size);
    let off = m.stack_peek(0, size)?;
    let sel = m.stack_peek(step, size)? as u16;
    let extra = if d_has_imm(i) { i.imm & 0xFFFF } else { 0 };
    if !protected(m) {
        real_far(m, sel, off)?;
        m.sp_add(2 * step + extra);
        return Ok(());
    }
    let cpl = m.cpu.cpl;
    let rpl = (sel & 3) as u8;
    let err = selector_error(sel);
    if sel & 0xFFFC == 0 {
        return gp(0);
    }
    let (desc, desc_lin) = m.read_descriptor(sel)?;
    let seg = segment_from_descriptor(sel, desc);
    if rpl < cpl || seg.attr & attr::S == 0 {
        return gp(err);
    }
    if rpl == cpl {
        let t = code_target(m, seg, desc, desc_lin, off, cpl)?;
        commit_cs(m, t, off)?;
        m.sp_add(2 * step + extra);
        return Ok(());
    }
    // Return to an outer level: the code segment is checked against the RPL, then the
    // SS:ESP popped after the parameters.
    if seg.attr & attr::CODE == 0 {
        return gp(err);
    }
    check_long_code(m, &seg)?;
    check_code_privilege(&seg, rpl, cpl)?;
    if !seg.present() {
        return np(err);
    }
    let new_sp = m.stack_peek(2 * step + extra, size)?;
    let new_ss = m.stack_peek(3 * step + extra, size)? as u16;
    let to_64bit = m.cpu.efer & efer::LMA != 0 && seg.attr & attr::L != 0;
    let (ss_seg, ss_desc, ss_lin) = m.stack_segment(new_ss, rpl, StackLoad::Return { to_64bit })?;
    check_offset(m, &seg, off)?;
    let t = Target { seg, desc, desc_lin };
    all_or_nothing(m, |m| {
        if let Some(lin) = ss_lin {
            m.mark_descriptor_accessed(ss_desc, lin)?;
        }
        load_cs(m, t, off, rpl)?;
        m.cpu.seg[SegReg::Ss as usize] = ss_seg;
        m.cpu.update_mode();
        let sp = new_sp.wrapping_add(extra);
        m.cpu.gpr[4] = if m.cpu.mode == CpuMode::Long64 {
            sp
        } else if ss_seg.attr & attr::DB != 0 {
            sp & 0xFFFF_FFFF
        } else {
            (m.cpu.gpr[4] & !0xFFFF) | (sp & 0xFFFF)
        };
        m.invalidate_segments_for_cpl();
        Ok(())
    })
}

fn d_has_imm(i: &Insn) -> bool {
    matches!(i.iced.code(), Code::Retfw_imm16 | Code::Retfd_imm16 | Code::Retfq_imm16)
}
