//! The `Error` variants (and the policy checks behind them) that no other test produces, each
//! with its exact value; plus a guard that every variant of `Error` and `Malformed` in
//! `src/error.rs` is mapped to a producing test in `tests/README.md`.
#![cfg(test)] // clippy.toml says why

use core::convert::Infallible;
use core::future::Future;
use core::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};
use ec2_iid::dangerous::parse_signed_data;
use ec2_iid::ids::{InstanceState, SerialNumber};
use ec2_iid::internal::verify_signature;
use ec2_iid::{
    AllowRule, CheckError, ConfigError, Error, Format, InMemoryJoinRegistry, InstanceFacts,
    InstanceLookup, InstanceQuery, Malformed, PendingJoin, TokenResource, TokenSpec, TrustStore,
    VerifiedDocument, Verifier,
};
use ec2_iid_test_support::fixtures::{self, BlobSpec, der_oid, oid, tag, test_ca, tlv, tlv_of};
use ec2_iid_test_support::now_or_never;

const ACCOUNT: &str = "123456789012";
const INSTANCE: &str = "i-0123456789abcdef0";
const HOST_ID: &str = "123456789012-i-0123456789abcdef0";

fn store_for(region: &str) -> TrustStore {
    let mut store = TrustStore::empty();
    store
        .add_pem(
            Format::Rsa2048,
            test_ca().cert_pem.as_bytes(),
            [region.parse().unwrap()],
        )
        .unwrap();
    store
}

fn spec() -> BlobSpec {
    BlobSpec::aws_like(&fixtures::document())
}

fn verify(spec: &BlobSpec) -> Result<VerifiedDocument, Error> {
    verify_signature(
        parse_signed_data(&spec.build(&test_ca()))?,
        &store_for("us-east-1"),
    )
}

fn pending_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

/// The fixtures' clock: pendingTime + 1 minute.
fn now() -> DateTime<Utc> {
    pending_time() + TimeDelta::minutes(1)
}

fn verifier_with(rule: AllowRule) -> Verifier {
    Verifier::builder(store_for("us-east-1"))
        .allow(rule)
        .build()
        .unwrap()
}

fn account_rule() -> AllowRule {
    AllowRule::account(ACCOUNT.parse().unwrap())
}

fn fixture() -> Vec<u8> {
    spec().build(&test_ca())
}

fn joined(verifier: &Verifier) -> PendingJoin<'_> {
    verifier.verify(&fixture(), now()).unwrap()
}

fn running() -> InstanceFacts {
    owned(InstanceFacts::new(INSTANCE, InstanceState::Running))
}

fn owned(mut facts: InstanceFacts) -> InstanceFacts {
    facts.owner_id = Some(ACCOUNT.into());
    facts
}

// ------------------------------------------------------------------------------------------------
// Signature checks
// ------------------------------------------------------------------------------------------------

#[test]
fn algorithm_protection_mismatch() {
    // The protected digest is SHA-1 while the signer used SHA-256: an algorithm substitution.
    let mut signature = fixtures::algorithm_identifier(&der_oid(oid::SHA256_WITH_RSA), true);
    signature[0] = tag::CTX1;
    let sha1 = fixtures::algorithm_identifier(&der_oid(oid::SHA1), true);
    let blob = BlobSpec {
        algorithm_protection_override: Some(tlv_of(tag::SEQUENCE, &[&sha1, &signature])),
        ..spec()
    };
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::AlgorithmProtectionMismatch
    );
    // Protection that leaves out the signature algorithm does not protect it: refused too.
    let sha256 = fixtures::algorithm_identifier(&der_oid(oid::SHA256), true);
    let blob = BlobSpec {
        algorithm_protection_override: Some(tlv(tag::SEQUENCE, &sha256)),
        ..spec()
    };
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::AlgorithmProtectionMismatch
    );
}

#[test]
fn content_type_attribute_not_data() {
    let blob = BlobSpec {
        content_type_attr_value: Some(der_oid(oid::SIGNED_DATA)),
        ..spec()
    };
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::ContentTypeMismatch {
            oid: oid::SIGNED_DATA.into()
        }
    );
}

#[test]
fn message_digest_of_other_content() {
    let blob = BlobSpec {
        message_digest_override: Some(vec![0; 32]),
        ..spec()
    };
    assert_eq!(verify(&blob).unwrap_err(), Error::DigestMismatch);
    // The committed fixture whose content was edited after signing.
    let tampered = std::fs::read(fixtures::data_path("gen/tampered-content.b64")).unwrap();
    let signed = parse_signed_data(&tampered).unwrap();
    assert_eq!(
        verify_signature(signed, &store_for("us-east-1")).unwrap_err(),
        Error::DigestMismatch
    );
}

#[test]
fn missing_content_type_and_message_digest_attributes() {
    let blob = BlobSpec {
        omit_content_type_attr: true,
        ..spec()
    };
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::MissingAttribute {
            name: "contentType"
        }
    );
    let blob = BlobSpec {
        omit_message_digest_attr: true,
        ..spec()
    };
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::MissingAttribute {
            name: "messageDigest"
        }
    );
}

#[test]
fn missing_signed_attributes() {
    // The signature is then over the content itself, which AWS never does.
    let blob = BlobSpec {
        omit_signed_attrs: true,
        ..spec()
    };
    assert_eq!(verify(&blob).unwrap_err(), Error::MissingSignedAttributes);
}

#[test]
fn signing_time_before_the_certificate() {
    // The test CA is valid from 2010-01-01.
    let blob = BlobSpec {
        signing_time: Some("091231235959Z".into()),
        ..spec()
    };
    assert_eq!(
        verify(&blob).unwrap_err(),
        Error::SigningTimeOutsideValidity {
            signing_time: Utc.with_ymd_and_hms(2009, 12, 31, 23, 59, 59).unwrap()
        }
    );
}

#[test]
fn region_not_covered_by_the_certificate() {
    let signed = parse_signed_data(&fixture()).unwrap();
    assert_eq!(
        verify_signature(signed, &store_for("eu-west-1")).unwrap_err(),
        Error::RegionMismatch {
            region: "us-east-1".parse().unwrap(),
            serial: SerialNumber::from_be_bytes(&[0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96, 0x87, 0x78])
        }
    );
}

#[test]
fn invalid_signature_from_another_key() {
    let blob = BlobSpec {
        signing_key: Some(fixtures::other_key()),
        ..spec()
    };
    assert_eq!(verify(&blob).unwrap_err(), Error::InvalidSignature);
}

#[test]
fn signed_attributes_with_an_indefinite_length() {
    // Signed attributes are hashed as DER; an indefinite length is refused, not re-encoded.
    // The SET OF SignerInfo and the SignerInfo grow by one byte: `a0 81 98` becomes `a0 80`,
    // and `00 00` closes it.
    let der = fixture();
    let attrs = spec().signed_attrs();
    assert_eq!(&attrs[..3], [0xA0, 0x81, 0x98]);
    let at = der.windows(attrs.len()).position(|w| w == attrs).unwrap();
    let mut blob = der[..at].to_vec();
    blob.extend([0xA0, 0x80]);
    blob.extend(&attrs[3..]);
    blob.extend([0x00, 0x00]);
    blob.extend(&der[at + attrs.len()..]);
    let blob = fixtures::replace_once(
        &blob,
        &[tag::SET, 0x82, 0x02, 0x31, tag::SEQUENCE, 0x82, 0x02, 0x2d],
        &[tag::SET, 0x82, 0x02, 0x32, tag::SEQUENCE, 0x82, 0x02, 0x2e],
    );
    assert_eq!(
        parse_signed_data(&blob).unwrap_err(),
        Error::Malformed {
            offset: at,
            reason: Malformed::BadIndefiniteLength
        }
    );
}

#[test]
fn primitive_element_with_an_indefinite_length() {
    // An OID (primitive) may not use the indefinite form.
    assert_eq!(
        parse_signed_data(&[tag::SEQUENCE, 0x80, tag::OID, 0x80, 0, 0, 0, 0]).unwrap_err(),
        Error::Malformed {
            offset: 2,
            reason: Malformed::BadIndefiniteLength
        }
    );
}

// ------------------------------------------------------------------------------------------------
// Trust store
// ------------------------------------------------------------------------------------------------

/// A certificate shaped like the test CA's but with `spki` as its key (unsigned: the signature
/// bits are filler, as a trust store never checks a self-signature).
fn certificate_with_key(spki: &[u8]) -> Vec<u8> {
    fixtures::self_named_certificate(
        &[0x01, 0x02],
        &test_ca().issuer_der,
        &tlv(tag::UTC_TIME, b"300101000000Z"),
        spki,
        &[],
        |_| vec![0xAB, 0xCD],
    )
}

/// An RSA SubjectPublicKeyInfo with this modulus (big-endian, leading zero for the sign) and
/// e = 65537.
fn rsa_spki(modulus: &[u8]) -> Vec<u8> {
    let rsa_key = tlv_of(
        tag::SEQUENCE,
        &[&tlv(tag::INTEGER, modulus), &tlv(tag::INTEGER, &[1, 0, 1])],
    );
    tlv_of(
        tag::SEQUENCE,
        &[
            &fixtures::algorithm_identifier(&der_oid(oid::RSA_ENCRYPTION), true),
            &tlv(tag::BIT_STRING, &[&[0x00][..], &rsa_key].concat()),
        ],
    )
}

#[test]
fn certificate_with_a_512_bit_rsa_key() {
    let mut modulus = vec![0x00];
    modulus.extend([0xFF; 64]);
    let spki = rsa_spki(&modulus);
    let mut store = TrustStore::empty();
    assert_eq!(
        store
            .add_der(
                Format::Rsa2048,
                &certificate_with_key(&spki),
                ["us-east-1".parse().unwrap()]
            )
            .map(|_| ())
            .unwrap_err(),
        ConfigError::BadCertificate {
            reason: "not an RSA public key of 1024 to 8192 bits"
        }
    );
    assert!(store.is_empty());
}

/// "RSA-2048" counts bits: a 2041-bit modulus is 256 bytes long but too small for `/rsa2048`
/// and `/pkcs7`; `/signature` takes it (its keys are RSA-1024).
#[test]
fn certificate_with_a_2041_bit_rsa_key() {
    let mut modulus = vec![0x01];
    modulus.extend([0xFF; 254]);
    modulus.push(0xFB);
    let spki = rsa_spki(&modulus);
    let certificate = certificate_with_key(&spki);
    let region = || ["us-east-1".parse().unwrap()];
    for format in [Format::Rsa2048, Format::Pkcs7] {
        let mut store = TrustStore::empty();
        assert_eq!(
            store
                .add_der(format, &certificate, region())
                .map(|_| ())
                .unwrap_err(),
            ConfigError::BadCertificate {
                reason: "RSA key too small for the format (rsa2048 and pkcs7 need 2048 bits)"
            },
            "{format}"
        );
    }
    let mut store = TrustStore::empty();
    assert!(
        store
            .add_der(Format::Signature, &certificate, region())
            .is_ok()
    );
    // The top bit set: 2048 bits.
    modulus[0] = 0x80;
    let full = certificate_with_key(&rsa_spki(&[&[0x00][..], &modulus].concat()));
    let mut store = TrustStore::empty();
    assert!(
        store.add_der(Format::Rsa2048, &full, region()).is_ok(),
        "2048 bits"
    );
}

#[test]
fn certificate_impersonating_a_trusted_one() {
    // Same issuer DN and serial as the test CA, another key: never merged with it.
    let mut store = store_for("us-east-1");
    let impostor = fixtures::attacker_cert(&test_ca());
    assert_eq!(
        store
            .add_der(Format::Rsa2048, &impostor, ["us-east-1".parse().unwrap()])
            .map(|_| ())
            .unwrap_err(),
        ConfigError::ConflictingCertificate {
            serial: SerialNumber::from_be_bytes(&[0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96, 0x87, 0x78])
        }
    );
    assert_eq!(store.len(), 1);
}

// ------------------------------------------------------------------------------------------------
// Verifier configuration, rules and TTL
// ------------------------------------------------------------------------------------------------

#[test]
fn invalid_configurations() {
    let no_rules = Verifier::builder(store_for("us-east-1")).build();
    assert_eq!(
        no_rules.unwrap_err(),
        ConfigError::NoAllowRules { field: "allow" }
    );
    let short_ttl = Verifier::builder(store_for("us-east-1"))
        .allow(account_rule())
        .ttl(Duration::from_millis(999))
        .build();
    assert_eq!(
        short_ttl.unwrap_err(),
        ConfigError::TtlTooShort {
            field: "ttl",
            ttl: Duration::from_millis(999)
        }
    );
    let no_trust = Verifier::builder(TrustStore::empty())
        .allow(account_rule())
        .build();
    assert_eq!(no_trust.unwrap_err(), ConfigError::EmptyTrustStore);
    // Rules and TTL come from one place, in either order.
    let spec = TokenSpec::from_rules(vec![account_rule()]);
    let both = Verifier::builder(store_for("us-east-1"))
        .allow(account_rule())
        .token_spec(&spec)
        .build();
    assert_eq!(
        both.unwrap_err(),
        ConfigError::Conflict {
            first: "allow",
            second: "token_spec",
            what: "allow rules"
        }
    );
    let both = Verifier::builder(store_for("us-east-1"))
        .token_spec(&spec)
        .ttl(Duration::from_secs(60))
        .build();
    assert_eq!(
        both.unwrap_err(),
        ConfigError::Conflict {
            first: "token_spec",
            second: "ttl",
            what: "TTL"
        }
    );
    // A region no trusted certificate covers could never verify: a typo or a missing cert.
    let uncovered = Verifier::builder(store_for("us-east-1"))
        .allow(
            account_rule()
                .with_regions(["us-east-1".parse().unwrap(), "eu-west-3".parse().unwrap()]),
        )
        .build();
    assert_eq!(
        uncovered.unwrap_err(),
        ConfigError::UncoveredRegion {
            field: "allow[0].aws_regions[1]".into(),
            region: "eu-west-3".parse().unwrap()
        }
    );
}

fn rule_error(json: &str) -> String {
    serde_json::from_str::<TokenSpec>(json)
        .unwrap_err()
        .to_string()
}

#[test]
fn invalid_tokens_refuse_to_build() {
    let mut spec = TokenSpec::from_rules(vec![account_rule()]);
    spec.join_method = "iam".into();
    let built = Verifier::builder(store_for("us-east-1"))
        .token_spec(&spec)
        .build();
    assert_eq!(
        built.unwrap_err(),
        ConfigError::InvalidField {
            field: "spec.join_method".into(),
            reason: "\"iam\" is not supported: write join_method: ec2".into()
        }
    );
    // Reading a token reports the ConfigError's own message, with where the mistake is.
    assert_eq!(
        rule_error(r#"{"allow": [{"aws_account": "123456789012", "aws_region": ["us-west-2"]}]}"#),
        ConfigError::UnknownField {
            field: "spec.allow[0].aws_region".into(),
            did_you_mean: Some("aws_regions")
        }
        .to_string()
    );
    // A field given twice: serde_json alone would keep the second account.
    assert!(
        rule_error(
            r#"{"allow": [{"aws_account": "111111111111", "aws_account": "123456789012"}]}"#
        )
        .starts_with(
            &ConfigError::DuplicateField {
                field: "spec.allow[0].aws_account".into()
            }
            .to_string()
        )
    );
    // A rule that names neither an account nor a role would admit any AWS account.
    assert_eq!(
        rule_error(r#"{"allow": [{"aws_regions": ["us-east-1"]}]}"#),
        ConfigError::MissingAccount {
            rule: "spec.allow[0]".into()
        }
        .to_string()
    );
    assert_eq!(
        rule_error(
            r#"{"allow": [{"aws_account": "123456789012", "aws_role": "arn:aws:iam::999999999999:role/x"}]}"#
        ),
        ConfigError::RoleAccountMismatch {
            rule: "spec.allow[0]".into(),
            account: ACCOUNT.parse().unwrap(),
            role: "arn:aws:iam::999999999999:role/x".parse().unwrap()
        }
        .to_string()
    );
}

#[test]
fn expired_token() {
    let token: TokenResource = serde_json::from_str(
        r#"{"kind": "token", "version": "v2",
            "metadata": {"name": "t", "expires": "2026-11-01T12:00:30Z"},
            "spec": {"allow": [{"aws_account": "123456789012"}]}}"#,
    )
    .unwrap();
    let verifier = Verifier::builder(store_for("us-east-1"))
        .token(&token)
        .build()
        .unwrap();
    let expires = "2026-11-01T12:00:30Z".parse().unwrap();
    assert_eq!(verifier.expires(), Some(expires));
    assert_eq!(
        verifier.verify(&fixture(), now()).unwrap_err(),
        Error::TokenExpired {
            expires,
            now: now()
        }
    );
    assert!(
        verifier
            .verify(&fixture(), pending_time() + TimeDelta::seconds(29))
            .is_ok()
    );
}

#[test]
fn no_matching_rule_lists_each_rules_first_mismatch() {
    let image = account_rule().with_image_ids(["ami-00000000000000000".parse().unwrap()]);
    let mut trust = store_for("us-east-1");
    let eu_west_1 = ["eu-west-1".parse().unwrap()];
    trust
        .add_pem(Format::Rsa2048, test_ca().cert_pem.as_bytes(), eu_west_1)
        .unwrap();
    let verifier = Verifier::builder(trust)
        .allow(AllowRule::account("222222222222".parse().unwrap()))
        .allow(account_rule().with_regions(["eu-west-1".parse().unwrap()]))
        .allow(image)
        .build()
        .unwrap();
    let err = verifier.verify(&fixture(), now()).unwrap_err();
    let Error::NoMatchingRule {
        account,
        region,
        mismatches,
    } = err
    else {
        panic!("expected NoMatchingRule, got {err:?}");
    };
    assert_eq!(account.as_str(), ACCOUNT);
    assert_eq!(region.as_str(), "us-east-1");
    let fields: Vec<(usize, &str)> = mismatches.iter().map(|m| (m.rule, m.field)).collect();
    assert_eq!(
        fields,
        [(0, "aws_account"), (1, "aws_regions"), (2, "aws_image_ids")]
    );
}

#[test]
fn document_older_than_the_ttl() {
    let verifier = verifier_with(account_rule());
    let late = pending_time() + TimeDelta::seconds(301);
    assert_eq!(
        verifier.verify(&fixture(), late).unwrap_err(),
        Error::Expired {
            pending_time: pending_time(),
            now: late,
            ttl: Duration::from_secs(300)
        }
    );
    // Exactly the TTL is still fresh (Teleport's inclusive bound).
    let edge = pending_time() + TimeDelta::seconds(300);
    assert!(verifier.verify(&fixture(), edge).is_ok());
}

#[test]
fn pending_time_ahead_of_the_clock() {
    let verifier = verifier_with(account_rule());
    let early = pending_time() - TimeDelta::seconds(61);
    assert_eq!(
        verifier.verify(&fixture(), early).unwrap_err(),
        Error::PendingTimeInFuture {
            pending_time: pending_time(),
            now: early,
            max_future_skew: Duration::from_secs(60)
        }
    );
    assert!(
        verifier
            .verify(&fixture(), pending_time() - TimeDelta::seconds(60))
            .is_ok()
    );
}

// ------------------------------------------------------------------------------------------------
// Instance facts
// ------------------------------------------------------------------------------------------------

#[test]
fn instance_not_found_or_another_instance() {
    let verifier = verifier_with(account_rule());
    let join = joined(&verifier);
    assert_eq!(
        join.check_facts(None).unwrap_err(),
        Error::InstanceNotFound {
            instance_id: INSTANCE.parse().unwrap()
        }
    );
    let other = owned(InstanceFacts::new(
        "i-0fedcba9876543210",
        InstanceState::Running,
    ));
    assert_eq!(
        join.check_facts(Some(&other)).unwrap_err(),
        Error::InstanceIdMismatch {
            expected: INSTANCE.parse().unwrap(),
            found: "i-0fedcba9876543210".into()
        }
    );
    assert!(join.check_facts(Some(&running())).is_ok());
}

#[test]
fn instance_not_running() {
    let verifier = verifier_with(account_rule());
    let join = joined(&verifier);
    for state in [
        InstanceState::Pending,
        InstanceState::ShuttingDown,
        InstanceState::Stopped,
        InstanceState::Stopping,
        InstanceState::Terminated,
    ] {
        let facts = owned(InstanceFacts::new(INSTANCE, state));
        assert_eq!(
            join.check_facts(Some(&facts)).unwrap_err(),
            Error::InstanceNotRunning { state }
        );
    }
}

#[test]
fn instance_owned_by_another_account() {
    let verifier = verifier_with(account_rule());
    let join = joined(&verifier);
    let mut facts = running();
    facts.owner_id = Some("210987654321".into());
    assert_eq!(
        join.check_facts(Some(&facts)).unwrap_err(),
        Error::OwnerMismatch {
            expected: ACCOUNT.parse().unwrap(),
            found: "210987654321".into()
        }
    );
    facts.owner_id = None;
    assert_eq!(
        join.check_facts(Some(&facts)).unwrap_err(),
        Error::MissingFact { fact: "owner_id" }
    );
    facts.owner_id = Some(ACCOUNT.into());
    assert!(join.check_facts(Some(&facts)).is_ok());
}

#[test]
fn lookup_bounds_violated_or_unknown() {
    let rule = account_rule()
        .with_vpc_ids(["vpc-1234abcd".parse().unwrap()])
        .with_instance_profile_arns(["arn:aws:iam::123456789012:instance-profile/web-*"
            .parse()
            .unwrap()]);
    let verifier = verifier_with(rule);
    let join = joined(&verifier);
    let mut facts = running();
    assert_eq!(
        join.check_facts(Some(&facts)).unwrap_err(),
        Error::MissingFact {
            fact: "aws_vpc_ids"
        }
    );
    facts.vpc_id = Some("vpc-2".into());
    assert_eq!(
        join.check_facts(Some(&facts)).unwrap_err(),
        Error::BoundViolated {
            bound: "aws_vpc_ids",
            value: "vpc-2".into()
        }
    );
    facts.vpc_id = Some("vpc-1234abcd".into());
    facts.iam_instance_profile_arn = Some("arn:aws:iam::123456789012:instance-profile/db".into());
    assert_eq!(
        join.check_facts(Some(&facts)).unwrap_err(),
        Error::BoundViolated {
            bound: "aws_iam_instance_profile_arns",
            value: "arn:aws:iam::123456789012:instance-profile/db".into()
        }
    );
    facts.iam_instance_profile_arn =
        Some("arn:aws:iam::123456789012:instance-profile/web-1".into());
    assert!(join.check_facts(Some(&facts)).is_ok());
}

#[test]
fn root_volume_attached_after_launch() {
    let verifier = Verifier::builder(store_for("us-east-1"))
        .allow(account_rule())
        .root_volume_check(true)
        .build()
        .unwrap();
    let join = joined(&verifier);
    let mut facts = running();
    assert_eq!(
        join.check_facts(Some(&facts)).unwrap_err(),
        Error::MissingFact {
            fact: "root_device_type"
        }
    );
    facts.root_device_type = Some("ebs".into());
    facts.primary_eni_attach_time = Some(pending_time());
    facts.root_volume_attach_time = Some(pending_time() + TimeDelta::seconds(120));
    assert_eq!(
        join.check_facts(Some(&facts)).unwrap_err(),
        Error::RootVolumeReattached {
            gap: Duration::from_secs(120)
        }
    );
    facts.root_volume_attach_time = Some(pending_time() - TimeDelta::seconds(60));
    assert!(join.check_facts(Some(&facts)).is_ok());
}

/// A lookup that answers at once with fixed facts.
struct FixedLookup(Option<InstanceFacts>);

impl InstanceLookup for FixedLookup {
    type Error = Infallible;

    fn describe_instance(
        &self,
        _query: &InstanceQuery,
    ) -> impl Future<Output = Result<Option<InstanceFacts>, Infallible>> + Send {
        core::future::ready(Ok(self.0.clone()))
    }
}

#[test]
fn second_join_of_the_same_host_is_refused() {
    let verifier = verifier_with(account_rule());
    let join = joined(&verifier);
    let lookup = FixedLookup(Some(running()));
    let registry = InMemoryJoinRegistry::new();
    let once =
        |requester| now_or_never(join.check_instance_once(&lookup, &registry, requester, now()));
    let first = once([1; 32]).unwrap();
    assert_eq!(first.host_id(), HOST_ID);
    let second = once([2; 32]);
    assert!(
        matches!(
            &second,
            Err(CheckError::Rejected(Error::AlreadyJoined { host_id })) if host_id == HOST_ID
        ),
        "{second:?}"
    );
    // After the host left, it may join again.
    assert!(registry.release(HOST_ID));
    assert!(once([2; 32]).is_ok());
}

// ------------------------------------------------------------------------------------------------
// Every variant is produced somewhere
// ------------------------------------------------------------------------------------------------

/// Variant names of `pub enum <name>` in `src/error.rs`: the 4-space-indented identifiers.
fn variants(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("pub enum {name} {{"))
        .unwrap_or_else(|| panic!("enum {name} not found"));
    let body = &source[start..];
    let end = body.find("\n}").unwrap();
    body[..end]
        .lines()
        .skip(1)
        .filter_map(|line| {
            let ident = line.strip_prefix("    ")?;
            let first = ident.chars().next()?;
            first.is_ascii_uppercase().then(|| {
                ident
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect()
            })
        })
        .collect()
}

#[test]
fn every_variant_is_mapped_to_a_producing_test() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| {
        std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let source = read("src/error.rs");
    let readme = read("tests/README.md");
    let mut checked = 0;
    for (enum_name, variant) in variants(&source, "Error")
        .into_iter()
        .map(|v| ("Error", v))
        .chain(
            variants(&source, "ConfigError")
                .into_iter()
                .map(|v| ("ConfigError", v)),
        )
        .chain(
            variants(&source, "Malformed")
                .into_iter()
                .map(|v| ("Malformed", v)),
        )
    {
        let key = format!("| `{enum_name}::{variant}` |");
        let row = readme
            .lines()
            .find(|line| line.starts_with(&key))
            .unwrap_or_else(|| panic!("tests/README.md has no row for {enum_name}::{variant}"));
        let tests: Vec<&str> = row
            .split('`')
            .skip(3)
            .step_by(2)
            .filter(|cell| cell.contains(".rs::"))
            .collect();
        assert!(!tests.is_empty(), "no test named in: {row}");
        for test in tests {
            let (file, function) = test.rsplit_once("::").unwrap();
            let text = read(file);
            assert!(
                text.contains(&format!("fn {function}(")),
                "{file} has no fn {function} (row {enum_name}::{variant})"
            );
            assert!(
                text.contains(&variant),
                "{file} never names {variant} (row {enum_name}::{variant})"
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 40,
        "only {checked} variants found in src/error.rs"
    );
}
