//! The enrollment records' rules against a real PostgreSQL server, concurrent joins through
//! separate pools (as replicas), and the error of a row that is no record.
#![cfg(test)] // clippy.toml says why

use ec2_iid::EnrollmentRegistry as _;
use ec2_iid_postgres::{Operation, PostgresRegistryError};
use ec2_iid_test_support::enrollments::{concurrent_enrolls, joined, list_and_purge, rules};
use ec2_iid_test_support::postgres;
use ec2_iid_test_support::registries::t;

#[tokio::test]
async fn every_rule_holds() {
    let Some(pg) = postgres::server() else { return };
    let registry = pg.registry("enroll_rules", 2).await;
    rules(&registry, "123456789012-i-0abc").await;
}

#[tokio::test]
async fn list_pages_and_purge() {
    let Some(pg) = postgres::server() else { return };
    let registry = pg.registry("enroll_pages", 2).await;
    list_and_purge(&registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_joins_at_once_through_two_replicas_make_one_record() {
    let Some(pg) = postgres::server() else { return };
    let replicas = [
        pg.registry("enroll_race", 8).await,
        pg.registry("enroll_race", 8).await,
    ];
    concurrent_enrolls(&replicas, "123456789012-i-0race").await;
}

#[tokio::test]
async fn a_row_that_is_no_record_is_an_error_naming_the_host() {
    let Some(pg) = postgres::server() else { return };
    let registry = pg.registry("enroll_invalid", 2).await;
    assert!(registry.enroll(&joined("h", 0, "01", 1)).await.unwrap());
    let client = registry.pool().get().await.unwrap();
    client
        .execute(
            "UPDATE enroll_invalid_enrollments SET matched_rule = -1",
            &[],
        )
        .await
        .unwrap();
    let err = registry.get("h").await.unwrap_err();
    assert!(
        matches!(
            err,
            PostgresRegistryError::InvalidRecord {
                operation: Operation::GetEnrollment,
                ref host_id,
                reason: "matched_rule out of range",
                ..
            } if host_id == "h"
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "get enrollment: invalid enrollment record of host \"h\": matched_rule out of range"
    );
    // Renewals and evictions still work on the row (they return it, or not).
    assert!(registry.evict("h", t(2)).await.unwrap());
}

#[tokio::test]
async fn without_the_table_the_error_says_migrate() {
    let Some(pg) = postgres::server() else { return };
    let registry = ec2_iid_postgres::PostgresJoinRegistry::new(pg.pool(1))
        .with_table("enroll_never_migrated")
        .unwrap();
    let err = registry.list(None, 10).await.unwrap_err();
    assert!(
        matches!(
            &err,
            PostgresRegistryError::Database { operation: Operation::ListEnrollments, code: Some(code), .. }
                if code == "42P01"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "list enrollments: database error (SQLSTATE 42P01)"
    );
    let err = registry.count_enrolled().await.unwrap_err();
    assert_eq!(err.operation(), Some(Operation::CountEnrolled));
    assert_eq!(
        err.to_string(),
        "count enrolled: database error (SQLSTATE 42P01)"
    );
}
