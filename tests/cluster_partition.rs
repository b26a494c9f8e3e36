//! Cluster mode (`--features redis`) through a network partition between one server and Redis.
//!
//! Server A runs in a network namespace of its own with two veth pairs to this host: one that
//! the test's clients reach A over, one that is A's only path to Redis (Redis listens on the
//! host side of that pair, and on 127.0.0.1 for server B, which runs on this host). The
//! partition is the host side of A's Redis pair going down, the heal it coming up again: A's
//! clients never notice the link, only what the server tells them.
//!
//! The link goes down while A is appending a stream of draws. During the partition A's clients
//! still get each other's draws, A's `/healthz` is `degraded:`
//! and names Redis, v2 clients get `not_shared`; B is unaffected. After the heal both sides see
//! every draw exactly once, in one order, and a newcomer on either server sees the whole board.
//!
//! A second case cuts A off for longer than the stream keeps what a snapshot holds
//! (`--redis-keep-secs`): B's clients draw enough meanwhile for B to compact, store a snapshot and
//! trim the stream past what A read. After the heal A finds the gap, closes the board's clients
//! with 1001 and loads the board again from Redis; what A's clients drew during the partition
//! (relayed on A at once) is on the board once for everyone, and A and B show the same picture.
//!
//! It needs root (network namespaces), `ip` (iproute2) and `redis-server`. Without them it says on
//! stderr that it did not run and passes, unless `SMOLCANVAS_REQUIRE_NETNS` (or
//! `SMOLCANVAS_REQUIRE_REDIS`) is set (`.ci/run` sets both), where it fails.

#[path = "support/blackbox.rs"]
mod support;

#[path = "support/redis.rs"]
mod redis;

#[path = "support/cluster.rs"]
mod cluster;

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future;

use cluster::*;
use redis::*;
use support::*;

/// Draws per drawer of B while A is cut off: together more than one compaction covers (the
/// store compacts once the log outgrows its compacted form by 10 000 units, 5 000 draws).
const BULK: usize = 3000;

/// The environment variable that turns "cannot make network namespaces here" into a failure.
const REQUIRE_NETNS: &str = "SMOLCANVAS_REQUIRE_NETNS";

/// Runs `ip ARGS`; the error output if it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run ip {args:?}: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Runs `ip ARGS`, failing the test if it fails.
fn must(args: &[&str]) {
    if let Err(err) = ip(args) {
        panic!("{err}");
    }
}

/// A network namespace for server A, with two veth pairs to this host: `client` (the test talks to
/// A over it) and `redis` (A's path to Redis). Names carry this process's id and the namespace's
/// number in this process (tests run in parallel; at most 15 characters), the addresses are two
/// /30s in 10.213.0.0/16 (10.214 for the second namespace, and so on) picked from them too; all of
/// it is deleted when dropped.
struct Netns {
    name: String,
    /// The host ends of the client and Redis pairs.
    client_host: String,
    redis_host: String,
    /// Host and namespace addresses of each pair.
    client_ips: (Ipv4Addr, Ipv4Addr),
    redis_ips: (Ipv4Addr, Ipv4Addr),
}

impl Netns {
    /// Creates the namespace and its links, or says why it cannot.
    fn create() -> Result<Netns, String> {
        static MADE: AtomicU8 = AtomicU8::new(0);
        let number = MADE.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let (third, fourth) = (((pid >> 5) & 0xff) as u8, ((pid & 0x1f) * 8) as u8);
        let at = |n: u8| Ipv4Addr::new(10, 213 + number, third, fourth + n);
        let id = format!("{pid}{}", char::from(b'a' + number));
        let ns = Netns {
            name: format!("scns{id}"),
            client_host: format!("scch{id}"),
            redis_host: format!("scrh{id}"),
            client_ips: (at(1), at(2)),
            redis_ips: (at(5), at(6)),
        };
        let taken = Command::new("ip").args(["-o", "addr"]).output().map_err(|e| format!("cannot run ip: {e}"))?;
        let taken = String::from_utf8_lossy(&taken.stdout);
        for addr in [ns.client_ips.0, ns.redis_ips.0] {
            if taken.contains(&format!("inet {addr}/")) {
                return Err(format!("{addr} is already used on this host"));
            }
        }
        ip(&["netns", "add", &ns.name])?;
        // From here on, Drop cleans up whatever was made.
        let (client_ns, redis_ns) = (format!("sccn{id}"), format!("scrn{id}"));
        let n = ns.name.clone();
        ip(&["netns", "exec", &n, "ip", "link", "set", "lo", "up"])?;
        for (host, inside, (host_ip, ns_ip)) in
            [(&ns.client_host, &client_ns, ns.client_ips), (&ns.redis_host, &redis_ns, ns.redis_ips)]
        {
            ip(&["link", "add", host, "type", "veth", "peer", "name", inside])?;
            ip(&["link", "set", inside, "netns", &n])?;
            ip(&["addr", "add", &format!("{host_ip}/30"), "dev", host])?;
            ip(&["link", "set", host, "up"])?;
            ip(&["netns", "exec", &n, "ip", "addr", "add", &format!("{ns_ip}/30"), "dev", inside])?;
            ip(&["netns", "exec", &n, "ip", "link", "set", inside, "up"])?;
        }
        Ok(ns)
    }

    /// `ip netns exec NAME` and the binary: server A's command.
    fn command(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name, BIN].map(String::from).to_vec()
    }

    /// Cuts A off from Redis: the host end of the Redis pair goes down.
    fn partition(&self) {
        must(&["link", "set", &self.redis_host, "down"]);
    }

    /// Joins them again.
    fn heal(&self) {
        must(&["link", "set", &self.redis_host, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
        // Deleting the namespace deletes the pairs with their inner ends, unless a process still
        // holds it: deleting the host ends is sure.
        let _ = ip(&["link", "del", &self.client_host]);
        let _ = ip(&["link", "del", &self.redis_host]);
    }
}

/// The namespace, or `None` after saying on stderr why the test is skipped; fails instead when
/// `SMOLCANVAS_REQUIRE_NETNS` is set.
fn netns_or_skip(test: &str) -> Option<Netns> {
    let why = if !rustix::process::geteuid().is_root() {
        "not root".to_string()
    } else {
        match Netns::create() {
            Ok(ns) => return Some(ns),
            Err(err) => err,
        }
    };
    let missing = format!("cannot make network namespaces here ({why})");
    skip_or_fail(test, &missing, "it needs root and iproute2", REQUIRE_NETNS);
    None
}

#[test]
fn a_partition_from_redis_keeps_each_side_drawing_and_heals_exactly_once() {
    let test = "tests/cluster_partition.rs";
    let Some(bin) = redis_server_or_skip(test) else { return };
    // Dropped last: the processes in it go first.
    let Some(ns) = netns_or_skip(test) else { return };
    let redis = Redis::start_bound(&bin, &[&ns.redis_ips.0.to_string()]);
    let url_a = redis.url_at(&ns.redis_ips.0.to_string());
    let node_a = Node::start_at("A", &ns.command(), IpAddr::V4(ns.client_ips.1), &url_a, &[]);
    let node_b = Node::start("B", &redis.url(), &[]);
    let (a, b) = (node_a.addr(), node_b.addr());
    let path = ws_path("split");
    smol::block_on(async {
        let mut a1 = Client::join(a, &path, true, "a1 (v2 on A)").await;
        let mut a2 = Client::join(a, &path, false, "a2 (v1 on A)").await;
        let mut b1 = Client::join(b, &path, true, "b1 (v2 on B)").await;
        let mut b2 = Client::join(b, &path, false, "b2 (v1 on B)").await;
        // One drawer after the other, each once the others have its draws: B's clients are not
        // synced again after the heal, so their pictures keep the order they painted in.
        a1.draw_all(span(1, 3)).await;
        for client in [&mut a2, &mut b1, &mut b2] {
            client.wait_draws(&span(1, 3)).await;
        }
        b2.draw_all(span(4, 6)).await;
        let before = span(1, 6);
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws(&before).await;
            client.wait_count(4, STEP).await;
        }

        // The link goes down while a1 is drawing: some of A's appends are answered, some are
        // cut off in flight (TCP may still deliver them once the link is back), some wait.
        let burst = span(301, 360);
        let ((), cut) = future::zip(a1.draw_paced(burst.clone(), Duration::from_millis(5)), async {
            a2.wait_some(&burst, 10).await;
            ns.partition();
            Instant::now()
        })
        .await;
        a1.wait_notice("not_shared", FAULT).await;
        eprintln!("A's v2 client got not_shared {:?} after the partition", cut.elapsed());
        let body = node_a.wait_degraded(STEP).await;
        eprintln!("A's /healthz during the partition: {body}");
        node_a.wait_metric("smolcanvas_redis_up", 0, STEP).await;

        // Each side draws; A's clients see each other's draws at once, B's theirs.
        let (on_a, on_b) = (span(101, 110), span(201, 210));
        a1.draw_all(span(101, 105)).await;
        a2.wait_draws(&span(101, 105)).await;
        a2.draw_all(span(106, 110)).await;
        b1.draw_all(span(201, 205)).await;
        b2.wait_draws(&span(201, 205)).await;
        b2.draw_all(span(206, 210)).await;
        for client in [&mut a1, &mut a2] {
            client.wait_draws(&all_of(&[&before, &on_a])).await;
        }
        for client in [&mut b1, &mut b2] {
            client.wait_draws(&all_of(&[&before, &on_b])).await;
        }
        // B is unaffected: healthy, connected to Redis, no notice; it forgets A's clients (A is
        // not heard from) within a few seconds.
        let (status, body) = node_b.healthz().await;
        assert_eq!((status, body.trim()), (200, "ok"), "B's /healthz during the partition");
        assert_eq!(node_b.metric("smolcanvas_redis_up").await, 1, "B's smolcanvas_redis_up during the partition");
        b1.wait_count(2, STEP).await;
        assert!(b1.notices.is_empty(), "B's v2 client got notices during A's partition: {:?}", b1.notices);
        assert!(!a1.seqs().iter().any(|s| on_b.contains(s)), "B's draws crossed the partition");
        eprintln!("the partition lasted {:?}", cut.elapsed());

        let syncs = (a1.syncs, a2.syncs);
        ns.heal();
        let healed = Instant::now();
        a1.wait_notice("shared", FAULT).await;
        eprintln!("A's v2 client got shared {:?} after the heal", healed.elapsed());
        // A's clients are synced again once A has read back what it held: from then on their
        // pictures follow the stream's order, as B's clients' always did.
        a1.wait_syncs(syncs.0 + 1, STEP).await;
        a2.wait_syncs(syncs.1 + 1, STEP).await;
        let every = all_of(&[&before, &burst, &on_a, &on_b]);
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws(&every).await;
        }
        // A last draw, after everything: whatever a client got before it is all it gets.
        a2.draw(999).await;
        let every = all_of(&[&every, &[999]]);
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws(&every).await;
            client.assert_exactly(&every);
            client.wait_count(4, STEP).await;
        }
        assert_same_order(&[&a1, &a2, &b1, &b2]);
        node_a.wait_healthy(STEP).await;
        for (server, addr) in [("A", a), ("B", b)] {
            let (_, seqs) = newcomer(addr, &path).await;
            assert_each_once(&format!("a newcomer on {server}"), &seqs, &every);
            assert_eq!(seqs, a1.seqs(), "a newcomer on {server} gets the board in the stream's order");
        }
        let xlen = redis.int(&["XLEN", "smolcanvas:board:split:ops"]);
        assert_eq!(xlen, every.len() as i64, "entries in the board's stream: one per draw, each appended once");
        for client in [a1, a2, b1, b2] {
            client.close().await;
        }
    });
}

#[test]
fn a_server_cut_off_past_the_kept_stream_reloads_the_board() {
    let test = "tests/cluster_partition.rs a_server_cut_off_past_the_kept_stream_reloads_the_board";
    let Some(bin) = redis_server_or_skip(test) else { return };
    // Dropped last: the processes in it go first.
    let Some(ns) = netns_or_skip(test) else { return };
    let redis = Redis::start_bound(&bin, &[&ns.redis_ips.0.to_string()]);
    let url_a = redis.url_at(&ns.redis_ips.0.to_string());
    let mut node_a = Node::start_at("A", &ns.command(), IpAddr::V4(ns.client_ips.1), &url_a, &TRIMMING);
    let mut node_b = Node::start("B", &redis.url(), &TRIMMING);
    let (a, b) = (node_a.addr(), node_b.addr());
    let board = "cut";
    let path = ws_path(board);
    let (ops, head, snap, lease) = (
        format!("smolcanvas:board:{board}:ops"),
        format!("smolcanvas:board:{board}:head"),
        format!("smolcanvas:board:{board}:snap"),
        format!("smolcanvas:board:{board}:lease"),
    );
    smol::block_on(async {
        // B makes the board: its first save compacts (there is no log yet), so B's snapshot is
        // the first and B holds the lease, which lets it snapshot and trim while A is cut off.
        let mut b1 = Client::join(b, &path, true, "b1 (v2 on B)").await;
        b1.draw(1).await;
        let start = Instant::now();
        while redis.string(&["HGET", &snap, "upto"]).is_none() {
            assert!(start.elapsed() < FAULT, "no {snap} after {FAULT:?}");
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        assert_eq!(redis.string(&["GET", &lease]), Some(node_b.server_id()), "B holds the snapshot lease");
        let mut b2 = Client::join(b, &path, false, "b2 (v1 on B)").await;
        // A loads it from Redis (with a log: its first save is no compaction).
        let mut a1 = Client::join(a, &path, true, "a1 (v2 on A)").await;
        let mut a2 = Client::join(a, &path, false, "a2 (v1 on A)").await;
        a1.draw_all(span(2, 3)).await;
        b2.draw_all(span(4, 5)).await;
        let before = span(1, 5);
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws(&before).await;
            client.wait_count(4, STEP).await;
        }

        // A is cut off; the newest entry it can have read is the head now.
        ns.partition();
        let cut = Instant::now();
        let read_by_a = redis.string(&["GET", &head]).expect("a head");
        a1.wait_notice("not_shared", FAULT).await;
        eprintln!("A's v2 client got not_shared {:?} after the partition (A read up to {read_by_a})", cut.elapsed());
        // A's clients draw: relayed at once on A, held for Redis.
        let on_a = span(101, 110);
        a1.draw_all(span(101, 105)).await;
        a2.wait_draws(&span(101, 105)).await;
        a2.draw_all(span(106, 110)).await;
        a1.wait_draws(&on_a).await;
        // Held, not in flight: A's appender gave up on the round trip that carried them.
        node_a.process.wait_line(&format!("board {board} (appending): Redis cannot be reached"));

        // B's clients draw enough for B to compact: its snapshot goes past what A read, and the
        // stream is trimmed up to it.
        let (from_b1, from_b2) = (strokes(0..BULK), strokes(BULK..2 * BULK));
        future::zip(draw_fast(&mut b1, &from_b1), draw_fast(&mut b2, &from_b2)).await;
        let start = Instant::now();
        let upto = loop {
            let upto = redis.string(&["HGET", &snap, "upto"]).expect("an upto");
            // The entry after the last one A read is gone: what A reads next names another.
            let oldest = redis.entries(&["XRANGE", &ops, "-", "+", "COUNT", "1"]).pop();
            let gone = oldest.is_none_or(|(id, fields)| {
                stream_id(&id) > stream_id(&read_by_a) && fields.get("prev") != Some(&read_by_a)
            });
            if stream_id(&upto) > stream_id(&read_by_a) && gone {
                break upto;
            }
            assert!(
                start.elapsed() < FAULT,
                "B's snapshot ({upto}) is not past what A read ({read_by_a}) after {FAULT:?}"
            );
            smol::Timer::after(Duration::from_millis(50)).await;
        };
        let xlen = redis.int(&["XLEN", &ops]);
        eprintln!(
            "{:?} into the partition B's snapshot is at {upto}, the stream trimmed to {xlen} entries",
            cut.elapsed()
        );
        assert!(a1.notices.iter().all(|n| n != "shared"), "A shared again during the partition");

        // Healed: A finds the stream trimmed past what it read and closes the board's clients
        // with 1001 (going away), to reload the board.
        ns.heal();
        let healed = Instant::now();
        for client in [&mut a1, &mut a2] {
            let close = timeout(FAULT, client.peer.expect_close()).await;
            let close = close.unwrap_or_else(|| panic!("{}: not closed within {FAULT:?} of the heal", client.name));
            assert_eq!(u16::from(close.code), 1001, "{}: closed with {close:?}", client.name);
            // Answers the close, as a page does: the connection ends and the board can go.
            client.peer.read_until_end().await;
        }
        eprintln!("A's clients were closed with 1001 {:?} after the heal", healed.elapsed());
        node_a.process.wait_line(&format!("board {board}: unloaded"));
        let why = format!("board {board}: entry ");
        assert!(
            node_a.log_so_far().iter().any(|line| line.contains(&why) && line.contains("the board is reloaded")),
            "A's log says why it reloads the board"
        );

        // They reconnect to A, which loads the board from Redis.
        let mut a1 = Client::join(a, &path, true, "a1 again (v2 on A)").await;
        let mut a2 = Client::join(a, &path, false, "a2 again (v1 on A)").await;
        assert!(!a1.floor.is_empty(), "{}: the board's floor holds B's strokes of the partition", a1.name);
        // A's draws of the partition reach everyone (A's reconnected clients too), once.
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws_within(&on_a, FAULT).await;
        }
        a2.draw(999).await;
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws(&[999]).await;
            assert!(client.duplicates.is_empty(), "{}: {:?}", client.name, client.duplicates);
            client.wait_count(4, STEP).await;
        }
        for client in [&b1, &b2] {
            for seq in &on_a {
                let times = client.received.iter().filter(|s| *s == seq).count();
                assert_eq!(times, 1, "{}: A's draw {seq} of the partition received {times} times", client.name);
            }
        }
        let stored = Stored::read(&redis, board);
        let draws = stored.draws();
        for seq in &on_a {
            let times = draws.iter().filter(|s| *s == seq).count();
            assert_eq!(times, 1, "A's draw {seq} of the partition is {times} times on the board in Redis");
        }
        let live = stored.newest(WINDOW);
        assert!(on_a.iter().all(|s| live.contains(s)), "A's draws are among the newest: {}", ranges(&live));

        // The whole board, B's strokes of the partition included, is the same on A and B.
        let mut floors = Vec::new();
        for (server, addr) in [("A", a), ("B", b)] {
            let (floor, seqs) = newcomer_settled(addr, &path, live.len()).await;
            assert_eq!(ranges(&seqs), ranges(&live), "the live strokes on {server}: the newest {WINDOW}, in order");
            assert!(!floor.is_empty(), "{server}: the older strokes are in the floor");
            floors.push(Image::from_data_url(&floor));
        }
        assert_same_pixels(&floors[0], &floors[1], "the floor of A and B");
        let png_a = fetch_png(a, &format!("/b/{board}/board.png"), &format!("{board}.png")).await;
        let png_b = fetch_png(b, &format!("/b/{board}/board.png"), &format!("{board}.png")).await;
        assert_same_pixels(&png_a, &png_b, "board.png of A and B");
        node_a.wait_healthy(STEP).await;
        eprintln!("the test took {:?} from the partition", cut.elapsed());
        for client in [a1, a2, b1, b2] {
            client.close().await;
        }
    });
}
