//! IOIO intercepts: the I/O permissions map and EXITINFO1 of VMEXIT_IOIO
//! (APM Vol. 2 §15.10 "I/O Intercepts": §15.10.1 "I/O Permissions Map", §15.10.2
//! "IN and OUT Behavior", Figure 15-2 "EXITINFO1 for IOIO Intercept").
//!
//! The IOPM is 12 KiB, one bit per port: bit `port % 8` of byte `port / 8`. An access of
//! N bytes checks the bits of ports `port .. port + N - 1`; an access that starts at
//! 0xFFFF checks bits past 65535, which is why the map has a third page.

/// Size of the IOPM in bytes (three 4-KiB pages).
pub const IOPM_SIZE: u64 = 0x3000;

/// EXITINFO1 bit 0: TYPE, 1 = IN (read), 0 = OUT (write).
pub const TYPE_IN: u64 = 1 << 0;
/// EXITINFO1 bit 2: STR, a string instruction (INS/OUTS).
pub const STR: u64 = 1 << 2;
/// EXITINFO1 bit 3: REP prefix.
pub const REP: u64 = 1 << 3;
/// EXITINFO1 bit 4: SZ8, 8-bit operand.
pub const SZ8: u64 = 1 << 4;
/// EXITINFO1 bit 5: SZ16, 16-bit operand.
pub const SZ16: u64 = 1 << 5;
/// EXITINFO1 bit 6: SZ32, 32-bit operand.
pub const SZ32: u64 = 1 << 6;
/// EXITINFO1 bit 7: A16, 16-bit address size.
pub const A16: u64 = 1 << 7;
/// EXITINFO1 bit 8: A32, 32-bit address size.
pub const A32: u64 = 1 << 8;
/// EXITINFO1 bit 9: A64, 64-bit address size.
pub const A64: u64 = 1 << 9;
/// EXITINFO1 bits 12:10: the effective segment of a string instruction (ES = 0 ... GS = 5).
pub const SEG_SHIFT: u32 = 10;
/// EXITINFO1 bits 31:16: the port.
pub const PORT_SHIFT: u32 = 16;

/// Byte offset in the IOPM and mask within the 16-bit little-endian word at that offset
/// that cover an access of `size` (1, 2 or 4) bytes to `port`. The word may extend into
/// the byte after `port / 8`; the IOPM is big enough for that even at port 0xFFFF.
pub const fn iopm_bits(port: u16, size: u8) -> (u64, u16) {
    let size = if size == 0 {
        1
    } else if size > 4 {
        4
    } else {
        size
    };
    let offset = (port / 8) as u64;
    let mask = (((1u32 << size) - 1) << (port % 8)) as u16;
    (offset, mask)
}

/// Whether an access of `size` bytes to `port` is intercepted, given a reader of IOPM
/// bytes (`read(offset)` for offsets below [`IOPM_SIZE`]).
pub fn intercepted(mut read: impl FnMut(u64) -> u8, port: u16, size: u8) -> bool {
    let (off, mask) = iopm_bits(port, size);
    let word = u16::from(read(off)) | u16::from(read(off + 1)) << 8;
    word & mask != 0
}

/// The fields of an IN/OUT/INS/OUTS that EXITINFO1 reports.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct IoAccess {
    /// The port.
    pub port: u16,
    /// IN/INS (true) or OUT/OUTS (false).
    pub is_in: bool,
    /// Operand size in bytes: 1, 2 or 4.
    pub size: u8,
    /// Address size in bytes: 2, 4 or 8.
    pub address_size: u8,
    /// INS/OUTS.
    pub string: bool,
    /// REP prefix.
    pub rep: bool,
    /// Effective segment number of a string access (ES = 0, CS, SS, DS, FS, GS = 5);
    /// 0 for IN/OUT.
    pub segment: u8,
}

impl IoAccess {
    /// EXITINFO1 of the VMEXIT_IOIO for this access.
    pub const fn exitinfo1(&self) -> u64 {
        let size = match self.size {
            1 => SZ8,
            2 => SZ16,
            _ => SZ32,
        };
        let asize = match self.address_size {
            2 => A16,
            4 => A32,
            _ => A64,
        };
        (self.port as u64) << PORT_SHIFT
            | ((self.segment & 7) as u64) << SEG_SHIFT
            | asize
            | size
            | if self.rep { REP } else { 0 }
            | if self.string { STR } else { 0 }
            | if self.is_in { TYPE_IN } else { 0 }
    }

    /// Decodes EXITINFO1 (the inverse of [`IoAccess::exitinfo1`]).
    pub const fn decode(info1: u64) -> IoAccess {
        IoAccess {
            port: (info1 >> PORT_SHIFT) as u16,
            is_in: info1 & TYPE_IN != 0,
            size: if info1 & SZ8 != 0 {
                1
            } else if info1 & SZ16 != 0 {
                2
            } else {
                4
            },
            address_size: if info1 & A16 != 0 {
                2
            } else if info1 & A32 != 0 {
                4
            } else {
                8
            },
            string: info1 & STR != 0,
            rep: info1 & REP != 0,
            segment: ((info1 >> SEG_SHIFT) & 7) as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_with(ports: &[u32]) -> Vec<u8> {
        let mut m = vec![0u8; IOPM_SIZE as usize];
        for &p in ports {
            m[(p / 8) as usize] |= 1 << (p % 8);
        }
        m
    }

    #[test]
    fn single_port_bits() {
        assert_eq!(iopm_bits(0x3F8, 1), (0x7F, 1));
        assert_eq!(iopm_bits(0x3FF, 1), (0x7F, 0x80));
        assert_eq!(iopm_bits(0x80, 4), (0x10, 0xF));
    }

    #[test]
    fn multi_byte_access_checks_every_port_it_touches() {
        // APM §15.10.1: a 2-byte access to port 0x3FF checks ports 0x3FF and 0x400,
        // which are in different bytes of the map.
        let m = map_with(&[0x400]);
        let r = |o: u64| m[o as usize];
        assert!(!intercepted(r, 0x3FF, 1));
        assert!(intercepted(r, 0x3FF, 2));
        assert!(intercepted(r, 0x3FE, 4));
        assert!(!intercepted(r, 0x3FC, 4));
    }

    #[test]
    fn port_ffff_spills_into_the_third_page() {
        let m = map_with(&[0x10000]);
        let r = |o: u64| m[o as usize];
        assert!(!intercepted(r, 0xFFFF, 1));
        assert!(intercepted(r, 0xFFFF, 2));
        let (off, _) = iopm_bits(0xFFFF, 4);
        assert!(off + 1 < IOPM_SIZE);
    }

    #[test]
    fn exitinfo1_layout() {
        // OUT DX, AL to 0x3F8 in 64-bit code: port, SZ8, A64.
        let out = IoAccess {
            port: 0x3F8,
            is_in: false,
            size: 1,
            address_size: 8,
            string: false,
            rep: false,
            segment: 0,
        };
        assert_eq!(out.exitinfo1(), 0x03F8_0000 | SZ8 | A64);
        // REP INSW with a 32-bit address size (segment ES).
        let ins =
            IoAccess { is_in: true, size: 2, address_size: 4, string: true, rep: true, ..out };
        assert_eq!(ins.exitinfo1(), 0x03F8_0000 | A32 | SZ16 | REP | STR | TYPE_IN);
        // OUTSD with an FS override.
        let outs = IoAccess { size: 4, address_size: 2, string: true, segment: 4, ..out };
        assert_eq!(outs.exitinfo1(), 0x03F8_0000 | 4 << 10 | A16 | SZ32 | STR);
        for a in [out, ins, outs] {
            assert_eq!(IoAccess::decode(a.exitinfo1()), a);
        }
    }
}
