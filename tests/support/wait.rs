//! Bounded waits: a step that does not finish in time fails the test instead of hanging it.

use std::future::Future;
use std::time::Duration;

/// The longest any single step of a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// The output of `fut`, or `None` once `limit` has passed.
pub async fn timeout<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    let timer = async {
        smol::Timer::after(limit).await;
        None
    };
    futures_lite::future::or(async { Some(fut.await) }, timer).await
}

/// Waits for `fut`, failing the test after [`WAIT`].
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    bounded_by(WAIT, what, fut).await
}

/// Waits for `fut`, failing the test after `limit`.
pub async fn bounded_by<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match timeout(limit, fut).await {
        Some(value) => value,
        None => panic!("timed out after {limit:?} waiting for {what}"),
    }
}
