//! Stand-in for the core's `Error::kind()` and `Error::hint()` until they land: the machine
//! name of a rejection and what to change. Used only by [`crate::verify::Rejection::new`];
//! switching to the core is replacing these two bodies with `e.kind().as_str()` and `e.hint()`.

use ec2_iid::Error;

/// The rejection's kind, as the core's `ErrorKind` names it (snake_case).
pub(crate) fn kind(e: &Error) -> &'static str {
    match e {
        Error::UnknownSigner { .. }
        | Error::RegionMismatch { .. }
        | Error::SigningTimeOutsideValidity { .. }
        | Error::UnsupportedRegion { .. } => "untrusted_signer",
        Error::InvalidSignature | Error::DigestMismatch | Error::AlgorithmProtectionMismatch => {
            "bad_signature"
        }
        Error::LegacyAlgorithmRefused { .. }
        | Error::UnsupportedDigestAlgorithm { .. }
        | Error::UnsupportedSignatureAlgorithm { .. } => "refused_algorithm",
        Error::NoMatchingRule { .. } => "no_rule_matched",
        Error::Expired { .. } | Error::PendingTimeInFuture { .. } => "stale",
        Error::BoundViolated { .. }
        | Error::InstanceIdMismatch { .. }
        | Error::InstanceNotFound { .. }
        | Error::InstanceNotRunning { .. }
        | Error::MissingFact { .. }
        | Error::OwnerMismatch { .. }
        | Error::RootVolumeReattached { .. } => "instance_rejected",
        Error::AlreadyJoined { .. } => "already_joined",
        Error::TokenExpired { .. } => "token_expired",
        _ => "malformed",
    }
}

/// What to change, from the core; none until the core says.
pub(crate) fn hint(_e: &Error) -> Option<String> {
    None
}
