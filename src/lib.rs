#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

// The pipeline, one folder per stage; each stage imports only earlier ones:
// input (what the instance sent) → cms (SignedData) → crypto and trust (keys) → signature
// (verified bytes → document) → policy (token, rules, TTL, facts) → join (lookup, registry,
// host id). `ids`, `text` and `error` are the vocabulary every stage shares.
mod cms;
mod crypto;
pub mod dangerous;
mod error;
pub mod ids;
mod input;
#[doc(hidden)]
pub mod internal;
mod join;
mod kind;
mod policy;
mod signature;
#[cfg(test)]
mod test_utils;
mod text;
pub mod trust;

pub use cms::signed_data::MAX_BLOB_LEN;
pub use error::{ConfigError, Error, Malformed, RuleMismatch};
pub use input::{Format, SignedInput};
pub use join::enrollment::{Enrollment, EnrollmentRegistry, MAX_LIST_LIMIT};
pub use join::lookup::{InstanceLookup, InstanceQuery};
pub use join::outcome::{CheckError, Grant, JoinOutcome};
pub use join::pending::PendingJoin;
pub use join::registry::{ClaimRecord, InMemoryJoinRegistry, JoinClaim, JoinRegistry};
pub use join::verifier::{Verifier, VerifierBuilder};
pub use kind::ErrorKind;
pub use policy::facts::{
    AccountOrganization, BoundCheck, InstanceFacts, MAX_INSTANCE_TAGS, lookup_bound_checks,
};
pub use policy::rules::{AllowRule, match_allow_rules};
pub use policy::token::{TokenResource, TokenSpec};
pub use policy::ttl::check_ttl;
pub use signature::document::IdentityDocument;
pub use signature::verify_input::{VerifyOptions, verify_input};
pub use signature::{Signer, VerifiedDocument};
pub use trust::TrustStore;

/// Teleport's join token: the resource, its spec, and the vocabulary its fields use.
///
/// A token deserializes as Teleport writes it ([`TokenResource`], or just its
/// [`TokenSpec`]); [`VerifierBuilder::token`] validates it and takes its rules, TTL and expiry.
pub mod token {
    pub use crate::policy::token::{TokenMetadata, TokenResource, TokenSpec, ValidatedSpec};
    pub use crate::policy::ttl::{DEFAULT_MAX_FUTURE_SKEW, DEFAULT_TTL, IidTtl, parse_go_duration};
}
