//! Ingest (SPEC §3): what the platform posts, and the exact bytes receivers get (SPEC §4).

use std::collections::HashMap;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use webhooks_shared::domain::catalogue::EventTypeName;
use webhooks_shared::domain::ids::EventId;
use webhooks_shared::domain::model::EventBody;
use webhooks_shared::domain::problem::{self, Problem};
use webhooks_shared::domain::{catalogue, clock, ids};

/// Events larger than this are refused with 413.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// Batch bodies larger than this are refused with 413 (Lambda's synchronous payload limit is
/// 6 MB, and API Gateway may hand the body on base64-encoded).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// A batch carries at most this many events.
pub const MAX_BATCH_EVENTS: usize = 100;
/// How deeply `data` may nest arrays and objects, its own object being the first level.
/// Receivers parse `data`, and their parsers have limits: Python's `json` module recurses
/// once per level and raises `RecursionError` near 1,000, jq 1.6 refuses more than 256. 32 is
/// far more than any event needs and far below those; 10,000 levels (which fit in 20 KB)
/// would make every delivery of the event fail at such a receiver, for good.
pub const MAX_DATA_DEPTH: usize = 32;

/// An event from the platform. The whole body is at most 256 KiB.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = IngestEvent)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestRequest {
    /// Optional unique event id; when absent one is assigned (`evt_` + a sortable unique
    /// id). Posting the same id again with the same content is idempotent (same answer, no
    /// second fan-out); with different content it is a 409. `null` is the same as leaving it
    /// out.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    id: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = EventTypeName)]
    event_type: String,
    /// The event payload, relayed to receivers byte for byte. At most 32 levels of nested
    /// arrays and objects, its own object being the first (deeper is a 422 naming `data`).
    /// Its `id` (string or number), when present, is the event's resource id (at most 256
    /// characters).
    // Kept as the platform wrote it: a relay hands on what it was given, big numbers and
    // all (a parsed `Value` would turn 12345678901234567890123 into 1.2345678901234568e22).
    #[schema(value_type = Object)]
    data: Box<RawValue>,
    /// Optional RFC 3339 time the event happened (at most 9999-12-31T23:59:59Z in UTC);
    /// `null` is the same as leaving it out.
    #[serde(default)]
    #[schema(format = DateTime)]
    occurred_at: Option<String>,
}

/// Events from the platform, each as `POST /api/v1/events` takes it. The whole body is at
/// most 4 MiB.
// Each event is kept as written, for [`IncomingEvent::parse`]; the document shows what the
// parse requires of them.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = IngestBatch)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest<'a> {
    #[serde(borrow, default)]
    #[schema(value_type = Vec<IngestRequest>, min_items = 1, max_items = 100, required = true)]
    events: Option<&'a RawValue>,
}

/// The one field of `data` ingest looks at.
#[derive(Debug, Deserialize)]
struct DataId<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
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
        let request: IngestRequest = problem::parse_object(
            body,
            "the event must be a JSON object: {\"type\": ..., \"data\": {...}}",
        )?;
        if catalogue::find(&request.event_type).is_none() {
            let known: Vec<_> = catalogue::names().collect();
            return Err(Problem::bad_field(
                "type",
                format!(
                    "unknown event type {:?}; known types: {}",
                    request.event_type,
                    known.join(", ")
                ),
            ));
        }
        let id = match request.id {
            Some(id) if ids::is_valid_event_id(&id) => EventId::from(id),
            Some(_) => {
                return Err(Problem::bad_field(
                    "id",
                    "id must be 1-128 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'",
                ))
            }
            None => ids::new_event_id(),
        };
        let data = request.data;
        if !data.get().starts_with('{') {
            return Err(Problem::bad_field("data", "data must be a JSON object"));
        }
        let depth = nesting_depth(data.get());
        if depth > MAX_DATA_DEPTH {
            return Err(Problem::invalid_field(
                "data",
                format!(
                    "data nests arrays and objects {depth} levels deep; at most \
                     {MAX_DATA_DEPTH} are accepted (data's own object is the first), so that \
                     every receiver's JSON parser can read it: flatten the deepest parts"
                ),
            ));
        }
        let created_at = match request.occurred_at {
            None => clock::rfc3339_seconds(now),
            Some(text) => {
                let at = clock::parse_rfc3339(&text).map_err(|err| match err {
                    clock::TimestampError::NotRfc3339 => {
                        Problem::bad_field("occurred_at", format!("occurred_at {text:?} {err}"))
                    }
                    clock::TimestampError::OutOfRange => Problem::invalid_field(
                        "occurred_at",
                        format!("occurred_at {text:?} {err}: send a time in UTC up to 9999-12-31T23:59:59Z"),
                    ),
                })?;
                clock::rfc3339_millis(at).replace(".000Z", "Z")
            }
        };
        let resource_id = resource_id(&data)?;
        let payload = EventBody {
            id: id.as_str(),
            event_type: &request.event_type,
            created_at: &created_at,
            data: &data,
        }
        .to_json()
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

/// A validated batch: its distinct events, and which of them each position of the request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingBatch {
    /// One per distinct id, in the order they first appear.
    pub events: Vec<IncomingEvent>,
    /// For each event of the request, in order, its index in `events`.
    pub positions: Vec<usize>,
}

impl IncomingBatch {
    /// Validates every event of the batch (each as [`IncomingEvent::parse`] would, its
    /// problem prefixed with `events[i]: `) before anything is stored. An id repeated with the
    /// same content is one event; repeated with other content, the batch is refused.
    pub fn parse(body: &[u8], now: SystemTime) -> Result<Self, Problem> {
        if body.len() > MAX_BATCH_BYTES {
            return Err(batch_too_large(Some(body.len())));
        }
        let request: BatchRequest = problem::parse_object(
            body,
            r#"the body must be a JSON object: {"events": [<event>, ...]}"#,
        )?;
        let must_be = || {
            Problem::bad_request(format!(
                "events must be an array of 1 to {MAX_BATCH_EVENTS} events"
            ))
        };
        let list = request.events.ok_or_else(must_be)?;
        if !list.get().starts_with('[') {
            return Err(must_be());
        }
        let raw: Vec<&RawValue> = problem::parse_json(list.get().as_bytes())?;
        if raw.is_empty() {
            return Err(Problem::bad_request(format!(
                "events is empty; send 1 to {MAX_BATCH_EVENTS} events"
            )));
        }
        if raw.len() > MAX_BATCH_EVENTS {
            return Err(Problem::bad_request(format!(
                "events holds {} events; the limit is {MAX_BATCH_EVENTS} per request",
                raw.len()
            )));
        }
        let mut batch = IncomingBatch {
            events: Vec::with_capacity(raw.len()),
            positions: Vec::with_capacity(raw.len()),
        };
        // Event id -> (its first position, its index in `events`).
        let mut seen: HashMap<EventId, (usize, usize)> = HashMap::new();
        for (i, text) in raw.iter().enumerate() {
            let event = IncomingEvent::parse(text.get().as_bytes(), now).map_err(|mut p| {
                p.detail = format!("events[{i}]: {}", p.detail);
                p.field = Some(match p.field.take() {
                    Some(field) => format!("events[{i}].{field}"),
                    None => format!("events[{i}]"),
                });
                p
            })?;
            match seen.get(&event.id) {
                Some(&(first, index)) => {
                    let same = batch.events.get(index).map(|e| &e.fingerprint);
                    if same != Some(&event.fingerprint) {
                        return Err(Problem::bad_field(
                            &format!("events[{i}].id"),
                            format!(
                                "events[{i}].id: repeats events[{first}].id with different content"
                            ),
                        ));
                    }
                    batch.positions.push(index);
                }
                None => {
                    let index = batch.events.len();
                    seen.insert(event.id.clone(), (i, index));
                    batch.events.push(event);
                    batch.positions.push(index);
                }
            }
        }
        Ok(batch)
    }
}

/// The 413 for a batch body over [`MAX_BATCH_BYTES`] (its size when it was read).
pub fn batch_too_large(size: Option<usize>) -> Problem {
    let limit = format!("the limit is {MAX_BATCH_BYTES} bytes (4 MiB)");
    Problem::payload_too_large(match size {
        Some(size) => format!("batch body is {size} bytes; {limit}"),
        None => format!("batch body is too large; {limit}"),
    })
}

/// `data.id` when it is a string (its value) or a number (its text as written).
fn resource_id(data: &RawValue) -> Result<Option<String>, Problem> {
    let head: DataId = problem::parse_json(data.get().as_bytes())?;
    let Some(id) = head.id else {
        return Ok(None);
    };
    let text = id.get();
    let id = if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()
    } else {
        let is_number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
        is_number.then(|| text.to_owned())
    };
    // It is copied into every delivery's message and log line: an id of 200 KB would make
    // them too big for SQS and DynamoDB, and the event undeliverable (503s forever).
    match id {
        Some(id) if id.chars().count() > MAX_RESOURCE_ID_CHARS => Err(Problem::invalid_field(
            "data.id",
            format!(
                "data.id is {} characters long; at most {MAX_RESOURCE_ID_CHARS} are accepted \
                 (it names the resource the event is about)",
                id.chars().count()
            ),
        )),
        id => Ok(id),
    }
}

/// The longest `data.id` accepted.
pub const MAX_RESOURCE_ID_CHARS: usize = 256;

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

/// How deeply valid JSON text nests arrays and objects (`{}` is 1, `{"a":[1]}` is 2): one
/// pass over the bytes, counting brackets outside strings, so no depth of input can exhaust
/// the stack the way a recursive parser would. (A UTF-8 sequence never holds an ASCII byte.)
fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in json.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    deepest
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
mod properties;

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
    fn a_resource_id_is_at_most_256_characters() {
        let event = |id: &str| format!(r#"{{"type":"order.completed","data":{{"id":"{id}"}}}}"#);
        let longest = "é".repeat(MAX_RESOURCE_ID_CHARS);
        let parsed = IncomingEvent::parse(event(&longest).as_bytes(), now()).unwrap();
        assert_eq!(parsed.resource_id.as_deref(), Some(longest.as_str()));
        let problem =
            IncomingEvent::parse(event(&"x".repeat(200_000)).as_bytes(), now()).unwrap_err();
        assert_eq!(
            (problem.status, problem.field.as_deref()),
            (422, Some("data.id"))
        );
        assert!(
            problem
                .detail
                .contains("200000 characters long; at most 256"),
            "{}",
            problem.detail
        );
        let number = format!(
            r#"{{"type":"order.completed","data":{{"id":{}}}}}"#,
            "9".repeat(300)
        );
        assert!(IncomingEvent::parse(number.as_bytes(), now()).is_err());
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
                br#"{"type":"order.completed","data":{},"occurred_at":"9999-12-31T23:59:59-23:59"}"#,
                422,
                "outside the years 0000 to 9999",
            ),
            (
                br#"{"type":"order.completed","data":{},"extra":1}"#,
                400,
                "unknown field",
            ),
            (br#"[]"#, 400, "must be a JSON object"),
            (
                br#" [null, "order.completed", {}]"#,
                400,
                "must be a JSON object",
            ),
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

    #[test]
    fn nesting_depth_counts_brackets_outside_strings() {
        for (json, depth) in [
            ("{}", 1),
            (r#"{"a":1}"#, 1),
            (r#"{"a":[1,{"b":[]}],"c":{}}"#, 4),
            (r#"{"s":"[[[{{{","t":"\"[[","u":"\\"}"#, 1),
            (r#"{"é":["ü[",{"x":"}}}"}]}"#, 3),
            (r#"{ "a" : [ [ ] ] , "b" : { } }"#, 3),
        ] {
            assert_eq!(nesting_depth(json), depth, "{json}");
        }
    }

    #[test]
    fn data_nests_at_most_32_levels_and_deeper_is_a_422_naming_data() {
        // `{"a":` … `}`, `levels` objects deep in all (data's own included).
        let nested = |levels: usize| {
            format!(
                "{}{}",
                r#"{"a":"#.repeat(levels - 1) + "{}",
                "}".repeat(levels - 1)
            )
        };
        let arrays = |levels: usize| {
            format!(
                "{{\"a\":{}{}}}",
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        let event = |data: &str| format!(r#"{{"type":"order.completed","data":{data}}}"#);
        for data in [nested(MAX_DATA_DEPTH), arrays(MAX_DATA_DEPTH)] {
            let parsed = IncomingEvent::parse(event(&data).as_bytes(), now()).unwrap();
            assert!(parsed.payload.contains(&data), "relayed as sent");
        }
        for (data, depth) in [
            (nested(MAX_DATA_DEPTH + 1), 33),
            (arrays(MAX_DATA_DEPTH + 1), 33),
            (arrays(10_000), 10_000),
        ] {
            let p = IncomingEvent::parse(event(&data).as_bytes(), now()).unwrap_err();
            assert_eq!((p.status, p.field.as_deref()), (422, Some("data")));
            assert!(
                p.detail.starts_with(&format!(
                    "data nests arrays and objects {depth} levels deep; at most 32"
                )),
                "{}",
                p.detail
            );
        }
        // Brackets inside strings are text, not nesting.
        let text = format!(r#"{{"note":"{}"}}"#, "[".repeat(10_000));
        assert!(IncomingEvent::parse(event(&text).as_bytes(), now()).is_ok());
        // In a batch, the field names the event.
        let body = batch(&[event("{}"), event(&arrays(40))]);
        let p = IncomingBatch::parse(&body, now()).unwrap_err();
        assert_eq!(
            (p.status, p.field.as_deref()),
            (422, Some("events[1].data"))
        );
        assert!(
            p.detail
                .starts_with("events[1]: data nests arrays and objects 40 levels"),
            "{}",
            p.detail
        );
    }

    fn batch(events: &[String]) -> Vec<u8> {
        format!(r#"{{"events":[{}]}}"#, events.join(",")).into_bytes()
    }

    fn event(id: &str, event_type: &str, data: &str) -> String {
        format!(r#"{{"id":"{id}","type":"{event_type}","data":{data}}}"#)
    }

    #[test]
    fn a_batch_parses_each_event_as_a_single_post_would() {
        let events = [
            event(
                "b1",
                "order.completed",
                r#"{"id": 1, "big": 12345678901234567890123}"#,
            ),
            r#"{"type":"user.registered","data":{"id":"usr_1"}}"#.to_owned(),
            event("b3", "order.completed", r#"{"id":3}"#),
        ];
        let parsed = IncomingBatch::parse(&batch(&events), now()).unwrap();
        assert_eq!(parsed.positions, [0, 1, 2]);
        assert_eq!(parsed.events.len(), 3);
        for (text, parsed) in events.iter().zip(&parsed.events) {
            let single = IncomingEvent::parse(text.as_bytes(), now()).unwrap();
            if text.contains(r#""id":"b"#) {
                assert_eq!(parsed, &single);
            } else {
                // Assigned ids differ from one parse to the next; the rest does not.
                assert!(parsed.id.as_str().starts_with("evt_"));
                assert_eq!(parsed.fingerprint, single.fingerprint);
                assert_eq!(parsed.resource_id.as_deref(), Some("usr_1"));
            }
        }
        assert!(parsed.events[0]
            .payload
            .ends_with(r#""data":{"id": 1, "big": 12345678901234567890123}}"#));
    }

    #[test]
    fn a_bad_event_is_named_by_its_index() {
        let good = event("ok", "order.completed", "{}");
        let cases: &[(&str, u16, &str)] = &[
            (
                r#"{"id":"x","type":"x","data":{}}"#,
                400,
                "events[2]: unknown event type \"x\"; known types: ",
            ),
            (
                r#"{"id":"a b","type":"order.completed","data":{}}"#,
                400,
                "events[2]: id must be",
            ),
            (
                r#"{"type":"order.completed","data":[]}"#,
                400,
                "events[2]: data must be a JSON object",
            ),
            (
                r#"{"type":"order.completed"}"#,
                400,
                "events[2]: request body is not valid: data: missing field `data`",
            ),
            (
                r#"{"type":"order.completed","data":{},"extra":true}"#,
                400,
                "events[2]: request body is not valid: extra: unknown field `extra`",
            ),
            ("7", 400, "events[2]: the event must be a JSON object"),
        ];
        for (bad, status, start) in cases {
            let body = batch(&[good.clone(), good.replace("ok", "ok2"), (*bad).to_owned()]);
            let p = IncomingBatch::parse(&body, now()).unwrap_err();
            assert_eq!(p.status, *status, "{bad}");
            assert!(p.detail.starts_with(start), "{bad} -> {}", p.detail);
            let field = p.field.as_deref().unwrap_or("");
            assert!(field.starts_with("events[2]"), "{bad} -> field {field:?}");
        }
    }

    #[test]
    fn the_body_must_be_one_array_of_1_to_100_events() {
        let one = event("ok", "order.completed", "{}");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{nope".to_vec(), "request body is not valid"),
            (b"[]".to_vec(), "the body must be a JSON object"),
            (
                format!(" [[{one}]]").into_bytes(),
                "the body must be a JSON object",
            ),
            (b"{}".to_vec(), "events must be an array of 1 to 100 events"),
            (
                br#"{"events":null}"#.to_vec(),
                "events must be an array of 1 to 100 events",
            ),
            (
                format!(r#"{{"events":{one}}}"#).into_bytes(),
                "events must be an array of 1 to 100 events",
            ),
            (br#"{"events":[]}"#.to_vec(), "events is empty"),
            (
                format!(r#"{{"events":[{one}],"more":1}}"#).into_bytes(),
                "unknown field `more`",
            ),
            (
                batch(
                    &(0..=MAX_BATCH_EVENTS)
                        .map(|i| event(&format!("e{i}"), "order.completed", "{}"))
                        .collect::<Vec<_>>(),
                ),
                "events holds 101 events; the limit is 100 per request",
            ),
        ];
        for (body, needle) in cases {
            let p = IncomingBatch::parse(&body, now()).unwrap_err();
            assert_eq!(p.status, 400, "{}", String::from_utf8_lossy(&body));
            assert!(p.detail.contains(needle), "{needle:?} not in {}", p.detail);
        }
        let hundred: Vec<_> = (0..MAX_BATCH_EVENTS)
            .map(|i| event(&format!("e{i}"), "order.completed", "{}"))
            .collect();
        let parsed = IncomingBatch::parse(&batch(&hundred), now()).unwrap();
        assert_eq!(parsed.events.len(), 100);
    }

    #[test]
    fn size_limits_for_the_batch_and_for_each_event() {
        // An event over 256 KiB is refused by its index, measured on its own JSON text.
        let pad = "x".repeat(MAX_EVENT_BYTES);
        let big = event("big", "order.completed", &format!(r#"{{"pad":"{pad}"}}"#));
        let small = event("small", "order.completed", "{}");
        let p = IncomingBatch::parse(&batch(&[small.clone(), big]), now()).unwrap_err();
        assert_eq!(p.status, 413);
        assert!(
            p.detail.starts_with("events[1]: event body is "),
            "{}",
            p.detail
        );
        assert!(p.detail.contains("256 KiB"), "{}", p.detail);

        // Just under 256 KiB each: white space between events does not count towards them.
        let fits = |id: &str| {
            let shell = event(id, "order.completed", r#"{"pad":""}"#);
            let pad = "x".repeat(MAX_EVENT_BYTES - shell.len());
            event(id, "order.completed", &format!(r#"{{"pad":"{pad}"}}"#))
        };
        assert_eq!(fits("a").len(), MAX_EVENT_BYTES);
        let spaced = format!("{{\"events\": [\n  {},\n  {}\n]}}", fits("a"), fits("b"));
        assert_eq!(
            IncomingBatch::parse(spaced.as_bytes(), now())
                .unwrap()
                .events
                .len(),
            2
        );

        // The whole body: 4 MiB at most.
        let many: Vec<_> = (0..16).map(|i| fits(&format!("e{i}"))).collect();
        let body = batch(&many);
        assert!(body.len() > MAX_BATCH_BYTES);
        let p = IncomingBatch::parse(&body, now()).unwrap_err();
        assert_eq!(p.status, 413);
        assert!(
            p.detail.contains("the limit is 4194304 bytes (4 MiB)"),
            "{}",
            p.detail
        );
        let body = batch(&many[..15]);
        assert!(body.len() <= MAX_BATCH_BYTES);
        assert_eq!(IncomingBatch::parse(&body, now()).unwrap().events.len(), 15);
    }

    #[test]
    fn an_id_repeated_in_a_batch_is_one_event_if_the_content_is_the_same() {
        let a = event("same", "order.completed", r#"{"x": 1}"#);
        let a_again = event("same", "order.completed", r#"{"x":1}"#);
        let b = event("other", "order.completed", "{}");
        let parsed = IncomingBatch::parse(&batch(&[a.clone(), b.clone(), a_again]), now()).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(parsed.positions, [0, 1, 0]);
        assert_eq!(parsed.events[0].id.as_str(), "same");
        assert_eq!(parsed.events[1].id.as_str(), "other");

        let a_changed = event("same", "order.completed", r#"{"x":2}"#);
        let p =
            IncomingBatch::parse(&batch(&[a.clone(), b.clone(), a_changed]), now()).unwrap_err();
        assert_eq!(p.status, 400);
        assert_eq!(
            p.detail,
            "events[2].id: repeats events[0].id with different content"
        );
        let other_type = event("same", "order.refunded", r#"{"x":1}"#);
        let p = IncomingBatch::parse(&batch(&[b, a, other_type]), now()).unwrap_err();
        assert_eq!(
            p.detail,
            "events[2].id: repeats events[1].id with different content"
        );

        // Events without an id each get their own.
        let anonymous = r#"{"type":"order.completed","data":{}}"#.to_owned();
        let parsed = IncomingBatch::parse(&batch(&[anonymous.clone(), anonymous]), now()).unwrap();
        assert_eq!(parsed.positions, [0, 1]);
        assert_ne!(parsed.events[0].id, parsed.events[1].id);
    }
}
