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
        pub struct $name(pub(in crate::ids) String);

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

mod arn;
mod region;
mod resource;
mod serial;

pub use arn::{InstanceProfileArn, RoleArn};
pub use region::{AvailabilityZone, Partition, Region};
pub use resource::{
    AccountId, ImageId, InstanceId, InstanceState, InstanceType, SubnetId, UnknownInstanceState,
    VpcId,
};
pub use serial::SerialNumber;
pub(crate) use serial::significant_bytes;
