//! Hardware task switching (SDM Vol. 3A Chapter 8 "Task Management"): JMP/CALL to a TSS
//! descriptor or task gate, a task gate in the IDT, and IRET with EFLAGS.NT set; and the
//! TSS fields other parts of the CPU read (the inner-level stacks for a privilege change).
//!
//! A task switch has a commit point (SDM Vol. 3A §8.3 "Task Switching", steps 1-11):
//! checks before it leave the state unchanged; once the old state is saved and TR loaded,
//! faults while loading the new task's LDTR and segment registers are raised "in the
//! context of the new task" with the new task's registers and selectors in place.

use super::debug::{DR6_BT, DR7_LOCAL_ENABLES, TSS_T};
use super::fault::{gp, np, ExecResult, Fault};
use super::flags::NT;
use super::regs::{attr, cr0, efer, SegReg, Segment};
use super::segment::{exception, segment_from_descriptor, selector_error, sys_type, ts, StackLoad};
use super::{vector, CpuMode};
use crate::machine::Machine;

/// What started a task switch; it decides the busy-bit, NT and back-link handling
/// (SDM Vol. 3A §8.3 "Task Switching", Table 8-2).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TaskSwitchSource {
    /// JMP to a TSS descriptor or task gate.
    Jmp,
    /// CALL to a TSS descriptor or task gate.
    Call,
    /// IRET with EFLAGS.NT = 1 (return to the task in the back link).
    Iret,
    /// An exception or interrupt through a task gate in the IDT.
    Interrupt,
}

impl TaskSwitchSource {
    /// CALL, exceptions and interrupts nest: the new task gets NT = 1 and a back link,
    /// and the old task stays busy (SDM Vol. 3A Table 8-3 "Effect of a Task Switch on
    /// Busy Flag, NT Flag, Previous Task Link Field, and TS Flag").
    fn nests(self) -> bool {
        matches!(self, Self::Call | Self::Interrupt)
    }
}

/// 32-bit TSS layout (SDM Vol. 3A §8.2.1 "Task-State Segment (TSS)", Figure 8-2).
pub mod tss32 {
    /// Previous task link.
    pub const LINK: u64 = 0x00;
    /// ESP0; ESP for privilege level n is at `ESP0 + 8 * n`, SS at `ESP0 + 8 * n + 4`.
    pub const ESP0: u64 = 0x04;
    /// CR3 (PDBR).
    pub const CR3: u64 = 0x1C;
    /// EIP.
    pub const EIP: u64 = 0x20;
    /// EFLAGS.
    pub const EFLAGS: u64 = 0x24;
    /// EAX; the eight GPRs follow in encoding order (EAX, ECX, EDX, EBX, ESP, EBP, ESI,
    /// EDI), 4 bytes each.
    pub const EAX: u64 = 0x28;
    /// ES; the six segment selectors follow in encoding order (ES, CS, SS, DS, FS,
    /// GS), 4 bytes apart.
    pub const ES: u64 = 0x48;
    /// LDT segment selector.
    pub const LDT: u64 = 0x60;
    /// Debug trap flag (bit 0).
    pub const TRAP: u64 = 0x64;
    /// I/O map base address.
    pub const IOMAP_BASE: u64 = 0x66;
    /// The smallest valid TSS limit.
    pub const MIN_LIMIT: u32 = 0x67;
    /// The dynamic fields a task switch saves: `EIP` up to the end of GS.
    pub const DYNAMIC: (u64, u64) = (EIP, ES + 6 * 4 - 2);
}

/// 16-bit TSS layout (SDM Vol. 3A §8.6 "16-Bit Task-State Segment (TSS)", Figure 8-11).
pub mod tss16 {
    /// Previous task link.
    pub const LINK: u64 = 0x00;
    /// SP0; SP for privilege level n is at `SP0 + 4 * n`, SS at `SP0 + 4 * n + 2`.
    pub const SP0: u64 = 0x02;
    /// IP.
    pub const IP: u64 = 0x0E;
    /// FLAGS.
    pub const FLAGS: u64 = 0x10;
    /// AX; the eight GPRs follow in encoding order, 2 bytes each.
    pub const AX: u64 = 0x12;
    /// ES; ES, CS, SS, DS follow, 2 bytes apart.
    pub const ES: u64 = 0x22;
    /// LDT segment selector.
    pub const LDT: u64 = 0x2A;
    /// The smallest valid TSS limit.
    pub const MIN_LIMIT: u32 = 0x2B;
    /// The dynamic fields a task switch saves: `IP` up to the end of DS.
    pub const DYNAMIC: (u64, u64) = (IP, ES + 4 * 2 - 2);
}

/// 64-bit TSS layout (SDM Vol. 3A §8.7 "Task Management in 64-bit Mode", Figure 8-11).
pub mod tss64 {
    /// RSP0; RSP for privilege level n is at `RSP0 + 8 * n`.
    pub const RSP0: u64 = 0x04;
    /// IST1; IST n is at `IST1 + 8 * (n - 1)`.
    pub const IST1: u64 = 0x24;
    /// I/O map base address.
    pub const IOMAP_BASE: u64 = 0x66;
}

/// The new task's state as read from its TSS before the commit point.
struct TaskState {
    eip: u64,
    eflags: u64,
    gpr: [u64; 8],
    /// ES, CS, SS, DS, FS, GS.
    sel: [u16; 6],
    ldt: u16,
    cr3: u64,
    /// The debug trap flag T (32-bit TSS only).
    trap: bool,
}

/// Whether a TSS descriptor type (S = 0) is the 32-bit (or 64-bit) form.
fn big_tss(attr: u16) -> bool {
    attr & 8 != 0
}

impl Machine {
    /// Switches to the task whose TSS descriptor `tss_selector` names (a task gate has
    /// already been resolved to its TSS selector; its DPL checks are the caller's). For
    /// `Interrupt` sources with an error code, the code is pushed on the new task's stack
    /// after the switch. On success CS:EIP is the new task's.
    ///
    /// Selector error codes carry EXT = 0: a caller delivering an external event sets it.
    pub fn task_switch(
        &mut self,
        tss_selector: u16,
        source: TaskSwitchSource,
        error_code: Option<u32>,
    ) -> ExecResult {
        // SDM Vol. 3A §8.7: "hardware task switches are not supported in IA-32e mode".
        if self.cpu.efer & efer::LMA != 0 {
            return gp(0);
        }
        // The nested layers: an SVM task-switch intercept (unwinds like a fault) or a
        // VMX task-switch exit (unconditional in non-root operation).
        crate::nested::svm::intercepts::task_switch(self, tss_selector, source, error_code)?;
        if crate::nested::task_switch_exits(self, tss_selector, source) {
            return Ok(());
        }
        let sel = tss_selector;
        let err = selector_error(sel);
        // IRET finds a bad back link: #TS; JMP/CALL/INT find a bad TSS descriptor: #GP.
        let invalid = if source == TaskSwitchSource::Iret { vector::TS } else { vector::GP };
        if sel & 4 != 0 {
            return exception(invalid, err);
        }
        let (desc, desc_lin) = self.read_descriptor_or(sel, invalid)?;
        let new = segment_from_descriptor(sel, desc);
        let ty = new.attr & (attr::S | 0xF);
        let is_tss = matches!(
            ty,
            sys_type::TSS16_AVAIL
                | sys_type::TSS16_BUSY
                | sys_type::TSS32_AVAIL
                | sys_type::TSS32_BUSY
        );
        // JMP/CALL/INT need an available TSS, IRET a busy one (SDM §8.3 step 4).
        let busy = ty & sys_type::TSS_BUSY_BIT != 0;
        if !is_tss || busy != (source == TaskSwitchSource::Iret) {
            return exception(invalid, err);
        }
        // Table 8-2 rows 1 and 2.
        if !new.present() {
            return np(err);
        }
        let big = big_tss(new.attr);
        if new.limit < if big { tss32::MIN_LIMIT } else { tss16::MIN_LIMIT } {
            return ts(err);
        }
        let old = self.cpu.tr;
        let old_big = big_tss(old.attr);
        let (dyn_start, dyn_end) = if old_big { tss32::DYNAMIC } else { tss16::DYNAMIC };
        // The old TSS must hold the fields the switch saves (as Bochs does; the SDM's
        // table lists only the new TSS's limit).
        if u64::from(old.limit) < dyn_end + 1 {
            return ts(selector_error(old.selector));
        }
        // Everything that can fault on memory happens before the first write (§8.3 step
        // 5: the TSSs and descriptors must be paged in): read the new state, probe the
        // old TSS's dynamic fields and (when nesting) the new back link.
        let state = self.read_task_state(new.base, big)?;
        self.probe_system_write(old.base.wrapping_add(dyn_start), dyn_end + 2 - dyn_start)?;
        if source.nests() {
            self.probe_system_write(new.base, 2)?;
        }
        if matches!(source, TaskSwitchSource::Jmp | TaskSwitchSource::Iret)
            && old.selector & 0xFFFC != 0
        {
            self.set_tss_busy(old.selector, false)?;
        }
        let mut old_flags = self.cpu.flags.get();
        if source == TaskSwitchSource::Iret {
            old_flags &= !NT;
        }
        self.save_task_state(old.base, old_big, old_flags)?;
        if source.nests() {
            self.system_write_sized(
                new.base.wrapping_add(tss32::LINK),
                2,
                u64::from(old.selector),
            )?;
        }
        if source != TaskSwitchSource::Iret {
            let b = ((desc >> 40) as u8) | sys_type::TSS_BUSY_BIT as u8;
            self.system_write_sized(desc_lin.wrapping_add(5), 1, u64::from(b))?;
        }
        // ---- commit point ----
        // From here a fault belongs to the new task: it is delivered with the new task's
        // CS:EIP, not restarted at the switching instruction.
        self.cpu.rip_committed = true;
        self.cpu.tr = Segment { attr: new.attr | sys_type::TSS_BUSY_BIT, ..new };
        self.cpu.cr0 |= cr0::TS;
        self.cpu.dr[7] &= !DR7_LOCAL_ENABLES;
        let loaded = self.load_task_state(&state, big, source);
        self.cpu.update_mode();
        loaded?;
        if state.trap {
            // SDM Vol. 3A §18.3.1.5 "Task-Switch Exception Condition": "The debug
            // exception is generated after the task switch has completed, before the
            // first instruction of the new task begins executing" (a trap, DR6.BT).
            self.cpu.debug.pending |= DR6_BT;
        }
        if let (TaskSwitchSource::Interrupt, Some(code)) = (source, error_code) {
            self.push(u64::from(code), if big { 4 } else { 2 })?;
        }
        // SDM Vol. 2A "JMP"/"CALL", Vol. 2B "IRET", "INT n": after the switch, "IF EIP
        // not within code segment limit THEN #GP(0)".
        if self.cpu.rip > u64::from(self.cpu.seg[SegReg::Cs as usize].limit) {
            return gp(0);
        }
        self.cpu.rip_committed = false;
        Ok(())
    }

    /// IRET with EFLAGS.NT = 1 outside IA-32e mode: switches back to the task named by the
    /// current TSS's back link (SDM Vol. 2B "IRET", TASK-RETURN).
    pub fn task_return(&mut self) -> ExecResult {
        if self.cpu.efer & efer::LMA != 0 {
            return gp(0);
        }
        let link = self.system_read_sized(self.cpu.tr.base.wrapping_add(tss32::LINK), 2)? as u16;
        self.task_switch(link, TaskSwitchSource::Iret, None)
    }

    /// The inner-level stack for privilege level `pl` from the current TSS (SDM Vol. 3A
    /// §5.8.5 "Stack Switching"; Vol. 2A "CALL" MORE-PRIVILEGE): SS:ESP from a 32-bit or
    /// 16-bit TSS, or (IA-32e mode) RSP from the 64-bit TSS with a null SS whose RPL is
    /// `pl`. A field beyond the TSS limit is #TS(TR selector).
    pub fn tss_stack(&mut self, pl: u8) -> Result<(u16, u64), Fault> {
        let tr = self.cpu.tr;
        let err = selector_error(tr.selector);
        let pl64 = u64::from(pl);
        let limit = u64::from(tr.limit);
        if self.cpu.efer & efer::LMA != 0 {
            let at = tss64::RSP0 + 8 * pl64;
            if at + 7 > limit {
                return ts(err);
            }
            let rsp = self.system_read_sized(tr.base.wrapping_add(at), 8)?;
            Ok((u16::from(pl), rsp))
        } else if big_tss(tr.attr) {
            let at = tss32::ESP0 + 8 * pl64;
            if at + 5 > limit {
                return ts(err);
            }
            let ss = self.system_read_sized(tr.base.wrapping_add(at + 4), 2)? as u16;
            let esp = self.system_read_sized(tr.base.wrapping_add(at), 4)?;
            Ok((ss, esp))
        } else {
            let at = tss16::SP0 + 4 * pl64;
            if at + 3 > limit {
                return ts(err);
            }
            let ss = self.system_read_sized(tr.base.wrapping_add(at + 2), 2)? as u16;
            let sp = self.system_read_sized(tr.base.wrapping_add(at), 2)?;
            Ok((ss, sp))
        }
    }

    /// Sets or clears the busy bit of the TSS descriptor `sel` names in the GDT.
    fn set_tss_busy(&mut self, sel: u16, busy: bool) -> ExecResult {
        let lin = self.cpu.gdtr.base.wrapping_add(u64::from(sel & 0xFFF8)).wrapping_add(5);
        let b = self.system_read_sized(lin, 1)? as u8;
        let bit = sys_type::TSS_BUSY_BIT as u8;
        self.system_write_sized(lin, 1, u64::from(if busy { b | bit } else { b & !bit }))
    }

    fn read_task_state(&mut self, base: u64, big: bool) -> Result<TaskState, Fault> {
        let rd =
            |m: &mut Machine, off: u64, size: u8| m.system_read_sized(base.wrapping_add(off), size);
        let mut st =
            TaskState { eip: 0, eflags: 0, gpr: [0; 8], sel: [0; 6], ldt: 0, cr3: 0, trap: false };
        if big {
            st.cr3 = rd(self, tss32::CR3, 4)?;
            st.eip = rd(self, tss32::EIP, 4)?;
            st.eflags = rd(self, tss32::EFLAGS, 4)?;
            for (n, r) in st.gpr.iter_mut().enumerate() {
                *r = rd(self, tss32::EAX + 4 * n as u64, 4)?;
            }
            for (n, s) in st.sel.iter_mut().enumerate() {
                *s = rd(self, tss32::ES + 4 * n as u64, 2)? as u16;
            }
            st.ldt = rd(self, tss32::LDT, 2)? as u16;
            st.trap = rd(self, tss32::TRAP, 2)? & TSS_T != 0;
        } else {
            st.eip = rd(self, tss16::IP, 2)?;
            st.eflags = rd(self, tss16::FLAGS, 2)?;
            // The upper halves of the GPRs are undefined after a switch to a 16-bit
            // task; hvsim sets them to 0xFFFF, as 386-class processors did.
            for (n, r) in st.gpr.iter_mut().enumerate() {
                *r = 0xFFFF_0000 | rd(self, tss16::AX + 2 * n as u64, 2)?;
            }
            // ES, CS, SS, DS; a 16-bit TSS has no FS/GS: they become null.
            for (n, s) in st.sel.iter_mut().take(4).enumerate() {
                *s = rd(self, tss16::ES + 2 * n as u64, 2)? as u16;
            }
            st.ldt = rd(self, tss16::LDT, 2)? as u16;
        }
        Ok(st)
    }

    fn save_task_state(&mut self, base: u64, big: bool, eflags: u64) -> ExecResult {
        let c = task_view(&self.cpu);
        let wr = |m: &mut Machine, off: u64, size: u8, v: u64| {
            m.system_write_sized(base.wrapping_add(off), size, v)
        };
        if big {
            wr(self, tss32::EIP, 4, c.rip)?;
            wr(self, tss32::EFLAGS, 4, eflags)?;
            for (n, r) in c.gpr.iter().enumerate() {
                wr(self, tss32::EAX + 4 * n as u64, 4, *r)?;
            }
            for (n, s) in c.sel.iter().enumerate() {
                wr(self, tss32::ES + 4 * n as u64, 2, u64::from(*s))?;
            }
        } else {
            wr(self, tss16::IP, 2, c.rip)?;
            wr(self, tss16::FLAGS, 2, eflags)?;
            for (n, r) in c.gpr.iter().enumerate() {
                wr(self, tss16::AX + 2 * n as u64, 2, *r)?;
            }
            for (n, s) in c.sel.iter().take(4).enumerate() {
                wr(self, tss16::ES + 2 * n as u64, 2, u64::from(*s))?;
            }
        }
        Ok(())
    }

    /// Loads the new task's registers, then its LDTR and segment registers with their
    /// checks, after the commit point (SDM Vol. 3A §8.3 steps 12-13, Table 8-2). The
    /// checks run in the order LDTR, SS, DS/ES/FS/GS, CS; CPL is the new CS selector's
    /// RPL.
    fn load_task_state(
        &mut self,
        st: &TaskState,
        big: bool,
        source: TaskSwitchSource,
    ) -> ExecResult {
        let mut eflags = st.eflags;
        if source.nests() {
            eflags |= NT;
        }
        self.cpu.rip = st.eip;
        self.cpu.gpr[..8].copy_from_slice(&st.gpr);
        self.cpu.flags.set(eflags);
        // The selectors are loaded first, with unusable caches until qualified.
        for s in SegReg::ALL {
            self.cpu.seg[s as usize] =
                Segment { selector: st.sel[s as usize], ..Segment::default() };
        }
        self.cpu.ldtr = Segment { selector: st.ldt, ..Segment::default() };
        self.cpu.update_mode();
        if big && self.cpu.paging() {
            // The CR3 load of a task switch is MOV CR3's (SDM Vol. 3A §8.3 step 12,
            // §4.4.1 "PDPTE Registers": with PAE paging the PDPTEs are loaded from the
            // new CR3, and an invalid one is #GP(0) in the new task; non-global TLB
            // entries are invalidated, §4.10.4.1).
            super::exec::write_cr3(self, st.cr3)?;
        }
        // LDTR: in the GDT, an LDT descriptor, present; else #TS(LDT selector).
        let ldt_err = selector_error(st.ldt);
        if st.ldt & 4 != 0 {
            return ts(ldt_err);
        }
        if st.ldt & 0xFFFC != 0 {
            let (d, _) = self.read_descriptor_or(st.ldt, vector::TS)?;
            let ldt = segment_from_descriptor(st.ldt, d);
            if ldt.attr & (attr::S | 0xF) != sys_type::LDT || !ldt.present() {
                return ts(ldt_err);
            }
            self.cpu.ldtr = ldt;
        }
        if self.cpu.mode == CpuMode::V86 {
            for s in SegReg::ALL {
                self.cpu.load_seg_real(s, st.sel[s as usize]);
            }
            self.cpu.seg[SegReg::Cs as usize].attr |= attr::CODE;
            return Ok(());
        }
        let cpl = (st.sel[SegReg::Cs as usize] & 3) as u8;
        let ss_sel = st.sel[SegReg::Ss as usize];
        let (ss, d, lin) = self.stack_segment(ss_sel, cpl, StackLoad::TaskSwitch)?;
        if let Some(lin) = lin {
            self.mark_descriptor_accessed(d, lin)?;
        }
        self.cpu.seg[SegReg::Ss as usize] = ss;
        for s in [SegReg::Ds, SegReg::Es, SegReg::Fs, SegReg::Gs] {
            self.task_data_segment(s, st.sel[s as usize], cpl)?;
        }
        self.task_code_segment(st.sel[SegReg::Cs as usize])
    }

    /// DS/ES/FS/GS for a new task (Table 8-2 rows 13-16): null is allowed; otherwise a
    /// data or readable code segment (#TS), DPL >= CPL and RPL unless conforming (#TS),
    /// present (#NP).
    fn task_data_segment(&mut self, s: SegReg, sel: u16, cpl: u8) -> ExecResult {
        if sel & 0xFFFC == 0 {
            self.cpu.seg[s as usize] = self.null_segment(s, sel, cpl);
            return Ok(());
        }
        let err = selector_error(sel);
        let (d, lin) = self.read_descriptor_or(sel, vector::TS)?;
        let mut seg = segment_from_descriptor(sel, d);
        let code = seg.attr & attr::CODE != 0;
        if seg.attr & attr::S == 0 || (code && seg.attr & attr::RW == 0) {
            return ts(err);
        }
        let conforming = code && seg.attr & attr::DC != 0;
        let rpl = (sel & 3) as u8;
        if !conforming && (rpl > seg.dpl() || cpl > seg.dpl()) {
            return ts(err);
        }
        if !seg.present() {
            return np(err);
        }
        self.mark_descriptor_accessed(d, lin)?;
        seg.attr |= attr::ACCESSED;
        self.cpu.seg[s as usize] = seg;
        Ok(())
    }

    /// CS for a new task (Table 8-2 rows 5, 10, 11): a code segment (#TS) whose DPL
    /// equals the selector's RPL (non-conforming) or is at most it (conforming) (#TS),
    /// present (#NP).
    fn task_code_segment(&mut self, sel: u16) -> ExecResult {
        let err = selector_error(sel);
        if sel & 0xFFFC == 0 {
            return ts(err);
        }
        let (d, lin) = self.read_descriptor_or(sel, vector::TS)?;
        let mut seg = segment_from_descriptor(sel, d);
        if seg.attr & (attr::S | attr::CODE) != attr::S | attr::CODE {
            return ts(err);
        }
        let rpl = (sel & 3) as u8;
        let bad = if seg.attr & attr::DC != 0 { seg.dpl() > rpl } else { seg.dpl() != rpl };
        if bad {
            return ts(err);
        }
        if !seg.present() {
            return np(err);
        }
        self.mark_descriptor_accessed(d, lin)?;
        seg.attr |= attr::ACCESSED;
        self.cpu.seg[SegReg::Cs as usize] = seg;
        Ok(())
    }
}

/// The registers a task switch saves.
struct TaskView {
    rip: u64,
    gpr: [u64; 8],
    sel: [u16; 6],
}

fn task_view(c: &super::Cpu) -> TaskView {
    let mut gpr = [0; 8];
    gpr.copy_from_slice(&c.gpr[..8]);
    TaskView { rip: c.rip, gpr, sel: c.seg.map(|s| s.selector) }
}
