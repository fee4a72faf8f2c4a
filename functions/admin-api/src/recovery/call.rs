//! A recover call (`POST …/recover`): its body, checked, and the cursor that continues it.

use std::time::SystemTime;

use serde::Deserialize;
use utoipa::ToSchema;

use super::sweep::{decode_cursor, RecoveryWindow};
use webhooks_shared::adapters::store::LogPosition;
use webhooks_shared::domain::clock;
use webhooks_shared::domain::ids::WebhookId;
use webhooks_shared::domain::problem::{self, Problem};

/// A call reads at most this many log lines (and this many by default): each may cost a
/// write and a queue message, and the call must answer within API Gateway's 30 s.
pub const MAX_RECOVERY_LINES: u32 = 1_000;

/// `POST …/recover`: a window of time, `until` defaulting to now; `cursor` continues a
/// recovery where the previous call's answer stopped; `limit` caps the log lines one call reads.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecoverRequest {
    /// Start of the window (RFC 3339). Must not be later than `until` (a 422 naming `since`);
    /// equal to it, the window is that one instant (most often empty: `{"deliveries": 0}`).
    #[schema(format = DateTime)]
    since: String,
    /// End of the window (RFC 3339); defaults to now. Must not be earlier than `since`. When
    /// continuing with a `cursor`, pass the same `until` as the first call (a default `until`
    /// moves with the clock). `null` is the same as leaving it out.
    #[serde(default)]
    #[schema(format = DateTime)]
    until: Option<String>,
    /// `next_cursor` from the previous answer, unchanged, to continue where it stopped (with
    /// the same `since` and `until`). Opaque. `null` is the same as leaving it out.
    #[serde(default)]
    #[schema(min_length = 1)]
    cursor: Option<String>,
    /// Log lines this call reads at most. `null` is the same as leaving it out.
    // A number, not `u64`: JSON Schema's integers include `296.0`.
    #[serde(default)]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1000, default = 1000)]
    limit: Option<serde_json::Number>,
}

/// A recover call that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCall {
    pub window: RecoveryWindow,
    /// Where the previous call stopped; `None` starts at `since`.
    pub resume_after: Option<LogPosition>,
    /// Log lines this call reads at most.
    pub max_lines: u32,
}

impl RecoveryCall {
    pub fn parse(body: &[u8], webhook: &WebhookId, now: SystemTime) -> Result<Self, Problem> {
        let request: RecoverRequest = problem::parse_object(
            body,
            r#"the body must be a JSON object: {"since": "<RFC 3339>", ...}"#,
        )?;
        let parse = |field: &str, text: &str| {
            clock::parse_rfc3339(text)
                .map_err(|err| Problem::invalid_field(field, format!("{field} {text:?} {err}")))
        };
        let since = parse("since", &request.since)?;
        let until = match request.until.as_deref() {
            Some(text) => parse("until", text)?,
            None => now,
        };
        // `since` = `until` is a window of one instant (most often empty): schema-valid, and
        // harmless, so answered like any other window.
        if since > until {
            return Err(Problem::invalid_field(
                "since",
                "since must not be later than until",
            ));
        }
        let window = RecoveryWindow { since, until };
        let max_lines = match request.limit {
            None => MAX_RECOVERY_LINES,
            Some(n) => whole_number(&n)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_RECOVERY_LINES).contains(n))
                .ok_or_else(|| {
                    Problem::invalid_field(
                        "limit",
                        format!(
                            "limit must be a whole number of log lines from 1 to \
                             {MAX_RECOVERY_LINES} (got {n})"
                        ),
                    )
                })?,
        };
        let resume_after = request
            .cursor
            .as_deref()
            .map(|cursor| decode_cursor(cursor, webhook, &window))
            .transpose()?;
        Ok(RecoveryCall {
            window,
            resume_after,
            max_lines,
        })
    }
}

/// A JSON number with no fraction (`12` or `12.0`) and not negative, as a `u64`; one
/// written with a fraction part counts only up to `u32::MAX` (all a limit can use).
fn whole_number(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(f))
            .map(|f| f as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_calls() {
        let now = clock::parse_rfc3339("2026-11-27T03:00:00Z").unwrap();
        let wh = WebhookId::from("wh_1");
        let parse = |body: &[u8]| RecoveryCall::parse(body, &wh, now);
        for beyond in ["9999-12-31T23:59:59-23:59", "9999-12-31T23:00:00-01:01"] {
            let body = format!(r#"{{"since":"2026-11-27T02:00:00Z","until":"{beyond}"}}"#);
            let p = parse(body.as_bytes()).unwrap_err();
            assert_eq!(
                (p.status, p.field.as_deref()),
                (422, Some("until")),
                "{p:?}"
            );
            assert!(p.detail.contains("outside the years"), "{}", p.detail);
        }
        let call = parse(br#"{"since":"2026-11-27T02:00:00Z"}"#).unwrap();
        assert_eq!(call.window.until, now);
        assert_eq!(call.max_lines, MAX_RECOVERY_LINES);
        assert_eq!(call.resume_after, None);
        let p = parse(br#"{"since":"2026-11-27T04:00:00Z"}"#).unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (422, Some("since")));
        assert!(p.detail.contains("not be later than until"), "{}", p.detail);
        // An empty window (one instant) is a window: the document allows it.
        let call =
            parse(br#"{"since":"2026-11-27T02:00:00Z","until":"2026-11-27T02:00:00Z"}"#).unwrap();
        assert_eq!(call.window.since, call.window.until);
        let call = parse(br#"{"since":"2026-11-27T03:00:00Z"}"#).unwrap();
        assert_eq!((call.window.since, call.window.until), (now, now));
        // The same instant however written.
        let call =
            parse(br#"{"since":"2026-11-27T04:00:00+01:00","until":"2026-11-27T03:00:00Z"}"#)
                .unwrap();
        assert_eq!(call.window.since, call.window.until);
        let p = parse(br#"{"since":"yesterday"}"#).unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (422, Some("since")));
        assert_eq!(parse(br#"{}"#).unwrap_err().status, 400);

        let call = parse(br#"{"since":"2026-11-27T02:00:00Z","limit":2}"#).unwrap();
        assert_eq!(call.max_lines, 2);
        // JSON Schema's integers (what the OpenAPI document says) include 2.0.
        let call = parse(br#"{"since":"2026-11-27T02:00:00Z","limit":296.0}"#).unwrap();
        assert_eq!(call.max_lines, 296);
        let call =
            parse(br#"{"since":"2026-11-27T02:00:00Z","until":null,"cursor":null,"limit":null}"#)
                .unwrap();
        assert_eq!(
            (call.max_lines, call.window.until),
            (MAX_RECOVERY_LINES, now)
        );
        for limit in ["0", "1001", "4294967297", "2.5", "-1", "1e300"] {
            let body = format!(r#"{{"since":"2026-11-27T02:00:00Z","limit":{limit}}}"#);
            let p = parse(body.as_bytes()).unwrap_err();
            assert_eq!(
                (p.status, p.field.as_deref()),
                (422, Some("limit")),
                "{limit}"
            );
        }
        let p = parse(br#"{"since":"2026-11-27T02:00:00Z","limit":"2"}"#).unwrap_err();
        assert_eq!(p.status, 400);
        let p = parse(br#"{"since":"2026-11-27T02:00:00Z","cursor":"??"}"#).unwrap_err();
        assert_eq!(p.status, 400);
        assert!(p.detail.contains("cursor"), "{}", p.detail);
    }

    #[test]
    fn a_recover_body_must_be_an_object_not_an_array_of_the_fields() {
        let wh = WebhookId::from("wh_1".to_owned());
        let p = RecoveryCall::parse(br#"["2026-11-27T02:00:00Z"]"#, &wh, SystemTime::UNIX_EPOCH)
            .unwrap_err();
        assert_eq!(p.status, 400);
        assert!(p.detail.contains("JSON object"), "{}", p.detail);
    }
}
