//! The `ec2_iid_enrolled_hosts` gauge, counted in the background every
//! `--enrolled-hosts-refresh`, never per scrape: a count reads every record (on DynamoDB a
//! whole-table scan), so `/metrics` shows the last count and never waits for or fails with one.

use core::fmt::Display;
use core::future::Future;
use core::time::Duration;
use std::sync::Arc;

use ec2_iid::EnrollmentRegistry as _;
use tokio::time::MissedTickBehavior;

use super::app::App;
use super::metrics::EnrolledHosts;

/// Counts `app`'s enrolled hosts every `every`, for as long as the server runs.
pub(crate) async fn refresh(app: Arc<App>, every: Duration) {
    refresh_every(every, &app.metrics.enrolled, || {
        app.registry.count_enrolled()
    })
    .await;
}

/// Runs `count` at once, then every `every`, one at a time: each within `every` (then it is
/// dropped), so that a slow registry never has two counts running. A count that fails or
/// times out is counted and logged, and the gauge keeps its last value.
async fn refresh_every<F, Fut, E>(every: Duration, gauge: &EnrolledHosts, count: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u64, E>>,
    E: Display,
{
    let mut ticks = tokio::time::interval(every);
    // After a slow count, the next one waits a whole interval rather than running at once.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match tokio::time::timeout(every, count()).await {
            Ok(Ok(enrolled)) => gauge.set(enrolled),
            Ok(Err(e)) => {
                gauge.failed();
                tracing::warn!(
                    "counting the enrolled hosts failed (ec2_iid_enrolled_hosts keeps its last \
                     value): {e}"
                );
            }
            Err(_) => {
                gauge.failed();
                tracing::warn!(
                    "counting the enrolled hosts took over {every:?} and was dropped \
                     (ec2_iid_enrolled_hosts keeps its last value; a larger \
                     --enrolled-hosts-refresh gives it longer)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::time::Instant;

    use super::*;

    type Counted = Pin<Box<dyn Future<Output = Result<u64, &'static str>> + Send>>;

    /// What each count does, in turn.
    enum Step {
        Answer(u64),
        Fail,
        Hang,
    }

    /// One count running, until dropped (also by the timeout).
    struct Running(Arc<AtomicUsize>);

    impl Running {
        fn enter(running: Arc<AtomicUsize>, most: &AtomicUsize) -> Self {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            Self(running)
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn counts_one_at_a_time_and_keep_the_last_value_on_failure() {
        const EVERY: Duration = Duration::from_secs(60);
        let gauge = Arc::new(EnrolledHosts::default());
        let steps = Arc::new(Mutex::new(VecDeque::from([
            Step::Answer(3),
            Step::Fail,
            Step::Hang,
            Step::Answer(5),
        ])));
        let running = Arc::new(AtomicUsize::new(0));
        let most_running = Arc::new(AtomicUsize::new(0));
        let starts = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let task = tokio::spawn({
            let (gauge, steps) = (Arc::clone(&gauge), Arc::clone(&steps));
            let (running, most_running) = (Arc::clone(&running), Arc::clone(&most_running));
            let starts = Arc::clone(&starts);
            async move {
                refresh_every(EVERY, &gauge, || -> Counted {
                    starts.lock().unwrap().push(started.elapsed());
                    let step = steps.lock().unwrap().pop_front().unwrap_or(Step::Hang);
                    let (running, most_running) = (Arc::clone(&running), Arc::clone(&most_running));
                    Box::pin(async move {
                        let _running = Running::enter(running, &most_running);
                        match step {
                            Step::Answer(n) => Ok(n),
                            Step::Fail => Err("database down"),
                            Step::Hang => std::future::pending().await,
                        }
                    })
                })
                .await;
            }
        });

        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!((gauge.value(), gauge.failures()), (Some(3), 0), "at once");
        tokio::time::sleep(EVERY).await;
        assert_eq!((gauge.value(), gauge.failures()), (Some(3), 1), "kept");
        // The third count hangs: dropped after EVERY, then the fourth runs.
        tokio::time::sleep(EVERY * 3).await;
        assert_eq!((gauge.value(), gauge.failures()), (Some(5), 2));
        task.abort();

        let starts = starts.lock().unwrap().clone();
        let secs: Vec<u64> = starts.iter().map(Duration::as_secs).collect();
        assert_eq!(secs[..4], [0, 60, 120, 180], "the hang ends by its timeout");
        assert_eq!(
            most_running.load(Ordering::SeqCst),
            1,
            "never two counts at once"
        );
    }
}
