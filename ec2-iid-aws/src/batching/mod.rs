//! [`BatchingLookup`]: many joins at once, few `DescribeInstances` calls, paced at EC2's rate.
//!
//! EC2 throttles describe calls per account and region with a token bucket (about 100 calls,
//! refilled at about 20 per second), so an autoscaling burst of a thousand instances must not
//! make a thousand calls. Each (partition, region, role) gets a bucket of its own with those
//! figures: a query goes out at once while a token is free; when none is, queries wait, and the
//! next token sends all the waiting ids of a batch key in one call with the `instance-id`
//! filter (at most 200 ids). So the busier it gets, the larger the batches, and the call rate
//! stays at the bucket's.

use core::fmt;
use core::future::Future;
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ec2_iid::ids::InstanceId;
use ec2_iid::{InstanceFacts, InstanceLookup, InstanceQuery};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tracing::Instrument as _;

use self::bucket::Bucket;

mod bucket;

use crate::error::{Ec2LookupError, Operation};
use crate::lookup::{ConfigError, Ec2Lookup};

/// The most instance ids one `DescribeInstances` filter takes (EC2's limit for filter values).
pub const MAX_BATCH: usize = 200;

/// How long throttled batch calls are retried (with jittered backoff, each retry paced like any
/// call) before the callers see the throttling error, which is transient: they may try again
/// later.
pub const DEFAULT_THROTTLE_DEADLINE: Duration = Duration::from_secs(5);

/// The default refill of a bucket, in calls per second: EC2's for `DescribeInstances`.
pub const DEFAULT_RATE: f64 = 20.0;

/// The default size of a bucket, in calls: EC2's for `DescribeInstances`.
pub const DEFAULT_BURST: u32 = 100;

/// The default number of queries that may wait for a call, per batch key; past it a query
/// fails at once with [`Ec2LookupError::Overloaded`]. Twenty full calls.
pub const DEFAULT_MAX_WAITING: usize = 20 * MAX_BATCH;

/// The largest rate and burst a [`BatchingLookupBuilder`] takes: far above any EC2 quota.
const MAX_RATE: f64 = 10_000.0;

/// How long a query waits for its call at most, whatever the rate has shrunk to.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A throttled bucket's rate is halved, but not below this share of the configured rate.
const MIN_RATE_SHARE: f64 = 1.0 / 32.0;

/// After throttling, the rate grows back by the configured rate every this many seconds.
const RECOVERY_SECS: f64 = 10.0;

/// No window this long sees more calls than [`Pacing::per_second`]: a second, and a quarter to
/// spare, as EC2 counts calls when they arrive, and a busy host or network may bring two calls
/// closer on the way (on a loaded 2-core test machine, by over 100 ms).
const WINDOW: Duration = Duration::from_millis(1250);

/// The most calls in flight per batch key. While they are out, more queries wait (even with
/// tokens free) and share the next call: a burst that arrives over the time of a call makes
/// a few large calls, not one call per query until the tokens run out.
const MAX_IN_FLIGHT: usize = 2;

/// The shortest sleep of a waiting dispatcher: rounding must not make it spin.
const MIN_SLEEP: Duration = Duration::from_millis(1);

/// What a [`BatchingLookup`] reports to its observer, for metrics.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PacingEvent {
    /// A `DescribeInstances` call went out (a retry of a throttled call too).
    Call {
        /// The instance ids in its filter.
        ids: usize,
    },
    /// A query's call went out: the query waited this long for it (zero when a token was free).
    Waited(Duration),
}

type Observer = Arc<dyn Fn(PacingEvent) + Send + Sync>;

/// An [`InstanceLookup`] that paces `DescribeInstances` at EC2's rate and coalesces the
/// queries waiting for a call into one.
///
/// Wraps an [`Ec2Lookup`]. Each caller gets its own instance's facts, or `None` when EC2 does
/// not know it; nothing is cached beyond the call. Cheap to clone (the buckets are shared).
///
/// Each (partition, region, role) has a bucket of `burst` tokens refilled at `rate` per
/// second; a call takes one, and no 1.25 s (a second, and a quarter for jitter on the way to
/// EC2) see more than the larger of `burst` and `rate` calls: EC2's own bucket would allow a
/// full burst plus a second's refill. While no token is free, queries wait; the next token
/// sends every waiting id of the same partition, region, account and role, up to
/// [`MAX_BATCH`] per call (identical ids share their slot). At most two calls of the same key
/// are in flight: while they are, queries wait for one to end and then share the next, so a
/// burst makes a few large calls rather than spending the tokens one query at a time. A
/// throttled call (`RequestLimitExceeded`) halves the bucket's rate, which grows back over
/// about ten seconds, and is retried within [`DEFAULT_THROTTLE_DEADLINE`].
///
/// Bounded: at most `max_waiting` queries wait per batch key (then [`Ec2LookupError::Overloaded`]
/// at once), none longer than 30 s, and a caller that gives up (drops its future) leaves the
/// queue. Calls run in tasks of their own, so must be made within a Tokio runtime (as the AWS
/// SDK's).
///
/// ```no_run
/// # async fn run() -> Result<(), ec2_iid_aws::ConfigError> {
/// use ec2_iid_aws::{BatchingLookup, Ec2Lookup, PacingEvent};
///
/// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// // Two replicas share the account's bucket: each takes half.
/// let lookup = BatchingLookup::builder(Ec2Lookup::new(&config))
///     .rate(10.0)
///     .burst(50)
///     .observer(|event| {
///         if let PacingEvent::Call { ids } = event {
///             println!("DescribeInstances with {ids} ids");
///         }
///     })
///     .build()?;
/// assert_eq!(lookup.describe_calls(), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BatchingLookup {
    pacer: Arc<Pacer<Ec2Lookup>>,
}

impl BatchingLookup {
    /// Paces `lookup`'s calls with the default bucket (20 calls per second, burst 100).
    #[must_use]
    pub fn new(lookup: Ec2Lookup) -> Self {
        Self {
            pacer: Arc::new(Pacer::new(
                lookup.without_sdk_throttling_retries(),
                Pacing::default(),
                None,
            )),
        }
    }

    /// A builder for other rates, bursts and limits, and an observer.
    pub fn builder(lookup: Ec2Lookup) -> BatchingLookupBuilder {
        BatchingLookupBuilder {
            lookup,
            pacing: Pacing::default(),
            observer: None,
        }
    }

    /// How many `DescribeInstances` calls this lookup has made, retries included (for metrics
    /// and tests).
    #[must_use]
    pub fn describe_calls(&self) -> u64 {
        self.pacer.calls.load(Ordering::Relaxed)
    }

    /// The lookup it paces, with its own caches and counters
    /// ([`Ec2Lookup::profile_calls`], [`Ec2Lookup::organizations_calls`]): the IAM and
    /// Organizations calls that `aws_iam_role_arns` and organization rules add, unpaced here.
    #[must_use]
    pub fn lookup(&self) -> &Ec2Lookup {
        &self.pacer.describe
    }
}

impl InstanceLookup for BatchingLookup {
    type Error = Arc<Ec2LookupError>;

    /// Describes the instance, in one call with the other queries waiting with it.
    ///
    /// # Errors
    /// The call's [`Ec2LookupError`] (shared by every query of the call), or
    /// [`Ec2LookupError::Overloaded`] when too many queries wait or this one waited too long.
    async fn describe_instance(&self, query: &InstanceQuery) -> Answer {
        let facts = Pacer::describe(&self.pacer, query).await?;
        // The instance role and organization, per query (cached, not paced as EC2 is).
        self.pacer
            .describe
            .complete(query, facts)
            .await
            .map_err(Arc::new)
    }
}

/// Builds a [`BatchingLookup`]; see there for what each setting does.
#[must_use]
pub struct BatchingLookupBuilder {
    lookup: Ec2Lookup,
    pacing: Pacing,
    observer: Option<Observer>,
}

impl BatchingLookupBuilder {
    /// The bucket's refill, in calls per second (default [`DEFAULT_RATE`]); divide EC2's rate
    /// among the processes that share an account.
    pub fn rate(mut self, calls_per_second: f64) -> Self {
        self.pacing.rate = calls_per_second;
        self
    }

    /// The bucket's size, in calls (default [`DEFAULT_BURST`]).
    pub fn burst(mut self, calls: u32) -> Self {
        self.pacing.burst = calls;
        self
    }

    /// The most ids per call (default and at most [`MAX_BATCH`]); 1 sends one call per
    /// instance, still paced.
    pub fn max_batch(mut self, ids: usize) -> Self {
        self.pacing.max_batch = ids;
        self
    }

    /// The most queries waiting for a call per batch key (default [`DEFAULT_MAX_WAITING`]).
    pub fn max_waiting(mut self, queries: usize) -> Self {
        self.pacing.max_waiting = queries;
        self
    }

    /// Calls `observer` on each call and each query's wait (for metrics). It runs on the
    /// lookup's tasks: keep it short, and do not call the lookup from it.
    pub fn observer(mut self, observer: impl Fn(PacingEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// The lookup.
    ///
    /// # Errors
    /// [`ConfigError::InvalidPacing`] for a rate that is not above 0 and at most 10,000, a
    /// burst not from 1 to 10,000, a batch size not from 1 to [`MAX_BATCH`], or no room to
    /// wait.
    pub fn build(self) -> Result<BatchingLookup, ConfigError> {
        self.pacing.check()?;
        Ok(BatchingLookup {
            pacer: Arc::new(Pacer::new(
                self.lookup.without_sdk_throttling_retries(),
                self.pacing,
                self.observer,
            )),
        })
    }
}

impl fmt::Debug for BatchingLookupBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchingLookupBuilder")
            .field("lookup", &self.lookup)
            .field("pacing", &self.pacing)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// The settings of a pacer.
#[derive(Clone, Debug)]
struct Pacing {
    rate: f64,
    burst: u32,
    max_batch: usize,
    max_waiting: usize,
    max_wait: Duration,
    throttle_deadline: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            rate: DEFAULT_RATE,
            burst: DEFAULT_BURST,
            max_batch: MAX_BATCH,
            max_waiting: DEFAULT_MAX_WAITING,
            max_wait: MAX_WAIT,
            throttle_deadline: DEFAULT_THROTTLE_DEADLINE,
        }
    }
}

impl Pacing {
    fn check(&self) -> Result<(), ConfigError> {
        let reason = if !(self.rate > 0.0 && self.rate <= MAX_RATE) {
            "the rate must be above 0 and at most 10000 calls per second"
        } else if !(1..=10_000).contains(&self.burst) {
            "the burst must be from 1 to 10000 calls"
        } else if !(1..=MAX_BATCH).contains(&self.max_batch) {
            "the batch size must be from 1 to 200 ids"
        } else if self.max_waiting == 0 {
            "at least one query must be allowed to wait"
        } else {
            return Ok(());
        };
        Err(ConfigError::InvalidPacing { reason })
    }

    fn burst(&self) -> f64 {
        f64::from(self.burst)
    }

    /// The most calls in any one second: the larger of the burst and the rate.
    fn per_second(&self) -> f64 {
        self.burst().max(self.rate.ceil())
    }
}

/// The `DescribeInstances` a pacer makes: [`Ec2Lookup`]'s, or a fake in the unit tests.
trait Describe: fmt::Debug + Send + Sync + 'static {
    /// The facts of `ids` (in their order), in one call with the `instance-id` filter.
    fn describe_many(
        &self,
        query: &InstanceQuery,
        ids: &[InstanceId],
    ) -> impl Future<Output = Result<Vec<Option<InstanceFacts>>, Ec2LookupError>> + Send;
}

impl Describe for Ec2Lookup {
    fn describe_many(
        &self,
        query: &InstanceQuery,
        ids: &[InstanceId],
    ) -> impl Future<Output = Result<Vec<Option<InstanceFacts>>, Ec2LookupError>> + Send {
        Self::describe_many(self, query, ids)
    }
}

type Answer = Result<Option<InstanceFacts>, Arc<Ec2LookupError>>;

/// The buckets, the queues and the call counter of a [`BatchingLookup`] and its clones.
struct Pacer<D> {
    describe: D,
    pacing: Pacing,
    observer: Option<Observer>,
    state: Mutex<State>,
    /// Woken when a call ends, for the dispatchers waiting for a call slot.
    call_ended: Notify,
    calls: AtomicU64,
}

impl<D: fmt::Debug> fmt::Debug for Pacer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pacer")
            .field("describe", &self.describe)
            .field("pacing", &self.pacing)
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<BucketKey, Bucket>,
    queues: HashMap<BatchKey, Queue>,
    /// The calls in flight, by batch key (none: absent).
    in_flight: HashMap<BatchKey, usize>,
    /// Numbers the waiters, so that a cancelled one finds itself.
    next_waiter: u64,
}

/// Queries that share a bucket: EC2's is per account and region, and the role decides the
/// account of the credentials.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
struct BucketKey {
    partition: ec2_iid::ids::Partition,
    region: ec2_iid::ids::Region,
    role_arn: Option<ec2_iid::ids::RoleArn>,
}

/// Queries that may share a call: the same credentials, account and endpoint.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
struct BatchKey {
    bucket: BucketKey,
    account: ec2_iid::ids::AccountId,
}

impl BatchKey {
    fn of(query: &InstanceQuery) -> Self {
        Self {
            bucket: BucketKey {
                partition: query.partition,
                region: query.region.clone(),
                role_arn: query.role_arn.clone(),
            },
            account: query.account.clone(),
        }
    }
}

/// The queries of one batch key waiting for a call.
#[derive(Debug)]
struct Queue {
    /// A query of the key, for the call's partition, region and role.
    query: InstanceQuery,
    /// The waiting ids, first come first.
    order: VecDeque<InstanceId>,
    waiting: HashMap<InstanceId, Vec<Waiter>>,
    /// All waiters, identical ids counted each.
    waiters: usize,
}

#[derive(Debug)]
struct Waiter {
    number: u64,
    since: Instant,
    sender: oneshot::Sender<Answer>,
}

/// The ids of one call and who waits for each.
type Batch = Vec<(InstanceId, Vec<Waiter>)>;

impl Queue {
    fn new(query: &InstanceQuery) -> Self {
        Self {
            query: query.clone(),
            order: VecDeque::new(),
            waiting: HashMap::new(),
            waiters: 0,
        }
    }

    /// Takes the first `max` waiting ids.
    fn take(&mut self, max: usize) -> Batch {
        let mut batch = Vec::new();
        while batch.len() < max {
            let Some(id) = self.order.pop_front() else {
                break;
            };
            if let Some(waiters) = self.waiting.remove(&id) {
                self.waiters = self.waiters.saturating_sub(waiters.len());
                batch.push((id, waiters));
            }
        }
        batch
    }

    /// Removes waiter `number` of `id`, if it still waits.
    fn cancel(&mut self, id: &InstanceId, number: u64) {
        let Some(waiters) = self.waiting.get_mut(id) else {
            return;
        };
        let before = waiters.len();
        waiters.retain(|w| w.number != number);
        self.waiters = self.waiters.saturating_sub(before - waiters.len());
        if waiters.is_empty() {
            self.waiting.remove(id);
            self.order.retain(|waiting| waiting != id);
        }
    }
}

/// What a dispatcher does next.
enum Step {
    Call(InstanceQuery, Batch),
    Sleep(Duration),
    /// [`MAX_IN_FLIGHT`] calls are out: wait for one to end.
    WaitForCall,
    Done,
}

impl<D: Describe> Pacer<D> {
    fn new(describe: D, pacing: Pacing, observer: Option<Observer>) -> Self {
        Self {
            describe,
            pacing,
            observer,
            state: Mutex::new(State::default()),
            call_ended: Notify::new(),
            calls: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole, so a panic elsewhere cannot poison it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn observe(&self, event: PacingEvent) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }

    /// Queues the query, starting its key's dispatcher if none runs, and waits for the answer.
    async fn describe(this: &Arc<Self>, query: &InstanceQuery) -> Answer {
        let key = BatchKey::of(query);
        let (receiver, number, start) = {
            let mut state = this.state();
            let number = state.next_waiter;
            state.next_waiter = number.wrapping_add(1);
            let mut start = false;
            let queue = state.queues.entry(key.clone()).or_insert_with(|| {
                start = true;
                Queue::new(query)
            });
            if queue.waiters >= this.pacing.max_waiting {
                return Err(Arc::new(Ec2LookupError::Overloaded {
                    operation: Operation::DescribeInstances,
                    reason: "too many queries wait for a call",
                }));
            }
            let (sender, receiver) = oneshot::channel();
            let waiters = queue.waiting.entry(query.instance_id.clone()).or_default();
            if waiters.is_empty() {
                queue.order.push_back(query.instance_id.clone());
            }
            waiters.push(Waiter {
                number,
                since: Instant::now(),
                sender,
            });
            queue.waiters += 1;
            (receiver, number, start)
        };
        // A queue exists exactly while its dispatcher runs.
        if start {
            tokio::spawn(Arc::clone(this).dispatch(key.clone()).in_current_span());
        }
        let _cancel = Cancel {
            pacer: this,
            key: &key,
            id: &query.instance_id,
            number,
        };
        match tokio::time::timeout(this.pacing.max_wait, receiver).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(Arc::new(Ec2LookupError::Overloaded {
                operation: Operation::DescribeInstances,
                reason: "the call was abandoned",
            })),
            Err(_) => Err(Arc::new(Ec2LookupError::Overloaded {
                operation: Operation::DescribeInstances,
                reason: "no call within 30 s",
            })),
        }
    }

    /// Sends the key's waiting ids as tokens come free, until none wait.
    async fn dispatch(self: Arc<Self>, key: BatchKey) {
        loop {
            // Listening before looking: a call that ends after the look wakes this.
            let call_ended = self.call_ended.notified();
            let mut call_ended = core::pin::pin!(call_ended);
            call_ended.as_mut().enable();
            match self.next_step(&key) {
                Step::Done => return,
                Step::Sleep(pause) => tokio::time::sleep(pause).await,
                Step::WaitForCall => call_ended.await,
                Step::Call(query, batch) => {
                    let slot = InFlight {
                        pacer: Arc::clone(&self),
                        key: key.clone(),
                    };
                    let span = tracing::info_span!("batch", instances = batch.len());
                    tokio::spawn(slot.call(query, batch).instrument(span));
                }
            }
        }
    }

    fn next_step(&self, key: &BatchKey) -> Step {
        let now = Instant::now();
        let mut state = self.state();
        let State {
            buckets,
            queues,
            in_flight,
            ..
        } = &mut *state;
        let Some(queue) = queues.get_mut(key) else {
            return Step::Done;
        };
        if queue.waiting.is_empty() {
            queues.remove(key);
            return Step::Done;
        }
        let calls_out = in_flight.entry(key.clone()).or_default();
        if *calls_out >= MAX_IN_FLIGHT {
            return Step::WaitForCall;
        }
        let bucket = buckets
            .entry(key.bucket.clone())
            .or_insert_with(|| Bucket::new(&self.pacing, now));
        if let Err(pause) = bucket.take(&self.pacing, now) {
            return Step::Sleep(pause);
        }
        *calls_out += 1;
        let batch = queue.take(self.pacing.max_batch);
        let query = queue.query.clone();
        drop(state);
        for (_, waiters) in &batch {
            for waiter in waiters {
                self.observe(PacingEvent::Waited(
                    now.saturating_duration_since(waiter.since),
                ));
            }
        }
        Step::Call(query, batch)
    }

    /// Makes the batch's call (its token taken) and answers its waiters.
    async fn call(&self, query: InstanceQuery, batch: Batch) {
        let ids: Vec<InstanceId> = batch.iter().map(|(id, _)| id.clone()).collect();
        let answers = self.call_with_retries(&query, &ids).await;
        for (index, (_, waiters)) in batch.into_iter().enumerate() {
            let answer = match &answers {
                Ok(facts) => Ok(facts.get(index).cloned().flatten()),
                Err(e) => Err(Arc::clone(e)),
            };
            for waiter in waiters {
                // A waiter that went away does not need its answer.
                let _ = waiter.sender.send(answer.clone());
            }
        }
    }

    /// One `DescribeInstances` for `ids`; while throttled, the bucket slows down and the call
    /// is retried after a jittered pause and a token, within the throttle deadline.
    async fn call_with_retries(
        &self,
        query: &InstanceQuery,
        ids: &[InstanceId],
    ) -> Result<Vec<Option<InstanceFacts>>, Arc<Ec2LookupError>> {
        let started = Instant::now();
        let deadline = started + self.pacing.throttle_deadline;
        let bucket = BatchKey::of(query).bucket;
        let mut backoff = Duration::from_millis(50);
        loop {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.observe(PacingEvent::Call { ids: ids.len() });
            let e = match self.describe.describe_many(query, ids).await {
                Err(e @ Ec2LookupError::Throttled { .. }) => e,
                other => return other.map_err(Arc::new),
            };
            self.throttled(&bucket);
            let mut resume = Instant::now() + jitter(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(1));
            loop {
                if resume > deadline {
                    return Err(Arc::new(e));
                }
                tokio::time::sleep_until(resume).await;
                match self.take_token(&bucket) {
                    Ok(()) => break,
                    Err(pause) => resume = Instant::now() + pause,
                }
            }
        }
    }

    fn throttled(&self, bucket: &BucketKey) {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(bucket) = state.buckets.get_mut(bucket) {
            bucket.throttled(&self.pacing, now);
            tracing::warn!(
                rate = bucket.rate(),
                "DescribeInstances throttled: slowing down"
            );
        }
    }

    fn take_token(&self, bucket: &BucketKey) -> Result<(), Duration> {
        let now = Instant::now();
        let mut state = self.state();
        state
            .buckets
            .entry(bucket.clone())
            .or_insert_with(|| Bucket::new(&self.pacing, now))
            .take(&self.pacing, now)
    }
}

/// A call slot of a batch key ([`MAX_IN_FLIGHT`]), freed when its call ends.
struct InFlight<D: Describe> {
    pacer: Arc<Pacer<D>>,
    key: BatchKey,
}

impl<D: Describe> InFlight<D> {
    async fn call(self, query: InstanceQuery, batch: Batch) {
        self.pacer.call(query, batch).await;
    }
}

impl<D: Describe> Drop for InFlight<D> {
    fn drop(&mut self) {
        {
            let mut state = self.pacer.state();
            if let Some(calls_out) = state.in_flight.get_mut(&self.key) {
                *calls_out = calls_out.saturating_sub(1);
                if *calls_out == 0 {
                    state.in_flight.remove(&self.key);
                }
            }
        }
        self.pacer.call_ended.notify_waiters();
    }
}

/// Removes a waiter from its queue when its caller stops waiting (answered, timed out or
/// dropped); a no-op once its call took it.
struct Cancel<'a, D> {
    pacer: &'a Pacer<D>,
    key: &'a BatchKey,
    id: &'a InstanceId,
    number: u64,
}

impl<D> Drop for Cancel<'_, D> {
    fn drop(&mut self) {
        let mut state = self
            .pacer
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(queue) = state.queues.get_mut(self.key) {
            queue.cancel(self.id, self.number);
        }
    }
}

/// A pause of up to `backoff` (full jitter), from the clock's low bits: retries of many
/// servers must not fall in step; this needs no cryptographic randomness.
fn jitter(backoff: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = u64::from(nanos) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let millis = u64::try_from(backoff.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(x % millis + 1)
}

#[cfg(test)]
mod tests;
