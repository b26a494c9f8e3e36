//! `smolcanvas healthcheck`: one plain HTTP `GET /healthz` to the local server, for a container's
//! HEALTHCHECK (an image built FROM scratch has no curl or wget).
//!
//! It reads the same flags and `SMOLCANVAS_*` variables as the server, so inside the container it
//! finds the port the server listens on; an address of every interface (`0.0.0.0`, `[::]`) is
//! reached through loopback of the same family. Status 200 is up, whether the body says `ok` or
//! `degraded: ...` (the board is served but cannot be saved): the body is printed either way, so
//! `docker inspect` shows it. Anything else, a refused connection, no answer within [`TIMEOUT`] or
//! a status other than 200, is down.
//!
//! It speaks plain HTTP only: with `--tls-cert` the server speaks nothing but TLS on its port, and
//! a TLS client that cannot verify the server's certificate would prove little, so the check
//! refuses to run and says so. A container is meant to serve plain HTTP behind a proxy that ends
//! TLS. `/healthz` needs no access key.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use smolcanvas::ServerConfig;

/// The bound on the whole check, connect to last byte: the local server answers in
/// milliseconds, so this is seconds of room for a busy Raspberry Pi, and well inside Docker's
/// default HEALTHCHECK timeout of 30 s.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// The most of the answer read: the head and a one-line health body fit many times over.
const MAX_RESPONSE_BYTES: u64 = 4096;

/// Asks `/healthz` of the server `config` describes: the body of a 200 answer, or why it is down.
pub fn check(config: &ServerConfig) -> Result<String, String> {
    if config.tls.is_some() {
        return Err("the server serves TLS (--tls-cert) and this check speaks plain HTTP; \
                    check https://.../healthz another way, or serve plain HTTP behind a TLS proxy"
            .to_string());
    }
    let addr = target(config.listen);
    let deadline = Instant::now() + TIMEOUT;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|err| format!("cannot connect to {addr}: {err}"))?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|err| err.to_string())?;
    stream.write_all(request.as_bytes()).map_err(|err| format!("cannot send to {addr}: {err}"))?;
    let answer = read_answer(stream, deadline).map_err(|err| format!("no answer from {addr}: {err}"))?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| format!("{addr} sent no complete answer"))?;
    let status = head.lines().next().unwrap_or_default();
    let body = body.trim().to_string();
    match status.split(' ').nth(1) {
        Some("200") => Ok(body),
        _ => Err(format!("{addr} answered {status:?}: {body}")),
    }
}

/// Where to connect for a server listening on `listen`.
fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Everything the server sends up to its close (it closes after every plain HTTP answer), at
/// most [`MAX_RESPONSE_BYTES`], all of it by `deadline`.
fn read_answer(stream: TcpStream, deadline: Instant) -> std::io::Result<String> {
    let mut answer = Vec::new();
    let mut limited = stream.take(MAX_RESPONSE_BYTES);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        limited.get_ref().set_read_timeout(Some(left))?;
        match limited.read(&mut buf)? {
            0 => break,
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_reached_through_loopback() {
        let addr = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert_eq!(target(addr("0.0.0.0:8080")), addr("127.0.0.1:8080"));
        assert_eq!(target(addr("[::]:8080")), addr("[::1]:8080"));
        assert_eq!(target(addr("192.168.1.5:80")), addr("192.168.1.5:80"));
    }
}
