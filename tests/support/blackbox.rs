//! The test helpers that do not link the library: they reach a server only through its port,
//! and a binary only through its command line, its stderr and signals. `mod.rs` adds the
//! in-process ones; the smoke test, which runs foreign-architecture builds as black boxes,
//! includes this file alone as its `support` module.
#![allow(dead_code)]

pub mod board;
pub mod boards;
pub mod command;
pub mod dir;
pub mod disk;
pub mod frame;
pub mod http;
pub mod image;
pub mod messages;
pub mod metrics;
pub mod nginx;
pub mod peer;
pub mod process;
pub mod raw;
pub mod tools;
pub mod wait;
pub mod ws;

// Each test binary uses its own share of these.
#[allow(unused_imports)]
pub use board::*;
#[allow(unused_imports)]
pub use boards::*;
#[allow(unused_imports)]
pub use command::*;
#[allow(unused_imports)]
pub use dir::*;
#[allow(unused_imports)]
pub use disk::*;
#[allow(unused_imports)]
pub use frame::*;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use image::*;
#[allow(unused_imports)]
pub use messages::*;
#[allow(unused_imports)]
pub use metrics::*;
#[allow(unused_imports)]
pub use nginx::*;
#[allow(unused_imports)]
pub use peer::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use raw::*;
#[allow(unused_imports)]
pub use tools::*;
#[allow(unused_imports)]
pub use wait::*;
#[allow(unused_imports)]
pub use ws::*;
