//! `ec2_iid_aws::join` over loopback: the IMDSv2 emulator (`ec2_iid_test_support::imds`) serves the
//! committed fixtures, and fake join servers (axum on 127.0.0.1) answer with scripted statuses.
//! Every test is bounded by a short deadline.
#![cfg(test)] // clippy.toml says why

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use ec2_iid::Format;
use ec2_iid_aws::imds::ImdsFetcher;
use ec2_iid_aws::join::{ANSWER_READ_TIMEOUT, JoinClient, JoinError, MAX_ANSWER_LEN, MIN_BACKOFF};
use ec2_iid_test_support::imds::{ImdsServer, PKCS7, RSA2048, fixture};
use ec2_iid_test_support::join_server::{JOINED, NO_RULE, UNAVAILABLE, closed_url, join_server};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::TlsAcceptor;

/// The test TLS CA and the `127.0.0.1` certificate it signed (`data/tls/README.md`).
const TLS_CA: &[u8] = include_bytes!("data/tls/ca.pem");
const TLS_CERT: &[u8] = include_bytes!("data/tls/server.pem");
const TLS_KEY: &[u8] = include_bytes!("data/tls/server.key");
/// A CA that did not sign the server's certificate.
const OTHER_CA: &[u8] = include_bytes!("../../tests/data/testca/testca.pem");

fn fetcher(url: &str) -> ImdsFetcher {
    ImdsFetcher::builder()
        .endpoint(url)
        .connect_timeout(Duration::from_millis(300))
        .read_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(3))
        .max_attempts(1)
        .build()
        .unwrap()
}

fn client(server: &str, imds: &str, deadline: Duration) -> JoinClient {
    JoinClient::builder(server)
        .fetcher(fetcher(imds))
        .deadline(deadline)
        .build()
        .unwrap()
}

#[tokio::test]
async fn retries_503_then_joins() {
    let imds = ImdsServer::start().await;
    let script = vec![
        (503, None, UNAVAILABLE),
        (503, Some("0"), UNAVAILABLE),
        (200, None, JOINED),
    ];
    let (url, seen) = join_server(script).await;
    let joined = client(&url, &imds.url, Duration::from_secs(10))
        .join()
        .await
        .unwrap();
    assert_eq!(joined.body(), JOINED);
    assert_eq!(joined.host_id(), Some("123456789012-i-0123456789abcdef0"));
    assert_eq!(joined.matched_rule(), Some(0));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|b| b == fixture(RSA2048)));
}

#[tokio::test]
async fn with_a_csr_every_attempt_sends_the_same_document_and_csr() {
    const CERTIFIED: &str = r#"{"host_id":"123456789012-i-0123456789abcdef0","matched_rule":0,"grant":"repeat","spiffe_id":"spiffe://example.org/ec2/123456789012/us-east-1/i-0123456789abcdef0","serial":"42","not_after":"2026-11-01T13:01:00Z","certificate":"-----BEGIN CERTIFICATE-----\nleaf\n","bundle":"-----BEGIN CERTIFICATE-----\nroot\n"}"#;
    let imds = ImdsServer::start().await;
    let (url, seen) =
        join_server(vec![(503, Some("0"), UNAVAILABLE), (200, None, CERTIFIED)]).await;
    let csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";
    let joined = JoinClient::builder(&url)
        .fetcher(fetcher(&imds.url))
        .deadline(Duration::from_secs(10))
        .csr(csr)
        .build()
        .unwrap()
        .join()
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "the retry is the same requester");
    let sent: serde_json::Value = serde_json::from_slice(&seen[0]).unwrap();
    let document = String::from_utf8(fixture(RSA2048).to_vec()).unwrap();
    assert_eq!(sent, serde_json::json!({"document": document, "csr": csr}));
    assert_eq!(joined.grant(), Some("repeat"));
    assert_eq!(
        joined.spiffe_id(),
        Some("spiffe://example.org/ec2/123456789012/us-east-1/i-0123456789abcdef0")
    );
    assert_eq!(joined.serial(), Some("42"));
    assert_eq!(
        joined.not_after().unwrap().to_rfc3339(),
        "2026-11-01T13:01:00+00:00"
    );
    assert!(joined.certificate_pem().unwrap().contains("leaf"));
    assert!(joined.bundle_pem().unwrap().contains("root"));
}

#[tokio::test]
async fn pkcs7_text_is_the_body() {
    let imds = ImdsServer::start().await;
    let (url, seen) = join_server(vec![(200, None, JOINED)]).await;
    JoinClient::builder(&url)
        .fetcher(fetcher(&imds.url))
        .format(Format::Pkcs7)
        .deadline(Duration::from_secs(10))
        .build()
        .unwrap()
        .join()
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [fixture(PKCS7)]);
}

#[tokio::test]
async fn refusal_is_not_retried() {
    let imds = ImdsServer::start().await;
    for (status, kind) in [
        (403, "no_rule_matched"),
        (400, "malformed"),
        (413, "too_large"),
    ] {
        let body = if status == 403 { NO_RULE } else { "nope" };
        let (url, seen) = join_server(vec![(status, None, body), (200, None, JOINED)]).await;
        let err = client(&url, &imds.url, Duration::from_secs(10))
            .join()
            .await
            .unwrap_err();
        let JoinError::Refused {
            status: got,
            kind: got_kind,
            body: got_body,
            ..
        } = err
        else {
            unreachable!("{status}: {err:?}")
        };
        assert_eq!(
            (got, got_kind.as_str(), got_body.as_str()),
            (status, kind, body)
        );
        assert_eq!(seen.lock().unwrap().len(), 1, "{status}: retried");
    }
}

#[tokio::test]
async fn other_statuses_are_not_retried() {
    let imds = ImdsServer::start().await;
    let failed = r#"{"error":"lookup_failed","request_id":"1-2"}"#;
    let (url, seen) = join_server(vec![(500, None, failed)]).await;
    let err = client(&url, &imds.url, Duration::from_secs(10))
        .join()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JoinError::UnexpectedStatus { status: 500, body, .. } if body == failed),
        "{err:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn closed_server_gives_up_by_the_deadline() {
    let imds = ImdsServer::start().await;
    let started = Instant::now();
    let err = client(&closed_url(), &imds.url, Duration::from_secs(1))
        .join()
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up early: {elapsed:?}"
    );
    let JoinError::GaveUp { attempts, last, .. } = &err else {
        unreachable!("{err:?}")
    };
    assert!(*attempts >= 2, "{err}");
    assert!(last.contains("onnect"), "{err}");
    assert!(
        err.to_string().starts_with("gave up on http://127.0.0.1:"),
        "{err}"
    );
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_gives_up_at_once() {
    let imds = ImdsServer::start().await;
    let (url, seen) = join_server(vec![(503, Some("30"), UNAVAILABLE)]).await;
    let started = Instant::now();
    let err = client(&url, &imds.url, Duration::from_secs(3))
        .join()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(&err, JoinError::GaveUp { attempts: 1, last, .. } if last.contains("503")),
        "{err:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn retry_after_zero_still_waits_the_floor() {
    let imds = ImdsServer::start().await;
    let (url, seen) = join_server(vec![(503, Some("0"), UNAVAILABLE)]).await;
    let started = Instant::now();
    let err = client(&url, &imds.url, Duration::from_secs(2))
        .join()
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    let posts = u32::try_from(seen.lock().unwrap().len()).unwrap();
    let most = 1 + u32::try_from(elapsed.as_millis() / MIN_BACKOFF.as_millis()).unwrap();
    assert!((2..=most).contains(&posts), "{posts} POSTs in {elapsed:?}");
    assert!(
        matches!(&err, JoinError::GaveUp { attempts, .. } if *attempts == posts),
        "{err:?}"
    );
}

#[tokio::test]
async fn attempts_are_capped() {
    let imds = ImdsServer::start().await;
    let (url, seen) = join_server(vec![(503, None, UNAVAILABLE)]).await;
    let err = JoinClient::builder(&url)
        .fetcher(fetcher(&imds.url))
        .deadline(Duration::from_secs(30))
        .max_attempts(2)
        .build()
        .unwrap()
        .join()
        .await
        .unwrap_err();
    let JoinError::GaveUp { attempts, last, .. } = &err else {
        unreachable!("{err:?}")
    };
    assert_eq!(*attempts, 2);
    assert!(last.contains("no attempt left: at most 2"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn oversized_answers_are_decided_by_their_status() {
    let imds = ImdsServer::start().await;
    let big: &'static str = "x".repeat(100 * 1024).leak();
    let big_json: &'static str = format!(r#"{{"error":"no_rule_matched","pad":"{big}"}}"#).leak();
    for (status, body) in [(403, big), (403, big_json), (400, big), (404, big)] {
        let (url, seen) = join_server(vec![(status, None, body), (200, None, JOINED)]).await;
        let err = client(&url, &imds.url, Duration::from_secs(10))
            .join()
            .await
            .unwrap_err();
        match &err {
            JoinError::Refused {
                status: got, body, ..
            }
            | JoinError::UnexpectedStatus {
                status: got, body, ..
            } => {
                assert_eq!(*got, status);
                assert_eq!(body.len(), MAX_ANSWER_LEN);
            }
            _ => unreachable!("{status}: {err:?}"),
        }
        let kind = match status {
            403 => Some("refused"),
            400 => Some("malformed"),
            _ => None,
        };
        if let Some(kind) = kind {
            assert!(
                matches!(&err, JoinError::Refused { kind: got, .. } if got == kind),
                "{err:?}"
            );
        }
        assert_eq!(seen.lock().unwrap().len(), 1, "{status}: retried");
    }
    let (url, seen) = join_server(vec![(200, None, big)]).await;
    let joined = client(&url, &imds.url, Duration::from_secs(10))
        .join()
        .await
        .unwrap();
    assert_eq!(joined.body().len(), MAX_ANSWER_LEN);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// A server that answers every connection with `head` (a status line, headers and the start
/// of a body shorter than its `Content-Length`), then holds the connection open; returns its
/// URL and the number of connections.
async fn stalled_server(head: &'static str) -> (String, Arc<AtomicU32>) {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = vec![0; 64 * 1024];
                let _ = tcp.read(&mut request).await;
                let _ = tcp.write_all(head.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    (url, connections)
}

#[tokio::test]
async fn a_stalled_refusal_body_is_still_a_refusal() {
    let imds = ImdsServer::start().await;
    let (url, connections) = stalled_server(
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 1000\r\n\r\n{\"error\":\"no_rule_matched\"",
    )
    .await;
    let started = Instant::now();
    let err = client(&url, &imds.url, Duration::from_secs(10))
        .join()
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= ANSWER_READ_TIMEOUT, "{elapsed:?}");
    // Well before the 10 s deadline: the status decided.
    assert!(
        elapsed < ANSWER_READ_TIMEOUT + Duration::from_secs(4),
        "{elapsed:?}"
    );
    assert!(
        matches!(&err, JoinError::Refused { status: 403, kind, body, .. }
            if kind == "refused" && body == r#"{"error":"no_rule_matched""#),
        "{err:?}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn plain_http_off_this_host_is_refused_before_any_request() {
    // 192.0.2.1 (TEST-NET-1) is not routable: nothing is sent, the builder refuses it.
    let err = JoinClient::builder("http://192.0.2.1:8080")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("use https://"), "{err}");
    let client = JoinClient::builder("http://192.0.2.1:8080")
        .allow_insecure_http(true)
        .build()
        .unwrap();
    assert!(client.is_insecure_http());
}

#[tokio::test]
async fn imds_failure_is_reported_without_a_request() {
    let (url, seen) = join_server(vec![(200, None, JOINED)]).await;
    let err = client(&url, &closed_url(), Duration::from_secs(5))
        .join()
        .await
        .unwrap_err();
    assert!(matches!(err, JoinError::Imds(_)), "{err:?}");
    assert!(err.to_string().contains("IMDS unreachable"), "{err}");
    assert!(seen.lock().unwrap().is_empty());
}

/// An `https://` join server with the test TLS certificate, answering 200; returns its URL and
/// the number of requests it answered.
async fn https_join_server() -> (String, Arc<AtomicU32>) {
    let certs = CertificateDer::pem_slice_iter(TLS_CERT)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(TLS_KEY).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&answered);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, counter) = (acceptor.clone(), Arc::clone(&counter));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |_request| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = Full::new(Bytes::from_static(JOINED.as_bytes()));
                    async move { Ok::<_, Infallible>(hyper::Response::new(body)) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, answered)
}

fn https_client(server: &str, imds: &str, ca: &[u8]) -> JoinClient {
    JoinClient::builder(server)
        .fetcher(fetcher(imds))
        .ca_certificates_pem(ca)
        .deadline(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_joins_with_the_servers_ca() {
    let imds = ImdsServer::start().await;
    let (url, answered) = https_join_server().await;
    let joined = https_client(&url, &imds.url, TLS_CA).join().await.unwrap();
    assert_eq!(joined.body(), JOINED);
    assert_eq!(answered.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn https_untrusted_certificate_is_not_retried() {
    let imds = ImdsServer::start().await;
    let (url, answered) = https_join_server().await;
    let started = Instant::now();
    let err = https_client(&url, &imds.url, OTHER_CA)
        .join()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "retried: {err}");
    assert!(matches!(err, JoinError::Tls { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(message.ends_with("check the server's certificate, or trust its CA"));
    assert_eq!(answered.load(Ordering::SeqCst), 0);
}
