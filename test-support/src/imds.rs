//! An in-process IMDSv2 emulator on `127.0.0.1` (an ephemeral port), for the IMDS client's
//! tests (ec2-iid-aws) and `ec2-iid join`'s (ec2-iid-cli).
//!
//! * `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds: 1..=21600` answers a
//!   random token (and the TTL header); another or no TTL is 400, and a request with
//!   `X-Forwarded-For` is 403, as on EC2.
//! * `GET` of a served path with `X-aws-ec2-metadata-token: <an unexpired token>` answers the
//!   path's body; without a token, or with an unknown or expired one, 401 (IMDSv2 required);
//!   a path that is not served, 404.
//!
//! Switches, shared with the running server: [`ImdsServer::set_body`] / [`remove`], "hop limit
//! 1" ([`hop_limit_one`]: token PUTs never get an answer, as when the instance's hop limit
//! drops the answer to a container), [`refuse_tokens`] (PUT answers a status),
//! [`reject_tokens`] (GETs answer 401 whatever the token), [`fail_next`] (the next n GETs
//! answer a status, e.g. 503) and [`hang`] (GETs of a path never get an answer). By default it
//! serves the committed fixtures of `tests/data/gen/`, signed by the test CA.
//!
//! [`remove`]: ImdsServer::remove
//! [`hop_limit_one`]: ImdsServer::hop_limit_one
//! [`refuse_tokens`]: ImdsServer::refuse_tokens
//! [`reject_tokens`]: ImdsServer::reject_tokens
//! [`fail_next`]: ImdsServer::fail_next
//! [`hang`]: ImdsServer::hang

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher as _, RandomState};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};

/// The `/rsa2048` path (PKCS#7, RSA-2048, SHA-256).
pub const RSA2048: &str = "/latest/dynamic/instance-identity/rsa2048";
/// The `/pkcs7` path (PKCS#7, DSA, SHA-1).
pub const PKCS7: &str = "/latest/dynamic/instance-identity/pkcs7";
/// The identity document's path (the JSON).
pub const DOCUMENT: &str = "/latest/dynamic/instance-identity/document";
/// The `/signature` path (bare RSA-1024 signature of the document).
pub const SIGNATURE: &str = "/latest/dynamic/instance-identity/signature";
const TOKEN_PATH: &str = "/latest/api/token";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";

/// The committed fixtures, as IMDS serves them.
const FIXTURES: [(&str, &[u8]); 4] = [
    (RSA2048, include_bytes!("../../tests/data/gen/rsa2048.b64")),
    (PKCS7, include_bytes!("../../tests/data/gen/pkcs7.b64")),
    (
        DOCUMENT,
        include_bytes!("../../tests/data/gen/document.json"),
    ),
    (
        SIGNATURE,
        include_bytes!("../../tests/data/gen/signature.b64"),
    ),
];

/// The committed fixture IMDS serves at `path` (one of the four above).
pub fn fixture(path: &str) -> &'static [u8] {
    FIXTURES.iter().find(|(p, _)| *p == path).unwrap().1
}

/// What the emulator has seen, for assertions.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Counts {
    /// Token PUTs, answered or not.
    pub token_puts: u32,
    /// GETs answered with a body.
    pub served: u32,
    /// GETs answered 401.
    pub unauthorized: u32,
    /// GETs answered with a [`ImdsServer::fail_next`] status.
    pub failed: u32,
}

#[derive(Debug, Default)]
struct Shared {
    bodies: HashMap<String, Vec<u8>>,
    tokens: HashMap<String, Instant>,
    hop_limit_one: bool,
    refuse_tokens: Option<StatusCode>,
    reject_tokens: bool,
    fail_next: Option<(StatusCode, u32)>,
    hang: HashSet<String>,
    counts: Counts,
}

/// A running emulator; it stops with the test's runtime (or on drop).
#[derive(Debug)]
pub struct ImdsServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl ImdsServer {
    /// Starts the emulator serving the committed fixtures (see [`fixture`]).
    pub async fn start() -> Self {
        let shared = Shared {
            bodies: FIXTURES
                .iter()
                .map(|(path, body)| ((*path).to_owned(), body.to_vec()))
                .collect(),
            ..Shared::default()
        };
        let shared = Arc::new(Mutex::new(shared));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self { url, shared, task }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().expect("emulator state")
    }

    /// Serves `body` at `path` from now on.
    pub fn set_body(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.lock().bodies.insert(path.to_owned(), body.into());
    }

    /// Stops serving `path` (404).
    pub fn remove(&self, path: &str) {
        self.lock().bodies.remove(path);
    }

    /// Token PUTs never get an answer (on: as behind a hop limit of 1).
    pub fn hop_limit_one(&self, on: bool) {
        self.lock().hop_limit_one = on;
    }

    /// Token PUTs answer `status` with no token.
    pub fn refuse_tokens(&self, status: u16) {
        self.lock().refuse_tokens = Some(StatusCode::from_u16(status).expect("a status"));
    }

    /// GETs answer 401 whatever the token (on), as for a token IMDS no longer knows.
    pub fn reject_tokens(&self, on: bool) {
        self.lock().reject_tokens = on;
    }

    /// The next `times` GETs with a valid token answer `status`.
    pub fn fail_next(&self, status: u16, times: u32) {
        let status = StatusCode::from_u16(status).expect("a status");
        self.lock().fail_next = Some((status, times));
    }

    /// GETs of `path` never get an answer.
    pub fn hang(&self, path: &str) {
        self.lock().hang.insert(path.to_owned());
    }

    /// What the emulator has seen so far.
    pub fn counts(&self) -> Counts {
        self.lock().counts
    }
}

impl Drop for ImdsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Long enough for any client timeout of the tests to fire first.
const NO_ANSWER: Duration = Duration::from_secs(60);

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    let answer = {
        let mut s = shared.lock().expect("emulator state");
        if method == Method::PUT && path == TOKEN_PATH {
            put_token(&mut s, &headers)
        } else if method == Method::GET {
            get(&mut s, path, &headers)
        } else {
            Answer::Status(StatusCode::METHOD_NOT_ALLOWED)
        }
    };
    match answer {
        Answer::None => {
            tokio::time::sleep(NO_ANSWER).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Answer::Status(status) => status.into_response(),
        Answer::Token(token, ttl) => Response::builder()
            .header(TTL_HEADER, ttl.to_string())
            .body(Body::from(token))
            .expect("a response"),
        Answer::Body(body) => Response::builder()
            .header("content-type", "text/plain")
            .body(Body::from(body))
            .expect("a response"),
    }
}

enum Answer {
    None,
    Status(StatusCode),
    Token(String, u32),
    Body(Vec<u8>),
}

fn put_token(s: &mut Shared, headers: &HeaderMap) -> Answer {
    s.counts.token_puts += 1;
    if s.hop_limit_one {
        return Answer::None;
    }
    if let Some(status) = s.refuse_tokens {
        return Answer::Status(status);
    }
    if headers.contains_key("x-forwarded-for") {
        return Answer::Status(StatusCode::FORBIDDEN);
    }
    let ttl = headers
        .get(TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|ttl| (1..=21_600).contains(ttl));
    let Some(ttl) = ttl else {
        return Answer::Status(StatusCode::BAD_REQUEST);
    };
    let token = random_token();
    let expires = Instant::now() + Duration::from_secs(ttl.into());
    s.tokens.insert(token.clone(), expires);
    Answer::Token(token, ttl)
}

fn get(s: &mut Shared, path: &str, headers: &HeaderMap) -> Answer {
    let token = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    let valid = token
        .and_then(|t| s.tokens.get(t))
        .is_some_and(|expires| Instant::now() < *expires);
    if !valid || s.reject_tokens {
        s.counts.unauthorized += 1;
        return Answer::Status(StatusCode::UNAUTHORIZED);
    }
    if let Some((status, times)) = s.fail_next {
        s.fail_next = times.checked_sub(1).filter(|&n| n > 0).map(|n| (status, n));
        s.counts.failed += 1;
        return Answer::Status(status);
    }
    if s.hang.contains(path) {
        return Answer::None;
    }
    match s.bodies.get(path) {
        Some(body) => {
            s.counts.served += 1;
            Answer::Body(body.clone())
        }
        None => Answer::Status(StatusCode::NOT_FOUND),
    }
}

/// 32 hex digits that no one can guess from the previous ones (a per-process random key).
fn random_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let state = RandomState::new();
    format!("{:016x}{:016x}", state.hash_one(n), state.hash_one(!n))
}
