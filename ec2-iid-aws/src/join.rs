//! The instance side of a join: fetch the signed identity document from IMDS and `POST` it to
//! a join server's `/join`, retrying what may pass later within a deadline.
//!
//! The server is `ec2-iid serve` (ec2-iid-cli): the body is the `/rsa2048` (or
//! `/pkcs7`) text as IMDS serves it, and it answers
//!
//! * 200 `{"host_id": ..., "matched_rule": N}`: joined ([`Joined`]); with a CSR
//!   ([`JoinClientBuilder::csr`]) the body is `{"document": TEXT, "csr": PEM}` and the answer
//!   adds `grant`, `spiffe_id`, `serial`, `not_after`, `certificate` and `bundle`;
//! * 400, 403 `{"error": KIND, "request_id": ID}`, or 413: refused, never retried
//!   ([`JoinError::Refused`]);
//! * 503, optionally with `Retry-After` (whole seconds): retried.
//!
//! The status decides: at most [`MAX_ANSWER_LEN`] bytes of an answer's body are read (within
//! [`ANSWER_READ_TIMEOUT`]), so an oversized, slow or cut body does not turn a refusal into a
//! retry. Connection errors and 503 answers are retried, never sooner than [`MIN_BACKOFF`]
//! after the last attempt (whatever `Retry-After` says: `Retry-After: 0` must not become a
//! flood): the pause is the server's `Retry-After` or [`MIN_BACKOFF`] plus full-jitter
//! exponential backoff ([`INITIAL_BACKOFF`] doubling up to [`MAX_BACKOFF`]), whichever is
//! longer. Retries end at the deadline ([`DEFAULT_DEADLINE`]; a `Retry-After` beyond it ends
//! the join at once) or after [`DEFAULT_MAX_ATTEMPTS`] requests: then [`JoinError::GaveUp`].
//! Any other status is [`JoinError::UnexpectedStatus`], not retried. A request whose answer
//! is lost after the server let the instance join is retried too, and the retry is refused
//! as `already_joined`.
//!
//! `/signature` is not supported: the server takes one text, and the `/document` +
//! `/signature` pair has no agreed body yet ([`JoinConfigError::UnsupportedFormat`]).
//!
//! `https://` servers are checked against the system's root certificates (as
//! `rustls-native-certs` finds them) and any [`JoinClientBuilder::ca_certificates_pem`]; a
//! certificate that does not verify is [`JoinError::Tls`], not retried. Plain `http://` is
//! refused ([`JoinConfigError::InsecureHttp`]) unless the server is on this host (`localhost`,
//! `127.0.0.0/8`, `::1`) or [`JoinClientBuilder::allow_insecure_http`] says otherwise: the
//! document is a bearer proof until the server has used it, so anyone on the path could read
//! it and race it to the server.
//!
//! What a server sends is untrusted: pass it through [`printable`] before printing or logging
//! it ([`JoinError`]'s messages already do).
//!
//! ```no_run
//! use ec2_iid_aws::join::{JoinClient, printable};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = JoinClient::builder("https://join.internal:8443").build()?;
//! let joined = client.join().await?;
//! println!("{}", printable(joined.body()));
//! # Ok(())
//! # }
//! ```

use core::time::Duration;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use ec2_iid::{Format, SignedInput};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::time::Instant;

use crate::imds::{ImdsError, ImdsFetcher};

/// The default time a join may take, IMDS and retries included: 60 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// The default number of requests a join may make: 100 (the deadline usually ends it first).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 100;

/// The least pause between two requests, whatever the server's `Retry-After` says: 250 ms.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);

/// The first jitter's upper bound, added to [`MIN_BACKOFF`]: 200 ms.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);

/// The largest jitter bound: 5 s.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The largest part of a server's answer read: 64 KiB (the server's answers are a few dozen
/// bytes); the rest is dropped, and the status decides.
pub const MAX_ANSWER_LEN: usize = 64 * 1024;

/// The longest an answer's body is waited for once its status is in: 2 s; then the status
/// decides with what came.
pub const ANSWER_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The most characters of a server's text that [`printable`] keeps: 1024.
pub const MAX_PRINTED_CHARS: usize = 1024;

/// The least time left for an attempt to be worth making: 100 ms.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// The longest refusal kind kept from a server's answer.
const MAX_KIND_LEN: usize = 64;

/// Fetches this instance's identity document and sends it to a join server.
#[derive(Clone, Debug)]
pub struct JoinClient {
    url: Uri,
    /// `{server}/renew`.
    renew_url: Uri,
    /// Whether a client certificate is presented (for `renew`).
    has_identity: bool,
    fetcher: ImdsFetcher,
    format: Format,
    deadline: Duration,
    max_attempts: u32,
    insecure_http: bool,
    csr: Option<String>,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// Settings of a [`JoinClient`]; all but the server have a default.
#[derive(Clone, Debug)]
pub struct JoinClientBuilder {
    server: String,
    fetcher: Option<ImdsFetcher>,
    format: Format,
    deadline: Duration,
    max_attempts: u32,
    allow_insecure_http: bool,
    ca_certificates: Vec<CertificateDer<'static>>,
    ca_error: Option<JoinConfigError>,
    csr: Option<String>,
    /// The certificate chain and key presented to the server (`POST /renew`); the key's
    /// `Debug` shows no key material.
    identity: Option<Arc<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>>,
}

impl JoinClient {
    /// A builder for the join server at `server` (e.g. `https://join.internal:8443`; the
    /// client posts to `{server}/join`).
    #[must_use]
    pub fn builder(server: impl Into<String>) -> JoinClientBuilder {
        JoinClientBuilder {
            server: server.into(),
            fetcher: None,
            format: Format::Rsa2048,
            deadline: DEFAULT_DEADLINE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            allow_insecure_http: false,
            ca_certificates: Vec::new(),
            ca_error: None,
            csr: None,
            identity: None,
        }
    }

    /// The URL posted to: `{server}/join`.
    #[must_use]
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// Whether the document goes over plain `http://` to another host than this one, as
    /// [`JoinClientBuilder::allow_insecure_http`] allowed: worth a warning.
    #[must_use]
    pub fn is_insecure_http(&self) -> bool {
        self.insecure_http
    }

    /// Fetches the document from IMDS and posts it, retrying 503 answers and connection
    /// errors until the deadline or the last allowed attempt.
    ///
    /// # Errors
    /// [`JoinError::Imds`] if the document could not be fetched, [`JoinError::Refused`] for a
    /// 400, 403 or 413 answer, [`JoinError::UnexpectedStatus`] for another status than 200
    /// and 503, [`JoinError::Tls`] when an `https://` server's certificate does not verify,
    /// [`JoinError::GaveUp`] when the deadline passed or no attempt is left.
    pub async fn join(&self) -> Result<Joined, JoinError> {
        let until = Instant::now() + self.deadline;
        let gave_up = |attempts, last| JoinError::GaveUp {
            url: self.url.to_string(),
            attempts,
            deadline: self.deadline,
            last,
        };
        let signed = tokio::time::timeout_at(until, self.fetcher.fetch(self.format))
            .await
            .map_err(|_| gave_up(0, "fetching the document from IMDS took too long".into()))??;
        let document = match signed.input() {
            SignedInput::Rsa2048(text) | SignedInput::Pkcs7(text) => text,
            // Refused by the builder; `SignedInput` is non-exhaustive.
            _ => return Err(JoinConfigError::UnsupportedFormat.into()),
        };
        // The same body on every attempt: with a CSR, a retry is the same requester.
        let body = match &self.csr {
            None => Bytes::copy_from_slice(document),
            Some(csr) => {
                // IMDS's text is base64 or PEM (ASCII); anything else the server refuses.
                let document = String::from_utf8_lossy(document);
                let json = serde_json::json!({ "document": document, "csr": csr });
                Bytes::from(json.to_string())
            }
        };
        self.send(&self.url, body, until).await
    }

    /// Renews the certificate this client presents ([`JoinClientBuilder::client_certificate`])
    /// for the key of its CSR ([`JoinClientBuilder::csr`]): posts `{"csr"}` to
    /// `{server}/renew` over mutual TLS, retrying as [`join`](Self::join) does. No identity
    /// document is fetched.
    ///
    /// # Errors
    /// [`JoinConfigError::RenewNeedsCertificateAndCsr`] without both;
    /// [`JoinError::Refused`] for a 400, 401, 403 or 413 answer (e.g. `evicted`: join again
    /// with a new launch); otherwise as [`join`](Self::join).
    pub async fn renew(&self) -> Result<Joined, JoinError> {
        let (Some(csr), true) = (&self.csr, self.has_identity) else {
            return Err(JoinConfigError::RenewNeedsCertificateAndCsr.into());
        };
        let until = Instant::now() + self.deadline;
        let body = Bytes::from(serde_json::json!({ "csr": csr }).to_string());
        self.send(&self.renew_url, body, until).await
    }

    /// Posts `body` to `url` until an answer is final, the deadline `until` passes or no
    /// attempt is left.
    async fn send(&self, url: &Uri, body: Bytes, until: Instant) -> Result<Joined, JoinError> {
        let gave_up = |attempts, last| JoinError::GaveUp {
            url: url.to_string(),
            attempts,
            deadline: self.deadline,
            last,
        };
        let mut backoff = Backoff::new();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (last, retry_after) = match self.post(url, body.clone(), until).await {
                Attempt::Joined(joined) => return Ok(joined),
                Attempt::Final(err) => return Err(err),
                Attempt::TimedOut => return Err(gave_up(attempts, "no answer in time".into())),
                Attempt::Unavailable(retry_after) => {
                    ("HTTP 503 Service Unavailable".to_owned(), retry_after)
                }
                Attempt::Failed(last) => (last, None),
            };
            if attempts >= self.max_attempts {
                let last = format!("{last} (no attempt left: at most {attempts})");
                return Err(gave_up(attempts, last));
            }
            let remaining = until.saturating_duration_since(Instant::now());
            // The server's Retry-After is honoured, so one beyond the deadline ends the join;
            // never sooner than MIN_BACKOFF, whatever it says (`Retry-After: 0` must not
            // become a flood); the pause is cut at the deadline, and an attempt needs
            // MIN_ATTEMPT left.
            let wait = match retry_after {
                Some(wait) if wait >= remaining => return Err(gave_up(attempts, last)),
                Some(wait) => wait.max(backoff.next()),
                None => backoff.next(),
            };
            tokio::time::sleep(wait.min(remaining)).await;
            if until.saturating_duration_since(Instant::now()) < MIN_ATTEMPT {
                return Err(gave_up(attempts, last));
            }
        }
    }

    /// One `POST`, its answer sorted by status. The answer's head must come by `until`; its
    /// body is read up to [`MAX_ANSWER_LEN`] bytes, for at most [`ANSWER_READ_TIMEOUT`].
    async fn post(&self, url: &Uri, body: Bytes, until: Instant) -> Attempt {
        let request = Request::builder()
            .method(Method::POST)
            .uri(url.clone())
            .header(
                header::CONTENT_TYPE,
                if self.csr.is_some() {
                    "application/json"
                } else {
                    "text/plain"
                },
            )
            .body(Full::new(body));
        let request = match request {
            Ok(request) => request,
            Err(e) => return Attempt::Failed(e.to_string()),
        };
        let response = match tokio::time::timeout_at(until, self.http.request(request)).await {
            Err(_) => return Attempt::TimedOut,
            Ok(Err(e)) if chain(&e).any(is_tls_error) => {
                return Attempt::Final(JoinError::Tls {
                    url: url.to_string(),
                    reason: error_chain(&e),
                });
            }
            Ok(Err(e)) => return Attempt::Failed(error_chain(&e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let read_until = until.min(Instant::now() + ANSWER_READ_TIMEOUT);
        let answer = read_prefix(response.into_body(), read_until).await;
        let text = String::from_utf8_lossy(&answer).trim_end().to_owned();
        match status {
            StatusCode::OK => Attempt::Joined(Joined::new(text)),
            StatusCode::SERVICE_UNAVAILABLE => Attempt::Unavailable(retry_after),
            StatusCode::BAD_REQUEST
            | StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN
            | StatusCode::PAYLOAD_TOO_LARGE => Attempt::Final(JoinError::Refused {
                status: status.as_u16(),
                kind: refusal_kind(status, &text),
                body: text,
            }),
            _ => Attempt::Final(JoinError::UnexpectedStatus {
                status: status.as_u16(),
                body: text,
            }),
        }
    }
}

/// The first [`MAX_ANSWER_LEN`] bytes of `body`, or what came of them by `until` or before the
/// body failed: the status decides, the body only says more.
async fn read_prefix(mut body: Incoming, until: Instant) -> Vec<u8> {
    let mut read = Vec::new();
    while read.len() < MAX_ANSWER_LEN {
        let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until, body.frame()).await else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            let room = MAX_ANSWER_LEN.saturating_sub(read.len());
            read.extend_from_slice(data.get(..room).unwrap_or(&data));
        }
    }
    read
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

/// What one attempt means for the loop.
enum Attempt {
    /// 200.
    Joined(Joined),
    /// Not retried: a refusal, another status, a TLS failure.
    Final(JoinError),
    /// 503, with the server's `Retry-After`.
    Unavailable(Option<Duration>),
    /// No answer (connection refused, reset, ...): retried.
    Failed(String),
    /// No answer by the deadline.
    TimedOut,
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

/// `text` from a join server (an answer's body, a refusal's kind, a message quoting it) made
/// safe to print or log: its first [`MAX_PRINTED_CHARS`] characters (then `...`), every
/// control character (C0 including ESC, DEL, C1) written as a `\u00XX` escape, so that no
/// terminal escape sequence gets through, and so are the bidirectional controls (`\u202e`
/// and the like), which would reorder what a reader sees.
///
/// Valid JSON stays valid JSON with the same value unless it is cut: raw control characters
/// can only be whitespace outside its strings (written as spaces) or DEL, C1 and the
/// bidirectional controls inside them (where `\uXXXX` is JSON's own escape).
///
/// ```
/// use ec2_iid_aws::join::printable;
///
/// assert_eq!(printable("\u{1b}[2Jgone"), "\\u001b[2Jgone");
/// assert_eq!(printable("{\"host_id\":\"\u{9b}x\"}\n"), r#"{"host_id":"\u009bx"} "#);
/// ```
#[must_use]
pub fn printable(text: &str) -> String {
    let json = serde_json::from_str::<serde_json::Value>(text).is_ok();
    let mut out = String::with_capacity(text.len().min(MAX_PRINTED_CHARS));
    let mut chars = text.chars();
    for c in chars.by_ref().take(MAX_PRINTED_CHARS) {
        match c {
            '\t' | '\n' | '\r' if json => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    if chars.next().is_some() {
        out.push_str("...");
    }
    out
}

/// Whether `c` changes the direction of the text around it (Unicode's `Bidi_Control`).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `host` (a URL's, IPv6 in brackets or not) is this host: `localhost`, `127.0.0.0/8`,
/// `::1` (or `::ffff:127.x.y.z`).
fn is_loopback(host: &str) -> bool {
    let host = host.strip_prefix('[').unwrap_or(host);
    let host = host.strip_suffix(']').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host.eq_ignore_ascii_case("localhost.")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
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

    /// Ask for a certificate: send `pem`, a PKCS#10 `CERTIFICATE REQUEST` signed by the key the
    /// certificate is for, with the document (`{"document", "csr"}`). The server binds the
    /// join to that key, so a retry with the same CSR is granted again and any other key is
    /// refused; the answer's certificate fields are on [`Joined`]. Default: none (the document
    /// alone).
    #[must_use]
    pub fn csr(mut self, pem: impl Into<String>) -> Self {
        self.csr = Some(pem.into());
        self
    }

    /// Present this certificate chain (PEM, the certificate first) and its key (PEM) to the
    /// server, for [`JoinClient::renew`]: the certificate the server issued at the join or
    /// the last renewal.
    #[must_use]
    pub fn client_certificate(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Self {
        let chain: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(chain_pem).collect();
        match (chain, PrivateKeyDer::from_pem_slice(key_pem)) {
            (Ok(chain), Ok(key)) if !chain.is_empty() => {
                self.identity = Some(Arc::new((chain, key)));
            }
            _ => self.ca_error = Some(JoinConfigError::InvalidClientCertificate),
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

    /// The most requests a join makes (at least 1), for a long deadline. Default:
    /// [`DEFAULT_MAX_ATTEMPTS`].
    #[must_use]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Send the document over plain `http://` to another host than this one (`localhost`,
    /// `127.0.0.0/8`, `::1`), where anyone on the path can read it and race it to the server.
    /// Default: `false`, and [`build`](Self::build) refuses such a server
    /// ([`JoinConfigError::InsecureHttp`]); [`JoinClient::is_insecure_http`] then says to warn.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The client. No request is made yet.
    ///
    /// # Errors
    /// [`JoinConfigError::InvalidServer`] for a server that is not an `http://` or
    /// `https://` URL, [`JoinConfigError::UnsupportedFormat`] for another format than
    /// `rsa2048` and `pkcs7`, [`JoinConfigError::InvalidCaCertificates`] for PEM without a
    /// valid certificate, [`JoinConfigError::NoRootCertificates`] for an `https://` server
    /// when no certificate is trusted, [`JoinConfigError::InsecureHttp`] for an `http://`
    /// server on another host unless [`allow_insecure_http`](Self::allow_insecure_http).
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
        let insecure_http = !https && !base.host().is_some_and(is_loopback);
        if insecure_http && !self.allow_insecure_http {
            return Err(JoinConfigError::InsecureHttp {
                server: self.server.clone(),
            });
        }
        let endpoint = |path: &str| -> Result<Uri, JoinConfigError> {
            format!("{}/{path}", self.server.trim_end_matches('/'))
                .parse()
                .map_err(|_| invalid())
        };
        let (url, renew_url) = (endpoint("join")?, endpoint("renew")?);
        let has_identity = self.identity.is_some();
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(MAX_BACKOFF));
        connector.enforce_http(false);
        let identity = self
            .identity
            .map(|identity| (identity.0.clone(), identity.1.clone_key()));
        let tls = tls_config(https, self.ca_certificates, identity)?;
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(JoinClient {
            url,
            renew_url,
            has_identity,
            fetcher: self.fetcher.unwrap_or_default(),
            format: self.format,
            deadline: self.deadline,
            max_attempts: self.max_attempts,
            insecure_http,
            csr: self.csr,
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }
}

/// The TLS settings: the system's roots (looked up only for an `https://` server) and `extra`;
/// `identity`, the client certificate chain and key, presented when the server asks.
fn tls_config(
    https: bool,
    extra: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
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
    let tls_error = |e: rustls::Error| JoinConfigError::Tls {
        reason: e.to_string(),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|_| JoinConfigError::InvalidClientCertificate),
    }
}

/// The server let the instance join: its 200 answer. The fields are the server's, untrusted:
/// pass them through [`printable`] before printing them.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Joined {
    body: String,
    host_id: Option<String>,
    matched_rule: Option<u64>,
    grant: Option<String>,
    spiffe_id: Option<String>,
    serial: Option<String>,
    not_after: Option<DateTime<Utc>>,
    certificate_pem: Option<String>,
    bundle_pem: Option<String>,
}

impl Joined {
    fn new(body: String) -> Self {
        let value = serde_json::from_str::<serde_json::Value>(&body).ok();
        let field = |name: &str| value.as_ref().and_then(|v| v.get(name)).cloned();
        let text = |name: &str| field(name).and_then(|v| v.as_str().map(str::to_owned));
        Self {
            host_id: text("host_id"),
            matched_rule: field("matched_rule").and_then(|v| v.as_u64()),
            grant: text("grant"),
            spiffe_id: text("spiffe_id"),
            serial: text("serial"),
            not_after: text("not_after")
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
            certificate_pem: text("certificate"),
            bundle_pem: text("bundle"),
            body,
        }
    }

    /// With a CSR: `first`, or `repeat` when this key had joined with this document before
    /// (a retry after a lost answer).
    #[must_use]
    pub fn grant(&self) -> Option<&str> {
        self.grant.as_deref()
    }

    /// With a CSR: the certificate's SPIFFE ID (its URI SAN).
    #[must_use]
    pub fn spiffe_id(&self) -> Option<&str> {
        self.spiffe_id.as_deref()
    }

    /// With a CSR: the certificate's serial number, hex.
    #[must_use]
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }

    /// With a CSR: the certificate's notAfter.
    #[must_use]
    pub fn not_after(&self) -> Option<DateTime<Utc>> {
        self.not_after
    }

    /// With a CSR: the certificate, then the intermediate CAs, PEM (what to present in TLS).
    #[must_use]
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }

    /// With a CSR: the CA certificates to trust for peers' certificates, PEM.
    #[must_use]
    pub fn bundle_pem(&self) -> Option<&str> {
        self.bundle_pem.as_deref()
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
    /// An `http://` server on another host than this one, and
    /// [`JoinClientBuilder::allow_insecure_http`] not set: anyone on the path could read the
    /// document and race it to the server.
    #[non_exhaustive]
    #[error(
        "refusing plain http:// to {server:?}, not this host: anyone on the path could read the \
         identity document and join with it first; use https://, or allow insecure HTTP"
    )]
    InsecureHttp {
        /// The server as given.
        server: String,
    },
    /// The client certificate or its key is not PEM, or they do not belong together.
    #[error(
        "the client certificate is invalid: give the PEM certificate chain the server issued \
         and its PEM private key"
    )]
    InvalidClientCertificate,
    /// [`JoinClient::renew`] without a client certificate and a CSR.
    #[error("renewing needs the current certificate (client_certificate) and a CSR (csr)")]
    RenewNeedsCertificateAndCsr,
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
    #[error("fetching the identity document: {}", printable(&.0.to_string()))]
    Imds(#[from] ImdsError),
    /// The server refused the document (400, 403 or 413); retrying would not help.
    #[non_exhaustive]
    #[error("refused: {} (HTTP {status})", printable(kind))]
    Refused {
        /// 400, 403 or 413.
        status: u16,
        /// The answer's `error` (e.g. `no_rule_matched`, `already_joined`), or `malformed`,
        /// `refused`, `too_large` after the status when it has none.
        kind: String,
        /// The answer as sent (at most [`MAX_ANSWER_LEN`] bytes read; [`printable`] before
        /// printing it).
        body: String,
    },
    /// The server answered another status than 200, 400, 403, 413 and 503 (e.g. 500 for its
    /// own configuration error).
    #[non_exhaustive]
    #[error("the join server answered HTTP {status}: {}", printable(body))]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
        /// The answer as sent (at most [`MAX_ANSWER_LEN`] bytes read; the message quotes it
        /// through [`printable`]).
        body: String,
    },
    /// The TLS handshake with an `https://` server failed, e.g. its certificate does not
    /// verify against the trusted roots; not retried.
    #[non_exhaustive]
    #[error(
        "TLS with {url} failed: {}: check the server's certificate, or trust its CA",
        printable(reason)
    )]
    Tls {
        /// The URL posted to.
        url: String,
        /// What rustls said.
        reason: String,
    },
    /// The deadline passed, or no attempt was left, while the server was unreachable or
    /// unavailable.
    #[non_exhaustive]
    #[error(
        "gave up on {url} after {attempts} attempt(s) within {deadline:?}: {}",
        printable(last)
    )]
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

/// Exponential backoff above a floor: the n-th wait is [`MIN_BACKOFF`] plus a full jitter,
/// uniform in `[0, min(MAX, INITIAL·2ⁿ)]`, so it is never shorter than the floor.
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
        let jitter = Duration::from_millis(self.state % bound_ms.saturating_add(1));
        self.bound = (self.bound * 2).min(MAX_BACKOFF);
        MIN_BACKOFF + jitter
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
            let wait = backoff.next();
            assert!(
                MIN_BACKOFF <= wait && wait <= MIN_BACKOFF + bound,
                "{wait:?}"
            );
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
    fn printable_escapes_controls_and_is_bounded() {
        assert_eq!(
            printable("oops\u{1b}[2J\n\u{7f}\u{85}é"),
            r"oops\u001b[2J\u000a\u007f\u0085é"
        );
        let long = "x".repeat(MAX_PRINTED_CHARS + 1);
        assert_eq!(
            printable(&long),
            format!("{}...", &long[..MAX_PRINTED_CHARS])
        );
        assert_eq!(printable(&long[1..]), long[1..]);
        let escapes = "\u{1b}".repeat(MAX_PRINTED_CHARS + 1);
        assert_eq!(
            printable(&escapes),
            format!("{}...", r"\u001b".repeat(MAX_PRINTED_CHARS))
        );
    }

    #[test]
    fn printable_json_stays_json_with_the_same_value() {
        let body = "{\n\t\"host_id\": \"a\u{9b}31m\u{7f}\",\r\n \"n\": 1}";
        let shown = printable(body);
        assert!(!shown.chars().any(char::is_control), "{shown}");
        let value = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
        assert_eq!(value(&shown), value(body));
        assert_eq!(printable(r#"{"a":"\u001b"}"#), r#"{"a":"\u001b"}"#);
        let bidi = "{\"a\":\"x\u{202e}y\u{2066}\u{61c}\"}";
        assert_eq!(printable(bidi), r#"{"a":"x\u202ey\u2066\u061c"}"#);
        assert_eq!(value(&printable(bidi)), value(bidi));
    }

    #[test]
    fn messages_carry_no_control_characters() {
        let errors = [
            JoinError::Refused {
                status: 403,
                kind: "k\u{1b}".into(),
                body: "\u{1b}[2J".into(),
            },
            JoinError::UnexpectedStatus {
                status: 500,
                body: "\u{1b}]0;x\u{7}\u{9b}".into(),
            },
            JoinError::Tls {
                url: "https://h/join".into(),
                reason: "\u{1b}[1m".into(),
            },
            JoinError::GaveUp {
                url: "http://h/join".into(),
                attempts: 1,
                deadline: DEFAULT_DEADLINE,
                last: "\r\u{1b}[K".into(),
            },
        ];
        for err in errors {
            let message = err.to_string();
            assert!(!message.chars().any(char::is_control), "{message:?}");
            assert!(message.contains(r"\u001b"), "{message}");
        }
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        let build = |server: &str, allow| {
            JoinClient::builder(server)
                .allow_insecure_http(allow)
                .build()
                .map(|c| c.is_insecure_http())
        };
        for server in [
            "http://127.0.0.1:8080",
            "http://127.3.2.1",
            "http://[::1]:8080",
            "http://localhost:8080",
            "http://LOCALHOST.",
            "http://[::ffff:127.0.0.1]",
        ] {
            assert_eq!(build(server, false), Ok(false), "{server}");
        }
        for server in [
            "http://192.0.2.1:8080",
            "http://join.internal",
            "http://[2001:db8::1]",
            "http://localhost.example",
            "http://0.0.0.0",
            "http://127.0.0.1@192.0.2.1",
            "http://127.0.0.1.example",
        ] {
            let err = build(server, false).unwrap_err();
            assert_eq!(
                err,
                JoinConfigError::InsecureHttp {
                    server: server.into()
                }
            );
            assert!(err.to_string().contains("use https://"), "{err}");
            assert_eq!(build(server, true), Ok(true), "{server}");
        }
        let https = JoinClient::builder("https://192.0.2.1")
            .ca_certificates_pem(include_bytes!("../tests/data/tls/ca.pem"));
        assert_eq!(https.build().map(|c| c.is_insecure_http()), Ok(false));
    }

    #[test]
    fn max_attempts_is_at_least_one() {
        let builder = JoinClient::builder("http://127.0.0.1:1");
        assert_eq!(builder.clone().max_attempts(0).max_attempts, 1);
        assert_eq!(builder.max_attempts(7).max_attempts, 7);
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
    fn a_client_certificate_must_be_a_pem_chain_and_its_key() {
        let cert = include_bytes!("../tests/data/tls/server.pem");
        let key = include_bytes!("../tests/data/tls/server.key");
        let build = |chain: &[u8], key: &[u8]| {
            JoinClient::builder("https://127.0.0.1:1")
                .ca_certificates_pem(include_bytes!("../tests/data/tls/ca.pem"))
                .client_certificate(chain, key)
                .build()
                .map(|_| ())
        };
        let err = Err(JoinConfigError::InvalidClientCertificate);
        assert_eq!(build(b"", key), err);
        assert_eq!(build(cert, b"not a key"), err);
        assert_eq!(build(cert, key), Ok(()));
    }

    #[tokio::test]
    async fn renewing_needs_a_client_certificate_and_a_csr() {
        let client = JoinClient::builder("https://127.0.0.1:1")
            .ca_certificates_pem(include_bytes!("../tests/data/tls/ca.pem"))
            .csr("-----BEGIN CERTIFICATE REQUEST-----")
            .build()
            .unwrap();
        let err = client.renew().await.unwrap_err();
        assert!(
            matches!(
                err,
                JoinError::Config(JoinConfigError::RenewNeedsCertificateAndCsr)
            ),
            "{err:?}"
        );
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
