//! Mutation sweep: every accepted input, in all three formats (real samples from
//! `../shared/aws-samples` and the accepted generated fixtures), with every single-bit flip,
//! every truncation and a few trailers appended.
//!
//! CMS blobs (`/rsa2048`, `/pkcs7`) are mutated as decoded BER. Property: a mutant is rejected,
//! or it verifies to exactly the original content, signer and document, and the flipped byte
//! lies outside what the signature protects (the signed attributes, the content, the signature
//! value). Truncations are all rejected; trailers are rejected as [`Error::TrailingData`].
//!
//! A `/signature` pair is mutated as its document bytes followed by its decoded signature:
//! every byte is signed or is the signature, so every mutant, cut and trailer must be rejected.
//!
//! No mutant may panic. Bits flipped: 0 and 7 of every byte in debug builds (CI), all 8 in
//! release builds or with `EC2_IID_SWEEP_BITS=all`.
#![cfg(test)] // clippy.toml says why

mod shared;

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use base64::Engine as _;
use ec2_iid::dangerous::parse_signed_data;
use ec2_iid::{
    Error, Format, IdentityDocument, SignedInput, Signer, TrustStore, VerifyOptions, verify_input,
};
use ec2_iid_test_support::fixtures;
use ec2_iid_test_support::fixtures::Expect;

/// What a verification yields, compared between the original and a mutant.
#[derive(Clone, Debug, Eq, PartialEq)]
struct Outcome {
    content: Vec<u8>,
    signer: Signer,
    document: IdentityDocument,
}

/// How a case's bytes are handed to the crate.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Kind {
    /// The bytes are a CMS blob of this format.
    Cms(Format),
    /// The bytes are the `/document` bytes (this many) followed by the decoded `/signature`.
    Signature { document_len: usize },
}

fn verify(kind: Kind, bytes: &[u8], trust: &TrustStore) -> Result<Outcome, Error> {
    let options = VerifyOptions::default()
        .allow_legacy_dsa_sha1(true)
        .allow_legacy_rsa1024(true);
    let verified = match kind {
        Kind::Cms(Format::Pkcs7) => verify_input(SignedInput::Pkcs7(bytes), trust, &options)?,
        Kind::Cms(_) => verify_input(SignedInput::Rsa2048(bytes), trust, &options)?,
        Kind::Signature { document_len } => {
            let (document, signature) = bytes.split_at(document_len.min(bytes.len()));
            let text = base64::engine::general_purpose::STANDARD.encode(signature);
            let input = SignedInput::Signature {
                document,
                signature: text.as_bytes(),
            };
            verify_input(input, trust, &options)?
        }
    };
    Ok(Outcome {
        content: verified.content().to_vec(),
        signer: verified.signer().clone(),
        document: verified.document().clone(),
    })
}

/// One accepted input to mutate.
struct Case {
    name: String,
    kind: Kind,
    bytes: Vec<u8>,
    trust: &'static TrustStore,
    expected: Outcome,
    /// Byte ranges the signature protects, where found verbatim in `bytes`.
    protected: Vec<Range<usize>>,
}

/// The test CAs as the generated fixtures expect them: RSA for all three formats (`/pkcs7` as
/// China signs it), DSA for `/pkcs7`.
fn test_ca_store() -> &'static TrustStore {
    static STORE: OnceLock<TrustStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let region = || ["us-east-1".parse().unwrap()];
        let rsa = fixtures::test_ca().cert_pem;
        let dsa = fixtures::dsa_test_ca().cert_pem;
        let mut store = TrustStore::empty();
        store
            .add_pem(Format::Rsa2048, rsa.as_bytes(), region())
            .unwrap()
            .add_pem(Format::Pkcs7, rsa.as_bytes(), region())
            .unwrap()
            .add_pem(Format::Signature, rsa.as_bytes(), region())
            .unwrap()
            .add_pem(Format::Pkcs7, dsa.as_bytes(), region())
            .unwrap();
        store
    })
}

fn aws_store() -> &'static TrustStore {
    static STORE: OnceLock<TrustStore> = OnceLock::new();
    STORE.get_or_init(TrustStore::aws)
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

fn case(name: String, kind: Kind, bytes: Vec<u8>, trust: &'static TrustStore) -> Case {
    let expected =
        verify(kind, &bytes, trust).unwrap_or_else(|e| panic!("{name} must verify: {e}"));
    let protected = match kind {
        Kind::Cms(_) => {
            let signed = parse_signed_data(&bytes).unwrap();
            [
                signed.signed_attributes().unwrap(),
                signed.signature(),
                signed.content(),
            ]
            .into_iter()
            // A chunked content is not contiguous; its chunks are still covered by the
            // property.
            .filter_map(|part| unique_range(&bytes, part))
            .collect()
        }
        Kind::Signature { .. } => std::iter::once(0..bytes.len()).collect(),
    };
    Case {
        name,
        kind,
        bytes,
        trust,
        expected,
        protected,
    }
}

/// A `/signature` case: the document bytes, then the decoded signature.
fn signature_case(document: &[u8], signature_text: &[u8]) -> (Kind, Vec<u8>) {
    let kind = Kind::Signature {
        document_len: document.len(),
    };
    (
        kind,
        [document, &fixtures::decode_base64_text(signature_text)].concat(),
    )
}

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let document = fixtures::document();
    for fixture in fixtures::blob_fixtures() {
        if fixture.expect != Expect::Accept {
            continue;
        }
        let (kind, bytes) = match fixture.format {
            "signature" => signature_case(&document, &fixture.bytes),
            "pkcs7" => (
                Kind::Cms(Format::Pkcs7),
                fixtures::decode_base64_text(&fixture.bytes),
            ),
            _ if fixture.file.ends_with(".der") => {
                (Kind::Cms(Format::Rsa2048), fixture.bytes.clone())
            }
            _ => (
                Kind::Cms(Format::Rsa2048),
                fixtures::decode_base64_text(&fixture.bytes),
            ),
        };
        // rsa2048.{b64,der,pem} and the CRLF form are one blob.
        if cases.iter().any(|c| c.kind == kind && c.bytes == bytes) {
            continue;
        }
        let name = format!("gen/{}", fixture.file);
        cases.push(case(name, kind, bytes, test_ca_store()));
    }
    assert!(cases.len() >= 10, "accepted fixtures: {}", cases.len());
    for sample in ["rsa2048", "pkcs7", "signature"]
        .into_iter()
        .flat_map(shared::samples_of)
    {
        if sample.expect != "accept" {
            continue;
        }
        let (kind, bytes) = match sample.kind.as_str() {
            "signature" => {
                signature_case(&sample.file("document.json"), &sample.file("signature.b64"))
            }
            "pkcs7" => (Kind::Cms(Format::Pkcs7), sample.file("pkcs7.der")),
            _ => (Kind::Cms(Format::Rsa2048), sample.file("rsa2048.der")),
        };
        cases.push(case(sample.id.clone(), kind, bytes, aws_store()));
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

/// Every single-bit flip of the bytes whose offset is `shard` modulo `shards`.
fn flips(tally: &mut Tally, case: &Case, bits: &[u8], shard: usize, shards: usize) {
    let mut mutant = case.bytes.clone();
    for at in (shard..mutant.len()).step_by(shards) {
        let accepted_before = tally.accepted;
        for &bit in bits {
            mutant[at] ^= 1 << bit;
            run(
                tally,
                &format!("flip byte {at} bit {bit}"),
                || match verify(case.kind, &mutant, case.trust) {
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
}

/// Truncations and trailers: `(what, kind, input, expected error or None for any error)`.
fn cuts_and_trailers(case: &Case) -> Vec<(String, Kind, Vec<u8>, Option<Error>)> {
    let bytes = &case.bytes;
    let mut inputs = Vec::new();
    match case.kind {
        Kind::Cms(_) => {
            for len in 0..bytes.len() {
                inputs.push((
                    format!("cut to {len}"),
                    case.kind,
                    bytes[..len].to_vec(),
                    None,
                ));
            }
            let trailers: [&[u8]; 6] = [b"\0", b"\0\0", b"\n", b" ", &[0x30, 0x00], bytes];
            for trailer in trailers {
                let len = trailer.len();
                let blob = [bytes.as_slice(), trailer].concat();
                let expected = Some(Error::TrailingData { len });
                inputs.push((format!("append {len} bytes"), case.kind, blob, expected));
            }
        }
        Kind::Signature { document_len } => {
            let (document, signature) = bytes.split_at(document_len);
            for len in 0..document_len {
                let kind = Kind::Signature { document_len: len };
                let input = [&document[..len], signature].concat();
                inputs.push((format!("document cut to {len}"), kind, input, None));
            }
            for len in 0..signature.len() {
                let input = bytes[..document_len + len].to_vec();
                inputs.push((format!("signature cut to {len}"), case.kind, input, None));
            }
            for trailer in [&b"\n"[..], b" ", b"\0"] {
                let kind = Kind::Signature {
                    document_len: document_len + trailer.len(),
                };
                let input = [document, trailer, signature].concat();
                inputs.push((format!("document + {trailer:?}"), kind, input, None));
                let input = [bytes.as_slice(), trailer].concat();
                inputs.push((format!("signature + {trailer:?}"), case.kind, input, None));
            }
        }
    }
    inputs
}

/// The mutants of `case` whose index is `shard` modulo `shards`.
fn sweep_shard(case: &Case, bits: &[u8], shard: usize, shards: usize) -> Tally {
    let mut tally = Tally::default();
    flips(&mut tally, case, bits, shard, shards);
    let inputs = cuts_and_trailers(case);
    for (what, kind, input, expected) in inputs.into_iter().skip(shard).step_by(shards) {
        run(&mut tally, &what, || {
            match (verify(kind, &input, case.trust), &expected) {
                (Ok(_), _) => Err("accepted".into()),
                (Err(e), Some(expected)) if e != *expected => {
                    Err(format!("{e:?}, not {expected:?}"))
                }
                (Err(_), _) => Ok(false),
            }
        });
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
                tally.merge(handle.join().unwrap());
            }
        });
        tally.accepted_at.sort_unstable();
        let shown = tally.accepted_at.len().min(12);
        println!(
            "sweep {}: {} bytes, {} mutants: {} rejected, {} accepted unchanged (at {} offsets: {:?}{})",
            case.name,
            case.bytes.len(),
            tally.rejected + tally.accepted + tally.failures.len(),
            tally.rejected,
            tally.accepted,
            tally.accepted_at.len(),
            &tally.accepted_at[..shown],
            if tally.accepted_at.len() > shown {
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
