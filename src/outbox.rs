//! A client's outbox: a queue bounded in bytes, and the eviction of a client that reads too slowly.
//!
//! The sending side ([`Outbox`]) is held by whoever broadcasts (the canvas
//! hub); it never waits. When a push would take the queue past its byte limit
//! the push fails, and the broadcaster evicts that client: the connection
//! notices at once (even while it is stuck writing to a full socket), sends
//! close 1008 and ends. One slow reader never stalls the others.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use async_tungstenite::tungstenite::Message;

use crate::Tripwire;

struct Shared {
    queued_bytes: AtomicUsize,
    limit: usize,
    evicted: Tripwire,
    reason: OnceLock<&'static str>,
}

/// The sending side of a client's outbox.
#[derive(Clone)]
pub struct Outbox {
    tx: async_channel::Sender<Message>,
    shared: Arc<Shared>,
}

/// The receiving side, read by the client's connection task.
pub struct OutboxReceiver {
    rx: async_channel::Receiver<Message>,
    shared: Arc<Shared>,
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue holds too many bytes: the client reads too slowly.
    Full,
    /// The connection is gone.
    Closed,
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full => write!(f, "outbox full"),
            PushError::Closed => write!(f, "connection closed"),
        }
    }
}

impl std::error::Error for PushError {}

/// A new outbox that holds at most `limit_bytes` of payload.
///
/// One message larger than the limit is still accepted into an empty queue,
/// so a big snapshot can reach a client that keeps up.
pub fn outbox(limit_bytes: usize) -> (Outbox, OutboxReceiver) {
    let (tx, rx) = async_channel::unbounded();
    let shared = Arc::new(Shared {
        queued_bytes: AtomicUsize::new(0),
        limit: limit_bytes,
        evicted: Tripwire::new(),
        reason: OnceLock::new(),
    });
    (Outbox { tx, shared: shared.clone() }, OutboxReceiver { rx, shared })
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox").field("queued_bytes", &self.queued_bytes()).finish()
    }
}

impl Outbox {
    /// Queues `message` unless that would exceed the byte limit.
    ///
    /// Meant for one producer per outbox (the hub): the check and the add are
    /// not one atomic step.
    pub fn push(&self, message: Message) -> Result<(), PushError> {
        let size = message.len();
        let queued = self.shared.queued_bytes.load(Ordering::Acquire);
        if queued > 0 && queued + size > self.shared.limit {
            return Err(PushError::Full);
        }
        self.push_unbounded(message)
    }

    /// Queues `message` whatever the queue holds: for replies whose size the
    /// caller has bounded (the board replay to a newcomer).
    pub fn push_unbounded(&self, message: Message) -> Result<(), PushError> {
        let size = message.len();
        self.shared.queued_bytes.fetch_add(size, Ordering::AcqRel);
        self.tx.try_send(message).map_err(|_| {
            self.shared.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            PushError::Closed
        })
    }

    /// Closes the client with 1008 and `reason`, whatever it is doing.
    pub fn evict(&self, reason: &'static str) {
        let _ = self.shared.reason.set(reason);
        self.shared.evicted.trip();
    }

    /// Bytes waiting now.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Acquire)
    }
}

impl OutboxReceiver {
    fn taken(&self, message: Message) -> Message {
        self.shared.queued_bytes.fetch_sub(message.len(), Ordering::AcqRel);
        message
    }

    /// Waits for the next message; `None` once every [`Outbox`] is dropped.
    pub async fn recv(&self) -> Option<Message> {
        self.rx.recv().await.ok().map(|m| self.taken(m))
    }

    /// The next message if one is waiting.
    pub fn try_recv(&self) -> Option<Message> {
        self.rx.try_recv().ok().map(|m| self.taken(m))
    }

    /// Waits until the client is evicted.
    pub async fn evicted(&self) {
        self.shared.evicted.tripped().await
    }

    /// The eviction reason, once evicted.
    pub fn eviction_reason(&self) -> Option<&'static str> {
        self.shared.evicted.is_tripped().then(|| self.shared.reason.get().copied().unwrap_or("evicted"))
    }

    /// Bytes waiting now.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_bytes_but_one_big_message_fits() {
        let (tx, rx) = outbox(10);
        assert_eq!(tx.push(Message::text("123456")), Ok(()));
        assert_eq!(tx.push(Message::text("123456")), Err(PushError::Full));
        assert_eq!(rx.try_recv().map(|m| m.len()), Some(6));
        assert_eq!(tx.queued_bytes(), 0);
        assert_eq!(tx.push(Message::text("x".repeat(100))), Ok(()));
        assert_eq!(tx.push(Message::text("y")), Err(PushError::Full));
    }

    #[test]
    fn eviction_is_seen_by_the_receiver() {
        let (tx, rx) = outbox(10);
        assert_eq!(rx.eviction_reason(), None);
        tx.evict("too slow");
        smol::block_on(rx.evicted());
        assert_eq!(rx.eviction_reason(), Some("too slow"));
        drop(tx);
        assert!(smol::block_on(rx.recv()).is_none());
    }
}
