//! hvsim's built-in BIOS: a ROM of small real-mode stubs (see [`rom`]) whose services
//! run in Rust on the machine's registers and memory.
//!
//! A service stub is entered by INT n (or PUSHF + CALL FAR) in real or virtual-8086
//! mode. It pushes DX and AX and writes `(retry << 8) | function` to
//! [`pc::BIOS_CALL_PORT`]; the OUT handler calls [`call`]. At that point the stack holds
//!
//! ```text
//! SS:SP+0  caller's AX      SS:SP+4  return IP
//! SS:SP+2  caller's DX      SS:SP+6  return CS     SS:SP+8  caller's FLAGS
//! ```
//!
//! [`call`] puts the caller's AX and DX back in the registers (the bits above 15, which
//! the stub does not touch, are the caller's too), runs the service, writes the results'
//! low words back into the two slots (the stub's POP AX/POP DX restore them) and the
//! result flags (CF, ZF) into the FLAGS image that IRET restores. Registers other than
//! AX and DX, and segment registers, are changed in place. The caller's IF is kept.
//!
//! Only a call made from the ROM segment counts: an OUT to the port from anywhere else,
//! or outside real and virtual-8086 mode, is ignored like a write to an unclaimed port.
//!
//! References: Ralf Brown's Interrupt List and the Phoenix BIOS technical reference for
//! the services; SeaBIOS for what a present-day PC BIOS leaves in registers and memory.

pub mod bda;
mod boot;
mod disk;
mod equipment;
mod external;
mod keyboard;
mod post;
pub mod rom;
mod system;
mod time;
mod video;

pub use boot::BOOT_SIGNATURE;
pub use disk::{Geometry, FLOPPY_FORMATS};
pub use external::{RESET_CS_BASE, RESET_IP};
pub use time::{INSNS_PER_SECOND, START_DATE};

use crate::cpu::fault::{unsupported, ExecResult};
use crate::cpu::flags;
use crate::cpu::regs::SegReg;
use crate::cpu::CpuMode;
use crate::machine::Machine;
use hvsim_devices::disk_image::DiskImage;
use hvsim_devices::pc;
use hvsim_mmu::paging::AccessKind;
use hvsim_mmu::Gpa;
use rom::Rom;
use std::collections::VecDeque;

/// A floppy drive or a hard disk.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DriveKind {
    /// A diskette drive: numbers 00h, 01h.
    Floppy,
    /// A fixed disk: numbers 80h, 81h, ...
    HardDisk,
}

/// The first floppy drive number.
pub const FIRST_FLOPPY: u8 = 0x00;
/// The first hard disk number.
pub const FIRST_HARD_DISK: u8 = 0x80;
/// At most two floppy drives (the equipment word has room for four, the BDA for two).
pub const MAX_FLOPPIES: usize = 2;
/// At most four hard disks.
pub const MAX_HARD_DISKS: usize = 4;

/// One drive the BIOS serves.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Drive {
    /// The INT 13h drive number (DL).
    pub number: u8,
    /// Floppy or hard disk.
    pub kind: DriveKind,
    /// The CHS geometry INT 13h reports and uses.
    pub geometry: Geometry,
    /// The medium.
    pub image: DiskImage,
    /// The status of the last operation (INT 13h AH=01h).
    pub(crate) last_status: u8,
}

/// Errors setting up or booting the BIOS.
#[derive(Debug, thiserror::Error)]
pub enum BiosError {
    /// The ROM could not be assembled (a bug in hvsim).
    #[error("assembling the BIOS ROM: {0}")]
    Assemble(String),
    /// The machine has too little RAM for the BIOS's fixed areas.
    #[error("the BIOS needs at least 1M of RAM, the machine has {0} bytes")]
    TooLittleMemory(u64),
    /// Too many drives of one kind.
    #[error("too many {0:?} drives")]
    TooManyDrives(DriveKind),
    /// An image whose size fits no floppy format.
    #[error("{bytes}-byte image: no floppy format is that large (the largest is 2.88M)")]
    NotAFloppy {
        /// The image size.
        bytes: u64,
    },
    /// A machine without a BIOS was asked to boot through it.
    #[error("the machine has no BIOS")]
    NoBios,
    /// An external BIOS image of a size hvsim cannot map.
    #[error("a BIOS image must be a non-empty multiple of 64 KiB, at most 16 MiB: this one is {0} bytes")]
    BadRom(usize),
    /// Guest memory refused a write (the fixed areas lie outside RAM).
    #[error("writing the BIOS data areas: {0}")]
    Memory(String),
}

/// The BIOS's state: its drives, the pending keyboard input, the A20 gate and clocks.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Bios {
    rom: Rom,
    drives: Vec<Drive>,
    /// Keystrokes (scan code << 8 | ASCII) not yet in the BDA keyboard buffer.
    pending_keys: VecDeque<u16>,
    /// The A20 gate as INT 15h AX=2400h-2402h see it. The machine does not mask A20
    /// yet, so this is bookkeeping that the guest can read back.
    a20_enabled: bool,
    /// An INT 15h AH=86h wait in progress: the instruction count at which it ends.
    wait_until: Option<u64>,
    /// The time-of-day clocks (INT 1Ah).
    clock: time::Clock,
}

impl Bios {
    /// A BIOS with no drives.
    pub fn new() -> Result<Self, BiosError> {
        Ok(Self {
            rom: Rom::build().map_err(BiosError::Assemble)?,
            drives: Vec::new(),
            pending_keys: VecDeque::new(),
            a20_enabled: true,
            wait_until: None,
            clock: time::Clock::default(),
        })
    }

    /// Adds a drive and returns its number: floppies are 00h, 01h; hard disks 80h, 81h,
    /// ... in the order added. A floppy's geometry comes from its size (the smallest
    /// standard format that holds it); a hard disk has 16 heads and 63 sectors per track.
    pub fn add_drive(&mut self, kind: DriveKind, image: DiskImage) -> Result<u8, BiosError> {
        let (first, max) = match kind {
            DriveKind::Floppy => (FIRST_FLOPPY, MAX_FLOPPIES),
            DriveKind::HardDisk => (FIRST_HARD_DISK, MAX_HARD_DISKS),
        };
        let count = self.drives.iter().filter(|d| d.kind == kind).count();
        if count >= max {
            return Err(BiosError::TooManyDrives(kind));
        }
        let geometry = match kind {
            DriveKind::Floppy => Geometry::floppy_for(image.len_bytes())
                .ok_or(BiosError::NotAFloppy { bytes: image.len_bytes() })?,
            DriveKind::HardDisk => Geometry::hard_disk_for(image.sectors()),
        };
        let number = first + count as u8;
        self.drives.push(Drive { number, kind, geometry, image, last_status: 0 });
        self.drives.sort_by_key(|d| d.number);
        Ok(number)
    }

    /// The drives, by number.
    pub fn drives(&self) -> &[Drive] {
        &self.drives
    }

    /// A drive by number.
    pub fn drive(&self, number: u8) -> Option<&Drive> {
        self.drives.iter().find(|d| d.number == number)
    }

    pub(crate) fn drive_mut(&mut self, number: u8) -> Option<&mut Drive> {
        self.drives.iter_mut().find(|d| d.number == number)
    }

    fn count(&self, kind: DriveKind) -> u8 {
        self.drives.iter().filter(|d| d.kind == kind).count() as u8
    }

    /// Writes every persistent image's changes to its file.
    pub fn flush_disks(&mut self) -> Result<(), hvsim_devices::disk_image::DiskImageError> {
        for d in &mut self.drives {
            d.image.flush()?;
        }
        Ok(())
    }

    /// The A20 gate state the guest last set through INT 15h.
    pub fn a20_enabled(&self) -> bool {
        self.a20_enabled
    }

    /// The assembled ROM.
    pub fn rom(&self) -> &Rom {
        &self.rom
    }
}

/// What a service asks of its stub.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Return to the caller.
    Done,
    /// Call again (after an interrupt window): the service is waiting.
    Wait,
    /// The service moved the vCPU elsewhere (a bootstrap): the frame is left alone.
    Boot,
}

/// One service call: the BIOS state and the caller's FLAGS image.
pub(crate) struct Call<'a> {
    pub bios: &'a mut Bios,
    /// The FLAGS image IRET restores; services change CF and ZF.
    pub flags: u16,
    /// This is a repeated call of a waiting service.
    pub retry: bool,
}

impl Call<'_> {
    pub fn set_cf(&mut self, on: bool) {
        self.set_flag(flags::CF, on)
    }
    pub fn set_zf(&mut self, on: bool) {
        self.set_flag(flags::ZF, on)
    }
    fn set_flag(&mut self, f: u64, on: bool) {
        if on {
            self.flags |= f as u16
        } else {
            self.flags &= !(f as u16)
        }
    }
}

/// General-purpose register numbers.
pub(crate) mod reg {
    pub const AX: usize = 0;
    pub const CX: usize = 1;
    pub const DX: usize = 2;
    pub const BX: usize = 3;
    pub const BP: usize = 5;
    pub const SI: usize = 6;
    pub const DI: usize = 7;
}

/// Register access in the services' terms.
pub(crate) trait Regs {
    fn r16(&self, r: usize) -> u16;
    fn r32(&self, r: usize) -> u32;
    fn hi(&self, r: usize) -> u8;
    fn lo(&self, r: usize) -> u8;
    fn set_r16(&mut self, r: usize, v: u16);
    fn set_r32(&mut self, r: usize, v: u32);
    fn set_hi(&mut self, r: usize, v: u8);
    fn set_lo(&mut self, r: usize, v: u8);
}

impl Regs for Machine {
    fn r16(&self, r: usize) -> u16 {
        self.cpu.gpr[r] as u16
    }
    fn r32(&self, r: usize) -> u32 {
        self.cpu.gpr[r] as u32
    }
    fn hi(&self, r: usize) -> u8 {
        (self.cpu.gpr[r] >> 8) as u8
    }
    fn lo(&self, r: usize) -> u8 {
        self.cpu.gpr[r] as u8
    }
    fn set_r16(&mut self, r: usize, v: u16) {
        self.cpu.set_reg(r as u8, 2, false, u64::from(v))
    }
    fn set_r32(&mut self, r: usize, v: u32) {
        // Real-mode code sees only the low 32 bits; bits 63:32 are left as they were.
        let g = &mut self.cpu.gpr[r];
        *g = (*g & !0xFFFF_FFFF) | u64::from(v);
    }
    fn set_hi(&mut self, r: usize, v: u8) {
        self.cpu.set_reg(r as u8, 1, true, u64::from(v))
    }
    fn set_lo(&mut self, r: usize, v: u8) {
        self.cpu.set_reg(r as u8, 1, false, u64::from(v))
    }
}

/// The linear address of `seg:off` in real/V86 terms (base + 16-bit offset).
pub(crate) fn seg_lin(m: &Machine, seg: SegReg, off: u16) -> u64 {
    m.cpu.seg(seg).base.wrapping_add(u64::from(off))
}

/// The linear address of a real-mode far pointer.
pub(crate) fn far_lin(segment: u16, off: u16) -> u64 {
    (u64::from(segment) << 4) + u64::from(off)
}

/// Copies guest memory at linear `lin` into `buf`, page by page through translation.
pub(crate) fn read_guest(m: &mut Machine, lin: u64, buf: &mut [u8]) -> ExecResult {
    let mut done = 0usize;
    while done < buf.len() {
        let a = lin.wrapping_add(done as u64);
        let n = (0x1000 - (a & 0xFFF) as usize).min(buf.len() - done);
        let p = m.translate(a, AccessKind::Read)?;
        m.phys_read(Gpa((p.gfn << 12) | (a & 0xFFF)), &mut buf[done..done + n]);
        done += n;
    }
    Ok(())
}

/// Copies `data` to guest memory at linear `lin`; every page is translated before any
/// byte is written. Keeps the decoded-code cache coherent (loaded sectors may be code).
pub(crate) fn write_guest(m: &mut Machine, lin: u64, data: &[u8]) -> ExecResult {
    let mut pages = Vec::new();
    let mut done = 0usize;
    while done < data.len() {
        let a = lin.wrapping_add(done as u64);
        let n = (0x1000 - (a & 0xFFF) as usize).min(data.len() - done);
        let p = m.translate(a, AccessKind::Write)?;
        pages.push((Gpa((p.gfn << 12) | (a & 0xFFF)), done, n));
        done += n;
    }
    for (gpa, at, n) in pages {
        m.phys_write(gpa, &data[at..at + n]);
    }
    Ok(())
}

/// A little-endian value in guest physical memory (the BDA, the IVT, the EBDA).
pub(crate) fn phys_u16(m: &mut Machine, gpa: u64) -> u16 {
    let mut b = [0u8; 2];
    m.phys_read(Gpa(gpa), &mut b);
    u16::from_le_bytes(b)
}

pub(crate) fn phys_u8(m: &mut Machine, gpa: u64) -> u8 {
    let mut b = [0u8; 1];
    m.phys_read(Gpa(gpa), &mut b);
    b[0]
}

/// The OUT to [`pc::BIOS_CALL_PORT`]: performs the BIOS function `value & 0xFF` (see the
/// module comment). Returns a fault for guest-visible failures of the call itself (a
/// stack the frame cannot be read from) and `Unsupported` for services hvsim lacks.
pub fn call(m: &mut Machine, value: u32) -> ExecResult {
    if m.bios.is_none()
        || !matches!(m.cpu.mode, CpuMode::Real | CpuMode::V86)
        || m.cpu.seg(SegReg::Cs).selector != rom::ROM_SEGMENT
    {
        return Ok(());
    }
    let function = value as u8;
    let retry = (value >> 8) & 0xFF != 0;
    let Some(mut bios) = m.bios.take() else { return Ok(()) };
    let r = match function {
        rom::CALL_POST => post::post_and_boot(m, &mut bios),
        rom::CALL_TICK => {
            time::refresh_bda(m, &mut bios);
            Ok(())
        }
        vector => service(m, &mut bios, vector, retry),
    };
    m.bios = Some(bios);
    r
}

/// The stack offset of a frame slot.
const SLOT_AX: u64 = 0;
const SLOT_DX: u64 = 2;
const SLOT_FLAGS: u64 = 8;

fn slot(m: &Machine, off: u64) -> u64 {
    let mask = flags::size_mask(m.cpu.stack_size());
    m.cpu.gpr[4].wrapping_add(off) & mask
}

fn service(m: &mut Machine, bios: &mut Bios, vector: u8, retry: bool) -> ExecResult {
    let ax = m.read_mem(SegReg::Ss, slot(m, SLOT_AX), 2)? as u16;
    let dx = m.read_mem(SegReg::Ss, slot(m, SLOT_DX), 2)? as u16;
    let fl = m.read_mem(SegReg::Ss, slot(m, SLOT_FLAGS), 2)? as u16;
    m.set_r16(reg::AX, ax);
    m.set_r16(reg::DX, dx);
    let mut c = Call { bios, flags: fl, retry };
    time::refresh_bda(m, c.bios);
    let outcome = match vector {
        0x10 => video::int10(m, &mut c)?,
        0x11 => equipment::int11(m, &mut c)?,
        0x12 => equipment::int12(m, &mut c)?,
        0x13 => disk::int13(m, &mut c)?,
        0x15 => system::int15(m, &mut c)?,
        0x16 => keyboard::int16(m, &mut c)?,
        0x18 => boot::int18(m, &mut c)?,
        0x19 => boot::int19(m, &mut c)?,
        0x1A => time::int1a(m, &mut c)?,
        v => {
            let name = rom::SERVICES.iter().find(|(n, _)| *n == v).map_or("?", |(_, s)| s);
            return unsupported(format!("BIOS INT {v:02X}h ({name} services)"));
        }
    };
    if outcome == Outcome::Boot {
        return Ok(());
    }
    let (ax, dx) = (m.r16(reg::AX), m.r16(reg::DX));
    m.write_mem(SegReg::Ss, slot(m, SLOT_AX), 2, u64::from(ax))?;
    m.write_mem(SegReg::Ss, slot(m, SLOT_DX), 2, u64::from(dx))?;
    m.write_mem(SegReg::Ss, slot(m, SLOT_FLAGS), 2, u64::from(c.flags))?;
    let status = if outcome == Outcome::Wait { 0x100 } else { 0 };
    m.set_r16(reg::AX, status | u16::from(vector));
    Ok(())
}

/// Puts the vCPU at `segment:offset` in real mode (a far jump made by the firmware).
pub(crate) fn far_jump(m: &mut Machine, segment: u16, offset: u16) {
    m.cpu.load_seg_real(SegReg::Cs, segment);
    m.cpu.rip = u64::from(offset);
    m.cpu.update_mode();
    m.cpu.end_block = true;
}

impl Machine {
    /// Gives the machine the built-in BIOS: loads its ROM at [`pc::BIOS_BASE`]. The
    /// machine needs at least 1 MiB of RAM. Call [`Machine::boot_bios`] to POST and boot,
    /// or start the vCPU at the reset vector ([`Machine::reset_to_bios`]).
    pub fn install_bios(&mut self, bios: Bios) -> Result<(), BiosError> {
        if self.mem.ram_size() < pc::HIGH_MEMORY {
            return Err(BiosError::TooLittleMemory(self.mem.ram_size()));
        }
        self.load(pc::BIOS_BASE, &bios.rom.bytes).map_err(|e| BiosError::Memory(e.to_string()))?;
        self.bios = Some(Box::new(bios));
        Ok(())
    }

    /// The BIOS, if installed.
    pub fn bios(&self) -> Option<&Bios> {
        self.bios.as_deref()
    }

    /// The BIOS, if installed, mutably.
    pub fn bios_mut(&mut self) -> Option<&mut Bios> {
        self.bios.as_deref_mut()
    }

    /// Runs POST and the INT 19h bootstrap in Rust, leaving the vCPU where the reset
    /// vector's path would leave it: at the boot sector, 0000:7C00, or halted in the ROM
    /// when no drive is bootable (the console says so).
    pub fn boot_bios(&mut self) -> Result<(), BiosError> {
        let mut bios = self.bios.take().ok_or(BiosError::NoBios)?;
        let r = post::post_and_boot(self, &mut bios);
        self.bios = Some(bios);
        r.map_err(|f| BiosError::Memory(format!("{f:?}")))
    }

    /// Puts the vCPU in the state after RESET at the BIOS's reset vector F000:FFF0 (CS
    /// base 0xF0000: hvsim has no ROM alias at the top of 4 GiB yet, so the reset CS base
    /// 0xFFFF0000 is not modelled), so that the ROM's own POST runs.
    pub fn reset_to_bios(&mut self) {
        let (count, rng) = (self.cpu.insn_count, self.cpu.rng_state);
        self.cpu = crate::cpu::Cpu { insn_count: count, rng_state: rng, ..crate::cpu::Cpu::new() };
        far_jump(self, rom::ROM_SEGMENT, rom::RESET_VECTOR);
    }

    /// Queues console input for the BIOS keyboard (INT 16h): each byte becomes a
    /// keystroke in the BDA keyboard buffer (bytes that do not fit wait in a queue).
    /// Ignored without a BIOS.
    pub fn push_console_input(&mut self, bytes: &[u8]) {
        if let Some(mut bios) = self.bios.take() {
            keyboard::push_input(self, &mut bios, bytes);
            self.bios = Some(bios);
        }
    }
}

/// The address of the boot sector.
pub const BOOT_ADDR: u16 = 0x7C00;
