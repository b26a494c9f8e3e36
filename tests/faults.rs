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

#[test]
fn failing_writes_are_reported_retried_and_nothing_is_lost() {
    let dir = TempDir::new("faults-full");
    // The temp files of every atomic write point at /dev/full: each write fails with ENOSPC.
    for name in ["journal.tmp", "snapshot.tmp"] {
        symlink("/dev/full", dir.path().join(name)).expect("symlink to /dev/full");
    }
    let mut process = Process::start_with(dir.path(), &["--flush-interval", "0.1"]);
    let addr = process.addr;
    smol::block_on(async {
        let text = wait_health(addr, "degraded").await;
        assert!(text.contains("journal.jsonl"), "{text}");
        let (mut a, mut b) = synced_pair(addr).await;
        for seq in 0..30 {
            a.send(draw(seq)).await;
            assert_eq!(draw_seq(&b.next().await), seq);
        }
        assert_eq!(health(addr).await.split(':').next(), Some("degraded"));

        for name in ["journal.tmp", "snapshot.tmp"] {
            std::fs::remove_file(dir.path().join(name)).expect("remove the fault");
        }
        wait_health(addr, "ok").await;
        assert_eq!(metric(addr, "smolcanvas_store_degraded").await, 0);
    });
    let lines = process.drain_lines();
    let kinds: Vec<&str> = lines
        .iter()
        .filter(|line| line.contains("ERROR"))
        .filter_map(|line| line.split("board store: ").nth(1)?.split(':').next())
        .collect();
    let mut unique = kinds.clone();
    unique.sort_unstable();
    unique.dedup();
    assert!(!kinds.is_empty() && kinds.len() == unique.len(), "one error line per kind of failure: {lines:#?}");
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));

    let process = Process::start(dir.path());
    let (snapshot, draws) = smol::block_on(board_of(process.addr));
    assert_eq!(snapshot, png("AAAA"), "the snapshot taken while the disk failed was saved once it worked");
    let seqs: Vec<u32> = draws.iter().map(|d| draw_seq(d)).collect();
    assert_eq!(seqs, (0..30).collect::<Vec<_>>(), "every draw made while the disk failed was saved");
}

#[test]
fn kill_9_during_heavy_drawing_loses_at_most_the_last_flush_interval() {
    let dir = TempDir::new("faults-kill");
    let flush = Duration::from_millis(200);
    let mut process = Process::start_with(dir.path(), &["--flush-interval", "0.2"]);
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

    let process = Process::start(dir.path());
    let (_, draws) = smol::block_on(board_of(process.addr));
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
