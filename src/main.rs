//! The `smolcanvas` binary: read the configuration, start logging, serve the canvas, exit.
//!
//! Exit codes: 0 after a clean shutdown, 1 when the server cannot start
//! (the data dir cannot be created or written or is in use by another
//! process, the address cannot be bound) or fails, 2 for an invalid flag or
//! environment value (or TLS files that cannot be used).
//!
//! `smolcanvas healthcheck [FLAGS]` asks the server those flags describe whether
//! it is up (see `healthcheck.rs`): exit 0 when it is, 1 otherwise, also for a
//! flag it cannot use (a container HEALTHCHECK reserves 2).
//!
//! Nothing here prints with `println!` or `eprintln!`, which panic when the
//! output is a pipe whose reader is gone; SIGPIPE stays ignored (Rust's
//! default), so such a write fails with EPIPE and is dropped.

mod healthcheck;

use std::io::Write;
use std::process::ExitCode;

use log::{error, info};
use smolcanvas::flags::{self, Command, Config};
use smolcanvas::{Canvas, ServerError};

/// The flags the binary accepts: the core's and the board's.
const FLAG_SETS: &[&[flags::Flag]] = &[flags::CORE, flags::CANVAS];

/// The subcommand that checks a running server instead of starting one.
const HEALTHCHECK: &str = "healthcheck";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.next_if(|arg| arg == HEALTHCHECK).is_some() {
        return healthcheck(args);
    }
    let config = match read_config(args, "smolcanvas", ExitCode::from(2)) {
        Ok(config) => config,
        Err(code) => return code,
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

/// The configuration `args` and the environment give; otherwise the exit code once `--help` or
/// `--version` is printed (success), or the error is (`invalid`, after one line naming it).
fn read_config(args: impl Iterator<Item = String>, program: &str, invalid: ExitCode) -> Result<Config, ExitCode> {
    match flags::from_env_and_args(FLAG_SETS, args) {
        Ok(Command::Run(config)) => Ok(*config),
        Ok(Command::Help(_)) => {
            print_help();
            Err(ExitCode::SUCCESS)
        }
        Ok(Command::Version) => {
            print_version();
            Err(ExitCode::SUCCESS)
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr().lock(), "{program}: {err}");
            Err(invalid)
        }
    }
}

fn print_help() {
    let mut help = flags::help_text("smolcanvas", "A self-hosted real-time drawing board.", FLAG_SETS);
    help.push_str(
        "\nsmolcanvas healthcheck [FLAGS]\n  GET /healthz of the server these flags describe (plain HTTP);\n  \
         print its answer, exit 0 if it is up, 1 if not\n",
    );
    let _ = std::io::stdout().lock().write_all(help.as_bytes());
}

fn print_version() {
    let _ = writeln!(std::io::stdout().lock(), "smolcanvas {}", env!("CARGO_PKG_VERSION"));
}

/// `smolcanvas healthcheck`: exit 0 and print the health body when the server is up, else 1.
fn healthcheck(args: impl Iterator<Item = String>) -> ExitCode {
    // A health check never exits 2: container runtimes reserve that code.
    let config = match read_config(args, "smolcanvas healthcheck", ExitCode::FAILURE) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match healthcheck::check(&config.server) {
        Ok(body) => {
            let _ = writeln!(std::io::stdout().lock(), "{body}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            let _ = writeln!(std::io::stderr().lock(), "smolcanvas healthcheck: down: {why}");
            ExitCode::FAILURE
        }
    }
}
