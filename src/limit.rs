//! A per-connection cap on incoming messages that the app can change at any
//! time, enforced on frame headers before tungstenite buffers anything.
//!
//! tungstenite reserves a frame's declared length as soon as the header
//! arrives, and its size limit is fixed when the connection is set up. So
//! any client could make the server reserve `max-message-bytes` per
//! connection. [`Guarded`] sits under tungstenite, follows the frame
//! boundaries in the bytes that pass through, and fails the read when a data
//! frame (or a fragmented message so far) is larger than the connection's
//! current [`MessageLimit`]; the connection then closes with 1009.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite};

/// The largest incoming message a connection accepts now; cheap to clone and share.
#[derive(Clone, Debug)]
pub struct MessageLimit(Arc<AtomicUsize>);

impl MessageLimit {
    /// A limit of `bytes`.
    pub fn new(bytes: usize) -> Self {
        MessageLimit(Arc::new(AtomicUsize::new(bytes)))
    }

    /// Sets the limit; it applies to the next frame header.
    pub fn set(&self, bytes: usize) {
        self.0.store(bytes, Ordering::Relaxed);
    }

    /// The limit now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error a [`Guarded`] read fails with (inside an `io::Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageTooBig {
    /// The size announced so far.
    pub size: u64,
    /// The limit it broke.
    pub limit: usize,
}

impl fmt::Display for MessageTooBig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a message of {} bytes is over this connection's limit of {} bytes", self.size, self.limit)
    }
}

impl std::error::Error for MessageTooBig {}

impl MessageTooBig {
    /// The [`MessageTooBig`] inside `err`, if that is what it is.
    pub fn find(err: &io::Error) -> Option<MessageTooBig> {
        err.get_ref()?.downcast_ref::<MessageTooBig>().copied()
    }
}

/// Where the guard is in the client's frame stream.
#[derive(Debug)]
enum Position {
    /// Collecting a frame header (up to 14 bytes).
    Header { bytes: [u8; 14], have: u8 },
    /// Inside a payload; this many bytes are left.
    Payload(u64),
}

/// A stream whose reads fail once a client frame is larger than the limit.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    limit: MessageLimit,
    position: Position,
    /// Bytes of the data message being received, over its frames so far.
    message: u64,
}

impl<S> Guarded<S> {
    /// Guards `inner` with `limit`.
    pub fn new(inner: S, limit: MessageLimit) -> Self {
        Guarded { inner, limit, position: Position::Header { bytes: [0; 14], have: 0 }, message: 0 }
    }

    /// The stream under the guard.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Follows the frames in `data` (bytes the client sent, in order).
    pub fn inspect(&mut self, mut data: &[u8]) -> Result<(), MessageTooBig> {
        while !data.is_empty() {
            match &mut self.position {
                Position::Payload(left) => {
                    let step = (*left).min(data.len() as u64);
                    *left -= step;
                    data = &data[step as usize..];
                    if *left == 0 {
                        self.position = Position::Header { bytes: [0; 14], have: 0 };
                    }
                }
                Position::Header { bytes, have } => {
                    bytes[usize::from(*have)] = data[0];
                    *have += 1;
                    data = &data[1..];
                    if let Some(header) = FrameHeader::parse(&bytes[..usize::from(*have)]) {
                        self.on_header(header)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn on_header(&mut self, header: FrameHeader) -> Result<(), MessageTooBig> {
        // Control frames (opcode 8 and up) are at most 125 bytes by the RFC.
        if header.opcode < 8 {
            if header.opcode != 0 {
                self.message = 0;
            }
            self.message = self.message.saturating_add(header.payload);
            let limit = self.limit.get();
            if self.message > limit as u64 {
                return Err(MessageTooBig { size: self.message, limit });
            }
            if header.fin {
                self.message = 0;
            }
        }
        self.position = if header.payload == 0 {
            Position::Header { bytes: [0; 14], have: 0 }
        } else {
            Position::Payload(header.payload)
        };
        Ok(())
    }
}

struct FrameHeader {
    fin: bool,
    opcode: u8,
    payload: u64,
}

impl FrameHeader {
    /// A complete header from exactly `bytes`, or `None` while more are needed.
    fn parse(bytes: &[u8]) -> Option<FrameHeader> {
        if bytes.len() < 2 {
            return None;
        }
        let masked = bytes[1] & 0x80 != 0;
        let (extra, short) = match bytes[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            len => (0, Some(u64::from(len))),
        };
        let total = 2 + extra + if masked { 4 } else { 0 };
        if bytes.len() < total {
            return None;
        }
        let payload = short.unwrap_or_else(|| bytes[2..2 + extra].iter().fold(0u64, |n, b| n << 8 | u64::from(*b)));
        Some(FrameHeader { fin: bytes[0] & 0x80 != 0, opcode: bytes[0] & 0x0f, payload })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        match self.inspect(&buf[..n]) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(too_big) => Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, too_big))),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match len {
            0..=125 => out.push(0x80 | len as u8),
            126..=65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend(std::iter::repeat_n(b'x', len));
        out
    }

    fn guard(limit: usize) -> Guarded<()> {
        Guarded::new((), MessageLimit::new(limit))
    }

    #[test]
    fn frames_under_the_limit_pass_byte_by_byte() {
        let mut g = guard(200);
        let stream: Vec<u8> = [frame(true, 1, 200), frame(true, 9, 4), frame(true, 2, 0), frame(true, 1, 130)].concat();
        for byte in &stream {
            g.inspect(std::slice::from_ref(byte)).unwrap();
        }
        assert!(matches!(g.position, Position::Header { have: 0, .. }));
    }

    #[test]
    fn a_large_header_fails_before_its_payload() {
        let mut g = guard(16 * 1024);
        let header = &frame(true, 1, 8 << 20)[..14];
        assert_eq!(g.inspect(header), Err(MessageTooBig { size: 8 << 20, limit: 16 * 1024 }));
    }

    #[test]
    fn fragments_count_towards_one_message_and_the_limit_can_change() {
        let mut g = guard(300);
        g.inspect(&frame(false, 1, 200)).unwrap();
        g.inspect(&frame(true, 9, 3)).unwrap();
        assert_eq!(g.inspect(&frame(false, 0, 200)), Err(MessageTooBig { size: 400, limit: 300 }));
        let mut g = guard(300);
        g.inspect(&frame(true, 1, 300)).unwrap();
        g.limit.set(100);
        assert!(g.inspect(&frame(true, 1, 101)).is_err());
    }
}
