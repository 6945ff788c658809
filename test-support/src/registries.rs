//! Claims, and claims raced against a [`JoinRegistry`], for the registry crates' tests
//! (ec2-iid-aws's DynamoDB, ec2-iid-postgres's registry and replicas).

use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};
use ec2_iid::{JoinClaim, JoinRegistry};

/// Minute `minutes` of the registry tests' clock (0 is 2026-11-01 12:00 UTC).
pub fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

/// A claim for `host` launched at minute `launched`, kept 6 minutes, made at minute `now`.
pub fn claim(host: &str, launched: i64, now: i64) -> JoinClaim {
    JoinClaim::new(host, t(launched), t(launched + 6), t(now))
}

/// Makes all `claims` at once, claim `i` through registry `i % registries.len()`; returns how
/// many won.
pub async fn claim_all<R>(registries: &[R], claims: Vec<JoinClaim>) -> usize
where
    R: JoinRegistry + Clone + Send + Sync + 'static,
{
    let tasks: Vec<_> = registries
        .iter()
        .cycle()
        .zip(claims)
        .map(|(registry, claim)| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.claim(&claim).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            wins += 1;
        }
    }
    wins
}

/// `host` launched at minute 0 and restarted at minute 3, each launch and its replays claimed
/// 64 times at once through `registries`: the launch and the restart win exactly once, no
/// replay wins, nor the original launch after the restart.
pub async fn launch_and_restart_race<R>(registries: &[R], host: &str)
where
    R: JoinRegistry + Clone + Send + Sync + 'static,
{
    let launch = |launched: i64, now: i64| vec![claim(host, launched, now); 64];
    assert_eq!(claim_all(registries, launch(0, 1)).await, 1, "first launch");
    assert_eq!(claim_all(registries, launch(0, 2)).await, 0, "replays");
    assert_eq!(claim_all(registries, launch(3, 4)).await, 1, "restart");
    assert_eq!(
        claim_all(registries, launch(3, 5)).await,
        0,
        "replays of the restart"
    );
    assert_eq!(
        claim_all(registries, launch(0, 5)).await,
        0,
        "the original launch"
    );
}

/// Replicas starting at once: `setup` (creating or migrating the table) runs on every one of
/// `registries` at once, a task each, and every run succeeds.
pub async fn set_up_at_once<R, F, Fut, E>(registries: &[R], setup: F)
where
    R: Clone,
    F: Fn(R) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: core::fmt::Debug + Send + 'static,
{
    let runs: Vec<_> = registries
        .iter()
        .cloned()
        .map(|registry| tokio::spawn(setup(registry)))
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
}

/// The record a registry reads back and the requester rule, against `registry`: a claim's own
/// requester may claim its launch again and finds its record; another requester, or none, is
/// refused; an expired record is not read back.
pub async fn requester_and_record<R: JoinRegistry>(registry: &R, host: &str) {
    let mine = claim(host, 0, 1).with_requester([1; 32]);
    assert_eq!(registry.record(host, t(1)).await.unwrap(), None);
    assert!(registry.claim(&mine).await.unwrap());
    let stored = registry.record(host, t(2)).await.unwrap().unwrap();
    assert_eq!(stored, mine.record());
    assert!(mine.is_recorded_in(&stored));
    assert!(
        registry.claim(&mine).await.unwrap(),
        "the same requester again"
    );
    let theirs = claim(host, 0, 2).with_requester([2; 32]);
    assert!(!registry.claim(&theirs).await.unwrap(), "another requester");
    assert!(!registry.claim(&claim(host, 0, 2)).await.unwrap(), "none");
    assert_eq!(registry.record(host, t(6)).await.unwrap(), None, "expired");
}
