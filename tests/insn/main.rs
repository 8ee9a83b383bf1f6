//! Instruction tests: each group's instructions assembled with iced-x86 `code_asm`, run
//! in every mode that applies, with results and flags asserted. One test binary; one
//! module per instruction group, mirroring `src/cpu/exec/`.

mod common;

mod arith;
mod atomic;
mod bcd;
mod bit;
mod control;
mod control_far;
mod convert;
mod io;
mod mov_stack;
mod muldiv;
mod setcc_cmov;
mod shift_rotate;
mod string;
mod system;
