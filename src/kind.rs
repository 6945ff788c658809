//! What machines and operators read of an error: a stable [`ErrorKind`] and a hint saying
//! what to change.

use core::fmt;
use core::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::error::{ConfigError, Error};
use crate::ids::SerialNumber;
use crate::input::Format;
use crate::text::short_duration;

/// The class of an error, with a stable snake_case name for logs, metrics and JSON.
///
/// ```
/// let err = ec2_iid::dangerous::parse_signed_data(b"not base64 *").unwrap_err();
/// assert_eq!(err.kind(), ec2_iid::ErrorKind::Malformed);
/// assert_eq!(serde_json::to_string(&err.kind())?, "\"malformed\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// `malformed`: not a well-formed signed document (base64, BER, CMS structure, document
    /// JSON, size). The sender should send the IMDS text exactly as served.
    Malformed,
    /// `untrusted_signer`: no trusted certificate names the signer, or covers the document's
    /// region or signing time. A new AWS region or certificate, or not AWS's signature.
    UntrustedSigner,
    /// `bad_signature`: the signature, the content digest or the signed attributes do not
    /// verify: the document was altered, or is not AWS's.
    BadSignature,
    /// `refused_algorithm`: an algorithm this verifier does not accept (`/pkcs7` without the
    /// opt-in, an unexpected digest or signature algorithm).
    RefusedAlgorithm,
    /// `no_rule_matched`: the document is AWS's but no allow rule admits it.
    NoRuleMatched,
    /// `stale`: `pendingTime` is older than the TTL, or ahead of the clock.
    Stale,
    /// `instance_rejected`: `DescribeInstances` does not confirm the instance (unknown, not
    /// running, another owner, a lookup bound, a missing fact, a swapped root volume).
    InstanceRejected,
    /// `already_joined`: this launch of the instance has joined before.
    AlreadyJoined,
    /// `token_expired`: the join token's `metadata.expires` has passed.
    TokenExpired,
    /// `invalid_config`: a setup error (a token, a rule, a certificate, the builder).
    InvalidConfig,
}

impl ErrorKind {
    /// The stable name, e.g. `untrusted_signer`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UntrustedSigner => "untrusted_signer",
            Self::BadSignature => "bad_signature",
            Self::RefusedAlgorithm => "refused_algorithm",
            Self::NoRuleMatched => "no_rule_matched",
            Self::Stale => "stale",
            Self::InstanceRejected => "instance_rejected",
            Self::AlreadyJoined => "already_joined",
            Self::TokenExpired => "token_expired",
            Self::InvalidConfig => "invalid_config",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The class of this error (see [`ErrorKind`]).
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Self::Base64
            | Self::DuplicateAttribute { .. }
            | Self::InputTooLarge { .. }
            | Self::InvalidDocument { .. }
            | Self::InvalidIdentifier { .. }
            | Self::Malformed { .. }
            | Self::MissingAttribute { .. }
            | Self::MissingContent
            | Self::MissingSignedAttributes
            | Self::SignerCount { .. }
            | Self::TrailingData { .. }
            | Self::UnexpectedContentType { .. } => K::Malformed,
            Self::RegionMismatch { .. }
            | Self::SigningTimeOutsideValidity { .. }
            | Self::UnknownSigner { .. }
            | Self::UnsupportedRegion { .. }
            | Self::UnusableTrustedKey { .. } => K::UntrustedSigner,
            Self::AlgorithmProtectionMismatch
            | Self::ContentTypeMismatch { .. }
            | Self::DigestMismatch
            | Self::InvalidSignature => K::BadSignature,
            Self::LegacyAlgorithmRefused { .. }
            | Self::UnsupportedDigestAlgorithm { .. }
            | Self::UnsupportedSignatureAlgorithm { .. } => K::RefusedAlgorithm,
            Self::NoMatchingRule { .. } => K::NoRuleMatched,
            Self::Expired { .. } | Self::PendingTimeInFuture { .. } => K::Stale,
            Self::BoundViolated { .. }
            | Self::InstanceIdMismatch { .. }
            | Self::InstanceNotFound { .. }
            | Self::InstanceNotRunning { .. }
            | Self::MissingFact { .. }
            | Self::OwnerMismatch { .. }
            | Self::RootVolumeReattached { .. } => K::InstanceRejected,
            Self::AlreadyJoined { .. } => K::AlreadyJoined,
            Self::TokenExpired { .. } => K::TokenExpired,
        }
    }

    /// What to change so that the document is accepted (or why it never will be), for an
    /// operator; `None` where the message says it all.
    ///
    /// ```
    /// let err = ec2_iid::Error::Expired {
    ///     pending_time: "2026-11-01T12:00:00Z".parse()?,
    ///     now: "2026-11-01T12:07:12Z".parse()?,
    ///     ttl: core::time::Duration::from_secs(300),
    /// };
    /// assert!(err.hint().unwrap().starts_with("pendingTime is 7m12s old; aws_iid_ttl is 5m0s"));
    /// # Ok::<(), chrono::ParseError>(())
    /// ```
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            Self::Base64 => "send the text exactly as IMDS serves it; if it was copied from \
                JSON or a log, strip the surrounding quotes and turn \\n back into line breaks"
                .to_owned(),
            Self::InputTooLarge { .. } | Self::TrailingData { .. } | Self::Malformed { .. } => {
                "send /latest/dynamic/instance-identity/rsa2048 exactly as IMDS serves it"
                    .to_owned()
            }
            Self::UnknownSigner {
                issuer,
                serial,
                known_issuer,
                known_serial,
            } => unknown_signer_hint(issuer, serial, *known_issuer, *known_serial),
            Self::UnsupportedRegion { format, region } => format!(
                "no {format} certificate of {region} is trusted: a new region? add AWS's \
                 certificate for it with TrustStore::add_pem (--cert PEM --cert-region {region})"
            ),
            Self::RegionMismatch { region, .. } => format!(
                "the signing certificate is not trusted for {region}: if AWS publishes it for \
                 that region, add it with TrustStore::add_pem for {region}"
            ),
            Self::LegacyAlgorithmRefused {
                format: Format::Signature,
            } => "fetch /latest/dynamic/instance-identity/rsa2048 instead (SHA-256, RSA-2048), \
                or opt in with --allow-legacy-rsa1024 (VerifierBuilder::allow_legacy_rsa1024)"
                .to_owned(),
            Self::LegacyAlgorithmRefused { .. } => "fetch /latest/dynamic/instance-identity/\
                rsa2048 instead (SHA-256, RSA-2048), or opt in with --allow-legacy-dsa \
                (VerifierBuilder::allow_legacy_dsa_sha1)"
                .to_owned(),
            Self::InvalidSignature | Self::DigestMismatch | Self::AlgorithmProtectionMismatch => {
                "the document or its signature was altered, or it is not AWS's: send the blob \
                 as fetched, and for /signature the /document bytes exactly as served"
                    .to_owned()
            }
            Self::Expired {
                pending_time,
                now,
                ttl,
            } => format!(
                "pendingTime is {} old; aws_iid_ttl is {}: only freshly launched instances \
                 join; launch a new instance, or raise aws_iid_ttl",
                short_duration(age(*pending_time, *now)),
                short_duration(*ttl)
            ),
            Self::PendingTimeInFuture {
                pending_time,
                now,
                max_future_skew,
            } => format!(
                "pendingTime is {} ahead of this server's clock (allowed {}): check the clock \
                 (NTP)",
                short_duration(age(*now, *pending_time)),
                short_duration(*max_future_skew)
            ),
            Self::NoMatchingRule { mismatches, .. } => format!(
                "change an allow rule to admit it, or run the instance where a rule allows: {}",
                mismatches
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Self::InstanceNotRunning { state } => {
                format!("the instance is {state}: only a running instance may join")
            }
            Self::InstanceNotFound { .. } => "DescribeInstances does not know the instance: \
                check that the lookup uses the instance's account (aws_role) and region"
                .to_owned(),
            Self::OwnerMismatch { .. } => "the instance belongs to another account than the \
                document and rule name: do not admit it"
                .to_owned(),
            Self::MissingFact { fact } => {
                format!("the instance lookup must return {fact} (ec2-iid-aws's Ec2Lookup does)")
            }
            Self::BoundViolated { bound, .. } => {
                format!(
                    "the instance is outside the rule's {bound}: change the rule or the instance"
                )
            }
            Self::AlreadyJoined { .. } => "this launch of the instance has joined already: a \
                replay, or a retry after success; a stopped and started instance joins again"
                .to_owned(),
            Self::TokenExpired { .. } => {
                "issue a new token, or move its metadata.expires".to_owned()
            }
            _ => return None,
        };
        Some(hint)
    }
}

fn unknown_signer_hint(
    issuer: &str,
    serial: &SerialNumber,
    known_issuer: bool,
    known_serial: bool,
) -> String {
    match (known_issuer, known_serial) {
        (_, true) => format!(
            "a trusted certificate has serial {serial} but another issuer than {issuer}: the \
             blob was altered, or is not AWS's"
        ),
        (true, false) => format!(
            "no trusted certificate of {issuer} has serial {serial}: a new AWS region or \
             certificate? add it with TrustStore::add_pem (--cert PEM --cert-region REGION)"
        ),
        (false, false) => format!(
            "no trusted certificate is issued by {issuer}: not AWS's signature, or a CA you \
             have not added with TrustStore::add_pem (--cert PEM --cert-region REGION)"
        ),
    }
}

impl ConfigError {
    /// Always [`ErrorKind::InvalidConfig`]: every configuration error is a setup error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidConfig
    }
}

/// `later - earlier`, zero when negative; saturating at chrono's range.
fn age(earlier: DateTime<Utc>, later: DateTime<Utc>) -> Duration {
    later
        .signed_duration_since(earlier)
        .max(TimeDelta::zero())
        .to_std()
        .unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_names() {
        for (kind, name) in [
            (ErrorKind::Malformed, "malformed"),
            (ErrorKind::UntrustedSigner, "untrusted_signer"),
            (ErrorKind::BadSignature, "bad_signature"),
            (ErrorKind::RefusedAlgorithm, "refused_algorithm"),
            (ErrorKind::NoRuleMatched, "no_rule_matched"),
            (ErrorKind::Stale, "stale"),
            (ErrorKind::InstanceRejected, "instance_rejected"),
            (ErrorKind::AlreadyJoined, "already_joined"),
            (ErrorKind::TokenExpired, "token_expired"),
            (ErrorKind::InvalidConfig, "invalid_config"),
        ] {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        }
    }
}
