//! Teleport's join token (`kind: token`, `version: v2`) for the `ec2` method, as serde types.
//!
//! The crate only needs serde: read YAML with any serde YAML crate, JSON with serde_json.

use core::fmt;
use core::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::document::{AccountId, Region};
use crate::error::Error;

/// Teleport's default `aws_iid_ttl`: documents of instances launched longer ago are refused.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// A whole token resource, as `tctl create` takes it.
///
/// ```
/// let token: ec2_iid::TokenResource = serde_json::from_str(r#"{
///     "kind": "token", "version": "v2", "metadata": {"name": "ec2-token"},
///     "spec": {"roles": ["Node"], "join_method": "ec2",
///              "allow": [{"aws_account": "111111111111"}]}}"#)?;
/// assert_eq!(token.spec.validate()?.aws_iid_ttl.get(), ec2_iid::DEFAULT_TTL);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, Deserialize, Serialize)]
pub struct TokenResource {
    /// `token`.
    pub kind: String,
    /// `v2`.
    pub version: String,
    /// The token's name (not a secret for `ec2` tokens).
    pub metadata: TokenMetadata,
    /// The join rules.
    pub spec: TokenSpec,
}

impl TokenResource {
    /// Checks `kind` and `version`, then validates the spec (see [`TokenSpec::validate`]).
    ///
    /// # Errors
    /// [`Error::InvalidToken`] naming the first problem.
    pub fn validate(&self) -> Result<TokenSpec, Error> {
        if self.kind != "token" {
            return Err(invalid(format!(
                "kind is {:?}, expected \"token\"",
                self.kind
            )));
        }
        if self.version != "v2" {
            return Err(invalid(format!(
                "version is {:?}, expected \"v2\"",
                self.version
            )));
        }
        self.spec.validate()
    }
}

/// The resource's metadata; only the name matters here.
#[non_exhaustive]
#[derive(Clone, Debug, Default, Eq, PartialEq, Deserialize, Serialize)]
pub struct TokenMetadata {
    /// The token's name.
    pub name: String,
    /// When the token expires, as written (RFC 3339); the auth server enforces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// The `spec` of a token: roles, join method, TTL and allow rules.
///
/// Unknown fields (`bot_name`, `suggested_labels`, ...) are ignored.
#[non_exhaustive]
#[derive(Clone, Debug, Default, Eq, PartialEq, Deserialize, Serialize)]
pub struct TokenSpec {
    /// System roles the joining host gets (`Node`, `Proxy`, ...); the auth server applies them.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `ec2`; empty means `ec2` when allow rules exist, as Teleport does.
    #[serde(default)]
    pub join_method: String,
    /// How long after `pendingTime` a document is accepted; 0 or absent means 5 minutes.
    #[serde(default)]
    pub aws_iid_ttl: IidTtl,
    /// The allow rules; the first that matches wins.
    #[serde(default)]
    pub allow: Vec<AllowRule>,
}

impl TokenSpec {
    /// An `ec2` spec with these rules and the default TTL.
    #[must_use]
    pub fn from_rules(allow: Vec<AllowRule>) -> Self {
        Self {
            join_method: String::from("ec2"),
            allow,
            ..Self::default()
        }
    }

    /// Applies Teleport's defaults and checks, returning the normalised spec.
    ///
    /// `join_method` becomes `ec2` when empty with allow rules; the method must be `ec2`; there
    /// must be allow rules; each rule sets `aws_account` or `aws_role` and not `aws_arn`;
    /// accounts and regions must be well-formed; the TTL defaults to 5 minutes.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] naming the first problem, in Teleport's words where it has them.
    pub fn validate(&self) -> Result<Self, Error> {
        let mut spec = self.clone();
        if spec.join_method.is_empty() && !spec.allow.is_empty() {
            spec.join_method = String::from("ec2");
        }
        if spec.join_method != "ec2" {
            return Err(invalid(format!(
                "join method {:?} is not supported, only \"ec2\"",
                spec.join_method
            )));
        }
        if spec.allow.is_empty() {
            return Err(invalid(
                "the \"ec2\" join method requires defined token allow rules".into(),
            ));
        }
        for (index, rule) in spec.allow.iter().enumerate() {
            rule.validate()
                .map_err(|reason| invalid(format!("allow rule {index}: {reason}")))?;
        }
        if spec.aws_iid_ttl.0.is_zero() {
            spec.aws_iid_ttl = IidTtl(DEFAULT_TTL);
        }
        Ok(spec)
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidToken { reason }
}

/// One allow rule: Teleport's `aws_account`, `aws_regions`, `aws_role`, plus optional bounds.
///
/// An empty field matches anything; every set field must match (AND across fields, OR within
/// a list). The document bounds (`aws_image_ids`, `aws_instance_types`,
/// `aws_availability_zones`) are checked with the signature; the lookup bounds
/// (`aws_vpc_ids`, `aws_subnet_ids`, `aws_iam_instance_profile_arns`, the latter exact or a
/// prefix when ending in `*`, as Vault does) need [`InstanceFacts`](crate::InstanceFacts).
///
/// ```
/// let rule = ec2_iid::AllowRule::account("111111111111")?
///     .with_regions(["us-west-2".parse()?, "us-east-1".parse()?]);
/// assert_eq!(rule.aws_regions.len(), 2);
/// # Ok::<(), ec2_iid::Error>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, Default, Eq, PartialEq, Deserialize, Serialize)]
pub struct AllowRule {
    /// The instance's account must be this one (12 digits).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub aws_account: String,
    /// The instance's region must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_regions: Vec<String>,
    /// Role ARN to assume for `DescribeInstances` (instances in other accounts).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub aws_role: String,
    /// Teleport's IAM-method field: refused for `ec2`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub aws_arn: String,
    /// The document's `imageId` must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_image_ids: Vec<String>,
    /// The document's `instanceType` must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_instance_types: Vec<String>,
    /// The document's `availabilityZone` must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_availability_zones: Vec<String>,
    /// The instance's VPC (from `DescribeInstances`) must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_vpc_ids: Vec<String>,
    /// The instance's subnet (from `DescribeInstances`) must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_subnet_ids: Vec<String>,
    /// The instance profile ARN (from `DescribeInstances`) must equal one of these, or start
    /// with one that ends in `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_iam_instance_profile_arns: Vec<String>,
}

impl AllowRule {
    pub(crate) const EMPTY: Self = Self {
        aws_account: String::new(),
        aws_regions: Vec::new(),
        aws_role: String::new(),
        aws_arn: String::new(),
        aws_image_ids: Vec::new(),
        aws_instance_types: Vec::new(),
        aws_availability_zones: Vec::new(),
        aws_vpc_ids: Vec::new(),
        aws_subnet_ids: Vec::new(),
        aws_iam_instance_profile_arns: Vec::new(),
    };

    /// A rule for one account.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`] unless `account` is 12 digits.
    pub fn account(account: &str) -> Result<Self, Error> {
        let account: AccountId = account.parse()?;
        Ok(Self {
            aws_account: account.to_string(),
            ..Self::default()
        })
    }

    /// Restricts the rule to these regions.
    #[must_use]
    pub fn with_regions(mut self, regions: impl IntoIterator<Item = Region>) -> Self {
        self.aws_regions = regions.into_iter().map(|r| r.to_string()).collect();
        self
    }

    /// Sets the role to assume for `DescribeInstances`.
    #[must_use]
    pub fn with_role(mut self, role_arn: impl Into<String>) -> Self {
        self.aws_role = role_arn.into();
        self
    }

    /// The role to assume, if set.
    #[must_use]
    pub fn role(&self) -> Option<&str> {
        Some(self.aws_role.as_str()).filter(|r| !r.is_empty())
    }

    /// Whether the rule constrains anything that only `DescribeInstances` knows.
    #[must_use]
    pub fn has_lookup_bounds(&self) -> bool {
        !(self.aws_vpc_ids.is_empty()
            && self.aws_subnet_ids.is_empty()
            && self.aws_iam_instance_profile_arns.is_empty())
    }

    fn validate(&self) -> Result<(), String> {
        if !self.aws_arn.is_empty() {
            return Err(
                "the \"ec2\" join method does not support the \"aws_arn\" parameter".into(),
            );
        }
        if self.aws_account.is_empty() && self.aws_role.is_empty() {
            return Err(
                "allow rule for \"ec2\" join method must set \"aws_account\" or \"aws_role\""
                    .into(),
            );
        }
        if !self.aws_account.is_empty() && self.aws_account.parse::<AccountId>().is_err() {
            return Err("aws_account is not a 12-digit account id".into());
        }
        if let Some(bad) = self
            .aws_regions
            .iter()
            .find(|r| r.parse::<Region>().is_err())
        {
            return Err(format!("aws_regions has an invalid region {bad:?}"));
        }
        Ok(())
    }
}

/// `aws_iid_ttl`: a Go duration string (`5m`, `90s`, `1h30m`, `1.5h`) or integer nanoseconds
/// (Teleport's stored form). Zero means "use the default" (5 minutes).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct IidTtl(Duration);

impl IidTtl {
    /// A TTL of `duration`.
    #[must_use]
    pub fn new(duration: Duration) -> Self {
        Self(duration)
    }

    /// The TTL.
    #[must_use]
    pub fn get(self) -> Duration {
        self.0
    }
}

impl<'de> Deserialize<'de> for IidTtl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IidTtl;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Go duration such as \"5m\", or integer nanoseconds")
            }

            fn visit_u64<E: serde::de::Error>(self, nanos: u64) -> Result<IidTtl, E> {
                Ok(IidTtl(Duration::from_nanos(nanos)))
            }

            fn visit_i64<E: serde::de::Error>(self, nanos: i64) -> Result<IidTtl, E> {
                u64::try_from(nanos)
                    .map(|n| IidTtl(Duration::from_nanos(n)))
                    .map_err(|_| E::custom("aws_iid_ttl must not be negative"))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<IidTtl, E> {
                parse_go_duration(text).map(IidTtl).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for IidTtl {
    /// Whole milliseconds as `<n>ms`, anything finer as `<n>ns`, so that the value parses back
    /// exactly (a sub-millisecond TTL written as `0ms` would come back as the 5-minute default).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.subsec_nanos().is_multiple_of(1_000_000) {
            s.collect_str(&format_args!("{}ms", self.0.as_millis()))
        } else {
            s.collect_str(&format_args!("{}ns", self.0.as_nanos()))
        }
    }
}

/// Parses Go's `time.ParseDuration` syntax, for non-negative durations.
///
/// ```
/// use core::time::Duration;
/// assert_eq!(ec2_iid::parse_go_duration("1h30m")?, Duration::from_secs(5400));
/// assert_eq!(ec2_iid::parse_go_duration("1.5h")?, Duration::from_secs(5400));
/// assert!(ec2_iid::parse_go_duration("5 minutes").is_err());
/// # Ok::<(), String>(())
/// ```
///
/// # Errors
/// A message naming what is wrong: empty, negative, missing or unknown unit, overflow.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let err = |what: &str| format!("invalid duration {text:?}: {what}");
    let rest = text.strip_prefix('+').unwrap_or(text);
    if rest.starts_with('-') {
        return Err(err("negative"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(err("empty"));
    }
    // Go limits durations to i64 nanoseconds (about 292 years).
    const MAX_NANOS: u128 = 9_223_372_036_854_775_807;
    let mut total: u128 = 0;
    let mut rest = rest;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after) => {
                let n = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("expected a number"));
        }
        let unit_len = after
            .bytes()
            .take_while(|b| !b.is_ascii_digit() && *b != b'.')
            .count();
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err("number too large"))?
        };
        let mut nanos = whole
            .checked_mul(unit_nanos)
            .ok_or_else(|| err("overflow"))?;
        // Fraction: digits beyond what nanoseconds can hold are dropped, as Go does.
        let mut scale = unit_nanos;
        for digit in frac_part.bytes().take(30) {
            scale /= 10;
            nanos += u128::from(digit - b'0') * scale;
        }
        total = total.checked_add(nanos).ok_or_else(|| err("overflow"))?;
        if total > MAX_NANOS {
            return Err(err("overflow"));
        }
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err("overflow"))?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| err("overflow"))?;
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (text, secs, nanos) in [
            ("5m", 300, 0),
            ("90s", 90, 0),
            ("1h30m", 5400, 0),
            ("1.5h", 5400, 0),
            ("0", 0, 0),
            ("+2s", 2, 0),
            ("300ms", 0, 300_000_000),
            ("1us", 0, 1_000),
            ("1µs", 0, 1_000),
            (".5s", 0, 500_000_000),
            ("1.000000001s", 1, 1),
            ("2562047h47m16.854775807s", 9_223_372_036, 854_775_807),
        ] {
            assert_eq!(
                parse_go_duration(text),
                Ok(Duration::new(secs, nanos)),
                "{text}"
            );
        }
        for bad in [
            "",
            "-5m",
            "5",
            "5 m",
            "m",
            "5x",
            ".s",
            "2562047h47m16.854775808s",
            "1e3s",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ttl_from_string_or_nanoseconds() {
        let spec: TokenSpec = serde_json::from_str(r#"{"aws_iid_ttl": 600000000000}"#).unwrap();
        assert_eq!(spec.aws_iid_ttl.get(), Duration::from_secs(600));
        let spec: TokenSpec = serde_json::from_str(r#"{"aws_iid_ttl": "10m"}"#).unwrap();
        assert_eq!(spec.aws_iid_ttl.get(), Duration::from_secs(600));
        assert!(serde_json::from_str::<TokenSpec>(r#"{"aws_iid_ttl": -1}"#).is_err());
        assert!(serde_json::from_str::<TokenSpec>(r#"{"aws_iid_ttl": "-1m"}"#).is_err());
        assert!(serde_json::from_str::<TokenSpec>(r#"{"aws_iid_ttl": true}"#).is_err());
    }

    fn spec(json: &str) -> Result<TokenSpec, Error> {
        serde_json::from_str::<TokenSpec>(json).unwrap().validate()
    }

    fn reason(result: Result<TokenSpec, Error>) -> String {
        match result {
            Err(Error::InvalidToken { reason }) => reason,
            other => panic!("expected InvalidToken, got {other:?}"),
        }
    }

    #[test]
    fn validation_follows_teleport() {
        let ok = spec(r#"{"allow": [{"aws_account": "111111111111"}]}"#).unwrap();
        assert_eq!(ok.join_method, "ec2");
        assert_eq!(ok.aws_iid_ttl.get(), DEFAULT_TTL);
        let role_only =
            spec(r#"{"join_method": "ec2", "allow": [{"aws_role": "arn:aws:iam::1:role/r"}]}"#);
        assert!(role_only.is_ok());

        assert!(reason(spec(r#"{"join_method": "ec2"}"#)).contains("requires defined token allow"));
        assert!(reason(spec(r#"{}"#)).contains("not supported"));
        assert!(
            reason(spec(
                r#"{"join_method": "iam", "allow": [{"aws_account": "111111111111"}]}"#
            ))
            .contains("\"iam\"")
        );
        assert!(
            reason(spec(r#"{"allow": [{"aws_regions": ["us-east-1"]}]}"#))
                .contains("must set \"aws_account\" or \"aws_role\"")
        );
        assert!(reason(spec(
            r#"{"allow": [{"aws_account": "111111111111", "aws_arn": "arn:aws:iam::1:role/x"}]}"#
        ))
        .contains("aws_arn"));
        assert!(reason(spec(r#"{"allow": [{"aws_account": "1111"}]}"#)).contains("12-digit"));
        assert!(
            reason(spec(
                r#"{"allow": [{"aws_account": "111111111111", "aws_regions": ["Nowhere"]}]}"#
            ))
            .contains("invalid region")
        );
    }

    #[test]
    fn resource_kind_and_version() {
        let json = |kind: &str, version: &str| {
            format!(
                r#"{{"kind": "{kind}", "version": "{version}", "metadata": {{"name": "t"}},
                    "spec": {{"allow": [{{"aws_account": "111111111111"}}]}}}}"#
            )
        };
        let ok: TokenResource = serde_json::from_str(&json("token", "v2")).unwrap();
        assert!(ok.validate().is_ok());
        let bad: TokenResource = serde_json::from_str(&json("role", "v2")).unwrap();
        assert!(reason(bad.validate()).contains("kind"));
        let bad: TokenResource = serde_json::from_str(&json("token", "v3")).unwrap();
        assert!(reason(bad.validate()).contains("version"));
    }

    #[test]
    fn rule_helpers() {
        let rule = AllowRule::account("111111111111")
            .unwrap()
            .with_role("arn:aws:iam::1:role/r");
        assert_eq!(rule.role(), Some("arn:aws:iam::1:role/r"));
        assert!(!rule.has_lookup_bounds());
        assert!(AllowRule::default().role().is_none());
        assert!(AllowRule::account("x").is_err());
        let serialized = serde_json::to_string(&rule).unwrap();
        assert_eq!(
            serialized,
            r#"{"aws_account":"111111111111","aws_role":"arn:aws:iam::1:role/r"}"#
        );
        assert_eq!(
            serde_json::to_string(&IidTtl::new(Duration::from_secs(90))).unwrap(),
            "\"90000ms\""
        );
        for ttl in [
            Duration::from_nanos(999_999),
            Duration::from_nanos(299_999_999_999),
        ] {
            let json = serde_json::to_string(&IidTtl::new(ttl)).unwrap();
            assert_eq!(
                serde_json::from_str::<IidTtl>(&json).unwrap().get(),
                ttl,
                "{json}"
            );
        }
    }
}
