//! API Gateway HTTP API adapter: runs an axum router as the Lambda function behind the API
//! (payload format 2.0), for `admin-api` and `fanout`.
//!
//! Written here rather than taken from `lambda_http`: that crate links every `encoding_rs`
//! table to decode response bodies in any charset (our answers are UTF-8 JSON; it put
//! admin-api's zip over 3 MB), and it panics on a request whose path it cannot make a URI
//! of. Here a request that cannot be read is a 400 problem, and a body that is not UTF-8
//! goes back base64-encoded, as API Gateway expects.

use std::any::Any;
use std::convert::Infallible;

use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::Body;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::header::{HeaderValue, COOKIE, SET_COOKIE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use lambda_runtime::{service_fn, LambdaEvent};
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

use crate::domain::problem::Problem;

/// `router` with a last resort at its edge: a handler that panics answers 500 problem+json
/// and the panic is logged, instead of the connection closing (a 502 from API Gateway) with
/// nothing said. Every input that can be refused is refused with a 4xx before this; the
/// fuzz and property tests look for what is left. Needs `panic = "unwind"` (the release
/// profile says so).
pub fn catch_panics(router: Router) -> Router {
    router.layer(CatchPanicLayer::custom(answer_panic))
}

fn answer_panic(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a handler panicked; answered 500");
    Response::from(Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the request failed because of a fault on our side (it is logged); try again, and \
         report it if it persists",
    ))
    .map(Body::from)
}

/// Serves `router` as the function behind the HTTP API until the runtime stops.
pub async fn run(router: Router) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(handle(router, event.payload).await) }
        },
    ))
    .await
}

/// One API Gateway request through `router`.
pub async fn handle(router: Router, event: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let response = match to_request(event) {
        Ok(request) => match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(problem) => Response::from(problem).map(Body::from),
    };
    to_api_response(response).await
}

/// The HTTP request API Gateway received: method, raw path and query, headers, cookies,
/// body (decoded when API Gateway passed it base64-encoded); the request context (the
/// authorizer's claims) as an extension.
pub fn to_request(event: ApiGatewayV2httpRequest) -> Result<Request<Body>, Problem> {
    let path = event.raw_path.as_deref().unwrap_or("/");
    let uri = match event.raw_query_string.as_deref() {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    };
    let body = match event.body {
        None => Vec::new(),
        Some(body) if event.is_base64_encoded => BASE64
            .decode(body)
            .map_err(|_| Problem::bad_request("the request body is not valid base64"))?,
        Some(body) => body.into_bytes(),
    };
    let mut headers = event.headers;
    if let Some(cookies) = event.cookies.filter(|c| !c.is_empty()) {
        if let Ok(value) = HeaderValue::from_str(&cookies.join("; ")) {
            headers.insert(COOKIE, value);
        }
    }
    let mut request = Request::builder()
        .method(event.request_context.http.method.clone())
        .uri(uri)
        .body(Body::from(body))
        .map_err(|_| Problem::bad_request("the request path or query is not a valid URI"))?;
    *request.headers_mut() = headers;
    request
        .extensions_mut()
        .insert::<ApiGatewayV2httpRequestContext>(event.request_context);
    Ok(request)
}

/// The router's answer as API Gateway takes it: UTF-8 bodies as text, others base64;
/// `Set-Cookie` headers in `cookies` (payload format 2.0 has no multi-value headers).
pub async fn to_api_response(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    match body.collect().await {
        Ok(collected) => assemble(parts.status, parts.headers, collected.to_bytes().to_vec()),
        Err(err) => {
            tracing::error!(error = %err, "response body could not be read");
            let (parts, body) = Response::from(Problem::unavailable()).into_parts();
            assemble(parts.status, parts.headers, body.into_bytes())
        }
    }
}

fn assemble(
    status: StatusCode,
    mut headers: HeaderMap,
    bytes: Vec<u8>,
) -> ApiGatewayV2httpResponse {
    let cookies: Vec<String> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    headers.remove(SET_COOKIE);
    // `Binary` is written base64-encoded.
    let (body, is_base64_encoded) = match String::from_utf8(bytes) {
        Ok(text) if text.is_empty() => (None, false),
        Ok(text) => (Some(LambdaBody::Text(text)), false),
        Err(err) => (Some(LambdaBody::Binary(err.into_bytes())), true),
    };
    let mut answer = ApiGatewayV2httpResponse::default();
    answer.status_code = i64::from(status.as_u16());
    answer.headers = headers;
    answer.body = body;
    answer.is_base64_encoded = is_base64_encoded;
    answer.cookies = cookies;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Request as AxumRequest;
    use axum::routing::{get, post};
    use serde_json::{json, Value};

    fn event(
        method: &str,
        path: &str,
        query: &str,
        body: Option<&str>,
        base64: bool,
    ) -> ApiGatewayV2httpRequest {
        serde_json::from_value(json!({
            "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path,
            "rawQueryString": query,
            "headers": {"content-type": "application/json", "x-two": "a,b"},
            "cookies": ["c1=v1", "c2=v2"],
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "requestId": "r1",
                "routeKey": format!("{method} {path}"), "stage": "$default",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.1", "userAgent": "test"},
                "authorizer": {"jwt": {"claims": {"sub": "admin-1"}, "scopes": null}}
            },
            "body": body, "isBase64Encoded": base64
        }))
        .unwrap()
    }

    /// Echoes what the handler saw.
    fn echo() -> Router {
        async fn seen(request: AxumRequest) -> axum::Json<Value> {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let claims = parts
                .extensions
                .get::<ApiGatewayV2httpRequestContext>()
                .and_then(|c| {
                    c.authorizer
                        .as_ref()?
                        .jwt
                        .as_ref()?
                        .claims
                        .get("sub")
                        .cloned()
                });
            axum::Json(json!({
                "method": parts.method.as_str(),
                "uri": parts.uri.to_string(),
                "cookie": parts.headers.get(COOKIE).and_then(|v| v.to_str().ok()),
                "x_two": parts.headers.get("x-two").and_then(|v| v.to_str().ok()),
                "body": String::from_utf8_lossy(&body),
                "sub": claims,
            }))
        }
        Router::new()
            .route("/api/v1/things", post(seen))
            .route("/api/v1/things", get(seen))
            .route("/bytes", get(|| async { vec![0xffu8, 0x00, 0x41] }))
    }

    fn body_json(response: &ApiGatewayV2httpResponse) -> Value {
        match &response.body {
            Some(LambdaBody::Text(text)) => serde_json::from_str(text).unwrap(),
            other => panic!("not a text body: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_handler_sees_the_request_api_gateway_received() {
        let answer = handle(
            echo(),
            event(
                "POST",
                "/api/v1/things",
                "a=1&b=%20x",
                Some(r#"{"n":1}"#),
                false,
            ),
        )
        .await;
        assert_eq!(answer.status_code, 200);
        assert!(!answer.is_base64_encoded);
        assert_eq!(
            body_json(&answer),
            json!({"method": "POST", "uri": "/api/v1/things?a=1&b=%20x",
                   "cookie": "c1=v1; c2=v2", "x_two": "a,b", "body": r#"{"n":1}"#,
                   "sub": "admin-1"})
        );
    }

    #[tokio::test]
    async fn a_base64_body_is_decoded_and_a_bad_one_is_a_400() {
        let encoded = BASE64.encode(r#"{"n":2}"#);
        let answer = handle(
            echo(),
            event("POST", "/api/v1/things", "", Some(&encoded), true),
        )
        .await;
        assert_eq!(body_json(&answer)["body"], r#"{"n":2}"#);
        assert_eq!(body_json(&answer)["uri"], "/api/v1/things");

        let answer = handle(
            echo(),
            event("POST", "/api/v1/things", "", Some("%%%"), true),
        )
        .await;
        assert_eq!(answer.status_code, 400);
        assert_eq!(answer.headers["content-type"], "application/problem+json");
        assert!(body_json(&answer)["detail"]
            .as_str()
            .unwrap()
            .contains("base64"));
    }

    #[tokio::test]
    async fn a_path_that_is_no_uri_is_a_400_not_a_panic() {
        let answer = handle(echo(), event("GET", "/api/v1/things\n", "", None, false)).await;
        assert_eq!(answer.status_code, 400);
        let answer = handle(echo(), event("GET", "/a b", "x=\u{7f}", None, false)).await;
        assert_eq!(answer.status_code, 400);
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_500_problem_json() {
        let panicking = Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                if std::hint::black_box(true) {
                    panic!("index out of range");
                }
                "unreachable"
            }),
        );
        let answer = handle(
            catch_panics(panicking),
            event("GET", "/boom", "", None, false),
        )
        .await;
        assert_eq!(answer.status_code, 500);
        assert_eq!(answer.headers["content-type"], "application/problem+json");
        let problem = body_json(&answer);
        assert_eq!(problem["status"], 500);
        assert!(problem["detail"].as_str().unwrap().contains("logged"));
        // A router that does not panic is untouched by the layer.
        let answer = handle(
            catch_panics(echo()),
            event("GET", "/api/v1/things", "", None, false),
        )
        .await;
        assert_eq!(answer.status_code, 200);
    }

    #[tokio::test]
    async fn bytes_that_are_not_utf8_go_back_base64_and_cookies_apart() {
        let answer = handle(echo(), event("GET", "/bytes", "", None, false)).await;
        assert!(answer.is_base64_encoded);
        let written = serde_json::to_value(&answer).unwrap();
        assert_eq!(
            BASE64.decode(written["body"].as_str().unwrap()).unwrap(),
            [0xff, 0x00, 0x41]
        );

        let with_cookie = Response::builder()
            .header(SET_COOKIE, "a=1")
            .header(SET_COOKIE, "b=2")
            .header("content-type", "text/plain")
            .body(Body::from("hi"))
            .unwrap();
        let answer = to_api_response(with_cookie).await;
        assert_eq!(answer.cookies, ["a=1", "b=2"]);
        assert!(answer.headers.get(SET_COOKIE).is_none());
        assert!(matches!(&answer.body, Some(LambdaBody::Text(t)) if t == "hi"));
    }
}
