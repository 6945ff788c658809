//! A [`JoinRegistry`] in a DynamoDB table, so that each launch of an instance joins once across
//! every replica (and process) that shares the table.
//!
//! [`DynamoDbJoinRegistry`] records a claim with one conditional `PutItem`; DynamoDB applies the
//! condition and the write atomically, so of concurrent claims of one host exactly one wins.
//! [`DynamoDbJoinRegistry::ensure_table`] creates the table for setups and tests.
//!
//! ```no_run
//! use ec2_iid::{JoinClaim, JoinRegistry};
//! use ec2_iid_aws::dynamodb::{DynamoDbJoinRegistry, DynamoDbRegistryError};
//!
//! # async fn run(claim: JoinClaim) -> Result<(), DynamoDbRegistryError> {
//! // Once, at startup: the usual credential chain and region.
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let registry = DynamoDbJoinRegistry::from_conf(&config, "ec2-iid-joins");
//! registry.ensure_table().await?; // or create the table with your infrastructure code
//!
//! // Per join (or pass the registry to `PendingJoin::check_instance_once`).
//! if registry.claim(&claim).await? {
//!     println!("{} joined", claim.host_id);
//! }
//! # Ok(())
//! # }
//! ```

mod enrollment;
mod error;

use core::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata as _};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use chrono::{DateTime, Utc};
use ec2_iid::{ClaimRecord, JoinClaim, JoinRegistry};

pub use self::error::{DynamoDbRegistryError, Operation};

/// The partition key: the claim's `host_id` (`<accountId>-<instanceId>`), a string.
const HOST_ID: &str = "host_id";
/// The launch: the claim's `pending_time`, a number of milliseconds since the Unix epoch.
const PENDING_TIME: &str = "pending_time";
/// When the record may go: the claim's `expires_at`, a number of seconds since the Unix epoch
/// (rounded up), the table's TTL attribute.
const EXPIRES_AT: &str = "expires_at";
/// Who claimed: the claim's `requester`, 32 bytes (binary); absent when it has none.
const REQUESTER: &str = "requester";

/// The claim's condition: no record, an expired one, or one of an older launch
/// ([`JoinClaim::wins_over`]).
const CONDITION: &str = "attribute_not_exists(host_id) OR expires_at <= :now OR pending_time < :pt";
/// [`CONDITION`] for a claim with a requester: also the same launch claimed by the same
/// requester again.
const CONDITION_WITH_REQUESTER: &str = "attribute_not_exists(host_id) OR expires_at <= :now \
     OR pending_time < :pt OR (pending_time = :pt AND requester = :rq)";

/// How long [`DynamoDbJoinRegistry::ensure_table`] waits for the table to become `ACTIVE`.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// How often it asks, meanwhile.
const ACTIVE_POLL: Duration = Duration::from_millis(500);

/// A [`JoinRegistry`] in a DynamoDB table, shared by every replica that uses the table.
///
/// One item per host, with four attributes:
///
/// | attribute | type | value |
/// |---|---|---|
/// | `host_id` | string, the partition key | the claim's `host_id` |
/// | `pending_time` | number | the launch (`pendingTime`), in **milliseconds** since the Unix epoch |
/// | `expires_at` | number | when the record may go, in **seconds** since the Unix epoch, rounded up: the table's TTL attribute |
/// | `requester` | binary, absent without one | the claim's `requester` (32 bytes) |
///
/// A claim is one `PutItem` with the condition
/// `attribute_not_exists(host_id) OR expires_at <= :now OR pending_time < :pt`, where `:now`
/// is the claim's `now` in seconds (rounded down) and `:pt` its `pending_time` in milliseconds,
/// and for a claim with a requester also `OR (pending_time = :pt AND requester = :rq)`: the
/// write happens only when no record exists, the stored one expired, the claim is of a newer
/// launch, or the same requester claims the same launch again ([`JoinClaim::wins_over`]). The
/// last makes the SDK's own retries of a write whose answer was lost succeed instead of
/// failing the condition. [`record`](JoinRegistry::record) is a strongly consistent `GetItem`. DynamoDB checks the condition and writes in one
/// step, so concurrent claims of a host from any number of processes have exactly one winner.
/// A failed condition (`ConditionalCheckFailedException`) is the answer `Ok(false)`.
///
/// Rounding never lets a record expire early: it blocks replays until up to two seconds after
/// its exact `expires_at`, when the document's TTL refuses them anyway. Two `pending_time`s
/// less than a millisecond apart count as the same launch (AWS's `pendingTime` has whole
/// seconds).
///
/// DynamoDB's TTL deletes expired items in the background, usually within days; until then they
/// block nothing. The registry is cheap to clone (the client is shared) and `Send + Sync`.
///
/// The registry is also an [`EnrollmentRegistry`](ec2_iid::EnrollmentRegistry): its records
/// are items of the same table under keys `enrollment#<host_id>`, without `expires_at` (see
/// that implementation's notes); claims' items are unchanged.
///
/// IAM: `dynamodb:PutItem` and `dynamodb:GetItem` on the table for claims; [`ensure_table`](Self::ensure_table) also
/// needs `dynamodb:CreateTable`, `dynamodb:DescribeTable`, `dynamodb:DescribeTimeToLive` and
/// `dynamodb:UpdateTimeToLive`.
#[derive(Clone, Debug)]
pub struct DynamoDbJoinRegistry {
    client: Client,
    table: String,
    /// The most `Scan` pages one [`count_enrolled`](ec2_iid::EnrollmentRegistry::count_enrolled)
    /// reads ([`with_max_count_pages`](Self::with_max_count_pages)).
    max_count_pages: u32,
}

impl DynamoDbJoinRegistry {
    /// A registry in `table`, through `client` (its region, credentials, endpoint, retries and
    /// timeouts).
    ///
    /// Nothing is sent to DynamoDB until the first call.
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            max_count_pages: enrollment::MAX_COUNT_PAGES,
        }
    }

    /// At most `pages` `Scan` pages (each up to 1 MB of the table, claims included) for one
    /// [`count_enrolled`](ec2_iid::EnrollmentRegistry::count_enrolled), which past them fails
    /// with [`TooManyPages`](DynamoDbRegistryError::TooManyPages) rather than read on; at
    /// least 1, default 1000 (a table of about 1 GB).
    #[must_use]
    pub fn with_max_count_pages(mut self, pages: u32) -> Self {
        self.max_count_pages = pages.max(1);
        self
    }

    /// A registry in `table`, with a client of its own built from `config` (e.g. from
    /// [`aws_config::load_defaults`]).
    #[must_use]
    pub fn from_conf(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(config), table)
    }

    /// The table's name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the table if it does not exist (partition key `host_id`, a string; on-demand
    /// billing), waits up to 2 minutes for it to be `ACTIVE`, and enables TTL on `expires_at`
    /// if it is not enabled yet.
    ///
    /// For setups and tests; production tables are usually made by infrastructure code, with
    /// the same key and TTL attribute. An existing table is kept as it is (its key schema is
    /// not checked), and so is a TTL already enabled on `expires_at`. Safe to run from several
    /// replicas at once.
    ///
    /// # Errors
    ///
    /// A [`DynamoDbRegistryError`] of the failing call: e.g.
    /// [`AccessDenied`](DynamoDbRegistryError::AccessDenied) without the IAM permissions,
    /// [`TableNotActive`](DynamoDbRegistryError::TableNotActive) if the table does not become
    /// active in time, [`Other`](DynamoDbRegistryError::Other) with `ValidationException` if
    /// the name is not a valid table name or TTL is enabled on another attribute.
    pub async fn ensure_table(&self) -> Result<(), DynamoDbRegistryError> {
        self.create_table().await?;
        self.wait_until_active().await?;
        if self.ttl_enabled().await? {
            return Ok(());
        }
        let op = Operation::UpdateTimeToLive;
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES_AT)
            .build()
            .map_err(|e| self.build_error(op, e))?;
        let updated = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await;
        let Err(err) = updated else { return Ok(()) };
        // Another replica enabled it meanwhile: DynamoDB refuses to enable it twice.
        if err.code() == Some("ValidationException") && self.ttl_enabled().await? {
            return Ok(());
        }
        Err(DynamoDbRegistryError::from_sdk(err, op, &self.table))
    }
}

impl DynamoDbJoinRegistry {
    /// `CreateTable`; an existing table (`ResourceInUseException`) is fine.
    async fn create_table(&self) -> Result<(), DynamoDbRegistryError> {
        let op = Operation::CreateTable;
        let attribute = AttributeDefinition::builder()
            .attribute_name(HOST_ID)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| self.build_error(op, e))?;
        let key = KeySchemaElement::builder()
            .attribute_name(HOST_ID)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| self.build_error(op, e))?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attribute)
            .key_schema(key)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(DynamoDbRegistryError::from_sdk(err, op, &self.table)),
        }
    }

    /// Polls `DescribeTable` until the table is `ACTIVE`, for up to [`ACTIVE_TIMEOUT`].
    async fn wait_until_active(&self) -> Result<(), DynamoDbRegistryError> {
        let op = Operation::DescribeTable;
        let started = tokio::time::Instant::now();
        loop {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await;
            let status = match described {
                Ok(out) => match out.table().and_then(|t| t.table_status()) {
                    Some(TableStatus::Active) => return Ok(()),
                    Some(status) => status.as_str().to_owned(),
                    None => "unknown".to_owned(),
                },
                // Just after `CreateTable` the table may not be visible yet.
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    "not found".to_owned()
                }
                Err(err) => return Err(DynamoDbRegistryError::from_sdk(err, op, &self.table)),
            };
            let waited = started.elapsed();
            if waited >= ACTIVE_TIMEOUT {
                return Err(DynamoDbRegistryError::TableNotActive {
                    table: self.table.clone(),
                    status,
                    waited,
                });
            }
            tokio::time::sleep(ACTIVE_POLL).await;
        }
    }

    /// Whether TTL is enabled (or being enabled) on `expires_at`.
    async fn ttl_enabled(&self) -> Result<bool, DynamoDbRegistryError> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| {
                DynamoDbRegistryError::from_sdk(e, Operation::DescribeTimeToLive, &self.table)
            })?;
        Ok(out.time_to_live_description().is_some_and(|ttl| {
            ttl.attribute_name() == Some(EXPIRES_AT)
                && matches!(
                    ttl.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
        }))
    }

    /// A request the SDK's builders refused (a required field unset).
    fn build_error(&self, operation: Operation, err: BuildError) -> DynamoDbRegistryError {
        DynamoDbRegistryError::Other {
            operation,
            table: self.table.clone(),
            code: None,
            source: Box::new(err),
        }
    }
}

impl JoinRegistry for DynamoDbJoinRegistry {
    type Error = DynamoDbRegistryError;

    /// Records the claim with one conditional `PutItem` if it wins; `Ok(true)` if it did.
    ///
    /// # Errors
    ///
    /// A [`DynamoDbRegistryError`] if DynamoDB did not answer the write, e.g.
    /// [`TableNotFound`](DynamoDbRegistryError::TableNotFound) when the table does not exist in
    /// the client's region, [`Throttled`](DynamoDbRegistryError::Throttled) after the SDK's
    /// retries. The claim did not win then; whether it was recorded is unknown only if the
    /// connection broke after the request was sent.
    #[tracing::instrument(name = "put_item", skip_all, fields(table = %self.table))]
    async fn claim(&self, claim: &JoinClaim) -> Result<bool, DynamoDbRegistryError> {
        let pending = number(claim.pending_time.timestamp_millis());
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(HOST_ID, AttributeValue::S(claim.host_id.clone()))
            .item(PENDING_TIME, pending.clone())
            .item(EXPIRES_AT, number(seconds_rounded_up(claim.expires_at)))
            .condition_expression(CONDITION)
            .expression_attribute_values(":now", number(claim.now.timestamp()))
            .expression_attribute_values(":pt", pending);
        if let Some(requester) = claim.requester {
            let requester = AttributeValue::B(Blob::new(requester));
            put = put
                .item(REQUESTER, requester.clone())
                .condition_expression(CONDITION_WITH_REQUESTER)
                .expression_attribute_values(":rq", requester);
        }
        match unless_condition_failed(put.send().await) {
            Ok(written) => Ok(written.is_some()),
            Err(err) => {
                let err = DynamoDbRegistryError::from_sdk(err, Operation::PutItem, &self.table);
                tracing::warn!("PutItem failed: {err}");
                Err(err)
            }
        }
    }

    /// Reads the host's item with a strongly consistent `GetItem`; an item expired at `now`
    /// (by the condition's rule, in whole seconds) is `None`, as is one that is not a record.
    ///
    /// # Errors
    ///
    /// A [`DynamoDbRegistryError`] if DynamoDB did not answer the read.
    #[tracing::instrument(name = "get_item", skip_all, fields(table = %self.table))]
    async fn record(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimRecord>, DynamoDbRegistryError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(HOST_ID, AttributeValue::S(host_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DynamoDbRegistryError::from_sdk(e, Operation::GetItem, &self.table))?;
        let record = got.item().and_then(record_of);
        Ok(record.filter(|r| r.expires_at.timestamp() > now.timestamp()))
    }
}

/// The claim an item records; `None` for an item without the number attributes (not written
/// by this registry), which blocks nothing.
fn record_of(item: &HashMap<String, AttributeValue>) -> Option<ClaimRecord> {
    let integer = |name| match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse::<i64>().ok(),
        _ => None,
    };
    let pending_time = DateTime::from_timestamp_millis(integer(PENDING_TIME)?)?;
    let expires_at = DateTime::from_timestamp(integer(EXPIRES_AT)?, 0)?;
    let requester = match item.get(REQUESTER) {
        Some(AttributeValue::B(blob)) => blob.as_ref().try_into().ok(),
        _ => None,
    };
    Some(ClaimRecord::new(pending_time, expires_at, requester))
}

/// A DynamoDB number.
/// A conditional write's result: `Ok(Some(output))` if it was made, `Ok(None)` if DynamoDB
/// refused it because its condition did not hold (`ConditionalCheckFailedException`), the
/// error otherwise.
fn unless_condition_failed<T, E, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<Option<T>, aws_sdk_dynamodb::error::SdkError<E, R>>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(err)
            if err.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Seconds since the Unix epoch, a fraction rounded up (`timestamp()` rounds down).
fn seconds_rounded_up(t: DateTime<Utc>) -> i64 {
    let whole = t.timestamp();
    if t.timestamp_subsec_nanos() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone as _};

    use super::*;

    #[test]
    fn expiry_rounds_up_and_now_rounds_down() {
        let t = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
        assert_eq!(seconds_rounded_up(t), t.timestamp());
        let later = t + TimeDelta::milliseconds(1);
        assert_eq!(seconds_rounded_up(later), t.timestamp() + 1);
        assert_eq!(later.timestamp(), t.timestamp());
        let before_epoch = Utc.timestamp_opt(-2, 500_000_000).unwrap();
        assert_eq!(seconds_rounded_up(before_epoch), -1);
        assert_eq!(before_epoch.timestamp(), -2);
    }

    #[test]
    fn the_condition_is_the_core_crates_rule() {
        // JoinClaim::wins_over: expired, a newer launch, or the same launch and requester.
        assert!(CONDITION.starts_with("attribute_not_exists(host_id) OR "));
        assert!(CONDITION.contains(&format!("{EXPIRES_AT} <= :now")));
        assert!(CONDITION.contains(&format!("{PENDING_TIME} < :pt")));
        assert!(CONDITION_WITH_REQUESTER.starts_with(CONDITION));
        assert!(
            CONDITION_WITH_REQUESTER
                .ends_with(&format!(" OR ({PENDING_TIME} = :pt AND {REQUESTER} = :rq)"))
        );
        assert_eq!(number(-5), AttributeValue::N("-5".to_owned()));
    }

    #[test]
    fn items_read_back_as_records() {
        let item = |requester: Option<AttributeValue>| {
            let mut item = HashMap::from([
                (HOST_ID.to_owned(), AttributeValue::S("h".to_owned())),
                (PENDING_TIME.to_owned(), number(1_500)),
                (EXPIRES_AT.to_owned(), number(7)),
            ]);
            item.extend(requester.map(|r| (REQUESTER.to_owned(), r)));
            item
        };
        let record = record_of(&item(Some(AttributeValue::B(Blob::new([3; 32]))))).unwrap();
        assert_eq!(record.pending_time.timestamp_millis(), 1_500);
        assert_eq!(record.expires_at.timestamp(), 7);
        assert_eq!(record.requester, Some([3; 32]));
        assert_eq!(record_of(&item(None)).unwrap().requester, None);
        let short = AttributeValue::B(Blob::new([3; 31]));
        assert_eq!(record_of(&item(Some(short))).unwrap().requester, None);
        assert_eq!(record_of(&HashMap::new()), None, "not a record");
    }
}
