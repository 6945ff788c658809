//! `GET /metrics`: join counts by outcome, histograms (join latency, ids per DescribeInstances
//! call, lookup waits), the listener's gauges and counters and the enrolled hosts' gauge, in
//! the Prometheus text format (version 0.0.4), written by hand: a few families need no client
//! library.

use core::fmt::Write as _;
use core::time::Duration;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The histogram's upper bounds, in seconds (`le`), Prometheus's default buckets: a join
/// takes milliseconds (a batch window, one DescribeInstances) up to the timeout.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `Content-Type` of the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the server counts.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// `ec2_iid_joins_total` by outcome (`joined`, an error kind, `lookup_unavailable`, ...).
    joins: ByOutcome,
    /// `ec2_iid_join_duration_seconds`.
    durations: Histogram,
    /// The connections and the TLS certificate (`ListenerMetrics`).
    pub(crate) listener: Arc<ListenerMetrics>,
    /// `ec2_iid_certificates_issued_total{via="join"}`.
    issued_by_join: AtomicU64,
    /// `ec2_iid_renewals_total` by outcome (`renewed`, `evicted`, `not_enrolled`, ...); the
    /// `renewed` count is also `ec2_iid_certificates_issued_total{via="renew"}`.
    renewals: ByOutcome,
    /// `ec2_iid_enrolled_hosts`, set in the background (`serve/enrolled.rs`).
    pub(crate) enrolled: EnrolledHosts,
}

/// A counter family with an `outcome` label.
#[derive(Debug, Default)]
struct ByOutcome(Mutex<BTreeMap<&'static str, u64>>);

impl ByOutcome {
    fn add(&self, outcome: &'static str) {
        *self.counts().entry(outcome).or_default() += 1;
    }

    fn get(&self, outcome: &str) -> u64 {
        self.counts().get(outcome).copied().unwrap_or(0)
    }

    fn render(&self, text: &mut String, name: &str, help: &str) {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter");
        for (outcome, count) in self.counts().iter() {
            let _ = writeln!(text, "{name}{{outcome=\"{outcome}\"}} {count}");
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, u64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            joins: ByOutcome::default(),
            durations: Histogram::new(&BUCKETS),
            listener: Arc::default(),
            issued_by_join: AtomicU64::new(0),
            renewals: ByOutcome::default(),
            enrolled: EnrolledHosts::default(),
        }
    }
}

/// The AWS requests the lookup has sent, by API (each API has its own quota).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AwsCalls {
    pub(crate) describe_instances: u64,
    /// `iam:GetInstanceProfile`, for `aws_iam_role_arns` rules.
    pub(crate) get_instance_profile: u64,
    /// `ListAccounts` and `ListParents` pages, for organization rules.
    pub(crate) organizations: u64,
}

impl AwsCalls {
    fn render(self, text: &mut String) {
        for (name, help, value) in [
            (
                "ec2_iid_describe_instances_calls_total",
                "DescribeInstances requests sent.",
                self.describe_instances,
            ),
            (
                "ec2_iid_get_instance_profile_calls_total",
                "IAM GetInstanceProfile requests sent (aws_iam_role_arns rules).",
                self.get_instance_profile,
            ),
            (
                "ec2_iid_organizations_calls_total",
                "AWS Organizations ListAccounts and ListParents requests sent (organization rules).",
                self.organizations,
            ),
        ] {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
    }
}

impl Metrics {
    /// Records one answered `POST /join`.
    pub(crate) fn record(&self, outcome: &'static str, took: Duration) {
        self.joins.add(outcome);
        self.durations.observe(took.as_secs_f64(), took);
    }

    /// The exposition, with the AWS requests from the lookup's counters.
    pub(crate) fn render(&self, calls: AwsCalls) -> String {
        let mut text = String::new();
        self.joins.render(
            &mut text,
            "ec2_iid_joins_total",
            "Join requests answered, by outcome.",
        );
        calls.render(&mut text);
        self.durations.render(
            &mut text,
            "ec2_iid_join_duration_seconds",
            "Time to answer a join request.",
        );
        self.listener.render(&mut text);
        self.render_certificates(&mut text);
        self.enrolled.render(&mut text);
        text
    }

    /// Records one answered `POST /renew`.
    pub(crate) fn renewal(&self, outcome: &'static str) {
        self.renewals.add(outcome);
    }

    fn render_certificates(&self, text: &mut String) {
        let _ = writeln!(
            text,
            "# HELP ec2_iid_certificates_issued_total Certificates issued, by how they were asked for.\n\
             # TYPE ec2_iid_certificates_issued_total counter\n\
             ec2_iid_certificates_issued_total{{via=\"join\"}} {}\n\
             ec2_iid_certificates_issued_total{{via=\"renew\"}} {}",
            self.issued_by_join.load(Ordering::Relaxed),
            self.renewals.get("renewed"),
        );
        self.renewals.render(
            text,
            "ec2_iid_renewals_total",
            "Renewal requests answered, by outcome.",
        );
    }

    /// Counts a certificate issued to a join with a CSR.
    pub(crate) fn certificate_issued(&self) {
        self.issued_by_join.fetch_add(1, Ordering::Relaxed);
    }
}

/// `ec2_iid_enrolled_hosts`: the registry's last count of the hosts enrolled and not evicted,
/// absent until a count succeeds; and the counts that failed.
#[derive(Debug, Default)]
pub(crate) struct EnrolledHosts {
    count: AtomicU64,
    counted: AtomicBool,
    /// `ec2_iid_enrolled_hosts_refresh_failures_total`.
    failures: AtomicU64,
}

impl EnrolledHosts {
    /// A count that succeeded.
    pub(crate) fn set(&self, count: u64) {
        self.count.store(count, Ordering::Relaxed);
        self.counted.store(true, Ordering::Release);
    }

    /// A count that failed or timed out: the last value stays.
    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The last count, if one succeeded.
    #[cfg(test)]
    pub(crate) fn value(&self) -> Option<u64> {
        self.counted
            .load(Ordering::Acquire)
            .then(|| self.count.load(Ordering::Relaxed))
    }

    /// The failed counts.
    #[cfg(test)]
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn render(&self, text: &mut String) {
        let _ = writeln!(
            text,
            "# HELP ec2_iid_enrolled_hosts Hosts enrolled and not evicted (they may renew), as \
             the registry last counted them (every --enrolled-hosts-refresh; absent before).\n\
             # TYPE ec2_iid_enrolled_hosts gauge"
        );
        if self.counted.load(Ordering::Acquire) {
            let count = self.count.load(Ordering::Relaxed);
            let _ = writeln!(text, "ec2_iid_enrolled_hosts {count}");
        }
        let _ = writeln!(
            text,
            "# HELP ec2_iid_enrolled_hosts_refresh_failures_total Counts of the enrolled hosts \
             that failed or timed out (the gauge keeps its last value).\n\
             # TYPE ec2_iid_enrolled_hosts_refresh_failures_total counter\n\
             ec2_iid_enrolled_hosts_refresh_failures_total {}",
            self.failures.load(Ordering::Relaxed)
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

// DescribeInstances pacing: what `BatchingLookup`'s observer reports.

/// `ec2_iid_describe_instances_ids_per_call`'s upper bounds: one id (light load) up to
/// `MAX_BATCH` (200, calls paced at the bucket's rate).
const IDS_BUCKETS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 150.0, 200.0];

/// `ec2_iid_lookup_wait_seconds`'s upper bounds: zero while tokens are free, up to seconds
/// when a burst waits for the refill.
const WAIT_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The pacing histograms of the lookup.
#[derive(Debug)]
pub(crate) struct LookupMetrics {
    ids_per_call: Histogram,
    wait: Histogram,
}

impl Default for LookupMetrics {
    fn default() -> Self {
        Self {
            ids_per_call: Histogram::new(&IDS_BUCKETS),
            wait: Histogram::new(&WAIT_BUCKETS),
        }
    }
}

impl LookupMetrics {
    /// Records what the lookup reported.
    pub(crate) fn record(&self, event: ec2_iid_aws::PacingEvent) {
        match event {
            ec2_iid_aws::PacingEvent::Call { ids } => {
                let ids = u32::try_from(ids).unwrap_or(u32::MAX);
                self.ids_per_call
                    .observe(f64::from(ids), Duration::from_secs(u64::from(ids)));
            }
            ec2_iid_aws::PacingEvent::Waited(waited) => {
                self.wait.observe(waited.as_secs_f64(), waited);
            }
            // A kind of event this server does not chart (the enum is non-exhaustive).
            _ => {}
        }
    }

    /// Appends both histograms.
    pub(crate) fn render(&self, text: &mut String) {
        self.ids_per_call.render(
            text,
            "ec2_iid_describe_instances_ids_per_call",
            "Instance ids in each DescribeInstances call.",
        );
        self.wait.render(
            text,
            "ec2_iid_lookup_wait_seconds",
            "Time a lookup waited for its DescribeInstances call to go out.",
        );
    }
}

/// A histogram: one count per bucket (not cumulative), then +Inf, and the sum (in
/// microseconds, or micro-units of a count).
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts `value`; `sum` is what it adds to the sum (a `Duration` holds it exactly).
    fn observe(&self, value: f64, sum: Duration) {
        let index = self
            .bounds
            .iter()
            .position(|&le| value <= le)
            .unwrap_or(self.bounds.len());
        if let Some(count) = self.counts.get(index) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(sum.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, text: &mut String, name: &str, help: &str) {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        let bounds = self.bounds.iter().map(|le| le.to_string());
        for (le, count) in bounds.chain([String::from("+Inf")]).zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(text, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let micros = self.sum_micros.load(Ordering::Relaxed);
        let sum = Duration::from_micros(micros).as_secs_f64();
        let _ = writeln!(text, "{name}_sum {sum}\n{name}_count {cumulative}");
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
        metrics.certificate_issued();
        metrics.renewal("renewed");
        metrics.renewal("renewed");
        metrics.renewal("evicted");
        let calls = AwsCalls {
            describe_instances: 7,
            get_instance_profile: 2,
            organizations: 3,
        };
        let text = metrics.render(calls);
        let expected = "\
# HELP ec2_iid_joins_total Join requests answered, by outcome.
# TYPE ec2_iid_joins_total counter
ec2_iid_joins_total{outcome=\"already_joined\"} 1
ec2_iid_joins_total{outcome=\"joined\"} 2
# HELP ec2_iid_describe_instances_calls_total DescribeInstances requests sent.
# TYPE ec2_iid_describe_instances_calls_total counter
ec2_iid_describe_instances_calls_total 7
# HELP ec2_iid_get_instance_profile_calls_total IAM GetInstanceProfile requests sent (aws_iam_role_arns rules).
# TYPE ec2_iid_get_instance_profile_calls_total counter
ec2_iid_get_instance_profile_calls_total 2
# HELP ec2_iid_organizations_calls_total AWS Organizations ListAccounts and ListParents requests sent (organization rules).
# TYPE ec2_iid_organizations_calls_total counter
ec2_iid_organizations_calls_total 3
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
# HELP ec2_iid_certificates_issued_total Certificates issued, by how they were asked for.
# TYPE ec2_iid_certificates_issued_total counter
ec2_iid_certificates_issued_total{via=\"join\"} 1
ec2_iid_certificates_issued_total{via=\"renew\"} 2
# HELP ec2_iid_renewals_total Renewal requests answered, by outcome.
# TYPE ec2_iid_renewals_total counter
ec2_iid_renewals_total{outcome=\"evicted\"} 1
ec2_iid_renewals_total{outcome=\"renewed\"} 2
# HELP ec2_iid_enrolled_hosts Hosts enrolled and not evicted (they may renew), as the registry last counted them (every --enrolled-hosts-refresh; absent before).
# TYPE ec2_iid_enrolled_hosts gauge
# HELP ec2_iid_enrolled_hosts_refresh_failures_total Counts of the enrolled hosts that failed or timed out (the gauge keeps its last value).
# TYPE ec2_iid_enrolled_hosts_refresh_failures_total counter
ec2_iid_enrolled_hosts_refresh_failures_total 0
";
        assert_eq!(text, expected);
        metrics.enrolled.set(4);
        metrics.enrolled.failed();
        let text = metrics.render(calls);
        let tail = "\
# TYPE ec2_iid_enrolled_hosts gauge
ec2_iid_enrolled_hosts 4
# HELP ec2_iid_enrolled_hosts_refresh_failures_total Counts of the enrolled hosts that failed or timed out (the gauge keeps its last value).
# TYPE ec2_iid_enrolled_hosts_refresh_failures_total counter
ec2_iid_enrolled_hosts_refresh_failures_total 1
";
        assert!(text.ends_with(tail), "{text}");
    }

    #[test]
    fn pacing_exposition() {
        use ec2_iid_aws::PacingEvent;

        let metrics = LookupMetrics::default();
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(
            text.contains("ec2_iid_describe_instances_ids_per_call_count 0\n"),
            "{text}"
        );
        for ids in [1, 1, 37, 200] {
            metrics.record(PacingEvent::Call { ids });
        }
        for millis in [0, 0, 30, 1200, 12_000] {
            metrics.record(PacingEvent::Waited(Duration::from_millis(millis)));
        }
        let mut text = String::new();
        metrics.render(&mut text);
        let expected = "\
# HELP ec2_iid_describe_instances_ids_per_call Instance ids in each DescribeInstances call.
# TYPE ec2_iid_describe_instances_ids_per_call histogram
ec2_iid_describe_instances_ids_per_call_bucket{le=\"1\"} 2
ec2_iid_describe_instances_ids_per_call_bucket{le=\"2\"} 2
ec2_iid_describe_instances_ids_per_call_bucket{le=\"5\"} 2
ec2_iid_describe_instances_ids_per_call_bucket{le=\"10\"} 2
ec2_iid_describe_instances_ids_per_call_bucket{le=\"20\"} 2
ec2_iid_describe_instances_ids_per_call_bucket{le=\"50\"} 3
ec2_iid_describe_instances_ids_per_call_bucket{le=\"100\"} 3
ec2_iid_describe_instances_ids_per_call_bucket{le=\"150\"} 3
ec2_iid_describe_instances_ids_per_call_bucket{le=\"200\"} 4
ec2_iid_describe_instances_ids_per_call_bucket{le=\"+Inf\"} 4
ec2_iid_describe_instances_ids_per_call_sum 239
ec2_iid_describe_instances_ids_per_call_count 4
# HELP ec2_iid_lookup_wait_seconds Time a lookup waited for its DescribeInstances call to go out.
# TYPE ec2_iid_lookup_wait_seconds histogram
ec2_iid_lookup_wait_seconds_bucket{le=\"0.001\"} 2
ec2_iid_lookup_wait_seconds_bucket{le=\"0.005\"} 2
ec2_iid_lookup_wait_seconds_bucket{le=\"0.01\"} 2
ec2_iid_lookup_wait_seconds_bucket{le=\"0.025\"} 2
ec2_iid_lookup_wait_seconds_bucket{le=\"0.05\"} 3
ec2_iid_lookup_wait_seconds_bucket{le=\"0.1\"} 3
ec2_iid_lookup_wait_seconds_bucket{le=\"0.25\"} 3
ec2_iid_lookup_wait_seconds_bucket{le=\"0.5\"} 3
ec2_iid_lookup_wait_seconds_bucket{le=\"1\"} 3
ec2_iid_lookup_wait_seconds_bucket{le=\"2.5\"} 4
ec2_iid_lookup_wait_seconds_bucket{le=\"5\"} 4
ec2_iid_lookup_wait_seconds_bucket{le=\"10\"} 4
ec2_iid_lookup_wait_seconds_bucket{le=\"+Inf\"} 5
ec2_iid_lookup_wait_seconds_sum 13.23
ec2_iid_lookup_wait_seconds_count 5
";
        assert_eq!(text, expected);
    }
}
