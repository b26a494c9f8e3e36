//! A `smolcanvas` binary as a child process: started on a free port, its stderr followed, signalled.
//!
//! Nothing here links the library: the binary may be a foreign-architecture build run under an
//! emulator, reached only through its command line, its port, its stderr and signals.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::command::BIN;
use super::wait::WAIT;

/// The line that says the server is up, with its port after it.
const LISTENING: &str = "listening on http://127.0.0.1:";

/// A running server process: its stderr lines arrive on a channel, its exit status on another.
/// Killed with SIGKILL if it is still running when dropped.
pub struct Process {
    pub addr: SocketAddr,
    pid: u32,
    command: String,
    /// The bound on every wait: for a stderr line, for the end of stderr, for the exit.
    limit: Duration,
    stderr: mpsc::Receiver<String>,
    /// Every stderr line received so far.
    log: Vec<String>,
    exit: mpsc::Receiver<ExitStatus>,
    exited: Option<ExitStatus>,
}

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
        let mut args = listen_args(dir);
        args.extend(["--flush-interval", "0.2", "--log-level", "info"].map(OsString::from));
        args.extend(extra.iter().map(OsString::from));
        let mut process = Process::launch(&[BIN.into()], &args, close_after, WAIT);
        process.wait_listening();
        process
    }

    /// Runs `command` (a program and its first arguments, such as an emulator and the binary)
    /// with `--listen 127.0.0.1:0 --data-dir DIR --log-level info` appended, bounds every wait on
    /// it by `limit`, and waits for its `listening on` line.
    pub fn start_command(command: &[String], dir: &Path, limit: Duration) -> Process {
        let mut args = listen_args(dir);
        args.extend(["--log-level", "info"].map(OsString::from));
        let command: Vec<OsString> = command.iter().map(OsString::from).collect();
        let mut process = Process::launch(&command, &args, None, limit);
        process.wait_listening();
        process
    }

    /// Runs `command` (a program and its first arguments, such as `ip netns exec NS` and the
    /// binary) listening on `ip` (port 0) with `dir` as its data dir, the defaults of
    /// [`Process::start`] and `extra` after them, and waits for its `listening on` line for `ip`.
    pub fn start_at(command: &[String], ip: IpAddr, dir: &Path, extra: &[&str]) -> Process {
        let mut args: Vec<OsString> = vec!["--listen".into(), SocketAddr::new(ip, 0).to_string().into()];
        args.extend([OsString::from("--data-dir"), dir.into()]);
        args.extend(["--flush-interval", "0.2", "--log-level", "info"].map(OsString::from));
        args.extend(extra.iter().map(OsString::from));
        let command: Vec<OsString> = command.iter().map(OsString::from).collect();
        let mut process = Process::launch(&command, &args, None, WAIT);
        process.addr = SocketAddr::new(ip, 0);
        process.wait_listening();
        process
    }

    /// Starts the binary with exactly `args`, following its stderr, without waiting for anything
    /// (`addr` stays at port 0).
    pub fn spawn(args: &[&str]) -> Process {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        Process::launch(&[BIN.into()], &args, None, WAIT)
    }

    /// Starts `command` with `args`; its stderr is followed up to the first line containing
    /// `close_after`, if given, and the pipe's read end closed right after that line is read.
    fn launch(command: &[OsString], args: &[OsString], close_after: Option<&'static str>, limit: Duration) -> Process {
        let (program, first_args) = command.split_first().expect("an empty server command");
        let mut child = Command::new(program)
            .args(first_args)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        let pid = child.id();
        let pipe = child.stderr.take().expect("a piped stderr");
        let (lines, stderr) = mpsc::channel();
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
        let (exited, exit) = mpsc::channel();
        thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = exited.send(status);
            }
        });
        let command = command.iter().map(|word| word.to_string_lossy()).collect::<Vec<_>>().join(" ");
        Process {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            command,
            limit,
            stderr,
            log: Vec::new(),
            exit,
            exited: None,
        }
    }

    /// Waits for the `listening on` line for `addr`'s address and takes the port from it.
    fn wait_listening(&mut self) {
        let marker = match self.addr.ip() {
            ip if ip == IpAddr::from([127, 0, 0, 1]) => LISTENING.to_string(),
            ip => format!("listening on http://{}:", SocketAddr::new(ip, 0).to_string().trim_end_matches(":0")),
        };
        let line = self.wait_line(&marker);
        let port = line[line.find(&marker).expect("the marker") + marker.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        self.addr.set_port(port);
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The next stderr line containing `text`, failing after the bound or when stderr ends first.
    pub fn wait_line(&mut self, text: &str) -> String {
        self.lines_until(text).pop().unwrap_or_default()
    }

    /// Every stderr line up to and including the next one containing `text`, failing after the
    /// bound or when stderr ends first.
    pub fn lines_until(&mut self, text: &str) -> Vec<String> {
        let deadline = Instant::now() + self.limit;
        let mut lines = Vec::new();
        loop {
            match self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.log.push(line.clone());
                    let last = line.contains(text);
                    lines.push(line);
                    if last {
                        return lines;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("`{}` printed no line with {text:?} within {:?}", self.command, self.limit)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = match self.exit_within(self.limit) {
                        Some(status) => status.to_string(),
                        None => "still running".to_string(),
                    };
                    panic!("`{}` closed its stderr before printing {text:?} ({status})", self.command)
                }
            }
        }
    }

    /// Every stderr line not yet read, without waiting.
    pub fn drain_lines(&mut self) -> Vec<String> {
        let lines: Vec<String> = self.stderr.try_iter().collect();
        self.log.extend(lines.iter().cloned());
        lines
    }

    /// Every stderr line received so far, reading what is there without waiting.
    pub fn log_so_far(&mut self) -> &[String] {
        self.drain_lines();
        &self.log
    }

    /// Every stderr line not yet read, up to the end of stderr (after the process has exited),
    /// failing if it does not end within the bound.
    pub fn remaining_lines(&mut self) -> Vec<String> {
        let deadline = Instant::now() + self.limit;
        let mut lines = Vec::new();
        loop {
            match self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.log.push(line.clone());
                    lines.push(line);
                }
                Err(RecvTimeoutError::Disconnected) => return lines,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("`{}` kept its stderr open after {:?}", self.command, self.limit)
                }
            }
        }
    }

    /// Every line the process wrote to stderr, once it has closed stderr (within the bound).
    pub fn full_log(&mut self) -> &[String] {
        self.remaining_lines();
        &self.log
    }

    /// Sends `signal` (a `kill` option such as `-TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.pid);
    }

    /// Kills the process with SIGKILL (no flush, no goodbye: a power cut as far as the data dir
    /// can tell) and waits for it to be gone.
    pub fn kill(&mut self) {
        self.signal("-KILL");
        let status = self.wait_exit();
        assert!(!status.success(), "a killed process does not exit 0: {status}");
    }

    /// Stops the process with SIGTERM and waits (bounded) for its clean exit: status 0.
    pub fn stop(&mut self) {
        self.signal("-TERM");
        let status = self.wait_exit();
        assert!(status.success(), "`{}` did not exit cleanly on SIGTERM: {status}", self.command);
    }

    /// Waits at most the bound for the process to exit and returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        match self.exit_within(self.limit) {
            Some(status) => status,
            None => panic!("`{}` did not exit within {:?}", self.command, self.limit),
        }
    }

    /// The exit status, waiting at most `within` for it.
    fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.exit.recv_timeout(within).ok();
        }
        self.exited
    }

    /// The process's resident memory (`VmRSS` in `/proc/PID/status`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("read /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exit_within(Duration::ZERO).is_none() {
            let _ = Command::new("kill").args(["-KILL", &self.pid.to_string()]).status();
            let _ = self.exit_within(self.limit);
        }
    }
}

/// `--listen 127.0.0.1:0 --data-dir DIR`.
fn listen_args(dir: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--listen", "127.0.0.1:0", "--data-dir"].map(OsString::from).into();
    args.push(dir.into());
    args
}
