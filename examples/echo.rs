//! Echo server: every text or binary message sent to `/ws` comes back unchanged.
//!
//! Run `cargo run --release --example echo -- --listen 127.0.0.1:8080`, then in
//! a browser console on any page of that origin:
//! `ws = new WebSocket("ws://127.0.0.1:8080/ws"); ws.onmessage = e => console.log(e.data); ws.onopen = () => ws.send("hi")`.
//! It takes the server core's flags (see `--help`).

use std::process::ExitCode;
use std::sync::Arc;

use smolcanvas::flags::{self, Command};
use smolcanvas::{App, Connection, Request, Routed};

/// The echo app: a one-line page and a handler that sends every message back.
struct Echo;

impl App for Echo {
    type Endpoint = ();

    fn route(&self, request: &Request<'_>) -> Routed<()> {
        Routed::page_and_socket(
            request,
            "<!doctype html><title>echo</title><p>WebSocket echo at <code>/ws</code>.</p>",
            (),
        )
    }

    async fn serve(self: Arc<Self>, mut conn: Connection, _endpoint: ()) {
        // `recv` answers pings, enforces the idle timeout and closes with 1001
        // at shutdown; it returns `None` once the connection is over.
        while let Some(message) = conn.recv().await {
            if conn.send(message).await.is_err() {
                break;
            }
        }
    }
}

fn main() -> ExitCode {
    let config = match flags::from_env_and_args(&[flags::CORE], std::env::args().skip(1)) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help(_)) => return print(flags::help_text("echo", "A WebSocket echo server.", &[flags::CORE])),
        Ok(Command::Version) => return print(env!("CARGO_PKG_VERSION").to_string()),
        Err(err) => {
            eprintln!("echo: {err}");
            return ExitCode::from(2);
        }
    };
    smolcanvas::init_logging(config.log_level);
    match smolcanvas::run(config.server, Echo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn print(text: String) -> ExitCode {
    println!("{text}");
    ExitCode::SUCCESS
}
