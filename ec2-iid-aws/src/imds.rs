//! The instance side: fetch this instance's signed identity document from IMDS (IMDSv2).
//!
//! [`ImdsFetcher`] reads `/latest/dynamic/instance-identity/{rsa2048,pkcs7,signature,document}`
//! over HTTP/1 (hyper, no AWS SDK crate: an instance that only joins compiles no SDK). It asks
//! for a session token (`PUT /latest/api/token`), sends it with every request, caches it for
//! its 6 hours and retries 5xx and 401 answers (a 401 with a new token), timeouts and broken
//! connections. The endpoint is `http://169.254.169.254` unless [`ImdsFetcherBuilder::endpoint`]
//! or the environment (`AWS_EC2_METADATA_SERVICE_ENDPOINT`,
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6` for `http://[fd00:ec2::254]`, or the same keys
//! in the profile of `~/.aws/config`) says otherwise, as for the AWS SDKs;
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
use core::fmt;
use core::time::Duration;
use std::path::PathBuf;
use std::sync::Arc;

use ec2_iid::{Format, MAX_BLOB_LEN, SignedInput};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A boxed error kept as the `source` of an [`ImdsError`].
type Source = Box<dyn StdError + Send + Sync + 'static>;

/// The environment variable that turns IMDS off for AWS SDKs, honoured by every fetch.
pub const DISABLED_ENV: &str = "AWS_EC2_METADATA_DISABLED";

/// The environment variable and the profile key of the IMDS endpoint.
const ENDPOINT_ENV: (&str, &str) = (
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "ec2_metadata_service_endpoint",
);

/// The environment variable and the profile key of the endpoint mode (`IPv4`, `IPv6`).
const ENDPOINT_MODE_ENV: (&str, &str) = (
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "ec2_metadata_service_endpoint_mode",
);

/// The default per-request timeout, retries included: 10 s.
pub const DEFAULT_IMDS_TIMEOUT: Duration = Duration::from_secs(10);

/// The default number of attempts per request (the first included): 4, as the AWS SDKs.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// The default connect and read timeout of one attempt: 1 s, as the AWS SDKs.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

const RSA2048: &str = "/latest/dynamic/instance-identity/rsa2048";
const PKCS7: &str = "/latest/dynamic/instance-identity/pkcs7";
const DOCUMENT: &str = "/latest/dynamic/instance-identity/document";
const SIGNATURE: &str = "/latest/dynamic/instance-identity/signature";
const TOKEN_PATH: &str = "/latest/api/token";
const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token");
const TOKEN_TTL_HEADER: HeaderName =
    HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds");

/// The session token's lifetime asked for: 6 hours, IMDS's maximum.
const TOKEN_TTL: Duration = Duration::from_secs(21_600);

/// A token is fetched again this long before it expires, so that no GET carries one that
/// expires on the way.
const TOKEN_MARGIN: Duration = Duration::from_secs(120);

/// The pause before the second attempt, doubling up to [`MAX_BACKOFF`]. IMDS is the instance's
/// own service, shared with no other client: no jitter is needed.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The token is a few dozen bytes: a larger answer is not a token.
const MAX_TOKEN_LEN: usize = 1024;

/// Fetches this instance's signed identity document from IMDS with IMDSv2 session tokens.
///
/// Cheap to clone; clones share the session token. The token lives 6 hours and is fetched
/// again when it expires (or when IMDS answers 401).
#[derive(Clone, Debug)]
pub struct ImdsFetcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Resolved once, when the fetcher is built; an invalid endpoint from the environment fails
    /// each fetch ([`ImdsError::InvalidEndpoint`]), as the AWS SDKs' client does.
    endpoint: Result<Endpoint, String>,
    timeout: Duration,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_attempts: u32,
    /// Locked while a token is fetched, so that concurrent fetches share one token request.
    token: AsyncMutex<Option<Token>>,
}

/// Where IMDS listens: the host to connect to, its `Host` header, and a path prefix.
#[derive(Clone, Debug, Eq, PartialEq)]
struct Endpoint {
    host: String,
    port: u16,
    authority: String,
    prefix: String,
}

#[derive(Debug)]
struct Token {
    /// Marked sensitive: `Debug` does not print it.
    value: HeaderValue,
    refresh_at: Instant,
}

impl ImdsFetcher {
    /// A fetcher with the defaults: the endpoint from the environment or `~/.aws/config`
    /// (else `http://169.254.169.254`), [`DEFAULT_IMDS_TIMEOUT`], [`DEFAULT_MAX_ATTEMPTS`].
    #[must_use]
    pub fn new() -> Self {
        Self::with(ImdsFetcherBuilder::default(), configured_endpoint())
    }

    /// A builder, to set the endpoint, timeouts and attempts.
    #[must_use]
    pub fn builder() -> ImdsFetcherBuilder {
        ImdsFetcherBuilder::default()
    }

    fn with(settings: ImdsFetcherBuilder, endpoint: Result<Endpoint, String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                endpoint,
                timeout: settings.timeout.unwrap_or(DEFAULT_IMDS_TIMEOUT),
                connect_timeout: settings.connect_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT),
                read_timeout: settings.read_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT),
                max_attempts: settings.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
                token: AsyncMutex::new(None),
            }),
        }
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

    /// One GET with its retries, within the request's timeout; bounded to [`MAX_BLOB_LEN`]
    /// bytes of UTF-8 text.
    async fn get(&self, path: &'static str) -> Result<Vec<u8>, ImdsError> {
        let inner = &self.inner;
        let endpoint = inner
            .endpoint
            .as_ref()
            .map_err(|reason| ImdsError::InvalidEndpoint {
                source: reason.clone().into(),
            })?;
        let until = Instant::now() + inner.timeout;
        let mut attempt = 1;
        let last = loop {
            let token = self.token(endpoint).await?;
            let result = inner
                .exchange(endpoint, Method::GET, path, (TOKEN_HEADER, token), until)
                .await;
            let retry = match &result {
                Ok(answer) if answer.status == StatusCode::UNAUTHORIZED => {
                    // IMDS no longer knows the token (expired early, or IMDS restarted).
                    *inner.token.lock().await = None;
                    true
                }
                other => worth_retrying(other),
            };
            if !retry || !inner.next_attempt(&mut attempt, until).await {
                break result;
            }
        };
        let answer = last.map_err(|failure| failure.into_get_error(path))?;
        match answer.status.as_u16() {
            200 => {}
            404 => return Err(ImdsError::NotFound { path }),
            status @ (401 | 403) => return Err(ImdsError::Unauthorized { path, status }),
            status => return Err(ImdsError::ErrorResponse { path, status }),
        }
        // The AWS SDKs' IMDS client reads text: a body that is not UTF-8 is not a document.
        if let Err(e) = core::str::from_utf8(&answer.body) {
            return Err(ImdsError::Other {
                path,
                source: Box::new(e),
            });
        }
        Ok(answer.body)
    }

    /// The cached session token, or a new one (`PUT /latest/api/token`, with its own retries
    /// and timeout).
    async fn token(&self, endpoint: &Endpoint) -> Result<HeaderValue, ImdsError> {
        let inner = &self.inner;
        let mut cached = inner.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let asked = Instant::now();
        let until = asked + inner.timeout;
        let ttl = HeaderValue::from(TOKEN_TTL.as_secs());
        let mut attempt = 1;
        let last = loop {
            let result = inner
                .exchange(
                    endpoint,
                    Method::PUT,
                    TOKEN_PATH,
                    (TOKEN_TTL_HEADER, ttl.clone()),
                    until,
                )
                .await;
            if !worth_retrying(&result) || !inner.next_attempt(&mut attempt, until).await {
                break result;
            }
        };
        let answer = last.map_err(Failure::into_token_error)?;
        let refused = |status: StatusCode, reason: &str| ImdsError::TokenUnavailable {
            status: Some(status.as_u16()),
            source: reason.to_owned().into(),
        };
        if answer.status != StatusCode::OK {
            return Err(refused(answer.status, "IMDS refused the token request"));
        }
        let mut value = core::str::from_utf8(&answer.body)
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
            .and_then(|t| HeaderValue::from_str(t).ok())
            .ok_or_else(|| refused(answer.status, "IMDS answered no usable token"))?;
        value.set_sensitive(true);
        *cached = Some(Token {
            value: value.clone(),
            refresh_at: asked + TOKEN_TTL.saturating_sub(TOKEN_MARGIN),
        });
        Ok(value)
    }
}

impl Inner {
    /// Sleeps before the attempt after `attempt` and counts it; `false` when the attempts are
    /// spent or the pause would end past `until`.
    async fn next_attempt(&self, attempt: &mut u32, until: Instant) -> bool {
        if *attempt >= self.max_attempts {
            return false;
        }
        let doublings = attempt.saturating_sub(1).min(8);
        let wait = INITIAL_BACKOFF
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF);
        if Instant::now() + wait >= until {
            return false;
        }
        tokio::time::sleep(wait).await;
        *attempt += 1;
        true
    }

    /// One request on a connection of its own: connect within the connect timeout, then the
    /// answer within the read timeout (both within `until`). IMDS is local; a connection per
    /// request keeps every wait bounded and leaves nothing open.
    async fn exchange(
        &self,
        endpoint: &Endpoint,
        method: Method,
        path: &str,
        (name, value): (HeaderName, HeaderValue),
        until: Instant,
    ) -> Result<Answer, Failure> {
        let connect_until = until.min(Instant::now() + self.connect_timeout);
        let connect = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port));
        let stream = match tokio::time::timeout_at(connect_until, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(Failure::Connect(Box::new(e))),
            Err(_) => {
                return Err(Failure::Connect(Box::new(NoAnswer {
                    what: "connect",
                    after: self.connect_timeout,
                })));
            }
        };
        let read_until = until.min(Instant::now() + self.read_timeout);
        let no_answer = || {
            Failure::NoAnswer(NoAnswer {
                what: "answer",
                after: self.read_timeout,
            })
        };
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", endpoint.prefix))
            .header(header::HOST, endpoint.authority.as_str())
            .header(header::USER_AGENT, USER_AGENT)
            .header(name, value)
            .body(Empty::<Bytes>::new())
            .map_err(|e| Failure::Broken(Box::new(e)))?;
        let exchange = async {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            let _connection = AbortOnDrop(tokio::spawn(async move {
                let _ = connection.await;
            }));
            let response = sender.send_request(request).await?;
            Ok::<_, hyper::Error>(read_answer(response).await)
        };
        match tokio::time::timeout_at(read_until, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => Err(Failure::Broken(Box::new(e))),
            Err(_) => Err(no_answer()),
        }
    }
}

const USER_AGENT: &str = concat!("ec2-iid-aws/", env!("CARGO_PKG_VERSION"));

/// Whether an exchange may go better when tried again: a 5xx answer or a failed connection,
/// not an oversized answer.
fn worth_retrying(result: &Result<Answer, Failure>) -> bool {
    match result {
        Ok(answer) => answer.status.is_server_error(),
        Err(Failure::TooLarge { .. }) => false,
        Err(_) => true,
    }
}

/// The status and at most [`MAX_BLOB_LEN`] bytes of the body.
async fn read_answer(response: Response<Incoming>) -> Result<Answer, Failure> {
    let status = response.status();
    let declared = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared.filter(|&len| len > MAX_BLOB_LEN) {
        return Err(Failure::TooLarge { len });
    }
    let mut body = response.into_body();
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Broken(Box::new(e)))?;
        if let Ok(data) = frame.into_data() {
            read.extend_from_slice(&data);
            if read.len() > MAX_BLOB_LEN {
                return Err(Failure::TooLarge { len: read.len() });
            }
        }
    }
    Ok(Answer { status, body: read })
}

/// Ends the connection's task when the request is done or dropped (a timeout): nothing is
/// left waiting on a silent IMDS.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An answer IMDS sent.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

/// An attempt that got no answer to sort by status.
#[derive(Debug)]
enum Failure {
    /// The connection broke, or the answer was not HTTP.
    Broken(Source),
    /// No connection: refused, no route, or no answer to the connect.
    Connect(Source),
    /// Connected, but no answer within the read timeout (or the request's timeout).
    NoAnswer(NoAnswer),
    /// The body is over [`MAX_BLOB_LEN`].
    TooLarge { len: usize },
}

impl Failure {
    fn into_get_error(self, path: &'static str) -> ImdsError {
        match self {
            Self::Broken(source) => ImdsError::Other { path, source },
            Self::Connect(source) => ImdsError::Unreachable { source },
            Self::NoAnswer(e) => ImdsError::Timeout {
                path,
                source: Box::new(e),
            },
            Self::TooLarge { len } => ImdsError::TooLarge {
                path,
                len,
                max: MAX_BLOB_LEN,
            },
        }
    }

    fn into_token_error(self) -> ImdsError {
        match self {
            Self::Connect(source) => ImdsError::Unreachable { source },
            Self::Broken(source) => ImdsError::TokenUnavailable {
                status: None,
                source,
            },
            Self::NoAnswer(e) => ImdsError::TokenUnavailable {
                status: None,
                source: Box::new(e),
            },
            Self::TooLarge { len } => ImdsError::TokenUnavailable {
                status: None,
                source: format!("a {len}-byte answer is not a token").into(),
            },
        }
    }
}

/// A wait that ran out: the `source` of a timeout.
#[derive(Debug)]
struct NoAnswer {
    what: &'static str,
    after: Duration,
}

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no {} from IMDS within {:?}", self.what, self.after)
    }
}

impl StdError for NoAnswer {}

impl Default for ImdsFetcher {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `AWS_EC2_METADATA_DISABLED` is `true` (any case), as the AWS SDKs read it.
fn disabled_by_env() -> bool {
    std::env::var(DISABLED_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The endpoint the AWS SDKs would use: `AWS_EC2_METADATA_SERVICE_ENDPOINT` or the profile's
/// `ec2_metadata_service_endpoint`, else the mode (`AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` or
/// the profile's `ec2_metadata_service_endpoint_mode`: `IPv4`, `IPv6`), else IPv4.
fn configured_endpoint() -> Result<Endpoint, String> {
    let profile = ProfileFile::read();
    let setting = |(env, key): (&str, &str)| std::env::var(env).ok().or_else(|| profile.get(key));
    if let Some(url) = setting(ENDPOINT_ENV) {
        return Endpoint::parse(&url).map_err(|e| format!("{} {e}", ENDPOINT_ENV.0));
    }
    match setting(ENDPOINT_MODE_ENV) {
        None => Endpoint::parse("http://169.254.169.254"),
        Some(mode) if mode.eq_ignore_ascii_case("ipv4") => {
            Endpoint::parse("http://169.254.169.254")
        }
        Some(mode) if mode.eq_ignore_ascii_case("ipv6") => {
            Endpoint::parse("http://[fd00:ec2::254]")
        }
        Some(mode) => Err(format!(
            "{} {:?}: IPv4 or IPv6 expected",
            ENDPOINT_MODE_ENV.0,
            mode.chars().take(32).collect::<String>()
        )),
    }
}

impl Endpoint {
    /// An `http://host[:port][/path]` URL.
    fn parse(url: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "{:?}: a URL such as http://169.254.169.254 expected",
                url.chars().take(128).collect::<String>()
            )
        };
        let uri: Uri = url.parse().map_err(|_| invalid())?;
        if uri.scheme_str() != Some("http") {
            return Err(invalid());
        }
        let authority = uri.authority().ok_or_else(invalid)?;
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

/// The settings of one profile of the AWS config file (`AWS_CONFIG_FILE`, else
/// `~/.aws/config`; the profile `AWS_PROFILE`, else `default`), for the IMDS endpoint keys.
#[derive(Debug, Default)]
struct ProfileFile {
    settings: Vec<(String, String)>,
}

impl ProfileFile {
    /// The config file is small and local; one that cannot be read counts as empty, as for the
    /// AWS SDKs.
    fn read() -> Self {
        let path = std::env::var_os("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".aws/config"))
            });
        let text = path
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
        Self::parse(&text, &profile)
    }

    fn parse(text: &str, profile: &str) -> Self {
        let mut settings = Vec::new();
        let mut inside = false;
        for line in text.lines().map(str::trim) {
            if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let name = section.trim();
                let name = name.strip_prefix("profile ").map_or(name, str::trim);
                inside = name == profile;
            } else if inside && let Some((key, value)) = line.split_once('=') {
                settings.push((key.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Self { settings }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
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
    /// The IMDS endpoint, e.g. `http://169.254.169.254` or an emulator's URL (`http://` only).
    /// Default: from `AWS_EC2_METADATA_SERVICE_ENDPOINT` / `_MODE` (or `~/.aws/config`), else
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

    /// Attempts per request, the first included; 5xx and 401 answers, timeouts and broken
    /// connections are retried after 100 ms, doubling up to 1 s. Default:
    /// [`DEFAULT_MAX_ATTEMPTS`].
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// The fetcher. No request is made yet.
    ///
    /// # Errors
    /// [`ImdsConfigError::InvalidEndpoint`] for an endpoint that is not an `http://` URL,
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
        let endpoint = match &self.endpoint {
            Some(url) => {
                Ok(
                    Endpoint::parse(url).map_err(|_| ImdsConfigError::InvalidEndpoint {
                        endpoint: url.clone(),
                    })?,
                )
            }
            None => configured_endpoint(),
        };
        Ok(ImdsFetcher::with(self, endpoint))
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
/// Variants with a `source` keep what went wrong underneath (the I/O or HTTP error, the wait
/// that ran out) as the [`source`](core::error::Error::source).
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
        /// What is wrong with it.
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
    /// Any other failure: a response that is not UTF-8, a connection that broke or did not
    /// speak HTTP.
    #[non_exhaustive]
    #[error("fetching {path} from IMDS failed")]
    Other {
        /// The path requested.
        path: &'static str,
        /// The HTTP or UTF-8 error.
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
        /// The wait that ran out.
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
        /// The wait that ran out, the broken connection, or the refusal.
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
        /// The connect's I/O error, or the wait that ran out.
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
}

/// What happened to the token request, for Display.
fn token_failure(status: Option<u16>) -> String {
    match status {
        Some(200) => "the token request's answer held no token".to_owned(),
        Some(status) => format!("the token request was refused with HTTP {status}"),
        None => "the token request got no answer".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

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
    fn endpoints_are_http_urls() {
        let parsed = Endpoint::parse("http://[fd00:ec2::254]").unwrap();
        assert_eq!(
            (parsed.host.as_str(), parsed.port, parsed.authority.as_str()),
            ("fd00:ec2::254", 80, "[fd00:ec2::254]")
        );
        let parsed = Endpoint::parse("http://127.0.0.1:1338/prefix/").unwrap();
        assert_eq!((parsed.port, parsed.prefix.as_str()), (1338, "/prefix"));
        for bad in [
            "https://169.254.169.254",
            "169.254.169.254",
            "http://",
            "not a uri",
        ] {
            let err = ImdsFetcher::builder().endpoint(bad).build().unwrap_err();
            assert!(
                matches!(err, ImdsConfigError::InvalidEndpoint { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_profile_file_gives_its_own_profiles_settings() {
        let text = "\
[default]
ec2_metadata_service_endpoint_mode = IPv6
[profile ops]
ec2_metadata_service_endpoint=http://127.0.0.1:9
# a comment
";
        let default = ProfileFile::parse(text, "default");
        let (mode, endpoint) = (ENDPOINT_MODE_ENV.1, ENDPOINT_ENV.1);
        assert_eq!(default.get(mode).as_deref(), Some("IPv6"));
        assert_eq!(default.get(endpoint), None);
        let ops = ProfileFile::parse(text, "ops");
        assert_eq!(ops.get(endpoint).as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(ops.get(mode), None);
        assert!(ProfileFile::parse(text, "missing").settings.is_empty());
    }

    /// A server on loopback that answers every request with `answer` (raw HTTP); the fetcher
    /// of it (2 attempts) and the count of token PUTs it got.
    async fn raw_server(answer: &'static [u8]) -> (ImdsFetcher, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let puts = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&puts);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0; 1024];
                let _ = stream.read(&mut request).await;
                if request.starts_with(b"PUT ") {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                let _ = stream.write_all(answer).await;
            }
        });
        let fetcher = ImdsFetcher::builder()
            .endpoint(url)
            .max_attempts(2)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        (fetcher, puts)
    }

    #[tokio::test]
    async fn a_token_answer_without_a_token_is_token_unavailable() {
        let (fetcher, _) = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        let err = fetcher.fetch(Format::Rsa2048).await.unwrap_err();
        assert!(
            matches!(
                err,
                ImdsError::TokenUnavailable {
                    status: Some(200),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(
            "no IMDS session token (the token request's answer held no token): inside a container"
        ));
    }

    #[tokio::test]
    async fn a_connection_that_does_not_speak_http_is_token_unavailable() {
        let (fetcher, puts) = raw_server(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        let err = fetcher.fetch(Format::Rsa2048).await.unwrap_err();
        assert!(
            matches!(err, ImdsError::TokenUnavailable { status: None, .. }),
            "{err:?}"
        );
        assert!(core::error::Error::source(&err).is_some());
        // Retried: a broken answer may be a hiccup.
        assert_eq!(puts.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn an_oversized_token_answer_is_token_unavailable() {
        const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 99999999\r\n\r\n";
        let (fetcher, _) = raw_server(HEAD).await;
        let err = fetcher.fetch(Format::Pkcs7).await.unwrap_err();
        assert!(
            matches!(err, ImdsError::TokenUnavailable { status: None, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_token_is_asked_for_once_by_concurrent_fetches() {
        // The same server answers the token PUT and then the GETs with one body: a token "t".
        let (fetcher, puts) = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nt").await;
        let (a, b) = tokio::join!(fetcher.fetch(Format::Rsa2048), fetcher.fetch(Format::Pkcs7));
        assert_eq!(a.unwrap().input(), SignedInput::Rsa2048(b"t"));
        assert_eq!(b.unwrap().input(), SignedInput::Pkcs7(b"t"));
        assert_eq!(puts.load(Ordering::Relaxed), 1);
        let cached = fetcher.inner.token.lock().await;
        let token = cached.as_ref().unwrap();
        assert_eq!(token.value, "t");
        // The token stays secret in logs.
        assert!(!format!("{fetcher:?}").contains("\"t\""));
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
