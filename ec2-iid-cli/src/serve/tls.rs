//! `--tls-cert` and `--tls-key`: TLS with rustls (the aws_lc_rs provider ec2-iid-aws's clients
//! already build), the certificate reloaded on SIGHUP.
//!
//! The acceptor asks [`CertReloader`] for the certificate at each handshake, so a reload
//! changes what new connections see and leaves open ones alone. A new pair that cannot be
//! read, does not parse or does not match is logged and the old one kept.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use super::args::TlsFiles;
use super::metrics::ListenerMetrics;
use crate::setup::read_file;

/// The current certificate and key, replaced by [`CertReloader::reload`].
#[derive(Debug)]
pub(crate) struct CertReloader {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Some(Arc::clone(&current))
    }
}

impl CertReloader {
    /// Reads the pair once; `Err` is the setup error to print (exit 2).
    pub(crate) fn new(files: &TlsFiles) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let current = load(files, &provider)?;
        Ok(Self {
            files: files.clone(),
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again; on success new handshakes use the new pair.
    ///
    /// # Errors
    /// Why the new pair is not used (the old one stays).
    pub(crate) fn reload(&self) -> Result<(), String> {
        let new = load(&self.files, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
        Ok(())
    }

    /// The acceptor of the listener: HTTP/1.1 only (ALPN), this resolver's certificate.
    ///
    /// With `client_roots` (PEM CA certificates), a client may present a certificate: if it
    /// does, the handshake verifies it up to one of the roots (chain, validity, clientAuth),
    /// and requests carry it ([`ClientCertificate`](super::listener::ClientCertificate)).
    /// A client without one is still served: only the handlers that need a client identity
    /// refuse it.
    ///
    /// # Errors
    /// `client_roots` holds no usable certificate, or the provider refused its own default
    /// protocol versions (not expected).
    pub(crate) fn acceptor(
        self: &Arc<Self>,
        client_roots: Option<&str>,
    ) -> Result<TlsAcceptor, String> {
        let resolver: Arc<dyn ResolvesServerCert> = self.clone();
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?;
        let builder = match client_roots {
            None => builder.with_no_client_auth(),
            Some(pem) => builder.with_client_cert_verifier(self.client_verifier(pem)?),
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl CertReloader {
    /// Verifies client certificates up to the roots of `pem`; clients without one pass.
    fn client_verifier(
        &self,
        pem: &str,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("client CA certificates: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("client CA certificates: {e}"))?;
        }
        rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&self.provider),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("client CA certificates: {e}"))
    }
}

/// Reloads on each SIGHUP, for as long as the server runs. The handler is installed at the
/// call, before the server says it listens (SIGHUP's default action ends the process).
pub(crate) fn reload_on_sighup(
    reloader: Arc<CertReloader>,
    metrics: Arc<ListenerMetrics>,
) -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let hangups = signal(SignalKind::hangup());
    async move {
        let mut hangups = match hangups {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::warn!("no certificate reload on SIGHUP: {e}");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match reloader.reload() {
                Ok(()) => {
                    tracing::info!("SIGHUP: reloaded the TLS certificate and key");
                    metrics.tls_reloaded(true);
                }
                Err(e) => {
                    tracing::warn!("SIGHUP: kept the old TLS certificate: {e}");
                    metrics.tls_reloaded(false);
                }
            }
        }
    }
}

/// The certificate chain and the key of `files`, checked to match.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let cert_flag =
        |e: &dyn core::fmt::Display| format!("--tls-cert {}: {e}", files.cert.display());
    let key_flag = |e: &dyn core::fmt::Display| format!("--tls-key {}: {e}", files.key.display());
    check_private(&files.key).map_err(|e| key_flag(&e))?;
    let chain = CertificateDer::pem_slice_iter(&read_file(&files.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_flag(&e))?;
    if chain.is_empty() {
        return Err(cert_flag(&"no CERTIFICATE in the PEM file"));
    }
    let key = PrivateKeyDer::from_pem_slice(&read_file(&files.key)?).map_err(|e| key_flag(&e))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("--tls-cert and --tls-key: {e}"))
}

/// A key readable by group or others is refused: anyone on the host could impersonate the
/// server.
fn check_private(key: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(key)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "readable by group or others (mode {:o}): chmod 600 it",
            mode & 0o777
        ));
    }
    Ok(())
}
