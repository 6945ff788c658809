//! Every refusal has a machine-readable kind and a hint that names what to change.
#![cfg(test)] // clippy.toml says why

mod common;

use core::future::Future;

use chrono::{DateTime, TimeDelta, Utc};
use ec2_iid::dangerous::parse_signed_data;
use ec2_iid::ids::InstanceState;
use ec2_iid::internal::verify_signature;
use ec2_iid::{
    AllowRule, CheckError, Error, ErrorKind, Format, InstanceFacts, InstanceLookup, InstanceQuery,
    SignedInput, TrustStore, Verifier, VerifyOptions, verify_input,
};
use ec2_iid_test_support::fixtures::{self, BlobSpec, replace_once, test_ca};
use ec2_iid_test_support::now_or_never;

fn trust() -> TrustStore {
    common::trust_with_test_ca("us-east-1")
}

fn pending_time() -> DateTime<Utc> {
    fixtures::PENDING_TIME.parse().unwrap()
}

fn fixture() -> Vec<u8> {
    BlobSpec::aws_like(&fixtures::document()).build(&test_ca())
}

/// The kind and the hint of a refusal.
fn refusal(result: Result<impl core::fmt::Debug, Error>) -> (ErrorKind, String) {
    let err = result.unwrap_err();
    let hint = err.hint().unwrap_or_else(|| panic!("no hint for {err:?}"));
    (err.kind(), hint)
}

fn verifier(rule: AllowRule) -> Verifier {
    Verifier::builder(trust()).allow(rule).build().unwrap()
}

fn account() -> AllowRule {
    AllowRule::account("123456789012".parse().unwrap())
}

#[test]
fn json_quoted_blob() {
    let text =
        String::from_utf8(std::fs::read(fixtures::data_path("gen/rsa2048.b64")).unwrap()).unwrap();
    let quoted = format!("{:?}", text.trim_end());
    let (kind, hint) = refusal(parse_signed_data(quoted.as_bytes()));
    assert_eq!(kind, ErrorKind::Malformed);
    assert!(hint.contains("strip the surrounding quotes"), "{hint}");
}

#[test]
fn unknown_serial_is_a_new_certificate_tampered_issuer_is_not() {
    let unknown = BlobSpec {
        serial_override: Some(vec![0x42; 8]),
        ..BlobSpec::aws_like(&fixtures::document())
    }
    .build(&test_ca());
    let (kind, hint) = refusal(verify_signature(
        parse_signed_data(&unknown).unwrap(),
        &trust(),
    ));
    assert_eq!(kind, ErrorKind::UntrustedSigner);
    assert!(hint.contains("a new AWS region or certificate"), "{hint}");
    assert!(
        hint.contains("TrustStore::add_pem") && hint.contains("O=ec2-iid test CA"),
        "{hint}"
    );

    // The issuer edited in the SignerInfo: the serial is known, under another issuer.
    let tampered = replace_once(&fixture(), b"Seattle", b"Seattlx");
    let (kind, hint) = refusal(verify_signature(
        parse_signed_data(&tampered).unwrap(),
        &trust(),
    ));
    assert_eq!(kind, ErrorKind::UntrustedSigner);
    assert!(hint.contains("altered"), "{hint}");
    assert!(!hint.contains("add_pem"), "{hint}");
}

#[test]
fn legacy_pkcs7_without_the_opt_in() {
    let blob = std::fs::read(fixtures::data_path("gen/pkcs7.b64")).unwrap();
    let mut trust = trust();
    trust
        .add_pem(
            Format::Pkcs7,
            fixtures::dsa_test_ca().cert_pem.as_bytes(),
            ["us-east-1".parse().unwrap()],
        )
        .unwrap();
    let strict = VerifyOptions::default();
    let (kind, hint) = refusal(verify_input(SignedInput::Pkcs7(&blob), &trust, &strict));
    assert_eq!(kind, ErrorKind::RefusedAlgorithm);
    assert!(
        hint.contains("rsa2048") && hint.contains("--allow-legacy-dsa"),
        "{hint}"
    );
}

#[test]
fn expired_names_age_and_ttl_future_names_the_clock() {
    let verifier = verifier(account());
    let late = pending_time() + TimeDelta::seconds(432);
    let (kind, hint) = refusal(verifier.verify(&fixture(), late));
    assert_eq!(kind, ErrorKind::Stale);
    assert!(
        hint.starts_with("pendingTime is 7m12s old; aws_iid_ttl is 5m0s"),
        "{hint}"
    );
    let early = pending_time() - TimeDelta::minutes(3);
    let (kind, hint) = refusal(verifier.verify(&fixture(), early));
    assert_eq!(kind, ErrorKind::Stale);
    assert!(
        hint.contains("3m0s ahead") && hint.contains("clock"),
        "{hint}"
    );
}

#[test]
fn rule_mismatch_names_field_expected_and_actual() {
    let verifier = Verifier::builder(trust())
        .allow(AllowRule::account("111111111111".parse().unwrap()))
        .allow(account().with_instance_types(["m5.large".parse().unwrap()]))
        .build()
        .unwrap();
    let now: DateTime<Utc> = fixtures::NOW_FOR_TESTS.parse().unwrap();
    let (kind, hint) = refusal(verifier.verify(&fixture(), now));
    assert_eq!(kind, ErrorKind::NoRuleMatched);
    assert!(
        hint.contains("rule 0: aws_account is 123456789012, not 111111111111"),
        "{hint}"
    );
    assert!(
        hint.contains("rule 1: aws_instance_types is t3.micro, not m5.large"),
        "{hint}"
    );
}

struct Answer(Result<Option<InstanceFacts>, std::io::Error>);

impl InstanceLookup for Answer {
    type Error = std::io::Error;

    fn describe_instance(
        &self,
        _query: &InstanceQuery,
    ) -> impl Future<Output = Result<Option<InstanceFacts>, std::io::Error>> + Send {
        let answer = match &self.0 {
            Ok(facts) => Ok(facts.clone()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        };
        core::future::ready(answer)
    }
}

#[test]
fn instance_not_running_and_lookup_unavailable() {
    let verifier = verifier(account());
    let now: DateTime<Utc> = fixtures::NOW_FOR_TESTS.parse().unwrap();
    let pending = verifier.verify(&fixture(), now).unwrap();
    let mut stopped = InstanceFacts::new("i-0123456789abcdef0", InstanceState::Stopped);
    stopped.owner_id = Some("123456789012".into());
    let err = now_or_never(pending.check_instance(&Answer(Ok(Some(stopped))))).unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::InstanceRejected));
    let hint = err.hint().unwrap();
    assert!(
        hint.contains("stopped") && hint.contains("running"),
        "{hint}"
    );

    let throttled = std::io::Error::other("Throttling: rate exceeded");
    let err = now_or_never(pending.check_instance(&Answer(Err(throttled)))).unwrap_err();
    assert!(matches!(err, CheckError::Lookup(_)));
    assert_eq!(err.kind(), None, "not a decision about the instance");
    assert!(err.hint().unwrap().contains("retry"));
    assert_eq!(
        err.to_string(),
        "instance lookup failed: Throttling: rate exceeded",
        "the cause is displayed"
    );
}
