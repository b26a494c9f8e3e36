//! What one client, or a crowd, must never do to the others: large boards
//! that could not be joined, pings that pinned memory, silent newcomers that
//! cost a snapshot each, legal bursts that evicted their own senders.
//!
//! Each test prints what it measured (resident memory, requests, deliveries)
//! so a run doubles as a report; the assertions are on behaviour and bounds.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_lite::{FutureExt, StreamExt};
use smolcanvas::{Canvas, CanvasConfig, Message};

use support::*;

/// What the server may hold for one client that reads nothing, as README
/// states it: its outbox (`--outbox-bytes`, 1 MiB) plus the WebSocket write
/// buffer and the read buffer, under 64 KiB together.
const PER_CLIENT_BOUND_KIB: u64 = 1024 + 64;

/// Held by the tests that load the machine, so they do not run at once and
/// starve each other's bounded waits.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A data dir as a v1 server left it: `snapshot` (a PNG data URL, if any) and `draws` journaled
/// after it. The server takes it over as board `main` when it starts.
fn board_dir(name: &str, snapshot: Option<&str>, draws: u32) -> TempDir {
    let dir = TempDir::new(name);
    if let Some(data) = snapshot {
        std::fs::write(dir.path().join("snapshot.txt"), data).expect("write the snapshot");
    }
    let journal: String = (0..draws).map(|seq| draw(seq) + "\n").collect();
    std::fs::write(dir.path().join("journal.jsonl"), journal).expect("write the journal");
    dir
}

/// Starts the binary on a v1 data dir, every wait bounded by `4 * WAIT`: the server takes the v1
/// board over (parses its journal, paints what leaves the undo window into the floor, encodes
/// the floor) before it listens, which a debug build on a loaded machine does slowly.
fn start_migrating(dir: &TempDir) -> Process {
    Process::start_command(&[BIN.to_string()], dir.path(), WAIT * 4)
}

/// Joins the board at `addr` alone and reads all of it: the count first, then the floor, then
/// the live draws, which must be `live` in order, with no close. Returns the floor's data URL.
async fn join_large_board(addr: SocketAddr, live: std::ops::Range<u32>) -> String {
    let mut peer = Peer::connect(addr).await;
    let first = bounded("the first message", recv_text(&mut peer.ws)).await;
    assert_eq!(first, r#"{"type":"clientCount","clientCount":1}"#, "clientCount must come first");
    let (floor, draws) = read_board(&mut peer).await;
    let seqs: Vec<u32> = draws.iter().map(|d| draw_seq(d)).collect();
    assert_eq!(seqs, live.collect::<Vec<_>>(), "the live draws arrive whole and in order");
    peer.close().await;
    floor
}

/// The v1 files are gone from the data dir: a later clear and restart cannot bring them back.
fn assert_migrated(dir: &TempDir) {
    for name in ["snapshot.txt", "journal.jsonl"] {
        assert!(!dir.path().join(name).exists(), "{name} is still in the data dir after the migration");
    }
    assert!(dir.path().join("v1-migrated/journal.jsonl").exists(), "the v1 journal was not kept aside");
}

/// A v1 board of 12000 draws becomes board `main`: its floor holds the oldest 11500 (painted at
/// the migration), the newest 500 (`--undo-strokes`) are live strokes, sent as draws.
#[test]
fn a_board_of_12000_draws_can_be_joined_with_nobody_else_online() {
    let dir = board_dir("large-journal", None, 12_000);
    let process = start_migrating(&dir);
    let floor = smol::block_on(join_large_board(process.addr, 11_500..12_000));
    let floor = Pixels::from_data_url(&floor);
    assert_eq!((floor.width, floor.height), (1280, 720), "the floor is the board's size");
    assert!(!floor.is_white(), "the draws painted into the floor do not show");
    assert_migrated(&dir);
}

/// A v1 board with a 1.2 MB snapshot (a real PNG of the board's size) and 100 draws after it:
/// the snapshot becomes the floor, pixel for pixel, and the draws its live strokes.
#[test]
fn a_board_with_a_1_2_mb_snapshot_can_be_joined_with_nobody_else_online() {
    let snapshot = noisy_picture();
    let url = snapshot.data_url();
    assert!((1_100_000..1_400_000).contains(&url.len()), "the snapshot is {} bytes, not about 1.2 MB", url.len());
    let dir = board_dir("large-snapshot", Some(&url), 100);
    let process = start_migrating(&dir);
    let floor = smol::block_on(join_large_board(process.addr, 0..100));
    assert!(floor.len() > 1_000_000, "a floor of {} bytes cannot hold the snapshot's noise", floor.len());
    assert!(Pixels::from_data_url(&floor) == snapshot, "the floor is not the v1 snapshot");
    assert_migrated(&dir);
}

/// A 1280 x 720 picture whose top third is noise (which PNG cannot compress), the rest white.
fn noisy_picture() -> Pixels {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<[u8; 3]> = (0..1280 * 240)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let [r, g, b, ..] = state.to_le_bytes();
            [r, g, b]
        })
        .collect();
    Pixels::new(1280, 720, |x, y| if y < 240 { noise[(y * 1280 + x) as usize] } else { [255; 3] })
}

/// A text frame's worth of pings: `count` masked ping frames with 125-byte payloads.
fn pings(count: usize) -> Vec<u8> {
    let frame = masked_frame(PING, &[b'p'; 125]);
    frame.iter().copied().cycle().take(frame.len() * count).collect()
}

#[test]
fn pings_without_reads_do_not_pin_memory_and_the_others_keep_drawing() {
    let _heavy = heavy();
    const CLIENTS: usize = 50;
    const PINGS: usize = 80_000;
    const PER_WRITE: usize = 1_000;
    let dir = TempDir::new("pings");
    let process = Process::start(dir.path());
    let addr = process.addr;
    smol::block_on(async {
        let (mut a, mut b) = synced_pair(addr).await;
        let before = process.rss_kib();
        let batch = pings(PER_WRITE);
        let mut sent = 0;
        for _ in 0..CLIENTS {
            let mut raw = RawClient::upgrade(addr).await;
            for _ in 0..PINGS / PER_WRITE {
                if raw.try_send(&batch).await.is_err() {
                    break;
                }
                sent += PER_WRITE;
            }
            // Held open, never read.
            std::mem::forget(raw);
        }
        let after = process.rss_kib();
        println!("{CLIENTS} clients sent {sent} pings and read nothing: RSS {before} -> {after} KiB");
        assert!(
            after.saturating_sub(before) < CLIENTS as u64 * PER_CLIENT_BOUND_KIB,
            "RSS grew by {} KiB, more than {CLIENTS} x {PER_CLIENT_BOUND_KIB} KiB",
            after - before
        );
        for seq in 0..100 {
            a.send(draw(seq)).await;
            assert_eq!(draw_seq(&b.next().await), seq);
        }
        wait_metric(addr, "smolcanvas_rate_limited_closed_total", CLIENTS as u64).await;
    });
}

/// Reads `peer` until `done` holds or [`WAIT`] passes without news; answers
/// every `canvasRequest` with `snapshot` and returns how many there were.
async fn answer_requests(peer: &mut Peer, snapshot: &str, mut done: impl AsyncFnMut() -> bool) -> usize {
    let mut requests = 0;
    let start = Instant::now();
    loop {
        match timeout(Duration::from_millis(200), peer.next()).await {
            Some(text) if text.contains(r#""type":"canvasRequest""#) => {
                let message: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                let id = message["clientId"].as_str().expect("a clientId").to_string();
                peer.send_state(&id, snapshot).await;
                requests += 1;
            }
            Some(_) => {}
            None if done().await => return requests,
            None => assert!(start.elapsed() < WAIT * 4, "the syncs did not end"),
        }
    }
}

/// `--sync peers`: a join storm while the oldest client is asked costs one upload, which every
/// newcomer of the storm gets; the board stays the server's own picture.
#[test]
fn silent_newcomers_cost_one_snapshot_upload_not_one_each() {
    let _heavy = heavy();
    const NEWCOMERS: usize = 100;
    let dir = TempDir::new("silent-newcomers");
    let process = Process::start_with(dir.path(), &["--sync", "peers", "--sync-timeout", "5"]);
    let addr = process.addr;
    let snapshot = png(&"B".repeat(2_000_000));
    smol::block_on(async {
        let mut oldest = Peer::connect(addr).await;
        oldest.expect_state().await;
        let before = process.rss_kib();
        // Clients that read nothing until the end: what they are sent waits in their outboxes.
        let mut silent = Vec::new();
        for _ in 0..NEWCOMERS {
            silent.push(Peer::connect(addr).await);
        }
        wait_metric(addr, "smolcanvas_canvas_clients", NEWCOMERS as u64 + 1).await;
        // The server is busy writing the board to 100 sockets: on a loaded machine (a debug
        // build, CI's other work) an answer to /metrics can take longer than the usual bound.
        let answered = async || metric_within(addr, "smolcanvas_syncs_from_peers_total", WAIT * 4).await >= 1;
        let uploads = answer_requests(&mut oldest, &snapshot, answered).await;
        let after = process.rss_kib();
        println!(
            "{NEWCOMERS} silent newcomers: {uploads} snapshot upload(s) of {} bytes; RSS {before} -> {after} KiB",
            snapshot.len()
        );
        assert_eq!(uploads, 1, "one upload serves every newcomer that joined while it was asked for");
        assert!(
            after.saturating_sub(before) < 16 * 1024,
            "RSS grew by {} KiB: the newcomers must share one copy of the board",
            after - before
        );
        for n in [0, NEWCOMERS - 1] {
            let (_, data) = silent[n].expect_state().await;
            assert!(data == snapshot, "newcomer {} did not get the upload", n + 1);
        }

        // The upload went to the newcomers only: alone, a newcomer gets the server's own picture.
        drop(silent);
        wait_metric(addr, "smolcanvas_canvas_clients", 1).await;
        leave_all(addr, vec![oldest]).await;
        assert_eq!(board_of(addr).await, (String::new(), vec![]), "a peer's snapshot became the board");
    });
}

/// `--sync peers`: a client asking for a sync in a loop gets the oldest peer asked at most once per
/// cooldown.
#[test]
fn a_canvas_request_loop_is_held_to_the_cooldown() {
    let dir = TempDir::new("request-loop");
    let process = Process::start_with(dir.path(), &["--sync", "peers"]);
    let addr = process.addr;
    let snapshot = png("CCCC");
    smol::block_on(async {
        let (mut oldest, looper) = peer_synced_pair(addr).await;
        let (mut tx, mut rx) = looper.ws.split();
        let asking = async move {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2) {
                tx.send(Message::text(r#"{"type":"canvasRequest"}"#)).await.expect("send a canvasRequest");
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        };
        // The looper reads everything it is sent, so only the cooldown holds it back.
        let reading = async move { while let Some(Ok(_)) = rx.next().await {} };
        let asked = smol::spawn(async move { asking.or(reading).await });
        let stopped = Instant::now() + Duration::from_secs(2);
        let uploads = answer_requests(&mut oldest, &snapshot, async || Instant::now() > stopped).await;
        asked.await;
        println!("a client sent canvasRequest every 5 ms for 2 s: the oldest peer was asked {uploads} time(s)");
        assert!(uploads <= 2, "the oldest peer was asked {uploads} times in 2 s");
    });
}

#[test]
fn simultaneous_legal_bursts_reach_everyone_and_close_nobody() {
    let _heavy = heavy();
    const SENDERS: u32 = 10;
    const BURST: u32 = 2_000;
    let dir = TempDir::new("bursts");
    let canvas = CanvasConfig { data_dir: dir.path().to_path_buf(), ..Default::default() };
    let server = TestServer::start(config(), Canvas::open(canvas).expect("open the board"));
    let addr = server.addr;
    smol::block_on(async {
        let mut peers = vec![];
        for _ in 0..SENDERS {
            let mut peer = Peer::connect(addr).await;
            peer.expect_state().await;
            peers.push(peer);
        }
        let go = async_channel::bounded::<()>(1);
        let tasks: Vec<_> = peers
            .into_iter()
            .enumerate()
            .map(|(i, peer)| {
                let go = go.1.clone();
                smol::spawn(async move {
                    let (mut tx, mut rx) = peer.ws.split();
                    let _ = go.recv().await;
                    let sending = async move {
                        for k in 0..BURST {
                            tx.send(Message::text(draw(i as u32 * BURST + k))).await.expect("send a draw");
                        }
                        tx
                    };
                    let receiving = async move {
                        let mut next: HashMap<u32, u32> = HashMap::new();
                        let mut received = 0;
                        while received < (SENDERS - 1) * BURST {
                            let message = timeout(WAIT * 4, rx.next()).await;
                            let text = match message {
                                Some(Some(Ok(Message::Text(text)))) => text,
                                Some(Some(Ok(Message::Ping(_)))) => continue,
                                other => panic!("client {i} got {other:?} after {received} draws"),
                            };
                            if text.contains("clientCount") {
                                continue;
                            }
                            let seq = draw_seq(&text);
                            let (from, k) = (seq / BURST, seq % BURST);
                            let expected = next.entry(from).or_default();
                            assert_eq!(k, *expected, "client {i}: draws from {from} out of order or twice");
                            *expected += 1;
                            received += 1;
                        }
                        received
                    };
                    let (tx, received) = futures_lite::future::zip(sending, receiving).await;
                    drop(tx);
                    received
                })
            })
            .collect();
        drop(go.1);
        go.0.close();
        for task in tasks {
            assert_eq!(task.await, (SENDERS - 1) * BURST);
        }
        println!(
            "{SENDERS} clients each sent {BURST} draws at once: every receiver got all {} in order",
            (SENDERS - 1) * BURST
        );
        assert_eq!(metric(addr, "smolcanvas_slow_clients_closed_total").await, 0);
        assert_eq!(metric(addr, "smolcanvas_rate_limited_closed_total").await, 0);
    });
}
