//! VMCB clean bits as data: which VMCB fields each bit of VMCB_CLEAN covers
//! (APM Vol. 2 §15.15 "VMCB State Caching", Table 15-9 "VMCB Clean Field Bits").
//!
//! A set clean bit tells the processor that the hypervisor has not changed the covered
//! fields since the last #VMEXIT of this VMCB on this processor, so it may use a cached
//! copy. A processor is always free to reload a field; a hypervisor that changes a field
//! without clearing its clean bit gets undefined (possibly stale) behaviour.

use crate::vmcb::bits::{
    VmcbBits, CLEAN_ASID, CLEAN_AVIC, CLEAN_CET, CLEAN_CR2, CLEAN_CRX, CLEAN_DRX, CLEAN_DT,
    CLEAN_I, CLEAN_IOPM, CLEAN_LBR, CLEAN_NP, CLEAN_SEG, CLEAN_TPR,
};
use crate::vmcb::*;

/// APM reference for the table.
pub const REFERENCE: &str = "APM Vol. 2 §15.15.3 \"VMCB Clean Field\", Table 15-9";

/// One clean bit and the VMCB fields (by offset) it covers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CleanBit {
    /// The bit within VMCB_CLEAN.
    pub bit: VmcbBits,
    /// Short name as in the APM (`I`, `IOPM`, `ASID`, ...).
    pub name: &'static str,
    /// Offsets of the covered VMCB fields.
    pub fields: &'static [u16],
}

impl CleanBit {
    /// Whether this bit is set in a VMCB_CLEAN value.
    pub const fn is_set(&self, clean: u32) -> bool {
        self.bit.get(clean as u64) != 0
    }
}

/// Every clean bit, in bit order.
pub static CLEAN_BITS: &[CleanBit] = &[
    CleanBit {
        bit: CLEAN_I,
        name: "I",
        fields: &[
            INTERCEPT_CR_READ,
            INTERCEPT_CR_WRITE,
            INTERCEPT_DR_READ,
            INTERCEPT_DR_WRITE,
            INTERCEPT_EXCEPTIONS,
            INTERCEPT_MISC1,
            INTERCEPT_MISC2,
            INTERCEPT_MISC3,
            PAUSE_FILTER_THRESHOLD,
            PAUSE_FILTER_COUNT,
            TSC_OFFSET,
        ],
    },
    CleanBit { bit: CLEAN_IOPM, name: "IOPM", fields: &[IOPM_BASE_PA, MSRPM_BASE_PA] },
    CleanBit { bit: CLEAN_ASID, name: "ASID", fields: &[GUEST_ASID] },
    // V_TPR, V_IRQ, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING (all in V_INTR_CONTROL) and
    // V_INTR_VECTOR.
    CleanBit { bit: CLEAN_TPR, name: "TPR", fields: &[V_INTR_CONTROL, V_INTR_VECTOR] },
    CleanBit { bit: CLEAN_NP, name: "NP", fields: &[NP_CONTROL, N_CR3, G_PAT] },
    CleanBit { bit: CLEAN_CRX, name: "CRx", fields: &[CR0, CR3, CR4, EFER] },
    CleanBit { bit: CLEAN_DRX, name: "DRx", fields: &[DR6, DR7] },
    CleanBit { bit: CLEAN_DT, name: "DT", fields: &[GDTR_LIMIT, GDTR_BASE, IDTR_LIMIT, IDTR_BASE] },
    CleanBit {
        bit: CLEAN_SEG,
        name: "SEG",
        fields: &[
            ES_SELECTOR,
            ES_ATTRIB,
            ES_LIMIT,
            ES_BASE,
            CS_SELECTOR,
            CS_ATTRIB,
            CS_LIMIT,
            CS_BASE,
            SS_SELECTOR,
            SS_ATTRIB,
            SS_LIMIT,
            SS_BASE,
            DS_SELECTOR,
            DS_ATTRIB,
            DS_LIMIT,
            DS_BASE,
            CPL,
        ],
    },
    CleanBit { bit: CLEAN_CR2, name: "CR2", fields: &[CR2] },
    CleanBit {
        bit: CLEAN_LBR,
        name: "LBR",
        fields: &[DBGCTL, BR_FROM, BR_TO, LASTEXCPFROM, LASTEXCPTO],
    },
    CleanBit {
        bit: CLEAN_AVIC,
        name: "AVIC",
        fields: &[AVIC_APIC_BAR, AVIC_BACKING_PAGE, AVIC_LOGICAL_TABLE, AVIC_PHYSICAL_TABLE],
    },
    CleanBit { bit: CLEAN_CET, name: "CET", fields: &[S_CET, SSP, ISST_ADDR] },
];

/// The clean bit that covers the VMCB field at `offset`, if any (most fields, such as
/// RIP, RSP, RAX and EVENTINJ, are never cached and have none).
pub fn covering(offset: u16) -> Option<&'static CleanBit> {
    CLEAN_BITS.iter().find(|c| c.fields.contains(&offset))
}

/// The fields covered by the bits set in `clean` (the ones a processor may take from
/// its cache instead of the VMCB).
pub fn cached_fields(clean: u32) -> impl Iterator<Item = u16> {
    CLEAN_BITS.iter().filter(move |c| c.is_set(clean)).flat_map(|c| c.fields.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_in_order_and_fields_are_declared_once() {
        for (i, c) in CLEAN_BITS.iter().enumerate() {
            assert_eq!(c.bit.field, VMCB_CLEAN);
            assert_eq!(usize::from(c.bit.lsb), i, "{}", c.name);
            for &f in c.fields {
                let field = VmcbField::lookup(f).expect("declared field");
                assert_eq!(field.offset, f, "{} names the start of {}", c.name, field.name);
                for d in &CLEAN_BITS[i + 1..] {
                    assert!(!d.fields.contains(&f), "{} in {} and {}", field.name, c.name, d.name);
                }
            }
        }
    }

    #[test]
    fn covering_and_cached_fields() {
        assert_eq!(covering(CR3).map(|c| c.name), Some("CRx"));
        assert_eq!(covering(INTERCEPT_MISC1).map(|c| c.name), Some("I"));
        assert_eq!(covering(CPL).map(|c| c.name), Some("SEG"));
        assert!(covering(RIP).is_none());
        assert!(covering(EVENTINJ).is_none());
        assert!(covering(FS_BASE).is_none());
        assert_eq!(cached_fields(0).count(), 0);
        let f: Vec<u16> = cached_fields(1 << 5 | 1 << 9).collect();
        assert_eq!(f, vec![CR0, CR3, CR4, EFER, CR2]);
    }
}
