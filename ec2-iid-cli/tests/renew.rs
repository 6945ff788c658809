//! Certificates over TLS: an instance joins over https with `ec2-iid join --out-dir` and its
//! certificate passes `openssl verify` and a mutual-TLS server's check; `POST /renew` over
//! mutual TLS: an instance that joined with a CSR renews with its certificate and a new key,
//! twice, without a new document; renewals without a client certificate, with a certificate
//! of another CA, or after `evict` are refused. The real binary over TLS, an instance in moto,
//! a PostgreSQL registry (evicted through the library, as an operator's `ec2-iid registry
//! evict` would), and the test CA of ec2-iid-ca.
//!
//! Needs `moto_server` and PostgreSQL (as tests/serve.rs): without them the test prints a
//! notice and passes, unless `CI=true`.
#![cfg(test)] // clippy.toml says why

mod harness;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use ec2_iid::EnrollmentRegistry as _;
use ec2_iid_test_support::imds;
use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use ec2_iid_test_support::postgres;
use harness::ca::{ca_flags, new_csr};
use harness::{
    Server, database, ec2_client, exchange, install_tls_pair, launch, now, rsa2048, sample,
    scratch_dir, tls_connect_as, tls_metrics, tls_pair,
};
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

/// `ec2-iid serve` over TLS (test pair 1) with the test CA, and `extra` flags.
fn tls_ca_server(dir: &Path, endpoint_url: &str, extra: &[&str]) -> Server {
    let flags = [&ca_flags(dir)[..], &install_tls_pair(dir, 1)[..]].concat();
    let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    flags.extend_from_slice(extra);
    Server::start(dir, "serve", endpoint_url, &flags)
}

/// The PostgreSQL registry of a `--registry postgres:URL` value, to evict and read hosts.
fn postgres_store(registry: &str) -> ec2_iid_postgres::PostgresJoinRegistry {
    ec2_iid_postgres::PostgresJoinRegistry::from_config(registry.strip_prefix("postgres:").unwrap())
        .unwrap()
}

/// One request over TLS, presenting `client` (chain, key) if given: status and JSON body;
/// `None` if the connection failed (a refused client certificate).
async fn post(
    server: &Server,
    path: &'static str,
    client: Option<(&str, &str)>,
    body: &serde_json::Value,
) -> Option<(u16, serde_json::Value)> {
    let mut stream = tls_connect_as(&server.addr, &tls_pair(1).ca, client)
        .await
        .ok()?;
    let body = body.to_string();
    // A refused client certificate ends the connection after the handshake, at the first read.
    let exchanged = tokio::spawn(async move {
        let (status, _, body) = exchange(&mut stream, "POST", path, body.as_bytes()).await;
        (status, body)
    });
    let (status, body) = exchanged.await.ok()?;
    Some((status, serde_json::from_str(&body).unwrap()))
}

/// The leaf of a PEM chain: its CN, its URI SANs and its public key.
fn leaf(chain: &str) -> (String, Vec<String>, Vec<u8>) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
    let (_, cert) = X509Certificate::from_der(&pem.contents).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    let uris = sans
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
        .collect();
    let key = cert.public_key().subject_public_key.data.to_vec();
    (cn.as_str().unwrap().to_owned(), uris, key)
}

fn public_key(key_pem: &str) -> Vec<u8> {
    rcgen::KeyPair::from_pem(key_pem)
        .unwrap()
        .public_key_raw()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_joined_host_renews_over_mutual_tls_until_evicted() {
    let Some(moto) = Moto::start() else { return };
    let Some(db) = postgres::server() else { return };
    let registry = database(db, "renewals", "postgres").await;
    let ec2 = ec2_client(&moto.url).await;
    let instance = launch(&ec2, 1).await.remove(0);
    let host_id = format!("{OWN_ACCOUNT}-{instance}");
    let spiffe_id = format!("spiffe://example.org/ec2/{OWN_ACCOUNT}/us-east-1/{instance}");
    let dir = scratch_dir("renew");
    let refresh = ["--enrolled-hosts-refresh", "1"];
    let server = tls_ca_server(
        &dir,
        &moto.url,
        &[&["--registry", &registry][..], &refresh].concat(),
    );

    // The join: a certificate for the first key.
    let document = rsa2048(OWN_ACCOUNT, &instance, now());
    let (first_csr, key) = new_csr();
    let join_body = serde_json::json!({ "document": document, "csr": first_csr });
    let (status, joined) = post(&server, "/join", None, &join_body).await.unwrap();
    assert_eq!(status, 200, "{joined}");
    let mut chain = joined["certificate"].as_str().unwrap().to_owned();
    let mut held = key;
    let mut serials = vec![joined["serial"].as_str().unwrap().to_owned()];

    // Two renewals, each presenting the certificate of the one before, each for a new key.
    for _ in 0..2 {
        let (csr, key) = new_csr();
        let (status, renewed) = post(
            &server,
            "/renew",
            Some((&chain, &held)),
            &serde_json::json!({ "csr": csr }),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{renewed}");
        assert_eq!(renewed["host_id"], host_id.as_str());
        assert_eq!(renewed["spiffe_id"], spiffe_id.as_str());
        let serial = renewed["serial"].as_str().unwrap().to_owned();
        assert!(!serials.contains(&serial), "a new serial: {renewed}");
        serials.push(serial);
        chain = renewed["certificate"].as_str().unwrap().to_owned();
        let (cn, uris, public) = leaf(&chain);
        assert_eq!((cn, uris), (host_id.clone(), vec![spiffe_id.clone()]));
        assert_eq!(public, public_key(&key), "issued for the new key");
        held = key;
    }
    let store = postgres_store(&registry);
    let record = store.get(&host_id).await.unwrap().unwrap();
    assert_eq!(&record.serial, serials.last().unwrap());
    assert!(record.last_renewed.is_some());

    // No client certificate: 401, whatever the CSR.
    let (csr, _) = new_csr();
    let (status, refused) = post(&server, "/renew", None, &serde_json::json!({ "csr": csr }))
        .await
        .unwrap();
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["error"], "client_certificate_required");

    // A certificate of another CA (the TLS test pair's server certificate): the handshake or
    // the request fails, and no certificate comes back.
    let pair = tls_pair(1);
    let foreign = (
        std::fs::read_to_string(&pair.cert).unwrap(),
        std::fs::read_to_string(&pair.key).unwrap(),
    );
    let answer = post(
        &server,
        "/renew",
        Some((&foreign.0, &foreign.1)),
        &serde_json::json!({ "csr": csr }),
    )
    .await;
    assert!(answer.is_none(), "{answer:?}");

    // Evicted: the renewal is refused, and so is the same launch's join with the same key;
    // the gauge (counted by PostgreSQL every second) no longer counts the host.
    enrolled_hosts_reach(&server, 1).await;
    assert!(store.evict(&host_id, chrono::Utc::now()).await.unwrap());
    enrolled_hosts_reach(&server, 0).await;
    let (status, refused) = post(
        &server,
        "/renew",
        Some((&chain, &held)),
        &serde_json::json!({ "csr": csr }),
    )
    .await
    .unwrap();
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"], "evicted");
    // The first key's retry of the join would be granted again (a repeat), but the eviction
    // holds: no certificate.
    let (status, refused) = post(&server, "/join", None, &join_body).await.unwrap();
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"], "evicted");

    let metrics = tls_metrics(&server.addr).await;
    for (name, value) in [
        ("ec2_iid_certificates_issued_total{via=\"join\"}", 1.0),
        ("ec2_iid_certificates_issued_total{via=\"renew\"}", 2.0),
        ("ec2_iid_renewals_total{outcome=\"renewed\"}", 2.0),
        (
            "ec2_iid_renewals_total{outcome=\"client_certificate_required\"}",
            1.0,
        ),
        ("ec2_iid_renewals_total{outcome=\"evicted\"}", 1.0),
        ("ec2_iid_joins_total{outcome=\"evicted\"}", 1.0),
        // The join's lookup and the retry's (the same key's repeat is looked up again; the
        // eviction is found when it enrolls); none for the renewals.
        ("ec2_iid_describe_instances_calls_total", 2.0),
    ] {
        assert_eq!(sample(&metrics, name), value, "{name}\n{metrics}");
    }
}

/// The system path over TLS (issue 29's first "done when"): `ec2-iid join --out-dir` over
/// https gets a certificate that `openssl verify` accepts under the bundle it wrote, with the
/// host as CN and its SPIFFE ID; a TLS server of the test's own that requires client
/// certificates from that bundle accepts the key and certificate on disk; a second key with
/// the same document is refused as `already_joined`, and the first key's retry gets a new
/// certificate. Meanwhile the `ec2_iid_enrolled_hosts` gauge counts the host.
#[tokio::test(flavor = "multi_thread")]
async fn join_over_https_gets_a_certificate_for_mutual_tls() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = ec2_client(&moto.url).await;
    let instance = launch(&ec2, 1).await.remove(0);
    let host_id = format!("{OWN_ACCOUNT}-{instance}");
    let spiffe_id = format!("spiffe://example.org/ec2/{OWN_ACCOUNT}/us-east-1/{instance}");
    let dir = scratch_dir("tls-system");
    let server = tls_ca_server(&dir, &moto.url, &["--enrolled-hosts-refresh", "1"]);
    let imds = imds::ImdsServer::start().await;
    let document = rsa2048(OWN_ACCOUNT, &instance, now());
    imds.set_body(imds::RSA2048, document.clone());

    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let (code, stdout, stderr) = join_https(&server, &imds.url, &out).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let printed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["grant"], "first", "{stdout}");
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let (cert, key) = (read("cert.pem"), read("key.pem"));
    let (cn, uris, public) = leaf(&cert);
    assert_eq!((cn, uris), (host_id.clone(), vec![spiffe_id.clone()]));
    assert_eq!(public, public_key(&key), "issued for the key on disk");
    let [bundle, cert_path] = ["bundle.pem", "cert.pem"].map(|f| out.join(f));
    let verified = std::process::Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&bundle)
        .arg("-untrusted")
        .args([&cert_path, &cert_path])
        .output()
        .expect("the openssl command");
    assert!(verified.status.success(), "{verified:?}");

    // A server requiring client certificates under the bundle accepts key.pem and cert.pem,
    // and refuses a client without one.
    let (addr, accepted) = mutual_tls_server(&read("bundle.pem"), 2).await;
    let mut client = tls_connect_as(&addr, &tls_pair(1).ca, Some((&cert, &key)))
        .await
        .unwrap();
    let mut greeting = [0; 5];
    tokio::io::AsyncReadExt::read_exact(&mut client, &mut greeting)
        .await
        .unwrap();
    assert_eq!(&greeting, b"hello");
    // TLS 1.3: the client's handshake ends before the server checks it; the read fails.
    if let Ok(mut anonymous) = tls_connect_as(&addr, &tls_pair(1).ca, None).await {
        let refused = tokio::io::AsyncReadExt::read_exact(&mut anonymous, &mut greeting).await;
        assert!(refused.is_err(), "no greeting without a client certificate");
    }
    let accepted = tokio::time::timeout(std::time::Duration::from_secs(10), accepted)
        .await
        .unwrap()
        .unwrap();
    let seen = leaf_der_of(&cert);
    assert_eq!(accepted[0].as_ref().ok(), Some(&seen), "{accepted:?}");
    assert!(accepted[1].is_err(), "{accepted:?}");

    // A second key with the same document: refused, nothing written.
    let other = dir.join("other");
    std::fs::create_dir(&other).unwrap();
    let (code, stdout, stderr) = join_https(&server, &imds.url, &other).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("refused: already_joined"), "{stderr}");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);
    // The first key's retry: a certificate again (a repeat), for the same key.
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&rcgen::KeyPair::from_pem(&key).unwrap())
        .unwrap()
        .pem()
        .unwrap();
    let body = serde_json::json!({ "document": document, "csr": csr });
    let (status, again) = post(&server, "/join", None, &body).await.unwrap();
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["grant"], "repeat", "{again}");
    assert_ne!(again["serial"], printed["serial"], "a new certificate");
    let (_, _, again_public) = leaf(again["certificate"].as_str().unwrap());
    assert_eq!(again_public, public);

    // The gauge counts the host within its refresh (1 s).
    enrolled_hosts_reach(&server, 1).await;
}

/// Waits (at most 10 s) for `ec2_iid_enrolled_hosts` to read `count`.
async fn enrolled_hosts_reach(server: &Server, count: u32) {
    let line = format!("\nec2_iid_enrolled_hosts {count}\n");
    let started = std::time::Instant::now();
    loop {
        let metrics = tls_metrics(&server.addr).await;
        if metrics.contains(&line) {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{line:?} not in\n{metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `ec2-iid join --out-dir OUT` over https (the TLS test pair's CA trusted) for the instance
/// `imds_url` serves, to its exit: the code, stdout and stderr.
async fn join_https(server: &Server, imds_url: &str, out: &Path) -> (Option<i32>, String, String) {
    let child = tokio::process::Command::new(harness::binary())
        .arg("join")
        .args(["--server", &format!("https://{}", server.addr)])
        .arg("--ca-cert")
        .arg(tls_pair(1).ca)
        .args(["--imds-endpoint", imds_url, "--deadline", "20s"])
        .arg("--out-dir")
        .arg(out)
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env_remove("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
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

/// A TLS server (the TLS test pair's certificate) that requires client certificates under
/// `bundle` (PEM) and greets each client that has one with `hello`; for `connections`
/// connections, then the client leaf (DER) of each, or why its handshake failed.
async fn mutual_tls_server(
    bundle: &str,
    connections: usize,
) -> (
    String,
    tokio::task::JoinHandle<Vec<Result<Vec<u8>, String>>>,
) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(bundle.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let pair = tls_pair(1);
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            CertificateDer::pem_file_iter(&pair.cert)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
            PrivateKeyDer::from_pem_file(&pair.key).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().await.unwrap();
            match acceptor.accept(tcp).await {
                Ok(mut stream) => {
                    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
                    tokio::io::AsyncWriteExt::write_all(&mut stream, b"hello")
                        .await
                        .unwrap();
                    tokio::io::AsyncWriteExt::flush(&mut stream).await.unwrap();
                    seen.push(Ok(leaf));
                }
                Err(e) => seen.push(Err(e.to_string())),
            }
        }
        seen
    });
    (addr, accepted)
}

/// The DER of the first certificate of a PEM chain.
fn leaf_der_of(chain: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
    pem.contents
}

/// `ec2-iid agent`: joins once (no certificate in the directory), renews twice over mutual TLS
/// (a test-only schedule: `--cert-ttl` is at least a minute), and after `evict` its renewal is
/// refused and it exits 1; a second agent on the same directory renews without joining.
#[tokio::test(flavor = "multi_thread")]
async fn the_agent_joins_once_renews_and_stops_when_evicted() {
    use std::io::BufRead as _;
    use std::process::Stdio;

    let Some(moto) = Moto::start() else { return };
    let Some(db) = postgres::server() else { return };
    let registry = database(db, "agent", "postgres").await;
    let ec2 = ec2_client(&moto.url).await;
    let instance = launch(&ec2, 1).await.remove(0);
    let host_id = format!("{OWN_ACCOUNT}-{instance}");
    let dir = scratch_dir("agent");
    let server = tls_ca_server(&dir, &moto.url, &["--registry", &registry]);
    let imds = imds::ImdsServer::start().await;
    imds.set_body(imds::RSA2048, rsa2048(OWN_ACCOUNT, &instance, now()));
    let out = dir.join("agent");
    std::fs::create_dir(&out).unwrap();
    let agent = |renew_after: &str| {
        std::process::Command::new(harness::binary())
            .arg("agent")
            .args(["--server", &format!("https://{}", server.addr)])
            .arg("--ca-cert")
            .arg(&tls_pair(1).ca)
            .args(["--imds-endpoint", &imds.url, "--deadline", "10s"])
            .arg("--out-dir")
            .arg(&out)
            .args(["--renew-after", renew_after])
            .env_remove("AWS_EC2_METADATA_DISABLED")
            .env_remove("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Reads the agent's stdout lines (one per certificate) on a thread, with a bound.
    let lines = |child: &mut std::process::Child| {
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let _ = tx.send(line.unwrap());
            }
        });
        rx
    };
    let next = |rx: &std::sync::mpsc::Receiver<String>| -> serde_json::Value {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a certificate within 20 s");
        serde_json::from_str(&line).unwrap()
    };

    let mut first = agent("1s");
    let rx = lines(&mut first);
    let joined = next(&rx);
    assert_eq!(joined["grant"], "first", "{joined}");
    assert_eq!(joined["host_id"], host_id.as_str());
    let mut serials = vec![joined["serial"].clone()];
    for _ in 0..2 {
        let renewed = next(&rx);
        assert_eq!(renewed["host_id"], host_id.as_str(), "{renewed}");
        assert!(!serials.contains(&renewed["serial"]), "{renewed}");
        serials.push(renewed["serial"].clone());
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let key_mode = std::fs::metadata(out.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    // A new agent on the same directory holds a valid certificate: it renews, no join.
    imds.remove(imds::RSA2048);
    let mut second = agent("1s");
    let rx = lines(&mut second);
    let renewed = next(&rx);
    assert!(
        renewed["grant"].is_null(),
        "a renewal, not a join: {renewed}"
    );

    // Evicted: the next renewal is refused, and the agent exits 1.
    let store = postgres_store(&registry);
    assert!(store.evict(&host_id, chrono::Utc::now()).await.unwrap());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the agent still runs after the eviction"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused: renewal evicted"), "{stderr}");
    let metrics = tls_metrics(&server.addr).await;
    assert_eq!(
        sample(&metrics, "ec2_iid_renewals_total{outcome=\"renewed\"}"),
        3.0,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "ec2_iid_certificates_issued_total{via=\"join\"}"),
        1.0
    );
}

/// `--renew-check-instance`: a renewal asks EC2 that the instance still runs; once it is
/// stopped, 403 `instance_rejected`.
#[tokio::test(flavor = "multi_thread")]
async fn renewal_checks_the_instance_when_asked() {
    let Some(moto) = Moto::start() else { return };
    let ec2 = ec2_client(&moto.url).await;
    let instance = launch(&ec2, 1).await.remove(0);
    let dir = scratch_dir("renew-check");
    let server = tls_ca_server(&dir, &moto.url, &["--renew-check-instance"]);
    let (csr, key) = new_csr();
    let document = rsa2048(OWN_ACCOUNT, &instance, now());
    let join_body = serde_json::json!({ "document": document, "csr": csr });
    let (status, joined) = post(&server, "/join", None, &join_body).await.unwrap();
    assert_eq!(status, 200, "{joined}");
    let chain = joined["certificate"].as_str().unwrap().to_owned();
    let renew_body = serde_json::json!({ "csr": new_csr().0 });

    let (status, renewed) = post(&server, "/renew", Some((&chain, &key)), &renew_body)
        .await
        .unwrap();
    assert_eq!(status, 200, "{renewed}");

    ec2.stop_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap();
    harness::wait_for(
        &ec2,
        std::slice::from_ref(&instance),
        aws_sdk_ec2::types::InstanceStateName::Stopped,
    )
    .await;
    let (status, refused) = post(&server, "/renew", Some((&chain, &key)), &renew_body)
        .await
        .unwrap();
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"], "instance_rejected");
    let metrics = tls_metrics(&server.addr).await;
    assert_eq!(
        sample(&metrics, "ec2_iid_describe_instances_calls_total"),
        3.0,
        "the join's lookup and one per renewal: {metrics}"
    );
}
