//! Micro-benchmark of one RSA-2048 PKCS#1 v1.5 SHA-256 verification per backend, on the first
//! real `/rsa2048` sample in `../shared/aws-samples` (its signed attributes' digest and
//! signature), or on the committed test-CA vector when `../shared` is missing.
//!
//! Ids: `rsa/montgomery` (the default backend), `rsa/rsa_crate` (the fallback), and
//! `rsa/aws_lc` with `--features aws-lc-rs`.

#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "benchmark code: a broken fixture must stop the run loudly"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ec2_iid::internal::{self, Backend};

#[path = "../tests/rsa_support/mod.rs"]
mod rsa_support;
#[path = "../tests/shared/mod.rs"]
mod shared;

/// The vector to measure.
fn vector() -> rsa_support::Vector {
    shared::samples()
        .zip(shared::cert_index())
        .and_then(|(samples, certs)| {
            rsa_support::rsa2048_samples(&samples, &certs)
                .into_iter()
                .find(|s| s.expect == "accept")
                .map(|s| s.vector)
        })
        .unwrap_or_else(rsa_support::testca_vector)
}

fn bench_rsa(c: &mut Criterion) {
    let v = vector();
    eprintln!("rsa bench input: {}", v.name);
    let mut group = c.benchmark_group("rsa");
    let backends = [
        ("montgomery", Backend::Montgomery),
        ("rsa_crate", Backend::RsaCrate),
        #[cfg(feature = "aws-lc-rs")]
        ("aws_lc", Backend::AwsLc),
    ];
    for (id, backend) in backends {
        let key =
            internal::from_public_key_der_with_backend(&v.spki, backend).expect("benchmark key");
        key.verify_sha256_digest(&v.digest, &v.signature)
            .expect("benchmark signature verifies");
        group.bench_function(id, |b| {
            b.iter(|| key.verify_sha256_digest(black_box(&v.digest), black_box(&v.signature)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_rsa);
criterion_main!(benches);
