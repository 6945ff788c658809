//! Writes the committed test fixtures under `tests/data/` (test keys, NOT for production):
//! a P-256 root CA and a P-384 intermediate, both valid 2026-01-01 .. 2036-01-01, and a P-256
//! CSR. Keys are random, so each run writes different files; the tests only need them valid.
//!
//! `cargo run -p ec2-iid-ca --example gen_fixtures`
#![allow(
    clippy::unwrap_used,
    reason = "a generator run by hand: a panic is its error report"
)]

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(); // 2026-01-01
    params.not_after = time::OffsetDateTime::from_unix_timestamp(2_082_758_400).unwrap(); // 2036-01-01
    params.use_authority_key_identifier_extension = true;
    params
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let write = |name: &str, text: &str| std::fs::write(format!("{dir}/{name}"), text).unwrap();

    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let root_params = ca_params("ec2-iid-ca test root (NOT for production)");
    let root = root_params.self_signed(&root_key).unwrap();
    let int_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let int_params = ca_params("ec2-iid-ca test intermediate (NOT for production)");
    let int = int_params
        .signed_by(
            &int_key,
            &rcgen::Issuer::from_params(&root_params, &root_key),
        )
        .unwrap();
    write("ca/root.pem", &root.pem());
    write("ca/root.key", &root_key.serialize_pem());
    write(
        "ca/intermediate-chain.pem",
        &format!("{}{}", int.pem(), root.pem()),
    );
    write("ca/intermediate.key", &int_key.serialize_pem());

    let csr_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = CertificateParams::default()
        .serialize_request(&csr_key)
        .unwrap();
    write("p256.csr", &csr.pem().unwrap());
}
