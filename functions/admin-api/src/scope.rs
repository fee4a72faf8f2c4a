//! Defence in depth for the admin routes: on AWS the HTTP API's JWT authorizer already demands
//! the admin scope (`AuthorizationScopes`), but a route deployed without it, or a customer's
//! token from the same identity provider, must still not reach an admin call. So admin-api
//! checks the scope itself, in the authorizer context API Gateway passes with the request.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use webhooks_shared::domain::problem::Problem;
use webhooks_shared::Config;

pub use webhooks_shared::config::DEFAULT_ADMIN_SCOPE;

/// The OAuth scope an access token must carry for admin calls. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminScope(Arc<str>);

impl AdminScope {
    /// The scope `WEBHOOKS_ADMIN_SCOPE` names ([`DEFAULT_ADMIN_SCOPE`] when unset or blank:
    /// `Config` reads it).
    pub fn from_config(config: &Config) -> Self {
        AdminScope(config.admin_scope.as_str().into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether the JWT authorizer context in `context` grants `scope`: in the authorizer's
/// `scopes`, or in the token's `scope` or `scp` claim. Anything else (no request context, a
/// context from another kind of event, no JWT authorizer) grants nothing.
pub fn has_scope(context: Option<&ApiGatewayV2httpRequestContext>, scope: &str) -> bool {
    let Some(context) = context else {
        return false;
    };
    let Some(jwt) = context.authorizer.as_ref().and_then(|a| a.jwt.as_ref()) else {
        return false;
    };
    let in_scopes = jwt.scopes.iter().flatten().any(|granted| granted == scope);
    let in_claim = |claim: &str| {
        jwt.claims
            .get(claim)
            .is_some_and(|value| claim_scopes(value).any(|granted| granted == scope))
    };
    in_scopes || in_claim("scope") || in_claim("scp")
}

/// The scopes in a `scope`/`scp` claim as API Gateway passes it: space-separated (RFC 8693),
/// or, for an identity provider that issues an array, the "[a b]" text API Gateway makes of it.
fn claim_scopes(value: &str) -> impl Iterator<Item = &str> {
    let list = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    list.split_whitespace()
}

/// Middleware for the admin routes (`axum::middleware::from_fn_with_state` with an
/// [`AdminScope`]): refuses with 403 problem+json a request whose token lacks the scope.
pub async fn require_admin_scope(
    State(scope): State<AdminScope>,
    request: Request,
    next: Next,
) -> Response {
    if has_scope(request.extensions().get(), scope.as_str()) {
        return next.run(request).await;
    }
    // API Gateway should have refused this already; seeing it here means the route's
    // authorizer or its scopes are not configured as the template intends.
    tracing::warn!(
        scope = scope.as_str(),
        path = request.uri().path(),
        "refused an admin call whose token lacks the admin scope"
    );
    http::Response::from(Problem::forbidden(format!(
        "this token lacks the scope {} that admin calls require; ask your identity provider \
         for an access token with that scope",
        scope.as_str()
    )))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{header, StatusCode};
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use axum::Router;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    const ADMIN: &str = "webhooks/admin";

    /// A request context as API Gateway sends it, with this JWT authorizer part.
    fn context_with_jwt(jwt: Value) -> ApiGatewayV2httpRequestContext {
        let context: ApiGatewayV2httpRequestContext = serde_json::from_value(json!({
            "accountId": "123456789012", "apiId": "api", "requestId": "r1",
            "routeKey": "GET /api/v1/webhooks", "stage": "$default",
            "http": {"method": "GET", "path": "/api/v1/webhooks", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.1", "userAgent": "test"},
            "authorizer": {"jwt": jwt}
        }))
        .unwrap();
        context
    }

    fn context_without_authorizer() -> ApiGatewayV2httpRequestContext {
        let context: ApiGatewayV2httpRequestContext = serde_json::from_value(json!({
            "http": {"method": "GET", "path": "/api/v1/webhooks"}
        }))
        .unwrap();
        context
    }

    fn admin_token_in_scopes() -> ApiGatewayV2httpRequestContext {
        context_with_jwt(json!({
            "claims": {"sub": "admin-1"},
            "scopes": ["openid", ADMIN]
        }))
    }

    fn customer_token() -> ApiGatewayV2httpRequestContext {
        context_with_jwt(json!({
            "claims": {"sub": "customer-1", "scope": "openid profile webhooks/events"},
            "scopes": ["openid", "profile", "webhooks/events"]
        }))
    }

    #[test]
    fn a_scope_in_the_authorizer_scopes_is_granted() {
        assert!(has_scope(Some(&admin_token_in_scopes()), ADMIN));
    }

    #[test]
    fn a_scope_among_others_in_the_scope_claim_is_granted() {
        let context = context_with_jwt(json!({
            "claims": {"scope": "openid webhooks/admin"},
            "scopes": null
        }));
        assert!(has_scope(Some(&context), ADMIN));
    }

    #[test]
    fn a_scope_in_the_scp_claim_is_granted_also_as_an_array() {
        let spaced = context_with_jwt(json!({"claims": {"scp": "webhooks/admin email"}}));
        assert!(has_scope(Some(&spaced), ADMIN));
        // API Gateway passes an array claim as "[a b]".
        let array = context_with_jwt(json!({"claims": {"scp": "[openid webhooks/admin]"}}));
        assert!(has_scope(Some(&array), ADMIN));
    }

    #[test]
    fn a_customer_token_is_not_granted() {
        assert!(!has_scope(Some(&customer_token()), ADMIN));
    }

    #[test]
    fn no_context_or_no_jwt_authorizer_is_not_granted() {
        assert!(!has_scope(None, ADMIN));
        assert!(!has_scope(Some(&context_without_authorizer()), ADMIN));
    }

    #[test]
    fn a_scope_that_only_contains_or_is_contained_in_another_is_not_granted() {
        for near_miss in [
            "webhooks/admin-read",
            "webhooks/admi",
            "xwebhooks/admin",
            "webhooks/admin,openid",
        ] {
            let context = context_with_jwt(json!({
                "claims": {"scope": near_miss, "scp": format!("[{near_miss}]")},
                "scopes": [near_miss]
            }));
            assert!(!has_scope(Some(&context), ADMIN), "{near_miss}");
        }
    }

    fn guarded_app() -> Router {
        Router::new()
            .route("/admin", get(|| async { "admin done" }))
            .layer(from_fn_with_state(
                AdminScope(DEFAULT_ADMIN_SCOPE.into()),
                require_admin_scope,
            ))
    }

    async fn call(
        context: Option<ApiGatewayV2httpRequestContext>,
    ) -> (StatusCode, Option<String>, Vec<u8>) {
        let mut request = Request::builder()
            .uri("/admin")
            .body(Body::empty())
            .unwrap();
        if let Some(context) = context {
            request.extensions_mut().insert(context);
        }
        let response = guarded_app().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        (status, content_type, body.to_vec())
    }

    #[tokio::test]
    async fn the_middleware_passes_an_admin_token() {
        let (status, _, body) = call(Some(admin_token_in_scopes())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"admin done");
    }

    #[tokio::test]
    async fn the_middleware_passes_the_scope_claim() {
        let context = context_with_jwt(json!({"claims": {"scope": "openid webhooks/admin"}}));
        let (status, _, body) = call(Some(context)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"admin done");
    }

    async fn assert_forbidden(context: Option<ApiGatewayV2httpRequestContext>) {
        let (status, content_type, body) = call(context).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        let problem: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["status"], 403);
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("lacks the scope webhooks/admin"),
            "{detail}"
        );
    }

    #[tokio::test]
    async fn the_middleware_refuses_a_customer_token() {
        assert_forbidden(Some(customer_token())).await;
    }

    #[tokio::test]
    async fn the_middleware_refuses_a_near_miss_scope() {
        let context = context_with_jwt(json!({
            "claims": {"scope": "openid webhooks/admin-read"},
            "scopes": ["openid", "webhooks/admin-read"]
        }));
        assert_forbidden(Some(context)).await;
    }

    #[tokio::test]
    async fn the_middleware_refuses_a_request_without_context_or_authorizer() {
        assert_forbidden(None).await;
        assert_forbidden(Some(context_without_authorizer())).await;
    }
}
