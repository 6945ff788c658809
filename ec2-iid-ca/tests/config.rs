//! Setup: the profile's checks (trust domain, template, TTL) and the CA's (chain, key).
#![cfg(test)]

mod common;

use std::time::Duration;

use common::{Ca, root, utc};
use ec2_iid_ca::{ConfigError, DEFAULT_ID_TEMPLATE, Issuer, Profile};

fn template_error(template: &str) -> String {
    let err = Profile::builder("example.org")
        .id_template(template)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), "id_template", "{template}: {err:?}");
    let text = err.to_string();
    assert!(text.contains("SPIFFE ID template"), "{text}");
    text
}

#[test]
fn defaults() {
    let p = Profile::builder("example.org").build().unwrap();
    assert_eq!(p.id_template(), DEFAULT_ID_TEMPLATE);
    assert_eq!(p.ttl(), Duration::from_secs(3600));
    assert!(!p.dns_san() && !p.server_auth());
}

#[test]
fn template_errors_name_the_template_and_what_to_write() {
    let text = template_error("/ec2/{acount}");
    assert!(
        text.contains("{acount}") && text.contains("{instance_id}"),
        "{text}"
    );
    let text = template_error("/ec2/{account");
    assert!(text.contains("unbalanced"), "{text}");
    assert!(template_error("/ec2/account}").contains("unbalanced"));
    assert!(template_error("/ec2/{{account}}").contains("unbalanced"));
    let text = template_error("spiffe://example.org/ec2/{account}");
    assert!(text.contains("only the path"), "{text}");
    assert!(template_error("ec2/{account}").contains("start with `/`"));
    for bad in [
        "/",
        "/ec2//{account}",
        "/ec2/{account}/",
        "/ec2/../{account}",
        "/./x",
    ] {
        let text = template_error(bad);
        assert!(
            text.contains(DEFAULT_ID_TEMPLATE),
            "says what to write: {text}"
        );
    }
    assert!(template_error("/ec2 /{account}").contains("character"));
    assert!(template_error("/ec2/é").contains("character"));
    template_error(&format!("/{}", "a".repeat(1100)));
    // Fine: literals around placeholders, uppercase letters in the path.
    Profile::builder("example.org")
        .id_template("/Nodes/x-{account}.{region}_y/{rule}")
        .build()
        .unwrap();
}

#[test]
fn trust_domain_rules() {
    for good in ["example.org", "a", "prod_1.example-2.org"] {
        Profile::builder(good).build().unwrap();
    }
    for bad in [
        "",
        "Example.org",
        "example.org/x",
        "exa mple",
        "ex:8080",
        &"a".repeat(256),
    ] {
        let err = Profile::builder(bad).build().unwrap_err();
        assert_eq!(err.kind(), "trust_domain", "{bad:?}");
        assert!(err.to_string().contains("lowercase"), "{err}");
    }
}

#[test]
fn ttl_from_a_minute_to_a_day() {
    for ok in [60, 3600, 24 * 3600] {
        Profile::builder("example.org")
            .ttl(Duration::from_secs(ok))
            .build()
            .unwrap();
    }
    for bad in [0, 59, 24 * 3600 + 1] {
        let err = Profile::builder("example.org")
            .ttl(Duration::from_secs(bad))
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::Ttl {
                ttl: Duration::from_secs(bad)
            }
        );
        assert_eq!(err.kind(), "cert_ttl");
    }
}

#[test]
fn ca_chain_errors() {
    let ca = root();
    let kind = |chain: &str, key: &str| Issuer::from_pem(chain, key).unwrap_err().kind();
    assert_eq!(kind("", &ca.key_pem), "ca_chain");
    assert_eq!(kind("garbage", &ca.key_pem), "ca_chain");
    assert_eq!(
        kind(&common::pem("CERTIFICATE", b"not der"), &ca.key_pem),
        "ca_chain"
    );
    let err = Issuer::from_pem(&format!("{}{}", ca.pem, ca.key_pem), &ca.key_pem).unwrap_err();
    assert_eq!(err.kind(), "ca_chain");
    assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    assert!(
        !err.to_string().contains(&ca.key_pem[30..60]),
        "no key in errors"
    );
    assert_eq!(kind(&ca.pem.repeat(9), &ca.key_pem), "ca_chain");

    // Out of order: the root before the intermediate.
    let int = ca.intermediate("int", &rcgen::PKCS_ECDSA_P256_SHA256, utc(2030, 1, 1, 0, 0));
    let err = Issuer::from_pem(&format!("{}{}", ca.pem, int.pem), &ca.key_pem).unwrap_err();
    assert_eq!(err, ConfigError::CaChainOrder { index: 0, next: 1 });
    assert_eq!(err.kind(), "ca_chain_order");
}

#[test]
fn ca_key_errors() {
    let ca = root();
    let other = root();
    let err = Issuer::from_pem(&ca.pem, &other.key_pem).unwrap_err();
    assert_eq!(err.kind(), "ca_key_mismatch");
    assert!(err.to_string().contains("ec2-iid-ca test root"), "{err}");
    assert!(!err.to_string().contains(&other.key_pem[30..60]));

    for bad in [
        "",
        "garbage",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    ] {
        let err = Issuer::from_pem(&ca.pem, bad).unwrap_err();
        assert_eq!(err.kind(), "ca_key", "{bad:?}: {err:?}");
    }
    let err = Issuer::from_pem(
        &ca.pem,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");

    // SEC1 (`EC PRIVATE KEY`) after an `EC PARAMETERS` block, as `openssl ecparam -genkey`
    // writes it, and PKCS#1 RSA.
    let ec = common::ec_key(openssl::nid::Nid::X9_62_PRIME256V1);
    let sec1 = String::from_utf8(ec.ec_key().unwrap().private_key_to_pem().unwrap()).unwrap();
    let with_params = format!(
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{sec1}"
    );
    let ec_ca = self_signed_openssl(&ec);
    Issuer::from_pem(&ec_ca, &with_params).unwrap();
    let rsa = common::rsa_key(2048);
    let pkcs1 = String::from_utf8(rsa.rsa().unwrap().private_key_to_pem().unwrap()).unwrap();
    Issuer::from_pem(&self_signed_openssl(&rsa), &pkcs1).unwrap();
}

#[test]
fn a_leaf_is_not_a_ca() {
    let ca = root();
    let issuer = Issuer::from_pem(&ca.pem, &ca.key_pem).unwrap();
    let (csr, key) = common::csr_pem(&rcgen::PKCS_ECDSA_P256_SHA256);
    let issued = issuer
        .issue(
            &common::outcome(),
            &ec2_iid_ca::Csr::from_pem(&csr).unwrap(),
            &Profile::builder("example.org").build().unwrap(),
            common::now(),
            [1; 16],
        )
        .unwrap();
    let err = Issuer::from_pem(&issued.chain_pem, &key.serialize_pem()).unwrap_err();
    assert_eq!(err.kind(), "ca_cert_not_ca");
    assert!(err.to_string().contains("CA:TRUE"), "{err}");

    // A CA certificate whose keyUsage lacks keyCertSign.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).unwrap();
    let err = Issuer::from_pem(&cert.pem(), &key.serialize_pem()).unwrap_err();
    assert_eq!(err.kind(), "ca_cert_not_ca");
    assert!(err.to_string().contains("keyCertSign"), "{err}");
    let _ = Ca::root; // (used by other test crates)
}

/// A self-signed CA certificate for an OpenSSL key.
fn self_signed_openssl(key: &openssl::pkey::PKey<openssl::pkey::Private>) -> String {
    use openssl::x509::extension::BasicConstraints;
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "openssl ca").unwrap();
    let name = name.build();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::from_unix(1_767_225_600).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::from_unix(2_082_758_400).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
    String::from_utf8(b.build().to_pem().unwrap()).unwrap()
}
