//! Client counts across servers, and news of boards that came into being.
//!
//! Every server publishes `SERVER BOARD COUNT` on [`keys::PRESENCE`] when a
//! board's count here changes and every [`HEARTBEAT`]; each server sums the
//! others' latest counts per board and tells the board's hub. A server not
//! heard from for [`SILENCE`] is gone (killed, or cut off from Redis): its
//! counts are dropped. A board that comes into being is added to the
//! [`keys::BOARDS`] set and announced on [`keys::CREATED`], so every server
//! knows its view token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use log::debug;

use super::{Backoff, Cluster, command, keys, lock};
use crate::canvas::hub::Event;
use crate::timeout::timeout;

/// How often a server says its counts again.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A server's counts are dropped when it was not heard from for this long.
pub const SILENCE: Duration = Duration::from_secs(3);

/// The board name of a heartbeat without counts (no board has it).
const ALIVE: &str = "*";

/// What the publishing task sends.
#[derive(Debug)]
pub enum Publish {
    /// This server has `1` clients on board `0` now.
    Count(String, usize),
    /// Board `0` came into being here.
    Created(String),
}

/// Publishes this server's counts (at once and every [`HEARTBEAT`]) and new boards.
pub async fn publish(cluster: Arc<Cluster>) {
    let part = "publishing counts";
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut conn = None;
    let mut backoff = Backoff::new();
    let mut beat = Instant::now() + HEARTBEAT;
    let mut waiting: Vec<Publish> = Vec::new();
    loop {
        let wait = beat.saturating_duration_since(Instant::now());
        if let Some(Ok(message)) = timeout(wait, cluster.publish.1.recv()).await {
            waiting.push(message);
            while let Ok(more) = cluster.publish.1.try_recv() {
                waiting.push(more);
            }
        }
        let mut pipe = redis::pipe();
        for message in waiting.drain(..) {
            match message {
                Publish::Count(board, count) => {
                    pipe.publish(keys::PRESENCE, format!("{} {board} {count}", cluster.server)).ignore();
                    if count == 0 {
                        counts.remove(&board);
                    } else {
                        counts.insert(board, count);
                    }
                }
                Publish::Created(name) => {
                    pipe.sadd(keys::BOARDS, &name).ignore().publish(keys::CREATED, &name).ignore();
                }
            }
        }
        if Instant::now() >= beat {
            beat = Instant::now() + HEARTBEAT;
            // Said even with no board loaded: every server hears itself, and silence means Redis is gone.
            pipe.publish(keys::PRESENCE, format!("{} {ALIVE} 0", cluster.server)).ignore();
            for (board, count) in &counts {
                pipe.publish(keys::PRESENCE, format!("{} {board} {count}", cluster.server)).ignore();
            }
            sweep(&cluster);
        }
        if pipe.is_empty() {
            continue;
        }
        if conn.is_none() {
            match cluster.connect().await {
                Ok(c) => conn = Some(c),
                Err(problem) => {
                    cluster.report(part, Some(problem));
                    backoff.wait().await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        match command(pipe.query_async::<()>(c)).await {
            Ok(()) => {
                cluster.report(part, None);
                backoff.reset();
            }
            Err(problem) => {
                // Counts are said again at the next beat; a new board is known from the set at start-up.
                conn = None;
                cluster.report(part, Some(problem));
            }
        }
    }
}

/// The other servers' counts, and what each hub was told.
#[derive(Debug, Default)]
pub struct Heard {
    /// Board → server → (count, when heard).
    pub(super) servers: HashMap<String, HashMap<String, (usize, Instant)>>,
    /// Board → the total its hub was last told.
    pub(super) told: HashMap<String, usize>,
}

/// Listens to the other servers' counts and new boards; reconnects when Redis goes quiet.
pub async fn listen(cluster: Arc<Cluster>) {
    let part = "reading counts";
    let mut backoff = Backoff::new();
    loop {
        let subscribed = async {
            let mut pubsub = timeout(super::CONNECT_TIMEOUT, cluster.client.get_async_pubsub())
                .await
                .ok_or_else(|| "no answer to connecting".to_string())?
                .map_err(|e| format!("cannot connect: {e}"))?;
            command(pubsub.subscribe(&[keys::PRESENCE, keys::CREATED])).await?;
            Ok::<_, String>(pubsub)
        }
        .await;
        let pubsub = match subscribed {
            Ok(pubsub) => pubsub,
            Err(problem) => {
                cluster.report(part, Some(problem));
                backoff.wait().await;
                continue;
            }
        };
        let mut messages = pubsub.into_on_message();
        let mut heard_since_connecting = false;
        // This server's own heartbeat comes back every second: silence means Redis is gone.
        loop {
            match timeout(SILENCE, messages.next()).await {
                Some(Some(message)) => {
                    if !std::mem::replace(&mut heard_since_connecting, true) {
                        cluster.report(part, None);
                        backoff.reset();
                    }
                    let text = String::from_utf8_lossy(message.get_payload_bytes()).into_owned();
                    if message.get_channel_name() == keys::CREATED {
                        cluster.learn(&text);
                    } else {
                        heard_count(&cluster, &text);
                    }
                }
                Some(None) => {
                    cluster.report(part, Some("the subscription ended".into()));
                    break;
                }
                None => {
                    cluster.report(part, Some(format!("nothing heard for {SILENCE:?}")));
                    break;
                }
            }
        }
        backoff.wait().await;
    }
}

fn heard_count(cluster: &Cluster, text: &str) {
    let mut parts = text.split(' ');
    let (Some(server), Some(board), Some(Ok(count)), None) =
        (parts.next(), parts.next(), parts.next().map(str::parse::<usize>), parts.next())
    else {
        debug!("presence: {text:?} is not SERVER BOARD COUNT; ignored");
        return;
    };
    if server == &*cluster.server || board == ALIVE {
        return;
    }
    let mut heard = lock(&cluster.heard);
    let servers = heard.servers.entry(board.to_string()).or_default();
    if count == 0 {
        servers.remove(server);
    } else {
        servers.insert(server.to_string(), (count, Instant::now()));
    }
    tell_hub(cluster, &mut heard, board);
}

/// Drops the counts of servers not heard from for [`SILENCE`].
fn sweep(cluster: &Cluster) {
    let mut heard = lock(&cluster.heard);
    let now = Instant::now();
    let boards: Vec<String> = heard.servers.keys().cloned().collect();
    for board in boards {
        if let Some(servers) = heard.servers.get_mut(&board) {
            servers.retain(|_, (_, at)| now.duration_since(*at) < SILENCE);
        }
        tell_hub(cluster, &mut heard, &board);
    }
}

/// Tells the hub of `board` (if loaded here) the other servers' total, when it changed.
pub fn tell_hub(cluster: &Cluster, heard: &mut Heard, board: &str) {
    let total: usize = heard.servers.get(board).map_or(0, |servers| servers.values().map(|(count, _)| count).sum());
    if heard.servers.get(board).is_some_and(HashMap::is_empty) {
        heard.servers.remove(board);
    }
    let hubs = lock(&cluster.hubs);
    let Some(hub) = hubs.get(board) else {
        heard.told.remove(board);
        return;
    };
    if heard.told.get(board) != Some(&total) && hub.try_send(Event::RemoteCount(total)).is_ok() {
        heard.told.insert(board.to_string(), total);
    }
}
