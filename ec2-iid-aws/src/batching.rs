//! [`BatchingLookup`]: many joins at once, few `DescribeInstances` calls.
//!
//! EC2 throttles describe calls per account and region (a token bucket of roughly 100 calls and
//! 20 per second), so an autoscaling burst of a thousand instances must not make a thousand
//! calls. Queries that arrive within a short window for the same partition, region, account and
//! role go out as one call with the `instance-id` filter (at most 200 ids), and identical
//! queries in flight share it.

use core::time::Duration;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use aws_smithy_async::rt::sleep::{AsyncSleep, SharedAsyncSleep, default_async_sleep};
use ec2_iid::{InstanceFacts, InstanceId, InstanceLookup, InstanceQuery};
use tokio::sync::oneshot;
use tracing::Instrument as _;

use crate::error::Ec2LookupError;
use crate::lookup::Ec2Lookup;

/// How long the first query of a batch waits for others by default.
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_millis(10);

/// The most instance ids one `DescribeInstances` filter takes (EC2's limit for filter values).
pub const MAX_BATCH: usize = 200;

/// How long throttled batch calls are retried (with jittered backoff) before the callers see
/// the throttling error, which is transient: they may try again later.
pub const DEFAULT_THROTTLE_DEADLINE: Duration = Duration::from_secs(5);

/// An [`InstanceLookup`] that coalesces concurrent queries into few `DescribeInstances` calls.
///
/// Wraps an [`Ec2Lookup`]. Each caller gets its own instance's facts, or `None` when EC2 does
/// not know it; nothing is cached beyond the call. Cheap to clone (the batches are shared).
///
/// ```no_run
/// # async fn run() {
/// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let lookup = ec2_iid_aws::BatchingLookup::new(ec2_iid_aws::Ec2Lookup::new(&config));
/// assert_eq!(lookup.describe_calls(), 0);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BatchingLookup {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    lookup: Ec2Lookup,
    window: Duration,
    throttle_deadline: Duration,
    sleep: Option<SharedAsyncSleep>,
    open: Mutex<HashMap<BatchKey, Arc<Mutex<Batch>>>>,
    calls: AtomicU64,
}

/// Queries that may share a call: the same credentials, account and endpoint.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
struct BatchKey {
    partition: ec2_iid::Partition,
    region: ec2_iid::Region,
    account: ec2_iid::AccountId,
    role_arn: Option<ec2_iid::RoleArn>,
}

type Answer = Result<Option<InstanceFacts>, Arc<Ec2LookupError>>;

/// The queries waiting for one call, by instance.
#[derive(Debug, Default)]
struct Batch {
    waiting: HashMap<InstanceId, Vec<oneshot::Sender<Answer>>>,
    /// Set when the call starts: later queries open a new batch.
    closed: bool,
}

impl BatchingLookup {
    /// Coalesces `lookup`'s queries with the default window (10 ms).
    #[must_use]
    pub fn new(lookup: Ec2Lookup) -> Self {
        Self::with_window(lookup, DEFAULT_BATCH_WINDOW)
    }

    /// Coalesces `lookup`'s queries arriving within `window` of a batch's first query.
    #[must_use]
    pub fn with_window(lookup: Ec2Lookup, window: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                lookup,
                window,
                throttle_deadline: DEFAULT_THROTTLE_DEADLINE,
                sleep: default_async_sleep(),
                open: Mutex::new(HashMap::new()),
                calls: AtomicU64::new(0),
            }),
        }
    }

    /// How many `DescribeInstances` calls this lookup has made (for metrics and tests).
    #[must_use]
    pub fn describe_calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// The batch window.
    #[must_use]
    pub fn window(&self) -> Duration {
        self.inner.window
    }

    fn open(&self) -> MutexGuard<'_, HashMap<BatchKey, Arc<Mutex<Batch>>>> {
        self.inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the open batch for `key` (the receiver gets the answer), or opens one: then the
    /// caller leads it (`None`), waiting out the window and making the call.
    fn enlist(&self, key: &BatchKey, id: &InstanceId) -> Enlisted {
        let mut open = self.open();
        if let Some(batch) = open.get(key) {
            let mut guard = lock(batch);
            let full = guard.waiting.len() >= MAX_BATCH && !guard.waiting.contains_key(id);
            if !guard.closed && !full {
                let (sender, receiver) = oneshot::channel();
                guard.waiting.entry(id.clone()).or_default().push(sender);
                return Enlisted::Follower(receiver);
            }
        }
        let batch = Arc::new(Mutex::new(Batch::default()));
        open.insert(key.clone(), Arc::clone(&batch));
        Enlisted::Leader(batch)
    }

    /// Leads a batch: waits for the window, closes it and answers every query in it.
    async fn lead(&self, key: BatchKey, batch: Arc<Mutex<Batch>>, query: &InstanceQuery) -> Answer {
        // Whatever happens to this future, the followers are answered or released.
        let mut guard = LeaderGuard {
            lookup: self,
            key: &key,
            batch: &batch,
        };
        if let Some(sleep) = &self.inner.sleep {
            sleep.sleep(self.inner.window).await;
        }
        let waiting = guard.close();
        let mut ids: Vec<InstanceId> = waiting.iter().map(|(id, _)| id.clone()).collect();
        if !ids.contains(&query.instance_id) {
            ids.push(query.instance_id.clone());
        }
        let span = tracing::info_span!("batch", instances = ids.len());
        let answers = self.call(query, &ids).instrument(span).await;
        let answer_for = |index: usize| match &answers {
            Ok(facts) => Ok(facts.get(index).cloned().flatten()),
            Err(e) => Err(Arc::clone(e)),
        };
        for (index, (_, senders)) in waiting.into_iter().enumerate() {
            for sender in senders {
                // A follower that went away does not need its answer.
                let _ = sender.send(answer_for(index));
            }
        }
        drop(guard);
        let own = ids.iter().position(|id| *id == query.instance_id);
        own.map_or(Ok(None), answer_for)
    }

    /// One `DescribeInstances` for `ids`, retried with jittered backoff while throttled.
    async fn call(
        &self,
        query: &InstanceQuery,
        ids: &[InstanceId],
    ) -> Result<Vec<Option<InstanceFacts>>, Arc<Ec2LookupError>> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            self.inner.calls.fetch_add(1, Ordering::Relaxed);
            match self.inner.lookup.describe_many(query, ids).await {
                Ok(facts) => return Ok(facts),
                Err(e @ Ec2LookupError::Throttled { .. }) => {
                    let pause = jitter(backoff);
                    let sleep = self.inner.sleep.as_ref();
                    if started.elapsed() + pause > self.inner.throttle_deadline || sleep.is_none() {
                        return Err(Arc::new(e));
                    }
                    if let Some(sleep) = sleep {
                        sleep.sleep(pause).await;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(Arc::new(e)),
            }
        }
    }
}

enum Enlisted {
    Leader(Arc<Mutex<Batch>>),
    Follower(oneshot::Receiver<Answer>),
}

fn lock(batch: &Mutex<Batch>) -> MutexGuard<'_, Batch> {
    batch.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Closes the leader's batch when dropped, so that a cancelled leader releases its followers
/// (their receivers see the senders dropped and they look up on their own).
struct LeaderGuard<'a> {
    lookup: &'a BatchingLookup,
    key: &'a BatchKey,
    batch: &'a Arc<Mutex<Batch>>,
}

impl LeaderGuard<'_> {
    /// Closes the batch and takes its queries.
    fn close(&mut self) -> Vec<(InstanceId, Vec<oneshot::Sender<Answer>>)> {
        let mut open = self.lookup.open();
        if open
            .get(self.key)
            .is_some_and(|b| Arc::ptr_eq(b, self.batch))
        {
            open.remove(self.key);
        }
        let mut batch = lock(self.batch);
        batch.closed = true;
        core::mem::take(&mut batch.waiting).into_iter().collect()
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        drop(self.close());
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

impl InstanceLookup for BatchingLookup {
    type Error = Arc<Ec2LookupError>;

    /// Describes the instance, in one call with the other queries of its batch.
    ///
    /// # Errors
    /// The batch call's [`Ec2LookupError`] (shared by every query of the batch).
    async fn describe_instance(&self, query: &InstanceQuery) -> Answer {
        let key = BatchKey {
            partition: query.partition,
            region: query.region.clone(),
            account: query.account.clone(),
            role_arn: query.role_arn.clone(),
        };
        match self.enlist(&key, &query.instance_id) {
            Enlisted::Leader(batch) => self.lead(key, batch, query).await,
            Enlisted::Follower(receiver) => match receiver.await {
                Ok(answer) => answer,
                // The leader was cancelled before the call: look up alone.
                Err(_) => self
                    .inner
                    .lookup
                    .describe_instance(query)
                    .await
                    .map_err(Arc::new),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
