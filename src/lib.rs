#![doc = include_str!("../README.md")]

pub mod aws;
mod ber;
pub mod crypto;
pub mod dangerous;
mod document;
mod error;
mod lookup;
mod oids;
mod pkcs7;
mod signature;
mod trust;

pub use document::{AccountId, IdentityDocument, InstanceId, Partition, Region};
pub use error::{Error, Malformed};
pub use lookup::{
    InstanceFacts, InstanceLookup, InstanceQuery, InstanceState, UnknownInstanceState,
};
pub use pkcs7::{AlgorithmIdentifier, MAX_BLOB_LEN, UnverifiedSignedData, parse_document};
pub use signature::{Signer, VerifiedDocument, verify_signature};
pub use trust::{Format, TrustStore, TrustedCertificate};
