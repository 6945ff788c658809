//! Identifiers: the checked names of AWS things the documents and the rules speak of.
//!
//! Each is parsed once, from a document or a rule, into a type whose value has the shape AWS
//! gives it, so a typo in a rule is refused when it is read instead of never matching (or, worse,
//! matching something else).

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A text is not a valid identifier of its kind (an account id, a region, a format, ...).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq, thiserror::Error)]
#[error("invalid {kind}")]
pub struct InvalidIdentifier {
    /// What it should have been, e.g. `account id`.
    pub kind: &'static str,
}

/// What every identifier type says about itself, for messages that show what to write.
pub(crate) trait Identifier: FromStr<Err = InvalidIdentifier> {
    /// What it is, e.g. `region`.
    const KIND: &'static str;
    /// A valid example, e.g. `us-east-1`.
    const EXAMPLE: &'static str;
}

/// Deserializes a string through `FromStr`, reading it where it lies in the JSON: serde's
/// `String` or `Cow<str>` would copy it first, and `from_str` then copies it again.
struct ParsedStr<T> {
    invalid: &'static str,
    parsed: core::marker::PhantomData<T>,
}

impl<T> ParsedStr<T> {
    fn new(invalid: &'static str) -> Self {
        Self {
            invalid,
            parsed: core::marker::PhantomData,
        }
    }
}

impl<T: FromStr> serde::de::Visitor<'_> for ParsedStr<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(|_| E::custom(self.invalid))
    }
}

/// Defines a validated string newtype with `FromStr`, `Display`, `AsRef<str>` and serde.
macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident, $what:literal, $example:literal, $valid:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
        pub struct $name(String);

        impl Identifier for $name {
            const KIND: &'static str = $what;
            const EXAMPLE: &'static str = $example;
        }

        impl $name {
            /// The id as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidIdentifier;

            fn from_str(s: &str) -> Result<Self, InvalidIdentifier> {
                let valid: fn(&str) -> bool = $valid;
                if valid(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(InvalidIdentifier { kind: $what })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(ParsedStr::<Self>::new(concat!("invalid ", $what)))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

id_newtype!(
    /// A 12-digit AWS account id.
    ///
    /// ```
    /// let id: ec2_iid::AccountId = "123456789012".parse().unwrap();
    /// assert!("12345678901".parse::<ec2_iid::AccountId>().is_err());
    /// ```
    AccountId,
    "account id",
    "123456789012",
    |s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
);

id_newtype!(
    /// An EC2 instance id: `i-` and 8 or more lowercase hex digits (17 for current instances).
    ///
    /// ```
    /// let id: ec2_iid::InstanceId = "i-0c5541936caf78c12".parse().unwrap();
    /// assert!("i-XYZ".parse::<ec2_iid::InstanceId>().is_err());
    /// ```
    InstanceId,
    "instance id",
    "i-0123456789abcdef0",
    |s| s.strip_prefix("i-").is_some_and(|hex| {
        (8..=32).contains(&hex.len()) && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
);

id_newtype!(
    /// An AWS region name such as `us-east-1` or `eusc-de-east-1`.
    ///
    /// ```
    /// let r: ec2_iid::Region = "cn-north-1".parse().unwrap();
    /// assert_eq!(r.partition(), ec2_iid::Partition::AwsCn);
    /// assert!("US-EAST-1".parse::<ec2_iid::Region>().is_err());
    /// ```
    Region,
    "region",
    "us-east-1",
    is_region
);

impl Region {
    /// The AWS partition the region belongs to, from its name.
    #[must_use]
    pub fn partition(&self) -> Partition {
        Partition::of_region(&self.0)
    }
}

/// An AWS partition: a separate AWS cloud with its own ARN prefix and credentials.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Partition {
    /// The commercial partition (`arn:aws:`).
    Aws,
    /// China (`arn:aws-cn:`): `cn-north-1`, `cn-northwest-1`.
    AwsCn,
    /// The AWS European Sovereign Cloud (`eusc-*` regions). Its partition id `aws-eusc` is
    /// AWS's announced name; it was not verified against a live ARN.
    AwsEusc,
    /// AWS GovCloud (US) (`arn:aws-us-gov:`).
    AwsUsGov,
}

impl Partition {
    fn of_region(region: &str) -> Self {
        if region.starts_with("cn-") {
            Self::AwsCn
        } else if region.starts_with("us-gov-") {
            Self::AwsUsGov
        } else if region.starts_with("eusc-") {
            Self::AwsEusc
        } else {
            Self::Aws
        }
    }

    /// The partition id as used in ARNs, e.g. `aws-us-gov`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::AwsCn => "aws-cn",
            Self::AwsEusc => "aws-eusc",
            Self::AwsUsGov => "aws-us-gov",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<letters>(-<letters>)+-<digits>`: `us-east-1`, `us-gov-west-1`, `eusc-de-east-1`. Every AWS
/// region has this shape; `us-east1` or `useast-1` do not.
fn is_region(s: &str) -> bool {
    region_prefix_len(s) == Some(s.len())
}

/// The length of the region at the start of `s`, if one is there: letters-only words joined by
/// `-`, at least two of them, then `-` and one or two digits.
fn region_prefix_len(s: &str) -> Option<usize> {
    if s.len() > 32 {
        return None;
    }
    let mut words = 0;
    let mut at = 0;
    for word in s.split('-') {
        let end = at + word.len();
        if !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()) {
            words += 1;
        } else if words >= 2
            && (1..=2).contains(&word.len())
            && word.bytes().all(|b| b.is_ascii_digit())
        {
            return Some(end);
        } else {
            let digits = word.bytes().take_while(u8::is_ascii_digit).count();
            return (words >= 2 && (1..=2).contains(&digits)).then_some(at + digits);
        }
        at = end + 1;
    }
    None
}

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
    /// assert!("ami-0123456789abcdef0".parse::<ec2_iid::ImageId>().is_ok());
    /// assert!("ami-1".parse::<ec2_iid::ImageId>().is_err());
    /// ```
    ImageId,
    "AMI id",
    "ami-0123456789abcdef0",
    |s| is_hex_id(s, "ami")
);

id_newtype!(
    /// A VPC id: `vpc-` and 8 or 17 lowercase hex digits.
    ///
    /// ```
    /// assert!("vpc-0123456789abcdef0".parse::<ec2_iid::VpcId>().is_ok());
    /// assert!("vpc-web".parse::<ec2_iid::VpcId>().is_err());
    /// ```
    VpcId,
    "VPC id",
    "vpc-0123456789abcdef0",
    |s| is_hex_id(s, "vpc")
);

id_newtype!(
    /// A subnet id: `subnet-` and 8 or 17 lowercase hex digits.
    ///
    /// ```
    /// assert!("subnet-0123456789abcdef0".parse::<ec2_iid::SubnetId>().is_ok());
    /// assert!("subnet-".parse::<ec2_iid::SubnetId>().is_err());
    /// ```
    SubnetId,
    "subnet id",
    "subnet-0123456789abcdef0",
    |s| is_hex_id(s, "subnet")
);

id_newtype!(
    /// An EC2 instance type: `<family>.<size>` in lowercase, such as `t3.micro` or
    /// `m7i-flex.large`.
    ///
    /// ```
    /// assert!("m7i-flex.large".parse::<ec2_iid::InstanceType>().is_ok());
    /// assert!("T3.Micro".parse::<ec2_iid::InstanceType>().is_err());
    /// ```
    InstanceType,
    "instance type",
    "t3.micro",
    |s| {
        let word = |w: &str| {
            !w.is_empty() && w.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        };
        s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.split_once('.').is_some_and(|(family, size)| word(family) && word(size))
    }
);

id_newtype!(
    /// An availability zone: a region and a letter (`us-east-1a`), or a Local or Wavelength
    /// Zone under a region (`us-west-2-lax-1a`).
    ///
    /// ```
    /// assert!("us-east-1a".parse::<ec2_iid::AvailabilityZone>().is_ok());
    /// assert!("us-east-1".parse::<ec2_iid::AvailabilityZone>().is_err());
    /// ```
    AvailabilityZone,
    "availability zone",
    "us-east-1a",
    |s| {
        let Some(rest) = region_prefix_len(s).and_then(|len| s.get(len..)) else {
            return false;
        };
        let zone_letters = !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase());
        let local_zone = rest.strip_prefix('-').is_some_and(|zone| {
            zone.split('-').all(|w| !w.is_empty() && w.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9')))
        });
        zone_letters || local_zone
    }
);

/// `arn:<partition>:iam::<account>:<kind>/<path/name>`: the account and the name's start.
fn split_iam_arn<'a>(s: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
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
        .then_some((account, name))
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
    /// An IAM role ARN: `arn:<partition>:iam::<12 digits>:role/<path/name>`.
    ///
    /// In an allow rule it is the role assumed for `DescribeInstances`, and its account is the
    /// rule's account: with that role's credentials EC2 only sees instances of that account.
    ///
    /// ```
    /// let role: ec2_iid::RoleArn = "arn:aws:iam::123456789012:role/ops/describe".parse()?;
    /// assert_eq!(role.account().as_str(), "123456789012");
    /// assert!("not-an-arn".parse::<ec2_iid::RoleArn>().is_err());
    /// # Ok::<(), ec2_iid::Error>(())
    /// ```
    RoleArn,
    "IAM role ARN",
    "arn:aws:iam::123456789012:role/describe-instances",
    |s| split_iam_arn(s, "role").is_some_and(|(_, name)| is_iam_name(name))
);

impl RoleArn {
    /// The account the role belongs to.
    #[must_use]
    pub fn account(&self) -> AccountId {
        let account = split_iam_arn(&self.0, "role").map_or("", |(account, _)| account);
        AccountId(account.to_owned())
    }
}

id_newtype!(
    /// An instance-profile bound: an ARN `arn:<partition>:iam::<12 digits>:instance-profile/
    /// <path/name>`, or such a prefix ending in `*` (Vault's wildcard), which matches every ARN
    /// that starts with the text before the `*`.
    ///
    /// ```
    /// let bound: ec2_iid::InstanceProfileArn =
    ///     "arn:aws:iam::123456789012:instance-profile/web-*".parse()?;
    /// assert!(bound.matches("arn:aws:iam::123456789012:instance-profile/web-1"));
    /// assert!(!bound.matches("arn:aws:iam::123456789012:instance-profile/db"));
    /// assert!("*".parse::<ec2_iid::InstanceProfileArn>().is_err());
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
    }
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
    fn identifiers() {
        assert!("i-de0f1344".parse::<InstanceId>().is_ok());
        assert!("i-de0f134".parse::<InstanceId>().is_err());
        assert!("i-DE0F1344".parse::<InstanceId>().is_err());
        assert_eq!(
            "1234".parse::<AccountId>(),
            Err(InvalidIdentifier { kind: "account id" })
        );
        for (region, partition) in [
            ("us-east-1", Partition::Aws),
            ("cn-northwest-1", Partition::AwsCn),
            ("us-gov-west-1", Partition::AwsUsGov),
            ("eusc-de-east-1", Partition::AwsEusc),
        ] {
            let r: Region = region.parse().unwrap();
            assert_eq!(r.partition(), partition);
            assert_eq!(r.to_string(), region);
        }
        for bad in [
            "",
            "-us-east-1",
            "us-east-",
            "us--east-1",
            "us_east_1",
            "1us-east-1",
            "us-east1",
            "useast-1",
            "us-east-123",
            "us-east-1a",
            "US-EAST-1",
        ] {
            assert!(bad.parse::<Region>().is_err(), "{bad}");
        }
        assert_eq!(Partition::AwsUsGov.to_string(), "aws-us-gov");
    }

    #[test]
    fn rule_identifiers() {
        let ok = |parsed: bool, text: &str| assert!(parsed, "{text} should parse");
        for az in [
            "us-east-1a",
            "eusc-de-east-1b",
            "us-west-2-lax-1a",
            "us-east-1-wl1-bos-wlz-1",
        ] {
            ok(az.parse::<AvailabilityZone>().is_ok(), az);
        }
        for bad in [
            "us-east-1",
            "us-east-1A",
            "us-east-1-",
            "us-east-1--a",
            "east-1a",
        ] {
            assert!(bad.parse::<AvailabilityZone>().is_err(), "{bad}");
        }
        for t in ["t3.micro", "u-6tb1.metal", "mac2-m2pro.metal"] {
            ok(t.parse::<InstanceType>().is_ok(), t);
        }
        for bad in ["t3", ".micro", "t3.", "t3.micro.x", "3t.micro"] {
            assert!(bad.parse::<InstanceType>().is_err(), "{bad}");
        }
        for id in ["vpc-1234abcd", "vpc-0123456789abcdef0"] {
            ok(id.parse::<VpcId>().is_ok(), id);
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
    }

    #[test]
    fn iam_arns() {
        for arn in [
            "arn:aws:iam::123456789012:role/r",
            "arn:aws-us-gov:iam::123456789012:role/path/to/r+=,.@_-",
            "arn:aws-cn:iam::123456789012:role/r",
        ] {
            let role: RoleArn = arn.parse().unwrap();
            assert_eq!(role.account().as_str(), "123456789012");
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
