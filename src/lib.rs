//! smolcanvas: a self-hosted real-time drawing board, and the small WebSocket
//! server core it is built on.
//!
//! The core ([`server`], [`connection`], [`http`], [`outbox`]) serves one port:
//! a page at `/`, `/healthz`, `/metrics` and a WebSocket endpoint at `/ws`,
//! with heartbeats, limits and graceful shutdown. An app implements
//! [`App`]; `examples/echo.rs` is the smallest one, [`canvas`] the real one.
//!
//! What one client can make the server hold is bounded for every kind of
//! frame: its read buffer and message limit ([`limit`]), its rate
//! ([`rate`], pings included), a write buffer of 26 KiB
//! ([`server::MAX_WRITE_BUFFER`], large messages fragmented by the
//! [`connection`]) and its [`outbox`].

mod accept;
pub mod canvas;
pub mod config;
pub mod connection;
pub mod http;
pub mod limit;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod rate;
pub mod server;
pub mod stream;
#[cfg(feature = "tls")]
pub mod tls;
pub mod tripwire;
mod urls;

pub use canvas::Canvas;
pub use config::{CanvasConfig, Config, ServerConfig, TlsFiles};
pub use connection::Connection;
pub use logging::init_logging;
pub use outbox::{Outbox, OutboxReceiver, outbox};
pub use rate::TokenBucket;
pub use server::{App, Server, ServerError};
pub use tripwire::Tripwire;

/// Re-exported so apps can name messages and close codes.
pub use async_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};
