//! The DSDT's AML, hand-assembled (ACPI 6.4 chapter 20 "ACPI Machine Language (AML)
//! Specification"). It defines one object, the S5 (soft off) sleep package that an OS
//! reads to power the machine off by writing SLP_TYP and SLP_EN to PM1a_CNT
//! (ACPI 6.4 §7.4.2 "\_Sx (System States)", §16.1.7 "Transitioning from the Working to
//! the Soft Off State"):
//!
//! ```text
//! Name (_S5, Package (4) { SLP_TYPa, SLP_TYPb, 0, 0 })
//!
//! 08                NameOp
//! 5F 53 35 5F       NameSeg "_S5_" (in the root scope of the definition block)
//! 12                PackageOp
//! nn                PkgLength (one byte: the length of everything after PackageOp)
//! 04                NumElements
//! ..                the four integers: ZeroOp (00), OneOp (01) or BytePrefix (0A) nn
//! ```
//!
//! SLP_TYPa and SLP_TYPb are both [`pc::ACPI_S5_SLP_TYP`] (there is no PM1b block).

use hvsim_devices::pc;

/// The DSDT revision: 2 makes AML integers 64 bits wide (ACPI 6.4 §5.2.11.1).
pub const DSDT_REVISION: u8 = 2;
/// The name segment of the S5 object.
pub const S5_NAME: &[u8; 4] = b"_S5_";

/// AML NameOp.
const NAME_OP: u8 = 0x08;
/// AML PackageOp.
const PACKAGE_OP: u8 = 0x12;
/// AML ZeroOp.
const ZERO_OP: u8 = 0x00;
/// AML OneOp.
const ONE_OP: u8 = 0x01;
/// AML BytePrefix (a one-byte integer follows).
const BYTE_PREFIX: u8 = 0x0A;

/// The shortest AML encoding of a byte-sized integer (ACPI 6.4 §20.2.3 "Data Objects
/// Encoding").
fn aml_byte_integer(v: u8) -> Vec<u8> {
    match v {
        0 => vec![ZERO_OP],
        1 => vec![ONE_OP],
        _ => vec![BYTE_PREFIX, v],
    }
}

/// The AML of hvsim's DSDT (the table body after the common header).
pub fn dsdt_aml() -> Vec<u8> {
    // SLP_TYP is a 3-bit field of PM1x_CNT (bits 12:10).
    let slp_typ = (pc::ACPI_S5_SLP_TYP & 0x7) as u8;
    let mut elements = Vec::new();
    for v in [slp_typ, slp_typ, 0, 0] {
        elements.extend(aml_byte_integer(v));
    }
    // PkgLength counts itself (one byte while the total is below 64), NumElements and
    // the elements (§20.2.4 "Package Length Encoding").
    let pkg_len = 1 + 1 + elements.len();
    debug_assert!(pkg_len < 64);
    let mut aml = vec![NAME_OP];
    aml.extend_from_slice(S5_NAME);
    aml.extend_from_slice(&[PACKAGE_OP, pkg_len as u8, 4]);
    aml.extend(elements);
    aml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s5_package_encoding() {
        let aml = dsdt_aml();
        assert_eq!(&aml[..5], &[0x08, b'_', b'S', b'5', b'_']);
        assert_eq!(aml[5], PACKAGE_OP);
        // PkgLength covers everything after PackageOp.
        assert_eq!(aml[6] as usize, aml.len() - 6);
        assert_eq!(aml[7], 4);
    }

    #[test]
    fn integers_use_the_short_forms() {
        assert_eq!(aml_byte_integer(0), [ZERO_OP]);
        assert_eq!(aml_byte_integer(1), [ONE_OP]);
        assert_eq!(aml_byte_integer(5), [BYTE_PREFIX, 5]);
    }
}
