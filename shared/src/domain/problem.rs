//! API errors as `application/problem+json` (RFC 9457): `{type, title, status, detail}`.
//!
//! A plain value: the HTTP layers (admin-api, fanout, the local gateway) turn it into a
//! response with `http::Response::from`, which every HTTP framework can send.

use http::{header, StatusCode};
use serde::{Deserialize, Serialize};

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

/// RFC 9457 problem details; every error answer uses `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Closed in the API document (`additionalProperties: false`); a problem is never read.
#[serde(deny_unknown_fields)]
pub struct Problem {
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(examples("about:blank")))]
    pub problem_type: String,
    #[cfg_attr(feature = "openapi", schema(examples("Unprocessable Entity")))]
    pub title: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 400, maximum = 599))]
    pub status: u16,
    /// What went wrong and what to change.
    pub detail: String,
    /// The request field at fault (on 422).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
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

    /// A field of the wrong form (SPEC §3's 400s): 400 naming the field.
    pub fn bad_field(field: &str, detail: impl Into<String>) -> Self {
        let mut p = Self::bad_request(detail);
        p.field = Some(field.to_owned());
        p
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

/// Reads a JSON request body as `T`, all of it: a 400 whose detail says where and what is
/// wrong, with `field` naming the part at fault (`events[2].type`, `active`) when there is one.
pub fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Problem> {
    let mut reader = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut reader).map_err(|err| {
        let inner = err.inner().to_string();
        let path = err.path().to_string();
        // serde reports a missing field at the object holding it; its message names it
        // (serde's fixed wording: "missing field `name`").
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(missing, _)| missing);
        let field = match (path.as_str(), missing) {
            (".", Some(missing)) => missing.to_owned(),
            (".", None) => {
                return Problem::bad_request(format!("request body is not valid: {inner}"))
            }
            (_, Some(missing)) => format!("{path}.{missing}"),
            (_, None) => path,
        };
        let mut problem =
            Problem::bad_request(format!("request body is not valid: {field}: {inner}"));
        problem.field = Some(field);
        problem
    })?;
    reader
        .end()
        .map_err(|err| Problem::bad_request(format!("request body is not valid: {err}")))?;
    Ok(value)
}

/// [`parse_json`] for a body that must be a JSON object (every request body is one): serde
/// would also read a struct from an array of its fields (`["n", "https://…", […]]`), which
/// no document allows. `refusal` is the 400's detail, saying what the object looks like.
pub fn parse_object<'a, T: Deserialize<'a>>(body: &'a [u8], refusal: &str) -> Result<T, Problem> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Problem::bad_request(refusal));
    }
    parse_json(body)
}

/// For optional request fields that may be left out but not sent as `null` (a `null` would
/// be ambiguous: keep the value, or clear it?). With `#[serde(default)]`, absent is `None`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)?
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom("null is not accepted here: leave the field out instead")
        })
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

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default, deserialize_with = "present")]
        active: Option<bool>,
        #[serde(default)]
        events: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        kind: String,
    }

    #[test]
    fn a_body_that_does_not_parse_names_the_field_at_fault() {
        let field_of = |body: &str| {
            let p = parse_json::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!(p.status, 400, "{body}");
            (p.field, p.detail)
        };
        let (field, detail) = field_of(r#"{"name": 5}"#);
        assert_eq!(field.as_deref(), Some("name"));
        assert!(detail.contains("name: invalid type"), "{detail}");
        let (field, _) = field_of(r#"{"name": "n", "events": [{"kind": "a"}, {"kind": 1}]}"#);
        assert_eq!(field.as_deref(), Some("events[1].kind"));
        let (field, detail) = field_of(r#"{"name": "n", "active": null}"#);
        assert_eq!(field.as_deref(), Some("active"));
        assert!(detail.contains("leave the field out"), "{detail}");
        let (field, detail) = field_of(r#"{"active": true}"#);
        assert_eq!(field.as_deref(), Some("name"));
        assert!(detail.contains("missing field `name`"), "{detail}");
        let (field, _) = field_of(r#"{"name": "n", "events": [{}]}"#);
        assert_eq!(field.as_deref(), Some("events[0].kind"));
        let (field, detail) = field_of(r#"{"name": "n"} trailing"#);
        assert_eq!(field, None);
        assert!(detail.contains("trailing"), "{detail}");
        let (_, detail) = field_of(r#"{"name": "n", "colour": "red"}"#);
        assert!(detail.contains("colour"), "{detail}");
        let parsed: Body = parse_json(br#"{"name": "n"}"#).unwrap();
        assert_eq!(parsed.active, None);
        let parsed: Body = parse_json(br#"{"name": "n", "active": false}"#).unwrap();
        assert_eq!(parsed.active, Some(false));
    }
}
