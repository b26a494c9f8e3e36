//! A board as its clients see it: joining it, reading all of it, a synced pair of clients.

use std::net::SocketAddr;

use super::messages::{canvas_state, png};
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

/// Two synced clients: `a` (the oldest, which answers `b`'s sync) and `b`.
pub async fn synced_pair(addr: SocketAddr) -> (Peer, Peer) {
    let mut a = Peer::connect(addr).await;
    a.expect_state().await;
    let mut b = Peer::connect(addr).await;
    let id = a.expect_request().await;
    a.send_state(&id, &png("AAAA")).await;
    b.expect_state().await;
    (a, b)
}
