//! The canvas app over loopback: counts, relay, validation, canvas sync, the board fallback, limits and compaction.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smolcanvas::canvas::board::Board as BoardState;
use smolcanvas::canvas::hub::{Event, Hub};
use smolcanvas::canvas::{CanvasMetrics, SMALL_MESSAGE_BYTES};
use smolcanvas::limit::MessageLimit;
use smolcanvas::{Canvas, CanvasConfig, CloseCode, Message, OutboxReceiver, outbox};

use support::*;

const SYNC_TIMEOUT: Duration = Duration::from_millis(500);

/// An in-process canvas server on its own fresh data dir.
struct Board {
    server: TestServer,
    _dir: TempDir,
}

impl Board {
    fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        self.server.wire.trip();
        if !std::thread::panicking() {
            self.server.wait_stopped(WAIT).expect("the server stops cleanly");
        }
    }
}

fn start(name: &str, tweak: impl FnOnce(&mut CanvasConfig)) -> Board {
    let dir = TempDir::new(name);
    let mut canvas = CanvasConfig {
        data_dir: dir.path().to_path_buf(),
        sync_timeout: SYNC_TIMEOUT,
        flush_interval: Duration::from_millis(50),
        ..Default::default()
    };
    tweak(&mut canvas);
    let server = TestServer::start(config(), Canvas::open(canvas).expect("open the board"));
    Board { server, _dir: dir }
}

/// Connects a client to an empty board with nobody else on it: the server answers its sync with `""`.
async fn join_alone(addr: SocketAddr) -> (Peer, String) {
    let mut peer = Peer::connect(addr).await;
    let (id, data) = peer.expect_state().await;
    assert_eq!(data, "", "a lone client on an empty board gets an empty canvasState");
    (peer, id)
}

/// Connects a client whose sync `helper` (the longest-connected client) answers with `data`.
async fn join_via(addr: SocketAddr, helper: &mut Peer, data: &str) -> (Peer, String) {
    let mut peer = Peer::connect(addr).await;
    let id = helper.expect_request().await;
    helper.send_state(&id, data).await;
    assert_eq!(peer.expect_state().await, (id.clone(), data.to_string()));
    (peer, id)
}

/// Closes every client and waits until the hub has let them all go.
async fn leave_all(addr: SocketAddr, peers: Vec<Peer>) {
    for mut peer in peers {
        peer.close().await;
    }
    wait_metric(addr, "smolcanvas_canvas_clients", 0).await;
}

/// Asks the server for the board again, as a client alone on it: which also proves that
/// everything the client sent before has reached the hub.
async fn resync(peer: &mut Peer) -> (String, Vec<String>) {
    peer.send(r#"{"type":"canvasRequest"}"#).await;
    read_board(peer).await
}

#[test]
fn client_count_reaches_every_client_on_join_and_leave() {
    let board = start("count", |_| {});
    smol::block_on(async {
        let mut a = Peer::connect(board.addr()).await;
        a.wait_count(1).await;
        let mut b = Peer::connect(board.addr()).await;
        for peer in [&mut a, &mut b] {
            peer.wait_count(2).await;
        }
        let mut c = Peer::connect(board.addr()).await;
        for peer in [&mut a, &mut b, &mut c] {
            peer.wait_count(3).await;
        }
        b.close().await;
        for peer in [&mut a, &mut c] {
            peer.wait_count(2).await;
        }
        let seen = (a.counts.len(), c.counts.len());
        a.send(draw(1)).await;
        while c.next().await != draw(1) {}
        c.send(draw(2)).await;
        while a.next().await != draw(2) {}
        assert!(a.counts[seen.0..].iter().all(|&n| n == 2), "a stale count reached a: {:?}", a.counts);
        assert!(c.counts[seen.1..].iter().all(|&n| n == 2), "a stale count reached c: {:?}", c.counts);
        drop(c);
        a.wait_count(1).await;
    });
}

#[test]
fn draw_is_relayed_normalized_to_every_other_client_and_not_echoed() {
    let board = start("relay", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A1")).await;
        let (mut c, _) = join_via(board.addr(), &mut a, &png("A2")).await;

        a.send(draw(7)).await;
        assert_eq!(b.next().await, draw(7));
        assert_eq!(c.next().await, draw(7));

        let messy = r##"{"lineWidth":7.5,"endY":4,"note":"hi","startX":1.5,"color":"#ABC","startY":-2,"type":"draw","endX":3}"##;
        b.send(messy).await;
        let normalized =
            r##"{"type":"draw","color":"#ABC","startX":1.5,"startY":-2,"endX":3,"endY":4,"lineWidth":7.5}"##;
        assert_eq!(a.next().await, normalized, "a's first message after its own draw is b's draw");
        assert_eq!(c.next().await, normalized);

        c.send(r##"{"type":"draw","color":"#fff","startX":-10000,"startY":10000,"endX":0,"endY":0}"##).await;
        let defaulted =
            r##"{"type":"draw","color":"#fff","startX":-10000,"startY":10000,"endX":0,"endY":0,"lineWidth":3}"##;
        assert_eq!(a.next().await, defaulted);
        assert_eq!(b.next().await, defaulted, "b's first message after its own draw is c's draw");
        c.send(draw(8)).await;
        assert_eq!(a.next().await, draw(8));
        assert_eq!(b.next().await, draw(8));
    });
}

#[test]
fn seed_bare_draw_is_accepted() {
    let board = start("bare", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A")).await;
        a.send(r##"{"color":"#000000","endX":484,"endY":202,"startX":450,"startY":202}"##).await;
        assert_eq!(
            b.next().await,
            r##"{"type":"draw","color":"#000000","startX":450,"startY":202,"endX":484,"endY":202,"lineWidth":3}"##
        );
    });
}

/// Sends each bad message from `a`, expects the error code, then a marker draw that `b` must get next.
async fn assert_rejected(a: &mut Peer, b: &mut Peer, cases: &[(&str, String)]) {
    for (i, (code, text)) in cases.iter().enumerate() {
        a.send(text.as_str()).await;
        a.expect_error(code).await;
        let marker = draw(100 + i as u32);
        a.send(marker.as_str()).await;
        assert_eq!(b.next().await, marker, "b got something else than the marker after {text}");
    }
}

#[test]
fn each_invalid_draw_gets_invalid_draw_and_is_not_relayed() {
    let board = start("invalid-draw", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A")).await;
        let ok = r#""startX":1,"startY":2,"endX":3,"endY":4"#;
        let bad = |s: String| ("invalid_draw", s);
        let cases = [
            bad(format!(r#"{{"type":"draw","color":"red",{ok}}}"#)),
            bad(format!(r##"{{"color":"#12345g",{ok}}}"##)),
            bad(r##"{"type":"draw","color":"#fff","startX":10001,"startY":2,"endX":3,"endY":4}"##.into()),
            bad(r##"{"type":"draw","color":"#fff","startX":1,"startY":2,"endX":3,"endY":-10000.5}"##.into()),
            bad(r##"{"type":"draw","color":"#fff","startX":1,"startY":"2","endX":3,"endY":4}"##.into()),
            bad(r##"{"type":"draw","color":"#fff","startX":1,"startY":2,"endY":4}"##.into()),
            bad(format!(r##"{{"type":"draw","color":"#fff",{ok},"lineWidth":101}}"##)),
            bad(format!(r##"{{"type":"draw","color":"#fff",{ok},"lineWidth":0.4}}"##)),
            bad(format!(r##"{{"type":"draw","color":"#fff",{ok},"note":"{}"}}"##, "x".repeat(65))),
        ];
        assert_rejected(&mut a, &mut b, &cases).await;
        assert_eq!(metric(board.addr(), "smolcanvas_invalid_messages_total").await, cases.len() as u64);
    });
}

#[test]
fn bad_json_unknown_type_and_other_invalid_messages_get_their_codes() {
    let board = start("invalid-other", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A")).await;
        let cases = [
            ("invalid_json", "{".to_string()),
            ("invalid_json", "[1,2]".into()),
            ("invalid_json", r#""draw""#.into()),
            ("unknown_type", r#"{"type":"paint"}"#.into()),
            ("unknown_type", r#"{"startX":1}"#.into()),
            ("invalid_message", r#"{"type":7}"#.into()),
            ("invalid_message", format!(r#"{{"type":"clear","note":"{}"}}"#, "x".repeat(65))),
            ("invalid_canvas_state", canvas_state("1", "data:image/jpeg;base64,AAAA")),
        ];
        assert_rejected(&mut a, &mut b, &cases).await;
    });
}

#[test]
fn sync_asks_the_longest_connected_client_and_routes_the_answer_to_the_newcomer_only() {
    let board = start("sync", |_| {});
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
    let board = start("sync-timeout", |_| {});
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
    let board = start("sync-fallback", |_| {});
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
    let board = start("unsolicited", |_| {});
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
    let board = start("snapshot-size", |c| c.max_snapshot_bytes = 100);
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
    let board = start("client-request", |_| {});
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
    let board = start("lone", |_| {});
    smol::block_on(async {
        let mut a = Peer::connect(board.addr()).await;
        assert_eq!(read_board(&mut a).await, (String::new(), vec![]));
        a.wait_count(1).await;
    });
}

#[test]
fn lone_newcomer_gets_the_journaled_draws_in_order() {
    let board = start("journal", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        a.send(r##"{"color":"#123","endX":2,"endY":2,"startX":1,"startY":1}"##).await;
        for seq in 1..=20 {
            a.send(draw(seq)).await;
        }
        leave_all(board.addr(), vec![a]).await;

        let (mut b, _) = join_alone(board.addr()).await;
        b.send(draw(21)).await;
        leave_all(board.addr(), vec![b]).await;

        let mut c = Peer::connect(board.addr()).await;
        let mut expected = vec![
            r##"{"type":"draw","color":"#123","startX":1,"startY":1,"endX":2,"endY":2,"lineWidth":3}"##.to_string(),
        ];
        expected.extend((1..=21).map(draw));
        assert_eq!(read_board(&mut c).await, (String::new(), expected));
    });
}

#[test]
fn forwarded_snapshot_becomes_the_board_base_image() {
    let board = start("snapshot", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        a.send(draw(1)).await;
        a.send(draw(2)).await;
        assert_eq!(resync(&mut a).await, (String::new(), vec![draw(1), draw(2)]));
        let mut b = Peer::connect(board.addr()).await;
        let id_b = a.expect_request().await;
        a.send(draw(3)).await;
        a.send_state(&id_b, &png("snap")).await;
        assert_eq!(b.next().await, draw(3), "b gets the draws made while a painted its snapshot");
        assert_eq!(b.expect_state().await, (id_b, png("snap")));
        a.send(draw(4)).await;
        assert_eq!(b.next().await, draw(4));
        leave_all(board.addr(), vec![a, b]).await;

        let mut c = Peer::connect(board.addr()).await;
        assert_eq!(read_board(&mut c).await, (png("snap"), vec![draw(3), draw(4)]));
        assert_eq!(metric(board.addr(), "smolcanvas_snapshot_bytes").await, png("snap").len() as u64);
    });
}

#[test]
fn clear_is_relayed_to_the_others_and_empties_the_board() {
    let board = start("clear", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        a.send(draw(1)).await;
        assert_eq!(resync(&mut a).await, (String::new(), vec![draw(1)]));
        let (mut b, _) = join_via(board.addr(), &mut a, &png("before")).await;
        a.send(draw(2)).await;
        assert_eq!(b.next().await, draw(2));
        a.send(r#"{"type":"clear"}"#).await;
        assert_eq!(b.next().await, r#"{"type":"clear"}"#);
        b.send(draw(3)).await;
        assert_eq!(a.next().await, draw(3), "the clear was echoed to its sender");
        b.send(r#"{"type":"clear"}"#).await;
        leave_all(board.addr(), vec![a, b]).await;

        let mut c = Peer::connect(board.addr()).await;
        assert_eq!(read_board(&mut c).await, (String::new(), vec![]));
        assert_eq!(metric(board.addr(), "smolcanvas_journal_draws").await, 0);
        assert_eq!(metric(board.addr(), "smolcanvas_snapshot_bytes").await, 0);
    });
}

#[test]
fn binary_frame_closes_with_1003() {
    let board = start("binary", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        a.ws.send(Message::binary(vec![1u8, 2, 3])).await.expect("send a binary frame");
        assert_eq!(a.expect_close().await.code, CloseCode::Unsupported);
        expect_end(&mut a.ws).await;
        assert_eq!(metric(board.addr(), "smolcanvas_binary_closed_total").await, 1);
    });
}

#[test]
fn exceeding_the_rate_limit_closes_with_1008() {
    let board = start("rate", |c| {
        c.rate_limit = 5.0;
        c.rate_burst = 5.0;
    });
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        for seq in 0..30 {
            a.send(draw(seq)).await;
        }
        let frame = a.expect_close().await;
        assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::Policy, "rate limit exceeded"));
        expect_end(&mut a.ws).await;
        assert_eq!(metric(board.addr(), "smolcanvas_rate_limited_closed_total").await, 1);
    });
}

#[test]
fn answering_many_syncs_does_not_count_against_the_rate_limit() {
    let board = start("rate-answers", |c| {
        c.rate_limit = 5.0;
        c.rate_burst = 5.0;
    });
    smol::block_on(async {
        let (mut oldest, _) = join_alone(board.addr()).await;
        let mut newcomers = Vec::new();
        for _ in 0..12 {
            let mut newcomer = Peer::connect(board.addr()).await;
            let id = oldest.expect_request().await;
            oldest.send_state(&id, &png("AAAA")).await;
            newcomer.expect_state().await;
            newcomers.push(newcomer);
        }
        oldest.send(draw(1)).await;
        assert_eq!(draw_seq(&newcomers[0].next().await), 1, "the oldest client is still connected");
        assert_eq!(metric(board.addr(), "smolcanvas_rate_limited_closed_total").await, 0);
    });
}

#[test]
fn repeated_invalid_messages_close_with_1008() {
    let board = start("invalid-close", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        for _ in 0..15 {
            a.send("{").await;
        }
        let mut errors = 0;
        let frame = loop {
            match recv(&mut a.ws).await {
                Some(Ok(Message::Text(text))) if text.contains(r#""type":"error""#) => errors += 1,
                Some(Ok(Message::Close(Some(frame)))) => break frame,
                Some(Ok(_)) => {}
                other => panic!("expected errors and then a close, got {other:?}"),
            }
        };
        assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::Policy, "too many invalid messages"));
        assert!((10..15).contains(&errors), "{errors} errors before the close");
        expect_end(&mut a.ws).await;
        assert_eq!(metric(board.addr(), "smolcanvas_invalid_closed_total").await, 1);
    });
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

#[test]
fn slow_reader_is_evicted_and_the_others_get_every_draw() {
    /// Draws the sender may be ahead of the normal reader, so that one never falls behind.
    const WINDOW: usize = 64;
    /// Draws sent after the eviction was seen.
    const AFTER: usize = 500;
    /// Gives up if nobody was evicted by then.
    const MAX_DRAWS: usize = 400_000;
    let board = start("slow", |c| {
        c.outbox_bytes = 16 * 1024;
        c.journal_limit = 1 << 30;
        c.rate_limit = 1e9;
        c.rate_burst = 1e9;
    });
    let addr = board.addr();
    smol::block_on(async {
        let (mut sender, _) = join_alone(addr).await;
        let (mut normal, _) = join_via(addr, &mut sender, &png("S1")).await;
        let (mut slow, _) = join_via(addr, &mut sender, &png("S2")).await;

        let mut before = Vec::new();
        for seq in 0..50 {
            let sent = Instant::now();
            sender.send(draw(seq)).await;
            assert_eq!(normal.next().await, draw(seq));
            before.push(sent.elapsed());
        }

        let first = 50;
        let mut sent_at = Vec::new();
        let mut during = Vec::new();
        let (mut sent, mut received, mut total) = (0, 0, MAX_DRAWS);
        let mut evicted_after = None;
        while received < total {
            while sent < total && sent - received < WINDOW {
                sender.send(draw((first + sent) as u32)).await;
                sent_at.push(Instant::now());
                sent += 1;
            }
            let text = normal.next().await;
            assert_eq!(draw_seq(&text) as usize, first + received, "the normal client missed a draw");
            during.push(sent_at[received].elapsed());
            received += 1;
            if evicted_after.is_none()
                && received % 1000 == 0
                && metric(addr, "smolcanvas_slow_clients_closed_total").await > 0
            {
                evicted_after = Some(sent);
                total = sent + AFTER;
            }
        }
        let Some(evicted_after) = evicted_after else {
            panic!("the slow client was not evicted after {MAX_DRAWS} draws");
        };
        println!(
            "relay latency median: {:?} before, {:?} during the flood ({total} draws; eviction seen after {evicted_after})",
            median(before),
            median(during)
        );
        assert_eq!(metric(addr, "smolcanvas_slow_clients_closed_total").await, 1, "only the slow client is evicted");

        let (mut got, mut closed) = (0, None);
        let end = loop {
            match recv(&mut slow.ws).await {
                Some(Ok(Message::Text(text))) if text.contains(r#""type":"draw""#) => got += 1,
                Some(Ok(Message::Text(_))) => {}
                Some(Ok(Message::Close(Some(frame)))) => closed = Some(frame),
                Some(Ok(_)) => {}
                Some(Err(err)) => break err.to_string(),
                None => break "end of stream".to_string(),
            }
        };
        println!("the slow client read {got} draws, then close frame {closed:?}, then {end}");
        if let Some(frame) = closed {
            assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::Policy, "too slow: outbox full"));
        }
        assert!(got < first + total, "the slow client got all {got} draws");
        for peer in [&mut sender, &mut normal] {
            peer.wait_count(2).await;
        }
    });
}

#[test]
fn journal_limit_makes_the_server_ask_the_oldest_client_for_a_snapshot() {
    let board = start("compaction", |c| c.journal_limit = 10);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A1")).await;
        for seq in 0..10 {
            b.send(draw(seq)).await;
        }
        for seq in 0..10 {
            assert_eq!(a.next().await, draw(seq));
        }
        assert_eq!(a.expect_request().await, "server");
        a.send(draw(100)).await;
        assert_eq!(b.next().await, draw(100), "b was asked for the snapshot too");
        a.send_state("server", &png("compacted")).await;
        leave_all(board.addr(), vec![a, b]).await;
        assert_eq!(metric(board.addr(), "smolcanvas_journal_draws").await, 1);

        let mut c = Peer::connect(board.addr()).await;
        assert_eq!(read_board(&mut c).await, (png("compacted"), vec![draw(100)]));
        assert_eq!(metric(board.addr(), "smolcanvas_canvas_states_dropped_total").await, 0);
    });
}

/// The next message in `outbox` that is not a `clientCount`.
async fn next_queued(outbox: &OutboxReceiver) -> String {
    loop {
        match bounded("a queued message", outbox.recv()).await {
            Some(Message::Text(text)) if !text.contains(r#""type":"clientCount""#) => return text.to_string(),
            Some(Message::Text(_)) => {}
            other => panic!("expected a text message in the outbox, got {other:?}"),
        }
    }
}

#[test]
fn joins_reaching_the_hub_out_of_id_order_still_get_their_sync() {
    smol::block_on(async {
        let (events, mailbox) = async_channel::bounded(16);
        let (store, _ops) = async_channel::unbounded();
        let config = CanvasConfig { sync_timeout: Duration::from_secs(60), ..Default::default() };
        let hub = Hub::new(config, BoardState::default(), mailbox, store, Arc::new(CanvasMetrics::default()));
        let hub = smol::spawn(hub.run());
        let join = |id| {
            let (tx, rx) = outbox(1 << 20);
            (Event::Join { id, outbox: tx, limit: MessageLimit::new(SMALL_MESSAGE_BYTES) }, rx)
        };
        let answer = |from, client_id: &str| Event::CanvasState { from, client_id: client_id.into(), data: png("1") };

        let (event, one) = join(1);
        events.send(event).await.expect("the hub is running");
        assert_eq!(next_queued(&one).await, canvas_state("1", ""));
        let (event, three) = join(3);
        events.send(event).await.expect("the hub is running");
        assert_eq!(next_queued(&one).await, r#"{"type":"canvasRequest","clientId":"3"}"#);
        events.send(answer(1, "3")).await.expect("the hub is running");
        assert_eq!(next_queued(&three).await, canvas_state("3", &png("1")));
        let (event, two) = join(2);
        events.send(event).await.expect("the hub is running");
        assert_eq!(next_queued(&one).await, r#"{"type":"canvasRequest","clientId":"2"}"#);
        events.send(answer(1, "2")).await.expect("the hub is running");
        assert_eq!(next_queued(&two).await, canvas_state("2", &png("1")));

        drop(events);
        bounded("the hub to stop", hub).await;
    });
}
