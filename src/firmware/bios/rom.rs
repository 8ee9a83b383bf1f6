//! The BIOS ROM image: 64 KiB at [`pc::BIOS_BASE`] (segment F000), assembled with
//! iced-x86's `code_asm` when a machine gets its BIOS.
//!
//! The ROM holds only small real-mode stubs; the services themselves run in Rust. A
//! service stub saves DX and AX, writes `AX = (retry << 8) | function` to
//! [`pc::BIOS_CALL_PORT`], and the machine performs the service on the registers, with
//! the caller's AX and DX in the two stack slots and the caller's FLAGS in the IRET
//! frame (see `mod.rs`). The machine then leaves AH = 0 (done) or AH = 1 (the service
//! waits: for a key, or for time to pass): the stub opens a one-instruction interrupt
//! window and calls again with AH = 1, so waiting is a deterministic loop on the
//! instruction clock. Hardware IRQ stubs acknowledge the interrupt at the PICs.
//!
//! Fixed locations follow the IBM PC/AT BIOS (Ralf Brown's Interrupt List, "Memory
//! Map"): the reset vector at F000:FFF0, the release date at F000:FFF5, the model byte
//! at F000:FFFE, the configuration table at F000:E6F5, the diskette parameter table at
//! F000:EFC7.

use hvsim_decoder::iced::code_asm::*;
use hvsim_decoder::iced::BlockEncoderOptions;
use hvsim_devices::pc;

/// The real-mode segment of the ROM.
pub const ROM_SEGMENT: u16 = (pc::BIOS_BASE >> 4) as u16;
/// Offset of the reset vector (F000:FFF0).
pub const RESET_VECTOR: u16 = 0xFFF0;
/// Offset of the BIOS release date, "MM/DD/YY".
pub const DATE_OFFSET: u16 = 0xFFF5;
/// The release date string.
pub const DATE: &[u8; 8] = b"01/01/25";
/// Offset of the system model byte.
pub const MODEL_OFFSET: u16 = 0xFFFE;
/// Model byte: PC/AT.
pub const MODEL_AT: u8 = 0xFC;
/// Submodel byte.
pub const SUBMODEL: u8 = 0x00;
/// BIOS revision level.
pub const BIOS_REVISION: u8 = 0x01;
/// Offset of the INT 15h AH=C0h configuration table.
pub const CONFIG_TABLE_OFFSET: u16 = 0xE6F5;
/// Offset of the diskette parameter table (INT 1Eh vector, INT 13h AH=08h ES:DI).
pub const DISKETTE_PARAMS_OFFSET: u16 = 0xEFC7;

/// Function code of POST (the reset vector's call).
pub const CALL_POST: u8 = 0xF0;
/// Function code of the timer tick (IRQ 0 handler): refreshes the BDA tick count.
pub const CALL_TICK: u8 = 0xF1;

/// The service vectors whose stubs call into Rust, each with the name used in reports.
pub const SERVICES: [(u8, &str); 11] = [
    (0x10, "video"),
    (0x11, "equipment"),
    (0x12, "memory size"),
    (0x13, "disk"),
    (0x14, "serial"),
    (0x15, "system"),
    (0x16, "keyboard"),
    (0x17, "printer"),
    (0x18, "boot failure"),
    (0x19, "bootstrap"),
    (0x1A, "time"),
];

/// The vector of the user timer tick that the IRQ 0 handler chains to.
pub const USER_TICK_VECTOR: u8 = 0x1C;
/// The diskette parameter table vector.
pub const DISKETTE_PARAMS_VECTOR: u8 = 0x1E;
/// The master PIC's vectors (IRQ 0-7) as the BIOS programs them.
pub const MASTER_IRQ_BASE: u8 = 0x08;
/// The slave PIC's vectors (IRQ 8-15).
pub const SLAVE_IRQ_BASE: u8 = 0x70;
/// Non-specific EOI (OCW2).
const EOI: u32 = 0x20;
/// CMOS register C: reading it acknowledges the RTC interrupt (MC146818).
const CMOS_REG_C: u32 = 0x0C;

/// The IBM diskette parameter table for 1.44 MB drives (11 bytes): step rate/head
/// unload, head load/DMA, motor-off delay, 512-byte sectors, 18 sectors per track, gap
/// length, data length, format gap, fill byte, head settle, motor start.
pub const DISKETTE_PARAMS: [u8; 11] =
    [0xAF, 0x02, 0x25, 0x02, 18, 0x1B, 0xFF, 0x6C, 0xF6, 0x0F, 0x08];

/// The assembled ROM and where things are in it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Rom {
    /// The 64 KiB image.
    pub bytes: Vec<u8>,
    /// The IVT entry (offset in segment F000) of each vector; `None` for a null vector.
    #[serde(with = "hvsim_devices::serde_array")]
    pub vectors: [Option<u16>; 256],
    /// POST's entry (the reset vector jumps here).
    pub post: u16,
    /// `cli; hlt` forever: where a failed boot ends.
    pub halt: u16,
}

fn service_stub(a: &mut CodeAssembler, code: u8) -> Result<CodeLabel, IcedError> {
    let mut entry = a.create_label();
    let mut again = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut entry)?;
    a.push(dx)?;
    a.push(ax)?;
    a.mov(ax, u32::from(code))?;
    a.set_label(&mut again)?;
    a.mov(dx, u32::from(pc::BIOS_CALL_PORT))?;
    a.out(dx, ax)?;
    a.test(ah, ah)?;
    a.jz(done)?;
    // Waiting: let one interrupt in (the STI shadow covers the NOP), then call again
    // with AH = 1.
    a.sti()?;
    a.nop()?;
    a.cli()?;
    a.mov(al, u32::from(code))?;
    a.jmp(again)?;
    a.set_label(&mut done)?;
    a.pop(ax)?;
    a.pop(dx)?;
    a.iret()?;
    Ok(entry)
}

/// An IRQ stub: EOI to the master PIC (and first to the slave for IRQ 8-15).
fn irq_stub(a: &mut CodeAssembler, irq: u8) -> Result<CodeLabel, IcedError> {
    let mut entry = a.create_label();
    a.set_label(&mut entry)?;
    a.push(ax)?;
    match irq {
        0 => {
            a.push(dx)?;
            a.mov(ax, u32::from(CALL_TICK))?;
            a.mov(dx, u32::from(pc::BIOS_CALL_PORT))?;
            a.out(dx, ax)?;
            a.pop(dx)?;
            a.int(u32::from(USER_TICK_VECTOR))?;
        }
        // Keyboard: drain the controller's output buffer (keys reach the BIOS through
        // `Machine::push_console_input`).
        1 => a.in_(al, u32::from(pc::I8042_DATA_PORT))?,
        // RTC: read register C, or the RTC raises no further interrupts.
        8 => {
            a.mov(al, CMOS_REG_C)?;
            a.out(u32::from(pc::CMOS_PORT), al)?;
            a.in_(al, u32::from(pc::CMOS_PORT + 1))?;
        }
        _ => {}
    }
    a.mov(al, EOI)?;
    if irq >= 8 {
        a.out(u32::from(pc::PIC_SLAVE_PORT), al)?;
    }
    a.out(u32::from(pc::PIC_MASTER_PORT), al)?;
    a.pop(ax)?;
    a.iret()?;
    Ok(entry)
}

impl Rom {
    /// Assembles the ROM.
    pub fn build() -> Result<Self, String> {
        Self::assemble().map_err(|e| e.to_string())?
    }

    fn assemble() -> Result<Result<Self, String>, IcedError> {
        let mut a = CodeAssembler::new(16)?;
        let mut default_iret = a.create_label();
        a.set_label(&mut default_iret)?;
        a.iret()?;

        let mut post = a.create_label();
        let mut halt = a.create_label();
        a.set_label(&mut post)?;
        a.cli()?;
        a.cld()?;
        a.xor(ax, ax)?;
        a.mov(ss, ax)?;
        a.mov(sp, 0x7C00u32)?;
        a.mov(ax, u32::from(CALL_POST))?;
        a.mov(dx, u32::from(pc::BIOS_CALL_PORT))?;
        a.out(dx, ax)?;
        // POST boots by changing CS:IP; it falls through only when nothing can boot.
        a.set_label(&mut halt)?;
        a.cli()?;
        a.hlt()?;
        a.jmp(halt)?;

        let mut services = Vec::new();
        for (v, _) in SERVICES {
            services.push((v, service_stub(&mut a, v)?));
        }
        let mut irqs = Vec::new();
        for irq in 0..16u8 {
            irqs.push((irq, irq_stub(&mut a, irq)?));
        }

        let res = a.assemble_options(0, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
        let code = &res.inner.code_buffer;
        if code.len() > usize::from(CONFIG_TABLE_OFFSET) {
            return Ok(Err(format!(
                "the ROM code ({} bytes) overlaps its fixed tables",
                code.len()
            )));
        }
        let at = |l: &CodeLabel| res.label_ip(l).map(|ip| ip as u16);

        let mut bytes = vec![0u8; pc::BIOS_SIZE as usize];
        bytes[..code.len()].copy_from_slice(code);
        let iret = at(&default_iret)?;
        let mut vectors = [Some(iret); 256];
        // SeaBIOS leaves the user vectors 60h-66h null.
        for v in &mut vectors[0x60..=0x66] {
            *v = None;
        }
        for (v, l) in &services {
            vectors[usize::from(*v)] = Some(at(l)?);
        }
        for (irq, l) in &irqs {
            let v = if *irq < 8 { MASTER_IRQ_BASE + irq } else { SLAVE_IRQ_BASE + irq - 8 };
            vectors[usize::from(v)] = Some(at(l)?);
        }
        vectors[usize::from(DISKETTE_PARAMS_VECTOR)] = Some(DISKETTE_PARAMS_OFFSET);

        let post = at(&post)?;
        let put = |bytes: &mut Vec<u8>, off: u16, data: &[u8]| {
            bytes[usize::from(off)..usize::from(off) + data.len()].copy_from_slice(data)
        };
        // Reset vector: JMP FAR F000:post.
        let [lo, hi] = post.to_le_bytes();
        let [slo, shi] = ROM_SEGMENT.to_le_bytes();
        put(&mut bytes, RESET_VECTOR, &[0xEA, lo, hi, slo, shi]);
        put(&mut bytes, DATE_OFFSET, DATE);
        put(&mut bytes, MODEL_OFFSET, &[MODEL_AT]);
        put(&mut bytes, CONFIG_TABLE_OFFSET, &config_table());
        put(&mut bytes, DISKETTE_PARAMS_OFFSET, &DISKETTE_PARAMS);
        Ok(Ok(Self { bytes, vectors, post, halt: at(&halt)? }))
    }
}

/// The INT 15h AH=C0h system configuration table: a word with the number of bytes that
/// follow, model, submodel, revision, then feature bytes 1-5. Feature byte 1: bit 6 a
/// second 8259 is present, bit 5 the RTC is present, bit 2 an EBDA is allocated.
fn config_table() -> [u8; 10] {
    let feature1 = (1 << 6) | (1 << 5) | (1 << 2);
    [8, 0, MODEL_AT, SUBMODEL, BIOS_REVISION, feature1, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rom_has_the_reset_vector_and_fixed_tables() {
        let rom = Rom::build().unwrap();
        assert_eq!(rom.bytes.len(), 0x1_0000);
        assert_eq!(rom.bytes[usize::from(RESET_VECTOR)], 0xEA);
        let target = u16::from_le_bytes([rom.bytes[0xFFF1], rom.bytes[0xFFF2]]);
        assert_eq!(target, rom.post);
        assert_eq!(&rom.bytes[0xFFF5..0xFFFD], DATE);
        assert_eq!(rom.bytes[0xFFFE], MODEL_AT);
        assert_eq!(rom.bytes[usize::from(CONFIG_TABLE_OFFSET) + 2], MODEL_AT);
        for (v, _) in SERVICES {
            let off = rom.vectors[usize::from(v)].unwrap();
            // Every service stub starts with PUSH DX; PUSH AX.
            assert_eq!(&rom.bytes[usize::from(off)..usize::from(off) + 2], &[0x52, 0x50]);
        }
        assert_eq!(rom.vectors[0x60], None);
        assert_eq!(rom.vectors[0x1E], Some(DISKETTE_PARAMS_OFFSET));
    }
}
