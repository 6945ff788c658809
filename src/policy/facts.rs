//! Checks on what `DescribeInstances` said about the instance: pure, sync.

use core::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{InstanceProfileArn, InstanceState};
use crate::policy::rules::AllowRule;
use crate::signature::VerifiedDocument;
use crate::text::bounded;

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
/// (`aws_vpc_ids`, `aws_subnet_ids`, `aws_iam_instance_profile_arns`; a bound needs its fact);
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

/// Checks the rule's lookup bounds against what `DescribeInstances` said (a bound needs its
/// fact).
fn check_lookup_bounds(rule: &AllowRule, facts: &InstanceFacts) -> Result<(), Error> {
    check_bound(
        "aws_vpc_ids",
        rule.aws_vpc_ids(),
        facts.vpc_id.as_deref(),
        |a, v| a.as_str() == v,
    )?;
    check_bound(
        "aws_subnet_ids",
        rule.aws_subnet_ids(),
        facts.subnet_id.as_deref(),
        |a, v| a.as_str() == v,
    )?;
    check_bound(
        "aws_iam_instance_profile_arns",
        rule.aws_iam_instance_profile_arns(),
        facts.iam_instance_profile_arn.as_deref(),
        InstanceProfileArn::matches,
    )
}

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
