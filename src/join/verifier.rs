//! The join check: build a [`Verifier`] once, then per request `verify` a document into a
//! [`PendingJoin`] and check the instance into the [`JoinOutcome`](crate::JoinOutcome) that grants the join.

use core::time::Duration;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::{ConfigError, Error};
use crate::input::SignedInput;
use crate::join::pending::{InstanceCheck, PendingJoin};
use crate::policy::facts::RootVolumeCheck;
use crate::policy::rules::{AllowRule, match_allow_rules};
use crate::policy::token::{TokenResource, TokenSpec, ValidatedSpec};
use crate::policy::ttl::{DEFAULT_MAX_FUTURE_SKEW, DEFAULT_TTL, MIN_TTL, check_ttl};
use crate::signature::verify_input::{VerifyOptions, verify_input};
use crate::trust::TrustStore;

/// Verifies identity documents against a trust store and a token's rules.
///
/// Built once with [`Verifier::builder`]; `Send + Sync`, so share it (e.g. in an `Arc`).
/// [`Verifier::verify`] is sync and cheap (one RSA verification) and returns a
/// [`PendingJoin`]: signed, matched and fresh, but not yet a join. Only its instance check
/// ([`PendingJoin::check_instance`], or [`PendingJoin::check_facts`] with facts you fetched)
/// gives the [`JoinOutcome`](crate::JoinOutcome) whose host id may join:
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use ec2_iid::{AllowRule, Format, InstanceFacts, TrustStore, Verifier};
/// use ec2_iid::ids::InstanceState;
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
    instance_check: InstanceCheck,
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
    rules_from: Option<Source>,
    ttl: Option<Duration>,
    ttl_from: Option<Source>,
    max_future_skew: Duration,
    root_volume_check: bool,
    expires: Option<DateTime<Utc>>,
    error: Option<ConfigError>,
}

impl Verifier {
    /// Starts a verifier that trusts `trust` (e.g. [`TrustStore::aws`]).
    ///
    /// Defaults: TTL 5 minutes, future skew 1 minute, root-volume check off, `/pkcs7` and
    /// `/signature` refused (see [`VerifierBuilder::allow_legacy_dsa_sha1`] and
    /// [`VerifierBuilder::allow_legacy_rsa1024`]); no allow rules (at least one is required).
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
    /// detected by [`detect_cms_format`](crate::dangerous::detect_cms_format)), then applies the token's
    /// expiry, the allow rules and the TTL. Same as [`Verifier::verify_input`] with
    /// [`SignedInput::Cms`].
    ///
    /// `now` is the caller's clock; the crate never reads one.
    ///
    /// # Errors
    /// Anything [`verify_input`] with [`SignedInput::Cms`], [`match_allow_rules`] and
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
    ///     .allow_legacy_rsa1024(true) // `/signature` is RSA-1024: refused by default
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
            self.max_future_skew,
            now,
        )?;
        Ok(PendingJoin::new(
            &self.instance_check,
            verified,
            &self.rules,
            rule_index,
            rule,
        ))
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
                self.set_spec(spec, Source::Token);
            }
            Err(e) => self.fail(e),
        }
        self
    }

    /// Uses a token spec's allow rules and TTL (validated as Teleport does).
    pub fn token_spec(mut self, spec: &TokenSpec) -> Self {
        match spec.validate() {
            Ok(spec) => self.set_spec(spec, Source::TokenSpec),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Adds an allow rule after those already set.
    pub fn allow(mut self, rule: AllowRule) -> Self {
        self.claim(Source::Allow, Setting::Rules);
        self.rules.push(rule);
        self
    }

    /// Sets the TTL on `pendingTime` (default 5 minutes; under one second is refused).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.claim(Source::Ttl, Setting::Ttl);
        self.ttl = Some(ttl);
        self
    }

    /// Sets how far `pendingTime` may be ahead of `now` (default 1 minute).
    pub fn max_future_skew(mut self, skew: Duration) -> Self {
        self.max_future_skew = skew;
        self
    }

    /// Turns SPIRE's root-volume check on or off (default off: it needs the root device
    /// type and attach times in [`InstanceFacts`](crate::InstanceFacts), which `ec2-iid-aws` fetches but a minimal
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

    /// Accepts `/signature` documents (RSA-1024), refused by default; see
    /// [`VerifyOptions::allow_legacy_rsa1024`] for why.
    pub fn allow_legacy_rsa1024(mut self, allow: bool) -> Self {
        self.options = self.options.allow_legacy_rsa1024(allow);
        self
    }

    /// Checks the configuration and builds the verifier.
    ///
    /// # Errors
    /// The first problem found: a token that failed validation, [`ConfigError::Conflict`],
    /// [`ConfigError::NoAllowRules`], [`ConfigError::TtlTooShort`],
    /// [`ConfigError::EmptyTrustStore`], [`ConfigError::PartitionMismatch`] for a rule region
    /// outside its role's partition, or [`ConfigError::UncoveredRegion`] for a rule region the
    /// trust store has no certificate for.
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
        let at = if self.rules_from == Some(Source::Allow) {
            "allow"
        } else {
            "spec.allow"
        };
        for (index, rule) in self.rules.iter().enumerate() {
            let at = format!("{at}[{index}]");
            rule.check_partition(&at)?;
            rule.check_regions_covered(&at, &self.trust)?;
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
            instance_check: InstanceCheck {
                root_volume: if self.root_volume_check {
                    RootVolumeCheck::Require
                } else {
                    RootVolumeCheck::Skip
                },
                claim_window: ttl.saturating_add(self.max_future_skew),
            },
            expires: self.expires,
        })
    }

    fn set_spec(&mut self, spec: ValidatedSpec, from: Source) {
        self.claim(from, Setting::Rules);
        self.claim(from, Setting::Ttl);
        let spec = spec.into_spec();
        self.rules = spec.allow;
        self.ttl = Some(spec.aws_iid_ttl.get());
    }

    /// Records that `from` sets `setting`; a second source of the same setting is a conflict
    /// (`allow` may be called repeatedly: it adds rules).
    fn claim(&mut self, from: Source, setting: Setting) {
        let (slot, what) = match setting {
            Setting::Rules => (&mut self.rules_from, "allow rules"),
            Setting::Ttl => (&mut self.ttl_from, "TTL"),
        };
        match *slot {
            None => *slot = Some(from),
            Some(Source::Allow) if from == Source::Allow => {}
            Some(first) => {
                let conflict = ConfigError::Conflict {
                    first: first.method(),
                    second: from.method(),
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

/// The builder method a setting came from, named in [`ConfigError::Conflict`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Source {
    Allow,
    Token,
    TokenSpec,
    Ttl,
}

impl Source {
    /// The method's name, as the caller wrote it.
    fn method(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Token => "token",
            Self::TokenSpec => "token_spec",
            Self::Ttl => "ttl",
        }
    }
}
