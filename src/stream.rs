//! The byte stream under a connection: a TCP socket that retries a read only
//! after the reactor has reported it readable.
//!
//! `async-io` tries the read syscall first on every poll. A connection task
//! is woken for every outgoing message and polls its read side each time, so
//! that would cost one `EAGAIN` syscall per delivered message. This stream
//! remembers that the last read would have blocked and waits for the
//! reactor's readiness event before reading again.

use std::io::{self, Read};
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite};
use smol::Async;

/// A non-blocking TCP stream registered with the smol reactor.
#[derive(Debug)]
pub struct Stream {
    io: Async<TcpStream>,
    read_blocked: bool,
}

impl Stream {
    /// Wraps an accepted socket.
    pub fn new(io: Async<TcpStream>) -> Self {
        Stream { io, read_blocked: false }
    }

    /// The socket.
    pub fn get_ref(&self) -> &TcpStream {
        self.io.get_ref()
    }
}

impl AsyncRead for Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            if this.read_blocked {
                ready!(this.io.poll_readable(cx))?;
                this.read_blocked = false;
            }
            match (&mut this.io.get_ref()).read(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => this.read_blocked = true,
                result => return Poll::Ready(result),
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}
