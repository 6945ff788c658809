//! The [`EnrollmentRegistry`] rules (`count_enrolled` with each), run against the registry
//! crates' implementations (ec2-iid-aws's DynamoDB, ec2-iid-postgres's).

use chrono::TimeDelta;
use ec2_iid::{Enrollment, EnrollmentRegistry, MAX_LIST_LIMIT};

use crate::registries::t;

/// `host` joined at minute `now` with the launch of minute `launched` and the certificate
/// `serial`, valid for an hour.
pub fn joined(host: &str, launched: i64, serial: &str, now: i64) -> Enrollment {
    Enrollment::joined(
        host,
        "123456789012",
        "us-east-1",
        host.rsplit_once("-i-").map_or("i-0", |(_, id)| id),
        1,
        t(launched),
        serial,
        t(now + 60),
        t(now),
    )
}

/// Every rule of [`EnrollmentRegistry`] on `host` (and `host` + `-b`, `-c`), in order.
pub async fn rules<R: EnrollmentRegistry>(registry: &R, host: &str) {
    let others = registry.count_enrolled().await.unwrap();
    assert_eq!(registry.get(host).await.unwrap(), None);
    assert_eq!(registry.renew(host, "0f", t(99), t(1)).await.unwrap(), None);
    assert!(!registry.evict(host, t(1)).await.unwrap(), "unknown host");

    // A join is stored neither renewed nor evicted, whatever the argument says.
    let mut first = joined(host, 0, "01", 1);
    first.last_renewed = Some(t(1));
    first.evicted_at = Some(t(1));
    assert!(registry.enroll(&first).await.unwrap());
    let first = joined(host, 0, "01", 1);
    assert_eq!(registry.get(host).await.unwrap().as_ref(), Some(&first));
    assert_eq!(registry.count_enrolled().await.unwrap(), others + 1);

    let renewed = registry
        .renew(host, "02", t(90), t(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.last_renewed, Some(t(30)));
    assert_eq!((renewed.serial.as_str(), renewed.not_after), ("02", t(90)));
    assert_eq!(renewed.first_joined, t(1));
    assert_eq!(registry.get(host).await.unwrap().as_ref(), Some(&renewed));

    // A join of a new launch while enrolled: first_joined and last_renewed stay.
    let mut rejoined = joined(host, 40, "03", 41);
    rejoined.matched_rule = 2;
    assert!(registry.enroll(&rejoined).await.unwrap());
    let stored = registry.get(host).await.unwrap().unwrap();
    assert_eq!(stored, rejoined.merged_over(&renewed));
    assert_eq!(
        (stored.first_joined, stored.last_renewed),
        (t(1), Some(t(30)))
    );
    assert_eq!((stored.serial.as_str(), stored.matched_rule), ("03", 2));

    // Eviction: renewals and the same (or an older) launch are refused.
    assert!(registry.evict(host, t(50)).await.unwrap());
    assert!(registry.evict(host, t(51)).await.unwrap(), "again");
    let evicted = registry.get(host).await.unwrap().unwrap();
    assert_eq!(evicted.evicted_at, Some(t(50)), "the first eviction's time");
    assert_eq!(registry.count_enrolled().await.unwrap(), others, "evicted");
    assert_eq!(
        registry.renew(host, "04", t(99), t(52)).await.unwrap(),
        None
    );
    assert!(!registry.enroll(&joined(host, 40, "04", 52)).await.unwrap());
    assert!(!registry.enroll(&joined(host, 39, "04", 52)).await.unwrap());
    assert_eq!(registry.get(host).await.unwrap(), Some(evicted));

    // A newer launch replaces the evicted record whole, and may renew.
    let relaunched = joined(host, 55, "05", 56);
    assert!(registry.enroll(&relaunched).await.unwrap());
    assert_eq!(registry.get(host).await.unwrap(), Some(relaunched));
    assert_eq!(registry.count_enrolled().await.unwrap(), others + 1);
    assert!(
        registry
            .renew(host, "06", t(99), t(57))
            .await
            .unwrap()
            .is_some()
    );
}

/// [`EnrollmentRegistry::list`]'s pages and [`EnrollmentRegistry::purge`], on a registry
/// holding no other record.
pub async fn list_and_purge<R: EnrollmentRegistry>(registry: &R) {
    for host in ["h-c", "h-a", "h-b", "h-d"] {
        assert!(registry.enroll(&joined(host, 0, "01", 1)).await.unwrap());
    }
    let hosts = |page: Vec<Enrollment>| page.into_iter().map(|r| r.host_id).collect::<Vec<_>>();
    assert_eq!(hosts(registry.list(None, 2).await.unwrap()), ["h-a", "h-b"]);
    assert_eq!(
        hosts(registry.list(Some("h-b"), 2).await.unwrap()),
        ["h-c", "h-d"]
    );
    assert_eq!(
        hosts(registry.list(Some("h-bb"), 10).await.unwrap()),
        ["h-c", "h-d"]
    );
    assert!(registry.list(Some("h-d"), 2).await.unwrap().is_empty());
    assert!(registry.list(None, 0).await.unwrap().is_empty());
    assert_eq!(registry.list(None, usize::MAX).await.unwrap().len(), 4);
    assert_eq!(registry.count_enrolled().await.unwrap(), 4);
    const { assert!(MAX_LIST_LIMIT >= 4) };

    // h-a joined at 1 only; h-b renewed at 10; h-c evicted at 20 (still last seen at 1);
    // h-d joined again at 10 (its first_joined stays 1).
    registry
        .renew("h-b", "02", t(99), t(10))
        .await
        .unwrap()
        .unwrap();
    assert!(registry.evict("h-c", t(20)).await.unwrap());
    assert!(registry.enroll(&joined("h-d", 5, "02", 10)).await.unwrap());
    assert_eq!(registry.count_enrolled().await.unwrap(), 3, "h-c evicted");
    assert_eq!(
        registry.purge(t(1)).await.unwrap(),
        0,
        "nothing before minute 1"
    );
    assert_eq!(registry.purge(t(10)).await.unwrap(), 3, "h-a, h-c, h-d");
    assert_eq!(hosts(registry.list(None, 10).await.unwrap()), ["h-b"]);
    assert_eq!(registry.count_enrolled().await.unwrap(), 1);
    assert_eq!(registry.purge(t(11)).await.unwrap(), 1);
    assert!(registry.list(None, 10).await.unwrap().is_empty());
}

/// 20 joins of one host enrolled at once through `registries` (as replicas): one record,
/// whose `first_joined` is the first join's; after an eviction, 20 replays of the evicted
/// launch are refused and 20 joins of a newer launch are all accepted into one record.
pub async fn concurrent_enrolls<R>(registries: &[R], host: &str)
where
    R: EnrollmentRegistry + Clone + Send + Sync + 'static,
{
    let first = joined(host, 0, "00", 1);
    assert!(registries[0].enroll(&first).await.unwrap());
    let joins = |launched: i64, now: i64| -> Vec<Enrollment> {
        (0..20)
            .map(|i| {
                let mut join = joined(host, launched, &format!("{i:02x}"), now);
                join.first_joined += TimeDelta::seconds(i);
                join
            })
            .collect()
    };
    let accepted = enroll_all(registries, joins(0, 2)).await;
    assert_eq!(accepted, 20, "a present record takes every join");
    let stored = registries[1].get(host).await.unwrap().unwrap();
    assert_eq!(stored.first_joined, t(1), "the first join's");
    assert_eq!(registries[0].list(None, 100).await.unwrap().len(), 1);
    assert_eq!(registries[1].count_enrolled().await.unwrap(), 1);

    assert!(registries[0].evict(host, t(3)).await.unwrap());
    assert_eq!(enroll_all(registries, joins(0, 4)).await, 0, "replays");
    assert_eq!(
        enroll_all(registries, joins(5, 6)).await,
        20,
        "a new launch"
    );
    let stored = registries[0].get(host).await.unwrap().unwrap();
    assert_eq!(stored.evicted_at, None);
    assert_eq!(stored.pending_time, t(5));
    assert!(
        stored.first_joined >= t(6) && stored.first_joined < t(6) + TimeDelta::seconds(20),
        "one of the new launch's joins: {}",
        stored.first_joined
    );
    assert_eq!(registries[0].list(None, 100).await.unwrap().len(), 1);
}

/// Enrolls all `joins` at once, join `i` through registry `i % registries.len()`; returns how
/// many were accepted.
async fn enroll_all<R>(registries: &[R], joins: Vec<Enrollment>) -> usize
where
    R: EnrollmentRegistry + Clone + Send + Sync + 'static,
{
    let tasks: Vec<_> = registries
        .iter()
        .cycle()
        .zip(joins)
        .map(|(registry, join)| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.enroll(&join).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            accepted += 1;
        }
    }
    accepted
}
