#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "lookup")]
mod batching;
#[cfg(feature = "dynamodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
pub mod dynamodb;
#[cfg(feature = "lookup")]
mod error;
#[cfg(feature = "lookup")]
mod facts;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod imds;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod join;
#[cfg(feature = "lookup")]
mod lookup;
#[cfg(feature = "lookup")]
mod organizations;
#[cfg(any(feature = "lookup", feature = "dynamodb"))]
mod sdk_error;

#[cfg(feature = "lookup")]
#[cfg_attr(docsrs, doc(cfg(feature = "lookup")))]
pub use batching::{
    BatchingLookup, BatchingLookupBuilder, DEFAULT_BURST, DEFAULT_MAX_WAITING, DEFAULT_RATE,
    DEFAULT_THROTTLE_DEADLINE, MAX_BATCH, PacingEvent,
};
#[cfg(feature = "lookup")]
#[cfg_attr(docsrs, doc(cfg(feature = "lookup")))]
pub use error::{Ec2LookupError, Operation};
#[cfg(feature = "lookup")]
#[cfg_attr(docsrs, doc(cfg(feature = "lookup")))]
pub use lookup::PROFILE_ROLE_TTL;
#[cfg(feature = "lookup")]
#[cfg_attr(docsrs, doc(cfg(feature = "lookup")))]
pub use lookup::{ConfigError, DEFAULT_SESSION_NAME, DEFAULT_TIMEOUT, Ec2Lookup, Ec2LookupBuilder};
#[cfg(feature = "lookup")]
#[cfg_attr(docsrs, doc(cfg(feature = "lookup")))]
pub use organizations::{
    DEFAULT_ORGANIZATIONS_MAX_AGE, DEFAULT_ORGANIZATIONS_REFRESH, OrganizationDirectory,
};
