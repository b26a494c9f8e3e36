//! Abuse against the real binary: stalled half-sent messages, a draw flood, slow request heads, a client that never reads.
//!
//! Each test prints what it measured (resident memory, relay latency) so a
//! run doubles as a report; the assertions are on behaviour and bounds, not
//! on wall time.

mod support;

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use smolcanvas::{CloseCode, Message};

use support::*;

/// Held by the tests that load the machine (many sockets, tens of thousands of draws), so they
/// do not run at once and starve each other's bounded waits.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `a` sends one draw, `b` must get it.
async fn relayed(a: &mut Peer, b: &mut Peer, seq: u32) {
    a.send(draw(seq)).await;
    assert_eq!(draw_seq(&b.next().await), seq);
}

/// Upgrades a raw socket on `/ws`.
async fn raw_upgrade(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(upgrade_request(addr, RFC_KEY, "").as_bytes()).await.expect("write upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        bounded("the 101", tcp.read_exact(&mut byte)).await.expect("read the 101");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// The header of a masked text frame announcing `len` bytes.
fn text_header(len: u64) -> Vec<u8> {
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    header
}

/// Reads what the server sends after the upgrade, up to its close; returns the close code if one came.
async fn close_code(tcp: &mut TcpStream) -> Option<u16> {
    let mut bytes = Vec::new();
    let _ = timeout(WAIT, tcp.read_to_end(&mut bytes)).await;
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let (opcode, len) = (bytes[at] & 0x0f, usize::from(bytes[at + 1] & 0x7f));
        if opcode == 8 && len >= 2 && at + 4 <= bytes.len() {
            return Some(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        }
        at += 2 + len;
    }
    None
}

#[test]
fn stalled_half_messages_are_refused_at_the_header_and_cost_no_memory() {
    let _heavy = heavy();
    let dir = TempDir::new("attack-half");
    let process = Process::start(dir.path());
    let addr = process.addr;
    smol::block_on(async {
        let (mut a, mut b) = synced_pair(addr).await;
        let before = process.rss_kib();

        // One attacker, read back: the 8 MiB header alone earns a 1009.
        let mut probe = raw_upgrade(addr).await;
        probe.write_all(&text_header(8 << 20)).await.expect("write the header");
        probe.write_all(&vec![b'x'; 16 * 1024]).await.expect("write some payload");
        assert_eq!(close_code(&mut probe).await, Some(1009), "an unasked client may not start an 8 MiB message");

        // 200 attackers each try to send the first half of an 8 MiB message, then stall.
        let mut stalled = Vec::new();
        for _ in 0..200 {
            let mut tcp = raw_upgrade(addr).await;
            let half = async {
                tcp.write_all(&text_header(8 << 20)).await?;
                tcp.write_all(&vec![b'x'; 4 << 20]).await
            };
            let _ = timeout(Duration::from_secs(2), half).await;
            stalled.push(tcp);
        }
        let after = process.rss_kib();
        for seq in 0..10 {
            relayed(&mut a, &mut b, seq).await;
        }
        println!("RSS before 200 stalled 8 MiB messages: {before} KiB, after: {after} KiB");
        assert!(after < before + 16 * 1024, "RSS grew from {before} to {after} KiB");
    });
}

/// `--sync peers`: the asked peer's answer may be large, and it goes to the newcomer alone; the
/// board stays the server's own picture.
#[test]
fn an_asked_peer_may_send_a_large_snapshot_and_nobody_else_may() {
    let dir = TempDir::new("attack-snapshot");
    let mut process = Process::start_with(dir.path(), &["--sync", "peers"]);
    let addr = process.addr;
    smol::block_on(async {
        let (mut a, mut b) = peer_synced_pair(addr).await;
        let mut c = Peer::connect(addr).await;
        let id = a.expect_request().await;
        let big = png(&"A".repeat(2 << 20));
        a.send_state(&id, &big).await;
        let (_, data) = c.expect_state().await;
        assert_eq!(data.len(), big.len(), "the 2 MiB snapshot reached the newcomer");

        // b was not asked: the same message closes it with 1009 as soon as
        // its header arrives, so b's own write of it may end in a reset
        // before b reads the close frame.
        let _ = timeout(WAIT, b.ws.send(Message::text(canvas_state(&id, &big)))).await;
        loop {
            match recv(&mut b.ws).await {
                Some(Ok(Message::Close(frame))) => {
                    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Size));
                    break;
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        relayed(&mut a, &mut c, 1).await;
        // Nobody else is left to ask: a newcomer gets the server's own picture, never a's snapshot.
        leave_all(addr, vec![a, c]).await;
        assert_eq!(board_of(addr).await, (String::new(), vec![draw(1)]), "a peer's snapshot became the board");
    });
    process.wait_line("closing with 1009");
}

#[test]
fn a_flood_of_50000_draws_is_cut_off_while_the_others_keep_drawing() {
    let _heavy = heavy();
    let dir = TempDir::new("attack-flood");
    let process = Process::start(dir.path());
    let addr = process.addr;
    smol::block_on(async {
        let (mut a, mut b) = synced_pair(addr).await;
        let quiet = latencies(&mut a, &mut b, 0, 200).await;

        let mut flooder = Peer::connect(addr).await;
        flooder.expect_state().await;
        let flood = smol::spawn(async move {
            let flood_draw = r##"{"type":"draw","color":"#ff0000","startX":1,"startY":2,"endX":3,"endY":4}"##;
            let mut sent = 0;
            for _ in 0..50_000 {
                match timeout(WAIT, flooder.ws.send(Message::text(flood_draw))).await {
                    Some(Ok(())) => {}
                    _ => break,
                }
                sent += 1;
            }
            (sent, flooder)
        });
        let during = latencies(&mut a, &mut b, 1000, 200).await;
        let (sent, mut flooder) = bounded("the flood", flood).await;
        let close = flooder.expect_close().await;
        assert_eq!(close.code, CloseCode::Policy, "the flooder is closed for the rate limit");
        println!(
            "relay latency median: {:?} quiet, {:?} during a flood of {sent} draws (flooder closed: {})",
            median(&quiet),
            median(&during),
            close.reason
        );
        relayed(&mut a, &mut b, 5000).await;
    });
}

#[test]
fn a_storm_of_clears_keeps_the_board_right_and_the_others_drawing() {
    let dir = TempDir::new("attack-clears");
    let mut process = Process::start(dir.path());
    let addr = process.addr;
    smol::block_on(async {
        let (mut a, mut b) = synced_pair(addr).await;
        for _ in 0..1500 {
            b.send(r#"{"type":"clear"}"#).await;
        }
        b.send(draw(7)).await;
        for _ in 0..1500 {
            assert_eq!(a.next().await, r#"{"type":"clear"}"#, "every clear is relayed, in order");
        }
        assert_eq!(draw_seq(&a.next().await), 7);
        relayed(&mut a, &mut b, 8).await;
    });
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));
    let process = Process::start(dir.path());
    let (snapshot, draws) = smol::block_on(board_of(process.addr));
    assert_eq!((snapshot.as_str(), draws), ("", vec![draw(7), draw(8)]), "the board after the storm");
}

/// Sends `n` draws from `a` one at a time; returns how long each took to reach `b`, skipping other senders' draws.
async fn latencies(a: &mut Peer, b: &mut Peer, first: u32, n: u32) -> Vec<Duration> {
    let mut times = Vec::new();
    for seq in first..first + n {
        let start = Instant::now();
        a.send(draw(seq)).await;
        loop {
            let text = b.next().await;
            if text.contains("#0a0b0c") && draw_seq(&text) == seq {
                break;
            }
        }
        times.push(start.elapsed());
    }
    times
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

#[test]
fn a_thousand_slow_request_heads_hold_no_slots_and_are_closed_by_the_timeout() {
    let _heavy = heavy();
    raise_open_files(3064);
    let dir = TempDir::new("attack-slow-head");
    let process = Process::start_with(dir.path(), &["--handshake-timeout", "1", "--max-clients", "10"]);
    let addr = process.addr;
    smol::block_on(async {
        let mut slow = Vec::new();
        for _ in 0..1000 {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").await.expect("write half a head");
            slow.push(tcp);
        }
        // Upgrades still succeed while the thousand sit there: they hold no client slot.
        let (mut a, mut b) = synced_pair(addr).await;
        relayed(&mut a, &mut b, 1).await;
        let started = Instant::now();
        for tcp in &mut slow {
            let mut rest = Vec::new();
            let read = timeout(WAIT, tcp.read_to_end(&mut rest)).await;
            assert!(read.is_some(), "a slow head was still open {:?} after the test began waiting", started.elapsed());
        }
        let timeouts = metric_with_label(addr, "smolcanvas_upgrades_rejected_total", "timeout").await;
        println!("1000 slow heads closed within {:?} of each other; timeouts counted: {timeouts}", started.elapsed());
        assert_eq!(timeouts, 1000);
    });
}

#[test]
fn a_client_that_never_reads_is_closed_and_memory_stays_bounded() {
    let _heavy = heavy();
    /// Draws relayed before RSS is first measured: by then the board's memory has its working
    /// size (500 live strokes in the hub and in the store, older ones painted into the floor,
    /// floor encodes, log compactions), while the client that never reads still has room in the
    /// kernel's socket buffers (on loopback they hold some 40000 draws) and an empty outbox.
    const WARM_UP: u32 = 20_000;
    let dir = TempDir::new("attack-never-reads");
    let flags = ["--outbox-bytes", "65536", "--rate-limit", "100000", "--rate-burst", "100000"];
    let process = Process::start_with(dir.path(), &flags);
    let addr = process.addr;
    smol::block_on(async {
        let (mut a, mut b) = synced_pair(addr).await;
        let _never_reads = raw_upgrade(addr).await;
        wait_metric(addr, "smolcanvas_canvas_clients", 3).await;
        let mut before = None;
        let mut seq = 0;
        while metric(addr, "smolcanvas_slow_clients_closed_total").await == 0 {
            if seq == WARM_UP {
                before = Some(process.rss_kib());
            }
            relay_500(&mut a, &mut b, seq).await;
            seq += 500;
            assert!(seq < 400_000, "the client that never reads was not closed");
        }
        let after = process.rss_kib();
        let before = before.unwrap_or_else(|| {
            panic!("the client that never reads was closed after {seq} draws, before RSS was measured")
        });
        println!("non-reader evicted after {seq} draws; RSS {before} KiB after {WARM_UP} draws, {after} KiB after");
        // What may grow: the 64 KiB outbox; the board's strokes are bounded by the undo window.
        assert!(after < before + 4 * 1024, "RSS grew from {before} to {after} KiB");
    });
}

/// `a` sends draws `seq..seq + 500` at once; `b` must get every one, in order.
async fn relay_500(a: &mut Peer, b: &mut Peer, seq: u32) {
    for n in seq..seq + 500 {
        a.send(draw(n)).await;
    }
    for n in seq..seq + 500 {
        assert_eq!(draw_seq(&b.next().await), n, "the reading client gets every draw in order");
    }
}

async fn metric_with_label(addr: SocketAddr, name: &str, label: &str) -> u64 {
    let text = request(addr, "GET", "/metrics").await.text();
    let prefix = format!("{name}{{reason=\"{label}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
}
