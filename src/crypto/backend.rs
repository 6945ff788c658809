//! The RSA backends: which one a key uses, and what every one implements.

use crate::error::Error;

/// Which implementation verifies signatures for a key.
///
/// Not part of the stable API (reached through [`internal`](crate::internal)): it exists so
/// that tests and benchmarks can run every backend on the same key.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Backend {
    /// Pure-Rust Montgomery exponentiation (crypto-bigint).
    Montgomery,
    /// `rsa::PublicKey::verify` with `Pkcs1v15Sign`.
    RsaCrate,
    /// AWS-LC through `aws-lc-rs`.
    #[cfg(feature = "aws-lc-rs")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aws-lc-rs")))]
    AwsLc,
}

/// How one prepared key verifies a PKCS#1 v1.5 SHA-256 signature. One implementation per
/// backend; the semantics are those of [`RsaVerifyingKey::verify_sha256_digest`](crate::crypto::RsaVerifyingKey::verify_sha256_digest).
pub(crate) trait RsaBackend {
    /// Verifies `signature` over the SHA-256 `digest`.
    fn verify_sha256_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Error>;
}
