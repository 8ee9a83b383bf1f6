//! The multiboot header (Multiboot Specification 0.6.96 §3.1 "OS image format"): where it
//! is, what its flags ask for, and the a.out kludge's address fields.

use super::MultibootError;

/// The header's magic value (§3.1.2 "The magic fields of Multiboot header").
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// The header must lie entirely within the image's first 8192 bytes (§3.1.1).
pub const SEARCH_LIMIT: usize = 8192;
/// The header is 32-bit aligned.
pub const HEADER_ALIGN: usize = 4;
/// magic, flags, checksum.
pub const BASE_LEN: usize = 12;
/// ... + header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr (flag bit 16).
pub const AOUT_LEN: usize = 32;

/// Header flag bits (§3.1.2). Bits 0-15 are requirements: a boot loader that does not
/// understand one must refuse the image; bits 16-31 are optional features.
pub mod flags {
    /// Bit 0: align boot modules on 4 KiB page boundaries.
    pub const PAGE_ALIGN: u32 = 1 << 0;
    /// Bit 1: the information structure must give mem_* (and the memory map if known).
    pub const MEMORY_INFO: u32 = 1 << 1;
    /// Bit 2: the video mode table must be available.
    pub const VIDEO_MODE: u32 = 1 << 2;
    /// Bit 16: the address fields (the "a.out kludge") are valid; load by them.
    pub const AOUT_KLUDGE: u32 = 1 << 16;
    /// The requirement bits (0-15).
    pub const REQUIRED_MASK: u32 = 0xFFFF;
    /// The requirement bits hvsim fulfils.
    pub const SUPPORTED_REQUIRED: u32 = PAGE_ALIGN | MEMORY_INFO;
}

/// The a.out kludge's address fields (§3.1.3), all physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AoutAddresses {
    /// Where the header's first byte is to be loaded.
    pub header_addr: u32,
    /// Where the text segment starts.
    pub load_addr: u32,
    /// End of the data segment; 0: the rest of the file.
    pub load_end_addr: u32,
    /// End of the bss; 0: no bss.
    pub bss_end_addr: u32,
    /// The entry point.
    pub entry_addr: u32,
}

/// A valid multiboot header found in an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Offset of the header in the image file.
    pub offset: usize,
    /// The flags word.
    pub flags: u32,
    /// The address fields, if flag bit 16 is set.
    pub aout: Option<AoutAddresses>,
}

fn u32_at(image: &[u8], off: usize) -> Option<u32> {
    let b = image.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Finds and checks the header: the first 32-bit aligned position in the first 8 KiB
/// where magic, flags and checksum sum to 0 (mod 2^32).
pub fn find(image: &[u8]) -> Result<Header, MultibootError> {
    let mut bad_checksum = None;
    let end = image.len().min(SEARCH_LIMIT);
    let mut off = 0;
    while off + BASE_LEN <= end {
        if u32_at(image, off) == Some(HEADER_MAGIC) {
            let flags = u32_at(image, off + 4).unwrap_or(0);
            let checksum = u32_at(image, off + 8).unwrap_or(0);
            if HEADER_MAGIC.wrapping_add(flags).wrapping_add(checksum) == 0 {
                return parse_at(image, off, flags);
            }
            bad_checksum.get_or_insert(off);
        }
        off += HEADER_ALIGN;
    }
    Err(match bad_checksum {
        Some(offset) => MultibootError::BadChecksum { offset },
        None => MultibootError::NoHeader,
    })
}

fn parse_at(image: &[u8], offset: usize, flags: u32) -> Result<Header, MultibootError> {
    let unsupported = flags & flags::REQUIRED_MASK & !flags::SUPPORTED_REQUIRED;
    if unsupported & flags::VIDEO_MODE != 0 {
        return Err(MultibootError::VideoModeRequired);
    }
    if unsupported != 0 {
        return Err(MultibootError::UnsupportedFlags(unsupported));
    }
    let aout = if flags & flags::AOUT_KLUDGE != 0 {
        // §3.1.1: the header, with the fields its flags enable, lies within 8 KiB.
        if offset + AOUT_LEN > image.len().min(SEARCH_LIMIT) {
            return Err(MultibootError::TruncatedHeader { offset });
        }
        let f = |i: usize| u32_at(image, offset + BASE_LEN + 4 * i).unwrap_or(0);
        Some(AoutAddresses {
            header_addr: f(0),
            load_addr: f(1),
            load_end_addr: f(2),
            bss_end_addr: f(3),
            entry_addr: f(4),
        })
    } else {
        None
    };
    Ok(Header { offset, flags, aout })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with(at: usize, words: &[u32]) -> Vec<u8> {
        let mut img = vec![0u8; at];
        for w in words {
            img.extend_from_slice(&w.to_le_bytes());
        }
        img
    }

    #[test]
    fn finds_an_aligned_header_with_a_good_checksum() {
        let f = flags::PAGE_ALIGN | flags::MEMORY_INFO;
        let img = image_with(64, &[HEADER_MAGIC, f, 0u32.wrapping_sub(HEADER_MAGIC + f)]);
        let h = find(&img).unwrap();
        assert_eq!((h.offset, h.flags, h.aout), (64, f, None));
    }

    #[test]
    fn unaligned_or_late_headers_are_not_found() {
        let good = [HEADER_MAGIC, 0, 0u32.wrapping_sub(HEADER_MAGIC)];
        assert!(matches!(find(&image_with(2, &good)), Err(MultibootError::NoHeader)));
        assert!(matches!(find(&image_with(8192, &good)), Err(MultibootError::NoHeader)));
        // The last position where all 12 bytes lie in the first 8 KiB.
        assert!(find(&image_with(8180, &good)).is_ok());
    }

    #[test]
    fn bad_checksum_video_and_unknown_requirements_are_refused() {
        let img = image_with(0, &[HEADER_MAGIC, 0, 1]);
        assert!(matches!(find(&img), Err(MultibootError::BadChecksum { offset: 0 })));
        let v = flags::VIDEO_MODE;
        let img = image_with(0, &[HEADER_MAGIC, v, 0u32.wrapping_sub(HEADER_MAGIC + v)]);
        assert!(matches!(find(&img), Err(MultibootError::VideoModeRequired)));
        let u = 1 << 9;
        let img = image_with(0, &[HEADER_MAGIC, u, 0u32.wrapping_sub(HEADER_MAGIC + u)]);
        assert!(matches!(find(&img), Err(MultibootError::UnsupportedFlags(0x200))));
        // Unknown optional bits (17-31) are ignored.
        let o = 1 << 20;
        let img = image_with(0, &[HEADER_MAGIC, o, 0u32.wrapping_sub(HEADER_MAGIC + o)]);
        assert!(find(&img).is_ok());
    }
}
