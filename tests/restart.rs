//! The `smolcanvas` binary: the board survives a graceful stop and a `kill -9` after a flush; exit codes.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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

fn journal_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("journal.jsonl")).map(|text| text.lines().count()).unwrap_or(0)
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
    process.wait_line("board flushed");
    assert_eq!(process.wait_exit().code(), Some(0));
    assert_eq!(journal_lines(dir.path()), draws.len());

    let mut process = Process::start(dir.path());
    assert_eq!(smol::block_on(board_of(process.addr)), (String::new(), draws));
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));
}

#[test]
fn a_snapshot_and_the_draws_after_it_survive_a_restart() {
    let dir = TempDir::new("restart-snapshot");
    let mut process = Process::start(dir.path());
    let after: Vec<String> = (10..15).map(draw).collect();
    smol::block_on(async {
        let mut a = draw_alone(process.addr, &[draw(1), draw(2)]).await;
        let mut b = Peer::connect(process.addr).await;
        let id_b = a.expect_request().await;
        a.send_state(&id_b, &png("kept")).await;
        assert_eq!(b.expect_state().await, (id_b, png("kept")));
        for draw in &after {
            a.send(draw.as_str()).await;
            assert_eq!(b.next().await, *draw);
        }
        a.close().await;
        b.close().await;
    });
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));

    let mut process = Process::start(dir.path());
    assert_eq!(smol::block_on(board_of(process.addr)), (png("kept"), after));
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));
}

/// Draws 1-2, a first snapshot `one` (saved at once), draws 3-4, a second snapshot `two` within the
/// snapshot save interval (kept in memory only), draws 5-6; returns once every draw is journaled.
fn two_snapshots_in_a_row(process: &Process, dir: &Path) {
    smol::block_on(async {
        let mut a = draw_alone(process.addr, &[draw(1), draw(2)]).await;
        for (snapshot, draws) in [("one", [3, 4]), ("two", [5, 6])] {
            let mut newcomer = Peer::connect(process.addr).await;
            let id = a.expect_request().await;
            a.send_state(&id, &png(snapshot)).await;
            assert_eq!(newcomer.expect_state().await, (id, png(snapshot)));
            for seq in draws {
                a.send(draw(seq)).await;
                assert_eq!(newcomer.next().await, draw(seq));
            }
        }
    });
    let start = Instant::now();
    while journal_lines(dir) < 4 {
        assert!(start.elapsed() < WAIT, "the journal has {} lines, not 4", journal_lines(dir));
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_snapshot_not_yet_written_costs_nothing_after_kill_9() {
    let dir = TempDir::new("restart-snapshot-kill");
    let mut process = Process::start(dir.path());
    two_snapshots_in_a_row(&process, dir.path());
    process.signal("-KILL");
    assert_eq!(process.wait_exit().code(), None);

    // The disk holds the first snapshot and every draw after it: the same board as the second one.
    let process = Process::start(dir.path());
    let draws: Vec<String> = (3..=6).map(draw).collect();
    assert_eq!(smol::block_on(board_of(process.addr)), (png("one"), draws));
}

#[test]
fn a_graceful_stop_writes_the_newest_snapshot() {
    let dir = TempDir::new("restart-snapshot-term");
    let mut process = Process::start(dir.path());
    two_snapshots_in_a_row(&process, dir.path());
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));

    let process = Process::start(dir.path());
    assert_eq!(smol::block_on(board_of(process.addr)), (png("two"), vec![draw(5), draw(6)]));
}

#[test]
fn a_cleared_board_stays_empty_after_a_restart() {
    let dir = TempDir::new("restart-clear");
    let mut process = Process::start(dir.path());
    smol::block_on(async {
        let mut a = draw_alone(process.addr, &[draw(1)]).await;
        let mut b = Peer::connect(process.addr).await;
        let id_b = a.expect_request().await;
        a.send_state(&id_b, &png("gone")).await;
        assert_eq!(b.expect_state().await, (id_b, png("gone")));
        a.send(draw(2)).await;
        assert_eq!(b.next().await, draw(2));
        a.send(r#"{"type":"clear"}"#).await;
        assert_eq!(b.next().await, r#"{"type":"clear"}"#);
        a.close().await;
        b.close().await;
    });
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));
    assert!(!dir.path().join("snapshot.txt").exists(), "the snapshot file outlived the clear");

    let process = Process::start(dir.path());
    assert_eq!(smol::block_on(board_of(process.addr)), (String::new(), vec![]));
}

#[test]
fn kill_9_after_a_flush_keeps_the_draws() {
    let dir = TempDir::new("restart-kill");
    let draws: Vec<String> = (1..=30).map(draw).collect();
    let mut process = Process::start(dir.path());
    let _peer = smol::block_on(draw_alone(process.addr, &draws));
    let start = Instant::now();
    while journal_lines(dir.path()) < draws.len() {
        assert!(start.elapsed() < WAIT, "the journal has {} lines, not {}", journal_lines(dir.path()), draws.len());
        std::thread::sleep(Duration::from_millis(10));
    }
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
    assert_eq!(smol::block_on(board_of(process.addr)), (png("AAAA"), vec![draw(1)]));
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
