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
//! It needs root (network namespaces), `ip` (iproute2) and `redis-server`. Without them it says on
//! stderr that it did not run and passes, unless `SMOLCANVAS_REQUIRE_NETNS` (or
//! `SMOLCANVAS_REQUIRE_REDIS`) is set (`.ci/run` sets both), where it fails.

#[path = "support/blackbox.rs"]
mod support;

#[path = "support/redis.rs"]
mod redis;

#[path = "support/cluster.rs"]
mod cluster;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_lite::future;

use cluster::*;
use redis::*;
use support::*;

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
/// A over it) and `redis` (A's path to Redis). Names carry this process's id (at most 15
/// characters), the addresses are two /30s in 10.213.0.0/16 picked from it too; all of it is
/// deleted when dropped.
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
        let pid = std::process::id();
        let (third, fourth) = (((pid >> 5) & 0xff) as u8, ((pid & 0x1f) * 8) as u8);
        let at = |n: u8| Ipv4Addr::new(10, 213, third, fourth + n);
        let ns = Netns {
            name: format!("scns{pid}"),
            client_host: format!("scch{pid}"),
            redis_host: format!("scrh{pid}"),
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
        let (client_ns, redis_ns) = (format!("sccn{pid}"), format!("scrn{pid}"));
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
    assert!(
        std::env::var_os(REQUIRE_NETNS).is_none(),
        "{test}: cannot make network namespaces ({why}) and {REQUIRE_NETNS} is set"
    );
    let _ = writeln!(
        std::io::stderr(),
        "{test}: SKIPPED, cannot make network namespaces here ({why}; it needs root and iproute2; {REQUIRE_NETNS}=1 makes this fail)"
    );
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
