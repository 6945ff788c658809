//! The three IMDS formats through one entry point, on the generated fixtures in
//! `tests/data/gen/` (test CAs, NOT AWS keys): `/pkcs7` opt-in, `/signature` region lookup,
//! CMS auto-detection, and one test per new error variant.
#![cfg(test)] // clippy.toml says why

use chrono::{DateTime, Utc};
use ec2_iid::dangerous::{detect_cms_format, parse_signed_data};
use ec2_iid::ids::Region;
use ec2_iid::internal::verify_signature;
use ec2_iid::{
    AllowRule, ConfigError, Error, ErrorKind, Format, IdentityDocument, SignedInput, TrustStore,
    VerifiedDocument, Verifier, VerifyOptions, verify_input,
};
use ec2_iid_test_support::fixtures::{self, BlobSpec, NOW_FOR_TESTS};

const RSA_CA: &[u8] = include_bytes!("data/testca/testca.pem");
const DSA_CA: &[u8] = include_bytes!("data/testca/testca-dsa.pem");
const DOCUMENT: &[u8] = include_bytes!("data/gen/document.json");
const SIGNATURE: &[u8] = include_bytes!("data/gen/signature.b64");
const RSA2048: &[u8] = include_bytes!("data/gen/rsa2048.b64");
const PKCS7: &[u8] = include_bytes!("data/gen/pkcs7.b64");
const PKCS7_2018: &[u8] = include_bytes!("data/gen/pkcs7-2018.b64");
const PKCS7_TAMPERED: &[u8] = include_bytes!("data/gen/pkcs7-tampered-signature.b64");
const PKCS7_RSA: &[u8] = include_bytes!("data/gen/pkcs7-rsa.b64");
const PKCS7_RSA_SHA1: &[u8] = include_bytes!("data/gen/pkcs7-rsa-sha1.b64");

fn region(r: &str) -> Region {
    r.parse().unwrap()
}

fn now() -> DateTime<Utc> {
    NOW_FOR_TESTS.parse().unwrap()
}

/// The test CAs trusted as AWS's keys would be: RSA for rsa2048 and signature, DSA for pkcs7.
fn test_trust() -> TrustStore {
    let mut trust = TrustStore::empty();
    trust
        .add_pem(Format::Rsa2048, RSA_CA, [region("us-east-1")])
        .unwrap()
        .add_pem(Format::Pkcs7, DSA_CA, [region("us-east-1")])
        .unwrap()
        .add_pem(Format::Signature, RSA_CA, [region("us-east-1")])
        .unwrap();
    trust
}

fn strict() -> VerifyOptions {
    VerifyOptions::default()
}

/// Both legacy formats opted into.
fn legacy() -> VerifyOptions {
    VerifyOptions::default()
        .allow_legacy_dsa_sha1(true)
        .allow_legacy_rsa1024(true)
}

/// `/signature` opted into, `/pkcs7` not.
fn rsa1024() -> VerifyOptions {
    VerifyOptions::default().allow_legacy_rsa1024(true)
}

fn signature_input(document: &[u8]) -> SignedInput<'_> {
    SignedInput::Signature {
        document,
        signature: SIGNATURE,
    }
}

fn verify(input: SignedInput<'_>, options: &VerifyOptions) -> Result<VerifiedDocument, Error> {
    verify_input(input, &test_trust(), options)
}

const REFUSED: Error = Error::LegacyAlgorithmRefused {
    format: Format::Pkcs7,
};

// ------------------------------------------------------------------------------------------------
// /pkcs7
// ------------------------------------------------------------------------------------------------

#[test]
fn pkcs7_is_refused_without_the_opt_in() {
    assert!(!strict().legacy_dsa_sha1_allowed());
    for input in [SignedInput::Pkcs7(PKCS7), SignedInput::Cms(PKCS7)] {
        assert_eq!(verify(input, &strict()).unwrap_err(), REFUSED, "{input:?}");
    }
    // Refused before parsing when the caller says it is /pkcs7.
    assert_eq!(
        verify(SignedInput::Pkcs7(b"not even base64 *"), &strict()).unwrap_err(),
        REFUSED
    );
    // The Verifier refuses by default too, and accepts with the builder's opt-in.
    let builder =
        Verifier::builder(test_trust()).allow(AllowRule::account("123456789012".parse().unwrap()));
    let verifier = builder.clone().build().unwrap();
    assert!(!verifier.options().legacy_dsa_sha1_allowed());
    assert_eq!(verifier.verify(PKCS7, now()).unwrap_err(), REFUSED);
    let verifier = builder.allow_legacy_dsa_sha1(true).build().unwrap();
    let joined = verifier.verify(PKCS7, now()).unwrap();
    assert_eq!(joined.verified().signer().format, Format::Pkcs7);
    assert_eq!(
        joined.document().host_id(),
        "123456789012-i-0123456789abcdef0"
    );
}

#[test]
fn pkcs7_dsa_verifies_with_the_opt_in() {
    for (blob, name) in [(PKCS7, "pkcs7"), (PKCS7_2018, "pkcs7-2018")] {
        for input in [SignedInput::Pkcs7(blob), SignedInput::Cms(blob)] {
            let verified = verify(input, &legacy()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let signer = verified.signer();
            assert_eq!(signer.format, Format::Pkcs7);
            assert_eq!(signer.serial.to_string(), "D5A1C3B4A5968779");
            assert_eq!(signer.region, region("us-east-1"));
            assert_eq!(
                signer.signing_time.map(|t| t.to_rfc3339()),
                Some("2026-11-01T12:00:05+00:00".to_owned())
            );
            assert_eq!(verified.content(), DOCUMENT);
        }
    }
}

#[test]
fn pkcs7_tampered_dsa_signature_is_invalid() {
    assert_eq!(
        verify(SignedInput::Pkcs7(PKCS7_TAMPERED), &legacy()).unwrap_err(),
        Error::InvalidSignature
    );
}

#[test]
fn pkcs7_with_rsa_as_in_china() {
    let mut trust = TrustStore::empty();
    trust
        .add_pem(Format::Pkcs7, RSA_CA, [region("us-east-1")])
        .unwrap();
    for blob in [PKCS7_RSA, PKCS7_RSA_SHA1] {
        // Detected as /pkcs7 (SHA-1 digest, or a signer trusted for pkcs7 only) and refused...
        assert_eq!(
            verify_input(SignedInput::Cms(blob), &trust, &strict()).unwrap_err(),
            REFUSED
        );
        // ...unless allowed; explicit and detected agree.
        for input in [SignedInput::Pkcs7(blob), SignedInput::Cms(blob)] {
            let verified = verify_input(input, &trust, &legacy()).unwrap();
            assert_eq!(verified.signer().format, Format::Pkcs7);
            assert_eq!(verified.signer().serial.to_string(), "E1D2C3B4A5968778");
        }
    }
    // The same certificate trusted for rsa2048 does not vouch for /pkcs7 blobs, and the
    // SHA-1 one is no /rsa2048 blob.
    let mut rsa2048_only = TrustStore::empty();
    rsa2048_only
        .add_pem(Format::Rsa2048, RSA_CA, [region("us-east-1")])
        .unwrap();
    assert!(matches!(
        verify_input(SignedInput::Pkcs7(PKCS7_RSA), &rsa2048_only, &legacy()),
        Err(Error::UnknownSigner { .. })
    ));
    assert!(matches!(
        verify_input(
            SignedInput::Rsa2048(PKCS7_RSA_SHA1),
            &rsa2048_only,
            &legacy()
        ),
        Err(Error::UnsupportedDigestAlgorithm { .. })
    ));
}

#[test]
fn formats_do_not_cross() {
    // A DSA blob is not /rsa2048; an /rsa2048 blob is signed by no pkcs7 key.
    assert_eq!(
        verify(SignedInput::Rsa2048(PKCS7), &legacy()).unwrap_err(),
        Error::UnsupportedDigestAlgorithm {
            oid: "1.3.14.3.2.26".to_owned()
        }
    );
    assert!(matches!(
        verify(SignedInput::Pkcs7(RSA2048), &legacy()),
        Err(Error::UnknownSigner { .. })
    ));
    // The DSA CA is no rsa2048 or signature key.
    let mut trust = TrustStore::empty();
    for format in [Format::Rsa2048, Format::Signature] {
        assert!(matches!(
            trust.add_pem(format, DSA_CA, [region("us-east-1")]),
            Err(ConfigError::BadCertificate { .. })
        ));
    }
    // An RSA-1024 /signature key is refused for the CMS formats.
    let rsa1024 = ec2_iid::trust::aws::SIGNATURE[0].pem.as_bytes();
    for format in [Format::Rsa2048, Format::Pkcs7] {
        assert!(matches!(
            trust.add_pem(format, rsa1024, [region("af-south-1")]),
            Err(ConfigError::BadCertificate { .. })
        ));
    }
    trust
        .add_pem(Format::Signature, rsa1024, [region("af-south-1")])
        .unwrap();
}

#[test]
fn signing_time_outside_the_key_validity() {
    let ca = fixtures::test_ca();
    let dsa_ca = fixtures::dsa_test_ca();
    // The DSA test CA is valid 2012-2038.
    for (time, ok) in [
        ("120101000000Z", true),
        ("111231235959Z", false),
        ("380101000001Z", false),
    ] {
        let blob = BlobSpec {
            signing_time: Some(time.to_owned()),
            ..BlobSpec::aws_pkcs7_like(DOCUMENT, &dsa_ca)
        }
        .build(&ca);
        let result = verify(SignedInput::Pkcs7(&blob), &legacy());
        if ok {
            assert!(result.is_ok(), "{time}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(Error::SigningTimeOutsideValidity { .. })),
                "{time}: {result:?}"
            );
        }
    }
}

#[test]
fn pkcs7_unsupported_algorithms() {
    let ca = fixtures::test_ca();
    let dsa_ca = fixtures::dsa_test_ca();
    let pkcs7 = BlobSpec::aws_pkcs7_like(DOCUMENT, &dsa_ca);
    // dsaWithSHA1 with a SHA-256 digest is not a /pkcs7 combination.
    let sha256 = BlobSpec {
        digest_oid: fixtures::der_oid(fixtures::oid::SHA256),
        hash_sha1: false,
        ..pkcs7.clone()
    }
    .build(&ca);
    assert_eq!(
        verify(SignedInput::Pkcs7(&sha256), &legacy()).unwrap_err(),
        Error::UnsupportedSignatureAlgorithm {
            oid: "1.2.840.10040.4.3".to_owned()
        }
    );
    // An unknown digest.
    let md5 = BlobSpec {
        digest_oid: fixtures::der_oid("1.2.840.113549.2.5"),
        ..pkcs7
    }
    .build(&ca);
    assert_eq!(
        verify(SignedInput::Pkcs7(&md5), &legacy()).unwrap_err(),
        Error::UnsupportedDigestAlgorithm {
            oid: "1.2.840.113549.2.5".to_owned()
        }
    );
}

// ------------------------------------------------------------------------------------------------
// Auto-detection
// ------------------------------------------------------------------------------------------------

#[test]
fn cms_format_detection() {
    let aws = TrustStore::aws();
    let detect = |blob: &[u8], trust: &TrustStore| {
        detect_cms_format(&parse_signed_data(blob).unwrap(), trust)
    };
    // By signature algorithm.
    assert_eq!(detect(RSA2048, &aws), Format::Rsa2048);
    assert_eq!(detect(PKCS7, &aws), Format::Pkcs7);
    assert_eq!(detect(PKCS7, &TrustStore::empty()), Format::Pkcs7);
    // SHA-1 with RSA is only ever /pkcs7.
    assert_eq!(detect(PKCS7_RSA_SHA1, &TrustStore::empty()), Format::Pkcs7);
    // RSA with SHA-256: /rsa2048 unless the signer is a pkcs7-only key.
    assert_eq!(detect(PKCS7_RSA, &TrustStore::empty()), Format::Rsa2048);
    let mut pkcs7_only = TrustStore::empty();
    pkcs7_only
        .add_pem(Format::Pkcs7, RSA_CA, [region("us-east-1")])
        .unwrap();
    assert_eq!(detect(PKCS7_RSA, &pkcs7_only), Format::Pkcs7);
    let mut both = pkcs7_only.clone();
    both.add_pem(Format::Rsa2048, RSA_CA, [region("us-east-1")])
        .unwrap();
    assert_eq!(detect(PKCS7_RSA, &both), Format::Rsa2048);

    // Verifier::verify keeps working for /rsa2048 and reports the format.
    let verifier = Verifier::builder(test_trust())
        .allow(AllowRule::account("123456789012".parse().unwrap()))
        .build()
        .unwrap();
    let joined = verifier.verify(RSA2048, now()).unwrap();
    assert_eq!(joined.verified().signer().format, Format::Rsa2048);
    let verified = verify(SignedInput::Cms(RSA2048), &strict()).unwrap();
    assert_eq!(verified.signer().format, Format::Rsa2048);
    assert_eq!(SignedInput::Cms(RSA2048).format(), None);
    assert_eq!(SignedInput::Pkcs7(PKCS7).format(), Some(Format::Pkcs7));
    assert_eq!(
        SignedInput::Rsa2048(RSA2048).format(),
        Some(Format::Rsa2048)
    );
    assert_eq!(signature_input(DOCUMENT).format(), Some(Format::Signature));
}

// ------------------------------------------------------------------------------------------------
// /signature
// ------------------------------------------------------------------------------------------------

#[test]
fn signature_is_refused_without_the_opt_in() {
    let refused = Error::LegacyAlgorithmRefused {
        format: Format::Signature,
    };
    assert!(!strict().legacy_rsa1024_allowed());
    // Refused before anything is read, and the /pkcs7 opt-in does not accept it.
    for options in [strict(), strict().allow_legacy_dsa_sha1(true)] {
        assert_eq!(
            verify(signature_input(DOCUMENT), &options).unwrap_err(),
            refused
        );
        let garbage = SignedInput::Signature {
            document: b"not json",
            signature: b"not base64 *",
        };
        assert_eq!(verify(garbage, &options).unwrap_err(), refused);
    }
    // Nor does the /signature opt-in accept /pkcs7.
    assert_eq!(
        verify(SignedInput::Pkcs7(PKCS7), &rsa1024()).unwrap_err(),
        REFUSED
    );
    // A refused algorithm, with a hint naming the opt-in.
    assert_eq!(refused.kind(), ErrorKind::RefusedAlgorithm);
    assert_eq!(refused.kind().as_str(), "refused_algorithm");
    let hint = refused.hint().unwrap();
    assert!(
        hint.contains("--allow-legacy-rsa1024")
            && hint.contains("allow_legacy_rsa1024")
            && hint.contains("rsa2048"),
        "{hint}"
    );
    assert_eq!(
        refused.to_string(),
        "the signature format (RSA-1024) is refused unless allow_legacy_rsa1024 is set"
    );
    // The Verifier refuses by default too, and accepts with the builder's opt-in.
    let builder =
        Verifier::builder(test_trust()).allow(AllowRule::account("123456789012".parse().unwrap()));
    let verifier = builder.clone().allow_legacy_dsa_sha1(true).build().unwrap();
    assert!(!verifier.options().legacy_rsa1024_allowed());
    assert_eq!(
        verifier
            .verify_input(signature_input(DOCUMENT), now())
            .unwrap_err(),
        refused
    );
    let verifier = builder.allow_legacy_rsa1024(true).build().unwrap();
    assert!(verifier.options().legacy_rsa1024_allowed());
    assert!(!verifier.options().legacy_dsa_sha1_allowed());
    let joined = verifier
        .verify_input(signature_input(DOCUMENT), now())
        .unwrap();
    assert_eq!(joined.verified().signer().format, Format::Signature);
}

#[test]
fn signature_verifies_over_the_exact_document() {
    let verified = verify(signature_input(DOCUMENT), &rsa1024()).unwrap();
    assert_eq!(verified.content(), DOCUMENT);
    let signer = verified.signer();
    assert_eq!(signer.format, Format::Signature);
    assert_eq!(signer.region, region("us-east-1"));
    assert_eq!(signer.serial.to_string(), "E1D2C3B4A5968778");
    assert_eq!(signer.signing_time, None);
    assert_eq!(verified.host_id(), "123456789012-i-0123456789abcdef0");

    // Through the Verifier, with rules and TTL.
    let verifier = Verifier::builder(test_trust())
        .allow(AllowRule::account("123456789012".parse().unwrap()))
        .allow_legacy_rsa1024(true)
        .build()
        .unwrap();
    let joined = verifier
        .verify_input(signature_input(DOCUMENT), now())
        .unwrap();
    assert_eq!(joined.document(), verified.document());
    let late = now() + chrono::Duration::minutes(10);
    assert!(matches!(
        verifier.verify_input(signature_input(DOCUMENT), late),
        Err(Error::Expired { .. })
    ));
}

#[test]
fn signature_rejects_any_change_to_the_document() {
    let text = std::str::from_utf8(DOCUMENT).unwrap();
    let one_space = text.replacen("{", "{ ", 1);
    assert_eq!(one_space.len(), DOCUMENT.len() + 1);
    // Still the same JSON, but not the signed bytes.
    assert_eq!(
        ec2_iid::dangerous::parse_unverified_document(one_space.as_bytes()).unwrap(),
        ec2_iid::dangerous::parse_unverified_document(DOCUMENT).unwrap()
    );
    let trailing_newline = format!("{text}\n");
    let other_account = text.replace("123456789012", "123456789013");
    for changed in [one_space, trailing_newline, other_account] {
        assert_eq!(
            verify(signature_input(changed.as_bytes()), &rsa1024()).unwrap_err(),
            Error::InvalidSignature
        );
    }
}

#[test]
fn signature_key_is_chosen_by_region() {
    // The region names no trusted /signature key: its own error, before any RSA.
    let mut elsewhere = TrustStore::empty();
    elsewhere
        .add_pem(Format::Signature, RSA_CA, [region("eu-west-1")])
        .unwrap()
        .add_pem(Format::Rsa2048, RSA_CA, [region("us-east-1")])
        .unwrap();
    assert_eq!(
        verify_input(signature_input(DOCUMENT), &elsewhere, &rsa1024()).unwrap_err(),
        Error::UnsupportedRegion {
            format: Format::Signature,
            region: region("us-east-1"),
        }
    );
    // A document that claims another region is checked with that region's keys only.
    let text = std::str::from_utf8(DOCUMENT).unwrap();
    let moved = text.replace("\"us-east-1\"", "\"eu-west-1\"");
    assert_ne!(moved, text);
    assert_eq!(
        verify_input(signature_input(moved.as_bytes()), &elsewhere, &rsa1024()).unwrap_err(),
        Error::InvalidSignature
    );
    // AWS's us-east-1 key does not verify the test CA's signature.
    assert_eq!(
        verify_input(signature_input(DOCUMENT), &TrustStore::aws(), &rsa1024()).unwrap_err(),
        Error::InvalidSignature
    );
    // Several keys for a region: each is tried.
    let mut two = TrustStore::aws();
    two.add_pem(Format::Signature, RSA_CA, [region("us-east-1")])
        .unwrap();
    assert_eq!(
        two.keys_for_region(Format::Signature, &region("us-east-1"))
            .count(),
        2
    );
    assert!(verify_input(signature_input(DOCUMENT), &two, &rsa1024()).is_ok());
}

#[test]
fn signature_input_errors() {
    let bad = |document: &[u8], signature: &[u8]| {
        verify(
            SignedInput::Signature {
                document,
                signature,
            },
            &rsa1024(),
        )
        .unwrap_err()
    };
    assert_eq!(bad(DOCUMENT, b"not base64!"), Error::Base64);
    assert_eq!(bad(DOCUMENT, b" \r\n"), Error::Base64);
    assert_eq!(bad(DOCUMENT, b"AAAA"), Error::InvalidSignature);
    let big = vec![b' '; ec2_iid::MAX_BLOB_LEN + 1];
    assert_eq!(
        bad(&big, SIGNATURE),
        Error::InputTooLarge {
            len: ec2_iid::MAX_BLOB_LEN + 1,
            max: ec2_iid::MAX_BLOB_LEN
        }
    );
    assert_eq!(
        bad(DOCUMENT, &big),
        Error::InputTooLarge {
            len: ec2_iid::MAX_BLOB_LEN + 1,
            max: ec2_iid::MAX_BLOB_LEN
        }
    );
    // Exactly the cap is read (and then fails as what it is: whitespace, not JSON).
    assert!(matches!(
        bad(&big[1..], SIGNATURE),
        Error::InvalidDocument { .. }
    ));
    for document in [
        &big[..10],
        &b"{}"[..],
        b"not json",
        br#"{"region": "us-east-1", "region": "us-east-1"}"#,
        br#"{"region": "US_EAST_1"}"#,
    ] {
        assert!(
            matches!(bad(document, SIGNATURE), Error::InvalidDocument { .. }),
            "{:?}",
            String::from_utf8_lossy(document)
        );
    }
    // A region and a valid signature over a document that is no identity document.
    let ca = fixtures::test_ca();
    let partial = br#"{"region" : "us-east-1"}"#;
    let signature = fixtures::base64_lines(&fixtures::rsa_sign(&ca.key, partial)).join("\n");
    assert!(matches!(
        bad(partial, signature.as_bytes()),
        Error::InvalidDocument { .. }
    ));
}

// ------------------------------------------------------------------------------------------------
// One document, three formats
// ------------------------------------------------------------------------------------------------

#[test]
fn one_document_in_every_format_is_one_identity() {
    let trust = test_trust();
    let documents: Vec<IdentityDocument> = [
        SignedInput::Rsa2048(RSA2048),
        SignedInput::Pkcs7(PKCS7),
        signature_input(DOCUMENT),
    ]
    .into_iter()
    .map(|input| {
        let verified = verify_input(input, &trust, &legacy()).unwrap();
        assert_eq!(verified.content(), DOCUMENT);
        assert_eq!(Some(verified.signer().format), input.format());
        verified.document().clone()
    })
    .collect();
    assert_eq!(documents[0], documents[1]);
    assert_eq!(documents[0], documents[2]);
    // verify_signature is still /rsa2048 only.
    let rsa = verify_signature(parse_signed_data(RSA2048).unwrap(), &trust).unwrap();
    assert_eq!(rsa.document(), &documents[0]);
    assert!(matches!(
        verify_signature(parse_signed_data(PKCS7).unwrap(), &trust),
        Err(Error::UnsupportedDigestAlgorithm { .. })
    ));
}
