//! The real `smolcanvas` binary as a child process: started on a free port, its stderr followed, signalled.

use std::ffi::OsString;
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

/// The line that says the server is up, with its port after it.
const LISTENING: &str = "listening on http://127.0.0.1:";

impl Process {
    /// Starts the binary on a free port with `dir` as its data dir and waits for its `listening on` line.
    pub fn start(dir: &Path) -> Process {
        Process::start_with(dir, &[])
    }

    /// Like [`Process::start`], with `extra` flags after the defaults.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Process {
        Process::start_on(dir, extra, None)
    }

    /// Like [`Process::start_with`], then closes the read end of the binary's stderr as soon as
    /// the `listening on` line is read (before this returns): every later write to its stderr
    /// fails with EPIPE, as under `smolcanvas 2>&1 | head -3`.
    pub fn start_then_close_stderr(dir: &Path, extra: &[&str]) -> Process {
        Process::start_on(dir, extra, Some(LISTENING))
    }

    fn start_on(dir: &Path, extra: &[&str], close_after: Option<&'static str>) -> Process {
        let mut args: Vec<OsString> = ["--listen", "127.0.0.1:0", "--data-dir"].map(OsString::from).into();
        args.push(dir.into());
        args.extend(["--flush-interval", "0.2", "--log-level", "info"].map(OsString::from));
        args.extend(extra.iter().map(OsString::from));
        let mut process = Process::spawn_until(&args, close_after);
        let line = process.wait_line(LISTENING);
        let port = line[line.find(LISTENING).unwrap_or_default() + LISTENING.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        process.addr.set_port(port);
        process
    }

    /// Starts the binary with exactly `args`, following its stderr, without waiting for anything
    /// (`addr` stays at port 0).
    pub fn spawn(args: &[&str]) -> Process {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        Process::spawn_until(&args, None)
    }

    /// Starts the binary; its stderr is followed up to the first line containing `close_after`, if
    /// given, and the pipe's read end closed right after that line is read.
    fn spawn_until(args: &[OsString], close_after: Option<&'static str>) -> Process {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start smolcanvas");
        let (lines, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        thread::spawn(move || {
            let mut reader = BufReader::new(pipe).lines();
            while let Some(Ok(line)) = reader.next() {
                eprintln!("[smolcanvas] {line}");
                if close_after.is_some_and(|text| line.contains(text)) {
                    drop(reader);
                    eprintln!("[smolcanvas] (stderr closed by the test)");
                    let _ = lines.send(line);
                    return;
                }
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        Process { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), stderr }
    }

    /// The next stderr line containing `text`, failing after [`WAIT`].
    pub fn wait_line(&mut self, text: &str) -> String {
        self.lines_until(text).pop().unwrap_or_default()
    }

    /// Every stderr line up to and including the next one containing `text`, failing after [`WAIT`].
    pub fn lines_until(&mut self, text: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let last = line.contains(text);
                    lines.push(line);
                    if last {
                        return lines;
                    }
                }
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

    /// Every stderr line not yet read, up to the end of stderr (after the process has exited),
    /// failing if it does not end within [`WAIT`].
    pub fn remaining_lines(&mut self) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut lines = Vec::new();
        loop {
            match self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("stderr did not end within {WAIT:?}"),
            }
        }
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
