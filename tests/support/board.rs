//! A board as its clients see it: joining it alone or through the client that answers the sync,
//! a synced pair of clients (synced by the server, or by a peer), reading all of it, leaving it.

use std::net::SocketAddr;

use super::messages::{canvas_state, png};
use super::metrics::wait_metric;
use super::peer::Peer;

/// Reads the board a lone newcomer gets: the canvasState's data, then the draws up to a second
/// canvasState, which the newcomer's own `canvasRequest` asks for (so nothing more can be pending).
pub async fn read_board(peer: &mut Peer) -> (String, Vec<String>) {
    let (id, data) = peer.expect_state().await;
    peer.send(r#"{"type":"canvasRequest"}"#).await;
    let mut draws = Vec::new();
    loop {
        let text = peer.next().await;
        if text.contains(r#""type":"canvasState""#) {
            assert_eq!(text, canvas_state(&id, &data), "the second answer differs from the first");
            break;
        }
        draws.push(text);
    }
    for draw in &draws {
        assert_eq!(peer.next().await, *draw, "the replay differs from the first one");
    }
    (data, draws)
}

/// What a new client alone on the board at `addr` gets: the snapshot data, then the draws.
pub async fn board_of(addr: SocketAddr) -> (String, Vec<String>) {
    let mut peer = Peer::connect(addr).await;
    let board = read_board(&mut peer).await;
    peer.close().await;
    board
}

/// Two synced clients on a server that answers every sync itself (`--sync server`, the
/// default): `a`, then `b`, each with the board's `canvasState`.
pub async fn synced_pair(addr: SocketAddr) -> (Peer, Peer) {
    let mut a = Peer::connect(addr).await;
    a.expect_state().await;
    let mut b = Peer::connect(addr).await;
    b.expect_state().await;
    (a, b)
}

/// Two synced clients on a server with `--sync peers`: `a` (the oldest, which answers `b`'s
/// sync with `png("AAAA")`) and `b`.
pub async fn peer_synced_pair(addr: SocketAddr) -> (Peer, Peer) {
    let mut a = Peer::connect(addr).await;
    a.expect_state().await;
    let mut b = Peer::connect(addr).await;
    let id = a.expect_request().await;
    a.send_state(&id, &png("AAAA")).await;
    assert_eq!(b.expect_state().await, (id, png("AAAA")), "b gets a's answer");
    (a, b)
}

/// Connects a client to an empty board with nobody else on it: the server answers its sync with `""`.
pub async fn join_alone(addr: SocketAddr) -> (Peer, String) {
    let mut peer = Peer::connect(addr).await;
    let (id, data) = peer.expect_state().await;
    assert_eq!(data, "", "a lone client on an empty board gets an empty canvasState");
    (peer, id)
}

/// Connects a client whose sync `helper` (the longest-connected client) answers with `data`.
pub async fn join_via(addr: SocketAddr, helper: &mut Peer, data: &str) -> (Peer, String) {
    let mut peer = Peer::connect(addr).await;
    let id = helper.expect_request().await;
    helper.send_state(&id, data).await;
    assert_eq!(peer.expect_state().await, (id.clone(), data.to_string()));
    (peer, id)
}

/// Asks the server for the board again, as a client alone on it: which also proves that
/// everything the client sent before has reached the hub.
pub async fn resync(peer: &mut Peer) -> (String, Vec<String>) {
    peer.send(r#"{"type":"canvasRequest"}"#).await;
    read_board(peer).await
}

/// Closes every client and waits until the hub has let them all go.
pub async fn leave_all(addr: SocketAddr, peers: Vec<Peer>) {
    for mut peer in peers {
        peer.close().await;
    }
    wait_metric(addr, "smolcanvas_canvas_clients", 0).await;
}
