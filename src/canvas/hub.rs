//! One loaded board's hub: the actor that owns the board's clients and its model.
//!
//! Client tasks send [`Event`]s; the hub relays draws to every other client
//! at once (v1 and v2 forms of the same draw), applies every change to its
//! [`Board`] model and hands the same [`Op`] to the board's store task, which
//! paints and writes to disk: nothing slow runs here. Syncs are answered from
//! the floor image the store last encoded plus the items above it; with
//! `--sync peers` a v1 newcomer's sync is asked of a peer first
//! ([`super::peer_sync`]). Broadcasts of `clientCount` are coalesced to one
//! per [`COUNT_INTERVAL`]; a v1 client is synced again after an undo or redo
//! at most once per [`V1_RESYNC_INTERVAL`]. With no client left, the board is
//! unloaded after `--board-unload-secs`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{Message, Utf8Bytes};
use futures_lite::future::FutureExt;
use log::{debug, error, info, warn};
use smol::Timer;

use super::cluster::{BoardLink, Entry, LinkMsg, MAX_UNSHARED_OPS};
use super::config::SyncMode;
use super::model::{Author, Board, Item, Op, Outcome, StrokeKey, visible};
use super::peer_sync::{Action, PeerSync};
use super::protocol::{self, ErrorCode, ProtocolError, STROKE_LIMIT};
use super::registry::{Registry, UnloadGuard};
use super::store::{StoreError, StoreMsg, StoreNews};
use super::{CanvasConfig, CanvasMetrics};
use crate::limit::MessageLimit;
use crate::metrics::add;
use crate::outbox::{Outbox, PushError};
use crate::wire::PreparedFrame;

/// A client's number on the server: unique, increasing in connection order.
pub type ClientId = u64;

/// Shortest time between two `clientCount` broadcasts.
pub const COUNT_INTERVAL: Duration = Duration::from_millis(50);
/// Shortest time between two syncs a client asks for itself.
pub const CANVAS_REQUEST_COOLDOWN: Duration = Duration::from_secs(2);
/// Shortest time between two resyncs of a board's v1 clients after undo or redo (PROTOCOL.md).
pub const V1_RESYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How often a held-back `canvasRequest` checks whether its client has read its last sync.
const UNREAD_SYNC_RECHECK: Duration = Duration::from_millis(100);
/// How soon a board being reloaded from Redis tries again to unload while a newcomer holds it.
const RESET_RETRY: Duration = Duration::from_millis(100);
/// Events handled per wake-up before time-based work gets its turn.
const MAX_EVENTS_PER_WAKE: usize = 1024;

/// What client tasks (and the registry) tell a board's hub.
#[derive(Debug)]
pub enum Event {
    /// A client connected; messages for it go to `outbox`.
    Join {
        /// Its number.
        id: ClientId,
        /// Its `clientId` on the wire.
        name: Arc<str>,
        /// Where to put what it should receive.
        outbox: Outbox,
        /// Its cap on incoming messages, raised while it owes a snapshot.
        limit: MessageLimit,
        /// Speaks v2.
        v2: bool,
        /// Connected through a view link.
        viewer: bool,
    },
    /// A client disconnected.
    Leave {
        /// Its number.
        id: ClientId,
    },
    /// A valid draw from an editor.
    Draw {
        /// The sender.
        from: ClientId,
        /// The normalized v1 `draw` message.
        draw: Utf8Bytes,
        /// A v2 client's stroke number.
        stroke: Option<u32>,
    },
    /// `clear` from an editor.
    Clear {
        /// The sender.
        from: ClientId,
    },
    /// `undo` from an editor.
    Undo {
        /// The sender.
        from: ClientId,
    },
    /// `redo` from an editor.
    Redo {
        /// The sender.
        from: ClientId,
    },
    /// `hello`: the sender's author from now on.
    Hello {
        /// The sender.
        from: ClientId,
        /// The hash of its author secret.
        author: Author,
    },
    /// A client asks for a fresh sync for itself.
    CanvasRequest {
        /// The sender.
        from: ClientId,
    },
    /// A client answers a `canvasRequest`.
    CanvasState {
        /// The sender.
        from: ClientId,
        /// The `clientId` it answered for.
        client_id: String,
        /// The PNG data URL.
        data: String,
    },
    /// `board.png`: the board as it is now.
    Export {
        /// Gets the PNG.
        reply: async_channel::Sender<Result<Vec<u8>, StoreError>>,
    },
    /// The server is stopping: tell the v2 clients.
    Stopping,
    /// A shared board's next entries, in the order every server applies them.
    Shared(Vec<Entry>),
    /// `Some(why)` when the board stops being shared (Redis cannot be reached), `None` when it is again.
    SharedState(Option<String>),
    /// Clients of this board on the other servers.
    RemoteCount(usize),
    /// The board's stream was trimmed past what this server read: reload the board.
    Reset,
    /// Flush the board; answer on `done` once it is on disk.
    Shutdown {
        /// Answered when the flush is complete: whether the board is saved.
        done: async_channel::Sender<bool>,
    },
}

#[derive(Debug)]
struct Client {
    id: ClientId,
    name: Arc<str>,
    outbox: Outbox,
    limit: MessageLimit,
    v2: bool,
    viewer: bool,
    author: Author,
    /// Has a complete board (received a canvasState); only such peers are asked.
    synced: bool,
    /// When its latest `canvasRequest` started a sync (the cooldown runs from here).
    requested_sync_at: Option<Instant>,
    /// The stroke it is drawing: its number and key.
    open: Option<(u32, StrokeKey)>,
    /// Stroke numbers the server makes up for draws without one (from 2^31 up).
    made_up: u64,
    /// Its draws were refused for `--max-boards` (the log says so once).
    told_board_limit: bool,
}

/// Where the hub's board stands, from loading.
pub struct Start {
    /// The board's name.
    pub name: String,
    /// The model as loaded.
    pub board: Board,
    /// The floor as a PNG data URL, `None` while white.
    pub floor_url: Option<Utf8Bytes>,
    /// Whether the board exists (something was drawn on it).
    pub exists: bool,
    /// The board's view token.
    pub view: String,
    /// A shared board's link to Redis.
    pub link: Option<BoardLink>,
}

/// The broadcaster actor of one board. Create it with [`Hub::new`], run it with [`Hub::run`].
pub struct Hub {
    name: String,
    view_path: String,
    config: Arc<CanvasConfig>,
    metrics: Arc<CanvasMetrics>,
    registry: Arc<Registry>,
    events: async_channel::Receiver<Event>,
    news: async_channel::Receiver<StoreNews>,
    store: async_channel::Sender<StoreMsg>,
    clients: Vec<Client>,
    board: Board,
    exists: bool,
    /// Items committed since the floor image below was encoded, oldest first.
    pending: VecDeque<Item>,
    floor_url: Utf8Bytes,
    floor_committed: u64,
    peers: PeerSync,
    /// Clients' own `canvasRequest`s held back by the cooldown, and when they are due.
    resyncs: Vec<(ClientId, Instant)>,
    v1_resync_at: Option<Instant>,
    v1_resynced_at: Option<Instant>,
    count_dirty: bool,
    count_sent_at: Option<Instant>,
    unload_at: Option<Instant>,
    /// The `notice` every v2 newcomer gets while saving fails.
    notice: Option<Utf8Bytes>,
    /// A shared board's link to Redis.
    link: Option<BoardLink>,
    /// The number of the last op handed to the link.
    link_seq: u64,
    /// The number of the last of this hub's ops read back from the stream.
    link_read: u64,
    /// Ops were refused for [`MAX_UNSHARED_OPS`] since Redis was last reached (the log says it once).
    told_unshared_limit: bool,
    /// Ops relayed here at once while the board was not shared, not read back yet: their numbers.
    tentative: VecDeque<u64>,
    /// Why the board is not shared now (Redis cannot be reached).
    unshared: Option<String>,
    /// Every client is synced again once the tentative ops are read back.
    resync_when_settled: bool,
    /// Clients of this board on the other servers.
    remote_clients: usize,
    /// The count of this server's clients the link was last told.
    count_told: Option<usize>,
    /// The board is being reloaded from Redis: clients are closed, newcomers too.
    resetting: bool,
    timer: Timer,
    armed: Option<Instant>,
}

impl Hub {
    /// A hub over a loaded board, reading `events` and the store's `news`, handing changes to `store`.
    pub fn new(
        start: Start,
        registry: Arc<Registry>,
        events: async_channel::Receiver<Event>,
        news: async_channel::Receiver<StoreNews>,
        store: async_channel::Sender<StoreMsg>,
    ) -> Hub {
        let (config, metrics) = (registry.config().clone(), registry.metrics().clone());
        let floor_committed = start.board.committed();
        // A board loaded for a client that never joins goes again after the usual delay.
        let registry_unload_delay = config.board_unload;
        Hub {
            view_path: format!("/v/{}", start.view),
            name: start.name,
            peers: PeerSync::new(&config, metrics.clone()),
            config,
            metrics,
            registry,
            events,
            news,
            store,
            clients: Vec::new(),
            board: start.board,
            exists: start.exists,
            pending: VecDeque::new(),
            floor_url: start.floor_url.unwrap_or_default(),
            floor_committed,
            resyncs: Vec::new(),
            v1_resync_at: None,
            v1_resynced_at: None,
            count_dirty: false,
            count_sent_at: None,
            unload_at: Some(Instant::now() + registry_unload_delay),
            notice: None,
            link: start.link,
            link_seq: 0,
            link_read: 0,
            told_unshared_limit: false,
            tentative: VecDeque::new(),
            unshared: None,
            resync_when_settled: false,
            remote_clients: 0,
            count_told: None,
            resetting: false,
            timer: Timer::never(),
            armed: None,
        }
    }

    /// Applies a shared board's entries read at loading, before any client joins.
    pub fn catch_up(&mut self, entries: Vec<Entry>) {
        self.on_shared(entries);
    }

    /// Runs until the board is unloaded or the server shuts down; returns the
    /// guard that keeps a reload waiting until the store has flushed.
    pub async fn run(mut self) -> Option<UnloadGuard> {
        self.arm(Instant::now());
        loop {
            let (events, news, timer) = (&self.events, &self.news, &mut self.timer);
            let woke = async { Woke::Event(events.recv().await.ok()) }
                .or(async {
                    match news.recv().await {
                        Ok(news) => Woke::News(news),
                        // The store is gone (it logged why): events still come.
                        Err(_) => std::future::pending().await,
                    }
                })
                .or(async {
                    timer.await;
                    Woke::Time
                })
                .await;
            match woke {
                Woke::Event(None) => return None,
                Woke::Event(Some(event)) => {
                    let mut next = Some(event);
                    let mut handled = 0;
                    while let Some(event) = next.take() {
                        if let Event::Shutdown { done } = event {
                            let _ = self.store.try_send(StoreMsg::Flush { done });
                            return None;
                        }
                        self.handle(event);
                        handled += 1;
                        if handled < MAX_EVENTS_PER_WAKE {
                            next = self.events.try_recv().ok();
                        }
                    }
                }
                Woke::News(news) => self.on_news(news),
                Woke::Time => {}
            }
            let now = Instant::now();
            if self.unload_at.is_some_and(|at| at <= now) && self.clients.is_empty() {
                if let Some(guard) = self.try_unload().await {
                    return Some(guard);
                }
                let again = if self.resetting { RESET_RETRY } else { self.config.board_unload };
                self.unload_at = Some(Instant::now() + again);
            }
            self.on_time(now);
        }
    }

    /// Unloads the board if everything is on disk and nobody is about to
    /// join; a board that cannot be saved stays loaded, so nothing is lost.
    async fn try_unload(&mut self) -> Option<UnloadGuard> {
        let (done, flushed) = async_channel::bounded(1);
        let _ = self.store.try_send(StoreMsg::Flush { done });
        if flushed.recv().await != Ok(true) {
            warn!("board {}: not unloaded: it cannot be saved, so it stays in memory", self.name);
            return None;
        }
        let guard = self.registry.try_unload(&self.name)?;
        if self.resetting {
            info!("board {}: unloaded, to be loaded again from Redis", self.name);
        } else {
            info!("board {}: unloaded ({:?} after its last client left)", self.name, self.config.board_unload);
        }
        Some(guard)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Join { id, name, outbox, limit, v2, viewer } => self.join(id, name, outbox, limit, v2, viewer),
            Event::Leave { id } => {
                debug!("board {}: client {id} left", self.name);
                self.remove_client(id);
            }
            Event::Draw { from, draw, stroke } => self.draw(from, draw, stroke),
            Event::Clear { from } => self.clear(from),
            Event::Undo { from } => self.undo(from),
            Event::Redo { from } => self.redo(from),
            Event::Hello { from, author } => {
                if let Some(client) = self.client_mut(from) {
                    client.author = author;
                    client.open = None;
                }
            }
            Event::CanvasRequest { from } => self.on_canvas_request(from, Instant::now()),
            Event::CanvasState { from, client_id, data } => {
                if self.config.sync == SyncMode::Peers {
                    let mut actions = Vec::new();
                    self.peers.on_state(from, &client_id, data, &mut actions);
                    self.carry_out(actions);
                } else {
                    debug!("board {}: client {from} sent a canvasState; the server answers syncs itself", self.name);
                    add(&self.metrics.canvas_states_dropped, 1);
                }
            }
            Event::Export { reply } => {
                add(&self.metrics.exports, 1);
                let _ = self.store.try_send(StoreMsg::Export { reply });
            }
            Event::Stopping => {
                let notice = protocol::notice("shutting_down", "the server is stopping and will be back");
                self.send_to_v2(&notice);
            }
            Event::Shared(entries) => self.on_shared(entries),
            Event::SharedState(problem) => self.on_shared_state(problem),
            Event::RemoteCount(count) => {
                self.remote_clients = count;
                self.count_dirty = true;
            }
            Event::Reset => self.reset(),
            Event::Shutdown { .. } => unreachable!("handled in run"),
        }
    }

    fn join(&mut self, id: ClientId, name: Arc<str>, outbox: Outbox, limit: MessageLimit, v2: bool, viewer: bool) {
        debug!(
            "board {}: client {id} joined ({}, {})",
            self.name,
            if v2 { "v2" } else { "v1" },
            if viewer { "viewer" } else { "editor" }
        );
        if self.resetting {
            debug!("board {}: client {id} closed: the board is being reloaded", self.name);
            return; // Its outbox goes: the client is closed and reconnects to the reloaded board.
        }
        self.unload_at = None;
        if v2 {
            let board = (!viewer).then_some((self.name.as_str(), self.view_path.as_str()));
            let role = if viewer { "viewer" } else { "editor" };
            let _ = outbox.push(Message::Text(protocol::welcome(&name, role, board)));
        }
        // The newcomer learns the count first; the others with the next broadcast.
        let _ = outbox.push(Message::Text(protocol::client_count(self.clients.len() + 1 + self.remote_clients)));
        // Numbers are taken before the Join is sent, so with several executor
        // threads Joins can arrive out of order: keep the list sorted.
        let at = self.clients.partition_point(|c| c.id < id);
        let author = connection_author(&name);
        let client = Client {
            id,
            name: name.clone(),
            outbox,
            limit,
            v2,
            viewer,
            author,
            synced: false,
            requested_sync_at: None,
            open: None,
            made_up: STROKE_LIMIT,
            told_board_limit: false,
        };
        self.clients.insert(at, client);
        self.count_dirty = true;
        self.metrics_clients(1);
        self.sync(id, &name, v2);
        if v2 && let Some(notice) = self.notice.clone() {
            self.send_to(id, notice);
        }
        if v2 && let Some(problem) = self.unshared.clone() {
            self.send_to(id, unshared_notice(&problem));
        }
    }

    /// A newcomer's sync, or a client's own `canvasRequest`: a v1 client's is
    /// asked of a peer with `--sync peers`; everything else comes from the board.
    fn sync(&mut self, id: ClientId, name: &str, v2: bool) {
        if self.config.sync == SyncMode::Peers && !v2 {
            let peers = self.peer_candidates();
            let mut actions = Vec::new();
            self.peers.start(id, name, Instant::now(), &peers, &mut actions);
            self.carry_out(actions);
        } else {
            self.send_board(id);
        }
    }

    /// The synced v1 editors, oldest first: who may be asked for a snapshot.
    /// (A v2 client holds the server's own picture: asking it adds nothing.)
    fn peer_candidates(&self) -> Vec<ClientId> {
        self.clients.iter().filter(|c| c.synced && !c.v2 && !c.viewer).map(|c| c.id).collect()
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Ask { peer, request } => {
                    // A failed push removes the peer, which makes the sync due again.
                    self.send_to(peer, request);
                }
                Action::Forward { to, data } => {
                    let Some(client) = self.client_mut(to) else { continue };
                    client.synced = true;
                    let frames = protocol::canvas_state_frames(&client.name, &data);
                    if client.outbox.push_exempt(frames).is_err() {
                        self.remove_client(to);
                    }
                }
                Action::FromServer(id) => self.send_board(id),
                Action::Limit { peer, bytes } => {
                    if let Some(client) = self.client_mut(peer) {
                        client.limit.set(bytes);
                    }
                }
            }
        }
    }

    fn draw(&mut self, from: ClientId, draw: Utf8Bytes, stroke: Option<u32>) {
        let Some(index) = self.index(from) else { return };
        if !self.exists && !self.come_into_being(index) {
            return;
        }
        let client = &mut self.clients[index];
        let key = match (stroke, &client.open) {
            (Some(n), Some((open, key))) if client.v2 && n == *open => key.clone(),
            (Some(n), _) if client.v2 => {
                let key = StrokeKey(format!("{}.{n}", client.name).into());
                client.open = Some((n, key.clone()));
                key
            }
            // A draw without a stroke number is a stroke of its own.
            _ => {
                client.made_up += 1;
                client.open = None;
                StrokeKey(format!("{}.{}", client.name, client.made_up).into())
            }
        };
        let author = client.author;
        if self.link.is_some() {
            if !self.can_share() {
                return;
            }
            // Relayed when read back from Redis, unless Redis cannot be reached now.
            let tentative = self.unshared.is_some();
            if tentative {
                self.relay_draw(from, &draw, &key);
            }
            self.share(from, Op::Draw { key, author, draw }, tentative);
            return;
        }
        self.relay_draw(from, &draw, &key);
        self.apply(Op::Draw { key, author, draw });
    }

    /// Relays a draw to every client but `from`, in the v1 and v2 forms.
    fn relay_draw(&mut self, from: ClientId, draw: &Utf8Bytes, key: &StrokeKey) {
        let v2 = self.clients.iter().any(|c| c.v2 && c.id != from).then(|| protocol::v2_draw(draw, key.as_str()));
        self.broadcast(from, draw, v2.as_ref());
        add(&self.metrics.draws_relayed, 1);
    }

    /// Whether the link can take one more op: fewer than [`MAX_UNSHARED_OPS`] wait for Redis.
    fn can_share(&mut self) -> bool {
        if self.link_seq - self.link_read < MAX_UNSHARED_OPS {
            return true;
        }
        if !std::mem::replace(&mut self.told_unshared_limit, true) {
            error!(
                "board {}: {MAX_UNSHARED_OPS} operations wait for Redis; newer ones are dropped until it answers",
                self.name
            );
        }
        false
    }

    /// Hands a local client's op to the board's link; `tentative` when it was relayed here already.
    fn share(&mut self, from: ClientId, op: Op, tentative: bool) {
        let Some(link) = &self.link else { return };
        self.link_seq += 1;
        if link.tx.try_send(LinkMsg::Append { op, seq: self.link_seq, from }).is_err() {
            warn!("board {}: its link to Redis is gone; change not shared", self.name);
            return;
        }
        if tentative {
            self.tentative.push_back(self.link_seq);
        }
    }

    /// The first change to a board that does not exist yet: within `--max-boards` it comes into being.
    fn come_into_being(&mut self, index: usize) -> bool {
        if self.registry.create(&self.name) {
            self.exists = true;
            return true;
        }
        // Every refused draw is answered (it was not relayed); the log says it once per client.
        let client = &mut self.clients[index];
        let (id, limit) = (client.id, self.config.max_boards);
        if std::mem::replace(&mut client.told_board_limit, true) {
            debug!("board {}: client {id} drew again past --max-boards", self.name);
        } else {
            info!("board {}: client {id} drew on a new board while {limit} boards exist (--max-boards)", self.name);
        }
        let error = ProtocolError::new(ErrorCode::BoardLimit, format!("this server holds {limit} boards, its limit"));
        self.send_to(id, error.encode());
        false
    }

    fn clear(&mut self, from: ClientId) {
        let Some(index) = self.index(from) else { return };
        info!("board {}: client {from} cleared the board", self.name);
        if self.link.is_some() && self.exists {
            if !self.can_share() {
                return;
            }
            let tentative = self.unshared.is_some();
            if tentative {
                let clear = protocol::clear();
                self.broadcast(from, &clear, Some(&clear));
            }
            let author = self.clients[index].author;
            self.clients[index].open = None;
            self.share(from, Op::Clear { author }, tentative);
            return;
        }
        let clear = protocol::clear();
        self.broadcast(from, &clear, Some(&clear));
        if self.exists {
            let author = self.clients[index].author;
            self.clients[index].open = None;
            self.apply(Op::Clear { author });
        }
    }

    fn undo(&mut self, from: ClientId) {
        let Some(author) = self.client_mut(from).map(|c| c.author) else { return };
        if self.link.is_some() {
            if self.can_share() {
                self.share(from, Op::Undo { author }, false);
            }
            return;
        }
        let outcome = self.apply(Op::Undo { author });
        self.undone(from, outcome);
    }

    /// Tells the clients what an undo by `from` did.
    fn undone(&mut self, from: ClientId, outcome: Outcome) {
        match outcome {
            Outcome::UndidStroke(key) => {
                add(&self.metrics.undos, 1);
                debug!("board {}: client {from} undid stroke {}", self.name, key.as_str());
                self.send_to_v2(&protocol::undo(key.as_str()));
                self.schedule_v1_resync(Instant::now());
            }
            Outcome::UndidClear => {
                add(&self.metrics.undos, 1);
                info!("board {}: client {from} undid a clear: every client is synced again", self.name);
                let ids: Vec<ClientId> = self.clients.iter().map(|c| c.id).collect();
                ids.into_iter().for_each(|id| self.send_board(id));
            }
            _ => {}
        }
    }

    fn redo(&mut self, from: ClientId) {
        let Some(author) = self.client_mut(from).map(|c| c.author) else { return };
        if self.link.is_some() {
            if self.can_share() {
                self.share(from, Op::Redo { author }, false);
            }
            return;
        }
        let outcome = self.apply(Op::Redo { author });
        self.redone(from, outcome);
    }

    /// Tells the clients what a redo by `from` did.
    fn redone(&mut self, from: ClientId, outcome: Outcome) {
        if let Outcome::Redid(key) = outcome {
            add(&self.metrics.redos, 1);
            debug!("board {}: client {from} redid stroke {}", self.name, key.as_str());
            if let Some(stroke) = self.board.stroke(&key) {
                let message = protocol::redo(key.as_str(), stroke.draws.iter());
                self.send_to_v2(&message);
            }
            self.schedule_v1_resync(Instant::now());
        }
    }

    /// Applies `op` to the model and hands it to the store, if it changed anything.
    fn apply(&mut self, op: Op) -> Outcome {
        self.apply_at(op, None)
    }

    /// [`Hub::apply`] for a shared board's entry `id`.
    fn apply_at(&mut self, op: Op, id: Option<String>) -> Outcome {
        let mut commits = Vec::new();
        let outcome = self.board.apply(op.clone(), &mut commits);
        self.pending.extend(commits);
        let msg = match id {
            Some(id) => StoreMsg::SharedOp(op, id),
            None => StoreMsg::Op(op),
        };
        if outcome != Outcome::Nothing && self.store.try_send(msg).is_err() {
            warn!("board {}: its store is gone; change not saved", self.name);
        }
        outcome
    }

    /// A shared board's entries, in the stream's order: applied and relayed
    /// (an op relayed here already while Redis was away is only applied).
    fn on_shared(&mut self, entries: Vec<Entry>) {
        for Entry { id, op, origin } in entries {
            let own = self.link.as_ref().is_some_and(|link| link.server == origin.server);
            if own {
                self.link_read = self.link_read.max(origin.seq);
            }
            if !self.exists {
                self.exists = true;
                self.registry.exists(&self.name);
            }
            if own && self.tentative.front() == Some(&origin.seq) {
                self.tentative.pop_front();
                self.apply_at(op, Some(id));
                continue;
            }
            // The sender has its own draw and clear already.
            let from = if own { origin.client } else { ClientId::MAX };
            match op {
                Op::Draw { key, author, draw } => {
                    self.relay_draw(from, &draw, &key);
                    self.apply_at(Op::Draw { key, author, draw }, Some(id));
                }
                Op::Clear { .. } => {
                    let clear = protocol::clear();
                    self.broadcast(from, &clear, Some(&clear));
                    self.apply_at(op, Some(id));
                }
                Op::Undo { .. } => {
                    let outcome = self.apply_at(op, Some(id));
                    self.undone(origin.client, outcome);
                }
                Op::Redo { .. } => {
                    let outcome = self.apply_at(op, Some(id));
                    self.redone(origin.client, outcome);
                }
                Op::Restore(_) | Op::RestoreUndone(_) => {}
            }
        }
        self.settle();
    }

    /// Redis can be reached again, or not.
    fn on_shared_state(&mut self, problem: Option<String>) {
        match problem {
            Some(problem) => {
                warn!("board {}: not shared with the other servers now: {problem}", self.name);
                self.send_to_v2(&unshared_notice(&problem));
                self.unshared = Some(problem);
            }
            None => {
                info!("board {}: shared with the other servers again", self.name);
                self.unshared = None;
                self.told_unshared_limit = false;
                self.send_to_v2(&protocol::notice("shared", "the board is shared with the other servers again"));
                self.resync_when_settled = true;
                self.settle();
            }
        }
    }

    /// Once what was relayed here while Redis was away is read back, every
    /// client is synced again: their pictures then follow the stream's order.
    fn settle(&mut self) {
        if self.resync_when_settled && self.unshared.is_none() && self.tentative.is_empty() {
            self.resync_when_settled = false;
            info!(
                "board {}: caught up with the other servers; its {} client(s) are synced again",
                self.name,
                self.clients.len()
            );
            let ids: Vec<ClientId> = self.clients.iter().map(|c| c.id).collect();
            ids.into_iter().for_each(|id| self.send_board(id));
        }
    }

    /// The board's stream was trimmed past this server: its clients are
    /// closed (they reconnect) and the board is unloaded, to be loaded whole again.
    fn reset(&mut self) {
        info!("board {}: closing its {} client(s) to reload it from Redis", self.name, self.clients.len());
        self.resetting = true;
        let gone = self.clients.len();
        self.clients.clear();
        if gone > 0 {
            self.clients_removed(gone);
        }
        self.unload_at = Some(Instant::now());
    }

    fn schedule_v1_resync(&mut self, now: Instant) {
        if self.v1_resync_at.is_none() && self.clients.iter().any(|c| !c.v2) {
            let due = self.v1_resynced_at.map_or(now, |at| (at + V1_RESYNC_INTERVAL).max(now));
            self.v1_resync_at = Some(due);
        }
    }

    fn on_news(&mut self, news: StoreNews) {
        match news {
            StoreNews::Floor { committed, url } => {
                let encoded = committed.saturating_sub(self.floor_committed) as usize;
                self.pending.drain(..encoded.min(self.pending.len()));
                self.floor_committed = committed;
                self.floor_url = url.unwrap_or_default();
            }
            StoreNews::Saving(problem) => {
                self.registry.set_problem(&self.name, problem.clone());
                let notice = match &problem {
                    Some(problem) => protocol::notice("not_saving", &format!("the board cannot be saved: {problem}")),
                    None => protocol::notice("saving", "the board is saved again"),
                };
                self.notice = problem.is_some().then(|| notice.clone());
                self.send_to_v2(&notice);
            }
        }
    }

    /// A client asks to be synced again: at most once per cooldown, and only
    /// once it has read the board it was sent before; until then the request waits.
    fn on_canvas_request(&mut self, from: ClientId, now: Instant) {
        if self.peers.serves(from) || self.resyncs.iter().any(|(id, _)| *id == from) {
            debug!("board {}: client {from} asked for a sync while one is in flight; ignored", self.name);
            return;
        }
        let Some(client) = self.client_mut(from) else { return };
        let cooldown = client.requested_sync_at.map(|at| at + CANVAS_REQUEST_COOLDOWN).filter(|due| now < *due);
        let unread = client.outbox.exempt_queued() > 0;
        match (cooldown, unread) {
            (Some(due), _) => self.resyncs.push((from, due)),
            (None, true) => self.resyncs.push((from, now + UNREAD_SYNC_RECHECK)),
            (None, false) => {
                client.requested_sync_at = Some(now);
                let (name, v2) = (client.name.clone(), client.v2);
                self.sync(from, &name, v2);
            }
        }
    }

    /// The server's own sync: the floor (or `""` when a live clear hides it,
    /// or it is white), then every visible live stroke's draws, in order.
    fn send_board(&mut self, id: ClientId) {
        let Some(index) = self.index(id) else { return };
        add(&self.metrics.syncs_from_server, 1);
        let client = &self.clients[index];
        let (floor_shows, strokes) = visible(self.pending.iter().chain(self.board.items().iter()));
        let empty = Utf8Bytes::from_static("");
        let state = protocol::canvas_state_frames(&client.name, if floor_shows { &self.floor_url } else { &empty });
        let v2 = client.v2;
        let draws = strokes.into_iter().flat_map(|stroke| {
            stroke.draws.iter().map(move |draw| {
                Message::Text(if v2 { protocol::v2_draw(draw, stroke.key.as_str()) } else { draw.clone() })
            })
        });
        // The sync shares the floor's bytes (and a v1 client's, the draws'),
        // and does not count against the outbox limit: a newcomer is never
        // "too slow" for a large board.
        let pushed = client.outbox.push_exempt(state.into_iter().chain(draws)).is_ok();
        self.clients[index].synced = true;
        if !pushed {
            self.remove_client(id);
        }
    }

    /// Pushes a draw (or clear) to every client but `from`: `v1` to v1
    /// clients, `v2` to v2 clients; evicts those that are full.
    fn broadcast(&mut self, from: ClientId, v1: &Utf8Bytes, v2: Option<&Utf8Bytes>) {
        let before = self.clients.len();
        let metrics = &self.metrics;
        // Framed once per form: most clients get these bytes straight into their socket.
        let v1 = PreparedFrame::text(v1.clone());
        let v2 = v2.map(|v2| PreparedFrame::text(v2.clone()));
        self.clients.retain(|client| {
            let frame = if client.v2 { v2.as_ref().unwrap_or(&v1) } else { &v1 };
            client.id == from || push(client, frame, metrics)
        });
        if self.clients.len() != before {
            self.clients_removed(before - self.clients.len());
        }
    }

    /// Pushes `message` to every v2 client.
    fn send_to_v2(&mut self, message: &Utf8Bytes) {
        let before = self.clients.len();
        let metrics = &self.metrics;
        let frame = PreparedFrame::text(message.clone());
        self.clients.retain(|client| !client.v2 || push(client, &frame, metrics));
        if self.clients.len() != before {
            self.clients_removed(before - self.clients.len());
        }
    }

    /// Pushes `message` to one client; `false` (and the client removed) if that failed.
    fn send_to(&mut self, id: ClientId, message: Utf8Bytes) -> bool {
        let Some(index) = self.index(id) else { return false };
        if push(&self.clients[index], &PreparedFrame::text(message), &self.metrics) {
            return true;
        }
        self.clients.remove(index);
        self.clients_removed(1);
        false
    }

    fn remove_client(&mut self, id: ClientId) {
        if let Some(index) = self.index(id) {
            self.clients.remove(index);
            self.clients_removed(1);
        }
    }

    /// After clients left: the count is due, the peer sync forgets them, and
    /// the unload delay starts when the last one went.
    fn clients_removed(&mut self, gone: usize) {
        self.count_dirty = true;
        self.metrics_clients(-(gone as i64));
        let clients = &self.clients;
        let present = |id: ClientId| clients.binary_search_by_key(&id, |c| c.id).is_ok();
        self.resyncs.retain(|(id, _)| present(*id));
        self.peers.clients_left(present);
        if self.clients.is_empty() {
            self.unload_at = Some(Instant::now() + self.config.board_unload);
        }
    }

    fn metrics_clients(&self, change: i64) {
        use std::sync::atomic::Ordering;
        if change >= 0 {
            self.metrics.clients.fetch_add(change as u64, Ordering::Relaxed);
        } else {
            self.metrics.clients.fetch_sub(change.unsigned_abs(), Ordering::Relaxed);
        }
    }

    fn index(&self, id: ClientId) -> Option<usize> {
        self.clients.binary_search_by_key(&id, |c| c.id).ok()
    }

    fn client_mut(&mut self, id: ClientId) -> Option<&mut Client> {
        self.index(id).map(|index| &mut self.clients[index])
    }

    fn on_time(&mut self, now: Instant) {
        if self.config.sync == SyncMode::Peers {
            let peers = self.peer_candidates();
            let mut actions = Vec::new();
            self.peers.on_time(now, &peers, &mut actions);
            self.carry_out(actions);
        }
        if self.resyncs.iter().any(|(_, due)| *due <= now) {
            let (due, later) = std::mem::take(&mut self.resyncs).into_iter().partition(|(_, due)| *due <= now);
            self.resyncs = later;
            for (id, _) in due {
                self.on_canvas_request(id, now);
            }
        }
        if self.v1_resync_at.is_some_and(|at| at <= now) {
            self.v1_resync_at = None;
            self.v1_resynced_at = Some(now);
            let v1: Vec<ClientId> = self.clients.iter().filter(|c| !c.v2).map(|c| c.id).collect();
            debug!("board {}: syncing {} v1 client(s) after undo or redo", self.name, v1.len());
            v1.into_iter().for_each(|id| self.send_board(id));
        }
        if self.count_dirty {
            let due = self.count_sent_at.map_or(now, |at| at + COUNT_INTERVAL);
            if due <= now {
                self.count_dirty = false;
                self.count_sent_at = Some(now);
                let count = protocol::client_count(self.clients.len() + self.remote_clients);
                self.broadcast(ClientId::MAX, &count, Some(&count));
                if let Some(link) = &self.link
                    && self.count_told != Some(self.clients.len())
                    && link.tx.try_send(LinkMsg::Count(self.clients.len())).is_ok()
                {
                    self.count_told = Some(self.clients.len());
                }
            }
        }
        self.arm(now);
    }

    fn arm(&mut self, now: Instant) {
        let count = self.count_dirty.then(|| self.count_sent_at.map_or(now, |at| at + COUNT_INTERVAL));
        let resync = self.resyncs.iter().map(|(_, due)| *due).min();
        let unload = self.unload_at.filter(|_| self.clients.is_empty());
        let next = [count, self.peers.next_deadline(), resync, self.v1_resync_at, unload].into_iter().flatten().min();
        if next != self.armed {
            self.armed = next;
            match next {
                Some(at) => {
                    self.timer.set_at(at);
                }
                None => self.timer = Timer::never(),
            }
        }
    }
}

enum Woke {
    Event(Option<Event>),
    News(StoreNews),
    Time,
}

/// The `notice` v2 clients get while the board is not shared.
fn unshared_notice(problem: &str) -> Utf8Bytes {
    protocol::notice("not_shared", &format!("drawing goes on here, but other servers do not see it now: {problem}"))
}

/// The author of a client that sent no `hello`: its connection alone (its
/// `clientId` is never reused).
fn connection_author(name: &str) -> Author {
    author_hash(b"connection:", name)
}

/// The stored form of an author: a hash, never the secret. Never
/// [`Author::NOBODY`], which marks strokes nobody can undo.
pub fn author_hash(domain: &[u8], secret: &str) -> Author {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(domain);
    sha.update(secret.as_bytes());
    let digest = sha.digest().bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Author(u64::from_le_bytes(first).max(1))
}

/// Pushes to one client; on a full outbox evicts it. `false` when the client must go.
fn push(client: &Client, frame: &PreparedFrame, metrics: &CanvasMetrics) -> bool {
    match client.outbox.push_frame(frame) {
        Ok(()) => true,
        Err(PushError::Full(_)) => {
            info!(
                "client {}: outbox full ({} bytes queued): closing it as too slow",
                client.id,
                client.outbox.queued_bytes()
            );
            add(&metrics.slow_clients_closed, 1);
            client.outbox.evict("too slow: outbox full");
            false
        }
        Err(PushError::Closed(_)) => false,
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("board", &self.name).field("clients", &self.clients.len()).finish_non_exhaustive()
    }
}
