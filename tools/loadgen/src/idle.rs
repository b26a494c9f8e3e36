//! `idle`: open N connections, hold them, report how many stayed and what they cost the
//! server in memory.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smol::{LocalExecutor, Timer};

use crate::client::ramp;
use crate::load::Load;
use crate::opts::Opts;
use crate::procfs::{self, CpuSample};
use crate::snapshot::TINY_SNAPSHOT;

pub async fn run(ex: &LocalExecutor<'_>, opts: &Opts, addr: SocketAddr) {
    let load = Load::new(&opts.url, addr, opts.clients, 0, 0, TINY_SNAPSHOT);
    let pid = opts.server_pid;
    let rss_start = pid.and_then(procfs::rss_kib);
    let cpu_start = CpuSample::take(pid);
    let ramp = ramp(ex, &load, opts.batch, opts.settle_secs, |_| None).await;
    let ramp_cpu = CpuSample::take(pid).since(&cpu_start);
    println!("conns={}", opts.clients);
    ramp.print(&load);
    if let Some(secs) = ramp_cpu.server_secs {
        println!("server_cpu_ramp_secs={secs:.2}");
    }
    println!("# holding {} connections for {} s", load.open.get(), opts.hold_secs);
    let rss_peak = hold(pid, opts.hold_secs).await;
    let rss_end = pid.and_then(procfs::rss_kib);
    let held = load.open.get();
    println!("held={held}");
    load.print_connections();
    if let (Some(start), Some(end)) = (rss_start, rss_end) {
        println!("server_rss_start_kib={start}");
        println!("server_rss_end_kib={end}");
        println!("server_rss_peak_kib={}", rss_peak.max(end));
        println!("kib_per_conn={:.2}", (end as f64 - start as f64) / held.max(1) as f64);
    } else if let Some(pid) = pid {
        println!("# cannot read /proc/{pid}/status");
    }
}

/// Sleeps `secs`, sampling the server's RSS every second; returns the largest sample.
async fn hold(pid: Option<u32>, secs: f64) -> u64 {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut peak = 0;
    for _ in 0..=secs.ceil() as u64 {
        peak = peak.max(pid.and_then(procfs::rss_kib).unwrap_or(0));
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        Timer::after(left.min(Duration::from_secs(1))).await;
    }
    peak
}
