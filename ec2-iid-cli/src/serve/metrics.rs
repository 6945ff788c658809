//! `GET /metrics`: join counts by outcome and a latency histogram, in the Prometheus text
//! format (version 0.0.4), written by hand: three metric families need no client library.

use core::fmt::Write as _;
use core::time::Duration;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The histogram's upper bounds, in seconds (`le`), Prometheus's default buckets: a join
/// takes milliseconds (a batch window, one DescribeInstances) up to the timeout.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `Content-Type` of the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the server counts.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// `ec2_iid_joins_total` by outcome (`joined`, an error kind, `lookup_unavailable`, ...).
    joins: Mutex<BTreeMap<&'static str, u64>>,
    /// `ec2_iid_join_duration_seconds`: one count per bucket (not cumulative), then +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// The sum of the durations, in microseconds.
    sum_micros: AtomicU64,
    /// The connections and the TLS certificate (`ListenerMetrics`).
    pub(crate) listener: Arc<ListenerMetrics>,
}

impl Metrics {
    /// Records one answered `POST /join`.
    pub(crate) fn record(&self, outcome: &'static str, took: Duration) {
        *self
            .joins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(outcome)
            .or_default() += 1;
        let secs = took.as_secs_f64();
        let index = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The exposition, with `describe_calls` from the lookup's counter.
    pub(crate) fn render(&self, describe_calls: u64) -> String {
        let mut text = String::new();
        self.render_joins(&mut text);
        let _ = writeln!(
            text,
            "# HELP ec2_iid_describe_instances_calls_total DescribeInstances requests sent.\n\
             # TYPE ec2_iid_describe_instances_calls_total counter\n\
             ec2_iid_describe_instances_calls_total {describe_calls}"
        );
        self.render_histogram(&mut text);
        self.listener.render(&mut text);
        text
    }

    fn render_joins(&self, text: &mut String) {
        let _ = writeln!(
            text,
            "# HELP ec2_iid_joins_total Join requests answered, by outcome.\n\
             # TYPE ec2_iid_joins_total counter"
        );
        let joins = self.joins.lock().unwrap_or_else(PoisonError::into_inner);
        for (outcome, count) in joins.iter() {
            let _ = writeln!(text, "ec2_iid_joins_total{{outcome=\"{outcome}\"}} {count}");
        }
    }

    fn render_histogram(&self, text: &mut String) {
        let _ = writeln!(
            text,
            "# HELP ec2_iid_join_duration_seconds Time to answer a join request.\n\
             # TYPE ec2_iid_join_duration_seconds histogram"
        );
        let mut cumulative = 0;
        let bounds = BUCKETS.iter().map(|le| le.to_string());
        for (le, bucket) in bounds.chain([String::from("+Inf")]).zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                text,
                "ec2_iid_join_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let micros = self.sum_micros.load(Ordering::Relaxed);
        let sum = Duration::from_micros(micros).as_secs_f64();
        let _ = writeln!(
            text,
            "ec2_iid_join_duration_seconds_sum {sum}\nec2_iid_join_duration_seconds_count {cumulative}"
        );
    }
}

// ---- The listener: connections and the TLS certificate (serve/listener.rs, serve/tls.rs). ----

/// What the listener counts.
#[derive(Debug, Default)]
pub(crate) struct ListenerMetrics {
    /// `ec2_iid_open_connections`.
    open: AtomicU64,
    /// `ec2_iid_connections_shed_total`: idle connections closed to make room at the cap.
    shed: AtomicU64,
    /// `ec2_iid_connections_refused_total`: new connections closed at the cap, none idle.
    refused: AtomicU64,
    /// `ec2_iid_tls_reloads_total{result="ok"}`.
    reloads_ok: AtomicU64,
    /// `ec2_iid_tls_reloads_total{result="error"}`: the old certificate kept.
    reloads_failed: AtomicU64,
}

impl ListenerMetrics {
    pub(crate) fn connection_opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn tls_reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Open, shed and refused connections.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        (load(&self.open), load(&self.shed), load(&self.refused))
    }

    fn render(&self, text: &mut String) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let _ = writeln!(
            text,
            "# HELP ec2_iid_open_connections Client connections open.\n\
             # TYPE ec2_iid_open_connections gauge\n\
             ec2_iid_open_connections {}\n\
             # HELP ec2_iid_connections_shed_total Idle connections closed to make room at --max-connections.\n\
             # TYPE ec2_iid_connections_shed_total counter\n\
             ec2_iid_connections_shed_total {}\n\
             # HELP ec2_iid_connections_refused_total New connections closed at --max-connections, none idle.\n\
             # TYPE ec2_iid_connections_refused_total counter\n\
             ec2_iid_connections_refused_total {}\n\
             # HELP ec2_iid_tls_reloads_total Certificate reloads on SIGHUP, by result (error: the old one kept).\n\
             # TYPE ec2_iid_tls_reloads_total counter\n\
             ec2_iid_tls_reloads_total{{result=\"error\"}} {}\n\
             ec2_iid_tls_reloads_total{{result=\"ok\"}} {}",
            load(&self.open),
            load(&self.shed),
            load(&self.refused),
            load(&self.reloads_failed),
            load(&self.reloads_ok),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition() {
        let metrics = Metrics::default();
        metrics.record("joined", Duration::from_millis(3));
        metrics.record("joined", Duration::from_millis(30));
        metrics.record("already_joined", Duration::from_secs(20));
        let text = metrics.render(7);
        let expected = "\
# HELP ec2_iid_joins_total Join requests answered, by outcome.
# TYPE ec2_iid_joins_total counter
ec2_iid_joins_total{outcome=\"already_joined\"} 1
ec2_iid_joins_total{outcome=\"joined\"} 2
# HELP ec2_iid_describe_instances_calls_total DescribeInstances requests sent.
# TYPE ec2_iid_describe_instances_calls_total counter
ec2_iid_describe_instances_calls_total 7
# HELP ec2_iid_join_duration_seconds Time to answer a join request.
# TYPE ec2_iid_join_duration_seconds histogram
ec2_iid_join_duration_seconds_bucket{le=\"0.005\"} 1
ec2_iid_join_duration_seconds_bucket{le=\"0.01\"} 1
ec2_iid_join_duration_seconds_bucket{le=\"0.025\"} 1
ec2_iid_join_duration_seconds_bucket{le=\"0.05\"} 2
ec2_iid_join_duration_seconds_bucket{le=\"0.1\"} 2
ec2_iid_join_duration_seconds_bucket{le=\"0.25\"} 2
ec2_iid_join_duration_seconds_bucket{le=\"0.5\"} 2
ec2_iid_join_duration_seconds_bucket{le=\"1\"} 2
ec2_iid_join_duration_seconds_bucket{le=\"2.5\"} 2
ec2_iid_join_duration_seconds_bucket{le=\"5\"} 2
ec2_iid_join_duration_seconds_bucket{le=\"10\"} 2
ec2_iid_join_duration_seconds_bucket{le=\"+Inf\"} 3
ec2_iid_join_duration_seconds_sum 20.033
ec2_iid_join_duration_seconds_count 3
# HELP ec2_iid_open_connections Client connections open.
# TYPE ec2_iid_open_connections gauge
ec2_iid_open_connections 0
# HELP ec2_iid_connections_shed_total Idle connections closed to make room at --max-connections.
# TYPE ec2_iid_connections_shed_total counter
ec2_iid_connections_shed_total 0
# HELP ec2_iid_connections_refused_total New connections closed at --max-connections, none idle.
# TYPE ec2_iid_connections_refused_total counter
ec2_iid_connections_refused_total 0
# HELP ec2_iid_tls_reloads_total Certificate reloads on SIGHUP, by result (error: the old one kept).
# TYPE ec2_iid_tls_reloads_total counter
ec2_iid_tls_reloads_total{result=\"error\"} 0
ec2_iid_tls_reloads_total{result=\"ok\"} 0
";
        assert_eq!(text, expected);
    }
}
