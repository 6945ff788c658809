//! Test support shared by the tests of the ec2-iid workspace (`publish = false`): each crate
//! dev-depends on it with the features its tests use.
//!
//! | feature | module | for |
//! |---|---|---|
//! | `fixtures` | `fixtures`, `hostile` | documents signed by the test CAs, as bytes and text |
//! | `moto` | `moto` | `moto_server`, a local AWS |
//! | `imds` | `imds` | an IMDSv2 emulator serving the committed fixtures |
//! | `join-server` | `join_server` | a fake join server with scripted answers |
//! | `postgres` | `postgres` | a throwaway PostgreSQL server |
//! | `registries` | `registries`, `enrollments` | conformance suites of `JoinRegistry` and `EnrollmentRegistry` |
//!
//! Only `registries` (and `postgres`, through ec2-iid-postgres) use ec2-iid's types; the core
//! crate's own tests turn on `fixtures` alone, since a dev-dependency on ec2-iid's types would
//! bring them a second copy of the crate.
//!
//! The harnesses need a server binary (moto, PostgreSQL): without one a test prints a notice and
//! passes, unless `CI=true`; then it fails.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test support: a panic is the failure of the test that called it"
)]
#![allow(
    clippy::exhaustive_enums,
    clippy::exhaustive_structs,
    reason = "the tests build these with struct literals and match them whole"
)]

#[cfg(feature = "registries")]
pub mod enrollments;
#[cfg(feature = "fixtures")]
pub mod fixtures;
#[cfg(feature = "fixtures")]
pub mod hostile;
#[cfg(feature = "imds")]
pub mod imds;
#[cfg(feature = "join-server")]
pub mod join_server;
#[cfg(feature = "moto")]
pub mod moto;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "registries")]
pub mod registries;

use std::net::{Ipv4Addr, TcpListener};

/// A loopback port that was free a moment ago (another process may take it before the caller
/// binds it: servers started on it retry).
///
/// # Errors
///
/// When no loopback port can be bound.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Polls a future that never waits: the fake lookups and registries of the tests answer at once.
///
/// # Panics
///
/// When the future is pending.
pub fn now_or_never<F: Future>(future: F) -> F::Output {
    let mut future = core::pin::pin!(future);
    let waker = core::task::Waker::noop();
    match future
        .as_mut()
        .poll(&mut core::task::Context::from_waker(waker))
    {
        core::task::Poll::Ready(output) => output,
        core::task::Poll::Pending => panic!("the fakes never wait"),
    }
}
