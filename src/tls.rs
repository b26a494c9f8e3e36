//! TLS for the one port: loading the certificate chain and key (PEM), and accepting connections.
//!
//! With `--tls-cert` and `--tls-key` every connection is TLS (`https://` for
//! the page, `wss://` for the socket). A client that speaks plain HTTP to the
//! TLS port gets a plain `400` saying so, then the connection is closed.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_rustls::TlsAcceptor;
use futures_rustls::rustls::{self, ServerConfig};
use log::{debug, info};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::stream::{Stream, TcpStream};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Why the certificate or key cannot be used; names the file.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read or parsed as PEM.
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: pem::Error,
    },
    /// The certificate file holds no certificate.
    NoCertificate(PathBuf),
    /// rustls refused the pair (for example a key that does not match).
    Rejected(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Pem { path, error: pem::Error::Io(err) } => write!(f, "cannot read {}: {err}", path.display()),
            TlsError::Pem { path, error } => write!(f, "{} is not a usable PEM file: {error}", path.display()),
            TlsError::NoCertificate(path) => write!(f, "{} holds no PEM certificate", path.display()),
            TlsError::Rejected(err) => write!(f, "the TLS certificate and key cannot be used: {err}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Pem { error, .. } => Some(error),
            TlsError::Rejected(err) => Some(err),
            TlsError::NoCertificate(_) => None,
        }
    }
}

/// Loads a PEM certificate chain and private key into an acceptor.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    fn pem_error(path: &Path) -> impl FnOnce(pem::Error) -> TlsError + use<> {
        let path = path.to_path_buf();
        move |error| TlsError::Pem { path, error }
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem_error(cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_path_buf()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem_error(key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Rejected)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What became of a connection on the TLS port.
pub enum Accepted {
    /// A TLS session, ready for the request head.
    Tls(Stream),
    /// Plain HTTP on the TLS port: answer it in plain text.
    Plain(Stream),
    /// The handshake failed or the peer left; nothing more to do.
    Failed,
}

/// Runs the TLS handshake, or recognises a plain-HTTP client.
pub async fn accept(acceptor: &TlsAcceptor, tcp: TcpStream, peer: std::net::SocketAddr) -> Accepted {
    match tcp.peek_first_byte().await {
        Ok(Some(TLS_HANDSHAKE)) => {}
        Ok(Some(_)) => {
            info!("{peer}: plain HTTP on the TLS port");
            return Accepted::Plain(Stream::Tcp(tcp));
        }
        Ok(None) => return Accepted::Failed,
        Err(err) => {
            debug!("{peer}: {err}");
            return Accepted::Failed;
        }
    }
    match acceptor.accept(tcp).await {
        Ok(tls) => Accepted::Tls(Stream::Tls(Box::new(tls))),
        Err(err) => {
            info!("{peer}: TLS handshake failed: {}", describe(&err));
            Accepted::Failed
        }
    }
}

fn describe(err: &io::Error) -> String {
    err.get_ref().map_or_else(|| err.to_string(), |inner| inner.to_string())
}
