//! The certificate signing request: parsed, its self-signature verified, its key judged.

use aws_lc_rs::{digest, signature};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519, Oid,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::error::{CsrError, bounded};

/// The longest CSR accepted, PEM or DER, in bytes: an RSA-8192 request is about 3.5 KiB in PEM.
/// Longer input is refused before it is parsed.
pub const MAX_CSR_LEN: usize = 16 * 1024;

/// Which key types a [`Csr`] may have.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum KeyPolicy {
    /// ECDSA P-256, ECDSA P-384 and Ed25519 (the default).
    #[default]
    Modern,
    /// Those, and RSA of 2048 to 8192 bits (PKCS#1 v1.5 signatures with SHA-256/384/512).
    AllowRsa,
}

/// The key type of an accepted CSR.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum KeyType {
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA with a modulus of this many bits.
    Rsa {
        /// The modulus length.
        bits: usize,
    },
}

/// A PKCS#10 certificate signing request whose self-signature verified: proof that the sender
/// holds the private key of [`Csr::public_key_der`].
///
/// Only the key is used: the subject and the extensions the request asks for are ignored
/// (the [`Profile`](crate::Profile) decides them).
///
/// ```
/// # let pem = include_str!("../tests/data/p256.csr");
/// let csr = ec2_iid_ca::Csr::from_pem(pem)?;
/// assert_eq!(csr.key_type(), ec2_iid_ca::KeyType::EcdsaP256);
/// // What a join claim carries to bind the instance's launch to this key.
/// let requester: [u8; 32] = csr.requester();
/// # let _ = requester;
/// # Ok::<(), ec2_iid_ca::CsrError>(())
/// ```
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Csr {
    spki: Vec<u8>,
    key_type: KeyType,
}

impl Csr {
    /// Parses a PEM `CERTIFICATE REQUEST` and verifies it, accepting [`KeyPolicy::Modern`]
    /// keys.
    ///
    /// # Errors
    ///
    /// [`CsrError`]: too large, not exactly one PEM CSR block, malformed DER, an unaccepted
    /// key or signature algorithm, or a signature that does not verify.
    pub fn from_pem(pem: &str) -> Result<Self, CsrError> {
        Self::from_pem_with(pem, KeyPolicy::Modern)
    }

    /// [`Csr::from_pem`] with the key types of `policy`.
    ///
    /// # Errors
    ///
    /// As [`Csr::from_pem`].
    pub fn from_pem_with(pem: &str, policy: KeyPolicy) -> Result<Self, CsrError> {
        check_len(pem.len())?;
        let der = csr_pem_block(pem)?;
        Self::from_der_with(&der, policy)
    }

    /// Parses a DER PKCS#10 request and verifies it, accepting [`KeyPolicy::Modern`] keys.
    ///
    /// # Errors
    ///
    /// As [`Csr::from_pem`]; bytes after the request are an error too.
    pub fn from_der(der: &[u8]) -> Result<Self, CsrError> {
        Self::from_der_with(der, KeyPolicy::Modern)
    }

    /// [`Csr::from_der`] with the key types of `policy`.
    ///
    /// # Errors
    ///
    /// As [`Csr::from_der`].
    pub fn from_der_with(der: &[u8], policy: KeyPolicy) -> Result<Self, CsrError> {
        check_len(der.len())?;
        let (rest, req) =
            X509CertificationRequest::from_der(der).map_err(|e| CsrError::Malformed {
                reason: bounded(&format!("not a PKCS#10 request: {e}")),
            })?;
        if !rest.is_empty() {
            return Err(CsrError::Malformed {
                reason: format!("{} bytes after the request", rest.len()),
            });
        }
        let info = &req.certification_request_info;
        let spki = &info.subject_pki;
        let key_type = key_type(spki, policy)?;
        let alg = verification_alg(key_type, &req.signature_algorithm.algorithm)?;
        signature::UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
            .verify(info.raw, &req.signature_value.data)
            .map_err(|_| CsrError::BadSignature)?;
        Ok(Self {
            spki: spki.raw.to_vec(),
            key_type,
        })
    }

    /// SHA-256 of the request's SubjectPublicKeyInfo (DER): who asks, as a join claim's
    /// `requester` (`ec2_iid::JoinClaim::requester`). The same key gives the same digest, so a
    /// retry with the same key is recognised and another key is not.
    #[must_use]
    pub fn requester(&self) -> [u8; 32] {
        let mut out = [0; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, &self.spki).as_ref());
        out
    }

    /// The requester's SubjectPublicKeyInfo, DER: the key the certificate is issued for.
    #[must_use]
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key's type.
    #[must_use]
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }
}

fn check_len(len: usize) -> Result<(), CsrError> {
    if len > MAX_CSR_LEN {
        return Err(CsrError::TooLarge {
            len,
            max: MAX_CSR_LEN,
        });
    }
    Ok(())
}

/// The DER of the one `CERTIFICATE REQUEST` block that is all of `pem` (blank space aside).
fn csr_pem_block(pem: &str) -> Result<Vec<u8>, CsrError> {
    let text = pem.trim();
    let label = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]
        .into_iter()
        .find(|label| {
            text.starts_with(&format!("-----BEGIN {label}-----"))
                && text.ends_with(&format!("-----END {label}-----"))
        })
        .ok_or_else(|| CsrError::Malformed {
            reason: "not one PEM block `-----BEGIN CERTIFICATE REQUEST-----` … \
                     `-----END CERTIFICATE REQUEST-----`"
                .to_owned(),
        })?;
    let mut blocks = x509_parser::pem::Pem::iter_from_buffer(text.as_bytes());
    let block = match (blocks.next(), blocks.next()) {
        (Some(Ok(block)), None) if block.label == label => block,
        (Some(Err(e)), _) => {
            return Err(CsrError::Malformed {
                reason: bounded(&format!("bad PEM: {e}")),
            });
        }
        _ => {
            return Err(CsrError::Malformed {
                reason: "more than one PEM block".to_owned(),
            });
        }
    };
    Ok(block.contents)
}

pub(crate) fn key_type(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
    policy: KeyPolicy,
) -> Result<KeyType, CsrError> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => Ok(KeyType::EcdsaP256),
            Some(c) if c == OID_NIST_EC_P384 => Ok(KeyType::EcdsaP384),
            Some(c) => Err(CsrError::UnsupportedKey {
                key: format!("EC {}", curve_name(&c)),
                note: "",
            }),
            None => Err(CsrError::Malformed {
                reason: "EC key without a named curve".to_owned(),
            }),
        };
    }
    if *alg == OID_SIG_ED25519 {
        if spki.algorithm.parameters.is_some() {
            return Err(CsrError::Malformed {
                reason: "Ed25519 key with parameters".to_owned(),
            });
        }
        return Ok(KeyType::Ed25519);
    }
    if *alg == OID_PKCS1_RSAENCRYPTION {
        if policy != KeyPolicy::AllowRsa {
            return Err(CsrError::UnsupportedKey {
                key: "RSA".to_owned(),
                note: " (RSA is accepted only where the issuer allows it)",
            });
        }
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => modulus_bits(rsa.modulus),
            _ => {
                return Err(CsrError::Malformed {
                    reason: "RSA key does not parse".to_owned(),
                });
            }
        };
        if !(2048..=8192).contains(&bits) {
            return Err(CsrError::WeakKey { bits });
        }
        return Ok(KeyType::Rsa { bits });
    }
    Err(CsrError::UnsupportedKey {
        key: format!("algorithm {alg}"),
        note: "",
    })
}

/// The bit length of a big-endian unsigned integer.
fn modulus_bits(modulus: &[u8]) -> usize {
    let start = modulus
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(modulus.len());
    let digits = modulus.get(start..).unwrap_or_default();
    match digits.first() {
        None => 0,
        Some(first) => {
            let lead = usize::try_from(first.leading_zeros()).unwrap_or(0);
            digits.len().saturating_mul(8).saturating_sub(lead)
        }
    }
}

fn curve_name(oid: &Oid<'_>) -> String {
    match oid.to_id_string().as_str() {
        "1.3.132.0.35" => "secp521r1 (P-521)".to_owned(),
        "1.3.132.0.10" => "secp256k1".to_owned(),
        other => format!("curve {other}"),
    }
}

/// The verification algorithm for a signature algorithm on a key type; SHA-1 and RSA-PSS are
/// not accepted.
pub(crate) fn verification_alg(
    key: KeyType,
    sig: &Oid<'_>,
) -> Result<&'static dyn signature::VerificationAlgorithm, CsrError> {
    let alg: Option<&'static dyn signature::VerificationAlgorithm> = match key {
        KeyType::EcdsaP256 if *sig == OID_SIG_ECDSA_WITH_SHA256 => {
            Some(&signature::ECDSA_P256_SHA256_ASN1)
        }
        KeyType::EcdsaP256 if *sig == OID_SIG_ECDSA_WITH_SHA384 => {
            Some(&signature::ECDSA_P256_SHA384_ASN1)
        }
        KeyType::EcdsaP384 if *sig == OID_SIG_ECDSA_WITH_SHA384 => {
            Some(&signature::ECDSA_P384_SHA384_ASN1)
        }
        KeyType::EcdsaP384 if *sig == OID_SIG_ECDSA_WITH_SHA256 => {
            Some(&signature::ECDSA_P384_SHA256_ASN1)
        }
        KeyType::Ed25519 if *sig == OID_SIG_ED25519 => Some(&signature::ED25519),
        KeyType::Rsa { .. } if *sig == OID_PKCS1_SHA256WITHRSA => {
            Some(&signature::RSA_PKCS1_2048_8192_SHA256)
        }
        KeyType::Rsa { .. } if *sig == OID_PKCS1_SHA384WITHRSA => {
            Some(&signature::RSA_PKCS1_2048_8192_SHA384)
        }
        KeyType::Rsa { .. } if *sig == OID_PKCS1_SHA512WITHRSA => {
            Some(&signature::RSA_PKCS1_2048_8192_SHA512)
        }
        _ => None,
    };
    alg.ok_or_else(|| CsrError::UnsupportedAlgorithm {
        oid: bounded(&sig.to_id_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits_counts_from_the_top_bit() {
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x01, 0]), 9);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        assert_eq!(modulus_bits(&[]), 0);
    }
}
