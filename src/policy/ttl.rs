//! Freshness of a document: its `pendingTime` against the caller's clock, and the TTL setting
//! (`aws_iid_ttl`) that bounds it, written as a Go duration.

use core::fmt;
use core::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// Teleport's default `aws_iid_ttl`: documents of instances launched longer ago are refused.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// The shortest TTL accepted: anything shorter is a bare number read as nanoseconds.
pub(crate) const MIN_TTL: Duration = Duration::from_secs(1);

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
/// use ec2_iid::check_ttl;
/// use ec2_iid::token::DEFAULT_MAX_FUTURE_SKEW;
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
    if ttl_refuses_from(pending_time, ttl).is_some_and(|refused| now >= refused) {
        return Err(Error::Expired {
            pending_time,
            now,
            ttl,
        });
    }
    Ok(())
}

/// The first instant the TTL refuses a document launched at `pending_time`: one nanosecond
/// after `pending_time + ttl`, the last instant admitted (inclusive, as Teleport). `None` if
/// that is beyond chrono's range: the TTL never refuses it.
///
/// The one definition of the TTL's boundary: [`check_ttl`] refuses from this instant, and a
/// join claim is kept at least until it ([`claim_expiry`]), so that no instant admits a
/// document whose claim has expired.
fn ttl_refuses_from(pending_time: DateTime<Utc>, ttl: Duration) -> Option<DateTime<Utc>> {
    TimeDelta::from_std(ttl)
        .ok()
        .and_then(|ttl| pending_time.checked_add_signed(ttl))
        .and_then(|last_admitted| last_admitted.checked_add_signed(TimeDelta::nanoseconds(1)))
}

/// When a join registry may forget the claim of a document launched at `pending_time`: the
/// first instant a TTL of `window` (the verifier's TTL plus its future skew) refuses it,
/// rounded up to the microsecond. `window >= ttl`, so at every instant [`check_ttl`] admits
/// the document its claim is unexpired (`expires_at > now`).
///
/// Rounded up so that registries storing microseconds (PostgreSQL truncates finer digits)
/// keep the exact instant, and those storing seconds round it up again (DynamoDB): a
/// registry never shortens the claim. `DateTime::MAX_UTC` (kept forever) when out of range.
pub(crate) fn claim_expiry(pending_time: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    ttl_refuses_from(pending_time, window)
        .and_then(ceil_to_micros)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at` rounded up to a whole microsecond; `None` past chrono's range.
fn ceil_to_micros(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let below = at.timestamp_subsec_nanos() % 1_000;
    if below == 0 {
        return Some(at);
    }
    at.checked_add_signed(TimeDelta::nanoseconds(i64::from(1_000 - below)))
}

/// `delta > limit` for a positive `delta`; limits beyond TimeDelta's range never are exceeded.
fn exceeds(delta: TimeDelta, limit: Duration) -> bool {
    TimeDelta::from_std(limit).is_ok_and(|limit| delta > limit)
}

/// `aws_iid_ttl`: a Go duration string (`5m`, `90s`, `1h30m`, `1.5h`) or integer nanoseconds
/// (Teleport's stored form). Zero means "use the default" (5 minutes).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct IidTtl(Duration);

impl IidTtl {
    /// A TTL of `duration`.
    #[must_use]
    pub fn new(duration: Duration) -> Self {
        Self(duration)
    }

    /// The TTL.
    #[must_use]
    pub fn get(self) -> Duration {
        self.0
    }
}

impl<'de> Deserialize<'de> for IidTtl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IidTtl;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Go duration such as \"5m\", or integer nanoseconds")
            }

            fn visit_u64<E: serde::de::Error>(self, nanos: u64) -> Result<IidTtl, E> {
                Ok(IidTtl(Duration::from_nanos(nanos)))
            }

            fn visit_i64<E: serde::de::Error>(self, nanos: i64) -> Result<IidTtl, E> {
                u64::try_from(nanos)
                    .map(|n| IidTtl(Duration::from_nanos(n)))
                    .map_err(|_| E::custom("aws_iid_ttl must not be negative"))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<IidTtl, E> {
                parse_go_duration(text).map(IidTtl).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for IidTtl {
    /// Whole milliseconds as `<n>ms`, anything finer as `<n>ns`, so that the value parses back
    /// exactly (a sub-millisecond TTL written as `0ms` would come back as the 5-minute default).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.subsec_nanos().is_multiple_of(1_000_000) {
            s.collect_str(&format_args!("{}ms", self.0.as_millis()))
        } else {
            s.collect_str(&format_args!("{}ns", self.0.as_nanos()))
        }
    }
}

/// Parses Go's `time.ParseDuration` syntax, for non-negative durations.
///
/// ```
/// use core::time::Duration;
/// assert_eq!(ec2_iid::token::parse_go_duration("1h30m")?, Duration::from_secs(5400));
/// assert_eq!(ec2_iid::token::parse_go_duration("1.5h")?, Duration::from_secs(5400));
/// assert!(ec2_iid::token::parse_go_duration("5 minutes").is_err());
/// # Ok::<(), String>(())
/// ```
///
/// # Errors
/// A message naming what is wrong: empty, negative, missing or unknown unit, overflow.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let err = |what: &str| format!("invalid duration {text:?}: {what}");
    let rest = text.strip_prefix('+').unwrap_or(text);
    if rest.starts_with('-') {
        return Err(err("negative"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(err("empty"));
    }
    // Go limits durations to i64 nanoseconds (about 292 years).
    const MAX_NANOS: u128 = 9_223_372_036_854_775_807;
    let mut total: u128 = 0;
    let mut rest = rest;
    while !rest.is_empty() {
        let (nanos, after) = duration_term(rest).map_err(err)?;
        total = total.checked_add(nanos).ok_or_else(|| err("overflow"))?;
        if total > MAX_NANOS {
            return Err(err("overflow"));
        }
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err("overflow"))?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| err("overflow"))?;
    Ok(Duration::new(secs, nanos))
}

/// One `<number>[.<fraction>]<unit>` term at the start of `text`: its nanoseconds and the rest,
/// or what is wrong with it.
fn duration_term(text: &str) -> Result<(u128, &str), &'static str> {
    let int_len = text.bytes().take_while(u8::is_ascii_digit).count();
    let (int_part, after) = text.split_at(int_len);
    let (frac_part, after) = match after.strip_prefix('.') {
        Some(after) => {
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            after.split_at(n)
        }
        None => ("", after),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err("expected a number");
    }
    let unit_len = after
        .bytes()
        .take_while(|b| !b.is_ascii_digit() && *b != b'.')
        .count();
    let (unit, after) = after.split_at(unit_len);
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => return Err("missing unit"),
        _ => return Err("unknown unit"),
    };
    let whole: u128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| "number too large")?
    };
    let nanos = whole
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(fraction_nanos(frac_part, unit_nanos)))
        .ok_or("overflow")?;
    Ok((nanos, after))
}

/// The nanoseconds of a fraction `.<digits>` of `unit_nanos`, digits past nanosecond precision
/// dropped (as Go does). At most `unit_nanos` (an hour in nanoseconds), so it cannot overflow.
fn fraction_nanos(digits: &str, unit_nanos: u128) -> u128 {
    let mut scale = unit_nanos;
    let mut nanos: u128 = 0;
    for digit in digits.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        nanos = nanos.saturating_add(u128::from(digit.saturating_sub(b'0')).saturating_mul(scale));
    }
    nanos
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

    /// The instant a registry storing microseconds keeps: PostgreSQL truncates finer digits.
    fn truncated_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
        at - TimeDelta::nanoseconds(i64::from(at.timestamp_subsec_nanos() % 1_000))
    }

    /// For every instant the TTL admits a document, its claim is unexpired (`expires_at >
    /// now`), also as PostgreSQL (µs) and DynamoDB (seconds, rounded up) store it; and the
    /// boundary is tight: one nanosecond after the last admitted instant, the TTL refuses.
    #[test]
    fn no_instant_admits_a_document_whose_claim_expired() {
        let ns = TimeDelta::nanoseconds;
        let launches = [t0(), t0() + ns(1), t0() + ns(999), t0() + ns(123_456_789)];
        let ttls = [
            Duration::from_secs(1),
            Duration::new(1, 1),
            Duration::new(1, 999_999_999),
            Duration::new(59, 999_999_500),
            Duration::from_secs(300),
            Duration::new(300, 1_000),
            Duration::new(300, 500),
            Duration::new(3_600, 123_456_789),
            Duration::new(86_400, 999),
            Duration::new(3 * 86_400, 1),
            Duration::from_secs(7 * 86_400),
        ];
        let skews = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999),
            Duration::from_micros(1),
            Duration::from_millis(1),
            Duration::from_secs(1),
            DEFAULT_MAX_FUTURE_SKEW,
            Duration::new(299, 999_999_999),
        ];
        let offsets: Vec<TimeDelta> = [1, 1_000, 1_000_000, 1_000_000_000]
            .into_iter()
            .flat_map(|n| [ns(-n), ns(n)])
            .chain([TimeDelta::zero()])
            .collect();
        let mut admitted = 0_u32;
        for pending in launches {
            for ttl in ttls {
                let last = pending + TimeDelta::from_std(ttl).unwrap();
                for skew in skews {
                    let expires_at = claim_expiry(pending, ttl + skew);
                    let earliest = pending - TimeDelta::from_std(skew).unwrap();
                    let stored_pg = truncated_to_micros(expires_at);
                    let stored_ddb =
                        expires_at.timestamp() + i64::from(expires_at.timestamp_subsec_nanos() > 0);
                    for now in offsets
                        .iter()
                        .flat_map(|offset| [last + *offset, earliest + *offset, pending + *offset])
                    {
                        if check_ttl(pending, ttl, skew, now).is_err() {
                            continue;
                        }
                        admitted += 1;
                        let case =
                            format!("launch {pending:?} ttl {ttl:?} skew {skew:?} now {now:?}");
                        assert!(expires_at > now, "{case}: claim expired at {expires_at:?}");
                        assert!(stored_pg > now, "{case}: PostgreSQL keeps {stored_pg:?}");
                        assert!(
                            stored_ddb > now.timestamp(),
                            "{case}: DynamoDB keeps {stored_ddb}"
                        );
                    }
                    assert_eq!(check_ttl(pending, ttl, skew, last), Ok(()));
                    assert_eq!(
                        check_ttl(pending, ttl, skew, last + ns(1)),
                        Err(Error::Expired {
                            pending_time: pending,
                            now: last + ns(1),
                            ttl
                        }),
                        "launch {pending:?} ttl {ttl:?} skew {skew:?}: refused 1 ns after the last admitted instant"
                    );
                    assert_eq!(expires_at.timestamp_subsec_nanos() % 1_000, 0, "whole µs");
                    assert!(
                        expires_at - last <= TimeDelta::from_std(skew).unwrap() + ns(1_000),
                        "kept no longer than needed"
                    );
                }
            }
        }
        assert!(
            admitted > 1_000,
            "the loop checks admitted instants: {admitted}"
        );
    }

    #[test]
    fn claims_out_of_range_are_kept_forever() {
        let max = DateTime::<Utc>::MAX_UTC;
        assert_eq!(claim_expiry(max, Duration::ZERO), max);
        assert_eq!(claim_expiry(t0(), Duration::MAX), max);
        assert_eq!(
            claim_expiry(max - TimeDelta::nanoseconds(2), Duration::ZERO),
            max
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

    #[test]
    fn go_durations() {
        for (text, secs, nanos) in [
            ("5m", 300, 0),
            ("90s", 90, 0),
            ("1h30m", 5400, 0),
            ("1.5h", 5400, 0),
            ("0", 0, 0),
            ("+2s", 2, 0),
            ("300ms", 0, 300_000_000),
            ("1us", 0, 1_000),
            ("1µs", 0, 1_000),
            (".5s", 0, 500_000_000),
            ("1.000000001s", 1, 1),
            ("2562047h47m16.854775807s", 9_223_372_036, 854_775_807),
        ] {
            assert_eq!(
                parse_go_duration(text),
                Ok(Duration::new(secs, nanos)),
                "{text}"
            );
        }
        for bad in [
            "",
            "-5m",
            "5",
            "5 m",
            "m",
            "5x",
            ".s",
            "2562047h47m16.854775808s",
            "1e3s",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
        // Long fractions and huge numbers end in a value or an error, never a panic or a wrap.
        let long_fraction = format!("1.{}h", "9".repeat(10_000));
        let parsed = parse_go_duration(&long_fraction).unwrap();
        assert!(parsed > Duration::from_secs(7199) && parsed < Duration::from_secs(7200));
        let huge = format!("{}h", "9".repeat(38));
        assert!(parse_go_duration(&huge).is_err());
        let sum = "2562047h".repeat(2) + "1h";
        assert!(parse_go_duration(&sum).is_err());
    }

    #[test]
    fn ttl_serializes_exactly() {
        assert_eq!(
            serde_json::to_string(&IidTtl::new(Duration::from_secs(90))).unwrap(),
            "\"90000ms\""
        );
        for ttl in [
            Duration::from_nanos(999_999),
            Duration::from_nanos(299_999_999_999),
        ] {
            let json = serde_json::to_string(&IidTtl::new(ttl)).unwrap();
            assert_eq!(
                serde_json::from_str::<IidTtl>(&json).unwrap().get(),
                ttl,
                "{json}"
            );
        }
    }
}
