//! `Ec2Lookup` against moto, a local emulator of the AWS APIs, and against endpoints that never
//! answer.
//!
//! Each moto test starts its own `moto_server` on a free loopback port and stops it when done
//! (see `ec2_iid_test_support::moto` for where the binary comes from, and when a test without
//! it passes).
#![cfg(test)] // clippy.toml says why

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region as SdkRegion, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{Instance, InstanceStateName};
use ec2_iid::ids::InstanceState;
use ec2_iid::{InstanceFacts, InstanceLookup, InstanceQuery};
use ec2_iid_aws::{Ec2Lookup, Ec2LookupError, Operation};
use ec2_iid_test_support::free_port;
use ec2_iid_test_support::moto::{Moto, OWN_ACCOUNT};

/// The account of the cross-account instance and role.
const OTHER_ACCOUNT: &str = "222222222222";
const REGION: &str = "eu-west-1";
/// One of the AMIs moto knows.
const AMI: &str = "ami-12c6146b";

/// The caller's SDK configuration: dummy credentials (moto's default account), one attempt.
async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(SdkRegion::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

fn ec2_client(config: &SdkConfig, url: &str) -> aws_sdk_ec2::Client {
    let conf = aws_sdk_ec2::config::Builder::from(config)
        .endpoint_url(url)
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

/// An EC2 client with credentials of `role_arn`, assumed at moto's STS.
async fn assumed_ec2_client(config: &SdkConfig, url: &str, role_arn: &str) -> aws_sdk_ec2::Client {
    let sts_conf = aws_sdk_sts::config::Builder::from(config)
        .endpoint_url(url)
        .build();
    let out = aws_sdk_sts::Client::from_conf(sts_conf)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("test-setup")
        .send()
        .await
        .unwrap();
    let c = out.credentials().unwrap();
    let creds = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "test",
    );
    let conf = aws_sdk_ec2::config::Builder::from(config)
        .endpoint_url(url)
        .credentials_provider(creds)
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

/// Launches one instance; returns it and its reservation's owner.
async fn launch(ec2: &aws_sdk_ec2::Client) -> (Instance, String) {
    let out = ec2
        .run_instances()
        .image_id(AMI)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let owner = out.owner_id().unwrap().to_owned();
    (out.instances()[0].clone(), owner)
}

/// The role the cross-account tests' rules name, in [`OTHER_ACCOUNT`].
fn other_account_role() -> String {
    format!("arn:aws:iam::{OTHER_ACCOUNT}:role/ec2-iid-describe")
}

/// A lookup of an instance in [`OTHER_ACCOUNT`] through [`other_account_role`].
fn other_account_query() -> InstanceQuery {
    query(OTHER_ACCOUNT, "i-0123456789abcdef0")
        .with_role_arn(Some(other_account_role().parse().unwrap()))
}

/// Asserts that a lookup timed out assuming the role.
fn assert_assume_role_timed_out(err: &Ec2LookupError) {
    assert!(
        matches!(
            err,
            Ec2LookupError::Timeout {
                operation: Operation::AssumeRole,
                ..
            }
        ),
        "{err:?}"
    );
}

fn query(account: &str, instance_id: &str) -> InstanceQuery {
    InstanceQuery::new(
        account.parse().unwrap(),
        instance_id.parse().unwrap(),
        REGION.parse().unwrap(),
    )
}

fn lookup(config: &SdkConfig, url: &str) -> Ec2Lookup {
    Ec2Lookup::builder(config)
        .endpoint_url(url)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The facts of `id`, polling while EC2 reports a transitional state moto may show first.
async fn settled_facts(lookup: &Ec2Lookup, q: &InstanceQuery) -> InstanceFacts {
    for _ in 0..50 {
        let facts = lookup.describe_instance(q).await.unwrap().unwrap();
        if !matches!(
            facts.state,
            InstanceState::Pending | InstanceState::Stopping | InstanceState::ShuttingDown
        ) {
            return facts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("instance {} never settled", q.instance_id);
}

#[tokio::test]
async fn running_instance_has_its_facts() {
    let Some(moto) = Moto::start() else { return };
    let config = sdk_config().await;
    let (instance, owner) = launch(&ec2_client(&config, &moto.url)).await;
    assert_eq!(owner, OWN_ACCOUNT);
    let id = instance.instance_id().unwrap();

    let facts = settled_facts(&lookup(&config, &moto.url), &query(OWN_ACCOUNT, id)).await;

    assert_eq!(facts.instance_id, id);
    assert_eq!(facts.state, InstanceState::Running);
    assert_eq!(facts.owner_id.as_deref(), Some(OWN_ACCOUNT));
    assert_eq!(facts.image_id.as_deref(), Some(AMI));
    assert_eq!(facts.vpc_id.as_deref(), instance.vpc_id());
    assert!(facts.vpc_id.is_some());
    assert_eq!(facts.subnet_id.as_deref(), instance.subnet_id());
    assert!(facts.subnet_id.is_some());
    let launched = instance.launch_time().unwrap();
    assert_eq!(
        facts.launch_time.map(|t| t.timestamp()),
        Some(launched.secs())
    );
    assert_eq!(facts.root_device_type.as_deref(), Some("ebs"));
    // moto attaches the root volume and the primary ENI at launch, like EC2.
    let root = facts
        .root_volume_attach_time
        .expect("root volume attach time");
    let eni = facts
        .primary_eni_attach_time
        .expect("primary ENI attach time");
    assert!((root - eni).num_seconds().abs() <= 60, "{root} vs {eni}");
}

#[tokio::test]
async fn stopped_and_terminated_instances_have_their_states() {
    let Some(moto) = Moto::start() else { return };
    let config = sdk_config().await;
    let ec2 = ec2_client(&config, &moto.url);
    let (stopped, _) = launch(&ec2).await;
    let (terminated, _) = launch(&ec2).await;
    let stopped = stopped.instance_id().unwrap();
    let terminated = terminated.instance_id().unwrap();
    ec2.stop_instances()
        .instance_ids(stopped)
        .send()
        .await
        .unwrap();
    ec2.terminate_instances()
        .instance_ids(terminated)
        .send()
        .await
        .unwrap();

    let lookup = lookup(&config, &moto.url);
    let facts = settled_facts(&lookup, &query(OWN_ACCOUNT, stopped)).await;
    assert_eq!(facts.state, InstanceState::Stopped);
    let facts = settled_facts(&lookup, &query(OWN_ACCOUNT, terminated)).await;
    assert_eq!(facts.state, InstanceState::Terminated);

    // The SDK and the crate agree on the names.
    let described = ec2
        .describe_instances()
        .instance_ids(stopped)
        .send()
        .await
        .unwrap();
    let name = described.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .cloned();
    assert_eq!(name, Some(InstanceStateName::Stopped));
}

#[tokio::test]
async fn unknown_instance_is_none() {
    let Some(moto) = Moto::start() else { return };
    let config = sdk_config().await;
    let lookup = lookup(&config, &moto.url);
    for id in ["i-0123456789abcdef0", "i-01234567"] {
        assert_eq!(
            lookup
                .describe_instance(&query(OWN_ACCOUNT, id))
                .await
                .unwrap(),
            None,
            "{id}"
        );
    }
}

#[tokio::test]
async fn cross_account_lookup_assumes_the_role() {
    let Some(moto) = Moto::start() else { return };
    let config = sdk_config().await;
    let role = other_account_role();
    // moto runs calls made with assumed-role credentials in the role's account.
    let (instance, owner) = launch(&assumed_ec2_client(&config, &moto.url, &role).await).await;
    assert_eq!(owner, OTHER_ACCOUNT);
    let id = instance.instance_id().unwrap();
    let lookup = lookup(&config, &moto.url);

    // With the caller's own credentials the instance is not visible: another account's.
    let own = query(OTHER_ACCOUNT, id);
    assert_eq!(lookup.describe_instance(&own).await.unwrap(), None);

    // Through the rule's role it is: the lookup assumed the role in the instance's account.
    let assumed = query(OTHER_ACCOUNT, id).with_role_arn(Some(role.parse().unwrap()));
    let facts = settled_facts(&lookup, &assumed).await;
    assert_eq!(facts.state, InstanceState::Running);
    assert_eq!(facts.owner_id.as_deref(), Some(OTHER_ACCOUNT));
    // Again, from the cached credentials.
    let again = lookup.describe_instance(&assumed).await.unwrap().unwrap();
    assert_eq!(again, facts);

    // A role of another partition is refused before any call.
    let china = query(OTHER_ACCOUNT, id).with_role_arn(Some(
        role.replace("arn:aws:", "arn:aws-cn:").parse().unwrap(),
    ));
    let err = lookup.describe_instance(&china).await.unwrap_err();
    assert!(
        matches!(err, Ec2LookupError::InvalidRoleArn { .. }),
        "{err:?}"
    );
}

/// A loopback endpoint that accepts connections and never answers; stops with the test's
/// runtime.
async fn silent_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        // Bounded: a lookup makes a handful of connections at most.
        while held.len() < 64 {
            match listener.accept().await {
                Ok((socket, _)) => held.push(socket),
                Err(_) => break,
            }
        }
    });
    url
}

#[tokio::test]
async fn silent_endpoint_times_out() {
    let url = silent_endpoint().await;
    let config = sdk_config().await;
    let timeout = Duration::from_secs(1);
    let lookup = Ec2Lookup::builder(&config)
        .endpoint_url(&url)
        .timeout(timeout)
        .build()
        .unwrap();

    let started = Instant::now();
    let err = lookup
        .describe_instance(&query(OWN_ACCOUNT, "i-0123456789abcdef0"))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    match &err {
        Ec2LookupError::Timeout {
            operation: Operation::DescribeInstances,
            timeout: t,
            ..
        } => assert_eq!(*t, timeout),
        other => panic!("{other:?}"),
    }
    assert!(err.is_transient());

    let err = lookup
        .describe_instance(&other_account_query())
        .await
        .unwrap_err();
    assert_assume_role_timed_out(&err);
}

#[tokio::test]
async fn lookups_waiting_for_one_assume_role_are_bounded_too() {
    let url = silent_endpoint().await;
    let config = sdk_config().await;
    let lookup = Ec2Lookup::builder(&config)
        .endpoint_url(&url)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let q = other_account_query();

    // Six lookups for one role: one assumes it, the others wait for it, each at most 1 s, and
    // none queues behind all the others' timeouts (which would take 6 s).
    let started = Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (lookup, q) = (lookup.clone(), q.clone());
            tokio::spawn(async move { lookup.describe_instance(&q).await })
        })
        .collect();
    for task in tasks {
        assert_assume_role_timed_out(&task.await.unwrap().unwrap_err());
    }
    assert!(
        started.elapsed() < Duration::from_millis(4500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn closed_endpoint_is_a_connection_error() {
    // A port that was free a moment ago: nothing listens, connections are refused.
    let port = free_port().unwrap();
    let config = sdk_config().await;
    let lookup = Ec2Lookup::builder(&config)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let err = lookup
        .describe_instance(&query(OWN_ACCOUNT, "i-0123456789abcdef0"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Ec2LookupError::Connection {
                operation: Operation::DescribeInstances,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
}

/// 200 concurrent queries (60 instances, most asked several times, and unknown ids) on a
/// bucket of one token go out as one or two `DescribeInstances` calls with the `instance-id` filter; each caller gets its own
/// instance's facts, an unknown id gets `None` without failing the others.
#[tokio::test]
async fn batching_lookup_coalesces_a_burst() {
    let Some(moto) = Moto::start() else { return };
    let config = sdk_config().await;
    let ec2 = ec2_client(&config, &moto.url);
    let out = ec2
        .run_instances()
        .image_id(AMI)
        .min_count(60)
        .max_count(60)
        .send()
        .await
        .unwrap();
    let owner = out.owner_id().unwrap().to_owned();
    let ids: Vec<String> = out
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 60);
    // One token, then one a second: whatever the first call takes, the rest wait and share
    // the next.
    let sizes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&sizes);
    let batching = ec2_iid_aws::BatchingLookup::builder(lookup(&config, &moto.url))
        .rate(1.0)
        .burst(1)
        .observer(move |event| {
            if let ec2_iid_aws::PacingEvent::Call { ids } = event {
                sink.lock().unwrap().push(ids);
            }
        })
        .build()
        .unwrap();
    let unknown: Vec<String> = (0..10)
        .map(|i| format!("i-{:017x}", 0xdead_0000_u64 + i))
        .collect();
    let mut asked: Vec<String> = (0..190).map(|i| ids[i % ids.len()].clone()).collect();
    asked.extend(unknown.iter().cloned());
    let queries = asked.iter().map(|id| {
        let batching = batching.clone();
        let q = query(&owner, id);
        tokio::spawn(async move { batching.describe_instance(&q).await })
    });
    let answers = futures_join(queries.collect()).await;
    for (id, answer) in asked.iter().zip(&answers) {
        let answer = answer.as_ref().unwrap();
        if unknown.contains(id) {
            assert!(answer.is_none(), "{id} is unknown");
        } else {
            assert_eq!(&answer.as_ref().unwrap().instance_id, id);
        }
    }
    let calls = batching.describe_calls();
    assert!(
        (1..=2).contains(&calls),
        "{calls} DescribeInstances calls for 200 queries"
    );
    // 70 distinct ids (60 instances, 10 unknown), each sent once.
    let sizes = sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), 70, "{sizes:?}");
}

/// Awaits every task, in order.
async fn futures_join<T>(
    tasks: Vec<tokio::task::JoinHandle<Result<T, std::sync::Arc<Ec2LookupError>>>>,
) -> Vec<Result<T, std::sync::Arc<Ec2LookupError>>> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}
