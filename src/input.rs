//! One entry point for the three IMDS signature formats: what the caller has, and which checks
//! it opted into.

use crate::error::Error;
use crate::oids;
use crate::pkcs7::{UnverifiedSignedData, parse_document};
use crate::signature::{VerifiedDocument, verify_cms, verify_detached, verify_signature_with};
use crate::trust::{Format, TrustStore};

/// A signed identity document as fetched from IMDS, in one of its three formats.
///
/// ```
/// use ec2_iid::SignedInput;
///
/// let blob = include_bytes!("../tests/data/gen/rsa2048.b64");
/// let document = include_bytes!("../tests/data/gen/document.json");
/// let signature = include_bytes!("../tests/data/gen/signature.b64");
/// for input in [
///     SignedInput::Cms(blob),
///     SignedInput::Rsa2048(blob),
///     SignedInput::Signature { document, signature },
/// ] {
///     println!("{input:?}: {:?}", input.format());
/// }
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum SignedInput<'a> {
    /// A CMS blob of either format (`/rsa2048` or `/pkcs7`), told apart by
    /// [`detect_cms_format`]. Text or binary, as [`parse_document`] accepts.
    Cms(&'a [u8]),
    /// `/latest/dynamic/instance-identity/pkcs7`: refused unless
    /// [`VerifyOptions::allow_legacy_dsa_sha1`] is set.
    Pkcs7(&'a [u8]),
    /// `/latest/dynamic/instance-identity/rsa2048`.
    Rsa2048(&'a [u8]),
    /// `/latest/dynamic/instance-identity/document` and `/signature`.
    Signature {
        /// The document bytes exactly as served (no trailing newline added or removed): the
        /// signature covers these bytes, and the identity is parsed from them.
        document: &'a [u8],
        /// The base64 text of the signature, as served (line breaks allowed).
        signature: &'a [u8],
    },
}

impl SignedInput<'_> {
    /// The format, or `None` for [`SignedInput::Cms`] (known after parsing).
    #[must_use]
    pub fn format(&self) -> Option<Format> {
        match self {
            Self::Cms(_) => None,
            Self::Pkcs7(_) => Some(Format::Pkcs7),
            Self::Rsa2048(_) => Some(Format::Rsa2048),
            Self::Signature { .. } => Some(Format::Signature),
        }
    }
}

/// Checks a caller opts into, beyond the defaults. `Default` is the strict setting.
///
/// ```
/// use ec2_iid::VerifyOptions;
///
/// let strict = VerifyOptions::default();
/// assert!(!strict.legacy_dsa_sha1_allowed());
/// let legacy = VerifyOptions::default().allow_legacy_dsa_sha1(true);
/// assert!(legacy.legacy_dsa_sha1_allowed());
/// ```
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct VerifyOptions {
    allow_legacy_dsa_sha1: bool,
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

    /// Refuses a format these options do not allow.
    pub(crate) fn check_format(&self, format: Format) -> Result<(), Error> {
        match format {
            Format::Pkcs7 if !self.allow_legacy_dsa_sha1 => {
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
/// use ec2_iid::{Format, TrustStore, detect_cms_format, parse_document};
///
/// let trust = TrustStore::aws();
/// let rsa2048 = parse_document(include_bytes!("../tests/data/gen/rsa2048.b64"))?;
/// assert_eq!(detect_cms_format(&rsa2048, &trust), Format::Rsa2048);
/// let pkcs7 = parse_document(include_bytes!("../tests/data/gen/pkcs7.b64"))?;
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

/// Verifies a signed document in any format and parses the identity it signs.
///
/// * [`SignedInput::Rsa2048`]: as [`verify_signature`](crate::verify_signature).
/// * [`SignedInput::Pkcs7`]: refused with [`Error::LegacyAlgorithmRefused`] unless `options`
///   allow it (before any parsing), then as
///   [`verify_signature_with`](crate::verify_signature_with) for `/pkcs7`.
/// * [`SignedInput::Cms`]: the format is detected ([`detect_cms_format`]), then as above.
/// * [`SignedInput::Signature`]: the base64 signature is decoded; only the document's `region`
///   is read, to pick the `/signature` keys trusted for that region
///   ([`Error::UnsupportedRegion`] if none); one of them must verify RSASSA-PKCS1-v1_5 with
///   SHA-256 over exactly the document bytes; only then is the document parsed and returned.
///   AWS's `/signature` keys are RSA-1024, accepted for this format only.
///
/// ```
/// use ec2_iid::{Format, SignedInput, TrustStore, VerifyOptions, verify_input};
///
/// let mut trust = TrustStore::empty();
/// trust.add_pem(Format::Signature, include_bytes!("../tests/data/testca/testca.pem"),
///     ["us-east-1".parse()?])?;
/// let input = SignedInput::Signature {
///     document: include_bytes!("../tests/data/gen/document.json"),
///     signature: include_bytes!("../tests/data/gen/signature.b64"),
/// };
/// let verified = verify_input(input, &trust, &VerifyOptions::default())?;
/// assert_eq!(verified.signer().format, Format::Signature);
/// assert_eq!(verified.host_id(), "123456789012-i-0123456789abcdef0");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`parse_document`] and [`verify_signature`](crate::verify_signature) for CMS blobs, plus
/// [`Error::LegacyAlgorithmRefused`]; for `/signature`: [`Error::InputTooLarge`] (over
/// [`MAX_BLOB_LEN`](crate::MAX_BLOB_LEN) each), [`Error::Base64`], [`Error::InvalidDocument`]
/// (no readable region, or an invalid document), [`Error::UnsupportedRegion`] and
/// [`Error::InvalidSignature`].
pub fn verify_input(
    input: SignedInput<'_>,
    trust: &TrustStore,
    options: &VerifyOptions,
) -> Result<VerifiedDocument, Error> {
    match input {
        SignedInput::Cms(blob) => verify_signature_with(parse_document(blob)?, trust, options),
        SignedInput::Pkcs7(blob) => {
            options.check_format(Format::Pkcs7)?;
            verify_cms(parse_document(blob)?, Format::Pkcs7, trust)
        }
        SignedInput::Rsa2048(blob) => verify_cms(parse_document(blob)?, Format::Rsa2048, trust),
        SignedInput::Signature {
            document,
            signature,
        } => verify_detached(document, signature, trust),
    }
}
