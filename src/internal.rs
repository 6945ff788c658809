//! Hooks for the crate's benchmarks, differential tests, fuzz targets and the workspace's own
//! crates, all in one place.
//!
//! Not part of the stable API (hidden from the docs): they may change in any release. They
//! let one build run every RSA backend on the same key, so that the backends can be measured
//! and compared with each other, reach single pipeline steps, and print durations the way the
//! core's messages do.

pub use crate::cms::ber::{MAX_ELEMENTS, MAX_INDEFINITE_DEPTH};
pub use crate::crypto::RsaVerifyingKey;
pub use crate::crypto::backend::Backend;
use crate::error::ConfigError;
pub use crate::signature::verify_signature;
pub use crate::text::short_duration;
use crate::trust::TrustStore;

/// Like [`RsaVerifyingKey::from_public_key_der`], but verifies with `backend`, whatever the
/// exponent.
///
/// # Errors
/// As [`RsaVerifyingKey::from_public_key_der`]; also [`ConfigError::BadCertificate`] when the
/// backend rejects a key the `rsa` crate accepts.
pub fn from_public_key_der_with_backend(
    spki: &[u8],
    backend: Backend,
) -> Result<RsaVerifyingKey, ConfigError> {
    RsaVerifyingKey::from_public_key_der_with_backend(spki, backend)
}

/// The backend that verifies signatures for `key`.
#[must_use]
pub fn backend(key: &RsaVerifyingKey) -> Backend {
    key.backend()
}

/// `store` with every RSA key parsed now, for `backend`.
///
/// # Errors
/// [`ConfigError::BadCertificate`] if a key does not parse.
pub fn with_rsa_backend(store: TrustStore, backend: Backend) -> Result<TrustStore, ConfigError> {
    store.with_rsa_backend(backend)
}
