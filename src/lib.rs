//! hvsim: a pure-software x86 full-system emulator and hypervisor simulator.
//!
//! The library is also the test harness: build a [`Machine`], load guest code (assembled
//! with iced-x86's `code_asm` in tests), put the vCPU in a mode with
//! [`Machine::enter_mode`], [`Machine::run`] it and inspect registers, memory, serial
//! output and the [`StopReport`].

pub mod cli;
pub mod cpu;
pub mod cpuid;
pub mod example;
pub mod explain;
pub mod firmware;
pub mod gdb;
pub mod machine;
pub mod nested;
pub mod snapshot;
pub mod trace;

pub use cpu::fault::{Exception, Fault};
pub use cpu::{Cpu, CpuMode};
pub use cpuid::Vendor;
pub use machine::{GuestMode, Machine, MachineConfig, StopReason, StopReport};
