//! One entry point for the three IMDS signature formats: what the caller has, and which checks
//! it opted into.

use crate::cms::oids;
use crate::cms::signed_data::{UnverifiedSignedData, parse_signed_data};
use crate::error::Error;
use crate::input::{Format, SignedInput};
use crate::signature::{VerifiedDocument, verify_cms, verify_detached};
use crate::trust::TrustStore;

/// Checks a caller opts into, beyond the defaults. `Default` is the strict setting.
///
/// ```
/// use ec2_iid::VerifyOptions;
///
/// let strict = VerifyOptions::default();
/// assert!(!strict.legacy_dsa_sha1_allowed());
/// assert!(!strict.legacy_rsa1024_allowed());
/// let legacy = VerifyOptions::default()
///     .allow_legacy_dsa_sha1(true)
///     .allow_legacy_rsa1024(true);
/// assert!(legacy.legacy_dsa_sha1_allowed());
/// assert!(legacy.legacy_rsa1024_allowed());
/// ```
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct VerifyOptions {
    allow_legacy_dsa_sha1: bool,
    allow_legacy_rsa1024: bool,
}

impl VerifyOptions {
    /// Accepts the `/pkcs7` format (default: refused with [`Error::LegacyAlgorithmRefused`]).
    ///
    /// `/pkcs7` is signed with DSA-1024 over SHA-1 (in China with RSA-2048 over a digest AWS
    /// does not document, possibly SHA-1). Both are below current minimums: SHA-1 collisions are
    /// practical (SHAttered, 2017; chosen-prefix, 2020) and DSA-1024 offers about 80 bits of
    /// security, which NIST has not allowed for new signatures since 2013. AWS signs the same
    /// document with RSA-2048 and SHA-256 at `/rsa2048`; use that unless instances can only
    /// send `/pkcs7`.
    #[must_use]
    pub fn allow_legacy_dsa_sha1(mut self, allow: bool) -> Self {
        self.allow_legacy_dsa_sha1 = allow;
        self
    }

    /// Whether `/pkcs7` is accepted.
    #[must_use]
    pub fn legacy_dsa_sha1_allowed(&self) -> bool {
        self.allow_legacy_dsa_sha1
    }

    /// Accepts the `/signature` format (default: refused with
    /// [`Error::LegacyAlgorithmRefused`]).
    ///
    /// AWS signs `/signature` with RSA-1024 keys (PKCS#1 v1.5 over SHA-256), which offer about
    /// 80 bits of security, like DSA-1024: below the 112 bits NIST has required for new
    /// signatures since 2013, and within reach of a well-funded factoring effort. Teleport
    /// accepts only `/rsa2048`; use that unless instances can only send `/document` and
    /// `/signature`.
    #[must_use]
    pub fn allow_legacy_rsa1024(mut self, allow: bool) -> Self {
        self.allow_legacy_rsa1024 = allow;
        self
    }

    /// Whether `/signature` is accepted.
    #[must_use]
    pub fn legacy_rsa1024_allowed(&self) -> bool {
        self.allow_legacy_rsa1024
    }

    /// Refuses a format these options do not allow.
    pub(crate) fn check_format(&self, format: Format) -> Result<(), Error> {
        match format {
            Format::Pkcs7 if !self.allow_legacy_dsa_sha1 => {
                Err(Error::LegacyAlgorithmRefused { format })
            }
            Format::Signature if !self.allow_legacy_rsa1024 => {
                Err(Error::LegacyAlgorithmRefused { format })
            }
            Format::Rsa2048 | Format::Pkcs7 | Format::Signature => Ok(()),
        }
    }
}

/// Which CMS format a parsed blob is in, from its algorithms and signer.
///
/// 1. signature algorithm `dsaWithSHA1` (or `id-dsa`): `/pkcs7`;
/// 2. digest algorithm SHA-1: `/pkcs7` (`/rsa2048` is always SHA-256);
/// 3. a signer (issuer and serial) trusted for `/pkcs7` but not for `/rsa2048`: `/pkcs7`
///    (China's `/pkcs7` is RSA-signed);
/// 4. otherwise `/rsa2048`, whose checks then reject any algorithm it does not use.
///
/// The blob is unverified, but the choice only decides which format's checks and keys apply;
/// all of them run in full, so detection cannot make a blob pass that the format would refuse.
///
/// ```
/// use ec2_iid::{Format, TrustStore};
/// use ec2_iid::dangerous::{detect_cms_format, parse_signed_data};
///
/// let trust = TrustStore::aws();
/// let rsa2048 = parse_signed_data(include_bytes!("../../tests/data/gen/rsa2048.b64"))?;
/// assert_eq!(detect_cms_format(&rsa2048, &trust), Format::Rsa2048);
/// let pkcs7 = parse_signed_data(include_bytes!("../../tests/data/gen/pkcs7.b64"))?;
/// assert_eq!(detect_cms_format(&pkcs7, &trust), Format::Pkcs7);
/// # Ok::<(), ec2_iid::Error>(())
/// ```
#[must_use]
pub fn detect_cms_format(signed: &UnverifiedSignedData, trust: &TrustStore) -> Format {
    let signature = signed.signature_algorithm().oid;
    let digest = signed.digest_algorithm().oid;
    let dsa = matches!(signature, oids::DSA_WITH_SHA1 | oids::ID_DSA);
    let signer = |format| {
        trust
            .find(format, signed.signer_issuer(), signed.signer_serial())
            .is_some()
    };
    if dsa || digest == oids::SHA1 || (signer(Format::Pkcs7) && !signer(Format::Rsa2048)) {
        Format::Pkcs7
    } else {
        Format::Rsa2048
    }
}

/// Verifies a parsed CMS blob of either format, detected with [`detect_cms_format`]:
/// `/pkcs7` only if `options` allow it.
pub(crate) fn verify_signature_with(
    signed: UnverifiedSignedData,
    trust: &TrustStore,
    options: &VerifyOptions,
) -> Result<VerifiedDocument, Error> {
    let format = detect_cms_format(&signed, trust);
    options.check_format(format)?;
    verify_cms(signed, format, trust)
}

/// Verifies a signed document in any format and parses the identity it signs.
///
/// [`SignedInput::Rsa2048`] is checked in this order, each failure with its own error:
/// 1. the encapsulated content type is `id-data`;
/// 2. the digest algorithm is SHA-256 (NULL or absent parameters);
/// 3. the signature algorithm is `rsaEncryption` or `sha256WithRSAEncryption`;
/// 4. signed attributes are present, their `contentType` is `id-data` and their
///    `messageDigest` equals SHA-256 of the content (compared in constant time);
/// 5. a CMSAlgorithmProtection attribute, if present, names the same algorithms;
/// 6. the signer's issuer and serial number name a certificate in `trust` for this format
///    (certificates embedded in the blob are ignored);
/// 7. the `signingTime`, if present, lies within the validity of that certificate's key (see
///    [`TrustedKey`](crate::trust::TrustedKey));
/// 8. the RSA PKCS#1 v1.5 signature verifies over the signed attributes exactly as
///    transmitted;
/// 9. the content is a valid [`IdentityDocument`](crate::IdentityDocument), and its `region` is one the key is trusted
///    for.
///
/// The other inputs:
/// * [`SignedInput::Pkcs7`]: refused with [`Error::LegacyAlgorithmRefused`] unless `options`
///   allow it (before any parsing), then the checks above with the format's algorithms: the
///   digest is SHA-1 (or SHA-256 with RSA, for China's RSA key), the signature `dsaWithSHA1`
///   (strict DER `SEQUENCE { r, s }`) or RSA PKCS#1 v1.5 (`rsaEncryption`,
///   `sha1WithRSAEncryption`, `sha256WithRSAEncryption`), and the signer is looked up among the
///   `/pkcs7` certificates only.
/// * [`SignedInput::Cms`]: the format is detected
///   ([`detect_cms_format`](crate::dangerous::detect_cms_format)), then as above.
/// * [`SignedInput::Signature`]: refused with [`Error::LegacyAlgorithmRefused`] unless
///   `options` allow it (before any parsing); then the base64 signature is decoded; only the
///   document's `region` is read, to pick the `/signature` keys trusted for that region
///   ([`Error::UnsupportedRegion`] if none); one of them must verify RSASSA-PKCS1-v1_5 with
///   SHA-256 over exactly the document bytes; only then is the document parsed and returned.
///   AWS's `/signature` keys are RSA-1024, accepted for this format only.
///
/// It does not check freshness, allow rules or the instance's state: see
/// [`check_ttl`](crate::check_ttl), [`match_allow_rules`](crate::match_allow_rules) and
/// [`Verifier`](crate::Verifier), which runs them all.
///
/// ```
/// use ec2_iid::{Error, Format, SignedInput, TrustStore, VerifyOptions, verify_input};
///
/// let mut trust = TrustStore::empty();
/// trust.add_pem(Format::Rsa2048, include_bytes!("../../tests/data/testca/testca.pem"),
///     ["us-east-1".parse()?])?;
/// trust.add_pem(Format::Signature, include_bytes!("../../tests/data/testca/testca.pem"),
///     ["us-east-1".parse()?])?;
/// let strict = VerifyOptions::default();
///
/// let blob = SignedInput::Rsa2048(include_bytes!("../../tests/data/gen/rsa2048.b64"));
/// let verified = verify_input(blob, &trust, &strict)?;
/// assert_eq!(verified.document().instance_id.as_str(), "i-0123456789abcdef0");
/// assert_eq!(verified.signer().serial.to_string(), "E1D2C3B4A5968778");
///
/// let pair = SignedInput::Signature {
///     document: include_bytes!("../../tests/data/gen/document.json"),
///     signature: include_bytes!("../../tests/data/gen/signature.b64"),
/// };
/// let refused = verify_input(pair, &trust, &strict);
/// assert_eq!(refused.unwrap_err(), Error::LegacyAlgorithmRefused { format: Format::Signature });
/// let verified = verify_input(pair, &trust, &strict.allow_legacy_rsa1024(true))?;
/// assert_eq!(verified.signer().format, Format::Signature);
/// assert_eq!(verified.host_id(), "123456789012-i-0123456789abcdef0");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// For CMS blobs, as [`parse_signed_data`](crate::dangerous::parse_signed_data), then one
/// variant per failed check: [`Error::UnexpectedContentType`],
/// [`Error::UnsupportedDigestAlgorithm`], [`Error::UnsupportedSignatureAlgorithm`],
/// [`Error::MissingSignedAttributes`], [`Error::MissingAttribute`],
/// [`Error::ContentTypeMismatch`], [`Error::DigestMismatch`],
/// [`Error::AlgorithmProtectionMismatch`], [`Error::UnknownSigner`],
/// [`Error::SigningTimeOutsideValidity`], [`Error::InvalidSignature`],
/// [`Error::InvalidDocument`], [`Error::RegionMismatch`]. [`Error::LegacyAlgorithmRefused`] for
/// `/pkcs7` or `/signature` without the opt-in; for `/signature`: [`Error::InputTooLarge`] (over
/// [`MAX_BLOB_LEN`](crate::MAX_BLOB_LEN) each), [`Error::Base64`], [`Error::InvalidDocument`]
/// (no readable region, or an invalid document), [`Error::UnsupportedRegion`] and
/// [`Error::InvalidSignature`].
pub fn verify_input(
    input: SignedInput<'_>,
    trust: &TrustStore,
    options: &VerifyOptions,
) -> Result<VerifiedDocument, Error> {
    match input {
        SignedInput::Cms(blob) => verify_signature_with(parse_signed_data(blob)?, trust, options),
        SignedInput::Pkcs7(blob) => {
            options.check_format(Format::Pkcs7)?;
            verify_cms(parse_signed_data(blob)?, Format::Pkcs7, trust)
        }
        SignedInput::Rsa2048(blob) => verify_cms(parse_signed_data(blob)?, Format::Rsa2048, trust),
        SignedInput::Signature {
            document,
            signature,
        } => {
            options.check_format(Format::Signature)?;
            verify_detached(document, signature, trust)
        }
    }
}
