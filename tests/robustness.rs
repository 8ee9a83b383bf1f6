//! hvsim never panics on guest behaviour: random bytes executed as code in every mode,
//! with random registers, always end in a stop report (an exception, an unsupported
//! instruction, a halt, the instruction limit...), never in a host panic.

use hvsim::{GuestMode, Machine, MachineConfig};
use proptest::prelude::*;

const CODE: u64 = 0x1000;

fn mode() -> impl Strategy<Value = GuestMode> {
    prop_oneof![
        Just(GuestMode::Real),
        Just(GuestMode::Protected16),
        Just(GuestMode::Protected32),
        Just(GuestMode::Long64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_code_never_panics(
        mode in mode(),
        code in proptest::collection::vec(any::<u8>(), 1..96),
        regs in proptest::array::uniform16(any::<u64>()),
        flags in any::<u64>(),
    ) {
        let mut m = Machine::new(&MachineConfig { mem_size: 1 << 20, ..MachineConfig::default() })
            .expect("machine");
        m.load(CODE, &code).expect("load");
        m.enter_mode(mode, CODE, 0x8000).expect("mode");
        for (i, v) in regs.iter().enumerate() {
            // Keep RSP sane half of the time so more code runs past the first push.
            if i != 4 || v & 1 == 0 {
                m.cpu.gpr[i] = *v;
            }
        }
        m.cpu.flags.set(flags & hvsim::cpu::flags::ARITH | hvsim::cpu::flags::FIXED1);
        let r = m.run(Some(500));
        prop_assert!(r.insn_count <= 500);
        // The report always renders.
        prop_assert!(!r.to_string().is_empty());
    }
}
