//! A token bucket of one (partition, region, role): EC2's refill and burst, a sliding window
//! that keeps any second within the limit, and a rate that halves when EC2 throttles.

use std::collections::VecDeque;

use core::time::Duration;

use tokio::time::Instant;

use super::{MIN_RATE_SHARE, MIN_SLEEP, Pacing, RECOVERY_SECS, WINDOW};

/// One (partition, region, role)'s tokens.
#[derive(Debug)]
pub(super) struct Bucket {
    tokens: f64,
    /// The refill now: the configured rate, or less after throttling.
    rate: f64,
    updated: Instant,
    /// When the calls of the last [`WINDOW`] went out, oldest first.
    recent: VecDeque<Instant>,
}

impl Bucket {
    pub(super) fn new(pacing: &Pacing, now: Instant) -> Self {
        Self {
            tokens: pacing.burst(),
            rate: pacing.rate,
            updated: now,
            recent: VecDeque::new(),
        }
    }

    /// Takes a token for a call at `now`, or says how long until one may be free.
    pub(super) fn take(&mut self, pacing: &Pacing, now: Instant) -> Result<(), Duration> {
        self.refill(pacing, now);
        while self
            .recent
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= WINDOW)
        {
            self.recent.pop_front();
        }
        let in_last_second = f64::from(u32::try_from(self.recent.len()).unwrap_or(u32::MAX));
        let second_full = in_last_second >= pacing.per_second();
        if self.tokens >= 1.0 && !second_full {
            self.tokens -= 1.0;
            self.recent.push_back(now);
            return Ok(());
        }
        let for_token = Duration::try_from_secs_f64((1.0 - self.tokens).max(0.0) / self.rate)
            .unwrap_or(Duration::from_secs(1));
        let for_second = match self.recent.front() {
            Some(&oldest) if second_full => (oldest + WINDOW).saturating_duration_since(now),
            _ => Duration::ZERO,
        };
        Err(for_token.max(for_second).max(MIN_SLEEP))
    }

    fn refill(&mut self, pacing: &Pacing, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.rate = (self.rate + pacing.rate * elapsed / RECOVERY_SECS).min(pacing.rate);
        self.tokens = (self.tokens + elapsed * self.rate).min(pacing.burst());
        self.updated = now;
    }

    /// The refill now, in calls per second.
    pub(super) fn rate(&self) -> f64 {
        self.rate
    }

    /// EC2 throttled a call: its bucket is empty, and ours was too generous.
    pub(super) fn throttled(&mut self, pacing: &Pacing, now: Instant) {
        self.refill(pacing, now);
        self.rate = (self.rate / 2.0).max(pacing.rate * MIN_RATE_SHARE);
        self.tokens = self.tokens.min(0.0);
    }
}
