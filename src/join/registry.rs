//! Each instance joins once: the claim a join makes, the registry trait and an in-memory one.

use core::convert::Infallible;
use core::future::Future;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// What a join asks a [`JoinRegistry`] to record: the host, its launch, who asks, and how long
/// to keep it.
///
/// [`PendingJoin::check_instance_once`](crate::PendingJoin::check_instance_once) makes one
/// from the checked document; the public constructor is for testing registry implementations.
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// let launched = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
/// let claim = ec2_iid::JoinClaim::new("123456789012-i-0123456789abcdef0", launched,
///     launched + TimeDelta::minutes(6), launched + TimeDelta::minutes(1))
///     .with_requester([7; 32]);
/// assert!(claim.expires_at > claim.now);
/// assert_eq!(claim.requester, Some([7; 32]));
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct JoinClaim {
    /// `<accountId>-<instanceId>`.
    pub host_id: String,
    /// The document's `pendingTime`: a newer one is a new launch (the instance was stopped and
    /// started) and may join again.
    pub pending_time: DateTime<Utc>,
    /// When the record may be forgotten: just after `pendingTime` + TTL + the allowed future
    /// skew (the first instant the TTL refuses, plus the skew, rounded up to the microsecond).
    /// From then on the TTL alone refuses the document, so no replay can get past it.
    pub expires_at: DateTime<Utc>,
    /// The caller's clock at the claim; records with `expires_at <= now` are expired.
    pub now: DateTime<Utc>,
    /// Who claims, as 32 opaque bytes the registry stores with the record (a value unique to
    /// the request, or a digest of the requester's public key). The same requester claiming
    /// the same launch again wins again, so a claim retried after a lost answer (by the
    /// caller, a driver or an SDK) is not refused as a replay, and a caller whose claim
    /// failed with an unknown outcome can read the record back and see whether it was
    /// recorded. `None` never matches: every repeat is a replay.
    pub requester: Option<[u8; 32]>,
}

/// A host's stored claim, as [`JoinRegistry::record`] reads it back.
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use ec2_iid::{ClaimRecord, JoinClaim};
/// let launched = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
/// let claim = JoinClaim::new("123456789012-i-0123456789abcdef0", launched,
///     launched + TimeDelta::minutes(6), launched + TimeDelta::minutes(1))
///     .with_requester([7; 32]);
/// let stored = ClaimRecord::new(launched, launched + TimeDelta::minutes(6), Some([7; 32]));
/// assert!(claim.is_recorded_in(&stored));
/// assert!(claim.wins_over(&stored), "the same requester may claim its launch again");
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct ClaimRecord {
    /// The claimed launch's `pendingTime`.
    pub pending_time: DateTime<Utc>,
    /// When the record may be forgotten.
    pub expires_at: DateTime<Utc>,
    /// The requester of the claim that wrote it.
    pub requester: Option<[u8; 32]>,
}

impl ClaimRecord {
    /// A record of a launch at `pending_time`, kept until `expires_at`, written by `requester`.
    #[must_use]
    pub fn new(
        pending_time: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        requester: Option<[u8; 32]>,
    ) -> Self {
        Self {
            pending_time,
            expires_at,
            requester,
        }
    }
}

impl JoinClaim {
    /// A claim for `host_id` launched at `pending_time`, kept until `expires_at`, made at `now`,
    /// by no particular requester ([`with_requester`](Self::with_requester) names one).
    #[must_use]
    pub fn new(
        host_id: impl Into<String>,
        pending_time: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            host_id: host_id.into(),
            pending_time,
            expires_at,
            now,
            requester: None,
        }
    }

    /// The same claim made by `requester` (see [`JoinClaim::requester`]).
    #[must_use]
    pub fn with_requester(mut self, requester: [u8; 32]) -> Self {
        self.requester = Some(requester);
        self
    }

    /// Whether this claim wins against the stored record of the same host: the record expired,
    /// this claim is of a newer launch, or it is the same launch claimed by the same requester
    /// again. Every [`JoinRegistry`] decides this way, atomically.
    #[must_use]
    pub fn wins_over(&self, stored: &ClaimRecord) -> bool {
        stored.expires_at <= self.now
            || stored.pending_time < self.pending_time
            || self.is_recorded_in(stored)
    }

    /// Whether `stored` is this claim's own record: the same launch, written by this claim's
    /// requester. After a claim failed with an unknown outcome, this tells from the record
    /// read back whether the claim was recorded.
    #[must_use]
    pub fn is_recorded_in(&self, stored: &ClaimRecord) -> bool {
        self.requester.is_some()
            && stored.requester == self.requester
            && stored.pending_time == self.pending_time
    }

    /// This claim's record, as a registry stores it.
    #[must_use]
    pub fn record(&self) -> ClaimRecord {
        ClaimRecord::new(self.pending_time, self.expires_at, self.requester)
    }
}

/// Remembers which hosts have joined, so that each launch of an instance joins once.
///
/// The semantics every implementation must keep, atomically (one statement or one
/// compare-and-swap, never read-then-write), also across processes sharing the store:
/// - the first claim of a host wins (`Ok(true)`);
/// - a claim with the same `pending_time` as the stored one is a replay: refused (`Ok(false)`),
///   unless the stored one has the same [`requester`](JoinClaim::requester): then it wins
///   again (a retry);
/// - a claim with a *newer* `pending_time` (the instance was stopped and started) wins and
///   replaces the record; an older one is refused;
/// - a record whose `expires_at <= claim.now` counts as absent, and may be deleted.
///
/// [`InMemoryJoinRegistry`] is a process-local implementation; `ec2-iid-postgres` and
/// `ec2-iid-aws` (feature `dynamodb`) share one across replicas.
pub trait JoinRegistry {
    /// The implementor's error: any error type, `anyhow::Error` or
    /// `Box<dyn Error + Send + Sync>`.
    type Error: core::fmt::Debug + core::fmt::Display + Send + Sync + 'static;

    /// Records the claim if it wins ([`JoinClaim::wins_over`]); `Ok(true)` if it did.
    fn claim(&self, claim: &JoinClaim) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// The record of `host_id` not yet expired at `now`, read consistently: it reflects every
    /// claim that returned before the read started.
    ///
    /// [`PendingJoin::check_instance_once`](crate::PendingJoin::check_instance_once) reads it
    /// twice: before the lookup, so that replays are refused without an EC2 call, and after a
    /// claim that failed, to learn whether the claim was recorded after all. Only
    /// [`claim`](Self::claim) grants.
    fn record(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<ClaimRecord>, Self::Error>> + Send;
}

/// A [`JoinRegistry`] in memory: for tests, examples and single-process servers. It is also
/// an [`EnrollmentRegistry`](crate::EnrollmentRegistry), so one value serves both.
///
/// Expired records are dropped as claims come in, so memory stays bounded by the hosts that
/// joined within one TTL.
#[derive(Debug, Default)]
pub struct InMemoryJoinRegistry {
    state: Mutex<Records>,
    /// Its [`EnrollmentRegistry`](crate::EnrollmentRegistry) records.
    pub(super) enrollments: Mutex<super::enrollment::Enrollments>,
}

#[derive(Debug, Default)]
struct Records {
    by_host: HashMap<String, ClaimRecord>,
    /// `(expires_at, host_id)` of every record, oldest first, to purge without a scan.
    by_expiry: BTreeSet<(DateTime<Utc>, String)>,
}

impl InMemoryJoinRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets a host (e.g. after it left), so that it may join again.
    pub fn release(&self, host_id: &str) -> bool {
        self.lock().remove(host_id)
    }

    /// How many records are held (expired ones go at the next claim).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().by_host.len()
    }

    /// Whether no record is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Records {
    fn purge(&mut self, now: DateTime<Utc>) {
        while let Some(first) = self.by_expiry.first()
            && first.0 <= now
        {
            if let Some((_, host_id)) = self.by_expiry.pop_first() {
                self.by_host.remove(&host_id);
            }
        }
    }

    fn remove(&mut self, host_id: &str) -> bool {
        match self.by_host.remove(host_id) {
            Some(record) => self
                .by_expiry
                .remove(&(record.expires_at, host_id.to_owned())),
            None => false,
        }
    }

    fn claim(&mut self, claim: &JoinClaim) -> bool {
        self.purge(claim.now);
        if let Some(stored) = self.by_host.get(&claim.host_id)
            && !claim.wins_over(stored)
        {
            return false;
        }
        self.remove(&claim.host_id);
        self.by_host.insert(claim.host_id.clone(), claim.record());
        self.by_expiry
            .insert((claim.expires_at, claim.host_id.clone()));
        true
    }
}

impl JoinRegistry for InMemoryJoinRegistry {
    type Error = Infallible;

    async fn claim(&self, claim: &JoinClaim) -> Result<bool, Infallible> {
        Ok(self.lock().claim(claim))
    }

    async fn record(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimRecord>, Infallible> {
        let records = self.lock();
        let stored = records.by_host.get(host_id);
        Ok(stored.filter(|r| r.expires_at > now).copied())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone as _};

    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    fn claim(host: &str, launched: i64, now: i64) -> JoinClaim {
        JoinClaim::new(host, t(launched), t(launched + 6), t(now))
    }

    #[test]
    fn first_wins_replay_and_older_refused_newer_launch_wins() {
        let mut records = Records::default();
        assert!(records.claim(&claim("h", 0, 1)));
        assert!(!records.claim(&claim("h", 0, 2)), "replay");
        assert!(records.claim(&claim("h", 3, 4)), "restart: a newer launch");
        assert!(!records.claim(&claim("h", 0, 4)), "older launch");
        assert!(!records.claim(&claim("h", 3, 5)), "replay of the restart");
        assert!(records.claim(&claim("other", 0, 5)));
        assert_eq!(records.by_host.len(), 2);
        assert_eq!(records.by_expiry.len(), 2);
    }

    #[test]
    fn expired_records_count_as_absent_and_are_dropped() {
        let mut records = Records::default();
        assert!(records.claim(&claim("h", 0, 1)));
        // At the record's expiry it no longer blocks (the TTL refuses that document anyway).
        assert!(records.claim(&claim("h", 0, 6)));
        assert!(records.claim(&claim("x", 10, 11)));
        assert_eq!(records.by_host.len(), 1, "h expired at minute 6");
        assert!(records.remove("x"));
        assert!(!records.remove("x"));
        assert!(records.by_expiry.is_empty());
    }

    #[test]
    fn the_same_requester_wins_its_launch_again_others_do_not() {
        let mut records = Records::default();
        let mine = claim("h", 0, 1).with_requester([1; 32]);
        assert!(records.claim(&mine));
        assert!(records.claim(&mine), "a retry of the same claim");
        assert!(!records.claim(&claim("h", 0, 2).with_requester([2; 32])));
        assert!(
            !records.claim(&claim("h", 0, 2)),
            "no requester never matches"
        );
        let stored = records.by_host["h"];
        assert!(mine.is_recorded_in(&stored));
        assert!(!claim("h", 0, 1).is_recorded_in(&stored));
        let relaunched = claim("h", 3, 4).with_requester([1; 32]);
        assert!(!relaunched.is_recorded_in(&stored), "another launch");
    }

    #[test]
    fn record_reads_back_what_is_not_expired() {
        let registry = InMemoryJoinRegistry::new();
        let mine = claim("h", 0, 1).with_requester([1; 32]);
        let read = |now| {
            let future = core::pin::pin!(registry.record("h", t(now)));
            let waker = core::task::Waker::noop();
            match future.poll(&mut core::task::Context::from_waker(waker)) {
                core::task::Poll::Ready(Ok(record)) => record,
                _ => unreachable!("the in-memory registry never waits"),
            }
        };
        assert_eq!(read(1), None);
        assert!(registry.lock().claim(&mine));
        assert_eq!(read(5), Some(mine.record()));
        assert_eq!(read(6), None, "expired at minute 6");
    }
}
