//! Why a document was refused ([`Error`]) and why a configuration was ([`ConfigError`]).

use core::fmt;
use core::time::Duration;

use chrono::{DateTime, Utc};

use crate::ids::{
    AccountId, InstanceId, InstanceState, InvalidIdentifier, Region, RoleArn, SerialNumber,
};
use crate::input::Format;
use crate::text::short_duration;

/// Why an identity document was rejected; a configuration is refused with [`ConfigError`].
///
/// Variants carry what a log needs to explain the decision; they never carry the raw input.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum Error {
    /// A CMSAlgorithmProtection signed attribute names other algorithms than the SignerInfo.
    #[error("CMSAlgorithmProtection attribute disagrees with the signer's algorithms")]
    AlgorithmProtectionMismatch,

    /// The host id already joined (see [`JoinRegistry`](crate::JoinRegistry)).
    #[error("host {host_id} has already joined")]
    AlreadyJoined {
        /// `<accountId>-<instanceId>`.
        host_id: String,
    },

    /// The base64 text is not valid standard base64 (after removing whitespace and armour).
    #[error("invalid base64 in the signed blob")]
    Base64,

    /// A lookup bound of the matched rule does not hold.
    #[error("instance fact for {bound} is {value:?}, which the matched rule does not allow")]
    BoundViolated {
        /// The rule field, e.g. `aws_vpc_ids`.
        bound: &'static str,
        /// The instance's value.
        value: String,
    },

    /// The `contentType` signed attribute is not `id-data`.
    #[error("contentType signed attribute is {oid}, not id-data")]
    ContentTypeMismatch {
        /// The attribute's OID.
        oid: String,
    },

    /// The `messageDigest` signed attribute is not the digest of the content.
    #[error("messageDigest signed attribute does not match the content")]
    DigestMismatch,

    /// A signed attribute that may occur once occurs more than once.
    #[error("signed attribute {oid} occurs more than once")]
    DuplicateAttribute {
        /// The attribute's OID.
        oid: String,
    },

    /// The instance was launched longer ago than the TTL allows.
    #[error(
        "document with pendingTime {pending_time} is {} old at {now}, older than the TTL of {}",
        short_duration(now.signed_duration_since(*pending_time).to_std().unwrap_or_default()),
        short_duration(*ttl)
    )]
    Expired {
        /// The document's `pendingTime`.
        pending_time: DateTime<Utc>,
        /// The caller's clock.
        now: DateTime<Utc>,
        /// The TTL.
        ttl: Duration,
    },

    /// The input is larger than the crate accepts.
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    InputTooLarge {
        /// The input's length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// `DescribeInstances` returned another instance than the document names.
    #[error("lookup returned instance {found:?}, expected {expected}")]
    InstanceIdMismatch {
        /// The document's instance id.
        expected: InstanceId,
        /// The id the lookup returned.
        found: String,
    },

    /// `DescribeInstances` does not know the instance.
    #[error("instance {instance_id} was not found")]
    InstanceNotFound {
        /// The document's instance id.
        instance_id: InstanceId,
    },

    /// The instance is not running.
    #[error("instance is {state}, not running")]
    InstanceNotRunning {
        /// Its state.
        state: InstanceState,
    },

    /// The signed content is not a valid identity document.
    #[error("invalid identity document: {reason}")]
    InvalidDocument {
        /// What the JSON parser or a field check reported.
        reason: String,
    },

    /// A text is not a valid identifier of this kind.
    #[error("invalid {what}")]
    InvalidIdentifier {
        /// What it should have been: `account id`, `instance id`, `region` or `format`.
        what: &'static str,
    },

    /// The signature does not verify with the signer's trusted key.
    #[error("invalid signature")]
    InvalidSignature,

    /// The input is in a format whose algorithms are too weak to accept by default: `/pkcs7`
    /// (DSA-1024 with SHA-1; opt in with
    /// [`VerifyOptions::allow_legacy_dsa_sha1`](crate::VerifyOptions::allow_legacy_dsa_sha1)
    /// or [`VerifierBuilder::allow_legacy_dsa_sha1`](crate::VerifierBuilder::allow_legacy_dsa_sha1))
    /// or `/signature` (RSA-1024; opt in with
    /// [`VerifyOptions::allow_legacy_rsa1024`](crate::VerifyOptions::allow_legacy_rsa1024)
    /// or [`VerifierBuilder::allow_legacy_rsa1024`](crate::VerifierBuilder::allow_legacy_rsa1024)).
    /// Or use `/rsa2048`.
    #[error("the {format} format ({}) is refused unless {} is set", legacy_algorithm(*format), legacy_opt_in(*format))]
    LegacyAlgorithmRefused {
        /// The refused format.
        format: Format,
    },

    /// The BER/DER structure is not a well-formed CMS SignedData.
    #[error("malformed signed blob at byte {offset}: {reason}")]
    Malformed {
        /// Offset in the decoded bytes where the problem was found.
        offset: usize,
        /// What was wrong.
        reason: Malformed,
    },

    /// A required signed attribute is absent.
    #[error("missing {name} signed attribute")]
    MissingAttribute {
        /// `contentType` or `messageDigest`.
        name: &'static str,
    },

    /// A check needs an instance fact the lookup did not provide.
    #[error("instance facts lack {fact}, which a configured check needs")]
    MissingFact {
        /// The missing fact.
        fact: &'static str,
    },

    /// The SignedData carries no encapsulated content (a detached signature).
    #[error("signed blob has no content")]
    MissingContent,

    /// The SignerInfo has no signed attributes, so nothing binds the signature to the content.
    #[error("signer info has no signed attributes")]
    MissingSignedAttributes,

    /// No allow rule matches the document.
    #[error("instance in account {account}, region {region} matched none of the allow rules ({})",
        mismatches.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    NoMatchingRule {
        /// The document's account.
        account: AccountId,
        /// The document's region.
        region: Region,
        /// Per rule, the first field that did not match.
        mismatches: Vec<RuleMismatch>,
    },

    /// The instance's owner (the reservation's `OwnerId`) is not the document's account.
    #[error("instance is owned by {found:?}, but the document names account {expected}")]
    OwnerMismatch {
        /// The document's account.
        expected: AccountId,
        /// The owner the lookup returned.
        found: String,
    },

    /// The document's `pendingTime` is further in the future than the allowed clock skew.
    #[error(
        "pendingTime {pending_time} is ahead of {now} by more than {}",
        short_duration(*max_future_skew)
    )]
    PendingTimeInFuture {
        /// The document's `pendingTime`.
        pending_time: DateTime<Utc>,
        /// The caller's clock.
        now: DateTime<Utc>,
        /// The allowed skew.
        max_future_skew: Duration,
    },

    /// The document's region is not one the signing certificate is trusted for.
    #[error("document region {region} is not covered by the signing certificate (serial {serial})")]
    RegionMismatch {
        /// The region in the signed document.
        region: Region,
        /// The signing certificate's serial.
        serial: SerialNumber,
    },

    /// The root EBS volume was attached long after the primary network interface: it may have
    /// been swapped after launch (SPIRE's anti-tamper check).
    #[error(
        "root volume and primary network interface attach times differ by {}",
        short_duration(*gap)
    )]
    RootVolumeReattached {
        /// How long after the network interface the root volume was attached (or before).
        gap: Duration,
    },

    /// The SignedData has not exactly one SignerInfo.
    #[error("expected exactly one signer, found {count}")]
    SignerCount {
        /// How many SignerInfos were found (counting stops past a small bound).
        count: usize,
    },

    /// The signed attributes' `signingTime` is outside the signing certificate's validity.
    #[error("signing time {signing_time} is outside the certificate's validity")]
    SigningTimeOutsideValidity {
        /// The signed `signingTime`.
        signing_time: DateTime<Utc>,
    },

    /// The token's `metadata.expires` has passed: the token no longer admits anyone.
    #[error("the join token expired at {expires} (now {now}): issue a new token")]
    TokenExpired {
        /// The token's `metadata.expires`.
        expires: DateTime<Utc>,
        /// The caller's clock.
        now: DateTime<Utc>,
    },

    /// Bytes follow the end of the SignedData structure.
    #[error("{len} trailing bytes after the signed blob")]
    TrailingData {
        /// How many.
        len: usize,
    },

    /// The encapsulated content type (or the outer content type) is not the expected one.
    #[error("unexpected content type {oid}")]
    UnexpectedContentType {
        /// The OID found.
        oid: String,
    },

    /// No trusted certificate matches the SignerInfo's issuer and serial number.
    #[error("no trusted certificate for signer serial {serial} (issuer {issuer})")]
    UnknownSigner {
        /// The signer's serial number (printed cut with `…` past 20 bytes).
        serial: SerialNumber,
        /// The signer's issuer as a distinguished name, at most 64 characters, escaped.
        issuer: String,
        /// Whether some trusted certificate of the format has this issuer (then a new
        /// certificate is likely; see [`Error::hint`]).
        known_issuer: bool,
        /// Whether some trusted certificate of the format has this serial, but another issuer
        /// (then the blob was likely altered).
        known_serial: bool,
    },

    /// The trusted key that matches the signer cannot be used. Only keys parsed on first use
    /// (the embedded AWS keys, each checked by the crate's tests) can fail here; keys added with
    /// [`TrustStore::add_pem`](crate::TrustStore::add_pem) are refused when added.
    #[error("the trusted key for this signer cannot be used: {reason}")]
    UnusableTrustedKey {
        /// Why the key was refused.
        reason: &'static str,
    },

    /// The digest algorithm is not one the format uses (SHA-256; SHA-1 or SHA-256 for `/pkcs7`),
    /// or has parameters other than NULL/absent.
    #[error("unsupported digest algorithm {oid}")]
    UnsupportedDigestAlgorithm {
        /// The OID found.
        oid: String,
    },

    /// No key is trusted for the format in the region a `/signature` document names (the region
    /// is read before verification only to pick the key).
    #[error("no trusted {format} key for region {region}")]
    UnsupportedRegion {
        /// The format.
        format: Format,
        /// The region the document names.
        region: Region,
    },

    /// The signature algorithm is not one accepted for this format.
    #[error("unsupported signature algorithm {oid}")]
    UnsupportedSignatureAlgorithm {
        /// The OID found.
        oid: String,
    },
}

impl From<InvalidIdentifier> for Error {
    /// Per document, an invalid identifier is a malformed document.
    fn from(invalid: InvalidIdentifier) -> Self {
        Self::InvalidIdentifier { what: invalid.what }
    }
}

/// The weak algorithms of a format refused by default, for [`Error::LegacyAlgorithmRefused`].
fn legacy_algorithm(format: Format) -> &'static str {
    match format {
        Format::Signature => "RSA-1024",
        Format::Rsa2048 | Format::Pkcs7 => "DSA-1024 with SHA-1",
    }
}

/// The [`VerifyOptions`](crate::VerifyOptions) setting that accepts a format refused by default.
fn legacy_opt_in(format: Format) -> &'static str {
    match format {
        Format::Signature => "allow_legacy_rsa1024",
        Format::Rsa2048 | Format::Pkcs7 => "allow_legacy_dsa_sha1",
    }
}

/// Why a configuration was refused: a token, an allow rule, a trusted certificate or a verifier
/// builder that could admit machines it should not (or none at all). Found at setup, never per
/// document.
///
/// Each message names the field, where it is (`spec.allow[1].aws_regions[0]`) and what to
/// write instead.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A certificate could not be trusted: unparsable, or not a key its format accepts.
    #[error("invalid trusted certificate: {reason}")]
    BadCertificate {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Two builder settings set the same thing; which one should win is not guessed.
    #[error("{first} and {second} both set the {what}: set them in one place")]
    Conflict {
        /// The setting made first, e.g. `token_spec`.
        first: &'static str,
        /// The setting made second, e.g. `allow`.
        second: &'static str,
        /// What both set: `allow rules` or `TTL`.
        what: &'static str,
    },

    /// The same certificate (issuer and serial) was added twice with different keys.
    #[error("a different certificate with serial {serial} is already trusted")]
    ConflictingCertificate {
        /// The serial number.
        serial: SerialNumber,
    },

    /// A key appears twice in one object of a token or rule. Formats differ on which copy
    /// wins (serde_json keeps the last), so neither is guessed.
    #[error("duplicate field {field}: write each field once")]
    DuplicateField {
        /// Where the second copy is, e.g. `spec.allow[0].aws_account`.
        field: String,
    },

    /// The trust store has no certificate, so nothing could ever verify.
    #[error(
        "the trust store is empty: start from TrustStore::aws() or add certificates with TrustStore::add_pem"
    )]
    EmptyTrustStore,

    /// A field's value is not one it can have.
    #[error("{field}: {reason}")]
    InvalidField {
        /// Where the field is, e.g. `spec.allow[0].aws_role`.
        field: String,
        /// What is wrong and what to write instead.
        reason: String,
    },

    /// An allow rule names no account: it would admit instances of every account.
    #[error(
        "{rule} sets neither aws_account nor aws_role: name the account, e.g. aws_account: \"123456789012\""
    )]
    MissingAccount {
        /// Where the rule is, e.g. `spec.allow[0]`.
        rule: String,
    },

    /// There are no allow rules, so no instance could join.
    #[error("{field} is empty: the ec2 join method needs at least one allow rule")]
    NoAllowRules {
        /// `spec.allow`, or `allow` for the builder.
        field: &'static str,
    },

    /// A rule's `aws_role` belongs to another account than its `aws_account`.
    #[error(
        "{rule}: aws_role {role} is in account {}, not in the rule's aws_account {account}: \
         DescribeInstances with that role only sees its own account; use a role of account {account}",
        role.account()
    )]
    RoleAccountMismatch {
        /// Where the rule is.
        rule: String,
        /// The rule's `aws_account`.
        account: AccountId,
        /// The rule's `aws_role`.
        role: RoleArn,
    },

    /// The TTL is under one second: most likely a bare number, which is read as nanoseconds.
    #[error(
        "{field} is {}, under one second (a bare number is nanoseconds): write a duration such as \"5m\"",
        short_duration(*ttl)
    )]
    TtlTooShort {
        /// `spec.aws_iid_ttl`, or `ttl` for the builder.
        field: &'static str,
        /// The TTL given.
        ttl: Duration,
    },

    /// A rule names a region for which the trust store has no certificate: no document of that
    /// region could verify, so the rule is not what its author meant.
    #[error(
        "{field}: no trusted certificate for region {region}: add it with TrustStore::add_pem, or remove the region"
    )]
    UncoveredRegion {
        /// Where the region is, e.g. `spec.allow[0].aws_regions[1]`.
        field: String,
        /// The region.
        region: Region,
    },

    /// A field the token or rule does not have, often a typo of one it has.
    #[error("unknown field {field}{}", did_you_mean.map(|known| format!(": did you mean {known}?")).unwrap_or_default())]
    UnknownField {
        /// Where the field is, e.g. `spec.allow[1].aws_region`.
        field: String,
        /// The known field nearest to it, if one is near.
        did_you_mean: Option<&'static str>,
    },

    /// A rule's `aws_role` and one of its `aws_regions` are in different AWS partitions: the
    /// role's credentials cannot describe instances of that region, so the rule could never
    /// admit it as written. A rule covers one partition.
    #[error(
        "{field}: region {region} is in partition {}, but aws_role {role} is in partition {}: a \
         rule covers one partition; write one rule per partition, each with a role of its \
         regions' partition (arn:{}:iam::{}:role/… for {region})",
        region.partition(),
        role.partition(),
        region.partition(),
        role.account()
    )]
    PartitionMismatch {
        /// Where the region is, e.g. `spec.allow[0].aws_regions[1]`.
        field: String,
        /// The region.
        region: Region,
        /// The rule's `aws_role`.
        role: RoleArn,
    },
}

/// Why one allow rule did not match: the first field that failed, what the rule allows and
/// what the document has.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct RuleMismatch {
    /// The rule's index in the list.
    pub rule: usize,
    /// The field that did not match, e.g. `aws_account`.
    pub field: &'static str,
    /// What the rule allows, e.g. `us-west-2 or eu-west-1`.
    pub expected: String,
    /// What the signed document has (at most 64 characters, escaped).
    pub actual: String,
}

impl fmt::Display for RuleMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule {}: {} is {}, not {}",
            self.rule, self.field, self.actual, self.expected
        )
    }
}

/// What is wrong with a BER/DER structure.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Malformed {
    /// An indefinite length on a primitive encoding, or an indefinite length where DER is
    /// required (the signed attributes are signed in DER).
    BadIndefiniteLength,
    /// A length field that is reserved, longer than 4 bytes, or exceeds the input.
    BadLength,
    /// An empty input.
    Empty,
    /// A value that does not decode as its type (OID, INTEGER, time, version, ...).
    InvalidValue(&'static str),
    /// Nesting deeper than the crate's bound.
    NestingTooDeep,
    /// More indefinite-length elements nested in one another than the crate's bound (10).
    IndefiniteNestingTooDeep,
    /// More element headers read in one blob than the crate's bound (1024).
    TooManyElements,
    /// The input ends inside an element.
    Truncated,
    /// A different tag than the structure requires.
    UnexpectedTag {
        /// The tag byte required.
        expected: u8,
        /// The tag byte found.
        found: u8,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadIndefiniteLength => f.write_str("indefinite length not allowed here"),
            Self::BadLength => f.write_str("invalid length"),
            Self::Empty => f.write_str("empty input"),
            Self::InvalidValue(what) => write!(f, "invalid {what}"),
            Self::NestingTooDeep => f.write_str("nesting too deep"),
            Self::IndefiniteNestingTooDeep => {
                f.write_str("indefinite-length elements nested too deep")
            }
            Self::TooManyElements => f.write_str("too many elements"),
            Self::Truncated => f.write_str("truncated"),
            Self::UnexpectedTag { expected, found } => {
                write!(f, "expected tag 0x{expected:02x}, found 0x{found:02x}")
            }
        }
    }
}
