//! Moving architectural state between the vCPU and a VMCB state save area (APM Vol. 2
//! Appendix B Table B-2): the world-switch set of VMRUN and #VMEXIT (§15.5.1, §15.6) and
//! the VMLOAD/VMSAVE set (§15.5.2 "VMSAVE and VMLOAD Instructions").

use crate::cpu::msr;
use crate::cpu::regs::{DescriptorTable, SegReg, Segment};
use crate::machine::Machine;
use hvsim_mmu::Gpa;
use hvsim_svm_model::vmcb;
use hvsim_svm_model::{VmcbImage, VmcbRead};

/// Offsets within a segment's VMCB slot: selector, attributes, limit, base.
const SEL: u16 = 0;
const ATTRIB: u16 = 2;
const LIMIT: u16 = 4;
const BASE: u16 = 8;

/// The VMCB packs descriptor bits 55:52 (AVL, L, D/B, G) into attribute bits 11:8; the
/// vCPU keeps them in bits 15:12 (APM Table B-2 note on segment attributes).
pub fn attr_to_vmcb(a: u16) -> u16 {
    (a & 0xFF) | ((a >> 4) & 0xF00)
}

/// The inverse of [`attr_to_vmcb`].
pub fn attr_from_vmcb(a: u16) -> u16 {
    (a & 0xFF) | ((a & 0xF00) << 4)
}

/// Writes a segment register into its VMCB slot at `off`.
pub fn put_seg(img: &mut VmcbImage, off: u16, s: &Segment) {
    img.write(off + SEL, 2, u64::from(s.selector));
    img.write(off + ATTRIB, 2, u64::from(attr_to_vmcb(s.attr)));
    img.write(off + LIMIT, 4, u64::from(s.limit));
    img.write(off + BASE, 8, s.base);
}

/// Reads a segment register from its VMCB slot at `off`.
pub fn get_seg(img: &VmcbImage, off: u16) -> Segment {
    Segment {
        selector: img.read(off + SEL, 2) as u16,
        attr: attr_from_vmcb(img.read(off + ATTRIB, 2) as u16),
        limit: img.read(off + LIMIT, 4) as u32,
        base: img.u64_at(off + BASE),
    }
}

fn put_dt(img: &mut VmcbImage, limit_off: u16, base_off: u16, t: &DescriptorTable) {
    img.write(limit_off, 4, u64::from(t.limit));
    img.set_u64(base_off, t.base);
}

fn get_dt(img: &VmcbImage, limit_off: u16, base_off: u16) -> DescriptorTable {
    DescriptorTable { limit: img.read(limit_off, 2) as u16, base: img.u64_at(base_off) }
}

/// The four segment registers VMRUN and #VMEXIT switch: (VMCB slot, register).
const WORLD_SEGS: [(u16, SegReg); 4] = [
    (vmcb::ES_SELECTOR, SegReg::Es),
    (vmcb::CS_SELECTOR, SegReg::Cs),
    (vmcb::SS_SELECTOR, SegReg::Ss),
    (vmcb::DS_SELECTOR, SegReg::Ds),
];

/// Saves the world-switch state (ES, CS, SS, DS, GDTR, IDTR, EFER, CR0, CR2, CR3, CR4,
/// DR6, DR7, RFLAGS, RIP, RSP, RAX, CPL) into `img`, with `rip` as RIP.
pub fn save_world(m: &Machine, img: &mut VmcbImage, rip: u64) {
    let c = &m.cpu;
    for (off, s) in WORLD_SEGS {
        put_seg(img, off, c.seg(s));
    }
    put_dt(img, vmcb::GDTR_LIMIT, vmcb::GDTR_BASE, &c.gdtr);
    put_dt(img, vmcb::IDTR_LIMIT, vmcb::IDTR_BASE, &c.idtr);
    img.set_u64(vmcb::EFER, c.efer);
    img.set_u64(vmcb::CR0, c.cr0);
    img.set_u64(vmcb::CR2, c.cr2);
    img.set_u64(vmcb::CR3, c.cr3);
    img.set_u64(vmcb::CR4, c.cr4);
    img.set_u64(vmcb::DR6, c.dr[6]);
    img.set_u64(vmcb::DR7, c.dr[7]);
    img.set_u64(vmcb::RFLAGS, c.flags.get());
    img.set_u64(vmcb::RIP, rip);
    img.set_u64(vmcb::RSP, c.gpr[4]);
    img.set_u64(vmcb::RAX, c.gpr[0]);
    img.write(vmcb::CPL, 1, u64::from(c.cpl));
}

/// Loads the world-switch state from `img` (the inverse of [`save_world`]); CR2, DR6 and
/// DR7 only if `debug_and_cr2` (the host reload of #VMEXIT leaves CR2 and DR6 and resets
/// DR7). Rederives the mode; the PAE PDPTEs are reloaded when legacy PAE paging is on.
/// The translations switch to `context` (0 for the host, the ASID for a guest; see
/// [`switch_translations`]).
pub fn load_world(m: &mut Machine, img: &VmcbImage, debug_and_cr2: bool, context: u16) {
    use crate::cpu::regs::{cr0, cr4, efer};
    let c = &mut m.cpu;
    for (off, s) in WORLD_SEGS {
        c.seg[s as usize] = get_seg(img, off);
    }
    c.gdtr = get_dt(img, vmcb::GDTR_LIMIT, vmcb::GDTR_BASE);
    c.idtr = get_dt(img, vmcb::IDTR_LIMIT, vmcb::IDTR_BASE);
    c.efer = img.u64_at(vmcb::EFER);
    // "The processor sets EFER.LMA from LME, CR0.PG and CR4.PAE" is what MOV CR0 does;
    // VMRUN takes the saved EFER, in which LMA = LME & PG for a legal state.
    c.cr0 = img.u64_at(vmcb::CR0) | cr0::ET;
    c.cr3 = img.u64_at(vmcb::CR3);
    c.cr4 = img.u64_at(vmcb::CR4);
    if c.efer & efer::LME != 0 && c.cr0 & cr0::PG != 0 {
        c.efer |= efer::LMA;
    } else {
        c.efer &= !efer::LMA;
    }
    if debug_and_cr2 {
        c.cr2 = img.u64_at(vmcb::CR2);
        c.dr[6] = img.u64_at(vmcb::DR6);
        c.dr[7] = img.u64_at(vmcb::DR7);
    }
    c.flags.set(img.u64_at(vmcb::RFLAGS));
    c.rip = img.u64_at(vmcb::RIP);
    c.gpr[4] = img.u64_at(vmcb::RSP);
    c.gpr[0] = img.u64_at(vmcb::RAX);
    let legacy_pae = c.cr0 & cr0::PG != 0 && c.cr4 & cr4::PAE != 0 && c.efer & efer::LMA == 0;
    if legacy_pae {
        let cr3 = c.cr3;
        // A PDPTE with reserved bits makes later walks fault rather than failing VMRUN
        // (the APM's consistency checks do not cover PDPTEs).
        m.cpu.pdpte =
            hvsim_mmu::paging::load_pdptes(&mut m.mem, cr3, crate::cpu::access::MAXPHYADDR)
                .unwrap_or([0; 4]);
    }
    switch_translations(m, context);
    // APM Table B-2: "CPL ... the processor uses this value", not the CS selector's RPL.
    if m.cpu.mode != crate::cpu::CpuMode::Real && m.cpu.mode != crate::cpu::CpuMode::V86 {
        m.cpu.cpl = (img.read(vmcb::CPL, 1) & 3) as u8;
    }
}

/// The translation side of a world switch (APM Vol. 2 §15.16 "TLB Control": the TLB is
/// tagged with the ASID, 0 for the host, so VMRUN and #VMEXIT need not flush it).
///
/// - The shadow page cache is ASID-tagged: its context becomes `context`, and the
///   shadow pages of the other world stay cached, untouched (only TLB_CONTROL and
///   INVLPGA flush them).
/// - The front-end TLB is not tagged: it is emptied, which is more than the APM asks
///   and always allowed. It refills from the shadow cache (or, for a guest with nested
///   paging, from the two-dimensional walk, which is not cached elsewhere: L1 cannot
///   write its nested tables while the guest runs, so every VMRUN starts from what they
///   say then, as a processor that flushes the guest's ASID on each VMRUN would).
pub fn switch_translations(m: &mut Machine, context: u16) {
    m.cpu.tlb.flush();
    m.mmu_set_context(context);
    m.cpu.update_mode();
    m.cpu.end_block = true;
}

/// The MSRs of the VMLOAD/VMSAVE set: (VMCB offset, MSR index).
const LOAD_SAVE_MSRS: [(u16, u32); 8] = [
    (vmcb::KERNEL_GS_BASE, msr::IA32_KERNEL_GS_BASE),
    (vmcb::STAR, msr::IA32_STAR),
    (vmcb::LSTAR, msr::IA32_LSTAR),
    (vmcb::CSTAR, msr::IA32_CSTAR),
    (vmcb::SFMASK, msr::IA32_FMASK),
    (vmcb::SYSENTER_CS, msr::IA32_SYSENTER_CS),
    (vmcb::SYSENTER_ESP, msr::IA32_SYSENTER_ESP),
    (vmcb::SYSENTER_EIP, msr::IA32_SYSENTER_EIP),
];

/// VMSAVE: FS, GS, TR, LDTR (with their hidden state), KernelGsBase, STAR, LSTAR, CSTAR,
/// SFMASK and the SYSENTER MSRs into the VMCB at `pa`.
pub fn vmsave(m: &mut Machine, pa: u64) {
    let mut img = read_vmcb(m, pa);
    put_seg(&mut img, vmcb::FS_SELECTOR, m.cpu.seg(SegReg::Fs));
    put_seg(&mut img, vmcb::GS_SELECTOR, m.cpu.seg(SegReg::Gs));
    put_seg(&mut img, vmcb::TR_SELECTOR, &m.cpu.tr);
    put_seg(&mut img, vmcb::LDTR_SELECTOR, &m.cpu.ldtr);
    for (off, n) in LOAD_SAVE_MSRS {
        img.set_u64(off, m.cpu.msrs.get(&n).copied().unwrap_or(0));
    }
    write_vmcb(m, pa, &img);
}

/// VMLOAD: the inverse of [`vmsave`].
pub fn vmload(m: &mut Machine, pa: u64) {
    let img = read_vmcb(m, pa);
    m.cpu.seg[SegReg::Fs as usize] = get_seg(&img, vmcb::FS_SELECTOR);
    m.cpu.seg[SegReg::Gs as usize] = get_seg(&img, vmcb::GS_SELECTOR);
    m.cpu.tr = get_seg(&img, vmcb::TR_SELECTOR);
    m.cpu.ldtr = get_seg(&img, vmcb::LDTR_SELECTOR);
    for (off, n) in LOAD_SAVE_MSRS {
        m.cpu.msrs.insert(n, img.u64_at(off));
    }
}

/// Reads the 4-KiB VMCB page at `pa`.
pub fn read_vmcb(m: &mut Machine, pa: u64) -> VmcbImage {
    let mut buf = vec![0u8; vmcb::VMCB_SIZE];
    m.phys_read(Gpa(pa), &mut buf);
    VmcbImage::from_bytes(&buf)
}

/// Writes a VMCB page back to `pa`.
pub fn write_vmcb(m: &mut Machine, pa: u64, img: &VmcbImage) {
    m.phys_write(Gpa(pa), img.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::regs::attr;

    #[test]
    fn attribute_packing_round_trips() {
        let code64 = attr::P | attr::S | attr::CODE | attr::RW | attr::ACCESSED | attr::G | attr::L;
        assert_eq!(attr_to_vmcb(code64), 0xA9B);
        assert_eq!(attr_from_vmcb(attr_to_vmcb(code64)), code64);
    }
}
