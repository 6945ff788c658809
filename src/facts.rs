//! Checks on what `DescribeInstances` said about the instance: pure, sync.

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::fields::bounded;
use crate::lookup::{InstanceFacts, InstanceState};
use crate::rules::AllowRule;
use crate::signature::VerifiedDocument;

/// Largest gap SPIRE tolerates between the root EBS volume's and the primary network
/// interface's attach times: both are attached at launch.
pub const MAX_ROOT_VOLUME_ATTACH_GAP_SECS: i64 = 60;

/// Checks an instance's facts against its verified document and the matched rule.
///
/// In order: the instance exists (`Some`); its id equals the document's; its state is
/// `running`; its owner (the reservation's `OwnerId`, required) is the document's account,
/// which the rule admits; the rule's lookup bounds hold
/// (`aws_vpc_ids`, `aws_subnet_ids`, `aws_iam_instance_profile_arns`; a bound needs its fact);
/// and, if `root_volume_check` is on, SPIRE's anti-tamper check: for an EBS root, the root
/// volume was attached within 60 s of the primary network interface, i.e. at launch, not
/// swapped in later (skipped for `instance-store` roots).
///
/// Use it directly when you batch or cache `DescribeInstances`; the
/// [`Verifier`](crate::Verifier) calls it after its lookup.
///
/// # Errors
/// [`Error::InstanceNotFound`], [`Error::InstanceIdMismatch`], [`Error::InstanceNotRunning`],
/// [`Error::OwnerMismatch`], [`Error::BoundViolated`], [`Error::MissingFact`],
/// [`Error::RootVolumeReattached`].
pub fn check_instance_facts(
    verified: &VerifiedDocument,
    rule: &AllowRule,
    facts: Option<&InstanceFacts>,
    root_volume_check: bool,
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
    rule.check_lookup_bounds(facts)?;
    if root_volume_check {
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
    let gap = volume
        .signed_duration_since(eni)
        .num_seconds()
        .saturating_abs();
    if gap > MAX_ROOT_VOLUME_ATTACH_GAP_SECS {
        return Err(Error::RootVolumeReattached { seconds: gap });
    }
    Ok(())
}
