//! `--body-read-timeout`: one deadline for a whole request body, from the end of its headers.
//!
//! A per-read timeout (tower-http's `RequestBodyTimeout` is one, per frame) lets a client that
//! sends a byte just before each read times out hold the request open for as long as it likes;
//! a total deadline does not. Past it the body fails: the handler answers 408 and the
//! connection, its body unread, is closed.

use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// A request body that fails once its deadline has passed.
#[derive(Debug)]
pub(crate) struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl<B> DeadlineBody<B> {
    /// `inner`, which must end within `timeout` from now.
    pub(crate) fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }
}

/// The body did not arrive in time.
#[derive(Debug)]
pub(crate) struct BodyTimedOut(Duration);

impl core::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "request body not received within {:?} (--body-read-timeout)",
            self.0
        )
    }
}

impl core::error::Error for BodyTimedOut {}

/// Whether `error` or one of its sources is a [`BodyTimedOut`]: a body read failed because
/// the deadline passed (408), not because the body was bad.
pub(crate) fn timed_out(error: &(dyn core::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        next = e.source();
    }
    false
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn core::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn core::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(self.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use core::convert::Infallible;

    use super::*;

    /// A body that yields one byte per `every`, `len` bytes in all.
    struct Trickle {
        left: usize,
        every: Pin<Box<tokio::time::Interval>>,
    }

    impl Body for Trickle {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            match self.every.as_mut().poll_tick(cx) {
                Poll::Ready(_) => {
                    self.left -= 1;
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"A")))))
                }
                Poll::Pending => Poll::Pending,
            }
        }
    }

    fn trickle(len: usize) -> Trickle {
        Trickle {
            left: len,
            every: Box::pin(tokio::time::interval(Duration::from_secs(5))),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_fails_at_the_deadline_not_per_read() {
        let started = tokio::time::Instant::now();
        let body = DeadlineBody::new(trickle(60_000), Duration::from_secs(12));
        let err = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
            .await
            .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(12));
        assert!(err.to_string().contains("within 12s"), "{err}");
        // A body that ends in time is read whole.
        let body = DeadlineBody::new(trickle(3), Duration::from_secs(12));
        let bytes = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"AAA");
    }
}
