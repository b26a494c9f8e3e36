//! smolcanvas: a self-hosted real-time drawing board, and the small WebSocket
//! server core it is built on.
//!
//! The core serves one port: a page at `/`, `/healthz`, `/metrics` and a
//! WebSocket endpoint at `/ws`, with heartbeats, limits, the close handshake
//! and graceful shutdown. An app implements [`App`] and is served with
//! [`run`] (or [`Server`] for more control); `examples/echo.rs` is the
//! smallest app, `examples/chat.rs` a broadcast room, [`Canvas`] the real one.
//!
//! ```no_run
//! use std::sync::Arc;
//! use smolcanvas::{App, Connection, Request, Routed, ServerConfig};
//!
//! /// Sends every message back.
//! struct Echo;
//!
//! impl App for Echo {
//!     type Endpoint = ();
//!
//!     /// The page at `/`, the socket at `/ws`.
//!     fn route(&self, request: &Request<'_>) -> Routed<()> {
//!         Routed::page_and_socket(request, "<!doctype html><p>WebSocket echo at /ws</p>", ())
//!     }
//!
//!     async fn serve(self: Arc<Self>, mut conn: Connection, _endpoint: ()) {
//!         while let Some(message) = conn.recv().await {
//!             if conn.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     }
//! }
//!
//! smolcanvas::run(ServerConfig::default(), Echo).expect("serve until SIGINT or SIGTERM");
//! ```
//!
//! # The public API
//!
//! - [`App`]: what an application supplies: [`App::route`] answers a
//!   [`Request`] with a [`Routed`] ([`Reply`], [`Status`]), or a WebSocket
//!   endpoint whose [`Connection`] goes to [`App::serve`]; [`Spawner`] starts
//!   the app's own tasks.
//! - [`run`], [`Server`], [`ServerConfig`], [`ServerError`]: serving.
//! - [`Outbox`], [`OutboxReceiver`], [`PushError`]: a client's byte-bounded
//!   queue, for apps that broadcast (the hub-and-outboxes pattern).
//! - [`Tripwire`]: a one-shot signal (shutdown, eviction); [`timeout`].
//! - [`Message`], [`CloseCode`]: re-exported from tungstenite.
//! - [`init_logging`]; [`flags`]: the core's command-line flags and
//!   `SMOLCANVAS_*` environment variables, for binaries.
//! - [`Metrics`], [`RejectReason`]: the core's counters.
//! - [`Canvas`], [`CanvasConfig`], [`SyncMode`]: the drawing boards app.
//!
//! # Layout
//!
//! Each module builds only on those listed before it:
//!
//! - `tripwire`: a one-shot signal any number of tasks can wait for.
//! - `base64`: the standard alphabet with padding (accept keys, PNG data URLs).
//! - `timeout`: a time bound on any future.
//! - `logging`: log lines to stderr that never fail the server.
//! - `metrics`: the core's counters and their Prometheus text.
//! - `rate`: the token bucket a peer's frames spend.
//! - `config`: [`ServerConfig`] with its defaults and checks.
//! - `wire`: a plain TCP socket shared by its connection task and
//!   broadcasters, and the prepared frame written to it directly.
//! - `stream`: plain TCP or TLS behind one type.
//! - `tls`: the certificate and the TLS handshake (feature `tls`).
//! - `limit`: the per-connection message-size guard on incoming frames.
//! - `outbox`: a client's byte-bounded queue and its eviction.
//! - `connection`: one upgraded client: reads, outbox, heartbeat, close.
//! - `http`: request heads, routing, plain responses.
//! - `app`: the [`App`] trait: an app's routes ([`Request`], [`Routed`],
//!   [`Reply`]), its connections, its tasks ([`Spawner`]).
//! - `shared`: the state the listener and the connections share.
//! - `accept`: one accepted socket up to the upgrade.
//! - `os`: shutdown signals and the open-file limit.
//! - `urls`: the addresses printed at start.
//! - `server`: the listener, the executor, shutdown.
//! - `canvas`: the drawing board app on top of all this.
//! - `flags`: flags and environment variables into configurations.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod accept;
mod app;
mod base64;
mod canvas;
mod config;
mod connection;
pub mod flags;
mod http;
mod limit;
mod logging;
mod metrics;
mod os;
mod outbox;
mod rate;
mod server;
mod shared;
mod stream;
mod timeout;
#[cfg(feature = "tls")]
mod tls;
mod tripwire;
mod urls;
mod wire;

pub use app::{App, LaterReply, Reply, Request, Routed, Spawner};
pub use canvas::{Canvas, CanvasConfig, OpenError, SyncMode};
pub use config::{InvalidConfig, ServerConfig, TlsFiles};
pub use connection::Connection;
pub use http::Status;
pub use logging::init_logging;
pub use metrics::{Metrics, RejectReason};
pub use outbox::{ConnectionClosed, Outbox, OutboxReceiver, PushError};
pub use server::{Server, ServerError, run};
pub use timeout::timeout;
pub use tripwire::Tripwire;

/// Re-exported so apps can name messages and close codes.
pub use async_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

/// Parsers and recovery code exposed for the fuzz targets and their
/// regression tests, and the board picture for its benchmark; not part of
/// the supported API.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod fuzzing {
    pub use crate::canvas::store::recover_v1_journal as recover_journal;

    /// A board's `log.jsonl`: its line forms, written and read back.
    pub mod board_log {
        pub use crate::canvas::store::oplog::{
            Header, Line, LineError, LogContents, parse_line, read_log, write_header, write_op,
        };
    }

    /// The canvas messages: parsing and encoding.
    pub mod protocol {
        pub use crate::canvas::protocol::{
            ClientMessage, Draw, ErrorCode, MAX_FIELD_BYTES, PNG_DATA_URL_PREFIX, ProtocolError, canvas_state, parse,
            parse_journaled_draw,
        };
    }

    /// The server's picture of a board: painting, PNG and data URLs
    /// (`benches/picture.rs`).
    pub mod picture {
        pub use crate::canvas::picture::{
            HEIGHT, MAX_INTERLACED_PNG_PIXELS, MAX_PAINT_WIDTH, MAX_PNG_PIXELS, MAX_PNG_SIDE, MIN_PAINT_WIDTH, Picture,
            PictureError, Segment, WIDTH, data_url_png, parse_color, png_data_url,
        };
    }

    /// Request heads, routing and plain responses.
    pub mod http {
        pub use crate::http::{
            HeadError, MAX_HEAD_BYTES, Refusal, RequestHead, Route, WS_PATH, accept_key, origin_allowed, plain_status,
            response, route, switching_protocols,
        };
    }
}
