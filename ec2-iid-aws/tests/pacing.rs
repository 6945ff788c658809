//! `BatchingLookup` against an EC2 that throttles: a fake EC2 endpoint on loopback answers
//! `RequestLimitExceeded` (HTTP 503, EC2's error document) before it answers, and the lookup
//! (through the AWS SDK with its default retries, which the lookup keeps from retrying
//! throttled calls) slows down and retries within its deadline, every retry paced.
#![cfg(test)] // clippy.toml says why

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region as SdkRegion};
use aws_sdk_ec2::config::Credentials;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use ec2_iid::{InstanceLookup, InstanceQuery};
use ec2_iid_aws::{BatchingLookup, Ec2Lookup, PacingEvent};
use ec2_iid_test_support::join_server::serve_on_loopback;

const THROTTLED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors>\
<RequestID>5d1a2b3c-0000-0000-0000-000000000000</RequestID></Response>";

const NO_INSTANCES: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
<requestId>5d1a2b3c-0000-0000-0000-000000000001</requestId><reservationSet/>\
</DescribeInstancesResponse>";

/// A fake EC2 that throttles the first `throttle` requests; returns its URL and its request
/// count.
async fn fake_ec2(throttle: usize) -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let state = (throttle, Arc::clone(&seen));
    let app = Router::new()
        .route(
            "/",
            post(
                |State((throttle, seen)): State<(usize, Arc<AtomicUsize>)>| async move {
                    if seen.fetch_add(1, Ordering::SeqCst) < throttle {
                        (StatusCode::SERVICE_UNAVAILABLE, THROTTLED)
                    } else {
                        (StatusCode::OK, NO_INSTANCES)
                    }
                },
            ),
        )
        .with_state(state);
    (serve_on_loopback(app).await, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn request_limit_exceeded_is_retried_paced_within_the_deadline() {
    let (url, seen) = fake_ec2(2).await;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(SdkRegion::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let ec2 = Ec2Lookup::builder(&config)
        .endpoint_url(&url)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let lookup = BatchingLookup::builder(ec2)
        .rate(20.0)
        .burst(100)
        .observer(move |event| {
            if let PacingEvent::Call { ids } = event {
                assert_eq!(ids, 1);
                counted.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let query = InstanceQuery::new(
        "123456789012".parse().unwrap(),
        "i-0123456789abcdef0".parse().unwrap(),
        "us-east-1".parse().unwrap(),
    );
    let started = Instant::now();
    // Throttled twice, then EC2 answers: no such instance.
    let answer = lookup.describe_instance(&query).await.unwrap();
    assert_eq!(answer, None);
    // Three requests reached EC2, each one of the lookup's paced calls: the SDK's own
    // retries (3 attempts by default) did not retry the throttled ones behind the bucket.
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    assert_eq!(lookup.describe_calls(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Each retry waited for a token of the halved rate: 1/10 s, then about 1/5 s.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{took:?}"
    );
}
