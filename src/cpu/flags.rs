//! RFLAGS, with the arithmetic flags computed lazily.
//!
//! An ALU instruction records its operation, width, operands and result; the six
//! arithmetic flags are derived only when something reads them (Jcc, SETcc, PUSHF, ...).
//! Undefined flags follow one documented choice (see `README.md`, "Undefined flags"):
//! AF is cleared by the logical operations, as AMD and Intel parts both do in practice.

/// Carry.
pub const CF: u64 = 1 << 0;
/// Always one.
pub const FIXED1: u64 = 1 << 1;
/// Parity.
pub const PF: u64 = 1 << 2;
/// Auxiliary carry.
pub const AF: u64 = 1 << 4;
/// Zero.
pub const ZF: u64 = 1 << 6;
/// Sign.
pub const SF: u64 = 1 << 7;
/// Trap.
pub const TF: u64 = 1 << 8;
/// Interrupt enable.
pub const IF: u64 = 1 << 9;
/// Direction.
pub const DF: u64 = 1 << 10;
/// Overflow.
pub const OF: u64 = 1 << 11;
/// I/O privilege level (two bits).
pub const IOPL: u64 = 3 << 12;
/// Nested task.
pub const NT: u64 = 1 << 14;
/// Resume.
pub const RF: u64 = 1 << 16;
/// Virtual-8086 mode.
pub const VM: u64 = 1 << 17;
/// Alignment check / access control.
pub const AC: u64 = 1 << 18;
/// Virtual interrupt flag.
pub const VIF: u64 = 1 << 19;
/// Virtual interrupt pending.
pub const VIP: u64 = 1 << 20;
/// CPUID available.
pub const ID: u64 = 1 << 21;
/// The six arithmetic status flags.
pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
/// Flags software can change at all.
pub const WRITABLE: u64 = ARITH | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;

/// The operation whose result defines the arithmetic flags.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum LazyOp {
    /// Flags are materialised in `bits`.
    None,
    /// a + b (+ carry: `res` already includes it; `carry_in` in `c`).
    Add,
    /// a - b (- borrow, see `c`).
    Sub,
    /// AND/OR/XOR/TEST: CF = OF = AF = 0.
    Logic,
    /// INC: CF preserved in `bits`.
    Inc,
    /// DEC: CF preserved in `bits`.
    Dec,
}

/// RFLAGS with lazily evaluated arithmetic flags.
#[derive(Copy, Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Flags {
    bits: u64,
    op: LazyOp,
    /// Operand width in bytes.
    size: u8,
    /// Carry/borrow in (ADC/SBB).
    c: u8,
    a: u64,
    b: u64,
    res: u64,
}

impl Default for Flags {
    fn default() -> Self {
        Self { bits: FIXED1, op: LazyOp::None, size: 1, c: 0, a: 0, b: 0, res: 0 }
    }
}

/// All-ones mask of a `size`-byte operand.
#[inline(always)]
pub const fn size_mask(size: u8) -> u64 {
    u64::MAX >> (64 - 8 * size as u32)
}

/// The sign bit of a `size`-byte operand.
#[inline(always)]
pub const fn sign_bit(size: u8) -> u64 {
    1 << (8 * size as u32 - 1)
}

/// Sign-extends the low `size` bytes of `v` to 64 bits.
#[inline(always)]
pub const fn sign_extend(v: u64, size: u8) -> u64 {
    let sh = 64 - 8 * size as u32;
    (((v << sh) as i64) >> sh) as u64
}

/// PF for a result: set when the low byte has an even number of ones.
#[inline(always)]
pub fn parity(res: u64) -> u64 {
    if (res as u8).count_ones() % 2 == 0 {
        PF
    } else {
        0
    }
}

/// ZF, SF and PF of a `size`-byte result.
#[inline(always)]
pub fn szp(res: u64, size: u8) -> u64 {
    let r = res & size_mask(size);
    (if r == 0 { ZF } else { 0 }) | (if r & sign_bit(size) != 0 { SF } else { 0 }) | parity(r)
}

impl Flags {
    /// Records `res = a + b + c` of width `size`.
    #[inline(always)]
    pub fn set_add(&mut self, size: u8, a: u64, b: u64, c: u8, res: u64) {
        *self = Self { bits: self.bits, op: LazyOp::Add, size, c, a, b, res };
    }

    /// Records `res = a - b - c` of width `size`.
    #[inline(always)]
    pub fn set_sub(&mut self, size: u8, a: u64, b: u64, c: u8, res: u64) {
        *self = Self { bits: self.bits, op: LazyOp::Sub, size, c, a, b, res };
    }

    /// Records a logical result of width `size`.
    #[inline(always)]
    pub fn set_logic(&mut self, size: u8, res: u64) {
        self.op = LazyOp::Logic;
        self.size = size;
        self.res = res;
    }

    /// Records INC/DEC (`dec`) of `a` giving `res`; CF keeps its value.
    #[inline(always)]
    pub fn set_incdec(&mut self, size: u8, a: u64, res: u64, dec: bool) {
        let cf = self.cf();
        self.bits = (self.bits & !CF) | cf;
        self.op = if dec { LazyOp::Dec } else { LazyOp::Inc };
        self.size = size;
        self.a = a;
        self.res = res;
    }

    /// Sets the arithmetic flags to exactly `arith` (bits outside [`ARITH`] ignored).
    #[inline(always)]
    pub fn set_arith(&mut self, arith: u64) {
        self.bits = (self.bits & !ARITH) | (arith & ARITH);
        self.op = LazyOp::None;
    }

    /// The six arithmetic flags.
    #[inline]
    pub fn arith(&self) -> u64 {
        let size = self.size;
        let m = size_mask(size);
        let sb = sign_bit(size);
        let res = self.res & m;
        match self.op {
            LazyOp::None => self.bits & ARITH,
            LazyOp::Logic => szp(res, size),
            LazyOp::Add => {
                let (a, b) = (self.a & m, self.b & m);
                let cf = if self.c != 0 { res <= a } else { res < a };
                let of = (a ^ res) & (b ^ res) & sb != 0;
                szp(res, size) | (cf as u64 * CF) | (of as u64 * OF) | ((a ^ b ^ res) & 0x10)
            }
            LazyOp::Sub => {
                let (a, b) = (self.a & m, self.b & m);
                let cf = if self.c != 0 { a <= b } else { a < b };
                let of = (a ^ b) & (a ^ res) & sb != 0;
                szp(res, size) | (cf as u64 * CF) | (of as u64 * OF) | ((a ^ b ^ res) & 0x10)
            }
            LazyOp::Inc => {
                let of = res == sb;
                szp(res, size) | (self.bits & CF) | (of as u64 * OF) | ((self.a ^ res) & 0x10)
            }
            LazyOp::Dec => {
                let of = res == sb - 1;
                szp(res, size) | (self.bits & CF) | (of as u64 * OF) | ((self.a ^ res) & 0x10)
            }
        }
    }

    /// The whole RFLAGS value.
    #[inline]
    pub fn get(&self) -> u64 {
        (self.bits & !ARITH) | self.arith() | FIXED1
    }

    /// Replaces RFLAGS with `v` (reserved bits forced to their fixed values).
    #[inline]
    pub fn set(&mut self, v: u64) {
        self.bits = (v & WRITABLE) | FIXED1;
        self.op = LazyOp::None;
    }

    /// The I/O privilege level (EFLAGS bits 13:12).
    #[inline]
    pub fn iopl(&self) -> u8 {
        ((self.bits & IOPL) >> 12) as u8
    }

    /// CF as 0 or 1.
    #[inline(always)]
    pub fn cf(&self) -> u64 {
        match self.op {
            LazyOp::None | LazyOp::Inc | LazyOp::Dec => self.bits & CF,
            LazyOp::Logic => 0,
            LazyOp::Add => {
                let m = size_mask(self.size);
                let (a, r) = (self.a & m, self.res & m);
                (if self.c != 0 { r <= a } else { r < a }) as u64
            }
            LazyOp::Sub => {
                let m = size_mask(self.size);
                let (a, b) = (self.a & m, self.b & m);
                (if self.c != 0 { a <= b } else { a < b }) as u64
            }
        }
    }

    /// ZF as a bool.
    #[inline(always)]
    pub fn zf(&self) -> bool {
        match self.op {
            LazyOp::None => self.bits & ZF != 0,
            _ => self.res & size_mask(self.size) == 0,
        }
    }

    /// A non-arithmetic flag (IF, DF, TF, ...).
    #[inline(always)]
    pub fn bit(&self, flag: u64) -> bool {
        debug_assert_eq!(flag & ARITH, 0);
        self.bits & flag != 0
    }

    /// Sets or clears a non-arithmetic flag.
    #[inline(always)]
    pub fn set_bit(&mut self, flag: u64, on: bool) {
        debug_assert_eq!(flag & ARITH, 0);
        if on {
            self.bits |= flag
        } else {
            self.bits &= !flag
        }
    }

    /// Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc opcodes).
    #[inline]
    pub fn cond(&self, cc: u8) -> bool {
        let r = match cc >> 1 {
            0 => self.arith() & OF != 0,
            1 => self.cf() != 0,
            2 => self.zf(),
            3 => self.cf() != 0 || self.zf(),
            4 => self.arith() & SF != 0,
            5 => self.arith() & PF != 0,
            6 => {
                let f = self.arith();
                (f & SF != 0) != (f & OF != 0)
            }
            _ => {
                let f = self.arith();
                f & ZF != 0 || ((f & SF != 0) != (f & OF != 0))
            }
        };
        r != (cc & 1 != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sub_flags() {
        let mut f = Flags::default();
        f.set_add(1, 0x7F, 1, 0, 0x80);
        assert_eq!(f.arith(), SF | OF | AF);
        f.set_add(1, 0xFF, 1, 0, 0x100);
        assert_eq!(f.arith(), CF | ZF | AF | PF);
        f.set_sub(4, 0, 1, 0, u64::from(u32::MAX));
        assert_eq!(f.arith() & (CF | SF | ZF | OF), CF | SF);
        // ADC with carry-in where b = all ones: CF must be set.
        f.set_add(1, 5, 0xFF, 1, 5 + 0xFF + 1);
        assert_eq!(f.cf(), 1);
        f.set_sub(1, 5, 0xFF, 1, 5u64.wrapping_sub(0x100));
        assert_eq!(f.cf(), 1);
    }

    #[test]
    fn incdec_keeps_cf() {
        let mut f = Flags::default();
        f.set_add(1, 0xFF, 1, 0, 0x100); // CF=1
        f.set_incdec(1, 0x7F, 0x80, false);
        assert_eq!(f.arith() & (CF | OF | SF), CF | OF | SF);
        f.set_incdec(2, 0x8000, 0x7FFF, true);
        assert_eq!(f.arith() & (CF | OF), CF | OF);
    }

    #[test]
    fn conditions() {
        let mut f = Flags::default();
        f.set_sub(4, 1, 2, 0, 1u64.wrapping_sub(2)); // 1 - 2: below, less
        assert!(f.cond(0x2) && f.cond(0xC) && !f.cond(0x4) && f.cond(0x5) && f.cond(0x6));
        assert!(!f.cond(0xF) && f.cond(0xE));
        f.set(0);
        assert_eq!(f.get(), FIXED1);
    }
}
