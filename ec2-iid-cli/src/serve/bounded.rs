//! `--timeout` for each step of a join that waits on another service: the lookup and the
//! registry claim, each bounded on its own.
//!
//! One bound around the whole join would cut a claim short when a slow lookup left it little
//! time: the claim could commit after the join had answered 503, and the instance's retry
//! would then be refused as a replay. Here a claim gets the full timeout once the lookup has
//! answered. (A registry slower than the timeout can still commit a claim after the 503: no
//! timeout can tell a lost answer from no write.)

use core::fmt;
use core::time::Duration;

use chrono::{DateTime, Utc};
use ec2_iid::{ClaimRecord, InstanceFacts, InstanceLookup, InstanceQuery, JoinClaim, JoinRegistry};

/// A lookup or a registry whose every call is bounded by `timeout`.
#[derive(Debug)]
pub(crate) struct Bounded<'a, T> {
    pub(crate) inner: &'a T,
    pub(crate) timeout: Duration,
}

/// A bounded call's failure: the service's own error, or no answer within the timeout.
#[derive(Debug)]
pub(crate) enum BoundedError<E> {
    Failed(E),
    TimedOut(Duration),
}

impl<E: fmt::Display> fmt::Display for BoundedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(e) => e.fmt(f),
            Self::TimedOut(timeout) => write!(f, "not answered within {timeout:?}"),
        }
    }
}

impl<T> Bounded<'_, T> {
    /// `call`'s result, or [`BoundedError::TimedOut`] once the timeout has passed.
    pub(crate) async fn bound<R, E>(
        &self,
        call: impl Future<Output = Result<R, E>>,
    ) -> Result<R, BoundedError<E>> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(BoundedError::Failed),
            Err(_) => Err(BoundedError::TimedOut(self.timeout)),
        }
    }
}

impl<T: InstanceLookup + Sync> InstanceLookup for Bounded<'_, T> {
    type Error = BoundedError<T::Error>;

    async fn describe_instance(
        &self,
        query: &InstanceQuery,
    ) -> Result<Option<InstanceFacts>, Self::Error> {
        self.bound(self.inner.describe_instance(query)).await
    }
}

impl<T: JoinRegistry + Sync> JoinRegistry for Bounded<'_, T> {
    type Error = BoundedError<T::Error>;

    async fn claim(&self, claim: &JoinClaim) -> Result<bool, Self::Error> {
        self.bound(self.inner.claim(claim)).await
    }

    async fn record(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimRecord>, Self::Error> {
        self.bound(self.inner.record(host_id, now)).await
    }
}

#[cfg(test)]
mod tests {
    use ec2_iid::InMemoryJoinRegistry;

    use super::*;

    /// A registry that answers after `delay`.
    struct Slow {
        delay: Duration,
        inner: InMemoryJoinRegistry,
    }

    impl JoinRegistry for Slow {
        type Error = core::convert::Infallible;

        async fn claim(&self, claim: &JoinClaim) -> Result<bool, Self::Error> {
            tokio::time::sleep(self.delay).await;
            self.inner.claim(claim).await
        }

        async fn record(
            &self,
            host_id: &str,
            now: DateTime<Utc>,
        ) -> Result<Option<ClaimRecord>, Self::Error> {
            tokio::time::sleep(self.delay).await;
            self.inner.record(host_id, now).await
        }
    }

    fn claim() -> JoinClaim {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        JoinClaim::new(
            "123456789012-i-0123456789abcdef0".to_owned(),
            t("2026-11-01T12:00:00Z"),
            t("2026-11-01T12:10:00Z"),
            t("2026-11-01T12:01:00Z"),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn answers_within_the_timeout_and_times_out_after_it() {
        let slow = Slow {
            delay: Duration::from_secs(3),
            inner: InMemoryJoinRegistry::new(),
        };
        let patient = Bounded {
            inner: &slow,
            timeout: Duration::from_secs(5),
        };
        assert!(matches!(patient.claim(&claim()).await, Ok(true)));
        let hasty = Bounded {
            inner: &slow,
            timeout: Duration::from_secs(2),
        };
        let err = hasty.claim(&claim()).await.unwrap_err();
        assert!(matches!(err, BoundedError::TimedOut(t) if t == Duration::from_secs(2)));
        assert_eq!(err.to_string(), "not answered within 2s");
    }
}
