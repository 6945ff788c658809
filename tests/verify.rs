//! Every generated fixture behaves as `tests/data/gen/index.json` says.
#![cfg(test)] // clippy.toml says why

mod common;

use ec2_iid::dangerous::parse_signed_data;
use ec2_iid::ids::SerialNumber;
use ec2_iid::internal::verify_signature;
use ec2_iid::{Error, Format, SignedInput, TrustStore, VerifyOptions, verify_input};
use ec2_iid_test_support::fixtures;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Entry {
    file: String,
    format: String,
    expect: String,
    error: Option<String>,
}

fn variant_name(error: &Error) -> String {
    let debug = format!("{error:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn fixtures_behave_as_indexed() {
    let index: Vec<Entry> =
        serde_json::from_slice(&std::fs::read(fixtures::data_path("gen/index.json")).unwrap())
            .unwrap();
    let mut trust = common::trust_with_test_ca("us-east-1");
    // The other formats' fixtures: the RSA test CA for /signature and China-style /pkcs7, the
    // DSA test CA for /pkcs7.
    let us_east_1 = || ["us-east-1".parse().unwrap()];
    let rsa_ca = fixtures::test_ca().cert_pem;
    let dsa_ca = fixtures::dsa_test_ca().cert_pem;
    trust
        .add_pem(Format::Signature, rsa_ca.as_bytes(), us_east_1())
        .unwrap()
        .add_pem(Format::Pkcs7, rsa_ca.as_bytes(), us_east_1())
        .unwrap()
        .add_pem(Format::Pkcs7, dsa_ca.as_bytes(), us_east_1())
        .unwrap();
    let options = VerifyOptions::default()
        .allow_legacy_dsa_sha1(true)
        .allow_legacy_rsa1024(true);
    let document = fixtures::document();
    assert!(index.len() >= 15);
    for entry in &index {
        let blob = std::fs::read(fixtures::data_path(&format!("gen/{}", entry.file))).unwrap();
        let input = match entry.format.as_str() {
            "rsa2048" => SignedInput::Rsa2048(&blob),
            "pkcs7" => SignedInput::Pkcs7(&blob),
            "signature" => SignedInput::Signature {
                document: &document,
                signature: &blob,
            },
            other => panic!("{}: unknown format {other}", entry.file),
        };
        if entry.format == "rsa2048" {
            // verify_signature is the /rsa2048 entry point and agrees with verify_input.
            let direct =
                parse_signed_data(&blob).and_then(|signed| verify_signature(signed, &trust));
            let general = verify_input(input, &trust, &options);
            assert_eq!(
                direct.as_ref().map(|v| v.content()).map_err(Clone::clone),
                general.as_ref().map(|v| v.content()).map_err(Clone::clone),
                "{}",
                entry.file
            );
        }
        // The legacy formats need their opt-in: without it, every fixture of theirs is refused
        // before it is read, whatever it holds.
        let format: Format = entry.format.parse().unwrap();
        if format != Format::Rsa2048 {
            assert_eq!(
                verify_input(input, &trust, &VerifyOptions::default()).unwrap_err(),
                Error::LegacyAlgorithmRefused { format },
                "{}",
                entry.file
            );
        }
        match (entry.expect.as_str(), verify_input(input, &trust, &options)) {
            ("accept", Ok(verified)) => {
                assert_eq!(verified.content(), document, "{}", entry.file);
                assert_eq!(verified.signer().format.as_str(), entry.format);
                let dsa = verified.signer().format == Format::Pkcs7
                    && entry.file.starts_with("pkcs7")
                    && !entry.file.contains("rsa");
                let serial = if dsa {
                    "D5A1C3B4A5968779"
                } else {
                    "E1D2C3B4A5968778"
                };
                assert_eq!(
                    verified.signer().serial.to_string(),
                    serial,
                    "{}",
                    entry.file
                );
            }
            ("reject", Err(e)) => {
                assert_eq!(Some(variant_name(&e)), entry.error, "{}: {e}", entry.file);
            }
            (expect, result) => panic!("{}: expected {expect}, got {result:?}", entry.file),
        }
    }
}

#[test]
fn region_outside_the_certificates_regions_is_rejected_after_the_signature() {
    let mut trust = TrustStore::empty();
    trust
        .add_pem(
            Format::Rsa2048,
            fixtures::test_ca().cert_pem.as_bytes(),
            ["eu-west-1".parse().unwrap()],
        )
        .unwrap();
    let blob = std::fs::read(fixtures::data_path("gen/rsa2048.b64")).unwrap();
    assert_eq!(
        verify_signature(parse_signed_data(&blob).unwrap(), &trust).unwrap_err(),
        Error::RegionMismatch {
            region: "us-east-1".parse().unwrap(),
            serial: SerialNumber::from_be_bytes(&fixtures::test_ca().serial)
        }
    );
}

#[test]
fn parsed_view_exposes_the_signed_data() {
    let blob = std::fs::read(fixtures::data_path("gen/rsa2048.b64")).unwrap();
    let signed = parse_signed_data(&blob).unwrap();
    let ca = fixtures::test_ca();
    assert_eq!(signed.content(), fixtures::document());
    assert_eq!(signed.signer_serial(), ca.serial);
    assert_eq!(signed.signer_issuer(), ca.issuer_der);
    assert_eq!(
        signed.digest_algorithm().oid_string(),
        fixtures::oid::SHA256
    );
    assert_eq!(
        signed.signature_algorithm().oid_string(),
        fixtures::oid::SHA256_WITH_RSA
    );
    assert_eq!(signed.signature().len(), 256);
    let spec = fixtures::BlobSpec::aws_like(&fixtures::document());
    assert_eq!(signed.signed_attributes().unwrap(), spec.signed_attrs());
    assert_eq!(signed.message_digest().unwrap().len(), 32);
    assert!(signed.signing_time().is_some());
    let (digest, signature) = signed.algorithm_protection().unwrap();
    assert_eq!(digest.oid_string(), fixtures::oid::SHA256);
    assert_eq!(
        signature.unwrap().oid_string(),
        fixtures::oid::SHA256_WITH_RSA
    );
}
