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

use core::time::Duration;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use ec2_iid::ids::{AccountId, InstanceState};
use ec2_iid::{Enrollment, EnrollmentRegistry as _, InstanceLookup as _, InstanceQuery};
use ec2_iid_aws::Ec2LookupError;
use ec2_iid_ca::{CsrError, Issued, Presented, RenewError};
use tracing::Instrument as _;

use super::app::{
    App, TIMED_OUT, certificate_body, json, lookup_answer, refusal, registry_answer, request_id,
    retry_later,
};
use super::bounded::{Bounded, BoundedError};
use super::issue::{self, Issuance};
use super::listener::ClientCertificate;
use super::registry::RegistryError;

/// Why a renewal did not succeed.
#[derive(Debug)]
enum Failure {
    /// The body could not be read.
    Body(BytesRejection),
    /// Not `{"csr": PEM}` (why, for the log).
    Request(String),
    /// No `--ca-cert`: this server issues no certificates.
    IssuanceDisabled,
    /// No client certificate in the TLS handshake (or no TLS).
    NoClientCertificate,
    Csr(CsrError),
    /// The presented certificate was refused, or the new one could not be issued.
    Renewal(RenewError),
    /// This CA issued the certificate, but the host has no enrollment.
    NotEnrolled,
    /// The host was evicted.
    Evicted,
    /// The certificate was issued before the host's present enrollment began.
    PredatesEnrollment,
    /// `--renew-check-instance`: the instance is gone, stopped, or in another account.
    InstanceRejected,
    /// `--renew-check-instance`: the lookup failed.
    Lookup(Arc<Ec2LookupError>),
    Registry(RegistryError),
    TimedOut(Duration),
    /// No randomness for a serial.
    Other(String),
}

/// `POST /renew`.
pub(crate) async fn renew(
    State(app): State<Arc<App>>,
    client: Option<Extension<ClientCertificate>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let id = request_id();
    let span = tracing::info_span!("renew", request_id = %id);
    let (outcome, response) = async {
        let result = match body {
            Ok(body) => decide(&app, client.map(|Extension(c)| c), &body).await,
            Err(rejection) => Err(Failure::Body(rejection)),
        };
        answer(result, app.issuance.as_ref(), &id)
    }
    .instrument(span)
    .await;
    app.metrics.renewal(outcome);
    response
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
    let serial = issue::random_serial().map_err(Failure::Other)?;
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
    let invalid = |what: &str| Failure::Other(format!("the enrollment's {what} does not parse"));
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

/// The answer and the outcome label of `/metrics`; the reason is logged.
fn answer(
    result: Result<(Presented, Issued), Failure>,
    issuance: Option<&Issuance>,
    id: &str,
) -> (&'static str, Response) {
    let failure = match result {
        Ok((presented, issued)) => {
            let body = certificate_body(presented.host_id(), &issued, issuance);
            tracing::info!(
                host_id = presented.host_id(),
                serial = issued.serial.as_str(),
                previous_serial = presented.serial(),
                not_after = %issued.not_after,
                "renewed; certificate issued"
            );
            return ("renewed", json(StatusCode::OK, &body));
        }
        Err(failure) => failure,
    };
    let (status, error, retry) = classify(&failure);
    match &failure {
        Failure::Registry(e) => tracing::warn!(kind = error, "registry failed: {e}"),
        Failure::Lookup(e) => tracing::warn!(kind = error, "lookup failed: {e}"),
        Failure::TimedOut(timeout) => {
            tracing::warn!(kind = error, "timed out: not answered within {timeout:?}");
        }
        Failure::Other(e) => tracing::error!(kind = error, "no certificate issued: {e}"),
        Failure::Renewal(e) if status.is_server_error() => {
            tracing::error!(kind = error, "no certificate issued: {e}");
        }
        Failure::Renewal(e) => tracing::info!(kind = error, "renewal refused: {e}"),
        Failure::Csr(e) => tracing::info!(kind = error, "CSR refused: {e}"),
        Failure::Request(e) => tracing::info!(kind = error, "malformed renewal request: {e}"),
        Failure::Body(e) => tracing::info!(kind = error, "unreadable body: {e}"),
        Failure::IssuanceDisabled
        | Failure::NoClientCertificate
        | Failure::NotEnrolled
        | Failure::Evicted
        | Failure::PredatesEnrollment
        | Failure::InstanceRejected => tracing::info!(kind = error, "renewal refused"),
    }
    let response = refusal(status, error, id);
    (
        error,
        if retry {
            retry_later(response)
        } else {
            response
        },
    )
}

/// The status, the body's `error` (also the outcome label) and whether to send `Retry-After`.
fn classify(failure: &Failure) -> (StatusCode, &'static str, bool) {
    match failure {
        Failure::Body(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large", false)
        }
        Failure::Body(_) | Failure::Request(_) => (StatusCode::BAD_REQUEST, "malformed", false),
        Failure::IssuanceDisabled => (StatusCode::NOT_FOUND, "issuance_disabled", false),
        Failure::NoClientCertificate => (
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            false,
        ),
        Failure::Csr(e) => (StatusCode::BAD_REQUEST, e.kind(), false),
        Failure::Renewal(e @ RenewError::Issue(_)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, e.kind(), false)
        }
        Failure::Renewal(e) => (StatusCode::FORBIDDEN, e.kind(), false),
        Failure::NotEnrolled => (StatusCode::FORBIDDEN, "not_enrolled", false),
        Failure::Evicted => (StatusCode::FORBIDDEN, "evicted", false),
        Failure::PredatesEnrollment => (
            StatusCode::FORBIDDEN,
            "certificate_predates_enrollment",
            false,
        ),
        Failure::InstanceRejected => (StatusCode::FORBIDDEN, "instance_rejected", false),
        Failure::Lookup(e) => lookup_answer(e),
        Failure::Registry(e) => registry_answer(e),
        Failure::TimedOut(_) => TIMED_OUT,
        Failure::Other(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", false),
    }
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
