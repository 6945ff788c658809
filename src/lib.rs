#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

// The pipeline, one folder per stage; each stage imports only earlier ones:
// input (what the instance sent) → cms (SignedData) → crypto and trust (keys) → signature
// (verified bytes → document) → policy (token, rules, TTL, facts) → join (lookup, registry,
// host id). `ids`, `text` and `error` are the vocabulary every stage shares.
mod cms;
pub mod crypto;
pub mod dangerous;
mod error;
mod ids;
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
mod trust;

pub use cms::ber::{MAX_ELEMENTS, MAX_INDEFINITE_DEPTH};
#[expect(deprecated, reason = "the old name stays for one release")]
pub use cms::signed_data::parse_document;
pub use cms::signed_data::{
    AlgorithmIdentifier, MAX_BLOB_LEN, UnverifiedSignedData, parse_signed_data,
};
pub use error::{ConfigError, Error, Malformed, RuleMismatch};
pub use ids::{
    AccountId, AvailabilityZone, ImageId, InstanceId, InstanceProfileArn, InstanceState,
    InstanceType, InvalidIdentifier, Partition, Region, RoleArn, SerialNumber, SubnetId,
    UnknownInstanceState, VpcId,
};
pub use input::{Format, SignedInput};
pub use join::enrollment::{Enrollment, EnrollmentRegistry, MAX_LIST_LIMIT};
pub use join::lookup::{InstanceLookup, InstanceQuery};
pub use join::outcome::{CheckError, Grant, JoinOutcome};
pub use join::pending::PendingJoin;
pub use join::registry::{ClaimRecord, InMemoryJoinRegistry, JoinClaim, JoinRegistry};
pub use join::verifier::{Verifier, VerifierBuilder};
pub use kind::ErrorKind;
#[expect(deprecated, reason = "the old name stays for one release")]
pub use policy::facts::MAX_ROOT_VOLUME_ATTACH_GAP_SECS;
pub use policy::facts::{
    InstanceFacts, MAX_ROOT_VOLUME_ATTACH_GAP, RootVolumeCheck, check_instance_facts,
};
pub use policy::rules::{AllowRule, match_allow_rules};
pub use policy::token::{TokenMetadata, TokenResource, TokenSpec};
pub use policy::ttl::{
    DEFAULT_MAX_FUTURE_SKEW, DEFAULT_TTL, IidTtl, MIN_TTL, check_ttl, parse_go_duration,
};
pub use signature::document::IdentityDocument;
pub use signature::verify_input::{
    VerifyOptions, detect_cms_format, verify_input, verify_signature_with,
};
pub use signature::{Signer, VerifiedDocument, verify_signature};
pub use trust::{TrustStore, TrustedCertificate, TrustedKey, aws};
