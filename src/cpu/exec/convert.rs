//! Conversions and flag transfers: CBW/CWDE/CDQE, CWD/CDQ/CQO, LAHF/SAHF, XLAT,
//! PUSHF/POPF and PUSHA/POPA.

use crate::cpu::fault::{gp, ud, ExecResult};
use crate::cpu::flags::{size_mask, AF, CF, FIXED1, IF, IOPL, PF, RF, SF, TF, VIF, VIP, VM, ZF};
use crate::cpu::insn::{Handler, Insn};
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{Code, Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Cbw => sign_extend_acc::<1>,
        Mnemonic::Cwde => sign_extend_acc::<2>,
        Mnemonic::Cdqe => sign_extend_acc::<4>,
        Mnemonic::Cwd => sign_into_dx::<2>,
        Mnemonic::Cdq => sign_into_dx::<4>,
        Mnemonic::Cqo => sign_into_dx::<8>,
        Mnemonic::Lahf => lahf,
        Mnemonic::Sahf => sahf,
        Mnemonic::Xlatb => xlat,
        Mnemonic::Pushf | Mnemonic::Pushfd | Mnemonic::Pushfq => pushf,
        Mnemonic::Popf | Mnemonic::Popfd | Mnemonic::Popfq => popf,
        Mnemonic::Pusha | Mnemonic::Pushad => pusha,
        Mnemonic::Popa | Mnemonic::Popad => popa,
        _ => return None,
    })
}

/// CBW (`FROM` = 1), CWDE (2), CDQE (4): sign-extends the low half of the accumulator.
fn sign_extend_acc<const FROM: u8>(m: &mut Machine, _i: &Insn) -> ExecResult {
    let v = m.cpu.gpr[0];
    let r = crate::cpu::flags::sign_extend(v, FROM);
    m.cpu.set_reg(0, FROM * 2, false, r);
    Ok(())
}

/// CWD (`SIZE` = 2), CDQ (4), CQO (8): fills rDX with the accumulator's sign.
fn sign_into_dx<const SIZE: u8>(m: &mut Machine, _i: &Insn) -> ExecResult {
    let neg = m.cpu.gpr[0] & crate::cpu::flags::sign_bit(SIZE) != 0;
    m.cpu.set_reg(2, SIZE, false, if neg { u64::MAX } else { 0 });
    Ok(())
}

fn lahf(m: &mut Machine, _i: &Insn) -> ExecResult {
    let f = m.cpu.flags.get() & (SF | ZF | AF | PF | CF | FIXED1);
    m.cpu.set_reg(0, 1, true, f);
    Ok(())
}

fn sahf(m: &mut Machine, _i: &Insn) -> ExecResult {
    // SDM Vol. 2B "SAHF": SF, ZF, AF, PF and CF from AH; OF unchanged.
    let ah = m.cpu.reg(0, 1, true);
    let keep = m.cpu.flags.arith() & !(SF | ZF | AF | PF | CF);
    m.cpu.flags.set_arith(keep | (ah & (SF | ZF | AF | PF | CF)));
    Ok(())
}

fn xlat(m: &mut Machine, i: &Insn) -> ExecResult {
    // The table base is BX/EBX/RBX by address size; AL is an unsigned index.
    let asize = i.iced.memory_base().size() as u8;
    let asize = if asize == 0 { i.asize } else { asize };
    let ea = m.cpu.gpr[3].wrapping_add(m.cpu.gpr[0] & 0xFF) & size_mask(asize);
    let v = m.read_mem(i.mem.seg, ea, 1)?;
    m.cpu.set_reg(0, 1, false, v);
    Ok(())
}

/// The stack operand size of PUSHF/POPF/PUSHA/POPA from the decoded form.
fn stack_size_of(i: &Insn) -> u8 {
    match i.iced.code() {
        Code::Pushfw | Code::Popfw | Code::Pushaw | Code::Popaw => 2,
        Code::Pushfq | Code::Popfq => 8,
        _ => 4,
    }
}

/// Whether PUSHF/POPF run in the CR4.VME form: V86 mode with IOPL < 3, where only the
/// 16-bit forms are allowed and IF is virtualised by VIF (SDM Vol. 3A §20.4.2); without
/// VME they are #GP(0).
fn vme_form(m: &Machine, size: u8) -> Result<bool, crate::cpu::fault::Fault> {
    if m.cpu.mode != CpuMode::V86 || m.cpu.flags.iopl() == 3 {
        return Ok(false);
    }
    if m.cpu.cr4 & crate::cpu::regs::cr4::VME == 0 || size != 2 {
        return gp(0);
    }
    Ok(true)
}

fn pushf(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = stack_size_of(i);
    // The image has VM and RF cleared.
    let mut v = m.cpu.flags.get() & !(VM | RF);
    if vme_form(m, size)? {
        // The VME image shows IOPL = 3 and VIF in place of IF.
        v = (v | IOPL) & !IF;
        if m.cpu.flags.bit(VIF) {
            v |= IF;
        }
    }
    m.push(v, size)
}

fn popf(m: &mut Machine, i: &Insn) -> ExecResult {
    let size = stack_size_of(i);
    let cpl = m.cpu.cpl;
    let pl = m.cpu.flags.iopl();
    if vme_form(m, size)? {
        let new = m.stack_peek(0, 2)?;
        let old = m.cpu.flags.get();
        if (new & IF != 0 && old & VIP != 0) || new & TF != 0 {
            return gp(0);
        }
        m.pop(2)?;
        // IF and IOPL stay; VIF takes the popped IF.
        let keep = !0xFFFF | IF | IOPL;
        let v = (old & keep) | (new & !keep);
        m.cpu.flags.set(if new & IF != 0 { v | VIF } else { v & !VIF });
        m.cpu.end_block = true;
        return Ok(());
    }
    let new = m.pop(size)?;
    let old = m.cpu.flags.get();
    // SDM Vol. 2B "POPF": VIP, VIF and VM are never changed and RF is cleared; IOPL
    // changes only at CPL 0 (never in V86 mode), IF only when CPL <= IOPL. A 16-bit
    // POPF leaves bits 16 and up alone.
    let mut keep = VIP | VIF | VM | RF;
    if m.cpu.mode == CpuMode::V86 || cpl > 0 {
        keep |= IOPL;
    }
    if m.cpu.mode != CpuMode::Real && cpl > pl {
        keep |= IF;
    }
    if size == 2 {
        keep |= !0xFFFF;
    }
    let v = (old & keep) | (new & !keep);
    m.cpu.flags.set(v & !RF);
    m.cpu.end_block = true;
    Ok(())
}

fn pusha(m: &mut Machine, i: &Insn) -> ExecResult {
    if m.cpu.mode == CpuMode::Long64 {
        return ud();
    }
    let size = stack_size_of(i);
    let saved_sp = m.cpu.gpr[4];
    // AX, CX, DX, BX, the original SP, BP, SI, DI.
    for r in 0..8 {
        let v = if r == 4 { saved_sp } else { m.cpu.gpr[r] };
        if let Err(e) = m.push(v & size_mask(size), size) {
            m.cpu.gpr[4] = saved_sp;
            return Err(e);
        }
    }
    Ok(())
}

fn popa(m: &mut Machine, i: &Insn) -> ExecResult {
    if m.cpu.mode == CpuMode::Long64 {
        return ud();
    }
    let size = stack_size_of(i);
    let step = u64::from(size);
    // Read all eight slots first so a fault leaves the registers unchanged. The slot of
    // SP is skipped.
    let mut vals = [0u64; 8];
    for (k, v) in vals.iter_mut().enumerate() {
        *v = m.stack_peek(step * k as u64, size)?;
    }
    for (k, v) in vals.iter().enumerate() {
        let r = 7 - k as u8; // DI, SI, BP, SP, BX, DX, CX, AX
        if r != 4 {
            m.cpu.set_reg(r, size, false, *v);
        }
    }
    let ss = size_mask(m.cpu.stack_size());
    let rsp = m.cpu.gpr[4];
    m.cpu.gpr[4] = (rsp & !ss) | (rsp.wrapping_add(8 * step) & ss);
    Ok(())
}
