//! Helpers for the cluster tests (`--features redis`): `smolcanvas` processes sharing one Redis,
//! canvas clients that keep the picture a page would show, and nginx in front with a plain
//! round-robin `upstream`.
//!
//! Included next to `support` (`blackbox.rs`) and `redis` (`redis.rs`):
//! `#[path = "support/cluster.rs"] mod cluster;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use futures_lite::future;
use serde_json::Value;

use crate::redis::{Redis, stream_id};
use crate::support::*;

/// The bound on each wait for something that crosses servers (a relay, a count, a notice).
pub const STEP: Duration = Duration::from_secs(10);

/// The bound on a server noticing that Redis is gone (its connection ends, or its commands time
/// out) and on it coming back (reconnect backoff up to 2 s, then the catch-up).
pub const FAULT: Duration = Duration::from_secs(15);

/// A `smolcanvas` process in cluster mode, with a data dir of its own.
pub struct Node {
    pub process: Process,
    pub dir: TempDir,
    pub name: String,
}

impl Node {
    /// Starts the binary on a free 127.0.0.1 port with `--redis url` and `extra` flags.
    pub fn start(name: &str, url: &str, extra: &[&str]) -> Node {
        let dir = TempDir::new(&format!("node-{name}"));
        let mut args = vec!["--redis", url];
        args.extend(extra);
        let process = Process::start_with(dir.path(), &args);
        Node { process, dir, name: name.to_string() }
    }

    /// Starts `command` (a prefix such as `ip netns exec NS`, then the binary) listening on
    /// `ip`, with `--redis url` and `extra` flags.
    pub fn start_at(name: &str, command: &[String], ip: IpAddr, url: &str, extra: &[&str]) -> Node {
        let dir = TempDir::new(&format!("node-{name}"));
        let mut args = vec!["--redis", url];
        args.extend(extra);
        let process = Process::start_at(command, ip, dir.path(), &args);
        Node { process, dir, name: name.to_string() }
    }

    pub fn addr(&self) -> SocketAddr {
        self.process.addr
    }

    /// `GET /healthz`: its status and body.
    pub async fn healthz(&self) -> (u16, String) {
        let response = request(self.addr(), "GET", "/healthz").await;
        (response.status, response.text())
    }

    /// Waits until `/healthz` answers 200 with a body for which `ok` holds.
    pub async fn wait_health(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let (status, body) = self.healthz().await;
            assert_eq!(status, 200, "/healthz of {} answers 200, whatever its state: {body}", self.name);
            if ok(&body) {
                return body;
            }
            assert!(start.elapsed() < limit, "/healthz of {} is {body:?}, not {what} after {limit:?}", self.name);
            smol::Timer::after(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/healthz` says `degraded:` and names Redis.
    pub async fn wait_degraded(&self, limit: Duration) -> String {
        self.wait_health("degraded: ... Redis", limit, |body| {
            body.starts_with("degraded:") && body.to_ascii_lowercase().contains("redis")
        })
        .await
    }

    /// Waits until `/healthz` says `ok`.
    pub async fn wait_healthy(&self, limit: Duration) -> String {
        self.wait_health("ok", limit, |body| body.trim() == "ok").await
    }

    /// The value of the unlabelled metric `name`.
    pub async fn metric(&self, name: &str) -> u64 {
        metric(self.addr(), name).await
    }

    /// Waits until the unlabelled metric `name` is `value`.
    pub async fn wait_metric(&self, name: &str, value: u64, limit: Duration) {
        let start = Instant::now();
        loop {
            let now = self.metric(name).await;
            if now == value {
                return;
            }
            assert!(start.elapsed() < limit, "{name} of {} is {now}, still not {value} after {limit:?}", self.name);
            smol::Timer::after(Duration::from_millis(20)).await;
        }
    }

    /// Its id among the servers sharing Redis (random per run), from its log.
    pub fn server_id(&mut self) -> String {
        let marker = " as server ";
        let log = self.log_so_far();
        let line = log
            .iter()
            .find(|line| line.contains(marker))
            .unwrap_or_else(|| panic!("{}: no server id in its log", self.name));
        let rest = &line[line.find(marker).expect("the marker") + marker.len()..];
        rest.split_whitespace().next().unwrap_or_default().to_string()
    }

    /// Every stderr line so far, without waiting.
    pub fn log_so_far(&mut self) -> Vec<String> {
        self.process.log_so_far().to_vec()
    }
}

/// A board as Redis holds it: its snapshot and the stream entries left.
#[derive(Debug)]
pub struct Stored {
    /// The snapshot's `upto` (`None` before the first snapshot).
    pub upto: Option<String>,
    /// The snapshot's compacted log.
    pub log: String,
    /// The stream's entries, oldest first: each id with its fields.
    pub entries: Vec<(String, BTreeMap<String, String>)>,
}

impl Stored {
    /// Reads board `board`'s snapshot and stream, again if a snapshot was stored in between
    /// (bounded by [`STEP`]), so that they go together.
    pub fn read(redis: &Redis, board: &str) -> Stored {
        let (snap, ops) = (format!("smolcanvas:board:{board}:snap"), format!("smolcanvas:board:{board}:ops"));
        let start = Instant::now();
        loop {
            let upto = redis.string(&["HGET", &snap, "upto"]);
            let log = redis.string(&["HGET", &snap, "log"]).unwrap_or_default();
            let entries = redis.entries(&["XRANGE", &ops, "-", "+"]);
            if redis.string(&["HGET", &snap, "upto"]) == upto {
                return Stored { upto, log, entries };
            }
            assert!(start.elapsed() < STEP, "{snap} keeps changing for {STEP:?}");
        }
    }

    /// The draws on the board that the snapshot holds live, then those of the entries after
    /// it: the board's strokes above its floor, in the stream's order (each a stroke of one draw).
    pub fn draws(&self) -> Vec<u32> {
        let upto = self.upto.as_deref().map_or((0, 0), stream_id);
        let mut draws: Vec<u32> = self.log.lines().filter_map(restored_seq).collect();
        let after = self.entries.iter().filter(|(id, _)| stream_id(id) > upto);
        draws.extend(after.map(|(id, fields)| entry_seq(id, fields)));
        draws
    }

    /// The newest `n` of [`Stored::draws`].
    pub fn newest(&self, n: usize) -> Vec<u32> {
        let draws = self.draws();
        draws[draws.len().saturating_sub(n)..].to_vec()
    }

    /// The ids of the entries the snapshot holds that the stream still has (trimming keeps the
    /// last `--redis-keep-secs` of them).
    pub fn kept(&self) -> Vec<&str> {
        let upto = self.upto.as_deref().map_or((0, 0), stream_id);
        self.entries.iter().map(|(id, _)| id.as_str()).filter(|id| stream_id(id) <= upto).collect()
    }
}

/// Flags that make a board's stream short-lived: a small undo window, a short flush interval, no
/// margin kept after a snapshot (1 ms, the least the flag takes), and a rate limit that lets a test
/// draw thousands of strokes fast.
pub const TRIMMING: [&str; 10] = [
    "--undo-strokes",
    "20",
    "--flush-interval",
    "0.05",
    "--redis-keep-secs",
    "0.001",
    "--rate-limit",
    "1000000",
    "--rate-burst",
    "1000000",
];

/// The undo window of [`TRIMMING`].
pub const WINDOW: usize = 20;

/// The strokes numbered `range` (each one segment, its start unique, so `draw_seq` tells them
/// apart): slanted and in two colours, so that a picture depends on their order.
pub fn strokes(range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|g| {
            let (x, y) = (10 + (g % 1200) as u32, 10 + (g / 1200) as u32 * 6);
            let color = if g % 2 == 0 { "#c03030" } else { "#3030c0" };
            segment(color, (x, y), (x + 30, y + 60 + (g % 7) as u32 * 20), 3)
        })
        .collect()
}

/// Sends `parts` (each a stroke of its own) as fast as the socket takes them, reading what
/// arrives every few sends.
pub async fn draw_fast(client: &mut Client, parts: &[String]) {
    for (i, part) in parts.iter().enumerate() {
        let text = if client.v2 { with_stroke(part, draw_seq(part)) } else { part.clone() };
        client.peer.send(text).await;
        if i % 32 == 0 {
            client.catch_up().await;
        }
    }
}

/// The draw of a `restore` line of a snapshot's log (a stroke of one draw), as `draw_seq` numbers it.
pub fn restored_seq(line: &str) -> Option<u32> {
    let item: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line {line:?}: {e}"));
    (item["op"] == "restore").then(|| draw_seq(&item["draws"][0].to_string()))
}

/// The draw of a stream entry, as `draw_seq` numbers it.
pub fn entry_seq(id: &str, fields: &BTreeMap<String, String>) -> u32 {
    let op = fields.get("op").unwrap_or_else(|| panic!("no op in entry {id}"));
    let op: Value = serde_json::from_str(op).unwrap_or_else(|e| panic!("entry {id}: {op:?}: {e}"));
    assert_eq!(op["op"], "draw", "entry {id} is a draw");
    draw_seq(&op["draw"].to_string())
}

/// The socket path of board `name`.
pub fn ws_path(board: &str) -> String {
    format!("/b/{board}/ws")
}

/// A draw as a client sees it in its picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Which draw (see `draw`/`draw_seq`): each draw of a test has its own coordinates.
    pub seq: u32,
    /// Its stroke key, for v2 clients.
    pub key: Option<String>,
}

/// A canvas client that paints what it receives the way the page does (PROTOCOL.md, "Client
/// rule"): draws before the first `canvasState` wait in a queue; a `canvasState` replaces the
/// picture (floor) and the draws after it are painted on top; its own draws are painted as it
/// sends them; `undo` removes a stroke, `redo` adds one back, `clear` wipes.
///
/// It also notes what should never happen: a draw painted twice between two syncs (a relay
/// that repeats itself, or an echo of its own draw), and any `error`.
pub struct Client {
    pub peer: Peer,
    pub name: String,
    pub v2: bool,
    /// Its `clientId` (from `welcome` or its first `canvasState`).
    pub id: String,
    pub welcome: Option<Welcome>,
    /// The floor of the last sync (`""`: white).
    pub floor: String,
    /// The draws on the picture, in the order they were painted.
    pub picture: Vec<Seen>,
    /// Draws received before the first `canvasState`.
    queue: Vec<Seen>,
    /// Draws painted twice between two syncs, as a description for the failure message.
    pub duplicates: Vec<String>,
    /// Every draw received (not sent), in order, syncs included.
    pub received: Vec<u32>,
    /// The `canvasState`s received.
    pub syncs: usize,
    /// The `notice` codes received, in order, and how many of them were waited for already.
    pub notices: Vec<String>,
    notices_seen: usize,
    /// The `undo` stroke keys received, in order.
    pub undos: Vec<String>,
    /// The `redo` messages received, as sent.
    pub redos: Vec<Value>,
}

impl Client {
    /// Connects to the socket `path` at `addr` (offering v2 if `v2`), reads the `welcome` of a v2
    /// client and the first `canvasState`; the rest of the sync follows.
    pub async fn join(addr: SocketAddr, path: &str, v2: bool, name: &str) -> Client {
        let request = ws_request_to(addr, path, v2);
        // The peer's own bound is a backstop: every wait here has a shorter one of its own.
        let peer = Peer::connect_with(name, addr, request, STEP * 3).await;
        Client::joined(peer, path, v2, name).await
    }

    /// Like [`Client::join`], over an upgrade already made (through a proxy, say).
    pub async fn joined(mut peer: Peer, path: &str, v2: bool, name: &str) -> Client {
        let welcome = if v2 { Some(peer.read_welcome(path).await) } else { None };
        let peer = peer.named(name);
        let mut client = Client {
            peer,
            name: name.to_string(),
            v2,
            id: welcome.as_ref().map(|w| w.client_id.clone()).unwrap_or_default(),
            welcome,
            floor: String::new(),
            picture: Vec::new(),
            queue: Vec::new(),
            duplicates: Vec::new(),
            received: Vec::new(),
            syncs: 0,
            notices: Vec::new(),
            notices_seen: 0,
            undos: Vec::new(),
            redos: Vec::new(),
        };
        let within = client.pump_until(STEP, "the first canvasState", |c| c.syncs > 0).await;
        assert!(within, "{name}: no canvasState within {STEP:?}; got {:?} so far", client.received);
        client
    }

    /// The next message that is not a `clientCount`, as sent, after applying it to the picture.
    pub async fn next_text(&mut self) -> String {
        let text = self.peer.next().await;
        self.apply(&text);
        text
    }

    /// Applies every message that has arrived already, without waiting: what a page has painted
    /// by the time its user draws.
    pub async fn catch_up(&mut self) {
        while let Some(text) = future::poll_once(self.peer.next()).await {
            self.apply(&text);
        }
    }

    /// Sends draw `seq` (as a stroke of its own, numbered `seq`, from a v2 client) and paints it,
    /// on top of what has arrived before it.
    pub async fn draw(&mut self, seq: u32) {
        self.catch_up().await;
        if self.v2 {
            self.peer.send(with_stroke(&draw(seq), seq)).await;
            let key = format!("{}.{seq}", self.id);
            self.paint(Seen { seq, key: Some(key) }, false);
        } else {
            self.peer.send(draw(seq)).await;
            self.paint(Seen { seq, key: None }, false);
        }
    }

    /// Sends each of `seqs`.
    pub async fn draw_all(&mut self, seqs: impl IntoIterator<Item = u32>) {
        for seq in seqs {
            self.draw(seq).await;
        }
    }

    /// Sends each of `seqs`, `gap` apart: a stream of draws that a fault can fall into.
    pub async fn draw_paced(&mut self, seqs: impl IntoIterator<Item = u32>, gap: Duration) {
        for seq in seqs {
            self.draw(seq).await;
            smol::Timer::after(gap).await;
        }
    }

    /// Sends each of `seqs`, `gap` apart, until a send fails (its server is gone); returns the
    /// draws sent, which its server may or may not have taken.
    pub async fn draw_paced_until_gone(&mut self, seqs: impl IntoIterator<Item = u32>, gap: Duration) -> Vec<u32> {
        use async_tungstenite::tungstenite::Message;
        let mut sent = Vec::new();
        for seq in seqs {
            let text = if self.v2 { with_stroke(&draw(seq), seq) } else { draw(seq) };
            match timeout(STEP, self.peer.ws.send(Message::text(text))).await {
                Some(Ok(())) => sent.push(seq),
                _ => break,
            }
            smol::Timer::after(gap).await;
        }
        sent
    }

    /// Reads and applies messages until at least `n` of `seqs` are on the picture (bounded by
    /// [`STEP`]).
    pub async fn wait_some(&mut self, seqs: &[u32], n: usize) {
        let what = format!("{n} of draws {}", ranges(seqs));
        let enough = |c: &Client| seqs.iter().filter(|s| c.picture.iter().any(|p| p.seq == **s)).count() >= n;
        if !self.pump_until(STEP, &what, enough).await {
            panic!("{}: not {what} within {STEP:?}; picture {}", self.name, ranges(&self.seqs()));
        }
    }

    /// Paints a draw: queued before the first sync, else added, noting a repeat.
    fn paint(&mut self, seen: Seen, received: bool) {
        if received {
            self.received.push(seen.seq);
        }
        if self.syncs == 0 {
            self.queue.push(seen);
            return;
        }
        if self.picture.iter().any(|s| s.seq == seen.seq) {
            self.duplicates.push(format!(
                "draw {} painted twice since sync #{} ({})",
                seen.seq,
                self.syncs,
                if received { "received" } else { "sent" }
            ));
        }
        self.picture.push(seen);
    }

    /// Applies one message to the picture.
    fn apply(&mut self, text: &str) {
        let message: Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{}: invalid JSON {text:?}: {e}", self.name));
        match message["type"].as_str().unwrap_or_default() {
            "draw" => {
                let key = message["stroke"].as_str().map(str::to_string);
                assert_eq!(
                    key.is_some(),
                    self.v2,
                    "{}: a v2 client's draws (only) carry stroke keys: {text}",
                    self.name
                );
                self.paint(Seen { seq: draw_seq(text), key }, true);
            }
            "canvasState" => {
                let id = string(&message, "clientId").to_string();
                if self.id.is_empty() {
                    self.id = id;
                } else {
                    assert_eq!(id, self.id, "{}: a canvasState for someone else", self.name);
                }
                self.syncs += 1;
                self.floor = string(&message, "data").to_string();
                self.picture.clear();
                if self.syncs == 1 {
                    for seen in std::mem::take(&mut self.queue) {
                        self.paint(seen, false);
                    }
                }
            }
            "clear" => {
                self.floor.clear();
                self.picture.clear();
            }
            "undo" => {
                let key = string(&message, "stroke").to_string();
                self.picture.retain(|s| s.key.as_deref() != Some(key.as_str()));
                self.undos.push(key);
            }
            "redo" => {
                for part in message["draws"].as_array().unwrap_or_else(|| panic!("no draws in {text}")) {
                    let part_text = part.to_string();
                    let key = part["stroke"].as_str().map(str::to_string);
                    self.paint(Seen { seq: draw_seq(&part_text), key }, true);
                }
                self.redos.push(message);
            }
            "notice" => self.notices.push(string(&message, "code").to_string()),
            "welcome" => {}
            "error" => panic!("{}: the server answered with an error: {text}", self.name),
            _ => panic!("{}: an unexpected message {text}", self.name),
        }
    }

    /// Reads and applies messages until `done` holds; `false` if `limit` passed first.
    pub async fn pump_until(&mut self, limit: Duration, what: &str, done: impl Fn(&Client) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.peer.next()).await {
                Some(text) => self.apply(&text),
                None => {
                    let _ = writeln!(std::io::stderr(), "{}: still waiting for {what} after {limit:?}", self.name);
                    return false;
                }
            }
        }
        true
    }

    /// The seqs on the picture, in order.
    pub fn seqs(&self) -> Vec<u32> {
        self.picture.iter().map(|s| s.seq).collect()
    }

    /// Whether every one of `seqs` is on the picture.
    pub fn shows_all(&self, seqs: &[u32]) -> bool {
        seqs.iter().all(|seq| self.picture.iter().any(|s| s.seq == *seq))
    }

    /// Waits (bounded by `limit`) until every one of `seqs` is on the picture.
    pub async fn wait_draws_within(&mut self, seqs: &[u32], limit: Duration) {
        let what = format!("draws {}", ranges(seqs));
        if !self.pump_until(limit, &what, |c| c.shows_all(seqs)).await {
            let missing: Vec<u32> = seqs.iter().copied().filter(|seq| !self.seqs().contains(seq)).collect();
            panic!(
                "{}: after {limit:?} the picture lacks {} of {what}: {}\npicture: {}\nreceived: {}\nsyncs {}, notices {:?}",
                self.name,
                missing.len(),
                ranges(&missing),
                ranges(&self.seqs()),
                ranges(&self.received),
                self.syncs,
                self.notices
            );
        }
    }

    /// Waits (bounded by [`STEP`]) until every one of `seqs` is on the picture.
    pub async fn wait_draws(&mut self, seqs: &[u32]) {
        self.wait_draws_within(seqs, STEP).await;
    }

    /// Asserts that the picture is exactly `seqs`, each once, in any order, and that nothing was
    /// ever painted twice between two syncs.
    pub fn assert_exactly(&self, seqs: &[u32]) {
        assert!(self.duplicates.is_empty(), "{}: {:?}", self.name, self.duplicates);
        let mut got = self.seqs();
        got.sort_unstable();
        let mut want = seqs.to_vec();
        want.sort_unstable();
        if got != want {
            let extra: Vec<u32> = got.iter().copied().filter(|s| !want.contains(s)).collect();
            let twice: Vec<u32> = got.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
            let missing: Vec<u32> = want.iter().copied().filter(|s| !got.contains(s)).collect();
            panic!(
                "{}: the picture is not every draw exactly once: missing {}, twice {}, unexpected {}\npicture: {}",
                self.name,
                ranges(&missing),
                ranges(&twice),
                ranges(&extra),
                ranges(&self.seqs())
            );
        }
    }

    /// Waits (bounded by `limit`) for a `notice` with `code` after those waited for before.
    pub async fn wait_notice(&mut self, code: &str, limit: Duration) {
        let from = self.notices_seen;
        let found = |c: &Client| c.notices[from.min(c.notices.len())..].iter().any(|n| n == code);
        if !self.pump_until(limit, &format!("notice {code}"), found).await {
            panic!("{}: no notice {code:?} within {limit:?}; notices so far: {:?}", self.name, self.notices);
        }
        let at = self.notices[from..].iter().position(|n| n == code).expect("found") + from;
        self.notices_seen = at + 1;
    }

    /// Waits (bounded by `limit`) until an `undo` of `key` arrived.
    pub async fn wait_undo(&mut self, key: &str, limit: Duration) {
        if !self.pump_until(limit, &format!("undo of {key}"), |c| c.undos.iter().any(|k| k == key)).await {
            panic!("{}: no undo of {key} within {limit:?}; undos: {:?}", self.name, self.undos);
        }
    }

    /// Waits (bounded by `limit`) until `count` `canvasState`s arrived in all.
    pub async fn wait_syncs(&mut self, count: usize, limit: Duration) {
        if !self.pump_until(limit, &format!("sync #{count}"), |c| c.syncs >= count).await {
            panic!("{}: {} syncs, not {count}, after {limit:?}", self.name, self.syncs);
        }
    }

    /// Waits (bounded by `limit`) until the latest `clientCount` is `n`.
    pub async fn wait_count(&mut self, n: u64, limit: Duration) {
        let what = format!("clientCount {n}");
        let got = timeout(limit, self.peer.wait_count(n)).await;
        assert!(got.is_some(), "{}: {what} not reached within {limit:?}; counts: {:?}", self.name, self.peer.counts);
    }

    /// Reads on until the server ends the connection (after a kill, say), bounded by `limit`.
    pub async fn wait_end(&mut self, limit: Duration) {
        let ended = timeout(limit, async {
            use futures_lite::StreamExt;
            while let Some(Ok(_)) = self.peer.ws.next().await {}
        })
        .await;
        assert!(ended.is_some(), "{}: the connection did not end within {limit:?}", self.name);
    }

    /// Closes from the client side.
    pub async fn close(mut self) {
        self.peer.close().await;
    }
}

/// `seqs` in short: runs of consecutive numbers as `a-b`.
pub fn ranges(seqs: &[u32]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let mut j = i;
        while j + 1 < seqs.len() && seqs[j + 1] == seqs[j] + 1 {
            j += 1;
        }
        out.push(if j > i { format!("{}-{}", seqs[i], seqs[j]) } else { seqs[i].to_string() });
        i = j + 1;
    }
    format!("[{}] ({} draws)", out.join(" "), seqs.len())
}

/// `a..=b` as a vector.
pub fn span(a: u32, b: u32) -> Vec<u32> {
    (a..=b).collect()
}

/// Every one of `parts`, joined.
pub fn all_of(parts: &[&[u32]]) -> Vec<u32> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// Asserts that every client's picture shows the same draws in the same order (the stream's).
pub fn assert_same_order(clients: &[&Client]) {
    let first = clients[0];
    for other in &clients[1..] {
        assert_eq!(
            other.seqs(),
            first.seqs(),
            "{} and {} paint the board's draws in different orders",
            other.name,
            first.name
        );
    }
}

/// What a lone v1 newcomer on `path` at `addr` gets: its floor, then the draws' seqs (see
/// `read_board`: the sync is asked for twice and must be the same both times).
pub async fn newcomer(addr: SocketAddr, path: &str) -> (String, Vec<u32>) {
    let (floor, draws) = board_at(addr, path).await;
    (floor, draws.iter().map(|d| draw_seq(d)).collect())
}

/// What a lone v1 newcomer on `path` at `addr` gets once the server has painted what left the
/// undo window into the floor (it does so in the background): asked again (bounded by [`FAULT`])
/// while it gets more than `live` draws above the floor.
pub async fn newcomer_settled(addr: SocketAddr, path: &str, live: usize) -> (String, Vec<u32>) {
    let start = Instant::now();
    loop {
        let (floor, seqs) = newcomer(addr, path).await;
        if seqs.len() <= live || start.elapsed() > FAULT {
            return (floor, seqs);
        }
        smol::Timer::after(Duration::from_millis(200)).await;
    }
}

/// What a lone v2 newcomer gets: its floor, then the draws' (seq, stroke key).
pub async fn newcomer_v2(addr: SocketAddr, path: &str) -> (String, Vec<(u32, String)>) {
    let (floor, draws) = board_at_v2(addr, path).await;
    (floor, draws.iter().map(|d| (draw_seq(d), stroke_key(d))).collect())
}

/// Asserts that `seqs` are exactly `want`, each once (any order).
pub fn assert_each_once(what: &str, seqs: &[u32], want: &[u32]) {
    let mut got = seqs.to_vec();
    got.sort_unstable();
    let mut want = want.to_vec();
    want.sort_unstable();
    assert_eq!(ranges(&got), ranges(&want), "{what}: not every draw exactly once");
}

/// Asserts that two pictures match pixel for pixel, within a little (anti-aliasing).
pub fn assert_same_pixels(one: &Image, other: &Image, what: &str) {
    assert_eq!((one.width, one.height), (other.width, other.height), "{what}: sizes");
    let mut differ = Vec::new();
    for y in 0..one.height {
        for x in 0..one.width {
            if !near_color(one.pixel(x, y), other.pixel(x, y)) {
                differ.push((x, y));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{what}: {} pixels differ, first {:?}: {:?} against {:?}",
        differ.len(),
        differ[..differ.len().min(5)].to_vec(),
        differ.first().map(|&(x, y)| one.pixel(x, y)),
        differ.first().map(|&(x, y)| other.pixel(x, y))
    );
}

/// `GET path` through a proxy (which keeps connections open unless asked not to): it must
/// answer a `board.png`; returns the picture.
pub async fn png_via(proxy: SocketAddr, path: &str) -> Image {
    let response = http(proxy, &format!("GET {path} HTTP/1.1\r\nHost: {proxy}\r\nConnection: close\r\n\r\n")).await;
    assert_eq!(response.status, 200, "GET {path} through {proxy}: {}", response.text());
    assert_eq!(response.header("content-type"), Some("image/png"), "GET {path} through {proxy}");
    let image = Image::decode(&response.body);
    image.assert_board_sized();
    image
}

/// nginx with a plain round-robin `upstream` (no hash: any server may get any board) over
/// `backends`, logging which server answered each request.
pub fn round_robin(bin: &Path, backends: &[SocketAddr]) -> Nginx {
    let servers: String = backends.iter().map(|b| format!("        server {b};\n")).collect();
    Nginx::run(bin, "nginx-rr", |d, addr| {
        format!(
            "    log_format upstream '\"$request\" $status $upstream_addr';\n\
             \x20   access_log {d}/access.log upstream;\n\
             \x20   map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
             \x20   upstream smolcanvas {{\n{servers}    }}\n\
             \x20   server {{\n\
             \x20       listen {addr};\n\
             \x20       location / {{\n\
             \x20           proxy_pass http://smolcanvas;\n\
             \x20           proxy_http_version 1.1;\n\
             \x20           proxy_set_header Upgrade $http_upgrade;\n\
             \x20           proxy_set_header Connection $connection_upgrade;\n\
             \x20           proxy_set_header Host $http_host;\n\
             \x20           proxy_read_timeout 1h;\n\
             \x20       }}\n\
             \x20   }}"
        )
    })
}

/// How many requests for `request` (`GET /path`) each upstream of a [`round_robin`] nginx
/// answered, from its access log (a socket is logged when it closes).
pub fn answered_by(nginx: &Nginx, request: &str) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for line in nginx.read("access.log").lines() {
        let mut quoted = line.splitn(3, '"').skip(1);
        let (req, rest) = (quoted.next().unwrap_or_default(), quoted.next().unwrap_or_default());
        if req.starts_with(request) {
            let upstream = rest.trim().split_once(' ').map(|(_, u)| u.trim()).unwrap_or_default();
            *by.entry(upstream.to_string()).or_insert(0) += 1;
        }
    }
    by
}
