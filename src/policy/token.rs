//! Teleport's join token (`kind: token`, `version: v2`) for the `ec2` method, as serde types.
//!
//! The crate only needs serde: read YAML with any serde YAML crate, JSON with serde_json.
//! Reading refuses fields Teleport's token does not have (naming the nearest known one), a
//! field given twice (formats disagree on which copy wins: serde_json keeps the last) and
//! values of the wrong shape; [`TokenSpec::validate`] then applies Teleport's rules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ConfigError;
use crate::policy::fields::{Fields, read_value};
use crate::policy::rules::AllowRule;
use crate::policy::ttl::{DEFAULT_TTL, IidTtl, MIN_TTL};

/// A whole token resource, as `tctl create` takes it.
///
/// ```
/// let token: ec2_iid::TokenResource = serde_json::from_str(r#"{
///     "kind": "token", "version": "v2", "metadata": {"name": "ec2-token"},
///     "spec": {"roles": ["Node"], "join_method": "ec2",
///              "allow": [{"aws_account": "111111111111"}]}}"#)?;
/// assert_eq!(token.validate()?.spec().aws_iid_ttl.get(), ec2_iid::token::DEFAULT_TTL);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct TokenResource {
    /// `token`.
    pub kind: String,
    /// `v2`.
    pub version: String,
    /// The token's name and expiry.
    pub metadata: TokenMetadata,
    /// The join rules.
    pub spec: TokenSpec,
}

impl TokenResource {
    /// Checks `kind` and `version`, then validates the spec (see [`TokenSpec::validate`]).
    ///
    /// # Errors
    /// [`ConfigError::InvalidField`] for a wrong kind or version; as [`TokenSpec::validate`].
    pub fn validate(&self) -> Result<ValidatedSpec, ConfigError> {
        if self.kind != "token" {
            return Err(invalid(
                "kind",
                format!("is {:?}: write kind: token", self.kind),
            ));
        }
        if self.version != "v2" {
            return Err(invalid(
                "version",
                format!("is {:?}: write version: v2", self.version),
            ));
        }
        self.spec.validate()
    }
}

impl<'de> Deserialize<'de> for TokenResource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const KNOWN: [&str; 4] = ["kind", "version", "metadata", "spec"];
        let value = read_value(d, "")?;
        let read = || -> Result<Self, ConfigError> {
            let mut fields = Fields::new(value, "", &KNOWN, &["sub_kind", "status"])?;
            let metadata = fields
                .value::<serde_json::Value>("metadata")?
                .unwrap_or_default();
            let spec = fields
                .value::<serde_json::Value>("spec")?
                .unwrap_or_default();
            Ok(Self {
                kind: fields.value("kind")?.unwrap_or_default(),
                version: fields.value("version")?.unwrap_or_default(),
                metadata: TokenMetadata::from_value(metadata)?,
                spec: TokenSpec::from_value(spec)?,
            })
        };
        read().map_err(serde::de::Error::custom)
    }
}

/// The resource's metadata: its name and when it expires.
#[non_exhaustive]
#[derive(Clone, Debug, Default, Eq, PartialEq, Serialize)]
pub struct TokenMetadata {
    /// The token's name (not a secret for `ec2` tokens).
    pub name: String,
    /// When the token stops admitting anyone (RFC 3339); the [`Verifier`](crate::Verifier)
    /// built from the token refuses documents from then on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
}

impl TokenMetadata {
    fn from_value(value: serde_json::Value) -> Result<Self, ConfigError> {
        const KNOWN: [&str; 2] = ["name", "expires"];
        const TELEPORT: [&str; 5] = ["description", "labels", "namespace", "revision", "id"];
        if value.is_null() {
            return Err(invalid(
                "metadata",
                "is missing: give the token a name".into(),
            ));
        }
        let mut fields = Fields::new(value, "metadata", &KNOWN, &TELEPORT)?;
        let expires = fields
            .value::<String>("expires")?
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        invalid(
                            "metadata.expires",
                            format!("{e}: write an RFC 3339 time such as \"2030-01-01T00:00:00Z\""),
                        )
                    })
            })
            .transpose()?;
        Ok(Self {
            name: fields.value("name")?.unwrap_or_default(),
            expires,
        })
    }
}

impl<'de> Deserialize<'de> for TokenMetadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = read_value(d, "metadata")?;
        Self::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// The `spec` of a token: roles, join method, TTL and allow rules.
///
/// Teleport's other spec fields (`bot_name`, `suggested_labels`, the other join methods'
/// settings, ...) are accepted and ignored; any other field is refused.
#[non_exhaustive]
#[derive(Clone, Debug, Default, Eq, PartialEq, Serialize)]
pub struct TokenSpec {
    /// System roles the joining host gets (`Node`, `Proxy`, ...); the auth server applies them.
    pub roles: Vec<String>,
    /// `ec2`; empty means `ec2` when allow rules exist, as Teleport does.
    pub join_method: String,
    /// How long after `pendingTime` a document is accepted; 0 or absent means 5 minutes.
    pub aws_iid_ttl: IidTtl,
    /// The allow rules; the first that matches wins.
    pub allow: Vec<AllowRule>,
}

/// The fields of Teleport's `ProvisionTokenSpecV2` that an `ec2` token does not use.
const TELEPORT_SPEC_FIELDS: [&str; 19] = [
    "bot_name",
    "suggested_labels",
    "suggested_agent_matcher_labels",
    "github",
    "circleci",
    "gitlab",
    "kubernetes",
    "azure",
    "azure_devops",
    "gcp",
    "spacelift",
    "tpm",
    "terraform_cloud",
    "bitbucket",
    "oracle",
    "bound_keypair",
    "env0",
    "integration",
    "assigned_labels",
];

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

    fn from_value(value: serde_json::Value) -> Result<Self, ConfigError> {
        const KNOWN: [&str; 4] = ["roles", "join_method", "aws_iid_ttl", "allow"];
        let mut fields = Fields::new(value, "spec", &KNOWN, &TELEPORT_SPEC_FIELDS)?;
        let allow = fields
            .value::<Vec<serde_json::Value>>("allow")?
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, rule)| AllowRule::from_value(rule, &format!("spec.allow[{index}]")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            roles: fields.value("roles")?.unwrap_or_default(),
            join_method: fields.value("join_method")?.unwrap_or_default(),
            aws_iid_ttl: fields.value("aws_iid_ttl")?.unwrap_or_default(),
            allow,
        })
    }

    /// Applies Teleport's defaults and checks, returning the normalised spec as a
    /// [`ValidatedSpec`].
    ///
    /// `join_method` becomes `ec2` when empty with allow rules; the method must be `ec2`; there
    /// must be allow rules (each already names an account, see [`AllowRule`]); the TTL
    /// defaults to 5 minutes when zero and is at least one second otherwise.
    ///
    /// # Errors
    /// [`ConfigError::InvalidField`] for another join method, [`ConfigError::NoAllowRules`],
    /// [`ConfigError::TtlTooShort`].
    pub fn validate(&self) -> Result<ValidatedSpec, ConfigError> {
        let mut spec = self.clone();
        if spec.join_method.is_empty() && !spec.allow.is_empty() {
            spec.join_method = String::from("ec2");
        }
        if spec.join_method != "ec2" {
            return Err(invalid(
                "spec.join_method",
                format!(
                    "{:?} is not supported: write join_method: ec2",
                    spec.join_method
                ),
            ));
        }
        if spec.allow.is_empty() {
            return Err(ConfigError::NoAllowRules {
                field: "spec.allow",
            });
        }
        let ttl = spec.aws_iid_ttl.get();
        if ttl.is_zero() {
            spec.aws_iid_ttl = IidTtl::new(DEFAULT_TTL);
        } else if ttl < MIN_TTL {
            return Err(ConfigError::TtlTooShort {
                field: "spec.aws_iid_ttl",
                ttl,
            });
        }
        Ok(ValidatedSpec(spec))
    }
}

/// A [`TokenSpec`] that passed [`TokenSpec::validate`], with Teleport's defaults applied.
///
/// Only validation makes one, so a function that takes it needs no second check: the join
/// method is `ec2`, there is at least one allow rule, and the TTL is at least one second (the
/// 5-minute default when the spec had none).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ValidatedSpec(TokenSpec);

impl ValidatedSpec {
    /// The normalised spec.
    #[must_use]
    pub fn spec(&self) -> &TokenSpec {
        &self.0
    }

    /// The normalised spec, by value.
    #[must_use]
    pub fn into_spec(self) -> TokenSpec {
        self.0
    }
}

impl<'de> Deserialize<'de> for TokenSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = read_value(d, "spec")?;
        Self::from_value(value).map_err(serde::de::Error::custom)
    }
}

fn invalid(field: &str, reason: String) -> ConfigError {
    ConfigError::InvalidField {
        field: field.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;

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

    fn spec(json: &str) -> Result<TokenSpec, ConfigError> {
        serde_json::from_str::<TokenSpec>(json)
            .unwrap()
            .validate()
            .map(ValidatedSpec::into_spec)
    }

    #[test]
    fn validation_follows_teleport() {
        let ok = spec(r#"{"allow": [{"aws_account": "111111111111"}]}"#).unwrap();
        assert_eq!(ok.join_method, "ec2");
        assert_eq!(ok.aws_iid_ttl.get(), DEFAULT_TTL);
        let role_only = spec(
            r#"{"join_method": "ec2", "allow": [{"aws_role": "arn:aws:iam::111111111111:role/r"}]}"#,
        )
        .unwrap();
        assert_eq!(role_only.allow[0].aws_account().as_str(), "111111111111");

        assert_eq!(
            spec(r#"{"join_method": "ec2"}"#),
            Err(ConfigError::NoAllowRules {
                field: "spec.allow"
            })
        );
        assert!(
            spec(r#"{}"#)
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
        assert!(
            spec(r#"{"join_method": "iam", "allow": [{"aws_account": "111111111111"}]}"#)
                .unwrap_err()
                .to_string()
                .starts_with("spec.join_method: \"iam\"")
        );
        assert_eq!(
            spec(r#"{"allow": [{"aws_account": "111111111111"}], "aws_iid_ttl": 300}"#),
            Err(ConfigError::TtlTooShort {
                field: "spec.aws_iid_ttl",
                ttl: Duration::from_nanos(300)
            })
        );
        assert!(
            spec(r#"{"allow": [{"aws_account": "111111111111"}], "aws_iid_ttl": "1s"}"#).is_ok()
        );
    }

    #[test]
    fn reading_refuses_what_teleport_does_not_have() {
        let read = |json: &str| {
            serde_json::from_str::<TokenSpec>(json)
                .unwrap_err()
                .to_string()
        };
        assert!(
            read(r#"{"allow": [{"aws_account": "111111111111"}, {"aws_account": "111111111111", "aws_region": ["us-west-2"]}]}"#)
                .starts_with("unknown field spec.allow[1].aws_region: did you mean aws_regions?"),
        );
        assert!(
            read(r#"{"alow": []}"#).starts_with("unknown field spec.alow: did you mean allow?")
        );
        assert!(
            read(r#"{"allow": [{"aws_account": "1111"}]}"#)
                .starts_with("spec.allow[0].aws_account:")
        );
        assert!(read(r#"{"allow": {}}"#).starts_with("spec.allow:"));
        let teleport = serde_json::from_str::<TokenSpec>(
            r#"{"bot_name": "b", "suggested_labels": {"a": ["b"]}, "allow": [{"aws_account": "111111111111"}]}"#,
        );
        assert!(teleport.is_ok(), "{teleport:?}");
    }

    #[test]
    fn resource_kind_version_and_expiry() {
        let json = |kind: &str, version: &str, extra: &str| {
            format!(
                r#"{{"kind": "{kind}", "version": "{version}", "metadata": {{"name": "t"{extra}}},
                    "spec": {{"allow": [{{"aws_account": "111111111111"}}]}}}}"#
            )
        };
        let ok: TokenResource = serde_json::from_str(&json("token", "v2", "")).unwrap();
        assert!(ok.validate().is_ok());
        assert_eq!(ok.metadata.expires, None);
        let field = |r: Result<ValidatedSpec, ConfigError>| match r {
            Err(ConfigError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let bad: TokenResource = serde_json::from_str(&json("role", "v2", "")).unwrap();
        assert_eq!(field(bad.validate()), "kind");
        let bad: TokenResource = serde_json::from_str(&json("token", "v3", "")).unwrap();
        assert_eq!(field(bad.validate()), "version");
        let expiring: TokenResource = serde_json::from_str(&json(
            "token",
            "v2",
            r#", "expires": "2030-01-01T01:00:00+01:00""#,
        ))
        .unwrap();
        assert_eq!(
            expiring.metadata.expires,
            Some("2030-01-01T00:00:00Z".parse().unwrap())
        );
        let err =
            serde_json::from_str::<TokenResource>(&json("token", "v2", r#", "expires": "soon""#))
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("metadata.expires:"), "{err}");
        let err = serde_json::from_str::<TokenResource>(&json("token", "v2", r#", "expire": "x""#))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown field metadata.expire: did you mean expires?"),
            "{err}"
        );
    }

    /// A JSON token resource whose metadata, first rule, spec and top level end in a
    /// placeholder for more fields.
    const RESOURCE: &str = r#"{"kind": "token", "version": "v2",
        "metadata": {"name": "t", "expires": "2000-01-01T00:00:00Z"{meta}},
        "spec": {"join_method": "ec2", "allow": [{"aws_account": "111111111111"{rule}}]{spec}}{top}}"#;

    fn resource(meta: &str, rule: &str, spec: &str, top: &str) -> String {
        RESOURCE
            .replace("{meta}", meta)
            .replace("{rule}", rule)
            .replace("{spec}", spec)
            .replace("{top}", top)
    }

    /// The messages of refusing `text` as `T` through serde_json and (JSON being YAML) through
    /// serde_norway, which puts its own path in front.
    fn refusals<T: for<'de> Deserialize<'de> + core::fmt::Debug>(text: &str) -> [String; 2] {
        [
            serde_json::from_str::<T>(text).unwrap_err().to_string(),
            serde_norway::from_str::<T>(text).unwrap_err().to_string(),
        ]
    }

    #[test]
    fn duplicate_fields_are_refused_where_they_are() {
        let ok = resource("", "", "", "");
        assert!(serde_json::from_str::<TokenResource>(&ok).is_ok());
        assert!(serde_norway::from_str::<TokenResource>(&ok).is_ok());
        for (text, field) in [
            (
                resource("", r#", "aws_account": "123456789012""#, "", ""),
                "spec.allow[0].aws_account",
            ),
            (
                resource(
                    "",
                    "",
                    "",
                    r#", "spec": {"allow": [{"aws_account": "123456789012"}]}"#,
                ),
                "spec",
            ),
            (
                resource(r#", "expires": "2999-01-01T00:00:00Z""#, "", "", ""),
                "metadata.expires",
            ),
            (resource("", "", "", r#", "kind": "token""#), "kind"),
            (
                resource(
                    "",
                    "",
                    r#", "suggested_labels": {"a": ["b"], "a": ["c"]}"#,
                    "",
                ),
                "spec.suggested_labels.a",
            ),
        ] {
            let refused = ConfigError::DuplicateField {
                field: field.into(),
            };
            for message in refusals::<TokenResource>(&text) {
                assert!(message.contains(&refused.to_string()), "{message}");
            }
        }
    }

    #[test]
    fn duplicate_fields_are_refused_in_a_bare_spec_rule_and_metadata() {
        let spec = r#"{"join_method": "ec2", "allow": [{"aws_account": "111111111111"}],
                       "allow": [{"aws_account": "123456789012"}]}"#;
        for message in refusals::<TokenSpec>(spec) {
            assert!(
                message.contains("duplicate field spec.allow: write each field once"),
                "{message}"
            );
        }
        let spec = r#"{"allow": [{"aws_account": "111111111111"},
                       {"aws_account": "111111111111", "aws_regions": ["us-east-1"],
                        "aws_regions": ["eu-west-1"]}]}"#;
        for message in refusals::<TokenSpec>(spec) {
            assert!(
                message.contains("duplicate field spec.allow[1].aws_regions:"),
                "{message}"
            );
        }
        let rule = r#"{"aws_account": "111111111111", "aws_account": "123456789012"}"#;
        for message in refusals::<AllowRule>(rule) {
            assert!(
                message.contains("duplicate field aws_account:"),
                "{message}"
            );
        }
        let metadata = r#"{"name": "t", "expires": "2000-01-01T00:00:00Z",
                           "expires": "2999-01-01T00:00:00Z"}"#;
        for message in refusals::<TokenMetadata>(metadata) {
            assert!(
                message.contains("duplicate field metadata.expires:"),
                "{message}"
            );
        }
        let metadata: TokenMetadata =
            serde_json::from_str(r#"{"name": "t", "expires": "2030-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(metadata.name, "t");
    }

    #[test]
    fn duplicate_fields_are_refused_in_yaml_blocks() {
        // serde_norway's own `Value` refuses duplicates, but its deserializer hands them to the
        // visitor, as serde_json's does.
        let yaml = "kind: token\nversion: v2\nmetadata:\n  name: t\n  expires: \"2000-01-01T00:00:00Z\"\n  expires: \"2999-01-01T00:00:00Z\"\nspec:\n  allow:\n    - aws_account: \"111111111111\"\n";
        let message = serde_norway::from_str::<TokenResource>(yaml)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("duplicate field metadata.expires: write each field once"),
            "{message}"
        );
        let yaml = "allow:\n  - aws_account: \"111111111111\"\n    aws_account: \"123456789012\"\n";
        let message = serde_norway::from_str::<TokenSpec>(yaml)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("duplicate field spec.allow[0].aws_account: write each field once"),
            "{message}"
        );
    }
}
