//! The `smolcanvas` binary: read the configuration, start logging, serve the canvas, exit.
//!
//! Exit codes: 0 after a clean shutdown, 1 when the server cannot start
//! (the data dir cannot be created or written or is in use by another
//! process, the address cannot be bound) or fails, 2 for an invalid flag or
//! environment value (or TLS files that cannot be used).
//!
//! Nothing here prints with `println!` or `eprintln!`, which panic when the
//! output is a pipe whose reader is gone; SIGPIPE stays ignored (Rust's
//! default), so such a write fails with EPIPE and is dropped.

use std::io::Write;
use std::process::ExitCode;

use log::{error, info};
use smolcanvas::flags::{self, Command};
use smolcanvas::{Canvas, ServerError};

/// The flags the binary accepts: the core's and the board's.
const FLAG_SETS: &[&[flags::Flag]] = &[flags::CORE, flags::CANVAS];

fn main() -> ExitCode {
    let config = match flags::from_env_and_args(FLAG_SETS, std::env::args().skip(1)) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help(_)) => {
            let help = flags::help_text("smolcanvas", "A self-hosted real-time drawing board.", FLAG_SETS);
            let _ = std::io::stdout().lock().write_all(help.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            let _ = writeln!(std::io::stdout().lock(), "smolcanvas {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr().lock(), "smolcanvas: {err}");
            return ExitCode::from(2);
        }
    };
    smolcanvas::init_logging(config.log_level);
    info!("smolcanvas {} starting; board in {}", env!("CARGO_PKG_VERSION"), config.canvas.data_dir.display());
    let canvas = match Canvas::open(config.canvas) {
        Ok(canvas) => canvas,
        Err(err) => {
            error!("{err}");
            return ExitCode::FAILURE;
        }
    };
    match smolcanvas::run(config.server, canvas) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err @ ServerError::Io(_)) => {
            error!("server failed: {err}");
            ExitCode::FAILURE
        }
        Err(err) if err.is_config() => {
            error!("{err}");
            ExitCode::from(2)
        }
        Err(err) => {
            error!("{err}");
            ExitCode::FAILURE
        }
    }
}
