//! `ec2-iid registry` (built with `--features aws`) against a real PostgreSQL and moto's
//! DynamoDB: records enrolled through the library, then listed, shown, evicted and purged
//! through the binary; and its usage errors (exit 2).
#![cfg(test)] // clippy.toml says why

mod harness;

use std::process::{Command, Output, Stdio};

use aws_config::{BehaviorVersion, Region as SdkRegion};
use aws_sdk_ec2::config::Credentials;
use chrono::{DateTime, TimeDelta, Utc};
use ec2_iid::{Enrollment, EnrollmentRegistry, JoinClaim, JoinRegistry};
use ec2_iid_aws::dynamodb::DynamoDbJoinRegistry;
use ec2_iid_postgres::PostgresJoinRegistry;
use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use ec2_iid_test_support::postgres;
use harness::{REGION, binary, database};
use serde_json::Value;

/// `ec2-iid registry ARGS` with dummy AWS credentials, run to its exit.
fn cli(args: &[&str]) -> Output {
    Command::new(binary())
        .arg("registry")
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The host of instance `n`.
fn host(n: u32) -> String {
    format!("{OWN_ACCOUNT}-i-{n:017x}")
}

/// `host(n)` joined `minutes_ago` minutes before `now`.
fn joined(n: u32, minutes_ago: i64, now: DateTime<Utc>) -> Enrollment {
    let at = now - TimeDelta::minutes(minutes_ago);
    Enrollment::joined(
        host(n),
        OWN_ACCOUNT,
        REGION,
        format!("i-{n:017x}"),
        1,
        at - TimeDelta::minutes(1),
        format!("{n:02x}"),
        at + TimeDelta::hours(1),
        at,
    )
}

/// Three hosts: 1 joined just now, 2 joined 2 hours ago, 3 joined 2 hours ago and renewed just
/// now; and an expired claim. Then the binary (`registry BEFORE ...`): list, show, evict, purge.
async fn list_show_evict_purge<R>(registry: &R, before: &[&str])
where
    R: EnrollmentRegistry + JoinRegistry,
{
    let now = Utc::now();
    for (n, minutes_ago) in [(1, 0), (2, 120), (3, 120)] {
        assert!(registry.enroll(&joined(n, minutes_ago, now)).await.unwrap());
    }
    let renewed = registry
        .renew(&host(3), "0ff", now + TimeDelta::hours(1), now)
        .await
        .unwrap()
        .unwrap();
    let long_ago = now - TimeDelta::days(1);
    let expired = JoinClaim::new(
        host(9),
        long_ago,
        long_ago + TimeDelta::minutes(6),
        long_ago,
    );
    assert!(registry.claim(&expired).await.unwrap());

    let listed = registry_ok(before, &["list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(lines[0].starts_with(&format!("{} rule=1 first_joined=", host(1))));
    assert!(lines[2].contains("serial=0ff"), "{listed}");
    assert!(lines[2].contains(" evicted=-"), "{listed}");
    assert!(lines[0].contains(" last_renewed=- "), "{listed}");

    let json: Value = serde_json::from_str(&registry_ok(before, &["list", "--json"])).unwrap();
    let hosts: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host_id"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, [host(1), host(2), host(3)]);
    assert_eq!(json[2]["serial"], "0ff");
    assert_eq!(json[2]["matched_rule"], 1);
    assert_eq!(json[0]["last_renewed"], Value::Null);
    assert_eq!(json[0]["evicted_at"], Value::Null);
    let renewed_at: DateTime<Utc> = json[2]["last_renewed"].as_str().unwrap().parse().unwrap();
    assert_eq!(Some(renewed_at), renewed.last_renewed);
    let limited: Value =
        serde_json::from_str(&registry_ok(before, &["list", "--json", "--limit", "2"])).unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 2);

    let shown: Value =
        serde_json::from_str(&registry_ok(before, &["show", &host(2), "--json"])).unwrap();
    assert_eq!(shown["host_id"], host(2));
    assert_eq!(shown["instance_id"], format!("i-{:017x}", 2));
    assert!(registry_ok(before, &["show", &host(2)]).starts_with(&host(2)));

    let evicted = registry_ok(before, &["evict", &host(1)]);
    assert!(evicted.contains("renewals are refused"), "{evicted}");
    assert!(
        registry
            .get(&host(1))
            .await
            .unwrap()
            .unwrap()
            .evicted_at
            .is_some()
    );
    assert_eq!(
        registry
            .renew(&host(1), "10", now + TimeDelta::hours(2), now)
            .await
            .unwrap(),
        None,
        "refused after the eviction"
    );
    assert!(
        !registry_ok(before, &["list"])
            .lines()
            .next()
            .unwrap()
            .ends_with(" evicted=-")
    );

    for unknown in [
        ["show", "123456789012-i-nope\u{1b}[2J"],
        ["evict", "123456789012-i-nope\u{1b}[2J"],
    ] {
        let output = cli(&[before, &unknown[..]].concat());
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("no enrollment record of host 123456789012-i-nope\\u{1b}[2J"),
            "{}",
            stderr(&output)
        );
    }

    // Host 2 was last seen 2 hours ago; 1 (evicted) and 3 (renewed) just now.
    let purged = registry_ok(before, &["purge", "--older-than", "1h"]);
    assert!(
        purged.starts_with("purged 1 enrollment records last seen before ")
            && purged.contains(" and 1 expired join claims"),
        "{purged}"
    );
    assert_eq!(registry.get(&host(2)).await.unwrap(), None);
    assert_eq!(registry.record(&host(9), long_ago).await.unwrap(), None);
    let left: Vec<String> = registry
        .list(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.host_id)
        .collect();
    assert_eq!(left, [host(1), host(3)]);
}

/// Runs `registry BEFORE ARGS`, which must succeed; its stdout.
fn registry_ok(before: &[&str], args: &[&str]) -> String {
    let args = [before, args].concat();
    let output = cli(&args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        stderr(&output)
    );
    stdout(&output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let Some(pg) = postgres::server() else { return };
    let spec = database(pg, "registry_cli", "registry_cli").await;
    let settings = spec.strip_prefix("postgres:").unwrap();
    // Before `serve` made the tables: a setup error saying so.
    let output = cli(&["--registry", &spec, "list"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("42P01") && stderr(&output).contains("made by `ec2-iid serve`"),
        "{}",
        stderr(&output)
    );
    let registry = PostgresJoinRegistry::from_config(settings).unwrap();
    registry.migrate().await.unwrap();
    list_show_evict_purge(&registry, &["--registry", &spec]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb() {
    let Some(moto) = Moto::start() else { return };
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(SdkRegion::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(&moto.url)
        .load()
        .await;
    let registry = DynamoDbJoinRegistry::from_conf(&config, "registry-cli");
    registry.ensure_table().await.unwrap();
    let before = [
        "--registry",
        "dynamodb:registry-cli",
        "--endpoint-url",
        moto.url.as_str(),
    ];
    list_show_evict_purge(&registry, &before).await;
}

#[test]
fn usage_errors_exit_2() {
    for (args, message) in [
        (
            &["list"][..],
            "--registry postgres:URL or dynamodb:TABLE is required",
        ),
        (
            &["--registry", "memory", "list"][..],
            "cannot be read from here",
        ),
        (
            &["--registry", "redis:x", "list"][..],
            "memory, postgres:URL or dynamodb:TABLE",
        ),
        (
            &["--registry", "postgres:host=db sslmode=prefer", "list"][..],
            "--registry postgres",
        ),
        (
            &["--registry", "dynamodb:t", "purge", "--older-than", "soon"][..],
            "soon",
        ),
        (&["--registry", "dynamodb:t"][..], "Usage"),
    ] {
        let output = cli(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}
