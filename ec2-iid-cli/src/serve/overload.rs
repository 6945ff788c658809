//! `--max-inflight-joins`: past the cap, `POST /join` is answered 503 `overloaded` with
//! `Retry-After` at once, never queued: a join that waited would hold its connection and
//! answer late anyway. A layer of the join route, apart from the join's own logic.

use core::time::Duration;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Semaphore;

use super::app::{App, refusal, request_id};

/// The permits of the joins in flight.
#[derive(Clone, Debug)]
pub(crate) struct JoinCap {
    permits: Arc<Semaphore>,
    app: Arc<App>,
}

impl JoinCap {
    /// At most `max` joins in flight (clamped to tokio's largest semaphore).
    pub(crate) fn new(app: Arc<App>, max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            app,
        }
    }
}

/// Runs the join with a permit, or answers `overloaded` (counted as that outcome of
/// `ec2_iid_joins_total`).
pub(crate) async fn cap_joins(
    State(cap): State<JoinCap>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = Arc::clone(&cap.permits).try_acquire_owned() else {
        let id = request_id();
        tracing::info_span!("join", request_id = %id).in_scope(|| {
            tracing::warn!(
                kind = "overloaded",
                "refused: the --max-inflight-joins joins are in flight"
            );
        });
        cap.app.metrics.record("overloaded", Duration::ZERO);
        let mut response = refusal(StatusCode::SERVICE_UNAVAILABLE, "overloaded", &id);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    next.run(request).await
}
