//! Cluster mode (`--features redis`, `--redis URL`): any number of servers share every board
//! through one Redis. Each test starts its own `redis-server` (free port, temp dir, AOF with
//! `appendfsync always`) and two or three `smolcanvas` binaries with data dirs of their own, all
//! with `--redis redis://127.0.0.1:PORT/`, and shows from the clients' side that:
//!
//! - a draw on one server reaches the board's clients on every server (v1 and v2 forms), not
//!   another board's, and a sequence of draws from several servers arrives in one order at every
//!   client; a view link works on every server;
//! - a newcomer on any server gets the whole board;
//! - `clientCount` counts the board's clients on every server, and forgets a killed server's;
//! - undo and redo follow their author (`hello`) from one server to another;
//! - behind nginx with a plain round-robin `upstream`, one board's clients land on both servers
//!   and see each other;
//! - a server killed in the middle of a stream of draws: its clients find the board on another
//!   one with every draw anyone had seen, nothing twice;
//! - a Redis restart keeps every client connected and drawing (`not_shared`, `degraded:`), then
//!   shares what was drawn meanwhile exactly once (`shared`); Redis killed while both servers are
//!   appending loses and repeats nothing;
//! - compaction writes the board's snapshot to Redis, which a server with an empty data dir loads;
//!   with a short `--redis-keep-secs` each snapshot trims the board's stream, which stays shorter
//!   than what one compaction covers however much is drawn, and the board stays whole everywhere.
//!
//! It needs `redis-server` (Debian's `redis-server`), and nginx for the round-robin case. Without
//! them a test says on stderr that it did not run and passes, unless `SMOLCANVAS_REQUIRE_REDIS`
//! (`SMOLCANVAS_REQUIRE_NGINX`) is set (`.ci/run` sets both), where it fails.

#[path = "support/blackbox.rs"]
mod support;

#[path = "support/redis.rs"]
mod redis;

#[path = "support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use futures_lite::future;

use cluster::*;
use redis::*;
use support::*;

/// Redis and `n` servers on it, each started with `extra` flags; `None` (the test skipped) without
/// `redis-server`.
fn start_cluster(test: &str, n: usize, extra: &[&str]) -> Option<(Redis, Vec<Node>)> {
    let bin = redis_server_or_skip(&format!("tests/cluster.rs {test}"))?;
    let redis = Redis::start(&bin);
    let nodes = (0..n).map(|i| Node::start(["A", "B", "C"][i], &redis.url(), extra)).collect();
    Some((redis, nodes))
}

#[test]
fn draws_reach_every_server_in_one_order() {
    let Some((_redis, nodes)) = start_cluster("draws_reach_every_server_in_one_order", 3, &[]) else { return };
    let (a, b, c) = (nodes[0].addr(), nodes[1].addr(), nodes[2].addr());
    let path = ws_path("relay");
    smol::block_on(async {
        let mut a1 = Client::join(a, &path, false, "a1 (v1 on A)").await;
        let mut a2 = Client::join(a, &path, true, "a2 (v2 on A)").await;
        let mut b1 = Client::join(b, &path, true, "b1 (v2 on B)").await;
        let mut b2 = Client::join(b, &path, false, "b2 (v1 on B)").await;
        let mut c1 = Client::join(c, &path, true, "c1 (v2 on C)").await;
        let mut c2 = Client::join(c, &path, false, "c2 (v1 on C)").await;
        let mut elsewhere = Client::join(b, &ws_path("elsewhere"), true, "on board elsewhere (B)").await;

        // A v1 draw on A: v1 clients everywhere get it as sent, v2 clients with a key the server
        // made up for a1.
        a1.draw(1).await;
        let mut made_up = None;
        for client in [&mut a2, &mut b1, &mut c1] {
            let text = client.next_text().await;
            let key = stroke_key(&text);
            let (id, n) = split_key(&key);
            assert_eq!(id, a1.id, "{}: the key of a1's draw names a1: {text}", client.name);
            assert!(n >= MADE_UP_STROKES, "{}: a made-up stroke number is 2^31 or more: {text}", client.name);
            assert_eq!(text, v2_form(&draw(1), &key), "{}: the v2 form of a1's draw", client.name);
            assert_eq!(*made_up.get_or_insert(key.clone()), key, "every server gives a1's draw the same key");
        }
        for client in [&mut b2, &mut c2] {
            assert_eq!(client.next_text().await, draw(1), "{}: a1's draw as sent", client.name);
        }
        // A v2 draw on B: the v1 form to v1 clients, the v2 form with the drawer's key to v2 ones.
        b1.draw(2).await;
        let key = format!("{}.2", b1.id);
        for client in [&mut a2, &mut c1] {
            assert_eq!(client.next_text().await, v2_form(&draw(2), &key), "{}: b1's draw", client.name);
        }
        for client in [&mut a1, &mut b2, &mut c2] {
            assert_eq!(client.next_text().await, draw(2), "{}: b1's draw in v1 form", client.name);
        }

        // Three drawers on three servers at once: every client paints one and the same order.
        let (from_a, from_b, from_c) = (span(100, 139), span(200, 239), span(300, 319));
        future::zip(a1.draw_all(from_a.clone()), future::zip(b1.draw_all(from_b.clone()), c2.draw_all(from_c.clone())))
            .await;
        let every = all_of(&[&[1, 2], &from_a, &from_b, &from_c]);
        for client in [&mut a1, &mut a2, &mut b1, &mut b2, &mut c1, &mut c2] {
            client.wait_draws(&every).await;
            client.assert_exactly(&every);
        }
        // The observers (who drew nothing meanwhile) agree on the order; each drawer sees the
        // others' draws in that order too (its own it painted as it drew them).
        let phase = all_of(&[&from_a, &from_b, &from_c]);
        let order = |client: &Client, skip: &[u32]| -> Vec<u32> {
            client.seqs().into_iter().filter(|s| phase.contains(s) && !skip.contains(s)).collect()
        };
        let reference = order(&c1, &[]);
        for observer in [&a2, &b2] {
            assert_eq!(order(observer, &[]), reference, "{} and {} disagree on the order", observer.name, c1.name);
        }
        for (drawer, own) in [(&a1, &from_a), (&b1, &from_b), (&c2, &from_c)] {
            let others: Vec<u32> = reference.iter().copied().filter(|s| !own.contains(s)).collect();
            assert_eq!(order(drawer, own), others, "{} sees the others' draws in another order", drawer.name);
        }
        let interleaved = reference.windows(2).filter(|w| (w[0] / 100) != (w[1] / 100)).count();
        eprintln!("the three drawers' draws were interleaved {interleaved} times in the stream");

        // The other board got none of it: a draw there reaches its client, and is all it has.
        let mut other = Client::join(a, &ws_path("elsewhere"), false, "on board elsewhere (A)").await;
        other.draw(900).await;
        elsewhere.wait_draws(&[900]).await;
        elsewhere.assert_exactly(&[900]);

        // One view link on every server.
        let views: Vec<String> = [&a2, &b1, &c1]
            .iter()
            .map(|c| c.welcome.as_ref().and_then(|w| w.view_path.clone()).expect("a viewPath"))
            .collect();
        assert!(views.iter().all(|v| *v == views[0]), "the board's view link differs between servers: {views:?}");
        for (server, addr) in [("A", a), ("C", c)] {
            let mut viewer =
                Client::join(addr, &format!("{}/ws", views[0]), true, &format!("viewer on {server}")).await;
            viewer.wait_draws(&every).await;
            viewer.assert_exactly(&every);
            viewer.close().await;
        }
        for client in [a1, a2, b1, b2, c1, c2, elsewhere, other] {
            client.close().await;
        }
    });
}

#[test]
fn newcomers_on_any_server_get_the_whole_board() {
    let Some((_redis, nodes)) = start_cluster("newcomers_on_any_server_get_the_whole_board", 3, &[]) else { return };
    let addrs: Vec<_> = nodes.iter().map(Node::addr).collect();
    let path = ws_path("late");
    smol::block_on(async {
        let mut a = Client::join(addrs[0], &path, true, "a (v2 on A)").await;
        let mut b = Client::join(addrs[1], &path, false, "b (v1 on B)").await;
        let mut c = Client::join(addrs[2], &path, true, "c (v2 on C)").await;
        a.draw_all(span(1, 10)).await;
        b.draw_all(span(11, 20)).await;
        let first = span(1, 20);
        // Seen by a client of C: the board is whole on C.
        c.wait_draws(&first).await;
        let (floor, seqs) = newcomer(addrs[2], &path).await;
        assert_eq!(floor, "", "nothing was painted into the floor");
        assert_each_once("a v1 newcomer on C", &seqs, &first);
        assert_eq!(seqs, c.seqs(), "a v1 newcomer on C gets the board in the order C's client saw it");
        let (_, strokes) = newcomer_v2(addrs[2], &path).await;
        for (seq, key) in &strokes {
            let (id, n) = split_key(key);
            if *seq <= 10 {
                assert_eq!((id, n), (a.id.as_str(), u64::from(*seq)), "the key of a's stroke {seq}");
            } else {
                assert_eq!(id, b.id, "the key of b's draw {seq}");
            }
        }
        assert_each_once("a v2 newcomer on C", &strokes.iter().map(|s| s.0).collect::<Vec<_>>(), &first);

        // And the other way round: C's draws, seen on A and B, are whole for newcomers there.
        c.draw_all(span(21, 25)).await;
        let every = span(1, 25);
        a.wait_draws(&every).await;
        b.wait_draws(&every).await;
        for (server, addr) in [("A", addrs[0]), ("B", addrs[1])] {
            let (_, seqs) = newcomer(addr, &path).await;
            assert_each_once(&format!("a v1 newcomer on {server}"), &seqs, &every);
            let (_, strokes) = newcomer_v2(addr, &path).await;
            assert_each_once(
                &format!("a v2 newcomer on {server}"),
                &strokes.iter().map(|s| s.0).collect::<Vec<_>>(),
                &every,
            );
        }
        for client in [a, b, c] {
            client.assert_exactly(&every);
            client.close().await;
        }
    });
}

#[test]
fn client_count_spans_servers_and_forgets_a_killed_one() {
    let Some((_redis, mut nodes)) = start_cluster("client_count_spans_servers_and_forgets_a_killed_one", 2, &[]) else {
        return;
    };
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let path = ws_path("count");
    smol::block_on(async {
        let mut a1 = Client::join(a, &path, true, "a1 (v2 on A)").await;
        let mut a2 = Client::join(a, &path, false, "a2 (v1 on A)").await;
        let mut a3 = Client::join(a, &path, false, "a3 (v1 on A)").await;
        let mut b1 = Client::join(b, &path, true, "b1 (v2 on B)").await;
        for client in [&mut a1, &mut a2, &mut a3, &mut b1] {
            client.wait_count(4, STEP).await;
        }
        // Another board's clients do not count.
        let mut other = Client::join(b, &ws_path("count-other"), false, "on count-other (B)").await;
        other.wait_count(1, STEP).await;
        // A client that leaves is subtracted everywhere.
        a3.close().await;
        for client in [&mut a1, &mut a2, &mut b1] {
            client.wait_count(3, STEP).await;
        }
        nodes[0].wait_metric("smolcanvas_canvas_clients", 2, STEP).await;
        nodes[1].wait_metric("smolcanvas_canvas_clients", 2, STEP).await;

        // A dies without a word: its clients drop out of the count within ~3 s.
        nodes[0].process.kill();
        let killed = Instant::now();
        a1.wait_end(STEP).await;
        a2.wait_end(STEP).await;
        b1.wait_count(1, STEP).await;
        eprintln!("B's client saw the count drop to 1 {:?} after A was killed", killed.elapsed());
        assert!(killed.elapsed() < Duration::from_secs(6), "the count took {:?} to forget A", killed.elapsed());
        assert_eq!(other.peer.count(), Some(1), "count-other's count never included board count's clients");
        b1.close().await;
        other.close().await;
    });
}

#[test]
fn undo_and_redo_follow_their_author_across_servers() {
    let Some((_redis, nodes)) = start_cluster("undo_and_redo_follow_their_author_across_servers", 2, &[]) else {
        return;
    };
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let path = ws_path("undo");
    const SECRET: &str = "cluster-undo-author-0001";
    smol::block_on(async {
        let mut wa = Client::join(a, &path, true, "wa (v2 on A)").await;
        let mut wb = Client::join(b, &path, true, "wb (v2 on B)").await;
        let mut v1b = Client::join(b, &path, false, "v1b (v1 on B)").await;

        // The author draws a two-segment stroke on A, and someone else a stroke after it.
        let mut author = Client::join(a, &path, true, "author on A").await;
        author.peer.send(hello(SECRET)).await;
        let stroke = [segment("#ff0000", (10, 10), (60, 10), 4), segment("#ff0000", (60, 10), (60, 60), 4)];
        for part in &stroke {
            author.peer.send(with_stroke(part, 7)).await;
        }
        let key = format!("{}.7", author.id);
        for client in [&mut wa, &mut wb] {
            for part in &stroke {
                assert_eq!(client.peer.next().await, v2_form(part, &key), "{}: the author's stroke", client.name);
            }
        }
        for part in &stroke {
            assert_eq!(v1b.peer.next().await, *part, "v1b: the author's stroke");
        }
        wb.draw(500).await;
        wa.wait_draws(&[500]).await;
        author.close().await;

        // Back on B with the same secret: undo takes that stroke away everywhere.
        let mut again = Client::join(b, &path, true, "the author again, on B").await;
        again.peer.send(hello(SECRET)).await;
        again.peer.send(UNDO).await;
        for client in [&mut again, &mut wa, &mut wb] {
            client.wait_undo(&key, STEP).await;
            assert_eq!(client.undos, vec![key.clone()], "{}: one undo, of the author's stroke", client.name);
        }
        // v1 clients are synced again instead: the stroke is gone from their picture.
        let syncs = v1b.syncs;
        v1b.wait_syncs(syncs + 1, STEP).await;
        v1b.wait_draws(&[500]).await;
        v1b.assert_exactly(&[500]);

        // Redo on B brings it back whole, on A too.
        again.peer.send(REDO).await;
        let redo: serde_json::Value =
            serde_json::from_str(&redo_message(&key, &[&stroke[0], &stroke[1]])).expect("a redo message");
        for client in [&mut again, &mut wa, &mut wb] {
            let within = client.pump_until(STEP, "the redo", |c| !c.redos.is_empty()).await;
            assert!(within, "{}: no redo within {STEP:?}", client.name);
            assert_eq!(client.redos[0], redo, "{}: the redo of the author's stroke", client.name);
        }
        // A newcomer on A gets the stroke back with its key.
        let (_, strokes) = newcomer_v2(a, &path).await;
        let keys: Vec<&str> = strokes.iter().map(|(_, k)| k.as_str()).collect();
        assert!(keys.iter().filter(|k| **k == key).count() == 2, "a newcomer on A after the redo: {strokes:?}");
        for client in [again, wa, wb, v1b] {
            client.close().await;
        }
    });
}

#[test]
fn round_robin_behind_nginx_spreads_one_board_over_two_servers() {
    round_robin_behind_nginx("round_robin_behind_nginx_spreads_one_board_over_two_servers", 2);
}

#[test]
fn round_robin_behind_nginx_spreads_one_board_over_three_servers() {
    round_robin_behind_nginx("round_robin_behind_nginx_spreads_one_board_over_three_servers", 3);
}

/// `servers` servers behind nginx's plain round robin: two clients of one board land on each,
/// all of them see every draw, and each server answers one `board.png`, all alike.
fn round_robin_behind_nginx(name: &str, servers: usize) {
    let test = format!("tests/cluster.rs {name}");
    let Some(nginx_bin) = nginx_or_skip(&test) else { return };
    let Some((_redis, nodes)) = start_cluster(name, servers, &[]) else {
        return;
    };
    let addrs: Vec<_> = nodes.iter().map(|node| node.addr()).collect();
    let mut nginx = round_robin(&nginx_bin, &addrs);
    let proxy = nginx.addr;
    let path = ws_path("rr");
    let clients_n = 2 * servers as u32;
    smol::block_on(async {
        let mut clients = Vec::new();
        for i in 0..clients_n {
            clients.push(Client::join(proxy, &path, i % 2 == 0, &format!("client {i} (through nginx)")).await);
        }
        // Round robin: two on each server.
        for node in &nodes {
            node.wait_metric("smolcanvas_canvas_clients", 2, STEP).await;
        }
        for client in &mut clients {
            client.wait_count(u64::from(clients_n), STEP).await;
        }
        for (i, client) in clients.iter_mut().enumerate() {
            client.draw(i as u32 + 1).await;
        }
        for client in &mut clients {
            client.wait_draws(&span(1, clients_n)).await;
            client.assert_exactly(&span(1, clients_n));
        }
        // One board.png request per server: the same picture from each.
        let first = png_via(proxy, "/b/rr/board.png").await;
        for _ in 1..servers {
            let other = png_via(proxy, "/b/rr/board.png").await;
            assert_eq!(first, other, "board.png differs between the servers");
        }
        for client in clients {
            client.close().await;
        }
    });
    // nginx logs a socket when it closes: two went to each server.
    let start = Instant::now();
    let by = loop {
        let by = answered_by(&nginx, "GET /b/rr/ws");
        if by.values().sum::<usize>() >= clients_n as usize || start.elapsed() > STEP {
            break by;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let want: std::collections::BTreeMap<String, usize> = nodes.iter().map(|n| (n.addr().to_string(), 2)).collect();
    assert_eq!(by, want, "nginx's log: which server took each socket");
    let png = answered_by(&nginx, "GET /b/rr/board.png");
    assert_eq!(png.len(), servers, "the board.png requests went to every server: {png:?}");
    nginx.stop();
}

#[test]
fn a_killed_servers_clients_find_the_board_whole_on_another() {
    let Some((_redis, mut nodes)) = start_cluster("a_killed_servers_clients_find_the_board_whole_on_another", 2, &[])
    else {
        return;
    };
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let path = ws_path("crash");
    smol::block_on(async {
        let mut a1 = Client::join(a, &path, false, "a1 (v1 on A)").await;
        let mut a2 = Client::join(a, &path, true, "a2 (v2 on A)").await;
        let mut b1 = Client::join(b, &path, true, "b1 (v2 on B)").await;
        // Draws nothing: gets every draw in the stream's order.
        let mut b2 = Client::join(b, &path, false, "b2 (v1 on B)").await;
        a1.draw_all(span(1, 20)).await;
        a2.draw_all(span(21, 40)).await;
        b1.draw_all(span(41, 50)).await;
        let first = span(1, 50);
        // Seen on B: acknowledged by the cluster, not only by A.
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws(&first).await;
        }
        let a2_id = a2.id.clone();

        // A is killed in the middle of a stream of draws from a1.
        let burst = span(101, 300);
        let node_a = &mut nodes[0];
        let (sent, ()) = future::zip(a1.draw_paced_until_gone(burst.clone(), Duration::from_millis(2)), async {
            b2.wait_some(&burst, 20).await;
            node_a.process.kill();
        })
        .await;
        a1.wait_end(STEP).await;
        a2.wait_end(STEP).await;
        let seen_on_b: Vec<u32> = b2.seqs().into_iter().filter(|s| burst.contains(s)).collect();
        eprintln!(
            "a1 sent {} draws of the burst; B's client had seen {} when A was killed",
            sent.len(),
            seen_on_b.len()
        );

        // They reconnect, to B.
        let mut a1 = Client::join(b, &path, false, "a1 again (v1 on B)").await;
        let mut a2 = Client::join(b, &path, true, "a2 again (v2 on B)").await;
        // A last draw: whatever a client got before it is all there is.
        b1.draw(999).await;
        b2.wait_draws(&[999]).await;
        let board = b2.seqs();
        let acknowledged = all_of(&[&first, &seen_on_b, &[999]]);
        assert!(
            board.iter().all(|s| first.contains(s) || sent.contains(s) || *s == 999),
            "draws nobody sent on the board: {}",
            ranges(&board)
        );
        assert!(
            acknowledged.iter().all(|s| board.contains(s)),
            "draws B's clients had seen are lost: board {}, seen {}",
            ranges(&board),
            ranges(&acknowledged)
        );
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws(&board).await;
            client.assert_exactly(&board);
            client.wait_count(4, STEP).await;
        }
        let (_, strokes) = newcomer_v2(b, &path).await;
        let seqs: Vec<u32> = strokes.iter().map(|s| s.0).collect();
        assert_eq!(ranges(&seqs), ranges(&board), "a newcomer on B gets the board as B's clients see it");
        for (seq, key) in &strokes {
            if (21..=40).contains(seq) {
                assert_eq!(*key, format!("{a2_id}.{seq}"), "a2's strokes keep their keys");
            }
        }
        for client in [a1, a2, b1, b2] {
            client.close().await;
        }
    });
}

#[test]
fn a_redis_restart_keeps_clients_and_shares_the_outage_draws_once() {
    let test = "a_redis_restart_keeps_clients_and_shares_the_outage_draws_once";
    let Some((mut redis, nodes)) = start_cluster(test, 2, &[]) else { return };
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let path = ws_path("outage");
    smol::block_on(async {
        for node in &nodes {
            node.wait_metric("smolcanvas_redis_up", 1, STEP).await;
            node.wait_healthy(STEP).await;
        }
        let mut a1 = Client::join(a, &path, true, "a1 (v2 on A)").await;
        let mut a2 = Client::join(a, &path, false, "a2 (v1 on A)").await;
        let mut b1 = Client::join(b, &path, true, "b1 (v2 on B)").await;
        let mut b2 = Client::join(b, &path, false, "b2 (v1 on B)").await;
        a1.draw_all(span(1, 5)).await;
        b2.draw_all(span(6, 10)).await;
        let before = span(1, 10);
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws(&before).await;
        }

        redis.kill();
        let killed = Instant::now();
        a1.wait_notice("not_shared", FAULT).await;
        b1.wait_notice("not_shared", FAULT).await;
        eprintln!("not_shared reached both v2 clients {:?} after Redis was killed", killed.elapsed());
        for node in &nodes {
            let body = node.wait_degraded(STEP).await;
            eprintln!("/healthz of {} during the outage: {body}", node.name);
            node.wait_metric("smolcanvas_redis_up", 0, STEP).await;
            assert!(node.metric("smolcanvas_redis_errors_total").await >= 1, "{}: the outage is counted", node.name);
        }

        // Both sides go on drawing, each among its own clients, at once.
        let (on_a, on_b) = (all_of(&[&span(101, 110), &span(111, 115)]), span(201, 210));
        a1.draw_all(span(101, 110)).await;
        a2.draw_all(span(111, 115)).await;
        b1.draw_all(span(201, 210)).await;
        let a_side = all_of(&[&before, &on_a]);
        let b_side = all_of(&[&before, &on_b]);
        for client in [&mut a1, &mut a2] {
            client.wait_draws(&a_side).await;
        }
        for client in [&mut b1, &mut b2] {
            client.wait_draws(&b_side).await;
        }
        assert!(!a1.seqs().iter().any(|s| on_b.contains(s)), "B's outage draws crossed to A without Redis");

        let syncs: Vec<usize> = [&a1, &a2, &b1, &b2].iter().map(|c| c.syncs).collect();
        redis.restart();
        let restarted = Instant::now();
        a1.wait_notice("shared", FAULT).await;
        b1.wait_notice("shared", FAULT).await;
        eprintln!("shared reached both v2 clients {:?} after Redis restarted", restarted.elapsed());
        // Then every client is synced again, once its server has read back what it held: its
        // picture follows the stream's order from then on.
        let every = all_of(&[&before, &on_a, &on_b]);
        for (client, syncs) in [&mut a1, &mut a2, &mut b1, &mut b2].into_iter().zip(syncs) {
            client.wait_syncs(syncs + 1, STEP).await;
            client.wait_draws(&every).await;
        }
        // A last draw, after everything: whatever a client got before it is all it gets.
        b2.draw(999).await;
        let every = all_of(&[&every, &[999]]);
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws(&every).await;
            client.assert_exactly(&every);
            eprintln!("{}: {} syncs, notices {:?}", client.name, client.syncs, client.notices);
        }
        assert_same_order(&[&a1, &a2, &b1, &b2]);
        for node in &nodes {
            node.wait_healthy(STEP).await;
            node.wait_metric("smolcanvas_redis_up", 1, STEP).await;
        }
        let (_, seqs) = newcomer(b, &path).await;
        assert_each_once("a newcomer on B", &seqs, &every);
        assert_eq!(seqs, a1.seqs(), "a newcomer on B gets the board in the stream's order");
        let (_, strokes) = newcomer_v2(a, &path).await;
        assert_each_once("a v2 newcomer on A", &strokes.iter().map(|s| s.0).collect::<Vec<_>>(), &every);
        // In Redis: one stream entry per draw, no more (nothing is trimmed within 60 s).
        let xlen = redis.int(&["XLEN", "smolcanvas:board:outage:ops"]);
        assert_eq!(xlen, every.len() as i64, "entries in the board's stream: one per draw, each appended once");
        for client in [a1, a2, b1, b2] {
            client.close().await;
        }
    });
}

#[test]
fn redis_killed_mid_stream_loses_and_repeats_nothing() {
    let Some((mut redis, nodes)) = start_cluster("redis_killed_mid_stream_loses_and_repeats_nothing", 2, &[]) else {
        return;
    };
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let path = ws_path("midstream");
    smol::block_on(async {
        let mut a1 = Client::join(a, &path, true, "a1 (v2 on A)").await;
        let mut a2 = Client::join(a, &path, false, "a2 (v1 on A)").await;
        let mut b1 = Client::join(b, &path, false, "b1 (v1 on B)").await;
        let mut b2 = Client::join(b, &path, true, "b2 (v2 on B)").await;
        // Both servers are appending when Redis dies: some of their appends are answered, some
        // are lost with their answers, some never reach it.
        let (from_a, from_b) = (span(1, 150), span(1001, 1150));
        let gap = Duration::from_millis(3);
        let redis = &mut redis;
        future::zip(future::zip(a1.draw_paced(from_a.clone(), gap), b1.draw_paced(from_b.clone(), gap)), async {
            a2.wait_some(&from_a, 30).await;
            redis.kill();
        })
        .await;
        a1.wait_notice("not_shared", FAULT).await;
        b2.wait_notice("not_shared", FAULT).await;
        let syncs: Vec<usize> = [&a1, &a2, &b1, &b2].iter().map(|c| c.syncs).collect();
        redis.restart();
        a1.wait_notice("shared", FAULT).await;
        b2.wait_notice("shared", FAULT).await;
        let every = all_of(&[&from_a, &from_b]);
        for (client, syncs) in [&mut a1, &mut a2, &mut b1, &mut b2].into_iter().zip(syncs) {
            client.wait_syncs(syncs + 1, STEP).await;
            client.wait_draws(&every).await;
        }
        b2.draw(9999).await;
        let every = all_of(&[&every, &[9999]]);
        for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
            client.wait_draws(&every).await;
            client.assert_exactly(&every);
        }
        assert_same_order(&[&a1, &a2, &b1, &b2]);
        let (_, seqs) = newcomer(a, &path).await;
        assert_eq!(seqs, a2.seqs(), "a newcomer on A gets the board as A's clients see it");
        let xlen = redis.int(&["XLEN", "smolcanvas:board:midstream:ops"]);
        assert_eq!(xlen, every.len() as i64, "entries in the board's stream: one per draw, each appended once");
        for client in [a1, a2, b1, b2] {
            client.close().await;
        }
    });
}

#[test]
fn compaction_writes_a_snapshot_that_a_new_server_loads_whole() {
    let test = "compaction_writes_a_snapshot_that_a_new_server_loads_whole";
    let window = ["--undo-strokes", "20"];
    let Some((redis, mut nodes)) = start_cluster(test, 2, &window) else { return };
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let path = ws_path("compact");
    let prefix = "smolcanvas:board:compact";
    smol::block_on(async {
        let mut a1 = Client::join(a, &path, true, "a1 (v2 on A)").await;
        let mut b1 = Client::join(b, &path, false, "b1 (v1 on B)").await;
        // Draws nothing: gets every draw in the stream's order.
        let mut watch = Client::join(b, &path, false, "watch (v1 on B)").await;
        // Four times the undo window, in strokes that show (long, wide, two colours).
        let mut sent = Vec::new();
        for seq in 1..=80u32 {
            let (color, y) = (if seq % 2 == 0 { "#d02020" } else { "#2020d0" }, seq * 8);
            let part = segment(color, (20 + seq * 3, y), (600 + seq * 5, y + 40), 6);
            if seq <= 50 {
                a1.peer.send(with_stroke(&part, seq)).await;
            } else {
                b1.peer.send(part.clone()).await;
            }
            sent.push(part);
        }
        // Both see every stroke: the last one from each side is enough, as order is kept.
        let last_of_a = sent[49].clone();
        let within = b1.pump_until(STEP, "a1's last stroke", |c| c.received.contains(&draw_seq(&last_of_a))).await;
        assert!(within, "b1 did not get a1's last stroke");
        let last_of_b = sent[79].clone();
        let within = a1.pump_until(STEP, "b1's last stroke", |c| c.received.contains(&draw_seq(&last_of_b))).await;
        assert!(within, "a1 did not get b1's last stroke");
        let all: Vec<u32> = sent.iter().map(|d| draw_seq(d)).collect();
        watch.wait_draws(&all).await;
        watch.assert_exactly(&all);

        // The snapshot: written once strokes left the window, with `upto`, `log` and `floor`.
        let snap = format!("{prefix}:snap");
        let start = Instant::now();
        while redis.int(&["EXISTS", &snap]) == 0 {
            assert!(start.elapsed() < FAULT, "no {snap} after {FAULT:?}");
            smol::Timer::after(Duration::from_millis(50)).await;
        }
        eprintln!("{snap} appeared {:?} after the last draw was seen", start.elapsed());
        let upto = redis.string(&["HGET", &snap, "upto"]).unwrap_or_else(|| panic!("no upto in {snap}"));
        assert_eq!(redis.int(&["HEXISTS", &snap, "log"]), 1, "no log in {snap}");
        assert_eq!(redis.int(&["HEXISTS", &snap, "floor"]), 1, "no floor in {snap}");
        let head = redis.string(&["GET", &format!("{prefix}:head")]).unwrap_or_else(|| panic!("no {prefix}:head"));
        assert!(stream_id(&upto) <= stream_id(&head), "snap upto {upto} is past the head {head}");
        let xlen = redis.int(&["XLEN", &format!("{prefix}:ops")]);
        assert!(xlen <= 80, "the stream holds {xlen} entries for 80 draws");
        eprintln!("snap upto {upto}, head {head}, XLEN {xlen}");
        let snapshots: u64 = nodes[0].metric("smolcanvas_redis_snapshots_total").await
            + nodes[1].metric("smolcanvas_redis_snapshots_total").await;
        assert!(snapshots >= 1, "smolcanvas_redis_snapshots_total is 0 on both servers");

        // A third server with an empty data dir loads the board from Redis.
        nodes.push(Node::start("C", &redis.url(), &window));
        let c = nodes[2].addr();
        // A sync shows the floor as painted so far and every stroke above it: once each server has
        // painted the strokes that left the window (it does so in the background), the newest 20
        // in the stream's order (not the order they were sent in: two servers appended them).
        let live = watch.seqs()[60..].to_vec();
        let mut floors = Vec::new();
        for (server, addr) in [("A", a), ("B", b), ("C", c)] {
            let start = Instant::now();
            let (floor, seqs) = loop {
                let (floor, seqs) = newcomer(addr, &path).await;
                if seqs.len() <= live.len() || start.elapsed() > FAULT {
                    break (floor, seqs);
                }
                smol::Timer::after(Duration::from_millis(200)).await;
            };
            assert_eq!(ranges(&seqs), ranges(&live), "the live strokes on {server}: the newest 20, in order");
            assert!(!floor.is_empty(), "{server}: the oldest strokes are in the floor");
            floors.push((server, Image::from_data_url(&floor)));
        }
        for (server, floor) in &floors[1..] {
            assert_same_pixels(&floors[0].1, floor, &format!("the floor of A and {server}"));
        }
        let png_a = fetch_png(a, "/b/compact/board.png", "compact.png").await;
        let png_b = fetch_png(b, "/b/compact/board.png", "compact.png").await;
        let png_c = fetch_png(c, "/b/compact/board.png", "compact.png").await;
        assert_same_pixels(&png_a, &png_c, "board.png of A and C");
        assert_same_pixels(&png_a, &png_b, "board.png of A and B");

        // C takes part like the others.
        let mut c1 = Client::join(c, &path, true, "c1 (v2 on C)").await;
        c1.draw(700).await;
        a1.wait_draws(&[700]).await;
        b1.wait_draws(&[700]).await;
        for client in [a1, b1, c1, watch] {
            client.close().await;
        }
    });
}

#[test]
fn the_stream_stays_bounded_once_snapshots_trim_it() {
    let test = "the_stream_stays_bounded_once_snapshots_trim_it";
    let Some((redis, mut nodes)) = start_cluster(test, 2, &TRIMMING) else { return };
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let path = ws_path("bounded");
    let (ops, snap) = ("smolcanvas:board:bounded:ops", "smolcanvas:board:bounded:snap");
    smol::block_on(async {
        let mut a1 = Client::join(a, &path, true, "a1 (v2 on A)").await;
        let mut b1 = Client::join(b, &path, false, "b1 (v1 on B)").await;
        let (from_a, from_b) = (strokes(0..BULK), strokes(BULK..2 * BULK));
        // The board's first save compacts (there is no log yet): its first snapshot.
        draw_fast(&mut a1, &from_a[..1]).await;
        let start = Instant::now();
        let first = loop {
            if let Some(upto) = redis.string(&["HGET", snap, "upto"]) {
                break upto;
            }
            assert!(start.elapsed() < FAULT, "no snapshot after {FAULT:?}");
            smol::Timer::after(Duration::from_millis(20)).await;
        };
        let started = Instant::now();
        future::zip(draw_fast(&mut a1, &from_a[1..]), draw_fast(&mut b1, &from_b)).await;
        // Each gets the other's last draw: everything before it was read by both servers.
        for (client, last) in [(&mut a1, draw_seq(&from_b[BULK - 1])), (&mut b1, draw_seq(&from_a[BULK - 1]))] {
            let got =
                client.pump_until(FAULT, "the other drawer's last draw", |c| c.received.last() == Some(&last)).await;
            assert!(got, "{}: the other drawer's last draw did not arrive", client.name);
        }
        let appended = 2 * BULK as u64;
        wait_total(&nodes, "smolcanvas_redis_appends_total", appended).await;
        eprintln!("{appended} draws appended and read by both servers {:?} after the first", started.elapsed());

        // The servers compact their copies as they catch up (painting what left the undo window):
        // the lease holder's snapshots trim the stream. Compaction comes once the log outgrows
        // its compacted form by the store's slack (COMPACT_SLACK, 10 000 units: 5 000 draws), so
        // once they are done the stream holds fewer entries than that.
        let mut seen = StreamWatch { xlen: 0, uptos: vec![first] };
        let start = Instant::now();
        loop {
            seen.look(&redis, ops, snap);
            if seen.xlen <= MOST_LEFT {
                break;
            }
            assert!(start.elapsed() < FAULT, "the stream is still this long after {FAULT:?}: {seen:?}");
            smol::Timer::after(Duration::from_millis(100)).await;
        }
        eprintln!("{:?} after the last draw: {seen:?}", start.elapsed());
        assert!(
            seen.xlen * 2 < appended as i64,
            "the stream holds {} entries of {appended} appended: not trimmed",
            seen.xlen
        );
        let (first, last) = (&seen.uptos[0], &seen.uptos[seen.uptos.len() - 1]);
        assert!(stream_id(last) > stream_id(first), "the snapshot's upto did not advance: {seen:?}");
        let stored = Stored::read(&redis, "bounded");
        let upto = stored.upto.clone().expect("an upto");
        assert_eq!(stored.entries.len() as i64, redis.int(&["XLEN", ops]), "XRANGE and XLEN agree");
        // Trimmed up to the snapshot, keeping what was appended in its last millisecond at most.
        let kept = stored.kept();
        assert!(
            kept.iter().all(|id| stream_id(id).0 + 1 >= stream_id(&upto).0),
            "entries the snapshot ({upto}) holds are left in the stream: {kept:?}"
        );
        let snapshots = nodes[0].metric("smolcanvas_redis_snapshots_total").await
            + nodes[1].metric("smolcanvas_redis_snapshots_total").await;
        assert!(snapshots >= 2, "{snapshots} snapshots stored for {appended} draws");
        eprintln!("snap upto {upto}, {} entries after it, {snapshots} snapshots stored", stored.entries.len());

        // The board's newest strokes, in the stream's order: the snapshot's live strokes, then
        // the entries after it.
        let live = stored.newest(WINDOW);
        assert_eq!(live.len(), WINDOW, "the board's newest strokes");

        // A third server with an empty data dir; a newcomer on each server gets the same board.
        nodes.push(Node::start("C", &redis.url(), &TRIMMING));
        let c = nodes[2].addr();
        let mut floors = Vec::new();
        for (server, addr) in [("A", a), ("B", b), ("C", c)] {
            let (floor, seqs) = newcomer_settled(addr, &path, live.len()).await;
            assert_eq!(ranges(&seqs), ranges(&live), "the live strokes on {server}: the newest {WINDOW}, in order");
            assert!(!floor.is_empty(), "{server}: the older strokes are in the floor");
            floors.push((server, Image::from_data_url(&floor)));
        }
        for (server, floor) in &floors[1..] {
            assert_same_pixels(&floors[0].1, floor, &format!("the floor of A and {server}"));
        }
        let png_a = fetch_png(a, "/b/bounded/board.png", "bounded.png").await;
        for (server, addr) in [("B", b), ("C", c)] {
            let png = fetch_png(addr, "/b/bounded/board.png", "bounded.png").await;
            assert_same_pixels(&png_a, &png, &format!("board.png of A and {server}"));
        }
        eprintln!("the test took {:?}", started.elapsed());
        for client in [a1, b1] {
            assert!(client.duplicates.is_empty(), "{}: {:?}", client.name, client.duplicates);
            client.close().await;
        }
    });
}

/// Draws per drawer in the bulk: together more than twice what one compaction covers.
const BULK: usize = 6000;

/// Entries the stream may hold once the servers are done compacting: what makes a log worth
/// compacting (the store's slack of 10 000 weight units, two per draw), with some room.
const MOST_LEFT: i64 = 5_200;

/// Waits (bounded by [`FAULT`]) until the metric `name` summed over `nodes` is `value`.
async fn wait_total(nodes: &[Node], name: &str, value: u64) {
    let start = Instant::now();
    loop {
        let mut total = 0;
        for node in nodes {
            total += node.metric(name).await;
        }
        if total == value {
            return;
        }
        assert!(start.elapsed() < FAULT, "{name} summed over the servers is {total}, not {value}, after {FAULT:?}");
        smol::Timer::after(Duration::from_millis(50)).await;
    }
}

/// What a test saw of a board's stream and snapshot.
#[derive(Debug)]
struct StreamWatch {
    /// The stream's length the last time.
    xlen: i64,
    /// Each different `upto` seen, in order.
    uptos: Vec<String>,
}

impl StreamWatch {
    fn look(&mut self, redis: &Redis, ops: &str, snap: &str) {
        self.xlen = redis.int(&["XLEN", ops]);
        if let Some(upto) = redis.string(&["HGET", snap, "upto"])
            && self.uptos.last() != Some(&upto)
        {
            self.uptos.push(upto);
        }
    }
}

#[test]
fn a_server_refuses_an_unreachable_redis_and_peer_sync() {
    let Some(bin) = redis_server_or_skip("tests/cluster.rs a_server_refuses_an_unreachable_redis_and_peer_sync") else {
        return;
    };
    let dir = TempDir::new("cluster-refusals");
    let d = dir.path().to_str().expect("a UTF-8 temp path");
    let nowhere = format!("redis://127.0.0.1:{}/", free_port());
    let mut server = Process::spawn(&["--listen", "127.0.0.1:0", "--data-dir", d, "--redis", &nowhere]);
    let status = server.wait_exit();
    assert!(!status.success(), "a server whose Redis does not answer must not run: {status}");
    let log = server.full_log().join("\n");
    assert!(log.contains(&nowhere), "the log names the Redis it could not use: {log}");

    // With a Redis that answers, so that the combination is all there is to refuse.
    let redis = Redis::start(&bin);
    let url = redis.url();
    let mut server = Process::spawn(&["--listen", "127.0.0.1:0", "--data-dir", d, "--redis", &url, "--sync", "peers"]);
    assert_eq!(server.wait_exit().code(), Some(2), "--redis with --sync peers is refused as a usage error");
    let log = server.full_log().join("\n");
    assert!(log.contains("--sync peers"), "the refusal names --sync peers: {log}");
}

/// A board that unloads compacts (its floor changed): that last compaction is the board's
/// snapshot in Redis, up to the stream's newest entry.
#[test]
fn an_unloading_board_stores_its_last_snapshot() {
    let flags = ["--board-unload-secs", "0.3", "--undo-strokes", "2", "--flush-interval", "30"];
    let Some((redis, nodes)) = start_cluster("an_unloading_board_stores_its_last_snapshot", 1, &flags) else {
        return;
    };
    let (head, snap) = ("smolcanvas:board:unload:head", "smolcanvas:board:unload:snap");
    smol::block_on(async {
        let mut drawer = Client::join(nodes[0].addr(), &ws_path("unload"), false, "drawer").await;
        drawer.draw_all(span(1, 10)).await;
        let mut watcher = Client::join(nodes[0].addr(), &ws_path("unload"), false, "watcher").await;
        watcher.wait_draws(&span(1, 10)).await;
        drawer.close().await;
        watcher.close().await;
    });
    // No flush is due for 30 s: only the unload writes the board, and with it the snapshot.
    let newest = redis.string(&["GET", head]).expect("the stream has a head");
    let start = Instant::now();
    while redis.string(&["HGET", snap, "upto"]).as_deref() != Some(newest.as_str()) {
        assert!(start.elapsed() < STEP, "no snapshot up to {newest} within {STEP:?} of the unload");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = redis.string(&["HGET", snap, "log"]).expect("the snapshot has its log");
    assert_eq!(log.lines().filter(|line| line.contains("\"op\":\"restore\"")).count(), 2, "the 2 live strokes: {log}");
}
