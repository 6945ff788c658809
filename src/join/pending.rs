//! A verified document waiting for its instance check: what
//! [`Verifier::verify`](crate::Verifier::verify) returns.
//! Only its checks make the [`JoinOutcome`] that grants a join.

use core::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::join::lookup::{InstanceLookup, InstanceQuery};
use crate::join::outcome::{CheckError, JoinOutcome};
use crate::join::registry::{JoinClaim, JoinRegistry};
use crate::policy::facts::{InstanceFacts, RootVolumeCheck, check_instance_facts};
use crate::policy::rules::AllowRule;
use crate::policy::ttl;
use crate::signature::VerifiedDocument;
use crate::signature::document::IdentityDocument;

/// A document that passed [`Verifier::verify`](crate::Verifier::verify) (signature, token expiry, allow rules, TTL) but
/// not yet the instance check: **not a join**. It has no host id; check the instance with
/// [`check_instance`](Self::check_instance), [`check_instance_once`](Self::check_instance_once)
/// or [`check_facts`](Self::check_facts) to get the [`JoinOutcome`] that has one.
///
/// It borrows the verifier that made it, so its checks always use that verifier's rules and
/// settings.
#[derive(Clone, Debug)]
pub struct PendingJoin<'v> {
    settings: &'v InstanceCheck,
    verified: VerifiedDocument,
    rule_index: usize,
    rule: &'v AllowRule,
}

/// The settings of a [`Verifier`](crate::Verifier) that its pending joins' instance checks
/// use; the verifier holds them, and each pending join borrows them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InstanceCheck {
    /// SPIRE's root-volume check ([`VerifierBuilder::root_volume_check`](crate::VerifierBuilder::root_volume_check)).
    pub(crate) root_volume: RootVolumeCheck,
    /// How long after `pendingTime` the TTL (and the future skew) still admit a document: how
    /// long a registry must keep its claim.
    pub(crate) claim_window: Duration,
}

impl InstanceCheck {
    /// When a registry may forget the claim of a document launched at `pending_time`: after
    /// the TTL refuses the document by itself (the boundary [`check_ttl`](crate::check_ttl)
    /// uses, plus the future skew).
    fn claim_expiry(&self, pending_time: DateTime<Utc>) -> DateTime<Utc> {
        ttl::claim_expiry(pending_time, self.claim_window)
    }
}

impl<'v> PendingJoin<'v> {
    pub(crate) fn new(
        settings: &'v InstanceCheck,
        verified: VerifiedDocument,
        rule_index: usize,
        rule: &'v AllowRule,
    ) -> Self {
        Self {
            settings,
            verified,
            rule_index,
            rule,
        }
    }

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
        let root_volume = self.settings.root_volume;
        check_instance_facts(&self.verified, self.rule, facts, root_volume)?;
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

    /// [`PendingJoin::check_instance`], then claims the host in `registry` for `requester`, so
    /// that each launch of an instance joins once (see [`JoinRegistry`] for the semantics). The
    /// claim is kept until `pendingTime` + TTL + future skew, after which the TTL alone refuses
    /// the document.
    ///
    /// `requester` identifies who asks (see [`JoinClaim::requester`]): 32 bytes unique to the
    /// request (random), or a digest of the requester's public key. Three registry calls, so
    /// that neither replays nor failures cost more than they must:
    /// 1. the host's record is read first: a replay of a launch that already joined is
    ///    refused as [`Error::AlreadyJoined`] without asking `lookup` (no EC2 call);
    /// 2. after the instance check, the claim: the only step that grants;
    /// 3. if the claim failed, the record is read again: a claim that was recorded after all
    ///    (its answer was lost) grants; otherwise the claim's error is returned and nothing
    ///    of this claim is stored, so a retry is not refused as a replay.
    ///
    /// # Errors
    /// As [`PendingJoin::check_instance`], plus [`Error::AlreadyJoined`] and
    /// [`CheckError::Registry`].
    pub async fn check_instance_once<L: InstanceLookup, R: JoinRegistry>(
        &self,
        lookup: &L,
        registry: &R,
        requester: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<JoinOutcome, CheckError<L::Error, R::Error>> {
        let claim = self.claim(requester, now);
        let stored = registry.record(&claim.host_id, now).await;
        if stored
            .map_err(CheckError::Registry)?
            .is_some_and(|stored| !claim.wins_over(&stored))
        {
            return Err(already_joined(claim));
        }
        let outcome = self.check_instance(lookup).await.map_err(|e| match e {
            CheckError::Rejected(e) => CheckError::Rejected(e),
            CheckError::Lookup(e) => CheckError::Lookup(e),
        })?;
        match registry.claim(&claim).await {
            Ok(true) => Ok(outcome),
            Ok(false) => Err(already_joined(claim)),
            Err(e) => match registry.record(&claim.host_id, now).await {
                Ok(Some(stored)) if claim.is_recorded_in(&stored) => Ok(outcome),
                _ => Err(CheckError::Registry(e)),
            },
        }
    }

    /// The claim `requester` makes at `now` for this document's host and launch.
    fn claim(&self, requester: [u8; 32], now: DateTime<Utc>) -> JoinClaim {
        let document = self.document();
        JoinClaim::new(
            document.host_id(),
            document.pending_time,
            self.settings.claim_expiry(document.pending_time),
            now,
        )
        .with_requester(requester)
    }
}

fn already_joined<L, R>(claim: JoinClaim) -> CheckError<L, R> {
    CheckError::Rejected(Error::AlreadyJoined {
        host_id: claim.host_id,
    })
}
