//! The HTTP API's throttling, as API Gateway applies the stage's settings that
//! `template.yaml` declares: a token bucket (steady rate, burst) for each route key with
//! settings of its own, and one for everything else under the default route settings.
//! Over it, a request gets API Gateway's answer, `429 {"message":"Too Many Requests"}`, and
//! no function is invoked. A flood of the public routes is refused locally as on AWS.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

/// A steady rate (requests a second) and a burst (requests at once above it).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Limits {
    pub rate: f64,
    pub burst: u32,
}

/// What `infra/local/stack.py up` says of the stage's throttling.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ThrottlingDescription {
    #[serde(default)]
    pub default: Option<Limits>,
    /// By route key (`GET /admin/webhooks/{proxy+}`).
    #[serde(default)]
    pub routes: BTreeMap<String, Limits>,
}

/// A route key's method (`ANY`: none) and path template.
#[derive(Debug, Clone, PartialEq)]
struct RouteKey {
    method: Option<Method>,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    /// `{name}`: one segment.
    Param,
    /// `{name+}`: one or more segments, to the end.
    Greedy,
}

impl RouteKey {
    fn parse(key: &str) -> Option<Self> {
        let (method, path) = key.split_once(' ')?;
        let method = match method {
            "ANY" => None,
            other => Some(Method::from_bytes(other.as_bytes()).ok()?),
        };
        let segments = path
            .trim_start_matches('/')
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) if name.ends_with('+') => Segment::Greedy,
                    Some(_) => Segment::Param,
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        Some(RouteKey { method, segments })
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let mut parts = path.trim_start_matches('/').split('/');
        for segment in &self.segments {
            match (segment, parts.next()) {
                (Segment::Greedy, Some(part)) => return !part.is_empty(),
                (Segment::Param, Some(part)) if !part.is_empty() => {}
                (Segment::Literal(literal), Some(part)) if literal == part => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

fn limiter(limits: Limits) -> Option<DefaultDirectRateLimiter> {
    let burst = NonZeroU32::new(limits.burst)?;
    let period = Duration::from_secs_f64(1.0 / limits.rate.max(1e-6));
    let quota = Quota::with_period(period)?.allow_burst(burst);
    Some(RateLimiter::direct(quota))
}

/// The buckets of one HTTP API.
pub struct Throttling {
    routes: Vec<(RouteKey, DefaultDirectRateLimiter)>,
    default: Option<DefaultDirectRateLimiter>,
}

impl Throttling {
    pub fn new(description: &ThrottlingDescription) -> Self {
        let routes = description
            .routes
            .iter()
            .filter_map(|(key, limits)| {
                let parsed = RouteKey::parse(key);
                if parsed.is_none() {
                    tracing::warn!(route_key = %key, "route key not understood; its throttling is not applied");
                }
                Some((parsed?, limiter(*limits)?))
            })
            .collect();
        Throttling {
            routes,
            default: description.default.and_then(limiter),
        }
    }

    /// Whether a request may go on (false: throttled).
    fn admit(&self, method: &Method, path: &str) -> bool {
        let bucket = self
            .routes
            .iter()
            .find(|(key, _)| key.matches(method, path))
            .map(|(_, bucket)| bucket)
            .or(self.default.as_ref());
        bucket.is_none_or(|bucket| bucket.check().is_ok())
    }
}

/// The middleware: API Gateway's 429 when the request's bucket is empty.
pub async fn throttle(
    State(throttling): State<Arc<Throttling>>,
    request: Request,
    next: Next,
) -> Response {
    if throttling.admit(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(http::header::CONTENT_TYPE, "application/json")],
        r#"{"message":"Too Many Requests"}"#,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttling(default: Option<(f64, u32)>, routes: &[(&str, f64, u32)]) -> Throttling {
        Throttling::new(&ThrottlingDescription {
            default: default.map(|(rate, burst)| Limits { rate, burst }),
            routes: routes
                .iter()
                .map(|(key, rate, burst)| {
                    (
                        (*key).to_owned(),
                        Limits {
                            rate: *rate,
                            burst: *burst,
                        },
                    )
                })
                .collect(),
        })
    }

    #[test]
    fn route_keys_match_as_api_gateway_matches_them() {
        let proxy = RouteKey::parse("GET /admin/webhooks/{proxy+}").unwrap();
        assert!(proxy.matches(&Method::GET, "/admin/webhooks/wh_1"));
        assert!(proxy.matches(&Method::GET, "/admin/webhooks/assets/console.js"));
        assert!(!proxy.matches(&Method::GET, "/admin/webhooks"));
        assert!(!proxy.matches(&Method::GET, "/admin/webhooks/"));
        assert!(!proxy.matches(&Method::POST, "/admin/webhooks/wh_1"));
        let exact = RouteKey::parse("GET /admin/webhooks").unwrap();
        assert!(exact.matches(&Method::GET, "/admin/webhooks"));
        assert!(!exact.matches(&Method::GET, "/admin/webhooks/new"));
        let any = RouteKey::parse("ANY /api/v1/webhooks/{id}/attempts").unwrap();
        assert!(any.matches(&Method::DELETE, "/api/v1/webhooks/wh_1/attempts"));
        assert!(!any.matches(&Method::GET, "/api/v1/webhooks//attempts"));
        assert_eq!(RouteKey::parse("nonsense"), None);
    }

    #[test]
    fn a_route_with_settings_of_its_own_has_its_own_bucket() {
        let t = throttling(Some((1000.0, 3)), &[("GET /api/v1/openapi.json", 0.01, 2)]);
        let doc = |t: &Throttling| t.admit(&Method::GET, "/api/v1/openapi.json");
        assert!(doc(&t) && doc(&t), "the burst");
        assert!(!doc(&t), "then throttled");
        // Other routes draw on the default bucket, untouched by the flood above.
        for _ in 0..3 {
            assert!(t.admit(&Method::POST, "/api/v1/events"));
        }
        assert!(!t.admit(&Method::POST, "/api/v1/events"));
    }

    #[test]
    fn no_settings_throttle_nothing() {
        let t = throttling(None, &[]);
        assert!((0..10_000).all(|_| t.admit(&Method::GET, "/admin/webhooks")));
    }
}
