//! A 503 never locks an instance out (issue 28, item 3): with the PostgreSQL table locked
//! longer than `--timeout`, the join is answered 503 and the claim does not commit later, so
//! the same document posted again once the lock is gone joins (200), instead of being refused
//! `already_joined` until the instance is stopped and started.
//!
//! Needs moto and PostgreSQL (see tests/serve.rs); without them it prints a notice and passes,
//! unless `CI=true`.
#![cfg(test)] // clippy.toml says why

mod harness;

use std::time::{Duration, Instant};

use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use ec2_iid_test_support::postgres;
use harness::{Server, admin, database, ec2_client, launch, now, request, rsa2048, scratch_dir};

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_blocked_past_the_timeout_is_503_and_the_retry_joins() {
    let Some(moto) = Moto::start() else { return };
    let Some(db) = postgres::server() else { return };
    let registry = database(db, "lockout", "lockout").await;
    let ec2 = ec2_client(&moto.url).await;
    let instances = launch(&ec2, 2).await;
    let server = Server::start(
        &scratch_dir("lockout"),
        "serve",
        &moto.url,
        &["--registry", &registry, "--timeout", "1"],
    );
    // A first join warms the lookup and the registry's connection.
    let (status, body) = server
        .join(rsa2048(OWN_ACCOUNT, &instances[1], now()).as_bytes())
        .await;
    assert_eq!(status, 200, "{body}");

    // Another session holds the table for 3 s.
    let locker = admin(db, "lockout").await;
    locker
        .batch_execute("BEGIN; LOCK TABLE ec2_iid_joins IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let locked = Instant::now();
    let document = rsa2048(OWN_ACCOUNT, &instances[0], now());
    let (status, head, body) = request(&server.addr, "POST", "/join", document.as_bytes()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        locked.elapsed() < Duration::from_millis(1500),
        "{:?}",
        locked.elapsed()
    );
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: "),
        "{head}"
    );
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        ["registry_unavailable", "timeout"].contains(&answer["error"].as_str().unwrap()),
        "{body}"
    );
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(locked.elapsed())).await;
    locker.batch_execute("ROLLBACK").await.unwrap();

    // The same document again: the first claim did not commit, so this one joins.
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 403, "a replay: {body}");
    server.refused(&body, "already_joined", "has already joined");
}
