//! The DynamoDB registry's error: what went wrong talking to DynamoDB, and what to check.

use core::error::Error as StdError;
use core::fmt;
use core::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::sdk_error::{Source, Transport, code_suffix};

/// The DynamoDB API call that failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Operation {
    /// `dynamodb:CreateTable`, from [`ensure_table`](super::DynamoDbJoinRegistry::ensure_table).
    CreateTable,
    /// `dynamodb:DescribeTable`, from `ensure_table` (waiting for the table to be active).
    DescribeTable,
    /// `dynamodb:DeleteItem`: the conditional deletes of
    /// [`purge`](ec2_iid::EnrollmentRegistry::purge) and
    /// [`purge_expired`](super::DynamoDbJoinRegistry::purge_expired).
    DeleteItem,
    /// `dynamodb:DescribeTimeToLive`, from `ensure_table`.
    DescribeTimeToLive,
    /// `dynamodb:GetItem`: the consistent read of a
    /// [`record`](ec2_iid::JoinRegistry::record).
    GetItem,
    /// `dynamodb:PutItem`: the conditional write of a
    /// [`claim`](ec2_iid::JoinRegistry::claim).
    PutItem,
    /// `dynamodb:Scan`: [`list`](ec2_iid::EnrollmentRegistry::list),
    /// [`count_enrolled`](ec2_iid::EnrollmentRegistry::count_enrolled) and the purges, which
    /// read the whole table.
    Scan,
    /// `dynamodb:UpdateItem`: the conditional updates of an enrollment record
    /// ([`enroll`](ec2_iid::EnrollmentRegistry::enroll),
    /// [`renew`](ec2_iid::EnrollmentRegistry::renew),
    /// [`evict`](ec2_iid::EnrollmentRegistry::evict)).
    UpdateItem,
    /// `dynamodb:UpdateTimeToLive`, from `ensure_table` (enabling TTL on `expires_at`).
    UpdateTimeToLive,
}

impl Operation {
    /// The IAM action name, e.g. `dynamodb:PutItem`.
    ///
    /// ```
    /// use ec2_iid_aws::dynamodb::Operation;
    /// assert_eq!(Operation::PutItem.as_str(), "dynamodb:PutItem");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateTable => "dynamodb:CreateTable",
            Self::DescribeTable => "dynamodb:DescribeTable",
            Self::DeleteItem => "dynamodb:DeleteItem",
            Self::DescribeTimeToLive => "dynamodb:DescribeTimeToLive",
            Self::GetItem => "dynamodb:GetItem",
            Self::PutItem => "dynamodb:PutItem",
            Self::Scan => "dynamodb:Scan",
            Self::UpdateItem => "dynamodb:UpdateItem",
            Self::UpdateTimeToLive => "dynamodb:UpdateTimeToLive",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A [`DynamoDbJoinRegistry`](super::DynamoDbJoinRegistry) could not get an answer from
/// DynamoDB.
///
/// A refused claim is not an error (`Ok(false)`). Every variant that comes from the AWS SDK
/// keeps the SDK's error as its [`source`](core::error::Error::source), with AWS's error code
/// and message; the Display text says what to check.
///
/// ```
/// # fn print(err: &ec2_iid_aws::dynamodb::DynamoDbRegistryError) {
/// use ec2_iid_aws::dynamodb::DynamoDbRegistryError;
///
/// match err {
///     DynamoDbRegistryError::TableNotFound { table, .. } => eprintln!("create {table} first"),
///     err if err.is_transient() => eprintln!("join registry busy, try again later: {err}"),
///     err => eprintln!("join registry failed: {err}"),
/// }
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DynamoDbRegistryError {
    /// AWS refused the call: the credentials lack the IAM permission on the table
    /// (`AccessDeniedException`) or were rejected (`UnrecognizedClientException`,
    /// `ExpiredTokenException`, a bad signature).
    #[non_exhaustive]
    #[error(
        "{operation} on table {table:?}: access denied{}; check the IAM policy and the credentials",
        code_suffix(code.as_deref())
    )]
    AccessDenied {
        /// The call that was refused.
        operation: Operation,
        /// The registry's table.
        table: String,
        /// AWS's error code, when the response had one.
        code: Option<String>,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// The endpoint could not be reached or the connection broke (after the SDK's retries).
    #[non_exhaustive]
    #[error("{operation} on table {table:?}: connection to DynamoDB failed")]
    Connection {
        /// The call that failed.
        operation: Operation,
        /// The registry's table.
        table: String,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// The client's credentials could not be loaded (no credential chain, or it failed).
    #[non_exhaustive]
    #[error("{operation} on table {table:?}: no AWS credentials")]
    Credentials {
        /// The call that needed them.
        operation: Operation,
        /// The registry's table.
        table: String,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// An item under an enrollment record's key does not hold a record (an attribute missing
    /// or out of range: written by something else). Not transient: the item must be fixed or
    /// deleted.
    #[non_exhaustive]
    #[error(
        "{operation} on table {table:?}: invalid enrollment record of host {host_id:?}: {reason}"
    )]
    InvalidRecord {
        /// The call that read it.
        operation: Operation,
        /// The registry's table.
        table: String,
        /// The record's host id (at most 64 characters of it).
        host_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Any other failure: an AWS error code not sorted into a kind above (e.g.
    /// `ValidationException` for an invalid table name), an invalid request or configuration,
    /// a response that could not be read.
    #[non_exhaustive]
    #[error("{operation} on table {table:?} failed{}", code_suffix(code.as_deref()))]
    Other {
        /// The call that failed.
        operation: Operation,
        /// The registry's table.
        table: String,
        /// AWS's error code, when the response had one.
        code: Option<String>,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// [`ensure_table`](super::DynamoDbJoinRegistry::ensure_table) waited for the table to
    /// become `ACTIVE`, and it did not.
    #[non_exhaustive]
    #[error("table {table:?} not active after {waited:?} (status {status})")]
    TableNotActive {
        /// The registry's table.
        table: String,
        /// The last status DynamoDB reported, e.g. `CREATING`.
        status: String,
        /// How long `ensure_table` waited.
        waited: Duration,
    },
    /// The table does not exist in the client's account and region
    /// (`ResourceNotFoundException`), or is still being created.
    #[non_exhaustive]
    #[error(
        "{operation}: table {table:?} not found; create it with ensure_table, or check the table \
         name, the region and the account"
    )]
    TableNotFound {
        /// The call that failed.
        operation: Operation,
        /// The registry's table.
        table: String,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// DynamoDB throttled the call (`ThrottlingException`,
    /// `ProvisionedThroughputExceededException`, `RequestLimitExceeded`,
    /// `LimitExceededException`, HTTP 429), and the SDK's retries did not get through.
    #[non_exhaustive]
    #[error(
        "{operation} on table {table:?}: throttled{}; retry later, or raise the table's \
         throughput",
        code_suffix(code.as_deref())
    )]
    Throttled {
        /// The call that was throttled.
        operation: Operation,
        /// The registry's table.
        table: String,
        /// AWS's error code, when the response had one.
        code: Option<String>,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// The call did not finish within the client's timeouts (its operation, attempt, connect
    /// or read timeout).
    #[non_exhaustive]
    #[error("{operation} on table {table:?}: timed out")]
    Timeout {
        /// The call that timed out.
        operation: Operation,
        /// The registry's table.
        table: String,
        /// The SDK's error.
        #[source]
        source: Source,
    },
    /// [`count_enrolled`](ec2_iid::EnrollmentRegistry::count_enrolled) read its most `Scan`
    /// pages ([`with_max_count_pages`](super::DynamoDbJoinRegistry::with_max_count_pages))
    /// and the table went on. Not transient: the table is larger than the bound.
    #[non_exhaustive]
    #[error(
        "{operation} on table {table:?}: more to scan after the limit of {pages} page(s) of up \
         to 1 MB; raise with_max_count_pages for a table this large"
    )]
    TooManyPages {
        /// The call that was repeated, page after page.
        operation: Operation,
        /// The registry's table.
        table: String,
        /// How many pages were read.
        pages: u32,
    },
    /// DynamoDB failed on its side (`InternalServerError`, `ServiceUnavailable`, a
    /// `TransactionConflictException` or `ReplicatedWriteConflictException`, HTTP 5xx), and
    /// the SDK's retries did not get through.
    #[non_exhaustive]
    #[error(
        "{operation} on table {table:?}: DynamoDB unavailable{}; retry later",
        code_suffix(code.as_deref())
    )]
    Unavailable {
        /// The call that failed.
        operation: Operation,
        /// The registry's table.
        table: String,
        /// AWS's error code, when the response had one.
        code: Option<String>,
        /// The SDK's error.
        #[source]
        source: Source,
    },
}

impl DynamoDbRegistryError {
    /// The DynamoDB call that failed, if the error is about one.
    #[must_use]
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Self::AccessDenied { operation, .. }
            | Self::Connection { operation, .. }
            | Self::Credentials { operation, .. }
            | Self::InvalidRecord { operation, .. }
            | Self::Other { operation, .. }
            | Self::TableNotFound { operation, .. }
            | Self::Throttled { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::TooManyPages { operation, .. }
            | Self::Unavailable { operation, .. } => Some(*operation),
            Self::TableNotActive { .. } => None,
        }
    }

    /// Whether the same call may succeed later without a configuration change: throttling,
    /// timeouts, connection failures, DynamoDB's own failures, and a table still being created.
    ///
    /// A join server can answer these with "try again" instead of "denied". The name follows
    /// the crate's other errors (`Ec2LookupError::is_transient`, `ImdsError::is_transient`).
    #[doc(alias = "is_retryable")]
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connection { .. }
                | Self::TableNotActive { .. }
                | Self::Throttled { .. }
                | Self::Timeout { .. }
                | Self::Unavailable { .. }
        )
    }

    /// Sorts an SDK error of `operation` on `table` into a kind.
    pub(crate) fn from_sdk<E>(
        err: SdkError<E, HttpResponse>,
        operation: Operation,
        table: &str,
    ) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_owned);
        let kind = match Transport::of(&err) {
            Transport::Connection => Kind::Connection,
            Transport::Credentials => Kind::Credentials,
            Transport::Other => Kind::Other,
            Transport::Response { status } => kind_of_code(code.as_deref(), status),
            Transport::Timeout => Kind::Timeout,
        };
        let table = table.to_owned();
        let source: Source = Box::new(err);
        match kind {
            Kind::AccessDenied => Self::AccessDenied {
                operation,
                table,
                code,
                source,
            },
            Kind::Connection => Self::Connection {
                operation,
                table,
                source,
            },
            Kind::Credentials => Self::Credentials {
                operation,
                table,
                source,
            },
            Kind::Other => Self::Other {
                operation,
                table,
                code,
                source,
            },
            Kind::TableNotFound => Self::TableNotFound {
                operation,
                table,
                source,
            },
            Kind::Throttled => Self::Throttled {
                operation,
                table,
                code,
                source,
            },
            Kind::Timeout => Self::Timeout {
                operation,
                table,
                source,
            },
            Kind::Unavailable => Self::Unavailable {
                operation,
                table,
                code,
                source,
            },
        }
    }
}

/// The kind of an SDK error, before the variant is built.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Kind {
    AccessDenied,
    Connection,
    Credentials,
    Other,
    TableNotFound,
    Throttled,
    Timeout,
    Unavailable,
}

/// DynamoDB error codes that mean the caller may not make the call.
const ACCESS_DENIED: &[&str] = &[
    "AccessDeniedException",
    "ExpiredTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "UnrecognizedClientException",
];

/// DynamoDB error codes that mean the call was throttled.
const THROTTLED: &[&str] = &[
    "LimitExceededException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
];

/// DynamoDB error codes of failures on DynamoDB's side, or of a write that lost a race it
/// does not report as a failed condition.
const UNAVAILABLE: &[&str] = &[
    "InternalServerError",
    "ReplicatedWriteConflictException",
    "ServiceUnavailable",
    "TransactionConflictException",
];

/// Sorts a DynamoDB error response by its code, then by its HTTP status.
fn kind_of_code(code: Option<&str>, status: Option<u16>) -> Kind {
    match code {
        Some("ResourceNotFoundException") => return Kind::TableNotFound,
        Some(code) if ACCESS_DENIED.contains(&code) => return Kind::AccessDenied,
        Some(code) if THROTTLED.contains(&code) => return Kind::Throttled,
        Some(code) if UNAVAILABLE.contains(&code) => return Kind::Unavailable,
        _ => {}
    }
    match status {
        Some(429) => Kind::Throttled,
        Some(401 | 403) => Kind::AccessDenied,
        Some(500..=599) => Kind::Unavailable,
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    use super::*;
    use crate::sdk_error::test_errors::{self, no_credentials};

    fn service_error(code: &str, status: u16) -> SdkError<PutItemError, HttpResponse> {
        test_errors::service_error(PutItemError::generic, code, status)
    }

    fn classify(err: SdkError<PutItemError, HttpResponse>) -> DynamoDbRegistryError {
        DynamoDbRegistryError::from_sdk(err, Operation::PutItem, "joins")
    }

    #[test]
    fn service_codes_sort_into_kinds() {
        let err = classify(service_error("ResourceNotFoundException", 400));
        assert!(
            matches!(err, DynamoDbRegistryError::TableNotFound { ref table, .. } if table == "joins"),
            "{err:?}"
        );
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            "dynamodb:PutItem: table \"joins\" not found; create it with ensure_table, or check \
             the table name, the region and the account"
        );
        for code in ["AccessDeniedException", "UnrecognizedClientException"] {
            let err = classify(service_error(code, 400));
            assert!(
                matches!(err, DynamoDbRegistryError::AccessDenied { .. }),
                "{code}: {err:?}"
            );
            assert!(!err.is_transient());
        }
        assert_eq!(
            classify(service_error("AccessDeniedException", 400)).to_string(),
            "dynamodb:PutItem on table \"joins\": access denied (AccessDeniedException); check \
             the IAM policy and the credentials"
        );
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            let err = classify(service_error(code, 400));
            assert!(
                matches!(err, DynamoDbRegistryError::Throttled { .. }),
                "{code}: {err:?}"
            );
            assert!(err.is_transient());
        }
        let err = classify(service_error("InternalServerError", 500));
        assert!(
            matches!(err, DynamoDbRegistryError::Unavailable { .. }),
            "{err:?}"
        );
        assert!(err.is_transient());
        assert_eq!(
            err.to_string(),
            "dynamodb:PutItem on table \"joins\": DynamoDB unavailable (InternalServerError); \
             retry later"
        );
        // Unknown codes by HTTP status.
        let kind = |status| match classify(service_error("SomethingNew", status)) {
            DynamoDbRegistryError::Throttled { .. } => "throttled",
            DynamoDbRegistryError::AccessDenied { .. } => "denied",
            DynamoDbRegistryError::Unavailable { .. } => "unavailable",
            DynamoDbRegistryError::Other { .. } => "other",
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(429), "throttled");
        assert_eq!(kind(403), "denied");
        assert_eq!(kind(503), "unavailable");
        assert_eq!(kind(400), "other");
        let err = classify(service_error("ValidationException", 400));
        match &err {
            DynamoDbRegistryError::Other { code, .. } => {
                assert_eq!(code.as_deref(), Some("ValidationException"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_transient());
        assert_eq!(err.operation(), Some(Operation::PutItem));
        assert_eq!(
            err.to_string(),
            "dynamodb:PutItem on table \"joins\" failed (ValidationException)"
        );
        // The SDK error stays reachable as the source, with AWS's message.
        let source = StdError::source(&err).unwrap();
        assert!(source.is::<SdkError<PutItemError, HttpResponse>>());
    }

    #[test]
    fn dispatch_failures_sort_into_kinds() {
        let io = std::io::Error::other("connection refused");
        let err = classify(SdkError::dispatch_failure(ConnectorError::io(Box::new(io))));
        assert!(
            matches!(err, DynamoDbRegistryError::Connection { .. }),
            "{err:?}"
        );
        assert!(err.is_transient());
        let err = classify(SdkError::dispatch_failure(ConnectorError::timeout(
            "slow".into(),
        )));
        assert!(
            matches!(err, DynamoDbRegistryError::Timeout { .. }),
            "{err:?}"
        );
        let err = classify(SdkError::timeout_error("operation timeout"));
        assert!(
            matches!(err, DynamoDbRegistryError::Timeout { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "dynamodb:PutItem on table \"joins\": timed out"
        );
        let err = classify(no_credentials());
        assert!(
            matches!(err, DynamoDbRegistryError::Credentials { .. }),
            "{err:?}"
        );
        assert!(!err.is_transient());
    }

    #[test]
    fn table_not_active_is_transient_and_about_no_call() {
        let err = DynamoDbRegistryError::TableNotActive {
            table: "joins".to_owned(),
            status: "CREATING".to_owned(),
            waited: Duration::from_secs(120),
        };
        assert!(err.is_transient());
        assert_eq!(err.operation(), None);
        assert_eq!(
            err.to_string(),
            "table \"joins\" not active after 120s (status CREATING)"
        );
    }
}
