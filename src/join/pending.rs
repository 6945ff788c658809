//! A verified document waiting for its instance check: what
//! [`Verifier::verify`](crate::Verifier::verify) returns.
//! Only its checks make the [`JoinOutcome`] that grants a join.

use core::ops::ControlFlow;
use core::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::ids::RoleArn;
use crate::join::lookup::{InstanceLookup, InstanceQuery};
use crate::join::outcome::{CheckError, Grant, JoinOutcome};
use crate::join::registry::{JoinClaim, JoinRegistry};
use crate::policy::facts::{
    InstanceFacts, RootVolumeCheck, check_instance_facts, is_bound_failure,
};
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
///
/// # Which rule admits the instance
///
/// Rules are tried in order. The *candidates* are the rules whose document fields match
/// (account, role partition, regions, AMI, type, zone); the first of them is
/// [`matched_rule`](Self::matched_rule), and its role is the one [`query`](Self::query) asks
/// with. The instance check then tries the candidates in order:
///
/// * the instance itself must be as the document says (found, same id, running, owned by the
///   document's account, and the root-volume check if on); if not, the join is refused
///   whatever the rule, and no further lookup is made;
/// * a candidate whose lookup bounds (`aws_vpc_ids`, `aws_subnet_ids`,
///   `aws_iam_instance_profile_arns`) fail the instance lets the next candidate try;
/// * candidates that assume the same role share one lookup: [`check_instance`](Self::check_instance)
///   makes at most one `DescribeInstances` per distinct role (no role counts as one), when the
///   first candidate with that role is reached, and none after a candidate passes;
/// * the first candidate that passes is the outcome's
///   [`JoinOutcome::matched_rule`](crate::JoinOutcome::matched_rule), which may thus be later
///   than this pending join's `matched_rule`; if none passes, the refusal is the first
///   candidate's.
///
/// So with `[{aws_account: A, aws_vpc_ids: [vpc-1]}, {aws_account: A}]`, an instance of A in
/// vpc-1 joins by rule 0, and one elsewhere by rule 1, with one lookup.
/// [`check_facts`](Self::check_facts) has one answer, for the first candidate's role, so it
/// tries the candidates up to the first that assumes another role.
#[derive(Clone, Debug)]
pub struct PendingJoin<'v> {
    settings: &'v InstanceCheck,
    verified: VerifiedDocument,
    rules: &'v [AllowRule],
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
    /// A pending join whose first candidate is `rules[rule_index]`, i.e. `rule`.
    pub(crate) fn new(
        settings: &'v InstanceCheck,
        verified: VerifiedDocument,
        rules: &'v [AllowRule],
        rule_index: usize,
        rule: &'v AllowRule,
    ) -> Self {
        Self {
            settings,
            verified,
            rules,
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

    /// Index of the first allow rule that matches the document: the first candidate (see
    /// [Which rule admits the instance](Self#which-rule-admits-the-instance)). The rule that
    /// grants the join is [`JoinOutcome::matched_rule`](crate::JoinOutcome::matched_rule),
    /// which is this one or a later candidate.
    #[must_use]
    pub fn matched_rule(&self) -> usize {
        self.rule_index
    }

    /// The first allow rule that matches the document (see [`matched_rule`](Self::matched_rule)).
    #[must_use]
    pub fn rule(&self) -> &'v AllowRule {
        self.rule
    }

    /// The `DescribeInstances` query: the document's account, region and instance, and the
    /// first candidate's role. [`check_facts`](Self::check_facts) expects the answer to this
    /// query.
    #[must_use]
    pub fn query(&self) -> InstanceQuery {
        self.query_as(self.rule.aws_role())
    }

    fn query_as(&self, role: Option<&RoleArn>) -> InstanceQuery {
        let doc = self.document();
        let mut query = InstanceQuery::new(
            doc.account_id.clone(),
            doc.instance_id.clone(),
            doc.region.clone(),
        )
        .with_role_arn(role.cloned());
        // The facts beyond DescribeInstances that the candidates asking with this role need.
        for (_, rule) in self
            .candidates()
            .filter(|(_, rule)| rule.aws_role() == role)
        {
            query.needs_instance_role |= !rule.aws_iam_role_arns().is_empty();
            query.needs_organization |= rule.aws_organization_id().is_some();
        }
        query
    }

    /// The candidates in order: the first matching rule and every later rule that matches the
    /// document.
    fn candidates(&self) -> impl Iterator<Item = (usize, &'v AllowRule)> {
        let first = self.rule_index;
        self.rules
            .iter()
            .enumerate()
            .skip(first)
            .filter(move |&(index, rule)| {
                index == first || rule.first_mismatch(&self.verified).is_none()
            })
    }

    /// Checks instance facts you fetched yourself (sync; for batching or caching lookups);
    /// `None` means EC2 does not know the instance.
    ///
    /// The facts are the answer to [`query`](Self::query), asked with the first candidate's
    /// role, so they judge the candidates in order as long as they assume that role (see
    /// [Which rule admits the instance](Self#which-rule-admits-the-instance)). The first
    /// candidate with another role would need its own lookup: the check stops there, so that
    /// it never grants a later rule than [`check_instance`](Self::check_instance) would.
    ///
    /// # Errors
    /// The first candidate's refusal when none passes: [`Error::InstanceNotFound`],
    /// [`Error::InstanceIdMismatch`], [`Error::InstanceNotRunning`], [`Error::OwnerMismatch`],
    /// [`Error::BoundViolated`], [`Error::MissingFact`] or [`Error::RootVolumeReattached`].
    pub fn check_facts(&self, facts: Option<&InstanceFacts>) -> Result<JoinOutcome, Error> {
        let role = self.rule.aws_role();
        let mut refusal = None;
        for (index, rule) in self
            .candidates()
            .take_while(|(_, rule)| rule.aws_role() == role)
        {
            if let ControlFlow::Break(result) = self.judge(index, rule, facts, &mut refusal) {
                return result;
            }
        }
        Err(refusal.unwrap_or_else(|| self.not_found()))
    }

    /// Asks `lookup` about the instance and checks the facts against the candidates in order,
    /// each with the answer for its role: at most one lookup per distinct role, asked when the
    /// first candidate with that role is reached, and none after a candidate passes (see
    /// [Which rule admits the instance](Self#which-rule-admits-the-instance)).
    ///
    /// # Errors
    /// [`CheckError::Lookup`] with your lookup's error as source (at once: a later rule is not
    /// tried while an earlier one is undecided), or [`CheckError::Rejected`] with the first
    /// candidate's refusal.
    pub async fn check_instance<L: InstanceLookup>(
        &self,
        lookup: &L,
    ) -> Result<JoinOutcome, CheckError<L::Error>> {
        // The answer for each role asked so far.
        let mut answers: Vec<(Option<&RoleArn>, Option<InstanceFacts>)> = Vec::new();
        let mut refusal = None;
        for (index, rule) in self.candidates() {
            let role = rule.aws_role();
            if !answers.iter().any(|(asked, _)| *asked == role) {
                let facts = lookup
                    .describe_instance(&self.query_as(role))
                    .await
                    .map_err(CheckError::Lookup)?;
                answers.push((role, facts));
            }
            let facts = answers
                .iter()
                .find(|(asked, _)| *asked == role)
                .and_then(|(_, facts)| facts.as_ref());
            if let ControlFlow::Break(result) = self.judge(index, rule, facts, &mut refusal) {
                return result.map_err(CheckError::Rejected);
            }
        }
        Err(CheckError::Rejected(
            refusal.unwrap_or_else(|| self.not_found()),
        ))
    }

    /// Checks one candidate: joined, refused for good (the instance's own failure, or the first
    /// candidate's refusal once the instance fails), or go on to the next candidate (its bounds
    /// failed; the first such refusal is kept in `refusal`).
    fn judge(
        &self,
        index: usize,
        rule: &AllowRule,
        facts: Option<&InstanceFacts>,
        refusal: &mut Option<Error>,
    ) -> ControlFlow<Result<JoinOutcome, Error>> {
        let root_volume = self.settings.root_volume;
        match check_instance_facts(&self.verified, rule, facts, root_volume) {
            Ok(()) => ControlFlow::Break(Ok(JoinOutcome {
                host_id: self.document().host_id(),
                matched_rule: index,
                rule: rule.clone(),
                document: self.document().clone(),
                facts: facts.cloned().unwrap_or_default(),
                grant: Grant::First,
            })),
            Err(e) if is_bound_failure(&e) => {
                refusal.get_or_insert(e);
                ControlFlow::Continue(())
            }
            Err(e) => ControlFlow::Break(Err(refusal.take().unwrap_or(e))),
        }
    }

    /// The refusal when no candidate was judged; never, since the first matching rule is
    /// always a candidate.
    fn not_found(&self) -> Error {
        Error::InstanceNotFound {
            instance_id: self.document().instance_id.clone(),
        }
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
    /// The outcome's [`grant`](JoinOutcome::grant) is [`Grant::Repeat`] when the first read
    /// found this requester's claim of this launch, else [`Grant::First`].
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
        let stored = registry
            .record(&claim.host_id, now)
            .await
            .map_err(CheckError::Registry)?;
        if stored.is_some_and(|stored| !claim.wins_over(&stored)) {
            return Err(already_joined(claim));
        }
        // Decided by the first read: a claim found only by the read-back below (its answer was
        // lost) is still this request's first grant.
        let grant = if stored.is_some_and(|stored| claim.is_recorded_in(&stored)) {
            Grant::Repeat
        } else {
            Grant::First
        };
        let mut outcome = self.check_instance(lookup).await.map_err(|e| match e {
            CheckError::Rejected(e) => CheckError::Rejected(e),
            CheckError::Lookup(e) => CheckError::Lookup(e),
        })?;
        outcome.grant = grant;
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
