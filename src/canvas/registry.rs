//! The boards: which exist, which are loaded, their view tokens, and the limits on both.
//!
//! A board is loaded when its first client's upgrade is routed (one hub task
//! and one store task per loaded board, started on the server's executor),
//! and unloaded by its hub `--board-unload-secs` after its last client left,
//! once nobody holds an [`Endpoint`] to it. A reload waits until the
//! unloaded board's store has flushed. Every decision is taken under one
//! lock, so the limits hold exactly: `--max-loaded-boards` boards in memory,
//! `--max-boards` boards in the data dir.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures_lite::future;
use log::{error, info};

use super::cluster::Cluster;
use super::hub::{Event, Hub, Start};
use super::names::BoardPath;
use super::store::{self, StoreError, StoreMetrics};
use super::{CanvasConfig, CanvasMetrics};
use crate::app::{Reply, Spawner};
use crate::http::Status;
use crate::timeout::timeout;

/// Events that may wait for a board's hub before client tasks slow down.
const HUB_MAILBOX: usize = 4096;
/// How long `board.png` may take (rendering runs off the executor).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// `board.png` renders of boards that are not loaded, at once: each reads a
/// floor (3.7 MB) and replays its board's log, so a burst of requests for
/// stored boards must not become a burst of memory.
const MAX_STORED_RENDERS: usize = 2;

/// A loaded board, as its clients reach it.
#[derive(Debug)]
pub struct BoardHandle {
    /// Its name.
    pub name: String,
    /// Its hub's mailbox.
    pub events: async_channel::Sender<Event>,
}

/// What a routed upgrade carries to the client task: the board and the client's role.
#[derive(Debug)]
pub struct Endpoint {
    /// The board (kept loaded while this is held).
    pub board: Arc<BoardHandle>,
    /// Connected through a view link.
    pub viewer: bool,
    /// Asked for the `smolcanvas.v2` subprotocol.
    pub v2: bool,
}

/// Why a board cannot be reached.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Unknown view token: 404.
    NotFound,
    /// A limit or the server's state: 503, and why.
    Unavailable(String),
}

/// Held by an unloading board until its store has flushed; a reload waits for it.
#[derive(Debug)]
pub struct UnloadGuard(#[allow(dead_code)] async_channel::Sender<()>);

#[derive(Debug, Default)]
struct State {
    loaded: HashMap<String, Arc<BoardHandle>>,
    stored: HashSet<String>,
    /// View token to board name, for stored boards and loaded ones.
    tokens: HashMap<String, String>,
    /// Boards whose store is still flushing after an unload.
    unloading: HashMap<String, async_channel::Receiver<()>>,
    /// Boards that cannot be saved now, and why.
    problems: BTreeMap<String, String>,
    stopping: bool,
}

/// The boards of one canvas.
#[derive(Debug)]
pub struct Registry {
    config: Arc<CanvasConfig>,
    metrics: Arc<CanvasMetrics>,
    store_metrics: Arc<StoreMetrics>,
    spawner: OnceLock<Spawner>,
    state: Mutex<State>,
    stored_renders: smol::lock::Semaphore,
    /// The other servers the boards are shared with (`--redis`); the data dir is then a cache.
    cluster: Option<Arc<Cluster>>,
}

impl Registry {
    /// The registry over the boards stored in `config.data_dir` (blocking:
    /// reads every board's meta), or with a `cluster`, over the boards in Redis.
    pub fn open(
        config: Arc<CanvasConfig>,
        metrics: Arc<CanvasMetrics>,
        cluster: Option<Arc<Cluster>>,
    ) -> Result<Registry, StoreError> {
        let mut state = State::default();
        match &cluster {
            Some(cluster) => {
                for name in cluster.boards() {
                    state.tokens.insert(cluster.view_token(&name), name.clone());
                    state.stored.insert(name);
                }
            }
            None => {
                for (name, token) in store::scan(&config.data_dir)? {
                    state.tokens.insert(token, name.clone());
                    state.stored.insert(name);
                }
                info!("{} board(s) in {}", state.stored.len(), config.data_dir.display());
            }
        }
        Ok(Registry {
            config,
            metrics,
            store_metrics: Arc::new(StoreMetrics::default()),
            spawner: OnceLock::new(),
            state: Mutex::new(state),
            stored_renders: smol::lock::Semaphore::new(MAX_STORED_RENDERS),
            cluster,
        })
    }

    /// Where boards get their tasks started; set once the server runs.
    pub fn set_spawner(&self, spawner: Spawner) {
        let _ = self.spawner.set(spawner);
    }

    /// The canvas settings.
    pub fn config(&self) -> &Arc<CanvasConfig> {
        &self.config
    }

    /// The canvas counters.
    pub fn metrics(&self) -> &Arc<CanvasMetrics> {
        &self.metrics
    }

    /// The stores' counters.
    pub fn store_metrics(&self) -> &StoreMetrics {
        &self.store_metrics
    }

    /// The board a view token names: known here, or (shared boards) made on another server.
    fn board_of_token(&self, state: &mut State, token: &str) -> Option<String> {
        if let Some(name) = state.tokens.get(token) {
            return Some(name.clone());
        }
        let name = self.cluster.as_ref()?.board_of_token(token)?;
        state.tokens.insert(token.to_string(), name.clone());
        state.stored.insert(name.clone());
        Some(name)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The lock guards plain maps that no code path leaves half-changed.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The board a socket path names, loaded (or loading) and held for the client.
    pub fn endpoint(self: &Arc<Self>, path: &BoardPath<'_>, v2: bool) -> Result<Endpoint, Refused> {
        let mut state = self.state();
        let (name, viewer) = match path {
            BoardPath::Name(name) => (name.to_string(), false),
            BoardPath::View(token) => (self.board_of_token(&mut state, token).ok_or(Refused::NotFound)?, true),
        };
        let board = self.load(&mut state, &name)?;
        Ok(Endpoint { board, viewer, v2 })
    }

    /// Whether an upgrade to the board a path names would be taken now
    /// (without loading it): what a plain GET of a socket path reports.
    pub fn admissible(&self, path: &BoardPath<'_>) -> Result<(), Refused> {
        let mut state = self.state();
        let name = match path {
            BoardPath::Name(name) => name.to_string(),
            BoardPath::View(token) => self.board_of_token(&mut state, token).ok_or(Refused::NotFound)?,
        };
        if state.loaded.contains_key(&name) {
            return Ok(());
        }
        self.check_limits(&state, &name)
    }

    fn check_limits(&self, state: &State, name: &str) -> Result<(), Refused> {
        if state.stopping {
            return Err(Refused::Unavailable("the server is shutting down".into()));
        }
        let max_loaded = self.config.max_loaded_boards;
        if state.loaded.len() >= max_loaded {
            return Err(Refused::Unavailable(format!(
                "{max_loaded} boards are open, the limit set by --max-loaded-boards; try again when one closes"
            )));
        }
        let max_boards = self.config.max_boards;
        if !state.stored.contains(name) && state.stored.len() >= max_boards {
            return Err(Refused::Unavailable(format!(
                "this server holds {max_boards} boards, the limit set by --max-boards; no new board can be made"
            )));
        }
        Ok(())
    }

    /// Whether a view token names a board (its page exists).
    pub fn knows_token(&self, token: &str) -> bool {
        let mut state = self.state();
        self.board_of_token(&mut state, token).is_some()
    }

    fn load(self: &Arc<Self>, state: &mut State, name: &str) -> Result<Arc<BoardHandle>, Refused> {
        if let Some(board) = state.loaded.get(name).filter(|_| !state.stopping) {
            return Ok(board.clone());
        }
        self.check_limits(state, name)?;
        let Some(spawner) = self.spawner.get() else {
            return Err(Refused::Unavailable("the server is starting".into()));
        };
        let (events, inbox) = async_channel::bounded(HUB_MAILBOX);
        let board = Arc::new(BoardHandle { name: name.to_string(), events: events.clone() });
        let previous = state.unloading.remove(name);
        let mailbox = Mailbox { events, inbox };
        if !spawner.spawn(run_board(self.clone(), name.to_string(), mailbox, previous)) {
            return Err(Refused::Unavailable("the server is shutting down".into()));
        }
        state.loaded.insert(name.to_string(), board.clone());
        self.metrics.boards_loaded.store(state.loaded.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(board)
    }

    /// A loaded board's first change: it comes into being if fewer than
    /// `--max-boards` exist. `false` when the limit is reached.
    pub fn create(&self, name: &str) -> bool {
        let mut state = self.state();
        if state.stored.contains(name) {
            return true;
        }
        if state.stored.len() >= self.config.max_boards {
            return false;
        }
        state.stored.insert(name.to_string());
        info!("board {name} created ({} board(s) now)", state.stored.len());
        if let Some(cluster) = &self.cluster {
            cluster.created(name);
        }
        true
    }

    /// A shared board that came into being on another server.
    pub fn exists(&self, name: &str) {
        let mut state = self.state();
        if state.stored.insert(name.to_string())
            && let Some(cluster) = &self.cluster
        {
            state.tokens.insert(cluster.view_token(name), name.to_string());
        }
    }

    /// The board `name` may be unloaded if nobody holds it: then it is no
    /// longer loaded, and the guard keeps a reload waiting until it is dropped.
    pub fn try_unload(&self, name: &str) -> Option<UnloadGuard> {
        let mut state = self.state();
        let held = state.loaded.get(name).is_some_and(|board| Arc::strong_count(board) > 1);
        if held || state.stopping {
            return None;
        }
        state.loaded.remove(name);
        self.metrics.boards_loaded.store(state.loaded.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if !state.stored.contains(name) {
            state.tokens.retain(|_, board| board != name);
        }
        state.unloading.retain(|_, done| !done.is_closed());
        let (guard, done) = async_channel::bounded(1);
        state.unloading.insert(name.to_string(), done);
        Some(UnloadGuard(guard))
    }

    fn loaded_token(&self, name: &str, token: &str) {
        self.state().tokens.insert(token.to_string(), name.to_string());
    }

    fn load_failed(&self, name: &str) {
        let mut state = self.state();
        state.loaded.remove(name);
        self.metrics.boards_loaded.store(state.loaded.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records whether board `name` can be saved (for `/healthz`).
    pub fn set_problem(&self, name: &str, problem: Option<String>) {
        let mut state = self.state();
        match problem {
            Some(problem) => state.problems.insert(name.to_string(), problem),
            None => state.problems.remove(name),
        };
    }

    /// What `/healthz` says: `None` when every board can be saved.
    pub fn problem(&self) -> Option<String> {
        let state = self.state();
        let Some((name, problem)) = state.problems.iter().next() else {
            return self.cluster.as_ref().and_then(|cluster| cluster.problem());
        };
        let more = state.problems.len() - 1;
        let more = if more > 0 { format!(" (and {more} more board(s))") } else { String::new() };
        Some(format!("board {name} not saved: {problem}{more}"))
    }

    /// Boards in the data dir.
    pub fn stored(&self) -> usize {
        self.state().stored.len()
    }

    /// `board.png` of the board a path names: rendered by its store if it is
    /// loaded, from disk otherwise (without loading it).
    pub async fn export(self: &Arc<Self>, path: BoardPath<'_>) -> Reply {
        let (name, filename) = {
            let mut state = self.state();
            match path {
                BoardPath::Name(name) => (name.to_string(), format!("{name}.png")),
                BoardPath::View(token) => match self.board_of_token(&mut state, token) {
                    Some(name) => (name, "view.png".to_string()),
                    None => return Reply::text(Status::NotFound, "404 Not Found: no board has this view link\n"),
                },
            }
        };
        let (mut loaded, stored) = {
            let state = self.state();
            (state.loaded.get(&name).cloned(), state.stored.contains(&name))
        };
        if loaded.is_none() && stored && self.cluster.is_some() {
            // A shared board is read from Redis: loading it is the way (the data dir may be stale).
            let mut state = self.state();
            match self.load(&mut state, &name) {
                Ok(board) => loaded = Some(board),
                Err(refused) => {
                    let why = match refused {
                        Refused::Unavailable(why) => why,
                        Refused::NotFound => "no such board".into(),
                    };
                    return Reply::text(Status::Unavailable, format!("503 Service Unavailable: {why}\n"));
                }
            }
        }
        if !stored {
            return Reply::text(Status::NotFound, "404 Not Found: nothing was drawn on this board yet\n");
        }
        let rendered = match loaded {
            Some(board) => {
                let (reply, answer) = async_channel::bounded(1);
                if board.events.send(Event::Export { reply }).await.is_err() {
                    return Reply::text(Status::Unavailable, "503 Service Unavailable: the board is closing\n");
                }
                drop(board);
                match timeout(EXPORT_TIMEOUT, answer.recv()).await {
                    Some(Ok(rendered)) => rendered.map(Some),
                    _ => return Reply::text(Status::Unavailable, "503 Service Unavailable: the board is busy\n"),
                }
            }
            None => {
                let Some(_permit) = timeout(EXPORT_TIMEOUT, self.stored_renders.acquire()).await else {
                    return Reply::text(Status::Unavailable, "503 Service Unavailable: too many board.png at once\n");
                };
                crate::metrics::add(&self.metrics.exports, 1);
                let (dir, window, board) = (self.config.data_dir.clone(), self.config.undo_strokes, name.clone());
                smol::unblock(move || store::render_stored(&dir, &board, window)).await
            }
        };
        match rendered {
            Ok(Some(png)) => Reply {
                status: Status::Ok,
                content_type: "image/png",
                headers: format!("Content-Disposition: inline; filename=\"{filename}\"\r\n"),
                body: png.into(),
            },
            Ok(None) => Reply::text(Status::NotFound, "404 Not Found: nothing was drawn on this board yet\n"),
            Err(err) => {
                error!("board {name}: board.png failed: {err}");
                Reply::text(Status::Unavailable, "503 Service Unavailable: the board cannot be read now\n")
            }
        }
    }

    /// Tells every loaded board's clients that the server is stopping.
    pub fn stopping(&self) {
        for board in self.state().loaded.values() {
            let _ = board.events.try_send(Event::Stopping);
        }
    }

    /// Flushes every board; `true` if all of them are on disk.
    pub async fn shutdown(&self) -> bool {
        let (boards, unloading) = {
            let mut state = self.state();
            state.stopping = true;
            let boards: Vec<Arc<BoardHandle>> = state.loaded.values().cloned().collect();
            (boards, state.unloading.drain().map(|(_, done)| done).collect::<Vec<_>>())
        };
        let mut saved = true;
        let mut waiting = Vec::new();
        for board in boards {
            let (done, flushed) = async_channel::bounded(1);
            if board.events.send(Event::Shutdown { done }).await.is_ok() {
                waiting.push((board.name.clone(), flushed));
            }
        }
        for (name, flushed) in waiting {
            match flushed.recv().await {
                Ok(true) => {}
                _ => {
                    error!("board {name} could not be saved");
                    saved = false;
                }
            }
        }
        for done in unloading {
            let _ = done.recv().await;
        }
        saved
    }
}

/// Both ends of a board's hub mailbox, for the task that runs the board.
struct Mailbox {
    events: async_channel::Sender<Event>,
    inbox: async_channel::Receiver<Event>,
}

/// A loaded board's life: wait for a previous unload to finish, load (from
/// Redis first when boards are shared), run the hub and the store until
/// unloaded or stopped.
async fn run_board(
    registry: Arc<Registry>,
    name: String,
    mailbox: Mailbox,
    previous: Option<async_channel::Receiver<()>>,
) {
    if let Some(previous) = previous {
        let _ = previous.recv().await;
    }
    let prepared = match &registry.cluster {
        Some(cluster) => match cluster.prepare(&registry.config.data_dir, &name).await {
            Ok(prepared) => Some(prepared),
            Err(err) => {
                error!("{err}; its clients are closed");
                registry.load_failed(&name);
                return;
            }
        },
        None => None,
    };
    let (dir, window, loading) = (registry.config.data_dir.clone(), registry.config.undo_strokes, name.clone());
    let loaded = match smol::unblock(move || store::load(&dir, &loading, window)).await {
        Ok(loaded) => loaded,
        Err(err) => {
            error!("board {name} cannot be loaded: {err}; its clients are closed");
            registry.load_failed(&name);
            return;
        }
    };
    info!("board {name} loaded ({} live item(s))", loaded.board.items().len());
    let (view, link, entries) = match (&registry.cluster, prepared, registry.spawner.get()) {
        (Some(cluster), Some(prepared), Some(spawner)) => {
            if loaded.exists {
                registry.exists(&name); // Made on another server while this one did not hear of it.
            }
            let link = cluster.link(&name, mailbox.events.clone(), &prepared.last, spawner);
            (cluster.view_token(&name), Some(link), prepared.entries)
        }
        _ => (loaded.view, None, Vec::new()),
    };
    drop(mailbox.events);
    registry.loaded_token(&name, &view);
    let (store_tx, store_rx) = async_channel::unbounded();
    let (news_tx, news_rx) = async_channel::unbounded();
    // A shared board's store hands its snapshots to the link itself (the one made at unload too).
    let snapshots = link.as_ref().map(|link| link.tx.clone());
    let start = Start { name, board: loaded.board, floor_url: loaded.floor_url, exists: loaded.exists, view, link };
    let mut hub = Hub::new(start, registry.clone(), mailbox.inbox, news_rx, store_tx);
    hub.catch_up(entries);
    let flush_interval = registry.config.flush_interval;
    let store = loaded.store.run(store_rx, news_tx, flush_interval, registry.store_metrics(), snapshots);
    let (guard, ()) = future::zip(hub.run(), store).await;
    drop(guard);
}
