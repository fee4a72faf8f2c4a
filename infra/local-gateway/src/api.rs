//! The HTTP API, as API Gateway serves it: the routes `template.yaml` gives `admin-api` and
//! `fanout`, each behind the local bearer-token auth of SPEC §7 standing in for the JWT and
//! IAM authorizers, every route throttled before its authorizer or function runs, every
//! request that reaches a function counted as an invocation; and `/health`, outside all of
//! it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use fanout::Fanout;
use webhooks_shared::domain::problem::Problem;

use crate::meter::{self, Meter};
use crate::{throttle, GatewayError, GatewayOptions, StackDescription};

/// The routes: the public ones, ingest behind the ingest token, the admin API behind the
/// admin token, every invocation metered; and `/health`.
pub(crate) fn router(
    stack: &StackDescription,
    options: &GatewayOptions,
    admin: &admin_api::Handler,
    fanout: Arc<Fanout>,
    meter: &Meter,
) -> Router {
    let invoking = |function: &'static str| {
        middleware::from_fn_with_state((meter.clone(), function), meter::count_invocation)
    };
    // API Gateway throttles a route before its authorizer or function runs.
    let throttling = Arc::new(throttle::Throttling::new(&stack.http_api_throttling));
    // The bearer token stands in for the JWT authorizer and its scopes, and passes no
    // authorizer context: the admin routes go without admin-api's own scope check.
    let api = Router::new()
        .merge(admin.public_routes().layer(invoking("admin-api")))
        .merge(fanout::router(fanout).layer(invoking("fanout")).layer(
            middleware::from_fn_with_state(Arc::new(options.ingest_token.clone()), require_bearer),
        ))
        .merge(admin.admin_routes().layer(invoking("admin-api")).layer(
            middleware::from_fn_with_state(Arc::new(options.admin_token.clone()), require_bearer),
        ))
        .layer(middleware::from_fn_with_state(
            throttling,
            throttle::throttle,
        ))
        .layer(middleware::from_fn(read_whole_request));
    Router::new().route("/health", get(health)).merge(api)
}

/// HTTP API's payload limit: a request body over it is refused before any function runs.
const PAYLOAD_LIMIT_BYTES: usize = 10 * 1024 * 1024;

/// API Gateway reads a request whole before it invokes a function, so a function that
/// refuses a large body (413) answers a client that has finished sending. Handed the
/// stream, a function's 413 closed the connection mid-upload, and the client saw a broken
/// pipe instead of the answer.
async fn read_whole_request(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, PAYLOAD_LIMIT_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(_) => http::Response::from(Problem::payload_too_large(
            "the request body is over HTTP API's 10 MB payload limit; send less",
        ))
        .into_response(),
    }
}

/// Listens on `listen` and serves `app` until the gateway stops; the address it listens on
/// (the port chosen if `listen`'s was 0) and the server's task.
pub(crate) async fn serve(
    listen: SocketAddr,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), GatewayError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| GatewayError::Listen {
            addr: listen,
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| GatewayError::Listen {
        addr: listen,
        reason: e.to_string(),
    })?;
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    Ok((addr, server))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Local stand-in for the API's authorizers: `Authorization: Bearer <token>`.
async fn require_bearer(
    State(token): State<Arc<String>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // In constant time: how long a comparison takes must not tell how much of a guess
    // was right.
    let matches = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(token.as_bytes())));
    if matches {
        return next.run(request).await;
    }
    let mut response = http::Response::from(Problem::unauthorized(
        "send Authorization: Bearer <token> (WEBHOOKS_ADMIN_TOKEN for /api/v1 admin calls, \
         WEBHOOKS_INGEST_TOKEN for POST /api/v1/events and /api/v1/events/batch)",
    ))
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_is_read_whole_up_to_the_payload_limit_before_a_function_sees_it() {
        let app = Router::new()
            .route(
                "/",
                axum::routing::post(
                    |body: axum::body::Bytes| async move { body.len().to_string() },
                ),
            )
            .layer(axum::extract::DefaultBodyLimit::disable())
            .layer(middleware::from_fn(read_whole_request));
        for (size, status) in [(3 * 1024 * 1024, 200), (PAYLOAD_LIMIT_BYTES + 1, 413)] {
            let request = Request::builder()
                .method("POST")
                .uri("/")
                .body(axum::body::Body::from(vec![b'x'; size]))
                .unwrap();
            let response = tower::ServiceExt::oneshot(app.clone(), request)
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), status, "{size} bytes");
        }
    }

    #[tokio::test]
    async fn only_the_exact_token_passes() {
        let app =
            Router::new()
                .route("/", get(|| async { "in" }))
                .layer(middleware::from_fn_with_state(
                    Arc::new("s3cret".to_owned()),
                    require_bearer,
                ));
        for (header, status) in [
            (Some("Bearer s3cret"), 200),
            (Some("Bearer s3cre"), 401),
            (Some("Bearer s3cret2"), 401),
            (Some("s3cret"), 401),
            (None, 401),
        ] {
            let mut request = Request::builder().uri("/");
            if let Some(h) = header {
                request = request.header(header::AUTHORIZATION, h);
            }
            let response = tower::ServiceExt::oneshot(
                app.clone(),
                request.body(axum::body::Body::empty()).unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(response.status().as_u16(), status, "{header:?}");
        }
    }
}
