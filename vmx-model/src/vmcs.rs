//! The VMCS contents as hvsim stores them, VMREAD/VMWRITE semantics and the in-memory
//! format of a VMCS region.
//!
//! [`Vmcs`] holds one `u64` per row of [`VMCS_FIELDS`] (a dense array indexed by the
//! row's position, never a map), plus the launch state. The lead's VMREAD/VMWRITE call
//! [`Vmcs::read`] and [`Vmcs::write`], which apply the rules of SDM Vol. 3C "VMREAD" and
//! "VMWRITE" (chapter "VMX Instruction Reference"):
//!
//! - an encoding that names no field, or a field the processor does not support
//!   ([`VmxCapabilities::field_supported`]), fails with error 12;
//! - VMWRITE to a VM-exit information field fails with error 13 unless
//!   `IA32_VMX_MISC[29]` ([`VmxCapabilities::vmwrite_exit_info`]);
//! - the HIGH access (encoding bit 0 = 1) of a 64-bit field reads or writes bits 63:32;
//! - a written value is truncated to the field width; natural-width fields are 64 bits.
//!
//! Exit information is written by the world switch with [`Vmcs::set_exit_info`] and
//! [`Vmcs::set`], which bypass the read-only rule.
//!
//! The region format (SDM Vol. 3C "Format of the VMCS Region" fixes only the first 8
//! bytes; the rest is implementation-specific):
//!
//! | offset | size | content |
//! |--------|------|---------|
//! | 0 | 4 | bits 30:0 VMCS revision identifier, bit 31 shadow-VMCS indicator |
//! | 4 | 4 | VMX-abort indicator |
//! | 8 | 8 | [`REGION_MAGIC`] ("hvsimVMC") |
//! | 16 | 1 | launch state: 0 clear, 1 launched |
//! | 17 | 7 | zero |
//! | 24 | 8 * N | the field values in [`VMCS_FIELDS`] order, little-endian |
//!
//! VMCLEAR writes this with [`Vmcs::to_region`]; VMPTRLD checks the revision identifier
//! ([`region_revision_id`]) and reads the data with [`Vmcs::from_region`], which accepts
//! any bytes (a region that VMCLEAR never wrote gives some VMCS, never a panic).

use std::sync::OnceLock;

use crate::capabilities::VmxCapabilities;
use crate::vm_instruction_error::VmInstructionError;
use crate::vmcs_fields::{self as f, FieldRef, FieldWidth, VmcsFieldInfo, VMCS_FIELDS};

/// Bytes 8..16 of a VMCS region written by hvsim.
pub const REGION_MAGIC: [u8; 8] = *b"hvsimVMC";
/// Offset of the field data in a VMCS region.
pub const REGION_DATA_OFFSET: usize = 24;
/// Bytes of a VMCS region that hvsim uses (must fit in the region size of
/// IA32_VMX_BASIC; unit-tested).
pub const REGION_USED_BYTES: usize = REGION_DATA_OFFSET + 8 * VMCS_FIELD_COUNT;
/// Number of rows of [`VMCS_FIELDS`].
pub const VMCS_FIELD_COUNT: usize = VMCS_FIELDS.len();
/// Bit 31 of the first dword: the region is a shadow VMCS.
pub const SHADOW_VMCS_INDICATOR: u32 = 1 << 31;

/// Launch state of a VMCS (SDM Vol. 3C "VMCS Data Organization"... "launch state").
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, serde::Serialize, serde::Deserialize)]
pub enum LaunchState {
    /// After VMCLEAR: VMLAUNCH is allowed, VMRESUME fails with error 5.
    #[default]
    Clear,
    /// After a successful VMLAUNCH: VMRESUME is allowed, VMLAUNCH fails with error 4.
    Launched,
}

/// Why a VMCS region could not be read.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum RegionError {
    /// The buffer is shorter than [`REGION_USED_BYTES`].
    TooShort,
}

/// The VM-exit information the world switch records (SDM Vol. 3C "VM-Exit Information
/// Fields"). Fields that do not apply to an exit are written as 0.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct ExitInfo {
    /// Exit reason (basic reason in bits 15:0, flags above).
    pub reason: u32,
    /// Exit qualification.
    pub qualification: u64,
    /// Guest-linear address.
    pub guest_linear_address: u64,
    /// Guest-physical address (written only when EPT is supported).
    pub guest_physical_address: u64,
    /// VM-exit interruption information.
    pub interruption_info: u32,
    /// VM-exit interruption error code.
    pub interruption_error_code: u32,
    /// IDT-vectoring information.
    pub idt_vectoring_info: u32,
    /// IDT-vectoring error code.
    pub idt_vectoring_error_code: u32,
    /// VM-exit instruction length.
    pub instruction_length: u32,
    /// VM-exit instruction information.
    pub instruction_info: u32,
}

/// The contents of one VMCS.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Vmcs {
    values: Box<[u64]>,
    /// Launch state.
    pub launch_state: LaunchState,
}

impl Default for Vmcs {
    fn default() -> Self {
        Vmcs::new()
    }
}

/// Mask of the bits a field of this width holds.
const fn width_mask(width: FieldWidth) -> u64 {
    match width {
        FieldWidth::Bits16 => 0xFFFF,
        FieldWidth::Bits32 => 0xFFFF_FFFF,
        FieldWidth::Bits64 | FieldWidth::Natural => u64::MAX,
    }
}

/// Marks an encoding with no row in [`SlotTable`].
const NO_SLOT: u8 = u8::MAX;

/// Direct-mapped index from (width, type, index) to the row of [`VMCS_FIELDS`]: the
/// entry checks read about 150 fields per VM entry, so a lookup is one table load.
struct SlotTable([u8; 1 << 13]);

/// The key of a full-access encoding: bits 9:1 index, 11:10 type, 14:13 width; `None` if
/// bit 0, bit 12 or bits 31:15 are set.
const fn slot_key(encoding: u32) -> Option<usize> {
    if encoding & !0x6FFE != 0 {
        return None;
    }
    Some(
        (((encoding >> 1) & 0x1FF) | ((encoding >> 10) & 3) << 9 | ((encoding >> 13) & 3) << 11)
            as usize,
    )
}

fn slot_table() -> &'static SlotTable {
    static TABLE: OnceLock<SlotTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = SlotTable([NO_SLOT; 1 << 13]);
        for (i, info) in VMCS_FIELDS.iter().enumerate() {
            // VMCS_FIELD_COUNT < 255 (unit-tested), so the row fits in a u8.
            if let (Some(k), Ok(row)) = (slot_key(info.encoding), u8::try_from(i)) {
                if let Some(e) = t.0.get_mut(k) {
                    *e = row;
                }
            }
        }
        t
    })
}

/// The row of [`VMCS_FIELDS`] holding a full encoding.
fn slot(encoding: u32) -> Option<usize> {
    let row = *slot_table().0.get(slot_key(encoding)?)?;
    (row != NO_SLOT).then_some(usize::from(row))
}

impl Vmcs {
    /// A VMCS with every field 0 and launch state clear. The VMCS link pointer is 0 too,
    /// as on a freshly VMCLEARed region; software must set it to all ones.
    pub fn new() -> Vmcs {
        Vmcs {
            values: vec![0; VMCS_FIELD_COUNT].into_boxed_slice(),
            launch_state: LaunchState::Clear,
        }
    }

    /// The value of a field by full encoding, without any check; 0 for an encoding that
    /// is not a full-access field encoding. For the world switch and the entry checks.
    pub fn get(&self, encoding: u32) -> u64 {
        slot(encoding).and_then(|i| self.values.get(i).copied()).unwrap_or(0)
    }

    /// Sets a field by full encoding, truncated to its width, bypassing the read-only
    /// rule. Returns `false` (and changes nothing) for an encoding that is not a field.
    pub fn set(&mut self, encoding: u32, value: u64) -> bool {
        let Some(i) = slot(encoding) else { return false };
        let (Some(info), Some(v)) = (VMCS_FIELDS.get(i), self.values.get_mut(i)) else {
            return false;
        };
        *v = value & width_mask(info.width);
        true
    }

    /// Resolves a VMREAD/VMWRITE encoding to a field this processor supports.
    fn resolve(encoding: u64, caps: &VmxCapabilities) -> Result<FieldRef, VmInstructionError> {
        VmcsFieldInfo::lookup(encoding)
            .filter(|r| caps.field_supported(r.info))
            .ok_or(VmInstructionError::UNSUPPORTED_VMCS_COMPONENT)
    }

    /// VMREAD: the value of the field `encoding` names (bits 63:32 for a HIGH access),
    /// or error 12 (SDM Vol. 3C "VMREAD—Read Field from Virtual-Machine Control
    /// Structure").
    pub fn read(&self, encoding: u64, caps: &VmxCapabilities) -> Result<u64, VmInstructionError> {
        let r = Self::resolve(encoding, caps)?;
        let v = self.get(r.info.encoding);
        Ok(if r.is_high() { v >> 32 } else { v })
    }

    /// VMWRITE: stores `value` (truncated to the field width; a HIGH access replaces
    /// bits 63:32 with bits 31:0 of `value`), or error 12 / 13 (SDM Vol. 3C
    /// "VMWRITE—Write Field to Virtual-Machine Control Structure").
    pub fn write(
        &mut self,
        encoding: u64,
        value: u64,
        caps: &VmxCapabilities,
    ) -> Result<(), VmInstructionError> {
        let r = Self::resolve(encoding, caps)?;
        if r.info.is_read_only() && !caps.vmwrite_exit_info {
            return Err(VmInstructionError::VMWRITE_READ_ONLY_COMPONENT);
        }
        let full = r.info.encoding;
        let v = if r.is_high() { (self.get(full) & 0xFFFF_FFFF) | (value << 32) } else { value };
        self.set(full, v);
        Ok(())
    }

    /// Records the VM-exit information fields of a VM exit or VM-entry failure.
    pub fn set_exit_info(&mut self, info: &ExitInfo) {
        self.set(f::EXIT_REASON, u64::from(info.reason));
        self.set(f::EXIT_QUALIFICATION, info.qualification);
        self.set(f::GUEST_LINEAR_ADDRESS, info.guest_linear_address);
        self.set(f::GUEST_PHYSICAL_ADDRESS, info.guest_physical_address);
        self.set(f::VM_EXIT_INTERRUPTION_INFO, u64::from(info.interruption_info));
        self.set(f::VM_EXIT_INTERRUPTION_ERROR_CODE, u64::from(info.interruption_error_code));
        self.set(f::IDT_VECTORING_INFO, u64::from(info.idt_vectoring_info));
        self.set(f::IDT_VECTORING_ERROR_CODE, u64::from(info.idt_vectoring_error_code));
        self.set(f::VM_EXIT_INSTRUCTION_LENGTH, u64::from(info.instruction_length));
        self.set(f::VM_EXIT_INSTRUCTION_INFO, u64::from(info.instruction_info));
    }

    /// Records a VMfailValid error number (the VM-instruction error field).
    pub fn set_instruction_error(&mut self, error: VmInstructionError) {
        self.set(f::VM_INSTRUCTION_ERROR, u64::from(error.0));
    }

    /// Writes the region format described in the module docs into `region` (which must
    /// hold at least [`REGION_USED_BYTES`]; a shorter buffer gets only what fits).
    /// `shadow` sets the shadow-VMCS indicator; the abort indicator is written as 0.
    pub fn to_region(&self, revision_id: u32, shadow: bool, region: &mut [u8]) {
        let mut out = Vec::with_capacity(REGION_USED_BYTES);
        let first =
            (revision_id & !SHADOW_VMCS_INDICATOR) | if shadow { SHADOW_VMCS_INDICATOR } else { 0 };
        out.extend_from_slice(&first.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&REGION_MAGIC);
        out.push(matches!(self.launch_state, LaunchState::Launched) as u8);
        out.extend_from_slice(&[0; 7]);
        for v in self.values.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let n = out.len().min(region.len());
        region[..n].copy_from_slice(&out[..n]);
    }

    /// The region format as a new buffer of [`REGION_USED_BYTES`].
    pub fn to_region_bytes(&self, revision_id: u32, shadow: bool) -> Vec<u8> {
        let mut v = vec![0; REGION_USED_BYTES];
        self.to_region(revision_id, shadow, &mut v);
        v
    }

    /// Reads a VMCS from a region. Any content is accepted: values are truncated to
    /// their field widths and a launch-state byte other than 1 means clear. The revision
    /// identifier is not checked here (see [`region_revision_id`]).
    pub fn from_region(region: &[u8]) -> Result<Vmcs, RegionError> {
        let data =
            region.get(REGION_DATA_OFFSET..REGION_USED_BYTES).ok_or(RegionError::TooShort)?;
        let mut vmcs = Vmcs::new();
        vmcs.launch_state =
            if region.get(16) == Some(&1) { LaunchState::Launched } else { LaunchState::Clear };
        for ((chunk, info), v) in data.chunks_exact(8).zip(VMCS_FIELDS).zip(vmcs.values.iter_mut())
        {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *v = u64::from_le_bytes(b) & width_mask(info.width);
        }
        Ok(vmcs)
    }

    /// Every field with its value, in table order (for traces and `explain`).
    pub fn fields(&self) -> impl Iterator<Item = (&'static VmcsFieldInfo, u64)> + '_ {
        VMCS_FIELDS.iter().zip(self.values.iter().copied())
    }
}

/// The first dword of a VMCS region: (revision identifier bits 30:0, shadow-VMCS
/// indicator bit 31), or `None` if the buffer is shorter than 4 bytes. VMPTRLD fails
/// with error 11 if the identifier differs from IA32_VMX_BASIC bits 30:0 or the indicator is
/// set without VMCS shadowing support.
pub fn region_revision_id(region: &[u8]) -> Option<(u32, bool)> {
    let b: [u8; 4] = region.get(..4)?.try_into().ok()?;
    let v = u32::from_le_bytes(b);
    Some((v & !SHADOW_VMCS_INDICATOR, v & SHADOW_VMCS_INDICATOR != 0))
}

/// The VMX-abort indicator of a VMCS region (offset 4), written by a VMX abort.
pub fn region_abort_indicator(region: &[u8]) -> Option<u32> {
    let b: [u8; 4] = region.get(4..8)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::HVSIM_VMCS_REGION_SIZE;

    fn caps() -> VmxCapabilities {
        VmxCapabilities::hvsim_default()
    }

    /// SDM Vol. 3C "VMREAD"/"VMWRITE": unknown encodings and unsupported fields give
    /// error 12.
    #[test]
    fn unsupported_components_fail_with_12() {
        let c = caps();
        let mut v = Vmcs::new();
        let e12 = VmInstructionError::UNSUPPORTED_VMCS_COMPONENT;
        for enc in [0x1u64, 0x0801, 0x1000 | 0x0800, 0x2_0000_0000, 0x4000 | 0x8000, 0x7FFE] {
            assert_eq!(v.read(enc, &c), Err(e12), "{enc:#x}");
            assert_eq!(v.write(enc, 1, &c), Err(e12), "{enc:#x}");
        }
        // Fields whose control hvsim does not support: posted interrupts, PML, FRED.
        for enc in [f::POSTED_INTR_NOTIFICATION_VECTOR, f::PML_ADDRESS, f::HOST_IA32_FRED_CONFIG] {
            assert_eq!(v.read(u64::from(enc), &c), Err(e12), "{enc:#x}");
        }
        // Supported fields work.
        assert_eq!(v.write(u64::from(f::VIRTUAL_PROCESSOR_ID), 5, &c), Ok(()));
        assert_eq!(v.read(u64::from(f::VIRTUAL_PROCESSOR_ID), &c), Ok(5));
    }

    /// SDM Vol. 3C "VMWRITE": read-only fields give error 13 without IA32_VMX_MISC[29].
    #[test]
    fn read_only_fields_need_misc_bit_29() {
        let mut c = caps();
        let mut v = Vmcs::new();
        c.vmwrite_exit_info = false;
        assert_eq!(
            v.write(u64::from(f::EXIT_QUALIFICATION), 7, &c),
            Err(VmInstructionError::VMWRITE_READ_ONLY_COMPONENT)
        );
        c.vmwrite_exit_info = true;
        assert_eq!(v.write(u64::from(f::EXIT_QUALIFICATION), 7, &c), Ok(()));
        assert_eq!(v.read(u64::from(f::EXIT_QUALIFICATION), &c), Ok(7));
    }

    /// SDM Vol. 3C "VMREAD"/"VMWRITE": HIGH accesses and truncation to the field width.
    #[test]
    fn high_accesses_and_truncation() {
        let c = caps();
        let mut v = Vmcs::new();
        let link = u64::from(f::VMCS_LINK_POINTER);
        v.write(link, 0x1111_2222_3333_4444, &c).unwrap();
        assert_eq!(v.read(link | 1, &c), Ok(0x1111_2222));
        v.write(link | 1, 0xAAAA_BBBB_CCCC_DDDD, &c).unwrap();
        assert_eq!(v.read(link, &c), Ok(0xCCCC_DDDD_3333_4444));
        v.write(u64::from(f::GUEST_CS_SELECTOR), 0x12_3456, &c).unwrap();
        assert_eq!(v.read(u64::from(f::GUEST_CS_SELECTOR), &c), Ok(0x3456));
        v.write(u64::from(f::GUEST_CS_LIMIT), u64::MAX, &c).unwrap();
        assert_eq!(v.read(u64::from(f::GUEST_CS_LIMIT), &c), Ok(0xFFFF_FFFF));
        v.write(u64::from(f::GUEST_RIP), u64::MAX, &c).unwrap();
        assert_eq!(v.read(u64::from(f::GUEST_RIP), &c), Ok(u64::MAX));
        // HIGH of a non-64-bit field is not a component.
        assert!(v.read(u64::from(f::GUEST_RIP) | 1, &c).is_err());
    }

    /// SDM Vol. 3C "VMREAD"/"VMWRITE": every field hvsim supports keeps what VMWRITE
    /// stores (truncated to its width), and every other field fails with error 12.
    #[test]
    fn every_supported_field_round_trips_and_others_fail() {
        let c = caps();
        let mut v = Vmcs::new();
        for info in VMCS_FIELDS {
            let enc = u64::from(info.encoding);
            let value = 0x0123_4567_89AB_CDEFu64;
            if c.field_supported(info) {
                assert_eq!(v.write(enc, value, &c), Ok(()), "{}", info.name);
                assert_eq!(v.read(enc, &c), Ok(value & width_mask(info.width)), "{}", info.name);
            } else {
                let e = Err(VmInstructionError::UNSUPPORTED_VMCS_COMPONENT);
                assert_eq!(v.write(enc, value, &c), e, "{}", info.name);
                assert_eq!(v.read(enc, &c), Err(VmInstructionError::UNSUPPORTED_VMCS_COMPONENT));
            }
        }
    }

    /// The direct-mapped slot table agrees with a search of the field table for every
    /// 16-bit encoding.
    #[test]
    fn slot_table_matches_the_field_table() {
        assert!(VMCS_FIELD_COUNT < usize::from(NO_SLOT));
        for enc in 0..=0xFFFFu32 {
            let expected = VMCS_FIELDS.iter().position(|f| f.encoding == enc);
            assert_eq!(slot(enc), expected, "{enc:#x}");
        }
        assert_eq!(slot(0x1_6800), None);
    }

    #[test]
    fn exit_info_bypasses_read_only() {
        let mut v = Vmcs::new();
        v.set_exit_info(&ExitInfo {
            reason: 0x8000_0021,
            qualification: 4,
            instruction_length: 3,
            ..Default::default()
        });
        v.set_instruction_error(VmInstructionError::ENTRY_INVALID_CONTROL_FIELD);
        assert_eq!(v.get(f::EXIT_REASON), 0x8000_0021);
        assert_eq!(v.get(f::EXIT_QUALIFICATION), 4);
        assert_eq!(v.get(f::VM_EXIT_INSTRUCTION_LENGTH), 3);
        assert_eq!(v.get(f::VM_INSTRUCTION_ERROR), 7);
        assert!(!v.set(0x7FFE, 1));
    }

    /// SDM Vol. 3C "Format of the VMCS Region": revision identifier at offset 0, abort
    /// indicator at offset 4; hvsim's data fits the region size it reports.
    #[test]
    fn region_round_trip() {
        assert!(REGION_USED_BYTES <= HVSIM_VMCS_REGION_SIZE as usize);
        let mut v = Vmcs::new();
        for (i, info) in VMCS_FIELDS.iter().enumerate() {
            v.set(info.encoding, (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        v.launch_state = LaunchState::Launched;
        let bytes = v.to_region_bytes(0x4856, false);
        assert_eq!(region_revision_id(&bytes), Some((0x4856, false)));
        assert_eq!(region_abort_indicator(&bytes), Some(0));
        assert_eq!(&bytes[8..16], &REGION_MAGIC);
        assert_eq!(Vmcs::from_region(&bytes), Ok(v.clone()));
        let shadow = v.to_region_bytes(0x4856, true);
        assert_eq!(region_revision_id(&shadow), Some((0x4856, true)));
        assert_eq!(Vmcs::from_region(&bytes[..100]), Err(RegionError::TooShort));
        // Garbage is accepted and truncated.
        let junk = vec![0xFF; REGION_USED_BYTES];
        let g = Vmcs::from_region(&junk).unwrap();
        assert_eq!(g.get(f::GUEST_CS_SELECTOR), 0xFFFF);
        assert_eq!(g.launch_state, LaunchState::Clear);
    }
}
