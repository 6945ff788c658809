//! `DescribeInstances` response → [`InstanceFacts`].

use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::primitives::DateTime as SdkDateTime;
use aws_sdk_ec2::types::Instance;
use chrono::{DateTime, Utc};
use ec2_iid::ids::{InstanceId, InstanceState};
use ec2_iid::{InstanceFacts, MAX_INSTANCE_TAGS};

use crate::error::{Ec2LookupError, Operation};

/// The facts about `instance_id` in a `DescribeInstances` response; `None` if the response does
/// not list it.
///
/// Instances with other ids are ignored (EC2 does not send them for an id query, but the
/// lookup must not describe the wrong instance if it did).
///
/// # Errors
///
/// [`Ec2LookupError::InvalidResponse`] if the instance has no state or an unknown one.
pub(crate) fn facts_from_output(
    output: &DescribeInstancesOutput,
    instance_id: &InstanceId,
) -> Result<Option<InstanceFacts>, Ec2LookupError> {
    let found = output.reservations().iter().find_map(|reservation| {
        reservation
            .instances()
            .iter()
            .find(|i| i.instance_id() == Some(instance_id.as_str()))
            .map(|instance| (reservation.owner_id(), instance))
    });
    let Some((owner_id, instance)) = found else {
        return Ok(None);
    };
    let state = instance
        .state()
        .and_then(|s| s.name())
        .ok_or(invalid("instance without a state"))?
        .as_str()
        .parse::<InstanceState>()
        .map_err(|_| invalid("unknown instance state"))?;

    let mut facts = InstanceFacts::new(instance_id.as_str(), state);
    facts.owner_id = owner_id.map(str::to_owned);
    facts.image_id = instance.image_id().map(str::to_owned);
    facts.vpc_id = instance.vpc_id().map(str::to_owned);
    facts.subnet_id = instance.subnet_id().map(str::to_owned);
    facts.iam_instance_profile_arn = instance
        .iam_instance_profile()
        .and_then(|p| p.arn())
        .map(str::to_owned);
    facts.launch_time = instance.launch_time().and_then(to_chrono);
    facts.root_device_type = instance.root_device_type().map(|t| t.as_str().to_owned());
    facts.root_volume_attach_time = root_volume_attach_time(instance);
    facts.primary_eni_attach_time = instance
        .network_interfaces()
        .iter()
        .filter_map(|eni| eni.attachment())
        .find(|attachment| attachment.device_index() == Some(0))
        .and_then(|attachment| attachment.attach_time())
        .and_then(to_chrono);
    // EC2 allows 50 tags per instance: more in an answer are not copied.
    facts.tags = Some(
        instance
            .tags()
            .iter()
            .filter_map(|tag| Some((tag.key()?.to_owned(), tag.value()?.to_owned())))
            .take(MAX_INSTANCE_TAGS)
            .collect(),
    );
    facts.security_group_ids = Some(
        instance
            .security_groups()
            .iter()
            .filter_map(|group| group.group_id().map(str::to_owned))
            .take(MAX_SECURITY_GROUPS)
            .collect(),
    );
    Ok(Some(facts))
}

/// The most security groups copied from an answer: EC2 allows 16 per network interface, up to
/// 5 by default; the cap only bounds what a strange answer could make us keep.
const MAX_SECURITY_GROUPS: usize = 64;

/// `Ebs.AttachTime` of the block device mapping named `RootDeviceName`.
fn root_volume_attach_time(instance: &Instance) -> Option<DateTime<Utc>> {
    let root = instance.root_device_name()?;
    instance
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some(root))
        .and_then(|m| m.ebs())
        .and_then(|ebs| ebs.attach_time())
        .and_then(to_chrono)
}

/// An SDK time as chrono's; `None` if chrono cannot represent it.
fn to_chrono(time: &SdkDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

fn invalid(reason: &'static str) -> Ec2LookupError {
    Ec2LookupError::InvalidResponse {
        operation: Operation::DescribeInstances,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{
        DeviceType, EbsInstanceBlockDevice, GroupIdentifier, IamInstanceProfile,
        InstanceBlockDeviceMapping, InstanceNetworkInterface, InstanceNetworkInterfaceAttachment,
        InstanceState as SdkInstanceState, InstanceStateName, Reservation, Tag,
    };

    use super::*;

    const ID: &str = "i-0123456789abcdef0";

    fn at(secs: i64) -> SdkDateTime {
        SdkDateTime::from_secs(secs)
    }

    fn utc(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn eni(index: i32, secs: i64) -> InstanceNetworkInterface {
        InstanceNetworkInterface::builder()
            .attachment(
                InstanceNetworkInterfaceAttachment::builder()
                    .device_index(index)
                    .attach_time(at(secs))
                    .build(),
            )
            .build()
    }

    fn volume(device: &str, secs: i64) -> InstanceBlockDeviceMapping {
        InstanceBlockDeviceMapping::builder()
            .device_name(device)
            .ebs(
                EbsInstanceBlockDevice::builder()
                    .attach_time(at(secs))
                    .build(),
            )
            .build()
    }

    fn full_instance(id: &str, state: InstanceStateName) -> Instance {
        Instance::builder()
            .instance_id(id)
            .state(SdkInstanceState::builder().name(state).build())
            .image_id("ami-0fa9e1f64142cde17")
            .vpc_id("vpc-1")
            .subnet_id("subnet-1")
            .iam_instance_profile(
                IamInstanceProfile::builder()
                    .arn("arn:aws:iam::123456789012:instance-profile/node")
                    .build(),
            )
            .launch_time(at(1_700_000_000))
            .root_device_type(DeviceType::Ebs)
            .root_device_name("/dev/xvda")
            // Listed out of order on purpose: the mapping and the ENI are found by name/index.
            .block_device_mappings(volume("/dev/sdf", 1_700_000_900))
            .block_device_mappings(volume("/dev/xvda", 1_700_000_003))
            .network_interfaces(eni(1, 1_700_000_800))
            .network_interfaces(eni(0, 1_700_000_002))
            .tags(Tag::builder().key("env").value("prod").build())
            .tags(Tag::builder().key("team").value("").build())
            .security_groups(GroupIdentifier::builder().group_id("sg-1").build())
            .security_groups(GroupIdentifier::builder().group_name("no-id").build())
            .build()
    }

    fn output(reservations: Vec<Reservation>) -> DescribeInstancesOutput {
        DescribeInstancesOutput::builder()
            .set_reservations(Some(reservations))
            .build()
    }

    fn reservation(owner: &str, instances: Vec<Instance>) -> Reservation {
        Reservation::builder()
            .owner_id(owner)
            .set_instances(Some(instances))
            .build()
    }

    #[test]
    fn maps_every_field() {
        let out = output(vec![
            reservation(
                "999999999999",
                vec![full_instance(
                    "i-0aaaaaaaaaaaaaaaa",
                    InstanceStateName::Running,
                )],
            ),
            reservation(
                "123456789012",
                vec![full_instance(ID, InstanceStateName::Running)],
            ),
        ]);
        let facts = facts_from_output(&out, &ID.parse().unwrap())
            .unwrap()
            .unwrap();
        let mut want = InstanceFacts::new(ID, InstanceState::Running);
        want.owner_id = Some("123456789012".into());
        want.image_id = Some("ami-0fa9e1f64142cde17".into());
        want.vpc_id = Some("vpc-1".into());
        want.subnet_id = Some("subnet-1".into());
        want.iam_instance_profile_arn =
            Some("arn:aws:iam::123456789012:instance-profile/node".into());
        want.launch_time = Some(utc(1_700_000_000));
        want.root_device_type = Some("ebs".into());
        want.root_volume_attach_time = Some(utc(1_700_000_003));
        want.primary_eni_attach_time = Some(utc(1_700_000_002));
        want.tags = Some(
            [
                ("env".into(), "prod".into()),
                ("team".into(), String::new()),
            ]
            .into(),
        );
        want.security_group_ids = Some(vec!["sg-1".into()]);
        assert_eq!(facts, want);
    }

    #[test]
    fn every_state() {
        for (name, state) in [
            (InstanceStateName::Pending, InstanceState::Pending),
            (InstanceStateName::Running, InstanceState::Running),
            (InstanceStateName::ShuttingDown, InstanceState::ShuttingDown),
            (InstanceStateName::Stopped, InstanceState::Stopped),
            (InstanceStateName::Stopping, InstanceState::Stopping),
            (InstanceStateName::Terminated, InstanceState::Terminated),
        ] {
            let out = output(vec![reservation(
                "123456789012",
                vec![full_instance(ID, name)],
            )]);
            let facts = facts_from_output(&out, &ID.parse().unwrap())
                .unwrap()
                .unwrap();
            assert_eq!(facts.state, state);
        }
    }

    #[test]
    fn minimal_instance_has_no_optional_facts() {
        let bare = Instance::builder()
            .instance_id(ID)
            .state(
                SdkInstanceState::builder()
                    .name(InstanceStateName::Stopped)
                    .build(),
            )
            // A root device name without a matching mapping, an ENI that is not the primary.
            .root_device_name("/dev/xvda")
            .block_device_mappings(volume("/dev/sdf", 5))
            .network_interfaces(eni(1, 5))
            .build();
        let out = output(vec![Reservation::builder().instances(bare).build()]);
        let facts = facts_from_output(&out, &ID.parse().unwrap())
            .unwrap()
            .unwrap();
        let mut want = InstanceFacts::new(ID, InstanceState::Stopped);
        want.tags = Some(Default::default());
        want.security_group_ids = Some(Vec::new());
        assert_eq!(facts, want);
    }

    #[test]
    fn tags_are_capped_at_ec2s_limit() {
        let mut instance = full_instance(ID, InstanceStateName::Running);
        instance.tags = Some(
            (0..80)
                .map(|i| Tag::builder().key(format!("k{i:02}")).value("v").build())
                .collect(),
        );
        let out = output(vec![reservation("123456789012", vec![instance])]);
        let facts = facts_from_output(&out, &ID.parse().unwrap())
            .unwrap()
            .unwrap();
        let tags = facts.tags.unwrap();
        assert_eq!(tags.len(), MAX_INSTANCE_TAGS);
        assert!(tags.contains_key("k49") && !tags.contains_key("k50"));
    }

    #[test]
    fn absent_instance_is_none() {
        let id = ID.parse().unwrap();
        assert_eq!(facts_from_output(&output(vec![]), &id).unwrap(), None);
        assert_eq!(
            facts_from_output(&DescribeInstancesOutput::builder().build(), &id).unwrap(),
            None
        );
        let other = output(vec![reservation(
            "123456789012",
            vec![full_instance(
                "i-0bbbbbbbbbbbbbbbb",
                InstanceStateName::Running,
            )],
        )]);
        assert_eq!(facts_from_output(&other, &id).unwrap(), None);
        let no_id = output(vec![
            Reservation::builder()
                .instances(Instance::builder().build())
                .build(),
        ]);
        assert_eq!(facts_from_output(&no_id, &id).unwrap(), None);
    }

    #[test]
    fn bad_state_fails_closed() {
        let id = ID.parse().unwrap();
        let no_state = Instance::builder().instance_id(ID).build();
        let err =
            facts_from_output(&output(vec![reservation("1", vec![no_state])]), &id).unwrap_err();
        assert!(matches!(
            err,
            Ec2LookupError::InvalidResponse {
                reason: "instance without a state",
                ..
            }
        ));
        let odd = Instance::builder()
            .instance_id(ID)
            .state(
                SdkInstanceState::builder()
                    .name(InstanceStateName::from("hibernating"))
                    .build(),
            )
            .build();
        let err = facts_from_output(&output(vec![reservation("1", vec![odd])]), &id).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ec2:DescribeInstances: unexpected response: unknown instance state"
        );
    }

    #[test]
    fn times_out_of_chrono_range_are_dropped() {
        assert_eq!(to_chrono(&SdkDateTime::from_secs(i64::MAX)), None);
        assert_eq!(to_chrono(&SdkDateTime::from_secs(0)), Some(utc(0)));
    }
}
