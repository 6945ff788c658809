//! Allow rules: what a token admits, parsed into checked types, and matching documents against
//! them (pure; rules are tried in order, see [`match_allow_rules`] and
//! [`PendingJoin`](crate::PendingJoin) for how instance bounds combine).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::{ConfigError, Error, RuleMismatch};
use crate::ids::{
    AccountId, AvailabilityZone, ImageId, InstanceProfileArn, InstanceType, OrganizationId,
    OrganizationalUnitId, Partition, Region, RoleArn, SecurityGroupId, SubnetId, VpcId,
};
use crate::policy::fields::{self, Fields};
use crate::signature::VerifiedDocument;
use crate::text::bounded_escaped;
use crate::trust::TrustStore;

/// One allow rule: Teleport's `aws_account`, `aws_regions`, `aws_role`, plus optional bounds.
///
/// Every rule names an account: `aws_account`, or the account of `aws_role` (with that role's
/// credentials `DescribeInstances` only sees its own account, so a role-only rule admits only
/// that account, as in Teleport). A rule whose `aws_account` and `aws_role` disagree, or that
/// names neither, cannot be built. Every rule is bound to one partition when it names a role:
/// the role's (`arn:aws-cn:…` admits only `cn-*` documents, since that role cannot describe
/// other instances); a rule whose `aws_regions` are in another partition than its role cannot be
/// built ([`ConfigError::PartitionMismatch`]). A rule without a role admits its regions (of any
/// partition), or with no regions every region the trust store covers. Every set field must
/// match (AND across fields, OR within a list); an unset one matches anything. The document bounds (`aws_image_ids`,
/// `aws_instance_types`, `aws_availability_zones`) are checked with the signature; the lookup
/// bounds (`aws_vpc_ids`, `aws_subnet_ids`, `aws_iam_instance_profile_arns`, the latter exact
/// or a prefix ending in `*`, as Vault does) against [`InstanceFacts`](crate::InstanceFacts),
/// and so are the fleet selectors SPIRE and Vault users know:
///
/// * `aws_tags: {KEY: [VALUE, …]}`: every key is a tag of the instance, with one of the values
///   (AWS's tag limits: at most 50 keys, a key 1–128 characters not starting with `aws:`, a
///   value 0–256 characters);
/// * `aws_security_group_ids`: the instance is in at least one of the groups;
/// * `aws_iam_role_arns`: the role of the instance's profile is one of these (Vault's
///   `bound_iam_role_arn`; in the rule's account and partition, since a profile holds a role
///   of its own account);
/// * `aws_organization_id` and `aws_organizational_unit_ids`: the document's account is in
///   the organization (SPIRE's `verify_organization`) and, with OU ids, in one of those OUs or
///   below one (OU ids need the organization id).
///
/// Rules are tried in order. A rule whose document fields match but whose lookup bounds fail
/// the instance lets the next document-matching rule try; the join's rule is the first that
/// passes both (see [`PendingJoin`](crate::PendingJoin)).
///
/// Deserializing refuses unknown fields (naming the nearest known one), a field given twice,
/// values of the wrong shape, empty lists and Teleport's IAM-method field `aws_arn`.
///
/// ```
/// use ec2_iid::AllowRule;
///
/// let rule = AllowRule::account("111111111111".parse()?)
///     .with_regions(["us-west-2".parse()?, "us-east-1".parse()?]);
/// assert_eq!(rule.aws_regions().len(), 2);
///
/// // A role-only rule is bound to the role's account.
/// let rule = AllowRule::role("arn:aws:iam::222222222222:role/describe".parse()?);
/// assert_eq!(rule.aws_account().as_str(), "222222222222");
///
/// let typo = serde_json::from_str::<AllowRule>(
///     r#"{"aws_account": "111111111111", "aws_region": ["us-west-2"]}"#);
/// assert!(typo.unwrap_err().to_string().contains("did you mean aws_regions?"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct AllowRule {
    aws_account: AccountId,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aws_regions: Vec<Region>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws_role: Option<RoleArn>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aws_image_ids: Vec<ImageId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aws_instance_types: Vec<InstanceType>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aws_availability_zones: Vec<AvailabilityZone>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aws_vpc_ids: Vec<VpcId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aws_subnet_ids: Vec<SubnetId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aws_iam_instance_profile_arns: Vec<InstanceProfileArn>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aws_security_group_ids: Vec<SecurityGroupId>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    aws_tags: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aws_iam_role_arns: Vec<RoleArn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws_organization_id: Option<OrganizationId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aws_organizational_unit_ids: Vec<OrganizationalUnitId>,
}

/// The fields a rule may have: Teleport's (`aws_arn` only to refuse it) and the bounds.
const RULE_FIELDS: [&str; 15] = [
    "aws_account",
    "aws_regions",
    "aws_role",
    "aws_arn",
    "aws_image_ids",
    "aws_instance_types",
    "aws_availability_zones",
    "aws_vpc_ids",
    "aws_subnet_ids",
    "aws_iam_instance_profile_arns",
    "aws_security_group_ids",
    "aws_tags",
    "aws_iam_role_arns",
    "aws_organization_id",
    "aws_organizational_unit_ids",
];

/// AWS's limits on the tags of one resource, which a rule's `aws_tags` must fit to ever match.
const MAX_TAGS: usize = 50;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;

impl AllowRule {
    /// A rule for instances of `account`.
    #[must_use]
    pub fn account(account: AccountId) -> Self {
        Self {
            aws_account: account,
            aws_regions: Vec::new(),
            aws_role: None,
            aws_image_ids: Vec::new(),
            aws_instance_types: Vec::new(),
            aws_availability_zones: Vec::new(),
            aws_vpc_ids: Vec::new(),
            aws_subnet_ids: Vec::new(),
            aws_iam_instance_profile_arns: Vec::new(),
            aws_security_group_ids: Vec::new(),
            aws_tags: BTreeMap::new(),
            aws_iam_role_arns: Vec::new(),
            aws_organization_id: None,
            aws_organizational_unit_ids: Vec::new(),
        }
    }

    /// A rule for instances of the role's account, described with the role's credentials.
    #[must_use]
    pub fn role(role: RoleArn) -> Self {
        let mut rule = Self::account(role.account());
        rule.aws_role = Some(role);
        rule
    }

    /// Sets the role to assume for `DescribeInstances`.
    ///
    /// # Errors
    /// [`ConfigError::RoleAccountMismatch`] when the role is not in the rule's account, and
    /// [`ConfigError::PartitionMismatch`] when a region already set is in another partition
    /// (regions set later are checked by [`VerifierBuilder::build`](crate::VerifierBuilder::build)).
    pub fn with_role(mut self, role: RoleArn) -> Result<Self, ConfigError> {
        if role.account() != self.aws_account {
            return Err(ConfigError::RoleAccountMismatch {
                rule: "the rule".into(),
                account: self.aws_account,
                role,
            });
        }
        self.aws_role = Some(role);
        self.check_partition("")?;
        Ok(self)
    }

    /// Restricts the rule to these regions (none: any region the trust store covers).
    #[must_use]
    pub fn with_regions(mut self, regions: impl IntoIterator<Item = Region>) -> Self {
        self.aws_regions = regions.into_iter().collect();
        self
    }

    /// Restricts the document's `imageId` to these AMIs.
    #[must_use]
    pub fn with_image_ids(mut self, ids: impl IntoIterator<Item = ImageId>) -> Self {
        self.aws_image_ids = ids.into_iter().collect();
        self
    }

    /// Restricts the document's `instanceType`.
    #[must_use]
    pub fn with_instance_types(mut self, types: impl IntoIterator<Item = InstanceType>) -> Self {
        self.aws_instance_types = types.into_iter().collect();
        self
    }

    /// Restricts the document's `availabilityZone`.
    #[must_use]
    pub fn with_availability_zones(
        mut self,
        zones: impl IntoIterator<Item = AvailabilityZone>,
    ) -> Self {
        self.aws_availability_zones = zones.into_iter().collect();
        self
    }

    /// Restricts the instance's VPC (a lookup bound).
    #[must_use]
    pub fn with_vpc_ids(mut self, ids: impl IntoIterator<Item = VpcId>) -> Self {
        self.aws_vpc_ids = ids.into_iter().collect();
        self
    }

    /// Restricts the instance's subnet (a lookup bound).
    #[must_use]
    pub fn with_subnet_ids(mut self, ids: impl IntoIterator<Item = SubnetId>) -> Self {
        self.aws_subnet_ids = ids.into_iter().collect();
        self
    }

    /// Restricts the instance profile (a lookup bound; an entry ending in `*` is a prefix).
    #[must_use]
    pub fn with_instance_profile_arns(
        mut self,
        arns: impl IntoIterator<Item = InstanceProfileArn>,
    ) -> Self {
        self.aws_iam_instance_profile_arns = arns.into_iter().collect();
        self
    }

    /// Restricts the instance's security groups: it must be in at least one (a lookup bound).
    #[must_use]
    pub fn with_security_group_ids(
        mut self,
        ids: impl IntoIterator<Item = SecurityGroupId>,
    ) -> Self {
        self.aws_security_group_ids = ids.into_iter().collect();
        self
    }

    /// Restricts the instance's tags: each key must be a tag of the instance, with one of its
    /// values (a lookup bound).
    ///
    /// ```
    /// let rule = ec2_iid::AllowRule::account("111111111111".parse()?)
    ///     .with_tags([("env".to_owned(), vec!["prod".to_owned(), "staging".to_owned()])])?;
    /// assert_eq!(rule.aws_tags().len(), 1);
    /// let reserved = ec2_iid::AllowRule::account("111111111111".parse()?)
    ///     .with_tags([("aws:cloudformation:stack-name".to_owned(), vec!["x".to_owned()])]);
    /// assert!(reserved.unwrap_err().to_string().contains("aws:"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::InvalidField`] for tags no instance can have: none, more than 50, a key
    /// empty, longer than 128 characters or starting with `aws:`, a key without values, a value
    /// longer than 256 characters.
    pub fn with_tags(
        mut self,
        tags: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> Result<Self, ConfigError> {
        self.aws_tags = tags.into_iter().collect();
        check_tags(&self.aws_tags, "")?;
        Ok(self)
    }

    /// Restricts the role of the instance's profile (a lookup bound: the lookup asks IAM).
    #[must_use]
    pub fn with_iam_role_arns(mut self, arns: impl IntoIterator<Item = RoleArn>) -> Self {
        self.aws_iam_role_arns = arns.into_iter().collect();
        self
    }

    /// Requires the account to be in `organization` and, with `units`, in one of those OUs or
    /// below one (a lookup bound: the lookup asks AWS Organizations, or reads an accounts file).
    #[must_use]
    pub fn with_organization(
        mut self,
        organization: OrganizationId,
        units: impl IntoIterator<Item = OrganizationalUnitId>,
    ) -> Self {
        self.aws_organization_id = Some(organization);
        self.aws_organizational_unit_ids = units.into_iter().collect();
        self
    }

    /// The account whose instances the rule admits.
    #[must_use]
    pub fn aws_account(&self) -> &AccountId {
        &self.aws_account
    }

    /// The allowed regions (empty: any).
    #[must_use]
    pub fn aws_regions(&self) -> &[Region] {
        &self.aws_regions
    }

    /// The partition the rule is bound to: its role's, or else the one all its regions are in;
    /// `None` for a rule without a role whose regions are unset or span partitions (each
    /// document is then matched against its own region).
    ///
    /// ```
    /// use ec2_iid::AllowRule;
    /// use ec2_iid::ids::Partition;
    ///
    /// let china = AllowRule::role("arn:aws-cn:iam::111111111111:role/join".parse()?);
    /// assert_eq!(china.partition(), Some(Partition::AwsCn));
    /// let gov = AllowRule::account("111111111111".parse()?)
    ///     .with_regions(["us-gov-west-1".parse()?]);
    /// assert_eq!(gov.partition(), Some(Partition::AwsUsGov));
    /// assert_eq!(AllowRule::account("111111111111".parse()?).partition(), None);
    ///
    /// // A role and regions of different partitions make no rule.
    /// let mixed = AllowRule::account("111111111111".parse()?)
    ///     .with_regions(["us-east-2".parse()?])
    ///     .with_role("arn:aws-cn:iam::111111111111:role/join".parse()?);
    /// assert!(mixed.unwrap_err().to_string().contains("a rule covers one partition"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn partition(&self) -> Option<Partition> {
        if let Some(role) = &self.aws_role {
            return Some(role.partition());
        }
        let mut partitions = self.aws_regions.iter().map(Region::partition);
        let first = partitions.next()?;
        partitions.all(|p| p == first).then_some(first)
    }

    /// The role to assume for `DescribeInstances`, if set.
    #[must_use]
    pub fn aws_role(&self) -> Option<&RoleArn> {
        self.aws_role.as_ref()
    }

    /// The allowed AMIs (empty: any).
    #[must_use]
    pub fn aws_image_ids(&self) -> &[ImageId] {
        &self.aws_image_ids
    }

    /// The allowed instance types (empty: any).
    #[must_use]
    pub fn aws_instance_types(&self) -> &[InstanceType] {
        &self.aws_instance_types
    }

    /// The allowed availability zones (empty: any).
    #[must_use]
    pub fn aws_availability_zones(&self) -> &[AvailabilityZone] {
        &self.aws_availability_zones
    }

    /// The allowed VPCs (empty: any).
    #[must_use]
    pub fn aws_vpc_ids(&self) -> &[VpcId] {
        &self.aws_vpc_ids
    }

    /// The allowed subnets (empty: any).
    #[must_use]
    pub fn aws_subnet_ids(&self) -> &[SubnetId] {
        &self.aws_subnet_ids
    }

    /// The allowed instance profiles (empty: any).
    #[must_use]
    pub fn aws_iam_instance_profile_arns(&self) -> &[InstanceProfileArn] {
        &self.aws_iam_instance_profile_arns
    }

    /// The allowed security groups (empty: any).
    #[must_use]
    pub fn aws_security_group_ids(&self) -> &[SecurityGroupId] {
        &self.aws_security_group_ids
    }

    /// The required tags: each key with its allowed values (empty: any tags).
    #[must_use]
    pub fn aws_tags(&self) -> &BTreeMap<String, Vec<String>> {
        &self.aws_tags
    }

    /// The allowed roles of the instance profile (empty: any).
    #[must_use]
    pub fn aws_iam_role_arns(&self) -> &[RoleArn] {
        &self.aws_iam_role_arns
    }

    /// The organization the account must be in, if set.
    #[must_use]
    pub fn aws_organization_id(&self) -> Option<&OrganizationId> {
        self.aws_organization_id.as_ref()
    }

    /// The OUs the account must be in or below (empty: anywhere in the organization).
    #[must_use]
    pub fn aws_organizational_unit_ids(&self) -> &[OrganizationalUnitId] {
        &self.aws_organizational_unit_ids
    }

    /// Whether the rule constrains anything that only the instance lookup knows.
    #[must_use]
    pub fn has_lookup_bounds(&self) -> bool {
        !(self.aws_vpc_ids.is_empty()
            && self.aws_subnet_ids.is_empty()
            && self.aws_iam_instance_profile_arns.is_empty()
            && self.aws_security_group_ids.is_empty()
            && self.aws_tags.is_empty()
            && self.aws_iam_role_arns.is_empty()
            && self.aws_organization_id.is_none())
    }

    /// Reads the rule found `at` (e.g. `spec.allow[1]`) from a configuration object.
    pub(crate) fn from_value(value: Value, at: &str) -> Result<Self, ConfigError> {
        let mut fields = Fields::new(value, at, &RULE_FIELDS, &[])?;
        if fields.has("aws_arn") {
            return Err(ConfigError::InvalidField {
                field: fields.path("aws_arn"),
                reason: "the ec2 join method does not support aws_arn (a field of the iam \
                         method): name the account with aws_account"
                    .into(),
            });
        }
        let rule_at = || {
            if at.is_empty() {
                "the rule".to_owned()
            } else {
                at.to_owned()
            }
        };
        let account = fields.id::<AccountId>("aws_account")?;
        let role = fields.id::<RoleArn>("aws_role")?;
        let mut rule = match (account, role) {
            (Some(account), Some(role)) if role.account() != account => {
                return Err(ConfigError::RoleAccountMismatch {
                    rule: rule_at(),
                    account,
                    role,
                });
            }
            (_, Some(role)) => Self::role(role),
            (Some(account), None) => Self::account(account),
            (None, None) => return Err(ConfigError::MissingAccount { rule: rule_at() }),
        };
        rule.aws_regions = fields.ids("aws_regions")?;
        rule.aws_image_ids = fields.ids("aws_image_ids")?;
        rule.aws_instance_types = fields.ids("aws_instance_types")?;
        rule.aws_availability_zones = fields.ids("aws_availability_zones")?;
        rule.aws_vpc_ids = fields.ids("aws_vpc_ids")?;
        rule.aws_subnet_ids = fields.ids("aws_subnet_ids")?;
        rule.aws_iam_instance_profile_arns = fields.ids("aws_iam_instance_profile_arns")?;
        rule.aws_security_group_ids = fields.ids("aws_security_group_ids")?;
        rule.aws_tags = read_tags(&mut fields, "aws_tags")?;
        rule.aws_iam_role_arns = fields.ids("aws_iam_role_arns")?;
        rule.aws_organization_id = fields.id("aws_organization_id")?;
        rule.aws_organizational_unit_ids = fields.ids("aws_organizational_unit_ids")?;
        rule.check_partition(at)?;
        Ok(rule)
    }

    /// Checks that every region of the rule is in its role's partition (the rule found `at`,
    /// empty for a rule on its own), and that its selectors can match an instance of it.
    pub(crate) fn check_partition(&self, at: &str) -> Result<(), ConfigError> {
        self.check_selectors(at)?;
        let Some(role) = &self.aws_role else {
            return Ok(());
        };
        let partition = role.partition();
        match self
            .aws_regions
            .iter()
            .enumerate()
            .find(|(_, region)| region.partition() != partition)
        {
            None => Ok(()),
            Some((index, region)) => Err(ConfigError::PartitionMismatch {
                field: if at.is_empty() {
                    format!("aws_regions[{index}]")
                } else {
                    format!("{at}.aws_regions[{index}]")
                },
                region: region.clone(),
                role: role.clone(),
            }),
        }
    }

    /// Checks the selectors no instance of the rule could meet: tags beyond AWS's limits,
    /// profile roles of another account or partition, OUs without their organization.
    fn check_selectors(&self, at: &str) -> Result<(), ConfigError> {
        let path = |field: &str| {
            if at.is_empty() {
                field.to_owned()
            } else {
                format!("{at}.{field}")
            }
        };
        if !self.aws_tags.is_empty() {
            check_tags(&self.aws_tags, &path("aws_tags"))?;
        }
        let partition = self.partition();
        for (index, role) in self.aws_iam_role_arns.iter().enumerate() {
            let reason = if role.account() != self.aws_account {
                format!(
                    "{role} is not in the rule's account {}: an instance profile holds a role \
                     of its own account",
                    self.aws_account
                )
            } else if partition.is_some_and(|p| p != role.partition()) {
                format!(
                    "{role} is not in the rule's partition {}: name a role of that partition",
                    partition.map_or("", Partition::as_str)
                )
            } else {
                continue;
            };
            return Err(ConfigError::InvalidField {
                field: path(&format!("aws_iam_role_arns[{index}]")),
                reason,
            });
        }
        if self.aws_organization_id.is_none() && !self.aws_organizational_unit_ids.is_empty() {
            return Err(ConfigError::InvalidField {
                field: path("aws_organizational_unit_ids"),
                reason: "OU ids need aws_organization_id: name the organization the OUs are in"
                    .into(),
            });
        }
        Ok(())
    }

    /// Checks that `trust` has a certificate for each region the rule names.
    pub(crate) fn check_regions_covered(
        &self,
        at: &str,
        trust: &TrustStore,
    ) -> Result<(), ConfigError> {
        for (index, region) in self.aws_regions.iter().enumerate() {
            if !trust.covers_region(region) {
                return Err(ConfigError::UncoveredRegion {
                    field: format!("{at}.aws_regions[{index}]"),
                    region: region.clone(),
                });
            }
        }
        Ok(())
    }

    /// The first field the signed document does not satisfy: its name, what the rule allows
    /// and what the document has.
    pub(crate) fn first_mismatch(
        &self,
        verified: &VerifiedDocument,
    ) -> Option<(&'static str, String, String)> {
        let doc = verified.document();
        if self.aws_account != doc.account_id {
            return Some((
                "aws_account",
                self.aws_account.to_string(),
                bounded_escaped(doc.account_id.as_str()),
            ));
        }
        // Named by partition, not by role: role names stay out of refusals.
        if let Some(role) = &self.aws_role
            && role.partition() != doc.region.partition()
        {
            return Some((
                "partition",
                format!("{} (the partition of aws_role)", role.partition()),
                format!("{} (region {})", doc.region.partition(), doc.region),
            ));
        }
        let lists: [(&'static str, Vec<&str>, &str); 4] = [
            ("aws_regions", names(&self.aws_regions), doc.region.as_str()),
            ("aws_image_ids", names(&self.aws_image_ids), &doc.image_id),
            (
                "aws_instance_types",
                names(&self.aws_instance_types),
                &doc.instance_type,
            ),
            (
                "aws_availability_zones",
                names(&self.aws_availability_zones),
                &doc.availability_zone,
            ),
        ];
        lists.into_iter().find_map(|(field, allowed, value)| {
            (!allowed.is_empty() && !allowed.contains(&value))
                .then(|| (field, allowed.join(" or "), bounded_escaped(value)))
        })
    }
}

impl<'de> Deserialize<'de> for AllowRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = fields::read_value(d, "")?;
        Self::from_value(value, "").map_err(serde::de::Error::custom)
    }
}

/// Reads `aws_tags`: an object of tag keys, each with a list of allowed values.
fn read_tags(
    fields: &mut Fields,
    name: &str,
) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    let path = fields.path(name);
    let Some(value) = fields.value::<Value>(name)? else {
        return Ok(BTreeMap::new());
    };
    let invalid = |field: String, reason: String| ConfigError::InvalidField { field, reason };
    let Value::Object(map) = value else {
        return Err(invalid(
            path,
            "expected a map of tag keys to lists of values (e.g. {\"env\": [\"prod\"]})".into(),
        ));
    };
    let mut tags = BTreeMap::new();
    for (key, values) in map {
        let at = format!("{path}.{}", bounded_escaped(&key));
        let Value::Array(values) = values else {
            return Err(invalid(
                at,
                "expected a list of tag values (e.g. [\"prod\"])".into(),
            ));
        };
        let values = values
            .into_iter()
            .enumerate()
            .map(|(index, value)| match value {
                Value::String(text) => Ok(text),
                _ => Err(invalid(
                    format!("{at}[{index}]"),
                    "expected a tag value as a quoted string".into(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        tags.insert(key, values);
    }
    check_tags(&tags, &path)?;
    Ok(tags)
}

/// Checks tags against AWS's limits (`at` names the field, empty for a rule on its own).
fn check_tags(tags: &BTreeMap<String, Vec<String>>, at: &str) -> Result<(), ConfigError> {
    let at = if at.is_empty() { "aws_tags" } else { at };
    let invalid = |field: String, reason: String| ConfigError::InvalidField { field, reason };
    if tags.is_empty() {
        return Err(invalid(
            at.to_owned(),
            "an empty map: list at least one tag key, or remove the field".into(),
        ));
    }
    if tags.len() > MAX_TAGS {
        return Err(invalid(
            at.to_owned(),
            format!(
                "{} tag keys: an instance has at most {MAX_TAGS} tags, so no instance matches",
                tags.len()
            ),
        ));
    }
    for (key, values) in tags {
        let field = format!("{at}.{}", bounded_escaped(key));
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_TAG_KEY_CHARS {
            return Err(invalid(
                field,
                format!("a tag key is 1 to {MAX_TAG_KEY_CHARS} characters, this one {chars}"),
            ));
        }
        if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            return Err(invalid(
                field,
                "tag keys starting with aws: are AWS's own, not an instance's: name a tag you set"
                    .into(),
            ));
        }
        if values.is_empty() {
            return Err(invalid(
                field,
                "an empty list: list at least one value (\"\" for an empty one), or remove the key"
                    .into(),
            ));
        }
        if let Some((index, value)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| v.chars().count() > MAX_TAG_VALUE_CHARS)
        {
            return Err(invalid(
                format!("{field}[{index}]"),
                format!(
                    "a tag value is at most {MAX_TAG_VALUE_CHARS} characters, this one {}",
                    value.chars().count()
                ),
            ));
        }
    }
    Ok(())
}

fn names<T: AsRef<str>>(ids: &[T]) -> Vec<&str> {
    ids.iter().map(AsRef::as_ref).collect()
}

/// Finds the first allow rule the signed document satisfies, Teleport's way.
///
/// A rule matches when every field it sets matches the document: `aws_account`, the partition
/// of `aws_role` (the document's region must be in it), `aws_regions`, `aws_image_ids`,
/// `aws_instance_types`, `aws_availability_zones` (an unset field matches anything; a list
/// matches when any entry is equal). Every rule names an account (see [`AllowRule`]), so no
/// rule matches every document; no rules match none.
///
/// Lookup bounds (VPC, subnet, instance profile) are not checked here: they need
/// [`InstanceFacts`](crate::InstanceFacts). The rule returned here is the first candidate; its
/// `aws_role` is the role the first lookup assumes. The [`Verifier`](crate::Verifier)'s
/// instance check then tries it and the later document-matching rules in order, so the rule
/// that grants a join may be a later one (see [`PendingJoin`](crate::PendingJoin)).
///
/// ```
/// # let mut trust = ec2_iid::TrustStore::empty();
/// # trust.add_pem(ec2_iid::Format::Rsa2048,
/// #     include_bytes!("../../tests/data/testca/testca.pem"), ["us-east-1".parse()?])?;
/// # let verified = ec2_iid::internal::verify_signature(
/// #     ec2_iid::dangerous::parse_signed_data(include_bytes!("../../tests/data/gen/rsa2048.b64"))?, &trust)?;
/// use ec2_iid::{AllowRule, match_allow_rules};
///
/// let rules = [
///     AllowRule::account("222222222222".parse()?),
///     AllowRule::account("123456789012".parse()?).with_regions(["us-east-1".parse()?]),
/// ];
/// let (index, rule) = match_allow_rules(&verified, &rules)?;
/// assert_eq!(index, 1);
/// assert_eq!(rule.aws_account().as_str(), "123456789012");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::NoMatchingRule`] listing, per rule, the first field that did not match (an empty
/// list when `rules` is empty).
pub fn match_allow_rules<'r>(
    verified: &VerifiedDocument,
    rules: &'r [AllowRule],
) -> Result<(usize, &'r AllowRule), Error> {
    let mut mismatches = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        match rule.first_mismatch(verified) {
            None => return Ok((index, rule)),
            Some((field, expected, actual)) => mismatches.push(RuleMismatch {
                rule: index,
                field,
                expected,
                actual,
            }),
        }
    }
    let document = verified.document();
    Err(Error::NoMatchingRule {
        account: document.account_id.clone(),
        region: document.region.clone(),
        mismatches,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(value: Value) -> Result<AllowRule, ConfigError> {
        AllowRule::from_value(value, "spec.allow[0]")
    }

    #[test]
    fn every_rule_is_bound_to_an_account() {
        let role = "arn:aws:iam::999999999999:role/x";
        let rule = read(json!({ "aws_role": role })).unwrap();
        assert_eq!(rule.aws_account().as_str(), "999999999999");
        assert_eq!(rule.aws_role().map(RoleArn::as_str), Some(role));
        assert_eq!(
            read(json!({"aws_account": "111111111111", "aws_role": role})),
            Err(ConfigError::RoleAccountMismatch {
                rule: "spec.allow[0]".into(),
                account: "111111111111".parse().unwrap(),
                role: role.parse().unwrap(),
            })
        );
        assert_eq!(
            read(json!({"aws_regions": ["us-east-1"]})),
            Err(ConfigError::MissingAccount {
                rule: "spec.allow[0]".into()
            })
        );
        let account = AllowRule::account("111111111111".parse().unwrap());
        assert!(matches!(
            account.clone().with_role(role.parse().unwrap()),
            Err(ConfigError::RoleAccountMismatch { .. })
        ));
        let bound = account
            .with_role("arn:aws:iam::111111111111:role/r".parse().unwrap())
            .unwrap();
        assert!(bound.aws_role().is_some());
    }

    #[test]
    fn fields_are_typed_and_known() {
        let invalid = |value| match read(value) {
            Err(ConfigError::InvalidField { field, reason }) => format!("{field}: {reason}"),
            other => panic!("{other:?}"),
        };
        assert!(invalid(json!({"aws_role": "not-an-arn"})).starts_with("spec.allow[0].aws_role:"));
        assert!(
            invalid(json!({"aws_account": "111111111111", "aws_regions": ["us-east1"]}))
                .starts_with("spec.allow[0].aws_regions[0]: \"us-east1\" is not a valid region")
        );
        assert!(
            invalid(json!({"aws_account": "111111111111", "aws_arn": "x"})).contains("aws_arn")
        );
        assert!(matches!(
            read(json!({"aws_account": "111111111111", "aws_region": ["us-west-2"]})),
            Err(ConfigError::UnknownField {
                did_you_mean: Some("aws_regions"),
                ..
            })
        ));
        let full = json!({
            "aws_account": "123456789012",
            "aws_regions": ["us-east-1"],
            "aws_role": "arn:aws:iam::123456789012:role/r",
            "aws_image_ids": ["ami-0123456789abcdef0"],
            "aws_instance_types": ["t3.micro"],
            "aws_availability_zones": ["us-east-1a"],
            "aws_vpc_ids": ["vpc-0123456789abcdef0"],
            "aws_subnet_ids": ["subnet-0123456789abcdef0"],
            "aws_iam_instance_profile_arns": ["arn:aws:iam::123456789012:instance-profile/*"],
        });
        let rule = read(full.clone()).unwrap();
        assert!(rule.has_lookup_bounds());
        assert_eq!(serde_json::to_value(&rule).unwrap(), full, "round trip");
    }

    #[test]
    fn rule_mismatch_display() {
        let mismatch = RuleMismatch {
            rule: 2,
            field: "aws_regions",
            expected: "us-west-2 or eu-west-1".into(),
            actual: "us-east-1".into(),
        };
        assert_eq!(
            mismatch.to_string(),
            "rule 2: aws_regions is us-east-1, not us-west-2 or eu-west-1"
        );
        assert_eq!(bounded_escaped(&"\n".repeat(100)), "\\n".repeat(64) + "…");
    }
}
