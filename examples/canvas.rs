//! The drawing board from the library in a few lines: the same as the
//! `smolcanvas` binary, with the board kept in a directory of your choice.
//!
//! `cargo run --release --example canvas -- --listen 127.0.0.1:8080 --data-dir /tmp/board`,
//! then open <http://127.0.0.1:8080/> in two browser windows and draw.

use smolcanvas::Canvas;
use smolcanvas::flags::{self, Command};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Command::Run(config) = flags::from_env_and_args(&[flags::CORE, flags::CANVAS], std::env::args().skip(1))?
    else {
        println!("usage: canvas [smolcanvas flags]; see `smolcanvas --help`");
        return Ok(());
    };
    smolcanvas::init_logging(config.log_level);
    // The board (snapshot + journal) is recovered from the data dir here.
    let canvas = Canvas::open(config.canvas)?;
    // Serves `/`, `/healthz`, `/metrics` and `/ws` until SIGINT or SIGTERM,
    // then closes every client with 1001 and flushes the board.
    smolcanvas::run(config.server, canvas)?;
    Ok(())
}
