//! `ec2-iid serve` (built with `--features aws`) end to end over loopback: the real binary as
//! a child process on 127.0.0.1:0, identity documents signed by the test CA (trusted with
//! `--cert`) for instances launched in moto, which the server looks up through
//! `--endpoint-url`, and a throwaway PostgreSQL for `--registry postgres:URL`.
//!
//! The moto tests need `moto_server` (`bash ec2-iid-aws/ci.sh --setup-only`), the PostgreSQL
//! ones its server binaries (`PG_BIN`); without them they print a notice and pass, unless
//! `CI=true`. The burst test prints joins/s and latencies with and without batching
//! (`cargo test -p ec2-iid-cli --features aws --test serve burst -- --nocapture`).
#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test code: a panic is a test failure"
)]

#[path = "../../tests/common/mod.rs"]
mod common;
#[allow(
    dead_code,
    reason = "the harness also serves ec2-iid-postgres's own tests"
)]
#[path = "../../ec2-iid-postgres/tests/support/mod.rs"]
mod pg;
#[path = "../../ec2-iid-aws/tests/support/mod.rs"]
mod support;

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_config::{BehaviorVersion, Region as SdkRegion};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::InstanceStateName;
use chrono::{DateTime, Utc};
use common::{BlobSpec, imds_base64, test_ca};
use support::{Moto, OWN_ACCOUNT, free_port};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const REGION: &str = "us-east-1";
/// One of the AMIs moto knows.
const AMI: &str = "ami-12c6146b";
const ROLE: &str = "arn:aws:iam::123456789012:role/ec2-iid-describe";

/// A scratch directory of this test, emptied.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A token allowing moto's account (through `role` when given), TTL 5m; its path.
fn write_token(dir: &Path, role: Option<&str>) -> PathBuf {
    let token = dir.join("token.yaml");
    let role = role.map_or(String::new(), |r| format!("    aws_role: \"{r}\"\n"));
    std::fs::write(
        &token,
        format!(
            "kind: token\nversion: v2\nmetadata:\n  name: join-test\nspec:\n  roles: [Node]\n  \
             join_method: ec2\n  aws_iid_ttl: 5m\n  allow:\n  - aws_account: \"{OWN_ACCOUNT}\"\n\
             {role}"
        ),
    )
    .unwrap();
    token
}

/// `ec2-iid serve` with the test CA trusted for us-east-1, AWS at `endpoint_url`, dummy
/// credentials and no IMDS.
fn serve_command(token: &Path, endpoint_url: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ec2-iid"));
    command
        .arg("serve")
        .arg("--token")
        .arg(token)
        .arg("--cert")
        .arg(common::data_path("testca/testca.pem"))
        .args(["--cert-region", REGION])
        .args(["--endpoint-url", endpoint_url])
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null());
    command
}

/// A running `ec2-iid serve`, killed on drop (its stderr is shown if the test failed).
struct Server {
    child: Child,
    addr: String,
    log: PathBuf,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts a server in `dir` (its log is `dir/<name>.log`) with `extra` flags.
    fn start(dir: &Path, name: &str, endpoint_url: &str, extra: &[&str]) -> Self {
        let token = write_token(dir, None);
        Self::start_with_token(dir, name, &token, endpoint_url, extra)
    }

    fn start_with_token(
        dir: &Path,
        name: &str,
        token: &Path,
        endpoint_url: &str,
        extra: &[&str],
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let mut child = serve_command(token, endpoint_url, extra)
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let mut server = Self {
            child,
            addr: String::new(),
            log,
            _stdout: stdout,
        };
        match line.trim_end().strip_prefix("listening on ") {
            Some(addr) => server.addr = addr.to_owned(),
            None => panic!("ec2-iid serve did not start: {line:?}"),
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Checks a refusal: the body is only the kind and a request id, and the server's log has
    /// the reason (`reason_in_log`) in that request's span.
    fn refused(&self, body: &str, kind: &str, reason_in_log: &str) {
        let answer: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(answer["error"], kind, "{body}");
        let id = answer["request_id"].as_str().unwrap();
        assert_eq!(answer.as_object().unwrap().len(), 2, "nothing else: {body}");
        let log = self.log();
        let span = format!("join{{request_id={id}}}");
        let line = log
            .lines()
            .find(|line| line.contains(&span) && line.contains(reason_in_log))
            .unwrap_or_else(|| panic!("no log line for {id} with {reason_in_log:?}:\n{log}"));
        assert!(line.contains(kind), "{line}");
    }

    /// `POST /join` with `body`: the status and the response body.
    async fn join(&self, body: &[u8]) -> (u16, String) {
        let (status, _, body) = request(&self.addr, "POST", "/join", body).await;
        (status, body)
    }

    /// `GET /metrics`.
    async fn metrics(&self) -> String {
        let (status, head, body) = request(&self.addr, "GET", "/metrics", b"").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        body
    }

    /// A counter or gauge sample of `/metrics` (`name` with its labels), 0 if absent.
    async fn sample(&self, name: &str) -> f64 {
        sample(&self.metrics().await, name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("ec2-iid serve stderr ({}):\n{log}", self.log.display());
        }
    }
}

/// The value of the sample `name` (with its labels) in a `/metrics` text, 0 if absent.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

/// One HTTP/1.1 request on a new connection: the status, the response head and the body.
async fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: \
         close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer a body it refuses (413) without reading it, then close: the
    // write or the end of the read may fail with a reset, after the answer arrived.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut response))
        .await
        .expect("ec2-iid serve answers within 60 s");
    if response.is_empty() {
        read.unwrap();
    }
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    (status.unwrap(), head.to_owned(), body.to_owned())
}

/// `/rsa2048` text for an instance of `account` that started at `now`, as IMDS would serve it
/// (signed by the test CA, not AWS).
fn rsa2048(account: &str, instance_id: &str, now: DateTime<Utc>) -> String {
    let pending_time = now.format("%Y-%m-%dT%H:%M:%SZ");
    // AWS's field layout (see tests/data/gen/document.json).
    let document = format!(
        r#"{{
  "accountId" : "{account}",
  "architecture" : "x86_64",
  "availabilityZone" : "{REGION}a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "{AMI}",
  "instanceId" : "{instance_id}",
  "instanceType" : "t2.micro",
  "kernelId" : null,
  "pendingTime" : "{pending_time}",
  "privateIp" : "10.0.0.10",
  "ramdiskId" : null,
  "region" : "{REGION}",
  "version" : "2017-09-30"
}}"#
    );
    let spec = BlobSpec {
        // AWS signs a few seconds after the instance starts.
        signing_time: Some(now.format("%y%m%d%H%M%SZ").to_string()),
        ..BlobSpec::aws_like(document.as_bytes())
    };
    imds_base64(&spec.build(&test_ca()))
}

fn now() -> DateTime<Utc> {
    DateTime::from(SystemTime::now())
}

async fn ec2_client(url: &str) -> aws_sdk_ec2::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(SdkRegion::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(url)
        .load()
        .await;
    aws_sdk_ec2::Client::new(&config)
}

/// Launches `count` instances in one call and waits until they are running; their ids.
async fn launch(ec2: &aws_sdk_ec2::Client, count: i32) -> Vec<String> {
    let out = ec2
        .run_instances()
        .image_id(AMI)
        .min_count(count)
        .max_count(count)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = out
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), usize::try_from(count).unwrap());
    wait_for(ec2, &ids, InstanceStateName::Running).await;
    ids
}

/// Polls `DescribeInstances` until every one of `ids` is in `state`.
async fn wait_for(ec2: &aws_sdk_ec2::Client, ids: &[String], state: InstanceStateName) {
    for _ in 0..100 {
        let out = ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .unwrap();
        let in_state = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().and_then(|s| s.name()) == Some(&state))
            .count();
        if in_state == ids.len() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("instances {ids:?} never became {state}");
}

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
    let cases: [(&[&str], &str); 7] = [
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

    // Once: the same document is refused.
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 403, "{body}");
    server.refused(&body, "already_joined", "has already joined");

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
    // One call per lookup here: the joins came one after the other.
    assert_eq!(
        sample(&metrics, "ec2_iid_describe_instances_calls_total"),
        4.0
    );
    check_histogram(&metrics, 4.0);
}

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

/// A database of its own on the test PostgreSQL, owned by `owner` (made if missing); its
/// `--registry` value.
async fn database(server: &pg::PgServer, name: &str, owner: &str) -> String {
    let admin = admin(server, "postgres").await;
    // One statement per call: DROP and CREATE DATABASE refuse to run in a transaction block.
    for statement in [
        format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN \
             CREATE ROLE {owner} LOGIN; END IF; END $$"
        ),
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name} OWNER {owner}"),
    ] {
        admin.batch_execute(&statement).await.unwrap();
    }
    format!(
        "postgres:postgresql://{owner}@127.0.0.1:{}/{name}",
        server.port
    )
}

/// A superuser connection to `dbname`.
async fn admin(server: &pg::PgServer, dbname: &str) -> tokio_postgres::Client {
    let (client, connection) = server
        .config()
        .dbname(dbname)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
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
    let Some(db) = pg::server() else { return };
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
async fn a_blocked_or_unreachable_registry_is_503() {
    let Some(moto) = Moto::start() else { return };
    let Some(db) = pg::server() else { return };
    let registry = database(db, "flaky", "flaky").await;
    let ec2 = ec2_client(&moto.url).await;
    let instances = launch(&ec2, 2).await;
    let server = Server::start(
        &scratch_dir("flaky"),
        "serve",
        &moto.url,
        &["--registry", &registry, "--timeout", "2"],
    );

    // The table is locked: the claim waits, the request's timeout answers.
    let locker = admin(db, "flaky").await;
    locker
        .batch_execute("BEGIN; LOCK TABLE ec2_iid_joins IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let document = rsa2048(OWN_ACCOUNT, &instances[0], now());
    let (status, head, body) = request(&server.addr, "POST", "/join", document.as_bytes()).await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: 1"),
        "{head}"
    );
    server.refused(&body, "timeout", "timed out");
    locker.batch_execute("ROLLBACK").await.unwrap();

    // The database refuses the server's role: no connection, 503.
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
    assert_eq!(status, 503, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: 1"),
        "{head}"
    );
    server.refused(&body, "registry_unavailable", "registry failed");
    admin.batch_execute("ALTER ROLE flaky LOGIN").await.unwrap();
    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "ec2_iid_joins_total{outcome=\"timeout\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "ec2_iid_joins_total{outcome=\"registry_unavailable\"}"
        ),
        1.0
    );
}

/// What one burst measured.
#[derive(Debug)]
struct Burst {
    joined: usize,
    describe_calls: f64,
    took: Duration,
    latencies: Vec<Duration>,
}

impl Burst {
    fn percentile(&self, p: usize) -> Duration {
        let index = (self.latencies.len() * p / 100).min(self.latencies.len() - 1);
        self.latencies[index]
    }
}

/// Posts every document at once (one connection each) and waits for all answers.
async fn burst(server: &Server, documents: &[String]) -> Burst {
    let started = Instant::now();
    let posts: Vec<_> = documents
        .iter()
        .map(|document| {
            let addr = server.addr.clone();
            let document = document.clone();
            tokio::spawn(async move {
                let sent = Instant::now();
                let (status, _, body) = request(&addr, "POST", "/join", document.as_bytes()).await;
                (status, body, sent.elapsed())
            })
        })
        .collect();
    let mut joined = 0;
    let mut latencies = Vec::new();
    for post in posts {
        let (status, body, latency) = post.await.unwrap();
        assert_eq!(status, 200, "{body}");
        joined += 1;
        latencies.push(latency);
    }
    let took = started.elapsed();
    latencies.sort_unstable();
    Burst {
        joined,
        describe_calls: server
            .sample("ec2_iid_describe_instances_calls_total")
            .await,
        took,
        latencies,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn burst_of_200_joins_with_and_without_batching() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = ec2_client(&moto.url).await;
    let instances = launch(&ec2, 200).await;
    let documents: Vec<String> = instances
        .iter()
        .map(|id| rsa2048(OWN_ACCOUNT, id, now()))
        .collect();
    let dir = scratch_dir("burst");
    // Each server has its own (memory) registry, so the same instances join each once.
    let mut results = Vec::new();
    for (name, window) in [("unbatched", "0"), ("batched", "10")] {
        let server = Server::start(&dir, name, &moto.url, &["--batch-window-ms", window]);
        let result = burst(&server, &documents).await;
        let joined = server
            .sample("ec2_iid_joins_total{outcome=\"joined\"}")
            .await;
        assert_eq!(joined, 200.0);
        results.push((name, window, result));
    }
    for (name, window, r) in &results {
        let joins_per_sec = f64::from(u32::try_from(r.joined).unwrap()) / r.took.as_secs_f64();
        eprintln!(
            "burst {name} (--batch-window-ms {window}): {} joins in {:.2} s = {joins_per_sec:.0} \
             joins/s, p50 {:.0} ms, p99 {:.0} ms, {} DescribeInstances calls",
            r.joined,
            r.took.as_secs_f64(),
            r.percentile(50).as_secs_f64() * 1000.0,
            r.percentile(99).as_secs_f64() * 1000.0,
            r.describe_calls,
        );
        assert_eq!(r.joined, 200);
    }
    let (_, _, unbatched) = &results[0];
    let (_, _, batched) = &results[1];
    assert_eq!(unbatched.describe_calls, 200.0);
    assert!(batched.describe_calls <= 20.0, "{batched:?}");
}
