//! `ec2-iid join` (built with `--features aws`) over loopback: the IMDSv2 emulator of
//! ec2-iid-test-support serves the committed fixtures, and fake join servers (axum on 127.0.0.1)
//! answer with scripted statuses. Exit codes: 0 joined, 1 refused, 2 usage, 3 gave up.
#![cfg(test)] // clippy.toml says why

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ec2_iid_test_support::imds::{ImdsServer, RSA2048, fixture};
use ec2_iid_test_support::join_server::{JOINED, NO_RULE, UNAVAILABLE, closed_url, join_server};

/// Runs `ec2-iid join ARGS` off the runtime's threads (the servers keep answering).
async fn join(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ec2-iid"))
            .arg("join")
            .args(args)
            .env_remove("AWS_EC2_METADATA_DISABLED")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_after_two_503s() {
    let imds = ImdsServer::start().await;
    let script = vec![
        (503, None, UNAVAILABLE),
        (503, Some("0"), UNAVAILABLE),
        (200, None, JOINED),
    ];
    let (server, seen) = join_server(script).await;
    let args = ["--server", &server, "--imds-endpoint", &imds.url];
    let output = join(&[&args[..], &["--deadline", "10s"]].concat()).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{JOINED}\n"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|body| body == fixture(RSA2048)));
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_is_exit_1_without_retry() {
    let imds = ImdsServer::start().await;
    let (server, seen) = join_server(vec![(403, None, NO_RULE), (200, None, JOINED)]).await;
    let output = join(&["--server", &server, "--imds-endpoint", &imds.url]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{NO_RULE}\n"));
    assert_eq!(stderr(&output), "refused: no_rule_matched\n");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_server_gives_up_by_the_deadline() {
    let imds = ImdsServer::start().await;
    let server = closed_url();
    let started = Instant::now();
    let args = ["--server", &server, "--imds-endpoint", &imds.url];
    let output = join(&[&args[..], &["--deadline", "1s"]].concat()).await;
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up early: {elapsed:?}"
    );
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(
        err.starts_with(&format!("error: gave up on {server}/join")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn imds_failure_is_exit_3_with_the_hint() {
    let (server, seen) = join_server(vec![(200, None, JOINED)]).await;
    let imds = closed_url();
    let args = ["--server", &server, "--imds-endpoint", &imds];
    let output = join(&[&args[..], &["--deadline", "5s"]].concat()).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("IMDS unreachable: not on EC2"), "{err}");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_are_exit_2() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["--server", "http://127.0.0.1:1", "--format", "signature"],
            "rsa2048 or pkcs7",
        ),
        (
            &["--server", "ftp://join.internal"],
            "an http:// or https:// URL",
        ),
        (
            &["--server", "https://h", "--ca-cert", "Cargo.toml"],
            "--ca-cert: the CA",
        ),
        (
            &["--server", "https://h", "--ca-cert", "/nonexistent.pem"],
            "--ca-cert /nonexistent.pem",
        ),
        (
            &["--server", "http://127.0.0.1:1", "--deadline", "1 minute"],
            "--deadline",
        ),
        (&["--format", "rsa2048"], "--server"),
        (
            &["--server", "http://127.0.0.1:1", "--max-attempts", "0"],
            "--max-attempts",
        ),
        // Not routable (TEST-NET-1): refused before any connection.
        (
            &["--server", "http://192.0.2.1:8080"],
            "pass --insecure-http",
        ),
    ];
    for (args, message) in cases {
        let output = join(args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn help_names_the_exit_codes() {
    let output = join(&["--help"]).await;
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("Exit codes: 0 joined, 1 refused"));
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_http_is_sent_with_a_warning() {
    // The flag lets the not routable server through (no exit 2); the closed IMDS endpoint
    // ends the join before any connection to it.
    let imds = closed_url();
    let args = ["--server", "http://192.0.2.1:8080", "--insecure-http"];
    let output = join(&[&args[..], &["--imds-endpoint", &imds, "--deadline", "5s"]].concat()).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.starts_with("warning: --insecure-http: the identity document goes to http://192.0.2.1:8080/join in plain HTTP"),
        "{err}"
    );
    assert!(err.contains("IMDS unreachable"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_text_is_printed_escaped() {
    let imds = ImdsServer::start().await;
    let raw = "\u{1b}]0;pwned\u{7}\u{1b}[2Jjoined\u{9b}";
    let json = "{\"host_id\":\"\u{9b}31m\u{7f}\"}";
    for (body, shown) in [
        (raw, r"\u001b]0;pwned\u0007\u001b[2Jjoined\u009b"),
        (json, r#"{"host_id":"\u009b31m\u007f"}"#),
    ] {
        let (server, _) = join_server(vec![(200, None, body)]).await;
        let output = join(&["--server", &server, "--imds-endpoint", &imds.url]).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(!output.stdout.contains(&0x1b), "{:?}", output.stdout);
        assert_eq!(stdout(&output), format!("{shown}\n"));
        assert!(!stdout(&output).chars().any(|c| c.is_control() && c != '\n'));
    }
    let failed = "\u{1b}[2J\u{1b}]0;pwned\u{7}";
    let (server, _) = join_server(vec![(500, None, failed)]).await;
    let output = join(&["--server", &server, "--imds-endpoint", &imds.url]).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(!output.stderr.contains(&0x1b), "{:?}", output.stderr);
    assert_eq!(
        stderr(&output),
        "error: the join server answered HTTP 500: \\u001b[2J\\u001b]0;pwned\\u0007\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_zero_is_paced() {
    let imds = ImdsServer::start().await;
    let (server, seen) = join_server(vec![(503, Some("0"), UNAVAILABLE)]).await;
    let started = Instant::now();
    let args = ["--server", &server, "--imds-endpoint", &imds.url];
    let output = join(&[&args[..], &["--deadline", "2s"]].concat()).await;
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let posts = seen.lock().unwrap().len();
    let most = 1 + usize::try_from(elapsed.as_millis() / 250).unwrap();
    assert!((2..=most).contains(&posts), "{posts} POSTs in {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_attempts_ends_the_retries() {
    let imds = ImdsServer::start().await;
    let (server, seen) = join_server(vec![(503, None, UNAVAILABLE)]).await;
    let args = ["--server", &server, "--imds-endpoint", &imds.url];
    let output = join(&[&args[..], &["--max-attempts", "2"]].concat()).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no attempt left: at most 2"),
        "{}",
        stderr(&output)
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_refusal_is_exit_1_without_retry() {
    let imds = ImdsServer::start().await;
    let big: &'static str = "x".repeat(100 * 1024).leak();
    let (server, seen) = join_server(vec![(403, None, big), (200, None, JOINED)]).await;
    let output = join(&["--server", &server, "--imds-endpoint", &imds.url]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(stderr(&output), "refused: refused\n");
    assert_eq!(seen.lock().unwrap().len(), 1);
}
