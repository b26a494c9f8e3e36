//! A canvas board served in-process on a fresh data dir, with a short sync timeout and flush
//! interval: the server side of the `canvas_*` tests.

use std::net::SocketAddr;
use std::time::Duration;

use smolcanvas::{Canvas, CanvasConfig, SyncMode};

use super::dir::TempDir;
use super::server::{TestServer, config};
use super::wait::WAIT;

/// How long a board started by [`Board::start`] waits for a peer's answer to a sync.
pub const SYNC_TIMEOUT: Duration = Duration::from_millis(500);

/// An in-process canvas server on its own fresh data dir; dropping it stops the server and, unless
/// the test is already failing, checks that it stopped cleanly.
pub struct Board {
    server: TestServer,
    _dir: TempDir,
}

impl Board {
    /// Starts a board on a data dir named after `name`, with `tweak` applied to its settings.
    pub fn start(name: &str, tweak: impl FnOnce(&mut CanvasConfig)) -> Board {
        let dir = TempDir::new(name);
        let mut canvas = CanvasConfig {
            data_dir: dir.path().to_path_buf(),
            sync_timeout: SYNC_TIMEOUT,
            flush_interval: Duration::from_millis(50),
            ..Default::default()
        };
        tweak(&mut canvas);
        let server = TestServer::start(config(), Canvas::open(canvas).expect("open the board"));
        Board { server, _dir: dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        self.server.wire.trip();
        if !std::thread::panicking() {
            self.server.wait_stopped(WAIT).expect("the server stops cleanly");
        }
    }
}

/// Settings tweak for the v1 suites: a v1 newcomer's sync is asked of a peer first (`--sync
/// peers`), as v1 servers did; without it the server answers every sync from its own picture.
pub fn peer_sync(canvas: &mut CanvasConfig) {
    canvas.sync = SyncMode::Peers;
}
