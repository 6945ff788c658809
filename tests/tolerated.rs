//! Shapes the crate accepts on purpose: fields CMS allows that AWS does not send and that carry
//! nothing the verification relies on. Each must verify to exactly the fixture's document.
#![cfg(test)] // clippy.toml says why

use ec2_iid::dangerous::parse_signed_data;
use ec2_iid::internal::verify_signature;
use ec2_iid::{Error, Format, TrustStore, VerifiedDocument};
use ec2_iid_test_support::fixtures::{
    self, BlobSpec, attribute, der_oid, oid, tag, test_ca, tlv, tlv_of,
};

fn verify(blob: &[u8]) -> Result<VerifiedDocument, Error> {
    let mut trust = TrustStore::empty();
    trust
        .add_pem(
            Format::Rsa2048,
            test_ca().cert_pem.as_bytes(),
            ["us-east-1".parse().unwrap()],
        )
        .unwrap();
    verify_signature(parse_signed_data(blob)?, &trust)
}

fn spec() -> BlobSpec {
    BlobSpec::aws_like(&fixtures::document())
}

fn assert_verifies_to_the_fixture(blob: &[u8]) {
    let verified = verify(blob).unwrap();
    assert_eq!(verified.content(), fixtures::document());
    assert_eq!(verified.signer().serial.to_string(), "E1D2C3B4A5968778");
}

/// The SignerInfos SET and the one SignerInfo of the default fixture start with these headers.
const SIGNER_HEADERS: [u8; 8] = [tag::SET, 0x82, 0x02, 0x31, tag::SEQUENCE, 0x82, 0x02, 0x2d];

#[test]
fn crls_are_skipped() {
    // `crls [1]` between the (absent) certificates and the SignerInfos; SignedData has an
    // indefinite length, so nothing else changes.
    let der = spec().build(&test_ca());
    let at = der
        .windows(SIGNER_HEADERS.len())
        .position(|w| w == SIGNER_HEADERS)
        .unwrap();
    let crls = tlv(tag::CTX1, &tlv(tag::SEQUENCE, &[]));
    assert_verifies_to_the_fixture(&[&der[..at], &crls, &der[at..]].concat());
    // And after certificates.
    let with_cert = BlobSpec {
        embedded_certs: vec![fixtures::attacker_cert(&test_ca())],
        ..spec()
    }
    .build(&test_ca());
    let at = with_cert
        .windows(SIGNER_HEADERS.len())
        .position(|w| w == SIGNER_HEADERS)
        .unwrap();
    assert_verifies_to_the_fixture(&[&with_cert[..at], &crls, &with_cert[at..]].concat());
}

#[test]
fn unsigned_attributes_are_skipped() {
    // `unsignedAttrs [1]` after the signature: the SignerInfo and the SET grow by its length.
    let der = spec().build(&test_ca());
    let unsigned = tlv(
        tag::CTX1,
        &attribute(&der_oid("1.2.840.113549.1.9.6"), &tlv(tag::SEQUENCE, &[])),
    );
    let grow = u8::try_from(unsigned.len()).unwrap();
    let mut headers = SIGNER_HEADERS;
    headers[3] += grow;
    headers[7] += grow;
    let blob = fixtures::replace_once(&der, &SIGNER_HEADERS, &headers);
    // The SignerInfo ends where the three end-of-contents of SignedData, [0] and ContentInfo
    // begin.
    let end = blob.len() - 6;
    assert_eq!(&blob[end..], [0; 6]);
    assert_verifies_to_the_fixture(&[&blob[..end], &unsigned, &blob[end..]].concat());
}

#[test]
fn algorithm_protection_with_a_mac_algorithm_field() {
    // RFC 6211 allows `macAlgorithm [2]` (for authenticated data); a signer naming the right
    // digest and signature algorithms is not refused for it.
    let implicit = |tag_byte: u8, oid_text: &str| {
        let mut alg = fixtures::algorithm_identifier(&der_oid(oid_text), true);
        alg[0] = tag_byte;
        alg
    };
    let protection = tlv_of(
        tag::SEQUENCE,
        &[
            &fixtures::algorithm_identifier(&der_oid(oid::SHA256), true),
            &implicit(tag::CTX1, oid::SHA256_WITH_RSA),
            &implicit(0xA2, "1.2.840.113549.2.9"),
        ],
    );
    let blob = BlobSpec {
        algorithm_protection_override: Some(protection),
        ..spec()
    }
    .build(&test_ca());
    assert_verifies_to_the_fixture(&blob);
}

#[test]
fn unknown_signed_attribute_with_a_multi_byte_arc() {
    // Arc 16384 encodes as `81 80 00`: a 0x80 byte inside an arc is not padding.
    let oid_bytes = der_oid("1.3.6.1.4.1.16384");
    assert!(oid_bytes.ends_with(&[0x81, 0x80, 0x00]));
    let blob = BlobSpec {
        extra_attrs: vec![attribute(&oid_bytes, &tlv(tag::OCTET_STRING, b"x"))],
        ..spec()
    }
    .build(&test_ca());
    assert_verifies_to_the_fixture(&blob);
}

#[test]
fn every_signed_data_version_cms_defines() {
    // CMS SignedData versions are 1, 3, 4 and 5 (2 is unused but harmless); AWS writes 1.
    let der = spec().build(&test_ca());
    let version = [tag::INTEGER, 0x01, 0x01, tag::SET];
    for v in 1..=5 {
        let blob = fixtures::replace_once(&der, &version, &[tag::INTEGER, 0x01, v, tag::SET]);
        assert_verifies_to_the_fixture(&blob);
    }
}
