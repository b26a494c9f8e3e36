//! The server core's settings: [`ServerConfig`], its defaults and the checks of what must agree.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Settings of the server core: listener, limits, heartbeat and shutdown.
///
/// ```
/// use std::time::Duration;
/// use smolcanvas::ServerConfig;
///
/// let config = ServerConfig { handshake_timeout: Duration::ZERO, ..ServerConfig::default() };
/// // No client could ever finish its upgrade.
/// assert!(config.validate().unwrap_err().to_string().contains("handshake-timeout"));
/// ```
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Most WebSocket clients connected at once; further upgrades get 503.
    pub max_clients: usize,
    /// Most WebSocket clients from one IP address (0: no cap); further upgrades get 429.
    pub max_clients_per_ip: usize,
    /// Largest WebSocket message (and frame) accepted; larger ones close with 1009.
    pub max_message_bytes: usize,
    /// How often a ping is sent to each client.
    pub ping_interval: Duration,
    /// A client that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// Bound on reading the request head and completing the upgrade.
    pub handshake_timeout: Duration,
    /// How long a shutdown waits for clients to answer the close.
    pub shutdown_grace: Duration,
    /// Origins allowed besides the server's own host (exact `scheme://host[:port]`).
    pub allow_origins: Vec<String>,
    /// Executor threads.
    pub threads: usize,
    /// Certificate chain and key for TLS on the one port; plain TCP when `None`.
    pub tls: Option<TlsFiles>,
    /// When set, `/`, `/ws` and `/metrics` need this key (`/healthz` stays open).
    pub access_key: Option<String>,
}

/// Smallest `max_message_bytes`: every WebSocket control frame and any
/// useful text message fits.
pub const MIN_MESSAGE_BYTES: usize = 1024;
/// Most executor threads (more than a small machine has cores, many times over).
pub const MAX_THREADS: usize = 256;

impl Default for ServerConfig {
    /// The documented defaults (`smolcanvas --help` lists them).
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080)),
            max_clients: 10_000,
            max_clients_per_ip: 0,
            // A full 8 MiB board snapshot and its JSON around it.
            max_message_bytes: 8 * 1024 * 1024 + 1024,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            allow_origins: Vec::new(),
            threads: 1,
            tls: None,
            access_key: None,
        }
    }
}

impl ServerConfig {
    /// Checks what must hold: limits and timeouts above zero, origins in
    /// the form the `Origin` header has. (An idle timeout shorter than the
    /// ping interval is allowed: it closes every client that sends nothing
    /// of its own, which a deployment may want.)
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let invalid = |setting, problem: String| Err(InvalidConfig { setting, problem });
        for (setting, value) in [
            ("ping-interval", self.ping_interval),
            ("idle-timeout", self.idle_timeout),
            ("handshake-timeout", self.handshake_timeout),
        ] {
            if value.is_zero() {
                return invalid(setting, "must be longer than zero".into());
            }
        }
        if self.max_clients == 0 {
            return invalid("max-clients", "must be at least 1".into());
        }
        if self.max_message_bytes < MIN_MESSAGE_BYTES {
            return invalid("max-message-bytes", format!("must be at least {MIN_MESSAGE_BYTES}"));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return invalid("threads", format!("must be from 1 to {MAX_THREADS}"));
        }
        if let Some(bad) = self.allow_origins.iter().find(|origin| !origin_ok(origin)) {
            return invalid("allow-origin", format!("{bad:?} is not an origin like https://host or http://host:port"));
        }
        Ok(())
    }
}

/// Whether `origin` has the form of an `Origin` header: a scheme and a host, no path.
pub(crate) fn origin_ok(origin: &str) -> bool {
    (origin.starts_with("http://") || origin.starts_with("https://")) && !origin.ends_with('/')
}

/// The PEM files that switch the port to TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain (leaf first), PEM.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key: PathBuf,
}

/// Settings that do not agree with each other (or with the app's needs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidConfig {
    /// The setting at fault, as its flag is named (`max-message-bytes`).
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--{}: {}", self.setting, self.problem)
    }
}

impl std::error::Error for InvalidConfig {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn what_must_agree_is_checked() {
        let base = ServerConfig::default;
        assert_eq!(
            ServerConfig { idle_timeout: Duration::ZERO, ..base() }.validate().unwrap_err().setting,
            "idle-timeout"
        );
        assert_eq!(ServerConfig { max_clients: 0, ..base() }.validate().unwrap_err().setting, "max-clients");
        assert_eq!(ServerConfig { threads: 0, ..base() }.validate().unwrap_err().setting, "threads");
        let origins = vec!["evil.example".to_string()];
        assert_eq!(ServerConfig { allow_origins: origins, ..base() }.validate().unwrap_err().setting, "allow-origin");
    }
}
