//! The server's `/metrics`, read over HTTP: one value, or a wait until it has a value.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::http::http_within;
use super::wait::WAIT;

/// The value of the unlabelled metric `name` in `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> u64 {
    metric_within(addr, name, WAIT).await
}

/// The value of the unlabelled metric `name` in `/metrics`, each step of the request bounded by `limit`.
pub async fn metric_within(addr: SocketAddr, name: &str, limit: Duration) -> u64 {
    let response = http_within(addr, &format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n"), limit).await;
    assert_eq!(response.status, 200);
    let text = response.text();
    let line = text.lines().find(|line| line.split(' ').next() == Some(name));
    let value = line.and_then(|line| line.split(' ').nth(1)).and_then(|v| v.parse().ok());
    value.unwrap_or_else(|| panic!("no metric {name} in /metrics"))
}

/// Polls `/metrics` until `name` has `value`, failing after [`WAIT`].
pub async fn wait_metric(addr: SocketAddr, name: &str, value: u64) {
    let start = Instant::now();
    loop {
        let now = metric(addr, name).await;
        if now == value {
            return;
        }
        assert!(start.elapsed() < WAIT, "{name} is {now}, still not {value} after {WAIT:?}");
        smol::Timer::after(Duration::from_millis(10)).await;
    }
}
