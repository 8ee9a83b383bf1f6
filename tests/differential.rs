//! Differential tests: every instruction form runs both in hvsim (64-bit guest) and
//! natively on the host CPU with the same random register values and input flags; all
//! result registers and every *defined* arithmetic flag must agree.
//!
//! There are 319 forms in 11 groups (one `#[test]` per group); each form gets 64 random
//! cases (shifts and rotates 128). Register values mix uniform 64-bit values, boundary
//! values (0, 1, 0x7F, 0x80, 0xFF, ..., `u64::MAX`) and small numbers (counts).
//!
//! # How a form is run
//!
//! * Native: a stub assembled with iced-x86 `code_asm` into an anonymous executable page
//!   saves the callee-saved registers, keeps the `State` pointer in R15, loads RAX..R14
//!   (not RSP) and the input RFLAGS (only the six arithmetic flags, DF = 0, nothing else)
//!   from `State`, executes the instruction under test, stores RFLAGS and RAX..R14 back
//!   and returns.
//! * hvsim: the same instruction (the same `code_asm` call) followed by HLT at 0x1000 in
//!   `GuestMode::Long64`, with the same register values and flags.
//!
//! RAX, RCX, RDX, RBX, RBP, RSI, RDI and R8..R14 are compared in full (64 bits), so a
//! clobbered register or a missing zero-extension shows. RSP and R15 (the pointer
//! register of the native stub) are not compared. Operand sizes 8 (including AH..BH and
//! the REX byte registers), 16, 32 and 64 bits are covered; 32-bit forms run in 64-bit
//! mode.
//!
//! # Flags excluded from the comparison (undefined per the Intel SDM)
//!
//! | Forms | Compared flags |
//! |---|---|
//! | ADD ADC SUB SBB CMP NEG INC DEC XADD CMPXCHG POPCNT | all six |
//! | AND OR XOR TEST | CF OF SF ZF PF (AF undefined) |
//! | NOT BSWAP CMOVcc SETcc CBW CWDE CDQE CWD CDQ CQO LAHF SAHF CLC STC CMC | all six (unchanged or set exactly) |
//! | SHL SHR SAR, masked count 0 | all six (unchanged) |
//! | SHL SHR SAR, masked count != 0 | CF SF ZF PF; OF only for masked count 1; AF never; CF not for SHL/SHR with masked count >= operand width (8/16-bit forms) |
//! | ROL ROR RCL RCR, masked count 0 | all six (unchanged) |
//! | ROL ROR RCL RCR, masked count != 0 | CF SF ZF AF PF (SF ZF AF PF unchanged); OF only for masked count 1 |
//! | SHLD SHRD, masked count 0 | all six (unchanged) |
//! | SHLD SHRD, masked count != 0 | CF SF ZF PF; OF only for masked count 1; AF never. 16-bit counts > 16 (result undefined) are not generated |
//! | MUL IMUL (1-, 2-, 3-operand) | CF OF |
//! | DIV IDIV | none (inputs that would raise #DE are adjusted so they do not) |
//! | BT BTS BTR BTC | CF only (ZF is documented as unchanged by recent SDMs only) |
//! | BSF BSR | ZF only (sources are forced nonzero: the destination is undefined for 0) |
//! | LZCNT TZCNT | CF ZF (only run when the host supports them; POPCNT likewise) |
//!
//! The BCD instructions (DAA DAS AAA AAS AAM AAD) are invalid in 64-bit mode, so they
//! cannot be compared natively here; they are covered by the instruction tests.
//!
//! A form hvsim does not implement yet (`StopReason::Unsupported`) is reported as
//! `UNSUPPORTED` in the failure summary of its group.
#![allow(unsafe_code)]

use hvsim::cpu::flags::{AF, CF, OF, PF, SF, ZF};
use hvsim::{GuestMode, Machine, MachineConfig, StopReason};
use iced_x86::code_asm::*;
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use memmap2::{Mmap, MmapMut};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// The six arithmetic flags.
const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
/// Where the guest code goes.
const CODE: u64 = 0x1000;
/// The guest stack pointer.
const STACK: u64 = 0x8000;
/// Cases per form (shift/rotate forms get twice as many).
const CASES: u32 = 64;

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;
const RSP: usize = 4;
const R15: usize = 15;

const REG_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// Register values, in hvsim's order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8..R15).
type Regs = [u64; 16];
/// Emits the instruction under test.
type Emit = fn(&mut CodeAssembler) -> Result<(), IcedError>;

/// Whether register `i` is loaded and compared (all but RSP and the stub's R15).
fn compared(i: usize) -> bool {
    i != RSP && i != R15
}

/// What the native stub reads and writes. Field offsets are used by the stub.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct State {
    gpr: Regs,
    flags: u64,
}
const FLAGS_OFFSET: i32 = 16 * 8;

// ---------------------------------------------------------------------------------------
// Defined-flag rules
// ---------------------------------------------------------------------------------------

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Sh {
    Shl,
    Shr,
    Sar,
    Rol,
    Ror,
    Rcl,
    Rcr,
    Shld,
    Shrd,
}

#[derive(Copy, Clone, Debug)]
enum Count {
    /// The count is CL.
    Cl,
    /// An immediate count.
    Imm(u64),
}

#[derive(Copy, Clone, Debug)]
enum Def {
    /// A fixed set of defined flags.
    Mask(u64),
    /// A shift or rotate: the defined flags depend on the count.
    Shift { kind: Sh, width: u64, count: Count },
}

/// The flags the SDM defines for `def` with inputs `regs`.
fn defined_flags(def: Def, regs: &Regs) -> u64 {
    let (kind, width, count) = match def {
        Def::Mask(m) => return m,
        Def::Shift { kind, width, count } => (kind, width, count),
    };
    let raw = match count {
        Count::Cl => regs[RCX] & 0xFF,
        Count::Imm(n) => n,
    };
    let masked = raw & if width == 64 { 63 } else { 31 };
    if masked == 0 {
        return ARITH; // no flag changes
    }
    let mut d = match kind {
        Sh::Shl | Sh::Shr | Sh::Sar | Sh::Shld | Sh::Shrd => CF | SF | ZF | PF | OF,
        Sh::Rol | Sh::Ror | Sh::Rcl | Sh::Rcr => ARITH,
    };
    if masked != 1 {
        d &= !OF;
    }
    if matches!(kind, Sh::Shl | Sh::Shr) && masked >= width {
        d &= !CF;
    }
    if matches!(kind, Sh::Shld | Sh::Shrd) && masked > width {
        d = 0;
    }
    d
}

/// Names of the flags in `f`.
fn flag_names(f: u64) -> String {
    let names = [(CF, "CF"), (PF, "PF"), (AF, "AF"), (ZF, "ZF"), (SF, "SF"), (OF, "OF")];
    let v: Vec<&str> = names.iter().filter(|(b, _)| f & b != 0).map(|(_, n)| *n).collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join("|")
    }
}

// ---------------------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------------------

struct Form {
    emit: Emit,
    def: Def,
    /// Adjusts random inputs so the form is defined and does not fault.
    prep: Option<fn(&mut Regs)>,
    /// A host CPU feature the form needs.
    feature: Option<&'static str>,
}

fn f(def: Def, emit: Emit) -> Form {
    Form { emit, def, prep: None, feature: None }
}

impl Form {
    fn prep(mut self, p: fn(&mut Regs)) -> Self {
        self.prep = Some(p);
        self
    }
    fn needs(mut self, feature: &'static str) -> Self {
        self.feature = Some(feature);
        self
    }
}

const ALL: Def = Def::Mask(ARITH);
const LOGIC: Def = Def::Mask(ARITH & !AF);
const MUL: Def = Def::Mask(CF | OF);
const NONE: Def = Def::Mask(0);

fn sh(kind: Sh, width: u64, count: Count) -> Def {
    Def::Shift { kind, width, count }
}

fn host_has(feature: &str) -> bool {
    match feature {
        "lzcnt" => std::is_x86_feature_detected!("lzcnt"),
        "bmi1" => std::is_x86_feature_detected!("bmi1"),
        "popcnt" => std::is_x86_feature_detected!("popcnt"),
        _ => false,
    }
}

/// Sign-extends the low `w` bits of `v`.
fn sext(v: u128, w: u32) -> i128 {
    ((v << (128 - w)) as i128) >> (128 - w)
}

/// Makes `DIV`/`IDIV` of width `w` with the divisor in register `src` not raise #DE:
/// a zero divisor becomes 1 and an overflowing dividend gets a smaller high half.
fn fix_div(r: &mut Regs, w: u32, src: usize, signed: bool) {
    let m: u64 = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    if r[src] & m == 0 {
        r[src] |= 1;
    }
    let get_hi = |r: &Regs| {
        if w == 8 {
            (r[RAX] >> 8) & 0xFF
        } else {
            r[RDX] & m
        }
    };
    let set_hi = |r: &mut Regs, hi: u64| {
        if w == 8 {
            r[RAX] = (r[RAX] & !0xFF00) | ((hi & 0xFF) << 8);
        } else {
            r[RDX] = (r[RDX] & !m) | (hi & m);
        }
    };
    let lo = r[RAX] & m;
    let d = r[src] & m;
    if signed {
        let fits = |hi: u64, d: u64| {
            let dividend = sext((u128::from(hi) << w) | u128::from(lo), 2 * w);
            let q = dividend / sext(u128::from(d), w);
            let lim = 1i128 << (w - 1);
            (-lim..lim).contains(&q)
        };
        if !fits(get_hi(r), d) {
            let hi = if lo >> (w - 1) & 1 != 0 { m } else { 0 };
            set_hi(r, hi);
            if !fits(hi, d) {
                // lo = MIN and d = -1: divide by 1 instead.
                r[src] = (r[src] & !m) | 1;
            }
        }
    } else {
        let hi = get_hi(r);
        if hi >= d {
            set_hi(r, hi % d);
        }
    }
}

/// Makes the low `w` bits of register `src` nonzero.
fn nonzero(r: &mut Regs, w: u32, src: usize) {
    let m: u64 = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    if r[src] & m == 0 {
        r[src] |= 1 << (w - 1);
    }
}

/// Limits CL to 0..=16 (16-bit SHLD/SHRD are undefined for larger counts).
fn cl_max16(r: &mut Regs) {
    let c = (r[RCX] & 0x1F) % 17;
    r[RCX] = (r[RCX] & !0xFF) | c;
}

/// CMPXCHG: make the accumulator equal the destination (register `dst`) half the time.
fn cmpxchg_equal(r: &mut Regs, dst: usize) {
    if r[14] & 1 != 0 {
        r[RAX] = r[dst];
    }
}

fn add_sub_forms() -> Vec<Form> {
    let mut v = Vec::new();
    macro_rules! alu {
        ($def:expr, $($op:ident),*) => {$(
            v.push(f($def, |a| a.$op(al, bl)));
            v.push(f($def, |a| a.$op(ah, cl)));
            v.push(f($def, |a| a.$op(sil, r9b)));
            v.push(f($def, |a| a.$op(dx, si)));
            v.push(f($def, |a| a.$op(esi, edi)));
            v.push(f($def, |a| a.$op(r8, r9)));
            v.push(f($def, |a| a.$op(dl, 0x5Ai32)));
            v.push(f($def, |a| a.$op(r10w, -2i32)));
            v.push(f($def, |a| a.$op(ebx, 0x1234_5678i32)));
            v.push(f($def, |a| a.$op(r11, -0x7654_3210i32)));
        )*};
    }
    alu!(ALL, add, adc, sub, sbb, cmp);
    macro_rules! unary {
        ($def:expr, $($op:ident),*) => {$(
            v.push(f($def, |a| a.$op(al)));
            v.push(f($def, |a| a.$op(bh)));
            v.push(f($def, |a| a.$op(r9w)));
            v.push(f($def, |a| a.$op(edi)));
            v.push(f($def, |a| a.$op(rbx)));
        )*};
    }
    unary!(ALL, inc, dec, neg);
    v
}

fn logic_forms() -> Vec<Form> {
    let mut v = Vec::new();
    macro_rules! alu {
        ($def:expr, $($op:ident),*) => {$(
            v.push(f($def, |a| a.$op(al, bl)));
            v.push(f($def, |a| a.$op(ah, cl)));
            v.push(f($def, |a| a.$op(sil, r9b)));
            v.push(f($def, |a| a.$op(dx, si)));
            v.push(f($def, |a| a.$op(esi, edi)));
            v.push(f($def, |a| a.$op(r8, r9)));
            v.push(f($def, |a| a.$op(dl, 0x5Ai32)));
            v.push(f($def, |a| a.$op(r10w, -2i32)));
            v.push(f($def, |a| a.$op(ebx, 0x1234_5678i32)));
            v.push(f($def, |a| a.$op(r11, -0x7654_3210i32)));
        )*};
    }
    alu!(LOGIC, and, or, xor, test);
    v.push(f(ALL, |a| a.not(al)));
    v.push(f(ALL, |a| a.not(bh)));
    v.push(f(ALL, |a| a.not(r9w)));
    v.push(f(ALL, |a| a.not(edi)));
    v.push(f(ALL, |a| a.not(rbx)));
    v
}

fn flag_op_forms() -> Vec<Form> {
    vec![
        f(ALL, |a| a.clc()),
        f(ALL, |a| a.stc()),
        f(ALL, |a| a.cmc()),
        f(ALL, |a| a.lahf()),
        f(ALL, |a| a.sahf()),
    ]
}

fn shift_forms(ops: &[Sh]) -> Vec<Form> {
    use Count::{Cl, Imm};
    let mut v = Vec::new();
    macro_rules! shift {
        ($kind:expr, $op:ident) => {{
            v.push(f(sh($kind, 8, Cl), |a| a.$op(bl, cl)));
            v.push(f(sh($kind, 16, Cl), |a| a.$op(dx, cl)));
            v.push(f(sh($kind, 32, Cl), |a| a.$op(esi, cl)));
            v.push(f(sh($kind, 64, Cl), |a| a.$op(r9, cl)));
            v.push(f(sh($kind, 8, Imm(1)), |a| a.$op(al, 1u32)));
            v.push(f(sh($kind, 8, Imm(9)), |a| a.$op(dil, 9u32)));
            v.push(f(sh($kind, 8, Imm(12)), |a| a.$op(ah, 12u32)));
            v.push(f(sh($kind, 16, Imm(0)), |a| a.$op(bx, 0u32)));
            v.push(f(sh($kind, 16, Imm(17)), |a| a.$op(r8w, 17u32)));
            v.push(f(sh($kind, 32, Imm(1)), |a| a.$op(edi, 1u32)));
            v.push(f(sh($kind, 32, Imm(31)), |a| a.$op(r10d, 31u32)));
            v.push(f(sh($kind, 32, Imm(33)), |a| a.$op(ebp, 33u32)));
            v.push(f(sh($kind, 64, Imm(1)), |a| a.$op(rdx, 1u32)));
            v.push(f(sh($kind, 64, Imm(40)), |a| a.$op(r11, 40u32)));
        }};
    }
    for &k in ops {
        match k {
            Sh::Shl => shift!(Sh::Shl, shl),
            Sh::Shr => shift!(Sh::Shr, shr),
            Sh::Sar => shift!(Sh::Sar, sar),
            Sh::Rol => shift!(Sh::Rol, rol),
            Sh::Ror => shift!(Sh::Ror, ror),
            Sh::Rcl => shift!(Sh::Rcl, rcl),
            Sh::Rcr => shift!(Sh::Rcr, rcr),
            Sh::Shld | Sh::Shrd => {}
        }
    }
    v
}

fn double_shift_forms() -> Vec<Form> {
    use Count::{Cl, Imm};
    let mut v = Vec::new();
    macro_rules! dshift {
        ($kind:expr, $op:ident) => {
            v.push(f(sh($kind, 16, Cl), |a| a.$op(ax, bx, cl)).prep(cl_max16));
            v.push(f(sh($kind, 32, Cl), |a| a.$op(esi, edi, cl)));
            v.push(f(sh($kind, 64, Cl), |a| a.$op(r8, r9, cl)));
            v.push(f(sh($kind, 16, Imm(1)), |a| a.$op(dx, si, 1u32)));
            v.push(f(sh($kind, 16, Imm(16)), |a| a.$op(r10w, r11w, 16u32)));
            v.push(f(sh($kind, 32, Imm(7)), |a| a.$op(ebx, eax, 7u32)));
            v.push(f(sh($kind, 32, Imm(0)), |a| a.$op(ebp, edx, 0u32)));
            v.push(f(sh($kind, 64, Imm(1)), |a| a.$op(rdx, rax, 1u32)));
            v.push(f(sh($kind, 64, Imm(63)), |a| a.$op(r12, r13, 63u32)));
        };
    }
    dshift!(Sh::Shld, shld);
    dshift!(Sh::Shrd, shrd);
    v
}

fn mul_div_forms() -> Vec<Form> {
    vec![
        f(MUL, |a| a.mul(bl)),
        f(MUL, |a| a.mul(ch)),
        f(MUL, |a| a.mul(bx)),
        f(MUL, |a| a.mul(r9d)),
        f(MUL, |a| a.mul(rbx)),
        f(MUL, |a| a.imul(bl)),
        f(MUL, |a| a.imul(si)),
        f(MUL, |a| a.imul(ebx)),
        f(MUL, |a| a.imul(r10)),
        f(MUL, |a| a.imul_2(cx, bx)),
        f(MUL, |a| a.imul_2(ecx, ebx)),
        f(MUL, |a| a.imul_2(r8, r9)),
        f(MUL, |a| a.imul_3(dx, bx, -3i32)),
        f(MUL, |a| a.imul_3(edx, ebx, 1000i32)),
        f(MUL, |a| a.imul_3(rdx, rbx, -100_000i32)),
        f(MUL, |a| a.imul_3(r11, r12, 77i32)),
        f(NONE, |a| a.div(bl)).prep(|r| fix_div(r, 8, RBX, false)),
        f(NONE, |a| a.div(bx)).prep(|r| fix_div(r, 16, RBX, false)),
        f(NONE, |a| a.div(ebx)).prep(|r| fix_div(r, 32, RBX, false)),
        f(NONE, |a| a.div(rbx)).prep(|r| fix_div(r, 64, RBX, false)),
        f(NONE, |a| a.idiv(bl)).prep(|r| fix_div(r, 8, RBX, true)),
        f(NONE, |a| a.idiv(bx)).prep(|r| fix_div(r, 16, RBX, true)),
        f(NONE, |a| a.idiv(ebx)).prep(|r| fix_div(r, 32, RBX, true)),
        f(NONE, |a| a.idiv(rbx)).prep(|r| fix_div(r, 64, RBX, true)),
    ]
}

fn bit_forms() -> Vec<Form> {
    let bt = Def::Mask(CF);
    let zf = Def::Mask(ZF);
    let cz = Def::Mask(CF | ZF);
    let mut v = Vec::new();
    macro_rules! bt {
        ($($op:ident),*) => {$(
            v.push(f(bt, |a| a.$op(ax, bx)));
            v.push(f(bt, |a| a.$op(esi, ecx)));
            v.push(f(bt, |a| a.$op(r8, r9)));
            v.push(f(bt, |a| a.$op(r10d, 21i32)));
            v.push(f(bt, |a| a.$op(rdx, 45i32)));
        )*};
    }
    bt!(bt, bts, btr, btc);
    v.push(f(zf, |a| a.bsf(ax, bx)).prep(|r| nonzero(r, 16, RBX)));
    v.push(f(zf, |a| a.bsf(ecx, ebx)).prep(|r| nonzero(r, 32, RBX)));
    v.push(f(zf, |a| a.bsf(rdx, rbx)).prep(|r| nonzero(r, 64, RBX)));
    v.push(f(zf, |a| a.bsr(ax, bx)).prep(|r| nonzero(r, 16, RBX)));
    v.push(f(zf, |a| a.bsr(ecx, ebx)).prep(|r| nonzero(r, 32, RBX)));
    v.push(f(zf, |a| a.bsr(rdx, rbx)).prep(|r| nonzero(r, 64, RBX)));
    v.push(f(cz, |a| a.lzcnt(ax, bx)).needs("lzcnt"));
    v.push(f(cz, |a| a.lzcnt(ecx, ebx)).needs("lzcnt"));
    v.push(f(cz, |a| a.lzcnt(rdx, rbx)).needs("lzcnt"));
    v.push(f(cz, |a| a.tzcnt(ax, bx)).needs("bmi1"));
    v.push(f(cz, |a| a.tzcnt(ecx, ebx)).needs("bmi1"));
    v.push(f(cz, |a| a.tzcnt(rdx, rbx)).needs("bmi1"));
    v.push(f(ALL, |a| a.popcnt(ax, bx)).needs("popcnt"));
    v.push(f(ALL, |a| a.popcnt(ecx, ebx)).needs("popcnt"));
    v.push(f(ALL, |a| a.popcnt(rdx, rbx)).needs("popcnt"));
    v
}

fn exchange_forms() -> Vec<Form> {
    vec![
        f(ALL, |a| a.bswap(eax)),
        f(ALL, |a| a.bswap(r9)),
        f(ALL, |a| a.xadd(bl, cl)),
        f(ALL, |a| a.xadd(ah, dh)),
        f(ALL, |a| a.xadd(si, di)),
        f(ALL, |a| a.xadd(ebx, ecx)),
        f(ALL, |a| a.xadd(r8, r9)),
        f(ALL, |a| a.cmpxchg(bl, cl)).prep(|r| cmpxchg_equal(r, RBX)),
        f(ALL, |a| a.cmpxchg(si, di)).prep(|r| cmpxchg_equal(r, 6)),
        f(ALL, |a| a.cmpxchg(ebx, ecx)).prep(|r| cmpxchg_equal(r, RBX)),
        f(ALL, |a| a.cmpxchg(r8, r9)).prep(|r| cmpxchg_equal(r, 8)),
    ]
}

fn cond_forms() -> Vec<Form> {
    vec![
        f(ALL, |a| a.cmovg(eax, ebx)),
        f(ALL, |a| a.cmovb(rax, rbx)),
        f(ALL, |a| a.cmovne(cx, dx)),
        f(ALL, |a| a.cmovp(r8d, r9d)),
        f(ALL, |a| a.cmovs(r10, r11)),
        f(ALL, |a| a.cmovbe(esi, edi)),
        f(ALL, |a| a.setl(al)),
        f(ALL, |a| a.setbe(bh)),
        f(ALL, |a| a.setp(cl)),
        f(ALL, |a| a.seto(sil)),
        f(ALL, |a| a.setge(r9b)),
        f(ALL, |a| a.sete(dl)),
    ]
}

fn convert_forms() -> Vec<Form> {
    vec![
        f(ALL, |a| a.cbw()),
        f(ALL, |a| a.cwde()),
        f(ALL, |a| a.cdqe()),
        f(ALL, |a| a.cwd()),
        f(ALL, |a| a.cdq()),
        f(ALL, |a| a.cqo()),
    ]
}

// ---------------------------------------------------------------------------------------
// Native execution
// ---------------------------------------------------------------------------------------

/// An executable page holding the native stub for one form.
struct Native {
    page: Mmap,
}

const LOADED: [AsmRegister64; 14] =
    [rax, rcx, rdx, rbx, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14];
const LOADED_IDX: [usize; 14] = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];

impl Native {
    /// Assembles the stub around `emit`; the `State` pointer lives in R15 throughout.
    fn new(emit: Emit) -> Result<Self, String> {
        let err = |e: IcedError| format!("native stub: {e}");
        let mut map = MmapMut::map_anon(4096).map_err(|e| format!("mmap: {e}"))?;
        let mut a = CodeAssembler::new(64).map_err(err)?;
        (|| -> Result<(), IcedError> {
            // Callee-saved registers; with the return address that is 7 slots, so one
            // more keeps RSP 16-byte aligned. Nothing is stored below RSP (no red zone).
            for r in [rbx, rbp, r12, r13, r14, r15] {
                a.push(r)?;
            }
            a.sub(rsp, 8)?;
            a.mov(r15, rdi)?;
            // Input RFLAGS: the caller stores only arithmetic flags (DF = 0, TF = 0).
            a.push(qword_ptr(r15 + FLAGS_OFFSET))?;
            a.popfq()?;
            for (r, i) in LOADED.iter().zip(LOADED_IDX) {
                a.mov(*r, qword_ptr(r15 + (i as i32) * 8))?;
            }
            emit(&mut a)?;
            a.pushfq()?;
            a.pop(qword_ptr(r15 + FLAGS_OFFSET))?;
            for (r, i) in LOADED.iter().zip(LOADED_IDX) {
                a.mov(qword_ptr(r15 + (i as i32) * 8), *r)?;
            }
            // DF was 0 on entry and no form under test changes it; clear it anyway, as
            // the ABI requires on return.
            a.cld()?;
            a.add(rsp, 8)?;
            for r in [r15, r14, r13, r12, rbp, rbx] {
                a.pop(r)?;
            }
            a.ret()
        })()
        .map_err(err)?;
        let code = a.assemble(map.as_ptr() as u64).map_err(err)?;
        if code.len() > map.len() {
            return Err(format!("native stub too large: {} bytes", code.len()));
        }
        map[..code.len()].copy_from_slice(&code);
        let page = map.make_exec().map_err(|e| format!("mprotect: {e}"))?;
        Ok(Self { page })
    }

    /// Runs the stub on `st`.
    fn call(&self, st: &mut State) {
        // SAFETY: `self.page` is a live, executable mapping (owned by `self`, so it
        // outlives the call) that starts with a complete function we assembled above. It
        // follows the sysv64 ABI: it takes the `State` pointer in RDI, saves and restores
        // every callee-saved register (RBX, RBP, R12-R15), keeps RSP balanced and aligned,
        // does not use the red zone, returns with DF = 0, and its only memory accesses
        // besides its own stack slots are reads and writes of the `State` it is given,
        // which is a valid, exclusively borrowed `#[repr(C)]` struct. The instruction
        // under test only uses registers (inputs are adjusted so it cannot fault), and
        // the RFLAGS it loads contain nothing but the six arithmetic flags.
        unsafe {
            let func: extern "sysv64" fn(*mut State) = std::mem::transmute(self.page.as_ptr());
            func(st as *mut State);
        }
    }
}

// ---------------------------------------------------------------------------------------
// hvsim execution
// ---------------------------------------------------------------------------------------

enum HvError {
    Unsupported(String),
    Other(String),
}

struct Guest {
    m: Machine,
}

impl Guest {
    fn new(emit: Emit) -> Result<(Self, Vec<u8>), String> {
        let mut a = CodeAssembler::new(64).map_err(|e| e.to_string())?;
        emit(&mut a).map_err(|e| e.to_string())?;
        let insn = a.assemble(CODE).map_err(|e| e.to_string())?;
        let mut code = insn.clone();
        code.push(0xF4); // HLT
        let mut m = Machine::new(&MachineConfig::default()).map_err(|e| e.to_string())?;
        // The default models have no BMI1 (TZCNT executes as BSF there); compare TZCNT
        // with a host that has it on a model that has it too.
        m.cpuid.set_feature(hvsim::cpuid::Feature::Bmi1, host_has("bmi1"));
        m.load(CODE, &code).map_err(|e| e.to_string())?;
        Ok((Self { m }, insn))
    }

    fn run(&mut self, regs: &Regs, flags: u64) -> Result<State, HvError> {
        let m = &mut self.m;
        m.enter_mode(GuestMode::Long64, CODE, STACK).map_err(|e| HvError::Other(e.to_string()))?;
        for (i, &v) in regs.iter().enumerate() {
            if compared(i) {
                m.cpu.gpr[i] = v;
            }
        }
        m.cpu.flags.set(flags | 2);
        m.cpu.halted = false;
        let r = m.run(Some(100));
        match &r.reason {
            StopReason::Halted { .. } => {
                let mut gpr = m.cpu.gpr;
                gpr[RSP] = 0;
                gpr[R15] = 0;
                Ok(State { gpr, flags: m.cpu.flags.get() })
            }
            StopReason::Unsupported { what } => Err(HvError::Unsupported(format!("{what} ({r})"))),
            _ => Err(HvError::Other(format!("{r}"))),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------

fn value() -> impl Strategy<Value = u64> {
    const SPECIAL: [u64; 16] = [
        0,
        1,
        2,
        0x7F,
        0x80,
        0xFF,
        0x7FFF,
        0x8000,
        0xFFFF,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_FFFF,
        0x7FFF_FFFF_FFFF_FFFF,
        0x8000_0000_0000_0000,
        0xFFFF_FFFF_FFFF_FFFF,
        0xFFFF_FFFF_FFFF_FF80,
    ];
    prop_oneof![
        5 => any::<u64>(),
        2 => proptest::sample::select(&SPECIAL[..]),
        2 => 0u64..70,
    ]
}

fn dump(label: &str, s: &State) -> String {
    let regs: Vec<String> = (0..16)
        .filter(|&i| compared(i))
        .map(|i| format!("{}={:#x}", REG_NAMES[i], s.gpr[i]))
        .collect();
    format!(
        "  {label:7} flags={:#06x} [{}] {}\n",
        s.flags & ARITH,
        flag_names(s.flags & ARITH),
        regs.join(" ")
    )
}

/// The assembly text of `bytes`.
fn disasm(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut fmt = IntelFormatter::new();
    for i in Decoder::with_ip(64, bytes, CODE, DecoderOptions::NONE) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        fmt.format(&i, &mut out);
    }
    out
}

enum FormFailure {
    Unsupported(String),
    Failed(String),
}

/// The strategy for one case: register values and input flags.
fn inputs() -> impl Strategy<Value = (Regs, u64)> {
    (proptest::array::uniform16(value()), any::<u64>())
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Applies the form's input adjustment and clears what is not an input.
fn prepare(form: &Form, mut regs: Regs, flags: u64) -> (Regs, u64) {
    if let Some(p) = form.prep {
        p(&mut regs);
    }
    regs[RSP] = 0;
    regs[R15] = 0;
    (regs, flags & ARITH)
}

fn check_form(form: &Form, cases: u32) -> Result<(), FormFailure> {
    check_pair(form, form.emit, cases)
}

/// Compares `form` run natively with `guest_emit` run in hvsim (the same instruction,
/// except in the harness self-test).
fn check_pair(form: &Form, guest_emit: Emit, cases: u32) -> Result<(), FormFailure> {
    let fail = FormFailure::Failed;
    let native = Native::new(form.emit).map_err(fail)?;
    let (mut guest, insn) = Guest::new(guest_emit).map_err(fail)?;
    let name = disasm(&insn);
    // Probe once so an unimplemented form is reported as such instead of being shrunk.
    let (probe_regs, probe_flags) = prepare(form, [0; 16], 0);
    match guest.run(&probe_regs, probe_flags) {
        Err(HvError::Unsupported(w)) => {
            // Still run the native side, so the stub and the input adjustment (no #DE)
            // are known good before hvsim implements the form.
            let smoke = runner(cases).run(&inputs(), |(regs, flags)| {
                let (regs, flags) = prepare(form, regs, flags);
                native.call(&mut State { gpr: regs, flags });
                Ok(())
            });
            if let Err(e) = smoke {
                return Err(fail(format!("{name}: native run failed: {e}")));
            }
            return Err(FormFailure::Unsupported(format!("{name}: {w}")));
        }
        Err(HvError::Other(w)) => return Err(fail(format!("{name}: hvsim stopped: {w}"))),
        Ok(_) => {}
    }
    let mut runner = runner(cases);
    // `TestRunner::run` takes an `Fn` closure; the machine is reused across cases.
    let guest = std::cell::RefCell::new(guest);
    let result = runner.run(&inputs(), |(regs, flags)| {
        let (regs, flags) = prepare(form, regs, flags);
        let input = State { gpr: regs, flags };
        let mut host = input;
        native.call(&mut host);
        host.gpr[RSP] = 0;
        host.gpr[R15] = 0;
        let hv = match guest.borrow_mut().run(&regs, flags) {
            Ok(s) => s,
            Err(HvError::Unsupported(w)) => {
                return Err(TestCaseError::fail(format!("UNSUPPORTED: {w}")))
            }
            Err(HvError::Other(w)) => {
                return Err(TestCaseError::fail(format!("hvsim stopped: {w}")))
            }
        };
        let defined = defined_flags(form.def, &regs);
        let bad_regs: Vec<&str> = (0..16)
            .filter(|&i| compared(i) && host.gpr[i] != hv.gpr[i])
            .map(|i| REG_NAMES[i])
            .collect();
        let bad_flags = (host.flags ^ hv.flags) & defined;
        if bad_regs.is_empty() && bad_flags == 0 {
            return Ok(());
        }
        Err(TestCaseError::fail(format!(
            "mismatch in `{name}`: registers [{}], flags [{}] (compared flags: {})\n{}{}{}",
            bad_regs.join(" "),
            flag_names(bad_flags),
            flag_names(defined),
            dump("input", &input),
            dump("native", &host),
            dump("hvsim", &hv),
        )))
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(why, _)) => {
            let why = why.to_string();
            if why.starts_with("UNSUPPORTED") {
                Err(FormFailure::Unsupported(format!("{name}: {why}")))
            } else {
                Err(fail(why))
            }
        }
        Err(TestError::Abort(why)) => Err(fail(format!("{name}: aborted: {why}"))),
    }
}

/// Checks every form of a group and fails once at the end with a summary of all failures.
fn check_group(group: &str, forms: &[Form], cases: u32) {
    let mut unsupported = Vec::new();
    let mut failed = Vec::new();
    let mut ran = 0;
    for form in forms {
        if let Some(feat) = form.feature {
            if !host_has(feat) {
                eprintln!("{group}: host lacks {feat}; skipping a form");
                continue;
            }
        }
        ran += 1;
        match check_form(form, cases) {
            Ok(()) => {}
            Err(FormFailure::Unsupported(w)) => unsupported.push(w),
            Err(FormFailure::Failed(w)) => failed.push(w),
        }
    }
    let mut msg = format!(
        "{group}: {ran} forms run, {} unsupported by hvsim, {} failed\n",
        unsupported.len(),
        failed.len()
    );
    for u in &unsupported {
        msg.push_str(&format!("UNSUPPORTED by hvsim: {u}\n"));
    }
    for f in &failed {
        msg.push_str(&format!("FAILED: {f}\n"));
    }
    assert!(unsupported.is_empty() && failed.is_empty(), "{msg}");
}

#[test]
fn diff_add_sub_cmp_inc_dec_neg() {
    check_group("add/adc/sub/sbb/cmp/inc/dec/neg", &add_sub_forms(), CASES);
}

#[test]
fn diff_logic_not() {
    check_group("and/or/xor/test/not", &logic_forms(), CASES);
}

#[test]
fn diff_flag_ops() {
    check_group("clc/stc/cmc/lahf/sahf", &flag_op_forms(), CASES);
}

#[test]
fn diff_shifts() {
    check_group("shl/shr/sar", &shift_forms(&[Sh::Shl, Sh::Shr, Sh::Sar]), 2 * CASES);
}

#[test]
fn diff_rotates() {
    check_group("rol/ror/rcl/rcr", &shift_forms(&[Sh::Rol, Sh::Ror, Sh::Rcl, Sh::Rcr]), 2 * CASES);
}

#[test]
fn diff_double_shifts() {
    check_group("shld/shrd", &double_shift_forms(), 2 * CASES);
}

#[test]
fn diff_mul_div() {
    check_group("mul/imul/div/idiv", &mul_div_forms(), CASES);
}

#[test]
fn diff_bit_ops() {
    check_group("bt*/bsf/bsr/lzcnt/tzcnt/popcnt", &bit_forms(), CASES);
}

#[test]
fn diff_bswap_xadd_cmpxchg() {
    check_group("bswap/xadd/cmpxchg", &exchange_forms(), CASES);
}

#[test]
fn diff_cmov_setcc() {
    check_group("cmovcc/setcc", &cond_forms(), CASES);
}

#[test]
fn diff_convert() {
    check_group("cbw/cwde/cdqe/cwd/cdq/cqo", &convert_forms(), CASES);
}

/// The number of forms, so the file's coverage claim is checked.
#[test]
fn form_count() {
    let n = add_sub_forms().len()
        + logic_forms().len()
        + flag_op_forms().len()
        + shift_forms(&[Sh::Shl, Sh::Shr, Sh::Sar, Sh::Rol, Sh::Ror, Sh::Rcl, Sh::Rcr]).len()
        + double_shift_forms().len()
        + mul_div_forms().len()
        + bit_forms().len()
        + exchange_forms().len()
        + cond_forms().len()
        + convert_forms().len();
    assert!(n >= 100, "only {n} forms");
}

/// The harness itself: the native stub passes registers and flags through untouched,
/// and a real difference between the two sides is reported.
#[test]
fn harness_self_test() {
    let native = Native::new(|a| a.nop());
    assert!(native.is_ok(), "{:?}", native.err());
    if let Ok(native) = native {
        let mut regs = [0u64; 16];
        for (i, r) in regs.iter_mut().enumerate() {
            *r = 0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 1) ^ 0x8000_0000_0000_0000;
        }
        regs[RSP] = 0;
        regs[R15] = 0;
        for flags in [0, ARITH, CF | ZF | OF, PF | AF | SF] {
            let input = State { gpr: regs, flags };
            let mut out = input;
            native.call(&mut out);
            out.gpr[RSP] = 0;
            out.gpr[R15] = 0;
            assert_eq!(out.gpr, input.gpr, "nop changed registers");
            assert_eq!(out.flags & ARITH, flags, "nop changed flags");
        }
    }
    // Native ADD against guest SUB must be caught.
    let r = check_pair(&f(ALL, |a| a.add(eax, ebx)), |a| a.sub(eax, ebx), 16);
    assert!(matches!(&r, Err(FormFailure::Failed(w)) if w.contains("mismatch")));
    // A flag-only difference: native CLC against guest STC differs only in CF.
    let r = check_pair(&f(ALL, |a| a.clc()), |a| a.stc(), 16);
    assert!(matches!(&r, Err(FormFailure::Failed(w)) if w.contains("flags [CF]")));
    // ... unless the flag is excluded.
    let r = check_pair(&f(Def::Mask(ARITH & !CF), |a| a.clc()), |a| a.stc(), 16);
    assert!(r.is_ok());
}
