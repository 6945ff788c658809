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
mod input;
mod legacy;
mod lookup;
mod oids;
mod pkcs7;
#[cfg(feature = "aws-lc-rs")]
mod rsa_aws_lc;
mod rsa_montgomery;
mod rules;
mod signature;
mod token;
mod trust;
mod ttl;
mod verifier;

pub use document::{AccountId, IdentityDocument, InstanceId, Partition, Region};
pub use error::{Error, Malformed};
pub use facts::{MAX_ROOT_VOLUME_ATTACH_GAP_SECS, check_instance_facts};
pub use input::{SignedInput, VerifyOptions, detect_cms_format, verify_input};
pub use lookup::{
    InstanceFacts, InstanceLookup, InstanceQuery, InstanceState, UnknownInstanceState,
};
pub use pkcs7::{AlgorithmIdentifier, MAX_BLOB_LEN, UnverifiedSignedData, parse_document};
pub use rules::{RuleMismatch, match_allow_rules};
pub use signature::{Signer, VerifiedDocument, verify_signature, verify_signature_with};
pub use token::{
    AllowRule, DEFAULT_TTL, IidTtl, TokenMetadata, TokenResource, TokenSpec, parse_go_duration,
};
pub use trust::{Format, TrustStore, TrustedCertificate, TrustedKey};
pub use ttl::{DEFAULT_MAX_FUTURE_SKEW, check_ttl};
pub use verifier::{
    CheckError, InMemoryJoinRegistry, JoinOutcome, JoinRegistry, VerifiedJoin, Verifier,
    VerifierBuilder,
};
