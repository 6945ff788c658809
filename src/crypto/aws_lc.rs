//! Optional RSASSA-PKCS1-v1_5 SHA-256 verification with AWS-LC (cargo feature `aws-lc-rs`).
//!
//! The crate hashes the signed bytes itself, so it verifies at the digest level:
//! `ParsedPublicKey::verify_digest_sig` with the digest imported by
//! `Digest::import_less_safe` (the digest is ours, computed over the bytes just checked, never
//! taken from the input). The key is parsed once, at construction.
//!
//! Why not `verify_sig` over the message (which would need a second public method taking the
//! signed bytes)? It costs the same (benches/README.md), and the digest path keeps one method,
//! `verify_sha256_digest`, for every backend. AWS-LC marks digest-level
//! verification as not FIPS-approved; the crate uses the non-FIPS `aws-lc-sys` build.

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
    RsaParameters,
};

use crate::crypto::backend::RsaBackend;
use crate::error::Error;

/// An RSA public key parsed by AWS-LC.
#[derive(Clone)]
pub(crate) struct AwsLcKey {
    key: ParsedPublicKey,
}

impl core::fmt::Debug for AwsLcKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AwsLcKey").finish_non_exhaustive()
    }
}

impl AwsLcKey {
    /// Parses a SubjectPublicKeyInfo whose modulus has `modulus_bits` bits; `None` if AWS-LC
    /// rejects it.
    ///
    /// Keys below 2048 bits (the AWS `/signature` keys are 1024 bits) need AWS-LC's legacy
    /// parameter set; both sets are otherwise the same PKCS#1 v1.5 SHA-256 verification.
    pub(crate) fn new(spki: &[u8], modulus_bits: u32) -> Option<Self> {
        let params: &'static RsaParameters = if modulus_bits < 2048 {
            &RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
        } else {
            &RSA_PKCS1_2048_8192_SHA256
        };
        let key = ParsedPublicKey::new(params, spki).ok()?;
        Some(Self { key })
    }
}

impl RsaBackend for AwsLcKey {
    fn verify_sha256_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Error> {
        let digest =
            Digest::import_less_safe(digest, &SHA256).map_err(|_| Error::InvalidSignature)?;
        self.key
            .verify_digest_sig(&digest, signature)
            .map_err(|_| Error::InvalidSignature)
    }
}
