//! `fanout` and `latency`: some clients send draws on a schedule, every other client
//! times their relay.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::{LocalExecutor, Timer, channel};

use crate::client::{Sender, ramp, wait_until};
use crate::load::{Load, Target};
use crate::opts::{DEFAULT_RATE_LIMIT, Opts};
use crate::procfs::{self, CpuSample, CpuSpent};
use crate::snapshot::TINY_SNAPSHOT;

/// Lets the last clientCount broadcasts and canvas syncs of the ramp pass before sending.
const QUIET_BEFORE_SENDING: Duration = Duration::from_millis(500);
/// CPU sampling starts this long before the first draw.
const CPU_LEAD: Duration = Duration::from_millis(200);

/// What a relay run saw.
struct Relay {
    load: Rc<Load>,
    /// Slot -> sender index.
    sender_at: BTreeMap<usize, usize>,
    pids: Vec<u32>,
    expected: u64,
    delivered: u64,
    cpu: CpuSpent,
}

pub async fn fanout(ex: &LocalExecutor<'_>, opts: &Opts, targets: Vec<Target>) {
    let relay = relay(ex, opts, targets).await;
    println!("clients={} senders={} rate={} secs={}", opts.clients, opts.senders, opts.rate, opts.secs);
    relay.print();
}

pub async fn latency(ex: &LocalExecutor<'_>, opts: &Opts, targets: Vec<Target>) {
    let relay = relay(ex, opts, targets).await;
    println!("draws={} rate={}", opts.draws, opts.rate);
    relay.print();
    let latencies = relay.load.latencies.borrow();
    let between = match &opts.send_url {
        Some(send_url) => format!("from a client of {send_url} to one of {}", opts.url),
        None => "between two local clients".to_string(),
    };
    println!(
        "# draw relay latency {between} over {} draws: median {:.3} ms, p99 {:.3} ms",
        latencies.count(),
        latencies.quantile_ms(0.5),
        latencies.quantile_ms(0.99)
    );
}

/// Which of `targets` (`--send-url` first if given, then the URLs of `--url`) each slot
/// connects to: senders to `--send-url` and receivers round-robin over `--url`, or, without
/// `--send-url`, every client round-robin over `--url`.
fn slot_targets(n: usize, sender_at: &BTreeMap<usize, usize>, opts: &Opts) -> Vec<usize> {
    let urls = opts.receive_urls.len();
    if opts.send_url.is_none() {
        return (0..n).map(|slot| slot % urls).collect();
    }
    let mut receivers = 0;
    (0..n)
        .map(|slot| {
            if sender_at.contains_key(&slot) {
                return 0;
            }
            receivers += 1;
            1 + (receivers - 1) % urls
        })
        .collect()
}

/// Connects the clients, lets the senders (spread over the join order) send their draws
/// on an evenly staggered schedule, and waits, bounded, for the deliveries.
async fn relay(ex: &LocalExecutor<'_>, opts: &Opts, targets: Vec<Target>) -> Relay {
    if opts.rate > DEFAULT_RATE_LIMIT {
        println!("# warning: --rate is above the server's default rate limit of {DEFAULT_RATE_LIMIT} messages/s");
    }
    let (n, k) = (opts.clients, opts.senders);
    let per_sender = opts.draws_per_sender();
    let interval_ns = (1e9 / opts.rate) as u64;
    let sender_at: BTreeMap<usize, usize> = (0..k).map(|index| (index * n / k, index)).collect();
    let load = Load::with_targets(targets, slot_targets(n, &sender_at, opts), k, per_sender, TINY_SNAPSHOT);
    let (start_tx, start_rx) = channel::unbounded();
    let ramp = ramp(ex, &load, opts.batch, opts.settle_secs, |slot| {
        let index = *sender_at.get(&slot)?;
        let phase_ns = interval_ns * index as u64 / k as u64;
        Some(Sender::new(index, per_sender, interval_ns, phase_ns, start_rx.clone()))
    })
    .await;
    ramp.print(&load);
    Timer::after(QUIET_BEFORE_SENDING).await;

    let before = CpuSample::take_all(&opts.server_pids);
    let start = Instant::now() + CPU_LEAD;
    for _ in 0..k {
        let _ = start_tx.try_send(start);
    }
    let expected = (k * per_sender * (n - 1)) as u64;
    Timer::at(start + Duration::from_nanos(interval_ns * per_sender as u64)).await;
    wait_until(Duration::from_secs_f64(opts.drain_secs), || load.delivered.get() >= expected).await;
    let cpu = CpuSample::take_all(&opts.server_pids).since(&before);
    let delivered = load.delivered.get();
    Relay { load, sender_at, pids: opts.server_pids.clone(), expected, delivered, cpu }
}

impl Relay {
    fn print(&self) {
        let delivered = self.delivered;
        println!("sent={}", self.load.sent.get());
        println!("expected_deliveries={}", self.expected);
        println!("delivered={delivered}");
        println!("lost={}", self.expected.saturating_sub(delivered));
        println!("unmatched_draws={}", self.load.unmatched.get());
        self.load.latencies.borrow().print("latency", true);
        println!("max_send_lag_ms={:.3}", self.load.max_send_lag.get().as_secs_f64() * 1000.0);
        println!("window_secs={:.2}", self.cpu.wall_secs);
        if let Some(own) = self.cpu.own_secs {
            println!("loadgen_cpu_pct={:.1}", 100.0 * own / self.cpu.wall_secs);
        }
        if self.pids.len() > 1 {
            let each = |secs: &Option<f64>| secs.map_or_else(|| "?".to_string(), |secs| format!("{secs:.2}"));
            let each: Vec<String> = self.cpu.server_each_secs.iter().map(each).collect();
            let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
            println!("# server CPU below is summed over the processes {}", pids.join(","));
            println!("server_cpu_secs_each={}", each.join(","));
        }
        if let Some(cpu) = self.cpu.server_secs {
            println!(
                "# server CPU: utime+stime of the server process over window_secs, CLK_TCK {}",
                procfs::ticks_per_sec()
            );
            println!("server_cpu_secs={cpu:.2}");
            println!("server_cpu_pct={:.1}", 100.0 * cpu / self.cpu.wall_secs);
            println!("server_cpu_us_per_delivery={:.3}", 1e6 * cpu / delivered.max(1) as f64);
        }
        if let Some((user, sys)) = self.cpu.server_user_sys_secs {
            println!("server_user_secs={user:.2}");
            println!("server_sys_secs={sys:.2}");
            println!("server_user_us_per_delivery={:.3}", 1e6 * user / delivered.max(1) as f64);
            println!("server_sys_us_per_delivery={:.3}", 1e6 * sys / delivered.max(1) as f64);
        }
        self.load.print_targets(|slot| self.sender_at.contains_key(&slot));
        self.load.print_connections();
    }
}
