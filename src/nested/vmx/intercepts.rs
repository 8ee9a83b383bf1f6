//! Which instructions and events of a VMX guest exit to L1 (SDM Vol. 3C chapter 26
//! "VMX Non-Root Operation", 26.1 "Instructions That Cause VM Exits", 26.2 "Other Causes
//! of VM Exits"), and the exit information they report (chapter 28.2).
//!
//! "Certain exceptions have priority over VM exits": #UD, faults based on privilege level
//! and #GP based on I/O permissions (26.1.1). [`simple_exceptions_pass`] holds those
//! checks; when one fails the instruction runs and raises its exception, which the
//! exception bitmap may in turn turn into an exit.

use super::exit::vm_exit;
use super::instructions::ud_conditions;
use crate::cpu::fault::Exception;
use crate::cpu::flags::IOPL;
use crate::cpu::insn::{gpr_of, Insn, Op, NO_REG};
use crate::cpu::regs::{cr0, cr4, SegReg};
use crate::cpu::task::TaskSwitchSource;
use crate::cpu::{vector, CpuMode};
use crate::machine::{Machine, StopReason};
use hvsim_decoder::iced::{Code, Mnemonic, OpKind};
use hvsim_mmu::Gpa;
use hvsim_vmx_model::controls::{proc, proc2};
use hvsim_vmx_model::exit_info::{
    displacement_qualification, linear_address_qualification, AddressSize, CrAccessQualification,
    CrAccessType, InsOutsInfo, InstructionInfo, InterruptionInfo, InterruptionType,
    IoQualification, MovDrQualification,
};
use hvsim_vmx_model::vmcs_fields as f;
use hvsim_vmx_model::{ExitInfo, VmxExitReason as R};

/// MSR-bitmap offsets (SDM Vol. 3C 25.6.9 "MSR-Bitmap Address"): read low, read high,
/// write low, write high.
const MSR_BITMAP_READ_LOW: u64 = 0;
const MSR_BITMAP_READ_HIGH: u64 = 1024;
const MSR_BITMAP_WRITE_LOW: u64 = 2048;
const MSR_BITMAP_WRITE_HIGH: u64 = 3072;
/// The high MSR range of the MSR bitmaps starts here.
const MSR_HIGH_BASE: u32 = 0xC000_0000;

fn field(m: &Machine, e: u32) -> u64 {
    m.nested.vmx.field(e)
}

fn proc_on(m: &Machine, bit: u32) -> bool {
    m.nested.vmx.proc_on(bit)
}

fn proc2_on(m: &Machine, bit: u32) -> bool {
    m.nested.vmx.proc2_on(bit)
}

/// The exceptions with priority over an instruction's exit (see the module docs):
/// `false` if one of them fires.
fn simple_exceptions_pass(m: &Machine, i: &Insn) -> bool {
    let cpl0 = m.cpu.cpl == 0;
    match i.iced.mnemonic() {
        Mnemonic::Vmxon => !ud_conditions(m) && m.cpu.cr4 & cr4::VMXE != 0,
        Mnemonic::Vmxoff
        | Mnemonic::Vmclear
        | Mnemonic::Vmptrld
        | Mnemonic::Vmptrst
        | Mnemonic::Vmread
        | Mnemonic::Vmwrite
        | Mnemonic::Vmlaunch
        | Mnemonic::Vmresume
        | Mnemonic::Vmcall
        | Mnemonic::Invept
        | Mnemonic::Invvpid => !ud_conditions(m),
        Mnemonic::Hlt
        | Mnemonic::Rdmsr
        | Mnemonic::Wrmsr
        | Mnemonic::Invlpg
        | Mnemonic::Invd
        | Mnemonic::Wbinvd
        | Mnemonic::Wbnoinvd
        | Mnemonic::Lgdt
        | Mnemonic::Lidt
        | Mnemonic::Lldt
        | Mnemonic::Ltr
        | Mnemonic::Lmsw
        | Mnemonic::Clts
        | Mnemonic::Xsetbv
        | Mnemonic::Mov => cpl0,
        Mnemonic::Rdpmc => cpl0 || m.cpu.cr4 & cr4::PCE != 0,
        Mnemonic::Rdtsc => cpl0 || m.cpu.cr4 & cr4::TSD == 0,
        // 26.3: RDTSCP is #UD without "enable RDTSCP".
        Mnemonic::Rdtscp => {
            proc2_on(m, proc2::ENABLE_RDTSCP) && (cpl0 || m.cpu.cr4 & cr4::TSD == 0)
        }
        // 26.3: INVPCID is #UD without "enable INVPCID"; #GP at CPL > 0.
        Mnemonic::Invpcid => proc2_on(m, proc2::ENABLE_INVPCID) && cpl0,
        // MONITOR/MWAIT: #UD at CPL > 0, in virtual-8086 mode or without CPUID.MONITOR.
        Mnemonic::Monitor | Mnemonic::Mwait => {
            cpl0 && m.cpu.mode != CpuMode::V86 && m.cpuid.has(crate::cpuid::Feature::Monitor)
        }
        Mnemonic::Sgdt | Mnemonic::Sidt | Mnemonic::Sldt | Mnemonic::Str | Mnemonic::Smsw => {
            cpl0 || m.cpu.cr4 & cr4::UMIP == 0
        }
        // I/O: the IOPL check (a TSS I/O-bitmap check that would permit the access is
        // not looked at: such an access runs without an exit).
        Mnemonic::In
        | Mnemonic::Out
        | Mnemonic::Insb
        | Mnemonic::Insw
        | Mnemonic::Insd
        | Mnemonic::Outsb
        | Mnemonic::Outsw
        | Mnemonic::Outsd => {
            m.cpu.mode == CpuMode::Real
                || (m.cpu.mode != CpuMode::V86
                    && u64::from(m.cpu.cpl) <= (m.cpu.flags.get() & IOPL) >> 12)
        }
        _ => true,
    }
}

/// The GPR number of register operand `n`.
fn gpr_operand(i: &Insn, n: u32) -> u8 {
    gpr_of(i.iced.op_register(n)).map_or(0, |(r, _)| r)
}

fn address_size(i: &Insn) -> AddressSize {
    match i.asize {
        2 => AddressSize::Bits16,
        4 => AddressSize::Bits32,
        _ => AddressSize::Bits64,
    }
}

/// The VM-exit instruction information of an instruction with a memory or register
/// operand `rm` and a register operand `reg2` (SDM Vol. 3C 28.2.5, Table 28-13).
fn instruction_info(i: &Insn, rm: usize, reg2: Option<u32>) -> u32 {
    let register_operand = i.ops[rm] != Op::Mem;
    let mem = &i.mem;
    InstructionInfo {
        scaling: if register_operand { 0 } else { mem.scale },
        reg1: if register_operand { gpr_operand(i, rm as u32) } else { 0 },
        address_size: address_size(i),
        register_operand,
        operand_size_32: i.osize >= 4,
        segment: mem.seg as u8,
        index: (!register_operand && mem.index != NO_REG).then_some(mem.index),
        base: (!register_operand && mem.base != NO_REG).then_some(mem.base),
        reg2: reg2.map_or(0, |n| gpr_operand(i, n)),
    }
    .encode()
}

/// The instruction information of RDRAND and RDSEED (SDM Vol. 3C 28.2.5, "Format of the
/// VM-Exit Instruction-Information Field as Used for RDRAND, RDSEED, TPAUSE, and
/// UMWAIT"): bits 6:3 the destination register, bits 12:11 the operand size (0 16-bit,
/// 1 32-bit, 2 64-bit).
fn random_instruction_info(i: &Insn) -> u32 {
    const REG_SHIFT: u32 = 3;
    const SIZE_SHIFT: u32 = 11;
    let size = match i.osize {
        2 => 0,
        4 => 1,
        _ => 2,
    };
    u32::from(gpr_operand(i, 0) & 0xF) << REG_SHIFT | size << SIZE_SHIFT
}

/// The displacement qualification of an instruction with a memory operand.
fn displacement(i: &Insn) -> u64 {
    if i.ops.contains(&Op::Mem) {
        displacement_qualification(i.iced.memory_displacement64() as i64 as i32)
    } else {
        0
    }
}

/// (reason, qualification, instruction information) of an intercepted instruction.
type Exit = (R, u64, u32);

/// The exit an instruction causes, if any.
fn exit_for(m: &mut Machine, i: &Insn) -> Option<Exit> {
    let d = &i.iced;
    let when = |on: bool, r: R| on.then_some((r, 0, 0));
    match d.mnemonic() {
        // 26.1.2 "Instructions That Cause VM Exits Unconditionally".
        Mnemonic::Cpuid => Some((R::CPUID, 0, 0)),
        Mnemonic::Getsec => Some((R::GETSEC, 0, 0)),
        Mnemonic::Invd => Some((R::INVD, 0, 0)),
        Mnemonic::Xsetbv => Some((R::XSETBV, 0, 0)),
        Mnemonic::Vmcall => Some((R::VMCALL, 0, 0)),
        Mnemonic::Vmlaunch => Some((R::VMLAUNCH, 0, 0)),
        Mnemonic::Vmresume => Some((R::VMRESUME, 0, 0)),
        Mnemonic::Vmxoff => Some((R::VMXOFF, 0, 0)),
        Mnemonic::Vmclear => Some((R::VMCLEAR, displacement(i), instruction_info(i, 0, None))),
        Mnemonic::Vmptrld => Some((R::VMPTRLD, displacement(i), instruction_info(i, 0, None))),
        Mnemonic::Vmptrst => Some((R::VMPTRST, displacement(i), instruction_info(i, 0, None))),
        Mnemonic::Vmxon => Some((R::VMXON, displacement(i), instruction_info(i, 0, None))),
        Mnemonic::Vmread => Some((R::VMREAD, displacement(i), instruction_info(i, 0, Some(1)))),
        Mnemonic::Vmwrite => Some((R::VMWRITE, displacement(i), instruction_info(i, 1, Some(0)))),
        // INVEPT/INVVPID r, m128: the descriptor (operand 1) and the type register in
        // Reg2 (28.2.5 Table 28-11).
        Mnemonic::Invept => Some((R::INVEPT, displacement(i), instruction_info(i, 1, Some(0)))),
        Mnemonic::Vmfunc => when(super::ept::vmfunc_fails(m), R::VMFUNC),
        Mnemonic::Invvpid => Some((R::INVVPID, displacement(i), instruction_info(i, 1, Some(0)))),
        // 26.1.3 "Instructions That Cause VM Exits Conditionally".
        Mnemonic::Hlt => when(proc_on(m, proc::HLT_EXITING), R::HLT),
        Mnemonic::Rdtsc => when(proc_on(m, proc::RDTSC_EXITING), R::RDTSC),
        Mnemonic::Rdtscp => when(proc_on(m, proc::RDTSC_EXITING), R::RDTSCP),
        Mnemonic::Rdpmc => when(proc_on(m, proc::RDPMC_EXITING), R::RDPMC),
        Mnemonic::Pause => when(pause_exits(m), R::PAUSE),
        Mnemonic::Monitor => when(proc_on(m, proc::MONITOR_EXITING), R::MONITOR),
        // 28.2.1 "Exit Qualification for VM Exits Due to MWAIT": bit 0 is 1 if the monitoring
        // hardware is armed.
        Mnemonic::Mwait => proc_on(m, proc::MWAIT_EXITING)
            .then(|| (R::MWAIT, u64::from(m.cpu.monitor.armed.is_some()), 0)),
        // 26.1.3: INVPCID exits with "INVLPG exiting" (and "enable INVPCID", checked
        // above); qualification and instruction information as for INVEPT (28.2.5).
        Mnemonic::Invpcid => proc_on(m, proc::INVLPG_EXITING)
            .then(|| (R::INVPCID, displacement(i), instruction_info(i, 1, Some(0)))),
        Mnemonic::Wbinvd | Mnemonic::Wbnoinvd => {
            when(proc2_on(m, proc2::WBINVD_EXITING), R::WBINVD)
        }
        Mnemonic::Rdrand => {
            proc2_on(m, proc2::RDRAND_EXITING).then(|| (R::RDRAND, 0, random_instruction_info(i)))
        }
        Mnemonic::Rdseed => {
            proc2_on(m, proc2::RDSEED_EXITING).then(|| (R::RDSEED, 0, random_instruction_info(i)))
        }
        Mnemonic::Invlpg => proc_on(m, proc::INVLPG_EXITING).then(|| {
            let lin = m.cpu.seg(i.mem.seg).base.wrapping_add(i.ea(m));
            let q = linear_address_qualification(lin, m.cpu.mode == CpuMode::Long64);
            (R::INVLPG, q, 0)
        }),
        Mnemonic::Sgdt | Mnemonic::Sidt | Mnemonic::Lgdt | Mnemonic::Lidt
            if proc2_on(m, proc2::DESCRIPTOR_TABLE_EXITING) =>
        {
            Some((R::GDTR_IDTR_ACCESS, displacement(i), table_info(i)))
        }
        Mnemonic::Sldt | Mnemonic::Str | Mnemonic::Lldt | Mnemonic::Ltr
            if proc2_on(m, proc2::DESCRIPTOR_TABLE_EXITING) =>
        {
            Some((R::LDTR_TR_ACCESS, displacement(i), table_info(i)))
        }
        Mnemonic::Rdmsr | Mnemonic::Wrmsr => {
            let write = d.mnemonic() == Mnemonic::Wrmsr;
            let msr = m.cpu.gpr[1] as u32;
            msr_exits(m, msr, write).then_some((if write { R::WRMSR } else { R::RDMSR }, 0, 0))
        }
        Mnemonic::Clts => {
            // Exits if TS is owned by the host and set in the read shadow.
            let mask = field(m, f::CR0_GUEST_HOST_MASK);
            let shadow = field(m, f::CR0_READ_SHADOW);
            (mask & shadow & cr0::TS != 0)
                .then(|| (R::CR_ACCESS, cr_qual(0, CrAccessType::Clts, 0, 0, false), 0))
        }
        Mnemonic::Lmsw => lmsw_exit(m, i),
        Mnemonic::Mov => mov_cr_dr_exit(m, i),
        _ => io_exit(m, i),
    }
}

/// PAUSE (26.1.3): always exits with "PAUSE exiting"; otherwise, at CPL 0 with
/// "PAUSE-loop exiting", when the PAUSE loop it belongs to has run longer than
/// PLE_Window. A PAUSE more than PLE_Gap TSC ticks after the previous one (or the first
/// after VM entry) starts a new loop. Times are TSC values of the deterministic clock.
fn pause_exits(m: &mut Machine) -> bool {
    if proc_on(m, proc::PAUSE_EXITING) {
        return true;
    }
    if !proc2_on(m, proc2::PAUSE_LOOP_EXITING) || m.cpu.cpl != 0 {
        return false;
    }
    let now = m.clock();
    let gap = field(m, f::PLE_GAP) & 0xFFFF_FFFF;
    let window = field(m, f::PLE_WINDOW) & 0xFFFF_FFFF;
    let first = match m.nested.vmx.ple {
        Some((last, first)) if now.saturating_sub(last) <= gap => first,
        _ => now,
    };
    m.nested.vmx.ple = Some((now, first));
    now.saturating_sub(first) > window
}

fn cr_qual(cr: u8, access: CrAccessType, gpr: u8, lmsw_source: u16, lmsw_memory: bool) -> u64 {
    CrAccessQualification { cr, access, lmsw_memory, gpr, lmsw_source }.encode()
}

/// Instruction information of LGDT/LIDT/SGDT/SIDT/LLDT/LTR/SLDT/STR: the operand and
/// the instruction identity in bits 29:28.
fn table_info(i: &Insn) -> u32 {
    use hvsim_vmx_model::exit_info::table_instruction as t;
    let id = match i.iced.mnemonic() {
        Mnemonic::Sgdt | Mnemonic::Sldt => t::SGDT_SLDT,
        Mnemonic::Sidt | Mnemonic::Str => t::SIDT_STR,
        Mnemonic::Lgdt | Mnemonic::Lldt => t::LGDT_LLDT,
        _ => t::LIDT_LTR,
    };
    (instruction_info(i, 0, None) & 0x0FFF_FFFF) | u32::from(id) << 28
}

/// LMSW: exits if it would set a host-owned PE bit that is clear in the shadow, or
/// change a host-owned MP/EM/TS bit from its shadow value (26.1.3).
fn lmsw_exit(m: &mut Machine, i: &Insn) -> Option<Exit> {
    let mask = field(m, f::CR0_GUEST_HOST_MASK);
    let shadow = field(m, f::CR0_READ_SHADOW);
    let src = match i.ops[0] {
        Op::Reg(r, _) => m.cpu.gpr[usize::from(r)] & 0xFFFF,
        Op::Mem => {
            let ea = i.ea(m);
            m.read_mem(i.mem.seg, ea, 2).ok()?
        }
        _ => return None,
    };
    let pe = mask & cr0::PE != 0 && shadow & cr0::PE == 0 && src & cr0::PE != 0;
    let others = (mask & 0xE) & (shadow ^ src) != 0;
    (pe || others).then(|| {
        let mem = i.ops[0] == Op::Mem;
        let gpr = if mem { 0 } else { gpr_operand(i, 0) };
        (R::CR_ACCESS, cr_qual(0, CrAccessType::Lmsw, gpr, src as u16, mem), 0)
    })
}

/// MOV to/from CR0, CR3, CR4, CR8 and MOV DR (26.1.3).
fn mov_cr_dr_exit(m: &mut Machine, i: &Insn) -> Option<Exit> {
    let d = &i.iced;
    let reg = |n| (d.op_kind(n) == OpKind::Register).then(|| d.op_register(n));
    let (Some(r0), Some(r1)) = (reg(0), reg(1)) else {
        return None;
    };
    if r0.is_cr() {
        let n = r0.number() as u8;
        let src = m.cpu.gpr[usize::from(gpr_operand(i, 1))];
        let exits = match n {
            0 | 4 => {
                let (mk, sh) = if n == 0 {
                    (f::CR0_GUEST_HOST_MASK, f::CR0_READ_SHADOW)
                } else {
                    (f::CR4_GUEST_HOST_MASK, f::CR4_READ_SHADOW)
                };
                (src ^ field(m, sh)) & field(m, mk) != 0
            }
            3 => {
                let count = field(m, f::CR3_TARGET_COUNT).min(4) as u32;
                let target = (0..count).any(|k| field(m, f::CR3_TARGET_VALUE0 + 2 * k) == src);
                proc_on(m, proc::CR3_LOAD_EXITING) && !target
            }
            8 => proc_on(m, proc::CR8_LOAD_EXITING),
            _ => false,
        };
        return exits.then(|| {
            (R::CR_ACCESS, cr_qual(n, CrAccessType::MovToCr, gpr_operand(i, 1), 0, false), 0)
        });
    }
    if r1.is_cr() {
        let n = r1.number() as u8;
        let exits = match n {
            3 => proc_on(m, proc::CR3_STORE_EXITING),
            8 => proc_on(m, proc::CR8_STORE_EXITING),
            _ => false,
        };
        return exits.then(|| {
            (R::CR_ACCESS, cr_qual(n, CrAccessType::MovFromCr, gpr_operand(i, 0), 0, false), 0)
        });
    }
    let (dr, from_dr, gpr) = if r0.is_dr() {
        (r0.number() as u8, false, gpr_operand(i, 1))
    } else if r1.is_dr() {
        (r1.number() as u8, true, gpr_operand(i, 0))
    } else {
        return None;
    };
    // #UD for DR4/DR5 with CR4.DE has priority.
    if matches!(dr, 4 | 5) && m.cpu.cr4 & cr4::DE != 0 || dr > 7 {
        return None;
    }
    proc_on(m, proc::MOV_DR_EXITING)
        .then(|| (R::DR_ACCESS, MovDrQualification { dr, from_dr, gpr }.encode(), 0))
}

/// Whether RDMSR/WRMSR of `msr` exits: always without MSR bitmaps; with them, by the
/// bitmap bit, and always outside the two ranges (26.1.3, 25.6.9).
fn msr_exits(m: &mut Machine, msr: u32, write: bool) -> bool {
    if !proc_on(m, proc::USE_MSR_BITMAPS) {
        return true;
    }
    let (off, bit) = match msr {
        0..=0x1FFF => (if write { MSR_BITMAP_WRITE_LOW } else { MSR_BITMAP_READ_LOW }, msr),
        MSR_HIGH_BASE..=0xC000_1FFF => {
            (if write { MSR_BITMAP_WRITE_HIGH } else { MSR_BITMAP_READ_HIGH }, msr - MSR_HIGH_BASE)
        }
        _ => return true,
    };
    let base = field(m, f::MSR_BITMAP);
    bitmap_bit(m, base + off, bit)
}

/// Bit `bit` of the bitmap at physical address `base`.
fn bitmap_bit(m: &mut Machine, base: u64, bit: u32) -> bool {
    let mut b = [0u8; 1];
    m.phys_read(Gpa(base + u64::from(bit / 8)), &mut b);
    b[0] >> (bit % 8) & 1 != 0
}

/// I/O instructions: unconditional I/O exiting, or the I/O bitmaps (which then take
/// precedence), any byte of the access selecting an exit; an access wrapping past
/// FFFFH always exits (26.1.3, 25.6.4).
fn io_exit(m: &mut Machine, i: &Insn) -> Option<Exit> {
    let d = &i.iced;
    let dx = m.cpu.gpr[2] as u16;
    let (port, is_in, size, string, immediate, seg) = match d.mnemonic() {
        Mnemonic::In => {
            let imm = i.ops[1] == Op::Imm;
            let port = if imm { (i.imm & 0xFF) as u16 } else { dx };
            (port, true, d.op0_register().size() as u8, false, imm, SegReg::Es)
        }
        Mnemonic::Out => {
            let imm = i.ops[0] == Op::Imm;
            let port = if imm { (i.imm & 0xFF) as u16 } else { dx };
            (port, false, d.op1_register().size() as u8, false, imm, SegReg::Es)
        }
        _ => match d.code() {
            Code::Insb_m8_DX => (dx, true, 1, true, false, SegReg::Es),
            Code::Insw_m16_DX => (dx, true, 2, true, false, SegReg::Es),
            Code::Insd_m32_DX => (dx, true, 4, true, false, SegReg::Es),
            Code::Outsb_DX_m8 => (dx, false, 1, true, false, i.mem.seg),
            Code::Outsw_DX_m16 => (dx, false, 2, true, false, i.mem.seg),
            Code::Outsd_DX_m32 => (dx, false, 4, true, false, i.mem.seg),
            _ => return None,
        },
    };
    let exits = if proc_on(m, proc::USE_IO_BITMAPS) {
        (0..u32::from(size)).any(|k| {
            let p = u32::from(port) + k;
            if p > 0xFFFF {
                return true;
            }
            let (bitmap, bit) = if p < 0x8000 {
                (field(m, f::IO_BITMAP_A), p)
            } else {
                (field(m, f::IO_BITMAP_B), p - 0x8000)
            };
            bitmap_bit(m, bitmap, bit)
        })
    } else {
        proc_on(m, proc::UNCONDITIONAL_IO_EXITING)
    };
    if !exits {
        return None;
    }
    let rep = string && (d.has_rep_prefix() || d.has_repne_prefix());
    let q = IoQualification { size, is_in, string, rep, immediate, port }.encode();
    let info = if string {
        InsOutsInfo { address_size: address_size(i), segment: seg as u8 }.encode()
    } else {
        0
    };
    Some((R::IO_INSTRUCTION, q, info))
}

/// The hook before each guest instruction: `true` if it exited (the VM exit has
/// happened, with `rip` saved as the guest's RIP and the instruction's length).
pub fn check_insn(m: &mut Machine, i: &Insn, rip: u64, _next: u64) -> bool {
    m.nested.vmx.vectoring = None;
    m.nested.vmx.iret_unblocked_nmi = false;
    super::ept::note_insn(m, i);
    if !simple_exceptions_pass(m, i) {
        return false;
    }
    let Some((reason, qualification, instruction_info)) = exit_for(m, i) else {
        return false;
    };
    m.cpu.rip = rip;
    vm_exit(
        m,
        ExitInfo {
            reason: u32::from(reason.0),
            qualification,
            instruction_length: u32::from(i.len),
            instruction_info,
            ..ExitInfo::default()
        },
    );
    true
}

/// Whether exception `e` exits by the exception bitmap; for #PF bit 14 selects whether
/// the error codes matching PFEC_MASK/PFEC_MATCH exit or the others do (25.6.3).
pub fn exception_exits(m: &Machine, e: &Exception) -> bool {
    if e.vector >= 32 {
        return false;
    }
    let bit = field(m, f::EXCEPTION_BITMAP) >> e.vector & 1 != 0;
    if e.vector != vector::PF {
        return bit;
    }
    let code = u64::from(e.error_code.unwrap_or(0));
    let matches =
        code & field(m, f::PAGE_FAULT_ERROR_CODE_MASK) == field(m, f::PAGE_FAULT_ERROR_CODE_MATCH);
    bit == matches
}

/// An exception in the guest: a VM exit through the exception bitmap (reason 0, with
/// the interruption information, the error code and for #PF the linear address as the
/// qualification, CR2 unchanged; 28.2.2), else delivered in the guest, where a triple
/// fault is a VM exit (26.2 "Other Causes of VM Exits"). With the monitor trap flag an
/// MTF exit is pending after the delivery (26.7.2).
pub fn on_exception(
    m: &mut Machine,
    e: Exception,
    insn: Option<&Insn>,
) -> Option<Option<StopReason>> {
    if exception_exits(m, &e) {
        // A fault of INT n / INT3 delivery: the event was being delivered (28.2.4).
        let length = super::events::vectoring_insn_length(m, insn.map_or(0, |i| i.len));
        super::events::exception_exit(m, &e, 0, 0, length);
        return Some(None);
    }
    m.nested.vmx.pending_ept = None;
    let r = m.raise_exception(e, insn);
    if m.nested.vmx.pending_ept.is_some() {
        // The delivery met an EPT violation or misconfiguration: the exit reports the
        // exception in the IDT-vectoring information (28.2.4).
        let info = InterruptionInfo::new(
            e.vector,
            InterruptionType::HardwareException,
            e.error_code.is_some(),
        );
        let idt = (info.encode(), e.error_code.unwrap_or(0), 0);
        super::ept::exit_pending(m, None, Some(idt));
        return Some(None);
    }
    if matches!(r, Some(StopReason::Shutdown { .. })) {
        if m.nested.vmx.non_root {
            m.nested.vmx.vectoring = None;
            vm_exit(m, ExitInfo { reason: u32::from(R::TRIPLE_FAULT.0), ..ExitInfo::default() });
        }
        return Some(None);
    }
    if m.nested.vmx.non_root && proc_on(m, proc::MONITOR_TRAP_FLAG) {
        m.nested.vmx.mtf_pending = true;
    }
    Some(r)
}

/// Task switches exit unconditionally (SDM Vol. 3C 26.1.2 "Instructions That Cause VM
/// Exits Unconditionally" and 26.4.2 "Treatment of Task Switches"): reason 9 with the
/// new TSS selector and the source in the qualification (28.2.1); for CALL, JMP and IRET
/// the saved RIP is the instruction's and its length is recorded; through a task gate in
/// the IDT the event being delivered is the IDT-vectoring information.
pub(crate) fn task_switch(m: &mut Machine, tss_selector: u16, source: TaskSwitchSource) -> bool {
    use hvsim_vmx_model::exit_info::{TaskSwitchQualification, TaskSwitchSource as Q};
    let (q_source, instruction) = match source {
        TaskSwitchSource::Call => (Q::Call, true),
        TaskSwitchSource::Iret => (Q::Iret, true),
        TaskSwitchSource::Jmp => (Q::Jmp, true),
        TaskSwitchSource::Interrupt => (Q::TaskGate, false),
    };
    let length = (m.cpu.rip.wrapping_sub(m.insn_rip) & m.cpu.ip_mask()) as u32;
    let instruction_length = if instruction {
        m.cpu.rip = m.insn_rip;
        length
    } else {
        super::events::vectoring_insn_length(m, length as u8)
    };
    if !instruction && instruction_length != 0 {
        // INT n through a task gate: RIP references the instruction.
        m.cpu.rip = m.insn_rip;
    }
    let qualification =
        TaskSwitchQualification { selector: tss_selector, source: q_source }.encode();
    vm_exit(
        m,
        ExitInfo {
            reason: u32::from(R::TASK_SWITCH.0),
            qualification,
            instruction_length,
            ..ExitInfo::default()
        },
    );
    true
}
