//! The keys a verifier trusts, each for one format and a set of regions, with the certificates
//! that publish them.
//!
//! Input: certificates (AWS's, embedded in [`aws`], or the caller's), each for a format and
//! regions. Output: the key a signature names by issuer and serial (CMS formats) or by region
//! (`/signature`). Trusted: only what the caller adds; certificates inside a signed blob are
//! never consulted.

pub mod aws;
mod index;
mod key;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use chrono::DateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer as _;

use crate::crypto::RsaVerifyingKey;
use crate::error::ConfigError;
use crate::ids::{Region, SerialNumber};
use crate::input::Format;
use index::{KeyIndex, NewKey};
pub(crate) use key::KeyMaterial;
use key::parse_key;
pub use key::{TrustedCertificate, TrustedKey};

/// The keys trusted to sign identity documents, each for its format and regions.
///
/// Start from [`TrustStore::aws`] (every certificate AWS publishes for the three formats,
/// embedded in the crate) or [`TrustStore::empty`], and add certificates for new regions or test
/// CAs. Each key is parsed once: when added with [`TrustStore::add_pem`] or
/// [`TrustStore::add_der`] (so an unusable key is refused there), and for the embedded AWS keys on
/// first use, which keeps [`TrustStore::aws`] cheap. A certificate with a key already trusted for
/// the format only adds its regions and identity. Look-ups are hash-map look-ups, so the cost per
/// document does not grow with the store: CMS blobs (`/rsa2048`, `/pkcs7`) name their signer by
/// issuer and serial number; `/signature` documents are matched by their region.
///
/// Key policy per format, enforced when a certificate is added: `/rsa2048` takes RSA keys of at
/// least 2048 bits; `/pkcs7` DSA keys (1024/160 to 3072/256) or RSA keys of at least 2048 bits;
/// `/signature` RSA keys of at least 1024 bits.
///
/// ```
/// use ec2_iid::{Format, TrustStore};
///
/// assert_eq!(TrustStore::aws().len(), 77); // distinct keys: 39 rsa2048, 17 pkcs7, 21 signature
///
/// // A test CA goes into a store of its own, never into the AWS store.
/// let mut store = TrustStore::empty();
/// store.add_pem(
///     Format::Rsa2048,
///     include_bytes!("../../tests/data/testca/testca.pem"),
///     ["us-east-1".parse()?],
/// )?;
/// assert_eq!(store.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    index: KeyIndex,
}

impl TrustStore {
    /// A store that trusts nothing.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// A store with every certificate AWS publishes for instance identity signatures:
    /// [`aws::RSA2048`], [`aws::PKCS7`] and
    /// [`aws::SIGNATURE`].
    #[must_use]
    pub fn aws() -> Self {
        let mut store = Self::empty();
        for (format, list) in [
            (Format::Rsa2048, aws::RSA2048),
            (Format::Pkcs7, aws::PKCS7),
            (Format::Signature, aws::SIGNATURE),
        ] {
            // One add per certificate, with all the regions it is listed for.
            let mut grouped: Vec<(&str, Vec<Region>)> = Vec::new();
            for cert in list {
                let Ok(region) = cert.region.parse::<Region>() else {
                    continue;
                };
                match grouped.iter_mut().find(|(pem, _)| *pem == cert.pem) {
                    Some((_, regions)) => regions.push(region),
                    None => grouped.push((cert.pem, vec![region])),
                }
            }
            for (pem, regions) in grouped {
                // Embedded certificates and their keys are checked by tests; none can fail here.
                // Their keys are parsed on first use, which keeps this constructor cheap.
                let _ = store.add_pem_with(format, pem.as_bytes(), regions, Parse::Lazily);
            }
        }
        store
    }

    /// Parses every RSA key now, with `backend` ([`internal::with_rsa_backend`]).
    ///
    /// [`internal::with_rsa_backend`]: crate::internal::with_rsa_backend
    pub(crate) fn with_rsa_backend(
        mut self,
        backend: crate::crypto::backend::Backend,
    ) -> Result<Self, ConfigError> {
        for key in self.index.keys_mut() {
            let material = match parse_key(key.format, &key.spki)? {
                KeyMaterial::Rsa { sha1, .. } => KeyMaterial::Rsa {
                    key: RsaVerifyingKey::from_public_key_der_with_backend(&key.spki, backend)?,
                    sha1,
                },
                other => other,
            };
            key.material = OnceLock::from(Ok(material));
        }
        Ok(self)
    }

    /// Number of distinct trusted keys (a format and a public key).
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.keys().len()
    }

    /// Whether the store trusts nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.keys().is_empty()
    }

    /// The trusted keys, in the order they were first added.
    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.index.keys().iter()
    }

    /// Every trusted certificate, grouped by key.
    pub fn certificates(&self) -> impl Iterator<Item = &TrustedCertificate> {
        self.index
            .keys()
            .iter()
            .flat_map(|key| key.certificates.iter())
    }

    /// Whether some key, of any format, is trusted for `region`: a rule naming a region no key
    /// covers could never admit anyone there.
    #[must_use]
    pub fn covers_region(&self, region: &Region) -> bool {
        self.index.keys().iter().any(|key| key.covers(region))
    }

    /// Whether some key is trusted for `format`.
    #[must_use]
    pub fn has_format(&self, format: Format) -> bool {
        self.index.keys().iter().any(|key| key.format == format)
    }

    /// Trusts every certificate in `pem` for `format` and `regions`.
    ///
    /// Adding a certificate that is already trusted (same issuer, serial and key) adds the
    /// regions to it; a new certificate for a key already trusted for `format` is recorded with
    /// that key, which is not parsed again.
    ///
    /// # Errors
    /// [`ConfigError::BadCertificate`] for text without a certificate, an unparsable certificate, a
    /// key the format does not accept (see [`TrustStore`]) or an empty region list;
    /// [`ConfigError::ConflictingCertificate`] for a different certificate with the same serial.
    pub fn add_pem(
        &mut self,
        format: Format,
        pem: &[u8],
        regions: impl IntoIterator<Item = Region>,
    ) -> Result<&mut Self, ConfigError> {
        self.add_pem_with(format, pem, regions, Parse::Now)
    }

    fn add_pem_with(
        &mut self,
        format: Format,
        pem: &[u8],
        regions: impl IntoIterator<Item = Region>,
        parse: Parse,
    ) -> Result<&mut Self, ConfigError> {
        let regions: Vec<Region> = regions.into_iter().collect();
        let mut found = false;
        for pem in x509_parser::pem::Pem::iter_from_buffer(pem) {
            let pem = pem.map_err(|_| ConfigError::BadCertificate {
                reason: "invalid PEM",
            })?;
            if pem.label != "CERTIFICATE" {
                continue;
            }
            found = true;
            self.add_der_with(format, &pem.contents, regions.iter().cloned(), parse)?;
        }
        if found {
            Ok(self)
        } else {
            Err(ConfigError::BadCertificate {
                reason: "no CERTIFICATE in PEM text",
            })
        }
    }

    /// Trusts one DER certificate for `format` and `regions`; see [`TrustStore::add_pem`].
    ///
    /// # Errors
    /// As [`TrustStore::add_pem`].
    pub fn add_der(
        &mut self,
        format: Format,
        der: &[u8],
        regions: impl IntoIterator<Item = Region>,
    ) -> Result<&mut Self, ConfigError> {
        self.add_der_with(format, der, regions, Parse::Now)
    }

    fn add_der_with(
        &mut self,
        format: Format,
        der: &[u8],
        regions: impl IntoIterator<Item = Region>,
        parse: Parse,
    ) -> Result<&mut Self, ConfigError> {
        let regions: Vec<Region> = regions.into_iter().collect();
        if regions.is_empty() {
            return Err(ConfigError::BadCertificate {
                reason: "a certificate must be trusted for at least one region",
            });
        }
        let (certificate, spki) = certificate_info(format, &x509(der)?, regions)?;
        let key = NewKey {
            format,
            spki,
            parse_now: parse == Parse::Now,
        };
        self.index.insert(key, certificate)?;
        Ok(self)
    }

    /// The certificate for `format` whose issuer and serial number are these.
    #[must_use]
    pub fn find(
        &self,
        format: Format,
        issuer: &[u8],
        serial: &[u8],
    ) -> Option<&TrustedCertificate> {
        self.find_signer(format, issuer, serial)
            .map(|(_, cert)| cert)
    }

    /// The keys trusted for `format` in `region`, in the order they were trusted.
    pub fn keys_for_region<'a>(
        &'a self,
        format: Format,
        region: &Region,
    ) -> impl Iterator<Item = &'a TrustedKey> + use<'a> {
        self.index.for_region(format, region)
    }

    /// Why no certificate for `format` has this issuer and serial: whether one has the issuer,
    /// and whether one has the serial (under another issuer). For error messages only.
    pub(crate) fn signer_clues(
        &self,
        format: Format,
        issuer: &[u8],
        serial: &[u8],
    ) -> (bool, bool) {
        let known_serial = self.index.signer(format, serial).is_some();
        let known_issuer = self
            .index
            .keys()
            .iter()
            .filter(|key| key.format == format)
            .flat_map(|key| &key.certificates)
            .any(|cert| cert.issuer == issuer);
        (known_issuer, known_serial)
    }

    /// The key and certificate for `format` whose issuer and serial number are these.
    pub(crate) fn find_signer(
        &self,
        format: Format,
        issuer: &[u8],
        serial: &[u8],
    ) -> Option<(&TrustedKey, &TrustedCertificate)> {
        self.index
            .signer(format, serial)
            .filter(|(_, cert)| cert.issuer == issuer)
    }
}

/// When a new key's material is parsed.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Parse {
    /// When added, so that an unusable key is refused by `add_*`.
    Now,
    /// On first use (embedded AWS keys, checked by tests).
    Lazily,
}

/// The certificate's identity and validity, and its DER SubjectPublicKeyInfo.
fn certificate_info(
    format: Format,
    cert: &X509Certificate<'_>,
    regions: Vec<Region>,
) -> Result<(TrustedCertificate, Vec<u8>), ConfigError> {
    let bad = |reason| ConfigError::BadCertificate { reason };
    let time = |t: x509_parser::time::ASN1Time| {
        DateTime::from_timestamp(t.timestamp(), 0).ok_or_else(|| bad("validity out of range"))
    };
    let trusted = TrustedCertificate {
        format,
        issuer: cert.issuer().as_raw().to_vec(),
        serial: SerialNumber::from_be_bytes(cert.raw_serial()),
        not_before: time(cert.validity().not_before)?,
        not_after: time(cert.validity().not_after)?,
        regions,
    };
    Ok((trusted, cert.public_key().raw.to_vec()))
}

fn x509(der: &[u8]) -> Result<X509Certificate<'_>, ConfigError> {
    let bad = |reason| ConfigError::BadCertificate { reason };
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|_| bad("not a DER X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the certificate"));
    }
    Ok(cert)
}

/// An issuer's distinguished name as messages print it: at most 64 characters, escaped.
pub(crate) fn issuer_display(issuer: &[u8]) -> String {
    let name = x509_parser::x509::X509Name::from_der(issuer)
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|_| String::from("(unparsable name)"));
    crate::text::bounded_escaped(&name)
}
