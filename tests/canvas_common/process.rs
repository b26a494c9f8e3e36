//! The real `smolcanvas` binary as a child process: started on a free port, its stderr followed, signalled.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::WAIT;

pub const BIN: &str = env!("CARGO_BIN_EXE_smolcanvas");

/// A running `smolcanvas` process; killed if still running when dropped.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Process {
    /// Starts the binary on a free port with `dir` as its data dir and waits for its `listening on` line.
    pub fn start(dir: &Path) -> Process {
        Process::start_with(dir, &[])
    }

    /// Like [`Process::start`], with `extra` flags after the defaults.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Process {
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--flush-interval", "0.2", "--log-level", "info"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start smolcanvas");
        let (lines, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[smolcanvas] {line}");
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = Process { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), stderr };
        let marker = "listening on http://127.0.0.1:";
        let line = process.wait_line(marker);
        let port = line[line.find(marker).unwrap_or_default() + marker.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        process.addr.set_port(port);
        process
    }

    /// The next stderr line containing `text`, failing after [`WAIT`].
    pub fn wait_line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("no stderr line with {text:?} within {WAIT:?}"),
            }
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Waits at most [`WAIT`] for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the process") {
                return status;
            }
            assert!(Instant::now() < deadline, "smolcanvas did not exit within {WAIT:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Every stderr line not yet read.
    pub fn drain_lines(&mut self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// The process's resident memory (`VmRSS` in `/proc/PID/status`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("read /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status")
    }
}
