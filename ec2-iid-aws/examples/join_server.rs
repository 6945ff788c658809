//! `join_server`: a minimal HTTP join endpoint on `ec2-iid` and `ec2-iid-aws`.
//!
//! ```text
//! cargo run -p ec2-iid-aws --example join_server -- --token FILE
//!     [--cert PEM --cert-region REGION[,REGION..]]... [--endpoint-url URL] [--timeout SECS]
//!     [--listen ADDR]
//! ```
//!
//! `POST /join` with an instance's `/rsa2048` text as the body, as IMDS serves it. The server
//! verifies the signature (AWS's certificates, plus any `--cert`), the token's allow rules and
//! TTL, asks EC2 about the instance (`DescribeInstances`, assuming the rule's role if it names
//! one) and lets each instance join once. Answers:
//!
//! * 200 `{"host_id": "<account>-<instance>", "matched_rule": N}`: joined;
//! * 400 `{"error": "malformed", "request_id": ID}`: not a signed identity document;
//! * 403 `{"error": KIND, "request_id": ID}`: refused (KIND is the `ErrorKind`, e.g.
//!   `no_rule_matched`, `stale`, `instance_rejected`, `already_joined`);
//! * 503 `{"error": "lookup_unavailable", ...}` with `Retry-After`: the lookup failed in a way
//!   that may pass later (throttled, timed out, unreachable);
//! * 500 `{"error": "lookup_failed", ...}`: the lookup failed otherwise (e.g. access denied: the
//!   server's own configuration);
//! * 413: a body over `ec2_iid::MAX_BLOB_LEN`.
//!
//! The bodies are generic on purpose: an unauthenticated caller learns nothing about the rules.
//! The full reason and the hint go to the server's log (stderr), under the request id.
//!
//! AWS credentials come from the usual chain (environment, profile, instance role, ...). Once
//! listening, the server prints `listening on ADDR` on stdout; `--listen 127.0.0.1:0` picks a
//! free port.

use std::error::Error as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use ec2_iid::{
    CheckError, ErrorKind, Format, InMemoryJoinRegistry, Region, TokenResource, TokenSpec,
    TrustStore, Verifier, VerifierBuilder,
};
use ec2_iid_aws::{Ec2Lookup, Ec2LookupError};

const USAGE: &str = "usage: join_server --token FILE [--cert PEM --cert-region REGION]... \
[--endpoint-url URL] [--timeout SECS] [--listen ADDR]";

/// Parsed command line.
#[derive(Debug)]
struct Args {
    token: String,
    certs: Vec<(String, Vec<Region>)>,
    endpoint_url: Option<String>,
    timeout: Duration,
    listen: String,
}

/// What the requests share.
#[derive(Debug)]
struct App {
    verifier: Verifier,
    lookup: Ec2Lookup,
    registry: InMemoryJoinRegistry,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    // Built once: the trust store, the token's rules, the AWS clients.
    let mut trust = TrustStore::aws();
    for (path, regions) in &args.certs {
        let pem = std::fs::read(path).map_err(|e| format!("--cert {path}: {e}"))?;
        trust
            .add_pem(Format::Rsa2048, &pem, regions.iter().cloned())
            .map_err(|e| format!("--cert {path}: {e}"))?;
    }
    let verifier = read_token(&args.token, Verifier::builder(trust))?
        .build()
        .map_err(|e| format!("--token {}: {e}", args.token))?;
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let mut lookup = Ec2Lookup::builder(&config).timeout(args.timeout);
    if let Some(url) = &args.endpoint_url {
        lookup = lookup.endpoint_url(url);
    }
    let app = Arc::new(App {
        verifier,
        lookup: lookup.build().map_err(|e| e.to_string())?,
        registry: InMemoryJoinRegistry::new(),
    });

    let router = Router::new()
        .route("/join", post(join))
        .layer(DefaultBodyLimit::max(ec2_iid::MAX_BLOB_LEN))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {addr}");
    axum::serve(listener, router)
        .await
        .map_err(|e| e.to_string())
}

/// `POST /join`: the body is the `/rsa2048` text.
async fn join(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let id = request_id();
    let now = DateTime::<Utc>::from(SystemTime::now());
    let result = match app.verifier.verify(&body, now) {
        Ok(pending) => {
            pending
                .check_instance_once(&app.lookup, &app.registry, now)
                .await
        }
        Err(e) => Err(CheckError::Rejected(e)),
    };
    match result {
        Ok(outcome) => {
            eprintln!(
                "{id} joined: {} (rule {})",
                outcome.host_id(),
                outcome.matched_rule()
            );
            let body = serde_json::json!({
                "host_id": outcome.host_id(),
                "matched_rule": outcome.matched_rule(),
            });
            Json(body).into_response()
        }
        Err(CheckError::Rejected(e)) => {
            let kind = e.kind();
            let hint = e.hint().unwrap_or_default();
            eprintln!("{id} rejected ({kind}): {e}; hint: {hint}");
            let status = match kind {
                ErrorKind::Malformed => StatusCode::BAD_REQUEST,
                _ => StatusCode::FORBIDDEN,
            };
            refusal(status, kind.as_str(), &id)
        }
        Err(CheckError::Lookup(e)) => lookup_failed(&e, &id),
        Err(CheckError::Registry(never)) => match never {},
        // `CheckError` is non-exhaustive.
        Err(e) => {
            eprintln!("{id} failed: {e}");
            refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal", &id)
        }
    }
}

/// A refusal's body: the kind and the request id, nothing a caller could learn the rules from.
fn refusal(status: StatusCode, error: &str, id: &str) -> Response {
    let body = serde_json::json!({ "error": error, "request_id": id });
    (status, Json(body)).into_response()
}

/// A request id unique in this process: its start time and a counter, in hex.
fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let started = STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!("{started:x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// 503 with `Retry-After` for a failure that may pass later, 500 otherwise; the details go to
/// the log only.
fn lookup_failed(e: &Ec2LookupError, id: &str) -> Response {
    let mut details = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        details.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    eprintln!("{id} lookup failed: {details}");
    if e.is_transient() {
        let mut response = refusal(StatusCode::SERVICE_UNAVAILABLE, "lookup_unavailable", id);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        response
    } else {
        refusal(StatusCode::INTERNAL_SERVER_ERROR, "lookup_failed", id)
    }
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut token = None;
    let mut certs = Vec::new();
    let mut pending_cert = None;
    let mut endpoint_url = None;
    let mut timeout = ec2_iid_aws::DEFAULT_TIMEOUT;
    let mut listen = String::from("127.0.0.1:8080");
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--token" => token = Some(value()?),
            "--cert" if pending_cert.is_none() => pending_cert = Some(value()?),
            "--cert" => return Err("--cert must be followed by --cert-region".into()),
            "--cert-region" => {
                let cert = pending_cert
                    .take()
                    .ok_or("--cert-region must follow --cert")?;
                let regions = value()?
                    .split(',')
                    .map(|r| r.parse().map_err(|_| format!("invalid region {r:?}")))
                    .collect::<Result<Vec<Region>, String>>()?;
                certs.push((cert, regions));
            }
            "--endpoint-url" => endpoint_url = Some(value()?),
            "--timeout" => {
                let text = value()?;
                let secs = text
                    .parse()
                    .map_err(|_| format!("--timeout {text:?}: whole seconds expected"))?;
                timeout = Duration::from_secs(secs);
            }
            "--listen" => listen = value()?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if pending_cert.is_some() {
        return Err("--cert needs --cert-region".into());
    }
    Ok(Args {
        token: token.ok_or("--token is required")?,
        certs,
        endpoint_url,
        timeout,
        listen,
    })
}

/// A token resource (`kind: token`) or a bare spec, in YAML or JSON.
fn read_token(path: &str, builder: VerifierBuilder) -> Result<VerifierBuilder, String> {
    let bad = |e: &dyn std::fmt::Display| format!("--token {path}: {e}");
    let bytes = std::fs::read(path).map_err(|e| bad(&e))?;
    let value: serde_norway::Value = serde_norway::from_slice(&bytes).map_err(|e| bad(&e))?;
    if value.get("spec").is_some() {
        let resource: TokenResource = serde_norway::from_value(value).map_err(|e| bad(&e))?;
        Ok(builder.token(&resource))
    } else {
        let spec: TokenSpec = serde_norway::from_value(value).map_err(|e| bad(&e))?;
        Ok(builder.token_spec(&spec))
    }
}
