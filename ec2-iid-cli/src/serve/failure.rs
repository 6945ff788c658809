//! Why a request failed, and what it answers: one [`Failure`] for `POST /join`, `POST /renew`,
//! the in-flight cap and `GET /bundle`, turned into a [`Refusal`] (axum's `IntoResponse`).
//!
//! Refusal bodies are generic on purpose, `{"error": KIND, "request_id": ID}`: an
//! unauthenticated caller learns nothing about the rules. The full reason and the hint go to
//! the log (stderr), in the request's span, when the refusal is made ([`Failure::refuse`]).

use core::time::Duration;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ec2_iid::ErrorKind;
use ec2_iid_aws::Ec2LookupError;
use ec2_iid_ca::{CsrError, RenewError};

use super::body_deadline;
use super::error_chain;
use super::registry::RegistryError;

/// Why a request did not succeed. Its status and `kind` ([`Failure::kind`], the body's
/// `error` and the outcome label of `/metrics`) are decided here, once for every route.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A join's body could not be read: 413 `too_large`, 408 `body_timeout` (past
    /// `--body-read-timeout`), else 400 `malformed`.
    Body(BytesRejection),
    /// A join with a CSR, and no `--ca-cert`: 400 `issuance_disabled`.
    CsrWithoutCa,
    /// The CSR was refused: 400 with its [`CsrError::kind`].
    Csr(CsrError),
    /// The host was evicted, and this is not a newer launch's join: 403 `evicted`.
    Evicted,
    /// `--renew-check-instance`: the instance is gone, stopped, or in another account.
    InstanceRejected,
    /// The server's own fault: no randomness, a `CheckError` variant it does not know (the
    /// enum is non-exhaustive), an enrollment that does not parse (why, for the log): 500
    /// `internal`.
    Internal(String),
    /// The join was granted, the certificate not issued (why, for the log): 500
    /// `issue_failed`.
    Issue(String),
    /// No `--ca-cert`: this server issues no certificates, so `/renew` and `/bundle` are 404
    /// `issuance_disabled`.
    IssuanceDisabled,
    /// The EC2 lookup failed: 503 `lookup_unavailable` when it may pass by itself, else 500
    /// `lookup_failed`.
    Lookup(Arc<Ec2LookupError>),
    /// No client certificate in the TLS handshake (or no TLS): 401.
    NoClientCertificate,
    /// This CA issued the certificate, but the host has no enrollment.
    NotEnrolled,
    /// `--max-inflight-joins` joins are in flight: 503 `overloaded`, at once.
    Overloaded,
    /// The certificate was issued before the host's present enrollment began.
    PredatesEnrollment,
    /// The join registry failed: 503 `registry_unavailable` when it may pass by itself, else
    /// 500 `registry_failed`.
    Registry(RegistryError),
    /// The identity document was refused: 400 `malformed`, else 403 with its [`ErrorKind`].
    Rejected(ec2_iid::Error),
    /// The certificate presented for renewal was refused (403), or the new one could not be
    /// issued (500); either with its [`RenewError::kind`].
    Renewal(RenewError),
    /// A renewal's body could not be read: 413 `too_large`, else 400 `malformed`, also past
    /// `--body-read-timeout` (where a join's is 408), as `/renew` has always answered.
    RenewalBody(BytesRejection),
    /// A JSON body that is not the route's (why, bounded, for the log): 400 `malformed`.
    Request(String),
    /// The lookup or the registry did not answer within `--timeout`: 503 `timeout`.
    TimedOut(Duration),
}

impl Failure {
    /// The body's `error`, also the outcome label of `/metrics`.
    pub(crate) fn kind(&self) -> &'static str {
        self.answer().1
    }

    /// Logs why, in the current span (the request's), and makes the answer, which says only
    /// the kind and `request_id`.
    pub(crate) fn refuse(self, request_id: &str) -> Refusal {
        self.log();
        let (status, kind) = self.answer();
        Refusal {
            status,
            kind,
            request_id: request_id.to_owned(),
        }
    }

    /// The status and the `kind`; a failure that may pass later is 503.
    fn answer(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Body(e) | Self::RenewalBody(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
            }
            Self::Body(e) if body_deadline::timed_out(e) => {
                (StatusCode::REQUEST_TIMEOUT, "body_timeout")
            }
            Self::Body(_) | Self::RenewalBody(_) | Self::Request(_) => {
                (StatusCode::BAD_REQUEST, "malformed")
            }
            Self::CsrWithoutCa => (StatusCode::BAD_REQUEST, "issuance_disabled"),
            Self::Csr(e) => (StatusCode::BAD_REQUEST, e.kind()),
            Self::Evicted => (StatusCode::FORBIDDEN, "evicted"),
            Self::InstanceRejected => (StatusCode::FORBIDDEN, "instance_rejected"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::Issue(_) => (StatusCode::INTERNAL_SERVER_ERROR, "issue_failed"),
            Self::IssuanceDisabled => (StatusCode::NOT_FOUND, "issuance_disabled"),
            Self::Lookup(e) if e.is_transient() => {
                (StatusCode::SERVICE_UNAVAILABLE, "lookup_unavailable")
            }
            Self::Lookup(_) => (StatusCode::INTERNAL_SERVER_ERROR, "lookup_failed"),
            Self::NoClientCertificate => (StatusCode::UNAUTHORIZED, "client_certificate_required"),
            Self::NotEnrolled => (StatusCode::FORBIDDEN, "not_enrolled"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::PredatesEnrollment => (StatusCode::FORBIDDEN, "certificate_predates_enrollment"),
            Self::Registry(e) if e.is_transient() => {
                (StatusCode::SERVICE_UNAVAILABLE, "registry_unavailable")
            }
            Self::Registry(_) => (StatusCode::INTERNAL_SERVER_ERROR, "registry_failed"),
            Self::Rejected(e) => match e.kind() {
                ErrorKind::Malformed => (StatusCode::BAD_REQUEST, "malformed"),
                kind => (StatusCode::FORBIDDEN, kind.as_str()),
            },
            Self::Renewal(e @ RenewError::Issue(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, e.kind())
            }
            Self::Renewal(e) => (StatusCode::FORBIDDEN, e.kind()),
            Self::TimedOut(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        }
    }

    /// The reason, with the kind: refusals at `info`, what may pass by itself at `warn`, the
    /// server's own faults at `error`.
    fn log(&self) {
        let kind = self.kind();
        match self {
            Self::Body(e) | Self::RenewalBody(e) => {
                tracing::info!(kind, "unreadable body: {e}");
            }
            Self::CsrWithoutCa => {
                tracing::info!(kind, "a CSR, and no --ca-cert: no certificates issued");
            }
            Self::Csr(e) => tracing::info!(kind, "CSR refused: {e}"),
            Self::Evicted => tracing::info!(
                kind,
                "the host is evicted: only a newer launch's document may enroll it again"
            ),
            Self::Internal(e) => tracing::error!(kind, "failed: {e}"),
            Self::Issue(e) => tracing::error!(kind, "joined, but no certificate issued: {e}"),
            Self::IssuanceDisabled => {
                tracing::info!(kind, "no --ca-cert: this server issues no certificates");
            }
            Self::Lookup(e) => tracing::warn!(kind, "lookup failed: {}", error_chain(e)),
            Self::Overloaded => {
                tracing::warn!(
                    kind,
                    "refused: the --max-inflight-joins joins are in flight"
                );
            }
            Self::Registry(e) => tracing::warn!(kind, "registry failed: {e}"),
            Self::Rejected(e) => {
                let hint = e.hint().unwrap_or_default();
                tracing::info!(kind, "rejected: {e}; hint: {hint}");
            }
            Self::Renewal(e @ RenewError::Issue(_)) => {
                tracing::error!(kind, "no certificate issued: {e}");
            }
            Self::Renewal(e) => tracing::info!(kind, "renewal refused: {e}"),
            Self::Request(e) => tracing::info!(kind, "malformed request: {e}"),
            Self::TimedOut(timeout) => {
                tracing::warn!(kind, "timed out: not answered within {timeout:?}");
            }
            Self::InstanceRejected
            | Self::NoClientCertificate
            | Self::NotEnrolled
            | Self::PredatesEnrollment => tracing::info!(kind, "renewal refused"),
        }
    }
}

/// A failure's answer: its status, `{"error": KIND, "request_id": ID}`, and on a 503 (a
/// failure that may pass by itself) `Retry-After: 1`.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    kind: &'static str,
    request_id: String,
}

impl Refusal {
    /// The body's `error`, also the outcome label of `/metrics`.
    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.kind, "request_id": self.request_id });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 503 says when to retry, and nothing else does; the body is the kind and the id.
    #[tokio::test]
    async fn each_failure_answers_its_status_and_kind() {
        for (failure, status, kind) in [
            (Failure::Overloaded, 503, "overloaded"),
            (Failure::TimedOut(Duration::from_secs(1)), 503, "timeout"),
            (Failure::IssuanceDisabled, 404, "issuance_disabled"),
            (Failure::CsrWithoutCa, 400, "issuance_disabled"),
            (
                Failure::NoClientCertificate,
                401,
                "client_certificate_required",
            ),
            (Failure::Internal("no randomness".into()), 500, "internal"),
            (Failure::Issue("CA expired".into()), 500, "issue_failed"),
            (Failure::Request("not JSON".into()), 400, "malformed"),
            (Failure::Evicted, 403, "evicted"),
            (Failure::InstanceRejected, 403, "instance_rejected"),
            (Failure::NotEnrolled, 403, "not_enrolled"),
            (
                Failure::PredatesEnrollment,
                403,
                "certificate_predates_enrollment",
            ),
        ] {
            assert_eq!(failure.kind(), kind);
            let refusal = failure.refuse("1-2");
            assert_eq!(refusal.kind(), kind);
            let response = refusal.into_response();
            assert_eq!(response.status().as_u16(), status, "{kind}");
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{kind}");
            assert_eq!(
                headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()),
                (status == 503).then_some(&b"1"[..]),
                "{kind}"
            );
            let body = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .unwrap();
            assert_eq!(
                body,
                format!("{{\"error\":\"{kind}\",\"request_id\":\"1-2\"}}").as_bytes()
            );
        }
    }
}
