//! A one-shot signal that any number of tasks can wait for: shutdown, eviction.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use event_listener::{Event, EventListener};

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

    /// A future that completes once the wire is tripped and can be polled
    /// again and again (by `&mut`) without registering anew each time.
    pub fn listener(&self) -> TripListener {
        TripListener { wire: self.clone(), listener: None }
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

/// Completes once its [`Tripwire`] is tripped; see [`Tripwire::listener`].
#[derive(Debug)]
pub struct TripListener {
    wire: Tripwire,
    listener: Option<EventListener>,
}

impl Future for TripListener {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.wire.is_tripped() {
                return Poll::Ready(());
            }
            match self.listener.as_mut() {
                None => self.listener = Some(self.wire.inner.event.listen()),
                Some(listener) => {
                    if Pin::new(listener).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.listener = None;
                }
            }
        }
    }
}
