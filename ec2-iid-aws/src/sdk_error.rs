//! What an AWS SDK error says about the transport, for the adapter's errors to build on: the
//! EC2 lookup's ([`Ec2LookupError`](crate::Ec2LookupError)) and the DynamoDB registry's each
//! sort [`Transport::Response`] by their service's error codes, and keep their own variants.

use core::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::retry::ErrorKind as RetryErrorKind;

/// A boxed error from the AWS SDK, kept as the `source` of an
/// adapter error.
pub(crate) type Source = Box<dyn StdError + Send + Sync + 'static>;

/// How an SDK call failed, as far as the SDK tells without the service's error code.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Transport {
    /// The endpoint could not be reached or the connection broke (an I/O error, or a failure
    /// the SDK calls transient).
    Connection,
    /// The caller's credentials could not be loaded.
    Credentials,
    /// The request was not sent for another reason: it could not be built, or the HTTP client
    /// failed otherwise.
    Other,
    /// AWS answered, or sent a response the SDK could not read: the service's error code (the
    /// SDK error's `code()`) and this HTTP status sort it.
    Response {
        /// The HTTP status, when a response arrived.
        status: Option<u16>,
    },
    /// The SDK's operation or attempt timeout, or the HTTP client's connect or read timeout.
    Timeout,
}

impl Transport {
    /// Sorts `err` by how the call failed.
    pub(crate) fn of<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: StdError + 'static,
    {
        match err {
            SdkError::TimeoutError(_) => Self::Timeout,
            SdkError::DispatchFailure(failure) => {
                if failure.is_timeout() {
                    Self::Timeout
                } else if chain_has::<CredentialsError>(err) {
                    Self::Credentials
                } else if failure.is_io()
                    || failure.as_other() == Some(RetryErrorKind::TransientError)
                {
                    Self::Connection
                } else {
                    Self::Other
                }
            }
            SdkError::ConstructionFailure(_) if chain_has::<CredentialsError>(err) => {
                Self::Credentials
            }
            SdkError::ConstructionFailure(_) => Self::Other,
            _ => Self::Response {
                status: err.raw_response().map(|r| r.status().as_u16()),
            },
        }
    }
}

/// Whether an error of type `T` is in the source chain of `err` (`err` included).
pub(crate) fn chain_has<T: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| e.is::<T>())
}

/// `err` and its sources, outermost first.
pub(crate) fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    core::iter::successors(Some(err), |&e| e.source())
}

/// `" (Code)"` or nothing, for Display.
pub(crate) fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" ({c})")).unwrap_or_default()
}

/// SDK errors as the SDK makes them, for the unit tests of the errors built on [`Transport`].
#[cfg(test)]
pub(crate) mod test_errors {
    use aws_credential_types::provider::error::CredentialsError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    /// AWS's answer with error `code` and HTTP `status`; `generic` is the operation error's
    /// `generic` constructor (e.g. `PutItemError::generic`).
    pub(crate) fn service_error<E>(
        generic: fn(ErrorMetadata) -> E,
        code: &str,
        status: u16,
    ) -> SdkError<E, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("from a test")
            .build();
        SdkError::service_error(
            generic(meta),
            HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty()),
        )
    }

    /// No credentials: the credential chain found none when the request was dispatched.
    pub(crate) fn no_credentials<E>() -> SdkError<E, HttpResponse> {
        let creds = CredentialsError::not_loaded("no providers in chain provided credentials");
        SdkError::dispatch_failure(ConnectorError::other(Box::new(creds), None))
    }
}
