//! Regions, their partitions and availability zones.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::inline::{IdText, InlineStr};
use super::{Identifier, InvalidIdentifier, ParsedStr};

id_newtype!(
    /// An AWS region name such as `us-east-1` or `eusc-de-east-1`.
    ///
    /// ```
    /// let r: ec2_iid::ids::Region = "cn-north-1".parse().unwrap();
    /// assert_eq!(r.partition(), ec2_iid::ids::Partition::AwsCn);
    /// assert!("US-EAST-1".parse::<ec2_iid::ids::Region>().is_err());
    /// ```
    Region,
    "region",
    "us-east-1",
    is_region,
    InlineStr<MAX_LEN>
);

impl Region {
    /// The AWS partition the region belongs to, from its name.
    #[must_use]
    pub fn partition(&self) -> Partition {
        Partition::of_region(self.as_str())
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
    /// Every partition the crate knows, for messages that list them.
    pub(crate) const ALL: [Self; 4] = [Self::Aws, Self::AwsCn, Self::AwsEusc, Self::AwsUsGov];

    /// The partition whose ARN id is `id` (`aws-cn`), if the crate knows it.
    pub(crate) fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == id)
    }

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

/// The longest region or availability zone accepted (AWS's are shorter); also their inline
/// capacity.
const MAX_LEN: usize = 32;

/// `<letters>(-<letters>)+-<digits>`: `us-east-1`, `us-gov-west-1`, `eusc-de-east-1`. Every AWS
/// region has this shape; `us-east1` or `useast-1` do not.
fn is_region(s: &str) -> bool {
    region_prefix_len(s) == Some(s.len())
}

/// The length of the region at the start of `s`, if one is there: letters-only words joined by
/// `-`, at least two of them, then `-` and one or two digits; `None` if `s` is longer than
/// `MAX_LEN`.
fn region_prefix_len(s: &str) -> Option<usize> {
    if s.len() > MAX_LEN {
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

id_newtype!(
    /// An availability zone: a region and a letter (`us-east-1a`), or a Local or Wavelength
    /// Zone under a region (`us-west-2-lax-1a`).
    ///
    /// ```
    /// assert!("us-east-1a".parse::<ec2_iid::ids::AvailabilityZone>().is_ok());
    /// assert!("us-east-1".parse::<ec2_iid::ids::AvailabilityZone>().is_err());
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
    },
    InlineStr<MAX_LEN>
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_their_partitions() {
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
    fn availability_zones() {
        for az in [
            "us-east-1a",
            "eusc-de-east-1b",
            "us-west-2-lax-1a",
            "us-east-1-wl1-bos-wlz-1",
        ] {
            assert!(az.parse::<AvailabilityZone>().is_ok(), "{az}");
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
    }
}
