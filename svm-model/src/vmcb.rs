//! Layout of the VMCB (Virtual Machine Control Block), declared once as data.
//!
//! APM Vol. 2 Appendix B "Layout of VMCB": the VMCB is one 4-KiB page. Bytes
//! 0x000-0x3FF are the control area (Table B-1, "VMCB Layout, Control Area"), bytes
//! 0x400-0xFFF hold the state save area (Table B-2, "VMCB Layout, State Save Area").
//! Table B-2 gives save-area offsets relative to the save area; this module gives every
//! offset relative to the start of the VMCB, so `RIP` is 0x578 (Table B-2 offset 0x178).
//!
//! Each field is declared once in the [`vmcb_fields!`] table below. The macro emits one
//! `pub const NAME: u16` offset per row and the [`VMCB_FIELDS`] table used by
//! [`VmcbField::lookup`], [`VmcbField::by_name`], tests and `hvsim explain`.
//!
//! Fields narrower than a byte (V_IRQ, NP_ENABLE, EVENTINJ.V, clean bits, ...) are
//! declared in [`bits`] as [`VmcbBits`] rows that name their containing field.
//!
//! Reserved ranges are not listed: a byte that no row covers is reserved (SBZ), and
//! [`VmcbField::lookup`] returns `None` for it.

/// Size of a VMCB in bytes (one 4-KiB page, 4-KiB aligned).
pub const VMCB_SIZE: usize = 0x1000;
/// Size of the control area; the state save area starts right after it.
pub const CONTROL_AREA_SIZE: u16 = 0x400;
/// VMCB offset of the start of the state save area.
pub const SAVE_AREA_OFFSET: u16 = 0x400;

/// Reference string for control-area rows.
const B1: &str = "APM Vol. 2 Appendix B Table B-1 \"VMCB Layout, Control Area\"";
/// Reference string for state-save-area rows (offsets in Table B-2 are relative to 0x400).
const B2: &str = "APM Vol. 2 Appendix B Table B-2 \"VMCB Layout, State Save Area\"";

/// Which of the two VMCB areas a field lives in.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum VmcbArea {
    /// Control area, offsets 0x000-0x3FF (Table B-1).
    Control,
    /// State save area, offsets 0x400-0xFFF (Table B-2).
    Save,
}

impl VmcbArea {
    /// The area that holds a VMCB byte offset, or `None` past the end of the page.
    pub const fn of_offset(offset: u16) -> Option<VmcbArea> {
        if offset < CONTROL_AREA_SIZE {
            Some(VmcbArea::Control)
        } else if (offset as usize) < VMCB_SIZE {
            Some(VmcbArea::Save)
        } else {
            None
        }
    }
}

/// One VMCB field: a byte range of the VMCB page with an architectural meaning.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct VmcbField {
    /// Architectural name as used by this crate (`EXITCODE`, `RIP`, `CS_ATTRIB`, ...).
    pub name: &'static str,
    /// Byte offset from the start of the VMCB.
    pub offset: u16,
    /// Width in bytes.
    pub width: u16,
    /// Control area or state save area.
    pub area: VmcbArea,
    /// One-line meaning.
    pub meaning: &'static str,
    /// Where the field is defined in the APM.
    pub reference: &'static str,
}

impl VmcbField {
    /// First byte offset past the field.
    pub const fn end(&self) -> u16 {
        self.offset + self.width
    }

    /// Whether the byte at `offset` belongs to this field.
    pub const fn contains(&self, offset: u16) -> bool {
        offset >= self.offset && offset < self.end()
    }

    /// The field that contains the byte at `offset`, or `None` for reserved bytes and
    /// offsets outside the page.
    pub fn lookup(offset: u16) -> Option<&'static VmcbField> {
        // VMCB_FIELDS is sorted by offset and its rows do not overlap (unit-tested), so
        // the candidate is the last row that starts at or before `offset`.
        let after = VMCB_FIELDS.partition_point(|f| f.offset <= offset);
        let candidate = VMCB_FIELDS.get(after.checked_sub(1)?)?;
        candidate.contains(offset).then_some(candidate)
    }

    /// The field with this name (ASCII case-insensitive), if any.
    pub fn by_name(name: &str) -> Option<&'static VmcbField> {
        VMCB_FIELDS
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The sub-byte fields declared inside this field (empty for most fields).
    pub fn bits(&self) -> impl Iterator<Item = &'static VmcbBits> {
        let offset = self.offset;
        bits::VMCB_BITS.iter().filter(move |b| b.field == offset)
    }
}

/// Declares the VMCB fields once: emits a `pub const NAME: u16` per row and
/// [`VMCB_FIELDS`]. Rows must be in ascending offset order (unit-tested).
macro_rules! vmcb_fields {
    ($( $name:ident = $offset:literal, $width:literal, $area:ident, $meaning:literal, $reference:expr; )*) => {
        $(
            #[doc = concat!("VMCB offset of `", stringify!($name), "`: ", $meaning, ".")]
            pub const $name: u16 = $offset;
        )*

        /// Every VMCB field, control area then state save area, sorted by offset.
        pub static VMCB_FIELDS: &[VmcbField] = &[
            $(
                VmcbField {
                    name: stringify!($name),
                    offset: $offset,
                    width: $width,
                    area: VmcbArea::$area,
                    meaning: $meaning,
                    reference: $reference,
                },
            )*
        ];
    };
}

vmcb_fields! {
    // ---- Control area (Table B-1) -------------------------------------------------
    INTERCEPT_CR_READ = 0x000, 2, Control, "Intercept reads of CR0-CR15 (bit n intercepts reads of CRn)", B1;
    INTERCEPT_CR_WRITE = 0x002, 2, Control, "Intercept writes of CR0-CR15 (bit n intercepts writes of CRn)", B1;
    INTERCEPT_DR_READ = 0x004, 2, Control, "Intercept reads of DR0-DR15 (bit n intercepts reads of DRn)", B1;
    INTERCEPT_DR_WRITE = 0x006, 2, Control, "Intercept writes of DR0-DR15 (bit n intercepts writes of DRn)", B1;
    INTERCEPT_EXCEPTIONS = 0x008, 4, Control, "Intercept exception vectors 0-31 (bit n intercepts vector n)", B1;
    INTERCEPT_MISC1 = 0x00C, 4, Control, "Intercept vector 3: INTR, NMI, SMI, INIT, VINTR, selective CR0 write, descriptor-table accesses, RDTSC ... SHUTDOWN", B1;
    INTERCEPT_MISC2 = 0x010, 4, Control, "Intercept vector 4: VMRUN, VMMCALL, VMLOAD, VMSAVE, STGI, CLGI, SKINIT, RDTSCP ... RDPRU, EFER and CR0-CR15 write traps", B1;
    INTERCEPT_MISC3 = 0x014, 4, Control, "Intercept vector 5: INVLPGB, illegal INVLPGB, INVPCID, MCOMMIT, TLBSYNC, bus lock, idle HLT", B1;
    PAUSE_FILTER_THRESHOLD = 0x03C, 2, Control, "PAUSE filter threshold: cycles between PAUSEs that reset the PAUSE filter count", B1;
    PAUSE_FILTER_COUNT = 0x03E, 2, Control, "PAUSE filter count: PAUSEs tolerated before a PAUSE intercept exits", B1;
    IOPM_BASE_PA = 0x040, 8, Control, "Physical base address of the I/O permissions map (IOPM), 4-KiB aligned", B1;
    MSRPM_BASE_PA = 0x048, 8, Control, "Physical base address of the MSR permissions map (MSRPM), 4-KiB aligned", B1;
    TSC_OFFSET = 0x050, 8, Control, "Offset added to the TSC while the guest runs", B1;
    GUEST_ASID = 0x058, 4, Control, "Guest address-space identifier (ASID); ASID 0 is reserved for the host", B1;
    TLB_CONTROL = 0x05C, 1, Control, "TLB control on VMRUN: 0 nothing, 1 flush all, 3 flush this guest's ASID, 7 flush this guest's non-global entries", B1;
    V_INTR_CONTROL = 0x060, 4, Control, "Virtual interrupt controls: V_TPR, V_IRQ, V_GIF, V_NMI, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING, V_GIF_ENABLE, AVIC enables (see `bits`)", B1;
    V_INTR_VECTOR = 0x064, 1, Control, "Vector to use for the virtual interrupt (V_IRQ)", B1;
    INTERRUPT_STATE = 0x068, 8, Control, "Guest interrupt state: INTERRUPT_SHADOW (bit 0), GUEST_INTERRUPT_MASK (bit 1)", B1;
    EXITCODE = 0x070, 8, Control, "Exit code of the last #VMEXIT (Appendix C); negative values report VMRUN failures", B1;
    EXITINFO1 = 0x078, 8, Control, "Exit information 1: exit-code specific qualification", B1;
    EXITINFO2 = 0x080, 8, Control, "Exit information 2: exit-code specific qualification", B1;
    EXITINTINFO = 0x088, 8, Control, "Event that was being delivered when the #VMEXIT occurred (EVENTINJ format)", B1;
    NP_CONTROL = 0x090, 8, Control, "Nested paging and SEV enables: NP_ENABLE, SEV, SEV-ES, GMET, SSS check, VTE, read-only GPT, INVLPGB/TLBSYNC (see `bits`)", B1;
    AVIC_APIC_BAR = 0x098, 8, Control, "AVIC: guest physical address of the virtual APIC (bits 51:0)", B1;
    GHCB_GPA = 0x0A0, 8, Control, "SEV-ES: guest physical address of the GHCB", B1;
    EVENTINJ = 0x0A8, 8, Control, "Event injection on VMRUN: vector, type, error-code valid, valid, error code", B1;
    N_CR3 = 0x0B0, 8, Control, "Nested page table CR3 (nCR3), used when NP_ENABLE is set", B1;
    VIRT_EXT = 0x0B8, 8, Control, "LBR virtualization enable (bit 0), virtualized VMSAVE/VMLOAD enable (bit 1), IBS virtualization (bit 2)", B1;
    VMCB_CLEAN = 0x0C0, 4, Control, "VMCB clean bits: fields the processor may use from its cache (see `bits`)", B1;
    NRIP = 0x0C8, 8, Control, "Next sequential instruction pointer (NRIP save)", B1;
    GUEST_INSN_LEN = 0x0D0, 1, Control, "Number of guest instruction bytes fetched (decode assists)", B1;
    GUEST_INSN_BYTES = 0x0D1, 15, Control, "Guest instruction bytes fetched (decode assists)", B1;
    AVIC_BACKING_PAGE = 0x0E0, 8, Control, "AVIC: host physical address of the APIC backing page (bits 51:12)", B1;
    AVIC_LOGICAL_TABLE = 0x0F0, 8, Control, "AVIC: host physical address of the logical APIC ID table (bits 51:12)", B1;
    AVIC_PHYSICAL_TABLE = 0x0F8, 8, Control, "AVIC: physical APIC ID table pointer (bits 51:12) and AVIC_PHYSICAL_MAX_INDEX (bits 7:0)", B1;
    VMSA_PA = 0x108, 8, Control, "SEV-ES: host physical address of the guest's VM save area (VMSA)", B1;
    VMGEXIT_RAX = 0x110, 8, Control, "SEV-SNP: RAX value of a VMGEXIT (restricted/alternate injection)", B1;
    VMGEXIT_CPL = 0x118, 1, Control, "SEV-SNP: CPL at which a VMGEXIT was executed", B1;
    BUS_LOCK_COUNTER = 0x120, 2, Control, "Bus lock threshold counter: bus locks allowed before VMEXIT_BUSLOCK", B1;
    UPDATE_IRR = 0x134, 1, Control, "Secure AVIC: bit 0 requests that REQUESTED_IRR be merged into the guest IRR", B1;
    ALLOWED_SEV_FEATURES = 0x138, 8, Control, "SEV_FEATURES values the guest may use; bit 63 enables the check", B1;
    GUEST_SEV_FEATURES = 0x140, 8, Control, "SEV_FEATURES of the guest, reported on #VMEXIT", B1;
    REQUESTED_IRR = 0x150, 32, Control, "Secure AVIC: 256-bit interrupt request bitmap to merge into the guest IRR", B1;
    PML_ADDR = 0x1C8, 8, Control, "Page modification log: host physical address of the 4-KiB log buffer", B1;
    PML_INDEX = 0x1D0, 2, Control, "Page modification log: index of the next log entry (counts down from 511)", B1;
    HOST_SW_AREA = 0x3E0, 32, Control, "Reserved for host (hypervisor software) use; never touched by the processor", B1;

    // ---- State save area (Table B-2), offsets relative to the VMCB --------------------
    ES_SELECTOR = 0x400, 2, Save, "ES selector", B2;
    ES_ATTRIB = 0x402, 2, Save, "ES attributes (descriptor bits 47:40 and 55:52 packed into 11:0)", B2;
    ES_LIMIT = 0x404, 4, Save, "ES limit, expanded to 32 bits (byte granular)", B2;
    ES_BASE = 0x408, 8, Save, "ES base address", B2;
    CS_SELECTOR = 0x410, 2, Save, "CS selector", B2;
    CS_ATTRIB = 0x412, 2, Save, "CS attributes (descriptor bits 47:40 and 55:52 packed into 11:0)", B2;
    CS_LIMIT = 0x414, 4, Save, "CS limit, expanded to 32 bits (byte granular)", B2;
    CS_BASE = 0x418, 8, Save, "CS base address", B2;
    SS_SELECTOR = 0x420, 2, Save, "SS selector", B2;
    SS_ATTRIB = 0x422, 2, Save, "SS attributes (descriptor bits 47:40 and 55:52 packed into 11:0)", B2;
    SS_LIMIT = 0x424, 4, Save, "SS limit, expanded to 32 bits (byte granular)", B2;
    SS_BASE = 0x428, 8, Save, "SS base address", B2;
    DS_SELECTOR = 0x430, 2, Save, "DS selector", B2;
    DS_ATTRIB = 0x432, 2, Save, "DS attributes (descriptor bits 47:40 and 55:52 packed into 11:0)", B2;
    DS_LIMIT = 0x434, 4, Save, "DS limit, expanded to 32 bits (byte granular)", B2;
    DS_BASE = 0x438, 8, Save, "DS base address", B2;
    FS_SELECTOR = 0x440, 2, Save, "FS selector", B2;
    FS_ATTRIB = 0x442, 2, Save, "FS attributes (descriptor bits 47:40 and 55:52 packed into 11:0)", B2;
    FS_LIMIT = 0x444, 4, Save, "FS limit, expanded to 32 bits (byte granular)", B2;
    FS_BASE = 0x448, 8, Save, "FS base address", B2;
    GS_SELECTOR = 0x450, 2, Save, "GS selector", B2;
    GS_ATTRIB = 0x452, 2, Save, "GS attributes (descriptor bits 47:40 and 55:52 packed into 11:0)", B2;
    GS_LIMIT = 0x454, 4, Save, "GS limit, expanded to 32 bits (byte granular)", B2;
    GS_BASE = 0x458, 8, Save, "GS base address", B2;
    GDTR_LIMIT = 0x464, 4, Save, "GDTR limit (only bits 15:0 are used; selector and attributes are reserved)", B2;
    GDTR_BASE = 0x468, 8, Save, "GDTR base address", B2;
    LDTR_SELECTOR = 0x470, 2, Save, "LDTR selector", B2;
    LDTR_ATTRIB = 0x472, 2, Save, "LDTR attributes (descriptor bits 47:40 and 55:52 packed into 11:0)", B2;
    LDTR_LIMIT = 0x474, 4, Save, "LDTR limit, expanded to 32 bits (byte granular)", B2;
    LDTR_BASE = 0x478, 8, Save, "LDTR base address", B2;
    IDTR_LIMIT = 0x484, 4, Save, "IDTR limit (only bits 15:0 are used; selector and attributes are reserved)", B2;
    IDTR_BASE = 0x488, 8, Save, "IDTR base address", B2;
    TR_SELECTOR = 0x490, 2, Save, "TR selector", B2;
    TR_ATTRIB = 0x492, 2, Save, "TR attributes (descriptor bits 47:40 and 55:52 packed into 11:0)", B2;
    TR_LIMIT = 0x494, 4, Save, "TR limit, expanded to 32 bits (byte granular)", B2;
    TR_BASE = 0x498, 8, Save, "TR base address", B2;
    VMPL = 0x4CA, 1, Save, "SEV-SNP: virtual machine privilege level", B2;
    CPL = 0x4CB, 1, Save, "Current privilege level; the processor uses this value, not SS.DPL", B2;
    EFER = 0x4D0, 8, Save, "Guest EFER", B2;
    CR4 = 0x548, 8, Save, "Guest CR4", B2;
    CR3 = 0x550, 8, Save, "Guest CR3", B2;
    CR0 = 0x558, 8, Save, "Guest CR0", B2;
    DR7 = 0x560, 8, Save, "Guest DR7", B2;
    DR6 = 0x568, 8, Save, "Guest DR6", B2;
    RFLAGS = 0x570, 8, Save, "Guest RFLAGS", B2;
    RIP = 0x578, 8, Save, "Guest RIP", B2;
    RSP = 0x5D8, 8, Save, "Guest RSP", B2;
    S_CET = 0x5E0, 8, Save, "Guest S_CET (supervisor CET state)", B2;
    SSP = 0x5E8, 8, Save, "Guest shadow-stack pointer", B2;
    ISST_ADDR = 0x5F0, 8, Save, "Guest interrupt shadow-stack table address (ISST_ADDR)", B2;
    RAX = 0x5F8, 8, Save, "Guest RAX", B2;
    STAR = 0x600, 8, Save, "Guest STAR", B2;
    LSTAR = 0x608, 8, Save, "Guest LSTAR", B2;
    CSTAR = 0x610, 8, Save, "Guest CSTAR", B2;
    SFMASK = 0x618, 8, Save, "Guest SFMASK", B2;
    KERNEL_GS_BASE = 0x620, 8, Save, "Guest KernelGsBase", B2;
    SYSENTER_CS = 0x628, 8, Save, "Guest SYSENTER_CS", B2;
    SYSENTER_ESP = 0x630, 8, Save, "Guest SYSENTER_ESP", B2;
    SYSENTER_EIP = 0x638, 8, Save, "Guest SYSENTER_EIP", B2;
    CR2 = 0x640, 8, Save, "Guest CR2", B2;
    G_PAT = 0x668, 8, Save, "Guest PAT; used only when nested paging is enabled", B2;
    DBGCTL = 0x670, 8, Save, "Guest DebugCtl MSR (LBR virtualization)", B2;
    BR_FROM = 0x678, 8, Save, "Guest LastBranchFromIP MSR (LBR virtualization)", B2;
    BR_TO = 0x680, 8, Save, "Guest LastBranchToIP MSR (LBR virtualization)", B2;
    LASTEXCPFROM = 0x688, 8, Save, "Guest LastExceptionFromIP MSR (LBR virtualization)", B2;
    LASTEXCPTO = 0x690, 8, Save, "Guest LastExceptionToIP MSR (LBR virtualization)", B2;
    DBGEXTNCFG = 0x698, 8, Save, "Guest debug extension configuration MSR", B2;
    SPEC_CTRL = 0x6E0, 8, Save, "Guest SPEC_CTRL MSR", B2;
}

/// Sub-byte fields of the VMCB (bit ranges inside a [`VmcbField`]).
///
/// Each constant names its containing field by offset, so `explain` can show the bits
/// of a field and code can extract them with [`VmcbBits::get`].
pub mod bits {
    use super::{
        AVIC_PHYSICAL_TABLE, B1, EVENTINJ, EXITINTINFO, INTERRUPT_STATE, NP_CONTROL, VIRT_EXT,
        VMCB_CLEAN, V_INTR_CONTROL,
    };

    /// A bit range inside a VMCB field.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub struct VmcbBits {
        /// Name of the bit field (`V_IRQ`, `NP_ENABLE`, ...).
        pub name: &'static str,
        /// Offset of the containing [`super::VmcbField`].
        pub field: u16,
        /// Lowest bit, counted from bit 0 of the containing field.
        pub lsb: u8,
        /// Number of bits.
        pub len: u8,
        /// One-line meaning.
        pub meaning: &'static str,
        /// Where the bits are defined in the APM.
        pub reference: &'static str,
    }

    impl VmcbBits {
        /// Mask of the bits within the containing field's value.
        pub const fn mask(&self) -> u64 {
            if self.len >= 64 {
                u64::MAX
            } else {
                ((1u64 << self.len) - 1) << self.lsb
            }
        }

        /// Extracts these bits (shifted down to bit 0) from the field's value.
        pub const fn get(&self, field_value: u64) -> u64 {
            (field_value & self.mask()) >> self.lsb
        }

        /// Returns `field_value` with these bits replaced by `bits` (excess bits dropped).
        pub const fn set(&self, field_value: u64, bits: u64) -> u64 {
            (field_value & !self.mask()) | ((bits << self.lsb) & self.mask())
        }

        /// The bit field with this name (ASCII case-insensitive), if any.
        pub fn by_name(name: &str) -> Option<&'static VmcbBits> {
            VMCB_BITS.iter().find(|b| b.name.eq_ignore_ascii_case(name))
        }
    }

    /// Declares the VMCB bit fields once: a `pub const NAME: VmcbBits` per row and
    /// [`VMCB_BITS`].
    macro_rules! vmcb_bits {
        ($( $name:ident = $field:ident [$lsb:literal; $len:literal], $meaning:literal; )*) => {
            $(
                #[doc = concat!("`", stringify!($field), "` bits: ", $meaning, ".")]
                pub const $name: VmcbBits = VmcbBits {
                    name: stringify!($name),
                    field: $field,
                    lsb: $lsb,
                    len: $len,
                    meaning: $meaning,
                    reference: B1,
                };
            )*

            /// Every declared VMCB bit field, grouped by containing field.
            pub static VMCB_BITS: &[VmcbBits] = &[$($name),*];
        };
    }

    vmcb_bits! {
        V_TPR = V_INTR_CONTROL[0; 8], "Virtual TPR for the guest (bits 3:0 used)";
        V_IRQ = V_INTR_CONTROL[8; 1], "A virtual interrupt is pending";
        V_GIF = V_INTR_CONTROL[9; 1], "Virtual GIF (when V_GIF_ENABLE is set)";
        V_NMI = V_INTR_CONTROL[11; 1], "A virtual NMI is pending (when V_NMI_ENABLE is set)";
        V_NMI_MASK = V_INTR_CONTROL[12; 1], "Virtual NMIs are masked (when V_NMI_ENABLE is set)";
        V_INTR_PRIO = V_INTR_CONTROL[16; 4], "Priority of the pending virtual interrupt";
        V_IGN_TPR = V_INTR_CONTROL[20; 1], "The pending virtual interrupt ignores the virtual TPR";
        V_INTR_MASKING = V_INTR_CONTROL[24; 1], "Virtualize EFLAGS.IF and TPR masking of physical interrupts";
        V_GIF_ENABLE = V_INTR_CONTROL[25; 1], "Enable virtual GIF";
        V_NMI_ENABLE = V_INTR_CONTROL[26; 1], "Enable virtual NMI";
        X2AVIC_ENABLE = V_INTR_CONTROL[30; 1], "Enable x2APIC mode of AVIC";
        AVIC_ENABLE = V_INTR_CONTROL[31; 1], "Enable AVIC";
        INTERRUPT_SHADOW = INTERRUPT_STATE[0; 1], "Guest is in an interrupt shadow (STI or MOV SS)";
        GUEST_INTERRUPT_MASK = INTERRUPT_STATE[1; 1], "Value of the guest EFLAGS.IF when V_INTR_MASKING is set (written on #VMEXIT)";
        EXITINTINFO_VECTOR = EXITINTINFO[0; 8], "Vector of the interrupted event";
        EXITINTINFO_TYPE = EXITINTINFO[8; 3], "Type of the interrupted event: 0 INTR, 2 NMI, 3 exception, 4 software interrupt";
        EXITINTINFO_EV = EXITINTINFO[11; 1], "The interrupted event had an error code";
        EXITINTINFO_V = EXITINTINFO[31; 1], "EXITINTINFO is valid";
        EXITINTINFO_ERRORCODE = EXITINTINFO[32; 32], "Error code of the interrupted event";
        NP_ENABLE = NP_CONTROL[0; 1], "Enable nested paging";
        SEV_ENABLE = NP_CONTROL[1; 1], "Enable Secure Encrypted Virtualization";
        SEV_ES_ENABLE = NP_CONTROL[2; 1], "Enable encrypted state for SEV (SEV-ES)";
        GMET_ENABLE = NP_CONTROL[3; 1], "Guest-mode execute trap";
        SSS_CHECK_ENABLE = NP_CONTROL[4; 1], "Enable supervisor shadow-stack restrictions in nested page tables";
        VTE_ENABLE = NP_CONTROL[5; 1], "Virtual transparent encryption";
        RO_GPT_ENABLE = NP_CONTROL[6; 1], "Enable read-only guest page tables";
        INVLPGB_TLBSYNC_ENABLE = NP_CONTROL[7; 1], "Allow the guest to execute INVLPGB and TLBSYNC";
        PML_ENABLE = NP_CONTROL[11; 1], "Enable page modification logging (PML_ADDR, PML_INDEX)";
        EVENTINJ_VECTOR = EVENTINJ[0; 8], "Vector of the event to inject";
        EVENTINJ_TYPE = EVENTINJ[8; 3], "Type of the event: 0 INTR, 2 NMI, 3 exception, 4 software interrupt";
        EVENTINJ_EV = EVENTINJ[11; 1], "Push EVENTINJ_ERRORCODE as the error code";
        EVENTINJ_V = EVENTINJ[31; 1], "EVENTINJ is valid: inject the event on VMRUN";
        EVENTINJ_ERRORCODE = EVENTINJ[32; 32], "Error code to push when EVENTINJ_EV is set";
        LBR_VIRTUALIZATION_ENABLE = VIRT_EXT[0; 1], "Enable LBR virtualization";
        VIRTUAL_VMSAVE_VMLOAD_ENABLE = VIRT_EXT[1; 1], "Enable virtualized VMSAVE/VMLOAD";
        IBS_VIRTUALIZATION_ENABLE = VIRT_EXT[2; 1], "Enable instruction-based sampling virtualization";
        CLEAN_I = VMCB_CLEAN[0; 1], "Intercept vectors, TSC offset, pause filter count are unchanged";
        CLEAN_IOPM = VMCB_CLEAN[1; 1], "IOPM_BASE and MSRPM_BASE are unchanged";
        CLEAN_ASID = VMCB_CLEAN[2; 1], "ASID is unchanged";
        CLEAN_TPR = VMCB_CLEAN[3; 1], "V_TPR, V_IRQ, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING, V_INTR_VECTOR are unchanged";
        CLEAN_NP = VMCB_CLEAN[4; 1], "NP_ENABLE, N_CR3 and G_PAT are unchanged";
        CLEAN_CRX = VMCB_CLEAN[5; 1], "CR0, CR3, CR4 and EFER are unchanged";
        CLEAN_DRX = VMCB_CLEAN[6; 1], "DR6 and DR7 are unchanged";
        CLEAN_DT = VMCB_CLEAN[7; 1], "GDTR and IDTR are unchanged";
        CLEAN_SEG = VMCB_CLEAN[8; 1], "CS, DS, SS, ES and CPL are unchanged";
        CLEAN_CR2 = VMCB_CLEAN[9; 1], "CR2 is unchanged";
        CLEAN_LBR = VMCB_CLEAN[10; 1], "DbgCtlMsr, BR_FROM/TO, LASTEXCPFROM/TO are unchanged";
        CLEAN_AVIC = VMCB_CLEAN[11; 1], "AVIC APIC_BAR, backing page, logical and physical table pointers are unchanged";
        CLEAN_CET = VMCB_CLEAN[12; 1], "S_CET, SSP and ISST_ADDR are unchanged";
        AVIC_PHYSICAL_MAX_INDEX = AVIC_PHYSICAL_TABLE[0; 8], "Highest index valid in the AVIC physical APIC ID table";
    }
}

pub use bits::VmcbBits;

/// Values of [`TLB_CONTROL`] (APM Vol. 2 §15.16 "TLB Control").
pub mod tlb_control {
    /// Do nothing.
    pub const DO_NOTHING: u8 = 0x00;
    /// Flush the entire TLB (all ASIDs).
    pub const FLUSH_ALL: u8 = 0x01;
    /// Flush this guest's TLB entries.
    pub const FLUSH_GUEST: u8 = 0x03;
    /// Flush this guest's non-global TLB entries.
    pub const FLUSH_GUEST_NON_GLOBAL: u8 = 0x07;
}

/// Values of the TYPE bits of [`EVENTINJ`] and [`EXITINTINFO`]
/// (APM Vol. 2 §15.20 "Event Injection").
pub mod event_type {
    /// External or virtual interrupt (INTR).
    pub const INTR: u8 = 0;
    /// NMI.
    pub const NMI: u8 = 2;
    /// Exception (fault or trap).
    pub const EXCEPTION: u8 = 3;
    /// Software interrupt (INTn).
    pub const SOFTWARE_INT: u8 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmcb_fields_are_sorted_and_do_not_overlap() {
        for pair in VMCB_FIELDS.windows(2) {
            assert!(
                pair[0].end() <= pair[1].offset,
                "{} (0x{:03X}+{}) overlaps or is out of order with {} (0x{:03X})",
                pair[0].name,
                pair[0].offset,
                pair[0].width,
                pair[1].name,
                pair[1].offset
            );
        }
    }

    #[test]
    fn vmcb_fields_fit_in_page_and_area() {
        for f in VMCB_FIELDS {
            assert!(f.width > 0, "{} has zero width", f.name);
            assert!(usize::from(f.end()) <= VMCB_SIZE, "{} past 4 KiB", f.name);
            assert_eq!(
                VmcbArea::of_offset(f.offset),
                Some(f.area),
                "{} area",
                f.name
            );
            let last = f.end() - 1;
            assert_eq!(
                VmcbArea::of_offset(last),
                Some(f.area),
                "{} straddles areas",
                f.name
            );
        }
    }

    #[test]
    fn vmcb_names_are_unique_and_rows_have_references() {
        for (i, f) in VMCB_FIELDS.iter().enumerate() {
            assert!(
                f.reference.starts_with("APM Vol. 2"),
                "{} reference",
                f.name
            );
            assert!(!f.meaning.is_empty(), "{} meaning", f.name);
            for g in &VMCB_FIELDS[i + 1..] {
                assert_ne!(f.name, g.name);
            }
        }
    }

    #[test]
    fn vmcb_anchors() {
        assert_eq!(EXITCODE, 0x070);
        assert_eq!(EXITINFO1, 0x078);
        assert_eq!(EXITINFO2, 0x080);
        assert_eq!(EVENTINJ, 0x0A8);
        assert_eq!(N_CR3, 0x0B0);
        assert_eq!(NRIP, 0x0C8);
        assert_eq!(CPL, 0x4CB);
        assert_eq!(EFER, 0x4D0);
        assert_eq!(CR4, 0x548);
        assert_eq!(RIP, 0x578);
        assert_eq!(RSP, 0x5D8);
        assert_eq!(RAX, 0x5F8);
        assert_eq!(CR2, 0x640);
        assert_eq!(G_PAT, 0x668);
        assert_eq!(LASTEXCPTO, 0x690);
    }

    #[test]
    fn lookup_finds_containing_field() {
        assert_eq!(VmcbField::lookup(0x070).map(|f| f.name), Some("EXITCODE"));
        assert_eq!(VmcbField::lookup(0x077).map(|f| f.name), Some("EXITCODE"));
        assert_eq!(VmcbField::lookup(0x57C).map(|f| f.name), Some("RIP"));
        assert_eq!(
            VmcbField::lookup(0x0D5).map(|f| f.name),
            Some("GUEST_INSN_BYTES")
        );
        assert_eq!(
            VmcbField::lookup(0x000).map(|f| f.name),
            Some("INTERCEPT_CR_READ")
        );
        // Reserved bytes and out-of-page offsets.
        assert!(VmcbField::lookup(0x018).is_none());
        assert!(VmcbField::lookup(0x4A0).is_none());
        assert!(VmcbField::lookup(0x1000).is_none());
        assert!(VmcbField::lookup(u16::MAX).is_none());
    }

    #[test]
    fn lookup_agrees_with_linear_scan_for_every_offset() {
        for off in 0..=0x1000u16 {
            let linear = VMCB_FIELDS.iter().find(|f| f.contains(off));
            assert_eq!(VmcbField::lookup(off), linear, "offset 0x{off:03X}");
        }
    }

    #[test]
    fn by_name_is_case_insensitive() {
        assert_eq!(
            VmcbField::by_name("exitcode").map(|f| f.offset),
            Some(EXITCODE)
        );
        assert_eq!(VmcbField::by_name("G_PAT").map(|f| f.offset), Some(0x668));
        assert!(VmcbField::by_name("NO_SUCH_FIELD").is_none());
    }

    #[test]
    fn bit_fields_fit_their_containing_field() {
        for (i, b) in bits::VMCB_BITS.iter().enumerate() {
            let f = VmcbField::lookup(b.field).expect("bit field names a VMCB field");
            assert_eq!(
                f.offset, b.field,
                "{} must name the start of its field",
                b.name
            );
            assert!(b.len > 0);
            assert!(
                u32::from(b.lsb) + u32::from(b.len) <= u32::from(f.width) * 8,
                "{} exceeds {}",
                b.name,
                f.name
            );
            assert!(!b.reference.is_empty());
            // Bit fields of one containing field do not overlap; names are unique.
            for c in &bits::VMCB_BITS[i + 1..] {
                assert_ne!(b.name, c.name);
                if c.field == b.field {
                    assert_eq!(b.mask() & c.mask(), 0, "{} overlaps {}", b.name, c.name);
                }
                assert!(VmcbField::by_name(c.name).is_none(), "{} clashes", c.name);
            }
        }
    }

    #[test]
    fn bit_field_accessors() {
        let v = bits::V_INTR_PRIO.set(0, 0xA);
        assert_eq!(v, 0xA << 16);
        assert_eq!(bits::V_INTR_PRIO.get(v | 0xFFFF), 0xA);
        assert_eq!(
            bits::EVENTINJ_ERRORCODE.get(0xDEAD_BEEF_0000_0000),
            0xDEAD_BEEF
        );
        assert_eq!(bits::V_IRQ.mask(), 1 << 8);
        let f = VmcbField::by_name("V_INTR_CONTROL").unwrap();
        assert!(f.bits().any(|b| b.name == "V_IRQ"));
        assert_eq!(bits::VmcbBits::by_name("np_enable"), Some(&bits::NP_ENABLE));
    }
}
