//! The store task: applies the hub's board changes on the blocking pool, in
//! order and in batches (whatever queued up while the last write ran becomes
//! one write), retries after a failure, and reports the data dir's health.
//!
//! A disk that fails does not stop the board: the hub keeps relaying, the
//! store keeps every change in its mirror, logs one error per kind of
//! failure (not one per flush), marks `/healthz` degraded (still 200, so a
//! supervisor does not restart the box in a loop) and `/metrics`, and
//! retries until the write works again.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_lite::future::FutureExt;
use log::{debug, error, info};
use smol::Timer;

use super::CanvasMetrics;
use super::board::{Store, StoreError, StoreOp};
use crate::metrics::add;

/// What `/healthz` says about the data dir.
#[derive(Debug, Default)]
pub struct StoreHealth {
    problem: Mutex<Option<String>>,
}

impl StoreHealth {
    /// `None` when the board is saved, else what is failing.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().map(|p| p.clone()).unwrap_or(None)
    }

    fn set(&self, problem: Option<String>) {
        if let Ok(mut slot) = self.problem.lock() {
            *slot = problem;
        }
    }
}

/// How often a failed write is retried: five flush intervals, 0.5 s to 30 s.
pub fn retry_interval(flush_interval: Duration) -> Duration {
    (flush_interval * 5).clamp(Duration::from_millis(500), Duration::from_secs(30))
}

/// Runs until the hub drops its end of `ops`.
pub async fn run(
    mut store: Store,
    ops: async_channel::Receiver<StoreOp>,
    metrics: &CanvasMetrics,
    health: &StoreHealth,
    retry_every: Duration,
) {
    let mut reported: Vec<&'static str> = Vec::new();
    // A store that starts dirty (its data dir could not be created) tries at once.
    let mut retry_now = store.is_dirty();
    loop {
        let next = if std::mem::take(&mut retry_now) {
            None
        } else if store.is_dirty() {
            async { Some(ops.recv().await) }
                .or(async {
                    Timer::after(retry_every).await;
                    None
                })
                .await
        } else {
            Some(ops.recv().await)
        };
        // Everything queued by now goes into one write.
        let mut batch = Vec::new();
        match next {
            Some(Ok(op)) => batch.push(op),
            Some(Err(_)) => return,
            None => {}
        }
        while let Ok(op) = ops.try_recv() {
            batch.push(op);
        }
        let was_dirty = store.is_dirty();
        let (back, result) = smol::unblock(move || {
            for op in batch {
                store.absorb(op);
            }
            let result = store.persist();
            (store, result)
        })
        .await;
        store = back;
        match result {
            Err(err) => on_error(&err, &mut reported, metrics, health, retry_every),
            Ok(()) if was_dirty && !store.is_dirty() => {
                info!("board store: writing works again; the board is saved");
                reported.clear();
                health.set(None);
                metrics.store_degraded.store(0, Ordering::Relaxed);
            }
            Ok(()) => {}
        }
    }
}

fn on_error(
    err: &StoreError,
    reported: &mut Vec<&'static str>,
    metrics: &CanvasMetrics,
    health: &StoreHealth,
    retry_every: Duration,
) {
    add(&metrics.store_errors, 1);
    metrics.store_degraded.store(1, Ordering::Relaxed);
    health.set(Some(format!("board not saved: {err}")));
    if reported.contains(&err.action) {
        debug!("board store: {err} (again)");
    } else {
        reported.push(err.action);
        error!(
            "board store: {err}; drawing goes on, the board is kept in memory and saving is retried every {retry_every:?}"
        );
    }
}
