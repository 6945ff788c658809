//! Freshness of a document: its `pendingTime` against the caller's clock.

use core::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::Error;

/// Teleport's allowance for a `pendingTime` ahead of the verifier's clock.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(60);

/// Checks that an instance was launched recently: `now - pending_time <= ttl` (inclusive, as
/// Teleport) and `pending_time <= now + max_future_skew`.
///
/// AWS re-signs the documents of long-running instances but keeps their old `pendingTime`
/// (it changes only when the instance is launched or stopped and started, not on reboot), so
/// this check admits only freshly launched instances: a long-running instance cannot join
/// with a TTL of minutes, however recently its document was signed.
///
/// Safe for any `DateTime` and any `Duration`: no overflow, no panic. The clock comes last, as
/// in every function of the crate that takes one.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use core::time::Duration;
/// use ec2_iid::{DEFAULT_MAX_FUTURE_SKEW, check_ttl};
///
/// let pending = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
/// let ttl = Duration::from_secs(300);
/// assert!(check_ttl(pending, ttl, DEFAULT_MAX_FUTURE_SKEW, pending + chrono::Duration::minutes(5)).is_ok());
/// assert!(check_ttl(pending, ttl, DEFAULT_MAX_FUTURE_SKEW, pending + chrono::Duration::minutes(6)).is_err());
/// ```
///
/// # Errors
/// [`Error::Expired`] or [`Error::PendingTimeInFuture`], each with the times compared.
pub fn check_ttl(
    pending_time: DateTime<Utc>,
    ttl: Duration,
    max_future_skew: Duration,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    // The difference of two chrono DateTimes always fits a TimeDelta.
    let age = now.signed_duration_since(pending_time);
    if age < TimeDelta::zero() && exceeds(-age, max_future_skew) {
        return Err(Error::PendingTimeInFuture {
            pending_time,
            now,
            max_future_skew,
        });
    }
    if age > TimeDelta::zero() && exceeds(age, ttl) {
        return Err(Error::Expired {
            pending_time,
            now,
            ttl,
        });
    }
    Ok(())
}

/// `delta > limit` for a positive `delta`; limits beyond TimeDelta's range never are exceeded.
fn exceeds(delta: TimeDelta, limit: Duration) -> bool {
    TimeDelta::from_std(limit).is_ok_and(|limit| delta > limit)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
    }

    const TTL: Duration = Duration::from_secs(300);

    #[test]
    fn boundaries() {
        let skew = DEFAULT_MAX_FUTURE_SKEW;
        let at = |secs: i64| t0() + TimeDelta::seconds(secs);
        assert_eq!(check_ttl(t0(), TTL, skew, at(0)), Ok(()));
        assert_eq!(
            check_ttl(t0(), TTL, skew, at(300)),
            Ok(()),
            "inclusive, as Teleport"
        );
        assert_eq!(
            check_ttl(t0(), TTL, skew, at(301)),
            Err(Error::Expired {
                pending_time: t0(),
                now: at(301),
                ttl: TTL
            })
        );
        assert_eq!(check_ttl(t0(), TTL, skew, at(-60)), Ok(()));
        assert_eq!(
            check_ttl(t0(), TTL, skew, at(-61)),
            Err(Error::PendingTimeInFuture {
                pending_time: t0(),
                now: at(-61),
                max_future_skew: skew
            })
        );
        assert!(
            check_ttl(
                t0(),
                TTL,
                skew,
                t0() + TimeDelta::nanoseconds(300_000_000_001)
            )
            .is_err()
        );
    }

    #[test]
    fn extremes_do_not_overflow() {
        let max = DateTime::<Utc>::MAX_UTC;
        let min = DateTime::<Utc>::MIN_UTC;
        let huge = Duration::MAX;
        assert!(matches!(
            check_ttl(min, TTL, TTL, max),
            Err(Error::Expired { .. })
        ));
        assert!(matches!(
            check_ttl(max, TTL, TTL, min),
            Err(Error::PendingTimeInFuture { .. })
        ));
        assert_eq!(check_ttl(min, huge, huge, max), Ok(()));
        assert_eq!(check_ttl(max, huge, huge, min), Ok(()));
    }
}
