//! The paging-related instructions beyond MOV CR and INVLPG: INVPCID (SDM Vol. 2A
//! "INVPCID—Invalidate Process-Context Identifier"), RDPKRU/WRPKRU (Vol. 2B "RDPKRU",
//! "WRPKRU") and STAC/CLAC (Vol. 2A "CLAC", Vol. 2B "STAC").

use super::operand_size;
use crate::cpu::fault::{gp, ud, ExecResult};
use crate::cpu::flags;
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpu::regs::cr4;
use crate::cpu::CpuMode;
use crate::cpuid::Feature;
use crate::machine::{Machine, MmuFlush};
use hvsim_decoder::iced::{Instruction, Mnemonic};

/// INVPCID types (SDM Vol. 2A "INVPCID").
pub mod invpcid_type {
    /// Individual-address invalidation: one linear address, one PCID, not global.
    pub const INDIVIDUAL_ADDRESS: u64 = 0;
    /// Single-context invalidation: one PCID, not global.
    pub const SINGLE_CONTEXT: u64 = 1;
    /// All-context invalidation, global translations included.
    pub const ALL_CONTEXT_INCLUDING_GLOBAL: u64 = 2;
    /// All-context invalidation, global translations excepted.
    pub const ALL_CONTEXT: u64 = 3;
}

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Invpcid => invpcid,
        Mnemonic::Rdpkru => rdpkru,
        Mnemonic::Wrpkru => wrpkru,
        Mnemonic::Stac => stac,
        Mnemonic::Clac => clac,
        _ => return None,
    })
}

fn invpcid(m: &mut Machine, i: &Insn) -> ExecResult {
    // "#UD: The INVPCID instruction is not recognized in virtual-8086 mode", and "If
    // CPUID.(EAX=07H, ECX=0H):EBX.INVPCID (bit 10) = 0".
    if m.cpu.mode == CpuMode::V86
        || i.ops[1] != Op::Mem
        || !m.cpuid.has(Feature::Invpcid)
        || crate::nested::vmx::disabled_in_guest(
            m,
            hvsim_vmx_model::controls::proc2::ENABLE_INVPCID,
        )
    {
        return ud();
    }
    if m.cpu.cpl != 0 {
        return gp(0);
    }
    let ty = match i.ops[0] {
        Op::Reg(r, _) => m.cpu.reg(r, operand_size(i, 0), false),
        _ => return ud(),
    };
    if ty > invpcid_type::ALL_CONTEXT {
        return gp(0);
    }
    // The 128-bit descriptor: PCID in bits 11:0, bits 63:12 reserved, the linear
    // address in bits 127:64. Segment checks cover all 16 bytes before either is read.
    let ea = i.ea(m);
    let seg = i.mem.seg;
    let amask = flags::size_mask(i.asize);
    m.linear(seg, ea, 16, false)?;
    let lo = m.read_mem(seg, ea, 8)?;
    let addr = m.read_mem(seg, ea.wrapping_add(8) & amask, 8)?;
    if lo >> 12 != 0 {
        return gp(0);
    }
    let pcid = (lo & 0xFFF) as u16;
    let pcide = m.cpu.cr4 & cr4::PCIDE != 0;
    match ty {
        invpcid_type::INDIVIDUAL_ADDRESS | invpcid_type::SINGLE_CONTEXT => {
            // "If CR4.PCIDE = 0, INVPCID_TYPE is either 0 or 1, and INVPCID_DESC[11:0]
            // is not zero": #GP(0).
            if !pcide && pcid != 0 {
                return gp(0);
            }
            if ty == invpcid_type::INDIVIDUAL_ADDRESS {
                if !m.canonical(addr) {
                    return gp(0);
                }
                m.cpu.tlb.invalidate_page(addr >> 12, pcid, false);
                m.mmu_flush(MmuFlush::Page { lin: addr, pcid });
            } else {
                m.cpu.tlb.flush_pcid(pcid);
                m.mmu_flush(MmuFlush::Pcid(pcid));
            }
        }
        invpcid_type::ALL_CONTEXT_INCLUDING_GLOBAL => {
            m.cpu.tlb.flush();
            m.mmu_flush(MmuFlush::All);
        }
        _ => {
            m.cpu.tlb.flush_non_global();
            m.mmu_flush(MmuFlush::AllNonGlobal);
        }
    }
    m.cpu.end_block = true;
    Ok(())
}

/// #UD unless CR4.PKE = 1 (RDPKRU and WRPKRU).
fn require_pke(m: &Machine) -> ExecResult {
    if m.cpu.cr4 & cr4::PKE == 0 {
        return ud();
    }
    Ok(())
}

fn rdpkru(m: &mut Machine, _i: &Insn) -> ExecResult {
    require_pke(m)?;
    if m.cpu.gpr[1] as u32 != 0 {
        return gp(0);
    }
    // EAX = PKRU, EDX = 0 (upper halves cleared as for any 32-bit destination).
    m.cpu.gpr[0] = u64::from(m.cpu.pkru);
    m.cpu.gpr[2] = 0;
    Ok(())
}

fn wrpkru(m: &mut Machine, _i: &Insn) -> ExecResult {
    require_pke(m)?;
    if m.cpu.gpr[1] as u32 != 0 || m.cpu.gpr[2] as u32 != 0 {
        return gp(0);
    }
    let v = m.cpu.gpr[0] as u32;
    if v != m.cpu.pkru {
        m.cpu.pkru = v;
        // The front-end TLB holds permissions computed with PKRU.
        m.cpu.tlb.flush();
    }
    Ok(())
}

/// STAC and CLAC: #UD in virtual-8086 mode, at CPL > 0, and if CPUID.(EAX=07H,
/// ECX=0H):EBX.SMAP (bit 20) = 0.
fn require_smap_insn(m: &Machine) -> ExecResult {
    if m.cpu.mode == CpuMode::V86 || m.cpu.cpl > 0 || !m.cpuid.has(Feature::Smap) {
        return ud();
    }
    Ok(())
}

fn stac(m: &mut Machine, _i: &Insn) -> ExecResult {
    require_smap_insn(m)?;
    m.cpu.flags.set_bit(flags::AC, true);
    Ok(())
}

fn clac(m: &mut Machine, _i: &Insn) -> ExecResult {
    require_smap_insn(m)?;
    m.cpu.flags.set_bit(flags::AC, false);
    Ok(())
}
