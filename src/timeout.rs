//! A time bound on any future.

use std::future::Future;
use std::time::Duration;

use futures_lite::future::FutureExt;
use smol::Timer;

/// Waits for a future, at most `duration`; `None` if time ran out.
pub async fn timeout<T>(duration: Duration, fut: impl Future<Output = T>) -> Option<T> {
    async { Some(fut.await) }
        .or(async {
            Timer::after(duration).await;
            None
        })
        .await
}
