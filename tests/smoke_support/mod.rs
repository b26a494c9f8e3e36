//! Black-box helpers for the smoke test: the server command line, a `smolcanvas` process
//! watched through its stderr, plain HTTP requests and a canvas WebSocket client.
//!
//! Nothing here uses the library: the binary under test may be a foreign-architecture build
//! run under an emulator, so it is reached only through its command line, its port and signals.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use serde_json::Value;
use smol::net::TcpStream;

/// The environment variable holding the server command line (shell words).
pub const CMD_VAR: &str = "SMOLCANVAS_SMOKE_CMD";

/// Bound on the server's start, up to its `listening on` line (an emulator is slow to start).
pub const STARTUP: Duration = Duration::from_secs(30);

/// Bound on any one step against the running server.
pub const STEP: Duration = Duration::from_secs(20);

/// Bound on the exit after SIGTERM.
pub const EXIT: Duration = Duration::from_secs(30);

/// Splits `line` into words the way a POSIX shell does for plain words: blanks separate, single
/// quotes keep everything, double quotes keep everything but `\"`, `\\`, `\$` and `` \` ``, and a
/// backslash outside quotes keeps the next character. No expansions.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated single quote in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unterminated double quote in {line:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated double quote in {line:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err(format!("trailing backslash in {line:?}")),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The command that starts the server: `$SMOLCANVAS_SMOKE_CMD` if set and not blank, else the
/// binary cargo built for this test run.
pub fn server_command() -> Vec<String> {
    match std::env::var(CMD_VAR) {
        Ok(line) if !line.trim().is_empty() => {
            split_words(&line).unwrap_or_else(|err| panic!("cannot parse {CMD_VAR}: {err}"))
        }
        _ => vec![env!("CARGO_BIN_EXE_smolcanvas").to_string()],
    }
}

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory whose name includes `name` and the process id.
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("smolcanvas-smoke-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server process: its stderr lines arrive on a channel, its exit status on another.
/// Killed with SIGKILL if it is still running when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pid: u32,
    command: String,
    stderr: mpsc::Receiver<String>,
    /// Every stderr line received so far.
    log: Vec<String>,
    exit: mpsc::Receiver<ExitStatus>,
    exited: Option<ExitStatus>,
}

impl Server {
    /// Runs `command` with `--listen 127.0.0.1:0 --data-dir DIR --log-level info` appended and
    /// waits at most [`STARTUP`] for the port in its `listening on` line.
    pub fn start(command: &[String], data_dir: &Path) -> Server {
        let (program, args) = command.split_first().expect("an empty server command");
        let mut child = Command::new(program)
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        let pid = child.id();
        let pipe = child.stderr.take().expect("a piped stderr");
        let (lines, stderr) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                let _ = lines.send(line);
            }
        });
        let (exit_tx, exit) = mpsc::channel();
        thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = exit_tx.send(status);
            }
        });
        let mut server = Server {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            command: command.join(" "),
            stderr,
            log: Vec::new(),
            exit,
            exited: None,
        };
        let marker = "listening on http://127.0.0.1:";
        let line = server.wait_line(marker, STARTUP);
        let port = line[line.find(marker).expect("the marker") + marker.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        server.addr.set_port(port);
        server
    }

    /// The next stderr line containing `text`, failing after `within` or when stderr ends first.
    pub fn wait_line(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("`{}` printed no line with {text:?} within {within:?}", self.command)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = match self.exit.recv_timeout(STEP) {
                        Ok(status) => status.to_string(),
                        Err(_) => "still running".to_string(),
                    };
                    panic!("`{}` closed its stderr before printing {text:?} ({status})", self.command)
                }
            }
        }
    }

    /// Sends `signal` (a `kill` option such as `-TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.pid);
    }

    /// Waits at most `within` for the process to exit and returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        match self.exit.recv_timeout(within) {
            Ok(status) => {
                self.exited = Some(status);
                status
            }
            Err(err) => panic!("`{}` did not exit within {within:?} ({err})", self.command),
        }
    }

    /// Every line the process wrote to stderr, once it has closed stderr (at most [`STEP`] away).
    pub fn full_log(&mut self) -> &[String] {
        let deadline = Instant::now() + STEP;
        loop {
            match self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => self.log.push(line),
                Err(RecvTimeoutError::Disconnected) => return &self.log,
                Err(RecvTimeoutError::Timeout) => panic!("`{}` kept its stderr open after {STEP:?}", self.command),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() && self.exit.try_recv().is_err() {
            let _ = Command::new("kill").args(["-KILL", &self.pid.to_string()]).status();
            let _ = self.exit.recv_timeout(STEP);
        }
    }
}

/// Waits for `fut`, failing the test after [`STEP`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    let timer = async {
        smol::Timer::after(STEP).await;
        None
    };
    match futures_lite::future::or(async { Some(fut.await) }, timer).await {
        Some(value) => value,
        None => panic!("timed out after {STEP:?} waiting for {what}"),
    }
}

/// An HTTP response: status code and body.
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Sends `GET path` over a fresh connection and reads the response up to the server's close.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    let what = format!("GET {path}");
    within(&what, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect for an HTTP request");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send an HTTP request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read an HTTP response");
        let text = String::from_utf8(raw).expect("a UTF-8 response");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of head in {text:?}"));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        Response { status, body: body.to_string() }
    })
    .await
}

/// A canvas WebSocket client that keeps `clientCount` values apart from the other messages.
pub struct Peer {
    name: &'static str,
    ws: WebSocketStream<TcpStream>,
    pending: VecDeque<Value>,
    counts: Vec<u64>,
}

impl Peer {
    /// Connects to `ws://addr/ws`.
    pub async fn connect(name: &'static str, addr: SocketAddr) -> Peer {
        let ws = within(&format!("{name}'s upgrade"), async {
            let stream = TcpStream::connect(addr).await.expect("connect for the upgrade");
            match async_tungstenite::client_async(format!("ws://{addr}/ws"), stream).await {
                Ok((ws, _)) => ws,
                Err(err) => panic!("{name}: upgrade to ws://{addr}/ws failed: {err}"),
            }
        })
        .await;
        Peer { name, ws, pending: VecDeque::new(), counts: Vec::new() }
    }

    /// Sends one text message.
    pub async fn send(&mut self, text: &str) {
        let what = format!("{} sending {text}", self.name);
        within(&what, self.ws.send(Message::text(text))).await.unwrap_or_else(|err| panic!("{what}: {err}"));
    }

    /// The next text message, parsed, skipping pings and pongs.
    async fn read(&mut self) -> Value {
        let what = format!("a message to {}", self.name);
        loop {
            match within(&what, self.ws.next()).await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text)
                        .unwrap_or_else(|err| panic!("{}: invalid JSON {text:?}: {err}", self.name));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("{}: expected a text message, got {other:?}", self.name),
            }
        }
    }

    /// The next message that is not a `clientCount`.
    pub async fn next(&mut self) -> Value {
        if let Some(message) = self.pending.pop_front() {
            return message;
        }
        loop {
            let message = self.read().await;
            match client_count(&message) {
                Some(count) => self.counts.push(count),
                None => return message,
            }
        }
    }

    /// The next message that is not a `clientCount`; it must have `"type"` `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let message = self.next().await;
        assert_eq!(message["type"], kind, "{}: expected a {kind}, got {message}", self.name);
        message
    }

    /// Reads until the latest `clientCount` is `n`, keeping the other messages for [`Peer::next`].
    pub async fn wait_count(&mut self, n: u64) {
        let what = format!("clientCount {n} at {}", self.name);
        within(&what, async {
            while self.counts.last() != Some(&n) {
                let message = self.read().await;
                match client_count(&message) {
                    Some(count) => self.counts.push(count),
                    None => self.pending.push_back(message),
                }
            }
        })
        .await;
    }

    /// Skips messages up to the server's close frame, returns it, and reads on until the
    /// connection ends (the client answers the close meanwhile).
    pub async fn expect_close(&mut self) -> CloseFrame {
        let what = format!("the server closing {}", self.name);
        within(&what, async {
            let frame = loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(Some(frame)))) => break frame,
                    Some(Ok(Message::Close(None))) => panic!("{}: a close frame without a code", self.name),
                    Some(Ok(_)) => {}
                    other => panic!("{}: expected a close frame, got {other:?}", self.name),
                }
            };
            while let Some(Ok(_)) = self.ws.next().await {}
            frame
        })
        .await
    }
}

fn client_count(message: &Value) -> Option<u64> {
    if message["type"] != "clientCount" {
        return None;
    }
    Some(message["clientCount"].as_u64().unwrap_or_else(|| panic!("bad clientCount message {message}")))
}

/// `message[field]` as a string, failing the test when it is not one.
pub fn string<'a>(message: &'a Value, field: &str) -> &'a str {
    message[field].as_str().unwrap_or_else(|| panic!("no string {field} in {message}"))
}

/// Asserts that `message` is the normalized relay of `draw`: `"type":"draw"`, the same color and
/// coordinates, `lineWidth` as sent or 3, and nothing else.
pub fn assert_relayed(message: &Value, draw: &Value) {
    assert_eq!(message["type"], "draw", "expected a draw, got {message}");
    assert_eq!(message["color"], draw["color"], "color changed in {message}");
    for field in ["startX", "startY", "endX", "endY"] {
        assert_eq!(message[field].as_f64(), draw[field].as_f64(), "{field} changed in {message}");
    }
    let width = draw["lineWidth"].as_f64().unwrap_or(3.0);
    assert_eq!(message["lineWidth"].as_f64(), Some(width), "lineWidth in {message}");
    assert_eq!(message.as_object().map(serde_json::Map::len), Some(7), "extra fields in {message}");
}
