//! Undo and redo (PROTOCOL.md v2 "undo and redo"): per author, across reconnects with the same
//! `hello`; a new stroke drops the author's redo stack; an undone clear brings back what it wiped
//! beneath what came after and syncs everyone again; v1 clients are synced again after an undo or
//! redo, at most once a second per board.

mod support;

use std::time::{Duration, Instant};

use support::*;

const RED: &str = "#ff0000";
const GREEN: &str = "#00ff00";
const BLUE: &str = "#0000ff";

const ALICE: &str = "alice-secret-0123456789";
const BOB: &str = "bob-secret-abcdefghijkl";

/// A v2 editor that said `hello` with `author`, on an empty board: the client and its id.
async fn author_on(addr: std::net::SocketAddr, path: &str, author: &str) -> (Peer, String) {
    let (mut peer, welcome) = join_empty_v2(addr, path).await;
    peer.send(hello(author)).await;
    (peer, welcome.client_id)
}

#[test]
fn undo_and_redo_follow_the_author_across_a_reconnect() {
    let server = Board::start("undo-author", |_| {});
    let addr = server.addr();
    let path = "/b/undo/ws";
    smol::block_on(async {
        let (mut observer, _) = join_empty_v2(addr, path).await;
        let (mut first, first_id) = author_on(addr, path, ALICE).await;
        let one = [segment(RED, (100, 100), (200, 100), 5), segment(RED, (200, 100), (200, 200), 5)];
        let two = segment(GREEN, (300, 300), (400, 300), 5);
        for part in &one {
            first.send(with_stroke(part, 1)).await;
        }
        first.send(with_stroke(&two, 2)).await;
        let (k1, k2) = (format!("{first_id}.1"), format!("{first_id}.2"));
        for expected in [v2_form(&one[0], &k1), v2_form(&one[1], &k1), v2_form(&two, &k2)] {
            assert_eq!(observer.next().await, expected);
        }
        first.close().await;

        // The same author on a new connection undoes its strokes, newest first; every v2 client
        // on the board, the sender included, is told which.
        let (mut again, again_id) = author_on(addr, path, ALICE).await;
        assert_ne!(again_id, first_id, "a new connection gets a new clientId");
        // Its sync has the strokes, with their keys.
        for expected in [v2_form(&one[0], &k1), v2_form(&one[1], &k1), v2_form(&two, &k2)] {
            assert_eq!(again.next().await, expected);
        }
        again.send(UNDO).await;
        assert_eq!(observer.next().await, undo_message(&k2));
        assert_eq!(again.next().await, undo_message(&k2));
        again.send(UNDO).await;
        assert_eq!(observer.next().await, undo_message(&k1));
        assert_eq!(again.next().await, undo_message(&k1));
        again.send(REDO).await;
        let redo = redo_message(&k1, &[&one[0], &one[1]]);
        assert_eq!(observer.next().await, redo);
        assert_eq!(again.next().await, redo);

        // Another author's undo touches none of it.
        let (mut bob, bob_id) = author_on(addr, path, BOB).await;
        bob.send(UNDO).await;
        let mine = segment(BLUE, (500, 500), (600, 500), 5);
        bob.send(with_stroke(&mine, 1)).await;
        let bob_key = format!("{bob_id}.1");
        assert_eq!(observer.next().await, v2_form(&mine, &bob_key), "bob's first undo did nothing");
        bob.send(UNDO).await;
        assert_eq!(observer.next().await, undo_message(&bob_key));
        bob.send(UNDO).await;
        again.send(REDO).await;
        assert_eq!(observer.next().await, redo_message(&k2, &[&two]), "bob's second undo did nothing either");
        assert_eq!(
            board_at_v2(addr, path).await,
            (String::new(), vec![v2_form(&one[0], &k1), v2_form(&one[1], &k1), v2_form(&two, &k2)])
        );
        assert_eq!(metric(addr, "smolcanvas_undos_total").await, 3);
        assert_eq!(metric(addr, "smolcanvas_redos_total").await, 2);
    });
}

#[test]
fn without_hello_an_editor_undoes_only_its_own_connections_strokes() {
    let server = Board::start("undo-connection", |_| {});
    let addr = server.addr();
    let path = "/b/anonymous/ws";
    smol::block_on(async {
        let (mut observer, _) = join_empty_v2(addr, path).await;
        let (mut first, first_id) = {
            let (peer, welcome) = join_empty_v2(addr, path).await;
            (peer, welcome.client_id)
        };
        let (a, b) = (segment(RED, (10, 10), (90, 10), 4), segment(RED, (10, 20), (90, 20), 4));
        first.send(with_stroke(&a, 1)).await;
        first.send(with_stroke(&b, 2)).await;
        let (ka, kb) = (format!("{first_id}.1"), format!("{first_id}.2"));
        observer.next().await;
        observer.next().await;
        first.send(UNDO).await;
        assert_eq!(observer.next().await, undo_message(&kb));
        first.close().await;

        // A new connection without hello is someone else: nothing to undo, nothing to redo.
        let (mut second, _) = Peer::join_v2(addr, path).await;
        let (_, synced) = read_board(&mut second).await;
        assert_eq!(synced, vec![v2_form(&a, &ka)]);
        second.send(UNDO).await;
        second.send(REDO).await;
        let c = segment(BLUE, (10, 30), (90, 30), 4);
        second.send(with_stroke(&c, 1)).await;
        let relayed = observer.next().await;
        assert_eq!(relayed, v2_form(&c, &stroke_key(&relayed)), "the undo and redo did nothing");
        second.send(UNDO).await;
        assert_eq!(observer.next().await, undo_message(&stroke_key(&relayed)), "its own stroke it can undo");
        // And the observer, which never drew, cannot undo anybody's.
        observer.send(UNDO).await;
        second.send(REDO).await;
        assert_eq!(observer.next().await, redo_message(&stroke_key(&relayed), &[&c]));
        assert_eq!(board_at_v2(addr, path).await.1, vec![v2_form(&a, &ka), relayed]);
    });
}

#[test]
fn a_new_stroke_drops_the_authors_redo_stack_but_not_others() {
    let server = Board::start("undo-redo-dropped", |_| {});
    let addr = server.addr();
    let path = "/b/redo/ws";
    smol::block_on(async {
        let (mut observer, _) = join_empty_v2(addr, path).await;
        let (mut alice, alice_id) = author_on(addr, path, ALICE).await;
        let (mut bob, bob_id) = author_on(addr, path, BOB).await;
        let s1 = segment(RED, (10, 10), (100, 10), 4);
        let s2 = segment(RED, (10, 20), (100, 20), 4);
        let (k1, k2) = (format!("{alice_id}.1"), format!("{alice_id}.2"));
        alice.send(with_stroke(&s1, 1)).await;
        assert_eq!(observer.next().await, v2_form(&s1, &k1));
        alice.send(UNDO).await;
        assert_eq!(observer.next().await, undo_message(&k1));
        alice.send(with_stroke(&s2, 2)).await;
        assert_eq!(observer.next().await, v2_form(&s2, &k2));
        alice.send(REDO).await;
        alice.send(UNDO).await;
        assert_eq!(observer.next().await, undo_message(&k2), "the redo after a new stroke did nothing");
        alice.send(REDO).await;
        assert_eq!(observer.next().await, redo_message(&k2, &[&s2]));
        alice.send(REDO).await;
        alice.send(UNDO).await;
        assert_eq!(observer.next().await, undo_message(&k2), "stroke 1 was dropped from the redo stack");

        // Somebody else's strokes leave alice's redo stack alone.
        let b1 = segment(BLUE, (10, 30), (100, 30), 4);
        bob.send(with_stroke(&b1, 1)).await;
        assert_eq!(observer.next().await, v2_form(&b1, &format!("{bob_id}.1")));
        alice.send(REDO).await;
        assert_eq!(observer.next().await, redo_message(&k2, &[&s2]));
        assert_eq!(
            board_at_v2(addr, path).await.1,
            vec![v2_form(&b1, &format!("{bob_id}.1")), v2_form(&s2, &k2)],
            "a redone stroke comes back on top"
        );
    });
}

#[test]
fn an_undone_clear_brings_back_what_it_wiped_beneath_what_came_after() {
    let server = Board::start("undo-clear", |_| {});
    let addr = server.addr();
    let path = "/b/clear/ws";
    smol::block_on(async {
        let (mut old, old_id) = join_empty_v1(addr, path).await;
        let (mut observer, observer_welcome) = join_empty_v2(addr, path).await;
        let (mut alice, alice_id) = author_on(addr, path, ALICE).await;
        let (mut bob, bob_id) = author_on(addr, path, BOB).await;
        let before_a = segment(RED, (10, 10), (100, 10), 4);
        let before_b = segment(GREEN, (10, 20), (100, 20), 4);
        let after_b = segment(BLUE, (10, 30), (100, 30), 4);
        alice.send(with_stroke(&before_a, 1)).await;
        assert_eq!(old.next().await, before_a);
        bob.send(with_stroke(&before_b, 1)).await;
        assert_eq!(old.next().await, before_b);
        alice.send(CLEAR).await;
        assert_eq!(old.next().await, CLEAR);
        bob.send(with_stroke(&after_b, 2)).await;
        assert_eq!(old.next().await, after_b);
        for _ in 0..4 {
            observer.next().await;
        }
        for _ in 0..2 {
            alice.next().await;
            bob.next().await;
        }
        assert_eq!(board_at(addr, path).await, (String::new(), vec![after_b.clone()]));

        alice.send(UNDO).await;
        let keys = [format!("{alice_id}.1"), format!("{bob_id}.1"), format!("{bob_id}.2")];
        let strokes = [&before_a, &before_b, &after_b];
        let v2_sync: Vec<String> = strokes.iter().zip(&keys).map(|(s, k)| v2_form(s, k)).collect();
        let v1_sync: Vec<String> = strokes.iter().map(|s| s.to_string()).collect();
        // Everyone, v1 and v2, the undoer included, is synced again: canvasState, then the strokes.
        assert_eq!(old.expect_state().await, (old_id, String::new()));
        for expected in &v1_sync {
            assert_eq!(old.next().await, *expected);
        }
        for (peer, id) in [(&mut observer, &observer_welcome.client_id), (&mut alice, &alice_id), (&mut bob, &bob_id)] {
            assert_eq!(peer.expect_state().await, (id.clone(), String::new()), "no undo message, a sync");
            for expected in &v2_sync {
                assert_eq!(peer.next().await, *expected);
            }
        }
        // A clear cannot be redone: the next thing anyone sees is bob's next stroke.
        alice.send(REDO).await;
        let last = segment(RED, (10, 40), (100, 40), 4);
        bob.send(with_stroke(&last, 3)).await;
        assert_eq!(old.next().await, last);
        assert_eq!(observer.next().await, v2_form(&last, &format!("{bob_id}.3")));
        let mut expected = v1_sync.clone();
        expected.push(last);
        assert_eq!(board_at(addr, path).await, (String::new(), expected));
        assert_eq!(metric(addr, "smolcanvas_undos_total").await, 1);
        assert_eq!(metric(addr, "smolcanvas_redos_total").await, 0);
    });
}

#[test]
fn a_clear_past_the_undo_window_cannot_be_undone() {
    let server = Board::start("undo-clear-window", |config| config.undo_strokes = 3);
    let addr = server.addr();
    let path = "/b/window/ws";
    smol::block_on(async {
        let (mut observer, _) = join_empty_v2(addr, path).await;
        let (mut alice, _) = author_on(addr, path, ALICE).await;
        let (mut bob, bob_id) = author_on(addr, path, BOB).await;
        alice.send(with_stroke(&segment(RED, (10, 10), (100, 10), 4), 1)).await;
        alice.send(CLEAR).await;
        observer.next().await;
        assert_eq!(observer.next().await, CLEAR, "the clear comes before bob's strokes");
        for n in 1..=3 {
            bob.send(with_stroke(&segment(BLUE, (10, 10 + 10 * n), (100, 10 + 10 * n), 4), n)).await;
        }
        for _ in 0..3 {
            observer.next().await;
        }
        alice.send(UNDO).await;
        bob.send(UNDO).await;
        assert_eq!(observer.next().await, undo_message(&format!("{bob_id}.3")), "alice's undo did nothing");
        assert_eq!(metric(addr, "smolcanvas_undos_total").await, 1);
    });
}

/// Reads a v1 client's messages up to the next `canvasState`: the draws before it, and its data.
async fn draws_until_sync(peer: &mut Peer) -> (Vec<String>, String, Instant) {
    let mut draws = Vec::new();
    loop {
        let text = peer.next().await;
        if text.contains(r#""type":"canvasState""#) {
            let message: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            return (draws, string(&message, "data").to_string(), Instant::now());
        }
        draws.push(text);
    }
}

#[test]
fn v1_clients_are_synced_again_after_undo_and_redo_at_most_once_a_second() {
    let server = Board::start("undo-v1-resync", |_| {});
    let addr = server.addr();
    let path = "/b/resync/ws";
    smol::block_on(async {
        let (mut old, _) = join_empty_v1(addr, path).await;
        let (mut alice, alice_id) = author_on(addr, path, ALICE).await;
        let strokes: Vec<String> = (0..3).map(|n| segment(RED, (10, 10 + 10 * n), (100, 10 + 10 * n), 4)).collect();
        for (n, stroke) in strokes.iter().enumerate() {
            alice.send(with_stroke(stroke, n)).await;
        }
        alice.send(UNDO).await;
        // The live draws, then the first resync at once: without the undone stroke.
        let (live, data, first_at) = draws_until_sync(&mut old).await;
        assert_eq!((live, data.as_str()), (strokes.clone(), ""));
        // Two more undos in quick succession: one resync for both, a second after the first.
        alice.send(UNDO).await;
        alice.send(UNDO).await;
        let (resynced, data, second_at) = draws_until_sync(&mut old).await;
        assert_eq!((resynced, data.as_str()), (strokes[..2].to_vec(), ""), "the first resync's draws");
        let gap = second_at.duration_since(first_at);
        assert!(gap >= Duration::from_millis(800), "two resyncs {gap:?} apart, not a second");
        // A redo, a second later again.
        alice.send(REDO).await;
        let (resynced, data, third_at) = draws_until_sync(&mut old).await;
        assert_eq!((resynced, data.as_str()), (vec![], ""), "after both undos, nothing shows");
        let gap = third_at.duration_since(second_at);
        assert!(gap >= Duration::from_millis(800), "two resyncs {gap:?} apart, not a second");
        let last = segment(BLUE, (10, 100), (100, 100), 4);
        alice.send(with_stroke(&last, 9)).await;
        assert_eq!(old.next().await, strokes[0], "the redone stroke, in the last resync");
        assert_eq!(old.next().await, last, "then live draws again, with no resync more");
        // The v2 client got undo and redo messages, never a resync.
        for expected in [
            undo_message(&format!("{alice_id}.2")),
            undo_message(&format!("{alice_id}.1")),
            undo_message(&format!("{alice_id}.0")),
            redo_message(&format!("{alice_id}.0"), &[&strokes[0]]),
        ] {
            assert_eq!(alice.next().await, expected);
        }
        let mut v1 = Peer::connect_to(addr, path).await;
        assert_eq!(read_board(&mut v1).await, (String::new(), vec![strokes[0].clone(), last]));
    });
}

#[test]
fn strokes_past_the_undo_window_go_into_the_floor_for_good() {
    let server = Board::start("undo-floor", |config| config.undo_strokes = 2);
    let addr = server.addr();
    let path = "/b/floor/ws";
    smol::block_on(async {
        let (mut observer, _) = join_empty_v2(addr, path).await;
        let (mut alice, alice_id) = author_on(addr, path, ALICE).await;
        let strokes = [
            segment(RED, (100, 100), (300, 100), 10),
            segment(GREEN, (100, 200), (300, 200), 10),
            segment(BLUE, (100, 300), (300, 300), 10),
        ];
        for (n, stroke) in strokes.iter().enumerate() {
            alice.send(with_stroke(stroke, n + 1)).await;
            observer.next().await;
        }
        // A newcomer gets the floor with the oldest stroke painted in, then the two live ones (all
        // three as draws until the store has painted the floor: wait for that, bounded).
        // (Not read_board: the floor may be painted between its two syncs.)
        let start = Instant::now();
        let (floor, live) = loop {
            let mut newcomer = Peer::connect_to(addr, path).await;
            let (_, data) = newcomer.expect_state().await;
            let shown = if data.is_empty() { &strokes[..] } else { &strokes[1..] };
            let mut draws = Vec::new();
            for _ in shown {
                draws.push(newcomer.next().await);
            }
            newcomer.close().await;
            if !data.is_empty() {
                break (Image::from_data_url(&data), draws);
            }
            assert_eq!(draws, strokes.to_vec(), "before the floor is painted, every stroke is a draw");
            assert!(start.elapsed() < WAIT, "the floor was not painted within {WAIT:?}");
            smol::Timer::after(Duration::from_millis(20)).await;
        };
        floor.assert_board_sized();
        floor.assert_pixel((200, 100), rgb(RED), "the committed stroke, in the floor");
        floor.assert_pixel((200, 200), WHITE, "a live stroke is not in the floor");
        floor.assert_pixel((200, 300), WHITE, "a live stroke is not in the floor");
        assert_eq!(live, strokes[1..].to_vec());
        // The committed stroke cannot be undone.
        for _ in 0..3 {
            alice.send(UNDO).await;
        }
        let last = segment(BLUE, (600, 600), (700, 600), 10);
        alice.send(with_stroke(&last, 4)).await;
        assert_eq!(observer.next().await, undo_message(&format!("{alice_id}.3")));
        assert_eq!(observer.next().await, undo_message(&format!("{alice_id}.2")));
        assert_eq!(observer.next().await, v2_form(&last, &format!("{alice_id}.4")), "the third undo did nothing");
        let png = fetch_png(addr, "/b/floor/board.png", "floor.png").await;
        png.assert_pixel((200, 100), rgb(RED), "the committed stroke stays");
        png.assert_pixel((200, 200), WHITE, "undone");
        png.assert_pixel((200, 300), WHITE, "undone");
        png.assert_pixel((650, 600), rgb(BLUE), "the last stroke");
    });
}
