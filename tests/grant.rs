//! `JoinOutcome::grant`: a launch's first grant, a repeat for the requester that claimed it,
//! a refusal for any other requester.
#![cfg(test)] // clippy.toml says why

mod common;

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use ec2_iid::ids::InstanceState;
use ec2_iid::{
    AllowRule, CheckError, ClaimRecord, Error, Grant, InMemoryJoinRegistry, InstanceFacts,
    InstanceLookup, InstanceQuery, JoinClaim, JoinRegistry, Verifier,
};
use ec2_iid_test_support::fixtures;
use ec2_iid_test_support::now_or_never;

fn now() -> DateTime<Utc> {
    fixtures::NOW_FOR_TESTS.parse().unwrap()
}

fn verifier() -> Verifier {
    Verifier::builder(common::trust_with_test_ca("us-east-1"))
        .allow(AllowRule::account("123456789012".parse().unwrap()))
        .build()
        .unwrap()
}

fn blob() -> Vec<u8> {
    std::fs::read(fixtures::data_path("gen/rsa2048.b64")).unwrap()
}

/// Answers with a running instance of the document's account.
#[derive(Debug)]
struct Running;

impl InstanceLookup for Running {
    type Error = core::convert::Infallible;

    async fn describe_instance(
        &self,
        _: &InstanceQuery,
    ) -> Result<Option<InstanceFacts>, Self::Error> {
        let mut facts = InstanceFacts::new("i-0123456789abcdef0", InstanceState::Running);
        facts.owner_id = Some("123456789012".into());
        Ok(Some(facts))
    }
}

#[test]
fn first_then_repeat_for_the_same_requester_and_refused_for_another() {
    let verifier = verifier();
    let join = verifier.verify(&blob(), now()).unwrap();
    let registry = InMemoryJoinRegistry::new();
    let once = |requester: u8| {
        now_or_never(join.check_instance_once(&Running, &registry, [requester; 32], now()))
    };
    assert_eq!(once(1).unwrap().grant(), Grant::First);
    assert_eq!(once(1).unwrap().grant(), Grant::Repeat);
    assert_eq!(once(1).unwrap().grant(), Grant::Repeat, "and again");
    match once(2) {
        Err(CheckError::Rejected(Error::AlreadyJoined { host_id })) => {
            assert_eq!(host_id, "123456789012-i-0123456789abcdef0");
        }
        other => panic!("{other:?}"),
    }
    let outcome = once(1).unwrap();
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["grant"], "repeat");
}

#[test]
fn checks_without_a_registry_say_first() {
    let verifier = verifier();
    let join = verifier.verify(&blob(), now()).unwrap();
    let facts = now_or_never(Running.describe_instance(&join.query())).unwrap();
    assert_eq!(
        join.check_facts(facts.as_ref()).unwrap().grant(),
        Grant::First
    );
    let outcome = now_or_never(join.check_instance(&Running)).unwrap();
    assert_eq!(outcome.grant(), Grant::First);
    assert_eq!(Grant::First.as_str(), "first");
    assert_eq!(
        serde_json::to_string(&Grant::Repeat).unwrap(),
        r#""repeat""#
    );
}

/// A registry whose claims are recorded but answer an error (the answer was lost).
#[derive(Debug, Default)]
struct LostAnswers {
    inner: InMemoryJoinRegistry,
    reads: Mutex<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("the answer was lost")]
struct Lost;

impl JoinRegistry for LostAnswers {
    type Error = Lost;

    async fn claim(&self, claim: &JoinClaim) -> Result<bool, Lost> {
        let _ = self.inner.claim(claim).await;
        Err(Lost)
    }

    async fn record(&self, host_id: &str, now: DateTime<Utc>) -> Result<Option<ClaimRecord>, Lost> {
        *self.reads.lock().unwrap() += 1;
        Ok(self.inner.record(host_id, now).await.unwrap())
    }
}

#[test]
fn a_claim_found_only_by_the_read_back_is_a_first_grant() {
    let verifier = verifier();
    let join = verifier.verify(&blob(), now()).unwrap();
    let registry = LostAnswers::default();
    let once = || now_or_never(join.check_instance_once(&Running, &registry, [1; 32], now()));
    assert_eq!(once().unwrap().grant(), Grant::First);
    assert_eq!(*registry.reads.lock().unwrap(), 2, "read, claim, read back");
    // Its retry finds the record at the first read.
    assert_eq!(once().unwrap().grant(), Grant::Repeat);
}
