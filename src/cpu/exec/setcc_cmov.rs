//! SETcc and CMOVcc.

use super::{read, write, write_sized};
use crate::cpu::fault::ExecResult;
use crate::cpu::insn::{Handler, Insn};
use crate::machine::Machine;
use hvsim_decoder::iced::{Instruction, Mnemonic};

macro_rules! by_cc {
    ($f:ident, $cc:expr) => {
        match $cc {
            0 => $f::<0>,
            1 => $f::<1>,
            2 => $f::<2>,
            3 => $f::<3>,
            4 => $f::<4>,
            5 => $f::<5>,
            6 => $f::<6>,
            7 => $f::<7>,
            8 => $f::<8>,
            9 => $f::<9>,
            10 => $f::<10>,
            11 => $f::<11>,
            12 => $f::<12>,
            13 => $f::<13>,
            14 => $f::<14>,
            15 => $f::<15>,
            _ => return None,
        }
    };
}

pub(super) fn select(i: &Instruction) -> Option<Handler> {
    let cc = super::x86_condition(i)?;
    let is_setcc = matches!(
        i.mnemonic(),
        Mnemonic::Seto
            | Mnemonic::Setno
            | Mnemonic::Setb
            | Mnemonic::Setae
            | Mnemonic::Sete
            | Mnemonic::Setne
            | Mnemonic::Setbe
            | Mnemonic::Seta
            | Mnemonic::Sets
            | Mnemonic::Setns
            | Mnemonic::Setp
            | Mnemonic::Setnp
            | Mnemonic::Setl
            | Mnemonic::Setge
            | Mnemonic::Setle
            | Mnemonic::Setg
    );
    let is_cmov = matches!(
        i.mnemonic(),
        Mnemonic::Cmovo
            | Mnemonic::Cmovno
            | Mnemonic::Cmovb
            | Mnemonic::Cmovae
            | Mnemonic::Cmove
            | Mnemonic::Cmovne
            | Mnemonic::Cmovbe
            | Mnemonic::Cmova
            | Mnemonic::Cmovs
            | Mnemonic::Cmovns
            | Mnemonic::Cmovp
            | Mnemonic::Cmovnp
            | Mnemonic::Cmovl
            | Mnemonic::Cmovge
            | Mnemonic::Cmovle
            | Mnemonic::Cmovg
    );
    Some(if is_setcc {
        by_cc!(setcc, cc)
    } else if is_cmov {
        by_cc!(cmovcc, cc)
    } else {
        return None;
    })
}

fn setcc<const CC: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    let v = u64::from(m.cpu.flags.cond(CC));
    write_sized(m, i, 0, 1, v)
}

fn cmovcc<const CC: u8>(m: &mut Machine, i: &Insn) -> ExecResult {
    // The source is read (and may fault) whatever the condition.
    let v = read(m, i, 1)?;
    if m.cpu.flags.cond(CC) {
        write(m, i, 0, v)
    } else if i.osize == 4 {
        // SDM Vol. 2A "CMOVcc": in 64-bit mode a 32-bit CMOV zero-extends the
        // destination even when the condition is false.
        let cur = read(m, i, 0)?;
        write(m, i, 0, cur)
    } else {
        Ok(())
    }
}
