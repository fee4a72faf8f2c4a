//! What every feature answers when a call fails: a [`Problem`] (problem+json), and the few
//! problems more than one feature gives.

use axum::extract::rejection::BytesRejection;
use bytes::Bytes;
use webhooks_shared::domain::ids::WebhookId;
use webhooks_shared::domain::problem::Problem;

/// What an [`crate::AdminApi`] call answers: its value, or the problem to answer instead.
pub type ApiResult<T> = Result<T, Problem>;

/// A problem as the response that carries it (problem+json).
pub type ProblemResponse = http::Response<String>;

/// What a route answers: its value, or a problem.
pub(crate) type RouteResult<T> = Result<T, ProblemResponse>;

/// A backing service (DynamoDB, SQS, KMS) failed: the cause is logged, never shown (503).
pub(crate) fn unavailable(err: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %err, "admin call failed on a backing service");
    Problem::unavailable()
}

/// [`paused`]'s answer, as the API document describes it.
#[derive(utoipa::ToResponse)]
#[response(
    description = "The webhook is paused; resume it first.",
    content_type = "application/problem+json"
)]
pub struct Paused(#[allow(dead_code)] Problem);

/// Redelivery, recovery and test events are refused while the webhook is paused (409).
pub(crate) fn paused(id: &WebhookId) -> Problem {
    Problem::conflict(format!(
        "webhook {id:?} is paused; resume it first (PATCH {{\"active\": true}})"
    ))
}

/// The request's body, or the problem axum's rejection of it says (too large, unreadable).
pub(crate) fn body_of(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))
}
