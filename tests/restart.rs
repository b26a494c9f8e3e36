//! The `smolcanvas` binary: the board survives a graceful stop and a `kill -9` after a flush, its
//! floor too, a peer's snapshot never becomes it; exit codes.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use smolcanvas::CloseCode;

use support::*;

/// Sends `draws` from a client alone on the board, then asks the server for the board again,
/// which proves they reached the hub: returns the client, still connected.
async fn draw_alone(addr: SocketAddr, draws: &[String]) -> Peer {
    let mut peer = Peer::connect(addr).await;
    let (id, data) = peer.expect_state().await;
    assert_eq!(data, "");
    for draw in draws {
        peer.send(draw.as_str()).await;
    }
    peer.send(r#"{"type":"canvasRequest"}"#).await;
    assert_eq!(peer.expect_state().await, (id, String::new()));
    for draw in draws {
        assert_eq!(peer.next().await, *draw);
    }
    peer
}

/// `/board.png`: the board as the server paints it.
async fn board_png(addr: SocketAddr) -> Pixels {
    let response = request(addr, "GET", "/board.png").await;
    assert_eq!(response.status, 200, "GET /board.png: {}", response.text());
    Pixels::decode(&response.body)
}

#[test]
fn sigterm_exits_0_and_the_restarted_server_has_the_same_board() {
    let dir = TempDir::new("restart-term");
    let draws: Vec<String> = (1..=25).map(draw).collect();
    let mut process = Process::start(dir.path());
    smol::block_on(async {
        let mut peer = draw_alone(process.addr, &draws).await;
        process.signal("-TERM");
        let frame = peer.expect_close().await;
        assert_eq!(frame.code, CloseCode::Away);
        expect_end(&mut peer.ws).await;
    });
    process.wait_line("every board is flushed");
    assert_eq!(process.wait_exit().code(), Some(0));
    assert_eq!(saved_draws(dir.path(), "main"), draws.len(), "board main's files hold every draw");

    let mut process = Process::start(dir.path());
    assert_eq!(smol::block_on(board_of(process.addr)), (String::new(), draws));
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));
}

/// `--sync peers`: a peer's answer goes to the newcomer it was asked for, and nowhere else: the
/// board, after a restart too, is the draws.
#[test]
fn a_peer_snapshot_is_never_stored_and_the_draws_survive_a_restart() {
    let dir = TempDir::new("restart-snapshot");
    let mut process = Process::start_with(dir.path(), &["--sync", "peers"]);
    let after: Vec<String> = (10..15).map(draw).collect();
    smol::block_on(async {
        let mut a = draw_alone(process.addr, &[draw(1), draw(2)]).await;
        let mut b = Peer::connect(process.addr).await;
        let id_b = a.expect_request().await;
        a.send_state(&id_b, &png("forged")).await;
        assert_eq!(b.expect_state().await, (id_b, png("forged")));
        for draw in &after {
            a.send(draw.as_str()).await;
            assert_eq!(b.next().await, *draw);
        }
        a.close().await;
        b.close().await;
    });
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));

    let mut process = Process::start_with(dir.path(), &["--sync", "peers"]);
    let draws = [draw(1), draw(2)].into_iter().chain(after).collect();
    assert_eq!(smol::block_on(board_of(process.addr)), (String::new(), draws));
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));
}

/// With `--undo-strokes 2`, draws far apart on the board: two, saved while both are live, then
/// four more, which push the oldest four out of the window (they are painted into the floor).
/// Returns `board.png` once every draw is on disk.
fn draw_past_the_window(process: &Process, dir: &Path) -> Pixels {
    let draws: Vec<String> = (1..=6).map(|n| draw(n * 100)).collect();
    smol::block_on(async {
        let mut peer = draw_alone(process.addr, &draws[..2]).await;
        wait_saved_draws(dir, "main", 2);
        for draw in &draws[2..] {
            peer.send(draw.as_str()).await;
        }
        wait_saved_draws(dir, "main", 6);
        peer.close().await;
        let picture = board_png(process.addr).await;
        assert!(!picture.is_white(), "board.png shows none of the draws");
        picture
    })
}

/// After the restart: the floor holds draws 100 to 400, the live strokes are draws 500 and 600,
/// and `board.png` is `picture`, pixel for pixel.
fn assert_board_past_the_window(process: &Process, picture: &Pixels) {
    let (floor, live) = smol::block_on(board_of(process.addr));
    let floor = Pixels::from_data_url(&floor);
    assert!(!floor.is_white(), "the floor lost the draws painted into it");
    assert_eq!(live, vec![draw(500), draw(600)], "the live strokes");
    assert!(smol::block_on(board_png(process.addr)) == *picture, "board.png changed across the restart");
}

#[test]
fn a_floor_not_yet_written_costs_nothing_after_kill_9() {
    let dir = TempDir::new("restart-floor-kill");
    let mut process = Process::start_with(dir.path(), &["--undo-strokes", "2"]);
    let picture = draw_past_the_window(&process, dir.path());
    // The store writes a floor when it compacts the log, not at every commit: what the four
    // draws that left the window painted is only in memory, the log holds all six.
    assert_eq!(board_log(dir.path(), "main"), (0, 6), "board main's log (committed, ops) before the kill");
    process.signal("-KILL");
    assert_eq!(process.wait_exit().code(), None);

    // Whatever the disk holds of the floor, the log's draws paint the same board again.
    let process = Process::start_with(dir.path(), &["--undo-strokes", "2"]);
    assert_board_past_the_window(&process, &picture);
}

#[test]
fn a_graceful_stop_writes_the_floor() {
    let dir = TempDir::new("restart-floor-term");
    let mut process = Process::start_with(dir.path(), &["--undo-strokes", "2"]);
    let picture = draw_past_the_window(&process, dir.path());
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));
    // The stop compacted the board: a floor file holding four draws, and a log of the two live strokes.
    let folder = board_folder(dir.path(), "main");
    let floors = std::fs::read_dir(&folder).expect("board main's folder").flatten();
    let floors = floors.filter(|entry| entry.file_name().to_string_lossy().starts_with("floor-")).count();
    assert_eq!((floors, board_log(dir.path(), "main")), (1, (4, 2)), "board main's files after a graceful stop");

    let process = Process::start_with(dir.path(), &["--undo-strokes", "2"]);
    assert_board_past_the_window(&process, &picture);
}

/// With `--undo-strokes 1` the draws are painted into the floor before the clear: the clear
/// must still hide them after the restart.
#[test]
fn a_cleared_board_stays_empty_after_a_restart() {
    let dir = TempDir::new("restart-clear");
    let mut process = Process::start_with(dir.path(), &["--undo-strokes", "1"]);
    smol::block_on(async {
        let mut a = draw_alone(process.addr, &[draw(100), draw(200), draw(300)]).await;
        let mut b = Peer::connect(process.addr).await;
        b.expect_state().await;
        a.send(r#"{"type":"clear"}"#).await;
        // b's sync may carry draws not yet painted into the floor it got: the clear comes after.
        loop {
            let text = b.next().await;
            if text == r#"{"type":"clear"}"# {
                break;
            }
            draw_seq(&text);
        }
        a.close().await;
        b.close().await;
    });
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));

    let process = Process::start_with(dir.path(), &["--undo-strokes", "1"]);
    assert_eq!(smol::block_on(board_of(process.addr)), (String::new(), vec![]));
    assert!(smol::block_on(board_png(process.addr)).is_white(), "board.png shows what was cleared");
}

#[test]
fn kill_9_after_a_flush_keeps_the_draws() {
    let dir = TempDir::new("restart-kill");
    let draws: Vec<String> = (1..=30).map(draw).collect();
    let mut process = Process::start(dir.path());
    let _peer = smol::block_on(draw_alone(process.addr, &draws));
    wait_saved_draws(dir.path(), "main", draws.len());
    process.signal("-KILL");
    assert_eq!(process.wait_exit().code(), None, "killed by a signal");

    let process = Process::start(dir.path());
    assert_eq!(smol::block_on(board_of(process.addr)), (String::new(), draws));
}

/// `smolcanvas 2>&1 | head -3`: once the reader of stderr is gone, every log line fails with
/// EPIPE. The lines are dropped and counted; drawing, health, shutdown and saving go on as before.
#[test]
fn a_lost_stderr_changes_nothing_but_the_dropped_line_count() {
    let dir = TempDir::new("restart-no-stderr");
    let mut process = Process::start_then_close_stderr(dir.path(), &[]);
    let addr = process.addr;
    smol::block_on(async {
        let (mut a, mut b) = synced_pair(addr).await;
        a.send(draw(1)).await;
        assert_eq!(b.next().await, draw(1));
        let health = request(addr, "GET", "/healthz").await;
        assert_eq!((health.status, health.text()), (200, "ok".to_string()));
        let dropped = metric(addr, "smolcanvas_log_lines_dropped_total").await;
        assert!(dropped > 0, "{dropped} log lines dropped, though each connection logs one");
        process.signal("-TERM");
        for peer in [&mut a, &mut b] {
            assert_eq!(peer.expect_close().await.code, CloseCode::Away);
            expect_end(&mut peer.ws).await;
        }
    });
    assert_eq!(process.wait_exit().code(), Some(0));

    let process = Process::start(dir.path());
    assert_eq!(smol::block_on(board_of(process.addr)), (String::new(), vec![draw(1)]));
}

#[test]
fn invalid_flag_value_exits_2_with_a_one_line_error() {
    let output = Command::new(BIN).args(["--ping-interval", "abc"]).output().expect("run smolcanvas");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr:?}");
    assert!(stderr.contains("--ping-interval") && stderr.contains("\"abc\""), "stderr: {stderr:?}");
    assert!(output.stdout.is_empty());
}
