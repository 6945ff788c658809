//! `issue/sign_certificate`: one `Issuer::issue` (profile, encoding, one ECDSA P-256 signature),
//! CSR parsed beforehand; `issue/parse_csr`: `Csr::from_pem` with its signature check.
#![allow(missing_docs, reason = "criterion's macros make undocumented items")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench panics on setup failure"
)]

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ec2_iid::{AllowRule, Format, InstanceFacts, InstanceState, TrustStore, Verifier};
use ec2_iid_ca::{Csr, Issuer, Profile};

fn bench(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0).unwrap();
    let mut trust = TrustStore::empty();
    trust
        .add_pem(
            Format::Rsa2048,
            include_bytes!("../tests/data/join/testca.pem"),
            ["us-east-1".parse().unwrap()],
        )
        .unwrap();
    let verifier = Verifier::builder(trust)
        .allow(AllowRule::account("123456789012".parse().unwrap()))
        .build()
        .unwrap();
    let pending = verifier
        .verify(include_bytes!("../tests/data/join/rsa2048.b64"), now)
        .unwrap();
    let mut facts = InstanceFacts::new("i-0123456789abcdef0", InstanceState::Running);
    facts.owner_id = Some("123456789012".to_owned());
    let outcome = pending.check_facts(Some(&facts)).unwrap();

    let issuer = Issuer::from_pem(
        include_str!("../tests/data/ca/intermediate-chain.pem"),
        include_str!("../tests/data/ca/intermediate.key"),
    )
    .unwrap();
    let profile = Profile::builder("example.org")
        .dns_san(true)
        .build()
        .unwrap();
    let csr_pem = include_str!("../tests/data/p256.csr");
    let csr = Csr::from_pem(csr_pem).unwrap();

    let mut group = c.benchmark_group("issue");
    group.bench_function("sign_certificate", |b| {
        b.iter(|| {
            issuer
                .issue(black_box(&outcome), black_box(&csr), &profile, now, [7; 16])
                .unwrap()
        });
    });
    group.bench_function("parse_csr", |b| {
        b.iter(|| Csr::from_pem(black_box(csr_pem)).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
