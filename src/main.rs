//! The `hvsim` binary.

use clap::Parser;

fn main() {
    let cli =
        match hvsim::cli::Cli::try_parse_from(hvsim::cli::qemu_compat_args(std::env::args_os())) {
            Ok(c) => c,
            Err(e) => {
                let status = if e.use_stderr() { 2 } else { 0 };
                let _ = e.print();
                std::process::exit(status);
            }
        };
    match hvsim::cli::main_with(cli) {
        Ok(status) => std::process::exit(status),
        Err(e) => {
            eprintln!("hvsim: {}", e.message);
            std::process::exit(e.status);
        }
    }
}
