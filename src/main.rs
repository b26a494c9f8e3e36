//! The `smolcanvas` binary: read the configuration, start logging, serve the canvas, exit.
//!
//! Exit codes: 0 after a clean shutdown, 1 when the server cannot start or
//! fails, 2 for an invalid flag or environment value (or TLS files that
//! cannot be used).

use std::process::ExitCode;

use log::{error, info};
use smolcanvas::config::{Command, Config, help_text};
use smolcanvas::{Canvas, server};

fn main() -> ExitCode {
    let config = match Config::from_env_and_args(std::env::args().skip(1)) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help(_)) => {
            print!("{}", help_text("smolcanvas"));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("smolcanvas {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("smolcanvas: {err}");
            return ExitCode::from(2);
        }
    };
    smolcanvas::init_logging(config.log_level);
    info!("smolcanvas {} starting; board in {}", env!("CARGO_PKG_VERSION"), config.canvas.data_dir.display());
    let canvas = match Canvas::open(config.canvas) {
        Ok(canvas) => canvas,
        Err(err) => {
            error!("cannot open the board: {err}");
            return ExitCode::FAILURE;
        }
    };
    match server::run(config.server, canvas) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_config() => {
            error!("{err}");
            ExitCode::from(2)
        }
        Err(err) => {
            error!("server failed: {err}");
            ExitCode::FAILURE
        }
    }
}
