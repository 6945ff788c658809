//! Checks on what `DescribeInstances` said about the instance: pure, sync.

use core::time::Duration;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{InstanceProfileArn, InstanceState};
use crate::policy::rules::AllowRule;
use crate::signature::VerifiedDocument;
use crate::text::{bounded, bounded_escaped};

/// What `DescribeInstances` says about an instance that the join checks need.
///
/// Field names follow the EC2 API in snake case; all but `instance_id` and `state` are
/// optional because not every caller fetches them (the checks that need one say so).
#[non_exhaustive]
#[derive(Clone, Debug, Default, Eq, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceFacts {
    /// `InstanceId`.
    pub instance_id: String,
    /// `State.Name`.
    pub state: InstanceState,
    /// `Reservation.OwnerId`: the account that owns the instance.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// `ImageId`.
    #[serde(default)]
    pub image_id: Option<String>,
    /// `VpcId`.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// `SubnetId`.
    #[serde(default)]
    pub subnet_id: Option<String>,
    /// `IamInstanceProfile.Arn`.
    #[serde(default)]
    pub iam_instance_profile_arn: Option<String>,
    /// `LaunchTime`.
    #[serde(default)]
    pub launch_time: Option<DateTime<Utc>>,
    /// `RootDeviceType`: `ebs` or `instance-store`.
    #[serde(default)]
    pub root_device_type: Option<String>,
    /// `BlockDeviceMappings[RootDeviceName].Ebs.AttachTime`.
    #[serde(default)]
    pub root_volume_attach_time: Option<DateTime<Utc>>,
    /// `NetworkInterfaces[DeviceIndex = 0].Attachment.AttachTime`.
    #[serde(default)]
    pub primary_eni_attach_time: Option<DateTime<Utc>>,
    /// `Tags`, key to value (EC2 allows 50 per instance; a lookup keeps at most
    /// [`MAX_INSTANCE_TAGS`]). Instance owners set them: untrusted text, escaped when shown.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    /// `SecurityGroups[].GroupId`.
    #[serde(default)]
    pub security_group_ids: Option<Vec<String>>,
    /// The role ARNs of the instance profile (`iam:GetInstanceProfile`; a profile holds at most
    /// one role): empty for an instance without a profile or a profile without a role. Filled
    /// when the query [needs it](crate::InstanceQuery::needs_instance_role).
    #[serde(default)]
    pub iam_role_arns: Option<Vec<String>>,
    /// The owner account's place in AWS Organizations. Filled when the query
    /// [needs it](crate::InstanceQuery::needs_organization).
    #[serde(default)]
    pub organization: Option<AccountOrganization>,
}

/// The most tags a lookup copies into [`InstanceFacts::tags`]: EC2's limit per resource.
pub const MAX_INSTANCE_TAGS: usize = 50;

/// Where an account sits in AWS Organizations, as the lookup's directory says.
#[non_exhaustive]
#[derive(Clone, Debug, Default, Eq, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountOrganization {
    /// `o-…`: the account's organization; `None` when the account is in no organization the
    /// lookup knows.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// The account's parents, from its own OU up to the root (`ou-…`, …, `r-…`).
    #[serde(default)]
    pub parent_ids: Vec<String>,
}

impl AccountOrganization {
    /// An account of `organization_id` under `parent_ids` (its own OU first, the root last).
    #[must_use]
    pub fn member(organization_id: impl Into<String>, parent_ids: Vec<String>) -> Self {
        Self {
            organization_id: Some(organization_id.into()),
            parent_ids,
        }
    }

    /// An account in no organization the lookup knows.
    #[must_use]
    pub fn outside() -> Self {
        Self::default()
    }
}

impl InstanceFacts {
    /// Facts with just an id and a state; set the other public fields as needed.
    #[must_use]
    pub fn new(instance_id: impl Into<String>, state: InstanceState) -> Self {
        Self {
            instance_id: instance_id.into(),
            state,
            ..Self::default()
        }
    }
}

/// Largest gap SPIRE tolerates between the root EBS volume's and the primary network
/// interface's attach times: both are attached at launch.
pub(crate) const MAX_ROOT_VOLUME_ATTACH_GAP: Duration = Duration::from_secs(60);

/// Whether [`check_instance_facts`] runs SPIRE's root-volume anti-tamper check.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub(crate) enum RootVolumeCheck {
    /// Not checked (Teleport's behaviour).
    #[default]
    Skip,
    /// For an EBS root, the root volume must have been attached within
    /// [`MAX_ROOT_VOLUME_ATTACH_GAP`] of the primary network interface.
    Require,
}

/// Checks an instance's facts against its verified document and the matched rule.
///
/// In order: the instance exists (`Some`); its id equals the document's; its state is
/// `running`; its owner (the reservation's `OwnerId`, required) is the document's account,
/// which the rule admits; the rule's lookup bounds hold
/// (`aws_vpc_ids`, `aws_subnet_ids`, `aws_iam_instance_profile_arns`, `aws_security_group_ids`,
/// `aws_tags`, `aws_iam_role_arns`, `aws_organization_id`, `aws_organizational_unit_ids`; a
/// bound needs its fact);
/// and, with [`RootVolumeCheck::Require`], SPIRE's anti-tamper check: for an EBS root, the root
/// volume was attached within 60 s of the primary network interface, i.e. at launch, not
/// swapped in later (skipped for `instance-store` roots).
///
/// [`PendingJoin::check_facts`](crate::PendingJoin::check_facts) and its lookup-driven siblings
/// call it.
///
/// # Errors
/// [`Error::InstanceNotFound`], [`Error::InstanceIdMismatch`], [`Error::InstanceNotRunning`],
/// [`Error::OwnerMismatch`], [`Error::BoundViolated`], [`Error::MissingFact`],
/// [`Error::RootVolumeReattached`].
pub(crate) fn check_instance_facts(
    verified: &VerifiedDocument,
    rule: &AllowRule,
    facts: Option<&InstanceFacts>,
    root_volume: RootVolumeCheck,
) -> Result<(), Error> {
    let document = verified.document();
    let facts = facts.ok_or_else(|| Error::InstanceNotFound {
        instance_id: document.instance_id.clone(),
    })?;
    if facts.instance_id != document.instance_id.as_str() {
        return Err(Error::InstanceIdMismatch {
            expected: document.instance_id.clone(),
            found: bounded(&facts.instance_id),
        });
    }
    if facts.state != InstanceState::Running {
        return Err(Error::InstanceNotRunning { state: facts.state });
    }
    let owner = facts
        .owner_id
        .as_deref()
        .ok_or(Error::MissingFact { fact: "owner_id" })?;
    if owner != document.account_id.as_str() || document.account_id != *rule.aws_account() {
        return Err(Error::OwnerMismatch {
            expected: rule.aws_account().clone(),
            found: bounded(owner),
        });
    }
    check_lookup_bounds(rule, facts)?;
    if root_volume == RootVolumeCheck::Require {
        check_root_volume(facts)?;
    }
    Ok(())
}

fn check_root_volume(facts: &InstanceFacts) -> Result<(), Error> {
    let root_type = facts
        .root_device_type
        .as_deref()
        .ok_or(Error::MissingFact {
            fact: "root_device_type",
        })?;
    if root_type == "instance-store" {
        return Ok(());
    }
    let volume: DateTime<Utc> = facts.root_volume_attach_time.ok_or(Error::MissingFact {
        fact: "root_volume_attach_time",
    })?;
    let eni = facts.primary_eni_attach_time.ok_or(Error::MissingFact {
        fact: "primary_eni_attach_time",
    })?;
    let gap = volume.signed_duration_since(eni).abs();
    if gap.to_std().unwrap_or(Duration::MAX) > MAX_ROOT_VOLUME_ATTACH_GAP {
        return Err(Error::RootVolumeReattached {
            gap: gap.to_std().unwrap_or(Duration::MAX),
        });
    }
    Ok(())
}

/// Checks the rule's lookup bounds against what the lookup said (a bound needs its fact), in
/// the order of [`LOOKUP_BOUNDS`].
fn check_lookup_bounds(rule: &AllowRule, facts: &InstanceFacts) -> Result<(), Error> {
    LOOKUP_BOUNDS
        .iter()
        .try_for_each(|&bound| check_one_bound(bound, rule, facts))
}

/// The rule fields checked against [`InstanceFacts`], in the order they are checked.
const LOOKUP_BOUNDS: [&str; 8] = [
    "aws_vpc_ids",
    "aws_subnet_ids",
    "aws_iam_instance_profile_arns",
    "aws_security_group_ids",
    "aws_tags",
    "aws_iam_role_arns",
    "aws_organization_id",
    "aws_organizational_unit_ids",
];

/// Checks one lookup bound (`Ok` when the rule does not set it).
fn check_one_bound(
    bound: &'static str,
    rule: &AllowRule,
    facts: &InstanceFacts,
) -> Result<(), Error> {
    match bound {
        "aws_vpc_ids" => check_bound(
            bound,
            rule.aws_vpc_ids(),
            facts.vpc_id.as_deref(),
            |a, v| a.as_str() == v,
        ),
        "aws_subnet_ids" => check_bound(
            bound,
            rule.aws_subnet_ids(),
            facts.subnet_id.as_deref(),
            |a, v| a.as_str() == v,
        ),
        "aws_iam_instance_profile_arns" => check_bound(
            bound,
            rule.aws_iam_instance_profile_arns(),
            facts.iam_instance_profile_arn.as_deref(),
            InstanceProfileArn::matches,
        ),
        "aws_security_group_ids" => check_any(
            bound,
            rule.aws_security_group_ids(),
            facts.security_group_ids.as_deref(),
        ),
        "aws_tags" => check_tags(rule.aws_tags(), facts.tags.as_ref()),
        "aws_iam_role_arns" => check_any(
            bound,
            rule.aws_iam_role_arns(),
            facts.iam_role_arns.as_deref(),
        ),
        "aws_organization_id" => {
            let Some(wanted) = rule.aws_organization_id() else {
                return Ok(());
            };
            let organization = facts
                .organization
                .as_ref()
                .ok_or(Error::MissingFact { fact: bound })?;
            match organization.organization_id.as_deref() {
                Some(id) if id == wanted.as_str() => Ok(()),
                found => Err(Error::BoundViolated {
                    bound,
                    value: found.map_or_else(|| "no organization".to_owned(), bounded),
                }),
            }
        }
        "aws_organizational_unit_ids" => {
            let units = rule.aws_organizational_unit_ids();
            if units.is_empty() {
                return Ok(());
            }
            let organization = facts
                .organization
                .as_ref()
                .ok_or(Error::MissingFact { fact: bound })?;
            if organization
                .parent_ids
                .iter()
                .any(|parent| units.iter().any(|unit| unit.as_str() == parent))
            {
                Ok(())
            } else {
                Err(Error::BoundViolated {
                    bound,
                    value: bounded(&organization.parent_ids.join("/")),
                })
            }
        }
        _ => Ok(()),
    }
}

/// A list bound on a list fact: some value of the instance is allowed.
fn check_any<T: AsRef<str>>(
    bound: &'static str,
    allowed: &[T],
    values: Option<&[String]>,
) -> Result<(), Error> {
    if allowed.is_empty() {
        return Ok(());
    }
    let values = values.ok_or(Error::MissingFact { fact: bound })?;
    if values
        .iter()
        .any(|v| allowed.iter().any(|a| a.as_ref() == v))
    {
        Ok(())
    } else {
        Err(Error::BoundViolated {
            bound,
            value: bounded(&list_text(values)),
        })
    }
}

/// Every key the rule names is a tag of the instance, with one of the allowed values.
fn check_tags(
    wanted: &BTreeMap<String, Vec<String>>,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<(), Error> {
    const BOUND: &str = "aws_tags";
    if wanted.is_empty() {
        return Ok(());
    }
    let tags = tags.ok_or(Error::MissingFact { fact: BOUND })?;
    for (key, values) in wanted {
        match tags.get(key) {
            Some(value) if values.contains(value) => {}
            Some(value) => {
                return Err(Error::BoundViolated {
                    bound: BOUND,
                    value: format!("{}={}", bounded(key), bounded(value)),
                });
            }
            None => {
                return Err(Error::BoundViolated {
                    bound: BOUND,
                    value: format!("no tag {}", bounded(key)),
                });
            }
        }
    }
    Ok(())
}

fn list_text(values: &[String]) -> String {
    if values.is_empty() {
        "none".to_owned()
    } else {
        values.join(",")
    }
}

/// One lookup bound of a rule next to what the instance has: a line of a report such as
/// `ec2-iid explain --facts`.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct BoundCheck {
    /// The rule field, e.g. `aws_tags`.
    pub field: &'static str,
    /// What the rule allows.
    pub expected: String,
    /// What the instance has, each value bounded and escaped (instance owners choose tags);
    /// `None` when the lookup did not say.
    pub actual: Option<String>,
    /// Whether the bound holds.
    pub holds: bool,
}

/// Each lookup bound `rule` sets, with what `facts` say and whether it holds, in the order
/// the instance check checks them.
///
/// ```
/// use ec2_iid::ids::InstanceState;
/// use ec2_iid::{AllowRule, InstanceFacts, lookup_bound_checks};
///
/// let rule = AllowRule::account("111111111111".parse()?)
///     .with_tags([("env".to_owned(), vec!["prod".to_owned()])])?;
/// let mut facts = InstanceFacts::new("i-0123456789abcdef0", InstanceState::Running);
/// facts.tags = Some([("env".to_owned(), "dev\n".to_owned())].into());
/// let checks = lookup_bound_checks(&rule, &facts);
/// assert_eq!(checks[0].expected, "env=prod");
/// assert_eq!(checks[0].actual.as_deref(), Some("env=dev\\n"));
/// assert!(!checks[0].holds);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn lookup_bound_checks(rule: &AllowRule, facts: &InstanceFacts) -> Vec<BoundCheck> {
    LOOKUP_BOUNDS
        .iter()
        .filter_map(|&field| {
            let (expected, actual) = describe_bound(field, rule, facts)?;
            Some(BoundCheck {
                field,
                expected,
                actual,
                holds: check_one_bound(field, rule, facts).is_ok(),
            })
        })
        .collect()
}

/// What the rule allows for `field` and what the instance has; `None` when the rule does not
/// set it.
fn describe_bound(
    field: &str,
    rule: &AllowRule,
    facts: &InstanceFacts,
) -> Option<(String, Option<String>)> {
    fn either<T: AsRef<str>>(values: &[T]) -> Option<String> {
        (!values.is_empty()).then(|| {
            values
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(" or ")
        })
    }
    let one = |value: Option<&String>| value.map(|v| bounded_escaped(v));
    let many = |values: Option<&Vec<String>>| {
        values.map(|values| {
            let shown: Vec<String> = values
                .iter()
                .take(MAX_INSTANCE_TAGS)
                .map(|v| bounded_escaped(v))
                .collect();
            list_text(&shown)
        })
    };
    let organization = facts.organization.as_ref();
    Some(match field {
        "aws_vpc_ids" => (either(rule.aws_vpc_ids())?, one(facts.vpc_id.as_ref())),
        "aws_subnet_ids" => (
            either(rule.aws_subnet_ids())?,
            one(facts.subnet_id.as_ref()),
        ),
        "aws_iam_instance_profile_arns" => (
            either(rule.aws_iam_instance_profile_arns())?,
            one(facts.iam_instance_profile_arn.as_ref()),
        ),
        "aws_security_group_ids" => (
            either(rule.aws_security_group_ids())?,
            many(facts.security_group_ids.as_ref()),
        ),
        "aws_tags" => {
            let wanted = rule.aws_tags();
            if wanted.is_empty() {
                return None;
            }
            let expected = wanted
                .iter()
                .map(|(key, values)| {
                    let values: Vec<String> = values.iter().map(|v| bounded_escaped(v)).collect();
                    format!("{}={}", bounded_escaped(key), values.join("|"))
                })
                .collect::<Vec<_>>()
                .join(", ");
            let actual = facts.tags.as_ref().map(|tags| {
                wanted
                    .keys()
                    .map(|key| match tags.get(key) {
                        Some(value) => {
                            format!("{}={}", bounded_escaped(key), bounded_escaped(value))
                        }
                        None => format!("{} absent", bounded_escaped(key)),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            (expected, actual)
        }
        "aws_iam_role_arns" => (
            either(rule.aws_iam_role_arns())?,
            many(facts.iam_role_arns.as_ref()),
        ),
        "aws_organization_id" => (
            rule.aws_organization_id()?.to_string(),
            organization.map(|o| {
                o.organization_id
                    .as_deref()
                    .map_or_else(|| "no organization".to_owned(), bounded_escaped)
            }),
        ),
        "aws_organizational_unit_ids" => (
            either(rule.aws_organizational_unit_ids())?,
            organization.map(|o| {
                let path: Vec<String> = o
                    .parent_ids
                    .iter()
                    .take(MAX_OU_DEPTH)
                    .map(|p| bounded_escaped(p))
                    .collect();
                path.join("/")
            }),
        ),
        _ => return None,
    })
}

/// The deepest OU path AWS Organizations allows: five OU levels under the root.
const MAX_OU_DEPTH: usize = 6;

/// Whether `error` is a rule's lookup bound failing: the instance is as the document says and
/// running, but outside this rule's bounds, so a later rule may still admit it. Bounds report
/// themselves by their rule field (`aws_vpc_ids`, ...; all `aws_*`), the instance's own checks
/// by the fact (`owner_id`, ...).
pub(crate) fn is_bound_failure(error: &Error) -> bool {
    match error {
        Error::BoundViolated { .. } => true,
        Error::MissingFact { fact } => fact.starts_with("aws_"),
        _ => false,
    }
}

fn check_bound<T>(
    bound: &'static str,
    allowed: &[T],
    value: Option<&str>,
    matches: fn(&T, &str) -> bool,
) -> Result<(), Error> {
    if allowed.is_empty() {
        return Ok(());
    }
    let value = value.ok_or(Error::MissingFact { fact: bound })?;
    if allowed.iter().any(|a| matches(a, value)) {
        Ok(())
    } else {
        Err(Error::BoundViolated {
            bound,
            value: bounded(value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_failures_are_told_from_the_instances_own() {
        let mut facts = InstanceFacts::new("i-1", InstanceState::Running);
        let rule = AllowRule::account("123456789012".parse().unwrap())
            .with_vpc_ids(["vpc-1234abcd".parse().unwrap()])
            .with_subnet_ids(["subnet-1234abcd".parse().unwrap()])
            .with_instance_profile_arns(["arn:aws:iam::123456789012:instance-profile/web"
                .parse()
                .unwrap()]);
        let missing = check_lookup_bounds(&rule, &facts).unwrap_err();
        assert_eq!(
            missing,
            Error::MissingFact {
                fact: "aws_vpc_ids"
            }
        );
        assert!(is_bound_failure(&missing));
        facts.vpc_id = Some("vpc-1234abcd".into());
        facts.subnet_id = Some("subnet-5678abcd".into());
        let violated = check_lookup_bounds(&rule, &facts).unwrap_err();
        assert!(matches!(
            violated,
            Error::BoundViolated {
                bound: "aws_subnet_ids",
                ..
            }
        ));
        assert!(is_bound_failure(&violated));
        facts.subnet_id = Some("subnet-1234abcd".into());
        let profile = check_lookup_bounds(&rule, &facts).unwrap_err();
        assert!(is_bound_failure(&profile), "{profile:?}");
        for own in [
            Error::MissingFact { fact: "owner_id" },
            Error::MissingFact {
                fact: "root_device_type",
            },
            Error::InstanceNotRunning {
                state: InstanceState::Stopped,
            },
            Error::RootVolumeReattached {
                gap: Duration::from_secs(90),
            },
        ] {
            assert!(!is_bound_failure(&own), "{own:?}");
        }
    }

    #[test]
    fn facts_from_json() {
        let facts: InstanceFacts = serde_json::from_str(
            r#"{"instance_id":"i-0123456789abcdef0","state":"stopped","owner_id":"123456789012",
                "launch_time":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(facts.state, InstanceState::Stopped);
        assert_eq!(facts.owner_id.as_deref(), Some("123456789012"));
        assert!(
            serde_json::from_str::<InstanceFacts>(r#"{"instance_id":"i","state":"x"}"#).is_err()
        );
        assert!(
            serde_json::from_str::<InstanceFacts>(r#"{"instance_id":"i","state":"running","z":1}"#)
                .is_err()
        );
    }
}
