//! `with_timeout` against a real PostgreSQL: a claim blocked by a lock gives up on the server
//! side, so it never commits and its retry wins.
#![cfg(test)] // clippy.toml says why

use std::time::{Duration, Instant};

use ec2_iid::JoinRegistry as _;
use ec2_iid_postgres::{Operation, PostgresJoinRegistry, PostgresRegistryError};
use ec2_iid_test_support::postgres;
use ec2_iid_test_support::postgres::PgServer;
use ec2_iid_test_support::registries::claim;

/// A registry through `from_config` with `timeout`, in `table` (migrated).
async fn registry(
    pg: &PgServer,
    extra: &str,
    timeout: Duration,
    table: &str,
) -> PostgresJoinRegistry {
    let registry = PostgresJoinRegistry::from_config(&format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres {extra}",
        pg.port
    ))
    .unwrap()
    .with_timeout(timeout)
    .unwrap()
    .with_table(table)
    .unwrap();
    registry.migrate().await.unwrap();
    registry
}

async fn count(pg: &PgServer, table: &str) -> i64 {
    let client = pg.pool(1).get().await.unwrap();
    let sql = format!("SELECT count(*) FROM \"{table}\"");
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_claim_blocked_by_a_lock_gives_up_uncommitted_and_its_retry_wins() {
    let Some(pg) = postgres::server() else { return };
    let registry = registry(pg, "", Duration::from_secs(1), "lockout").await;

    // Another session holds the table for 3 s.
    let locker = pg.pool(1).get().await.unwrap();
    locker
        .batch_execute("BEGIN; LOCK TABLE lockout IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let locked = Instant::now();
    let err = registry.claim(&claim("h", 0, 1)).await.unwrap_err();
    let took = locked.elapsed();
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(err.is_transient(), "{err:?}");
    match &err {
        PostgresRegistryError::Database {
            operation: Operation::Claim,
            code: Some(code),
            ..
        } => assert!(["55P03", "57014"].contains(&code.as_str()), "{code}"),
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(locked.elapsed())).await;
    locker.batch_execute("ROLLBACK").await.unwrap();

    // The cancelled claim left nothing behind, even once the lock is gone...
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count(pg, "lockout").await, 0);
    // ...so the same claim, retried, wins once.
    assert!(registry.claim(&claim("h", 0, 1)).await.unwrap());
    assert!(!registry.claim(&claim("h", 0, 1)).await.unwrap());
}

#[tokio::test]
async fn timeouts_are_set_on_every_connection_after_the_settings_own_options() {
    let Some(pg) = postgres::server() else { return };
    let registry = registry(
        pg,
        "options='-c search_path=public -c statement_timeout=1h'",
        Duration::from_millis(2000),
        "options",
    )
    .await;
    let client = registry.pool().get().await.unwrap();
    for (setting, value) in [
        ("statement_timeout", "1s"),
        ("lock_timeout", "1s"),
        ("search_path", "public"),
    ] {
        let row = client
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), value, "{setting}");
    }
}

#[tokio::test]
async fn waiting_for_a_pooled_connection_is_bounded() {
    let Some(pg) = postgres::server() else { return };
    let registry = registry(pg, "", Duration::from_millis(400), "pool_wait").await;
    // Every connection of the pool is taken.
    let max = registry.pool().status().max_size;
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(registry.pool().get().await.unwrap());
    }
    let started = Instant::now();
    let err = registry.claim(&claim("h", 0, 1)).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            PostgresRegistryError::Pool {
                operation: Operation::Claim,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    drop(held);
    assert!(registry.claim(&claim("h", 0, 1)).await.unwrap());
}

#[tokio::test]
async fn with_timeout_needs_a_registry_of_from_config() {
    let Some(pg) = postgres::server() else { return };
    let err = PostgresJoinRegistry::new(pg.pool(1))
        .with_timeout(Duration::from_secs(1))
        .unwrap_err();
    assert!(
        matches!(err, PostgresRegistryError::InvalidConfig { .. }),
        "{err:?}"
    );
    let source = core::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.starts_with("with_timeout needs a registry made by from_config"),
        "{source}"
    );
}
