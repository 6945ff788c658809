//! `DynamoDbJoinRegistry` against moto's DynamoDB: the registry's semantics, exactly one winner
//! of concurrent claims through several clients, and its errors.
//!
//! Each moto test starts its own `moto_server` on a free loopback port and stops it when done
//! (see `ec2_iid_test_support::moto` for where the binary comes from, and when a test without
//! it passes), with its `PutItem` made atomic as DynamoDB's is: moto's own checks a condition
//! and stores the item in two steps, so concurrent claims could both win there
//! ([`Moto::start_with_atomic_put_item`]).
#![cfg(test)] // clippy.toml says why

use core::error::Error as _;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeValue, Select, TimeToLiveStatus};
use chrono::TimeDelta;
use ec2_iid::{JoinClaim, JoinRegistry as _};
use ec2_iid_aws::dynamodb::{DynamoDbJoinRegistry, DynamoDbRegistryError, Operation};
use ec2_iid_test_support::free_port;
use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use ec2_iid_test_support::registries::{
    claim, claim_all, launch_and_restart_race, requester_and_record, set_up_at_once, t,
};

const REGION: &str = "us-east-1";
/// Clients (each with its own connections) that claims are spread over, as replicas would.
const CLIENTS: usize = 4;

fn host(i: usize) -> String {
    format!("{OWN_ACCOUNT}-i-{i:017x}")
}

/// A DynamoDB client for `url`: dummy credentials, one attempt (no retry hides an error).
fn client(url: &str) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// Registries on `table`, each with a client of its own; the table is created.
async fn registries(moto: &Moto, table: &str) -> Vec<DynamoDbJoinRegistry> {
    let registries: Vec<_> = (0..CLIENTS)
        .map(|_| DynamoDbJoinRegistry::new(client(&moto.url), table))
        .collect();
    registries[0].ensure_table().await.unwrap();
    registries
}

/// Makes all `claims` with at most `workers` in flight; returns how many won.
async fn claim_bounded(
    registries: &[DynamoDbJoinRegistry],
    claims: Vec<JoinClaim>,
    workers: usize,
) -> usize {
    let claims = std::sync::Arc::new(claims);
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let registry = registries[w % registries.len()].clone();
            let claims = std::sync::Arc::clone(&claims);
            tokio::spawn(async move {
                let mut wins = 0;
                for claim in claims.iter().skip(w).step_by(workers) {
                    if registry.claim(claim).await.unwrap() {
                        wins += 1;
                    }
                }
                wins
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += task.await.unwrap();
    }
    wins
}

/// How many items the table holds.
async fn count(registry: &DynamoDbJoinRegistry) -> i32 {
    let out = registry
        .client()
        .scan()
        .table_name(registry.table())
        .select(Select::Count)
        .send()
        .await
        .unwrap();
    assert!(out.last_evaluated_key().is_none(), "one page");
    out.count()
}

/// The stored `(pending_time, expires_at)` numbers of `host`.
async fn stored(registry: &DynamoDbJoinRegistry, host: &str) -> (String, String) {
    let out = registry
        .client()
        .get_item()
        .table_name(registry.table())
        .key("host_id", AttributeValue::S(host.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let item = out.item().unwrap();
    let number = |name: &str| item.get(name).unwrap().as_n().unwrap().clone();
    (number("pending_time"), number("expires_at"))
}

#[tokio::test]
async fn first_wins_replays_and_older_launches_refused_a_restart_wins_once() {
    let Some(moto) = Moto::start() else {
        return;
    };
    // Through `from_conf`, as a server configured from the environment builds it.
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let registry = DynamoDbJoinRegistry::from_conf(&config, "semantics");
    assert_eq!(registry.table(), "semantics");
    registry.ensure_table().await.unwrap();
    let h = host(1);
    assert!(registry.claim(&claim(&h, 0, 1)).await.unwrap(), "first");
    assert!(!registry.claim(&claim(&h, 0, 2)).await.unwrap(), "replay");
    assert!(
        registry.claim(&claim(&h, 3, 4)).await.unwrap(),
        "restart: a newer launch"
    );
    assert!(
        !registry.claim(&claim(&h, 3, 4)).await.unwrap(),
        "replay of the restart"
    );
    assert!(
        !registry.claim(&claim(&h, 3, 5)).await.unwrap(),
        "replay of the restart, later"
    );
    assert!(
        !registry.claim(&claim(&h, 0, 5)).await.unwrap(),
        "replay of the original launch"
    );
    assert!(
        !registry.claim(&claim(&h, 2, 5)).await.unwrap(),
        "older than the stored launch, though newer than the original"
    );
    // The stored numbers: pending_time in milliseconds, expires_at (TTL) in seconds.
    assert_eq!(
        stored(&registry, &h).await,
        (
            t(3).timestamp_millis().to_string(),
            t(9).timestamp().to_string()
        )
    );
    assert!(registry.claim(&claim(&host(2), 0, 5)).await.unwrap());
    assert_eq!(count(&registry).await, 2);
}

#[tokio::test]
async fn a_requester_claims_its_launch_again_and_reads_its_record_back() {
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let registry = registries(&moto, "requester").await.remove(0);
    requester_and_record(&registry, &host(1)).await;
}

#[tokio::test]
async fn an_expired_record_is_reclaimable() {
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let registry = registries(&moto, "expiry").await.remove(0);
    let h = host(1);
    assert!(registry.claim(&claim(&h, 0, 1)).await.unwrap());
    // Just before the record's expiry (minute 6) it still blocks a replay...
    let mut early = claim(&h, 0, 6);
    early.now = t(6) - TimeDelta::microseconds(1);
    assert!(!registry.claim(&early).await.unwrap());
    // ...at its expiry (`expires_at <= now`) it counts as absent, even for the same launch.
    assert!(
        registry
            .claim(&JoinClaim::new(&h, t(0), t(12), t(6)))
            .await
            .unwrap()
    );
    assert!(
        !registry.claim(&claim(&h, 0, 7)).await.unwrap(),
        "the new record blocks"
    );
    // An expired record of a newer launch does not block an older one either.
    assert!(registry.claim(&claim(&host(2), 10, 11)).await.unwrap());
    assert!(registry.claim(&claim(&host(2), 5, 16)).await.unwrap());
    // A fraction of a second: expires_at is rounded up, so the record never expires early.
    let sub = JoinClaim::new(host(3), t(0), t(6) + TimeDelta::milliseconds(1), t(1));
    assert!(registry.claim(&sub).await.unwrap());
    assert_eq!(
        stored(&registry, &host(3)).await.1,
        (t(6).timestamp() + 1).to_string()
    );
    let mut at_exact_expiry = claim(&host(3), 0, 6);
    at_exact_expiry.now = t(6) + TimeDelta::milliseconds(1);
    assert!(!registry.claim(&at_exact_expiry).await.unwrap());
    at_exact_expiry.now = t(6) + TimeDelta::seconds(1);
    assert!(registry.claim(&at_exact_expiry).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_host_claimed_64_times_at_once_wins_once_then_a_restart_wins_once() {
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let registries = registries(&moto, "one_host").await;
    launch_and_restart_race(&registries, &host(1)).await;
    assert_eq!(
        claim_all(&registries, vec![claim(&host(1), 2, 5); 64]).await,
        0,
        "an older launch than the stored one"
    );
    assert_eq!(count(&registries[0]).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_hosts_all_win_once() {
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let registries = registries(&moto, "thousand_hosts").await;
    let claims = |now: i64| (0..1000).map(|i| claim(&host(i), 0, now)).collect();
    assert_eq!(claim_bounded(&registries, claims(1), 32).await, 1000);
    assert_eq!(count(&registries[0]).await, 1000);
    assert_eq!(
        claim_bounded(&registries, claims(2), 32).await,
        0,
        "replays"
    );
}

#[tokio::test]
async fn ensure_table_tolerates_an_existing_table_and_enables_ttl_once() {
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let registries = registries(&moto, "ensure").await;
    assert!(registries[0].claim(&claim(&host(1), 0, 1)).await.unwrap());
    // Again, from every client at once: the table and its record stay.
    set_up_at_once(&registries, |r| async move { r.ensure_table().await }).await;
    assert_eq!(count(&registries[0]).await, 1);
    assert!(!registries[1].claim(&claim(&host(1), 0, 2)).await.unwrap());
    let ttl = registries[0]
        .client()
        .describe_time_to_live()
        .table_name("ensure")
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn a_missing_table_is_a_typed_error() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let registry = DynamoDbJoinRegistry::new(client(&moto.url), "never_created");
    let err = registry.claim(&claim(&host(1), 0, 1)).await.unwrap_err();
    match &err {
        DynamoDbRegistryError::TableNotFound {
            operation: Operation::PutItem,
            table,
            ..
        } => assert_eq!(table, "never_created"),
        other => panic!("{other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(err.operation(), Some(Operation::PutItem));
    assert!(
        err.to_string()
            .starts_with("dynamodb:PutItem: table \"never_created\" not found; create it"),
        "{err}"
    );
    assert!(err.source().is_some(), "the SDK's error is kept");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transient_connection_error() {
    // A port nothing listens on: bound, then released. No moto needed.
    let url = format!("http://127.0.0.1:{}", free_port().unwrap());
    let registry = DynamoDbJoinRegistry::new(client(&url), "joins");
    let err = registry.claim(&claim(&host(1), 0, 1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            DynamoDbRegistryError::Connection {
                operation: Operation::PutItem,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        "dynamodb:PutItem on table \"joins\": connection to DynamoDB failed"
    );
    let err = registry.ensure_table().await.unwrap_err();
    assert_eq!(err.operation(), Some(Operation::CreateTable));
}
