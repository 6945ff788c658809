//! What a configured verifier reports about itself, and the token and key helpers a
//! configuration is built from.
#![cfg(test)] // clippy.toml says why

use core::time::Duration;

use chrono::{TimeZone as _, Utc};
use ec2_iid::internal::RsaVerifyingKey;
use ec2_iid::token::{IidTtl, parse_go_duration};
use ec2_iid::{AllowRule, Error, Format, TokenSpec, TrustStore, Verifier};
use ec2_iid_test_support::fixtures;
use sha2::{Digest as _, Sha256};

fn store() -> TrustStore {
    let mut store = TrustStore::empty();
    store
        .add_pem(
            Format::Rsa2048,
            fixtures::test_ca().cert_pem.as_bytes(),
            ["us-east-1".parse().unwrap(), "eu-west-1".parse().unwrap()],
        )
        .unwrap();
    store
}

#[test]
fn verifier_reports_its_configuration() {
    let rules = vec![
        AllowRule::account("222222222222".parse().unwrap()),
        AllowRule::account("333333333333".parse().unwrap()),
        AllowRule::account("123456789012".parse().unwrap()),
    ];
    let verifier = Verifier::builder(store())
        .allow(rules[0].clone())
        .allow(rules[1].clone())
        .allow(rules[2].clone())
        .ttl(Duration::from_secs(90))
        .build()
        .unwrap();
    assert_eq!(verifier.rules(), rules);
    assert_eq!(verifier.ttl(), Duration::from_secs(90));
    assert_eq!(verifier.trust_store().len(), 1);
    // Defaults: Teleport's five minutes.
    let default = Verifier::builder(store())
        .allow(rules[2].clone())
        .build()
        .unwrap();
    assert_eq!(default.ttl(), ec2_iid::token::DEFAULT_TTL);
    assert_eq!(default.ttl(), Duration::from_secs(300));
    // Strict by default: `/pkcs7` only when asked for.
    assert!(!default.options().legacy_dsa_sha1_allowed());
    let legacy = Verifier::builder(store())
        .allow(rules[2].clone())
        .allow_legacy_dsa_sha1(true)
        .build()
        .unwrap();
    assert!(legacy.options().legacy_dsa_sha1_allowed());
}

#[test]
fn join_names_the_rule_that_matched() {
    let verifier = Verifier::builder(store())
        .allow(AllowRule::account("222222222222".parse().unwrap()))
        .allow(
            AllowRule::account("123456789012".parse().unwrap())
                .with_regions(["eu-west-1".parse().unwrap()]),
        )
        .allow(AllowRule::role(
            "arn:aws:iam::123456789012:role/r".parse().unwrap(),
        ))
        .build()
        .unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0).unwrap();
    let blob = std::fs::read(fixtures::data_path("gen/rsa2048.b64")).unwrap();
    let join = verifier.verify(&blob, now).unwrap();
    assert_eq!(join.matched_rule(), 2);
    let role = join.rule().aws_role().map(ec2_iid::ids::RoleArn::as_str);
    assert_eq!(role, Some("arn:aws:iam::123456789012:role/r"));
    let query = join.query();
    assert_eq!(
        query.role_arn.as_ref().map(ec2_iid::ids::RoleArn::as_str),
        Some("arn:aws:iam::123456789012:role/r")
    );
}

#[test]
fn spec_from_rules_is_an_ec2_spec() {
    let spec = TokenSpec::from_rules(vec![AllowRule::account("123456789012".parse().unwrap())]);
    assert_eq!(spec.join_method, "ec2");
    assert_eq!(spec.aws_iid_ttl, IidTtl::default());
    assert_eq!(
        spec.validate().unwrap().spec().aws_iid_ttl.get(),
        ec2_iid::token::DEFAULT_TTL
    );
}

#[test]
fn lookup_bounds_are_any_of_vpc_subnet_or_instance_profile() {
    let base = AllowRule::account("123456789012".parse().unwrap());
    assert!(!base.has_lookup_bounds());
    let vpc = base.clone().with_vpc_ids(["vpc-1234abcd".parse().unwrap()]);
    let subnet = base
        .clone()
        .with_subnet_ids(["subnet-1234abcd".parse().unwrap()]);
    let profile =
        base.clone()
            .with_instance_profile_arns(["arn:aws:iam::123456789012:instance-profile/*"
                .parse()
                .unwrap()]);
    for rule in [vpc, subnet, profile] {
        assert!(rule.has_lookup_bounds(), "{rule:?}");
    }
    // Document bounds are not lookup bounds.
    let image = base
        .with_image_ids(["ami-0123456789abcdef0".parse().unwrap()])
        .with_instance_types(["t3.micro".parse().unwrap()])
        .with_availability_zones(["us-east-1a".parse().unwrap()]);
    assert!(!image.has_lookup_bounds());
    assert_eq!(image.aws_instance_types().len(), 1);
    assert_eq!(image.aws_availability_zones().len(), 1);
}

#[test]
fn ttl_errors_say_what_is_expected() {
    let err = serde_json::from_str::<IidTtl>("true")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expected a Go duration such as \"5m\", or integer nanoseconds"),
        "{err}"
    );
    assert_eq!(
        parse_go_duration("5"),
        Err("invalid duration \"5\": missing unit".into())
    );
    assert_eq!(
        parse_go_duration("5y"),
        Err("invalid duration \"5y\": unknown unit".into())
    );
}

#[test]
fn rsa_key_of_the_test_ca() {
    let ca = fixtures::test_ca();
    let (_, cert) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
    let key = RsaVerifyingKey::from_public_key_der(cert.tbs_certificate.subject_pki.raw).unwrap();
    assert_eq!(key.modulus_len(), 256);
    let spec = fixtures::BlobSpec::aws_like(&fixtures::document());
    let message = spec.signed_message();
    let signature = spec.signature(&ca);
    let digest: [u8; 32] = Sha256::digest(&message).into();
    assert_eq!(key.verify_sha256_digest(&digest, &signature), Ok(()));
    let other: [u8; 32] = Sha256::digest(b"something else").into();
    assert_eq!(
        key.verify_sha256_digest(&other, &signature),
        Err(Error::InvalidSignature)
    );
}
