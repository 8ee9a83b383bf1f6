//! System instructions a kernel brings itself up with: MOV to/from control and debug
//! registers, LGDT/LIDT/SGDT/SIDT, LLDT/SLDT/LTR/STR, LMSW/SMSW/CLTS, SWAPGS, INVLPG and
//! XGETBV/XSETBV. (RDMSR/WRMSR and the clock reads are in `msr_access.rs`.) Privilege and
//! reserved-bit checks follow each instruction's page in SDM Vol. 2.

use super::{operand_size, read_sized, write_sized};
use crate::cpu::access::MAXPHYADDR;
use crate::cpu::debug::{DR6_BD, DR7_GD};
use crate::cpu::fault::{gp, ud, Exception, ExecResult, Fault};
use crate::cpu::insn::{gpr_of, Handler, Insn, Op};
use crate::cpu::msr;
use crate::cpu::regs::{attr, cr0, cr4, efer, DescriptorTable, SegReg, Segment};
use crate::cpu::segment::segment_from_descriptor;
use crate::cpu::{vector, CpuMode};
use crate::machine::{Machine, MmuFlush};
use hvsim_decoder::iced::{Code, Instruction, Mnemonic, OpKind, Register};
use hvsim_mmu::paging;

/// CR0 bits whose change flushes the whole TLB: PG (SDM Vol. 3A §4.10.4.1 "Operations
/// that Invalidate TLBs and Paging-Structure Caches"), WP (a change of the access rights)
/// and PE (the mode).
const CR0_TLB_FLUSH: u64 = cr0::PG | cr0::WP | cr0::PE;
/// CR0 bits whose change reloads the PDPTEs when PAE paging is in use after the write
/// (SDM Vol. 3A §4.4.1 "PDPTE Registers").
const CR0_PDPTE_RELOAD: u64 = cr0::PG | cr0::CD | cr0::NW;
/// CR4 bits whose change flushes the whole TLB, global entries included. §4.10.4.1 names
/// PGE, PCIDE (1 to 0), PAE and SMEP (0 to 1); the others change what the front-end TLB's
/// cached permissions or page sizes mean (flushing more than required is permitted).
const CR4_TLB_FLUSH: u64 =
    cr4::PGE | cr4::PAE | cr4::PSE | cr4::SMEP | cr4::SMAP | cr4::PKE | cr4::LA57;
/// CR4 bits whose change reloads the PDPTEs when PAE paging is in use after the write
/// (SDM Vol. 3A §4.4.1).
const CR4_PDPTE_RELOAD: u64 = cr4::PAE | cr4::PGE | cr4::PSE | cr4::SMEP;
/// MOV to CR3 with CR4.PCIDE = 1: bit 63 set means "do not invalidate" and is not stored
/// (SDM Vol. 3A §4.10.4.1).
const CR3_PCID_NOFLUSH: u64 = 1 << 63;
/// CR3[11:0]: the PCID with CR4.PCIDE = 1.
const CR3_PCID_MASK: u64 = 0xFFF;

/// The CR0 bits that exist; writes to other bits of CR0[31:0] are ignored.
const CR0_VALID: u64 = cr0::PE
    | cr0::MP
    | cr0::EM
    | cr0::TS
    | cr0::ET
    | cr0::NE
    | cr0::WP
    | cr0::AM
    | cr0::NW
    | cr0::CD
    | cr0::PG;

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Mov => {
            let reg = |n| (i.op_kind(n) == OpKind::Register).then(|| i.op_register(n));
            match (reg(0), reg(1)) {
                (Some(r), Some(_)) if r.is_cr() => mov_to_cr,
                (Some(_), Some(r)) if r.is_cr() => mov_from_cr,
                (Some(r), Some(_)) if r.is_dr() => mov_to_dr,
                (Some(_), Some(r)) if r.is_dr() => mov_from_dr,
                _ => return None,
            }
        }
        Mnemonic::Lgdt | Mnemonic::Lidt => lgdt_lidt,
        Mnemonic::Sgdt | Mnemonic::Sidt => sgdt_sidt,
        Mnemonic::Lldt => lldt,
        Mnemonic::Ltr => ltr,
        Mnemonic::Sldt | Mnemonic::Str => sldt_str,
        Mnemonic::Lmsw => lmsw,
        Mnemonic::Smsw => smsw,
        Mnemonic::Clts => clts,
        Mnemonic::Swapgs => swapgs,
        Mnemonic::Invlpg => invlpg,
        Mnemonic::Xgetbv => xgetbv,
        Mnemonic::Xsetbv => xsetbv,
        _ => return None,
    })
}

/// #GP(0) unless CPL = 0 (real mode is CPL 0; V86 is CPL 3).
pub(super) fn require_cpl0(m: &Machine) -> ExecResult {
    if m.cpu.cpl != 0 {
        return gp(0);
    }
    Ok(())
}

/// #UD in real-address and virtual-8086 mode.
fn require_protected(m: &Machine) -> ExecResult {
    if matches!(m.cpu.mode, CpuMode::Real | CpuMode::V86) {
        return ud();
    }
    Ok(())
}

/// Reads the general-purpose register operand `n` at its own width.
fn gpr_operand(m: &Machine, i: &Insn, n: u32) -> u64 {
    let r = i.iced.op_register(n);
    gpr_of(r).map_or(0, |(idx, hi)| m.cpu.reg(idx, r.size() as u8, hi))
}

/// Writes the general-purpose register operand `n` at its own width.
fn set_gpr_operand(m: &mut Machine, i: &Insn, n: u32, v: u64) {
    let r = i.iced.op_register(n);
    if let Some((idx, hi)) = gpr_of(r) {
        m.cpu.set_reg(idx, r.size() as u8, hi, v);
    }
}

/// After a change to paging or mode state: drop every translation (global ones and every
/// PCID included), rederive the mode and leave the decoded block.
pub(crate) fn paging_changed(m: &mut Machine) {
    m.cpu.tlb.flush();
    m.mmu_flush(MmuFlush::All);
    m.cpu.update_mode();
    m.cpu.end_block = true;
}

/// #GP(0) when CR4.UMIP = 1 and CPL > 0 (SGDT, SIDT, SLDT, SMSW, STR; SDM Vol. 3A §2.5
/// "Control Registers": "UMIP ... the instructions cannot be executed if CPL > 0").
fn check_umip(m: &Machine) -> ExecResult {
    if m.cpu.cr4 & cr4::UMIP != 0 && m.cpu.cpl > 0 {
        return gp(0);
    }
    Ok(())
}

/// Loads the PAE PDPTE registers from the table at `cr3`; #GP(0) if a present PDPTE
/// has a reserved bit set (SDM Vol. 3A §4.4.1), leaving the registers unchanged.
fn load_pdptes(m: &mut Machine, cr3: u64) -> ExecResult {
    if let Some(r) = crate::nested::vmx::ept::load_guest_pdptes(m, cr3) {
        return r;
    }
    match paging::load_pdptes(&mut m.mem, cr3, MAXPHYADDR) {
        Some(p) => {
            m.cpu.pdpte = p;
            Ok(())
        }
        None => gp(0),
    }
}

pub(super) fn edx_eax(m: &Machine) -> u64 {
    (m.cpu.gpr[2] << 32) | (m.cpu.gpr[0] & 0xFFFF_FFFF)
}

pub(super) fn set_edx_eax(m: &mut Machine, v: u64) {
    m.cpu.gpr[0] = v & 0xFFFF_FFFF;
    m.cpu.gpr[2] = v >> 32;
}

// ---- MOV CRn (SDM Vol. 2B "MOV—Move to/from Control Registers") ----

/// #UD for CR1, CR5-CR7 and CR9-CR15.
fn cr_number(r: Register) -> Result<usize, Fault> {
    match r.number() {
        n @ (0 | 2 | 3 | 4 | 8) => Ok(n),
        _ => ud(),
    }
}

fn mov_from_cr(m: &mut Machine, i: &Insn) -> ExecResult {
    let n = cr_number(i.iced.op_register(1))?;
    require_cpl0(m)?;
    let v = match n {
        0 => crate::nested::vmx::cr_read_value(m, 0, m.cpu.cr0),
        2 => m.cpu.cr2,
        3 => m.cpu.cr3,
        4 => crate::nested::vmx::cr_read_value(m, 4, m.cpu.cr4),
        _ => match crate::nested::vmx::tpr_shadow::read_cr8(m) {
            Some(v) => v,
            None => {
                sync_cr8_from_tpr(m);
                m.cpu.cr8 & 0xF
            }
        },
    };
    set_gpr_operand(m, i, 0, v);
    Ok(())
}

fn mov_to_cr(m: &mut Machine, i: &Insn) -> ExecResult {
    let n = cr_number(i.iced.op_register(0))?;
    require_cpl0(m)?;
    let v = gpr_operand(m, i, 1);
    match n {
        0 => write_cr0(m, v),
        2 => {
            m.cpu.cr2 = v;
            Ok(())
        }
        3 => write_cr3(m, v),
        4 => write_cr4(m, v),
        _ => {
            // CR8: TPR in bits 3:0; bits 63:4 reserved.
            if v & !0xF != 0 {
                return gp(0);
            }
            if crate::nested::vmx::tpr_shadow::write_cr8(m, v) {
                return Ok(());
            }
            m.cpu.cr8 = v;
            sync_tpr_from_cr8(m);
            Ok(())
        }
    }
}

/// CR8 is the local APIC's TPR (SDM Vol. 3A §11.8.6.1 "Interaction of Task Priorities
/// between CR8 and APIC": "MOV CR8 ... operations ... write/read TPR[7:4]", CR8[3:0] =
/// TPR[7:4]). In a nested guest CR8 is the hypervisor's to virtualize (SVM V_TPR), so
/// the link is made only outside one.
fn sync_cr8_from_tpr(m: &mut Machine) {
    if m.nested.in_guest() {
        return;
    }
    if let Some(a) = m.platform().lapics.get(m.current_vcpu()) {
        m.cpu.cr8 = u64::from(a.tpr() >> 4);
    }
}

/// A MOV to CR8 outside a nested guest sets TPR[7:4] (TPR[3:0] = 0).
fn sync_tpr_from_cr8(m: &mut Machine) {
    if m.nested.in_guest() {
        return;
    }
    let (vcpu, now, tpr) = (m.current_vcpu(), m.now_ns(), (m.cpu.cr8 as u8 & 0xF) << 4);
    m.platform_mut().set_lapic_tpr(vcpu, tpr, now);
    m.after_platform();
}

/// MOV to CR0 (also LMSW): the combination checks, IA-32e activation and deactivation
/// (SDM Vol. 3A §10.8.5 "Initializing IA-32e Mode"), the PDPTE load of PAE paging and
/// the TLB flush (SDM Vol. 2B "MOV—Move to/from Control Registers").
pub(crate) fn write_cr0(m: &mut Machine, v: u64) -> ExecResult {
    // Bits 63:32 are reserved (only a 64-bit-mode operand can set them).
    if v >> 32 != 0 {
        return gp(0);
    }
    let v = crate::nested::vmx::cr0_write_value(m, v | cr0::ET)?;
    // Other reserved bits of CR0[31:0] are ignored; ET is fixed to 1.
    let new = (v & CR0_VALID) | cr0::ET;
    if new & cr0::PG != 0 && new & cr0::PE == 0 {
        return gp(0);
    }
    if new & cr0::NW != 0 && new & cr0::CD == 0 {
        return gp(0);
    }
    let old = m.cpu.cr0;
    let pg_on = old & cr0::PG == 0 && new & cr0::PG != 0;
    let pg_off = old & cr0::PG != 0 && new & cr0::PG == 0;
    let mut efer = m.cpu.efer;
    if pg_off {
        // 64-bit mode cannot turn paging off; compatibility mode can (leaving IA-32e
        // mode), but not with CR4.PCIDE = 1.
        if m.cpu.mode == CpuMode::Long64 || m.cpu.cr4 & cr4::PCIDE != 0 {
            return gp(0);
        }
        efer &= !efer::LMA;
    }
    if pg_on && efer & efer::LME != 0 {
        // Activating IA-32e mode needs CR4.PAE = 1 and must not happen from a code
        // segment with L = 1 (SDM Vol. 2B MOV CR, "Protected Mode Exceptions").
        if m.cpu.cr4 & cr4::PAE == 0 || m.cpu.seg(SegReg::Cs).attr & attr::L != 0 {
            return gp(0);
        }
        efer |= efer::LMA;
    }
    let pae_paging = new & cr0::PG != 0 && m.cpu.cr4 & cr4::PAE != 0 && efer & efer::LMA == 0;
    if pae_paging && (old ^ new) & CR0_PDPTE_RELOAD != 0 {
        load_pdptes(m, m.cpu.cr3)?;
    }
    m.cpu.efer = efer;
    m.cpu.cr0 = new;
    if (old ^ new) & CR0_TLB_FLUSH != 0 {
        m.cpu.tlb.flush();
        m.mmu_flush(MmuFlush::All);
    }
    // Rederives the mode (and leaves the decoded block).
    m.cpu.update_mode();
    Ok(())
}

/// MOV to CR3: reserved bits, the PDPTE load of PAE paging, and the invalidation of
/// SDM Vol. 3A §4.10.4.1: the non-global entries of the new PCID (PCID 0 without
/// PCIDE), or nothing when PCIDE = 1 and bit 63 of the source is set.
pub(crate) fn write_cr3(m: &mut Machine, v: u64) -> ExecResult {
    let lma = m.cpu.efer & efer::LMA != 0;
    let pcide = m.cpu.cr4 & cr4::PCIDE != 0;
    let no_flush = pcide && v & CR3_PCID_NOFLUSH != 0;
    let v = if pcide { v & !CR3_PCID_NOFLUSH } else { v };
    let v = if lma {
        // Bits 63:MAXPHYADDR are reserved (bit 63 too without PCIDE).
        if v >> MAXPHYADDR != 0 {
            return gp(0);
        }
        v
    } else {
        // Outside IA-32e mode CR3 is 32 bits wide.
        v & 0xFFFF_FFFF
    };
    if m.cpu.paging() && m.cpu.cr4 & cr4::PAE != 0 && !lma {
        load_pdptes(m, v)?;
    }
    m.cpu.cr3 = v;
    let pcid = m.cpu.pcid();
    m.cpu.tlb.set_pcid(pcid);
    if !no_flush {
        m.cpu.tlb.flush_pcid(pcid);
    }
    m.mmu_flush(MmuFlush::Cr3 { no_flush });
    m.cpu.end_block = true;
    Ok(())
}

/// MOV to CR4: reserved bits, the IA-32e rules for PAE, LA57 and PCIDE, the PDPTE load
/// of PAE paging and the TLB flush (SDM Vol. 2B MOV CR; Vol. 3A §4.10.4.1).
pub(crate) fn write_cr4(m: &mut Machine, v: u64) -> ExecResult {
    // The bits of features the CPU model does not advertise are reserved.
    if v & !m.cpuid.cr4_valid_bits() != 0 {
        return gp(0);
    }
    let v = crate::nested::vmx::cr4_write_value(m, v)?;
    let old = m.cpu.cr4;
    let lma = m.cpu.efer & efer::LMA != 0;
    // IA-32e mode cannot be left by clearing PAE, nor the paging depth changed.
    if lma && (v & cr4::PAE == 0 || (old ^ v) & cr4::LA57 != 0) {
        return gp(0);
    }
    // PCIDE may be set only in IA-32e mode and with CR3[11:0] = 0.
    if old & cr4::PCIDE == 0 && v & cr4::PCIDE != 0 && (!lma || m.cpu.cr3 & CR3_PCID_MASK != 0) {
        return gp(0);
    }
    let pae_paging = m.cpu.paging() && v & cr4::PAE != 0 && !lma;
    if pae_paging && (old ^ v) & CR4_PDPTE_RELOAD != 0 {
        load_pdptes(m, m.cpu.cr3)?;
    }
    m.cpu.cr4 = v;
    let pcide_cleared = old & cr4::PCIDE != 0 && v & cr4::PCIDE == 0;
    if (old ^ v) & CR4_TLB_FLUSH != 0 || pcide_cleared {
        m.cpu.tlb.flush();
        m.mmu_flush(MmuFlush::All);
    }
    // The current PCID follows PCIDE; leaves the decoded block.
    m.cpu.update_mode();
    Ok(())
}

// ---- MOV DRn (SDM Vol. 2B "MOV—Move to/from Debug Registers") ----

/// The debug register index after DR4/DR5 aliasing; #UD for DR8-DR15 and for DR4/DR5
/// with CR4.DE = 1.
fn dr_number(m: &Machine, r: Register) -> Result<usize, Fault> {
    match r.number() {
        n @ (0..=3 | 6 | 7) => Ok(n),
        n @ (4 | 5) if m.cpu.cr4 & cr4::DE == 0 => Ok(n + 2),
        _ => ud(),
    }
}

/// DR7.GD = 1: any MOV to or from a debug register faults with #DB and DR6.BD set (SDM
/// Vol. 3A §18.2.4 "Debug Control Register (DR7)", §18.3.1.2 "General-Detect Exception
/// Condition"). Checked after the #UD and #GP(0) conditions.
fn general_detect(m: &mut Machine) -> ExecResult {
    if m.cpu.dr[7] & DR7_GD != 0 {
        m.cpu.dr[6] |= DR6_BD;
        return Err(Exception::new(vector::DB).into());
    }
    Ok(())
}

fn mov_from_dr(m: &mut Machine, i: &Insn) -> ExecResult {
    let n = dr_number(m, i.iced.op_register(1))?;
    require_cpl0(m)?;
    general_detect(m)?;
    let v = m.cpu.dr[n];
    set_gpr_operand(m, i, 0, v);
    Ok(())
}

fn mov_to_dr(m: &mut Machine, i: &Insn) -> ExecResult {
    let n = dr_number(m, i.iced.op_register(0))?;
    require_cpl0(m)?;
    general_detect(m)?;
    let v = gpr_operand(m, i, 1);
    m.cpu.dr[n] = match n {
        // SDM Vol. 2B MOV DR, "64-Bit Mode Exceptions": bits 63:32 of DR6/DR7 are
        // reserved.
        6 | 7 if v >> 32 != 0 => return gp(0),
        // DR6: B0-B3, BD, BS, BT writable; the rest reads as the fixed pattern.
        6 => 0xFFFF_0FF0 | (v & 0xE00F),
        // DR7: bits 11, 12, 14 and 15 read 0, bit 10 reads 1.
        7 => (v & 0xFFFF_23FF) | 0x400,
        _ => v,
    };
    // Breakpoints apply from the next instruction: leave the decoded block.
    m.cpu.end_block = true;
    Ok(())
}

// ---- Descriptor-table registers (SDM Vol. 2A "LGDT/LIDT", Vol. 2B "SGDT", "SIDT") ----

fn lgdt_lidt(m: &mut Machine, i: &Insn) -> ExecResult {
    if i.ops[0] != Op::Mem {
        return ud();
    }
    require_cpl0(m)?;
    let ea = i.ea(m);
    let seg = i.mem.seg;
    let amask = crate::cpu::flags::size_mask(i.asize);
    let limit = m.read_mem(seg, ea, 2)? as u16;
    let at = ea.wrapping_add(2) & amask;
    let base = match i.iced.code() {
        Code::Lgdt_m1664 | Code::Lidt_m1664 => m.read_mem(seg, at, 8)?,
        // 16-bit operand size: a 24-bit base.
        Code::Lgdt_m1632_16 | Code::Lidt_m1632_16 => m.read_mem(seg, at, 4)? & 0xFF_FFFF,
        _ => m.read_mem(seg, at, 4)?,
    };
    let t = DescriptorTable { base, limit };
    if i.iced.mnemonic() == Mnemonic::Lgdt {
        m.cpu.gdtr = t;
    } else {
        m.cpu.idtr = t;
    }
    Ok(())
}

fn sgdt_sidt(m: &mut Machine, i: &Insn) -> ExecResult {
    if i.ops[0] != Op::Mem {
        return ud();
    }
    check_umip(m)?;
    let t = if i.iced.mnemonic() == Mnemonic::Sgdt { m.cpu.gdtr } else { m.cpu.idtr };
    let ea = i.ea(m);
    let seg = i.mem.seg;
    let at = ea.wrapping_add(2) & crate::cpu::flags::size_mask(i.asize);
    // Legacy and compatibility mode store the full 32-bit base for both operand sizes.
    let wide = m.cpu.mode == CpuMode::Long64;
    // Probe both parts before writing either, so a fault leaves memory unchanged.
    m.linear(seg, ea, 2, true)?;
    m.linear(seg, at, if wide { 8 } else { 4 }, true)?;
    m.write_mem(seg, ea, 2, u64::from(t.limit))?;
    if wide {
        m.write_mem(seg, at, 8, t.base)
    } else {
        m.write_mem(seg, at, 4, t.base & 0xFFFF_FFFF)
    }
}

/// Loads the system descriptor `sel` names for LLDT/LTR: GDT only, 16 bytes in IA-32e
/// mode. Returns the segment and the linear address of the descriptor.
fn load_system_descriptor(m: &mut Machine, sel: u16) -> Result<(Segment, u64), Fault> {
    let err = u32::from(sel & 0xFFFC);
    if sel & 4 != 0 {
        return gp(err);
    }
    let (d, lin) = m.read_descriptor(sel)?;
    let mut seg = segment_from_descriptor(sel, d);
    if m.cpu.efer & efer::LMA != 0 {
        if u64::from(sel & 0xFFF8) + 15 > u64::from(m.cpu.gdtr.limit) {
            return gp(err);
        }
        let hi = u64::from_le_bytes(m.system_read(lin.wrapping_add(8))?);
        // The upper half's type field must be 0 and the base canonical.
        if (hi >> 8) & 0x1F != 0 {
            return gp(err);
        }
        seg.base |= (hi & 0xFFFF_FFFF) << 32;
        if !m.canonical(seg.base) {
            return gp(err);
        }
    }
    Ok((seg, lin))
}

fn lldt(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 2A "LLDT".
    require_protected(m)?;
    require_cpl0(m)?;
    let sel = read_sized(m, i, 0, 2)? as u16;
    if sel & 0xFFFC == 0 {
        m.cpu.ldtr = Segment { selector: sel, ..Segment::default() }; // unusable
        return Ok(());
    }
    let (seg, _) = load_system_descriptor(m, sel)?;
    let err = u32::from(sel & 0xFFFC);
    if seg.attr & (attr::S | 0xF) != 2 {
        return gp(err);
    }
    if !seg.present() {
        return Err(Exception::with_code(vector::NP, err).into());
    }
    m.cpu.ldtr = seg;
    Ok(())
}

fn ltr(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 2A "LTR".
    require_protected(m)?;
    require_cpl0(m)?;
    let sel = read_sized(m, i, 0, 2)? as u16;
    if sel & 0xFFFC == 0 {
        return gp(0);
    }
    let (seg, lin) = load_system_descriptor(m, sel)?;
    let err = u32::from(sel & 0xFFFC);
    let ty = seg.attr & (attr::S | 0xF);
    // An available TSS: 16-bit (1) or 32/64-bit (9); only the latter in IA-32e mode.
    let ok = if m.cpu.efer & efer::LMA != 0 { ty == 9 } else { ty == 1 || ty == 9 };
    if !ok {
        return gp(err);
    }
    if !seg.present() {
        return Err(Exception::with_code(vector::NP, err).into());
    }
    // Mark the descriptor busy (type bit 1).
    m.system_write_sized(lin.wrapping_add(5), 1, u64::from(seg.attr as u8 | 2))?;
    m.cpu.tr = Segment { attr: seg.attr | 2, ..seg };
    Ok(())
}

fn sldt_str(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 2B "SLDT", "STR": #UD in real and V86 mode; a register destination is
    // zero-extended, a memory destination is 16 bits.
    require_protected(m)?;
    check_umip(m)?;
    let sel =
        if i.iced.mnemonic() == Mnemonic::Sldt { m.cpu.ldtr.selector } else { m.cpu.tr.selector };
    let size = if i.ops[0] == Op::Mem { 2 } else { operand_size(i, 0) };
    write_sized(m, i, 0, size, u64::from(sel))
}

// ---- LMSW, SMSW, CLTS ----

fn lmsw(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 2A "LMSW": loads CR0 bits 3:0; can set PE but not clear it.
    require_cpl0(m)?;
    let src = read_sized(m, i, 0, 2)?;
    let old = m.cpu.cr0;
    let new = (old & !0xE) | (src & 0xF) | (old & cr0::PE);
    write_cr0(m, new)
}

fn smsw(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 2B "SMSW": memory destination 16 bits, register destination at its size.
    check_umip(m)?;
    let size = if i.ops[0] == Op::Mem { 2 } else { operand_size(i, 0) };
    let v = crate::nested::vmx::cr_read_value(m, 0, m.cpu.cr0);
    write_sized(m, i, 0, size, v)
}

fn clts(m: &mut Machine, _i: &Insn) -> ExecResult {
    // SDM Vol. 2A "CLTS".
    require_cpl0(m)?;
    m.cpu.cr0 &= !cr0::TS;
    Ok(())
}

// ---- SWAPGS, INVLPG, XGETBV/XSETBV ----

fn swapgs(m: &mut Machine, _i: &Insn) -> ExecResult {
    // SDM Vol. 2B "SWAPGS".
    if m.cpu.mode != CpuMode::Long64 {
        return ud();
    }
    require_cpl0(m)?;
    let k = m.cpu.msrs.get(&msr::IA32_KERNEL_GS_BASE).copied().unwrap_or(0);
    let gs = &mut m.cpu.seg[SegReg::Gs as usize].base;
    let old = std::mem::replace(gs, k);
    m.cpu.msrs.insert(msr::IA32_KERNEL_GS_BASE, old);
    Ok(())
}

fn invlpg(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 2A "INVLPG": no access or limit checks on the operand; a non-canonical
    // address in 64-bit mode makes it a no-op.
    if i.ops[0] != Op::Mem {
        return ud();
    }
    require_cpl0(m)?;
    let ea = i.ea(m);
    let s = m.cpu.seg(i.mem.seg);
    let lin = if m.cpu.mode == CpuMode::Long64 {
        let base = if i.mem.seg >= SegReg::Fs { s.base } else { 0 };
        let lin = base.wrapping_add(ea);
        if !m.canonical(lin) {
            return Ok(());
        }
        lin
    } else {
        s.base.wrapping_add(ea) & 0xFFFF_FFFF
    };
    // SDM Vol. 3A §4.10.4.1: INVLPG drops the entries for the page (the whole page if
    // it is large) of the current PCID, and global entries for it under any PCID.
    let pcid = m.cpu.pcid();
    m.cpu.tlb.invalidate_page(lin >> 12, pcid, true);
    m.mmu_flush(MmuFlush::Page { lin, pcid });
    m.cpu.end_block = true;
    Ok(())
}

fn xgetbv(m: &mut Machine, _i: &Insn) -> ExecResult {
    // SDM Vol. 2B "XGETBV".
    if m.cpu.cr4 & cr4::OSXSAVE == 0 {
        return ud();
    }
    if m.cpu.gpr[1] as u32 != 0 {
        return gp(0);
    }
    let v = m.cpu.xcr0;
    set_edx_eax(m, v);
    Ok(())
}

fn xsetbv(m: &mut Machine, _i: &Insn) -> ExecResult {
    // SDM Vol. 2B "XSETBV": only XCR0, and only its x87 bit (which must stay set).
    if m.cpu.cr4 & cr4::OSXSAVE == 0 {
        return ud();
    }
    require_cpl0(m)?;
    if m.cpu.gpr[1] as u32 != 0 || edx_eax(m) != 1 {
        return gp(0);
    }
    m.cpu.xcr0 = 1;
    Ok(())
}
