#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batching;
#[cfg(feature = "dynamodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
pub mod dynamodb;
mod error;
mod facts;
pub mod imds;
pub mod join;
mod lookup;
mod organizations;
mod sdk_error;

pub use batching::{
    BatchingLookup, BatchingLookupBuilder, DEFAULT_BURST, DEFAULT_MAX_WAITING, DEFAULT_RATE,
    DEFAULT_THROTTLE_DEADLINE, MAX_BATCH, PacingEvent,
};
pub use error::{Ec2LookupError, Operation};
pub use lookup::PROFILE_ROLE_TTL;
pub use lookup::{ConfigError, DEFAULT_SESSION_NAME, DEFAULT_TIMEOUT, Ec2Lookup, Ec2LookupBuilder};
pub use organizations::{
    DEFAULT_ORGANIZATIONS_MAX_AGE, DEFAULT_ORGANIZATIONS_REFRESH, OrganizationDirectory,
};
