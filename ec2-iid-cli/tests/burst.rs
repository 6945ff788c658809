//! `ec2-iid serve` under an autoscaling burst (issue 28, pacing): 1,000 instances launched in
//! moto, each with its identity document signed by the test CA, all posted to one server as
//! fast as 200 connections go. All join, and with `--describe-rate 5 --describe-burst 5` no
//! one second sees more than 5 `DescribeInstances` calls: read from the server's `/metrics`
//! and from moto's own log of the requests it served (their times as they came in). Then the
//! same burst at the default pacing (20 calls a second, burst 100).
//!
//! Needs `moto_server` (see tests/serve.rs); prints its figures with
//! `cargo test -p ec2-iid-cli --features aws --test burst -- --nocapture`.
#![cfg(test)] // clippy.toml says why

mod harness;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use ec2_iid_test_support::postgres;
use harness::ca::{ca_flags, new_csr};
use harness::{
    Server, binary, database, ec2_client, launch, now, percentile, request, rsa2048, sample,
    scratch_dir, serve_command, write_token,
};

/// Instances in the burst.
const INSTANCES: usize = 1000;

/// Connections posting at once.
const CONNECTIONS: usize = 200;

/// One burst at a time: each launches its own moto and 1,000 instances, on few cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn a_1000_instance_burst_joins_at_5_describe_calls_a_second() {
    let _serial = SERIAL.lock().await;
    let dir = scratch_dir("burst-1000");
    let log = dir.join("moto-requests.log");
    let Some(moto) = Moto::start_with_request_log(&log) else {
        return;
    };
    let started = Instant::now();
    let ec2 = ec2_client(&moto.url).await;
    let instances = launch(&ec2, i32::try_from(INSTANCES + 1).unwrap()).await;
    let launched = started.elapsed();
    let documents = sign(&instances);
    let signed = started.elapsed();

    let server = Server::start(
        &dir,
        "serve",
        &moto.url,
        &["--describe-rate", "5", "--describe-burst", "5"],
    );
    // One join first: the server's first call also makes its EC2 client and connection, so it
    // reaches moto later after leaving the bucket than the others do; then the window clears.
    let warm_up = documents.last().unwrap().clone();
    let (status, body) = server.join(warm_up.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let moto_lines_before = std::fs::read_to_string(&log).unwrap().lines().count();
    let burst = post_all(&[&server.addr], &documents[..INSTANCES]).await;
    let metrics = server.metrics().await;

    // Everyone joined, once.
    assert_eq!(burst.statuses, [(200, INSTANCES)], "{:?}", burst.statuses);
    assert_eq!(
        sample(&metrics, "ec2_iid_joins_total{outcome=\"joined\"}"),
        1001.0
    );

    // The server's view (less the warm-up's call): its calls carried every id once; each join
    // waited for a call.
    let calls = sample(&metrics, "ec2_iid_describe_instances_calls_total") - 1.0;
    let ids_sent = sample(&metrics, "ec2_iid_describe_instances_ids_per_call_sum") - 1.0;
    assert_eq!(ids_sent, 1000.0, "{metrics}");
    assert_eq!(
        sample(&metrics, "ec2_iid_describe_instances_ids_per_call_count") - 1.0,
        calls
    );
    assert_eq!(
        sample(&metrics, "ec2_iid_lookup_wait_seconds_count"),
        1001.0
    );
    // Five calls a second at most, over the whole burst.
    let seconds = burst.took.as_secs_f64();
    assert!(
        calls <= 5.0 * seconds.ceil() + 5.0,
        "{calls} calls in {seconds:.1} s"
    );

    // moto's view: the same calls, each with the instance-id filter, never more than 5 in
    // any one second.
    let served = describe_calls_served(&log, moto_lines_before);
    assert_eq!(
        f64::from(u32::try_from(served.len()).unwrap()),
        calls,
        "{served:?}"
    );
    assert_eq!(served.iter().map(|(_, ids)| ids).sum::<usize>(), INSTANCES);
    assert!(served.iter().all(|&(_, ids)| (1..=200).contains(&ids)));
    let busiest = busiest_second(&served);
    assert!(
        busiest <= 5,
        "{busiest} calls within one second: {served:?}"
    );
    // Batches grew toward 200 instead: most ids went in large calls.
    let largest = served.iter().map(|&(_, ids)| ids).max().unwrap();
    assert!(largest >= 100, "{served:?}");

    eprintln!(
        "burst: {INSTANCES} joins in {:.2} s = {:.0} joins/s, p50 {:.0} ms, p99 {:.0} ms; \
         {calls} DescribeInstances calls (ids per call {:?}), at most {busiest} in one second \
         (moto launched in {:.1} s, documents signed in {:.1} s)",
        seconds,
        1000.0 / seconds,
        percentile(&burst.latencies, 50).as_secs_f64() * 1000.0,
        percentile(&burst.latencies, 99).as_secs_f64() * 1000.0,
        served.iter().map(|&(_, ids)| ids).collect::<Vec<_>>(),
        launched.as_secs_f64(),
        (signed - launched).as_secs_f64(),
    );
    drop(server);

    // The same burst at the default pacing (20 calls a second, burst 100), on a server of its
    // own (its own memory registry): all join, within EC2's bucket.
    let server = Server::start(&dir, "serve-defaults", &moto.url, &[]);
    let moto_lines_before = std::fs::read_to_string(&log).unwrap().lines().count();
    let burst = post_all(&[&server.addr], &documents[..INSTANCES]).await;
    assert_eq!(burst.statuses, [(200, INSTANCES)], "{:?}", burst.statuses);
    let metrics = server.metrics().await;
    let calls = sample(&metrics, "ec2_iid_describe_instances_calls_total");
    let seconds = burst.took.as_secs_f64();
    let served = describe_calls_served(&log, moto_lines_before);
    assert_eq!(f64::from(u32::try_from(served.len()).unwrap()), calls);
    assert_eq!(served.iter().map(|(_, ids)| ids).sum::<usize>(), INSTANCES);
    let busiest = busiest_second(&served);
    // EC2's bucket allows its burst and a second's refill in one second (moto sees the first
    // call late: it also makes the server's EC2 client).
    assert!(busiest <= 120, "{busiest} calls within one second");
    assert!(
        calls <= 100.0 + 20.0 * seconds.ceil(),
        "{calls} calls in {seconds:.1} s"
    );
    eprintln!(
        "burst at the defaults: {INSTANCES} joins in {seconds:.2} s = {:.0} joins/s, p50 {:.0} \
         ms, p99 {:.0} ms; {calls} DescribeInstances calls, at most {busiest} in one second",
        1000.0 / seconds,
        percentile(&burst.latencies, 50).as_secs_f64() * 1000.0,
        percentile(&burst.latencies, 99).as_secs_f64() * 1000.0,
    );
}

/// The figures of benches/README.md ("Join server: 1,000-instance burst"): the burst through
/// two replicas sharing a PostgreSQL registry, at the default pacing divided between them
/// (`--describe-replicas 2`); prints joins/s, p50/p99 and the `DescribeInstances` calls of
/// both. Then the same documents with a CSR each, through two replicas with `--ca-cert` on a
/// new database: every join also issues a certificate. Run with `EC2_IID_BIN` set to an older
/// build for its figure: flags it lacks are left out (and the CSR burst without `--ca-cert`).
#[tokio::test(flavor = "multi_thread")]
async fn a_1000_instance_burst_through_two_replicas_on_postgresql() {
    let _serial = SERIAL.lock().await;
    let dir = scratch_dir("burst-replicas");
    let Some(moto) = Moto::start() else { return };
    let Some(db) = postgres::server() else { return };
    let registry = database(db, "burst_replicas", "postgres").await;
    let ec2 = ec2_client(&moto.url).await;
    let instances = launch(&ec2, i32::try_from(INSTANCES).unwrap()).await;
    let documents = sign(&instances);
    let help = std::process::Command::new(binary())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let mut flags = vec!["--registry", registry.as_str()];
    if String::from_utf8_lossy(&help.stdout).contains("--describe-replicas") {
        flags.extend(["--describe-replicas", "2"]);
    }
    let a = Server::start(&dir, "replica-a", &moto.url, &flags);
    let b = Server::start(&dir, "replica-b", &moto.url, &flags);
    let burst = post_all(&[&a.addr, &b.addr], &documents).await;
    assert_eq!(burst.statuses, [(200, INSTANCES)], "{:?}", burst.statuses);
    let mut calls = 0.0;
    for replica in [&a, &b] {
        calls += replica
            .sample("ec2_iid_describe_instances_calls_total")
            .await;
    }
    let seconds = burst.took.as_secs_f64();
    eprintln!(
        "two replicas on PostgreSQL ({flags:?}): {INSTANCES} joins in {seconds:.2} s = {:.0} \
         joins/s, p50 {:.0} ms, p99 {:.0} ms; {calls} DescribeInstances calls",
        1000.0 / seconds,
        percentile(&burst.latencies, 50).as_secs_f64() * 1000.0,
        percentile(&burst.latencies, 99).as_secs_f64() * 1000.0,
    );
    drop((a, b));
    if !String::from_utf8_lossy(&help.stdout).contains("--ca-cert") {
        return;
    }

    // The same documents with a CSR each (a new P-256 key per instance), to two new replicas
    // with the test CA on a database of their own: every join also gets a certificate.
    let registry = database(db, "burst_replicas_csr", "postgres").await;
    flags[1] = registry.as_str();
    let ca = ca_flags(&dir);
    flags.extend(ca.iter().map(String::as_str));
    let bodies: Vec<String> = documents
        .iter()
        .map(|document| serde_json::json!({ "document": document, "csr": new_csr().0 }).to_string())
        .collect();
    let a = Server::start(&dir, "replica-a-csr", &moto.url, &flags);
    let b = Server::start(&dir, "replica-b-csr", &moto.url, &flags);
    let burst = post_all(&[&a.addr, &b.addr], &bodies).await;
    assert_eq!(burst.statuses, [(200, INSTANCES)], "{:?}", burst.statuses);
    let (mut calls, mut issued) = (0.0, 0.0);
    for replica in [&a, &b] {
        let metrics = replica.metrics().await;
        calls += sample(&metrics, "ec2_iid_describe_instances_calls_total");
        issued += sample(&metrics, "ec2_iid_certificates_issued_total{via=\"join\"}");
    }
    assert_eq!(issued, 1000.0);
    let seconds = burst.took.as_secs_f64();
    eprintln!(
        "two replicas on PostgreSQL with CSRs: {INSTANCES} joins and certificates in \
         {seconds:.2} s = {:.0} joins/s, p50 {:.0} ms, p99 {:.0} ms; {calls} DescribeInstances \
         calls",
        1000.0 / seconds,
        percentile(&burst.latencies, 50).as_secs_f64() * 1000.0,
        percentile(&burst.latencies, 99).as_secs_f64() * 1000.0,
    );
}

/// The pacing flags: out-of-range values are usage errors (exit 2) naming the flag;
/// `--batch-window-ms` still parses, and a non-zero one says at startup that it does nothing.
#[tokio::test(flavor = "multi_thread")]
async fn pacing_flags_are_checked_and_the_old_window_is_a_warning() {
    let dir = scratch_dir("burst-flags");
    let token = write_token(&dir, None);
    for (flag, value) in [
        ("--describe-rate", "0"),
        ("--describe-rate", "fast"),
        ("--describe-burst", "0"),
        ("--describe-replicas", "0"),
    ] {
        let output = serve_command(&token, "http://127.0.0.1:1", &[flag, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
    let help = std::process::Command::new(binary())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for listed in [
        "--describe-rate <CALLS>",
        "[default: 20]",
        "--describe-burst <CALLS>",
        "[default: 100]",
        "--describe-replicas <N>",
        "1/N",
        "--batch-window-ms <MS>",
        "Deprecated",
    ] {
        assert!(help.contains(listed), "{listed}:\n{help}");
    }

    let server = Server::start(
        &dir,
        "old-window",
        "http://127.0.0.1:1",
        &["--batch-window-ms", "10"],
    );
    let (status, _, body) = request(&server.addr, "GET", "/healthz", b"").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let log = server.log();
    assert!(
        log.contains("WARN") && log.contains("--batch-window-ms has no effect"),
        "{log}"
    );
    let quiet = Server::start(
        &dir,
        "no-window",
        "http://127.0.0.1:1",
        &["--batch-window-ms", "0"],
    );
    assert!(
        !quiet.log().contains("--batch-window-ms"),
        "{}",
        quiet.log()
    );
}

/// One document per instance, signed on every core (signing is the slow part).
fn sign(instances: &[String]) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = instances.len().div_ceil(threads);
    let started = now();
    std::thread::scope(|scope| {
        let parts: Vec<_> = instances
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|id| rsa2048(OWN_ACCOUNT, id, started))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap())
            .collect()
    })
}

/// What one burst measured.
#[derive(Debug)]
struct Burst {
    /// How many answers had each status.
    statuses: Vec<(u16, usize)>,
    took: Duration,
    latencies: Vec<Duration>,
}

/// Posts every document, [`CONNECTIONS`] at a time (a new connection each), as fast as they
/// are answered; the connections take turns among `addrs`.
async fn post_all(addrs: &[&str], documents: &[String]) -> Burst {
    let documents: Arc<Vec<String>> = Arc::new(documents.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|worker| {
            let addr = addrs[worker % addrs.len()];
            let (addr, documents, next) =
                (addr.to_owned(), Arc::clone(&documents), Arc::clone(&next));
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while let Some(document) = documents.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let sent = Instant::now();
                    let (status, _, body) =
                        request(&addr, "POST", "/join", document.as_bytes()).await;
                    assert!(status == 200, "{status} {body}");
                    answers.push((status, sent.elapsed()));
                }
                answers
            })
        })
        .collect();
    let mut statuses: Vec<(u16, usize)> = Vec::new();
    let mut latencies = Vec::new();
    for worker in workers {
        for (status, latency) in worker.await.unwrap() {
            match statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, count)) => *count += 1,
                None => statuses.push((status, 1)),
            }
            latencies.push(latency);
        }
    }
    let took = started.elapsed();
    latencies.sort_unstable();
    Burst {
        statuses,
        took,
        latencies,
    }
}

/// The `DescribeInstances` calls with the `instance-id` filter that moto served after the
/// first `skip` lines of its log: when each came in (seconds) and its number of ids.
fn describe_calls_served(log: &Path, skip: usize) -> Vec<(f64, usize)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .skip(skip)
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let (at, action, ids) = (fields.next()?, fields.next()?, fields.next()?);
            let ids: usize = ids.parse().unwrap();
            (action == "DescribeInstances" && ids > 0).then(|| (at.parse().unwrap(), ids))
        })
        .collect()
}

/// The most calls that came in within any one second.
fn busiest_second(calls: &[(f64, usize)]) -> usize {
    let mut times: Vec<f64> = calls.iter().map(|&(at, _)| at).collect();
    times.sort_by(f64::total_cmp);
    (0..times.len())
        .map(|first| {
            times[first..]
                .iter()
                .take_while(|&&at| at < times[first] + 1.0)
                .count()
        })
        .max()
        .unwrap_or(0)
}
