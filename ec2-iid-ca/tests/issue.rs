//! The certificate profile, field by field, read back with x509-parser and checked with OpenSSL.
#![cfg(test)]

mod common;

use chrono::TimeDelta;
use common::{Ca, csr_pem, now, outcome, outcome_in, root, utc};
use ec2_iid_ca::{Csr, IssueError, Issued, Issuer, KeyPolicy, Profile};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

const SERIAL: [u8; 16] = [0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

fn issue(issuer: &Issuer, profile: &Profile) -> Issued {
    let (pem, _) = csr_pem(&rcgen::PKCS_ECDSA_P256_SHA256);
    let csr = Csr::from_pem(&pem).unwrap();
    issuer
        .issue(&outcome(), &csr, profile, now(), SERIAL)
        .unwrap()
}

fn default_profile() -> Profile {
    Profile::builder("example.org").build().unwrap()
}

fn parse(issued: &Issued) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(&issued.certificate_der).unwrap();
    assert!(rest.is_empty());
    cert
}

fn sans(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let (mut uris, mut dns) = (Vec::new(), Vec::new());
    for name in &san.value.general_names {
        match name {
            GeneralName::URI(u) => uris.push((*u).to_owned()),
            GeneralName::DNSName(d) => dns.push((*d).to_owned()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    (uris, dns)
}

/// Verifies `leaf_chain_pem` against `bundle_pem` with OpenSSL at `at`.
fn openssl_verify(chain_pem: &str, bundle_pem: &str, at: chrono::DateTime<chrono::Utc>) {
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::{X509, X509StoreContext};
    let mut certs = X509::stack_from_pem(chain_pem.as_bytes())
        .unwrap()
        .into_iter();
    let leaf = certs.next().unwrap();
    let mut untrusted = Stack::new().unwrap();
    for c in certs {
        untrusted.push(c).unwrap();
    }
    let mut store = X509StoreBuilder::new().unwrap();
    for c in X509::stack_from_pem(bundle_pem.as_bytes()).unwrap() {
        store.add_cert(c).unwrap();
    }
    let mut param = openssl::x509::verify::X509VerifyParam::new().unwrap();
    param.set_time(at.timestamp());
    store.set_param(&param).unwrap();
    let store = store.build();
    let mut ctx = X509StoreContext::new().unwrap();
    let ok = ctx
        .init(&store, &leaf, &untrusted, |c| {
            let ok = c.verify_cert()?;
            assert!(ok, "openssl verify: {}", c.error());
            Ok(ok)
        })
        .unwrap();
    assert!(ok);
}

#[test]
fn subject_cn_is_host_id_and_uri_san_the_default_spiffe_id() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let issued = issue(&issuer, &default_profile());
    let cert = parse(&issued);
    let cns: Vec<_> = cert
        .subject()
        .iter_common_name()
        .map(|cn| cn.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        cns,
        ["123456789012-i-0123456789abcdef0"],
        "the CSR's CN=admin is ignored"
    );
    assert_eq!(cert.subject().iter().count(), 1, "CN only");
    let id = "spiffe://example.org/ec2/123456789012/us-east-1/i-0123456789abcdef0";
    assert_eq!(
        sans(&cert),
        (vec![id.to_owned()], vec![]),
        "the CSR's DNS SAN is ignored"
    );
    assert_eq!(issued.spiffe_id, id);
    assert_eq!(issued.dns_name, None);
}

#[test]
fn custom_template_renders_every_placeholder() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let profile = Profile::builder("prod.example_1-a")
        .id_template("/r{rule}/{host_id}/x.{region}/{account}_{instance_id}")
        .build()
        .unwrap();
    let issued = issue(&issuer, &profile);
    assert_eq!(
        sans(&parse(&issued)).0,
        [
            "spiffe://prod.example_1-a/r0/123456789012-i-0123456789abcdef0/x.us-east-1/\
          123456789012_i-0123456789abcdef0"
        ]
    );
}

#[test]
fn dns_san_in_us_east_1_and_elsewhere() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let profile = Profile::builder("example.org")
        .dns_san(true)
        .build()
        .unwrap();
    let (pem, _) = csr_pem(&rcgen::PKCS_ED25519);
    let csr = Csr::from_pem(&pem).unwrap();

    let issued = issuer
        .issue(&outcome(), &csr, &profile, now(), SERIAL)
        .unwrap();
    assert_eq!(sans(&parse(&issued)).1, ["ip-10-0-0-10.ec2.internal"]);
    assert_eq!(
        issued.dns_name.as_deref(),
        Some("ip-10-0-0-10.ec2.internal")
    );

    let eu = outcome_in("eu-west-1", "172.31.5.200");
    let issued = issuer.issue(&eu, &csr, &profile, now(), SERIAL).unwrap();
    let (uris, dns) = sans(&parse(&issued));
    assert_eq!(dns, ["ip-172-31-5-200.eu-west-1.compute.internal"]);
    assert_eq!(
        uris,
        ["spiffe://example.org/ec2/123456789012/eu-west-1/i-0123456789abcdef0"]
    );

    let no_ip = outcome_in("eu-west-1", "fe80::1");
    let err = issuer
        .issue(&no_ip, &csr, &profile, now(), SERIAL)
        .unwrap_err();
    assert_eq!(
        err,
        IssueError::NoPrivateIp {
            private_ip: "fe80::1".to_owned()
        }
    );
    assert_eq!(err.kind(), "no_private_ip");
}

#[test]
fn eku_client_auth_and_server_auth_when_asked() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    for server_auth in [false, true] {
        let profile = Profile::builder("example.org")
            .server_auth(server_auth)
            .build()
            .unwrap();
        let issued = issue(&issuer, &profile);
        let cert = parse(&issued);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth);
        assert_eq!(eku.server_auth, server_auth);
        assert!(!eku.any && !eku.code_signing && eku.other.is_empty());
    }
}

#[test]
fn validity_is_now_minus_a_minute_to_ttl_capped_at_the_ca() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let issued = issue(&issuer, &default_profile());
    let validity = parse(&issued).validity().clone();
    assert_eq!(
        validity.not_before.timestamp(),
        (now() - TimeDelta::minutes(1)).timestamp()
    );
    assert_eq!(
        validity.not_after.timestamp(),
        (now() + TimeDelta::hours(1)).timestamp()
    );
    assert_eq!(issued.not_before, now() - TimeDelta::minutes(1));
    assert_eq!(issued.not_after, now() + TimeDelta::hours(1));

    let day = Profile::builder("example.org")
        .ttl(std::time::Duration::from_secs(24 * 3600))
        .build()
        .unwrap();
    let issued = issue(&issuer, &day);
    assert_eq!(
        parse(&issued).validity().not_after.timestamp(),
        (now() + TimeDelta::hours(24)).timestamp()
    );

    // A CA ending in 30 minutes issues certificates ending with it.
    let ending = Ca::root(
        "ending",
        &rcgen::PKCS_ECDSA_P256_SHA256,
        utc(2026, 1, 1, 0, 0),
        utc(2026, 11, 1, 12, 31),
    );
    let issuer = Issuer::from_pem(&ending.pem, &ending.key_pem).unwrap();
    assert_eq!(issuer.not_after(), utc(2026, 11, 1, 12, 31));
    let issued = issue(&issuer, &default_profile());
    assert_eq!(issued.not_after, utc(2026, 11, 1, 12, 31));
    assert_eq!(
        parse(&issued).validity().not_after.timestamp(),
        utc(2026, 11, 1, 12, 31).timestamp()
    );

    // An expired CA issues nothing.
    let expired = Ca::root(
        "expired",
        &rcgen::PKCS_ECDSA_P256_SHA256,
        utc(2026, 1, 1, 0, 0),
        utc(2026, 11, 1, 12, 0),
    );
    let issuer = Issuer::from_pem(&expired.pem, &expired.key_pem).unwrap();
    let (pem, _) = csr_pem(&rcgen::PKCS_ECDSA_P256_SHA256);
    let csr = Csr::from_pem(&pem).unwrap();
    let err = issuer
        .issue(&outcome(), &csr, &default_profile(), now(), SERIAL)
        .unwrap_err();
    assert_eq!(
        err,
        IssueError::CaExpired {
            not_after: utc(2026, 11, 1, 12, 0)
        }
    );
    assert_eq!(err.kind(), "ca_expired");
}

#[test]
fn serial_is_the_given_bytes_as_a_positive_128_bit_integer() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let issued = issue(&issuer, &default_profile());
    let cert = parse(&issued);
    let mut expected = SERIAL;
    expected[0] = 0x7f;
    assert_eq!(
        cert.tbs_certificate.raw_serial(),
        expected,
        "16 bytes, no sign byte"
    );
    assert_eq!(cert.serial.to_bytes_be(), expected);
    assert_eq!(issued.serial, "7f0102030405060708090a0b0c0d0e0f");

    let (pem, _) = csr_pem(&rcgen::PKCS_ECDSA_P256_SHA256);
    let csr = Csr::from_pem(&pem).unwrap();
    let mut small = [0u8; 16];
    small[15] = 0x80;
    let issued = issuer
        .issue(&outcome(), &csr, &default_profile(), now(), small)
        .unwrap();
    assert_eq!(issued.serial, "80");
    assert_eq!(parse(&issued).serial.to_bytes_be(), [0x80]);
}

#[test]
fn leaf_constraints_key_usage_and_key_identifiers() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let issued = issue(&issuer, &default_profile());
    let cert = parse(&issued);
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(!bc.value.ca);
    assert!(bc.critical);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature());
    assert!(!ku.key_encipherment() && !ku.key_cert_sign());

    let ca_cert = X509Certificate::from_der(&ca.der).unwrap().1;
    let ca_ski = ca_cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .unwrap();
    let mut ski = None;
    let mut aki = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(k) => {
                aki = Some(k.key_identifier.as_ref().unwrap().0.to_vec());
            }
            _ => {}
        }
    }
    assert!(!ski.unwrap().is_empty());
    assert_eq!(aki.unwrap(), ca_ski);
    assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
}

#[test]
fn rsa_key_gets_key_encipherment() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let pem = common::openssl_csr(&common::rsa_key(2048));
    let csr = Csr::from_pem_with(&pem, KeyPolicy::AllowRsa).unwrap();
    let issued = issuer
        .issue(&outcome(), &csr, &default_profile(), now(), SERIAL)
        .unwrap();
    let cert = parse(&issued);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment());
    openssl_verify(&issued.chain_pem, issuer.bundle_pem(), now());
}

#[test]
fn the_certificate_is_for_the_csr_key_and_verifies_against_the_ca() {
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ED25519,
    ] {
        let ca = Ca::root("root", alg, utc(2026, 1, 1, 0, 0), utc(2036, 1, 1, 0, 0));
        let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
        let (pem, key) = csr_pem(alg);
        let csr = Csr::from_pem(&pem).unwrap();
        let issued = issuer
            .issue(&outcome(), &csr, &default_profile(), now(), SERIAL)
            .unwrap();
        let cert = parse(&issued);
        assert_eq!(cert.public_key().raw, csr.public_key_der());
        assert_eq!(
            &*cert.public_key().subject_public_key.data,
            key.public_key_raw()
        );
        let ca_cert = X509Certificate::from_der(&ca.der).unwrap().1;
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(
            issued.chain_pem,
            common::pem("CERTIFICATE", &issued.certificate_der)
        );
        assert_eq!(issuer.bundle_pem(), common::pem("CERTIFICATE", &ca.der));
        openssl_verify(&issued.chain_pem, issuer.bundle_pem(), now());
    }
}

#[test]
fn an_intermediate_signs_and_is_returned_in_the_chain_the_root_is_the_bundle() {
    let root = root();
    let intermediate = root.intermediate(
        "ec2-iid-ca test intermediate",
        &rcgen::PKCS_ECDSA_P384_SHA384,
        utc(2030, 1, 1, 0, 0),
    );
    let chain = format!("{}{}", intermediate.pem, root.pem);
    let issuer = Issuer::from_pem(&chain, &intermediate.key_pem).unwrap();
    assert_eq!(issuer.bundle_pem(), common::pem("CERTIFICATE", &root.der));
    let issued = issue(&issuer, &default_profile());
    let certs = openssl::x509::X509::stack_from_pem(issued.chain_pem.as_bytes()).unwrap();
    assert_eq!(certs.len(), 2, "leaf + intermediate, not the root");
    assert_eq!(certs[0].to_der().unwrap(), issued.certificate_der);
    assert_eq!(certs[1].to_der().unwrap(), intermediate.der);
    let cert = parse(&issued);
    let int_cert = X509Certificate::from_der(&intermediate.der).unwrap().1;
    cert.verify_signature(Some(int_cert.public_key())).unwrap();
    openssl_verify(&issued.chain_pem, issuer.bundle_pem(), now());

    // The intermediate alone: it is then the bundle, and the chain is the leaf alone.
    let issuer = Issuer::from_pem(&intermediate.pem, &intermediate.key_pem).unwrap();
    assert_eq!(
        issuer.bundle_pem(),
        common::pem("CERTIFICATE", &intermediate.der)
    );
    let issued = issue(&issuer, &default_profile());
    assert_eq!(
        issued.chain_pem,
        common::pem("CERTIFICATE", &issued.certificate_der)
    );
}

#[test]
fn issuer_debug_never_shows_the_key() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let debug = format!("{issuer:?}");
    assert!(debug.contains("ec2-iid-ca test root"), "{debug}");
    let key_b64: String = ca
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!debug.contains(&key_b64[..16]), "{debug}");
    assert!(!debug.to_lowercase().contains("key"), "{debug}");
}

#[test]
fn issuer_is_shared_across_threads_and_times_are_whole_seconds() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Issuer>();
    send_sync::<Profile>();
    send_sync::<Csr>();

    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let (pem, _) = csr_pem(&rcgen::PKCS_ECDSA_P256_SHA256);
    let csr = Csr::from_pem(&pem).unwrap();
    let at = now() + TimeDelta::milliseconds(500);
    let issued = issuer
        .issue(&outcome(), &csr, &default_profile(), at, SERIAL)
        .unwrap();
    let cert = parse(&issued);
    assert_eq!(
        issued.not_before.timestamp(),
        cert.validity().not_before.timestamp()
    );
    assert_eq!(
        issued.not_before,
        now() - TimeDelta::minutes(1),
        "what the certificate says"
    );
    assert_eq!(issued.not_after, now() + TimeDelta::hours(1));
}
