//! `--max-inflight-joins`: past the cap, `POST /join` is answered 503 `overloaded` with
//! `Retry-After` at once, never queued: a join that waited would hold its connection and
//! answer late anyway. A layer of the join route, apart from the join's own logic.
//!
//! The body is read before a slot is taken, so that clients sending slowly (up to
//! `--body-read-timeout`) hold their connections, not join slots. What was read goes on to the
//! join handler, which answers as it would have: over the size limit, 413; a body that failed
//! (its deadline, a reset), 400.

use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame};
use tokio::sync::Semaphore;

use super::app::{App, request_id};
use super::failure::{Failure, Refusal};

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
) -> Result<Response, Refusal> {
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(parts, read_body(body).await);
    let Ok(_permit) = Arc::clone(&cap.permits).try_acquire_owned() else {
        let id = request_id();
        let refusal = tracing::info_span!("join", request_id = %id)
            .in_scope(|| Failure::Overloaded.refuse(&id));
        cap.app.metrics.record(refusal.kind(), Duration::ZERO);
        return Err(refusal);
    };
    Ok(next.run(request).await)
}

/// The body read up to one byte past `ec2_iid::MAX_BLOB_LEN`, as a body again: the bytes, or
/// the error that stopped the read.
async fn read_body(mut body: Body) -> Body {
    let mut read = Vec::new();
    while read.len() <= ec2_iid::MAX_BLOB_LEN {
        match core::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Body::new(Failed(Some(e))),
        }
    }
    Body::from(read)
}

/// A body that yields only an error: the one reading it stopped at.
struct Failed(Option<axum::Error>);

impl http_body::Body for Failed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Poll::Ready(self.0.take().map(Err))
    }
}
