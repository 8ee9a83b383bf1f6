//! Event delivery: exceptions, software interrupts, NMI and external interrupts through
//! the real-mode IVT and the protected- and long-mode IDT (SDM Vol. 3A Chapter 6
//! "Interrupt and Exception Handling", §6.12 "Exception and Interrupt Handling", §6.14
//! "Exception and Interrupt Handling in 64-bit Mode"; Chapter 20 for virtual-8086 mode).
//!
//! [`Machine::deliver`] performs one delivery. A fault during delivery is returned as an
//! [`Exception`]; the run loop combines it with the event being delivered into #DF or
//! shutdown (see [`combine`]).

use super::fault::{vector, Exception, ExecResult, Fault};
use super::flags::{AC, IF, IOPL, NT, RF, TF, VIF, VM};
use super::regs::{attr, cr4, SegReg, Segment};
use super::segment::{segment_from_descriptor, selector_error, sys_type, StackLoad};
use super::task::{tss32, tss64, TaskSwitchSource};
use super::CpuMode;
use crate::machine::Machine;
use hvsim_mmu::paging::AccessKind;

/// What raised an event; it decides the privilege checks, the EXT bit of error codes
/// raised during delivery, and the V86-mode handling (SDM Vol. 3A §6.4, §6.13, §20.3).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EventSource {
    /// A processor-detected exception (fault, trap or abort).
    Exception,
    /// INT n.
    Software,
    /// INT3 or INTO: software exceptions (gate DPL is checked, not IOPL-sensitive).
    SoftwareException,
    /// INT1 (ICEBP): a privileged software exception (no gate DPL check, EXT set).
    Icebp,
    /// An external (maskable) interrupt.
    External,
    /// A non-maskable interrupt.
    Nmi,
}

impl EventSource {
    /// The EXT bit of error codes for faults during delivery: clear only for INT n,
    /// INT3 and INTO (SDM Vol. 3A §6.13 "Error Code").
    pub fn ext(self) -> u32 {
        match self {
            EventSource::Software | EventSource::SoftwareException => 0,
            _ => 1,
        }
    }

    /// Whether the gate DPL must be >= CPL (INT n, INT3, INTO; SDM Vol. 3A §6.12.1.1).
    fn checks_gate_dpl(self) -> bool {
        matches!(self, EventSource::Software | EventSource::SoftwareException)
    }
}

/// An event to deliver.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The vector.
    pub vector: u8,
    /// What raised it.
    pub source: EventSource,
    /// The error code to push, if the vector has one.
    pub error_code: Option<u32>,
}

impl Event {
    /// A processor exception.
    pub fn exception(e: &Exception) -> Self {
        Self { vector: e.vector, source: EventSource::Exception, error_code: e.error_code }
    }
}

/// The exception classes of SDM Vol. 3A Table 6-4.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExceptionClass {
    /// #DB, NMI, #BP, #OF, #BR, #UD, #NM, #MF, #AC, #MC, #XM, #VE and all interrupts.
    Benign,
    /// #DE, #TS, #NP, #SS, #GP (and #CP).
    Contributory,
    /// #PF.
    PageFault,
    /// #DF itself.
    DoubleFault,
}

/// The class of an exception vector delivered from `source`.
pub fn class(vector: u8, source: EventSource) -> ExceptionClass {
    if source != EventSource::Exception {
        return ExceptionClass::Benign;
    }
    match vector {
        vector::DE | vector::TS | vector::NP | vector::SS | vector::GP | 21 => {
            ExceptionClass::Contributory
        }
        vector::PF => ExceptionClass::PageFault,
        vector::DF => ExceptionClass::DoubleFault,
        _ => ExceptionClass::Benign,
    }
}

/// What to do when `second` is raised while delivering `first` (SDM Vol. 3A Table 6-5
/// "Conditions for Generating a Double Fault", and §6.15 "Interrupt 8": a contributory
/// exception or page fault while delivering #DF shuts the processor down).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Combined {
    /// Deliver the second exception (the first is lost, as when handled serially).
    Second,
    /// Deliver #DF with error code 0.
    DoubleFault,
    /// Triple fault.
    Shutdown,
}

/// Combines an exception raised during delivery with the event being delivered.
pub fn combine(first: ExceptionClass, second: ExceptionClass) -> Combined {
    use ExceptionClass::*;
    match (first, second) {
        (DoubleFault, Contributory | PageFault | DoubleFault) => Combined::Shutdown,
        (Contributory, Contributory) => Combined::DoubleFault,
        (PageFault, Contributory | PageFault) => Combined::DoubleFault,
        _ => Combined::Second,
    }
}

/// A decoded IDT gate.
#[derive(Copy, Clone, Debug)]
struct Gate {
    /// The type field (`sys_type`); only meaningful for system descriptors (`system`).
    /// In IA-32e mode only the 64-bit interrupt and trap gates are valid in the IDT.
    kind: u16,
    system: bool,
    dpl: u8,
    present: bool,
    selector: u16,
    offset: u64,
    ist: u8,
}

/// An error code naming an IDT entry (IDT bit set): vector * 8 + 2 + EXT.
fn idt_error(vector: u8, ext: u32) -> u32 {
    (u32::from(vector) << 3) | 2 | ext
}

/// Adds the EXT bit to the error code of an exception raised during delivery (SDM Vol.
/// 3A §6.13 "Error Code": "EXT ... indicates that the exception occurred during delivery
/// of an event external to the program"). Only the selector-format error codes of #TS,
/// #NP, #SS and #GP have an EXT bit; a #PF error code is left alone.
fn with_ext(f: Fault, ext: u32) -> Fault {
    match f {
        Fault::Exception(mut e)
            if matches!(e.vector, vector::TS | vector::NP | vector::SS | vector::GP) =>
        {
            e.error_code = e.error_code.map(|c| c | ext);
            Fault::Exception(e)
        }
        other => other,
    }
}

fn exc(vector: u8, code: u32) -> Fault {
    Fault::from(Exception::with_code(vector, code))
}

/// A stack being written during delivery: its segment cache, the stack pointer, and the
/// width of the stack pointer (2, 4 or 8 bytes).
struct Frame {
    ss: Segment,
    sp: u64,
    width: u8,
    /// The error code of #SS for a push outside the segment.
    ss_error: u32,
    long: bool,
}

impl Machine {
    /// Runs `f` with the privilege used for address translation set to `cpl`: the pushes
    /// of a delivery use the handler's privilege (SDM Vol. 3A §4.6 "Access Rights"). The
    /// IDT, GDT, LDT and TSS reads are implicit supervisor-mode accesses instead (see
    /// [`Machine::system_read`]).
    pub(crate) fn with_cpl<R>(&mut self, cpl: u8, f: impl FnOnce(&mut Self) -> R) -> R {
        let saved = self.cpu.cpl;
        self.cpu.cpl = cpl;
        let r = f(self);
        self.cpu.cpl = saved;
        r
    }

    fn push_frame(&mut self, fr: &mut Frame, v: u64, size: u8) -> ExecResult {
        let mask = super::flags::size_mask(fr.width);
        let sp = fr.sp.wrapping_sub(u64::from(size)) & mask;
        let lin = if fr.long {
            if !self.canonical(sp) {
                return Err(exc(vector::SS, fr.ss_error));
            }
            sp
        } else {
            let s = &fr.ss;
            let last = sp.wrapping_add(u64::from(size) - 1);
            let ok = if s.expand_down() {
                let upper: u64 = if s.attr & attr::DB != 0 { 0xFFFF_FFFF } else { 0xFFFF };
                sp > u64::from(s.limit) && last <= upper && last >= sp
            } else {
                last <= u64::from(s.limit) && last >= sp
            };
            if !ok {
                return Err(exc(vector::SS, fr.ss_error));
            }
            s.base.wrapping_add(sp) & 0xFFFF_FFFF
        };
        self.write_lin_sized(lin, size, v)?;
        fr.sp = sp;
        Ok(())
    }

    /// Delivers `ev`. RIP must already be the return address (the faulting instruction
    /// for faults, the next instruction for traps and interrupts). On failure nothing
    /// visible in registers has changed, and the exception raised is returned.
    pub fn deliver(&mut self, ev: Event) -> ExecResult {
        match self.cpu.mode {
            CpuMode::Real => self.deliver_real(ev),
            CpuMode::V86 if ev.source == EventSource::Software => self.deliver_v86_int(ev),
            CpuMode::Long64 | CpuMode::Compat => self.deliver_long(ev),
            CpuMode::Protected | CpuMode::V86 => self.deliver_protected(ev),
        }?;
        self.cpu.delivered = true;
        Ok(())
    }

    /// Real-address mode: the IVT entry is CS:IP at IDTR.base + vector * 4; FLAGS, CS and
    /// IP are pushed; IF, TF and AC are cleared (SDM Vol. 3A §6.12.1 / §20.1.4).
    fn deliver_real(&mut self, ev: Event) -> ExecResult {
        let off = u64::from(ev.vector) * 4;
        if off + 3 > u64::from(self.cpu.idtr.limit) {
            return Err(exc(vector::GP, idt_error(ev.vector, ev.source.ext())));
        }
        let entry = u32::from_le_bytes(
            self.read_lin(self.cpu.idtr.base.wrapping_add(off) & 0xFFFF_FFFF, AccessKind::Read)?,
        );
        self.real_style_call(entry, self.cpu.flags.get(), IF | TF | AC | RF)
    }

    /// Pushes FLAGS (`flags_image`), CS and IP on the 16-bit stack and jumps to the
    /// CS:IP of an IVT `entry`; clears the flags in `clear`.
    fn real_style_call(&mut self, entry: u32, flags_image: u64, clear: u64) -> ExecResult {
        let saved_sp = self.cpu.gpr[4];
        let cs = u64::from(self.cpu.seg[SegReg::Cs as usize].selector);
        let ip = self.cpu.rip & 0xFFFF;
        let r = self
            .push(flags_image & 0xFFFF, 2)
            .and_then(|_| self.push(cs, 2))
            .and_then(|_| self.push(ip, 2));
        if let Err(e) = r {
            self.cpu.gpr[4] = saved_sp;
            return Err(e);
        }
        self.cpu.load_seg_real(SegReg::Cs, (entry >> 16) as u16);
        self.cpu.rip = u64::from(entry & 0xFFFF);
        let f = self.cpu.flags.get();
        self.cpu.flags.set(f & !clear);
        self.cpu.update_mode();
        Ok(())
    }

    /// INT n in virtual-8086 mode (SDM Vol. 3A §20.3.1 "Class 1—Hardware Interrupts and
    /// Exceptions", §20.3.3, and Vol. 2A "INT n" Table 3-4, modes 1 to 6).
    fn deliver_v86_int(&mut self, ev: Event) -> ExecResult {
        let iopl = self.cpu.flags.iopl();
        let vme = self.cpu.cr4 & cr4::VME != 0;
        if !vme {
            // Modes 1 and 2: IOPL-sensitive, to the protected-mode handler.
            if iopl < 3 {
                return Err(exc(vector::GP, 0));
            }
            return self.deliver_protected(ev);
        }
        // VME: the software-interrupt redirection bitmap occupies the 32 bytes below the
        // I/O permission bitmap base in the 32-bit TSS.
        let tr = self.cpu.tr;
        if u64::from(tr.limit) < tss32::IOMAP_BASE + 1 {
            return Err(exc(vector::GP, 0));
        }
        let iomap: u16 =
            u16::from_le_bytes(self.system_read(tr.base.wrapping_add(tss32::IOMAP_BASE))?);
        let byte_off = u64::from(iomap).wrapping_sub(32) + u64::from(ev.vector >> 3);
        if byte_off > u64::from(tr.limit) {
            return Err(exc(vector::GP, 0));
        }
        let [b] = self.system_read(tr.base.wrapping_add(byte_off))?;
        if b & (1 << (ev.vector & 7)) != 0 {
            // Bit set: not redirected (modes 3 and 6).
            if iopl < 3 {
                return Err(exc(vector::GP, 0));
            }
            return self.deliver_protected(ev);
        }
        // Bit clear: redirected to the 8086 program's IVT at linear 0 (modes 4 and 5).
        // The IVT is read as a user access (CPL 3).
        let entry = u32::from_le_bytes(self.read_lin(u64::from(ev.vector) * 4, AccessKind::Read)?);
        let mut image = self.cpu.flags.get();
        let clear = if iopl < 3 {
            // Mode 5: the pushed image has IOPL = 3 and VIF in place of IF; VIF (not IF)
            // is cleared.
            image = (image | IOPL) & !IF;
            if self.cpu.flags.bit(VIF) {
                image |= IF;
            }
            VIF | TF | RF
        } else {
            IF | TF | RF
        };
        self.real_style_call(entry, image, clear)
    }

    /// Reads and decodes IDT entry `v` (8 bytes, or 16 in IA-32e mode).
    fn read_gate(&mut self, v: u8, ext: u32, long: bool) -> Result<Gate, Fault> {
        let size: u64 = if long { 16 } else { 8 };
        let off = u64::from(v) * size;
        if off + size - 1 > u64::from(self.cpu.idtr.limit) {
            return Err(exc(vector::GP, idt_error(v, ext)));
        }
        let base = self.cpu.idtr.base.wrapping_add(off);
        let lo = u64::from_le_bytes(self.system_read(base)?);
        let hi = if long { u64::from_le_bytes(self.system_read(base.wrapping_add(8))?) } else { 0 };
        let kind = ((lo >> 40) & 0xF) as u16;
        let mut offset = (lo & 0xFFFF) | ((lo >> 32) & 0xFFFF_0000);
        if long {
            offset |= (hi & 0xFFFF_FFFF) << 32;
        } else if matches!(kind, sys_type::INT_GATE16 | sys_type::TRAP_GATE16) {
            offset &= 0xFFFF;
        }
        Ok(Gate {
            kind,
            system: lo & (1 << 44) == 0,
            dpl: ((lo >> 45) & 3) as u8,
            present: lo & (1 << 47) != 0,
            selector: (lo >> 16) as u16,
            offset,
            ist: if long { ((lo >> 32) & 7) as u8 } else { 0 },
        })
    }

    /// Checks the gate's type, DPL and presence (SDM Vol. 3A §6.12.1.1, §6.14.1).
    fn check_gate(&self, g: &Gate, ev: &Event, long: bool) -> ExecResult {
        let ext = ev.source.ext();
        let err = idt_error(ev.vector, ext);
        let type_ok = if long {
            matches!(g.kind, sys_type::INT_GATE32 | sys_type::TRAP_GATE32)
        } else {
            matches!(
                g.kind,
                sys_type::TASK_GATE
                    | sys_type::INT_GATE16
                    | sys_type::TRAP_GATE16
                    | sys_type::INT_GATE32
                    | sys_type::TRAP_GATE32
            )
        };
        if !g.system || !type_ok {
            return Err(exc(vector::GP, err));
        }
        if ev.source.checks_gate_dpl() && g.dpl < self.cpu.cpl {
            return Err(exc(vector::GP, err));
        }
        if !g.present {
            return Err(exc(vector::NP, err));
        }
        Ok(())
    }

    /// Reads and checks the handler's code segment (SDM Vol. 3A §6.12.1.1 and the
    /// "INT n" Operation section): returns the segment and the descriptor's address.
    fn handler_cs(&mut self, sel: u16, ext: u32, long: bool) -> Result<(Segment, u64, u64), Fault> {
        if sel & 0xFFFC == 0 {
            return Err(exc(vector::GP, ext));
        }
        let (d, lin) = match self.read_descriptor(sel) {
            Ok(x) => x,
            Err(Fault::Exception(e)) if e.vector == vector::GP => {
                return Err(exc(vector::GP, selector_error(sel) | ext))
            }
            Err(f) => return Err(f),
        };
        let seg = segment_from_descriptor(sel, d);
        if seg.attr & attr::S == 0 || seg.attr & attr::CODE == 0 || seg.dpl() > self.cpu.cpl {
            return Err(exc(vector::GP, selector_error(sel) | ext));
        }
        if long && (seg.attr & attr::L == 0 || seg.attr & attr::DB != 0) {
            return Err(exc(vector::GP, selector_error(sel) | ext));
        }
        if !seg.present() {
            return Err(exc(vector::NP, selector_error(sel) | ext));
        }
        Ok((seg, d, lin))
    }

    /// Reads the inner stack for privilege level `dpl` from a 16- or 32-bit TSS and
    /// checks the new SS (SDM Vol. 3A §6.12.1 "Exception- or Interrupt-Handler
    /// Procedures", "INT n" Operation: #TS cases).
    fn inner_stack(&mut self, dpl: u8, ext: u32) -> Result<(Segment, u64, u64, u64), Fault> {
        let (ss_sel, sp) = self.tss_stack(dpl).map_err(|f| with_ext(f, ext))?;
        // The SS checks of a stack switch (#TS, or #SS if not present), with EXT added.
        let (ss, d, lin) =
            self.stack_segment(ss_sel, dpl, StackLoad::CallGate).map_err(|f| with_ext(f, ext))?;
        Ok((ss, sp, d, lin.unwrap_or(0)))
    }

    /// Protected mode (and exceptions/interrupts in V86 mode) through a 16- or 32-bit
    /// interrupt, trap or task gate.
    fn deliver_protected(&mut self, ev: Event) -> ExecResult {
        let ext = ev.source.ext();
        let g = self.read_gate(ev.vector, ext, false)?;
        self.check_gate(&g, &ev, false)?;
        if g.kind == sys_type::TASK_GATE {
            // SDM Vol. 3A §6.12.2 "Interrupt Tasks". The faults of the switch (Table
            // 8-2) happen during delivery: their error codes carry EXT for external
            // events and exceptions (§6.13).
            return self
                .task_switch(g.selector, TaskSwitchSource::Interrupt, ev.error_code)
                .map_err(|f| with_ext(f, ext));
        }
        let (cs, cs_desc, cs_lin) = self.handler_cs(g.selector, ext, false)?;
        let cpl = self.cpu.cpl;
        let v86 = self.cpu.mode == CpuMode::V86;
        let conforming = cs.attr & attr::DC != 0;
        let new_cpl = if conforming { cpl } else { cs.dpl() };
        let gate32 = matches!(g.kind, sys_type::INT_GATE32 | sys_type::TRAP_GATE32);
        let size: u8 = if gate32 { 4 } else { 2 };
        if g.offset > u64::from(cs.limit) {
            return Err(exc(vector::GP, ext));
        }
        let old_flags = self.cpu.flags.get();
        let old_cs = self.cpu.seg[SegReg::Cs as usize].selector;
        let old_ss = self.cpu.seg[SegReg::Ss as usize];
        let old_sp = self.cpu.gpr[4];
        let (mut fr, new_ss) = if new_cpl < cpl {
            let (ss, sp, d, lin) = self.inner_stack(new_cpl, ext)?;
            let width = if ss.attr & attr::DB != 0 { 4 } else { 2 };
            let err = selector_error(ss.selector) | ext;
            (Frame { ss, sp, width, ss_error: err, long: false }, Some((ss, d, lin)))
        } else if v86 {
            // From V86 mode the handler must run at CPL 0 (SDM Vol. 3A §20.3.1.1).
            return Err(exc(vector::GP, selector_error(g.selector) | ext));
        } else {
            let width = if old_ss.attr & attr::DB != 0 { 4 } else { 2 };
            (Frame { ss: old_ss, sp: old_sp, width, ss_error: ext, long: false }, None)
        };
        let pushes = self.with_cpl(new_cpl, |m| -> ExecResult {
            if v86 {
                for s in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
                    let sel = u64::from(m.cpu.seg[s as usize].selector);
                    m.push_frame(&mut fr, sel, size)?;
                }
            }
            if new_ss.is_some() {
                m.push_frame(&mut fr, u64::from(old_ss.selector), size)?;
                m.push_frame(&mut fr, old_sp, size)?;
            }
            m.push_frame(&mut fr, old_flags, size)?;
            m.push_frame(&mut fr, u64::from(old_cs), size)?;
            m.push_frame(&mut fr, m.cpu.rip, size)?;
            if let Some(code) = ev.error_code {
                m.push_frame(&mut fr, u64::from(code), size)?;
            }
            Ok(())
        });
        pushes?;
        // Commit. Descriptor accessed bits are set as the segments are loaded.
        self.mark_descriptor_accessed(cs_desc, cs_lin)?;
        if let Some((mut ss, d, lin)) = new_ss {
            self.mark_descriptor_accessed(d, lin)?;
            ss.attr |= attr::ACCESSED;
            self.cpu.seg[SegReg::Ss as usize] = ss;
        }
        let mask = super::flags::size_mask(fr.width);
        self.cpu.gpr[4] = (self.cpu.gpr[4] & !mask) | (fr.sp & mask);
        if new_ss.is_none() && fr.width == 4 {
            self.cpu.gpr[4] = fr.sp & 0xFFFF_FFFF;
        }
        let mut cs = cs;
        cs.attr |= attr::ACCESSED;
        cs.selector = (cs.selector & !3) | u16::from(new_cpl);
        self.cpu.seg[SegReg::Cs as usize] = cs;
        self.cpu.rip = g.offset;
        if v86 {
            for s in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
                self.cpu.seg[s as usize] = Segment::default();
            }
        }
        self.finish_delivery(g.kind, old_flags);
        Ok(())
    }

    /// IA-32e mode: 64-bit gates, IST, 16-byte stack alignment, SS:RSP always pushed
    /// (SDM Vol. 3A §6.14 "Exception and Interrupt Handling in 64-bit Mode").
    fn deliver_long(&mut self, ev: Event) -> ExecResult {
        let ext = ev.source.ext();
        let g = self.read_gate(ev.vector, ext, true)?;
        self.check_gate(&g, &ev, true)?;
        let (cs, cs_desc, cs_lin) = self.handler_cs(g.selector, ext, true)?;
        if !self.canonical(g.offset) {
            return Err(exc(vector::GP, ext));
        }
        let cpl = self.cpu.cpl;
        let new_cpl = if cs.attr & attr::DC != 0 { cpl } else { cs.dpl() };
        let old_flags = self.cpu.flags.get();
        let old_cs = self.cpu.seg[SegReg::Cs as usize].selector;
        let old_ss = self.cpu.seg[SegReg::Ss as usize].selector;
        let old_rsp = self.cpu.gpr[4];
        // §6.14.4/§6.14.5: the new RSP comes from the IST if the gate names one, else
        // from RSP0-2 of the 64-bit TSS on a privilege change, else it is the current
        // RSP; it is then aligned down to 16 bytes.
        let rsp = if g.ist != 0 {
            let tr = self.cpu.tr;
            let off = tss64::IST1 + 8 * u64::from(g.ist - 1);
            if off + 7 > u64::from(tr.limit) {
                return Err(exc(vector::TS, selector_error(tr.selector) | ext));
            }
            self.system_read_sized(tr.base.wrapping_add(off), 8)?
        } else if new_cpl < cpl {
            self.tss_stack(new_cpl).map_err(|f| with_ext(f, ext))?.1
        } else {
            old_rsp
        } & !0xF;
        let mut fr = Frame { ss: Segment::default(), sp: rsp, width: 8, ss_error: ext, long: true };
        self.with_cpl(new_cpl, |m| -> ExecResult {
            m.push_frame(&mut fr, u64::from(old_ss), 8)?;
            m.push_frame(&mut fr, old_rsp, 8)?;
            m.push_frame(&mut fr, old_flags, 8)?;
            m.push_frame(&mut fr, u64::from(old_cs), 8)?;
            m.push_frame(&mut fr, m.cpu.rip, 8)?;
            if let Some(code) = ev.error_code {
                m.push_frame(&mut fr, u64::from(code), 8)?;
            }
            Ok(())
        })?;
        self.mark_descriptor_accessed(cs_desc, cs_lin)?;
        if new_cpl < cpl {
            // The new SS is a null selector with RPL = new CPL (§6.14.4).
            let ss = &mut self.cpu.seg[SegReg::Ss as usize];
            *ss = Segment {
                selector: u16::from(new_cpl),
                base: 0,
                limit: 0,
                attr: (u16::from(new_cpl) << attr::DPL_SHIFT) | attr::S | attr::RW,
            };
        }
        self.cpu.gpr[4] = fr.sp;
        let mut cs = cs;
        cs.attr |= attr::ACCESSED;
        cs.selector = (cs.selector & !3) | u16::from(new_cpl);
        self.cpu.seg[SegReg::Cs as usize] = cs;
        self.cpu.rip = g.offset;
        self.finish_delivery(g.kind, old_flags);
        Ok(())
    }

    /// The EFLAGS changes of a gate delivery: TF, NT, RF and VM cleared; IF cleared by
    /// interrupt gates (SDM Vol. 3A §6.12.1.3 "Flag Usage By Exception- or
    /// Interrupt-Handler Procedure").
    fn finish_delivery(&mut self, kind: u16, old_flags: u64) {
        let mut clear = TF | NT | RF | VM;
        if matches!(kind, sys_type::INT_GATE16 | sys_type::INT_GATE32) {
            clear |= IF;
        }
        self.cpu.flags.set(old_flags & !clear);
        self.cpu.update_mode();
    }
}
