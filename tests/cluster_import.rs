//! A single server's data dir used with `--redis` for the first time: its boards move into
//! Redis, whole, and every server of the cluster serves them; a board Redis already has under
//! the same name is kept aside, not overwritten (README, "Shared boards through Redis").
//!
//! It needs `redis-server` (Debian's `redis-server`): without it the test says on stderr that it
//! did not run and passes, unless `SMOLCANVAS_REQUIRE_REDIS` is set (`.ci/run` sets it).

#[path = "support/blackbox.rs"]
mod support;

#[path = "support/redis.rs"]
mod redis;

#[path = "support/cluster.rs"]
mod cluster;

use cluster::*;
use redis::*;
use support::*;

#[test]
fn a_single_servers_boards_move_into_redis_and_every_server_serves_them() {
    let Some(bin) = redis_server_or_skip("tests/cluster_import.rs") else { return };
    let redis = Redis::start(&bin);
    let url = redis.url();
    let alone = TempDir::new("import-alone");
    // The same board name drawn on in Redis first: the single server's board of that name is kept aside.
    let mut taken = Node::start("taken", &url, &[]);
    smol::block_on(async {
        let mut client = Client::join(taken.addr(), &ws_path("both"), false, "drawer in Redis").await;
        client.draw(900).await;
        let mut check = Client::join(taken.addr(), &ws_path("both"), false, "checker in Redis").await;
        check.wait_draws(&[900]).await;
    });
    taken.process.stop();

    // One server, no Redis: boards `moved` and `both`.
    let mut single = Process::start_with(alone.path(), &[]);
    smol::block_on(async {
        for (board, seqs) in [("moved", span(1, 5)), ("both", span(11, 12))] {
            let mut drawer = Client::join(single.addr, &ws_path(board), false, "drawer").await;
            drawer.draw_all(seqs.clone()).await;
            let mut watcher = Client::join(single.addr, &ws_path(board), false, "watcher").await;
            watcher.wait_draws(&seqs).await;
        }
    });
    single.stop();

    // The same data dir with --redis, and a second server with an empty one.
    let mut first = Process::start_with(alone.path(), &["--redis", &url]);
    let second = Node::start("B", &url, &[]);
    smol::block_on(async {
        for addr in [first.addr, second.addr()] {
            let (_, seqs) = newcomer(addr, &ws_path("moved")).await;
            assert_each_once("board moved, after the move", &seqs, &span(1, 5));
            let (_, seqs) = newcomer(addr, &ws_path("both")).await;
            assert_each_once("board both: Redis's own", &seqs, &[900]);
        }
    });
    assert!(alone.path().join("SHARED-THROUGH-REDIS.txt").is_file(), "the data dir says it is a cache now");
    let kept = alone.path().join("not-moved-into-redis/both/log.jsonl");
    let log = std::fs::read_to_string(&kept).unwrap_or_else(|e| panic!("{}: {e}", kept.display()));
    assert!(log.contains("\"startY\":11") && log.contains("\"startY\":12"), "both of its draws: {log}");
    let lines = first.log_so_far().join("\n");
    assert!(lines.contains("board moved moved into Redis"), "the log says what moved:\n{lines}");
    assert!(lines.contains("this data dir's board was moved to"), "and what was kept aside:\n{lines}");
    first.stop();
}
