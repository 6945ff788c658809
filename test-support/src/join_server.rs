//! A fake join server on `127.0.0.1` (axum, an ephemeral port) that answers `POST /join` with
//! scripted statuses and keeps the bodies it received: for the join client's tests
//! (ec2-iid-aws's `tests/join_client.rs`) and `ec2-iid join`'s (ec2-iid-cli's `tests/join.rs`).

use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;

/// What a fake join server answers, in order (status, `Retry-After`, body); the last answer
/// repeats.
pub type Script = Vec<(u16, Option<&'static str>, &'static str)>;

/// The bodies a fake join server received, in order.
pub type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

/// A 200 answer of `ec2-iid serve`.
pub const JOINED: &str = r#"{"host_id":"123456789012-i-0123456789abcdef0","matched_rule":0}"#;
/// A 403 answer of `ec2-iid serve`.
pub const NO_RULE: &str = r#"{"error":"no_rule_matched","request_id":"1-0"}"#;
/// A 503 answer of `ec2-iid serve`.
pub const UNAVAILABLE: &str = r#"{"error":"lookup_unavailable","request_id":"1-1"}"#;

/// Starts a fake join server answering `script`; returns its URL and what it received.
pub async fn join_server(script: Script) -> (String, Seen) {
    let seen = Seen::default();
    let state = (Arc::new(script), Arc::clone(&seen));
    let app = Router::new().route("/join", post(answer)).with_state(state);
    (serve_on_loopback(app).await, seen)
}

/// Serves `app` on 127.0.0.1 (a free port) in a task of its own; its `http://` URL.
pub async fn serve_on_loopback(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Answers the next line of the script to a document sent as `text/plain` (or with a CSR, as
/// `application/json`).
async fn answer(
    State((script, seen)): State<(Arc<Script>, Seen)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The document alone, or `{"document", "csr"}` when the client asks for a certificate.
    let content_type = &headers[header::CONTENT_TYPE];
    assert!(
        content_type == "text/plain" || content_type == "application/json",
        "{content_type:?}"
    );
    let n = {
        let mut seen = seen.lock().unwrap();
        seen.push(body.to_vec());
        seen.len() - 1
    };
    let (status, retry_after, text) = *script.get(n).or(script.last()).unwrap();
    let mut response = (StatusCode::from_u16(status).unwrap(), text).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.parse().unwrap());
    }
    response
}

/// A loopback URL nothing listens on (a port that was free a moment ago).
pub fn closed_url() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}
