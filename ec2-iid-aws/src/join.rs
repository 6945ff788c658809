//! The instance side of a join: fetch the signed identity document from IMDS and `POST` it to
//! a join server's `/join`, retrying what may pass later within a deadline.
//!
//! The server is `ec2-iid serve` (ec2-iid-cli): the body is the `/rsa2048` (or
//! `/pkcs7`) text as IMDS serves it, and it answers
//!
//! * 200 `{"host_id": ..., "matched_rule": N}`: joined ([`Joined`]);
//! * 400, 403 `{"error": KIND, "request_id": ID}`, or 413: refused, never retried
//!   ([`JoinError::Refused`]);
//! * 503, optionally with `Retry-After` (whole seconds): retried.
//!
//! Connection errors and 503 answers are retried with full-jitter exponential backoff
//! ([`INITIAL_BACKOFF`] doubling up to [`MAX_BACKOFF`], or the server's `Retry-After`) until
//! the deadline ([`DEFAULT_DEADLINE`]) is spent (a `Retry-After` beyond it ends the join at
//! once): then [`JoinError::GaveUp`]. Any other status
//! is [`JoinError::UnexpectedStatus`]. A request whose answer is lost after the server let the
//! instance join is retried too, and the retry is refused as `already_joined`.
//!
//! `/signature` is not supported: the server takes one text, and the `/document` +
//! `/signature` pair has no agreed body yet ([`JoinConfigError::UnsupportedFormat`]).
//!
//! `https://` servers are checked against the system's root certificates (as
//! `rustls-native-certs` finds them) and any [`JoinClientBuilder::ca_certificates_pem`]; a
//! certificate that does not verify is [`JoinError::Tls`], not retried.
//!
//! ```no_run
//! use ec2_iid_aws::join::JoinClient;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = JoinClient::builder("https://join.internal:8443").build()?;
//! let joined = client.join().await?;
//! println!("{}", joined.body());
//! # Ok(())
//! # }
//! ```

use core::time::Duration;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ec2_iid::{Format, SignedInput};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::imds::{ImdsError, ImdsFetcher};

/// The default time a join may take, IMDS and retries included: 60 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// The first backoff's upper bound: 200 ms.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);

/// The largest backoff bound: 5 s.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The least time left for an attempt to be worth making: 100 ms.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// The largest server answer read: 64 KiB (the server's answers are a few dozen bytes).
const MAX_ANSWER_LEN: usize = 64 * 1024;

/// The most characters of a server's answer quoted in a message.
const MAX_EXCERPT_CHARS: usize = 200;

/// The longest refusal kind kept from a server's answer.
const MAX_KIND_LEN: usize = 64;

/// Fetches this instance's identity document and sends it to a join server.
#[derive(Clone, Debug)]
pub struct JoinClient {
    url: Uri,
    fetcher: ImdsFetcher,
    format: Format,
    deadline: Duration,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// Settings of a [`JoinClient`]; all but the server have a default.
#[derive(Clone, Debug)]
pub struct JoinClientBuilder {
    server: String,
    fetcher: Option<ImdsFetcher>,
    format: Format,
    deadline: Duration,
    ca_certificates: Vec<CertificateDer<'static>>,
    ca_error: Option<JoinConfigError>,
}

impl JoinClient {
    /// A builder for the join server at `server` (e.g. `http://join.internal:8080`; the
    /// client posts to `{server}/join`).
    #[must_use]
    pub fn builder(server: impl Into<String>) -> JoinClientBuilder {
        JoinClientBuilder {
            server: server.into(),
            fetcher: None,
            format: Format::Rsa2048,
            deadline: DEFAULT_DEADLINE,
            ca_certificates: Vec::new(),
            ca_error: None,
        }
    }

    /// The URL posted to: `{server}/join`.
    #[must_use]
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// Fetches the document from IMDS and posts it, retrying 503 answers and connection
    /// errors until the deadline.
    ///
    /// # Errors
    /// [`JoinError::Imds`] if the document could not be fetched, [`JoinError::Refused`] for a
    /// 400, 403 or 413 answer, [`JoinError::UnexpectedStatus`] for another status than 200
    /// and 503, [`JoinError::Tls`] when an `https://` server's certificate does not verify,
    /// [`JoinError::GaveUp`] when the deadline passed.
    pub async fn join(&self) -> Result<Joined, JoinError> {
        let started = Instant::now();
        let gave_up = |attempts, last| JoinError::GaveUp {
            url: self.url.to_string(),
            attempts,
            deadline: self.deadline,
            last,
        };
        let signed = tokio::time::timeout(self.deadline, self.fetcher.fetch(self.format))
            .await
            .map_err(|_| gave_up(0, "fetching the document from IMDS took too long".into()))??;
        let body = match signed.input() {
            SignedInput::Rsa2048(text) | SignedInput::Pkcs7(text) => Bytes::copy_from_slice(text),
            // Refused by the builder; `SignedInput` is non-exhaustive.
            _ => return Err(JoinConfigError::UnsupportedFormat.into()),
        };
        let mut backoff = Backoff::new();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let remaining = self.deadline.saturating_sub(started.elapsed());
            let attempt = tokio::time::timeout(remaining, self.post(body.clone())).await;
            let (last, retry_after) = match attempt {
                Err(_) => return Err(gave_up(attempts, "no answer in time".into())),
                Ok(Ok(Answer::Joined(joined))) => return Ok(joined),
                Ok(Ok(Answer::Final(err))) => return Err(err),
                Ok(Ok(Answer::Unavailable(retry_after))) => {
                    ("HTTP 503 Service Unavailable".to_owned(), retry_after)
                }
                Ok(Err(last)) => (last, None),
            };
            let remaining = self.deadline.saturating_sub(started.elapsed());
            // The server's Retry-After is honoured, so one beyond the deadline ends the join;
            // our own backoff is cut at the deadline, and an attempt needs MIN_ATTEMPT left.
            let wait = match retry_after {
                Some(wait) if wait >= remaining => return Err(gave_up(attempts, last)),
                Some(wait) => wait,
                None => backoff.next().min(remaining),
            };
            tokio::time::sleep(wait).await;
            if self.deadline.saturating_sub(started.elapsed()) < MIN_ATTEMPT {
                return Err(gave_up(attempts, last));
            }
        }
    }

    /// One `POST`: the answer sorted, or the transport error's text (retried).
    async fn post(&self, body: Bytes) -> Result<Answer, String> {
        match self.send(body).await {
            Err(Failure::Tls(reason)) => Ok(Answer::Final(JoinError::Tls {
                url: self.url.to_string(),
                reason,
            })),
            Err(Failure::Transport(text)) => Err(text),
            Ok(answer) => Ok(answer),
        }
    }

    async fn send(&self, body: Bytes) -> Result<Answer, Failure> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Full::new(body))
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let response = self.http.request(request).await.map_err(|e| {
            if chain(&e).any(is_tls_error) {
                Failure::Tls(error_chain(&e))
            } else {
                Failure::Transport(error_chain(&e))
            }
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer = Limited::new(response.into_body(), MAX_ANSWER_LEN)
            .collect()
            .await
            .map_err(|e| Failure::Transport(format!("reading the answer: {e}")))?
            .to_bytes();
        let text = String::from_utf8_lossy(&answer).trim_end().to_owned();
        Ok(match status {
            StatusCode::OK => Answer::Joined(Joined::new(text)),
            StatusCode::SERVICE_UNAVAILABLE => Answer::Unavailable(retry_after),
            StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN | StatusCode::PAYLOAD_TOO_LARGE => {
                Answer::Final(JoinError::Refused {
                    status: status.as_u16(),
                    kind: refusal_kind(status, &text),
                    body: text,
                })
            }
            _ => Answer::Final(JoinError::UnexpectedStatus {
                status: status.as_u16(),
                body: text,
            }),
        })
    }
}

/// Why a request got no answer.
enum Failure {
    /// The TLS handshake failed (the server's certificate): retrying would not help.
    Tls(String),
    /// Anything else: retried.
    Transport(String),
}

/// Whether `err` is rustls's, directly or inside `io::Error`s (tokio-rustls wraps it in one,
/// hyper-rustls in another; `io::Error::source` skips the wrapped error, `get_ref` does not).
fn is_tls_error(err: &(dyn core::error::Error + 'static)) -> bool {
    let mut err = err;
    loop {
        if err.is::<rustls::Error>() {
            return true;
        }
        match err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => err = inner,
            None => return false,
        }
    }
}

/// `err` and its sources, outermost first.
fn chain<'a>(
    err: &'a (dyn core::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn core::error::Error + 'static)> {
    core::iter::successors(Some(err), |&e| e.source())
}

/// What one answer means for the loop.
enum Answer {
    Joined(Joined),
    Final(JoinError),
    Unavailable(Option<Duration>),
}

/// The refusal's kind: the answer's `error` field if it is a short identifier, else one named
/// after the status.
fn refusal_kind(status: StatusCode, text: &str) -> String {
    let from_body = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .filter(|kind| {
            kind.len() <= MAX_KIND_LEN
                && !kind.is_empty()
                && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
    from_body.unwrap_or_else(|| {
        match status {
            StatusCode::BAD_REQUEST => "malformed",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            _ => "refused",
        }
        .to_owned()
    })
}

/// At most [`MAX_EXCERPT_CHARS`] characters of a server's answer, control characters escaped:
/// for messages, which must not carry a whole page or terminal escapes.
fn excerpt(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_EXCERPT_CHARS)
        .flat_map(|c| {
            let escaped = c
                .is_control()
                .then(|| c.escape_default().collect::<String>());
            escaped
                .unwrap_or_else(|| c.to_string())
                .chars()
                .collect::<Vec<_>>()
        })
        .collect();
    if text.chars().nth(MAX_EXCERPT_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

/// `err` and its sources, joined with `: `.
fn error_chain(err: &(dyn core::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl JoinClientBuilder {
    /// The IMDS fetcher (endpoint, timeouts). Default: [`ImdsFetcher::new`].
    #[must_use]
    pub fn fetcher(mut self, fetcher: ImdsFetcher) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// The format fetched and sent: [`Format::Rsa2048`] (the default) or [`Format::Pkcs7`].
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Also trust the certificates of `pem` (one or more `CERTIFICATE` blocks) for
    /// `https://` servers, e.g. a private CA's. Default: the system's roots only.
    #[must_use]
    pub fn ca_certificates_pem(mut self, pem: &[u8]) -> Self {
        let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
        match certs {
            Ok(certs) if !certs.is_empty() => self.ca_certificates.extend(certs),
            Ok(_) | Err(_) => self.ca_error = Some(JoinConfigError::InvalidCaCertificates),
        }
        self
    }

    /// The time the whole join may take, the IMDS fetch and the retries included. Default:
    /// [`DEFAULT_DEADLINE`].
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The client. No request is made yet.
    ///
    /// # Errors
    /// [`JoinConfigError::InvalidServer`] for a server that is not an `http://` or
    /// `https://` URL, [`JoinConfigError::UnsupportedFormat`] for another format than
    /// `rsa2048` and `pkcs7`, [`JoinConfigError::InvalidCaCertificates`] for PEM without a
    /// valid certificate, [`JoinConfigError::NoRootCertificates`] for an `https://` server
    /// when no certificate is trusted.
    pub fn build(self) -> Result<JoinClient, JoinConfigError> {
        if !matches!(self.format, Format::Rsa2048 | Format::Pkcs7) {
            return Err(JoinConfigError::UnsupportedFormat);
        }
        if let Some(err) = self.ca_error {
            return Err(err);
        }
        let invalid = || JoinConfigError::InvalidServer {
            server: self.server.clone(),
        };
        let base: Uri = self.server.parse().map_err(|_| invalid())?;
        let https = match base.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid()),
        };
        if base.authority().is_none() || base.query().is_some() {
            return Err(invalid());
        }
        let url = format!("{}/join", self.server.trim_end_matches('/'))
            .parse()
            .map_err(|_| invalid())?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(MAX_BACKOFF));
        connector.enforce_http(false);
        let tls = tls_config(https, self.ca_certificates)?;
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(JoinClient {
            url,
            fetcher: self.fetcher.unwrap_or_default(),
            format: self.format,
            deadline: self.deadline,
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }
}

/// The TLS settings: the system's roots (looked up only for an `https://` server) and `extra`.
fn tls_config(
    https: bool,
    extra: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, JoinConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    if https {
        // Unreadable system certificates are skipped: `extra` may be all that is needed.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    for cert in extra {
        roots
            .add(cert)
            .map_err(|_| JoinConfigError::InvalidCaCertificates)?;
    }
    if https && roots.is_empty() {
        return Err(JoinConfigError::NoRootCertificates);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| JoinConfigError::Tls {
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The server let the instance join: its 200 answer.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Joined {
    body: String,
    host_id: Option<String>,
    matched_rule: Option<u64>,
}

impl Joined {
    fn new(body: String) -> Self {
        let value = serde_json::from_str::<serde_json::Value>(&body).ok();
        let field = |name: &str| value.as_ref().and_then(|v| v.get(name)).cloned();
        Self {
            host_id: field("host_id").and_then(|v| v.as_str().map(str::to_owned)),
            matched_rule: field("matched_rule").and_then(|v| v.as_u64()),
            body,
        }
    }

    /// The answer as the server sent it (JSON; trailing whitespace removed).
    #[must_use]
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The answer's `host_id` (`<account>-<instance>`), if it has one.
    #[must_use]
    pub fn host_id(&self) -> Option<&str> {
        self.host_id.as_deref()
    }

    /// The answer's `matched_rule` (the index of the token's rule), if it has one.
    #[must_use]
    pub fn matched_rule(&self) -> Option<u64> {
        self.matched_rule
    }
}

/// A [`JoinClientBuilder`] setting is invalid.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum JoinConfigError {
    /// The server is not an `http://` or `https://host[:port][/path]` URL.
    #[non_exhaustive]
    #[error(
        "invalid join server {server:?}: an http:// or https:// URL such as \
         https://join.internal:8443 expected"
    )]
    InvalidServer {
        /// The server as given.
        server: String,
    },
    /// `/signature` (or a newer format): the join body is the `/rsa2048` or `/pkcs7` text.
    #[error("join sends the /rsa2048 or /pkcs7 text: use format rsa2048 or pkcs7")]
    UnsupportedFormat,
    /// The CA certificates given are not PEM `CERTIFICATE` blocks, or none is valid.
    #[error("the CA certificates are not valid PEM certificates")]
    InvalidCaCertificates,
    /// An `https://` server, and no root certificate: none on the system, none given.
    #[error(
        "no root certificates to check the join server's certificate: install the system's \
         CA certificates (e.g. the ca-certificates package) or pass the server's CA"
    )]
    NoRootCertificates,
    /// rustls refused the TLS settings.
    #[non_exhaustive]
    #[error("TLS settings refused: {reason}")]
    Tls {
        /// rustls's message.
        reason: String,
    },
}

/// A join did not succeed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The settings are invalid (see [`JoinConfigError`]).
    #[error(transparent)]
    Config(#[from] JoinConfigError),
    /// The identity document could not be fetched from IMDS; the message says what to check.
    #[error("fetching the identity document: {0}")]
    Imds(#[from] ImdsError),
    /// The server refused the document (400, 403 or 413); retrying would not help.
    #[non_exhaustive]
    #[error("refused: {kind} (HTTP {status})")]
    Refused {
        /// 400, 403 or 413.
        status: u16,
        /// The answer's `error` (e.g. `no_rule_matched`, `already_joined`), or `malformed`,
        /// `refused`, `too_large` after the status when it has none.
        kind: String,
        /// The answer as sent (at most 64 KiB).
        body: String,
    },
    /// The server answered another status than 200, 400, 403, 413 and 503 (e.g. 500 for its
    /// own configuration error).
    #[non_exhaustive]
    #[error("the join server answered HTTP {status}: {}", excerpt(body))]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
        /// The answer as sent (at most 64 KiB; the message quotes its first 200 characters).
        body: String,
    },
    /// The TLS handshake with an `https://` server failed, e.g. its certificate does not
    /// verify against the trusted roots; not retried.
    #[non_exhaustive]
    #[error("TLS with {url} failed: {reason}: check the server's certificate, or trust its CA")]
    Tls {
        /// The URL posted to.
        url: String,
        /// What rustls said.
        reason: String,
    },
    /// The deadline passed while the server was unreachable or unavailable.
    #[non_exhaustive]
    #[error("gave up on {url} after {attempts} attempt(s) within {deadline:?}: {last}")]
    GaveUp {
        /// The URL posted to.
        url: String,
        /// The requests made.
        attempts: u32,
        /// The deadline.
        deadline: Duration,
        /// What the last attempt got.
        last: String,
    },
}

/// Full-jitter exponential backoff: the n-th wait is uniform in `[0, min(MAX, INITIAL·2ⁿ)]`.
#[derive(Debug)]
struct Backoff {
    bound: Duration,
    state: u64,
}

impl Backoff {
    /// Seeded from the clock and the process id (a tiny xorshift: jitter, not secrets).
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = (u64::from(nanos) << 32) ^ u64::from(std::process::id());
        Self {
            bound: INITIAL_BACKOFF,
            state: seed | 1,
        }
    }

    fn next(&mut self) -> Duration {
        // xorshift64 (Marsaglia).
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let bound_ms = u64::try_from(self.bound.as_millis()).unwrap_or(u64::MAX);
        let wait = Duration::from_millis(self.state % bound_ms.saturating_add(1));
        self.bound = (self.bound * 2).min(MAX_BACKOFF);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_doubles_to_the_cap() {
        let mut backoff = Backoff::new();
        let mut bound = INITIAL_BACKOFF;
        for _ in 0..10 {
            assert!(backoff.next() <= bound);
            bound = (bound * 2).min(MAX_BACKOFF);
        }
        assert_eq!(backoff.bound, MAX_BACKOFF);
    }

    #[test]
    fn builder_refuses_signature_and_non_http_servers() {
        let err = JoinClient::builder("http://127.0.0.1:1")
            .format(Format::Signature)
            .build()
            .unwrap_err();
        assert_eq!(err, JoinConfigError::UnsupportedFormat);
        for server in ["ftp://join.internal", "join.internal", "http://h/?q=1", ""] {
            let err = JoinClient::builder(server).build().unwrap_err();
            assert!(
                matches!(err, JoinConfigError::InvalidServer { .. }),
                "{server}"
            );
        }
        let client = JoinClient::builder("http://127.0.0.1:8080/").build();
        assert_eq!(
            client.map(|c| c.url().to_string()).ok().as_deref(),
            Some("http://127.0.0.1:8080/join")
        );
    }

    #[test]
    fn excerpts_are_bounded_and_escaped() {
        assert_eq!(excerpt("oops\u{1b}[2J\n"), "oops\\u{1b}[2J\\n");
        let long = "x".repeat(MAX_EXCERPT_CHARS + 1);
        assert_eq!(excerpt(&long), format!("{}...", &long[..MAX_EXCERPT_CHARS]));
        assert_eq!(excerpt(&long[1..]), long[1..]);
    }

    #[test]
    fn ca_certificates_must_be_pem_certificates() {
        let build = |pem: &[u8]| {
            JoinClient::builder("https://127.0.0.1:1")
                .ca_certificates_pem(pem)
                .build()
                .map(|_| ())
        };
        let err = Err(JoinConfigError::InvalidCaCertificates);
        assert_eq!(build(b""), err);
        assert_eq!(build(b"-----BEGIN CERTIFICATE-----\nnot base64\n"), err);
        let ca = include_bytes!("../tests/data/tls/ca.pem");
        assert_eq!(build(ca), Ok(()));
    }

    #[test]
    fn refusal_kinds() {
        let kind = |status, text| refusal_kind(status, text);
        let body = r#"{"error":"no_rule_matched","request_id":"1-2"}"#;
        assert_eq!(kind(StatusCode::FORBIDDEN, body), "no_rule_matched");
        assert_eq!(kind(StatusCode::FORBIDDEN, r#"{"error":"a b"}"#), "refused");
        assert_eq!(kind(StatusCode::BAD_REQUEST, "nope"), "malformed");
        assert_eq!(kind(StatusCode::PAYLOAD_TOO_LARGE, ""), "too_large");
    }
}
