#![doc = include_str!("../README.md")]

pub mod crypto;
mod document;
mod error;
mod lookup;

pub use document::{AccountId, IdentityDocument, InstanceId, Partition, Region};
pub use error::{Error, Malformed};
pub use lookup::{InstanceFacts, InstanceLookup, InstanceQuery, InstanceState, UnknownInstanceState};
