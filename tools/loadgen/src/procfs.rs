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

/// The server's and this process's CPU time at one instant.
pub struct CpuSample {
    at: Instant,
    server: Option<u64>,
    /// The server's (user, system) ticks.
    server_split: Option<(u64, u64)>,
    own: Option<u64>,
}

/// CPU seconds spent between two samples.
pub struct CpuSpent {
    pub wall_secs: f64,
    pub server_secs: Option<f64>,
    /// The server's user and system seconds apart.
    pub server_user_sys_secs: Option<(f64, f64)>,
    pub own_secs: Option<f64>,
}

impl CpuSample {
    pub fn take(pid: Option<u32>) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            server: pid.and_then(|pid| cpu_ticks(&pid.to_string())),
            server_split: pid.and_then(|pid| cpu_ticks_split(&pid.to_string())),
            own: cpu_ticks("self"),
        }
    }

    pub fn since(&self, earlier: &CpuSample) -> CpuSpent {
        let secs = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / ticks_per_sec());
        CpuSpent {
            wall_secs: (self.at - earlier.at).as_secs_f64(),
            server_secs: secs(earlier.server, self.server),
            server_user_sys_secs: earlier.server_split.zip(self.server_split).map(|((u0, s0), (u1, s1))| {
                let ticks = ticks_per_sec();
                (u1.saturating_sub(u0) as f64 / ticks, s1.saturating_sub(s0) as f64 / ticks)
            }),
            own_secs: secs(earlier.own, self.own),
        }
    }
}
