//! The Redis side of shared boards: the connection settings, the cluster's
//! secret and board list, the client counts every server publishes, and one
//! [`link`] task pair per loaded board.

mod import;
mod keys;
mod link;
mod prepare;
mod presence;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use log::{info, warn};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use super::{BoardLink, ClusterError, Prepared};
use crate::app::Spawner;
use crate::canvas::hub::Event;
use crate::canvas::names;
use crate::canvas::store;
use crate::metrics::write_metric;
use crate::timeout::timeout;

/// How long connecting to Redis may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may take (a partitioned Redis never answers).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// First wait after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two attempts to reach Redis.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Counters of the Redis side, in `/metrics`.
#[derive(Debug, Default)]
struct ClusterMetrics {
    appends: AtomicU64,
    errors: AtomicU64,
    snapshots: AtomicU64,
}

/// What is known of the boards in Redis.
#[derive(Debug, Default)]
struct Known {
    names: HashSet<String>,
    /// View token to board name.
    tokens: HashMap<String, String>,
}

/// Several servers sharing their boards through one Redis.
pub struct Cluster {
    client: redis::Client,
    /// This process's id among the servers (random, per run).
    server: Arc<str>,
    secret: String,
    known: Mutex<Known>,
    /// The hubs of the boards loaded here, for the counts of other servers.
    hubs: Mutex<HashMap<String, async_channel::Sender<Event>>>,
    /// Parts that cannot reach Redis now, and why (for `/healthz`).
    problems: Mutex<BTreeMap<String, String>>,
    /// The other servers' counts.
    heard: Mutex<presence::Heard>,
    /// Counts and new boards to publish.
    publish: (async_channel::Sender<presence::Publish>, async_channel::Receiver<presence::Publish>),
    links: AtomicU64,
    /// Operations appended in one round trip, at most (`--redis-append-batch`).
    append_batch: usize,
    /// How long stream entries stay after a snapshot holds them (`--redis-keep-secs`).
    keep: Duration,
    metrics: ClusterMetrics,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("server", &self.server).finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps that no code path leaves half-changed.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Cluster {
    /// Connects to the Redis at `url` (blocking, at start-up), to append up
    /// to `append_batch` operations of a board per round trip and keep stream
    /// entries `keep` after a snapshot holds them: reads or sets
    /// the cluster's secret and reads the boards that exist.
    pub fn open(url: &str, append_batch: usize, keep: Duration) -> Result<Arc<Cluster>, ClusterError> {
        let client = redis::Client::open(url).map_err(|e| ClusterError(format!("--redis {url}: {e}")))?;
        let server: Arc<str> = names::random_text(8).replace(['-', '_'], "x").into();
        let cluster = Cluster {
            client,
            server,
            secret: String::new(),
            known: Mutex::new(Known::default()),
            hubs: Mutex::new(HashMap::new()),
            problems: Mutex::new(BTreeMap::new()),
            heard: Mutex::new(presence::Heard::default()),
            publish: async_channel::unbounded(),
            links: AtomicU64::new(0),
            append_batch: append_batch.max(1),
            keep,
            metrics: ClusterMetrics::default(),
        };
        let (secret, boards) = smol::block_on(cluster.first_contact())
            .map_err(|e| ClusterError(format!("Redis at {url} cannot be used: {e}")))?;
        let cluster = Cluster { secret, ..cluster };
        {
            let mut known = lock(&cluster.known);
            for name in boards.into_iter().filter(|name| names::valid_name(name)) {
                known.tokens.insert(store::derived_view_token(&cluster.secret, &name), name.clone());
                known.names.insert(name);
            }
            info!(
                "sharing boards through Redis at {url} as server {} ({} board(s) there)",
                cluster.server,
                known.names.len()
            );
        }
        Ok(Arc::new(cluster))
    }

    async fn first_contact(&self) -> Result<(String, Vec<String>), String> {
        let mut conn = self.connect().await?;
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(keys::SECRET).arg(store::new_view_token()).arg("NX").ignore();
        pipe.cmd("GET").arg(keys::SECRET).cmd("SMEMBERS").arg(keys::BOARDS);
        command(pipe.query_async(&mut conn)).await
    }

    /// A new connection (multiplexed), within [`CONNECT_TIMEOUT`].
    async fn connect(&self) -> Result<MultiplexedConnection, String> {
        // Our own timeouts bound every command; a blocking XREAD must not be cut short by the client's.
        let config =
            AsyncConnectionConfig::new().set_response_timeout(None).set_connection_timeout(Some(CONNECT_TIMEOUT));
        match timeout(CONNECT_TIMEOUT, self.client.get_multiplexed_async_connection_with_config(&config)).await {
            Some(Ok(conn)) => Ok(conn),
            Some(Err(e)) => Err(format!("cannot connect: {e}")),
            None => Err(format!("no answer to connecting within {CONNECT_TIMEOUT:?}")),
        }
    }

    /// Moves the boards of a single server's `data_dir` into Redis, the first
    /// time it is used with `--redis` (blocking, at start-up); a board Redis
    /// has already is left to Redis. Answers how many were moved.
    pub fn import(&self, data_dir: &std::path::Path) -> Result<usize, ClusterError> {
        smol::block_on(import::import(self, data_dir))
    }

    /// Starts the tasks that publish this server's counts and read the others'.
    pub fn start(self: &Arc<Self>, spawner: &Spawner) {
        spawner.spawn(presence::publish(self.clone()));
        spawner.spawn(presence::listen(self.clone()));
    }

    /// Reads board `name` from Redis and writes its snapshot into the data
    /// dir (which is only a cache of it); answers the entries after the snapshot.
    pub async fn prepare(&self, data_dir: &std::path::Path, name: &str) -> Result<Prepared, ClusterError> {
        prepare::prepare(self, data_dir, name).await
    }

    /// Starts board `name`'s link (its appender and its reader, which reads
    /// from after entry `after`) and registers its hub for the counts.
    pub fn link(
        self: &Arc<Self>,
        name: &str,
        hub: async_channel::Sender<Event>,
        after: &str,
        spawner: &Spawner,
    ) -> BoardLink {
        let number = self.links.fetch_add(1, Ordering::Relaxed) + 1;
        // Each link numbers its operations from 1: its own id keeps a reload's numbers apart.
        let id: Arc<str> = format!("{}.{number}", self.server).into();
        lock(&self.hubs).insert(name.to_string(), hub.clone());
        {
            let mut heard = lock(&self.heard);
            heard.told.remove(name);
            presence::tell_hub(self, &mut heard, name);
        }
        let (tx, rx) = async_channel::unbounded();
        let link = link::Link::new(self.clone(), name, id.clone(), hub);
        link.spawn(spawner, rx, after.to_string());
        BoardLink { tx, server: id }
    }

    /// The link of board `name` to `hub` ended; `true` if it was the board's current one.
    fn unlinked(&self, name: &str, hub: &async_channel::Sender<Event>) -> bool {
        let mut hubs = lock(&self.hubs);
        let current = hubs.get(name).is_some_and(|current| current.same_channel(hub));
        if current {
            hubs.remove(name);
        }
        current
    }

    /// The view token of board `name`: the same on every server of the cluster.
    pub fn view_token(&self, name: &str) -> String {
        store::derived_view_token(&self.secret, name)
    }

    /// The board a view token names, if it exists in Redis.
    pub fn board_of_token(&self, token: &str) -> Option<String> {
        lock(&self.known).tokens.get(token).cloned()
    }

    /// Whether board `name` is known to exist.
    fn knows(&self, name: &str) -> bool {
        lock(&self.known).names.contains(name)
    }

    /// Every board known to exist.
    pub fn boards(&self) -> Vec<String> {
        lock(&self.known).names.iter().cloned().collect()
    }

    /// Board `name` came into being here: every server is told.
    pub fn created(&self, name: &str) {
        self.learn(name);
        let _ = self.publish.0.try_send(presence::Publish::Created(name.to_string()));
    }

    /// Board `name` exists.
    fn learn(&self, name: &str) {
        let mut known = lock(&self.known);
        if known.names.insert(name.to_string()) {
            known.tokens.insert(self.view_token(name), name.to_string());
        }
    }

    /// Records whether `part` can reach Redis.
    fn report(&self, part: &str, problem: Option<String>) {
        let mut problems = lock(&self.problems);
        match problem {
            Some(problem) => {
                if problems.insert(part.to_string(), problem.clone()).is_none() {
                    warn!("{part}: Redis cannot be reached: {problem}; retrying");
                }
                crate::metrics::add(&self.metrics.errors, 1);
            }
            None => {
                if problems.remove(part).is_some() {
                    info!("{part}: Redis answers again");
                }
            }
        }
    }

    /// What `/healthz` says of Redis: `None` while every part reaches it.
    pub fn problem(&self) -> Option<String> {
        let problems = lock(&self.problems);
        let (part, problem) = problems.iter().next()?;
        Some(format!("Redis unreachable ({part}: {problem})"))
    }

    /// Appends the Redis counters to `/metrics`.
    pub fn write_metrics(&self, out: &mut String) {
        let up = u64::from(lock(&self.problems).is_empty());
        write_metric(out, "smolcanvas_redis_up", "gauge", "1 while every part of this server reaches Redis.", up);
        let rows = [
            ("smolcanvas_redis_appends_total", "Board operations appended to Redis streams.", &self.metrics.appends),
            ("smolcanvas_redis_errors_total", "Failed Redis commands and connections.", &self.metrics.errors),
            ("smolcanvas_redis_snapshots_total", "Board snapshots written to Redis.", &self.metrics.snapshots),
        ];
        for (name, help, value) in rows {
            write_metric(out, name, "counter", help, value.load(Ordering::Relaxed));
        }
    }
}

/// A Redis command within [`COMMAND_TIMEOUT`], its error as text.
async fn command<T>(fut: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    within(COMMAND_TIMEOUT, fut).await
}

/// A Redis command within `limit`, its error as text.
async fn within<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match timeout(limit, fut).await {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(e.to_string()),
        None => Err(format!("no answer within {limit:?}")),
    }
}

/// Waits between attempts to reach Redis: 100 ms, doubling up to 2 s; reset by a success.
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(FIRST_BACKOFF)
    }

    async fn wait(&mut self) {
        smol::Timer::after(self.0).await;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
    }

    fn reset(&mut self) {
        self.0 = FIRST_BACKOFF;
    }
}
