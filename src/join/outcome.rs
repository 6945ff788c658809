//! What the instance check yields: the [`JoinOutcome`] that grants a join, or why not
//! ([`CheckError`]).

use core::convert::Infallible;
use core::fmt;

use crate::error::Error;
use crate::kind::ErrorKind;
use crate::policy::facts::InstanceFacts;
use crate::policy::rules::AllowRule;
use crate::signature::document::IdentityDocument;

/// A join that passed every check, the instance check included: the only value that grants
/// one. Made by [`PendingJoin::check_facts`](crate::PendingJoin::check_facts), [`PendingJoin::check_instance`](crate::PendingJoin::check_instance) and
/// [`PendingJoin::check_instance_once`](crate::PendingJoin::check_instance_once). Serializes as
/// `{"host_id", "matched_rule", "rule", "document", "facts", "grant"}`.
#[derive(Clone, Debug, Eq, PartialEq, serde::Serialize)]
pub struct JoinOutcome {
    // Set only by the pending join's checks (`crate::join::pending`).
    pub(crate) host_id: String,
    pub(crate) matched_rule: usize,
    pub(crate) rule: AllowRule,
    pub(crate) document: IdentityDocument,
    pub(crate) facts: InstanceFacts,
    pub(crate) grant: Grant,
}

/// Whether a join granted this launch of the host for the first time, or again to the requester
/// that claimed it before (a retry after a lost answer, a timeout or a 503). Serializes as
/// `"first"` or `"repeat"`.
///
/// Only [`PendingJoin::check_instance_once`](crate::PendingJoin::check_instance_once) knows of
/// earlier claims: it says [`Grant::Repeat`] when the host's record, read before the lookup,
/// is this requester's claim of this launch. The other checks say [`Grant::First`].
///
/// ```
/// assert_eq!(ec2_iid::Grant::Repeat.as_str(), "repeat");
/// assert_eq!(serde_json::to_string(&ec2_iid::Grant::First).unwrap(), r#""first""#);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grant {
    /// No claim of this launch was recorded before this one.
    First,
    /// This requester had already claimed this launch: the join is granted again.
    Repeat,
}

impl Grant {
    /// `"first"` or `"repeat"`, as serialized.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Repeat => "repeat",
        }
    }
}

impl JoinOutcome {
    /// Teleport's host id, `<accountId>-<instanceId>`: the identity the host joins as.
    #[must_use]
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// Index of the matched allow rule.
    #[must_use]
    pub fn matched_rule(&self) -> usize {
        self.matched_rule
    }

    /// The matched allow rule.
    #[must_use]
    pub fn rule(&self) -> &AllowRule {
        &self.rule
    }

    /// The signed identity document.
    #[must_use]
    pub fn document(&self) -> &IdentityDocument {
        &self.document
    }

    /// What `DescribeInstances` said.
    #[must_use]
    pub fn facts(&self) -> &InstanceFacts {
        &self.facts
    }

    /// Whether this join is the launch's first grant, or a repeat for the same requester
    /// (see [`Grant`]).
    #[must_use]
    pub fn grant(&self) -> Grant {
        self.grant
    }
}

/// Why [`PendingJoin::check_instance`](crate::PendingJoin::check_instance) failed: a rejection, or your lookup or registry failing.
///
/// The lookup's and the registry's errors are kept as they are (match on them); they need only
/// `Debug + Display`, so `anyhow::Error` and `Box<dyn Error + Send + Sync>` do as well as any
/// error type. Display shows the cause, so [`source`](core::error::Error::source) is `None`
/// (as the std convention asks: a chain printed with `{:#}` shows each message once); match on
/// the variant to reach the inner error.
#[non_exhaustive]
#[derive(Debug)]
pub enum CheckError<L, R = Infallible> {
    /// The instance check rejected the join.
    Rejected(Error),
    /// The lookup failed (throttled, denied, timed out, ...); retry later.
    Lookup(L),
    /// The join registry failed.
    Registry(R),
}

impl<L, R> From<Error> for CheckError<L, R> {
    fn from(e: Error) -> Self {
        Self::Rejected(e)
    }
}

impl<L: fmt::Display, R: fmt::Display> fmt::Display for CheckError<L, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(e) => e.fmt(f),
            Self::Lookup(e) => write!(f, "instance lookup failed: {e}"),
            Self::Registry(e) => write!(f, "join registry failed: {e}"),
        }
    }
}

/// No [`source`](core::error::Error::source): Display already prints the cause.
impl<L, R> core::error::Error for CheckError<L, R>
where
    L: fmt::Debug + fmt::Display,
    R: fmt::Debug + fmt::Display,
{
}

impl<L, R> CheckError<L, R> {
    /// The class of the failure: the rejection's kind, `None` for a lookup or registry failure
    /// (not a decision about the instance: retry).
    #[must_use]
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Rejected(e) => Some(e.kind()),
            Self::Lookup(_) | Self::Registry(_) => None,
        }
    }

    /// What to change ([`Error::hint`]), or for a failed lookup or registry, to retry.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Rejected(e) => e.hint(),
            Self::Lookup(_) => Some(
                "DescribeInstances did not answer (throttled, denied or unreachable): retry \
                 later; the document was not judged"
                    .to_owned(),
            ),
            Self::Registry(_) => Some(
                "the join registry did not answer: retry later; the instance was not judged"
                    .to_owned(),
            ),
        }
    }
}
