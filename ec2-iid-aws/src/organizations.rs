//! The organization of instance accounts, for rules with `aws_organization_id`: read from AWS
//! Organizations (`ListAccounts`, `ListParents`) through an assumable role and cached, or from
//! an accounts file.

use core::fmt;
use core::time::Duration;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_organizations::types::ParentType;
use aws_smithy_async::future::timeout::Timeout;
use aws_smithy_async::rt::sleep::{AsyncSleep, default_async_sleep};
use ec2_iid::AccountOrganization;
use ec2_iid::ids::{AccountId, OrganizationId, OrganizationalUnitId, Partition, Region, RoleArn};
use tokio::sync::{Mutex as AsyncMutex, OnceCell};

use crate::error::{CallContext, Ec2LookupError, Operation};
use crate::lookup::ConfigError;

/// How often a directory read from AWS Organizations is read again, by default.
pub const DEFAULT_ORGANIZATIONS_REFRESH: Duration = Duration::from_secs(10 * 60);

/// How old a directory may get while its refreshes fail, by default.
pub const DEFAULT_ORGANIZATIONS_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// The most `ListAccounts` pages read per refresh (20 accounts a page): 10,000 accounts,
/// Organizations' default quota.
const MAX_ACCOUNT_PAGES: usize = 500;

/// The deepest account AWS Organizations allows: five OU levels under the root, so at most six
/// parents.
const MAX_PARENTS: usize = 6;

/// The most accounts whose parents are kept between refreshes.
const MAX_PARENT_ENTRIES: usize = 10_000;

/// The accounts of one AWS organization and their OU paths: an accounts file for fleets that
/// cannot call AWS Organizations (see
/// [`Ec2LookupBuilder::organization_directory`](crate::Ec2LookupBuilder::organization_directory)).
///
/// The file is JSON: the organization id, and each member account with its parents from its
/// own OU up to the root (an account directly under the root lists the root alone):
///
/// ```
/// let directory = ec2_iid_aws::OrganizationDirectory::from_json(br#"{
///     "organization_id": "o-a1b2c3d4e5",
///     "accounts": {
///         "111122223333": ["ou-a1b2-c3d4e5f6", "r-a1b2"],
///         "444455556666": ["r-a1b2"]
///     }
/// }"#)?;
/// assert_eq!(directory.organization_id().as_str(), "o-a1b2c3d4e5");
/// assert_eq!(directory.len(), 2);
/// # Ok::<(), ec2_iid_aws::ConfigError>(())
/// ```
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct OrganizationDirectory {
    organization_id: OrganizationId,
    /// Each member account's parents, its own OU first, the root last.
    accounts: HashMap<AccountId, Vec<String>>,
}

impl OrganizationDirectory {
    /// Reads an accounts file (see [`OrganizationDirectory`]).
    ///
    /// # Errors
    /// [`ConfigError::InvalidAccountsFile`] naming the first field that is not as described:
    /// an invalid organization, account, OU or root id, a path deeper than AWS allows or not
    /// ending at a root.
    pub fn from_json(json: &[u8]) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidAccountsFile { reason };
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| invalid(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| invalid("expected an object".into()))?;
        if let Some(unknown) = object
            .keys()
            .find(|k| !["organization_id", "accounts"].contains(&k.as_str()))
        {
            return Err(invalid(format!(
                "unknown field {:?}: expected organization_id and accounts",
                bounded(unknown)
            )));
        }
        let organization_id = object
            .get("organization_id")
            .and_then(serde_json::Value::as_str)
            .and_then(|id| id.parse::<OrganizationId>().ok())
            .ok_or_else(|| {
                invalid("organization_id: expected an id like \"o-a1b2c3d4e5\"".into())
            })?;
        let members = object
            .get("accounts")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| invalid("accounts: expected an object of account ids".into()))?;
        let mut accounts = HashMap::new();
        for (account, parents) in members {
            let at = format!("accounts.{}", bounded(account));
            let id = account
                .parse::<AccountId>()
                .map_err(|_| invalid(format!("{at}: not a 12-digit account id")))?;
            let parents: Vec<String> = parents
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|p| p.as_str().map(str::to_owned))
                        .collect()
                })
                .filter(|list: &Vec<String>| Some(list.len()) == parents.as_array().map(Vec::len))
                .ok_or_else(|| invalid(format!("{at}: expected a list of OU and root ids")))?;
            check_path(&parents).map_err(|reason| invalid(format!("{at}: {reason}")))?;
            accounts.insert(id, parents);
        }
        Ok(Self {
            organization_id,
            accounts,
        })
    }

    /// The organization.
    #[must_use]
    pub fn organization_id(&self) -> &OrganizationId {
        &self.organization_id
    }

    /// How many member accounts it lists.
    #[must_use]
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether it lists no account.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Where `account` sits: a member with its parents, or outside the organization.
    #[must_use]
    pub fn account(&self, account: &AccountId) -> AccountOrganization {
        match self.accounts.get(account) {
            Some(parents) => {
                AccountOrganization::member(self.organization_id.as_str(), parents.clone())
            }
            None => AccountOrganization::outside(),
        }
    }
}

/// An OU path: OU ids, then one root id, at most [`MAX_PARENTS`] in all.
fn check_path(parents: &[String]) -> Result<(), String> {
    let Some((root, units)) = parents.split_last() else {
        return Err("an empty path: list the account's OUs and its root".into());
    };
    if parents.len() > MAX_PARENTS {
        return Err(format!(
            "{} parents: AWS Organizations nests at most five OUs under the root",
            parents.len()
        ));
    }
    if !is_root_id(root) {
        return Err(format!(
            "{:?} is not a root id like \"r-a1b2\"",
            bounded(root)
        ));
    }
    match units
        .iter()
        .find(|u| u.parse::<OrganizationalUnitId>().is_err())
    {
        Some(unit) => Err(format!(
            "{:?} is not an OU id like \"ou-a1b2-c3d4e5f6\"",
            bounded(unit)
        )),
        None => Ok(()),
    }
}

/// `r-` and 4 to 32 lowercase letters or digits.
fn is_root_id(id: &str) -> bool {
    id.strip_prefix("r-").is_some_and(|rest| {
        (4..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn bounded(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The builder's organizations settings.
#[derive(Clone, Debug)]
pub(crate) struct OrganizationsSettings {
    pub(crate) role_arn: Option<RoleArn>,
    pub(crate) directory: Option<Arc<OrganizationDirectory>>,
    pub(crate) refresh: Duration,
    pub(crate) max_age: Duration,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) timeout: Duration,
}

impl Default for OrganizationsSettings {
    fn default() -> Self {
        Self {
            role_arn: None,
            directory: None,
            refresh: DEFAULT_ORGANIZATIONS_REFRESH,
            max_age: DEFAULT_ORGANIZATIONS_MAX_AGE,
            endpoint_url: None,
            timeout: crate::lookup::DEFAULT_TIMEOUT,
        }
    }
}

impl OrganizationsSettings {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let reason = if self.refresh.is_zero() {
            "the refresh interval must not be zero"
        } else if self.max_age < self.refresh {
            "the maximum age must not be shorter than the refresh interval"
        } else {
            return Ok(());
        };
        Err(ConfigError::InvalidOrganizationsRefresh { reason })
    }
}

/// The organizations source of an [`Ec2Lookup`](crate::Ec2Lookup).
#[derive(Clone)]
pub(crate) enum Organizations {
    File(Arc<OrganizationDirectory>),
    Api(Arc<Api>),
}

impl fmt::Debug for Organizations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(directory) => write!(f, "accounts file ({} accounts)", directory.len()),
            Self::Api(api) => write!(f, "AWS Organizations through {}", api.role_arn),
        }
    }
}

impl Organizations {
    /// The source the settings name, if any (an accounts file wins over a role).
    pub(crate) fn new(settings: &OrganizationsSettings, config: &SdkConfig) -> Option<Self> {
        if let Some(directory) = &settings.directory {
            return Some(Self::File(Arc::clone(directory)));
        }
        let role_arn = settings.role_arn.clone()?;
        // Always a valid region: one of `home_region`'s.
        let region = home_region(role_arn.partition()).parse().ok()?;
        Some(Self::Api(Arc::new(Api {
            role_arn,
            region,
            config: config.clone(),
            settings: settings.clone(),
            client: OnceCell::new(),
            snapshot: Mutex::new(None),
            refreshing: AsyncMutex::new(()),
            parents: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        })))
    }

    /// AWS Organizations requests sent.
    pub(crate) fn calls(&self) -> u64 {
        match self {
            Self::File(_) => 0,
            Self::Api(api) => api.calls.load(Ordering::Relaxed),
        }
    }

    /// Where `account` sits in the organization.
    pub(crate) async fn account(
        &self,
        account: &AccountId,
    ) -> Result<AccountOrganization, Ec2LookupError> {
        match self {
            Self::File(directory) => Ok(directory.account(account)),
            Self::Api(api) => api.account(account).await,
        }
    }
}

/// AWS Organizations through an assumed role, cached.
pub(crate) struct Api {
    role_arn: RoleArn,
    /// Where the partition's Organizations endpoint is.
    region: Region,
    config: SdkConfig,
    settings: OrganizationsSettings,
    client: OnceCell<aws_sdk_organizations::Client>,
    /// The last good directory.
    snapshot: Mutex<Option<Arc<Snapshot>>>,
    /// Held by the one refresh under way.
    refreshing: AsyncMutex<()>,
    /// The parents of accounts asked about, by account, with when they were read.
    parents: Mutex<HashMap<AccountId, (Vec<String>, Instant)>>,
    calls: AtomicU64,
}

/// The member accounts of the organization, as one refresh read them.
#[derive(Debug)]
struct Snapshot {
    organization_id: String,
    members: HashSet<String>,
    fetched: Instant,
}

impl Api {
    async fn account(&self, account: &AccountId) -> Result<AccountOrganization, Ec2LookupError> {
        let snapshot = self.snapshot().await?;
        if !snapshot.members.contains(account.as_str()) {
            return Ok(AccountOrganization::outside());
        }
        let parents = self.parents(account).await?;
        Ok(AccountOrganization::member(
            snapshot.organization_id.clone(),
            parents,
        ))
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A directory young enough to use: the current one while fresh; else one refresh at a
    /// time, the others using the current one while it is within the maximum age.
    async fn snapshot(&self) -> Result<Arc<Snapshot>, Ec2LookupError> {
        let current = self.current();
        if let Some(snapshot) = &current
            && snapshot.fetched.elapsed() < self.settings.refresh
        {
            return Ok(Arc::clone(snapshot));
        }
        let usable = current.filter(|s| s.fetched.elapsed() < self.settings.max_age);
        let _refreshing = match (self.refreshing.try_lock(), &usable) {
            (Ok(guard), _) => guard,
            // Another lookup refreshes: use the last good directory meanwhile.
            (Err(_), Some(snapshot)) => return Ok(Arc::clone(snapshot)),
            (Err(_), None) => self.wait_for_refresh().await?,
        };
        // Refreshed while this lookup waited?
        if let Some(snapshot) = self.current()
            && snapshot.fetched.elapsed() < self.settings.refresh
        {
            return Ok(snapshot);
        }
        match self.read_directory().await {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(Arc::clone(&snapshot));
                self.parents
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                Ok(snapshot)
            }
            Err(err) => {
                tracing::warn!("refreshing the organization directory failed: {err}");
                match usable {
                    Some(snapshot) => Ok(snapshot),
                    None => match self.current() {
                        Some(stale) => Err(Ec2LookupError::StaleDirectory {
                            operation: err.operation().unwrap_or(Operation::ListAccounts),
                            age: stale.fetched.elapsed(),
                        }),
                        None => Err(err),
                    },
                }
            }
        }
    }

    /// Waits, at most the timeout, for the refresh under way.
    async fn wait_for_refresh(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, Ec2LookupError> {
        let Some(sleep) = default_async_sleep() else {
            return Ok(self.refreshing.lock().await);
        };
        Timeout::new(self.refreshing.lock(), sleep.sleep(self.settings.timeout))
            .await
            .map_err(|timed_out| Ec2LookupError::Timeout {
                operation: Operation::ListAccounts,
                timeout: self.settings.timeout,
                source: Box::new(timed_out),
            })
    }

    /// Reads every member account with `ListAccounts`, at most [`MAX_ACCOUNT_PAGES`] pages.
    #[tracing::instrument(name = "list_accounts", skip_all, fields(role = %self.role_arn))]
    async fn read_directory(&self) -> Result<Snapshot, Ec2LookupError> {
        let client = self.client().await;
        let mut members = HashSet::new();
        let mut organization_id = None;
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_ACCOUNT_PAGES {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let output = client
                .list_accounts()
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|err| self.failed(err, Operation::ListAccounts))?;
            for account in output.accounts() {
                // `arn:<partition>:organizations::<management>:account/o-…/<account>`.
                if organization_id.is_none() {
                    organization_id = account
                        .arn()
                        .and_then(|arn| arn.split('/').nth(1))
                        .filter(|id| id.parse::<OrganizationId>().is_ok())
                        .map(str::to_owned);
                }
                if let Some(id) = account.id() {
                    members.insert(id.to_owned());
                }
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => {
                    let organization_id =
                        organization_id.ok_or(Ec2LookupError::InvalidResponse {
                            operation: Operation::ListAccounts,
                            reason: "no account ARN names the organization",
                        })?;
                    return Ok(Snapshot {
                        organization_id,
                        members,
                        fetched: Instant::now(),
                    });
                }
            }
        }
        Err(Ec2LookupError::InvalidResponse {
            operation: Operation::ListAccounts,
            reason: "more pages of accounts than an organization has",
        })
    }

    /// The account's parents, its own OU first, from the cache or `ListParents` up to the
    /// root.
    #[tracing::instrument(name = "list_parents", skip_all, fields(account = %account))]
    async fn parents(&self, account: &AccountId) -> Result<Vec<String>, Ec2LookupError> {
        if let Some((parents, fetched)) = self
            .parents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(account)
            && fetched.elapsed() < self.settings.refresh
        {
            return Ok(parents.clone());
        }
        let client = self.client().await;
        let mut parents = Vec::new();
        let mut child = account.as_str().to_owned();
        loop {
            if parents.len() >= MAX_PARENTS {
                return Err(Ec2LookupError::InvalidResponse {
                    operation: Operation::ListParents,
                    reason: "an account nested deeper than AWS Organizations allows",
                });
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            let output = client
                .list_parents()
                .child_id(&child)
                .send()
                .await
                .map_err(|err| self.failed(err, Operation::ListParents))?;
            let parent = output
                .parents()
                .first()
                .and_then(|p| Some((p.id()?.to_owned(), p.r#type()?.clone())))
                .ok_or(Ec2LookupError::InvalidResponse {
                    operation: Operation::ListParents,
                    reason: "a child without a parent",
                })?;
            let (id, kind) = parent;
            parents.push(id.clone());
            if kind == ParentType::Root {
                break;
            }
            child = id;
        }
        let mut cache = self.parents.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_PARENT_ENTRIES {
            cache.clear();
        }
        cache.insert(account.clone(), (parents.clone(), Instant::now()));
        Ok(parents)
    }

    /// The Organizations client, with credentials of the role (refreshed by the SDK's
    /// assume-role provider before they expire).
    async fn client(&self) -> aws_sdk_organizations::Client {
        self.client
            .get_or_init(|| async {
                let region = self.region.to_string();
                let mut sts_config = self
                    .config
                    .to_builder()
                    .region(aws_config::Region::new(region.clone()));
                if let Some(url) = &self.settings.endpoint_url {
                    sts_config = sts_config.endpoint_url(url);
                }
                // The assume-role provider needs a clock; a bare SdkConfig has none.
                if self.config.time_source().is_none() {
                    sts_config =
                        sts_config.time_source(aws_smithy_async::time::SystemTimeSource::new());
                }
                let provider = AssumeRoleProvider::builder(self.role_arn.as_str())
                    .session_name("ec2-iid-organizations")
                    .configure(&sts_config.build())
                    .build()
                    .await;
                let mut builder = aws_sdk_organizations::config::Builder::from(&self.config)
                    .region(aws_config::Region::new(region))
                    .credentials_provider(provider)
                    .timeout_config(
                        self.config
                            .timeout_config()
                            .map(aws_smithy_types::timeout::TimeoutConfig::to_builder)
                            .unwrap_or_default()
                            .operation_timeout(self.settings.timeout)
                            .build(),
                    );
                if self.config.behavior_version().is_none() {
                    builder = builder.behavior_version(aws_config::BehaviorVersion::latest());
                }
                if let Some(url) = &self.settings.endpoint_url {
                    builder = builder.endpoint_url(url);
                }
                aws_sdk_organizations::Client::from_conf(builder.build())
            })
            .await
            .clone()
    }

    fn failed<E>(
        &self,
        err: aws_sdk_organizations::error::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
        operation: Operation,
    ) -> Ec2LookupError
    where
        E: ProvideErrorMetadata + core::error::Error + Send + Sync + 'static,
    {
        let context = CallContext {
            region: &self.region,
            timeout: self.settings.timeout,
            endpoint_overridden: self.settings.endpoint_url.is_some(),
        };
        let err = Ec2LookupError::from_sdk(err, operation, &context);
        tracing::warn!("{operation} failed: {err}");
        err
    }
}

/// The region of a partition's AWS Organizations endpoint.
fn home_region(partition: Partition) -> &'static str {
    match partition {
        Partition::AwsCn => "cn-northwest-1",
        Partition::AwsUsGov => "us-gov-west-1",
        _ => "us-east-1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<OrganizationDirectory, String> {
        OrganizationDirectory::from_json(json.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn accounts_files_are_checked() {
        let directory = read(
            r#"{"organization_id": "o-a1b2c3d4e5", "accounts": {
                "111122223333": ["ou-a1b2-c3d4e5f6", "ou-a1b2-00000000", "r-a1b2"],
                "444455556666": ["r-a1b2"]}}"#,
        )
        .unwrap();
        let member = directory.account(&"111122223333".parse().unwrap());
        assert_eq!(member.organization_id.as_deref(), Some("o-a1b2c3d4e5"));
        assert_eq!(member.parent_ids.len(), 3);
        assert_eq!(
            directory.account(&"999999999999".parse().unwrap()),
            AccountOrganization::outside()
        );
        for (json, reason) in [
            ("[]", "expected an object"),
            (
                r#"{"organization_id": "o-1", "accounts": {}}"#,
                "organization_id",
            ),
            (
                r#"{"organization_id": "o-a1b2c3d4e5"}"#,
                "accounts: expected",
            ),
            (
                r#"{"organization_id": "o-a1b2c3d4e5", "accounts": {}, "x": 1}"#,
                "unknown field \"x\"",
            ),
            (
                r#"{"organization_id": "o-a1b2c3d4e5", "accounts": {"1": ["r-a1b2"]}}"#,
                "accounts.1: not a 12-digit",
            ),
            (
                r#"{"organization_id": "o-a1b2c3d4e5", "accounts": {"111122223333": []}}"#,
                "an empty path",
            ),
            (
                r#"{"organization_id": "o-a1b2c3d4e5", "accounts": {"111122223333": "r-a1b2"}}"#,
                "expected a list",
            ),
            (
                r#"{"organization_id": "o-a1b2c3d4e5", "accounts": {"111122223333": [1, "r-a1b2"]}}"#,
                "expected a list",
            ),
            (
                r#"{"organization_id": "o-a1b2c3d4e5", "accounts": {"111122223333": ["ou-a1b2-c3d4e5f6"]}}"#,
                "not a root id",
            ),
            (
                r#"{"organization_id": "o-a1b2c3d4e5", "accounts": {"111122223333": ["ou-x", "r-a1b2"]}}"#,
                "not an OU id",
            ),
            (
                r#"{"organization_id": "o-a1b2c3d4e5", "accounts": {"111122223333": ["ou-a1b2-c3d4e5f6", "ou-a1b2-c3d4e5f6", "ou-a1b2-c3d4e5f6", "ou-a1b2-c3d4e5f6", "ou-a1b2-c3d4e5f6", "ou-a1b2-c3d4e5f6", "r-a1b2"]}}"#,
                "7 parents",
            ),
        ] {
            let err = read(json).unwrap_err();
            assert!(err.contains(reason), "{json}: {err}");
            assert!(err.starts_with("invalid accounts file: "), "{err}");
        }
    }

    /// An API source whose calls all fail (nothing listens at its endpoint), with a directory
    /// read `age` ago (`None`: never), refreshed every second and kept for two.
    async fn failing_api(age: Option<Duration>) -> Api {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .load()
            .await;
        let settings = OrganizationsSettings {
            role_arn: Some("arn:aws:iam::111111111111:role/read".parse().unwrap()),
            refresh: Duration::from_secs(1),
            max_age: Duration::from_secs(2),
            endpoint_url: Some(url),
            timeout: Duration::from_secs(5),
            ..OrganizationsSettings::default()
        };
        let Some(Organizations::Api(api)) = Organizations::new(&settings, &config) else {
            panic!("a role makes an API source");
        };
        let api = Arc::into_inner(api).unwrap();
        if let Some(age) = age {
            *api.snapshot.lock().unwrap() = Some(Arc::new(Snapshot {
                organization_id: "o-a1b2c3d4e5".into(),
                members: HashSet::new(),
                fetched: Instant::now().checked_sub(age).unwrap(),
            }));
        }
        api
    }

    #[tokio::test]
    async fn a_failed_refresh_serves_the_last_good_directory_until_its_maximum_age() {
        let account: AccountId = "222222222222".parse().unwrap();
        // Never read: the refresh's own error.
        let err = failing_api(None).await.account(&account).await.unwrap_err();
        assert_eq!(err.operation(), Some(Operation::ListAccounts), "{err:?}");
        assert!(
            !matches!(err, Ec2LookupError::StaleDirectory { .. }),
            "{err:?}"
        );
        // Due for a refresh that fails, within the maximum age: the last good directory.
        let api = failing_api(Some(Duration::from_millis(1500))).await;
        assert_eq!(
            api.account(&account).await.unwrap(),
            AccountOrganization::outside()
        );
        assert_eq!(api.calls.load(Ordering::Relaxed), 1);
        // Past the maximum age: refused, as transient.
        let err = failing_api(Some(Duration::from_secs(3)))
            .await
            .account(&account)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Ec2LookupError::StaleDirectory {
                    operation: Operation::ListAccounts,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.is_transient());
    }

    #[test]
    fn refresh_settings_are_checked() {
        let mut settings = OrganizationsSettings::default();
        assert!(settings.check().is_ok());
        settings.refresh = Duration::ZERO;
        assert!(settings.check().is_err());
        settings.refresh = Duration::from_secs(60);
        settings.max_age = Duration::from_secs(59);
        assert!(settings.check().is_err());
    }
}
