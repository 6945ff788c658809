//! The DescribeInstances lookup: paced at `--describe-rate`/`--describe-burst` (divided by
//! `--describe-replicas`) and batched while queries wait, with its call counter and its
//! pacing histograms for `/metrics`.

use std::sync::Arc;

use ec2_iid::{InstanceFacts, InstanceLookup, InstanceQuery};
use ec2_iid_aws::{BatchingLookup, Ec2Lookup, Ec2LookupError};
use tracing::Instrument as _;

use super::args::DescribePacing;
use super::metrics::{AwsCalls, LookupMetrics};

/// The server's lookup.
#[derive(Debug)]
pub(crate) struct Lookup {
    batching: BatchingLookup,
    metrics: Arc<LookupMetrics>,
}

impl Lookup {
    /// `lookup`, paced as the flags say.
    ///
    /// # Errors
    /// The usage error to print, for pacing `BatchingLookup` refuses.
    pub(crate) fn new(lookup: Ec2Lookup, pacing: &DescribePacing) -> Result<Self, String> {
        let metrics = Arc::new(LookupMetrics::default());
        let sink = Arc::clone(&metrics);
        let mut builder = BatchingLookup::builder(lookup)
            .rate(pacing.rate)
            .burst(pacing.burst)
            .observer(move |event| sink.record(event));
        match pacing.batch_window_ms {
            None => {}
            Some(0) => builder = builder.max_batch(1),
            Some(_) => tracing::warn!(
                "--batch-window-ms has no effect: DescribeInstances calls are paced by \
                 --describe-rate and --describe-burst and batched while they wait"
            ),
        }
        let batching = builder
            .build()
            .map_err(|e| format!("--describe-rate or --describe-burst: {e}"))?;
        Ok(Self { batching, metrics })
    }

    /// The AWS requests sent so far, by API: each has its own quota.
    pub(crate) fn calls(&self) -> AwsCalls {
        AwsCalls {
            describe_instances: self.batching.describe_calls(),
            get_instance_profile: self.batching.lookup().profile_calls(),
            organizations: self.batching.lookup().organizations_calls(),
        }
    }

    /// Appends the pacing histograms to a `/metrics` text.
    pub(crate) fn render_metrics(&self, text: &mut String) {
        self.metrics.render(text);
    }
}

impl InstanceLookup for Lookup {
    type Error = Arc<Ec2LookupError>;

    async fn describe_instance(
        &self,
        query: &InstanceQuery,
    ) -> Result<Option<InstanceFacts>, Arc<Ec2LookupError>> {
        let span = tracing::info_span!(
            "lookup",
            instance_id = %query.instance_id,
            region = %query.region,
        );
        self.batching
            .describe_instance(query)
            .instrument(span)
            .await
    }
}
