//! hvsim's instruction decoding: iced-x86 behind one small API, and the cache of decoded
//! code keyed by guest-physical address.
//!
//! This crate alone chooses iced-x86's features and decoder options; the rest of hvsim
//! reaches iced through the re-export [`iced`].
#![forbid(unsafe_code)]

pub mod cache;

pub use cache::{BlockCache, BlockKey, CacheStats};
pub use iced_x86 as iced;

use iced_x86::{Decoder, DecoderError, DecoderOptions, Instruction};

/// The longest legal x86 instruction, in bytes.
pub const MAX_INSN_LEN: usize = 15;

/// Why bytes did not decode to an instruction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are not a valid instruction in this mode (the CPU raises #UD).
    Invalid,
    /// More bytes are needed than were given.
    NeedMore,
}

/// Decodes one instruction of `bitness` (16, 32 or 64) from `bytes`, as if located at
/// instruction pointer `ip`.
#[inline]
pub fn decode(bitness: u32, bytes: &[u8], ip: u64) -> Result<Instruction, DecodeError> {
    let mut d = Decoder::with_ip(bitness, bytes, ip, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    d.decode_out(&mut insn);
    match d.last_error() {
        DecoderError::None => Ok(insn),
        DecoderError::NoMoreBytes => {
            if bytes.len() >= MAX_INSN_LEN {
                Err(DecodeError::Invalid)
            } else {
                Err(DecodeError::NeedMore)
            }
        }
        _ => Err(DecodeError::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Code, Mnemonic};

    #[test]
    fn decodes_in_each_bitness() {
        // 0x40 is INC EAX in 16/32-bit mode and a REX prefix in 64-bit mode.
        let i = decode(32, &[0x40], 0).unwrap();
        assert_eq!(i.code(), Code::Inc_r32);
        assert_eq!(decode(64, &[0x40], 0), Err(DecodeError::NeedMore));
        let i = decode(64, &[0x48, 0x01, 0xd8], 0x1000).unwrap();
        assert_eq!(i.mnemonic(), Mnemonic::Add);
        assert_eq!(i.len(), 3);
        assert_eq!(i.next_ip(), 0x1003);
        let i = decode(16, &[0xb8, 0x34, 0x12], 0).unwrap();
        assert_eq!(i.immediate16(), 0x1234);
    }

    #[test]
    fn invalid_and_overlong() {
        assert_eq!(
            decode(64, &[0x06, 0x90, 0x90, 0x90], 0),
            Err(DecodeError::Invalid)
        );
        assert_eq!(decode(32, &[0x66; 15], 0), Err(DecodeError::Invalid));
    }
}
