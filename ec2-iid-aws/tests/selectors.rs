//! Fleet selectors against moto: a token using tags, security groups, the instance profile's
//! role and the AWS organization admits a matching instance, and refuses each single mismatch
//! naming the field. moto serves EC2 (tags, groups, profiles), IAM, STS and Organizations.
#![cfg(test)] // clippy.toml says why

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region as SdkRegion, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{IamInstanceProfileSpecification, ResourceType, Tag, TagSpecification};
use chrono::{DateTime, Utc};
use ec2_iid::ids::InstanceState;
use ec2_iid::{
    CheckError, Error, Format, InstanceLookup, InstanceQuery, TokenResource, TrustStore, Verifier,
};
use ec2_iid_aws::{BatchingLookup, Ec2Lookup, Ec2LookupError, OrganizationDirectory};
use ec2_iid_test_support::fixtures;
use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use serde_json::{Value, json};

const REGION: &str = "eu-west-1";
const AMI: &str = "ami-12c6146b";
const ROLE: &str = "arn:aws:iam::123456789012:role/web-node";
const ORGANIZATIONS_ROLE: &str = "arn:aws:iam::123456789012:role/read-organization";

async fn sdk_config(url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(SdkRegion::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .endpoint_url(url)
        .load()
        .await
}

/// What the fleet looks like in moto.
struct Fleet {
    instance_id: String,
    group: String,
    other_group: String,
    organization: String,
    unit: String,
    other_unit: String,
    root: String,
}

/// An organization with this account in OU `fleet`; a role in an instance profile; an instance
/// with tags `env=prod`, `team=web`, in one security group, with that profile.
async fn fleet(config: &SdkConfig) -> Fleet {
    let organizations = aws_sdk_organizations::Client::new(config);
    let organization = organizations
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let organization = organization
        .organization()
        .unwrap()
        .id()
        .unwrap()
        .to_owned();
    let roots = organizations.list_roots().send().await.unwrap();
    let root = roots.roots()[0].id().unwrap().to_owned();
    let mut units = Vec::new();
    for name in ["fleet", "other"] {
        let out = organizations
            .create_organizational_unit()
            .parent_id(&root)
            .name(name)
            .send()
            .await
            .unwrap();
        units.push(out.organizational_unit().unwrap().id().unwrap().to_owned());
    }
    organizations
        .move_account()
        .account_id(OWN_ACCOUNT)
        .source_parent_id(&root)
        .destination_parent_id(&units[0])
        .send()
        .await
        .unwrap();

    let iam = aws_sdk_iam::Client::new(config);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name("web-node")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    iam.create_instance_profile()
        .instance_profile_name("web-node")
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name("web-node")
        .role_name("web-node")
        .send()
        .await
        .unwrap();

    let ec2 = aws_sdk_ec2::Client::new(config);
    let mut groups = Vec::new();
    for name in ["web", "other"] {
        let out = ec2
            .create_security_group()
            .group_name(name)
            .description(name)
            .send()
            .await
            .unwrap();
        groups.push(out.group_id().unwrap().to_owned());
    }
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let out = ec2
        .run_instances()
        .image_id(AMI)
        .min_count(1)
        .max_count(1)
        .security_group_ids(&groups[0])
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name("web-node")
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(tag("env", "prod"))
                .tags(tag("team", "web"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let instance_id = out.instances()[0].instance_id().unwrap().to_owned();
    Fleet {
        instance_id,
        group: groups[0].clone(),
        other_group: groups[1].clone(),
        organization,
        unit: units[0].clone(),
        other_unit: units[1].clone(),
        root,
    }
}

/// The rule the Done-when token uses: every selector, all matching [`fleet`]'s instance.
fn matching_rule(fleet: &Fleet) -> Value {
    json!({
        "aws_account": OWN_ACCOUNT,
        "aws_regions": [REGION],
        "aws_tags": {"env": ["prod", "staging"], "team": ["web"]},
        "aws_security_group_ids": [fleet.group],
        "aws_iam_role_arns": [ROLE],
        "aws_organization_id": fleet.organization,
        "aws_organizational_unit_ids": [fleet.unit],
    })
}

fn verifier(rule: &Value) -> Verifier {
    let resource: TokenResource = serde_json::from_value(json!({
        "kind": "token",
        "version": "v2",
        "metadata": {"name": "fleet", "expires": "3000-01-01T00:00:00Z"},
        "spec": {"roles": ["Node"], "join_method": "ec2", "allow": [rule]},
    }))
    .unwrap();
    let mut trust = TrustStore::aws();
    trust
        .add_pem(
            Format::Rsa2048,
            fixtures::test_ca().cert_pem.as_bytes(),
            [REGION.parse().unwrap()],
        )
        .unwrap();
    Verifier::builder(trust).token(&resource).build().unwrap()
}

/// `/rsa2048` of the instance, signed by the test CA, launched at `now`.
fn document(instance_id: &str, now: DateTime<Utc>) -> Vec<u8> {
    let pending_time = now.format("%Y-%m-%dT%H:%M:%SZ");
    let document = format!(
        r#"{{"accountId" : "{OWN_ACCOUNT}", "architecture" : "x86_64",
  "availabilityZone" : "{REGION}a", "imageId" : "{AMI}", "instanceId" : "{instance_id}",
  "instanceType" : "t2.micro", "pendingTime" : "{pending_time}", "privateIp" : "10.0.0.10",
  "region" : "{REGION}", "version" : "2017-09-30"}}"#
    );
    let spec = fixtures::BlobSpec {
        signing_time: Some(now.format("%y%m%d%H%M%SZ").to_string()),
        ..fixtures::BlobSpec::aws_like(document.as_bytes())
    };
    fixtures::imds_base64(&spec.build(&fixtures::test_ca())).into_bytes()
}

/// Waits until moto reports the instance running.
async fn wait_running(lookup: &Ec2Lookup, instance_id: &str) {
    let query = InstanceQuery::new(
        OWN_ACCOUNT.parse().unwrap(),
        instance_id.parse().unwrap(),
        REGION.parse().unwrap(),
    );
    for _ in 0..50 {
        let facts = lookup.describe_instance(&query).await.unwrap().unwrap();
        if facts.state == InstanceState::Running {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("instance {instance_id} never ran");
}

/// The join's result for `rule` with `lookup`.
async fn check<L: InstanceLookup>(
    lookup: &L,
    rule: &Value,
    blob: &[u8],
    now: DateTime<Utc>,
) -> Result<usize, CheckError<L::Error>> {
    let verifier = verifier(rule);
    let pending = verifier.verify(blob, now).unwrap();
    pending
        .check_instance(lookup)
        .await
        .map(|outcome| outcome.matched_rule())
}

#[tokio::test]
async fn a_token_using_every_selector_admits_the_fleet_and_names_each_mismatch() {
    let Some(moto) = Moto::start() else { return };
    let config = sdk_config(&moto.url).await;
    let fleet = fleet(&config).await;
    let role: ec2_iid::ids::RoleArn = ORGANIZATIONS_ROLE.parse().unwrap();
    let lookup = Ec2Lookup::builder(&config)
        .endpoint_url(&moto.url)
        .organizations_role(role)
        .build()
        .unwrap();
    wait_running(&lookup, &fleet.instance_id).await;
    let now = DateTime::from(std::time::SystemTime::now());
    let blob = document(&fleet.instance_id, now);

    let rule = matching_rule(&fleet);
    assert_eq!(check(&lookup, &rule, &blob, now).await.unwrap(), 0);
    // The facts the selectors were judged on.
    let query = verifier(&rule).verify(&blob, now).unwrap().query();
    let facts = lookup.describe_instance(&query).await.unwrap().unwrap();
    assert_eq!(facts.iam_role_arns, Some(vec![ROLE.to_owned()]));
    assert_eq!(facts.security_group_ids, Some(vec![fleet.group.clone()]));
    let organization = facts.organization.unwrap();
    assert_eq!(
        organization.organization_id.as_deref(),
        Some(fleet.organization.as_str())
    );
    assert_eq!(
        organization.parent_ids,
        [fleet.unit.clone(), fleet.root.clone()]
    );

    let mismatches: [(&str, Value, &str); 6] = [
        ("aws_tags", json!({"env": ["staging"]}), "env=prod"),
        ("aws_tags", json!({"tier": ["front"]}), "no tag tier"),
        (
            "aws_security_group_ids",
            json!([fleet.other_group]),
            &fleet.group,
        ),
        (
            "aws_iam_role_arns",
            json!(["arn:aws:iam::123456789012:role/db-node"]),
            ROLE,
        ),
        (
            "aws_organization_id",
            json!("o-zzzzzzzzzz"),
            &fleet.organization,
        ),
        ("aws_organizational_unit_ids", json!([fleet.other_unit]), ""),
    ];
    for (field, value, shown) in mismatches {
        let mut rule = matching_rule(&fleet);
        rule[field] = value.clone();
        let err = check(&lookup, &rule, &blob, now).await.unwrap_err();
        let CheckError::Rejected(Error::BoundViolated { bound, value: got }) = &err else {
            panic!("{field}={value}: {err:?}");
        };
        assert_eq!(*bound, field, "{field}={value}");
        assert!(got.contains(shown), "{field}={value}: {got}");
        assert!(err.to_string().contains(field), "{err}");
    }
    // Cached: one GetInstanceProfile, one ListAccounts, one ListParents per level.
    assert_eq!(lookup.profile_calls(), 1);
    assert_eq!(lookup.organizations_calls(), 3);

    // The same through BatchingLookup, which paces DescribeInstances only.
    let batching = BatchingLookup::new(lookup.clone());
    assert_eq!(check(&batching, &rule, &blob, now).await.unwrap(), 0);
    // Its own caches, so the calls again; counted where serve's /metrics reads them.
    assert_eq!(batching.lookup().profile_calls(), 1);
    assert_eq!(batching.lookup().organizations_calls(), 3);

    // An accounts file instead of Organizations.
    let file = json!({
        "organization_id": fleet.organization,
        "accounts": {OWN_ACCOUNT: [fleet.unit, fleet.root]},
    });
    let directory = OrganizationDirectory::from_json(file.to_string().as_bytes()).unwrap();
    let from_file = Ec2Lookup::builder(&config)
        .endpoint_url(&moto.url)
        .organization_directory(directory)
        .build()
        .unwrap();
    assert_eq!(check(&from_file, &rule, &blob, now).await.unwrap(), 0);
    let mut elsewhere = matching_rule(&fleet);
    elsewhere["aws_organizational_unit_ids"] = json!([fleet.other_unit]);
    assert!(matches!(
        check(&from_file, &elsewhere, &blob, now).await,
        Err(CheckError::Rejected(Error::BoundViolated {
            bound: "aws_organizational_unit_ids",
            ..
        }))
    ));
    assert_eq!(from_file.organizations_calls(), 0);

    // A profile IAM no longer knows (NoSuchEntity) holds no role.
    let iam = aws_sdk_iam::Client::new(&config);
    iam.remove_role_from_instance_profile()
        .instance_profile_name("web-node")
        .role_name("web-node")
        .send()
        .await
        .unwrap();
    iam.delete_instance_profile()
        .instance_profile_name("web-node")
        .send()
        .await
        .unwrap();
    let fresh = Ec2Lookup::builder(&config)
        .endpoint_url(&moto.url)
        .organization_directory(
            OrganizationDirectory::from_json(file.to_string().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let err = check(&fresh, &rule, &blob, now).await.unwrap_err();
    assert!(
        matches!(
            &err,
            CheckError::Rejected(Error::BoundViolated { bound: "aws_iam_role_arns", value })
                if value == "none"
        ),
        "{err:?}"
    );

    // No organizations source: the lookup says so rather than guess.
    let without = Ec2Lookup::builder(&config)
        .endpoint_url(&moto.url)
        .build()
        .unwrap();
    let err = check(&without, &rule, &blob, now).await.unwrap_err();
    assert!(
        matches!(
            err,
            CheckError::Lookup(Ec2LookupError::NoOrganizationSource)
        ),
        "{err:?}"
    );
}
