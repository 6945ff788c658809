//! [`Ec2Lookup`]: `ec2:DescribeInstances` through the AWS SDK, with cached regional clients and
//! cached `sts:AssumeRole` credentials.

use core::fmt;
use core::time::Duration;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::config::interceptors::InterceptorContext;
use aws_sdk_ec2::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_ec2::config::{Credentials, Region as SdkRegion};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesError;
use aws_smithy_async::future::timeout::Timeout;
use aws_smithy_async::rt::sleep::{AsyncSleep, default_async_sleep};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::timeout::TimeoutConfig;
use ec2_iid::ids::{InstanceId, Partition, Region, RoleArn};
use ec2_iid::{InstanceFacts, InstanceLookup, InstanceQuery};
use tokio::sync::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard};

use crate::error::{CallContext, Ec2LookupError, Operation, is_throttling_code};
use crate::facts::facts_from_output;
use crate::organizations::{Organizations, OrganizationsSettings};

/// The default per-call timeout: 10 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default STS role session name: `ec2-iid`.
pub const DEFAULT_SESSION_NAME: &str = "ec2-iid";

/// How long the role of an instance profile is kept: a profile's role rarely changes, and IAM's
/// `GetInstanceProfile` is throttled per account.
pub const PROFILE_ROLE_TTL: Duration = Duration::from_secs(5 * 60);

/// The most instance profiles whose roles are kept at once; past it, the stale entries go, and
/// then all.
const MAX_PROFILE_ENTRIES: usize = 4096;

/// Assumed-role credentials are replaced this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Error codes of `DescribeInstances` that mean "no such instance": `Ok(None)`.
///
/// `InvalidInstanceID.Malformed` is one of them: the id comes from an AWS-signed document, so
/// an id EC2 calls malformed cannot belong to an instance, and the lookup fails closed as it
/// does for an unknown id.
const NOT_FOUND: &[&str] = &["InvalidInstanceID.Malformed", "InvalidInstanceID.NotFound"];

/// Looks up EC2 instances with the AWS SDK: implements [`ec2_iid::InstanceLookup`].
///
/// Built once from the caller's [`SdkConfig`] (its credential chain, retry configuration, HTTP
/// client, FIPS and dual-stack settings are kept) and shared: it is cheap to clone, and the
/// clones share one cache. Per query it
///
/// 1. picks an EC2 client for the query's region and role, made once and cached;
/// 2. for a query with a [`role_arn`](InstanceQuery::role_arn), first assumes that role with
///    `sts:AssumeRole` at the STS endpoint of the query's region (so of its partition), and
///    caches the credentials until five minutes before they expire;
/// 3. calls `ec2:DescribeInstances` for the instance id and maps the answer to
///    [`InstanceFacts`]. An instance EC2 does not know is `Ok(None)`;
/// 4. for a running instance, when the query [needs the instance
///    role](InstanceQuery::needs_instance_role), asks `iam:GetInstanceProfile` with the same
///    credentials (cached per profile for [`PROFILE_ROLE_TTL`]); when it [needs the
///    organization](InstanceQuery::needs_organization), reads the account's organization and
///    OUs from the [organizations source](Ec2LookupBuilder::organizations_role).
///
/// Each AWS call, with the SDK's retries, is bounded by the [timeout](Ec2LookupBuilder::timeout)
/// (default 10 s).
///
/// ```no_run
/// use ec2_iid::{InstanceLookup, InstanceQuery};
/// use ec2_iid::ids::InstanceState;
/// use ec2_iid_aws::Ec2Lookup;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let lookup = Ec2Lookup::new(&config);
///
/// let query = InstanceQuery::new(
///     "123456789012".parse()?,
///     "i-0123456789abcdef0".parse()?,
///     "eu-west-1".parse()?,
/// )
/// .with_role_arn(Some("arn:aws:iam::123456789012:role/ec2-iid-describe".parse()?));
/// match lookup.describe_instance(&query).await? {
///     Some(facts) if facts.state == InstanceState::Running => println!("running"),
///     Some(facts) => println!("not running: {}", facts.state),
///     None => println!("no such instance"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Ec2Lookup {
    inner: Arc<Inner>,
}

/// The shared state of an [`Ec2Lookup`] and its clones.
///
/// Why the assumed-role credentials are cached here rather than by `aws-config`'s
/// `AssumeRoleProvider`: that provider assumes the role lazily, inside the EC2 (or IAM) call's
/// credential resolution, so a refused `sts:AssumeRole` comes back as a generic credentials
/// error of `DescribeInstances`. Assuming it here keeps it a call of its own, with its own
/// [`Operation::AssumeRole`] in [`Ec2LookupError`], its own timeout and its own span, so an
/// operator is told which policy to fix (the role's trust policy, not the role's EC2
/// permissions); the slot's lock, bounded by the per-call timeout, also lets concurrent
/// lookups share one `AssumeRole` without queueing behind a slow STS.
struct Inner {
    settings: Settings,
    /// One slot per (region, role); the slot's lock makes concurrent lookups for the same key
    /// wait for one `AssumeRole` instead of each making their own.
    clients: Mutex<HashMap<ClientKey, Arc<AsyncMutex<Option<CachedClient>>>>>,
    /// `DescribeInstances` requests sent (each page counts).
    describe_calls: AtomicU64,
    /// The roles of instance profiles, by profile ARN; one slot per profile, so that
    /// concurrent lookups of one profile make one `GetInstanceProfile`.
    profile_roles: Mutex<HashMap<String, Arc<AsyncMutex<Option<CachedRoles>>>>>,
    /// `GetInstanceProfile` requests sent.
    profile_calls: AtomicU64,
    /// The organization directory, if configured.
    organizations: Option<Organizations>,
}

#[derive(Debug)]
struct CachedRoles {
    roles: Vec<String>,
    fetched: Instant,
}

/// The builder's settings, fixed at `build`.
#[derive(Clone, Debug)]
struct Settings {
    config: SdkConfig,
    partition_configs: Vec<(Partition, SdkConfig)>,
    timeout: Duration,
    session_name: String,
    ec2_endpoint_url: Option<String>,
    sts_endpoint_url: Option<String>,
    iam_endpoint_url: Option<String>,
    organizations: OrganizationsSettings,
    /// The `ExternalId` to send when assuming a role, by role ARN.
    external_ids: HashMap<String, String>,
    /// Whether the EC2 client's own retries may retry a throttled call; `false` once a
    /// [`BatchingLookup`](crate::BatchingLookup) paces the calls (its retries take tokens, the
    /// SDK's would not).
    sdk_retries_throttled: bool,
}

#[derive(Clone, Debug, Eq, Hash, PartialEq)]
struct ClientKey {
    region: Region,
    role_arn: Option<String>,
}

impl ClientKey {
    fn of(query: &InstanceQuery) -> Self {
        Self {
            region: query.region.clone(),
            role_arn: query.role_arn.as_ref().map(|r| r.as_str().to_owned()),
        }
    }
}

#[derive(Debug)]
struct CachedClient {
    client: aws_sdk_ec2::Client,
    /// IAM with the same credentials, for `GetInstanceProfile`.
    iam: aws_sdk_iam::Client,
    /// When the client's assumed-role credentials expire; `None` for the caller's own.
    expires: Option<SystemTime>,
}

impl CachedClient {
    fn fresh_at(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|expires| {
            now.checked_add(REFRESH_BEFORE_EXPIRY)
                .is_some_and(|deadline| deadline < expires)
        })
    }
}

impl Ec2Lookup {
    /// A lookup with the default settings: 10 s per call, session name `ec2-iid`, the SDK's
    /// regional endpoints.
    ///
    /// If `config` has no [behavior version](BehaviorVersion), the SDK's latest is used.
    ///
    /// ```no_run
    /// # async fn run() {
    /// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    /// let lookup = ec2_iid_aws::Ec2Lookup::new(&config);
    /// # }
    /// ```
    #[must_use]
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_settings(Ec2LookupBuilder::new(config).settings)
    }

    /// A builder for a lookup with other settings.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// # async fn run() -> Result<(), ec2_iid_aws::ConfigError> {
    /// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    /// let lookup = ec2_iid_aws::Ec2Lookup::builder(&config)
    ///     .timeout(Duration::from_secs(5))
    ///     .session_name("join-server")
    ///     .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(config: &SdkConfig) -> Ec2LookupBuilder {
        Ec2LookupBuilder::new(config)
    }

    /// A lookup with these settings whose EC2 calls the SDK never retries when throttled,
    /// for a [`BatchingLookup`](crate::BatchingLookup), which retries them paced.
    pub(crate) fn without_sdk_throttling_retries(&self) -> Self {
        let mut settings = self.inner.settings.clone();
        settings.sdk_retries_throttled = false;
        Self::from_settings(settings)
    }

    fn from_settings(settings: Settings) -> Self {
        let mut organizations = settings.organizations.clone();
        organizations.timeout = settings.timeout;
        let organizations = Organizations::new(&organizations, &settings.config);
        Self {
            inner: Arc::new(Inner {
                settings,
                clients: Mutex::new(HashMap::new()),
                describe_calls: AtomicU64::new(0),
                profile_roles: Mutex::new(HashMap::new()),
                profile_calls: AtomicU64::new(0),
                organizations,
            }),
        }
    }

    /// The per-call timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.inner.settings.timeout
    }

    /// How many `DescribeInstances` requests this lookup (and its clones) has sent, each page
    /// of a paginated answer counted: for metrics and tests.
    ///
    /// ```
    /// # let config = aws_config::SdkConfig::builder().build();
    /// assert_eq!(ec2_iid_aws::Ec2Lookup::new(&config).describe_calls(), 0);
    /// ```
    #[must_use]
    pub fn describe_calls(&self) -> u64 {
        self.inner.describe_calls.load(Ordering::Relaxed)
    }

    /// How many `GetInstanceProfile` requests this lookup (and its clones) has sent: for
    /// metrics and tests.
    ///
    /// ```
    /// # let config = aws_config::SdkConfig::builder().build();
    /// assert_eq!(ec2_iid_aws::Ec2Lookup::new(&config).profile_calls(), 0);
    /// ```
    #[must_use]
    pub fn profile_calls(&self) -> u64 {
        self.inner.profile_calls.load(Ordering::Relaxed)
    }

    /// How many AWS Organizations requests (`ListAccounts` and `ListParents` pages) this
    /// lookup (and its clones) has sent: for metrics and tests.
    #[must_use]
    pub fn organizations_calls(&self) -> u64 {
        self.inner
            .organizations
            .as_ref()
            .map_or(0, Organizations::calls)
    }

    /// Adds what the query needs beyond `DescribeInstances` to the facts of a running
    /// instance: the role of its profile, its account's organization.
    pub(crate) async fn complete(
        &self,
        query: &InstanceQuery,
        facts: Option<InstanceFacts>,
    ) -> Result<Option<InstanceFacts>, Ec2LookupError> {
        let Some(mut facts) = facts else {
            return Ok(None);
        };
        if facts.state != ec2_iid::ids::InstanceState::Running {
            return Ok(Some(facts));
        }
        if query.needs_instance_role {
            facts.iam_role_arns = Some(match facts.iam_instance_profile_arn.as_deref() {
                None => Vec::new(),
                Some(profile) => self.profile_roles(query, profile).await?,
            });
        }
        if query.needs_organization {
            let organizations = self
                .inner
                .organizations
                .as_ref()
                .ok_or(Ec2LookupError::NoOrganizationSource)?;
            facts.organization = Some(organizations.account(&query.account).await?);
        }
        Ok(Some(facts))
    }

    /// The role ARNs of the instance profile `profile_arn` (of the query's account), from the
    /// cache or `iam:GetInstanceProfile` with the query's credentials.
    #[tracing::instrument(name = "get_instance_profile", skip_all, fields(profile = profile_arn))]
    async fn profile_roles(
        &self,
        query: &InstanceQuery,
        profile_arn: &str,
    ) -> Result<Vec<String>, Ec2LookupError> {
        let slot = self.profile_slot(profile_arn);
        let settings = &self.inner.settings;
        let config = settings.config_for(query.partition);
        let mut cached = settings
            .lock_slot(&slot, config, Operation::GetInstanceProfile)
            .await?;
        if let Some(cached) = cached.as_ref()
            && cached.fetched.elapsed() < PROFILE_ROLE_TTL
        {
            return Ok(cached.roles.clone());
        }
        let key = ClientKey::of(query);
        let (_, iam) = self.client_for(&key, query).await?;
        // The name is the ARN's last segment: `instance-profile/<path/>name`.
        let name = profile_arn.rsplit('/').next().unwrap_or_default();
        self.inner.profile_calls.fetch_add(1, Ordering::Relaxed);
        let roles = match iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
        {
            Ok(output) => output
                .instance_profile()
                .filter(|profile| profile.arn() == profile_arn)
                .map(|profile| {
                    profile
                        .roles()
                        .iter()
                        .map(|role| role.arn().to_owned())
                        .take(MAX_PROFILE_ROLES)
                        .collect()
                })
                .unwrap_or_default(),
            // The profile is gone: it has no role.
            Err(err) if err.code() == Some("NoSuchEntity") => Vec::new(),
            Err(err) => {
                let context = CallContext {
                    region: &query.region,
                    timeout: settings.timeout,
                    endpoint_overridden: settings.iam_endpoint_url.is_some(),
                };
                let err = Ec2LookupError::from_sdk(err, Operation::GetInstanceProfile, &context);
                tracing::warn!("GetInstanceProfile failed: {err}");
                return Err(err);
            }
        };
        *cached = Some(CachedRoles {
            roles: roles.clone(),
            fetched: Instant::now(),
        });
        Ok(roles)
    }

    /// The cache slot of `profile_arn`, made if missing; a full cache drops its stale
    /// entries first, and everything if none is stale.
    fn profile_slot(&self, profile_arn: &str) -> Arc<AsyncMutex<Option<CachedRoles>>> {
        let mut slots = self
            .inner
            .profile_roles
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !slots.contains_key(profile_arn) && slots.len() >= MAX_PROFILE_ENTRIES {
            slots.retain(|_, slot| {
                slot.try_lock().is_ok_and(|cached| {
                    cached
                        .as_ref()
                        .is_some_and(|c| c.fetched.elapsed() < PROFILE_ROLE_TTL)
                })
            });
            if slots.len() >= MAX_PROFILE_ENTRIES {
                slots.clear();
            }
        }
        Arc::clone(slots.entry(profile_arn.to_owned()).or_default())
    }

    fn count_describe_call(&self) {
        self.inner.describe_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Describes one instance: what [`InstanceLookup::describe_instance`] does.
    #[tracing::instrument(
        name = "describe_instances",
        skip_all,
        fields(region = %query.region, role = query.role_arn.as_ref().map(|r| r.as_str()), instances = 1)
    )]
    async fn describe(
        &self,
        query: &InstanceQuery,
    ) -> Result<Option<InstanceFacts>, Ec2LookupError> {
        let key = ClientKey::of(query);
        let (client, _) = self.client_for(&key, query).await?;
        self.count_describe_call();
        let result = client
            .describe_instances()
            .instance_ids(query.instance_id.as_str())
            .send()
            .await;
        let facts = match result {
            Ok(output) => facts_from_output(&output, &query.instance_id)?,
            Err(err) if is_not_found(&err) => None,
            Err(err) => return Err(self.call_failed(err, &key, query)),
        };
        self.complete(query, facts).await
    }

    /// Describes several instances of the query's account, region and role in one call per
    /// page, with the `instance-id` *filter*: an unknown id is simply not in the answer (with
    /// `InstanceIds` one unknown id fails the whole call). The answer is in the order of `ids`.
    #[tracing::instrument(
        name = "describe_instances",
        skip_all,
        fields(region = %query.region, role = query.role_arn.as_ref().map(|r| r.as_str()), instances = ids.len())
    )]
    pub(crate) async fn describe_many(
        &self,
        query: &InstanceQuery,
        ids: &[InstanceId],
    ) -> Result<Vec<Option<InstanceFacts>>, Ec2LookupError> {
        let key = ClientKey::of(query);
        let (client, _) = self.client_for(&key, query).await?;
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("instance-id")
            .set_values(Some(ids.iter().map(|id| id.as_str().to_owned()).collect()))
            .build();
        let mut found: Vec<Option<InstanceFacts>> = vec![None; ids.len()];
        let mut next_token: Option<String> = None;
        loop {
            self.count_describe_call();
            let output = client
                .describe_instances()
                .filters(filter.clone())
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|err| self.call_failed(err, &key, query))?;
            for (slot, id) in found.iter_mut().zip(ids) {
                if slot.is_none() {
                    *slot = facts_from_output(&output, id)?;
                }
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(found),
            }
        }
    }

    /// The error for a failed `DescribeInstances`; an assumed session that was refused is
    /// dropped, so that the next call assumes the role again (it may have been revoked).
    fn call_failed<E>(
        &self,
        err: SdkError<E, HttpResponse>,
        key: &ClientKey,
        query: &InstanceQuery,
    ) -> Ec2LookupError
    where
        E: ProvideErrorMetadata + core::error::Error + Send + Sync + 'static,
    {
        let settings = &self.inner.settings;
        let context = CallContext {
            region: &query.region,
            timeout: settings.timeout,
            endpoint_overridden: settings.ec2_endpoint_url.is_some(),
        };
        let err = Ec2LookupError::from_sdk(err, Operation::DescribeInstances, &context);
        tracing::warn!("DescribeInstances failed: {err}");
        if key.role_arn.is_some() && matches!(err, Ec2LookupError::AccessDenied { .. }) {
            self.clients().remove(key);
        }
        err
    }

    /// The cached EC2 and IAM clients for `key`, made (and its role assumed) if missing or
    /// expiring.
    async fn client_for(
        &self,
        key: &ClientKey,
        query: &InstanceQuery,
    ) -> Result<(aws_sdk_ec2::Client, aws_sdk_iam::Client), Ec2LookupError> {
        if let Some(role_arn) = &key.role_arn {
            check_role_arn(role_arn, query.partition)?;
        }
        let slot = Arc::clone(self.clients().entry(key.clone()).or_default());
        let settings = &self.inner.settings;
        let config = settings.config_for(query.partition);
        let mut cached = settings
            .lock_slot(&slot, config, Operation::AssumeRole)
            .await?;
        let now = config
            .time_source()
            .map_or_else(SystemTime::now, |source| source.now());
        if let Some(cached) = cached.as_ref()
            && cached.fresh_at(now)
        {
            return Ok((cached.client.clone(), cached.iam.clone()));
        }
        let (credentials, expires) = match &key.role_arn {
            None => (None, None),
            Some(role_arn) => {
                let credentials = settings.assume_role(config, query, role_arn).await?;
                let expires = credentials.expiry();
                (Some(credentials), expires)
            }
        };
        let iam = settings.iam_client(config, &query.region, credentials.clone());
        let client = settings.ec2_client(config, &query.region, credentials);
        *cached = Some(CachedClient {
            client: client.clone(),
            iam: iam.clone(),
            expires,
        });
        Ok((client, iam))
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<ClientKey, Arc<AsyncMutex<Option<CachedClient>>>>> {
        // The map is never left half-updated, so a panic elsewhere cannot poison its content.
        self.inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl InstanceLookup for Ec2Lookup {
    type Error = Ec2LookupError;

    /// Describes the instance with `ec2:DescribeInstances`, after `sts:AssumeRole` if the query
    /// has a role.
    ///
    /// # Errors
    ///
    /// An [`Ec2LookupError`] of the kind of the failure; `Ok(None)` is "no such instance".
    async fn describe_instance(
        &self,
        query: &InstanceQuery,
    ) -> Result<Option<InstanceFacts>, Ec2LookupError> {
        self.describe(query).await
    }
}

impl fmt::Debug for Ec2Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.inner.settings;
        f.debug_struct("Ec2Lookup")
            .field("timeout", &settings.timeout)
            .field("session_name", &settings.session_name)
            .field("ec2_endpoint_url", &settings.ec2_endpoint_url)
            .field("sts_endpoint_url", &settings.sts_endpoint_url)
            .field(
                "external_id_roles",
                &settings.external_ids.keys().collect::<Vec<_>>(),
            )
            .field(
                "partition_configs",
                &settings
                    .partition_configs
                    .iter()
                    .map(|(p, _)| p)
                    .collect::<Vec<_>>(),
            )
            .field("cached_clients", &self.clients().len())
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Locks a cache slot, waiting at most the timeout for a lookup that is filling it (so a
    /// slow or failing STS or IAM cannot queue lookups behind each other).
    async fn lock_slot<'a, T>(
        &self,
        slot: &'a AsyncMutex<T>,
        config: &SdkConfig,
        operation: Operation,
    ) -> Result<AsyncMutexGuard<'a, T>, Ec2LookupError> {
        if let Ok(guard) = slot.try_lock() {
            return Ok(guard);
        }
        let Some(sleep) = config.sleep_impl().or_else(default_async_sleep) else {
            // No timer to bound the wait with: wait for the other lookup's own bounded call.
            return Ok(slot.lock().await);
        };
        Timeout::new(slot.lock(), sleep.sleep(self.timeout))
            .await
            .map_err(|timed_out| Ec2LookupError::Timeout {
                operation,
                timeout: self.timeout,
                source: Box::new(timed_out),
            })
    }

    /// The SDK configuration for a query in `partition`.
    fn config_for(&self, partition: Partition) -> &SdkConfig {
        self.partition_configs
            .iter()
            .find(|(p, _)| *p == partition)
            .map_or(&self.config, |(_, config)| config)
    }

    /// The SDK's timeout configuration with the per-call timeout as the operation timeout.
    fn timeout_config(&self, config: &SdkConfig) -> TimeoutConfig {
        config
            .timeout_config()
            .map(TimeoutConfig::to_builder)
            .unwrap_or_default()
            .operation_timeout(self.timeout)
            .build()
    }

    fn ec2_client(
        &self,
        config: &SdkConfig,
        region: &Region,
        credentials: Option<Credentials>,
    ) -> aws_sdk_ec2::Client {
        let mut builder = aws_sdk_ec2::config::Builder::from(config)
            .region(SdkRegion::new(region.to_string()))
            .timeout_config(self.timeout_config(config));
        if config.behavior_version().is_none() {
            builder = builder.behavior_version(BehaviorVersion::latest());
        }
        if let Some(credentials) = credentials {
            builder = builder.credentials_provider(credentials);
        }
        if let Some(url) = &self.ec2_endpoint_url {
            builder = builder.endpoint_url(url);
        }
        if !self.sdk_retries_throttled {
            builder = builder.retry_classifier(NoThrottlingRetries);
        }
        aws_sdk_ec2::Client::from_conf(builder.build())
    }

    /// An IAM client with the EC2 client's credentials. IAM is global: the SDK sends the
    /// query's region to the endpoint of its partition.
    fn iam_client(
        &self,
        config: &SdkConfig,
        region: &Region,
        credentials: Option<Credentials>,
    ) -> aws_sdk_iam::Client {
        let mut builder = aws_sdk_iam::config::Builder::from(config)
            .region(SdkRegion::new(region.to_string()))
            .timeout_config(self.timeout_config(config));
        if config.behavior_version().is_none() {
            builder = builder.behavior_version(BehaviorVersion::latest());
        }
        if let Some(credentials) = credentials {
            builder = builder.credentials_provider(credentials);
        }
        if let Some(url) = &self.iam_endpoint_url {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_iam::Client::from_conf(builder.build())
    }

    #[tracing::instrument(skip_all, fields(region = %query.region, role = role_arn))]
    async fn assume_role(
        &self,
        config: &SdkConfig,
        query: &InstanceQuery,
        role_arn: &str,
    ) -> Result<Credentials, Ec2LookupError> {
        let mut builder = aws_sdk_sts::config::Builder::from(config)
            .region(SdkRegion::new(query.region.to_string()))
            .timeout_config(self.timeout_config(config));
        if config.behavior_version().is_none() {
            builder = builder.behavior_version(BehaviorVersion::latest());
        }
        if let Some(url) = &self.sts_endpoint_url {
            builder = builder.endpoint_url(url);
        }
        let output = aws_sdk_sts::Client::from_conf(builder.build())
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.external_ids.get(role_arn).cloned())
            .send()
            .await
            .map_err(|err| {
                let context = CallContext {
                    region: &query.region,
                    timeout: self.timeout,
                    endpoint_overridden: self.sts_endpoint_url.is_some(),
                };
                let err = Ec2LookupError::from_sdk(err, Operation::AssumeRole, &context);
                tracing::warn!("AssumeRole failed: {err}");
                err
            })?;
        let invalid = |reason| Ec2LookupError::InvalidResponse {
            operation: Operation::AssumeRole,
            reason,
        };
        let credentials = output
            .credentials()
            .ok_or_else(|| invalid("no credentials"))?;
        let expires = SystemTime::try_from(*credentials.expiration())
            .map_err(|_| invalid("credentials expiration out of range"))?;
        Ok(Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            Some(expires),
            "ec2-iid-aws AssumeRole",
        ))
    }
}

/// Whether `DescribeInstances` answered "no such instance".
fn is_not_found<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| NOT_FOUND.contains(&code))
}

/// Checks that `role_arn` is `arn:<partition>:iam::<account>:role/<name>` for the query's
/// partition, before any call is made with it.
fn check_role_arn(role_arn: &str, partition: Partition) -> Result<(), Ec2LookupError> {
    let mut parts = role_arn.splitn(6, ':');
    let valid = parts.next() == Some("arn")
        && parts.next() == Some(partition.as_str())
        && parts.next() == Some("iam")
        && parts.next() == Some("")
        && parts.next().is_some_and(|account| {
            account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
        })
        && parts
            .next()
            .and_then(|resource| resource.strip_prefix("role/"))
            .is_some_and(|name| !name.is_empty());
    if valid {
        Ok(())
    } else {
        Err(Ec2LookupError::InvalidRoleArn {
            role_arn: role_arn.to_owned(),
            partition,
        })
    }
}

/// Builds an [`Ec2Lookup`]; from [`Ec2Lookup::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct Ec2LookupBuilder {
    settings: Settings,
}

impl Ec2LookupBuilder {
    fn new(config: &SdkConfig) -> Self {
        Self {
            settings: Settings {
                config: config.clone(),
                partition_configs: Vec::new(),
                timeout: DEFAULT_TIMEOUT,
                session_name: DEFAULT_SESSION_NAME.to_owned(),
                ec2_endpoint_url: None,
                sts_endpoint_url: None,
                iam_endpoint_url: None,
                organizations: OrganizationsSettings::default(),
                external_ids: HashMap::new(),
                sdk_retries_throttled: true,
            },
        }
    }

    /// The time limit for each AWS call (`AssumeRole`, `DescribeInstances`), the SDK's retries
    /// included. Default: [`DEFAULT_TIMEOUT`] (10 s).
    ///
    /// It becomes the SDK's operation timeout; the SDK configuration's connect, read and
    /// per-attempt timeouts stay as they are. A failed lookup is
    /// [`Ec2LookupError::Timeout`]. Must not be zero.
    ///
    /// ```
    /// # let config = aws_config::SdkConfig::builder().build();
    /// let lookup = ec2_iid_aws::Ec2Lookup::builder(&config)
    ///     .timeout(std::time::Duration::from_secs(3))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(lookup.timeout(), std::time::Duration::from_secs(3));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// The `RoleSessionName` of `AssumeRole` calls, shown in the instance account's CloudTrail.
    /// Default: [`DEFAULT_SESSION_NAME`] (`ec2-iid`). 2 to 64 characters of letters, digits
    /// and `_+=,.@-`.
    ///
    /// ```
    /// # let config = aws_config::SdkConfig::builder().build();
    /// let builder = ec2_iid_aws::Ec2Lookup::builder(&config);
    /// assert!(builder.clone().session_name("join-server@eu").build().is_ok());
    /// assert!(builder.session_name("no spaces").build().is_err());
    /// ```
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.settings.session_name = name.into();
        self
    }

    /// Sends EC2, STS, IAM and Organizations calls to `url` instead of the regional
    /// endpoints: for an emulator such as moto. Applies to every region.
    ///
    /// ```
    /// # let config = aws_config::SdkConfig::builder().build();
    /// let lookup = ec2_iid_aws::Ec2Lookup::builder(&config)
    ///     .endpoint_url("http://127.0.0.1:5000")
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn endpoint_url(self, url: impl Into<String>) -> Self {
        let mut builder = self;
        let url = url.into();
        builder.settings.iam_endpoint_url = Some(url.clone());
        builder.settings.organizations.endpoint_url = Some(url.clone());
        builder.ec2_endpoint_url(url.clone()).sts_endpoint_url(url)
    }

    /// Reads the organization of instance accounts (for rules with `aws_organization_id`)
    /// from AWS Organizations through `role_arn`, a role in the management account (or a
    /// delegated administrator's) that may call `organizations:ListAccounts` and
    /// `organizations:ListParents`. Assumed with the builder's credentials.
    ///
    /// The directory is read once, then refreshed every [`organizations_refresh`]
    /// interval (default 10 minutes), one refresh at a time, while lookups use the last good
    /// one; a failed refresh keeps serving it until it is older than the maximum age (default
    /// 1 hour). So replicas do not each page through `ListAccounts` per join, the throttling
    /// that led SPIRE to an accounts file.
    ///
    /// [`organizations_refresh`]: Self::organizations_refresh
    ///
    /// ```
    /// # let config = aws_config::SdkConfig::builder().build();
    /// let role = "arn:aws:iam::111111111111:role/read-organization".parse().unwrap();
    /// let lookup = ec2_iid_aws::Ec2Lookup::builder(&config)
    ///     .organizations_role(role)
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn organizations_role(mut self, role_arn: RoleArn) -> Self {
        self.settings.organizations.role_arn = Some(role_arn);
        self
    }

    /// Reads the organization of instance accounts from `directory` (an accounts file, see
    /// [`OrganizationDirectory`](crate::OrganizationDirectory)) instead of AWS Organizations:
    /// for fleets that cannot call Organizations. Replaces an
    /// [`organizations_role`](Self::organizations_role).
    pub fn organization_directory(mut self, directory: crate::OrganizationDirectory) -> Self {
        self.settings.organizations.directory = Some(Arc::new(directory));
        self
    }

    /// How often the directory read through [`organizations_role`](Self::organizations_role)
    /// is refreshed (default 10 minutes), and how old it may get when refreshes fail (default
    /// 1 hour). `max_age` must not be shorter than `refresh`.
    pub fn organizations_refresh(mut self, refresh: Duration, max_age: Duration) -> Self {
        self.settings.organizations.refresh = refresh;
        self.settings.organizations.max_age = max_age;
        self
    }

    /// Sends EC2 calls to `url` instead of the regional endpoint (e.g. a VPC interface endpoint
    /// without private DNS, or a FIPS endpoint by name). Applies to every region, so use it
    /// when the lookup serves one region; FIPS endpoints are also chosen by the SDK
    /// configuration's `use_fips` (`AWS_USE_FIPS_ENDPOINT=true`), and interface endpoints with
    /// private DNS need no override.
    pub fn ec2_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.settings.ec2_endpoint_url = Some(url.into());
        self
    }

    /// Sends STS calls to `url` instead of the regional endpoint; see
    /// [`ec2_endpoint_url`](Self::ec2_endpoint_url).
    pub fn sts_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.settings.sts_endpoint_url = Some(url.into());
        self
    }

    /// Sends `external_id` as the `ExternalId` of `sts:AssumeRole` for `role_arn`: the value
    /// the role's trust policy requires (`sts:ExternalId` condition), which the account owner
    /// gave to this server's operator. It is server configuration, not part of the join token.
    /// Set again for the same role, the last value wins. 2 to 1224 characters of letters,
    /// digits and `_+=,.@:/-`.
    ///
    /// ```
    /// # let config = aws_config::SdkConfig::builder().build();
    /// let role: ec2_iid::ids::RoleArn = "arn:aws:iam::210987654321:role/describe".parse().unwrap();
    /// let builder = ec2_iid_aws::Ec2Lookup::builder(&config);
    /// assert!(builder.clone().external_id(role.clone(), "tenant-42").build().is_ok());
    /// assert!(builder.external_id(role, "no spaces").build().is_err());
    /// ```
    pub fn external_id(mut self, role_arn: RoleArn, external_id: impl Into<String>) -> Self {
        self.settings
            .external_ids
            .insert(role_arn.as_str().to_owned(), external_id.into());
        self
    }

    /// Uses `config` (its credentials, above all) for queries in `partition`, instead of the
    /// configuration the builder was made with.
    ///
    /// Credentials work in one partition only: a server that admits instances from
    /// `aws-cn` or `aws-us-gov` as well as `aws` needs a credential chain for each.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), ec2_iid_aws::ConfigError> {
    /// use aws_config::BehaviorVersion;
    /// use ec2_iid::ids::Partition;
    ///
    /// let commercial = aws_config::load_defaults(BehaviorVersion::latest()).await;
    /// let china = aws_config::defaults(BehaviorVersion::latest())
    ///     .profile_name("china")
    ///     .load()
    ///     .await;
    /// let lookup = ec2_iid_aws::Ec2Lookup::builder(&commercial)
    ///     .partition_config(Partition::AwsCn, &china)
    ///     .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn partition_config(mut self, partition: Partition, config: &SdkConfig) -> Self {
        self.settings
            .partition_configs
            .retain(|(p, _)| *p != partition);
        self.settings
            .partition_configs
            .push((partition, config.clone()));
        self
    }

    /// The lookup.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroTimeout`] for a zero timeout, [`ConfigError::InvalidSessionName`] for
    /// a session name STS would refuse, [`ConfigError::InvalidExternalId`] for an external id
    /// STS would refuse.
    pub fn build(self) -> Result<Ec2Lookup, ConfigError> {
        if self.settings.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        if !valid_session_name(&self.settings.session_name) {
            return Err(ConfigError::InvalidSessionName);
        }
        self.settings.organizations.check()?;
        if let Some((role_arn, _)) = self
            .settings
            .external_ids
            .iter()
            .find(|(_, id)| !valid_external_id(id))
        {
            return Err(ConfigError::InvalidExternalId {
                role_arn: role_arn.clone(),
            });
        }
        Ok(Ec2Lookup::from_settings(self.settings))
    }
}

/// STS `RoleSessionName`: `[\w+=,.@-]{2,64}`.
fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// STS `ExternalId`: `[\w+=,.@:/-]{2,1224}`.
fn valid_external_id(id: &str) -> bool {
    (2..=1224).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b))
}

/// An [`Ec2LookupBuilder`] setting is invalid.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// An external id is not 2 to 1224 characters of letters, digits and `_+=,.@:/-`.
    #[error("invalid STS external id for {role_arn}: 2 to 1224 of A-Z a-z 0-9 _+=,.@:/- expected")]
    InvalidExternalId {
        /// The role the external id was set for.
        role_arn: String,
    },
    /// An accounts file ([`OrganizationDirectory`](crate::OrganizationDirectory)) is not as
    /// described.
    #[error("invalid accounts file: {reason}")]
    InvalidAccountsFile {
        /// The first field that is not as described, and how.
        reason: String,
    },
    /// A [`BatchingLookupBuilder`](crate::BatchingLookupBuilder) setting is out of range.
    #[error("invalid DescribeInstances pacing: {reason}")]
    InvalidPacing {
        /// Which setting, and its range.
        reason: &'static str,
    },
    /// The STS session name is not 2 to 64 characters of letters, digits and `_+=,.@-`.
    #[error("invalid STS role session name: 2 to 64 of A-Z a-z 0-9 _+=,.@- expected")]
    InvalidSessionName,
    /// The organization directory's refresh interval is zero, or longer than its maximum age.
    #[error("invalid organizations refresh: {reason}")]
    InvalidOrganizationsRefresh {
        /// What is wrong.
        reason: &'static str,
    },
    /// The timeout is zero.
    #[error("lookup timeout must not be zero")]
    ZeroTimeout,
}

/// The most role ARNs kept per profile: IAM allows one.
const MAX_PROFILE_ROLES: usize = 4;

/// Forbids the SDK's retry of a throttled EC2 call: the caller paces its retries instead.
#[derive(Debug)]
struct NoThrottlingRetries;

impl ClassifyRetry for NoThrottlingRetries {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let status_429 = ctx.response().is_some_and(|r| r.status().as_u16() == 429);
        let code = ctx
            .output_or_error()
            .and_then(Result::err)
            .and_then(|e| e.as_operation_error())
            .and_then(|e| e.downcast_ref::<DescribeInstancesError>())
            .and_then(ProvideErrorMetadata::code);
        if status_429 || code.is_some_and(is_throttling_code) {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "ec2-iid: throttled calls are retried paced, by BatchingLookup"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_must_fit_the_partition() {
        let ok = [
            ("arn:aws:iam::123456789012:role/describe", Partition::Aws),
            (
                "arn:aws:iam::123456789012:role/path/to/describe",
                Partition::Aws,
            ),
            ("arn:aws-cn:iam::123456789012:role/r", Partition::AwsCn),
            (
                "arn:aws-us-gov:iam::123456789012:role/r",
                Partition::AwsUsGov,
            ),
        ];
        for (arn, partition) in ok {
            assert!(check_role_arn(arn, partition).is_ok(), "{arn}");
        }
        let bad = [
            ("arn:aws:iam::123456789012:role/r", Partition::AwsCn),
            ("arn:aws-cn:iam::123456789012:role/r", Partition::Aws),
            ("arn:aws:iam::123456789012:user/r", Partition::Aws),
            ("arn:aws:iam::123456789012:role/", Partition::Aws),
            ("arn:aws:iam::12345678901:role/r", Partition::Aws),
            ("arn:aws:sts::123456789012:role/r", Partition::Aws),
            ("arn:aws:iam:us-east-1:123456789012:role/r", Partition::Aws),
            ("describe", Partition::Aws),
            ("", Partition::Aws),
        ];
        for (arn, partition) in bad {
            let err = check_role_arn(arn, partition).unwrap_err();
            assert!(
                matches!(err, Ec2LookupError::InvalidRoleArn { .. }),
                "{arn}"
            );
            assert_eq!(err.operation(), None);
        }
        assert_eq!(
            check_role_arn("arn:aws:iam::123456789012:role/r", Partition::AwsUsGov)
                .unwrap_err()
                .to_string(),
            "role ARN \"arn:aws:iam::123456789012:role/r\" is not an IAM role in partition \
             aws-us-gov"
        );
    }

    #[test]
    fn builder_validates() {
        let config = SdkConfig::builder().build();
        let b = Ec2Lookup::builder(&config);
        assert_eq!(
            b.clone().timeout(Duration::ZERO).build().unwrap_err(),
            ConfigError::ZeroTimeout
        );
        for name in ["", "x", "has space", "ü-nicode", &"n".repeat(65)] {
            assert_eq!(
                b.clone().session_name(name).build().unwrap_err(),
                ConfigError::InvalidSessionName,
                "{name:?}"
            );
        }
        for name in ["ab", "ec2-iid", "a_b+c=d,e.f@g-h", &"n".repeat(64)] {
            assert!(b.clone().session_name(name).build().is_ok(), "{name:?}");
        }
        let lookup = Ec2Lookup::new(&config);
        assert_eq!(lookup.timeout(), DEFAULT_TIMEOUT);
        let debug = format!("{lookup:?}");
        assert!(debug.contains("session_name: \"ec2-iid\""), "{debug}");
    }

    #[test]
    fn external_ids_are_kept_by_role_and_validated() {
        let config = SdkConfig::builder().build();
        let role: RoleArn = "arn:aws:iam::210987654321:role/describe".parse().unwrap();
        let other: RoleArn = "arn:aws:iam::210987654321:role/other".parse().unwrap();
        let lookup = Ec2Lookup::builder(&config)
            .external_id(role.clone(), "first")
            .external_id(role.clone(), "tenant-42:a/b@c")
            .external_id(other.clone(), "xy")
            .build()
            .unwrap();
        let ids = &lookup.inner.settings.external_ids;
        assert_eq!(ids.len(), 2);
        assert_eq!(
            ids.get(role.as_str()).map(String::as_str),
            Some("tenant-42:a/b@c")
        );
        assert_eq!(ids.get(other.as_str()).map(String::as_str), Some("xy"));
        let debug = format!("{lookup:?}");
        assert!(debug.contains("role/describe"), "{debug}");
        for bad in ["", "x", "has space", "ü-nicode", &"n".repeat(1225)] {
            assert_eq!(
                Ec2Lookup::builder(&config)
                    .external_id(role.clone(), bad)
                    .build()
                    .unwrap_err(),
                ConfigError::InvalidExternalId {
                    role_arn: role.as_str().to_owned()
                },
                "{bad:?}"
            );
        }
        assert!(
            Ec2Lookup::builder(&config)
                .external_id(role, "n".repeat(1224))
                .build()
                .is_ok()
        );
    }

    #[test]
    fn partition_configs_replace_each_other() {
        let default = SdkConfig::builder().build();
        let cn1 = SdkConfig::builder()
            .region(SdkRegion::new("cn-north-1"))
            .build();
        let cn2 = SdkConfig::builder()
            .region(SdkRegion::new("cn-northwest-1"))
            .build();
        let lookup = Ec2Lookup::builder(&default)
            .partition_config(Partition::AwsCn, &cn1)
            .partition_config(Partition::AwsCn, &cn2)
            .build()
            .unwrap();
        let settings = &lookup.inner.settings;
        assert_eq!(settings.partition_configs.len(), 1);
        let region = |p| settings.config_for(p).region().map(ToString::to_string);
        assert_eq!(region(Partition::AwsCn).as_deref(), Some("cn-northwest-1"));
        assert_eq!(region(Partition::Aws), None);
    }

    #[test]
    fn timeout_becomes_the_operation_timeout() {
        let config = SdkConfig::builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_timeout(Duration::from_secs(99))
                    .build(),
            )
            .build();
        let lookup = Ec2Lookup::builder(&config)
            .timeout(Duration::from_secs(4))
            .build()
            .unwrap();
        let timeouts = lookup.inner.settings.timeout_config(&config);
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(4)));
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn cached_clients_expire_early() {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let client = aws_sdk_ec2::Client::new(&config);
        let iam = aws_sdk_iam::Client::new(&config);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let own = CachedClient {
            client: client.clone(),
            iam: iam.clone(),
            expires: None,
        };
        assert!(own.fresh_at(now));
        let assumed = |left| CachedClient {
            client: client.clone(),
            iam: iam.clone(),
            expires: Some(now + left),
        };
        assert!(assumed(Duration::from_secs(3600)).fresh_at(now));
        assert!(!assumed(Duration::from_secs(300)).fresh_at(now));
        assert!(!assumed(Duration::from_secs(10)).fresh_at(now));
    }
}
