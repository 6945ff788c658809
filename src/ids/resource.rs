//! Accounts and the EC2 resources rules name: instances, images, VPCs, subnets, security
//! groups, instance types and states; AWS Organizations' organizations and OUs.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::inline::{IdText, InlineStr};
use super::{Identifier, InvalidIdentifier, ParsedStr};

id_newtype!(
    /// A 12-digit AWS account id.
    ///
    /// ```
    /// let id: ec2_iid::ids::AccountId = "123456789012".parse().unwrap();
    /// assert!("12345678901".parse::<ec2_iid::ids::AccountId>().is_err());
    /// ```
    AccountId,
    "account id",
    "123456789012",
    |s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()),
    InlineStr<12>
);

id_newtype!(
    /// An EC2 instance id: `i-` and 8 or more lowercase hex digits (17 for current instances).
    ///
    /// ```
    /// let id: ec2_iid::ids::InstanceId = "i-0c5541936caf78c12".parse().unwrap();
    /// assert!("i-XYZ".parse::<ec2_iid::ids::InstanceId>().is_err());
    /// ```
    InstanceId,
    "instance id",
    "i-0123456789abcdef0",
    |s| s.strip_prefix("i-").is_some_and(|hex| {
        (8..=32).contains(&hex.len()) && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }),
    InlineStr<{ "i-".len() + 32 }>
);

/// `<prefix>-` then 8 or 17 lowercase hex digits, as EC2 writes its resource ids.
fn is_hex_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            matches!(hex.len(), 8 | 17)
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

id_newtype!(
    /// An AMI id: `ami-` and 8 or 17 lowercase hex digits.
    ///
    /// ```
    /// assert!("ami-0123456789abcdef0".parse::<ec2_iid::ids::ImageId>().is_ok());
    /// assert!("ami-1".parse::<ec2_iid::ids::ImageId>().is_err());
    /// ```
    ImageId,
    "AMI id",
    "ami-0123456789abcdef0",
    |s| is_hex_id(s, "ami"),
    InlineStr<{ "ami-".len() + 17 }>
);

id_newtype!(
    /// A VPC id: `vpc-` and 8 or 17 lowercase hex digits.
    ///
    /// ```
    /// assert!("vpc-0123456789abcdef0".parse::<ec2_iid::ids::VpcId>().is_ok());
    /// assert!("vpc-web".parse::<ec2_iid::ids::VpcId>().is_err());
    /// ```
    VpcId,
    "VPC id",
    "vpc-0123456789abcdef0",
    |s| is_hex_id(s, "vpc"),
    InlineStr<{ "vpc-".len() + 17 }>
);

id_newtype!(
    /// A subnet id: `subnet-` and 8 or 17 lowercase hex digits.
    ///
    /// ```
    /// assert!("subnet-0123456789abcdef0".parse::<ec2_iid::ids::SubnetId>().is_ok());
    /// assert!("subnet-".parse::<ec2_iid::ids::SubnetId>().is_err());
    /// ```
    SubnetId,
    "subnet id",
    "subnet-0123456789abcdef0",
    |s| is_hex_id(s, "subnet"),
    InlineStr<{ "subnet-".len() + 17 }>
);

id_newtype!(
    /// A security group id: `sg-` and 8 or 17 lowercase hex digits.
    ///
    /// ```
    /// assert!("sg-0123456789abcdef0".parse::<ec2_iid::ids::SecurityGroupId>().is_ok());
    /// assert!("sg-web".parse::<ec2_iid::ids::SecurityGroupId>().is_err());
    /// ```
    SecurityGroupId,
    "security group id",
    "sg-0123456789abcdef0",
    |s| is_hex_id(s, "sg"),
    InlineStr<{ "sg-".len() + 17 }>
);

/// `<prefix>-` then `min..=max` lowercase letters and digits, as AWS Organizations writes ids.
fn is_org_word(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

id_newtype!(
    /// An AWS Organizations organization id: `o-` and 10 to 32 lowercase letters or digits.
    ///
    /// ```
    /// assert!("o-a1b2c3d4e5".parse::<ec2_iid::ids::OrganizationId>().is_ok());
    /// assert!("o-short".parse::<ec2_iid::ids::OrganizationId>().is_err());
    /// ```
    OrganizationId,
    "organization id",
    "o-a1b2c3d4e5",
    |s| s.strip_prefix("o-").is_some_and(|rest| is_org_word(rest, 10, 32)),
    InlineStr<{ "o-".len() + 32 }>
);

id_newtype!(
    /// An AWS Organizations organizational unit id: `ou-`, 4 to 32 lowercase letters or digits
    /// (its root's), `-`, and 8 to 32 more.
    ///
    /// ```
    /// assert!("ou-ab12-cd34ef56".parse::<ec2_iid::ids::OrganizationalUnitId>().is_ok());
    /// assert!("r-ab12".parse::<ec2_iid::ids::OrganizationalUnitId>().is_err());
    /// ```
    OrganizationalUnitId,
    "organizational unit id",
    "ou-ab12-cd34ef56",
    |s| s.strip_prefix("ou-").and_then(|rest| rest.split_once('-')).is_some_and(
        |(root, unit)| is_org_word(root, 4, 32) && is_org_word(unit, 8, 32)
    ),
    String
);

id_newtype!(
    /// An EC2 instance type: `<family>.<size>` in lowercase, such as `t3.micro` or
    /// `m7i-flex.large`.
    ///
    /// ```
    /// assert!("m7i-flex.large".parse::<ec2_iid::ids::InstanceType>().is_ok());
    /// assert!("T3.Micro".parse::<ec2_iid::ids::InstanceType>().is_err());
    /// ```
    InstanceType,
    "instance type",
    "t3.micro",
    |s| {
        let word = |w: &str| {
            !w.is_empty() && w.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        };
        s.len() <= MAX_INSTANCE_TYPE_LEN
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.split_once('.').is_some_and(|(family, size)| word(family) && word(size))
    },
    InlineStr<MAX_INSTANCE_TYPE_LEN>
);

/// The longest instance type accepted (AWS's are far shorter); also its inline capacity.
const MAX_INSTANCE_TYPE_LEN: usize = 64;

/// `State.Name` of an EC2 instance.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    /// `pending`: launching.
    #[default]
    Pending,
    /// `running`: the only state that may join.
    Running,
    /// `shutting-down`.
    ShuttingDown,
    /// `stopped`.
    Stopped,
    /// `stopping`.
    Stopping,
    /// `terminated`.
    Terminated,
}

impl InstanceState {
    /// The EC2 API name, e.g. `shutting-down`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Stopped => "stopped",
            Self::Stopping => "stopping",
            Self::Terminated => "terminated",
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of EC2's instance states.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct UnknownInstanceState;

impl fmt::Display for UnknownInstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown EC2 instance state")
    }
}

impl core::error::Error for UnknownInstanceState {}

impl FromStr for InstanceState {
    type Err = UnknownInstanceState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "shutting-down" => Self::ShuttingDown,
            "stopped" => Self::Stopped,
            "stopping" => Self::Stopping,
            "terminated" => Self::Terminated,
            _ => return Err(UnknownInstanceState),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_instance_ids() {
        assert!("i-de0f1344".parse::<InstanceId>().is_ok());
        assert!("i-de0f134".parse::<InstanceId>().is_err());
        assert!("i-DE0F1344".parse::<InstanceId>().is_err());
        assert_eq!(
            "1234".parse::<AccountId>(),
            Err(InvalidIdentifier { what: "account id" })
        );
    }

    #[test]
    fn rule_identifiers() {
        for t in ["t3.micro", "u-6tb1.metal", "mac2-m2pro.metal"] {
            assert!(t.parse::<InstanceType>().is_ok(), "{t}");
        }
        for bad in ["t3", ".micro", "t3.", "t3.micro.x", "3t.micro"] {
            assert!(bad.parse::<InstanceType>().is_err(), "{bad}");
        }
        for id in ["vpc-1234abcd", "vpc-0123456789abcdef0"] {
            assert!(id.parse::<VpcId>().is_ok(), "{id}");
        }
        for bad in [
            "vpc-123",
            "vpc-0123456789ABCDEF0",
            "subnet-1234abcd",
            "vpc1234abcd",
        ] {
            assert!(bad.parse::<VpcId>().is_err(), "{bad}");
        }
        assert!("subnet-1234abcd".parse::<SubnetId>().is_ok());
        assert!("ami-1234abcd".parse::<ImageId>().is_ok());
        assert!("ami-1234abc".parse::<ImageId>().is_err());
        assert!("sg-1234abcd".parse::<SecurityGroupId>().is_ok());
        assert!("sg-1234abcdx".parse::<SecurityGroupId>().is_err());
        assert!("o-abcdef1234".parse::<OrganizationId>().is_ok());
        for bad in ["o-abcdef123", "o-ABCDEF1234", "ou-abcd-abcdefgh", "o-"] {
            assert!(bad.parse::<OrganizationId>().is_err(), "{bad}");
        }
        assert!("ou-abcd-abcdefgh".parse::<OrganizationalUnitId>().is_ok());
        for bad in [
            "ou-abc-abcdefgh",
            "ou-abcd-abcdefg",
            "ou-abcd",
            "r-abcd",
            "ou-abcd-ABCDEFGH",
        ] {
            assert!(bad.parse::<OrganizationalUnitId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn state_names_round_trip() {
        for state in [
            InstanceState::Pending,
            InstanceState::Running,
            InstanceState::ShuttingDown,
            InstanceState::Stopped,
            InstanceState::Stopping,
            InstanceState::Terminated,
        ] {
            assert_eq!(state.as_str().parse::<InstanceState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
        }
        assert_eq!(
            "Running".parse::<InstanceState>(),
            Err(UnknownInstanceState)
        );
    }
}
