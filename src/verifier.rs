//! The one-call join check: build once, share across threads, call per request.

use core::convert::Infallible;
use core::future::Future;
use core::time::Duration;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::document::IdentityDocument;
use crate::error::Error;
use crate::facts::check_instance_facts;
use crate::input::{SignedInput, VerifyOptions, verify_input};
use crate::lookup::{InstanceFacts, InstanceLookup, InstanceQuery};
use crate::rules::match_allow_rules;
use crate::signature::VerifiedDocument;
use crate::token::{AllowRule, DEFAULT_TTL, TokenSpec};
use crate::trust::TrustStore;
use crate::ttl::{DEFAULT_MAX_FUTURE_SKEW, check_ttl};

/// Verifies identity documents against a trust store and a token's rules.
///
/// Built once with [`Verifier::builder`]; `Send + Sync`, so share it (e.g. in an `Arc`).
/// [`Verifier::verify`] is sync and cheap (one RSA verification); [`Verifier::check_instance`]
/// adds the `DescribeInstances` check through your [`InstanceLookup`].
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use ec2_iid::{AllowRule, Format, InstanceFacts, InstanceState, TrustStore, Verifier};
///
/// let mut trust = TrustStore::aws();
/// trust.add_pem(Format::Rsa2048, include_bytes!("../tests/data/testca/testca.pem"),
///     ["us-east-1".parse()?])?;
/// let verifier = Verifier::builder(trust)
///     .allow(AllowRule::account("123456789012")?)
///     .build()?;
///
/// let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0).unwrap();
/// let joined = verifier.verify(include_bytes!("../tests/data/gen/rsa2048.b64"), now)?;
/// assert_eq!(joined.host_id(), "123456789012-i-0123456789abcdef0");
///
/// // Facts from your own DescribeInstances call (or use `check_instance` with a lookup).
/// let facts = InstanceFacts::new("i-0123456789abcdef0", InstanceState::Running);
/// let outcome = verifier.check_facts(&joined, Some(&facts))?;
/// assert_eq!(outcome.host_id, "123456789012-i-0123456789abcdef0");
/// # Ok::<(), ec2_iid::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    trust: TrustStore,
    options: VerifyOptions,
    rules: Arc<[AllowRule]>,
    ttl: Duration,
    max_future_skew: Duration,
    root_volume_check: bool,
}

/// Configures a [`Verifier`]; [`VerifierBuilder::build`] checks the configuration.
#[derive(Clone, Debug)]
#[must_use]
pub struct VerifierBuilder {
    trust: TrustStore,
    options: VerifyOptions,
    rules: Vec<AllowRule>,
    ttl: Duration,
    max_future_skew: Duration,
    root_volume_check: bool,
    token_error: Option<Error>,
}

impl Verifier {
    /// Starts a verifier that trusts `trust` (e.g. [`TrustStore::aws`]).
    ///
    /// Defaults: TTL 5 minutes, future skew 1 minute, root-volume check off, `/pkcs7` refused
    /// (see [`VerifierBuilder::allow_legacy_dsa_sha1`]); no allow rules (at least one is
    /// required).
    pub fn builder(trust: TrustStore) -> VerifierBuilder {
        VerifierBuilder {
            trust,
            options: VerifyOptions::default(),
            rules: Vec::new(),
            ttl: DEFAULT_TTL,
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
            root_volume_check: false,
            token_error: None,
        }
    }

    /// The allow rules, in matching order.
    #[must_use]
    pub fn rules(&self) -> &[AllowRule] {
        &self.rules
    }

    /// The TTL on `pendingTime`.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The trust store.
    #[must_use]
    pub fn trust_store(&self) -> &TrustStore {
        &self.trust
    }

    /// The signature checks opted into.
    #[must_use]
    pub fn options(&self) -> &VerifyOptions {
        &self.options
    }

    /// Parses and verifies a CMS blob (`/rsa2048`, or `/pkcs7` if allowed; the format is
    /// detected by [`detect_cms_format`](crate::detect_cms_format)), then applies the allow
    /// rules and the TTL. Same as [`Verifier::verify_input`] with [`SignedInput::Cms`].
    ///
    /// `now` is the caller's clock; the crate never reads one.
    ///
    /// # Errors
    /// Anything [`parse_document`](crate::parse_document),
    /// [`verify_signature_with`](crate::verify_signature_with), [`match_allow_rules`] and
    /// [`check_ttl`] report.
    pub fn verify(&self, blob: &[u8], now: DateTime<Utc>) -> Result<VerifiedJoin, Error> {
        self.verify_input(SignedInput::Cms(blob), now)
    }

    /// Verifies a signed document in any format ([`verify_input`]), then applies the allow
    /// rules and the TTL exactly as [`Verifier::verify`] does.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use ec2_iid::{AllowRule, Format, SignedInput, TrustStore, Verifier};
    ///
    /// let mut trust = TrustStore::empty();
    /// trust.add_pem(Format::Signature, include_bytes!("../tests/data/testca/testca.pem"),
    ///     ["us-east-1".parse()?])?;
    /// let verifier = Verifier::builder(trust)
    ///     .allow(AllowRule::account("123456789012")?)
    ///     .build()?;
    /// let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0).unwrap();
    /// let input = SignedInput::Signature {
    ///     document: include_bytes!("../tests/data/gen/document.json"),
    ///     signature: include_bytes!("../tests/data/gen/signature.b64"),
    /// };
    /// let joined = verifier.verify_input(input, now)?;
    /// assert_eq!(joined.verified().signer().format, Format::Signature);
    /// assert_eq!(joined.host_id(), "123456789012-i-0123456789abcdef0");
    /// # Ok::<(), ec2_iid::Error>(())
    /// ```
    ///
    /// # Errors
    /// Anything [`verify_input`], [`match_allow_rules`] and [`check_ttl`] report.
    pub fn verify_input(
        &self,
        input: SignedInput<'_>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedJoin, Error> {
        let verified = verify_input(input, &self.trust, &self.options)?;
        self.admit(verified, now)
    }

    /// Applies the allow rules and the TTL to an already verified document.
    ///
    /// # Errors
    /// As [`match_allow_rules`] and [`check_ttl`].
    pub fn admit(
        &self,
        verified: VerifiedDocument,
        now: DateTime<Utc>,
    ) -> Result<VerifiedJoin, Error> {
        let (rule_index, _) = match_allow_rules(&verified, &self.rules)?;
        check_ttl(
            verified.document().pending_time,
            self.ttl,
            now,
            self.max_future_skew,
        )?;
        Ok(VerifiedJoin {
            verified,
            rules: Arc::clone(&self.rules),
            rule_index,
        })
    }

    /// The `DescribeInstances` query for a verified join: its account, region and instance,
    /// and the matched rule's role.
    #[must_use]
    pub fn query(&self, join: &VerifiedJoin) -> InstanceQuery {
        let doc = join.document();
        InstanceQuery::new(
            doc.account_id.clone(),
            doc.instance_id.clone(),
            doc.region.clone(),
        )
        .with_role_arn(join.rule().role().map(str::to_owned))
    }

    /// Checks instance facts you fetched yourself (sync; for batching or caching lookups).
    ///
    /// # Errors
    /// As [`check_instance_facts`].
    pub fn check_facts(
        &self,
        join: &VerifiedJoin,
        facts: Option<&InstanceFacts>,
    ) -> Result<JoinOutcome, Error> {
        let rule = join.rule();
        check_instance_facts(&join.verified, rule, facts, self.root_volume_check)?;
        Ok(JoinOutcome {
            host_id: join.host_id(),
            matched_rule: join.rule_index,
            rule: rule.clone(),
            document: join.document().clone(),
            facts: facts.cloned().unwrap_or_default(),
        })
    }

    /// Asks `lookup` about the instance (assuming the matched rule's role) and checks the facts.
    ///
    /// # Errors
    /// [`CheckError::Lookup`] with your lookup's error as source, or [`CheckError::Rejected`].
    pub async fn check_instance<L: InstanceLookup>(
        &self,
        join: &VerifiedJoin,
        lookup: &L,
    ) -> Result<JoinOutcome, CheckError<L::Error>> {
        let facts = lookup
            .describe_instance(&self.query(join))
            .await
            .map_err(CheckError::Lookup)?;
        Ok(self.check_facts(join, facts.as_ref())?)
    }

    /// [`Verifier::check_instance`], then claims the host id in `registry` so each instance
    /// joins once (Teleport refuses a host id that is already active; SPIRE trusts on first
    /// use; Vault keeps a nonce). Store the claim for at least the TTL.
    ///
    /// # Errors
    /// As [`Verifier::check_instance`], plus [`Error::AlreadyJoined`] and
    /// [`CheckError::Registry`].
    pub async fn check_instance_once<L: InstanceLookup, R: JoinRegistry>(
        &self,
        join: &VerifiedJoin,
        lookup: &L,
        registry: &R,
    ) -> Result<JoinOutcome, CheckError<L::Error, R::Error>> {
        let outcome = self
            .check_instance(join, lookup)
            .await
            .map_err(|e| match e {
                CheckError::Rejected(e) => CheckError::Rejected(e),
                CheckError::Lookup(e) => CheckError::Lookup(e),
            })?;
        let first = registry
            .claim(&outcome.host_id, &outcome.document)
            .await
            .map_err(CheckError::Registry)?;
        if first {
            Ok(outcome)
        } else {
            Err(CheckError::Rejected(Error::AlreadyJoined {
                host_id: outcome.host_id,
            }))
        }
    }
}

impl VerifierBuilder {
    /// Uses a token spec's allow rules and TTL (validated as Teleport does).
    pub fn token_spec(mut self, spec: &TokenSpec) -> Self {
        match spec.validate() {
            Ok(spec) => {
                self.rules = spec.allow;
                self.ttl = spec.aws_iid_ttl.get();
            }
            Err(e) => self.token_error = Some(e),
        }
        self
    }

    /// Adds an allow rule after those already set.
    pub fn allow(mut self, rule: AllowRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets the TTL on `pendingTime` (default 5 minutes; zero is refused).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets how far `pendingTime` may be ahead of `now` (default 1 minute).
    pub fn max_future_skew(mut self, skew: Duration) -> Self {
        self.max_future_skew = skew;
        self
    }

    /// Turns SPIRE's root-volume check on or off (default off: it needs the root device
    /// type and attach times in [`InstanceFacts`], which `ec2-iid-aws` fetches but a minimal
    /// lookup may not; when on, missing facts are an error).
    pub fn root_volume_check(mut self, on: bool) -> Self {
        self.root_volume_check = on;
        self
    }

    /// Accepts `/pkcs7` documents (DSA-1024 with SHA-1), refused by default; see
    /// [`VerifyOptions::allow_legacy_dsa_sha1`] for why.
    pub fn allow_legacy_dsa_sha1(mut self, allow: bool) -> Self {
        self.options = self.options.allow_legacy_dsa_sha1(allow);
        self
    }

    /// Checks the configuration and builds the verifier.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for a token spec that failed validation or invalid rules, and
    /// [`Error::InvalidConfig`] for no allow rules, a zero TTL or an empty trust store.
    pub fn build(self) -> Result<Verifier, Error> {
        if let Some(e) = self.token_error {
            return Err(e);
        }
        let config = |reason: &str| Error::InvalidConfig {
            reason: reason.to_owned(),
        };
        if self.rules.is_empty() {
            return Err(config("at least one allow rule is required"));
        }
        TokenSpec::from_rules(self.rules.clone()).validate()?;
        if self.ttl.is_zero() {
            return Err(config("the TTL must be positive"));
        }
        if self.trust.is_empty() {
            return Err(config("the trust store is empty"));
        }
        Ok(Verifier {
            trust: self.trust,
            options: self.options,
            rules: self.rules.into(),
            ttl: self.ttl,
            max_future_skew: self.max_future_skew,
            root_volume_check: self.root_volume_check,
        })
    }
}

/// A document that passed [`Verifier::verify`]: signature, rules and TTL.
#[derive(Clone, Debug)]
pub struct VerifiedJoin {
    verified: VerifiedDocument,
    rules: Arc<[AllowRule]>,
    rule_index: usize,
}

impl VerifiedJoin {
    /// The verified document and signer.
    #[must_use]
    pub fn verified(&self) -> &VerifiedDocument {
        &self.verified
    }

    /// The signed identity document.
    #[must_use]
    pub fn document(&self) -> &IdentityDocument {
        self.verified.document()
    }

    /// Index of the allow rule that matched.
    #[must_use]
    pub fn matched_rule(&self) -> usize {
        self.rule_index
    }

    /// The allow rule that matched.
    #[must_use]
    pub fn rule(&self) -> &AllowRule {
        // The index came from `match_allow_rules` over these very rules.
        static NO_RULE: AllowRule = AllowRule::EMPTY;
        self.rules.get(self.rule_index).unwrap_or(&NO_RULE)
    }

    /// Teleport's host id: `<accountId>-<instanceId>`.
    #[must_use]
    pub fn host_id(&self) -> String {
        self.verified.host_id()
    }
}

/// The result of a successful join check.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct JoinOutcome {
    /// `<accountId>-<instanceId>`, the identity the host joins as.
    pub host_id: String,
    /// Index of the matched allow rule.
    pub matched_rule: usize,
    /// The matched allow rule.
    pub rule: AllowRule,
    /// The signed identity document.
    pub document: IdentityDocument,
    /// What `DescribeInstances` said.
    pub facts: InstanceFacts,
}

/// Why [`Verifier::check_instance`] failed: a rejection, or your lookup or registry failing.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CheckError<L, R = Infallible> {
    /// The instance check rejected the join.
    #[error(transparent)]
    Rejected(#[from] Error),
    /// The lookup failed (throttled, denied, timed out, ...); retry later.
    #[error("instance lookup failed")]
    Lookup(#[source] L),
    /// The join registry failed.
    #[error("join registry failed")]
    Registry(#[source] R),
}

/// Remembers which host ids have joined, so that each instance joins once.
///
/// Implement it with your storage (with an expiry of at least the TTL: after that, the TTL
/// alone refuses the document). [`InMemoryJoinRegistry`] is a process-local implementation.
pub trait JoinRegistry {
    /// The implementor's error.
    type Error: core::error::Error + Send + Sync + 'static;

    /// Records `host_id`; `Ok(true)` if it had not joined before, `Ok(false)` if it had.
    fn claim(
        &self,
        host_id: &str,
        document: &IdentityDocument,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

/// A [`JoinRegistry`] in memory: for tests, examples and single-process servers.
#[derive(Debug, Default)]
pub struct InMemoryJoinRegistry {
    joined: Mutex<HashSet<String>>,
}

impl InMemoryJoinRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets a host id (e.g. after the host left), so it may join again.
    pub fn release(&self, host_id: &str) -> bool {
        self.joined
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(host_id)
    }
}

impl JoinRegistry for InMemoryJoinRegistry {
    type Error = Infallible;

    async fn claim(&self, host_id: &str, _document: &IdentityDocument) -> Result<bool, Infallible> {
        Ok(self
            .joined
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host_id.to_owned()))
    }
}
