//! The canvas app over loopback, syncing newcomers: the longest-connected client is asked for
//! its canvas and the answer goes to the newcomer alone; a silent client is skipped after the sync
//! timeout, the server answers from its own board when every client is silent, answers nobody
//! asked for are dropped, and a client may ask for a fresh sync itself.

mod support;

use std::time::Instant;

use support::*;

#[test]
fn sync_asks_the_longest_connected_client_and_routes_the_answer_to_the_newcomer_only() {
    let board = Board::start("sync", peer_sync);
    smol::block_on(async {
        let (mut a, id_a) = join_alone(board.addr()).await;
        let (mut b, id_b) = join_via(board.addr(), &mut a, &png("A1")).await;

        let mut c = Peer::connect(board.addr()).await;
        let id_c = a.expect_request().await;
        assert!(id_c != id_a && id_c != id_b, "the request names the newcomer, not {id_c}");
        a.send_state(&id_c, &png("A2")).await;
        assert_eq!(c.expect_state().await, (id_c.clone(), png("A2")));
        a.send(draw(1)).await;
        assert_eq!(b.next().await, draw(1), "b was asked too, or got c's canvasState");
        assert_eq!(c.next().await, draw(1));

        a.close().await;
        b.wait_count(2).await;
        let mut d = Peer::connect(board.addr()).await;
        let id_d = b.expect_request().await;
        b.send_state(&id_d, &png("B")).await;
        assert_eq!(d.expect_state().await, (id_d, png("B")));
        b.send(draw(2)).await;
        assert_eq!(c.next().await, draw(2), "c was asked too, or got d's canvasState");
        assert_eq!(d.next().await, draw(2));
        assert_eq!(metric(board.addr(), "smolcanvas_syncs_from_peers_total").await, 3);
    });
}

#[test]
fn silent_peer_is_skipped_after_the_sync_timeout_and_its_late_answer_dropped() {
    let board = Board::start("sync-timeout", peer_sync);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A1")).await;

        let asked = Instant::now();
        let mut c = Peer::connect(board.addr()).await;
        let id_c = a.expect_request().await;
        assert_eq!(b.expect_request().await, id_c, "after a's silence b is asked for c");
        assert!(asked.elapsed() >= SYNC_TIMEOUT, "b was asked after {:?}", asked.elapsed());
        b.send_state(&id_c, &png("B")).await;
        assert_eq!(c.expect_state().await, (id_c.clone(), png("B")));

        a.send_state(&id_c, &png("late")).await;
        a.send(draw(1)).await;
        assert_eq!(c.next().await, draw(1), "a's late canvasState reached c");
        assert_eq!(b.next().await, draw(1));
        assert_eq!(metric(board.addr(), "smolcanvas_canvas_states_dropped_total").await, 1);
        assert_eq!(metric(board.addr(), "smolcanvas_sync_timeouts_total").await, 1);
    });
}

#[test]
fn when_every_peer_is_silent_the_server_answers_from_its_board() {
    let board = Board::start("sync-fallback", peer_sync);
    smol::block_on(async {
        let (mut a, id_a) = join_alone(board.addr()).await;
        a.send(draw(1)).await;
        a.send(draw(2)).await;
        assert_eq!(resync(&mut a).await, (String::new(), vec![draw(1), draw(2)]));

        let asked = Instant::now();
        let mut b = Peer::connect(board.addr()).await;
        let id_b = a.expect_request().await;
        assert_ne!(id_b, id_a);
        assert_eq!(b.expect_state().await, (id_b, String::new()));
        assert!(asked.elapsed() >= SYNC_TIMEOUT, "the server answered after {:?}", asked.elapsed());
        assert_eq!(b.next().await, draw(1));
        assert_eq!(b.next().await, draw(2));
        a.send(draw(3)).await;
        assert_eq!(b.next().await, draw(3));
        assert_eq!(metric(board.addr(), "smolcanvas_syncs_from_server_total").await, 4);
    });
}

#[test]
fn unsolicited_canvas_state_is_dropped_and_counted() {
    let board = Board::start("unsolicited", peer_sync);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, id_b) = join_via(board.addr(), &mut a, &png("A1")).await;
        a.send_state(&id_b, &png("again")).await;
        a.send_state("server", &png("nobody-asked")).await;
        a.send_state("12345", &png("no-such-client")).await;
        a.send(draw(1)).await;
        assert_eq!(b.next().await, draw(1), "an unsolicited canvasState reached b");

        let mut c = Peer::connect(board.addr()).await;
        let id_c = a.expect_request().await;
        b.send_state(&id_c, &png("not-asked")).await;
        b.send(draw(2)).await;
        assert_eq!(a.next().await, draw(2));
        a.send_state(&id_c, &png("A2")).await;
        assert_eq!(c.next().await, draw(2));
        assert_eq!(c.expect_state().await, (id_c, png("A2")), "c got b's canvasState, which nobody asked for");
        a.send(draw(3)).await;
        assert_eq!(c.next().await, draw(3));
        assert_eq!(b.next().await, draw(3));
        assert_eq!(metric(board.addr(), "smolcanvas_canvas_states_dropped_total").await, 4);
    });
}

#[test]
fn canvas_state_that_is_too_large_is_rejected_and_the_sync_stays_pending() {
    let board = Board::start("snapshot-size", |c| {
        peer_sync(c);
        c.max_snapshot_bytes = 100;
    });
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let mut b = Peer::connect(board.addr()).await;
        let id_b = a.expect_request().await;
        a.send_state(&id_b, &png(&"A".repeat(101 - png("").len()))).await;
        a.expect_error("invalid_canvas_state").await;
        let fits = png(&"A".repeat(100 - png("").len()));
        a.send_state(&id_b, &fits).await;
        assert_eq!(b.expect_state().await, (id_b, fits));
        assert_eq!(metric(board.addr(), "smolcanvas_canvas_states_dropped_total").await, 0);
    });
}

#[test]
fn client_canvas_request_starts_a_fresh_sync_unless_one_is_in_flight() {
    let board = Board::start("client-request", peer_sync);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, id_b) = join_via(board.addr(), &mut a, &png("A1")).await;

        b.send(r#"{"type":"canvasRequest"}"#).await;
        assert_eq!(a.expect_request().await, id_b);
        b.send(r#"{"type":"canvasRequest"}"#).await;
        b.send(draw(1)).await;
        assert_eq!(a.next().await, draw(1), "a second sync started while one was in flight");
        a.send_state(&id_b, &png("fresh")).await;
        assert_eq!(b.expect_state().await, (id_b.clone(), png("fresh")));

        b.send(r#"{"type":"canvasRequest","clientId":"ignored"}"#).await;
        assert_eq!(a.expect_request().await, id_b);
        a.send_state(&id_b, &png("fresher")).await;
        assert_eq!(b.expect_state().await, (id_b, png("fresher")));
    });
}

#[test]
fn lone_client_gets_an_empty_canvas_state() {
    let board = Board::start("lone", peer_sync);
    smol::block_on(async {
        let mut a = Peer::connect(board.addr()).await;
        assert_eq!(read_board(&mut a).await, (String::new(), vec![]));
        a.wait_count(1).await;
    });
}
