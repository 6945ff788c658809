//! Every real sample (`rsa2048`, `pkcs7`, `signature`) behaves as
//! `../shared/aws-samples/index.json` says.
#![cfg(test)] // clippy.toml says why

mod shared;

use ec2_iid::dangerous::parse_signed_data;
use ec2_iid::ids::Region;
use ec2_iid::internal::verify_signature;
use ec2_iid::{
    AllowRule, Error, ErrorKind, Format, SignedInput, TrustStore, VerifiedDocument, Verifier,
    VerifyOptions, verify_input,
};
use shared::Sample;

#[test]
fn rsa2048_samples_behave_as_indexed() {
    let trust = TrustStore::aws();
    let samples = shared::samples_of("rsa2048");
    let mut checked = 0;
    for sample in &samples {
        for blob in [sample.blob(), sample.file("rsa2048.der")] {
            let result =
                parse_signed_data(&blob).and_then(|signed| verify_signature(signed, &trust));
            match sample.expect.as_str() {
                "accept" => {
                    let verified = result.unwrap_or_else(|e| panic!("{}: {e}", sample.id));
                    let doc = verified.document();
                    assert_eq!(doc.account_id.as_str(), sample.account_id, "{}", sample.id);
                    assert_eq!(
                        doc.instance_id.as_str(),
                        sample.instance_id,
                        "{}",
                        sample.id
                    );
                    assert_eq!(doc.region.as_str(), sample.region, "{}", sample.id);
                    assert_eq!(doc.pending_time, sample.pending_time, "{}", sample.id);
                    let signer = verified.signer();
                    assert_eq!(
                        Some(&signer.serial.to_string()),
                        sample.signer_serial_hex.as_ref()
                    );
                    assert_eq!(signer.region.as_str(), sample.region);
                    assert_eq!(signer.signing_time, sample.signing_time, "{}", sample.id);
                    assert_eq!(
                        verified.content(),
                        sample.file("document.json"),
                        "{}",
                        sample.id
                    );
                }
                "reject" => {
                    let err = result.expect_err(&sample.id);
                    let expected = if sample.note.contains("digest") {
                        Error::DigestMismatch
                    } else {
                        Error::InvalidSignature
                    };
                    assert_eq!(err, expected, "{}: {}", sample.id, sample.note);
                }
                other => panic!("{}: unexpected expectation {other}", sample.id),
            }
            checked += 1;
        }
    }
    if shared::samples().is_some() {
        assert!(checked >= 10, "only {checked} rsa2048 checks ran");
    }
}

/// What a sample's signed input is: the CMS blob (text or binary), or `/document` plus
/// `/signature` text.
fn inputs(sample: &Sample) -> Vec<(String, Vec<u8>, Option<Vec<u8>>)> {
    match sample.kind.as_str() {
        "signature" => vec![(
            "signature.b64".to_owned(),
            sample.file("document.json"),
            Some(sample.file("signature.b64")),
        )],
        kind => [format!("{kind}.b64"), format!("{kind}.der")]
            .into_iter()
            .map(|name| {
                let bytes = sample.file(&name);
                (name, bytes, None)
            })
            .collect(),
    }
}

fn input<'a>(kind: &str, blob: &'a [u8], signature: Option<&'a [u8]>) -> SignedInput<'a> {
    match (kind, signature) {
        (_, Some(signature)) => SignedInput::Signature {
            document: blob,
            signature,
        },
        ("pkcs7", None) => SignedInput::Pkcs7(blob),
        _ => SignedInput::Rsa2048(blob),
    }
}

fn format_of(kind: &str) -> Format {
    kind.parse().unwrap()
}

/// Both legacy formats opted into: `/pkcs7` and `/signature`.
fn legacy() -> VerifyOptions {
    VerifyOptions::default()
        .allow_legacy_dsa_sha1(true)
        .allow_legacy_rsa1024(true)
}

/// A verifier for one sample: its account allowed, `/pkcs7` and `/signature` allowed, default
/// TTL.
fn verifier_for(sample: &Sample, trust: TrustStore) -> Verifier {
    strict_verifier_for(sample, trust, true)
}

/// A verifier for one sample, the legacy formats allowed or not.
fn strict_verifier_for(sample: &Sample, trust: TrustStore, legacy: bool) -> Verifier {
    Verifier::builder(trust)
        .allow(AllowRule::account(sample.account_id.parse().unwrap()))
        .allow_legacy_dsa_sha1(legacy)
        .allow_legacy_rsa1024(legacy)
        .build()
        .unwrap()
}

fn check_accepted(sample: &Sample, verified: &VerifiedDocument, what: &str) {
    let id = format!("{} {what}", sample.id);
    let doc = verified.document();
    assert_eq!(doc.account_id.as_str(), sample.account_id, "{id}");
    assert_eq!(doc.instance_id.as_str(), sample.instance_id, "{id}");
    assert_eq!(doc.region.as_str(), sample.region, "{id}");
    assert_eq!(doc.pending_time, sample.pending_time, "{id}");
    let signer = verified.signer();
    assert_eq!(signer.format, format_of(&sample.kind), "{id}");
    assert_eq!(signer.region.as_str(), sample.region, "{id}");
    if let Some(serial) = &sample.signer_serial_hex {
        assert_eq!(&signer.serial.to_string(), serial, "{id}");
    }
    assert_eq!(signer.signing_time, sample.signing_time, "{id}");
    assert_eq!(verified.content(), sample.file("document.json"), "{id}");
}

/// `/pkcs7` and `/signature` samples: refused without their opt-in (`refused_algorithm`, the
/// other format's opt-in does not help), and with it accepted with the AWS store, rejected
/// when tampered, fake-CA samples accepted only with their own certificate.
#[test]
fn pkcs7_and_signature_samples_behave_as_indexed() {
    let aws = TrustStore::aws();
    let mut checked = 0;
    for kind in ["pkcs7", "signature"] {
        for sample in shared::samples_of(kind) {
            for (name, blob, signature) in inputs(&sample) {
                let what = format!("{} {name}", sample.id);
                let input = input(kind, &blob, signature.as_deref());
                let with = |trust: &TrustStore| verify_input(input, trust, &legacy());
                let refused = Error::LegacyAlgorithmRefused {
                    format: format_of(kind),
                };
                let strict = VerifyOptions::default();
                let (other_opt_in, flag) = match kind {
                    "pkcs7" => (strict.allow_legacy_rsa1024(true), "--allow-legacy-dsa"),
                    _ => (strict.allow_legacy_dsa_sha1(true), "--allow-legacy-rsa1024"),
                };
                for options in [strict, other_opt_in] {
                    let err = verify_input(input, &aws, &options).unwrap_err();
                    assert_eq!(err, refused, "{what} {options:?}");
                    assert_eq!(err.kind(), ErrorKind::RefusedAlgorithm, "{what}");
                    assert!(err.hint().unwrap().contains(flag), "{what}");
                }
                let err = strict_verifier_for(&sample, aws.clone(), false)
                    .verify_input(input, sample.now)
                    .unwrap_err();
                assert_eq!(err, refused, "{what} verifier");
                if kind == "pkcs7" {
                    assert_eq!(
                        verify_input(SignedInput::Cms(&blob), &aws, &strict).unwrap_err(),
                        refused,
                        "{what}"
                    );
                }
                match sample.expect.as_str() {
                    "accept" => {
                        let verified = with(&aws).unwrap_or_else(|e| panic!("{what}: {e}"));
                        check_accepted(&sample, &verified, &name);
                        if kind == "pkcs7" {
                            let detected = verify_input(SignedInput::Cms(&blob), &aws, &legacy())
                                .unwrap_or_else(|e| panic!("{what} detected: {e}"));
                            check_accepted(&sample, &detected, &name);
                        }
                        // Through the Verifier at the sample's clock: rules and TTL hold.
                        let verifier = verifier_for(&sample, aws.clone());
                        let joined = verifier
                            .verify_input(input, sample.now)
                            .unwrap_or_else(|e| panic!("{what} verifier: {e}"));
                        assert_eq!(joined.document(), verified.document(), "{what}");
                        assert_eq!(
                            joined.document().host_id(),
                            format!("{}-{}", sample.account_id, sample.instance_id)
                        );
                    }
                    "reject" => {
                        let err = with(&aws).expect_err(&what);
                        let expected = if sample.note.contains("digest") {
                            Error::DigestMismatch
                        } else {
                            Error::InvalidSignature
                        };
                        assert_eq!(err, expected, "{what}: {}", sample.note);
                    }
                    "accept-only-with-its-fake-cert" => {
                        let fake = shared::read(sample.fakecert.as_deref().unwrap());
                        let region: Region = sample.region.parse().unwrap();
                        let err = with(&aws).expect_err(&what);
                        match kind {
                            // Its signer names no AWS certificate.
                            "pkcs7" => {
                                assert!(matches!(err, Error::UnknownSigner { .. }), "{what}: {err}")
                            }
                            // The region's AWS key does not verify it.
                            _ => assert_eq!(err, Error::InvalidSignature, "{what}"),
                        }
                        let mut own = TrustStore::empty();
                        own.add_pem(format_of(kind), &fake, [region.clone()])
                            .unwrap();
                        let verified = with(&own).unwrap_or_else(|e| panic!("{what}: {e}"));
                        check_accepted(&sample, &verified, &name);
                        verifier_for(&sample, own)
                            .verify_input(input, sample.now)
                            .unwrap_or_else(|e| panic!("{what} verifier: {e}"));
                        // Trusted for another region or format, it does not help.
                        let mut elsewhere = TrustStore::empty();
                        elsewhere
                            .add_pem(format_of(kind), &fake, ["sa-east-1".parse().unwrap()])
                            .unwrap();
                        assert!(with(&elsewhere).is_err(), "{what}");
                        let other_format = if kind == "pkcs7" {
                            Format::Rsa2048
                        } else {
                            Format::Pkcs7
                        };
                        let mut other = TrustStore::empty();
                        if other.add_pem(other_format, &fake, [region]).is_ok() {
                            assert!(with(&other).is_err(), "{what}");
                        }
                    }
                    other => panic!("{what}: unexpected expectation {other}"),
                }
                checked += 1;
            }
        }
    }
    if shared::samples().is_some() {
        assert!(checked >= 15, "only {checked} pkcs7/signature checks ran");
    }
}

/// The same document signed in several formats is one identity: every accepted sample with
/// the same account, instance and pendingTime verifies to the same `IdentityDocument` and the
/// same bytes, and `doc_from` names a sample of the same document.
#[test]
fn one_document_in_several_formats_is_one_identity() {
    let aws = TrustStore::aws();
    let samples = shared::samples().unwrap_or_default();
    let verified: Vec<(&Sample, VerifiedDocument)> = samples
        .iter()
        .filter(|s| s.expect == "accept")
        .map(|s| {
            let (_, blob, signature) = inputs(s).swap_remove(0);
            let v = verify_input(input(&s.kind, &blob, signature.as_deref()), &aws, &legacy())
                .unwrap_or_else(|e| panic!("{}: {e}", s.id));
            (s, v)
        })
        .collect();
    let mut pairs = 0;
    for (a, va) in &verified {
        for (b, vb) in &verified {
            let same = a.account_id == b.account_id
                && a.instance_id == b.instance_id
                && a.pending_time == b.pending_time;
            if a.id < b.id && same {
                assert_ne!(a.kind, b.kind, "{} {}", a.id, b.id);
                assert_eq!(va.document(), vb.document(), "{} {}", a.id, b.id);
                assert_eq!(va.content(), vb.content(), "{} {}", a.id, b.id);
                pairs += 1;
            }
        }
        if let Some((_, from)) = a
            .doc_from
            .as_ref()
            .and_then(|from| verified.iter().find(|(s, _)| &s.id == from))
        {
            assert_eq!(va.content(), from.content(), "{} doc_from", a.id);
            assert_eq!(va.document(), from.document(), "{} doc_from", a.id);
        }
    }
    if shared::samples().is_some() {
        assert!(pairs >= 2, "only {pairs} cross-format pairs");
    }
}

/// A `/signature` document must be the exact bytes AWS signed: one added space is rejected.
#[test]
fn signature_samples_reject_one_added_space() {
    let aws = TrustStore::aws();
    for sample in shared::samples_of("signature") {
        if sample.expect != "accept" {
            continue;
        }
        let document = sample.file("document.json");
        let signature = sample.file("signature.b64");
        let mut spaced = document.clone();
        let at = spaced.iter().position(|&b| b == b',').unwrap() + 1;
        spaced.insert(at, b' ');
        let input = SignedInput::Signature {
            document: &spaced,
            signature: &signature,
        };
        assert_eq!(
            verify_input(input, &aws, &legacy()).unwrap_err(),
            Error::InvalidSignature,
            "{}",
            sample.id
        );
    }
}
