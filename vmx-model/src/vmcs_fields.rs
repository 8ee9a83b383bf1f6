//! VMCS component encodings (SDM Vol. 3D Appendix B "Field Encoding in VMCS"),
//! declared once as data.
//!
//! A VMCS field encoding is a 32-bit value (SDM Vol. 3C "VMREAD, VMWRITE, and
//! Encodings of VMCS Fields"):
//!
//! | bits  | meaning                                                        |
//! |-------|----------------------------------------------------------------|
//! | 0     | access type: 0 = full, 1 = high (upper 32 bits of a 64-bit field) |
//! | 9:1   | index                                                          |
//! | 11:10 | type: 0 control, 1 VM-exit information (read-only), 2 guest state, 3 host state |
//! | 12    | reserved (0)                                                   |
//! | 14:13 | width: 0 16-bit, 1 64-bit, 2 32-bit, 3 natural-width           |
//! | 31:15 | reserved (0)                                                   |
//!
//! Every field is declared once in the `vmcs_fields!` table below. The macro emits a
//! `pub const NAME: u32` encoding per row and [`VMCS_FIELDS`]; [`VmcsFieldInfo::lookup`]
//! resolves any encoding a guest may pass to VMREAD/VMWRITE, including the HIGH access of
//! a 64-bit field, which is not listed separately.

use crate::controls::{entry, exit, exit2, pin, proc, proc2, proc3, vmfunc};
use crate::controls::{ControlField, ControlRef};

const B11: &str = "SDM Vol. 3D Appendix B.1.1 \"16-Bit Control Fields\"";
const B12: &str = "SDM Vol. 3D Appendix B.1.2 \"16-Bit Guest-State Fields\"";
const B13: &str = "SDM Vol. 3D Appendix B.1.3 \"16-Bit Host-State Fields\"";
const B21: &str = "SDM Vol. 3D Appendix B.2.1 \"64-Bit Control Fields\"";
const B22: &str = "SDM Vol. 3D Appendix B.2.2 \"64-Bit Read-Only Data Field\"";
const B23: &str = "SDM Vol. 3D Appendix B.2.3 \"64-Bit Guest-State Fields\"";
const B24: &str = "SDM Vol. 3D Appendix B.2.4 \"64-Bit Host-State Fields\"";
const B31: &str = "SDM Vol. 3D Appendix B.3.1 \"32-Bit Control Fields\"";
const B32: &str = "SDM Vol. 3D Appendix B.3.2 \"32-Bit Read-Only Data Fields\"";
const B33: &str = "SDM Vol. 3D Appendix B.3.3 \"32-Bit Guest-State Fields\"";
const B34: &str = "SDM Vol. 3D Appendix B.3.4 \"32-Bit Host-State Field\"";
const B41: &str = "SDM Vol. 3D Appendix B.4.1 \"Natural-Width Control Fields\"";
const B42: &str = "SDM Vol. 3D Appendix B.4.2 \"Natural-Width Read-Only Data Fields\"";
const B43: &str = "SDM Vol. 3D Appendix B.4.3 \"Natural-Width Guest-State Fields\"";
const B44: &str = "SDM Vol. 3D Appendix B.4.4 \"Natural-Width Host-State Fields\"";

/// Capability text for the FRED fields.
const FRED: &str = "FRED (CPUID.(EAX=07H,ECX=1):EAX[17])";

/// Width of a VMCS field, as encoded in bits 14:13 of its encoding.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum FieldWidth {
    /// 16-bit field (encoding bits 14:13 = 0).
    Bits16 = 0,
    /// 64-bit field (encoding bits 14:13 = 1); has FULL and HIGH accesses.
    Bits64 = 1,
    /// 32-bit field (encoding bits 14:13 = 2).
    Bits32 = 2,
    /// Natural-width field (encoding bits 14:13 = 3): 64 bits on processors that support
    /// Intel 64, 32 bits otherwise.
    Natural = 3,
}

impl FieldWidth {
    /// The width encoded in bits 14:13 of `encoding`.
    pub const fn from_encoding(encoding: u32) -> FieldWidth {
        match (encoding >> 13) & 3 {
            0 => FieldWidth::Bits16,
            1 => FieldWidth::Bits64,
            2 => FieldWidth::Bits32,
            _ => FieldWidth::Natural,
        }
    }

    /// Size in bits on a processor that supports Intel 64.
    pub const fn bits(self) -> u32 {
        match self {
            FieldWidth::Bits16 => 16,
            FieldWidth::Bits32 => 32,
            FieldWidth::Bits64 | FieldWidth::Natural => 64,
        }
    }
}

/// Type of a VMCS field, as encoded in bits 11:10 of its encoding.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum FieldType {
    /// Control field (bits 11:10 = 0).
    Control = 0,
    /// VM-exit information, read-only (bits 11:10 = 1).
    ReadOnly = 1,
    /// Guest-state field (bits 11:10 = 2).
    Guest = 2,
    /// Host-state field (bits 11:10 = 3).
    Host = 3,
}

impl FieldType {
    /// The type encoded in bits 11:10 of `encoding`.
    pub const fn from_encoding(encoding: u32) -> FieldType {
        match (encoding >> 10) & 3 {
            0 => FieldType::Control,
            1 => FieldType::ReadOnly,
            2 => FieldType::Guest,
            _ => FieldType::Host,
        }
    }
}

/// Access type of a VMREAD/VMWRITE encoding (bit 0).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum FieldAccess {
    /// The whole field (bit 0 = 0).
    Full,
    /// The upper 32 bits of a 64-bit field (bit 0 = 1).
    High,
}

/// The index of a field within its width and type (encoding bits 9:1).
pub const fn encoding_index(encoding: u32) -> u16 {
    ((encoding >> 1) & 0x1FF) as u16
}

/// Builds a field encoding from its parts (the inverse of [`FieldWidth::from_encoding`],
/// [`FieldType::from_encoding`] and [`encoding_index`]).
pub const fn make_encoding(
    width: FieldWidth,
    ty: FieldType,
    index: u16,
    access: FieldAccess,
) -> u32 {
    ((width as u32) << 13)
        | ((ty as u32) << 10)
        | (((index & 0x1FF) as u32) << 1)
        | matches!(access, FieldAccess::High) as u32
}

/// What a field's existence depends on.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum FieldGate {
    /// The field exists on every processor that supports VMX.
    Always,
    /// The field exists only on processors that support the 1-setting of at least one
    /// of these controls.
    AnyOf(&'static [ControlRef]),
    /// The field exists only on processors with this capability, which is not a VMX
    /// control (described in words).
    Capability(&'static str),
}

impl FieldGate {
    /// Whether the field exists, given the allowed-1 settings of each control field
    /// (bits 63:32 of the capability MSRs, or the whole MSR for 64-bit controls).
    /// `None` for [`FieldGate::Capability`] gates: the caller decides those.
    pub fn supported(&self, allowed1: impl Fn(ControlField) -> u64) -> Option<bool> {
        match self {
            FieldGate::Always => Some(true),
            FieldGate::AnyOf(refs) => Some(refs.iter().any(|r| allowed1(r.field) & r.mask != 0)),
            FieldGate::Capability(_) => None,
        }
    }
}

/// One VMCS field of SDM Appendix B.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct VmcsFieldInfo {
    /// Constant name, e.g. `"GUEST_CR0"`.
    pub name: &'static str,
    /// Encoding of the full access (bit 0 = 0).
    pub encoding: u32,
    /// Width; agrees with encoding bits 14:13.
    pub width: FieldWidth,
    /// Type; agrees with encoding bits 11:10.
    pub field_type: FieldType,
    /// What the field's existence depends on.
    pub gate: FieldGate,
    /// One-line meaning.
    pub meaning: &'static str,
    /// The Appendix B section that lists the field.
    pub reference: &'static str,
}

/// The result of resolving a VMREAD/VMWRITE encoding.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct FieldRef {
    /// The field.
    pub info: &'static VmcsFieldInfo,
    /// Full access, or the HIGH half of a 64-bit field.
    pub access: FieldAccess,
}

impl FieldRef {
    /// Whether this is the HIGH access of a 64-bit field.
    pub const fn is_high(&self) -> bool {
        matches!(self.access, FieldAccess::High)
    }

    /// The encoding that was resolved (the full encoding, plus 1 for a HIGH access).
    pub const fn encoding(&self) -> u32 {
        self.info.encoding | self.is_high() as u32
    }
}

impl VmcsFieldInfo {
    /// Resolves an encoding as given to VMREAD/VMWRITE (a 64-bit register value).
    ///
    /// Returns `None` for anything that is not a field of Appendix B: bits 63:15 or
    /// bit 12 set, unknown indices, and the HIGH access (bit 0 = 1) of a field that is not
    /// 64 bits wide. Whether the field exists on a given processor is a separate question
    /// ([`VmcsFieldInfo::gate`]).
    pub fn lookup(encoding: u64) -> Option<FieldRef> {
        let encoding = u32::try_from(encoding).ok()?;
        let (full, access) = if encoding & 1 == 1 {
            (encoding & !1, FieldAccess::High)
        } else {
            (encoding, FieldAccess::Full)
        };
        let i = VMCS_FIELDS.binary_search_by_key(&full, |f| f.encoding).ok()?;
        let info = VMCS_FIELDS.get(i)?;
        if access == FieldAccess::High && info.width != FieldWidth::Bits64 {
            return None;
        }
        Some(FieldRef { info, access })
    }

    /// The field with this constant name (ASCII case-insensitive). A `_HIGH` suffix
    /// selects the HIGH access of a 64-bit field.
    pub fn by_name(name: &str) -> Option<FieldRef> {
        let find = |n: &str| VMCS_FIELDS.iter().find(|f| f.name.eq_ignore_ascii_case(n));
        if let Some(info) = find(name) {
            return Some(FieldRef { info, access: FieldAccess::Full });
        }
        let cut = name.len().checked_sub(5)?;
        let (base, suffix) = (name.get(..cut)?, name.get(cut..)?);
        if !suffix.eq_ignore_ascii_case("_HIGH") {
            return None;
        }
        find(base)
            .filter(|info| info.width == FieldWidth::Bits64)
            .map(|info| FieldRef { info, access: FieldAccess::High })
    }

    /// Whether the field is VM-exit information (read-only unless `IA32_VMX_MISC[29]`
    /// allows VMWRITE to it).
    pub const fn is_read_only(&self) -> bool {
        matches!(self.field_type, FieldType::ReadOnly)
    }
}

/// Builds a [`FieldGate`] from the compact notation of the table below:
/// `[-]` always present, `[cap "..."]` a non-control capability, or a list of
/// `module::CONTROL` masks of which at least one must be settable to 1.
macro_rules! gate {
    (-) => {
        FieldGate::Always
    };
    (cap $what:expr) => {
        FieldGate::Capability($what)
    };
    ($($module:ident :: $control:ident),+) => {
        FieldGate::AnyOf(&[$(ControlRef { field: $module::FIELD, mask: $module::$control as u64 }),+])
    };
}

/// Declares every VMCS field once: a `pub const NAME: u32` encoding per row and
/// [`VMCS_FIELDS`]. Rows are in Appendix B order, which is ascending encoding order
/// (unit-tested; lookup binary-searches).
macro_rules! vmcs_fields {
    ($(
        $(#[$attr:meta])*
        $name:ident = $encoding:literal, $width:ident, $ty:ident, [$($gate:tt)*], $meaning:literal, $reference:expr;
    )*) => {
        $(
            $(#[$attr])*
            #[doc = concat!("VMCS encoding of `", stringify!($name), "`: ", $meaning, ".")]
            pub const $name: u32 = $encoding;
        )*

        /// Every field of SDM Appendix B, in ascending encoding order. 64-bit fields are
        /// listed once (full encoding); their HIGH access is resolved by
        /// [`VmcsFieldInfo::lookup`].
        pub static VMCS_FIELDS: &[VmcsFieldInfo] = &[
            $(
                VmcsFieldInfo {
                    name: stringify!($name),
                    encoding: $encoding,
                    width: FieldWidth::$width,
                    field_type: FieldType::$ty,
                    gate: gate!($($gate)*),
                    meaning: $meaning,
                    reference: $reference,
                },
            )*
        ];
    };
}

vmcs_fields! {
    // ---- B.1.1 16-bit control fields ---------------------------------------------------
    VIRTUAL_PROCESSOR_ID = 0x0000, Bits16, Control, [proc2::ENABLE_VPID], "Virtual-processor identifier (VPID) that tags cached linear translations", B11;
    POSTED_INTR_NOTIFICATION_VECTOR = 0x0002, Bits16, Control, [pin::PROCESS_POSTED_INTERRUPTS], "Posted-interrupt notification vector", B11;
    EPTP_INDEX = 0x0004, Bits16, Control, [proc2::EPT_VIOLATION_VE], "EPTP index: the current entry of the EPTP list, reported in #VE information", B11;
    HLAT_PREFIX_SIZE = 0x0006, Bits16, Control, [proc3::ENABLE_HLAT], "HLAT prefix size: selects the linear addresses translated by HLAT", B11;
    LAST_PID_POINTER_INDEX = 0x0008, Bits16, Control, [proc3::IPI_VIRTUALIZATION], "Last PID-pointer index: highest valid index of the PID-pointer table", B11;

    // ---- B.1.2 16-bit guest-state fields ------------------------------------------------
    GUEST_ES_SELECTOR = 0x0800, Bits16, Guest, [-], "Guest ES selector", B12;
    GUEST_CS_SELECTOR = 0x0802, Bits16, Guest, [-], "Guest CS selector", B12;
    GUEST_SS_SELECTOR = 0x0804, Bits16, Guest, [-], "Guest SS selector", B12;
    GUEST_DS_SELECTOR = 0x0806, Bits16, Guest, [-], "Guest DS selector", B12;
    GUEST_FS_SELECTOR = 0x0808, Bits16, Guest, [-], "Guest FS selector", B12;
    GUEST_GS_SELECTOR = 0x080A, Bits16, Guest, [-], "Guest GS selector", B12;
    GUEST_LDTR_SELECTOR = 0x080C, Bits16, Guest, [-], "Guest LDTR selector", B12;
    GUEST_TR_SELECTOR = 0x080E, Bits16, Guest, [-], "Guest TR selector", B12;
    GUEST_INTERRUPT_STATUS = 0x0810, Bits16, Guest, [proc2::VIRTUAL_INTERRUPT_DELIVERY], "Guest interrupt status: RVI (bits 7:0) and SVI (bits 15:8)", B12;
    GUEST_PML_INDEX = 0x0812, Bits16, Guest, [proc2::ENABLE_PML], "PML index: next entry of the page-modification log", B12;
    GUEST_UINV = 0x0814, Bits16, Guest, [entry::LOAD_UINV, exit::CLEAR_UINV], "Guest UINV: user-interrupt notification vector", B12;

    // ---- B.1.3 16-bit host-state fields ------------------------------------------------
    HOST_ES_SELECTOR = 0x0C00, Bits16, Host, [-], "Host ES selector", B13;
    HOST_CS_SELECTOR = 0x0C02, Bits16, Host, [-], "Host CS selector", B13;
    HOST_SS_SELECTOR = 0x0C04, Bits16, Host, [-], "Host SS selector", B13;
    HOST_DS_SELECTOR = 0x0C06, Bits16, Host, [-], "Host DS selector", B13;
    HOST_FS_SELECTOR = 0x0C08, Bits16, Host, [-], "Host FS selector", B13;
    HOST_GS_SELECTOR = 0x0C0A, Bits16, Host, [-], "Host GS selector", B13;
    HOST_TR_SELECTOR = 0x0C0C, Bits16, Host, [-], "Host TR selector", B13;

    // ---- B.2.1 64-bit control fields ---------------------------------------------------
    IO_BITMAP_A = 0x2000, Bits64, Control, [proc::USE_IO_BITMAPS], "Physical address of I/O bitmap A (ports 0000H-7FFFH)", B21;
    IO_BITMAP_B = 0x2002, Bits64, Control, [proc::USE_IO_BITMAPS], "Physical address of I/O bitmap B (ports 8000H-FFFFH)", B21;
    MSR_BITMAP = 0x2004, Bits64, Control, [proc::USE_MSR_BITMAPS], "Physical address of the MSR bitmaps", B21;
    VM_EXIT_MSR_STORE_ADDR = 0x2006, Bits64, Control, [-], "Physical address of the VM-exit MSR-store area", B21;
    VM_EXIT_MSR_LOAD_ADDR = 0x2008, Bits64, Control, [-], "Physical address of the VM-exit MSR-load area", B21;
    VM_ENTRY_MSR_LOAD_ADDR = 0x200A, Bits64, Control, [-], "Physical address of the VM-entry MSR-load area", B21;
    EXECUTIVE_VMCS_POINTER = 0x200C, Bits64, Control, [cap "dual-monitor treatment of SMIs and SMM (IA32_VMX_BASIC[49])"], "Executive-VMCS pointer (dual-monitor treatment of SMIs and SMM)", B21;
    PML_ADDRESS = 0x200E, Bits64, Control, [proc2::ENABLE_PML], "Physical address of the page-modification log", B21;
    TSC_OFFSET = 0x2010, Bits64, Control, [-], "TSC offset added by RDTSC/RDTSCP/RDMSR when TSC offsetting is used", B21;
    VIRTUAL_APIC_PAGE_ADDR = 0x2012, Bits64, Control, [proc::USE_TPR_SHADOW], "Physical address of the virtual-APIC page", B21;
    APIC_ACCESS_ADDR = 0x2014, Bits64, Control, [proc2::VIRTUALIZE_APIC_ACCESSES], "Physical address of the APIC-access page", B21;
    POSTED_INTR_DESC_ADDR = 0x2016, Bits64, Control, [pin::PROCESS_POSTED_INTERRUPTS], "Physical address of the posted-interrupt descriptor", B21;
    VM_FUNCTION_CONTROLS = 0x2018, Bits64, Control, [proc2::ENABLE_VM_FUNCTIONS], "VM-function controls", B21;
    EPT_POINTER = 0x201A, Bits64, Control, [proc2::ENABLE_EPT], "EPT pointer (EPTP): EPT PML4/PML5 address, memory type, walk length, A/D enable", B21;
    EOI_EXIT_BITMAP0 = 0x201C, Bits64, Control, [proc2::VIRTUAL_INTERRUPT_DELIVERY], "EOI-exit bitmap for vectors 0-63", B21;
    EOI_EXIT_BITMAP1 = 0x201E, Bits64, Control, [proc2::VIRTUAL_INTERRUPT_DELIVERY], "EOI-exit bitmap for vectors 64-127", B21;
    EOI_EXIT_BITMAP2 = 0x2020, Bits64, Control, [proc2::VIRTUAL_INTERRUPT_DELIVERY], "EOI-exit bitmap for vectors 128-191", B21;
    EOI_EXIT_BITMAP3 = 0x2022, Bits64, Control, [proc2::VIRTUAL_INTERRUPT_DELIVERY], "EOI-exit bitmap for vectors 192-255", B21;
    EPTP_LIST_ADDRESS = 0x2024, Bits64, Control, [vmfunc::EPTP_SWITCHING], "Physical address of the EPTP list (EPTP switching)", B21;
    VMREAD_BITMAP = 0x2026, Bits64, Control, [proc2::VMCS_SHADOWING], "Physical address of the VMREAD bitmap", B21;
    VMWRITE_BITMAP = 0x2028, Bits64, Control, [proc2::VMCS_SHADOWING], "Physical address of the VMWRITE bitmap", B21;
    VE_INFORMATION_ADDRESS = 0x202A, Bits64, Control, [proc2::EPT_VIOLATION_VE], "Physical address of the virtualization-exception information area", B21;
    XSS_EXITING_BITMAP = 0x202C, Bits64, Control, [proc2::ENABLE_XSAVES_XRSTORS], "XSS-exiting bitmap: XSAVES/XRSTORS exit if IA32_XSS AND this bitmap is nonzero", B21;
    ENCLS_EXITING_BITMAP = 0x202E, Bits64, Control, [proc2::ENABLE_ENCLS_EXITING], "ENCLS-exiting bitmap: ENCLS leaves that cause VM exits", B21;
    SUB_PAGE_PERMISSION_TABLE_POINTER = 0x2030, Bits64, Control, [proc2::SUB_PAGE_WRITE_PERMISSIONS], "Sub-page-permission-table pointer (SPPTP)", B21;
    TSC_MULTIPLIER = 0x2032, Bits64, Control, [proc2::USE_TSC_SCALING], "TSC multiplier (fixed point, 48 fraction bits)", B21;
    TERTIARY_PROC_BASED_CONTROLS = 0x2034, Bits64, Control, [proc::ACTIVATE_TERTIARY_CONTROLS], "Tertiary processor-based VM-execution controls", B21;
    ENCLV_EXITING_BITMAP = 0x2036, Bits64, Control, [proc2::ENABLE_ENCLV_EXITING], "ENCLV-exiting bitmap: ENCLV leaves that cause VM exits", B21;
    LOW_PASID_DIRECTORY_ADDRESS = 0x2038, Bits64, Control, [proc2::PASID_TRANSLATION], "Physical address of the low PASID directory (PASIDs 0-0x7FFFF)", B21;
    HIGH_PASID_DIRECTORY_ADDRESS = 0x203A, Bits64, Control, [proc2::PASID_TRANSLATION], "Physical address of the high PASID directory (PASIDs 0x80000-0xFFFFF)", B21;
    SHARED_EPT_POINTER = 0x203C, Bits64, Control, [cap "Intel TDX (SEAM VMX non-root operation)"], "Shared-EPT pointer, used by the Intel TDX module", B21;
    PCONFIG_EXITING_BITMAP = 0x203E, Bits64, Control, [proc2::ENABLE_PCONFIG], "PCONFIG-exiting bitmap: PCONFIG leaves that cause VM exits", B21;
    HLAT_POINTER = 0x2040, Bits64, Control, [proc3::ENABLE_HLAT], "Hypervisor-managed linear-address translation pointer (HLATP)", B21;
    PID_POINTER_TABLE_ADDRESS = 0x2042, Bits64, Control, [proc3::IPI_VIRTUALIZATION], "Physical address of the PID-pointer table (IPI virtualization)", B21;
    SECONDARY_VM_EXIT_CONTROLS = 0x2044, Bits64, Control, [exit::ACTIVATE_SECONDARY_CONTROLS], "Secondary VM-exit controls", B21;
    IA32_SPEC_CTRL_MASK = 0x204A, Bits64, Control, [proc3::VIRTUALIZE_IA32_SPEC_CTRL], "IA32_SPEC_CTRL mask: bits of IA32_SPEC_CTRL the guest cannot modify", B21;
    IA32_SPEC_CTRL_SHADOW = 0x204C, Bits64, Control, [proc3::VIRTUALIZE_IA32_SPEC_CTRL], "IA32_SPEC_CTRL shadow: value the guest reads from IA32_SPEC_CTRL", B21;
    INJECTED_EVENT_DATA = 0x2052, Bits64, Control, [cap FRED], "Injected-event data delivered with a FRED event injected by VM entry", B21;

    // ---- B.2.2 64-bit read-only data field -----------------------------------------------
    GUEST_PHYSICAL_ADDRESS = 0x2400, Bits64, ReadOnly, [proc2::ENABLE_EPT], "Guest-physical address of an EPT violation or misconfiguration", B22;
    ORIGINAL_EVENT_DATA = 0x2404, Bits64, ReadOnly, [cap FRED], "Event data of the event that was being delivered when the VM exit occurred (FRED)", B22;

    // ---- B.2.3 64-bit guest-state fields -------------------------------------------------
    VMCS_LINK_POINTER = 0x2800, Bits64, Guest, [-], "VMCS link pointer (shadow VMCS, or all ones)", B23;
    GUEST_IA32_DEBUGCTL = 0x2802, Bits64, Guest, [-], "Guest IA32_DEBUGCTL", B23;
    GUEST_IA32_PAT = 0x2804, Bits64, Guest, [entry::LOAD_IA32_PAT, exit::SAVE_IA32_PAT], "Guest IA32_PAT", B23;
    GUEST_IA32_EFER = 0x2806, Bits64, Guest, [entry::LOAD_IA32_EFER, exit::SAVE_IA32_EFER], "Guest IA32_EFER", B23;
    GUEST_IA32_PERF_GLOBAL_CTRL = 0x2808, Bits64, Guest, [entry::LOAD_IA32_PERF_GLOBAL_CTRL, exit::SAVE_IA32_PERF_GLOBAL_CTL], "Guest IA32_PERF_GLOBAL_CTRL", B23;
    GUEST_PDPTE0 = 0x280A, Bits64, Guest, [proc2::ENABLE_EPT], "Guest PDPTE0 (PAE paging with EPT)", B23;
    GUEST_PDPTE1 = 0x280C, Bits64, Guest, [proc2::ENABLE_EPT], "Guest PDPTE1 (PAE paging with EPT)", B23;
    GUEST_PDPTE2 = 0x280E, Bits64, Guest, [proc2::ENABLE_EPT], "Guest PDPTE2 (PAE paging with EPT)", B23;
    GUEST_PDPTE3 = 0x2810, Bits64, Guest, [proc2::ENABLE_EPT], "Guest PDPTE3 (PAE paging with EPT)", B23;
    GUEST_IA32_BNDCFGS = 0x2812, Bits64, Guest, [entry::LOAD_IA32_BNDCFGS, exit::CLEAR_IA32_BNDCFGS], "Guest IA32_BNDCFGS (MPX)", B23;
    GUEST_IA32_RTIT_CTL = 0x2814, Bits64, Guest, [entry::LOAD_IA32_RTIT_CTL, exit::CLEAR_IA32_RTIT_CTL], "Guest IA32_RTIT_CTL (Intel PT)", B23;
    GUEST_IA32_LBR_CTL = 0x2816, Bits64, Guest, [entry::LOAD_GUEST_IA32_LBR_CTL, exit::CLEAR_IA32_LBR_CTL], "Guest IA32_LBR_CTL (architectural LBRs)", B23;
    GUEST_IA32_PKRS = 0x2818, Bits64, Guest, [entry::LOAD_PKRS], "Guest IA32_PKRS (supervisor protection keys)", B23;
    GUEST_IA32_FRED_CONFIG = 0x281A, Bits64, Guest, [entry::LOAD_FRED, exit2::SAVE_FRED], "Guest IA32_FRED_CONFIG", B23;
    GUEST_IA32_FRED_RSP1 = 0x281C, Bits64, Guest, [entry::LOAD_FRED, exit2::SAVE_FRED], "Guest IA32_FRED_RSP1", B23;
    GUEST_IA32_FRED_RSP2 = 0x281E, Bits64, Guest, [entry::LOAD_FRED, exit2::SAVE_FRED], "Guest IA32_FRED_RSP2", B23;
    GUEST_IA32_FRED_RSP3 = 0x2820, Bits64, Guest, [entry::LOAD_FRED, exit2::SAVE_FRED], "Guest IA32_FRED_RSP3", B23;
    GUEST_IA32_FRED_STKLVLS = 0x2822, Bits64, Guest, [entry::LOAD_FRED, exit2::SAVE_FRED], "Guest IA32_FRED_STKLVLS", B23;
    GUEST_IA32_FRED_SSP1 = 0x2824, Bits64, Guest, [entry::LOAD_FRED, exit2::SAVE_FRED], "Guest IA32_FRED_SSP1", B23;
    GUEST_IA32_FRED_SSP2 = 0x2826, Bits64, Guest, [entry::LOAD_FRED, exit2::SAVE_FRED], "Guest IA32_FRED_SSP2", B23;
    GUEST_IA32_FRED_SSP3 = 0x2828, Bits64, Guest, [entry::LOAD_FRED, exit2::SAVE_FRED], "Guest IA32_FRED_SSP3", B23;

    // ---- B.2.4 64-bit host-state fields --------------------------------------------------
    HOST_IA32_PAT = 0x2C00, Bits64, Host, [exit::LOAD_IA32_PAT], "Host IA32_PAT", B24;
    HOST_IA32_EFER = 0x2C02, Bits64, Host, [exit::LOAD_IA32_EFER], "Host IA32_EFER", B24;
    HOST_IA32_PERF_GLOBAL_CTRL = 0x2C04, Bits64, Host, [exit::LOAD_IA32_PERF_GLOBAL_CTRL], "Host IA32_PERF_GLOBAL_CTRL", B24;
    HOST_IA32_PKRS = 0x2C06, Bits64, Host, [exit::LOAD_PKRS], "Host IA32_PKRS", B24;
    HOST_IA32_FRED_CONFIG = 0x2C08, Bits64, Host, [exit2::LOAD_FRED], "Host IA32_FRED_CONFIG", B24;
    HOST_IA32_FRED_RSP1 = 0x2C0A, Bits64, Host, [exit2::LOAD_FRED], "Host IA32_FRED_RSP1", B24;
    HOST_IA32_FRED_RSP2 = 0x2C0C, Bits64, Host, [exit2::LOAD_FRED], "Host IA32_FRED_RSP2", B24;
    HOST_IA32_FRED_RSP3 = 0x2C0E, Bits64, Host, [exit2::LOAD_FRED], "Host IA32_FRED_RSP3", B24;
    HOST_IA32_FRED_STKLVLS = 0x2C10, Bits64, Host, [exit2::LOAD_FRED], "Host IA32_FRED_STKLVLS", B24;
    HOST_IA32_FRED_SSP1 = 0x2C12, Bits64, Host, [exit2::LOAD_FRED], "Host IA32_FRED_SSP1", B24;
    HOST_IA32_FRED_SSP2 = 0x2C14, Bits64, Host, [exit2::LOAD_FRED], "Host IA32_FRED_SSP2", B24;
    HOST_IA32_FRED_SSP3 = 0x2C16, Bits64, Host, [exit2::LOAD_FRED], "Host IA32_FRED_SSP3", B24;

    // ---- B.3.1 32-bit control fields -----------------------------------------------------
    PIN_BASED_CONTROLS = 0x4000, Bits32, Control, [-], "Pin-based VM-execution controls", B31;
    PRIMARY_PROC_BASED_CONTROLS = 0x4002, Bits32, Control, [-], "Primary processor-based VM-execution controls", B31;
    EXCEPTION_BITMAP = 0x4004, Bits32, Control, [-], "Exception bitmap: bit n set makes exception vector n cause a VM exit", B31;
    PAGE_FAULT_ERROR_CODE_MASK = 0x4006, Bits32, Control, [-], "Page-fault error-code mask (with the match value, filters #PF exits)", B31;
    PAGE_FAULT_ERROR_CODE_MATCH = 0x4008, Bits32, Control, [-], "Page-fault error-code match", B31;
    CR3_TARGET_COUNT = 0x400A, Bits32, Control, [-], "CR3-target count: number of valid CR3-target values", B31;
    PRIMARY_VM_EXIT_CONTROLS = 0x400C, Bits32, Control, [-], "Primary VM-exit controls", B31;
    VM_EXIT_MSR_STORE_COUNT = 0x400E, Bits32, Control, [-], "Number of entries in the VM-exit MSR-store area", B31;
    VM_EXIT_MSR_LOAD_COUNT = 0x4010, Bits32, Control, [-], "Number of entries in the VM-exit MSR-load area", B31;
    VM_ENTRY_CONTROLS = 0x4012, Bits32, Control, [-], "VM-entry controls", B31;
    VM_ENTRY_MSR_LOAD_COUNT = 0x4014, Bits32, Control, [-], "Number of entries in the VM-entry MSR-load area", B31;
    VM_ENTRY_INTERRUPTION_INFO = 0x4016, Bits32, Control, [-], "VM-entry interruption-information field: event to inject (vector, type, error-code valid, valid)", B31;
    VM_ENTRY_EXCEPTION_ERROR_CODE = 0x4018, Bits32, Control, [-], "Error code of the injected exception", B31;
    VM_ENTRY_INSTRUCTION_LENGTH = 0x401A, Bits32, Control, [-], "Instruction length for injected software interrupts and exceptions", B31;
    TPR_THRESHOLD = 0x401C, Bits32, Control, [proc::USE_TPR_SHADOW], "TPR threshold (bits 3:0)", B31;
    SECONDARY_PROC_BASED_CONTROLS = 0x401E, Bits32, Control, [proc::ACTIVATE_SECONDARY_CONTROLS], "Secondary processor-based VM-execution controls", B31;
    PLE_GAP = 0x4020, Bits32, Control, [proc2::PAUSE_LOOP_EXITING], "PLE_Gap: maximum TSC ticks between two PAUSEs of one loop", B31;
    PLE_WINDOW = 0x4022, Bits32, Control, [proc2::PAUSE_LOOP_EXITING], "PLE_Window: TSC ticks a PAUSE loop may run before a VM exit", B31;
    INSTRUCTION_TIMEOUT_CONTROL = 0x4024, Bits32, Control, [proc2::INSTRUCTION_TIMEOUT], "Instruction-timeout control: time allowed without reaching an instruction boundary", B31;

    // ---- B.3.2 32-bit read-only data fields ------------------------------------------------
    VM_INSTRUCTION_ERROR = 0x4400, Bits32, ReadOnly, [-], "VM-instruction error number of the last VMfailValid", B32;
    EXIT_REASON = 0x4402, Bits32, ReadOnly, [-], "Exit reason: basic reason (bits 15:0) and flags", B32;
    VM_EXIT_INTERRUPTION_INFO = 0x4404, Bits32, ReadOnly, [-], "VM-exit interruption information: the event that caused the VM exit", B32;
    VM_EXIT_INTERRUPTION_ERROR_CODE = 0x4406, Bits32, ReadOnly, [-], "Error code of the event that caused the VM exit", B32;
    IDT_VECTORING_INFO = 0x4408, Bits32, ReadOnly, [-], "IDT-vectoring information: event being delivered when the VM exit occurred", B32;
    IDT_VECTORING_ERROR_CODE = 0x440A, Bits32, ReadOnly, [-], "Error code of the event being delivered", B32;
    VM_EXIT_INSTRUCTION_LENGTH = 0x440C, Bits32, ReadOnly, [-], "Length of the instruction that caused the VM exit", B32;
    VM_EXIT_INSTRUCTION_INFO = 0x440E, Bits32, ReadOnly, [-], "VM-exit instruction information: operands of the instruction that caused the VM exit", B32;

    // ---- B.3.3 32-bit guest-state fields --------------------------------------------------
    GUEST_ES_LIMIT = 0x4800, Bits32, Guest, [-], "Guest ES limit", B33;
    GUEST_CS_LIMIT = 0x4802, Bits32, Guest, [-], "Guest CS limit", B33;
    GUEST_SS_LIMIT = 0x4804, Bits32, Guest, [-], "Guest SS limit", B33;
    GUEST_DS_LIMIT = 0x4806, Bits32, Guest, [-], "Guest DS limit", B33;
    GUEST_FS_LIMIT = 0x4808, Bits32, Guest, [-], "Guest FS limit", B33;
    GUEST_GS_LIMIT = 0x480A, Bits32, Guest, [-], "Guest GS limit", B33;
    GUEST_LDTR_LIMIT = 0x480C, Bits32, Guest, [-], "Guest LDTR limit", B33;
    GUEST_TR_LIMIT = 0x480E, Bits32, Guest, [-], "Guest TR limit", B33;
    GUEST_GDTR_LIMIT = 0x4810, Bits32, Guest, [-], "Guest GDTR limit", B33;
    GUEST_IDTR_LIMIT = 0x4812, Bits32, Guest, [-], "Guest IDTR limit", B33;
    GUEST_ES_ACCESS_RIGHTS = 0x4814, Bits32, Guest, [-], "Guest ES access rights (bit 16 = unusable)", B33;
    GUEST_CS_ACCESS_RIGHTS = 0x4816, Bits32, Guest, [-], "Guest CS access rights (bit 16 = unusable)", B33;
    GUEST_SS_ACCESS_RIGHTS = 0x4818, Bits32, Guest, [-], "Guest SS access rights (bit 16 = unusable)", B33;
    GUEST_DS_ACCESS_RIGHTS = 0x481A, Bits32, Guest, [-], "Guest DS access rights (bit 16 = unusable)", B33;
    GUEST_FS_ACCESS_RIGHTS = 0x481C, Bits32, Guest, [-], "Guest FS access rights (bit 16 = unusable)", B33;
    GUEST_GS_ACCESS_RIGHTS = 0x481E, Bits32, Guest, [-], "Guest GS access rights (bit 16 = unusable)", B33;
    GUEST_LDTR_ACCESS_RIGHTS = 0x4820, Bits32, Guest, [-], "Guest LDTR access rights (bit 16 = unusable)", B33;
    GUEST_TR_ACCESS_RIGHTS = 0x4822, Bits32, Guest, [-], "Guest TR access rights (bit 16 = unusable)", B33;
    GUEST_INTERRUPTIBILITY_STATE = 0x4824, Bits32, Guest, [-], "Guest interruptibility state: blocking by STI, MOV SS, SMI, NMI; enclave interruption", B33;
    GUEST_ACTIVITY_STATE = 0x4826, Bits32, Guest, [-], "Guest activity state: 0 active, 1 HLT, 2 shutdown, 3 wait-for-SIPI", B33;
    GUEST_SMBASE = 0x4828, Bits32, Guest, [-], "Guest SMBASE", B33;
    GUEST_IA32_SYSENTER_CS = 0x482A, Bits32, Guest, [-], "Guest IA32_SYSENTER_CS", B33;
    VMX_PREEMPTION_TIMER_VALUE = 0x482E, Bits32, Guest, [pin::ACTIVATE_PREEMPTION_TIMER], "VMX-preemption timer value", B33;

    // ---- B.3.4 32-bit host-state field ----------------------------------------------------
    HOST_IA32_SYSENTER_CS = 0x4C00, Bits32, Host, [-], "Host IA32_SYSENTER_CS", B34;

    // ---- B.4.1 natural-width control fields -----------------------------------------------
    CR0_GUEST_HOST_MASK = 0x6000, Natural, Control, [-], "CR0 guest/host mask: bits of CR0 owned by the host", B41;
    CR4_GUEST_HOST_MASK = 0x6002, Natural, Control, [-], "CR4 guest/host mask: bits of CR4 owned by the host", B41;
    CR0_READ_SHADOW = 0x6004, Natural, Control, [-], "CR0 read shadow: guest-visible value of host-owned CR0 bits", B41;
    CR4_READ_SHADOW = 0x6006, Natural, Control, [-], "CR4 read shadow: guest-visible value of host-owned CR4 bits", B41;
    CR3_TARGET_VALUE0 = 0x6008, Natural, Control, [-], "CR3-target value 0", B41;
    CR3_TARGET_VALUE1 = 0x600A, Natural, Control, [-], "CR3-target value 1", B41;
    CR3_TARGET_VALUE2 = 0x600C, Natural, Control, [-], "CR3-target value 2", B41;
    CR3_TARGET_VALUE3 = 0x600E, Natural, Control, [-], "CR3-target value 3", B41;

    // ---- B.4.2 natural-width read-only data fields ------------------------------------------
    EXIT_QUALIFICATION = 0x6400, Natural, ReadOnly, [-], "Exit qualification: exit-reason specific details", B42;
    IO_RCX = 0x6402, Natural, ReadOnly, [-], "I/O RCX: RCX before an I/O instruction that caused an SMI (SMM VM exits)", B42;
    IO_RSI = 0x6404, Natural, ReadOnly, [-], "I/O RSI: RSI before an I/O instruction that caused an SMI (SMM VM exits)", B42;
    IO_RDI = 0x6406, Natural, ReadOnly, [-], "I/O RDI: RDI before an I/O instruction that caused an SMI (SMM VM exits)", B42;
    IO_RIP = 0x6408, Natural, ReadOnly, [-], "I/O RIP: RIP of an I/O instruction that caused an SMI (SMM VM exits)", B42;
    GUEST_LINEAR_ADDRESS = 0x640A, Natural, ReadOnly, [-], "Guest-linear address of the access that caused the VM exit", B42;

    // ---- B.4.3 natural-width guest-state fields ---------------------------------------------
    GUEST_CR0 = 0x6800, Natural, Guest, [-], "Guest CR0", B43;
    GUEST_CR3 = 0x6802, Natural, Guest, [-], "Guest CR3", B43;
    GUEST_CR4 = 0x6804, Natural, Guest, [-], "Guest CR4", B43;
    GUEST_ES_BASE = 0x6806, Natural, Guest, [-], "Guest ES base address", B43;
    GUEST_CS_BASE = 0x6808, Natural, Guest, [-], "Guest CS base address", B43;
    GUEST_SS_BASE = 0x680A, Natural, Guest, [-], "Guest SS base address", B43;
    GUEST_DS_BASE = 0x680C, Natural, Guest, [-], "Guest DS base address", B43;
    GUEST_FS_BASE = 0x680E, Natural, Guest, [-], "Guest FS base address", B43;
    GUEST_GS_BASE = 0x6810, Natural, Guest, [-], "Guest GS base address", B43;
    GUEST_LDTR_BASE = 0x6812, Natural, Guest, [-], "Guest LDTR base address", B43;
    GUEST_TR_BASE = 0x6814, Natural, Guest, [-], "Guest TR base address", B43;
    GUEST_GDTR_BASE = 0x6816, Natural, Guest, [-], "Guest GDTR base address", B43;
    GUEST_IDTR_BASE = 0x6818, Natural, Guest, [-], "Guest IDTR base address", B43;
    GUEST_DR7 = 0x681A, Natural, Guest, [-], "Guest DR7", B43;
    GUEST_RSP = 0x681C, Natural, Guest, [-], "Guest RSP", B43;
    GUEST_RIP = 0x681E, Natural, Guest, [-], "Guest RIP", B43;
    GUEST_RFLAGS = 0x6820, Natural, Guest, [-], "Guest RFLAGS", B43;
    GUEST_PENDING_DEBUG_EXCEPTIONS = 0x6822, Natural, Guest, [-], "Guest pending debug exceptions (B3-B0, enabled breakpoint, BS, RTM)", B43;
    GUEST_IA32_SYSENTER_ESP = 0x6824, Natural, Guest, [-], "Guest IA32_SYSENTER_ESP", B43;
    GUEST_IA32_SYSENTER_EIP = 0x6826, Natural, Guest, [-], "Guest IA32_SYSENTER_EIP", B43;
    GUEST_IA32_S_CET = 0x6828, Natural, Guest, [entry::LOAD_CET_STATE], "Guest IA32_S_CET", B43;
    GUEST_SSP = 0x682A, Natural, Guest, [entry::LOAD_CET_STATE], "Guest shadow-stack pointer (SSP)", B43;
    GUEST_IA32_INTERRUPT_SSP_TABLE_ADDR = 0x682C, Natural, Guest, [entry::LOAD_CET_STATE], "Guest IA32_INTERRUPT_SSP_TABLE_ADDR", B43;

    // ---- B.4.4 natural-width host-state fields ----------------------------------------------
    HOST_CR0 = 0x6C00, Natural, Host, [-], "Host CR0", B44;
    HOST_CR3 = 0x6C02, Natural, Host, [-], "Host CR3", B44;
    HOST_CR4 = 0x6C04, Natural, Host, [-], "Host CR4", B44;
    HOST_FS_BASE = 0x6C06, Natural, Host, [-], "Host FS base address", B44;
    HOST_GS_BASE = 0x6C08, Natural, Host, [-], "Host GS base address", B44;
    HOST_TR_BASE = 0x6C0A, Natural, Host, [-], "Host TR base address", B44;
    HOST_GDTR_BASE = 0x6C0C, Natural, Host, [-], "Host GDTR base address", B44;
    HOST_IDTR_BASE = 0x6C0E, Natural, Host, [-], "Host IDTR base address", B44;
    HOST_IA32_SYSENTER_ESP = 0x6C10, Natural, Host, [-], "Host IA32_SYSENTER_ESP", B44;
    HOST_IA32_SYSENTER_EIP = 0x6C12, Natural, Host, [-], "Host IA32_SYSENTER_EIP", B44;
    HOST_RSP = 0x6C14, Natural, Host, [-], "Host RSP", B44;
    HOST_RIP = 0x6C16, Natural, Host, [-], "Host RIP", B44;
    HOST_IA32_S_CET = 0x6C18, Natural, Host, [exit::LOAD_CET_STATE], "Host IA32_S_CET", B44;
    HOST_SSP = 0x6C1A, Natural, Host, [exit::LOAD_CET_STATE], "Host shadow-stack pointer (SSP)", B44;
    HOST_IA32_INTERRUPT_SSP_TABLE_ADDR = 0x6C1C, Natural, Host, [exit::LOAD_CET_STATE], "Host IA32_INTERRUPT_SSP_TABLE_ADDR", B44;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_strictly_ascending() {
        for pair in VMCS_FIELDS.windows(2) {
            assert!(
                pair[0].encoding < pair[1].encoding,
                "{} (0x{:04X}) not before {} (0x{:04X})",
                pair[0].name,
                pair[0].encoding,
                pair[1].name,
                pair[1].encoding
            );
        }
    }

    #[test]
    fn width_and_type_agree_with_encoding_bits() {
        for f in VMCS_FIELDS {
            assert_eq!(FieldWidth::from_encoding(f.encoding), f.width, "{} width", f.name);
            assert_eq!(FieldType::from_encoding(f.encoding), f.field_type, "{} type", f.name);
            assert_eq!(f.encoding & 1, 0, "{} must be listed by its FULL encoding", f.name);
            assert_eq!(f.encoding & (1 << 12), 0, "{} sets reserved bit 12", f.name);
            assert_eq!(f.encoding >> 15, 0, "{} sets reserved bits 31:15", f.name);
            let rebuilt =
                make_encoding(f.width, f.field_type, encoding_index(f.encoding), FieldAccess::Full);
            assert_eq!(rebuilt, f.encoding, "{}", f.name);
        }
    }

    #[test]
    fn every_row_has_a_reference_meaning_and_unique_name() {
        for (i, f) in VMCS_FIELDS.iter().enumerate() {
            assert!(f.reference.starts_with("SDM Vol. 3D Appendix B."), "{}", f.name);
            assert!(!f.meaning.is_empty(), "{}", f.name);
            // The reference section agrees with width and type (B.<width>.<type>).
            let section = match f.width {
                FieldWidth::Bits16 => "B.1.",
                FieldWidth::Bits64 => "B.2.",
                FieldWidth::Bits32 => "B.3.",
                FieldWidth::Natural => "B.4.",
            };
            assert!(f.reference.contains(section), "{} section", f.name);
            for g in &VMCS_FIELDS[i + 1..] {
                assert_ne!(f.name, g.name);
            }
        }
    }

    #[test]
    fn gates_name_declared_controls() {
        for f in VMCS_FIELDS {
            match f.gate {
                FieldGate::Always => {}
                FieldGate::Capability(what) => assert!(!what.is_empty(), "{}", f.name),
                FieldGate::AnyOf(refs) => {
                    assert!(!refs.is_empty(), "{}", f.name);
                    for r in refs {
                        assert!(r.info().is_some(), "{} gate {:?}", f.name, r);
                    }
                }
            }
        }
    }

    #[test]
    fn anchors() {
        assert_eq!(GUEST_CR0, 0x6800);
        assert_eq!(GUEST_RIP, 0x681E);
        assert_eq!(VIRTUAL_PROCESSOR_ID, 0x0000);
        assert_eq!(IO_BITMAP_A, 0x2000);
        assert_eq!(EPT_POINTER, 0x201A);
        assert_eq!(GUEST_PHYSICAL_ADDRESS, 0x2400);
        assert_eq!(VMCS_LINK_POINTER, 0x2800);
        assert_eq!(PIN_BASED_CONTROLS, 0x4000);
        assert_eq!(SECONDARY_PROC_BASED_CONTROLS, 0x401E);
        assert_eq!(VM_INSTRUCTION_ERROR, 0x4400);
        assert_eq!(EXIT_REASON, 0x4402);
        assert_eq!(VMX_PREEMPTION_TIMER_VALUE, 0x482E);
        assert_eq!(EXIT_QUALIFICATION, 0x6400);
        assert_eq!(HOST_RIP, 0x6C16);
    }

    #[test]
    fn lookup_full_and_high() {
        let r = VmcsFieldInfo::lookup(0x6800).unwrap();
        assert_eq!((r.info.name, r.access), ("GUEST_CR0", FieldAccess::Full));
        let r = VmcsFieldInfo::lookup(0x201B).unwrap();
        assert_eq!((r.info.name, r.access), ("EPT_POINTER", FieldAccess::High));
        assert_eq!(r.encoding(), 0x201B);
        assert!(r.is_high());
        // HIGH access of every 64-bit field resolves; of any other width it does not.
        for f in VMCS_FIELDS {
            let high = VmcsFieldInfo::lookup(u64::from(f.encoding | 1));
            if f.width == FieldWidth::Bits64 {
                assert_eq!(
                    high.map(|r| (r.info.name, r.access)),
                    Some((f.name, FieldAccess::High))
                );
            } else {
                assert!(high.is_none(), "{} has no HIGH access", f.name);
            }
            assert_eq!(VmcsFieldInfo::lookup(u64::from(f.encoding)).map(|r| r.info), Some(f));
        }
    }

    #[test]
    fn lookup_rejects_invalid_encodings() {
        assert!(VmcsFieldInfo::lookup(0x6801).is_none()); // HIGH of a natural-width field
        assert!(VmcsFieldInfo::lookup(0x0001).is_none()); // HIGH of a 16-bit field
        assert!(VmcsFieldInfo::lookup(0x7800).is_none()); // bit 12 set
        assert!(VmcsFieldInfo::lookup(0x1_6800).is_none()); // bit 16 set
        assert!(VmcsFieldInfo::lookup(0x1_0000_6800).is_none()); // bits 63:32 set
        assert!(VmcsFieldInfo::lookup(u64::MAX).is_none());
        assert!(VmcsFieldInfo::lookup(0x2046).is_none()); // unassigned index
        for enc in 0..=0xFFFFu64 {
            if let Some(r) = VmcsFieldInfo::lookup(enc) {
                assert_eq!(u64::from(r.encoding()), enc);
            }
        }
    }

    #[test]
    fn by_name_with_high_suffix() {
        assert_eq!(VmcsFieldInfo::by_name("guest_cr0").map(|r| r.info.encoding), Some(GUEST_CR0));
        let r = VmcsFieldInfo::by_name("TSC_OFFSET_HIGH").unwrap();
        assert_eq!((r.info.encoding, r.access), (TSC_OFFSET, FieldAccess::High));
        assert!(VmcsFieldInfo::by_name("GUEST_CR0_HIGH").is_none());
        assert!(VmcsFieldInfo::by_name("HIGH").is_none());
        assert!(VmcsFieldInfo::by_name("").is_none());
        assert!(VmcsFieldInfo::by_name("ééé").is_none());
    }

    #[test]
    fn gate_support() {
        let vpid = VmcsFieldInfo::lookup(u64::from(VIRTUAL_PROCESSOR_ID)).unwrap().info;
        let none = |_| 0u64;
        let all = |_| u64::MAX;
        assert_eq!(vpid.gate.supported(none), Some(false));
        assert_eq!(vpid.gate.supported(all), Some(true));
        let only_entry = |f| {
            if f == ControlField::Entry {
                u64::from(entry::LOAD_IA32_PAT)
            } else {
                0
            }
        };
        let pat = VmcsFieldInfo::lookup(u64::from(GUEST_IA32_PAT)).unwrap().info;
        assert_eq!(pat.gate.supported(only_entry), Some(true));
        let cr0 = VmcsFieldInfo::lookup(u64::from(GUEST_CR0)).unwrap().info;
        assert_eq!(cr0.gate.supported(none), Some(true));
        let exec = VmcsFieldInfo::lookup(u64::from(EXECUTIVE_VMCS_POINTER)).unwrap().info;
        assert_eq!(exec.gate.supported(all), None);
    }
}
