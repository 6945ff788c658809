//! `ec2-iid join` (built with `--features aws`) over loopback: the IMDSv2 emulator of
//! ec2-iid-aws's tests serves the committed fixtures, and fake join servers (axum on 127.0.0.1)
//! answer with scripted statuses. Exit codes: 0 joined, 1 refused, 2 usage, 3 gave up.
#![cfg(test)] // clippy.toml says why

#[allow(
    dead_code,
    reason = "the emulator's switches are for ec2-iid-aws's tests"
)]
#[path = "../../ec2-iid-aws/tests/support/imds.rs"]
mod emulator;
#[path = "../../ec2-iid-aws/tests/support/fake_server.rs"]
mod fake_server;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use emulator::{ImdsServer, RSA2048, fixture};
use fake_server::{JOINED, NO_RULE, UNAVAILABLE, closed_url, join_server};

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
    let cases: [(&[&str], &str); 6] = [
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
