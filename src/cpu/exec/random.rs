//! RDRAND and RDSEED (SDM Vol. 2B "RDRAND", "RDSEED").
//!
//! Both draw from one deterministic generator (SplitMix64) in the vCPU state, seeded
//! from `MachineConfig::rng_seed`: a run is a pure function of its configuration, so the
//! same seed gives the same values. The generator never runs dry: CF = 1 always, and
//! OF, SF, ZF, AF, PF are cleared.

use super::write;
use crate::cpu::fault::{ud, ExecResult};
use crate::cpu::flags::CF;
use crate::cpu::insn::{Handler, Insn};
use crate::cpuid::Feature;
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

/// The seed a machine uses unless its configuration says otherwise.
pub const DEFAULT_RNG_SEED: u64 = 0x6876_7369_6D5F_726E; // "hvsim_rn"

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Rdrand => rdrand,
        Mnemonic::Rdseed => rdseed,
        _ => return None,
    })
}

/// The next value of the SplitMix64 sequence in `state`.
pub fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn draw(m: &mut Machine, i: &Insn, advertised: Feature) -> ExecResult {
    if !m.cpuid.has(advertised) {
        return ud();
    }
    let v = next_random(&mut m.cpu.rng_state);
    write(m, i, 0, v)?;
    m.cpu.flags.set_arith(CF);
    Ok(())
}

fn rdrand(m: &mut Machine, i: &Insn) -> ExecResult {
    draw(m, i, Feature::Rdrand)
}

fn rdseed(m: &mut Machine, i: &Insn) -> ExecResult {
    draw(m, i, Feature::Rdseed)
}
