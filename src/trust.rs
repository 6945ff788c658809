//! The certificates a verifier trusts, indexed by the signer identity a blob names.

use core::fmt;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer as _;

use crate::crypto::RsaVerifyingKey;
use crate::document::Region;
use crate::error::Error;

/// Which IMDS signature a certificate verifies (and which format a blob is in).
///
/// AWS signs the same document three ways with three different sets of keys; a certificate is
/// only ever trusted for the format it was published for.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum Format {
    /// `/latest/dynamic/instance-identity/rsa2048`: CMS SignedData, SHA-256 + RSA-2048.
    Rsa2048,
}

impl Format {
    /// The IMDS path suffix, e.g. `rsa2048`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa2048",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A certificate's public key, parsed once when the certificate is added.
#[derive(Clone, Debug)]
pub(crate) enum TrustedKey {
    Rsa(RsaVerifyingKey),
}

/// One trusted certificate: its signer identity, validity, key and the regions it covers.
#[derive(Clone, Debug)]
pub struct TrustedCertificate {
    format: Format,
    issuer: Vec<u8>,
    serial: Vec<u8>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    regions: Vec<Region>,
    spki: Vec<u8>,
    key: TrustedKey,
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
        hex_upper(&self.serial)
    }

    /// The regions whose documents this certificate may sign.
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

    pub(crate) fn key(&self) -> &TrustedKey {
        &self.key
    }

    pub(crate) fn covers(&self, region: &Region) -> bool {
        self.regions.contains(region)
    }
}

/// The certificates trusted to sign identity documents, each for its format and regions.
///
/// Start from [`TrustStore::aws`] (every certificate AWS publishes, embedded in the crate) or
/// [`TrustStore::empty`], and add certificates for new regions or test CAs. Keys are parsed
/// when a certificate is added; a verification looks its signer up by issuer and serial
/// number in a hash map, so the cost per document does not grow with the store.
///
/// ```
/// use ec2_iid::{Format, TrustStore};
///
/// let mut store = TrustStore::aws();
/// assert_eq!(store.len(), 39);
/// store.add_pem(
///     Format::Rsa2048,
///     include_bytes!("../tests/data/testca/testca.pem"),
///     ["us-east-1".parse()?],
/// )?;
/// assert_eq!(store.len(), 40);
/// # Ok::<(), ec2_iid::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    certificates: Vec<TrustedCertificate>,
    by_signer: HashMap<(Format, Vec<u8>), usize>,
}

impl TrustStore {
    /// A store that trusts nothing.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// A store with every certificate AWS publishes for instance identity signatures.
    #[must_use]
    pub fn aws() -> Self {
        let mut store = Self::empty();
        for cert in crate::aws::RSA2048 {
            // Embedded certificates are checked by tests; none can fail here.
            let region = cert.region.parse();
            if let Ok(region) = region {
                let _ = store.add_pem(Format::Rsa2048, cert.pem.as_bytes(), [region]);
            }
        }
        store
    }

    /// Number of distinct trusted certificates.
    #[must_use]
    pub fn len(&self) -> usize {
        self.certificates.len()
    }

    /// Whether the store trusts nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    /// The trusted certificates.
    pub fn certificates(&self) -> impl Iterator<Item = &TrustedCertificate> {
        self.certificates.iter()
    }

    /// Trusts every certificate in `pem` for `format` and `regions`.
    ///
    /// Adding a certificate that is already trusted (same issuer, serial and key) adds the
    /// regions to it.
    ///
    /// # Errors
    /// [`Error::BadCertificate`] for text without a certificate, an unparsable certificate, an
    /// unsupported key or an empty region list; [`Error::ConflictingCertificate`] for a
    /// different certificate with the same issuer and serial.
    pub fn add_pem(
        &mut self,
        format: Format,
        pem: &[u8],
        regions: impl IntoIterator<Item = Region>,
    ) -> Result<&mut Self, Error> {
        let regions: Vec<Region> = regions.into_iter().collect();
        let mut found = false;
        for pem in x509_parser::pem::Pem::iter_from_buffer(pem) {
            let pem = pem.map_err(|_| Error::BadCertificate {
                reason: "invalid PEM",
            })?;
            if pem.label != "CERTIFICATE" {
                continue;
            }
            found = true;
            self.add_der(format, &pem.contents, regions.iter().cloned())?;
        }
        if found {
            Ok(self)
        } else {
            Err(Error::BadCertificate {
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
    ) -> Result<&mut Self, Error> {
        let regions: Vec<Region> = regions.into_iter().collect();
        if regions.is_empty() {
            return Err(Error::BadCertificate {
                reason: "a certificate must be trusted for at least one region",
            });
        }
        let cert = parse_certificate(format, der, regions)?;
        let key = (format, cert.serial.clone());
        match self
            .by_signer
            .get(&key)
            .and_then(|&i| self.certificates.get_mut(i))
        {
            Some(existing) => {
                if existing.issuer != cert.issuer || existing.spki != cert.spki {
                    return Err(Error::ConflictingCertificate {
                        serial: cert.serial_hex(),
                    });
                }
                for region in cert.regions {
                    if !existing.regions.contains(&region) {
                        existing.regions.push(region);
                    }
                }
            }
            None => {
                self.by_signer.insert(key, self.certificates.len());
                self.certificates.push(cert);
            }
        }
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
        let serial = strip_leading_zeros(serial);
        let index = *self.by_signer.get(&(format, serial.to_vec()))?;
        self.certificates
            .get(index)
            .filter(|cert| cert.issuer == issuer)
    }
}

fn parse_certificate(
    format: Format,
    der: &[u8],
    regions: Vec<Region>,
) -> Result<TrustedCertificate, Error> {
    let bad = |reason| Error::BadCertificate { reason };
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|_| bad("not a DER X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the certificate"));
    }
    let time = |t: x509_parser::time::ASN1Time| {
        DateTime::from_timestamp(t.timestamp(), 0).ok_or_else(|| bad("validity out of range"))
    };
    let key = match format {
        Format::Rsa2048 => {
            TrustedKey::Rsa(RsaVerifyingKey::from_public_key_der(cert.public_key().raw)?)
        }
    };
    Ok(TrustedCertificate {
        format,
        issuer: cert.issuer().as_raw().to_vec(),
        serial: strip_leading_zeros(cert.raw_serial()).to_vec(),
        not_before: time(cert.validity().not_before)?,
        not_after: time(cert.validity().not_after)?,
        regions,
        spki: cert.public_key().raw.to_vec(),
        key,
    })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_CA: &[u8] = include_bytes!("../tests/data/testca/testca.pem");

    fn region(r: &str) -> Region {
        r.parse().unwrap()
    }

    #[test]
    fn aws_store_has_every_region() {
        let store = TrustStore::aws();
        assert_eq!(store.len(), 39);
        let cert = store
            .certificates()
            .find(|c| c.regions() == [region("us-west-2")])
            .unwrap();
        assert_eq!(cert.serial_hex(), "B64BDE5AD00924CC");
        assert_eq!(cert.format(), Format::Rsa2048);
        assert!(cert.not_before() < cert.not_after());
        let found = store.find(
            Format::Rsa2048,
            &cert.issuer,
            &[0, 0xB6, 0x4B, 0xDE, 0x5A, 0xD0, 0x09, 0x24, 0xCC],
        );
        assert!(found.is_some_and(|c| c.covers(&region("us-west-2"))));
        assert!(
            store
                .find(Format::Rsa2048, b"other issuer", cert.serial())
                .is_none()
        );
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
    }

    #[test]
    fn bad_certificates() {
        let mut store = TrustStore::empty();
        let err = |r: Result<&mut TrustStore, Error>| match r {
            Err(Error::BadCertificate { reason }) => reason,
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
        let aws_pem = crate::aws::RSA2048[0].pem.as_bytes();
        let mut store = TrustStore::empty();
        store
            .add_pem(Format::Rsa2048, aws_pem, [region("us-east-1")])
            .unwrap();
        // Another key under the same issuer and serial must not be merged silently.
        store.certificates[0].spki = vec![0x30, 0x00];
        let serial = store.certificates[0].serial_hex();
        let again = store.add_pem(Format::Rsa2048, aws_pem, [region("us-east-1")]);
        assert_eq!(
            again.map(|_| ()),
            Err(Error::ConflictingCertificate { serial })
        );
    }

    #[test]
    fn serials_compare_without_leading_zeros() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), &[1, 0]);
        assert!(strip_leading_zeros(&[0, 0]).is_empty());
        assert_eq!(hex_upper(&[0x0a, 0xbc]), "0ABC");
    }
}
