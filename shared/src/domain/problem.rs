//! API errors as `application/problem+json` (RFC 9457): `{type, title, status, detail}`.
//!
//! A plain value: the HTTP layers (admin-api, fanout, the local gateway) turn it into a
//! response with `http::Response::from`, which every HTTP framework can send.

use http::{header, StatusCode};
use serde::Serialize;

/// The media type of a problem document.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// `Problem::<name>(detail)` for the statuses the API answers with.
macro_rules! problems {
    ($($name:ident => $status:ident),* $(,)?) => {
        $(
            pub fn $name(detail: impl Into<String>) -> Self {
                Self::new(StatusCode::$status, detail)
            }
        )*
    };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            problem_type: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    problems! {
        bad_request => BAD_REQUEST,
        not_found => NOT_FOUND,
        conflict => CONFLICT,
        payload_too_large => PAYLOAD_TOO_LARGE,
        unauthorized => UNAUTHORIZED,
        forbidden => FORBIDDEN,
    }

    /// A field that parsed but is not acceptable: 422 naming the field.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        let mut p = Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail);
        p.field = Some(field.to_owned());
        p
    }

    /// A dependency (DynamoDB, SQS, KMS) failed. The caller may retry; nothing is half-done
    /// that a retry would not complete. The cause is logged, never shown.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "a backing service is unavailable; retry the request",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The response that carries a problem: its status and the document as JSON.
impl From<Problem> for http::Response<String> {
    fn from(problem: Problem) -> Self {
        let body = serde_json::to_string(&problem).unwrap_or_default();
        let mut response = http::Response::new(body);
        *response.status_mut() = problem.status_code();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(CONTENT_TYPE),
        );
        response
    }
}

/// Turns a JSON parse failure into a 400 whose detail says where and what.
pub fn from_json_error(err: &serde_json::Error) -> Problem {
    Problem::bad_request(format!("request body is not valid: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_becomes_a_problem_json_response() {
        let response = http::Response::from(Problem::invalid_field("url", "use https"));
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "about:blank", "title": "Unprocessable Entity",
                "status": 422, "detail": "use https", "field": "url"})
        );
    }
}
