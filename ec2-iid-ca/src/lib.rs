#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod csr;
mod error;
mod issuer;
mod profile;
mod renewal;

pub use csr::{Csr, KeyPolicy, KeyType, MAX_CSR_LEN};
pub use error::{ConfigError, CsrError, IssueError, RenewError};
pub use issuer::{Issued, Issuer};
pub use profile::{
    DEFAULT_ID_TEMPLATE, DEFAULT_TTL, MAX_TTL, MIN_TTL, Profile, ProfileBuilder, private_dns_name,
};
pub use renewal::{MAX_CERT_LEN, Presented};
