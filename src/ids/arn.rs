//! IAM ARNs: the role a rule assumes and the instance-profile bound.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::inline::{IdText, InlineStr};
use super::{AccountId, Identifier, InvalidIdentifier, ParsedStr, Partition};

/// `arn:<partition>:iam::<account>:<kind>/<path/name>`: the account and the name's start.
fn split_iam_arn<'a>(s: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
    split_iam_arn_partition(s, kind).map(|(_, account, name)| (account, name))
}

/// [`split_iam_arn`] with the partition id in front.
fn split_iam_arn_partition<'a>(s: &'a str, kind: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let rest = s.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let name = resource.strip_prefix(kind)?.strip_prefix('/')?;
    let partition_ok = partition == "aws"
        || partition.strip_prefix("aws-").is_some_and(|p| {
            !p.is_empty()
                && p.split('-')
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        });
    (partition_ok && s.len() <= 1024 && account.parse::<AccountId>().is_ok())
        .then_some((partition, account, name))
}

/// An IAM path and name: `/`-separated words of IAM's name characters, none empty.
fn is_iam_name(name: &str) -> bool {
    name.split('/').all(|w| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    })
}

id_newtype!(
    /// An IAM role ARN: `arn:<partition>:iam::<12 digits>:role/<path/name>`, in a partition
    /// the crate knows ([`Partition`]).
    ///
    /// In an allow rule it is the role assumed for `DescribeInstances`: its account is the
    /// rule's account and its partition the rule's partition, since with that role's
    /// credentials EC2 only sees instances of that account, in that partition. A partition the
    /// crate does not know (a typo such as `arn:aws-gov:`) is refused rather than left to
    /// match nothing.
    ///
    /// ```
    /// let role: ec2_iid::ids::RoleArn = "arn:aws-cn:iam::123456789012:role/ops/describe".parse()?;
    /// assert_eq!(role.account().as_str(), "123456789012");
    /// assert_eq!(role.partition(), ec2_iid::ids::Partition::AwsCn);
    /// assert!("not-an-arn".parse::<ec2_iid::ids::RoleArn>().is_err());
    /// assert!("arn:aws-gov:iam::123456789012:role/r".parse::<ec2_iid::ids::RoleArn>().is_err());
    /// # Ok::<(), ec2_iid::Error>(())
    /// ```
    RoleArn,
    "IAM role ARN",
    "arn:aws:iam::123456789012:role/describe-instances",
    |s| split_iam_arn_partition(s, "role").is_some_and(|(partition, _, name)| {
        Partition::from_id(partition).is_some() && is_iam_name(name)
    }),
    String
);

impl RoleArn {
    /// The account the role belongs to.
    #[must_use]
    pub fn account(&self) -> AccountId {
        let account =
            split_iam_arn(&self.0, "role").and_then(|(account, _)| InlineStr::new(account));
        AccountId(account.unwrap_or(InlineStr::EMPTY))
    }

    /// The partition the role belongs to (`arn:<partition>:`): the only one whose instances
    /// its credentials can describe.
    #[must_use]
    pub fn partition(&self) -> Partition {
        split_iam_arn_partition(&self.0, "role")
            .and_then(|(partition, _, _)| Partition::from_id(partition))
            .unwrap_or(Partition::Aws)
    }
}

id_newtype!(
    /// An instance-profile bound: an ARN `arn:<partition>:iam::<12 digits>:instance-profile/
    /// <path/name>`, or such a prefix ending in `*` (Vault's wildcard), which matches every ARN
    /// that starts with the text before the `*`.
    ///
    /// ```
    /// let bound: ec2_iid::ids::InstanceProfileArn =
    ///     "arn:aws:iam::123456789012:instance-profile/web-*".parse()?;
    /// assert!(bound.matches("arn:aws:iam::123456789012:instance-profile/web-1"));
    /// assert!(!bound.matches("arn:aws:iam::123456789012:instance-profile/db"));
    /// assert!("*".parse::<ec2_iid::ids::InstanceProfileArn>().is_err());
    /// # Ok::<(), ec2_iid::Error>(())
    /// ```
    InstanceProfileArn,
    "instance-profile ARN",
    "arn:aws:iam::123456789012:instance-profile/web-server",
    |s| {
        split_iam_arn(s, "instance-profile").is_some_and(|(_, name)| match name.strip_suffix('*') {
            Some("") => true,
            Some(prefix) => is_iam_name(prefix.strip_suffix('/').unwrap_or(prefix)),
            None => is_iam_name(name),
        })
    },
    String
);

impl InstanceProfileArn {
    /// Whether `arn` is this ARN, or starts with this prefix when it ends in `*`.
    #[must_use]
    pub fn matches(&self, arn: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => arn.starts_with(prefix),
            None => self.0 == arn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_arns() {
        for (arn, partition) in [
            ("arn:aws:iam::123456789012:role/r", Partition::Aws),
            (
                "arn:aws-us-gov:iam::123456789012:role/path/to/r+=,.@_-",
                Partition::AwsUsGov,
            ),
            ("arn:aws-cn:iam::123456789012:role/r", Partition::AwsCn),
            ("arn:aws-eusc:iam::123456789012:role/r", Partition::AwsEusc),
        ] {
            let role: RoleArn = arn.parse().unwrap();
            assert_eq!(role.account().as_str(), "123456789012");
            assert_eq!(role.partition(), partition, "{arn}");
        }
        for bad in [
            "not-an-arn",
            "arn:aws:iam::1:role/r",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role//r",
            "arn:aws:iam::123456789012:user/r",
            "arn:aws:sts::123456789012:role/r",
            "arn:gcp:iam::123456789012:role/r",
            "arn:aws:iam::123456789012:role/r*",
            "arn:aws:iam:us-east-1:123456789012:role/r",
            "arn:aws-gov:iam::123456789012:role/r",
            "arn:aws-iso:iam::123456789012:role/r",
        ] {
            assert!(bad.parse::<RoleArn>().is_err(), "{bad}");
        }
        for bound in [
            "arn:aws:iam::123456789012:instance-profile/web",
            "arn:aws:iam::123456789012:instance-profile/*",
            "arn:aws:iam::123456789012:instance-profile/team/*",
            "arn:aws:iam::123456789012:instance-profile/web-*",
        ] {
            assert!(bound.parse::<InstanceProfileArn>().is_ok(), "{bound}");
        }
        for bad in [
            "*",
            "arn:aws:iam::*",
            "arn:aws:iam::123456789012:role/web",
            "arn:aws:iam::123456789012:instance-profile/a*b",
        ] {
            assert!(bad.parse::<InstanceProfileArn>().is_err(), "{bad}");
        }
        let exact: InstanceProfileArn = "arn:aws:iam::123456789012:instance-profile/web"
            .parse()
            .unwrap();
        assert!(exact.matches("arn:aws:iam::123456789012:instance-profile/web"));
        assert!(!exact.matches("arn:aws:iam::123456789012:instance-profile/web2"));
    }
}
