//! Renewal: a certificate this CA issued, presented again by its holder (over mutual TLS), and a
//! new certificate for the same identity without a new identity document.

use aws_lc_rs::signature;
use chrono::{DateTime, TimeDelta, Utc};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::csr::{self, Csr};
use crate::error::{RenewError, bounded};
use crate::issuer::{Identity, Issued, Issuer, serial_hex};
use crate::profile::Profile;

/// The longest certificate accepted for renewal, DER, in bytes. Longer input is refused before
/// it is parsed.
pub const MAX_CERT_LEN: usize = 16 * 1024;

/// A certificate this CA issued to a joined instance, checked by [`Issuer::check_presented`]:
/// signed by the CA's key and valid at the time of the check. Its names are what
/// [`Issuer::renew`] issues again.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Presented {
    host_id: String,
    spiffe_id: String,
    dns_name: Option<String>,
    serial: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
}

impl Presented {
    /// The subject CN: the host id it was issued to.
    #[must_use]
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// The URI SAN.
    #[must_use]
    pub fn spiffe_id(&self) -> &str {
        &self.spiffe_id
    }

    /// The DNS SAN, if it has one.
    #[must_use]
    pub fn dns_name(&self) -> Option<&str> {
        self.dns_name.as_deref()
    }

    /// The serial, as [`Issued::serial`] gives it.
    #[must_use]
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// When it was issued: its notBefore plus the minute the issuer set it back. A server
    /// compares it with the host's enrollment, so that a certificate from before an eviction
    /// cannot renew a later enrollment.
    #[must_use]
    pub fn issued_at(&self) -> DateTime<Utc> {
        self.not_before + TimeDelta::minutes(1)
    }

    /// Its notAfter.
    #[must_use]
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }
}

impl Issuer {
    /// Checks a certificate presented for renewal (the leaf of a client's mutual-TLS chain,
    /// DER): issued by this CA (its issuer is this CA's subject and its signature verifies with
    /// this CA's key), valid at `now`, not a CA, with one subject CN and one `spiffe://` URI
    /// SAN. A TLS stack that verified the chain already checked most of this; the check does
    /// not rely on it.
    ///
    /// ```
    /// # use chrono::{TimeZone, Utc};
    /// # let issuer = ec2_iid_ca::Issuer::from_pem(
    /// #     include_str!("../tests/data/ca/intermediate-chain.pem"),
    /// #     include_str!("../tests/data/ca/intermediate.key"))?;
    /// let not_a_certificate = b"\x30\x03\x02\x01\x00";
    /// let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0).unwrap();
    /// let err = issuer.check_presented(not_a_certificate, now).unwrap_err();
    /// assert_eq!(err.kind(), "cert_malformed");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RenewError`]: too large or malformed, another issuer, a bad signature, expired or not
    /// yet valid, or not an instance certificate.
    pub fn check_presented(&self, der: &[u8], now: DateTime<Utc>) -> Result<Presented, RenewError> {
        if der.len() > MAX_CERT_LEN {
            return Err(RenewError::TooLarge {
                len: der.len(),
                max: MAX_CERT_LEN,
            });
        }
        let cert = match X509Certificate::from_der(der) {
            Ok(([], cert)) => cert,
            Ok((rest, _)) => {
                return Err(RenewError::Malformed {
                    reason: format!("{} bytes after the certificate", rest.len()),
                });
            }
            Err(e) => {
                return Err(RenewError::Malformed {
                    reason: bounded(&format!("not an X.509 certificate: {e}")),
                });
            }
        };
        self.check_signed_here(&cert)?;
        let (not_before, not_after) = validity(&cert)?;
        if now < not_before {
            return Err(RenewError::NotYetValid { not_before });
        }
        if not_after <= now {
            return Err(RenewError::Expired { not_after });
        }
        let (host_id, spiffe_id, dns_name) = names(&cert)?;
        let serial = cert.raw_serial();
        let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
        Ok(Presented {
            host_id,
            spiffe_id,
            dns_name,
            serial: serial_hex(serial.get(start..).unwrap_or_default()),
            not_before,
            not_after,
        })
    }

    /// Signs a new certificate for the identity of `presented` and the key of `csr` (which may
    /// be a new key), with the profile's lifetime and key usages, as [`Issuer::issue`] does.
    /// The DNS SAN is kept when the profile still asks for one. Checking that the host may
    /// still renew (its enrollment, an eviction) is the caller's part.
    ///
    /// # Errors
    ///
    /// [`RenewError::OtherTrustDomain`] if the profile's trust domain is not the SPIFFE ID's;
    /// [`RenewError::Issue`] as [`Issuer::issue`].
    pub fn renew(
        &self,
        presented: &Presented,
        csr: &Csr,
        profile: &Profile,
        now: DateTime<Utc>,
        serial: [u8; 16],
    ) -> Result<Issued, RenewError> {
        let in_domain = presented
            .spiffe_id
            .strip_prefix("spiffe://")
            .and_then(|rest| rest.strip_prefix(profile.trust_domain()))
            .is_some_and(|path| path.starts_with('/'));
        if !in_domain {
            return Err(RenewError::OtherTrustDomain {
                spiffe_id: bounded(&presented.spiffe_id),
                trust_domain: profile.trust_domain().to_owned(),
            });
        }
        let identity = Identity {
            host_id: &presented.host_id,
            spiffe_id: presented.spiffe_id.clone(),
            dns_name: presented.dns_name.clone().filter(|_| profile.dns_san()),
        };
        Ok(self.sign(identity, csr, profile, now, serial)?)
    }

    /// The certificate names this CA as its issuer and its signature verifies with its key.
    fn check_signed_here(&self, cert: &X509Certificate<'_>) -> Result<(), RenewError> {
        if cert.issuer().as_raw() != self.ca.subject_der.as_slice() {
            return Err(RenewError::NotIssuedHere {
                issuer: bounded(&cert.issuer().to_string()),
            });
        }
        let alg = csr::verification_alg(self.ca.key_type, &cert.signature_algorithm.algorithm)
            .map_err(|_| RenewError::BadSignature)?;
        signature::UnparsedPublicKey::new(alg, &self.ca.public_key)
            .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
            .map_err(|_| RenewError::BadSignature)
    }
}

fn validity(cert: &X509Certificate<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>), RenewError> {
    let time = |t: x509_parser::time::ASN1Time| {
        DateTime::from_timestamp(t.timestamp(), 0).ok_or_else(|| RenewError::Malformed {
            reason: "validity out of range".to_owned(),
        })
    };
    let validity = cert.validity();
    Ok((time(validity.not_before)?, time(validity.not_after)?))
}

/// The CN, the SPIFFE ID and the DNS name of an instance certificate.
fn names(cert: &X509Certificate<'_>) -> Result<(String, String, Option<String>), RenewError> {
    let not_instance = |reason| RenewError::NotAnInstance { reason };
    if cert.is_ca() {
        return Err(not_instance("it is a CA certificate"));
    }
    let mut cns = cert.subject().iter_common_name();
    let host_id = match (cns.next().map(|cn| cn.as_str()), cns.next()) {
        (Some(Ok(cn)), None) => cn.to_owned(),
        _ => return Err(not_instance("it has no single subject CN")),
    };
    let san = cert
        .subject_alternative_name()
        .map_err(|_| not_instance("its subjectAltName is malformed"))?
        .ok_or_else(|| not_instance("it has no subjectAltName"))?;
    let (mut uris, mut dns) = (Vec::new(), Vec::new());
    for name in &san.value.general_names {
        match name {
            GeneralName::URI(uri) => uris.push(*uri),
            GeneralName::DNSName(name) => dns.push(*name),
            _ => return Err(not_instance("it has a SAN other than a URI or a DNS name")),
        }
    }
    let spiffe_id = match uris.as_slice() {
        [uri] if uri.starts_with("spiffe://") => (*uri).to_owned(),
        _ => return Err(not_instance("it has no single spiffe:// URI SAN")),
    };
    let dns_name = match dns.as_slice() {
        [] => None,
        [name] => Some((*name).to_owned()),
        _ => return Err(not_instance("it has more than one DNS SAN")),
    };
    Ok((host_id, spiffe_id, dns_name))
}
