//! Which allow rule admits a document: rules bound to their role's partition (aws, aws-cn,
//! aws-us-gov), and the first rule whose document and instance checks both pass, with one
//! lookup per distinct role.
#![cfg(test)] // clippy.toml says why

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use ec2_iid::ids::{InstanceState, Partition, RoleArn};
use ec2_iid::{
    AllowRule, CheckError, ConfigError, Error, Format, InstanceFacts, InstanceLookup,
    InstanceQuery, RuleMismatch, TokenResource, TrustStore, Verifier,
};
use ec2_iid_test_support::fixtures;
use ec2_iid_test_support::now_or_never;

const ACCOUNT: &str = "123456789012";

/// One region of each partition the tests cover.
const REGIONS: [(&str, Partition); 3] = [
    ("us-east-2", Partition::Aws),
    ("cn-north-1", Partition::AwsCn),
    ("us-gov-west-1", Partition::AwsUsGov),
];

fn now() -> DateTime<Utc> {
    fixtures::NOW_FOR_TESTS.parse().unwrap()
}

/// AWS's store plus the test CA for one region of each partition.
fn trust() -> TrustStore {
    let mut trust = TrustStore::aws();
    let regions = REGIONS.map(|(region, _)| region.parse().unwrap());
    trust
        .add_pem(
            Format::Rsa2048,
            fixtures::test_ca().cert_pem.as_bytes(),
            regions,
        )
        .unwrap();
    trust
}

/// The test document moved to `region` (and its zone `<region>a`), signed by the test CA.
fn blob_in(region: &str) -> Vec<u8> {
    let document = String::from_utf8(fixtures::document()).unwrap();
    assert!(document.contains("\"us-east-1\"") && document.contains("\"us-east-1a\""));
    let moved = document.replace("us-east-1", region);
    fixtures::BlobSpec::aws_like(moved.as_bytes()).build(&fixtures::test_ca())
}

fn role(partition: Partition, name: &str) -> RoleArn {
    format!("arn:{partition}:iam::{ACCOUNT}:role/{name}")
        .parse()
        .unwrap()
}

fn verifier(rules: impl IntoIterator<Item = AllowRule>) -> Verifier {
    let mut builder = Verifier::builder(trust());
    for rule in rules {
        builder = builder.allow(rule);
    }
    builder.build().unwrap()
}

// ------------------------------------------------------------------------------------------------
// Partitions
// ------------------------------------------------------------------------------------------------

#[test]
fn a_role_admits_only_documents_of_its_partition_and_shadows_nothing() {
    for (region, doc_partition) in REGIONS {
        for (_, rule_partition) in REGIONS {
            let by_role = AllowRule::role(role(rule_partition, "join"));
            let fallback = AllowRule::account(ACCOUNT.parse().unwrap());
            let verifier = verifier([by_role.clone(), fallback]);
            let pending = verifier.verify(&blob_in(region), now()).unwrap();
            let expected = if rule_partition == doc_partition {
                0
            } else {
                1
            };
            assert_eq!(
                pending.matched_rule(),
                expected,
                "{region} document, {rule_partition} role"
            );
            assert_eq!(pending.query().partition, doc_partition);

            let alone = verifier_with_only(by_role);
            let result = alone.verify(&blob_in(region), now());
            if rule_partition == doc_partition {
                let query = result.unwrap().query();
                assert_eq!(query.role_arn, Some(role(rule_partition, "join")));
                continue;
            }
            let Err(Error::NoMatchingRule { mismatches, .. }) = result else {
                panic!("{region} document admitted by a {rule_partition} role: {result:?}");
            };
            let [mismatch]: [RuleMismatch; 1] = mismatches.try_into().unwrap();
            assert_eq!(
                (mismatch.rule, mismatch.field),
                (0, "partition"),
                "{mismatch:?}"
            );
            assert_eq!(
                mismatch.to_string(),
                format!(
                    "rule 0: partition is {doc_partition} (region {region}), not \
                     {rule_partition} (the partition of aws_role)"
                )
            );
        }
    }
}

fn verifier_with_only(rule: AllowRule) -> Verifier {
    Verifier::builder(trust()).allow(rule).build().unwrap()
}

#[test]
fn a_partition_mismatch_names_role_and_region_and_what_to_write() {
    let cn_role = role(Partition::AwsCn, "join");
    let mismatch = |field: &str, region: &str| ConfigError::PartitionMismatch {
        field: field.into(),
        region: region.parse().unwrap(),
        role: cn_role.clone(),
    };

    // Read from a token: where it is, both names, and what to write.
    let yaml = format!(
        "kind: token\nversion: v2\nmetadata:\n  name: t\nspec:\n  roles: [Node]\n  \
         join_method: ec2\n  allow:\n  - aws_account: \"{ACCOUNT}\"\n  - aws_role: {cn_role}\n    \
         aws_regions: [cn-north-1, us-east-2]\n"
    );
    let err = serde_norway::from_str::<TokenResource>(&yaml)
        .map_err(|e| e.to_string())
        .and_then(|token| token.validate().map_err(|e| e.to_string()))
        .unwrap_err();
    let expected = mismatch("spec.allow[1].aws_regions[1]", "us-east-2").to_string();
    assert!(err.contains(&expected), "{err}");
    assert_eq!(
        expected,
        "spec.allow[1].aws_regions[1]: region us-east-2 is in partition aws, but aws_role \
         arn:aws-cn:iam::123456789012:role/join is in partition aws-cn: a rule covers one \
         partition; write one rule per partition, each with a role of its regions' partition \
         (arn:aws:iam::123456789012:role/… for us-east-2)"
    );

    // A rule read on its own.
    let json = format!(r#"{{"aws_role": "{cn_role}", "aws_regions": ["us-gov-west-1"]}}"#);
    let err = serde_json::from_str::<AllowRule>(&json).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&mismatch("aws_regions[0]", "us-gov-west-1").to_string()),
        "{err}"
    );

    // Built in code: the role set after the regions, or the regions after the role.
    let account = AllowRule::account(ACCOUNT.parse().unwrap());
    assert_eq!(
        account
            .clone()
            .with_regions(["us-east-2".parse().unwrap()])
            .with_role(cn_role.clone()),
        Err(mismatch("aws_regions[0]", "us-east-2"))
    );
    let late = AllowRule::role(cn_role.clone())
        .with_regions(["cn-north-1".parse().unwrap(), "us-east-2".parse().unwrap()]);
    assert_eq!(
        Verifier::builder(trust())
            .allow(account)
            .allow(late)
            .build()
            .unwrap_err(),
        mismatch("allow[1].aws_regions[1]", "us-east-2")
    );
    assert_eq!(
        mismatch("x", "us-east-2").kind(),
        ec2_iid::ErrorKind::InvalidConfig
    );

    // Regions of the role's partition are fine, and so are a role-less rule's regions of
    // several partitions (each document is matched against its own region).
    let gov = role(Partition::AwsUsGov, "join");
    let ok = AllowRule::role(gov).with_regions(["us-gov-west-1".parse().unwrap()]);
    assert_eq!(ok.partition(), Some(Partition::AwsUsGov));
    let spread = AllowRule::account(ACCOUNT.parse().unwrap())
        .with_regions(["us-east-2".parse().unwrap(), "cn-north-1".parse().unwrap()]);
    assert_eq!(spread.partition(), None);
    let verifier = verifier([ok, spread]);
    assert_eq!(
        verifier
            .verify(&blob_in("us-gov-west-1"), now())
            .unwrap()
            .matched_rule(),
        0
    );
    for region in ["us-east-2", "cn-north-1"] {
        let pending = verifier.verify(&blob_in(region), now()).unwrap();
        assert_eq!(pending.matched_rule(), 1, "{region}");
    }
}

#[test]
fn role_arns_of_unknown_partitions_are_refused() {
    for typo in [
        "arn:aws-gov:iam::123456789012:role/join",
        "arn:aws-china:iam::123456789012:role/join",
    ] {
        assert!(typo.parse::<RoleArn>().is_err(), "{typo}");
        let json = format!(r#"{{"aws_role": "{typo}"}}"#);
        let err = serde_json::from_str::<AllowRule>(&json).unwrap_err();
        assert!(err.to_string().contains("aws_role"), "{err}");
    }
}

// ------------------------------------------------------------------------------------------------
// First match, with instance bounds
// ------------------------------------------------------------------------------------------------

/// A fake DescribeInstances that answers `facts` to every role and records the queries.
#[derive(Debug)]
struct Recording {
    facts: Option<InstanceFacts>,
    /// The role whose queries fail (throttled), if any.
    failing: Option<RoleArn>,
    queries: Mutex<Vec<Option<RoleArn>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("throttled by the fake")]
struct Throttled;

impl InstanceLookup for Recording {
    type Error = Throttled;

    async fn describe_instance(
        &self,
        query: &InstanceQuery,
    ) -> Result<Option<InstanceFacts>, Throttled> {
        self.queries.lock().unwrap().push(query.role_arn.clone());
        if query.role_arn.is_some() && query.role_arn == self.failing {
            return Err(Throttled);
        }
        Ok(self.facts.clone())
    }
}

fn recording(facts: Option<InstanceFacts>) -> Recording {
    Recording {
        facts,
        failing: None,
        queries: Mutex::new(Vec::new()),
    }
}

/// A running instance of the account in `vpc`.
fn instance_in(vpc: &str) -> InstanceFacts {
    let mut facts = InstanceFacts::new("i-0123456789abcdef0", InstanceState::Running);
    facts.owner_id = Some(ACCOUNT.into());
    facts.vpc_id = Some(vpc.into());
    facts
}

fn in_vpc(rule: AllowRule, vpc: &str) -> AllowRule {
    rule.with_vpc_ids([vpc.parse().unwrap()])
}

fn account_rule() -> AllowRule {
    AllowRule::account(ACCOUNT.parse().unwrap())
}

fn vpc_violated(vpc: &str) -> Error {
    Error::BoundViolated {
        bound: "aws_vpc_ids",
        value: vpc.into(),
    }
}

#[test]
fn a_bounded_rule_falls_through_to_the_next_of_the_same_role() {
    let verifier = verifier([in_vpc(account_rule(), "vpc-11111111"), account_rule()]);
    let pending = verifier.verify(&blob_in("us-east-2"), now()).unwrap();
    assert_eq!(pending.matched_rule(), 0, "the first candidate");

    let inside = instance_in("vpc-11111111");
    let outcome = pending.check_facts(Some(&inside)).unwrap();
    assert_eq!(outcome.matched_rule(), 0);
    assert_eq!(outcome.rule().aws_vpc_ids().len(), 1);

    let outside = instance_in("vpc-22222222");
    let outcome = pending.check_facts(Some(&outside)).unwrap();
    assert_eq!(outcome.matched_rule(), 1);
    assert_eq!(outcome.rule(), &account_rule());
    assert_eq!(outcome.facts(), &outside);

    // Through a lookup: one query, as the rules share a role (none).
    for (facts, rule) in [(inside, 0), (outside, 1)] {
        let lookup = recording(Some(facts));
        let outcome = now_or_never(pending.check_instance(&lookup)).unwrap();
        assert_eq!(outcome.matched_rule(), rule);
        assert_eq!(*lookup.queries.lock().unwrap(), [None]);
    }

    // The instance's own failures are not the rule's: no later rule admits a stopped instance.
    for vpc in ["vpc-11111111", "vpc-22222222"] {
        let mut stopped = instance_in(vpc);
        stopped.state = InstanceState::Stopped;
        assert_eq!(
            pending.check_facts(Some(&stopped)).unwrap_err(),
            Error::InstanceNotRunning {
                state: InstanceState::Stopped
            }
        );
    }
    assert!(matches!(
        pending.check_facts(None).unwrap_err(),
        Error::InstanceNotFound { .. }
    ));

    // The root-volume check comes after the bounds: rule 1 reaches it and refuses the instance
    // for good, and the refusal is the first candidate's.
    let strict = Verifier::builder(trust())
        .allow(in_vpc(account_rule(), "vpc-11111111"))
        .allow(account_rule())
        .root_volume_check(true)
        .build()
        .unwrap();
    let pending = strict.verify(&blob_in("us-east-2"), now()).unwrap();
    let mut swapped = instance_in("vpc-22222222");
    swapped.root_device_type = Some("ebs".into());
    swapped.primary_eni_attach_time = Some("2026-11-01T12:00:00Z".parse().unwrap());
    swapped.root_volume_attach_time = Some("2026-11-01T12:05:00Z".parse().unwrap());
    assert_eq!(
        pending.check_facts(Some(&swapped)).unwrap_err(),
        vpc_violated("vpc-22222222")
    );
    swapped.root_volume_attach_time = swapped.primary_eni_attach_time;
    assert_eq!(
        pending.check_facts(Some(&swapped)).unwrap().matched_rule(),
        1
    );
}

#[test]
fn without_a_fall_through_candidate_the_first_rule_refuses() {
    let other_account = AllowRule::account("222222222222".parse().unwrap());
    let other_region = account_rule().with_regions(["us-gov-west-1".parse().unwrap()]);
    let verifier = verifier([
        in_vpc(account_rule(), "vpc-11111111"),
        other_account,
        other_region,
        in_vpc(account_rule(), "vpc-33333333"),
    ]);
    let pending = verifier.verify(&blob_in("us-east-2"), now()).unwrap();
    let outside = instance_in("vpc-22222222");
    assert_eq!(
        pending.check_facts(Some(&outside)).unwrap_err(),
        vpc_violated("vpc-22222222"),
        "rule 0's refusal, after rule 3 refused too"
    );
    let lookup = recording(Some(outside));
    let err = now_or_never(pending.check_instance(&lookup)).unwrap_err();
    assert!(
        matches!(&err, CheckError::Rejected(e) if *e == vpc_violated("vpc-22222222")),
        "{err:?}"
    );
    assert_eq!(lookup.queries.lock().unwrap().len(), 1);
    // Rules that do not match the document are no candidates: rule 3 admits vpc-3.
    let third = pending.check_facts(Some(&instance_in("vpc-33333333")));
    assert_eq!(third.unwrap().matched_rule(), 3);
    // A bound that needs a fact the lookup did not give falls through like a violated one.
    let mut no_vpc = instance_in("vpc-33333333");
    no_vpc.vpc_id = None;
    assert_eq!(
        pending.check_facts(Some(&no_vpc)).unwrap_err(),
        Error::MissingFact {
            fact: "aws_vpc_ids"
        }
    );
}

#[test]
fn rules_of_two_roles_make_at_most_two_lookups_in_order() {
    let first = role(Partition::Aws, "first");
    let second = role(Partition::Aws, "second");
    let by = |role: &RoleArn| AllowRule::role(role.clone());
    let verifier = verifier([
        in_vpc(by(&first), "vpc-11111111"),
        in_vpc(by(&second), "vpc-22222222"),
        in_vpc(by(&first), "vpc-33333333"),
        by(&second),
    ]);
    let pending = verifier.verify(&blob_in("us-east-2"), now()).unwrap();
    assert_eq!(pending.query().role_arn.as_ref(), Some(&first));

    // (the instance's VPC, the rule that admits it, the roles asked in order)
    let cases = [
        ("vpc-11111111", 0, vec![Some(first.clone())]),
        (
            "vpc-22222222",
            1,
            vec![Some(first.clone()), Some(second.clone())],
        ),
        // Rule 2 shares rule 0's answer; rule 1 (the second role) comes first, so it is asked.
        (
            "vpc-33333333",
            2,
            vec![Some(first.clone()), Some(second.clone())],
        ),
        (
            "vpc-44444444",
            3,
            vec![Some(first.clone()), Some(second.clone())],
        ),
    ];
    for (vpc, rule, asked) in cases {
        let lookup = recording(Some(instance_in(vpc)));
        let outcome = now_or_never(pending.check_instance(&lookup)).unwrap();
        assert_eq!(outcome.matched_rule(), rule, "{vpc}");
        assert_eq!(*lookup.queries.lock().unwrap(), asked, "{vpc}");
    }

    // check_facts has the first role's answer only: it stops at the first rule of another role
    // rather than grant rule 2 before rule 1 was asked.
    assert_eq!(
        pending
            .check_facts(Some(&instance_in("vpc-11111111")))
            .unwrap()
            .matched_rule(),
        0
    );
    assert_eq!(
        pending
            .check_facts(Some(&instance_in("vpc-33333333")))
            .unwrap_err(),
        vpc_violated("vpc-33333333")
    );

    // A failed lookup is returned at once: a later rule is not tried while an earlier one is
    // undecided.
    let mut throttled = recording(Some(instance_in("vpc-44444444")));
    throttled.failing = Some(second.clone());
    let err = now_or_never(pending.check_instance(&throttled)).unwrap_err();
    assert!(matches!(err, CheckError::Lookup(Throttled)), "{err:?}");
    assert_eq!(
        *throttled.queries.lock().unwrap(),
        [Some(first.clone()), Some(second.clone())]
    );

    // The instance's own refusal ends the check after the first lookup.
    let mut stopped = instance_in("vpc-44444444");
    stopped.state = InstanceState::Stopped;
    let lookup = recording(Some(stopped));
    let err = now_or_never(pending.check_instance(&lookup)).unwrap_err();
    assert!(
        matches!(&err, CheckError::Rejected(Error::InstanceNotRunning { .. })),
        "{err:?}"
    );
    assert_eq!(*lookup.queries.lock().unwrap(), [Some(first)]);
}

#[test]
fn check_instance_once_claims_with_the_rule_that_passed() {
    let verifier = verifier([in_vpc(account_rule(), "vpc-11111111"), account_rule()]);
    let pending = verifier.verify(&blob_in("us-east-2"), now()).unwrap();
    let registry = ec2_iid::InMemoryJoinRegistry::new();
    let lookup = recording(Some(instance_in("vpc-22222222")));
    let outcome =
        now_or_never(pending.check_instance_once(&lookup, &registry, [7; 32], now())).unwrap();
    assert_eq!(outcome.matched_rule(), 1);
    let again =
        now_or_never(pending.check_instance_once(&lookup, &registry, [8; 32], now())).unwrap_err();
    assert!(matches!(
        again,
        CheckError::Rejected(Error::AlreadyJoined { .. })
    ));
    assert_eq!(lookup.queries.lock().unwrap().len(), 1);
}
