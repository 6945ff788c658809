//! Exactly once across replicas: concurrent claims through separate pools, as separate
//! processes sharing the database would make them.
#![cfg(test)] // clippy.toml says why

use ec2_iid_postgres::PostgresJoinRegistry;
use ec2_iid_test_support::postgres;
use ec2_iid_test_support::registries::{claim, claim_all, launch_and_restart_race, t};

/// Replicas, each with a pool of its own.
const REPLICAS: usize = 4;
/// Connections per replica.
const POOL_SIZE: usize = 8;

async fn replicas(pg: &postgres::PgServer, table: &str) -> Vec<PostgresJoinRegistry> {
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        replicas.push(pg.registry(table, POOL_SIZE).await);
    }
    replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_host_claimed_64_times_at_once_wins_once_then_a_restart_wins_once() {
    let Some(pg) = postgres::server() else { return };
    let replicas = replicas(pg, "one_host").await;
    let host = "123456789012-i-0abc";
    launch_and_restart_race(&replicas, host).await;
    let launch = |launched: i64, now: i64| vec![claim(host, launched, now); 64];
    // Two newer launches racing (the stored record has expired too): the newest wins exactly
    // once; the other one wins once at most, only if it lands before the newest.
    let mut mixed = launch(10, 11);
    mixed.extend(launch(9, 11));
    let wins = claim_all(&replicas, mixed).await;
    assert!((1..=2).contains(&wins), "{wins}");
    assert_eq!(
        claim_all(&replicas, launch(10, 12)).await,
        0,
        "the newest is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_hosts_at_once_all_win_once() {
    let Some(pg) = postgres::server() else { return };
    let replicas = replicas(pg, "thousand_hosts").await;
    let claims = |now: i64| {
        (0..1000)
            .map(|i| claim(&format!("123456789012-i-{i:017x}"), 0, now))
            .collect::<Vec<_>>()
    };
    assert_eq!(claim_all(&replicas, claims(1)).await, 1000);
    assert_eq!(claim_all(&replicas, claims(2)).await, 0, "replays");
    // Every host restarted, each restart claimed twice at once: 1,000 wins again.
    let restarts: Vec<_> = (0..2000)
        .map(|i| {
            let host = format!("123456789012-i-{:017x}", i / 2);
            claim(&host, 3, 4)
        })
        .collect();
    assert_eq!(claim_all(&replicas, restarts).await, 1000);
    let client = replicas[0].pool().get().await.unwrap();
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM thousand_hosts WHERE pending_time = $1",
            &[&t(3)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1000);
}
