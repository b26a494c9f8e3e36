//! A plain TCP socket shared by its connection task and by broadcasters, and
//! the prepared frame a broadcaster sends to every receiver.
//!
//! A server-to-client WebSocket frame is not masked, so a broadcast's bytes
//! are the same for every receiver: [`PreparedFrame`] frames a text message
//! once. [`Wire::try_send`] hands those bytes to the socket with one
//! non-blocking `send` from the broadcasting task, without waking the
//! connection's task; the outbox (`Outbox::push_frame`) decides when that is
//! allowed and queues the message when it is not.
//!
//! Writes to one socket never interleave or tear a frame:
//! - every write, the connection task's (through tungstenite, via
//!   `stream::TcpStream`) and a broadcaster's, happens under the wire's lock;
//! - the tail of a frame a direct send left half written is kept here
//!   ([`WireState::remainder`]) and goes out before any other byte;
//! - when tungstenite's last write left part of its buffer unwritten (a
//!   frame may be cut there), direct sends wait ([`WireState::torn`]);
//! - once the connection starts its close handshake (or ends), direct sends
//!   stop for good, so nothing follows the close frame.
//!
//! Which messages may go directly (nothing queued in the outbox, nothing
//! taken by the connection task and not yet written) is the outbox's part.

use std::io::{self, Write};
use std::net;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use async_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use smol::Async;

/// Largest frame payload the server writes. A larger message is sent as
/// fragments of this size (RFC 6455 section 5.4), so tungstenite's write
/// buffer never holds a whole snapshot for a client that reads slowly, and a
/// direct send's unwritten remainder is at most one such frame.
pub const MAX_FRAME_PAYLOAD: usize = 16 * 1024;

/// A text message framed once, to send the same bytes to many receivers.
///
/// Cloning shares the bytes. A message larger than one frame
/// ([`MAX_FRAME_PAYLOAD`]) has no prepared bytes: it always goes through the
/// connection task, which sends it in fragments.
#[derive(Clone, Debug)]
pub(crate) struct PreparedFrame {
    text: Utf8Bytes,
    /// Header and payload of one final, unmasked text frame (empty when too large).
    frame: Bytes,
}

impl PreparedFrame {
    /// Frames `text` (one copy of its bytes, done once for all receivers).
    pub(crate) fn text(text: Utf8Bytes) -> PreparedFrame {
        let payload = text.as_bytes();
        let len = payload.len();
        if len > MAX_FRAME_PAYLOAD {
            return PreparedFrame { text, frame: Bytes::new() };
        }
        let mut frame = Vec::with_capacity(len + 4);
        // FIN + text opcode; the server never masks.
        frame.push(0x81);
        if len < 126 {
            frame.push(len as u8);
        } else {
            // MAX_FRAME_PAYLOAD < 65536: the 16-bit length always fits.
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        frame.extend_from_slice(payload);
        PreparedFrame { text, frame: frame.into() }
    }

    /// The message itself, for the queue (shares the text's bytes).
    pub(crate) fn message(&self) -> Message {
        Message::Text(self.text.clone())
    }

    /// Payload bytes (what the outbox and the counters count).
    pub(crate) fn len(&self) -> usize {
        self.text.len()
    }

    /// The framed bytes; `None` for a message that must be fragmented.
    pub(crate) fn bytes(&self) -> Option<&Bytes> {
        (!self.frame.is_empty()).then_some(&self.frame)
    }
}

/// What one [`Wire::try_send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direct {
    /// The whole frame is in the socket.
    Sent,
    /// Part of it is; the rest waits in the wire for the connection task to flush.
    Partial,
    /// Nothing was sent: the socket is full, something else must go first, the
    /// connection is closing, or the send failed (the connection task finds
    /// out itself). Queue the message instead.
    NotSent,
}

/// A plain TCP connection's socket, shared by its reader/writer (the
/// connection task) and by broadcasters.
#[derive(Debug)]
pub(crate) struct Wire {
    io: Async<net::TcpStream>,
    state: Mutex<WireState>,
}

#[derive(Debug, Default)]
struct WireState {
    /// The unwritten tail of a frame a direct send left half written: it goes
    /// out before anything else.
    remainder: Option<Bytes>,
    /// tungstenite's last write left part of its buffer unwritten: a frame may
    /// be cut there, so no direct send until it finishes.
    torn: bool,
    /// The connection is closing or over: only its task writes from now on.
    closed: bool,
}

impl Wire {
    /// Wraps an accepted socket.
    pub(crate) fn new(io: Async<net::TcpStream>) -> Wire {
        Wire { io, state: Mutex::new(WireState::default()) }
    }

    /// The socket, for reads.
    pub(crate) fn io(&self) -> &Async<net::TcpStream> {
        &self.io
    }

    fn state(&self) -> MutexGuard<'_, WireState> {
        // Nothing panics while holding the lock; if it did, the state is still consistent.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One non-blocking send of `frame` (whole frames only), unless another
    /// write must go first or the connection is closing.
    pub(crate) fn try_send(&self, frame: &Bytes) -> Direct {
        let mut state = self.state();
        if state.closed || state.torn || state.remainder.is_some() {
            return Direct::NotSent;
        }
        match self.io.get_ref().write(frame) {
            Ok(n) if n == frame.len() => Direct::Sent,
            Ok(n) if n > 0 => {
                state.remainder = Some(frame.slice(n..));
                Direct::Partial
            }
            // Full (EAGAIN), or failed: the connection task meets the error on its own write or read.
            _ => Direct::NotSent,
        }
    }

    /// Stops direct sends for good: the connection is about to send its close
    /// frame, or is over. A remainder still goes out first.
    pub(crate) fn close_direct(&self) {
        self.state().closed = true;
    }

    /// Writes `buf` for the connection task (tungstenite's buffer): first any
    /// remainder of a direct send, then as much of `buf` as the socket takes.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.state();
        ready!(self.poll_remainder(&mut state, cx))?;
        loop {
            match self.io.get_ref().write(buf) {
                Ok(n) => {
                    state.torn = n < buf.len();
                    return Poll::Ready(Ok(n));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => ready!(self.io.poll_writable(cx))?,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    /// Writes the remainder of a direct send, if any.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.state();
        self.poll_remainder(&mut state, cx)
    }

    fn poll_remainder(&self, state: &mut WireState, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(remainder) = &mut state.remainder {
            match self.io.get_ref().write(remainder) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) if n == remainder.len() => state.remainder = None,
                Ok(n) => *remainder = remainder.slice(n..),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => ready!(self.io.poll_writable(cx))?,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_frame_is_one_unmasked_final_text_frame() {
        let short = PreparedFrame::text("hi".into());
        assert_eq!(short.bytes().unwrap().as_ref(), b"\x81\x02hi");
        let text = "x".repeat(300);
        let long = PreparedFrame::text(text.clone().into());
        let bytes = long.bytes().unwrap();
        assert_eq!(&bytes[..4], &[0x81, 126, 1, 44]);
        assert_eq!(&bytes[4..], text.as_bytes());
        assert_eq!(long.message(), Message::text(text));
        let huge = PreparedFrame::text("y".repeat(MAX_FRAME_PAYLOAD + 1).into());
        assert!(huge.bytes().is_none());
        assert_eq!(huge.len(), MAX_FRAME_PAYLOAD + 1);
    }
}
