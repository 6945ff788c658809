//! The CA: its certificate chain and key, and the signing of one certificate.

use core::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use ec2_iid::JoinOutcome;
use rcgen::string::Ia5String;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::csr::{self, Csr, KeyPolicy, KeyType};
use crate::error::{ConfigError, IssueError, bounded};
use crate::profile::{Profile, private_dns_name};

/// The most certificates a CA chain may hold.
const MAX_CHAIN: usize = 8;

/// How far notBefore is set back from `now`, for relying parties whose clocks are slightly
/// behind.
const BACKDATE: TimeDelta = TimeDelta::minutes(1);

/// A signing CA: its certificate (a root or an intermediate), the certificates above it, and
/// its key. Built once at setup; [`Issuer::issue`] then signs without I/O.
///
/// The key never appears in `Debug` output or in errors.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// # let chain = include_str!("../tests/data/ca/intermediate-chain.pem");
/// # let key = include_str!("../tests/data/ca/intermediate.key");
/// let issuer = ec2_iid_ca::Issuer::from_pem(chain, key)?;
/// // The root: what relying parties trust (`openssl verify -CAfile bundle.pem`).
/// assert!(issuer.bundle_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// # Ok::<(), ec2_iid_ca::ConfigError>(())
/// ```
pub struct Issuer {
    signer: rcgen::Issuer<'static, KeyPair>,
    subject: String,
    not_after: DateTime<Utc>,
    /// What a certificate presented for renewal is checked against (`renewal`).
    pub(crate) ca: CaKey,
    /// The given certificates but the last (the bundle's), PEM: the signing CA when it is an
    /// intermediate and those above it, sent with each leaf.
    intermediates_pem: String,
    bundle_pem: String,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The signing CA's name and public key, to recognise the certificates it issued.
#[derive(Clone, Debug)]
pub(crate) struct CaKey {
    /// The CA certificate's subject, DER: a certificate it issued names it as issuer.
    pub(crate) subject_der: Vec<u8>,
    /// The CA's public key (the SubjectPublicKeyInfo's bit string).
    pub(crate) public_key: Vec<u8>,
    pub(crate) key_type: KeyType,
}

/// The names a certificate carries: who it is issued to.
pub(crate) struct Identity<'a> {
    pub(crate) host_id: &'a str,
    pub(crate) spiffe_id: String,
    pub(crate) dns_name: Option<String>,
}

/// A certificate issued to a joined instance.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Issued {
    /// The certificate, then the intermediates up to (not including) the bundle's CA, PEM:
    /// what the instance presents in TLS.
    pub chain_pem: String,
    /// The certificate alone, DER.
    pub certificate_der: Vec<u8>,
    /// The serial number, lowercase hex of its big-endian bytes without leading zeros.
    pub serial: String,
    /// notBefore: `now` − 1 minute, in whole seconds as the certificate says.
    pub not_before: DateTime<Utc>,
    /// notAfter: `now` + the profile's TTL, or the CA certificate's notAfter if that is sooner.
    pub not_after: DateTime<Utc>,
    /// The URI SAN.
    pub spiffe_id: String,
    /// The DNS SAN, when the profile has one.
    pub dns_name: Option<String>,
}

impl Issuer {
    /// A CA from its certificate chain (PEM `CERTIFICATE` blocks: the signing CA first, then
    /// each issuer in turn; the last is what relying parties trust) and its key (PEM
    /// `PRIVATE KEY`, `EC PRIVATE KEY` or `RSA PRIVATE KEY`: ECDSA P-256/P-384, Ed25519 or RSA).
    ///
    /// # Errors
    ///
    /// [`ConfigError`]: no or unparsable certificates, a chain out of order, a first
    /// certificate that is not a CA, an unparsable or encrypted key, or a key that is not the
    /// first certificate's.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Self, ConfigError> {
        let ders = chain_ders(chain_pem)?;
        let certs = ders
            .iter()
            .enumerate()
            .map(|(i, der)| match X509Certificate::from_der(der) {
                Ok(([], cert)) => Ok(cert),
                Ok(_) => Err(ConfigError::CaChain {
                    reason: format!("certificate {i} has bytes after it"),
                }),
                Err(e) => Err(ConfigError::CaChain {
                    reason: bounded(&format!("certificate {i} does not parse: {e}")),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (index, pair) in certs.windows(2).enumerate() {
            if let [cert, next] = pair
                && cert.issuer().as_raw() != next.subject().as_raw()
            {
                return Err(ConfigError::CaChainOrder {
                    index,
                    next: index.saturating_add(1),
                });
            }
        }
        let (Some(ca), Some(ca_der), Some(last_der)) = (certs.first(), ders.first(), ders.last())
        else {
            return Err(ConfigError::CaChain {
                reason: "no certificate".to_owned(),
            });
        };
        let subject = bounded(&ca.subject().to_string());
        check_is_ca(ca, &subject)?;
        let key = ca_key(key_pem)?;
        if key.public_key_raw() != &*ca.public_key().subject_public_key.data {
            return Err(ConfigError::CaKeyMismatch { subject });
        }
        let ca_key = CaKey {
            subject_der: ca.subject().as_raw().to_vec(),
            public_key: ca.public_key().subject_public_key.data.to_vec(),
            key_type: csr::key_type(ca.public_key(), KeyPolicy::AllowRsa).map_err(|e| {
                ConfigError::CaChain {
                    reason: bounded(&format!("the CA's key cannot check renewals: {e}")),
                }
            })?,
        };
        let not_after = DateTime::from_timestamp(ca.validity().not_after.timestamp(), 0)
            .ok_or_else(|| ConfigError::CaChain {
                reason: "the CA certificate's notAfter is out of range".to_owned(),
            })?;
        let intermediates_pem = ders
            .get(..ders.len().saturating_sub(1))
            .unwrap_or_default()
            .iter()
            .map(|der| pem_cert(der))
            .collect();
        let signer =
            rcgen::Issuer::from_ca_cert_der(&ca_der.as_slice().into(), key).map_err(|e| {
                ConfigError::CaChain {
                    reason: bounded(&format!("the CA certificate is not usable: {e}")),
                }
            })?;
        Ok(Self {
            signer,
            subject,
            not_after,
            ca: ca_key,
            intermediates_pem,
            bundle_pem: pem_cert(last_der),
        })
    }

    /// The CA certificate relying parties should trust, PEM: the last certificate given (the
    /// root, when the chain was given up to it).
    #[must_use]
    pub fn bundle_pem(&self) -> &str {
        &self.bundle_pem
    }

    /// The signing CA certificate's notAfter: no certificate it issues outlives it.
    #[must_use]
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// Signs a certificate for the key of `csr`, for the instance of `outcome`, as `profile`
    /// says: subject CN = host id; URI SAN = the SPIFFE ID; the private DNS name if the
    /// profile asks; EKU clientAuth (and serverAuth if the profile asks); keyUsage
    /// digitalSignature (and keyEncipherment for an RSA key); basicConstraints CA:FALSE;
    /// subject and authority key identifiers; notBefore `now` − 1 minute; notAfter `now` +
    /// TTL, **capped** at the CA certificate's notAfter (a CA near its end issues shorter
    /// certificates rather than none); serial = `serial` with its top bit cleared (a positive
    /// 127-bit INTEGER; pass 16 random bytes).
    ///
    /// # Errors
    ///
    /// [`IssueError::CaExpired`] if the CA certificate's notAfter is not after `now`;
    /// [`IssueError::NoPrivateIp`] with a DNS SAN and no IPv4 `privateIp`;
    /// [`IssueError::SpiffeId`] or [`IssueError::Sign`] if encoding or signing fails.
    pub fn issue(
        &self,
        outcome: &JoinOutcome,
        csr: &Csr,
        profile: &Profile,
        now: DateTime<Utc>,
        serial: [u8; 16],
    ) -> Result<Issued, IssueError> {
        let spiffe_id = profile.spiffe_id(outcome)?;
        let dns_name = if profile.dns_san() {
            Some(private_dns_name(outcome)?)
        } else {
            None
        };
        let identity = Identity {
            host_id: outcome.host_id(),
            spiffe_id,
            dns_name,
        };
        self.sign(identity, csr, profile, now, serial)
    }

    /// Signs a certificate for `identity` and the key of `csr`, as [`Issuer::issue`] says.
    pub(crate) fn sign(
        &self,
        identity: Identity<'_>,
        csr: &Csr,
        profile: &Profile,
        now: DateTime<Utc>,
        serial: [u8; 16],
    ) -> Result<Issued, IssueError> {
        if self.not_after <= now {
            return Err(IssueError::CaExpired {
                not_after: self.not_after,
            });
        }
        let Identity {
            host_id,
            spiffe_id,
            dns_name,
        } = identity;
        // Whole seconds: what the certificate can say (X.509 times have no fractions).
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let not_before = now - BACKDATE;
        let ttl = TimeDelta::from_std(profile.ttl()).unwrap_or(TimeDelta::hours(1));
        let not_after = now
            .checked_add_signed(ttl)
            .map_or(self.not_after, |t| t.min(self.not_after));
        let serial = positive_serial(serial);

        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host_id);
        params
            .subject_alt_names
            .push(SanType::URI(ia5(&spiffe_id)?));
        if let Some(dns) = &dns_name {
            params.subject_alt_names.push(SanType::DnsName(ia5(dns)?));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages.push(KeyUsagePurpose::DigitalSignature);
        if matches!(csr.key_type(), KeyType::Rsa { .. }) {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
        if profile.server_auth() {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        params.not_before = offset_time(not_before)?;
        params.not_after = offset_time(not_after)?;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.use_authority_key_identifier_extension = true;

        let key = rcgen::SubjectPublicKeyInfo::from_der(csr.public_key_der()).map_err(sign_err)?;
        let cert = params.signed_by(&key, &self.signer).map_err(sign_err)?;
        let mut chain_pem = cert.pem();
        chain_pem.push_str(&self.intermediates_pem);
        let start = serial.iter().position(|b| *b != 0).unwrap_or(0);
        Ok(Issued {
            chain_pem,
            certificate_der: cert.der().to_vec(),
            serial: serial_hex(serial.get(start..).unwrap_or_default()),
            not_before,
            not_after,
            spiffe_id,
            dns_name,
        })
    }
}

/// Lowercase hex of serial bytes (leading zeros already dropped), as [`Issued::serial`] and
/// `Presented::serial` give it.
pub(crate) fn serial_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The serial as a positive INTEGER: top bit cleared, and never zero.
fn positive_serial(mut serial: [u8; 16]) -> [u8; 16] {
    if let Some(first) = serial.first_mut() {
        *first &= 0x7f;
    }
    if serial.iter().all(|b| *b == 0)
        && let Some(last) = serial.last_mut()
    {
        *last = 1;
    }
    serial
}

fn ia5(text: &str) -> Result<Ia5String, IssueError> {
    Ia5String::try_from(text).map_err(|e| IssueError::Sign {
        reason: bounded(&e.to_string()),
    })
}

fn offset_time(t: DateTime<Utc>) -> Result<time::OffsetDateTime, IssueError> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|_| IssueError::Sign {
        reason: "validity time out of range".to_owned(),
    })
}

fn sign_err(e: rcgen::Error) -> IssueError {
    IssueError::Sign {
        reason: bounded(&e.to_string()),
    }
}

fn pem_cert(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// The DER of each `CERTIFICATE` block of `chain_pem`.
fn chain_ders(chain_pem: &str) -> Result<Vec<Vec<u8>>, ConfigError> {
    let mut ders = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(chain_pem.as_bytes()) {
        let block = block.map_err(|e| ConfigError::CaChain {
            reason: bounded(&format!("bad PEM: {e}")),
        })?;
        if block.label != "CERTIFICATE" {
            return Err(ConfigError::CaChain {
                reason: format!(
                    "a `{}` block: give only certificates (the key goes on its own)",
                    bounded(&block.label).escape_debug()
                ),
            });
        }
        if ders.len() == MAX_CHAIN {
            return Err(ConfigError::CaChain {
                reason: format!("more than {MAX_CHAIN} certificates"),
            });
        }
        ders.push(block.contents);
    }
    if ders.is_empty() {
        return Err(ConfigError::CaChain {
            reason: "no PEM `CERTIFICATE` block".to_owned(),
        });
    }
    Ok(ders)
}

fn check_is_ca(ca: &X509Certificate<'_>, subject: &str) -> Result<(), ConfigError> {
    let not_ca = |reason| ConfigError::CaCertNotCa {
        subject: subject.to_owned(),
        reason,
    };
    match ca.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {}
        Ok(_) => return Err(not_ca("has no basicConstraints CA:TRUE")),
        Err(_) => return Err(not_ca("has a malformed basicConstraints")),
    }
    match ca.key_usage() {
        Ok(None) => Ok(()),
        Ok(Some(ku)) if ku.value.key_cert_sign() => Ok(()),
        Ok(Some(_)) => Err(not_ca("has a keyUsage without keyCertSign")),
        Err(_) => Err(not_ca("has a malformed keyUsage")),
    }
}

/// The CA key from the first private-key block of `key_pem`. Errors never quote the key.
fn ca_key(key_pem: &str) -> Result<KeyPair, ConfigError> {
    let mut found = None;
    for block in x509_parser::pem::Pem::iter_from_buffer(key_pem.as_bytes()) {
        let Ok(block) = block else {
            return Err(ConfigError::CaKey { reason: "bad PEM" });
        };
        if block.label == "ENCRYPTED PRIVATE KEY" {
            return Err(ConfigError::CaKey {
                reason: "the key is encrypted; decrypt it into a file only the service can read",
            });
        }
        if block.label.ends_with("PRIVATE KEY") {
            found = Some(block.contents);
            break;
        }
    }
    let der = found.ok_or(ConfigError::CaKey {
        reason: "no PEM private key block",
    })?;
    KeyPair::try_from(der.as_slice()).map_err(|_| ConfigError::CaKey {
        reason: "the key does not parse, or is of an unsupported type",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_positive_and_never_zero() {
        assert_eq!(positive_serial([0xff; 16])[0], 0x7f);
        assert_eq!(positive_serial([0x80; 16])[0], 0);
        let zero = positive_serial([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(zero[15], 1);
    }
}
