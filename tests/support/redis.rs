//! A real `redis-server` for the cluster tests: on a free loopback port, with its data in a temp
//! dir of its own (append-only file, fsynced at every write, no RDB snapshots), killed when
//! dropped. It can be killed with SIGKILL and started again on the same port and dir (a "Redis
//! restart": what it had acknowledged comes back from the AOF). A tiny RESP client over a std
//! `TcpStream` reads keys for the checks.
//!
//! Included by the cluster tests next to `support` (`blackbox.rs`), whose `TempDir` it uses:
//! `#[path = "support/redis.rs"] mod redis;`.
//!
//! Without `redis-server` a test says on stderr that it did not run and passes, unless
//! `SMOLCANVAS_REQUIRE_REDIS` is set (`.ci/run` sets it), where it fails.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TempDir, find_program, free_port, skip_or_fail};

/// The environment variable that turns a missing `redis-server` into a failure.
pub const REQUIRE_REDIS: &str = "SMOLCANVAS_REQUIRE_REDIS";

/// Bound on starting Redis, on its answer to PING, on its exit after SIGKILL, on one command.
pub const REDIS_WAIT: Duration = Duration::from_secs(10);

/// The `redis-server` binary, or `None` after saying on stderr that `test` is skipped; fails
/// instead when `SMOLCANVAS_REQUIRE_REDIS` is set.
pub fn redis_server_or_skip(test: &str) -> Option<PathBuf> {
    let found = find_program("redis-server");
    if found.is_none() {
        let hint = "apt-get install redis-server; .ci/run does";
        skip_or_fail(test, "redis-server is not installed", hint, REQUIRE_REDIS);
    }
    found
}

/// A `redis-server` child process with its port, dir and log.
pub struct Redis {
    bin: PathBuf,
    pub port: u16,
    /// The addresses it listens on: 127.0.0.1 and any given to [`Redis::start_bound`].
    binds: Vec<String>,
    dir: TempDir,
    child: Option<Child>,
}

impl Redis {
    /// Starts `bin` on a free 127.0.0.1 port in a fresh temp dir and waits for it to answer PING.
    pub fn start(bin: &Path) -> Redis {
        Redis::start_bound(bin, &[])
    }

    /// Like [`Redis::start`], also listening on each of `more` (addresses that must exist on
    /// this host, such as the host side of a veth pair).
    pub fn start_bound(bin: &Path, more: &[&str]) -> Redis {
        let mut binds = vec!["127.0.0.1".to_string()];
        binds.extend(more.iter().map(|b| b.to_string()));
        let mut redis =
            Redis { bin: bin.to_path_buf(), port: free_port(), binds, dir: TempDir::new("redis"), child: None };
        redis.launch();
        redis
    }

    /// `redis://127.0.0.1:PORT/`, what the servers get as `--redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `redis://HOST:PORT/` for another address it listens on.
    pub fn url_at(&self, host: &str) -> String {
        assert!(self.binds.iter().any(|b| b == host), "Redis does not listen on {host}");
        format!("redis://{host}:{}/", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Redis's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Starts the process on `port` in `dir` (the same ones at a restart) and waits for PING.
    fn launch(&mut self) {
        let d = self.dir.path();
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind"])
            .args(&self.binds)
            .arg("--dir")
            .arg(d)
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .arg("--logfile")
            .arg(d.join("redis.log"))
            // Written even in the foreground: `.ci/run` stops the Redis of a test that was killed
            // before its Drop could.
            .arg("--pidfile")
            .arg(d.join("redis.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits (bounded) until Redis answers PING with PONG and has loaded its data.
    pub fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server exited ({status}) before answering PING:\n{}", self.log());
            }
            if matches!(self.try_command(&["PING"]), Ok(Reply::Status(pong)) if pong == "PONG") {
                return;
            }
            assert!(start.elapsed() < REDIS_WAIT, "Redis does not answer PING after {REDIS_WAIT:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills Redis with SIGKILL (nothing flushed beyond what `appendfsync always` already wrote)
    /// and waits for it to be gone.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = child.kill();
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            assert!(start.elapsed() < REDIS_WAIT, "redis-server survived SIGKILL for {REDIS_WAIT:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts Redis again on the same port and dir (it reloads its AOF) and waits for PING.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a Redis that was killed");
        self.launch();
    }

    /// Runs one command on a fresh connection; fails the test on an I/O error or an error reply.
    pub fn command(&self, args: &[&str]) -> Reply {
        match self.try_command(args) {
            Ok(Reply::Error(err)) => panic!("Redis answered {args:?} with an error: {err}"),
            Ok(reply) => reply,
            Err(err) => panic!("Redis command {args:?} failed: {err}"),
        }
    }

    /// Runs one command on a fresh connection.
    pub fn try_command(&self, args: &[&str]) -> std::io::Result<Reply> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), REDIS_WAIT)?;
        stream.set_read_timeout(Some(REDIS_WAIT))?;
        stream.set_write_timeout(Some(REDIS_WAIT))?;
        stream.write_all(&encode(args))?;
        read_reply(&mut BufReader::new(stream))
    }

    /// An integer reply (`XLEN`, `EXISTS`, `HEXISTS`, `DBSIZE` ...).
    pub fn int(&self, args: &[&str]) -> i64 {
        match self.command(args) {
            Reply::Int(n) => n,
            other => panic!("Redis answered {args:?} with {other:?}, not an integer"),
        }
    }

    /// A bulk-string reply as bytes, `None` for a nil reply (`GET`, `HGET` ...).
    pub fn bytes(&self, args: &[&str]) -> Option<Vec<u8>> {
        match self.command(args) {
            Reply::Bulk(bytes) => bytes,
            Reply::Status(text) => Some(text.into_bytes()),
            other => panic!("Redis answered {args:?} with {other:?}, not a string"),
        }
    }

    /// A bulk-string reply as text, `None` for a nil reply.
    pub fn string(&self, args: &[&str]) -> Option<String> {
        self.bytes(args).map(|b| String::from_utf8(b).unwrap_or_else(|e| panic!("{args:?}: not UTF-8: {e}")))
    }

    /// The entries of an `XRANGE`/`XREVRANGE`-like command: each id with its fields.
    pub fn entries(&self, args: &[&str]) -> Vec<(String, BTreeMap<String, String>)> {
        self.command(args)
            .items()
            .iter()
            .map(|entry| {
                let parts = entry.items();
                let id = parts.first().and_then(Reply::text).unwrap_or_else(|| panic!("no id in {entry:?}"));
                let values: Vec<String> =
                    parts.get(1).map(Reply::items).unwrap_or_default().iter().filter_map(Reply::text).collect();
                let fields =
                    values.chunks(2).map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default())).collect();
                (id, fields)
            })
            .collect()
    }

    /// The id of the oldest entry left in stream `key`, if any.
    pub fn first_entry(&self, key: &str) -> Option<String> {
        self.entries(&["XRANGE", key, "-", "+", "COUNT", "1"]).into_iter().next().map(|(id, _)| id)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    /// `None` for the nil bulk string.
    Bulk(Option<Vec<u8>>),
    /// `None` for the nil array.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The elements of an array reply (a nil array is empty).
    pub fn items(&self) -> Vec<Reply> {
        match self {
            Reply::Array(items) => items.clone().unwrap_or_default(),
            other => panic!("expected an array reply, got {other:?}"),
        }
    }

    /// A bulk or status reply as text.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Reply::Status(text) => Some(text.clone()),
            _ => None,
        }
    }
}

/// A command as a RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend(format!("${}\r\n", arg.len()).as_bytes());
        out.extend(arg.as_bytes());
        out.extend(b"\r\n");
    }
    out
}

fn bad(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "Redis closed the connection"));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_reply(reader: &mut impl BufRead) -> std::io::Result<Reply> {
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at_checked(1).ok_or_else(|| bad("an empty reply line".into()))?;
    let number = || rest.parse::<i64>().map_err(|_| bad(format!("a bad number in {line:?}")));
    Ok(match kind {
        "+" => Reply::Status(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(number()?),
        "$" => match number()? {
            -1 => Reply::Bulk(None),
            n => {
                let mut data = vec![0; n as usize + 2];
                reader.read_exact(&mut data)?;
                data.truncate(n as usize);
                Reply::Bulk(Some(data))
            }
        },
        "*" => match number()? {
            -1 => Reply::Array(None),
            n => Reply::Array(Some((0..n).map(|_| read_reply(reader)).collect::<std::io::Result<_>>()?)),
        },
        _ => return Err(bad(format!("an unknown reply {line:?}"))),
    })
}

/// A stream entry id (`MS-SEQ`) as a pair that orders like the ids do.
pub fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    let parse = |part: &str| part.parse().unwrap_or_else(|_| panic!("not a stream id: {id:?}"));
    (parse(ms), parse(seq))
}
