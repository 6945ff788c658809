//! The whole join path on loopback, instance → server → EC2 → registry, and what it does when
//! a part fails. Each instance is an `ec2-iid join` process reading its document from a test
//! IMDSv2 of its own (the emulator of ec2-iid-aws's tests, serving a document signed by the test
//! CA for an instance moto runs); it posts to one of two `ec2-iid serve` replicas that share a
//! registry (PostgreSQL, or DynamoDB in moto) and look the instance up in moto's EC2 (through
//! STS when the rule names a role).
//!
//! The faults are real: moto is frozen with `SIGSTOP` (connections are accepted, nothing
//! answers, as for a hung EC2 endpoint) and PostgreSQL is stopped with `pg_ctl stop`
//! (connections refused), then both come back with their state. Every wait is bounded, every
//! address is 127.0.0.1.
//!
//! Needs `moto_server` and PostgreSQL's server binaries, as `tests/serve.rs`; without them the
//! tests print a notice and pass, unless `CI=true`. The replicas serve HTTPS with the test TLS
//! certificate; the join processes trust its CA (`--ca-cert`). The load test prints joins/s and latencies
//! (`cargo test -p ec2-iid-cli --features aws --test system load -- --nocapture`).
#![cfg(test)] // clippy.toml says why

mod harness;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::InstanceStateName;
use ec2_iid_test_support::imds::{ImdsServer, RSA2048};
use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};
use ec2_iid_test_support::postgres;
use harness::{
    ROLE, Server, admin, database, ec2_client, install_tls_pair, launch, now, percentile, rsa2048,
    sample, scratch_dir, tls_metrics, tls_pair, wait_for, write_token,
};
use tokio::process::Child;

/// How long a join process may retry (`--deadline`).
const DEADLINE: &str = "60s";
/// The bound on waiting for one join process: its deadline and a margin.
const PROCESS_LIMIT: Duration = Duration::from_secs(90);
/// How long a fault lasts before the part comes back: several 1 s `Retry-After` rounds.
const OUTAGE: Duration = Duration::from_secs(5);

/// An instance as the join side sees it: its id and the IMDS that serves its document.
struct Instance {
    id: String,
    imds: ImdsServer,
}

impl Instance {
    /// An IMDS serving the `/rsa2048` text of `id` in `account`, pending now.
    async fn new(account: &str, id: &str) -> Self {
        let imds = ImdsServer::start().await;
        imds.set_body(RSA2048, rsa2048(account, id, now()));
        Self {
            id: id.to_owned(),
            imds,
        }
    }

    /// Instances for each of moto's running `ids`, in moto's account.
    async fn all(ids: &[String]) -> Vec<Self> {
        let mut instances = Vec::new();
        for id in ids {
            instances.push(Self::new(OWN_ACCOUNT, id).await);
        }
        instances
    }

    /// Starts `ec2-iid join` on this instance, posting to `server`.
    fn join(&self, server: &Server) -> Child {
        join_process(&self.imds.url, server)
    }

    /// The host id the server derives: `<account>-<instance>`.
    fn host_id(&self) -> String {
        format!("{OWN_ACCOUNT}-{}", self.id)
    }
}

/// `ec2-iid join --server https://ADDR --ca-cert CA --imds-endpoint IMDS --deadline 60s`,
/// output piped.
fn join_process(imds_url: &str, server: &Server) -> Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ec2-iid"))
        .arg("join")
        .args(["--server", &format!("https://{}", server.addr)])
        .arg("--ca-cert")
        .arg(tls_pair(1).ca)
        .args(["--imds-endpoint", imds_url])
        .args(["--deadline", DEADLINE])
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env_remove("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// How a join process ended.
#[derive(Debug)]
struct Ended {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ended {
    /// Exit 0 with the server's answer for `instance`: its host id, through rule 0.
    fn assert_joined(&self, instance: &Instance) {
        assert_eq!(self.code, Some(0), "{self:?}");
        let answer: serde_json::Value = serde_json::from_str(&self.stdout).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"host_id": instance.host_id(), "matched_rule": 0}),
            "{self:?}"
        );
    }

    /// Exit 1 with the server's generic refusal of `kind`; the reason is in `server`'s log.
    fn assert_refused(&self, server: &Server, kind: &str, reason_in_log: &str) {
        assert_eq!(self.code, Some(1), "{self:?}");
        assert_eq!(self.stderr, format!("refused: {kind}\n"), "{self:?}");
        server.refused(self.stdout.trim_end(), kind, reason_in_log);
    }
}

/// Waits for a join process, within [`PROCESS_LIMIT`].
async fn ended(child: Child) -> Ended {
    let output = tokio::time::timeout(PROCESS_LIMIT, child.wait_with_output())
        .await
        .expect("ec2-iid join ends by its deadline")
        .unwrap();
    Ended {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Waits for all of `children`, in order.
async fn all_ended(children: Vec<Child>) -> Vec<Ended> {
    let mut ends = Vec::new();
    for child in children {
        ends.push(ended(child).await);
    }
    ends
}

/// Two replicas `a` and `b` of `ec2-iid serve` with `token`, AWS at `moto`, sharing
/// `registry`, with `extra` flags, serving HTTPS (the first test TLS pair).
fn replicas(dir: &Path, token: &Path, moto: &Moto, registry: &str, extra: &[&str]) -> [Server; 2] {
    let tls = install_tls_pair(dir, 1);
    let tls = tls.each_ref().map(String::as_str);
    let args = [&["--registry", registry], &tls[..], extra].concat();
    ["a", "b"].map(|name| Server::start_with_token(dir, name, token, &moto.url, &args))
}

/// The sum of a sample over the replicas.
async fn total(replicas: &[Server], name: &str) -> f64 {
    let mut sum = 0.0;
    for replica in replicas {
        sum += sample(&tls_metrics(&replica.addr).await, name);
    }
    sum
}

const JOINED: &str = "ec2_iid_joins_total{outcome=\"joined\"}";

/// The rows of the PostgreSQL registry `dbname` (the default table).
async fn registry_rows(server: &postgres::PgServer, dbname: &str) -> i64 {
    admin(server, dbname)
        .await
        .query_one("SELECT count(*) FROM ec2_iid_joins", &[])
        .await
        .unwrap()
        .get(0)
}

/// Asserts none of `children` has ended yet: they are still retrying.
fn assert_pending(children: &mut [Child]) {
    for child in children {
        assert!(
            child.try_wait().unwrap().is_none(),
            "a join ended during the outage"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_instances_join_once_and_replays_strangers_and_stopped_ones_are_refused() {
    let Some(moto) = Moto::start() else { return };
    let Some(db) = postgres::server() else { return };
    let registry = database(db, "system_happy", "postgres").await;
    let ec2 = ec2_client(&moto.url).await;
    let ids = launch(&ec2, 51).await;
    let (stopped_id, running) = ids.split_last().unwrap();
    ec2.stop_instances()
        .instance_ids(stopped_id)
        .send()
        .await
        .unwrap();
    wait_for(
        &ec2,
        core::slice::from_ref(stopped_id),
        InstanceStateName::Stopped,
    )
    .await;
    let dir = scratch_dir("system-happy");
    // The rule names a role: each lookup assumes it through moto's STS.
    let token = write_token(&dir, Some(ROLE));
    let replicas = replicas(&dir, &token, &moto, &registry, &[]);

    let instances = Instance::all(running).await;
    let children = instances
        .iter()
        .enumerate()
        .map(|(n, instance)| instance.join(&replicas[n % 2]))
        .collect();
    let ends = all_ended(children).await;
    for (end, instance) in ends.iter().zip(&instances) {
        end.assert_joined(instance);
    }
    let host_ids: BTreeSet<_> = instances.iter().map(Instance::host_id).collect();
    assert_eq!(host_ids.len(), 50);
    assert_eq!(total(&replicas, JOINED).await, 50.0);
    assert_eq!(registry_rows(db, "system_happy").await, 50);

    // The same document again, to the other replica: joined already.
    let replay = ended(instances[0].join(&replicas[1])).await;
    replay.assert_refused(&replicas[1], "already_joined", "has already joined");
    // A stopped instance's genuine document.
    let stopped = Instance::new(OWN_ACCOUNT, stopped_id).await;
    let end = ended(stopped.join(&replicas[0])).await;
    end.assert_refused(&replicas[0], "instance_rejected", "stopped, not running");
    // A genuine document of an account the token does not allow.
    let stranger = Instance::new("210987654321", "i-0123456789abcdef0").await;
    let end = ended(stranger.join(&replicas[1])).await;
    end.assert_refused(&replicas[1], "no_rule_matched", "210987654321");

    assert_eq!(total(&replicas, JOINED).await, 50.0);
    assert_eq!(registry_rows(db, "system_happy").await, 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_ec2_is_503_until_it_answers_and_nothing_joins_without_a_lookup() {
    let Some(moto) = Moto::start() else { return };
    let Some(db) = postgres::server() else { return };
    let registry = database(db, "system_ec2_down", "postgres").await;
    let ec2 = ec2_client(&moto.url).await;
    let instances = Instance::all(&launch(&ec2, 8).await).await;
    let dir = scratch_dir("system-ec2-down");
    let token = write_token(&dir, None);
    // --timeout 2: a lookup that gets no answer is a 503 after 2 s.
    let replicas = replicas(&dir, &token, &moto, &registry, &["--timeout", "2"]);

    moto.pause();
    let mut children: Vec<Child> = instances
        .iter()
        .enumerate()
        .map(|(n, instance)| instance.join(&replicas[n % 2]))
        .collect();
    tokio::time::sleep(OUTAGE).await;
    assert_pending(&mut children);
    assert_eq!(total(&replicas, JOINED).await, 0.0);
    // The join's timeout or the lookup's, whichever fires first: both are 503.
    let unanswered = total(&replicas, "ec2_iid_joins_total{outcome=\"timeout\"}").await
        + total(
            &replicas,
            "ec2_iid_joins_total{outcome=\"lookup_unavailable\"}",
        )
        .await;
    assert!(
        unanswered >= 8.0,
        "each join was answered 503: {unanswered}"
    );
    assert_eq!(registry_rows(db, "system_ec2_down").await, 0);
    moto.resume();

    let ends = all_ended(children).await;
    for (end, instance) in ends.iter().zip(&instances) {
        end.assert_joined(instance);
    }
    assert_eq!(total(&replicas, JOINED).await, 8.0);
    assert_eq!(registry_rows(db, "system_ec2_down").await, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_registry_is_503_and_no_instance_joins_twice_across_the_outage() {
    let Some(moto) = Moto::start() else { return };
    // A server of this test's own: the others keep theirs while this one stops.
    let Some(db) = postgres::own_server() else {
        return;
    };
    let registry = database(&db, "system_registry_down", "postgres").await;
    let ec2 = ec2_client(&moto.url).await;
    let instances = Instance::all(&launch(&ec2, 8).await).await;
    let (before, during) = instances.split_at(4);
    let dir = scratch_dir("system-registry-down");
    let token = write_token(&dir, None);
    let replicas = replicas(&dir, &token, &moto, &registry, &[]);
    let children = before.iter().map(|i| i.join(&replicas[0])).collect();
    for (end, instance) in all_ended(children).await.iter().zip(before) {
        end.assert_joined(instance);
    }

    db.stop();
    // The other four, and a replay of one that joined before the outage.
    let mut children: Vec<Child> = during.iter().map(|i| i.join(&replicas[1])).collect();
    children.push(before[0].join(&replicas[1]));
    tokio::time::sleep(OUTAGE).await;
    assert_pending(&mut children);
    assert_eq!(total(&replicas, JOINED).await, 4.0);
    let unavailable = total(
        &replicas,
        "ec2_iid_joins_total{outcome=\"registry_unavailable\"}",
    )
    .await;
    assert!(
        unavailable >= 5.0,
        "each join was answered 503: {unavailable}"
    );
    db.restart();

    let mut ends = all_ended(children).await;
    let replay = ends.pop().unwrap();
    for (end, instance) in ends.iter().zip(during) {
        end.assert_joined(instance);
    }
    replay.assert_refused(&replicas[1], "already_joined", "has already joined");
    assert_eq!(total(&replicas, JOINED).await, 8.0);
    assert_eq!(registry_rows(&db, "system_registry_down").await, 8);
}

/// What the load test measured.
#[derive(Debug)]
struct Load {
    took: Duration,
    /// Of each `ec2-iid join` process, start to exit, sorted.
    latencies: Vec<Duration>,
}

/// `clients` tasks, each with an IMDS of its own, run `ec2-iid join` for the instances of
/// `queue`, one after the other, alternating the replicas.
async fn run_clients(clients: usize, queue: Vec<String>, replicas: &Arc<[Server; 2]>) -> Load {
    let queue = Arc::new(Mutex::new(queue));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let queue = Arc::clone(&queue);
            let replicas = Arc::clone(replicas);
            tokio::spawn(async move {
                let imds = ImdsServer::start().await;
                let mut latencies = Vec::new();
                loop {
                    let Some(id) = queue.lock().unwrap().pop() else {
                        return latencies;
                    };
                    imds.set_body(RSA2048, rsa2048(OWN_ACCOUNT, &id, now()));
                    let sent = Instant::now();
                    let end = ended(join_process(&imds.url, &replicas[client % 2])).await;
                    assert_eq!(end.code, Some(0), "{id}: {end:?}");
                    assert!(end.stdout.contains(&id), "{id}: {end:?}");
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort_unstable();
    Load {
        took: started.elapsed(),
        latencies,
    }
}

/// A report, not a timed assertion: the figures go to `benches/README.md`.
#[tokio::test(flavor = "multi_thread")]
async fn load_of_500_joins_from_16_clients_on_two_replicas_and_dynamodb() {
    // moto's PutItem checks the condition and writes in two steps; AWS's is atomic.
    let Some(moto) = Moto::start_with_atomic_put_item() else {
        return;
    };
    let ec2 = ec2_client(&moto.url).await;
    let ids = launch(&ec2, 500).await;
    let dir = scratch_dir("system-load");
    let token = write_token(&dir, Some(ROLE));
    let replicas = Arc::new(replicas(
        &dir,
        &token,
        &moto,
        "dynamodb:ec2-iid-system",
        &[],
    ));

    let load = run_clients(16, ids, &replicas).await;
    assert_eq!(load.latencies.len(), 500);
    assert_eq!(total(&replicas[..], JOINED).await, 500.0);
    let calls = total(&replicas[..], "ec2_iid_describe_instances_calls_total").await;
    eprintln!(
        "system load: 500 `ec2-iid join` processes from 16 clients on 2 replicas (DynamoDB \
         registry, role via STS): {:.1} s = {:.0} joins/s, p50 {:.0} ms, p99 {:.0} ms, {calls} \
         DescribeInstances calls",
        load.took.as_secs_f64(),
        500.0 / load.took.as_secs_f64(),
        percentile(&load.latencies, 50).as_secs_f64() * 1000.0,
        percentile(&load.latencies, 99).as_secs_f64() * 1000.0,
    );
}
