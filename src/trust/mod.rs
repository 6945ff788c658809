//! The keys a verifier trusts, each for one format and a set of regions, with the certificates
//! that publish them.

pub mod aws;

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{OID_KEY_TYPE_DSA, OID_PKCS1_RSAENCRYPTION};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::crypto::RsaVerifyingKey;
use crate::crypto::dsa::{DsaVerifyingKey, RsaSha1Key};
use crate::error::{ConfigError, Error};
use crate::ids::Region;
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
    format: Format,
    issuer: Vec<u8>,
    serial: Vec<u8>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    regions: Vec<Region>,
}

impl TrustedCertificate {
    /// The format this certificate verifies.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// The serial number, big-endian, without leading zero bytes.
    #[must_use]
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The serial number in upper-case hex, as `openssl x509 -serial` prints it.
    #[must_use]
    pub fn serial_hex(&self) -> String {
        serial_display(&self.serial)
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
    format: Format,
    spki: Vec<u8>,
    regions: Vec<Region>,
    certificates: Vec<TrustedCertificate>,
    material: OnceLock<Result<KeyMaterial, ConfigError>>,
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
    fn parsed(&self) -> Result<&KeyMaterial, &ConfigError> {
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
    keys: Vec<TrustedKey>,
    by_spki: HashMap<(Format, Vec<u8>), usize>,
    /// serial -> (format, key index, certificate index within the key). Keyed by serial alone
    /// so that a look-up borrows the blob's bytes instead of allocating a key.
    by_signer: HashMap<Vec<u8>, Vec<(Format, usize, usize)>>,
    /// (format, region) -> key indices, in the order they were trusted.
    by_region: HashMap<(Format, Region), Vec<usize>>,
}

impl TrustStore {
    /// A store that trusts nothing.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// A store with every certificate AWS publishes for instance identity signatures:
    /// [`aws::RSA2048`](aws::RSA2048), [`aws::PKCS7`](aws::PKCS7) and
    /// [`aws::SIGNATURE`](aws::SIGNATURE).
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

    /// Parses every RSA key now, with `backend`: for benchmarks and differential tests that
    /// compare backends in one build. Not needed otherwise.
    ///
    /// # Errors
    /// [`ConfigError::BadCertificate`] if a key does not parse.
    #[doc(hidden)]
    pub fn with_rsa_backend(
        mut self,
        backend: crate::crypto::Backend,
    ) -> Result<Self, ConfigError> {
        for key in &mut self.keys {
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
        self.keys.len()
    }

    /// Whether the store trusts nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted keys, in the order they were first added.
    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.iter()
    }

    /// Every trusted certificate, grouped by key.
    pub fn certificates(&self) -> impl Iterator<Item = &TrustedCertificate> {
        self.keys.iter().flat_map(|key| key.certificates.iter())
    }

    /// Whether some key, of any format, is trusted for `region`: a rule naming a region no key
    /// covers could never admit anyone there.
    #[must_use]
    pub fn covers_region(&self, region: &Region) -> bool {
        self.keys.iter().any(|key| key.covers(region))
    }

    /// Whether some key is trusted for `format`.
    #[must_use]
    pub fn has_format(&self, format: Format) -> bool {
        self.keys.iter().any(|key| key.format == format)
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
        let x509 = x509(der)?;
        let (cert, spki) = certificate_info(format, &x509, regions)?;
        if let Some((key_index, cert_index)) = self.signer_index(format, &cert.serial) {
            let key = self
                .keys
                .get(key_index)
                .ok_or(ConfigError::BadCertificate {
                    reason: "trust store index out of date",
                })?;
            let same_issuer = key
                .certificates
                .get(cert_index)
                .is_some_and(|existing| existing.issuer == cert.issuer);
            if !same_issuer || key.spki != spki {
                return Err(ConfigError::ConflictingCertificate {
                    serial: cert.serial_hex(),
                });
            }
            self.add_regions(key_index, Some(cert_index), &cert.regions);
            return Ok(self);
        }
        let key_index = match self.by_spki.get(&(format, spki.clone())) {
            Some(&index) => index,
            None => {
                let key = TrustedKey {
                    format,
                    spki: spki.clone(),
                    regions: Vec::new(),
                    certificates: Vec::new(),
                    material: OnceLock::new(),
                };
                if parse == Parse::Now {
                    key.parsed().map_err(Clone::clone)?;
                }
                let index = self.keys.len();
                self.keys.push(key);
                self.by_spki.insert((format, spki), index);
                index
            }
        };
        let Some(key) = self.keys.get_mut(key_index) else {
            return Err(ConfigError::BadCertificate {
                reason: "trust store index out of date",
            });
        };
        let cert_index = key.certificates.len();
        let regions = cert.regions.clone();
        self.by_signer
            .entry(cert.serial.clone())
            .or_default()
            .push((format, key_index, cert_index));
        key.certificates.push(cert);
        self.add_regions(key_index, None, &regions);
        Ok(self)
    }

    /// Adds `regions` to a key (and to one of its certificates) and to the region index.
    fn add_regions(&mut self, key_index: usize, cert_index: Option<usize>, regions: &[Region]) {
        let Some(key) = self.keys.get_mut(key_index) else {
            return;
        };
        let format = key.format;
        if let Some(cert) = cert_index.and_then(|i| key.certificates.get_mut(i)) {
            for region in regions {
                if !cert.regions.contains(region) {
                    cert.regions.push(region.clone());
                }
            }
        }
        for region in regions {
            if !key.regions.contains(region) {
                key.regions.push(region.clone());
                self.by_region
                    .entry((format, region.clone()))
                    .or_default()
                    .push(key_index);
            }
        }
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
        self.by_region
            .get(&(format, region.clone()))
            .into_iter()
            .flatten()
            .filter_map(|&index| self.keys.get(index))
    }

    /// Where the certificate for `format` with this serial (leading zeros stripped) is.
    fn signer_index(&self, format: Format, serial: &[u8]) -> Option<(usize, usize)> {
        self.by_signer
            .get(serial)?
            .iter()
            .find(|&&(f, _, _)| f == format)
            .map(|&(_, key_index, cert_index)| (key_index, cert_index))
    }

    /// Why no certificate for `format` has this issuer and serial: whether one has the issuer,
    /// and whether one has the serial (under another issuer). For error messages only.
    pub(crate) fn signer_clues(
        &self,
        format: Format,
        issuer: &[u8],
        serial: &[u8],
    ) -> (bool, bool) {
        let known_serial = self
            .signer_index(format, strip_leading_zeros(serial))
            .is_some();
        let known_issuer = self
            .keys
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
        let (key_index, cert_index) = self.signer_index(format, strip_leading_zeros(serial))?;
        let key = self.keys.get(key_index)?;
        let cert = key
            .certificates
            .get(cert_index)
            .filter(|cert| cert.issuer == issuer)?;
        Some((key, cert))
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
        serial: strip_leading_zeros(cert.raw_serial()).to_vec(),
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

/// Parses a DER SubjectPublicKeyInfo and checks it against the format's key policy.
fn parse_key(format: Format, der: &[u8]) -> Result<KeyMaterial, ConfigError> {
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

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// A serial number as every message prints it: upper-case hex without leading zero bytes, cut
/// with `…` past 20 bytes (RFC 5280's longest serial), so that an attacker's 80 KB serial is not
/// echoed.
pub(crate) fn serial_display(serial: &[u8]) -> String {
    const MAX_BYTES: usize = 20;
    let serial = strip_leading_zeros(serial);
    match serial.get(..MAX_BYTES) {
        Some(head) if serial.len() > MAX_BYTES => format!("{}…", hex_upper(head)),
        _ => hex_upper(serial),
    }
}

/// An issuer's distinguished name as messages print it: at most 64 characters, escaped.
pub(crate) fn issuer_display(issuer: &[u8]) -> String {
    let name = x509_parser::x509::X509Name::from_der(issuer)
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|_| String::from("(unparsable name)"));
    crate::text::bounded_escaped(&name)
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    // Every verify names its signer's serial: pushing digits beats `write!` per byte.
    fn digit(nibble: u8) -> char {
        char::from(if nibble < 10 {
            b'0' + nibble
        } else {
            b'A' + (nibble - 10)
        })
    }
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        hex.push(digit(b >> 4));
        hex.push(digit(b & 0x0f));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_CA: &[u8] = include_bytes!("../../tests/data/testca/testca.pem");
    const TEST_CA_DSA: &[u8] = include_bytes!("../../tests/data/testca/testca-dsa.pem");

    fn region(r: &str) -> Region {
        r.parse().unwrap()
    }

    fn key_of<'a>(store: &'a TrustStore, format: Format, serial: &str) -> &'a TrustedKey {
        store
            .keys()
            .find(|k| {
                k.format() == format && k.certificates().iter().any(|c| c.serial_hex() == serial)
            })
            .unwrap_or_else(|| panic!("no {format} key with a certificate {serial}"))
    }

    #[test]
    fn aws_store_has_every_region() {
        let store = TrustStore::aws();
        let count = |format| store.keys().filter(|k| k.format() == format).count();
        assert_eq!(count(Format::Rsa2048), 39);
        assert_eq!(count(Format::Pkcs7), 17);
        assert_eq!(count(Format::Signature), 21);
        assert_eq!(store.len(), 77);
        // Distinct certificates: 39 rsa2048; 17 pkcs7 (one global DSA, 15 regional, China's
        // shared one); 48 signature (67 region entries, several certificates shared).
        assert_eq!(store.certificates().count(), 39 + 17 + 48);
        for key in store.keys() {
            assert!(
                key.material().is_ok(),
                "{} key of {:?}",
                key.format(),
                key.regions()
            );
        }

        let cert = store
            .certificates()
            .find(|c| c.regions() == [region("us-west-2")] && c.format() == Format::Rsa2048)
            .unwrap();
        assert_eq!(cert.serial_hex(), "B64BDE5AD00924CC");
        assert!(cert.not_before() < cert.not_after());
        let found = store.find_signer(
            Format::Rsa2048,
            &cert.issuer,
            &[0, 0xB6, 0x4B, 0xDE, 0x5A, 0xD0, 0x09, 0x24, 0xCC],
        );
        assert!(found.is_some_and(|(k, _)| k.covers(&region("us-west-2"))));
        assert!(
            store
                .find(Format::Rsa2048, b"other issuer", cert.serial())
                .is_none()
        );
        // Serials are per format: the rsa2048 certificate is not a pkcs7 signer.
        assert!(
            store
                .find(Format::Pkcs7, &cert.issuer, cert.serial())
                .is_none()
        );
    }

    #[test]
    fn aws_store_dedupes_keys_and_unites_regions() {
        let store = TrustStore::aws();
        // The global DSA certificate: one key, one certificate, 19 regions incl. GovCloud.
        let dsa = key_of(&store, Format::Pkcs7, "96BA48D9E55E1A67");
        assert_eq!(dsa.certificates().len(), 1);
        assert_eq!(dsa.regions().len(), 19);
        assert!(dsa.covers(&region("us-gov-west-1")));
        assert!(dsa.covers(&region("us-east-1")));
        assert!(!dsa.covers(&region("af-south-1")));
        assert!(matches!(dsa.material(), Ok(KeyMaterial::Dsa(_))));
        // China's /pkcs7 certificate is RSA-2048, one certificate for both regions.
        let cn = key_of(&store, Format::Pkcs7, "F7C99D70D405644F");
        assert_eq!(
            cn.regions(),
            [region("cn-north-1"), region("cn-northwest-1")]
        );
        assert!(matches!(
            cn.material(),
            Ok(KeyMaterial::Rsa { sha1: Some(_), .. })
        ));

        // /signature: 17 regional 2024 certificates and the 2014 global one share a key.
        let global = key_of(&store, Format::Signature, "A9CBE1410330DFC5");
        assert_eq!(global.certificates().len(), 18);
        assert_eq!(global.regions().len(), 17);
        for r in [
            "us-east-1",
            "us-west-2",
            "eu-west-2",
            "ap-northeast-3",
            "sa-east-1",
        ] {
            let keys: Vec<_> = store
                .keys_for_region(Format::Signature, &region(r))
                .collect();
            assert_eq!(keys.len(), 1, "{r}");
            assert_eq!(
                keys[0].subject_public_key_info(),
                global.subject_public_key_info()
            );
        }
        // The current certificate is named for the region, not the expired global one.
        let named = global.certificate_for(&region("us-east-1")).unwrap();
        assert_eq!(
            named.serial_hex(),
            "135CB634828253E460E2EBB8BB7DA4A06F501182"
        );
        // Key validity spans the expired 2014 certificate and the 2024 ones.
        assert_eq!(
            global.not_before().to_rfc3339(),
            "2014-06-05T14:28:02+00:00"
        );
        assert_eq!(global.not_after().to_rfc3339(), "2029-04-28T17:34:01+00:00");

        // Superseded certificates with the same key count once.
        for (r, certs) in [
            ("ap-south-2", 2),
            ("il-central-1", 2),
            ("cn-north-1", 2),
            ("us-gov-west-1", 3),
            ("ap-east-2", 1),
        ] {
            let keys: Vec<_> = store
                .keys_for_region(Format::Signature, &region(r))
                .collect();
            assert_eq!(keys.len(), 1, "{r}");
            assert_eq!(keys[0].certificates().len(), certs, "{r}");
        }
        for format in Format::ALL {
            for key in store.keys().filter(|k| k.format() == format) {
                assert!(!key.regions().is_empty());
                for r in key.regions() {
                    assert!(store.keys_for_region(format, r).count() >= 1);
                }
            }
        }
        // No pkcs7 certificate is published for these regions.
        for r in ["ap-east-2", "ap-southeast-6", "eusc-de-east-1"] {
            assert_eq!(
                store.keys_for_region(Format::Pkcs7, &region(r)).count(),
                0,
                "{r}"
            );
        }
    }

    #[test]
    fn adding_the_same_certificate_merges_regions() {
        let mut store = TrustStore::empty();
        store
            .add_pem(Format::Rsa2048, TEST_CA, [region("us-east-1")])
            .unwrap();
        store
            .add_pem(
                Format::Rsa2048,
                TEST_CA,
                [region("eu-west-1"), region("us-east-1")],
            )
            .unwrap();
        assert_eq!(store.len(), 1);
        let cert = store.certificates().next().unwrap();
        assert_eq!(cert.regions(), [region("us-east-1"), region("eu-west-1")]);
        assert_eq!(cert.serial_hex(), "E1D2C3B4A5968778");
        let key = store.keys().next().unwrap();
        assert_eq!(key.regions(), [region("us-east-1"), region("eu-west-1")]);
        assert_eq!(
            store
                .keys_for_region(Format::Rsa2048, &region("eu-west-1"))
                .count(),
            1
        );
        assert_eq!(
            store
                .keys_for_region(Format::Signature, &region("eu-west-1"))
                .count(),
            0
        );
    }

    #[test]
    fn with_rsa_backend_prepares_every_rsa_key() {
        use crate::crypto::Backend;
        let aws = TrustStore::aws();
        let store = aws.clone().with_rsa_backend(Backend::RsaCrate).unwrap();
        assert_eq!(store.len(), aws.len());
        let (mut rsa, mut dsa) = (0, 0);
        for key in store.keys() {
            match key.material().unwrap() {
                KeyMaterial::Rsa { key, .. } => {
                    assert_eq!(key.backend(), Backend::RsaCrate);
                    rsa += 1;
                }
                KeyMaterial::Dsa(_) => dsa += 1,
            }
        }
        // 39 `/rsa2048`, 21 `/signature` and China's `/pkcs7` key; 16 DSA `/pkcs7` keys.
        assert_eq!((rsa, dsa), (61, 16));
    }

    #[test]
    fn one_certificate_in_several_formats_is_several_keys() {
        let mut store = TrustStore::empty();
        for format in Format::ALL {
            store
                .add_pem(format, TEST_CA, [region("us-east-1")])
                .unwrap();
        }
        assert_eq!(store.len(), 3);
        let (_, pem) = x509_parser::pem::parse_x509_pem(TEST_CA).unwrap();
        let spki = pem.parse_x509().unwrap().public_key().raw.to_vec();
        for key in store.keys() {
            assert_eq!(key.subject_public_key_info(), spki);
        }
        for format in Format::ALL {
            assert!(store.has_format(format));
            assert!(!TrustStore::empty().has_format(format));
            let mut one = TrustStore::empty();
            one.add_pem(format, TEST_CA, [region("us-east-1")]).unwrap();
            for other in Format::ALL {
                assert_eq!(one.has_format(other), other == format);
            }
            assert_eq!(
                store.keys_for_region(format, &region("us-east-1")).count(),
                1
            );
        }
    }

    #[test]
    fn key_policy_per_format() {
        let rsa1024 = aws::SIGNATURE[0].pem.as_bytes();
        let mut store = TrustStore::empty();
        let err = |r: Result<&mut TrustStore, ConfigError>| match r {
            Err(ConfigError::BadCertificate { reason }) => reason,
            other => panic!("{other:?}"),
        };
        let too_small = "RSA key too small for the format (rsa2048 and pkcs7 need 2048 bits)";
        assert_eq!(
            err(store.add_pem(Format::Rsa2048, rsa1024, [region("af-south-1")])),
            too_small
        );
        assert_eq!(
            err(store.add_pem(Format::Pkcs7, rsa1024, [region("af-south-1")])),
            too_small
        );
        store
            .add_pem(Format::Signature, rsa1024, [region("af-south-1")])
            .unwrap();
        for format in [Format::Rsa2048, Format::Signature] {
            assert_eq!(
                err(store.add_pem(format, TEST_CA_DSA, [region("us-east-1")])),
                "DSA keys are only trusted for the pkcs7 format"
            );
        }
        store
            .add_pem(Format::Pkcs7, TEST_CA_DSA, [region("us-east-1")])
            .unwrap();
        store
            .add_pem(Format::Pkcs7, TEST_CA, [region("us-east-1")])
            .unwrap();
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn an_embedded_key_that_fails_its_first_use_refuses_the_document() {
        // Embedded keys are parsed on first use; one that does not parse (none does: see
        // `aws_store_has_every_region`) must refuse, not panic or pass.
        let mut store = TrustStore::empty();
        store
            .add_pem_with(
                Format::Rsa2048,
                TEST_CA,
                [region("us-east-1")],
                Parse::Lazily,
            )
            .unwrap();
        store.keys[0].spki = vec![0x30, 0x00];
        let signed =
            crate::parse_signed_data(include_bytes!("../../tests/data/gen/rsa2048.b64")).unwrap();
        assert_eq!(
            crate::verify_signature(signed, &store).map(|_| ()),
            Err(Error::UnusableTrustedKey {
                reason: "not a DER SubjectPublicKeyInfo"
            })
        );
    }

    #[test]
    fn bad_certificates() {
        let mut store = TrustStore::empty();
        let err = |r: Result<&mut TrustStore, ConfigError>| match r {
            Err(ConfigError::BadCertificate { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(store.add_pem(Format::Rsa2048, b"hello", [region("us-east-1")])),
            "no CERTIFICATE in PEM text"
        );
        assert_eq!(
            err(store.add_der(Format::Rsa2048, b"\x30\x00", [region("us-east-1")])),
            "not a DER X.509 certificate"
        );
        assert_eq!(
            err(store.add_pem(Format::Rsa2048, TEST_CA, [])),
            "a certificate must be trusted for at least one region"
        );
        assert!(store.is_empty());
    }

    #[test]
    fn conflicting_certificate_with_same_serial() {
        let aws_pem = aws::RSA2048[0].pem.as_bytes();
        let mut store = TrustStore::empty();
        store
            .add_pem(Format::Rsa2048, aws_pem, [region("us-east-1")])
            .unwrap();
        // Another key under the same issuer and serial must not be merged silently.
        store.keys[0].spki = vec![0x30, 0x00];
        let serial = store.keys[0].certificates[0].serial_hex();
        let again = store.add_pem(Format::Rsa2048, aws_pem, [region("us-east-1")]);
        assert_eq!(
            again.map(|_| ()),
            Err(ConfigError::ConflictingCertificate { serial })
        );
    }

    #[test]
    fn serials_compare_without_leading_zeros() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), &[1, 0]);
        assert!(strip_leading_zeros(&[0, 0]).is_empty());
        assert_eq!(hex_upper(&[0x0a, 0xbc]), "0ABC");
        assert_eq!(serial_display(&[0, 0, 0x0a, 0xbc]), "0ABC");
        let long = [0xab; 21];
        assert_eq!(serial_display(&long), format!("{}…", "AB".repeat(20)));
        assert_eq!(serial_display(&long[..20]), "AB".repeat(20));
        let every_byte: Vec<u8> = (0..=255).collect();
        let expected: String = every_byte.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex_upper(&every_byte), expected);
    }
}
