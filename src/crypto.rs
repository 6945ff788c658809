//! Signature primitives, exposed for benchmarks, fuzzing and differential tests.
//!
//! Most users never need this module: [`verify_signature`](crate::verify_signature) picks the
//! key from the trust store. It is public so that the raw cost of the signature check can be
//! measured and compared against other implementations with the exact code the crate runs.

use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, PublicKey};
use sha2::Sha256;

use crate::error::Error;

/// An RSA public key prepared once for PKCS#1 v1.5 SHA-256 verification.
#[derive(Clone, Debug)]
pub struct RsaVerifyingKey {
    key: PublicKey,
}

impl RsaVerifyingKey {
    /// Parses a DER SubjectPublicKeyInfo holding an RSA key.
    ///
    /// # Errors
    /// [`Error::BadCertificate`] when the bytes are not an RSA key the backend accepts
    /// (1024 to 4096 bits).
    pub fn from_public_key_der(spki: &[u8]) -> Result<Self, Error> {
        let key = PublicKey::from_public_key_der(spki).map_err(|_| Error::BadCertificate {
            reason: "not an RSA public key of 1024 to 4096 bits",
        })?;
        Ok(Self { key })
    }

    /// The modulus size in bytes (the length every signature must have).
    #[must_use]
    pub fn modulus_len(&self) -> usize {
        rsa::traits::PublicKeyParts::size(&self.key)
    }

    /// Verifies an RSASSA-PKCS1-v1_5 signature over a SHA-256 digest.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] when the signature does not verify.
    pub fn verify_sha256_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Error> {
        self.key
            .verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature)
            .map_err(|_| Error::InvalidSignature)
    }
}
