//! A GDB remote-serial-protocol stub, so that a guest kernel or hypervisor can be debugged
//! with GDB (`target remote`): registers, memory by linear address, single step, software
//! breakpoints, hardware watchpoints (write, read, access), continue and interrupt
//! (Ctrl-C), and `monitor` commands for the nesting state and the vCPUs. The protocol is the `gdbstub` crate's;
//! this module maps it onto the machine.
//!
//! The debugger does not perturb the guest: memory reads translate through the guest's
//! page tables without setting accessed/dirty flags ([`hvsim_mmu::paging::peek`]),
//! breakpoints are kept by the stub (the guest's memory and debug registers are never
//! changed for them), and the run between stops is the same run as without the stub.

mod monitor;
mod target;
mod watch;

pub use target::GdbTarget;

use crate::machine::{Machine, StopReport};
use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::{run_blocking, DisconnectReason, GdbStub, SingleThreadStopReason};
use gdbstub::target::Target;
use std::net::TcpStream;
use target::RunEvent;

/// How a debugging session ended.
#[derive(Debug)]
pub enum GdbOutcome {
    /// The debugger detached; the guest keeps running without it.
    Detached,
    /// The debugger killed the guest.
    Killed,
    /// The guest stopped the machine while the debugger watched.
    Stopped(StopReport),
}

/// Errors of the stub (the connection failed or the protocol broke down).
#[derive(Debug, thiserror::Error)]
#[error("gdb stub: {0}")]
pub struct GdbError(String);

/// Serves one debugger connection until it detaches or kills the guest, or the guest
/// stops the machine.
pub fn serve(m: &mut Machine, conn: TcpStream) -> Result<GdbOutcome, GdbError> {
    let mut target = GdbTarget::new(m);
    let stub = GdbStub::new(conn);
    match stub.run_blocking::<EventLoop<'_>>(&mut target) {
        Ok(DisconnectReason::Disconnect) => Ok(match target.take_final() {
            Some(r) => GdbOutcome::Stopped(r),
            None => GdbOutcome::Detached,
        }),
        Ok(DisconnectReason::Kill) => Ok(GdbOutcome::Killed),
        Ok(DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_)) => {
            Ok(target.take_final().map_or(GdbOutcome::Killed, GdbOutcome::Stopped))
        }
        Err(e) => Err(GdbError(e.to_string())),
    }
}

/// The stub's event loop (a type only: `gdbstub` calls its functions).
struct EventLoop<'m>(std::marker::PhantomData<&'m mut ()>);

type StopReason = SingleThreadStopReason<u64>;

impl<'m> run_blocking::BlockingEventLoop for EventLoop<'m> {
    type Target = GdbTarget<'m>;
    type Connection = TcpStream;
    type StopReason = StopReason;

    fn wait_for_stop_reason(
        target: &mut GdbTarget<'m>,
        conn: &mut TcpStream,
    ) -> Result<
        run_blocking::Event<StopReason>,
        run_blocking::WaitForStopReasonError<
            <GdbTarget<'m> as Target>::Error,
            <TcpStream as Connection>::Error,
        >,
    > {
        let mut poll = || conn.peek().map(|b| b.is_some()).unwrap_or(true);
        match target.run(&mut poll) {
            RunEvent::IncomingData => {
                let byte = conn.read().map_err(run_blocking::WaitForStopReasonError::Connection)?;
                Ok(run_blocking::Event::IncomingData(byte))
            }
            RunEvent::Stopped(reason) => Ok(run_blocking::Event::TargetStopped(reason)),
        }
    }

    fn on_interrupt(_target: &mut GdbTarget<'m>) -> Result<Option<StopReason>, &'static str> {
        Ok(Some(SingleThreadStopReason::Signal(Signal::SIGINT)))
    }
}
