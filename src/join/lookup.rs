//! The DescribeInstances seam: the caller's AWS client answers, the crate decides.

use core::fmt;
use core::future::Future;

use crate::ids::{AccountId, InstanceId, Partition, Region, RoleArn};
use crate::policy::facts::InstanceFacts;

/// What the crate asks the caller's AWS client about one instance.
///
/// Built by the crate from a verified document and the matched allow rule.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct InstanceQuery {
    /// The account that owns the instance (from the signed document).
    pub account: AccountId,
    /// The instance to describe.
    pub instance_id: InstanceId,
    /// The partition of `region`; pick credentials and endpoints for it.
    pub partition: Partition,
    /// The region to call `DescribeInstances` in.
    pub region: Region,
    /// The matched rule's `aws_role` (always in `account`): assume it (STS `AssumeRole`) before
    /// calling EC2, for instances in other accounts. `None`: use the caller's own credentials.
    pub role_arn: Option<RoleArn>,
    /// A candidate rule has `aws_iam_role_arns`: fill
    /// [`InstanceFacts::iam_role_arns`] (the role of the instance profile, from
    /// `iam:GetInstanceProfile`).
    pub needs_instance_role: bool,
    /// A candidate rule has `aws_organization_id`: fill
    /// [`InstanceFacts::organization`] (the account's organization and OUs).
    pub needs_organization: bool,
}

impl InstanceQuery {
    /// A query for `instance_id` in `account` and `region`, without a role to assume.
    #[must_use]
    pub fn new(account: AccountId, instance_id: InstanceId, region: Region) -> Self {
        Self {
            account,
            instance_id,
            partition: region.partition(),
            region,
            role_arn: None,
            needs_instance_role: false,
            needs_organization: false,
        }
    }

    /// Asks for the role of the instance profile as well ([`InstanceFacts::iam_role_arns`]).
    #[must_use]
    pub fn with_instance_role_needed(mut self) -> Self {
        self.needs_instance_role = true;
        self
    }

    /// Asks for the account's place in AWS Organizations as well
    /// ([`InstanceFacts::organization`]).
    #[must_use]
    pub fn with_organization_needed(mut self) -> Self {
        self.needs_organization = true;
        self
    }

    /// Sets the role to assume before describing the instance.
    #[must_use]
    pub fn with_role_arn(mut self, role_arn: Option<RoleArn>) -> Self {
        self.role_arn = role_arn;
        self
    }
}

/// Looks up an EC2 instance, as `ec2:DescribeInstances` does.
///
/// Implement it with your own AWS client (the `ec2-iid-aws` crate has one for the AWS SDK).
/// Return `Ok(None)` when EC2 does not know the instance; keep real failures (throttling,
/// access denied, timeouts) in your own error type (or `anyhow::Error`, or
/// `Box<dyn Error + Send + Sync>`), which the crate returns unchanged in
/// [`CheckError::Lookup`](crate::CheckError::Lookup).
///
/// The whole join flow, with a fake lookup standing in for EC2:
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use ec2_iid::ids::InstanceState;
/// use ec2_iid::{AllowRule, Format, InMemoryJoinRegistry, InstanceFacts, InstanceLookup,
///     InstanceQuery, TrustStore, Verifier};
///
/// struct FakeEc2;
///
/// impl InstanceLookup for FakeEc2 {
///     type Error = std::io::Error;
///
///     async fn describe_instance(&self, query: &InstanceQuery)
///         -> Result<Option<InstanceFacts>, Self::Error>
///     {
///         // A real lookup assumes `query.role_arn` and calls DescribeInstances in
///         // `query.region`; this one knows a single running instance.
///         let mut facts = InstanceFacts::new(query.instance_id.as_str(), InstanceState::Running);
///         facts.owner_id = Some(query.account.to_string());
///         Ok(Some(facts))
///     }
/// }
///
/// let mut trust = TrustStore::empty();
/// trust.add_pem(Format::Rsa2048, include_bytes!("../../tests/data/testca/testca.pem"),
///     ["us-east-1".parse()?])?;
/// let verifier = Verifier::builder(trust)
///     .allow(AllowRule::role("arn:aws:iam::123456789012:role/describe-instances".parse()?))
///     .build()?;
/// let registry = InMemoryJoinRegistry::new();
///
/// let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0).unwrap();
/// let pending = verifier.verify(include_bytes!("../../tests/data/gen/rsa2048.b64"), now)?;
/// // Who asks: 32 bytes unique to the request (random), or a digest of the requester's key.
/// let (requester, replayer) = ([1; 32], [2; 32]);
/// let outcome = block_on(pending.check_instance_once(&FakeEc2, &registry, requester, now))
///     .expect("a running instance joins");
/// assert_eq!(outcome.host_id(), "123456789012-i-0123456789abcdef0");
/// // The same launch of the instance cannot join twice.
/// assert!(block_on(pending.check_instance_once(&FakeEc2, &registry, replayer, now)).is_err());
///
/// // Any executor works (tokio, smol, ...); this one suffices for futures that never wait.
/// fn block_on<F: std::future::Future>(f: F) -> F::Output {
///     let mut f = std::pin::pin!(f);
///     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
///     loop {
///         if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) {
///             return out;
///         }
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait InstanceLookup {
    /// The implementor's error: any error type, `anyhow::Error` or
    /// `Box<dyn Error + Send + Sync>`.
    type Error: fmt::Debug + fmt::Display + Send + Sync + 'static;

    /// Describes one instance.
    fn describe_instance(
        &self,
        query: &InstanceQuery,
    ) -> impl Future<Output = Result<Option<InstanceFacts>, Self::Error>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_takes_partition_from_region() {
        let q = InstanceQuery::new(
            "123456789012".parse().unwrap(),
            "i-0123456789abcdef0".parse().unwrap(),
            "us-gov-west-1".parse().unwrap(),
        )
        .with_role_arn(Some(
            "arn:aws-us-gov:iam::123456789012:role/r".parse().unwrap(),
        ));
        assert_eq!(q.partition, Partition::AwsUsGov);
        assert!(q.role_arn.is_some());
    }
}
