//! Allow rules, TTL, instance facts, the lookup trait and the join registry.
#![cfg(test)] // clippy.toml says why

mod common;
mod shared;

use core::time::Duration;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use ec2_iid::dangerous::parse_signed_data;
use ec2_iid::ids::{InstanceState, RoleArn};
use ec2_iid::internal::verify_signature;
use ec2_iid::{
    AllowRule, CheckError, ClaimRecord, ConfigError, Error, InMemoryJoinRegistry, InstanceFacts,
    InstanceLookup, InstanceQuery, JoinClaim, JoinRegistry, PendingJoin, RuleMismatch,
    TokenResource, TokenSpec, TrustStore, VerifiedDocument, Verifier, match_allow_rules,
};
use ec2_iid_test_support::fixtures;
use ec2_iid_test_support::now_or_never;

fn now() -> DateTime<Utc> {
    fixtures::NOW_FOR_TESTS.parse().unwrap()
}

fn test_trust() -> TrustStore {
    common::trust_with_test_ca("us-east-1")
}

fn blob() -> Vec<u8> {
    std::fs::read(fixtures::data_path("gen/rsa2048.b64")).unwrap()
}

fn verified() -> VerifiedDocument {
    verify_signature(parse_signed_data(&blob()).unwrap(), &test_trust()).unwrap()
}

fn token(name: &str) -> TokenSpec {
    let text = std::fs::read(fixtures::data_path(&format!("tokens/{name}.yaml"))).unwrap();
    let resource: TokenResource = serde_norway::from_slice(&text).unwrap();
    resource.validate().unwrap().into_spec()
}

fn rule(json: &str) -> AllowRule {
    serde_json::from_str(json).unwrap()
}

#[test]
fn seed_tokens_parse_as_written() {
    let single = token("ec2-token");
    assert_eq!(single.roles, ["Node"]);
    assert_eq!(single.join_method, "ec2");
    assert_eq!(single.aws_iid_ttl.get(), Duration::from_secs(300));
    assert_eq!(single.allow.len(), 3);
    let regions: Vec<&str> = single.allow[2]
        .aws_regions()
        .iter()
        .map(|r| r.as_str())
        .collect();
    assert_eq!(regions, ["us-east-1", "us-west-2"]);

    let multi = token("ec2-multiaccount-token");
    assert_eq!(multi.allow.len(), 2);
    assert_eq!(
        multi.allow[1].aws_role().map(RoleArn::as_str),
        Some("arn:aws:iam::333333333333:role/teleport-DescribeInstances-role")
    );
    // The fixture's account (123456789012) is in neither token.
    for spec in [single, multi] {
        let verifier = Verifier::builder(test_trust())
            .token_spec(&spec)
            .build()
            .unwrap();
        assert!(matches!(
            verifier.verify(&blob(), now()),
            Err(Error::NoMatchingRule { .. })
        ));
    }
}

/// The index of the matching rule, or per rule the field that did not match.
type Expected = Result<usize, Vec<(usize, &'static str)>>;

#[test]
fn rule_table() {
    let doc = verified();
    // (rules, expected index or the mismatching fields)
    let cases: Vec<(Vec<AllowRule>, Expected)> = vec![
        (vec![], Err(vec![])),
        (vec![rule(r#"{"aws_account": "123456789012"}"#)], Ok(0)),
        (
            vec![rule(r#"{"aws_account": "111111111111"}"#)],
            Err(vec![(0, "aws_account")]),
        ),
        (
            vec![
                rule(r#"{"aws_account": "111111111111"}"#),
                rule(r#"{"aws_account": "123456789012", "aws_regions": ["eu-west-1"]}"#),
                rule(
                    r#"{"aws_account": "123456789012", "aws_regions": ["eu-west-1", "us-east-1"]}"#,
                ),
            ],
            Ok(2),
        ),
        (
            vec![
                rule(
                    r#"{"aws_account": "123456789012", "aws_role": "arn:aws:iam::123456789012:role/a"}"#,
                ),
                rule(
                    r#"{"aws_account": "123456789012", "aws_role": "arn:aws:iam::123456789012:role/a"}"#,
                ),
            ],
            Ok(0),
        ),
        (
            vec![rule(
                r#"{"aws_account": "123456789012", "aws_image_ids": ["ami-0123456789abcdef0"]}"#,
            )],
            Ok(0),
        ),
        (
            vec![rule(
                r#"{"aws_account": "123456789012", "aws_image_ids": ["ami-1234abcd"]}"#,
            )],
            Err(vec![(0, "aws_image_ids")]),
        ),
        (
            vec![rule(
                r#"{"aws_account": "123456789012", "aws_instance_types": ["t3.micro", "m5.large"]}"#,
            )],
            Ok(0),
        ),
        (
            vec![rule(
                r#"{"aws_account": "123456789012", "aws_instance_types": ["m5.large"]}"#,
            )],
            Err(vec![(0, "aws_instance_types")]),
        ),
        (
            vec![rule(
                r#"{"aws_account": "123456789012", "aws_availability_zones": ["us-east-1b"]}"#,
            )],
            Err(vec![(0, "aws_availability_zones")]),
        ),
        // A role-only rule is bound to the role's account.
        (
            vec![rule(r#"{"aws_role": "arn:aws:iam::999999999999:role/x"}"#)],
            Err(vec![(0, "aws_account")]),
        ),
        (
            vec![rule(r#"{"aws_role": "arn:aws:iam::123456789012:role/x"}"#)],
            Ok(0),
        ),
        (
            vec![
                rule(r#"{"aws_account": "123456789012", "aws_regions": ["us-west-2"]}"#),
                rule(r#"{"aws_account": "222222222222"}"#),
            ],
            Err(vec![(0, "aws_regions"), (1, "aws_account")]),
        ),
        // Lookup bounds do not take part in document matching.
        (
            vec![rule(
                r#"{"aws_account": "123456789012", "aws_vpc_ids": ["vpc-1234abcd"]}"#,
            )],
            Ok(0),
        ),
    ];
    for (rules, expected) in cases {
        let got = match_allow_rules(&doc, &rules).map(|(index, _)| index);
        match expected {
            Ok(index) => assert_eq!(got, Ok(index), "{rules:?}"),
            Err(fields) => {
                let mismatches: Vec<RuleMismatch> = match got {
                    Err(Error::NoMatchingRule {
                        account,
                        region,
                        mismatches,
                    }) => {
                        assert_eq!(account.as_str(), "123456789012");
                        assert_eq!(region.as_str(), "us-east-1");
                        mismatches
                    }
                    other => panic!("{rules:?}: {other:?}"),
                };
                let got: Vec<(usize, &str)> =
                    mismatches.iter().map(|m| (m.rule, m.field)).collect();
                assert_eq!(got, fields, "{rules:?}");
            }
        }
    }
}

#[test]
fn no_matching_rule_message_names_fields_not_roles() {
    let rules = [rule(
        r#"{"aws_account": "111111111111", "aws_role": "arn:aws:iam::111111111111:role/secret-name"}"#,
    )];
    let message = match_allow_rules(&verified(), &rules)
        .unwrap_err()
        .to_string();
    assert!(message.contains("rule 0: aws_account"), "{message}");
    assert!(!message.contains("secret-name"), "{message}");
}

fn verifier_with(rule: AllowRule) -> Verifier {
    Verifier::builder(test_trust()).allow(rule).build().unwrap()
}

#[test]
fn ttl_through_the_verifier() {
    let verifier = verifier_with(AllowRule::account("123456789012".parse().unwrap()));
    let pending: DateTime<Utc> = fixtures::PENDING_TIME.parse().unwrap();
    assert!(
        verifier
            .verify(&blob(), pending + TimeDelta::minutes(5))
            .is_ok()
    );
    assert_eq!(
        verifier
            .verify(&blob(), pending + TimeDelta::minutes(6))
            .unwrap_err(),
        Error::Expired {
            pending_time: pending,
            now: pending + TimeDelta::minutes(6),
            ttl: Duration::from_secs(300)
        }
    );
    assert!(matches!(
        verifier.verify(&blob(), pending - TimeDelta::minutes(2)),
        Err(Error::PendingTimeInFuture { .. })
    ));
    let long = Verifier::builder(test_trust())
        .allow(AllowRule::account("123456789012".parse().unwrap()))
        .ttl(Duration::from_secs(600))
        .build()
        .unwrap();
    assert!(
        long.verify(&blob(), pending + TimeDelta::minutes(9))
            .is_ok()
    );
    assert!(
        long.verify(&blob(), pending + TimeDelta::minutes(11))
            .is_err()
    );
}

#[test]
fn builder_refuses_unusable_configurations() {
    let rule = AllowRule::account("123456789012".parse().unwrap());
    assert_eq!(
        Verifier::builder(test_trust()).build().unwrap_err(),
        ConfigError::NoAllowRules { field: "allow" }
    );
    assert_eq!(
        Verifier::builder(test_trust())
            .allow(rule.clone())
            .ttl(Duration::ZERO)
            .build()
            .unwrap_err(),
        ConfigError::TtlTooShort {
            field: "ttl",
            ttl: Duration::ZERO
        }
    );
    assert_eq!(
        Verifier::builder(TrustStore::empty())
            .allow(rule)
            .build()
            .unwrap_err(),
        ConfigError::EmptyTrustStore
    );
    assert_eq!(
        Verifier::builder(test_trust())
            .token_spec(&TokenSpec::default())
            .build()
            .unwrap_err(),
        ConfigError::InvalidField {
            field: "spec.join_method".into(),
            reason: "\"\" is not supported: write join_method: ec2".into()
        }
    );
}

fn running() -> InstanceFacts {
    let mut facts = InstanceFacts::new("i-0123456789abcdef0", InstanceState::Running);
    facts.owner_id = Some("123456789012".into());
    facts.vpc_id = Some("vpc-0abc1234".into());
    facts.subnet_id = Some("subnet-0abc1234".into());
    facts.iam_instance_profile_arn =
        Some("arn:aws:iam::123456789012:instance-profile/web-server".into());
    facts
}

#[test]
fn facts_checks_each_have_their_own_error() {
    let bounded = rule(
        r#"{"aws_account": "123456789012", "aws_vpc_ids": ["vpc-0abc1234"],
            "aws_subnet_ids": ["subnet-0abc1234", "subnet-0def1234"],
            "aws_iam_instance_profile_arns": ["arn:aws:iam::123456789012:instance-profile/web-*"]}"#,
    );
    let verifier = verifier_with(bounded);
    let join = verifier.verify(&blob(), now()).unwrap();
    let outcome = join.check_facts(Some(&running())).unwrap();
    assert_eq!(outcome.host_id(), "123456789012-i-0123456789abcdef0");
    assert_eq!(outcome.facts(), &running());

    let check = |edit: &dyn Fn(&mut InstanceFacts)| {
        let mut facts = running();
        edit(&mut facts);
        join.check_facts(Some(&facts)).unwrap_err()
    };
    assert_eq!(
        join.check_facts(None).unwrap_err(),
        Error::InstanceNotFound {
            instance_id: "i-0123456789abcdef0".parse().unwrap()
        }
    );
    assert_eq!(
        check(&|f| f.state = InstanceState::Stopped),
        Error::InstanceNotRunning {
            state: InstanceState::Stopped
        }
    );
    assert_eq!(
        check(&|f| f.instance_id = "i-0fffffffffffffff0".into()),
        Error::InstanceIdMismatch {
            expected: "i-0123456789abcdef0".parse().unwrap(),
            found: "i-0fffffffffffffff0".into()
        }
    );
    assert_eq!(
        check(&|f| f.owner_id = Some("999999999999".into())),
        Error::OwnerMismatch {
            expected: "123456789012".parse().unwrap(),
            found: "999999999999".into()
        }
    );
    assert_eq!(
        check(&|f| f.vpc_id = Some("vpc-other".into())),
        Error::BoundViolated {
            bound: "aws_vpc_ids",
            value: "vpc-other".into()
        }
    );
    assert_eq!(
        check(&|f| f.subnet_id = None),
        Error::MissingFact {
            fact: "aws_subnet_ids"
        }
    );
    assert_eq!(
        check(&|f| f.iam_instance_profile_arn =
            Some("arn:aws:iam::123456789012:instance-profile/db".into())),
        Error::BoundViolated {
            bound: "aws_iam_instance_profile_arns",
            value: "arn:aws:iam::123456789012:instance-profile/db".into()
        }
    );
    // The owner is required: without it nothing ties the instance to the rule's account.
    assert_eq!(
        check(&|f| f.owner_id = None),
        Error::MissingFact { fact: "owner_id" }
    );
    assert!(check_ok(&join, |f| f.subnet_id = Some("subnet-0def1234".into())));
}

fn check_ok(join: &PendingJoin<'_>, edit: fn(&mut InstanceFacts)) -> bool {
    let mut facts = running();
    edit(&mut facts);
    join.check_facts(Some(&facts)).is_ok()
}

#[test]
fn root_volume_check_is_opt_in_and_spire_like() {
    let t = |s: &str| -> DateTime<Utc> { s.parse().unwrap() };
    let rule = AllowRule::account("123456789012".parse().unwrap());
    let off = verifier_with(rule.clone());
    let on = Verifier::builder(test_trust())
        .allow(rule)
        .root_volume_check(true)
        .build()
        .unwrap();
    let mut facts = running();
    assert!(
        off.verify(&blob(), now())
            .unwrap()
            .check_facts(Some(&facts))
            .is_ok()
    );
    let join = on.verify(&blob(), now()).unwrap();
    assert_eq!(
        join.check_facts(Some(&facts)).unwrap_err(),
        Error::MissingFact {
            fact: "root_device_type"
        }
    );
    facts.root_device_type = Some("ebs".into());
    facts.primary_eni_attach_time = Some(t("2026-11-01T12:00:00Z"));
    facts.root_volume_attach_time = Some(t("2026-11-01T12:01:00Z"));
    assert!(
        join.check_facts(Some(&facts)).is_ok(),
        "60 s apart is allowed"
    );
    facts.root_volume_attach_time = Some(t("2026-11-01T12:01:01Z"));
    assert_eq!(
        join.check_facts(Some(&facts)).unwrap_err(),
        Error::RootVolumeReattached {
            gap: Duration::from_secs(61)
        }
    );
    facts.root_volume_attach_time = None;
    assert_eq!(
        join.check_facts(Some(&facts)).unwrap_err(),
        Error::MissingFact {
            fact: "root_volume_attach_time"
        }
    );
    facts.root_device_type = Some("instance-store".into());
    assert!(
        join.check_facts(Some(&facts)).is_ok(),
        "instance-store roots are skipped"
    );
}

/// A fake DescribeInstances that records the queries it got.
#[derive(Debug, Default)]
struct FakeLookup {
    answer: Option<InstanceFacts>,
    fail: bool,
    queries: Mutex<Vec<InstanceQuery>>,
}

#[derive(Debug, thiserror::Error)]
#[error("throttled by the fake")]
struct Throttled;

impl InstanceLookup for FakeLookup {
    type Error = Throttled;

    async fn describe_instance(
        &self,
        query: &InstanceQuery,
    ) -> Result<Option<InstanceFacts>, Throttled> {
        self.queries.lock().unwrap().push(query.clone());
        if self.fail {
            Err(Throttled)
        } else {
            Ok(self.answer.clone())
        }
    }
}

#[test]
fn check_instance_assumes_the_matched_rules_role() {
    let role = "arn:aws:iam::123456789012:role/describe";
    let verifier = Verifier::builder(test_trust())
        .allow(AllowRule::role(
            "arn:aws:iam::222222222222:role/x".parse().unwrap(),
        ))
        .allow(
            AllowRule::account("123456789012".parse().unwrap())
                .with_role(role.parse().unwrap())
                .unwrap(),
        )
        .build()
        .unwrap();
    let join = verifier.verify(&blob(), now()).unwrap();
    assert_eq!(join.matched_rule(), 1);
    let lookup = FakeLookup {
        answer: Some(running()),
        ..FakeLookup::default()
    };
    let outcome = now_or_never(join.check_instance(&lookup)).unwrap();
    assert_eq!(outcome.matched_rule(), 1);
    assert_eq!(outcome.rule().aws_role().map(RoleArn::as_str), Some(role));
    let queries = lookup.queries.lock().unwrap();
    assert_eq!(queries.len(), 1);
    assert_eq!(
        queries[0].role_arn.as_ref().map(RoleArn::as_str),
        Some(role)
    );
    assert_eq!(queries[0].region.as_str(), "us-east-1");
    assert_eq!(queries[0].account.as_str(), "123456789012");
    assert_eq!(queries[0].instance_id.as_str(), "i-0123456789abcdef0");
}

#[test]
fn lookup_failures_keep_their_source() {
    let verifier = verifier_with(AllowRule::account("123456789012".parse().unwrap()));
    let join = verifier.verify(&blob(), now()).unwrap();
    let failing = FakeLookup {
        fail: true,
        ..FakeLookup::default()
    };
    let err = now_or_never(join.check_instance(&failing)).unwrap_err();
    assert!(matches!(err, CheckError::Lookup(Throttled)));
    assert_eq!(
        err.to_string(),
        "instance lookup failed: throttled by the fake"
    );
    // A rejection is the source; a lookup failure is kept as the lookup's own type.
    assert!(std::error::Error::source(&err).is_none());

    let missing = FakeLookup::default();
    assert!(matches!(
        now_or_never(join.check_instance(&missing)),
        Err(CheckError::Rejected(Error::InstanceNotFound { .. }))
    ));
}

#[test]
fn each_launch_joins_once() {
    let verifier = verifier_with(AllowRule::account("123456789012".parse().unwrap()));
    let join = verifier.verify(&blob(), now()).unwrap();
    let lookup = FakeLookup {
        answer: Some(running()),
        ..FakeLookup::default()
    };
    let registry = InMemoryJoinRegistry::new();
    let once = |requester: u8, at| {
        now_or_never(join.check_instance_once(&lookup, &registry, [requester; 32], at))
    };
    let first = once(1, now()).unwrap();
    assert_eq!(first.host_id(), "123456789012-i-0123456789abcdef0");
    assert_eq!(lookup.queries.lock().unwrap().len(), 1);
    match once(2, now()) {
        Err(CheckError::Rejected(Error::AlreadyJoined { host_id })) => {
            assert_eq!(host_id, first.host_id());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        lookup.queries.lock().unwrap().len(),
        1,
        "a replay is refused before the lookup"
    );
    assert!(once(1, now()).is_ok(), "the same requester again: a retry");
    // The claim is kept past pendingTime + TTL + skew (to the next microsecond), then the
    // record may go.
    let pending: DateTime<Utc> = fixtures::PENDING_TIME.parse().unwrap();
    let expiry = pending + TimeDelta::minutes(6);
    assert!(
        once(3, expiry - TimeDelta::seconds(1)).is_err(),
        "still kept a second before expiry"
    );
    assert!(once(3, expiry).is_err(), "still kept at TTL + skew");
    assert!(once(3, expiry + TimeDelta::microseconds(1)).is_ok());
    assert!(registry.release(first.host_id()));
    assert!(once(4, now()).is_ok());
}

/// The issue's exact-boundary replay: a document joined once is refused as a replay at every
/// later instant the TTL admits it, up to the last (`pendingTime + ttl`, inclusive), whatever
/// the TTL and the future skew (zero included); one nanosecond later the TTL refuses it.
#[test]
fn no_replay_at_the_ttl_boundary() {
    let pending: DateTime<Utc> = fixtures::PENDING_TIME.parse().unwrap();
    let lookup = FakeLookup {
        answer: Some(running()),
        ..FakeLookup::default()
    };
    let ns = TimeDelta::nanoseconds;
    for ttl in [
        Duration::from_secs(1),
        Duration::new(300, 1),
        Duration::new(300, 500_000_000),
        Duration::new(86_400, 999),
    ] {
        for skew in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_secs(1),
        ] {
            let verifier = Verifier::builder(test_trust())
                .allow(AllowRule::account("123456789012".parse().unwrap()))
                .ttl(ttl)
                .max_future_skew(skew)
                .build()
                .unwrap();
            let registry = InMemoryJoinRegistry::new();
            let join_at = |requester: u8, at: DateTime<Utc>| {
                let join = verifier.verify(&blob(), at)?;
                now_or_never(join.check_instance_once(&lookup, &registry, [requester; 32], at))
                    .map_err(|e| match e {
                        CheckError::Rejected(e) => e,
                        other => panic!("{other:?}"),
                    })
            };
            let last = pending + TimeDelta::from_std(ttl).unwrap();
            let case = format!("ttl {ttl:?} skew {skew:?}");
            assert!(join_at(1, pending).is_ok(), "{case}");
            for at in [last - ns(1_000), last - ns(1), last] {
                assert!(
                    matches!(join_at(2, at), Err(Error::AlreadyJoined { .. })),
                    "{case}: replay at {at:?}"
                );
            }
            assert!(
                matches!(join_at(2, last + ns(1)), Err(Error::Expired { .. })),
                "{case}"
            );
        }
    }
}

/// A registry over an in-memory one whose claims fail: after recording (`lost_answer`, as
/// when a connection breaks after the write) or without; `reads` counts record reads.
#[derive(Debug, Default)]
struct FailingClaims {
    inner: InMemoryJoinRegistry,
    lost_answer: bool,
    reads: Mutex<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("the fake registry failed")]
struct RegistryDown;

impl JoinRegistry for FailingClaims {
    type Error = RegistryDown;

    async fn claim(&self, claim: &JoinClaim) -> Result<bool, RegistryDown> {
        if self.lost_answer {
            let _ = self.inner.claim(claim).await;
        }
        Err(RegistryDown)
    }

    async fn record(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimRecord>, RegistryDown> {
        *self.reads.lock().unwrap() += 1;
        Ok(self.inner.record(host_id, now).await.unwrap())
    }
}

#[test]
fn a_claim_that_failed_is_read_back_before_answering() {
    let verifier = verifier_with(AllowRule::account("123456789012".parse().unwrap()));
    let join = verifier.verify(&blob(), now()).unwrap();
    let lookup = FakeLookup {
        answer: Some(running()),
        ..FakeLookup::default()
    };
    // The write happened, its answer was lost: the read back finds this requester's record.
    let lost = FailingClaims {
        lost_answer: true,
        ..FailingClaims::default()
    };
    let outcome = now_or_never(join.check_instance_once(&lookup, &lost, [1; 32], now()));
    assert_eq!(
        outcome.unwrap().host_id(),
        "123456789012-i-0123456789abcdef0"
    );
    assert_eq!(
        *lost.reads.lock().unwrap(),
        2,
        "before the lookup and after the claim"
    );
    // Nothing was written: the claim's error, and nothing stored blocks a retry.
    let down = FailingClaims::default();
    let failed = now_or_never(join.check_instance_once(&lookup, &down, [1; 32], now()));
    assert!(
        matches!(failed, Err(CheckError::Registry(RegistryDown))),
        "{failed:?}"
    );
    assert!(down.inner.is_empty());
}

#[test]
fn real_samples_against_rules_and_ttl() {
    let trust = TrustStore::aws();
    for sample in shared::samples_of("rsa2048")
        .iter()
        .filter(|s| s.expect == "accept")
    {
        let own = Verifier::builder(trust.clone())
            .allow(AllowRule::account(sample.account_id.parse().unwrap()))
            .build()
            .unwrap();
        let join = own.verify(&sample.blob(), sample.now).unwrap();
        let mut facts = InstanceFacts::new(sample.instance_id.as_str(), InstanceState::Running);
        facts.owner_id = Some(sample.account_id.clone());
        assert_eq!(
            join.check_facts(Some(&facts)).unwrap().host_id(),
            format!("{}-{}", sample.account_id, sample.instance_id)
        );
        let late = sample.pending_time + TimeDelta::minutes(6);
        assert!(matches!(
            own.verify(&sample.blob(), late),
            Err(Error::Expired { .. })
        ));
        let foreign = Verifier::builder(trust.clone())
            .allow(AllowRule::account("111111111111".parse().unwrap()))
            .build()
            .unwrap();
        assert!(matches!(
            foreign.verify(&sample.blob(), sample.now),
            Err(Error::NoMatchingRule { .. })
        ));
    }
}

#[test]
fn in_memory_registry_keeps_only_the_live_window() {
    use ec2_iid::{JoinClaim, JoinRegistry as _};
    let registry = InMemoryJoinRegistry::new();
    let start: DateTime<Utc> = fixtures::PENDING_TIME.parse().unwrap();
    // 100,000 hosts, one launched every 10 ms, each record kept 6 minutes: at most
    // 36,000 records are live at any time, however long the registry runs.
    let keep = TimeDelta::minutes(6);
    let live = 36_000;
    for i in 0..100_000_i64 {
        let now = start + TimeDelta::milliseconds(10 * i);
        let claim = JoinClaim::new(format!("host-{i}"), now, now + keep, now);
        assert!(now_or_never(registry.claim(&claim)).unwrap());
        assert!(
            registry.len() <= live + 1,
            "{} records at claim {i}",
            registry.len()
        );
    }
    assert!(registry.len() >= live - 1, "the live window is kept");
    // Semantics at the API: replay refused, a newer launch wins, an older one does not.
    let now = start + TimeDelta::milliseconds(10 * 100_000);
    let claim = |host: &str, launched: DateTime<Utc>| {
        now_or_never(registry.claim(&JoinClaim::new(host, launched, launched + keep, now))).unwrap()
    };
    assert!(claim("h", now));
    assert!(!claim("h", now), "replay");
    assert!(claim("h", now + TimeDelta::seconds(1)), "restart");
    assert!(!claim("h", now), "older launch");
}

/// Lookups whose errors are `anyhow::Error` or `Box<dyn Error + Send + Sync>` work as well.
#[test]
fn lookups_may_fail_with_anyhow_or_boxed_errors() {
    struct Anyhow;
    impl InstanceLookup for Anyhow {
        type Error = anyhow::Error;
        async fn describe_instance(
            &self,
            _: &InstanceQuery,
        ) -> anyhow::Result<Option<InstanceFacts>> {
            Err(anyhow::anyhow!("assume role denied"))
        }
    }
    struct Boxed;
    impl InstanceLookup for Boxed {
        type Error = Box<dyn std::error::Error + Send + Sync>;
        async fn describe_instance(
            &self,
            _: &InstanceQuery,
        ) -> Result<Option<InstanceFacts>, Self::Error> {
            Err("endpoint unreachable".into())
        }
    }
    let verifier = verifier_with(AllowRule::account("123456789012".parse().unwrap()));
    let join = verifier.verify(&blob(), now()).unwrap();
    let err = now_or_never(join.check_instance(&Anyhow)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "instance lookup failed: assume role denied"
    );
    let err = now_or_never(join.check_instance(&Boxed)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "instance lookup failed: endpoint unreachable"
    );
    // And such a lookup makes a join.
    let registry = InMemoryJoinRegistry::new();
    let lookup = FakeLookup {
        answer: Some(running()),
        ..FakeLookup::default()
    };
    let outcome =
        now_or_never(join.check_instance_once(&lookup, &registry, [1; 32], now())).unwrap();
    let anyhow_err: anyhow::Error =
        CheckError::<Throttled>::Rejected(Error::InvalidSignature).into();
    assert_eq!(anyhow_err.to_string(), "invalid signature");
    assert_eq!(outcome.host_id(), "123456789012-i-0123456789abcdef0");
}

/// A rejection prints its reason once, in the alternate (`{:#}`) chain anyhow prints too.
#[test]
fn a_rejection_chain_prints_the_reason_once() {
    let rejected = CheckError::<Throttled>::Rejected(Error::InvalidSignature);
    assert!(std::error::Error::source(&rejected).is_none());
    let chained = anyhow::Error::from(rejected).context("join refused");
    assert_eq!(format!("{chained:#}"), "join refused: invalid signature");
    let lookup = anyhow::Error::from(CheckError::<Throttled>::Lookup(Throttled));
    assert_eq!(
        format!("{lookup:#}").matches("throttled").count(),
        1,
        "{lookup:#}"
    );
}
