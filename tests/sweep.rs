//! Mutation sweep: every accepted blob (real `rsa2048` samples from `../shared/aws-samples`
//! and the accepted generated fixtures), decoded to binary, with every single-bit flip, every
//! truncation and a few trailers appended.
//!
//! Property: a mutant is rejected, or it verifies to exactly the original content, signer and
//! document, and the flipped byte lies outside what the signature protects (the signed
//! attributes, the content, the signature value). No mutant panics. Truncations are all
//! rejected; trailers are rejected as [`Error::TrailingData`].
//!
//! Bits flipped: 0 and 7 of every byte in debug builds (CI), all 8 in release builds or with
//! `EC2_IID_SWEEP_BITS=all`. `/pkcs7` and `/signature` samples join the sweep once the crate
//! verifies those formats; today it verifies `/rsa2048` only.
#![expect(
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test helpers (clippy.toml's allow-*-in-tests covers only #[test] fns): a panic is a test failure"
)]

mod common;
mod shared;

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use base64::Engine as _;
use common::Expect;
use ec2_iid::{
    Error, Format, IdentityDocument, Signer, TrustStore, parse_document, verify_signature,
};

/// What a verification yields, compared between the original and a mutant.
#[derive(Clone, Debug, Eq, PartialEq)]
struct Outcome {
    content: Vec<u8>,
    signer: Signer,
    document: IdentityDocument,
}

fn verify(der: &[u8], trust: &TrustStore) -> Result<Outcome, Error> {
    let verified = verify_signature(parse_document(der)?, trust)?;
    Ok(Outcome {
        content: verified.content().to_vec(),
        signer: verified.signer().clone(),
        document: verified.document().clone(),
    })
}

/// One accepted blob to mutate.
struct Case {
    name: String,
    der: Vec<u8>,
    trust: &'static TrustStore,
    expected: Outcome,
    /// Byte ranges the signature protects, where found verbatim in `der`.
    protected: Vec<Range<usize>>,
}

fn test_ca_store() -> &'static TrustStore {
    static STORE: std::sync::OnceLock<TrustStore> = std::sync::OnceLock::new();
    STORE.get_or_init(|| {
        let mut store = TrustStore::empty();
        store
            .add_pem(
                Format::Rsa2048,
                common::test_ca().cert_pem.as_bytes(),
                ["us-east-1".parse().unwrap()],
            )
            .unwrap();
        store
    })
}

fn aws_store() -> &'static TrustStore {
    static STORE: std::sync::OnceLock<TrustStore> = std::sync::OnceLock::new();
    STORE.get_or_init(TrustStore::aws)
}

/// The binary blob of a fixture: `.der` as is, text forms base64-decoded.
fn decode_fixture(file: &str, bytes: &[u8]) -> Vec<u8> {
    if file.ends_with(".der") {
        return bytes.to_vec();
    }
    let text: String = std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(str::chars)
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// The only occurrence of `needle` in `haystack`, if it occurs exactly once.
fn unique_range(haystack: &[u8], needle: &[u8]) -> Option<Range<usize>> {
    let mut hits = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i..i + needle.len());
    let first = hits.next()?;
    hits.next().is_none().then_some(first)
}

fn case(name: String, der: Vec<u8>, trust: &'static TrustStore) -> Case {
    let expected = verify(&der, trust).unwrap_or_else(|e| panic!("{name} must verify: {e}"));
    let signed = parse_document(&der).unwrap();
    let protected = [
        signed.signed_attributes().unwrap(),
        signed.signature(),
        signed.content(),
    ]
    .into_iter()
    // A chunked content is not contiguous; its chunks are still covered by the property.
    .filter_map(|part| unique_range(&der, part))
    .collect();
    Case {
        name,
        der,
        trust,
        expected,
        protected,
    }
}

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for fixture in common::blob_fixtures() {
        if fixture.expect != Expect::Accept {
            continue;
        }
        let der = decode_fixture(fixture.file, &fixture.bytes);
        // rsa2048.{b64,der,pem} and the CRLF form are one blob.
        if cases.iter().any(|c| c.der == der) {
            continue;
        }
        cases.push(case(format!("gen/{}", fixture.file), der, test_ca_store()));
    }
    assert!(cases.len() >= 6, "accepted fixtures: {}", cases.len());
    for sample in shared::samples_of("rsa2048") {
        if sample.expect == "accept" {
            let der = sample.file("rsa2048.der");
            cases.push(case(sample.id.clone(), der, aws_store()));
        }
    }
    cases
}

fn bits() -> Vec<u8> {
    let all = std::env::var("EC2_IID_SWEEP_BITS").is_ok_and(|v| v == "all");
    if all || !cfg!(debug_assertions) {
        (0..8).collect()
    } else {
        vec![0, 7]
    }
}

/// What one thread saw.
#[derive(Debug, Default)]
struct Tally {
    rejected: usize,
    accepted: usize,
    accepted_at: Vec<usize>,
    failures: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Self) {
        self.rejected += other.rejected;
        self.accepted += other.accepted;
        self.accepted_at.extend(other.accepted_at);
        self.failures.extend(other.failures);
    }
}

/// Runs `check` on a mutant, turning a panic into a failure naming the mutant.
fn run(tally: &mut Tally, what: &str, check: impl FnOnce() -> Result<bool, String>) {
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(Ok(true)) => tally.accepted += 1,
        Ok(Ok(false)) => tally.rejected += 1,
        Ok(Err(failure)) => tally.failures.push(format!("{what}: {failure}")),
        Err(_) => tally.failures.push(format!("{what}: panicked")),
    }
}

/// The mutants of `case` whose index is `shard` modulo `shards`.
fn sweep_shard(case: &Case, bits: &[u8], shard: usize, shards: usize) -> Tally {
    let mut tally = Tally::default();
    let der = &case.der;
    let mut mutant = der.clone();
    for at in (shard..der.len()).step_by(shards) {
        let accepted_before = tally.accepted;
        for &bit in bits {
            mutant[at] ^= 1 << bit;
            run(
                &mut tally,
                &format!("flip byte {at} bit {bit}"),
                || match verify(&mutant, case.trust) {
                    Err(_) => Ok(false),
                    Ok(outcome) if outcome != case.expected => {
                        Err(format!("accepted with another outcome: {outcome:?}"))
                    }
                    Ok(_) if case.protected.iter().any(|r| r.contains(&at)) => {
                        Err("accepted although the byte is signed".into())
                    }
                    Ok(_) => Ok(true),
                },
            );
            mutant[at] ^= 1 << bit;
        }
        if tally.accepted > accepted_before {
            tally.accepted_at.push(at);
        }
    }
    for len in (shard..der.len()).step_by(shards) {
        run(&mut tally, &format!("truncate to {len}"), || {
            match verify(&der[..len], case.trust) {
                Err(_) => Ok(false),
                Ok(_) => Err("a truncated blob was accepted".into()),
            }
        });
    }
    let trailers: [&[u8]; 6] = [b"\0", b"\0\0", b"\n", b" ", &[0x30, 0x00], der];
    for (i, trailer) in trailers.into_iter().enumerate() {
        if i % shards != shard {
            continue;
        }
        let blob = [der.as_slice(), trailer].concat();
        run(
            &mut tally,
            &format!("append {} bytes", trailer.len()),
            || match verify(&blob, case.trust) {
                Err(Error::TrailingData { len }) if len == trailer.len() => Ok(false),
                other => Err(format!("expected TrailingData, got {other:?}")),
            },
        );
    }
    tally
}

#[test]
fn every_bit_flip_truncation_and_trailer_is_rejected_or_harmless() {
    let bits = bits();
    let shards = 2;
    let mut total = Tally::default();
    for case in cases() {
        let mut tally = Tally::default();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..shards)
                .map(|shard| {
                    let (case, bits) = (&case, &bits);
                    scope.spawn(move || sweep_shard(case, bits, shard, shards))
                })
                .collect();
            for handle in handles {
                tally.merge(handle.join().expect("sweep thread"));
            }
        });
        tally.accepted_at.sort_unstable();
        println!(
            "sweep {}: {} bytes, {} mutants: {} rejected, {} accepted unchanged (at {} offsets: {:?}{})",
            case.name,
            case.der.len(),
            tally.rejected + tally.accepted + tally.failures.len(),
            tally.rejected,
            tally.accepted,
            tally.accepted_at.len(),
            &tally.accepted_at[..tally.accepted_at.len().min(12)],
            if tally.accepted_at.len() > 12 {
                ", .."
            } else {
                ""
            },
        );
        for failure in &mut tally.failures {
            *failure = format!("{}: {failure}", case.name);
        }
        total.merge(tally);
    }
    println!(
        "sweep total (bits {bits:?}): {} rejected, {} accepted unchanged, {} failures",
        total.rejected,
        total.accepted,
        total.failures.len()
    );
    assert!(
        total.failures.is_empty(),
        "{} failures, first ones:\n{}",
        total.failures.len(),
        total.failures[..total.failures.len().min(20)].join("\n")
    );
    assert!(total.rejected > total.accepted);
}
