//! The enrollment records of `DynamoDbJoinRegistry` against moto's DynamoDB: every rule,
//! paging and purging (enrollments and expired claims, which share the table), 20 concurrent
//! joins of one host through two clients, and an item that is no record.
//!
//! Each test starts its own `moto_server` (see `ec2_iid_test_support::moto`), with its writes
//! made atomic as DynamoDB's are ([`Moto::start_with_atomic_put_item`]).
#![cfg(test)] // clippy.toml says why

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use ec2_iid::{EnrollmentRegistry as _, JoinRegistry as _};
use ec2_iid_aws::dynamodb::{DynamoDbJoinRegistry, DynamoDbRegistryError, Operation};
use ec2_iid_test_support::enrollments::{concurrent_enrolls, joined, list_and_purge, rules};
use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use ec2_iid_test_support::registries::{self, t};

/// A registry on `table` with a client of its own (dummy credentials, one attempt).
fn registry(moto: &Moto, table: &str) -> DynamoDbJoinRegistry {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    DynamoDbJoinRegistry::new(aws_sdk_dynamodb::Client::from_conf(conf), table)
}

async fn table(moto: &Moto, name: &str) -> DynamoDbJoinRegistry {
    let registry = registry(moto, name);
    registry.ensure_table().await.unwrap();
    registry
}

#[tokio::test]
async fn every_rule_holds_and_claims_stay_apart() {
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let registry = table(&moto, "rules").await;
    let host = &format!("{OWN_ACCOUNT}-i-0abc");
    // A claim of the same host shares the table, under its own key.
    let claim = registries::claim(host, 0, 1);
    assert!(registry.claim(&claim).await.unwrap());
    rules(&registry, host).await;
    assert_eq!(
        registry.record(host, t(2)).await.unwrap(),
        Some(claim.record())
    );
    assert_eq!(registry.list(None, 10).await.unwrap().len(), 1, "no claim");
}

#[tokio::test]
async fn list_pages_and_purge_and_expired_claims_go() {
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let registry = table(&moto, "pages").await;
    // Claims in the table: one expired at minute 6, one at minute 16.
    assert!(
        registry
            .claim(&registries::claim("c-1", 0, 1))
            .await
            .unwrap()
    );
    assert!(
        registry
            .claim(&registries::claim("c-2", 10, 11))
            .await
            .unwrap()
    );
    list_and_purge(&registry).await;
    assert_eq!(registry.purge_expired(t(5)).await.unwrap(), 0);
    assert_eq!(registry.purge_expired(t(6)).await.unwrap(), 1);
    assert_eq!(
        registry
            .record("c-2", t(7))
            .await
            .unwrap()
            .map(|r| r.pending_time),
        Some(t(10))
    );
    // Enrollment records have no expiry: purge_expired keeps them.
    assert!(registry.enroll(&joined("h", 0, "01", 1)).await.unwrap());
    assert_eq!(registry.purge_expired(t(100)).await.unwrap(), 1, "c-2");
    assert!(registry.get("h").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_joins_at_once_through_two_clients_make_one_record() {
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let replicas = [table(&moto, "race").await, registry(&moto, "race")];
    concurrent_enrolls(&replicas, &format!("{OWN_ACCOUNT}-i-0race")).await;
}

#[tokio::test]
async fn an_item_that_is_no_record_is_an_error_naming_the_host() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let registry = table(&moto, "invalid").await;
    registry
        .client()
        .put_item()
        .table_name("invalid")
        .item(
            "host_id",
            AttributeValue::S("enrollment#h\u{1b}[31m".to_owned()),
        )
        .item("account", AttributeValue::S("123456789012".to_owned()))
        .send()
        .await
        .unwrap();
    let err = registry.get("h\u{1b}[31m").await.unwrap_err();
    assert!(
        matches!(
            &err,
            DynamoDbRegistryError::InvalidRecord { operation: Operation::GetItem, host_id, .. }
                if host_id == "h\u{1b}[31m"
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "dynamodb:GetItem on table \"invalid\": invalid enrollment record of host \
         \"h\\u{1b}[31m\": matched_rule is missing"
    );
    let err = registry.list(None, 10).await.unwrap_err();
    assert_eq!(err.operation(), Some(Operation::Scan));
}

#[tokio::test]
async fn without_the_table_the_error_says_so() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let registry = registry(&moto, "missing");
    for err in [
        registry.enroll(&joined("h", 0, "01", 1)).await.unwrap_err(),
        registry.renew("h", "02", t(9), t(2)).await.unwrap_err(),
        registry.evict("h", t(2)).await.unwrap_err(),
        registry.purge(t(2)).await.unwrap_err(),
        registry.purge_expired(t(2)).await.unwrap_err(),
        registry.count_enrolled().await.unwrap_err(),
    ] {
        assert!(
            matches!(err, DynamoDbRegistryError::TableNotFound { .. }),
            "{err:?}"
        );
    }
    let err = registry.get("h").await.unwrap_err();
    assert_eq!(err.operation(), Some(Operation::GetItem));
}

/// `count_enrolled` reads the table page by page (DynamoDB, and moto, end a `Scan` page at
/// 1 MB), adding up each page's count; past `with_max_count_pages` it stops with an error
/// instead of reading on.
#[tokio::test]
async fn the_count_adds_up_pages_and_stops_at_its_bound() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let registry = table(&moto, "count").await;
    assert_eq!(registry.count_enrolled().await.unwrap(), 0);
    // Three items of 390 KB (not records): the scan takes two pages.
    for i in 0..3 {
        registry
            .client()
            .put_item()
            .table_name("count")
            .item("host_id", AttributeValue::S(format!("big-{i}")))
            .item(
                "padding",
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![0; 390_000])),
            )
            .send()
            .await
            .unwrap();
    }
    for host in ["h-a", "h-b", "h-c"] {
        assert!(registry.enroll(&joined(host, 0, "01", 1)).await.unwrap());
    }
    assert!(registry.evict("h-b", t(2)).await.unwrap());
    assert_eq!(registry.count_enrolled().await.unwrap(), 2);
    let bounded = registry.clone().with_max_count_pages(2);
    assert_eq!(bounded.count_enrolled().await.unwrap(), 2, "two pages");
    let err = registry
        .with_max_count_pages(1)
        .count_enrolled()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            DynamoDbRegistryError::TooManyPages { operation: Operation::Scan, table, pages: 1, .. }
                if table == "count"
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "dynamodb:Scan on table \"count\": more to scan after the limit of 1 page(s) of up to \
         1 MB; raise with_max_count_pages for a table this large"
    );
}
