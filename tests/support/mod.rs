//! Helpers shared by the integration tests: servers in-process and as child processes, clients
//! (WebSocket, canvas, raw TCP, HTTP), canvas messages, metrics, temp dirs and bounded waits.
//!
//! Everything that links the library (`server.rs`, `canvas.rs`) is declared here; the rest is in
//! `blackbox.rs`, which the smoke test includes on its own.
#![allow(dead_code)]

#[path = "blackbox.rs"]
mod blackbox;
pub mod canvas;
pub mod server;

// Each test binary uses its own share of these.
#[allow(unused_imports)]
pub use blackbox::*;
#[allow(unused_imports)]
pub use canvas::*;
#[allow(unused_imports)]
pub use server::*;
