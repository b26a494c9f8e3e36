//! Command line: subcommand, `--flag value` pairs, defaults and sanity checks.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

pub const HELP: &str = "\
loadgen: load tool for a smolcanvas server (the canvas protocol on /ws); every run is bounded in \
connections, messages and time, and a watchdog exits with code 3 after --max-secs (default 300). \
`idle --url ws://HOST:PORT/ws --conns N [--hold-secs 10]` opens and holds N connections and \
reports how many were held, failed or closed by the server and, with --server-pid PID, the \
server's VmRSS before and after and KiB per connection. `fanout --url URL --clients N --senders K \
--rate R --secs S [--drain-secs 5]` has K of N clients send R draws/s each for S s and reports \
deliveries, losses, relay latency p50/p99/max and, with --server-pid, server CPU per delivery. \
`join --url URL --clients N [--rounds 20] [--png-kib 100]` keeps N-1 peers that answer canvas \
syncs with a png-kib KiB snapshot and times a newcomer's connect-to-canvasState over the rounds, \
counting peer snapshots, server fallbacks and syncs that never came. `latency --url URL [--draws \
10000] [--rate 1000]` times draw relay between two clients. fanout and latency also take \
--send-url URL (senders connect there, receivers to --url) and a comma-separated list in --url \
(receivers, and senders without --send-url, spread round-robin over the URLs): relay between \
the servers of a cluster, with deliveries and latency per URL; --server-pid PID,PID,... then \
sums server CPU over those processes. `soak --url URL --minutes M [--clients \
200] [--churn-per-sec 20] [--drawers 10] [--rate 20] [--sample-secs 10]` keeps about N clients \
connected for M minutes while it closes C random ones a second (close handshake, TCP drop or half \
a frame) and opens C new ones, K of them drawing R draws/s each; with --server-pid it samples the \
server's VmRSS and open fds every --sample-secs and reports start, middle, end and maximum, with \
syncs, closes, errors, deliveries and relay latency (--max-secs defaults to M*60+60). Ramps open \
--batch connections at a time (default 100, 0 = all at once) and wait up to --settle-secs (default \
30) for every client to see the new clientCount. Add ?key=KEY to the URL for a server with an \
access key. `board --url ws://HOST:PORT/b/NAME/ws [--strokes 600] [--segments 20] [--window 500] \
[--clients 100] [--rounds 20] [--rate 900]` draws the strokes as a v2 client (those past the \
server's undo window are painted into its floor), keeps N-1 clients on the board, then times a \
v2 newcomer from connect to its last live draw and the board's board.png, --rounds times each. \
Output is key=value lines; lines starting with # are comments.";

/// The server's default rate limit, in messages per second per client.
pub const DEFAULT_RATE_LIMIT: f64 = 1000.0;
/// Coordinates must stay within ±10000, and a sender's index is a coordinate.
const MAX_SENDERS: usize = 10_000;
/// Bounds the in-process table of send times (8 bytes per draw).
const MAX_DRAWS: usize = 5_000_000;

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    Idle,
    Fanout,
    Join,
    Latency,
    Soak,
    Board,
}

impl Mode {
    fn from_name(name: &str) -> Option<Mode> {
        [Mode::Idle, Mode::Fanout, Mode::Join, Mode::Latency, Mode::Soak, Mode::Board]
            .into_iter()
            .find(|mode| mode.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Idle => "idle",
            Mode::Fanout => "fanout",
            Mode::Join => "join",
            Mode::Latency => "latency",
            Mode::Soak => "soak",
            Mode::Board => "board",
        }
    }

    fn flags(self) -> &'static [&'static str] {
        match self {
            Mode::Idle => &["url", "conns", "hold-secs", "batch", "settle-secs", "server-pid", "max-secs"],
            Mode::Fanout => &[
                "url",
                "send-url",
                "clients",
                "senders",
                "rate",
                "secs",
                "drain-secs",
                "batch",
                "settle-secs",
                "server-pid",
                "max-secs",
            ],
            Mode::Join => &["url", "clients", "rounds", "png-kib", "batch", "settle-secs", "server-pid", "max-secs"],
            Mode::Latency => &["url", "send-url", "draws", "rate", "drain-secs", "server-pid", "max-secs"],
            Mode::Board => &[
                "url",
                "clients",
                "strokes",
                "segments",
                "window",
                "rate",
                "rounds",
                "settle-secs",
                "server-pid",
                "max-secs",
            ],
            Mode::Soak => &[
                "url",
                "minutes",
                "clients",
                "churn-per-sec",
                "drawers",
                "rate",
                "sample-secs",
                "server-pid",
                "max-secs",
            ],
        }
    }
}

pub struct Opts {
    pub mode: Mode,
    /// `--url` as given (fanout and latency take a comma-separated list, see `receive_urls`).
    pub url: String,
    /// The URLs of `--url`, in order; receivers (and, without `--send-url`, senders too)
    /// connect to them round-robin.
    pub receive_urls: Vec<String>,
    /// `--send-url`: where the senders of fanout and latency connect.
    pub send_url: Option<String>,
    pub clients: usize,
    pub senders: usize,
    pub rate: f64,
    pub secs: f64,
    pub draws: usize,
    pub drain_secs: f64,
    pub hold_secs: f64,
    pub rounds: usize,
    pub png_kib: usize,
    pub batch: usize,
    pub settle_secs: f64,
    /// The first of `server_pids`: the process whose RSS, fds and CPU the other modes read.
    pub server_pid: Option<u32>,
    /// `--server-pid PID[,PID...]`: fanout and latency sum CPU over all of them.
    pub server_pids: Vec<u32>,
    pub max_secs: f64,
    pub minutes: f64,
    pub churn: usize,
    pub sample_secs: f64,
    pub strokes: usize,
    pub segments: usize,
    pub window: usize,
}

impl Opts {
    /// `Ok(None)` means help was asked for.
    pub fn parse(args: Vec<String>) -> Result<Option<Opts>, String> {
        if args.is_empty() || args.iter().any(|arg| arg == "--help" || arg == "-h") {
            return Ok(None);
        }
        let mode = Mode::from_name(&args[0]).ok_or_else(|| format!("unknown subcommand {:?}", args[0]))?;
        let flags = Flags::parse(mode, &args[1..])?;
        let (fanout, soak) = (mode == Mode::Fanout, mode == Mode::Soak);
        let minutes = if soak { flags.value("minutes", None)? } else { 0.0 };
        let url: String = flags.value("url", None)?;
        let server_pids = match flags.optional::<String>("server-pid")? {
            Some(list) => list
                .split(',')
                .map(|pid| pid.trim().parse().map_err(|err| format!("--server-pid {pid:?}: {err}")))
                .collect::<Result<Vec<u32>, String>>()?,
            None => Vec::new(),
        };
        let opts = Opts {
            mode,
            receive_urls: url.split(',').map(|u| u.trim().to_string()).collect(),
            url,
            send_url: flags.optional("send-url")?,
            clients: match mode {
                Mode::Idle => flags.value("conns", None)?,
                Mode::Latency => 2,
                Mode::Soak => flags.value("clients", Some(200))?,
                Mode::Fanout | Mode::Join => flags.value("clients", None)?,
                Mode::Board => flags.value("clients", Some(100))?,
            },
            senders: match mode {
                Mode::Fanout => flags.value("senders", None)?,
                Mode::Soak => flags.value("drawers", Some(10))?,
                _ => 1,
            },
            rate: flags.value(
                "rate",
                match mode {
                    Mode::Soak => Some(20.0),
                    // Below the server's default rate limit, with room for its pings.
                    Mode::Board => Some(0.9 * DEFAULT_RATE_LIMIT),
                    _ => (!fanout).then_some(DEFAULT_RATE_LIMIT),
                },
            )?,
            secs: if soak { minutes * 60.0 } else { flags.value("secs", (!fanout).then_some(0.0))? },
            draws: flags.value("draws", Some(10_000))?,
            drain_secs: flags.value("drain-secs", Some(5.0))?,
            hold_secs: flags.value("hold-secs", Some(10.0))?,
            rounds: flags.value("rounds", Some(20))?,
            png_kib: flags.value("png-kib", Some(100))?,
            batch: flags.value("batch", Some(100))?,
            settle_secs: flags.value("settle-secs", Some(if mode == Mode::Board { 2.0 } else { 30.0 }))?,
            server_pid: server_pids.first().copied(),
            server_pids,
            max_secs: flags.value("max-secs", Some(if soak { minutes * 60.0 + 60.0 } else { 300.0 }))?,
            minutes,
            churn: flags.value("churn-per-sec", Some(20))?,
            sample_secs: flags.value("sample-secs", Some(10.0))?,
            strokes: flags.value("strokes", Some(600))?,
            segments: flags.value("segments", Some(20))?,
            window: flags.value("window", Some(500))?,
        };
        opts.check()?;
        Ok(Some(opts))
    }

    fn check(&self) -> Result<(), String> {
        let min_clients = if self.mode == Mode::Idle { 1 } else { 2 };
        let durations = [self.drain_secs, self.hold_secs, self.settle_secs, self.secs];
        if self.clients < min_clients {
            return Err(format!("{} needs at least {min_clients} clients", self.mode.name()));
        }
        if self.senders == 0 || self.senders > self.clients.min(MAX_SENDERS) {
            let flag = if self.mode == Mode::Soak { "--drawers" } else { "--senders" };
            return Err(format!("{flag} must be between 1 and --clients (and at most {MAX_SENDERS})"));
        }
        if durations.iter().any(|d| !(0.0..1e7).contains(d)) || !(self.max_secs > 0.0 && self.max_secs < 1e7) {
            return Err("durations must be finite and not negative, --max-secs positive".into());
        }
        if self.mode == Mode::Soak {
            if !(self.secs > 0.0 && self.secs < 1e7) {
                return Err("--minutes must be positive".into());
            }
            if !(self.sample_secs > 0.0 && self.sample_secs < 1e7) {
                return Err("--sample-secs must be positive".into());
            }
            if self.churn > self.clients {
                return Err("--churn-per-sec must be at most --clients".into());
            }
        }
        let several = matches!(self.mode, Mode::Fanout | Mode::Latency);
        if !several && (self.receive_urls.len() > 1 || self.server_pids.len() > 1) {
            return Err(format!("{} takes one --url and one --server-pid", self.mode.name()));
        }
        if self.receive_urls.iter().chain(&self.send_url).any(|url| url.is_empty()) {
            return Err("empty URL in --url or --send-url".into());
        }
        if self.png_kib > 8 * 1024 {
            return Err("--png-kib must be at most 8192 (the protocol's largest snapshot)".into());
        }
        if !self.sending() {
            return Ok(());
        }
        if !(self.rate > 0.0 && self.rate <= 1e6) {
            return Err("--rate must be a positive number of draws per second".into());
        }
        match self.senders * self.draws_per_sender() {
            0 => Err("nothing to send: raise --secs, --rate or --draws".into()),
            n if n > MAX_DRAWS => Err(format!("at most {MAX_DRAWS} draws per run")),
            _ => Ok(()),
        }
    }

    fn sending(&self) -> bool {
        matches!(self.mode, Mode::Fanout | Mode::Latency | Mode::Soak)
    }

    pub fn draws_per_sender(&self) -> usize {
        match self.mode {
            Mode::Latency => self.draws,
            Mode::Soak => (self.rate * self.secs).ceil() as usize + 1,
            _ => (self.rate * self.secs).round() as usize,
        }
    }

    /// Every URL this run connects to: `--send-url` (if given) first, then those of `--url`.
    pub fn all_urls(&self) -> impl Iterator<Item = &String> {
        self.send_url.iter().chain(&self.receive_urls)
    }

    /// Sockets this run holds at once.
    pub fn connections(&self) -> usize {
        match self.mode {
            Mode::Join => self.clients + 1,
            Mode::Soak => self.clients + 2 * self.churn,
            _ => self.clients,
        }
    }
}

/// `--name value` or `--name=value` pairs, checked against the subcommand's flags.
struct Flags(BTreeMap<String, String>);

impl Flags {
    fn parse(mode: Mode, args: &[String]) -> Result<Flags, String> {
        let mut values = BTreeMap::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let flag = arg.strip_prefix("--").ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name, value.to_string()),
                None => (flag, args.next().ok_or_else(|| format!("--{flag} needs a value"))?.clone()),
            };
            if !mode.flags().contains(&name) {
                return Err(format!("--{name} is not a flag of {}", mode.name()));
            }
            values.insert(name.to_string(), value);
        }
        Ok(Flags(values))
    }

    fn optional<T: FromStr>(&self, name: &str) -> Result<Option<T>, String>
    where
        T::Err: Display,
    {
        self.0.get(name).map(|raw| raw.parse().map_err(|err| format!("--{name} {raw:?}: {err}"))).transpose()
    }

    fn value<T: FromStr>(&self, name: &str, default: Option<T>) -> Result<T, String>
    where
        T::Err: Display,
    {
        self.optional(name)?.or(default).ok_or_else(|| format!("--{name} is required"))
    }
}

/// The socket address of a `ws://host[:port]/path` URL (port 80 by default).
pub fn resolve(url: &str) -> Result<SocketAddr, String> {
    let rest =
        url.strip_prefix("ws://").ok_or("--url and --send-url must start with ws:// (wss:// is not supported)")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let with_port = if authority.rsplit_once(':').is_some_and(|(_, port)| !port.ends_with(']')) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    with_port
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {authority}: {err}"))?
        .next()
        .ok_or_else(|| format!("{authority} has no address"))
}
