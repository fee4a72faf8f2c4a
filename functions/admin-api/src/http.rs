//! Routes of the admin API onto [`AdminApi`]. Errors are problem+json throughout.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::test_event::{TestEventCall, TestEventView};
use crate::validation::{CreateWebhookRequest, RecoveryCall, UpdateWebhookRequest};
use crate::views::{AttemptDetailView, DeliveryView, RecoveryView, WebhookView, WebhookWithSecret};
use webhooks_shared::adapters::http_api;
use webhooks_shared::domain::catalogue;
use webhooks_shared::domain::ids::{DeliveryId, WebhookId};
use webhooks_shared::domain::problem::Problem;

use crate::{AdminApi, ApiResult, MAX_LOG_LIMIT};

/// A problem as the response that carries it (problem+json).
pub type ProblemResponse = http::Response<String>;
/// What a route answers: its value, or a problem.
type RouteResult<T> = Result<T, ProblemResponse>;

/// The OpenAPI 3.1 document of every route, kept in the repository beside this crate.
pub const OPENAPI_DOCUMENT: &str = include_str!("../openapi.json");

/// Routes that need an admin's credentials (the JWT authorizer on AWS).
pub fn router(api: Arc<AdminApi>) -> Router {
    let routes = Router::new()
        .route("/api/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/api/v1/webhooks/{id}",
            get(get_webhook)
                .patch(update_webhook)
                .delete(delete_webhook),
        )
        .route("/api/v1/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/api/v1/webhooks/{id}/attempts", get(list_attempts))
        .route(
            "/api/v1/webhooks/{id}/attempts/{attempt_id}",
            get(get_attempt),
        )
        .route(
            "/api/v1/webhooks/{id}/attempts/{attempt_id}/redeliver",
            post(redeliver),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}",
            get(get_delivery),
        )
        .route("/api/v1/webhooks/{id}/recover", post(recover))
        .route("/api/v1/webhooks/{id}/test-event", post(send_test_event))
        .route("/api/v1/event-types", get(event_types))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn(refuse_overlong_ids))
        .with_state(api);
    http_api::catch_panics(routes)
}

/// The longest path segment an id of ours can be (`dlv_<ulid>.<attempt>` is 35 characters).
pub const MAX_ID_CHARS: usize = 64;

/// A path naming an id longer than any id is a 404 before any AWS call: such a key is
/// refused by DynamoDB (a 503 for every try), not merely absent.
async fn refuse_overlong_ids(request: Request, next: Next) -> Response {
    if request
        .uri()
        .path()
        .split('/')
        .any(|segment| segment.len() > MAX_ID_CHARS)
    {
        return ProblemResponse::from(Problem::not_found(format!(
            "no such resource: ids are at most {MAX_ID_CHARS} characters"
        )))
        .into_response();
    }
    next.run(request).await
}

/// Routes anyone may read: the API's own description, and the console's page shells and
/// assets (they carry no data: every datum comes from the admin routes, with a token).
pub fn public_router() -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .merge(crate::console::router())
}

async fn not_found() -> ProblemResponse {
    Problem::not_found("no such route; see GET /api/v1/openapi.json").into()
}

async fn method_not_allowed() -> ProblemResponse {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not accept that method; see GET /api/v1/openapi.json",
    )
    .into()
}

fn body_of(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))
}

/// Parses `?limit=N` (1-100, default 100).
fn parse_limit(query: Option<&str>) -> ApiResult<u32> {
    let mut limit = MAX_LOG_LIMIT;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LOG_LIMIT).contains(n))
                    .ok_or_else(|| {
                        Problem::bad_request(format!(
                            "limit must be a whole number from 1 to {MAX_LOG_LIMIT} (got {value:?})"
                        ))
                    })?
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {other:?}; only limit is accepted"
                )))
            }
        }
    }
    Ok(limit)
}

async fn list_webhooks(State(api): State<Arc<AdminApi>>) -> RouteResult<Json<Value>> {
    let webhooks = api.list_webhooks().await?;
    Ok(Json(json!({ "webhooks": webhooks })))
}

async fn create_webhook(
    State(api): State<Arc<AdminApi>>,
    body: Result<Bytes, BytesRejection>,
) -> RouteResult<Response> {
    let new = CreateWebhookRequest::parse(&body_of(body)?, api.targets)?;
    let created = api.create_webhook(new).await?;
    let location = format!("/api/v1/webhooks/{}", created.webhook.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    )
        .into_response())
}

async fn get_webhook(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
) -> RouteResult<Json<WebhookView>> {
    Ok(Json(api.get_webhook(&id).await?))
}

async fn update_webhook(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
    body: Result<Bytes, BytesRejection>,
) -> RouteResult<Json<WebhookView>> {
    let change = UpdateWebhookRequest::parse(&body_of(body)?, api.targets)?;
    Ok(Json(api.update_webhook(&id, change).await?))
}

async fn rotate_secret(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
) -> RouteResult<Json<WebhookWithSecret>> {
    Ok(Json(api.rotate_secret(&id).await?))
}

async fn delete_webhook(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
) -> RouteResult<StatusCode> {
    api.delete_webhook(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_attempts(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
    RawQuery(query): RawQuery,
) -> RouteResult<Json<Value>> {
    let limit = parse_limit(query.as_deref())?;
    let attempts = api.attempts(&id, limit).await?;
    Ok(Json(json!({ "attempts": attempts })))
}

async fn get_attempt(
    State(api): State<Arc<AdminApi>>,
    Path((id, attempt_id)): Path<(WebhookId, String)>,
) -> RouteResult<Json<AttemptDetailView>> {
    Ok(Json(api.attempt(&id, &attempt_id).await?))
}

async fn redeliver(
    State(api): State<Arc<AdminApi>>,
    Path((id, attempt_id)): Path<(WebhookId, String)>,
) -> RouteResult<(StatusCode, Json<Value>)> {
    let delivery_id = api.redeliver(&id, &attempt_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "delivery_id": delivery_id })),
    ))
}

async fn get_delivery(
    State(api): State<Arc<AdminApi>>,
    Path((id, delivery_id)): Path<(WebhookId, DeliveryId)>,
) -> RouteResult<Json<DeliveryView>> {
    Ok(Json(api.delivery(&id, &delivery_id).await?))
}

async fn recover(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
    body: Result<Bytes, BytesRejection>,
) -> RouteResult<(StatusCode, Json<RecoveryView>)> {
    let call = RecoveryCall::parse(&body_of(body)?, &id, SystemTime::now())?;
    Ok((StatusCode::ACCEPTED, Json(api.recover(&id, call).await?)))
}

async fn send_test_event(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
    body: Result<Bytes, BytesRejection>,
) -> RouteResult<(StatusCode, Json<TestEventView>)> {
    let call = TestEventCall::parse(&body_of(body)?)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(api.send_test_event(&id, call).await?),
    ))
}

async fn event_types() -> Json<Value> {
    Json(json!({ "event_types": catalogue::views() }))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_DOCUMENT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_parsing() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some("limit=5")).unwrap(), 5);
        for bad in ["limit=0", "limit=101", "limit=x", "limit=", "page=2"] {
            let p = parse_limit(Some(bad)).unwrap_err();
            assert_eq!(p.status, 400, "{bad}");
        }
    }

    #[test]
    fn the_openapi_document_is_json() {
        let doc: Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
