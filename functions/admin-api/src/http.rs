//! The admin API's routes, each onto its feature's handler (`webhooks`, `secrets`,
//! `attempts`, `recovery`, `test_events`, `event_types`), and the layers around them: ids
//! checked before any AWS call (`path_ids`), problem+json for every refusal, `no-store` on
//! every answer.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::problems::ProblemResponse;
use crate::AdminApi;
use crate::{attempts, event_types, path_ids, recovery, secrets, test_events, webhooks};
use webhooks_shared::adapters::http_api;
use webhooks_shared::domain::problem::Problem;

/// The OpenAPI 3.1 document of every route, kept in the repository beside this crate.
pub const OPENAPI_DOCUMENT: &str = include_str!("../openapi.json");

/// Routes that need an admin's credentials (the JWT authorizer on AWS).
pub fn router(api: Arc<AdminApi>) -> Router {
    let routes = Router::new()
        .route(
            "/api/v1/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/api/v1/webhooks/{id}",
            get(webhooks::get_webhook)
                .patch(webhooks::update_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route(
            "/api/v1/webhooks/{id}/rotate-secret",
            post(secrets::rotate_secret),
        )
        .route(
            "/api/v1/webhooks/{id}/attempts",
            get(attempts::list_attempts),
        )
        .route(
            "/api/v1/webhooks/{id}/attempts/{attempt_id}",
            get(attempts::get_attempt),
        )
        .route(
            "/api/v1/webhooks/{id}/attempts/{attempt_id}/redeliver",
            post(attempts::redeliver),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}",
            get(attempts::get_delivery),
        )
        .route("/api/v1/webhooks/{id}/recover", post(recovery::recover))
        .route(
            "/api/v1/webhooks/{id}/test-event",
            post(test_events::send_test_event),
        )
        .route("/api/v1/event-types", get(event_types::event_types))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn(path_ids::refuse_malformed_ids))
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

/// This OpenAPI document
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "getOpenApi",
    tag = "catalogue",
    // Anyone may read it (`public_router`).
    security(),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object)),
)]
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_DOCUMENT,
    )
        .into_response()
}

/// This feature's routes in the API document (see `crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(openapi))]
pub struct Routes;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::Request;
    use serde_json::Value;
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
    fn the_openapi_document_is_json() {
        let doc: Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
