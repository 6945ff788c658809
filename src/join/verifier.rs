//! The join check: build a [`Verifier`] once, then per request `verify` a document into a
//! [`PendingJoin`] and check the instance into the [`JoinOutcome`] that grants the join.

use core::convert::Infallible;
use core::fmt;
use core::time::Duration;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::{ConfigError, Error};
use crate::input::SignedInput;
use crate::join::lookup::{InstanceLookup, InstanceQuery};
use crate::join::registry::{JoinClaim, JoinRegistry};
use crate::kind::ErrorKind;
use crate::policy::facts::InstanceFacts;
use crate::policy::facts::check_instance_facts;
use crate::policy::rules::{AllowRule, match_allow_rules};
use crate::policy::token::{DEFAULT_TTL, MIN_TTL, TokenResource, TokenSpec};
use crate::policy::ttl::{DEFAULT_MAX_FUTURE_SKEW, check_ttl};
use crate::signature::VerifiedDocument;
use crate::signature::document::IdentityDocument;
use crate::signature::verify_input::{VerifyOptions, verify_input};
use crate::trust::TrustStore;

/// Verifies identity documents against a trust store and a token's rules.
///
/// Built once with [`Verifier::builder`]; `Send + Sync`, so share it (e.g. in an `Arc`).
/// [`Verifier::verify`] is sync and cheap (one RSA verification) and returns a
/// [`PendingJoin`]: signed, matched and fresh, but not yet a join. Only its instance check
/// ([`PendingJoin::check_instance`], or [`PendingJoin::check_facts`] with facts you fetched)
/// gives the [`JoinOutcome`] whose host id may join:
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use ec2_iid::{AllowRule, Format, InstanceFacts, InstanceState, TrustStore, Verifier};
///
/// let mut trust = TrustStore::empty();
/// trust.add_pem(Format::Rsa2048, include_bytes!("../../tests/data/testca/testca.pem"),
///     ["us-east-1".parse()?])?;
/// let verifier = Verifier::builder(trust)
///     .allow(AllowRule::account("123456789012".parse()?))
///     .build()?;
///
/// let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0).unwrap();
/// let pending = verifier.verify(include_bytes!("../../tests/data/gen/rsa2048.b64"), now)?;
///
/// // Facts from your own DescribeInstances call (or use `check_instance` with a lookup).
/// let mut facts = InstanceFacts::new("i-0123456789abcdef0", InstanceState::Running);
/// facts.owner_id = Some("123456789012".into());
/// let outcome = pending.check_facts(Some(&facts))?;
/// assert_eq!(outcome.host_id(), "123456789012-i-0123456789abcdef0");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The pending value has no host id, so it cannot be mistaken for a join:
///
/// ```compile_fail,E0599
/// # use chrono::{TimeZone, Utc};
/// # use ec2_iid::{AllowRule, Format, TrustStore, Verifier};
/// # let mut trust = TrustStore::empty();
/// # trust.add_pem(Format::Rsa2048, include_bytes!("../../tests/data/testca/testca.pem"),
/// #     ["us-east-1".parse()?])?;
/// # let verifier = Verifier::builder(trust)
/// #     .allow(AllowRule::account("123456789012".parse()?)).build()?;
/// # let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0).unwrap();
/// let pending = verifier.verify(include_bytes!("../../tests/data/gen/rsa2048.b64"), now)?;
/// let host_id = pending.host_id(); // error: no method `host_id` on `PendingJoin`
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    trust: TrustStore,
    options: VerifyOptions,
    rules: Arc<[AllowRule]>,
    ttl: Duration,
    max_future_skew: Duration,
    root_volume_check: bool,
    expires: Option<DateTime<Utc>>,
}

/// Configures a [`Verifier`]; [`VerifierBuilder::build`] checks the configuration.
///
/// The rules and the TTL come from one place: a token ([`token`](Self::token) or
/// [`token_spec`](Self::token_spec)), or [`allow`](Self::allow) and [`ttl`](Self::ttl). Mixing
/// them is a [`ConfigError::Conflict`], whatever the order.
#[derive(Clone, Debug)]
#[must_use]
pub struct VerifierBuilder {
    trust: TrustStore,
    options: VerifyOptions,
    rules: Vec<AllowRule>,
    rules_from: Option<&'static str>,
    ttl: Option<Duration>,
    ttl_from: Option<&'static str>,
    max_future_skew: Duration,
    root_volume_check: bool,
    expires: Option<DateTime<Utc>>,
    error: Option<ConfigError>,
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
            rules_from: None,
            ttl: None,
            ttl_from: None,
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
            root_volume_check: false,
            expires: None,
            error: None,
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

    /// When the token this verifier was built from expires, if it does.
    #[must_use]
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        self.expires
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
    /// detected by [`detect_cms_format`](crate::detect_cms_format)), then applies the token's
    /// expiry, the allow rules and the TTL. Same as [`Verifier::verify_input`] with
    /// [`SignedInput::Cms`].
    ///
    /// `now` is the caller's clock; the crate never reads one.
    ///
    /// # Errors
    /// Anything [`parse_document`](crate::parse_document),
    /// [`verify_signature_with`](crate::verify_signature_with), [`match_allow_rules`] and
    /// [`check_ttl`] report, and [`Error::TokenExpired`].
    pub fn verify(&self, blob: &[u8], now: DateTime<Utc>) -> Result<PendingJoin<'_>, Error> {
        self.verify_input(SignedInput::Cms(blob), now)
    }

    /// Verifies a signed document in any format ([`verify_input`]), then applies the token's
    /// expiry, the allow rules and the TTL exactly as [`Verifier::verify`] does.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use ec2_iid::{AllowRule, Format, SignedInput, TrustStore, Verifier};
    ///
    /// let mut trust = TrustStore::empty();
    /// trust.add_pem(Format::Signature, include_bytes!("../../tests/data/testca/testca.pem"),
    ///     ["us-east-1".parse()?])?;
    /// let verifier = Verifier::builder(trust)
    ///     .allow(AllowRule::account("123456789012".parse()?))
    ///     .build()?;
    /// let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 1, 0).unwrap();
    /// let input = SignedInput::Signature {
    ///     document: include_bytes!("../../tests/data/gen/document.json"),
    ///     signature: include_bytes!("../../tests/data/gen/signature.b64"),
    /// };
    /// let pending = verifier.verify_input(input, now)?;
    /// assert_eq!(pending.verified().signer().format, Format::Signature);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Anything [`verify_input`], [`match_allow_rules`] and [`check_ttl`] report, and
    /// [`Error::TokenExpired`].
    pub fn verify_input(
        &self,
        input: SignedInput<'_>,
        now: DateTime<Utc>,
    ) -> Result<PendingJoin<'_>, Error> {
        if let Some(expires) = self.expires
            && now >= expires
        {
            return Err(Error::TokenExpired { expires, now });
        }
        let verified = verify_input(input, &self.trust, &self.options)?;
        let (rule_index, rule) = match_allow_rules(&verified, &self.rules)?;
        check_ttl(
            verified.document().pending_time,
            self.ttl,
            now,
            self.max_future_skew,
        )?;
        Ok(PendingJoin {
            verifier: self,
            verified,
            rule_index,
            rule,
        })
    }

    /// How long a registry keeps the claim of a document launched at `pending_time`: until the
    /// TTL (and the future skew) refuse the document by themselves.
    fn claim_expiry(&self, pending_time: DateTime<Utc>) -> DateTime<Utc> {
        let keep = self.ttl.saturating_add(self.max_future_skew);
        TimeDelta::from_std(keep)
            .ok()
            .and_then(|keep| pending_time.checked_add_signed(keep))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

impl VerifierBuilder {
    /// Uses a token resource: its spec's allow rules and TTL (validated as Teleport does) and
    /// its `metadata.expires`, after which every document is refused
    /// ([`Error::TokenExpired`]).
    pub fn token(mut self, token: &TokenResource) -> Self {
        match token.validate() {
            Ok(spec) => {
                self.expires = token.metadata.expires;
                self.set_spec(spec, "token");
            }
            Err(e) => self.fail(e),
        }
        self
    }

    /// Uses a token spec's allow rules and TTL (validated as Teleport does).
    pub fn token_spec(mut self, spec: &TokenSpec) -> Self {
        match spec.validate() {
            Ok(spec) => self.set_spec(spec, "token_spec"),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Adds an allow rule after those already set.
    pub fn allow(mut self, rule: AllowRule) -> Self {
        self.claim("allow", Setting::Rules);
        self.rules.push(rule);
        self
    }

    /// Sets the TTL on `pendingTime` (default 5 minutes; under one second is refused).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.claim("ttl", Setting::Ttl);
        self.ttl = Some(ttl);
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
    /// The first problem found: a token that failed validation, [`ConfigError::Conflict`],
    /// [`ConfigError::NoAllowRules`], [`ConfigError::TtlTooShort`],
    /// [`ConfigError::EmptyTrustStore`], or [`ConfigError::UncoveredRegion`] for a rule region
    /// the trust store has no certificate for.
    pub fn build(self) -> Result<Verifier, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.trust.is_empty() {
            return Err(ConfigError::EmptyTrustStore);
        }
        if self.rules.is_empty() {
            return Err(ConfigError::NoAllowRules { field: "allow" });
        }
        let at = if self.rules_from == Some("allow") {
            "allow"
        } else {
            "spec.allow"
        };
        for (index, rule) in self.rules.iter().enumerate() {
            rule.check_regions_covered(&format!("{at}[{index}]"), &self.trust)?;
        }
        let ttl = self.ttl.unwrap_or(DEFAULT_TTL);
        if ttl < MIN_TTL {
            return Err(ConfigError::TtlTooShort { field: "ttl", ttl });
        }
        Ok(Verifier {
            trust: self.trust,
            options: self.options,
            rules: self.rules.into(),
            ttl,
            max_future_skew: self.max_future_skew,
            root_volume_check: self.root_volume_check,
            expires: self.expires,
        })
    }

    fn set_spec(&mut self, spec: TokenSpec, from: &'static str) {
        self.claim(from, Setting::Rules);
        self.claim(from, Setting::Ttl);
        self.rules = spec.allow;
        self.ttl = Some(spec.aws_iid_ttl.get());
    }

    /// Records that `from` sets `setting`; a second source of the same setting is a conflict
    /// (`allow` may be called repeatedly: it adds rules).
    fn claim(&mut self, from: &'static str, setting: Setting) {
        let (slot, what) = match setting {
            Setting::Rules => (&mut self.rules_from, "allow rules"),
            Setting::Ttl => (&mut self.ttl_from, "TTL"),
        };
        match *slot {
            None => *slot = Some(from),
            Some("allow") if from == "allow" => {}
            Some(first) => {
                let conflict = ConfigError::Conflict {
                    first,
                    second: from,
                    what,
                };
                self.fail(conflict);
            }
        }
    }

    /// Keeps the first error, reported by `build`.
    fn fail(&mut self, error: ConfigError) {
        self.error.get_or_insert(error);
    }
}

/// What a builder setting sets.
#[derive(Clone, Copy)]
enum Setting {
    Rules,
    Ttl,
}

/// A document that passed [`Verifier::verify`] (signature, token expiry, allow rules, TTL) but
/// not yet the instance check: **not a join**. It has no host id; check the instance with
/// [`check_instance`](Self::check_instance), [`check_instance_once`](Self::check_instance_once)
/// or [`check_facts`](Self::check_facts) to get the [`JoinOutcome`] that has one.
///
/// It borrows the verifier that made it, so its checks always use that verifier's rules and
/// settings.
#[derive(Clone, Debug)]
pub struct PendingJoin<'v> {
    verifier: &'v Verifier,
    verified: VerifiedDocument,
    rule_index: usize,
    rule: &'v AllowRule,
}

impl<'v> PendingJoin<'v> {
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
    pub fn rule(&self) -> &'v AllowRule {
        self.rule
    }

    /// The `DescribeInstances` query: the document's account, region and instance, and the
    /// matched rule's role.
    #[must_use]
    pub fn query(&self) -> InstanceQuery {
        let doc = self.document();
        InstanceQuery::new(
            doc.account_id.clone(),
            doc.instance_id.clone(),
            doc.region.clone(),
        )
        .with_role_arn(self.rule.aws_role().cloned())
    }

    /// Checks instance facts you fetched yourself (sync; for batching or caching lookups);
    /// `None` means EC2 does not know the instance.
    ///
    /// # Errors
    /// As [`check_instance_facts`].
    pub fn check_facts(&self, facts: Option<&InstanceFacts>) -> Result<JoinOutcome, Error> {
        let root_volume_check = self.verifier.root_volume_check;
        check_instance_facts(&self.verified, self.rule, facts, root_volume_check)?;
        Ok(JoinOutcome {
            host_id: self.document().host_id(),
            matched_rule: self.rule_index,
            rule: self.rule.clone(),
            document: self.document().clone(),
            facts: facts.cloned().unwrap_or_default(),
        })
    }

    /// Asks `lookup` about the instance (assuming the matched rule's role) and checks the facts.
    ///
    /// # Errors
    /// [`CheckError::Lookup`] with your lookup's error as source, or [`CheckError::Rejected`].
    pub async fn check_instance<L: InstanceLookup>(
        &self,
        lookup: &L,
    ) -> Result<JoinOutcome, CheckError<L::Error>> {
        let facts = lookup
            .describe_instance(&self.query())
            .await
            .map_err(CheckError::Lookup)?;
        Ok(self.check_facts(facts.as_ref())?)
    }

    /// [`PendingJoin::check_instance`], then claims the host in `registry`, so that each launch
    /// of an instance joins once (see [`JoinRegistry`] for the semantics). The claim is kept
    /// until `pendingTime` + TTL + future skew, after which the TTL alone refuses the document.
    ///
    /// # Errors
    /// As [`PendingJoin::check_instance`], plus [`Error::AlreadyJoined`] and
    /// [`CheckError::Registry`].
    pub async fn check_instance_once<L: InstanceLookup, R: JoinRegistry>(
        &self,
        lookup: &L,
        registry: &R,
        now: DateTime<Utc>,
    ) -> Result<JoinOutcome, CheckError<L::Error, R::Error>> {
        let outcome = self.check_instance(lookup).await.map_err(|e| match e {
            CheckError::Rejected(e) => CheckError::Rejected(e),
            CheckError::Lookup(e) => CheckError::Lookup(e),
        })?;
        let pending_time = outcome.document.pending_time;
        let claim = JoinClaim::new(
            outcome.host_id.clone(),
            pending_time,
            self.verifier.claim_expiry(pending_time),
            now,
        );
        if registry.claim(&claim).await.map_err(CheckError::Registry)? {
            Ok(outcome)
        } else {
            Err(CheckError::Rejected(Error::AlreadyJoined {
                host_id: outcome.host_id,
            }))
        }
    }
}

/// A join that passed every check, the instance check included: the only value that grants
/// one. Made by [`PendingJoin::check_facts`], [`PendingJoin::check_instance`] and
/// [`PendingJoin::check_instance_once`]. Serializes as
/// `{"host_id", "matched_rule", "rule", "document", "facts"}`.
#[derive(Clone, Debug, Eq, PartialEq, serde::Serialize)]
pub struct JoinOutcome {
    host_id: String,
    matched_rule: usize,
    rule: AllowRule,
    document: IdentityDocument,
    facts: InstanceFacts,
}

impl JoinOutcome {
    /// Teleport's host id, `<accountId>-<instanceId>`: the identity the host joins as.
    #[must_use]
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// Index of the matched allow rule.
    #[must_use]
    pub fn matched_rule(&self) -> usize {
        self.matched_rule
    }

    /// The matched allow rule.
    #[must_use]
    pub fn rule(&self) -> &AllowRule {
        &self.rule
    }

    /// The signed identity document.
    #[must_use]
    pub fn document(&self) -> &IdentityDocument {
        &self.document
    }

    /// What `DescribeInstances` said.
    #[must_use]
    pub fn facts(&self) -> &InstanceFacts {
        &self.facts
    }
}

/// Why [`PendingJoin::check_instance`] failed: a rejection, or your lookup or registry failing.
///
/// The lookup's and the registry's errors are kept as they are (match on them); they need only
/// `Debug + Display`, so `anyhow::Error` and `Box<dyn Error + Send + Sync>` do as well as any
/// error type. Display shows the cause; [`source`](core::error::Error::source) is the
/// rejection's [`Error`] (a lookup's or registry's error may not be a `std` error).
#[non_exhaustive]
#[derive(Debug)]
pub enum CheckError<L, R = Infallible> {
    /// The instance check rejected the join.
    Rejected(Error),
    /// The lookup failed (throttled, denied, timed out, ...); retry later.
    Lookup(L),
    /// The join registry failed.
    Registry(R),
}

impl<L, R> From<Error> for CheckError<L, R> {
    fn from(e: Error) -> Self {
        Self::Rejected(e)
    }
}

impl<L: fmt::Display, R: fmt::Display> fmt::Display for CheckError<L, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(e) => e.fmt(f),
            Self::Lookup(e) => write!(f, "instance lookup failed: {e}"),
            Self::Registry(e) => write!(f, "join registry failed: {e}"),
        }
    }
}

impl<L, R> core::error::Error for CheckError<L, R>
where
    L: fmt::Debug + fmt::Display,
    R: fmt::Debug + fmt::Display,
{
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Rejected(e) => Some(e),
            Self::Lookup(_) | Self::Registry(_) => None,
        }
    }
}

impl<L, R> CheckError<L, R> {
    /// The class of the failure: the rejection's kind, `None` for a lookup or registry failure
    /// (not a decision about the instance: retry).
    #[must_use]
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Rejected(e) => Some(e.kind()),
            Self::Lookup(_) | Self::Registry(_) => None,
        }
    }

    /// What to change ([`Error::hint`]), or for a failed lookup or registry, to retry.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Rejected(e) => e.hint(),
            Self::Lookup(_) => Some(
                "DescribeInstances did not answer (throttled, denied or unreachable): retry                  later; the document was not judged"
                    .to_owned(),
            ),
            Self::Registry(_) => Some(
                "the join registry did not answer: retry later; the instance was not judged"
                    .to_owned(),
            ),
        }
    }
}
