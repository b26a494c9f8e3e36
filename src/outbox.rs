//! A client's outbox: a queue bounded in bytes, and the eviction of a client that reads too slowly.
//!
//! The sending side ([`Outbox`]) is held by whoever broadcasts (the canvas
//! hub); it never waits. When a push would take the queue past its byte limit
//! the push fails, and the broadcaster evicts that client: the connection
//! notices at once (even while it is stuck writing to a full socket), sends
//! close 1008 and ends. One slow reader never stalls the others.
//!
//! It is a single-producer, single-consumer queue: a `VecDeque` behind a
//! mutex that neither side holds across an await (uncontended, a few
//! nanoseconds), and an `AtomicWaker` for the one receiver. Waiting costs no
//! allocation, and an idle outbox gives its buffer back.
//!
//! # Broadcasts straight to the socket
//!
//! A broadcaster that sends the same text to many clients frames it once
//! ([`PreparedFrame`]) and calls [`Outbox::push_frame`] per client. Once the
//! client's connection task delivers this outbox over plain TCP, it attaches
//! its socket ([`Wire`]); from then on, when nothing is queued and the task
//! holds nothing it took from the queue and has not written yet, the push
//! writes the frame to the socket itself with one non-blocking send, from
//! the broadcaster's task: no queue slot, no task wake-up, no framing per
//! client. Whatever the socket refuses is queued exactly as a plain
//! [`Outbox::push`] would (same byte bound, same `Full`, same eviction), and
//! the task writes it; the tail of a frame the socket took only part of
//! stays in the wire and goes out first. The queue state below decides who
//! may write, under the queue's lock:
//!
//! - `task_writing`: the connection task took messages from the queue and
//!   has not finished writing them (set by taking, cleared by
//!   [`OutboxReceiver::release`] once the queue is empty and all is
//!   flushed). Direct sends would overtake them, so pushes queue.
//! - `flush`: a direct send left a frame's tail in the wire; the task is
//!   woken to flush it ([`Outgoing::Flush`]), and pushes queue meanwhile.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::Message;
use atomic_waker::AtomicWaker;

use crate::Tripwire;
use crate::metrics::{Metrics, add};
use crate::wire::{Direct, PreparedFrame, Wire};

/// Slots an empty queue may keep allocated.
const IDLE_CAPACITY: usize = 4;

#[derive(Default)]
struct Queue {
    items: VecDeque<Entry>,
    /// Bytes of the queued messages that count against the limit.
    bytes: usize,
    /// Queued messages that do not.
    exempt: usize,
    closed: bool,
    /// The connection's socket and counters, for direct sends (plain TCP,
    /// attached by the connection task). Weak: the socket closes with its
    /// connection, not with the last outbox.
    direct: Option<(Weak<Wire>, Arc<Metrics>)>,
    /// The connection task took messages and has not finished writing them.
    task_writing: bool,
    /// A direct send left a frame's tail in the wire for the task to flush.
    flush: bool,
}

/// What the connection task is handed: a queued message, or the order to
/// flush the tail of a frame a direct send could not finish.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A queued message.
    Message(Message),
    /// Nothing queued, but the socket owes the tail of a direct send.
    Flush,
}

struct Entry {
    message: Message,
    /// Whether its bytes count against the limit.
    counted: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    waker: AtomicWaker,
    limit: usize,
    evicted: Tripwire,
    reason: OnceLock<&'static str>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // No code panics while holding the lock, so it is never poisoned; if
        // it were, the queue itself is still consistent.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The sending side of a client's outbox. Dropping it ends the client's session.
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving side, read by the client's connection task.
pub struct OutboxReceiver {
    shared: Arc<Shared>,
}

/// Why a push was refused; the message comes back with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// The queue holds too many bytes: the client reads too slowly.
    Full(Message),
    /// The connection is gone (or evicted).
    Closed(Message),
}

impl PushError {
    /// The message that was not queued.
    pub fn into_inner(self) -> Message {
        match self {
            PushError::Full(message) | PushError::Closed(message) => message,
        }
    }
}

/// The connection is over: nothing more can be sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionClosed;

impl fmt::Display for ConnectionClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection closed")
    }
}

impl std::error::Error for ConnectionClosed {}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => write!(f, "outbox full"),
            PushError::Closed(_) => write!(f, "connection closed"),
        }
    }
}

impl std::error::Error for PushError {}

impl Outbox {
    /// A new outbox that holds at most `limit_bytes` of payload: the sending
    /// side for the broadcaster, the receiving side for the client's
    /// [`Connection::next`](crate::Connection::next).
    ///
    /// One message larger than the limit is still accepted into an empty queue,
    /// so a big message can reach a client that keeps up.
    ///
    /// ```
    /// use smolcanvas::{Message, Outbox, PushError};
    ///
    /// let (outbox, receiver) = Outbox::bounded(10);
    /// outbox.push(Message::text("123456")).unwrap();
    /// // A client that does not read is found out, and the message handed back.
    /// assert_eq!(outbox.push(Message::text("789012")), Err(PushError::Full(Message::text("789012"))));
    /// assert_eq!(receiver.try_recv(), Some(Message::text("123456")));
    /// outbox.evict("too slow");
    /// assert_eq!(receiver.eviction_reason(), Some("too slow"));
    /// assert!(matches!(outbox.push(Message::text("late")), Err(PushError::Closed(_))));
    /// ```
    pub fn bounded(limit_bytes: usize) -> (Outbox, OutboxReceiver) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            waker: AtomicWaker::new(),
            limit: limit_bytes,
            evicted: Tripwire::new(),
            reason: OnceLock::new(),
        });
        (Outbox { shared: shared.clone() }, OutboxReceiver { shared })
    }
}

impl fmt::Debug for OutboxReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxReceiver").field("queued_bytes", &self.queued_bytes()).finish()
    }
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox").field("queued_bytes", &self.queued_bytes()).finish()
    }
}

impl Outbox {
    /// Queues `message` unless that would exceed the byte limit.
    pub fn push(&self, message: Message) -> Result<(), PushError> {
        self.enqueue(message, true)
    }

    /// Sends a prepared broadcast frame: straight to the client's socket
    /// when nothing is waiting to be written before it, otherwise queued
    /// like [`Outbox::push`] (and refused the same way: `Full` when the queue
    /// holds too many bytes, `Closed` when the connection is gone).
    ///
    /// A direct send costs one non-blocking `send` on the caller's task and
    /// never blocks; what the socket does not take is written by the
    /// client's own task. Messages larger than one frame, TLS connections
    /// and connections whose task has not yet started delivering this outbox
    /// always queue.
    pub(crate) fn push_frame(&self, frame: &PreparedFrame) -> Result<(), PushError> {
        let mut queue = self.shared.queue();
        if queue.closed {
            return Err(PushError::Closed(frame.message()));
        }
        if queue.items.is_empty()
            && !queue.task_writing
            && !queue.flush
            && let (Some((wire, metrics)), Some(bytes)) = (&queue.direct, frame.bytes())
            && let Some(wire) = wire.upgrade()
        {
            let sent = wire.try_send(bytes);
            if sent != Direct::NotSent {
                add(&metrics.messages_out, 1);
                add(&metrics.bytes_out, frame.len() as u64);
                if sent == Direct::Partial {
                    queue.flush = true;
                    drop(queue);
                    self.shared.waker.wake();
                }
                return Ok(());
            }
        }
        self.enqueue_locked(queue, frame.message(), true)
    }

    /// Queues `messages`, together and whatever the queue holds, without
    /// counting them against the byte limit: for replies whose size the
    /// caller bounds itself (a newcomer's board sync, however large, must not
    /// make the newcomer look like a slow reader). Share the bytes of such
    /// messages (`Utf8Bytes`, `Bytes`) rather than copy them per client.
    /// The fragments of one message must be queued in one call.
    /// Refused only when the connection is gone.
    pub fn push_exempt(&self, messages: impl IntoIterator<Item = Message>) -> Result<(), ConnectionClosed> {
        {
            let mut queue = self.shared.queue();
            if queue.closed {
                return Err(ConnectionClosed);
            }
            let before = queue.items.len();
            queue.items.extend(messages.into_iter().map(|message| Entry { message, counted: false }));
            queue.exempt += queue.items.len() - before;
        }
        self.shared.waker.wake();
        Ok(())
    }

    fn enqueue(&self, message: Message, counted: bool) -> Result<(), PushError> {
        self.enqueue_locked(self.shared.queue(), message, counted)
    }

    fn enqueue_locked(
        &self,
        mut queue: MutexGuard<'_, Queue>,
        message: Message,
        counted: bool,
    ) -> Result<(), PushError> {
        let size = message.len();
        if queue.closed {
            return Err(PushError::Closed(message));
        }
        if counted {
            if queue.bytes > 0 && queue.bytes + size > self.shared.limit {
                return Err(PushError::Full(message));
            }
            queue.bytes += size;
        }
        queue.items.push_back(Entry { message, counted });
        drop(queue);
        self.shared.waker.wake();
        Ok(())
    }

    /// Messages queued with [`Outbox::push_exempt`] that are still waiting.
    pub fn exempt_queued(&self) -> usize {
        self.shared.queue().exempt
    }

    /// Closes the client with 1008 and `reason`, whatever it is doing;
    /// what is still queued is dropped.
    pub fn evict(&self, reason: &'static str) {
        let _ = self.shared.reason.set(reason);
        let dropped = {
            let mut queue = self.shared.queue();
            queue.closed = true;
            queue.bytes = 0;
            queue.exempt = 0;
            std::mem::take(&mut queue.items)
        };
        drop(dropped);
        self.shared.evicted.trip();
        self.shared.waker.wake();
    }

    /// Bytes waiting now that count against the limit.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queue().bytes
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.waker.wake();
    }
}

impl OutboxReceiver {
    /// The next message if one is waiting (none once evicted).
    pub fn try_recv(&self) -> Option<Message> {
        Self::take(&mut self.shared.queue())
    }

    fn take(queue: &mut Queue) -> Option<Message> {
        let Entry { message, counted } = queue.items.pop_front()?;
        // Until the task has written it, direct sends would overtake it.
        queue.task_writing = true;
        if counted {
            queue.bytes -= message.len();
        } else {
            queue.exempt -= 1;
        }
        if queue.items.is_empty() && queue.items.capacity() > IDLE_CAPACITY {
            queue.items.shrink_to(IDLE_CAPACITY);
        }
        Some(message)
    }

    /// Polls for the next message; `Ready(None)` once the outbox is dropped or evicted.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        if let Some(message) = self.try_recv() {
            return Poll::Ready(Some(message));
        }
        self.shared.waker.register(cx.waker());
        // Check again: a push may have landed before the waker was registered.
        match self.try_recv() {
            Some(message) => Poll::Ready(Some(message)),
            None if self.shared.queue().closed => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// Waits for the next message; `None` once the outbox is dropped or evicted.
    pub async fn recv(&self) -> Option<Message> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Lets broadcasters write prepared frames to `wire` directly (see the
    /// module doc); the connection task calls it when it delivers this outbox.
    pub(crate) fn attach(&self, wire: &Arc<Wire>, metrics: &Arc<Metrics>) {
        let mut queue = self.shared.queue();
        if queue.direct.is_none() {
            queue.direct = Some((Arc::downgrade(wire), metrics.clone()));
        }
    }

    /// What the connection task must write next: a message, or the tail of
    /// a direct send; `Ready(None)` once the outbox is dropped or evicted.
    pub(crate) fn poll_outgoing(&self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        let next = |queue: &mut Queue| match Self::take(queue) {
            Some(message) => Some(Outgoing::Message(message)),
            None if queue.flush => {
                queue.flush = false;
                queue.task_writing = true;
                Some(Outgoing::Flush)
            }
            None => None,
        };
        if let Some(out) = next(&mut self.shared.queue()) {
            return Poll::Ready(Some(out));
        }
        self.shared.waker.register(cx.waker());
        let mut queue = self.shared.queue();
        match next(&mut queue) {
            Some(out) => Poll::Ready(Some(out)),
            None if queue.closed => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// Waits for [`OutboxReceiver::poll_outgoing`].
    pub(crate) async fn outgoing(&self) -> Option<Outgoing> {
        poll_fn(|cx| self.poll_outgoing(cx)).await
    }

    /// The connection task wrote and flushed everything it took: direct
    /// sends may resume unless more is waiting (`false`: take that first).
    pub(crate) fn release(&self) -> bool {
        let mut queue = self.shared.queue();
        if queue.items.is_empty() && !queue.flush {
            queue.task_writing = false;
            // A connection whose broadcasts go straight to its socket rarely queues again:
            // its queue holds no buffer meanwhile (256 bytes per idle connection otherwise).
            // One that queues everything (TLS) allocates it again per batch, not per message.
            queue.items = VecDeque::new();
            return true;
        }
        false
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
        self.shared.queue().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_bytes_but_one_big_message_fits() {
        let (tx, rx) = Outbox::bounded(10);
        assert_eq!(tx.push(Message::text("123456")), Ok(()));
        assert!(matches!(tx.push(Message::text("123456")), Err(PushError::Full(_))));
        assert_eq!(rx.try_recv().map(|m| m.len()), Some(6));
        assert_eq!(tx.queued_bytes(), 0);
        assert_eq!(tx.push(Message::text("x".repeat(100))), Ok(()));
        assert!(matches!(tx.push(Message::text("y")), Err(PushError::Full(_))));
        assert_eq!(tx.push_exempt([Message::text("y")]), Ok(()));
    }

    #[test]
    fn a_queued_message_costs_at_most_64_bytes_beside_its_shared_payload() {
        // README's figure for a newcomer's unread sync: one slot per journaled draw.
        assert!(std::mem::size_of::<Entry>() <= 64, "{}", std::mem::size_of::<Entry>());
    }

    #[test]
    fn exempt_messages_do_not_count_against_the_limit() {
        let (tx, rx) = Outbox::bounded(10);
        assert_eq!(tx.push_exempt([Message::text("x".repeat(100))]), Ok(()));
        assert_eq!((tx.queued_bytes(), tx.exempt_queued()), (0, 1));
        assert_eq!(tx.push(Message::text("123456")), Ok(()));
        assert!(matches!(tx.push(Message::text("123456")), Err(PushError::Full(_))));
        assert_eq!(rx.try_recv().map(|m| m.len()), Some(100));
        assert_eq!((tx.queued_bytes(), tx.exempt_queued()), (6, 0));
        assert_eq!(rx.try_recv().map(|m| m.len()), Some(6));
        assert_eq!(tx.queued_bytes(), 0);
    }

    #[test]
    fn eviction_drops_the_queue_and_ends_the_receiver() {
        let (tx, rx) = Outbox::bounded(10);
        tx.push(Message::text("queued")).unwrap();
        assert_eq!(rx.eviction_reason(), None);
        tx.evict("too slow");
        smol::block_on(rx.evicted());
        assert_eq!(rx.eviction_reason(), Some("too slow"));
        assert!(smol::block_on(rx.recv()).is_none());
        assert!(matches!(tx.push(Message::text("late")), Err(PushError::Closed(_))));
    }

    #[test]
    fn dropping_the_sender_ends_the_receiver_after_the_queue() {
        let (tx, rx) = Outbox::bounded(100);
        tx.push(Message::text("last")).unwrap();
        drop(tx);
        assert_eq!(smol::block_on(rx.recv()), Some(Message::text("last")));
        assert!(smol::block_on(rx.recv()).is_none());
    }

    #[test]
    fn a_waiting_receiver_is_woken_by_a_push() {
        let (tx, rx) = Outbox::bounded(100);
        let ex = smol::LocalExecutor::new();
        let task = ex.spawn(async move { rx.recv().await });
        smol::block_on(ex.run(async {
            smol::future::yield_now().await;
            tx.push(Message::text("hi")).unwrap();
            assert_eq!(task.await, Some(Message::text("hi")));
        }));
    }
}
