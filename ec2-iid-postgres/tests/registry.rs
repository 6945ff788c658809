//! The registry's semantics against a real PostgreSQL server, and one test per error variant.
#![cfg(test)] // clippy.toml says why

use core::error::Error as _;

use chrono::TimeDelta;
use ec2_iid::{JoinClaim, JoinRegistry as _};
use ec2_iid_postgres::{DEFAULT_TABLE, Operation, PostgresJoinRegistry, PostgresRegistryError};
use ec2_iid_test_support::postgres;
use ec2_iid_test_support::registries::{claim, requester_and_record, set_up_at_once, t};

async fn count(registry: &PostgresJoinRegistry) -> i64 {
    let client = registry.pool().get().await.unwrap();
    let sql = format!("SELECT count(*) FROM \"{}\"", registry.table());
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn first_wins_replay_and_older_refused_newer_launch_wins_once() {
    let Some(pg) = postgres::server() else { return };
    let registry = pg.registry("semantics", 2).await;
    assert!(
        registry.claim(&claim("h", 0, 1)).await.unwrap(),
        "first claim"
    );
    assert!(!registry.claim(&claim("h", 0, 2)).await.unwrap(), "replay");
    assert!(
        registry.claim(&claim("h", 3, 4)).await.unwrap(),
        "restart: a newer launch"
    );
    assert!(
        !registry.claim(&claim("h", 3, 4)).await.unwrap(),
        "replay of the restart"
    );
    assert!(
        !registry.claim(&claim("h", 0, 4)).await.unwrap(),
        "older launch"
    );
    assert!(
        !registry.claim(&claim("h", 2, 5)).await.unwrap(),
        "older than the stored one"
    );
    assert!(
        registry.claim(&claim("other", 0, 5)).await.unwrap(),
        "another host"
    );
    assert_eq!(count(&registry).await, 2);
}

#[tokio::test]
async fn a_requester_claims_its_launch_again_and_reads_its_record_back() {
    let Some(pg) = postgres::server() else { return };
    let registry = pg.registry("requester", 2).await;
    requester_and_record(&registry, "h").await;
}

#[tokio::test]
async fn expired_record_counts_as_absent() {
    let Some(pg) = postgres::server() else { return };
    let registry = pg.registry("expiry", 2).await;
    assert!(registry.claim(&claim("h", 0, 1)).await.unwrap());
    // One microsecond before the record's expiry it still blocks a replay...
    let mut early = claim("h", 0, 6);
    early.now = t(6) - TimeDelta::microseconds(1);
    assert!(!registry.claim(&early).await.unwrap());
    // ...at its expiry (`expires_at <= now`) it counts as absent, even for the same launch.
    let again = JoinClaim::new("h", t(0), t(12), t(6));
    assert!(registry.claim(&again).await.unwrap());
    // The claim replaced the record: its expiry is the new one.
    assert!(
        !registry.claim(&claim("h", 0, 7)).await.unwrap(),
        "the new record blocks"
    );
    // An expired record of a newer launch does not block an older one either.
    assert!(registry.claim(&claim("g", 10, 11)).await.unwrap());
    assert!(registry.claim(&claim("g", 5, 16)).await.unwrap());
    assert_eq!(count(&registry).await, 2);
}

#[tokio::test]
async fn migrate_is_idempotent_and_concurrent_runs_do_not_race() {
    let Some(pg) = postgres::server() else { return };
    let registry = pg.registry("migrate_twice", 4).await;
    assert!(registry.claim(&claim("h", 0, 1)).await.unwrap());
    registry.migrate().await.unwrap();
    assert_eq!(count(&registry).await, 1, "migrate keeps the records");
    assert!(!registry.claim(&claim("h", 0, 2)).await.unwrap());

    // Replicas starting at once, on a table that does not exist yet.
    let replicas: Vec<_> = (0..4)
        .map(|_| {
            PostgresJoinRegistry::new(pg.pool(1))
                .with_table("migrate_race")
                .unwrap()
        })
        .collect();
    set_up_at_once(&replicas, |r| async move { r.migrate().await }).await;
    let client = registry.pool().get().await.unwrap();
    let indexes: Vec<String> = client
        .query(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'migrate_race' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        indexes,
        ["migrate_race_expires_at_idx", "migrate_race_pkey"]
    );
}

#[tokio::test]
async fn purge_expired_removes_exactly_the_expired_rows() {
    let Some(pg) = postgres::server() else { return };
    let registry = pg.registry("purge", 2).await;
    // Records expiring at minutes 6, 7, 8, 9 and 10.
    for (i, host) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
        let launched = i64::try_from(i).unwrap();
        assert!(
            registry
                .claim(&claim(host, launched, launched))
                .await
                .unwrap()
        );
    }
    assert_eq!(registry.purge_expired(t(5)).await.unwrap(), 0);
    assert_eq!(
        registry.purge_expired(t(7)).await.unwrap(),
        2,
        "expires_at <= now"
    );
    assert_eq!(registry.purge_expired(t(7)).await.unwrap(), 0);
    assert_eq!(count(&registry).await, 3);
    // The survivors still block their replays; the purged ones may join again.
    assert!(!registry.claim(&claim("c", 2, 7)).await.unwrap());
    assert!(registry.claim(&claim("a", 0, 7)).await.unwrap());
    assert_eq!(registry.purge_expired(t(100)).await.unwrap(), 4);
    assert_eq!(count(&registry).await, 0);
}

#[tokio::test]
async fn default_table_and_registries_in_other_tables_are_independent() {
    let Some(pg) = postgres::server() else { return };
    let default = PostgresJoinRegistry::new(pg.pool(1));
    assert_eq!(default.table(), DEFAULT_TABLE);
    default.migrate().await.unwrap();
    assert!(default.claim(&claim("h", 0, 1)).await.unwrap());
    let other = pg.registry("independent", 1).await;
    assert!(
        other.claim(&claim("h", 0, 1)).await.unwrap(),
        "another table, another cluster"
    );
}

#[tokio::test]
async fn invalid_table_names_are_refused() {
    let registry = PostgresJoinRegistry::from_config("host=127.0.0.1").unwrap();
    for bad in [
        "",
        "Joins",
        "joins; DROP TABLE users; --",
        "joins\"",
        "public.joins",
        "1joins",
        "joins ",
        &"a".repeat(49),
    ] {
        let err = registry.clone().with_table(bad).unwrap_err();
        assert!(
            matches!(err, PostgresRegistryError::InvalidTableName { ref name, .. } if name == bad),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().starts_with("invalid table name "), "{err}");
        assert!(!err.is_transient());
        assert_eq!(err.operation(), None);
    }
    let err = registry.clone().with_table("Joins").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid table name \"Joins\": only a-z, 0-9 and _ are allowed"
    );
}

#[tokio::test]
async fn error_invalid_config() {
    let err = PostgresJoinRegistry::from_config("port=notaport").unwrap_err();
    assert!(
        matches!(err, PostgresRegistryError::InvalidConfig { .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "invalid connection settings");
    assert!(err.source().unwrap().is::<tokio_postgres::Error>());
    assert!(!err.is_transient());
}

#[tokio::test]
async fn error_pool_when_the_server_is_unreachable() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let registry = PostgresJoinRegistry::from_config(&format!(
        "host=127.0.0.1 port={port} user=postgres connect_timeout=5"
    ))
    .unwrap();
    let err = registry.claim(&claim("h", 0, 1)).await.unwrap_err();
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
    assert_eq!(err.to_string(), "claim: no database connection");
    assert!(err.is_transient());
    assert!(err.source().unwrap().is::<deadpool_postgres::PoolError>());
    let err = registry.migrate().await.unwrap_err();
    assert_eq!(err.operation(), Some(Operation::Migrate));
    let err = registry.purge_expired(t(0)).await.unwrap_err();
    assert_eq!(err.to_string(), "purge expired: no database connection");
}

#[tokio::test]
async fn error_database_before_migrate() {
    let Some(pg) = postgres::server() else { return };
    let registry = PostgresJoinRegistry::new(pg.pool(1))
        .with_table("never_migrated")
        .unwrap();
    let err = registry.claim(&claim("h", 0, 1)).await.unwrap_err();
    match &err {
        PostgresRegistryError::Database {
            operation: Operation::Claim,
            code,
            ..
        } => assert_eq!(code.as_deref(), Some("42P01")),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), "claim: database error (SQLSTATE 42P01)");
    assert!(!err.is_transient());
    assert!(err.source().unwrap().is::<tokio_postgres::Error>());
    let err = registry.purge_expired(t(0)).await.unwrap_err();
    assert_eq!(err.operation(), Some(Operation::PurgeExpired));
    // A host id PostgreSQL cannot store (text has no NUL) is a database error, not a panic.
    registry.migrate().await.unwrap();
    let err = registry.claim(&claim("h\0", 0, 1)).await.unwrap_err();
    assert!(
        matches!(err, PostgresRegistryError::Database { .. }),
        "{err:?}"
    );
}
