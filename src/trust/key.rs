//! One trusted key and the certificates that publish it: what a signer is checked against.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use x509_parser::oid_registry::{OID_KEY_TYPE_DSA, OID_PKCS1_RSAENCRYPTION};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::crypto::RsaVerifyingKey;
use crate::crypto::dsa::{DsaVerifyingKey, RsaSha1Key};
use crate::error::{ConfigError, Error};
use crate::ids::{Region, SerialNumber};
use crate::input::Format;

/// A key's parsed material, prepared once: when the key is added, or for the embedded AWS keys
/// on first use.
#[derive(Clone, Debug)]
pub(crate) enum KeyMaterial {
    /// RSA; with a SHA-1 capable twin for `/pkcs7` (China's RSA key, digest undocumented).
    Rsa {
        key: RsaVerifyingKey,
        sha1: Option<RsaSha1Key>,
    },
    /// DSA (`/pkcs7` outside China).
    Dsa(DsaVerifyingKey),
}

/// One certificate that publishes a [`TrustedKey`]: its signer identity, validity and the
/// regions it was added for.
#[derive(Clone, Debug)]
pub struct TrustedCertificate {
    pub(super) format: Format,
    pub(super) issuer: Vec<u8>,
    pub(super) serial: SerialNumber,
    pub(super) not_before: DateTime<Utc>,
    pub(super) not_after: DateTime<Utc>,
    pub(super) regions: Vec<Region>,
}

impl TrustedCertificate {
    /// The format this certificate verifies.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// The serial number.
    #[must_use]
    pub fn serial(&self) -> &SerialNumber {
        &self.serial
    }

    /// The regions this certificate was trusted for.
    #[must_use]
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Start of the certificate's validity.
    #[must_use]
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    /// End of the certificate's validity.
    #[must_use]
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }
}

/// A public key trusted for one format, with every certificate that publishes it.
///
/// AWS re-issues certificates without changing keys (the 2014 global `/signature` certificate
/// and the 2024 per-region ones carry one key), so the store keeps each key once, for the union
/// of the regions of its certificates.
///
/// **Validity rule.** A certificate's dates do not expire the key on their own: AWS keeps signing
/// with keys whose older certificates have expired. For the CMS formats the signed
/// `signingTime`, if present, must lie within the key's validity, from the earliest `notBefore`
/// to the latest `notAfter` of its certificates (for `/rsa2048`, one certificate of ~180 years
/// per key, this is that certificate's validity). `/signature` carries no signing time, so its
/// certificates' dates are not checked at all. Nothing is checked against the caller's clock;
/// to stop trusting a key, leave its certificates out of the store.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    pub(super) format: Format,
    pub(super) spki: Vec<u8>,
    pub(super) regions: Vec<Region>,
    pub(super) certificates: Vec<TrustedCertificate>,
    pub(super) material: OnceLock<Result<KeyMaterial, ConfigError>>,
}

impl TrustedKey {
    /// The format this key verifies.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// The regions whose documents this key may sign (the union over its certificates).
    #[must_use]
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The certificates that publish this key, in the order they were added.
    #[must_use]
    pub fn certificates(&self) -> &[TrustedCertificate] {
        &self.certificates
    }

    /// The DER SubjectPublicKeyInfo.
    #[must_use]
    pub fn subject_public_key_info(&self) -> &[u8] {
        &self.spki
    }

    /// Start of the key's validity: the earliest `notBefore` of its certificates.
    #[must_use]
    pub fn not_before(&self) -> DateTime<Utc> {
        self.certificates
            .iter()
            .map(TrustedCertificate::not_before)
            .min()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// End of the key's validity: the latest `notAfter` of its certificates.
    #[must_use]
    pub fn not_after(&self) -> DateTime<Utc> {
        self.certificates
            .iter()
            .map(TrustedCertificate::not_after)
            .max()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The parsed key, parsed on first use if it was not parsed when added.
    pub(crate) fn material(&self) -> Result<&KeyMaterial, Error> {
        self.parsed().map_err(|refused| Error::UnusableTrustedKey {
            reason: match refused {
                ConfigError::BadCertificate { reason } => reason,
                _ => "the key does not parse",
            },
        })
    }

    /// The parsed key, or why the trust store refuses it.
    pub(super) fn parsed(&self) -> Result<&KeyMaterial, &ConfigError> {
        self.material
            .get_or_init(|| parse_key(self.format, &self.spki))
            .as_ref()
    }

    pub(crate) fn covers(&self, region: &Region) -> bool {
        self.regions.contains(region)
    }

    /// The certificate to name as the signer for `region`: the most recent one (latest
    /// `notBefore`) trusted for that region, else the most recent one.
    pub(crate) fn certificate_for(&self, region: &Region) -> Option<&TrustedCertificate> {
        self.certificates
            .iter()
            .filter(|c| c.regions.contains(region))
            .max_by_key(|c| c.not_before)
            .or_else(|| self.certificates.iter().max_by_key(|c| c.not_before))
    }
}

/// Parses a DER SubjectPublicKeyInfo and checks it against the format's key policy.
pub(super) fn parse_key(format: Format, der: &[u8]) -> Result<KeyMaterial, ConfigError> {
    let bad = |reason| ConfigError::BadCertificate { reason };
    let (_, spki) =
        SubjectPublicKeyInfo::from_der(der).map_err(|_| bad("not a DER SubjectPublicKeyInfo"))?;
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let key = RsaVerifyingKey::from_public_key_der(der)?;
        if key.modulus_bits() < format.min_rsa_modulus_bits() {
            return Err(bad(
                "RSA key too small for the format (rsa2048 and pkcs7 need 2048 bits)",
            ));
        }
        let sha1 = match format {
            Format::Pkcs7 => Some(RsaSha1Key::from_public_key_der(der)?),
            Format::Rsa2048 | Format::Signature => None,
        };
        Ok(KeyMaterial::Rsa { key, sha1 })
    } else if *algorithm == OID_KEY_TYPE_DSA {
        match format {
            Format::Pkcs7 => Ok(KeyMaterial::Dsa(DsaVerifyingKey::from_spki_der(der)?)),
            Format::Rsa2048 | Format::Signature => {
                Err(bad("DSA keys are only trusted for the pkcs7 format"))
            }
        }
    } else {
        Err(bad("unsupported public key algorithm"))
    }
}
