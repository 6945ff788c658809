#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod enrollment;
mod error;
mod registry;
mod tls;

pub use deadpool_postgres;
pub use error::{Operation, PostgresRegistryError};
pub use registry::{DEFAULT_TABLE, DEFAULT_TIMEOUT, MAX_TABLE_NAME_LEN, PostgresJoinRegistry};
pub use tokio_postgres;
