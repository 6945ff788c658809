//! `POST /renew`: a new certificate for a host that joined, without a new identity document.
//!
//! The client presents its current certificate in the TLS handshake (mutual TLS: the listener
//! verifies it up to the CA's bundle and hands it over as a [`ClientCertificate`]) and sends
//! `{"csr": PEM}` for its next key. The server checks the certificate is this CA's, unexpired
//! and an instance's ([`Issuance::check_presented`]), that the host's enrollment exists, is not
//! evicted and began no later than that certificate was issued (so a certificate from before
//! an eviction cannot renew the host's later enrollment), then issues a certificate with the
//! same names and records the renewal, which the registry refuses atomically if the host was
//! evicted meanwhile. No EC2 call is made, unless `--renew-check-instance` asks EC2 that the
//! instance still runs.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::{Extension, Json};
use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use ec2_iid::ids::{AccountId, InstanceState};
use ec2_iid::{Enrollment, EnrollmentRegistry as _, InstanceLookup as _, InstanceQuery};
use ec2_iid_ca::{Issued, Presented};
use serde_json::Value;
use tracing::Instrument as _;

use super::app::{App, certificate_body, request_id};
use super::bounded::{Bounded, BoundedError};
use super::failure::{Failure, Refusal};
use super::issue::{self, Issuance};
use super::listener::ClientCertificate;
use super::registry::RegistryError;

/// `POST /renew`. The answer is logged in the request's span and counted once, by its
/// outcome.
pub(crate) async fn renew(
    State(app): State<Arc<App>>,
    client: Option<Extension<ClientCertificate>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Refusal> {
    let id = request_id();
    let span = tracing::info_span!("renew", request_id = %id);
    let answer = async {
        let renewed = match body {
            Ok(body) => decide(&app, client.map(|Extension(c)| c), &body).await,
            Err(rejection) => Err(Failure::RenewalBody(rejection)),
        };
        match renewed {
            Ok((presented, issued)) => Ok(Json(renewed_body(
                &presented,
                &issued,
                app.issuance.as_ref(),
            ))),
            Err(failure) => Err(failure.refuse(&id)),
        }
    }
    .instrument(span)
    .await;
    app.metrics
        .renewal(answer.as_ref().map_or_else(Refusal::kind, |_| "renewed"));
    answer
}

async fn decide(
    app: &App,
    client: Option<ClientCertificate>,
    body: &[u8],
) -> Result<(Presented, Issued), Failure> {
    let issuance = app.issuance.as_ref().ok_or(Failure::IssuanceDisabled)?;
    let client = client.ok_or(Failure::NoClientCertificate)?;
    let csr_pem = parse_request(body).map_err(Failure::Request)?;
    let now = DateTime::<Utc>::from(SystemTime::now());
    let presented = issuance
        .check_presented(&client.0, now)
        .map_err(Failure::Renewal)?;
    let csr = issuance.csr(&csr_pem).map_err(Failure::Csr)?;
    let registry = Bounded {
        inner: &app.registry,
        timeout: app.timeout,
    };
    let host_id = presented.host_id();
    let enrollment = registry
        .bound(app.registry.get(host_id))
        .await
        .map_err(registry_failure)?
        .ok_or(Failure::NotEnrolled)?;
    if enrollment.evicted_at.is_some() {
        return Err(Failure::Evicted);
    }
    // Certificates carry whole seconds; the enrollment began at the join's `now`.
    let began = enrollment
        .first_joined
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap_or(enrollment.first_joined);
    if presented.issued_at() < began {
        return Err(Failure::PredatesEnrollment);
    }
    if app.renew_check_instance {
        check_instance(app, &enrollment).await?;
    }
    let serial = issue::random_serial().map_err(Failure::Internal)?;
    let issued = issuance
        .renew(&presented, &csr, now, serial)
        .map_err(Failure::Renewal)?;
    registry
        .bound(
            app.registry
                .renew(host_id, &issued.serial, issued.not_after, now),
        )
        .await
        .map_err(registry_failure)?
        // Evicted between the read and now: the certificate is never sent.
        .ok_or(Failure::Evicted)?;
    Ok((presented, issued))
}

/// `--renew-check-instance`: the enrolled instance still runs in its account, as EC2 says
/// through the server's paced lookup, with the role of the rule it joined by.
async fn check_instance(app: &App, enrollment: &Enrollment) -> Result<(), Failure> {
    let invalid = |what: &str| Failure::Internal(format!("the enrollment's {what} does not parse"));
    let account: AccountId = enrollment.account.parse().map_err(|_| invalid("account"))?;
    let query = InstanceQuery::new(
        account.clone(),
        enrollment
            .instance_id
            .parse()
            .map_err(|_| invalid("instance id"))?,
        enrollment.region.parse().map_err(|_| invalid("region"))?,
    )
    .with_role_arn(
        app.verifier
            .rules()
            .get(enrollment.matched_rule)
            .and_then(|rule| rule.aws_role().cloned()),
    );
    let lookup = Bounded {
        inner: &app.lookup,
        timeout: app.timeout,
    };
    match lookup.describe_instance(&query).await {
        Ok(Some(facts))
            if facts.state == InstanceState::Running
                && facts.owner_id.as_deref() == Some(account.as_str()) =>
        {
            Ok(())
        }
        Ok(_) => Err(Failure::InstanceRejected),
        Err(BoundedError::Failed(e)) => Err(Failure::Lookup(e)),
        Err(BoundedError::TimedOut(timeout)) => Err(Failure::TimedOut(timeout)),
    }
}

fn registry_failure(e: BoundedError<RegistryError>) -> Failure {
    match e {
        BoundedError::Failed(e) => Failure::Registry(e),
        BoundedError::TimedOut(timeout) => Failure::TimedOut(timeout),
    }
}

/// The CSR of `{"csr": PEM}`, or why the body is not that (bounded, for the log).
fn parse_request(body: &[u8]) -> Result<String, String> {
    let [csr] = issue::string_fields(body, ["csr"])?;
    Ok(csr)
}

/// The 200 answer's body; the renewal is logged (never the key or the CSR).
fn renewed_body(presented: &Presented, issued: &Issued, issuance: Option<&Issuance>) -> Value {
    tracing::info!(
        host_id = presented.host_id(),
        serial = issued.serial.as_str(),
        previous_serial = presented.serial(),
        not_after = %issued.not_after,
        "renewed; certificate issued"
    );
    certificate_body(presented.host_id(), issued, issuance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_one_csr() {
        assert_eq!(parse_request(b"{\"csr\": \"PEM\"}"), Ok("PEM".to_owned()));
        for bad in [
            &b""[..],
            b"{}",
            b"{\"csr\": 1}",
            b"{\"csr\": \"c\", \"document\": \"d\"}",
        ] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
    }
}
