//! Fleet selectors as rule bounds: `aws_tags`, `aws_security_group_ids`, `aws_iam_role_arns`,
//! `aws_organization_id` and `aws_organizational_unit_ids`: their shapes at setup, and each
//! single mismatch refused with the field named, letting the next candidate rule try.
#![cfg(test)] // clippy.toml says why

mod common;

use chrono::{DateTime, Utc};
use ec2_iid::ids::InstanceState;
use ec2_iid::{
    AccountOrganization, AllowRule, ConfigError, Error, InstanceFacts, TokenResource, TrustStore,
    Verifier, lookup_bound_checks,
};
use ec2_iid_test_support::fixtures;
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const ROLE: &str = "arn:aws:iam::123456789012:role/web-node";
const ORG: &str = "o-a1b2c3d4e5";
const OU: &str = "ou-a1b2-c3d4e5f6";
const ROOT: &str = "r-a1b2";

fn now() -> DateTime<Utc> {
    fixtures::NOW_FOR_TESTS.parse().unwrap()
}

fn trust() -> TrustStore {
    common::trust_with_test_ca("us-east-1")
}

fn blob() -> Vec<u8> {
    std::fs::read(fixtures::data_path("gen/rsa2048.b64")).unwrap()
}

/// A token whose rules are `rules`, read as YAML as an operator writes it; a refusal as its
/// message.
fn token(rules: Value) -> Result<Verifier, String> {
    let resource = json!({
        "kind": "token",
        "version": "v2",
        "metadata": {"name": "selectors", "expires": "3000-01-01T00:00:00Z"},
        "spec": {"roles": ["Node"], "join_method": "ec2", "allow": rules},
    });
    let yaml = serde_norway::to_string(&resource).unwrap();
    let resource: TokenResource = serde_norway::from_str(&yaml).map_err(|e| e.to_string())?;
    Verifier::builder(trust())
        .token(&resource)
        .build()
        .map_err(|e| e.to_string())
}

/// The rule using every selector, which [`matching`] facts meet.
fn all_selectors() -> Value {
    json!({
        "aws_account": ACCOUNT,
        "aws_tags": {"env": ["prod", "staging"], "team": ["web"]},
        "aws_security_group_ids": ["sg-0abc1234", "sg-0def5678"],
        "aws_iam_role_arns": [ROLE],
        "aws_organization_id": ORG,
        "aws_organizational_unit_ids": [OU],
    })
}

/// A change to [`matching`] facts.
type Edit = dyn Fn(&mut InstanceFacts);

fn matching() -> InstanceFacts {
    let mut facts = InstanceFacts::new("i-0123456789abcdef0", InstanceState::Running);
    facts.owner_id = Some(ACCOUNT.into());
    facts.tags = Some(
        [("env", "staging"), ("team", "web"), ("Name", "node-1")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
    );
    facts.security_group_ids = Some(vec!["sg-0aaa0000".into(), "sg-0def5678".into()]);
    facts.iam_role_arns = Some(vec![ROLE.into()]);
    facts.organization = Some(AccountOrganization::member(
        ORG,
        vec!["ou-a1b2-99999999".into(), OU.into(), ROOT.into()],
    ));
    facts
}

/// The refusal of a token with `rule`: where, and why.
fn invalid_field(rule: Value) -> (String, String) {
    let message = token(json!([rule])).unwrap_err();
    let (field, reason) = message.split_once(": ").unwrap();
    (field.to_owned(), reason.to_owned())
}

#[test]
fn every_selector_shape_is_checked_at_setup_naming_its_place() {
    let with = |field: &str, value: Value| {
        let mut rule = json!({"aws_account": ACCOUNT});
        rule[field] = value;
        invalid_field(rule)
    };
    let cases: [(&str, Value, &str, &str); 16] = [
        ("aws_tags", json!({}), "aws_tags", "an empty map"),
        ("aws_tags", json!(["env"]), "aws_tags", "expected a map"),
        (
            "aws_tags",
            json!({"env": []}),
            "aws_tags.env",
            "an empty list",
        ),
        (
            "aws_tags",
            json!({"env": "prod"}),
            "aws_tags.env",
            "expected a list",
        ),
        (
            "aws_tags",
            json!({"env": [1]}),
            "aws_tags.env[0]",
            "quoted string",
        ),
        (
            "aws_tags",
            json!({"aws:autoscaling:groupName": ["x"]}),
            "aws_tags.aws:autoscaling:groupName",
            "AWS's own",
        ),
        (
            "aws_tags",
            json!({"": ["x"]}),
            "aws_tags.",
            "1 to 128 characters, this one 0",
        ),
        (
            "aws_tags",
            json!({"k".repeat(129): ["x"]}),
            "aws_tags.kkkk",
            "this one 129",
        ),
        (
            "aws_tags",
            json!({"env": ["v".repeat(257)]}),
            "aws_tags.env[0]",
            "at most 256",
        ),
        (
            "aws_tags",
            Value::Object((0..51).map(|i| (format!("k{i}"), json!(["v"]))).collect()),
            "aws_tags",
            "51 tag keys",
        ),
        (
            "aws_security_group_ids",
            json!(["sg-web"]),
            "aws_security_group_ids[0]",
            "not a valid security group id",
        ),
        (
            "aws_security_group_ids",
            json!([]),
            "aws_security_group_ids",
            "an empty list",
        ),
        (
            "aws_iam_role_arns",
            json!(["arn:aws:iam::999999999999:role/web"]),
            "aws_iam_role_arns[0]",
            "not in the rule's account 123456789012",
        ),
        (
            "aws_iam_role_arns",
            json!(["arn:aws:iam::123456789012:instance-profile/web"]),
            "aws_iam_role_arns[0]",
            "not a valid IAM role ARN",
        ),
        (
            "aws_organization_id",
            json!("o-short"),
            "aws_organization_id",
            "not a valid organization id",
        ),
        (
            "aws_organizational_unit_ids",
            json!([OU]),
            "aws_organizational_unit_ids",
            "need aws_organization_id",
        ),
    ];
    for (field, value, path, reason) in cases {
        let (got_path, got_reason) = with(field, value.clone());
        assert!(
            got_path.starts_with(&format!("spec.allow[0].{path}")),
            "{field}={value}: {got_path}"
        );
        assert!(got_reason.contains(reason), "{field}={value}: {got_reason}");
    }
    // An OU id is `ou-…`: a root id is refused (the organization id stands for the root).
    let (path, reason) = invalid_field(json!({
        "aws_account": ACCOUNT, "aws_organization_id": ORG, "aws_organizational_unit_ids": [ROOT],
    }));
    assert_eq!(path, "spec.allow[0].aws_organizational_unit_ids[0]");
    assert!(reason.contains("organizational unit id"), "{reason}");
    // A profile role in another partition than the rule's role.
    let (path, reason) = invalid_field(json!({
        "aws_role": "arn:aws:iam::123456789012:role/describe",
        "aws_iam_role_arns": ["arn:aws-cn:iam::123456789012:role/web"],
    }));
    assert_eq!(path, "spec.allow[0].aws_iam_role_arns[0]");
    assert!(
        reason.contains("not in the rule's partition aws"),
        "{reason}"
    );
    // Control characters in a tag key are escaped in the path.
    let (path, _) = invalid_field(json!({"aws_account": ACCOUNT, "aws_tags": {"aws:\n": ["x"]}}));
    assert_eq!(path, "spec.allow[0].aws_tags.aws:\\n");
    // The builder checks the same.
    let rule = AllowRule::account(ACCOUNT.parse().unwrap());
    assert!(matches!(
        rule.clone().with_tags([("env".into(), vec![])]),
        Err(ConfigError::InvalidField { field, .. }) if field == "aws_tags.env"
    ));
    assert!(
        rule.with_tags([("env".into(), vec![String::new()])])
            .is_ok()
    );
}

#[test]
fn selector_typos_name_the_field_meant() {
    for (typo, meant) in [
        ("aws_tag", "aws_tags"),
        ("aws_security_groups", "aws_security_group_ids"),
        ("aws_iam_role_arn", "aws_iam_role_arns"),
        ("aws_organisation_id", "aws_organization_id"),
        ("aws_organizational_unit_id", "aws_organizational_unit_ids"),
    ] {
        let rule = json!({"aws_account": ACCOUNT, typo: ["x"]});
        let message = token(json!([rule])).unwrap_err();
        assert!(
            message.starts_with(&format!(
                "unknown field spec.allow[0].{typo}: did you mean {meant}?"
            )),
            "{message}"
        );
    }
}

#[test]
fn the_selectors_round_trip_and_count_as_lookup_bounds() {
    let rule: AllowRule = serde_json::from_value(all_selectors()).unwrap();
    assert!(rule.has_lookup_bounds());
    assert_eq!(serde_json::to_value(&rule).unwrap(), all_selectors());
    assert_eq!(rule.aws_tags()["env"], ["prod", "staging"]);
    assert_eq!(rule.aws_organization_id().map(|o| o.as_str()), Some(ORG));
    let tags_only = AllowRule::account(ACCOUNT.parse().unwrap())
        .with_tags([("env".into(), vec!["prod".into()])])
        .unwrap();
    assert!(tags_only.has_lookup_bounds());
}

#[test]
fn a_matching_instance_joins_and_each_single_mismatch_names_its_field() {
    let verifier = token(json!([all_selectors()])).unwrap();
    let pending = verifier.verify(&blob(), now()).unwrap();
    let query = pending.query();
    assert!(query.needs_instance_role && query.needs_organization);
    let outcome = pending.check_facts(Some(&matching())).unwrap();
    assert_eq!(outcome.matched_rule(), 0);

    let refused = |edit: &Edit| {
        let mut facts = matching();
        edit(&mut facts);
        pending.check_facts(Some(&facts)).unwrap_err()
    };
    let violated = |bound: &'static str, value: &str| Error::BoundViolated {
        bound,
        value: value.into(),
    };
    let set_tag = |key: &'static str, value: Option<&'static str>| {
        move |f: &mut InstanceFacts| {
            let tags = f.tags.as_mut().unwrap();
            match value {
                Some(value) => tags.insert(key.into(), value.into()),
                None => tags.remove(key),
            };
        }
    };
    assert_eq!(
        refused(&set_tag("env", Some("dev"))),
        violated("aws_tags", "env=dev")
    );
    assert_eq!(
        refused(&set_tag("team", None)),
        violated("aws_tags", "no tag team")
    );
    assert_eq!(
        refused(&|f| f.security_group_ids = Some(vec!["sg-0bad0000".into()])),
        violated("aws_security_group_ids", "sg-0bad0000")
    );
    assert_eq!(
        refused(&|f| f.security_group_ids = Some(vec![])),
        violated("aws_security_group_ids", "none")
    );
    assert_eq!(
        refused(&|f| f.iam_role_arns = Some(vec!["arn:aws:iam::123456789012:role/db".into()])),
        violated("aws_iam_role_arns", "arn:aws:iam::123456789012:role/db")
    );
    assert_eq!(
        refused(&|f| f.iam_role_arns = Some(vec![])),
        violated("aws_iam_role_arns", "none")
    );
    assert_eq!(
        refused(&|f| f.organization = Some(AccountOrganization::member(
            "o-zzzzzzzzzz",
            vec![ROOT.into()]
        ))),
        violated("aws_organization_id", "o-zzzzzzzzzz")
    );
    assert_eq!(
        refused(&|f| f.organization = Some(AccountOrganization::outside())),
        violated("aws_organization_id", "no organization")
    );
    assert_eq!(
        refused(&|f| f.organization = Some(AccountOrganization::member(
            ORG,
            vec!["ou-a1b2-00000000".into(), ROOT.into()]
        ))),
        violated("aws_organizational_unit_ids", "ou-a1b2-00000000/r-a1b2")
    );
    // A bound needs its fact: a lookup that did not fill it is told which.
    let unfilled: [(&str, &Edit); 4] = [
        ("aws_tags", &|f| f.tags = None),
        ("aws_security_group_ids", &|f| f.security_group_ids = None),
        ("aws_iam_role_arns", &|f| f.iam_role_arns = None),
        ("aws_organization_id", &|f| f.organization = None),
    ];
    for (fact, edit) in unfilled {
        assert_eq!(refused(edit), Error::MissingFact { fact });
    }
    let message = refused(&set_tag("env", Some("dev"))).to_string();
    assert_eq!(
        message,
        "instance fact for aws_tags is \"env=dev\", which the matched rule does not allow"
    );
}

#[test]
fn a_failing_selector_lets_the_next_rule_try() {
    let second = json!({"aws_account": ACCOUNT, "aws_tags": {"env": ["dev"]}});
    let verifier = token(json!([all_selectors(), second])).unwrap();
    let pending = verifier.verify(&blob(), now()).unwrap();
    let mut dev = matching();
    dev.tags
        .as_mut()
        .unwrap()
        .insert("env".into(), "dev".into());
    assert_eq!(pending.check_facts(Some(&dev)).unwrap().matched_rule(), 1);
    assert_eq!(
        pending
            .check_facts(Some(&matching()))
            .unwrap()
            .matched_rule(),
        0
    );
    // Neither: the first candidate's refusal.
    dev.tags.as_mut().unwrap().insert("env".into(), "qa".into());
    assert_eq!(
        pending.check_facts(Some(&dev)).unwrap_err(),
        Error::BoundViolated {
            bound: "aws_tags",
            value: "env=qa".into()
        }
    );
}

#[test]
fn queries_ask_for_the_role_and_organization_only_when_a_candidate_needs_them() {
    let plain = token(json!([{"aws_account": ACCOUNT, "aws_tags": {"env": ["prod"]}}])).unwrap();
    let query = plain.verify(&blob(), now()).unwrap().query();
    assert!(!query.needs_instance_role && !query.needs_organization);
    // A later candidate's needs count: the facts must serve it too.
    let later = token(json!([
        {"aws_account": ACCOUNT, "aws_tags": {"env": ["prod"]}},
        {"aws_account": ACCOUNT, "aws_iam_role_arns": [ROLE]},
    ]))
    .unwrap();
    let query = later.verify(&blob(), now()).unwrap().query();
    assert!(query.needs_instance_role && !query.needs_organization);
    // A rule that does not match the document is no candidate.
    let other = token(json!([
        {"aws_account": ACCOUNT},
        {"aws_account": "999999999999", "aws_organization_id": ORG},
    ]))
    .unwrap();
    let query = other.verify(&blob(), now()).unwrap().query();
    assert!(!query.needs_organization);
}

#[test]
fn bound_checks_show_expected_and_actual_escaped() {
    let rule: AllowRule = serde_json::from_value(all_selectors()).unwrap();
    let mut facts = matching();
    facts
        .tags
        .as_mut()
        .unwrap()
        .insert("env".into(), format!("dev\u{1b}[31m{}", "x".repeat(100)));
    let lines: Vec<(String, String, Option<String>, bool)> = lookup_bound_checks(&rule, &facts)
        .into_iter()
        .map(|c| (c.field.to_owned(), c.expected, c.actual, c.holds))
        .collect();
    let fields: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        fields,
        [
            "aws_security_group_ids",
            "aws_tags",
            "aws_iam_role_arns",
            "aws_organization_id",
            "aws_organizational_unit_ids"
        ]
    );
    let tags = &lines[1];
    assert_eq!(tags.1, "env=prod|staging, team=web");
    let actual = tags.2.as_deref().unwrap();
    assert!(actual.starts_with("env=dev\\u{1b}[31mxxx"), "{actual}");
    assert!(actual.contains("…, team=web"), "{actual}");
    assert!(!actual.contains('\u{1b}'));
    assert!(!tags.3);
    assert!(lines.iter().filter(|l| l.0 != "aws_tags").all(|l| l.3));
    assert_eq!(
        lines[4].2.as_deref(),
        Some("ou-a1b2-99999999/ou-a1b2-c3d4e5f6/r-a1b2")
    );
    facts.iam_role_arns = None;
    let role = lookup_bound_checks(&rule, &facts).remove(2);
    assert_eq!((role.actual, role.holds), (None, false));
}
