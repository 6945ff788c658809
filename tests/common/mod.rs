//! Helpers shared by the integration tests (`mod common;`).
//!
//! Each test crate compiles its own copy and uses a different subset, hence `dead_code`; the
//! items are `pub` for use from the test crate's root, which `unreachable_pub` cannot see.
#![allow(
    dead_code,
    reason = "each test crate uses a different subset of the helpers"
)]
#![expect(
    unreachable_pub,
    reason = "a private module of a test crate, shared by several"
)]
#![cfg(test)] // clippy.toml says why; also for test crates that include this by `#[path]`

// `gen` is a reserved keyword since edition 2024, so the module is `r#gen`; everything is also
// re-exported here (`common::BlobSpec`).
pub mod r#gen;
pub mod hostile;

pub use self::r#gen::*;

/// Polls a future that never waits: the fake lookups and registries of the tests answer at once.
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

/// AWS's store plus the test CA, trusted for `region`.
pub fn trust_with_test_ca(region: &str) -> ec2_iid::TrustStore {
    let mut trust = ec2_iid::TrustStore::aws();
    trust
        .add_pem(
            ec2_iid::Format::Rsa2048,
            test_ca().cert_pem.as_bytes(),
            [region.parse().expect("valid region")],
        )
        .expect("the test CA is a valid certificate");
    trust
}
