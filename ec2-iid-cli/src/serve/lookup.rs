//! The DescribeInstances lookup: batched (`--batch-window-ms N`, the default) or one call per
//! join (`--batch-window-ms 0`), with its call counter for `/metrics`.

use std::sync::Arc;

use ec2_iid::{InstanceFacts, InstanceLookup, InstanceQuery};
use ec2_iid_aws::{BatchingLookup, Ec2Lookup, Ec2LookupError};
use tracing::Instrument as _;

/// The server's lookup.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// One `DescribeInstances` per join.
    Direct(Ec2Lookup),
    /// Concurrent joins share calls.
    Batching(BatchingLookup),
}

impl Lookup {
    /// `lookup`, batched with `window` unless it is zero.
    pub(crate) fn new(lookup: Ec2Lookup, window: core::time::Duration) -> Self {
        if window.is_zero() {
            Self::Direct(lookup)
        } else {
            Self::Batching(BatchingLookup::with_window(lookup, window))
        }
    }

    /// The `DescribeInstances` requests sent so far.
    pub(crate) fn describe_calls(&self) -> u64 {
        match self {
            Self::Direct(lookup) => lookup.describe_calls(),
            Self::Batching(lookup) => lookup.describe_calls(),
        }
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
        async {
            match self {
                Self::Direct(lookup) => lookup.describe_instance(query).await.map_err(Arc::new),
                Self::Batching(lookup) => lookup.describe_instance(query).await,
            }
        }
        .instrument(span)
        .await
    }
}
