//! Signature-verification throughput: `cargo bench --bench verify -- 'verify/'`.
//!
//! Ids are stable so results stay comparable over time (see benches/README.md). Inputs are the
//! committed AWS-shaped fixture signed by the crate's test CA; `verify/end_to_end_real` also
//! runs on a real AWS sample when `../shared/aws-samples` is present.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark harness: a panic is a failed run"
)]

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ec2_iid::dangerous::parse_signed_data;
use ec2_iid::internal::{self, Backend};
use ec2_iid::{AllowRule, Format, SignedInput, TrustStore, Verifier, match_allow_rules};
use rsa::pkcs8::DecodePublicKey as _;
use sha2::{Digest as _, Sha256};

#[path = "../tests/shared/mod.rs"]
mod shared;

const BLOB: &[u8] = include_bytes!("../tests/data/gen/rsa2048.b64");
const TEST_CA: &[u8] = include_bytes!("../tests/data/testca/testca.pem");

/// The crafted blobs of `test-support/src/hostile.rs` (base64 of binary BER, each within
/// `MAX_BLOB_LEN`), and whether each verifies.
const HOSTILE: [(&str, &str, bool); 6] = [
    (
        "nested-indefinite",
        include_str!("../tests/data/hostile/nested-indefinite.b64"),
        false,
    ),
    (
        "nested-within-bounds",
        include_str!("../tests/data/hostile/nested-within-bounds.b64"),
        false,
    ),
    (
        "certificate-chains",
        include_str!("../tests/data/hostile/certificate-chains.b64"),
        false,
    ),
    (
        "flat-segments",
        include_str!("../tests/data/hostile/flat-segments.b64"),
        false,
    ),
    (
        "flat-definite-segments",
        include_str!("../tests/data/hostile/flat-definite-segments.b64"),
        false,
    ),
    (
        "definite-certificates",
        include_str!("../tests/data/hostile/definite-certificates.b64"),
        true,
    ),
];

/// The `now` of the fixture (one minute after its `pendingTime`), computed outside the timed
/// loops: parsing it is the caller's cost, not `verify`'s.
fn now() -> DateTime<Utc> {
    "2026-11-01T12:01:00Z".parse().unwrap()
}

fn trust() -> TrustStore {
    let mut trust = TrustStore::aws();
    trust
        .add_pem(Format::Rsa2048, TEST_CA, ["us-east-1".parse().unwrap()])
        .unwrap();
    trust
}

/// The verifier, with every RSA key prepared for `backend`.
fn verifier_with(backend: Backend) -> Verifier {
    Verifier::builder(internal::with_rsa_backend(trust(), backend).unwrap())
        .allow(AllowRule::account("123456789012".parse().unwrap()))
        .build()
        .unwrap()
}

/// The verifier of the default pure-Rust build.
fn verifier() -> Verifier {
    verifier_with(Backend::Montgomery)
}

/// The test CA's SubjectPublicKeyInfo (DER).
fn test_ca_spki() -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(TEST_CA).unwrap();
    let cert = pem.parse_x509().unwrap();
    cert.public_key().raw.to_vec()
}

/// The signed attributes as signed (tag 0xA0 -> 0x31), and the signature.
fn signed_attributes_and_signature() -> (Vec<u8>, Vec<u8>) {
    let signed = parse_signed_data(BLOB).unwrap();
    let attrs = signed.signed_attributes().unwrap();
    let mut message = vec![0x31];
    message.extend_from_slice(&attrs[1..]);
    (message, signed.signature().to_vec())
}

/// The raw-RSA floor includes hashing the signed attributes: the ids measure RSASSA-PKCS1-v1_5
/// SHA-256 verification of those bytes, as every verifier must do it.
fn sha256(message: &[u8]) -> [u8; 32] {
    Sha256::digest(message).into()
}

fn bench_verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    let (message, signature) = signed_attributes_and_signature();
    let spki = test_ca_spki();

    let key = internal::from_public_key_der_with_backend(&spki, Backend::Montgomery).unwrap();
    group.bench_function("raw_rsa", |b| {
        b.iter(|| key.verify_sha256_digest(&sha256(black_box(&message)), black_box(&signature)))
    });

    let crate_key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(
        rsa::PublicKey::from_public_key_der(&spki).unwrap(),
    );
    let crate_signature = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
    group.bench_function("raw_rsa_crate", |b| {
        b.iter(|| {
            use rsa::signature::hazmat::PrehashVerifier as _;
            crate_key.verify_prehash(&sha256(black_box(&message)), black_box(&crate_signature))
        })
    });

    let verifier = verifier();
    let now = now();
    assert!(verifier.verify(BLOB, now).is_ok());
    group.bench_function("end_to_end", |b| {
        b.iter(|| verifier.verify(black_box(BLOB), now).unwrap())
    });
    // Every crafted blob once per iteration: the sum bounds the worst of them from above.
    let hostile: Vec<Vec<u8>> = HOSTILE
        .iter()
        .map(|(name, text, verifies)| {
            use base64::Engine as _;
            let blob = base64::engine::general_purpose::STANDARD
                .decode(text.trim_end())
                .unwrap();
            assert_eq!(verifier.verify(&blob, now).is_ok(), *verifies, "{name}");
            blob
        })
        .collect();
    group.bench_function("hostile_worst", |b| {
        b.iter(|| {
            for blob in &hostile {
                let _ = black_box(verifier.verify(black_box(blob), now));
            }
        })
    });
    // Time per document with two threads sharing one `Verifier`, each verifying `iters`
    // documents: `end_to_end / parallel_2` is the two-thread speed-up (2.0 without contention).
    group.bench_function("parallel_2", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    scope.spawn(|| {
                        for _ in 0..iters {
                            black_box(verifier.verify(black_box(BLOB), now).unwrap());
                        }
                    });
                }
            });
            start.elapsed() / 2
        })
    });

    #[cfg(feature = "aws-lc-rs")]
    {
        let key = internal::from_public_key_der_with_backend(&spki, Backend::AwsLc).unwrap();
        group.bench_function("raw_rsa_aws_lc", |b| {
            b.iter(|| key.verify_sha256_digest(&sha256(black_box(&message)), black_box(&signature)))
        });
        let verifier = verifier_with(Backend::AwsLc);
        assert!(verifier.verify(BLOB, now).is_ok());
        group.bench_function("end_to_end_aws_lc", |b| {
            b.iter(|| verifier.verify(black_box(BLOB), now).unwrap())
        });
    }

    bench_openssl(&mut group);
    bench_real_sample(&mut group);
    group.finish();
}

/// rust-openssl's `Pkcs7::verify` on the same text: PEM/base64 decoding and parsing per call,
/// the signer certificate pre-parsed and supplied, no chain verification.
fn bench_openssl(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
    use openssl::stack::Stack;
    use openssl::x509::X509;
    use openssl::x509::store::X509StoreBuilder;

    let armoured = format!(
        "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
        std::str::from_utf8(BLOB).unwrap().trim()
    );
    let mut certs = Stack::new().unwrap();
    certs.push(X509::from_pem(TEST_CA).unwrap()).unwrap();
    let store = X509StoreBuilder::new().unwrap().build();
    let flags = Pkcs7Flags::NOVERIFY | Pkcs7Flags::NOINTERN;
    let verify = || {
        let pkcs7 = Pkcs7::from_pem(armoured.as_bytes()).unwrap();
        let mut content = Vec::new();
        pkcs7
            .verify(&certs, &store, None, Some(&mut content), flags)
            .unwrap();
        content
    };
    assert!(verify().starts_with(b"{"));
    group.bench_function("openssl_pkcs7", |b| b.iter(verify));
}

fn bench_real_sample(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let Some(sample) = shared::sample("sample-04") else {
        eprintln!("notice: skipping verify/end_to_end_real");
        return;
    };
    let blob = sample.blob();
    let verifier = Verifier::builder(TrustStore::aws())
        .allow(AllowRule::account(sample.account_id.parse().unwrap()))
        .build()
        .unwrap();
    let now = sample.now;
    assert!(verifier.verify(&blob, now).is_ok());
    group.bench_function("end_to_end_real", |b| {
        b.iter(|| verifier.verify(black_box(&blob), now).unwrap())
    });
}

/// The two legacy formats, end to end: `/pkcs7` (DSA-1024, SHA-1; opt-in) on the generated
/// fixture, `/signature` (RSA-1024; opt-in) on a real sample when `../shared` is present.
fn bench_signature_formats(c: &mut Criterion) {
    let mut group = c.benchmark_group("signature");
    let mut trust = TrustStore::aws();
    trust
        .add_pem(
            Format::Pkcs7,
            include_bytes!("../tests/data/testca/testca-dsa.pem"),
            ["us-east-1".parse().unwrap()],
        )
        .unwrap();
    let verifier = Verifier::builder(trust.clone())
        .allow(AllowRule::account("123456789012".parse().unwrap()))
        .allow_legacy_dsa_sha1(true)
        .build()
        .unwrap();
    let pkcs7: &[u8] = include_bytes!("../tests/data/gen/pkcs7.b64");
    let now = now();
    assert!(
        verifier
            .verify_input(SignedInput::Pkcs7(pkcs7), now)
            .is_ok()
    );
    group.bench_function("dsa", |b| {
        b.iter(|| {
            verifier
                .verify_input(SignedInput::Pkcs7(black_box(pkcs7)), now)
                .unwrap()
        })
    });

    let Some(sample) = shared::sample("sample-44") else {
        eprintln!("notice: skipping signature/rsa1024");
        return;
    };
    let (document, signature) = (sample.file("document.json"), sample.blob());
    let pending = sample.pending_time;
    let verifier = Verifier::builder(TrustStore::aws())
        .allow(AllowRule::account(sample.account_id.parse().unwrap()))
        .allow_legacy_rsa1024(true)
        .build()
        .unwrap();
    let input = SignedInput::Signature {
        document: &document,
        signature: &signature,
    };
    assert!(verifier.verify_input(input, pending).is_ok());
    group.bench_function("rsa1024", |b| {
        b.iter(|| verifier.verify_input(black_box(input), pending).unwrap())
    });
    group.finish();
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.bench_function("base64", |b| {
        b.iter(|| parse_signed_data(black_box(BLOB)).unwrap())
    });
    let der = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/gen/rsa2048.der"
    ))
    .unwrap();
    group.bench_function("der", |b| {
        b.iter(|| parse_signed_data(black_box(&der)).unwrap())
    });
    group.finish();
}

fn bench_trust_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("trust_store");
    group.bench_function("aws", |b| b.iter(TrustStore::aws));
    // The first-use cost of the lazy store, all at once: every embedded key parsed (39 RSA-2048,
    // 21 RSA-1024, 16 DSA, 1 China RSA-2048); one document pays only for its own signer's key.
    group.bench_function("aws_every_key_parsed", |b| {
        b.iter(|| internal::with_rsa_backend(TrustStore::aws(), Backend::Montgomery).unwrap())
    });
    group.finish();
}

fn bench_rules(c: &mut Criterion) {
    let mut group = c.benchmark_group("rules");
    let verified = internal::verify_signature(parse_signed_data(BLOB).unwrap(), &trust()).unwrap();
    for count in [1usize, 100] {
        // The matching rule is last: the worst case for `count` rules.
        let mut rules: Vec<AllowRule> = (0..count - 1)
            .map(|i| {
                AllowRule::account(format!("{:012}", 100_000 + i).parse().unwrap())
                    .with_regions(["us-east-1".parse().unwrap()])
            })
            .collect();
        rules.push(AllowRule::account("123456789012".parse().unwrap()));
        group.bench_function(count.to_string(), |b| {
            b.iter(|| {
                match_allow_rules(black_box(&verified), black_box(&rules))
                    .unwrap()
                    .0
            })
        });
    }
    group.finish();
}

/// Documents per second with 1 and 2 threads sharing one verifier.
///
/// The threads are started once per measurement batch and each verifies `iters * PER_THREAD`
/// documents, so thread start-up is amortized over the batch rather than paid per iteration.
fn bench_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput");
    let verifier = verifier();
    let now = now();
    const PER_THREAD: u64 = 16;
    for threads in [1u64, 2] {
        group.throughput(Throughput::Elements(PER_THREAD * threads));
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(|| {
                            for _ in 0..iters * PER_THREAD {
                                black_box(verifier.verify(black_box(BLOB), now).unwrap());
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_verify,
    bench_signature_formats,
    bench_parse,
    bench_trust_store,
    bench_rules,
    bench_throughput
);
criterion_main!(benches);
