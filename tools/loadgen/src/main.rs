//! loadgen: the load tool for a smolcanvas server, or any server speaking the canvas
//! protocol (`docs/PROTOCOL.md`) on `/ws`. A client of its own, sharing no code with the
//! server. From the repository root, point it at your own box (`--help` lists the flags):
//!
//! ```text
//! cargo build --release -p loadgen
//! L=target/release/loadgen
//! $L idle    --url ws://127.0.0.1:8080/ws --conns 1000 --server-pid PID
//! $L fanout  --url ws://127.0.0.1:8080/ws --clients 100 --senders 10 --rate 50 --secs 10 --server-pid PID
//! $L join    --url ws://127.0.0.1:8080/ws --clients 1000 --rounds 20
//! $L latency --url ws://127.0.0.1:8080/ws --draws 10000 --rate 1000
//! $L soak    --url ws://127.0.0.1:8080/ws --minutes 5 --clients 200 --churn-per-sec 20 --server-pid PID
//! ```
//!
//! What it measures, and how:
//!
//! * **Ramp** (idle, fanout, join): connections open in batches of `--batch` (0 = all at
//!   once, at most 256 handshakes in flight). After each batch the tool waits, at most
//!   `--settle-secs`, until every open client has seen a `clientCount` equal to the number
//!   of open connections. The server broadcasts the count on every join (possibly
//!   coalesced within 50 ms), so the ramp goes as fast as the server drains those
//!   broadcasts instead of overflowing its per-client queues.
//! * **idle** holds the connections. With `--server-pid`, the server's `VmRSS`
//!   (`/proc/PID/status`, that process only) is read before the first connection and at
//!   the end of the hold; KiB per connection = the difference / connections still held.
//! * **fanout** and **latency**: senders write draws on a schedule staggered evenly over
//!   the send interval. A draw carries its sender index in `startX` and its sequence
//!   number in `startY` (seq mod 10000) and `endX` (seq div 10000). The send time is
//!   stored in process (monotonic clock) right before the frame is written, and each
//!   receiver looks it up once it has parsed the relayed draw, so relay latency covers
//!   the server, both loopback sockets and this tool's own scheduling. Latencies go into
//!   a histogram with 1 µs buckets below 1 s. After the last scheduled send the tool
//!   waits at most `--drain-secs` for missing deliveries. Server CPU is utime + stime
//!   from `/proc/PID/stat`, from 200 ms before the first draw until the last expected
//!   delivery (or the drain deadline), in clock ticks of `getconf CLK_TCK` (100 when
//!   that fails).
//! * **Several servers** (fanout and latency): `--send-url URL` connects the senders
//!   there and the receivers to `--url`, which may be a comma-separated list of URLs
//!   (receivers spread over them round-robin in join order; without `--send-url` every
//!   client is, senders included). Point the URLs at servers sharing one board (cluster
//!   mode, `--redis`) to time relay from one server to another:
//!   `$L latency --send-url ws://A/ws --url ws://B/ws --server-pid PA,PB,PREDIS`. The
//!   expected deliveries are as on one server (every client but the sender gets each
//!   draw, senders included), and with more than one URL the tool also prints, per URL
//!   (`target0` = `--send-url` if given, then `--url`'s in order), its clients, senders,
//!   deliveries and relay latency. `--server-pid` then takes a comma-separated list:
//!   server CPU is summed over those processes (each read from `/proc/PID/stat` at the
//!   same two instants) and `server_cpu_secs_each` gives them one by one. The ramp waits
//!   for every client to see a `clientCount` equal to all the connections the tool holds,
//!   which a cluster's count (summed over servers) reaches.
//! * **join**: N-1 peers answer `canvasRequest` with a `canvasState` of about
//!   `--png-kib` KiB: `data:image/png;base64,` followed by base64 text (not a decodable
//!   PNG) whose first 12 characters tag the run and the answer. A newcomer then connects
//!   `--rounds` times, one after the other, and times TCP connect (and upgrade) to its
//!   `canvasState`. The number tells a fresh peer snapshot from the server's fallback
//!   (`"data":""`, or a snapshot it stored earlier); no `canvasState` within 10 s counts
//!   as none.
//! * **soak**: N clients connect (all at once, at most 256 handshakes in flight) and
//!   the run starts once each has its `canvasState`. For `--minutes`, a random client
//!   leaves every 1/C s (C a second, spread over the second rather than in one burst), 9
//!   in 20 with a close handshake (1000), 9 in 20 by dropping the TCP connection, 2 in 20
//!   by writing half of a masked text frame and then dropping it, and a new client
//!   replaces it at once (the tool also tops up to N should the server close some). Each
//!   newcomer waits for its `canvasState`: none within 10 s of the upgrade counts as a
//!   sync timeout, one that comes later as late, a client churned away before either as
//!   abandoned. K draw schedules of `--rate` draws/s (staggered, encoded as in fanout)
//!   are each held by one synced client; when it leaves, a random synced client takes the
//!   schedule over (at once, or at the next replacement if the server closed the drawer)
//!   and carries on with its sequence numbers, skipping the draws that fell due
//!   meanwhile. A receiver counts a draw as a delivery (and its relay latency) unless it
//!   was written before the receiver started connecting (the server's replay of its
//!   board) or is one it already had (repeated). Draws of a schedule skipped when a later
//!   one comes first are gaps; those that come afterwards are late (the server orders
//!   draws per connection, and a schedule changes connections at a takeover), the others
//!   missed. With `--server-pid`, every `--sample-secs` a `# t=` line gives the server's
//!   VmRSS, its open fds (entries of `/proc/PID/fd`), the clients the tool holds, the
//!   last `clientCount` seen, relay p99 since the previous line and the CPU share of the
//!   server and of this tool (which shows whether the tool kept up). The summary gives
//!   RSS and fds before the ramp, at the start, middle (the sample nearest half-time) and
//!   end, their maximum, the RSS trend (least squares, KiB per minute, over the whole run
//!   and over its second half), and both again once the tool has drained for 2 s, closed
//!   every client and waited up to 3 s for the server's fd count to come back down; then
//!   syncs, closes by kind, close codes the server sent (answers to the tool's close
//!   handshakes, and closes it started), errors, deliveries and latency. `--max-secs`
//!   defaults to M*60+60.
//!
//! Every client answers `canvasRequest`, ignores what it does not measure and counts how
//! the server closed it. The load runs on one thread (a smol `LocalExecutor`, TCP_NODELAY,
//! 8 KiB tungstenite read buffers); a second thread only sleeps and ends the process
//! with exit code 3 after `--max-secs`. Pin the server and this tool to different cores
//! (`taskset`) for steadier figures. For a server with an access key, add `?key=KEY` to
//! the URL. Output: `key=value` lines; `#` lines are comments.

mod board;
mod client;
mod fdlimit;
mod histogram;
mod idle;
mod join;
mod load;
mod opts;
mod procfs;
mod relay;
mod snapshot;
mod soak;

use std::net::SocketAddr;
use std::time::Duration;
use std::{process, thread};

use smol::LocalExecutor;

use load::Target;
use opts::{Mode, Opts};

fn main() {
    let opts = match Opts::parse(std::env::args().skip(1).collect()) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{}", opts::HELP);
            return;
        }
        Err(err) => {
            eprintln!("loadgen: {err} (see --help)");
            process::exit(2);
        }
    };
    let targets: Vec<Target> = opts
        .all_urls()
        .map(|url| opts::resolve(url).map(|addr| Target { url: url.clone(), addr }))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|err| {
            eprintln!("loadgen: {err}");
            process::exit(2);
        });
    start_watchdog(opts.max_secs);
    match &opts.send_url {
        Some(send_url) => println!("# loadgen {} send {send_url} receive {}", opts.mode.name(), opts.url),
        None => println!("# loadgen {} {}", opts.mode.name(), opts.url),
    }
    fdlimit::raise(opts.connections());
    let ex = LocalExecutor::new();
    smol::block_on(ex.run(run(&ex, &opts, targets)));
    // Sockets are closed by the kernel at exit; no need to tear them down one by one.
    process::exit(0);
}

async fn run(ex: &LocalExecutor<'_>, opts: &Opts, targets: Vec<Target>) {
    // The modes other than fanout and latency have one target, that of --url.
    let addr: SocketAddr = targets[0].addr;
    match opts.mode {
        Mode::Idle => idle::run(ex, opts, addr).await,
        Mode::Fanout => relay::fanout(ex, opts, targets).await,
        Mode::Join => join::run(ex, opts, addr).await,
        Mode::Latency => relay::latency(ex, opts, targets).await,
        Mode::Soak => soak::run(ex, opts, addr).await,
        Mode::Board => board::run(ex, opts, addr).await,
    }
}

fn start_watchdog(max_secs: f64) {
    thread::spawn(move || {
        thread::sleep(Duration::from_secs_f64(max_secs));
        println!("# watchdog: --max-secs {max_secs} exceeded, exiting");
        process::exit(3);
    });
}
