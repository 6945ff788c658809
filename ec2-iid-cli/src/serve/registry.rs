//! The join registry `--registry` names, behind one type: each backend is one variant of
//! [`Registry`] and of [`RegistryError`], and one arm of [`Registry::open`].

use core::fmt;
use core::time::Duration;

use aws_config::SdkConfig;
#[cfg(feature = "dynamodb")]
use aws_config::timeout::TimeoutConfig;
use chrono::{DateTime, Utc};
use ec2_iid::{
    ClaimRecord, Enrollment, EnrollmentRegistry, InMemoryJoinRegistry, JoinClaim, JoinRegistry,
};
#[cfg(feature = "dynamodb")]
use ec2_iid_aws::dynamodb::{DynamoDbJoinRegistry, DynamoDbRegistryError};
#[cfg(feature = "postgres")]
use ec2_iid_postgres::{PostgresJoinRegistry, PostgresRegistryError};
use tracing::Instrument as _;

use super::args::RegistrySpec;
#[cfg(any(feature = "postgres", feature = "dynamodb"))]
use super::error_chain;

/// The server's join registry.
#[derive(Debug)]
pub(crate) enum Registry {
    Memory(InMemoryJoinRegistry),
    #[cfg(feature = "postgres")]
    Postgres(PostgresJoinRegistry),
    #[cfg(feature = "dynamodb")]
    DynamoDb(DynamoDbJoinRegistry),
}

/// A registry that did not answer.
#[derive(Debug)]
pub(crate) enum RegistryError {
    #[cfg(feature = "postgres")]
    Postgres(PostgresRegistryError),
    #[cfg(feature = "dynamodb")]
    DynamoDb(DynamoDbRegistryError),
}

impl Registry {
    /// Opens the registry of `spec`; PostgreSQL's table is created if missing (`migrate`).
    /// `config` is the AWS SDK configuration (for DynamoDB); `timeout` is `--timeout`, the
    /// time a claim may take before the server answers 503.
    ///
    /// # Errors
    /// The setup error to print.
    pub(crate) async fn open(
        spec: &RegistrySpec,
        config: &SdkConfig,
        timeout: Duration,
    ) -> Result<Self, String> {
        let registry = Self::connect(spec, config, timeout)?;
        match &registry {
            Self::Memory(_) => {
                tracing::warn!(
                    "--registry memory: joins are remembered in this process only, so each \
                     replica (and each restart) lets an instance join again; use \
                     --registry postgres:URL or dynamodb:TABLE with more than one replica"
                );
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(postgres) => {
                postgres
                    .migrate()
                    .await
                    .map_err(|e| format!("--registry postgres: {}", error_chain(&e)))?;
                tracing::info!(table = postgres.table(), "join registry: PostgreSQL");
            }
            #[cfg(feature = "dynamodb")]
            Self::DynamoDb(dynamodb) => {
                dynamodb.ensure_table().await.map_err(|e| {
                    format!(
                        "--registry dynamodb:{}: {}",
                        dynamodb.table(),
                        error_chain(&e)
                    )
                })?;
                tracing::info!(table = dynamodb.table(), "join registry: DynamoDB");
            }
        }
        Ok(registry)
    }

    /// The registry of `spec`, its calls bounded by `timeout` as [`open`](Self::open)'s, with
    /// nothing sent yet and no table created (`ec2-iid registry` reads what `serve` made).
    ///
    /// # Errors
    /// The setup error to print: PostgreSQL settings that do not parse, or a kind of registry
    /// whose feature this binary was built without.
    pub(crate) fn connect(
        spec: &RegistrySpec,
        config: &SdkConfig,
        timeout: Duration,
    ) -> Result<Self, String> {
        match spec {
            RegistrySpec::Memory => Ok(Self::Memory(InMemoryJoinRegistry::new())),
            #[cfg(feature = "postgres")]
            RegistrySpec::Postgres(settings) => PostgresJoinRegistry::from_config(settings)
                .and_then(|r| r.with_timeout(postgres_bound(timeout)))
                .map(Self::Postgres)
                .map_err(|e| format!("--registry postgres: {}", error_chain(&e))),
            #[cfg(not(feature = "postgres"))]
            RegistrySpec::Postgres(_) => {
                let _ = timeout;
                Err(crate::built_without("postgres", "--registry postgres:URL"))
            }
            #[cfg(not(feature = "dynamodb"))]
            RegistrySpec::DynamoDb(_) => {
                let _ = config;
                Err(crate::built_without(
                    "dynamodb",
                    "--registry dynamodb:TABLE",
                ))
            }
            #[cfg(feature = "dynamodb")]
            RegistrySpec::DynamoDb(table) => {
                let config = config
                    .to_builder()
                    .timeout_config(sdk_timeouts(timeout))
                    .build();
                Ok(Self::DynamoDb(DynamoDbJoinRegistry::from_conf(
                    &config,
                    table.as_str(),
                )))
            }
        }
    }
}

/// The DynamoDB client's own bounds, below the server's `timeout`: the SDK gives up (each
/// attempt within a third of it, all its retries within 3/4) before the server does, so the
/// server still has time to read the record back and learn whether a write whose answer was
/// lost was recorded, before it answers.
#[cfg(feature = "dynamodb")]
fn sdk_timeouts(timeout: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_attempt_timeout(timeout / 3)
        .operation_timeout(timeout.saturating_mul(3) / 4)
        .build()
}

/// What PostgreSQL gets of `--timeout` for a claim: 80 % of it (the pool's waits and the
/// statement, which the server cancels: `statement_timeout`, `lock_timeout`). The database must
/// give up before the server answers: a claim cancelled by the database did not commit, so the
/// 503 it gets leaves the retry free to join; a claim still running when the server answers
/// could commit afterwards and refuse that retry (`already_joined`). The other 20 % (at least
/// 200 ms at `--timeout 1`) is for the error to come back over the network.
#[cfg(feature = "postgres")]
pub(crate) fn postgres_bound(timeout: Duration) -> Duration {
    timeout * 4 / 5
}

impl RegistryError {
    /// Whether the same claim may succeed later (503 rather than 500).
    pub(crate) fn is_transient(&self) -> bool {
        match *self {
            #[cfg(feature = "postgres")]
            Self::Postgres(ref e) => e.is_transient(),
            #[cfg(feature = "dynamodb")]
            Self::DynamoDb(ref e) => e.is_transient(),
        }
    }
}

impl fmt::Display for RegistryError {
    #[cfg_attr(
        not(any(feature = "postgres", feature = "dynamodb")),
        expect(unused_variables, reason = "no registry that can fail was built")
    )]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            #[cfg(feature = "postgres")]
            Self::Postgres(ref e) => f.write_str(&error_chain(e)),
            #[cfg(feature = "dynamodb")]
            Self::DynamoDb(ref e) => f.write_str(&error_chain(e)),
        }
    }
}

/// `$call` on the backend `$registry` of `$self`, awaited, with its error as a
/// [`RegistryError`] (the in-memory registry never fails).
macro_rules! on_backend {
    ($self:ident, $registry:ident => $call:expr) => {
        match $self {
            Registry::Memory($registry) => match $call.await {
                Ok(value) => Ok(value),
                Err(never) => match never {},
            },
            #[cfg(feature = "postgres")]
            Registry::Postgres($registry) => $call.await.map_err(RegistryError::Postgres),
            #[cfg(feature = "dynamodb")]
            Registry::DynamoDb($registry) => $call.await.map_err(RegistryError::DynamoDb),
        }
    };
}

impl JoinRegistry for Registry {
    type Error = RegistryError;

    async fn record(
        &self,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimRecord>, RegistryError> {
        let span = tracing::info_span!("registry_read", host_id = %host_id);
        async { on_backend!(self, registry => registry.record(host_id, now)) }
            .instrument(span)
            .await
    }

    async fn claim(&self, claim: &JoinClaim) -> Result<bool, RegistryError> {
        let span = tracing::info_span!("registry", host_id = %claim.host_id);
        async { on_backend!(self, registry => registry.claim(claim)) }
            .instrument(span)
            .await
    }
}

/// The backend's enrollment records; serve's enrollment and renewal calls and `ec2-iid
/// registry` go through it.
impl EnrollmentRegistry for Registry {
    type Error = RegistryError;

    async fn enroll(&self, enrollment: &Enrollment) -> Result<bool, RegistryError> {
        let span = tracing::info_span!("enroll", host_id = %enrollment.host_id);
        async { on_backend!(self, registry => registry.enroll(enrollment)) }
            .instrument(span)
            .await
    }

    async fn renew(
        &self,
        host_id: &str,
        serial: &str,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Enrollment>, RegistryError> {
        let span = tracing::info_span!("enrollment_renew", host_id = %host_id);
        async { on_backend!(self, registry => registry.renew(host_id, serial, not_after, now)) }
            .instrument(span)
            .await
    }

    async fn get(&self, host_id: &str) -> Result<Option<Enrollment>, RegistryError> {
        let span = tracing::info_span!("enrollment_read", host_id = %host_id);
        async { on_backend!(self, registry => registry.get(host_id)) }
            .instrument(span)
            .await
    }

    async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Enrollment>, RegistryError> {
        on_backend!(self, registry => registry.list(after, limit))
    }

    async fn evict(&self, host_id: &str, now: DateTime<Utc>) -> Result<bool, RegistryError> {
        on_backend!(self, registry => registry.evict(host_id, now))
    }

    async fn purge(&self, older_than: DateTime<Utc>) -> Result<u64, RegistryError> {
        on_backend!(self, registry => registry.purge(older_than))
    }

    async fn count_enrolled(&self) -> Result<u64, RegistryError> {
        on_backend!(self, registry => registry.count_enrolled())
    }
}

impl Registry {
    /// Deletes the join claims expired at `now`; returns how many (none in memory, where
    /// claims drop out as new ones come in).
    #[cfg_attr(
        not(any(feature = "postgres", feature = "dynamodb")),
        expect(unused_variables, reason = "no registry that keeps claims was built")
    )]
    pub(crate) async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RegistryError> {
        match self {
            Self::Memory(_) => Ok(0),
            #[cfg(feature = "postgres")]
            Self::Postgres(r) => r.purge_expired(now).await.map_err(RegistryError::Postgres),
            #[cfg(feature = "dynamodb")]
            Self::DynamoDb(r) => r.purge_expired(now).await.map_err(RegistryError::DynamoDb),
        }
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn postgres_gives_up_before_the_server() {
        assert_eq!(
            postgres_bound(Duration::from_secs(1)),
            Duration::from_millis(800)
        );
        assert_eq!(
            postgres_bound(Duration::from_secs(10)),
            Duration::from_secs(8)
        );
    }
}
