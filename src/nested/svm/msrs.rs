//! The SVM MSRs a guest hypervisor programs: VM_CR and VM_HSAVE_PA (APM Vol. 2 §15.30
//! "SVM Related MSRs"), and the EFER.SVME rule that VM_CR.SVMDIS imposes (§15.4
//! "Enabling SVM").

use crate::cpu::fault::{gp, ExecResult};
use crate::cpu::msr::ABOVE_MAXPHYADDR;
use crate::cpuid::Feature;
use crate::machine::Machine;
use hvsim_svm_model::msr as svm_msr;

/// The VM_CR bits software may write (while LOCK is clear): DPD, R_INIT, DIS_A20M, LOCK,
/// SVMDIS.
const VM_CR_WRITABLE: u64 = svm_msr::VM_CR_DPD
    | svm_msr::VM_CR_R_INIT
    | svm_msr::VM_CR_DIS_A20M
    | svm_msr::VM_CR_LOCK
    | svm_msr::VM_CR_SVMDIS;

/// RDMSR of an SVM MSR: `None` if `n` is not one (or the model has no SVM).
pub fn read(m: &Machine, n: u32) -> Option<u64> {
    if !m.cpuid.has(Feature::Svm) {
        return None;
    }
    match n {
        svm_msr::VM_CR => Some(m.nested.svm.vm_cr),
        svm_msr::VM_HSAVE_PA => Some(m.nested.svm.hsave_pa),
        _ => None,
    }
}

/// WRMSR of an SVM MSR: `None` if `n` is not one.
pub fn write(m: &mut Machine, n: u32, v: u64) -> Option<ExecResult> {
    if !m.cpuid.has(Feature::Svm) {
        return None;
    }
    Some(match n {
        svm_msr::VM_CR => {
            if v & !VM_CR_WRITABLE != 0 {
                return Some(gp(0));
            }
            let old = m.nested.svm.vm_cr;
            // With LOCK set, SVMDIS and LOCK are read-only (until SVM_KEY unlocks them,
            // which is not implemented: the lock holds until reset).
            let keep = if old & svm_msr::VM_CR_LOCK != 0 {
                svm_msr::VM_CR_LOCK | svm_msr::VM_CR_SVMDIS
            } else {
                0
            };
            let new = (v & !keep) | (old & keep);
            // SVMDIS cannot be set while EFER.SVME is set.
            if new & svm_msr::VM_CR_SVMDIS != 0 && m.cpu.efer & svm_msr::EFER_SVME != 0 {
                return Some(gp(0));
            }
            m.nested.svm.vm_cr = new;
            Ok(())
        }
        svm_msr::VM_HSAVE_PA => {
            // "The VM_HSAVE_PA MSR ... 4-Kbyte aligned"; an address beyond the physical
            // address width is #GP(0).
            if v & 0xFFF != 0 || v & ABOVE_MAXPHYADDR != 0 {
                return Some(gp(0));
            }
            m.nested.svm.hsave_pa = v;
            Ok(())
        }
        _ => return None,
    })
}

/// Whether a WRMSR to EFER that sets SVME is refused: VM_CR.SVMDIS is set (§15.4:
/// "Attempting to set EFER.SVME while VM_CR.SVMDIS is set results in a #GP").
pub fn svme_disabled(m: &Machine, new_efer: u64) -> bool {
    new_efer & svm_msr::EFER_SVME != 0 && m.nested.svm.vm_cr & svm_msr::VM_CR_SVMDIS != 0
}
