//! What every RSA backend implements.

use crate::error::Error;

/// How one prepared key verifies a PKCS#1 v1.5 SHA-256 signature. One implementation per
/// backend; the semantics are those of [`RsaVerifyingKey::verify_sha256_digest`](crate::crypto::RsaVerifyingKey::verify_sha256_digest).
pub(crate) trait RsaBackend {
    /// Verifies `signature` over the SHA-256 `digest`.
    fn verify_sha256_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Error>;
}
