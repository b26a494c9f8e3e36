//! The board store under faults, against the real binary: writes that fail and come back, and
//! `kill -9` in the middle of heavy drawing (a data dir that cannot be used at start is in
//! `startup.rs`: the server refuses to start).

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use support::*;

async fn health(addr: SocketAddr) -> String {
    let response = request(addr, "GET", "/healthz").await;
    assert_eq!(response.status, 200, "/healthz stays 200 so a supervisor does not restart the box");
    response.text()
}

/// Polls `/healthz` until its body starts with `prefix`.
async fn wait_health(addr: SocketAddr, prefix: &str) -> String {
    let start = Instant::now();
    loop {
        let text = health(addr).await;
        if text.starts_with(prefix) {
            return text;
        }
        assert!(start.elapsed() < WAIT, "/healthz says {text:?}, not {prefix}...");
        smol::Timer::after(Duration::from_millis(20)).await;
    }
}

/// Every write of board `main`'s files goes through a temp file beside it (`meta.json.tmp`,
/// `log.jsonl.tmp`, `floor-G.png.tmp`: see `src/canvas/store/files.rs`); these point at
/// `/dev/full`, so each write fails with ENOSPC (even for root, unlike permissions).
const FAULTS: [&str; 2] = ["meta.json.tmp", "log.jsonl.tmp"];

#[test]
fn failing_writes_are_reported_retried_and_nothing_is_lost() {
    let dir = TempDir::new("faults-full");
    let folder = board_folder(dir.path(), "main");
    std::fs::create_dir_all(&folder).expect("create board main's folder");
    let mut process = Process::start_with(dir.path(), &["--flush-interval", "0.1"]);
    let addr = process.addr;
    smol::block_on(async {
        let (mut a, mut b) = synced_pair(addr).await;
        // Loading the board removed the temp files an interrupted save may have left: the faults
        // go in once it is loaded (the clients have their sync).
        for name in FAULTS {
            symlink("/dev/full", folder.join(name)).expect("symlink to /dev/full");
        }
        for seq in 0..30 {
            a.send(draw(seq)).await;
            assert_eq!(draw_seq(&b.next().await), seq);
        }
        let text = wait_health(addr, "degraded").await;
        assert!(text.contains("board main not saved: ") && text.contains("meta.json"), "{text}");
        assert_eq!(metric(addr, "smolcanvas_boards_not_saving").await, 1);
        let errors = metric(addr, "smolcanvas_store_errors_total").await;
        assert!(errors > 0, "{errors} store errors counted while /healthz says {text:?}");
        a.send(draw(30)).await;
        assert_eq!(draw_seq(&b.next().await), 30, "drawing goes on while the board cannot be saved");
        assert_eq!(health(addr).await.split(':').next(), Some("degraded"));

        // The board comes into being (meta.json) before its log is written: with the first fault
        // gone, the retry gets that far, and the second fault still fails the save.
        std::fs::remove_file(folder.join(FAULTS[0])).expect("remove the first fault");
        bounded("meta.json", async {
            while !folder.join("meta.json").exists() {
                smol::Timer::after(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(health(addr).await.split(':').next(), Some("degraded"), "the log is not written yet");
        assert_eq!(metric(addr, "smolcanvas_boards_not_saving").await, 1);
        std::fs::remove_file(folder.join(FAULTS[1])).expect("remove the second fault");
        wait_health(addr, "ok").await;
        assert_eq!(metric(addr, "smolcanvas_boards_not_saving").await, 0);
        assert!(metric(addr, "smolcanvas_store_errors_total").await > errors, "the retries are counted");
    });
    let lines = process.drain_lines();
    let kinds: Vec<&str> = lines
        .iter()
        .filter(|line| line.contains("ERROR"))
        .filter_map(|line| line.split("board main: ").nth(1)?.split(' ').next())
        .collect();
    let mut unique = kinds.clone();
    unique.sort_unstable();
    unique.dedup();
    assert!(!kinds.is_empty() && kinds.len() == unique.len(), "one error line per kind of failure: {lines:#?}");
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));

    let process = Process::start(dir.path());
    let (floor, draws) = smol::block_on(board_of(process.addr));
    assert_eq!(floor, "", "nothing was painted into the floor");
    let seqs: Vec<u32> = draws.iter().map(|d| draw_seq(d)).collect();
    assert_eq!(seqs, (0..=30).collect::<Vec<_>>(), "every draw made while the disk failed was saved");
}

#[test]
fn kill_9_during_heavy_drawing_loses_at_most_the_last_flush_interval() {
    let dir = TempDir::new("faults-kill");
    let flush = Duration::from_millis(200);
    // Every draw stays a live stroke (none is painted into the floor), so a newcomer after the
    // restart gets each saved draw back as it was sent.
    let mut process = Process::start_with(dir.path(), &["--flush-interval", "0.2", "--undo-strokes", "2000"]);
    let addr = process.addr;
    let received = smol::block_on(async {
        let (mut a, mut b) = synced_pair(addr).await;
        // ~2 s of drawing at the rate limit, each draw timed when the other peer sees it.
        let mut received = Vec::new();
        for seq in 0..2000u32 {
            a.send(draw(seq)).await;
            if seq % 50 == 49 {
                for expected in seq - 49..=seq {
                    assert_eq!(draw_seq(&b.next().await), expected);
                    received.push(Instant::now());
                }
                smol::Timer::after(Duration::from_millis(45)).await;
            }
        }
        received
    });
    process.signal("-KILL");
    let killed = Instant::now();
    assert_eq!(process.wait_exit().code(), None, "killed by a signal");

    let process = Process::start_with(dir.path(), &["--undo-strokes", "2000"]);
    let (floor, draws) = smol::block_on(board_of(process.addr));
    assert_eq!(floor, "", "nothing was painted into the floor");
    let saved = draws.len();
    let seqs: Vec<u32> = draws.iter().map(|d| draw_seq(d)).collect();
    assert_eq!(seqs, (0..saved as u32).collect::<Vec<_>>(), "the saved draws are a prefix, in order, none corrupt");
    // Everything relayed more than one flush interval (plus fsync slack) before the kill is on disk.
    let must_have = received.iter().filter(|at| killed.duration_since(**at) > flush + Duration::from_secs(1)).count();
    println!(
        "kill -9 after {} relayed draws: {saved} saved, {must_have} relayed before the last flush interval",
        received.len()
    );
    assert!(saved >= must_have, "{saved} draws saved, but {must_have} were relayed before the last flush interval");
}
