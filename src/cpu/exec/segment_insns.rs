//! The segment-inspection instructions: ARPL, LAR, LSL, VERR and VERW (SDM Vol. 2A
//! "ARPL", "LAR", "LSL"; Vol. 2B "VERR/VERW"). None of them faults on a bad selector:
//! they report through ZF. All are #UD in real-address and virtual-8086 mode.

use super::{operand_size, read_sized, write_sized};
use crate::cpu::fault::{ud, ExecResult, Fault};
use crate::cpu::flags::ZF;
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpu::regs::{attr, efer};
use crate::cpu::segment::{segment_from_descriptor, sys_type};
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        // In 64-bit mode opcode 63 is MOVSXD: iced decodes it as such there.
        Mnemonic::Arpl => arpl,
        Mnemonic::Lar => lar_lsl::<true>,
        Mnemonic::Lsl => lar_lsl::<false>,
        Mnemonic::Verr => verr_verw::<false>,
        Mnemonic::Verw => verr_verw::<true>,
        _ => return None,
    })
}

/// System-descriptor types LAR accepts outside IA-32e mode (SDM Vol. 2A "LAR", Table
/// 3-52): TSSs, LDT, call and task gates; interrupt and trap gates are invalid.
const LAR_LEGACY: &[u16] = &[
    sys_type::TSS16_AVAIL,
    sys_type::LDT,
    sys_type::TSS16_BUSY,
    sys_type::CALL_GATE16,
    sys_type::TASK_GATE,
    sys_type::TSS32_AVAIL,
    sys_type::TSS32_BUSY,
    sys_type::CALL_GATE32,
];
/// ... and in IA-32e mode: LDT, 64-bit TSSs and the 64-bit call gate.
const LAR_IA32E: &[u16] =
    &[sys_type::LDT, sys_type::TSS32_AVAIL, sys_type::TSS32_BUSY, sys_type::CALL_GATE32];
/// System-descriptor types LSL accepts outside IA-32e mode (SDM Vol. 2A "LSL", Table
/// 3-60): the ones with a limit (TSSs and LDT).
const LSL_LEGACY: &[u16] = &[
    sys_type::TSS16_AVAIL,
    sys_type::LDT,
    sys_type::TSS16_BUSY,
    sys_type::TSS32_AVAIL,
    sys_type::TSS32_BUSY,
];
/// ... and in IA-32e mode.
const LSL_IA32E: &[u16] = &[sys_type::LDT, sys_type::TSS32_AVAIL, sys_type::TSS32_BUSY];

/// The access-rights bits LAR returns from the descriptor's high dword: type, S, DPL,
/// P (15:8) and AVL, L, D/B, G (23:20). Bits 19:16 (limit 19:16) are undefined; hvsim
/// returns them as 0.
const LAR_MASK: u64 = 0x00F0_FF00;

fn require_protected(m: &Machine) -> ExecResult {
    if matches!(m.cpu.mode, CpuMode::Real | CpuMode::V86) {
        return ud();
    }
    Ok(())
}

fn set_zf(m: &mut Machine, on: bool) {
    let a = m.cpu.flags.arith();
    m.cpu.flags.set_arith(if on { a | ZF } else { a & !ZF });
}

/// ARPL r/m16, r16: raises the destination selector's RPL to the source's, ZF = 1 if it
/// changed.
fn arpl(m: &mut Machine, i: &Insn) -> ExecResult {
    require_protected(m)?;
    let dest = if i.ops[0] == Op::Mem {
        let ea = i.ea(m);
        m.read_mem_rmw(i.mem.seg, ea, 2)?
    } else {
        read_sized(m, i, 0, 2)?
    };
    let src = read_sized(m, i, 1, 2)?;
    if dest & 3 < src & 3 {
        write_sized(m, i, 0, 2, (dest & !3) | (src & 3))?;
        set_zf(m, true);
    } else {
        set_zf(m, false);
    }
    Ok(())
}

/// The descriptor `sel` names if it passes the visibility checks shared by LAR, LSL and
/// VERR/VERW: not null, inside its table, and (unless conforming code) DPL >= CPL and
/// DPL >= RPL. Returns the (low) 8-byte descriptor.
fn visible_descriptor(m: &mut Machine, sel: u16) -> Result<Option<u64>, Fault> {
    if sel & 0xFFFC == 0 {
        return Ok(None);
    }
    let Some((d, _)) = m.try_read_descriptor(sel)? else {
        return Ok(None);
    };
    let seg = segment_from_descriptor(sel, d);
    let conforming_code =
        seg.attr & (attr::S | attr::CODE | attr::DC) == attr::S | attr::CODE | attr::DC;
    let rpl = (sel & 3) as u8;
    if !conforming_code && (seg.dpl() < m.cpu.cpl || seg.dpl() < rpl) {
        return Ok(None);
    }
    Ok(Some(d))
}

/// LAR (`LAR` = true) and LSL: ZF = 1 and the access rights or the limit (granularity
/// applied) in the destination if the descriptor is visible and of an accepted type;
/// else ZF = 0 and the destination is unchanged.
fn lar_lsl<const LAR: bool>(m: &mut Machine, i: &Insn) -> ExecResult {
    require_protected(m)?;
    let sel = read_sized(m, i, 1, 2)? as u16;
    let Some(d) = visible_descriptor(m, sel)? else {
        set_zf(m, false);
        return Ok(());
    };
    let seg = segment_from_descriptor(sel, d);
    if seg.attr & attr::S == 0 {
        let ia32e = m.cpu.efer & efer::LMA != 0;
        let ok = match (LAR, ia32e) {
            (true, false) => LAR_LEGACY,
            (true, true) => LAR_IA32E,
            (false, false) => LSL_LEGACY,
            (false, true) => LSL_IA32E,
        }
        .contains(&(seg.attr & 0xF));
        // In IA-32e mode system descriptors are 16 bytes; the upper half's type field
        // must be 0.
        let ok = ok && (!ia32e || upper_half_valid(m, sel)?);
        if !ok {
            set_zf(m, false);
            return Ok(());
        }
    }
    let v = if LAR { (d >> 32) & LAR_MASK } else { u64::from(seg.limit) };
    let size = operand_size(i, 0);
    // A 64-bit destination receives the zero-extended 32-bit value.
    write_sized(m, i, 0, size, if size == 2 { v & 0xFFFF } else { v & 0xFFFF_FFFF })?;
    set_zf(m, true);
    Ok(())
}

/// Whether the upper 8 bytes of the 16-byte system descriptor `sel` names lie inside
/// the table and have a zero type field.
fn upper_half_valid(m: &mut Machine, sel: u16) -> Result<bool, Fault> {
    let Some(lin) = m.descriptor_slot(sel, 8) else {
        return Ok(false);
    };
    let hi = m.system_read_sized(lin.wrapping_add(8), 8)?;
    Ok((hi >> 40) & 0x1F == 0)
}

/// VERR (`W` = false) / VERW: ZF = 1 if the segment is readable (data, or readable
/// code) / writable (writable data) at the current privilege.
fn verr_verw<const W: bool>(m: &mut Machine, i: &Insn) -> ExecResult {
    require_protected(m)?;
    let sel = read_sized(m, i, 0, 2)? as u16;
    let ok = match visible_descriptor(m, sel)? {
        None => false,
        Some(d) => {
            let seg = segment_from_descriptor(sel, d);
            let a = seg.attr;
            if a & attr::S == 0 {
                false
            } else if W {
                a & (attr::CODE | attr::RW) == attr::RW
            } else {
                a & attr::CODE == 0 || a & attr::RW != 0
            }
        }
    };
    set_zf(m, ok);
    Ok(())
}
