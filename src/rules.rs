//! Matching a verified document against allow rules: pure, first match wins.

use core::fmt;

use crate::error::Error;
use crate::signature::VerifiedDocument;
use crate::token::AllowRule;

/// Why one allow rule did not match: the first field that failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct RuleMismatch {
    /// The rule's index in the list.
    pub rule: usize,
    /// The field that did not match, e.g. `aws_account`.
    pub field: &'static str,
}

impl fmt::Display for RuleMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}: {}", self.rule, self.field)
    }
}

/// Finds the first allow rule the signed document satisfies, Teleport's way.
///
/// A rule matches when every field it sets matches the document: `aws_account`,
/// `aws_regions`, `aws_image_ids`, `aws_instance_types`, `aws_availability_zones` (an empty
/// field matches anything; a list matches when any entry is equal). Lookup bounds (VPC,
/// subnet, instance profile) are not checked here: they need
/// [`InstanceFacts`](crate::InstanceFacts) and are checked by
/// [`check_instance_facts`](crate::check_instance_facts) for the rule returned here. The first
/// matching rule wins even if a later one would also match; its `aws_role` is the role the
/// lookup must assume.
///
/// ```
/// # let mut trust = ec2_iid::TrustStore::empty();
/// # trust.add_pem(ec2_iid::Format::Rsa2048,
/// #     include_bytes!("../tests/data/testca/testca.pem"), ["us-east-1".parse()?])?;
/// # let verified = ec2_iid::verify_signature(
/// #     ec2_iid::parse_document(include_bytes!("../tests/data/gen/rsa2048.b64"))?, &trust)?;
/// use ec2_iid::{AllowRule, match_allow_rules};
///
/// let rules = [
///     AllowRule::account("222222222222")?,
///     AllowRule::account("123456789012")?.with_regions(["us-east-1".parse()?]),
/// ];
/// let (index, rule) = match_allow_rules(&verified, &rules)?;
/// assert_eq!(index, 1);
/// assert_eq!(rule.aws_account, "123456789012");
/// # Ok::<(), ec2_iid::Error>(())
/// ```
///
/// # Errors
/// [`Error::NoMatchingRule`] listing, per rule, the first field that did not match.
pub fn match_allow_rules<'r>(
    verified: &VerifiedDocument,
    rules: &'r [AllowRule],
) -> Result<(usize, &'r AllowRule), Error> {
    let mut mismatches = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        match first_mismatch(verified, rule) {
            None => return Ok((index, rule)),
            Some(field) => mismatches.push(RuleMismatch { rule: index, field }),
        }
    }
    let document = verified.document();
    Err(Error::NoMatchingRule {
        account: document.account_id.clone(),
        region: document.region.clone(),
        mismatches,
    })
}

fn first_mismatch(verified: &VerifiedDocument, rule: &AllowRule) -> Option<&'static str> {
    let doc = verified.document();
    let checks: [(&'static str, bool); 5] = [
        (
            "aws_account",
            rule.aws_account.is_empty() || rule.aws_account == doc.account_id.as_str(),
        ),
        (
            "aws_regions",
            any_or_equal(&rule.aws_regions, doc.region.as_str()),
        ),
        (
            "aws_image_ids",
            any_or_equal(&rule.aws_image_ids, &doc.image_id),
        ),
        (
            "aws_instance_types",
            any_or_equal(&rule.aws_instance_types, &doc.instance_type),
        ),
        (
            "aws_availability_zones",
            any_or_equal(&rule.aws_availability_zones, &doc.availability_zone),
        ),
    ];
    checks
        .into_iter()
        .find_map(|(field, ok)| (!ok).then_some(field))
}

/// An empty list allows anything; otherwise the value must equal an entry.
pub(crate) fn any_or_equal(allowed: &[String], value: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a == value)
}

/// Vault's ARN bound: equal to an entry, or starting with an entry's text before a final `*`.
pub(crate) fn any_or_prefix(allowed: &[String], value: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => a == value,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_matching() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(any_or_equal(&[], "x"));
        assert!(any_or_equal(&list(&["a", "x"]), "x"));
        assert!(!any_or_equal(&list(&["a"]), "x"));
        assert!(!any_or_equal(&list(&["x*"]), "xy"));
        assert!(any_or_prefix(
            &list(&["arn:aws:iam::1:instance-profile/web-*"]),
            "arn:aws:iam::1:instance-profile/web-1"
        ));
        assert!(!any_or_prefix(
            &list(&["arn:aws:iam::1:instance-profile/web-*"]),
            "arn:aws:iam::1:instance-profile/db"
        ));
        assert!(any_or_prefix(&list(&["exact"]), "exact"));
        assert!(!any_or_prefix(&list(&["exact"]), "exactly"));
        assert!(any_or_prefix(&list(&["*"]), "anything"));
        assert!(any_or_prefix(&[], "anything"));
        assert_eq!(
            RuleMismatch {
                rule: 2,
                field: "aws_regions"
            }
            .to_string(),
            "rule 2: aws_regions"
        );
    }
}
