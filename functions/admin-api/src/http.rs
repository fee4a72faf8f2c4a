//! Routes of the admin API onto [`AdminApi`]. Errors are problem+json throughout.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::rejection::{BytesRejection, RawPathParamsRejection};
use axum::extract::{Path, RawPathParams, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::test_event::{TestEventCall, TestEventView};
use crate::validation::{CreateWebhookRequest, RecoveryCall, UpdateWebhookRequest};
use crate::views::{
    AttemptDetailView, DeliveryView, RecoveryView, WebhookList, WebhookView, WebhookWithSecret,
};
use webhooks_shared::adapters::http_api;
use webhooks_shared::domain::catalogue;
use webhooks_shared::domain::ids::{DeliveryId, WebhookId};
use webhooks_shared::domain::problem::Problem;

use crate::{AdminApi, ApiResult, MAX_LOG_LIMIT, MAX_WEBHOOK_PAGE};

pub mod path_ids;
use path_ids::IdKind;

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
        .route_layer(middleware::from_fn(refuse_malformed_ids))
        .with_state(api);
    no_store(http_api::catch_panics(routes))
}

/// Every answer of `router` says `Cache-Control: no-store`: admin answers carry secrets
/// (create, rotate-secret), receivers' answers and the requests as signed, and no browser,
/// proxy or CDN should keep a copy. Problems too (the router's own 404 and 405, a caught
/// panic's 500), so no answer of these routes is ever cached. `main` puts it outside the
/// scope check as well, so a 403 says it too.
pub fn no_store(router: Router) -> Router {
    router.layer(middleware::map_response(set_no_store))
}

async fn set_no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// A path naming an id that cannot be one of ours — empty, longer than any id, or of another
/// form ([`IdKind`]) — is a 404 before any AWS call: DynamoDB refuses an empty or oversized
/// key outright (a 503 for every try), and any other form is not an id we made.
async fn refuse_malformed_ids(
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    let checked = match &params {
        Ok(params) => params
            .iter()
            .filter_map(|(name, value)| IdKind::of_parameter(name).map(|kind| (kind, value)))
            .try_for_each(|(kind, value)| kind.check(value)),
        // A segment whose percent-encoding is not UTF-8 is no id of ours.
        Err(_) => Err(Problem::not_found(
            "no such resource: an id in the path is not valid UTF-8 once percent-decoded; \
             ids are ASCII letters, digits, '_' and '.'",
        )),
    };
    match checked {
        Ok(()) => next.run(request).await,
        Err(problem) => ProblemResponse::from(problem).into_response(),
    }
}

/// Routes anyone may read: the API's own description, and the console's page shells and
/// assets (they carry no data: every datum comes from the admin routes, with a token).
pub fn public_router(console: crate::console::ConsoleSettings) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .merge(crate::console::router(console))
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

/// The webhook list's query: `?limit=N` (1-100, default 100) and `?cursor=` (the
/// `next_cursor` of the page before; absent: the first page).
#[derive(Debug, PartialEq, Eq)]
struct ListQuery {
    limit: u32,
    after: Option<WebhookId>,
}

fn parse_list_query(query: Option<&str>) -> ApiResult<ListQuery> {
    let mut parsed = ListQuery {
        limit: MAX_WEBHOOK_PAGE,
        after: None,
    };
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "limit" => {
                parsed.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_WEBHOOK_PAGE).contains(n))
                    .ok_or_else(|| {
                        Problem::bad_request(format!(
                        "limit must be a whole number from 1 to {MAX_WEBHOOK_PAGE} (got {value:?})"
                    ))
                    })?
            }
            "cursor" => parsed.after = Some(decode_list_cursor(&value)?),
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {other:?}; only limit and cursor are accepted"
                )))
            }
        }
    }
    Ok(parsed)
}

/// The cursor after webhook `last`: opaque to callers (base64url of its id), so its form
/// may change.
fn encode_list_cursor(last: &WebhookId) -> String {
    URL_SAFE_NO_PAD.encode(last.as_str())
}

/// The webhook a cursor from [`encode_list_cursor`] names. The webhook need not exist any
/// more: the next page starts where it was.
fn decode_list_cursor(text: &str) -> ApiResult<WebhookId> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|id| IdKind::Webhook.admits(id))
        .map(WebhookId::from)
        .ok_or_else(|| {
            Problem::bad_request(
                "cursor is not one this API answered: pass next_cursor from the previous \
                 page unchanged, or leave cursor out for the first page",
            )
        })
}

/// `GET /api/v1/webhooks`: one page, and `next_cursor` for the next (null after the last).
async fn list_webhooks(
    State(api): State<Arc<AdminApi>>,
    RawQuery(query): RawQuery,
) -> RouteResult<Json<WebhookList>> {
    let query = parse_list_query(query.as_deref())?;
    let (webhooks, next) = api.list_webhooks(query.limit, query.after.as_ref()).await?;
    Ok(Json(WebhookList {
        webhooks,
        next_cursor: next.as_ref().map(encode_list_cursor),
    }))
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
    use axum::body::Body;
    use tower::ServiceExt;
    use webhooks_shared::adapters::{load_sdk_config, Adapters};
    use webhooks_shared::Config;

    /// The router over an `AdminApi` whose AWS endpoint is a closed local port: a route that
    /// calls AWS answers 503, so a 4xx proves the request was refused before any call.
    async fn offline_router() -> Router {
        let sdk = load_sdk_config()
            .await
            .to_builder()
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let config = Config::from_lookup(|name| {
            let resource = name.ends_with("_TABLE")
                || name.ends_with("_QUEUE_URL")
                || name == "SECRETS_KEY_ID";
            resource.then(|| format!("offline-{name}"))
        })
        .expect("config");
        router(Arc::new(AdminApi::new(
            Adapters::new(&sdk, &config),
            &config,
        )))
    }

    struct Answer {
        status: u16,
        headers: http::HeaderMap,
        json: Value,
    }

    async fn call(router: &Router, method: &str, path: &str, body: Option<&str>) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .expect("request");
        let response = router.clone().oneshot(request).await.expect("answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// Every documented admin route with a path id, each id replaced by `value`.
    fn routes_with_ids(value: impl Fn(&str) -> String) -> Vec<(String, String)> {
        let doc: Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        let mut routes = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            if !path.contains('{') {
                continue;
            }
            let concrete = ["id", "attempt_id", "delivery_id"]
                .into_iter()
                .fold(path.clone(), |p, name| {
                    p.replace(&format!("{{{name}}}"), &value(name))
                });
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "patch", "delete"].contains(&method.as_str()) {
                    routes.push((method.to_uppercase(), concrete.clone()));
                }
            }
        }
        assert!(routes.len() >= 10, "{routes:?}");
        routes
    }

    #[tokio::test]
    async fn every_admin_answer_says_no_store_errors_included() {
        let router = offline_router().await;
        let webhook = r#"{"name":"n","url":"https://example.com/","events":["order.completed"]}"#;
        for (method, path, body, status) in [
            ("GET", "/api/v1/event-types", None, 200),
            ("GET", "/api/v1/nothing-here", None, 404),
            ("PUT", "/api/v1/event-types", None, 405),
            ("GET", "/api/v1/webhooks//attempts", None, 404),
            ("GET", "/api/v1/webhooks/wh_1/attempts?limit=0", None, 400),
            ("POST", "/api/v1/webhooks", Some("{"), 400),
            (
                "POST",
                "/api/v1/webhooks",
                Some(r#"{"name":"","url":"x","events":[]}"#),
                422,
            ),
            // The store is not there: a backing-service failure, and the answer a secret
            // would be in (create) when it is.
            ("POST", "/api/v1/webhooks", Some(webhook), 503),
            ("GET", "/api/v1/webhooks", None, 503),
        ] {
            let answer = call(&router, method, path, body).await;
            assert_eq!(answer.status, status, "{method} {path}: {}", answer.json);
            assert_eq!(
                answer
                    .headers
                    .get_all(header::CACHE_CONTROL)
                    .iter()
                    .collect::<Vec<_>>(),
                ["no-store"],
                "{method} {path}"
            );
        }
    }

    #[tokio::test]
    async fn empty_or_malformed_path_ids_are_404_problems_before_any_aws_call() {
        let router = offline_router().await;
        let well_formed = |name: &str| match name {
            "id" => "wh_01jd8x9k4m2n3p4q5r6s7t8v9w",
            "attempt_id" => "dlv_01jd8x9k4m2n3p4q5r6s7t8v9w.1",
            _ => "dlv_01jd8x9k4m2n3p4q5r6s7t8v9w",
        };
        let bad_values = ["", "%20", "wh_UPPER", "x.1", "%FF", "dlv_a.0", "a%2Fb"];
        for (i, bad) in bad_values.into_iter().enumerate() {
            // Each id of the path in turn is the bad one; the others are well formed.
            for target in ["id", "attempt_id", "delivery_id"] {
                let value = |name: &str| {
                    if name == target {
                        bad.to_owned()
                    } else {
                        well_formed(name).to_owned()
                    }
                };
                for (method, path) in routes_with_ids(value) {
                    if !path.contains(bad)
                        || (bad.is_empty() && !path.contains("//") && !path.ends_with('/'))
                    {
                        continue;
                    }
                    let answer = call(&router, &method, &path, Some("{}")).await;
                    assert_eq!(answer.status, 404, "{method} {path} ({i}): {}", answer.json);
                    assert_eq!(
                        answer.headers[header::CONTENT_TYPE],
                        "application/problem+json",
                        "{method} {path}"
                    );
                    // (A path ending in an empty id matches no route: the router's 404.)
                    let detail = answer.json["detail"].as_str().unwrap_or_default();
                    let expected = if path.ends_with('/') {
                        "no such route"
                    } else {
                        " ids are "
                    };
                    assert!(detail.contains(expected), "{method} {path}: {detail}");
                }
            }
        }
        // The issue's two: an empty webhook id.
        for (method, path) in [
            ("GET", "/api/v1/webhooks//attempts"),
            ("POST", "/api/v1/webhooks//rotate-secret"),
        ] {
            let answer = call(&router, method, path, None).await;
            assert_eq!(answer.status, 404, "{method} {path}: {}", answer.json);
            assert!(answer.json["detail"]
                .as_str()
                .unwrap()
                .starts_with("the webhook id in the path is empty; webhook ids are wh_"));
        }
        // A well-formed id gets as far as the store, which is not there: the 404s above
        // were answered before any call.
        let answer = call(&router, "GET", "/api/v1/webhooks/wh_01abc/attempts", None).await;
        assert_eq!(answer.status, 503, "{}", answer.json);
    }

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
    fn list_query_parsing() {
        assert_eq!(
            parse_list_query(None).unwrap(),
            ListQuery {
                limit: 100,
                after: None
            }
        );
        let id = WebhookId::from("wh_01jd8x9k4m2n3p4q5r6s7t8v9w");
        let cursor = encode_list_cursor(&id);
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            parse_list_query(Some(&format!("limit=7&cursor={cursor}"))).unwrap(),
            ListQuery {
                limit: 7,
                after: Some(id)
            }
        );
        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "page=2",
            "cursor=",
            "cursor=%2A",
        ] {
            let p = parse_list_query(Some(bad)).unwrap_err();
            assert_eq!(p.status, 400, "{bad}");
        }
        // Base64 of something that is no webhook id: not a cursor of ours.
        for not_ours in ["wh_UPPER", "dlv_01jd8x9k4m2n3p4q5r6s7t8v9w", "", "wh_1 x"] {
            let cursor = URL_SAFE_NO_PAD.encode(not_ours);
            let p = parse_list_query(Some(&format!("cursor={cursor}"))).unwrap_err();
            assert!(p.detail.contains("next_cursor"), "{}", p.detail);
        }
    }

    #[test]
    fn the_openapi_document_is_json() {
        let doc: Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
