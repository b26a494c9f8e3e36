//! Boards on disk (PROTOCOL.md v2 "Boards", "Undo and redo survive a restart"): a board unloads
//! after its last client left and comes back whole; boards survive a restart of the binary with
//! their keys, view links and redo stacks; a v1 data dir becomes board `main` once; `kill -9`
//! while three boards are drawn on loses at most the last flush interval of each.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::*;

const RED: &str = "#ff0000";
const GREEN: &str = "#00ff00";
const BLUE: &str = "#0000ff";

const ALICE: &str = "alice-secret-0123456789";

/// A v2 editor that said `hello` with `author`, on an empty board: the client and its id.
async fn author_on(addr: SocketAddr, path: &str, author: &str) -> (Peer, String) {
    let (mut peer, welcome) = join_empty_v2(addr, path).await;
    peer.send(hello(author)).await;
    (peer, welcome.client_id)
}

/// What a v2 newcomer on `path` gets: its welcome, the canvasState data and the draws.
async fn v2_board(addr: SocketAddr, path: &str) -> (Welcome, String, Vec<String>) {
    let (mut peer, welcome) = Peer::join_v2(addr, path).await;
    let (data, draws) = read_board(&mut peer).await;
    peer.close().await;
    (welcome, data, draws)
}

/// Draws the test's strokes as author ALICE on `path`, with a v1 watcher: two strokes kept, a third
/// undone (so it waits on alice's redo stack). Returns the v2 forms of the kept ones and the key of
/// the undone one.
async fn draw_and_undo(addr: SocketAddr, path: &str) -> (Vec<String>, String, String) {
    let (mut alice, alice_id) = author_on(addr, path, ALICE).await;
    let (mut watcher, _) = join_empty_v1(addr, path).await;
    let one = [segment(RED, (100, 100), (300, 100), 10), segment(RED, (300, 100), (300, 300), 10)];
    let two = segment(GREEN, (500, 500), (700, 500), 10);
    let three = segment(BLUE, (900, 100), (1000, 200), 10);
    for part in &one {
        alice.send(with_stroke(part, 1)).await;
    }
    alice.send(with_stroke(&two, 2)).await;
    alice.send(with_stroke(&three, 3)).await;
    for expected in [&one[0], &one[1], &two, &three] {
        assert_eq!(watcher.next().await, *expected);
    }
    let key = |n: u32| format!("{alice_id}.{n}");
    alice.send(UNDO).await;
    assert_eq!(alice.next().await, undo_message(&key(3)));
    let kept = vec![v2_form(&one[0], &key(1)), v2_form(&one[1], &key(1)), v2_form(&two, &key(2))];
    alice.close().await;
    watcher.close().await;
    (kept, key(2), key(3))
}

/// Alice, back on `path`: redo brings `undone` back, then two undos take it and `newest` away.
async fn alice_redoes_and_undoes(addr: SocketAddr, path: &str, newest: &str, undone: &str, three: &str) {
    let (mut alice, _) = Peer::join_v2(addr, path).await;
    read_board(&mut alice).await;
    alice.send(hello(ALICE)).await;
    alice.send(REDO).await;
    assert_eq!(alice.next().await, redo_message(undone, &[three]), "the redo stack came back");
    alice.send(UNDO).await;
    assert_eq!(alice.next().await, undo_message(undone));
    alice.send(UNDO).await;
    assert_eq!(alice.next().await, undo_message(newest), "the live strokes' author came back");
    alice.close().await;
}

#[test]
fn a_board_unloads_after_its_last_client_left_and_comes_back_whole() {
    let server = Board::start("store-unload", |config| config.board_unload = Duration::from_millis(200));
    let addr = server.addr();
    let path = "/b/keep/ws";
    smol::block_on(async {
        let (kept, newest, undone) = draw_and_undo(addr, path).await;
        let (welcome, data, draws) = v2_board(addr, path).await;
        assert_eq!((data.as_str(), &draws), ("", &kept));
        wait_metric(addr, "smolcanvas_canvas_clients", 0).await;
        wait_metric(addr, "smolcanvas_boards_loaded", 0).await;

        let (again, data, draws) = v2_board(addr, path).await;
        assert_eq!((data.as_str(), &draws), ("", &kept), "the board came back whole, keys and all");
        assert_eq!(again.view_path, welcome.view_path, "the view link is the board's for life");
        assert_eq!(metric(addr, "smolcanvas_boards_loaded").await, 1);
        let three = segment(BLUE, (900, 100), (1000, 200), 10);
        alice_redoes_and_undoes(addr, path, &newest, &undone, &three).await;
    });
}

#[test]
fn boards_survive_a_restart_of_the_binary() {
    let dir = TempDir::new("store-restart");
    let flags = ["--flush-interval", "0.05", "--board-unload-secs", "0.2"];
    let mut process = Process::start_with(dir.path(), &flags);
    let addr = process.addr;
    let (kept, newest, undone, welcome, main, old_ids) = smol::block_on(async {
        let (kept, newest, undone) = draw_and_undo(addr, "/b/alpha/ws").await;
        let (mut a, a_id) = join_empty_v1(addr, "/ws").await;
        let (mut b, b_id) = join_empty_v1(addr, "/ws").await;
        for seq in 1..=5 {
            a.send(draw(seq)).await;
            assert_eq!(b.next().await, draw(seq));
        }
        let (welcome, _, _) = v2_board(addr, "/b/alpha/ws").await;
        let main = board_at(addr, "/ws").await;
        assert_eq!(main, (String::new(), (1..=5).map(draw).collect::<Vec<_>>()));
        let old_ids = HashSet::from([a_id, b_id, welcome.client_id.clone()]);
        (kept, newest, undone, welcome, main, old_ids)
    });
    let before = smol::block_on(fetch_png(addr, "/b/alpha/board.png", "alpha.png"));
    process.stop();

    let process = Process::start_with(dir.path(), &flags);
    let addr = process.addr;
    smol::block_on(async {
        assert_eq!(metric(addr, "smolcanvas_boards_stored").await, 2);
        assert_eq!(fetch_png(addr, "/b/alpha/board.png", "alpha.png").await, before, "rendered from disk, the same");
        let (again, data, draws) = v2_board(addr, "/b/alpha/ws").await;
        assert_eq!((data.as_str(), &draws), ("", &kept), "board alpha came back whole, keys and all");
        assert_eq!(again.view_path, welcome.view_path, "the view link survives a restart");
        assert!(!old_ids.contains(&again.client_id), "clientIds are never reused across restarts");
        assert_eq!(board_at(addr, "/ws").await, main);
        let view = again.view_path.expect("viewPath");
        fetch_png(addr, &format!("{view}/board.png"), "view.png").await;
        let three = segment(BLUE, (900, 100), (1000, 200), 10);
        alice_redoes_and_undoes(addr, "/b/alpha/ws", &newest, &undone, &three).await;
    });
}

/// Whether `draw` (a normalized draw) shows in `png` at its segment's midpoint.
fn painted(png: &Image, draw: &str) -> bool {
    let message: serde_json::Value = serde_json::from_str(draw).expect("JSON");
    let at = |a: &str, b: &str| ((message[a].as_f64().unwrap() + message[b].as_f64().unwrap()) / 2.0) as u32;
    png.has_pixel((at("startX", "endX"), at("startY", "endY")), rgb(message["color"].as_str().unwrap()))
}

#[test]
fn a_v1_data_dir_becomes_board_main_once() {
    let dir = TempDir::new("store-migrate");
    // The v1 snapshot: 640 x 360, red on the left half, white on the right.
    let snapshot = encode_png(640, 360, |x, _| if x < 320 { [255, 0, 0] } else { [255, 255, 255] });
    std::fs::write(dir.path().join("snapshot.txt"), png_data_url(&snapshot)).expect("write snapshot.txt");
    let journal = [
        segment(BLUE, (200, 100), (1100, 100), 10),
        segment(GREEN, (200, 200), (1100, 200), 10),
        segment(BLUE, (1100, 200), (1100, 400), 10),
    ];
    let mut lines: String = journal.iter().map(|line| format!("{line}\n")).collect();
    lines.push_str(r##"{"type":"draw","color":"#00ff00","startX":20"##);
    std::fs::write(dir.path().join("journal.jsonl"), lines).expect("write journal.jsonl");

    let mut process = Process::start_with(dir.path(), &["--flush-interval", "0.05"]);
    let addr = process.addr;
    for name in ["snapshot.txt", "journal.jsonl"] {
        assert!(!dir.path().join(name).exists(), "{name} is gone from the top of the data dir");
        assert!(dir.path().join("v1-migrated").join(name).exists(), "{name} is kept in v1-migrated/");
    }
    let check = |png: &Image, live: &[String], what: &str| {
        png.assert_board_sized();
        for at in [(100, 600), (600, 600), (10, 10), (630, 710)] {
            png.assert_pixel(at, [255, 0, 0], &format!("{what}: the snapshot's red half, scaled"));
        }
        for at in [(700, 600), (1270, 10), (1270, 710)] {
            png.assert_pixel(at, WHITE, &format!("{what}: the snapshot's white half"));
        }
        let mut from = 0;
        for draw in &journal {
            if live[from..].first() == Some(draw) {
                from += 1;
            } else {
                assert!(painted(png, draw), "{what}: {draw} is neither a live draw nor in the picture");
            }
        }
        assert_eq!(from, live.len(), "{what}: the live draws are the journal's, in order: {live:#?}");
    };
    smol::block_on(async {
        let (data, live) = board_at(addr, "/ws").await;
        check(&Image::from_data_url(&data), &live, "the newcomer's canvasState");
        let png = fetch_png(addr, "/board.png", "main.png").await;
        check(&png, &[], "board.png");
        // Nobody can undo the migrated strokes.
        let (mut old, _) = Peer::join_v2(addr, "/ws").await;
        read_board(&mut old).await;
        let (mut watcher, _) = Peer::join_v2(addr, "/ws").await;
        read_board(&mut watcher).await;
        old.send(UNDO).await;
        old.send(CLEAR).await;
        assert_eq!(watcher.next().await, CLEAR, "the undo did nothing");
        assert_eq!(board_at(addr, "/ws").await, (String::new(), vec![]));
    });
    process.stop();

    let process = Process::start_with(dir.path(), &["--flush-interval", "0.05"]);
    smol::block_on(async {
        assert_eq!(board_at(process.addr, "/ws").await, (String::new(), vec![]), "the v1 picture stays cleared");
        let png = fetch_png(process.addr, "/board.png", "main.png").await;
        png.assert_pixel((100, 600), WHITE, "the v1 snapshot did not come back");
    });
    assert!(!dir.path().join("snapshot.txt").exists() && !dir.path().join("journal.jsonl").exists());
}

/// A draw of board `board` numbered `seq`: recoverable with [`draw_seq`] (`board` is its startX).
fn board_draw(board: u32, seq: u32) -> String {
    draw(board * 10_000 + seq)
}

#[test]
fn kill_9_while_three_boards_are_drawn_on_loses_at_most_the_last_flush_interval() {
    let dir = TempDir::new("store-kill");
    let flush = Duration::from_millis(50);
    // Room for every draw to stay live, so each board's sync lists them all.
    let flags = ["--flush-interval", "0.05", "--undo-strokes", "5000"];
    let mut process = Process::start_with(dir.path(), &flags);
    let addr = process.addr;
    let boards = ["/b/k1/ws", "/b/k2/ws", "/b/k3/ws"];
    let (received, sent, killed) = smol::block_on(async {
        let mut drawers = Vec::new();
        for path in boards {
            let (drawer, _) = join_empty_v1(addr, path).await;
            let (watcher, _) = join_empty_v2(addr, path).await;
            drawers.push((drawer, watcher));
        }
        // ~1.5 s of drawing on the three boards at once, 600 draws a second each; each draw timed
        // when the board's other client sees it.
        let mut received: Vec<Vec<Instant>> = vec![Vec::new(); 3];
        let mut sent = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(1500) {
            for _ in 0..6 {
                sent += 1;
                for (board, (drawer, _)) in drawers.iter_mut().enumerate() {
                    drawer.send(board_draw(board as u32 + 1, sent)).await;
                }
            }
            for (board, (_, watcher)) in drawers.iter_mut().enumerate() {
                while (received[board].len() as u32) < sent {
                    let text = watcher.next().await;
                    let expected = board_draw(board as u32 + 1, received[board].len() as u32 + 1);
                    assert_eq!(text, v2_form(&expected, &stroke_key(&text)), "board {}", board + 1);
                    received[board].push(Instant::now());
                }
            }
            smol::Timer::after(Duration::from_millis(10)).await;
        }
        // Kill it mid-stroke: the drawers keep sending.
        for (board, (drawer, _)) in drawers.iter_mut().enumerate() {
            drawer.send(board_draw(board as u32 + 1, sent + 1)).await;
        }
        process.kill();
        let killed = Instant::now();
        (received, sent + 1, killed)
    });

    let process = Process::start_with(dir.path(), &flags);
    smol::block_on(async {
        for (board, path) in boards.into_iter().enumerate() {
            let (data, draws) = board_at(process.addr, path).await;
            assert_eq!(data, "", "board {path}: all draws are live strokes over a white floor");
            let saved = draws.len() as u32;
            let expected: Vec<String> = (1..=saved).map(|seq| board_draw(board as u32 + 1, seq)).collect();
            assert_eq!(draws, expected, "board {path}: the saved draws are a prefix, in order, none twice or corrupt");
            assert!(saved <= sent, "board {path}: {saved} saved, only {sent} sent");
            // Everything seen more than one flush interval (and some fsync slack) before the kill is on disk.
            let slack = Duration::from_millis(300);
            let must_have = received[board].iter().filter(|at| killed.duration_since(**at) > flush + slack).count();
            println!("{path}: {} relayed before the kill, {saved} saved, {must_have} must be", received[board].len());
            assert!(
                saved as usize >= must_have,
                "board {path}: {saved} draws saved, but {must_have} were relayed before the last flush interval"
            );
        }
    });
}
