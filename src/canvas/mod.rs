//! The canvas app: PROTOCOL.md's drawing board on top of the server core.
//!
//! [`Canvas`] implements [`App`]: each connection becomes a client task
//! ([`client`]), all of them feed the one [`hub::Hub`], and the hub keeps the
//! [`board::Board`], which the store task persists in the data dir.

mod base64;
pub(crate) mod board;
mod client;
mod config;
pub(crate) mod hub;
mod lock;
mod persist;
pub(crate) mod picture;
pub(crate) mod protocol;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{error, warn};

pub use config::CanvasConfig;

use crate::app::App;
use crate::config::{InvalidConfig, ServerConfig};
use crate::connection::Connection;
use crate::metrics::write_metric;
use crate::timeout::timeout;
use board::{Store, StoreError, StoreOp};
use hub::{Event, Hub};
use lock::{DataDirError, DataDirLock};
use persist::StoreHealth;

/// The page served at `/`.
pub const PAGE: &str = include_str!("../web/index.html");
/// Largest message a client may send unless the hub asked it for a snapshot:
/// every other canvas message is well under 1 KiB.
pub const SMALL_MESSAGE_BYTES: usize = 16 * 1024;
/// Events that may wait for the hub before client tasks slow down.
const HUB_MAILBOX: usize = 4096;
/// How long shutdown waits for the board to reach the disk.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters of the canvas, shown in `/metrics`.
#[derive(Debug, Default)]
pub struct CanvasMetrics {
    /// Canvas clients connected (as the hub counts them).
    pub clients: AtomicU64,
    /// Draws relayed (each once, whatever the number of receivers).
    pub draws_relayed: AtomicU64,
    /// Messages rejected with an `error`.
    pub invalid_messages: AtomicU64,
    /// `canvasState` messages nobody asked that sender for.
    pub canvas_states_dropped: AtomicU64,
    /// Syncs answered by a peer.
    pub syncs_from_peers: AtomicU64,
    /// Syncs answered from the server's board.
    pub syncs_from_server: AtomicU64,
    /// Peers that did not answer a `canvasRequest` in time.
    pub sync_timeouts: AtomicU64,
    /// Clients closed because their outbox was full.
    pub slow_clients_closed: AtomicU64,
    /// Clients closed for too many invalid messages.
    pub invalid_closed: AtomicU64,
    /// Clients closed for sending binary frames.
    pub binary_closed: AtomicU64,
    /// Draws in the journal now.
    pub journal_draws: AtomicU64,
    /// Size of the stored snapshot.
    pub snapshot_bytes: AtomicU64,
    /// Failed writes to the data dir.
    pub store_errors: AtomicU64,
    /// 1 while the board cannot be saved.
    pub store_degraded: AtomicU64,
}

impl CanvasMetrics {
    fn render(&self, out: &mut String) {
        let rows: [(&str, &str, &str, &AtomicU64); 14] = [
            ("smolcanvas_canvas_clients", "gauge", "Canvas clients connected.", &self.clients),
            ("smolcanvas_draws_relayed_total", "counter", "Draws relayed to the other clients.", &self.draws_relayed),
            (
                "smolcanvas_invalid_messages_total",
                "counter",
                "Messages answered with an error.",
                &self.invalid_messages,
            ),
            (
                "smolcanvas_canvas_states_dropped_total",
                "counter",
                "canvasState messages dropped (not asked for, or late).",
                &self.canvas_states_dropped,
            ),
            (
                "smolcanvas_syncs_from_peers_total",
                "counter",
                "Canvas syncs answered by a peer.",
                &self.syncs_from_peers,
            ),
            (
                "smolcanvas_syncs_from_server_total",
                "counter",
                "Canvas syncs answered from the server's board.",
                &self.syncs_from_server,
            ),
            (
                "smolcanvas_sync_timeouts_total",
                "counter",
                "Peers that did not answer a canvasRequest in time.",
                &self.sync_timeouts,
            ),
            (
                "smolcanvas_slow_clients_closed_total",
                "counter",
                "Clients closed because they read too slowly.",
                &self.slow_clients_closed,
            ),
            (
                "smolcanvas_invalid_closed_total",
                "counter",
                "Clients closed for repeated invalid messages.",
                &self.invalid_closed,
            ),
            (
                "smolcanvas_binary_closed_total",
                "counter",
                "Clients closed for sending binary frames.",
                &self.binary_closed,
            ),
            ("smolcanvas_journal_draws", "gauge", "Draws journaled since the last snapshot.", &self.journal_draws),
            ("smolcanvas_snapshot_bytes", "gauge", "Size of the stored snapshot.", &self.snapshot_bytes),
            ("smolcanvas_store_errors_total", "counter", "Failed writes to the data dir.", &self.store_errors),
            ("smolcanvas_store_degraded", "gauge", "1 while the board cannot be saved.", &self.store_degraded),
        ];
        for (name, kind, help, value) in rows {
            write_metric(out, name, kind, help, value.load(Ordering::Relaxed));
        }
    }
}

/// Why the board cannot be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The data dir cannot be created or written, or another process uses it.
    DataDir(DataDirError),
    /// The board in the data dir cannot be read.
    Store(StoreError),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::DataDir(err) => write!(f, "{err}"),
            OpenError::Store(err) => write!(f, "cannot open the board: {err}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::DataDir(err) => Some(err),
            OpenError::Store(err) => Some(err),
        }
    }
}

/// The drawing board app.
pub struct Canvas {
    config: CanvasConfig,
    events: async_channel::Sender<Event>,
    next_id: AtomicU64,
    metrics: Arc<CanvasMetrics>,
    health: Arc<StoreHealth>,
    /// Taken once by [`App::background`].
    actors: Mutex<Option<(Hub, Store, async_channel::Receiver<StoreOp>)>>,
    /// Keeps other processes out of the data dir while the board is open.
    _lock: DataDirLock,
}

impl std::fmt::Debug for Canvas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canvas").field("data_dir", &self.config.data_dir).finish_non_exhaustive()
    }
}

impl Canvas {
    /// Opens (or creates) the board in `config.data_dir`, which must be
    /// writable and not in use by another process.
    pub fn open(config: CanvasConfig) -> Result<Canvas, OpenError> {
        let lock = DataDirLock::acquire(&config.data_dir).map_err(OpenError::DataDir)?;
        let (store, board) = Store::open(&config.data_dir).map_err(OpenError::Store)?;
        let (events, events_rx) = async_channel::bounded(HUB_MAILBOX);
        let (store_tx, store_rx) = async_channel::unbounded();
        let metrics = Arc::new(CanvasMetrics::default());
        let hub = Hub::new(config.clone(), board, events_rx, store_tx, metrics.clone());
        Ok(Canvas {
            config,
            events,
            next_id: AtomicU64::new(1),
            metrics,
            health: Arc::new(StoreHealth::default()),
            actors: Mutex::new(Some((hub, store, store_rx))),
            _lock: lock,
        })
    }

    /// The canvas counters.
    pub fn metrics(&self) -> &CanvasMetrics {
        &self.metrics
    }

    fn next_client_id(&self) -> hub::ClientId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

impl App for Canvas {
    fn page(&self) -> &'static str {
        PAGE
    }

    fn message_limit(&self) -> usize {
        SMALL_MESSAGE_BYTES
    }

    fn health(&self) -> String {
        match self.health.problem() {
            Some(problem) => format!("degraded: {problem}"),
            None => "ok".to_string(),
        }
    }

    fn check(&self, server: &ServerConfig) -> Result<(), InvalidConfig> {
        self.config.validate(server)
    }

    fn write_metrics(&self, out: &mut String) {
        self.metrics.render(out);
    }

    fn serve(self: Arc<Self>, conn: Connection) -> impl Future<Output = ()> + Send {
        client::serve(self, conn)
    }

    fn background(self: Arc<Self>) -> impl Future<Output = ()> + Send {
        let actors = self.actors.lock().map(|mut a| a.take()).unwrap_or(None);
        let retry_every = persist::retry_interval(self.config.flush_interval);
        async move {
            let Some((hub, store, ops)) = actors else {
                warn!("canvas background already running");
                return;
            };
            let store = persist::run(store, ops, &self.metrics, &self.health, retry_every);
            futures_lite::future::zip(hub.run(), store).await;
        }
    }

    async fn shutdown(self: Arc<Self>) {
        let (done, flushed) = async_channel::bounded(1);
        if self.events.send(Event::Shutdown { done }).await.is_err() {
            return;
        }
        match timeout(FLUSH_TIMEOUT, flushed.recv()).await {
            Some(Ok(true)) => log::info!("board flushed to {}", self.config.data_dir.display()),
            Some(Ok(false)) => error!("the board could not be saved to {}", self.config.data_dir.display()),
            _ => error!("board flush did not complete within {FLUSH_TIMEOUT:?}"),
        }
    }
}
