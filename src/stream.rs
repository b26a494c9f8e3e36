//! The byte stream under a connection: plain TCP or TLS over it.
//!
//! [`TcpStream`] retries a read only after the reactor has reported the
//! socket readable. `async-io` tries the read syscall first on every poll; a
//! connection task is woken for every outgoing message and polls its read
//! side each time, so that would cost one `EAGAIN` syscall per delivered
//! message.
//!
//! Its socket is a [`Wire`], shared with broadcasters that send prepared
//! frames straight to it; every write goes through the wire, which keeps
//! frames whole and in order.

use std::io::{self, Read};
use std::net;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite};
use smol::Async;

use crate::wire::Wire;

/// A non-blocking TCP stream registered with the smol reactor.
#[derive(Debug)]
pub struct TcpStream {
    wire: Arc<Wire>,
    read_blocked: bool,
}

impl TcpStream {
    /// Wraps an accepted socket.
    pub fn new(io: Async<net::TcpStream>) -> Self {
        TcpStream { wire: Arc::new(Wire::new(io)), read_blocked: false }
    }

    /// The socket as broadcasters share it.
    pub(crate) fn wire(&self) -> &Arc<Wire> {
        &self.wire
    }

    /// The first byte the peer sent, without consuming it; `None` if it closed.
    pub async fn peek_first_byte(&self) -> io::Result<Option<u8>> {
        let mut byte = [0u8; 1];
        loop {
            self.wire.io().readable().await?;
            match self.wire.io().get_ref().peek(&mut byte) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(byte[0])),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Err(err),
            }
        }
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            if this.read_blocked {
                ready!(this.wire.io().poll_readable(cx))?;
                this.read_blocked = false;
            }
            match (&mut this.wire.io().get_ref()).read(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => this.read_blocked = true,
                result => return Poll::Ready(result),
            }
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.wire.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wire.poll_flush(cx)
    }

    /// Flushes, then shuts down the write half (async-io's own close only flushes).
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wire.close_direct();
        ready!(self.wire.poll_flush(cx))?;
        Poll::Ready(self.wire.io().get_ref().shutdown(net::Shutdown::Write))
    }
}

/// A client connection: plain TCP, or TLS when the server has a certificate.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>),
}

impl Stream {
    /// The socket broadcasters may write prepared frames to: plain TCP only
    /// (a TLS session frames and encrypts per connection).
    pub(crate) fn wire(&self) -> Option<&Arc<Wire>> {
        match self {
            Stream::Tcp(tcp) => Some(tcp.wire()),
            #[cfg(feature = "tls")]
            Stream::Tls(_) => None,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_close(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_close(cx),
        }
    }
}
