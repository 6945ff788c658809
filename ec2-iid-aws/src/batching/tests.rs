//! The pacer against a fake `Describe`, on tokio's paused clock.

use std::sync::atomic::AtomicUsize;

use ec2_iid::ids::InstanceState;

use super::*;

/// Answers every id it knows (those starting `i-0`), after `latency`; throttles the first
/// `throttle` calls. Records each call's time and ids.
#[derive(Debug, Default)]
struct Fake {
    latency: Duration,
    throttle: AtomicUsize,
    calls: Mutex<Vec<(Instant, Vec<String>)>>,
}

impl Describe for Arc<Fake> {
    async fn describe_many(
        &self,
        _query: &InstanceQuery,
        ids: &[InstanceId],
    ) -> Result<Vec<Option<InstanceFacts>>, Ec2LookupError> {
        let names = ids.iter().map(|id| id.as_str().to_owned()).collect();
        self.calls.lock().unwrap().push((Instant::now(), names));
        tokio::time::sleep(self.latency).await;
        let throttled = self
            .throttle
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if throttled {
            return Err(Ec2LookupError::Throttled {
                operation: Operation::DescribeInstances,
                code: Some("RequestLimitExceeded".into()),
                source: "Request limit exceeded.".into(),
            });
        }
        Ok(ids
            .iter()
            .map(|id| {
                id.as_str()
                    .starts_with("i-0")
                    .then(|| InstanceFacts::new(id.as_str(), InstanceState::Running))
            })
            .collect())
    }
}

struct Setup {
    fake: Arc<Fake>,
    pacer: Arc<Pacer<Arc<Fake>>>,
    events: Arc<Mutex<Vec<PacingEvent>>>,
}

fn setup(rate: f64, burst: u32, edit: impl FnOnce(&mut Pacing, &mut Fake)) -> Setup {
    let mut pacing = Pacing {
        rate,
        burst,
        ..Pacing::default()
    };
    let mut fake = Fake::default();
    edit(&mut pacing, &mut fake);
    pacing.check().unwrap();
    let fake = Arc::new(fake);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let observer: Observer = Arc::new(move |e| sink.lock().unwrap().push(e));
    let pacer = Arc::new(Pacer::new(Arc::clone(&fake), pacing, Some(observer)));
    Setup {
        fake,
        pacer,
        events,
    }
}

fn id(n: usize) -> String {
    format!("i-0{n:016x}")
}

fn query(id: &str) -> InstanceQuery {
    InstanceQuery::new(
        "123456789012".parse().unwrap(),
        id.parse().unwrap(),
        "eu-west-1".parse().unwrap(),
    )
}

impl Setup {
    fn spawn(&self, id: &str) -> tokio::task::JoinHandle<Answer> {
        let pacer = Arc::clone(&self.pacer);
        let query = query(id);
        tokio::spawn(async move { Pacer::describe(&pacer, &query).await })
    }

    /// Each call's time since `start` (whole milliseconds) and number of ids.
    fn calls(&self, start: Instant) -> Vec<(u128, usize)> {
        let calls = self.fake.calls.lock().unwrap();
        calls
            .iter()
            .map(|(at, ids)| ((*at - start).as_millis(), ids.len()))
            .collect()
    }

    fn waits(&self) -> Vec<Duration> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter_map(|e| match e {
                PacingEvent::Waited(d) => Some(*d),
                PacingEvent::Call { .. } => None,
            })
            .collect()
    }

    fn idle(&self) -> bool {
        self.pacer.state().queues.is_empty()
    }
}

async fn answered(task: tokio::task::JoinHandle<Answer>) -> Option<InstanceFacts> {
    task.await.unwrap().unwrap()
}

#[tokio::test(start_paused = true)]
async fn light_load_goes_at_once() {
    let setup = setup(20.0, 100, |_, _| ());
    let start = Instant::now();
    for n in 0..3 {
        let facts = answered(setup.spawn(&id(n))).await.unwrap();
        assert_eq!(facts.instance_id, id(n));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(setup.calls(start), [(0, 1), (100, 1), (200, 1)]);
    assert_eq!(setup.waits(), [Duration::ZERO; 3]);
    assert_eq!(setup.pacer.calls.load(Ordering::Relaxed), 3);
    // An unknown id is `None`, not an error.
    assert_eq!(answered(setup.spawn("i-1deadbeef")).await, None);
    tokio::task::yield_now().await;
    assert!(setup.idle());
}

#[tokio::test(start_paused = true)]
async fn a_burst_beyond_the_tokens_waits_for_the_refill() {
    // One id per call: each query needs a token.
    let setup = setup(2.0, 3, |pacing, _| pacing.max_batch = 1);
    let start = Instant::now();
    let tasks: Vec<_> = (0..7).map(|n| setup.spawn(&id(n))).collect();
    for task in tasks {
        assert!(answered(task).await.is_some());
    }
    // Three at once, then the cap of 3 per 1.25 s holds back the refill (2 per second).
    assert_eq!(
        setup.calls(start),
        [
            (0, 1),
            (0, 1),
            (0, 1),
            (1250, 1),
            (1250, 1),
            (1500, 1),
            (2500, 1)
        ]
    );
    let waits = setup.waits();
    assert_eq!(waits.len(), 7);
    assert_eq!(waits[6], Duration::from_millis(2500));
}

#[tokio::test(start_paused = true)]
async fn batches_grow_toward_200_while_tokens_are_short() {
    let setup = setup(1.0, 1, |_, fake| fake.latency = Duration::from_millis(10));
    let start = Instant::now();
    let first = setup.spawn(&id(0));
    tokio::time::sleep(Duration::from_millis(1)).await;
    // 450 more, each asked twice: they wait for the next tokens and share the calls.
    let tasks: Vec<_> = (1..=450)
        .flat_map(|n| [setup.spawn(&id(n)), setup.spawn(&id(n))])
        .collect();
    assert!(answered(first).await.is_some());
    for task in tasks {
        assert!(answered(task).await.is_some());
    }
    assert_eq!(
        setup.calls(start),
        [(0, 1), (1250, 200), (2500, 200), (3750, 50)]
    );
    let calls: Vec<_> = setup
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, PacingEvent::Call { .. }))
        .copied()
        .collect();
    assert_eq!(calls[1], PacingEvent::Call { ids: 200 });
    assert!(setup.idle());
}

#[tokio::test(start_paused = true)]
async fn queries_wait_for_a_call_slot_and_share_the_next_call() {
    let setup = setup(20.0, 100, |_, fake| {
        fake.latency = Duration::from_millis(100)
    });
    let start = Instant::now();
    let first = [setup.spawn(&id(0))];
    tokio::time::sleep(Duration::from_millis(1)).await;
    let second = [setup.spawn(&id(1))];
    tokio::time::sleep(Duration::from_millis(1)).await;
    // Two calls out, tokens to spare: these 50 wait for one of them and go together.
    let rest: Vec<_> = (2..52).map(|n| setup.spawn(&id(n))).collect();
    for task in first.into_iter().chain(second).chain(rest) {
        assert!(answered(task).await.is_some());
    }
    assert_eq!(setup.calls(start), [(0, 1), (1, 1), (100, 50)]);
    assert!(setup.pacer.state().in_flight.is_empty());
    assert!(setup.idle());
}

#[tokio::test(start_paused = true)]
async fn throttling_slows_the_bucket_and_is_retried() {
    let setup = setup(20.0, 100, |_, fake| fake.throttle = AtomicUsize::new(2));
    let start = Instant::now();
    let facts = answered(setup.spawn(&id(0))).await.unwrap();
    assert_eq!(facts.instance_id, id(0));
    let calls = setup.calls(start);
    assert_eq!(calls.len(), 3, "{calls:?}");
    // Each retry waits for a token at the halved rate: 1/10 s, then 1/5 s (plus jitter).
    assert!((250..=450).contains(&calls[2].0), "{calls:?}");
    assert!(calls[1].0 >= 100, "{calls:?}");
    let key = BatchKey::of(&query(&id(0))).bucket;
    let rate = setup.pacer.state().buckets[&key].rate();
    assert!((5.0..=6.0).contains(&rate), "halved twice: {rate}");
    // It grows back to the configured rate within 10 s.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(setup.pacer.take_token(&key).is_ok());
    assert_eq!(setup.pacer.state().buckets[&key].rate(), 20.0);

    // Throttled past the deadline: the callers get the (transient) throttling error.
    setup.fake.throttle.store(1000, Ordering::Relaxed);
    let before = Instant::now();
    let err = setup.spawn(&id(1)).await.unwrap().unwrap_err();
    assert!(matches!(*err, Ec2LookupError::Throttled { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(before.elapsed() <= DEFAULT_THROTTLE_DEADLINE);
    // By then the bucket is far below its rate (its floor is 20/32 calls per second).
    let rate = setup.pacer.state().buckets[&key].rate();
    assert!(rate < 5.0, "{rate}");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_the_queue_and_stalls_no_one() {
    let setup = setup(1.0, 1, |_, _| ());
    let start = Instant::now();
    assert!(answered(setup.spawn(&id(0))).await.is_some());
    // No call until t = 1.25 s: these wait; one gives up.
    let gives_up = setup.spawn(&id(1));
    let stays = setup.spawn(&id(2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    gives_up.abort();
    assert!(gives_up.await.unwrap_err().is_cancelled());
    {
        let state = setup.pacer.state();
        let queue = state.queues.values().next().unwrap();
        assert_eq!(queue.waiters, 1);
        assert_eq!(queue.order, [id(2).parse::<InstanceId>().unwrap()]);
    }
    assert!(answered(stays).await.is_some());
    assert_eq!(setup.calls(start), [(0, 1), (1250, 1)]);
    // Everyone gone: a waiting query whose caller drops it leaves nothing behind.
    let lone = setup.spawn(&id(3));
    tokio::time::sleep(Duration::from_millis(10)).await;
    lone.abort();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(setup.idle());
    assert_eq!(
        setup.calls(start).len(),
        2,
        "no call for a query no one awaits"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_fails_fast_and_a_long_wait_ends() {
    let setup = setup(1.0, 1, |pacing, _| pacing.max_waiting = 2);
    assert!(answered(setup.spawn(&id(0))).await.is_some());
    let waiting = [setup.spawn(&id(1)), setup.spawn(&id(2))];
    tokio::time::sleep(Duration::from_millis(1)).await;
    let err = setup.spawn(&id(3)).await.unwrap().unwrap_err();
    assert!(
        matches!(*err, Ec2LookupError::Overloaded { .. }) && err.is_transient(),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "ec2:DescribeInstances: not sent: too many queries wait for a call"
    );
    for task in waiting {
        assert!(answered(task).await.is_some());
    }

    // A rate throttled to its floor: a query does not wait past 30 s.
    let setup = self::setup(0.01, 1, |_, fake| fake.throttle = AtomicUsize::new(1));
    let throttled = setup.spawn(&id(0)).await.unwrap().unwrap_err();
    assert!(matches!(*throttled, Ec2LookupError::Throttled { .. }));
    let before = Instant::now();
    let err = setup.spawn(&id(1)).await.unwrap().unwrap_err();
    assert!((MAX_WAIT..MAX_WAIT + Duration::from_secs(1)).contains(&before.elapsed()));
    assert_eq!(
        err.to_string(),
        "ec2:DescribeInstances: not sent: no call within 30 s"
    );
}

#[test]
fn settings_out_of_range_are_refused() {
    let bad = [
        Pacing {
            rate: 0.0,
            ..Pacing::default()
        },
        Pacing {
            rate: f64::NAN,
            ..Pacing::default()
        },
        Pacing {
            rate: 10_001.0,
            ..Pacing::default()
        },
        Pacing {
            burst: 0,
            ..Pacing::default()
        },
        Pacing {
            max_batch: 201,
            ..Pacing::default()
        },
        Pacing {
            max_batch: 0,
            ..Pacing::default()
        },
        Pacing {
            max_waiting: 0,
            ..Pacing::default()
        },
    ];
    for pacing in bad {
        let err = pacing.check().unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidPacing { .. }),
            "{pacing:?}"
        );
    }
    assert!(Pacing::default().check().is_ok());
}

#[test]
fn jitter_stays_within_the_backoff() {
    for millis in [1, 50, 1000] {
        let backoff = Duration::from_millis(millis);
        for _ in 0..100 {
            let pause = jitter(backoff);
            assert!(
                pause >= Duration::from_millis(1) && pause <= backoff,
                "{pause:?}"
            );
        }
    }
}
