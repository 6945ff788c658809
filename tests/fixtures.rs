//! The generated fixtures in `tests/data/gen/`: committed bytes equal what the generator
//! (`test-support/src/fixtures.rs`) produces, and each blob is what its `index.json` entry claims, checked with the `cms` crate
//! and `rsa` only (independent of the crate under test and of OpenSSL).
//!
//! `EC2_IID_REGENERATE=1 cargo test --test fixtures` rewrites the files instead of comparing.
#![cfg(test)] // clippy.toml says why

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::OctetString;
use der::{Decode as _, Encode as _, EncodingRules};
use ec2_iid_test_support::fixtures::{self, BlobSpec, Expect, TestCa, oid};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::{DigestVerifier as _, Verifier as _};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

// ------------------------------------------------------------------------------------------------
// Determinism gate
// ------------------------------------------------------------------------------------------------

#[test]
fn committed_fixtures_match_the_generator() {
    let dir = fixtures::data_path("gen");
    let regenerate = std::env::var("EC2_IID_REGENERATE").is_ok_and(|v| v == "1");
    let files = fixtures::generated_files();
    let mut stale = Vec::new();
    for (name, bytes) in &files {
        let path = dir.join(name);
        if regenerate {
            // write + rename, so that tests reading the committed files never see half a file
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        } else if std::fs::read(&path).ok().as_ref() != Some(bytes) {
            stale.push(*name);
        }
    }
    assert!(
        stale.is_empty(),
        "fixtures differ from the generator: {stale:?}; \
         run `EC2_IID_REGENERATE=1 cargo test --test fixtures` and review the diff"
    );

    let mut expected: Vec<String> = files.iter().map(|(name, _)| (*name).to_owned()).collect();
    expected.push("document.json".to_owned());
    expected.sort();
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    present.sort();
    assert_eq!(
        present, expected,
        "files in tests/data/gen/ that the generator does not write"
    );
}

#[test]
fn generator_is_deterministic() {
    assert_eq!(fixtures::generated_files(), fixtures::generated_files());
}

// ------------------------------------------------------------------------------------------------
// Independent decoding with `cms` + `rsa`
// ------------------------------------------------------------------------------------------------

/// What the `cms` crate finds in a blob.
#[derive(Debug)]
struct Decoded {
    signed_data: SignedData,
    /// eContent reassembled from the chunks.
    content: Vec<u8>,
    serial: Vec<u8>,
    issuer: Vec<u8>,
    attr_oids: Vec<String>,
    message_digest: Vec<u8>,
    /// The signed attributes as a DER SET (the signed bytes when they were DER-sorted).
    signed_attrs_set: Vec<u8>,
    signature: Vec<u8>,
}

/// The binary blob of a fixture file: `.der` as is, otherwise base64 with optional PEM armour.
fn blob_of(file: &str, bytes: &[u8]) -> Vec<u8> {
    if file.ends_with(".der") {
        return bytes.to_vec();
    }
    fixtures::decode_base64_text(bytes)
}

/// cms 0.3.0-rc.0 hands a constructed eContent back as an `Any` with the primitive tag and the
/// chunk TLVs as value (DOMAIN.md h, gotcha 2): undo that. JSON never starts with 0x04.
fn reassemble(mut value: &[u8]) -> Vec<u8> {
    if value.first() != Some(&0x04) {
        return value.to_vec();
    }
    let mut out = Vec::new();
    while !value.is_empty() {
        let chunk = OctetString::from_der_partial(value).unwrap();
        out.extend_from_slice(chunk.0.as_bytes());
        value = chunk.1;
    }
    out
}

fn decode(blob: &[u8]) -> der::Result<Decoded> {
    let ci = ContentInfo::from_ber(blob)?;
    assert_eq!(ci.content_type.to_string(), oid::SIGNED_DATA);
    let signed_data = ci
        .content
        .decode_as_encoding::<SignedData>(EncodingRules::Ber)?;
    let econtent = signed_data
        .encap_content_info
        .econtent
        .as_ref()
        .expect("eContent");
    let content = reassemble(econtent.value());
    let signer = signed_data.signer_infos.0.get(0).expect("one SignerInfo");
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &signer.sid else {
        panic!("sid is not IssuerAndSerialNumber");
    };
    let attrs = signer.signed_attrs.as_ref().expect("signed attributes");
    let attr_oids = attrs.iter().map(|a| a.oid.to_string()).collect();
    let digest_attr = attrs
        .iter()
        .find(|a| a.oid.to_string() == oid::MESSAGE_DIGEST)
        .unwrap();
    let message_digest = digest_attr
        .values
        .get(0)
        .unwrap()
        .decode_as::<OctetString>()?;
    Ok(Decoded {
        content,
        serial: sid.serial_number.as_bytes().to_vec(),
        issuer: sid.issuer.to_der()?,
        attr_oids,
        message_digest: message_digest.as_bytes().to_vec(),
        signed_attrs_set: attrs.to_der()?,
        signature: signer.signature.as_bytes().to_vec(),
        signed_data,
    })
}

/// The test CA's public key, taken from its certificate (not from the private key file).
fn ca_verifying_key(ca: &TestCa) -> VerifyingKey<Sha256> {
    let (_, cert) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
    VerifyingKey::new(
        rsa::PublicKey::from_public_key_der(cert.tbs_certificate.subject_pki.raw).unwrap(),
    )
}

fn verifies(key: &VerifyingKey<Sha256>, message: &[u8], signature: &[u8]) -> bool {
    Signature::try_from(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok())
}

/// RSASSA-PKCS1-v1_5 with SHA-1 by the test CA.
fn verifies_rsa_sha1(ca: &TestCa, message: &[u8], signature: &[u8]) -> bool {
    let (_, cert) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
    let key = VerifyingKey::<Sha1>::new(
        rsa::PublicKey::from_public_key_der(cert.tbs_certificate.subject_pki.raw).unwrap(),
    );
    Signature::try_from(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok())
}

/// DSA with SHA-1 by the DSA test CA, with the `dsa` crate's own DER and SPKI decoding.
fn verifies_dsa(ca: &fixtures::DsaTestCa, message: &[u8], signature: &[u8]) -> bool {
    let (_, cert) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
    let key = dsa::VerifyingKey::from_public_key_der(cert.tbs_certificate.subject_pki.raw).unwrap();
    dsa::Signature::try_from(signature).is_ok_and(|sig| {
        key.verify_digest(
            |d: &mut Sha1| {
                sha1::Digest::update(d, message);
                Ok(())
            },
            &sig,
        )
        .is_ok()
    })
}

/// The signed bytes: the blob's `[0]` signed attributes re-tagged as SET. Asserts that the DER
/// re-encoding of what `cms` decoded occurs in the blob with the `0xA0` tag, i.e. that the blob's
/// attributes are DER (sorted, definite) and the re-encoding is the raw bytes.
fn signed_bytes(blob: &[u8], decoded: &Decoded) -> Vec<u8> {
    let mut as_written = decoded.signed_attrs_set.clone();
    as_written[0] = 0xA0;
    assert!(
        blob.windows(as_written.len()).any(|w| w == as_written),
        "signed attributes in the blob are not the DER encoding of what cms decoded"
    );
    fixtures::retag_as_set(&as_written)
}

#[test]
fn default_blob_is_valid_cms_with_aws_fields() {
    let ca = fixtures::test_ca();
    let der = std::fs::read(fixtures::data_path("gen/rsa2048.der")).unwrap();
    let decoded = decode(&der).unwrap();
    let sd = &decoded.signed_data;

    assert_eq!(sd.version, CmsVersion::V1);
    assert_eq!(sd.digest_algorithms.len(), 1);
    let digest = sd.digest_algorithms.get(0).unwrap();
    assert_eq!(digest.oid.to_string(), oid::SHA256);
    assert!(digest.parameters.as_ref().unwrap().is_null());
    assert_eq!(sd.encap_content_info.econtent_type.to_string(), oid::DATA);
    assert!(sd.certificates.is_none());
    assert!(sd.crls.is_none());
    assert_eq!(sd.signer_infos.0.len(), 1);
    let signer = sd.signer_infos.0.get(0).unwrap();
    assert_eq!(signer.version, CmsVersion::V1);
    assert_eq!(
        signer.signature_algorithm.oid.to_string(),
        oid::SHA256_WITH_RSA
    );

    assert_eq!(decoded.content, fixtures::document());
    assert_eq!(decoded.issuer, ca.issuer_der);
    assert_eq!(decoded.serial, ca.serial);
    assert_eq!(
        ca.serial,
        [0x00, 0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96, 0x87, 0x78]
    );
    // AWS order = DER order: contentType, signingTime, CMSAlgorithmProtection, messageDigest
    assert_eq!(
        decoded.attr_oids,
        [
            oid::CONTENT_TYPE,
            oid::SIGNING_TIME,
            oid::ALGORITHM_PROTECTION,
            oid::MESSAGE_DIGEST
        ]
    );
    assert_eq!(
        decoded.message_digest,
        Sha256::digest(fixtures::document()).to_vec()
    );
    let signed = signed_bytes(&der, &decoded);
    assert_eq!(
        signed,
        BlobSpec::aws_like(&fixtures::document()).signed_message()
    );
    assert!(verifies(
        &ca_verifying_key(&ca),
        &signed,
        &decoded.signature
    ));
}

#[test]
fn default_blob_has_the_aws_byte_layout() {
    let ca = fixtures::test_ca();
    let doc = fixtures::document();
    let der = BlobSpec::aws_like(&doc).build(&ca);
    // As in every real /rsa2048 blob: indefinite ContentInfo, [0], SignedData, encapContentInfo,
    // [0] and constructed eContent; one primitive chunk with a two-byte length.
    let mut head = vec![
        0x30, 0x80, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02,
    ];
    head.extend([0xA0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x01]);
    head.extend([
        0x31, 0x0F, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
    ]);
    head.extend([0x02, 0x01, 0x05, 0x00]);
    head.extend([
        0x30, 0x80, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01,
    ]);
    head.extend([0xA0, 0x80, 0x24, 0x80, 0x04, 0x82]);
    head.extend(u16::try_from(doc.len()).unwrap().to_be_bytes());
    head.extend(&doc);
    head.extend([0x00; 6]); // EOC of 24 80, a0 80, 30 80
    head.extend([0x31, 0x82]); // signerInfos, definite
    assert_eq!(der[..head.len()], head);
    assert_eq!(der[der.len() - 6..], [0x00; 6]); // EOC of SignedData, [0], ContentInfo
    // the signature is the last thing before the EOCs
    let signature = BlobSpec::aws_like(&doc).signature(&ca);
    assert_eq!(signature.len(), 256);
    let mut tail = vec![0x04, 0x82, 0x01, 0x00];
    tail.extend(&signature);
    tail.extend([0x00; 6]);
    assert_eq!(der[der.len() - tail.len()..], tail);
}

/// Every fixture in the index is what the index says, judged with `cms`, `rsa` and `dsa`.
#[test]
fn index_entries_hold_independently() {
    let ca = fixtures::test_ca();
    let dsa_ca = fixtures::dsa_test_ca();
    let key = ca_verifying_key(&ca);
    let doc = fixtures::document();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures::data_path("gen/index.json")).unwrap())
            .unwrap();
    let fixtures = fixtures::blob_fixtures();
    assert_eq!(index.as_array().unwrap().len(), fixtures.len());

    for (fixture, entry) in fixtures.iter().zip(index.as_array().unwrap()) {
        let file = fixture.file;
        assert_eq!(entry["file"], file);
        assert_eq!(entry["format"], fixture.format);
        if fixture.format == "signature" {
            let signature = blob_of(file, &fixture.bytes);
            assert_eq!(signature.len(), 256, "{file}");
            let judged = if verifies(&key, &doc, &signature) {
                Expect::Accept
            } else {
                Expect::Reject("InvalidSignature")
            };
            assert_eq!(judged, fixture.expect, "{file}");
            continue;
        }
        let blob = blob_of(file, &fixture.bytes);
        let decoded = decode(&blob);
        match fixture.expect {
            Expect::Reject(error @ ("Malformed" | "TrailingData")) => {
                assert_eq!(entry["error"], error);
                assert!(decoded.is_err(), "{file}: cms accepted it");
                continue;
            }
            Expect::Accept => assert_eq!(entry["expect"], "accept"),
            Expect::Reject(error) => {
                assert_eq!(entry["expect"], "reject");
                assert_eq!(entry["error"], error);
            }
        }
        let decoded = decoded.unwrap_or_else(|e| panic!("{file}: cms: {e}"));
        let signer_info = decoded.signed_data.signer_infos.0.get(0).unwrap();
        let dsa = signer_info.signature_algorithm.oid.to_string() == oid::DSA_WITH_SHA1;
        let sha1 = signer_info.digest_alg.oid.to_string() == oid::SHA1;
        assert_eq!(
            sha1,
            fixture.format == "pkcs7" && (dsa || file.contains("sha1"))
        );
        let signed = signed_bytes(&blob, &decoded);
        let signature_ok = if dsa {
            verifies_dsa(&dsa_ca, &signed, &decoded.signature)
        } else if sha1 {
            verifies_rsa_sha1(&ca, &signed, &decoded.signature)
        } else {
            verifies(&key, &signed, &decoded.signature)
        };
        let digest = if sha1 {
            Sha1::digest(&doc).to_vec()
        } else {
            Sha256::digest(&doc).to_vec()
        };
        let digest_ok = decoded.message_digest == digest && decoded.content == doc;
        let (issuer, serial) = if dsa {
            (&dsa_ca.issuer_der, &dsa_ca.serial)
        } else {
            (&ca.issuer_der, &ca.serial)
        };
        let signer_ok = decoded.serial == *serial && decoded.issuer == *issuer;
        let judged = match (signer_ok, digest_ok, signature_ok) {
            (false, _, _) => Expect::Reject("UnknownSigner"),
            (true, _, false) => Expect::Reject("InvalidSignature"),
            (true, false, true) => Expect::Reject("DigestMismatch"),
            (true, true, true) => Expect::Accept,
        };
        assert_eq!(judged, fixture.expect, "{file}");
    }
}

#[test]
fn text_forms_are_the_same_blob() {
    let files = fixtures::generated_files();
    let get = |name: &str| files.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    let der = get("rsa2048.der");
    let b64 = String::from_utf8(get("rsa2048.b64")).unwrap();
    assert!(b64.lines().all(|line| line.len() <= 76));
    assert_eq!(b64.lines().next().unwrap().len(), 76);
    assert!(!b64.ends_with('\n'));
    assert_eq!(blob_of("rsa2048.b64", b64.as_bytes()), der);
    let pem = String::from_utf8(get("rsa2048.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN PKCS7-----\n"));
    assert!(pem.ends_with("\n-----END PKCS7-----\n"));
    assert_eq!(blob_of("rsa2048.pem", pem.as_bytes()), der);
    let crlf = get("rsa2048-crlf.b64");
    assert!(crlf.ends_with(b"\r\n"));
    assert_eq!(
        crlf,
        format!("{}\r\n", b64.replace('\n', "\r\n")).into_bytes()
    );
}

#[test]
fn embedded_certificate_impersonates_the_test_ca() {
    let ca = fixtures::test_ca();
    let cert_der = fixtures::attacker_cert(&ca);
    let (rest, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    assert!(rest.is_empty());
    assert_eq!(cert.tbs_certificate.issuer.as_raw(), ca.issuer_der);
    assert_eq!(cert.tbs_certificate.subject.as_raw(), ca.issuer_der);
    assert_eq!(cert.tbs_certificate.raw_serial(), ca.serial);
    let attacker = VerifyingKey::<Sha256>::new(
        rsa::PublicKey::from_public_key_der(cert.tbs_certificate.subject_pki.raw).unwrap(),
    );
    assert_eq!(
        attacker,
        VerifyingKey::new(fixtures::other_key().to_public_key())
    );
    assert!(verifies(
        &attacker,
        cert.tbs_certificate.as_ref(),
        &cert.signature_value.data
    ));
    assert!(!verifies(
        &ca_verifying_key(&ca),
        cert.tbs_certificate.as_ref(),
        &cert.signature_value.data
    ));

    let fixture = fixtures::blob_fixtures()
        .into_iter()
        .find(|f| f.file == "rsa2048-embedded-cert.b64");
    let blob = blob_of("x.b64", &fixture.unwrap().bytes);
    let decoded = decode(&blob).unwrap();
    let certs = decoded.signed_data.certificates.unwrap();
    assert_eq!(certs.0.len(), 1);
    let CertificateChoices::Certificate(embedded) = certs.0.get(0).unwrap() else {
        panic!("not a certificate");
    };
    assert_eq!(embedded.to_der().unwrap(), cert_der);
}

// ------------------------------------------------------------------------------------------------
// Knobs the committed fixtures do not use still produce what they promise
// ------------------------------------------------------------------------------------------------

#[test]
fn knobs_produce_decodable_cms() {
    let ca = fixtures::test_ca();
    let key = ca_verifying_key(&ca);
    let doc = fixtures::document();
    let aws = BlobSpec::aws_like(&doc);

    let two = decode(
        &BlobSpec {
            signer_count: 2,
            ..aws.clone()
        }
        .build(&ca),
    )
    .unwrap();
    assert_eq!(two.signed_data.signer_infos.0.len(), 2);

    let no_attrs = BlobSpec {
        omit_signed_attrs: true,
        ..aws.clone()
    };
    let blob = no_attrs.build(&ca);
    let ci = ContentInfo::from_ber(&blob).unwrap();
    let sd = ci
        .content
        .decode_as_encoding::<SignedData>(EncodingRules::Ber)
        .unwrap();
    let signer = sd.signer_infos.0.get(0).unwrap();
    assert!(signer.signed_attrs.is_none());
    assert!(verifies(&key, &doc, signer.signature.as_bytes()));

    let unsorted = BlobSpec {
        unsorted_attrs: true,
        ..aws.clone()
    };
    let decoded = decode(&unsorted.build(&ca)).unwrap();
    assert_eq!(
        decoded.attr_oids,
        [
            oid::MESSAGE_DIGEST,
            oid::ALGORITHM_PROTECTION,
            oid::SIGNING_TIME,
            oid::CONTENT_TYPE
        ]
    );
    assert!(verifies(
        &key,
        &unsorted.signed_message(),
        &decoded.signature
    ));

    let extra = fixtures::attribute(
        &fixtures::der_oid(oid::MESSAGE_DIGEST),
        &fixtures::tlv(0x04, &[0u8; 32]),
    );
    let decoded = decode(
        &BlobSpec {
            extra_attrs: vec![extra],
            ..aws.clone()
        }
        .build(&ca),
    )
    .unwrap();
    assert_eq!(
        decoded
            .attr_oids
            .iter()
            .filter(|o| *o == oid::MESSAGE_DIGEST)
            .count(),
        2
    );

    let detached = BlobSpec {
        omit_econtent: true,
        ..aws.clone()
    }
    .build(&ca);
    let ci = ContentInfo::from_ber(&detached).unwrap();
    let sd = ci
        .content
        .decode_as_encoding::<SignedData>(EncodingRules::Ber)
        .unwrap();
    assert!(sd.encap_content_info.econtent.is_none());

    for chunks in [1, 2, 7] {
        for indefinite in [true, false] {
            let spec = BlobSpec {
                content_chunks: chunks,
                indefinite,
                ..aws.clone()
            };
            let decoded = decode(&spec.build(&ca)).unwrap();
            assert_eq!(
                decoded.content, doc,
                "{chunks} chunks, indefinite {indefinite}"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The writer
// ------------------------------------------------------------------------------------------------

#[test]
fn writer_encodes_oids_and_lengths() {
    assert_eq!(
        fixtures::der_oid(oid::SIGNED_DATA),
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02]
    );
    assert_eq!(
        fixtures::der_oid(oid::SHA256),
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]
    );
    assert_eq!(fixtures::der_oid("2.999.3"), [0x88, 0x37, 0x03]);
    assert_eq!(fixtures::tlv(0x04, &[]), [0x04, 0x00]);
    assert_eq!(fixtures::tlv(0x04, &[0; 127])[..2], [0x04, 0x7F]);
    assert_eq!(fixtures::tlv(0x04, &[0; 128])[..3], [0x04, 0x81, 0x80]);
    assert_eq!(
        fixtures::tlv(0x04, &[0; 256])[..4],
        [0x04, 0x82, 0x01, 0x00]
    );
    assert_eq!(
        fixtures::tlv(0x04, &[0; 0x1_0000])[..5],
        [0x04, 0x83, 0x01, 0x00, 0x00]
    );
    assert_eq!(
        fixtures::indefinite(0x30, &[&[0x05, 0x00]]),
        [0x30, 0x80, 0x05, 0x00, 0x00, 0x00]
    );

    let mut set = vec![vec![0x30, 0x2F], vec![0x30, 0x18, 0x01], vec![0x30, 0x18]];
    fixtures::der_sort(&mut set);
    assert_eq!(
        set,
        [vec![0x30, 0x18], vec![0x30, 0x18, 0x01], vec![0x30, 0x2F]]
    );
}
