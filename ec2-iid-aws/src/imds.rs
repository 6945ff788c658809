//! The instance side: fetch this instance's signed identity document from IMDS (IMDSv2).
//!
//! [`ImdsFetcher`] reads `/latest/dynamic/instance-identity/{rsa2048,pkcs7,signature,document}`
//! through `aws-config`'s IMDS client, which asks for a session token (`PUT /latest/api/token`),
//! sends it with every request, caches it and retries 5xx and 401 answers. The endpoint is
//! `http://169.254.169.254` unless [`ImdsFetcherBuilder::endpoint`] or the environment
//! (`AWS_EC2_METADATA_SERVICE_ENDPOINT`, `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6` for
//! `http://[fd00:ec2::254]`, or the same keys in `~/.aws/config`) says otherwise;
//! `AWS_EC2_METADATA_DISABLED=true` refuses every fetch ([`ImdsError::Disabled`]).
//!
//! A [`SignedDocument`] owns the bytes as served; [`SignedDocument::input`] is ready for
//! [`ec2_iid::verify_input`] or [`ec2_iid::Verifier::verify_input`] on the verifying side.
//!
//! ```
//! use std::time::Duration;
//!
//! use ec2_iid_aws::imds::ImdsFetcher;
//!
//! // Building touches no network: requests start with the first fetch.
//! let fetcher = ImdsFetcher::builder()
//!     .endpoint("http://127.0.0.1:1338")
//!     .timeout(Duration::from_secs(2))
//!     .max_attempts(2)
//!     .build()?;
//! # let _ = fetcher;
//! # Ok::<(), ec2_iid_aws::imds::ImdsConfigError>(())
//! ```
//!
//! On an instance:
//!
//! ```no_run
//! use ec2_iid::Format;
//! use ec2_iid_aws::imds::ImdsFetcher;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let signed = ImdsFetcher::new().fetch(Format::Rsa2048).await?;
//! // Send `signed.input()`'s bytes to the join server, which verifies them.
//! println!("{:?}", signed.input());
//! # Ok(())
//! # }
//! ```

use core::error::Error as StdError;
use core::time::Duration;

use aws_config::imds::client::error::{BuildError, ImdsError as SdkImdsError, TokenError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use ec2_iid::{Format, MAX_BLOB_LEN, SignedInput};

use crate::sdk_error::{Source, chain, chain_has};

/// The environment variable that turns IMDS off for AWS SDKs, honoured by every fetch.
pub const DISABLED_ENV: &str = "AWS_EC2_METADATA_DISABLED";

/// The default per-request timeout, retries included: 10 s.
pub const DEFAULT_IMDS_TIMEOUT: Duration = Duration::from_secs(10);

/// The default number of attempts per request (the first included): 4, as `aws-config`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// The default connect and read timeout of one attempt: 1 s, as `aws-config`.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

const RSA2048: &str = "/latest/dynamic/instance-identity/rsa2048";
const PKCS7: &str = "/latest/dynamic/instance-identity/pkcs7";
const DOCUMENT: &str = "/latest/dynamic/instance-identity/document";
const SIGNATURE: &str = "/latest/dynamic/instance-identity/signature";

/// Fetches this instance's signed identity document from IMDS with IMDSv2 session tokens.
///
/// Cheap to clone; clones share the session token. The token lives 6 hours and is fetched
/// again when it expires.
#[derive(Clone, Debug)]
pub struct ImdsFetcher {
    client: aws_config::imds::Client,
}

impl ImdsFetcher {
    /// A fetcher with the defaults: the endpoint from the environment (else
    /// `http://169.254.169.254`), [`DEFAULT_IMDS_TIMEOUT`], [`DEFAULT_MAX_ATTEMPTS`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            client: aws_config::imds::Client::builder()
                .operation_timeout(DEFAULT_IMDS_TIMEOUT)
                .build(),
        }
    }

    /// A builder, to set the endpoint, timeouts and attempts.
    #[must_use]
    pub fn builder() -> ImdsFetcherBuilder {
        ImdsFetcherBuilder::default()
    }

    /// Fetches the document signed in `format`: `/rsa2048`, `/pkcs7`, or `/document` and
    /// `/signature` (two requests).
    ///
    /// The bytes are kept exactly as served (a trailing newline stays); nothing is verified
    /// here: pass [`SignedDocument::input`] to a verifier.
    ///
    /// # Errors
    /// [`ImdsError::Disabled`] when `AWS_EC2_METADATA_DISABLED` is `true` (before any request),
    /// [`ImdsError::TooLarge`] for a response over [`MAX_BLOB_LEN`], and the other variants
    /// of [`ImdsError`] for what IMDS or the connection to it did.
    pub async fn fetch(&self, format: Format) -> Result<SignedDocument, ImdsError> {
        if disabled_by_env() {
            return Err(ImdsError::Disabled);
        }
        let body = match format {
            Format::Rsa2048 => Body::Rsa2048(self.get(RSA2048).await?),
            Format::Pkcs7 => Body::Pkcs7(self.get(PKCS7).await?),
            Format::Signature => {
                let document = self.get(DOCUMENT).await?;
                let signature = self.get(SIGNATURE).await?;
                Body::Signature {
                    document,
                    signature,
                }
            }
            other => return Err(ImdsError::UnsupportedFormat { format: other }),
        };
        Ok(SignedDocument { body })
    }

    /// One GET, bounded to [`MAX_BLOB_LEN`] bytes.
    async fn get(&self, path: &'static str) -> Result<Vec<u8>, ImdsError> {
        let text = self
            .client
            .get(path)
            .await
            .map_err(|err| ImdsError::from_sdk(err, path))?;
        let bytes = String::from(text).into_bytes();
        if bytes.len() > MAX_BLOB_LEN {
            return Err(ImdsError::TooLarge {
                path,
                len: bytes.len(),
                max: MAX_BLOB_LEN,
            });
        }
        Ok(bytes)
    }
}

impl Default for ImdsFetcher {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `AWS_EC2_METADATA_DISABLED` is `true` (any case), as the AWS SDKs read it.
fn disabled_by_env() -> bool {
    std::env::var(DISABLED_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Settings of an [`ImdsFetcher`]; every one has a default.
#[derive(Clone, Debug, Default)]
pub struct ImdsFetcherBuilder {
    endpoint: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    max_attempts: Option<u32>,
}

impl ImdsFetcherBuilder {
    /// The IMDS endpoint, e.g. `http://169.254.169.254` or an emulator's URL. Default: from
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT` / `_MODE` (or `~/.aws/config`), else
    /// `http://169.254.169.254`.
    #[must_use]
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The limit for each request, retries included (the token request has its own). Default:
    /// [`DEFAULT_IMDS_TIMEOUT`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The connect timeout of one attempt. Default: [`DEFAULT_ATTEMPT_TIMEOUT`].
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The read timeout of one attempt (a token request whose answer never arrives, as behind
    /// a hop limit, fails after it). Default: [`DEFAULT_ATTEMPT_TIMEOUT`].
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Attempts per request, the first included; 5xx and 401 answers are retried with
    /// backoff. Default: [`DEFAULT_MAX_ATTEMPTS`].
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// The fetcher. No request is made yet.
    ///
    /// # Errors
    /// [`ImdsConfigError::InvalidEndpoint`] for an endpoint that is not a URI,
    /// [`ImdsConfigError::ZeroTimeout`] for a zero timeout and
    /// [`ImdsConfigError::ZeroAttempts`] for zero attempts.
    pub fn build(self) -> Result<ImdsFetcher, ImdsConfigError> {
        let timeouts = [self.timeout, self.connect_timeout, self.read_timeout];
        if timeouts.iter().flatten().any(Duration::is_zero) {
            return Err(ImdsConfigError::ZeroTimeout);
        }
        if self.max_attempts == Some(0) {
            return Err(ImdsConfigError::ZeroAttempts);
        }
        let mut builder = aws_config::imds::Client::builder()
            .operation_timeout(self.timeout.unwrap_or(DEFAULT_IMDS_TIMEOUT))
            .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT))
            .read_timeout(self.read_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT))
            .max_attempts(self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS));
        if let Some(endpoint) = self.endpoint {
            builder = builder
                .endpoint(&endpoint)
                .map_err(|_| ImdsConfigError::InvalidEndpoint { endpoint })?;
        }
        Ok(ImdsFetcher {
            client: builder.build(),
        })
    }
}

/// An identity document as IMDS served it, in one format; the bytes are owned.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct SignedDocument {
    body: Body,
}

#[derive(Clone, Debug, Eq, PartialEq)]
enum Body {
    Pkcs7(Vec<u8>),
    Rsa2048(Vec<u8>),
    Signature {
        document: Vec<u8>,
        signature: Vec<u8>,
    },
}

impl SignedDocument {
    /// The format it was fetched in.
    #[must_use]
    pub fn format(&self) -> Format {
        match self.body {
            Body::Pkcs7(_) => Format::Pkcs7,
            Body::Rsa2048(_) => Format::Rsa2048,
            Body::Signature { .. } => Format::Signature,
        }
    }

    /// The bytes as a verifier's input: [`SignedInput::Rsa2048`], [`SignedInput::Pkcs7`] or
    /// [`SignedInput::Signature`] (the `/document` bytes and the `/signature` text).
    #[must_use]
    pub fn input(&self) -> SignedInput<'_> {
        match &self.body {
            Body::Pkcs7(blob) => SignedInput::Pkcs7(blob),
            Body::Rsa2048(blob) => SignedInput::Rsa2048(blob),
            Body::Signature {
                document,
                signature,
            } => SignedInput::Signature {
                document,
                signature,
            },
        }
    }
}

/// An [`ImdsFetcherBuilder`] setting is invalid.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum ImdsConfigError {
    /// The endpoint is not a URI.
    #[non_exhaustive]
    #[error("invalid IMDS endpoint {endpoint:?}: a URL such as http://169.254.169.254 expected")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
    },
    /// `max_attempts` is zero.
    #[error("IMDS max attempts must be at least 1")]
    ZeroAttempts,
    /// A timeout is zero.
    #[error("IMDS timeouts must not be zero")]
    ZeroTimeout,
}

/// Fetching the identity document from IMDS failed; each variant says what to check.
///
/// Variants that come from `aws-config`'s IMDS client keep its error as the
/// [`source`](core::error::Error::source).
///
/// ```
/// # fn print(err: &ec2_iid_aws::imds::ImdsError) {
/// use ec2_iid_aws::imds::ImdsError;
///
/// match err {
///     ImdsError::NotFound { .. } => eprintln!("try another format: {err}"),
///     err if err.is_transient() => eprintln!("try again later: {err}"),
///     err => eprintln!("{err}"),
/// }
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    /// `AWS_EC2_METADATA_DISABLED` is `true`; no request was made.
    #[error("IMDS is disabled by AWS_EC2_METADATA_DISABLED=true: unset it to fetch from IMDS")]
    Disabled,
    /// IMDS answered with an HTTP status other than 401, 403 and 404 (after the retries, for
    /// 5xx).
    #[non_exhaustive]
    #[error("IMDS answered {path} with HTTP {status}")]
    ErrorResponse {
        /// The path requested.
        path: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// The endpoint from the environment or `~/.aws/config` is invalid.
    #[non_exhaustive]
    #[error(
        "invalid IMDS endpoint: check AWS_EC2_METADATA_SERVICE_ENDPOINT (a URL) and \
         AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE (IPv4 or IPv6)"
    )]
    InvalidEndpoint {
        /// `aws-config`'s error.
        #[source]
        source: Source,
    },
    /// IMDS does not serve the path (HTTP 404), e.g. `/rsa2048` on an IMDS that lacks it.
    #[non_exhaustive]
    #[error("IMDS does not serve {path} (HTTP 404): try another format")]
    NotFound {
        /// The path requested.
        path: &'static str,
    },
    /// Any other failure: a response that is not UTF-8, a broken connection, an error
    /// `aws-config` does not sort.
    #[non_exhaustive]
    #[error("fetching {path} from IMDS failed")]
    Other {
        /// The path requested.
        path: &'static str,
        /// `aws-config`'s error.
        #[source]
        source: Source,
    },
    /// IMDS connected but did not answer within the read timeout or the request's timeout,
    /// after the session token was granted.
    #[non_exhaustive]
    #[error("IMDS did not answer {path} in time")]
    Timeout {
        /// The path requested.
        path: &'static str,
        /// `aws-config`'s error.
        #[source]
        source: Source,
    },
    /// The session token request (`PUT /latest/api/token`) got no answer in time or was
    /// refused. In a container, the answer is dropped when the instance's metadata hop limit
    /// is 1 (one hop more than the instance itself).
    #[non_exhaustive]
    #[error(
        "no IMDS session token ({}): inside a container, set the instance's metadata hop limit \
         to 2 (aws ec2 modify-instance-metadata-options --http-put-response-hop-limit 2)",
        token_failure(*status)
    )]
    TokenUnavailable {
        /// The HTTP status of the refusal, `None` if no answer arrived.
        status: Option<u16>,
        /// `aws-config`'s error.
        #[source]
        source: Source,
    },
    /// The response is larger than [`MAX_BLOB_LEN`], more than any identity document.
    #[non_exhaustive]
    #[error("IMDS response for {path} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The path requested.
        path: &'static str,
        /// The response's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// IMDS refused the request with HTTP 401 (the session token was rejected, also after a
    /// new one) or 403 (IMDS access is turned off, or a proxy header was sent).
    #[non_exhaustive]
    #[error(
        "IMDS refused {path} (HTTP {status}): the session token was rejected (401), or IMDS \
         access is turned off (403)"
    )]
    Unauthorized {
        /// The path requested.
        path: &'static str,
        /// 401 or 403.
        status: u16,
    },
    /// No connection to IMDS (refused, or no answer to the connect).
    #[non_exhaustive]
    #[error(
        "IMDS unreachable: not on EC2, or IMDS is off for this instance (aws ec2 \
         modify-instance-metadata-options --http-endpoint enabled)"
    )]
    Unreachable {
        /// `aws-config`'s error.
        #[source]
        source: Source,
    },
    /// A [`Format`] newer than this crate, without a known IMDS path.
    #[non_exhaustive]
    #[error("no IMDS path known for format {format:?}")]
    UnsupportedFormat {
        /// The format asked for.
        format: Format,
    },
}

impl ImdsError {
    /// Whether the same fetch may succeed later without a configuration change: timeouts
    /// after the token and 5xx answers (after the client's retries).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::ErrorResponse { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Sorts an error of `aws-config`'s IMDS client into a kind.
    fn from_sdk(err: SdkImdsError, path: &'static str) -> Self {
        let kind = match &err {
            SdkImdsError::FailedToLoadToken(_) => token_kind(&err),
            SdkImdsError::ErrorResponse(response) => match response.response().status().as_u16() {
                404 => return Self::NotFound { path },
                status @ (401 | 403) => return Self::Unauthorized { path, status },
                status => return Self::ErrorResponse { path, status },
            },
            SdkImdsError::IoError(_) | SdkImdsError::Unexpected(_) => transport_kind(&err),
            _ => Kind::Other,
        };
        let source: Source = Box::new(err);
        match kind {
            Kind::InvalidEndpoint => Self::InvalidEndpoint { source },
            Kind::Other => Self::Other { path, source },
            Kind::Timeout => Self::Timeout { path, source },
            Kind::Token(status) => Self::TokenUnavailable { status, source },
            Kind::Unreachable => Self::Unreachable { source },
        }
    }
}

/// The kind of an IMDS client error, before the variant is built.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Kind {
    InvalidEndpoint,
    Other,
    Timeout,
    Token(Option<u16>),
    Unreachable,
}

/// Sorts a failed token request: no connection is [`Kind::Unreachable`]; an answer that never
/// came or a refusal is [`Kind::Token`].
fn token_kind(err: &(dyn StdError + 'static)) -> Kind {
    if chain_has::<BuildError>(err) {
        return Kind::InvalidEndpoint;
    }
    if no_connection(err) {
        return Kind::Unreachable;
    }
    let status = chain(err)
        .find_map(|e| e.downcast_ref::<SdkError<TokenError, HttpResponse>>())
        .and_then(SdkError::raw_response)
        .map(|r| r.status().as_u16());
    Kind::Token(status)
}

/// Sorts a failed GET (the token was granted, or the request never got that far).
fn transport_kind(err: &(dyn StdError + 'static)) -> Kind {
    if chain_has::<BuildError>(err) {
        Kind::InvalidEndpoint
    } else if no_connection(err) {
        Kind::Unreachable
    } else if chain(err).any(is_timeout) {
        Kind::Timeout
    } else {
        Kind::Other
    }
}

/// Whether the chain shows that no connection was made: refused, no route, or the HTTP
/// client's connect timeout ("HTTP connect timeout occurred after …").
fn no_connection(err: &(dyn StdError + 'static)) -> bool {
    use std::io::ErrorKind;
    chain(err).any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
            )
        }) || e.to_string().starts_with("HTTP connect timeout")
    })
}

/// Whether `err` is a timeout: the HTTP client's read timeout, or the SDK's operation or
/// attempt timeout.
fn is_timeout(err: &(dyn StdError + 'static)) -> bool {
    err.downcast_ref::<SdkError<TokenError, HttpResponse>>()
        .is_some_and(|e| matches!(e, SdkError::TimeoutError(_)))
        || err.to_string().contains("timeout")
        || err.to_string().contains("timed out")
}

/// What happened to the token request, for Display.
fn token_failure(status: Option<u16>) -> String {
    match status {
        Some(status) => format!("the token request was refused with HTTP {status}"),
        None => "the token request got no answer".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_refuses_invalid_settings() {
        let err = ImdsFetcher::builder()
            .endpoint("not a uri")
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ImdsConfigError::InvalidEndpoint {
                endpoint: "not a uri".to_owned()
            }
        );
        let err = ImdsFetcher::builder()
            .read_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(err, ImdsConfigError::ZeroTimeout);
        assert_eq!(err.to_string(), "IMDS timeouts must not be zero");
        let err = ImdsFetcher::builder().max_attempts(0).build().unwrap_err();
        assert_eq!(err, ImdsConfigError::ZeroAttempts);
        assert!(ImdsFetcher::builder().build().is_ok());
    }

    #[test]
    fn transient_kinds() {
        let status = |status| ImdsError::ErrorResponse {
            path: RSA2048,
            status,
        };
        assert!(status(503).is_transient());
        assert!(!status(400).is_transient());
        assert!(!ImdsError::Disabled.is_transient());
        assert!(!ImdsError::NotFound { path: RSA2048 }.is_transient());
    }
}
