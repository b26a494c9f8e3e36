//! Command-line flags and `SMOLCANVAS_*` environment variables into configurations, for binaries.
//!
//! A binary picks the flag sets it accepts: [`CORE`] (the server core's
//! flags and `--log-level`) for any app, plus [`CANVAS`] for the drawing
//! board; `--help` lists just those. A flag on the command line wins over
//! the environment variable of the same name (`--max-clients` and
//! `SMOLCANVAS_MAX_CLIENTS`). Durations are seconds and may be decimals
//! (`--ping-interval 0.5`). `--allow-origin` may be given several times; its
//! environment variable takes a comma-separated list. Settings of a set the
//! binary does not accept keep their defaults.
//!
//! ```
//! use smolcanvas::flags::{self, Command};
//!
//! let args = ["--listen", "127.0.0.1:9000"].map(String::from);
//! let Ok(Command::Run(config)) = flags::parse(&[flags::CORE], args, |_| None) else { panic!() };
//! assert_eq!(config.server.listen.port(), 9000);
//! assert!(flags::parse(&[flags::CORE], ["--data-dir".to_string(), "x".to_string()], |_| None).is_err());
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use log::LevelFilter;

use crate::canvas::{CanvasConfig, SyncMode};
use crate::config::{ServerConfig, TlsFiles, origin_ok};

/// Everything a binary can be told.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server core's settings.
    pub server: ServerConfig,
    /// The canvas application's settings.
    pub canvas: CanvasConfig,
    /// Log level of the whole process.
    pub log_level: LevelFilter,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run with this configuration.
    Run(Box<Config>),
    /// Print this help text and exit.
    Help(String),
    /// Print the version and exit.
    Version,
}

/// A flag or environment value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagError {
    /// A flag that does not exist.
    UnknownFlag(String),
    /// A flag given without its value.
    MissingValue(&'static str),
    /// One flag of a pair that must come together.
    Unpaired {
        /// The flag given.
        given: &'static str,
        /// The flag missing.
        missing: &'static str,
    },
    /// A value that does not parse or is out of range.
    Invalid {
        /// The flag (`--ping-interval`).
        flag: &'static str,
        /// The environment variable the value came from, if not from the command line.
        env: Option<String>,
        /// The value as given.
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagError::UnknownFlag(flag) => write!(f, "unknown flag {flag} (see --help)"),
            FlagError::MissingValue(flag) => write!(f, "--{flag} needs a value"),
            FlagError::Unpaired { given, missing } => write!(f, "--{given} needs --{missing} too"),
            FlagError::Invalid { flag, env: None, value, expected } => {
                write!(f, "invalid value {value:?} for --{flag}: expected {expected}")
            }
            FlagError::Invalid { env: Some(env), value, expected, .. } => {
                write!(f, "invalid value {value:?} for {env}: expected {expected}")
            }
        }
    }
}

impl std::error::Error for FlagError {}

/// One flag: its name, what its value looks like, its default and its help line.
#[derive(Debug)]
pub struct Flag {
    name: &'static str,
    metavar: &'static str,
    default: &'static str,
    help: &'static str,
}

/// The server core's flags, and `--log-level`.
pub const CORE: &[Flag] = &[
    Flag {
        name: "listen",
        metavar: "ADDR",
        default: "0.0.0.0:8080",
        help: "IP:PORT, [::]:PORT, localhost:PORT (127.0.0.1), or PORT alone (0.0.0.0:PORT)",
    },
    Flag { name: "max-clients", metavar: "N", default: "10000", help: "most WebSocket clients at once (more get 503)" },
    Flag {
        name: "max-clients-per-ip",
        metavar: "N",
        default: "0",
        help: "most clients from one address, 0 = no cap (more get 429)",
    },
    Flag {
        name: "max-message-bytes",
        metavar: "N",
        default: "8389632",
        help: "largest WebSocket message (8 MiB snapshot + 1 KiB)",
    },
    Flag { name: "ping-interval", metavar: "SECS", default: "20", help: "seconds between pings to each client" },
    Flag { name: "idle-timeout", metavar: "SECS", default: "60", help: "close a client silent for this long" },
    Flag { name: "handshake-timeout", metavar: "SECS", default: "10", help: "bound on request head + upgrade" },
    Flag { name: "shutdown-grace", metavar: "SECS", default: "5", help: "wait this long for clients at shutdown" },
    Flag {
        name: "allow-origin",
        metavar: "ORIGIN",
        default: "",
        help: "extra allowed Origin, repeatable (e.g. https://draw.example.org)",
    },
    Flag { name: "tls-cert", metavar: "FILE", default: "", help: "PEM certificate chain: serve https:// and wss://" },
    Flag { name: "tls-key", metavar: "FILE", default: "", help: "PEM private key for --tls-cert" },
    Flag {
        name: "access-key",
        metavar: "KEY",
        default: "",
        help: "require this key for the page, /ws and /metrics (prefer the env var)",
    },
    Flag { name: "threads", metavar: "N", default: "1", help: "executor threads" },
    Flag {
        name: "log-level",
        metavar: "LEVEL",
        default: "info",
        help: "off, error, warn, info, debug or trace (also RUST_LOG)",
    },
];

/// The drawing board's flags.
pub const CANVAS: &[Flag] = &[
    Flag { name: "data-dir", metavar: "DIR", default: "./smolcanvas-data", help: "where the board is kept" },
    Flag { name: "sync-timeout", metavar: "SECS", default: "2", help: "time a peer has to answer a canvasRequest" },
    Flag { name: "flush-interval", metavar: "SECS", default: "1", help: "how often new strokes are written to disk" },
    Flag { name: "max-snapshot-bytes", metavar: "N", default: "8388608", help: "largest canvasState data URL" },
    Flag { name: "max-snapshot-uploads", metavar: "N", default: "8", help: "peers that may send a snapshot at once" },
    Flag { name: "rate-limit", metavar: "N", default: "1000", help: "draws per second per client (sustained)" },
    Flag { name: "rate-burst", metavar: "N", default: "2000", help: "draws per client in a burst" },
    Flag {
        name: "outbox-bytes",
        metavar: "N",
        default: "1048576",
        help: "queued bytes before a slow client is closed",
    },
    Flag {
        name: "sync",
        metavar: "MODE",
        default: "server",
        help: "who answers a v1 newcomer's sync: server (its own picture) or peers",
    },
    Flag { name: "undo-strokes", metavar: "N", default: "500", help: "newest strokes per board that can be undone" },
    Flag { name: "max-boards", metavar: "N", default: "1000", help: "boards that may exist (more get 503)" },
    Flag { name: "max-loaded-boards", metavar: "N", default: "32", help: "boards held in memory at once" },
    Flag {
        name: "board-unload-secs",
        metavar: "SECS",
        default: "60",
        help: "unload a board this long after its last client left",
    },
    Flag {
        name: "redis",
        metavar: "URL",
        default: "",
        help: "share the boards with other servers through this Redis (redis://HOST:PORT/; needs the redis build feature)",
    },
    Flag {
        name: "redis-append-batch",
        metavar: "N",
        default: "256",
        help: "with --redis: a board's operations appended in one round trip, at most (1: one at a time)",
    },
    Flag {
        name: "redis-keep-secs",
        metavar: "SECS",
        default: "60",
        help: "with --redis: how long stream entries stay after a snapshot holds them, for servers behind",
    },
];

fn env_name(flag: &str) -> String {
    format!("SMOLCANVAS_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

/// Every flag of `sets`.
fn all(sets: &[&'static [Flag]]) -> impl Iterator<Item = &'static Flag> {
    sets.iter().flat_map(|set| set.iter())
}

/// The `--help` text of a binary that accepts `sets`: every flag, its
/// environment variable and default.
pub fn help_text(program: &str, about: &str, sets: &[&'static [Flag]]) -> String {
    let mut out = format!(
        "{program} {}\n{about}\n\nUsage: {program} [FLAGS]\n\nFlags (each also read from its environment variable; the flag wins):\n",
        env!("CARGO_PKG_VERSION")
    );
    for flag in all(sets) {
        let left = format!("--{} {}", flag.name, flag.metavar);
        let default = if flag.default.is_empty() { String::new() } else { format!(" [default: {}]", flag.default) };
        out.push_str(&format!("  {left:<28} {}{default}\n  {:<28} env {}\n", flag.help, "", env_name(flag.name)));
    }
    out.push_str("  --help                       print this text\n  --version                    print the version\n");
    out
}

/// What a flag was given: its values, and the environment variable they came from.
struct Given {
    values: Vec<String>,
    /// `None` when given on the command line.
    env: Option<String>,
}

/// Raw values by flag name, the command line over the environment.
struct Values(HashMap<&'static str, Given>);

impl Values {
    fn collect(
        sets: &[&'static [Flag]],
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Result<Values, Command>, FlagError> {
        let mut from_env = HashMap::new();
        for flag in all(sets) {
            let name = env_name(flag.name);
            if let Some(value) = env(&name) {
                let values = if flag.name == "allow-origin" {
                    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
                } else {
                    vec![value]
                };
                from_env.insert(flag.name, Given { values, env: Some(name) });
            }
        }
        if !from_env.contains_key("log-level")
            && let Some(value) = env("RUST_LOG")
        {
            from_env.insert("log-level", Given { values: vec![value], env: Some("RUST_LOG".to_string()) });
        }
        let mut from_args: HashMap<&'static str, Given> = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--help" | "-h" => return Ok(Err(Command::Help(String::new()))),
                "--version" | "-V" => return Ok(Err(Command::Version)),
                _ => {}
            }
            let Some(body) = arg.strip_prefix("--") else {
                return Err(FlagError::UnknownFlag(arg));
            };
            let (name, inline) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (body, None),
            };
            let flag = all(sets).find(|f| f.name == name).ok_or_else(|| FlagError::UnknownFlag(arg.clone()))?;
            let value = match inline {
                Some(value) => value,
                None => args.next().ok_or(FlagError::MissingValue(flag.name))?,
            };
            from_args.entry(flag.name).or_insert(Given { values: Vec::new(), env: None }).values.push(value);
        }
        from_env.extend(from_args);
        Ok(Ok(Values(from_env)))
    }

    fn raw(&self, name: &'static str) -> String {
        match self.0.get(name).and_then(|given| given.values.last()) {
            Some(value) => value.clone(),
            None => all(&[CORE, CANVAS]).find(|f| f.name == name).map(|f| f.default.to_string()).unwrap_or_default(),
        }
    }

    /// Every value given for `name` (a repeatable flag), none by default.
    fn all(&self, name: &'static str) -> Vec<String> {
        self.0.get(name).map(|given| given.values.clone()).unwrap_or_default()
    }

    /// The error for `value` of flag `name`, naming the environment variable if it came from one.
    fn invalid(&self, name: &'static str, value: String, expected: &'static str) -> FlagError {
        let env = self.0.get(name).and_then(|given| given.env.clone());
        FlagError::Invalid { flag: name, env, value, expected }
    }

    fn parse<T: std::str::FromStr>(
        &self,
        name: &'static str,
        expected: &'static str,
        ok: impl Fn(&T) -> bool,
    ) -> Result<T, FlagError> {
        let value = self.raw(name);
        match value.trim().parse::<T>() {
            Ok(parsed) if ok(&parsed) => Ok(parsed),
            _ => Err(self.invalid(name, value, expected)),
        }
    }

    fn count(&self, name: &'static str) -> Result<usize, FlagError> {
        self.parse(name, "a whole number above 0", |n: &usize| *n > 0)
    }

    fn rate(&self, name: &'static str) -> Result<f64, FlagError> {
        self.parse(name, "a number above 0", |n: &f64| n.is_finite() && *n > 0.0)
    }

    fn seconds(&self, name: &'static str) -> Result<Duration, FlagError> {
        let secs = self.parse(name, "seconds, a number between 0.001 and 31536000", |n: &f64| {
            n.is_finite() && (0.001..=31_536_000.0).contains(n)
        })?;
        Ok(Duration::from_secs_f64(secs))
    }
}

/// `--listen` as people write it: an IP address and port (`0.0.0.0:8080`,
/// `[::]:8080`), `localhost:PORT` (127.0.0.1, without asking a resolver),
/// or a port alone, bare or after a colon (`8080`, `:8080`: every IPv4
/// interface, like the default).
fn parse_listen(value: &str) -> Option<SocketAddr> {
    let value = value.trim();
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Some(addr);
    }
    let port = |text: &str| text.bytes().all(|b| b.is_ascii_digit()).then(|| text.parse::<u16>().ok()).flatten();
    let (host, port) = match value.rsplit_once(':') {
        Some((host, text)) => (host, port(text)?),
        None => ("", port(value)?),
    };
    let ip = match host {
        "" => Ipv4Addr::UNSPECIFIED,
        host if host.eq_ignore_ascii_case("localhost") => Ipv4Addr::LOCALHOST,
        _ => return None,
    };
    Some(SocketAddr::from((ip, port)))
}

fn listen(values: &Values) -> Result<SocketAddr, FlagError> {
    let value = values.raw("listen");
    parse_listen(&value).ok_or_else(|| {
        values.invalid("listen", value, "IP:PORT ([::]:PORT for IPv6), localhost:PORT, or a port (8080 or :8080)")
    })
}

fn parse_level(value: &str) -> Option<LevelFilter> {
    // RUST_LOG may hold `target=level` directives: take the first bare level.
    value.split(',').find(|part| !part.contains('=')).unwrap_or(value).trim().parse().ok()
}

fn access_key(values: &Values) -> Result<Option<String>, FlagError> {
    let key = values.raw("access-key");
    let url_safe = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    match key.len() {
        0 => Ok(None),
        1..=256 if key.bytes().all(url_safe) => Ok(Some(key)),
        _ => Err(values.invalid("access-key", "(hidden)".to_string(), "1 to 256 characters from A-Z a-z 0-9 - . _ ~")),
    }
}

fn tls_files(values: &Values) -> Result<Option<TlsFiles>, FlagError> {
    let (cert, key) = (values.raw("tls-cert"), values.raw("tls-key"));
    match (cert.is_empty(), key.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Ok(Some(TlsFiles { cert: cert.into(), key: key.into() })),
        (false, true) => Err(FlagError::Unpaired { given: "tls-cert", missing: "tls-key" }),
        (true, false) => Err(FlagError::Unpaired { given: "tls-key", missing: "tls-cert" }),
    }
}

/// Reads the process's arguments (without the program name) and
/// environment, accepting the flags of `sets`.
pub fn from_env_and_args(
    sets: &[&'static [Flag]],
    args: impl IntoIterator<Item = String>,
) -> Result<Command, FlagError> {
    parse(sets, args, |name| std::env::var(name).ok())
}

/// Reads `args` (without the program name) and the environment through
/// `env`, accepting the flags of `sets`.
pub fn parse(
    sets: &[&'static [Flag]],
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, FlagError> {
    Config::read(sets, args, env)
}

impl Config {
    fn read(
        sets: &[&'static [Flag]],
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Command, FlagError> {
        let values = match Values::collect(sets, args, env)? {
            Ok(values) => values,
            Err(command) => return Ok(command),
        };
        let allow_origins = values.all("allow-origin");
        if let Some(bad) = allow_origins.iter().find(|o| !origin_ok(o)) {
            return Err(values.invalid("allow-origin", bad.clone(), "an origin like https://host or http://host:port"));
        }
        let level = values.raw("log-level");
        let log_level = match parse_level(&level) {
            Some(log_level) => log_level,
            None => return Err(values.invalid("log-level", level, "off, error, warn, info, debug or trace")),
        };
        let server = ServerConfig {
            listen: listen(&values)?,
            max_clients: values.count("max-clients")?,
            max_clients_per_ip: values.parse("max-clients-per-ip", "a whole number (0: no cap)", |_: &usize| true)?,
            max_message_bytes: values
                .parse("max-message-bytes", "a number of bytes, at least 1024", |n: &usize| *n >= 1024)?,
            ping_interval: values.seconds("ping-interval")?,
            idle_timeout: values.seconds("idle-timeout")?,
            handshake_timeout: values.seconds("handshake-timeout")?,
            shutdown_grace: values.seconds("shutdown-grace")?,
            allow_origins,
            threads: values.parse("threads", "a number of threads from 1 to 256", |n: &usize| (1..=256).contains(n))?,
            tls: tls_files(&values)?,
            access_key: access_key(&values)?,
        };
        let canvas = CanvasConfig {
            data_dir: PathBuf::from(values.raw("data-dir")),
            sync_timeout: values.seconds("sync-timeout")?,
            flush_interval: values.seconds("flush-interval")?,
            max_snapshot_bytes: values.count("max-snapshot-bytes")?,
            rate_limit: values.rate("rate-limit")?,
            rate_burst: values.parse("rate-burst", "a number, at least 1", |n: &f64| n.is_finite() && *n >= 1.0)?,
            outbox_bytes: values.parse("outbox-bytes", "a number of bytes, at least 1024", |n: &usize| *n >= 1024)?,
            max_snapshot_uploads: values.count("max-snapshot-uploads")?,
            sync: values.parse("sync", "server or peers", |_: &SyncMode| true)?,
            undo_strokes: values.count("undo-strokes")?,
            max_boards: values.count("max-boards")?,
            max_loaded_boards: values.count("max-loaded-boards")?,
            board_unload: values.seconds("board-unload-secs")?,
            redis: redis_url(&values)?,
            redis_append_batch: values.count("redis-append-batch")?,
            redis_keep: values.seconds("redis-keep-secs")?,
        };
        if canvas.redis.is_some() && canvas.sync == SyncMode::Peers {
            // Before anything connects: a usage error is exit 2 whatever Redis does.
            return Err(values.invalid(
                "sync",
                "peers".into(),
                "server: --sync peers cannot be combined with --redis (shared boards sync from the servers' picture)",
            ));
        }
        Ok(Command::Run(Box::new(Config { server, canvas, log_level })))
    }
}

/// `--redis`: empty for none; a `redis://` URL (or `redis+unix://`, `unix://` for a socket
/// file), in a build with the `redis` feature. TLS (`rediss://`) is not built in: put Redis on a
/// private network, or reach it through a TLS tunnel.
fn redis_url(values: &Values) -> Result<Option<String>, FlagError> {
    let url = values.raw("redis");
    if url.is_empty() {
        return Ok(None);
    }
    if !cfg!(feature = "redis") {
        return Err(values.invalid(
            "redis",
            url,
            "a build with Redis support (cargo build --release --features redis)",
        ));
    }
    if !["redis://", "redis+unix://", "unix://"].iter().any(|scheme| url.starts_with(scheme)) {
        let expected = "a URL like redis://127.0.0.1:6379/ or redis+unix:///run/redis/redis.sock (no TLS: rediss:// is not built in)";
        return Err(values.invalid("redis", url, expected));
    }
    Ok(Some(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Command, FlagError> {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        super::parse(&[CORE, CANVAS], args.iter().map(|s| s.to_string()), |name| env.get(name).cloned())
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse(args, env) {
            Ok(Command::Run(config)) => *config,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    #[test]
    fn the_flag_defaults_are_the_configurations_defaults() {
        let config = run(&[], &[]);
        assert_eq!(format!("{:?}", config.server), format!("{:?}", ServerConfig::default()));
        assert_eq!(format!("{:?}", config.canvas), format!("{:?}", CanvasConfig::default()));
        assert_eq!(config.log_level, LevelFilter::Info);
        assert_eq!(config.server.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.canvas.data_dir, PathBuf::from("./smolcanvas-data"));
    }

    #[test]
    fn a_binary_accepts_and_lists_only_the_sets_it_names() {
        let core_only = |args: &[&str]| super::parse(&[CORE], args.iter().map(|s| s.to_string()), |_| None);
        assert!(matches!(core_only(&["--data-dir", "x"]), Err(FlagError::UnknownFlag(_))));
        assert!(matches!(core_only(&["--max-clients", "5"]), Ok(Command::Run(_))));
        let help = help_text("echo", "An echo server.", &[CORE]);
        assert!(help.contains("--max-clients") && !help.contains("--data-dir"), "{help}");
    }

    #[test]
    fn flag_wins_over_environment() {
        let config =
            run(&["--max-clients", "7"], &[("SMOLCANVAS_MAX_CLIENTS", "9"), ("SMOLCANVAS_IDLE_TIMEOUT", "1.5")]);
        assert_eq!(config.server.max_clients, 7);
        assert_eq!(config.server.idle_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn repeatable_origins_and_equals_form() {
        let config = run(&["--allow-origin=https://a.example", "--allow-origin", "http://b.example:8080"], &[]);
        assert_eq!(config.server.allow_origins, vec!["https://a.example", "http://b.example:8080"]);
        let config = run(&[], &[("SMOLCANVAS_ALLOW_ORIGIN", "https://a.example, https://c.example")]);
        assert_eq!(config.server.allow_origins.len(), 2);
    }

    #[test]
    fn bad_values_are_named() {
        let err = parse(&["--ping-interval", "soon"], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"soon\" for --ping-interval: expected seconds, a number between 0.001 and 31536000"
        );
        assert!(matches!(parse(&["--nope"], &[]), Err(FlagError::UnknownFlag(_))));
        assert_eq!(parse(&["--listen"], &[]).unwrap_err(), FlagError::MissingValue("listen"));
        assert!(parse(&["--max-clients", "0"], &[]).is_err());
        assert!(parse(&["--allow-origin", "evil.example"], &[]).is_err());
        assert_eq!(
            parse(&["--tls-cert", "cert.pem"], &[]).unwrap_err(),
            FlagError::Unpaired { given: "tls-cert", missing: "tls-key" }
        );
        let config = run(&["--tls-cert", "c.pem", "--tls-key", "k.pem"], &[]);
        assert_eq!(config.server.tls, Some(TlsFiles { cert: "c.pem".into(), key: "k.pem".into() }));
    }

    #[test]
    fn listen_takes_a_port_alone_and_localhost() {
        let listen = |value: &str| run(&["--listen", value], &[]).server.listen;
        assert_eq!(listen("8080"), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(listen(":8080"), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(listen("localhost:8080"), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(listen("LocalHost:0"), "127.0.0.1:0".parse().unwrap());
        assert_eq!(listen("192.168.1.5:80"), "192.168.1.5:80".parse().unwrap());
        assert_eq!(listen("[::]:8080"), "[::]:8080".parse().unwrap());
        assert_eq!(listen(" 9000 "), "0.0.0.0:9000".parse().unwrap());
        for bad in ["x", "", ":", "65536", ":-1", "+80", "localhost", "0.0.0.0", "example.org:80", "[::1]", "::8080"] {
            let err = parse(&["--listen", bad], &[]).unwrap_err();
            assert!(matches!(err, FlagError::Invalid { flag: "listen", env: None, .. }), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let err = parse(&[], &[("SMOLCANVAS_LISTEN", "x")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"x\" for SMOLCANVAS_LISTEN: expected IP:PORT ([::]:PORT for IPv6), localhost:PORT, or a port (8080 or :8080)"
        );
        let err = parse(&["--listen", "x"], &[]).unwrap_err();
        assert!(err.to_string().starts_with("invalid value \"x\" for --listen: "), "{err}");
        // The flag wins, and so does its name in the error.
        let err = parse(&["--listen", "y"], &[("SMOLCANVAS_LISTEN", "8080")]).unwrap_err();
        assert!(err.to_string().contains("for --listen:"), "{err}");
        let err = parse(&[], &[("SMOLCANVAS_PING_INTERVAL", "soon")]).unwrap_err();
        assert!(err.to_string().contains("\"soon\" for SMOLCANVAS_PING_INTERVAL:"), "{err}");
        let err = parse(&[], &[("RUST_LOG", "loud")]).unwrap_err();
        assert!(err.to_string().contains("\"loud\" for RUST_LOG:"), "{err}");
        let err = parse(&[], &[("SMOLCANVAS_ALLOW_ORIGIN", "evil.example")]).unwrap_err();
        assert!(err.to_string().contains("for SMOLCANVAS_ALLOW_ORIGIN:"), "{err}");
        let err = parse(&[], &[("SMOLCANVAS_ACCESS_KEY", "not a key")]).unwrap_err();
        assert!(err.to_string().contains("\"(hidden)\" for SMOLCANVAS_ACCESS_KEY:"), "{err}");
    }

    #[test]
    fn log_level_from_rust_log() {
        assert_eq!(run(&[], &[("RUST_LOG", "debug")]).log_level, LevelFilter::Debug);
        assert_eq!(run(&["--log-level", "warn"], &[("RUST_LOG", "debug")]).log_level, LevelFilter::Warn);
    }

    #[test]
    fn help_lists_every_flag_and_default() {
        let help = help_text("smolcanvas", "A drawing board.", &[CORE, CANVAS]);
        for flag in all(&[CORE, CANVAS]) {
            assert!(help.contains(&format!("--{}", flag.name)), "{}", flag.name);
            assert!(help.contains(&env_name(flag.name)));
        }
        assert!(help.contains("[default: 0.0.0.0:8080]"));
    }

    #[test]
    fn redis_needs_the_feature_and_a_plain_url() {
        let refused =
            |url: &str| matches!(parse(&["--redis", url], &[]), Err(FlagError::Invalid { flag: "redis", .. }));
        if cfg!(feature = "redis") {
            assert_eq!(
                run(&["--redis", "redis://127.0.0.1:6379/"], &[]).canvas.redis.as_deref(),
                Some("redis://127.0.0.1:6379/")
            );
            assert!(refused("rediss://127.0.0.1:6380/"), "TLS to Redis is not built in");
            assert!(refused("127.0.0.1:6379"));
        } else {
            assert!(refused("redis://127.0.0.1:6379/"), "a build without the feature refuses --redis");
        }
        assert_eq!(run(&[], &[]).canvas.redis, None);
        let peers = parse(&["--redis", "redis://127.0.0.1:6379/", "--sync", "peers"], &[]);
        assert!(matches!(peers, Err(FlagError::Invalid { .. })), "--sync peers with --redis: {peers:?}");
    }
}
