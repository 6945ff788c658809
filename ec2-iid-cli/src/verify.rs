//! `ec2-iid verify`: the decision, and the JSON that reports it.
//!
//! Freshness: with `--token`, the token's `aws_iid_ttl` applies (and its `metadata.expires`);
//! without one, `--now` or `--ttl` apply a TTL (`--ttl`, default 5 minutes) to `pendingTime`;
//! with neither, only the signature is checked. `--facts` runs the instance check, and the
//! output says whether it ran (`instance_checked`).

use std::process::ExitCode;

use ec2_iid::token::DEFAULT_MAX_FUTURE_SKEW;
use ec2_iid::{Error, Signer, check_ttl, verify_input};
use serde_json::{Value, json};

use crate::hint;
use crate::setup::Setup;

/// Verifies and prints the outcome: the accepted document's JSON on stdout (exit 0), or the
/// rejection on stderr and as JSON on stdout (exit 1).
pub(crate) fn run(setup: &Setup) -> ExitCode {
    match verdict(setup) {
        Ok(report) => {
            crate::out(report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let rejection = Rejection::new(&e, setup);
            eprintln!("rejected: {}", rejection.message);
            if let Some(hint) = &rejection.hint {
                eprintln!("hint: {hint}");
            }
            crate::out(rejection.to_json());
            ExitCode::from(1)
        }
    }
}

/// The decision `verify` and `explain` both report: the accepted document's report, or why it
/// was rejected.
///
/// # Errors
/// The core's reason for rejecting the document.
pub(crate) fn verdict(setup: &Setup) -> Result<Value, Error> {
    let Some(verifier) = &setup.verifier else {
        let verified = verify_input(setup.input(), &setup.trust, &setup.verify_options())?;
        if let Some(ttl) = setup.options.ttl_without_token() {
            let pending_time = verified.document().pending_time;
            check_ttl(pending_time, ttl, DEFAULT_MAX_FUTURE_SKEW, setup.now)?;
        }
        let host_id = verified.host_id();
        return Ok(report(
            verified.content(),
            verified.signer(),
            &host_id,
            None,
        ));
    };
    let pending = verifier.verify_input(setup.input(), setup.now)?;
    // With facts, the rule that admits the instance (a later one if the first matching rule's
    // bounds fail); without, the first matching rule.
    let (host_id, matched_rule, instance_checked) = match &setup.facts {
        Some(facts) => {
            let outcome = pending.check_facts(Some(facts))?;
            (outcome.host_id().to_owned(), outcome.matched_rule(), true)
        }
        // What the host id would be: only the instance check grants it.
        None => (pending.document().host_id(), pending.matched_rule(), false),
    };
    let verified = pending.verified();
    let policy = Some((matched_rule, instance_checked));
    Ok(report(
        verified.content(),
        verified.signer(),
        &host_id,
        policy,
    ))
}

/// The accepted document as the `verify` example printed it: the document exactly as AWS wrote
/// it, the signer, the host id, and with a token the matched rule and whether the instance was
/// checked.
fn report(content: &[u8], signer: &Signer, host_id: &str, policy: Option<(usize, bool)>) -> Value {
    let document: Value = serde_json::from_slice(content).unwrap_or_default();
    let mut output = json!({
        "document": document,
        "signer": {
            "format": signer.format.as_str(),
            "region": signer.region.as_str(),
            "serial": signer.serial,
            "signing_time": signer.signing_time.map(|t| t.to_rfc3339()),
        },
        "host_id": host_id,
    });
    if let (Some((index, instance_checked)), Some(object)) = (policy, output.as_object_mut()) {
        object.insert("matched_rule".into(), index.into());
        object.insert("instance_checked".into(), instance_checked.into());
    }
    output
}

/// A rejection as the operator and machines see it.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) message: String,
    pub(crate) kind: &'static str,
    /// What to change: the command line's hint if the input shows a mistake, else the core's.
    pub(crate) hint: Option<String>,
}

impl Rejection {
    pub(crate) fn new(e: &Error, setup: &Setup) -> Self {
        Self {
            message: e.to_string(),
            kind: e.kind().as_str(),
            hint: hint::cli_hint(setup).or_else(|| e.hint()),
        }
    }

    /// `{"error": .., "kind": .., "hint": ..}`, on one line.
    pub(crate) fn to_json(&self) -> Value {
        json!({ "error": self.message, "kind": self.kind, "hint": self.hint })
    }
}
