//! Signature verification: from an unverified SignedData to a [`VerifiedDocument`].

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::ber;
use crate::document::{IdentityDocument, Region};
use crate::error::Error;
use crate::oids;
use crate::pkcs7::{AlgorithmIdentifier, UnverifiedSignedData};
use crate::trust::{Format, TrustStore, TrustedCertificate, TrustedKey, hex_upper};

/// An identity document whose AWS signature was verified.
///
/// Only this crate can make one, so holding one proves that the checks listed on
/// [`verify_signature`] passed. The document was parsed from exactly the bytes the signature
/// covers.
#[derive(Clone, Debug)]
pub struct VerifiedDocument {
    document: IdentityDocument,
    content: Vec<u8>,
    signer: Signer,
}

impl VerifiedDocument {
    /// The signed document.
    #[must_use]
    pub fn document(&self) -> &IdentityDocument {
        &self.document
    }

    /// The signed content bytes, exactly as AWS wrote them (the document's JSON text).
    #[must_use]
    pub fn content(&self) -> &[u8] {
        &self.content
    }

    /// Who signed it.
    #[must_use]
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Teleport's host id for the instance: `<accountId>-<instanceId>`.
    #[must_use]
    pub fn host_id(&self) -> String {
        self.document.host_id()
    }
}

/// The certificate that signed a [`VerifiedDocument`].
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Signer {
    /// The format the document was signed in.
    pub format: Format,
    /// The region the certificate was trusted for that matched the document's region.
    pub region: Region,
    /// The certificate's serial number in upper-case hex.
    pub serial: String,
    /// The `signingTime` signed attribute, if the signature had one.
    pub signing_time: Option<DateTime<Utc>>,
}

/// Verifies AWS's signature on a parsed `/rsa2048` blob and parses the signed document.
///
/// Checks, in this order, each failure with its own error:
/// 1. the encapsulated content type is `id-data`;
/// 2. the digest algorithm is SHA-256 (NULL or absent parameters);
/// 3. the signature algorithm is `rsaEncryption` or `sha256WithRSAEncryption`;
/// 4. signed attributes are present, their `contentType` is `id-data` and their
///    `messageDigest` equals SHA-256 of the content (compared in constant time);
/// 5. a CMSAlgorithmProtection attribute, if present, names the same algorithms;
/// 6. the signer's issuer and serial number name a certificate in `trust` for this format
///    (certificates embedded in the blob are ignored);
/// 7. the `signingTime`, if present, lies within that certificate's validity;
/// 8. the RSA PKCS#1 v1.5 signature verifies over the signed attributes exactly as
///    transmitted;
/// 9. the content is a valid [`IdentityDocument`], and its `region` is one the certificate is
///    trusted for.
///
/// It does not check freshness, allow rules or the instance's state: see
/// [`check_ttl`](crate::check_ttl), [`match_allow_rules`](crate::match_allow_rules) and
/// [`Verifier`](crate::Verifier).
///
/// ```
/// use ec2_iid::{Format, TrustStore, parse_document, verify_signature};
///
/// let mut trust = TrustStore::empty();
/// trust.add_pem(Format::Rsa2048, include_bytes!("../tests/data/testca/testca.pem"),
///     ["us-east-1".parse()?])?;
/// let signed = parse_document(include_bytes!("../tests/data/gen/rsa2048.b64"))?;
/// let verified = verify_signature(signed, &trust)?;
/// assert_eq!(verified.document().instance_id.as_str(), "i-0123456789abcdef0");
/// assert_eq!(verified.signer().serial, "E1D2C3B4A5968778");
/// # Ok::<(), ec2_iid::Error>(())
/// ```
///
/// # Errors
/// One variant per failed check: [`Error::UnexpectedContentType`],
/// [`Error::UnsupportedDigestAlgorithm`], [`Error::UnsupportedSignatureAlgorithm`],
/// [`Error::MissingSignedAttributes`], [`Error::MissingAttribute`],
/// [`Error::ContentTypeMismatch`], [`Error::DigestMismatch`],
/// [`Error::AlgorithmProtectionMismatch`], [`Error::UnknownSigner`],
/// [`Error::SigningTimeOutsideValidity`], [`Error::InvalidSignature`],
/// [`Error::InvalidDocument`], [`Error::RegionMismatch`].
pub fn verify_signature(
    signed: UnverifiedSignedData,
    trust: &TrustStore,
) -> Result<VerifiedDocument, Error> {
    let format = Format::Rsa2048;
    check_content_type(signed.content_type())?;
    let digest_algorithm = signed.digest_algorithm();
    if digest_algorithm.oid != oids::SHA256 || !digest_algorithm.has_null_or_no_parameters() {
        return Err(Error::UnsupportedDigestAlgorithm {
            oid: digest_algorithm.oid_string(),
        });
    }
    let signature_algorithm = signed.signature_algorithm();
    if !matches!(
        signature_algorithm.oid,
        oids::RSA_ENCRYPTION | oids::SHA256_WITH_RSA
    ) || !signature_algorithm.has_null_or_no_parameters()
    {
        return Err(Error::UnsupportedSignatureAlgorithm {
            oid: signature_algorithm.oid_string(),
        });
    }
    let signed_attributes = signed
        .signed_attributes()
        .ok_or(Error::MissingSignedAttributes)?;
    let content_type = signed
        .content_type_attribute()
        .ok_or(Error::MissingAttribute {
            name: "contentType",
        })?;
    if content_type != oids::DATA {
        return Err(Error::ContentTypeMismatch {
            oid: ber::oid_to_string(content_type),
        });
    }
    let message_digest = signed.message_digest().ok_or(Error::MissingAttribute {
        name: "messageDigest",
    })?;
    let content_digest = Sha256::digest(signed.content());
    if !bool::from(message_digest.ct_eq(content_digest.as_slice())) {
        return Err(Error::DigestMismatch);
    }
    check_algorithm_protection(&signed, digest_algorithm, signature_algorithm)?;

    let cert = trust
        .find(format, signed.signer_issuer(), signed.signer_serial())
        .ok_or_else(|| Error::UnknownSigner {
            serial: hex_upper(signed.signer_serial()),
        })?;
    let signing_time = signed.signing_time();
    if let Some(time) = signing_time
        && (time < cert.not_before() || time > cert.not_after())
    {
        return Err(Error::SigningTimeOutsideValidity { signing_time: time });
    }
    // The signature covers the DER SET OF attributes: the transmitted [0] with tag 0x31.
    let mut hasher = Sha256::new();
    hasher.update([ber::TAG_SET]);
    hasher.update(signed_attributes.get(1..).unwrap_or_default());
    let attributes_digest: [u8; 32] = hasher.finalize().into();
    verify_with(cert, &attributes_digest, signed.signature())?;

    let content = signed.into_content();
    let document = IdentityDocument::from_json(&content)?;
    let signer = signer_for(cert, &document, format, signing_time)?;
    Ok(VerifiedDocument {
        document,
        content,
        signer,
    })
}

fn check_content_type(oid: &[u8]) -> Result<(), Error> {
    if oid == oids::DATA {
        Ok(())
    } else {
        Err(Error::UnexpectedContentType {
            oid: ber::oid_to_string(oid),
        })
    }
}

/// RFC 6211: if the signer protected its algorithm choice, the choice must be the one used.
fn check_algorithm_protection(
    signed: &UnverifiedSignedData,
    digest: AlgorithmIdentifier<'_>,
    signature: AlgorithmIdentifier<'_>,
) -> Result<(), Error> {
    match signed.algorithm_protection() {
        None => Ok(()),
        Some((protected_digest, protected_signature)) => {
            let signature_matches = protected_signature.is_some_and(|s| s.oid == signature.oid);
            if protected_digest.oid == digest.oid && signature_matches {
                Ok(())
            } else {
                Err(Error::AlgorithmProtectionMismatch)
            }
        }
    }
}

fn verify_with(
    cert: &TrustedCertificate,
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<(), Error> {
    match cert.key() {
        TrustedKey::Rsa(key) => key.verify_sha256_digest(digest, signature),
    }
}

/// The region check runs only after the signature holds: before, the region is unverified.
fn signer_for(
    cert: &TrustedCertificate,
    document: &IdentityDocument,
    format: Format,
    signing_time: Option<DateTime<Utc>>,
) -> Result<Signer, Error> {
    if !cert.covers(&document.region) {
        return Err(Error::RegionMismatch {
            region: document.region.clone(),
            serial: cert.serial_hex(),
        });
    }
    Ok(Signer {
        format,
        region: document.region.clone(),
        serial: cert.serial_hex(),
        signing_time,
    })
}
