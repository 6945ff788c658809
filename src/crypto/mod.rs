//! Signature primitives. [`RsaVerifyingKey`] is reachable through `crate::internal` so that
//! benchmarks, fuzzing and differential tests measure and compare the exact code the crate
//! runs; verification picks the key from the trust store.
//!
//! # Backends
//!
//! Keys are always parsed by the `rsa` crate. Verification then runs on one of:
//!
//! * **Montgomery** (default): a pure-Rust `s^e mod n` in Montgomery form (crypto-bigint),
//!   used for odd public exponents below 2^17 (3, 17, 65537, ...), and a byte-for-byte
//!   comparison with the expected EMSA-PKCS1-v1_5 encoding.
//! * **`rsa` crate**: `rsa::PublicKey::verify`, used for larger exponents.
//! * **AWS-LC** (cargo feature `aws-lc-rs`): replaces both for every key AWS-LC accepts;
//!   keys it rejects (none of the AWS keys) keep the pure-Rust choice above.
//!
//! All backends accept and reject exactly the same inputs: `tests/rsa_differential.rs` checks
//! this on the Wycheproof vectors, the real AWS samples and random corruptions.

#[cfg(feature = "aws-lc-rs")]
pub(crate) mod aws_lc;
pub(crate) mod backend;
pub(crate) mod dsa;
pub(crate) mod montgomery;

use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PublicKey};
use sha2::Sha256;

use crate::crypto::backend::{Backend, RsaBackend};
use crate::crypto::montgomery::MontgomeryKey;
use crate::error::{ConfigError, Error};

/// Public exponents below this bound are verified by the Montgomery backend (by default).
///
/// Square-and-multiply costs one squaring per bit and one multiplication per set bit; the
/// bound admits every exponent in use (3, 17, 65537) while leaving long exponents, where a
/// windowed exponentiation wins, to the `rsa` crate.
const MONTGOMERY_MAX_EXPONENT_BITS: u32 = 17;

/// An RSA public key prepared once for PKCS#1 v1.5 SHA-256 verification.
#[derive(Clone, Debug)]
pub struct RsaVerifyingKey {
    /// Modulus length in bytes.
    modulus_len: usize,
    /// Modulus length in bits: a 2041-bit modulus is 256 bytes long but not a 2048-bit key.
    modulus_bits: u32,
    inner: Inner,
}

/// The prepared key of one backend.
#[derive(Clone, Debug)]
enum Inner {
    Montgomery(MontgomeryKey),
    RsaCrate(RsaCrateKey),
    #[cfg(feature = "aws-lc-rs")]
    AwsLc(aws_lc::AwsLcKey),
}

impl RsaVerifyingKey {
    /// Parses a DER SubjectPublicKeyInfo holding an RSA key.
    ///
    /// # Errors
    /// [`ConfigError::BadCertificate`] when the bytes are not an RSA key the `rsa` crate accepts
    /// (a modulus of 1024 to 8192 bits, an odd public exponent from 3 to 2^33 - 1).
    pub fn from_public_key_der(spki: &[u8]) -> Result<Self, ConfigError> {
        let key = parse_spki(spki)?;
        #[cfg(feature = "aws-lc-rs")]
        if let Some(aws) = Self::aws_lc(spki, &key) {
            return Ok(aws);
        }
        if key.e().bit_width_vartime() <= MONTGOMERY_MAX_EXPONENT_BITS {
            Self::montgomery(key)
        } else {
            Ok(Self::rsa_crate(key))
        }
    }

    /// Like [`from_public_key_der`](Self::from_public_key_der), but verifies with the given
    /// backend, whatever the exponent ([`internal::from_public_key_der_with_backend`]).
    ///
    /// [`internal::from_public_key_der_with_backend`]: crate::internal::from_public_key_der_with_backend
    pub(crate) fn from_public_key_der_with_backend(
        spki: &[u8],
        backend: Backend,
    ) -> Result<Self, ConfigError> {
        let key = parse_spki(spki)?;
        match backend {
            Backend::Montgomery => Self::montgomery(key),
            Backend::RsaCrate => Ok(Self::rsa_crate(key)),
            #[cfg(feature = "aws-lc-rs")]
            Backend::AwsLc => Self::aws_lc(spki, &key).ok_or(ConfigError::BadCertificate {
                reason: "RSA key rejected by AWS-LC",
            }),
        }
    }

    /// Prepares `key` for the Montgomery backend, reusing its Montgomery parameters.
    fn montgomery(key: PublicKey) -> Result<Self, ConfigError> {
        let modulus_len = key.size();
        let mont = MontgomeryKey::new(key.n_params().modulus(), key.e(), modulus_len)?;
        Ok(Self {
            modulus_len,
            modulus_bits: key.n().bit_width_vartime(),
            inner: Inner::Montgomery(mont),
        })
    }

    /// Keeps `key` for the `rsa` crate backend.
    fn rsa_crate(key: PublicKey) -> Self {
        Self {
            modulus_len: key.size(),
            modulus_bits: key.n().bit_width_vartime(),
            inner: Inner::RsaCrate(RsaCrateKey { key }),
        }
    }

    /// Parses `spki` again with AWS-LC; `None` if AWS-LC rejects it.
    #[cfg(feature = "aws-lc-rs")]
    fn aws_lc(spki: &[u8], key: &PublicKey) -> Option<Self> {
        let aws = aws_lc::AwsLcKey::new(spki, key.n().bit_width_vartime())?;
        Some(Self {
            modulus_len: key.size(),
            modulus_bits: key.n().bit_width_vartime(),
            inner: Inner::AwsLc(aws),
        })
    }

    /// The backend that verifies signatures for this key ([`internal::backend`]).
    ///
    /// [`internal::backend`]: crate::internal::backend
    pub(crate) fn backend(&self) -> Backend {
        match self.inner {
            Inner::Montgomery(_) => Backend::Montgomery,
            Inner::RsaCrate(_) => Backend::RsaCrate,
            #[cfg(feature = "aws-lc-rs")]
            Inner::AwsLc(_) => Backend::AwsLc,
        }
    }

    /// The modulus size in bytes (the length every signature must have).
    #[must_use]
    pub fn modulus_len(&self) -> usize {
        self.modulus_len
    }

    /// The modulus size in bits (what "RSA-2048" counts).
    #[must_use]
    pub fn modulus_bits(&self) -> u32 {
        self.modulus_bits
    }

    /// Verifies an RSASSA-PKCS1-v1_5 signature over a SHA-256 digest (RFC 8017 §8.2.2).
    ///
    /// Strict: the signature must be exactly [`modulus_len`](Self::modulus_len) bytes, its
    /// integer below the modulus, and the recovered encoding must equal
    /// `00 01 FF..FF 00 || DigestInfo(SHA-256, NULL parameters) || digest` byte for byte.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] when the signature does not verify.
    pub fn verify_sha256_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Error> {
        self.as_backend().verify_sha256_digest(digest, signature)
    }

    /// The prepared key as its backend trait object.
    fn as_backend(&self) -> &dyn RsaBackend {
        match &self.inner {
            Inner::Montgomery(k) => k,
            Inner::RsaCrate(k) => k,
            #[cfg(feature = "aws-lc-rs")]
            Inner::AwsLc(k) => k,
        }
    }
}

/// Parses an RSA SubjectPublicKeyInfo with the `rsa` crate's checks.
fn parse_spki(spki: &[u8]) -> Result<PublicKey, ConfigError> {
    PublicKey::from_public_key_der(spki).map_err(|_| ConfigError::BadCertificate {
        reason: "not an RSA public key of 1024 to 8192 bits",
    })
}

/// The `rsa` crate's own PKCS#1 v1.5 verification.
#[derive(Clone, Debug)]
struct RsaCrateKey {
    key: PublicKey,
}

impl RsaBackend for RsaCrateKey {
    fn verify_sha256_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Error> {
        self.key
            .verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature)
            .map_err(|_| Error::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys live in a shared trust store, so they must cross threads in every configuration.
    #[test]
    fn verifying_key_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + Clone + core::fmt::Debug>() {}
        assert_send_sync::<RsaVerifyingKey>();
    }

    #[test]
    fn rejects_non_rsa_and_garbage_keys() {
        for spki in [
            &[][..],
            &[0x30, 0x00],
            &[0x30, 0x80, 0x00, 0x00],
            &[0xff; 64],
        ] {
            assert!(matches!(
                RsaVerifyingKey::from_public_key_der(spki),
                Err(ConfigError::BadCertificate { .. })
            ));
            for backend in [Backend::Montgomery, Backend::RsaCrate] {
                assert!(RsaVerifyingKey::from_public_key_der_with_backend(spki, backend).is_err());
            }
        }
    }
}
