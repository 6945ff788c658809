//! Structurally hostile blobs and documents: each case is rejected with one exact error.
//!
//! The blobs come from the fixture generator (`test-support/src/fixtures.rs`), signed by the
//! test CA unless a case is about the signature, so that each one gets past every check but the one
//! it targets.
#![cfg(test)] // clippy.toml says why

use std::time::Instant;

use base64::Engine as _;
use ec2_iid::dangerous::parse_signed_data;
use ec2_iid::internal::{MAX_ELEMENTS, MAX_INDEFINITE_DEPTH, verify_signature};
use ec2_iid::{Error, Format, MAX_BLOB_LEN, Malformed, TrustStore, VerifiedDocument};
use ec2_iid_test_support::fixtures::{
    self, BlobSpec, attribute, der_oid, imds_base64, oid, position, tag, test_ca, tlv,
};

fn trust() -> TrustStore {
    let mut store = TrustStore::empty();
    store
        .add_pem(
            Format::Rsa2048,
            test_ca().cert_pem.as_bytes(),
            ["us-east-1".parse().unwrap()],
        )
        .unwrap();
    store
}

fn verify(blob: &[u8]) -> Result<VerifiedDocument, Error> {
    verify_signature(parse_signed_data(blob)?, &trust())
}

fn spec() -> BlobSpec {
    BlobSpec::aws_like(&fixtures::document())
}

fn build(spec: &BlobSpec) -> Vec<u8> {
    spec.build(&test_ca())
}

/// The default fixture blob, binary.
fn fixture() -> Vec<u8> {
    build(&spec())
}

fn malformed(offset: usize, reason: Malformed) -> Error {
    Error::Malformed { offset, reason }
}

/// The document text with one replacement.
fn document_with(from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(fixtures::document()).unwrap();
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1).into_bytes()
}

/// Signs `content` as the test CA would and verifies it.
fn verify_signed_content(content: &[u8]) -> Result<VerifiedDocument, Error> {
    verify(&build(&BlobSpec::aws_like(content)))
}

fn invalid_document_reason(result: Result<VerifiedDocument, Error>) -> String {
    match result {
        Err(Error::InvalidDocument { reason }) => reason,
        other => panic!("expected InvalidDocument, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------------
// Lengths and nesting
// ------------------------------------------------------------------------------------------------

#[test]
fn outer_length_claiming_four_gigabytes() {
    let mut blob = vec![tag::SEQUENCE, 0x84, 0xff, 0xff, 0xff, 0xff];
    blob.extend(std::iter::repeat_n(0u8, 100));
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(0, Malformed::BadLength)
    );
    // The same as IMDS-style base64 text.
    assert_eq!(
        verify(imds_base64(&blob).as_bytes()).unwrap_err(),
        malformed(0, Malformed::BadLength)
    );
}

#[test]
fn lengths_of_more_than_four_bytes_are_refused() {
    // 8 length bytes (a 64-bit length) and the reserved 0xFF.
    for first in [0x88, 0x85, 0xff] {
        let mut blob = vec![tag::SEQUENCE, first];
        blob.extend([0u8; 8]);
        assert_eq!(
            verify(&blob).unwrap_err(),
            malformed(0, Malformed::BadLength),
            "{first:#x}"
        );
    }
}

#[test]
fn inner_length_claiming_gigabytes() {
    // The eContent chunk `04 82 01 d9` claims 2 GiB instead; the indefinite wrappers around it
    // have no lengths to fix up.
    let der = fixture();
    let content_len = u16::try_from(fixtures::document().len()).unwrap();
    let mut header = vec![tag::OCTET_STRING, 0x82];
    header.extend(content_len.to_be_bytes());
    let at = position(&der, &header);
    let mut blob = der[..at].to_vec();
    blob.extend([tag::OCTET_STRING, 0x84, 0x7f, 0xff, 0xff, 0xff]);
    blob.extend(&der[at + header.len()..]);
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(at, Malformed::BadLength)
    );
}

#[test]
fn signer_infos_length_claiming_gigabytes() {
    // The definite SET OF SignerInfo claims 4 GiB - 1 bytes.
    let der = fixture();
    let at = position(&der, &[tag::SET, 0x82, 0x02, 0x31, tag::SEQUENCE]);
    let mut blob = der[..at].to_vec();
    blob.extend([tag::SET, 0x84, 0xff, 0xff, 0xff, 0xff]);
    blob.extend(&der[at + 4..]);
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(at, Malformed::BadLength)
    );
}

#[test]
fn deep_nesting_is_refused_at_the_bound() {
    // 20 000 nested indefinite SEQUENCEs: 40 KB of input, within MAX_BLOB_LEN. The bound on
    // indefinite nesting trips after MAX_INDEFINITE_DEPTH levels, at the next header.
    let blob: Vec<u8> = [tag::SEQUENCE, 0x80].repeat(20_000);
    assert!(blob.len() <= MAX_BLOB_LEN);
    let started = Instant::now();
    let at = 2 * MAX_INDEFINITE_DEPTH;
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(at, Malformed::IndefiniteNestingTooDeep)
    );
    // The same as base64 text (offsets count decoded bytes).
    let text = imds_base64(&blob);
    assert!(text.len() <= MAX_BLOB_LEN);
    assert_eq!(
        verify(text.as_bytes()).unwrap_err(),
        malformed(at, Malformed::IndefiniteNestingTooDeep)
    );
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}

/// 1000 nested definite-length SEQUENCEs around a NULL.
fn deep_definite() -> Vec<u8> {
    let mut deep = vec![tag::NULL, 0x00];
    for _ in 0..1000 {
        deep = tlv(tag::SEQUENCE, &deep);
    }
    deep
}

#[test]
fn deep_definite_nesting_is_not_walked() {
    // A definite length is skipped without looking inside: the parser descends only into the
    // fields it reads. At the top, the first child is not the contentType OID.
    let inner = deep_definite();
    let blob = tlv(tag::SEQUENCE, &inner);
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(
            blob.len() - inner.len(),
            Malformed::UnexpectedTag {
                expected: tag::OID,
                found: tag::SEQUENCE
            }
        )
    );
    // In the (never trusted, never parsed) certificates field it is ignored.
    let blob = build(&BlobSpec {
        embedded_certs: vec![deep_definite()],
        ..spec()
    });
    assert_eq!(verify(&blob).unwrap().content(), fixtures::document());
}

/// The fixture with the eContent OCTET STRING wrapped in `levels` more constructed,
/// indefinite-length OCTET STRINGs.
fn nested_econtent(levels: usize) -> (Vec<u8>, usize) {
    let der = fixture();
    let start = position(&der, &[0xA0, 0x80, tag::OCTET_STRING_CONSTRUCTED, 0x80]) + 2;
    // The constructed OCTET STRING ends with the first EOC after the content.
    let content = fixtures::document();
    let end = position(&der, &content) + content.len() + 2;
    let mut blob = der[..start].to_vec();
    blob.extend([tag::OCTET_STRING_CONSTRUCTED, 0x80].repeat(levels));
    blob.extend(&der[start..end]);
    blob.extend([0x00, 0x00].repeat(levels));
    blob.extend(&der[end..]);
    (blob, start)
}

#[test]
fn nested_constructed_octet_strings_within_the_bound_are_joined() {
    // Five indefinite levels around the eContent's own OCTET STRING (AWS's six with it), four
    // more: MAX_INDEFINITE_DEPTH.
    let (blob, _) = nested_econtent(MAX_INDEFINITE_DEPTH - 6);
    let verified = verify(&blob).unwrap();
    assert_eq!(verified.content(), fixtures::document());
}

#[test]
fn deeply_nested_constructed_octet_strings_are_refused() {
    // eContent's OCTET STRING sits inside five indefinite levels (ContentInfo, [0],
    // SignedData, encap, [0]); the first past the bound is the fifth added level.
    let (blob, start) = nested_econtent(40);
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(start + 2 * 5, Malformed::IndefiniteNestingTooDeep)
    );
}

// ------------------------------------------------------------------------------------------------
// SignerInfos and signed attributes
// ------------------------------------------------------------------------------------------------

#[test]
fn zero_signer_infos() {
    let blob = build(&BlobSpec {
        signer_count: 0,
        ..spec()
    });
    assert_eq!(verify(&blob).unwrap_err(), Error::SignerCount { count: 0 });
}

#[test]
fn two_identical_signer_infos() {
    let blob = build(&BlobSpec {
        signer_count: 2,
        ..spec()
    });
    assert_eq!(verify(&blob).unwrap_err(), Error::SignerCount { count: 2 });
}

#[test]
fn many_signer_infos_stop_counting_at_eight() {
    let blob = build(&BlobSpec {
        signer_count: 40,
        ..spec()
    });
    assert!(blob.len() < MAX_BLOB_LEN);
    assert_eq!(verify(&blob).unwrap_err(), Error::SignerCount { count: 8 });
}

/// An attribute with an unknown OID (1.3.6.1.4.1.99999.<n>) and one OCTET STRING value.
fn unknown_attribute(n: u32) -> Vec<u8> {
    attribute(
        &der_oid(&format!("1.3.6.1.4.1.99999.{n}")),
        &tlv(tag::OCTET_STRING, b"x"),
    )
}

#[test]
fn many_distinct_unknown_signed_attributes_are_tolerated() {
    // Unknown attributes are signed, so they are harmless; 200 of them (800 elements, within
    // MAX_ELEMENTS) cost nothing special.
    let blob = build(&BlobSpec {
        extra_attrs: (0..200).map(unknown_attribute).collect(),
        ..spec()
    });
    let started = Instant::now();
    let verified = verify(&blob).unwrap();
    assert_eq!(verified.content(), fixtures::document());
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}

#[test]
fn duplicate_unknown_signed_attribute() {
    let blob = build(&BlobSpec {
        extra_attrs: vec![unknown_attribute(7), unknown_attribute(7)],
        ..spec()
    });
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::DuplicateAttribute {
            oid: "1.3.6.1.4.1.99999.7".into()
        }
    );
}

#[test]
fn two_message_digest_attributes() {
    // A second messageDigest with another digest: a verifier reading "the first" or "the last"
    // could be steered to the content of its choice.
    let other = attribute(
        &der_oid(oid::MESSAGE_DIGEST),
        &tlv(tag::OCTET_STRING, &[0xAB; 32]),
    );
    let blob = build(&BlobSpec {
        extra_attrs: vec![other],
        ..spec()
    });
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::DuplicateAttribute {
            oid: oid::MESSAGE_DIGEST.into()
        }
    );
}

#[test]
fn two_content_type_signing_time_and_protection_attributes() {
    let base = spec();
    let attrs = base.attributes();
    // attributes() is DER-sorted: contentType, signingTime, CMSAlgorithmProtection, messageDigest.
    for (copy, name) in [
        (&attrs[0], oid::CONTENT_TYPE),
        (&attrs[1], oid::SIGNING_TIME),
        (&attrs[2], oid::ALGORITHM_PROTECTION),
    ] {
        let blob = build(&BlobSpec {
            extra_attrs: vec![copy.clone()],
            ..spec()
        });
        assert_eq!(
            verify(&blob).unwrap_err(),
            Error::DuplicateAttribute { oid: name.into() },
            "{name}"
        );
    }
}

#[test]
fn message_digest_attribute_with_two_values() {
    let digest = tlv(tag::OCTET_STRING, &[0xAB; 32]);
    let two_values = tlv_seq_attr(oid::MESSAGE_DIGEST, &[&digest, &digest]);
    let blob = build(&BlobSpec {
        omit_message_digest_attr: true,
        extra_attrs: vec![two_values.clone()],
        ..spec()
    });
    let set_at = position(&blob, &two_values) + 2 + 11;
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(set_at, Malformed::InvalidValue("attribute value count"))
    );
}

/// `SEQUENCE { oid, SET { values.. } }` for a short dotted OID (the OID TLV is 11 bytes).
fn tlv_seq_attr(dotted: &str, values: &[&[u8]]) -> Vec<u8> {
    let oid = fixtures::oid_tlv(&der_oid(dotted));
    assert_eq!(oid.len(), 11);
    fixtures::tlv_of(tag::SEQUENCE, &[&oid, &fixtures::tlv_of(tag::SET, values)])
}

#[test]
fn attribute_with_no_value() {
    let empty = tlv_seq_attr(oid::SIGNING_TIME, &[]);
    let blob = build(&BlobSpec {
        signing_time: None,
        extra_attrs: vec![empty.clone()],
        ..spec()
    });
    // The empty SET's reader runs out where the SET's (empty) value starts.
    let value_at = position(&blob, &empty) + 2 + 11 + 2;
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(value_at, Malformed::Truncated)
    );
}

// ------------------------------------------------------------------------------------------------
// Content and algorithms
// ------------------------------------------------------------------------------------------------

#[test]
fn missing_econtent() {
    let blob = build(&BlobSpec {
        omit_econtent: true,
        ..spec()
    });
    assert_eq!(verify(&blob).unwrap_err(), Error::MissingContent);
}

#[test]
fn econtent_type_not_data() {
    // id-ct-TSTInfo: a timestamp token's content type.
    let blob = build(&BlobSpec {
        econtent_type: der_oid("1.2.840.113549.1.9.16.1.4"),
        ..spec()
    });
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::UnexpectedContentType {
            oid: "1.2.840.113549.1.9.16.1.4".into()
        }
    );
}

#[test]
fn outer_content_type_not_signed_data() {
    let blob = build(&BlobSpec {
        outer_content_type: der_oid(oid::DATA),
        ..spec()
    });
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::UnexpectedContentType {
            oid: oid::DATA.into()
        }
    );
}

#[test]
fn unknown_digest_algorithm() {
    // MD5; CMSAlgorithmProtection names it too, so only the algorithm check can object.
    let md5 = "1.2.840.113549.2.5";
    let blob = build(&BlobSpec {
        digest_oid: der_oid(md5),
        ..spec()
    });
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::UnsupportedDigestAlgorithm { oid: md5.into() }
    );
}

#[test]
fn unknown_signature_algorithm() {
    let ecdsa_with_sha256 = "1.2.840.10045.4.3.2";
    let blob = build(&BlobSpec {
        signature_oid: der_oid(ecdsa_with_sha256),
        ..spec()
    });
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::UnsupportedSignatureAlgorithm {
            oid: ecdsa_with_sha256.into()
        }
    );
}

#[test]
fn signature_of_the_wrong_length() {
    let valid = spec().signature(&test_ca());
    assert_eq!(valid.len(), 256);
    let with_leading_zero = [&[0u8][..], &valid].concat();
    let with_trailing_zero = [&valid[..], &[0u8]].concat();
    for signature in [
        Vec::new(),
        vec![0u8],
        valid[..255].to_vec(),
        valid[1..].to_vec(),
        with_leading_zero,
        with_trailing_zero,
        valid.repeat(2),
    ] {
        let len = signature.len();
        let blob = build(&BlobSpec {
            signature_override: Some(signature),
            ..spec()
        });
        assert_eq!(verify(&blob).unwrap_err(), Error::InvalidSignature, "{len}");
    }
}

#[test]
fn serial_matching_no_certificate() {
    let unknown = |blob: &[u8], trust: &TrustStore| match verify_signature(
        parse_signed_data(blob).unwrap(),
        trust,
    ) {
        Err(Error::UnknownSigner {
            serial,
            issuer,
            known_issuer,
            known_serial,
        }) => (serial, issuer, known_issuer, known_serial),
        other => panic!("{other:?}"),
    };
    // The test CA's issuer with a serial it never issued: a new certificate, most likely.
    let blob = build(&BlobSpec {
        serial_override: Some(vec![0x01, 0x02, 0x03]),
        ..spec()
    });
    let (serial, issuer, known_issuer, known_serial) = unknown(&blob, &trust());
    assert_eq!(serial.to_string(), "010203");
    assert!(issuer.starts_with("C=US, ST=Washington State"), "{issuer}");
    assert!(issuer.chars().count() <= 65, "bounded: {issuer}");
    assert!((known_issuer, known_serial) == (true, false));
    let hint = verify(&blob).unwrap_err().hint().unwrap();
    assert!(
        hint.contains("TrustStore::add_pem") && hint.contains(&issuer),
        "{hint}"
    );
    // The right serial under a store that does not trust the test CA: printed one way (no
    // leading zero byte), and the issuer is unknown there.
    let (serial, _, known_issuer, known_serial) = unknown(&fixture(), &TrustStore::aws());
    assert_eq!(serial.to_string(), "E1D2C3B4A5968778");
    assert!((known_issuer, known_serial) == (false, false));
    // An attacker's 40 KB serial is cut, not echoed.
    let blob = build(&BlobSpec {
        serial_override: Some(vec![0x7f; 40_000]),
        ..spec()
    });
    let message = verify(&blob).unwrap_err().to_string();
    assert!(message.len() < 200, "{} bytes", message.len());
    assert!(
        message.contains(&format!("{}…", "7F".repeat(20))),
        "{message}"
    );
}

#[test]
fn serial_with_extra_leading_zeros_still_names_the_signer() {
    // Only a lookup key: a non-minimal INTEGER finds the same certificate, whose key must then
    // verify the signature anyway.
    let mut serial = vec![0x00, 0x00];
    serial.extend(&test_ca().serial);
    let blob = build(&BlobSpec {
        serial_override: Some(serial),
        ..spec()
    });
    assert_eq!(
        verify(&blob).unwrap().signer().serial.to_string(),
        "E1D2C3B4A5968778"
    );
}

#[test]
fn signed_data_and_signer_info_versions() {
    let der = fixture();
    // SignedData version 1 -> 0 and 6; SignerInfo version 1 -> 3 (subjectKeyIdentifier).
    let signed_data_version = [tag::INTEGER, 0x01, 0x01, tag::SET];
    let at = position(&der, &signed_data_version);
    for bad in [0x00, 0x06] {
        let blob = fixtures::replace_once(
            &der,
            &signed_data_version,
            &[tag::INTEGER, 0x01, bad, tag::SET],
        );
        assert_eq!(
            verify(&blob).unwrap_err(),
            malformed(at, Malformed::InvalidValue("version"))
        );
    }
    let signer_version = [tag::INTEGER, 0x01, 0x01, tag::SEQUENCE];
    let at = position(&der, &signer_version);
    let blob = fixtures::replace_once(
        &der,
        &signer_version,
        &[tag::INTEGER, 0x01, 0x03, tag::SEQUENCE],
    );
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(at, Malformed::InvalidValue("SignerInfo version"))
    );
}

// ------------------------------------------------------------------------------------------------
// The signed JSON
// ------------------------------------------------------------------------------------------------

#[test]
fn json_with_duplicate_keys() {
    // serde would keep the last value; a map-based parser the first. Both must be refused.
    let content = document_with(
        "\"accountId\" : \"123456789012\",",
        "\"accountId\" : \"123456789012\", \"accountId\" : \"210987654321\",",
    );
    let reason = invalid_document_reason(verify_signed_content(&content));
    assert!(
        reason.starts_with("duplicate field `accountId`"),
        "{reason}"
    );
}

#[test]
fn json_with_wrong_types() {
    for (from, to) in [
        ("\"123456789012\"", "123456789012"),
        ("\"t3.micro\"", "[\"t3.micro\"]"),
        ("\"billingProducts\" : null", "\"billingProducts\" : \"x\""),
        ("\"region\" : \"us-east-1\"", "\"region\" : null"),
    ] {
        let reason = invalid_document_reason(verify_signed_content(&document_with(from, to)));
        assert!(reason.starts_with("invalid type"), "{to}: {reason}");
    }
    let reason = invalid_document_reason(verify_signed_content(b"\"a string\""));
    assert!(reason.starts_with("invalid type: string"), "{reason}");
}

#[test]
fn thirteen_digit_account() {
    let content = document_with("\"123456789012\"", "\"1234567890123\"");
    let reason = invalid_document_reason(verify_signed_content(&content));
    assert!(reason.starts_with("invalid account id"), "{reason}");
}

#[test]
fn pending_time_not_utc_or_out_of_range() {
    for bad in [
        "2026-11-01T14:00:00+02:00",
        "2026-11-01T12:00:00",
        "2026-11-01 12:00:00Z",
        "2026-11-01T12:00:00z",
        "2026-13-01T12:00:00Z",
        "2026-02-30T12:00:00Z",
        "2026-11-01T24:00:00Z",
        "+10000-01-01T00:00:00Z",
        "1762000000",
    ] {
        let content = document_with("\"2026-11-01T12:00:00Z\"", &format!("\"{bad}\""));
        let reason = invalid_document_reason(verify_signed_content(&content));
        assert!(
            reason.starts_with("pendingTime is not an RFC 3339 UTC time"),
            "{bad}: {reason}"
        );
    }
}

#[test]
fn ten_megabyte_document() {
    // Padding inside the JSON keeps it a valid document.
    let padded = document_with("{", &format!("{{{}", " ".repeat(10 << 20)));
    assert_eq!(
        ec2_iid::dangerous::parse_unverified_document(&padded)
            .unwrap()
            .account_id
            .as_str(),
        "123456789012",
        "the unverified parser has no size bound of its own"
    );
    let der = build(&BlobSpec::aws_like(&padded));
    assert_eq!(
        verify(&der).unwrap_err(),
        Error::InputTooLarge {
            len: der.len(),
            max: MAX_BLOB_LEN
        }
    );
    let text = imds_base64(&der);
    assert_eq!(
        verify(text.as_bytes()).unwrap_err(),
        Error::InputTooLarge {
            len: text.len(),
            max: MAX_BLOB_LEN
        }
    );
}

#[test]
fn blob_of_exactly_max_blob_len_is_accepted() {
    let base = fixture().len();
    let padded = document_with("{", &format!("{{{}", " ".repeat(MAX_BLOB_LEN - base)));
    let der = build(&BlobSpec::aws_like(&padded));
    // The OCTET STRING and SET lengths grow by a byte or two; trim the padding to fit exactly.
    let over = der.len() - MAX_BLOB_LEN;
    let padded = document_with(
        "{",
        &format!("{{{}", " ".repeat(MAX_BLOB_LEN - base - over)),
    );
    let der = build(&BlobSpec::aws_like(&padded));
    assert_eq!(der.len(), MAX_BLOB_LEN);
    assert_eq!(verify(&der).unwrap().content(), padded);
    let one_more = [der.as_slice(), b"\0"].concat();
    assert_eq!(
        verify(&one_more).unwrap_err(),
        Error::InputTooLarge {
            len: MAX_BLOB_LEN + 1,
            max: MAX_BLOB_LEN
        }
    );
}

// ------------------------------------------------------------------------------------------------
// Text forms
// ------------------------------------------------------------------------------------------------

/// IMDS-style text of 8 KB, far longer than AWS's, decodes the same way, with `\n` and with
/// `\r\n` line ends.
#[test]
fn long_imds_text_decodes_like_a_short_one() {
    let padded = document_with("{", &format!("{{{}", " ".repeat(6000)));
    let der = build(&BlobSpec::aws_like(&padded));
    let text = imds_base64(&der);
    assert!(text.len() > 8000);
    assert_eq!(verify(text.as_bytes()).unwrap().content(), padded);
    let crlf = text.replace('\n', "\r\n");
    assert_eq!(verify(crlf.as_bytes()).unwrap().content(), padded);
}

#[test]
fn base64_with_invalid_characters() {
    let text = imds_base64(&fixture());
    let middle = text.len() / 2;
    for bad in [
        &b"*"[..],
        b"-",
        b"_",
        b"\x00",
        b"\x0b",
        b"\xc3\xa9",
        b"=",
        b"==",
        b"A",
        b"%3D",
    ] {
        let mut blob = text.as_bytes()[..middle].to_vec();
        blob.extend_from_slice(bad);
        blob.extend_from_slice(&text.as_bytes()[middle..]);
        assert_eq!(verify(&blob).unwrap_err(), Error::Base64, "{bad:?}");
    }
    // URL-safe alphabet, missing padding, armour without its end line.
    let url_safe = base64::engine::general_purpose::URL_SAFE.encode(fixture());
    assert_ne!(url_safe, text.replace('\n', ""));
    assert_eq!(verify(url_safe.as_bytes()).unwrap_err(), Error::Base64);
    let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(fixture());
    assert!(!unpadded.ends_with('='));
    assert_eq!(verify(unpadded.as_bytes()).unwrap_err(), Error::Base64);
    let armour = format!("-----BEGIN PKCS7-----\n{text}\n");
    assert_eq!(verify(armour.as_bytes()).unwrap_err(), Error::Base64);
}

#[test]
fn whitespace_only_and_empty_input() {
    for blob in [
        &b""[..],
        b" ",
        b"\r\n\t",
        b"-----BEGIN PKCS7-----\n-----END PKCS7-----",
    ] {
        assert_eq!(
            verify(blob).unwrap_err(),
            malformed(0, Malformed::Empty),
            "{blob:?}"
        );
    }
}

#[test]
fn trailing_bytes_after_the_blob() {
    let der = fixture();
    for extra in [&b"\0"[..], b"\0\0", b"\n", &der] {
        let blob = [der.as_slice(), extra].concat();
        assert_eq!(
            verify(&blob).unwrap_err(),
            Error::TrailingData { len: extra.len() }
        );
    }
    // Text: the decoded bytes carry the trailer; trailing whitespace in the text is fine.
    let text = imds_base64(&[der.as_slice(), b"\0\0\0\0"].concat());
    assert_eq!(
        verify(text.as_bytes()).unwrap_err(),
        Error::TrailingData { len: 4 }
    );
    let text = format!("{}\n\n  \r\n", imds_base64(&der));
    assert!(verify(text.as_bytes()).is_ok());
}

/// `count` tiny distinct signed attributes (2-byte OIDs, NULL values): 10 bytes each.
fn tiny_attributes(count: u16) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| {
            let [high, low] = n.to_be_bytes();
            let oid = [0x81 + (high << 1 | low >> 7), low & 0x7f];
            attribute(&oid, &[tag::NULL, 0x00])
        })
        .collect()
}

#[test]
fn signed_attributes_past_the_element_budget_are_refused() {
    // Before the duplicate check sorted, 6 400 attributes in 64 KiB took 76 ms in release
    // builds (1 us for an AWS blob). Each attribute is 4 elements (SEQUENCE, OID, SET, NULL):
    // now a blob holds at most about MAX_ELEMENTS / 4 of them, and 6 400 are refused when the
    // budget runs out, long before the duplicate check.
    let within = (MAX_ELEMENTS - 100) / 4;
    let blob = build(&BlobSpec {
        extra_attrs: tiny_attributes(u16::try_from(within).unwrap()),
        ..spec()
    });
    assert_eq!(verify(&blob).unwrap().content(), fixtures::document());
    let large = build(&BlobSpec {
        extra_attrs: tiny_attributes(6_400),
        ..spec()
    });
    assert!(large.len() <= MAX_BLOB_LEN, "{}", large.len());
    assert!(matches!(
        parse_signed_data(&large),
        Err(Error::Malformed {
            reason: Malformed::TooManyElements,
            ..
        })
    ));
}

// ------------------------------------------------------------------------------------------------
// Encoding details
// ------------------------------------------------------------------------------------------------

/// The fixture with its eContent OCTET STRING (`24 80 04 82 01 d9 <content> 00 00`) replaced
/// by `econtent`; returns the blob and where `econtent` starts. The wrappers around it have
/// indefinite lengths, so nothing else changes.
fn with_econtent(econtent: &[u8]) -> (Vec<u8>, usize) {
    let der = fixture();
    let start = position(&der, &[0xA0, 0x80, tag::OCTET_STRING_CONSTRUCTED, 0x80]) + 2;
    let content = fixtures::document();
    let end = position(&der, &content) + content.len() + 2;
    let blob = [&der[..start], econtent, &der[end..]].concat();
    (blob, start)
}

#[test]
fn deep_definite_constructed_octet_strings_are_refused() {
    // Definite lengths are not walked ahead, so the depth bound must also hold while the
    // segments are joined: 1 000 levels would otherwise recurse 1 000 deep.
    let mut econtent = tlv(tag::OCTET_STRING, &fixtures::document());
    for _ in 0..1_000 {
        econtent = tlv(tag::OCTET_STRING_CONSTRUCTED, &econtent);
    }
    let (blob, start) = with_econtent(&econtent);
    // Every level's header is `24 82 xx xx`; the 21st level (index 20) sits at depth 25.
    assert_eq!(&econtent[..2], [tag::OCTET_STRING_CONSTRUCTED, 0x82]);
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(start + 4 * 20, Malformed::NestingTooDeep)
    );
    // Within the bound, definite nesting is joined like indefinite nesting.
    let mut econtent = tlv(tag::OCTET_STRING, &fixtures::document());
    for _ in 0..10 {
        econtent = tlv(tag::OCTET_STRING_CONSTRUCTED, &econtent);
    }
    let (blob, _) = with_econtent(&econtent);
    assert_eq!(verify(&blob).unwrap().content(), fixtures::document());
}

#[test]
fn econtent_that_is_not_an_octet_string() {
    // A SEQUENCE of OCTET STRINGs has the right segments under the wrong tag.
    let econtent = tlv(
        tag::SEQUENCE,
        &tlv(tag::OCTET_STRING, &fixtures::document()),
    );
    let (blob, start) = with_econtent(&econtent);
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(
            start,
            Malformed::UnexpectedTag {
                expected: tag::OCTET_STRING,
                found: tag::SEQUENCE
            }
        )
    );
}

#[test]
fn extra_element_in_a_structure() {
    // digestAlgorithms' AlgorithmIdentifier gets a second NULL: `SEQUENCE { oid, NULL, NULL }`.
    // That SET is not signed, so only the structure check can object.
    let der = fixture();
    let sha256 = fixtures::oid_tlv(&der_oid(oid::SHA256));
    let set = fixtures::tlv_of(
        tag::SET,
        &[&fixtures::tlv_of(
            tag::SEQUENCE,
            &[&sha256, &[tag::NULL, 0x00]],
        )],
    );
    let at = position(&der, &set);
    let bad = fixtures::tlv_of(
        tag::SET,
        &[&fixtures::tlv_of(
            tag::SEQUENCE,
            &[&sha256, &[tag::NULL, 0x00, tag::NULL, 0x00]],
        )],
    );
    let blob = [&der[..at], bad.as_slice(), &der[at + set.len()..]].concat();
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(
            at + 4 + sha256.len() + 2,
            Malformed::InvalidValue("extra element in structure")
        )
    );
}

#[test]
fn end_of_contents_with_a_length() {
    // The EOC closing the eContent OCTET STRING becomes `00 01 00`: a zero tag with a length.
    let content = fixtures::document();
    let econtent = [
        &[tag::OCTET_STRING_CONSTRUCTED, 0x80][..],
        &tlv(tag::OCTET_STRING, &content),
        &[0x00, 0x01, 0x00],
    ]
    .concat();
    let (blob, start) = with_econtent(&econtent);
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(
            econtent.len() - 3 + start,
            Malformed::InvalidValue("end-of-contents")
        )
    );
}

#[test]
fn indefinite_length_without_end_of_contents() {
    // SEQUENCE (indefinite) { OID 1.2 } and then the input ends, where the EOC should be.
    let blob = [tag::SEQUENCE, 0x80, tag::OID, 0x01, 0x2a];
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(5, Malformed::Truncated)
    );
    // The same one level down: the error names the offset in the whole input.
    let blob = [tag::SEQUENCE, 0x80, tag::SEQUENCE, 0x80, tag::NULL, 0x00];
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(6, Malformed::Truncated)
    );
}

#[test]
fn oid_with_a_padded_arc() {
    // id-signedData with its arc 7 written as `80 07`: the same number, not the same bytes.
    // Refused as malformed rather than decoded and compared.
    let der = fixture();
    let signed_data = fixtures::oid_tlv(&der_oid(oid::SIGNED_DATA));
    let mut padded = der_oid(oid::SIGNED_DATA);
    padded.insert(padded.len() - 2, 0x80);
    let blob = [
        &der[..2],
        &fixtures::oid_tlv(&padded),
        &der[2 + signed_data.len()..],
    ]
    .concat();
    assert_eq!(
        verify(&blob).unwrap_err(),
        malformed(2, Malformed::InvalidValue("OBJECT IDENTIFIER"))
    );
}

#[test]
fn algorithm_parameters_other_than_null() {
    // The SignerInfo's digest and signature AlgorithmIdentifiers with an empty OCTET STRING
    // (`04 00`) where NULL (`05 00`) belongs: same length, so nothing else moves.
    let der = fixture();
    let serial_end = position(&der, &test_ca().serial) + test_ca().serial.len();
    let digest = fixtures::algorithm_identifier(&der_oid(oid::SHA256), true);
    assert_eq!(der[serial_end..serial_end + digest.len()], digest);
    let mut blob = der.clone();
    blob[serial_end + digest.len() - 2] = tag::OCTET_STRING;
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::UnsupportedDigestAlgorithm {
            oid: oid::SHA256.into()
        }
    );
    let signature = fixtures::algorithm_identifier(&der_oid(oid::SHA256_WITH_RSA), true);
    let at = position(&der, &signature);
    let mut blob = der;
    blob[at + signature.len() - 2] = tag::OCTET_STRING;
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::UnsupportedSignatureAlgorithm {
            oid: oid::SHA256_WITH_RSA.into()
        }
    );
}

// ------------------------------------------------------------------------------------------------
// Parse cost (the crafted blobs of `test-support/src/hostile.rs`, timed by `verify/hostile_worst`)
// ------------------------------------------------------------------------------------------------

#[test]
fn committed_hostile_blobs_match_the_generator() {
    let dir = fixtures::data_path("hostile");
    let regenerate = std::env::var("EC2_IID_REGENERATE").is_ok_and(|v| v == "1");
    let engine = base64::engine::general_purpose::STANDARD;
    let mut stale = Vec::new();
    for (name, blob) in ec2_iid_test_support::hostile::hostile_blobs() {
        assert!(blob.len() <= MAX_BLOB_LEN, "{name}: {}", blob.len());
        let path = dir.join(format!("{name}.b64"));
        let text = format!("{}\n", engine.encode(&blob));
        if regenerate {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "crafted blobs differ from the generator: {stale:?}; \
         run `EC2_IID_REGENERATE=1 cargo test --test hostile committed_hostile` and review"
    );
}

/// The committed copy of a crafted blob, decoded.
fn hostile(name: &str) -> Vec<u8> {
    let text =
        std::fs::read_to_string(fixtures::data_path(&format!("hostile/{name}.b64"))).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(text.trim_end())
        .unwrap()
}

#[test]
fn crafted_blobs_are_refused_at_a_bound_or_verify() {
    // Before the bounds, these cost 17x (flat-definite-segments) to 150x (nested-indefinite)
    // the time of the fixture in release builds; each bound now trips within a few hundred
    // bytes or MAX_ELEMENTS headers (`verify/hostile_worst` times them; benches/README.md).
    let refused = |name: &str, offset: usize, reason: Malformed| {
        assert_eq!(
            verify(&hostile(name)).unwrap_err(),
            malformed(offset, reason),
            "{name}"
        );
    };
    // The 11th indefinite level: five around the eContent, its own, then the 16 small
    // segments (6 bytes each) and four levels of the chain.
    refused(
        "nested-indefinite",
        158,
        Malformed::IndefiniteNestingTooDeep,
    );
    // ContentInfo, [0], SignedData, the certificates field, and the chain's 7th SEQUENCE.
    refused(
        "certificate-chains",
        551,
        Malformed::IndefiniteNestingTooDeep,
    );
    // MAX_ELEMENTS headers: the fixture's first ~30, then the empty segments (2 bytes each).
    refused("nested-within-bounds", 2114, Malformed::TooManyElements);
    refused("flat-segments", 2082, Malformed::TooManyElements);
    refused("flat-definite-segments", 2056, Malformed::TooManyElements);
    // A definite-length certificates field is skipped in one step, whatever it holds.
    let blob = hostile("definite-certificates");
    assert_eq!(blob.len(), MAX_BLOB_LEN);
    assert_eq!(verify(&blob).unwrap().content(), fixtures::document());
}

#[test]
fn certificates_and_crls_are_skipped_within_the_budget() {
    // An indefinite certificates field is measured header by header, within the same budget:
    // MAX_ELEMENTS empty SEQUENCEs in it are refused, 500 are skipped and the blob verifies.
    let der = fixture();
    let content = fixtures::document();
    let encap_end = position(&der, &content) + content.len() + 6;
    let with_field = |field: &[u8]| [&der[..encap_end], field, &der[encap_end..]].concat();
    let empties = |n: usize| [tag::SEQUENCE, 0x00].repeat(n);
    let certificates = fixtures::indefinite(tag::CTX0, &[&empties(500)]);
    let crls = fixtures::indefinite(tag::CTX1, &[&empties(300)]);
    assert_eq!(
        verify(&with_field(&[certificates.clone(), crls].concat()))
            .unwrap()
            .content(),
        content
    );
    let certificates = fixtures::indefinite(tag::CTX0, &[&empties(MAX_ELEMENTS)]);
    assert!(matches!(
        verify(&with_field(&certificates)),
        Err(Error::Malformed {
            reason: Malformed::TooManyElements,
            ..
        })
    ));
    // A definite-length one is not looked into at all: not even its headers are read.
    let certificates = tlv(tag::CTX0, &[0x1f, 0x80].repeat(1000));
    assert_eq!(
        verify(&with_field(&certificates)).unwrap().content(),
        content
    );
}
