//! Renewal: a certificate presented again is checked against the CA, and the new one carries the
//! same identity for the new key. Each `RenewError` variant has a case here.
#![cfg(test)]

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::{csr_pem, now, outcome, root, utc};
use ec2_iid_ca::{Csr, Issued, Issuer, MAX_CERT_LEN, Presented, Profile, RenewError};
use rcgen::{CertificateParams, DnType, IsCa, KeyPair, SanType};
use x509_parser::prelude::{FromDer, X509Certificate};

const SERIAL: [u8; 16] = [0x11; 16];
const HOST_ID: &str = "123456789012-i-0123456789abcdef0";
const SPIFFE_ID: &str = "spiffe://example.org/ec2/123456789012/us-east-1/i-0123456789abcdef0";

fn issuer() -> Issuer {
    Issuer::from_pem(
        include_str!("data/ca/intermediate-chain.pem"),
        include_str!("data/ca/intermediate.key"),
    )
    .unwrap()
}

fn profile(dns_san: bool) -> Profile {
    Profile::builder("example.org")
        .dns_san(dns_san)
        .build()
        .unwrap()
}

fn new_csr() -> Csr {
    Csr::from_pem(&csr_pem(&rcgen::PKCS_ECDSA_P256_SHA256).0).unwrap()
}

/// A certificate of the joined fixture instance, issued by `issuer` at `now()`.
fn joined(issuer: &Issuer, dns_san: bool) -> Issued {
    issuer
        .issue(&outcome(), &new_csr(), &profile(dns_san), now(), SERIAL)
        .unwrap()
}

fn check(issuer: &Issuer, der: &[u8], at: DateTime<Utc>) -> Result<Presented, RenewError> {
    issuer.check_presented(der, at)
}

#[test]
fn a_renewed_certificate_keeps_the_identity_for_the_new_key() {
    let issuer = issuer();
    let first = joined(&issuer, true);
    let later = now() + TimeDelta::minutes(40);
    let presented = check(&issuer, &first.certificate_der, later).unwrap();
    assert_eq!(presented.host_id(), HOST_ID);
    assert_eq!(presented.spiffe_id(), SPIFFE_ID);
    assert_eq!(presented.dns_name(), Some("ip-10-0-0-10.ec2.internal"));
    assert_eq!(presented.serial(), first.serial);
    assert_eq!(presented.issued_at(), now());
    assert_eq!(presented.not_after(), first.not_after);

    let csr = new_csr();
    let renewed = issuer
        .renew(&presented, &csr, &profile(true), later, [0x22; 16])
        .unwrap();
    assert_eq!(renewed.spiffe_id, SPIFFE_ID);
    assert_eq!(
        renewed.dns_name.as_deref(),
        Some("ip-10-0-0-10.ec2.internal")
    );
    assert_ne!(renewed.serial, first.serial);
    assert_eq!(renewed.not_before, later - TimeDelta::minutes(1));
    assert_eq!(renewed.not_after, later + TimeDelta::hours(1));
    let (_, cert) = X509Certificate::from_der(&renewed.certificate_der).unwrap();
    assert_eq!(cert.public_key().raw, csr.public_key_der(), "the new key");
    // The renewed certificate is this CA's, with the same names: it can renew in turn.
    let again = check(&issuer, &renewed.certificate_der, later).unwrap();
    assert_eq!(
        (again.host_id(), again.spiffe_id(), again.serial()),
        (HOST_ID, SPIFFE_ID, renewed.serial.as_str())
    );
    assert!(
        renewed.chain_pem.ends_with(
            include_str!("data/ca/intermediate-chain.pem")
                .split_inclusive("-----END CERTIFICATE-----\n")
                .next()
                .unwrap()
        ),
        "the chain carries the intermediate"
    );
}

#[test]
fn the_dns_name_is_dropped_when_the_profile_no_longer_asks() {
    let issuer = issuer();
    let presented = check(&issuer, &joined(&issuer, true).certificate_der, now()).unwrap();
    let renewed = issuer
        .renew(&presented, &new_csr(), &profile(false), now(), SERIAL)
        .unwrap();
    assert_eq!(renewed.dns_name, None);
}

#[test]
fn another_trust_domain_refuses_renewal() {
    let issuer = issuer();
    let presented = check(&issuer, &joined(&issuer, false).certificate_der, now()).unwrap();
    for domain in ["other.org", "example.or", "example.org.evil"] {
        let other = Profile::builder(domain).build().unwrap();
        let err = issuer
            .renew(&presented, &new_csr(), &other, now(), SERIAL)
            .unwrap_err();
        assert_eq!(err.kind(), "cert_other_trust_domain", "{domain}");
        assert!(err.to_string().contains("join again"), "{err}");
    }
}

#[test]
fn validity_is_checked_at_now() {
    let issuer = issuer();
    let first = joined(&issuer, false);
    let err = check(&issuer, &first.certificate_der, first.not_after).unwrap_err();
    assert_eq!(
        err,
        RenewError::Expired {
            not_after: first.not_after
        }
    );
    assert_eq!(err.kind(), "cert_expired");
    let early = first.not_before - TimeDelta::seconds(1);
    let err = check(&issuer, &first.certificate_der, early).unwrap_err();
    assert_eq!(err.kind(), "cert_not_yet_valid");
    assert!(check(&issuer, &first.certificate_der, first.not_before).is_ok());
}

#[test]
fn a_certificate_of_another_ca_is_not_issued_here() {
    let other_root = root();
    let other = Issuer::from_pem(&other_root.pem, &other_root.key_pem).unwrap();
    let err = check(&issuer(), &joined(&other, false).certificate_der, now()).unwrap_err();
    assert_eq!(err.kind(), "cert_not_issued_here");
    assert!(err.to_string().contains("ec2-iid-ca test root"), "{err}");
}

#[test]
fn a_certificate_naming_this_ca_but_signed_by_another_key_is_refused() {
    let issuer = issuer();
    let mut der = joined(&issuer, false).certificate_der;
    // The signature is the last bytes of the DER: flip one.
    let last = der.len() - 1;
    der[last] ^= 1;
    assert_eq!(
        check(&issuer, &der, now()).unwrap_err(),
        RenewError::BadSignature
    );

    // A CA of the same name with another key (an impostor intermediate).
    let real_der = common::der(include_str!("data/ca/intermediate-chain.pem"));
    let (impostor_pem, impostor_key) = impostor_of(&real_der);
    let forged = Issuer::from_pem(&impostor_pem, &impostor_key).unwrap();
    let forged_der = joined(&forged, false).certificate_der;
    let real = X509Certificate::from_der(&real_der).unwrap().1;
    let forged_cert = X509Certificate::from_der(&forged_der).unwrap().1;
    assert_eq!(forged_cert.issuer().as_raw(), real.subject().as_raw());
    assert_eq!(
        check(&issuer, &forged_der, now()).unwrap_err(),
        RenewError::BadSignature
    );
}

/// A self-signed CA with the subject of `ca_der` and a new P-384 key (made with OpenSSL, which
/// copies the subject's encoding as it is): its certificate and key, PEM.
fn impostor_of(ca_der: &[u8]) -> (String, String) {
    use openssl::x509::extension::{BasicConstraints, KeyUsage};
    let real = openssl::x509::X509::from_der(ca_der).unwrap();
    let key = common::ec_key(openssl::nid::Nid::SECP384R1);
    let mut cert = openssl::x509::X509Builder::new().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(real.subject_name()).unwrap();
    cert.set_issuer_name(real.subject_name()).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(real.not_before()).unwrap();
    cert.set_not_after(real.not_after()).unwrap();
    let serial = openssl::bn::BigNum::from_u32(7)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    cert.set_serial_number(&serial).unwrap();
    cert.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    cert.append_extension(KeyUsage::new().key_cert_sign().build().unwrap())
        .unwrap();
    cert.sign(&key, openssl::hash::MessageDigest::sha384())
        .unwrap();
    let pem = String::from_utf8(cert.build().to_pem().unwrap()).unwrap();
    let key = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (pem, key)
}

#[test]
fn malformed_and_oversized_input_is_refused_before_use() {
    let issuer = issuer();
    for bad in [&b""[..], b"\x30\x03\x02\x01\x00", b"not a certificate"] {
        assert_eq!(
            check(&issuer, bad, now()).unwrap_err().kind(),
            "cert_malformed"
        );
    }
    let mut trailing = joined(&issuer, false).certificate_der;
    trailing.push(0);
    let err = check(&issuer, &trailing, now()).unwrap_err();
    assert_eq!(err.kind(), "cert_malformed");
    assert!(err.to_string().contains("1 bytes after"), "{err}");
    let huge = vec![0x30; MAX_CERT_LEN + 1];
    assert_eq!(
        check(&issuer, &huge, now()).unwrap_err(),
        RenewError::TooLarge {
            len: MAX_CERT_LEN + 1,
            max: MAX_CERT_LEN
        }
    );
}

/// A certificate signed by the fixture CA's own key, with `params`' names.
fn signed_here(params: &CertificateParams) -> Vec<u8> {
    let ca_key = KeyPair::from_pem(include_str!("data/ca/intermediate.key")).unwrap();
    let ca_der = common::der(include_str!("data/ca/intermediate-chain.pem"));
    let ca = rcgen::Issuer::from_ca_cert_der(&ca_der.as_slice().into(), ca_key).unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    params.signed_by(&key, &ca).unwrap().der().to_vec()
}

fn leaf_params(cn: Option<&str>, sans: Vec<SanType>, is_ca: IsCa) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.subject_alt_names = sans;
    params.is_ca = is_ca;
    params.not_before = time::OffsetDateTime::from_unix_timestamp(now().timestamp() - 60).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(now().timestamp() + 3600).unwrap();
    params
}

#[test]
fn only_instance_certificates_renew() {
    let uri = || SanType::URI(SPIFFE_ID.try_into().unwrap());
    let cases = [
        ("no CN", leaf_params(None, vec![uri()], IsCa::ExplicitNoCa)),
        (
            "no SAN",
            leaf_params(Some(HOST_ID), vec![], IsCa::ExplicitNoCa),
        ),
        (
            "not spiffe",
            leaf_params(
                Some(HOST_ID),
                vec![SanType::URI("https://example.org/x".try_into().unwrap())],
                IsCa::ExplicitNoCa,
            ),
        ),
        (
            "two URIs",
            leaf_params(Some(HOST_ID), vec![uri(), uri()], IsCa::ExplicitNoCa),
        ),
        (
            "an IP SAN",
            leaf_params(
                Some(HOST_ID),
                vec![uri(), SanType::IpAddress([10, 0, 0, 1].into())],
                IsCa::ExplicitNoCa,
            ),
        ),
        (
            "a CA",
            leaf_params(
                Some(HOST_ID),
                vec![uri()],
                IsCa::Ca(rcgen::BasicConstraints::Unconstrained),
            ),
        ),
    ];
    let issuer = issuer();
    for (what, params) in cases {
        let err = check(&issuer, &signed_here(&params), now()).unwrap_err();
        assert_eq!(err.kind(), "cert_not_instance", "{what}: {err}");
    }
    // The same construction with the right names is accepted: the cases fail for their names.
    let ok = leaf_params(Some(HOST_ID), vec![uri()], IsCa::ExplicitNoCa);
    assert_eq!(
        check(&issuer, &signed_here(&ok), now()).unwrap().host_id(),
        HOST_ID
    );
}

#[test]
fn an_expired_ca_cannot_renew() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let presented = check(&issuer, &joined(&issuer, false).certificate_der, now()).unwrap();
    let err = issuer
        .renew(
            &presented,
            &new_csr(),
            &profile(false),
            utc(2036, 1, 1, 0, 0),
            SERIAL,
        )
        .unwrap_err();
    assert_eq!(err.kind(), "ca_expired");
}
