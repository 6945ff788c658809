//! The harness of the tests that run `ec2-iid serve` (`tests/serve.rs`, `tests/system.rs`):
//! the binary as a child process on 127.0.0.1:0, identity documents signed by the test CA
//! (trusted with `--cert`) for instances launched in moto, and databases on the test
//! PostgreSQL (the fixtures, moto and PostgreSQL from `ec2-iid-test-support`).
#![allow(
    dead_code,
    reason = "each including test uses a part: tests/system.rs posts through `ec2-iid join` \
              processes"
)]

pub(crate) mod ca;

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region as SdkRegion};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::InstanceStateName;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use ec2_iid_test_support::fixtures::{BlobSpec, data_path, imds_base64, test_ca};
use ec2_iid_test_support::moto::OWN_ACCOUNT;
use ec2_iid_test_support::postgres::PgServer;

pub(crate) const REGION: &str = "us-east-1";
/// One of the AMIs moto knows.
pub(crate) const AMI: &str = "ami-12c6146b";
pub(crate) const ROLE: &str = "arn:aws:iam::123456789012:role/ec2-iid-describe";

/// A scratch directory of this test, emptied.
pub(crate) fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A token allowing moto's account (through `role` when given), TTL 5m; its path.
pub(crate) fn write_token(dir: &Path, role: Option<&str>) -> PathBuf {
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
pub(crate) fn serve_command(token: &Path, endpoint_url: &str, extra: &[&str]) -> Command {
    let mut command = serve_base("127.0.0.1:0", token, endpoint_url);
    command
        .arg("--cert")
        .arg(data_path("testca/testca.pem"))
        .args(["--cert-region", REGION])
        .args(extra);
    command
}

/// `ec2-iid serve` on `listen` with `token`, AWS at `endpoint_url`, dummy credentials and no
/// IMDS: what every server of these tests shares.
fn serve_base(listen: &str, token: &Path, endpoint_url: &str) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("serve")
        .arg("--token")
        .arg(token)
        .args(["--endpoint-url", endpoint_url])
        .args(["--listen", listen])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null());
    command
}

/// The `ec2-iid` binary under test: cargo's, or `EC2_IID_BIN` (a copy of it, when other
/// builds share the target directory and may replace cargo's while the tests run).
pub(crate) fn binary() -> PathBuf {
    std::env::var_os("EC2_IID_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_ec2-iid")),
        PathBuf::from,
    )
}

/// A running `ec2-iid serve`, killed on drop (its stderr is shown if the test failed).
pub(crate) struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    log: PathBuf,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts a server in `dir` (its log is `dir/<name>.log`) with `extra` flags.
    #[allow(
        dead_code,
        reason = "tests/system.rs posts through `ec2-iid join` processes"
    )]
    pub(crate) fn start(dir: &Path, name: &str, endpoint_url: &str, extra: &[&str]) -> Self {
        let token = write_token(dir, None);
        Self::start_with_token(dir, name, &token, endpoint_url, extra)
    }

    pub(crate) fn start_with_token(
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

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Checks a refusal: the body is only the kind and a request id, and the server's log has
    /// the reason (`reason_in_log`) in that request's span.
    pub(crate) fn refused(&self, body: &str, kind: &str, reason_in_log: &str) {
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
    #[allow(
        dead_code,
        reason = "tests/system.rs posts through `ec2-iid join` processes"
    )]
    pub(crate) async fn join(&self, body: &[u8]) -> (u16, String) {
        let (status, _, body) = request(&self.addr, "POST", "/join", body).await;
        (status, body)
    }

    /// `GET /metrics`.
    pub(crate) async fn metrics(&self) -> String {
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
    pub(crate) async fn sample(&self, name: &str) -> f64 {
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
pub(crate) fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

/// One HTTP/1.1 request on a new connection: the status, the response head and the body.
pub(crate) async fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String, String) {
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
pub(crate) fn rsa2048(account: &str, instance_id: &str, now: DateTime<Utc>) -> String {
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

pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from(SystemTime::now())
}

pub(crate) async fn ec2_client(url: &str) -> aws_sdk_ec2::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(SdkRegion::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(url)
        .load()
        .await;
    aws_sdk_ec2::Client::new(&config)
}

/// Launches `count` instances in one call and waits until they are running; their ids.
pub(crate) async fn launch(ec2: &aws_sdk_ec2::Client, count: i32) -> Vec<String> {
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
pub(crate) async fn wait_for(ec2: &aws_sdk_ec2::Client, ids: &[String], state: InstanceStateName) {
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

/// A database of its own on the test PostgreSQL, owned by `owner` (made if missing); its
/// `--registry` value.
pub(crate) async fn database(server: &PgServer, name: &str, owner: &str) -> String {
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
pub(crate) async fn admin(server: &PgServer, dbname: &str) -> tokio_postgres::Client {
    let (client, connection) = server
        .config()
        .dbname(dbname)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The `p`th percentile of `sorted` latencies.
pub(crate) fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let index = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[index]
}

// ---- TLS, signals and raw connections (tests/edges.rs, tests/signals.rs, tests/system.rs). ----

/// `ec2-iid serve` on `listen`, without the test CA (`serve_base` and `extra`).
pub(crate) fn serve_command_on(
    listen: &str,
    token: &Path,
    endpoint_url: &str,
    extra: &[&str],
) -> Command {
    let mut command = serve_base(listen, token, endpoint_url);
    command.args(extra);
    command
}

impl Server {
    /// Sends `signal` (`TERM`, `HUP`, ...) to the server process with kill(1).
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {signal}");
    }

    /// Waits (at most `within`) for the server to exit; its exit code.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let started = std::time::Instant::now();
        while started.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("ec2-iid serve still running after {within:?}");
    }
}

/// The test TLS pairs: 1 is ec2-iid-aws's (`ca.pem`, `server.pem`, `server.key`), 2 this crate's
/// (`ca2.pem`, `server2.pem`, `server2.key`); both for 127.0.0.1.
pub(crate) struct TlsPair {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

pub(crate) fn tls_pair(which: u8) -> TlsPair {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (dir, suffix) = match which {
        1 => (manifest.join("../ec2-iid-aws/tests/data/tls"), ""),
        _ => (manifest.join("tests/data/tls"), "2"),
    };
    TlsPair {
        ca: dir.join(format!("ca{suffix}.pem")),
        cert: dir.join(format!("server{suffix}.pem")),
        key: dir.join(format!("server{suffix}.key")),
    }
}

/// Copies pair `which` to `dir/cert.pem` and `dir/key.pem` (mode 600, as serve requires);
/// the `--tls-cert` and `--tls-key` flags naming them.
pub(crate) fn install_tls_pair(dir: &Path, which: u8) -> [String; 4] {
    use std::os::unix::fs::PermissionsExt as _;
    let pair = tls_pair(which);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, std::fs::read(&pair.cert).unwrap()).unwrap();
    std::fs::write(&key, std::fs::read(&pair.key).unwrap()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    [
        "--tls-cert".into(),
        cert.display().to_string(),
        "--tls-key".into(),
        key.display().to_string(),
    ]
}

/// A TLS connection to `addr` trusting only `ca` (a PEM file).
pub(crate) async fn tls_connect(
    addr: &str,
    ca: &Path,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    tls_connect_as(addr, ca, None).await
}

/// [`tls_connect`], presenting `client` (a certificate chain and its key, PEM) if given.
pub(crate) async fn tls_connect_as(
    addr: &str,
    ca: &Path,
    client: Option<(&str, &str)>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(chain.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .expect("TLS handshake within 5 s")
}

/// The leaf certificate the server presented on `stream` (DER).
pub(crate) fn peer_leaf(
    stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// The DER of the first certificate of a PEM file.
pub(crate) fn leaf_der(pem: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::pem_file_iter(pem)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// One request on an open (keep-alive) connection: the status, the head and the body (read by
/// its Content-Length), within 10 s.
pub(crate) async fn exchange<S>(
    stream: &mut S,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), read_response(stream))
        .await
        .expect("an answer within 10 s")
}

async fn read_response<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the response head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the response body");
        body.extend_from_slice(&chunk[..n]);
    }
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

/// Reads until the server closes `stream` (EOF or reset), at most `within`; what was read.
pub(crate) async fn until_closed<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    within: Duration,
) -> Vec<u8> {
    let mut read = Vec::new();
    let mut chunk = [0; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not closed within {within:?}"));
    read
}

/// `GET /metrics` over TLS (the first test pair's CA trusted).
pub(crate) async fn tls_metrics(addr: &str) -> String {
    let mut stream = tls_connect(addr, &tls_pair(1).ca).await.unwrap();
    let (status, _, body) = exchange(&mut stream, "GET", "/metrics", b"").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// An endpoint that accepts connections and never answers (an EC2 that hangs), and the task
/// holding them (abort it to close them): every lookup through it waits out `--timeout`.
pub(crate) async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", hole.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = hole.accept().await {
            held.push(stream);
        }
    });
    (url, held)
}
