//! What the tool reads from /proc: the server's RSS, open files and CPU time, and its own
//! CPU time.

use std::sync::OnceLock;
use std::time::Instant;
use std::{fs, process};

pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
}

/// Entries of `/proc/{pid}/fd`: the files, sockets and pipes the process holds open.
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// utime + stime of `/proc/{pid}/stat` in clock ticks (the command name in parentheses may contain spaces).
fn cpu_ticks(pid: &str) -> Option<u64> {
    cpu_ticks_split(pid).map(|(user, sys)| user + sys)
}

/// (utime, stime) of `/proc/{pid}/stat` in clock ticks.
fn cpu_ticks_split(pid: &str) -> Option<(u64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    Some((fields.get(11)?.parse::<u64>().ok()?, fields.get(12)?.parse::<u64>().ok()?))
}

/// `getconf CLK_TCK`, or the usual 100 when that fails.
pub fn ticks_per_sec() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        let output = process::Command::new("getconf").arg("CLK_TCK").output().ok();
        output.and_then(|out| String::from_utf8(out.stdout).ok()).and_then(|s| s.trim().parse().ok()).unwrap_or(100.0)
    })
}

/// The servers' and this process's CPU time at one instant.
pub struct CpuSample {
    at: Instant,
    /// Each server's (user, system) ticks.
    servers: Vec<Option<(u64, u64)>>,
    own: Option<u64>,
}

/// CPU seconds spent between two samples.
pub struct CpuSpent {
    pub wall_secs: f64,
    /// Summed over the servers (None if one could not be read).
    pub server_secs: Option<f64>,
    /// The servers' user and system seconds apart, summed.
    pub server_user_sys_secs: Option<(f64, f64)>,
    /// Each server's seconds, in the order of the pids.
    pub server_each_secs: Vec<Option<f64>>,
    pub own_secs: Option<f64>,
}

impl CpuSample {
    pub fn take(pid: Option<u32>) -> CpuSample {
        CpuSample::take_all(pid.as_slice())
    }

    /// One sample of several server processes, whose CPU time `since` sums.
    pub fn take_all(pids: &[u32]) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            servers: pids.iter().map(|pid| cpu_ticks_split(&pid.to_string())).collect(),
            own: cpu_ticks("self"),
        }
    }

    pub fn since(&self, earlier: &CpuSample) -> CpuSpent {
        let ticks = ticks_per_sec();
        let secs = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / ticks);
        let split: Vec<Option<(f64, f64)>> = earlier
            .servers
            .iter()
            .zip(&self.servers)
            .map(|(a, b)| {
                let ((u0, s0), (u1, s1)) = a.zip(*b)?;
                Some((u1.saturating_sub(u0) as f64 / ticks, s1.saturating_sub(s0) as f64 / ticks))
            })
            .collect();
        let summed = (!split.is_empty())
            .then(|| split.iter().try_fold((0.0, 0.0), |(u, s), each| each.map(|(du, ds)| (u + du, s + ds))))
            .flatten();
        CpuSpent {
            wall_secs: (self.at - earlier.at).as_secs_f64(),
            server_secs: summed.map(|(user, sys)| user + sys),
            server_user_sys_secs: summed,
            server_each_secs: split.iter().map(|each| each.map(|(user, sys)| user + sys)).collect(),
            own_secs: secs(earlier.own, self.own),
        }
    }
}
