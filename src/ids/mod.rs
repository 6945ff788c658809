//! Identifiers: the checked names of AWS things the documents and the rules speak of.
//!
//! Each is parsed once, from a document or a rule, into a type whose value has the shape AWS
//! gives it, so a typo in a rule is refused when it is read instead of never matching (or, worse,
//! matching something else).

use core::fmt;
use core::str::FromStr;

/// A text is not a valid identifier of its kind (an account id, a region, a format, ...).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq, thiserror::Error)]
#[error("invalid {what}")]
pub struct InvalidIdentifier {
    /// What it should have been, e.g. `account id`.
    pub what: &'static str,
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

/// Defines a validated string newtype with `FromStr`, `Display`, `AsRef<str>` and serde, its
/// text kept in `$text` (an `InlineStr` as long as the rule's longest value, or a `String`).
macro_rules! id_newtype {
    (
        $(#[$meta:meta])* $name:ident, $what:literal, $example:literal, $valid:expr, $text:ty
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
        pub struct $name(pub(in crate::ids) $text);

        impl Identifier for $name {
            const KIND: &'static str = $what;
            const EXAMPLE: &'static str = $example;
        }

        impl $name {
            /// The id as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                self.0.text()
            }
        }

        impl FromStr for $name {
            type Err = InvalidIdentifier;

            fn from_str(s: &str) -> Result<Self, InvalidIdentifier> {
                let valid: fn(&str) -> bool = $valid;
                valid(s)
                    .then(|| <$text as IdText>::from_text(s))
                    .flatten()
                    .map(Self)
                    .ok_or(InvalidIdentifier { what: $what })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(ParsedStr::<Self>::new(concat!("invalid ", $what)))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

mod arn;
mod inline;
mod region;
mod resource;
mod serial;

pub use arn::{InstanceProfileArn, RoleArn};
pub use region::{AvailabilityZone, Partition, Region};
pub use resource::{
    AccountId, ImageId, InstanceId, InstanceState, InstanceType, OrganizationId,
    OrganizationalUnitId, SecurityGroupId, SubnetId, UnknownInstanceState, VpcId,
};
pub use serial::SerialNumber;
pub(crate) use serial::significant_bytes;

#[cfg(test)]
mod tests {
    use core::fmt::Debug;
    use core::hash::Hash;
    use std::hash::{BuildHasher, RandomState};

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::*;

    /// The longest valid `T` parses and comes back as it was, through `Display`, `as_str` and
    /// JSON; one byte longer is refused.
    fn longest_fits<T>(longest: &str, too_long: &str)
    where
        T: Identifier
            + AsRef<str>
            + Debug
            + fmt::Display
            + Eq
            + Hash
            + Serialize
            + DeserializeOwned,
    {
        assert_eq!(too_long.len(), longest.len() + 1);
        let id: T = longest.parse().unwrap();
        assert_eq!(id.as_ref(), longest);
        assert_eq!(id.to_string(), longest);
        assert_eq!(
            format!("{id:?}"),
            format!("{}({longest:?})", short_name::<T>())
        );
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{longest}\""));
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), id);
        let hasher = RandomState::new();
        assert_eq!(hasher.hash_one(&id), hasher.hash_one(longest));
        assert_eq!(
            too_long.parse::<T>().map(|id| id.to_string()),
            Err(InvalidIdentifier { what: T::KIND })
        );
        assert!(serde_json::from_str::<T>(&format!("\"{too_long}\"")).is_err());
    }

    fn short_name<T>() -> &'static str {
        let name = core::any::type_name::<T>();
        name.rsplit("::").next().unwrap()
    }

    #[test]
    fn the_longest_valid_ids_fit_and_longer_are_refused() {
        let hex = |n: usize| "0123456789abcdef".repeat(3)[..n].to_owned();
        longest_fits::<AccountId>("123456789012", "1234567890123");
        longest_fits::<InstanceId>(&format!("i-{}", hex(32)), &format!("i-{}", hex(33)));
        longest_fits::<ImageId>(&format!("ami-{}", hex(17)), &format!("ami-{}", hex(18)));
        longest_fits::<VpcId>(&format!("vpc-{}", hex(17)), &format!("vpc-{}", hex(18)));
        longest_fits::<SubnetId>(
            &format!("subnet-{}", hex(17)),
            &format!("subnet-{}", hex(18)),
        );
        longest_fits::<InstanceType>(
            &format!("t3.{}", "x".repeat(61)),
            &format!("t3.{}", "x".repeat(62)),
        );
        longest_fits::<Region>(
            &format!("us-{}-1", "e".repeat(27)),
            &format!("us-{}-1", "e".repeat(28)),
        );
        longest_fits::<AvailabilityZone>(
            &format!("us-east-1{}", "a".repeat(23)),
            &format!("us-east-1{}", "a".repeat(24)),
        );
        // ARNs keep a `String`: IAM bounds them, not this crate's storage.
        let role = format!("arn:aws:iam::123456789012:role/{}", "r".repeat(993));
        longest_fits::<RoleArn>(&role, &format!("{role}r"));
    }

    #[test]
    fn ids_order_and_compare_as_their_text() {
        let texts = [
            "i-0123456789abcdef0",
            "i-de0f1344",
            "i-0123456789abcdef",
            "i-ffffffff",
            "i-0123456789abcdef01234567890abcde",
        ];
        let mut ids: Vec<InstanceId> = texts.iter().map(|t| t.parse().unwrap()).collect();
        let mut strings = texts.to_vec();
        ids.sort();
        strings.sort_unstable();
        assert_eq!(
            ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(),
            strings
        );

        let regions = [
            "us-west-2",
            "eu-west-1",
            "us-east-1",
            "us-gov-west-1",
            "us-east-2",
        ];
        let mut parsed: Vec<Region> = regions.iter().map(|r| r.parse().unwrap()).collect();
        let mut strings = regions.to_vec();
        parsed.sort();
        strings.sort_unstable();
        assert_eq!(
            parsed.iter().map(Region::as_str).collect::<Vec<_>>(),
            strings
        );

        let (a, b): (AccountId, AccountId) = (
            "123456789012".parse().unwrap(),
            "123456789012".parse().unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(a.clone(), b);
        assert_ne!(a, "210987654321".parse().unwrap());
    }

    #[test]
    fn a_roles_account_is_its_arn_account() {
        let role: RoleArn = "arn:aws:iam::210987654321:role/r".parse().unwrap();
        assert_eq!(role.account(), "210987654321".parse().unwrap());
    }
}
