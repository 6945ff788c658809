//! Enrollment records: each host that got a certificate, so that renewals can be allowed or
//! refused and operators can list and evict hosts. The record type, the registry trait and its
//! in-memory implementation (on [`InMemoryJoinRegistry`]).

use core::convert::Infallible;
use core::future::Future;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::PoisonError;

use chrono::{DateTime, Utc};

use super::outcome::JoinOutcome;
use super::registry::InMemoryJoinRegistry;

/// The most records one [`EnrollmentRegistry::list`] call returns: a larger `limit` is
/// lowered to it, so that one page stays bounded in memory and time.
pub const MAX_LIST_LIMIT: usize = 1000;

/// A host that joined and got a certificate, as an [`EnrollmentRegistry`] keeps it.
///
/// Times are kept to the backend's precision: microseconds in PostgreSQL, milliseconds in
/// DynamoDB (AWS's `pendingTime` has whole seconds).
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use ec2_iid::Enrollment;
///
/// let launched = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
/// let now = launched + TimeDelta::minutes(1);
/// let joined = Enrollment::joined(
///     "123456789012-i-0123456789abcdef0", "123456789012", "us-east-1",
///     "i-0123456789abcdef0", 0, launched, "0a1b2c", now + TimeDelta::hours(1), now,
/// );
/// assert_eq!(joined.first_joined, now);
/// assert_eq!(joined.last_seen(), now);
/// assert!(joined.evicted_at.is_none() && joined.last_renewed.is_none());
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Enrollment {
    /// `<accountId>-<instanceId>`, the record's key.
    pub host_id: String,
    /// The document's `accountId`.
    pub account: String,
    /// The document's `region`.
    pub region: String,
    /// The document's `instanceId`.
    pub instance_id: String,
    /// The allow rule the host joined with (its index in the token).
    pub matched_rule: usize,
    /// The `pendingTime` of the launch the host joined with: after an eviction, only a newer
    /// launch may enroll again.
    pub pending_time: DateTime<Utc>,
    /// When the host first joined; kept by later joins until the record is evicted.
    pub first_joined: DateTime<Utc>,
    /// When the host last renewed its certificate, if it ever did.
    pub last_renewed: Option<DateTime<Utc>>,
    /// The serial number of the host's current certificate, lowercase hexadecimal.
    pub serial: String,
    /// When the host's current certificate expires.
    pub not_after: DateTime<Utc>,
    /// When an operator evicted the host: renewals are refused from then on.
    pub evicted_at: Option<DateTime<Utc>>,
}

impl Enrollment {
    /// The record of a join at `now`: `host_id` (account `account`, `region`, `instance_id`)
    /// joined with rule `matched_rule` and the launch of `pending_time`, and got the
    /// certificate `serial` (lowercase hexadecimal) valid until `not_after`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of a record that is built once per join"
    )]
    #[must_use]
    pub fn joined(
        host_id: impl Into<String>,
        account: impl Into<String>,
        region: impl Into<String>,
        instance_id: impl Into<String>,
        matched_rule: usize,
        pending_time: DateTime<Utc>,
        serial: impl Into<String>,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            host_id: host_id.into(),
            account: account.into(),
            region: region.into(),
            instance_id: instance_id.into(),
            matched_rule,
            pending_time,
            first_joined: now,
            last_renewed: None,
            serial: serial.into(),
            not_after,
            evicted_at: None,
        }
    }

    /// The record of the join `outcome` at `now`, which got the certificate `serial`
    /// (lowercase hexadecimal) valid until `not_after`.
    #[must_use]
    pub fn of_outcome(
        outcome: &JoinOutcome,
        serial: impl Into<String>,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        let document = outcome.document();
        Self::joined(
            outcome.host_id(),
            document.account_id.as_str(),
            document.region.as_str(),
            document.instance_id.as_str(),
            outcome.matched_rule(),
            document.pending_time,
            serial,
            not_after,
            now,
        )
    }

    /// The latest of `first_joined` and `last_renewed`: [`EnrollmentRegistry::purge`] drops
    /// records last seen before its cutoff.
    #[must_use]
    pub fn last_seen(&self) -> DateTime<Utc> {
        self.last_renewed
            .map_or(self.first_joined, |renewed| renewed.max(self.first_joined))
    }

    /// Whether this new join may be written over `stored`, the host's present record: it is
    /// not evicted, or this join is of a newer launch ([`EnrollmentRegistry::enroll`]).
    #[must_use]
    pub fn may_replace(&self, stored: &Self) -> bool {
        stored.evicted_at.is_none() || stored.pending_time < self.pending_time
    }

    /// The record [`enroll`](EnrollmentRegistry::enroll) stores when this join replaces
    /// `stored`: a record not evicted keeps its `first_joined` and `last_renewed`; an evicted
    /// one is replaced whole. A join is never renewed nor evicted: this one's `last_renewed`
    /// and `evicted_at` are not taken.
    #[must_use]
    pub fn merged_over(&self, stored: &Self) -> Self {
        let mut merged = self.as_join();
        if stored.evicted_at.is_none() {
            merged.first_joined = stored.first_joined;
            merged.last_renewed = stored.last_renewed;
        }
        merged
    }

    /// This record as a join: never renewed, not evicted.
    fn as_join(&self) -> Self {
        Self {
            last_renewed: None,
            evicted_at: None,
            ..self.clone()
        }
    }
}

/// Remembers each host that joined and got a certificate (its [`Enrollment`]), so that its
/// renewals can be allowed or refused, and operators can list and evict hosts.
///
/// Every method is atomic in every implementation (one statement or one conditional write,
/// never read-then-write), also across processes sharing the store:
/// - [`enroll`](Self::enroll) (at a join) stores a new host's record (never renewed, not
///   evicted: the argument's `last_renewed` and `evicted_at` are not taken); over a present record
///   that is not evicted it takes the new launch, rule, serial and expiry and keeps
///   `first_joined` and `last_renewed`; an evicted record is replaced only by a join of a
///   newer launch (`pending_time` later than the evicted one's), otherwise it is refused
///   (`Ok(false)`): replaying the evicted launch's document with the same key must not undo
///   the eviction.
/// - [`renew`](Self::renew) updates a present record that is not evicted; unknown and evicted
///   hosts get `None` (refused).
/// - [`evict`](Self::evict) marks a record evicted (once: a second eviction keeps the first
///   time); the host may only come back with a newer launch's document.
/// - [`purge`](Self::purge) deletes the records last seen ([`Enrollment::last_seen`]) before a
///   cutoff, evicted or not.
/// - [`count_enrolled`](Self::count_enrolled) counts the records not evicted, a gauge for
///   operators: it reads every record, so call it on a schedule, not per request. It writes
///   nothing, and a count made page by page (DynamoDB) is not one snapshot.
///
/// [`InMemoryJoinRegistry`] implements it next to [`JoinRegistry`](crate::JoinRegistry), so one
/// value serves both; `ec2-iid-postgres` and `ec2-iid-aws` (feature `dynamodb`) keep the
/// records next to their join claims.
///
/// ```
/// # use chrono::{TimeDelta, TimeZone, Utc};
/// use ec2_iid::{Enrollment, EnrollmentRegistry, InMemoryJoinRegistry};
///
/// # async fn run() -> Result<(), core::convert::Infallible> {
/// # let launched = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
/// # let now = launched + TimeDelta::minutes(1);
/// # let hour = TimeDelta::hours(1);
/// let registry = InMemoryJoinRegistry::new();
/// let host = "123456789012-i-0123456789abcdef0";
/// let joined = Enrollment::joined(host, "123456789012", "us-east-1", "i-0123456789abcdef0",
///     0, launched, "01", now + hour, now);
/// assert!(registry.enroll(&joined).await?);
/// let renewed = registry.renew(host, "02", now + hour * 2, now + hour).await?;
/// assert_eq!(renewed.map(|r| r.serial), Some("02".to_owned()));
/// assert_eq!(registry.count_enrolled().await?, 1);
/// assert!(registry.evict(host, now + hour).await?);
/// assert_eq!(registry.count_enrolled().await?, 0, "evicted hosts are not counted");
/// assert_eq!(registry.renew(host, "03", now + hour * 3, now + hour * 2).await?, None);
/// assert!(!registry.enroll(&joined).await?, "the evicted launch may not enroll again");
/// # Ok(())
/// # }
/// # // The in-memory registry never waits: one poll runs it.
/// # let mut run = core::pin::pin!(run());
/// # let waker = core::task::Waker::noop();
/// # let done = run.as_mut().poll(&mut core::task::Context::from_waker(waker));
/// # assert!(matches!(done, core::task::Poll::Ready(Ok(()))));
/// ```
pub trait EnrollmentRegistry {
    /// The implementor's error: any error type, `anyhow::Error` or
    /// `Box<dyn Error + Send + Sync>`.
    type Error: core::fmt::Debug + core::fmt::Display + Send + Sync + 'static;

    /// Stores the record of a join (see the trait's rules); `Ok(false)` if the host is evicted
    /// and this join is not of a newer launch.
    fn enroll(
        &self,
        enrollment: &Enrollment,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Records a renewal at `now` (the new certificate's `serial` and `not_after`) if the host
    /// is enrolled and not evicted, and returns the updated record; `None` refuses the renewal.
    fn renew(
        &self,
        host_id: &str,
        serial: &str,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Enrollment>, Self::Error>> + Send;

    /// The host's record, evicted or not.
    fn get(
        &self,
        host_id: &str,
    ) -> impl Future<Output = Result<Option<Enrollment>, Self::Error>> + Send;

    /// Up to `limit` records (at most [`MAX_LIST_LIMIT`]) ordered by host id, starting after
    /// the host id `after` (the last one of the previous page).
    fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Enrollment>, Self::Error>> + Send;

    /// Marks the host evicted at `now` (a host evicted before keeps its first eviction time);
    /// `Ok(false)` if there is no record of it.
    fn evict(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Deletes the records last seen ([`Enrollment::last_seen`]) before `older_than`, evicted
    /// or not, and returns how many.
    fn purge(
        &self,
        older_than: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// How many records are not evicted: the hosts that may renew (whether or not their
    /// current certificate has expired). It reads every record (a `count(*)` or a whole-table
    /// scan), so a server calls it on a schedule and keeps the last answer, never per request.
    fn count_enrolled(&self) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

/// The enrollment records of an [`InMemoryJoinRegistry`], by host id.
pub(crate) type Enrollments = BTreeMap<String, Enrollment>;

impl InMemoryJoinRegistry {
    fn enrollments(&self) -> std::sync::MutexGuard<'_, Enrollments> {
        self.enrollments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`EnrollmentRegistry::enroll`] on a map.
fn enroll(records: &mut Enrollments, enrollment: &Enrollment) -> bool {
    let stored = records.get(&enrollment.host_id);
    let record = match stored {
        Some(stored) if !enrollment.may_replace(stored) => return false,
        Some(stored) => enrollment.merged_over(stored),
        None => enrollment.as_join(),
    };
    records.insert(record.host_id.clone(), record);
    true
}

/// [`EnrollmentRegistry::renew`] on a map.
fn renew(
    records: &mut Enrollments,
    host_id: &str,
    serial: &str,
    not_after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Enrollment> {
    let record = records.get_mut(host_id)?;
    if record.evicted_at.is_some() {
        return None;
    }
    record.last_renewed = Some(now);
    serial.clone_into(&mut record.serial);
    record.not_after = not_after;
    Some(record.clone())
}

/// [`EnrollmentRegistry::list`] on a map.
fn list(records: &Enrollments, after: Option<&str>, limit: usize) -> Vec<Enrollment> {
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    records
        .range::<str, _>((start, Bound::Unbounded))
        .take(limit.min(MAX_LIST_LIMIT))
        .map(|(_, record)| record.clone())
        .collect()
}

impl EnrollmentRegistry for InMemoryJoinRegistry {
    type Error = Infallible;

    async fn enroll(&self, enrollment: &Enrollment) -> Result<bool, Infallible> {
        Ok(enroll(&mut self.enrollments(), enrollment))
    }

    async fn renew(
        &self,
        host_id: &str,
        serial: &str,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Enrollment>, Infallible> {
        Ok(renew(
            &mut self.enrollments(),
            host_id,
            serial,
            not_after,
            now,
        ))
    }

    async fn get(&self, host_id: &str) -> Result<Option<Enrollment>, Infallible> {
        Ok(self.enrollments().get(host_id).cloned())
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<Enrollment>, Infallible> {
        Ok(list(&self.enrollments(), after, limit))
    }

    async fn evict(&self, host_id: &str, now: DateTime<Utc>) -> Result<bool, Infallible> {
        Ok(self.enrollments().get_mut(host_id).is_some_and(|record| {
            record.evicted_at.get_or_insert(now);
            true
        }))
    }

    async fn purge(&self, older_than: DateTime<Utc>) -> Result<u64, Infallible> {
        let mut records = self.enrollments();
        let before = records.len();
        records.retain(|_, record| record.last_seen() >= older_than);
        Ok(u64::try_from(before.saturating_sub(records.len())).unwrap_or(u64::MAX))
    }

    async fn count_enrolled(&self) -> Result<u64, Infallible> {
        let enrolled = self
            .enrollments()
            .values()
            .filter(|record| record.evicted_at.is_none())
            .count();
        Ok(u64::try_from(enrolled).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone as _};

    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    fn joined(host: &str, launched: i64, serial: &str, now: i64) -> Enrollment {
        Enrollment::joined(
            host,
            "123456789012",
            "us-east-1",
            "i-0abc",
            1,
            t(launched),
            serial,
            t(now + 60),
            t(now),
        )
    }

    /// Runs a future of the in-memory registry, which never waits.
    fn now<T>(future: impl Future<Output = Result<T, Infallible>>) -> T {
        let future = core::pin::pin!(future);
        let waker = core::task::Waker::noop();
        match future.poll(&mut core::task::Context::from_waker(waker)) {
            core::task::Poll::Ready(Ok(value)) => value,
            _ => unreachable!("the in-memory registry never waits"),
        }
    }

    #[test]
    fn a_join_over_a_present_record_keeps_first_joined_and_takes_the_rest() {
        let registry = InMemoryJoinRegistry::new();
        assert!(now(registry.enroll(&joined("h", 0, "01", 1))));
        now(registry.renew("h", "02", t(100), t(30))).unwrap();
        let mut again = joined("h", 40, "03", 41);
        again.matched_rule = 2;
        assert!(now(registry.enroll(&again)));
        let stored = now(registry.get("h")).unwrap();
        assert_eq!(stored.first_joined, t(1));
        assert_eq!(stored.last_renewed, Some(t(30)));
        assert_eq!(
            (stored.serial.as_str(), stored.matched_rule),
            ("03", 2),
            "the new join's certificate and rule"
        );
        assert_eq!((stored.pending_time, stored.not_after), (t(40), t(101)));
    }

    #[test]
    fn eviction_refuses_the_same_launch_and_a_newer_launch_replaces_it() {
        let registry = InMemoryJoinRegistry::new();
        assert!(now(registry.enroll(&joined("h", 0, "01", 1))));
        assert!(now(registry.evict("h", t(5))));
        assert!(now(registry.evict("h", t(6))), "evicting again is fine");
        assert_eq!(now(registry.get("h")).unwrap().evicted_at, Some(t(5)));
        assert!(
            !now(registry.enroll(&joined("h", 0, "02", 7))),
            "same launch"
        );
        assert!(
            !now(registry.enroll(&joined("h", -1, "02", 7))),
            "older launch"
        );
        assert_eq!(now(registry.get("h")).unwrap().serial, "01", "unchanged");
        assert!(now(registry.enroll(&joined("h", 8, "03", 9))), "new launch");
        let stored = now(registry.get("h")).unwrap();
        assert_eq!(stored, joined("h", 8, "03", 9), "replaced whole");
        assert!(now(registry.renew("h", "04", t(200), t(10))).is_some());
    }

    #[test]
    fn renewals_of_unknown_or_evicted_hosts_are_refused() {
        let registry = InMemoryJoinRegistry::new();
        assert_eq!(now(registry.renew("h", "02", t(100), t(2))), None);
        assert!(!now(registry.evict("h", t(2))), "unknown host");
        assert!(now(registry.enroll(&joined("h", 0, "01", 1))));
        let renewed = now(registry.renew("h", "02", t(100), t(2))).unwrap();
        assert_eq!(renewed.last_renewed, Some(t(2)));
        assert_eq!((renewed.serial.as_str(), renewed.not_after), ("02", t(100)));
        assert_eq!(renewed.first_joined, t(1));
        assert_eq!(now(registry.get("h")), Some(renewed));
        assert!(now(registry.evict("h", t(3))));
        assert_eq!(now(registry.renew("h", "03", t(100), t(4))), None);
        assert_eq!(now(registry.get("h")).unwrap().serial, "02");
    }

    #[test]
    fn list_pages_by_host_id_and_caps_the_limit() {
        let registry = InMemoryJoinRegistry::new();
        for host in ["c", "a", "b", "d"] {
            assert!(now(registry.enroll(&joined(host, 0, "01", 1))));
        }
        let hosts = |page: Vec<Enrollment>| page.into_iter().map(|r| r.host_id).collect::<Vec<_>>();
        assert_eq!(hosts(now(registry.list(None, 2))), ["a", "b"]);
        assert_eq!(hosts(now(registry.list(Some("b"), 2))), ["c", "d"]);
        assert_eq!(hosts(now(registry.list(Some("bb"), 10))), ["c", "d"]);
        assert!(now(registry.list(Some("d"), 2)).is_empty());
        assert!(now(registry.list(None, 0)).is_empty());
        for i in 0..MAX_LIST_LIMIT {
            assert!(now(registry.enroll(&joined(
                &format!("x{i:04}"),
                0,
                "01",
                1
            ))));
        }
        assert_eq!(now(registry.list(None, usize::MAX)).len(), MAX_LIST_LIMIT);
    }

    #[test]
    fn purge_drops_records_last_seen_before_the_cutoff() {
        let registry = InMemoryJoinRegistry::new();
        assert!(now(registry.enroll(&joined("old", 0, "01", 1))));
        assert!(now(registry.enroll(&joined("renewed", 0, "01", 1))));
        assert!(now(registry.enroll(&joined("evicted", 0, "01", 1))));
        assert!(now(registry.enroll(&joined("new", 0, "01", 10))));
        now(registry.renew("renewed", "02", t(100), t(10))).unwrap();
        assert!(now(registry.evict("evicted", t(20))));
        assert_eq!(now(registry.purge(t(10))), 2, "old and evicted");
        assert_eq!(now(registry.purge(t(10))), 0);
        let left: Vec<_> = now(registry.list(None, 10))
            .into_iter()
            .map(|r| r.host_id)
            .collect();
        assert_eq!(left, ["new", "renewed"]);
    }

    #[test]
    fn count_enrolled_leaves_out_evicted_records() {
        let registry = InMemoryJoinRegistry::new();
        assert_eq!(now(registry.count_enrolled()), 0);
        for host in ["a", "b", "c"] {
            assert!(now(registry.enroll(&joined(host, 0, "01", 1))));
        }
        assert!(
            now(registry.enroll(&joined("a", 5, "02", 6))),
            "a join again"
        );
        assert_eq!(now(registry.count_enrolled()), 3);
        assert!(now(registry.evict("b", t(7))));
        assert_eq!(now(registry.count_enrolled()), 2);
        assert!(
            now(registry.enroll(&joined("b", 8, "03", 9))),
            "a new launch"
        );
        assert_eq!(now(registry.count_enrolled()), 3);
        assert_eq!(
            now(registry.purge(t(2))),
            2,
            "a and c, last seen at minute 1"
        );
        assert_eq!(now(registry.count_enrolled()), 1);
    }

    fn renewed_or(record: &Enrollment, renewed: Option<DateTime<Utc>>) -> Enrollment {
        let mut record = record.clone();
        record.last_renewed = renewed;
        record
    }

    #[test]
    fn the_rules_as_functions() {
        let stored = joined("h", 0, "01", 1);
        let newer = joined("h", 5, "02", 6);
        let same = joined("h", 0, "02", 6);
        assert!(same.may_replace(&stored), "not evicted");
        let mut evicted = stored.clone();
        evicted.evicted_at = Some(t(3));
        evicted.last_renewed = Some(t(2));
        assert!(!same.may_replace(&evicted));
        assert!(newer.may_replace(&evicted));
        assert_eq!(newer.merged_over(&evicted), newer, "replaced whole");
        assert_eq!(
            evicted.merged_over(&stored),
            renewed_or(&stored, None),
            "a join is neither renewed nor evicted"
        );
        let mut renewed = stored.clone();
        renewed.last_renewed = Some(t(2));
        let merged = newer.merged_over(&renewed);
        assert_eq!(
            (merged.first_joined, merged.last_renewed),
            (t(1), Some(t(2)))
        );
        assert_eq!(merged.last_seen(), t(2));
        assert_eq!(stored.last_seen(), t(1));
    }
}
