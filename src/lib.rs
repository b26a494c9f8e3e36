//! smolcanvas: a self-hosted real-time drawing board, and the small WebSocket
//! server core it is built on.
//!
//! The core ([`server`], [`connection`], [`http`], [`outbox`]) serves one port:
//! a page at `/`, `/healthz`, `/metrics` and a WebSocket endpoint at `/ws`,
//! with heartbeats, limits and graceful shutdown. An app implements
//! [`App`]; `examples/echo.rs` is the smallest one, [`canvas`] the real one.

mod accept;
pub mod canvas;
pub mod config;
pub mod connection;
pub mod http;
pub mod limit;
pub mod metrics;
pub mod outbox;
pub mod rate;
pub mod server;
pub mod stream;
#[cfg(feature = "tls")]
pub mod tls;
pub mod tripwire;

pub use canvas::Canvas;
pub use config::{CanvasConfig, Config, ServerConfig, TlsFiles};
pub use connection::Connection;
pub use outbox::{Outbox, OutboxReceiver, outbox};
pub use rate::TokenBucket;
pub use server::{App, Server, ServerError};
pub use tripwire::Tripwire;

/// Re-exported so apps can name messages and close codes.
pub use async_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

/// Starts `simple_logger` at `level` for this crate and the app, keeping the
/// WebSocket and I/O crates at `warn` (they are chatty at debug).
pub fn init_logging(level: log::LevelFilter) {
    let quiet = level.min(log::LevelFilter::Warn);
    let _ = simple_logger::SimpleLogger::new()
        .with_level(level)
        .with_utc_timestamps()
        .with_module_level("tungstenite", quiet)
        .with_module_level("async_tungstenite", quiet)
        .with_module_level("async_io", quiet)
        .with_module_level("polling", quiet)
        .init();
}
