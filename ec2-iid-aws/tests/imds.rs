//! `ec2_iid_aws::imds` against an in-process IMDSv2 emulator on loopback
//! (`ec2_iid_test_support::imds`), serving the committed fixtures signed by the test CA.
//!
//! Every test sets short timeouts; none reaches beyond 127.0.0.1. The tests of environment
//! variables (`AWS_EC2_METADATA_DISABLED`, `AWS_EC2_METADATA_SERVICE_ENDPOINT`) run this test
//! binary again as a child process with the variable set, so that no test changes the
//! environment of the others.
#![cfg(test)] // clippy.toml says why

use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ec2_iid::token::DEFAULT_MAX_FUTURE_SKEW;
use ec2_iid::{
    Format, MAX_BLOB_LEN, SignedInput, TrustStore, VerifyOptions, check_ttl, verify_input,
};
use ec2_iid_aws::imds::{ImdsError, ImdsFetcher};
use ec2_iid_test_support::imds::{DOCUMENT, ImdsServer, PKCS7, RSA2048, SIGNATURE, fixture};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TEST_CA: &[u8] = include_bytes!("../../tests/data/testca/testca.pem");
const TEST_CA_DSA: &[u8] = include_bytes!("../../tests/data/testca/testca-dsa.pem");

/// A fetcher of `url` with timeouts short enough for tests.
fn fetcher(url: &str) -> ImdsFetcher {
    fetcher_with_attempts(url, 4)
}

fn fetcher_with_attempts(url: &str, attempts: u32) -> ImdsFetcher {
    ImdsFetcher::builder()
        .endpoint(url)
        .connect_timeout(Duration::from_millis(300))
        .read_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(8))
        .max_attempts(attempts)
        .build()
        .unwrap()
}

/// The test CAs, trusted for `us-east-1` (the fixtures' region) in every format.
fn trust() -> TrustStore {
    let region = || ["us-east-1".parse().unwrap()];
    let mut trust = TrustStore::empty();
    trust.add_pem(Format::Rsa2048, TEST_CA, region()).unwrap();
    trust.add_pem(Format::Signature, TEST_CA, region()).unwrap();
    trust.add_pem(Format::Pkcs7, TEST_CA_DSA, region()).unwrap();
    trust
}

/// Verifies `input` as a join server would, at the fixtures' clock.
fn verify(input: SignedInput<'_>, options: &VerifyOptions) -> String {
    let verified = verify_input(input, &trust(), options).unwrap();
    let now: DateTime<Utc> = "2026-11-01T12:01:00Z".parse().unwrap();
    let pending = verified.document().pending_time;
    check_ttl(
        pending,
        Duration::from_secs(300),
        DEFAULT_MAX_FUTURE_SKEW,
        now,
    )
    .unwrap();
    verified.host_id()
}

const HOST_ID: &str = "123456789012-i-0123456789abcdef0";

#[tokio::test]
async fn rsa2048_fetched_and_verified() {
    let imds = ImdsServer::start().await;
    let signed = fetcher(&imds.url).fetch(Format::Rsa2048).await.unwrap();
    assert_eq!(signed.format(), Format::Rsa2048);
    assert_eq!(signed.input(), SignedInput::Rsa2048(fixture(RSA2048)));
    assert_eq!(verify(signed.input(), &VerifyOptions::default()), HOST_ID);
}

#[tokio::test]
async fn pkcs7_fetched_and_verified_with_the_dsa_test_ca() {
    let imds = ImdsServer::start().await;
    let signed = fetcher(&imds.url).fetch(Format::Pkcs7).await.unwrap();
    assert_eq!(signed.format(), Format::Pkcs7);
    assert_eq!(signed.input(), SignedInput::Pkcs7(fixture(PKCS7)));
    let legacy = VerifyOptions::default().allow_legacy_dsa_sha1(true);
    assert_eq!(verify(signed.input(), &legacy), HOST_ID);
}

#[tokio::test]
async fn signature_fetched_as_document_and_signature_and_verified() {
    let imds = ImdsServer::start().await;
    let signed = fetcher(&imds.url).fetch(Format::Signature).await.unwrap();
    assert_eq!(signed.format(), Format::Signature);
    let expected = SignedInput::Signature {
        document: fixture(DOCUMENT),
        signature: fixture(SIGNATURE),
    };
    assert_eq!(signed.input(), expected);
    let legacy = VerifyOptions::default().allow_legacy_rsa1024(true);
    assert_eq!(verify(signed.input(), &legacy), HOST_ID);
    // One token for both requests.
    assert_eq!(imds.counts().token_puts, 1);
    assert_eq!(imds.counts().served, 2);
}

#[tokio::test]
async fn document_bytes_stay_exactly_as_served() {
    let imds = ImdsServer::start().await;
    let mut document = fixture(DOCUMENT).to_vec();
    document.extend_from_slice(b"\r\n\n");
    imds.set_body(DOCUMENT, document.clone());
    let signed = fetcher(&imds.url).fetch(Format::Signature).await.unwrap();
    let SignedInput::Signature { document: got, .. } = signed.input() else {
        panic!("{signed:?}");
    };
    assert_eq!(got, document.as_slice());
}

/// A raw HTTP/1.1 request of `head` (the request line and headers); returns the status line.
async fn raw_request(url: &str, head: &str) -> String {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.lines().next().unwrap().to_owned()
}

/// A raw `GET path` without a token; returns the status line.
async fn tokenless_get(url: &str, path: &str) -> String {
    raw_request(url, &format!("GET {path} HTTP/1.1")).await
}

#[tokio::test]
async fn emulator_grants_tokens_for_ttls_of_1_to_21600_seconds() {
    let imds = ImdsServer::start().await;
    let put = |ttl: &str| {
        let head = if ttl.is_empty() {
            "PUT /latest/api/token HTTP/1.1\r\nContent-Length: 0".to_owned()
        } else {
            format!(
                "PUT /latest/api/token HTTP/1.1\r\nContent-Length: 0\r\n\
                 X-aws-ec2-metadata-token-ttl-seconds: {ttl}"
            )
        };
        let url = imds.url.clone();
        async move { raw_request(&url, &head).await }
    };
    for ttl in ["1", "21600"] {
        assert_eq!(put(ttl).await, "HTTP/1.1 200 OK", "ttl {ttl}");
    }
    for ttl in ["", "0", "21601", "-1", "ten"] {
        assert_eq!(put(ttl).await, "HTTP/1.1 400 Bad Request", "ttl {ttl:?}");
    }
}

#[tokio::test]
async fn tokenless_gets_are_refused_and_the_fetcher_gets_a_token() {
    let imds = ImdsServer::start().await;
    assert_eq!(
        tokenless_get(&imds.url, RSA2048).await,
        "HTTP/1.1 401 Unauthorized"
    );
    assert_eq!(imds.counts().unauthorized, 1);
    let fetcher = fetcher(&imds.url);
    fetcher.fetch(Format::Rsa2048).await.unwrap();
    // The token is cached: a second fetch (also through a clone) asks for none.
    fetcher.clone().fetch(Format::Rsa2048).await.unwrap();
    let counts = imds.counts();
    assert_eq!((counts.token_puts, counts.served), (1, 2));
    assert_eq!(counts.unauthorized, 1);
}

#[tokio::test]
async fn hop_limit_one_is_token_unavailable_with_the_hop_limit_hint() {
    let imds = ImdsServer::start().await;
    imds.hop_limit_one(true);
    let started = Instant::now();
    let err = fetcher(&imds.url).fetch(Format::Rsa2048).await.unwrap_err();
    assert!(
        matches!(err, ImdsError::TokenUnavailable { status: None, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "no IMDS session token (the token request got no answer): inside a container, set the \
         instance's metadata hop limit to 2 (aws ec2 modify-instance-metadata-options \
         --http-put-response-hop-limit 2)"
    );
    assert!(core::error::Error::source(&err).is_some());
    assert_eq!(imds.counts().served, 0);
}

#[tokio::test]
async fn refused_token_is_token_unavailable_with_the_status() {
    let imds = ImdsServer::start().await;
    imds.refuse_tokens(403);
    let err = fetcher(&imds.url).fetch(Format::Rsa2048).await.unwrap_err();
    assert!(
        matches!(
            err,
            ImdsError::TokenUnavailable {
                status: Some(403),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("no IMDS session token (the token request was refused with HTTP 403)"),
        "{err}"
    );
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = fetcher(&format!("http://127.0.0.1:{port}"))
        .fetch(Format::Rsa2048)
        .await
        .unwrap_err();
    assert!(matches!(err, ImdsError::Unreachable { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "IMDS unreachable: not on EC2, or IMDS is off for this instance (aws ec2 \
         modify-instance-metadata-options --http-endpoint enabled)"
    );
}

#[tokio::test]
async fn path_not_served_is_not_found() {
    let imds = ImdsServer::start().await;
    imds.remove(RSA2048);
    let err = fetcher(&imds.url).fetch(Format::Rsa2048).await.unwrap_err();
    assert!(
        matches!(err, ImdsError::NotFound { path, .. } if path == RSA2048),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "IMDS does not serve /latest/dynamic/instance-identity/rsa2048 (HTTP 404): try another \
         format"
    );
}

#[tokio::test]
async fn oversized_response_is_refused() {
    let imds = ImdsServer::start().await;
    imds.set_body(SIGNATURE, vec![b'A'; MAX_BLOB_LEN + 1]);
    let err = fetcher(&imds.url)
        .fetch(Format::Signature)
        .await
        .unwrap_err();
    match err {
        ImdsError::TooLarge { path, len, max, .. } => {
            assert_eq!(
                (path, len, max),
                (SIGNATURE, MAX_BLOB_LEN + 1, MAX_BLOB_LEN)
            );
        }
        other => panic!("{other:?}"),
    }
    // Exactly the limit passes.
    imds.set_body(RSA2048, vec![b'A'; MAX_BLOB_LEN]);
    fetcher(&imds.url).fetch(Format::Rsa2048).await.unwrap();
}

#[tokio::test]
async fn transient_503s_are_retried() {
    let imds = ImdsServer::start().await;
    imds.fail_next(503, 2);
    let signed = fetcher(&imds.url).fetch(Format::Rsa2048).await.unwrap();
    assert_eq!(signed.input(), SignedInput::Rsa2048(fixture(RSA2048)));
    assert_eq!(imds.counts().failed, 2);
}

#[tokio::test]
async fn lasting_500s_are_an_error_response() {
    let imds = ImdsServer::start().await;
    imds.fail_next(500, 10);
    let err = fetcher_with_attempts(&imds.url, 2)
        .fetch(Format::Pkcs7)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImdsError::ErrorResponse { path, status: 500, .. } if path == PKCS7),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(imds.counts().failed, 2);
}

#[tokio::test]
async fn rejected_token_is_unauthorized() {
    let imds = ImdsServer::start().await;
    imds.reject_tokens(true);
    let err = fetcher_with_attempts(&imds.url, 1)
        .fetch(Format::Rsa2048)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImdsError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("(HTTP 401)"), "{err}");
}

#[tokio::test]
async fn silent_path_is_a_timeout() {
    let imds = ImdsServer::start().await;
    imds.hang(SIGNATURE);
    let started = Instant::now();
    let err = fetcher(&imds.url)
        .fetch(Format::Signature)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImdsError::Timeout { path, .. } if path == SIGNATURE),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn body_that_is_not_utf8_is_other() {
    let imds = ImdsServer::start().await;
    imds.set_body(RSA2048, vec![0xff, 0xfe, b'A']);
    let err = fetcher(&imds.url).fetch(Format::Rsa2048).await.unwrap_err();
    assert!(
        matches!(err, ImdsError::Other { path, .. } if path == RSA2048),
        "{err:?}"
    );
    assert!(core::error::Error::source(&err).is_some());
}

// --- the environment, in a child process ---

/// Set in the child: what `child_fetches_with_the_environment` is to expect.
const CHILD_EXPECT: &str = "EC2_IID_IMDS_TEST_EXPECT";

/// Runs `child_fetches_with_the_environment` in a child process with `env` set (and the IMDS
/// variables not in `env` removed).
async fn run_child(expect: &str, env: &[(&str, &str)]) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_fetches_with_the_environment",
            "--nocapture",
        ])
        .env(CHILD_EXPECT, expect);
    for var in [
        "AWS_EC2_METADATA_DISABLED",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    // Blocking, off the runtime that serves the emulator.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("child: ok"),
        "child ({expect}) failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Only does something in a child process of [`run_child`].
#[tokio::test]
async fn child_fetches_with_the_environment() {
    let Ok(expect) = std::env::var(CHILD_EXPECT) else {
        return;
    };
    let fetcher = ImdsFetcher::builder()
        .connect_timeout(Duration::from_millis(300))
        .read_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let result = fetcher.fetch(Format::Rsa2048).await;
    match (expect.as_str(), &result) {
        ("disabled", Err(ImdsError::Disabled)) => {
            assert_eq!(
                result.unwrap_err().to_string(),
                "IMDS is disabled by AWS_EC2_METADATA_DISABLED=true: unset it to fetch from IMDS"
            );
        }
        ("invalid-endpoint", Err(ImdsError::InvalidEndpoint { .. })) => {}
        ("served", Ok(signed)) => {
            assert_eq!(signed.input(), SignedInput::Rsa2048(fixture(RSA2048)));
        }
        _ => panic!("expected {expect}, got {result:?}"),
    }
    println!("child: ok");
}

#[tokio::test]
async fn metadata_disabled_env_refuses_before_any_request() {
    let imds = ImdsServer::start().await;
    let endpoint = imds.url.clone();
    run_child(
        "disabled",
        &[
            ("AWS_EC2_METADATA_DISABLED", "TRUE"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint),
        ],
    )
    .await;
    assert_eq!(imds.counts().token_puts, 0);
}

#[tokio::test]
async fn endpoint_env_is_honoured() {
    let imds = ImdsServer::start().await;
    let endpoint = imds.url.clone();
    run_child(
        "served",
        &[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint),
        ],
    )
    .await;
    assert_eq!(imds.counts().token_puts, 1);
}

#[tokio::test]
async fn invalid_endpoint_env_is_invalid_endpoint() {
    run_child(
        "invalid-endpoint",
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv5")],
    )
    .await;
}
