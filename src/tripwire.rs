//! A one-shot signal that any number of tasks can wait for: shutdown, eviction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;

/// A flag that is tripped once and wakes everyone waiting for it.
///
/// Cloning is cheap and every clone sees the same flag.
///
/// ```
/// let wire = smolcanvas::Tripwire::new();
/// let waiter = wire.clone();
/// wire.trip();
/// smol::block_on(waiter.tripped()); // returns at once
/// assert!(waiter.is_tripped());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Tripwire {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    tripped: AtomicBool,
    event: Event,
}

impl Tripwire {
    /// A new, untripped wire.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trips the wire; returns `true` if this call was the one that tripped it.
    pub fn trip(&self) -> bool {
        let first = !self.inner.tripped.swap(true, Ordering::AcqRel);
        if first {
            self.inner.event.notify(usize::MAX);
        }
        first
    }

    /// Whether the wire has been tripped.
    pub fn is_tripped(&self) -> bool {
        self.inner.tripped.load(Ordering::Acquire)
    }

    /// Waits until the wire is tripped (at once if it already is).
    pub async fn tripped(&self) {
        loop {
            if self.is_tripped() {
                return;
            }
            let listener = self.inner.event.listen();
            if self.is_tripped() {
                return;
            }
            listener.await;
        }
    }
}
