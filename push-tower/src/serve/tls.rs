//! TLS for [`serve`](super::serve()), on rustls with its `ring` provider
//! (cargo feature `tls`).
//!
//! [`Serve::tls`](super::Serve::tls) takes a rustls [`ServerConfig`]; each
//! connection's TLS handshake must finish within the
//! [header read timeout](super::Serve::header_read_timeout), and the
//! protocol the client chose by ALPN decides how it is served: `h2` on the
//! HTTP/2 loop (with push and WebSocket over HTTP/2), `http/1.1` on hyper
//! (with upgrades). A client that offers no ALPN is told apart by its first
//! bytes, as on plain TCP. [`config_from_pem`] builds a configuration from
//! the PEM files a certificate authority (or `certbot`) hands out, with
//! both protocols offered.
//!
//! ```no_run
//! use std::sync::Arc;
//! use push_core::{Hub, HubConfig};
//! use push_tower::{serve, Config, Push};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = serve::tls::config_from_pem("cert.pem", "key.pem")?;
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! serve(listener, push.router())
//!     .with_push(push)
//!     .tls(Arc::new(tls))
//!     .run()
//!     .await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;

/// The ALPN protocols [`config_from_pem`] offers, HTTP/2 first.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A rustls server configuration serving the certificate chain in the PEM
/// file `cert` with the private key in the PEM file `key` (PKCS #8, PKCS #1
/// or SEC1), on rustls's `ring` provider with its safe default protocol
/// versions, offering [`ALPN_PROTOCOLS`] (`h2`, then `http/1.1`).
///
/// # Errors
///
/// A [`TlsError`] naming the file and what to fix when a file cannot be
/// read, holds no certificate or no private key, is not valid PEM, or when
/// rustls refuses the pair (the key does not match the certificate, or is
/// of a kind it does not support).
pub fn config_from_pem(
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> Result<ServerConfig, TlsError> {
    let (cert, key) = (cert.as_ref(), key.as_ref());
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| TlsError::from_pem(false, cert, error))?;
    if chain.is_empty() {
        return Err(TlsError::new(Kind::NoCert, cert));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|error| TlsError::from_pem(true, key, error))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(chain, key_der)
        })
        .map_err(|error| TlsError {
            kind: Kind::Rejected(error),
            path: key.to_owned(),
        })?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Why [`config_from_pem`] could not build a configuration; its message
/// names the file and what to fix.
#[derive(Debug)]
pub struct TlsError {
    kind: Kind,
    path: PathBuf,
}

#[derive(Debug)]
enum Kind {
    ReadCert(Option<io::Error>),
    NoCert,
    ReadKey(Option<io::Error>),
    NoKey,
    Rejected(rustls::Error),
}

impl TlsError {
    fn new(kind: Kind, path: &Path) -> Self {
        TlsError {
            kind,
            path: path.to_owned(),
        }
    }

    /// What went wrong reading the certificate file, or with `is_key` the
    /// key file.
    fn from_pem(is_key: bool, path: &Path, error: pem::Error) -> Self {
        let io = match error {
            pem::Error::NoItemsFound if is_key => return TlsError::new(Kind::NoKey, path),
            pem::Error::NoItemsFound => return TlsError::new(Kind::NoCert, path),
            pem::Error::Io(error) => Some(error),
            _ => None,
        };
        let kind = if is_key {
            Kind::ReadKey(io)
        } else {
            Kind::ReadCert(io)
        };
        TlsError::new(kind, path)
    }

    /// The file the problem is in (for [`TlsError::is_rejected`], the key's).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file could not be read (missing, or not permitted).
    pub fn is_unreadable(&self) -> bool {
        matches!(self.kind, Kind::ReadCert(Some(_)) | Kind::ReadKey(Some(_)))
    }

    /// rustls refused the certificate and key (they do not match, or the
    /// key is of a kind it does not support).
    pub fn is_rejected(&self) -> bool {
        matches!(self.kind, Kind::Rejected(_))
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            Kind::ReadCert(Some(error)) => {
                write!(f, "cannot read the certificate file {path}: {error}")
            }
            Kind::ReadCert(None) => write!(
                f,
                "the certificate file {path} is not valid PEM: give the certificate chain as PEM (-----BEGIN CERTIFICATE-----)"
            ),
            Kind::NoCert => write!(
                f,
                "the certificate file {path} holds no certificate: give the certificate chain as PEM (-----BEGIN CERTIFICATE-----), the server's first"
            ),
            Kind::ReadKey(Some(error)) => write!(f, "cannot read the key file {path}: {error}"),
            Kind::ReadKey(None) => write!(
                f,
                "the key file {path} is not valid PEM: give the private key as PEM (PKCS #8, PKCS #1 or SEC1)"
            ),
            Kind::NoKey => write!(
                f,
                "the key file {path} holds no private key: give the private key as PEM (-----BEGIN PRIVATE KEY-----, RSA or EC)"
            ),
            Kind::Rejected(error) => write!(
                f,
                "the key in {path} does not fit the certificate, or is not supported: {error}"
            ),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::ReadCert(Some(error)) | Kind::ReadKey(Some(error)) => Some(error),
            Kind::Rejected(error) => Some(error),
            _ => None,
        }
    }
}
