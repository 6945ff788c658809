//! `ec2-iid serve` (built with `--features aws`) end to end over loopback: the real binary as
//! a child process on 127.0.0.1:0, identity documents signed by the test CA (trusted with
//! `--cert`) for instances launched in moto, which the server looks up through
//! `--endpoint-url`, and a throwaway PostgreSQL for `--registry postgres:URL`.
//!
//! The moto tests need `moto_server` (`bash ec2-iid-aws/ci.sh --setup-only`), the PostgreSQL
//! ones its server binaries (`PG_BIN`); without them they print a notice and pass, unless
//! `CI=true`. The burst of 1,000 joins is tests/burst.rs.
#![cfg(test)] // clippy.toml says why

mod harness;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::InstanceStateName;
use ec2_iid_test_support::free_port;
use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use ec2_iid_test_support::postgres;
use harness::{
    ROLE, Server, admin, database, ec2_client, launch, now, request, rsa2048, sample, scratch_dir,
    serve_command, wait_for, write_token,
};

/// Runs `ec2-iid serve ARGS` to its exit (for flags it refuses).
fn serve_exit(dir: &Path, extra: &[&str]) -> Output {
    let token = write_token(dir, None);
    serve_command(&token, "http://127.0.0.1:1", extra)
        .output()
        .unwrap()
}

/// A loopback URL nothing listens on.
fn closed_url() -> String {
    format!("http://127.0.0.1:{}", free_port().unwrap())
}

#[test]
fn refuses_bad_flags_with_exit_2() {
    let dir = scratch_dir("flags");
    let bad_external_id = format!("{ROLE}=has space");
    let missing = dir.join("no-such-accounts.json");
    let bad_accounts = dir.join("bad-accounts.json");
    std::fs::write(
        &bad_accounts,
        r#"{"organization_id": "o-a1b2c3d4e5", "accounts": {"1": ["r-a1b2"]}}"#,
    )
    .unwrap();
    let (missing, bad_accounts) = (missing.to_str().unwrap(), bad_accounts.to_str().unwrap());
    let cases: [(&[&str], &str); 10] = [
        (
            &["--organization-accounts", missing],
            "--organization-accounts",
        ),
        (
            &["--organization-accounts", bad_accounts],
            "invalid accounts file: accounts.1: not a 12-digit account id",
        ),
        (
            &["--organizations-role", "not-an-arn"],
            "--organizations-role",
        ),
        (&["--registry", "dynamodb:"], "needs a value"),
        (
            &["--registry", "redis:x"],
            "memory, postgres:URL or dynamodb:TABLE",
        ),
        (&["--registry", "postgres:"], "needs a value"),
        (&["--external-id", "not-an-arn=x"], "is not an IAM role ARN"),
        (
            &["--external-id", &bad_external_id],
            "invalid STS external id",
        ),
        (&["--timeout", "0"], "at least 1 second"),
        (&["--cert", "extra.pem"], "--cert needs --cert-region"),
    ];
    for (extra, message) in cases {
        let output = serve_exit(&dir, extra);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{extra:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_without_a_lookup_and_reports_an_unreachable_ec2() {
    // Nothing listens at the endpoint: every lookup fails to connect.
    let server = Server::start(&scratch_dir("unreachable"), "serve", &closed_url(), &[]);
    // The default registry is per-process: said at startup.
    let log = server.log();
    assert!(
        log.contains("WARN") && log.contains("--registry memory") && log.contains("this process"),
        "{log}"
    );

    let (status, _, body) = request(&server.addr, "GET", "/healthz", b"").await;
    assert_eq!((status, body.as_str()), (200, "ok"));

    // A lookup that may pass later: 503 with Retry-After.
    let document = rsa2048(OWN_ACCOUNT, "i-0123456789abcdef0", now());
    let (status, head, body) = request(&server.addr, "POST", "/join", document.as_bytes()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: 1"),
        "{head}"
    );
    server.refused(&body, "lookup_unavailable", "lookup failed");
    // The adapter's span of the call, in the request's and the lookup's, with the failure.
    let log = server.log();
    assert!(
        log.lines().any(|line| line.contains("WARN")
            && line.contains("join{request_id=")
            && line.contains(":lookup{")
            && line.contains(":describe_instances{region=us-east-1")
            && line.contains("DescribeInstances failed")),
        "{log}"
    );

    // Refused without a lookup: another account, an old document, garbage, too many bytes.
    let (status, body) = server
        .join(rsa2048("210987654321", "i-0123456789abcdef0", now()).as_bytes())
        .await;
    assert_eq!(status, 403, "{body}");
    server.refused(&body, "no_rule_matched", "matched none of the allow rules");
    let an_hour_ago = now() - chrono::Duration::hours(1);
    let (status, body) = server
        .join(rsa2048(OWN_ACCOUNT, "i-0123456789abcdef0", an_hour_ago).as_bytes())
        .await;
    assert_eq!(status, 403, "{body}");
    server.refused(&body, "stale", "older than the TTL");
    let (status, body) = server.join(b"not an identity document").await;
    assert_eq!(status, 400, "{body}");
    server.refused(&body, "malformed", "invalid base64");
    let (status, body) = server.join(&vec![b'A'; ec2_iid::MAX_BLOB_LEN + 1]).await;
    assert_eq!(status, 413, "{body}");
    server.refused(&body, "too_large", "unreadable body");

    // Every answer counted, by outcome.
    let metrics = server.metrics().await;
    for (outcome, count) in [
        ("lookup_unavailable", 1.0),
        ("no_rule_matched", 1.0),
        ("stale", 1.0),
        ("malformed", 1.0),
        ("too_large", 1.0),
        ("joined", 0.0),
    ] {
        let name = format!("ec2_iid_joins_total{{outcome=\"{outcome}\"}}");
        assert_eq!(sample(&metrics, &name), count, "{name}:\n{metrics}");
    }
    check_histogram(&metrics, 5.0);
    // The one lookup tried one DescribeInstances.
    assert!(
        sample(&metrics, "ec2_iid_describe_instances_calls_total") >= 1.0,
        "{metrics}"
    );
}

/// The exposition format of the families: HELP and TYPE lines, cumulative buckets ending in
/// +Inf == _count == `joins`, a _sum.
fn check_histogram(metrics: &str, joins: f64) {
    for family in [
        "# TYPE ec2_iid_joins_total counter",
        "# TYPE ec2_iid_describe_instances_calls_total counter",
        "# TYPE ec2_iid_join_duration_seconds histogram",
        "# HELP ec2_iid_join_duration_seconds ",
    ] {
        assert!(metrics.contains(family), "{family}:\n{metrics}");
    }
    let buckets: Vec<(String, f64)> = metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("ec2_iid_join_duration_seconds_bucket{le=\"")?;
            let (le, value) = rest.split_once("\"} ")?;
            Some((le.to_owned(), value.parse().unwrap()))
        })
        .collect();
    assert!(buckets.len() > 5, "{metrics}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{metrics}");
    assert_eq!(buckets.last().unwrap(), &("+Inf".to_owned(), joins));
    assert_eq!(
        sample(metrics, "ec2_iid_join_duration_seconds_count"),
        joins
    );
    assert!(sample(metrics, "ec2_iid_join_duration_seconds_sum") > 0.0);
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_a_running_instance_once() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = ec2_client(&moto.url).await;
    let running = launch(&ec2, 1).await.remove(0);
    let stopped = launch(&ec2, 1).await.remove(0);
    ec2.stop_instances()
        .instance_ids(&stopped)
        .send()
        .await
        .unwrap();
    wait_for(
        &ec2,
        core::slice::from_ref(&stopped),
        InstanceStateName::Stopped,
    )
    .await;
    let server = Server::start(&scratch_dir("moto"), "serve", &moto.url, &[]);

    // A running instance joins, as <account>-<instance>, through the token's first rule.
    let document = rsa2048(OWN_ACCOUNT, &running, now());
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"host_id": format!("{OWN_ACCOUNT}-{running}"), "matched_rule": 0})
    );
    // The stages ran in the request's span.
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("join{request_id=") && l.contains("joined")),
        "{log}"
    );

    // Once: the same document is refused, before any DescribeInstances call.
    let calls = server
        .sample("ec2_iid_describe_instances_calls_total")
        .await;
    assert_eq!(calls, 1.0);
    for _ in 0..20 {
        let (status, body) = server.join(document.as_bytes()).await;
        assert_eq!(status, 403, "{body}");
        server.refused(&body, "already_joined", "has already joined");
    }
    let calls_after = server
        .sample("ec2_iid_describe_instances_calls_total")
        .await;
    assert_eq!(calls_after, calls, "replays cost no EC2 call");

    // A stopped instance and an unknown one are refused.
    let (status, body) = server
        .join(rsa2048(OWN_ACCOUNT, &stopped, now()).as_bytes())
        .await;
    assert_eq!(status, 403, "{body}");
    server.refused(&body, "instance_rejected", "stopped, not running");
    let (status, body) = server
        .join(rsa2048(OWN_ACCOUNT, "i-0123456789abcdef0", now()).as_bytes())
        .await;
    assert_eq!(status, 403, "{body}");
    server.refused(&body, "instance_rejected", "was not found");

    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "ec2_iid_joins_total{outcome=\"joined\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "ec2_iid_joins_total{outcome=\"instance_rejected\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(&metrics, "ec2_iid_joins_total{outcome=\"already_joined\"}"),
        REPLAYS
    );
    // One call per lookup here (the joins came one after the other), none for the replays.
    assert_eq!(
        sample(&metrics, "ec2_iid_describe_instances_calls_total"),
        3.0
    );
    check_histogram(&metrics, 3.0 + REPLAYS);
}

/// How many times `joins_a_running_instance_once` replays a document that joined.
const REPLAYS: f64 = 20.0;

#[tokio::test(flavor = "multi_thread")]
async fn assumes_the_rules_role_with_its_external_id() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = ec2_client(&moto.url).await;
    let instance = launch(&ec2, 1).await.remove(0);
    let dir = scratch_dir("external-id");
    let token = write_token(&dir, Some(ROLE));
    let external_id = format!("{ROLE}=tenant-42");
    let server = Server::start_with_token(
        &dir,
        "serve",
        &token,
        &moto.url,
        &["--external-id", &external_id],
    );
    let (status, body) = server
        .join(rsa2048(OWN_ACCOUNT, &instance, now()).as_bytes())
        .await;
    assert_eq!(status, 200, "{body}");

    // moto's model dump lists each AssumeRole session with its ExternalId.
    let addr = moto.url.trim_start_matches("http://");
    let (status, _, dump) = request(addr, "GET", "/moto-api/data.json", b"").await;
    assert_eq!(status, 200);
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let sessions = dump["sts"]["AssumedRole"].as_array().unwrap();
    let ours: Vec<_> = sessions
        .iter()
        .filter(|s| s["role_arn"] == ROLE)
        .map(|s| (s["external_id"].clone(), s["session_name"].clone()))
        .collect();
    assert_eq!(
        ours,
        [(serde_json::json!("tenant-42"), serde_json::json!("ec2-iid"))],
        "{sessions:?}"
    );
}

/// Two replicas sharing `registry` get 20 concurrent posts of one document: exactly one joins.
async fn two_replicas_let_one_of_20_posts_join(moto: &Moto, name: &str, registry: &str) {
    let ec2 = ec2_client(&moto.url).await;
    let instance = launch(&ec2, 1).await.remove(0);
    let dir = scratch_dir(name);
    let args = ["--registry", registry];
    let replicas = [
        Server::start(&dir, "a", &moto.url, &args),
        Server::start(&dir, "b", &moto.url, &args),
    ];
    for replica in &replicas {
        assert!(!replica.log().contains("WARN"), "{}", replica.log());
    }

    let document = rsa2048(OWN_ACCOUNT, &instance, now());
    let posts = (0..20).map(|n| {
        let addr = replicas[n % 2].addr.clone();
        let document = document.clone();
        tokio::spawn(async move { request(&addr, "POST", "/join", document.as_bytes()).await })
    });
    let mut answers = Vec::new();
    for post in posts.collect::<Vec<_>>() {
        let (status, _, body) = post.await.unwrap();
        answers.push((status, body));
    }
    let joined: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .collect();
    assert_eq!(joined.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 403, "{body}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "already_joined", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_postgres_let_one_of_20_posts_join() {
    let Some(moto) = Moto::start() else { return };
    let Some(db) = postgres::server() else { return };
    let registry = database(db, "replicas", "postgres").await;
    two_replicas_let_one_of_20_posts_join(&moto, "replicas-postgres", &registry).await;
}

/// The replicas create the table (`ensure_table`) at startup, both at once.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_dynamodb_table_let_one_of_20_posts_join() {
    // moto's PutItem checks the condition and writes in two steps; AWS's is atomic.
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    two_replicas_let_one_of_20_posts_join(&moto, "replicas-dynamodb", "dynamodb:ec2-iid-joins")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_registry_is_503_and_a_refused_login_500() {
    let Some(moto) = Moto::start() else { return };
    let Some(db) = postgres::server() else { return };
    let registry = database(db, "flaky", "flaky").await;
    let ec2 = ec2_client(&moto.url).await;
    let instances = launch(&ec2, 3).await;
    let server = Server::start(
        &scratch_dir("flaky"),
        "serve",
        &moto.url,
        &["--registry", &registry, "--timeout", "2"],
    );
    // A first join, so that the lookup and the registry's connection are warm.
    let document = rsa2048(OWN_ACCOUNT, &instances[2], now());
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 200, "{body}");

    // The table is locked: PostgreSQL cancels the claim (its statement_timeout, within 80% of
    // --timeout) before the request's timeout would answer. (A lookup that hangs is answered
    // `timeout` instead; tests/lockout.rs checks that either leaves the retry free to join.)
    let locker = admin(db, "flaky").await;
    locker
        .batch_execute("BEGIN; LOCK TABLE ec2_iid_joins IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let document = rsa2048(OWN_ACCOUNT, &instances[0], now());
    let (status, head, body) = request(&server.addr, "POST", "/join", document.as_bytes()).await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: 1"),
        "{head}"
    );
    if body.contains("\"timeout\"") {
        server.refused(&body, "timeout", "timed out");
    } else {
        server.refused(&body, "registry_unavailable", "registry failed");
    }
    locker.batch_execute("ROLLBACK").await.unwrap();

    // The database refuses the server's login (SQLSTATE 28000): a configuration to fix, not an
    // outage to wait out, so 500 `registry_failed` without Retry-After.
    let admin = admin(db, "postgres").await;
    admin
        .batch_execute("ALTER ROLE flaky NOLOGIN")
        .await
        .unwrap();
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'flaky'",
        )
        .await
        .unwrap();
    let document = rsa2048(OWN_ACCOUNT, &instances[1], now());
    let (status, head, body) = request(&server.addr, "POST", "/join", document.as_bytes()).await;
    assert_eq!(status, 500, "{body}");
    assert!(!head.to_ascii_lowercase().contains("retry-after"), "{head}");
    server.refused(&body, "registry_failed", "SQLSTATE 28000");
    admin.batch_execute("ALTER ROLE flaky LOGIN").await.unwrap();
    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "ec2_iid_joins_total{outcome=\"timeout\"}")
            + sample(
                &metrics,
                "ec2_iid_joins_total{outcome=\"registry_unavailable\"}"
            ),
        1.0
    );
    assert_eq!(
        sample(&metrics, "ec2_iid_joins_total{outcome=\"registry_failed\"}"),
        1.0
    );
}
