//! The canvas app: PROTOCOL.md's drawing boards on top of the server core.
//!
//! [`Canvas`] implements [`App`]: it routes board paths ([`names`]), the
//! [`registry::Registry`] loads each board on demand into its own
//! [`hub::Hub`] and store task, and each connection becomes a client task
//! ([`client`]) that feeds its board's hub.

mod assets;
mod client;
// Without the `redis` feature nothing reads what the hub hands its (never made) link.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) mod cluster;
mod config;
pub(crate) mod hub;
mod lock;
pub(crate) mod model;
pub(crate) mod names;
mod peer_sync;
pub(crate) mod picture;
pub(crate) mod protocol;
mod registry;
pub(crate) mod store;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use log::error;

pub use config::{CanvasConfig, SyncMode};

use crate::app::{App, Reply, Request, Routed, Spawner};
use crate::config::{InvalidConfig, ServerConfig};
use crate::connection::Connection;
use crate::http::Status;
use crate::metrics::write_metric;
use crate::timeout::timeout;
use cluster::{Cluster, ClusterError};
use lock::{DataDirError, DataDirLock};
use names::{BoardPath, Resource};
use registry::{Endpoint, Refused, Registry};
use store::StoreError;

/// The subprotocol a v2 client offers.
pub const V2_PROTOCOL: &str = "smolcanvas.v2";
/// The page served at `/`, `/b/NAME` and `/v/TOKEN`.
pub const PAGE: &str = assets::PAGE;
/// Largest message a client may send unless the hub asked it for a snapshot:
/// every other canvas message is well under 1 KiB.
pub const SMALL_MESSAGE_BYTES: usize = 16 * 1024;
/// How long shutdown waits for the boards to reach the disk.
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
    /// Boards held in memory.
    pub boards_loaded: AtomicU64,
    /// Strokes and clears undone.
    pub undos: AtomicU64,
    /// Strokes redone.
    pub redos: AtomicU64,
    /// `board.png` answers rendered.
    pub exports: AtomicU64,
}

impl CanvasMetrics {
    fn render(&self, out: &mut String) {
        let rows: [(&str, &str, &str, &AtomicU64); 14] = [
            ("smolcanvas_canvas_clients", "gauge", "Canvas clients connected, on every board.", &self.clients),
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
                "Canvas syncs answered from the server's picture.",
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
            ("smolcanvas_boards_loaded", "gauge", "Boards held in memory.", &self.boards_loaded),
            ("smolcanvas_undos_total", "counter", "Strokes and clears undone.", &self.undos),
            ("smolcanvas_redos_total", "counter", "Strokes redone.", &self.redos),
            ("smolcanvas_exports_total", "counter", "board.png answers rendered.", &self.exports),
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
    /// The boards in the data dir cannot be read.
    Store(StoreError),
    /// `--redis` names a Redis that cannot be used.
    Cluster(ClusterError),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::DataDir(err) => write!(f, "{err}"),
            OpenError::Store(err) => write!(f, "cannot open the board: {err}"),
            OpenError::Cluster(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::DataDir(err) => Some(err),
            OpenError::Store(err) => Some(err),
            OpenError::Cluster(err) => Some(err),
        }
    }
}

/// The drawing board app.
pub struct Canvas {
    config: Arc<CanvasConfig>,
    registry: Arc<Registry>,
    next_id: AtomicU64,
    /// Starts every `clientId` of this run, so ids are never reused across restarts.
    id_prefix: String,
    metrics: Arc<CanvasMetrics>,
    /// The servers the boards are shared with (`--redis`).
    cluster: Option<Arc<Cluster>>,
    /// Keeps other processes out of the data dir while the boards are open.
    _lock: DataDirLock,
}

impl std::fmt::Debug for Canvas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canvas").field("data_dir", &self.config.data_dir).finish_non_exhaustive()
    }
}

/// Random characters before the counter in a `clientId` (36 bits).
const CLIENT_ID_PREFIX_CHARS: usize = 6;

impl Canvas {
    /// Opens (or creates) the boards in `config.data_dir`, which must be
    /// writable and not in use by another process. A v1 data dir's board
    /// becomes board `main` here.
    pub fn open(config: CanvasConfig) -> Result<Canvas, OpenError> {
        let lock = DataDirLock::acquire(&config.data_dir).map_err(OpenError::DataDir)?;
        store::migrate_v1(&config.data_dir, config.undo_strokes).map_err(OpenError::Store)?;
        let cluster = config
            .redis
            .as_deref()
            .map(|url| Cluster::open(url, config.redis_append_batch, config.redis_keep))
            .transpose()
            .map_err(OpenError::Cluster)?;
        if let Some(cluster) = &cluster {
            cluster.import(&config.data_dir).map_err(OpenError::Cluster)?;
        }
        let config = Arc::new(config);
        let metrics = Arc::new(CanvasMetrics::default());
        let registry = Registry::open(config.clone(), metrics.clone(), cluster.clone()).map_err(OpenError::Store)?;
        // `-` and `_` would make ids harder to read in logs; letters and digits suffice.
        let id_prefix: String = names::random_text(CLIENT_ID_PREFIX_CHARS)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { 'x' })
            .collect();
        Ok(Canvas {
            config,
            registry: Arc::new(registry),
            next_id: AtomicU64::new(1),
            id_prefix,
            metrics,
            cluster,
            _lock: lock,
        })
    }

    /// The canvas counters.
    pub fn metrics(&self) -> &CanvasMetrics {
        &self.metrics
    }

    fn next_client(&self) -> (hub::ClientId, Arc<str>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (id, format!("{}{id}", self.id_prefix).into())
    }
}

/// The page, or `304` when the browser's copy is current.
fn page(request: &Request<'_>) -> Reply {
    let etag = assets::page_etag();
    let headers = format!("ETag: {etag}\r\nCache-Control: {}\r\n", assets::PAGE_CACHE_CONTROL);
    if assets::not_modified(request.header("if-none-match"), etag) {
        return Reply { headers, ..Reply::text(Status::NotModified, "") };
    }
    Reply { headers, ..Reply::html(PAGE) }
}

/// A board that cannot be reached, answered.
fn refusal<E>(refused: Refused) -> Routed<E> {
    match refused {
        Refused::NotFound => Routed::NotFound,
        Refused::Unavailable(why) => {
            Routed::Reply(Reply::text(Status::Unavailable, format!("503 Service Unavailable: {why}\n")))
        }
    }
}

impl App for Canvas {
    type Endpoint = Endpoint;

    fn route(&self, request: &Request<'_>) -> Routed<Endpoint> {
        if request.path == "/new" {
            return Routed::Reply(Reply::see_other(&format!("/b/{}", names::new_name())));
        }
        let Some((board, resource)) = names::parse_path(request.path) else {
            return Routed::NotFound;
        };
        match resource {
            Resource::Page => match board {
                BoardPath::View(token) if !self.registry.knows_token(token) => Routed::NotFound,
                _ => Routed::Reply(page(request)),
            },
            // A plain GET of a socket path says whether an upgrade would be
            // taken (426) or why not (404, 503): the page asks this to explain a failed connect.
            Resource::Socket if !request.upgrade => match self.registry.admissible(&board) {
                Ok(()) => Routed::UpgradeRequired,
                Err(refused) => refusal(refused),
            },
            Resource::Socket => {
                let v2 = request.offers(V2_PROTOCOL);
                match self.registry.endpoint(&board, v2) {
                    Ok(endpoint) => Routed::Socket { endpoint, protocol: v2.then_some(V2_PROTOCOL) },
                    Err(refused) => refusal(refused),
                }
            }
            Resource::Png => {
                let registry = self.registry.clone();
                let board = match board {
                    BoardPath::Name(name) => (name.to_string(), false),
                    BoardPath::View(token) => (token.to_string(), true),
                };
                Routed::Later(Box::pin(async move {
                    let path = if board.1 { BoardPath::View(&board.0) } else { BoardPath::Name(&board.0) };
                    registry.export(path).await
                }))
            }
        }
    }

    fn public(&self, path: &str) -> bool {
        // A view link is shared with people who do not have the access key.
        path.starts_with("/v/")
    }

    fn message_limit(&self) -> usize {
        SMALL_MESSAGE_BYTES
    }

    fn health(&self) -> String {
        match self.registry.problem() {
            Some(problem) => format!("degraded: {problem}"),
            None => "ok".to_string(),
        }
    }

    fn check(&self, server: &ServerConfig) -> Result<(), InvalidConfig> {
        self.config.validate(server)
    }

    fn write_metrics(&self, out: &mut String) {
        self.metrics.render(out);
        let stored = self.registry.stored() as u64;
        write_metric(out, "smolcanvas_boards_stored", "gauge", "Boards in the data dir.", stored);
        self.registry.store_metrics().render(out);
        if let Some(cluster) = &self.cluster {
            cluster.write_metrics(out);
        }
    }

    fn serve(self: Arc<Self>, conn: Connection, endpoint: Endpoint) -> impl Future<Output = ()> + Send {
        client::serve(self, conn, endpoint)
    }

    fn background(self: Arc<Self>, spawner: Spawner) -> impl Future<Output = ()> + Send {
        if let Some(cluster) = &self.cluster {
            cluster.start(&spawner);
        }
        self.registry.set_spawner(spawner);
        async {}
    }

    fn stopping(&self) {
        self.registry.stopping();
    }

    async fn shutdown(self: Arc<Self>) {
        match timeout(FLUSH_TIMEOUT, self.registry.shutdown()).await {
            Some(true) => log::info!("every board is flushed to {}", self.config.data_dir.display()),
            Some(false) => error!("some boards could not be saved to {}", self.config.data_dir.display()),
            None => error!("the boards' flush did not complete within {FLUSH_TIMEOUT:?}"),
        }
    }
}
