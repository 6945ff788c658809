//! [`EnrollmentRegistry`] for [`DynamoDbJoinRegistry`]: enrollment records as items of the
//! claims' table under keys of their own (`enrollment#<host_id>`), each rule one conditional
//! write; and [`DynamoDbJoinRegistry::purge_expired`] for the claims.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, Select,
};
use chrono::{DateTime, Utc};
use ec2_iid::{Enrollment, EnrollmentRegistry, MAX_LIST_LIMIT};

use super::{
    DynamoDbJoinRegistry, DynamoDbRegistryError, EXPIRES_AT, HOST_ID, Operation, number,
    unless_condition_failed,
};

/// The key prefix of enrollment items: claims' keys are `<accountId>-<instanceId>`, so the two
/// never meet, and an enrollment item has no `expires_at`, so the table's TTL keeps it.
pub(super) const PREFIX: &str = "enrollment#";

/// The most `Scan` pages [`count_enrolled`](EnrollmentRegistry::count_enrolled) reads by
/// default ([`DynamoDbJoinRegistry::with_max_count_pages`]).
pub(super) const MAX_COUNT_PAGES: u32 = 1000;

/// How many times [`enroll`](EnrollmentRegistry::enroll) tries its two conditional writes
/// while concurrent calls change the record between them.
const ENROLL_ROUNDS: usize = 3;

/// The item attributes (besides the key `host_id`); times are milliseconds since the Unix
/// epoch, `last_renewed` and `evicted_at` absent when unset.
const ACCOUNT: &str = "account";
const REGION: &str = "region";
const INSTANCE_ID: &str = "instance_id";
const MATCHED_RULE: &str = "matched_rule";
const PENDING_TIME: &str = "pending_time";
const FIRST_JOINED: &str = "first_joined";
const LAST_RENEWED: &str = "last_renewed";
const SERIAL: &str = "serial";
const NOT_AFTER: &str = "not_after";
const EVICTED_AT: &str = "evicted_at";

/// `enroll`'s first write: over no record or one not evicted, keeping `first_joined` and
/// `last_renewed` ([`Enrollment::merged_over`]). Names through `#`: `region` is reserved.
const ENROLL_UPDATE: &str = "SET #account = :account, #region = :region, \
     #instance_id = :instance_id, #matched_rule = :matched_rule, #pending_time = :pending_time, \
     #serial = :serial, #not_after = :not_after, \
     #first_joined = if_not_exists(#first_joined, :first_joined)";
/// Its condition.
const NOT_EVICTED: &str = "attribute_not_exists(#evicted_at)";
/// `enroll`'s second write, a whole new item: only over an evicted record of an older launch.
const EVICTED_AND_OLDER: &str = "attribute_exists(#evicted_at) AND #pending_time < :pending_time";
/// `renew`'s update and condition.
const RENEW_UPDATE: &str = "SET #serial = :serial, #not_after = :not_after, \
     #last_renewed = :last_renewed";
const PRESENT_NOT_EVICTED: &str =
    "attribute_exists(#host_id) AND attribute_not_exists(#evicted_at)";
/// `evict`'s update (a second eviction keeps the first time) and condition.
const EVICT_UPDATE: &str = "SET #evicted_at = if_not_exists(#evicted_at, :evicted_at)";
const PRESENT: &str = "attribute_exists(#host_id)";
/// `count_enrolled`'s filter: the enrollment items not evicted.
const ENROLLED: &str = "begins_with(#host_id, :prefix) AND attribute_not_exists(#evicted_at)";
/// `purge`'s condition: last seen before `:cutoff` ([`Enrollment::last_seen`]).
const LAST_SEEN_BEFORE: &str = "#first_joined < :cutoff \
     AND (attribute_not_exists(#last_renewed) OR #last_renewed < :cutoff)";

/// The `#name` placeholders of every expression above.
fn names() -> HashMap<String, String> {
    [
        HOST_ID,
        ACCOUNT,
        REGION,
        INSTANCE_ID,
        MATCHED_RULE,
        PENDING_TIME,
        FIRST_JOINED,
        LAST_RENEWED,
        SERIAL,
        NOT_AFTER,
        EVICTED_AT,
    ]
    .into_iter()
    .map(|name| (format!("#{name}"), name.to_owned()))
    .collect()
}

/// The `#name` placeholders `expressions` use.
fn names_in(expressions: &[&str]) -> HashMap<String, String> {
    names()
        .into_iter()
        .filter(|(placeholder, _)| {
            expressions.iter().any(|e| {
                e.match_indices(placeholder.as_str()).any(|(at, _)| {
                    let next = e
                        .get(at + placeholder.len()..)
                        .and_then(|s| s.chars().next());
                    !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                })
            })
        })
        .collect()
}

/// `map`, or `None` for an empty one (DynamoDB refuses empty name and value maps).
fn non_empty<V>(map: HashMap<String, V>) -> Option<HashMap<String, V>> {
    (!map.is_empty()).then_some(map)
}

/// The item key of `host_id`'s record.
fn key(host_id: &str) -> AttributeValue {
    AttributeValue::S(format!("{PREFIX}{host_id}"))
}

/// Milliseconds since the Unix epoch, as a DynamoDB number.
fn millis(t: DateTime<Utc>) -> AttributeValue {
    number(t.timestamp_millis())
}

impl DynamoDbJoinRegistry {
    /// `enroll`'s first write; `Ok(false)` if the record is evicted.
    async fn enroll_unless_evicted(
        &self,
        enrollment: &Enrollment,
    ) -> Result<bool, DynamoDbRegistryError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(HOST_ID, key(&enrollment.host_id))
            .update_expression(ENROLL_UPDATE)
            .condition_expression(NOT_EVICTED)
            .set_expression_attribute_names(Some(names_in(&[ENROLL_UPDATE, NOT_EVICTED])))
            .set_expression_attribute_values(Some(values(enrollment)))
            .send()
            .await;
        let updated =
            unless_condition_failed(updated).map_err(|e| self.failed(e, Operation::UpdateItem))?;
        Ok(updated.is_some())
    }

    /// `enroll`'s second write: the whole item over an evicted record of an older launch.
    /// `Ok(Some(false))` if the record is evicted and not older (refused), `Ok(None)` if it is
    /// no longer evicted (or gone): the first write may pass now.
    async fn enroll_over_evicted(
        &self,
        enrollment: &Enrollment,
    ) -> Result<Option<bool>, DynamoDbRegistryError> {
        let mut item = item(enrollment);
        item.insert(HOST_ID.to_owned(), key(&enrollment.host_id));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(EVICTED_AND_OLDER)
            .set_expression_attribute_names(Some(names_in(&[EVICTED_AND_OLDER])))
            .expression_attribute_values(":pending_time", millis(enrollment.pending_time))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Some(true)),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => {
                    let still_evicted = match e {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(
                            failed,
                        ) => failed.item().is_none_or(|old| old.contains_key(EVICTED_AT)),
                        _ => true,
                    };
                    Ok(still_evicted.then_some(false))
                }
                _ => Err(self.failed(err, Operation::PutItem)),
            },
        }
    }

    /// An SDK error of `operation`, logged.
    fn failed<E>(
        &self,
        err: aws_sdk_dynamodb::error::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
        operation: Operation,
    ) -> DynamoDbRegistryError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + core::error::Error
            + Send
            + Sync
            + 'static,
    {
        let err = DynamoDbRegistryError::from_sdk(err, operation, &self.table);
        tracing::warn!("{operation} failed: {err}");
        err
    }

    /// Deletes the items `filter` selects (a `Scan`, page by page), each with a `DeleteItem`
    /// under `condition`, so that an item changed since the scan stays; returns how many went.
    async fn delete_where(
        &self,
        filter: &str,
        condition: &str,
        values: &HashMap<String, AttributeValue>,
    ) -> Result<u64, DynamoDbRegistryError> {
        let mut deleted = 0_u64;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter)
                .projection_expression("#host_id")
                .set_expression_attribute_names(non_empty(names_in(&[filter, "#host_id"])))
                .set_expression_attribute_values(non_empty(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.failed(e, Operation::Scan))?;
            for item in page.items() {
                let Some(host) = item.get(HOST_ID) else {
                    continue;
                };
                let condition_values: HashMap<_, _> = values
                    .iter()
                    .filter(|(name, _)| condition.contains(name.as_str()))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                let gone = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key(HOST_ID, host.clone())
                    .condition_expression(condition)
                    .set_expression_attribute_names(non_empty(names_in(&[condition])))
                    .set_expression_attribute_values(non_empty(condition_values))
                    .send()
                    .await;
                let gone = unless_condition_failed(gone)
                    .map_err(|e| self.failed(e, Operation::DeleteItem))?;
                if gone.is_some() {
                    deleted = deleted.saturating_add(1);
                }
            }
            match page.last_evaluated_key() {
                Some(last) => start = Some(last.clone()),
                None => return Ok(deleted),
            }
        }
    }

    /// Deletes the claims that expired at `now` (`expires_at <= now`, in whole seconds as the
    /// claim's condition counts them) and returns how many: a `Scan` of the table, then a
    /// conditional `DeleteItem` each. DynamoDB's TTL deletes them too, within days; this is
    /// for an operator who wants them gone now (`ec2-iid registry purge`). Enrollment records
    /// have no `expires_at` and stay.
    ///
    /// IAM: `dynamodb:Scan` and `dynamodb:DeleteItem` on the table.
    ///
    /// # Errors
    ///
    /// A [`DynamoDbRegistryError`] of the `Scan` or `DeleteItem` that failed; the claims
    /// deleted before it stay deleted.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, DynamoDbRegistryError> {
        let condition = format!("{EXPIRES_AT} <= :now");
        let values = HashMap::from([(":now".to_owned(), number(now.timestamp()))]);
        self.delete_where(&condition, &condition, &values).await
    }
}

/// The expression values of `enroll`'s first write.
fn values(enrollment: &Enrollment) -> HashMap<String, AttributeValue> {
    item(enrollment)
        .into_iter()
        .map(|(name, value)| (format!(":{name}"), value))
        .collect()
}

/// The attributes of a join's record (no key; never renewed, not evicted).
fn item(enrollment: &Enrollment) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            ACCOUNT.to_owned(),
            AttributeValue::S(enrollment.account.clone()),
        ),
        (
            REGION.to_owned(),
            AttributeValue::S(enrollment.region.clone()),
        ),
        (
            INSTANCE_ID.to_owned(),
            AttributeValue::S(enrollment.instance_id.clone()),
        ),
        (
            MATCHED_RULE.to_owned(),
            AttributeValue::N(enrollment.matched_rule.to_string()),
        ),
        (PENDING_TIME.to_owned(), millis(enrollment.pending_time)),
        (FIRST_JOINED.to_owned(), millis(enrollment.first_joined)),
        (
            SERIAL.to_owned(),
            AttributeValue::S(enrollment.serial.clone()),
        ),
        (NOT_AFTER.to_owned(), millis(enrollment.not_after)),
    ])
}

/// The record an item holds, or why it holds none.
fn enrollment_of(item: &HashMap<String, AttributeValue>) -> Result<Enrollment, &'static str> {
    let text = |name| match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err("a text attribute is missing"),
    };
    let time = |name| match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or("a time out of range"),
        _ => Err("a time attribute is missing"),
    };
    let optional_time = |name| match item.get(name) {
        None => Ok(None),
        Some(_) => time(name).map(Some),
    };
    let host_id = text(HOST_ID)?;
    let host_id = host_id
        .strip_prefix(PREFIX)
        .ok_or("not an enrollment key")?;
    let matched_rule = match item.get(MATCHED_RULE) {
        Some(AttributeValue::N(n)) => n
            .parse::<usize>()
            .map_err(|_| "matched_rule out of range")?,
        _ => return Err("matched_rule is missing"),
    };
    let mut enrollment = Enrollment::joined(
        host_id,
        text(ACCOUNT)?,
        text(REGION)?,
        text(INSTANCE_ID)?,
        matched_rule,
        time(PENDING_TIME)?,
        text(SERIAL)?,
        time(NOT_AFTER)?,
        time(FIRST_JOINED)?,
    );
    enrollment.last_renewed = optional_time(LAST_RENEWED)?;
    enrollment.evicted_at = optional_time(EVICTED_AT)?;
    Ok(enrollment)
}

impl DynamoDbJoinRegistry {
    /// [`enrollment_of`], its error as [`DynamoDbRegistryError::InvalidRecord`].
    fn read(
        &self,
        operation: Operation,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<Enrollment, DynamoDbRegistryError> {
        enrollment_of(item).map_err(|reason| {
            let host_id = match item.get(HOST_ID) {
                Some(AttributeValue::S(key)) => key.strip_prefix(PREFIX).unwrap_or(key),
                _ => "",
            };
            DynamoDbRegistryError::InvalidRecord {
                operation,
                table: self.table.clone(),
                host_id: host_id.chars().take(64).collect(),
                reason,
            }
        })
    }
}

/// The [`EnrollmentRegistry`] in the claims' table: one item per host under the key
/// `enrollment#<host_id>` (claims' keys never start so), with `account`, `region`,
/// `instance_id`, `matched_rule`, `serial` and the times `pending_time`, `first_joined`,
/// `last_renewed`, `not_after`, `evicted_at` in **milliseconds** (the last two absent when
/// unset); no `expires_at`, so the table's TTL never deletes one. The table needs no change.
///
/// - `enroll`: an `UpdateItem` under `attribute_not_exists(evicted_at)` that keeps
///   `first_joined` (`if_not_exists`) and `last_renewed`; if the record is evicted, a whole
///   `PutItem` under `attribute_exists(evicted_at) AND pending_time < :pt` (a newer launch).
///   Each write is atomic; if a concurrent call changes the record between them, the first
///   is tried again (at most 3 rounds, then refused). A write whose answer was lost and that
///   the SDK retries gets the same outcome.
/// - `renew`: an `UpdateItem` under `attribute_exists(host_id) AND
///   attribute_not_exists(evicted_at)`, returning the new item.
/// - `evict`: an `UpdateItem` setting `evicted_at` if not set, under `attribute_exists`.
/// - `get`: a strongly consistent `GetItem`.
/// - `list` and `purge` **scan the whole table** (claims too; strongly consistent): `list`
///   keeps the `limit` first host ids after `after` in memory, `purge` deletes each record
///   last seen before the cutoff with a `DeleteItem` under that condition (a record renewed
///   since the scan stays). They are for operators, not for each join.
/// - `count_enrolled` **scans the whole table** too, page by page with `Select=COUNT` and a
///   filter (eventually consistent: half the read capacity), at most
///   [`with_max_count_pages`](DynamoDbJoinRegistry::with_max_count_pages) pages (1000 by
///   default, each up to 1 MB); past them it fails with
///   [`TooManyPages`](DynamoDbRegistryError::TooManyPages). Each page costs read capacity
///   for the whole megabyte it reads: count on a schedule (serve: every minute).
///
/// IAM: `dynamodb:UpdateItem`, `dynamodb:PutItem`, `dynamodb:GetItem`; `dynamodb:Scan` and
/// `dynamodb:DeleteItem` for `list` and `purge`.
///
/// # Errors
///
/// A [`DynamoDbRegistryError`] of the call that failed, as for a claim, or
/// [`InvalidRecord`](DynamoDbRegistryError::InvalidRecord) for an item under an enrollment key
/// that does not hold a record.
impl EnrollmentRegistry for DynamoDbJoinRegistry {
    type Error = DynamoDbRegistryError;

    #[tracing::instrument(name = "enroll", skip_all, fields(table = %self.table))]
    async fn enroll(&self, enrollment: &Enrollment) -> Result<bool, DynamoDbRegistryError> {
        for _ in 0..ENROLL_ROUNDS {
            if self.enroll_unless_evicted(enrollment).await? {
                return Ok(true);
            }
            if let Some(enrolled) = self.enroll_over_evicted(enrollment).await? {
                return Ok(enrolled);
            }
        }
        tracing::warn!("enroll refused: the record changed under each of {ENROLL_ROUNDS} rounds");
        Ok(false)
    }

    #[tracing::instrument(name = "renew", skip_all, fields(table = %self.table))]
    async fn renew(
        &self,
        host_id: &str,
        serial: &str,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Enrollment>, DynamoDbRegistryError> {
        let op = Operation::UpdateItem;
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(HOST_ID, key(host_id))
            .update_expression(RENEW_UPDATE)
            .condition_expression(PRESENT_NOT_EVICTED)
            .set_expression_attribute_names(Some(names_in(&[RENEW_UPDATE, PRESENT_NOT_EVICTED])))
            .expression_attribute_values(":serial", AttributeValue::S(serial.to_owned()))
            .expression_attribute_values(":not_after", millis(not_after))
            .expression_attribute_values(":last_renewed", millis(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let Some(out) = unless_condition_failed(updated).map_err(|e| self.failed(e, op))? else {
            return Ok(None);
        };
        out.attributes().map(|item| self.read(op, item)).transpose()
    }

    #[tracing::instrument(name = "get_enrollment", skip_all, fields(table = %self.table))]
    async fn get(&self, host_id: &str) -> Result<Option<Enrollment>, DynamoDbRegistryError> {
        let op = Operation::GetItem;
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(HOST_ID, key(host_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.failed(e, op))?;
        got.item().map(|item| self.read(op, item)).transpose()
    }

    #[tracing::instrument(name = "list_enrollments", skip_all, fields(table = %self.table))]
    async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Enrollment>, DynamoDbRegistryError> {
        let limit = limit.min(MAX_LIST_LIMIT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let op = Operation::Scan;
        let filter = match after {
            Some(_) => "begins_with(#host_id, :prefix) AND #host_id > :after",
            None => "begins_with(#host_id, :prefix)",
        };
        let mut values =
            HashMap::from([(":prefix".to_owned(), AttributeValue::S(PREFIX.to_owned()))]);
        if let Some(after) = after {
            values.insert(":after".to_owned(), key(after));
        }
        // The `limit` first records seen so far, by host id.
        let mut first: BTreeMap<String, Enrollment> = BTreeMap::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter)
                .expression_attribute_names("#host_id", HOST_ID)
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.failed(e, op))?;
            for item in page.items() {
                let record = self.read(op, item)?;
                first.insert(record.host_id.clone(), record);
                if first.len() > limit {
                    first.pop_last();
                }
            }
            match page.last_evaluated_key() {
                Some(last) => start = Some(last.clone()),
                None => break,
            }
        }
        Ok(first.into_values().collect())
    }

    #[tracing::instrument(name = "evict", skip_all, fields(table = %self.table))]
    async fn evict(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DynamoDbRegistryError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(HOST_ID, key(host_id))
            .update_expression(EVICT_UPDATE)
            .condition_expression(PRESENT)
            .set_expression_attribute_names(Some(names_in(&[EVICT_UPDATE, PRESENT])))
            .expression_attribute_values(":evicted_at", millis(now))
            .send()
            .await;
        let updated =
            unless_condition_failed(updated).map_err(|e| self.failed(e, Operation::UpdateItem))?;
        Ok(updated.is_some())
    }

    #[tracing::instrument(name = "purge_enrollments", skip_all, fields(table = %self.table))]
    async fn purge(&self, older_than: DateTime<Utc>) -> Result<u64, DynamoDbRegistryError> {
        let filter = format!("begins_with(#host_id, :prefix) AND {LAST_SEEN_BEFORE}");
        let values = HashMap::from([
            (":prefix".to_owned(), AttributeValue::S(PREFIX.to_owned())),
            (":cutoff".to_owned(), millis(older_than)),
        ]);
        self.delete_where(&filter, LAST_SEEN_BEFORE, &values).await
    }

    #[tracing::instrument(name = "count_enrolled", skip_all, fields(table = %self.table))]
    async fn count_enrolled(&self) -> Result<u64, DynamoDbRegistryError> {
        let op = Operation::Scan;
        let mut counted = 0_u64;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        for _ in 0..self.max_count_pages {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .select(Select::Count)
                .filter_expression(ENROLLED)
                .set_expression_attribute_names(Some(names_in(&[ENROLLED])))
                .expression_attribute_values(":prefix", AttributeValue::S(PREFIX.to_owned()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.failed(e, op))?;
            let on_page = u64::try_from(page.count()).unwrap_or(0);
            counted = counted.saturating_add(on_page);
            match page.last_evaluated_key() {
                Some(last) => start = Some(last.clone()),
                None => return Ok(counted),
            }
        }
        let err = DynamoDbRegistryError::TooManyPages {
            operation: op,
            table: self.table.clone(),
            pages: self.max_count_pages,
        };
        tracing::warn!("count_enrolled stopped: {err}");
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn names_are_those_the_expressions_use() {
        let used = names_in(&[RENEW_UPDATE, PRESENT_NOT_EVICTED]);
        let mut keys: Vec<_> = used.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "#evicted_at",
                "#host_id",
                "#last_renewed",
                "#not_after",
                "#serial"
            ]
        );
        assert_eq!(used["#serial"], SERIAL);
        // A name that is a prefix of another is not taken for it.
        assert!(names_in(&["#pending_time_x"]).is_empty());
    }

    #[test]
    fn items_read_back_as_records() {
        let t = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
        let joined = Enrollment::joined(
            "123456789012-i-0abc",
            "123456789012",
            "us-east-1",
            "i-0abc",
            3,
            t,
            "0a",
            t,
            t,
        );
        let mut stored = item(&joined);
        stored.insert(HOST_ID.to_owned(), key(&joined.host_id));
        assert_eq!(enrollment_of(&stored), Ok(joined.clone()));
        stored.insert(EVICTED_AT.to_owned(), millis(t));
        assert_eq!(enrollment_of(&stored).unwrap().evicted_at, Some(t));
        stored.insert(MATCHED_RULE.to_owned(), number(-1));
        assert_eq!(enrollment_of(&stored), Err("matched_rule out of range"));
        stored.insert(HOST_ID.to_owned(), AttributeValue::S("h".to_owned()));
        assert_eq!(enrollment_of(&stored), Err("not an enrollment key"));
        assert_eq!(
            enrollment_of(&HashMap::new()),
            Err("a text attribute is missing")
        );
    }
}
