//! The `join_server` example end to end over loopback: identity documents signed by the test
//! CA (`tests/data/testca/`, trusted with `--cert`) for instances launched in moto, which the
//! server looks up through `--endpoint-url`.
//!
//! Each test builds the example with Cargo (a no-op when it is fresh) and runs it on a free
//! port. The moto test needs `moto_server` (see `support/mod.rs`); the other one does not.
#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test helpers fail the test on unexpected answers"
)]

#[path = "../../tests/common/mod.rs"]
mod common;
mod support;

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

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

/// The example, built once per test binary: `<target>/<profile>/examples/join_server`, next to
/// the `deps/` folder this test runs from.
///
/// Built for the whole workspace, so that its dependencies get the same features as under
/// `cargo test --workspace` (the README's and CI's command), which has then already built it:
/// the build below is a no-op there instead of a second build of the AWS SDK.
fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--example",
                "join_server",
            ])
            .arg("--target-dir")
            .arg(profile_dir.parent().unwrap());
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        let status = cargo.status().unwrap();
        assert!(
            status.success(),
            "building the join_server example: {status}"
        );
        profile_dir
            .join("examples")
            .join(format!("join_server{}", std::env::consts::EXE_SUFFIX))
    })
}

/// A scratch directory of this test, emptied.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("join_server-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `join_server`, killed on drop (its stderr is shown if the test failed).
struct JoinServer {
    child: Child,
    addr: String,
    log: PathBuf,
    _stdout: BufReader<ChildStdout>,
}

impl JoinServer {
    /// Starts the server in `dir` with a token allowing moto's account, the test CA trusted for
    /// us-east-1 and AWS at `endpoint_url`.
    fn start(dir: &Path, endpoint_url: &str) -> Self {
        let token = dir.join("token.yaml");
        std::fs::write(
            &token,
            format!(
                "kind: token\nversion: v2\nmetadata:\n  name: join-test\nspec:\n  roles: [Node]\n  \
                 join_method: ec2\n  aws_iid_ttl: 5m\n  allow:\n  - aws_account: \"{OWN_ACCOUNT}\"\n"
            ),
        )
        .unwrap();
        let log = dir.join("join_server.log");
        let mut child = Command::new(example_binary())
            .arg("--token")
            .arg(&token)
            .arg("--cert")
            .arg(common::data_path("testca/testca.pem"))
            .args(["--cert-region", REGION])
            .args(["--endpoint-url", endpoint_url])
            .args(["--timeout", "20", "--listen", "127.0.0.1:0"])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
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
            None => panic!("join_server did not start: {line:?}"),
        }
        server
    }

    /// Checks a refusal: the body is only the kind and a request id, and the server's log has
    /// the reason (`reason_in_log`) under that id.
    fn refused(&self, body: &str, kind: &str, reason_in_log: &str) {
        let answer: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(answer["error"], kind, "{body}");
        let id = answer["request_id"].as_str().unwrap();
        assert_eq!(answer.as_object().unwrap().len(), 2, "nothing else: {body}");
        let log = std::fs::read_to_string(&self.log).unwrap();
        let line = log
            .lines()
            .find(|line| line.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no log line for {id}:\n{log}"));
        assert!(line.contains(reason_in_log), "{line}");
    }

    /// `POST /join` with `body`: the status and the response body.
    async fn join(&self, body: &[u8]) -> (u16, String) {
        let (status, _, body) = self.join_with_head(body).await;
        (status, body)
    }

    /// `POST /join` with `body`: the status, the response head and the body.
    async fn join_with_head(&self, body: &[u8]) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let head = format!(
            "POST /join HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server may answer a body it refuses (413) without reading it, then close: the
        // write or the end of the read may fail with a reset, after the answer arrived.
        let _ = stream.write_all(body).await;
        let mut response = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut response))
            .await
            .expect("join_server answers within 60 s");
        if response.is_empty() {
            read.unwrap();
        }
        let response = String::from_utf8(response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
        (status.unwrap(), head.to_owned(), body.to_owned())
    }
}

impl Drop for JoinServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("join_server stderr:\n{log}");
        }
    }
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

/// Launches one instance and waits until it is running; returns its id.
async fn launch(ec2: &aws_sdk_ec2::Client) -> String {
    let out = ec2
        .run_instances()
        .image_id(AMI)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let id = out.instances()[0].instance_id().unwrap().to_owned();
    wait_for(ec2, &id, InstanceStateName::Running).await;
    id
}

/// Polls `DescribeInstances` until `id` is in `state`.
async fn wait_for(ec2: &aws_sdk_ec2::Client, id: &str, state: InstanceStateName) {
    for _ in 0..100 {
        let out = ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .unwrap();
        let current = out.reservations()[0].instances()[0]
            .state()
            .and_then(|s| s.name());
        if current == Some(&state) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("instance {id} never became {state}");
}

#[tokio::test]
async fn joins_a_running_instance_once() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = ec2_client(&moto.url).await;
    let running = launch(&ec2).await;
    let stopped = launch(&ec2).await;
    ec2.stop_instances()
        .instance_ids(&stopped)
        .send()
        .await
        .unwrap();
    wait_for(&ec2, &stopped, InstanceStateName::Stopped).await;
    let server = JoinServer::start(&scratch_dir("moto"), &moto.url);

    // A running instance joins, as <account>-<instance>, through the token's first rule.
    let document = rsa2048(OWN_ACCOUNT, &running, now());
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"host_id": format!("{OWN_ACCOUNT}-{running}"), "matched_rule": 0})
    );

    // Once: the same document (or a fresh one for the same instance) is refused.
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 403, "{body}");
    server.refused(&body, "already_joined", "has already joined");

    // A stopped instance, an unknown one and garbage are refused.
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
    let (status, body) = server.join(b"not an identity document").await;
    assert_eq!(status, 400, "{body}");
    server.refused(&body, "malformed", "invalid base64");
}

#[tokio::test]
async fn refuses_before_the_lookup_and_reports_an_unreachable_ec2() {
    // Nothing listens at the endpoint: every lookup fails to connect.
    let endpoint = format!("http://127.0.0.1:{}", free_port().unwrap());
    let server = JoinServer::start(&scratch_dir("unreachable"), &endpoint);

    // A lookup that may pass later: 503.
    let document = rsa2048(OWN_ACCOUNT, "i-0123456789abcdef0", now());
    let (status, head, body) = server.join_with_head(document.as_bytes()).await;
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
    let (status, _) = server.join(&vec![b'A'; ec2_iid::MAX_BLOB_LEN + 1]).await;
    assert_eq!(status, 413);
}
