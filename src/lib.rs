#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod aws;
mod b64;
mod ber;
pub mod crypto;
pub mod dangerous;
mod document;
mod error;
mod facts;
mod fields;
mod ids;
mod input;
mod kind;
mod legacy;
mod lookup;
mod oids;
mod pkcs7;
mod registry;
#[cfg(feature = "aws-lc-rs")]
mod rsa_aws_lc;
mod rsa_montgomery;
mod rules;
mod signature;
mod token;
mod trust;
mod ttl;
mod verifier;

pub use document::IdentityDocument;
pub use error::{ConfigError, Error, Malformed};
pub use facts::{MAX_ROOT_VOLUME_ATTACH_GAP_SECS, check_instance_facts};
pub use ids::{
    AccountId, AvailabilityZone, ImageId, InstanceId, InstanceProfileArn, InstanceType, Partition,
    Region, RoleArn, SubnetId, VpcId,
};
pub use input::{SignedInput, VerifyOptions, detect_cms_format, verify_input};
pub use kind::ErrorKind;
pub use lookup::{
    InstanceFacts, InstanceLookup, InstanceQuery, InstanceState, UnknownInstanceState,
};
pub use pkcs7::{AlgorithmIdentifier, MAX_BLOB_LEN, UnverifiedSignedData, parse_document};
pub use registry::{InMemoryJoinRegistry, JoinClaim, JoinRegistry};
pub use rules::{AllowRule, RuleMismatch, match_allow_rules};
pub use signature::{Signer, VerifiedDocument, verify_signature, verify_signature_with};
pub use token::{
    DEFAULT_TTL, IidTtl, MIN_TTL, TokenMetadata, TokenResource, TokenSpec, parse_go_duration,
};
pub use trust::{Format, TrustStore, TrustedCertificate, TrustedKey};
pub use ttl::{DEFAULT_MAX_FUTURE_SKEW, check_ttl};
pub use verifier::{CheckError, JoinOutcome, PendingJoin, Verifier, VerifierBuilder};
