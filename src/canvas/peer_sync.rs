//! `--sync peers`: a v1 newcomer's picture asked of a peer, as PROTOCOL.md's v1 part describes.
//!
//! One sync runs at a time: the longest-connected synced v1 editor is asked
//! (`canvasRequest`), then the next after the sync timeout, at most
//! [`MAX_SYNC_ATTEMPTS`] peers; then the server answers from its own picture.
//! Newcomers that arrive meanwhile wait for the same answer. An asked peer
//! may send one large message (its snapshot) while it owes it; at most
//! `max-snapshot-uploads` peers at once. A peer's snapshot goes to the
//! newcomers only: the server never stores it.
//!
//! The hub owns the clients; this module decides and says what to do in
//! [`Action`]s, which the hub carries out in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Utf8Bytes;
use log::debug;

use super::config::SNAPSHOT_ENVELOPE_BYTES;
use super::hub::ClientId;
use super::protocol;
use super::{CanvasConfig, CanvasMetrics, SMALL_MESSAGE_BYTES};
use crate::metrics::add;

/// Peers asked for one sync before the server answers itself.
pub const MAX_SYNC_ATTEMPTS: u32 = 3;

/// What the hub must do for the peer sync.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Send `peer` this `canvasRequest`.
    Ask {
        /// The peer.
        peer: ClientId,
        /// The request.
        request: Utf8Bytes,
    },
    /// Send `to` a `canvasState` with this data URL (a peer's answer).
    Forward {
        /// The newcomer.
        to: ClientId,
        /// The data URL, shared.
        data: Utf8Bytes,
    },
    /// Answer `to` from the server's picture.
    FromServer(ClientId),
    /// Set `peer`'s message limit to `bytes`.
    Limit {
        /// The peer.
        peer: ClientId,
        /// Its new limit.
        bytes: usize,
    },
}

#[derive(Debug)]
struct Pending {
    /// Who gets the peer's snapshot.
    target: ClientId,
    /// The `clientId` the asked peer was sent (the target's, or that of a target that left since).
    request_id: String,
    /// Newcomers whose sync started meanwhile: they get the same answer.
    waiters: Vec<ClientId>,
    asked: Option<ClientId>,
    attempts: u32,
    deadline: Instant,
}

/// The peer sync of one board.
#[derive(Debug)]
pub struct PeerSync {
    pending: Option<Pending>,
    /// Peers allowed to send a large message now, and until when.
    uploads: Vec<(ClientId, Instant)>,
    timeout: Duration,
    max_uploads: usize,
    snapshot_limit: usize,
    metrics: Arc<CanvasMetrics>,
}

impl PeerSync {
    /// A board's peer sync, with the canvas's timeouts and limits.
    pub fn new(config: &CanvasConfig, metrics: Arc<CanvasMetrics>) -> PeerSync {
        PeerSync {
            pending: None,
            uploads: Vec::new(),
            timeout: config.sync_timeout,
            max_uploads: config.max_snapshot_uploads,
            snapshot_limit: config.max_snapshot_bytes + SNAPSHOT_ENVELOPE_BYTES,
            metrics,
        }
    }

    /// Whether a sync in flight will answer `id`.
    pub fn serves(&self, id: ClientId) -> bool {
        self.pending.as_ref().is_some_and(|p| p.target == id || p.waiters.contains(&id))
    }

    /// Starts a sync for `target` (whose wire `clientId` is `target_name`), or
    /// lets it wait for the one in flight. `peers`: the synced v1 editors, oldest first.
    pub fn start(
        &mut self,
        target: ClientId,
        target_name: &str,
        now: Instant,
        peers: &[ClientId],
        out: &mut Vec<Action>,
    ) {
        if let Some(pending) = &mut self.pending {
            if pending.target != target && !pending.waiters.contains(&target) {
                pending.waiters.push(target);
            }
            return;
        }
        self.pending = Some(Pending {
            target,
            request_id: target_name.to_string(),
            waiters: Vec::new(),
            asked: None,
            attempts: 0,
            deadline: now,
        });
        self.advance(now, peers, out);
    }

    /// A `canvasState` from `from` for `client_id`: forwarded if it is the
    /// answer the sync waits for, dropped (and counted) otherwise.
    pub fn on_state(&mut self, from: ClientId, client_id: &str, data: String, out: &mut Vec<Action>) {
        let asked = self.pending.as_ref().is_some_and(|p| p.asked == Some(from) && p.request_id == client_id);
        // One sync at a time: whatever `from` sent, it owes nothing else now.
        self.end_upload(from, out);
        let Some(pending) = self.pending.take_if(|_| asked) else {
            debug!("client {from}: canvasState for {client_id:?} not asked for or too late; dropped");
            add(&self.metrics.canvas_states_dropped, 1);
            return;
        };
        debug!("client {from} answered the sync for client {} ({} bytes)", pending.target, data.len());
        // One answer serves the newcomer it was asked for and every one that waited with it.
        add(&self.metrics.syncs_from_peers, 1 + pending.waiters.len() as u64);
        let data = Utf8Bytes::from(data);
        for to in std::iter::once(pending.target).chain(pending.waiters) {
            out.push(Action::Forward { to, data: data.clone() });
        }
    }

    /// After clients left (`present` says who is still there): drop them, and
    /// ask the next peer at once if the asked one left.
    pub fn clients_left(&mut self, present: impl Fn(ClientId) -> bool) {
        self.uploads.retain(|(id, _)| present(*id));
        let Some(pending) = &mut self.pending else {
            return;
        };
        pending.waiters.retain(|id| present(*id));
        if !present(pending.target) {
            // The peer's answer still serves whoever waits; it names the old id.
            if pending.waiters.is_empty() {
                self.pending = None;
                return;
            }
            pending.target = pending.waiters.remove(0);
        }
        if pending.asked.is_some_and(|id| !present(id)) {
            pending.deadline = Instant::now();
        }
    }

    /// Moves the sync on once its deadline passed; takes back expired upload allowances.
    pub fn on_time(&mut self, now: Instant, peers: &[ClientId], out: &mut Vec<Action>) {
        self.advance(now, peers, out);
        let asked = self.pending.as_ref().and_then(|p| p.asked);
        let expired: Vec<ClientId> =
            self.uploads.iter().filter(|(id, until)| *until <= now && Some(*id) != asked).map(|(id, _)| *id).collect();
        for id in expired {
            self.end_upload(id, out);
        }
    }

    /// When [`PeerSync::on_time`] has work next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let upload = self.uploads.iter().map(|(_, until)| *until).min();
        [self.pending.as_ref().map(|p| p.deadline), upload].into_iter().flatten().min()
    }

    fn advance(&mut self, now: Instant, peers: &[ClientId], out: &mut Vec<Action>) {
        while let Some(pending) = self.pending.as_ref().filter(|p| p.deadline <= now) {
            if let Some(asked) = pending.asked {
                debug!("client {asked} did not answer the sync for client {} in time", pending.target);
                add(&self.metrics.sync_timeouts, 1);
            }
            let after = pending.asked;
            let candidate = if pending.attempts < MAX_SYNC_ATTEMPTS {
                peers.iter().copied().find(|id| after.is_none_or(|a| *id > a) && !self.serves(*id))
            } else {
                None
            };
            match candidate.filter(|peer| self.allow_upload(*peer, now, out)) {
                Some(peer) => {
                    let Some(pending) = self.pending.as_mut() else { return };
                    pending.asked = Some(peer);
                    pending.attempts += 1;
                    pending.deadline = now + self.timeout;
                    out.push(Action::Ask { peer, request: protocol::canvas_request(&pending.request_id) });
                }
                None => {
                    let Some(pending) = self.pending.take() else { return };
                    out.extend(std::iter::once(pending.target).chain(pending.waiters).map(Action::FromServer));
                }
            }
        }
    }

    /// Lets `peer` send one large message (a snapshot) for a while, if fewer
    /// than `max-snapshot-uploads` peers may do so now. Every other client is
    /// held to [`SMALL_MESSAGE_BYTES`], so stalled half-sent messages cannot
    /// pile up in memory.
    fn allow_upload(&mut self, peer: ClientId, now: Instant, out: &mut Vec<Action>) -> bool {
        let until = now + self.timeout * 3;
        if let Some(upload) = self.uploads.iter_mut().find(|(id, _)| *id == peer) {
            upload.1 = until;
            return true;
        }
        if self.uploads.len() >= self.max_uploads {
            debug!("{} peers are already sending snapshots; not asking client {peer}", self.uploads.len());
            return false;
        }
        out.push(Action::Limit { peer, bytes: self.snapshot_limit });
        self.uploads.push((peer, until));
        true
    }

    fn end_upload(&mut self, peer: ClientId, out: &mut Vec<Action>) {
        let before = self.uploads.len();
        self.uploads.retain(|(id, _)| *id != peer);
        if self.uploads.len() != before {
            out.push(Action::Limit { peer, bytes: SMALL_MESSAGE_BYTES });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync() -> PeerSync {
        PeerSync::new(&CanvasConfig::default(), Arc::new(CanvasMetrics::default()))
    }

    #[test]
    fn the_oldest_peer_is_asked_and_its_answer_goes_to_every_waiter() {
        let (mut sync, mut out, now) = (sync(), Vec::new(), Instant::now());
        sync.start(5, "c5", now, &[1, 2], &mut out);
        sync.start(6, "c6", now, &[1, 2], &mut out);
        assert!(matches!(out[..], [Action::Limit { peer: 1, .. }, Action::Ask { peer: 1, .. }]));
        out.clear();
        sync.on_state(1, "c5", "data:image/png;base64,AA".into(), &mut out);
        let to: Vec<ClientId> =
            out.iter().filter_map(|a| if let Action::Forward { to, .. } = a { Some(*to) } else { None }).collect();
        assert_eq!(to, [5, 6]);
        assert!(out.contains(&Action::Limit { peer: 1, bytes: SMALL_MESSAGE_BYTES }));
    }

    #[test]
    fn silent_peers_are_passed_over_then_the_server_answers() {
        let (mut sync, mut out, now) = (sync(), Vec::new(), Instant::now());
        sync.start(9, "c9", now, &[1, 2, 3, 4], &mut out);
        for step in 1..=MAX_SYNC_ATTEMPTS {
            let at = now + sync.timeout * step;
            sync.on_time(at, &[1, 2, 3, 4], &mut out);
        }
        assert_eq!(out.iter().filter(|a| matches!(a, Action::Ask { .. })).count(), MAX_SYNC_ATTEMPTS as usize);
        assert!(out.contains(&Action::FromServer(9)), "{out:?}");
        // A late answer is dropped.
        out.clear();
        sync.on_state(1, "c9", "data:image/png;base64,AA".into(), &mut out);
        assert!(!out.iter().any(|a| matches!(a, Action::Forward { .. })));
    }

    #[test]
    fn no_peer_means_the_server_answers_at_once() {
        let (mut sync, mut out) = (sync(), Vec::new());
        sync.start(3, "c3", Instant::now(), &[], &mut out);
        assert_eq!(out, [Action::FromServer(3)]);
    }
}
