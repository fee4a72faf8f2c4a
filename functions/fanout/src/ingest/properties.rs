//! Property tests of ingest parsing: whatever the platform posts, the answer is an event or
//! a 4xx problem — never a panic — and a refused object names the field at fault.

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_748_400)
}

/// Any JSON value, nested a few levels, with strings that include the awkward characters.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        "[0-9a-z_.:-]{0,300}".prop_map(Value::from),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})"
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("(id|type|data|x|[a-z]{1,3})", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Events built from the known fields, each either absent, plausible or anything at all.
fn any_event() -> impl Strategy<Value = Value> {
    let field = |plausible: BoxedStrategy<Value>| {
        prop_oneof![
            1 => Just(None),
            2 => plausible.prop_map(Some),
            2 => any_json().prop_map(Some),
        ]
    };
    (
        field("[A-Za-z0-9_.:-]{1,130}".prop_map(Value::from).boxed()),
        field(
            prop::sample::select(vec!["order.completed", "user.registered", "order.deleted"])
                .prop_map(Value::from)
                .boxed(),
        ),
        field(
            prop::collection::btree_map("(id|total|[a-z]{1,4})", any_json(), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
                .boxed(),
        ),
        field(
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
                .prop_map(Value::from)
                .boxed(),
        ),
    )
        .prop_map(|(id, event_type, data, occurred_at)| {
            let mut event = Map::new();
            for (name, value) in [
                ("id", id),
                ("type", event_type),
                ("data", data),
                ("occurred_at", occurred_at),
            ] {
                if let Some(value) = value {
                    event.insert(name.to_owned(), value);
                }
            }
            Value::Object(event)
        })
}

/// How deeply a parsed value nests arrays and objects (a scalar is 0).
fn depth_of(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The one-pass count on the raw text agrees with a parser, however the text is spaced
    /// and whatever brackets, quotes and backslashes its strings hold.
    #[test]
    fn nesting_depth_on_the_text_is_what_a_parser_sees(value in any_json()) {
        for text in [value.to_string(), serde_json::to_string_pretty(&value).unwrap()] {
            prop_assert_eq!(nesting_depth(&text), depth_of(&value), "{}", text);
        }
    }

    #[test]
    fn any_bytes_are_an_event_or_a_4xx(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(p) = IncomingEvent::parse(&body, now()) {
            prop_assert!((400..500).contains(&p.status), "{p:?}");
        }
        if let Err(p) = IncomingBatch::parse(&body, now()) {
            prop_assert!((400..500).contains(&p.status), "{p:?}");
        }
    }

    #[test]
    fn an_event_object_is_accepted_or_refused_naming_its_field(event in any_event()) {
        let body = event.to_string();
        match IncomingEvent::parse(body.as_bytes(), now()) {
            Ok(parsed) => {
                // What receivers get carries `data` byte for byte.
                let data = event["data"].to_string();
                prop_assert!(parsed.payload.contains(&data), "{} lacks {data}", parsed.payload);
                prop_assert!(parsed.payload.len() <= MAX_EVENT_BYTES + 256);
            }
            Err(p) => {
                prop_assert!((400..500).contains(&p.status), "{p:?}");
                let field = p.field.clone().unwrap_or_default();
                prop_assert!(
                    ["id", "type", "data", "data.id", "occurred_at"].contains(&field.as_str()),
                    "{body} -> {p:?}"
                );
            }
        }
    }

    #[test]
    fn a_batch_is_refused_naming_the_index_and_field(
        events in prop::collection::vec(any_event(), 1..5)
    ) {
        let body = json!({ "events": events }).to_string();
        if let Err(p) = IncomingBatch::parse(body.as_bytes(), now()) {
            prop_assert!((400..500).contains(&p.status), "{p:?}");
            let field = p.field.clone().unwrap_or_default();
            prop_assert!(field.starts_with("events["), "{body} -> {p:?}");
        }
    }
}
