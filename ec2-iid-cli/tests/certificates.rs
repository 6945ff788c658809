//! Certificates through `ec2-iid serve --ca-cert` and `ec2-iid join --out-dir`, over loopback:
//! the real binary as server and client, an instance launched in moto, its document from the
//! IMDSv2 emulator, and the test CA of ec2-iid-ca (a P-384 intermediate under a P-256 root,
//! `ec2-iid-ca/tests/data/ca`). The issued certificate is checked with `openssl verify` and
//! parsed with x509-parser.
//!
//! Needs `moto_server` (as tests/serve.rs) and the `openssl` command; without them the tests
//! print a notice and pass, unless `CI=true`.
#![cfg(test)] // clippy.toml says why

mod harness;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ec2_iid_test_support::free_port;
use ec2_iid_test_support::imds::{ImdsServer, RSA2048};
use ec2_iid_test_support::join_server;
use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use ec2_iid_test_support::postgres;
use harness::ca::{ca_data, csr_of, install_ca, new_csr};
use harness::write_token;
use harness::{Server, ec2_client, launch, now, request, rsa2048, scratch_dir, serve_command};
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

/// The root of the test CA: the bundle relying parties trust.
fn root_pem() -> String {
    std::fs::read_to_string(ca_data("root.pem")).unwrap()
}

fn csr_body(document: &str, csr: &str) -> Vec<u8> {
    serde_json::json!({ "document": document, "csr": csr })
        .to_string()
        .into_bytes()
}

/// Whether the `openssl` command runs; without it, a notice (a failure under `CI=true`).
fn openssl_available() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the openssl command is needed under CI=true"
        );
        eprintln!("notice: no openssl command: the certificate is not checked with it");
    }
    ok
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl").args(args).output().unwrap()
}

/// `ec2-iid join --out-dir OUT` against `server` for the instance IMDS serves, to its exit.
async fn join_out_dir(
    server: &Server,
    imds: &ImdsServer,
    out: &Path,
) -> (Option<i32>, String, String) {
    let child = tokio::process::Command::new(harness::binary())
        .arg("join")
        .args(["--server", &format!("http://{}", server.addr)])
        .args(["--imds-endpoint", &imds.url])
        .args(["--deadline", "20s"])
        .arg("--out-dir")
        .arg(out)
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env_remove("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("ec2-iid join ends within 30 s")
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        output.status.code(),
        text(output.stdout),
        text(output.stderr),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn join_out_dir_gets_a_certificate_bound_to_its_key() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = ec2_client(&moto.url).await;
    let instance = launch(&ec2, 1).await.remove(0);
    let host_id = format!("{OWN_ACCOUNT}-{instance}");
    let spiffe_id = format!("spiffe://example.org/ec2/{OWN_ACCOUNT}/us-east-1/{instance}");
    let dir = scratch_dir("certificates");
    let (chain, key) = install_ca(&dir, 0o600);
    let server = Server::start(
        &dir,
        "serve",
        &moto.url,
        &[
            "--ca-cert",
            &chain,
            "--ca-key",
            &key,
            "--trust-domain",
            "example.org",
        ],
    );
    let imds = ImdsServer::start().await;
    let document = rsa2048(OWN_ACCOUNT, &instance, now());
    imds.set_body(RSA2048, document.clone());

    // The instance joins: its key, the certificate and the bundle are written.
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let (code, stdout, stderr) = join_out_dir(&server, &imds, &out).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let printed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["host_id"], host_id.as_str(), "{stdout}");
    assert_eq!(printed["spiffe_id"], spiffe_id.as_str(), "{stdout}");
    assert_eq!(printed["grant"], "first", "{stdout}");
    let serial = printed["serial"].as_str().unwrap().to_owned();
    let key_mode = std::fs::metadata(out.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "no temporary file is left: {names:?}");
    assert_eq!(
        std::fs::read_to_string(out.join("bundle.pem")).unwrap(),
        root_pem()
    );

    // The certificate: issued to the host, for the key on disk, valid under the bundle.
    let cert_pem = std::fs::read_to_string(out.join("cert.pem")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).unwrap();
    let (_, cert) = X509Certificate::from_der(&pem.contents).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), host_id);
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        sans.value.general_names,
        [GeneralName::URI(spiffe_id.as_str())]
    );
    let raw_serial = cert.raw_serial_as_string().replace(':', "");
    assert_eq!(
        raw_serial.trim_start_matches('0'),
        serial.trim_start_matches('0')
    );
    let key_pem = std::fs::read_to_string(out.join("key.pem")).unwrap();
    let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    assert_eq!(
        cert.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );
    if openssl_available() {
        let paths = [out.join("bundle.pem"), out.join("cert.pem")];
        let [bundle, cert] = paths.each_ref().map(|p| p.to_str().unwrap());
        let verified = openssl(&["verify", "-CAfile", bundle, "-untrusted", cert, cert]);
        assert!(verified.status.success(), "{verified:?}");
    }

    // Another key with the same document: refused, nothing written.
    let other = dir.join("other");
    std::fs::create_dir(&other).unwrap();
    let (code, stdout, stderr) = join_out_dir(&server, &imds, &other).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("refused: already_joined"), "{stderr}");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);

    // The first key retrying (its answer lost, say): granted again, a new certificate.
    let (status, body) = server.join(&csr_body(&document, &csr_of(&key))).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["grant"], "repeat", "{body}");
    assert_eq!(answer["host_id"], host_id.as_str());
    assert_eq!(answer["matched_rule"], 0);
    assert_eq!(answer["spiffe_id"], spiffe_id.as_str());
    assert_ne!(answer["serial"], serial.as_str(), "a new serial");
    assert_eq!(answer["bundle"], root_pem().as_str());
    let certificate = answer["certificate"].as_str().unwrap();
    assert_eq!(
        certificate.matches("BEGIN CERTIFICATE").count(),
        2,
        "leaf, intermediate"
    );
    let not_after = answer["not_after"].as_str().unwrap();
    let not_after = chrono::DateTime::parse_from_rfc3339(not_after).unwrap();
    let ttl = not_after.signed_duration_since(now());
    assert!(
        ttl > chrono::TimeDelta::minutes(59) && ttl <= chrono::TimeDelta::hours(1),
        "default --cert-ttl 1h: {ttl}"
    );
    // The raw document still answers as before: refused as a replay (another requester).
    let (status, body) = server.join(document.as_bytes()).await;
    assert_eq!(status, 403, "{body}");
    server.refused(&body, "already_joined", "has already joined");

    assert_eq!(
        server
            .sample("ec2_iid_certificates_issued_total{via=\"join\"}")
            .await,
        2.0
    );
    let log = server.log();
    let issued = log
        .lines()
        .find(|l| l.contains("certificate issued") && l.contains("grant=\"first\""))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        issued.contains(&serial) && issued.contains(&host_id),
        "{issued}"
    );
    assert!(
        !log.contains("PRIVATE KEY") && !log.contains("CERTIFICATE REQUEST"),
        "{log}"
    );

    // A CA past its notAfter: the join is granted, the certificate not issued.
    let expired_dir = dir.join("expired");
    std::fs::create_dir(&expired_dir).unwrap();
    let (chain, key_file) = expired_ca(&expired_dir);
    let expired = Server::start(
        &expired_dir,
        "serve",
        &moto.url,
        &[
            "--ca-cert",
            &chain,
            "--ca-key",
            &key_file,
            "--trust-domain",
            "example.org",
        ],
    );
    let (status, body) = expired.join(&csr_body(&document, &csr_of(&key))).await;
    assert_eq!(status, 500, "{body}");
    expired.refused(&body, "issue_failed", "CA certificate expired");

    // GET /bundle: the root.
    let (status, head, body) = request(&server.addr, "GET", "/bundle", b"").await;
    assert_eq!((status, body), (200, root_pem()));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/pem-certificate-chain"),
        "{head}"
    );
}

/// A self-signed CA valid in 2020 only, written into `dir` (the key 0600); its paths.
fn expired_ca(dir: &Path) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let (chain, key_file) = (dir.join("old-ca.pem"), dir.join("old-ca.key"));
    std::fs::write(&chain, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = |p: PathBuf| p.to_str().unwrap().to_owned();
    (text(chain), text(key_file))
}

/// A loopback URL nothing listens on: the refusals below need no EC2.
fn closed_url() -> String {
    format!("http://127.0.0.1:{}", free_port().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn csr_refusals_come_before_any_lookup() {
    let dir = scratch_dir("csr-refusals");
    let (chain, key) = install_ca(&dir, 0o600);
    let server = Server::start(
        &dir,
        "serve",
        &closed_url(),
        &[
            "--ca-cert",
            &chain,
            "--ca-key",
            &key,
            "--trust-domain",
            "example.org",
            "--allow-rsa-csr",
        ],
    );
    let document = rsa2048(OWN_ACCOUNT, "i-0123456789abcdef0", now());
    let (csr, _) = new_csr();

    let (status, body) = server.join(&csr_body(&document, "not a CSR")).await;
    assert_eq!(status, 400, "{body}");
    server.refused(&body, "csr_malformed", "CSR refused");

    let mut tampered = csr.clone().into_bytes();
    // A byte of the base64 in the middle: the signature no longer verifies, or the DER breaks.
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let (status, body) = server
        .join(&csr_body(&document, &String::from_utf8(tampered).unwrap()))
        .await;
    assert_eq!(status, 400, "{body}");
    let kind = serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].clone();
    assert!(
        kind == "csr_bad_signature" || kind == "csr_malformed",
        "{body}"
    );

    if openssl_available() {
        let weak = dir.join("weak.key");
        let made = openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            weak.to_str().unwrap(),
            "-subj",
            "/CN=weak",
        ]);
        assert!(made.status.success(), "{made:?}");
        let weak_csr = String::from_utf8(made.stdout).unwrap();
        let (status, body) = server.join(&csr_body(&document, &weak_csr)).await;
        assert_eq!(status, 400, "{body}");
        server.refused(&body, "csr_weak_key", "RSA-1024");
    }

    let unknown = serde_json::json!({ "document": document, "csr": csr, "key": "x" });
    let (status, body) = server.join(unknown.to_string().as_bytes()).await;
    assert_eq!(status, 400, "{body}");
    server.refused(&body, "malformed", "unknown field \"key\"");
    let (status, body) = server.join(b"  {\"document\": \"x\"}").await;
    assert_eq!(status, 400, "{body}");
    server.refused(&body, "malformed", "missing field \"csr\"");
    assert_eq!(
        server
            .sample("ec2_iid_describe_instances_calls_total")
            .await,
        0.0,
        "no lookup for a refused CSR"
    );

    // Without --ca-cert: no certificates, no bundle.
    let plain = Server::start(&dir, "plain", &closed_url(), &[]);
    let (status, body) = plain.join(&csr_body(&document, &csr)).await;
    assert_eq!(status, 400, "{body}");
    plain.refused(&body, "issuance_disabled", "no --ca-cert");
    let (status, _, body) = request(&plain.addr, "GET", "/bundle", b"").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"],
        "issuance_disabled"
    );
}

#[test]
fn ca_flags_are_checked_at_start() {
    let dir = scratch_dir("ca-flags");
    let (chain, key) = install_ca(&dir, 0o600);
    let root = ca_data("root.pem");
    let root = root.to_str().unwrap();
    let token = write_token(&dir, None);
    let exit = |extra: &[&str]| {
        serve_command(&token, "http://127.0.0.1:1", extra)
            .output()
            .unwrap()
    };
    let ca = ["--ca-cert", chain.as_str(), "--ca-key", key.as_str()];
    let with_ca = |extra: &[&'static str]| {
        let mut flags = ca.to_vec();
        flags.extend_from_slice(extra);
        flags
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--ca-cert", &chain, "--trust-domain", "example.org"],
            "--ca-cert needs --ca-key",
        ),
        (vec!["--ca-key", &key], "--ca-key needs --ca-cert"),
        (ca.to_vec(), "--ca-cert needs --trust-domain"),
        (
            vec!["--trust-domain", "example.org"],
            "--trust-domain is about issued certificates",
        ),
        (
            vec!["--cert-ttl", "2h"],
            "--cert-ttl is about issued certificates",
        ),
        (
            with_ca(&["--trust-domain", "Example.org"]),
            "--trust-domain: trust domain",
        ),
        (
            with_ca(&["--trust-domain", "example.org", "--cert-ttl", "25h"]),
            "--cert-ttl: certificate TTL",
        ),
        (
            with_ca(&["--trust-domain", "example.org", "--cert-ttl", "soon"]),
            "--cert-ttl",
        ),
        (
            with_ca(&["--trust-domain", "example.org", "--id-template", "/{nope}"]),
            "--id-template: SPIFFE ID template",
        ),
        (
            vec![
                "--ca-cert",
                root,
                "--ca-key",
                &key,
                "--trust-domain",
                "example.org",
            ],
            "CA key does not match",
        ),
    ];
    for (extra, message) in cases {
        let output = exit(&extra);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{extra:?}");
    }

    // A CA key others can read: refused, and its contents never printed.
    let (chain, key) = install_ca(&dir, 0o640);
    let output = exit(&[
        "--ca-cert",
        &chain,
        "--ca-key",
        &key,
        "--trust-domain",
        "example.org",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--ca-key {key}: readable by group or others (mode 640): chmod 600 {key}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn join_out_dir_needs_a_directory_and_a_certificate() {
    let dir = scratch_dir("out-dir-errors");
    let imds = ImdsServer::start().await;
    let (url, seen) = join_server::join_server(vec![(200, None, join_server::JOINED)]).await;
    let run = |out: PathBuf| {
        let args = [
            "join",
            "--server",
            &url,
            "--imds-endpoint",
            &imds.url,
            "--deadline",
            "10s",
        ]
        .map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            Command::new(harness::binary())
                .args(args)
                .arg("--out-dir")
                .arg(out)
                .env_remove("AWS_EC2_METADATA_DISABLED")
                .stdin(Stdio::null())
                .output()
                .unwrap()
        })
    };
    // No such directory: a usage error, nothing sent.
    let output = run(dir.join("missing")).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("create it first"), "{stderr}");
    assert!(seen.lock().unwrap().is_empty());

    // A server that answers 200 without a certificate: nothing written, exit 3.
    let output = run(dir.clone()).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("without a certificate"), "{stderr}");
    assert!(output.stdout.is_empty());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written"
    );
    let seen = seen.lock().unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&seen[0]).unwrap();
    assert!(
        sent["csr"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
    );
    assert!(sent["document"].is_string());
}

/// Two replicas with the CA on `registry`: one document posted with 20 different CSRs at once
/// grants exactly one certificate; then another instance's document posted 20 times at once
/// with one CSR grants 20 certificates, all for that key, and one enrollment. `enrollment`
/// reads the host's record from the registry.
async fn two_replicas_bind_a_launch_to_one_key<F, Fut>(
    moto: &Moto,
    name: &str,
    registry: &str,
    enrollment: F,
) where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Option<ec2_iid::Enrollment>>,
{
    let ec2 = ec2_client(&moto.url).await;
    let instances = launch(&ec2, 2).await;
    let dir = scratch_dir(name);
    let (chain, key) = install_ca(&dir, 0o600);
    let flags = [
        "--registry",
        registry,
        "--ca-cert",
        &chain,
        "--ca-key",
        &key,
        "--trust-domain",
        "example.org",
    ];
    let replicas = [
        Server::start(&dir, "a", &moto.url, &flags),
        Server::start(&dir, "b", &moto.url, &flags),
    ];
    let post_all = |bodies: Vec<Vec<u8>>| {
        let posts: Vec<_> = bodies
            .into_iter()
            .enumerate()
            .map(|(n, body)| {
                let addr = replicas[n % 2].addr.clone();
                tokio::spawn(async move { request(&addr, "POST", "/join", &body).await })
            })
            .collect();
        async move {
            let mut answers = Vec::new();
            for post in posts {
                let (status, _, body) = post.await.unwrap();
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                answers.push((status, body));
            }
            answers
        }
    };

    // One document, 20 keys: one certificate, 19 refusals.
    let document = rsa2048(OWN_ACCOUNT, &instances[0], now());
    let bodies = (0..20).map(|_| csr_body(&document, &new_csr().0)).collect();
    let answers = post_all(bodies).await;
    let granted: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .collect();
    assert_eq!(granted.len(), 1, "{answers:?}");
    assert_eq!(granted[0].1["grant"], "first");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!((*status, &body["error"]), (403, &"already_joined".into()));
    }

    // One key, 20 posts of another document: 20 certificates for that key, one enrollment.
    let (csr, key_pem) = new_csr();
    let document = rsa2048(OWN_ACCOUNT, &instances[1], now());
    let answers = post_all(vec![csr_body(&document, &csr); 20]).await;
    let public = rcgen::KeyPair::from_pem(&key_pem)
        .unwrap()
        .public_key_raw()
        .to_vec();
    let mut serials = std::collections::BTreeSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        let chain = body["certificate"].as_str().unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
        let (_, cert) = X509Certificate::from_der(&pem.contents).unwrap();
        assert_eq!(cert.public_key().subject_public_key.data.as_ref(), public);
        serials.insert(body["serial"].as_str().unwrap().to_owned());
    }
    assert_eq!(serials.len(), 20, "a serial each");
    let grants = answers
        .iter()
        .filter(|(_, b)| b["grant"] == "first")
        .count();
    assert!(grants >= 1, "{answers:?}");
    let host_id = format!("{OWN_ACCOUNT}-{}", instances[1]);
    let record = enrollment(host_id.clone())
        .await
        .expect("the host is enrolled");
    assert!(serials.contains(&record.serial), "{record:?}");
    assert_eq!((record.host_id, record.evicted_at), (host_id, None));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_postgres_bind_a_launch_to_one_key() {
    use ec2_iid::EnrollmentRegistry as _;
    let Some(moto) = Moto::start() else { return };
    let Some(db) = postgres::server() else {
        return;
    };
    let registry = harness::database(db, "csr_replicas", "postgres").await;
    let store = ec2_iid_postgres::PostgresJoinRegistry::from_config(
        registry.strip_prefix("postgres:").unwrap(),
    )
    .unwrap();
    let store = &store;
    two_replicas_bind_a_launch_to_one_key(&moto, "csr-replicas-pg", &registry, |host| async move {
        store.get(&host).await.unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_dynamodb_bind_a_launch_to_one_key() {
    use ec2_iid::EnrollmentRegistry as _;
    // moto's conditional writes check and write in two steps; AWS's are atomic.
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(harness::REGION))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_url(&moto.url)
        .load()
        .await;
    let store = ec2_iid_aws::dynamodb::DynamoDbJoinRegistry::from_conf(&config, "csr-replicas");
    let store = &store;
    two_replicas_bind_a_launch_to_one_key(
        &moto,
        "csr-replicas-dynamodb",
        "dynamodb:csr-replicas",
        |host| async move { store.get(&host).await.unwrap() },
    )
    .await;
}
