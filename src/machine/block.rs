//! Fetching and decoding blocks: straight-line runs of instructions within one guest
//! page, ending at the first control transfer. An instruction that crosses a page
//! boundary forms a block of its own, registered on both frames, so a write to either
//! page drops it.

use super::Machine;
use crate::cpu::exec;
use crate::cpu::fault::{gp, Fault};
use crate::cpu::insn::{invalid_opcode, not_emulated, Insn};
use crate::cpu::CpuMode;
use hvsim_decoder::iced::{FlowControl, Instruction};
use hvsim_decoder::{decode, BlockKey, DecodeError, MAX_INSN_LEN};
use hvsim_mmu::paging::AccessKind;
use hvsim_mmu::Gpa;
use std::rc::Rc;

/// Most instructions in one block.
const MAX_BLOCK_INSNS: usize = 64;

/// A decoded block.
pub struct Block {
    /// The instructions, in order.
    pub insns: Vec<Insn>,
}

fn make_insn(i: &Instruction) -> Insn {
    let exec = exec::select(i).unwrap_or(not_emulated);
    Insn::new(i, exec)
}

fn invalid_insn(ip: u64, bitness: u32) -> Insn {
    // A one-byte placeholder; #UD leaves RIP at the instruction, so its length is moot.
    let mut i = Instruction::default();
    i.set_code_size(match bitness {
        64 => hvsim_decoder::iced::CodeSize::Code64,
        32 => hvsim_decoder::iced::CodeSize::Code32,
        _ => hvsim_decoder::iced::CodeSize::Code16,
    });
    i.set_ip(ip);
    i.set_len(1);
    Insn::new(&i, invalid_opcode)
}

/// Instructions that read the instruction-count clock, directly (RDTSC, RDMSR of the
/// TSC) or through a device (port I/O: timers, and the trace hash's record of the count),
/// or record it: INT n, INT3, INTO and INT1 deliver an event the trace hash records with
/// the count; VMRUN, VMLAUNCH and VMRESUME are recorded by the `nested` trace and the
/// failed-entry log. The run loop adds up retired instructions per block, so these must
/// be first in their block to see an exact count (otherwise the count seen would depend
/// on where the block began, which depends on where a run was split, e.g. by a snapshot).
fn reads_clock(i: &Instruction) -> bool {
    use hvsim_decoder::iced::Mnemonic as M;
    matches!(
        i.mnemonic(),
        M::Rdtsc
            | M::Rdtscp
            | M::Rdmsr
            | M::Wrmsr
            | M::In
            | M::Out
            | M::Insb
            | M::Insw
            | M::Insd
            | M::Outsb
            | M::Outsw
            | M::Outsd
            | M::Int
            | M::Int1
            | M::Int3
            | M::Into
            | M::Vmrun
            | M::Vmlaunch
            | M::Vmresume
    )
}

impl Machine {
    /// The linear address of CS:RIP, with the CS limit check of the mode.
    pub(super) fn fetch_linear(&self) -> Result<u64, Fault> {
        let rip = self.cpu.rip;
        if self.cpu.mode == CpuMode::Long64 {
            if !self.canonical(rip) {
                return gp(0);
            }
            return Ok(rip);
        }
        let cs = &self.cpu.seg[1];
        if rip > u64::from(cs.limit) {
            return gp(0);
        }
        Ok(cs.base.wrapping_add(rip) & 0xFFFF_FFFF)
    }

    /// The block at CS:RIP, from the cache or freshly decoded.
    pub(crate) fn fetch_block(&mut self) -> Result<Rc<Block>, Fault> {
        let lin = self.fetch_linear()?;
        let p = self.translate(lin, AccessKind::Fetch)?;
        let gpa = (p.gfn << 12) | (lin & 0xFFF);
        let key = BlockKey { gpa, ip: self.cpu.rip, bitness: self.cpu.code_bits };
        if let Some(b) = self.code.get(key) {
            return Ok(b);
        }
        self.decode_block(key, lin)
    }

    #[cold]
    fn decode_block(&mut self, key: BlockKey, lin: u64) -> Result<Rc<Block>, Fault> {
        let bitness = u32::from(key.bitness);
        let ip_mask = self.cpu.ip_mask();
        let page_left = (0x1000 - (key.gpa & 0xFFF)) as usize;
        let mut buf = vec![0u8; page_left];
        self.phys_read(Gpa(key.gpa), &mut buf);
        let mut insns = Vec::new();
        let mut off = 0usize;
        let mut ip = key.ip;
        let mut frames = vec![key.gpa >> 12];
        while off < page_left && insns.len() < MAX_BLOCK_INSNS {
            let avail = &buf[off..];
            let decoded = match decode(bitness, &avail[..avail.len().min(MAX_INSN_LEN)], ip) {
                Err(DecodeError::NeedMore) => {
                    if !insns.is_empty() {
                        break; // the straddling instruction starts a block of its own
                    }
                    // Fetch the rest from the next page (this may #PF, as it should).
                    let next_lin = (lin & !0xFFF).wrapping_add(0x1000);
                    let p2 = self.translate(next_lin, AccessKind::Fetch)?;
                    let mut bytes = avail.to_vec();
                    let mut rest = vec![0u8; MAX_INSN_LEN - bytes.len()];
                    self.phys_read(Gpa(p2.gfn << 12), &mut rest);
                    bytes.extend_from_slice(&rest);
                    frames.push(p2.gfn);
                    let mut i = match decode(bitness, &bytes, ip) {
                        Ok(i) => make_insn(&i),
                        Err(_) => invalid_insn(ip, bitness),
                    };
                    i.bytes[..MAX_INSN_LEN].copy_from_slice(&bytes[..MAX_INSN_LEN]);
                    insns.push(i);
                    break;
                }
                Err(DecodeError::Invalid) => {
                    insns.push(invalid_insn(ip, bitness));
                    break;
                }
                Ok(i) => i,
            };
            if !insns.is_empty() && reads_clock(&decoded) {
                break; // it starts the next block, where the retired count is exact
            }
            let flow = decoded.flow_control();
            let len = decoded.len();
            let mut insn = make_insn(&decoded);
            insn.bytes[..len].copy_from_slice(&avail[..len]);
            insns.push(insn);
            off += len;
            ip = ip.wrapping_add(len as u64) & ip_mask;
            if flow != FlowControl::Next {
                break;
            }
        }
        Ok(self.cache_block(key, &frames, Block { insns }))
    }
}
