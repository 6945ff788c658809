//! Shared by the tests: joined instances (the core's verifier on the test CA's documents),
//! CAs and CSRs made with rcgen and OpenSSL.
#![cfg(test)]
#![allow(dead_code, reason = "each test crate uses a part")]

use chrono::{DateTime, TimeZone, Utc};
use ec2_iid::ids::InstanceState;
use ec2_iid::{AllowRule, Format, InstanceFacts, JoinOutcome, SignedInput, TrustStore, Verifier};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SignatureAlgorithm,
};

const TESTCA_PEM: &[u8] = include_bytes!("../../../tests/data/testca/testca.pem");
const TESTCA_KEY: &[u8] = include_bytes!("../../../tests/data/testca/testca.key");

/// The clock of the core's fixtures: pendingTime + 1 min.
pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0).unwrap()
}

pub(crate) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// The join of the core's committed /rsa2048 fixture (us-east-1, privateIp 10.0.0.10), as the
/// core's doc example in src/join/lookup.rs makes it.
pub(crate) fn outcome() -> JoinOutcome {
    let mut trust = TrustStore::empty();
    trust
        .add_pem(Format::Rsa2048, TESTCA_PEM, ["us-east-1".parse().unwrap()])
        .unwrap();
    let verifier = Verifier::builder(trust)
        .allow(AllowRule::account("123456789012".parse().unwrap()))
        .build()
        .unwrap();
    let pending = verifier
        .verify(include_bytes!("../../../tests/data/gen/rsa2048.b64"), now())
        .unwrap();
    pending.check_facts(Some(&running(&pending))).unwrap()
}

/// A join from a `/signature` document like the fixture's, in `region` with `private_ip`,
/// signed here with the test CA's key.
pub(crate) fn outcome_in(region: &str, private_ip: &str) -> JoinOutcome {
    let doc = std::str::from_utf8(include_bytes!("../../../tests/data/gen/document.json"))
        .unwrap()
        .replace("\"us-east-1a\"", &format!("\"{region}a\""))
        .replace("\"us-east-1\"", &format!("\"{region}\""))
        .replace("\"10.0.0.10\"", &format!("\"{private_ip}\""));
    let key = PKey::private_key_from_pem(TESTCA_KEY).unwrap();
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &key).unwrap();
    signer.update(doc.as_bytes()).unwrap();
    let sig = openssl::base64::encode_block(&signer.sign_to_vec().unwrap());
    let mut trust = TrustStore::empty();
    trust
        .add_pem(Format::Signature, TESTCA_PEM, [region.parse().unwrap()])
        .unwrap();
    // The /signature pair is the test CA's easiest way to a document of any region; its
    // RSA-1024 format needs the opt-in.
    let verifier = Verifier::builder(trust)
        .allow(AllowRule::account("123456789012".parse().unwrap()))
        .allow_legacy_rsa1024(true)
        .build()
        .unwrap();
    let pending = verifier
        .verify_input(
            SignedInput::Signature {
                document: doc.as_bytes(),
                signature: sig.as_bytes(),
            },
            now(),
        )
        .unwrap();
    pending.check_facts(Some(&running(&pending))).unwrap()
}

fn running(pending: &ec2_iid::PendingJoin<'_>) -> InstanceFacts {
    let doc = pending.document();
    let mut facts = InstanceFacts::new(doc.instance_id.as_str(), InstanceState::Running);
    facts.owner_id = Some(doc.account_id.to_string());
    facts
}

/// A CA made with rcgen: its certificate (DER and PEM) and key (PEM).
pub(crate) struct Ca {
    pub(crate) pem: String,
    pub(crate) der: Vec<u8>,
    pub(crate) key_pem: String,
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    /// A self-signed root, valid from `not_before` to `not_after`.
    pub(crate) fn root(
        name: &str,
        alg: &'static SignatureAlgorithm,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Self {
        let key = KeyPair::generate_for(alg).unwrap();
        let params = ca_params(name, not_before, not_after);
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            params,
            key,
        }
    }

    /// A CA signed by `self`.
    pub(crate) fn intermediate(
        &self,
        name: &str,
        alg: &'static SignatureAlgorithm,
        not_after: DateTime<Utc>,
    ) -> Self {
        let key = KeyPair::generate_for(alg).unwrap();
        let params = ca_params(name, utc(2026, 1, 1, 0, 0), not_after);
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Self {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            params,
            key,
        }
    }
}

fn ca_params(name: &str, not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before.timestamp()).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after.timestamp()).unwrap();
    params.use_authority_key_identifier_extension = true;
    params
}

/// The usual test CA: a P-256 root valid 2026..2036.
pub(crate) fn root() -> Ca {
    Ca::root(
        "ec2-iid-ca test root",
        &rcgen::PKCS_ECDSA_P256_SHA256,
        utc(2026, 1, 1, 0, 0),
        utc(2036, 1, 1, 0, 0),
    )
}

/// A CSR made with rcgen, asking for a subject and SANs the issuer must ignore.
pub(crate) fn csr_pem(alg: &'static SignatureAlgorithm) -> (String, KeyPair) {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut params = CertificateParams::new(vec!["evil.example.com".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "admin");
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    (pem, key)
}

/// A CSR made with OpenSSL for `key` (RSA or another curve), SHA-256.
pub(crate) fn openssl_csr(key: &PKey<Private>) -> String {
    let mut req = openssl::x509::X509ReqBuilder::new().unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "openssl").unwrap();
    req.set_subject_name(&name.build()).unwrap();
    req.set_pubkey(key).unwrap();
    req.sign(key, MessageDigest::sha256()).unwrap();
    String::from_utf8(req.build().to_pem().unwrap()).unwrap()
}

pub(crate) fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(openssl::rsa::Rsa::generate(bits).unwrap()).unwrap()
}

pub(crate) fn ec_key(nid: openssl::nid::Nid) -> PKey<Private> {
    let group = openssl::ec::EcGroup::from_curve_name(nid).unwrap();
    PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap()
}

/// PEM of DER bytes.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = openssl::base64::encode_block(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER of a PEM block.
pub(crate) fn der(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents
}
