//! The adapter's error: what went wrong talking to STS or EC2, sorted into kinds a server acts on.

use core::error::Error as StdError;
use core::fmt;
use core::time::Duration;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::endpoint::error::ResolveEndpointError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use ec2_iid::ids::{Partition, Region};

use crate::sdk_error::{Source, Transport, chain, chain_has, code_suffix};

/// The AWS API call that failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Operation {
    /// `sts:AssumeRole`, for a query with a role to assume.
    AssumeRole,
    /// `ec2:DescribeInstances`.
    DescribeInstances,
    /// `iam:GetInstanceProfile`, for rules with `aws_iam_role_arns`.
    GetInstanceProfile,
    /// `organizations:ListAccounts`, for rules with `aws_organization_id`.
    ListAccounts,
    /// `organizations:ListParents`, for rules with `aws_organization_id`.
    ListParents,
}

impl Operation {
    /// The IAM action name, e.g. `ec2:DescribeInstances`.
    ///
    /// ```
    /// assert_eq!(ec2_iid_aws::Operation::AssumeRole.as_str(), "sts:AssumeRole");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AssumeRole => "sts:AssumeRole",
            Self::DescribeInstances => "ec2:DescribeInstances",
            Self::GetInstanceProfile => "iam:GetInstanceProfile",
            Self::ListAccounts => "organizations:ListAccounts",
            Self::ListParents => "organizations:ListParents",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An instance lookup failed: [`Ec2Lookup`](crate::Ec2Lookup) could not get an answer from AWS.
///
/// "The instance does not exist" is not an error: the lookup returns `Ok(None)` for it. Every
/// variant that comes from the AWS SDK keeps the SDK's error as its
/// [`source`](core::error::Error::source), with AWS's error code and message.
///
/// ```
/// # fn print(err: &ec2_iid_aws::Ec2LookupError) {
/// use ec2_iid_aws::Ec2LookupError;
///
/// match err {
///     Ec2LookupError::AccessDenied { operation, .. } => eprintln!("fix IAM for {operation}"),
///     err if err.is_transient() => eprintln!("try again later: {err}"),
///     err => eprintln!("lookup failed: {err}"),
/// }
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Ec2LookupError {
    /// AWS refused the call: the caller lacks the permission (`UnauthorizedOperation`,
    /// `AccessDenied`), the role does not trust the caller (`AccessDenied` from `AssumeRole`) or
    /// the credentials were rejected (`AuthFailure`, `InvalidClientTokenId`, `ExpiredToken`).
    #[non_exhaustive]
    #[error("{operation}: access denied{}", code_suffix(code.as_deref()))]
    AccessDenied {
        /// The call that was refused.
        operation: Operation,
        /// AWS's error code, when the response had one.
        code: Option<String>,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// The endpoint could not be reached or the connection broke (after the SDK's retries).
    #[non_exhaustive]
    #[error("{operation}: connection to the endpoint failed")]
    Connection {
        /// The call that failed.
        operation: Operation,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// The caller's own credentials could not be loaded (no credential chain, or it failed).
    #[non_exhaustive]
    #[error("{operation}: no AWS credentials")]
    Credentials {
        /// The call that needed them.
        operation: Operation,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// AWS answered, but without something the lookup needs (e.g. an instance without a
    /// state, or an unknown state name). Fails closed: the instance is not described.
    #[non_exhaustive]
    #[error("{operation}: unexpected response: {reason}")]
    InvalidResponse {
        /// The call whose response was unusable.
        operation: Operation,
        /// What was missing or wrong.
        reason: &'static str,
    },
    /// The query's role ARN is not an IAM role ARN of the query's partition (a rule for
    /// `aws-cn` instances needs an `arn:aws-cn:iam::…:role/…` role).
    #[non_exhaustive]
    #[error("role ARN {role_arn:?} is not an IAM role in partition {partition}")]
    InvalidRoleArn {
        /// The role ARN from the query (from the caller's configuration).
        role_arn: String,
        /// The partition of the instance's region.
        partition: Partition,
    },
    /// A rule needs the account's organization (`aws_organization_id`), but the lookup has no
    /// source for it: set [`Ec2LookupBuilder::organizations_role`](crate::Ec2LookupBuilder::organizations_role)
    /// or [`organization_directory`](crate::Ec2LookupBuilder::organization_directory).
    #[error(
        "a rule needs the account's organization, but the lookup has neither an organizations \
         role nor an accounts file"
    )]
    NoOrganizationSource,
    /// The organization directory is older than its maximum age and could not be refreshed
    /// (the refresh's own error was logged). Transient.
    #[non_exhaustive]
    #[error(
        "{operation}: the organization directory is stale ({age:?} old) and its refresh failed"
    )]
    StaleDirectory {
        /// The call that failed to refresh it.
        operation: Operation,
        /// How old the last good directory is.
        age: Duration,
    },
    /// The call was not made: too many queries were already waiting for a paced call
    /// ([`BatchingLookup`](crate::BatchingLookup)'s `max_waiting`), or none came within the
    /// wait limit. Transient: try again later.
    #[non_exhaustive]
    #[error("{operation}: not sent: {reason}")]
    Overloaded {
        /// The call that was not made.
        operation: Operation,
        /// Why.
        reason: &'static str,
    },
    /// Any other failure: an AWS error code not sorted into a kind above, an invalid request
    /// or configuration, a response that could not be read.
    #[non_exhaustive]
    #[error("{operation} failed{}", code_suffix(code.as_deref()))]
    Other {
        /// The call that failed.
        operation: Operation,
        /// AWS's error code, when the response had one.
        code: Option<String>,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// AWS throttled the call (`RequestLimitExceeded`, `Throttling`, HTTP 429), and the SDK's
    /// retries did not get through.
    #[non_exhaustive]
    #[error("{operation}: throttled{}", code_suffix(code.as_deref()))]
    Throttled {
        /// The call that was throttled.
        operation: Operation,
        /// AWS's error code, when the response had one.
        code: Option<String>,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// The call did not finish within the configured timeout (retries included), or the SDK's
    /// own connect or read timeout fired.
    #[non_exhaustive]
    #[error("{operation}: timed out (limit {timeout:?})")]
    Timeout {
        /// The call that timed out.
        operation: Operation,
        /// The lookup's per-call timeout.
        timeout: Duration,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// The region has no endpoint the SDK can reach (its name does not resolve, or the SDK has
    /// no endpoint for it), or it is not enabled for the account (`RegionDisabledException`).
    #[non_exhaustive]
    #[error("{operation}: region {region} is unknown or not enabled")]
    UnknownRegion {
        /// The call that failed.
        operation: Operation,
        /// The query's region.
        region: Region,
        /// The SDK's error.
        #[source]
        source: Source,
    },
}

impl Ec2LookupError {
    /// The AWS call that failed, if the error is about one.
    ///
    /// ```
    /// # use ec2_iid_aws::{Ec2LookupError, Operation};
    /// # fn check(err: &Ec2LookupError) {
    /// if err.operation() == Some(Operation::AssumeRole) {
    ///     eprintln!("check the rule's aws_role and its trust policy: {err}");
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Self::AccessDenied { operation, .. }
            | Self::Connection { operation, .. }
            | Self::Credentials { operation, .. }
            | Self::InvalidResponse { operation, .. }
            | Self::Overloaded { operation, .. }
            | Self::Other { operation, .. }
            | Self::Throttled { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::UnknownRegion { operation, .. }
            | Self::StaleDirectory { operation, .. } => Some(*operation),
            Self::InvalidRoleArn { .. } | Self::NoOrganizationSource => None,
        }
    }

    /// Whether the same lookup may succeed later without a configuration change: throttling,
    /// timeouts, connection failures and a full queue of paced calls.
    ///
    /// A join server can answer these with "try again" instead of "denied".
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connection { .. }
                | Self::Overloaded { .. }
                | Self::StaleDirectory { .. }
                | Self::Throttled { .. }
                | Self::Timeout { .. }
        )
    }

    /// Sorts an SDK error into a kind.
    pub(crate) fn from_sdk<E>(
        err: SdkError<E, HttpResponse>,
        operation: Operation,
        context: &CallContext<'_>,
    ) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_owned);
        let kind = match Transport::of(&err) {
            Transport::Connection | Transport::Other if region_unknown(&err, context) => {
                Kind::UnknownRegion
            }
            Transport::Connection => Kind::Connection,
            Transport::Credentials => Kind::Credentials,
            Transport::Other => Kind::Other,
            Transport::Response { status } => kind_of_code(code.as_deref(), status),
            Transport::Timeout => Kind::Timeout,
        };
        let source: Source = Box::new(err);
        match kind {
            Kind::AccessDenied => Self::AccessDenied {
                operation,
                code,
                source,
            },
            Kind::Connection => Self::Connection { operation, source },
            Kind::Credentials => Self::Credentials { operation, source },
            Kind::Other => Self::Other {
                operation,
                code,
                source,
            },
            Kind::Throttled => Self::Throttled {
                operation,
                code,
                source,
            },
            Kind::Timeout => Self::Timeout {
                operation,
                timeout: context.timeout,
                source,
            },
            Kind::UnknownRegion => Self::UnknownRegion {
                operation,
                region: context.region.clone(),
                source,
            },
        }
    }
}

/// What [`Ec2LookupError::from_sdk`] needs to know about the call.
#[derive(Debug)]
pub(crate) struct CallContext<'a> {
    /// The query's region.
    pub(crate) region: &'a Region,
    /// The per-call timeout.
    pub(crate) timeout: Duration,
    /// Whether the endpoint was set by the caller (then a name that does not resolve is the
    /// caller's endpoint, not the region).
    pub(crate) endpoint_overridden: bool,
}

/// The kind of an SDK error, before the variant is built.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Kind {
    AccessDenied,
    Connection,
    Credentials,
    Other,
    Throttled,
    Timeout,
    UnknownRegion,
}

/// Whether an AWS error code means the call was throttled.
pub(crate) fn is_throttling_code(code: &str) -> bool {
    THROTTLED.contains(&code)
}

/// AWS error codes (EC2 and STS) that mean the call was throttled.
const THROTTLED: &[&str] = &[
    "EC2ThrottledException",
    "PriorRequestNotComplete",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
];

/// AWS error codes (EC2 and STS) that mean the caller may not make the call.
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "Blocked",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "OptInRequired",
    "SignatureDoesNotMatch",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
];

/// AWS error codes that mean the region is not usable for the account.
const REGION_DISABLED: &[&str] = &["RegionDisabledException"];

/// Sorts an AWS error response by its code, then by its HTTP status.
fn kind_of_code(code: Option<&str>, status: Option<u16>) -> Kind {
    if let Some(code) = code {
        if THROTTLED.contains(&code) {
            return Kind::Throttled;
        }
        if ACCESS_DENIED.contains(&code) {
            return Kind::AccessDenied;
        }
        if REGION_DISABLED.contains(&code) {
            return Kind::UnknownRegion;
        }
    }
    match status {
        Some(429) => Kind::Throttled,
        Some(401 | 403) => Kind::AccessDenied,
        _ => Kind::Other,
    }
}

/// Whether a request that got no answer failed on the query's region: the name of its endpoint
/// does not resolve (unless the caller set the endpoint: then the name is the caller's), or the
/// SDK has no endpoint for it.
fn region_unknown<E>(err: &SdkError<E, HttpResponse>, context: &CallContext<'_>) -> bool
where
    E: StdError + 'static,
{
    match err {
        SdkError::DispatchFailure(_) => !context.endpoint_overridden && chain_has_dns_failure(err),
        SdkError::ConstructionFailure(_) => chain_has::<ResolveEndpointError>(err),
        _ => false,
    }
}

/// Whether the source chain of `err` has a failed name lookup: the HTTP client's connect error
/// for it reads "dns error".
fn chain_has_dns_failure(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| e.to_string().starts_with("dns error"))
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesError;
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    use super::*;
    use crate::sdk_error::test_errors::{self, no_credentials};

    fn context(region: &Region, endpoint_overridden: bool) -> CallContext<'_> {
        CallContext {
            region,
            timeout: Duration::from_secs(3),
            endpoint_overridden,
        }
    }

    fn service_error(code: &str, status: u16) -> SdkError<DescribeInstancesError, HttpResponse> {
        test_errors::service_error(DescribeInstancesError::generic, code, status)
    }

    fn classify(err: SdkError<DescribeInstancesError, HttpResponse>) -> Ec2LookupError {
        let region: Region = "eu-west-1".parse().unwrap();
        Ec2LookupError::from_sdk(err, Operation::DescribeInstances, &context(&region, false))
    }

    #[test]
    fn service_codes_sort_into_kinds() {
        for code in ["RequestLimitExceeded", "Throttling"] {
            let err = classify(service_error(code, 503));
            assert!(
                matches!(err, Ec2LookupError::Throttled { .. }),
                "{code}: {err:?}"
            );
            assert!(err.is_transient());
            assert_eq!(
                err.to_string(),
                format!("ec2:DescribeInstances: throttled ({code})")
            );
        }
        for code in ["UnauthorizedOperation", "AuthFailure", "AccessDenied"] {
            let err = classify(service_error(code, 403));
            assert!(
                matches!(err, Ec2LookupError::AccessDenied { .. }),
                "{code}: {err:?}"
            );
            assert!(!err.is_transient());
        }
        let err = classify(service_error("SomethingNew", 429));
        assert!(matches!(err, Ec2LookupError::Throttled { .. }));
        let err = classify(service_error("SomethingNew", 403));
        assert!(matches!(err, Ec2LookupError::AccessDenied { .. }));
        let err = classify(service_error("InternalError", 500));
        match &err {
            Ec2LookupError::Other { code, .. } => {
                assert_eq!(code.as_deref(), Some("InternalError"))
            }
            _ => panic!("{err:?}"),
        }
        assert_eq!(
            err.to_string(),
            "ec2:DescribeInstances failed (InternalError)"
        );
        assert_eq!(err.operation(), Some(Operation::DescribeInstances));
        // The SDK error stays reachable as the source, with AWS's message.
        let source = core::error::Error::source(&err).unwrap();
        assert!(source.is::<SdkError<DescribeInstancesError, HttpResponse>>());
    }

    #[test]
    fn assume_role_denied_and_region_disabled() {
        let region: Region = "ap-east-2".parse().unwrap();
        let sts = |code: &str| test_errors::service_error(AssumeRoleError::generic, code, 403);
        let err = Ec2LookupError::from_sdk(
            sts("AccessDenied"),
            Operation::AssumeRole,
            &context(&region, false),
        );
        assert!(matches!(
            err,
            Ec2LookupError::AccessDenied {
                operation: Operation::AssumeRole,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "sts:AssumeRole: access denied (AccessDenied)"
        );
        let err = Ec2LookupError::from_sdk(
            sts("RegionDisabledException"),
            Operation::AssumeRole,
            &context(&region, false),
        );
        match err {
            Ec2LookupError::UnknownRegion { region: r, .. } => assert_eq!(r, region),
            other => panic!("{other:?}"),
        }
    }

    /// Stands in for the HTTP client's connect error.
    #[derive(Debug)]
    struct ConnectError(&'static str, std::io::Error);

    impl fmt::Display for ConnectError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for ConnectError {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.1)
        }
    }

    fn dispatch(msg: &'static str) -> SdkError<DescribeInstancesError, HttpResponse> {
        let io = std::io::Error::other("failed to lookup address information");
        SdkError::dispatch_failure(ConnectorError::io(Box::new(ConnectError(msg, io))))
    }

    #[test]
    fn dispatch_failures_sort_into_kinds() {
        let region: Region = "eusc-de-east-1".parse().unwrap();
        let err = Ec2LookupError::from_sdk(
            dispatch("dns error"),
            Operation::DescribeInstances,
            &context(&region, false),
        );
        assert!(
            matches!(err, Ec2LookupError::UnknownRegion { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "ec2:DescribeInstances: region eusc-de-east-1 is unknown or not enabled"
        );
        // With the caller's own endpoint, a name that does not resolve is that endpoint's.
        let err = Ec2LookupError::from_sdk(
            dispatch("dns error"),
            Operation::DescribeInstances,
            &context(&region, true),
        );
        assert!(matches!(err, Ec2LookupError::Connection { .. }), "{err:?}");
        let err = classify(dispatch("tcp connect error"));
        assert!(matches!(err, Ec2LookupError::Connection { .. }), "{err:?}");
        assert!(err.is_transient());
        let err = classify(SdkError::dispatch_failure(ConnectorError::timeout(
            "slow".into(),
        )));
        assert!(matches!(err, Ec2LookupError::Timeout { .. }), "{err:?}");
        let err = classify(SdkError::timeout_error("operation timeout"));
        match &err {
            Ec2LookupError::Timeout { timeout, .. } => {
                assert_eq!(*timeout, Duration::from_secs(3));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "ec2:DescribeInstances: timed out (limit 3s)"
        );
        let err = classify(no_credentials());
        assert!(matches!(err, Ec2LookupError::Credentials { .. }), "{err:?}");
    }
}
