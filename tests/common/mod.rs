//! The helper of the core's integration tests that needs ec2-iid's own types (`mod common;`);
//! the fixtures come from the `ec2-iid-test-support` crate, which has no ec2-iid types, so that
//! the tests and it share one copy of this crate.
#![cfg(test)] // clippy.toml says why

use ec2_iid_test_support::fixtures::test_ca;

/// AWS's store plus the test CA, trusted for `region`.
pub(crate) fn trust_with_test_ca(region: &str) -> ec2_iid::TrustStore {
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
