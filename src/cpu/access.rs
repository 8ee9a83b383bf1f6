//! Memory access from the vCPU: segmentation (limits, types, canonical addresses), then
//! the front-end TLB, then the shadow page cache (or a guest page walk with
//! `--no-shadow-cache`) on a miss, then guest RAM. Writes to frames that hold shadowed
//! page tables take the slow path, through [`Machine::phys_write`], so that the cache
//! sees them (see `machine/mmu_cache.rs`).
//!
//! Fault order follows the SDM: segmentation checks (#GP/#SS) come before paging (#PF),
//! and a multi-byte access that crosses a page is translated on both pages before any
//! byte is written.

use super::fault::{gp, ss, Exception, ExecResult, Fault};
use super::regs::{cr0, cr4, efer, SegReg};
use super::tlb::{TlbEntry, TLB_SW, TLB_U, TLB_W, TLB_X};
use super::{flags, CpuMode};
use crate::machine::Machine;
use hvsim_mmu::paging::{self, Access, AccessKind, PagingMode, WalkConfig};
use hvsim_mmu::shadow::Served;
use hvsim_mmu::{Gpa, Gva};

/// Where a translated page lives.
#[derive(Copy, Clone, Debug)]
pub struct PageRef {
    /// Guest frame.
    pub gfn: u64,
    /// Offset of the frame in RAM backing, or `usize::MAX`.
    pub host: usize,
}

/// Who makes an access, for the access-rights checks (SDM Vol. 3A §4.6).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// An explicit access by the instruction, at the current privilege (user mode at
    /// CPL 3); EFLAGS.AC may lift SMAP.
    Current,
    /// An implicit supervisor-mode access (descriptor tables, TSS) at any CPL.
    ImplicitSupervisor,
}

/// The CPU model's MAXPHYADDR.
pub const MAXPHYADDR: u8 = 40;

impl Machine {
    /// Segment `seg` + offset `off` -> linear address, with the limit, type and
    /// canonical checks of the current mode.
    #[inline]
    pub fn linear(&self, seg: SegReg, off: u64, size: u8, write: bool) -> Result<u64, Fault> {
        let cpu = &self.cpu;
        let s = &cpu.seg[seg as usize];
        if cpu.mode == CpuMode::Long64 {
            let base = if seg >= SegReg::Fs { s.base } else { 0 };
            let lin = base.wrapping_add(off);
            // SDM Vol. 1 §3.3.7.1 "Canonical Addressing": a non-canonical reference
            // raises #SS(0) when it uses SS, #GP(0) otherwise.
            if !self.canonical(lin) || !self.canonical(lin.wrapping_add(u64::from(size) - 1)) {
                return if seg == SegReg::Ss { ss(0) } else { gp(0) };
            }
            return Ok(lin);
        }
        let fault = || if seg == SegReg::Ss { ss(0) } else { gp(0) };
        if matches!(cpu.mode, CpuMode::Protected | CpuMode::Compat) {
            // A null or unusable segment, or a type that forbids the access.
            if !s.present() || !s.allows(write) {
                return fault();
            }
        }
        let last = off.wrapping_add(u64::from(size) - 1);
        if s.expand_down() {
            let upper: u64 = if s.attr & super::regs::attr::DB != 0 { 0xFFFF_FFFF } else { 0xFFFF };
            if off <= u64::from(s.limit) || last > upper || last < off {
                return fault();
            }
        } else if last > u64::from(s.limit) || last < off {
            return fault();
        }
        Ok(s.base.wrapping_add(off) & 0xFFFF_FFFF)
    }

    /// Whether `lin` is canonical for the current paging mode.
    #[inline(always)]
    pub fn canonical(&self, lin: u64) -> bool {
        let bits = if self.cpu.cr4 & cr4::LA57 != 0 { 57 } else { 48 };
        let shift = 64 - bits;
        ((lin << shift) as i64 >> shift) as u64 == lin
    }

    /// The configuration a guest page walk uses now (the paging mode and every control
    /// bit that decides a walk's outcome).
    pub fn walk_config(&self) -> WalkConfig {
        let c = &self.cpu;
        let mode = if c.efer & efer::LMA != 0 {
            if c.cr4 & cr4::LA57 != 0 {
                PagingMode::Long5
            } else {
                PagingMode::Long4
            }
        } else if c.cr4 & cr4::PAE != 0 {
            PagingMode::Pae
        } else {
            PagingMode::Legacy32
        };
        WalkConfig {
            mode,
            cr3: c.cr3,
            wp: c.cr0 & cr0::WP != 0,
            pse: c.cr4 & cr4::PSE != 0,
            nxe: c.efer & efer::NXE != 0,
            smep: c.cr4 & cr4::SMEP != 0,
            smap: c.cr4 & cr4::SMAP != 0,
            pke: c.cr4 & cr4::PKE != 0,
            pkru: c.pkru,
            pdptes: (mode == PagingMode::Pae).then_some(c.pdpte),
            maxphyaddr: MAXPHYADDR,
        }
    }

    /// Whether a TLB entry permits an access of `kind` at the current privilege (the
    /// permissions are those of the walk that filled it; SMAP and SMEP are left to the
    /// walker for supervisor accesses to user pages).
    #[inline(always)]
    fn tlb_permits(&self, e: &TlbEntry, kind: AccessKind, user: bool) -> bool {
        let need = match kind {
            AccessKind::Read => 0,
            AccessKind::Fetch => TLB_X,
            AccessKind::Write if user || self.cpu.cr0 & cr0::WP != 0 => TLB_W,
            AccessKind::Write => TLB_SW,
        } | if user { TLB_U } else { 0 };
        let smap_smep = !user
            && e.perm & TLB_U != 0
            && self.cpu.cr4 & (cr4::SMAP | cr4::SMEP) != 0
            && self.cpu.paging();
        e.perm & need == need && !smap_smep
    }

    /// Translates a linear address for an access of `kind` at the current privilege.
    #[inline(always)]
    pub fn translate(&mut self, lin: u64, kind: AccessKind) -> Result<PageRef, Fault> {
        let vpn = lin >> 12;
        if let Some(e) = self.cpu.tlb.lookup(vpn) {
            if self.tlb_permits(e, kind, self.cpu.cpl == 3) {
                return Ok(PageRef { gfn: e.gfn, host: e.host });
            }
        }
        self.translate_slow(lin, kind, Privilege::Current)
    }

    /// Translates a linear address for an implicit supervisor-mode access: the accesses
    /// the CPU makes to the GDT, LDT, IDT and TSS (and their accessed/busy bits) are
    /// supervisor-mode accesses whatever the CPL, and SMAP applies to them even with
    /// EFLAGS.AC = 1 (SDM Vol. 3A §4.6 "Access Rights").
    pub fn translate_implicit(&mut self, lin: u64, kind: AccessKind) -> Result<PageRef, Fault> {
        let vpn = lin >> 12;
        if let Some(e) = self.cpu.tlb.lookup(vpn) {
            if self.tlb_permits(e, kind, false) {
                return Ok(PageRef { gfn: e.gfn, host: e.host });
            }
        }
        self.translate_slow(lin, kind, Privilege::ImplicitSupervisor)
    }

    /// The TLB missed (or its entry did not permit the access): the translation comes
    /// from the shadow page cache, or a guest page walk with `--no-shadow-cache`, and
    /// fills the TLB. With `--strict-tlb` every TLB use comes here and is checked.
    #[cold]
    pub(crate) fn translate_slow(
        &mut self,
        lin: u64,
        kind: AccessKind,
        privilege: Privilege,
    ) -> Result<PageRef, Fault> {
        if self.cpu.debug.armed {
            return self.translate_watched(lin, kind, privilege);
        }
        if let Some(np) = self.nested.svm.guest.as_ref().and_then(|g| g.np) {
            return self.translate_nested(lin, kind, privilege, np);
        }
        if let Some(ept) = self.nested.vmx.ept {
            return crate::nested::vmx::ept::translate(self, lin, kind, privilege, ept);
        }
        let vpn = lin >> 12;
        let user = privilege == Privilege::Current && self.cpu.cpl == 3;
        let strict = self.strict.is_some();
        let fetch = kind == AccessKind::Fetch;
        // A TLB entry the fast path did not use: a global one filled under another PCID,
        // or with `--strict-tlb` (which bypasses the fast path) any entry.
        let cached = match strict {
            true => match self.cpu.tlb.lookup_exact(vpn).copied() {
                Some(e) => Some(e),
                None => self.cpu.tlb.lookup_global(vpn).copied(),
            },
            false => self.cpu.tlb.lookup_global(vpn).copied(),
        };
        if let Some(e) = cached {
            if self.tlb_permits(&e, kind, user) {
                if strict && self.cpu.paging() {
                    if let Some(t) = self.strict_fill_of(vpn) {
                        let cfg = self.walk_config();
                        self.strict_check(&cfg, lin, fetch, &t);
                    }
                }
                return Ok(PageRef { gfn: e.gfn, host: e.host });
            }
        }
        let (gfn, mut perm, global, size_shift) = if self.cpu.paging() {
            let smap_override = privilege == Privilege::Current && self.cpu.flags.bit(flags::AC);
            let access = Access { kind, user, smap_override };
            let cfg = self.walk_config();
            let (r, served) = match self.shadow.as_mut() {
                Some(s) => s.translate_traced(&mut self.mem, &cfg, Gva(lin), access),
                None => (paging::walk(&mut self.mem, &cfg, Gva(lin), access), Served::Walk),
            };
            self.shadow_tracking_changed();
            match r {
                Ok(t) => {
                    if strict && served == Served::Cache {
                        self.strict_check(&cfg, lin, fetch, &t);
                    }
                    let dirty = t.leaf & paging::PTE_D != 0;
                    // Protection keys restrict data accesses to user pages (SDM Vol. 3A
                    // §4.6.2). The entry carries the restriction PKRU imposes now (WRPKRU
                    // flushes the TLB): WD clears the write permissions; a page whose key
                    // has AD is not cached at all, so each access walks and faults.
                    let ia32e = matches!(cfg.mode, PagingMode::Long4 | PagingMode::Long5);
                    let pk = if cfg.pke && ia32e && t.user {
                        self.cpu.pkru >> (2 * u32::from(t.pkey))
                    } else {
                        0
                    };
                    let pk_wd = pk & paging::PKRU_WD != 0;
                    let perm = (if t.writable && dirty && !pk_wd { TLB_W } else { 0 })
                        | (if dirty { TLB_SW } else { 0 })
                        | (if t.user { TLB_U } else { 0 })
                        | (if t.executable { TLB_X } else { 0 });
                    let global = t.global && self.cpu.cr4 & cr4::PGE != 0;
                    if pk & paging::PKRU_AD != 0 {
                        let gfn = self.chipset_gfn(t.gpa.0 >> 12);
                        return Ok(self.page_ref(gfn, self.ram_page(gfn), kind));
                    }
                    self.strict_filled(vpn, Some(t));
                    (t.gpa.0 >> 12, perm, global, (t.page_size.trailing_zeros() - 12) as u8)
                }
                Err(pf) => {
                    return Err(Fault::from(Exception {
                        vector: super::fault::vector::PF,
                        error_code: Some(pf.error_code),
                        cr2: lin,
                    }))
                }
            }
        } else {
            self.strict_filled(vpn, None);
            (vpn & 0xF_FFFF_FFFF, TLB_W | TLB_U | TLB_X | TLB_SW, false, 0)
        };
        let gfn = self.chipset_gfn(gfn);
        let host = self.ram_page(gfn);
        if self.write_tracked(gfn) || self.monitored_frame(gfn) || self.pam_write_protected(gfn) {
            // Writes to a frame holding shadowed page tables or a line armed by MONITOR
            // must reach phys_write.
            perm &= !(TLB_W | TLB_SW);
        }
        self.cpu.tlb.insert(vpn, gfn, host, perm, global, size_shift);
        Ok(self.page_ref(gfn, host, kind))
    }

    /// The translation of an SVM guest with nested paging (APM Vol. 2 §15.25): a
    /// two-dimensional walk through the guest's tables and the nested tables at nCR3
    /// (`nested::svm::npt`), without the shadow page cache, which caches L1's own
    /// translations. The front-end TLB caches the result (linear page -> system-physical
    /// frame, with the permissions of both levels); it is flushed on every VMRUN and
    /// #VMEXIT, so it never mixes L1's and L2's translations. A nested fault is recorded
    /// for #VMEXIT(NPF) and ends the instruction with [`Fault::NestedPageFault`].
    #[cold]
    fn translate_nested(
        &mut self,
        lin: u64,
        kind: AccessKind,
        privilege: Privilege,
        np: crate::nested::svm::npt::NestedPaging,
    ) -> Result<PageRef, Fault> {
        use crate::nested::svm::npt::{self, NptFault};
        let vpn = lin >> 12;
        let user = privilege == Privilege::Current && self.cpu.cpl == 3;
        let smap_override = privilege == Privilege::Current && self.cpu.flags.bit(flags::AC);
        let access = Access { kind, user, smap_override };
        let mut cfg = self.walk_config();
        // No PDPTE registers under nested paging: a PAE walk reads them from the tables.
        cfg.pdptes = None;
        let paging = self.cpu.paging();
        let lin_or_gpa = if paging { lin } else { lin & 0xFFFF_FFFF };
        let t = match npt::walk(&mut self.mem, &cfg, &np, paging, Gva(lin_or_gpa), access) {
            Ok(t) => t,
            Err(NptFault::Guest(pf)) => {
                return Err(Fault::from(Exception {
                    vector: super::fault::vector::PF,
                    error_code: Some(pf.error_code),
                    cr2: lin,
                }))
            }
            Err(NptFault::Nested(f)) => {
                self.nested.svm.pending_npf = Some(f);
                return Err(Fault::NestedPageFault);
            }
        };
        let n = t.nested;
        let n_dirty = n.leaf & paging::PTE_D != 0;
        let n_write = n.writable && n_dirty;
        let (mut perm, global, size_shift, pk) = match t.guest {
            Some(g) => {
                let dirty = g.leaf & paging::PTE_D != 0;
                let ia32e = matches!(cfg.mode, PagingMode::Long4 | PagingMode::Long5);
                let pk = if cfg.pke && ia32e && g.user {
                    self.cpu.pkru >> (2 * u32::from(g.pkey))
                } else {
                    0
                };
                let pk_wd = pk & paging::PKRU_WD != 0;
                let perm = (if g.writable && dirty && n_write && !pk_wd { TLB_W } else { 0 })
                    | (if dirty && n_write { TLB_SW } else { 0 })
                    | (if g.user { TLB_U } else { 0 })
                    | (if g.executable && n.executable { TLB_X } else { 0 });
                let global = g.global && self.cpu.cr4 & cr4::PGE != 0;
                (perm, global, (g.page_size.trailing_zeros() - 12) as u8, pk)
            }
            None => {
                let w = if n_write { TLB_W | TLB_SW } else { 0 };
                (w | TLB_U | if n.executable { TLB_X } else { 0 }, false, 0, 0)
            }
        };
        let gfn = n.gpa.0 >> 12;
        let host = self.ram_page(gfn);
        if pk & paging::PKRU_AD != 0 || self.strict.is_some() {
            // Not cached: a key with AD faults on each access; `--strict-tlb` checks
            // native translations only, so nested ones are walked every time.
            return Ok(self.page_ref(gfn, host, kind));
        }
        if self.write_tracked(gfn) {
            perm &= !(TLB_W | TLB_SW);
        }
        self.cpu.tlb.insert(vpn, gfn, host, perm, global, size_shift);
        Ok(self.page_ref(gfn, host, kind))
    }

    /// Where an access of `kind` to frame `gfn` goes: a write to a write-tracked frame
    /// (or one with a line armed by MONITOR) gets no RAM offset, so that the caller takes
    /// the path through [`Machine::phys_write`], which tells the shadow cache (and the
    /// monitors).
    #[inline]
    pub(crate) fn page_ref(&self, gfn: u64, host: usize, kind: AccessKind) -> PageRef {
        if kind == AccessKind::Write
            && (self.write_tracked(gfn)
                || self.monitored_frame(gfn)
                || self.pam_write_protected(gfn))
        {
            PageRef { gfn, host: usize::MAX }
        } else {
            PageRef { gfn, host }
        }
    }

    /// The RAM backing offset of guest frame `gfn`, or `usize::MAX`.
    pub(crate) fn ram_page(&self, gfn: u64) -> usize {
        self.mem.ram_page(hvsim_mmu::Gfn(gfn)).unwrap_or(usize::MAX)
    }

    /// Reads `N` bytes at linear address `lin`.
    #[inline(always)]
    pub fn read_lin<const N: usize>(
        &mut self,
        lin: u64,
        kind: AccessKind,
    ) -> Result<[u8; N], Fault> {
        let off = (lin & 0xFFF) as usize;
        if off + N <= 4096 {
            let p = self.translate(lin, kind)?;
            if p.host != usize::MAX {
                let mut b = [0u8; N];
                b.copy_from_slice(&self.mem.backing()[p.host + off..p.host + off + N]);
                return Ok(b);
            }
        }
        self.read_lin_slow(lin, kind)
    }

    #[cold]
    fn read_lin_slow<const N: usize>(
        &mut self,
        lin: u64,
        kind: AccessKind,
    ) -> Result<[u8; N], Fault> {
        self.read_split(lin, kind, false)
    }

    /// Reads `N` bytes that may cross a page: both pages are translated (as an implicit
    /// supervisor access if `implicit`) before any byte is read.
    fn read_split<const N: usize>(
        &mut self,
        lin: u64,
        kind: AccessKind,
        implicit: bool,
    ) -> Result<[u8; N], Fault> {
        let mut b = [0u8; N];
        let first = (4096 - (lin & 0xFFF) as usize).min(N);
        let p0 = self.translate_as(lin, kind, implicit)?;
        let p1 = if first < N {
            Some(self.translate_as(lin.wrapping_add(first as u64), kind, implicit)?)
        } else {
            None
        };
        if self.cpu.debug.armed {
            self.watch_access(lin, N as u64, kind);
        }
        self.phys_read(Gpa((p0.gfn << 12) | (lin & 0xFFF)), &mut b[..first]);
        if let Some(p1) = p1 {
            self.phys_read(Gpa(p1.gfn << 12), &mut b[first..]);
        }
        Ok(b)
    }

    /// Translates for an ordinary access, or an implicit supervisor-mode one.
    fn translate_as(
        &mut self,
        lin: u64,
        kind: AccessKind,
        implicit: bool,
    ) -> Result<PageRef, Fault> {
        if implicit {
            self.translate_implicit(lin, kind)
        } else {
            self.translate(lin, kind)
        }
    }

    /// Writes `N` bytes at linear address `lin`.
    #[inline(always)]
    pub fn write_lin<const N: usize>(&mut self, lin: u64, data: [u8; N]) -> ExecResult {
        let off = (lin & 0xFFF) as usize;
        if off + N <= 4096 {
            let p = self.translate(lin, AccessKind::Write)?;
            if p.host != usize::MAX {
                self.mem.backing_mut()[p.host + off..p.host + off + N].copy_from_slice(&data);
                if self.code.is_code_frame(p.gfn) {
                    self.code_written(p.gfn);
                }
                return Ok(());
            }
        }
        self.write_lin_slow(lin, &data)
    }

    #[cold]
    fn write_lin_slow(&mut self, lin: u64, data: &[u8]) -> ExecResult {
        self.write_split(lin, data, false)
    }

    /// Writes `data`, which may cross a page: both pages are translated (as an implicit
    /// supervisor access if `implicit`) before any byte is written.
    fn write_split(&mut self, lin: u64, data: &[u8], implicit: bool) -> ExecResult {
        let n = data.len();
        let first = (4096 - (lin & 0xFFF) as usize).min(n);
        let p0 = self.translate_as(lin, AccessKind::Write, implicit)?;
        let p1 = if first < n {
            Some(self.translate_as(lin.wrapping_add(first as u64), AccessKind::Write, implicit)?)
        } else {
            None
        };
        if self.cpu.debug.armed {
            self.watch_access(lin, n as u64, AccessKind::Write);
        }
        self.phys_write(Gpa((p0.gfn << 12) | (lin & 0xFFF)), &data[..first]);
        if let Some(p1) = p1 {
            self.phys_write(Gpa(p1.gfn << 12), &data[first..]);
        }
        Ok(())
    }

    /// A physical read (RAM, or all ones for MMIO and unmapped space until MMIO devices
    /// exist).
    pub fn phys_read(&mut self, gpa: Gpa, buf: &mut [u8]) {
        if self.is_mmio(gpa.0) {
            return self.mmio_read(gpa.0, buf);
        }
        self.mem.read(gpa, buf)
    }

    /// A physical write; keeps the decoded-code cache coherent and triggers the
    /// MONITOR lines it touches.
    pub fn phys_write(&mut self, gpa: Gpa, data: &[u8]) {
        if self.is_mmio(gpa.0) {
            return self.mmio_write(gpa.0, data);
        }
        if !self.pam_write(gpa, data) {
            self.mem.write(gpa, data);
        }
        self.shadow_phys_written(gpa, data.len());
        if self.monitor_watch {
            self.monitor_written(gpa, data.len());
        }
        let first = gpa.0 >> 12;
        let last = gpa.0.wrapping_add(data.len().max(1) as u64 - 1) >> 12;
        for f in [first, last] {
            if self.code.is_code_frame(f) {
                self.code_written(f);
            }
        }
    }

    #[cold]
    fn code_written(&mut self, gfn: u64) {
        self.code.invalidate_frame(gfn);
        self.cpu.end_block = true;
    }

    /// Reads `N` bytes at linear address `lin` with an implicit supervisor-mode access
    /// (see [`Machine::translate_implicit`]); both pages are translated before reading.
    pub fn read_lin_implicit<const N: usize>(&mut self, lin: u64) -> Result<[u8; N], Fault> {
        self.read_split(lin, AccessKind::Read, true)
    }

    /// Writes `data` at linear address `lin` with an implicit supervisor-mode access
    /// (descriptor accessed and busy bits); both pages are translated before writing.
    pub fn write_lin_implicit(&mut self, lin: u64, data: &[u8]) -> ExecResult {
        self.write_split(lin, data, true)
    }

    /// Reads a `size`-byte (1, 2, 4, 8) little-endian value at `seg:off`.
    #[inline(always)]
    pub fn read_mem(&mut self, seg: SegReg, off: u64, size: u8) -> Result<u64, Fault> {
        let lin = self.linear(seg, off, size, false)?;
        self.read_lin_sized(lin, size, AccessKind::Read)
    }

    /// Reads for a read-modify-write: checks write permission first, as the hardware's
    /// locked read does, so a read-only page faults with W=1.
    #[inline(always)]
    pub fn read_mem_rmw(&mut self, seg: SegReg, off: u64, size: u8) -> Result<u64, Fault> {
        let lin = self.linear(seg, off, size, true)?;
        self.read_lin_sized(lin, size, AccessKind::Write)
    }

    /// Reads a `size`-byte value at a linear address.
    #[inline(always)]
    pub fn read_lin_sized(&mut self, lin: u64, size: u8, kind: AccessKind) -> Result<u64, Fault> {
        Ok(match size {
            1 => u64::from(self.read_lin::<1>(lin, kind)?[0]),
            2 => u64::from(u16::from_le_bytes(self.read_lin(lin, kind)?)),
            4 => u64::from(u32::from_le_bytes(self.read_lin(lin, kind)?)),
            _ => u64::from_le_bytes(self.read_lin(lin, kind)?),
        })
    }

    /// Writes a `size`-byte little-endian value at `seg:off`.
    #[inline(always)]
    pub fn write_mem(&mut self, seg: SegReg, off: u64, size: u8, v: u64) -> ExecResult {
        let lin = self.linear(seg, off, size, true)?;
        self.write_lin_sized(lin, size, v)
    }

    /// Writes a `size`-byte value at a linear address.
    #[inline(always)]
    pub fn write_lin_sized(&mut self, lin: u64, size: u8, v: u64) -> ExecResult {
        match size {
            1 => self.write_lin(lin, [v as u8]),
            2 => self.write_lin(lin, (v as u16).to_le_bytes()),
            4 => self.write_lin(lin, (v as u32).to_le_bytes()),
            _ => self.write_lin(lin, v.to_le_bytes()),
        }
    }

    /// Pushes a `size`-byte value on the stack.
    #[inline]
    pub fn push(&mut self, v: u64, size: u8) -> ExecResult {
        let ss = self.cpu.stack_size();
        let m = flags::size_mask(ss);
        let rsp = self.cpu.gpr[4];
        let new = rsp.wrapping_sub(u64::from(size)) & m;
        self.write_mem(SegReg::Ss, new, size, v)?;
        self.cpu.gpr[4] = (rsp & !m) | new;
        Ok(())
    }

    /// Pops a `size`-byte value from the stack.
    #[inline]
    pub fn pop(&mut self, size: u8) -> Result<u64, Fault> {
        let ss = self.cpu.stack_size();
        let m = flags::size_mask(ss);
        let rsp = self.cpu.gpr[4];
        let v = self.read_mem(SegReg::Ss, rsp & m, size)?;
        self.sp_add(u64::from(size));
        Ok(v)
    }

    /// Adds `n` to the stack pointer at the stack address size (RET imm16, LEAVE, ...).
    #[inline]
    pub fn sp_add(&mut self, n: u64) {
        let m = flags::size_mask(self.cpu.stack_size());
        let rsp = self.cpu.gpr[4];
        self.cpu.gpr[4] = (rsp & !m) | (rsp.wrapping_add(n) & m);
    }

    /// Reads the value `depth` bytes above the stack top without popping.
    pub fn stack_peek(&mut self, depth: u64, size: u8) -> Result<u64, Fault> {
        let m = flags::size_mask(self.cpu.stack_size());
        let rsp = self.cpu.gpr[4];
        self.read_mem(SegReg::Ss, rsp.wrapping_add(depth) & m, size)
    }
}
