//! Counters of the server core and their Prometheus text form.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an upgrade (or a request) was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// `max-clients` were connected: 503.
    MaxClients,
    /// The `Origin` header named a foreign site: 403.
    Origin,
    /// A malformed request or upgrade: 400, 426.
    BadRequest,
    /// The request head was larger than 8 KiB: 431.
    HeadTooLarge,
    /// The head or the upgrade did not complete in time.
    Timeout,
    /// A wrong or missing access key: 401.
    Unauthorized,
    /// `max-clients-per-ip` were connected from that address: 429.
    PerIp,
    /// The app refused the upgrade with a limit of its own (the canvas: the board limits): 503.
    AppLimit,
}

impl RejectReason {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [RejectReason; 8] = [
        RejectReason::MaxClients,
        RejectReason::Origin,
        RejectReason::BadRequest,
        RejectReason::HeadTooLarge,
        RejectReason::Timeout,
        RejectReason::Unauthorized,
        RejectReason::PerIp,
        RejectReason::AppLimit,
    ];

    /// The label value used in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::MaxClients => "max_clients",
            RejectReason::Origin => "origin",
            RejectReason::BadRequest => "bad_request",
            RejectReason::HeadTooLarge => "head_too_large",
            RejectReason::Timeout => "timeout",
            RejectReason::Unauthorized => "unauthorized",
            RejectReason::PerIp => "per_ip",
            RejectReason::AppLimit => "app_limit",
        }
    }
}

/// Counters kept by the server core; every field is safe to bump from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// WebSocket connections open now.
    pub connections_open: AtomicU64,
    /// WebSocket connections upgraded since start.
    pub connections_total: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    /// HTTP requests answered without an upgrade.
    pub http_requests: AtomicU64,
    /// Data messages received from clients.
    pub messages_in: AtomicU64,
    /// Payload bytes of those messages.
    pub bytes_in: AtomicU64,
    /// Data messages sent to clients.
    pub messages_out: AtomicU64,
    /// Payload bytes of those messages.
    pub bytes_out: AtomicU64,
    /// Clients closed for exceeding their rate limit (any kind of frame).
    pub rate_limited_closed: AtomicU64,
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Writes one metric in Prometheus text format.
pub fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
}

impl Metrics {
    /// Counts one turned-away request.
    pub fn reject(&self, reason: RejectReason) {
        add(&self.rejected[reason as usize], 1);
    }

    /// How many requests were turned away for `reason`.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason as usize].load(Ordering::Relaxed)
    }

    /// Appends the core's metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write_metric(
            out,
            "smolcanvas_connections_open",
            "gauge",
            "WebSocket connections open now.",
            get(&self.connections_open),
        );
        write_metric(
            out,
            "smolcanvas_connections_total",
            "counter",
            "WebSocket connections upgraded since start.",
            get(&self.connections_total),
        );
        out.push_str("# HELP smolcanvas_upgrades_rejected_total Requests turned away, by reason.\n# TYPE smolcanvas_upgrades_rejected_total counter\n");
        for reason in RejectReason::ALL {
            let _ = writeln!(
                out,
                "smolcanvas_upgrades_rejected_total{{reason=\"{}\"}} {}",
                reason.label(),
                self.rejected(reason)
            );
        }
        write_metric(
            out,
            "smolcanvas_http_requests_total",
            "counter",
            "Plain HTTP requests answered.",
            get(&self.http_requests),
        );
        write_metric(
            out,
            "smolcanvas_messages_in_total",
            "counter",
            "WebSocket data messages received.",
            get(&self.messages_in),
        );
        write_metric(out, "smolcanvas_bytes_in_total", "counter", "Payload bytes received.", get(&self.bytes_in));
        write_metric(
            out,
            "smolcanvas_messages_out_total",
            "counter",
            "WebSocket data messages sent.",
            get(&self.messages_out),
        );
        write_metric(out, "smolcanvas_bytes_out_total", "counter", "Payload bytes sent.", get(&self.bytes_out));
        write_metric(
            out,
            "smolcanvas_rate_limited_closed_total",
            "counter",
            "Clients closed for exceeding the rate limit.",
            get(&self.rate_limited_closed),
        );
        write_metric(
            out,
            "smolcanvas_log_lines_dropped_total",
            "counter",
            "Log lines that could not be written to stderr.",
            crate::logging::lines_dropped(),
        );
    }
}
