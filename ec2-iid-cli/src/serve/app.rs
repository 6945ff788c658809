//! The HTTP side: `POST /join`, `GET /bundle`, `GET /metrics`, `GET /healthz`. A failure is a
//! [`Failure`], whose [`Refusal`] is the answer (see `failure`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::middleware;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use ec2_iid::{CheckError, Enrollment, EnrollmentRegistry as _, JoinOutcome, Verifier};
use ec2_iid_ca::Issued;
use serde_json::Value;
use tracing::Instrument as _;

use super::bounded::{Bounded, BoundedError};
use super::failure::{Failure, Refusal};
use super::issue::{self, CsrJoin, Issuance};
use super::lookup::Lookup;
use super::metrics::{self, Metrics};
use super::overload::{JoinCap, cap_joins};
use super::registry::Registry;
use super::renew;

/// What the requests share.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) verifier: Verifier,
    pub(crate) lookup: Lookup,
    pub(crate) registry: Registry,
    pub(crate) metrics: Metrics,
    /// The time the lookup, and then the registry, may take to answer.
    pub(crate) timeout: Duration,
    /// `--ca-cert`: certificates for joins with a CSR.
    pub(crate) issuance: Option<Issuance>,
    /// `--renew-check-instance`: a renewal asks EC2 that the instance still runs.
    pub(crate) renew_check_instance: bool,
}

/// A join that succeeded, and the certificate when it came with a CSR.
#[derive(Debug)]
enum Granted {
    /// The body was the document alone.
    Joined(JoinOutcome),
    /// The body was `{"document", "csr"}`: a certificate for the CSR's key.
    Certified(JoinOutcome, Box<Issued>),
}

/// The routes; at most `max_inflight_joins` joins at once ([`cap_joins`]).
pub(crate) fn router(app: Arc<App>, max_inflight_joins: usize) -> Router {
    let cap = JoinCap::new(Arc::clone(&app), max_inflight_joins);
    Router::new()
        .route(
            "/join",
            post(join).route_layer(middleware::from_fn_with_state(cap, cap_joins)),
        )
        // Not under the join cap: a renewal makes no EC2 call, and only holders of this CA's
        // certificates get past its first check (a signature, before any registry call).
        .route("/renew", post(renew::renew))
        .route("/bundle", get(bundle))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(ec2_iid::MAX_BLOB_LEN))
        .with_state(app)
}

/// `POST /join`: the body is the `/rsa2048` (or `/pkcs7`) text, as IMDS serves it, or
/// `{"document": TEXT, "csr": PEM}` for a certificate as well ([`issue::parse_request`]).
/// The answer is logged in the request's span and counted once, by its outcome.
async fn join(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Refusal> {
    let started = Instant::now();
    let id = request_id();
    let span = tracing::info_span!("join", request_id = %id);
    let answer = async {
        match grant(&app, body).await {
            Ok(granted) => Ok(Json(granted.answer(app.issuance.as_ref()))),
            Err(failure) => Err(failure.refuse(&id)),
        }
    }
    .instrument(span)
    .await;
    let outcome = answer.as_ref().map_or_else(Refusal::kind, |_| "joined");
    app.metrics.record(outcome, started.elapsed());
    answer
}

/// A join of the document alone, or with a CSR.
async fn grant(app: &App, body: Result<Bytes, BytesRejection>) -> Result<Granted, Failure> {
    let body = body.map_err(Failure::Body)?;
    match issue::parse_request(&body) {
        None => decide(app, &body, requester()?).await.map(Granted::Joined),
        Some(request) => join_with_csr(app, request).await,
    }
}

/// The CSR is checked first, before the document and any EC2 call; the claim's requester is
/// the CSR's key, so the same key retrying the same document is granted again (a repeat) and
/// any other key is refused as `already_joined`.
async fn join_with_csr(app: &App, request: Result<CsrJoin, String>) -> Result<Granted, Failure> {
    let request = request.map_err(Failure::Request)?;
    let issuance = app.issuance.as_ref().ok_or(Failure::CsrWithoutCa)?;
    let csr = issuance.csr(&request.csr).map_err(Failure::Csr)?;
    let outcome = decide(app, request.document.as_bytes(), csr.requester()).await?;
    // The claim is granted and stays: if issuing fails here (500), the same key's retry is
    // granted again as a repeat and gets its certificate then.
    let now = DateTime::<Utc>::from(SystemTime::now());
    let issued = issuance
        .issue(&outcome, &csr, now)
        .map_err(Failure::Issue)?;
    enroll(app, &outcome, &issued, now).await?;
    app.metrics.certificate_issued();
    Ok(Granted::Certified(outcome, Box::new(issued)))
}

/// Records the host's enrollment (the certificate it got), which its renewals need. An
/// evicted host's record refuses the same launch (`evicted`): the certificate just issued is
/// then never sent. A registry failure is a 503 like a claim's: the retry with the same key is
/// granted again and enrolls then.
async fn enroll(
    app: &App,
    outcome: &JoinOutcome,
    issued: &Issued,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    let enrollment = Enrollment::of_outcome(outcome, issued.serial.clone(), issued.not_after, now);
    let registry = Bounded {
        inner: &app.registry,
        timeout: app.timeout,
    };
    match registry.bound(app.registry.enroll(&enrollment)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::Evicted),
        Err(BoundedError::Failed(e)) => Err(Failure::Registry(e)),
        Err(BoundedError::TimedOut(timeout)) => Err(Failure::TimedOut(timeout)),
    }
}

/// Verifies the document, looks the instance up and claims it for `requester` (unique to
/// this request, or the CSR's key); each registry call and the lookup are bounded by the
/// timeout ([`Bounded`]). A replay is refused before the lookup, and a claim that failed is
/// read back before the answer (see `PendingJoin::check_instance_once`), so that a 503 never
/// leaves a record that refuses the instance's retry.
async fn decide(app: &App, body: &[u8], requester: [u8; 32]) -> Result<JoinOutcome, Failure> {
    let now = DateTime::<Utc>::from(SystemTime::now());
    let pending = tracing::info_span!("document")
        .in_scope(|| app.verifier.verify(body, now))
        .map_err(Failure::Rejected)?;
    let lookup = Bounded {
        inner: &app.lookup,
        timeout: app.timeout,
    };
    let registry = Bounded {
        inner: &app.registry,
        timeout: app.timeout,
    };
    pending
        .check_instance_once(&lookup, &registry, requester, now)
        .await
        .map_err(|e| match e {
            CheckError::Rejected(e) => Failure::Rejected(e),
            CheckError::Lookup(BoundedError::Failed(e)) => Failure::Lookup(e),
            CheckError::Registry(BoundedError::Failed(e)) => Failure::Registry(e),
            CheckError::Lookup(BoundedError::TimedOut(timeout))
            | CheckError::Registry(BoundedError::TimedOut(timeout)) => Failure::TimedOut(timeout),
            e => Failure::Internal(e.to_string()),
        })
}

impl Granted {
    /// The 200 answer's body; the grant is logged (never the key or the CSR).
    fn answer(self, issuance: Option<&Issuance>) -> Value {
        match self {
            Self::Joined(outcome) => {
                tracing::info!(
                    host_id = outcome.host_id(),
                    rule = outcome.matched_rule(),
                    "joined"
                );
                serde_json::json!({
                    "host_id": outcome.host_id(),
                    "matched_rule": outcome.matched_rule(),
                })
            }
            Self::Certified(outcome, issued) => certified(&outcome, &issued, issuance),
        }
    }
}

/// The 200 answer's body with the certificate; the issuance is logged (never the key or the
/// CSR).
fn certified(outcome: &JoinOutcome, issued: &Issued, issuance: Option<&Issuance>) -> Value {
    let not_after = issued.not_after.to_rfc3339_opts(SecondsFormat::Secs, true);
    let grant = outcome.grant().as_str();
    tracing::info!(
        host_id = outcome.host_id(),
        rule = outcome.matched_rule(),
        serial = issued.serial.as_str(),
        not_after = not_after.as_str(),
        grant,
        "joined; certificate issued"
    );
    let mut body = certificate_body(outcome.host_id(), issued, issuance);
    if let Some(fields) = body.as_object_mut() {
        fields.insert("matched_rule".into(), outcome.matched_rule().into());
        fields.insert("grant".into(), grant.into());
    }
    body
}

/// A certificate answer's fields: `{"host_id", "spiffe_id", "serial", "not_after",
/// "certificate", "bundle"}` (`/join` adds `matched_rule` and `grant`).
pub(crate) fn certificate_body(
    host_id: &str,
    issued: &Issued,
    issuance: Option<&Issuance>,
) -> Value {
    serde_json::json!({
        "host_id": host_id,
        "spiffe_id": issued.spiffe_id,
        "serial": issued.serial,
        "not_after": issued.not_after.to_rfc3339_opts(SecondsFormat::Secs, true),
        "certificate": issued.chain_pem,
        "bundle": issuance.map(Issuance::bundle_pem),
    })
}

/// `GET /bundle`: the CA certificates relying parties should trust; 404 without `--ca-cert`.
async fn bundle(State(app): State<Arc<App>>) -> Result<Response, Refusal> {
    let Some(issuance) = &app.issuance else {
        let id = request_id();
        let span = tracing::info_span!("bundle", request_id = %id);
        return Err(span.in_scope(|| Failure::IssuanceDisabled.refuse(&id)));
    };
    let content_type = [(header::CONTENT_TYPE, "application/pem-certificate-chain")];
    Ok((content_type, issuance.bundle_pem().to_owned()).into_response())
}

/// `GET /metrics`.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut text = app.metrics.render(app.lookup.calls());
    app.lookup.render_metrics(&mut text);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// `GET /healthz`: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// 32 random bytes: the claim's requester, so that the server can tell its own claim's record
/// from a concurrent replay's.
fn requester() -> Result<[u8; 32], Failure> {
    let mut bytes = [0; 32];
    getrandom::fill(&mut bytes).map_err(|e| Failure::Internal(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// A request id unique in this process: its start time and a counter, in hex.
///
/// Not tower-http's request-id and trace layers: the id is made here and never taken from a
/// client header (a caller-chosen id in the log would be attacker text to bound and escape),
/// and each handler opens its own span (`join`, `renew`, `bundle`) so that the answer's kind
/// is logged once, in it ([`Failure::refuse`]), with the stages nested below; a trace layer
/// would add a second span and event per request without them.
pub(crate) fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let started = STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!("{started:x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}
