//! Stage 3, the signature: from an unverified SignedData (or a `/signature` pair) to a
//! [`VerifiedDocument`]. The signer is the trusted key named by the signature's own issuer and
//! serial (for `/signature`, the keys of the document's region); the signature is checked over
//! the exact bytes that are then parsed as the identity document. Input: unverified bytes and a
//! [`TrustStore`]. Output: the verified document and its [`Signer`].

pub(crate) mod document;
pub(crate) mod verify_input;

use chrono::{DateTime, Utc};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::cms::ber;
use crate::cms::oids;
use crate::cms::signed_data::{AlgorithmIdentifier, MAX_BLOB_LEN, UnverifiedSignedData};
use crate::error::Error;
use crate::ids::{Region, SerialNumber};
use crate::input::Format;
use crate::input::b64;
use crate::signature::document::IdentityDocument;
use crate::trust::{KeyMaterial, TrustStore, TrustedCertificate, TrustedKey, issuer_display};

/// An identity document whose AWS signature was verified.
///
/// Only this crate can make one, so holding one proves that the checks listed on
/// [`verify_input`](crate::verify_input) passed. The document was parsed from exactly the bytes the signature
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

/// The key that signed a [`VerifiedDocument`], named by one of its certificates.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, serde::Serialize)]
pub struct Signer {
    /// The format the document was signed in.
    pub format: Format,
    /// The document's region, which the key is trusted for.
    pub region: Region,
    /// The certificate's serial number: for CMS formats the certificate the
    /// blob names; for `/signature` the most recent certificate of the key for the region.
    pub serial: SerialNumber,
    /// The `signingTime` signed attribute, if the signature had one (never for `/signature`).
    pub signing_time: Option<DateTime<Utc>>,
}

/// Verifies AWS's signature on a parsed `/rsa2048` blob and parses the signed document: the
/// `/rsa2048` checks of [`verify_input`](crate::verify_input), for a blob parsed already
/// (benchmarks and tests time the two steps apart).
///
/// # Errors
/// As [`verify_input`](crate::verify_input) for `/rsa2048`: [`Error::UnexpectedContentType`],
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
    verify_cms(signed, Format::Rsa2048, trust)
}

/// The CMS checks of [`verify_input`](crate::verify_input) for `format` (`Rsa2048` or `Pkcs7`).
pub(crate) fn verify_cms(
    signed: UnverifiedSignedData,
    format: Format,
    trust: &TrustStore,
) -> Result<VerifiedDocument, Error> {
    check_content_type(signed.content_type())?;
    let digest_algorithm = signed.digest_algorithm();
    let signature_algorithm = signed.signature_algorithm();
    let scheme = cms_scheme(format, digest_algorithm, signature_algorithm)?;
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
    let content_digest = scheme.digest.hash(&[signed.content()]);
    if !bool::from(message_digest.ct_eq(content_digest.as_slice())) {
        return Err(Error::DigestMismatch);
    }
    check_algorithm_protection(&signed, digest_algorithm, signature_algorithm)?;

    let (key, cert) = trust
        .find_signer(format, signed.signer_issuer(), signed.signer_serial())
        .ok_or_else(|| unknown_signer(trust, format, &signed))?;
    let signing_time = signed.signing_time();
    if let Some(time) = signing_time
        && (time < key.not_before() || time > key.not_after())
    {
        return Err(Error::SigningTimeOutsideValidity { signing_time: time });
    }
    // The signature covers the DER SET OF attributes: the transmitted [0] with tag 0x31.
    let attributes_digest = scheme.digest.hash(&[
        &[ber::TAG_SET],
        signed_attributes.get(1..).unwrap_or_default(),
    ]);
    verify_with(key, scheme, &attributes_digest, signed.signature())?;

    let content = signed.into_content();
    let document = IdentityDocument::from_json(&content)?;
    let signer = signer_for(key, cert, &document, format, signing_time)?;
    Ok(VerifiedDocument {
        document,
        content,
        signer,
    })
}

/// Verifies a `/signature` pair: `signature` (the base64 text IMDS serves, any whitespace)
/// is an RSASSA-PKCS1-v1_5 SHA-256 signature over exactly the bytes of `document`.
///
/// Only the document's `region` is read before verification, to pick the keys trusted for that
/// region; the document is parsed and returned only after one of them verifies the signature.
pub(crate) fn verify_detached(
    document: &[u8],
    signature: &[u8],
    trust: &TrustStore,
) -> Result<VerifiedDocument, Error> {
    let format = Format::Signature;
    for input in [document, signature] {
        if input.len() > MAX_BLOB_LEN {
            return Err(Error::InputTooLarge {
                len: input.len(),
                max: MAX_BLOB_LEN,
            });
        }
    }
    let signature = decode_signature_text(signature)?;
    let region = IdentityDocument::unverified_region(document)?;
    let digest: [u8; 32] = Sha256::digest(document).into();
    let mut candidates = trust.keys_for_region(format, &region).peekable();
    if candidates.peek().is_none() {
        return Err(Error::UnsupportedRegion { format, region });
    }
    let key = candidates
        .find(|key| {
            verify_with(
                key,
                Scheme::RSA_SHA256,
                &DigestValue::Sha256(digest),
                &signature,
            )
            .is_ok()
        })
        .ok_or(Error::InvalidSignature)?;
    let cert = key
        .certificate_for(&region)
        .ok_or(Error::InvalidSignature)?;
    let parsed = IdentityDocument::from_json(document)?;
    let signer = signer_for(key, cert, &parsed, format, None)?;
    if signer.region != region {
        // Cannot happen: both reads parse the same bytes with the same rules.
        return Err(Error::RegionMismatch {
            region: signer.region,
            serial: signer.serial,
        });
    }
    Ok(VerifiedDocument {
        document: parsed,
        content: document.to_vec(),
        signer,
    })
}

/// The raw signature from `/signature` text: standard base64, ASCII whitespace ignored.
fn decode_signature_text(text: &[u8]) -> Result<Vec<u8>, Error> {
    b64::decode_ignoring_whitespace(text)
        .filter(|signature| !signature.is_empty())
        .ok_or(Error::Base64)
}

/// The error for a signer no trusted certificate names, with what the store knows of it.
fn unknown_signer(trust: &TrustStore, format: Format, signed: &UnverifiedSignedData) -> Error {
    let (issuer, serial) = (signed.signer_issuer(), signed.signer_serial());
    let (known_issuer, known_serial) = trust.signer_clues(format, issuer, serial);
    Error::UnknownSigner {
        serial: SerialNumber::from_be_bytes(serial),
        issuer: issuer_display(issuer),
        known_issuer,
        known_serial,
    }
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

/// A digest algorithm the formats use.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum DigestAlgorithm {
    Sha1,
    Sha256,
}

impl DigestAlgorithm {
    fn hash(self, parts: &[&[u8]]) -> DigestValue {
        match self {
            Self::Sha1 => {
                let mut hasher = Sha1::new();
                parts.iter().for_each(|part| hasher.update(part));
                DigestValue::Sha1(hasher.finalize().into())
            }
            Self::Sha256 => {
                let mut hasher = Sha256::new();
                parts.iter().for_each(|part| hasher.update(part));
                DigestValue::Sha256(hasher.finalize().into())
            }
        }
    }
}

enum DigestValue {
    Sha1([u8; 20]),
    Sha256([u8; 32]),
}

impl DigestValue {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Sha1(d) => d,
            Self::Sha256(d) => d,
        }
    }
}

/// How a signature is verified: which key algorithm, over which digest.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
struct Scheme {
    dsa: bool,
    digest: DigestAlgorithm,
}

impl Scheme {
    const RSA_SHA256: Self = Self {
        dsa: false,
        digest: DigestAlgorithm::Sha256,
    };
}

/// The algorithms a format accepts: `/rsa2048` RSA with SHA-256; `/pkcs7` DSA with SHA-1, or
/// RSA with SHA-1 or SHA-256 (China). Parameters must be NULL or absent.
fn cms_scheme(
    format: Format,
    digest: AlgorithmIdentifier<'_>,
    signature: AlgorithmIdentifier<'_>,
) -> Result<Scheme, Error> {
    let digest_algorithm = match (format, digest.oid) {
        (_, oids::SHA256) => Some(DigestAlgorithm::Sha256),
        (Format::Pkcs7, oids::SHA1) => Some(DigestAlgorithm::Sha1),
        _ => None,
    }
    .filter(|_| digest.has_null_or_no_parameters())
    .ok_or_else(|| Error::UnsupportedDigestAlgorithm {
        oid: digest.oid_string(),
    })?;
    let dsa = match (format, signature.oid, digest_algorithm) {
        (Format::Rsa2048 | Format::Pkcs7, oids::RSA_ENCRYPTION, _)
        | (Format::Rsa2048 | Format::Pkcs7, oids::SHA256_WITH_RSA, DigestAlgorithm::Sha256)
        | (Format::Pkcs7, oids::SHA1_WITH_RSA, DigestAlgorithm::Sha1) => Some(false),
        (Format::Pkcs7, oids::DSA_WITH_SHA1 | oids::ID_DSA, DigestAlgorithm::Sha1) => Some(true),
        _ => None,
    }
    .filter(|_| signature.has_null_or_no_parameters())
    .ok_or_else(|| Error::UnsupportedSignatureAlgorithm {
        oid: signature.oid_string(),
    })?;
    Ok(Scheme {
        dsa,
        digest: digest_algorithm,
    })
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

/// A key of another algorithm than the scheme cannot have made the signature.
fn verify_with(
    key: &TrustedKey,
    scheme: Scheme,
    digest: &DigestValue,
    signature: &[u8],
) -> Result<(), Error> {
    match (key.material()?, scheme.dsa, digest) {
        (KeyMaterial::Rsa { key, .. }, false, DigestValue::Sha256(d)) => {
            key.verify_sha256_digest(d, signature)
        }
        (
            KeyMaterial::Rsa {
                sha1: Some(key), ..
            },
            false,
            DigestValue::Sha1(d),
        ) => key.verify_sha1_digest(d, signature),
        (KeyMaterial::Dsa(key), true, DigestValue::Sha1(d)) => key.verify_sha1_digest(d, signature),
        _ => Err(Error::InvalidSignature),
    }
}

/// The region check runs only after the signature holds: before, the region is unverified.
fn signer_for(
    key: &TrustedKey,
    cert: &TrustedCertificate,
    document: &IdentityDocument,
    format: Format,
    signing_time: Option<DateTime<Utc>>,
) -> Result<Signer, Error> {
    if !key.covers(&document.region) {
        return Err(Error::RegionMismatch {
            region: document.region.clone(),
            serial: cert.serial().clone(),
        });
    }
    Ok(Signer {
        format,
        region: document.region.clone(),
        serial: cert.serial().clone(),
        signing_time,
    })
}
