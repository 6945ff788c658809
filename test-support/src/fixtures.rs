//! Deterministic generator of AWS-shaped signed documents (CMS SignedData for `/rsa2048` and
//! `/pkcs7`, bare signatures for `/signature`) signed by the test CAs.
//!
//! Everything here is reproducible: the keys are committed files, the signing time is pinned,
//! RSASSA-PKCS1-v1_5 signing uses no randomness and DSA signing derives its nonce from the key
//! and the digest (RFC 6979). The core crate's `tests/fixtures.rs` regenerates the files in its
//! `tests/data/gen/` from [`generated_files`] and fails if any committed byte differs.
//!
//! The BER/DER writer is deliberately tiny and independent of the crate under test and of the
//! `der` crate, so that a shared bug cannot make a broken encoder and a broken parser agree.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use rsa::signature::{DigestSigner as _, SignatureEncoding as _, Signer as _};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

/// Dotted OIDs the generator writes.
pub mod oid {
    /// id-data (RFC 5652).
    pub const DATA: &str = "1.2.840.113549.1.7.1";
    /// id-signedData (RFC 5652).
    pub const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    /// id-sha256.
    pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    /// id-sha1 (`/pkcs7`; for `/rsa2048` an unsupported digest).
    pub const SHA1: &str = "1.3.14.3.2.26";
    /// dsaWithSHA1: AWS's `/pkcs7` signature algorithm.
    pub const DSA_WITH_SHA1: &str = "1.2.840.10040.4.3";
    /// sha1WithRSAEncryption (a possible China `/pkcs7` algorithm).
    pub const SHA1_WITH_RSA: &str = "1.2.840.113549.1.1.5";
    /// rsaEncryption: the signature OID AWS used until mid-2021 (and `openssl cms` writes).
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    /// sha256WithRSAEncryption: the signature OID AWS uses since 2021.
    pub const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
    /// contentType signed attribute.
    pub const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
    /// messageDigest signed attribute.
    pub const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
    /// signingTime signed attribute.
    pub const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
    /// CMSAlgorithmProtection signed attribute (RFC 6211).
    pub const ALGORITHM_PROTECTION: &str = "1.2.840.113549.1.9.52";
    /// X.509 basicConstraints extension.
    pub const BASIC_CONSTRAINTS: &str = "2.5.29.19";
}

/// ASN.1 tag bytes used here (universal class unless named otherwise).
pub mod tag {
    /// BOOLEAN.
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING, primitive.
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL.
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// UTCTime.
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// OCTET STRING, constructed (BER only).
    pub const OCTET_STRING_CONSTRUCTED: u8 = 0x24;
    /// SEQUENCE / SEQUENCE OF.
    pub const SEQUENCE: u8 = 0x30;
    /// SET / SET OF.
    pub const SET: u8 = 0x31;
    /// `[0]` context-specific, constructed.
    pub const CTX0: u8 = 0xA0;
    /// `[1]` context-specific, constructed.
    pub const CTX1: u8 = 0xA1;
    /// `[3]` context-specific, constructed.
    pub const CTX3: u8 = 0xA3;
}

/// `signingTime` of the default blob: `pendingTime` of `document.json` + 5 s, as AWS signs a few
/// seconds after launch.
pub const SIGNING_TIME: &str = "261101120005Z";

/// `pendingTime` of `tests/data/gen/document.json`.
pub const PENDING_TIME: &str = "2026-11-01T12:00:00Z";

/// A clock for accepting the fixtures: `pendingTime` + 1 min (as `aws-samples` uses).
pub const NOW_FOR_TESTS: &str = "2026-11-01T12:01:00Z";

// ------------------------------------------------------------------------------------------------
// BER/DER writer
// ------------------------------------------------------------------------------------------------

/// Appends a definite length in the shortest form (DER).
fn push_len(out: &mut Vec<u8>, len: usize) {
    if let Ok(short) = u8::try_from(len)
        && short < 0x80
    {
        out.push(short);
        return;
    }
    let bytes = len.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let count = u8::try_from(bytes.len() - first).expect("length of a length fits in u8");
    out.push(0x80 | count);
    out.extend_from_slice(&bytes[first..]);
}

/// A definite-length TLV with a one-byte tag (the only kind this generator needs).
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A definite-length constructed TLV over the concatenation of `parts`.
pub fn tlv_of(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// An indefinite-length constructed TLV: `tag 80 parts.. 00 00` (BER only).
pub fn indefinite(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![tag, 0x80];
    for part in parts {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&[0x00, 0x00]);
    out
}

/// OID content bytes (no tag, no length) from dotted text such as `"1.2.840.113549.1.7.2"`.
///
/// Panics on text that is not an OID with at least two arcs.
pub fn der_oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|arc| {
            arc.parse()
                .unwrap_or_else(|_| panic!("bad OID arc in {dotted:?}"))
        })
        .collect();
    assert!(arcs.len() >= 2 && arcs[0] <= 2, "bad OID {dotted:?}");
    assert!(arcs[0] == 2 || arcs[1] < 40, "bad OID {dotted:?}");
    let mut out = Vec::new();
    let first = arcs[0] * 40 + arcs[1];
    for &arc in std::iter::once(&first).chain(&arcs[2..]) {
        // base 128, most significant group first, high bit set on all but the last byte
        let mut groups = vec![u8::try_from(arc & 0x7f).expect("7 bits")];
        let mut rest = arc >> 7;
        while rest != 0 {
            groups.push(0x80 | u8::try_from(rest & 0x7f).expect("7 bits"));
            rest >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    out
}

/// An OBJECT IDENTIFIER TLV from OID content bytes.
pub fn oid_tlv(content: &[u8]) -> Vec<u8> {
    tlv(tag::OID, content)
}

/// An INTEGER TLV holding a small non-negative value.
fn small_int(value: u8) -> Vec<u8> {
    if value < 0x80 {
        tlv(tag::INTEGER, &[value])
    } else {
        tlv(tag::INTEGER, &[0x00, value])
    }
}

/// An AlgorithmIdentifier: `SEQUENCE { oid, NULL }` or, without `null_params`, `SEQUENCE { oid }`.
pub fn algorithm_identifier(oid: &[u8], null_params: bool) -> Vec<u8> {
    let mut content = oid_tlv(oid);
    if null_params {
        content.extend_from_slice(&[tag::NULL, 0x00]);
    }
    tlv(tag::SEQUENCE, &content)
}

/// Sorts encoded elements as DER requires for SET OF (X.690 11.6: ascending octet strings,
/// the shorter padded with zero octets at the end).
pub fn der_sort(elements: &mut [Vec<u8>]) {
    elements.sort_by(|a, b| {
        let len = a.len().max(b.len());
        let padded = |v: &[u8]| {
            (0..len)
                .map(|i| v.get(i).copied().unwrap_or(0))
                .collect::<Vec<_>>()
        };
        padded(a).cmp(&padded(b)).then(a.len().cmp(&b.len()))
    });
}

/// An Attribute: `SEQUENCE { type OID, values SET { value } }`.
pub fn attribute(oid: &[u8], value: &[u8]) -> Vec<u8> {
    tlv_of(tag::SEQUENCE, &[&oid_tlv(oid), &tlv(tag::SET, value)])
}

/// The blob's signed attributes re-tagged as `SET` (`0x31`), which is what the signature covers.
///
/// Panics if `signed_attrs` does not start with the `[0]` tag byte `0xA0`.
pub fn retag_as_set(signed_attrs: &[u8]) -> Vec<u8> {
    assert_eq!(
        signed_attrs.first(),
        Some(&tag::CTX0),
        "signed attributes must start with 0xA0"
    );
    let mut out = signed_attrs.to_vec();
    out[0] = tag::SET;
    out
}

/// Where `needle` occurs in `haystack`; it must occur exactly once.
pub fn position(haystack: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "needle must occur exactly once");
    hits[0]
}

/// Replaces the only occurrence of `needle` in `haystack` with `replacement` (same length).
///
/// Panics unless `needle` occurs exactly once and the lengths agree: a fixture edited "after
/// signing" must not shift any length field.
pub fn replace_once(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
    assert_eq!(
        needle.len(),
        replacement.len(),
        "replace_once must keep the length"
    );
    let at = position(haystack, needle);
    let mut out = haystack.to_vec();
    out[at..at + needle.len()].copy_from_slice(replacement);
    out
}

// ------------------------------------------------------------------------------------------------
// Keys and the test CA
// ------------------------------------------------------------------------------------------------

/// `tests/data/<rest>` of the `ec2-iid` crate (the workspace root), where the test CAs and the
/// committed fixtures live, whichever crate's tests ask.
pub fn data_path(rest: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rest)
}

fn read_text(rest: &str) -> String {
    let path = data_path(rest);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn load_key(rest: &str) -> rsa::PrivateKey {
    rsa::PrivateKey::from_pkcs8_pem(&read_text(rest))
        .unwrap_or_else(|e| panic!("{rest} is not a PKCS#8 RSA key: {e}"))
}

/// The test CA (NOT an AWS key): its private key and self-signed certificate.
#[derive(Clone, Debug)]
pub struct TestCa {
    /// The CA's RSA-2048 private key.
    pub key: rsa::PrivateKey,
    /// `testca.pem` as committed (PEM text).
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The full issuer `Name` TLV (`30 ..`) as it appears in the certificate.
    pub issuer_der: Vec<u8>,
    /// The serial's INTEGER content bytes as in the certificate, incl. the leading `0x00`.
    pub serial: Vec<u8>,
}

/// Loads `tests/data/testca/testca.{key,pem}` (parsed once per test binary).
pub fn test_ca() -> TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        let key = load_key("testca/testca.key");
        let cert_pem = read_text("testca/testca.pem");
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("testca.pem");
        let cert_der = pem.contents;
        let (rest, cert) = x509_parser::parse_x509_certificate(&cert_der).expect("testca cert");
        assert!(
            rest.is_empty(),
            "trailing bytes after the test CA certificate"
        );
        let issuer_der = cert.tbs_certificate.issuer.as_raw().to_vec();
        let serial = cert.tbs_certificate.raw_serial().to_vec();
        TestCa {
            key,
            cert_pem,
            cert_der,
            issuer_der,
            serial,
        }
    })
    .clone()
}

/// A second, unrelated key (`tests/data/testca/attacker.key`) for forged signatures.
pub fn other_key() -> rsa::PrivateKey {
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| load_key("testca/attacker.key")).clone()
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `message` (deterministic).
pub fn rsa_sign(key: &rsa::PrivateKey, message: &[u8]) -> Vec<u8> {
    SigningKey::<Sha256>::new(key.clone())
        .sign(message)
        .to_vec()
}

/// RSASSA-PKCS1-v1_5 with SHA-1 over `message` (deterministic).
fn rsa_sign_sha1(key: &rsa::PrivateKey, message: &[u8]) -> Vec<u8> {
    SigningKey::<Sha1>::new(key.clone()).sign(message).to_vec()
}

/// The DSA test CA (NOT an AWS key): DSA-1024/160, like AWS's `/pkcs7` keys.
#[derive(Clone, Debug)]
pub struct DsaTestCa {
    /// The CA's DSA private key.
    pub key: dsa::SigningKey,
    /// `testca-dsa.pem` as committed (PEM text).
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The full issuer `Name` TLV as it appears in the certificate.
    pub issuer_der: Vec<u8>,
    /// The serial's INTEGER content bytes as in the certificate, incl. the leading `0x00`.
    pub serial: Vec<u8>,
}

/// Loads `tests/data/testca/testca-dsa.{key,pem}` (parsed once per test binary).
pub fn dsa_test_ca() -> DsaTestCa {
    static CA: OnceLock<DsaTestCa> = OnceLock::new();
    CA.get_or_init(|| {
        let key = dsa::SigningKey::from_pkcs8_pem(&read_text("testca/testca-dsa.key"))
            .expect("testca-dsa.key is a PKCS#8 DSA key");
        let cert_pem = read_text("testca/testca-dsa.pem");
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).expect("testca-dsa.pem");
        let cert_der = pem.contents;
        let (rest, cert) = x509_parser::parse_x509_certificate(&cert_der).expect("DSA cert");
        assert!(
            rest.is_empty(),
            "trailing bytes after the DSA test CA certificate"
        );
        DsaTestCa {
            key,
            issuer_der: cert.tbs_certificate.issuer.as_raw().to_vec(),
            serial: cert.tbs_certificate.raw_serial().to_vec(),
            cert_pem,
            cert_der,
        }
    })
    .clone()
}

/// DSA with SHA-1 over `message`, DER `SEQUENCE { r, s }` (RFC 6979 nonce: deterministic).
fn dsa_sign_sha1(key: &dsa::SigningKey, message: &[u8]) -> Vec<u8> {
    let signature: dsa::Signature = key.sign_digest(|digest: &mut Sha1| {
        sha1::Digest::update(digest, message);
    });
    der::Encode::to_der(&signature).expect("DER of a DSA signature")
}

/// A self-signed certificate of the attacker key that copies the test CA's issuer/subject DN,
/// serial, validity and basicConstraints: what an attacker would embed in
/// `SignedData.certificates` hoping the verifier trusts it.
pub fn attacker_cert(ca: &TestCa) -> Vec<u8> {
    let key = other_key();
    let spki = key
        .to_public_key()
        .to_public_key_der()
        .expect("SPKI of the attacker key");
    // basicConstraints, critical, CA:TRUE, pathlen 0
    let basic_constraints = tlv_of(
        tag::SEQUENCE,
        &[
            &oid_tlv(&der_oid(oid::BASIC_CONSTRAINTS)),
            &tlv(tag::BOOLEAN, &[0xFF]),
            &tlv(
                tag::OCTET_STRING,
                &tlv_of(tag::SEQUENCE, &[&tlv(tag::BOOLEAN, &[0xFF]), &small_int(0)]),
            ),
        ],
    );
    self_named_certificate(
        &ca.serial,
        &ca.issuer_der,
        &tlv(tag::GENERALIZED_TIME, b"21950101000000Z"),
        spki.as_bytes(),
        &[&tlv(tag::CTX3, &tlv(tag::SEQUENCE, &basic_constraints))],
        |tbs| rsa_sign(&key, tbs),
    )
}

/// An X.509 v3 certificate with issuer and subject `name`, valid from 2010-01-01 to
/// `not_after`, claiming sha256WithRSAEncryption; `sign` makes the signature bits of the
/// TBSCertificate (or filler, where no one checks them).
pub fn self_named_certificate(
    serial: &[u8],
    name: &[u8],
    not_after: &[u8],
    spki: &[u8],
    extensions: &[&[u8]],
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let sig_alg = algorithm_identifier(&der_oid(oid::SHA256_WITH_RSA), true);
    let validity = tlv_of(
        tag::SEQUENCE,
        &[&tlv(tag::UTC_TIME, b"100101000000Z"), not_after],
    );
    let fields: [&[u8]; 7] = [
        &tlv(tag::CTX0, &small_int(2)),
        &tlv(tag::INTEGER, serial),
        &sig_alg,
        name,
        &validity,
        name,
        spki,
    ];
    let tbs = tlv_of(tag::SEQUENCE, &[&fields[..], extensions].concat());
    let mut bits = vec![0x00]; // no unused bits
    bits.extend(sign(&tbs));
    tlv_of(
        tag::SEQUENCE,
        &[&tbs, &sig_alg, &tlv(tag::BIT_STRING, &bits)],
    )
}

// ------------------------------------------------------------------------------------------------
// The blob
// ------------------------------------------------------------------------------------------------

/// Every knob of a generated SignedData blob. Start from [`BlobSpec::aws_like`].
///
/// The generator hashes with SHA-256 (SHA-1 with `hash_sha1`) and signs with
/// RSASSA-PKCS1-v1_5 (DSA with `dsa_signer`); the OID fields only change what the blob *claims*.
#[derive(Clone, Debug)]
pub struct BlobSpec {
    /// The signed content (the JSON document).
    pub content: Vec<u8>,
    /// Number of primitive OCTET STRING chunks inside the constructed eContent (1 = AWS). With
    /// `indefinite: false` and more than one chunk, the constructed OCTET STRING has a definite
    /// length (valid BER, not DER). 0 gives an empty constructed OCTET STRING.
    pub content_chunks: usize,
    /// `true`: AWS BER (`30 80 ..`, eContent `24 80 04 .. 00 00`, EOCs, signerInfos definite);
    /// `false`: definite lengths throughout, eContent a primitive OCTET STRING.
    pub indefinite: bool,
    /// ContentInfo.contentType OID content bytes (default id-signedData).
    pub outer_content_type: Vec<u8>,
    /// eContentType OID content bytes (default id-data).
    pub econtent_type: Vec<u8>,
    /// Leave out `[0] eContent` (a detached signature); the digest still covers `content`.
    pub omit_econtent: bool,
    /// Digest OID content bytes in digestAlgorithms, SignerInfo.digestAlgorithm and
    /// CMSAlgorithmProtection (default sha256).
    pub digest_oid: Vec<u8>,
    /// NULL digest parameters (AWS up to 2025) or none (AWS 2026).
    pub digest_params_null: bool,
    /// SignerInfo.signatureAlgorithm OID content bytes (default sha256WithRSAEncryption; AWS used
    /// rsaEncryption until mid-2021).
    pub signature_oid: Vec<u8>,
    /// NULL signature algorithm parameters (default `true`).
    pub signature_params_null: bool,
    /// `signingTime` UTCTime text; `None` leaves the attribute out. Default [`SIGNING_TIME`].
    pub signing_time: Option<String>,
    /// Add CMSAlgorithmProtection naming the digest and signature algorithms above.
    pub algorithm_protection: bool,
    /// The CMSAlgorithmProtection attribute value TLV to use instead; when `Some`, the attribute
    /// is written even if `algorithm_protection` is `false`.
    pub algorithm_protection_override: Option<Vec<u8>>,
    /// Leave out the contentType signed attribute.
    pub omit_content_type_attr: bool,
    /// OID content bytes for the contentType attribute instead of id-data.
    pub content_type_attr_value: Option<Vec<u8>>,
    /// Leave out the messageDigest signed attribute.
    pub omit_message_digest_attr: bool,
    /// messageDigest OCTET STRING content instead of SHA-256(`content`).
    pub message_digest_override: Option<Vec<u8>>,
    /// Raw Attribute TLVs added to the signed attributes (see [`attribute`]).
    pub extra_attrs: Vec<Vec<u8>>,
    /// Write the signed attributes in descending instead of DER (ascending) order; the
    /// signature covers them as written either way.
    pub unsorted_attrs: bool,
    /// No signed attributes: the signature is over `content` itself.
    pub omit_signed_attrs: bool,
    /// Number of identical SignerInfos (AWS: 1).
    pub signer_count: usize,
    /// SignerInfo serial INTEGER content bytes instead of the test CA's. Not signed, so this is
    /// the same as editing the serial after signing.
    pub serial_override: Option<Vec<u8>>,
    /// DER certificates for `SignedData.certificates [0]` (definite length, in this order).
    pub embedded_certs: Vec<Vec<u8>>,
    /// Key to sign with; `None` = the test CA key.
    pub signing_key: Option<rsa::PrivateKey>,
    /// Hash the content and the signed attributes with SHA-1 instead of SHA-256 (`/pkcs7`).
    pub hash_sha1: bool,
    /// Sign with this DSA CA (over SHA-1) and name its issuer and serial instead of the RSA test
    /// CA's (`signing_key` is then ignored).
    pub dsa_signer: Option<DsaTestCa>,
    /// Signature value bytes to write instead of the computed signature.
    pub signature_override: Option<Vec<u8>>,
}

impl BlobSpec {
    /// The shape of a current AWS `/rsa2048` blob (2021-09 .. 2025) around `content`.
    pub fn aws_like(content: &[u8]) -> Self {
        Self {
            content: content.to_vec(),
            content_chunks: 1,
            indefinite: true,
            outer_content_type: der_oid(oid::SIGNED_DATA),
            econtent_type: der_oid(oid::DATA),
            omit_econtent: false,
            digest_oid: der_oid(oid::SHA256),
            digest_params_null: true,
            signature_oid: der_oid(oid::SHA256_WITH_RSA),
            signature_params_null: true,
            signing_time: Some(SIGNING_TIME.to_owned()),
            algorithm_protection: true,
            algorithm_protection_override: None,
            omit_content_type_attr: false,
            content_type_attr_value: None,
            omit_message_digest_attr: false,
            message_digest_override: None,
            extra_attrs: Vec::new(),
            unsorted_attrs: false,
            omit_signed_attrs: false,
            signer_count: 1,
            serial_override: None,
            embedded_certs: Vec::new(),
            signing_key: None,
            hash_sha1: false,
            dsa_signer: None,
            signature_override: None,
        }
    }

    /// The shape of an AWS `/pkcs7` blob around `content`: as [`BlobSpec::aws_like`], but SHA-1
    /// and `dsaWithSHA1` (no parameters), signed by `dsa_ca`. AWS's DSA signatures carry
    /// CMSAlgorithmProtection since 2021-09, like its RSA ones.
    pub fn aws_pkcs7_like(content: &[u8], dsa_ca: &DsaTestCa) -> Self {
        Self {
            digest_oid: der_oid(oid::SHA1),
            signature_oid: der_oid(oid::DSA_WITH_SHA1),
            signature_params_null: false,
            hash_sha1: true,
            dsa_signer: Some(dsa_ca.clone()),
            ..Self::aws_like(content)
        }
    }

    /// The AlgorithmIdentifier of the digest.
    pub fn digest_algorithm(&self) -> Vec<u8> {
        algorithm_identifier(&self.digest_oid, self.digest_params_null)
    }

    /// The AlgorithmIdentifier of the signature.
    pub fn signature_algorithm(&self) -> Vec<u8> {
        algorithm_identifier(&self.signature_oid, self.signature_params_null)
    }

    /// The Attribute TLVs in the order they are written.
    pub fn attributes(&self) -> Vec<Vec<u8>> {
        let mut attrs = Vec::new();
        if !self.omit_content_type_attr {
            let value = self
                .content_type_attr_value
                .clone()
                .unwrap_or_else(|| der_oid(oid::DATA));
            attrs.push(attribute(&der_oid(oid::CONTENT_TYPE), &oid_tlv(&value)));
        }
        if let Some(time) = &self.signing_time {
            attrs.push(attribute(
                &der_oid(oid::SIGNING_TIME),
                &tlv(tag::UTC_TIME, time.as_bytes()),
            ));
        }
        if !self.omit_message_digest_attr {
            let digest = self
                .message_digest_override
                .clone()
                .unwrap_or_else(|| self.hash(&self.content));
            attrs.push(attribute(
                &der_oid(oid::MESSAGE_DIGEST),
                &tlv(tag::OCTET_STRING, &digest),
            ));
        }
        let protection = self.algorithm_protection_override.clone().or_else(|| {
            self.algorithm_protection.then(|| {
                // CMSAlgorithmProtection ::= SEQUENCE { digestAlgorithm,
                //   signatureAlgorithm [1] IMPLICIT AlgorithmIdentifier OPTIONAL, .. }
                let mut signature = self.signature_algorithm();
                signature[0] = tag::CTX1;
                tlv_of(tag::SEQUENCE, &[&self.digest_algorithm(), &signature])
            })
        });
        if let Some(value) = protection {
            attrs.push(attribute(&der_oid(oid::ALGORITHM_PROTECTION), &value));
        }
        attrs.extend(self.extra_attrs.iter().cloned());
        der_sort(&mut attrs);
        if self.unsorted_attrs {
            attrs.reverse();
        }
        attrs
    }

    /// The `[0] IMPLICIT` signed attributes exactly as written in the SignerInfo (`A0 ..`).
    pub fn signed_attrs(&self) -> Vec<u8> {
        tlv(tag::CTX0, &self.attributes().concat())
    }

    /// The bytes the signature is computed over: the signed attributes re-tagged as SET, or the
    /// content when `omit_signed_attrs`.
    pub fn signed_message(&self) -> Vec<u8> {
        if self.omit_signed_attrs {
            self.content.clone()
        } else {
            retag_as_set(&self.signed_attrs())
        }
    }

    /// The digest the generator computes (SHA-256, or SHA-1 with `hash_sha1`).
    pub fn hash(&self, data: &[u8]) -> Vec<u8> {
        if self.hash_sha1 {
            Sha1::digest(data).to_vec()
        } else {
            Sha256::digest(data).to_vec()
        }
    }

    /// The signature value written in the SignerInfo.
    pub fn signature(&self, ca: &TestCa) -> Vec<u8> {
        self.signature_override.clone().unwrap_or_else(|| {
            let message = self.signed_message();
            let key = self.signing_key.as_ref().unwrap_or(&ca.key);
            match &self.dsa_signer {
                Some(dsa_ca) => dsa_sign_sha1(&dsa_ca.key, &message),
                None if self.hash_sha1 => rsa_sign_sha1(key, &message),
                None => rsa_sign(key, &message),
            }
        })
    }

    /// One SignerInfo (version 1, IssuerAndSerialNumber).
    pub fn signer_info(&self, ca: &TestCa) -> Vec<u8> {
        let (issuer, serial) = match &self.dsa_signer {
            Some(dsa_ca) => (&dsa_ca.issuer_der, &dsa_ca.serial),
            None => (&ca.issuer_der, &ca.serial),
        };
        let serial = self.serial_override.as_ref().unwrap_or(serial);
        let sid = tlv_of(tag::SEQUENCE, &[issuer, &tlv(tag::INTEGER, serial)]);
        let signed_attrs = if self.omit_signed_attrs {
            Vec::new()
        } else {
            self.signed_attrs()
        };
        tlv_of(
            tag::SEQUENCE,
            &[
                &small_int(1),
                &sid,
                &self.digest_algorithm(),
                &signed_attrs,
                &self.signature_algorithm(),
                &tlv(tag::OCTET_STRING, &self.signature(ca)),
            ],
        )
    }

    /// The encapsulated content's OCTET STRING: primitive for one chunk in DER mode,
    /// constructed (indefinite or definite) otherwise.
    fn econtent_octets(&self) -> Vec<u8> {
        if !self.indefinite && self.content_chunks == 1 {
            return tlv(tag::OCTET_STRING, &self.content);
        }
        let chunks: Vec<Vec<u8>> = split_even(&self.content, self.content_chunks)
            .into_iter()
            .map(|chunk| tlv(tag::OCTET_STRING, chunk))
            .collect();
        let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        if self.indefinite {
            indefinite(tag::OCTET_STRING_CONSTRUCTED, &chunks)
        } else {
            tlv_of(tag::OCTET_STRING_CONSTRUCTED, &chunks)
        }
    }

    /// The complete ContentInfo.
    pub fn build(&self, ca: &TestCa) -> Vec<u8> {
        let wrap = |tag: u8, parts: &[&[u8]]| {
            if self.indefinite {
                indefinite(tag, parts)
            } else {
                tlv_of(tag, parts)
            }
        };
        let econtent = if self.omit_econtent {
            Vec::new()
        } else {
            wrap(tag::CTX0, &[&self.econtent_octets()])
        };
        let encap = wrap(tag::SEQUENCE, &[&oid_tlv(&self.econtent_type), &econtent]);
        let certificates = if self.embedded_certs.is_empty() {
            Vec::new()
        } else {
            tlv(tag::CTX0, &self.embedded_certs.concat())
        };
        // identical SignerInfos: DER order is the written order
        let signer_infos = tlv(tag::SET, &self.signer_info(ca).repeat(self.signer_count));
        let signed_data = wrap(
            tag::SEQUENCE,
            &[
                &small_int(1),
                &tlv(tag::SET, &self.digest_algorithm()),
                &encap,
                &certificates,
                &signer_infos,
            ],
        );
        wrap(
            tag::SEQUENCE,
            &[
                &oid_tlv(&self.outer_content_type),
                &wrap(tag::CTX0, &[&signed_data]),
            ],
        )
    }
}

/// Splits `data` into `parts` pieces whose lengths differ by at most one (the first ones longer).
fn split_even(data: &[u8], parts: usize) -> Vec<&[u8]> {
    if parts == 0 {
        return Vec::new();
    }
    let (base, extra) = (data.len() / parts, data.len() % parts);
    let mut rest = data;
    (0..parts)
        .map(|i| {
            let (chunk, tail) = rest.split_at(base + usize::from(i < extra));
            rest = tail;
            chunk
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Text forms
// ------------------------------------------------------------------------------------------------

/// Standard base64 in 76-column lines joined by `\n`, no trailing newline (as IMDS serves it).
pub fn imds_base64(der: &[u8]) -> String {
    base64_lines(der).join("\n")
}

/// The 76-column base64 lines of `der`.
pub fn base64_lines(der: &[u8]) -> Vec<String> {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    text.as_bytes()
        .chunks(76)
        .map(|line| String::from_utf8(line.to_vec()).expect("base64 is ASCII"))
        .collect()
}

/// The bytes of standard base64 text, with ASCII whitespace and PEM armour lines removed: the
/// inverse of [`imds_base64`] and `pem_pkcs7`.
pub fn decode_base64_text(bytes: &[u8]) -> Vec<u8> {
    let text: String = std::str::from_utf8(bytes)
        .expect("base64 text")
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(str::chars)
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64")
}

/// IMDS base64 with `-----BEGIN PKCS7-----` armour and a trailing newline, as the AWS docs tell
/// users to wrap it for `openssl smime -verify`.
fn pem_pkcs7(der: &[u8]) -> String {
    format!(
        "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
        imds_base64(der)
    )
}

// ------------------------------------------------------------------------------------------------
// The committed fixtures
// ------------------------------------------------------------------------------------------------

/// `tests/data/gen/document.json`: the test document (AWS-style pretty JSON, no trailing newline).
pub fn document() -> Vec<u8> {
    let path = data_path("gen/document.json");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// What a verifier must do with a fixture.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Expect {
    /// Verifies with the test CA trusted (at [`NOW_FOR_TESTS`]).
    Accept,
    /// Rejected with the named `ec2_iid::Error` variant.
    Reject(&'static str),
}

/// One generated file of `tests/data/gen/`.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// File name in `tests/data/gen/`.
    pub file: &'static str,
    /// The IMDS format: `rsa2048`, `pkcs7` or `signature` (then the file is the `/signature`
    /// text for `document.json`).
    pub format: &'static str,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// What a verifier must do with it.
    pub expect: Expect,
    /// One line on what it is.
    pub note: &'static str,
}

impl Fixture {
    fn new(
        file: &'static str,
        bytes: impl Into<Vec<u8>>,
        expect: Expect,
        note: &'static str,
    ) -> Self {
        Self {
            file,
            format: "rsa2048",
            bytes: bytes.into(),
            expect,
            note,
        }
    }

    fn in_format(self, format: &'static str) -> Self {
        Self { format, ..self }
    }
}

/// The blob fixtures (without `index.json` and `README.md`), in index order.
pub fn blob_fixtures() -> Vec<Fixture> {
    use Expect::{Accept, Reject};

    let ca = test_ca();
    let doc = document();
    let aws = BlobSpec::aws_like(&doc);
    let der = aws.build(&ca);
    let b64 = |spec: &BlobSpec| imds_base64(&spec.build(&ca));

    let rsa_encryption = BlobSpec {
        signature_oid: der_oid(oid::RSA_ENCRYPTION),
        algorithm_protection: false,
        ..aws.clone()
    };
    let no_params = BlobSpec {
        digest_params_null: false,
        ..aws.clone()
    };
    let embedded = BlobSpec {
        embedded_certs: vec![attacker_cert(&ca)],
        ..aws.clone()
    };
    let chunked = BlobSpec {
        content_chunks: 3,
        ..aws.clone()
    };
    let definite = BlobSpec {
        indefinite: false,
        ..aws.clone()
    };

    let tampered_content = replace_once(
        &der,
        br#""accountId" : "123456789012""#,
        br#""accountId" : "210987654321""#,
    );
    let tampered_attribute = replace_once(&der, SIGNING_TIME.as_bytes(), b"261101130005Z");
    let mut flipped = aws.signature(&ca);
    *flipped.last_mut().expect("signature") ^= 0x01;
    let tampered_signature = BlobSpec {
        signature_override: Some(flipped),
        ..aws.clone()
    };
    let mut serial = ca.serial.clone();
    *serial.last_mut().expect("serial") ^= 0x01;
    let tampered_serial = BlobSpec {
        serial_override: Some(serial),
        ..aws.clone()
    };
    let attacker = BlobSpec {
        signing_key: Some(other_key()),
        ..aws.clone()
    };
    let truncated = der[..der.len() / 2].to_vec();
    let trailing = [der.as_slice(), &[0x00, 0x00, 0x00]].concat();

    let dsa_ca = dsa_test_ca();
    let pkcs7 = BlobSpec::aws_pkcs7_like(&doc, &dsa_ca);
    let pkcs7_2018 = BlobSpec {
        algorithm_protection: false,
        ..pkcs7.clone()
    };
    let mut dsa_flipped = pkcs7.signature(&ca);
    *dsa_flipped.last_mut().expect("signature") ^= 0x01;
    let pkcs7_tampered = BlobSpec {
        signature_override: Some(dsa_flipped),
        ..pkcs7.clone()
    };
    let pkcs7_rsa = BlobSpec {
        signature_oid: der_oid(oid::RSA_ENCRYPTION),
        algorithm_protection: false,
        ..aws.clone()
    };
    let pkcs7_rsa_sha1 = BlobSpec {
        digest_oid: der_oid(oid::SHA1),
        signature_oid: der_oid(oid::SHA1_WITH_RSA),
        hash_sha1: true,
        ..aws.clone()
    };
    let signature = base64_lines(&rsa_sign(&ca.key, &doc)).join("\n");

    vec![
        Fixture::new(
            "rsa2048.b64",
            imds_base64(&der),
            Accept,
            "AWS-shaped /rsa2048 (BER, sha256WithRSAEncryption, CMSAlgorithmProtection), IMDS base64",
        ),
        Fixture::new("rsa2048.der", der.clone(), Accept, "the same blob, binary"),
        Fixture::new(
            "rsa2048.pem",
            pem_pkcs7(&der),
            Accept,
            "the same blob in -----BEGIN PKCS7----- armour, trailing newline",
        ),
        Fixture::new(
            "rsa2048-crlf.b64",
            format!("{}\r\n", base64_lines(&der).join("\r\n")),
            Accept,
            "the same base64 with CRLF line ends and a trailing CRLF",
        ),
        Fixture::new(
            "rsa2048-rsaencryption.b64",
            b64(&rsa_encryption),
            Accept,
            "signatureAlgorithm rsaEncryption, no CMSAlgorithmProtection (AWS until mid-2021)",
        ),
        Fixture::new(
            "rsa2048-noparams.b64",
            b64(&no_params),
            Accept,
            "digest AlgorithmIdentifiers without NULL parameters (AWS 2026)",
        ),
        Fixture::new(
            "rsa2048-embedded-cert.b64",
            b64(&embedded),
            Accept,
            "certificates [0] holds a self-signed attacker cert with the test CA's DN and serial; must be ignored",
        ),
        Fixture::new(
            "rsa2048-chunked.b64",
            b64(&chunked),
            Accept,
            "eContent split into 3 primitive OCTET STRING chunks",
        ),
        Fixture::new(
            "rsa2048-definite.der",
            definite.build(&ca),
            Accept,
            "definite-length DER throughout, eContent a primitive OCTET STRING",
        ),
        Fixture::new(
            "tampered-content.b64",
            imds_base64(&tampered_content),
            Reject("DigestMismatch"),
            "accountId in the content changed to 210987654321 after signing",
        ),
        Fixture::new(
            "tampered-attribute.b64",
            imds_base64(&tampered_attribute),
            Reject("InvalidSignature"),
            "signingTime changed (one hour later) after signing",
        ),
        Fixture::new(
            "tampered-signature.b64",
            b64(&tampered_signature),
            Reject("InvalidSignature"),
            "last signature byte flipped",
        ),
        Fixture::new(
            "tampered-serial.b64",
            b64(&tampered_serial),
            Reject("UnknownSigner"),
            "SignerInfo serial changed after signing (last byte flipped)",
        ),
        Fixture::new(
            "attacker-signed.b64",
            b64(&attacker),
            Reject("InvalidSignature"),
            "signed with attacker.key, naming the test CA's issuer and serial",
        ),
        Fixture::new(
            "truncated.der",
            truncated,
            Reject("Malformed"),
            "rsa2048.der cut to half its length",
        ),
        Fixture::new(
            "trailing.der",
            trailing,
            Reject("TrailingData"),
            "rsa2048.der followed by 3 zero bytes",
        ),
        Fixture::new(
            "pkcs7.b64",
            b64(&pkcs7),
            Accept,
            "AWS-shaped /pkcs7 (BER, SHA-1, dsaWithSHA1, CMSAlgorithmProtection) signed by the DSA test CA",
        )
        .in_format("pkcs7"),
        Fixture::new(
            "pkcs7-2018.b64",
            b64(&pkcs7_2018),
            Accept,
            "the same without CMSAlgorithmProtection (AWS until mid-2021)",
        )
        .in_format("pkcs7"),
        Fixture::new(
            "pkcs7-tampered-signature.b64",
            b64(&pkcs7_tampered),
            Reject("InvalidSignature"),
            "pkcs7.b64 with the last byte of the DSA signature's s flipped",
        )
        .in_format("pkcs7"),
        Fixture::new(
            "pkcs7-rsa.b64",
            b64(&pkcs7_rsa),
            Accept,
            "China-style /pkcs7: RSA (rsaEncryption) over SHA-256, signed by the RSA test CA trusted for pkcs7",
        )
        .in_format("pkcs7"),
        Fixture::new(
            "pkcs7-rsa-sha1.b64",
            b64(&pkcs7_rsa_sha1),
            Accept,
            "China-style /pkcs7 with SHA-1 and sha1WithRSAEncryption, RSA test CA",
        )
        .in_format("pkcs7"),
        Fixture::new(
            "signature.b64",
            signature,
            Accept,
            "/signature text for document.json: RSASSA-PKCS1-v1_5 SHA-256 by the RSA test CA, base64 at 76 columns",
        )
        .in_format("signature"),
    ]
}

/// `index.json` for `fixtures`: an array of `{ "file", "format", "expect", "error", "note" }` in
/// that key order, one key per line, trailing newline.
fn index_json(fixtures: &[Fixture]) -> String {
    let json = |text: &str| serde_json::to_string(text).expect("JSON string");
    let entries: Vec<String> = fixtures
        .iter()
        .map(|f| {
            let (expect, error) = match f.expect {
                Expect::Accept => ("accept", "null".to_owned()),
                Expect::Reject(error) => ("reject", json(error)),
            };
            format!(
                "  {{\n    \"file\": {},\n    \"format\": {},\n    \"expect\": {},\n    \"error\": {error},\n    \"note\": {}\n  }}",
                json(f.file),
                json(f.format),
                json(expect),
                json(f.note)
            )
        })
        .collect();
    format!("[\n{}\n]\n", entries.join(",\n"))
}

const README_HEAD: &str = "\
# Generated fixtures

Everything here except `document.json` is written by `test-support/src/fixtures.rs` from
`document.json` and the test CAs in `../testca/` (NOT AWS keys). Do not edit these files by hand:
`cargo test --test fixtures` fails if a committed file differs from what the generator produces;
`EC2_IID_REGENERATE=1 cargo test --test fixtures` rewrites them (this README and `index.json`
included).

To accept a fixture, a verifier trusts `../testca/testca.pem` (RSA) or, for the DSA-signed
`pkcs7` ones, `../testca/testca-dsa.pem` for the fixture's format and `us-east-1` (the document's
region), opts into `pkcs7` (`allow_legacy_dsa_sha1`) and `signature` (`allow_legacy_rsa1024`)
and uses the clock `2026-11-01T12:01:00Z` (pendingTime + 1 min); signingTime is
`2026-11-01T12:00:05Z`. A `signature` fixture is the `/signature` text for `document.json`. `index.json` holds the table below for tests, fuzz seeds
and benches.

| file | format | what it is | verifier must |
|---|---|---|---|
";

/// `README.md` of `tests/data/gen/` for `fixtures`.
pub fn readme(fixtures: &[Fixture]) -> String {
    let mut text = README_HEAD.to_owned();
    text.push_str("| `document.json` | - | the signed content (AWS-style pretty JSON, no trailing newline); input, not generated | - |\n");
    for f in fixtures {
        let expect = match f.expect {
            Expect::Accept => "accept".to_owned(),
            Expect::Reject(error) => format!("reject: `{error}`"),
        };
        text.push_str(&format!(
            "| `{}` | {} | {} | {expect} |\n",
            f.file, f.format, f.note
        ));
    }
    text
}

/// Every generated file of `tests/data/gen/` (the blobs, `index.json`, `README.md`) with its
/// exact bytes.
pub fn generated_files() -> Vec<(&'static str, Vec<u8>)> {
    let blobs = blob_fixtures();
    let mut files: Vec<(&'static str, Vec<u8>)> =
        blobs.iter().map(|f| (f.file, f.bytes.clone())).collect();
    files.push(("index.json", index_json(&blobs).into_bytes()));
    files.push(("README.md", readme(&blobs).into_bytes()));
    files
}
