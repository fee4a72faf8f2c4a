//! Ingest (SPEC §3): what the platform posts, and the exact bytes receivers get (SPEC §4).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use webhooks_shared::domain::ids::EventId;
use webhooks_shared::domain::problem::{from_json_error, Problem};
use webhooks_shared::domain::{catalogue, clock, ids};

/// Events larger than this are refused with 413.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    /// Kept as the platform wrote it: a relay hands on what it was given, big numbers and
    /// all (a parsed `Value` would turn 12345678901234567890123 into 1.2345678901234568e22).
    data: Box<RawValue>,
    #[serde(default)]
    occurred_at: Option<String>,
}

/// The one field of `data` ingest looks at.
#[derive(Debug, Deserialize)]
struct DataId<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

/// The body every receiver gets, field order fixed.
#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    created_at: &'a str,
    data: &'a RawValue,
}

/// A validated event, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingEvent {
    pub id: EventId,
    pub event_type: String,
    pub resource_id: Option<String>,
    /// The exact body bytes (UTF-8 JSON) delivered on every attempt.
    pub payload: String,
    pub fingerprint: String,
}

impl IncomingEvent {
    pub fn parse(body: &[u8], now: SystemTime) -> Result<Self, Problem> {
        if body.len() > MAX_EVENT_BYTES {
            return Err(Problem::payload_too_large(format!(
                "event body is {} bytes; the limit is {MAX_EVENT_BYTES} bytes (256 KiB)",
                body.len()
            )));
        }
        let request: IngestRequest =
            serde_json::from_slice(body).map_err(|e| from_json_error(&e))?;
        if catalogue::find(&request.event_type).is_none() {
            let known: Vec<_> = catalogue::names().collect();
            return Err(Problem::bad_request(format!(
                "unknown event type {:?}; known types: {}",
                request.event_type,
                known.join(", ")
            )));
        }
        let id = match request.id {
            Some(id) if ids::is_valid_event_id(&id) => EventId::from(id),
            Some(_) => {
                return Err(Problem::bad_request(
                    "id must be 1-128 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'",
                ))
            }
            None => ids::new_event_id(),
        };
        let data = request.data;
        if !data.get().starts_with('{') {
            return Err(Problem::bad_request("data must be a JSON object"));
        }
        let created_at = match request.occurred_at {
            None => clock::rfc3339_seconds(now),
            Some(text) => {
                let at = clock::parse_rfc3339(&text).ok_or_else(|| {
                    Problem::bad_request(format!(
                        "occurred_at {text:?} is not an RFC 3339 timestamp (e.g. 2026-11-27T03:00:00Z)"
                    ))
                })?;
                clock::rfc3339_millis(at).replace(".000Z", "Z")
            }
        };
        let resource_id = resource_id(&data)?;
        let payload = serde_json::to_string(&Payload {
            id: id.as_str(),
            event_type: &request.event_type,
            created_at: &created_at,
            data: &data,
        })
        .map_err(|e| Problem::bad_request(format!("data cannot be encoded: {e}")))?;
        let fingerprint = fingerprint(&request.event_type, &data);
        Ok(IncomingEvent {
            id,
            event_type: request.event_type,
            resource_id,
            payload,
            fingerprint,
        })
    }
}

/// `data.id` when it is a string (its value) or a number (its text as written).
fn resource_id(data: &RawValue) -> Result<Option<String>, Problem> {
    let head: DataId = serde_json::from_str(data.get()).map_err(|e| from_json_error(&e))?;
    let Some(id) = head.id else {
        return Ok(None);
    };
    let text = id.get();
    if text.starts_with('"') {
        return Ok(serde_json::from_str::<String>(text).ok());
    }
    let is_number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    Ok(is_number.then(|| text.to_owned()))
}

/// Hash of the type and of `data` without its insignificant white space: a retry of the same
/// event matches however it was indented, and any other difference (a digit of a big number
/// included) does not.
fn fingerprint(event_type: &str, data: &RawValue) -> String {
    let mut hash = Sha256::new();
    hash.update(event_type.as_bytes());
    hash.update([0]);
    hash.update(without_white_space(data.get()).as_bytes());
    hex::encode(hash.finalize())
}

/// JSON text with the white space between tokens removed (strings untouched).
fn without_white_space(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_748_400)
    }

    #[test]
    fn builds_the_exact_payload_with_data_as_sent() {
        let e = IncomingEvent::parse(
            br#"{"id":"evt_1","type":"order.completed","data":{"zeta":1,"id":42, "alpha":[1, 2]}}"#,
            now(),
        )
        .unwrap();
        assert_eq!(
            e.payload,
            r#"{"id":"evt_1","type":"order.completed","created_at":"2026-11-27T03:00:00Z","data":{"zeta":1,"id":42, "alpha":[1, 2]}}"#
        );
        assert_eq!(e.resource_id.as_deref(), Some("42"));
    }

    #[test]
    fn assigns_ids_and_normalises_occurred_at() {
        let e = IncomingEvent::parse(
            br#"{"type":"user.registered","data":{"id":"usr_1"},"occurred_at":"2026-11-27T05:00:00+02:00"}"#,
            now(),
        )
        .unwrap();
        assert!(e.id.as_str().starts_with("evt_"));
        assert!(e.payload.contains(r#""created_at":"2026-11-27T03:00:00Z""#));
        assert_eq!(e.resource_id.as_deref(), Some("usr_1"));
    }

    #[test]
    fn numbers_reach_receivers_as_written() {
        let data = r#"{"ticket": 12345678901234567890123, "total": 1e15, "rate": 0.10, "id": 9007199254740993}"#;
        let body = format!(r#"{{"id":"evt_n","type":"order.completed","data":{data}}}"#);
        let e = IncomingEvent::parse(body.as_bytes(), now()).unwrap();
        assert!(
            e.payload.ends_with(&format!(r#","data":{data}}}"#)),
            "{}",
            e.payload
        );
        assert_eq!(e.resource_id.as_deref(), Some("9007199254740993"));
        // The stored body is bounded by what was posted.
        assert!(e.payload.len() <= body.len() + 64);
    }

    #[test]
    fn white_space_does_not_change_the_fingerprint_but_digits_do() {
        let parse = |data: &str| {
            let body = format!(r#"{{"id":"a","type":"user.registered","data":{data}}}"#);
            IncomingEvent::parse(body.as_bytes(), now())
                .unwrap()
                .fingerprint
        };
        let a = parse(r#"{"x": 12345678901234567890123, "s": "a b\" c"}"#);
        assert_eq!(
            a,
            parse("{\"x\":12345678901234567890123,\n \"s\":\"a b\\\" c\"}")
        );
        assert_ne!(
            a,
            parse(r#"{"x": 12345678901234567890124, "s": "a b\" c"}"#)
        );
        assert_ne!(a, parse(r#"{"x": 12345678901234567890123, "s": "ab\" c"}"#));
    }

    #[test]
    fn same_content_same_fingerprint() {
        let a = IncomingEvent::parse(
            br#"{"id":"a","type":"user.registered","data":{"x":1}}"#,
            now(),
        )
        .unwrap();
        let b = IncomingEvent::parse(
            br#"{"id":"a","type":"user.registered","data":{"x":1}}"#,
            now(),
        )
        .unwrap();
        let c = IncomingEvent::parse(
            br#"{"id":"a","type":"user.registered","data":{"x":2}}"#,
            now(),
        )
        .unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let cases: &[(&[u8], u16, &str)] = &[
            (b"{nope", 400, "not valid"),
            (
                br#"{"type":"order.deleted","data":{}}"#,
                400,
                "unknown event type",
            ),
            (
                br#"{"type":"order.completed","data":[1]}"#,
                400,
                "data must be a JSON object",
            ),
            (
                br#"{"type":"order.completed"}"#,
                400,
                "missing field `data`",
            ),
            (
                br#"{"id":"a b","type":"order.completed","data":{}}"#,
                400,
                "id must be",
            ),
            (
                br#"{"type":"order.completed","data":{},"occurred_at":"today"}"#,
                400,
                "RFC 3339",
            ),
            (
                br#"{"type":"order.completed","data":{},"extra":1}"#,
                400,
                "unknown field",
            ),
            (br#"[]"#, 400, "not valid"),
        ];
        for (body, status, needle) in cases {
            let p = IncomingEvent::parse(body, now()).unwrap_err();
            assert_eq!(p.status, *status, "{}", String::from_utf8_lossy(body));
            assert!(
                p.detail.contains(needle),
                "{} -> {}",
                String::from_utf8_lossy(body),
                p.detail
            );
        }
        let big = format!(
            r#"{{"type":"order.completed","data":{{"pad":"{}"}}}}"#,
            "x".repeat(MAX_EVENT_BYTES)
        );
        assert_eq!(
            IncomingEvent::parse(big.as_bytes(), now())
                .unwrap_err()
                .status,
            413
        );
    }
}
