//! A self-signed certificate for `localhost`, made by rcgen and written as
//! PEM files, with client configurations that trust it alone: the TLS tests
//! of push-tower and push-server share it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// A fresh directory under the system's temporary one.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "push-tls-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A self-signed certificate for `localhost`, written as PEM files.
pub(crate) struct Certificate {
    der: CertificateDer<'static>,
    /// The certificate's PEM file.
    pub(crate) cert_path: PathBuf,
    /// Its private key's PEM file.
    pub(crate) key_path: PathBuf,
}

impl Certificate {
    pub(crate) fn generate() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = scratch_dir();
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, certified.cert.pem()).unwrap();
        std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
        Certificate {
            der: certified.cert.der().clone(),
            cert_path,
            key_path,
        }
    }

    /// A client configuration that trusts this certificate alone and offers
    /// `alpn`.
    pub(crate) fn client(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

impl Drop for Certificate {
    fn drop(&mut self) {
        if let Some(dir) = self.cert_path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
