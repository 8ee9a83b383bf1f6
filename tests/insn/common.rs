//! The harness shared by the instruction tests.
#![allow(dead_code)]

pub use hvsim::cpu::flags::{AF, CF, DF, OF, PF, SF, ZF};
pub use hvsim::{GuestMode, Machine, MachineConfig, StopReason, StopReport};
pub use iced_x86::code_asm::*;

/// Where test code is loaded.
pub const CODE: u64 = 0x1000;
/// Initial stack pointer.
pub const STACK: u64 = 0x8000;
/// A scratch data area tests may use.
pub const DATA: u64 = 0x4000;

/// All four modes.
pub const ALL_MODES: [GuestMode; 4] =
    [GuestMode::Real, GuestMode::Protected16, GuestMode::Protected32, GuestMode::Long64];

/// The assembler bitness of a mode.
pub fn bits(mode: GuestMode) -> u32 {
    match mode {
        GuestMode::Real | GuestMode::Protected16 => 16,
        GuestMode::Protected32 => 32,
        GuestMode::Long64 => 64,
    }
}

/// A machine in `mode` with `code` at [`CODE`]; the caller may adjust state, then run.
pub fn machine_with(mode: GuestMode, code: &[u8]) -> Machine {
    let mut m = Machine::new(&MachineConfig::default()).expect("machine");
    // The instruction tests look at the exception an instruction raises, not at its
    // delivery: stop the run at every exception.
    m.set_exception_catch(hvsim::machine::CATCH_ALL);
    m.load(CODE, code).expect("load");
    m.enter_mode(mode, CODE, STACK).expect("mode");
    m
}

/// Assembles `body` for `mode` at [`CODE`], appends HLT, and returns the bytes.
pub fn assemble(
    mode: GuestMode,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits(mode)).expect("assembler");
    body(&mut a).expect("assemble body");
    a.hlt().expect("hlt");
    a.assemble(CODE).expect("assemble")
}

/// Assembles and runs `body` in `mode` until HLT (or 100k instructions).
pub fn run(
    mode: GuestMode,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> (Machine, StopReport) {
    let code = assemble(mode, body);
    let mut m = machine_with(mode, &code);
    let r = m.run(Some(100_000));
    (m, r)
}

/// Runs and asserts the run ended at the final HLT.
pub fn run_ok(
    mode: GuestMode,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Machine {
    let (m, r) = run(mode, body);
    assert!(matches!(r.reason, StopReason::Halted { .. }), "{mode:?}: {r}");
    m
}

/// The arithmetic flags of the vCPU.
pub fn arith_flags(m: &Machine) -> u64 {
    m.cpu.flags.get() & (CF | PF | AF | ZF | SF | OF)
}

/// The exception the run stopped with.
pub fn exception(r: &StopReport) -> Option<(u8, Option<u32>)> {
    match &r.reason {
        StopReason::Exception { exception, .. } => Some((exception.vector, exception.error_code)),
        _ => None,
    }
}
