//! The VMX instructions in VMX root operation (SDM Vol. 3C chapter 32 "VMX Instruction
//! Reference": VMXON, VMXOFF, VMCLEAR, VMPTRLD, VMPTRST, VMREAD, VMWRITE, VMLAUNCH,
//! VMRESUME, VMCALL, INVEPT, INVVPID). In non-root operation they exit to L1 before
//! reaching these handlers (the intercept hook runs first), except where an #UD has
//! priority.
//!
//! Conventions of 32.2 "Conventions": VMsucceed clears CF, PF, AF, ZF, SF and OF;
//! VMfailInvalid sets CF (no current VMCS); VMfailValid(n) sets ZF and writes n to the
//! VM-instruction error field of the current VMCS.

use super::{read_region, valid_region_address, write_region, CurrentVmcs, VMCS_CACHE_SIZE};
use crate::cpu::exec::{read_sized, write_sized};
use crate::cpu::fault::{gp, ud, unsupported, ExecResult, Fault};
use crate::cpu::flags::{CF, VM, ZF};
use crate::cpu::insn::{Handler, Insn, Op};
use crate::cpu::regs::{attr, cr0, cr4, efer, SegReg};
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};
use hvsim_mmu::Gpa;
use hvsim_vmx_model::capabilities::ept_vpid_cap as cap;
use hvsim_vmx_model::controls::proc2;
use hvsim_vmx_model::entry_checks::controls::eptp_check;
use hvsim_vmx_model::entry_checks::EntryContext;
use hvsim_vmx_model::msr::{FEATURE_CONTROL_LOCK, FEATURE_CONTROL_VMX_OUTSIDE_SMX};
use hvsim_vmx_model::vmcs::region_revision_id;
use hvsim_vmx_model::{LaunchState, VmInstructionError};

/// The current-VMCS pointer value meaning "no current VMCS".
pub const NO_VMCS: u64 = u64::MAX;

/// Chooses the handler of a VMX instruction.
pub fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Vmxon => vmxon,
        Mnemonic::Vmxoff => vmxoff,
        Mnemonic::Vmclear => vmclear,
        Mnemonic::Vmptrld => vmptrld,
        Mnemonic::Vmptrst => vmptrst,
        Mnemonic::Vmread => vmread,
        Mnemonic::Vmwrite => vmwrite,
        Mnemonic::Vmlaunch => vmlaunch,
        Mnemonic::Vmresume => vmresume,
        Mnemonic::Vmcall => vmcall,
        Mnemonic::Invept => invept,
        Mnemonic::Invvpid => invvpid,
        Mnemonic::Vmfunc => super::ept::vmfunc,
        _ => return None,
    })
}

/// The #UD conditions every VMX instruction but VMXON checks first: not in VMX
/// operation, CR0.PE = 0, RFLAGS.VM = 1, or IA-32e mode outside 64-bit code.
pub fn ud_conditions(m: &Machine) -> bool {
    m.nested.vmx.vmxon.is_none() || mode_ud(m)
}

/// The mode part of the #UD conditions (shared with VMXON).
fn mode_ud(m: &Machine) -> bool {
    m.cpu.cr0 & cr0::PE == 0
        || m.cpu.flags.bit(VM)
        || (m.cpu.efer & efer::LMA != 0 && m.cpu.seg(SegReg::Cs).attr & attr::L == 0)
}

/// The checks of a VMX instruction in root operation: #UD, then #GP(0) if CPL > 0.
fn root_checks(m: &Machine) -> ExecResult {
    if ud_conditions(m) {
        return ud();
    }
    if m.nested.vmx.non_root {
        // The intercept hook exits first; reaching here is a bug, not guest behaviour.
        return unsupported("VMX instruction in VMX non-root operation without a VM exit");
    }
    if m.cpu.cpl != 0 {
        return gp(0);
    }
    Ok(())
}

/// VMsucceed.
pub(crate) fn succeed(m: &mut Machine) {
    m.cpu.flags.set_arith(0);
}

/// VMfailInvalid.
pub(crate) fn fail_invalid(m: &mut Machine) {
    m.cpu.flags.set_arith(CF);
}

/// VMfail(error): VMfailValid with a current VMCS, else VMfailInvalid.
pub(crate) fn fail(m: &mut Machine, e: VmInstructionError) {
    match m.nested.vmx.current.as_mut() {
        Some(c) => {
            c.vmcs.set_instruction_error(e);
            m.cpu.flags.set_arith(ZF);
        }
        None => fail_invalid(m),
    }
    tracing::debug!(target: "hvsim::nested", error = e.0, "VMfail: {}", e);
}

/// The 64-bit memory operand of VMXON, VMCLEAR, VMPTRLD (a physical address).
fn pointer_operand(m: &mut Machine, i: &Insn) -> Result<u64, Fault> {
    if i.ops[0] != Op::Mem {
        return ud();
    }
    let ea = i.ea(m);
    m.read_mem(i.mem.seg, ea, 8)
}

fn vmxon(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 3C 32.3 "VMXON—Enter VMX Operation".
    if i.ops[0] != Op::Mem || mode_ud(m) || m.cpu.cr4 & cr4::VMXE == 0 {
        return ud();
    }
    if m.nested.vmx.vmxon.is_some() {
        if m.nested.vmx.non_root {
            return unsupported("VMXON in VMX non-root operation without a VM exit");
        }
        if m.cpu.cpl != 0 {
            return gp(0);
        }
        fail(m, VmInstructionError::VMXON_IN_VMX_ROOT);
        return Ok(());
    }
    let caps = &m.nested.vmx.caps;
    let fixed = |v: u64, f0: u64, f1: u64| v & f0 == f0 && v & !f1 == 0;
    let cr0_ok = fixed(m.cpu.cr0, caps.cr0_fixed0, caps.cr0_fixed1 | cr0::ET);
    let cr4_ok = fixed(m.cpu.cr4, caps.cr4_fixed0, caps.cr4_fixed1);
    let fc = crate::cpu::exec::read_msr(m, crate::cpu::msr::IA32_FEATURE_CONTROL).unwrap_or(0);
    // hvsim has no SMX: "outside SMX operation and bit 2 of IA32_FEATURE_CONTROL is
    // clear" is the rule that applies. A20M does not exist on hvsim.
    if m.cpu.cpl != 0
        || !cr0_ok
        || !cr4_ok
        || fc & FEATURE_CONTROL_LOCK == 0
        || fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0
    {
        return gp(0);
    }
    let pa = pointer_operand(m, i)?;
    if !valid_region_address(pa) {
        fail_invalid(m);
        return Ok(());
    }
    let mut rev = [0u8; 4];
    m.phys_read(Gpa(pa), &mut rev);
    match region_revision_id(&rev) {
        Some((id, false)) if id == m.nested.vmx.caps.revision_id => {}
        _ => {
            fail_invalid(m);
            return Ok(());
        }
    }
    let s = &mut m.nested.vmx;
    s.vmxon = Some(pa);
    s.current = None;
    tracing::debug!(target: "hvsim::nested", vmxon = pa, "VMXON");
    succeed(m);
    Ok(())
}

fn vmxoff(m: &mut Machine, _i: &Insn) -> ExecResult {
    // SDM Vol. 3C 32.3 "VMXOFF—Leave VMX Operation". Active VMCSs are written back
    // (software should VMCLEAR them first; hvsim keeps nothing across VMXOFF).
    root_checks(m)?;
    flush_all(m);
    m.nested.vmx.vmxon = None;
    succeed(m);
    Ok(())
}

/// Writes every cached VMCS (and the current one) to memory and forgets them.
fn flush_all(m: &mut Machine) {
    if let Some(c) = m.nested.vmx.current.take() {
        write_region(m, c.pa, &c.vmcs);
    }
    for (pa, v) in std::mem::take(&mut m.nested.vmx.cache) {
        write_region(m, pa, &v);
    }
}

fn vmclear(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 3C 32.3 "VMCLEAR—Clear Virtual-Machine Control Structure".
    root_checks(m)?;
    let pa = pointer_operand(m, i)?;
    if !valid_region_address(pa) {
        fail(m, VmInstructionError::VMCLEAR_INVALID_ADDRESS);
        return Ok(());
    }
    if Some(pa) == m.nested.vmx.vmxon {
        fail(m, VmInstructionError::VMCLEAR_VMXON_POINTER);
        return Ok(());
    }
    let s = &mut m.nested.vmx;
    let cached = if s.current.as_ref().is_some_and(|c| c.pa == pa) {
        s.current.take().map(|c| c.vmcs)
    } else {
        s.cache.iter().position(|(a, _)| *a == pa).map(|k| s.cache.remove(k).1)
    };
    // "Ensure that data for the VMCS referenced by the operand is in memory", with the
    // launch state clear.
    let mut vmcs = match cached {
        Some(v) => v,
        None => read_region(m, pa),
    };
    vmcs.launch_state = LaunchState::Clear;
    write_region(m, pa, &vmcs);
    succeed(m);
    Ok(())
}

fn vmptrld(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 3C 32.3 "VMPTRLD—Load Pointer to Virtual-Machine Control Structure".
    root_checks(m)?;
    let pa = pointer_operand(m, i)?;
    if !valid_region_address(pa) {
        fail(m, VmInstructionError::VMPTRLD_INVALID_ADDRESS);
        return Ok(());
    }
    if Some(pa) == m.nested.vmx.vmxon {
        fail(m, VmInstructionError::VMPTRLD_VMXON_POINTER);
        return Ok(());
    }
    let mut rev = [0u8; 4];
    m.phys_read(Gpa(pa), &mut rev);
    // No VMCS shadowing: a shadow-VMCS indicator of 1 is an incorrect revision too.
    match region_revision_id(&rev) {
        Some((id, false)) if id == m.nested.vmx.caps.revision_id => {}
        _ => {
            fail(m, VmInstructionError::VMPTRLD_INCORRECT_REVISION);
            return Ok(());
        }
    }
    if m.nested.vmx.current.as_ref().is_some_and(|c| c.pa == pa) {
        succeed(m);
        return Ok(());
    }
    let s = &mut m.nested.vmx;
    if let Some(old) = s.current.take() {
        s.cache.push((old.pa, old.vmcs));
    }
    let vmcs = match s.cache.iter().position(|(a, _)| *a == pa) {
        Some(k) => s.cache.remove(k).1,
        None => read_region(m, pa),
    };
    if m.nested.vmx.cache.len() > VMCS_CACHE_SIZE {
        let (old_pa, old) = m.nested.vmx.cache.remove(0);
        write_region(m, old_pa, &old);
    }
    m.nested.vmx.current = Some(Box::new(CurrentVmcs { pa, vmcs }));
    succeed(m);
    Ok(())
}

fn vmptrst(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 3C 32.3 "VMPTRST—Store Pointer to Virtual-Machine Control Structure".
    root_checks(m)?;
    if i.ops[0] != Op::Mem {
        return ud();
    }
    let v = m.nested.vmx.current.as_ref().map_or(NO_VMCS, |c| c.pa);
    let ea = i.ea(m);
    m.write_mem(i.mem.seg, ea, 8, v)?;
    succeed(m);
    Ok(())
}

/// The operand size of VMREAD/VMWRITE: 64 bits in 64-bit mode, else 32.
fn vm_operand_size(m: &Machine) -> u8 {
    if m.cpu.mode == crate::cpu::CpuMode::Long64 {
        8
    } else {
        4
    }
}

fn vmread(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 3C 32.3 "VMREAD—Read Field from Virtual-Machine Control Structure":
    // destination r/m (operand 0), field encoding in a register (operand 1).
    root_checks(m)?;
    let size = vm_operand_size(m);
    let encoding = read_sized(m, i, 1, size)?;
    let Some(c) = m.nested.vmx.current.as_ref() else {
        fail_invalid(m);
        return Ok(());
    };
    match c.vmcs.read(encoding, &m.nested.vmx.caps) {
        Ok(v) => {
            write_sized(m, i, 0, size, v)?;
            succeed(m);
        }
        Err(e) => fail(m, e),
    }
    Ok(())
}

fn vmwrite(m: &mut Machine, i: &Insn) -> ExecResult {
    // SDM Vol. 3C 32.3 "VMWRITE—Write Field to Virtual-Machine Control Structure":
    // field encoding in a register (operand 0), source r/m (operand 1).
    root_checks(m)?;
    let size = vm_operand_size(m);
    let value = read_sized(m, i, 1, size)?;
    let encoding = read_sized(m, i, 0, size)?;
    let s = &mut m.nested.vmx;
    let Some(c) = s.current.as_mut() else {
        fail_invalid(m);
        return Ok(());
    };
    match c.vmcs.write(encoding, value, &s.caps) {
        Ok(()) => succeed(m),
        Err(e) => fail(m, e),
    }
    Ok(())
}

fn vmlaunch(m: &mut Machine, _i: &Insn) -> ExecResult {
    root_checks(m)?;
    super::entry::vm_entry(m, true)
}

fn vmresume(m: &mut Machine, _i: &Insn) -> ExecResult {
    root_checks(m)?;
    super::entry::vm_entry(m, false)
}

fn vmcall(m: &mut Machine, _i: &Insn) -> ExecResult {
    // SDM Vol. 3C 32.3 "VMCALL—Call to VM Monitor": in root operation, without the
    // dual-monitor treatment of SMIs (not supported), VMfail(1).
    root_checks(m)?;
    fail(m, VmInstructionError::VMCALL_IN_VMX_ROOT);
    Ok(())
}

/// INVEPT types (SDM Vol. 3C 29.4.3.1 "Operations that Invalidate Cached Mappings",
/// 32.3 "INVEPT"): the bit of IA32_VMX_EPT_VPID_CAP that reports type `t` is 24 + t.
pub mod invept_type {
    /// Single-context: the mappings of one EPTP.
    pub const SINGLE_CONTEXT: u64 = 1;
    /// Global: the mappings of every EPTP.
    pub const ALL_CONTEXT: u64 = 2;
    /// IA32_VMX_EPT_VPID_CAP bit of type 0.
    pub const CAP_BIT_BASE: u64 = 24;
}

/// INVVPID types (SDM Vol. 3C 32.3 "INVVPID"): the bit of IA32_VMX_EPT_VPID_CAP that
/// reports type `t` is 40 + t.
pub mod invvpid_type {
    /// Individual-address: one linear address of one VPID.
    pub const INDIVIDUAL_ADDRESS: u64 = 0;
    /// Single-context: every mapping of one VPID.
    pub const SINGLE_CONTEXT: u64 = 1;
    /// All-context: every mapping of every VPID but 0.
    pub const ALL_CONTEXT: u64 = 2;
    /// Single-context, retaining global translations.
    pub const SINGLE_CONTEXT_RETAINING_GLOBALS: u64 = 3;
    /// IA32_VMX_EPT_VPID_CAP bit of type 0.
    pub const CAP_BIT_BASE: u64 = 40;
}

/// Whether IA32_VMX_EPT_VPID_CAP reports type `ty` of an instruction whose type 0 is bit
/// `base` (a type beyond the register's bits is not supported).
fn type_supported(m: &Machine, base: u64, ty: u64) -> bool {
    base.checked_add(ty)
        .filter(|&b| b < 64)
        .is_some_and(|b| m.nested.vmx.caps.ept_vpid_cap >> b & 1 != 0)
}

/// The register operand (type) and the 128-bit memory descriptor of INVEPT/INVVPID: the
/// type is read first, the descriptor only when the type is supported.
fn invalidation_type(m: &mut Machine, i: &Insn) -> Result<u64, Fault> {
    if i.ops[1] != Op::Mem {
        return ud();
    }
    read_sized(m, i, 0, vm_operand_size(m))
}

/// Reads the 128-bit descriptor of INVEPT/INVVPID: (bits 63:0, bits 127:64).
fn descriptor(m: &mut Machine, i: &Insn) -> Result<(u64, u64), Fault> {
    let ea = i.ea(m);
    let lin = m.linear(i.mem.seg, ea, 16, false)?;
    let b: [u8; 16] = m.read_lin(lin, hvsim_mmu::paging::AccessKind::Read)?;
    let lo = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let hi = u64::from_le_bytes(b[8..].try_into().unwrap_or_default());
    Ok((lo, hi))
}

/// INVEPT (SDM Vol. 3C 32.3 "INVEPT—Invalidate Translations Derived from EPT"): #UD
/// without EPT and INVEPT support, then the common checks; an unsupported type, or a
/// single-context descriptor whose EPTP VM entry would reject (27.2.1.1), is
/// VMfail(28). hvsim holds no EPT-derived translation in root operation (see the module
/// docs of `vmx`), so a valid INVEPT has nothing left to invalidate.
fn invept(m: &mut Machine, i: &Insn) -> ExecResult {
    let caps = &m.nested.vmx.caps;
    if caps.proc2.may_be_one & u64::from(proc2::ENABLE_EPT) == 0
        || caps.ept_vpid_cap & cap::INVEPT == 0
    {
        return ud();
    }
    root_checks(m)?;
    let ty = invalidation_type(m, i)?;
    if !type_supported(m, invept_type::CAP_BIT_BASE, ty) {
        fail(m, VmInstructionError::INVALID_INVEPT_INVVPID_OPERAND);
        return Ok(());
    }
    let (eptp, _) = descriptor(m, i)?;
    if ty == invept_type::SINGLE_CONTEXT {
        let ctx = entry_context(m);
        if eptp_check(eptp, &m.nested.vmx.caps, &ctx).is_err() {
            fail(m, VmInstructionError::INVALID_INVEPT_INVVPID_OPERAND);
            return Ok(());
        }
    }
    tracing::debug!(target: "hvsim::nested", ty, eptp, "INVEPT");
    succeed(m);
    Ok(())
}

/// INVVPID (SDM Vol. 3C 32.3 "INVVPID—Invalidate Translations Based on VPID"): #UD
/// without VPID and INVVPID support, then the common checks; VMfail(28) for an
/// unsupported type, descriptor bits 63:16 set, VPID 0 with types 0, 1 and 3, or a
/// non-canonical linear address with type 0. Translations of VPIDs other than 0 never
/// outlive the VM exit that ends their L2 in hvsim (see the module docs of `vmx`), so a
/// valid INVVPID has nothing left to invalidate.
fn invvpid(m: &mut Machine, i: &Insn) -> ExecResult {
    let caps = &m.nested.vmx.caps;
    if caps.proc2.may_be_one & u64::from(proc2::ENABLE_VPID) == 0
        || caps.ept_vpid_cap & cap::INVVPID == 0
    {
        return ud();
    }
    root_checks(m)?;
    let ty = invalidation_type(m, i)?;
    if !type_supported(m, invvpid_type::CAP_BIT_BASE, ty) {
        fail(m, VmInstructionError::INVALID_INVEPT_INVVPID_OPERAND);
        return Ok(());
    }
    let (lo, addr) = descriptor(m, i)?;
    let vpid = lo & 0xFFFF;
    let ok = lo >> 16 == 0
        && match ty {
            invvpid_type::INDIVIDUAL_ADDRESS => vpid != 0 && entry_context(m).canonical(addr),
            invvpid_type::ALL_CONTEXT => true,
            _ => vpid != 0,
        };
    if !ok {
        fail(m, VmInstructionError::INVALID_INVEPT_INVVPID_OPERAND);
        return Ok(());
    }
    tracing::debug!(target: "hvsim::nested", ty, vpid, addr, "INVVPID");
    succeed(m);
    Ok(())
}

/// The processor facts the VM-entry checks use (physical and linear address widths).
fn entry_context(m: &Machine) -> EntryContext {
    EntryContext {
        phys_addr_width: crate::cpu::access::MAXPHYADDR,
        linear_addr_width: if m.cpuid.has(crate::cpuid::Feature::La57) { 57 } else { 48 },
        host_ia32e: m.cpu.efer & efer::LMA != 0,
        current_vmcs: m.nested.vmx.current.as_ref().map(|c| c.pa),
    }
}
